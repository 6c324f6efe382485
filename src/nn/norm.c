/* nn/norm.c - the module kinds of the norm family: BatchNorm1d, BatchNorm2d, LayerNorm,
 * GroupNorm and InstanceNorm2d (lucid_norm.h). Forwards check the input against the module's
 * configuration (messages without a path: lc_module_forward adds it), then call the tensor
 * functions of src/ops/norm.c. Parameters and buffers are looked up by name on every call,
 * since load_state_dict / to(dtype) may replace them. */
#include "lucid_norm.h"

#include "kind_helpers.h"

#include "../core/core.h"
#include "../ops/norm.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static lc_tensor *param(const lc_module *m, const char *name) {
  int64_t i = lc_module_find_parameter(m, name);
  return i >= 0 ? lc_module_own_parameter(m, i) : NULL;
}
static lc_tensor *buffer(const lc_module *m, const char *name) {
  int64_t i = lc_module_find_buffer(m, name);
  return i >= 0 ? lc_module_own_buffer(m, i) : NULL;
}

/* A new float32 tensor of the given shape filled with v, registered as a parameter (requires
 * grad) or a buffer. */
static lc_status add_filled(lc_module *m, const char *name, bool is_param, int nd,
                            const int64_t *shape, double v) {
  lc_tensor *t;
  lc_status st = lc_full(nd, shape, v, LC_FLOAT32, &t);
  if (st) return st;
  if (is_param) {
    st = lc_set_requires_grad(t, true);
    if (!st) st = lc_module_register_parameter(m, name, t);
  } else {
    st = lc_module_register_buffer(m, name, t);
  }
  lc_release(t);
  return st;
}

/* Refills a parameter / buffer with v in place (no grad), if the module has it. */
static lc_status refill(lc_tensor *t, double v) {
  if (!t) return LC_OK;
  bool prev = lc_set_grad_enabled(false);
  lc_status st = lc_fill_(t, v);
  lc_set_grad_enabled(prev);
  if (!st) lc_bump_version(t);
  return st;
}

