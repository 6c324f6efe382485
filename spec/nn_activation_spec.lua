-- The activation family (docs/nn/activation.md): activations, softmax/log_softmax (dropout:
-- spec/nn_dropout_spec.lua). Values and gradients against PyTorch
-- (spec/fixtures/nn_activation.lua, written by tools/fixtures/activation.py): float32 within
-- relative 1e-5 / absolute 1e-6, float64 within relative 1e-10 / absolute 1e-12; gradients
-- numerically with lucid.autograd.gradcheck in float64.
local lucid = require "lucid"
local nn = require "lucid.nn"
local F = nn.functional
local H = require "nn_helpers"
local helpers = require "helpers"
local gradcheck = lucid.autograd.gradcheck

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local FX = dofile(here .. "fixtures/nn_activation.lua")

local function tol(c)
  if c.dtype == "float64" then return 1e-10, 1e-12 end
  return 1e-5, 1e-6
end

local function close(t, want, c) H.assert_close(t, want, tol(c)) end

local function f64(...) return lucid.randn({...}, {dtype = "float64"}) end

-- the class of each functional name; fixture options are the class's options too
local classes = {
  relu6 = nn.ReLU6, leaky_relu = nn.LeakyReLU, elu = nn.ELU, gelu = nn.GELU, silu = nn.SiLU,
  mish = nn.Mish, softplus = nn.Softplus, hardtanh = nn.Hardtanh, hardswish = nn.Hardswish,
}

