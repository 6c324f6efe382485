/* conv.c - module kinds of the conv family: Conv1d, Conv2d, ConvTranspose2d, MaxPool1d/2d,
 * AvgPool1d/2d, AdaptiveAvgPool1d/2d, AdaptiveMaxPool1d/2d (include/lucid_conv.h). */
#include "nn.h"

#include "../core/core.h"
#include "../kernels/conv.h" /* the family's option rules */
#include "lucid_conv.h"

#include "kind_helpers.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- convolutions */

typedef struct conv_state {
  int sd; /* spatial rank */
  bool transposed;
  int64_t in, out, k[2];
  lc_conv_opts o;
} conv_state;

/* Checks rank and channels: "expected input with 3 channels, got 4: input shape {1, 4, 8, 8}". */
static lc_status check_input(const lc_tensor *x, int sd, int64_t channels) {
  int nd = lc_ndim(x);
  char buf[256];
  lc_shape_str(nd, lc_shape(x), buf, sizeof buf);
  if (nd != sd + 1 && nd != sd + 2)
    return lc_set_error(LC_ESHAPE,
                        "expected a %d-D (unbatched) or %d-D (batched) input, got a %d-D input: "
                        "input shape %s",
                        sd + 1, sd + 2, nd, buf);
  int64_t c = lc_shape(x)[nd - sd - 1];
  if (channels >= 0 && c != channels)
    return lc_set_error(LC_ESHAPE, "expected input with %lld channels, got %lld: input shape %s",
                        (long long)channels, (long long)c, buf);
  return LC_OK;
}

static lc_tensor *param(const lc_module *m, const char *name) {
  int64_t i = lc_module_find_parameter(m, name);
  return i >= 0 ? lc_module_own_parameter(m, i) : NULL;
}

static lc_status conv_forward(lc_module *m, const lc_tensor *x, lc_tensor **out) {
  const conv_state *s = lc_module_state(m);
  lc_status st = check_input(x, s->sd, s->in);
  if (st) return st;
  lc_tensor *w = param(m, "weight"), *b = param(m, "bias");
  if (s->transposed) return strip_fn(lc_conv_transpose2d(x, w, b, &s->o, out), "conv_transpose2d");
  if (s->sd == 1) return strip_fn(lc_conv1d(x, w, b, &s->o, out), "conv1d");
  return strip_fn(lc_conv2d(x, w, b, &s->o, out), "conv2d");
}

static lc_status conv_reset(lc_module *m) {
  /* kaiming_uniform(a = sqrt(5)) gives U(-1/sqrt(fan_in), 1/sqrt(fan_in)); fan_in is the
   * weight's dim 1 times the kernel size (PyTorch's _calculate_fan_in_and_fan_out), and the
   * bias uses the same bound */
  lc_tensor *w = param(m, "weight");
  int64_t fan_in = 1;
  for (int d = 1; d < lc_ndim(w); d++)
    fan_in *= lc_shape(w)[d];
  double bound = fan_in > 0 ? 1.0 / sqrt((double)fan_in) : 0.0;
  return lc_nn_uniform_params(m, bound);
}

/* "(3, 3)" or "(3,)" */
static void tuple(lc_strbuf *b, int n, const int64_t *v) {
  if (n == 1)
    lc_sb_addf(b, "(%lld,)", (long long)v[0]);
  else
    lc_sb_addf(b, "(%lld, %lld)", (long long)v[0], (long long)v[1]);
}

static bool all_eq(int n, const int64_t *v, int64_t x) {
  for (int k = 0; k < n; k++)
    if (v[k] != x) return false;
  return true;
}

