-- cnn_rss.lua - peak resident memory of a 100-step training loop of the seed CNN at batch 64
-- (issue 5's memory target). Run alone in its own process: prints "name value unit".
local lucid = require "lucid"
local B = dofile((arg and arg[0] and arg[0]:match("^(.*/)") or "bench/") .. "common.lua")
local nn, F = lucid.nn, lucid.nn.functional

local function peak_rss_mb()
  local f = assert(io.open("/proc/self/status", "r"))
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmHWM:%s*(%d+)")) / 1024
end

lucid.manual_seed(0)
local model = B.seed_cnn()
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
