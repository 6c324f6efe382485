-- lucid.autograd: grad (C, from lucid.core) and gradcheck (numerical gradient checking).
local core = require "lucid.core"

local autograd = {}

-- autograd.grad(outputs, inputs [, {grad_outputs =, retain_graph =, create_graph =,
-- allow_unused =}])
-- returns a table of gradients, one per input ({n = #inputs}; nil entries for unused inputs
-- when allow_unused).
autograd.grad = core.grad

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

return autograd
