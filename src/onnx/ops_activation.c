/* ops_activation.c - ONNX activations (LeakyRelu, Elu, Selu, Celu, PRelu, HardSigmoid,
 * HardSwish, Softplus, Softsign, ThresholdedRelu, Shrink) and Softmax, LogSoftmax, Hardmax. */
#include "onnx_internal.h"

#include <math.h>
#include <stdlib.h>

/* ---------------------------------------------------------------- helpers */

static lc_status need_float(const ox_ctx *c, const lc_tensor *x) {
  if (!x) return ox_node_error(c, LC_EARG, "input 0 is missing");
  lc_dtype dt = lc_dtype_of(x);
  if (!lc_dtype_is_float(dt))
    return ox_node_error(c, LC_EDTYPE, "a %s input is not supported (float types only)",
                         lc_dtype_name(dt));
  return LC_OK;
}

/* lucid's fused activations take float32/float64: halves run in float32 and convert back. */
typedef lc_status (*lucid_act)(const lc_tensor *x, const double *p, lc_tensor **out);

static lc_status run_lucid(ox_ctx *c, lucid_act f, const double *p) {
  const lc_tensor *x = c->in[0];
  lc_status st = need_float(c, x);
  if (st) return st;
  lc_dtype dt = lc_dtype_of(x);
  if (!lc_dtype_is_half(dt)) return f(x, p, &c->out[0]);
  lc_tensor *x32, *y32;
  if ((st = lc_to_dtype(x, LC_FLOAT32, &x32))) return st;
  st = f(x32, p, &y32);
  lc_release(x32);
  if (st) return st;
  st = lc_to_dtype(y32, dt, &c->out[0]);
  lc_release(y32);
  return st;
}

/* ---------------------------------------------------------------- elementwise activations */

static lc_status l_leaky(const lc_tensor *x, const double *p, lc_tensor **out) {
  return lc_leaky_relu(x, p[0], out);
}
static lc_status l_elu(const lc_tensor *x, const double *p, lc_tensor **out) {
  return lc_elu(x, p[0], out);
}
static lc_status l_softplus(const lc_tensor *x, const double *p, lc_tensor **out) {
  (void)p;
  return lc_softplus(x, 1.0, 20.0, out);
}
static lc_status l_hardswish(const lc_tensor *x, const double *p, lc_tensor **out) {
  (void)p;
  return lc_hardswish(x, out);
}

lc_status ox_leaky_relu(ox_ctx *c) {
  double p[1] = {ox_attr_float(c->node, "alpha", 0.01)};
  return run_lucid(c, l_leaky, p);
}

lc_status ox_elu(ox_ctx *c) {
  double p[1] = {ox_attr_float(c->node, "alpha", 1.0)};
  return run_lucid(c, l_elu, p);
}

lc_status ox_softplus(ox_ctx *c) { return run_lucid(c, l_softplus, NULL); }

/* HardSwish: x max(0, min(1, x / 6 + 1/2)), lucid's x relu6(x + 3) / 6. */
lc_status ox_hard_swish(ox_ctx *c) { return run_lucid(c, l_hardswish, NULL); }

static double f_selu(double x, const double *p) { return p[1] * (x > 0 ? x : p[0] * (exp(x) - 1)); }

lc_status ox_selu(ox_ctx *c) {
  lc_status st = need_float(c, c->in[0]);
  if (st) return st;
  double p[2] = {ox_attr_float(c->node, "alpha", 1.67326319217681884765625),
                 ox_attr_float(c->node, "gamma", 1.05070102214813232421875)};
  return ox_map_scalar(c, c->in[0], f_selu, p, &c->out[0]);
}

/* Celu (opset 12): max(0, x) + min(0, alpha (exp(x / alpha) - 1)). */
static double f_celu(double x, const double *p) {
  return (x > 0 ? x : 0) + fmin(0, p[0] * expm1(x / p[0]));
}

