-- nn.functional.scaled_dot_product_attention (the fused op of src/kernels/attention.c) against
-- PyTorch (spec/fixtures/attention.lua, written by tools/fixtures/attention.py from PyTorch
-- 2.x's definition in torch ops): outputs and q, k, v gradients with no mask, bool / float /
-- broadcast masks, causal, L != S, Ev != E, a custom scale, float32 and float64, 3-D and 4-D.
-- Then gradcheck in float64 (masks, causal, dropout), dropout's statistics and reproducibility,
-- fully hidden rows, a 4096-long sequence, and the argument errors.
local lucid = require "lucid"
local nn = require "lucid.nn"
local F = nn.functional
local H = require "nn_helpers"

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local FX = dofile(here .. "fixtures/attention.lua")
local T = lucid.Tensor
local sdpa = F.scaled_dot_product_attention

local function finite(t)
  local m = t:abs():max():item()
  return m == m and m < math.huge
end

local function tol(dt) if dt == "float32" then return 2e-5, 2e-5 end return 1e-10, 1e-12 end

describe("scaled_dot_product_attention against PyTorch", function()
  it("values and q, k, v gradients of every fixture case", function()
    local n = 0
    for name, c in pairs(FX) do
      n = n + 1
      local rel, abs = tol(c.dtype)
      local q = T(c.q, {dtype = c.dtype, requires_grad = true})
      local k = T(c.k, {dtype = c.dtype, requires_grad = true})
      local v = T(c.v, {dtype = c.dtype, requires_grad = true})
      local mask
      if c.mask_dtype == "bool" then mask = T(c.mask, {dtype = "bool"})
      elseif c.mask_dtype == "float" then mask = T(c.mask, {dtype = c.dtype}) end
      local y = sdpa(q, k, v, {attn_mask = mask, is_causal = c.is_causal, scale = c.scale})
      assert.are.equal(c.dtype, y.dtype)
      local ok, err = pcall(H.assert_close, y, c.output, rel, abs)
      assert(ok, name .. ": " .. tostring(err))
      y:backward(T(c.grad_output, {dtype = c.dtype}))
      for _, p in ipairs{{"q", q}, {"k", k}, {"v", v}} do
        ok, err = pcall(H.assert_close, p[2].grad, c[p[1] .. "_grad"], rel, abs)
        assert(ok, name .. " (" .. p[1] .. " grad): " .. tostring(err))
      end
    end
    assert.are.equal(15, n)
  end)

  it("takes its arguments positionally too", function()
    local c = FX.scale_float_mask_f64
    local q, k, v = T(c.q, {dtype = "float64"}), T(c.k, {dtype = "float64"}), T(c.v, {dtype = "float64"})
    local y = sdpa(q, k, v, T(c.mask, {dtype = "float64"}), 0, false, c.scale)
    H.assert_close(y, c.output, 1e-10, 1e-12)
    H.assert_close(F.scaled_dot_product_attention{query = q, key = k, value = v,
      attn_mask = T(c.mask, {dtype = "float64"}), scale = c.scale}, c.output, 1e-10, 1e-12)
  end)
end)

describe("scaled_dot_product_attention gradients (gradcheck, float64)", function()
  local gc = lucid.autograd.gradcheck
  local function r(...) return lucid.randn({...}, {dtype = "float64"}) end

  it("without a mask, with bool / float / broadcast masks, causal, custom scale", function()
    local bm = lucid.rand(1, 1, 5, 7):gt(0.3)
    bm[{{}, {}, {}, 1}] = true
    local fm = r(5, 7)
    local ins = {r(2, 2, 5, 3), r(2, 2, 7, 3), r(2, 2, 7, 4)}
    assert.is_true(gc(function(q, k, v) return sdpa(q, k, v) end, ins))
    assert.is_true(gc(function(q, k, v) return sdpa(q, k, v, {attn_mask = bm}) end, ins))
    assert.is_true(gc(function(q, k, v) return sdpa(q, k, v, {attn_mask = fm}) end, ins))
    assert.is_true(gc(function(q, k, v) return sdpa(q, k, v, {is_causal = true}) end, ins))
    assert.is_true(gc(function(q, k, v) return sdpa(q, k, v, {scale = 0.7}) end, ins))
    assert.is_true(gc(function(q, k, v) return sdpa(q, k, v, {is_causal = true}) end,
      {r(3, 70, 3), r(3, 67, 3), r(3, 67, 2)})) -- more than one 64-wide tile
  end)

  it("with dropout (the same seed at every evaluation draws the same mask)", function()
    local ins = {r(1, 2, 5, 3), r(1, 2, 6, 3), r(1, 2, 6, 4)}
    assert.is_true(gc(function(q, k, v)
      lucid.manual_seed(123)
      return sdpa(q, k, v, {dropout_p = 0.3})
    end, ins))
    assert.is_true(gc(function(q, k, v)
      lucid.manual_seed(7)
      return sdpa(q, k, v, {dropout_p = 0.5, is_causal = true})
    end, ins))
  end)

  it("second order (gradgradcheck): masks, causal, a hidden row; not with dropout", function()
    local ggc = lucid.autograd.gradgradcheck
    local ins = {r(1, 2, 4, 3), r(1, 2, 5, 3), r(1, 2, 5, 2)}
    local bm = T({{true, false, true, true, false}, {false, false, false, false, false},
      {true, true, true, true, true}, {false, true, false, false, true}}, {dtype = "bool"})
    local fm = r(4, 5)
    assert.is_true(ggc(function(q, k, v) return sdpa(q, k, v) end, ins))
    assert.is_true(ggc(function(q, k, v) return sdpa(q, k, v, {attn_mask = bm}) end, ins))
    assert.is_true(ggc(function(q, k, v) return sdpa(q, k, v, {attn_mask = fm, scale = 0.8}) end, ins))
    assert.is_true(ggc(function(q, k, v) return sdpa(q, k, v, {is_causal = true}) end, ins))
    -- the recorded gradient equals the fused one
    local bm2 = T({{true, false, true, true, false}, {false, false, false, false, false}}, {dtype = "bool"})
    local a, b2, c = r(2, 2, 3):requires_grad_(), r(2, 5, 3):requires_grad_(), r(2, 5, 4):requires_grad_()
    local w = r(2, 2, 4)
    local y1 = sdpa(a, b2, c, {attn_mask = bm2})
    local g1 = lucid.autograd.grad({y1}, {a, b2, c}, {w})
    local y2 = sdpa(a, b2, c, {attn_mask = bm2})
    local g2 = lucid.autograd.grad({y2}, {a, b2, c}, {w}, {create_graph = true})
    for i = 1, 3 do H.assert_close(g2[i], g1[i]:tolist(), 1e-12, 1e-12) end
    local q = r(1, 3, 2):requires_grad_()
    local y = sdpa(q, q, q, {dropout_p = 0.2})
    local ok, err = pcall(lucid.autograd.grad, {y:sum()}, {q}, nil, {create_graph = true})
    assert.is_false(ok)
    assert.truthy(tostring(err):find("ScaledDotProductAttentionBackward: create_graph (higher-order gradients) with dropout_p > 0 is not supported", 1, true), tostring(err))
  end)
end)

describe("scaled_dot_product_attention dropout", function()
  it("averages to the no-dropout output over many seeds", function()
    lucid.manual_seed(1)
    local q, k, v = lucid.randn(1, 4, 6, 3), lucid.randn(1, 4, 5, 3), lucid.randn(1, 4, 5, 2)
    local want = sdpa(q, k, v)
    local acc = lucid.zeros(1, 4, 6, 2)
    local N = 2000
    for s = 1, N do
      lucid.manual_seed(s)
      acc = acc + sdpa(q, k, v, {dropout_p = 0.4})
    end
    local err = ((acc / N - want):abs():max()):item()
    assert.is_true(err < 0.08, "mean deviates by " .. err)
  end)

  it("reproducible under manual_seed; the gradient sees the forward's zeros", function()
    -- v = identity rows: output row i is the dropped weights of row i, so its exact zeros
    -- are the keep mask; the gradient of v is zero exactly in the rows no query kept
    local L = 40
    local q, k = lucid.randn(1, L, 4, {dtype = "float64"}), lucid.randn(1, L, 4, {dtype = "float64"})
    local v = lucid.eye(L, {dtype = "float64"}):unsqueeze(1):requires_grad_()
    lucid.manual_seed(5)
    local a = sdpa(q, k, v, {dropout_p = 0.5})
    lucid.manual_seed(5)
    local b = sdpa(q, k, v, {dropout_p = 0.5})
    assert.is_true(lucid.equal(a, b))
    local c = sdpa(q, k, v, {dropout_p = 0.5})
    assert.is_false(lucid.equal(a, c))
    local zeros = a:eq(0)
    local frac = zeros:double():mean():item()
    assert.is_true(frac > 0.4 and frac < 0.6, "dropped fraction " .. frac)
    -- out[i, c] = sum_j w[i, j] v[j, c] with the dropped weights w (= a): for grad_output =
    -- the identity, v's gradient [j, c] is w[c, j], so v.grad = a^T with a's exact zeros
    a:backward(lucid.eye(L, {dtype = "float64"}):unsqueeze(1))
    H.assert_close(v.grad, a:transpose(2, 3):tolist(), 1e-12, 1e-14)
    assert.is_true(lucid.equal(v.grad:eq(0), zeros:transpose(2, 3)))
  end)
end)

describe("scaled_dot_product_attention edges", function()
  it("a fully hidden row gives output 0 and gradient 0 (PyTorch's math path: NaN)", function()
    local q = lucid.randn(1, 3, 4, {dtype = "float64"}):requires_grad_()
    local k, v = lucid.randn(1, 5, 4, {dtype = "float64"}), lucid.randn(1, 5, 2, {dtype = "float64"})
    local m = T({{true, false, true, false, false}, {false, false, false, false, false},
      {false, true, false, false, false}}, {dtype = "bool"})
    local y = sdpa(q, k, v, {attn_mask = m})
    H.assert_close(y[{{}, 2}], {{0, 0}}, 0, 0)
    y:sum():backward()
    H.assert_close(q.grad[{{}, 2}], {{0, 0, 0, 0}}, 0, 0)
    assert.is_true(finite(q.grad))
    -- a float mask of -inf hides the same way
    local fm = lucid.zeros(3, 5, {dtype = "float64"})
    fm[2] = -math.huge
    H.assert_close(sdpa(q, k, v, {attn_mask = fm})[{{}, 2}], {{0, 0}}, 0, 0)
  end)

  it("a long sequence (L = S = 4096, E = 64, one head) without an L x S matrix", function()
    lucid.manual_seed(2)
    local q = lucid.randn(1, 1, 4096, 64):requires_grad_()
    local k, v = lucid.randn(1, 1, 4096, 64), lucid.randn(1, 1, 4096, 64)
    local y = sdpa(q, k, v, {is_causal = true})
    assert.are.same({1, 1, 4096, 64}, y.shape)
    y:sum():backward()
    assert.is_true(finite(q.grad))
    -- causal: the first row attends to key 1 only
    H.assert_close(y[{1, 1, 1}], v[{1, 1, 1}]:tolist(), 1e-6, 1e-6)
  end)

  it("strided and expanded inputs, empty sequences", function()
    local q = lucid.randn(2, 4, 3):transpose(2, 3) -- (2, 3, 4)
    local k = lucid.randn(2, 5, 4)
    local v = lucid.randn(1, 5, 2):expand(2, 5, 2)
    H.assert_close(sdpa(q, k, v), sdpa(q:contiguous(), k, v:contiguous()):tolist(), 1e-6, 1e-6)
    local m = T({true, false, true, true, false}, {dtype = "bool"}):expand(3, 5)
    H.assert_close(sdpa(q, k, v, {attn_mask = m}),
      sdpa(q, k, v, {attn_mask = m:contiguous()}):tolist(), 1e-6, 1e-6)
    assert.are.same({2, 0, 2}, sdpa(lucid.zeros(2, 0, 4), k, v).shape)
    H.assert_close(sdpa(q, lucid.zeros(2, 0, 4), lucid.zeros(2, 0, 2)), lucid.zeros(2, 3, 2):tolist(), 0, 0)
  end)
end)

describe("scaled_dot_product_attention errors", function()
  local q = lucid.randn(2, 3, 4, 5)
  local P = "nn.functional.scaled_dot_product_attention: "
  local function has(msg, want)
    assert.truthy(msg:find(want, 1, true), "got: " .. msg)
  end

  it("names the argument, 1-based", function()
    has(H.err(sdpa, lucid.randn(5), q, q), P .. "argument 1 (query): expected a tensor of at least 2 dims")
    has(H.err(sdpa, q, lucid.randn(2, 3, 4), q), P .. "argument 2 (key): expected as many dims as the query")
    has(H.err(sdpa, q, lucid.randn(2, 3, 4, 6), q), P .. "argument 2 (key): expected the query's embedding size E = 5 in its last dim, got shape {2, 3, 4, 6}")
    has(H.err(sdpa, q, q, lucid.randn(2, 3, 6, 5)), P .. "argument 3 (value): expected the key's sequence length S = 4")
    has(H.err(sdpa, q, lucid.randn(2, 2, 4, 5), q), P .. "argument 2 (key): expected the leading (batch, heads) dims {2, 3}")
    has(H.err(sdpa, q, q, q, {attn_mask = lucid.randn(3, 4)}), P .. "argument 4 (attn_mask): expected a shape broadcastable to {2, 3, 4, 4}")
    has(H.err(sdpa, q, q, q, {attn_mask = lucid.zeros(4, 4, {dtype = "int64"})}), P .. "argument 4 (attn_mask): expected a bool tensor or a float32 one")
    has(H.err(sdpa, q, q, q, {dropout_p = 1}), P .. "argument 5 (dropout_p): expected a probability in [0, 1), got 1")
    has(H.err(sdpa, q, q, q, {dropout_p = -0.5}), P .. "argument 5 (dropout_p)")
    has(H.err(sdpa, q, q, q, {attn_mask = lucid.ones(4, 4, {dtype = "bool"}), is_causal = true}), P .. "argument 6 (is_causal)")
    has(H.err(sdpa, lucid.zeros(2, 3, {dtype = "int64"}), q, q), P .. "argument 1 (query): expected a float32 or float64 tensor, got int64")
    has(H.err(sdpa, q, q:double(), q), P .. "argument 2 (key): expected a float32 tensor (the query's dtype), got float64")
    has(H.err(sdpa, q, q, q, {scale = "x"}), P .. "argument 7 (scale)")
    has(H.err(sdpa, q, q, q, {scale = 0 / 0}), P .. "argument 7 (scale): expected a finite number")
    has(H.err(sdpa, q, q, q, "mask"), P .. "argument 4 (attn_mask): expected a tensor, got string")
    has(H.err(sdpa, q, q, q, {is_causal = 1}), P .. "argument 6 (is_causal)")
    has(H.err(sdpa, q, q, q, {dropout_p = 0 / 0}), P .. "argument 5 (dropout_p)")
    has(H.err(sdpa, q, q, q, {bogus = 1}), "bogus")
    has(H.err(sdpa, q, q), P .. "argument 3 (value)")
    -- the runtime stays usable
    assert.are.same({2, 3, 4, 5}, sdpa(q, q, q).shape)
  end)
end)
