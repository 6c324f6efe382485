/*
 * ops/sort.c - the public sorting family (lucid_core.h): sort, argsort, topk, kthvalue, median
 * and mode. Pointer and dim checks here, then lc_apply records them; the kernels (k range,
 * dtypes, empty dims) and backward functions live in src/kernels/sort.c.
 */
#include "../autograd/autograd.h"

#include <string.h>

/* Runs op on x with args {dim, k, flag, sorted} into one or two outputs. */
static lc_status run(const lc_op_def *op, const lc_tensor *x, int dim, int64_t k, bool flag,
                     bool sorted, bool keepdim, lc_tensor **o0, lc_tensor **o1) {
  if (!x || !o0 || (op->n_outputs == 2 && !o1))
    return lc_set_error(LC_EARG, "%s: NULL tensor argument", op->name);
  lc_status st = lc_wrap_dim(&dim, x->ndim, op->name);
  if (st) return st;
  lc_op_args a;
  memset(&a, 0, sizeof a);
  a.i[0] = dim;
  a.i[1] = k;
  a.i[2] = flag;
  a.i[3] = sorted;
  a.ni = 4;
  if (keepdim) a.flags |= LC_ARG_KEEPDIM;
  lc_tensor *in[1] = {(lc_tensor *)x}, *outs[2] = {NULL, NULL};
  if ((st = lc_apply(op, 1, in, &a, outs))) return st;
  *o0 = outs[0];
  if (op->n_outputs == 2) *o1 = outs[1];
  return LC_OK;
}

lc_status lc_sort(const lc_tensor *x, int dim, bool descending, bool stable, lc_tensor **values,
                  lc_tensor **indices) {
  (void)stable; /* every sort is stable */
  return run(&lc_op_sort, x, dim, 0, descending, true, false, values, indices);
}

lc_status lc_argsort(const lc_tensor *x, int dim, bool descending, bool stable, lc_tensor **out) {
  (void)stable;
  return run(&lc_op_argsort, x, dim, 0, descending, true, false, out, NULL);
}

lc_status lc_topk(const lc_tensor *x, int64_t k, int dim, bool largest, bool sorted,
                  lc_tensor **values, lc_tensor **indices) {
  return run(&lc_op_topk, x, dim, k, largest, sorted, false, values, indices);
}

lc_status lc_kthvalue(const lc_tensor *x, int64_t k, int dim, bool keepdim, lc_tensor **values,
                      lc_tensor **indices) {
  return run(&lc_op_kthvalue, x, dim, k, false, true, keepdim, values, indices);
}

lc_status lc_median(const lc_tensor *x, lc_tensor **out) {
  if (!x || !out) return lc_set_error(LC_EARG, "median: NULL tensor argument");
  lc_op_args a;
  memset(&a, 0, sizeof a);
  a.flags = LC_ARG_ALL;
  lc_tensor *in[1] = {(lc_tensor *)x};
  return lc_apply(&lc_op_median, 1, in, &a, out);
}

lc_status lc_median_dim(const lc_tensor *x, int dim, bool keepdim, lc_tensor **values,
                        lc_tensor **indices) {
  return run(&lc_op_median_dim, x, dim, 0, false, true, keepdim, values, indices);
}

lc_status lc_mode(const lc_tensor *x, int dim, bool keepdim, lc_tensor **values,
                  lc_tensor **indices) {
  return run(&lc_op_mode, x, dim, 0, false, true, keepdim, values, indices);
}
