-- lucid.nn: modules. The module objects, built-in layers and containers (and every forward)
-- live in C (src/nn, bound by src/lua/nn_module.c as "lucid.nn_core"); this file adds the
-- Lua-facing constructors (positional arguments and/or an options table), the Module class
-- that Lua-defined modules extend, and the protocol methods. See docs/nn.md.
require "lucid.core" -- registers the preload of "lucid.nn_core"
local core = require "lucid.nn_core"

local nn = {}

local mtype = math.type
local is_module = core.is_module

local A = require "lucid.args"
local fail, describe, args = A.fail, A.describe, A.args
local int_arg, bool_arg = A.int_arg, A.bool_arg

local function iter(names, values)
  local i = 0
  return function()
    i = i + 1
    if names[i] ~= nil then return names[i], values[i] end
  end
end

-- ------------------------------------------------------------------ nn.Module

local Module = {__name = "Module"}
nn.Module = Module
core.set_class("Module", Module)

-- A class: callable (constructs), inherits from parent through __index.
local function class(name, parent, ctor)
  local cls = {__name = name, super = parent}
  return setmetatable(cls, {
    __index = parent,
    __call = function(c, ...) return ctor(c, ...) end,
    __tostring = function() return "nn." .. name end,
  })
end

local function lua_ctor(cls, ...)
  local self = core.new_lua_module(cls.__name, cls)
  local init = cls.init
  if init then init(self, ...) end
  return self
end

setmetatable(Module, {
  __call = lua_ctor,
  __tostring = function() return "nn.Module" end,
})

-- local Net = nn.Module:extend("Net"); function Net:init(...) ... end; function Net:forward(x)
function Module.extend(parent, name)
  if type(parent) ~= "table" then fail("extend: call it on a class: nn.Module:extend(\"Name\")") end
  if type(name) ~= "string" or name == "" then
    fail("extend: expected a class name (a non-empty string), got %s", describe(name))
  end
  return class(name, parent, lua_ctor)
end

function Module:init() end

-- Built-in kinds run their C forward; a Lua class defines its own.
function Module:forward(x) return core.forward(self, x) end

function Module:parameters(recurse)
  local _, ts = core.named_parameters(self, recurse ~= false)
  return ts
end
function Module:named_parameters(recurse) return iter(core.named_parameters(self, recurse ~= false)) end
function Module:buffers(recurse)
  local _, ts = core.named_buffers(self, recurse ~= false)
  return ts
end
function Module:named_buffers(recurse) return iter(core.named_buffers(self, recurse ~= false)) end
function Module:children()
  local _, ms = core.named_children(self)
  return ms
end
function Module:named_children() return iter(core.named_children(self)) end
function Module:modules()
  local _, ms = core.named_modules(self)
  return ms
end
function Module:named_modules() return iter(core.named_modules(self)) end
function Module:num_parameters() return core.num_parameters(self) end

-- Module hooks (docs/nn.md): each returns a handle with :remove().
-- hook(module, input) -> nil or a new input
function Module:register_forward_pre_hook(hook) return core.register_forward_pre_hook(self, hook) end
-- hook(module, input, output) -> nil or a new output
function Module:register_forward_hook(hook) return core.register_forward_hook(self, hook) end
-- hook(module, grad_input, grad_output) -> nil or a new grad_input
function Module:register_full_backward_hook(hook)
  return core.register_full_backward_hook(self, hook)
end

function Module:train(mode)
  core.train(self, bool_arg("train", "mode", mode, true))
  return self
end
function Module:eval()
  core.train(self, false)
  return self
end

-- zero_grad(), zero_grad(false), zero_grad{set_to_none = false}
function Module:zero_grad(opt)
  local none = true
  if type(opt) == "table" then
    none = bool_arg("zero_grad", "set_to_none", args("zero_grad", {"set_to_none"}, opt).set_to_none, true)
  elseif opt ~= nil then
    none = bool_arg("zero_grad", "set_to_none", opt, true)
  end
  core.zero_grad(self, none)
  return self
end

