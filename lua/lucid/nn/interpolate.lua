-- lucid.nn.interpolate: interpolation (resampling of the spatial dims). nn.Upsample is a C kind
-- (src/nn/interpolate.c, its constructor in lucid.nn_core from src/lua/nn_interpolate.c);
-- F.interpolate is the C function of core._F (it takes positional arguments and/or an options
-- table itself). See docs/nn/interpolate.md.
return function(nn, P)
  local core, F, C = P.core, P.F, P.tcore._F
  local fail, describe, bool_arg = P.fail, P.describe, P.bool_arg

  -- ---------------------------------------------------------------- module

  P.builtin("Upsample", {"size", "scale_factor", "mode", "align_corners"}, function(a)
    local f = "nn.Upsample"
    if a.mode ~= nil and type(a.mode) ~= "string" then
      fail("%s: mode must be a string, got %s", f, describe(a.mode))
    end
    if a.align_corners ~= nil then bool_arg(f, "align_corners", a.align_corners, false) end
    return core.upsample(a.size, a.scale_factor, a.mode, a.align_corners)
  end)

  -- ---------------------------------------------------------------- functions

  -- F.interpolate(x, {size = | scale_factor =, mode = "nearest", align_corners =})
  F.interpolate = C.interpolate
  -- F.upsample: PyTorch's deprecated alias
  F.upsample = C.interpolate
end
