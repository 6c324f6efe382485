-- Hostile sizes: shapes, views, splits and ranges whose arithmetic would overflow int64 get a
-- clear error naming the function and the sizes (never undefined behaviour: `make check-asan`
-- runs this file under UBSan, which stops at the first report). Issue 12, item 1.
local lucid = require "lucid"
local F = lucid.nn.functional

local BIG = 1 << 62
local MAX, MIN = math.maxinteger, math.mininteger

local err = require("helpers").err

local function has(e, text) assert(e:find(text, 1, true), e) end

describe("hostile sizes", function()
  it("creation refuses shapes whose counts or strides overflow, a 0 size included", function()
    has(err(lucid.zeros, 0, BIG, BIG), "lucid.zeros: shape {0, 4611686018427387904, " ..
      "4611686018427387904} is too large: its sizes multiply past 2^59 - 1")
    has(err(lucid.zeros, 1 << 40, 1 << 40), "lucid.zeros: shape {1099511627776, 1099511627776} is too large")
    has(err(lucid.randn, BIG, BIG), "lucid.randn: shape")
    has(err(lucid.full, {BIG, 4}, 1), "lucid.full: shape {4611686018427387904, 4} is too large")
    has(err(lucid.eye, BIG), "lucid.eye: shape")
    has(err(lucid.linspace, 0, 1, MAX), "is too large")
    has(err(lucid.randperm, MAX), "is too large")
    has(err(lucid.arange, 0, 2^62, 1e-10), "lucid.arange: too many elements")
    -- the largest zero-size shape still works
    assert.same({0, (1 << 59) - 1}, lucid.zeros(0, (1 << 59) - 1).shape)
  end)

  it("views whose sizes multiply past 2^63 are refused, not wrapped", function()
    local t = lucid.zeros(4)
    has(err(t.view, t, BIG, BIG, 0), "lucid.view: shape {4611686018427387904, 4611686018427387904, 0} " ..
      "is invalid for input of size 4")
    has(err(t.view, t, BIG, -1), "lucid.view: shape {4611686018427387904, -1} is invalid for input of size 4")
    has(err(t.reshape, t, BIG, BIG), "lucid.reshape: shape {4611686018427387904, 4611686018427387904} " ..
      "is invalid for input of size 4")
    has(err(t.expand, t:view(1, 4), BIG, 4), "lucid.expand: view: shape {4611686018427387904, 4} is too large")
    has(err(t.unflatten, t, 1, {BIG, BIG}), "the sizes multiply to more than 9223372036854775807")
  end)

  it("split sizes summing past 2^63 and split sizes near 2^63", function()
    local t = lucid.arange(1, 5)
    has(err(t.split, t, {MAX, MAX, 2}), "lucid.split: argument 2 (split_size_or_sections): sizes must " ..
      "sum to the size of dim 1 (4), but they sum to more than 2^63 - 1")
    has(err(t.split, t, {5, -1}), "lucid.split: argument 2 (split_size_or_sections): size 2 is negative (-1)")
    local parts = t:split(MAX) -- one piece: the whole dim
    assert.equal(1, #parts)
    assert.same({1, 2, 3, 4}, parts[1]:tolist())
    has(err(t.chunk, t, MAX), "lucid.chunk: argument 2 (chunks): expected a positive integer")
  end)

  it("ranges and narrow with bounds and steps near 2^63", function()
    local t = lucid.arange(1, 5)
    assert.same({1}, t[{{1, 4, MAX}}]:tolist())
    assert.same({1}, t[{{1, -1, MAX - 1}}]:tolist())
    assert.same({2, 4}, t[{{2, 4, 2}}]:tolist())
    has(err(function() return t[{{MIN, MAX}}] end), "range start -9223372036854775808 out of range for dim 1 of size 4")
    has(err(t.narrow, t, 1, 2, MAX), "lucid.narrow: start (2) + length (9223372036854775807) exceeds dim 1 of size 4")
    has(err(t.narrow, t, 1, MAX, 1), "lucid.narrow: argument 3 (start): index 9223372036854775807 out of range")
    has(err(function() return t[MIN] end), "index -9223372036854775808 out of range for dim 1 of size 4")
    has(err(t.select, t, 1, MIN), "index -9223372036854775808 out of range for dim 1 of size 4")
  end)

  it("cat of sizes summing past 2^63", function()
    -- expand makes a size near 2^59 without memory; 20 of them sum past 2^63
    local e = lucid.zeros(0, 1):expand(0, (1 << 59) - 1)
    local ts = {}
    for i = 1, 20 do ts[i] = e end
    has(err(lucid.cat, ts, 2), "lucid.cat: the sizes along dim 2 sum past 2^63 - 1")
    local five = {e, e, e, e, e}
    has(err(lucid.cat, five, 2), "is too large") -- the sum fits int64, not the shape rule
  end)

  it("dims near 2^63 are out of range, not wrapped", function()
    local t = lucid.zeros(2, 2)
    has(err(t.permute, t, MIN, 1), "lucid.permute: argument 2 (dims): dim -9223372036854775808 out of range")
    has(err(t.sum, t, MIN), "lucid.sum: argument 2 (dim): dim -9223372036854775808 out of range")
    has(err(t.transpose, t, 1, MIN), "lucid.transpose: argument 3 (dim1): dim -9223372036854775808 out of range")
    has(err(t.unsqueeze, t, MAX), "lucid.unsqueeze: argument 2 (dim): dim 9223372036854775807 out of range")
  end)

  it("convolution, pooling and padding sizes near 2^63 are refused, not wrapped", function()
    local x = lucid.zeros(1, 1, 4, 4)
    local w1, w3 = lucid.zeros(1, 1, 1, 1), lucid.zeros(1, 1, 3, 3)
    has(err(F.conv2d, x, w1, nil, {padding = MAX}), "lucid.conv2d: padding must be below 2^59, got 9223372036854775807")
    has(err(F.conv2d, x, w3, nil, {dilation = MAX}), "lucid.conv2d: dilation must be below 2^59")
    has(err(F.conv2d, x, w1, nil, {stride = MAX}), "lucid.conv2d: stride must be below 2^59")
    has(err(F.conv2d, x, w1, nil, {padding = 1 << 61}), "lucid.conv2d: padding must be below 2^59")
    -- a large stride that fits is fine: one output position
    assert.same({1, 1, 1, 1}, F.conv2d(x, w1, nil, {stride = (1 << 59) - 1}).shape)
    has(err(F.max_pool2d, x, MAX), "lucid.max_pool2d: kernel_size * dilation is too large")
    has(err(F.max_pool2d, x, 2, {stride = MAX}), "lucid.max_pool2d: stride is too large")
    -- the output shape is checked before any per-position table is allocated (this crashed)
    has(err(F.adaptive_avg_pool2d, x, {1 << 61, 1 << 61}), "lucid.adaptive_avg_pool2d: shape " ..
      "{1, 1, 2305843009213693952, 2305843009213693952} is too large")
    has(err(F.adaptive_max_pool2d, x, {1 << 40, 1 << 40}), "is too large")
    assert.same({1, 1, 3, 3}, F.adaptive_avg_pool2d(x, 3).shape)
    has(err(F.pad, x, {MAX, 1}), "lucid.pad: dim -1 of size 4 padded by (9223372036854775807, 1) " ..
      "would get a size past 64 bits")
    has(err(F.pad, x, {1 << 61, 1 << 61}), "lucid.pad: tensor: shape {1, 1, 4, 4611686018427387908} is too large")
    has(err(F.pad, x, {-(1 << 62), 1}), "would get the negative size -4611686018427387899")
  end)

  it("an ignore_index of -2^63 has no 0-based image (found by the Lua API fuzzer)", function()
    has(err(F.cross_entropy, lucid.zeros(2, 3), lucid.ones(2, {dtype = "int64"}), {ignore_index = MIN}),
      "lucid.nn.functional.cross_entropy: argument 4 (ignore_index): expected an integer above -2^63")
    assert.is_true(lucid.is_tensor(F.cross_entropy(lucid.zeros(2, 3), lucid.ones(2, {dtype = "int64"}),
      {ignore_index = MIN + 1})))
  end)

  it("reductions and views with extreme arguments (found by the Lua API fuzzer)", function()
    local x = lucid.randn(2, 3)
    has(err(x.var, x, {correction = MIN}), "lucid.var: argument 4 (correction): expected >= 0")
    has(err(x.std, x, {correction = MAX}), "lucid.std: correction must be within -2^53..2^53")
    assert.is_true(x:var{correction = 1 << 53}:item() >= 0) -- 0 divisor: inf or nan, no overflow
    -- a view of an empty tensor to sizes past the shape rule
    has(err(lucid.zeros(0).view, lucid.zeros(0), MAX, 0, 6), "is too large")
  end)

  it("resampling to an output past 2^59 is refused", function()
    has(err(F.interpolate, lucid.zeros(1, 1, 4), {scale_factor = 1e300}),
      "lucid.interpolate: scale_factor 1e+300 gives an output size past 2^59 - 1 for a dim of size 4")
    has(err(F.interpolate, lucid.zeros(1, 1, 4), {scale_factor = -1}),
      "lucid.interpolate: scale_factor must be a positive number, got -1")
    -- sizes given directly (found by the Lua API fuzzer): the output shape rule first
    has(err(F.interpolate, lucid.zeros(1, 1, 4, 4), {size = {MAX, MAX}}), "is too large")
    has(err(F.interpolate, lucid.zeros(1, 1, 4), {size = MAX}), "is too large")
    has(err(F.interpolate, lucid.zeros(1, 1, 4), {scale_factor = {2, 2}}),
      "lucid.interpolate: expected scale_factor with 1 entry for 1 spatial dim, got 2")
  end)
end)
