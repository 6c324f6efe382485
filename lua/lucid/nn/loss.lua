-- lucid.nn.loss: the loss functions (nn.functional.*) and loss modules (nn.CrossEntropyLoss,
-- ...). The computation is C (src/kernels/loss.c, bound in src/lua/nn_loss.c). A loss module
-- takes two inputs, (input, target), which the single-input C module kinds do not, so the loss
-- classes are Lua modules holding their options: loss(input, target) calls the functional
-- form with them. Options may be changed after construction (loss.reduction = "sum"), as in
-- PyTorch; weight and pos_weight are buffers (in state_dict, converted by :double()).
-- Class targets and ignore_index are 1-based. See docs/nn/loss.md.
return function(nn, P)
  local F, _F = P.F, P.tcore._F

  -- the pointwise losses: the rows of src/kernels/loss_list.h, as the binding hands them over
  local pointwise = P.core.pointwise_losses()
  for _, row in ipairs(pointwise) do
    F[row.name] = assert(_F["nn.functional." .. row.name], row.name)
  end
  for _, n in ipairs{"cross_entropy", "nll_loss"} do
    F[n] = assert(_F["nn.functional." .. n], n)
  end

  local check = P.core.check_loss_options

  -- A loss class: its constructor takes params (positional and/or by name), checked by the
  -- functional form's readers and C's rules (check_loss_options, kernel: the C function name):
  -- the same messages, naming the constructor's arguments. The checked values (defaults filled
  -- in by C) become fields, weights buffers; forward passes them to fn.
  local function loss_class(name, kernel, params, fn)
    local cls = P.Module:extend(name)
    local fname = "nn." .. name
    function cls:init(...)
      local a = P.args(fname, params, ...)
      local given = {}
      for i, p in ipairs(params) do given[i] = a[p] end
      local v = table.pack(check(kernel, fname, table.unpack(given, 1, #params)))
      for i, p in ipairs(params) do
        if p == "weight" or p == "pos_weight" then
          if v[i] ~= nil then self:register_buffer(p, v[i]) end
        else
          self[p] = v[i]
        end
      end
    end
    function cls:forward(input, target)
      local o = {}
      for _, p in ipairs(params) do o[p] = self[p] end
      return fn(input, target, o)
    end
    nn[name] = cls
  end

  loss_class("CrossEntropyLoss", "cross_entropy",
    {"weight", "ignore_index", "reduction", "label_smoothing"}, F.cross_entropy)
  loss_class("NLLLoss", "nll_loss", {"weight", "ignore_index", "reduction"}, F.nll_loss)
  -- The pointwise losses (MSELoss, L1Loss, HuberLoss, SmoothL1Loss, BCELoss,
  -- BCEWithLogitsLoss, KLDivLoss): one class per row of src/kernels/loss_list.h, its options
  -- the row's parameters in the functional form's order (weight and pos_weight are buffers).
  for _, row in ipairs(pointwise) do loss_class(row.module, row.name, row.params, F[row.name]) end
end
