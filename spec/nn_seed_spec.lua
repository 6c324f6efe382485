-- The seed's nn.Sequential examples 1 to 5, exactly as /work/shared/lua-api.md writes
-- them, plus checks of what they produce; and the examples/ scripts run by the interpreter.
local lucid = require "lucid"
local nn, Tensor = lucid.nn, lucid.Tensor

local function shape(t) return t.shape end

describe("nn seed examples", function()
  it("1. positional modules", function()
    local model = nn.Sequential(
      nn.Linear{in_features = 4, out_features = 3},
      nn.ReLU(),
      nn.Linear{in_features = 3, out_features = 2}
    )
    local input_tensor = Tensor({{1.0, 2.0, 3.0, 4.0}}, {requires_grad = true}) -- shape {1, 4}
    local output = model(input_tensor)
    print(output)
    output:sum():backward()
    print(input_tensor.grad)

    assert.same({1, 2}, shape(output))
    assert.equal("LinearBackward", output.grad_fn)
    assert.same({1, 4}, shape(input_tensor.grad))
    for _, p in ipairs(model:parameters()) do
      assert.is_not_nil(p.grad)
      assert.same(p.shape, p.grad.shape)
    end
    -- the bias of the last layer receives d(sum)/d(b) = 1
    assert.same({1, 1}, model[3].bias.grad:tolist())
  end)

  it("2. an ordered table of named modules", function()
    local model = nn.Sequential{
      {"fc1", nn.Linear{in_features = 5, out_features = 3}},
      {"activation", nn.Tanh()},
      {"fc2", nn.Linear{in_features = 3, out_features = 1}},
    }
    local input_tensor = Tensor({{0.5, -1.2, 3.3, 0.0, 2.1}}, {requires_grad = true})
    local output = model(input_tensor)
    output:backward()            -- one element: the gradient seed is implicit
    print(input_tensor.grad)

    assert.same({1, 1}, shape(output))
    assert.same({1, 5}, shape(input_tensor.grad))
    assert.same({3, 5}, shape(model.fc1.weight.grad))
    assert.same({1}, model.fc2.bias.grad:tolist())
    local names = {}
    for name in model:named_children() do names[#names + 1] = name end
    assert.same({"fc1", "activation", "fc2"}, names)
  end)

  it("3. a CNN (the seed writes Conv2D; Conv2d is the same class)", function()
    local model = nn.Sequential{
      {"conv1", nn.Conv2D{in_channels = 3, out_channels = 16, kernel_size = 3, padding = 1}},
      {"batch_norm1", nn.BatchNorm2d{num_features = 16}},
      {"relu1", nn.ReLU()},
      {"pool1", nn.MaxPool2d{kernel_size = 2, stride = 2}},
      {"conv2", nn.Conv2D{in_channels = 16, out_channels = 32, kernel_size = 3, padding = 1}},
      {"batch_norm2", nn.BatchNorm2d{num_features = 32}},
      {"relu2", nn.ReLU()},
      {"pool2", nn.MaxPool2d{kernel_size = 2, stride = 2}},
      {"flatten", nn.Flatten()},
      {"fc1", nn.Linear{in_features = 32 * 8 * 8, out_features = 128}},
      {"relu3", nn.ReLU()},
      {"fc2", nn.Linear{in_features = 128, out_features = 10}},
    }
    local input_tensor = lucid.arange(1, 3 * 32 * 32 + 1):reshape(1, 3, 32, 32):requires_grad_()
    local output = model(input_tensor)
    output:sum():backward()

    assert.equal(nn.Conv2d, nn.Conv2D)
    assert.same({1, 10}, shape(output))
    assert.same({1, 3, 32, 32}, shape(input_tensor.grad))
    for name, p in model:named_parameters() do
      assert.is_not_nil(p.grad, name)
      assert.same(p.shape, p.grad.shape)
    end
    assert.same({16, 3, 3, 3}, shape(model.conv1.weight))
    -- batch norm's running statistics moved (training mode) and are in the state dict
    local sd = model:state_dict()
    assert.is_not_nil(sd["batch_norm1.running_mean"])
    assert.is_true(model.batch_norm1.running_mean:abs():sum():item() > 0)
    assert.truthy(tostring(model):find(
      "(conv1): Conv2d(3, 16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))", 1, true))
  end)

  it("4. dynamic addition", function()
    local model = nn.Sequential()
    model:add_module("fc1", nn.Linear{in_features = 10, out_features = 5})
    model:add_module("relu", nn.ReLU())
    model:add_module("fc2", nn.Linear{in_features = 5, out_features = 2})
    local input_tensor = lucid.ones({1, 10}, {requires_grad = true})
    model(input_tensor):sum():backward()

    assert.equal(3, #model)
    assert.same({1, 10}, shape(input_tensor.grad))
    assert.same({2, 5}, shape(model.fc2.weight.grad))
    assert.same({1, 2}, shape(model(input_tensor)))
  end)

  it("5. a ModuleList inside a Sequential", function()
    local layers = nn.ModuleList{nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 10)}
    local model = nn.Sequential{{"layer_sequence", layers}, {"output_layer", nn.Linear(10, 1)}}
    local output = model(lucid.ones({1, 10}, {requires_grad = true}))
    output:backward()

    assert.same({1, 1}, shape(output))
    local names = {}
    for name, p in model:named_parameters() do
      names[#names + 1] = name
      assert.is_not_nil(p.grad)
    end
    assert.same({"layer_sequence.1.weight", "layer_sequence.1.bias", "layer_sequence.3.weight",
      "layer_sequence.3.bias", "output_layer.weight", "output_layer.bias"}, names)
    assert.equal(model.layer_sequence, layers)
    -- the ModuleList called alone is the same chain
    local x = lucid.ones({1, 10}, {requires_grad = true})
    local direct = model.output_layer(layers(x))
    assert.is_true(direct == model(x))
    direct:backward()
    assert.same({1, 10}, shape(x.grad))
  end)
end)

describe("nn example scripts", function()
  local bin = os.getenv("LUCID_BIN") or "build/bin/lucid"
  for _, f in ipairs{"seed_1_positional", "seed_2_ordered", "seed_3_cnn", "seed_4_dynamic",
    "seed_5_modulelist"} do
    it("examples/" .. f .. ".lua runs and prints the input's gradient", function()
      local p = assert(io.popen(bin .. " examples/" .. f .. ".lua 2>&1"))
      local out = p:read("a")
      local ok = p:close()
      assert.is_true(ok, out)
      assert.truthy(out:find("tensor(", 1, true), out)
      assert.falsy(out:find("Error", 1, true), out)
    end)
  end
end)