/* PyTorch's _ConvNd.extra_repr, Lua booleans. */
static lc_status conv_extra(const lc_module *m, char **out) {
  const conv_state *s = lc_module_state(m);
  int n = s->sd;
  lc_strbuf b = {0};
  lc_sb_addf(&b, "%lld, %lld, kernel_size=", (long long)s->in, (long long)s->out);
  tuple(&b, n, s->k);
  lc_sb_add(&b, ", stride=");
  tuple(&b, n, s->o.stride);
  if (s->o.same)
    lc_sb_add(&b, ", padding=same");
  else if (s->o.valid)
    lc_sb_add(&b, ", padding=valid");
  else if (!all_eq(n, s->o.padding, 0)) {
    lc_sb_add(&b, ", padding=");
    tuple(&b, n, s->o.padding);
  }
  if (!all_eq(n, s->o.dilation, 1)) {
    lc_sb_add(&b, ", dilation=");
    tuple(&b, n, s->o.dilation);
  }
  if (s->transposed && !all_eq(n, s->o.output_padding, 0)) {
    lc_sb_add(&b, ", output_padding=");
    tuple(&b, n, s->o.output_padding);
  }
  if (s->o.groups != 1) lc_sb_addf(&b, ", groups=%lld", (long long)s->o.groups);
  if (!param(m, "bias")) lc_sb_add(&b, ", bias=false");
  if (s->o.padding_mode != LC_PAD_CONSTANT)
    lc_sb_addf(&b, ", padding_mode=%s", lc_pad_mode_name(s->o.padding_mode));
  if (b.oom) {
    free(b.s);
    return nn_oom();
  }
  *out = b.s;
  return LC_OK;
}

static bool conv_attr(const lc_module *m, const char *name, lc_attr *out) {
  const conv_state *s = lc_module_state(m);
  int64_t v;
  if (!strcmp(name, "in_channels"))
    v = s->in;
  else if (!strcmp(name, "out_channels"))
    v = s->out;
  else if (!strcmp(name, "groups"))
    v = s->o.groups;
  else
    return false;
  *out = (lc_attr){.type = LC_ATTR_INT, .i = v};
  return true;
}

#define CONV_KIND(var, Name)                                                                       \
  const lc_module_kind var = {.name = Name,                                                        \
                              .forward = conv_forward,                                             \
                              .extra_repr = conv_extra,                                            \
                              .reset_parameters = conv_reset,                                      \
                              .attr = conv_attr,                                                   \
                              .destroy = free_state};
CONV_KIND(lc_kind_conv1d, "Conv1d")
CONV_KIND(lc_kind_conv2d, "Conv2d")
CONV_KIND(lc_kind_conv_transpose2d, "ConvTranspose2d")


static lc_status make_conv(const lc_module_kind *kind, int sd, bool transposed, int64_t in,
                           int64_t outc, const int64_t *k, const lc_conv_opts *opts, bool bias,
                           lc_module **out) {
  const char *fn = kind->name;
  lc_conv_opts o;
  if (opts)
    o = *opts;
  else
    lc_conv_opts_init(&o);
  if (in < 1)
    return lc_set_error(LC_EARG, "%s: in_channels must be >= 1, got %lld", fn, (long long)in);
  if (outc < 1)
    return lc_set_error(LC_EARG, "%s: out_channels must be >= 1, got %lld", fn, (long long)outc);
  for (int d = 0; d < sd; d++)
    if (k[d] < 1)
      return lc_set_error(LC_EARG, "%s: kernel_size must be >= 1, got %lld", fn, (long long)k[d]);
  lc_status st = lc_conv_check_opts(fn, sd, transposed, &o);
  if (!st) st = lc_conv_check_groups(fn, o.groups, in, outc);
  if (st) return st;
  if (o.same || o.valid)
    for (int d = 0; d < 2; d++)
      o.padding[d] = 0;
  if (sd == 1) o.stride[1] = o.dilation[1] = 1, o.padding[1] = o.output_padding[1] = 0;
  conv_state *s = malloc(sizeof *s);
  if (!s) return nn_oom();
  *s = (conv_state){.sd = sd, .transposed = transposed, .in = in, .out = outc, .o = o};
  s->k[0] = k[0], s->k[1] = sd == 2 ? k[1] : 1;
  lc_module *m;
  st = lc_module_new(kind, s, NULL, &m);
  if (st) return st;
  int64_t ws[4] = {transposed ? in : outc, transposed ? outc / o.groups : in / o.groups, k[0],
                   sd == 2 ? k[1] : 0};
  st = lc_nn_add_param(m, "weight", sd + 2, ws);
  if (!st && bias) st = lc_nn_add_param(m, "bias", 1, &outc);
  if (!st) st = conv_reset(m);
  if (st) {
    lc_module_release(m);
    return st;
  }
  *out = m;
  return LC_OK;
}

