-- The cumulative ops: cumsum, cumprod, logcumsumexp, diff (docs/tensor.md "Cumulative ops").
-- Values, dtypes, shapes and input gradients against PyTorch 1.13 (spec/fixtures/scan.lua,
-- written by tools/fixtures/scan.py), then gradcheck in float64, errors and edge cases.
local h = require "helpers"
local lucid = h.lucid
local raises, same = h.raises, h.same
local T = lucid.Tensor

-- the fixture's argument lists build tensors with lucid.Tensor
local FX = require("helpers").fixture("scan")


local check = require("helpers").check_values

local function tensor_of(values, shape, dtype)
  local t = T(values, {dtype = dtype})
  if #shape == 0 then return t end
  return t:reshape(shape)
end

local TOL = {float32 = {2e-5, 2e-6}, float64 = {1e-11, 1e-12}}

describe("cumulative ops against PyTorch", function()
  it("cumsum, cumprod, logcumsumexp and diff: values, dtypes, shapes and gradients", function()
    local n, graded = 0, 0
    for name, c in pairs(FX) do
      n = n + 1
      local leaf = tensor_of(c.input, c.shape, c.dtype)
      if c.grad_output then leaf:requires_grad_() end
      local t = leaf
      if c.perm then t = t:permute(c.perm) end
      if c.expand then t = t:expand(c.expand) end
      assert(c.perm == nil or not t:is_contiguous(), name .. ": the view is not strided")
      local y = t[c.op](t, table.unpack(c.args))
      assert.are.equal(c.out_dtype, y.dtype, name .. ": dtype")
      local tol = TOL[c.out_dtype] or {0, 0}
      check(name, y, c.output, c.out_shape, tol[1], tol[2])
      -- the lucid.<op>(t, ...) spelling is the same function
      check(name .. " (lucid." .. c.op .. ")", lucid[c.op](t, table.unpack(c.args)), c.output,
        c.out_shape, tol[1], tol[2])
      if c.grad_output then
        graded = graded + 1
        y:backward(tensor_of(c.grad_output, c.out_shape, c.out_dtype))
        assert.are.equal(c.dtype, leaf.grad.dtype, name .. ": grad dtype")
        -- the gradient is computed in the output's dtype: the coarser of the two tolerances
        local gt = (c.dtype == "float32" or c.out_dtype == "float32") and TOL.float32 or TOL.float64
        check(name .. " (grad)", leaf.grad, c.input_grad, c.shape, gt[1] * 5, gt[2] * 5)
      end
    end
    assert.are.equal(94, n)
    assert(graded > 50, "gradient cases: " .. graded)
  end)
end)

