-- lucid.distributed, nn.parallel.DistributedDataParallel and data.DistributedSampler.
-- The multi-process parts run this build's interpreter (LUCID_BIN) under Open MPI's mpirun
-- with the scripts in spec/distributed/; they print a skip line when Open MPI or the lucid.mpi
-- module is absent (tools/install-deps.sh installs Open MPI).
local lucid = require "lucid"
local data = lucid.data

local bin = os.getenv("LUCID_BIN") or "build/bin/lucid"
local build = bin:match("^(.*)/bin/[^/]*$") or "build"
local mpimod = build .. "/lua/lucid/mpi.so"

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local have_mpirun = os.execute("command -v mpirun >/dev/null 2>&1") == true
local why_skip = not have_mpirun and "mpirun is absent (apt-get install openmpi-bin libopenmpi-dev)"
  or not exists(mpimod) and (mpimod .. " was not built (needs libopenmpi-dev)") or nil

local tmp = os.tmpname()
os.remove(tmp)
os.execute("mkdir -p " .. tmp)

-- Runs `mpirun -np n lucid script args...`; returns ok, output (stdout and stderr), seconds.
-- As root (CI), Open MPI needs --allow-run-as-root; --oversubscribe allows more ranks than cores.
-- Under `make check-asan` the ranks run sanitized too, without LeakSanitizer: Open MPI unloads
-- its plugins at exit, so their allocations leak from modules no suppression can name.
local san = os.getenv("ASAN_OPTIONS") and " -x ASAN_OPTIONS=detect_leaks=0 -x UBSAN_OPTIONS" or ""
-- mpirun_with takes extra mpirun options (opts), e.g. "-x NAME=value" for the ranks' environment.
local function mpirun_with(opts, n, script, ...)
  local cmd = string.format("mpirun --allow-run-as-root --oversubscribe%s %s -np %d %s %s", san, opts, n, bin, script)
  for _, a in ipairs{...} do cmd = cmd .. " " .. a end
  local t0 = os.time()
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok = p:close()
  return ok == true, out, os.time() - t0
end
local function mpirun(n, script, ...) return mpirun_with("", n, script, ...) end

local function run(script, ...)
  local cmd = bin .. " " .. script
  for _, a in ipairs{...} do cmd = cmd .. " " .. a end
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  return p:close() == true, out
end

