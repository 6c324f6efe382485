-- The rearranging ops (docs/tensor.md "Rearranging"): tril, triu, tril_, triu_, flip, roll,
-- rot90, repeat_interleave. Values, shapes, dtypes and input gradients against PyTorch
-- (spec/fixtures/rearrange.lua, written by tools/fixtures/rearrange.py); both Lua forms;
-- non-contiguous and expanded inputs; errors (1-based); gradcheck in float64.
local h = require "helpers"
local lucid = h.lucid
local raises, same = h.raises, h.same
local T = lucid.Tensor

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local FX = dofile(here .. "fixtures/rearrange.lua")

local function build(c)
  local x = T(c.input, {dtype = c.dtype})
  if #c.shape ~= x.ndim or h.shape(x) ~= table.concat(c.shape, ",") then x = x:reshape(c.shape) end
  return x
end

local function call(c, x, form)
  local args = {table.unpack(c.args)}
  if c.repeats ~= nil then
    table.insert(args, 1, T(c.repeats, {dtype = c.repeats_dtype}))
  end
  if form == "method" then return x[c.op](x, table.unpack(args)) end
  return lucid[c.op](x, table.unpack(args))
end

local function check(name, y, c, field, shape)
  assert.are.equal(table.concat(shape, ","), h.shape(y), name .. ": shape")
  if y:numel() > 0 then
    local ok, err = pcall(same, y, c[field], 1e-6)
    assert(ok, name .. " (" .. field .. "): " .. tostring(err))
  end
end

describe("rearranging ops against PyTorch", function()
  it("values, shapes and dtypes of every fixture case, in both Lua forms", function()
    local n = 0
    for name, c in pairs(FX) do
      n = n + 1
      for _, form in ipairs{"method", "function"} do
        local y = call(c, build(c), form)
        assert.are.equal(c.dtype, y.dtype, name .. ": dtype")
        check(name, y, c, "output", c.out_shape)
        assert.is_true(y:is_contiguous())
      end
    end
    assert.are.equal(99, n)
  end)

  it("input gradients of the float cases", function()
    for name, c in pairs(FX) do
      if c.grad_output ~= nil then
        local x = build(c):requires_grad_()
        local y = call(c, x, "method")
        local g = T(c.grad_output, {dtype = c.dtype})
        if h.shape(g) ~= table.concat(c.out_shape, ",") then g = g:reshape(c.out_shape) end
        y:backward(g)
        check(name, x.grad, c, "input_grad", c.shape)
      end
    end
  end)

  it("non-contiguous and expanded inputs give the values of their contiguous copies", function()
    local base = lucid.randn(4, 5, 3)
    local views = {base:permute(3, 1, 2), base[{{}, {1, 5, 2}}], lucid.randn(3, 1):expand(3, 4)}
    for _, v in ipairs(views) do
      local c = v:contiguous()
      assert.is_false(v:is_contiguous())
      h.close(v:tril(1), c:tril(1))
      h.close(v:triu(-1), c:triu(-1))
      h.close(v:flip(1, -1), c:flip(1, -1))
      h.close(v:roll({1, -2}, {1, 2}), c:roll({1, -2}, {1, 2}))
      h.close(v:roll(5), c:roll(5))
      h.close(v:rot90(1), c:rot90(1))
      h.close(v:rot90(3, {2, 1}), c:rot90(3, {2, 1}))
      h.close(v:repeat_interleave(2, 2), c:repeat_interleave(2, 2))
      h.close(v:repeat_interleave(2), c:repeat_interleave(2))
    end
  end)
end)

