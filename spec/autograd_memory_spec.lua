-- The graph is freed after backward: a long training loop keeps memory flat.
local h = require "helpers"

describe("autograd memory", function()
  it("a 10,000-step training loop keeps RSS and tensor bytes flat", function()
    local _, out = h.child_peak_rss_kb([[
local lucid = require "lucid"
local function rss_kb()
  for line in io.lines("/proc/self/status") do
    local kb = line:match("^VmRSS:%s*(%d+)")
    if kb then return tonumber(kb) end
  end
end
lucid.manual_seed(1)
local w1 = (lucid.randn(32, 16) * 0.1):requires_grad_()
local b1 = lucid.zeros({32}, {requires_grad = true})
local w2 = (lucid.randn(4, 32) * 0.1):requires_grad_()
local b2 = lucid.zeros({4}, {requires_grad = true})
local x, y = lucid.randn(8, 16), lucid.randn(8, 4)
local params = {w1, b1, w2, b2}
local first_loss, loss
local rss, bytes = {}, {}
for step = 1, 10000 do
  local hidden = (x:matmul(w1:t()) + b1):relu()
  local out = hidden:matmul(w2:t()) + b2
  loss = ((out - y) ^ 2):mean()
  for _, p in ipairs(params) do p.grad = nil end
  loss:backward()
  lucid.no_grad(function()
    for _, p in ipairs(params) do p:sub_(p.grad * 0.05) end
  end)
  if step == 1 then first_loss = loss:item() end
  if step == 1000 or step == 10000 then
    collectgarbage()
    rss[#rss + 1], bytes[#bytes + 1] = rss_kb(), lucid.bytes_in_use()
  end
end
print(("RSS %d %d BYTES %d %d LOSS %.6f %.6f"):format(rss[1], rss[2], bytes[1], bytes[2],
  first_loss, loss:item()))
]])
    local r1, r2, b1, b2, l1, l2 = out:match("RSS (%d+) (%d+) BYTES (%d+) (%d+) LOSS (%S+) (%S+)")
    assert(r1, "child failed: " .. out)
    r1, r2, b1, b2 = tonumber(r1), tonumber(r2), tonumber(b1), tonumber(b2)
    -- from step 1,000 to 10,000: RSS grows by less than 4 MB, live tensor bytes not at all
    assert.is_true(r2 - r1 < 4096, ("RSS grew from %d kB to %d kB"):format(r1, r2))
    assert.are.equal(b1, b2)
    -- and the loop really trained
    assert.is_true(tonumber(l2) < tonumber(l1) * 0.5, out)
  end)
end)
