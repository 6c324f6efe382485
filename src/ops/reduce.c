/*
 * ops/reduce.c - public reductions (lucid_core.h): argument checks, then lc_apply so autograd
 * records them. lc_reduce serves every row of LC_REDUCE_LIST; the kernels and backward
 * functions live in src/kernels/reduce.c.
 */
#include "../autograd/autograd.h"

#include <string.h>

lc_status lc_reduce(lc_reduce_op op, const lc_tensor *x, const lc_reduce_opts *opts,
                    lc_tensor **out) {
  if ((unsigned)op >= LC_REDUCE_COUNT)
    return lc_set_error(LC_EARG, "lc_reduce: unknown reduction %d", (int)op);
  const char *name = lc_op_reduce[op].name;
  if (!x || !out) return lc_set_error(LC_EARG, "%s: NULL tensor argument", name);
  lc_op_args args;
  memset(&args, 0, sizeof args);
  args.f[0] = 2; /* P rows (norm): p */
  args.f[1] = 1; /* CORRECTION rows (var, std): correction */
  if (opts) {
    if (opts->ndims < 0 || opts->ndims > LC_MAX_DIMS)
      return lc_set_error(LC_EARG, "%s: expected 0..%d dims to reduce, got %d", name, LC_MAX_DIMS,
                          opts->ndims);
    for (int k = 0; k < opts->ndims; k++) /* the kernel owns the dims rule (range, repeats) */
      args.i[k] = opts->dims[k];
    args.ni = opts->ndims;
    if (opts->keepdim) args.flags |= LC_ARG_KEEPDIM;
    if (lc_reduce_args[op] == LC_RA_P) {
      if (opts->p != opts->p) return lc_set_error(LC_EARG, "%s: p must not be nan", name);
      args.f[0] = opts->p;
    }
    if (lc_reduce_args[op] == LC_RA_CORRECTION) {
      /* carried as a double to the kernel: exact, and safe to convert back, within 2^53 */
      if (opts->correction > (INT64_C(1) << 53) || opts->correction < -(INT64_C(1) << 53))
        return lc_set_error(LC_EARG, "%s: correction must be within -2^53..2^53, got %lld", name,
                            (long long)opts->correction);
      args.f[1] = (double)opts->correction;
    }
  }
  if (args.ni == 0) args.flags |= LC_ARG_ALL;
  lc_tensor *in[1] = {(lc_tensor *)x};
  return lc_apply(&lc_op_reduce[op], 1, in, &args, out);
}

static lc_status max_min_dim(const lc_op_def *op, const lc_tensor *x, int dim, bool keepdim,
                             lc_tensor **values, lc_tensor **indices) {
  if (!x || !values || !indices) return lc_set_error(LC_EARG, "%s: NULL tensor argument", op->name);
  lc_status st = lc_wrap_dim(&dim, x->ndim, op->name);
  if (st) return st;
  lc_op_args args;
  memset(&args, 0, sizeof args);
  args.i[0] = dim;
  args.ni = 1;
  if (keepdim) args.flags |= LC_ARG_KEEPDIM;
  lc_tensor *in[1] = {(lc_tensor *)x}, *outs[2] = {NULL, NULL};
  if ((st = lc_apply(op, 1, in, &args, outs))) return st;
  *values = outs[0];
  *indices = outs[1];
  return LC_OK;
}

lc_status lc_max_dim(const lc_tensor *x, int dim, bool keepdim, lc_tensor **values,
                     lc_tensor **indices) {
  return max_min_dim(&lc_op_max_dim, x, dim, keepdim, values, indices);
}

lc_status lc_min_dim(const lc_tensor *x, int dim, bool keepdim, lc_tensor **values,
                     lc_tensor **indices) {
  return max_min_dim(&lc_op_min_dim, x, dim, keepdim, values, indices);
}

static lc_status arg_ext(const lc_op_def *op, const lc_tensor *x, bool all, int dim, bool keepdim,
                         lc_tensor **out) {
  if (!x || !out) return lc_set_error(LC_EARG, "%s: NULL tensor argument", op->name);
  lc_op_args args;
  memset(&args, 0, sizeof args);
  if (all) {
    args.flags |= LC_ARG_ALL;
  } else {
    lc_status st = lc_wrap_dim(&dim, x->ndim, op->name);
    if (st) return st;
    args.i[0] = dim;
    args.ni = 1;
  }
  if (keepdim) args.flags |= LC_ARG_KEEPDIM;
  lc_tensor *in[1] = {(lc_tensor *)x};
  return lc_apply(op, 1, in, &args, out);
}

lc_status lc_argmax(const lc_tensor *x, bool all, int dim, bool keepdim, lc_tensor **out) {
  return arg_ext(&lc_op_argmax, x, all, dim, keepdim, out);
}

lc_status lc_argmin(const lc_tensor *x, bool all, int dim, bool keepdim, lc_tensor **out) {
  return arg_ext(&lc_op_argmin, x, all, dim, keepdim, out);
}