lc_status lc_nn_conv1d(int64_t in_channels, int64_t out_channels, int64_t kernel_size,
                       const lc_conv_opts *opts, bool bias, lc_module **out) {
  int64_t k[2] = {kernel_size, 1};
  return make_conv(&lc_kind_conv1d, 1, false, in_channels, out_channels, k, opts, bias, out);
}

lc_status lc_nn_conv2d(int64_t in_channels, int64_t out_channels, const int64_t kernel_size[2],
                       const lc_conv_opts *opts, bool bias, lc_module **out) {
  if (!kernel_size) return lc_set_error(LC_EARG, "Conv2d: NULL kernel_size");
  return make_conv(&lc_kind_conv2d, 2, false, in_channels, out_channels, kernel_size, opts, bias,
                   out);
}

lc_status lc_nn_conv_transpose2d(int64_t in_channels, int64_t out_channels,
                                 const int64_t kernel_size[2], const lc_conv_opts *opts, bool bias,
                                 lc_module **out) {
  if (!kernel_size) return lc_set_error(LC_EARG, "ConvTranspose2d: NULL kernel_size");
  return make_conv(&lc_kind_conv_transpose2d, 2, true, in_channels, out_channels, kernel_size,
                   opts, bias, out);
}

bool lc_nn_conv_info(const lc_module *m, int64_t kernel_size[2], lc_conv_opts *opts) {
  const lc_module_kind *k = lc_module_kind_of(m);
  if (k != &lc_kind_conv1d && k != &lc_kind_conv2d && k != &lc_kind_conv_transpose2d) return false;
  const conv_state *s = lc_module_state(m);
  if (kernel_size) kernel_size[0] = s->k[0], kernel_size[1] = s->k[1];
  if (opts) *opts = s->o;
  return true;
}

/* ---------------------------------------------------------------- pooling */

enum { P_MAX, P_AVG, P_AAVG, P_AMAX };

typedef struct pool_state {
  int kind, sd;
  lc_pool_opts o;
  int64_t out_size[2];
  bool return_indices;
} pool_state;

static lc_status pool_forward(lc_module *m, const lc_tensor *x, lc_tensor **out) {
  const pool_state *s = lc_module_state(m);
  lc_status st = check_input(x, s->sd, -1);
  if (st) return st;
  static const char *const fns[4][2] = {{"max_pool1d", "max_pool2d"},
                                        {"avg_pool1d", "avg_pool2d"},
                                        {"adaptive_avg_pool1d", "adaptive_avg_pool2d"},
                                        {"adaptive_max_pool1d", "adaptive_max_pool2d"}};
  const char *fn = fns[s->kind][s->sd - 1];
  switch (s->kind) {
  case P_MAX:
    st = s->sd == 1 ? lc_max_pool1d(x, &s->o, out, NULL) : lc_max_pool2d(x, &s->o, out, NULL);
    break;
  case P_AVG:
    st = s->sd == 1 ? lc_avg_pool1d(x, &s->o, out) : lc_avg_pool2d(x, &s->o, out);
    break;
  case P_AAVG:
    st = s->sd == 1 ? lc_adaptive_avg_pool1d(x, s->out_size[0], out)
                    : lc_adaptive_avg_pool2d(x, s->out_size, out);
    break;
  default:
    st = s->sd == 1 ? lc_adaptive_max_pool1d(x, s->out_size[0], out, NULL)
                    : lc_adaptive_max_pool2d(x, s->out_size, out, NULL);
  }
  return st ? strip_fn(st, fn) : LC_OK;
}

/* an int when both entries agree (or 1-d), else a tuple */
static void value(lc_strbuf *b, int sd, const int64_t *v) {
  if (sd == 1 || v[0] == v[1])
    lc_sb_addf(b, "%lld", (long long)v[0]);
  else
    tuple(b, 2, v);
}

