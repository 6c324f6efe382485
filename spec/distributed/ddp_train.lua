-- Trains one small model the same way alone or under DistributedDataParallel, for
-- spec/distributed_spec.lua:
--   lucid ddp_train.lua single <optim> <model> <out>            one process, batch B
--   mpirun -np k lucid ddp_train.lua ddp <optim> <model> <out>   k processes, batch B/k each
--   ... ddp_accum ...  the same with each rank's share in two halves, the first under no_sync
-- optim: sgd | adam; model: mlp | cnn | bn. Rank 1 (or the single process) saves the
-- parameters to <out>; every rank checks on the way that BatchNorm buffers equal rank 1's
-- when forward starts.
local lucid = require "lucid"
local nn = lucid.nn
local mode, optname, kind, out = arg[1], arg[2], arg[3], arg[4]
local B, STEPS = 24, 20

lucid.manual_seed(7)
local model
if kind == "cnn" then
  model = nn.Sequential(nn.Conv2d(1, 4, 3, {padding = 1}), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
elseif kind == "bn" then
  model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 3))
else
  -- `spare` is never used: its parameters get no gradient, on any rank
  local Net = nn.Module:extend("Net")
  function Net:init()
    self.fc1, self.spare, self.fc2 = nn.Linear(6, 16), nn.Linear(4, 4), nn.Linear(16, 3)
  end
  function Net:forward(x) return self.fc2(self.fc1(x):tanh()) end
  model = Net()
end
local X = kind == "cnn" and lucid.randn(STEPS * B, 1, 8, 8) or lucid.randn(STEPS * B, 6)
local Y = lucid.randn(STEPS * B, 3)

local rank, k, net = 1, 1, model
local dist
if mode ~= "single" then
  dist = require "lucid.distributed"
  dist.init{timeout = 60}
  rank, k = dist.rank(), dist.world_size()
  -- rank 2.. start from other weights: the wrap must broadcast rank 1's
  if rank > 1 then
    lucid.no_grad(function() for _, p in ipairs(model:parameters()) do p:add_(rank) end end)
  end
  -- tiny buckets: several all_reduces per step, started in order during backward
  net = nn.parallel.DistributedDataParallel(model, {bucket_cap_mb = 0.0005})
  if kind == "bn" then
    model:register_forward_pre_hook(function(m)
      local rm = m[2].running_mean
      local all = dist.all_gather(rm)
      for r = 2, k do
        assert((all[r] - all[1]):abs():max():item() == 0, "running_mean of rank " .. r .. " differs")
      end
    end)
  end
end

local opt = optname == "adam" and lucid.optim.Adam(model:parameters(), {lr = 0.01})
  or lucid.optim.SGD(model:parameters(), {lr = 0.05, momentum = 0.9})
local per = B // k
for step = 1, STEPS do
  local first = (step - 1) * B + (rank - 1) * per + 1
  local xb, yb = X:narrow(1, first, per), Y:narrow(1, first, per)
  opt:zero_grad()
  if mode == "ddp_accum" then
    local h = per // 2
    net:no_sync(function()
      (nn.functional.mse_loss(net(xb:narrow(1, 1, h)), yb:narrow(1, 1, h)) * 0.5):backward()
    end)
    local loss = nn.functional.mse_loss(net(xb:narrow(1, h + 1, per - h)), yb:narrow(1, h + 1, per - h)) * 0.5
    loss:backward()
  else
    nn.functional.mse_loss(net(xb), yb):backward()
  end
  opt:step()
end
if rank == 1 then
  local sd = {}
  for name, p in model:named_parameters() do sd[#sd + 1] = {name, p} end
  for name, b in model:named_buffers() do sd[#sd + 1] = {name, b} end
  lucid.save(out, sd)
end
if dist then
  local s = dist.stats()
  print(string.format("rank %d: %d collectives, %d bytes, %d through shared memory", rank, s.ops, s.bytes, s.shared_ops))
  dist.finalize()
end
