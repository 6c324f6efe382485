/*
 * ops/norm.c - public normalization functions (lucid_norm.h): argument checks with messages
 * naming the function, then lc_apply so autograd records them, then the in-place update of
 * running statistics (outside the graph, like PyTorch's). The kernels and backward functions
 * live in src/kernels/norm.c.
 */
#include "lucid_norm.h"

#include "../autograd/autograd.h"
#include "../kernels/norm.h"
#include "check_io.h"
#include "norm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* p is NULL or a tensor of x's dtype with shape (nd, shape). */
static lc_status check_param(const char *fn, const char *what, const lc_tensor *p,
                             const lc_tensor *x, int nd, const int64_t *shape) {
  if (!p) return LC_OK;
  if (p->ndim != nd || (nd && memcmp(p->shape, shape, (size_t)nd * sizeof *shape))) {
    char a[128], b[128];
    return lc_set_error(LC_ESHAPE, "%s: expected %s of shape %s, got %s", fn, what,
                        lc_shape_str(nd, shape, a, sizeof a),
                        lc_shape_str(p->ndim, p->shape, b, sizeof b));
  }
  if (p->dtype != x->dtype)
    return lc_set_error(LC_EDTYPE, "%s: expected %s of dtype %s (the input's), got %s", fn, what,
                        lc_dtype_name(x->dtype), lc_dtype_name(p->dtype));
  return LC_OK;
}

static lc_status check_running(const char *fn, const lc_tensor *rm, const lc_tensor *rv,
                               int64_t C) {
  if (!rm && !rv) return LC_OK;
  if (!rm || !rv)
    return lc_set_error(LC_EARG, "%s: running_mean and running_var must be given together", fn);
  const lc_tensor *ts[2] = {rm, rv};
  const char *names[2] = {"running_mean", "running_var"};
  for (int k = 0; k < 2; k++) {
    char b[128];
    if (ts[k]->ndim != 1 || ts[k]->shape[0] != C)
      return lc_set_error(LC_ESHAPE, "%s: expected %s of shape {%lld}, got %s", fn, names[k],
                          (long long)C, lc_shape_str(ts[k]->ndim, ts[k]->shape, b, sizeof b));
    if (!lc_dtype_is_float(ts[k]->dtype))
      return lc_set_error(LC_EDTYPE, "%s: expected a float %s, got %s", fn, names[k],
                          lc_dtype_name(ts[k]->dtype));
  }
  return LC_OK;
}

/* r = (1 - m) r + m v[c] for each of the C entries of r (any float dtype and stride). */
static void blend(lc_tensor *r, const double *v, double m) {
  char *d = lc_data(r);
  lc_dtype dt = lc_dtype_of(r);
  int64_t C = lc_shape(r)[0], s = lc_strides(r)[0];
  for (int64_t c = 0; c < C; c++) {
    double old = lc_load_f64(d, dt, c * s);
    lc_store_f64(d, dt, c * s, (1 - m) * old + m * v[c]);
  }
  lc_bump_version(r);
}

/* ---------------------------------------------------------------- batch norm */

lc_status lc_batch_norm(const lc_tensor *x, const lc_batch_norm_opts *opts, lc_tensor **out) {
  const char *fn = "batch_norm";
  if (!x || !out) return lc_set_error(LC_EARG, "%s: NULL tensor argument", fn);
  lc_batch_norm_opts o = LC_BATCH_NORM_OPTS_INIT;
  if (opts) o = *opts;
  lc_status st = check_input(fn, x, 2);
  if (st) return st;
  int64_t C = x->shape[1];
  if ((st = check_param(fn, "weight", o.weight, x, 1, &C)) ||
      (st = check_param(fn, "bias", o.bias, x, 1, &C)) ||
      (st = check_running(fn, o.running_mean, o.running_var, C)))
    return st;
  if (!o.training && !o.running_mean)
    return lc_set_error(LC_EARG, "%s: running_mean and running_var are required when not training",
                        fn);
  if (!(o.eps >= 0)) return lc_set_error(LC_EARG, "%s: eps must be >= 0, got %g", fn, o.eps);
  int64_t per_channel = C > 0 ? x->numel / C : 0;
  if (o.training && per_channel == 1) {
    char b[128];
    return lc_set_error(LC_ESHAPE,
                        "%s: expected more than 1 value per channel when training, got input "
                        "shape %s",
                        fn, lc_shape_str(x->ndim, x->shape, b, sizeof b));
  }
  lc_tensor *in[5];
  int n = 0;
  lc_op_args args;
  memset(&args, 0, sizeof args);
  args.f[0] = o.eps;
  in[n++] = (lc_tensor *)x;
  if (o.weight) {
    in[n++] = (lc_tensor *)o.weight;
    args.flags |= LC_NORM_W;
  }
  if (o.bias) {
    in[n++] = (lc_tensor *)o.bias;
    args.flags |= LC_NORM_B;
  }
  if (o.training) {
    args.flags |= LC_NORM_TRAIN;
  } else {
    in[n++] = o.running_mean;
    in[n++] = o.running_var;
    args.flags |= LC_NORM_RS;
  }
  lc_tensor *res[2] = {NULL, NULL};
  st = lc_apply(o.relu ? &lc_op_batch_norm_relu : &lc_op_batch_norm, n, in, &args, res);
  if (st) return st;
  if (o.training && o.running_mean && per_channel > 0) {
    /* res[1] ({2, C}: mean, biased variance) is saved for backward: read it, never write it */
    const double *s = lc_data(res[1]);
    double *v = malloc((size_t)C * sizeof *v);
    if (!v) {
      lc_release(res[0]);
      lc_release(res[1]);
      return lc_error_oom((size_t)C * sizeof *v);
    }
    double corr = (double)per_channel / (double)(per_channel - 1);
    for (int64_t c = 0; c < C; c++)
      v[c] = s[C + c] * corr; /* the unbiased variance */
    blend(o.running_mean, s, o.momentum);
    blend(o.running_var, v, o.momentum);
    free(v);
  }
  lc_release(res[1]);
  *out = res[0];
  return LC_OK;
}

