-- lucid.autograd: grad (C, from lucid.core) and gradcheck (numerical gradient checking).
local core = require "lucid.core"

local autograd = {}

-- autograd.grad(outputs, inputs [, {grad_outputs =, retain_graph =, create_graph =,
-- allow_unused =}])
-- returns a table of gradients, one per input ({n = #inputs}; nil entries for unused inputs
-- when allow_unused).
autograd.grad = core.grad

-- autograd.queue_callback(fn): fn() runs once at the end of the backward running now (call it
-- from a hook or a Function's backward), after the pass's last node and leaf hook, before
-- backward returns; PyTorch's Variable._execution_engine.queue_callback. See docs/autograd.md.
autograd.queue_callback = core._queue_callback

-- autograd.set_grad_buffer(leaf, buffer | nil): when a backward delivers leaf's first gradient
-- while leaf.grad is nil, an op that can (Linear's weight and bias) writes it straight into
-- buffer (contiguous, leaf's shape and dtype), which becomes leaf.grad: no fresh tensor, no
-- copy. Other ops' gradients are stored as usual. DistributedDataParallel uses it to compute
-- gradients inside its communication buckets. nil removes it. See docs/autograd.md.
autograd.set_grad_buffer = core._set_grad_buffer

local FN = "lucid.autograd.gradcheck"

local callable = require("lucid.args").callable

-- Fixed pseudo-random weights in [0.5, 1.5): the same for every call, and the global RNG is
-- left alone.
local function weights(shape)
  local n = 1
  for _, s in ipairs(shape) do n = n * s end
  local w, state = {}, 12345
  for i = 1, n do
    state = (state * 1103515245 + 12345) % 2147483648
    w[i] = 0.5 + state / 2147483648
  end
  return core.tensor(w, {dtype = "float64"}):reshape(shape)
end

-- 1-based multi-index of flat (0-based, C order) position k in shape.
local function unflatten(k, shape)
  local idx = {}
  for d = #shape, 1, -1 do
    idx[d] = k % shape[d] + 1
    k = k // shape[d]
  end
  return idx
end

local function has_overlap(t)
  local sh, st = t.shape, t:stride()
  for d = 1, #sh do
    if st[d] == 0 and sh[d] > 1 then return true end
  end
  return false
end

local function flat_values(t)
  local l = t:reshape(-1):tolist()
  return l
end

-- gradcheck(fn, inputs [, {eps = 1e-6, atol = 1e-5, rtol = 1e-3}]): compares the gradients
-- autograd computes for fn at `inputs` (a tensor or a list of tensors, used as float64 leaves)
-- with central finite differences of sum(fn(...) * w) for fixed weights w. Returns true, or
-- raises an error naming the input and the worst element.
function autograd.gradcheck(fn, inputs, opts)
  if not callable(fn) then
    error(("%s: argument 1 (fn): expected a function, got %s"):format(FN, type(fn)), 2)
  end
  if core.is_tensor(inputs) then inputs = {inputs} end
  if type(inputs) ~= "table" then
    error(("%s: argument 2 (inputs): expected a tensor or a table of tensors, got %s")
      :format(FN, type(inputs)), 2)
  end
  opts = opts or {}
  if type(opts) ~= "table" then
    error(("%s: argument 3 (opts): expected a table, got %s"):format(FN, type(opts)), 2)
  end
  for k in pairs(opts) do
    if k ~= "eps" and k ~= "atol" and k ~= "rtol" then
      error(("%s: unknown option '%s' (expected one of: eps, atol, rtol)"):format(FN, tostring(k)), 2)
    end
  end
  local eps, atol, rtol = opts.eps or 1e-6, opts.atol or 1e-5, opts.rtol or 1e-3

  local n = #inputs
  local xs, raws = {}, {}
  for i = 1, n do
    local x = inputs[i]
    if not core.is_tensor(x) then
      error(("%s: argument 2 (inputs): entry [%d] is a %s, expected a tensor"):format(FN, i, type(x)), 2)
    end
    local d = x:detach()
    if d.dtype ~= "float64" then d = d:to("float64") end
    -- an expanded input aliases its elements: perturbing one would move several
    if has_overlap(d) then d = d:clone() end
    raws[i] = d -- perturbed in place (no autograd history, shares storage with xs[i])
    xs[i] = d:detach():requires_grad_()
  end

  local out = fn(table.unpack(xs, 1, n))
  if not core.is_tensor(out) then
    error(("%s: fn must return a tensor, got %s"):format(FN, type(out)), 2)
  end
  local w = weights(out.shape)
  local function objective(o) return (o:to("float64") * w):sum() end
  local s = objective(out)
  local analytic = {}
  if s.requires_grad then
    analytic = core.grad(s, xs, nil, false, false, true)
  end

  local prev = core.set_grad_enabled(false)
  local ok, err = pcall(function()
    for i = 1, n do
      local x, raw = xs[i], raws[i]
      local shape, numel = x.shape, x:numel()
      local a = analytic[i] and flat_values(analytic[i]) or {}
      local worst, worst_k, worst_a, worst_n = 0, nil, nil, nil
      for k = 0, numel - 1 do
        local idx = unflatten(k, shape)
        local orig = raw[idx]:item()
        raw[idx] = orig + eps
        local fp = objective(fn(table.unpack(xs, 1, n))):item()
        raw[idx] = orig - eps
        local fm = objective(fn(table.unpack(xs, 1, n))):item()
        raw[idx] = orig
        local num = (fp - fm) / (2 * eps)
        local an = a[k + 1] or 0
        local excess = math.abs(an - num) - (atol + rtol * math.abs(num))
        if excess > worst or (an ~= an) ~= (num ~= num) then
          worst, worst_k, worst_a, worst_n = excess, k, an, num
          if an ~= an or num ~= num then worst = math.huge end
        end
      end
      if worst_k then
        local idx = unflatten(worst_k, shape)
        error(("%s: gradient mismatch for input %d at element [%s]: analytic %.10g vs numeric %.10g"
          .. " (atol %g, rtol %g)"):format(FN, i, table.concat(idx, ", "), worst_a, worst_n,
          atol, rtol), 0)
      end
    end
  end)
  core.set_grad_enabled(prev)
  if not ok then error(err, 0) end
  return true
end

local GG = "lucid.autograd.gradgradcheck"

-- gradgradcheck(fn, inputs [, grad_outputs] [, {eps =, atol =, rtol =}]): checks second-order
-- gradients as PyTorch's does: the function (inputs, v) -> grad(fn(inputs), inputs, v,
-- create_graph) is checked by gradcheck with respect to both the inputs and v (the
-- grad_outputs, fixed weights by default). Every input must be a float64-able tensor; fn must
-- return one tensor.
function autograd.gradgradcheck(fn, inputs, grad_outputs, opts)
  if not callable(fn) then
    error(("%s: argument 1 (fn): expected a function, got %s"):format(GG, type(fn)), 2)
  end
  if core.is_tensor(inputs) then inputs = {inputs} end
  if type(inputs) ~= "table" then
    error(("%s: argument 2 (inputs): expected a tensor or a table of tensors, got %s")
      :format(GG, type(inputs)), 2)
  end
  if opts == nil and type(grad_outputs) == "table" and not core.is_tensor(grad_outputs)
      and grad_outputs[1] == nil then
    opts, grad_outputs = grad_outputs, nil -- gradgradcheck(fn, inputs, opts)
  end
  local n = #inputs
  local xs = {}
  for i = 1, n do
    if not core.is_tensor(inputs[i]) then
      error(("%s: argument 2 (inputs): entry [%d] is a %s, expected a tensor")
        :format(GG, i, type(inputs[i])), 2)
    end
    xs[i] = inputs[i]:detach():to("float64")
  end
  local v = grad_outputs
  if v == nil then
    local probe = core.set_grad_enabled(false)
    local ok, out = pcall(fn, table.unpack(xs, 1, n))
    core.set_grad_enabled(probe)
    if not ok then error(out, 0) end
    if not core.is_tensor(out) then
      error(("%s: fn must return a tensor, got %s"):format(GG, type(out)), 2)
    end
    v = weights(out.shape)
  elseif not core.is_tensor(v) then
    error(("%s: argument 3 (grad_outputs): expected a tensor, got %s"):format(GG, type(v)), 2)
  end
  v = v:detach():to("float64")
  -- (x..., v) -> the input gradients, flattened and joined into one tensor
  local function first_order(...)
    local args = table.pack(...)
    local ins, gv = {}, args[n + 1]
    for i = 1, n do ins[i] = args[i] end
    -- gradcheck evaluates its function with grad mode off; the first-order gradient needs it
    local prev = core.set_grad_enabled(true)
    local ok, out = pcall(fn, table.unpack(ins, 1, n))
    local gs
    if ok and core.is_tensor(out) then
      ok, gs = pcall(core.grad, out, ins, {gv}, true, true, true)
    end
    core.set_grad_enabled(prev)
    if not ok then error(gs or out, 0) end
    if not gs then error(("%s: fn must return a tensor, got %s"):format(GG, type(out)), 0) end
    local flat = {}
    for i = 1, n do
      local g = gs[i] or ins[i]:detach():mul(0)
      flat[i] = g:reshape(-1)
    end
    return core.cat(flat, 1)
  end
  local all = {}
  for i = 1, n do all[i] = xs[i]:detach():requires_grad_() end
  all[n + 1] = v:detach():requires_grad_()
  -- The recorded gradient must equal the plain one (gradcheck below only proves that the
  -- recorded gradient is consistent with its own derivative).
  local plain_ins = {}
  for i = 1, n do plain_ins[i] = xs[i]:detach():requires_grad_() end
  local plain = core.grad(fn(table.unpack(plain_ins, 1, n)), plain_ins, {v}, false, false, true)
  local recorded = first_order(table.unpack(all, 1, n + 1))
  local off, o = 0, opts or {}
  local atol, rtol = o.atol or 1e-5, o.rtol or 1e-3
  for i = 1, n do
    local want = (plain[i] or xs[i]:mul(0)):reshape(-1)
    local got = recorded:narrow(1, off + 1, want:numel())
    off = off + want:numel()
    local diff = ((got - want):abs() - (want:abs() * rtol + atol)):max():item()
    if want:numel() > 0 and diff > 0 then
      error(("%s: the create_graph gradient of input %d differs from the plain gradient (by %.3g "
        .. "beyond atol %g, rtol %g)"):format(GG, i, diff, atol, rtol), 2)
    end
  end
  return autograd.gradcheck(first_order, all, opts)
end

-- ---------------------------------------------------------------- custom functions
-- lucid.autograd.Function{name =, forward = function(ctx, ...) end, backward = function(ctx,
-- grad_out...) end} (PyTorch's torch.autograd.Function). Fn.apply(...), Fn:apply(...) and
-- Fn(...) run forward without recording, then join its tensor outputs to the graph as the
-- outputs of one node whose backward is the Lua backward (core._function_record,
-- src/lua/autograd.c). See docs/autograd.md.

local FNF = "lucid.autograd.Function"
local PRIV = setmetatable({}, {__tostring = function() return "private" end})

local Ctx = {}
Ctx.__index = Ctx
Ctx.__name = "lucid.autograd.FunctionCtx"

local function ctx_priv(ctx, what)
  local p = type(ctx) == "table" and rawget(ctx, PRIV)
  if not p then error(FNF .. ": ctx:" .. what .. " must be called as a method of the ctx", 3) end
  return p
end

local function tensor_args(what, ...)
  local n = select("#", ...)
  for i = 1, n do
    local t = select(i, ...)
    if t ~= nil and not core.is_tensor(t) then
      error(("%s: ctx:%s: argument %d: expected a tensor or nil, got %s"):format(FNF, what, i,
        type(t)), 3)
    end
  end
  return n
end

-- ctx:save_for_backward(...): tensors (or nils) for backward, read there as ctx.saved_tensors.
function Ctx.save_for_backward(ctx, ...)
  local p = ctx_priv(ctx, "save_for_backward")
  if not p.in_forward then error(FNF .. ": ctx:save_for_backward can only be called in forward", 2) end
  local n = tensor_args("save_for_backward", ...)
  p.saved = table.pack(...)
  p.saved.n = n
end

-- ctx:mark_dirty(...): inputs that forward modified in place (and returns).
function Ctx.mark_dirty(ctx, ...)
  local p = ctx_priv(ctx, "mark_dirty")
  tensor_args("mark_dirty", ...)
  for i = 1, select("#", ...) do
    local t = select(i, ...)
    if t ~= nil then p.dirty[t] = true end
  end
end

-- ctx:mark_non_differentiable(...): outputs that get no gradient (indices, masks).
function Ctx.mark_non_differentiable(ctx, ...)
  local p = ctx_priv(ctx, "mark_non_differentiable")
  tensor_args("mark_non_differentiable", ...)
  for i = 1, select("#", ...) do
    local t = select(i, ...)
    if t ~= nil then p.nondiff[t] = true end
  end
end

local Function = {}
Function.__index = Function
Function.__name = "lucid.autograd.Function"

local function apply(self, ...)
  local args = table.pack(...)
  if args.n >= 1 and rawequal(args[1], self) then -- Fn:apply(x)
    args = table.pack(select(2, ...))
  end
  local enabled = core.is_grad_enabled()
  local needs, inputs, pos, any = {}, {}, {}, false
  for i = 1, args.n do
    local a = args[i]
    if core.is_tensor(a) then
      inputs[#inputs + 1], pos[#pos + 1] = a, i
      needs[i] = enabled and a.requires_grad
      any = any or needs[i]
    else
      needs[i] = false
    end
  end
  local p = {saved = {n = 0}, dirty = {}, nondiff = {}, in_forward = true}
  local ctx = setmetatable({[PRIV] = p, needs_input_grad = needs}, Ctx)
  local prev = core.set_grad_enabled(false)
  local res = table.pack(pcall(self.forward, ctx, table.unpack(args, 1, args.n)))
  core.set_grad_enabled(prev)
  p.in_forward = false
  if not res[1] then error(res[2], 0) end

  local outs, touts, diff, is_input = {n = res.n - 1}, {}, {}, {}
  for _, t in ipairs(inputs) do is_input[t] = true end
  for k = 2, res.n do
    local o = res[k]
    if core.is_tensor(o) then
      if is_input[o] and not p.dirty[o] then
        o = o:detach() -- an input returned as is: an alias that takes the new history
      end
      touts[#touts + 1] = o
      diff[#touts] = not p.nondiff[res[k]]
    end
    outs[k - 1] = o
  end
  for t in pairs(p.dirty) do
    local returned = false
    for _, o in ipairs(touts) do returned = returned or rawequal(o, t) end
    if not returned then
      error(("%s %s: a tensor marked dirty (ctx:mark_dirty) must be returned by forward"):format(
        FNF, self.name), 2)
    end
  end
  if any and #touts > 0 then
    -- saved entries: the non-nil ones go to C, nils come back in their places
    local saved, where = {}, {}
    for i = 1, p.saved.n do
      if p.saved[i] ~= nil then saved[#saved + 1], where[#saved + 1] = p.saved[i], i end
    end
    local nsaved, name, backward = p.saved.n, self.name, self.backward
    local function bw(unpacked, ...)
      local st = {n = nsaved}
      for j, i in ipairs(where) do st[i] = unpacked[j] end
      rawset(ctx, "saved_tensors", st)
      local g = table.pack(backward(ctx, ...))
      local n = g.n
      while n > args.n and g[n] == nil do n = n - 1 end
      if n ~= args.n then
        error(("%s's backward returned an incorrect number of gradients (expected %d, one per "
          .. "forward argument, got %d)"):format(name, args.n, g.n), 0)
      end
      local r = {}
      for i = 1, args.n do
        if not core.is_tensor(args[i]) and g[i] ~= nil then
          error(("%s's backward returned a gradient different from nil at position %d, but "
            .. "forward argument %d is not a tensor"):format(name, i, i), 0)
        end
      end
      for j, i in ipairs(pos) do r[j] = g[i] end
      return table.unpack(r, 1, #pos)
    end
    core._function_record(name .. "Backward", bw, inputs, touts, diff, saved)
  end
  return table.unpack(outs, 1, outs.n)
end

Function.__call = apply
Function.__tostring = function(self) return "lucid.autograd.Function(" .. self.name .. ")" end

local FUNCTION_KEYS = {name = true, forward = true, backward = true}

-- lucid.autograd.Function{forward = f, backward = g [, name = "MyFn"]}
function autograd.Function(def)
  if type(def) ~= "table" then
    error(("%s: argument 1 (def): expected a table {forward =, backward =}, got %s"):format(FNF,
      type(def)), 2)
  end
  for k in pairs(def) do
    if not FUNCTION_KEYS[k] then
      error(("%s: unknown key '%s' (expected forward, backward, name)"):format(FNF, tostring(k)), 2)
    end
  end
  for _, k in ipairs{"forward", "backward"} do
    if not callable(def[k]) then
      error(("%s: %s: expected a function, got %s"):format(FNF, k, type(def[k])), 2)
    end
  end
  if def.name ~= nil and type(def.name) ~= "string" then
    error(("%s: name: expected a string, got %s"):format(FNF, type(def.name)), 2)
  end
  local fn = setmetatable({name = def.name or "Function", forward = def.forward,
    backward = def.backward}, Function)
  fn.apply = function(...) return apply(fn, ...) end
  return fn
end

return autograd
