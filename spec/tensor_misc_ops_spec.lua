-- The miscellaneous ops (docs/tensor.md "Miscellaneous ops"): meshgrid, unique(_consecutive),
-- searchsorted, bucketize, clamp with tensor bounds, nan_to_num, isclose, lerp, cdist,
-- cosine_similarity, pairwise_distance. Values, shapes, dtypes and gradients against PyTorch
-- 1.13 (spec/fixtures/misc_ops.lua, written by tools/fixtures/misc_ops.py), gradcheck and
-- gradgradcheck in float64, errors and edge cases.
local h = require "helpers"
local lucid = h.lucid
local raises = h.raises
local T = lucid.Tensor
local F = lucid.nn.functional
local gradcheck, gradgradcheck = lucid.autograd.gradcheck, lucid.autograd.gradgradcheck

local FX = require("helpers").fixture("misc_ops")


local function check(name, t, e, rel, abs)
  assert.are.equal(e.dtype, t.dtype, name .. ": dtype")
  require("helpers").check_values(name, t, e.values, e.shape, rel, abs)
end

local function make(e)
  local t = T(e.values, {dtype = e.dtype})
  if #e.shape == 0 then return t end
  return t:reshape(e.shape)
end

local function pack(...) return {...} end

-- op name -> function(inputs, opts) returning the outputs as a list
local OPS = {
  meshgrid = function(x, o)
    if o then return pack(lucid.meshgrid(x, o)) end
    return pack(lucid.meshgrid(x))
  end,
  unique = function(x, o) return pack(x[1]:unique(o)) end,
  unique_consecutive = function(x, o) return pack(lucid.unique_consecutive(x[1], o)) end,
  searchsorted = function(x, o) return {lucid.searchsorted(x[1], x[2], o)} end,
  searchsorted_sorter = function(x) return {lucid.searchsorted(x[1], x[2], {sorter = x[3]})} end,
  bucketize = function(x, o) return {lucid.bucketize(x[1], x[2], o)} end,
  clamp = function(x) return {x[1]:clamp(x[2], x[3])} end,
  clamp_min = function(x) return {x[1]:clamp_min(x[2])} end,
  clamp_max = function(x) return {lucid.clamp_max(x[1], x[2])} end,
  nan_to_num = function(x, o) return {x[1]:nan_to_num(o)} end,
  isclose = function(x, o) return {lucid.isclose(x[1], x[2], o)} end,
  lerp = function(x) return {x[1]:lerp(x[2], x[3])} end,
  lerp_scalar = function(x, o) return {lucid.lerp(x[1], x[2], o.weight)} end,
  cdist = function(x, o) return {lucid.cdist(x[1], x[2], o)} end,
  cosine_similarity = function(x, o) return {F.cosine_similarity(x[1], x[2], o)} end,
  pairwise_distance = function(x, o) return {F.pairwise_distance(x[1], x[2], o)} end,
}
-- meshgrid_grad's output is a sum of two views
local COMBINE = {meshgrid_grad = function(outs) return {outs[1] * 2 + outs[2]} end}

