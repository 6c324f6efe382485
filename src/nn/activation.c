/* activation.c - module kinds of the activation family: ReLU6, LeakyReLU, ELU, GELU, SiLU, Mish,
 * Softplus, Hardtanh, Softmax, LogSoftmax. Each forward is one
 * call of the matching tensor function (src/ops/activation.c). */
#include "lucid_activation.h"
#include "kind_helpers.h"
#include "nn.h"

#include "../core/core.h"
#include "../ops/activation.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- elementwise activations */

/* One generic kind per row of src/kernels/activation_list.h; its state is the row's code, its
 * parameters and the inplace flag. */
typedef struct elem_state {
  int code;
  double p[2];
  bool inplace;
} elem_state;

static lc_status elem_forward(lc_module *m, const lc_tensor *x, lc_tensor **out) {
  const elem_state *s = lc_module_state(m);
  return lc_act_apply(s->code, x, s->p, out);
}

/* "negative_slope=0.01, inplace=true", "approximate='tanh'", "beta=1, threshold=20" */
static lc_status elem_extra(const lc_module *m, char **out) {
  const elem_state *s = lc_module_state(m);
  const lc_act_desc *d = &lc_act_descs[s->code];
  char buf[512] = "", num[64];
  size_t k = 0;
  for (int i = 0; i < d->nparams; i++) {
    const lc_act_param *p = &d->params[i];
    const char *sep = i ? ", " : "";
    if (p->choices) {
      /* the choice at position p[i] of "a|b|..." */
      const char *c = p->choices;
      for (int j = 0; j < (int)s->p[i] && strchr(c, '|'); j++)
        c = strchr(c, '|') + 1;
      int len = (int)strcspn(c, "|");
      k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%s='%.*s'", sep, p->name, len, c);
    } else {
      k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%s=%s", sep, p->name,
                            num_str(s->p[i], p->as_float, num, sizeof num));
    }
    if (k >= sizeof buf) k = sizeof buf - 1;
  }
  if (s->inplace) snprintf(buf + k, sizeof buf - k, "%sinplace=true", k ? ", " : "");
  if (!buf[0]) {
    *out = NULL;
    return LC_OK;
  }
  return set_repr(out, "%s", buf);
}

static bool elem_attr(const lc_module *m, const char *name, lc_attr *out) {
  const elem_state *s = lc_module_state(m);
  const lc_act_desc *d = &lc_act_descs[s->code];
  for (int i = 0; i < d->nparams; i++)
    if (!d->params[i].choices && strcmp(name, d->params[i].name) == 0) {
      *out = (lc_attr){.type = LC_ATTR_FLOAT, .f = s->p[i]};
      return true;
    }
  if (d->inplace && strcmp(name, "inplace") == 0) {
    *out = (lc_attr){.type = LC_ATTR_BOOL, .b = s->inplace};
    return true;
  }
  return false;
}

#define ELEM_KIND(CODE, NAME, Module, GradFn, cost, INPLACE, NP, P0, P1)                          \
  const lc_module_kind lc_kind_##NAME = {.name = Module,                                           \
                                         .forward = elem_forward,                                  \
                                         .extra_repr = elem_extra,                                 \
                                         .attr = elem_attr,                                        \
                                         .destroy = free_state};
LC_ACTIVATION_LIST(ELEM_KIND)
#undef ELEM_KIND

#define ELEM_KIND_PTR(CODE, NAME, Module, GradFn, cost, INPLACE, NP, P0, P1)                      \
  [LC_ACT_##CODE] = &lc_kind_##NAME,
static const lc_module_kind *const elem_kinds[LC_ACT_COUNT] = {LC_ACTIVATION_LIST(ELEM_KIND_PTR)};
#undef ELEM_KIND_PTR

lc_status lc_nn_act_new(int code, const double *p, bool inplace, lc_module **out) {
  if (code < 0 || code >= LC_ACT_COUNT)
    return lc_set_error(LC_EARG, "activation: no activation with code %d", code);
  const lc_module_kind *kind = elem_kinds[code];
  if (!out) return lc_set_error(LC_EARG, "%s: out is NULL", kind->name);
  if (!lc_act_descs[code].inplace) inplace = false;
  lc_status st = lc_act_check(code, kind->name, p);
  if (st) return st;
  elem_state *s = malloc(sizeof *s);
  if (!s) return nn_oom();
  *s = (elem_state){.code = code, .p = {p[0], p[1]}, .inplace = inplace};
  return lc_module_new(kind, s, NULL, out);
}

/* lc_nn_<name>([p0, [p1,]] [inplace,] out), by parameter count and inplace flag */
#define ELEM_PARAMS_0(P0, P1)
#define ELEM_PARAMS_1(P0, P1) LC_ACT_P_TYPE(P0) p0,
#define ELEM_PARAMS_2(P0, P1) LC_ACT_P_TYPE(P0) p0, LC_ACT_P_TYPE(P1) p1,
#define ELEM_VALUES_0 {0, 0}
#define ELEM_VALUES_1 {(double)p0, 0}
#define ELEM_VALUES_2 {(double)p0, (double)p1}
#define ELEM_INPLACE_0
#define ELEM_INPLACE_1 bool inplace,
#define ELEM_INPLACE_VALUE_0 false
#define ELEM_INPLACE_VALUE_1 inplace
#define ELEM_CTOR(CODE, NAME, Module, GradFn, cost, INPLACE, NP, P0, P1)                          \
  lc_status lc_nn_##NAME(ELEM_PARAMS_##NP(P0, P1) ELEM_INPLACE_##INPLACE lc_module **out) {      \
    return lc_nn_act_new(LC_ACT_##CODE, (const double[2])ELEM_VALUES_##NP,                        \
                         ELEM_INPLACE_VALUE_##INPLACE, out);                                       \
  }
LC_ACTIVATION_LIST(ELEM_CTOR)
#undef ELEM_CTOR

/* ---------------------------------------------------------------- Softmax, LogSoftmax */

static lc_status softmax_forward(lc_module *m, const lc_tensor *x, lc_tensor **out) {
  return strip_fn(lc_softmax(x, st_of(m)->dim, out), "softmax");
}
static lc_status log_softmax_forward(lc_module *m, const lc_tensor *x, lc_tensor **out) {
  return strip_fn(lc_log_softmax(x, st_of(m)->dim, out), "log_softmax");
}
static lc_status dim_extra(const lc_module *m, char **out) {
  return set_repr(out, "dim=" LC_POS_D, st_of(m)->dim); /* 0-based in C, 1-based in Lua */
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
