-- Linear and small Sequential models against PyTorch (spec/fixtures/nn_linear.lua, written by
-- tools/make-nn-fixtures.py): outputs and gradients, with the weights loaded through
-- load_state_dict. float32: relative 1e-5, absolute 1e-6.
local lucid = require "lucid"
local nn = require "lucid.nn"
local H = require "nn_helpers"

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local F = dofile(here .. "fixtures/nn_linear.lua")

local function load(model, state)
  local sd = {}
  for i, kv in ipairs(state) do sd[i] = {kv[1], lucid.Tensor(kv[2])} end
  local missing, unexpected = model:load_state_dict(sd)
  assert.same({}, missing)
  assert.same({}, unexpected)
  return model
end

describe("nn against PyTorch", function()
  it("Linear forward and backward with an upstream gradient", function()
    local c = F.linear
    local lin = load(nn.Linear(4, 3), c.state)
    local x = lucid.Tensor(c.input, {requires_grad = true})
    local y = lin(x)
    H.assert_close(y, c.output)
    y:backward(lucid.Tensor(c.grad_output))
    H.assert_close(x.grad, c.input_grad)
    H.assert_close(lin.weight.grad, c.weight_grad)
    H.assert_close(lin.bias.grad, c.bias_grad)
  end)

  it("Linear without bias on a 3-D input", function()
    local c = F.linear_nobias_3d
    local lin = load(nn.Linear(3, 2, {bias = false}), c.state)
    local x = lucid.Tensor(c.input, {requires_grad = true})
    local y = lin(x)
    assert.same({2, 2, 2}, y.shape)
    H.assert_close(y, c.output)
    y:sum():backward()
    H.assert_close(x.grad, c.input_grad)
    H.assert_close(lin.weight.grad, c.weight_grad)
  end)

  it("the seed's second example", function()
    local c = F.seed2
    local model = load(nn.Sequential{
      {"fc1", nn.Linear{in_features = 5, out_features = 3}},
      {"activation", nn.Tanh()},
      {"fc2", nn.Linear{in_features = 3, out_features = 1}},
    }, c.state)
    local x = lucid.Tensor(c.input, {requires_grad = true})
    local y = model(x)
    H.assert_close(y, c.output)
    y:backward()
    H.assert_close(x.grad, c.input_grad)
    H.assert_close(model.fc1.weight.grad, c.fc1_weight_grad)
  end)

  it("Linear, ReLU, Linear, Sigmoid", function()
    local c = F.mlp
    local model = load(nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2), nn.Sigmoid()),
      c.state)
    local x = lucid.Tensor(c.input, {requires_grad = true})
    local y = model(x)
    H.assert_close(y, c.output)
    y:sum():backward()
    H.assert_close(x.grad, c.input_grad)
    H.assert_close(model[1].weight.grad, c.first_weight_grad)
  end)
end)
