-- lucid.nn.activation: activations and softmax.
-- Classes (nn.ReLU6, nn.LeakyReLU, ..., nn.LogSoftmax) and their
-- nn.functional functions. The C kinds live in src/nn/activation.c, the tensor functions in
-- src/ops/activation.c (bound by src/lua/nn_activation.c). Dims and indices are 1-based.
-- See docs/nn/activation.md.
return function(nn, P)
  local F, core, tcore = P.F, P.core, P.tcore
  local _F = tcore._F
  local fail, describe, args, bool_arg = P.fail, P.describe, P.args, P.bool_arg

  -- ---------------------------------------------------------------- classes (C kinds)

  -- The elementwise activations (ReLU6, LeakyReLU, ELU, GELU, SiLU, Mish, Softplus, Hardtanh):
  -- one class and one function per row of src/kernels/activation_list.h, built from the rows
  -- the binding hands over. Their arguments are read and checked in C.
  for _, row in ipairs(core.activations()) do
    local new = row.new
    local cls = P.class(row.module, P.Module, function(_, ...) return new(...) end)
    core.set_class(row.module, cls)
    nn[row.module] = cls
    F[row.name] = _F[row.name]
  end

  local function softmax_class(name, make)
    P.builtin(name, {"dim"}, function(a)
      local f = "nn." .. name
      if a.dim == nil then
        fail("%s: dim is required (e.g. nn.%s(-1) for the last dim, nn.%s(2) for classes of " ..
          "a {batch, classes} input)", f, name, name)
      end
      return make(a.dim) -- 1-based: the binding converts it
    end)
  end
  softmax_class("Softmax", core.softmax)
  softmax_class("LogSoftmax", core.log_softmax)

  -- ---------------------------------------------------------------- nn.functional

  -- Functions with positional arguments and/or a trailing options table, validated in C.
  for _, name in ipairs{"softmax", "log_softmax"} do
    F[name] = _F[name]
  end

  -- relu, tanh, sigmoid: the tensor functions, with PyTorch's signatures
  local function wrap(name, params)
    local fname = "nn.functional." .. name
    local fn = tcore[name]
    F[name] = function(...)
      local a = args(fname, params, ...)
      if params[2] == "inplace" and bool_arg(fname, "inplace", a.inplace, false) then
        fail("%s: in-place activations are not supported (lucid computes out of place): use " ..
          "inplace = false", fname)
      end
      if not tcore.is_tensor(a.input) then
        fail("%s: argument 1 (input): expected a tensor, got %s", fname, describe(a.input))
      end
      return fn(a.input)
    end
  end
  wrap("relu", {"input", "inplace"})
  wrap("tanh", {"input"})
  wrap("sigmoid", {"input"})
end