static lc_status shape_error(const lc_tensor *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* "<what>: input shape {..}" */
static lc_status shape_error(const lc_tensor *x, const char *fmt, ...) {
  char what[256], b[128];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return lc_set_error(LC_ESHAPE, "%s: input shape %s", what,
                      lc_shape_str(lc_ndim(x), lc_shape(x), b, sizeof b));
}

/* ---------------------------------------------------------------- batch / instance norm */

typedef struct bn_state {
  int64_t C;
  double eps, momentum; /* momentum < 0: cumulative moving average */
  bool affine, track;
  int kind; /* 1, 2: BatchNorm1d / 2d; 0: InstanceNorm2d */
} bn_state;

static lc_status bn_extra(const lc_module *m, char **out) {
  const bn_state *s = lc_module_state(m);
  char e[40], mo[40], buf[256];
  if (s->momentum < 0)
    snprintf(mo, sizeof mo, "false");
  else
    num_str(s->momentum, true, mo, sizeof mo);
  snprintf(buf, sizeof buf, "%lld, eps=%s, momentum=%s, affine=%s, track_running_stats=%s",
           (long long)s->C, num_str(s->eps, true, e, sizeof e), mo, s->affine ? "true" : "false",
           s->track ? "true" : "false");
  *out = lc_nn_strdup(buf);
  return *out ? LC_OK : nn_oom();
}

static bool bn_attr(const lc_module *m, const char *name, lc_attr *out) {
  const bn_state *s = lc_module_state(m);
  if (!strcmp(name, "num_features"))
    *out = (lc_attr){.type = LC_ATTR_INT, .i = s->C};
  else if (!strcmp(name, "eps"))
    *out = (lc_attr){.type = LC_ATTR_FLOAT, .f = s->eps};
  else if (!strcmp(name, "momentum") && s->momentum >= 0)
    *out = (lc_attr){.type = LC_ATTR_FLOAT, .f = s->momentum};
  else if (!strcmp(name, "affine"))
    *out = (lc_attr){.type = LC_ATTR_BOOL, .b = s->affine};
  else if (!strcmp(name, "track_running_stats"))
    *out = (lc_attr){.type = LC_ATTR_BOOL, .b = s->track};
  else
    return false;
  return true;
}

/* PyTorch's reset_parameters: running stats back to (0, 1, 0), weight 1, bias 0. */
static lc_status bn_reset(lc_module *m) {
  lc_status st = refill(buffer(m, "running_mean"), 0);
  if (!st) st = refill(buffer(m, "running_var"), 1);
  if (!st) st = refill(buffer(m, "num_batches_tracked"), 0);
  if (!st) st = refill(param(m, "weight"), 1);
  if (!st) st = refill(param(m, "bias"), 0);
  return st;
}

static lc_status bn_run(lc_module *m, const lc_tensor *x, bool relu, lc_tensor **out) {
  const bn_state *s = lc_module_state(m);
  int nd = lc_ndim(x);
  if (s->kind == 1 && nd != 2 && nd != 3)
    return shape_error(x, "expected a 2-D {N, C} or 3-D {N, C, L} input, got %d-D", nd);
  if (s->kind == 2 && nd != 4)
    return shape_error(x, "expected a 4-D {N, C, H, W} input, got %d-D", nd);
  if (lc_shape(x)[1] != s->C)
    return shape_error(x, "expected input with %lld channels, got %lld", (long long)s->C,
                       (long long)lc_shape(x)[1]);
  bool training = lc_module_is_training(m);
  if (training && lc_numel(x) / (s->C > 0 ? s->C : 1) == 1)
    return shape_error(x, "expected more than 1 value per channel when training, got 1");
  lc_tensor *rm = buffer(m, "running_mean"), *rv = buffer(m, "running_var");
  lc_tensor *nbt = buffer(m, "num_batches_tracked");
  if (!s->track || !rm || !rv) rm = rv = NULL;
  double factor = s->momentum < 0 ? 0.0 : s->momentum;
  /* num_batches_tracked counts the batches that updated the running stats: it moves only once
   * lc_batch_norm has succeeded (the cumulative average's factor uses the count to be) */
  int64_t *k = NULL;
  if (training && rm && nbt && lc_dtype_of(nbt) == LC_INT64 && lc_numel(nbt) == 1) {
    k = lc_data(nbt);
    if (s->momentum < 0) factor = 1.0 / (double)(*k + 1);
  }
  lc_batch_norm_opts o = {param(m, "weight"), param(m, "bias"), rm,     rv,
                          training || !rm,    factor,           s->eps, relu};
  lc_status st = lc_batch_norm(x, &o, out);
  if (st) return strip_fn(st, "batch_norm");
  if (k) {
    *k += 1;
    lc_bump_version(nbt);
  }
  return LC_OK;
}

static lc_status bn_forward(lc_module *m, const lc_tensor *x, lc_tensor **out) {
  return bn_run(m, x, false, out);
}

/* BatchNorm followed by ReLU in a container: one pass (lc_module_kind.forward_relu). */
static lc_status bn_forward_relu(lc_module *m, const lc_tensor *x, lc_tensor **out) {
  return bn_run(m, x, true, out);
}

static lc_status in_forward(lc_module *m, const lc_tensor *x, lc_tensor **out) {
  const bn_state *s = lc_module_state(m);
  int nd = lc_ndim(x);
  if (nd != 3 && nd != 4)
    return shape_error(
        x, "expected a 4-D {N, C, H, W} or 3-D (unbatched) {C, H, W} input, got %d-D", nd);
  int64_t C = lc_shape(x)[nd - 3];
  if (C != s->C)
    return shape_error(x, "expected input with %lld channels, got %lld", (long long)s->C,
                       (long long)C);
  lc_tensor *xb = NULL, *y = NULL;
  lc_status st = LC_OK;
  if (nd == 3) {
    st = lc_unsqueeze(x, 0, &xb);
    if (st) return st;
  }
  const lc_tensor *in = xb ? xb : x;
  bool training = lc_module_is_training(m);
  int64_t S = lc_shape(in)[2] * lc_shape(in)[3];
  lc_tensor *rm = s->track ? buffer(m, "running_mean") : NULL;
  lc_tensor *rv = s->track ? buffer(m, "running_var") : NULL;
  if (!rm || !rv) rm = rv = NULL;
  bool use_input = training || !rm;
  if (use_input && S == 1) {
    lc_release(xb);
    return shape_error(x, "expected more than 1 spatial element when training, got 1");
  }
  lc_instance_norm_opts o = {param(m, "weight"), param(m, "bias"), rm,    rv,
                             use_input,          s->momentum,      s->eps};
  st = lc_instance_norm(in, &o, &y);
  if (!st && xb) {
    lc_tensor *z = NULL;
    st = lc_squeeze_dim(y, 0, &z);
    lc_release(y);
    y = z;
  }
  lc_release(xb);
  if (st) return strip_fn(st, "instance_norm");
  *out = y;
  return LC_OK;
}

const lc_module_kind lc_kind_batch_norm1d = {.name = "BatchNorm1d",
                                             .forward = bn_forward,
                                             .extra_repr = bn_extra,
                                             .reset_parameters = bn_reset,
                                             .attr = bn_attr,
                                             .destroy = free_state,
                                             .forward_relu = bn_forward_relu};
const lc_module_kind lc_kind_batch_norm2d = {.name = "BatchNorm2d",
                                             .forward = bn_forward,
                                             .extra_repr = bn_extra,
                                             .reset_parameters = bn_reset,
                                             .attr = bn_attr,
                                             .destroy = free_state,
                                             .forward_relu = bn_forward_relu};
const lc_module_kind lc_kind_instance_norm2d = {.name = "InstanceNorm2d",
                                                .forward = in_forward,
                                                .extra_repr = bn_extra,
                                                .reset_parameters = bn_reset,
                                                .attr = bn_attr,
                                                .destroy = free_state};

static lc_status make_bn(const lc_module_kind *kind, int k, int64_t C, double eps, double momentum,
                         bool affine, bool track, lc_module **out) {
  if (!out) return lc_set_error(LC_EARG, "%s: NULL output argument", kind->name);
  if (C < 1)
    return lc_set_error(LC_EARG, "%s: num_features must be >= 1, got %lld", kind->name,
                        (long long)C);
  if (!(eps >= 0)) return lc_set_error(LC_EARG, "%s: eps must be >= 0, got %g", kind->name, eps);
  if (momentum != momentum || momentum > 1 || (k == 0 && momentum < 0))
    return lc_set_error(LC_EARG, "%s: momentum must be in [0, 1]%s, got %g", kind->name,
                        k ? " (or negative for a cumulative average)" : "", momentum);
  bn_state *s = malloc(sizeof *s);
  if (!s) return nn_oom();
  *s = (bn_state){C, eps, momentum < 0 ? -1.0 : momentum, affine, track, k};
  lc_module *m;
  lc_status st = lc_module_new(kind, s, NULL, &m);
  if (st) return st;
  if (affine) {
    st = add_filled(m, "weight", true, 1, &C, 1);
    if (!st) st = add_filled(m, "bias", true, 1, &C, 0);
  }
  if (!st && track) {
    st = add_filled(m, "running_mean", false, 1, &C, 0);
    if (!st) st = add_filled(m, "running_var", false, 1, &C, 1);
    lc_tensor *nbt = NULL;
    if (!st) st = lc_scalar(0, LC_INT64, &nbt);
    if (!st) st = lc_module_register_buffer(m, "num_batches_tracked", nbt);
    lc_release(nbt);
  }
  if (st) {
    lc_module_release(m);
    return st;
  }
  *out = m;
  return LC_OK;
}

lc_status lc_nn_batch_norm1d(int64_t num_features, double eps, double momentum, bool affine,
                             bool track_running_stats, lc_module **out) {
  return make_bn(&lc_kind_batch_norm1d, 1, num_features, eps, momentum, affine, track_running_stats,
                 out);
}
lc_status lc_nn_batch_norm2d(int64_t num_features, double eps, double momentum, bool affine,
                             bool track_running_stats, lc_module **out) {
  return make_bn(&lc_kind_batch_norm2d, 2, num_features, eps, momentum, affine, track_running_stats,
                 out);
}
lc_status lc_nn_instance_norm2d(int64_t num_features, double eps, double momentum, bool affine,
                                bool track_running_stats, lc_module **out) {
  return make_bn(&lc_kind_instance_norm2d, 0, num_features, eps, momentum, affine,
                 track_running_stats, out);
}

/* ---------------------------------------------------------------- LayerNorm */

typedef struct ln_state {
  int nshape;
  int64_t shape[LC_MAX_DIMS];
  double eps;
  bool affine;
} ln_state;

static lc_status ln_forward(lc_module *m, const lc_tensor *x, lc_tensor **out) {
  const ln_state *s = lc_module_state(m);
  int nd = lc_ndim(x);
  if (nd < s->nshape ||
      memcmp(lc_shape(x) + nd - s->nshape, s->shape, (size_t)s->nshape * sizeof s->shape[0])) {
    char b[128];
    return shape_error(x, "expected input with trailing dims %s (normalized_shape)",
                       lc_shape_str(s->nshape, s->shape, b, sizeof b));
  }
  lc_status st =
      lc_layer_norm(x, s->nshape, s->shape, param(m, "weight"), param(m, "bias"), s->eps, out);
  return st ? strip_fn(st, "layer_norm") : LC_OK;
}

static lc_status ln_extra(const lc_module *m, char **out) {
  const ln_state *s = lc_module_state(m);
  char b[256], e[40], buf[400];
  lc_nn_tuple_str(s->nshape, s->shape, b, sizeof b); /* "(4,)", "(3, 4)": as Conv2d's sizes */
  snprintf(buf, sizeof buf, "%s, eps=%s, elementwise_affine=%s", b,
           num_str(s->eps, true, e, sizeof e), s->affine ? "true" : "false");
  *out = lc_nn_strdup(buf);
  return *out ? LC_OK : nn_oom();
}

static bool ln_attr(const lc_module *m, const char *name, lc_attr *out) {
  const ln_state *s = lc_module_state(m);
  if (!strcmp(name, "eps"))
    *out = (lc_attr){.type = LC_ATTR_FLOAT, .f = s->eps};
  else if (!strcmp(name, "elementwise_affine"))
    *out = (lc_attr){.type = LC_ATTR_BOOL, .b = s->affine};
  else if (!strcmp(name, "normalized_ndim"))
    *out = (lc_attr){.type = LC_ATTR_INT, .i = s->nshape};
  else
    return false;
  return true;
}

static lc_status affine_reset(lc_module *m) {
  lc_status st = refill(param(m, "weight"), 1);
  if (!st) st = refill(param(m, "bias"), 0);
  return st;
}

const lc_module_kind lc_kind_layer_norm = {.name = "LayerNorm",
                                           .forward = ln_forward,
                                           .extra_repr = ln_extra,
                                           .reset_parameters = affine_reset,
                                           .attr = ln_attr,
                                           .destroy = free_state};

lc_status lc_nn_layer_norm(int nshape, const int64_t *normalized_shape, double eps,
                           bool elementwise_affine, lc_module **out) {
  if (!out || (nshape > 0 && !normalized_shape))
    return lc_set_error(LC_EARG, "LayerNorm: NULL argument");
  lc_status cst = lc_norm_check_shape("LayerNorm", nshape, normalized_shape);
  if (cst) return cst;
  if (!(eps >= 0)) return lc_set_error(LC_EARG, "LayerNorm: eps must be >= 0, got %g", eps);
  ln_state *s = calloc(1, sizeof *s);
  if (!s) return nn_oom();
  s->nshape = nshape;
  memcpy(s->shape, normalized_shape, (size_t)nshape * sizeof *normalized_shape);
  s->eps = eps;
  s->affine = elementwise_affine;
  lc_module *m;
  lc_status st = lc_module_new(&lc_kind_layer_norm, s, NULL, &m);
  if (st) return st;
  if (elementwise_affine) {
    st = add_filled(m, "weight", true, nshape, normalized_shape, 1);
    if (!st) st = add_filled(m, "bias", true, nshape, normalized_shape, 0);
  }
  if (st) {
    lc_module_release(m);
    return st;
  }
  *out = m;
  return LC_OK;
}

/* ---------------------------------------------------------------- GroupNorm */

typedef struct gn_state {
  int64_t G, C;
  double eps;
  bool affine;
} gn_state;

static lc_status gn_forward(lc_module *m, const lc_tensor *x, lc_tensor **out) {
  const gn_state *s = lc_module_state(m);
  int nd = lc_ndim(x);
  if (nd < 2)
    return shape_error(x, "expected an input {N, C, ...} with at least 2 dims, got %d", nd);
  if (lc_shape(x)[1] != s->C)
    return shape_error(x, "expected input with %lld channels, got %lld", (long long)s->C,
                       (long long)lc_shape(x)[1]);
  lc_status st = lc_group_norm(x, s->G, param(m, "weight"), param(m, "bias"), s->eps, out);
  return st ? strip_fn(st, "group_norm") : LC_OK;
}

static lc_status gn_extra(const lc_module *m, char **out) {
  const gn_state *s = lc_module_state(m);
  char e[40], buf[256];
  snprintf(buf, sizeof buf, "%lld, %lld, eps=%s, affine=%s", (long long)s->G, (long long)s->C,
           num_str(s->eps, true, e, sizeof e), s->affine ? "true" : "false");
  *out = lc_nn_strdup(buf);
  return *out ? LC_OK : nn_oom();
}

static bool gn_attr(const lc_module *m, const char *name, lc_attr *out) {
  const gn_state *s = lc_module_state(m);
  if (!strcmp(name, "num_groups"))
    *out = (lc_attr){.type = LC_ATTR_INT, .i = s->G};
  else if (!strcmp(name, "num_channels"))
    *out = (lc_attr){.type = LC_ATTR_INT, .i = s->C};
  else if (!strcmp(name, "eps"))
    *out = (lc_attr){.type = LC_ATTR_FLOAT, .f = s->eps};
  else if (!strcmp(name, "affine"))
    *out = (lc_attr){.type = LC_ATTR_BOOL, .b = s->affine};
  else
    return false;
  return true;
}

const lc_module_kind lc_kind_group_norm = {.name = "GroupNorm",
                                           .forward = gn_forward,
                                           .extra_repr = gn_extra,
                                           .reset_parameters = affine_reset,
                                           .attr = gn_attr,
                                           .destroy = free_state};

lc_status lc_nn_group_norm(int64_t num_groups, int64_t num_channels, double eps, bool affine,
                           lc_module **out) {
  if (!out) return lc_set_error(LC_EARG, "GroupNorm: NULL output argument");
  if (num_groups < 1 || num_channels < 1)
    return lc_set_error(LC_EARG,
                        "GroupNorm: num_groups and num_channels must be >= 1, got %lld "
                        "and %lld",
                        (long long)num_groups, (long long)num_channels);
  if (num_channels % num_groups)
    return lc_set_error(LC_EARG,
                        "GroupNorm: num_channels (%lld) must be divisible by num_groups "
                        "(%lld)",
                        (long long)num_channels, (long long)num_groups);
  if (!(eps >= 0)) return lc_set_error(LC_EARG, "GroupNorm: eps must be >= 0, got %g", eps);
  gn_state *s = malloc(sizeof *s);
  if (!s) return nn_oom();
  *s = (gn_state){num_groups, num_channels, eps, affine};
  lc_module *m;
  lc_status st = lc_module_new(&lc_kind_group_norm, s, NULL, &m);
  if (st) return st;
  if (affine) {
    st = add_filled(m, "weight", true, 1, &num_channels, 1);
    if (!st) st = add_filled(m, "bias", true, 1, &num_channels, 0);
  }
  if (st) {
    lc_module_release(m);
    return st;
  }
  *out = m;
  return LC_OK;
}
