/* ops_nn.c - ONNX linear algebra, convolution, pooling and normalization ops. */
#include "onnx_internal.h"

#include <string.h>

lc_status ox_matmul(ox_ctx *c) { return lc_matmul(c->in[0], c->in[1], &c->out[0]); }

/* Gemm: alpha * A' B' + beta * C, A' = transA ? A^T : A, B' likewise; C broadcasts. */
lc_status ox_gemm(ox_ctx *c) {
  double alpha = ox_attr_float(c->node, "alpha", 1.0), beta = ox_attr_float(c->node, "beta", 1.0);
  lc_tensor *a = NULL, *b = NULL, *y = NULL, *t = NULL;
  lc_status st = ox_attr_int(c->node, "transA", 0) ? lc_t(c->in[0], &a) : (a = lc_retain(c->in[0]), LC_OK);
  if (!st) st = ox_attr_int(c->node, "transB", 0) ? lc_t(c->in[1], &b) : (b = lc_retain(c->in[1]), LC_OK);
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
    if (beta != 1.0) st = lc_binary_scalar(LC_MUL, c->in[2], beta, false, &cb);
    else cb = lc_retain(c->in[2]);
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
  if (s->nsp < 1 || s->nsp > 2)
    return ox_node_error(c, LC_ESHAPE, "%d spatial dims (lucid runs 1 and 2)", s->nsp);
  const int64_t *v;
  int64_t k;
  for (int i = 0; i < s->nsp; i++) {
    s->kernel[i] = kernel[i];
    s->stride[i] = s->dilation[i] = 1;
    s->pad_begin[i] = s->pad_end[i] = 0;
  }
  if ((k = ox_attr_ints(c->node, "strides", &v)) >= 0) {
    if (k != s->nsp) return ox_node_error(c, LC_EFORMAT, "strides has %lld values for %d spatial dims", (long long)k, s->nsp);
    for (int i = 0; i < s->nsp; i++) s->stride[i] = v[i];
  }
  if ((k = ox_attr_ints(c->node, "dilations", &v)) >= 0) {
    if (k != s->nsp) return ox_node_error(c, LC_EFORMAT, "dilations has %lld values for %d spatial dims", (long long)k, s->nsp);
    for (int i = 0; i < s->nsp; i++) s->dilation[i] = v[i];
  }
  if ((k = ox_attr_ints(c->node, "pads", &v)) >= 0) {
    if (k != 2 * s->nsp) return ox_node_error(c, LC_EFORMAT, "pads has %lld values for %d spatial dims", (long long)k, s->nsp);
    for (int i = 0; i < s->nsp; i++) {
      s->pad_begin[i] = v[i];
      s->pad_end[i] = v[i + s->nsp];
      if (v[i] < 0 || v[i + s->nsp] < 0) return ox_node_error(c, LC_EFORMAT, "negative pads");
    }
  }
  for (int i = 0; i < s->nsp; i++)
    if (s->stride[i] < 1 || s->dilation[i] < 1 || s->kernel[i] < 1)
      return ox_node_error(c, LC_EFORMAT, "kernel, strides and dilations must be >= 1");
  char buf[32];
  const char *ap = ox_attr_string(c->node, "auto_pad", "NOTSET", buf, sizeof buf);
  if (strcmp(ap, "SAME_UPPER") == 0 || strcmp(ap, "SAME_LOWER") == 0) {
    for (int i = 0; i < s->nsp; i++) {
      int64_t in = lc_shape(x)[2 + i];
      int64_t total;
      if (transposed) {
        total = s->stride[i] * (in - 1) + (s->kernel[i] - 1) * s->dilation[i] + 1 - in * s->stride[i];
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
    for (int i = 0; i < s->nsp; i++) s->pad_begin[i] = s->pad_end[i] = 0;
  } else if (strcmp(ap, "NOTSET") != 0) {
    return ox_node_error(c, LC_EFORMAT, "auto_pad '%s' (expected NOTSET, SAME_UPPER, SAME_LOWER or VALID)", ap);
  }
  return LC_OK;
}

/* x padded explicitly when its pads are not symmetric (lucid's convs pad both sides alike);
 * sym receives the symmetric padding left to the op. */
static lc_status pad_asymmetric(const spatial *s, const lc_tensor *x, double value, lc_tensor **xp,
                                int64_t sym[2]) {
  bool symmetric = true;
  for (int i = 0; i < s->nsp; i++) symmetric = symmetric && s->pad_begin[i] == s->pad_end[i];
  if (symmetric) {
    for (int i = 0; i < s->nsp; i++) sym[i] = s->pad_begin[i];
    *xp = lc_retain((lc_tensor *)x);
    return LC_OK;
  }
  int64_t pad[4];
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
  int64_t sym[2];
  if ((st = pad_asymmetric(&s, x, 0.0, &xp, sym))) return st;
  for (int i = 0; i < s.nsp; i++) o.padding[i] = sym[i];
  st = s.nsp == 1 ? lc_conv1d(xp, w, b, &o, &c->out[0]) : lc_conv2d(xp, w, b, &o, &c->out[0]);
  lc_release(xp);
  return st;
}