-- fn(module) on every descendant, then on self (children first, as PyTorch's apply)
function Module:apply(fn)
  if type(fn) ~= "function" then fail("apply: expected a function, got %s", describe(fn)) end
  for _, c in ipairs(self:children()) do c:apply(fn) end
  fn(self)
  return self
end

-- Re-initialises every built-in layer below self (in C), then calls the reset_parameters of
-- every Lua-defined module below self that defines its own (nn.Bilinear, user classes).
function Module:reset_parameters()
  core.reset_parameters(self)
  for _, m in ipairs(self:modules()) do
    if m ~= self and core.is_lua_module(m) and m.reset_parameters ~= Module.reset_parameters then
      m:reset_parameters()
    end
  end
  return self
end

function Module:register_parameter(name, t)
  core.register_parameter(self, name, t, "register_parameter")
  return self
end
function Module:register_buffer(name, t)
  core.register_buffer(self, name, t, "register_buffer")
  return self
end

function Module:add_module(name, m)
  if type(name) ~= "string" then fail("add_module: a name must be a string, got %s", describe(name)) end
  core.insert(self, nil, name, m, "add_module")
  return self
end

-- A state dict is an ordered list of {name, tensor} pairs; sd["fc1.weight"] looks a name up.
-- One metatable with lucid.load's state dicts (lua/lucid/serialize.lua).
local StateDict = require("lucid.serialize").StateDict

function Module:state_dict()
  local names, ts = core.state_dict(self)
  local sd = {}
  for i = 1, #names do sd[i] = {names[i], ts[i]} end
  return setmetatable(sd, StateDict)
end

-- sd: a list of {name, tensor} pairs (a state dict) and/or a table name -> tensor.
-- Returns missing, unexpected (lists of names); with strict (default) a mismatch is an error.
function Module:load_state_dict(sd, opt)
  if type(sd) ~= "table" then fail("load_state_dict: expected a table, got %s", describe(sd)) end
  local o = args("load_state_dict", {"strict"}, opt or {})
  local strict = bool_arg("load_state_dict", "strict", o.strict, true)
  local names, ts, seen = {}, {}, {}
  local function add(k, v)
    if type(k) ~= "string" then fail("load_state_dict: keys must be strings, got %s", describe(k)) end
    if seen[k] then fail("load_state_dict: key \"%s\" given twice", k) end
    seen[k] = true
    names[#names + 1], ts[#ts + 1] = k, v
  end
  for i, kv in ipairs(sd) do
    if type(kv) ~= "table" then
      fail("load_state_dict: entry %d must be a {name, tensor} pair, got %s", i, describe(kv))
    end
    add(kv[1], kv[2])
  end
  for k, v in next, sd do
    if mtype(k) ~= "integer" then add(k, v) end
  end
  return core.load_state_dict(self, names, ts, strict)
end


function Module:type() return core.type_name(self) end

-- to("float64"), to{dtype = "float64"}, to(lucid.float64): converts parameters and buffers in
-- place (see lc_module_to_dtype) and returns self. double() and float() are shorthands.
function Module:to(dtype)
  if type(dtype) == "table" and not is_module(dtype) then
    for k in pairs(dtype) do
      if k ~= "dtype" then fail("to: unknown option '%s' (expected dtype)", tostring(k)) end
    end
    dtype = dtype.dtype
  end
  if type(dtype) ~= "string" then fail("to: expected a dtype name such as \"float64\", got %s", describe(dtype)) end
  return core.to_dtype(self, dtype)
end
function Module:double() return self:to("float64") end
-- half() and bfloat16(): parameters and buffers in float16 / bfloat16 for inference (they do not
-- require grad; float() or double() makes them trainable again)
function Module:half() return self:to("float16") end
function Module:bfloat16() return self:to("bfloat16") end
function Module:float() return self:to("float32") end

-- ------------------------------------------------------------------ built-in layers

local function builtin(name, params, make)
  local cls = class(name, Module, function(_, ...)
    return make(args("nn." .. name, params, ...))
  end)
  core.set_class(name, cls)
  nn[name] = cls
  return cls
end

-- The constructors convert types; the values' rules are the C constructors' (lc_nn_linear: sizes
-- >= 0), whose messages users see.
builtin("Linear", {"in_features", "out_features", "bias"}, function(a)
  local f = "nn.Linear"
  return core.linear(int_arg(f, "in_features", a.in_features),
    int_arg(f, "out_features", a.out_features), bool_arg(f, "bias", a.bias, true))
end)
builtin("Identity", {}, function() return core.identity() end)
builtin("ReLU", {"inplace"}, function(a)
  bool_arg("nn.ReLU", "inplace", a.inplace, false)
  return core.relu()
end)
builtin("Tanh", {}, function() return core.tanh() end)
builtin("Sigmoid", {}, function() return core.sigmoid() end)
builtin("Flatten", {"start_dim", "end_dim"}, function(a)
  local s = a.start_dim == nil and 2 or int_arg("nn.Flatten", "start_dim", a.start_dim)
  local e = a.end_dim == nil and -1 or int_arg("nn.Flatten", "end_dim", a.end_dim)
  return core.flatten(s, e)
end)
local function unflatten(a)
  local f = "nn.Unflatten"
  if a.dim == nil then fail("%s: missing argument dim", f) end
  local d = a.dim -- 1-based: the binding converts it
  return core.unflatten(d, a.unflattened_size) -- read and checked in C
end
-- unflattened_size is a table itself: a trailing {} is a value, not options (tabled)
local Unflatten = class("Unflatten", Module, function(_, ...)
  return unflatten(A.collect("nn.Unflatten", {"dim", "unflattened_size"}, nil, true, ...))
end)
core.set_class("Unflatten", Unflatten)
nn.Unflatten = Unflatten

-- ------------------------------------------------------------------ containers

-- Adds the entries of an ordered list: modules (positional) or {name, module} pairs.
local function fill(fname, c, list, allow_positional)
  for k in pairs(list) do
    if mtype(k) ~= "integer" or k < 1 or k > #list then
      fail("%s: a table with string keys has no order: pass a list of {name, module} pairs, " ..
        "e.g. {{\"fc1\", m1}, {\"act\", m2}}", fname)
    end
  end
  for i, e in ipairs(list) do
    if is_module(e) then
      if not allow_positional then
        fail("%s: entry %d must be a {name, module} pair, got %s", fname, i, describe(e))
      end
      core.insert(c, nil, nil, e, fname)
    elseif type(e) == "table" then
      if type(e[1]) ~= "string" then
        fail("%s: entry %d: a name must be a string, got %s", fname, i, describe(e[1]))
      end
      if not is_module(e[2]) then
        fail("%s: entry %d (\"%s\") is not a module: got %s", fname, i, e[1], describe(e[2]))
      end
      core.insert(c, nil, e[1], e[2], fname)
    else
      fail("%s: entry %d must be a module or a {name, module} pair, got %s", fname, i, describe(e))
    end
  end
  return c
end

local Indexed = {} -- methods shared by Sequential and ModuleList

function Indexed:append(m)
  core.insert(self, nil, nil, m, core.type_name(self) .. ":append")
  return self
end

function Indexed:extend(list)
  local f = core.type_name(self) .. ":extend"
  if type(list) ~= "table" and not is_module(list) then
    fail("%s: expected a list of modules, got %s", f, describe(list))
  end
  -- copy first: extending a container by itself must not loop
  local ms = {}
  for i, m in ipairs(list) do
    if not is_module(m) then fail("%s: entry %d is not a module: got %s", f, i, describe(m)) end
    ms[i] = m
  end
  for _, m in ipairs(ms) do core.insert(self, nil, nil, m, f) end
  return self
end

-- insert(i, m): m becomes entry i (1-based; negative from the end; #self + 1 appends)
function Indexed:insert(i, m)
  local f = core.type_name(self) .. ":insert"
  if i == nil then fail("%s: index must be an integer, got nil", f) end
  core.insert(self, i, nil, m, f)
  return self
end

-- pop([i]): removes and returns entry i (default: the last)
function Indexed:pop(i)
  local f = core.type_name(self) .. ":pop"
  return core.pop(self, i, f)
end

-- slice(i [, j]): a new container of entries i..j (inclusive, 1-based, negative from the end;
-- j defaults to -1), holding the same module objects
function Indexed:slice(i, j)
  return core.slice(self, i, j, core.type_name(self) .. ":slice")
end

local function with(cls, methods)
  for k, v in pairs(methods) do cls[k] = v end
  return cls
end

local Sequential = with(class("Sequential", Module, function(_, ...)
  local f = "nn.Sequential"
  local c = core.container("Sequential")
  local n = select("#", ...)
  local first = ...
  if n == 1 and type(first) == "table" and not is_module(first) then return fill(f, c, first, true) end
  for i = 1, n do
    local m = select(i, ...)
    if not is_module(m) then fail("%s: argument %d is not a module: got %s", f, i, describe(m)) end
    core.insert(c, nil, nil, m, f)
  end
  return c
end), Indexed)
nn.Sequential = Sequential
core.set_class("Sequential", Sequential)

local ModuleList = with(class("ModuleList", Module, function(_, list, ...)
  local f = "nn.ModuleList"
  if select("#", ...) > 0 then fail("%s: expected one list of modules", f) end
  local c = core.container("ModuleList")
  if list == nil then return c end
  if type(list) ~= "table" then fail("%s: expected a list of modules, got %s", f, describe(list)) end
  for k in pairs(list) do
    if mtype(k) ~= "integer" then fail("%s: expected a list of modules, got a table with key %s", f, tostring(k)) end
  end
  for i, m in ipairs(list) do
    if not is_module(m) then fail("%s: entry %d is not a module: got %s", f, i, describe(m)) end
    core.insert(c, nil, nil, m, f)
  end
  return c
end), Indexed)
nn.ModuleList = ModuleList
core.set_class("ModuleList", ModuleList)

local ModuleDict = class("ModuleDict", Module, function(_, list, ...)
  local f = "nn.ModuleDict"
  if select("#", ...) > 0 then fail("%s: expected one list of {name, module} pairs", f) end
  local c = core.container("ModuleDict")
  if list == nil then return c end
  if type(list) ~= "table" then fail("%s: expected a list of {name, module} pairs, got %s", f, describe(list)) end
  return fill(f, c, list, false)
end)
nn.ModuleDict = ModuleDict
core.set_class("ModuleDict", ModuleDict)

function ModuleDict:keys()
  local names = core.named_children(self)
  return names
end
function ModuleDict:values() return self:children() end
function ModuleDict:items() return self:named_children() end
-- update(list of {name, module} pairs): adds or replaces by name
function ModuleDict:update(list)
  if not is_module(self) then fail("ModuleDict:update: expected a ModuleDict, got %s", describe(self)) end
  if type(list) ~= "table" then
    fail("ModuleDict:update: expected a list of {name, module} pairs, got %s", describe(list))
  end
  for i, e in ipairs(list) do
    if type(e) ~= "table" or not is_module(e[2]) then
      fail("ModuleDict:update: entry %d must be a {name, module} pair", i)
    end
    self[e[1]] = e[2]
  end
  return self
end
function ModuleDict:pop(name)
  local m = self[name]
  if not is_module(m) then fail("ModuleDict:pop: no module named \"%s\"", tostring(name)) end
  core.remove(self, name)
  return m
end

-- ------------------------------------------------------------------ helpers

-- nn.Parameter(t): a new leaf sharing t's data that requires grad
nn.Parameter = core.parameter
nn.is_module = is_module

-- ------------------------------------------------------------------ layer families

-- nn.functional (also nn.F): tensor functions, filled by the family files below.
nn.functional = {}
nn.F = nn.functional

-- What the family files (lua/lucid/nn/*.lua) share with this one. Each returns a function
-- install(nn, P) that adds its classes to nn and its functions to nn.functional.
local P = {
  core = core,                           -- "lucid.nn_core": module functions and constructors
  tcore = require "lucid.core",          -- "lucid.core": tensor functions; tcore._F the nn ones
  F = nn.functional,
  Module = Module,
  fail = fail,                           -- error without position: fail(fmt, ...)
  describe = describe,                   -- a value's description for messages
  args = args,                           -- args(fname, params, ...) -> name -> value
  int_arg = int_arg,                     -- int_arg(fname, name, v [, min])
  num_arg = A.num_arg,                   -- num_arg(fname, name, v, default [, what])
  bool_arg = bool_arg,                   -- bool_arg(fname, name, v, default)
  class = class,                         -- class(name, parent, ctor)
  builtin = builtin,                     -- builtin(name, params, make(a) -> C module)
  lua_ctor = lua_ctor,                   -- the constructor of Lua-defined modules
}
nn._P = P

for _, family in ipairs{"activation", "linear", "dropout", "embedding", "loss", "conv", "norm", "interpolate", "attention", "initializers", "utils", "rnn", "transformer", "parallel"} do
  require("lucid.nn." .. family)(nn, P)
end

return nn
