-- Containers: construction, access by index and name, iteration, mutation and the names and
-- state_dict keys that follow.
local lucid = require "lucid"
local nn = require "lucid.nn"
local H = require "nn_helpers"

local function names(m)
  local r = {}
  for name in m:named_children() do r[#r + 1] = name end
  return r
end

local function keys(sd)
  local r = {}
  for i, kv in ipairs(sd) do r[i] = kv[1] end
  return r
end

describe("nn.Sequential", function()
  it("names positional children 1, 2, ... and keeps given names", function()
    local a, b, c = nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)
    local s = nn.Sequential(a, b, c)
    assert.same({"1", "2", "3"}, names(s))
    assert.equal(a, s[1])
    assert.equal(c, s[-1])
    assert.equal(b, s["2"])
    assert.equal(3, #s)
    local t = nn.Sequential{{"fc1", a}, {"act", b}, c}
    assert.same({"fc1", "act", "3"}, names(t))
    assert.equal(a, t.fc1)
    assert.equal(a, t["fc1"])
    assert.equal(a, t[1])
  end)

  it("iterates with ipairs and named_children in order", function()
    local ms = {nn.Linear(2, 2), nn.Tanh(), nn.Sigmoid()}
    local s = nn.Sequential(ms[1], ms[2], ms[3])
    local seen = {}
    for i, m in ipairs(s) do seen[i] = m end
    assert.same(ms, seen)
    local pairs_seen = {}
    for name, m in s:named_children() do pairs_seen[#pairs_seen + 1] = {name, m} end
    assert.same({{"1", ms[1]}, {"2", ms[2]}, {"3", ms[3]}}, pairs_seen)
    assert.same(ms, s:children())
    assert.is_nil(s[4]) -- past the end is nil (what ipairs needs)
  end)

  it("an empty Sequential returns its input", function()
    local s = nn.Sequential()
    local x = lucid.ones(2, 3)
    assert.equal(0, #s)
    assert.is_true(s(x) == x)
  end)

  it("insert, pop, replace and append keep names and state_dict keys in step", function()
    local s = nn.Sequential{{"fc1", nn.Linear(4, 3)}, {"act", nn.ReLU()}}
    s:append(nn.Linear(3, 2))
    assert.same({"fc1", "act", "3"}, names(s))
    assert.same({"fc1.weight", "fc1.bias", "3.weight", "3.bias"}, keys(s:state_dict()))

    s:insert(1, nn.Identity())
    assert.same({"1", "fc1", "act", "4"}, names(s))
    assert.same({"fc1.weight", "fc1.bias", "4.weight", "4.bias"}, keys(s:state_dict()))

    local popped = s:pop(2)
    assert.equal("Linear", popped:type())
    assert.same({"1", "act", "3"}, names(s))
    assert.same({"3.weight", "3.bias"}, keys(s:state_dict()))

    local lin = nn.Linear(5, 5, {bias = false})
    s[1] = lin
    assert.equal(lin, s[1])
    assert.same({"1", "act", "3"}, names(s))
    assert.same({"1.weight", "3.weight", "3.bias"}, keys(s:state_dict()))

    s[#s + 1] = nn.Tanh() -- one past the end appends
    assert.same({"1", "act", "3", "4"}, names(s))
    local last = s:pop()
    assert.equal("Tanh", last:type())
    s:insert(-1, nn.Sigmoid()) -- before the last, as Python's list.insert(-1, m)
    assert.same({"Linear", "ReLU", "Sigmoid", "Linear"},
      {s[1]:type(), s[2]:type(), s[3]:type(), s[4]:type()})
    assert.same({"1", "act", "3", "4"}, names(s))
  end)

  it("extend, add_module, assignment by name and slice", function()
    local s = nn.Sequential(nn.Linear(2, 2))
    s:extend{nn.ReLU(), nn.Linear(2, 2)}
    assert.same({"1", "2", "3"}, names(s))
    s:extend(nn.Sequential(nn.Tanh()))
    assert.same({"1", "2", "3", "4"}, names(s))
    s:add_module("head", nn.Linear(2, 1))
    s.extra = nn.Identity()
    assert.same({"1", "2", "3", "4", "head", "extra"}, names(s))
    local newhead = nn.Linear(2, 3)
    s.head = newhead -- replaces in place
    assert.equal(newhead, s[5])
    s.extra = nil -- removes
    assert.same({"1", "2", "3", "4", "head"}, names(s))

    local sl = s:slice(2, 3)
    assert.equal("Sequential", sl:type())
    assert.equal(2, #sl)
    assert.equal(s[2], sl[1])
    assert.equal(s[3], sl[2])
    assert.same({"1", "2"}, names(sl))
    local tail = s:slice(-2)
    assert.same({"1", "head"}, names(tail))
    assert.equal(0, #s:slice(3, 2))
    s:extend(s) -- extending by itself copies the list first
    assert.equal(10, #s)
  end)

  it("nests to any depth, with dotted names", function()
    local inner = nn.Sequential{{"fc", nn.Linear(2, 2)}}
    local mid = nn.Sequential{{"inner", inner}}
    local outer = nn.Sequential{{"mid", mid}, {"out", nn.Linear(2, 1)}}
    local got = {}
    for name in outer:named_parameters() do got[#got + 1] = name end
    assert.same({"mid.inner.fc.weight", "mid.inner.fc.bias", "out.weight", "out.bias"}, got)
    local mods = {}
    for name, m in outer:named_modules() do mods[#mods + 1] = name .. ":" .. m:type() end
    assert.same({":Sequential", "mid:Sequential", "mid.inner:Sequential", "mid.inner.fc:Linear",
      "out:Linear"}, mods)
    assert.equal(inner.fc, outer.mid.inner.fc)
    assert.same({1, 1}, outer(lucid.ones(1, 2)).shape)
  end)
end)

describe("nn.ModuleList", function()
  it("appends, inserts, extends, indexes and is callable as a chain", function()
    local l = nn.ModuleList()
    assert.equal(0, #l)
    l:append(nn.Linear(3, 4)):append(nn.ReLU())
    l:extend{nn.Linear(4, 2)}
    l:insert(1, nn.Identity())
    assert.same({"1", "2", "3", "4"}, names(l))
    assert.equal("Identity", l[1]:type())
    assert.equal("Linear", l[-1]:type())
    local n = 0
    for _, m in ipairs(l) do n = n + 1; assert.is_true(nn.is_module(m)) end
    assert.equal(4, n)
    assert.same({5, 2}, l(lucid.ones(5, 3)).shape)
    assert.equal("Identity", l:pop(1):type())
    assert.same({"1", "2", "3"}, names(l))
  end)
end)

describe("nn.ModuleDict", function()
  it("is ordered, indexed by name, and not callable", function()
    local d = nn.ModuleDict{{"enc", nn.Linear(3, 2)}, {"act", nn.ReLU()}}
    assert.same({"enc", "act"}, d:keys())
    assert.equal("Linear", d.enc:type())
    assert.equal(d.act, d["act"])
    local items = {}
    for k, m in d:items() do items[#items + 1] = k .. "=" .. m:type() end
    assert.same({"enc=Linear", "act=ReLU"}, items)
    assert.equal(2, #d:values())
    d.dec = nn.Linear(2, 3)
    d:update{{"act", nn.Tanh()}}
    assert.same({"enc", "act", "dec"}, d:keys())
    assert.equal("Tanh", d.act:type())
    assert.equal("Linear", d:pop("dec"):type())
    assert.same({"enc", "act"}, d:keys())
    assert.equal("lucid.ModuleDict: not callable: index it by name and call the modules it holds",
      H.err(d, lucid.ones(1, 3)))
    assert.same({1, 2}, d.act(d.enc(lucid.ones(1, 3))).shape)
  end)
end)
