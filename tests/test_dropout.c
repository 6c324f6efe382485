/* test_dropout.c - dropout (include/lucid_dropout.h): the mask's statistics and scaling, eval,
 * seeds and edge values, the gradient, errors, and the Dropout module kind.
 * Run alone with: make ctest-one T=tests/test_dropout.c */
#include "lucid_dropout.h"

#include "family_test.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- dropout */

TEST(dropout_statistics_and_scaling) {
  int64_t n = 200001; /* odd: the last draw serves one element */
  lc_tensor *x = NULL, *y = NULL;
  CHECK_OK(lc_ones(1, &n, LC_FLOAT32, &x));
  lc_manual_seed(5);
  const double ps[] = {0.1, 0.5, 0.8};
  for (int k = 0; k < 3; k++) {
    CHECK_OK(lc_dropout(x, ps[k], true, &y));
    double *v = y ? test_values(y) : NULL;
    int64_t kept = 0;
    double sum = 0;
    bool only_two_values = true;
    for (int64_t i = 0; v && i < n; i++) {
      if (v[i] != 0) kept++;
      sum += v[i];
      only_two_values =
          only_two_values && (v[i] == 0 || fabs(v[i] - 1 / (1 - ps[k])) < 1e-6 * (1 / (1 - ps[k])));
    }
    double frac = (double)kept / (double)n, sd = sqrt(ps[k] * (1 - ps[k]) / (double)n);
    CHECK(fabs(frac - (1 - ps[k])) < 5 * sd);
    CHECK(fabs(sum / (double)n - 1.0) < 5 * sd / (1 - ps[k])); /* the mean is preserved */
    CHECK(only_two_values);
    free(v);
    lc_release(y);
    y = NULL;
  }
  lc_release(x);
}

TEST(dropout_eval_seed_edges_and_errors) {
  int64_t sh[2] = {33, 17};
  lc_tensor *x = NULL, *a = NULL, *b = NULL, *c = NULL;
  lc_manual_seed(3);
  CHECK_OK(lc_randn(2, sh, LC_FLOAT64, &x));
  /* eval: the input itself */
  CHECK_OK(lc_dropout(x, 0.5, false, &a));
  CHECK(a == x);
  lc_release(a);
  /* the same seed gives the same mask; the next call a different one */
  lc_manual_seed(42);
  CHECK_OK(lc_dropout(x, 0.3, true, &a));
  CHECK_OK(lc_dropout(x, 0.3, true, &c));
  lc_manual_seed(42);
  CHECK_OK(lc_dropout(x, 0.3, true, &b));
  bool eq = false;
  CHECK_OK(lc_equal(a, b, &eq));
  CHECK(eq);
  CHECK_OK(lc_equal(a, c, &eq));
  CHECK(!eq);
  lc_release(a);
  lc_release(b);
  lc_release(c);
  /* p = 0 is the identity, p = 1 zeros */
  CHECK_OK(lc_dropout(x, 0, true, &a));
  CHECK_OK(lc_equal(a, x, &eq));
  CHECK(eq);
  CHECK_OK(lc_dropout(x, 1, true, &b));
  double *v = test_values(b);
  bool zeros = true;
  for (int64_t i = 0; i < 33 * 17; i++)
    zeros = zeros && v[i] == 0;
  CHECK(zeros);
  free(v);
  lc_release(a);
  lc_release(b);
  /* a transposed input */
  lc_tensor *xt = NULL;
  CHECK_OK(lc_t(x, &xt));
  CHECK_OK(lc_dropout(xt, 0.5, true, &a));
  CHECK(a && lc_shape(a)[0] == 17 && lc_shape(a)[1] == 33);
  lc_release(a);
  lc_release(xt);
  a = NULL;
  CHECK_STATUS(lc_dropout(x, 1.5, true, &a), LC_EARG);
  CHECK(msg_has("between 0 and 1") && msg_has("1.5"));
  CHECK_STATUS(lc_dropout(x, -0.1, false, &a), LC_EARG);
  CHECK_STATUS(lc_dropout(x, NAN, true, &a), LC_EARG);
  lc_tensor *xi = NULL;
  CHECK_OK(lc_zeros(2, sh, LC_INT64, &xi));
  CHECK_STATUS(lc_dropout(xi, 0.5, true, &a), LC_EDTYPE);
  CHECK(a == NULL);
  lc_release(xi);
  lc_release(x);
}

TEST(dropout_gradient_is_mask_times_scale) {
  int64_t n = 1001;
  lc_tensor *x = NULL, *y = NULL, *s = NULL;
  CHECK_OK(lc_full(1, &n, 2.0, LC_FLOAT64, &x));
  lc_set_requires_grad(x, true);
  CHECK_OK(lc_dropout(x, 0.25, true, &y));
  CHECK(y && strcmp(lc_grad_fn_name(y), "DropoutBackward") == 0);
  CHECK_OK(lc_reduce(LC_SUM, y, &(lc_reduce_opts){0}, &s));
  CHECK_OK(lc_backward(s, NULL, false));
  double *v = test_values(y), *g = lc_grad(x) ? test_values(lc_grad(x)) : NULL;
  CHECK(g != NULL);
  for (int64_t i = 0; g && i < n; i++)
    CHECK_NEAR(g[i], v[i] / 2.0, 1e-12);
  free(v);
  free(g);
  lc_release(x);
  lc_release(y);
  lc_release(s);
}

/* ---------------------------------------------------------------- module kind */

TEST(module_dropout_repr_attrs_and_constructor_errors) {
  lc_module *m = NULL;
  lc_attr a;
  CHECK(lc_nn_dropout(0.5, false, &m) == LC_OK && repr_is(m, "Dropout(p=0.5, inplace=false)"));
  CHECK_OK(lc_nn_dropout(0.3, false, &m));
  CHECK(lc_module_attr(m, "p", &a) && a.type == LC_ATTR_FLOAT && a.f == 0.3);
  CHECK(lc_module_attr(m, "inplace", &a) && a.type == LC_ATTR_BOOL && !a.b);
  CHECK(!lc_module_attr(m, "q", &a));
  lc_module_release(m);
  m = NULL;
  CHECK_STATUS(lc_nn_dropout(2, false, &m), LC_EARG);
  CHECK(msg_has("Dropout") && msg_has("between 0 and 1"));
  CHECK(m == NULL);
}

TEST(module_dropout_training_flag) {
  int64_t n = 4000;
  lc_tensor *x = NULL, *y = NULL;
  CHECK_OK(lc_ones(1, &n, LC_FLOAT32, &x));
  lc_module *d = NULL;
  CHECK_OK(lc_nn_dropout(0.5, false, &d));
  CHECK(lc_module_is_training(d));
  CHECK_OK(lc_module_forward(d, x, &y));
  double *v = test_values(y);
  int zeros = 0;
  for (int64_t i = 0; i < n; i++)
    zeros += v[i] == 0;
  CHECK(zeros > 1700 && zeros < 2300);
  free(v);
  lc_release(y);
  lc_module_train(d, false);
  CHECK_OK(lc_module_forward(d, x, &y));
  CHECK(y == x);
  lc_release(y);
  lc_module_release(d);
  lc_release(x);
}
