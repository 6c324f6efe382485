-- lucid.optim against PyTorch 1.13 (spec/fixtures/optim.lua, written by tools/fixtures/optim.py):
-- parameters after each of 5 steps with fixed gradients, final optimizer state, parameter
-- groups, and the lr sequences of the schedulers; plus the API: errors, param_groups, state
-- dicts (round trip into a fresh optimizer gives identical next steps).
local lucid = require "lucid"
local H = require "helpers"
local optim = lucid.optim

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local F = dofile(here .. "fixtures/optim.lua")

-- float32: PyTorch computes op by op (sometimes fused), lucid in one fused loop: a few ulps
-- per step; float64: near exact.
local TOL = {float32 = 5e-7, float64 = 1e-14}

local function max_rel(t, expected)
  local got = t:double()
  local e = lucid.Tensor(expected, {dtype = "float64"})
  local d = ((got - e):abs() / (e:abs() + 1)):max():item()
  return d
end

local function params_from_start(dtype)
  local ps = {}
  for i, v in ipairs(F.start) do ps[i] = lucid.Tensor(v, {dtype = dtype, requires_grad = true}) end
  return ps
end

local function set_grads(ps, s, dtype)
  for j, p in ipairs(ps) do
    local g = F.grads[s][j]
    p.grad = g and lucid.Tensor(g, {dtype = dtype}) or nil
  end
end

-- Runs case c (kind, options or groups) and checks every step and the final state.
local function check_case(c)
  local dtype = c.dtype
  local ps = params_from_start(dtype)
  local opt
  if c.groups then
    local groups = {}
    for i, g in ipairs(c.groups) do
      local ng = {}
      for k, v in pairs(g) do ng[k] = v end
      ng.params = {}
      for j, idx in ipairs(g.params) do ng.params[j] = ps[idx] end
      groups[i] = ng
    end
    opt = optim[c.kind](groups, c.options)
  else
    opt = optim[c.kind](ps, c.options)
  end
  for s = 1, #F.grads do
    set_grads(ps, s, dtype)
    opt:step()
    for j, p in ipairs(ps) do
      local err = max_rel(p, c.after[s][j])
      assert(err <= TOL[dtype], ("%s: step %d, parameter %d: relative error %g"):format(c.name, s, j, err))
    end
  end
  -- the final state: step counts and buffers
  local sd = opt:state_dict()
  for j = 1, #ps do
    local want, got = c.state[j], sd.state[j]
    assert(got, c.name .. ": no state for parameter " .. j)
    for k, v in pairs(want) do
      if k == "step" then
        assert.are.equal(v, got.step, c.name .. ": step of parameter " .. j)
      else
        assert(got[k], c.name .. ": missing state " .. k)
        local err = max_rel(got[k], v)
        assert(err <= 10 * TOL[dtype], ("%s: state %s of parameter %d: relative error %g"):format(c.name, k, j, err))
      end
    end
    for k in pairs(got) do assert(want[k] ~= nil, c.name .. ": unexpected state " .. k) end
  end
  return opt, ps
end

describe("optimizers against PyTorch", function()
  for _, c in ipairs(F.optimizers) do
    it(c.name, function() check_case(c) end)
  end
  for _, c in ipairs(F.groups) do
    it(c.name .. " (per-group options)", function() check_case(c) end)
  end

  it("the parameters' versions are bumped and they stay leaves that require grad", function()
    local ps = params_from_start("float32")
    local y = (ps[1] * ps[1]):sum() -- saves ps[1] for backward
    local opt = optim.Adam(ps)
    set_grads(ps, 1, "float32")
    opt:step()
    assert.is_true(ps[1].requires_grad and ps[1].is_leaf)
    assert.is_nil(ps[1].grad_fn)
    -- the step is an in-place change backward notices
    H.raises("modified", function() y:backward() end)
  end)
end)

local function lambdas() return {function(e) return 0.95 ^ e end, function(e) return 1 / (e + 1) end} end

