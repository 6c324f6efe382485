/* activation.c - module kinds of the activation family: ReLU6, LeakyReLU, ELU, GELU, SiLU, Mish,
 * Softplus, Hardtanh, Softmax, LogSoftmax, Dropout, Embedding, Unflatten. Each forward is one
 * call of the matching tensor function (src/ops/activation.c). */
#include "lucid_activation.h"
#include "nn.h"

#include "../core/core.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static lc_status nn_oom(void) { return lc_set_error(LC_ENOMEM, "nn: out of memory"); }

static lc_status set_repr(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static lc_status set_repr(char **out, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  *out = lc_nn_strdup(tmp);
  return *out ? LC_OK : nn_oom();
}

/* The shortest text that reads back as v ("0.01", "1e-05"); with as_float, an integral value
 * gets ".0" as Python prints floats ("1.0", "-1.0"). */
static const char *num_str(double v, bool as_float, char *buf, size_t cap) {
  /* start with enough digits for the integer part, so 20 prints "20", not "2e+01" */
  int prec = 1;
  if (fabs(v) >= 1 && fabs(v) < 1e16) prec = (int)floor(log10(fabs(v))) + 1;
  for (; prec <= 17; prec++) {
    snprintf(buf, cap, "%.*g", prec, v);
    if (strtod(buf, NULL) == v) break;
  }
  if (as_float && !strpbrk(buf, ".eEni")) strncat(buf, ".0", cap - strlen(buf) - 1);
  return buf;
}

/* Replaces the current message "fn: rest" by "rest": module forward messages carry no function
 * name (the module path is added by lc_module_forward). */
static lc_status strip_fn(lc_status st, const char *fn) {
  const char *m = lc_last_error();
  size_t n = strlen(fn);
  if (strncmp(m, fn, n) == 0 && m[n] == ':' && m[n + 1] == ' ') {
    char msg[768];
    snprintf(msg, sizeof msg, "%s", m + n + 2);
    lc_set_error(st, "%s", msg);
  }
  return st;
}

static void free_state(lc_module *m) { free(lc_module_state(m)); }

/* The shared state of the parameterised kinds. */
typedef struct act_state {
  double a, b; /* negative_slope / alpha / beta, threshold / min_val, max_val / p */
  bool inplace;
  lc_gelu_approx approx;
  int dim;
} act_state;

static lc_status new_kind(const lc_module_kind *kind, act_state init, lc_module **out) {
  if (!out) return lc_set_error(LC_EARG, "%s: out is NULL", kind->name);
  act_state *s = malloc(sizeof *s);
  if (!s) return nn_oom();
  *s = init;
  return lc_module_new(kind, s, NULL, out);
}

static const act_state *st_of(const lc_module *m) { return lc_module_state(m); }

static bool inplace_attr(const lc_module *m, const char *name, lc_attr *out) {
  if (strcmp(name, "inplace") != 0) return false;
  *out = (lc_attr){.type = LC_ATTR_BOOL, .b = st_of(m)->inplace};
  return true;
}

/* "inplace=true" (PyTorch shows it only when set), or "". */
static const char *inplace_str(const lc_module *m, bool first) {
  if (!st_of(m)->inplace) return "";
  return first ? "inplace=true" : ", inplace=true";
}

/* ---------------------------------------------------------------- ReLU6, SiLU, Mish */

#define SIMPLE_KIND(fn, kind, Name, CALL)                                                          \
  static lc_status fn##_forward(lc_module *m, const lc_tensor *x, lc_tensor **out) {               \
    return CALL(x, out);                                                                           \
  }                                                                                                \
  static lc_status fn##_extra(const lc_module *m, char **out) {                                    \
    if (!st_of(m)->inplace) {                                                                      \
      *out = NULL;                                                                                 \
      return LC_OK;                                                                                \
    }                                                                                              \
    return set_repr(out, "%s", inplace_str(m, true));                                              \
  }                                                                                                \
  const lc_module_kind kind = {.name = Name,                                                       \
                               .forward = fn##_forward,                                            \
                               .extra_repr = fn##_extra,                                           \
                               .attr = inplace_attr,                                               \
                               .destroy = free_state};                                             \
  lc_status lc_nn_##fn(bool inplace, lc_module **out) {                                            \
    return new_kind(&kind, (act_state){.inplace = inplace}, out);                                  \
  }

SIMPLE_KIND(relu6, lc_kind_relu6, "ReLU6", lc_relu6)
SIMPLE_KIND(silu, lc_kind_silu, "SiLU", lc_silu)
SIMPLE_KIND(mish, lc_kind_mish, "Mish", lc_mish)

