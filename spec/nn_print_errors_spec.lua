-- What modules print, the exact messages of nn's errors, and the stateless layers' shapes
-- (Flatten, Unflatten).
local lucid = require "lucid"
local nn = require "lucid.nn"
local H = require "nn_helpers"
local helpers = require "helpers"

describe("printing modules", function()
  it("prints the seed's tree exactly", function()
    local model = nn.Sequential{
      {"fc1", nn.Linear{in_features = 5, out_features = 3}},
      {"activation", nn.Tanh()},
      {"fc2", nn.Linear{in_features = 3, out_features = 1}},
    }
    assert.equal([[
Sequential(
  (fc1): Linear(in_features=5, out_features=3, bias=true)
  (activation): Tanh()
  (fc2): Linear(in_features=3, out_features=1, bias=true)
)]], tostring(model))
  end)

  it("prints leaves, empty and nested containers", function()
    assert.equal("Linear(in_features=4, out_features=3, bias=false)",
      tostring(nn.Linear(4, 3, {bias = false})))
    assert.equal("ReLU()", tostring(nn.ReLU()))
    assert.equal("Sigmoid()", tostring(nn.Sigmoid()))
    assert.equal("Identity()", tostring(nn.Identity()))
    assert.equal("Flatten(start_dim=2, end_dim=-1)", tostring(nn.Flatten()))
    assert.equal("Flatten(start_dim=1, end_dim=3)", tostring(nn.Flatten(1, 3)))
    assert.equal("Sequential()", tostring(nn.Sequential()))
    local m = nn.Sequential{
      {"layer_sequence", nn.ModuleList{nn.Linear(10, 20), nn.ReLU()}},
      {"heads", nn.ModuleDict{{"a", nn.Identity()}}},
    }
    assert.equal([[
Sequential(
  (layer_sequence): ModuleList(
    (1): Linear(in_features=10, out_features=20, bias=true)
    (2): ReLU()
  )
  (heads): ModuleDict(
    (a): Identity()
  )
)]], tostring(m))
  end)

  it("prints Unflatten's sizes as a tuple; its dim is 1-based", function()
    local cases = {
      {nn.Unflatten(2, {2, 5}), "Unflatten(dim=2, unflattened_size=(2, 5))"},
      {nn.Unflatten{dim = -1, unflattened_size = {-1, 4}}, "Unflatten(dim=-1, unflattened_size=(-1, 4))"},
    }
    for _, c in ipairs(cases) do assert.equal(c[2], tostring(c[1])) end
    assert.equal(2, nn.Unflatten(2, {2, 2}).dim)
  end)
end)

