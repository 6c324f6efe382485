-- The sorting family (sort, argsort, topk, kthvalue, median, mode) against PyTorch
-- (spec/fixtures/sorting.lua, written by tools/fixtures/sorting.py): values, 1-based int64
-- indices, shapes and dtypes of every case, in both spellings (t:name(...) and
-- lucid.name(t, ...)), and the input gradient of the values for float64 cases. Then the Lua
-- forms (positional, options table, defaults), edge shapes, errors and gradcheck.
local lucid = require "lucid"
local H = require "helpers"

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local FX = dofile(here .. "fixtures/sorting.lua")

local T = lucid.Tensor

local function nan(v) return v ~= v end

-- The nested Lua table v equals want exactly (NaN equals NaN).
local function same(v, want, where)
  if type(want) ~= "table" then
    assert(type(v) ~= "table", where .. ": expected a scalar")
    assert(v == want or (nan(v) and nan(want)),
      ("%s: got %s, expected %s"):format(where, tostring(v), tostring(want)))
    return
  end
  assert(type(v) == "table" and #v == #want,
    ("%s: expected %d entries, got %s"):format(where, #want, type(v) == "table" and #v or type(v)))
  for i = 1, #want do same(v[i], want[i], where .. "[" .. i .. "]") end
end

local function close(v, want, where)
  if type(want) ~= "table" then
    assert(math.abs(v - want) <= 1e-12 + 1e-9 * math.abs(want),
      ("%s: got %.17g, expected %.17g"):format(where, v, want))
    return
  end
  assert(#v == #want, where .. ": sizes differ")
  for i = 1, #want do close(v[i], want[i], where .. "[" .. i .. "]") end
end

local function shape_is(t, want, where)
  same(t.shape, want, where .. " shape")
end

describe("sorting family against PyTorch", function()
  it("every fixture case: values, indices, shapes, dtypes and gradients", function()
    local n = 0
    for name, c in pairs(FX) do
      n = n + 1
      for _, spelling in ipairs({"method", "function"}) do
        local grad = c.grad_output ~= nil
        local leaf = T(c.input, {dtype = c.dtype, requires_grad = grad})
        local x = leaf
        if c.transpose then x = x:transpose(c.transpose[1], c.transpose[2]) end
        local a = {}
        for i, v in ipairs(c.args) do a[i] = v end
        if c.opts then a[#a + 1] = c.opts end
        local r1, r2
        if spelling == "method" then
          r1, r2 = x[c.op](x, table.unpack(a))
        else
          r1, r2 = lucid[c.op](x, table.unpack(a))
        end
        local where = name .. " (" .. spelling .. ")"
        local values, indices = r1, r2
        if c.op == "argsort" then values, indices = nil, r1 end
        if c.indices == nil then assert(r2 == nil, where .. ": one result expected") end
        if values then
          assert.equal(c.dtype, values.dtype)
          shape_is(values, c.shape, where)
          same(values:tolist(), c.values, where .. " values")
        end
        if c.indices then
          assert.equal("int64", indices.dtype)
          shape_is(indices, c.shape, where)
          same(indices:tolist(), c.indices, where .. " indices")
        end
        if grad then
          values:backward(T(c.grad_output, {dtype = "float64"}))
          close(leaf.grad:tolist(), c.input_grad, where .. " grad")
        end
      end
    end
    assert.equal(46, n)
  end)
end)

describe("sorting family: Lua forms", function()
  local x = T({{3, 1, 2}, {0, 5, 4}})

  it("sort: dim defaults to -1, positional or by name, both results", function()
    local v, i = x:sort()
    same(v:tolist(), {{1, 2, 3}, {0, 4, 5}}, "v")
    same(i:tolist(), {{2, 3, 1}, {1, 3, 2}}, "i")
    v, i = x:sort{dim = 1, descending = true}
    same(v:tolist(), {{3, 5, 4}, {0, 1, 2}}, "v")
    same(i:tolist(), {{1, 2, 2}, {2, 1, 1}}, "i")
    v, i = lucid.sort(x, 1, true)
    same(i:tolist(), {{1, 2, 2}, {2, 1, 1}}, "i")
    v = lucid.sort(x, -1, {descending = true, stable = true})
    same(v:tolist(), {{3, 2, 1}, {5, 4, 0}}, "v")
    same(x:argsort{descending = true}:tolist(), {{1, 3, 2}, {2, 3, 1}}, "argsort")
    same(lucid.argsort(x, 1):tolist(), {{2, 1, 1}, {1, 2, 2}}, "argsort dim")
  end)

  it("topk: k required, dim -1, largest and sorted by default", function()
    local v, i = x:topk(2)
    same(v:tolist(), {{3, 2}, {5, 4}}, "v")
    same(i:tolist(), {{1, 3}, {2, 3}}, "i")
    v, i = x:topk{k = 1, dim = 1, largest = false}
    same(v:tolist(), {{0, 1, 2}}, "v")
    same(i:tolist(), {{2, 1, 1}}, "i")
    v, i = lucid.topk(x, 3, 2, true, false) -- sorted = false still gives them in order
    same(v:tolist(), {{3, 2, 1}, {5, 4, 0}}, "v")
    shape_is(x:topk(0), {2, 0}, "k = 0")
  end)

  it("kthvalue, median, mode: keepdim, dims, one result for median()", function()
    local v, i = x:kthvalue(2)
    same(v:tolist(), {2, 4}, "v")
    same(i:tolist(), {3, 3}, "i")
    v, i = x:kthvalue(1, 1, true)
    same(v:tolist(), {{0, 1, 2}}, "v")
    same(i:tolist(), {{2, 1, 1}}, "i")
    local m, mi = x:median()
    assert.equal(2, m:item())
    assert.is_nil(mi)
    assert.same({}, m.shape)
    v, i = lucid.median(x, 2)
    same(v:tolist(), {2, 4}, "v")
    same(i:tolist(), {3, 3}, "i")
    v, i = x:median{dim = 1, keepdim = true}
    same(v:tolist(), {{0, 1, 2}}, "v")
    v, i = T({1, 2, 2, 1, 3}):mode()
    assert.equal(1, v:item())
    assert.equal(4, i:item())
    v, i = T({{1, 1}, {2, 2}, {2, 1}}):mode{dim = 1, keepdim = true}
    same(v:tolist(), {{2, 1}}, "mode v")
    same(i:tolist(), {{3, 3}}, "mode i")
  end)

  it("every dtype: sort and mode on bool, the rest on numbers", function()
    for _, dt in ipairs({"float32", "float64", "int32", "int64"}) do
      local t = T({4, 2, 9, 2}, {dtype = dt})
      local v, i = t:sort()
      assert.equal(dt, v.dtype)
      same(v:tolist(), {2, 2, 4, 9}, dt)
      same(i:tolist(), {2, 4, 1, 3}, dt)
      assert.equal(9, t:topk(1):item())
      assert.equal(2, t:median():item())
      assert.equal(4, t:kthvalue(3):item())
      local mv, mi = t:mode()
      assert.equal(2, mv:item())
      assert.equal(4, mi:item())
    end
    local b = T({true, false, true}, {dtype = "bool"})
    local v, i = b:sort()
    same(v:tolist(), {false, true, true}, "bool")
    same(i:tolist(), {2, 1, 3}, "bool i")
    assert.equal(true, b:mode():item())
  end)

  it("NaN sorts as the largest; median of a row with NaN is NaN", function()
    local t = T({1, 0 / 0, -math.huge, 2})
    local v, i = t:sort()
    same(v:tolist(), {-math.huge, 1, 2, 0 / 0}, "v")
    same(i:tolist(), {3, 1, 4, 2}, "i")
    v = t:sort{descending = true}
    same(v:tolist(), {0 / 0, 2, 1, -math.huge}, "desc")
    v, i = t:topk(1)
    assert.is_true(nan(v:item()))
    assert.equal(2, i:item())
    assert.is_true(nan(t:median():item()))
  end)

  it("empty and 0-dim tensors", function()
    local e = lucid.zeros(0, 3)
    local v, i = e:sort(1)
    shape_is(v, {0, 3}, "v")
    assert.equal("int64", i.dtype)
    shape_is(e:topk(2, 2), {0, 2}, "topk")
    shape_is(e:median(2), {0}, "median no rows")
    shape_is(e:mode(2), {0}, "mode no rows")
    assert.is_true(nan(lucid.zeros(0):median():item()))
    local s = T(7.5)
    v, i = s:sort()
    assert.same({}, v.shape)
    assert.equal(1, i:item())
    v, i = s:kthvalue(1)
    assert.equal(7.5, v:item())
    assert.equal(1, i:item())
    assert.equal(7.5, s:median():item())
    v, i = s:topk(1, 1)
    assert.equal(1, i:item())
  end)

  it("non-contiguous and expanded inputs", function()
    local base = T({{5, 1}, {2, 8}, {0, 3}})
    local tt = base:t() -- {{5, 2, 0}, {1, 8, 3}}
    local v, i = tt:sort()
    same(v:tolist(), {{0, 2, 5}, {1, 3, 8}}, "v")
    same(i:tolist(), {{3, 2, 1}, {1, 3, 2}}, "i")
    local ex = T({3, 1, 2}):expand(2, 3)
    v, i = ex:topk(2)
    same(v:tolist(), {{3, 2}, {3, 2}}, "expanded")
    same(i:tolist(), {{1, 3}, {1, 3}}, "expanded i")
    v, i = ex:mode(1)
    same(i:tolist(), {2, 2, 2}, "mode last occurrence")
  end)
end)

describe("sorting family: errors", function()
  local x = T({{3, 1, 2}, {0, 5, 4}})
  it("k out of range, bad dims, dtypes, arguments", function()
    H.raises({"lucid.topk: k = 4 out of range for dim 2 of size 3 (expected 0..3)"},
      function() return x:topk(4) end)
    H.raises("lucid.topk: k = -1 out of range", function() return x:topk(-1) end)
    H.raises("lucid.kthvalue: k = 0 out of range for dim 2 of size 3 (expected 1..3)",
      function() return x:kthvalue(0) end)
    H.raises("lucid.kthvalue: k = 3 out of range for dim 1 of size 2 (expected 1..2)",
      function() return x:kthvalue(3, 1) end)
    H.raises("lucid.topk: argument 2 (k): expected an integer, got nil",
      function() return x:topk() end)
    H.raises("lucid.topk: argument 2 (k): expected an integer", function() return x:topk(1.5) end)
    H.raises("lucid.sort: argument 2 (dim): dim 3 out of range for a tensor with 2 dims",
      function() return x:sort(3) end)
    H.raises("lucid.sort: argument 2 (dim): dim 0 is invalid: dims are 1-based",
      function() return x:sort(0) end)
    H.raises("lucid.median: argument 2 (dim): dim -3 out of range",
      function() return lucid.median(x, -3) end)
    H.raises("lucid.mode: argument 3 (keepdim): expected a boolean, got number",
      function() return x:mode(1, 1) end)
    H.raises("lucid.sort: argument 3 (descending): expected a boolean",
      function() return x:sort(1, "yes") end)
    H.raises("lucid.median: argument 3 (keepdim): keepdim needs a dim",
      function() return x:median{keepdim = true} end)
    H.raises("lucid.sort: unknown option 'reverse' (expected one of: input, dim, descending, stable)",
      function() return x:sort{reverse = true} end)
    H.raises("lucid.argsort: argument 1 (input): expected a tensor",
      function() return lucid.argsort({3, 1}) end)
    local b = T({true, false}, {dtype = "bool"})
    H.raises("lucid.topk: expected a float32, float64, int32 or int64 tensor, got bool",
      function() return b:topk(1) end)
    H.raises("lucid.median: expected a float32, float64, int32 or int64 tensor, got bool",
      function() return b:median() end)
    H.raises("lucid.kthvalue: expected a float32", function() return b:kthvalue(1) end)
    H.raises("lucid.median: cannot take the median of the empty dim 1",
      function() return lucid.zeros(0, 3):median(1) end)
    H.raises("lucid.mode: cannot take the mode of the empty dim 1",
      function() return lucid.zeros(0, 3):mode(1) end)
    H.raises("lucid.kthvalue: cannot take the k-th smallest value of the empty dim 2",
      function() return lucid.zeros(2, 0):kthvalue(1) end)
    H.raises("lucid.topk: k = 1 out of range for dim 1 of size 0",
      function() return lucid.zeros(0):topk(1) end)
    H.raises("lucid.median: an empty int64 tensor has no median",
      function() return lucid.zeros(0, {dtype = "int64"}):median() end)
    H.raises("lucid.kthvalue: k = 2 out of range for dim 1 of size 1",
      function() return T(3):kthvalue(2) end)
  end)
end)

describe("sorting family gradients (gradcheck, float64)", function()
  local gc = lucid.autograd.gradcheck
  local function r(...) return lucid.randn({...}, {dtype = "float64"}) end

  it("values of sort, topk, kthvalue, median and mode", function()
    local function first(f) return function(x_) return (f(x_)) end end
    assert.is_true(gc(first(function(x_) return x_:sort() end), {r(3, 5)}))
    assert.is_true(gc(first(function(x_) return x_:sort{dim = 1, descending = true} end),
      {r(4, 3, 2)}))
    assert.is_true(gc(first(function(x_) return x_:topk(2, {dim = 2}) end), {r(3, 4, 2)}))
    assert.is_true(gc(first(function(x_) return x_:topk(3, {largest = false}) end), {r(2, 5)}))
    assert.is_true(gc(first(function(x_) return x_:kthvalue(2, 1, true) end), {r(4, 3)}))
    assert.is_true(gc(first(function(x_) return x_:median(2) end), {r(3, 4)}))
    assert.is_true(gc(function(x_) return x_:median() end, {r(3, 3)}))
    assert.is_true(gc(first(function(x_) return x_:t():sort() end), {r(3, 4)}))
    -- mode has no finite-difference check: its value repeats, and nudging one copy changes
    -- which value is the mode. Its gradient is checked against PyTorch's (the fixtures'
    -- mode_grad and mode_strided).
  end)

  it("second order (create_graph): gradgradcheck through every op", function()
    local ggc = lucid.autograd.gradgradcheck
    -- the values times themselves, so the second derivative is not zero
    local function sq(f) return function(x_) local v = f(x_); return v * v end end
    assert.is_true(ggc(sq(function(x_) return (x_:sort{dim = 1, descending = true}) end), {r(3, 4)}))
    assert.is_true(ggc(sq(function(x_) return (x_:topk(2)) end), {r(3, 5)}))
    assert.is_true(ggc(sq(function(x_) return (x_:kthvalue(2, 1)) end), {r(4, 3)}))
    assert.is_true(ggc(sq(function(x_) return (x_:kthvalue(2, 2, true)) end), {r(2, 3)}))
    assert.is_true(ggc(sq(function(x_) return (x_:median(2)) end), {r(3, 5)}))
    assert.is_true(ggc(sq(function(x_) return x_:median() end), {r(3, 3)}))
    assert.is_true(ggc(sq(function(x_) return (x_:sort()) end), {r()}))
    -- mode and median over ties: the graph form gives what the fused backward gives
    for _, f in ipairs({function(x_) return x_:median() end,
                        function(x_) return (x_:mode()) end}) do
      local x = T({{1, 2, 1, 3}, {4, 4, 5, 6}}, {dtype = "float64", requires_grad = true})
      local g1 = lucid.autograd.grad((f(x) ^ 2):sum(), x, {create_graph = true})[1]
      assert.is_not_nil(g1.grad_fn)
      local g2 = lucid.autograd.grad((f(x) ^ 2):sum(), x)[1]
      close(g1:tolist(), g2:tolist(), "graph vs fused")
    end
  end)

  it("median()'s gradient is split evenly over ties; grad_fn names", function()
    local x = T({2, 1, 2, 5, 2, 0}, {dtype = "float64", requires_grad = true})
    local m = x:median()
    assert.equal("MedianBackward", m.grad_fn)
    m:backward()
    close(x.grad:tolist(), {1 / 3, 0, 1 / 3, 0, 1 / 3, 0}, "grad")
    local y = lucid.randn({3, 4}, {requires_grad = true})
    assert.equal("SortBackward", y:sort().grad_fn)
    assert.equal("TopkBackward", y:topk(2).grad_fn)
    assert.equal("KthvalueBackward", y:kthvalue(2).grad_fn)
    assert.equal("MedianBackward", y:median(1).grad_fn)
    assert.equal("ModeBackward", y:mode().grad_fn)
    local _, i = y:sort()
    assert.is_false(i.requires_grad)
    assert.is_false(y:argsort().requires_grad)
  end)
end)

describe("sorting family: hostile inputs", function()
  local x = lucid.randn(3, 4)
  it("extreme k and dims are errors, huge empty shapes are fine", function()
    H.raises("lucid.topk: k = 9223372036854775807 out of range",
      function() return x:topk(math.maxinteger) end)
    H.raises("lucid.kthvalue: k = -9223372036854775808 out of range",
      function() return x:kthvalue(math.mininteger) end)
    H.raises("lucid.sort: argument 2 (dim): dim -9223372036854775808 out of range",
      function() return x:sort(math.mininteger) end)
    H.raises("lucid.topk: argument 2 (k): expected an integer", function() return x:topk(0 / 0) end)
    shape_is(lucid.zeros(2 ^ 40, 0):sort(1), {2 ^ 40, 0}, "sort")
    shape_is(lucid.zeros(0, 2 ^ 40):median(2), {0}, "median")
    shape_is(lucid.zeros(2 ^ 40, 0):topk(0), {2 ^ 40, 0}, "topk")
  end)
end)
