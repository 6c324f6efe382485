-- lucid: tensors and autograd for Lua 5.4, with a PyTorch-like API.
--   local lucid = require "lucid"
-- The C functions live in "lucid.core" (src/lua); this file assembles the public table.
-- See docs/tensor.md and docs/autograd.md.
local core = require "lucid.core"

local lucid = {}

for name, fn in pairs(core) do
  -- "_methods" and other internals stay in core; "grad" is lucid.autograd.grad
  if type(name) == "string" and name:sub(1, 1) ~= "_" and name ~= "grad" then
    lucid[name] = fn
  end
end

lucid._VERSION = core._VERSION

-- lucid.Tensor(data [, opts]) creates a tensor; lucid.Tensor.sum(t) etc. reach the methods.
lucid.Tensor = setmetatable({}, {
  __call = function(_, ...) return core.Tensor(...) end,
  __index = core._methods,
  __newindex = function() error("lucid.Tensor: the method table is read-only", 2) end,
  __tostring = function() return "lucid.Tensor" end,
})

-- dtype names, as torch.float32 etc.
lucid.float32, lucid.float64, lucid.int32, lucid.int64, lucid.bool =
  "float32", "float64", "int32", "int64", "bool"
lucid.float, lucid.double, lucid.int, lucid.long = "float32", "float64", "int32", "int64"
lucid.float16, lucid.half, lucid.bfloat16 = "float16", "float16", "bfloat16"

local callable = require("lucid.args").callable

-- Runs fn(...) with grad mode set to `mode`, restoring the previous mode afterwards, also when
-- fn raises (the error is re-raised unchanged).
local function with_grad_mode(name, mode, fn, ...)
  if fn == nil then
    -- local guard <close> = lucid.no_grad(): the mode is restored when the guard goes out of
    -- scope.
    local prev = core.set_grad_enabled(mode)
    return setmetatable({}, {
      __close = function() core.set_grad_enabled(prev) end,
      __name = "lucid.grad_mode_guard",
    })
  end
  if not callable(fn) then
    error(("lucid.%s: argument 1 (fn): expected a function, got %s"):format(name, type(fn)), 3)
  end
  local prev = core.set_grad_enabled(mode)
  local r = table.pack(pcall(fn, ...))
  core.set_grad_enabled(prev)
  if not r[1] then error(r[2], 0) end
  return table.unpack(r, 2, r.n)
end

function lucid.no_grad(fn, ...) return with_grad_mode("no_grad", false, fn, ...) end
function lucid.enable_grad(fn, ...) return with_grad_mode("enable_grad", true, fn, ...) end

lucid.autograd = require "lucid.autograd"

-- lucid.save / lucid.load: checkpoints in the safetensors format (lua/lucid/serialize.lua).
local serialize = require "lucid.serialize"
lucid.save, lucid.load = serialize.save, serialize.load
-- the host's file access policy (src/io/policy.c; docs/embedding.md, "Sandboxing file access")
lucid.set_file_policy, lucid.file_policy_locked = core._io.set_file_policy, core._io.file_policy_locked
lucid.serialize = serialize

-- Sub-packages written elsewhere (lucid.nn, lucid.optim, lucid.data) load on first use, so
-- `require "lucid"` stays cheap and they may require "lucid" themselves. `lucid.nn` and
-- `require "lucid.nn"` are the same table. A sub-package that is not installed reads as nil.
local lazy = {nn = true, optim = true, data = true, onnx = true}
setmetatable(lucid, {
  __index = function(t, k)
    if not lazy[k] then return nil end
    local name = "lucid." .. k
    if package.loaded[name] == nil and package.preload[name] == nil
        and package.searchpath(name, package.path) == nil then
      return nil
    end
    local m = require(name)
    rawset(t, k, m)
    return m
  end,
})

return lucid
