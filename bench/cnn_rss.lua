-- cnn_rss.lua - peak resident memory of a 100-step training loop of the seed CNN at batch 64
-- (issue 5's memory target). Run alone in its own process: prints "name value unit".
local lucid = require "lucid"
local nn, F = lucid.nn, lucid.nn.functional

local function peak_rss_mb()
  local f = assert(io.open("/proc/self/status", "r"))
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmHWM:%s*(%d+)")) / 1024
end

lucid.manual_seed(0)
local model = nn.Sequential{
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
local opt = lucid.optim.SGD(model:parameters(), {lr = 0.01, momentum = 0.9})
for _ = 1, 100 do
  local x = lucid.randn(64, 3, 32, 32)
  local y = lucid.randint(1, 11, {64})
  local loss = F.cross_entropy(model(x), y)
  opt:zero_grad()
  loss:backward()
  opt:step()
end
print(("seed_cnn_100_steps_peak_rss_mb %.4g MB"):format(peak_rss_mb()))
