-- Positional names (docs/nn.md, "Positional names"): C names the children of Sequential and
-- ModuleList 0-based, as PyTorch does; Lua shows every such name 1-based, and the binding
-- converts each path that crosses it. Checkpoints written by earlier lucid versions (1-based
-- names, as Lua writes them) still load.
local lucid = require "lucid"
local nn = require "lucid.nn"
local serialize = require "lucid.serialize"
local H = require "nn_helpers"

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local FIXDIR = here .. "fixtures/"

local function model()
  return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
end

local function names(iter_fn)
  local r = {}
  for k in iter_fn do r[#r + 1] = k end
  return r
end

describe("positional names as Lua sees them", function()
  it("are 1-based in printing, queries and state dicts", function()
    local inner = nn.Sequential(nn.Linear(2, 2))
    local m = nn.Sequential(nn.ReLU(), inner)
    assert.same({"2.1.weight", "2.1.bias"}, names(m:named_parameters()))
    assert.same({"1", "2"}, names(m:named_children()))
    assert.same({"", "1", "2", "2.1"}, names(m:named_modules()))
    local sd = m:state_dict()
    assert.equal("2.1.weight", sd[1][1])
    assert.truthy(tostring(m):find("(2): Sequential(", 1, true))
    assert.truthy(tostring(m):find("(1): Linear(", 1, true))
  end)

  it("index by string the same as by integer", function()
    local m = model()
    assert.equal(m[3], m["3"])
    m["2"] = nn.Tanh()
    assert.equal("Tanh", m[2]:type())
    m["2"] = nil
    assert.equal(2, #m)
    assert.equal("Linear", m["2"]:type())
  end)

  it("name the failing child 1-based in forward errors", function()
    local m = model()
    local e = H.err(m.forward, m, lucid.ones(1, 5))
    assert.truthy(e:find("Sequential.1 (Linear): expected input with 3 features", 1, true), e)
  end)

  it("report missing and unexpected keys 1-based, a PyTorch 0 included", function()
    local m = model()
    local sd = m:state_dict()
    local w = sd["1.weight"]
    local missing, unexpected = m:load_state_dict({["0.weight"] = w, ["5.bias"] = w}, {strict = false})
    assert.same({"1.weight", "1.bias", "3.weight", "3.bias"}, missing)
    table.sort(unexpected)
    assert.same({"0.weight", "5.bias"}, unexpected)
    local e = H.err(m.load_state_dict, m, {["0.weight"] = w})
    assert.truthy(e:find("unexpected keys: \"0.weight\"", 1, true), e)
    local s = H.err(m.load_state_dict, m, {["1.weight"] = lucid.ones(2, 2)}, {strict = false})
    assert.truthy(s:find("size mismatch for \"1.weight\"", 1, true), s)
  end)

  it("name digit positions in mutation errors 1-based", function()
    local m = model()
    local e = H.err(m.add_module, m, "7", nn.ReLU())
    assert.truthy(e:find("a name made of digits is a position: \"7\" given for position 4", 1, true), e)
    local z = H.err(m.add_module, m, "0", nn.ReLU())
    assert.truthy(z:find("\"0\" is none (positions count from 1)", 1, true), z)
    local z2 = H.err(function() m["0"] = nn.ReLU() end)
    assert.truthy(z2:find("\"0\" is none (positions count from 1)", 1, true), z2)
    m:add_module("4", nn.ReLU()) -- the next position, by name
    assert.equal(4, #m)
  end)

  it("a digit name in a ModuleDict is a plain name, not a position", function()
    local d = nn.ModuleDict({{"7", nn.Linear(1, 1)}})
    assert.same({"7.weight", "7.bias"}, names(d:named_parameters()))
    local m = nn.Sequential(d)
    assert.same({"1.7.weight", "1.7.bias"}, names(m:named_parameters()))
  end)
end)

describe("checkpoints written before the naming decision", function()
  it("load into a fresh model and reproduce its outputs", function()
    local sd = lucid.load(FIXDIR .. "io/lucid_state_dict.safetensors")
    local m = model()
    local missing, unexpected = m:load_state_dict(sd)
    assert.same({}, missing)
    assert.same({}, unexpected)
    assert.is_true(m[1].weight:equal(sd["1.weight"]))
    assert.is_true(m[3].bias:equal(sd["3.bias"]))
    local ck = lucid.load(FIXDIR .. "io/lucid_checkpoint.safetensors")
    local m2 = model()
    m2:load_state_dict(ck.model)
    assert.is_true(m2[3].weight:equal(ck.model["3.weight"]))
    assert.is_true(m2[1].bias:equal(ck.model["1.bias"]))
  end)

  it("convert to and from PyTorch's names", function()
    local sd = model():state_dict()
    local t = serialize.to_torch_names(sd)
    assert.same({"0.weight", "0.bias", "2.weight", "2.bias"}, {t[1][1], t[2][1], t[3][1], t[4][1]})
    local back = serialize.from_torch_names(t)
    assert.equal("3.bias", back[4][1])
  end)
end)