describe("argument forms", function()
  local x = lucid.arange(6):reshape(2, 3)

  it("options tables name every parameter", function()
    same(x:tril{diagonal = -1}, {{0, 0, 0}, {3, 0, 0}})
    same(lucid.triu(x, {diagonal = 1}), {{0, 1, 2}, {0, 0, 5}})
    same(x:flip{dims = {1, 2}}, {{5, 4, 3}, {2, 1, 0}})
    same(x:roll{shifts = 1, dims = 2}, {{2, 0, 1}, {5, 3, 4}})
    same(x:rot90{k = 2}, {{5, 4, 3}, {2, 1, 0}})
    same(x:rot90{dims = {2, 1}}, {{3, 0}, {4, 1}, {5, 2}})
    same(x:repeat_interleave{repeats = 2, dim = 1}, {{0, 1, 2}, {0, 1, 2}, {3, 4, 5}, {3, 4, 5}})
  end)

  it("flip takes varargs dims or a table; {} is a copy", function()
    same(x:flip(1, 2), x:flip({1, 2}):tolist())
    same(lucid.flip(x, 2), {{2, 1, 0}, {5, 4, 3}})
    local c = x:flip({})
    same(c, x:tolist())
    c:fill_(7)
    same(x, {{0, 1, 2}, {3, 4, 5}}) -- a new tensor, never a view
  end)

  it("repeat_interleave takes a number, a Lua sequence or an int tensor", function()
    local want = {{0, 1, 2}, {3, 4, 5}, {3, 4, 5}}
    same(x:repeat_interleave({1, 2}, 1), want)
    same(x:repeat_interleave(T({1, 2}, {dtype = "int64"}), 1), want)
    same(x:repeat_interleave(T({1, 2}, {dtype = "int32"}), 1), want)
    same(x:repeat_interleave(T({2}, {dtype = "int64"})), {0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5})
    -- repeats is a count: a non-contiguous repeats tensor is read through its strides
    local r = T({{1, 9}, {2, 9}}, {dtype = "int64"})[{{}, 1}]
    same(x:repeat_interleave(r, 1), want)
  end)

  it("in place: tril_ / triu_ return the tensor and keep its storage", function()
    local m = lucid.ones(3, 3)
    local r = m:tril_()
    assert.are.equal(m, r)
    same(m, {{1, 0, 0}, {1, 1, 0}, {1, 1, 1}})
    m:triu_(1)
    same(m, {{0, 0, 0}, {0, 0, 0}, {0, 0, 0}})
    local v = lucid.ones(2, 4)
    v[{{}, {2, 4}}]:triu_() -- through a view: the base sees it
    same(v, {{1, 1, 1, 1}, {1, 0, 1, 1}})
  end)

  it("in place records the gradient on non-leaves and refuses leaves that require grad", function()
    local a = lucid.randn(3, 3, {requires_grad = true})
    local b = a * 1
    b:triu_(1)
    assert.are.equal("TriuBackward", b.grad_fn)
    b:sum():backward()
    same(a.grad, {{0, 1, 1}, {0, 0, 1}, {0, 0, 0}})
    raises("lucid.tril_: a leaf tensor that requires grad", function() a:tril_() end)
  end)

  it("grad_fn names", function()
    local a = lucid.randn(2, 3, {requires_grad = true})
    assert.are.equal("TrilBackward", a:tril().grad_fn)
    assert.are.equal("FlipBackward", a:flip(1).grad_fn)
    assert.are.equal("RollBackward", a:roll(1).grad_fn)
    assert.are.equal("Rot90Backward", a:rot90().grad_fn)
    assert.are.equal("RepeatInterleaveBackward", a:repeat_interleave(2).grad_fn)
  end)
end)

