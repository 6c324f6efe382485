-- fashion_mnist.lua - lucid's main job: train a CNN on Fashion-MNIST (`make demo`).
--
--   lucid examples/fashion_mnist.lua [--epochs N] [--batch-size N] [--lr X] [--quick]
--                                    [--resume] [--checkpoint FILE] [--root DIR] [--seed N]
--                                    [--distributed]
--
-- With --distributed, under `mpirun -np K lucid examples/fashion_mnist.lua --distributed`, the
-- K processes train one model data-parallel (nn.parallel.DistributedDataParallel): each takes
-- batch-size / K images of every batch (a DistributedSampler shard of the epoch), gradients are
-- averaged, and rank 1 alone prints and writes the checkpoint, in the same format as one
-- process; --resume works from any checkpoint with any number of processes.
--
-- The model uses the seed's layer types (Conv2d, BatchNorm2d, ReLU, MaxPool2d, Flatten,
-- Linear) in an nn.Sequential. After every epoch it reports the test accuracy and saves a
-- checkpoint (model, optimizer and epoch in one safetensors file); --resume continues from it.
-- --quick trains on a 2,000-image subset (one epoch unless --epochs is given; used by the
-- specs).
-- docs/tutorial.md walks through this file.
local lucid = require "lucid"
local nn, optim, data = lucid.nn, lucid.optim, lucid.data
local F = nn.functional

-- ------------------------------------------------------------------ options

local opts = {epochs = 5, batch_size = 64, lr = 1e-3, quick = false, resume = false,
  checkpoint = "fashion_mnist.safetensors", root = "/usr/share/datasets/fashion-mnist", seed = 1,
  distributed = false}

local function usage(msg)
  io.stderr:write(("fashion_mnist.lua: %s\nusage: lucid examples/fashion_mnist.lua [--epochs N] " ..
    "[--batch-size N] [--lr X] [--quick] [--resume] [--checkpoint FILE] [--root DIR] " ..
    "[--seed N] [--distributed]\n"):format(msg))
  os.exit(2)
end

local argv = arg or {}
local i = 1
while i <= #argv do
  local a = argv[i]
  local function value(kind)
    i = i + 1
    local v = argv[i]
    if v == nil then usage(a .. " needs a value") end
    if kind == "int" then
      v = math.tointeger(tonumber(v))
      if not v or v < 1 then usage(a .. " needs a positive integer, got " .. argv[i]) end
    elseif kind == "number" then
      v = tonumber(v)
      if not v or v <= 0 then usage(a .. " needs a positive number, got " .. argv[i]) end
    end
    return v
  end
  if a == "--epochs" then opts.epochs, opts.epochs_given = value("int"), true
  elseif a == "--batch-size" then opts.batch_size = value("int")
  elseif a == "--lr" then opts.lr = value("number")
  elseif a == "--seed" then opts.seed = value("int")
  elseif a == "--checkpoint" then opts.checkpoint = value()
  elseif a == "--root" then opts.root = value()
  elseif a == "--quick" then opts.quick = true
  elseif a == "--resume" then opts.resume = true
  elseif a == "--distributed" then opts.distributed = true
  elseif a == "--help" or a == "-h" then usage("help")
  else usage("unknown option " .. a) end
  i = i + 1
end
if opts.quick and not opts.epochs_given then opts.epochs = 1 end

lucid.manual_seed(opts.seed)

-- One process, or rank `rank` of `world` under mpirun (--distributed).
local dist, rank, world = nil, 1, 1
if opts.distributed then
  dist = require "lucid.distributed"
  dist.init()
  rank, world = dist.rank(), dist.world_size()
  if opts.batch_size % world ~= 0 then
    usage(("--batch-size %d must be a multiple of the number of processes (%d)"):format(opts.batch_size, world))
  end
end
-- only rank 1 talks
local function say(...) if rank == 1 then print(...) end end

-- ------------------------------------------------------------------ data

