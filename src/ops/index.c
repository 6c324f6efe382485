/*
 * index.c - public indexing functions: index_select, gather, scatter(_), scatter_add,
 * masked_fill(_), masked_select, nonzero. The op forwards (src/kernels/index.c) do the shape,
 * dtype and range checks; these check pointers and dims and record through lc_apply.
 */
#include "../autograd/autograd.h"

static lc_status check_ptrs(const char *fn, int n, const lc_tensor *const *ts,
                            const char *const *names, void *out) {
  for (int k = 0; k < n; k++)
    if (!ts[k]) return lc_set_error(LC_EARG, "%s: %s is NULL", fn, names[k]);
  if (!out) return lc_set_error(LC_EARG, "%s: out is NULL", fn);
  return LC_OK;
}

static lc_status dim_args(const char *fn, const lc_tensor *t, int dim, lc_op_args *a) {
  lc_status st = lc_wrap_dim(&dim, t->ndim, fn);
  if (st) return st;
  a->i[0] = dim;
  a->ni = 1;
  return LC_OK;
}

lc_status lc_index_select(const lc_tensor *t, int dim, const lc_tensor *index, lc_tensor **out) {
  const lc_tensor *ts[] = {t, index};
  const char *names[] = {"tensor", "index"};
  lc_status st = check_ptrs("index_select", 2, ts, names, out);
  lc_op_args a = {0};
  if (!st) st = dim_args("index_select", t, dim, &a);
  if (st) return st;
  lc_tensor *in[2] = {(lc_tensor *)t, (lc_tensor *)index};
  return lc_apply(&lc_op_index_select, 2, in, &a, out);
}

lc_status lc_gather(const lc_tensor *t, int dim, const lc_tensor *index, lc_tensor **out) {
  const lc_tensor *ts[] = {t, index};
  const char *names[] = {"tensor", "index"};
  lc_status st = check_ptrs("gather", 2, ts, names, out);
  lc_op_args a = {0};
  if (!st) st = dim_args("gather", t, dim, &a);
  if (st) return st;
  lc_tensor *in[2] = {(lc_tensor *)t, (lc_tensor *)index};
  return lc_apply(&lc_op_gather, 2, in, &a, out);
}

static lc_status scatter_args(const char *fn, const lc_tensor *t, int dim, const lc_tensor *index,
                              const lc_tensor *src, void *out, lc_op_args *a) {
  const lc_tensor *ts[] = {t, index, src};
  const char *names[] = {"tensor", "index", "src"};
  lc_status st = check_ptrs(fn, 3, ts, names, out);
  if (!st) st = dim_args(fn, t, dim, a);
  return st;
}

lc_status lc_scatter(const lc_tensor *t, int dim, const lc_tensor *index, const lc_tensor *src,
                     lc_tensor **out) {
  lc_op_args a = {0};
  lc_status st = scatter_args("scatter", t, dim, index, src, out, &a);
  if (st) return st;
  lc_tensor *in[3] = {(lc_tensor *)t, (lc_tensor *)index, (lc_tensor *)src};
  return lc_apply(&lc_op_scatter, 3, in, &a, out);
}

lc_status lc_scatter_(lc_tensor *t, int dim, const lc_tensor *index, const lc_tensor *src) {
  lc_op_args a = {0};
  lc_status st = scatter_args("scatter_", t, dim, index, src, t, &a);
  if (st) return st;
  lc_tensor *in[3] = {t, (lc_tensor *)index, (lc_tensor *)src};
  return lc_apply_inplace(&lc_op_scatter, 3, in, &a);
}

lc_status lc_scatter_add(const lc_tensor *t, int dim, const lc_tensor *index, const lc_tensor *src,
                         lc_tensor **out) {
  lc_op_args a = {0};
  lc_status st = scatter_args("scatter_add", t, dim, index, src, out, &a);
  if (st) return st;
  lc_tensor *in[3] = {(lc_tensor *)t, (lc_tensor *)index, (lc_tensor *)src};
  return lc_apply(&lc_op_scatter_add, 3, in, &a, out);
}

lc_status lc_masked_fill(const lc_tensor *t, const lc_tensor *mask, double value, lc_tensor **out) {
  const lc_tensor *ts[] = {t, mask};
  const char *names[] = {"tensor", "mask"};
  lc_status st = check_ptrs("masked_fill", 2, ts, names, out);
  if (st) return st;
  lc_op_args a = {.f = {value}};
  lc_tensor *in[2] = {(lc_tensor *)t, (lc_tensor *)mask};
  return lc_apply(&lc_op_masked_fill, 2, in, &a, out);
}

lc_status lc_masked_fill_(lc_tensor *t, const lc_tensor *mask, double value) {
  const lc_tensor *ts[] = {t, mask};
  const char *names[] = {"tensor", "mask"};
  lc_status st = check_ptrs("masked_fill_", 2, ts, names, t);
  if (st) return st;
  lc_op_args a = {.f = {value}};
  lc_tensor *in[2] = {t, (lc_tensor *)mask};
  return lc_apply_inplace(&lc_op_masked_fill, 2, in, &a);
}

lc_status lc_masked_select(const lc_tensor *t, const lc_tensor *mask, lc_tensor **out) {
  const lc_tensor *ts[] = {t, mask};
  const char *names[] = {"tensor", "mask"};
  lc_status st = check_ptrs("masked_select", 2, ts, names, out);
  if (st) return st;
  lc_op_args a = {0};
  lc_tensor *in[2] = {(lc_tensor *)t, (lc_tensor *)mask};
  return lc_apply(&lc_op_masked_select, 2, in, &a, out);
}

lc_status lc_nonzero(const lc_tensor *t, lc_tensor **out) {
  const lc_tensor *ts[] = {t};
  const char *names[] = {"tensor"};
  lc_status st = check_ptrs("nonzero", 1, ts, names, out);
  if (st) return st;
  lc_op_args a = {0};
  lc_tensor *in[1] = {(lc_tensor *)t};
  return lc_apply(&lc_op_nonzero, 1, in, &a, out);
}
