-- The host's file access policy (issue 12, item 4): lucid.set_file_policy / lc_set_file_roots
-- restrict what lucid.load, lucid.save and the IDX reader may open; paths are compared in
-- canonical form (no escape through "..", links or relative paths); once locked, a script
-- cannot change it.
local lucid = require "lucid"

local bin = require("helpers").lucid_bin()

local sh = require("helpers").sh

local err = require("helpers").err

local function has(e, text) assert(e:find(text, 1, true), e) end

describe("the file access policy", function()
  local root, ok_dir, no_dir
  before_each(function()
    root = sh("mktemp -d"):gsub("%s+$", "")
    ok_dir, no_dir = root .. "/ok", root .. "/no"
    os.execute("mkdir '" .. ok_dir .. "' '" .. no_dir .. "'")
    lucid.save(no_dir .. "/a.safetensors", {w = lucid.ones(2)})
  end)
  after_each(function()
    lucid.set_file_policy() -- these cases never lock it
    os.execute("rm -rf '" .. root .. "'")
  end)

  it("allows reading and writing below its roots only", function()
    lucid.set_file_policy{read = {ok_dir}, write = {ok_dir}}
    lucid.save(ok_dir .. "/a.safetensors", {w = lucid.ones(3)})
    assert.same({1, 1, 1}, lucid.load(ok_dir .. "/a.safetensors").w:tolist())
    has(err(lucid.save, no_dir .. "/b.safetensors", {w = lucid.ones(1)}),
      "lucid.save: the host's file policy does not allow writing '" .. no_dir .. "/b.safetensors'")
    has(err(lucid.load, no_dir .. "/a.safetensors"),
      "lucid.load: the host's file policy does not allow reading '" .. no_dir .. "/a.safetensors'")
    has(err(lucid.data.read_idx, no_dir .. "/x-idx1-ubyte"), "the host's file policy does not allow reading")
    assert.is_nil(io.open(no_dir .. "/b.safetensors")) -- nothing was written
  end)

  it("cannot be escaped through '..', symbolic links or relative paths", function()
    lucid.set_file_policy{read = {ok_dir}, write = {ok_dir}}
    has(err(lucid.load, ok_dir .. "/../no/a.safetensors"), "does not allow reading")
    os.execute("ln -s '" .. no_dir .. "' '" .. ok_dir .. "/link'")
    has(err(lucid.load, ok_dir .. "/link/a.safetensors"), "does not allow reading")
    has(err(lucid.save, ok_dir .. "/link/c.safetensors", {w = lucid.ones(1)}), "does not allow writing")
  end)

  it("keeps reading and writing apart, and a missing list unrestricted", function()
    lucid.set_file_policy{write = {}} -- reads anywhere, writes nowhere
    assert.same({1, 1}, lucid.load(no_dir .. "/a.safetensors").w:tolist())
    has(err(lucid.save, ok_dir .. "/a.safetensors", {w = lucid.ones(1)}), "does not allow writing")
    lucid.set_file_policy()
    lucid.save(ok_dir .. "/a.safetensors", {w = lucid.ones(1)}) -- removed: anything again
  end)

  it("checks its options", function()
    has(err(lucid.set_file_policy, {read = {root .. "/missing"}}),
      "lucid.set_file_policy: read root 1 '" .. root .. "/missing' is not an existing directory")
    has(err(lucid.set_file_policy, {reed = {}}),
      "lucid.set_file_policy: unknown option 'reed' (expected one of: read, write, lock)")
    has(err(lucid.set_file_policy, {write = "x"}), "option write: expected a list of directories, got string")
    has(err(lucid.set_file_policy, {write = {1}}), "option write: entry [1] must be a string, got number")
  end)

  it("once locked by the host, a script cannot change it (a separate process)", function()
    local script = root .. "/host.lua"
    local f = assert(io.open(script, "w"))
    f:write(([[
local lucid = require "lucid"
lucid.set_file_policy{read = {%q}, write = {%q}, lock = true} -- the host's part
print(pcall(lucid.set_file_policy))                            -- the script's attempts
print(pcall(lucid.set_file_policy, {read = {"/"}}))
print(pcall(lucid.load, %q))
print(lucid.file_policy_locked())
]]):format(ok_dir, ok_dir, no_dir .. "/a.safetensors"))
    f:close()
    local out = sh("'" .. bin .. "' '" .. script .. "' 2>&1")
    assert.truthy(out:find("false\tlucid.set_file_policy: the file policy is locked\n" ..
      "false\tlucid.set_file_policy: the file policy is locked\n", 1, true), out)
    assert.truthy(out:find("false\tlucid.load: the host's file policy does not allow reading", 1, true), out)
    assert.truthy(out:find("\ntrue\n", 1, true), out)
  end)
end)
