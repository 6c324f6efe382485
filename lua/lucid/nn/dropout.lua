-- lucid.nn.dropout: nn.Dropout and nn.functional.dropout. The C kind lives in src/nn/dropout.c,
-- the tensor function in src/ops/dropout.c (bound by src/lua/nn_dropout.c). See
-- docs/nn/dropout.md; specs in spec/nn_dropout_spec.lua, C tests in tests/test_dropout.c.
return function(nn, P)
  local F, core, tcore = P.F, P.core, P.tcore
  local num_arg, bool_arg = P.num_arg, P.bool_arg

  -- p's rule ([0, 1]) is lc_nn_dropout's (lc_dropout_check_p)
  P.builtin("Dropout", {"p", "inplace"}, function(a)
    local f = "nn.Dropout"
    return core.dropout(num_arg(f, "p", a.p, 0.5), bool_arg(f, "inplace", a.inplace, false))
  end)

  -- F.dropout(input, p = 0.5, training = true, inplace): validated in C
  F.dropout = tcore._F.dropout
end
