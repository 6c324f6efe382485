/* ops_nn.c - ONNX linear algebra, convolution, pooling and normalization ops. */
#include "onnx_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define OX_MAX_EXTENT ((int64_t)1 << 31)

lc_status ox_matmul(ox_ctx *c) { return lc_matmul(c->in[0], c->in[1], &c->out[0]); }

/* Gemm: alpha * A' B' + beta * C, A' = transA ? A^T : A, B' likewise; C broadcasts. */
lc_status ox_gemm(ox_ctx *c) {
  double alpha = ox_attr_float(c->node, "alpha", 1.0), beta = ox_attr_float(c->node, "beta", 1.0);
  lc_tensor *a = NULL, *b = NULL, *y = NULL, *t = NULL;
  lc_status st =
      ox_attr_int(c->node, "transA", 0) ? lc_t(c->in[0], &a) : (a = lc_retain(c->in[0]), LC_OK);
  if (!st)
    st = ox_attr_int(c->node, "transB", 0) ? lc_t(c->in[1], &b) : (b = lc_retain(c->in[1]), LC_OK);
  if (!st) st = lc_mm(a, b, &y);
  lc_release(a);
  lc_release(b);
  if (!st && alpha != 1.0) {
    st = lc_binary_scalar(LC_MUL, y, alpha, false, &t);
    lc_release(y);
    y = st ? NULL : t;
  }
  if (!st && c->n_in == 3 && c->in[2] && beta != 0.0) {
    lc_tensor *cb = NULL;
    if (beta != 1.0)
      st = lc_binary_scalar(LC_MUL, c->in[2], beta, false, &cb);
    else
      cb = lc_retain(c->in[2]);
    if (!st) st = lc_binary(LC_ADD, y, cb, &t);
    lc_release(cb);
    lc_release(y);
    y = st ? NULL : t;
  }
  if (st) {
    lc_release(y);
    return st;
  }
  c->out[0] = y;
  return LC_OK;
}

/* Spatial attributes shared by Conv, ConvTranspose and the pools: kernel, strides, dilations
 * and pads (begin, end) for nsp spatial dims, auto_pad resolved against the input size. */
typedef struct spatial {
  int nsp;
  int64_t kernel[3], stride[3], dilation[3], pad_begin[3], pad_end[3];
} spatial;

static lc_status read_spatial(ox_ctx *c, const lc_tensor *x, const int64_t *kernel, spatial *s,
                              bool transposed) {
  int r = lc_ndim(x);
  s->nsp = r - 2;
  if (s->nsp < 1 || s->nsp > 3)
    return ox_node_error(c, LC_ESHAPE, "%d spatial dims are not supported (1 to 3)", s->nsp);
  const int64_t *v;
  int64_t k;
  for (int i = 0; i < s->nsp; i++) {
    s->kernel[i] = kernel[i];
    s->stride[i] = s->dilation[i] = 1;
    s->pad_begin[i] = s->pad_end[i] = 0;
  }
  if ((k = ox_attr_ints(c->node, "strides", &v)) >= 0) {
    if (k != s->nsp)
      return ox_node_error(c, LC_EFORMAT, "strides has %lld values for %d spatial dims",
                           (long long)k, s->nsp);
    for (int i = 0; i < s->nsp; i++)
      s->stride[i] = v[i];
  }
  if ((k = ox_attr_ints(c->node, "dilations", &v)) >= 0) {
    if (k != s->nsp)
      return ox_node_error(c, LC_EFORMAT, "dilations has %lld values for %d spatial dims",
                           (long long)k, s->nsp);
    for (int i = 0; i < s->nsp; i++)
      s->dilation[i] = v[i];
  }
  if ((k = ox_attr_ints(c->node, "pads", &v)) >= 0) {
    if (k != 2 * s->nsp)
      return ox_node_error(c, LC_EFORMAT, "pads has %lld values for %d spatial dims", (long long)k,
                           s->nsp);
    for (int i = 0; i < s->nsp; i++) {
      s->pad_begin[i] = v[i];
      s->pad_end[i] = v[i + s->nsp];
      if (v[i] < 0 || v[i + s->nsp] < 0) return ox_node_error(c, LC_EFORMAT, "negative pads");
    }
  }
  for (int i = 0; i < s->nsp; i++) {
    if (s->stride[i] < 1 || s->dilation[i] < 1 || s->kernel[i] < 1)
      return ox_node_error(c, LC_EFORMAT, "kernel, strides and dilations must be >= 1");
    /* bounded so the size arithmetic below cannot overflow */
    if (s->stride[i] > OX_MAX_EXTENT || s->dilation[i] > OX_MAX_EXTENT ||
        s->kernel[i] > OX_MAX_EXTENT || s->pad_begin[i] > OX_MAX_EXTENT ||
        s->pad_end[i] > OX_MAX_EXTENT)
      return ox_node_error(c, LC_EFORMAT, "kernel, strides, dilations or pads above 2^31");
  }
  char buf[32];
  const char *ap = ox_attr_string(c->node, "auto_pad", "NOTSET", buf, sizeof buf);
  if (strcmp(ap, "SAME_UPPER") == 0 || strcmp(ap, "SAME_LOWER") == 0) {
    for (int i = 0; i < s->nsp; i++) {
      int64_t in = lc_shape(x)[2 + i];
      int64_t total;
      if (transposed) {
        total =
            s->stride[i] * (in - 1) + (s->kernel[i] - 1) * s->dilation[i] + 1 - in * s->stride[i];
      } else {
        int64_t outn = (in + s->stride[i] - 1) / s->stride[i];
        total = (outn - 1) * s->stride[i] + (s->kernel[i] - 1) * s->dilation[i] + 1 - in;
      }
      if (total < 0) total = 0;
      bool upper = ap[5] == 'U';
      s->pad_begin[i] = upper ? total / 2 : total - total / 2;
      s->pad_end[i] = total - s->pad_begin[i];
    }
  } else if (strcmp(ap, "VALID") == 0) {
    for (int i = 0; i < s->nsp; i++)
      s->pad_begin[i] = s->pad_end[i] = 0;
  } else if (strcmp(ap, "NOTSET") != 0) {
    return ox_node_error(c, LC_EFORMAT,
                         "auto_pad '%s' (expected NOTSET, SAME_UPPER, SAME_LOWER or VALID)", ap);
  }
  return LC_OK;
}

/* x padded explicitly when its pads are not symmetric (lucid's convs pad both sides alike);
 * sym receives the symmetric padding left to the op. */
static lc_status pad_asymmetric(const spatial *s, const lc_tensor *x, double value, lc_tensor **xp,
                                int64_t sym[3]) {
  bool symmetric = true;
  for (int i = 0; i < s->nsp; i++)
    symmetric = symmetric && s->pad_begin[i] == s->pad_end[i];
  if (symmetric) {
    for (int i = 0; i < s->nsp; i++)
      sym[i] = s->pad_begin[i];
    *xp = lc_retain((lc_tensor *)x);
    return LC_OK;
  }
  int64_t pad[6];
  for (int i = 0; i < s->nsp; i++) { /* lc_pad: last dim first */
    int d = s->nsp - 1 - i;
    pad[2 * i] = s->pad_begin[d];
    pad[2 * i + 1] = s->pad_end[d];
    sym[d] = 0;
  }
  return lc_pad(x, 2 * s->nsp, pad, LC_PAD_CONSTANT, value, xp);
}

lc_status ox_conv(ox_ctx *c) {
  const lc_tensor *x = c->in[0], *w = c->in[1];
  const lc_tensor *b = c->n_in > 2 ? c->in[2] : NULL;
  if (lc_ndim(w) != lc_ndim(x))
    return ox_node_error(c, LC_ESHAPE, "weight has %d dims, input %d", lc_ndim(w), lc_ndim(x));
  spatial s;
  lc_status st = read_spatial(c, x, lc_shape(w) + 2, &s, false);
  if (st) return st;
  if (s.nsp > 2) return ox_node_error(c, LC_ESHAPE, "3-D convolution is not supported");
  const int64_t *ks;
  int64_t nk = ox_attr_ints(c->node, "kernel_shape", &ks);
  for (int i = 0; i < nk && i < s.nsp; i++)
    if (ks[i] != lc_shape(w)[2 + i])
      return ox_node_error(c, LC_ESHAPE, "kernel_shape does not match the weight");
  lc_conv_opts o;
  lc_conv_opts_init(&o);
  o.groups = ox_attr_int(c->node, "group", 1);
  for (int i = 0; i < s.nsp; i++) {
    o.stride[i] = s.stride[i];
    o.dilation[i] = s.dilation[i];
  }
  lc_tensor *xp;
  int64_t sym[3];
  if ((st = pad_asymmetric(&s, x, 0.0, &xp, sym))) return st;
  for (int i = 0; i < s.nsp; i++)
    o.padding[i] = sym[i];
  st = s.nsp == 1 ? lc_conv1d(xp, w, b, &o, &c->out[0]) : lc_conv2d(xp, w, b, &o, &c->out[0]);
  lc_release(xp);
  return st;
}