describe("cumulative ops: semantics", function()
  it("dims are 1-based, negative from the end; a 0-dim tensor takes 1 and -1", function()
    local x = T({{1, 2, 3}, {4, 5, 6}})
    same(x:cumsum(1), {{1, 2, 3}, {5, 7, 9}})
    same(x:cumsum(2), {{1, 3, 6}, {4, 9, 15}})
    same(x:cumsum(-1), x:cumsum(2):tolist())
    same(x:cumsum(-2), x:cumsum(1):tolist())
    same(T(2.5):cumsum(1), 2.5)
    same(T(2.5):cumprod(-1), 2.5)
    same(T(2.5):logcumsumexp(1), 2.5)
    same(x:cumsum{dim = 2}, {{1, 3, 6}, {4, 9, 15}})
    same(lucid.cumprod(x, 2), {{1, 2, 6}, {4, 20, 120}})
    same(lucid.logcumsumexp(T({0, 0}), 1), {0, math.log(2)})
  end)

  it("integer and bool inputs give int64; dtype converts first", function()
    local i = T({1, 2, 3}, {dtype = "int32"})
    assert.are.equal("int64", i:cumsum(1).dtype)
    assert.are.equal("int32", i:cumsum(1, {dtype = "int32"}).dtype)
    assert.are.equal("int64", T({true, true, false}, {dtype = "bool"}):cumprod(1).dtype)
    assert.are.same({1, 2, 2}, T({true, true, false}, {dtype = "bool"}):cumsum(1):tolist())
    assert.are.equal("float64", i:cumprod(1, {dtype = lucid.float64}).dtype)
    assert.are.equal("float32", T({1, 2}):cumsum(1).dtype)
    assert.are.same({1, -1}, T({1.5, -2.7}):cumsum(1, {dtype = "int64"}):tolist())
  end)

  it("large tensors (threaded chunks) agree with sums", function()
    local x = lucid.ones(700, 300, {dtype = "float64"})
    local c1, c2 = x:cumsum(1), x:cumsum(2)
    same(c1[-1], lucid.full({300}, 700):tolist())
    same(c2[{{}, -1}], lucid.full({700}, 300):tolist())
    local r = lucid.randn(600, 80, {dtype = "float64"})
    h.close(r:cumsum(1)[-1], r:sum(1), 1e-9)
    h.close(r:t():cumsum(2)[{{}, -1}], r:sum(1), 1e-9)
    h.close(r:logcumsumexp(1)[-1], r:logsumexp(1), 1e-9)
  end)

  it("empty tensors keep their shape; diff of an empty dim stays empty", function()
    assert.are.same({0, 3}, lucid.zeros(0, 3):cumsum(2).shape)
    assert.are.same({2, 0}, lucid.zeros(2, 0):logcumsumexp(1).shape)
    assert.are.same({0}, lucid.zeros(0):diff().shape)
    assert.are.same({1, 0}, lucid.zeros(2, 0):diff(1, 1).shape)
    assert.are.same({3, 0}, lucid.zeros(3, 4):diff(10).shape)
  end)

  it("diff: positional, options, n <= 0, bool xor, promotion with prepend / append", function()
    local x = T({1, 4, 9, 16}, {dtype = "int64"})
    assert.are.same({3, 5, 7}, x:diff():tolist())
    assert.are.same({2, 2}, x:diff(2):tolist())
    assert.are.same({2, 2}, x:diff{n = 2}:tolist())
    assert.are.same({2, 2}, lucid.diff(x, {n = 2, dim = 1}):tolist())
    assert.are.same({1, 4, 9, 16}, x:diff(0):tolist())
    assert.are.same({1, 4, 9, 16}, x:diff(-1):tolist())
    -- n == 0 ignores prepend, as torch.diff
    assert.are.same({1, 4, 9, 16}, x:diff(0, 1, T({0}, {dtype = "int64"})):tolist())
    assert.are.same({1, 3, 5, 7}, x:diff{prepend = T({0}, {dtype = "int64"})}:tolist())
    local p = x:diff{append = T({20})}
    assert.are.equal("float32", p.dtype)
    same(p, {3, 5, 7, 4})
    local b = T({true, false, false, true}, {dtype = "bool"}):diff()
    assert.are.equal("bool", b.dtype)
    assert.are.same({true, false, true}, b:tolist())
  end)
end)