static void size_entry(lc_strbuf *b, int64_t v) {
  if (v < 0)
    lc_sb_add(b, "nil");
  else
    lc_sb_addf(b, "%lld", (long long)v);
}

static lc_status pool_extra(const lc_module *m, char **out) {
  const pool_state *s = lc_module_state(m);
  lc_strbuf b = {0};
  const int64_t *stride = s->o.stride;
  switch (s->kind) {
  case P_MAX:
    lc_sb_add(&b, "kernel_size=");
    value(&b, s->sd, s->o.kernel_size);
    lc_sb_add(&b, ", stride=");
    value(&b, s->sd, stride);
    lc_sb_add(&b, ", padding=");
    value(&b, s->sd, s->o.padding);
    lc_sb_add(&b, ", dilation=");
    value(&b, s->sd, s->o.dilation);
    lc_sb_addf(&b, ", ceil_mode=%s", s->o.ceil_mode ? "true" : "false");
    break;
  case P_AVG:
    /* PyTorch: AvgPool1d prints 1-tuples, AvgPool2d what it was given */
    lc_sb_add(&b, "kernel_size=");
    s->sd == 1 ? tuple(&b, 1, s->o.kernel_size) : value(&b, 2, s->o.kernel_size);
    lc_sb_add(&b, ", stride=");
    s->sd == 1 ? tuple(&b, 1, stride) : value(&b, 2, stride);
    lc_sb_add(&b, ", padding=");
    s->sd == 1 ? tuple(&b, 1, s->o.padding) : value(&b, 2, s->o.padding);
    break;
  default:
    lc_sb_add(&b, "output_size=");
    if (s->sd == 1 || s->out_size[0] == s->out_size[1]) {
      size_entry(&b, s->out_size[0]);
    } else {
      lc_sb_add(&b, "(");
      size_entry(&b, s->out_size[0]);
      lc_sb_add(&b, ", ");
      size_entry(&b, s->out_size[1]);
      lc_sb_add(&b, ")");
    }
  }
  if (b.oom) {
    free(b.s);
    return nn_oom();
  }
  *out = b.s;
  return LC_OK;
}

static bool pool_attr(const lc_module *m, const char *name, lc_attr *out) {
  const pool_state *s = lc_module_state(m);
  if (!strcmp(name, "ceil_mode") && (s->kind == P_MAX || s->kind == P_AVG))
    *out = (lc_attr){.type = LC_ATTR_BOOL, .b = s->o.ceil_mode};
  else if (!strcmp(name, "count_include_pad") && s->kind == P_AVG)
    *out = (lc_attr){.type = LC_ATTR_BOOL, .b = s->o.count_include_pad};
  else if (!strcmp(name, "return_indices") && (s->kind == P_MAX || s->kind == P_AMAX))
    *out = (lc_attr){.type = LC_ATTR_BOOL, .b = s->return_indices};
  else
    return false;
  return true;
}

#define POOL_KIND(var, Name)                                                                       \
  const lc_module_kind var = {.name = Name,                                                        \
                              .forward = pool_forward,                                             \
                              .extra_repr = pool_extra,                                            \
                              .attr = pool_attr,                                                   \
                              .destroy = free_state};
POOL_KIND(lc_kind_max_pool1d, "MaxPool1d")
POOL_KIND(lc_kind_max_pool2d, "MaxPool2d")
POOL_KIND(lc_kind_avg_pool1d, "AvgPool1d")
POOL_KIND(lc_kind_avg_pool2d, "AvgPool2d")
POOL_KIND(lc_kind_adaptive_avg_pool1d, "AdaptiveAvgPool1d")
POOL_KIND(lc_kind_adaptive_avg_pool2d, "AdaptiveAvgPool2d")
POOL_KIND(lc_kind_adaptive_max_pool1d, "AdaptiveMaxPool1d")
POOL_KIND(lc_kind_adaptive_max_pool2d, "AdaptiveMaxPool2d")