/* ---------------------------------------------------------------- LeakyReLU, ELU */

static lc_status leaky_forward(lc_module *m, const lc_tensor *x, lc_tensor **out) {
  return lc_leaky_relu(x, st_of(m)->a, out);
}
static lc_status leaky_extra(const lc_module *m, char **out) {
  char b[64];
  return set_repr(out, "negative_slope=%s%s", num_str(st_of(m)->a, true, b, sizeof b),
                  inplace_str(m, false));
}
static bool leaky_attr(const lc_module *m, const char *name, lc_attr *out) {
  if (strcmp(name, "negative_slope") == 0) {
    *out = (lc_attr){.type = LC_ATTR_FLOAT, .f = st_of(m)->a};
    return true;
  }
  return inplace_attr(m, name, out);
}
const lc_module_kind lc_kind_leaky_relu = {.name = "LeakyReLU",
                                           .forward = leaky_forward,
                                           .extra_repr = leaky_extra,
                                           .attr = leaky_attr,
                                           .destroy = free_state};
lc_status lc_nn_leaky_relu(double negative_slope, bool inplace, lc_module **out) {
  return new_kind(&lc_kind_leaky_relu, (act_state){.a = negative_slope, .inplace = inplace}, out);
}

static lc_status elu_forward(lc_module *m, const lc_tensor *x, lc_tensor **out) {
  return lc_elu(x, st_of(m)->a, out);
}
static lc_status elu_extra(const lc_module *m, char **out) {
  char b[64];
  return set_repr(out, "alpha=%s%s", num_str(st_of(m)->a, true, b, sizeof b),
                  inplace_str(m, false));
}
static bool elu_attr(const lc_module *m, const char *name, lc_attr *out) {
  if (strcmp(name, "alpha") == 0) {
    *out = (lc_attr){.type = LC_ATTR_FLOAT, .f = st_of(m)->a};
    return true;
  }
  return inplace_attr(m, name, out);
}
const lc_module_kind lc_kind_elu = {.name = "ELU",
                                    .forward = elu_forward,
                                    .extra_repr = elu_extra,
                                    .attr = elu_attr,
                                    .destroy = free_state};
lc_status lc_nn_elu(double alpha, bool inplace, lc_module **out) {
  return new_kind(&lc_kind_elu, (act_state){.a = alpha, .inplace = inplace}, out);
}

/* ---------------------------------------------------------------- GELU */

static lc_status gelu_forward(lc_module *m, const lc_tensor *x, lc_tensor **out) {
  return lc_gelu(x, st_of(m)->approx, out);
}
static lc_status gelu_extra(const lc_module *m, char **out) {
  return set_repr(out, "approximate='%s'", st_of(m)->approx == LC_GELU_TANH ? "tanh" : "none");
}
const lc_module_kind lc_kind_gelu = {
    .name = "GELU", .forward = gelu_forward, .extra_repr = gelu_extra, .destroy = free_state};
lc_status lc_nn_gelu(lc_gelu_approx approximate, lc_module **out) {
  if (approximate != LC_GELU_NONE && approximate != LC_GELU_TANH)
    return lc_set_error(LC_EARG, "GELU: approximate must be LC_GELU_NONE or LC_GELU_TANH, got %d",
                        (int)approximate);
  return new_kind(&lc_kind_gelu, (act_state){.approx = approximate}, out);
}

/* ---------------------------------------------------------------- Softplus, Hardtanh */

static lc_status softplus_forward(lc_module *m, const lc_tensor *x, lc_tensor **out) {
  return lc_softplus(x, st_of(m)->a, st_of(m)->b, out);
}
static lc_status softplus_extra(const lc_module *m, char **out) {
  /* PyTorch 1.13's defaults are integers: "Softplus(beta=1, threshold=20)" */
  char b1[64], b2[64];
  return set_repr(out, "beta=%s, threshold=%s", num_str(st_of(m)->a, false, b1, sizeof b1),
                  num_str(st_of(m)->b, false, b2, sizeof b2));
}
static bool softplus_attr(const lc_module *m, const char *name, lc_attr *out) {
  if (strcmp(name, "beta") == 0)
    *out = (lc_attr){.type = LC_ATTR_FLOAT, .f = st_of(m)->a};
  else if (strcmp(name, "threshold") == 0)
    *out = (lc_attr){.type = LC_ATTR_FLOAT, .f = st_of(m)->b};
  else
    return false;
  return true;
}
const lc_module_kind lc_kind_softplus = {.name = "Softplus",
                                         .forward = softplus_forward,
                                         .extra_repr = softplus_extra,
                                         .attr = softplus_attr,
                                         .destroy = free_state};
