-- Memory: the collector is told about tensor bytes; <close>; the embedding preload.
local h = require "helpers"
local lucid = h.lucid

describe("memory", function()
  it("a loop of 10,000 temporary 1 MB tensors stays under 200 MB peak RSS", function()
    local kb, out = h.child_peak_rss_kb([[
local lucid = require "lucid"
for i = 1, 10000 do
  local t = lucid.zeros(262144) -- 1 MiB of float32
  t = t + 1                     -- and a second temporary
end
]])
    assert.is_true(kb < 200 * 1024, ("peak RSS %d kB: %s"):format(kb, out))
  end)

  it("keeps tensors that are alive", function()
    local keep = {}
    for i = 1, 40 do keep[i] = lucid.full({1024 * 1024}, i) end -- 160 MB live
    for i = 1, 40, 13 do assert.are.equal(i, keep[i][1]:item()) end
    keep = nil
    collectgarbage()
  end)

  it("<close> frees at scope end", function()
    local before = lucid.bytes_in_use()
    do
      local t <close> = lucid.zeros(1024 * 1024)
      assert.is_true(lucid.bytes_in_use() >= before + 4 * 1024 * 1024)
    end
    assert.is_true(lucid.bytes_in_use() < before + 4 * 1024 * 1024)
  end)

  it("views keep their storage alive", function()
    local v
    do
      local t = lucid.arange(10)
      v = t[{{3, 4}}]
    end
    collectgarbage()
    collectgarbage()
    h.same(v, {2, 3})
  end)

  it("allocation failure is a Lua error, not an abort", function()
    h.raises({"lucid.zeros"}, lucid.zeros, 1 << 40, 1 << 20)
  end)

  it("empty_cache returns cached blocks; tensors and convolutions keep working", function()
    local big = lucid.ones(1000, 1000) -- 4 MB: its block goes to the cache when freed
    big = nil
    collectgarbage()
    lucid.empty_cache()
    local conv = lucid.nn.Conv2d(2, 3, 3)
    local y1 = conv(lucid.ones(2, 2, 8, 8))
    lucid.empty_cache() -- frees the idle im2col workspaces too
    assert.is_true(conv(lucid.ones(2, 2, 8, 8)) == y1)
    h.same(lucid.ones(3) + 1, {2, 2, 2})
  end)

  it("clock is a monotonic wall clock in seconds", function()
    local t0 = lucid.clock()
    local t1 = lucid.clock()
    assert.is_number(t0)
    assert.is_true(t1 >= t0)
    local f = io.popen("sleep 0.05")
    local a = lucid.clock()
    f:close()
    assert.is_true(lucid.clock() - a >= 0.04)
  end)
end)

describe("set_", function()
  it("makes a tensor view another's memory, keeping its identity and gradient", function()
    local p = lucid.randn(3):requires_grad_()
    p.grad = lucid.ones(3)
    local before = p:detach()
    local buf = lucid.zeros(8)
    assert.are.equal(p, p:set_(buf:narrow(1, 3, 3)))
    buf:narrow(1, 3, 3):fill_(4)
    assert.are.same({4, 4, 4}, p:tolist())
    assert.is_true(p.requires_grad)
    assert.are.same({1, 1, 1}, p.grad:tolist())
    lucid.no_grad(function() p:mul_(0.5) end)
    assert.are.same({0, 0, 2, 2, 2, 0, 0, 0}, buf:tolist())
    assert.are_not.equal(4, before[1]:item()) -- the old data stayed with the old view
    -- autograd sees the new data
    local loss = (p * p):sum()
    loss:backward()
    assert.are.same({5, 5, 5}, p.grad:tolist())
  end)

  it("refuses what it cannot do, with the shapes and dtypes", function()
    local t = lucid.zeros(2, 3)
    local function err(f, ...)
      local ok, e = pcall(f, ...)
      assert.is_false(ok)
      return tostring(e)
    end
    assert.truthy(err(t.set_, t, lucid.zeros(3, 2)):find("set_: the source has shape {3, 2}, the tensor {2, 3}", 1, true))
    assert.truthy(err(t.set_, t, lucid.zeros(2, 3, {dtype = "int64"})):find("set_: the source is int64, the tensor float32", 1, true))
    local y = lucid.ones(2, 3):requires_grad_() * 2
    assert.truthy(err(y.set_, y, t):find("set_: the tensor has autograd history", 1, true))
    assert.truthy(err(t.set_, t, "x"):find("src", 1, true))
  end)
end)
