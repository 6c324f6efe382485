-- Crash leftovers of lucid.save (issue 12, item 7): savers killed with kill -9 in the middle of
-- writing a 32 MB checkpoint never damage the previous file, and what they leave behind is
-- bounded: the next save reclaims every temporary whose writer is gone (older than the 2 s
-- grace), and never one that a live process is still writing.
local lucid = require "lucid"

local bin = require("helpers").lucid_bin()

local sh = require("helpers").sh

local function temps(dir)
  local n = 0
  for _ in sh("ls -a '" .. dir .. "'"):gmatch("ck%.safetensors%.tmp%.[^\n]+") do n = n + 1 end
  return n
end

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

describe("lucid.save under kill -9", function()
  local dir, target
  before_each(function()
    dir = sh("mktemp -d"):gsub("%s+$", "")
    target = dir .. "/ck.safetensors"
  end)
  after_each(function() os.execute("rm -rf '" .. dir .. "'") end)

  it("leaves the previous checkpoint intact and its temporaries reclaimed by the next save", function()
    lucid.save(target, {w = lucid.arange(0, 10)})
    local saver = dir .. "/saver.lua"
    write(saver, ([[
local lucid = require "lucid"
local big = lucid.randn(8 * 1024 * 1024) -- 32 MB
while true do lucid.save(%q, {w = big}) end
]]):format(target))
    local kills = 12
    for k = 1, kills do
      local pid = sh("'" .. bin .. "' '" .. saver .. "' >/dev/null 2>&1 & echo $!"):match("%d+")
      os.execute(("sleep 0.%d"):format(2 + k % 5)) -- dies at a different point of a save
      os.execute("kill -9 " .. pid .. " 2>/dev/null; wait " .. pid .. " 2>/dev/null")
      -- whatever was killed, the target is a whole checkpoint: the first one or a 32 MB one
      local t = lucid.load(target).w
      assert.is_true(t:numel() == 10 or t:numel() == 8 * 1024 * 1024)
    end
    local left = temps(dir)
    assert.is_true(left <= kills, "temporaries: " .. left)
    os.execute("sleep 2.2") -- past the grace period: every writer above is gone
    lucid.save(target, {w = lucid.ones(3)})
    assert.equal(0, temps(dir))
    assert.same({1, 1, 1}, lucid.load(target).w:tolist())
  end)

  it("never reclaims the temporary of a live writer", function()
    local slow, fast = dir .. "/slow.lua", dir .. "/fast.lua"
    write(slow, ([[
local lucid = require "lucid"
local big = lucid.randn(8 * 1024 * 1024)
for _ = 1, 3 do lucid.save(%q, {w = big}); print("saved") end
]]):format(target))
    write(fast, ([[
local lucid = require "lucid"
for _ = 1, 40 do lucid.save(%q, {w = lucid.ones(2)}) end
print("fast done")
]]):format(target))
    local out = sh("'" .. bin .. "' '" .. slow .. "' 2>&1 & '" .. bin .. "' '" .. fast .. "' 2>&1; wait")
    local saved = select(2, out:gsub("saved", ""))
    assert.equal(3, saved, out)
    assert.truthy(out:find("fast done", 1, true), out)
    assert.equal(0, temps(dir))
  end)
end)