local function max_diff(pa, pb)
  local a, b = lucid.load(pa), lucid.load(pb)
  assert.are.equal(#a, #b)
  local worst = 0
  for _, kv in ipairs(a) do
    local other = b[kv[1]]
    assert.is_not_nil(other, kv[1])
    local d = (kv[2]:double() - other:double()):abs():max():item()
    if d > worst then worst = d end
  end
  return worst
end

local function mpi_it(name, fn)
  if why_skip then
    it(name, function() print("# skip " .. name .. ": " .. why_skip) end)
  else
    it(name, fn)
  end
end

describe("distributed training", function()
teardown(function() os.execute("rm -rf " .. tmp) end)

describe("lucid.distributed", function()
  it("is a clear error when the process was not started by mpirun", function()
    if why_skip then return print("# skip: " .. why_skip) end
    local ok, out = run("-e", "'require(\"lucid.distributed\").init()'")
    assert.is_false(ok)
    assert.truthy(out:find("lucid.distributed.init: this process was not launched by mpirun", 1, true), out)
  end)

  it("is a clear error to use before init", function()
    local dist = require "lucid.distributed"
    assert.is_false(dist.is_initialized())
    assert.has_error(function() dist.all_reduce(lucid.ones(1)) end)
    local ok, err = pcall(dist.rank)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("lucid.distributed.rank: lucid.distributed is not initialized", 1, true), err)
    ok, err = pcall(dist.init, {comm_priority = "low"})
    assert.is_false(ok)
    assert.truthy(tostring(err):find('distributed.init: comm_priority must be "auto", "normal" or "idle", got "low"', 1, true), err)
  end)

  mpi_it("works from C without Lua (tests/distributed/c_api.c) on 3 processes", function()
    local p = io.popen(("mpirun --allow-run-as-root --oversubscribe%s -np 3 %s/bin/lucid-dist-c-test 2>&1"):format(san, build))
    local out = p:read("a")
    assert.is_true(p:close() == true, out)
    assert.truthy(out:find("c api ok (3 ranks)", 1, true), out)
  end)

  -- zeros_shared in each layout: one machine of 2 or 3 processes (shared), 4 as two "machines"
  -- of 2 (LUCID_DIST_SHM_GROUP: the hierarchical path), 3 as groups of 2 and 1 (unequal:
  -- ordinary tensors), and shared memory turned off at init
  local layouts = {
    {2, "", "shared"}, {3, "", "shared"}, {4, "-x LUCID_DIST_SHM_GROUP=2", "shared"},
    {3, "-x LUCID_DIST_SHM_GROUP=2", "plain"}, {2, "", "plain", "off"},
  }
  for _, c in ipairs(layouts) do
    local n, env, expect, mode = table.unpack(c)
    mpi_it(("all_reduces a zeros_shared tensor like MPI on %d processes%s (%s%s)"):format(n,
      env ~= "" and " with " .. env or "", expect, mode and ", " .. mode or ""), function()
      local ok, out = mpirun_with(env, n, "spec/distributed/shared.lua", expect, mode)
      assert.is_true(ok, out)
      assert.truthy(out:find("shared ok", 1, true), out)
      assert.truthy(out:find("leftover shm objects: 0", 1, true), out)
    end)
  end

  mpi_it("fails every rank when they all_reduce different parts of a shared tensor", function()
    local ok, out = mpirun(2, "spec/distributed/shared.lua", "shared", "badpart")
    assert.is_false(ok)
    for _, who in ipairs{"rank 1 10 float32 elements from element 1, rank 2 10 float32 elements from element 2",
                         "rank 2 10 float32 elements from element 2, rank 1 10 float32 elements from element 1"} do
      assert.truthy(out:find("distributed.all_reduce: all_reduce (operation 2): the ranks sharing a buffer "
        .. "passed different parts of it: " .. who, 1, true), out)
    end
  end)

  mpi_it("fails every rank when they broadcast a shared tensor from different sources", function()
    local ok, out = mpirun(2, "spec/distributed/shared.lua", "shared", "badsrc")
    assert.is_false(ok)
    for _, who in ipairs{"rank 1 named rank 1, rank 2 named rank 2", "rank 2 named rank 2, rank 1 named rank 1"} do
      assert.truthy(out:find("distributed.broadcast: broadcast (operation 2): the ranks sharing a buffer "
        .. "named different sources: " .. who, 1, true), out)
    end
  end)

  for _, n in ipairs{2, 4} do
    mpi_it("runs every collective on " .. n .. " processes", function()
      local ok, out = mpirun(n, "spec/distributed/collectives.lua")
      assert.is_true(ok, out)
      assert.truthy(out:find("collectives ok", 1, true), out)
    end)
  end
end)

describe("nn.parallel.DistributedDataParallel", function()
  -- one process with batch B against n processes with B/n each: the same parameters
  local cases = {
    {2, "sgd", "mlp"}, {2, "adam", "mlp"}, {2, "sgd", "cnn"}, {2, "adam", "cnn"},
    {4, "sgd", "mlp"}, {4, "adam", "mlp"}, {4, "sgd", "cnn"}, {4, "adam", "cnn"},
  }
  for _, c in ipairs(cases) do
    local n, opt, kind = table.unpack(c)
    mpi_it(("%d processes reach one process's parameters after 20 %s steps (%s)"):format(n, opt, kind), function()
      local single, multi = tmp .. "/single.st", tmp .. "/ddp.st"
      local ok, out = run("spec/distributed/ddp_train.lua", "single", opt, kind, single)
      assert.is_true(ok, out)
      ok, out = mpirun(n, "spec/distributed/ddp_train.lua", "ddp", opt, kind, multi)
      assert.is_true(ok, out)
      assert.is_true(max_diff(single, multi) < 1e-5)
    end)
  end

  mpi_it("accumulates gradients locally under no_sync", function()
    local single, multi = tmp .. "/single.st", tmp .. "/accum.st"
    assert.is_true((run("spec/distributed/ddp_train.lua", "single", "sgd", "mlp", single)))
    local ok, out = mpirun(2, "spec/distributed/ddp_train.lua", "ddp_accum", "sgd", "mlp", multi)
    assert.is_true(ok, out)
    assert.is_true(max_diff(single, multi) < 1e-5)
    -- the no_sync halves start no collectives: as many as without accumulation
    local _, plain = mpirun(2, "spec/distributed/ddp_train.lua", "ddp", "sgd", "mlp", multi)
    assert.are.equal(plain:match("rank 1: (%d+) collectives"), out:match("rank 1: (%d+) collectives"))
    -- the gradient buckets are shared memory: every bucket's all_reduce went through it
    local buckets = tonumber(plain:match("(%d+) through shared memory"))
    assert.is_true(buckets >= 20, plain)
  end)

  mpi_it("broadcasts BatchNorm buffers from rank 1 before each forward", function()
    -- the script's forward pre-hook checks every rank's running_mean against rank 1's
    local ok, out = mpirun(2, "spec/distributed/ddp_train.lua", "ddp", "sgd", "bn", tmp .. "/bn.st")
    assert.is_true(ok, out)
  end)

  mpi_it("refuses parameter shapes that differ across ranks, on every rank", function()
    local ok, out = mpirun(2, "spec/distributed/mismatch.lua")
    assert.is_false(ok)
    assert.truthy(out:find("parameter 1 (weight) has shape {5, 4} (float32) on rank 2 but {4, 4} (float32) on rank 1", 1, true), out)
    assert.truthy(out:find("rank(s) 2 differ from rank 1", 1, true), out)
  end)

  it("needs lucid.distributed.init first", function()
    local ok, err = pcall(lucid.nn.parallel.DistributedDataParallel, lucid.nn.Linear(2, 2))
    assert.is_false(ok)
    assert.truthy(tostring(err):find("DistributedDataParallel: lucid.distributed is not initialized", 1, true), err)
  end)
end)

describe("distributed.optim.ZeroRedundancyOptimizer", function()
  -- spec/distributed/zero.lua: 5 optimizer kinds, groups, a float64 parameter, a scheduler,
  -- the consolidated state dict, save and resume; with the exchange through shared memory (2
  -- and 3 processes, two "machines" of 2), through MPI (shared memory off), on one process, and
  -- with share_parameters (where it applies, and two "machines" where it falls back)
  local layouts = {{2, ""}, {3, ""}, {4, "-x LUCID_DIST_SHM_GROUP=2"}, {2, "", "off"}, {1, ""},
    {2, "", "share"}, {3, "", "share"}, {4, "-x LUCID_DIST_SHM_GROUP=2", "share"}}
  for _, c in ipairs(layouts) do
    local n, env, mode = table.unpack(c)
    mpi_it(("steps like the optimizer it wraps on %d process(es)%s%s"):format(n, env ~= "" and " with " .. env or "",
      mode == "off" and ", shared memory off" or mode == "share" and ", share_parameters" or ""), function()
      local ok, out = mpirun_with(env, n, "spec/distributed/zero.lua", tmp, mode)
      assert.is_true(ok, out)
      assert.truthy(out:find("zero ok", 1, true), out)
    end)
  end

  it("needs lucid.distributed.init first", function()
    local dist = require "lucid.distributed"
    local p = lucid.randn(3):requires_grad_()
    local ok, err = pcall(dist.optim.ZeroRedundancyOptimizer, {p}, lucid.optim.Adam)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("distributed.optim.ZeroRedundancyOptimizer: lucid.distributed is not initialized",
      1, true), err)
  end)
end)

