-- Hostile receivers: every exported function, method and metamethod called with foreign values
-- (a file handle, a number, a string, a plain table, a boolean) raises a lucid error or works;
-- nothing crashes (under `make check-asan` nothing reads a foreign userdata as one of lucid's).
-- lucid's metatables are sealed. Issue 12, item 2.
local lucid = require "lucid"
local nn, optim, data = lucid.nn, lucid.optim, lucid.data

local FOREIGN = {io.stdout, 1, "x", {}, true}

-- Functions that touch the file system or the process-wide state: called elsewhere with their
-- own fixtures (io_spec, data_spec), not with foreign values that would name files or reseed.
local SKIP = {save = true, load = true, manual_seed = true, set_num_threads = true,
  FashionMNIST = true, MNIST = true, read_idx = true}

-- Calls fn with each foreign value as every argument; returns the calls made and the failures
-- whose message is not lucid's (a Lua runtime error from inside lucid, say).
local function hammer(name, fn, unclear)
  local n = 0
  for _, v in ipairs(FOREIGN) do
    local ok, e = pcall(fn, v, v, v)
    n = n + 1
    if not ok and not tostring(e):find("lucid", 1, true) then
      unclear[#unclear + 1] = name .. "(" .. type(v) .. "): " .. tostring(e)
    end
  end
  return n
end

local function callable(v)
  if type(v) == "function" then return true end
  local mt = getmetatable(v)
  return type(mt) == "table" and mt.__call ~= nil
end

describe("hostile receivers", function()
  it("lucid's metatables are sealed", function()
    local t, m = lucid.ones(2), nn.Linear(2, 2)
    assert.equal("lucid.Tensor", getmetatable(t))
    assert.equal("lucid.Module", getmetatable(m))
    assert.equal("lucid.Module", getmetatable(nn.Sequential(nn.ReLU())))
    local opt = optim.SGD(m:parameters(), 0.1)
    assert.is_string(getmetatable(opt._h))
    assert.has_error(function() lucid.Tensor.sum = print end, "lucid.Tensor: the method table is read-only")
    -- the objects still work as before
    assert.equal(4, (t + t):sum():item())
    assert.same({1, 2}, m(lucid.ones(1, 2)).shape)
  end)

  it("every exported function, with foreign arguments", function()
    local unclear, n = {}, 0
    local tables = {lucid = lucid, nn = nn, ["nn.functional"] = nn.functional, ["nn.init"] = nn.init,
      ["nn.utils"] = nn.utils, optim = optim, ["optim.lr_scheduler"] = optim.lr_scheduler,
      data = data, autograd = lucid.autograd}
    for tname, t in pairs(tables) do
      for k, f in pairs(t) do
        if not SKIP[k] and callable(f) then n = n + hammer(tname .. "." .. k, f, unclear) end
      end
    end
    assert.is_true(n > 1000, "only " .. n .. " calls") -- the tables were walked
    assert.same({}, unclear)
  end)

  it("every tensor, module and optimizer method, with a foreign receiver", function()
    local unclear, n = {}, 0
    for k, f in pairs(require("lucid.core")._methods) do
      if type(f) == "function" then n = n + hammer("Tensor:" .. k, f, unclear) end
    end
    for cname, c in pairs{Module = nn.Module, Sequential = nn.Sequential, ModuleList = nn.ModuleList,
        ModuleDict = nn.ModuleDict, Linear = nn.Linear, Conv2d = nn.Conv2d} do
      for k, f in pairs(c) do
        if type(f) == "function" then n = n + hammer(cname .. ":" .. k, f, unclear) end
      end
    end
    local opt = optim.Adam(nn.Linear(2, 2):parameters())
    for k, f in pairs(getmetatable(opt).__index) do
      if type(f) == "function" then n = n + hammer("Adam:" .. k, f, unclear) end
    end
    assert.is_true(n > 800, "only " .. n .. " calls")
    assert.same({}, unclear)
  end)

  it("every metamethod, reached through debug (a host's power), with foreign values", function()
    local unclear = {}
    for _, obj in ipairs{lucid.ones(2), nn.Linear(2, 2), optim.SGD(nn.Linear(1, 1):parameters(), 0.1)._h} do
      local mt = debug.getmetatable(obj)
      for k, f in pairs(mt) do
        if type(f) == "function" and k ~= "__gc" and k ~= "__close" then
          hammer(tostring(mt.__name) .. "." .. k, f, unclear)
        end
      end
      -- a finalizer called by hand on a foreign value does nothing
      if mt.__gc then
        for _, v in ipairs(FOREIGN) do assert.is_true(pcall(mt.__gc, v)) end
      end
    end
    assert.same({}, unclear)
    collectgarbage() -- the real objects are still collected normally
  end)
end)
