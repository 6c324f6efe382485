-- Every nn.functional function and every nn constructor (and the modules it builds) called with
-- ill-typed and ill-shaped arguments: each call either works or raises a string message; none
-- crashes (make check-asan runs this under ASan + UBSan), and the runtime keeps working.
local lucid = require "lucid"
local nn = lucid.nn
local F = nn.functional

local function values()
  return {
    n = 14,
    0, -1, 1.5, "x", {}, {1, 2}, true,
    lucid.ones(0), lucid.ones(2), lucid.ones(2, 3), lucid.ones({2}, {dtype = "int64"}),
    lucid.ones({2, 3}, {dtype = "bool"}), lucid.zeros(1, 3, 4, 4), lucid.Tensor({0 / 0, 1 / 0}),
  }
end

local function sorted_keys(t, filter)
  local ks = {}
  for k, v in pairs(t) do if filter(k, v) then ks[#ks + 1] = k end end
  table.sort(ks)
  return ks
end

describe("robustness", function()
  it("nn.functional: bad arguments raise messages, never crash", function()
    local v = values()
    local calls, raised = 0, 0
    for _, name in ipairs(sorted_keys(F, function(_, f) return type(f) == "function" end)) do
      for i = 1, v.n + 1 do     -- index n + 1: nil
        for j = 1, v.n + 1 do
          calls = calls + 1
          local ok, e = pcall(F[name], v[i], v[j])
          if not ok then
            raised = raised + 1
            assert(type(e) == "string", name .. ": non-string error " .. tostring(e))
          end
        end
      end
    end
    assert.is_true(calls > 5000)
    assert.is_true(raised > 0)
    assert.same({3, 3}, (lucid.ones(3, 3) + 1).shape)
  end)

  it("nn constructors and the modules they build: bad arguments raise messages", function()
    local v = values()
    local classes = sorted_keys(nn, function(k, c)
      return type(c) == "table" and k:match("^%u") ~= nil and getmetatable(c) ~= nil
    end)
    assert.is_true(#classes > 40)
    for _, name in ipairs(classes) do
      for i = 1, v.n + 1 do
        for j = 1, v.n + 1 do
          local ok, m = pcall(nn[name], v[i], v[j])
          if not ok then
            assert(type(m) == "string", name .. ": non-string error")
          elseif nn.is_module(m) then
            for k = 8, v.n do
              local ok2, e = pcall(m, v[k])
              assert(ok2 or type(e) == "string", name .. ": non-string error")
            end
            assert.is_string(tostring(m))
          end
        end
      end
    end
    assert.same({1, 2}, nn.Linear(3, 2)(lucid.ones(1, 3)).shape)
  end)
end)

describe("float to integer conversion", function()
  it("gives the lowest value for NaN, infinities and out-of-range floats, as PyTorch on x86", function()
    local t = lucid.Tensor({0 / 0, math.huge, -math.huge, 3.7, -2.5, 3e9})
    assert.same({-2147483648, -2147483648, -2147483648, 3, -2, -2147483648}, t:to("int32"):tolist())
    assert.same({math.mininteger, math.mininteger, math.mininteger, 3, -2, 3000000000},
      t:to("int64"):tolist())
    assert.same({-2147483648, 1}, lucid.Tensor({0 / 0, 1.5}, {dtype = "float64"}):to("int32"):tolist())
  end)
end)