describe("lr schedulers against PyTorch", function()
  for _, c in ipairs(F.schedulers) do
    it(c.name, function()
      local groups = {}
      for i, lr in ipairs(c.group_lrs) do
        groups[i] = {params = {lucid.zeros(2, {requires_grad = true})}, lr = lr}
      end
      local opt
      if c.name == "onecycle_adam" then opt = optim.Adam(groups, {lr = c.group_lrs[1]})
      elseif c.name:find("onecycle") then opt = optim.SGD(groups, {lr = c.group_lrs[1], momentum = 0.9})
      else opt = optim.SGD(groups, {lr = c.group_lrs[1]}) end
      local options = {}
      for k, v in pairs(c.options) do options[k] = v end
      if c.ctor == "LambdaLR" then options.lr_lambda = lambdas() end
      local sched = optim.lr_scheduler[c.ctor](opt, options)
      local function check(s)
        local lrs = sched:get_last_lr()
        for g = 1, #c.group_lrs do
          local want, got = c.lrs[s][g], lrs[g]
          assert(math.abs(got - want) <= 1e-12 * math.abs(want) + 1e-15,
            ("%s: step %d group %d: lr %.17g, expected %.17g"):format(c.name, s - 1, g, got, want))
          assert.are.equal(got, opt.param_groups[g].lr)
          if c.momentum then
            local pg = opt.param_groups[g]
            local m = pg.betas and pg.betas[1] or pg.momentum
            assert(math.abs(m - c.momentum[s][g]) <= 1e-12,
              ("%s: step %d group %d: momentum %.17g, expected %.17g"):format(c.name, s - 1, g, m, c.momentum[s][g]))
          end
        end
      end
      if c.ctor ~= "ReduceLROnPlateau" then check(1) end
      for s = 1, #c.lrs - 1 do
        opt:step()
        if c.metrics then sched:step(c.metrics[s]) else sched:step() end
        check(s + 1)
      end
    end)
  end

  it("a scheduler's state_dict resumes the same sequence", function()
    local function make()
      local opt = optim.SGD({lucid.zeros(2, {requires_grad = true})}, {lr = 0.1, momentum = 0.9})
      return opt, optim.lr_scheduler.OneCycleLR(opt, {max_lr = 1.0, total_steps = 30})
    end
    local o1, s1 = make()
    for _ = 1, 7 do o1:step(); s1:step() end
    local osd, ssd = o1:state_dict(), s1:state_dict()
    for _, v in pairs(ssd) do assert(type(v) ~= "function") end
    local o2, s2 = make()
    o2:load_state_dict(osd)
    s2:load_state_dict(ssd)
    for _ = 1, 10 do
      o1:step(); s1:step(); o2:step(); s2:step()
      assert.are.equal(s1:get_last_lr()[1], s2:get_last_lr()[1])
      assert.are.equal(o1.param_groups[1].momentum, o2.param_groups[1].momentum)
    end
  end)

  it("CosineAnnealingLR and StepLR follow their closed form with step(epoch)", function()
    local opt = optim.SGD({lucid.zeros(1, {requires_grad = true})}, {lr = 1.0})
    local s = optim.lr_scheduler.StepLR(opt, 2, 0.5)
    s:step(5)
    assert.are.equal(0.25, s:get_last_lr()[1])
  end)

  it("scheduler errors", function()
    local opt = optim.SGD({lucid.zeros(1, {requires_grad = true})}, {lr = 1.0})
    H.raises({"lr_scheduler.StepLR", "optimizer must be a lucid.optim optimizer"},
      function() optim.lr_scheduler.StepLR({}, 2) end)
    H.raises({"lr_scheduler.StepLR", "unknown option 'gama'"},
      function() optim.lr_scheduler.StepLR(opt, {step_size = 2, gama = 0.5}) end)
    H.raises({"lr_scheduler.StepLR", "step_size must be an integer"},
      function() optim.lr_scheduler.StepLR(opt, "2") end)
    H.raises({"lr_scheduler.OneCycleLR", "total_steps OR (epochs AND steps_per_epoch)"},
      function() optim.lr_scheduler.OneCycleLR(opt, {max_lr = 1}) end)
    H.raises({"lr_scheduler.OneCycleLR", "anneal_strategy"},
      function() optim.lr_scheduler.OneCycleLR(opt, {max_lr = 1, total_steps = 5, anneal_strategy = "cosine"}) end)
    local ag = optim.Adagrad({lucid.zeros(1, {requires_grad = true})})
    H.raises({"OneCycleLR", "must support momentum"},
      function() optim.lr_scheduler.OneCycleLR(ag, {max_lr = 1, total_steps = 5}) end)
    local oc = optim.lr_scheduler.OneCycleLR(opt, {max_lr = 1, total_steps = 2})
    oc:step(); oc:step()
    H.raises({"OneCycleLR", "tried to step 4 times", "total steps is 2"}, function() oc:step() end)
    H.raises({"ReduceLROnPlateau", "factor should be < 1.0"},
      function() optim.lr_scheduler.ReduceLROnPlateau(opt, {factor = 1.5}) end)
    H.raises({"ReduceLROnPlateau", "mode must be \"min\" or \"max\""},
      function() optim.lr_scheduler.ReduceLROnPlateau(opt, {mode = "avg"}) end)
    local p = optim.lr_scheduler.ReduceLROnPlateau(opt)
    H.raises({"ReduceLROnPlateau:step", "metrics must be a number"}, function() p:step("x") end)
    p:step(lucid.Tensor(1.5))
    H.raises({"LambdaLR", "expected 1 lr_lambdas"},
      function() optim.lr_scheduler.LambdaLR(opt, {lr_lambda = lambdas()}) end)
    H.raises({"LinearLR", "start_factor"}, function() optim.lr_scheduler.LinearLR(opt, 1.5) end)
    H.raises({"initial_lr", "param_groups[1]"}, function()
      local o = optim.SGD({lucid.zeros(1, {requires_grad = true})}, {lr = 1.0})
      optim.lr_scheduler.ExponentialLR(o, 0.9, 3)
    end)
  end)

  it("optim.StepLR is optim.lr_scheduler.StepLR", function()
    assert.are.equal(optim.lr_scheduler.StepLR, optim.StepLR)
  end)
end)

-- Every leaf of a state dict is a tensor, number, boolean or string.
local function check_leaves(v, path)
  local t = type(v)
  if t == "table" and not lucid.is_tensor(v) then
    for k, x in pairs(v) do
      assert(type(k) == "string" or math.type(k) == "integer", path .. ": key of type " .. type(k))
      check_leaves(x, path .. "." .. tostring(k))
    end
  else
    assert(lucid.is_tensor(v) or t == "number" or t == "boolean" or t == "string", path .. " is a " .. t)
  end
end

