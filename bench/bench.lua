-- bench.lua - lucid's micro-benchmarks; run by bench/run.sh as `lucid bench/bench.lua`.
-- Prints one "name value unit" line per case; bench/bench_torch.py prints the same names.
local lucid = require "lucid"

local B = dofile((arg and arg[0] and arg[0]:match("^(.*/)") or "bench/") .. "common.lua")
local report, best = B.report, B.best

local c -- results are stored here so no call is optimised into nothing

do -- dispatch overhead: c = a + b on tiny tensors
  local a, b = lucid.ones(1), lucid.ones(1)
  best(20000, 1, function() c = a + b end) -- warm-up
  report("add_1_ns", best(200000, 5, function() c = a + b end) * 1e9, "ns")
  a, b = lucid.ones(4, 4), lucid.ones(4, 4)
  report("add_4x4_ns", best(200000, 5, function() c = a + b end) * 1e9, "ns")
end

do -- the same with autograd: a and b require grad, so each add records a graph node
  local a = lucid.ones(4, 4, {requires_grad = true})
  local b = lucid.ones(4, 4, {requires_grad = true})
  best(20000, 1, function() c = a + b end)
  report("add_grad_ns", best(200000, 5, function() c = a + b end) * 1e9, "ns")
end

do -- a 4 -> 3 -> 2 MLP on one sample, forward + backward, written with plain tensor ops
  local x = lucid.randn(1, 4)
  local w1 = lucid.randn(3, 4, {requires_grad = true})
  local b1 = lucid.randn(3, {requires_grad = true})
  local w2 = lucid.randn(2, 3, {requires_grad = true})
  local b2 = lucid.randn(2, {requires_grad = true})
  local function step()
    w1.grad, b1.grad, w2.grad, b2.grad = nil, nil, nil, nil
    local h = (x:matmul(w1:t()) + b1):relu()
    local y = h:matmul(w2:t()) + b2
    y:sum():backward()
  end
  best(2000, 1, step)
  report("mlp_4_3_2_us", best(20000, 5, step) * 1e6, "us")
end

do -- issue 4: a 4 -> 3 -> 2 nn.Sequential on one sample, forward + backward + manual SGD
  local nn = lucid.nn
  local model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
  local params = model:parameters()
  local x = lucid.randn(1, 4)
  local function step()
    model:zero_grad()
    model(x):sum():backward()
    local guard <close> = lucid.no_grad()
    for i = 1, #params do
      local p = params[i]
      p:sub_(p.grad * 0.01)
    end
  end
  best(2000, 1, step)
  report("seq_4_3_2_sgd_us", best(20000, 5, step) * 1e6, "us")
end

do -- issue 4: a 784 -> 256 -> 10 MLP train step at batch 64: forward, cross-entropy,
   -- backward, SGD update
  local nn = lucid.nn
  local model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
  local x = lucid.rand(64, 784)
  local y = lucid.randint(1, 11, {64}, {dtype = "int64"})
  local opt = lucid.optim.SGD(model:parameters(), {lr = 0.01})
  local function step()
    opt:zero_grad()
    nn.functional.cross_entropy(model(x), y):backward()
    opt:step()
  end
  best(20, 1, step)
  report("mlp_784_256_10_step_ms", best(200, 5, step) * 1e3, "ms")
end

do
  local t = lucid.rand(1000)
  best(10000, 1, function() c = t:sum() end)
  report("sum_1000_ns", best(100000, 5, function() c = t:sum() end) * 1e9, "ns")
end

do -- memory bandwidth: one thread, 2 reads + 1 write of 4 bytes per element
  local threads = lucid.get_num_threads()
  lucid.set_num_threads(1)
  local n = 10 * 1000 * 1000
  local a, b = lucid.rand(n), lucid.rand(n)
  c = a + b
  c = nil
  local s = best(1, 10, function() c = a + b; c = nil end)
  report("add_10M_1t_gbps", 3 * 4 * n / s / 1e9, "GB/s")
  lucid.set_num_threads(threads)
end

do -- matmul from Lua, compared with cblas_sgemm called from C (bench/blas.c)
  local n = 1024
  local threads = lucid.get_num_threads()
  local name = "matmul_1024_gflops" -- on the runtime's threads (timed by a wall clock)
  local a, b = lucid.rand(n, n) - 0.5, lucid.rand(n, n) - 0.5
  c = a:matmul(b)
  local s = best(1, 7, function() c = a:matmul(b) end)
  report(name, 2 * n * n * n / s / 1e9, "GFLOP/s")
  lucid.set_num_threads(threads)
end