/* ---------------------------------------------------------------- float64 working copies
 * Ops lucid has no kernel for (3-D pools, N-d resize, losses with ONNX's ignore rules, ...)
 * run directly over contiguous float64 copies, allocated as lucid tensors (so the memory
 * limit applies) and converted back to the input's dtype. */

/* x as a contiguous float64 tensor (a new reference). */
static lc_status as_f64(const lc_tensor *x, lc_tensor **out) {
  lc_tensor *t;
  lc_status st = lc_to_dtype(x, LC_FLOAT64, &t);
  if (st) return st;
  st = lc_contiguous(t, out);
  lc_release(t);
  return st;
}

/* *y (float64) converted to dt in place of itself. */
static lc_status f64_to(lc_tensor **y, lc_dtype dt) {
  if (dt == LC_FLOAT64) return LC_OK;
  lc_tensor *t = NULL;
  lc_status st = lc_to_dtype(*y, dt, &t);
  lc_release(*y);
  *y = t;
  return st;
}

/* An output shape computed from attributes: refused before allocating when its element count
 * passes 2^40 (so the products below cannot overflow either). */
static lc_status check_numel(ox_ctx *c, int nd, const int64_t *shape) {
  double n = 1;
  for (int i = 0; i < nd; i++)
    n *= (double)shape[i];
  if (n > (double)((int64_t)1 << 40))
    return ox_node_error(c, LC_ESHAPE, "an output of %.3g elements is too large", n);
  return LC_OK;
}

static lc_status need_float(ox_ctx *c, const lc_tensor *x, const char *what) {
  lc_dtype dt = lc_dtype_of(x);
  if (dt == LC_FLOAT32 || dt == LC_FLOAT64) return LC_OK;
  return ox_node_error(c, LC_EDTYPE, "%s of dtype %s is not supported (float32, float64)", what,
                       lc_dtype_name(dt));
}

/* ---------------------------------------------------------------- pooling */

/* A pool's geometry padded to 3 spatial dims (missing ones of size 1). */
typedef struct pool_geom {
  int64_t in[3], out[3], k[3], s[3], d[3], pb[3], pe[3];
  int64_t planes; /* N * C */
} pool_geom;

static lc_status pool_setup(ox_ctx *c, const lc_tensor *x, bool ceil_mode, pool_geom *g) {
  int r = lc_ndim(x);
  if (r < 3 || r > 5)
    return ox_node_error(c, LC_ESHAPE, "input of rank %d is not supported (3 to 5)", r);
  const int64_t *ks;
  int64_t nk = ox_attr_ints(c->node, "kernel_shape", &ks);
  if (nk != r - 2)
    return ox_node_error(c, LC_EFORMAT, "kernel_shape has %lld values for %d spatial dims",
                         (long long)nk, r - 2);
  spatial s;
  lc_status st = read_spatial(c, x, ks, &s, false);
  if (st) return st;
  g->planes = lc_shape(x)[0] * lc_shape(x)[1];
  for (int i = 0; i < 3; i++) {
    bool have = i < s.nsp;
    g->in[i] = have ? lc_shape(x)[2 + i] : 1;
    g->k[i] = have ? s.kernel[i] : 1;
    g->s[i] = have ? s.stride[i] : 1;
    g->d[i] = have ? s.dilation[i] : 1;
    g->pb[i] = have ? s.pad_begin[i] : 0;
    g->pe[i] = have ? s.pad_end[i] : 0;
    int64_t span = g->in[i] + g->pb[i] + g->pe[i] - ((g->k[i] - 1) * g->d[i] + 1);
    if (span < 0)
      return ox_node_error(c, LC_ESHAPE, "the kernel is larger than the padded input (dim %d)",
                           i + 2);
    g->out[i] = (ceil_mode ? (span + g->s[i] - 1) / g->s[i] : span / g->s[i]) + 1;
  }
  return LC_OK;
}

typedef enum pool_kind { POOL_MAX, POOL_AVG } pool_kind;

/* One plane (x: in[0]*in[1]*in[2] values) into y (out[...]); ind: argmax positions within the
 * plane (row-major, or column-major with col_major) or NULL. */
static void pool_plane(const pool_geom *g, pool_kind kind, bool include_pad, bool col_major,
                       const double *x, double *y, int64_t *ind) {
  int64_t o[3];
  for (o[0] = 0; o[0] < g->out[0]; o[0]++)
    for (o[1] = 0; o[1] < g->out[1]; o[1]++)
      for (o[2] = 0; o[2] < g->out[2]; o[2]++) {
        double acc = kind == POOL_MAX ? -INFINITY : 0.0;
        int64_t best = -1, count = 0, padded = 0;
        int64_t q[3], p[3];
        for (q[0] = 0; q[0] < g->k[0]; q[0]++)
          for (q[1] = 0; q[1] < g->k[1]; q[1]++)
            for (q[2] = 0; q[2] < g->k[2]; q[2]++) {
              bool inside = true, in_pad = true;
              for (int i = 0; i < 3; i++) {
                p[i] = o[i] * g->s[i] - g->pb[i] + q[i] * g->d[i];
                inside = inside && p[i] >= 0 && p[i] < g->in[i];
                in_pad = in_pad && p[i] < g->in[i] + g->pe[i];
              }
              padded += in_pad;
              if (!inside) continue;
              int64_t at = (p[0] * g->in[1] + p[1]) * g->in[2] + p[2];
              double v = x[at];
              count++;
              if (kind == POOL_AVG) {
                acc += v;
              } else if (v > acc || best < 0 || (isnan(v) && !isnan(acc))) {
                acc = v;
                best = col_major ? (p[2] * g->in[1] + p[1]) * g->in[0] + p[0] : at;
              }
            }
        int64_t oi = (o[0] * g->out[1] + o[1]) * g->out[2] + o[2];
        if (kind == POOL_AVG) acc = acc / (double)(include_pad ? padded : count);
        y[oi] = count || kind == POOL_AVG ? acc : NAN;
        if (ind) ind[oi] = best;
      }
}

static lc_status pool_run(ox_ctx *c, pool_kind kind) {
  const lc_tensor *x = c->in[0];
  bool ceil_mode = c->opset >= 10 && ox_attr_int(c->node, "ceil_mode", 0);
  bool include_pad = kind == POOL_AVG && ox_attr_int(c->node, "count_include_pad", 0);
  bool col_major = kind == POOL_MAX && ox_attr_int(c->node, "storage_order", 0);
  if (kind == POOL_AVG && ox_attr_ints(c->node, "dilations", &(const int64_t *){NULL}) >= 0)
    return ox_node_error(c, LC_EARG, "AveragePool dilations are not supported");
  pool_geom g = {0}; /* -O1 cannot see pool_setup fills it */
  lc_status st = pool_setup(c, x, ceil_mode, &g);
  if (st) return st;
  int r = lc_ndim(x);
  bool want_ind = kind == POOL_MAX && c->n_out > 1 && c->node->out[1] >= 0;
  lc_dtype dt = lc_dtype_of(x);
  if (!want_ind && !ceil_mode && r <= 4 && (dt == LC_FLOAT32 || dt == LC_FLOAT64)) {
    /* lucid's pools when they mean the same: symmetric padding of at most half the kernel,
     * no ceil_mode (PyTorch drops a last window starting in the padding, ONNX does not) */
    bool fits = true;
    for (int i = 0; i < r - 2; i++)
      fits = fits && g.pb[i] == g.pe[i] && g.pb[i] <= g.k[i] / 2;
    if (fits) {
      lc_pool_opts o;
      lc_pool_opts_init(&o, g.k[0], g.k[1]);
      for (int i = 0; i < r - 2; i++) {
        o.stride[i] = g.s[i];
        o.padding[i] = g.pb[i];
        o.dilation[i] = g.d[i];
      }
      o.count_include_pad = include_pad;
      if (kind == POOL_MAX)
        return r == 3 ? lc_max_pool1d(x, &o, &c->out[0], NULL)
                      : lc_max_pool2d(x, &o, &c->out[0], NULL);
      return r == 3 ? lc_avg_pool1d(x, &o, &c->out[0]) : lc_avg_pool2d(x, &o, &c->out[0]);
    }
  }
  int64_t shape[5] = {lc_shape(x)[0], lc_shape(x)[1], g.out[0], g.out[1], g.out[2]};
  lc_tensor *xd = NULL, *y = NULL, *ind = NULL;
  if ((st = check_numel(c, r, shape))) return st;
  if ((st = as_f64(x, &xd))) return st;
  if (!(st = lc_empty(r, shape, LC_FLOAT64, &y)) && want_ind)
    st = lc_empty(r, shape, LC_INT64, &ind);
  if (!st) {
    const double *xp = lc_data(xd);
    double *yp = lc_data(y);
    int64_t *ip = ind ? lc_data(ind) : NULL;
    int64_t isz = g.in[0] * g.in[1] * g.in[2], osz = g.out[0] * g.out[1] * g.out[2];
    for (int64_t p = 0; p < g.planes; p++) {
      pool_plane(&g, kind, include_pad, col_major, xp + p * isz, yp + p * osz,
                 ip ? ip + p * osz : NULL);
      if (ip) /* positions count over the whole input (N and C included) */
        for (int64_t j = 0; j < osz; j++)
          ip[p * osz + j] += p * isz;
    }
    st = f64_to(&y, lc_dtype_of(x));
  }
  lc_release(xd);
  if (st) {
    lc_release(y);
    lc_release(ind);
    return st;
  }
  c->out[0] = y;
  if (want_ind) c->out[1] = ind;
  return LC_OK;
}

