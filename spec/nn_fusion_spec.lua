-- Containers run BatchNorm followed by ReLU as one fused pass (lc_module_kind.forward_relu):
-- the result, gradients, running statistics and error paths must equal the unfused modules'.
local lucid = require "lucid"
local nn = lucid.nn
local H = require "nn_helpers"

local function close(a, b, tol)
  return (a - b):abs():max():item() <= tol
end

describe("BatchNorm + ReLU fusion in containers", function()
  for _, case in ipairs{
    {"BatchNorm2d", function() return nn.BatchNorm2d(3) end, {4, 3, 5, 5}},
    {"BatchNorm1d", function() return nn.BatchNorm1d(3) end, {6, 3}},
  } do
    local name, make, shape = case[1], case[2], case[3]
    it(name .. " then ReLU: same values, gradients and running stats as unfused", function()
      lucid.manual_seed(3)
      local fused = nn.Sequential(make(), nn.ReLU())
      local bn = make()
      bn:load_state_dict(fused[1]:state_dict())
      local x = lucid.randn(shape, {requires_grad = true})
      local x2 = x:detach():requires_grad_()
      for step = 1, 2 do -- two training steps: running stats move twice
        x.grad, x2.grad = nil, nil
        fused:zero_grad()
        bn:zero_grad()
        local y1 = fused(x)
        local y2 = bn(x2):relu()
        assert.is_true(close(y1, y2, 1e-6), "forward, step " .. step)
        local g = lucid.randn(y1.shape)
        y1:backward(g)
        y2:backward(g)
        assert.is_true(close(x.grad, x2.grad, 1e-5), "input grad")
        assert.is_true(close(fused[1].weight.grad, bn.weight.grad, 1e-4), "weight grad")
        assert.is_true(close(fused[1].bias.grad, bn.bias.grad, 1e-4), "bias grad")
        assert.is_true(close(fused[1].running_mean, bn.running_mean, 1e-6))
        assert.is_true(close(fused[1].running_var, bn.running_var, 1e-6))
      end
      fused:eval()
      bn:eval()
      assert.is_true(close(fused(x), bn(x):relu(), 1e-6), "eval")
    end)
  end

  it("float32 and float64, large channel counts, values far from their mean: gradients match " ..
     "the unfused modules' in float64", function()
    for _, case in ipairs{
      {"float32", {4, 3, 30, 30}, 1000, 0.01}, -- masked sums in float lanes: centred on the mean
      {"float32", {4, 300, 700}, 100, 0.01},
      {"float32", {16, 1000}, 1000, 0.01},
      {"float64", {4, 3, 30, 30}, 1000, 0.01},
      {"float64", {4, 600, 3, 3}, 0, 1},
      {"float64", {8, 1000}, 0, 1},
    } do
      local dt, shape, offset, scale = case[1], case[2], case[3], case[4]
      lucid.manual_seed(3)
      local make = #shape == 4 and nn.BatchNorm2d or nn.BatchNorm1d
      local fused = nn.Sequential(make(shape[2]), nn.ReLU()):to(dt)
      local ref = make(shape[2]):to("float64") -- unfused, float64: the reference
      local x0 = lucid.randn(shape, {dtype = dt}) * scale + offset
      local x, xr = x0:clone():requires_grad_(), x0:to("float64"):requires_grad_()
      local y, yr = fused(x), ref(xr):relu()
      local g = lucid.randn(y.shape, {dtype = dt})
      y:backward(g)
      yr:backward(g:to("float64"))
      local tol = dt == "float32" and 1e-6 or 1e-13
      local function rel(a, b)
        return (a:to("float64") - b):abs():max():item() / b:abs():max():item()
      end
      local what = dt .. " " .. table.concat(shape, "x")
      assert.is_true(rel(y, yr) < tol, what .. " output " .. rel(y, yr))
      assert.is_true(rel(x.grad, xr.grad) < tol, what .. " input grad " .. rel(x.grad, xr.grad))
      assert.is_true(rel(fused[1].weight.grad, ref.weight.grad) < tol,
        what .. " weight grad " .. rel(fused[1].weight.grad, ref.weight.grad))
      assert.is_true(rel(fused[1].bias.grad, ref.bias.grad) < tol,
        what .. " bias grad " .. rel(fused[1].bias.grad, ref.bias.grad))
    end
  end)

  it("keeps the error path of the BatchNorm child", function()
    local m = nn.Sequential{{"bn", nn.BatchNorm2d(3)}, {"act", nn.ReLU()}}
    assert.equal("lucid.Sequential.bn (BatchNorm2d): expected input with 3 channels, got 2: " ..
      "input shape {1, 2, 4, 4}", H.err(m, lucid.ones(1, 2, 4, 4)))
    assert.same({1, 3, 4, 4}, m(lucid.randn(1, 3, 4, 4)).shape) -- still usable
  end)

  it("does not fuse with a ReLU that is not next, or a Lua module", function()
    local Neg = nn.Module:extend("Neg")
    function Neg:forward(x) return -x end
    lucid.manual_seed(1)
    local m = nn.Sequential(nn.BatchNorm1d(2), Neg(), nn.ReLU())
    local x = lucid.randn(5, 2)
    local want = (-m[1](x)):relu()
    assert.is_true(close(m(x), want, 1e-6))
  end)
end)
