-- bench_attention.lua - the fused F.scaled_dot_product_attention, forward + backward at batch 1,
-- 8 heads, sequence 1024, head dim 64, float32: the time per step (best of several trials) and
-- the peak RSS it adds over the inputs (one step measured first, in this fresh process).
-- Prints "name value unit" lines; bench/attention_torch.py prints the same names for PyTorch.
--   usage: build/bin/lucid bench/bench_attention.lua
local lucid = require "lucid"
local F = require("lucid.nn").functional

local B = dofile((arg and arg[0] and arg[0]:match("^(.*/)") or "bench/") .. "common.lua")

local function status_mb(key)
  local f = assert(io.open("/proc/self/status", "r"))
  local s = f:read("a")
  f:close()
  return tonumber(s:match(key .. ":%s*(%d+)")) / 1024
end

lucid.manual_seed(0)
local Bn, H, L, D = 1, 8, 1024, 64
local q = lucid.randn(Bn, H, L, D):requires_grad_()
local k = lucid.randn(Bn, H, L, D):requires_grad_()
local v = lucid.randn(Bn, H, L, D):requires_grad_()
local g = lucid.randn(Bn, H, L, D)

local function step()
  local o = F.scaled_dot_product_attention(q, k, v)
  o:backward(g)
  q.grad, k.grad, v.grad = nil, nil, nil
end

collectgarbage()
local before = status_mb("VmRSS")
step()
local peak = status_mb("VmHWM")
B.report("attn_b1_h8_s1024_d64_peak_rss_delta_mb", peak - before, "MB")
step()
B.report("attn_b1_h8_s1024_d64_fwd_bwd_ms", 1e3 * B.best(3, 5, step), "ms")
