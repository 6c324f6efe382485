-- bench_conv.lua - convolution benchmarks: conv layers alone and the seed CNN (issue 5) at batch
-- 64 (train step: forward + cross-entropy + backward + SGD step; inference: forward under
-- no_grad). Run: build/bin/lucid bench/bench_conv.lua. Prints one "name value unit" line per
-- case (milliseconds per iteration, best of several trials), like bench/bench.lua.
local lucid = require "lucid"
local nn, F = lucid.nn, lucid.nn.functional


local B = dofile((arg and arg[0] and arg[0]:match("^(.*/)") or "bench/") .. "common.lua")
local report, best = B.report, B.best

lucid.manual_seed(0)
local sink

-- ---------------------------------------------------------------- conv layers alone

for _, c in ipairs{
  {"conv1_3to16_32x32", 3, 16, 32},
  {"conv2_16to32_16x16", 16, 32, 16},
} do
  local name, cin, cout, hw = c[1], c[2], c[3], c[4]
  local conv = nn.Conv2d(cin, cout, 3, {padding = 1})
  local x = lucid.randn(64, cin, hw, hw)
  local xg = lucid.randn(64, cin, hw, hw, {requires_grad = true})
  lucid.no_grad(function()
    best(5, 1, function() sink = conv(x) end)
    report(name .. "_fwd_ms", best(20, 5, function() sink = conv(x) end) * 1e3, "ms")
  end)
  local function fb()
    conv:zero_grad()
    xg.grad = nil
    conv(xg):sum():backward()
  end
  best(3, 1, fb)
  report(name .. "_fwd_bwd_ms", best(10, 5, fb) * 1e3, "ms")
end

-- batch-1 inference of ResNet-18's 3x3 layers (Winograd F(2x2, 3x3) at 56x56 to 14x14, the
-- output-channel split at 7x7)
for _, c in ipairs{
  {"conv3x3_b1_64to64_56x56", 64, 56},
  {"conv3x3_b1_128to128_28x28", 128, 28},
  {"conv3x3_b1_256to256_14x14", 256, 14},
  {"conv3x3_b1_512to512_7x7", 512, 7},
} do
  local name, ch, hw = c[1], c[2], c[3]
  local conv = nn.Conv2d(ch, ch, 3, {padding = 1})
  local x = lucid.randn(1, ch, hw, hw)
  lucid.no_grad(function()
    best(5, 1, function() sink = conv(x) end)
    report(name .. "_fwd_ms", best(20, 5, function() sink = conv(x) end) * 1e3, "ms")
  end)
end

do
  local pool = nn.MaxPool2d(2, 2)
  local x = lucid.randn(64, 16, 32, 32)
  lucid.no_grad(function()
    report("maxpool2x2_64x16x32x32_ms", best(20, 5, function() sink = pool(x) end) * 1e3, "ms")
  end)
end

-- ---------------------------------------------------------------- the seed CNN

local model = B.seed_cnn()

local x = lucid.randn(64, 3, 32, 32)
local target = lucid.randint(1, 11, {64}) -- class targets are 1-based

local opt = lucid.optim.SGD(model:parameters(), {lr = 0.01, momentum = 0.9})

local function train_step()
  opt:zero_grad()
  local loss = F.cross_entropy(model(x), target)
  loss:backward()
  opt:step()
  sink = loss
end

model:train()
best(5, 1, train_step)
report("seed_cnn_train_step_b64_ms", best(20, 5, train_step) * 1e3, "ms")

model:eval()
lucid.no_grad(function()
  best(5, 1, function() sink = model(x) end)
  report("seed_cnn_inference_b64_ms", best(20, 5, function() sink = model(x) end) * 1e3, "ms")
end)
