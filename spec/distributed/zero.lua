-- ZeroRedundancyOptimizer against the optimizer it wraps stepping every parameter on every
-- rank: the same parameters, bit for bit, after steps with DDP-averaged gradients, two groups,
-- a float64 parameter and a scheduler; the consolidated state dict against the plain one;
-- save and load both ways. Run under mpirun by spec/distributed_spec.lua
-- (zero.lua <tmpdir> [off|share]; off: init{shared_memory = false}; share: share_parameters);
-- prints "zero ok" on rank 1.
local lucid = require "lucid"
local dist = require "lucid.distributed"
local nn, F, optim = lucid.nn, lucid.nn.functional, lucid.optim
local tmpdir, off, share = arg[1] or "/tmp", arg[2] == "off", arg[2] == "share"
dist.init{timeout = 60, threads = 1, shared_memory = not off}
local r, k = dist.rank(), dist.world_size()
local ZeRO = dist.optim.ZeroRedundancyOptimizer

local function check(cond, what)
  if not cond then error(("rank %d: %s"):format(r, what), 0) end
end

-- model, groups (weights; biases with their own lr) and a float64 parameter in a third group
local function build()
  lucid.manual_seed(11)
  local m = nn.Sequential(nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 3))
  local extra = lucid.randn(5, {dtype = "float64"}):requires_grad_()
  local ws, bs = {}, {}
  for name, p in m:named_parameters() do
    if name:find("weight") then ws[#ws + 1] = p else bs[#bs + 1] = p end
  end
  local groups = {{params = ws}, {params = bs, lr = 0.02}, {params = {extra}, lr = 0.005}}
  return nn.parallel.DistributedDataParallel(m), m, extra, groups
end

local function train(runs, steps, seed0)
  for s = 1, steps do
    lucid.manual_seed(100 * r + s + seed0)
    local x, y = lucid.randn(8, 12), lucid.randn(8, 3)
    for _, run in ipairs(runs) do
      run.opt:zero_grad()
      F.mse_loss(run.ddp(x), y):backward();
      (run.extra * run.extra):sum():backward()
      run.opt:step()
      if run.sched then run.sched:step() end
    end
  end
end

local function params_of(run)
  local list = run.model:parameters()
  list[#list + 1] = run.extra
  return list
end

local function same_params(a, b, what)
  local pa, pb = params_of(a), params_of(b)
  for i = 1, #pa do
    check(lucid.equal(pa[i], pb[i]), ("%s: parameter %d differs"):format(what, i))
    -- and every rank holds the same values
    local g = dist.all_gather(pb[i])
    for q = 2, k do check(lucid.equal(g[q], g[1]), ("%s: parameter %d differs on rank %d"):format(what, i, q)) end
  end
end

local function same_value(a, b, where)
  if lucid.is_tensor(a) then
    check(lucid.is_tensor(b) and lucid.equal(a, b), where .. ": tensors differ")
  elseif type(a) == "table" then
    check(type(b) == "table", where .. ": not a table")
    for key, v in pairs(a) do same_value(v, b[key], where .. "." .. tostring(key)) end
    for key in pairs(b) do check(a[key] ~= nil, where .. "." .. tostring(key) .. ": extra") end
  else
    check(a == b, ("%s: %s against %s"):format(where, tostring(a), tostring(b)))
  end
end

local kinds = {
  {"Adam", {lr = 0.01, amsgrad = true, weight_decay = 0.01}},
  {"SGD", {lr = 0.05, momentum = 0.9, nesterov = true}},
  {"AdamW", {lr = 0.01}},
  {"RMSprop", {lr = 0.01, momentum = 0.5, centered = true}},
  {"Adagrad", {lr = 0.05}},
}
for _, kd in ipairs(kinds) do
  local kind, opts = kd[1], kd[2]
  local plain, zero = {}, {}
  plain.ddp, plain.model, plain.extra, plain.groups = build()
  zero.ddp, zero.model, zero.extra, zero.groups = build()
  local zopts = {share_parameters = share}
  for key, v in pairs(opts) do zopts[key] = v end
  plain.opt = optim[kind](plain.groups, opts)
  zero.opt = ZeRO(zero.groups, optim[kind], zopts)
  -- parameters are shared where every rank is on one machine with shared memory
  local g = tonumber(os.getenv("LUCID_DIST_SHM_GROUP") or "") or k
  check(zero.opt:shares_parameters() == (share and k > 1 and g >= k), kind .. ": shares_parameters")
  plain.sched = optim.lr_scheduler.StepLR(plain.opt, {step_size = 2, gamma = 0.5})
  zero.sched = optim.lr_scheduler.StepLR(zero.opt, {step_size = 2, gamma = 0.5})
  check(zero.opt.kind == kind, kind .. ": kind")

  -- every parameter is owned by exactly one rank; the largest first, to the least loaded
  local flags = {0, 0, 0, 0, 0, 0, 0} -- over the groups: 3 weights, 3 biases, the float64
  local _, idx = zero.opt:owned()
  for _, i in ipairs(idx) do flags[i] = 1 end
  local owners = dist.all_reduce(lucid.tensor(flags), "sum")
  check(owners:min():item() == 1 and owners:max():item() == 1, kind .. ": owners " .. tostring(owners))
  if k == 2 then
    -- weights 256 -> 1, 192 -> 2, 48 -> 2 (1: 256, 2: 240); biases 16 -> 2, 16 -> 1 (a tie:
    -- the lower rank), 3 -> 2 (1: 272, 2: 259); the float64's 5 -> 2
    local want = r == 1 and {0, 1, 0, 0, 1, 0, 0} or {1, 0, 1, 1, 0, 1, 1}
    for i, f in ipairs(flags) do check(f == want[i], ("%s: parameter %d's owner"):format(kind, i)) end
  end

  train({plain, zero}, 5, 0)
  same_params(plain, zero, kind)
  check(zero.opt.param_groups[2].lr == plain.opt.param_groups[2].lr, kind .. ": the scheduler's lr")

  -- the consolidated state dict is the plain optimizer's
  local ok, err = pcall(zero.opt.state_dict, zero.opt)
  check(not ok and tostring(err):find("call consolidate_state_dict() on every rank first", 1, true), tostring(err))
  zero.opt:consolidate_state_dict()
  if r == 1 then
    local sd = zero.opt:state_dict()
    same_value(plain.opt:state_dict(), sd, kind .. " state_dict")
    lucid.save(tmpdir .. "/zero_" .. kind .. ".safetensors", {optim = sd})
  else
    ok, err = pcall(zero.opt.state_dict, zero.opt)
    check(not ok and tostring(err):find("consolidated on rank 1, not on this rank", 1, true), tostring(err))
  end
  dist.barrier()

  -- resume: a new ZeRO from the saved (consolidated) dict, a new plain optimizer from the
  -- same file, and a ZeRO from the plain optimizer's own dict all continue like the original
  local saved = lucid.load(tmpdir .. "/zero_" .. kind .. ".safetensors").optim
  local function resumed(sd, zero_kind)
    local run = {}
    run.ddp, run.model, run.extra, run.groups = build()
    lucid.no_grad(function()
      local src = params_of(plain)
      for i, p in ipairs(params_of(run)) do p:copy_(src[i]) end
    end)
    run.opt = zero_kind and ZeRO(run.groups, optim[kind], zopts) or optim[kind](run.groups, opts)
    run.opt:load_state_dict(sd)
    return run
  end
  local runs = {plain, zero, resumed(saved, true), resumed(saved, false), resumed(plain.opt:state_dict(), true)}
  plain.sched, zero.sched = nil, nil
  train(runs, 3, 50)
  for i = 2, #runs do same_params(plain, runs[i], ("%s resumed %d"):format(kind, i)) end
end

-- add_param_group: the new group is partitioned too, and steps like the plain optimizer's
do
  lucid.manual_seed(5)
  local a, b = lucid.randn(40):requires_grad_(), lucid.randn(7, 3):requires_grad_()
  local a2, b2 = a:detach():clone():requires_grad_(), b:detach():clone():requires_grad_()
  local zopt = ZeRO({a}, optim.Adam, {lr = 0.1, share_parameters = share})
  local popt = optim.Adam({a2}, {lr = 0.1})
  zopt:add_param_group{params = {b}, lr = 0.3}
  popt:add_param_group{params = {b2}, lr = 0.3}
  for s = 1, 3 do
    for _, pair in ipairs{{a, a2}, {b, b2}} do
      local gr = lucid.full(pair[1].shape, s * 0.5)
      pair[1].grad, pair[2].grad = gr:clone(), gr:clone()
    end
    zopt:step()
    popt:step()
  end
  check(lucid.equal(a, a2) and lucid.equal(b, b2), "add_param_group: parameters")
  local _, idx = zopt:owned()
  local n = dist.all_reduce(lucid.tensor({#idx}), "sum")[1]:item()
  check(n == 2, "add_param_group: owners of 2 parameters: " .. n)
end

-- the arguments
local p = lucid.randn(3):requires_grad_()
local function err_of(...)
  local ok, e = pcall(ZeRO, ...)
  check(not ok, "accepted bad arguments")
  return tostring(e)
end
check(err_of({p}, "Adam"):find("argument 2 (optimizer_class) must be an optimizer constructor such as "
  .. "lucid.optim.Adam, got string", 1, true), "optimizer_class")
check(err_of({p}, optim.Adam, 0.1):find("argument 3 (defaults) must be a table", 1, true), "defaults")
check(err_of({}, optim.Adam):find("optim.Adam: optimizer got an empty parameter list", 1, true), "empty")
check(err_of({p}, optim.SGD):find("lr", 1, true), "the wrapped optimizer's own checks")
-- the exchange went through shared memory wherever there is some
local shared = dist.is_shared(dist.zeros_shared(1))
check(shared == (k > 1 and not off), "zeros_shared: shared is " .. tostring(shared))
local opt = ZeRO({p}, optim.SGD, {lr = 0.1, share_parameters = share})
local st0 = dist.stats()
p.grad = lucid.ones(3)
opt:step()
local exchanged = opt:shares_parameters() and 0 or 1
check(dist.stats().shared_ops - st0.shared_ops == (shared and exchanged or 0), "the exchange's shared_ops")
check(err_of({p}, optim.SGD, {lr = 0.1, share_parameters = 1}):find("share_parameters must be a boolean", 1, true),
  "share_parameters")
dist.finalize()
if r == 1 then print("zero ok") end