/* ---------------------------------------------------------------- row norms */

/* Runs a row-norm op and returns y (and, when stats is non-NULL, the {2, R} statistics). */
static lc_status row_norm(const lc_op_def *op, const lc_tensor *x, const lc_tensor *w,
                          const lc_tensor *b, int64_t G, int64_t Cg, int64_t S, double eps,
                          lc_tensor **out, lc_tensor **stats) {
  if (!(eps >= 0)) return lc_set_error(LC_EARG, "%s: eps must be >= 0, got %g", op->name, eps);
  lc_tensor *in[3];
  int n = 0;
  lc_op_args args;
  memset(&args, 0, sizeof args);
  args.i[0] = G;
  args.i[1] = Cg;
  args.i[2] = S;
  args.ni = 3;
  args.f[0] = eps;
  in[n++] = (lc_tensor *)x;
  if (w) {
    in[n++] = (lc_tensor *)w;
    args.flags |= LC_NORM_W;
  }
  if (b) {
    in[n++] = (lc_tensor *)b;
    args.flags |= LC_NORM_B;
  }
  lc_tensor *res[2] = {NULL, NULL};
  lc_status st = lc_apply(op, n, in, &args, res);
  if (st) return st;
  if (stats)
    *stats = res[1];
  else
    lc_release(res[1]);
  *out = res[0];
  return LC_OK;
}

lc_status lc_norm_check_shape(const char *fn, int nshape, const int64_t *normalized_shape) {
  if (nshape < 1 || nshape > LC_MAX_DIMS)
    return lc_set_error(LC_EARG, "%s: normalized_shape must have 1..%d dims, got %d", fn,
                        LC_MAX_DIMS, nshape);
  for (int k = 0; k < nshape; k++)
    if (normalized_shape[k] < 1)
      return lc_set_error(LC_EARG, "%s: normalized_shape[" LC_POS_D "] must be >= 1, got %lld", fn,
                          k, (long long)normalized_shape[k]);
  return LC_OK;
}

lc_status lc_layer_norm(const lc_tensor *x, int nshape, const int64_t *normalized_shape,
                        const lc_tensor *weight, const lc_tensor *bias, double eps,
                        lc_tensor **out) {
  const char *fn = "layer_norm";
  if (!x || !out || (nshape > 0 && !normalized_shape))
    return lc_set_error(LC_EARG, "%s: NULL argument", fn);
  lc_status st = check_input(fn, x, 0);
  if (!st) st = lc_norm_check_shape(fn, nshape, normalized_shape);
  if (st) return st;
  char a[128], b[128];
  if (nshape > x->ndim ||
      memcmp(x->shape + x->ndim - nshape, normalized_shape, (size_t)nshape * sizeof(int64_t))) {
    return lc_set_error(LC_ESHAPE,
                        "%s: expected an input whose last %d dims are %s, got input shape %s", fn,
                        nshape, lc_shape_str(nshape, normalized_shape, a, sizeof a),
                        lc_shape_str(x->ndim, x->shape, b, sizeof b));
  }
  if ((st = check_param(fn, "weight", weight, x, nshape, normalized_shape)) ||
      (st = check_param(fn, "bias", bias, x, nshape, normalized_shape)))
    return st;
  int64_t D = lc_shape_numel(nshape, normalized_shape);
  return row_norm(&lc_op_layer_norm, x, weight, bias, 1, D, 1, eps, out, NULL);
}