lc_status ox_max_pool(ox_ctx *c) { return pool_run(c, POOL_MAX); }
lc_status ox_average_pool(ox_ctx *c) { return pool_run(c, POOL_AVG); }

static lc_status global_pool(ox_ctx *c, lc_reduce_op op) {
  const lc_tensor *x = c->in[0];
  int r = lc_ndim(x);
  if (r < 2) return ox_node_error(c, LC_ESHAPE, "input of rank %d (expected N, C, ...)", r);
  if (r == 2) {
    c->out[0] = lc_retain((lc_tensor *)x);
    return LC_OK;
  }
  lc_reduce_opts o = {0};
  o.keepdim = true;
  for (int i = 2; i < r; i++)
    o.dims[o.ndims++] = i;
  return lc_reduce(op, x, &o, &c->out[0]);
}

lc_status ox_global_average_pool(ox_ctx *c) { return global_pool(c, LC_MEAN); }
lc_status ox_global_max_pool(ox_ctx *c) { return global_pool(c, LC_AMAX); }

/* ---------------------------------------------------------------- normalization */

/* t converted to dt (a new reference). */
static lc_status cast_to(const lc_tensor *t, lc_dtype dt, lc_tensor **out) {
  return lc_to_dtype(t, dt, out);
}

/* Mean and biased variance of x over every dim but 1 ({C} each). */
static lc_status channel_stats(const lc_tensor *x, lc_tensor **mean, lc_tensor **var) {
  lc_reduce_opts o = {0};
  for (int i = 0; i < lc_ndim(x); i++)
    if (i != 1) o.dims[o.ndims++] = i;
  o.correction = 0;
  lc_status st = lc_reduce(LC_MEAN, x, &o, mean);
  if (st) return st;
  if ((st = lc_reduce(LC_VAR, x, &o, var))) {
    lc_release(*mean);
    *mean = NULL;
  }
  return st;
}

/* r * momentum + s * (1 - momentum): ONNX's running statistics update. */
static lc_status blend(const lc_tensor *r, const lc_tensor *s, double momentum, lc_tensor **out) {
  lc_tensor *a = NULL, *b = NULL;
  lc_status st = lc_binary_scalar(LC_MUL, r, momentum, false, &a);
  if (!st) st = lc_binary_scalar(LC_MUL, s, 1.0 - momentum, false, &b);
  if (!st) st = lc_binary(LC_ADD, a, b, out);
  lc_release(a);
  lc_release(b);
  return st;
}

/* BatchNormalization. Training (the training_mode attribute from opset 14; before it, asking
 * for the statistics outputs) normalises with the batch statistics and returns the updated
 * running ones. Opset 15 lets scale, bias and the statistics have their own float types. */
static lc_status batch_norm_f(ox_ctx *c) {
  const lc_tensor *x = c->in[0];
  lc_status st = need_float(c, x, "input");
  if (st) return st;
  if (lc_ndim(x) < 2)
    return ox_node_error(c, LC_ESHAPE, "input of rank %d (expected N, C, ...)", lc_ndim(x));
  if (c->opset < 9 && ox_attr_int(c->node, "spatial", 1) == 0)
    return ox_node_error(c, LC_EARG, "spatial = 0 is not supported");
  double eps = ox_attr_float(c->node, "epsilon", 1e-5);
  double momentum = ox_attr_float(c->node, "momentum", 0.9);
  bool training = c->opset >= 14 ? ox_attr_int(c->node, "training_mode", 0) != 0
                                 : c->n_out > 1 && c->node->out[1] >= 0;
  lc_dtype dt = lc_dtype_of(x);
  lc_tensor *p[4] = {NULL, NULL, NULL, NULL}, *bm = NULL, *bv = NULL;
  for (int i = 0; i < 4 && !st; i++) {
    st = cast_to(c->in[1 + i], dt, &p[i]);
    if (!st && (lc_ndim(p[i]) != 1 || lc_shape(p[i])[0] != lc_shape(x)[1]))
      st = ox_node_error(c, LC_ESHAPE, "input %d must be {C} = {%lld}", i + 1,
                         (long long)lc_shape(x)[1]);
  }
  if (!st && training) st = channel_stats(x, &bm, &bv);
  if (!st) {
    lc_batch_norm_opts o = LC_BATCH_NORM_OPTS_INIT;
    o.weight = p[0];
    o.bias = p[1];
    o.running_mean = training ? bm : p[2];
    o.running_var = training ? bv : p[3];
    o.eps = eps;
    st = lc_batch_norm(x, &o, &c->out[0]);
  }
  if (!st && training) {
    if (c->n_out > 1 && c->node->out[1] >= 0) st = blend(p[2], bm, momentum, &c->out[1]);
    if (!st && c->n_out > 2 && c->node->out[2] >= 0) st = blend(p[3], bv, momentum, &c->out[2]);
    if (!st && c->n_out > 3 && c->node->out[3] >= 0) c->out[3] = lc_retain(bm);
    if (!st && c->n_out > 4 && c->node->out[4] >= 0) c->out[4] = lc_retain(bv);
  }
  for (int i = 0; i < 4; i++)
    lc_release(p[i]);
  lc_release(bm);
  lc_release(bv);
  return st;
}

static lc_status instance_norm_f(ox_ctx *c) {
  const lc_tensor *x = c->in[0];
  lc_status st = need_float(c, x, "input");
  if (st) return st;
  if (lc_ndim(x) < 3)
    return ox_node_error(c, LC_ESHAPE, "input of rank %d (expected N, C, D1, ...)", lc_ndim(x));
  lc_tensor *w = NULL, *b = NULL;
  if (!(st = cast_to(c->in[1], lc_dtype_of(x), &w)) &&
      !(st = cast_to(c->in[2], lc_dtype_of(x), &b))) {
    lc_instance_norm_opts o = LC_INSTANCE_NORM_OPTS_INIT;
    o.weight = w;
    o.bias = b;
    o.eps = ox_attr_float(c->node, "epsilon", 1e-5);
    st = lc_instance_norm(x, &o, &c->out[0]);
  }
  lc_release(w);
  lc_release(b);
  return st;
}

/* t broadcast to exactly shape (lc_layer_norm takes weight and bias of the normalized shape). */
static lc_status fit_shape(const lc_tensor *t, int nd, const int64_t *shape, lc_dtype dt,
                           lc_tensor **out) {
  lc_tensor *a = NULL, *e = NULL;
  lc_status st = lc_to_dtype(t, dt, &a);
  if (st) return st;
  if (lc_ndim(a) == nd && memcmp(lc_shape(a), shape, sizeof(int64_t) * (size_t)nd) == 0) {
    *out = a;
    return LC_OK;
  }
  if (!(st = lc_expand(a, nd, shape, &e))) st = lc_contiguous(e, out);
  lc_release(a);
  lc_release(e);
  return st;
}

/* LayerNormalization (opset 17): normalises over dims axis.. ; outputs Y, Mean, InvStdDev
 * (the statistics with the normalized dims kept as 1). */
static lc_status layer_norm_f(ox_ctx *c) {
  const lc_tensor *x = c->in[0];
  lc_status st = need_float(c, x, "input");
  if (st) return st;
  int r = lc_ndim(x), axis;
  if (r < 1) return ox_node_error(c, LC_ESHAPE, "0-dim input");
  if ((st = ox_axis(ox_attr_int(c->node, "axis", -1), r, "axis", &axis))) return st;
  double eps = ox_attr_float(c->node, "epsilon", 1e-5);
  int ns = r - axis;
  const int64_t *nshape = lc_shape(x) + axis;
  lc_dtype dt = lc_dtype_of(x);
  lc_tensor *w = NULL, *b = NULL;
  if (!(st = fit_shape(c->in[1], ns, nshape, dt, &w)) && c->n_in > 2 && c->in[2])
    st = fit_shape(c->in[2], ns, nshape, dt, &b);
  if (!st) st = lc_layer_norm(x, ns, nshape, w, b, eps, &c->out[0]);
  lc_release(w);
  lc_release(b);
  bool want_mean = c->n_out > 1 && c->node->out[1] >= 0;
  bool want_inv = c->n_out > 2 && c->node->out[2] >= 0;
  if (st || (!want_mean && !want_inv)) return st;
  lc_reduce_opts o = {0};
  o.keepdim = true;
  for (int i = axis; i < r; i++)
    o.dims[o.ndims++] = i;
  lc_tensor *mean = NULL, *var = NULL, *t = NULL;
  if (!(st = lc_reduce(LC_MEAN, x, &o, &mean)) && want_inv &&
      !(st = lc_reduce(LC_VAR, x, &o, &var)) &&
      !(st = lc_binary_scalar(LC_ADD, var, eps, false, &t)))
    st = lc_unary(LC_RSQRT, t, &c->out[2]);
  if (!st && want_mean) c->out[1] = lc_retain(mean);
  lc_release(mean);
  lc_release(var);
  lc_release(t);
  return st;
}

