-- lucid.nn.attention: nn.functional.scaled_dot_product_attention, the fused C op of core._F
-- (src/ops/attention.c, bound by src/lua/nn_attention.c; it takes positional arguments and/or
-- an options table itself). See docs/nn/attention.md.
return function(nn, P)
  local F, C = P.F, P.tcore._F
  -- F.scaled_dot_product_attention(q, k, v, {attn_mask =, dropout_p = 0, is_causal = false,
  -- scale = 1 / sqrt(E)})
  F.scaled_dot_product_attention = C.scaled_dot_product_attention
end
