-- lucid.nn.linear: the linear family's Lua side: nn.functional.linear, nn.functional.bilinear
-- and the class nn.Bilinear. The ops live in src/kernels/linear.c (entry points lc_linear and
-- lc_bilinear in src/ops/linear.c, bound by src/lua/nn_linear.c); nn.Linear is a built-in
-- module kind (src/nn/layers.c), its class in lua/lucid/nn.lua. See docs/nn/linear.md.
return function(nn, P)
  local F, tcore = P.F, P.tcore
  local _F = tcore._F
  local args, int_arg, bool_arg = P.args, P.int_arg, P.bool_arg

  -- ---------------------------------------------------------------- nn.Bilinear (a Lua module)

  -- y = x1^T A x2 + b for every leading index: weight {out, in1, in2}, bias {out}. It takes two
  -- inputs, so it is a Lua-defined module (C kinds have one input); forward calls F.bilinear.
  local Bilinear = P.Module:extend("Bilinear")
  nn.Bilinear = Bilinear

  function Bilinear:init(...)
    local f = "nn.Bilinear"
    local a = args(f, {"in1_features", "in2_features", "out_features", "bias"}, ...)
    local in1 = int_arg(f, "in1_features", a.in1_features, 0)
    local in2 = int_arg(f, "in2_features", a.in2_features, 0)
    local out = int_arg(f, "out_features", a.out_features, 0)
    local bias = bool_arg(f, "bias", a.bias, true)
    self.in1_features, self.in2_features, self.out_features = in1, in2, out
    self.weight = nn.Parameter(tcore.zeros({out, in1, in2}))
    if bias then self.bias = nn.Parameter(tcore.zeros({out})) end
    self:reset_parameters()
  end

  -- PyTorch's init: U(-1/sqrt(in1), 1/sqrt(in1)) for the weight and the bias.
  function Bilinear:reset_parameters()
    local bound = self.in1_features > 0 and 1 / math.sqrt(self.in1_features) or 0
    local prev = tcore.set_grad_enabled(false)
    local ok, err = pcall(function()
      self.weight:uniform_(-bound, bound)
      if self.bias ~= nil then self.bias:uniform_(-bound, bound) end
    end)
    tcore.set_grad_enabled(prev)
    if not ok then error(err, 0) end
    return self
  end

  function Bilinear:forward(x1, x2)
    return F.bilinear(x1, x2, self.weight, self.bias)
  end

  function Bilinear:extra_repr()
    return ("in1_features=%d, in2_features=%d, out_features=%d, bias=%s"):format(
      self.in1_features, self.in2_features, self.out_features, tostring(self.bias ~= nil))
  end

  -- ---------------------------------------------------------------- nn.functional

  -- Functions with positional arguments and/or a trailing options table, validated in C.
  for _, name in ipairs{"bilinear", "linear"} do
    F[name] = _F[name]
  end
end
