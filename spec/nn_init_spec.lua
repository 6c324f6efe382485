-- nn.init and nn.utils. Gains, fans and the initialisers' bounds/stds against PyTorch
-- (spec/fixtures/nn_init.lua, written by tools/fixtures/init.py; the random draws come from
-- lucid's generator, so values are checked by statistics on large tensors: std within 3%),
-- orthogonality, in-place semantics on parameters, gradient clipping and parameter vectors.
local lucid = require "lucid"
local nn = require "lucid.nn"
local helpers = require "helpers"
local init, utils = nn.init, nn.utils

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local FX = dofile(here .. "fixtures/nn_init.lua")

local function stats(t)
  local d = t:double()
  return d:mean():item(), d:std():item(), d:min():item(), d:max():item()
end

describe("nn.init against PyTorch's numbers", function()
  it("calculate_gain", function()
    for _, g in ipairs(FX.gains) do
      local got = init.calculate_gain(g.nonlinearity, g.param)
      assert(math.abs(got - g.gain) <= 1e-15,
        ("%s(%s): %.17g vs %.17g"):format(g.nonlinearity, tostring(g.param), got, g.gain))
    end
    assert.equal(init.calculate_gain("leaky_relu", 0.2), init.calculate_gain{nonlinearity = "leaky_relu", param = 0.2})
  end)

  it("fan_in and fan_out, conv weights included", function()
    for _, f in ipairs(FX.fans) do
      local fi, fo = init.calculate_fan_in_and_fan_out(lucid.empty(f.shape))
      assert.equal(f.fan_in, fi)
      assert.equal(f.fan_out, fo)
    end
    assert.equal(init.calculate_fan_in_and_fan_out, init._calculate_fan_in_and_fan_out)
  end)

  it("xavier_uniform_ / xavier_normal_ bounds and stds", function()
    for _, x in ipairs(FX.xavier) do
      local t = lucid.empty(x.shape)
      assert.equal(t, init.xavier_uniform_(t, x.gain))
      local _, sd, lo, hi = stats(t)
      assert.is_true(lo >= -x.bound and hi <= x.bound)
      assert.is_true(math.abs(sd - x.std) < 0.03 * x.std, sd .. " vs " .. x.std)
      init.xavier_normal_(t, {gain = x.gain})
      local m
      m, sd = stats(t)
      assert.is_true(math.abs(sd - x.std) < 0.03 * x.std)
      assert.is_true(math.abs(m) < 0.03 * x.std)
    end
  end)

  it("kaiming_uniform_ / kaiming_normal_ bounds and stds", function()
    for _, k in ipairs(FX.kaiming) do
      local t = lucid.empty(k.shape, {dtype = "float64"})
      init.kaiming_uniform_(t, k.a, k.mode, k.nonlinearity)
      local _, sd, lo, hi = stats(t)
      assert.is_true(lo >= -k.bound and hi <= k.bound)
      assert.is_true(math.abs(sd - k.std) < 0.03 * k.std)
      init.kaiming_normal_(t, {a = k.a, mode = k.mode, nonlinearity = k.nonlinearity})
      _, sd = stats(t)
      assert.is_true(math.abs(sd - k.std) < 0.03 * k.std)
    end
  end)

  it("reports PyTorch's error cases", function()
    helpers.raises({"lucid.nn.init.xavier_uniform_", "fewer than 2 dims, got 1"},
      init.xavier_uniform_, lucid.empty(5))
    helpers.raises({"lucid.nn.init.kaiming_uniform_", "argument 3 (mode)", "'fan_avg'", "'fan_in' or 'fan_out'"},
      init.kaiming_uniform_, lucid.empty(3, 4), {mode = "fan_avg"})
    helpers.raises({"lucid.nn.init.calculate_gain", "unsupported nonlinearity 'swish'"},
      init.calculate_gain, "swish")
    helpers.raises({"orthogonal_", "2 or more dims"}, init.orthogonal_, lucid.empty(4))
    helpers.raises({"eye_", "only 2-D tensors"}, init.eye_, lucid.empty(2, 2, 2))
    helpers.raises({"argument 2 (param)", "must be a number"}, init.calculate_gain, "leaky_relu", true)
    helpers.raises({"kaiming_normal_", "unsupported nonlinearity"}, init.kaiming_normal_,
      lucid.empty(3, 4), {nonlinearity = "gelu"})
    helpers.raises({"uniform_", "low <= high"}, init.uniform_, lucid.empty(3), 1, 0)
    helpers.raises({"normal_", "float"}, init.normal_, lucid.zeros(3, {dtype = "int64"}))
    helpers.raises({"unknown option 'gian'"}, init.xavier_uniform_, lucid.empty(3, 3), {gian = 2})
  end)
end)

describe("nn.init in place", function()
  it("fills and returns the tensor", function()
    local t = lucid.empty(200, 300)
    assert.equal(t, init.uniform_(t, -1, 2))
    local m, _, lo, hi = stats(t)
    assert.is_true(lo >= -1 and hi < 2 and math.abs(m - 0.5) < 0.02)
    init.normal_(t, 3, 0.5)
    local sd
    m, sd = stats(t)
    assert.is_true(math.abs(m - 3) < 0.01 and math.abs(sd - 0.5) < 0.01)
    init.constant_(t, 0.25)
    assert.equal(0.25, t:min():item())
    assert.equal(0.25, t:max():item())
    init.ones_(t)
    assert.equal(60000, t:sum():item())
    init.zeros_(t)
    assert.equal(0, t:abs():sum():item())
    local e = init.eye_(lucid.empty(2, 3))
    assert.same({{1, 0, 0}, {0, 1, 0}}, e:tolist())
  end)

  it("writes parameters without no_grad and keeps them leaves", function()
    local lin = nn.Linear(30, 20)
    init.kaiming_normal_(lin.weight, {nonlinearity = "relu"})
    init.zeros_(lin.bias)
    assert.is_true(lin.weight.requires_grad and lin.weight.is_leaf)
    assert.equal(0, lin.bias:abs():sum():item())
    assert.is_true(lucid.is_grad_enabled())
    -- the model still trains
    lin(lucid.randn(4, 30)):sum():backward()
    assert.same({20, 30}, lin.weight.grad.shape)
  end)

  it("detects a write to a tensor saved for backward", function()
    local w = lucid.randn(3, 3, {requires_grad = true})
    local y = (w * w):sum()
    init.ones_(w)
    helpers.raises({"modified by an in-place operation"}, function() y:backward() end)
  end)

  it("orthogonal_: W W^T = I (wide), W^T W = gain^2 I (tall), conv shapes", function()
    local function check(shape, gain, tol)
      local t = init.orthogonal_(lucid.empty(shape, {dtype = "float64"}), gain)
      local rows = shape[1]
      local w = t:reshape(rows, -1)
      local g = rows <= w.shape[2] and w:matmul(w:t()) or w:t():matmul(w)
      local n = g.shape[1]
      local err = (g - lucid.eye(n, {dtype = "float64"}) * (gain * gain)):abs():max():item()
      assert.is_true(err < tol, ("shape {%s}: error %g"):format(table.concat(shape, ", "), err))
    end
    check({5, 12}, 1, 1e-12)
    check({30, 4}, 2, 1e-12)
    check({6, 2, 3}, 1, 1e-12)
    check({16, 16}, 1.5, 1e-12)
    local f = init.orthogonal_(lucid.empty(8, 8))
    assert.is_true((f:matmul(f:t()) - lucid.eye(8)):abs():max():item() < 1e-5)
  end)
end)

describe("nn.utils", function()
  local function model_with_grads()
    local m = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    m(lucid.randn(5, 4)):pow(2):sum():backward()
    return m
  end

  local function grad_norm(ps, p)
    local s = 0
    for _, t in ipairs(ps) do
      if t.grad then
        if p == math.huge then
          s = math.max(s, t.grad:abs():max():item())
        else
          s = s + t.grad:double():abs():pow(p):sum():item()
        end
      end
    end
    return p == math.huge and s or s ^ (1 / p)
  end

  it("clip_grad_norm_ returns the total norm and scales by max_norm / (total + 1e-6)", function()
    local m = model_with_grads()
    local before = grad_norm(m:parameters(), 2)
    local total = utils.clip_grad_norm_(m:parameters(), 0.5)
    assert.is_true(math.abs(total - before) < 1e-5 * before)
    local after = grad_norm(m:parameters(), 2)
    assert.is_true(math.abs(after - 0.5 * before / (before + 1e-6)) < 1e-5)
    -- below the threshold: unchanged (the coefficient is clamped at 1)
    local again = utils.clip_grad_norm_(m, 10)
    assert.is_true(math.abs(again - after) < 1e-5)
    assert.is_true(math.abs(grad_norm(m:parameters(), 2) - after) < 1e-6)
  end)

  it("clip_grad_norm_ with math.huge, 'inf' and p = 1", function()
    local m = model_with_grads()
    local inf = grad_norm(m:parameters(), math.huge)
    assert.is_true(math.abs(utils.clip_grad_norm_(m, 1e9, math.huge) - inf) < 1e-6)
    assert.is_true(math.abs(utils.clip_grad_norm_(m, 1e9, "inf") - inf) < 1e-6)
    local l1 = grad_norm(m:parameters(), 1)
    assert.is_true(math.abs(utils.clip_grad_norm_(m, 1e9, {norm_type = 1}) - l1) < 1e-5 * l1)
    utils.clip_grad_norm_(m, 0.01, math.huge)
    assert.is_true(grad_norm(m:parameters(), math.huge) <= 0.01 + 1e-7)
  end)

  it("accepts a module, a list, a tensor or an iterator; skips parameters without grad", function()
    local a = lucid.ones(3, {requires_grad = true})
    local b = lucid.ones(2, {requires_grad = true})
    a.grad = lucid.Tensor({3, 0, 0})
    local list = {a, b}
    assert.equal(3, utils.clip_grad_norm_(list, 100))
    assert.is_nil(b.grad)
    assert.equal(3, utils.clip_grad_norm_(a, 100))
    local i = 0
    local iter = function() i = i + 1; return list[i] end
    assert.equal(3, utils.clip_grad_norm_(iter, 100))
    assert.equal(0, utils.clip_grad_norm_({b}, 1))
    helpers.raises({"clip_grad_norm_", "must be a module, a tensor"}, utils.clip_grad_norm_, 5, 1)
    helpers.raises({"entry 2 is number"}, utils.clip_grad_norm_, {a, 2}, 1)
    helpers.raises({"norm_type must be positive"}, utils.clip_grad_norm_, {a}, 1, 0)
    a.grad = lucid.Tensor({0 / 0, 1, 1})
    helpers.raises({"non-finite"}, utils.clip_grad_norm_, {a}, 1, {error_if_nonfinite = true})
  end)

  it("clip_grad_value_ clamps into [-v, v]", function()
    local m = model_with_grads()
    utils.clip_grad_value_(m, 0.01)
    for _, p in ipairs(m:parameters()) do
      assert.is_true(p.grad:abs():max():item() <= 0.01 + 1e-9)
    end
    helpers.raises({"clip_value must be >= 0"}, utils.clip_grad_value_, m, -1)
  end)

  it("parameters_to_vector / vector_to_parameters round trip with a size check", function()
    local m = nn.Linear(3, 2)
    local v = utils.parameters_to_vector(m)
    assert.same({8}, v.shape)
    assert.same(m.weight:reshape(-1):tolist(), v:narrow(1, 1, 6):tolist())
    assert.same(m.bias:tolist(), v:narrow(1, 7, 2):tolist())
    local doubled = lucid.no_grad(function() return v * 2 end)
    utils.vector_to_parameters(doubled, m:parameters())
    assert.same(doubled:narrow(1, 7, 2):tolist(), m.bias:tolist())
    assert.is_true(m.weight.requires_grad and m.weight.is_leaf)
    helpers.raises({"vector_to_parameters", "7 elements", "8"}, utils.vector_to_parameters,
      lucid.zeros(7), m)
    helpers.raises({"parameters_to_vector", "at least one"}, utils.parameters_to_vector, {})
    -- positions as Lua users count them (the C core's message is 0-based)
    helpers.raises({"parameters_to_vector", "entry 3 is float64 but entry 1 is float32"},
      utils.parameters_to_vector, {lucid.zeros(2), lucid.zeros(1), lucid.zeros({1}, {dtype = "float64"})})
    -- differentiable like PyTorch's
    v:sum():backward()
    assert.same({2, 3}, m.weight.grad.shape)
  end)
end)
