-- The interpolate family (F.interpolate and nn.Upsample) against PyTorch
-- (spec/fixtures/nn_interpolate.lua, written by tools/fixtures/interpolate.py): outputs and input
-- gradients of nearest 1-D / 2-D and bilinear, with and without align_corners. float32
-- tolerances: relative 1e-5, absolute 2e-5. Then gradcheck in float64. Edge cases (source
-- indices, strided inputs, empty batches) are spec/nn_pool_pad_spec.lua's.
local lucid = require "lucid"
local nn = require "lucid.nn"
local F = nn.functional
local H = require "nn_helpers"

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local FX = dofile(here .. "fixtures/nn_interpolate.lua")

local REL, ABS = 1e-5, 2e-5
local T = lucid.Tensor

describe("interpolate against PyTorch", function()
  it("F.interpolate: nearest 1-D / 2-D and bilinear, forward and backward", function()
    local n = 0
    for name, c in pairs(FX) do
      n = n + 1
      local x = T(c.input, {requires_grad = true})
      local y = F.interpolate(x, c.options)
      local ok, err = pcall(H.assert_close, y, c.output, REL, ABS)
      assert(ok, name .. ": " .. tostring(err))
      y:backward(T(c.grad_output))
      ok, err = pcall(H.assert_close, x.grad, c.input_grad, REL, ABS)
      assert(ok, name .. " (grad): " .. tostring(err))
      -- nn.Upsample with the same options gives the same values
      local up = nn.Upsample(c.options)
      H.assert_close(up(T(c.input)), c.output, REL, ABS)
    end
    assert.equal(11, n)
  end)
end)

describe("nn.Upsample", function()
  it("prints as PyTorch's repr, floats with their .0 however large", function()
    assert.equal("Upsample(scale_factor=2.0, mode='nearest')", tostring(nn.Upsample{scale_factor = 2}))
    assert.equal("Upsample(scale_factor=10.0, mode='nearest')", tostring(nn.Upsample{scale_factor = 10}))
    assert.equal("Upsample(scale_factor=(100.0, 0.5), mode='nearest')",
      tostring(nn.Upsample{scale_factor = {100, 0.5}}))
    assert.equal("Upsample(size=(4, 5), mode='bilinear')",
      tostring(nn.Upsample{size = {4, 5}, mode = "bilinear"}))
  end)
end)

describe("interpolate gradients (gradcheck, float64)", function()
  local gc = lucid.autograd.gradcheck
  local function r(...) return lucid.randn({...}, {dtype = "float64"}) end

  it("interpolate: nearest 1-D and 2-D, bilinear with and without align_corners", function()
    assert.is_true(gc(function(x_) return F.interpolate(x_, {size = 7}) end, {r(2, 2, 3)}))
    assert.is_true(gc(function(x_) return F.interpolate(x_, {scale_factor = {2, 1.5}}) end, {r(1, 2, 3, 4)}))
    assert.is_true(gc(function(x_)
      return F.interpolate(x_, {size = {5, 7}, mode = "bilinear"})
    end, {r(1, 2, 3, 4)}))
    assert.is_true(gc(function(x_)
      return F.interpolate(x_, {size = {4, 2}, mode = "bilinear", align_corners = true})
    end, {r(1, 2, 3, 4)}))
  end)
end)
