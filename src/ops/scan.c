/*
 * scan.c - public cumulative functions: cumsum, cumprod, logcumsumexp (ops of
 * src/kernels/scan.c, whose forwards check dims and dtypes) and diff, composed here of lc_cat,
 * lc_narrow and lc_binary as PyTorch composes it, so its gradient is theirs.
 */
#include "../autograd/autograd.h"

#include <string.h>

static lc_status scan_apply(const lc_op_def *op, const lc_tensor *t, int dim, const lc_dtype *dtype,
                            lc_tensor **out) {
  if (!t) return lc_set_error(LC_EARG, "%s: tensor is NULL", op->name);
  if (!out) return lc_set_error(LC_EARG, "%s: out is NULL", op->name);
  lc_op_args a = {.i = {dim, dtype != NULL}, .ni = 2, .dtype = dtype ? *dtype : LC_FLOAT32};
  lc_tensor *in[1] = {(lc_tensor *)t};
  return lc_apply(op, 1, in, &a, out);
}

lc_status lc_cumsum(const lc_tensor *t, int dim, const lc_dtype *dtype, lc_tensor **out) {
  return scan_apply(&lc_op_cumsum, t, dim, dtype, out);
}

lc_status lc_cumprod(const lc_tensor *t, int dim, const lc_dtype *dtype, lc_tensor **out) {
  return scan_apply(&lc_op_cumprod, t, dim, dtype, out);
}

lc_status lc_logcumsumexp(const lc_tensor *t, int dim, lc_tensor **out) {
  return scan_apply(&lc_op_logcumsumexp, t, dim, NULL, out);
}

/* ---------------------------------------------------------------- diff */

/* prepend / append: as many dims as t, its sizes except along dim. */
static lc_status check_side(const lc_tensor *t, const lc_tensor *p, int dim, const char *what) {
  if (!p) return LC_OK;
  if (p->ndim != t->ndim)
    return lc_set_error(LC_ESHAPE, "diff: %s must have as many dims as the input (%d), got %d",
                        what, t->ndim, p->ndim);
  for (int d = 0; d < t->ndim; d++)
    if (d != dim && p->shape[d] != t->shape[d])
      return lc_set_error(LC_ESHAPE,
                          "diff: %s must match the input's shape except along dim " LC_POS_D
                          ": the input's size of dim " LC_POS_D " is %lld, %s's is %lld",
                          what, dim, d, (long long)t->shape[d], what, (long long)p->shape[d]);
  return LC_OK;
}

lc_status lc_diff(const lc_tensor *t, int64_t n, int dim, const lc_tensor *prepend,
                  const lc_tensor *append, lc_tensor **out) {
  if (!t) return lc_set_error(LC_EARG, "diff: tensor is NULL");
  if (!out) return lc_set_error(LC_EARG, "diff: out is NULL");
  if (t->ndim == 0)
    return lc_set_error(LC_ESHAPE, "diff: expected a tensor with at least one dim, got a 0-dim "
                                   "tensor");
  lc_status st = lc_wrap_dim(&dim, t->ndim, "diff");
  if (!st) st = check_side(t, prepend, dim, "prepend");
  if (!st) st = check_side(t, append, dim, "append");
  if (st) return st;
  if (n == 0) return lc_clone(t, out); /* PyTorch: a copy, prepend and append unused */

  lc_tensor *r = NULL;
  if (prepend || append) {
    lc_tensor *parts[3];
    int k = 0;
    if (prepend) parts[k++] = (lc_tensor *)prepend;
    parts[k++] = (lc_tensor *)t;
    if (append) parts[k++] = (lc_tensor *)append;
    st = lc_cat(k, parts, dim, &r);
    if (st) return st;
  } else {
    r = lc_retain((lc_tensor *)t);
  }
  int64_t size = r->shape[dim];
  int64_t times = n > size ? size : n; /* n < 0: no step, as torch.diff */
  bool is_bool = r->dtype == LC_BOOL;
  for (int64_t i = 0; i < times; i++) {
    int64_t len = r->shape[dim] - 1;
    lc_tensor *hi = NULL, *lo = NULL, *d = NULL;
    st = lc_narrow(r, dim, 1, len, &hi);
    if (!st) st = lc_narrow(r, dim, 0, len, &lo);
    if (!st) st = lc_binary(is_bool ? LC_LOGICAL_XOR : LC_SUB, hi, lo, &d);
    lc_release(hi);
    lc_release(lo);
    lc_release(r);
    if (st) return st;
    r = d;
  }
  *out = r;
  return LC_OK;
}