describe("optimizer API", function()
  local function model_params()
    local w = lucid.Tensor({{0.5, -0.3}, {0.1, 0.7}}, {requires_grad = true})
    local b = lucid.Tensor({0.2, -0.1}, {requires_grad = true})
    return {w, b}
  end
  local function loss_step(opt, ps, x)
    opt:zero_grad()
    local y = (lucid.Tensor(x) * ps[1]):sum() + (ps[2] * ps[2]):sum()
    y:backward()
    opt:step()
  end

  it("trains a module's parameters", function()
    local model = lucid.nn.Linear(3, 1)
    local opt = optim.SGD(model:parameters(), {lr = 0.1, momentum = 0.9})
    local x = lucid.Tensor({{1, 2, 3}, {0, 1, 0}})
    local target = lucid.Tensor({{1}, {-1}})
    local first, last
    for i = 1, 50 do
      opt:zero_grad()
      local loss = ((model(x) - target) ^ 2):mean()
      loss:backward()
      opt:step()
      if i == 1 then first = loss:item() end
      last = loss:item()
    end
    assert.is_true(last < first * 0.01)
  end)

  it("step(closure) returns the closure's loss, evaluated with grad mode on", function()
    local ps = model_params()
    local opt = optim.SGD(ps, 0.1)
    local loss = lucid.no_grad(function()
      return opt:step(function()
        opt:zero_grad()
        local l = (ps[1] * ps[1]):sum()
        l:backward()
        return l
      end)
    end)
    assert.is_true(lucid.is_tensor(loss))
    H.same(ps[1], {{0.4, -0.24}, {0.08, 0.56}})
  end)

  it("skips parameters without a gradient, state included", function()
    local ps = model_params()
    local opt = optim.Adam(ps, {lr = 0.1})
    local b0 = ps[2]:clone()
    ps[1].grad = lucid.ones(2, 2)
    opt:step()
    H.close(ps[2], b0, 0)
    assert.is_nil(opt:state_of(2))
    assert.are.equal(1, opt:state_of(1).step)
  end)

  it("zero_grad sets grads to nil by default, or zeroes them", function()
    local ps = model_params()
    local opt = optim.SGD(ps, {lr = 0.1})
    ps[1].grad = lucid.ones(2, 2)
    opt:zero_grad(false)
    H.same(ps[1].grad, {{0, 0}, {0, 0}}, 0)
    opt:zero_grad{set_to_none = false}
    assert.is_not_nil(ps[1].grad)
    opt:zero_grad()
    assert.is_nil(ps[1].grad)
    H.raises({"optim.SGD:zero_grad", "unknown option 'set_to_zero'"}, function() opt:zero_grad{set_to_zero = true} end)
  end)

  it("positional options and options by name", function()
    local ps = model_params()
    local a = optim.SGD(ps, 0.1, 0.9, 0, 0.01, true)
    assert.are.equal(0.9, a.param_groups[1].momentum)
    assert.is_true(a.param_groups[1].nesterov)
    local b = optim.Adam{params = model_params(), lr = 0.01, betas = {0.8, 0.9}}
    assert.are.same({0.8, 0.9}, b.param_groups[1].betas)
    local c = optim.Adam(model_params(), 0.01, {0.5, 0.6}, {amsgrad = true})
    assert.are.same({0.5, 0.6}, c.param_groups[1].betas)
    assert.is_true(c.param_groups[1].amsgrad)
    assert.are.equal(1e-2, optim.AdamW(model_params()).param_groups[1].weight_decay)
    assert.are.equal(0.99, optim.RMSprop(model_params()).defaults.alpha)
    assert.are.equal(1e-10, optim.Adagrad(model_params()).defaults.eps)
  end)

  it("param groups: own options over the defaults, writable lr", function()
    local ps = model_params()
    local opt = optim.SGD({{params = {ps[1]}}, {params = ps[2], lr = 0.01, name = "bias"}},
      {lr = 0.1, momentum = 0.5})
    local g1, g2 = opt.param_groups[1], opt.param_groups[2]
    assert.are.equal(0.1, g1.lr)
    assert.are.equal(0.01, g2.lr)
    assert.are.equal(0.5, g2.momentum)
    assert.are.equal("bias", g2.name)
    assert.are.equal(ps[2], g2.params[1])
    -- a changed lr applies to the next step
    g1.lr = 0
    ps[1].grad = lucid.ones(2, 2)
    ps[2].grad = lucid.ones(2)
    opt:step()
    H.same(ps[1], {{0.5, -0.3}, {0.1, 0.7}})
    H.same(ps[2], {0.19, -0.11})
    g1.lr = -1
    H.raises({"optim.SGD:step", "param_groups[1]", "invalid lr", "got -1"}, function() opt:step() end)
    g1.lr = 0.1
    g1.momentum = "x"
    H.raises({"optim.SGD:step", "param_groups[1].momentum must be a number"}, function() opt:step() end)
    g1.momentum = 0.5
    table.insert(g1.params, lucid.zeros(1, {requires_grad = true}))
    H.raises({"param_groups[1].params was changed"}, function() opt:step() end)
    table.remove(g1.params)
    opt:step()
  end)

  it("add_param_group", function()
    local ps = model_params()
    local opt = optim.Adam({ps[1]}, {lr = 0.01})
    opt:add_param_group{params = {ps[2]}, lr = 0.5, betas = {0.1, 0.2}}
    assert.are.equal(2, #opt.param_groups)
    assert.are.equal(0.5, opt.param_groups[2].lr)
    assert.are.equal(1e-8, opt.param_groups[2].eps)
    ps[2].grad = lucid.ones(2)
    opt:step()
    -- Adam's first step moves each element by lr (bias-corrected m / sqrt(v) = 1)
    H.same(ps[2], {0.2 - 0.5, -0.1 - 0.5}, 1e-6)
    H.raises({"add_param_group", "params[1] is already in param_groups[1]"},
      function() opt:add_param_group{params = {ps[1]}} end)
    H.raises({"add_param_group", "expected a parameter group table"},
      function() opt:add_param_group(ps[1]) end)
    H.raises({"add_param_group", "betas must be a table of two numbers"},
      function() opt:add_param_group{params = {lucid.zeros(1, {requires_grad = true})}, betas = 0.9} end)
    assert.are.equal(2, #opt.param_groups)
    -- Adagrad gives an added group its state at once
    local ag = optim.Adagrad({lucid.zeros(1, {requires_grad = true})}, {initial_accumulator_value = 0.5})
    ag:add_param_group{params = {lucid.zeros(2, {requires_grad = true})}}
    H.same(ag:state_of(2).sum, {0.5, 0.5})
    assert.are.equal(0, ag:state_of(2).step)
  end)

  it("errors name the function, the argument and the value", function()
    local ps = model_params()
    H.raises({"optim.SGD", "invalid lr", "got -0.1"}, function() optim.SGD(ps, {lr = -0.1}) end)
    H.raises({"optim.SGD", "lr is required"}, function() optim.SGD(ps) end)
    H.raises({"optim.Adam", "invalid beta1", "got 1"}, function() optim.Adam(ps, {betas = {1.0, 0.9}}) end)
    H.raises({"optim.Adam", "invalid beta2", "got -0.5"}, function() optim.Adam(ps, {betas = {0.9, -0.5}}) end)
    H.raises({"optim.AdamW", "betas must be a table of two numbers"}, function() optim.AdamW(ps, {betas = {0.9}}) end)
    H.raises({"optim.Adam", "invalid eps"}, function() optim.Adam(ps, {eps = -1}) end)
    H.raises({"optim.RMSprop", "invalid alpha"}, function() optim.RMSprop(ps, {alpha = -1}) end)
    H.raises({"optim.Adagrad", "invalid lr_decay"}, function() optim.Adagrad(ps, {lr_decay = -1}) end)
    H.raises({"optim.SGD", "invalid weight_decay"}, function() optim.SGD(ps, {lr = 1, weight_decay = -1}) end)
    H.raises({"optim.SGD", "invalid momentum"}, function() optim.SGD(ps, {lr = 1, momentum = -1}) end)
    H.raises({"optim.SGD", "nesterov momentum requires a momentum > 0 and zero dampening"},
      function() optim.SGD(ps, {lr = 1, nesterov = true}) end)
    H.raises({"optim.SGD", "unknown option 'lrr'", "expected one of: params, lr, momentum"},
      function() optim.SGD(ps, {lrr = 0.1}) end)
    H.raises({"optim.Adam", "unknown option 'momentum'"}, function() optim.Adam(ps, {momentum = 0.9}) end)
    H.raises({"optim.SGD", "nesterov must be a boolean"}, function() optim.SGD(ps, {lr = 1, nesterov = 1}) end)
    H.raises({"optim.SGD", "lr must be a number, got string"}, function() optim.SGD(ps, {lr = "0.1"}) end)
    H.raises({"optim.SGD", "params[2] is not a tensor", "got number"}, function() optim.SGD({ps[1], 3}, 0.1) end)
    H.raises({"optim.SGD", "params[1] does not require grad"},
      function() optim.SGD({lucid.zeros(2)}, 0.1) end)
    H.raises({"optim.SGD", "params[1]: expected a float32 or float64 tensor, got int64"},
      function() optim.SGD({lucid.zeros(2, {dtype = "int64"})}, 0.1) end)
    H.raises({"optim.SGD", "params[1] is not a leaf tensor"},
      function() optim.SGD({ps[1] * 2}, 0.1) end)
    H.raises({"optim.SGD", "params[1] and params[2] are the same tensor"},
      function() optim.SGD({ps[1], ps[1]}, 0.1) end)
    H.raises({"optim.SGD", "empty parameter list"}, function() optim.SGD({}, 0.1) end)
    H.raises({"optim.SGD", "pass model:parameters()"}, function() optim.SGD(lucid.nn.Linear(2, 2), 0.1) end)
    H.raises({"optim.SGD", "params must be a list of tensors"}, function() optim.SGD(ps[1], 0.1) end)
    H.raises({"optim.SGD", "params[2].params[1] is not a tensor"},
      function() optim.SGD({{params = {ps[1]}}, {params = {"w"}}}, 0.1) end)
    H.raises({"optim.SGD", "params[2]", "invalid lr"},
      function() optim.SGD({{params = {ps[1]}}, {params = {ps[2]}, lr = -2}}, 0.1) end)
    -- 1-based: the second group's first parameter is the first group's
    H.raises({"optim.SGD", "params[2].params[1] is already in param_groups[1]", "more than one group"},
      function() optim.SGD({{params = {ps[1]}}, {params = {ps[1]}}}, 0.1) end)
    H.raises({"optim.SGD:add_param_group", "params[2] is already in param_groups[1]"},
      function() optim.SGD({ps[1]}, 0.1):add_param_group{params = {ps[2], ps[1]}} end)
    H.raises({"optim.Adam:state_of", "i must be <= 2", "got 3"}, function() optim.Adam(ps):state_of(3) end)
    -- messages from the C binding are raised as the tensor binding's are (lb_error): they name
    -- the function as "lucid.optim.SGD", after the caller's position when there is one, never
    -- after a position inside lucid's own Lua files
    for _, f in ipairs({function() optim.SGD(ps, {lr = -0.1}) end,
                        function() optim.SGD({lucid.zeros(2)}, 0.1) end,
                        function() local o = optim.SGD(ps, 0.1); o.param_groups[1].lr = "x"; o:step() end}) do
      local ok, err = pcall(f)
      assert.is_false(ok)
      err = tostring(err)
      local at = err:find("lucid.optim.SGD", 1, true)
      assert(at, err)
      local pos = err:sub(1, at - 1)
      assert(pos == "" or pos:find("optim_spec.lua:%d+: $"), err)
    end
    H.raises({"optim.SGD:step", "closure must be a function"},
      function() optim.SGD(ps, 0.1):step(1) end)
  end)

  it("state_dict: nested tables of tensors, numbers, booleans and strings; 1-based indices", function()
    local ps = model_params()
    local opt = optim.Adam({{params = {ps[1]}}, {params = {ps[2]}, lr = 0.5}}, {amsgrad = true})
    loss_step(opt, ps, {{1, 2}, {3, 4}})
    local sd = opt:state_dict()
    check_leaves(sd, "sd")
    assert.are.same({1}, sd.param_groups[1].params)
    assert.are.same({2}, sd.param_groups[2].params)
    assert.are.equal(0.5, sd.param_groups[2].lr)
    assert.are.same({0.9, 0.999}, sd.param_groups[1].betas)
    assert.are.equal(1, sd.state[1].step)
    assert.are.same({2, 2}, sd.state[1].exp_avg.shape)
    assert.is_not_nil(sd.state[2].max_exp_avg_sq)
    -- buffers are copies: later steps do not change a saved state dict
    local before = sd.state[1].exp_avg:clone()
    loss_step(opt, ps, {{1, 2}, {3, 4}})
    H.close(sd.state[1].exp_avg, before, 0)
  end)

  for _, kind in ipairs({"SGD", "Adam", "AdamW", "RMSprop", "Adagrad"}) do
    it(kind .. ": load_state_dict into a fresh optimizer gives identical next steps", function()
      local opts = ({
        SGD = {lr = 0.1, momentum = 0.9, nesterov = true},
        Adam = {lr = 0.05, amsgrad = true, weight_decay = 0.1},
        AdamW = {lr = 0.05},
        RMSprop = {lr = 0.01, momentum = 0.5, centered = true},
        Adagrad = {lr = 0.1, lr_decay = 0.1},
      })[kind]
      local ps = model_params()
      local opt = optim[kind](ps, opts)
      local sched = optim.lr_scheduler.ExponentialLR(opt, 0.5)
      for _ = 1, 3 do
        loss_step(opt, ps, {{1, -2}, {0.5, 4}})
        sched:step()
      end
      local sd = opt:state_dict()
      -- a fresh optimizer with other options and copies of the parameters
      local qs = {ps[1]:detach():clone():requires_grad_(), ps[2]:detach():clone():requires_grad_()}
      local opt2 = optim[kind](qs, {lr = 123})
      opt2:load_state_dict(sd)
      assert.are.equal(opt.param_groups[1].lr, opt2.param_groups[1].lr)
      for _ = 1, 3 do
        loss_step(opt, ps, {{2, 1}, {-1, 0.5}})
        loss_step(opt2, qs, {{2, 1}, {-1, 0.5}})
        H.close(ps[1], qs[1], 0)
        H.close(ps[2], qs[2], 0)
      end
      -- loading copies: changing the loaded dict afterwards does not touch the optimizer
      local sd3 = opt2:state_dict()
      for _, st in pairs(sd3.state) do
        for _, v in pairs(st) do
          if lucid.is_tensor(v) then v:fill_(1e6) end
        end
      end
      loss_step(opt, ps, {{2, 1}, {-1, 0.5}})
      loss_step(opt2, qs, {{2, 1}, {-1, 0.5}})
      H.close(ps[1], qs[1], 0)
    end)
  end

  it("load_state_dict casts buffers to the parameters' dtype and accepts float steps", function()
    local w = lucid.Tensor({1.0, 2.0}, {dtype = "float64", requires_grad = true})
    local opt = optim.Adam({w})
    opt:load_state_dict{
      state = {[1] = {step = 3.0, exp_avg = lucid.Tensor({0.1, 0.2}), exp_avg_sq = lucid.Tensor({0.01, 0.04})}},
      param_groups = {{params = {1}, lr = 0.01, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 0,
        amsgrad = false, maximize = false}},
    }
    local st = opt:state_of(1)
    assert.are.equal(3, st.step)
    assert.are.equal("float64", st.exp_avg.dtype)
    H.same(st.exp_avg, {0.1, 0.2})
  end)

  it("load_state_dict errors change nothing", function()
    local ps = model_params()
    local opt = optim.SGD(ps, {lr = 0.1, momentum = 0.9})
    loss_step(opt, ps, {{1, 1}, {1, 1}})
    local sd = opt:state_dict()
    local good = opt:state_dict()
    H.raises({"load_state_dict", "different number of parameter groups", "expected 1, got 2"}, function()
      opt:load_state_dict{state = {}, param_groups = {sd.param_groups[1], sd.param_groups[1]}}
    end)
    H.raises({"load_state_dict", "doesn't match the size", "has 1 parameters, expected 2"}, function()
      opt:load_state_dict{state = {}, param_groups = {{params = {1}, lr = 0.1}}}
    end)
    sd.state[1].momentum_buffer = lucid.zeros(3)
    H.raises({"load_state_dict", "state[1].momentum_buffer has shape {3}", "{2, 2}"},
      function() opt:load_state_dict(sd) end)
    sd.state[1].momentum_buffer = nil
    sd.state[1].exp_avg = lucid.zeros(2, 2)
    H.raises({"load_state_dict", "unknown state entry 'exp_avg' for SGD"}, function() opt:load_state_dict(sd) end)
    sd.state[1].exp_avg = nil
    sd.state[7] = {}
    H.raises({"load_state_dict", "state has an entry for parameter 7"}, function() opt:load_state_dict(sd) end)
    sd.state[7] = nil
    sd.param_groups[1].lr = -3
    H.raises({"load_state_dict", "param_groups[1]", "invalid lr"}, function() opt:load_state_dict(sd) end)
    H.raises({"load_state_dict", "expected a state dict table"}, function() opt:load_state_dict(3) end)
    -- a step count beyond int64 is refused by Lua and by the binding (no float-to-int overflow)
    local adam = optim.Adam({ps[1]})
    H.raises({"load_state_dict", "step must be an integer"}, function()
      adam:load_state_dict{state = {[1] = {step = 1e30}}, param_groups = {{params = {1}, lr = 0.1}}}
    end)
    H.raises({"f", "state[1].step is too large", "1e+30"}, function()
      require("lucid.nn_core").optim_set_state(adam._h, 1, {step = 1e30}, "f", "state[1]")
    end)
    -- the optimizer is unchanged
    assert.are.equal(0.1, opt.param_groups[1].lr)
    H.close(opt:state_of(1).momentum_buffer, good.state[1].momentum_buffer, 0)
    opt:step()
  end)

  it("survives lucid.save / lucid.load when checkpoints are available", function()
    local ps = model_params()
    local opt = optim.Adam(ps, {lr = 0.05})
    loss_step(opt, ps, {{1, 2}, {3, 4}})
    local path = os.tmpname()
    local ok, err = pcall(lucid.save, path, {optimizer = opt:state_dict()})
    if not ok and tostring(err):find("not available") then
      os.remove(path)
      pending("lucid.save is not available yet")
      return
    end
    assert(ok, err)
    local loaded = lucid.load(path)
    os.remove(path)
    local qs = {ps[1]:detach():clone():requires_grad_(), ps[2]:detach():clone():requires_grad_()}
    local opt2 = optim.Adam(qs)
    opt2:load_state_dict(loaded.optimizer)
    loss_step(opt, ps, {{1, 0}, {0, 1}})
    loss_step(opt2, qs, {{1, 0}, {0, 1}})
    H.close(ps[1], qs[1], 0)
  end)

  it("a training resumed from lucid.save / lucid.load (Adam + CosineAnnealingLR) is bit-identical", function()
    local nn, F = lucid.nn, lucid.nn.functional
    lucid.manual_seed(99)
    local X, Y = lucid.randn(16, 3), lucid.randn(16, 2)
    local function setup(seed)
      lucid.manual_seed(seed)
      local model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
      local opt = optim.Adam(model:parameters(), {lr = 0.05, amsgrad = true, weight_decay = 1e-3})
      -- T_max = 4 over 12 steps: the recursive form goes through its restart branch
      local sched = optim.lr_scheduler.CosineAnnealingLR(opt, {T_max = 4, eta_min = 1e-3})
      return model, opt, sched
    end
    local function train(model, opt, sched, from, to)
      for s = from, to do
        local i = (s - 1) % 4
        opt:zero_grad()
        F.mse_loss(model(X:narrow(1, i * 4 + 1, 4)), Y:narrow(1, i * 4 + 1, 4)):backward()
        opt:step()
        sched:step()
      end
    end
    local m1, o1, s1 = setup(1)
    train(m1, o1, s1, 1, 12)
    local m2, o2, s2 = setup(1)
    train(m2, o2, s2, 1, 5)
    local path = os.tmpname()
    lucid.save(path, {model = m2:state_dict(), optimizer = o2:state_dict(), scheduler = s2:state_dict()})
    local ck = lucid.load(path)
    os.remove(path)
    local m3, o3, s3 = setup(2) -- other initial weights: everything comes from the file
    m3:load_state_dict(ck.model)
    o3:load_state_dict(ck.optimizer)
    s3:load_state_dict(ck.scheduler)
    train(m3, o3, s3, 6, 12)
    local sd1, sd3 = m1:state_dict(), m3:state_dict()
    for i, kv in ipairs(sd1) do assert(kv[2]:equal(sd3[i][2]), kv[1] .. " differs") end
    assert.are.equal(s1.last_epoch, s3.last_epoch)
    assert.are.equal(o1.param_groups[1].lr, o3.param_groups[1].lr)
    assert.are.same(s1:get_last_lr(), s3:get_last_lr())
    local st1, st3 = o1:state_dict().state, o3:state_dict().state
    for i, st in pairs(st1) do
      assert.are.equal(st.step, st3[i].step)
      for _, k in ipairs({"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}) do
        assert(st[k]:equal(st3[i][k]), k .. " of parameter " .. i .. " differs")
      end
    end
  end)

  it("prints like PyTorch, with 1-based group numbers", function()
    local s = tostring(optim.Adam(model_params()))
    assert.truthy(s:find("Adam (", 1, true))
    assert.truthy(s:find("Parameter Group 1", 1, true))
    assert.truthy(s:find("betas: {0.9, 0.999}", 1, true))
  end)

  it("float64 parameters and a non-contiguous parameter", function()
    local base = lucid.Tensor({{1, 2, 3}, {4, 5, 6}}, {dtype = "float64"})
    local w = base:t():detach():requires_grad_() -- a transposed leaf: strided
    local opt = optim.SGD({w}, {lr = 0.5})
    w.grad = lucid.ones(3, 2, {dtype = "float64"})
    opt:step()
    H.same(w, {{0.5, 3.5}, {1.5, 4.5}, {2.5, 5.5}}, 0)
  end)
end)

-- The optimizers' positional order, defaults and state names are the C core's
-- (lc_optim_kind_info, handed to Lua by nn_core.optim_kinds): lucid.optim repeats none of them.
describe("optimizer kinds come from C", function()
  local core = require "lucid.nn_core"
  local function params()
    return {lucid.Tensor({{0.5, -0.3}, {0.1, 0.7}}, {requires_grad = true}),
            lucid.Tensor({0.2, -0.1}, {requires_grad = true})}
  end

  -- PyTorch 1.13's signatures (torch/optim/*.py), to catch a regression in the C table itself
  local TORCH = {
    SGD = {order = {"lr", "momentum", "dampening", "weight_decay", "nesterov"},
           defaults = {momentum = 0, dampening = 0, weight_decay = 0, nesterov = false, maximize = false},
           state = {"momentum_buffer"}, step = false},
    Adam = {order = {"lr", "betas", "eps", "weight_decay", "amsgrad"},
            defaults = {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 0, amsgrad = false, maximize = false},
            state = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}, step = true},
    AdamW = {order = {"lr", "betas", "eps", "weight_decay", "amsgrad"},
             defaults = {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 1e-2, amsgrad = false, maximize = false},
             state = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}, step = true},
    RMSprop = {order = {"lr", "alpha", "eps", "weight_decay", "momentum", "centered"},
               defaults = {lr = 1e-2, alpha = 0.99, eps = 1e-8, weight_decay = 0, momentum = 0, centered = false, maximize = false},
               state = {"square_avg", "momentum_buffer", "grad_avg"}, step = true},
    Adagrad = {order = {"lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"},
               defaults = {lr = 1e-2, lr_decay = 0, weight_decay = 0, initial_accumulator_value = 0, eps = 1e-10, maximize = false},
               state = {"sum"}, step = true},
  }

  it("the C descriptors are PyTorch's", function()
    local kinds = core.optim_kinds()
    assert.are.same({"SGD", "Adam", "AdamW", "RMSprop", "Adagrad"},
      (function() local r = {} for i, d in ipairs(kinds) do r[i] = d.name end return r end)())
    for _, d in ipairs(kinds) do
      local want, order, defaults = TORCH[d.name], {}, {}
      for _, hp in ipairs(d.hparams) do
        if not hp.keyword_only then order[#order + 1] = hp.name end
        if hp.default ~= nil then defaults[hp.name] = hp.default end
        assert.are.equal(hp.name == "lr" and d.name == "SGD", hp.required, d.name .. "." .. hp.name)
        local t = ({number = "number", boolean = "boolean", pair = "table"})[hp.type]
        assert(hp.required or type(hp.default) == t, d.name .. "." .. hp.name .. " has a default of the wrong type")
      end
      assert.are.same(want.order, order, d.name)
      assert.are.same(want.defaults, defaults, d.name)
      assert.are.same(want.state, d.state, d.name)
      assert.are.equal(want.step, d.step, d.name)
    end
  end)

  it("each constructor's defaults, positional order and state names are the descriptor's", function()
    for _, d in ipairs(core.optim_kinds()) do
      local kind = d.name
      -- defaults: what the constructor fills in is the descriptor's default, nothing else
      local opt = optim[kind](params(), {lr = 0.5})
      local want = {}
      for _, hp in ipairs(d.hparams) do want[hp.name] = hp.default end
      want.lr = 0.5
      assert.are.same(want, opt.defaults, kind)
      local g = {}
      for k, v in pairs(opt.param_groups[1]) do if k ~= "params" then g[k] = v end end
      assert.are.same(want, g, kind)
      -- positional order: distinct values given positionally land on the descriptor's names
      local values, n = {}, 0
      for _, hp in ipairs(d.hparams) do
        if not hp.keyword_only then
          n = n + 1
          if hp.type == "boolean" then values[n] = false
          elseif hp.type == "pair" then values[n] = {0.5, 0.25}
          else values[n] = n / 100 end
        end
      end
      opt = optim[kind](params(), table.unpack(values, 1, n))
      local j = 0
      for _, hp in ipairs(d.hparams) do
        if not hp.keyword_only then
          j = j + 1
          assert.are.same(values[j], opt.param_groups[1][hp.name], kind .. "." .. hp.name)
        end
      end
      -- state: with every option that makes a buffer on, a step creates exactly the named ones
      local on = {SGD = {momentum = 0.9}, Adam = {amsgrad = true}, AdamW = {amsgrad = true},
                  RMSprop = {momentum = 0.9, centered = true}, Adagrad = {}}
      local ps = params()
      local o = on[kind]
      o.lr = 0.1
      opt = optim[kind](ps, o)
      ps[1].grad = lucid.ones(2, 2)
      opt:step()
      local names = {}
      for k in pairs(opt:state_of(1)) do names[#names + 1] = k end
      local expect = {table.unpack(d.state)}
      if d.step then expect[#expect + 1] = "step" end
      table.sort(names)
      table.sort(expect)
      assert.are.same(expect, names, kind)
    end
  end)

  it("the value rules are the descriptor's, applied in C (lucid.optim checks none itself)", function()
    -- PyTorch 1.13's constructor checks: every number >= 0 but SGD's dampening, betas in [0, 1)
    local rules = {}
    for _, d in ipairs(core.optim_kinds()) do
      for _, hp in ipairs(d.hparams) do
        if hp.type ~= "boolean" then rules[#rules + 1] = d.name .. "." .. hp.name .. " " .. tostring(hp.rule) end
        if hp.type == "boolean" then assert.is_nil(hp.rule, d.name .. "." .. hp.name) end
      end
    end
    assert.are.same({"SGD.lr >= 0", "SGD.momentum >= 0", "SGD.dampening nil", "SGD.weight_decay >= 0",
      "Adam.lr >= 0", "Adam.betas in [0, 1)", "Adam.eps >= 0", "Adam.weight_decay >= 0",
      "AdamW.lr >= 0", "AdamW.betas in [0, 1)", "AdamW.eps >= 0", "AdamW.weight_decay >= 0",
      "RMSprop.lr >= 0", "RMSprop.alpha >= 0", "RMSprop.eps >= 0", "RMSprop.weight_decay >= 0",
      "RMSprop.momentum >= 0", "Adagrad.lr >= 0", "Adagrad.lr_decay >= 0", "Adagrad.weight_decay >= 0",
      "Adagrad.initial_accumulator_value >= 0", "Adagrad.eps >= 0"}, rules)
    -- each rule refuses what it says, with C's message; a number without one takes anything
    for _, d in ipairs(core.optim_kinds()) do
      for _, hp in ipairs(d.hparams) do
        local function with(v)
          local o = {lr = 0.1}
          o[hp.name] = v
          return function() return optim[d.name](params(), o) end
        end
        if hp.rule == ">= 0" then
          H.raises({"lucid.optim." .. d.name .. ": invalid " .. hp.name .. ": expected a number >= 0, got -1"}, with(-1))
          assert(pcall(with(0)), d.name .. "." .. hp.name)
        elseif hp.rule == "in [0, 1)" then
          H.raises({"invalid beta1 (betas, first value): expected 0 <= beta1 < 1, got 1"}, with({1, 0.5}))
          H.raises({"invalid beta2 (betas, second value): expected 0 <= beta2 < 1, got -0.5"}, with({0.5, -0.5}))
          assert(pcall(with({0, 0})), d.name .. "." .. hp.name)
        elseif hp.type == "number" then
          assert(pcall(with(-1)), d.name .. "." .. hp.name)
        end
      end
    end
  end)

  it("lucid.optim reads the descriptors when it loads (a changed descriptor changes the defaults)", function()
    local real = core.optim_kinds
    core.optim_kinds = function()
      local kinds = real()
      for _, d in ipairs(kinds) do
        if d.name == "Adam" then
          for _, hp in ipairs(d.hparams) do
            if hp.name == "eps" then hp.default = 0.125 end
          end
        end
      end
      return kinds
    end
    local saved = package.loaded["lucid.optim"]
    package.loaded["lucid.optim"] = nil
    local ok, fresh = pcall(require, "lucid.optim")
    package.loaded["lucid.optim"] = saved
    core.optim_kinds = real
    assert(ok, fresh)
    assert.are_not.equal(saved, fresh)
    assert.are.equal(0.125, fresh.Adam(params()).defaults.eps)
    assert.are.equal(1e-8, optim.Adam(params()).defaults.eps)
  end)

  it("type and value rules are checked once, in C, for constructors, groups and loaded options", function()
    local ps = params()
    -- the same rule, the same message, wherever the value comes from
    H.raises({"lucid.optim.RMSprop: invalid alpha"}, function() optim.RMSprop(ps, {alpha = -1}) end)
    H.raises({"lucid.optim.RMSprop: params[2]: invalid alpha"},
      function() optim.RMSprop({{params = {ps[1]}}, {params = {ps[2]}, alpha = -1}}) end)
    local opt = optim.RMSprop(ps)
    opt.param_groups[1].alpha = -1
    H.raises({"lucid.optim.RMSprop:step: param_groups[1]: invalid alpha"}, function() opt:step() end)
    opt.param_groups[1].alpha = 0.99
    local sd = opt:state_dict()
    sd.param_groups[1].alpha = -1
    H.raises({"lucid.optim.RMSprop:load_state_dict: param_groups[1]: invalid alpha"},
      function() opt:load_state_dict(sd) end)
    sd.param_groups[1].alpha = true
    H.raises({"param_groups[1].alpha must be a number, got boolean"}, function() opt:load_state_dict(sd) end)
    H.raises({"lucid.optim.Adam: betas[2] must be a number, got string"},
      function() optim.Adam(ps, {betas = {0.9, "x"}}) end)
    H.raises({"betas must be a table of two numbers, got a table of length 3"},
      function() optim.Adam(ps, {betas = {0.9, 0.9, 0.9}}) end)
    H.raises({"lucid.optim.SGD: params[1].lr is required"}, function() optim.SGD({{params = ps}}) end)
    -- maximize is keyword-only, as in PyTorch
    H.raises({"lucid.optim.SGD: too many arguments: expected at most 6, got 7"}, function() optim.SGD(ps, 0.1, 0, 0, 0, false, true) end)
    assert.is_true(optim.SGD(ps, 0.1, {maximize = true}).param_groups[1].maximize)
    -- the methods read their arguments like tensor methods (1-based argument positions)
    H.raises({"lucid.optim.RMSprop:state_of", "argument 2 (i)", "expected an integer"},
      function() opt:state_of("x") end)
    H.raises({"lucid.optim.RMSprop:state_of", "i must be >= 1, got 0"}, function() opt:state_of(0) end)
    H.raises({"lucid.optim.RMSprop:zero_grad", "argument 2 (set_to_none)", "expected a boolean"},
      function() opt:zero_grad(1) end)
    H.raises({"lucid.optim.Optimizer:zero_grad", "argument 1 (self)"}, function() opt.zero_grad() end)
    -- a step count from a file: a float or a one-element tensor
    local adam = optim.Adam({ps[1]})
    adam:load_state_dict{state = {[1] = {step = lucid.Tensor(4)}}, param_groups = {{params = {1}, lr = 0.1}}}
    assert.are.equal(4, adam:state_of(1).step)
    H.raises({"state[1].step must be >= 0, got -2"}, function()
      adam:load_state_dict{state = {[1] = {step = -2}}, param_groups = {{params = {1}, lr = 0.1}}}
    end)
    H.raises({"state[1].step must be an integer, got 2.5"}, function()
      adam:load_state_dict{state = {[1] = {step = 2.5}}, param_groups = {{params = {1}, lr = 0.1}}}
    end)
    assert.are.equal(4, adam:state_of(1).step) -- unchanged
  end)
end)
