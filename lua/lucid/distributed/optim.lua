-- lucid.distributed.optim: ZeroRedundancyOptimizer, PyTorch's
-- torch.distributed.optim.ZeroRedundancyOptimizer (ZeRO stage 1) over lucid.distributed.
--   local ZeRO = lucid.distributed.optim.ZeroRedundancyOptimizer
--   local opt = ZeRO(model:parameters(), lucid.optim.Adam, {lr = 1e-3})
-- Every rank holds every parameter, but each parameter's optimizer state lives on one rank
-- only (its owner): step() updates the parameters this rank owns, then every rank receives the
-- others' updated parameters. With the same gradients on every rank (DistributedDataParallel)
-- the parameters are bit for bit those of the wrapped optimizer stepping everything on every
-- rank, at 1/world_size of its state memory and of its update work. docs/distributed.md.
local lucid = require "lucid"
local dist = require "lucid.distributed"
local A = require "lucid.args"
local fail, describe = A.fail, A.describe

local M = {}

local FNAME = "distributed.optim.ZeroRedundancyOptimizer"

local Z = {}
Z.__index = Z

local function deepcopy(v)
  if type(v) ~= "table" or lucid.is_tensor(v) then return v end
  local r = {}
  for k, x in pairs(v) do r[k] = deepcopy(x) end
  return r
end

