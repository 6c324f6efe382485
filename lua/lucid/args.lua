-- lucid.args: argument handling shared by lucid's Lua modules (lucid.nn, lucid.optim,
-- lucid.data, lucid.serialize), as /work/shared/lua-api.md fixes it: positional arguments
-- and/or one trailing options table, any parameter by name, an unknown key an error naming it.
-- Internal: not part of the public API.
local M = {}

local mtype = math.type

-- Raises msg without a position: lucid's messages name the function themselves.
function M.fail(fmt, ...) error(string.format(fmt, ...), 0) end
local fail = M.fail

-- A value as messages describe it: "tensor", "Linear" (a module's type), "number 1.5", "table".
function M.describe(v)
  if type(v) == "userdata" then
    local mt = getmetatable(v)
    local name = type(mt) == "table" and mt.__name or nil
    if name == "lucid.Tensor" then return "tensor" end
    if name == "lucid.Module" then return require("lucid.nn_core").type_name(v) end
  end
  if mtype(v) then return "number " .. tostring(v) end
  return type(v)
end
local describe = M.describe

-- The default rule for a trailing table: options when it is a plain table (no metatable: not
-- a tensor, module, dataset or optimizer) whose keys are all strings, or an empty one; a table
-- with integer keys is a positional value (a kernel size {3, 5}, a list of sizes).
function M.is_options(v)
  if type(v) ~= "table" or getmetatable(v) ~= nil then return false end
  for k in pairs(v) do
    if type(k) ~= "string" then return false end
  end
  return true
end

-- Collects fname's arguments: positional values (params, in order), then an optional trailing
-- options table (is_opt(v, position) decides; default M.is_options) whose keys may be params
-- or names in extra (accepted by name only). Returns a table name -> value.
function M.collect(fname, params, extra, is_opt, ...)
  is_opt = is_opt or M.is_options
  local n = select("#", ...)
  local a = {...}
  local o
  if n > 0 and is_opt(a[n], n) then
    o = a[n]
    n = n - 1
  end
  if n > #params then
    fail("%s: expected at most %d positional arguments, got %d", fname, #params, n)
  end
  local r = {}
  for i = 1, n do r[params[i]] = a[i] end
  if o then
    local known, list = {}, {}
    for _, p in ipairs(params) do known[p] = true; list[#list + 1] = p end
    for _, p in ipairs(extra or {}) do known[p] = true; list[#list + 1] = p end
    for k, v in pairs(o) do
      if not known[k] then
        fail("%s: unknown option '%s' (expected one of: %s)", fname, tostring(k),
          table.concat(list, ", "))
      end
      if r[k] ~= nil then fail("%s: %s given twice (positionally and by name)", fname, k) end
      r[k] = v
    end
  end
  return r
end

-- M.collect with the default rule and no name-only options.
function M.args(fname, params, ...) return M.collect(fname, params, nil, nil, ...) end

-- An integer (a float with an integral value is accepted); nil is a missing argument.
function M.int_arg(fname, name, v, min)
  if v == nil then fail("%s: missing argument %s", fname, name) end
  if mtype(v) ~= "integer" then
    local iv = mtype(v) == "float" and v == math.floor(v) and math.tointeger(v)
    if not iv then fail("%s: %s must be an integer, got %s", fname, name, describe(v)) end
    v = iv
  end
  if min and v < min then fail("%s: %s must be >= %d, got %d", fname, name, min, v) end
  return v
end

-- A boolean, or default when nil.
function M.bool_arg(fname, name, v, default)
  if v == nil then return default end
  if type(v) ~= "boolean" then fail("%s: %s must be a boolean, got %s", fname, name, describe(v)) end
  return v
end

return M
