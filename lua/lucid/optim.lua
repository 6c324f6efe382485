-- lucid.optim: optimizers and learning-rate schedulers, as torch.optim (PyTorch 1.13).
--   local optim = require "lucid.optim"   -- or lucid.optim
--   local opt = optim.SGD(model:parameters(), {lr = 0.1, momentum = 0.9})
--   local sched = optim.lr_scheduler.StepLR(opt, {step_size = 10, gamma = 0.5})
-- The update math runs in C (src/nn/optim*.c through src/lua/optim.c); this file keeps the
-- parameter groups as plain Lua tables (read and written by users and schedulers) and hands
-- their options to C before each step. The schedulers are plain Lua: they only set group lr
-- (and momentum / betas for OneCycleLR). See docs/optim.md.
local lucid = require "lucid"
local core = require "lucid.nn_core"

local optim = {}

local is_tensor = lucid.is_tensor
local is_module = core.is_module

local A = require "lucid.args"
local fail, describe = A.fail, A.describe
-- Positional arguments and/or one trailing options table, by lucid.args' rule (a plain table
-- with string keys, or an empty one; lists such as parameters, betas or milestones are values).
local args = A.args

local function deepcopy(v)
  if type(v) ~= "table" or is_tensor(v) then return v end
  local r = {}
  for k, x in pairs(v) do r[k] = deepcopy(x) end
  return r
end

local function check_number(fname, name, v)
  if type(v) ~= "number" then fail("%s: %s must be a number, got %s", fname, name, describe(v)) end
  return v
end

local check_int, check_bool = A.int_arg, A.bool_arg

-- ---------------------------------------------------------------- optimizers