/* LRN across channels: x / (bias + alpha / size * sum of squares in the window)^beta. */
static lc_status lrn_f(ox_ctx *c) {
  const lc_tensor *x = c->in[0];
  lc_status st = need_float(c, x, "input");
  if (st) return st;
  if (lc_ndim(x) < 2)
    return ox_node_error(c, LC_ESHAPE, "input of rank %d (expected N, C, ...)", lc_ndim(x));
  int64_t size = ox_attr_int(c->node, "size", 0);
  if (size < 1) return ox_node_error(c, LC_EFORMAT, "size must be >= 1");
  double alpha = ox_attr_float(c->node, "alpha", 1e-4), beta = ox_attr_float(c->node, "beta", 0.75);
  double bias = ox_attr_float(c->node, "bias", 1.0);
  int64_t n = lc_shape(x)[0], ch = lc_shape(x)[1], inner = 1;
  for (int i = 2; i < lc_ndim(x); i++)
    inner *= lc_shape(x)[i];
  lc_tensor *xd = NULL, *y = NULL;
  if ((st = as_f64(x, &xd))) return st;
  if (!(st = lc_empty_like(xd, &y))) {
    const double *xp = lc_data(xd);
    double *yp = lc_data(y);
    int64_t lo = (size - 1) / 2, hi = size - 1 - lo;
    for (int64_t b = 0; b < n; b++)
      for (int64_t k = 0; k < ch; k++)
        for (int64_t j = 0; j < inner; j++) {
          double sq = 0;
          for (int64_t q = k - lo; q <= k + hi; q++)
            if (q >= 0 && q < ch) {
              double v = xp[(b * ch + q) * inner + j];
              sq += v * v;
            }
          int64_t at = (b * ch + k) * inner + j;
          yp[at] = xp[at] / pow(bias + alpha / (double)size * sq, beta);
        }
    st = f64_to(&y, lc_dtype_of(x));
  }
  lc_release(xd);
  if (!st) c->out[0] = y;
  return st;
}

/* MeanVarianceNormalization: (x - mean) / (sqrt(var) + 1e-9) over axes (default 0, 2, 3), as
 * ONNX's function body. */
static lc_status mvn_f(ox_ctx *c) {
  const lc_tensor *x = c->in[0];
  lc_status st = need_float(c, x, "input");
  if (st) return st;
  int r = lc_ndim(x);
  lc_reduce_opts o = {0};
  o.keepdim = true;
  const int64_t *ax;
  int64_t na = ox_attr_ints(c->node, "axes", &ax);
  static const int64_t def[3] = {0, 2, 3};
  if (na < 0) {
    ax = def;
    na = 3;
  }
  if (na > r) return ox_node_error(c, LC_EARG, "%lld axes for rank %d", (long long)na, r);
  for (int64_t i = 0; i < na; i++) {
    if ((st = ox_axis(ax[i], r, "axes", &o.dims[i]))) return st;
    for (int64_t j = 0; j < i; j++)
      if (o.dims[j] == o.dims[i]) return ox_node_error(c, LC_EARG, "repeated axis");
  }
  o.ndims = (int)na;
  if (r == 0) o.ndims = 0;
  lc_tensor *mean = NULL, *var = NULL, *sd = NULL, *den = NULL, *num = NULL;
  if (!(st = lc_reduce(LC_MEAN, x, &o, &mean)) && !(st = lc_reduce(LC_VAR, x, &o, &var)) &&
      !(st = lc_unary(LC_SQRT, var, &sd)) &&
      !(st = lc_binary_scalar(LC_ADD, sd, 1e-9, false, &den)) &&
      !(st = lc_binary(LC_SUB, x, mean, &num)))
    st = lc_binary(LC_DIV, num, den, &c->out[0]);
  lc_release(mean);
  lc_release(var);
  lc_release(sd);
  lc_release(den);
  lc_release(num);
  return st;
}

/* ---------------------------------------------------------------- dropout */

/* Dropout: the identity (and an all-true mask) unless training (opset 12's training_mode input)
 * with a nonzero ratio (attribute before 12, input from 12). */
lc_status ox_dropout(ox_ctx *c) {
  const lc_tensor *x = c->in[0];
  double ratio = ox_attr_float(c->node, "ratio", 0.5);
  bool training = false;
  lc_status st;
  if (c->opset >= 12) {
    ratio = 0.5;
    if (c->n_in > 1 && c->in[1]) {
      if (lc_numel(c->in[1]) != 1) return ox_node_error(c, LC_ESHAPE, "ratio must be a scalar");
      if ((st = lc_item(c->in[1], &ratio))) return st;
    }
    if (c->n_in > 2 && c->in[2]) {
      double t;
      if (lc_numel(c->in[2]) != 1)
        return ox_node_error(c, LC_ESHAPE, "training_mode must be a scalar");
      if ((st = lc_item(c->in[2], &t))) return st;
      training = t != 0;
    }
  }
  if (!(ratio >= 0 && ratio <= 1))
    return ox_node_error(c, LC_EARG, "ratio %g outside [0, 1]", ratio);
  bool want_mask = c->n_out > 1 && c->node->out[1] >= 0;
  lc_dtype mdt = c->opset >= 10 ? LC_BOOL : lc_dtype_of(x); /* the mask was of x's type before 10 */
  if (!training || ratio == 0) {
    if (want_mask && (st = lc_ones(lc_ndim(x), lc_shape(x), mdt, &c->out[1]))) return st;
    c->out[0] = lc_retain((lc_tensor *)x);
    return LC_OK;
  }
  if ((st = need_float(c, x, "training input"))) return st;
  lc_tensor *u = NULL, *keep = NULL, *kf = NULL, *t = NULL;
  if (!(st = lc_rand(lc_ndim(x), lc_shape(x), LC_FLOAT64, &u)) &&
      !(st = lc_binary_scalar(LC_GE, u, ratio, false, &keep)) &&
      !(st = lc_to_dtype(keep, lc_dtype_of(x), &kf)) && !(st = lc_binary(LC_MUL, x, kf, &t)))
    st = ratio < 1 ? lc_binary_scalar(LC_MUL, t, 1.0 / (1.0 - ratio), false, &c->out[0])
                   : lc_zeros_like(x, &c->out[0]);
  if (!st && want_mask) c->out[1] = lc_retain(keep);
  lc_release(u);
  lc_release(keep);
  lc_release(kf);
  lc_release(t);
  return st;
}

/* ---------------------------------------------------------------- ConvTranspose */

/* Direct N-d transposed convolution over float64 copies: every input position scatters its
 * kernel into y (cropped by pb at the start; y has out[] positions per dim). */
static void conv_transpose_direct(const double *x, const double *w, double *y, int64_t n,
                                  int64_t cin, int64_t cout, int64_t groups, const int64_t in[3],
                                  const int64_t out[3], const int64_t k[3], const int64_t s[3],
                                  const int64_t d[3], const int64_t pb[3]) {
  int64_t cg = cin / groups, mg = cout / groups;
  int64_t isz = in[0] * in[1] * in[2], osz = out[0] * out[1] * out[2], ksz = k[0] * k[1] * k[2];
  for (int64_t b = 0; b < n; b++)
    for (int64_t ci = 0; ci < cin; ci++) {
      int64_t g = ci / cg;
      const double *xp = x + (b * cin + ci) * isz;
      for (int64_t p0 = 0; p0 < in[0]; p0++)
        for (int64_t p1 = 0; p1 < in[1]; p1++)
          for (int64_t p2 = 0; p2 < in[2]; p2++) {
            double v = xp[(p0 * in[1] + p1) * in[2] + p2];
            if (v == 0) continue;
            for (int64_t q0 = 0; q0 < k[0]; q0++) {
              int64_t o0 = p0 * s[0] + q0 * d[0] - pb[0];
              if (o0 < 0 || o0 >= out[0]) continue;
              for (int64_t q1 = 0; q1 < k[1]; q1++) {
                int64_t o1 = p1 * s[1] + q1 * d[1] - pb[1];
                if (o1 < 0 || o1 >= out[1]) continue;
                for (int64_t q2 = 0; q2 < k[2]; q2++) {
                  int64_t o2 = p2 * s[2] + q2 * d[2] - pb[2];
                  if (o2 < 0 || o2 >= out[2]) continue;
                  int64_t oi = (o0 * out[1] + o1) * out[2] + o2, qi = (q0 * k[1] + q1) * k[2] + q2;
                  for (int64_t m = 0; m < mg; m++)
                    y[(b * cout + g * mg + m) * osz + oi] += v * w[(ci * mg + m) * ksz + qi];
                }
              }
            }
          }
    }
}

