/*
 * attention.h - private interface of the fused attention kernel (src/kernels/attention.c)
 * shared with its entry point (src/ops/attention.c) and the Lua binding's argument errors.
 * Layer 2 of 8 (kernels).
 */
#ifndef LUCID_KERNELS_ATTENTION_H
#define LUCID_KERNELS_ATTENTION_H

#include "op.h"

/* in = {query (..., L, E), key (..., S, E), value (..., S, Ev)} (lc_op_sdpa) or the same and an
 * attn_mask broadcastable to (..., L, S), bool (true attends) or of the query's float dtype
 * (added to the scores) (lc_op_sdpa_mask). f[0] = scale, f[1] = dropout p in [0, 1);
 * i[0] = dropout seed, i[1] = its first counter, i[2] = is_causal. out[0] = (..., L, Ev),
 * out[1] = the rows' logsumexp (..., L) (not differentiable). Saves the inputs and both
 * outputs; nothing of size L x S. */
extern const lc_op_def lc_op_sdpa, lc_op_sdpa_mask;

/* The argument rules of the op (shapes, dtypes, p, mask with is_causal): on failure sets the
 * error "scaled_dot_product_attention: <name>: expected ..., got ..." and *arg is the 0-based
 * parameter it is about (0 query, 1 key, 2 value, 3 attn_mask, 4 dropout_p, 5 is_causal). */
lc_status lc_sdpa_validate(const lc_tensor *q, const lc_tensor *k, const lc_tensor *v,
                           const lc_tensor *mask, double p, bool causal, int *arg);

#endif /* LUCID_KERNELS_ATTENTION_H */
