-- lucid.nn.utils: gradient clipping and parameters <-> one vector (PyTorch's torch.nn.utils).
-- `parameters` may be a module (its parameters()), a list of tensors (what model:parameters()
-- returns), a single tensor, or an iterator function returning tensors until nil. Parameters
-- without a .grad are skipped by the clipping functions. The work is C (src/nn/utils.c, bound
-- in src/lua/nn_loss.c). See docs/nn/loss.md.
return function(nn, P)
  local _F = P.tcore._F
  local is_tensor, is_module = P.tcore.is_tensor, P.core.is_module
  local fail, describe = P.fail, P.describe

  -- Normalises `parameters` into a list of tensors.
  local function plist(fname, ps)
    if is_module(ps) then return ps:parameters() end
    if is_tensor(ps) then return {ps} end
    if type(ps) == "function" then
      local list = {}
      for t in ps do list[#list + 1] = t end
      return list
    end
    if type(ps) ~= "table" then
      fail("%s: parameters must be a module, a tensor, a list of tensors or an iterator, got %s",
        fname, describe(ps))
    end
    return ps
  end

  local C = {}
  for _, n in ipairs{"clip_grad_norm_", "clip_grad_value_", "parameters_to_vector",
    "vector_to_parameters"} do
    C[n] = assert(_F["nn.utils." .. n], n)
  end

  local utils = {}
  -- clip_grad_norm_(parameters, max_norm [, norm_type = 2] [, error_if_nonfinite = false])
  -- norm_type may be math.huge or "inf". Returns the total norm (a number) before clipping.
  function utils.clip_grad_norm_(parameters, ...)
    return C.clip_grad_norm_(plist("lucid.nn.utils.clip_grad_norm_", parameters), ...)
  end
  -- clip_grad_value_(parameters, clip_value): clamps each gradient into [-v, v].
  function utils.clip_grad_value_(parameters, ...)
    C.clip_grad_value_(plist("lucid.nn.utils.clip_grad_value_", parameters), ...)
  end
  -- parameters_to_vector(parameters): one 1-D tensor (differentiable, like PyTorch's).
  function utils.parameters_to_vector(parameters, ...)
    return C.parameters_to_vector(plist("lucid.nn.utils.parameters_to_vector", parameters), ...)
  end
  -- vector_to_parameters(vec, parameters): copies consecutive slices of vec into them.
  function utils.vector_to_parameters(vec, parameters, ...)
    C.vector_to_parameters(vec, plist("lucid.nn.utils.vector_to_parameters", parameters), ...)
  end
  nn.utils = utils
  -- Distance functions of nn.functional: the lucid.* functions (src/lua/ops_misc.c).
  for _, n in ipairs{"cosine_similarity", "pairwise_distance", "cdist"} do
    P.F[n] = assert(P.tcore[n], n)
  end
end