/* 1-D and 2-D over lucid's conv_transpose2d (1-D as height 1): the full, unpadded result,
 * then positions pb .. pb + out of each dim (lc_pad crops with negative pads and zero-extends
 * past the end, where output_padding or output_shape reach), then the bias. */
static lc_status conv_transpose_lucid(ox_ctx *c, const lc_tensor *x, const lc_tensor *w,
                                      const lc_tensor *b, int nsp, int64_t groups,
                                      const int64_t out[3], const int64_t s[3], const int64_t d[3],
                                      const int64_t pb[3]) {
  lc_conv_opts o;
  lc_conv_opts_init(&o);
  o.groups = groups;
  int off = nsp == 1 ? 1 : 0; /* 1-D runs as {.., 1, L} */
  for (int i = 0; i < nsp; i++) {
    o.stride[off + i] = s[i];
    o.dilation[off + i] = d[i];
  }
  lc_tensor *x4 = NULL, *w4 = NULL, *full = NULL, *cut = NULL, *y = NULL;
  lc_status st = LC_OK;
  if (nsp == 1) {
    if (!(st = lc_unsqueeze(x, 2, &x4))) st = lc_unsqueeze(w, 2, &w4);
  } else {
    x4 = lc_retain((lc_tensor *)x);
    w4 = lc_retain((lc_tensor *)w);
  }
  if (!st) st = lc_conv_transpose2d(x4, w4, NULL, &o, &full);
  if (!st && nsp == 1) {
    lc_tensor *t = NULL;
    st = lc_squeeze_dim(full, 2, &t);
    lc_release(full);
    full = t;
  }
  if (!st) {
    int64_t pad[4];
    for (int i = 0; i < nsp; i++) { /* lc_pad: last dim first */
      int dd = nsp - 1 - i;
      int64_t len = lc_shape(full)[2 + dd];
      pad[2 * i] = -pb[dd];
      pad[2 * i + 1] = pb[dd] + out[dd] - len;
    }
    st = lc_pad(full, 2 * nsp, pad, LC_PAD_CONSTANT, 0.0, &cut);
  }
  if (!st && b) {
    int64_t bs[4] = {1, lc_shape(b)[0], 1, 1};
    lc_tensor *bv = NULL;
    if (!(st = lc_reshape(b, 2 + nsp, bs, &bv))) st = lc_binary(LC_ADD, cut, bv, &y);
    lc_release(bv);
  } else if (!st) {
    y = lc_retain(cut);
  }
  lc_release(x4);
  lc_release(w4);
  lc_release(full);
  lc_release(cut);
  if (!st) c->out[0] = y;
  return st;
}

static lc_status conv_transpose_f(ox_ctx *c) {
  const lc_tensor *x = c->in[0], *w = c->in[1];
  const lc_tensor *b = c->n_in > 2 ? c->in[2] : NULL;
  lc_status st = need_float(c, x, "input");
  if (st) return st;
  int r = lc_ndim(x);
  if (lc_ndim(w) != r || r < 3 || r > 5)
    return ox_node_error(c, LC_ESHAPE, "input rank %d and weight rank %d (expected equal, 3 to 5)",
                         r, lc_ndim(w));
  int64_t groups = ox_attr_int(c->node, "group", 1);
  int64_t n = lc_shape(x)[0], cin = lc_shape(x)[1];
  if (groups < 1 || cin % groups || lc_shape(w)[0] != cin)
    return ox_node_error(c, LC_ESHAPE, "weight {%lld, ...} for %lld input channels in %lld groups",
                         (long long)lc_shape(w)[0], (long long)cin, (long long)groups);
  int64_t cout = lc_shape(w)[1] * groups;
  if (b && (lc_ndim(b) != 1 || lc_shape(b)[0] != cout))
    return ox_node_error(c, LC_ESHAPE, "bias must be {%lld}", (long long)cout);
  spatial s;
  if ((st = read_spatial(c, x, lc_shape(w) + 2, &s, true))) return st;
  int nsp = s.nsp;
  const int64_t *ks, *op, *os;
  int64_t nk = ox_attr_ints(c->node, "kernel_shape", &ks);
  for (int i = 0; i < nk && i < nsp; i++)
    if (ks[i] != lc_shape(w)[2 + i])
      return ox_node_error(c, LC_ESHAPE, "kernel_shape does not match the weight");
  int64_t nop = ox_attr_ints(c->node, "output_padding", &op);
  int64_t nos = ox_attr_ints(c->node, "output_shape", &os);
  if (nop >= 0 && nop != nsp)
    return ox_node_error(c, LC_EFORMAT, "output_padding has %lld values", (long long)nop);
  if (nos >= 0 && nos != nsp && nos != nsp + 2)
    return ox_node_error(c, LC_EFORMAT, "output_shape has %lld values", (long long)nos);
  char buf[32];
  const char *ap = ox_attr_string(c->node, "auto_pad", "NOTSET", buf, sizeof buf);
  bool same = strncmp(ap, "SAME_", 5) == 0, upper = strcmp(ap, "SAME_UPPER") == 0;
  int64_t in[3] = {1, 1, 1}, out[3] = {1, 1, 1}, k[3] = {1, 1, 1}, st3[3] = {1, 1, 1},
          d[3] = {1, 1, 1}, pb[3] = {0, 0, 0};
  for (int i = 0; i < nsp; i++) {
    in[i] = lc_shape(x)[2 + i];
    k[i] = s.kernel[i];
    st3[i] = s.stride[i];
    d[i] = s.dilation[i];
    int64_t opad = nop >= 0 ? op[i] : 0;
    if (opad < 0 || opad > OX_MAX_EXTENT) return ox_node_error(c, LC_EFORMAT, "bad output_padding");
    int64_t full = st3[i] * (in[i] - 1) + opad + (k[i] - 1) * d[i] + 1;
    if (nos >= 0 || same) {
      int64_t want = nos >= 0 ? os[nos - nsp + i] : in[i] * st3[i];
      if (want < 1 || want > OX_MAX_EXTENT) return ox_node_error(c, LC_EFORMAT, "bad output_shape");
      int64_t total = full - want;
      /* ONNX: SAME_UPPER puts the smaller half first, otherwise the larger half goes first;
       * an output_shape beyond the computed size extends the end (as output_padding) */
      pb[i] = upper ? total / 2 : total - total / 2;
      if (total < 0) pb[i] = 0;
      out[i] = want;
    } else {
      pb[i] = s.pad_begin[i];
      out[i] = full - s.pad_begin[i] - s.pad_end[i];
    }
    if (out[i] < 1) return ox_node_error(c, LC_ESHAPE, "output size %lld < 1", (long long)out[i]);
  }
  int64_t shape[5] = {n, cout, out[0], out[1], out[2]};
  if ((st = check_numel(c, r, shape))) return st;
  if (nsp <= 2 && lc_dtype_of(w) == lc_dtype_of(x) && (!b || lc_dtype_of(b) == lc_dtype_of(x)))
    return conv_transpose_lucid(c, x, w, b, nsp, groups, out, st3, d, pb);
  lc_tensor *xd = NULL, *wd = NULL, *y = NULL;
  if (!(st = as_f64(x, &xd)) && !(st = as_f64(w, &wd)) &&
      !(st = lc_zeros(r, shape, LC_FLOAT64, &y))) {
    conv_transpose_direct(lc_data(xd), lc_data(wd), lc_data(y), n, cin, cout, groups, in, out, k,
                          st3, d, pb);
    if (b) {
      lc_tensor *bd = NULL;
      if (!(st = as_f64(b, &bd))) {
        const double *bp = lc_data(bd);
        double *yp = lc_data(y);
        int64_t osz = out[0] * out[1] * out[2];
        for (int64_t i = 0; i < n * cout; i++)
          for (int64_t j = 0; j < osz; j++)
            yp[i * osz + j] += bp[i % cout];
      }
      lc_release(bd);
    }
    if (!st) st = f64_to(&y, lc_dtype_of(x));
  }
  lc_release(xd);
  lc_release(wd);
  if (st) {
    lc_release(y);
    return st;
  }
  c->out[0] = y;
  return LC_OK;
}

