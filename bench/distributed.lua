-- distributed.lua - data-parallel scaling (issue: 2 single-thread processes >= 1.8x the
-- samples/s of 1 single-thread process), for bench/run.sh:
--   lucid bench/distributed.lua single            one process, one thread
--   mpirun -np 2 lucid bench/distributed.lua ddp  each process one thread, the same batch each
--   mpirun -np 2 lucid bench/distributed.lua zero  DDP with ZeroRedundancyOptimizer(Adam): each
--       process updates the parameters it owns (about half), then the processes gather them
--   mpirun -np 2 lucid bench/distributed.lua zshare  the same with share_parameters: each
--       process reads the other's parameters from its memory, nothing is gathered
--   mpirun -np 2 lucid bench/distributed.lua indep  the same, but each process trains alone (no
--       gradient averaging): what two processes reach on this machine without communication,
--       the ceiling DDP is measured against (its samples/s summed over the processes)
-- Each figure is the best of 3 timed runs of 40 steps.
-- Models: the Fashion-MNIST CNN (examples/fashion_model.lua) and a 784-1024-1024-10 MLP, Adam,
-- batch 64 per process (weak scaling, as PyTorch's DDP benchmarks count it), and the MLP at
-- batch 256 (its 7.5 MB of gradients per step against 4x the computation). Prints samples/s;
-- with ddp also the all_reduce payload per step and the share of the communication thread's
-- all_reduce time that backward hid (1 - time the step's end waited / time all_reduces took).
local lucid = require "lucid"
local nn, F = lucid.nn, lucid.nn.functional
local here = arg[0]:match("^(.*/)") or "./"
local B = dofile(here .. "common.lua")
local mode = arg[1] or "single"
local quick = os.getenv("BENCH_QUICK") ~= nil

local dist, rank, world = nil, 1, 1
if mode == "ddp" or mode == "zero" or mode == "zshare" or mode == "indep" then
  dist = require "lucid.distributed"
  dist.init{threads = 1}
  rank, world = dist.rank(), dist.world_size()
else
  lucid.set_num_threads(1)
end

local function mlp()
  return nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10))
end
local cnn = dofile(here .. "../examples/fashion_model.lua")

local function run(name, model, shape)
  local BATCH = shape[1]
  lucid.manual_seed(rank)
  local x = lucid.randn(table.unpack(shape))
  local y = lucid.randint(0, 10, {BATCH}):long() + 1
  local zero = mode == "zero" or mode == "zshare"
  local net = (mode == "ddp" or zero) and nn.parallel.DistributedDataParallel(model) or model
  local opt = zero and dist.optim.ZeroRedundancyOptimizer(model:parameters(), lucid.optim.Adam,
    {lr = 1e-4, share_parameters = mode == "zshare"}) or lucid.optim.Adam(model:parameters(), {lr = 1e-4})
  local function step()
    opt:zero_grad()
    F.cross_entropy(net(x), y):backward()
    opt:step()
  end
  for _ = 1, 3 do step() end -- warm-up
  -- the best of `rounds` timed runs: this machine is shared, and a single 0.3 s run of one
  -- process varied by 25% between runs; every mode is measured the same way
  local steps, rounds = quick and 15 or 40, quick and 1 or 3 -- per round
  local s0 = dist and dist.stats()
  local c0 = mode == "ddp" and net:comm_stats()
  local label = mode == "zero" and "ddp_zero" or mode == "zshare" and "ddp_zero_shared" or mode
  local dt = math.huge
  for _ = 1, rounds do
    if dist then dist.barrier() end
    local t0 = B.clock()
    for _ = 1, steps do step() end
    if dist then dist.barrier() end
    dt = math.min(dt, B.clock() - t0)
  end
  local rate = steps * BATCH * world / dt
  if rank == 1 then
    B.report(("%s_%s_samples_per_s"):format(name, label), rate, "samples/s")
    if mode == "ddp" then
      local s1, c1 = dist.stats(), net:comm_stats()
      local busy = s1.busy_seconds - s0.busy_seconds
      local waited = c1.wait_seconds - c0.wait_seconds
      B.report(("%s_ddp_allreduce_bytes_per_step"):format(name), (s1.bytes - s0.bytes) / (steps * rounds), "bytes")
      B.report(("%s_ddp_allreduce_hidden_pct"):format(name), 100 * math.max(0, 1 - waited / math.max(busy, 1e-12)), "%")
    end
  end
end

run("mlp", mlp(), {64, 784})
run("mlp_b256", mlp(), {256, 784})
run("cnn", cnn(), {64, 1, 28, 28})
if dist then dist.finalize() end
