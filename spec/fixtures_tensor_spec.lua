-- Checks lucid's tensor ops against PyTorch's results (spec/fixtures/tensor_ops.lua, written by
-- tools/make-fixtures.py; see its header for the case format). Values and gradients of float32
-- results must be within a relative error of 1e-5 (absolute 1e-6 near zero) of PyTorch's.
local lucid = require "lucid"

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local cases = dofile(here .. "fixtures/tensor_ops.lua")

local TOL = { float32 = { rel = 1e-5, abs = 1e-6 }, float64 = { rel = 1e-10, abs = 1e-12 } }

-- flat data + shape -> nested Lua tables, as lucid.Tensor takes them
local function nest(data, shape, dim, offset)
  local n, out = shape[dim], {}
  if dim == #shape then
    for i = 1, n do out[i] = data[offset + i] end
    return out
  end
  local step = 1
  for d = dim + 1, #shape do step = step * shape[d] end
  for i = 1, n do out[i] = nest(data, shape, dim + 1, offset + (i - 1) * step) end
  return out
end

local function make(spec)
  local opts = { dtype = spec.dtype, requires_grad = spec.requires_grad or nil }
  if #spec.shape == 0 then return lucid.Tensor(spec.data[1], opts) end
  return lucid.Tensor(nest(spec.data, spec.shape, 1, 0), opts)
end

local function flatten(t)
  if t:dim() == 0 then return { t:item() } end
  local out = {}
  local function walk(x)
    if type(x) == "table" then
      for _, v in ipairs(x) do walk(v) end
    else
      out[#out + 1] = x
    end
  end
  walk(t:tolist())
  return out
end

local function fmt_shape(s) return "{" .. table.concat(s, ", ") .. "}" end

-- nil when t matches spec, else a message
local function mismatch(t, spec)
  if type(t) ~= "userdata" then return "expected a tensor, got " .. type(t) end
  if t.dtype ~= spec.dtype then return ("dtype %s, expected %s"):format(t.dtype, spec.dtype) end
  local shape = t.shape
  if fmt_shape(shape) ~= fmt_shape(spec.shape) then
    return ("shape %s, expected %s"):format(fmt_shape(shape), fmt_shape(spec.shape))
  end
  local got, tol = flatten(t), TOL[spec.dtype]
  if #got ~= #spec.data then return ("%d elements, expected %d"):format(#got, #spec.data) end
  for i, want in ipairs(spec.data) do
    local v, ok = got[i], nil
    if tol then
      ok = (v ~= v and want ~= want) or v == want
        or math.abs(v - want) <= math.max(tol.abs, tol.rel * math.abs(want))
    else
      ok = v == want
    end
    if not ok then
      return ("element %d (flat, 1-based) is %s, expected %s"):format(i, tostring(v), tostring(want))
    end
  end
end

local OPERATORS = {
  ["+"] = function(a, b) return a + b end,
  ["-"] = function(a, b) return a - b end,
  ["*"] = function(a, b) return a * b end,
  ["/"] = function(a, b) return a / b end,
  ["^"] = function(a, b) return a ^ b end,
  unm = function(a) return -a end,
}

local function run(c)
  local leaves, used = {}, {}
  for i, spec in ipairs(c.inputs) do
    leaves[i] = make(spec)
    -- pre = "t": the op runs on transposed (non-contiguous) views of the float inputs
    used[i] = (c.pre == "t" and spec.dtype:match("^float")) and leaves[i]:t() or leaves[i]
  end
  local args = {}
  for i = 1, c.args.n do
    local v = c.args[i]
    if type(v) == "table" then
      if v.t then
        v = used[v.t]
      elseif v.list then
        local list = {}
        for k, j in ipairs(v.list) do list[k] = used[j] end
        v = list
      elseif v.opts then
        v = v.opts
      end -- else a plain table of numbers (several dims), passed as it is
    end
    args[i] = v
  end
  local f
  if c.call == "method" then
    f = args[1][c.fn]
  elseif c.call == "function" then
    f = lucid[c.fn]
  else
    f = OPERATORS[c.fn]
  end
  assert(f, c.call .. " " .. c.fn .. " does not exist")
  local outs = table.pack(f(table.unpack(args, 1, c.args.n)))
  for k, spec in ipairs(c.expected) do
    local msg = mismatch(outs[k], spec)
    if msg then error(("%s: result %d: %s"):format(c.name, k, msg), 0) end
  end
  if c.grads then
    local loss = (outs[1] * make(c.w)):sum()
    loss:backward()
    for i, g in ipairs(c.grads) do
      if g then
        local grad = leaves[i].grad
        if grad == nil then error(("%s: input %d has no .grad"):format(c.name, i), 0) end
        local msg = mismatch(grad, g)
        if msg then error(("%s: gradient of input %d: %s"):format(c.name, i, msg), 0) end
      end
    end
  end
end

describe("tensor ops match PyTorch", function()
  it("has the fixture cases", function()
    assert.is_true(#cases > 300)
  end)
  for _, c in ipairs(cases) do
    it(c.name .. (c.grads and " (values and gradients)" or ""), function()
      run(c)
    end)
  end
end)