/* ---------------------------------------------------------------- Einsum */

lc_status ox_einsum(ox_ctx *c) {
  char eq[256], clean[256];
  const char *e = ox_attr_string(c->node, "equation", NULL, eq, sizeof eq);
  if (!e) return ox_node_error(c, LC_EFORMAT, "missing equation");
  size_t j = 0;
  for (size_t i = 0; e[i] && j + 1 < sizeof clean; i++)
    if (e[i] != ' ') clean[j++] = e[i];
  clean[j] = '\0';
  if (c->n_in < 1 || c->n_in > 16) return ox_node_error(c, LC_EARG, "%d operands", c->n_in);
  lc_tensor *ops[16];
  lc_dtype dt = lc_dtype_of(c->in[0]);
  bool is_int = !lc_dtype_is_float(dt);
  lc_status st = LC_OK;
  int k = 0;
  for (; k < c->n_in && !st; k++)
    st =
        is_int ? lc_to_dtype(c->in[k], LC_FLOAT64, &ops[k]) : (ops[k] = lc_retain(c->in[k]), LC_OK);
  if (st) k--;
  lc_tensor *y = NULL;
  if (!st) st = lc_einsum(clean, c->n_in, (const lc_tensor *const *)ops, &y);
  for (int i = 0; i < k; i++)
    lc_release(ops[i]);
  if (!st && lc_dtype_of(y) != dt) {
    lc_tensor *t = NULL;
    st = lc_to_dtype(y, dt, &t);
    lc_release(y);
    y = t;
  }
  if (!st) c->out[0] = y;
  return st;
}

/* ---------------------------------------------------------------- Resize, Upsample
 * ONNX's resampling, one axis at a time over a float64 copy (nearest, linear and cubic are
 * separable, and so is tf_crop_and_resize's extrapolation): each output index of an axis
 * reads up to 4 input indices (clamped to the edge, as the reference's edge padding) with
 * weights, or the extrapolation value. */

typedef enum rs_mode { RS_NEAREST, RS_LINEAR, RS_CUBIC } rs_mode;
typedef enum rs_coord {
  RS_HALF_PIXEL,
  RS_PYTORCH_HALF_PIXEL,
  RS_ALIGN_CORNERS,
  RS_ASYMMETRIC,
  RS_TF_HALF_PIXEL_FOR_NN,
  RS_TF_CROP_AND_RESIZE
} rs_coord;
typedef enum rs_round { RS_PREFER_FLOOR, RS_PREFER_CEIL, RS_FLOOR, RS_CEIL } rs_round;

typedef struct rs_opts {
  rs_mode mode;
  rs_coord coord;
  rs_round round;
  double a;     /* cubic_coeff_a */
  bool exclude; /* exclude_outside */
  double extrapolation;
} rs_opts;

static int rs_taps(rs_mode m) { return m == RS_NEAREST ? 1 : m == RS_LINEAR ? 2 : 4; }

static void cubic_coeffs(double r, double a, double c[4]) {
  double s = r + 1, t = 1 - r, u = 2 - r;
  c[0] = ((a * s - 5 * a) * s + 8 * a) * s - 4 * a;
  c[1] = ((a + 2) * r - (a + 3)) * r * r + 1;
  c[2] = ((a + 2) * t - (a + 3)) * t * t + 1;
  c[3] = ((a * u - 5 * a) * u + 8 * a) * u - 4 * a;
}

/* The taps of output index o of an axis of size in resized by scale (to out); lo, hi: the
 * tf_crop_and_resize roi of the axis. false: outside (the extrapolation value). */
static bool rs_tap(const rs_opts *p, int64_t in, double scale, int64_t o, double lo, double hi,
                   int64_t *idx, double *w) {
  double ow = scale * (double)in, x = (double)o, xo;
  switch (p->coord) {
  case RS_ALIGN_CORNERS: xo = ow == 1 ? 0 : x * (double)(in - 1) / (ow - 1); break;
  case RS_ASYMMETRIC: xo = x / scale; break;
  case RS_TF_CROP_AND_RESIZE:
    xo = ow == 1 ? (hi - lo) * (double)(in - 1) / 2 : x * (hi - lo) * (double)(in - 1) / (ow - 1);
    xo += lo * (double)(in - 1);
    if (xo < 0 || xo > (double)(in - 1)) return false;
    break;
  case RS_PYTORCH_HALF_PIXEL: xo = ow == 1 ? -0.5 : (x + 0.5) / scale - 0.5; break;
  case RS_TF_HALF_PIXEL_FOR_NN: xo = (x + 0.5) / scale; break;
  default: xo = (x + 0.5) / scale - 0.5; break;
  }
  if (!(xo > -4e18 && xo < 4e18)) xo = 0; /* NaN or absurd roi/scales: defined, if meaningless */
  double f = floor(xo), r = xo - f;
  int64_t fi = (int64_t)f;
  int n = rs_taps(p->mode);
  if (p->mode == RS_NEAREST) {
    bool up = false;
    if (r > 0) {
      switch (p->round) {
      case RS_PREFER_FLOOR: up = r > 0.5; break;
      case RS_PREFER_CEIL: up = r >= 0.5; break;
      case RS_FLOOR: up = false; break;
      case RS_CEIL: up = true; break;
      }
    }
    idx[0] = fi + up;
    w[0] = 1;
  } else if (p->mode == RS_LINEAR) {
    idx[0] = fi;
    idx[1] = fi + 1;
    w[0] = 1 - r;
    w[1] = r;
  } else {
    for (int t = 0; t < 4; t++)
      idx[t] = fi - 1 + t;
    cubic_coeffs(r, p->a, w);
  }
  if (p->exclude) {
    double sum = 0;
    for (int t = 0; t < n; t++) {
      if (idx[t] < 0 || idx[t] >= in) w[t] = 0;
      sum += w[t];
    }
    if (sum != 0)
      for (int t = 0; t < n; t++)
        w[t] /= sum;
  }
  for (int t = 0; t < n; t++)
    idx[t] = idx[t] < 0 ? 0 : idx[t] >= in ? in - 1 : idx[t];
  return true;
}

/* One axis of src (contiguous float64, shape) resized to out into a new tensor. */
static lc_status rs_axis(const rs_opts *p, const lc_tensor *src, int axis, int64_t out,
                         double scale, double lo, double hi, lc_tensor **dst) {
  int r = lc_ndim(src);
  int64_t shape[LC_MAX_DIMS], outer = 1, inner = 1, in = lc_shape(src)[axis];
  for (int i = 0; i < r; i++) {
    shape[i] = i == axis ? out : lc_shape(src)[i];
    if (i < axis) outer *= shape[i];
    if (i > axis) inner *= shape[i];
  }
  int n = rs_taps(p->mode);
  int64_t *idx = malloc(sizeof *idx * (size_t)(out * n + 1));
  double *w = malloc(sizeof *w * (size_t)(out * n + 1));
  bool *ok = malloc(sizeof *ok * (size_t)(out + 1));
  lc_status st = idx && w && ok ? lc_empty(r, shape, LC_FLOAT64, dst)
                                : lc_set_error(LC_ENOMEM, "out of memory");
  if (!st) {
    for (int64_t o = 0; o < out; o++)
      ok[o] = rs_tap(p, in, scale, o, lo, hi, idx + o * n, w + o * n);
    const double *sp = lc_data(src);
    double *dp = lc_data(*dst);
    for (int64_t b = 0; b < outer; b++)
      for (int64_t o = 0; o < out; o++) {
        double *d = dp + (b * out + o) * inner;
        if (!ok[o]) {
          for (int64_t j = 0; j < inner; j++)
            d[j] = p->extrapolation;
          continue;
        }
        for (int64_t j = 0; j < inner; j++)
          d[j] = 0;
        for (int t = 0; t < n; t++) {
          double wt = w[o * n + t];
          if (wt == 0) continue;
          const double *s = sp + (b * in + idx[o * n + t]) * inner;
          for (int64_t j = 0; j < inner; j++)
            d[j] += wt * s[j];
        }
      }
  }
  free(idx);
  free(w);
  free(ok);
  return st;
}

/* x resized to out[] with scales[] (one per dim); roi: 2 * rank values or NULL. */
static lc_status rs_run(ox_ctx *c, const rs_opts *p, const int64_t *out, const double *scales,
                        const double *roi) {
  const lc_tensor *x = c->in[0];
  int r = lc_ndim(x);
  lc_tensor *cur = NULL;
  lc_status st = check_numel(c, r, out);
  if (!st) st = as_f64(x, &cur);
  for (int i = 0; i < r && !st; i++) {
    int64_t in = lc_shape(x)[i];
    bool ident = in == out[i] && scales[i] == 1.0 && p->coord != RS_TF_CROP_AND_RESIZE &&
                 p->coord != RS_TF_HALF_PIXEL_FOR_NN;
    if (ident) continue;
    if (in == 0 || out[i] == 0) return lc_release(cur), ox_node_error(c, LC_ESHAPE, "empty dim");
    lc_tensor *next = NULL;
    st = rs_axis(p, cur, i, out[i], scales[i], roi ? roi[i] : 0, roi ? roi[r + i] : 1, &next);
    lc_release(cur);
    cur = next;
  }
  if (!st) st = f64_to(&cur, lc_dtype_of(x));
  if (st) {
    lc_release(cur);
    return st;
  }
  c->out[0] = cur;
  return LC_OK;
}

