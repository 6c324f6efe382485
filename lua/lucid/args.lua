-- lucid.args: argument handling shared by lucid's Lua modules (lucid.nn, lucid.optim,
-- lucid.data, lucid.serialize), as /work/shared/lua-api.md fixes it: positional arguments
-- and/or one trailing options table, any parameter by name, an unknown key an error naming it.
-- Internal: not part of the public API.
local M = {}

local mtype = math.type

local nn_core = require "lucid.nn_core"

-- Raises "lucid.<message>" (fmt starts with the function's name: "nn.Linear: ...") at the
-- user's call, through the binding's raise (src/lua/args.c): one dialect for Lua and C.
local raise = nn_core.raise
function M.fail(fmt, ...) raise(string.format(fmt, ...)) end
local fail = M.fail

-- A value as messages describe it: "tensor", "Linear" (a module's type), "number 1.5", "table".
function M.describe(v)
  if type(v) == "userdata" then
    -- lucid's metatables are sealed: getmetatable(v) is their name ("lucid.Tensor")
    local name = getmetatable(v)
    if name == "lucid.Tensor" then return "tensor" end
    if name == "lucid.Module" then return nn_core.type_name(v) end
  end
  if mtype(v) then return "number " .. tostring(v) end
  return type(v)
end
local describe = M.describe

-- A function, a lucid module (its sealed metatable has __call) or a value whose open
-- metatable has __call.
function M.callable(f)
  if type(f) == "function" or nn_core.is_module(f) then return true end
  local mt = getmetatable(f)
  return type(mt) == "table" and mt.__call ~= nil
end

-- The parsing itself is the binding's one parser (src/lua/args.c, lb_collect_args), shared
-- with every C-bound function: one rule for "a trailing table is options", one set of messages.
local collect_args = nn_core.collect_args

-- Collects fname's arguments: positional values (params, in order), then an optional trailing
-- options table whose keys may be params or names in extra (accepted by name only). A trailing
-- empty table is an empty options table unless tabled (one of fname's parameters takes a
-- table, so {} there is a value). Returns a table name -> value.
function M.collect(fname, params, extra, tabled, ...)
  return collect_args(fname, params, extra, not tabled, ...)
end

-- M.collect with no name-only options.
function M.args(fname, params, ...) return collect_args(fname, params, nil, true, ...) end

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

-- A number, or default when nil (a type conversion only: the value's rules are the op's, in
-- C). what names the accepted types in the message ("a number" unless given).
function M.num_arg(fname, name, v, default, what)
  if v == nil then return default end
  if type(v) ~= "number" then
    fail("%s: %s must be %s, got %s", fname, name, what or "a number", describe(v))
  end
  return v
end

-- A boolean, or default when nil.
function M.bool_arg(fname, name, v, default)
  if v == nil then return default end
  if type(v) ~= "boolean" then fail("%s: %s must be a boolean, got %s", fname, name, describe(v)) end
  return v
end

return M
