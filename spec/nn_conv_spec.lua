-- The conv family against PyTorch (spec/fixtures/nn_conv.lua, written by tools/fixtures/conv.py):
-- every case's module forward, pooling indices (1-based) and the gradients of input, weight and
-- bias in float32 (relative 1e-5, absolute 1e-5), the same through nn.functional, and a float64
-- gradcheck of the functional form (eps 1e-6, atol 1e-5, rtol 1e-3). Then printing, options,
-- errors and the seed's CNN.
local lucid = require "lucid"
local nn = require "lucid.nn"
local H = require "nn_helpers"
local F = nn.functional

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local FX = dofile(here .. "fixtures/nn_conv.lua")

local REL, ABS = 1e-5, 1e-5

local names = {}
for k in pairs(FX) do names[#names + 1] = k end
table.sort(names)

-- the case's computation through nn.functional, for inputs x (, w, b)
local function functional(c, x, w, b)
  if c.fn == "pad" then return F.pad(x, c.fargs) end
  local f = F[c.fn]
  if c.weight then
    if c.prepad then x = F.pad(x, c.prepad[1], c.prepad[2]) end
    -- an empty table would read as the positional stride: leave it out
    if next(c.fargs) == nil then return f(x, w, b) end
    return f(x, w, b, c.fargs)
  end
  return f(x, c.fargs)
end

describe("conv family against PyTorch", function()
  for _, name in ipairs(names) do
    local c = FX[name]
    it(name .. ": forward and gradients", function()
      local x = lucid.Tensor(c.input, {requires_grad = true})
      local y, ix, m
      if c.module == "pad" then
        y = F.pad(x, c.fargs)
      else
        m = nn[c.module](c.args)
        if c.weight then
          local sd = {{"weight", lucid.Tensor(c.weight)}}
          if c.bias then sd[2] = {"bias", lucid.Tensor(c.bias)} end
          m:load_state_dict(sd)
        end
        y, ix = m(x)
      end
      H.assert_close(y, c.output, REL, ABS)
      if c.indices then
        assert.equal("int64", ix.dtype)
        assert.same(c.indices, ix:tolist())
      else
        assert.is_nil(ix)
      end
      y:backward(lucid.Tensor(c.grad_output))
      H.assert_close(x.grad, c.input_grad, REL, ABS)
      if c.weight then
        H.assert_close(m.weight.grad, c.weight_grad, REL, ABS)
        if c.bias then
          H.assert_close(m.bias.grad, c.bias_grad, REL, ABS)
        else
          assert.is_nil(m.bias)
        end
      end
    end)

    it(name .. ": nn.functional and float64 gradcheck", function()
      local x = lucid.Tensor(c.input)
      local w = c.weight and lucid.Tensor(c.weight)
      local b = c.bias and lucid.Tensor(c.bias)
      H.assert_close(functional(c, x, w, b), c.output, REL, ABS)
      local ins = {x:double()}
      if w then ins[2] = w:double() end
      if b then ins[3] = b:double() end
      assert.is_true(lucid.autograd.gradcheck(function(xx, ww, bb) return functional(c, xx, ww, bb) end,
        ins, {eps = 1e-6, atol = 1e-5, rtol = 1e-3}))
    end)
  end
end)

describe("conv modules", function()
  it("print like PyTorch (Lua booleans)", function()
    assert.equal("Conv2d(3, 16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))",
      tostring(nn.Conv2d(3, 16, 3, {padding = 1})))
    assert.equal("Conv2d(3, 16, kernel_size=(3, 5), stride=(2, 1))", tostring(nn.Conv2d(3, 16, {3, 5}, {stride = {2, 1}})))
    assert.equal("Conv2d(4, 4, kernel_size=(3, 3), stride=(1, 1), padding=(2, 2), dilation=(2, 2), groups=4, bias=false, padding_mode=reflect)",
      tostring(nn.Conv2d{in_channels = 4, out_channels = 4, kernel_size = 3, padding = 2, dilation = 2,
        groups = 4, bias = false, padding_mode = "reflect"}))
    assert.equal("Conv1d(2, 3, kernel_size=(4,), stride=(1,), padding=same)",
      tostring(nn.Conv1d(2, 3, 4, {padding = "same"})))
    assert.equal("Conv2d(2, 3, kernel_size=(3, 3), stride=(1, 1), padding=valid)",
      tostring(nn.Conv2d(2, 3, 3, {padding = "valid"})))
    assert.equal("ConvTranspose2d(4, 2, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), output_padding=(1, 1))",
      tostring(nn.ConvTranspose2d(4, 2, 3, {stride = 2, padding = 1, output_padding = 1})))
    assert.equal("MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=false)",
      tostring(nn.MaxPool2d{kernel_size = 2, stride = 2}))
    assert.equal("MaxPool2d(kernel_size=(3, 2), stride=1, padding=0, dilation=1, ceil_mode=true)",
      tostring(nn.MaxPool2d({3, 2}, 1, {ceil_mode = true})))
    assert.equal("MaxPool1d(kernel_size=3, stride=3, padding=0, dilation=1, ceil_mode=false)",
      tostring(nn.MaxPool1d(3, {return_indices = true})))
    assert.equal("AvgPool2d(kernel_size=3, stride=2, padding=1)", tostring(nn.AvgPool2d(3, 2, 1)))
    assert.equal("AvgPool1d(kernel_size=(3,), stride=(3,), padding=(0,))", tostring(nn.AvgPool1d(3)))
    assert.equal("AdaptiveAvgPool2d(output_size=(nil, 7))", tostring(nn.AdaptiveAvgPool2d({nil, 7})))
    assert.equal("AdaptiveMaxPool2d(output_size=(2, 3))", tostring(nn.AdaptiveMaxPool2d({2, 3})))
    assert.equal("AdaptiveAvgPool1d(output_size=5)", tostring(nn.AdaptiveAvgPool1d(5)))
  end)

  it("Conv2D is Conv2d; parameters, attributes, options and PyTorch's init", function()
    assert.equal(nn.Conv2d, nn.Conv2D)
    local m = nn.Conv2D{in_channels = 6, out_channels = 4, kernel_size = {3, 2}, groups = 2}
    assert.same({4, 3, 3, 2}, m.weight.shape)
    assert.same({4}, m.bias.shape)
    assert.equal(6, m.in_channels)
    assert.equal(4, m.out_channels)
    assert.equal(2, m.groups)
    local o = m:options()
    assert.same({3, 2}, o.kernel_size)
    assert.same({1, 1}, o.stride)
    assert.same({0, 0}, o.padding)
    assert.equal("zeros", o.padding_mode)
    local bound = 1 / math.sqrt(3 * 3 * 2)
    assert.is_true(m.weight:abs():max():item() <= bound)
    assert.is_true(m.weight:abs():max():item() > 0.5 * bound)
    assert.is_true(m.bias:abs():max():item() <= bound)
    local t = nn.ConvTranspose2d(4, 6, 3, {groups = 2})
    assert.same({4, 3, 3, 3}, t.weight.shape)
    assert.is_true(t.weight:abs():max():item() <= 1 / math.sqrt(27))
    assert.equal(2, #nn.Conv1d(2, 3, 3):parameters())
    assert.equal(1, #nn.Conv1d(2, 3, 3, {bias = false}):parameters())
    local os = nn.AdaptiveAvgPool2d({nil, 2}):options().output_size
    assert.is_nil(os[1])
    assert.equal(2, os[2])
    assert.same({2, 2}, nn.MaxPool2d(2):options().stride)
    assert.is_true(nn.MaxPool2d(2, {return_indices = true}):options().return_indices)
    assert.is_false(nn.MaxPool2d(2).return_indices)
    assert.is_true(nn.AvgPool2d(2).count_include_pad)
  end)

  it("unbatched inputs and non-contiguous inputs", function()
    local m = nn.Conv2d(3, 2, 3)
    local x = lucid.randn(3, 5, 6)
    local y = m(x)
    assert.same({2, 3, 4}, y.shape)
    H.assert_close(y, m(x:unsqueeze(1))[1]:tolist(), 1e-6, 1e-6)
    local xt = lucid.randn(1, 3, 6, 5):transpose(3, 4)
    H.assert_close(m(xt), m(xt:contiguous()):tolist(), 1e-6, 1e-6)
    assert.same({3, 2, 3}, nn.MaxPool2d(2)(x).shape)
  end)

  it("return_indices: values and 1-based flat indices, also through F", function()
    local x = lucid.Tensor({{{{1, 5, 2, 0}, {3, 4, 8, 7}}}})
    local v, i = nn.MaxPool2d(2, {return_indices = true})(x)
    assert.same({{{{5, 8}}}}, v:tolist())
    assert.same({{{{2, 7}}}}, i:tolist())
    local v2, i2 = F.max_pool2d(x, 2, {return_indices = true})
    assert.same(v:tolist(), v2:tolist())
    assert.same(i:tolist(), i2:tolist())
    assert.equal(1, select("#", F.max_pool2d(x, 2)))
    -- inside a Sequential a pooling layer with indices passes its values on
    local s = nn.Sequential(nn.MaxPool2d(2, {return_indices = true}), nn.Flatten())
    assert.same({{5, 8}}, s(x):tolist())
  end)
end)

describe("conv errors", function()
  it("a wrong channel count or rank names the module and the shapes", function()
    local m = nn.Conv2d(3, 16, 3)
    assert.equal("lucid.Conv2d: expected input with 3 channels, got 4: input shape {1, 4, 8, 8}",
      H.err(m, lucid.randn(1, 4, 8, 8)))
    assert.matches("expected a 3%-D %(unbatched%) or 4%-D %(batched%) input, got a 2%-D input: input shape {8, 8}",
      H.err(m, lucid.randn(8, 8)))
    local s = nn.Sequential{{"conv", nn.Conv2d(3, 4, 3)}}
    assert.equal("lucid.Sequential.conv (Conv2d): expected input with 3 channels, got 5: input shape {1, 5, 8, 8}",
      H.err(s, lucid.randn(1, 5, 8, 8)))
    assert.matches("Conv1d: expected input with 2 channels, got 3", H.err(nn.Conv1d(2, 2, 3), lucid.randn(1, 3, 8)))
    -- the runtime keeps working
    assert.same({1, 16, 6, 6}, m(lucid.randn(1, 3, 8, 8)).shape)
  end)

  it("a kernel larger than the padded input is an error", function()
    assert.matches("kernel size {5, 5} %(with dilation%) is larger than the padded input {4, 4}: input shape {1, 3, 4, 4}",
      H.err(nn.Conv2d(3, 2, 5), lucid.randn(1, 3, 4, 4)))
    assert.matches("larger than the padded input", H.err(nn.Conv2d(3, 2, 3, {dilation = 3}), lucid.randn(1, 3, 6, 6)))
    assert.matches("larger than the input", H.err(nn.MaxPool2d(3), lucid.randn(1, 1, 2, 2)))
  end)

  it("bad options name the option", function()
    assert.equal("lucid.nn.Conv2d: stride must be >= 1, got 0", H.err(nn.Conv2d, 3, 4, 3, {stride = 0}))
    assert.equal("lucid.nn.Conv2d: groups (2) must divide in_channels (3)", H.err(nn.Conv2d, 3, 4, 3, {groups = 2}))
    assert.equal("lucid.nn.Conv2d: groups (3) must divide out_channels (4)", H.err(nn.Conv2d, 3, 4, 3, {groups = 3}))
    assert.matches("nn.Conv2d: unknown option 'strides'", H.err(nn.Conv2d, 3, 4, 3, {strides = 1}))
    assert.matches("nn.Conv2d: missing argument kernel_size", H.err(nn.Conv2d, 3, 4))
    assert.matches("nn.Conv2d: padding \"same\" needs stride 1", H.err(nn.Conv2d, 3, 4, 3, {padding = "same", stride = 2}))
    assert.matches("nn.Conv2d: padding must be an integer, a table of integers, \"same\" or \"valid\", got \"full\"",
      H.err(nn.Conv2d, 3, 4, 3, {padding = "full"}))
    assert.matches("nn.Conv2d: padding_mode must be", H.err(nn.Conv2d, 3, 4, 3, {padding_mode = "mirror"}))
    assert.matches("nn.Conv2d: kernel_size must be an integer or a table of 2 integers, got a table of 3",
      H.err(nn.Conv2d, 3, 4, {3, 3, 3}))
    assert.equal("lucid.nn.ConvTranspose2d: output_padding must be >= 0 and smaller than stride or dilation, "
      .. "got output_padding 1 for stride 1 and dilation 1", H.err(nn.ConvTranspose2d, 3, 4, 3, {output_padding = 1}))
    assert.equal("lucid.nn.MaxPool2d: padding must be >= 0 and at most half the kernel size, got padding 2 for kernel_size 2",
      H.err(nn.MaxPool2d, 2, {padding = 2}))
    assert.matches("nn.AvgPool2d: stride must be >= 1, got 0", H.err(nn.AvgPool2d, 2, 0))
    assert.equal("lucid.nn.AdaptiveAvgPool2d: output_size[1] must be >= 1, got 0", H.err(nn.AdaptiveAvgPool2d, {0, 2}))
  end)

  it("nn.functional errors name the function and the argument (1-based)", function()
    local x = lucid.randn(1, 3, 8, 8)
    assert.matches("lucid.conv2d: argument 2 %(weight%): expected a tensor", H.err(F.conv2d, x, 3))
    assert.equal("lucid.conv2d: stride must be >= 1, got 0", H.err(F.conv2d, x, lucid.randn(2, 3, 3, 3), nil, 0))
    assert.matches("lucid.conv2d: argument 4 %(stride%): expected an integer or a table of integers, got string",
      H.err(F.conv2d, x, lucid.randn(2, 3, 3, 3), nil, "2"))
    assert.matches("lucid.conv2d: expected input with 6 channels", H.err(F.conv2d, x, lucid.randn(2, 3, 3, 3), {groups = 2}))
    assert.matches("lucid.pad: argument 3 %(mode%)", H.err(F.pad, x, {1, 1}, "mirror"))
    assert.matches("lucid.pad: reflect padding must be smaller than the dim it pads", H.err(F.pad, x, {8, 0}, "reflect"))
    assert.matches("lucid.max_pool2d: argument 2 %(kernel_size%): missing", H.err(F.max_pool2d, x))
    assert.matches("lucid.conv2d: input, weight and bias must have the same dtype",
      H.err(F.conv2d, x, lucid.randn(2, 3, 3, 3, {dtype = "float64"})))
    assert.same({1, 3, 4, 4}, F.max_pool2d(x, 2).shape)
  end)

  -- the rules are C's (lc_nn_conv*, lc_nn_*pool*, the functions'): one message for a module
  -- and its function; the Lua classes and the binding only convert
  it("the modules' conv option rules are the C constructors'", function()
    local E = function(...) return H.err(nn.Conv2d, ...) end
    assert.equal("lucid.nn.Conv2d: groups must be >= 1, got 0", E(2, 3, 3, {groups = 0}))
    assert.equal("lucid.nn.Conv2d: groups must be >= 1, got -2", E(2, 4, 3, {groups = -2}))
    assert.equal("lucid.nn.Conv2d: in_channels must be >= 1, got 0", E(0, 4, 3))
    assert.equal("lucid.nn.Conv2d: out_channels must be >= 1, got 0", E(3, 0, 3))
    assert.equal("lucid.nn.Conv2d: kernel_size must be >= 1, got 0", E(3, 4, {3, 0}))
    assert.equal("lucid.nn.Conv2d: dilation must be >= 1, got 0", E(3, 4, 3, {dilation = {1, 0}}))
    assert.equal("lucid.nn.Conv2d: padding must be >= 0, got -1", E(3, 4, 3, {padding = -1}))
    assert.equal("lucid.nn.Conv2d: padding \"same\" needs stride 1, got stride 2",
      E(3, 4, 3, {padding = "same", stride = {1, 2}}))
    assert.equal("lucid.nn.Conv2d: padding must be an integer, a table of integers, \"same\" or \"valid\", got \"full\"",
      E(3, 4, 3, {padding = "full"}))
    assert.equal("lucid.nn.Conv2d: padding_mode must be \"zeros\", \"reflect\", \"replicate\" or \"circular\", got \"mirror\"",
      E(3, 4, 3, {padding_mode = "mirror"}))
    assert.equal("lucid.nn.Conv2d: padding_mode must be \"zeros\", \"reflect\", \"replicate\" or \"circular\", got \"constant\"",
      E(3, 4, 3, {padding_mode = "constant"}))
    assert.equal("lucid.nn.Conv2d: padding_mode must be \"zeros\", \"reflect\", \"replicate\" or \"circular\", got number",
      E(3, 4, 3, {padding_mode = 1}))
    assert.equal("lucid.nn.Conv1d: groups must be >= 1, got 0", H.err(nn.Conv1d, 2, 2, 3, {groups = 0}))
    assert.equal("lucid.nn.Conv1d: stride must be >= 1, got -1", H.err(nn.Conv1d, 2, 2, 3, {stride = -1}))
    local T = function(...) return H.err(nn.ConvTranspose2d, ...) end
    assert.equal("lucid.nn.ConvTranspose2d: padding must be an integer or a table of integers, got \"same\"",
      T(3, 4, 3, {padding = "same"}))
    assert.equal("lucid.nn.ConvTranspose2d: padding must be an integer or a table of integers, got \"valid\"",
      T(3, 4, 3, {padding = "valid"}))
    assert.equal("lucid.nn.ConvTranspose2d: only padding_mode \"zeros\" is supported, got \"reflect\"",
      T(3, 4, 3, {padding_mode = "reflect"}))
    assert.equal("lucid.nn.ConvTranspose2d: output_padding must be >= 0 and smaller than stride or dilation, "
      .. "got output_padding -1 for stride 1 and dilation 1", T(3, 4, 3, {output_padding = -1}))
    assert.equal("lucid.nn.ConvTranspose2d: groups (2) must divide out_channels (3)", T(4, 3, 3, {groups = 2}))
    -- output_padding below stride or below dilation is fine
    assert.same({1, 4, 6, 6}, nn.ConvTranspose2d(3, 4, 3, {stride = 2, output_padding = 1})(lucid.randn(1, 3, 2, 2)).shape)
    assert.same({1, 4, 7, 7}, nn.ConvTranspose2d(3, 4, 2, {dilation = 2, output_padding = 1})(lucid.randn(1, 3, 4, 4)).shape)
  end)

  it("the functions' conv option rules are C's, with the modules' messages", function()
    local x, w = lucid.randn(1, 2, 6, 6), lucid.randn(2, 2, 3, 3)
    assert.equal("lucid.conv2d: groups must be >= 1, got 0", H.err(F.conv2d, x, w, {groups = 0}))
    assert.equal("lucid.conv2d: groups (2) must divide out_channels (3)",
      H.err(F.conv2d, x, lucid.randn(3, 1, 3, 3), {groups = 2}))
    assert.equal("lucid.conv2d: padding must be >= 0, got -1", H.err(F.conv2d, x, w, {padding = -1}))
    assert.equal("lucid.conv1d: dilation must be >= 1, got 0",
      H.err(F.conv1d, lucid.randn(1, 2, 6), lucid.randn(2, 2, 3), {dilation = 0}))
    assert.equal("lucid.conv2d: padding \"same\" needs stride 1, got stride 2",
      H.err(F.conv2d, x, w, {padding = "same", stride = 2}))
    assert.matches("lucid.conv2d: argument 5 %(padding%): expected an integer, a table of integers, \"same\" or \"valid\", got \"full\"",
      H.err(F.conv2d, x, w, {padding = "full"}))
    assert.equal("lucid.conv_transpose2d: groups must be >= 1, got 0", H.err(F.conv_transpose2d, x, w, {groups = 0}))
    assert.equal("lucid.conv_transpose2d: output_padding must be >= 0 and smaller than stride or dilation, "
      .. "got output_padding 2 for stride 2 and dilation 1",
      H.err(F.conv_transpose2d, x, w, {stride = 2, output_padding = 2}))
  end)

  it("the modules' pooling option rules are the C constructors'", function()
    assert.equal("lucid.nn.MaxPool2d: kernel_size must be >= 1, got 0", H.err(nn.MaxPool2d, {2, 0}))
    assert.equal("lucid.nn.MaxPool2d: stride must be >= 1, got 0", H.err(nn.MaxPool2d, 2, 0))
    assert.equal("lucid.nn.MaxPool1d: dilation must be >= 1, got 0", H.err(nn.MaxPool1d, 2, {dilation = 0}))
    assert.equal("lucid.nn.AvgPool1d: padding must be >= 0 and at most half the kernel size, got padding -1 for kernel_size 2",
      H.err(nn.AvgPool1d, 2, {padding = -1}))
    assert.equal("lucid.nn.MaxPool1d: stride is too large, got " .. math.maxinteger,
      H.err(nn.MaxPool1d, 2, math.maxinteger))
    assert.equal("lucid.nn.AdaptiveAvgPool2d: output_size[2] must be >= 1, got -3", H.err(nn.AdaptiveAvgPool2d, {2, -3}))
    assert.equal("lucid.nn.AdaptiveMaxPool1d: output_size must be >= 1, got 0", H.err(nn.AdaptiveMaxPool1d, 0))
    assert.equal("lucid.nn.AdaptiveAvgPool2d: output_size[1] must be >= 1, got 0", H.err(nn.AdaptiveAvgPool2d, 0))
    assert.same({1, 1, 2, 4}, nn.AdaptiveAvgPool2d({2, nil})(lucid.randn(1, 1, 4, 4)).shape)
  end)

  it("the functions' pooling option rules are C's, with the modules' messages", function()
    local x = lucid.randn(1, 1, 4, 4)
    assert.equal("lucid.max_pool2d: stride must be >= 1, got 0", H.err(F.max_pool2d, x, 2, 0))
    assert.equal("lucid.avg_pool2d: kernel_size must be >= 1, got -1", H.err(F.avg_pool2d, x, -1))
    assert.equal("lucid.adaptive_avg_pool2d: output_size[1] must be >= 1, got 0", H.err(F.adaptive_avg_pool2d, x, {0, 2}))
    assert.equal("lucid.adaptive_max_pool1d: output_size must be >= 1, got -2",
      H.err(F.adaptive_max_pool1d, lucid.randn(1, 4), -2))
    -- nil keeps the input's size
    assert.same({1, 1, 2, 4}, F.adaptive_avg_pool2d(x, {2, nil}).shape)
  end)
end)

describe("the seed's CNN", function()
  it("runs forward and backward, and trains", function()
    local function bn(n) return nn.BatchNorm2d and nn.BatchNorm2d{num_features = n} or nn.Identity() end
    local model = nn.Sequential{
      {"conv1", nn.Conv2D{in_channels = 3, out_channels = 16, kernel_size = 3, padding = 1}},
      {"batch_norm1", bn(16)},
      {"relu1", nn.ReLU()},
      {"pool1", nn.MaxPool2d{kernel_size = 2, stride = 2}},
      {"conv2", nn.Conv2D{in_channels = 16, out_channels = 32, kernel_size = 3, padding = 1}},
      {"batch_norm2", bn(32)},
      {"relu2", nn.ReLU()},
      {"pool2", nn.MaxPool2d{kernel_size = 2, stride = 2}},
      {"flatten", nn.Flatten()},
      {"fc1", nn.Linear{in_features = 32 * 8 * 8, out_features = 128}},
      {"relu3", nn.ReLU()},
      {"fc2", nn.Linear{in_features = 128, out_features = 10}},
    }
    local input = lucid.arange(1, 3 * 32 * 32 + 1):reshape(1, 3, 32, 32):requires_grad_()
    local output = model(input)
    assert.same({1, 10}, output.shape)
    output:sum():backward()
    assert.same({1, 3, 32, 32}, input.grad.shape)
    assert.same({16, 3, 3, 3}, model.conv1.weight.grad.shape)
    -- a few SGD steps on a fixed batch lower the loss
    lucid.manual_seed(3)
    local x, t = lucid.randn(8, 3, 32, 32), lucid.randint(1, 11, {8})
    local params = model:parameters()
    local first, last
    for step = 1, 8 do
      model:zero_grad()
      local loss = F.cross_entropy(model(x), t)
      loss:backward()
      lucid.no_grad(function()
        for _, p in ipairs(params) do p:sub_(p.grad * 0.05) end
      end)
      if step == 1 then first = loss:item() end
      last = loss:item()
    end
    assert.is_true(last < first)
  end)
end)
