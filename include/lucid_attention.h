/*
 * lucid_attention.h - attention: the fused scaled dot-product attention (with autograd).
 *
 * Conventions are lucid.h's: dims are 0-based (negative dims count from the end), every
 * fallible function returns an lc_status with a message in lc_last_error(), a produced tensor
 * is written to the last argument and owned by the caller, arguments are borrowed.
 */
#ifndef LUCID_ATTENTION_H
#define LUCID_ATTENTION_H

#include "lucid_core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Options of lc_scaled_dot_product_attention; NULL means all defaults (zero-initialised
 * fields are the defaults too, except that has_scale = false picks 1 / sqrt(E)). */
typedef struct lc_sdpa_opts {
  bool is_causal;   /* query i sees keys j <= i (top-left aligned); not with a mask */
  double dropout_p; /* in [0, 1): dropout on the attention weights (0: none; pass 0 in eval) */
  bool has_scale;   /* false: scale = 1 / sqrt(E) */
  double scale;     /* multiplies q k^T when has_scale */
} lc_sdpa_opts;

/* softmax(q k^T * scale + mask) v, PyTorch 2.x's F.scaled_dot_product_attention, as one fused
 * op. q (..., L, E), k (..., S, E), v (..., S, Ev), float32 or float64 (one dtype), the leading
 * (batch, heads) dims equal (not broadcast): out (..., L, Ev). mask (or NULL) broadcasts to
 * (..., L, S) and is read through its strides (never expanded): bool (true = attend) or of q's
 * dtype (added to the scores; it gets no gradient). A query row that attends to no key gives
 * output 0 and gradient 0 (PyTorch's math path gives NaN there). Memory is linear in L and S
 * (FlashAttention-2: no L x S matrix is stored for backward). Dropout's keep mask is drawn from
 * lucid's generator (lc_manual_seed makes it reproducible) and regenerated in backward from its
 * seed. Gradients for q, k and v. Under create_graph the gradient is recorded as matmul / exp /
 * sum ops (higher-order gradients, O(L x S) memory); with dropout_p > 0 that is an LC_EGRAD
 * error. */
lc_status lc_scaled_dot_product_attention(const lc_tensor *q, const lc_tensor *k,
                                          const lc_tensor *v, const lc_tensor *mask,
                                          const lc_sdpa_opts *opts, lc_tensor **out);

#ifdef __cplusplus
}
#endif
#endif /* LUCID_ATTENTION_H */
