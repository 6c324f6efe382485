/*
 * fused_helpers.h - helpers shared by the fused ops' kernels that read contiguous operands
 * (activation.c, dropout.c, embedding.c, bilinear.c): dtype checks, contiguous copies, saved
 * tensors and gradient shape checks. Layer 2 (kernels); private.
 */
#ifndef LUCID_KERNELS_FUSED_HELPERS_H
#define LUCID_KERNELS_FUSED_HELPERS_H

#include "op.h"

static inline bool is_float(lc_dtype dt) { return dt == LC_FLOAT32 || dt == LC_FLOAT64; }

static inline lc_status need_float(const char *fn, const char *what, const lc_tensor *t) {
  if (!is_float(t->dtype))
    return lc_set_error(LC_EDTYPE, "%s: expected %s of dtype float32 or float64, got %s", fn, what,
                        lc_dtype_name(t->dtype));
  return LC_OK;
}

/* *c = t when it is contiguous with dtype dt, else a contiguous copy converted to dt held in
 * *hold (release *hold afterwards; NULL when no copy was needed). */
static inline lc_status dense(const lc_tensor *t, lc_dtype dt, lc_tensor **hold, const lc_tensor **c) {
  *hold = NULL;
  if (t->contiguous && t->dtype == dt) {
    *c = t;
    return LC_OK;
  }
  lc_status st = lc_k_copy_as(t, dt, hold);
  if (!st) *c = *hold;
  return st;
}

static inline lc_status saved(const lc_op_ctx *ctx, int k, const lc_tensor **t) {
  lc_tensor *s = NULL;
  lc_status st = lc_ctx_saved(ctx, k, &s);
  if (!st) *t = s;
  return st;
}

static inline bool same_shape(const lc_tensor *a, int ndim, const int64_t *shape) {
  if (a->ndim != ndim) return false;
  for (int d = 0; d < ndim; d++)
    if (a->shape[d] != shape[d]) return false;
  return true;
}

static inline lc_status grad_shape_error(const lc_op_ctx *ctx, const lc_tensor *g) {
  char a[256], b[256];
  return lc_set_error(LC_ESHAPE, "%s: gradient of shape %s for an output of shape %s",
                      ctx->op->grad_fn_name, lc_shape_str(g->ndim, g->shape, a, sizeof a),
                      lc_shape_str(ctx->out->ndim, ctx->out->shape, b, sizeof b));
}

#endif /* LUCID_KERNELS_FUSED_HELPERS_H */
