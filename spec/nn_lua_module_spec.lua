-- Modules written in Lua: nn.Module:extend, registration by assignment, use inside C
-- containers, training, errors.
local lucid = require "lucid"
local nn = require "lucid.nn"
local H = require "nn_helpers"

local Net = nn.Module:extend("Net")
function Net:init(hidden)
  self.hidden = hidden -- a plain field
  self.fc1 = nn.Linear(4, hidden)
  self.act = nn.Tanh()
  self.fc2 = nn.Linear(hidden, 2)
  self.scale = nn.Parameter(lucid.ones(2))
  self:register_buffer("steps", lucid.zeros(1))
end
function Net:forward(x)
  return self.fc2(self.act(self.fc1(x))) * self.scale
end

describe("modules written in Lua", function()
  it("register modules, parameters and buffers assigned to self", function()
    local net = Net(3)
    assert.equal(3, net.hidden)
    assert.equal("Net", net:type())
    local names = {}
    for n in net:named_parameters() do names[#names + 1] = n end
    assert.same({"scale", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}, names)
    local keys = {}
    for _, kv in ipairs(net:state_dict()) do keys[#keys + 1] = kv[1] end
    assert.same({"scale", "steps", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}, keys)
    assert.equal(3, #net:children())
    assert.equal([[
Net(
  (fc1): Linear(in_features=4, out_features=3, bias=true)
  (act): Tanh()
  (fc2): Linear(in_features=3, out_features=2, bias=true)
)]], tostring(net))
  end)

  it("run alone and inside C containers, and train", function()
    local net = Net(5)
    local x = lucid.ones(3, 4, {requires_grad = true})
    local y = net(x)
    assert.same({3, 2}, y.shape)
    local model = nn.Sequential{{"net", net}, {"head", nn.Linear(2, 1)}}
    local out = model(x)
    assert.same({3, 1}, out.shape)
    assert.is_true(out == model.head(net:forward(x)))
    out:sum():backward()
    assert.same({3, 4}, x.grad.shape)
    for name, p in model:named_parameters() do
      assert.is_not_nil(p.grad, name)
    end
    local names = {}
    for n in model:named_parameters() do names[#names + 1] = n end
    assert.equal("net.scale", names[1])
    assert.equal("net.fc1.weight", names[2])
    -- train/eval and zero_grad reach inside
    model:eval()
    assert.is_false(net.training or net.fc1.training)
    model:zero_grad()
    assert.is_nil(net.fc1.weight.grad)
    -- a ModuleList of Lua modules
    local chain = nn.ModuleList{Net(2), nn.ReLU(), nn.Linear(2, 4), Net(3)}
    assert.same({1, 2}, chain(lucid.ones(1, 4)).shape)
  end)

  it("subclasses, extra_repr and plain fields", function()
    local Scaled = nn.Module:extend("Scaled")
    function Scaled:init(k) self.k = k end
    function Scaled:forward(x) return x * self.k end
    function Scaled:extra_repr() return "k=" .. self.k end
    local Twice = Scaled:extend("Twice")
    function Twice:init() Scaled.init(self, 2) end
    local t = Twice()
    assert.equal("Twice(k=2)", tostring(t))
    assert.same({2, 2}, nn.Sequential(t)(lucid.ones(2)):tolist())
    t.k = 3
    assert.same({3, 3}, t(lucid.ones(2)):tolist())
    -- multiple inputs when called directly
    local Add = nn.Module:extend("Add")
    function Add:forward(a, b) return a + b end
    assert.same({2}, Add()(lucid.ones(1), lucid.ones(1)):tolist())
    -- the same Lua object comes back from a container
    local s = nn.Sequential{{"t", t}}
    assert.equal(t, s.t)
    assert.equal(t, s[1])
  end)

  it("errors keep their message and gain the path", function()
    local Bad = nn.Module:extend("Bad")
    function Bad:forward(x) error("boom", 0) end
    local model = nn.Sequential{{"ok", nn.Identity()}, {"bad", Bad()}}
    assert.equal("lucid.Sequential.bad (Bad): boom", H.err(model, lucid.ones(1)))
    local Inner = nn.Module:extend("Inner")
    function Inner:init() self.fc = nn.Linear(3, 1) end
    function Inner:forward(x) return self.fc(x) end
    local outer = nn.Sequential{{"inner", Inner()}}
    assert.equal("lucid.Sequential.inner (Inner): Linear: expected input with 3 features (last " ..
      "dimension), got 2: input shape {1, 2}", H.err(outer, lucid.ones(1, 2)))
    local NoForward = nn.Module:extend("NoForward")
    assert.equal("lucid.Sequential.1 (NoForward): NoForward:forward is not defined (a module written " ..
      "in Lua defines function NoForward:forward(x))", H.err(nn.Sequential(NoForward()), lucid.ones(1)))
    local NotTensor = nn.Module:extend("NotTensor")
    function NotTensor:forward() return 42 end
    assert.equal("lucid.Sequential.1 (NotTensor): NotTensor:forward must return a tensor, got number",
      H.err(nn.Sequential(NotTensor()), lucid.ones(1)))
    -- the runtime is still usable
    assert.same({1, 1}, outer(lucid.ones(1, 3)).shape)
  end)

  it("assignment rules", function()
    local M = nn.Module:extend("M")
    local m = M()
    m.fc = nn.Linear(2, 2)
    assert.equal(1, #m:children())
    assert.equal("lucid.M: name \"forward\" shadows a method of M",
      H.err(function() m.forward = nn.Linear(1, 1) end))
    assert.equal("lucid.M: cannot assign a tensor to child module \"fc\"",
      H.err(function() m.fc = lucid.ones(1) end))
    m.plain = lucid.ones(2) -- a tensor without requires_grad is a plain field
    assert.equal(0, #m:parameters(false))
    assert.same({1, 1}, m.plain:tolist())
    local w = lucid.ones(2, {requires_grad = true})
    assert.equal("lucid.M: cannot make the non-leaf tensor \"p\" a parameter: use nn.Parameter(t) " ..
      "or t:detach():requires_grad_()", H.err(function() m.p = w * 2 end))
    m.p = w
    assert.equal(1, #m:parameters(false))
    m.fc = nil
    assert.equal(0, #m:children())
    assert.equal("lucid.extend: expected a class name (a non-empty string), got nil",
      H.err(nn.Module.extend, nn.Module))
  end)

  it("a container's reset_parameters reaches Lua modules that define their own", function()
    local Scaled = nn.Module:extend("Scaled")
    function Scaled:init() self.w = nn.Parameter(lucid.zeros(2)) end
    function Scaled:reset_parameters()
      lucid.no_grad(function() self.w:fill_(7) end)
      return self
    end
    function Scaled:forward(x) return x * self.w end
    local s = Scaled()
    local b = nn.Bilinear(2, 3, 4)
    local model = nn.Sequential(nn.Linear(2, 2), s)
    model:add_module("pair", nn.ModuleList{b})
    local w = b.weight:clone()
    model:reset_parameters()
    assert.same({7, 7}, s.w:tolist())
    assert.is_true((b.weight - w):abs():sum():item() > 0)
  end)
end)