static lc_status make_pool(const lc_module_kind *kind, int pk, int sd, const lc_pool_opts *o,
                           const int64_t *out_size, bool ri, lc_module **out) {
  const char *fn = kind->name;
  pool_state *s = calloc(1, sizeof *s);
  if (!s) return nn_oom();
  s->kind = pk, s->sd = sd, s->return_indices = ri;
  if (o) {
    s->o = *o;
    lc_status st = lc_pool_check_window(fn, sd, o->kernel_size, o->stride, o->padding,
                                        pk == P_MAX ? o->dilation : NULL);
    if (st) {
      free(s);
      return st;
    }
    if (sd == 1) {
      s->o.kernel_size[1] = 1, s->o.stride[1] = 1, s->o.padding[1] = 0, s->o.dilation[1] = 1;
    }
    if (pk == P_AVG) s->o.dilation[0] = s->o.dilation[1] = 1;
  } else {
    lc_status st = lc_pool_check_output_size(fn, sd, out_size);
    if (st) {
      free(s);
      return st;
    }
    for (int d = 0; d < sd; d++)
      s->out_size[d] = out_size[d];
    if (sd == 1) s->out_size[1] = 1;
  }
  return lc_module_new(kind, s, NULL, out);
}

lc_status lc_nn_max_pool1d(const lc_pool_opts *o, bool return_indices, lc_module **out) {
  if (!o) return lc_set_error(LC_EARG, "MaxPool1d: NULL options");
  return make_pool(&lc_kind_max_pool1d, P_MAX, 1, o, NULL, return_indices, out);
}
lc_status lc_nn_max_pool2d(const lc_pool_opts *o, bool return_indices, lc_module **out) {
  if (!o) return lc_set_error(LC_EARG, "MaxPool2d: NULL options");
  return make_pool(&lc_kind_max_pool2d, P_MAX, 2, o, NULL, return_indices, out);
}
lc_status lc_nn_avg_pool1d(const lc_pool_opts *o, lc_module **out) {
  if (!o) return lc_set_error(LC_EARG, "AvgPool1d: NULL options");
  return make_pool(&lc_kind_avg_pool1d, P_AVG, 1, o, NULL, false, out);
}
lc_status lc_nn_avg_pool2d(const lc_pool_opts *o, lc_module **out) {
  if (!o) return lc_set_error(LC_EARG, "AvgPool2d: NULL options");
  return make_pool(&lc_kind_avg_pool2d, P_AVG, 2, o, NULL, false, out);
}
lc_status lc_nn_adaptive_avg_pool1d(int64_t out_size, lc_module **out) {
  return make_pool(&lc_kind_adaptive_avg_pool1d, P_AAVG, 1, NULL, &out_size, false, out);
}
lc_status lc_nn_adaptive_avg_pool2d(const int64_t out_size[2], lc_module **out) {
  if (!out_size) return lc_set_error(LC_EARG, "AdaptiveAvgPool2d: NULL output_size");
  return make_pool(&lc_kind_adaptive_avg_pool2d, P_AAVG, 2, NULL, out_size, false, out);
}
lc_status lc_nn_adaptive_max_pool1d(int64_t out_size, bool return_indices, lc_module **out) {
  return make_pool(&lc_kind_adaptive_max_pool1d, P_AMAX, 1, NULL, &out_size, return_indices, out);
}
lc_status lc_nn_adaptive_max_pool2d(const int64_t out_size[2], bool return_indices,
                                    lc_module **out) {
  if (!out_size) return lc_set_error(LC_EARG, "AdaptiveMaxPool2d: NULL output_size");
  return make_pool(&lc_kind_adaptive_max_pool2d, P_AMAX, 2, NULL, out_size, return_indices, out);
}

bool lc_nn_pool_info(const lc_module *m, lc_pool_opts *opts, int64_t out_size[2],
                     bool *return_indices) {
  const lc_module_kind *k = lc_module_kind_of(m);
  if (k->forward != pool_forward) return false;
  const pool_state *s = lc_module_state(m);
  if (opts) *opts = s->o;
  if (out_size) out_size[0] = s->out_size[0], out_size[1] = s->out_size[1];
  if (return_indices) *return_indices = s->return_indices;
  return true;
}