describe("errors", function()
  local x = lucid.arange(6):reshape(2, 3)

  it("tril / triu need 2 dims and an integer diagonal", function()
    raises("lucid.tril: expected a tensor with at least 2 dims, got 1", function()
      return lucid.arange(3):tril()
    end)
    raises("lucid.triu: expected a tensor with at least 2 dims, got 0", function()
      return T(1):triu()
    end)
    raises("lucid.tril_: expected a tensor with at least 2 dims, got 1", function()
      return lucid.arange(3):tril_()
    end)
    raises("lucid.tril: argument 2 (diagonal): expected an integer, got 1.5", function()
      return x:tril(1.5)
    end)
    raises("argument 1 (input): expected a tensor, got number", function() return lucid.triu(3) end)
  end)

  it("flip: dims required, 1-based, in range, no repeats", function()
    raises("lucid.flip: argument 2 (dims): expected a dim or a table of dims, got nil", function()
      return x:flip()
    end)
    raises("argument 2 (dims): dim 0 is invalid: dims are 1-based", function() return x:flip(0) end)
    raises("argument 2 (dims): dim 3 out of range for a tensor with 2 dims (expected 1..2 or -2..-1)",
      function() return x:flip({1, 3}) end)
    raises("lucid.flip: dim 1 appears more than once in dims", function() return x:flip(1, 1) end)
    raises("lucid.flip: dim 2 appears more than once in dims", function() return x:flip({-1, 2}) end)
    raises("argument 2 (dims): entry [2] is string", function() return x:flip({1, "a"}) end)
    raises("argument 3 (dims): expected an integer dim, got string", function()
      return x:flip(1, "a")
    end)
  end)

  it("roll: shifts required, as many as dims, a single one without dims", function()
    raises("lucid.roll: shifts is required (got none)", function() return x:roll({}) end)
    raises("lucid.roll: shifts and dims must have the same length, got 2 shifts and 1 dim",
      function() return x:roll({1, 2}, {1}) end)
    raises("lucid.roll: shifts and dims must have the same length, got 1 shift and 2 dims",
      function() return x:roll(1, {1, 2}) end)
    raises("lucid.roll: without dims, shifts must be a single value", function()
      return x:roll({1, 2})
    end)
    raises("argument 3 (dims): dim 3 out of range", function() return x:roll(1, 3) end)
    raises("argument 3 (dims): dim 0 is invalid", function() return x:roll({1}, {0}) end)
    raises("argument 2 (shifts): expected an integer, got 0.5", function() return x:roll(0.5) end)
    raises("argument 2 (shifts): entry [1] is not an integer", function() return x:roll({0.5}, {1}) end)
    raises("lucid.roll: a 0-dim tensor has no dim to roll along", function() return T(1):roll(1, 1) end)
  end)

  it("rot90: 2 distinct dims of a tensor with at least 2", function()
    raises("lucid.rot90: expected 2 rotation dims, got 1", function() return x:rot90(1, {1}) end)
    raises("lucid.rot90: expected 2 rotation dims, got 3", function() return x:rot90(1, {1, 2, 1}) end)
    raises("lucid.rot90: the rotation dims must differ, got dim 1 twice", function()
      return x:rot90(1, {1, -2})
    end)
    raises("argument 3 (dims): dim 3 out of range", function() return x:rot90(1, {1, 3}) end)
    raises("lucid.rot90: expected a tensor with at least 2 dims, got 1", function()
      return lucid.arange(3):rot90()
    end)
    raises("lucid.rot90: argument 3 (dims): expected a table of 2 dims, got number", function()
      return x:rot90(1, 2)
    end)
    raises("argument 2 (k): expected an integer", function() return x:rot90(0.5) end)
  end)

  it("repeat_interleave: repeats of the right length, dtype and sign", function()
    raises("lucid.repeat_interleave: repeats must hold one value or one per element of dim 1 (2), got 3",
      function() return x:repeat_interleave({1, 2, 3}, 1) end)
    raises("repeats must hold one value or one per element of the flattened input (6), got 2",
      function() return x:repeat_interleave({1, 2}) end)
    raises("lucid.repeat_interleave: repeats must be non-negative, got repeats[2] = -2", function()
      return x:repeat_interleave({1, -2}, 1)
    end)
    raises("lucid.repeat_interleave: repeats must be non-negative, got -1", function()
      return x:repeat_interleave(-1)
    end)
    raises("lucid.repeat_interleave: repeats must be an int64 or int32 tensor, got float32", function()
      return x:repeat_interleave(T({1, 2}), 1)
    end)
    raises("repeats must be a 0-dim or 1-D tensor, got 2 dims", function()
      return x:repeat_interleave(T({{1, 2}}, {dtype = "int64"}), 1)
    end)
    raises("argument 2 (repeats): expected an integer, got 1.5", function()
      return x:repeat_interleave(1.5)
    end)
    raises("argument 2 (repeats): entry [2] is not an integer", function()
      return x:repeat_interleave({1, 1.5}, 1)
    end)
    raises("argument 2 (repeats): expected an integer, a table of integers or an int64/int32 tensor",
      function() return x:repeat_interleave("2") end)
    raises("argument 3 (dim): dim 3 out of range", function() return x:repeat_interleave(2, 3) end)
    raises("lucid.repeat_interleave: a 0-dim tensor has no dim to repeat along", function()
      return T(1):repeat_interleave(2, 1)
    end)
    raises("lucid.repeat_interleave: the repeated size overflows", function()
      return lucid.ones(2):repeat_interleave({math.maxinteger, math.maxinteger})
    end)
    raises("lucid.repeat_interleave:", function()
      return lucid.ones(2):repeat_interleave(math.maxinteger)
    end)
  end)
end)

describe("gradients (gradcheck, float64)", function()
  local gc = lucid.autograd.gradcheck
  local function r(...) return lucid.randn({...}, {dtype = "float64"}) end

  it("tril and triu, batched", function()
    assert.is_true(gc(function(a) return a:tril(1) end, {r(2, 3, 4)}))
    assert.is_true(gc(function(a) return a:triu(-1) end, {r(4, 3)}))
  end)

  it("flip, roll and rot90", function()
    assert.is_true(gc(function(a) return a:flip(1, 3) end, {r(2, 3, 4)}))
    assert.is_true(gc(function(a) return a:roll({1, -2, 2}, {1, 2, 2}) end, {r(3, 4)}))
    assert.is_true(gc(function(a) return a:roll(-5) end, {r(3, 4)}))
    assert.is_true(gc(function(a) return a:rot90(1, {1, 3}) end, {r(2, 3, 4)}))
    assert.is_true(gc(function(a) return a:rot90(-1) end, {r(3, 4)}))
  end)

  it("repeat_interleave: a number, per-element repeats with zeros, flattened", function()
    assert.is_true(gc(function(a) return a:repeat_interleave(3, 2) end, {r(2, 3, 2)}))
    assert.is_true(gc(function(a) return a:repeat_interleave({2, 0, 3}, 2) end, {r(2, 3, 2)}))
    assert.is_true(gc(function(a) return a:repeat_interleave(2) end, {r(2, 3)}))
    assert.is_true(gc(function(a) return a:repeat_interleave({1, 0, 2, 1}) end, {r(2, 2)}))
  end)

  it("a chain of all of them on a non-contiguous input", function()
    local a = r(4, 3):t()
    assert.is_true(gc(function(b)
      return b:repeat_interleave({1, 2, 0}, 1):rot90():roll({1, 2}, {1, 2}):flip(2):triu(-1)
    end, {a}))
  end)
end)
