-- lucid.nn.loss: the loss functions (nn.functional.*) and loss modules (nn.CrossEntropyLoss,
-- ...). The computation is C (src/kernels/loss.c, bound in src/lua/nn_loss.c). A loss module
-- takes two inputs, (input, target), which the single-input C module kinds do not, so the loss
-- classes are Lua modules holding their options: loss(input, target) calls the functional
-- form with them. Options may be changed after construction (loss.reduction = "sum"), as in
-- PyTorch; weight and pos_weight are buffers (in state_dict, converted by :double()).
-- Class targets and ignore_index are 1-based. See docs/nn/loss.md.
return function(nn, P)
  local F, _F = P.F, P.tcore._F
  local fail, describe = P.fail, P.describe
  local is_tensor = P.tcore.is_tensor

  -- the pointwise losses: the rows of src/kernels/loss_list.h, as the binding hands them over
  local pointwise = P.core.pointwise_losses()
  for _, row in ipairs(pointwise) do
    F[row.name] = assert(_F["nn.functional." .. row.name], row.name)
  end
  for _, n in ipairs{"cross_entropy", "nll_loss"} do
    F[n] = assert(_F["nn.functional." .. n], n)
  end

  local reductions = {mean = true, sum = true, none = true}

  local function check_reduction(fname, r, batchmean)
    if r == nil then return "mean" end
    if type(r) ~= "string" or not (reductions[r] or (batchmean and r == "batchmean")) then
      fail("%s: reduction must be one of %s, got %s", fname,
        batchmean and "\"mean\", \"sum\", \"none\", \"batchmean\"" or "\"mean\", \"sum\", \"none\"",
        type(r) == "string" and ("'" .. r .. "'") or describe(r))
    end
    return r
  end

  local function check_tensor(fname, name, v)
    if v ~= nil and not is_tensor(v) then
      fail("%s: %s must be a tensor, got %s", fname, name, describe(v))
    end
    return v
  end

  local function check_number(fname, name, v, default, ok, what)
    if v == nil then return default end
    if type(v) ~= "number" then fail("%s: %s must be a number, got %s", fname, name, describe(v)) end
    if ok and not ok(v) then fail("%s: %s must be %s, got %s", fname, name, what, tostring(v)) end
    return v
  end

  -- A loss class: params are the constructor's parameters (positional and/or by name), setup
  -- validates them into fields, opts(self) builds the functional form's options.
  local function loss_class(name, params, fn, setup, opts)
    local cls = P.Module:extend(name)
    local fname = "nn." .. name
    function cls:init(...)
      local a = P.args(fname, params, ...)
      setup(self, a, fname)
    end
    function cls:forward(input, target)
      return fn(input, target, opts(self))
    end
    nn[name] = cls
    return cls
  end

  local function weight_buffer(self, f, name, w)
    if check_tensor(f, name, w) ~= nil then self:register_buffer(name, w) end
  end

  local function ignore_index(f, v)
    if v == nil then return nil end
    if math.type(v) ~= "integer" then
      if math.type(v) == "float" and v == math.floor(v) then return math.tointeger(v) end
      fail("%s: ignore_index must be an integer (a 1-based class), got %s", f, describe(v))
    end
    return v
  end

  loss_class("CrossEntropyLoss", {"weight", "ignore_index", "reduction", "label_smoothing"},
    F.cross_entropy, function(self, a, f)
      weight_buffer(self, f, "weight", a.weight)
      self.ignore_index = ignore_index(f, a.ignore_index)
      self.reduction = check_reduction(f, a.reduction)
      self.label_smoothing = check_number(f, "label_smoothing", a.label_smoothing, 0.0,
        function(v) return v >= 0 and v <= 1 end, "in [0, 1]")
    end, function(self)
      return {weight = self.weight, ignore_index = self.ignore_index, reduction = self.reduction,
        label_smoothing = self.label_smoothing}
    end)

  loss_class("NLLLoss", {"weight", "ignore_index", "reduction"}, F.nll_loss, function(self, a, f)
    weight_buffer(self, f, "weight", a.weight)
    self.ignore_index = ignore_index(f, a.ignore_index)
    self.reduction = check_reduction(f, a.reduction)
  end, function(self)
    return {weight = self.weight, ignore_index = self.ignore_index, reduction = self.reduction}
  end)

  -- The pointwise losses (MSELoss, L1Loss, HuberLoss, SmoothL1Loss, BCELoss,
  -- BCEWithLogitsLoss, KLDivLoss): one class per row of src/kernels/loss_list.h. Its options
  -- are the row's parameters, in the functional form's order: weight and pos_weight (buffers),
  -- reduction and the row's scalar parameter, checked at construction by C's rule.
  for _, row in ipairs(pointwise) do
    loss_class(row.module, row.params, F[row.name], function(self, a, f)
      for _, p in ipairs(row.params) do
        if p == "weight" or p == "pos_weight" then
          weight_buffer(self, f, p, a[p])
        elseif p == "reduction" then
          self.reduction = check_reduction(f, a.reduction, row.batchmean)
        elseif row.flag then
          self[p] = P.bool_arg(f, p, a[p], row.default)
        else
          local v, err = P.core.check_pw_param(row.kind, f, check_number(f, p, a[p], row.default))
          if err then fail("%s", err) end
          self[p] = v
        end
      end
    end, function(self)
      local o = {}
      for _, p in ipairs(row.params) do o[p] = self[p] end
      return o
    end)
  end
end
