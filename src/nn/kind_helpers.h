/*
 * kind_helpers.h - helpers the module kinds of the layer families share (src/nn/activation.c,
 * conv.c, dropout.c, embedding.c, interpolate.c, norm.c): printing, messages, state. Layer 6 (nn);
 * private.
 */
#ifndef LUCID_NN_KIND_HELPERS_H
#define LUCID_NN_KIND_HELPERS_H

#include "lucid_activation.h" /* lc_gelu_approx */
#include "nn.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline lc_status nn_oom(void) { return lc_set_error(LC_ENOMEM, "nn: out of memory"); }

static inline lc_status set_repr(char **out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline lc_status set_repr(char **out, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  *out = lc_nn_strdup(tmp);
  return *out ? LC_OK : nn_oom();
}

/* The shortest text that reads back as v ("0.01", "1e-05"); with as_float, an integral value
 * gets ".0" as Python's repr prints floats ("1.0", "-1.0", "10.0"). */
static inline const char *num_str(double v, bool as_float, char *buf, size_t cap) {
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
static inline lc_status strip_fn(lc_status st, const char *fn) {
  const char *m = lc_last_error_marked();
  size_t n = strlen(fn);
  if (strncmp(m, fn, n) == 0 && m[n] == ':' && m[n + 1] == ' ') {
    char msg[768];
    snprintf(msg, sizeof msg, "%s", m + n + 2);
    lc_set_error(st, "%s", msg);
  }
  return st;
}

static inline void free_state(lc_module *m) { free(lc_module_state(m)); }

/* The shared state of the parameterised kinds. */
typedef struct act_state {
  double a, b; /* negative_slope / alpha / beta, threshold / min_val, max_val / p */
  bool inplace;
  lc_gelu_approx approx;
  int dim;
} act_state;

static inline lc_status new_kind(const lc_module_kind *kind, act_state init, lc_module **out) {
  if (!out) return lc_set_error(LC_EARG, "%s: out is NULL", kind->name);
  act_state *s = malloc(sizeof *s);
  if (!s) return nn_oom();
  *s = init;
  return lc_module_new(kind, s, NULL, out);
}

static inline const act_state *st_of(const lc_module *m) { return lc_module_state(m); }

static inline bool inplace_attr(const lc_module *m, const char *name, lc_attr *out) {
  if (strcmp(name, "inplace") != 0) return false;
  *out = (lc_attr){.type = LC_ATTR_BOOL, .b = st_of(m)->inplace};
  return true;
}

#endif /* LUCID_NN_KIND_HELPERS_H */
