/* layers.c - the built-in module kinds: Linear, Identity, Flatten, Unflatten, activations, and the
 * containers Sequential, ModuleList, ModuleDict. */
#include "kind_helpers.h"
#include "nn.h"

#include "../core/core.h"
#include "../ops/shape.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *lc_nn_tuple_str(int n, const int64_t *v, char *buf, size_t cap) {
  size_t k = (size_t)snprintf(buf, cap, "(");
  for (int i = 0; i < n && k < cap; i++)
    k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? ", " : "", (long long)v[i]);
  if (k < cap) snprintf(buf + k, cap - k, "%s)", n == 1 ? "," : "");
  return buf;
}

static char *nn_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *nn_printf(const char *fmt, ...) {
  char tmp[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  return lc_nn_strdup(tmp);
}

/* ---------------------------------------------------------------- Linear */

typedef struct linear_state {
  int64_t in, out;
  bool bias;
} linear_state;

lc_status lc_nn_uniform_params(lc_module *m, double bound) {
  bool prev = lc_set_grad_enabled(false);
  lc_status st = LC_OK;
  for (int64_t i = 0; i < lc_module_num_own_parameters(m) && !st; i++) {
    lc_tensor *p = lc_module_own_parameter(m, i);
    st = bound > 0 ? lc_uniform_(p, -bound, bound) : lc_zero_(p);
    if (!st) lc_bump_version(p);
  }
  lc_set_grad_enabled(prev);
  return st;
}

static lc_status linear_reset(lc_module *m) {
  const linear_state *s = lc_module_state(m);
  /* kaiming_uniform(a = sqrt(5)): gain sqrt(2 / (1 + 5)) times sqrt(3 / fan_in) is
   * 1 / sqrt(fan_in); PyTorch uses the same bound for the bias */
  double bound = s->in > 0 ? 1.0 / sqrt((double)s->in) : 0.0;
  return lc_nn_uniform_params(m, bound);
}

static lc_status linear_forward(lc_module *m, const lc_tensor *x, lc_tensor **out) {
  const linear_state *s = lc_module_state(m);
  int nd = lc_ndim(x);
  if (nd < 1 || lc_shape(x)[nd - 1] != s->in) {
    char buf[256];
    lc_shape_str(nd, lc_shape(x), buf, sizeof buf);
    if (nd < 1)
      return lc_set_error(LC_ESHAPE,
                          "expected input with %lld features (last dimension), got a 0-dim "
                          "tensor: input shape %s",
                          (long long)s->in, buf);
    return lc_set_error(LC_ESHAPE,
                        "expected input with %lld features (last dimension), got %lld: input "
                        "shape %s",
                        (long long)s->in, (long long)lc_shape(x)[nd - 1], buf);
  }
  lc_tensor *w = lc_module_own_parameter(m, lc_module_find_parameter(m, "weight"));
  int64_t bi = lc_module_find_parameter(m, "bias");
  return lc_linear(x, w, bi >= 0 ? lc_module_own_parameter(m, bi) : NULL, out);
}

static lc_status linear_extra(const lc_module *m, char **out) {
  const linear_state *s = lc_module_state(m);
  *out = nn_printf("in_features=%lld, out_features=%lld, bias=%s", (long long)s->in,
                   (long long)s->out, s->bias ? "true" : "false");
  return *out ? LC_OK : nn_oom();
}

static bool linear_attr(const lc_module *m, const char *name, lc_attr *out) {
  const linear_state *s = lc_module_state(m);
  if (!strcmp(name, "in_features"))
    *out = (lc_attr){.type = LC_ATTR_INT, .i = s->in};
  else if (!strcmp(name, "out_features"))
    *out = (lc_attr){.type = LC_ATTR_INT, .i = s->out};
  else
    return false;
  return true;
}

const lc_module_kind lc_kind_linear = {
    .name = "Linear",
    .forward = linear_forward,
    .extra_repr = linear_extra,
    .reset_parameters = linear_reset,
    .attr = linear_attr,
    .destroy = free_state,
};

lc_status lc_nn_add_param(lc_module *m, const char *name, int ndim, const int64_t *shape) {
  lc_tensor *t;
  lc_status st = lc_zeros(ndim, shape, LC_FLOAT32, &t);
  if (st) return st;
  st = lc_set_requires_grad(t, true);
  if (!st) st = lc_module_register_parameter(m, name, t);
  lc_release(t);
  return st;
}

lc_status lc_nn_linear(int64_t in_features, int64_t out_features, bool bias, lc_module **out) {
  if (in_features < 0 || out_features < 0)
    return lc_set_error(LC_EARG,
                        "Linear: in_features and out_features must be >= 0, got %lld and %lld",
                        (long long)in_features, (long long)out_features);
  linear_state *s = malloc(sizeof *s);
  if (!s) return nn_oom();
  *s = (linear_state){in_features, out_features, bias};
  lc_module *m;
  lc_status st = lc_module_new(&lc_kind_linear, s, NULL, &m);
  if (st) return st;
  int64_t wshape[2] = {out_features, in_features};
  st = lc_nn_add_param(m, "weight", 2, wshape);
  if (!st && bias) st = lc_nn_add_param(m, "bias", 1, &out_features);
  if (!st) st = linear_reset(m);
  if (st) {
    lc_module_release(m);
    return st;
  }
  *out = m;
  return LC_OK;
}

/* ---------------------------------------------------------------- stateless layers */

static lc_status identity_forward(lc_module *m, const lc_tensor *x, lc_tensor **out) {
  (void)m;
  *out = lc_retain((lc_tensor *)x);
  return LC_OK;
}

const lc_module_kind lc_kind_identity = {.name = "Identity", .forward = identity_forward};

typedef struct flatten_state {
  int start, end;
} flatten_state;

static lc_status flatten_forward(lc_module *m, const lc_tensor *x, lc_tensor **out) {
  const flatten_state *s = lc_module_state(m);
  return lc_flatten(x, s->start, s->end, out);
}

static lc_status flatten_extra(const lc_module *m, char **out) {
  /* marked positions: 0-based in C (as PyTorch prints them), 1-based in Lua */
  const flatten_state *s = lc_module_state(m);
  *out = nn_printf("start_dim=" LC_POS_D ", end_dim=" LC_POS_D, s->start, s->end);
  return *out ? LC_OK : nn_oom();
}

static bool flatten_attr(const lc_module *m, const char *name, lc_attr *out) {
  const flatten_state *s = lc_module_state(m);
  if (!strcmp(name, "start_dim"))
    *out = (lc_attr){.type = LC_ATTR_DIM, .i = s->start};
  else if (!strcmp(name, "end_dim"))
    *out = (lc_attr){.type = LC_ATTR_DIM, .i = s->end};
  else
    return false;
  return true;
}

const lc_module_kind lc_kind_flatten = {.name = "Flatten",
                                        .forward = flatten_forward,
                                        .extra_repr = flatten_extra,
                                        .attr = flatten_attr,
                                        .destroy = free_state};

lc_status lc_nn_flatten(int start_dim, int end_dim, lc_module **out) {
  flatten_state *s = malloc(sizeof *s);
  if (!s) return nn_oom();
  *s = (flatten_state){start_dim, end_dim};
  return lc_module_new(&lc_kind_flatten, s, NULL, out);
}

typedef struct unflatten_state {
  int dim, n;
  int64_t sizes[LC_MAX_DIMS];
} unflatten_state;

static lc_status unflatten_forward(lc_module *m, const lc_tensor *x, lc_tensor **out) {
  const unflatten_state *s = lc_module_state(m);
  lc_status st = lc_unflatten_as("unflattened_size", x, s->dim, s->n, s->sizes, out);
  return st ? strip_fn(st, "unflatten") : st; /* the rules and messages are the op's */
}

static lc_status unflatten_extra(const lc_module *m, char **out) {
  const unflatten_state *s = lc_module_state(m);
  char b[256];
  return set_repr(out, "dim=" LC_POS_D ", unflattened_size=%s", s->dim,
                  lc_nn_tuple_str(s->n, s->sizes, b, sizeof b));
}

static bool unflatten_attr(const lc_module *m, const char *name, lc_attr *out) {
  const unflatten_state *s = lc_module_state(m);
  if (strcmp(name, "dim") != 0) return false;
  *out = (lc_attr){.type = LC_ATTR_DIM, .i = s->dim};
  return true;
}

const lc_module_kind lc_kind_unflatten = {.name = "Unflatten",
                                          .forward = unflatten_forward,
                                          .extra_repr = unflatten_extra,
                                          .attr = unflatten_attr,
                                          .destroy = free_state};

lc_status lc_nn_unflatten(int dim, int nsizes, const int64_t *sizes, lc_module **out) {
  if (!out) return lc_set_error(LC_EARG, "Unflatten: out is NULL");
  lc_status st = lc_unflatten_check_sizes("Unflatten", "unflattened_size", nsizes, sizes);
  if (st) return st;
  unflatten_state *s = malloc(sizeof *s);
  if (!s) return nn_oom();
  s->dim = dim;
  s->n = nsizes;
  memcpy(s->sizes, sizes, (size_t)nsizes * sizeof *sizes);
  return lc_module_new(&lc_kind_unflatten, s, NULL, out);
}

#define ACTIVATION(fn, kind, Name, OP)                                                             \
  static lc_status fn##_forward(lc_module *m, const lc_tensor *x, lc_tensor **out) {               \
    (void)m;                                                                                       \
    return lc_unary(OP, x, out);                                                                   \
  }                                                                                                \
  const lc_module_kind kind = {.name = Name, .forward = fn##_forward};                             \
  lc_status lc_nn_##fn(lc_module **out) { return lc_module_new(&kind, NULL, NULL, out); }

ACTIVATION(relu, lc_kind_relu, "ReLU", LC_RELU)
ACTIVATION(tanh, lc_kind_tanh, "Tanh", LC_TANH)
ACTIVATION(sigmoid, lc_kind_sigmoid, "Sigmoid", LC_SIGMOID)

lc_status lc_nn_identity(lc_module **out) {
  return lc_module_new(&lc_kind_identity, NULL, NULL, out);
}

/* ---------------------------------------------------------------- containers */

/* Sequential and a called ModuleList: each child's output feeds the next. A child whose kind
 * can fuse a ReLU (BatchNorm) followed by a built-in ReLU runs as one fused pass. */
static lc_status chain_forward(lc_module *m, const lc_tensor *x, lc_tensor **out) {
  lc_tensor *cur = lc_retain((lc_tensor *)x);
  int64_t n = lc_module_num_children(m);
  for (int64_t i = 0; i < n; i++) {
    lc_tensor *next;
    lc_module *c = lc_module_child(m, i);
    bool fuse = i + 1 < n && lc_module_kind_of(c)->forward_relu &&
                lc_module_kind_of(lc_module_child(m, i + 1)) == &lc_kind_relu &&
                !lc_module_has_hooks(c) && !lc_module_has_hooks(lc_module_child(m, i + 1));
    lc_status st = fuse ? lc_nn_forward_child_relu(m, i++, cur, &next)
                        : lc_module_forward_child(m, i, cur, &next);
    lc_release(cur);
    if (st) return st;
    cur = next;
  }
  *out = cur;
  return LC_OK;
}

const lc_module_kind lc_kind_sequential = {
    .name = "Sequential", .flags = LC_KIND_INDEXED | LC_KIND_CONTAINER, .forward = chain_forward};
const lc_module_kind lc_kind_module_list = {
    .name = "ModuleList", .flags = LC_KIND_INDEXED | LC_KIND_CONTAINER, .forward = chain_forward};
const lc_module_kind lc_kind_module_dict = {.name = "ModuleDict",
                                            .flags = LC_KIND_CONTAINER | LC_KIND_NOT_CALLABLE};

static lc_status make_container(const lc_module_kind *kind, int64_t n, lc_module *const *mods,
                                const char *const *names, lc_module **out) {
  if (n < 0) return lc_set_error(LC_EARG, "%s: n must be >= 0, got %lld", kind->name, (long long)n);
  lc_module *m;
  lc_status st = lc_module_new(kind, NULL, NULL, &m);
  if (st) return st;
  for (int64_t i = 0; i < n && !st; i++) {
    st = lc_module_add_module(m, names ? names[i] : NULL, mods[i]);
  }
  if (st) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", lc_last_error_marked());
    lc_set_error(st, "%s: %s", kind->name, msg);
    lc_module_release(m);
    return st;
  }
  *out = m;
  return LC_OK;
}

lc_status lc_nn_sequential(int64_t n, lc_module *const *mods, const char *const *names,
                           lc_module **out) {
  return make_container(&lc_kind_sequential, n, mods, names, out);
}
lc_status lc_nn_module_list(int64_t n, lc_module *const *mods, lc_module **out) {
  return make_container(&lc_kind_module_list, n, mods, NULL, out);
}
lc_status lc_nn_module_dict(int64_t n, lc_module *const *mods, const char *const *names,
                            lc_module **out) {
  if (!names && n > 0) return lc_set_error(LC_EARG, "ModuleDict: every module needs a name");
  return make_container(&lc_kind_module_dict, n, mods, names, out);
}