describe("cumulative ops: autograd", function()
  local gc = lucid.autograd.gradcheck
  local function r(...) return lucid.randn({...}, {dtype = "float64"}) end

  it("grad_fn names", function()
    local x = T({1, 2, 3}, {requires_grad = true})
    assert.are.equal("CumsumBackward", x:cumsum(1).grad_fn)
    assert.are.equal("CumprodBackward", x:cumprod(1).grad_fn)
    assert.are.equal("LogcumsumexpBackward", x:logcumsumexp(1).grad_fn)
    assert.are.equal("SubBackward", x:diff().grad_fn)
    assert.is_nil(x:cumsum(1, {dtype = "int64"}).grad_fn)
    assert.is_false(x:cumsum(1, {dtype = "int64"}).requires_grad)
  end)

  it("gradcheck: cumsum, cumprod, logcumsumexp along every dim, strided and expanded", function()
    for _, op in ipairs({"cumsum", "cumprod", "logcumsumexp"}) do
      for _, d in ipairs({1, 2, 3, -1}) do
        assert.is_true(gc(function(a) return a[op](a, d) end, {r(2, 3, 4)}))
      end
      assert.is_true(gc(function(a) return a:permute(3, 1, 2)[op](a:permute(3, 1, 2), 2) end,
        {r(2, 3, 4)}))
      assert.is_true(gc(function(a) return a:expand(3, 4)[op](a:expand(3, 4), 1) end, {r(1, 4)}))
      assert.is_true(gc(function(a) return a[op](a, 1) end, {r(1)}))
      assert.is_true(gc(function(a) return a:reshape({})[op](a:reshape({}), -1) end, {r(1)}))
    end
    -- wider than one chunk of columns
    assert.is_true(gc(function(a) return a:cumprod(1) end, {r(3, 70)}))
  end)

  it("gradcheck: cumprod with zeros (first zero, a second one, zeros at the ends)", function()
    local x = r(4, 6)
    x[{1, 3}] = 0
    x[{2, 1}] = 0
    x[{3, 2}] = 0
    x[{3, 5}] = 0
    x[{4, 6}] = 0
    assert.is_true(gc(function(a) return a:cumprod(2) end, {x}))
    assert.is_true(gc(function(a) return a:cumprod(1) end, {x}))
    assert.is_true(gc(function(a) return a:cumprod(1) end, {lucid.zeros({3}, {dtype = "float64"})}))
  end)

  it("gradcheck: logcumsumexp is stable for large magnitudes", function()
    local x = T({{700, 1, -650, 699}, {-800, -805, -790, -900}}, {dtype = "float64"})
    assert.is_true(gc(function(a) return a:logcumsumexp(2) end, {x}))
    local y = T({1000, 1, -1000}, {dtype = "float64", requires_grad = true})
    y:logcumsumexp(1):backward(T({1, -2, 3}, {dtype = "float64"}))
    same(y.grad, {2, 0, 0}, 1e-12)
  end)

  it("gradcheck: diff with n, dim, prepend and append (gradients reach all three)", function()
    assert.is_true(gc(function(a) return a:diff() end, {r(3, 5)}))
    assert.is_true(gc(function(a) return a:diff(3, 1) end, {r(5, 2)}))
    assert.is_true(gc(function(a, p, q) return a:diff{n = 2, dim = 2, prepend = p, append = q} end,
      {r(3, 4), r(3, 2), r(3, 1)}))
    assert.is_true(gc(function(a) return a:t():diff(2) end, {r(4, 3)}))
  end)

  it("cumsum / cumprod with a wider dtype send the gradient back in the input's dtype", function()
    local x = T({1, 2, 3}, {requires_grad = true})
    local y = x:cumprod(1, {dtype = "float64"})
    assert.are.equal("float64", y.dtype)
    y:sum():backward()
    assert.are.equal("float32", x.grad.dtype)
    same(x.grad, {1 + 2 + 6, 1 + 3, 2}) -- d/dx of x1 + x1 x2 + x1 x2 x3
    local z = T({1, 2, 3}, {requires_grad = true})
    z:cumsum(1, {dtype = "float64"}):sum():backward()
    same(z.grad, {3, 2, 1})
  end)
end)

describe("cumulative ops: higher-order gradients (create_graph)", function()
  local gg = lucid.autograd.gradgradcheck
  local function r(...) return lucid.randn({...}, {dtype = "float64"}) end

  it("gradgradcheck: every op along every dim, strided, 0-dim", function()
    for _, op in ipairs({"cumsum", "cumprod", "logcumsumexp"}) do
      for _, d in ipairs({1, 2, -1}) do
        assert.is_true(gg(function(a) return a[op](a, d) end, {r(2, 3, 4)}))
      end
      assert.is_true(gg(function(a) return a:t()[op](a:t(), 1) end, {r(3, 4)}))
      assert.is_true(gg(function(a) return a:reshape({})[op](a:reshape({}), 1) end, {r(1)}))
    end
    assert.is_true(gg(function(a, p) return a:diff{n = 2, prepend = p} ^ 2 end, {r(3, 5), r(3, 1)}))
  end)

  it("cumprod with zeros: exact to any order (PyTorch's values)", function()
    local x = r(3, 5)
    x[{1, 2}] = 0
    x[{2, 1}] = 0
    x[{2, 4}] = 0
    x[{3, 5}] = 0
    assert.is_true(gg(function(a) return a:cumprod(2) end, {x}))
    assert.is_true(gg(function(a) return a:cumprod(1) end, {x}))
    local a = T({2, 0, 3, 0.5}, {dtype = "float64", requires_grad = true})
    local g1 = lucid.autograd.grad({a:cumprod(1):sum()}, {a}, {create_graph = true})[1]
    same(g1, {1, 11, 0, 0})
    local g2 = lucid.autograd.grad({g1:sum()}, {a})[1]
    same(g2, {5.5, 14.5, 3, 6}) -- torch.autograd.grad twice
  end)

  it("logcumsumexp: second derivative as PyTorch's", function()
    local b = T({{1, -2, 3}, {0.5, 0.1, -1}}, {dtype = "float64", requires_grad = true})
    local g = lucid.autograd.grad({b:logcumsumexp(2)}, {b}, {
      grad_outputs = {T({{1, 2, -1}, {0.3, -0.7, 2}}, {dtype = "float64"})}, create_graph = true})[1]
    local hh = lucid.autograd.grad({(g * g):sum()}, {b})[1]
    same(hh, {{-0.276258331970876, -0.49368508711509146, 0.7699434190859704},
      {0.38454236889345483, -0.17795735570369814, -0.20658501318975656}}, 1e-10)
  end)
end)