local act_cases, sm_cases = {}, {}
for name, c in pairs(FX) do
  if classes[c.fn] then act_cases[#act_cases + 1] = name end
  if c.fn == "softmax" or c.fn == "log_softmax" then sm_cases[#sm_cases + 1] = name end
end
table.sort(act_cases)
table.sort(sm_cases)

describe("activations against PyTorch", function()
  for _, name in ipairs(act_cases) do
    it(name .. ": functional and module forward, backward", function()
      local c = FX[name]
      local x = lucid.Tensor(c.input, {dtype = c.dtype, requires_grad = true})
      -- an empty trailing table would be read as a positional argument
      local opts = next(c.opts) and c.opts or nil
      local y = F[c.fn](x, opts)
      assert.equal(c.dtype, y.dtype)
      close(y, c.output, c)
      close(classes[c.fn](c.opts)(x), c.output, c)
      y:backward(lucid.Tensor(c.grad_output, {dtype = c.dtype}))
      close(x.grad, c.input_grad, c)
    end)
  end

  it("propagate NaN (ELU too: its x <= 0 branch used to turn NaN into 0), gradient as PyTorch",
    function()
      for _, dt in ipairs{"float32", "float64"} do
        for _, fn in ipairs{"relu6", "leaky_relu", "elu", "gelu", "silu", "mish", "softplus",
                            "hardtanh"} do
          local y = F[fn](lucid.Tensor({0 / 0, 1}, {dtype = dt}))
          local v = y:tolist()[1]
          assert.is_true(v ~= v, fn .. " " .. dt)
        end
        local x = lucid.Tensor({0 / 0}, {dtype = dt, requires_grad = true})
        F.elu(x, {alpha = 2}):backward(lucid.ones({1}, {dtype = dt}))
        H.assert_close(x.grad, {1}) -- PyTorch: x <= 0 ? g alpha exp(x) : g
      end
    end)

  it("take an empty trailing options table and everything by name", function()
    local x = lucid.randn(2, 3)
    local want = {
      relu6 = F.relu6(x), leaky_relu = F.leaky_relu(x), elu = F.elu(x), gelu = F.gelu(x),
      silu = F.silu(x), mish = F.mish(x), softplus = F.softplus(x), hardtanh = F.hardtanh(x),
    }
    for fn, w in pairs(want) do
      H.assert_close(F[fn](x, {}), w:tolist())
      H.assert_close(F[fn]{input = x}, w:tolist())
    end
    H.assert_close(F.softmax(x, 2, {}), x:softmax(2):tolist())
    H.assert_close(F.softmax{input = x, dim = 2}, x:softmax(2):tolist())
    -- a non-empty table in a positional slot is still an error naming the argument
    assert.matches("argument 2 %(negative_slope%)", H.err(F.leaky_relu, x, {0.1}))
  end)

  it("keep large inputs finite", function()
    local x = lucid.Tensor({-1e4, -100, 100, 1e4})
    for _, fn in ipairs{"elu", "gelu", "silu", "mish", "softplus"} do
      local y = F[fn](x)
      for _, v in ipairs(y:tolist()) do assert.is_true(v == v and math.abs(v) < math.huge, fn) end
    end
  end)

  it("F.relu, F.tanh and F.sigmoid match the tensor functions", function()
    local x = lucid.randn(3, 4)
    H.assert_close(F.relu(x), x:relu():tolist())
    H.assert_close(F.relu(x, {inplace = false}), x:relu():tolist())
    H.assert_close(F.tanh(x), x:tanh():tolist())
    H.assert_close(F.sigmoid(x), x:sigmoid():tolist())
  end)
end)

describe("softmax and log_softmax against PyTorch", function()
  for _, name in ipairs(sm_cases) do
    it(name, function()
      local c = FX[name]
      local x = lucid.Tensor(c.input, {dtype = c.dtype, requires_grad = true})
      local g = lucid.Tensor(c.grad_output, {dtype = c.dtype})
      if c.perm then -- a non-contiguous input (a leaf) and upstream gradient
        x = lucid.Tensor(c.input, {dtype = c.dtype}):permute(c.perm):requires_grad_()
        assert.is_false(x:is_contiguous())
        g = g:permute(c.grad_perm)
      end
      local y = F[c.fn](x, c.dim)
      close(y, c.output, c)
      close(x[c.fn](x, c.dim), c.output, c)
      close(x[c.fn](x, {dim = c.dim}), c.output, c)
      local cls = c.fn == "softmax" and nn.Softmax or nn.LogSoftmax
      close(cls(c.dim)(x), c.output, c)
      close(cls{dim = c.dim}(x), c.output, c)
      y:backward(g)
      close(x.grad, c.input_grad, c)
    end)
  end

  it("softmax of large values sums to one, log_softmax stays finite", function()
    local x = lucid.Tensor({{1000, 0, -1000}, {1e30, 1e30, 0}})
    local s = x:softmax(2)
    H.assert_close(s:sum(2), {1, 1})
    H.assert_close(s, {{1, 0, 0}, {0.5, 0.5, 0}})
    local l = x:log_softmax(-1):tolist()
    assert.is_true(math.abs(l[1][1]) < 1e-6 and math.abs(l[1][3] + 2000) < 1e-3)
  end)
end)

describe("gradcheck in float64", function()
  local function check(f, ...) assert.is_true(gradcheck(f, {...})) end

  it("elementwise activations", function()
    lucid.manual_seed(1)
    check(function(x) return F.relu6(x * 4) end, f64(3, 5))
    check(function(x) return F.leaky_relu(x, 0.3) end, f64(3, 5))
    check(function(x) return F.elu(x, {alpha = 0.7}) end, f64(3, 5))
    check(function(x) return F.gelu(x) end, f64(3, 5))
    check(function(x) return F.gelu(x, {approximate = "tanh"}) end, f64(3, 5))
    check(function(x) return F.silu(x) end, f64(3, 5))
    check(function(x) return F.mish(x) end, f64(3, 5))
    check(function(x) return F.softplus(x, 2, 1) end, f64(3, 5))
    check(function(x) return F.hardtanh(x, -0.5, 0.5) end, f64(3, 5))
    check(function(x) return F.gelu(x:t()) end, f64(3, 5)) -- a strided input
  end)

  it("softmax, log_softmax", function()
    lucid.manual_seed(2)
    for d = 1, 3 do
      check(function(x) return F.softmax(x, d) end, f64(2, 3, 4))
      check(function(x) return F.log_softmax(x, d) end, f64(2, 3, 4))
    end
  end)
end)

describe("printing and attributes", function()
  it("prints like PyTorch, dims and indices 1-based", function()
    local cases = {
      {nn.ReLU6(), "ReLU6()"},
      {nn.ReLU6(true), "ReLU6(inplace=true)"},
      {nn.LeakyReLU(), "LeakyReLU(negative_slope=0.01)"},
      {nn.LeakyReLU(0.2, true), "LeakyReLU(negative_slope=0.2, inplace=true)"},
      {nn.ELU(), "ELU(alpha=1.0)"},
      {nn.ELU{alpha = 0.5}, "ELU(alpha=0.5)"},
      {nn.GELU(), "GELU(approximate='none')"},
      {nn.GELU("tanh"), "GELU(approximate='tanh')"},
      {nn.SiLU(), "SiLU()"},
      {nn.Mish(), "Mish()"},
      {nn.Softplus(), "Softplus(beta=1, threshold=20)"},
      {nn.Softplus{beta = 2, threshold = 10}, "Softplus(beta=2, threshold=10)"},
      {nn.Hardtanh(), "Hardtanh(min_val=-1.0, max_val=1.0)"},
      {nn.Hardtanh(-2, 2), "Hardtanh(min_val=-2.0, max_val=2.0)"},
      {nn.Softmax(2), "Softmax(dim=2)"},
      {nn.Softmax{dim = -1}, "Softmax(dim=-1)"},
      {nn.LogSoftmax(1), "LogSoftmax(dim=1)"},
    }
    for _, c in ipairs(cases) do assert.equal(c[2], tostring(c[1])) end
  end)

  it("exposes the options as attributes", function()
    assert.equal(0.2, nn.LeakyReLU(0.2).negative_slope)
    assert.equal(2, nn.ELU(2).alpha)
    assert.equal(2, nn.Softplus(2, 5).beta)
    assert.equal(5, nn.Softplus(2, 5).threshold)
    assert.equal(-3, nn.Hardtanh(-3, 4).min_val)
    assert.equal(4, nn.Hardtanh(-3, 4).max_val)
    assert.equal(2, nn.Softmax(2).dim)
    assert.equal(-1, nn.LogSoftmax(-1).dim)
  end)

  it("layers work inside containers and train end to end", function()
    lucid.manual_seed(5)
    local model = nn.Sequential(nn.Linear(6, 8), nn.GELU(), nn.Dropout(0.2), nn.Linear(8, 4),
      nn.Mish(), nn.LogSoftmax(2))
    local x = lucid.randn(5, 6)
    local y = model(x)
    assert.same({5, 4}, y.shape)
    H.assert_close(y:exp():sum(2), {1, 1, 1, 1, 1})
    y:sum():backward()
    assert.same({8, 6}, model[1].weight.grad.shape)
  end)
end)

describe("errors", function()
  local x = lucid.randn(2, 3)
  local ix = lucid.Tensor({{1, 2}, {3, 11}}, {dtype = "int64"})
  local w = lucid.randn(10, 4)

  it("name the function, the argument, expected and got (1-based)", function()
    helpers.raises({"lucid.nn.functional.softmax", "argument 2 (dim)", "dim 3 out of range",
      "expected 1..2 or -2..-1"}, F.softmax, x, 3)
    helpers.raises({"lucid.nn.functional.log_softmax", "dim 0 is invalid"}, F.log_softmax, x, 0)
    helpers.raises({"lucid.nn.functional.softmax", "a dim is required"}, F.softmax, x)
    helpers.raises({"lucid.softmax", "argument 2 (dim)"}, function() return x:softmax(5) end)
    helpers.raises({"lucid.nn.functional.relu6", "expected a float32 or float64 input",
      "got int64"}, F.relu6, ix)
    helpers.raises({"lucid.nn.functional.gelu", "argument 1 (input)", "expected a tensor, got nil"},
      F.gelu)
    helpers.raises({"lucid.nn.functional.gelu", "approximate", "\"none\" or \"tanh\"", "fast"},
      F.gelu, x, {approximate = "fast"})
    helpers.raises({"lucid.nn.functional.elu", "unknown option 'beta'"}, F.elu, x, {beta = 1})
    helpers.raises({"lucid.nn.functional.hardtanh", "max_val"}, F.hardtanh, x, 1, -1)
    helpers.raises({"lucid.nn.functional.softplus", "beta", "non-zero"}, F.softplus, x, 0)
    helpers.raises({"lucid.nn.functional.leaky_relu", "inplace", "not supported"},
      F.leaky_relu, x, 0.1, true)
    helpers.raises({"nn.functional.relu", "inplace"}, F.relu, x, true)
  end)

  it("module options and forward shapes", function()
    helpers.raises({"nn.Softmax", "dim is required"}, nn.Softmax)
    helpers.raises({"nn.Softmax", "dim 0 is invalid"}, nn.Softmax, 0)
    helpers.raises({"lucid.Softmax: dim 3 out of range for a tensor with 2 dims (expected 1..2 or -2..-1)"},
      nn.Softmax(3), x)
    helpers.raises({"lucid.Sequential.sm (Softmax): dim 3 out of range for a tensor with 2 dims"},
      nn.Sequential{{"sm", nn.Softmax(3)}}, x)
    helpers.raises({"lucid.nn.LeakyReLU", "argument 1 (negative_slope)", "expected a number",
      "got string"},
      nn.LeakyReLU, "big")
    helpers.raises({"lucid.nn.GELU", "argument 1 (approximate)", "expected \"none\" or \"tanh\"",
      "got erf"}, nn.GELU, "erf")
    -- the rules are the op's, the same for the module and the function (NaN included)
    helpers.raises({"lucid.nn.Softplus", "beta must be a non-zero number, got nan"}, nn.Softplus, 0 / 0)
    helpers.raises({"lucid.nn.functional.softplus", "beta must be a non-zero number, got nan"},
      F.softplus, x, 0 / 0)
    helpers.raises({"lucid.nn.functional.hardtanh", "max_val must be greater than or equal to " ..
      "min_val, got min_val = 1, max_val = -1"}, F.hardtanh, x, 1, -1)
    helpers.raises({"lucid.nn.Hardtanh", "max_val must be greater than or equal to min_val, got " ..
      "min_val = 1, max_val = -1"}, nn.Hardtanh, 1, -1)
    helpers.raises({"lucid.nn.ELU", "argument 2 (inplace)", "expected a boolean"}, nn.ELU, 1, 3)
    helpers.raises({"lucid.nn.ReLU6", "too many arguments"}, nn.ReLU6, true, 1)
    helpers.raises({"nn.Hardtanh", "max_val must be greater than or equal to min_val"},
      nn.Hardtanh, 1, 0)
    helpers.raises({"nn.Softplus", "beta must be a non-zero number"}, nn.Softplus, 0)
    helpers.raises({"nn.ReLU6", "unknown option 'inplac'"}, nn.ReLU6, {inplac = true})
  end)
end)

describe("softmax and log_softmax inputs", function()
  it("must be float32 or float64 (C's rule)", function()
    local i = lucid.ones(2, 3, {dtype = "int64"})
    assert.equal("lucid.nn.functional.softmax: expected a float32 or float64 input, got int64",
      H.err(F.softmax, i, 1))
    assert.equal("lucid.nn.functional.log_softmax: expected a float32 or float64 input, got int64",
      H.err(F.log_softmax, i, -1))
  end)
end)