lc_status lc_nn_softplus(double beta, double threshold, lc_module **out) {
  if (beta == 0 || beta != beta)
    return lc_set_error(LC_EARG, "Softplus: beta must be a non-zero number, got %g", beta);
  return new_kind(&lc_kind_softplus, (act_state){.a = beta, .b = threshold}, out);
}

static lc_status hardtanh_forward(lc_module *m, const lc_tensor *x, lc_tensor **out) {
  return lc_hardtanh(x, st_of(m)->a, st_of(m)->b, out);
}
static lc_status hardtanh_extra(const lc_module *m, char **out) {
  char b1[64], b2[64];
  return set_repr(out, "min_val=%s, max_val=%s%s", num_str(st_of(m)->a, true, b1, sizeof b1),
                  num_str(st_of(m)->b, true, b2, sizeof b2), inplace_str(m, false));
}
static bool hardtanh_attr(const lc_module *m, const char *name, lc_attr *out) {
  if (strcmp(name, "min_val") == 0)
    *out = (lc_attr){.type = LC_ATTR_FLOAT, .f = st_of(m)->a};
  else if (strcmp(name, "max_val") == 0)
    *out = (lc_attr){.type = LC_ATTR_FLOAT, .f = st_of(m)->b};
  else
    return inplace_attr(m, name, out);
  return true;
}
const lc_module_kind lc_kind_hardtanh = {.name = "Hardtanh",
                                         .forward = hardtanh_forward,
                                         .extra_repr = hardtanh_extra,
                                         .attr = hardtanh_attr,
                                         .destroy = free_state};
lc_status lc_nn_hardtanh(double min_val, double max_val, bool inplace, lc_module **out) {
  if (!(max_val >= min_val))
    return lc_set_error(LC_EARG,
                        "Hardtanh: max_val must be greater than or equal to min_val, got "
                        "min_val = %g, max_val = %g",
                        min_val, max_val);
  return new_kind(&lc_kind_hardtanh, (act_state){.a = min_val, .b = max_val, .inplace = inplace},
                  out);
}

/* ---------------------------------------------------------------- Softmax, LogSoftmax */

/* Dims print 1-based (as Lua users write them; negative ones as they are), like Flatten. */
static int dim1(int d) { return d >= 0 ? d + 1 : d; }

static lc_status dim_fits(int d, const lc_tensor *x) {
  int nd = lc_ndim(x), n = nd > 0 ? nd : 1;
  if (d >= n || d < -n) {
    char buf[256];
    return lc_set_error(LC_EINDEX, "dim=%d is out of range for an input with %d dims: input "
                                   "shape %s",
                        dim1(d), nd, lc_shape_str(nd, lc_shape(x), buf, sizeof buf));
  }
  return LC_OK;
}

static lc_status softmax_forward(lc_module *m, const lc_tensor *x, lc_tensor **out) {
  lc_status st = dim_fits(st_of(m)->dim, x);
  if (st) return st;
  return strip_fn(lc_softmax(x, st_of(m)->dim, out), "softmax");
}
static lc_status log_softmax_forward(lc_module *m, const lc_tensor *x, lc_tensor **out) {
  lc_status st = dim_fits(st_of(m)->dim, x);
  if (st) return st;
  return strip_fn(lc_log_softmax(x, st_of(m)->dim, out), "log_softmax");
}
static lc_status dim_extra(const lc_module *m, char **out) {
  return set_repr(out, "dim=%d", dim1(st_of(m)->dim));
}
static bool dim_attr(const lc_module *m, const char *name, lc_attr *out) {
  if (strcmp(name, "dim") != 0) return false;
  *out = (lc_attr){.type = LC_ATTR_DIM, .i = st_of(m)->dim};
  return true;
}
const lc_module_kind lc_kind_softmax = {.name = "Softmax",
                                        .forward = softmax_forward,
                                        .extra_repr = dim_extra,
                                        .attr = dim_attr,
                                        .destroy = free_state};
const lc_module_kind lc_kind_log_softmax = {.name = "LogSoftmax",
                                            .forward = log_softmax_forward,
                                            .extra_repr = dim_extra,
                                            .attr = dim_attr,
                                            .destroy = free_state};
lc_status lc_nn_softmax(int dim, lc_module **out) {
  return new_kind(&lc_kind_softmax, (act_state){.dim = dim}, out);
}
lc_status lc_nn_log_softmax(int dim, lc_module **out) {
  return new_kind(&lc_kind_log_softmax, (act_state){.dim = dim}, out);
}

/* ---------------------------------------------------------------- Dropout */

