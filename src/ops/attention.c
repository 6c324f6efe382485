/*
 * attention.c - public entry point of the attention family (include/lucid_attention.h):
 * argument checks, the dropout seed, then the fused op through lc_apply so autograd records
 * it. The kernel, forward and backward side by side, is in src/kernels/attention.c.
 */
#include "lucid_attention.h"

#include "../autograd/autograd.h"
#include "../kernels/attention.h"
#include "check_io.h"

#include <math.h>

lc_status lc_scaled_dot_product_attention(const lc_tensor *q, const lc_tensor *k,
                                          const lc_tensor *v, const lc_tensor *mask,
                                          const lc_sdpa_opts *opts, lc_tensor **out) {
  const char *fn = "scaled_dot_product_attention";
  lc_status st = check_io(fn, q, "query", out);
  if (!st) st = check_io(fn, k, "key", out);
  if (!st) st = check_io(fn, v, "value", out);
  if (st) return st;
  const lc_sdpa_opts def = {0};
  if (!opts) opts = &def;
  int arg;
  if ((st = lc_sdpa_validate(q, k, v, mask, opts->dropout_p, opts->is_causal, &arg))) return st;
  const int64_t E = q->shape[q->ndim - 1];
  /* E = 0: every score is 0 whatever the scale (PyTorch's 1/sqrt(0) would make them NaN) */
  double scale = opts->has_scale ? opts->scale : (E > 0 ? 1.0 / sqrt((double)E) : 1.0);
  if (!isfinite(scale))
    return lc_set_error(LC_EARG, "%s: scale: expected a finite number, got %g", fn, scale);
  uint64_t seed = 0, base = 0;
  if (opts->dropout_p > 0) {
    /* one 64-bit draw per two weights of the (..., L, S) attention matrix */
    int64_t n = q->numel / (q->shape[q->ndim - 1] ? q->shape[q->ndim - 1] : 1);
    if (q->shape[q->ndim - 1] == 0) {
      n = 1;
      for (int d = 0; d < q->ndim - 1; d++)
        n *= q->shape[d];
    }
    n *= k->shape[k->ndim - 2];
    base = lc_rng_reserve((uint64_t)(n + 1) / 2, &seed);
  }
  lc_op_args a = {.f = {scale, opts->dropout_p},
                  .i = {(int64_t)seed, (int64_t)base, opts->is_causal ? 1 : 0},
                  .ni = 3};
  lc_tensor *in[4] = {(lc_tensor *)q, (lc_tensor *)k, (lc_tensor *)v, (lc_tensor *)mask};
  lc_tensor *res[2] = {NULL, NULL};
  if ((st = lc_apply(mask ? &lc_op_sdpa_mask : &lc_op_sdpa, mask ? 4 : 3, in, &a, res))) return st;
  lc_release(res[1]); /* the logsumexp: the graph keeps its own reference */
  *out = res[0];
  return LC_OK;
}
