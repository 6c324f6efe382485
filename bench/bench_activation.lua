-- bench_activation.lua - float32 activation kernels on one thread: forward and forward+backward
-- of each activation, softmax and log_softmax on 1M-element tensors (softmax also on {64, 1000}).
-- Prints one "name value us" line per case (best of several trials, microseconds per call);
-- bench/bench_activation_torch.py prints the same names for PyTorch.
--   usage: build/bin/lucid bench/bench_activation.lua
local lucid = require "lucid"
local F = require("lucid.nn").functional

lucid.set_num_threads(1)
lucid.manual_seed(0)

local B = dofile((arg and arg[0] and arg[0]:match("^(.*/)") or "bench/") .. "common.lua")
local report, best = B.report, B.best

local ITERS, TRIALS = 10, 7
local sink -- results are stored here so no call is optimised into nothing

-- name, shape, f(x)
local big = {1000, 1000}
local cases = {
  {"gelu", big, function(x) return F.gelu(x) end},
  {"gelu_tanh", big, function(x) return F.gelu(x, {approximate = "tanh"}) end},
  {"silu", big, function(x) return F.silu(x) end},
  {"mish", big, function(x) return F.mish(x) end},
  {"softplus", big, function(x) return F.softplus(x) end},
  {"elu", big, function(x) return F.elu(x) end},
  {"leaky_relu", big, function(x) return F.leaky_relu(x) end},
  {"softmax_last", big, function(x) return F.softmax(x, -1) end},
  {"softmax_dim1", big, function(x) return F.softmax(x, 1) end},
  {"softmax_64x1000_last", {64, 1000}, function(x) return F.softmax(x, -1) end},
  {"softmax_64x1000_dim1", {64, 1000}, function(x) return F.softmax(x, 1) end},
  {"log_softmax_last", big, function(x) return F.log_softmax(x, -1) end},
}

for _, c in ipairs(cases) do
  local name, shape, f = c[1], c[2], c[3]
  local numel = shape[1] * shape[2]
  local scale = 1e6 / numel -- small cases run more calls per trial
  local iters = math.max(ITERS, math.floor(ITERS * scale))
  local x = lucid.randn(shape) * 3
  do
    local guard <close> = lucid.no_grad()
    best(2, 1, function() sink = f(x) end)
    report(name .. "_fwd", best(iters, TRIALS, function() sink = f(x) end) * 1e6, "us")
  end
  local xg = x:detach():requires_grad_()
  local g = lucid.randn(shape)
  local function step()
    xg.grad = nil
    f(xg):backward(g)
    sink = xg.grad
  end
  best(2, 1, step)
  report(name .. "_fwdbwd", best(iters, TRIALS, step) * 1e6, "us")
end
