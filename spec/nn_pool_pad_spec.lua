-- Pooling, padding and interpolation edge cases against PyTorch 1.13 (spec/fixtures/nn_pool_pad.lua,
-- written by tools/fixtures/pool_pad.py): every case's forward through nn.functional, max pooling
-- indices (1-based) and the input gradient for a given upstream gradient, in the case's dtype,
-- with strided (transposed) inputs and empty batches; the affine ops also pass a float64
-- gradcheck. Then the errors around those edges.
local lucid = require "lucid"
local nn = require "lucid.nn"
local H = require "nn_helpers"
local F = nn.functional

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local FX = dofile(here .. "fixtures/nn_pool_pad.lua")

local names = {}
for k in pairs(FX) do names[#names + 1] = k end
table.sort(names)

-- H.close, with NaN equal to NaN and infinities equal to themselves
local function close(a, b, rel, abs)
  if type(a) == "table" or type(b) == "table" then
    if type(a) ~= "table" or type(b) ~= "table" or #a ~= #b then return false end
    for i = 1, #a do
      if not close(a[i], b[i], rel, abs) then return false end
    end
    return true
  end
  if a ~= a or b ~= b then return a ~= a and b ~= b end
  if a == b then return true end
  return math.abs(a - b) <= abs + rel * math.abs(b)
end

local function assert_close(t, want, rel, abs, what)
  local got = t:tolist()
  if not close(got, want, rel, abs) then
    error(("%s differs:\n got  %s\n want %s"):format(what, H.show(got), H.show(want)), 2)
  end
end

local function input_of(c)
  local opts = {dtype = c.dtype or "float32"}
  if c.shape then return lucid.zeros(c.shape, opts) end
  local x = lucid.Tensor(c.input, opts)
  if c.transposed then
    x = x:transpose(-1, -2)
    assert.is_false(x:is_contiguous())
  end
  return x
end

local WITH_INDICES = {max_pool1d = true, max_pool2d = true, adaptive_max_pool1d = true,
  adaptive_max_pool2d = true}

local function run(c, x)
  local args = {}
  for k, v in pairs(c.args) do args[k] = v end
  if WITH_INDICES[c.fn] then args.return_indices = true end
  return F[c.fn](x, args)
end

describe("pooling, padding and interpolation against PyTorch", function()
  for _, name in ipairs(names) do
    local c = FX[name]
    it(name, function()
      local dbl = c.dtype == "float64"
      local rel, abs = dbl and 1e-12 or 1e-5, dbl and 1e-12 or 1e-5
      local x = input_of(c):requires_grad_()
      local y, ix = run(c, x)
      assert.same(c.output_shape, y.shape)
      assert.equal(c.dtype or "float32", y.dtype)
      if WITH_INDICES[c.fn] then
        assert.equal("int64", ix.dtype)
        assert.same(c.output_shape, ix.shape)
      end
      if not c.output then -- an empty output: its gradient is an empty (zero) input gradient
        y:sum():backward()
        assert.same(x.shape, x.grad.shape)
        return
      end
      assert_close(y, c.output, rel, abs, "output")
      if c.indices then assert.same(c.indices, ix:tolist()) end
      y:backward(lucid.Tensor(c.grad_output, {dtype = c.dtype or "float32"}))
      assert_close(x.grad, c.input_grad, rel, abs, "input gradient")
    end)
    if c.output and not WITH_INDICES[c.fn] then
      it(name .. ": float64 gradcheck", function()
        local x = input_of(c):double()
        assert.is_true(lucid.autograd.gradcheck(function(xx) return run(c, xx) end, {x},
          {eps = 1e-6, atol = 1e-5, rtol = 1e-3}))
      end)
    end
  end
end)

describe("pooling, padding and interpolation errors", function()
  local x = lucid.randn(1, 2, 4)

  it("reflect takes pads up to size - 1 and names the dim from the end beyond", function()
    assert.same({1, 2, 10}, F.pad(x, {3, 3}, "reflect").shape)
    assert.equal("lucid.pad: reflect padding must be smaller than the dim it pads, got 4 for dim -1 of size 4: input shape {1, 2, 4}",
      H.err(F.pad, x, {4, 0}, "reflect"):match("lucid%.pad.*"))
    assert.matches("got 2 for dim %-2 of size 2", H.err(F.pad, x, {0, 0, 2, 0}, "reflect"))
  end)

  it("circular takes pads up to the (cropped) size", function()
    assert.same({1, 2, 12}, F.pad(x, {4, 4}, "circular").shape)
    assert.matches("circular padding must be at most the size of the dim it pads %(after cropping%), got 5 for dim %-1 of size 4",
      H.err(F.pad, x, {5, 0}, "circular"))
    assert.matches("got 2 for dim %-1 of size 1", H.err(F.pad, x, {2, -3}, "circular"))
  end)

  it("negative pads may crop a dim to nothing, not below", function()
    assert.same({1, 2, 0}, F.pad(x, {-2, -2}, "replicate").shape)
    assert.matches("lucid.pad: dim %-1 of size 4 padded by %(%-3, %-2%) would get the negative size %-1",
      H.err(F.pad, x, {-3, -2}))
    assert.matches("replicate mode can not pad dim %-1: it is empty",
      H.err(F.pad, lucid.zeros(1, 2, 0), {1, 1}, "replicate"))
  end)

  it("the pad list's and the value's rules are the op's", function()
    assert.equal("lucid.pad: the pad list must have an even length, got 3", H.err(F.pad, x, {1, 1, 1}))
    assert.equal("lucid.pad: the pad list has 8 entries, more than 2 per dim of a 3-D input",
      H.err(F.pad, x, {1, 1, 1, 1, 1, 1, 1, 1}))
    assert.equal("lucid.pad: padding mode \"reflect\" doesn't take a value, got value 1",
      H.err(F.pad, x, {1, 1}, "reflect", 1))
    assert.same({1, 2, 6}, F.pad(x, {1, 1}, "reflect", 0).shape)
    assert.matches("lucid.pad: argument 3 %(mode%): expected \"constant\", \"reflect\", \"replicate\" or \"circular\", got \"zeros\"",
      H.err(F.pad, x, {1, 1}, "zeros"))
  end)

  it("constant mode pads and crops any dtype", function()
    local i = lucid.Tensor({{1, 2, 3}}, {dtype = "int64"})
    local y = F.pad(i, {-1, 2, 1, 0}, "constant", 7)
    assert.equal("int64", y.dtype)
    assert.same({{7, 7, 7, 7}, {2, 3, 7, 7}}, y:tolist())
    assert.matches("reflect mode expects a float32 or float64 input, got int64", H.err(F.pad, i, {1, 1}, "reflect"))
  end)

  it("pooling options whose sizes would overflow are errors", function()
    local t = lucid.randn(1, 1, 3)
    assert.matches("lucid.max_pool1d: stride is too large, got " .. math.maxinteger,
      H.err(F.max_pool1d, t, 2, {stride = math.maxinteger, ceil_mode = true}))
    assert.matches("lucid.max_pool1d: kernel_size %* dilation is too large",
      H.err(F.max_pool1d, t, math.maxinteger, {padding = 1, dilation = 3}))
    -- a huge kernel with padding is fine: its one window is the input
    assert.same({{{3}}}, F.max_pool1d(lucid.Tensor({{{1, 3, 2}}}), 4000000000, {padding = 2000000000}):tolist())
  end)

  it("pooling checks padding, kernel size, dtype and empty spatial dims", function()
    assert.matches("lucid.max_pool2d: padding must be >= 0 and at most half the kernel size, got padding 2 for kernel_size 3",
      H.err(F.max_pool2d, lucid.randn(1, 1, 4, 4), 3, {padding = 2}))
    assert.matches("kernel_size {3, 3} %(with padding and dilation%) is larger than the input: input shape {1, 1, 2, 2}",
      H.err(F.max_pool2d, lucid.randn(1, 1, 2, 2), 3))
    assert.matches("lucid.max_pool1d: expected a float32 or float64 input, got int32",
      H.err(F.max_pool1d, lucid.Tensor({{1, 2, 3}}, {dtype = "int32"}), 2))
    assert.matches("lucid.adaptive_avg_pool2d: expected non%-empty spatial dims, got input shape {1, 1, 0, 3}",
      H.err(F.adaptive_avg_pool2d, lucid.zeros(1, 1, 0, 3), 2))
  end)
end)