-- Assigns the parameters of group gi (largest first, each to the rank owning the fewest
-- elements so far: PyTorch's rule) and records each one's owner, dtype and slot.
function Z:_partition(gi)
  local g = self.param_groups[gi]
  local order = {}
  for j = 1, #g.params do order[j] = j end
  table.sort(order, function(a, b)
    local na, nb = g.params[a]:numel(), g.params[b]:numel()
    if na ~= nb then return na > nb end
    return a < b
  end)
  local owned = {}
  for _, j in ipairs(order) do
    local p, best = g.params[j], 1
    for r = 2, self._world do
      if self._sizes[r] < self._sizes[best] then best = r end
    end
    self._sizes[best] = self._sizes[best] + p:numel()
    self._owner[p] = best
    if best == self._rank then owned[#owned + 1] = j end
  end
  table.sort(owned) -- in the group's order
  local list = {}
  for i, j in ipairs(owned) do list[i] = g.params[j] end
  return list
end

-- The group table handed to the local optimizer: the global group's options, these params.
local function local_group(g, params)
  local lg = {}
  for k, v in pairs(g) do
    if k ~= "params" then lg[k] = deepcopy(v) end
  end
  lg.params = params
  return lg
end

-- Adds the owned part of group gi to the local optimizer (creating it at the first one).
function Z:_add_local(gi, owned)
  if #owned == 0 then return end
  local lg = local_group(self.param_groups[gi], owned)
  if self._local then
    self._local:add_param_group(lg)
  else
    self._local = self._class({lg})
  end
  self._local_groups[#self._local_groups + 1] = gi
end

-- Moves every parameter into a flat buffer per dtype (PyTorch's parameters_as_bucket_view):
-- block r of the buffer holds the parameters rank r owns, blocks padded to one size (whole
-- cache lines), so that one in-place all_gather hands every rank every update. The buffers
-- come from zeros_shared: on one machine the gather copies straight from each owner's memory.
-- Each parameter keeps its identity (set_): the buffer becomes its data. Collective.
function Z:_build_buffers()
  local by_dtype, dtypes = {}, {}
  for _, g in ipairs(self.param_groups) do
    for _, p in ipairs(g.params) do
      local d = by_dtype[p.dtype]
      if not d then
        d = {}
        for r = 1, self._world do d[r] = {} end
        by_dtype[p.dtype] = d
        dtypes[#dtypes + 1] = p.dtype
      end
      local list = d[self._owner[p]]
      list[#list + 1] = p
    end
  end
  table.sort(dtypes) -- the same order on every rank
  local buffers = {}
  lucid.no_grad(function()
    for _, dt in ipairs(dtypes) do
      local line = dt == "float64" and 8 or dt == "float32" and 16 or 32 -- elements per 64 bytes
      local block = 0
      for r = 1, self._world do
        local n = 0
        for _, p in ipairs(by_dtype[dt][r]) do n = n + p:numel() end
        block = math.max(block, n)
      end
      block = (block + line - 1) // line * line
      local flat = dist.zeros_shared(self._world * block, {dtype = dt})
      for r = 1, self._world do
        local at = (r - 1) * block
        for _, p in ipairs(by_dtype[dt][r]) do
          local view = flat:narrow(1, at + 1, p:numel()):view(p.shape)
          view:copy_(p)
          p:set_(view)
          at = at + p:numel()
        end
      end
      buffers[#buffers + 1] = {flat = flat, mine = flat:narrow(1, (self._rank - 1) * block + 1, block),
        owned = by_dtype[dt]}
    end
  end)
  self._buffers = buffers
  self._viewing = self._share and self:_view_owners()
end

-- share_parameters: every rank's copy of a parameter becomes a view of its owner's (all on
-- this machine), so that nothing is exchanged. Decided by all ranks alike: any rank that
-- cannot (other machines, no shared memory) makes every rank keep its own copies.
function Z:_view_owners()
  local can = 1
  for _, b in ipairs(self._buffers) do
    if not dist.is_shared(b.flat) then can = 0 end
  end
  local views = {}
  if can == 1 then
    for _, b in ipairs(self._buffers) do
      for r = 1, self._world do
        for _, p in ipairs(r ~= self._rank and b.owned[r] or {}) do
          local ok, v = pcall(dist.shared_view, p, r)
          if not ok then can = 0 end
          views[#views + 1] = {p, v}
        end
      end
    end
  end
  if dist.all_reduce(lucid.tensor({can}, {dtype = "int32"}), "min")[1]:item() == 0 then return false end
  lucid.no_grad(function()
    for _, pv in ipairs(views) do pv[1]:set_(pv[2]) end
  end)
  return true
end

-- Every rank's parameters = their owners': one in-place all_gather per buffer, or with
-- share_parameters nothing at all (the caller's barriers order the reads and the writes).
function Z:_sync_params()
  if self._viewing then return end
  local works = {}
  for i, b in ipairs(self._buffers) do
    works[i] = dist.all_gather_into_tensor(b.flat, b.mine, {async_op = true})
  end
  for _, w in ipairs(works) do w:wait() end
end

-- ZeroRedundancyOptimizer(params, optimizer_class [, defaults]): params as any optimizer takes
-- them (a list of tensors or of groups); optimizer_class a lucid.optim constructor
-- (lucid.optim.Adam, ...); defaults its options, and this wrapper's share_parameters (false;
-- true: the ranks of a machine read each parameter from its owner's memory instead of
-- exchanging copies, so an in-place write to a parameter on one rank reaches every rank).
-- Collective: every rank passes parameters of the same shapes in the same order.
function M.ZeroRedundancyOptimizer(params, optimizer_class, defaults, ...)
  if select("#", ...) > 0 then
    fail("%s: expected (params, optimizer_class [, defaults]), got %d arguments", FNAME, 3 + select("#", ...))
  end
  if not dist.is_initialized() then
    fail("%s: lucid.distributed is not initialized (call lucid.distributed.init() first, in a "
      .. "process started by mpirun)", FNAME)
  end
  if type(optimizer_class) ~= "function" then
    fail("%s: argument 2 (optimizer_class) must be an optimizer constructor such as lucid.optim.Adam, got %s",
      FNAME, describe(optimizer_class))
  end
  if defaults ~= nil and (type(defaults) ~= "table" or lucid.is_tensor(defaults)) then
    fail("%s: argument 3 (defaults) must be a table of the optimizer's options, got %s", FNAME, describe(defaults))
  end
  -- this wrapper's own option, the rest goes to the optimizer
  local share = false
  if defaults and defaults.share_parameters ~= nil then
    share = A.bool_arg(FNAME, "share_parameters", defaults.share_parameters, false)
    defaults = deepcopy(defaults)
    defaults.share_parameters = nil
  end
  -- An optimizer over every parameter checks the arguments with the wrapped optimizer's own
  -- rules and messages, completes the groups with its defaults and keeps them (the groups
  -- schedulers and users change). It is never stepped, so it holds no state.
  local all = optimizer_class(params, defaults or {})
  if type(all) ~= "table" or type(all.param_groups) ~= "table" then
    fail("%s: argument 2 (optimizer_class) did not return an optimizer", FNAME)
  end
  local self = setmetatable({
    kind = all.kind, defaults = all.defaults, param_groups = all.param_groups,
    _all = all, _class = optimizer_class, _rank = dist.rank(), _world = dist.world_size(),
    _sizes = {}, _owner = {}, _local = nil, _local_groups = {}, _counts = {},
    _consolidated = nil, _share = share,
  }, Z)
  for r = 1, self._world do self._sizes[r] = 0 end
  for gi, g in ipairs(self.param_groups) do
    self._counts[gi] = #g.params
    self:_add_local(gi, self:_partition(gi))
  end
  self:_build_buffers()
  return self
end

-- add_param_group(group): as the wrapped optimizer's; collective.
function Z:add_param_group(g)
  self._all:add_param_group(g)
  local gi = #self.param_groups
  self._counts[gi] = #self.param_groups[gi].params
  self:_add_local(gi, self:_partition(gi))
  self:_build_buffers()
end

-- step([closure]): updates the parameters this rank owns, then hands every rank the others'.
-- Collective. The groups' current options (a scheduler's lr) reach the local optimizer first.
function Z:step(closure)
  local loss = lucid.optim._begin_step(self, FNAME .. ":step", closure)
  local groups = self.param_groups
  -- sharing parameters, every rank must be done reading them (forward, backward) before an
  -- owner writes, and every owner done writing before any rank reads on
  if self._viewing then dist.barrier() end
  if self._local then
    for li, gi in ipairs(self._local_groups) do
      local lg, g = self._local.param_groups[li], groups[gi]
      for k in pairs(lg) do
        if k ~= "params" and g[k] == nil then lg[k] = nil end
      end
      for k, v in pairs(g) do
        if k ~= "params" then lg[k] = deepcopy(v) end
      end
    end
    self._local:step()
  end
  self:_sync_params()
  if self._viewing then dist.barrier() end
  self._consolidated = nil
  return loss
end

-- shares_parameters() -> whether this rank's parameters are views of their owners' (the
-- share_parameters option, where every rank is on this machine with shared memory)
function Z:shares_parameters() return self._viewing == true end

-- zero_grad([set_to_none = true]): every parameter's gradient, as the wrapped optimizer's.
function Z:zero_grad(...) return self._all:zero_grad(...) end

-- owned() -> the parameters whose state this rank holds, in group order, and their indices
-- (1-based over all groups, as in state dicts).
function Z:owned()
  local list, idx, i = {}, {}, 0
  for _, g in ipairs(self.param_groups) do
    for _, p in ipairs(g.params) do
      i = i + 1
      if self._owner[p] == self._rank then list[#list + 1], idx[#idx + 1] = p, i end
    end
  end
  return list, idx
end

-- The global (1-based, over all groups) index of every parameter, and its local index on its
-- owner (the local optimizer's order: its groups in global order, parameters in group order).
function Z:_indices()
  local out, nlocal = {}, 0
  local owned_groups = {}
  for _, gi in ipairs(self._local_groups) do owned_groups[gi] = true end
  local i = 0
  for gi, g in ipairs(self.param_groups) do
    for _, p in ipairs(g.params) do
      i = i + 1
      local li
      if self._owner[p] == self._rank and owned_groups[gi] then
        nlocal = nlocal + 1
        li = nlocal
      end
      out[i] = {p = p, owner = self._owner[p], li = li}
    end
  end
  return out
end

-- A state entry sent from its owner: the names and kinds of its fields (a tensor's with its
-- dtype and shape) as bytes, its numbers, then its tensors.
local function send_state(st, owner)
  local header, nums, tensors = {}, {}, {}
  if st then
    local keys = {}
    for k in pairs(st) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do
      local v = st[k]
      if lucid.is_tensor(v) then
        header[#header + 1] = k .. "=t" .. v.dtype .. ":" .. table.concat(v.shape, ",")
        tensors[#tensors + 1] = v:contiguous()
      elseif type(v) == "number" then
        header[#header + 1] = k .. "=n"
        nums[#nums + 1] = v
      else
        header[#header + 1] = k .. "=b" .. (v and "1" or "0")
      end
    end
  end
  local text = st and table.concat(header, ";") or "-"
  local len = lucid.tensor({#text}, {dtype = "int64"})
  dist.broadcast(len, owner)
  local n = len[1]:item()
  local bytes = lucid.zeros({math.max(n, 1)}, {dtype = "int64"})
  if st then
    local codes = {text:byte(1, -1)}
    bytes:copy_(lucid.tensor(#codes > 0 and codes or {0}, {dtype = "int64"}))
  end
  dist.broadcast(bytes, owner)
  local codes = bytes:tolist()
  local chars = {}
  for i = 1, n do chars[i] = string.char(codes[i]) end
  text = table.concat(chars)
  if text == "-" then return nil end
  local fields = {}
  for field in text:gmatch("[^;]+") do fields[#fields + 1] = field end
  local count = 0
  for _, f in ipairs(fields) do
    if f:sub(-2) == "=n" then count = count + 1 end
  end
  local numt = lucid.zeros({math.max(count, 1)}, {dtype = "float64"})
  if #nums > 0 then numt:narrow(1, 1, #nums):copy_(lucid.tensor(nums, {dtype = "float64"})) end
  dist.broadcast(numt, owner)
  local numl = numt:tolist()
  local out, ni, ti = {}, 0, 0
  for _, f in ipairs(fields) do
    local k, kind, rest = f:match("^(.*)=(%a)(.*)$")
    if kind == "t" then
      ti = ti + 1
      local dtype, dims = rest:match("^([^:]*):(.*)$")
      local shape = {}
      for d in dims:gmatch("%d+") do shape[#shape + 1] = tonumber(d) end
      local t = tensors[ti] or lucid.empty(shape, {dtype = dtype})
      dist.broadcast(t, owner)
      out[k] = t:clone()
    elseif kind == "n" then
      ni = ni + 1
      local v = numl[ni]
      out[k] = math.tointeger(v) or v
    else
      out[k] = f:sub(-1) == "1"
    end
  end
  return out
end

-- consolidate_state_dict([to = 1]): gathers every rank's optimizer state on rank `to`, whose
-- state_dict() then returns it. Collective.
function Z:consolidate_state_dict(to)
  local fname = FNAME .. ":consolidate_state_dict"
  to = to == nil and 1 or A.int_arg(fname, "to", to, 1)
  if to > self._world then fail("%s: to must be a rank in 1..%d, got %d", fname, self._world, to) end
  local sd = self._all:state_dict() -- the groups, with global indices; no state of its own
  local state = {}
  lucid.no_grad(function()
    for i, e in ipairs(self:_indices()) do
      local st = e.owner == self._rank and e.li and self._local:state_of(e.li) or nil
      local got = send_state(st, e.owner)
      if got and self._rank == to then state[i] = got end
    end
  end)
  sd.state = state
  self._consolidated = self._rank == to and sd or false
  self._consolidated_on = to
end

-- state_dict(): on the rank consolidate_state_dict gathered to, the state dict the wrapped
-- optimizer would give over every parameter (loadable into either).
function Z:state_dict()
  local fname = FNAME .. ":state_dict"
  if self._consolidated == nil then
    fail("%s: call consolidate_state_dict() on every rank first (after the last step)", fname)
  end
  if self._consolidated == false then
    fail("%s: the state was consolidated on rank %d, not on this rank (%d)", fname, self._consolidated_on, self._rank)
  end
  return self._consolidated
end

-- load_state_dict(sd): sd as state_dict() gives it (or the wrapped optimizer's, over the same
-- parameters); every rank loads the whole dict and keeps the state of what it owns.
function Z:load_state_dict(sd)
  local all = self._all
  -- checked in full by the wrapped optimizer's rules, which also set the groups' options;
  -- then its copy of the state is dropped again
  all:load_state_dict(sd)
  local empty = {param_groups = sd.param_groups, state = {}}
  all:load_state_dict(empty)
  if not self._local then return end
  -- the saved index of each global parameter (the order the groups list them)
  local saved_at, flat = {}, 0
  for gi, sg in ipairs(sd.param_groups) do
    local sp = lucid.is_tensor(sg.params) and sg.params:tolist() or sg.params
    for j = 1, #self.param_groups[gi].params do
      flat = flat + 1
      saved_at[flat] = tonumber(sp[j])
    end
  end
  local lsd = {param_groups = {}, state = {}}
  local li_count = 0
  for li, gi in ipairs(self._local_groups) do
    local lg = local_group(self.param_groups[gi], nil)
    local ids = {}
    for _ = 1, #self._local.param_groups[li].params do
      li_count = li_count + 1
      ids[#ids + 1] = li_count
    end
    lg.params = ids
    lsd.param_groups[li] = lg
  end
  local state = sd.state or {}
  for i, e in ipairs(self:_indices()) do
    if e.li then
      local k = saved_at[i]
      local st = state[k]
      if st == nil then st = state[tostring(k)] end
      lsd.state[e.li] = st
    end
  end
  self._local:load_state_dict(lsd)
  self._consolidated = nil
end

function Z:__tostring()
  return ("ZeroRedundancyOptimizer (%s over %d ranks; this rank owns %d parameters)\n%s"):format(
    self.kind, self._world, #self:owned(), tostring(self._all))
end

return M