static lc_status dropout_forward(lc_module *m, const lc_tensor *x, lc_tensor **out) {
  return strip_fn(lc_dropout(x, st_of(m)->a, lc_module_is_training(m), out), "dropout");
}
static lc_status dropout_extra(const lc_module *m, char **out) {
  char b[64];
  return set_repr(out, "p=%s, inplace=%s", num_str(st_of(m)->a, true, b, sizeof b),
                  st_of(m)->inplace ? "true" : "false");
}
static bool dropout_attr(const lc_module *m, const char *name, lc_attr *out) {
  if (strcmp(name, "p") == 0) {
    *out = (lc_attr){.type = LC_ATTR_FLOAT, .f = st_of(m)->a};
    return true;
  }
  return inplace_attr(m, name, out);
}
const lc_module_kind lc_kind_dropout = {.name = "Dropout",
                                        .forward = dropout_forward,
                                        .extra_repr = dropout_extra,
                                        .attr = dropout_attr,
                                        .destroy = free_state};
lc_status lc_nn_dropout(double p, bool inplace, lc_module **out) {
  if (!(p >= 0 && p <= 1))
    return lc_set_error(LC_EARG,
                        "Dropout: dropout probability has to be between 0 and 1, but got %g", p);
  return new_kind(&lc_kind_dropout, (act_state){.a = p, .inplace = inplace}, out);
}

/* ---------------------------------------------------------------- Embedding */

typedef struct emb_state {
  int64_t n, d;
  int64_t pad; /* 0-based row, or -1 */
  int64_t base;
} emb_state;

static lc_tensor *emb_weight(const lc_module *m) {
  int64_t i = lc_module_find_parameter(m, "weight");
  return i >= 0 ? lc_module_own_parameter(m, i) : NULL;
}

static lc_status emb_reset(lc_module *m) {
  const emb_state *s = lc_module_state(m);
  lc_tensor *w = emb_weight(m);
  if (!w) return lc_set_error(LC_ESTATE, "Embedding: the weight parameter was removed");
  bool prev = lc_set_grad_enabled(false);
  lc_status st = lc_normal_(w, 0, 1);
  if (!st && s->pad >= 0 && s->pad < lc_shape(w)[0]) {
    lc_tensor *row = NULL;
    st = lc_select(w, 0, s->pad, &row);
    if (!st) st = lc_zero_(row);
    lc_release(row);
  }
  if (!st) lc_bump_version(w);
  lc_set_grad_enabled(prev);
  return st;
}

static lc_status emb_forward(lc_module *m, const lc_tensor *x, lc_tensor **out) {
  const emb_state *s = lc_module_state(m);
  lc_tensor *w = emb_weight(m);
  if (!w) return lc_set_error(LC_ESTATE, "the weight parameter was removed");
  return strip_fn(lc_embedding_ex(x, w, s->pad >= 0 ? s->pad : LC_NO_PADDING, s->base, out),
                  "embedding");
}

static lc_status emb_extra(const lc_module *m, char **out) {
  const emb_state *s = lc_module_state(m);
  if (s->pad < 0) return set_repr(out, "%lld, %lld", (long long)s->n, (long long)s->d);
  return set_repr(out, "%lld, %lld, padding_idx=%lld", (long long)s->n, (long long)s->d,
                  (long long)(s->pad + s->base));
}

static bool emb_attr(const lc_module *m, const char *name, lc_attr *out) {
  const emb_state *s = lc_module_state(m);
  if (strcmp(name, "num_embeddings") == 0)
    *out = (lc_attr){.type = LC_ATTR_INT, .i = s->n};
  else if (strcmp(name, "embedding_dim") == 0)
    *out = (lc_attr){.type = LC_ATTR_INT, .i = s->d};
  else if (strcmp(name, "padding_idx") == 0 && s->pad >= 0)
    *out = (lc_attr){.type = LC_ATTR_DIM, .i = s->pad};
  else
    return false;
  return true;
}

const lc_module_kind lc_kind_embedding = {.name = "Embedding",
                                          .forward = emb_forward,
                                          .extra_repr = emb_extra,
                                          .reset_parameters = emb_reset,
                                          .attr = emb_attr,
                                          .destroy = free_state};