-- Per kind, built from the C core's descriptors (core.optim_kinds(), src/nn/optim.c): the
-- positional parameters (params, then PyTorch's order), the keyword-only ones, the defaults
-- (PyTorch 1.13's; SGD's lr has none: it is required). Types and values, and the state entries
-- load_state_dict hands over (names, step counts, shapes), are checked in C (src/lua/optim.c,
-- lc_optim_check_options, lc_optimizer_check_state), with the messages users see.
local KINDS, KIND_ORDER = {}, {}
for _, d in ipairs(core.optim_kinds()) do
  local spec = {positional = {"params"}, extra = {}, defaults = {}}
  for _, hp in ipairs(d.hparams) do
    local list = hp.keyword_only and spec.extra or spec.positional
    list[#list + 1] = hp.name
    if hp.default ~= nil then spec.defaults[hp.name] = hp.default end
  end
  KINDS[d.name] = spec
  KIND_ORDER[#KIND_ORDER + 1] = d.name
end

local Optimizer = {}
Optimizer.__index = Optimizer
optim.Optimizer = Optimizer

local function is_optimizer(o) return type(o) == "table" and getmetatable(o) ~= nil and rawget(o, "_h") ~= nil end

-- The parameter groups given to a constructor: a list of tensors (one group) or a list of
-- group tables {params = {...}, <option> = ...}.
local function normalise_params(fname, params)
  if params == nil then fail("%s: missing argument params", fname) end
  if is_module(params) then
    fail("%s: params must be a list of tensors or of parameter groups, got %s (pass model:parameters())",
      fname, describe(params))
  end
  if type(params) ~= "table" or is_tensor(params) then
    fail("%s: params must be a list of tensors or of parameter groups, got %s", fname, describe(params))
  end
  if #params == 0 then fail("%s: optimizer got an empty parameter list", fname) end
  if type(params[1]) == "table" and not is_tensor(params[1]) then
    local groups = {}
    for i = 1, #params do
      local g = params[i]
      if type(g) ~= "table" or is_tensor(g) then
        fail("%s: params[%d]: expected a parameter group table {params = {...}, ...}, got %s", fname, i, describe(g))
      end
      groups[i] = g
    end
    return groups, true
  end
  return {{params = params}}, false
end

-- Completes a group table (a new table; the caller's is not modified) with defaults. Returns it
-- (C checks its options when the group is handed over).
function Optimizer:_make_group(g, where)
  local fname = self._fname
  local ps = g.params
  if is_tensor(ps) then ps = {ps} end
  local gwhere = where ~= "" and (where .. ".params") or "params"
  if type(ps) ~= "table" then
    fail("%s: %s must be a tensor or a list of tensors, got %s", fname, gwhere, describe(ps))
  end
  local group = {}
  for k, v in pairs(g) do
    if k ~= "params" then group[k] = deepcopy(v) end
  end
  for k, v in pairs(self.defaults) do
    if group[k] == nil then group[k] = deepcopy(v) end
  end
  local list = {}
  for i = 1, #ps do list[i] = ps[i] end
  group.params = list
  return group, gwhere
end

local function new_optimizer(kind, ...)
  local spec = KINDS[kind]
  local fname = "optim." .. kind
  local a = A.collect(fname, spec.positional, spec.extra, nil, ...)
  local params = a.params
  a.params = nil
  local defaults = deepcopy(spec.defaults)
  for k, v in pairs(a) do defaults[k] = deepcopy(v) end
  local self = setmetatable({kind = kind, defaults = defaults, param_groups = {}, _fname = fname,
    _counts = {}}, Optimizer)
  local groups, listed = normalise_params(fname, params)
  for i, g in ipairs(groups) do
    local where = listed and ("params[" .. i .. "]") or ""
    local group, pwhere = self:_make_group(g, where)
    if i == 1 then
      self._h = core.optim_new(kind, group.params, group, fname, pwhere, where)
    else
      core.optim_add_group(self._h, group.params, group, fname, pwhere, where)
    end
    self.param_groups[i] = group
    self._counts[i] = #group.params
  end
  return self
end

for _, kind in ipairs(KIND_ORDER) do
  optim[kind] = function(...) return new_optimizer(kind, ...) end
end

-- add_param_group{params = {...}, lr = ...}: the group's own options over the defaults.
function Optimizer:add_param_group(g)
  local fname = self._fname .. ":add_param_group"
  if type(g) ~= "table" or is_tensor(g) or g.params == nil then
    fail("%s: expected a parameter group table {params = {...}, ...}, got %s", fname, describe(g))
  end
  local saved = self._fname
  self._fname = fname
  local ok, group, pwhere = pcall(self._make_group, self, g, "")
  self._fname = saved
  if not ok then error(group, 0) end
  core.optim_add_group(self._h, group.params, group, fname, pwhere)
  local i = #self.param_groups + 1
  self.param_groups[i] = group
  self._counts[i] = #group.params
end

-- step([closure]): one update of every parameter that has a gradient. closure (optional)
-- re-evaluates the loss with grad mode on; its result is returned. The groups' current options
-- are handed to C first (here, not in a helper: C's messages carry the caller's position).
-- The start of a step, shared with wrappers that keep param_groups and _counts the same way
-- (lucid.distributed.optim): the closure's loss (grad mode on), then the check that the
-- groups' parameter lists are the ones added.
function optim._begin_step(self, fname, closure)
  local loss
  if closure ~= nil then
    if type(closure) ~= "function" then fail("%s: closure must be a function, got %s", fname, describe(closure)) end
    loss = lucid.enable_grad(closure)
  end
  local groups = self.param_groups
  if #groups ~= #self._counts then
    fail("%s: param_groups has %d groups but the optimizer has %d: add groups with add_param_group",
      fname, #groups, #self._counts)
  end
  for i = 1, #groups do
    local g = groups[i]
    if type(g) ~= "table" or type(g.params) ~= "table" or #g.params ~= self._counts[i] then
      fail("%s: param_groups[%d].params was changed: a group's parameters are fixed (use add_param_group)",
        fname, i)
    end
  end
  return loss
end

function Optimizer:step(closure)
  local fname = self._fname .. ":step"
  local loss = optim._begin_step(self, fname, closure)
  local groups = self.param_groups
  for i = 1, #groups do
    local g = groups[i]
    core.optim_set_group(self._h, i, g, fname, "param_groups[" .. i .. "]")
  end
  core.optim_step(self._h, fname)
  return loss
end

-- zero_grad([set_to_none = true]) / zero_grad{set_to_none = false}
Optimizer.zero_grad = core.optim_zero_grad

-- state_of(i): the state of the i-th parameter (1-based over all groups), {step = n,
-- <buffer> = tensor} with the live buffers, or nil before its first step.
Optimizer.state_of = core.optim_state_of

-- {state = {[i] = {step = n, exp_avg = T, ...}}, param_groups = {{lr = ..., params = {1, 2}}}}
-- with 1-based parameter indices over all groups; buffers are copies. Only tensors, numbers,
-- booleans and strings as leaves.
function Optimizer:state_dict()
  if not is_optimizer(self) then fail("optim.Optimizer:state_dict: expected an optimizer, got %s", describe(self)) end
  local sd = {state = {}, param_groups = {}}
  local idx = 0
  for gi, g in ipairs(self.param_groups) do
    local pg = {}
    for k, v in pairs(g) do
      if k ~= "params" then pg[k] = deepcopy(v) end
    end
    pg.params = {}
    for j = 1, #g.params do
      idx = idx + 1
      pg.params[j] = idx
    end
    sd.param_groups[gi] = pg
  end
  lucid.no_grad(function()
    for i = 1, core.optim_num_params(self._h) do
      local st = self:state_of(i)
      if st then
        for k, v in pairs(st) do
          if is_tensor(v) then st[k] = v:clone() end
        end
        sd.state[i] = st
      end
    end
  end)
  return sd
end

local function as_list(v)
  if is_tensor(v) then return v:tolist() end
  return v
end

-- Loads a state_dict (of an optimizer of the same kind over parameters of the same shapes, in
-- the same group structure): group options and per-parameter state (copied, cast to each
-- parameter's dtype). Checks everything before changing anything.
function Optimizer:load_state_dict(sd)
  local fname = self._fname .. ":load_state_dict"
  if type(sd) ~= "table" or is_tensor(sd) then fail("%s: expected a state dict table, got %s", fname, describe(sd)) end
  local groups, saved = self.param_groups, sd.param_groups
  if type(saved) ~= "table" then fail("%s: param_groups must be a list of tables, got %s", fname, describe(saved)) end
  local state = sd.state
  if state == nil then state = {} end
  if type(state) ~= "table" then fail("%s: state must be a table, got %s", fname, describe(state)) end
  if #saved ~= #groups then
    fail("%s: loaded state dict has a different number of parameter groups: expected %d, got %d",
      fname, #groups, #saved)
  end
  -- saved index -> current flat index
  local id_map, flat = {}, 0
  for gi, g in ipairs(groups) do
    local sg = saved[gi]
    if type(sg) ~= "table" then fail("%s: param_groups[%d] must be a table, got %s", fname, gi, describe(sg)) end
    local sp = as_list(sg.params)
    if type(sp) ~= "table" then fail("%s: param_groups[%d].params must be a list of indices", fname, gi) end
    if #sp ~= #g.params then
      fail("%s: loaded state dict contains a parameter group that doesn't match the size of optimizer's group: "
        .. "param_groups[%d] has %d parameters, expected %d", fname, gi, #sp, #g.params)
    end
    for j = 1, #sp do
      flat = flat + 1
      local k = tonumber(sp[j])
      if k == nil then fail("%s: param_groups[%d].params[%d] must be an integer, got %s", fname, gi, j, describe(sp[j])) end
      id_map[k] = flat
    end
  end
  -- the state entries: checked in C (names, step counts, shapes) before anything changes
  local new_state, where = {}, {}
  for k, v in pairs(state) do
    local i = id_map[tonumber(k)]
    if i == nil then fail("%s: state has an entry for parameter %s, which no group lists", fname, tostring(k)) end
    where[i] = "state[" .. tostring(k) .. "]"
    core.optim_check_state(self._h, i, v, fname, where[i])
    new_state[i] = v
  end
  -- the options: each group's reach C now (set_group checks them; on an error the Lua groups
  -- are unchanged, and the next step hands them over again)
  local new_groups = {}
  for gi, g in ipairs(groups) do
    local ng = {}
    for k, v in pairs(saved[gi]) do
      if k ~= "params" then ng[k] = deepcopy(v) end
    end
    for k, v in pairs(self.defaults) do
      if ng[k] == nil then ng[k] = deepcopy(v) end
    end
    ng.params = g.params
    core.optim_set_group(self._h, gi, ng, fname, "param_groups[" .. gi .. "]")
    new_groups[gi] = ng
  end
  -- everything checked: replace the groups' contents (the tables stay the same objects)
  for gi, g in ipairs(groups) do
    for k in pairs(g) do
      if k ~= "params" then g[k] = nil end
    end
    for k, v in pairs(new_groups[gi]) do g[k] = v end
  end
  for i = 1, core.optim_num_params(self._h) do
    core.optim_set_state(self._h, i, new_state[i], fname, where[i] or ("state[" .. i .. "]"))
  end
end

local function format_value(v)
  if type(v) == "table" then
    local parts = {}
    for i, x in ipairs(v) do parts[i] = format_value(x) end
    return "{" .. table.concat(parts, ", ") .. "}"
  end
  return tostring(v)
end

function Optimizer:__tostring()
  local lines = {self.kind .. " ("}
  for i, g in ipairs(self.param_groups) do
    lines[#lines + 1] = "Parameter Group " .. i
    local keys = {}
    for k in pairs(g) do
      if k ~= "params" then keys[#keys + 1] = tostring(k) end
    end
    table.sort(keys)
    for _, k in ipairs(keys) do lines[#lines + 1] = "    " .. k .. ": " .. format_value(g[k]) end
  end
  lines[#lines + 1] = ")"
  return table.concat(lines, "\n")
end

-- ---------------------------------------------------------------- schedulers

local lr_scheduler = {}
optim.lr_scheduler = lr_scheduler

local LRScheduler = {}
LRScheduler.__index = LRScheduler
lr_scheduler.LRScheduler = LRScheduler

local function scheduler_class(name)
  local cls = setmetatable({}, {__index = LRScheduler})
  cls.__index = cls
  cls.__name = name
  cls.__tostring = function() return "lr_scheduler." .. name end
  lr_scheduler[name] = cls
  optim[name] = cls
  return cls
end

-- A lucid.optim optimizer, or a wrapper that keeps its groups the same way (a table with
-- param_groups and step, such as lucid.distributed.optim.ZeroRedundancyOptimizer): schedulers
-- only read and set the groups' options.
local function check_optimizer(fname, o)
  local wrapper = type(o) == "table" and not is_tensor(o) and type(rawget(o, "param_groups")) == "table"
    and type(o.step) == "function"
  if not (is_optimizer(o) or wrapper) then
    fail("%s: optimizer must be a lucid.optim optimizer, got %s", fname, describe(o))
  end
  return o
end

-- The common part of _LRScheduler.__init__: initial_lr, base_lrs, and the first step.
function LRScheduler:_init(fname, optimizer, last_epoch)
  self.optimizer = optimizer
  last_epoch = check_int(fname, "last_epoch", last_epoch == nil and -1 or last_epoch, -1)
  if last_epoch == -1 then
    for _, g in ipairs(optimizer.param_groups) do
      if g.initial_lr == nil then g.initial_lr = g.lr end
    end
  else
    for i, g in ipairs(optimizer.param_groups) do
      if g.initial_lr == nil then
        fail("%s: param 'initial_lr' is not specified in param_groups[%d] when resuming an optimizer", fname, i)
      end
    end
  end
  self.base_lrs = {}
  for i, g in ipairs(optimizer.param_groups) do self.base_lrs[i] = g.initial_lr end
  self.last_epoch = last_epoch
  self._step_count = 0
  self:step()
end

function LRScheduler:_group_lrs()
  local r = {}
  for i, g in ipairs(self.optimizer.param_groups) do r[i] = g.lr end
  return r
end

-- step(): the next epoch's lrs. step(epoch) (deprecated in PyTorch) jumps to `epoch` using
-- the closed form where the scheduler has one.
function LRScheduler:step(epoch)
  self._step_count = self._step_count + 1
  local values
  if epoch == nil then
    self.last_epoch = self.last_epoch + 1
    values = self:get_lr()
  else
    self.last_epoch = check_int("lr_scheduler." .. (getmetatable(self).__name or "?") .. ":step", "epoch", epoch)
    values = self._closed_form and self:_closed_form() or self:get_lr()
  end
  for i, g in ipairs(self.optimizer.param_groups) do g.lr = values[i] end
  self._last_lr = self:_group_lrs()
end

function LRScheduler:get_last_lr()
  local r = {}
  for i, v in ipairs(self._last_lr or self:_group_lrs()) do r[i] = v end
  return r
end

-- Everything but the optimizer (and functions): numbers, booleans, strings and tables of them.
function LRScheduler:state_dict()
  local sd = {}
  for k, v in pairs(self) do
    if k ~= "optimizer" and type(v) ~= "function" and k ~= "lr_lambdas" then sd[k] = deepcopy(v) end
  end
  return sd
end

function LRScheduler:load_state_dict(sd)
  if type(sd) ~= "table" then fail("load_state_dict: expected a table, got %s", describe(sd)) end
  for k, v in pairs(sd) do
    if k ~= "optimizer" then self[k] = deepcopy(v) end
  end
end

-- StepLR(optimizer, step_size, gamma = 0.1, last_epoch = -1)
local StepLR = scheduler_class("StepLR")
function StepLR.new(...)
  local f = "lr_scheduler.StepLR"
  local a = args(f, {"optimizer", "step_size", "gamma", "last_epoch"}, ...)
  local self = setmetatable({}, StepLR)
  check_optimizer(f, a.optimizer)
  self.step_size = check_int(f, "step_size", a.step_size, 1)
  self.gamma = check_number(f, "gamma", a.gamma == nil and 0.1 or a.gamma)
  self:_init(f, a.optimizer, a.last_epoch)
  return self
end
function StepLR:get_lr()
  local lrs = self:_group_lrs()
  if self.last_epoch == 0 or self.last_epoch % self.step_size ~= 0 then return lrs end
  for i = 1, #lrs do lrs[i] = lrs[i] * self.gamma end
  return lrs
end
function StepLR:_closed_form()
  local r = {}
  for i, b in ipairs(self.base_lrs) do r[i] = b * self.gamma ^ (self.last_epoch // self.step_size) end
  return r
end

-- MultiStepLR(optimizer, milestones, gamma = 0.1, last_epoch = -1); a milestone listed twice
-- multiplies by gamma twice (PyTorch's Counter).
local MultiStepLR = scheduler_class("MultiStepLR")
function MultiStepLR.new(...)
  local f = "lr_scheduler.MultiStepLR"
  local a = args(f, {"optimizer", "milestones", "gamma", "last_epoch"}, ...)
  local self = setmetatable({}, MultiStepLR)
  check_optimizer(f, a.optimizer)
  local ms = a.milestones
  if type(ms) ~= "table" or is_tensor(ms) then fail("%s: milestones must be a list of integers, got %s", f, describe(ms)) end
  self.milestones = {}
  for i = 1, #ms do self.milestones[i] = check_int(f, "milestones[" .. i .. "]", ms[i]) end
  table.sort(self.milestones)
  self.gamma = check_number(f, "gamma", a.gamma == nil and 0.1 or a.gamma)
  self:_init(f, a.optimizer, a.last_epoch)
  return self
end
function MultiStepLR:get_lr()
  local lrs = self:_group_lrs()
  local count = 0
  for _, m in ipairs(self.milestones) do
    if m == self.last_epoch then count = count + 1 end
  end
  if count == 0 then return lrs end
  for i = 1, #lrs do lrs[i] = lrs[i] * self.gamma ^ count end
  return lrs
end
function MultiStepLR:_closed_form()
  local passed = 0
  for _, m in ipairs(self.milestones) do
    if m <= self.last_epoch then passed = passed + 1 end
  end
  local r = {}
  for i, b in ipairs(self.base_lrs) do r[i] = b * self.gamma ^ passed end
  return r
end

-- ExponentialLR(optimizer, gamma, last_epoch = -1)
local ExponentialLR = scheduler_class("ExponentialLR")
function ExponentialLR.new(...)
  local f = "lr_scheduler.ExponentialLR"
  local a = args(f, {"optimizer", "gamma", "last_epoch"}, ...)
  local self = setmetatable({}, ExponentialLR)
  check_optimizer(f, a.optimizer)
  if a.gamma == nil then fail("%s: missing argument gamma", f) end
  self.gamma = check_number(f, "gamma", a.gamma)
  self:_init(f, a.optimizer, a.last_epoch)
  return self
end
function ExponentialLR:get_lr()
  local lrs = self:_group_lrs()
  if self.last_epoch == 0 then return lrs end
  for i = 1, #lrs do lrs[i] = lrs[i] * self.gamma end
  return lrs
end
function ExponentialLR:_closed_form()
  local r = {}
  for i, b in ipairs(self.base_lrs) do r[i] = b * self.gamma ^ self.last_epoch end
  return r
end

-- CosineAnnealingLR(optimizer, T_max, eta_min = 0, last_epoch = -1): PyTorch's recursive
-- form (so lr changes made by others are kept), which also restarts after 2 * T_max.
local CosineAnnealingLR = scheduler_class("CosineAnnealingLR")
function CosineAnnealingLR.new(...)
  local f = "lr_scheduler.CosineAnnealingLR"
  local a = args(f, {"optimizer", "T_max", "eta_min", "last_epoch"}, ...)
  local self = setmetatable({}, CosineAnnealingLR)
  check_optimizer(f, a.optimizer)
  self.T_max = check_int(f, "T_max", a.T_max, 1)
  self.eta_min = check_number(f, "eta_min", a.eta_min == nil and 0 or a.eta_min)
  self:_init(f, a.optimizer, a.last_epoch)
  return self
end
function CosineAnnealingLR:get_lr()
  local e, T, eta, pi, cos = self.last_epoch, self.T_max, self.eta_min, math.pi, math.cos
  local groups, r = self.optimizer.param_groups, {}
  if e == 0 then return self:_group_lrs() end
  for i, g in ipairs(groups) do
    local base = self.base_lrs[i]
    if self._step_count == 1 and e > 0 then
      r[i] = eta + (base - eta) * (1 + cos(e * pi / T)) / 2
    elseif (e - 1 - T) % (2 * T) == 0 then
      r[i] = g.lr + (base - eta) * (1 - cos(pi / T)) / 2
    else
      r[i] = (1 + cos(pi * e / T)) / (1 + cos(pi * (e - 1) / T)) * (g.lr - eta) + eta
    end
  end
  return r
end
function CosineAnnealingLR:_closed_form()
  local r = {}
  for i, b in ipairs(self.base_lrs) do
    r[i] = self.eta_min + (b - self.eta_min) * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
  end
  return r
end

-- LinearLR(optimizer, start_factor = 1/3, end_factor = 1, total_iters = 5, last_epoch = -1)
local LinearLR = scheduler_class("LinearLR")
function LinearLR.new(...)
  local f = "lr_scheduler.LinearLR"
  local a = args(f, {"optimizer", "start_factor", "end_factor", "total_iters", "last_epoch"}, ...)
  local self = setmetatable({}, LinearLR)
  check_optimizer(f, a.optimizer)
  self.start_factor = check_number(f, "start_factor", a.start_factor == nil and 1.0 / 3 or a.start_factor)
  self.end_factor = check_number(f, "end_factor", a.end_factor == nil and 1.0 or a.end_factor)
  if self.start_factor > 1 or self.start_factor <= 0 then
    fail("%s: start_factor must be > 0 and <= 1, got %s", f, tostring(self.start_factor))
  end
  if self.end_factor > 1 or self.end_factor < 0 then
    fail("%s: end_factor must be between 0 and 1, got %s", f, tostring(self.end_factor))
  end
  self.total_iters = check_int(f, "total_iters", a.total_iters == nil and 5 or a.total_iters, 1)
  self:_init(f, a.optimizer, a.last_epoch)
  return self
end
function LinearLR:get_lr()
  local lrs = self:_group_lrs()
  local e, s, t, n = self.last_epoch, self.start_factor, self.end_factor, self.total_iters
  if e == 0 then
    for i = 1, #lrs do lrs[i] = lrs[i] * s end
    return lrs
  end
  if e > n then return lrs end
  for i = 1, #lrs do lrs[i] = lrs[i] * (1.0 + (t - s) / (n * s + (e - 1) * (t - s))) end
  return lrs
end
function LinearLR:_closed_form()
  local r = {}
  for i, b in ipairs(self.base_lrs) do
    r[i] = b * (self.start_factor + (self.end_factor - self.start_factor) * math.min(self.total_iters, self.last_epoch) / self.total_iters)
  end
  return r
end

-- LambdaLR(optimizer, lr_lambda, last_epoch = -1): lr = initial lr * lr_lambda(epoch); one
-- function for all groups or a list with one per group. state_dict leaves the functions out.
local LambdaLR = scheduler_class("LambdaLR")
function LambdaLR.new(...)
  local f = "lr_scheduler.LambdaLR"
  local a = args(f, {"optimizer", "lr_lambda", "last_epoch"}, ...)
  local self = setmetatable({}, LambdaLR)
  check_optimizer(f, a.optimizer)
  local fn, n = a.lr_lambda, #a.optimizer.param_groups
  local lambdas = {}
  if type(fn) == "table" and getmetatable(fn) == nil then
    if #fn ~= n then fail("%s: expected %d lr_lambdas (one per group), got %d", f, n, #fn) end
    for i = 1, n do lambdas[i] = fn[i] end
  else
    for i = 1, n do lambdas[i] = fn end
  end
  for i = 1, n do
    local l = lambdas[i]
    local mt = getmetatable(l)
    if type(l) ~= "function" and not (type(mt) == "table" and mt.__call) then
      fail("%s: lr_lambda must be a function or a list of functions, got %s", f, describe(l))
    end
  end
  self.lr_lambdas = lambdas
  self:_init(f, a.optimizer, a.last_epoch)
  return self
end
function LambdaLR:get_lr()
  local r = {}
  for i, b in ipairs(self.base_lrs) do r[i] = b * self.lr_lambdas[i](self.last_epoch) end
  return r
end

-- OneCycleLR(optimizer, max_lr, total_steps | epochs + steps_per_epoch, pct_start = 0.3,
-- anneal_strategy = "cos", cycle_momentum = true, base_momentum = 0.85, max_momentum = 0.95,
-- div_factor = 25, final_div_factor = 1e4, three_phase = false, last_epoch = -1)
local OneCycleLR = scheduler_class("OneCycleLR")
function OneCycleLR.new(...)
  local f = "lr_scheduler.OneCycleLR"
  local a = args(f, {"optimizer", "max_lr", "total_steps", "epochs", "steps_per_epoch", "pct_start",
    "anneal_strategy", "cycle_momentum", "base_momentum", "max_momentum", "div_factor",
    "final_div_factor", "three_phase", "last_epoch"}, ...)
  local self = setmetatable({}, OneCycleLR)
  local opt = check_optimizer(f, a.optimizer)
  local groups = opt.param_groups
  if a.total_steps == nil and a.epochs == nil and a.steps_per_epoch == nil then
    fail("%s: you must define either total_steps OR (epochs AND steps_per_epoch)", f)
  elseif a.total_steps ~= nil then
    self.total_steps = check_int(f, "total_steps", a.total_steps, 1)
  else
    local e = check_int(f, "epochs", a.epochs, 1)
    local s = check_int(f, "steps_per_epoch", a.steps_per_epoch, 1)
    self.total_steps = e * s
  end
  local pct = check_number(f, "pct_start", a.pct_start == nil and 0.3 or a.pct_start)
  if pct < 0 or pct > 1 then fail("%s: pct_start must be between 0 and 1, got %s", f, tostring(pct)) end
  local three = a.three_phase
  if three == nil then three = false end
  check_bool(f, "three_phase", three)
  local T = self.total_steps
  if three then
    self._schedule_phases = {
      {end_step = pct * T - 1, start_lr = "initial_lr", end_lr = "max_lr", start_momentum = "max_momentum", end_momentum = "base_momentum"},
      {end_step = 2 * pct * T - 2, start_lr = "max_lr", end_lr = "initial_lr", start_momentum = "base_momentum", end_momentum = "max_momentum"},
      {end_step = T - 1, start_lr = "initial_lr", end_lr = "min_lr", start_momentum = "max_momentum", end_momentum = "max_momentum"},
    }
  else
    self._schedule_phases = {
      {end_step = pct * T - 1, start_lr = "initial_lr", end_lr = "max_lr", start_momentum = "max_momentum", end_momentum = "base_momentum"},
      {end_step = T - 1, start_lr = "max_lr", end_lr = "min_lr", start_momentum = "base_momentum", end_momentum = "max_momentum"},
    }
  end
  local strategy = a.anneal_strategy == nil and "cos" or a.anneal_strategy
  if strategy ~= "cos" and strategy ~= "linear" then
    fail("%s: anneal_strategy must be \"cos\" or \"linear\", got %s", f, describe(strategy))
  end
  self.anneal_strategy = strategy
  local function per_group(name, v, default)
    if v == nil then v = default end
    local r = {}
    if type(v) == "table" and not is_tensor(v) then
      if #v ~= #groups then fail("%s: expected %d values for %s, got %d", f, #groups, name, #v) end
      for i = 1, #groups do r[i] = check_number(f, name .. "[" .. i .. "]", v[i]) end
    else
      check_number(f, name, v)
      for i = 1, #groups do r[i] = v end
    end
    return r
  end
  if a.max_lr == nil then fail("%s: missing argument max_lr", f) end
  local max_lrs = per_group("max_lr", a.max_lr)
  local div = check_number(f, "div_factor", a.div_factor == nil and 25.0 or a.div_factor)
  local final_div = check_number(f, "final_div_factor", a.final_div_factor == nil and 1e4 or a.final_div_factor)
  local last_epoch = a.last_epoch == nil and -1 or a.last_epoch
  if last_epoch == -1 then
    for i, g in ipairs(groups) do
      g.initial_lr = max_lrs[i] / div
      g.max_lr = max_lrs[i]
      g.min_lr = g.initial_lr / final_div
    end
  end
  local cycle = a.cycle_momentum
  if cycle == nil then cycle = true end
  self.cycle_momentum = check_bool(f, "cycle_momentum", cycle)
  if cycle then
    if opt.defaults.momentum == nil and opt.defaults.betas == nil then
      fail("%s: optimizer must support momentum with the cycle_momentum option enabled (%s has neither momentum nor betas)", f, opt.kind)
    end
    self.use_beta1 = opt.defaults.betas ~= nil
    local maxm = per_group("max_momentum", a.max_momentum, 0.95)
    local basem = per_group("base_momentum", a.base_momentum, 0.85)
    if last_epoch == -1 then
      for i, g in ipairs(groups) do
        if self.use_beta1 then g.betas = {maxm[i], g.betas[2]} else g.momentum = maxm[i] end
        g.max_momentum = maxm[i]
        g.base_momentum = basem[i]
      end
    end
  end
  self:_init(f, opt, last_epoch)
  return self
end
function OneCycleLR:_anneal(start, stop, pct)
  if self.anneal_strategy == "cos" then
    local cos_out = math.cos(math.pi * pct) + 1
    return stop + (start - stop) / 2.0 * cos_out
  end
  return (stop - start) * pct + start
end
function OneCycleLR:get_lr()
  local step_num = self.last_epoch
  if step_num > self.total_steps then
    fail("lr_scheduler.OneCycleLR:step: tried to step %d times; the specified number of total steps is %d",
      step_num + 1, self.total_steps)
  end
  local lrs, phases = {}, self._schedule_phases
  for gi, g in ipairs(self.optimizer.param_groups) do
    local start_step, lr, mom = 0, nil, nil
    for i, phase in ipairs(phases) do
      local end_step = phase.end_step
      if step_num <= end_step or i == #phases then
        local pct = (step_num - start_step) / (end_step - start_step)
        lr = self:_anneal(g[phase.start_lr], g[phase.end_lr], pct)
        if self.cycle_momentum then mom = self:_anneal(g[phase.start_momentum], g[phase.end_momentum], pct) end
        break
      end
      start_step = phase.end_step
    end
    lrs[gi] = lr
    if self.cycle_momentum then
      if self.use_beta1 then g.betas = {mom, g.betas[2]} else g.momentum = mom end
    end
  end
  return lrs
end

-- ReduceLROnPlateau(optimizer, mode = "min", factor = 0.1, patience = 10, threshold = 1e-4,
-- threshold_mode = "rel", cooldown = 0, min_lr = 0 (or one per group), eps = 1e-8);
-- sched:step(metric) with a number or a one-element tensor.
local ReduceLROnPlateau = scheduler_class("ReduceLROnPlateau")
function ReduceLROnPlateau.new(...)
  local f = "lr_scheduler.ReduceLROnPlateau"
  local a = args(f, {"optimizer", "mode", "factor", "patience", "threshold", "threshold_mode", "cooldown",
    "min_lr", "eps"}, ...)
  local self = setmetatable({}, ReduceLROnPlateau)
  local opt = check_optimizer(f, a.optimizer)
  self.optimizer = opt
  self.factor = check_number(f, "factor", a.factor == nil and 0.1 or a.factor)
  if self.factor >= 1.0 then fail("%s: factor should be < 1.0, got %s", f, tostring(self.factor)) end
  local min_lr = a.min_lr == nil and 0 or a.min_lr
  self.min_lrs = {}
  if type(min_lr) == "table" and not is_tensor(min_lr) then
    if #min_lr ~= #opt.param_groups then fail("%s: expected %d min_lrs, got %d", f, #opt.param_groups, #min_lr) end
    for i = 1, #min_lr do self.min_lrs[i] = check_number(f, "min_lr[" .. i .. "]", min_lr[i]) end
  else
    check_number(f, "min_lr", min_lr)
    for i = 1, #opt.param_groups do self.min_lrs[i] = min_lr end
  end
  self.patience = check_int(f, "patience", a.patience == nil and 10 or a.patience, 0)
  self.cooldown = check_int(f, "cooldown", a.cooldown == nil and 0 or a.cooldown, 0)
  self.cooldown_counter = 0
  self.mode = a.mode == nil and "min" or a.mode
  self.threshold = check_number(f, "threshold", a.threshold == nil and 1e-4 or a.threshold)
  self.threshold_mode = a.threshold_mode == nil and "rel" or a.threshold_mode
  self.eps = check_number(f, "eps", a.eps == nil and 1e-8 or a.eps)
  self.last_epoch = 0
  self:_init_is_better(f)
  self:_reset()
  return self
end
function ReduceLROnPlateau:_init_is_better(f)
  if self.mode ~= "min" and self.mode ~= "max" then
    fail("%s: mode must be \"min\" or \"max\", got %s", f, describe(self.mode))
  end
  if self.threshold_mode ~= "rel" and self.threshold_mode ~= "abs" then
    fail("%s: threshold_mode must be \"rel\" or \"abs\", got %s", f, describe(self.threshold_mode))
  end
  self.mode_worse = self.mode == "min" and math.huge or -math.huge
end
function ReduceLROnPlateau:_reset()
  self.best = self.mode_worse
  self.cooldown_counter = 0
  self.num_bad_epochs = 0
end
function ReduceLROnPlateau:is_better(a, best)
  if self.mode == "min" and self.threshold_mode == "rel" then return a < best * (1.0 - self.threshold)
  elseif self.mode == "min" then return a < best - self.threshold
  elseif self.threshold_mode == "rel" then return a > best * (self.threshold + 1.0) end
  return a > best + self.threshold
end
function ReduceLROnPlateau:step(metrics, epoch)
  local f = "lr_scheduler.ReduceLROnPlateau:step"
  if is_tensor(metrics) then metrics = metrics:item() end
  if type(metrics) ~= "number" then fail("%s: metrics must be a number or a one-element tensor, got %s", f, describe(metrics)) end
  local current = metrics + 0.0
  if epoch == nil then epoch = self.last_epoch + 1 else epoch = check_int(f, "epoch", epoch) end
  self.last_epoch = epoch
  if self:is_better(current, self.best) then
    self.best = current
    self.num_bad_epochs = 0
  else
    self.num_bad_epochs = self.num_bad_epochs + 1
  end
  if self.cooldown_counter > 0 then
    self.cooldown_counter = self.cooldown_counter - 1
    self.num_bad_epochs = 0
  end
  if self.num_bad_epochs > self.patience then
    for i, g in ipairs(self.optimizer.param_groups) do
      local old = g.lr + 0.0
      local new = math.max(old * self.factor, self.min_lrs[i])
      if old - new > self.eps then g.lr = new end
    end
    self.cooldown_counter = self.cooldown
    self.num_bad_epochs = 0
  end
  self._last_lr = self:_group_lrs()
end
function ReduceLROnPlateau:load_state_dict(sd)
  LRScheduler.load_state_dict(self, sd)
  self:_init_is_better("lr_scheduler.ReduceLROnPlateau:load_state_dict")
end

-- Class call syntax: optim.StepLR(opt, ...) == optim.lr_scheduler.StepLR.new(opt, ...)
for name, cls in pairs(lr_scheduler) do
  if cls ~= LRScheduler then
    setmetatable(cls, {__index = LRScheduler, __call = function(_, ...) return cls.new(...) end,
      __tostring = function() return "lr_scheduler." .. name end})
  end
end

return optim
