-- The linear family (docs/nn/linear.md): F.linear, F.bilinear and nn.Bilinear. Values and
-- gradients against PyTorch (spec/fixtures/nn_linear_functional.lua, written by
-- tools/fixtures/linear.py): float32 within relative 1e-5 / absolute 1e-6, float64 within
-- relative 1e-10 / absolute 1e-12; gradients numerically with lucid.autograd.gradcheck in
-- float64. nn.Linear in models: spec/nn_linear_fixture_spec.lua.
local lucid = require "lucid"
local nn = require "lucid.nn"
local F = nn.functional
local H = require "nn_helpers"
local helpers = require "helpers"
local gradcheck = lucid.autograd.gradcheck

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local FX = dofile(here .. "fixtures/nn_linear_functional.lua")

local function tol(c)
  if c.dtype == "float64" then return 1e-10, 1e-12 end
  return 1e-5, 1e-6
end

local function close(t, want, c) H.assert_close(t, want, tol(c)) end

local function f64(...) return lucid.randn({...}, {dtype = "float64"}) end

describe("F.linear against PyTorch", function()
  it("with and without bias, forward and backward; weight and bias by name", function()
    for _, name in ipairs{"linear", "linear_nobias"} do
      local c = FX[name]
      local xi = lucid.Tensor(c.input, {requires_grad = true})
      local w = lucid.Tensor(c.weight, {requires_grad = true})
      local b = c.bias and lucid.Tensor(c.bias, {requires_grad = true})
      local y = F.linear(xi, w, b)
      close(y, c.output, c)
      y:backward(lucid.Tensor(c.grad_output))
      close(xi.grad, c.input_grad, c)
      close(w.grad, c.weight_grad, c)
      if b then close(b.grad, c.bias_grad, c) end
    end
    local c = FX.linear
    close(F.linear(lucid.Tensor(c.input), {weight = lucid.Tensor(c.weight),
      bias = lucid.Tensor(c.bias)}), c.output, c)
  end)

  it("takes an empty trailing options table", function()
    local x = lucid.randn(2, 3)
    local lw = lucid.randn(4, 3)
    H.assert_close(F.linear(x, lw, {}), F.linear(x, lw):tolist())
  end)
end)

describe("bilinear against PyTorch", function()
  for _, name in ipairs{"bilinear", "bilinear_3d_nobias", "bilinear_f64"} do
    it(name .. ": nn.Bilinear and F.bilinear", function()
      local c = FX[name]
      local o = {dtype = c.dtype}
      local m = nn.Bilinear(3, 5, 2, {bias = c.bias ~= nil})
      if c.dtype == "float64" then
        m.weight = nn.Parameter(lucid.Tensor(c.weight, o))
        m.bias = nn.Parameter(lucid.Tensor(c.bias, o))
      else
        local sd = {{"weight", lucid.Tensor(c.weight)}}
        if c.bias then sd[2] = {"bias", lucid.Tensor(c.bias)} end
        m:load_state_dict(sd)
      end
      local x1 = lucid.Tensor(c.input1, {dtype = c.dtype, requires_grad = true})
      local x2 = lucid.Tensor(c.input2, {dtype = c.dtype, requires_grad = true})
      local y = m(x1, x2)
      close(y, c.output, c)
      y:backward(lucid.Tensor(c.grad_output, o))
      close(x1.grad, c.input1_grad, c)
      close(x2.grad, c.input2_grad, c)
      close(m.weight.grad, c.weight_grad, c)
      if c.bias then close(m.bias.grad, c.bias_grad, c) end
      local b = c.bias and lucid.Tensor(c.bias, o)
      close(F.bilinear(lucid.Tensor(c.input1, o), lucid.Tensor(c.input2, o),
        lucid.Tensor(c.weight, o), b), c.output, c)
    end)
  end

  it("prints, registers its parameters and initialises U(-1/sqrt(in1), 1/sqrt(in1))", function()
    local m = nn.Bilinear(4, 3, 2)
    assert.equal("Bilinear(in1_features=4, in2_features=3, out_features=2, bias=true)", tostring(m))
    assert.equal("Bilinear(in1_features=4, in2_features=3, out_features=2, bias=false)",
      tostring(nn.Bilinear{in1_features = 4, in2_features = 3, out_features = 2, bias = false}))
    assert.same({2, 4, 3}, m.weight.shape)
    assert.same({2}, m.bias.shape)
    assert.equal(2, #m:parameters())
    assert.equal(1, #nn.Bilinear(4, 3, 2, {bias = false}):parameters())
    assert.is_true(m.weight:abs():max():item() <= 0.5 and m.bias:abs():max():item() <= 0.5)
    assert.equal(4, m.in1_features)
    local seq = nn.Sequential{{"bil", m}}
    assert.equal([[
Sequential(
  (bil): Bilinear(in1_features=4, in2_features=3, out_features=2, bias=true)
)]], tostring(seq))
  end)
end)

describe("gradcheck in float64", function()
  local function check(f, ...) assert.is_true(gradcheck(f, {...})) end

  it("bilinear, linear", function()
    lucid.manual_seed(2)
    check(function(a, b, w, bias) return F.bilinear(a, b, w, bias) end,
      f64(3, 2), f64(3, 4), f64(2, 2, 4), f64(2))
    check(function(x, w, b) return F.linear(x, w, b) end, f64(3, 4), f64(2, 4), f64(2))
  end)
end)

describe("errors", function()
  local x = lucid.randn(2, 3)

  it("bilinear and linear: shapes", function()
    helpers.raises({"lucid.nn.functional.bilinear", "input1 with 3 features"},
      F.bilinear, lucid.randn(4, 2), lucid.randn(4, 5), lucid.randn(2, 3, 5))
    helpers.raises({"lucid.nn.functional.bilinear", "leading dims"},
      F.bilinear, lucid.randn(4, 3), lucid.randn(2, 5), lucid.randn(2, 3, 5))
    helpers.raises({"lucid.nn.functional.bilinear", "argument 2 (input2)", "expected a tensor"},
      F.bilinear, lucid.randn(4, 3))
    helpers.raises({"lucid.nn.functional.bilinear", "input2 with 5 features"},
      nn.Bilinear(3, 5, 2), lucid.randn(4, 3), lucid.randn(4, 4))
    helpers.raises({"nn.Bilinear", "out_features must be >= 0"}, nn.Bilinear, 3, 5, -2)
    helpers.raises({"lucid.nn.functional.linear", "expected the input's last dimension to be 4"},
      F.linear, x, lucid.randn(5, 4))
    helpers.raises({"lucid.nn.functional.linear", "bias must have shape {5}"},
      F.linear, lucid.randn(2, 4), lucid.randn(5, 4), lucid.randn(3))
  end)

end)

describe("linear family dtype rule", function()
  it("is C's: each float argument is named in the message", function()
    local f, i = lucid.ones(2, 3), lucid.ones(2, 3, {dtype = "int64"})
    local w = lucid.ones(1, 3, 3)
    assert.equal("lucid.nn.functional.bilinear: expected a float32 or float64 input1, got int64",
      H.err(F.bilinear, i, f, w))
    assert.equal("lucid.nn.functional.bilinear: expected a float32 or float64 weight, got int64",
      H.err(F.bilinear, f, f, i))
    assert.equal("lucid.nn.functional.bilinear: expected a float32 or float64 bias, got int32",
      H.err(F.bilinear, f, f, w, lucid.ones(1, {dtype = "int32"})))
  end)
end)