describe("nn errors", function()
  it("forward errors name the path", function()
    local model = nn.Sequential{
      {"fc1", nn.Linear(4, 4)},
      {"activation", nn.Tanh()},
      {"fc2", nn.Linear(3, 1)},
    }
    assert.equal("lucid.Sequential.fc2 (Linear): expected input with 3 features (last dimension), " ..
      "got 4: input shape {1, 4}", H.err(model, lucid.ones(1, 4)))
    local outer = nn.Sequential{{"block", model}}
    assert.equal("lucid.Sequential.block.fc2 (Linear): expected input with 3 features (last " ..
      "dimension), got 4: input shape {1, 4}", H.err(outer, lucid.ones(1, 4)))
    assert.equal("lucid.Linear: expected input with 3 features (last dimension), got 4: input shape " ..
      "{2, 4}", H.err(model.fc2, lucid.ones(2, 4)))
    local list = nn.Sequential(nn.ModuleList{nn.Linear(2, 2), nn.Linear(3, 3)})
    assert.equal("lucid.Sequential.1.2 (Linear): expected input with 3 features (last dimension), " ..
      "got 2: input shape {1, 2}", H.err(list, lucid.ones(1, 2)))
  end)

  it("forward arguments", function()
    local lin = nn.Linear(2, 2)
    assert.equal("lucid.Linear: expected a tensor input, got number", H.err(lin, 3))
    assert.equal("lucid.Linear: expected one input tensor, got 2 arguments",
      H.err(lin, lucid.ones(2), lucid.ones(2)))
  end)

  it("a table with string keys has no order", function()
    assert.equal("lucid.nn.Sequential: a table with string keys has no order: pass a list of " ..
      "{name, module} pairs, e.g. {{\"fc1\", m1}, {\"act\", m2}}",
      H.err(nn.Sequential, {fc1 = nn.ReLU()}))
  end)

  it("bad names", function()
    local s = nn.Sequential{{"fc1", nn.ReLU()}}
    assert.equal("lucid.add_module: a name must not be empty", H.err(s.add_module, s, "", nn.ReLU()))
    assert.equal("lucid.add_module: name \"a.b\" must not contain \".\"",
      H.err(s.add_module, s, "a.b", nn.ReLU()))
    assert.equal("lucid.add_module: Sequential already has a child named \"fc1\"",
      H.err(s.add_module, s, "fc1", nn.ReLU()))
    assert.equal("lucid.add_module: name \"append\" shadows a method of Sequential",
      H.err(s.add_module, s, "append", nn.ReLU()))
    assert.equal("lucid.add_module: name \"training\" is an attribute of Sequential",
      H.err(s.add_module, s, "training", nn.ReLU()))
    assert.equal("lucid.nn.Sequential: name \"forward\" shadows a method of Sequential",
      H.err(nn.Sequential, {{"forward", nn.ReLU()}}))
    assert.equal("lucid.add_module: a name made of digits is a position: \"7\" given for position 2",
      H.err(s.add_module, s, "7", nn.ReLU()))
  end)

  it("children that are not modules", function()
    assert.equal("lucid.nn.Sequential: argument 2 is not a module: got number 3",
      H.err(nn.Sequential, nn.ReLU(), 3))
    assert.equal("lucid.nn.Sequential: entry 1 (\"fc1\") is not a module: got string",
      H.err(nn.Sequential, {{"fc1", "relu"}}))
    local s = nn.Sequential()
    assert.equal("lucid.add_module: expected a module for \"x\", got table", H.err(s.add_module, s, "x", {}))
    assert.equal("lucid.Sequential:append: expected a module, got nil", H.err(s.append, s, nil))
    assert.equal("lucid.nn.ModuleList: entry 2 is not a module: got number 5",
      H.err(nn.ModuleList, {nn.ReLU(), 5}))
    assert.equal("lucid.nn.ModuleDict: entry 1 must be a {name, module} pair, got ReLU",
      H.err(nn.ModuleDict, {nn.ReLU()}))
  end)

  it("indices out of range are 1-based in the message", function()
    local s = nn.Sequential(nn.ReLU(), nn.Tanh(), nn.Sigmoid())
    assert.equal("lucid.Sequential: index 0 is invalid: indices are 1-based (expected 1..3 or -3..-1)",
      H.err(function() return s[0] end))
    assert.equal(s[3], s[3.0]) -- an integral float is an integer index, as in Lua's own tables
    assert.is_nil(s[1.5])
    assert.equal("lucid.Sequential:pop: index must be an integer, got 1.5", H.err(s.pop, s, 1.5))
    assert.equal("lucid.Sequential: index -4 out of range for 3 modules (expected 1..3 or -3..-1)",
      H.err(function() return s[-4] end))
    assert.equal("lucid.Sequential:pop: index 4 out of range for 3 modules (expected 1..3 or -3..-1)",
      H.err(s.pop, s, 4))
    assert.equal("lucid.Sequential:insert: index 5 out of range for 3 modules (expected 1..4 or -3..-1)",
      H.err(s.insert, s, 5, nn.ReLU()))
    assert.equal("lucid.Sequential: index 5 out of range for 3 modules (expected 1..3 or -3..-1)",
      H.err(function() s[5] = nn.ReLU() end))
    assert.equal("lucid.Sequential:slice: range 2..7 out of range for 3 modules", H.err(s.slice, s, 2, 7))
    assert.equal("lucid.Sequential:pop: index 1 out of range: the container is empty",
      H.err(nn.Sequential().pop, nn.Sequential(), 1))
  end)

  it("a module can not contain itself", function()
    local s = nn.Sequential(nn.ReLU())
    local outer = nn.Sequential(s)
    assert.equal("lucid.Sequential:append: adding this Sequential would make Sequential contain " ..
      "itself (a module cycle)", H.err(s.append, s, outer))
    assert.equal("lucid.Sequential:append: adding this Sequential would make Sequential contain " ..
      "itself (a module cycle)", H.err(s.append, s, s))
  end)

  it("constructor options", function()
    assert.equal("lucid.nn.Linear: unknown option 'bais' (expected one of: in_features, " ..
      "out_features, bias)", H.err(nn.Linear, 4, 3, {bais = false}))
    assert.equal("lucid.nn.Linear: missing argument out_features", H.err(nn.Linear, {in_features = 4}))
    assert.equal("lucid.nn.Linear: in_features must be an integer, got number 2.5", H.err(nn.Linear, 2.5, 3))
    -- the sizes' rule is lc_nn_linear's (one owner): the class converts types only
    assert.equal("lucid.nn.Linear: in_features and out_features must be >= 0, got -1 and 3",
      H.err(nn.Linear, -1, 3))
    assert.equal("lucid.nn.Linear: in_features and out_features must be >= 0, got 3 and -1",
      H.err(nn.Linear, 3, -1))
    assert.equal("lucid.nn.Linear: out_features must be an integer, got string", H.err(nn.Linear, 3, "4"))
    assert.equal("lucid.nn.Linear: bias must be a boolean, got number 0", H.err(nn.Linear, 2, 3, {bias = 0}))
    assert.equal("lucid.nn.Linear: argument 1 (in_features): given both by position and in " ..
      "the options table", H.err(nn.Linear, 2, 3, {in_features = 2}))
    assert.equal("lucid.nn.Linear: too many arguments: expected at most 3, got 4",
      H.err(nn.Linear, 2, 3, true, 5))
    assert.equal("lucid.nn.ReLU: unknown option 'slope' (expected one of: inplace)",
      H.err(nn.ReLU, {slope = 1}))
    assert.matches("lucid.nn.Flatten: argument 1 %(start_dim%): dim 0 is invalid: dims are 1%-based",
      H.err(nn.Flatten, 0))
  end)

  it("Unflatten: its sizes' rules when built, the fit at forward (the op's)", function()
    local x = lucid.randn(2, 3)
    helpers.raises({"nn.Unflatten", "only one size may be -1"}, nn.Unflatten, 2, {-1, -1})
    helpers.raises({"lucid.nn.Unflatten", "unflattened_size must hold 1..16 sizes, got 0"},
      nn.Unflatten, 2, {})
    -- one owner for the sizes rules (C), the same for the module and the function; positions 1-based
    helpers.raises({"lucid.nn.Unflatten", "unflattened_size[2] must be >= 0 or -1, got -3"},
      nn.Unflatten, 2, {2, -3})
    helpers.raises({"lucid.nn.Unflatten", "only one size may be -1, got -1 at 1 and 2"},
      nn.Unflatten, 2, {-1, -1})
    helpers.raises({"lucid.nn.Unflatten", "entry [2] is string"}, nn.Unflatten, 2, {2, "x"})
    helpers.raises({"Unflatten", "unflattened_size {5, 2} does not fit dim 2 of size 3",
      "input shape {2, 3}"}, nn.Unflatten(2, {5, 2}), x)
    helpers.raises({"Unflatten", "unflattened_size {-1, 2} does not fit dim 2 of size 3",
      "the other sizes multiply to 2, which does not divide 3"}, nn.Unflatten(-1, {-1, 2}), x)
    helpers.raises({"Unflatten", "dim 3 out of range for a tensor with 2 dims",
      "expected 1..2 or -2..-1"}, nn.Unflatten(3, {1, 3}), x)
  end)

  it("attributes", function()
    local lin = nn.Linear(2, 3)
    assert.equal("lucid.Linear: cannot set attribute \"foo\" (a built-in module takes modules, " ..
      "parameters and buffers only)", H.err(function() lin.foo = 1 end))
    assert.equal("lucid.Linear: set training with train(mode) or eval()",
      H.err(function() lin.training = false end))
    assert.equal("lucid.Linear: cannot assign a number to parameter \"weight\"",
      H.err(function() lin.weight = 1 end))
    assert.equal("lucid.Linear has no length (only containers do)", H.err(function() return #lin end))
    assert.equal("lucid.register_parameter: parameter \"p\" must be a leaf tensor that requires grad, " ..
      "got a tensor without requires_grad", H.err(lin.register_parameter, lin, "p", lucid.ones(2)))
  end)
end)

describe("stateless layers", function()
  it("Unflatten splits a dim (one size may be -1)", function()
    local x = lucid.randn(3, 12)
    assert.same({3, 2, 6}, nn.Unflatten(2, {2, -1})(x).shape)
    assert.same({3, 4, 3}, nn.Unflatten(-1, {4, 3})(x).shape)
    assert.same({1, 3, 12}, nn.Unflatten(1, {1, 3})(x).shape)
  end)
end)
