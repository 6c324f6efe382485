-- lucid.nn.conv: convolution, pooling and padding. The modules are C kinds (src/nn/conv.c,
-- constructors in lucid.nn_core from src/lua/nn_conv.c); the classes below convert the
-- options (positional and/or an options table, PyTorch's names and order) and C checks them. The
-- functions of nn.functional are the C functions of core._F (they take positional arguments
-- and/or an options table themselves). See docs/nn/conv.md.
return function(nn, P)
  local core, F, C = P.core, P.F, P.tcore._F
  local fail, describe, int_arg, bool_arg = P.fail, P.describe, P.int_arg, P.bool_arg
  local mtype = math.type

  -- An integer or a table of sd integers -> {a, b} (1-d: {a, 1}). The values' rules are C's.
  local function pair(f, name, v, sd, default)
    if v == nil then v = default end
    local r
    if type(v) == "table" then
      if #v ~= sd then
        fail("%s: %s must be an integer or a table of %d integers, got a table of %d entries", f, name, sd, #v)
      end
      r = {}
      for i = 1, sd do r[i] = int_arg(f, name .. "[" .. i .. "]", v[i]) end
    elseif type(v) == "number" then
      local n = int_arg(f, name, v)
      r = {n, n}
    else
      fail("%s: %s must be an integer or a table of %d integers, got %s", f, name, sd, describe(v))
    end
    if sd == 1 then r[2] = 1 end
    return r
  end

  -- P.args reads a trailing table with integer keys as a positional value, so
  -- nn.Conv2d(3, 16, {3, 5}) and nn.AdaptiveAvgPool2d({nil, 7}) need nothing special.
  local builtin = P.builtin

  local function options_method(cls)
    -- m:options(): the options the module was made with (kernel_size, stride, ... as tables)
    cls.options = function(self) return core.conv_options(self) end
  end

  -- ---------------------------------------------------------------- convolutions

  local CONV = {"in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
    "groups", "bias", "padding_mode"}
  -- PyTorch's order for ConvTranspose2d
  local CONVT = {"in_channels", "out_channels", "kernel_size", "stride", "padding",
    "output_padding", "groups", "bias", "dilation", "padding_mode"}

  -- the numbers converted here, the padding and padding_mode strings by the binding; every
  -- rule is the C constructor's (src/nn/conv.c)
  local function make_conv(name, sd, transposed)
    return function(a)
      local f = "nn." .. name
      local cin = int_arg(f, "in_channels", a.in_channels)
      local cout = int_arg(f, "out_channels", a.out_channels)
      if a.kernel_size == nil then fail("%s: missing argument kernel_size", f) end
      local k = pair(f, "kernel_size", a.kernel_size, sd)
      local stride = pair(f, "stride", a.stride, sd, 1)
      local padding = a.padding
      if type(padding) ~= "string" then padding = pair(f, "padding", padding, sd, 0) end
      local dilation = pair(f, "dilation", a.dilation, sd, 1)
      local groups = a.groups == nil and 1 or int_arg(f, "groups", a.groups)
      local bias = bool_arg(f, "bias", a.bias, true)
      local mode = a.padding_mode == nil and "zeros" or a.padding_mode
      local opad = transposed and pair(f, "output_padding", a.output_padding, sd, 0) or nil
      return core.conv(name, cin, cout, k, stride, padding, dilation, groups, bias, mode, opad)
    end
  end

  options_method(builtin("Conv1d", CONV, make_conv("Conv1d", 1, false)))
  options_method(builtin("Conv2d", CONV, make_conv("Conv2d", 2, false)))
  options_method(builtin("ConvTranspose2d", CONVT, make_conv("ConvTranspose2d", 2, true)))
  nn.Conv2D = nn.Conv2d -- the seed writes Conv2D

  -- ---------------------------------------------------------------- pooling

  -- A module returning (values, indices): a Lua module of the same type name, since a built-in
  -- module returns one tensor. It prints and pools like the built-in one.
  local RI = {}
  local function indices_module(name, fn, opts, cmod)
    local cls = RI[name]
    if not cls then
      cls = P.Module:extend(name)
      function cls:init(f, o, repr, info)
        self._pool, self._opts, self._repr, self._info = f, o, repr, info
      end
      function cls:forward(x) return self._pool(x, self._opts) end
      function cls:extra_repr() return self._repr end
      function cls:options()
        local r = {}
        for k, v in pairs(self._info) do r[k] = v end
        return r
      end
      RI[name] = cls
    end
    local repr = tostring(cmod):match("^[%w_]+%((.*)%)$") or ""
    return cls(fn, opts, repr, core.conv_options(cmod))
  end

  local function make_pool(name, sd, is_max)
    return function(a)
      local f = "nn." .. name
      if a.kernel_size == nil then fail("%s: missing argument kernel_size", f) end
      local k = pair(f, "kernel_size", a.kernel_size, sd)
      local stride = a.stride == nil and k or pair(f, "stride", a.stride, sd)
      local padding = pair(f, "padding", a.padding, sd, 0)
      local dilation = is_max and pair(f, "dilation", a.dilation, sd, 1) or {1, 1}
      local ceil = bool_arg(f, "ceil_mode", a.ceil_mode, false)
      local cip = not is_max and bool_arg(f, "count_include_pad", a.count_include_pad, true)
      local ri = is_max and bool_arg(f, "return_indices", a.return_indices, false)
      local m = core.pool(name, k, stride, padding, dilation, ceil, cip, ri)
      if not ri then return m end
      local o = {kernel_size = sd == 1 and k[1] or k, stride = sd == 1 and stride[1] or stride,
        padding = sd == 1 and padding[1] or padding, dilation = sd == 1 and dilation[1] or dilation,
        ceil_mode = ceil, return_indices = true}
      return indices_module(name, sd == 1 and C.max_pool1d or C.max_pool2d, o, m)
    end
  end

  for _, spec in ipairs{{"MaxPool1d", 1}, {"MaxPool2d", 2}} do
    options_method(builtin(spec[1], {"kernel_size", "stride", "padding", "dilation", "return_indices",
      "ceil_mode"}, make_pool(spec[1], spec[2], true)))
  end
  for _, spec in ipairs{{"AvgPool1d", 1}, {"AvgPool2d", 2}} do
    options_method(builtin(spec[1], {"kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"},
      make_pool(spec[1], spec[2], false)))
  end

  -- output_size: an integer, or a table of sd entries where nil keeps the input's size
  -- ({nil, 7}); -> {a, b} with -1 for nil (the sizes' rule is C's)
  local function out_size(f, v, sd)
    if v == nil then fail("%s: missing argument output_size", f) end
    local r
    if type(v) == "number" then
      local n = int_arg(f, "output_size", v)
      r = {n, n}
    elseif type(v) == "table" then
      for key in pairs(v) do
        if mtype(key) ~= "integer" or key < 1 or key > sd then
          fail("%s: output_size must be an integer or a table of %d entries (integers or nil), got key %s",
            f, sd, tostring(key))
        end
      end
      r = {}
      for i = 1, sd do r[i] = v[i] == nil and -1 or int_arg(f, "output_size[" .. i .. "]", v[i]) end
    else
      fail("%s: output_size must be an integer or a table, got %s", f, describe(v))
    end
    if sd == 1 then r[2] = 1 end
    return r
  end

  for _, spec in ipairs{{"AdaptiveAvgPool1d", 1, false}, {"AdaptiveAvgPool2d", 2, false},
                        {"AdaptiveMaxPool1d", 1, true}, {"AdaptiveMaxPool2d", 2, true}} do
    local name, sd, is_max = spec[1], spec[2], spec[3]
    local params = is_max and {"output_size", "return_indices"} or {"output_size"}
    options_method(builtin(name, params, function(a)
      local f = "nn." .. name
      local os = out_size(f, a.output_size, sd)
      local ri = is_max and bool_arg(f, "return_indices", a.return_indices, false)
      local m = core.adaptive_pool(name, os, ri)
      if not ri then return m end
      local o = {output_size = sd == 1 and os[1] or {os[1] >= 0 and os[1] or nil, os[2] >= 0 and os[2] or nil},
        return_indices = true}
      return indices_module(name, sd == 1 and C.adaptive_max_pool1d or C.adaptive_max_pool2d, o, m)
    end))
  end

  -- ---------------------------------------------------------------- functions

  -- F.pad(x, pad [, mode = "constant" [, value = 0]]): pad = {left, right, top, bottom, ...}
  -- (last dim first, as PyTorch)
  F.pad = C.pad
  -- F.conv1d / F.conv2d(x, weight [, bias [, stride [, padding [, dilation [, groups]]]]])
  F.conv1d = C.conv1d
  F.conv2d = C.conv2d
  -- F.conv_transpose2d(x, weight [, bias, stride, padding, output_padding, groups, dilation])
  F.conv_transpose2d = C.conv_transpose2d
  -- F.max_pool1d/2d(x, kernel_size [, stride, padding, dilation, ceil_mode, return_indices])
  F.max_pool1d = C.max_pool1d
  F.max_pool2d = C.max_pool2d
  -- F.avg_pool1d/2d(x, kernel_size [, stride, padding, ceil_mode, count_include_pad])
  F.avg_pool1d = C.avg_pool1d
  F.avg_pool2d = C.avg_pool2d
  -- F.adaptive_avg_pool1d/2d(x, output_size), F.adaptive_max_pool1d/2d(x, output_size
  -- [, return_indices])
  F.adaptive_avg_pool1d = C.adaptive_avg_pool1d
  F.adaptive_avg_pool2d = C.adaptive_avg_pool2d
  F.adaptive_max_pool1d = C.adaptive_max_pool1d
  F.adaptive_max_pool2d = C.adaptive_max_pool2d
end