local train_set = data.FashionMNIST{root = opts.root, train = true}
local test_set = data.FashionMNIST{root = opts.root, train = false}
if opts.quick then
  train_set = data.Subset(train_set, lucid.randperm(#train_set):narrow(1, 1, 2000) + 1)
  test_set = data.Subset(test_set, lucid.arange(1, 1001, {dtype = "int64"}))
end
local train_loader = data.DataLoader(train_set, {batch_size = opts.batch_size, shuffle = true})
local test_loader = data.DataLoader(test_set, {batch_size = 500})
local sampler
if dist then
  -- each rank: its shard of every epoch (reshuffled by set_epoch) and every world-th test image
  sampler = data.DistributedSampler(train_set, {seed = opts.seed})
  train_loader = data.DataLoader(train_set, {batch_size = opts.batch_size // world, sampler = sampler})
  local mine = {}
  for k = rank, #test_set, world do mine[#mine + 1] = k end
  test_loader = data.DataLoader(data.Subset(test_set, mine), {batch_size = 500})
end

-- ------------------------------------------------------------------ model

-- examples/fashion_model.lua, next to this script (so it runs from any directory)
local here = (arg and arg[0] or ""):match("^(.*[/\\])") or "./"
local model = dofile(here .. "fashion_model.lua")()
local opt = optim.Adam(model:parameters(), {lr = opts.lr})
-- The learning rate follows a cosine from lr down to 0 over the whole run, stepped per batch.
local sched = optim.CosineAnnealingLR(opt, {T_max = opts.epochs * #train_loader})
local first_epoch, accuracy = 1, 0

if opts.resume then
  local ok, ckpt = pcall(lucid.load, opts.checkpoint)
  if not ok then
    io.stderr:write(("fashion_mnist.lua: --resume: %s\n"):format(ckpt))
    os.exit(1)
  end
  model:load_state_dict(ckpt.model)
  opt:load_state_dict(ckpt.optim)
  sched:load_state_dict(ckpt.sched)
  first_epoch = ckpt.epoch + 1
  accuracy = ckpt.accuracy
  say(("resumed from %s after epoch %d (test accuracy %.2f%%)"):format(opts.checkpoint,
    ckpt.epoch, ckpt.accuracy * 100))
end

-- what trains: the model itself, or its data-parallel wrapper (rank 1's weights on every rank)
local net = dist and nn.parallel.DistributedDataParallel(model) or model

say(model)
say(("%d parameters; %d training and %d test images; batch %d; %d thread(s)%s"):format(
  model:num_parameters(), #train_set, #test_set, opts.batch_size, lucid.get_num_threads(),
  dist and (" per process, %d processes"):format(world) or ""))

-- ------------------------------------------------------------------ progress

-- A progress bar redrawn in place on a terminal; plain lines (a few per epoch) otherwise.
local tty = os.getenv("TERM") ~= nil and os.getenv("TERM") ~= "dumb" and os.execute("[ -t 1 ]")

local function duration(s)
  s = math.floor(s + 0.5)
  if s >= 3600 then return ("%d:%02d:%02d"):format(s // 3600, s % 3600 // 60, s % 60) end
  return ("%d:%02d"):format(s // 60, s % 60)
end

local function progress(epoch, batch, nbatches, loss, acc, seen, elapsed, final)
  local rate = seen / math.max(elapsed, 1e-9)
  local eta = (nbatches - batch) * (elapsed / batch)
  local text = ("epoch %d/%d  batch %4d/%d  loss %.4f  acc %5.2f%%  %6.0f samples/s  %s %s"):format(
    epoch, opts.epochs, batch, nbatches, loss, acc * 100, rate, final and "took" or "ETA",
    duration(final and elapsed or eta))
  if tty then
    local width = 24
    local filled = math.floor(width * batch / nbatches)
    if rank ~= 1 then return end
    io.write("\r[", ("="):rep(filled), (" "):rep(width - filled), "] ", text, final and "\n" or "")
    io.flush()
  elseif final or batch % math.max(1, nbatches // 4) == 0 then
    say(text)
  end
end

-- ------------------------------------------------------------------ train and test

local function evaluate()
  model:eval()
  local correct, total = 0, 0
  lucid.no_grad(function()
    for images, labels in test_loader:iter() do
      local pred = model(images):argmax(2)
      correct = correct + pred:eq(labels):sum():item()
      total = total + labels.shape[1]
    end
  end)
  model:train()
  if dist then -- every rank tested its share
    local c = dist.all_reduce(lucid.tensor({correct, total}, {dtype = "int64"}))
    correct, total = c[1]:item(), c[2]:item()
  end
  return correct / total
end

local train_seconds, epochs_run = 0, 0
for epoch = first_epoch, opts.epochs do
  model:train()
  if sampler then sampler:set_epoch(epoch) end
  local nbatches = #train_loader
  local t0, seen, loss_sum, correct, b = lucid.clock(), 0, 0, 0, 0
  for images, labels in train_loader:iter() do
    local logits = net(images)
    local loss = F.cross_entropy(logits, labels)
    opt:zero_grad()
    loss:backward()
    opt:step()
    sched:step()
    b = b + 1
    -- loss and accuracy of this rank's images; the rate counts every rank's
    local n = labels.shape[1]
    seen = seen + n
    loss_sum = loss_sum + loss:item() * n
    correct = correct + logits:argmax(2):eq(labels):sum():item()
    progress(epoch, b, nbatches, loss_sum / seen, correct / seen, seen * world,
      lucid.clock() - t0, b == nbatches)
  end
  train_seconds, epochs_run = train_seconds + (lucid.clock() - t0), epochs_run + 1
  accuracy = evaluate()
  say(("epoch %d: test accuracy %.2f%%"):format(epoch, accuracy * 100))
  -- the model's own state (not the wrapper's): the same checkpoint as one process writes;
  -- lucid.save writes a temporary file and renames it, so no half-written checkpoint remains
  if rank == 1 then
    lucid.save(opts.checkpoint, {model = model:state_dict(), optim = opt:state_dict(),
      sched = sched:state_dict(), epoch = epoch, accuracy = accuracy})
    say(("checkpoint saved to %s"):format(opts.checkpoint))
  end
end
if epochs_run > 0 then
  say(("training time: %.2f s per epoch"):format(train_seconds / epochs_run))
end
say(("final test accuracy: %.2f%%"):format(accuracy * 100))
if dist then dist.finalize() end