lc_status lc_group_norm(const lc_tensor *x, int64_t num_groups, const lc_tensor *weight,
                        const lc_tensor *bias, double eps, lc_tensor **out) {
  const char *fn = "group_norm";
  if (!x || !out) return lc_set_error(LC_EARG, "%s: NULL tensor argument", fn);
  lc_status st = check_input(fn, x, 2);
  if (st) return st;
  int64_t C = x->shape[1];
  if (num_groups < 1)
    return lc_set_error(LC_EARG, "%s: num_groups must be >= 1, got %lld", fn,
                        (long long)num_groups);
  if (C % num_groups) {
    char b[128];
    return lc_set_error(LC_ESHAPE,
                        "%s: expected the number of channels (%lld) to be divisible by num_groups "
                        "(%lld): input shape %s",
                        fn, (long long)C, (long long)num_groups,
                        lc_shape_str(x->ndim, x->shape, b, sizeof b));
  }
  if ((st = check_param(fn, "weight", weight, x, 1, &C)) ||
      (st = check_param(fn, "bias", bias, x, 1, &C)))
    return st;
  int64_t S = lc_shape_numel(x->ndim - 2, x->shape + 2);
  return row_norm(&lc_op_group_norm, x, weight, bias, num_groups, C / num_groups, S, eps, out,
                  NULL);
}

lc_status lc_instance_norm(const lc_tensor *x, const lc_instance_norm_opts *opts, lc_tensor **out) {
  const char *fn = "instance_norm";
  if (!x || !out) return lc_set_error(LC_EARG, "%s: NULL tensor argument", fn);
  lc_instance_norm_opts o = LC_INSTANCE_NORM_OPTS_INIT;
  if (opts) o = *opts;
  lc_status st = check_input(fn, x, 2);
  if (st) return st;
  int64_t N = x->shape[0], C = x->shape[1];
  if ((st = check_param(fn, "weight", o.weight, x, 1, &C)) ||
      (st = check_param(fn, "bias", o.bias, x, 1, &C)) ||
      (st = check_running(fn, o.running_mean, o.running_var, C)))
    return st;
  int64_t S = lc_shape_numel(x->ndim - 2, x->shape + 2);
  if (!o.use_input_stats) {
    if (!o.running_mean)
      return lc_set_error(LC_EARG,
                          "%s: running_mean and running_var are required without "
                          "use_input_stats",
                          fn);
    /* the running statistics are per channel: batch norm's eval transform */
    lc_batch_norm_opts b = {o.weight, o.bias, o.running_mean, o.running_var,
                            false,    0,      o.eps,          false};
    return lc_batch_norm(x, &b, out);
  }
  if (S == 1) {
    char b[128];
    return lc_set_error(LC_ESHAPE,
                        "%s: expected more than 1 spatial element when training, got input "
                        "shape %s",
                        fn, lc_shape_str(x->ndim, x->shape, b, sizeof b));
  }
  lc_tensor *stats = NULL, *y = NULL;
  st = row_norm(&lc_op_instance_norm, x, o.weight, o.bias, C, 1, S, o.eps, &y,
                o.running_mean ? &stats : NULL);
  if (st) return st;
  if (stats && N > 0 && S > 0) {
    /* PyTorch: the running stats take the batch average of the per-instance statistics,
     * variances unbiased over the spatial positions. stats ({2, N C}, row r = n C + c) is
     * saved for backward: read only. */
    const double *sd = lc_data(stats);
    int64_t R = N * C;
    double corr = S > 1 ? (double)S / (double)(S - 1) : 1.0;
    double *acc = calloc((size_t)(2 * C), sizeof *acc);
    if (!acc) {
      lc_release(stats);
      lc_release(y);
      return lc_error_oom((size_t)(2 * C) * sizeof *acc);
    }
    for (int64_t n = 0; n < N; n++)
      for (int64_t c = 0; c < C; c++) {
        acc[c] += sd[n * C + c];
        acc[C + c] += sd[R + n * C + c];
      }
    for (int64_t c = 0; c < C; c++) {
      acc[c] /= (double)N;
      acc[C + c] = acc[C + c] / (double)N * corr;
    }
    blend(o.running_mean, acc, o.momentum);
    blend(o.running_var, acc + C, o.momentum);
    free(acc);
  }
  lc_release(stats);
  *out = y;
  return LC_OK;
}