describe("examples/fashion_mnist.lua --distributed", function()
  local have_data = exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
  local function check(name, fn)
    if not have_data then
      it(name, function() print("# skip " .. name .. ": Fashion-MNIST is absent (dataset-fashion-mnist)") end)
    else
      mpi_it(name, fn)
    end
  end
  check("trains on 2 processes, rank 1 alone prints and saves; resumes on 4 and on 1", function()
    local ckpt = tmp .. "/fm.safetensors"
    local ok, out = mpirun(2, "examples/fashion_mnist.lua", "--distributed", "--quick", "--checkpoint", ckpt, "</dev/null")
    assert.is_true(ok, out)
    assert.truthy(out:find("1 thread(s) per process, 2 processes", 1, true), out)
    local _, n = out:gsub("final test accuracy: ", "")
    assert.are.equal(1, n) -- rank 1 only
    local acc = tonumber(out:match("final test accuracy: ([%d.]+)%%"))
    assert.is_true(acc > 50, out)
    -- the checkpoint of one process: the model's own names, optimizer, scheduler and epoch
    local ck = lucid.load(ckpt)
    assert.are.equal(1, ck.epoch)
    assert.are.equal("conv1.weight", ck.model[1][1]) -- not "module.conv1.weight"
    ok, out = mpirun(4, "examples/fashion_mnist.lua", "--distributed", "--quick", "--epochs", "2", "--resume", "--checkpoint", ckpt, "</dev/null")
    assert.is_true(ok, out)
    assert.truthy(out:find("resumed from .* after epoch 1"), out)
    assert.truthy(out:find("epoch 2: test accuracy", 1, true), out)
    ok, out = run("examples/fashion_mnist.lua", "--quick", "--epochs", "3", "--resume", "--checkpoint", ckpt, "</dev/null")
    assert.is_true(ok, out)
    assert.truthy(out:find("resumed from .* after epoch 2"), out)
    assert.are.equal(3, lucid.load(ckpt).epoch)
  end)
end)

