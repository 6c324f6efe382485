-- The module protocol: parameters, buffers, train/eval, zero_grad, apply, state dicts.
local lucid = require "lucid"
local nn = require "lucid.nn"
local H = require "nn_helpers"

local function mlp()
  return nn.Sequential{{"fc1", nn.Linear(3, 4)}, {"act", nn.ReLU()}, {"fc2", nn.Linear(4, 2)}}
end

describe("module protocol", function()
  it("Linear: parameters, attributes and PyTorch's init bounds", function()
    lucid.manual_seed(7)
    local lin = nn.Linear(16, 5)
    assert.equal(16, lin.in_features)
    assert.equal(5, lin.out_features)
    assert.same({5, 16}, lin.weight.shape)
    assert.same({5}, lin.bias.shape)
    assert.is_true(lin.weight.requires_grad and lin.weight.is_leaf)
    local bound = 1 / math.sqrt(16)
    assert.is_true(lin.weight:abs():max():item() <= bound)
    assert.is_true(lin.bias:abs():max():item() <= bound)
    -- spread over the range, not constant
    assert.is_true(lin.weight:max():item() - lin.weight:min():item() > bound)
    assert.is_nil(nn.Linear(2, 2, {bias = false}).bias)
    assert.equal(16 * 5 + 5, lin:num_parameters())
    local same = nn.Linear{in_features = 16, out_features = 5, bias = true}
    assert.same(lin.weight.shape, same.weight.shape)
  end)

  it("parameters, named_parameters, children and modules", function()
    local m = mlp()
    local ps = m:parameters()
    assert.equal(4, #ps)
    assert.is_true(ps[1] == m.fc1.weight)
    local names = {}
    for n in m:named_parameters() do names[#names + 1] = n end
    assert.same({"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}, names)
    assert.equal(0, #m:parameters(false))
    assert.equal(3, #m:children())
    assert.equal(4, #m:modules())
    assert.equal(3 * 4 + 4 + 4 * 2 + 2, m:num_parameters())
  end)

  it("a shared parameter is listed once, and once per path in the state dict", function()
    local a, b = nn.Linear(3, 3, {bias = false}), nn.Linear(3, 3, {bias = false})
    b.weight = a.weight
    local m = nn.Sequential(a, b)
    assert.equal(1, #m:parameters())
    assert.equal(9, m:num_parameters())
    local sd = m:state_dict()
    assert.equal(2, #sd)
    assert.equal("2.weight", sd[2][1])
    local shared = nn.Sequential(a, a)
    assert.equal(2, #shared:modules())
  end)

  it("train and eval reach every descendant", function()
    local m = mlp()
    assert.is_true(m.training and m.fc1.training)
    assert.equal(m, m:eval())
    assert.is_false(m.training or m.fc1.training or m.act.training)
    m:train()
    assert.is_true(m.fc2.training)
    m:train(false)
    assert.is_false(m.fc2.training)
  end)

  it("zero_grad clears or zeroes the grads", function()
    local m = mlp()
    m(lucid.ones(2, 3)):sum():backward()
    assert.is_not_nil(m.fc1.weight.grad)
    m:zero_grad{set_to_none = false}
    assert.equal(0, m.fc1.weight.grad:abs():sum():item())
    m:zero_grad()
    assert.is_nil(m.fc1.weight.grad)
    assert.is_nil(m.fc2.bias.grad)
  end)

  it("apply visits children first, then the module", function()
    local m = nn.Sequential{{"a", nn.Sequential{{"b", nn.ReLU()}}}, {"c", nn.Tanh()}}
    local order = {}
    assert.equal(m, m:apply(function(mod) order[#order + 1] = mod:type() end))
    assert.same({"ReLU", "Sequential", "Tanh", "Sequential"}, order)
  end)

  it("register_parameter and register_buffer", function()
    local m = nn.Sequential()
    m:register_parameter("scale", nn.Parameter(lucid.ones(2)))
    m:register_buffer("running_mean", lucid.zeros(2))
    assert.same({1, 1}, m.scale:tolist())
    assert.is_true(m.scale.requires_grad)
    assert.same({0, 0}, m.running_mean:tolist())
    assert.equal(1, #m:parameters())
    assert.equal(1, #m:buffers())
    local keys = {}
    for _, kv in ipairs(m:state_dict()) do keys[#keys + 1] = kv[1] end
    assert.same({"scale", "running_mean"}, keys)
    m.running_mean = lucid.ones(2) -- replaces the buffer
    assert.same({1, 1}, m.running_mean:tolist())
    m.scale = nil
    assert.equal(0, #m:parameters())
  end)

  it("state_dict and load_state_dict", function()
    local src, dst = mlp(), mlp()
    local sd = src:state_dict()
    assert.equal(4, #sd)
    assert.equal("fc1.weight", sd[1][1])
    assert.is_true(sd["fc2.bias"] == src.fc2.bias)
    assert.is_false(sd["fc2.bias"].requires_grad) -- detached aliases
    local missing, unexpected = dst:load_state_dict(sd)
    assert.same({}, missing)
    assert.same({}, unexpected)
    assert.is_true(dst.fc1.weight == src.fc1.weight)
    assert.is_true(dst.fc1.weight.requires_grad)
    -- a name -> tensor table works too
    local other = mlp()
    other:load_state_dict{["fc1.weight"] = lucid.zeros(4, 3), ["fc1.bias"] = lucid.zeros(4),
      ["fc2.weight"] = lucid.zeros(2, 4), ["fc2.bias"] = lucid.ones(2)}
    assert.same({{1, 1}}, other(lucid.ones(1, 3)):tolist())
    -- strict mismatch lists the keys; non-strict returns them
    assert.equal("lucid.load_state_dict: missing keys: \"fc2.bias\"; unexpected keys: \"fc3.bias\"",
      H.err(dst.load_state_dict, dst, {{"fc1.weight", sd[1][2]}, {"fc1.bias", sd[2][2]},
        {"fc2.weight", sd[3][2]}, {"fc3.bias", sd[4][2]}}))
    missing, unexpected = dst:load_state_dict({{"fc1.weight", sd[1][2]}, {"extra", sd[2][2]}},
      {strict = false})
    assert.same({"fc1.bias", "fc2.weight", "fc2.bias"}, missing)
    assert.same({"extra"}, unexpected)
    assert.equal("lucid.load_state_dict: size mismatch for \"fc1.weight\": expected shape {4, 3}, " ..
      "got {3, 4}", H.err(dst.load_state_dict, dst, {{"fc1.weight", lucid.zeros(3, 4)}},
      {strict = false}))
    assert.equal("lucid.load_state_dict: unknown option 'strcit' (expected one of: strict)",
      H.err(dst.load_state_dict, dst, sd, {strcit = true}))
  end)

  it("to(dtype) converts parameters and buffers, keeps tied weights tied, and trains", function()
    local a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    b:register_parameter("weight", a.weight) -- tied
    a:register_buffer("count", lucid.zeros({1}, {dtype = "int64"}))
    local m = nn.Sequential(a, nn.Tanh(), nn.Sequential(b))
    local before = a.weight:tolist()
    assert.equal(m, m:to("float64"))
    assert.equal("float64", a.weight.dtype)
    assert.equal("float64", a.bias.dtype)
    assert.equal("int64", a.count.dtype)     -- integer buffers keep their dtype
    assert.is_true(a.weight.requires_grad and a.weight.is_leaf)
    assert.equal(a.weight, m[3][1].weight)   -- still one tensor
    assert.equal(3, #m:parameters())          -- a.weight, a.bias, b.bias
    assert.near(before[1][1], a.weight:tolist()[1][1], 1e-7)
    local x = lucid.ones({1, 3}, {dtype = "float64"})
    m[3] = nn.Identity()
    m(x):sum():backward()
    assert.equal("float64", a.weight.grad.dtype)
    m:float()
    assert.equal("float32", a.weight.dtype)
    assert.is_nil(a.weight.grad)
    assert.equal("lucid.to: expected a floating dtype (float32, float64, float16 or bfloat16), got int64",
      H.err(m.to, m, "int64"))
    assert.equal("lucid.to: unknown dtype \"float8\" (expected \"float32\", \"float64\", \"float16\" or \"bfloat16\")",
      H.err(m.to, m, "float8"))
    assert.equal("lucid.to: unknown option 'dtyp' (expected dtype)", H.err(m.to, m, {dtyp = "float64"}))
    assert.equal("float32", m(lucid.ones(1, 3)).dtype) -- still usable
  end)

  it("a state dict and one loaded by lucid.load share one StateDict metatable", function()
    local m = nn.Linear(2, 2)
    local path = os.tmpname()
    lucid.save(path, m:state_dict())
    local loaded = lucid.load(path)
    os.remove(path)
    assert.equal(getmetatable(m:state_dict()), getmetatable(loaded))
    assert.is_true(loaded.weight == m.weight) -- torch.equal semantics
  end)
end)
