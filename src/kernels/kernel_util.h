/*
 * kernel_util.h - the small helpers the kernel files share: dtype checks, shapes, contiguous
 * operands, index loads, saved tensors and gradient checks. Layer 2 (kernels); private to
 * src/kernels (the family headers conv.h, norm.h, ... are the ones src/ops sees).
 *
 * Per-dtype kernels are written once, as a macro whose first parameters are the element type T
 * and the dtype's suffix S (f32, f64, i32, i64; b for bool bytes; named SUF where the body has
 * an S of its own), defining functions named <name>_##S. It is instantiated once per dtype it
 * serves (DEF_X(float, f32) DEF_X(double, f64)) and a switch or an if on the dtype calls the
 * instance; each instance keeps its restrict pointers, so its loops vectorise as if written out.
 */
#ifndef LUCID_KERNELS_KERNEL_UTIL_H
#define LUCID_KERNELS_KERNEL_UTIL_H

#include "op.h"

/* ------------------------------------------------------------------ dtypes */

static inline bool is_float(lc_dtype dt) { return dt == LC_FLOAT32 || dt == LC_FLOAT64; }

/* "fn: expected a float32 or float64 <what>, got X" ("input", "weight"; half dtypes pass, as
 * the kernels see them as float32, src/kernels/op.c): the one phrasing of
 * the float rule for every kernel (and the entry points that check it first, src/ops/loss.c
 * and dropout.c). */
static inline lc_status need_float_dtype(const char *fn, const char *what, lc_dtype dt) {
  /* float16 / bfloat16 pass: entry points check before lc_op_run converts them to float32 */
  if (!is_float(dt) && !lc_dtype_is_half(dt))
    return lc_set_error(LC_EDTYPE, "%s: expected a float32 or float64 %s, got %s", fn, what,
                        lc_dtype_name(dt));
  return LC_OK;
}

/* Index tensors (embedding's input, index_select's and gather's index) are int64 or int32. */
static inline lc_status need_index(const char *fn, const char *what, const lc_tensor *t) {
  if (t->dtype != LC_INT64 && t->dtype != LC_INT32)
    return lc_set_error(LC_EDTYPE, "%s: %s must be an int64 or int32 tensor of indices, got %s", fn,
                        what, lc_dtype_name(t->dtype));
  return LC_OK;
}

/* Element k of an index tensor's data (int64 or int32). */
static inline int64_t load_index(const void *p, lc_dtype dt, int64_t k) {
  return dt == LC_INT64 ? ((const int64_t *)p)[k] : ((const int32_t *)p)[k];
}

/* ------------------------------------------------------------------ shapes */

static inline bool shapes_equal(int na, const int64_t *a, int nb, const int64_t *b) {
  if (na != nb) return false;
  for (int d = 0; d < na; d++)
    if (a[d] != b[d]) return false;
  return true;
}

static inline bool same_shape(const lc_tensor *a, int ndim, const int64_t *shape) {
  return shapes_equal(a->ndim, a->shape, ndim, shape);
}

/* t's shape and dtype as an lc_meta (what backward sees of an input). */
static inline void meta_of(const lc_tensor *t, lc_meta *m) {
  m->ndim = t->ndim;
  for (int d = 0; d < t->ndim; d++)
    m->shape[d] = t->shape[d];
  m->dtype = t->dtype;
}

/* A fresh contiguous tensor (uninitialised) of m's shape and dtype. */
static inline lc_status new_like(const lc_meta *m, lc_tensor **out) {
  return lc_tensor_new(m->ndim, m->shape, m->dtype, out);
}

/* ------------------------------------------------------------------ contiguous operands */

/* Borrowing form of lc_k_dense_as: *c = t when it is contiguous with dtype dt, else a
 * contiguous copy converted to dt held in *hold (release *hold afterwards; NULL when no copy
 * was made). A NULL t (an absent optional input) gives *c = NULL. */
static inline lc_status dense(const lc_tensor *t, lc_dtype dt, lc_tensor **hold,
                              const lc_tensor **c) {
  *hold = NULL;
  if (!t || (t->contiguous && t->dtype == dt)) {
    *c = t;
    return LC_OK;
  }
  lc_status st = lc_k_copy_as(t, dt, hold);
  if (!st) *c = *hold;
  return st;
}

/* Always a new contiguous tensor of (ndim, shape) and dtype dt holding t broadcast to that
 * shape (LC_ESHAPE from lc_k_copy when it does not broadcast). lc_k_copy_as is this at t's own
 * shape. Defined in op.c. */
lc_status lc_k_expand_copy(const lc_tensor *t, int ndim, const int64_t *shape, lc_dtype dt,
                           lc_tensor **out);

/* ------------------------------------------------------------------ backward */

/* lc_ctx_saved for a const pointer. */
static inline lc_status saved(const lc_op_ctx *ctx, int k, const lc_tensor **t) {
  lc_tensor *s = NULL;
  lc_status st = lc_ctx_saved(ctx, k, &s);
  if (!st) *t = s;
  return st;
}

/* Releases the gradients a failing backward already wrote (those of inputs needing one). */
static inline void drop_grads(const lc_op_ctx *ctx, lc_tensor **grad_in) {
  for (int i = 0; i < ctx->n_inputs; i++) {
    if (ctx->needs_grad[i]) {
      lc_release(grad_in[i]);
      grad_in[i] = NULL;
    }
  }
}

/* The incoming gradient g does not have the output's shape / dtype. */
static inline lc_status grad_shape_error(const lc_op_ctx *ctx, const lc_tensor *g) {
  char a[256], b[256];
  return lc_set_error(LC_ESHAPE, "%s: gradient of shape %s for an output of shape %s",
                      ctx->op->grad_fn_name, lc_shape_str(g->ndim, g->shape, a, sizeof a),
                      lc_shape_str(ctx->out->ndim, ctx->out->shape, b, sizeof b));
}

static inline lc_status grad_dtype_error(const lc_op_ctx *ctx, lc_dtype got) {
  return lc_set_error(LC_EDTYPE, "%s: gradient of dtype %s for an output of dtype %s",
                      ctx->op->grad_fn_name, lc_dtype_name(got), lc_dtype_name(ctx->out->dtype));
}

#endif /* LUCID_KERNELS_KERNEL_UTIL_H */