describe("faults", function()
  -- a rank that fails, hangs or dies: the job ends with a clear message instead of hanging
  mpi_it("a rank raising an error ends the job at once", function()
    local ok, out, secs = mpirun(2, "spec/distributed/fault.lua", "30", "error")
    assert.is_false(ok)
    assert.truthy(out:find("boom on rank 2", 1, true), out)
    assert.truthy(out:find("rank 2 of 2: the script failed", 1, true), out)
    assert.is_true(secs < 20)
  end)

  mpi_it("a rank that never joins the collective makes the others time out", function()
    local ok, out, secs = mpirun(2, "spec/distributed/fault.lua", "2", "hang")
    assert.is_false(ok)
    assert.truthy(out:find("all_reduce (operation 1) did not complete within 2 s on rank 1 of 2", 1, true), out)
    assert.is_true(secs < 20)
  end)

  mpi_it("a killed rank ends the job", function()
    local ok, out, secs = mpirun(2, "spec/distributed/fault.lua", "30", "kill")
    assert.is_false(ok)
    assert.truthy(out:find("signal 9", 1, true), out)
    assert.is_true(secs < 20)
  end)
end)

describe("data.DistributedSampler", function()
  local ds = data.TensorDataset(lucid.arange(1, 11))

  it("splits and pads as PyTorch does without shuffling", function()
    local got = {}
    for r = 1, 3 do got[r] = data.DistributedSampler(ds, {num_replicas = 3, rank = r, shuffle = false}):indices() end
    -- torch.utils.data.DistributedSampler(range(10), 3, r, shuffle=False)
    assert.are.same({1, 4, 7, 10}, got[1])
    assert.are.same({2, 5, 8, 1}, got[2])
    assert.are.same({3, 6, 9, 2}, got[3])
    assert.are.equal(4, #data.DistributedSampler(ds, {num_replicas = 3, rank = 1}))
  end)

  it("drops the tail with drop_last", function()
    local s = data.DistributedSampler(ds, {num_replicas = 3, rank = 3, shuffle = false, drop_last = true})
    assert.are.equal(3, #s)
    assert.are.same({3, 6, 9}, s:indices())
  end)

  it("shuffles the same way on every rank, differently per epoch", function()
    local function epoch(e)
      local all, seen = {}, {}
      for r = 1, 4 do
        local s = data.DistributedSampler(ds, {num_replicas = 4, rank = r, seed = 3})
        s:set_epoch(e)
        for _, i in ipairs(s:indices()) do all[#all + 1] = i; seen[i] = true end
      end
      for i = 1, 10 do assert.is_true(seen[i]) end -- every sample, 2 of them twice (padding)
      assert.are.equal(12, #all)
      return all
    end
    local a, b = epoch(0), epoch(1)
    assert.are.same(a, epoch(0))
    assert.are_not.same(a, b)
  end)

  it("feeds a DataLoader", function()
    local s = data.DistributedSampler(ds, {num_replicas = 2, rank = 2, shuffle = false})
    local loader = data.DataLoader(ds, {batch_size = 2, sampler = s})
    assert.are.equal(3, #loader)
    local seen = {}
    for xb in loader:iter() do for _, v in ipairs(xb:tolist()) do seen[#seen + 1] = v end end
    assert.are.same({2, 4, 6, 8, 10}, seen)
  end)

  it("gives clear errors", function()
    local function err(f)
      local ok, e = pcall(f)
      assert.is_false(ok)
      return tostring(e)
    end
    assert.truthy(err(function() data.DistributedSampler(ds, {num_replicas = 2, rank = 3}) end)
      :find("rank 3 out of range (expected 1..2)", 1, true))
    assert.truthy(err(function() data.DistributedSampler(ds) end)
      :find("give num_replicas and rank, or call lucid.distributed.init() first", 1, true))
    assert.truthy(err(function() data.DistributedSampler(ds, {num_replicas = 0, rank = 1}) end)
      :find("num_replicas must be >= 1", 1, true))
    local s = data.DistributedSampler(ds, {num_replicas = 2, rank = 1})
    assert.truthy(err(function() data.DataLoader(ds, {sampler = s, shuffle = true}) end)
      :find("sampler and shuffle = true cannot be combined", 1, true))
    assert.truthy(err(function() data.DataLoader(ds, {sampler = 5}) end)
      :find("sampler must be a sampler", 1, true))
  end)
end)
end)
