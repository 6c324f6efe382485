-- The `lucid` interpreter (src/cli/lucid.c), run as a separate process.
-- LUCID_BIN picks the binary (tools/run-tests.sh sets it to the build under test).
local function shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function cwd()
  local p = assert(io.popen("pwd"))
  local d = p:read("l")
  p:close()
  return d
end

local bin = os.getenv("LUCID_BIN") or "build/bin/lucid"
if bin:sub(1, 1) ~= "/" then bin = cwd() .. "/" .. bin end
local LUCID = shell_quote(bin)

local tmpfiles = {}
local function tmpfile(contents)
  local name = os.tmpname()
  tmpfiles[#tmpfiles + 1] = name
  if contents then
    local f = assert(io.open(name, "w"))
    f:write(contents)
    f:close()
  end
  return name
end

local function slurp(name)
  local f = assert(io.open(name))
  local s = f:read("a")
  f:close()
  return s
end

-- Runs a shell command line; returns stdout, stderr, exit code.
local function run(cmdline, stdin)
  local out, err = tmpfile(), tmpfile()
  local input = stdin and (" < " .. shell_quote(tmpfile(stdin))) or " < /dev/null"
  local ok, how, code = os.execute(("%s%s > %s 2> %s"):format(cmdline, input, out, err))
  if how == "signal" then code = 128 + code end
  return slurp(out), slurp(err), ok and 0 or code
end

describe("the lucid interpreter", function()
  teardown(function()
    for _, f in ipairs(tmpfiles) do os.remove(f) end
  end)

  it("exists", function()
    local f = io.open(bin)
    assert.is_truthy(f, "no interpreter at " .. bin)
    f:close()
  end)

  it("-v prints lucid's and Lua's versions", function()
    local out, _, code = run(LUCID .. " -v")
    assert.equals(0, code)
    assert.is_truthy(out:match("^lucid 0%.1%.0 %(Lua 5%.4%.%d+%)\n$"), out)
  end)

  it("runs a script with its arguments in the arg table and in ...", function()
    local script = tmpfile([[
print(arg[0] == SCRIPT_NAME or arg[0])
print(#arg, arg[1], arg[2], select("#", ...), ...)
print(arg[-1] ~= nil, arg[-2])
]])
    local out, err, code = run(("%s -e %s %s one two"):format(LUCID,
      shell_quote("SCRIPT_NAME=" .. ("%q"):format(script)), shell_quote(script)))
    assert.equals(0, code, err)
    local l1, l2, l3 = out:match("^(.-)\n(.-)\n(.-)\n$")
    assert.equals("true", l1)
    assert.equals("2\tone\ttwo\t2\tone\ttwo", l2)
    -- arg[-1] is the -e chunk, arg[-2] the option, arg[-3] the interpreter
    assert.equals("true\t-e", l3)
  end)

  it("puts the interpreter at the most negative arg index", function()
    local script = tmpfile("local i = 0 while arg[i - 1] do i = i - 1 end print(i, arg[i])")
    local out, _, code = run(("%s %s"):format(LUCID, shell_quote(script)))
    assert.equals(0, code)
    assert.equals("-1\t" .. bin .. "\n", out)
  end)

  it("-e runs statements in order", function()
    local out, _, code = run(LUCID .. " -e 'x = 20' -e 'print(x + 22)'")
    assert.equals(0, code)
    assert.equals("42\n", out)
  end)

  it("-l requires a module into a global of the same name, or g=mod", function()
    local out, _, code = run(LUCID .. " -l string -l S=string -e 'print(type(string), S == string)'")
    assert.equals(0, code)
    assert.equals("table\ttrue\n", out)
  end)

  it("-l lucid makes lucid a global", function()
    local out, err, code = run(LUCID .. " -l lucid -e 'print(lucid.ones(3):sum():item())'")
    assert.equals(0, code, err)
    assert.equals(3, tonumber(out))
  end)

  it("runs a script from stdin with -", function()
    local out, _, code = run(LUCID .. " - a b", 'print("stdin", ...)')
    assert.equals(0, code)
    assert.equals("stdin\ta\tb\n", out)
  end)

  it("treats everything after -- as the script and its arguments", function()
    local script = tmpfile("print(...)")
    local out, _, code = run(("%s -- %s -v"):format(LUCID, shell_quote(script)))
    assert.equals(0, code)
    assert.equals("-v\n", out)
  end)

  it("exits with status 1 and a traceback on a runtime error", function()
    local script = tmpfile("local function inner() error('boom') end\ninner()\n")
    local out, err, code = run(LUCID .. " " .. shell_quote(script))
    assert.equals(1, code)
    assert.equals("", out)
    assert.is_truthy(err:find("boom", 1, true), err)
    assert.is_truthy(err:find("stack traceback:", 1, true), err)
    assert.is_truthy(err:find("in local 'inner'", 1, true) or err:find("inner", 1, true), err)
  end)

  it("exits with status 1 on a syntax error and on a missing script", function()
    local _, err, code = run(LUCID .. " " .. shell_quote(tmpfile("x = = 1")))
    assert.equals(1, code)
    assert.is_truthy(err:find("unexpected symbol", 1, true), err)
    _, err, code = run(LUCID .. " /nonexistent/script.lua")
    assert.equals(1, code)
    assert.is_truthy(err:find("cannot open", 1, true), err)
  end)

  it("reports lucid errors raised from C with a traceback", function()
    local _, err, code = run(LUCID .. " -e 'local lucid = require \"lucid\"; lucid.ones(2, 3):sum(5)'")
    assert.equals(1, code)
    assert.is_truthy(err:find("sum", 1, true), err)
    assert.is_truthy(err:find("stack traceback:", 1, true), err)
  end)

  it("rejects an unknown option with usage and status 1", function()
    local _, err, code = run(LUCID .. " -z")
    assert.equals(1, code)
    assert.is_truthy(err:find("unrecognized option '-z'", 1, true), err)
    assert.is_truthy(err:find("usage:", 1, true), err)
  end)

  it("finds lucid from any working directory", function()
    local script = tmpfile([[
local lucid = require "lucid"
local t = lucid.Tensor({{1, 2}, {3, 4}})
print((t * 2 + 1):sum():item())
]])
    local out, err, code = run(("cd /tmp && %s %s"):format(LUCID, shell_quote(script)))
    assert.equals(0, code, err)
    assert.equals(24, tonumber(out))
  end)

  it("evaluates lines fed to the prompt and prints expression values", function()
    local out, err, code = run(LUCID, table.concat({
      "1 + 1",
      "x = 3",                   -- a statement prints nothing
      "x * 2",
      "for i = 1, 2 do",         -- continues on the next lines
      "  print('line', i)",
      "end",
      "'a', nil, 4",
      "=x",                      -- Lua 5.2 habit
      "error('oops')",           -- reported; the loop goes on
      "type(lucid)",             -- lucid is a global at the prompt
      "lucid.ones(2):sum():item()",
    }, "\n") .. "\n")
    assert.equals(0, code)
    assert.equals("2\n6\nline\t1\nline\t2\na\tnil\t4\n3\ntable\n2.0\n",
      (out:gsub("\n2\n$", "\n2.0\n")))
    assert.is_truthy(err:find("oops", 1, true), err)
  end)

  it("-i enters the prompt after the script", function()
    local script = tmpfile("y = 41")
    local out, _, code = run(("%s -i %s"):format(LUCID, shell_quote(script)), "y + 1\n")
    assert.equals(0, code)
    assert.is_truthy(out:match("^lucid 0%.1%.0 .-\n42\n$"), out)
  end)

  it("-W turns warnings on", function()
    local _, err, code = run(LUCID .. " -W -e 'warn(\"careful\")'")
    assert.equals(0, code)
    assert.is_truthy(err:find("careful", 1, true), err)
    _, err = run(LUCID .. " -e 'warn(\"careful\")'")
    assert.equals("", err)
  end)

  it("stops a running script on SIGINT with 'interrupted!'", function()
    -- exactly one SIGINT, to the interpreter alone, after its handler is set (GNU timeout would
    -- also signal the whole process group, and a second SIGINT rightly kills the process)
    local out, err, code = run(("sh -c '%s -e \"while true do end\" & pid=$!; sleep 1; " ..
      "kill -INT $pid; wait $pid'"):format(LUCID))
    assert.equals("", out)
    assert.equals(1, code)
    assert.is_truthy(err:find("interrupted!", 1, true), err)
  end)
end)