static lc_status rs_read_floats(ox_ctx *c, const lc_tensor *t, const char *what, double *v, int cap,
                                int *n) {
  if (lc_ndim(t) > 1 || lc_numel(t) > cap)
    return ox_node_error(c, LC_ESHAPE, "%s must be 1-D with at most %d values", what, cap);
  *n = (int)lc_numel(t);
  return lc_copy_to_buffer(t, LC_FLOAT64, v);
}

/* Output sizes from scales (floor(in * scale), as the reference) after checking them. */
static lc_status rs_sizes_from_scales(ox_ctx *c, const double *scales, int64_t *out) {
  const lc_tensor *x = c->in[0];
  for (int i = 0; i < lc_ndim(x); i++) {
    if (!(scales[i] > 0) || scales[i] > 1e6)
      return ox_node_error(c, LC_EARG, "scale %g must be positive", scales[i]);
    double o = floor(scales[i] * (double)lc_shape(x)[i]);
    if (o > (double)OX_MAX_EXTENT) return ox_node_error(c, LC_EARG, "output too large");
    out[i] = (int64_t)o;
  }
  return LC_OK;
}

static lc_status rs_mode_from(ox_ctx *c, const char *m, rs_mode *out) {
  if (strcmp(m, "nearest") == 0)
    *out = RS_NEAREST;
  else if (strcmp(m, "linear") == 0 || strcmp(m, "bilinear") == 0)
    *out = RS_LINEAR;
  else if (strcmp(m, "cubic") == 0)
    *out = RS_CUBIC;
  else
    return ox_node_error(c, LC_EARG, "mode '%s' is not supported", m);
  return LC_OK;
}

