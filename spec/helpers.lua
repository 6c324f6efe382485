-- Shared utilities for lucid's busted specs: require "helpers".
local lucid = require "lucid"

local helpers = {}
helpers.lucid = lucid

-- Calls fn(...) expecting an error whose message contains every string in `parts` (plain
-- substrings); then checks the runtime still works. Returns the message.
function helpers.raises(parts, fn, ...)
  if type(parts) == "string" then parts = {parts} end
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error containing '" .. table.concat(parts, "', '") .. "'")
  err = tostring(err)
  for _, p in ipairs(parts) do
    assert(err:find(p, 1, true), ("error message %q does not contain %q"):format(err, p))
  end
  -- the runtime stays usable after any error
  local probe = (lucid.ones(2, 2) * 3):sum()
  assert(probe:item() == 12, "runtime broken after error: " .. err)
  assert(lucid.is_grad_enabled(), "grad mode left off after error: " .. err)
  return err
end

-- The message of fn(...)'s error (which must happen), the runtime checked usable after it.
function helpers.err(fn, ...) return helpers.raises({}, fn, ...) end

-- A shell command's output.
function helpers.sh(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  return out
end

-- The interpreter under test (tools/run-tests.sh sets LUCID_BIN), as an absolute path.
function helpers.lucid_bin()
  local bin = os.getenv("LUCID_BIN") or "build/bin/lucid"
  if bin:sub(1, 1) ~= "/" then bin = helpers.sh("pwd"):gsub("%s+$", "") .. "/" .. bin end
  return bin
end

local function flatten(v, out)
  if type(v) == "table" then
    for _, x in ipairs(v) do flatten(x, out) end
  else
    out[#out + 1] = v
  end
  return out
end

-- The leaves of a nested table in order (a non-table is a one-element list).
function helpers.flat(v) return flatten(v, {}) end

-- The PyTorch fixture spec/fixtures/<name>.lua (written by tools/fixtures/<name>.py); its
-- argument lists may build tensors with lucid.
function helpers.fixture(name)
  local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
  return assert(loadfile(here .. "fixtures/" .. name .. ".lua", "t",
    setmetatable({lucid = lucid}, {__index = _G})))()
end

-- Tensor t against a fixture's values (nested table) and shape: exact for integers and bools,
-- NaN matches NaN, infinities match themselves, else |a - b| <= abs + rel * |b|.
function helpers.check_values(name, t, expected, shape, rel, abs)
  assert(table.concat(shape, ",") == table.concat(t.shape, ","),
    ("%s: shape {%s}, expected {%s}"):format(name, table.concat(t.shape, ", "),
      table.concat(shape, ", ")))
  local got, want = flatten(t:tolist(), {}), flatten(expected, {})
  assert(#got == #want, ("%s: %d values, expected %d"):format(name, #got, #want))
  for i = 1, #got do
    local a, b = got[i], want[i]
    local ok
    if type(b) == "boolean" or math.type(a) == "integer" then
      ok = a == b
    elseif b ~= b then
      ok = a ~= a
    elseif b == math.huge or b == -math.huge then
      ok = a == b
    else
      ok = math.abs(a - b) <= abs + rel * math.abs(b)
    end
    assert(ok, ("%s: element %d is %s, expected %s"):format(name, i, tostring(a), tostring(b)))
  end
end

local function shape_of(v)
  local s = {}
  while type(v) == "table" do
    s[#s + 1] = #v
    v = v[1]
  end
  return s
end

-- Asserts tensor t has the values (nested table or number) `expected`, with tolerance tol, and
-- the same shape.
function helpers.same(t, expected, tol)
  tol = tol or 1e-5
  assert(lucid.is_tensor(t), "expected a tensor, got " .. type(t))
  local got = t:tolist()
  if type(expected) ~= "table" then
    assert(t.ndim == 0, ("expected a 0-dim tensor, got shape {%s}"):format(table.concat(t.shape, ", ")))
    got = {got}
    expected = {expected}
  else
    local es, ts = shape_of(expected), t.shape
    assert(#es == #ts or (#es < #ts), "rank mismatch")
    assert(table.concat(es, ",") == table.concat(ts, ",") or #flatten(expected, {}) == t:numel(),
      ("shape {%s} vs expected {%s}"):format(table.concat(ts, ", "), table.concat(es, ", ")))
  end
  local g, e = flatten(got, {}), flatten(expected, {})
  assert(#g == #e, ("%d elements vs %d expected"):format(#g, #e))
  for i = 1, #g do
    local a, b = g[i], e[i]
    if type(b) == "boolean" or type(a) == "boolean" then
      assert(a == b, ("element %d: %s vs expected %s"):format(i, tostring(a), tostring(b)))
    else
      assert(math.abs(a - b) <= tol * (1 + math.abs(b)) or (a ~= a and b ~= b),
        ("element %d: %.8g vs expected %.8g (tensor %s)"):format(i, a, b, tostring(t)))
    end
  end
  return true
end

-- Two tensors close elementwise (same shape).
function helpers.close(a, b, tol)
  tol = tol or 1e-5
  assert(table.concat(a.shape, ",") == table.concat(b.shape, ","),
    ("shapes {%s} vs {%s}"):format(table.concat(a.shape, ", "), table.concat(b.shape, ", ")))
  local d = (a:double() - b:double()):abs()
  local m = d:numel() > 0 and d:max():item() or 0
  assert(m <= tol, ("max abs difference %g > %g"):format(m, tol))
  return true
end

function helpers.shape(t) return table.concat(t.shape, ",") end

-- Peak resident set size (kB) of a fresh `lua5.4` process running `code`, with lucid on the
-- path of the current run.
function helpers.child_peak_rss_kb(code)
  local script = os.tmpname()
  local f = assert(io.open(script, "w"))
  f:write('package.path = "lua/?.lua;lua/?/init.lua;" .. package.path\n')
  f:write('package.cpath = "build/lua/?.so;" .. package.cpath\n')
  f:write(code, "\n")
  f:write([[
for line in io.lines("/proc/self/status") do
  local kb = line:match("^VmHWM:%s*(%d+)")
  if kb then print("HWM " .. kb) end
end
]])
  f:close()
  local p = assert(io.popen("lua5.4 " .. script .. " 2>&1"))
  local out = p:read("a")
  p:close()
  os.remove(script)
  local kb = out:match("HWM (%d+)")
  assert(kb, "child failed: " .. out)
  return tonumber(kb), out
end

return helpers
