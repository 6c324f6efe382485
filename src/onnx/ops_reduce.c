/* ops_reduce.c - ONNX reductions (Reduce*) over lucid's lc_reduce. */
#include "onnx_internal.h"

typedef enum rkind {
  R_SUM,
  R_MEAN,
  R_MAX,
  R_MIN,
  R_PROD,
  R_L1,
  R_L2,
  R_LOGSUM,
  R_LOGSUMEXP,
  R_SUMSQ
} rkind;

/* The axes to reduce: the attribute up to opset 12; ReduceSum takes them as its second input
 * from opset 13 (the other reductions at 18). *n == 0: none given. */
static lc_status read_axes(ox_ctx *c, rkind k, int rank, int *dims, int *n) {
  int64_t v[LC_MAX_DIMS];
  int cnt = 0;
  lc_status st;
  if (k == R_SUM && c->opset >= 13) {
    if (c->n_in > 1 && c->in[1]) {
      if ((st = ox_read_ints(c->in[1], "axes", v, LC_MAX_DIMS, &cnt))) return st;
    }
  } else {
    const int64_t *a;
    int64_t na = ox_attr_ints(c->node, "axes", &a);
    if (na > LC_MAX_DIMS) return ox_node_error(c, LC_EARG, "%lld axes", (long long)na);
    for (int64_t i = 0; i < na; i++)
      v[cnt++] = a[i];
  }
  for (int i = 0; i < cnt; i++) {
    if ((st = ox_axis(v[i], rank, "axes", &dims[i]))) return st;
    for (int j = 0; j < i; j++)
      if (dims[j] == dims[i])
        return ox_node_error(c, LC_EARG, "axis %lld repeated", (long long)v[i]);
  }
  *n = cnt;
  return LC_OK;
}

static lc_status reduce_run(ox_ctx *c, rkind k) {
  const lc_tensor *x = c->in[0];
  int rank = lc_ndim(x);
  lc_reduce_opts o = {0};
  int n = 0;
  lc_status st = read_axes(c, k, rank, o.dims, &n);
  if (st) return st;
  if (n == 0) {
    /* ReduceSum 13: noop_with_empty_axes makes empty axes the identity */
    if (k == R_SUM && ox_attr_int(c->node, "noop_with_empty_axes", 0)) {
      c->out[0] = lc_retain((lc_tensor *)x);
      return LC_OK;
    }
    for (int i = 0; i < rank; i++)
      o.dims[i] = i;
    n = rank;
  }
  o.ndims = n;
  o.keepdim = ox_attr_int(c->node, "keepdims", 1) != 0;
  if (rank == 0) o.ndims = 0;
  lc_dtype dt = lc_dtype_of(x);
  /* lucid widens integer sums to int64 and refuses float math on integers: integers compute
   * in float64 (exact for the int32 range) and are cast back to the input's dtype */
  lc_tensor *w = NULL, *t = NULL, *y = NULL;
  if (!lc_dtype_is_float(dt) && k != R_MAX && k != R_MIN)
    st = lc_to_dtype(x, LC_FLOAT64, &w);
  else
    w = lc_retain((lc_tensor *)x);
  if (st) return st;
  switch (k) {
  case R_SUM: st = lc_reduce(LC_SUM, w, &o, &y); break;
  case R_MEAN: st = lc_reduce(LC_MEAN, w, &o, &y); break;
  case R_MAX: st = lc_reduce(LC_AMAX, w, &o, &y); break;
  case R_MIN: st = lc_reduce(LC_AMIN, w, &o, &y); break;
  case R_PROD: st = lc_reduce(LC_PROD, w, &o, &y); break;
  case R_L1:
    if (!(st = lc_unary(LC_ABS, w, &t))) st = lc_reduce(LC_SUM, t, &o, &y);
    break;
  case R_L2:
    if (!(st = lc_binary(LC_MUL, w, w, &t)) && !(st = lc_reduce(LC_SUM, t, &o, &y))) {
      lc_release(t);
      t = y;
      y = NULL;
      st = lc_unary(LC_SQRT, t, &y);
    }
    break;
  case R_LOGSUM:
    if (!(st = lc_reduce(LC_SUM, w, &o, &t))) st = lc_unary(LC_LOG, t, &y);
    break;
  case R_LOGSUMEXP: st = lc_reduce(LC_LOGSUMEXP, w, &o, &y); break;
  case R_SUMSQ:
    if (!(st = lc_binary(LC_MUL, w, w, &t))) st = lc_reduce(LC_SUM, t, &o, &y);
    break;
  }
  lc_release(w);
  lc_release(t);
  if (st) return st;
  if (lc_dtype_of(y) != dt) { /* back to the input's dtype (integers truncate) */
    lc_tensor *r = NULL;
    st = lc_to_dtype(y, dt, &r);
    lc_release(y);
    if (st) return st;
    y = r;
  }
  c->out[0] = y;
  return LC_OK;
}

lc_status ox_reduce_sum(ox_ctx *c) { return reduce_run(c, R_SUM); }
lc_status ox_reduce_mean(ox_ctx *c) { return reduce_run(c, R_MEAN); }
lc_status ox_reduce_max(ox_ctx *c) { return reduce_run(c, R_MAX); }
lc_status ox_reduce_min(ox_ctx *c) { return reduce_run(c, R_MIN); }
lc_status ox_reduce_prod(ox_ctx *c) { return reduce_run(c, R_PROD); }
lc_status ox_reduce_l1(ox_ctx *c) { return reduce_run(c, R_L1); }
lc_status ox_reduce_l2(ox_ctx *c) { return reduce_run(c, R_L2); }
lc_status ox_reduce_log_sum(ox_ctx *c) { return reduce_run(c, R_LOGSUM); }
lc_status ox_reduce_log_sum_exp(ox_ctx *c) { return reduce_run(c, R_LOGSUMEXP); }
lc_status ox_reduce_sum_square(ox_ctx *c) { return reduce_run(c, R_SUMSQ); }