lc_status ox_celu(ox_ctx *c) {
  lc_status st = need_float(c, c->in[0]);
  if (st) return st;
  double p[1] = {ox_attr_float(c->node, "alpha", 1.0)};
  if (p[0] == 0) return ox_node_error(c, LC_EARG, "alpha 0 is not supported");
  return ox_map_scalar(c, c->in[0], f_celu, p, &c->out[0]);
}

static double f_hard_sigmoid(double x, const double *p) {
  return fmax(0, fmin(1, p[0] * x + p[1]));
}

lc_status ox_hard_sigmoid(ox_ctx *c) {
  lc_status st = need_float(c, c->in[0]);
  if (st) return st;
  double p[2] = {ox_attr_float(c->node, "alpha", 0.2), ox_attr_float(c->node, "beta", 0.5)};
  return ox_map_scalar(c, c->in[0], f_hard_sigmoid, p, &c->out[0]);
}

static double f_softsign(double x, const double *p) {
  (void)p;
  return x / (1 + fabs(x));
}

lc_status ox_softsign(ox_ctx *c) {
  lc_status st = need_float(c, c->in[0]);
  if (st) return st;
  return ox_map_scalar(c, c->in[0], f_softsign, NULL, &c->out[0]);
}

static double f_thresholded_relu(double x, const double *p) { return x > p[0] ? x : 0; }

lc_status ox_thresholded_relu(ox_ctx *c) {
  lc_status st = need_float(c, c->in[0]);
  if (st) return st;
  double p[1] = {ox_attr_float(c->node, "alpha", 1.0)};
  return ox_map_scalar(c, c->in[0], f_thresholded_relu, p, &c->out[0]);
}

/* Shrink (opset 9, any number type): x + bias below -lambd, x - bias above lambd, else 0. */
static double f_shrink(double x, const double *p) {
  return x < -p[0] ? x + p[1] : x > p[0] ? x - p[1] : 0;
}

lc_status ox_shrink(ox_ctx *c) {
  if (!c->in[0]) return ox_node_error(c, LC_EARG, "input 0 is missing");
  double p[2] = {ox_attr_float(c->node, "lambd", 0.5), ox_attr_float(c->node, "bias", 0.0)};
  return ox_map_scalar(c, c->in[0], f_shrink, p, &c->out[0]);
}

/* PRelu: x < 0 ? slope x : x, slope broadcasting to x (unidirectionally). */
lc_status ox_prelu(ox_ctx *c) {
  const lc_tensor *x = c->in[0], *slope = c->in[1];
  if (!x || !slope) return ox_node_error(c, LC_EARG, "input %d is missing", x ? 1 : 0);
  if (lc_dtype_of(x) == LC_BOOL)
    return ox_node_error(c, LC_EDTYPE, "a bool input is not supported");
  lc_tensor *neg = NULL, *sx = NULL, *y = NULL;
  lc_status st = lc_binary_scalar(LC_LT, x, 0.0, false, &neg);
  if (!st) st = lc_binary(LC_MUL, x, slope, &sx);
  if (!st) st = lc_where(neg, sx, x, &y);
  lc_release(neg);
  lc_release(sx);
  if (st) return st;
  bool same = lc_ndim(y) == lc_ndim(x);
  for (int i = 0; same && i < lc_ndim(x); i++)
    same = lc_shape(y)[i] == lc_shape(x)[i];
  if (!same) {
    lc_release(y);
    return ox_node_error(c, LC_ESHAPE, "slope does not broadcast to the input's shape");
  }
  if (lc_dtype_of(y) != lc_dtype_of(x)) {
    lc_tensor *r;
    st = lc_to_dtype(y, lc_dtype_of(x), &r);
    lc_release(y);
    if (st) return st;
    y = r;
  }
  c->out[0] = y;
  return LC_OK;
}

/* ---------------------------------------------------------------- softmax family */

/* Before opset 13 the input is coerced to 2-D [prod(dims[:axis]), prod(dims[axis:])] (axis
 * default 1, in [-r, r]) and the op runs over each row; from 13 it runs along axis (default
 * -1). Either way: the op over `n` consecutive-by-`inner` elements, `outer` times. */
