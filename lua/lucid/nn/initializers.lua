-- lucid.nn.initializers: nn.init, PyTorch's torch.nn.init. Every initialiser writes into its
-- tensor in place with grad mode off (so it works on parameters), bumps the tensor's version and
-- returns the tensor. The work is C (src/nn/init.c, bound in src/lua/nn_loss.c). See
-- docs/nn/loss.md.
return function(nn, P)
  local _F = P.tcore._F
  local init = {}
  for _, n in ipairs{"uniform_", "normal_", "constant_", "zeros_", "ones_", "eye_",
    "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_",
    "calculate_gain", "calculate_fan_in_and_fan_out"} do
    init[n] = assert(_F["nn.init." .. n], n)
  end
  -- PyTorch's private spelling, used by code that computes bounds itself
  init._calculate_fan_in_and_fan_out = init.calculate_fan_in_and_fan_out
  nn.init = init
end
