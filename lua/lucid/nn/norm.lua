-- lucid.nn.norm: normalization layers. The modules are C kinds (src/nn/norm.c, constructors in
-- lucid.nn_core from src/lua/nn_norm.c); the functions of nn.functional are the C functions of
-- core._F (they take positional arguments and/or an options table themselves). Interpolation
-- (nn.Upsample, F.interpolate) is lua/lucid/nn/interpolate.lua's. See docs/nn/norm.md.
return function(nn, P)
  local core, F, C = P.core, P.F, P.tcore._F
  local fail, int_arg, num_arg, bool_arg = P.fail, P.int_arg, P.num_arg, P.bool_arg

  -- The classes convert types and fill in defaults only: the values' rules (num_features >= 1,
  -- eps >= 0, momentum in [0, 1], normalized_shape's count and sizes, num_groups and
  -- num_channels) are the C constructors' (src/nn/norm.c), whose messages users see.

  -- momentum: a number; false (Lua's stand-in for PyTorch's None, since an absent option and
  -- nil are the same) asks for a cumulative moving average where the module supports it.
  local function momentum_arg(f, v, cumulative)
    if v == false and cumulative then return false end
    return num_arg(f, "momentum", v, 0.1, cumulative and "a number or false" or nil)
  end

  -- ---------------------------------------------------------------- modules

  local BN = {"num_features", "eps", "momentum", "affine", "track_running_stats"}

  for _, spec in ipairs{
    {"BatchNorm1d", core.batch_norm1d, true, true},
    {"BatchNorm2d", core.batch_norm2d, true, true},
    {"InstanceNorm2d", core.instance_norm2d, false, false},
  } do
    local name, ctor, affine, track = spec[1], spec[2], spec[3], spec[4]
    local cumulative = name ~= "InstanceNorm2d"
    P.builtin(name, BN, function(a)
      local f = "nn." .. name
      return ctor(int_arg(f, "num_features", a.num_features), num_arg(f, "eps", a.eps, 1e-5),
        momentum_arg(f, a.momentum, cumulative), bool_arg(f, "affine", a.affine, affine),
        bool_arg(f, "track_running_stats", a.track_running_stats, track))
    end)
  end

  -- LayerNorm(normalized_shape [, eps [, elementwise_affine]] [, opts]): normalized_shape may
  -- be a list ({3, 4}), which must not be taken for the options table.
  local LN = {"normalized_shape", "eps", "elementwise_affine"}
  local function make_ln(a)
    local f = "nn.LayerNorm"
    local s = a.normalized_shape
    if s == nil then fail("%s: missing argument normalized_shape", f) end
    if type(s) == "table" then
      for i, v in ipairs(s) do int_arg(f, "normalized_shape[" .. i .. "]", v) end
    else
      int_arg(f, "normalized_shape", s)
    end
    return core.layer_norm(s, num_arg(f, "eps", a.eps, 1e-5),
      bool_arg(f, "elementwise_affine", a.elementwise_affine, true))
  end
  local function is_list(t)
    if type(t) ~= "table" or core.is_module(t) or #t == 0 then return false end
    for k in pairs(t) do
      if math.type(k) ~= "integer" then return false end
    end
    return true
  end
  local LayerNorm = P.class("LayerNorm", P.Module, function(_, first, ...)
    if is_list(first) then
      local a = P.args("nn.LayerNorm", {"eps", "elementwise_affine"}, ...)
      if a.normalized_shape ~= nil then fail("nn.LayerNorm: normalized_shape given twice") end
      a.normalized_shape = first
      return make_ln(a)
    end
    return make_ln(P.args("nn.LayerNorm", LN, first, ...))
  end)
  core.set_class("LayerNorm", LayerNorm)
  nn.LayerNorm = LayerNorm

  P.builtin("GroupNorm", {"num_groups", "num_channels", "eps", "affine"}, function(a)
    local f = "nn.GroupNorm"
    return core.group_norm(int_arg(f, "num_groups", a.num_groups),
      int_arg(f, "num_channels", a.num_channels), num_arg(f, "eps", a.eps, 1e-5),
      bool_arg(f, "affine", a.affine, true))
  end)

  -- ---------------------------------------------------------------- functions

  -- F.batch_norm(x, running_mean, running_var [, {weight =, bias =, training = false,
  --   momentum = 0.1, eps = 1e-5, relu = false}])
  F.batch_norm = C.batch_norm
  -- F.layer_norm(x, normalized_shape [, {weight =, bias =, eps = 1e-5}])
  F.layer_norm = C.layer_norm
  -- F.group_norm(x, num_groups [, {weight =, bias =, eps = 1e-5}])
  F.group_norm = C.group_norm
  -- F.instance_norm(x [, {running_mean =, running_var =, weight =, bias =,
  --   use_input_stats = true, momentum = 0.1, eps = 1e-5}])
  F.instance_norm = C.instance_norm
end