describe("cumulative ops: errors", function()
  local x = T({{1, 2, 3}, {4, 5, 6}})
  it("dim: required, 1-based, in range", function()
    raises("lucid.cumsum: argument 2 (dim): expected a dim, got nil", function() return x:cumsum() end)
    raises("lucid.cumprod: argument 2 (dim): dim 0 is invalid: dims are 1-based",
      function() return x:cumprod(0) end)
    raises({"lucid.logcumsumexp: argument 2 (dim)", "out of range"},
      function() return x:logcumsumexp(3) end)
    raises({"lucid.cumsum: argument 2 (dim)", "out of range"}, function() return T(1):cumsum(2) end)
    raises({"lucid.cumsum: argument 2 (dim)", "out of range"},
      function() return x:cumsum(math.maxinteger) end)
    raises("lucid.cumsum: argument 2 (dim): expected an integer, got", function() return x:cumsum(1.5) end)
    raises("lucid.diff: argument 3 (dim)", function() return x:diff(1, 3) end)
  end)

  it("dtypes: logcumsumexp needs float, bool is no result dtype, names are checked", function()
    raises("lucid.logcumsumexp: expected a float32 or float64 input, got int64",
      function() return x:long():logcumsumexp(1) end)
    raises("lucid.logcumsumexp: expected a float32 or float64 input, got bool",
      function() return x:bool():logcumsumexp(1) end)
    raises("lucid.cumsum: dtype bool is not supported", function() return x:cumsum(1, {dtype = "bool"}) end)
    raises("lucid.cumsum: argument 3 (dtype): unknown dtype 'complex64'",
      function() return x:cumsum(1, {dtype = "complex64"}) end)
    raises("lucid.logcumsumexp: unknown option 'dtype'",
      function() return x:logcumsumexp(1, {dtype = "float64"}) end)
    raises("lucid.cumsum: unknown option 'keepdim'", function() return x:cumsum(1, {keepdim = true}) end)
    raises("lucid.cumsum: argument 1 (input): expected a tensor, got number",
      function() return lucid.cumsum(3, 1) end)
  end)

  it("diff: at least one dim, matching prepend / append, integer n", function()
    raises("lucid.diff: expected a tensor with at least one dim, got a 0-dim tensor",
      function() return T(1):diff() end)
    raises("lucid.diff: prepend must have as many dims as the input (2), got 1",
      function() return x:diff{prepend = T({1})} end)
    raises("lucid.diff: append must match the input's shape except along dim 2: the input's size of dim 1 is 2, append's is 3",
      function() return x:diff{append = T({{1}, {2}, {3}})} end)
    raises("lucid.diff: argument 4 (prepend): expected a tensor, got number",
      function() return x:diff(1, 2, 5) end)
    raises("lucid.diff: argument 2 (n): expected an integer, got", function() return x:diff(1.5) end)
    raises("lucid.diff: too many arguments", function() return x:diff(1, 2, nil, nil, 7) end)
    raises("lucid.diff: unknown option 'm'", function() return x:diff{m = 1} end)
  end)
end)