describe("misc ops against PyTorch", function()
  local names = {}
  for name in pairs(FX) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    local c = FX[name]
    it(name, function()
      local ins = {}
      for i, e in ipairs(c.inputs) do
        ins[i] = make(e)
        if c.grads and c.grads[i] then ins[i]:requires_grad_() end
      end
      local opts = next(c.opts) ~= nil and c.opts or nil
      local outs = assert(OPS[c.op], c.op)(ins, opts)
      if COMBINE[name] then outs = COMBINE[name](outs) end
      assert.are.equal(#c.outputs, #outs, name .. ": number of outputs")
      for k, e in ipairs(c.outputs) do
        local rel = e.dtype == "float32" and 2e-5 or 1e-10
        check(name .. " output " .. k, outs[k], e, rel, rel / 10)
      end
      if c.grads then
        outs[1]:backward(make(c.grad_output))
        for i, g in ipairs(c.grads) do
          if g then check(name .. " grad " .. i, ins[i].grad, g, 1e-9, 1e-10) end
        end
      end
    end)
  end
end)

local function d(...) return lucid.randn({...}, {dtype = "float64"}) end

describe("misc ops: gradcheck and gradgradcheck in float64", function()
  local cases = {
    clamp_both = {function(x, l, u) return x:clamp(l, u) end, {d(3, 4), d(1, 4) - 0.5, d(3, 1) + 0.5}},
    clamp_min = {function(x, l) return x:clamp_min(l) end, {d(3, 4), d(4)}},
    clamp_max = {function(x, u) return lucid.clamp(x, nil, u) end, {d(3, 4), d(3, 1)}},
    nan_to_num = {function(x) return x:nan_to_num() * x end, {d(5)}},
    lerp = {function(s, e, w) return s:lerp(e, w) end, {d(2, 3), d(3), lucid.rand(2, 1, {dtype = "float64"})}},
    lerp_scalar = {function(s, e) return lucid.lerp(s, e, 0.25) end, {d(2, 3), d(2, 3)}},
    cdist2 = {function(a, b) return lucid.cdist(a, b) end, {d(2, 4, 3), d(2, 5, 3)}},
    cdist1 = {function(a, b) return lucid.cdist(a, b, {p = 1}) end, {d(4, 3), d(5, 3)}},
    cdist3 = {function(a, b) return lucid.cdist(a, b, {p = 3}) end, {d(4, 3), d(5, 3)}},
    cdist_mm = {function(a, b) return lucid.cdist(a, b) end, {d(27, 2), d(3, 2)}},
    cosine = {function(a, b) return lucid.cosine_similarity(a, b) end, {d(3, 4), d(3, 4)}},
    pairwise = {function(a, b) return lucid.pairwise_distance(a, b) end, {d(3, 4), d(3, 4)}},
    meshgrid = {function(a, b)
      local x, y = lucid.meshgrid(a, b)
      return x * y
    end, {d(3), d(2)}},
  }
  for name, c in pairs(cases) do
    it(name, function()
      assert.is_true(gradcheck(c[1], c[2]))
      assert.is_true(gradgradcheck(c[1], c[2]))
    end)
  end
end)

describe("misc ops: behaviour", function()
  it("meshgrid returns expanded views and takes a list", function()
    local a, b = T({1, 2, 3}), T({4, 5})
    local x, y = lucid.meshgrid({a, b}, {indexing = "xy"})
    assert.are.same({2, 3}, x.shape)
    assert.are.same({{1, 2, 3}, {1, 2, 3}}, x:tolist())
    assert.are.same({{4, 4, 4}, {5, 5, 5}}, y:tolist())
    assert.are.same({0, 1}, x:stride())
    local one = {lucid.meshgrid(a)}
    assert.are.equal(1, #one)
    raises({"lucid.meshgrid: expected at least one tensor"}, lucid.meshgrid)
    raises({"lucid.meshgrid", "0-dim or 1-D"}, lucid.meshgrid, lucid.ones(2, 2))
    raises({"lucid.meshgrid", "one dtype"}, lucid.meshgrid, a, T({1}, {dtype = "int64"}))
    raises({"lucid.meshgrid", "indexing", "\"ij\" or \"xy\""}, lucid.meshgrid, a, {indexing = "ab"})
  end)

  it("unique: defaults, empty and 0-dim inputs, errors", function()
    local v = T({2, 1, 2}):unique()
    assert.are.same({1, 2}, v:tolist())
    local e, inv, cnt = lucid.zeros(0):unique{return_inverse = true, return_counts = true}
    assert.are.same({0}, e.shape)
    assert.are.same({0}, inv.shape)
    assert.are.same({0}, cnt.shape)
    local s, si = T(5):unique{return_inverse = true}
    assert.are.same({5}, s:tolist())
    assert.are.same({}, si.shape)
    assert.are.equal(1, si:item())
    -- NaNs are each distinct (and sort last)
    local n = T({0 / 0, 1, 0 / 0}):unique()
    assert.are.equal(3, n.shape[1])
    -- non-contiguous and expanded inputs
    assert.are.same({1, 2}, T({{1, 2}, {2, 1}}):t():unique():tolist())
    assert.are.same({{7, 8}}, T({7, 8}):expand(3, 2):unique{dim = 1}:tolist())
    raises({"lucid.unique", "dim"}, function() return T(5):unique{dim = 1} end)
    raises({"lucid.unique", "dim"}, function() return T({1}):unique{dim = 3} end)
    raises({"lucid.unique", "unknown"}, function() return T({1}):unique{bogus = 1} end)
    assert.is_nil(T({1.5}, {requires_grad = true}):unique().grad_fn)
  end)

  it("searchsorted / bucketize: 1-based positions, numbers, errors", function()
    local s = T({1, 3, 5})
    assert.are.same({1, 2, 4}, lucid.searchsorted(s, T({0, 3, 9})):tolist())
    assert.are.same({1, 3, 4}, lucid.searchsorted(s, T({0, 3, 9}), {right = true}):tolist())
    assert.are.equal(3, lucid.searchsorted(s, 4):item())
    assert.are.equal(3, lucid.bucketize(4, s):item())
    assert.are.equal("int32", lucid.bucketize(T({4}), s, {out_int32 = true}).dtype)
    assert.are.same({0}, lucid.searchsorted(s, lucid.zeros(0)).shape)
    assert.are.same({1, 1}, lucid.searchsorted(lucid.zeros(0), T({1, 2})):tolist())
    raises({"lucid.searchsorted", "side", "contradicts"}, lucid.searchsorted, s, T({1}),
      {right = false, side = "right"})
    raises({"lucid.searchsorted", "side"}, lucid.searchsorted, s, T({1}), {side = "up"})
    raises({"lucid.searchsorted", "leading dims"}, lucid.searchsorted, lucid.ones(2, 3), lucid.ones(3, 3))
    raises({"lucid.searchsorted", "0-dim"}, lucid.searchsorted, T(1), T({1}))
    raises({"lucid.bucketize", "1-D"}, lucid.bucketize, T({1}), lucid.ones(2, 2))
    raises({"lucid.searchsorted", "sorter"}, lucid.searchsorted, s, T({1}),
      {sorter = T({1, 2, 4}, {dtype = "int64"})})
    raises({"lucid.searchsorted", "sorter", "1-based"}, lucid.searchsorted, s, T({1}),
      {sorter = T({0, 1, 2}, {dtype = "int64"})})
  end)

  it("clamp / clip: numbers keep the scalar op, tensors broadcast, mixed, in place", function()
    local x = T({1, 5, 3})
    assert.are.same({2, 4, 3}, x:clamp(2, 4):tolist())
    assert.are.same({2, 4, 3}, x:clip(T({2}), 4):tolist())
    assert.are.same({{1, 2, 2}, {1, 3, 3}}, x:clamp(nil, T({{2}, {3}})):tolist())
    assert.are.same({2, 5, 3}, lucid.clamp_min(x, 2):tolist())
    assert.are.same({1, 2, 2}, x:clamp_max(2):tolist())
    local y = T({1, 5, 3})
    y:clamp_(T({2, 2, 2}), T({4}))
    assert.are.same({2, 4, 3}, y:tolist())
    y:clamp_max_(T({3}))
    assert.are.same({2, 3, 3}, y:tolist())
    y:clamp_min_(2.5)
    assert.are.same({2.5, 3, 3}, y:tolist())
    assert.are.equal("ClampBackward", x:requires_grad_():clamp(T({2}), nil).grad_fn)
    raises({"lucid.clamp", "broadcast"}, function() return T({1, 2}):clamp(T({1, 2, 3})) end)
    raises({"lucid.clamp_min", "min", "tensor or a number"}, lucid.clamp_min, T({1}), "x")
  end)

  it("nan_to_num: integers copied, in place, float32 limits", function()
    assert.are.same({1, 2}, T({1, 2}, {dtype = "int64"}):nan_to_num():tolist())
    local x = T({0 / 0, 1 / 0, 2})
    x:nan_to_num_{nan = 5, posinf = 6}
    assert.are.same({5, 6, 2}, x:tolist())
    local g = T({0 / 0, 1, -1 / 0}, {dtype = "float64", requires_grad = true})
    g:nan_to_num():sum():backward()
    assert.are.same({0, 1, 0}, g.grad:tolist())
  end)

  it("isclose and allclose share the rule, equal_nan", function()
    local a, b = T({1, 0 / 0}), T({1, 0 / 0})
    assert.are.same({true, false}, lucid.isclose(a, b):tolist())
    assert.are.same({true, true}, a:isclose(b, {equal_nan = true}):tolist())
    assert.is_false(lucid.allclose(a, b))
    assert.is_true(lucid.allclose(a, b, {equal_nan = true}))
    assert.is_true(a:allclose(b, 1e-5, 1e-8, true))
    raises({"lucid.isclose", "one dtype"}, lucid.isclose, T({1}), T({1}, {dtype = "float64"}))
    raises({"lucid.isclose", "non-negative"}, lucid.isclose, T({1}), T({1}), {rtol = -1})
  end)

  it("lerp: dtype rules, in place", function()
    local s = T({0, 10})
    s:lerp_(T({10, 20}), 0.5)
    assert.are.same({5, 15}, s:tolist())
    s:lerp_(T({5, 15}), T({0.5, 1}))
    assert.are.same({5, 15}, s:tolist())
    raises({"lucid.lerp", "end"}, lucid.lerp, T({1}), T({1}, {dtype = "float64"}), 0.5)
    raises({"lucid.lerp", "float"}, lucid.lerp, T({1}, {dtype = "int64"}), T({1}, {dtype = "int64"}), 0.5)
    raises({"lucid.lerp", "weight", "tensor or a number"}, lucid.lerp, T({1}), T({1}), "w")
  end)

  it("cdist, cosine_similarity, pairwise_distance: shapes and errors", function()
    assert.are.same({3, 0}, lucid.cdist(lucid.randn(3, 2), lucid.randn(0, 2)).shape)
    assert.are.same({2, 2}, lucid.cdist(lucid.randn(2, 0), lucid.randn(2, 0)).shape)
    -- the matrix-product path agrees with the direct one
    local a, b = d(40, 3), d(5, 3)
    assert.is_true(lucid.allclose(lucid.cdist(a, b), lucid.cdist(a, b, {p = 2 + 1e-12}), 1e-6, 1e-6))
    -- a zero distance has a finite (zero) gradient
    local z = d(30, 2):requires_grad_()
    lucid.cdist(z, z):sum():backward()
    for _, v in ipairs(z.grad:reshape(-1):tolist()) do assert(v == v and math.abs(v) < math.huge) end
    raises({"lucid.cdist", "at least 2 dims"}, lucid.cdist, lucid.ones(3), lucid.ones(2, 3))
    raises({"lucid.cdist", "last dim"}, lucid.cdist, lucid.ones(2, 3), lucid.ones(2, 4))
    raises({"lucid.cdist", "non-negative"}, lucid.cdist, lucid.ones(2, 3), lucid.ones(2, 3), {p = -1})
    raises({"lucid.cdist", "float"}, lucid.cdist, lucid.ones(2, 3, {dtype = "int64"}), lucid.ones(2, 3))
    assert.are.same({3}, lucid.cosine_similarity(lucid.ones(3, 4), lucid.ones(4)).shape)
    assert.are.equal(0, lucid.cosine_similarity(lucid.zeros(2, 3), lucid.ones(2, 3)):sum():item())
    raises({"lucid.cosine_similarity", "dim"}, lucid.cosine_similarity, lucid.ones(3), lucid.ones(3), {dim = 3})
    assert.are.same({3, 1}, F.pairwise_distance(lucid.ones(3, 4), lucid.ones(3, 4), {keepdim = true}).shape)
  end)
end)
