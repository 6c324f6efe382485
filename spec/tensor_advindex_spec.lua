-- The advanced-indexing family: einsum, scatter_reduce(_), index_add(_), index_copy(_),
-- index_put(_), take_along_dim, one_hot (docs/tensor.md "Advanced indexing and einsum").
-- Values, shapes, dtypes and gradients against PyTorch 1.13 (spec/fixtures/advindex.lua,
-- written by tools/fixtures/advindex.py), then gradcheck / gradgradcheck in float64 and errors.
local h = require "helpers"
local lucid = h.lucid
local T = lucid.Tensor

local FX = require("helpers").fixture("advindex")

local flat = require("helpers").flat

local function check(name, t, expected, shape)
  assert.are.same(shape, t.shape, name .. ": shape")
  local got, want = flat(t:tolist()), flat(expected)
  assert(#got == #want, ("%s: %d values, expected %d"):format(name, #got, #want))
  for i = 1, #got do
    local a, b = got[i], want[i]
    if type(b) == "boolean" then b = b and 1 or 0 end
    if type(a) == "boolean" then a = a and 1 or 0 end
    assert(math.abs(a - b) <= 1e-9 + 1e-9 * math.abs(b),
      ("%s: value %d is %.17g, expected %.17g"):format(name, i, a, b))
  end
end

local names = {}
for k in pairs(FX) do names[#names + 1] = k end
table.sort(names)

describe("advanced indexing: PyTorch fixtures", function()
  for _, name in ipairs(names) do
    local c = FX[name]
    it(name, function()
      local ins = {}
      for k, s in ipairs(c.inputs) do
        local t = T(s[1], {dtype = s[2]})
        if #s[3] == 0 then t = t:reshape({}) end
        if s[4] then t:requires_grad_(true) end
        ins[k] = t
      end
      local out = c.call(table.unpack(ins))
      assert.are.equal(c.out_dtype, out.dtype)
      check(name, out, c.output, c.out_shape)
      if c.grads then
        local leaves, want = {}, {}
        for k, gr in ipairs(c.grads) do
          if gr then
            leaves[#leaves + 1] = ins[k]
            want[#want + 1] = gr
          end
        end
        local go = T(c.grad_output, {dtype = out.dtype})
        if #c.out_shape == 0 then go = go:reshape({}) end
        local gs = lucid.autograd.grad(out, leaves, go)
        for k = 1, #leaves do
          check(name .. ": grad " .. k, gs[k], want[k], leaves[k].shape)
        end
      end
    end)
  end
end)

describe("advanced indexing: gradcheck and gradgradcheck (float64)", function()
  local gc, ggc = lucid.autograd.gradcheck, lucid.autograd.gradgradcheck
  local function r(...) return lucid.randn({...}, {dtype = "float64"}) end
  local function I(v) return T(v, {dtype = "int64"}) end

  it("einsum", function()
    local cases = {
      {"ij,jk->ik", {r(2, 3), r(3, 4)}},
      {"bij,bjk->bik", {r(2, 2, 3), r(2, 3, 2)}},
      {"ii->i", {r(3, 3)}},
      {"...ij,...jk", {r(2, 1, 2, 3), r(3, 3, 2)}},
      {"ij,jk,kl->il", {r(2, 3), r(3, 2), r(2, 2)}},
      {"iij,jk->ik", {r(2, 2, 3), r(3, 2)}},
    }
    for _, c in ipairs(cases) do
      local f = function(...) return lucid.einsum(c[1], ...) end
      assert.is_true(gc(f, c[2]), c[1])
      assert.is_true(ggc(f, c[2]), c[1])
    end
  end)

  it("scatter_reduce (every reduction, with and without self)", function()
    local idx = I({{1, 2, 1}, {3, 1, 1}})
    for _, red in ipairs({"sum", "prod", "mean", "amax", "amin"}) do
      for _, inc in ipairs({true, false}) do
        local f = function(x, s) return x:scatter_reduce(1, idx, s, red, inc) end
        local x, s = r(3, 3), r(2, 3)
        assert.is_true(gc(f, {x, s}), red)
        if red ~= "amax" and red ~= "amin" then assert.is_true(ggc(f, {x, s}), red) end
      end
    end
  end)

  it("index_add, index_copy, index_put, take_along_dim", function()
    local i = I({1, 3, 1})
    assert.is_true(gc(function(x, s) return x:index_add(1, i, s, {alpha = -1.5}) end,
      {r(3, 2), r(3, 2)}))
    assert.is_true(ggc(function(x, s) return x:index_add(1, i, s) end, {r(3, 2), r(3, 2)}))
    assert.is_true(gc(function(x, s) return x:index_copy(2, I({2, 1}), s) end,
      {r(2, 3), r(2, 2)}))
    assert.is_true(ggc(function(x, s) return x:index_copy(2, I({2, 1}), s) end,
      {r(2, 3), r(2, 2)}))
    for _, acc in ipairs({true, false}) do
      -- duplicates only where they accumulate (else which write wins is unspecified)
      local a, b = I({1, 3, acc and 1 or 2}), I({2, 2, 2})
      local f = function(x, v) return x:index_put({a, b}, v, acc) end
      assert.is_true(gc(f, {r(3, 2), r(3)}))
      assert.is_true(ggc(f, {r(3, 2), r(3)}))
    end
    local f = function(x) return lucid.take_along_dim(x, I({{2}, {1}}), 2) end
    assert.is_true(gc(f, {r(2, 3)}))
    assert.is_true(ggc(f, {r(2, 3)}))
  end)
end)

describe("advanced indexing: in place, edge cases, errors", function()
  local function I(v) return T(v, {dtype = "int64"}) end

  it("in-place forms write into the tensor and keep autograd", function()
    local x = lucid.zeros(2, 3)
    assert.are.equal(x, x:index_add_(2, I({1, 1}), lucid.ones(2, 2)))
    assert.are.same({{2, 0, 0}, {2, 0, 0}}, x:tolist())
    x:index_copy_(1, I({2}), T({{7, 8, 9}}))
    assert.are.same({{2, 0, 0}, {7, 8, 9}}, x:tolist())
    x:index_put_({I({1}), I({3})}, T(5.0))
    assert.are.same({{2, 0, 5}, {7, 8, 9}}, x:tolist())
    x:scatter_reduce_(2, I({{1, 1}}), T({{4, 1}}), "amax")
    assert.are.same({{4, 0, 5}, {7, 8, 9}}, x:tolist())
    local w = lucid.ones(2, 2, {dtype = "float64", requires_grad = true})
    local y = w * 1
    y:index_add_(1, I({1}), (w * 2):narrow(1, 1, 1))
    y:sum():backward()
    assert.are.same({{3, 3}, {1, 1}}, w.grad:tolist())
    assert.has_error(function() w:index_add_(1, I({1}), lucid.ones(1, 2, {dtype = "float64"})) end)
  end)

  it("one_hot: 1-based classes, int64, num_classes inferred", function()
    local o = lucid.nn.functional.one_hot(I({3, 1}))
    assert.are.equal("int64", o.dtype)
    assert.are.same({{0, 0, 1}, {1, 0, 0}}, o:tolist())
    assert.are.same({2, 4}, lucid.one_hot(I({1, 2}), 4).shape)
    assert.has_error(function() lucid.one_hot(I({0})) end, nil)
    assert.has_error(function() lucid.one_hot(I({}), -1) end)
  end)

  it("empty and 0-dim inputs", function()
    assert.are.same({0, 3}, lucid.einsum("ij,jk->ik", lucid.zeros(0, 2), lucid.zeros(2, 3)).shape)
    assert.are.same({{0, 0}}, lucid.einsum("ij,jk->ik", lucid.zeros(1, 0), lucid.zeros(0, 2)):tolist())
    assert.are.equal(6, lucid.einsum(",->", T(2.0):reshape({}), T(3.0):reshape({})):item())
    local x = lucid.zeros(2, 2)
    assert.are.same({2, 2}, x:index_add(1, I({}):reshape({0}), lucid.zeros(0, 2)).shape)
    assert.are.same({2, 2}, x:scatter_reduce(1, lucid.zeros(0, 2, {dtype = "int64"}),
      lucid.zeros(0, 2), "mean").shape)
  end)

  it("errors name the function, the argument and the 1-based range", function()
    local x = lucid.zeros(2, 3)
    local function msg(f)
      local ok, e = pcall(f)
      assert.is_false(ok)
      return tostring(e)
    end
    assert.matches("lucid.index_add: argument 3 %(index%).*expected 1..2",
      msg(function() x:index_add(1, I({3}), lucid.zeros(1, 3)) end))
    assert.matches("index_add.*source", msg(function() x:index_add(1, I({1}), lucid.zeros(1, 2)) end))
    assert.matches("lucid.scatter_reduce: argument 3 %(index%).*expected 1..3",
      msg(function() x:scatter_reduce(2, I({{4}}), lucid.zeros(1, 1), "sum") end))
    assert.matches("argument 5 %(reduce%)",
      msg(function() x:scatter_reduce(2, I({{1}}), lucid.zeros(1, 1), "max") end))
    assert.matches("lucid.index_put: argument 2 %(indices%).*expected 1..3",
      msg(function() x:index_put({I({1}), I({4})}, T(1.0)) end))
    assert.matches("index_put.*broadcast",
      msg(function() x:index_put({I({1, 2})}, lucid.zeros(3, 3)) end))
    assert.matches("lucid.take_along_dim: argument 2 %(indices%).*expected 1..3",
      msg(function() lucid.take_along_dim(x, I({{4}}), 2) end))
    assert.matches("lucid.einsum: .*operand 2 has 2 dims but 1 subscripts",
      msg(function() lucid.einsum("ij,j", x, x) end))
    assert.matches("lucid.einsum: .*subscript", msg(function() lucid.einsum("ij,jk->ik", x, x) end))
    assert.matches("lucid.einsum: argument 1", msg(function() lucid.einsum(1, x) end))
    assert.matches("lucid.one_hot: argument 1 %(input%)", msg(function() lucid.one_hot(x) end))
    assert.matches("lucid.one_hot: argument 1 %(input%).*expected 1..2",
      msg(function() lucid.one_hot(I({3}), 2) end))
  end)
end)
