/* family_test.h - helpers the C tests of the layer families share (test_activation.c,
 * test_dropout.c, test_embedding.c, test_interpolate.c, test_linear.c, test_pool_review.c, ...):
 * tensors from values or 0, 1, 2, ..., random leaves,
 * message and repr checks. */
#ifndef LUCID_TESTS_FAMILY_TEST_H
#define LUCID_TESTS_FAMILY_TEST_H

#include "test.h"

#include <stdlib.h>
#include <string.h>

static inline lc_tensor *from(int ndim, const int64_t *shape, lc_dtype dt, const double *v) {
  lc_tensor *t = NULL, *d = NULL;
  if (lc_from_data(ndim, shape, LC_FLOAT64, v, &d)) return NULL;
  if (dt == LC_FLOAT64) return d;
  lc_to_dtype(d, dt, &t);
  lc_release(d);
  return t;
}

/* 0, 1, 2, ... in dtype dt, of the given shape. */
static inline lc_tensor *arange_f(int nd, const int64_t *shape, lc_dtype dt) {
  int64_t n = 1;
  for (int d = 0; d < nd; d++)
    n *= shape[d];
  lc_tensor *a = NULL, *t = NULL;
  if (!lc_arange(0, (double)n, 1, dt, &a)) lc_reshape(a, nd, shape, &t);
  lc_release(a);
  return t;
}

/* A float64 leaf requiring grad with values from lc_randn scaled by s. */
static inline lc_tensor *leaf(int ndim, const int64_t *shape, double s) {
  lc_tensor *r = NULL, *t = NULL;
  if (lc_randn(ndim, shape, LC_FLOAT64, &r)) return NULL;
  if (lc_binary_scalar(LC_MUL, r, s, false, &t)) t = NULL;
  lc_release(r);
  if (t) lc_set_requires_grad(t, true);
  return t;
}

static inline bool msg_has(const char *part) { return strstr(lc_last_error(), part) != NULL; }

static inline char *repr(const lc_module *m) {
  char *s = NULL;
  return lc_module_to_string(m, &s) == LC_OK ? s : NULL;
}

static inline bool repr_is(lc_module *m, const char *want) {
  char *s = m ? repr(m) : NULL;
  bool ok = s && strcmp(s, want) == 0;
  if (!ok) printf("  repr %s, expected %s\n", s ? s : "(null)", want);
  lc_free(s);
  lc_module_release(m);
  return ok;
}

#endif /* LUCID_TESTS_FAMILY_TEST_H */
