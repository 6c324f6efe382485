-- The user-facing docs against the code: README.md's and docs/*.md's Lua examples run as
-- written (a `print(...)  --> text` comment is the exact output of that print), the tutorial's
-- fragments are the lines of examples/fashion_mnist.lua, and README's and embedding.md's claims
-- about the tree (commands, layout, headers, packages, example programs) hold.
-- (docs/embedding.md's C programs are built and run against an installation by
-- tools/test-install.sh.)
local lucid = require "lucid"

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- Fenced code blocks of a markdown file: {lang = "lua" | "c" | "sh" | "", code = ..., line = n}
-- (line: the file line of the block's first code line).
local function blocks(path)
  local out, cur, n = {}, nil, 0
  for line in (slurp(path) .. "\n"):gmatch("(.-)\n") do
    n = n + 1
    local fence, lang = line:match("^(%s*```)(%w*)%s*$")
    if fence and not cur then
      cur = {lang = lang, lines = {}, line = n + 1}
    elseif fence and cur then
      cur.code = table.concat(cur.lines, "\n") .. "\n"
      out[#out + 1] = cur
      cur = nil
    elseif cur then
      cur.lines[#cur.lines + 1] = line
    end
  end
  assert(cur == nil, path .. ": unterminated code block")
  return out
end

local function lua_blocks(path)
  local out = {}
  for _, b in ipairs(blocks(path)) do
    if b.lang == "lua" then out[#out + 1] = b end
  end
  return out
end

-- Runs `code` as a chunk named after path:line with print recorded; returns the recorded
-- prints, each {line = chunk line, text = what print would write (without the newline)}.
local function run(code, name)
  local printed = {}
  local env = setmetatable({}, {__index = _G})
  env.print = function(...)
    local parts = table.pack(...)
    for i = 1, parts.n do parts[i] = tostring(parts[i]) end
    printed[#printed + 1] = {line = debug.getinfo(2, "l").currentline,
      text = table.concat(parts, "\t", 1, parts.n)}
  end
  local chunk = assert(load(code, "=" .. name, "t", env))
  local ok, err = xpcall(chunk, debug.traceback)
  assert(ok, ("%s raised: %s"):format(name, tostring(err)))
  return printed
end

-- Every `print(...)  --> expected` line of code printed exactly `expected`.
local function check_arrows(code, printed, name)
  local n, checked = 0, 0
  for line in (code .. "\n"):gmatch("(.-)\n") do
    n = n + 1
    local want = line:match("^%s*print%(.*%)%s*%-%->%s*(.-)%s*$")
    if want then
      local got
      for _, p in ipairs(printed) do
        if p.line == n then got = p.text end
      end
      assert.are.equal(want, got, ("%s line %d: %s"):format(name, n, line))
      checked = checked + 1
    end
  end
  return checked
end

local function run_doc_block(path, b)
  local name = ("%s:%d"):format(path, b.line)
  local printed = run(b.code, name)
  return printed, check_arrows(b.code, printed, name)
end

describe("README.md", function()
  local readme = slurp("README.md")
  local bl = lua_blocks("README.md")

  it("has the two Lua examples, and both run as written", function()
    assert.are.equal(2, #bl)
    -- the seed's first example: a {1, 2} output with its graph, and the input's gradient
    local printed = run_doc_block("README.md", bl[1])
    assert.are.equal(2, #printed)
    assert.truthy(printed[1].text:match("^tensor%(%[%[[^%]]+%]%], grad_fn=<LinearBackward>%)$"),
      printed[1].text)
    local grad = printed[2].text:match("^tensor%(%[%[([^%]]+)%]%]%)$")
    assert.truthy(grad, printed[2].text)
    assert.are.equal(4, select(2, grad:gsub("[^,]+", "")))
    -- first.lua: its --> comment is exact; the rest has the documented shapes
    local printed2, arrows = run_doc_block("README.md", bl[2])
    assert.are.equal(1, arrows)
    assert.are.equal(4, #printed2)
    assert.are.equal("tensor([4., 6.])\ttensor(2.5)", printed2[2].text)
    assert.are.equal("tensor([[5., 11.], [11., 25.]])", printed2[3].text)
    assert.truthy(printed2[4].text:match("^tensor%(%[%[.+%], %[.+%]%]%)$"), printed2[4].text)
  end)

  it("runs the first script the way it says (stock lua5.4 paths from the root)", function()
    assert.truthy(bl[2].code:find("build/bin/lucid first.lua", 1, true))
    assert.truthy(readme:find('LUA_PATH="lua/?.lua;lua/?/init.lua"', 1, true))
    assert.truthy(readme:find('LUA_CPATH="build/lua/?.so"', 1, true))
    assert.truthy(exists("lua/lucid/init.lua"))
  end)

  it("links only to files that exist", function()
    local n = 0
    for target in readme:gmatch("%]%(([^)#]+)[^)]*%)") do
      if not target:match("^%a+://") then
        assert.is_true(exists(target), "README.md links to a missing " .. target)
        n = n + 1
      end
    end
    assert.is_true(n >= 10)
    for path in readme:gmatch("%[(docs/[%w_/]+%.md)%]") do
      assert.is_true(exists(path), "README.md names a missing " .. path)
    end
  end)

  it("says what `make demo` runs, and it does", function()
    local mk = slurp("Makefile")
    local recipe = mk:match("\ndemo:[^\n]*\n\t([^\n]+)")
    assert.truthy(recipe, "Makefile has no demo recipe")
    assert.truthy(recipe:find("examples/fashion_mnist.lua", 1, true), recipe)
    assert.truthy(recipe:find("--checkpoint $(BUILD)/fashion_mnist.safetensors", 1, true), recipe)
    assert.truthy(recipe:find("$(DEMO_ARGS)", 1, true), recipe)
    assert.truthy(mk:find("\nBUILD%s*%?=%s*build\n"))
    assert.truthy(readme:find("make demo   # builds lucid and trains a CNN on Fashion-MNIST " ..
      "(examples/fashion_mnist.lua)", 1, true))
    assert.truthy(readme:find("`build/fashion_mnist.safetensors`", 1, true))
    assert.truthy(readme:find('make demo DEMO_ARGS="--resume --epochs 6"', 1, true))
    -- the options README passes exist in the script
    local script = slurp("examples/fashion_mnist.lua")
    for _, o in ipairs{"--resume", "--epochs", "--checkpoint"} do
      assert.truthy(script:find('a == "' .. o .. '"', 1, true), o)
    end
  end)

  it("names make targets that exist", function()
    local mk = slurp("Makefile")
    for _, f in ipairs{"mk/install.mk", "mk/embed.mk", "mk/fuzz.mk", "mk/tsan.mk"} do mk = mk .. "\n" .. slurp(f) end
    local n = 0
    for target in readme:gmatch("`make ([%w%-]+)") do
      assert.truthy(mk:find("\n" .. target:gsub("%-", "%%-") .. ":"),
        "README.md mentions `make " .. target .. "` but no rule defines it")
      n = n + 1
    end
    assert.is_true(n >= 8)
    assert.is_true(exists(".ci/run"))
    -- `make` builds the embedding examples: they are prerequisites of the C test binary
    assert.truthy(slurp("mk/embed.mk"):find("$(CTESTS): | $(EMBED_BINS)", 1, true))
  end)

  it("lists every header, and include/lucid.h includes (and names) all but lucid_lua.h and lucid_distributed.h", function()
    local p = assert(io.popen("ls include"))
    local headers = {}
    for h in p:lines() do headers[#headers + 1] = h end
    p:close()
    assert.is_true(#headers >= 10)
    local row = readme:match("\n| `include/` |([^\n]*)")
    assert.truthy(row, "README.md's layout table has no include/ row")
    local umbrella = slurp("include/lucid.h")
    for _, h in ipairs(headers) do
      assert.truthy(row:find("`" .. h .. "`", 1, true), "README.md's include/ row misses " .. h)
      -- lucid_lua.h is the binding's, lucid_distributed.h liblucid_distributed's (MPI)
      if h ~= "lucid.h" and h ~= "lucid_lua.h" and h ~= "lucid_distributed.h" then
        assert.truthy(umbrella:find('#include "' .. h .. '"', 1, true), "lucid.h misses " .. h)
        assert.truthy(umbrella:find(" \\* +" .. h:gsub("%.", "%%.")), "lucid.h's comment misses " .. h)
      end
    end
    assert.falsy(umbrella:find('#include "lucid_lua.h"', 1, true))
  end)

  it("has a layout row for every tracked top-level directory, and every row's path exists", function()
    local rows = {}
    for cell in readme:match("## Layout(.-)\n## "):gmatch("\n| ([^|]+) |") do
      for path in cell:gmatch("`([^`]+)`") do
        rows[path] = true
        assert.is_true(exists(path) or exists(path .. "."), "README.md's layout names a missing " .. path)
      end
    end
    local p = io.popen("git ls-files 2>/dev/null")
    local dirs = {}
    for f in p:lines() do
      local d = f:match("^([^./][^/]*)/")
      if d then dirs[d] = true end
    end
    p:close()
    for d in pairs(dirs) do
      local found = false
      for path in pairs(rows) do
        if path:sub(1, #d + 1) == d .. "/" then found = true end
      end
      assert.is_true(found, "README.md's layout has no row for " .. d .. "/")
    end
  end)

  it("names the packages tools/install-deps.sh installs", function()
    local pkgs = slurp("tools/install-deps.sh"):match('\nPKGS="([^"]+)"')
    assert.truthy(pkgs)
    local said = readme:match("Both install the missing Debian packages first(.-)\n\n")
    local names = {["lua5.4"] = "Lua 5.4", ["liblua5.4-dev"] = "Lua 5.4",
      ["libopenblas-dev"] = "OpenBLAS", ["zlib1g-dev"] = "zlib", ["lua-busted"] = "busted",
      gcc = "the compiler", make = "make", ["pkg-config"] = "pkg-config", clang = "`clang`",
      ["dataset-fashion-mnist"] = "`dataset-fashion-mnist`", fortunes = "`fortunes`",
      ["libprotobuf-c-dev"] = "protobuf-c", ["protobuf-c-compiler"] = "protobuf-c",
      ["libonnx-testdata"] = "`libonnx-testdata`", ["python3-onnx"] = "`python3-onnx`",
      ["libopenmpi-dev"] = "`libopenmpi-dev`", ["openmpi-bin"] = "`openmpi-bin`"}
    for pkg in pkgs:gmatch("%S+") do
      local name = names[pkg]
      assert.truthy(name, "install-deps.sh installs " .. pkg .. ", which README.md does not name")
      assert.truthy(said:find(name, 1, true), "README.md does not name " .. name)
    end
    assert.truthy(said:find("/usr/share/datasets/fashion-mnist", 1, true))
  end)
end)

describe("docs/tensor.md and docs/autograd.md", function()
  for _, path in ipairs{"docs/tensor.md", "docs/autograd.md"} do
    it(path .. ": the opening example prints what its --> comments say", function()
      local bl = lua_blocks(path)
      assert.is_true(#bl >= 1)
      local _, arrows = run_doc_block(path, bl[1])
      assert.is_true(arrows >= 1)
    end)
  end

  it("docs/tensor.md: an in-place op into an integer tensor fails only for a floating result", function()
    local doc = slurp("docs/tensor.md")
    local msg = doc:match("%(`(lucid%.div_: result\ntype float32 can't be cast[^`]+)`%)")
    assert.truthy(msg)
    msg = msg:gsub("\n", " ")
    local i = lucid.ones(2, {dtype = "int64"})
    local ok, err = pcall(i.div_, i, 2)
    assert.is_false(ok)
    assert.truthy(tostring(err):find(msg, 1, true), err)
    assert.are.equal("tensor([2, 2], dtype=int64)", tostring(i:mul_(2)))
    assert.is_false((pcall(i.sqrt_, i)))
    assert.is_false((pcall(i.add_, i, lucid.ones(2))))
    assert.is_false((pcall(i.mul_, i, 2.5)))
  end)
end)

describe("docs/nn.md", function()
  local path = "docs/nn.md"
  local all = blocks(path)
  local bl = lua_blocks(path)

  it("the opening example prints the tree shown below it", function()
    local printed = run_doc_block(path, bl[1])
    assert.are.equal(1, #printed)
    local tree
    for _, b in ipairs(all) do
      if b.lang == "" and b.code:match("^Sequential%(") then tree = b.code:gsub("\n$", "") end
    end
    assert.truthy(tree, "nn.md shows no printed tree")
    assert.are.equal(tree, printed[1].text)
  end)

  it("the state dict loop prints the names and shapes it says", function()
    local loop
    for _, b in ipairs(bl) do
      if b.code:find("state_dict()", 1, true) then loop = b end
    end
    assert.truthy(loop)
    -- it uses the opening example's `model`
    local code = bl[1].code .. loop.code
    local printed = run(code, path .. ":state_dict")
    local got = {}
    for i = 2, #printed do got[#got + 1] = printed[i].text end
    assert.are.same({"fc1.weight\t3x5", "fc1.bias\t3", "fc2.weight\t1x3", "fc2.bias\t1"}, got)
    local said = loop.code:match("\n%-%- (.-)\n")
    assert.are.equal("fc1.weight  3x5,  fc1.bias  3,  fc2.weight  1x3,  fc2.bias  1", said)
  end)

  it("the module written in Lua runs, registers what the bullets say, and trains", function()
    local net
    for _, b in ipairs(bl) do
      if b.code:find('nn.Module:extend("Net")', 1, true) then net = b end
    end
    assert.truthy(net)
    local code = "local lucid = require 'lucid'\nlocal nn = lucid.nn\n" .. net.code ..
      "\nreturn model\n"
    local model = assert(load(code, "=" .. path .. ":Net", "t", _G))()
    local names = {}
    for name in model:named_parameters() do names[#names + 1] = name end
    assert.are.same({"net.scale", "net.fc1.weight", "net.fc1.bias", "net.fc2.weight",
      "net.fc2.bias", "head.weight", "head.bias"}, names)
    assert.are.equal(8, model.net.hidden)
    local sd = model:state_dict()
    assert.truthy(sd["net.steps"])
    local y = model(lucid.ones(3, 4))
    assert.are.same({3, 1}, y.shape)
    y:sum():backward()
    assert.are.same({2}, model.net.scale.grad.shape)
  end)

  it("quotes the errors the code raises", function()
    local doc = slurp(path)
    local nn = lucid.nn
    local function err(fn, ...)
      local ok, e = pcall(fn, ...)
      assert.is_false(ok)
      return tostring(e)
    end
    local m = nn.Sequential{{"fc1", nn.Linear(5, 3)}, {"act", nn.Tanh()}, {"fc2", nn.Linear(3, 1)}}
    local e = err(nn.Linear, {in_features = 4, out_features = 3, bais = true})
    assert.truthy(doc:find(e, 1, true), e)
    e = err(function() return m:pop(4) end)
    assert.truthy(doc:gsub("\n", " "):find(e, 1, true), e)
    e = err(nn.ModuleDict{{"a", nn.ReLU()}}, lucid.ones(1))
    assert.truthy(doc:find(e, 1, true), e)
    local block = nn.Sequential{{"block", nn.Sequential{{"fc2", nn.Linear(3, 1)}}}}
    e = err(block, lucid.ones(1, 4))
    assert.are.equal("lucid.Sequential.block.fc2 (Linear): expected input with 3 features (last " ..
      "dimension), got 4: input shape {1, 4}", e)
  end)
end)

describe("docs/tutorial.md", function()
  local path = "docs/tutorial.md"
  local doc = slurp(path)
  local script = slurp("examples/fashion_mnist.lua")
  local model_file = slurp("examples/fashion_model.lua")
  local text_files = {slurp("examples/char_lm.lua"), slurp("examples/char_model.lua")}

  local function normalize(line)
    return (line:gsub("%s+%-%-.*$", ""):gsub("^%s+", ""):gsub("%s+$", ""):gsub("%s+", " "))
  end

  it("shows lines of examples/fashion_mnist.lua, fashion_model.lua and the text model's scripts", function()
    local have = {}
    for _, src in ipairs{script, model_file, text_files[1], text_files[2]} do
      for line in src:gmatch("[^\n]+") do have[#have + 1] = normalize(line) end
    end
    local checked = 0
    for _, b in ipairs(lua_blocks(path)) do
      for line in b.code:gmatch("[^\n]+") do
        local l = normalize(line)
        if l ~= "" and not l:find("...", 1, true) then
          local found = false
          for _, h in ipairs(have) do
            if h:find(l, 1, true) then found = true break end
          end
          assert.is_true(found, ("%s:%d: %q is not in the example scripts"):format(path, b.line, line))
          checked = checked + 1
        end
      end
    end
    assert.is_true(checked >= 30)
  end)

  it("lists the script's options with their defaults", function()
    local opts = doc:match("\nOptions: (.-)\n\n")
    assert.truthy(opts)
    local documented = {}
    for o in opts:gmatch("`(%-%-[%w%-]+)") do documented[o] = true end
    for o in script:gmatch('a == "(%-%-[%w%-]+)"') do
      if o ~= "--help" then assert.truthy(documented[o], "tutorial misses " .. o) end
    end
    for o in pairs(documented) do
      assert.truthy(script:find('a == "' .. o .. '"', 1, true), "the script has no " .. o)
    end
    local defaults = {["--epochs N"] = "epochs", ["--batch-size N"] = "batch_size",
      ["--lr X"] = "lr", ["--seed N"] = "seed"}
    for usage, key in pairs(defaults) do
      local said = opts:match("`" .. usage:gsub("%-", "%%-") .. "` %(([%d.]+)%)")
      local actual = script:match("[{ ,]" .. key .. " = ([%d.e%-]+)")
      assert.truthy(said, usage)
      assert.truthy(actual, key)
      assert.are.equal(tonumber(actual), tonumber(said), usage)
    end
    assert.truthy(opts:find("`--checkpoint FILE` (`fashion_mnist.safetensors`", 1, true))
    assert.truthy(script:find('checkpoint = "fashion_mnist.safetensors"', 1, true))
    assert.truthy(script:find('root = "/usr/share/datasets/fashion-mnist"', 1, true))
  end)

  it("counts the model's parameters right", function()
    local n = doc:match("counts ([%d,]+) parameters"):gsub(",", "")
    local model = assert(load(model_file, "=fashion_model.lua"))()()
    assert.are.equal(tonumber(n), model:num_parameters())
  end)
end)

describe("docs/embedding.md", function()
  local doc = slurp("docs/embedding.md")

  it("documents every function of include/lucid_lua.h, with the ownership table", function()
    local api = slurp("include/lucid_lua.h")
    local n = 0
    for fn in api:gmatch("\n[%w_ %*]-[%s%*]([%w_]+)%(lua_State") do
      assert.truthy(doc:find("`" .. fn, 1, true) or doc:find(fn .. "(", 1, true),
        "docs/embedding.md does not mention " .. fn)
      n = n + 1
    end
    assert.are.equal(6, n)
    for _, fn in ipairs{"lucid_push_tensor", "lucid_check_tensor", "lucid_to_tensor"} do
      assert.truthy(doc:find("\n| `[^`]*" .. fn .. "%(lua_State"), fn .. " has no row in the table")
    end
  end)

  it("lists every example program, each built by mk/embed.mk, run by the tests and the install test",
    function()
      local p = assert(io.popen("ls examples/embed"))
      local n = 0
      local mk, run, inst = slurp("mk/embed.mk"), slurp("tools/run-tests.sh"),
        slurp("tools/test-install.sh")
      for f in p:lines() do
        assert.truthy(doc:find("`" .. f .. "`", 1, true), "docs/embedding.md does not list " .. f)
        local stem = f:match("^(.-)%.c$")
        if stem then
          n = n + 1
          local bin = "embed-" .. stem:gsub("_", "-")
          assert.truthy(mk:find("$(BUILD)/bin/" .. bin .. ":", 1, true), "mk/embed.mk: " .. bin)
          assert.truthy(run:find("/bin/" .. bin, 1, true), "tools/run-tests.sh: " .. bin)
          assert.truthy(inst:find("examples/embed/" .. f, 1, true), "tools/test-install.sh: " .. f)
        end
      end
      p:close()
      assert.are.equal(6, n)
    end)

  it("says the generator is per thread, as src/core/random.c makes it", function()
    assert.truthy(doc:find("| per OS thread; a new thread starts at the default seed |", 1, true))
    assert.truthy(slurp("src/core/random.c"):find("static _Thread_local uint64_t rng_seed", 1, true))
  end)
end)