lc_status lc_nn_embedding_ex(int64_t num_embeddings, int64_t embedding_dim, int64_t padding_idx,
                             int64_t index_base, lc_module **out) {
  if (!out) return lc_set_error(LC_EARG, "Embedding: out is NULL");
  if (num_embeddings < 0 || embedding_dim < 0)
    return lc_set_error(LC_EARG,
                        "Embedding: num_embeddings and embedding_dim must be >= 0, got %lld and "
                        "%lld",
                        (long long)num_embeddings, (long long)embedding_dim);
  if (index_base != 0 && index_base != 1)
    return lc_set_error(LC_EARG, "Embedding: index_base must be 0 or 1, got %lld",
                        (long long)index_base);
  int64_t pad = -1;
  if (padding_idx != LC_NO_PADDING) {
    pad = padding_idx < 0 ? padding_idx + num_embeddings : padding_idx;
    if (pad < 0 || pad >= num_embeddings)
      return lc_set_error(LC_EINDEX,
                          "Embedding: padding_idx %lld out of range for %lld embeddings "
                          "(expected %lld..%lld)",
                          (long long)padding_idx, (long long)num_embeddings,
                          (long long)-num_embeddings, (long long)(num_embeddings - 1));
  }
  emb_state *s = malloc(sizeof *s);
  if (!s) return nn_oom();
  *s = (emb_state){num_embeddings, embedding_dim, pad, index_base};
  lc_module *m;
  lc_status st = lc_module_new(&lc_kind_embedding, s, NULL, &m);
  if (st) return st;
  int64_t shape[2] = {num_embeddings, embedding_dim};
  lc_tensor *w = NULL;
  st = lc_zeros(2, shape, LC_FLOAT32, &w);
  if (!st) st = lc_set_requires_grad(w, true);
  if (!st) st = lc_module_register_parameter(m, "weight", w);
  lc_release(w);
  if (!st) st = emb_reset(m);
  if (st) {
    lc_module_release(m);
    return st;
  }
  *out = m;
  return LC_OK;
}

lc_status lc_nn_embedding(int64_t num_embeddings, int64_t embedding_dim, int64_t padding_idx,
                          lc_module **out) {
  return lc_nn_embedding_ex(num_embeddings, embedding_dim, padding_idx, 0, out);
}

/* ---------------------------------------------------------------- Unflatten */

typedef struct unflatten_state {
  int dim, n;
  int64_t sizes[LC_MAX_DIMS];
} unflatten_state;

static lc_status unflatten_forward(lc_module *m, const lc_tensor *x, lc_tensor **out) {
  const unflatten_state *s = lc_module_state(m);
  int nd = lc_ndim(x);
  char b1[256], b2[256];
  if (nd == 0 || s->dim >= nd || s->dim < -nd)
    return lc_set_error(LC_EINDEX, "dim=%d is out of range for an input with %d dims: input "
                                   "shape %s",
                        dim1(s->dim), nd, lc_shape_str(nd, lc_shape(x), b1, sizeof b1));
  int d = s->dim < 0 ? s->dim + nd : s->dim;
  int64_t prod = 1, size = lc_shape(x)[d];
  bool infer = false;
  for (int k = 0; k < s->n; k++) {
    if (s->sizes[k] == -1)
      infer = true;
    else
      prod *= s->sizes[k];
  }
  if (infer ? (prod == 0 || size % prod != 0) : prod != size)
    return lc_set_error(LC_ESHAPE,
                        "unflattened_size %s does not fit dim %d of size %lld: input shape %s",
                        lc_shape_str(s->n, s->sizes, b1, sizeof b1), d + 1, (long long)size,
                        lc_shape_str(nd, lc_shape(x), b2, sizeof b2));
  return strip_fn(lc_unflatten(x, s->dim, s->n, s->sizes, out), "unflatten");
}

static lc_status unflatten_extra(const lc_module *m, char **out) {
  const unflatten_state *s = lc_module_state(m);
  char b[256];
  return set_repr(out, "dim=%d, unflattened_size=%s", dim1(s->dim),
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
  if (nsizes < 1 || nsizes > LC_MAX_DIMS || !sizes)
    return lc_set_error(LC_EARG, "Unflatten: expected 1..%d sizes, got %d", LC_MAX_DIMS, nsizes);
  int neg = 0;
  for (int k = 0; k < nsizes; k++) {
    if (sizes[k] < -1)
      return lc_set_error(LC_EARG, "Unflatten: sizes must be >= 0 or -1, got %lld",
                          (long long)sizes[k]);
    neg += sizes[k] == -1;
  }
  if (neg > 1) return lc_set_error(LC_EARG, "Unflatten: only one size may be -1, got %d", neg);
  unflatten_state *s = malloc(sizeof *s);
  if (!s) return nn_oom();
  s->dim = dim;
  s->n = nsizes;
  memcpy(s->sizes, sizes, (size_t)nsizes * sizeof *sizes);
  return lc_module_new(&lc_kind_unflatten, s, NULL, out);
}
