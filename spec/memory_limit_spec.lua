-- A host's memory limit (issue 12, item 3): lucid.set_memory_limit / lc_set_memory_limit caps
-- the bytes held by tensors, process-wide. An allocation past it is a clear error raised before
-- any memory is touched, and the runtime stays usable; locked, a script cannot lift it.
local lucid = require "lucid"
local nn, F = lucid.nn, lucid.nn.functional

local bin = require("helpers").lucid_bin()

local function with_limit(extra, fn)
  collectgarbage()
  lucid.set_memory_limit(lucid.bytes_in_use() + extra)
  local ok, e = pcall(fn)
  lucid.set_memory_limit(0)
  if not ok then error(e, 0) end
end

describe("the memory limit", function()
  it("refuses an allocation past it, with the sizes, and leaves the runtime usable", function()
    with_limit(1 << 20, function()
      local ok, e = pcall(lucid.zeros, 1 << 20)
      assert.is_false(ok)
      assert.truthy(e:find("lucid.zeros: out of memory: allocating 4194304 bytes would pass the " ..
        "memory limit of ", 1, true), e)
      -- small work still runs under the limit
      assert.equal(6, (lucid.ones(2, 3)):sum():item())
    end)
    assert.equal(0, (lucid.memory_limit()))
    assert.equal(1 << 20, lucid.zeros(1 << 20):numel()) -- lifted: the same allocation works
  end)

  it("lets a loop of temporaries run when its live data fits (the collector keeps up)", function()
    with_limit(1 << 20, function()
      local acc = 0
      for _ = 1, 300 do acc = acc + (lucid.zeros(1 << 16) + 1):sum():item() end
      assert.equal(300 * (1 << 16), acc)
    end)
  end)

  it("fails a training step cleanly and lets the next one run once lifted", function()
    local model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))
    local x, y = lucid.randn(512, 64), lucid.ones(512, {dtype = "int64"})
    local ok, e
    with_limit(256 * 1024, function()
      ok, e = pcall(function() F.cross_entropy(model(x), y):backward() end)
    end)
    assert.is_false(ok)
    assert.truthy(tostring(e):find("would pass the memory limit", 1, true), tostring(e))
    model:zero_grad()
    F.cross_entropy(model(x), y):backward()
    assert.same({256, 64}, model[1].weight.grad.shape)
  end)

  it("checks its argument", function()
    assert.has_error(function() lucid.set_memory_limit(-1) end,
      "lucid.set_memory_limit: expected bytes >= 0 (0: no limit), got -1")
    assert.has_error(function() lucid.set_memory_limit("x") end,
      "lucid.set_memory_limit: argument 1 (bytes): expected an integer, got 'x'")
  end)

  it("once locked by the host, a script cannot lift it (a separate process)", function()
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write([[
local lucid = require "lucid"
lucid.set_memory_limit(8 << 20, {lock = true}) -- the host's part
local ok, e = pcall(lucid.set_memory_limit, 0)  -- the script's attempt
print(ok, e)
print(lucid.memory_limit())
print(pcall(lucid.zeros, 4 << 20))
print(lucid.zeros(1000):numel())
]])
    f:close()
    local p = assert(io.popen("'" .. bin .. "' " .. script .. " 2>&1"))
    local out = p:read("a")
    p:close()
    os.remove(script)
    assert.truthy(out:find("false\tlucid.set_memory_limit: the memory limit is locked (8388608 bytes)", 1, true), out)
    assert.truthy(out:find("8388608\ttrue", 1, true), out)
    assert.truthy(out:find("false\tlucid.zeros: out of memory: allocating 16777216 bytes would pass", 1, true), out)
    assert.truthy(out:find("\n1000\n", 1, true), out)
  end)
end)
