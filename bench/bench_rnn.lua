-- bench_rnn.lua - recurrent layers, float32: one training step (forward, sum loss, backward)
-- of a 2-layer LSTM and GRU, input 256, hidden 256, seq 64, batch 32, and the forward alone
-- (no grad). Prints "name value ms" lines (best of several trials); bench/rnn_torch.py prints the
-- same names for PyTorch.   usage: build/bin/lucid bench/bench_rnn.lua
local lucid = require "lucid"
local nn = require "lucid.nn"

lucid.manual_seed(0)
local B = dofile((arg and arg[0] and arg[0]:match("^(.*/)") or "bench/") .. "common.lua")
local report, best = B.report, B.best

local T, N, IN, HID = 64, 32, 256, 256
local ITERS, TRIALS = 3, 5

for _, kind in ipairs{"LSTM", "GRU"} do
  local m = nn[kind](IN, HID, {num_layers = 2})
  local x = lucid.randn(T, N, IN)
  local function step()
    m:zero_grad()
    local out, h = m(x)
    local loss = out:sum()
    loss:backward()
  end
  step()
  report(kind:lower() .. "_2l_h256_t64_b32_train_step_ms", best(ITERS, TRIALS, step) * 1e3, "ms")
  local function fwd()
    local prev = lucid.set_grad_enabled(false)
    m(x)
    lucid.set_grad_enabled(prev)
  end
  fwd()
  report(kind:lower() .. "_2l_h256_t64_b32_forward_ms", best(ITERS, TRIALS, fwd) * 1e3, "ms")
end