static lc_status softmax_layout(ox_ctx *c, int64_t *outer, int64_t *n, int64_t *inner,
                                int *axis_out) {
  const lc_tensor *x = c->in[0];
  int r = lc_ndim(x);
  const int64_t *sh = lc_shape(x);
  bool legacy = c->opset < 13;
  int64_t axis = ox_attr_int(c->node, "axis", legacy ? 1 : -1);
  int ax;
  if (legacy) {
    if (axis < -r || axis > r)
      return ox_node_error(c, LC_EINDEX, "axis %lld out of range for rank %d", (long long)axis, r);
    ax = (int)(axis < 0 ? axis + r : axis);
  } else {
    lc_status st = ox_axis(axis, r, "axis", &ax);
    if (st) return st;
  }
  int64_t o = 1, m = 1, in = 1;
  for (int i = 0; i < r; i++) {
    if (i < ax)
      o *= sh[i];
    else if (legacy || i == ax)
      m *= sh[i];
    else
      in *= sh[i];
  }
  *outer = o;
  *n = m;
  *inner = in;
  *axis_out = ax;
  return LC_OK;
}

static lc_status softmax_like(ox_ctx *c, bool log_) {
  const lc_tensor *x = c->in[0];
  lc_status st = need_float(c, x);
  if (st) return st;
  int64_t outer, n, inner;
  int ax;
  if ((st = softmax_layout(c, &outer, &n, &inner, &ax))) return st;
  lc_dtype dt = lc_dtype_of(x);
  lc_tensor *xw = NULL, *v = NULL, *y = NULL;
  if ((st = lc_to_dtype(x, lc_dtype_is_half(dt) ? LC_FLOAT32 : dt, &xw))) return st;
  /* a view as (outer, n, inner): one code path for both layouts and for 0-dim inputs */
  int64_t shape3[3] = {outer, n, inner};
  st = lc_reshape(xw, 3, shape3, &v);
  lc_release(xw);
  if (st) return st;
  st = log_ ? lc_log_softmax(v, 1, &y) : lc_softmax(v, 1, &y);
  lc_release(v);
  if (st) return st;
  lc_tensor *r = NULL;
  st = lc_reshape(y, lc_ndim(x), lc_shape(x), &r);
  lc_release(y);
  if (st) return st;
  if (lc_dtype_of(r) != dt) {
    lc_tensor *h;
    st = lc_to_dtype(r, dt, &h);
    lc_release(r);
    if (st) return st;
    r = h;
  }
  c->out[0] = r;
  return LC_OK;
}

lc_status ox_softmax(ox_ctx *c) { return softmax_like(c, false); }
lc_status ox_log_softmax(ox_ctx *c) { return softmax_like(c, true); }

/* Hardmax: 1 at the first maximum of each row (the layout of softmax), 0 elsewhere. */
lc_status ox_hardmax(ox_ctx *c) {
  const lc_tensor *x = c->in[0];
  lc_status st = need_float(c, x);
  if (st) return st;
  int64_t outer, n, inner;
  int ax;
  if ((st = softmax_layout(c, &outer, &n, &inner, &ax))) return st;
  int64_t total = lc_numel(x);
  double *v = malloc((size_t)(total ? total : 1) * sizeof *v);
  if (!v) return lc_set_error(LC_ENOMEM, "out of memory");
  if ((st = lc_copy_to_buffer(x, LC_FLOAT64, v))) {
    free(v);
    return st;
  }
  for (int64_t o = 0; o < outer; o++)
    for (int64_t k = 0; k < inner; k++) {
      double *row = v + o * n * inner + k;
      int64_t best = 0;
      for (int64_t i = 1; i < n; i++)
        if (row[i * inner] > row[best * inner]) best = i;
      for (int64_t i = 0; i < n; i++)
        row[i * inner] = i == best;
    }
  lc_tensor *t;
  st = lc_from_data(lc_ndim(x), lc_shape(x), LC_FLOAT64, v, &t);
  free(v);
  if (st) return st;
  st = lc_to_dtype(t, lc_dtype_of(x), &c->out[0]);
  lc_release(t);
  return st;
}