lc_status ox_resize(ox_ctx *c) {
  const lc_tensor *x = c->in[0];
  int r = lc_ndim(x);
  if (r < 1) return ox_node_error(c, LC_ESHAPE, "0-dim input");
  char buf[64];
  rs_opts p = {RS_NEAREST, RS_HALF_PIXEL, RS_PREFER_FLOOR, -0.75, false, 0.0};
  lc_status st =
      rs_mode_from(c, ox_attr_string(c->node, "mode", "nearest", buf, sizeof buf), &p.mode);
  if (st) return st;
  double scales[LC_MAX_DIMS], roi[2 * LC_MAX_DIMS];
  int64_t out[LC_MAX_DIMS];
  int ns = 0, nr = 0;
  if (c->opset < 11) { /* Resize-10: X, scales; Upsample's asymmetric, flooring transform */
    if (p.mode == RS_CUBIC)
      return ox_node_error(c, LC_EARG, "mode 'cubic' is not supported at opset 10");
    p.coord = RS_ASYMMETRIC;
    p.round = RS_FLOOR;
    if (c->n_in < 2 || !c->in[1]) return ox_node_error(c, LC_EARG, "missing scales");
    if ((st = rs_read_floats(c, c->in[1], "scales", scales, LC_MAX_DIMS, &ns))) return st;
    if (ns != r) return ox_node_error(c, LC_ESHAPE, "%d scales for rank %d", ns, r);
    if ((st = rs_sizes_from_scales(c, scales, out))) return st;
    return rs_run(c, &p, out, scales, NULL);
  }
  const char *ct =
      ox_attr_string(c->node, "coordinate_transformation_mode", "half_pixel", buf, sizeof buf);
  static const char *coords[] = {"half_pixel", "pytorch_half_pixel",   "align_corners",
                                 "asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize"};
  int k = 0;
  while (k < 6 && strcmp(ct, coords[k]) != 0)
    k++;
  if (k == 6)
    return ox_node_error(c, LC_EARG, "coordinate_transformation_mode '%s' is not supported", ct);
  p.coord = (rs_coord)k;
  const char *nm = ox_attr_string(c->node, "nearest_mode", "round_prefer_floor", buf, sizeof buf);
  static const char *rounds[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
  k = 0;
  while (k < 4 && strcmp(nm, rounds[k]) != 0)
    k++;
  if (k == 4) return ox_node_error(c, LC_EARG, "nearest_mode '%s' is not supported", nm);
  p.round = (rs_round)k;
  p.a = ox_attr_float(c->node, "cubic_coeff_a", -0.75);
  p.exclude = ox_attr_int(c->node, "exclude_outside", 0) != 0;
  p.extrapolation = ox_attr_float(c->node, "extrapolation_value", 0.0);
  const lc_tensor *troi = c->n_in > 1 ? c->in[1] : NULL, *tsc = c->n_in > 2 ? c->in[2] : NULL;
  const lc_tensor *tsz = c->n_in > 3 ? c->in[3] : NULL;
  if (tsc && lc_numel(tsc) == 0) tsc = NULL;
  if (tsz && lc_numel(tsz) == 0) tsz = NULL;
  if (!tsc == !tsz)
    return ox_node_error(c, LC_EARG, "exactly one of scales and sizes must be given");
  if (p.coord == RS_TF_CROP_AND_RESIZE) {
    if (!troi) return ox_node_error(c, LC_EARG, "tf_crop_and_resize needs roi");
    if ((st = rs_read_floats(c, troi, "roi", roi, 2 * LC_MAX_DIMS, &nr))) return st;
    if (nr != 2 * r) return ox_node_error(c, LC_ESHAPE, "roi has %d values for rank %d", nr, r);
  }
  if (tsc) {
    if ((st = rs_read_floats(c, tsc, "scales", scales, LC_MAX_DIMS, &ns))) return st;
    if (ns != r) return ox_node_error(c, LC_ESHAPE, "%d scales for rank %d", ns, r);
    if ((st = rs_sizes_from_scales(c, scales, out))) return st;
  } else {
    if ((st = ox_read_ints(tsz, "sizes", out, LC_MAX_DIMS, &ns))) return st;
    if (ns != r) return ox_node_error(c, LC_ESHAPE, "%d sizes for rank %d", ns, r);
    for (int i = 0; i < r; i++) {
      if (out[i] < 1 || out[i] > OX_MAX_EXTENT)
        return ox_node_error(c, LC_EARG, "bad size %lld", (long long)out[i]);
      if (lc_shape(x)[i] == 0) return ox_node_error(c, LC_ESHAPE, "empty dim");
      scales[i] = (double)out[i] / (double)lc_shape(x)[i];
    }
  }
  return rs_run(c, &p, out, scales, p.coord == RS_TF_CROP_AND_RESIZE ? roi : NULL);
}

/* Upsample (opset 7: the scales attribute; 9: the scales input): asymmetric coordinates,
 * nearest flooring. */
lc_status ox_upsample(ox_ctx *c) {
  const lc_tensor *x = c->in[0];
  int r = lc_ndim(x), ns = 0;
  char buf[32];
  rs_opts p = {RS_NEAREST, RS_ASYMMETRIC, RS_FLOOR, -0.75, false, 0.0};
  lc_status st =
      rs_mode_from(c, ox_attr_string(c->node, "mode", "nearest", buf, sizeof buf), &p.mode);
  if (st) return st;
  if (p.mode == RS_CUBIC) return ox_node_error(c, LC_EARG, "mode 'cubic' is not supported");
  double scales[LC_MAX_DIMS];
  int64_t out[LC_MAX_DIMS];
  if (c->n_in > 1 && c->in[1]) {
    if ((st = rs_read_floats(c, c->in[1], "scales", scales, LC_MAX_DIMS, &ns))) return st;
  } else {
    const float *f;
    int64_t nf = ox_attr_floats(c->node, "scales", &f);
    if (nf < 0 || nf > LC_MAX_DIMS) return ox_node_error(c, LC_EARG, "missing scales");
    for (int64_t i = 0; i < nf; i++)
      scales[i] = f[i];
    ns = (int)nf;
  }
  if (ns != r || r < 1) return ox_node_error(c, LC_ESHAPE, "%d scales for rank %d", ns, r);
  if ((st = rs_sizes_from_scales(c, scales, out))) return st;
  return rs_run(c, &p, out, scales, NULL);
}

/* ---------------------------------------------------------------- losses
 * NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss with ONNX's rules: input {N, C, d...},
 * target {N, d...}; a target equal to ignore_index adds nothing (and may lie outside 0..C-1);
 * mean divides by the sum of the weights of the targets kept (their count without weights). */

typedef struct loss_args {
  int64_t n, ch, inner; /* N, C, prod(d...) */
  bool has_ignore;
  int64_t ignore;
  int reduction; /* 0 mean, 1 sum, 2 none */
} loss_args;

static lc_status loss_setup(ox_ctx *c, const lc_tensor *x, const lc_tensor *t, loss_args *a) {
  lc_status st = need_float(c, x, "input");
  if (st) return st;
  int r = lc_ndim(x);
  if (r < 2) return ox_node_error(c, LC_ESHAPE, "input of rank %d (expected N, C, ...)", r);
  if (lc_dtype_of(t) != LC_INT64 && lc_dtype_of(t) != LC_INT32)
    return ox_node_error(c, LC_EDTYPE, "target must be an integer tensor");
  if (lc_ndim(t) != r - 1 || lc_shape(t)[0] != lc_shape(x)[0] ||
      memcmp(lc_shape(t) + 1, lc_shape(x) + 2, sizeof(int64_t) * (size_t)(r - 2)) != 0)
    return ox_node_error(c, LC_ESHAPE, "target shape does not match the input's without dim 1");
  a->n = lc_shape(x)[0];
  a->ch = lc_shape(x)[1];
  a->inner = 1;
  for (int i = 2; i < r; i++)
    a->inner *= lc_shape(x)[i];
  a->has_ignore = ox_attr(c->node, "ignore_index") != NULL;
  a->ignore = ox_attr_int(c->node, "ignore_index", 0);
  char buf[16];
  const char *red = ox_attr_string(c->node, "reduction", "mean", buf, sizeof buf);
  if (strcmp(red, "mean") == 0)
    a->reduction = 0;
  else if (strcmp(red, "sum") == 0)
    a->reduction = 1;
  else if (strcmp(red, "none") == 0)
    a->reduction = 2;
  else
    return ox_node_error(c, LC_EARG, "reduction '%s' is not supported", red);
  return LC_OK;
}

/* The loss from log-probabilities lp (float64 {N, C, inner}) into c->out[0] (x's dtype). */
static lc_status nll_compute(ox_ctx *c, const loss_args *a, const double *lp, const lc_tensor *t,
                             const lc_tensor *weight, lc_dtype dt) {
  lc_tensor *td = NULL, *wd = NULL, *y = NULL;
  lc_status st = lc_contiguous(t, &td);
  if (!st && weight) {
    if (lc_ndim(weight) != 1 || lc_shape(weight)[0] != a->ch)
      st = ox_node_error(c, LC_ESHAPE, "weight must be {C} = {%lld}", (long long)a->ch);
    else
      st = as_f64(weight, &wd);
  }
  int64_t cnt = a->n * a->inner;
  if (!st) {
    if (a->reduction == 2)
      st = lc_empty(lc_ndim(t), lc_shape(t), LC_FLOAT64, &y);
    else
      st = lc_empty(0, NULL, LC_FLOAT64, &y);
  }
  if (!st) {
    const double *wp = wd ? lc_data(wd) : NULL;
    double *yp = lc_data(y), sum = 0, wsum = 0;
    bool i32 = lc_dtype_of(td) == LC_INT32;
    for (int64_t i = 0; i < cnt && !st; i++) {
      int64_t b = i / a->inner, j = i % a->inner;
      int64_t k = i32 ? ((const int32_t *)lc_data(td))[i] : ((const int64_t *)lc_data(td))[i];
      double l = 0, w = 0;
      if (!(a->has_ignore && k == a->ignore)) {
        if (k < 0 || k >= a->ch) {
          st = ox_node_error(c, LC_EINDEX, "target %lld out of range for %lld classes",
                             (long long)k, (long long)a->ch);
          break;
        }
        w = wp ? wp[k] : 1.0;
        l = -lp[(b * a->ch + k) * a->inner + j] * w;
      }
      if (a->reduction == 2) yp[i] = l;
      sum += l;
      wsum += w;
    }
    if (a->reduction == 0)
      yp[0] = sum / wsum;
    else if (a->reduction == 1)
      yp[0] = sum;
    if (!st) st = f64_to(&y, dt);
  }
  lc_release(td);
  lc_release(wd);
  if (st) {
    lc_release(y);
    return st;
  }
  c->out[0] = y;
  return LC_OK;
}

static lc_status nll_loss_f(ox_ctx *c) {
  loss_args a;
  lc_status st = loss_setup(c, c->in[0], c->in[1], &a);
  if (st) return st;
  lc_tensor *xd = NULL;
  if ((st = as_f64(c->in[0], &xd))) return st;
  st = nll_compute(c, &a, lc_data(xd), c->in[1], c->n_in > 2 ? c->in[2] : NULL,
                   lc_dtype_of(c->in[0]));
  lc_release(xd);
  return st;
}

/* SoftmaxCrossEntropyLoss: log_softmax over dim 1, then the NLL; output 1 the log-probs. */
static lc_status softmax_cross_entropy_f(ox_ctx *c) {
  loss_args a;
  lc_status st = loss_setup(c, c->in[0], c->in[1], &a);
  if (st) return st;
  lc_tensor *lp = NULL;
  if ((st = as_f64(c->in[0], &lp))) return st;
  lc_tensor *lpo = NULL;
  st = lc_clone(lp, &lpo); /* as_f64 may share the input's storage */
  lc_release(lp);
  if (st) return st;
  double *p = lc_data(lpo);
  for (int64_t b = 0; b < a.n; b++)
    for (int64_t j = 0; j < a.inner; j++) {
      double *q = p + b * a.ch * a.inner + j, mx = -INFINITY, s = 0;
      for (int64_t k = 0; k < a.ch; k++)
        mx = q[k * a.inner] > mx ? q[k * a.inner] : mx;
      for (int64_t k = 0; k < a.ch; k++)
        s += exp(q[k * a.inner] - mx);
      double ls = mx + log(s);
      for (int64_t k = 0; k < a.ch; k++)
        q[k * a.inner] -= ls;
    }
  lc_dtype dt = lc_dtype_of(c->in[0]);
  st = nll_compute(c, &a, p, c->in[1], c->n_in > 2 ? c->in[2] : NULL, dt);
  if (!st && c->n_out > 1 && c->node->out[1] >= 0) {
    if (!(st = f64_to(&lpo, dt))) c->out[1] = lc_retain(lpo);
  }
  lc_release(lpo);
  return st;
}

/* ---------------------------------------------------------------- half precision
 * The ops above that need float32 or float64 run float16 / bfloat16 inputs as float32; their
 * float32 outputs go back to input 0's half dtype. */
static lc_status with_float32(ox_ctx *c, lc_status (*fn)(ox_ctx *)) {
  lc_dtype half = lc_dtype_of(c->in[0]);
  if (!lc_dtype_is_half(half)) return fn(c);
  lc_tensor *in[8] = {NULL}, *out[8] = {NULL};
  if (c->n_in > 8 || c->n_out > 8) return ox_node_error(c, LC_EARG, "too many inputs");
  lc_status st = LC_OK;
  for (int i = 0; i < c->n_in && !st; i++) {
    if (!c->in[i]) continue;
    if (lc_dtype_is_half(lc_dtype_of(c->in[i])))
      st = lc_to_dtype(c->in[i], LC_FLOAT32, &in[i]);
    else
      in[i] = lc_retain(c->in[i]);
  }
  ox_ctx c32 = *c;
  c32.in = in;
  c32.out = out;
  if (!st) st = fn(&c32);
  for (int j = 0; j < c->n_out; j++) {
    if (!st && out[j] && lc_dtype_of(out[j]) == LC_FLOAT32)
      st = lc_to_dtype(out[j], half, &c->out[j]);
    else if (!st && out[j])
      c->out[j] = lc_retain(out[j]);
    lc_release(out[j]);
  }
  for (int i = 0; i < c->n_in; i++)
    lc_release(in[i]);
  return st;
}

lc_status ox_batch_norm(ox_ctx *c) { return with_float32(c, batch_norm_f); }
lc_status ox_instance_norm(ox_ctx *c) { return with_float32(c, instance_norm_f); }
lc_status ox_layer_norm(ox_ctx *c) { return with_float32(c, layer_norm_f); }
lc_status ox_lrn(ox_ctx *c) { return with_float32(c, lrn_f); }
lc_status ox_mvn(ox_ctx *c) { return with_float32(c, mvn_f); }
lc_status ox_conv_transpose(ox_ctx *c) { return with_float32(c, conv_transpose_f); }
lc_status ox_nll_loss(ox_ctx *c) { return with_float32(c, nll_loss_f); }
lc_status ox_softmax_cross_entropy(ox_ctx *c) { return with_float32(c, softmax_cross_entropy_f); }

/* Det: the determinant of the last two dims (square, float), batched over the others. */
lc_status ox_det(ox_ctx *c) {
  if (!c->in[0]) return ox_node_error(c, LC_EARG, "input 0 is missing");
  return lc_linalg_det(c->in[0], &c->out[0]);
}
