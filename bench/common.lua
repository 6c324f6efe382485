-- common.lua - what lucid's benchmark scripts share: timing, reporting, the seed's CNN.
--   local B = dofile((arg[0]:match("^(.*/)") or "./") .. "common.lua")
-- Every script prints one "name value unit" line per case; bench/run.sh tabulates them.
local lucid = require "lucid"

local B = {}

-- A monotonic wall clock (os.clock would sum the CPU time of every thread).
B.clock = lucid.clock

function B.report(name, value, unit)
  print(("%s %.4g %s"):format(name, value, unit))
  io.stdout:flush()
end

-- Best (smallest) seconds per call of fn over `trials` trials of `iters` calls.
function B.best(iters, trials, fn)
  local t = math.huge
  for _ = 1, trials do
    collectgarbage()
    local t0 = B.clock()
    for _ = 1, iters do fn() end
    local dt = (B.clock() - t0) / iters
    if dt < t then t = dt end
  end
  return t
end

-- The seed's CNN (lua-api.md, example 3) for 64x3x32x32 batches.
function B.seed_cnn()
  local nn = lucid.nn
  return nn.Sequential{
    {"conv1", nn.Conv2d{in_channels = 3, out_channels = 16, kernel_size = 3, padding = 1}},
    {"batch_norm1", nn.BatchNorm2d{num_features = 16}},
    {"relu1", nn.ReLU()},
    {"pool1", nn.MaxPool2d{kernel_size = 2, stride = 2}},
    {"conv2", nn.Conv2d{in_channels = 16, out_channels = 32, kernel_size = 3, padding = 1}},
    {"batch_norm2", nn.BatchNorm2d{num_features = 32}},
    {"relu2", nn.ReLU()},
    {"pool2", nn.MaxPool2d{kernel_size = 2, stride = 2}},
    {"flatten", nn.Flatten()},
    {"fc1", nn.Linear{in_features = 32 * 8 * 8, out_features = 128}},
    {"relu3", nn.ReLU()},
    {"fc2", nn.Linear{in_features = 128, out_features = 10}},
  }
end

return B
