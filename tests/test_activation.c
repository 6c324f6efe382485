/* test_activation.c - the activation family (include/lucid_activation.h): values against
 * reference formulas evaluated here in double, gradients against central differences
 * (tests/gradcheck.c), float32 against float64, error cases, and the module kinds.
 * Run alone with: make ctest-one T="tests/test_activation.c tests/gradcheck.c" */
#include "lucid_activation.h"

#include "../src/nn/nn.h"
#include "../src/ops/activation.h"
#include "family_test.h"
#include "gradcheck.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

/* The reference formulas, in double. */
static double sigm(double x) { return 1 / (1 + exp(-x)); }
static double ref_act(int k, double x, double a, double b) {
  switch (k) {
  case 0: return fmin(fmax(x, 0), 6);
  case 1: return x > 0 ? x : a * x;
  case 2: return x > 0 ? x : a * expm1(x);
  case 3: return 0.5 * x * (1 + erf(x / sqrt(2.0)));
  case 4: return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
  case 5: return x * sigm(x);
  case 6: return x * tanh(x > 20 ? x : log1p(exp(x)));
  case 7: return a * x > b ? x : log1p(exp(a * x)) / a;
  case 8: return fmin(fmax(x, a), b);
  default: return x * fmin(fmax(x + 3, 0), 6) / 6;
  }
}

typedef struct act_case {
  const char *name;
  int k;
  double a, b;
} act_case;

static const act_case cases[] = {
    {"relu6", 0, 0, 0},      {"leaky_relu", 1, 0.2, 0}, {"elu", 2, 1.5, 0},
    {"gelu", 3, 0, 0},       {"gelu_tanh", 4, 0, 0},    {"silu", 5, 0, 0},
    {"mish", 6, 0, 0},       {"softplus", 7, 2, 5},     {"hardtanh", 8, -0.5, 1.5},
    {"hardswish", 9, 0, 0},
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

static lc_status run_act(int k, double a, double b, const lc_tensor *x, lc_tensor **out) {
  switch (k) {
  case 0: return lc_relu6(x, out);
  case 1: return lc_leaky_relu(x, a, out);
  case 2: return lc_elu(x, a, out);
  case 3: return lc_gelu(x, LC_GELU_NONE, out);
  case 4: return lc_gelu(x, LC_GELU_TANH, out);
  case 5: return lc_silu(x, out);
  case 6: return lc_mish(x, out);
  case 7: return lc_softplus(x, a, b, out);
  case 8: return lc_hardtanh(x, a, b, out);
  default: return lc_hardswish(x, out);
  }
}

static lc_status act_fn(void *ctx, lc_tensor *const *in, lc_tensor **out) {
  const act_case *c = ctx;
  return run_act(c->k, c->a, c->b, in[0], out);
}

/* ---------------------------------------------------------------- elementwise activations */

TEST(act_values_float64_and_float32) {
  /* regular points, boundaries (0, 6, clamp bounds, softplus threshold) and large |x| */
  double xs[] = {-30, -7, -2.5, -1, -0.5, -1e-3, 0, 1e-3, 0.5, 1, 1.5, 2.5, 5.9, 6, 7, 30, 100};
  int64_t n = (int64_t)(sizeof xs / sizeof xs[0]);
  for (int c = 0; c < NCASES; c++) {
    for (int dti = 0; dti < 2; dti++) {
      lc_dtype dt = dti ? LC_FLOAT32 : LC_FLOAT64;
      lc_tensor *x = from(1, &n, dt, xs), *y = NULL;
      CHECK_OK(run_act(cases[c].k, cases[c].a, cases[c].b, x, &y));
      if (y) {
        CHECK(lc_dtype_of(y) == dt && lc_numel(y) == n);
        double *v = test_values(y);
        for (int64_t i = 0; i < n; i++) {
          double want = ref_act(cases[c].k, xs[i], cases[c].a, cases[c].b);
          double tol = (dt == LC_FLOAT32 ? 2e-6 : 1e-12) * (1 + fabs(want));
          if (!(fabs(v[i] - want) <= tol))
            printf("  %s %s x=%g: got %.12g want %.12g\n", cases[c].name, lc_dtype_name(dt), xs[i],
                   v[i], want);
          CHECK(fabs(v[i] - want) <= tol);
          CHECK(isfinite(v[i]));
        }
        free(v);
      }
      lc_release(x);
      lc_release(y);
    }
  }
}

/* NaN in, NaN out for every activation (ELU's x > 0 test once sent NaN to its x <= 0 branch,
 * giving alpha (exp(0) - 1) = 0); over a long row so the vectorised loop runs too. */
TEST(act_nan_propagates) {
  enum { N = 37 };
  double xs[N];
  for (int i = 0; i < N; i++)
    xs[i] = i % 3 == 0 ? NAN : i - 18.0;
  int64_t n = N;
  for (int c = 0; c < NCASES; c++)
    for (int dti = 0; dti < 2; dti++) {
      lc_dtype dt = dti ? LC_FLOAT32 : LC_FLOAT64;
      lc_tensor *x = from(1, &n, dt, xs), *y = NULL;
      CHECK_OK(run_act(cases[c].k, cases[c].a, cases[c].b, x, &y));
      if (y) {
        double *v = test_values(y);
        for (int i = 0; i < N; i += 3) {
          if (!isnan(v[i])) printf("  %s %s: NaN gave %g\n", cases[c].name, lc_dtype_name(dt), v[i]);
          CHECK(isnan(v[i]));
        }
        free(v);
      }
      lc_release(x);
      lc_release(y);
    }
}

TEST(act_gradcheck_float64) {
  int64_t shape[2] = {5, 7};
  lc_manual_seed(11);
  for (int c = 0; c < NCASES; c++) {
    lc_tensor *x = leaf(2, shape, 2.0);
    char msg[512];
    int ok = gradcheck(act_fn, (void *)&cases[c], 1, &x, 1e-6, 1e-7, 1e-5, msg, sizeof msg);
    if (!ok) printf("  %s: %s\n", cases[c].name, msg);
    CHECK(ok);
    lc_release(x);
  }
}

/* A transposed (non-contiguous) input takes the strided path, in both directions. */
TEST(act_strided_input_and_grad_name) {
  int64_t shape[2] = {6, 9};
  lc_manual_seed(12);
  for (int c = 0; c < NCASES; c++) {
    lc_tensor *x = leaf(2, shape, 3.0), *xt = NULL, *y = NULL, *yc = NULL, *xc = NULL;
    CHECK_OK(lc_t(x, &xt));
    CHECK(!lc_is_contiguous(xt));
    CHECK_OK(run_act(cases[c].k, cases[c].a, cases[c].b, xt, &y));
    CHECK_OK(lc_contiguous(xt, &xc));
    CHECK_OK(run_act(cases[c].k, cases[c].a, cases[c].b, xc, &yc));
    bool eq = false;
    CHECK_OK(lc_equal(y, yc, &eq));
    CHECK(eq);
    CHECK(lc_grad_fn_name(y) != NULL);
    char msg[512];
    lc_tensor *xs[1] = {x};
    /* the strided case through gradcheck: f(x) = act(x^T) */
    int ok = gradcheck(act_fn, (void *)&cases[c], 1, xs, 1e-6, 1e-7, 1e-5, msg, sizeof msg);
    CHECK(ok);
    lc_release(x);
    lc_release(xt);
    lc_release(y);
    lc_release(yc);
    lc_release(xc);
  }
}

static lc_status act_t_fn(void *ctx, lc_tensor *const *in, lc_tensor **out) {
  lc_tensor *t = NULL;
  lc_status st = lc_t(in[0], &t);
  if (!st) st = act_fn(ctx, &t, out);
  lc_release(t);
  return st;
}

TEST(act_gradcheck_transposed) {
  int64_t shape[2] = {4, 3};
  lc_manual_seed(13);
  for (int c = 0; c < NCASES; c++) {
    lc_tensor *x = leaf(2, shape, 2.0);
    char msg[512];
    int ok = gradcheck(act_t_fn, (void *)&cases[c], 1, &x, 1e-6, 1e-7, 1e-5, msg, sizeof msg);
    if (!ok) printf("  %s: %s\n", cases[c].name, msg);
    CHECK(ok);
    lc_release(x);
  }
}

/* Gradient of an expanded (stride-0) upstream gradient: d/dx sum(act(x)). */
TEST(act_backward_matches_derivative) {
  double xs[] = {-3, -1, -0.25, 0.25, 1, 3, 5.5, 6.5};
  int64_t n = 8;
  for (int c = 0; c < NCASES; c++) {
    lc_tensor *x = from(1, &n, LC_FLOAT64, xs), *y = NULL, *s = NULL;
    lc_set_requires_grad(x, true);
    CHECK_OK(run_act(cases[c].k, cases[c].a, cases[c].b, x, &y));
    CHECK_OK(lc_reduce(LC_SUM, y, &(lc_reduce_opts){0}, &s));
    CHECK_OK(lc_backward(s, NULL, false));
    double *g = lc_grad(x) ? test_values(lc_grad(x)) : NULL;
    CHECK(g != NULL);
    for (int64_t i = 0; g && i < n; i++) {
      if (cases[c].k == 9 && fabs(xs[i]) == 3) continue; /* Hardswish's kinks: PyTorch's side */
      double h = 1e-6, a = cases[c].a, b = cases[c].b;
      double num = (ref_act(cases[c].k, xs[i] + h, a, b) - ref_act(cases[c].k, xs[i] - h, a, b)) /
                   (2 * h);
      CHECK_NEAR(g[i], num, 1e-6);
    }
    free(g);
    lc_release(x);
    lc_release(y);
    lc_release(s);
  }
}

TEST(act_errors) {
  int64_t n = 3;
  lc_tensor *xi = NULL, *x = NULL, *y = NULL;
  CHECK_OK(lc_zeros(1, &n, LC_INT64, &xi));
  CHECK_OK(lc_zeros(1, &n, LC_FLOAT32, &x));
  CHECK_STATUS(lc_relu6(xi, &y), LC_EDTYPE);
  CHECK(msg_has("relu6") && msg_has("int64"));
  CHECK_STATUS(lc_mish(xi, &y), LC_EDTYPE);
  CHECK_STATUS(lc_hardtanh(x, 1, -1, &y), LC_EARG);
  CHECK(msg_has("max_val") && msg_has("min_val"));
  CHECK_STATUS(lc_softplus(x, 0, 20, &y), LC_EARG);
  CHECK(msg_has("beta"));
  CHECK_STATUS(lc_softplus(x, NAN, 20, &y), LC_EARG); /* one rule for C and Lua: NaN too */
  CHECK(msg_has("softplus: beta must be a non-zero number, got nan"));
  CHECK_STATUS(lc_gelu(x, (lc_gelu_approx)7, &y), LC_EARG);
  CHECK(msg_has("gelu: approximate"));
  CHECK_STATUS(lc_relu6(NULL, &y), LC_EARG);
  CHECK_STATUS(lc_silu(x, NULL), LC_EARG);
  CHECK(y == NULL);
  /* empty tensors are fine */
  int64_t z = 0;
  lc_tensor *e = NULL, *ye = NULL;
  CHECK_OK(lc_zeros(1, &z, LC_FLOAT64, &e));
  CHECK_OK(lc_gelu(e, LC_GELU_NONE, &ye));
  CHECK(ye && lc_numel(ye) == 0);
  lc_release(e);
  lc_release(ye);
  lc_release(xi);
  lc_release(x);
}

/* ---------------------------------------------------------------- softmax */

/* Reference softmax of a float64 {A, B, C} tensor along dim, into want. */
static void ref_softmax(const double *x, const int64_t *sh, int dim, bool log, double *want) {
  int64_t outer = 1, inner = 1, size = sh[dim];
  for (int d = 0; d < dim; d++) outer *= sh[d];
  for (int d = dim + 1; d < 3; d++) inner *= sh[d];
  for (int64_t o = 0; o < outer; o++)
    for (int64_t c = 0; c < inner; c++) {
      double m = -INFINITY, s = 0;
      for (int64_t i = 0; i < size; i++) m = fmax(m, x[(o * size + i) * inner + c]);
      for (int64_t i = 0; i < size; i++) s += exp(x[(o * size + i) * inner + c] - m);
      for (int64_t i = 0; i < size; i++) {
        double v = x[(o * size + i) * inner + c] - m;
        want[(o * size + i) * inner + c] = log ? v - log1p(s - 1) : exp(v) / s;
      }
    }
}

TEST(softmax_values_every_dim) {
  /* inner sizes 1, 70 (more than one block of 64 columns) and 3*70 */
  int64_t sh[3] = {3, 5, 70};
  int64_t n = 3 * 5 * 70;
  double *xs = malloc((size_t)n * sizeof *xs), *want = malloc((size_t)n * sizeof *want);
  for (int64_t i = 0; i < n; i++) xs[i] = 10 * sin(0.37 * (double)i) + (i % 7 == 0 ? 500 : 0);
  for (int log = 0; log < 2; log++)
    for (int dim = -1; dim < 3; dim++)
      for (int dti = 0; dti < 2; dti++) {
        lc_dtype dt = dti ? LC_FLOAT32 : LC_FLOAT64;
        lc_tensor *x = from(3, sh, dt, xs), *y = NULL;
        CHECK_OK(log ? lc_log_softmax(x, dim, &y) : lc_softmax(x, dim, &y));
        ref_softmax(xs, sh, dim < 0 ? dim + 3 : dim, log, want);
        double *v = y ? test_values(y) : NULL;
        double worst = 0;
        for (int64_t i = 0; v && i < n; i++)
          worst = fmax(worst, fabs(v[i] - want[i]) / (1 + fabs(want[i])));
        CHECK(v && worst <= (dt == LC_FLOAT32 ? 1e-5 : 1e-12));
        free(v);
        lc_release(x);
        lc_release(y);
      }
  free(xs);
  free(want);
}

TEST(softmax_extreme_inputs_stay_finite) {
  double xs[] = {1000, -1000, 0, 88.8, 1e30, -1e30};
  int64_t n = 6;
  for (int dti = 0; dti < 2; dti++) {
    lc_tensor *x = from(1, &n, dti ? LC_FLOAT32 : LC_FLOAT64, xs), *y = NULL, *l = NULL;
    CHECK_OK(lc_softmax(x, 0, &y));
    CHECK_OK(lc_log_softmax(x, 0, &l));
    double *v = test_values(y), *lv = test_values(l);
    CHECK_NEAR(v[4], 1.0, 1e-7);
    for (int i = 0; i < 6; i++) {
      CHECK(isfinite(v[i]) && v[i] >= 0);
      CHECK(isfinite(lv[i]) || i == 5 || i == 1); /* -1e30 - 1e30 is finite in f64, -inf in f32 */
    }
    CHECK_NEAR(lv[4], 0.0, 1e-7);
    CHECK_NEAR(lv[0], 1000 - 1e30, 1e23);
    free(v);
    free(lv);
    lc_release(x);
    lc_release(y);
    lc_release(l);
  }
}

typedef struct sm_ctx {
  bool log;
  int dim;
  bool transpose;
} sm_ctx;

static lc_status sm_fn(void *ctx, lc_tensor *const *in, lc_tensor **out) {
  const sm_ctx *c = ctx;
  lc_tensor *x = lc_retain(in[0]);
  lc_status st = LC_OK;
  if (c->transpose) {
    lc_tensor *t = NULL;
    st = lc_transpose(x, 0, 2, &t);
    lc_release(x);
    x = t;
  }
  if (!st) st = c->log ? lc_log_softmax(x, c->dim, out) : lc_softmax(x, c->dim, out);
  lc_release(x);
  return st;
}

TEST(softmax_gradcheck_float64) {
  int64_t sh[3] = {2, 3, 4};
  lc_manual_seed(21);
  for (int log = 0; log < 2; log++)
    for (int dim = 0; dim < 3; dim++)
      for (int tr = 0; tr < 2; tr++) {
        lc_tensor *x = leaf(3, sh, 3.0);
        sm_ctx c = {log != 0, dim, tr != 0};
        char msg[512];
        int ok = gradcheck(sm_fn, &c, 1, &x, 1e-6, 1e-7, 1e-5, msg, sizeof msg);
        if (!ok) printf("  log=%d dim=%d tr=%d: %s\n", log, dim, tr, msg);
        CHECK(ok);
        lc_release(x);
      }
}

TEST(softmax_0dim_and_errors) {
  lc_tensor *s = NULL, *y = NULL, *l = NULL, *xi = NULL;
  CHECK_OK(lc_scalar(3.5, LC_FLOAT32, &s));
  CHECK_OK(lc_softmax(s, -1, &y));
  CHECK_OK(lc_log_softmax(s, 0, &l));
  double v = -1;
  CHECK_OK(lc_item(y, &v));
  CHECK_NEAR(v, 1.0, 0);
  CHECK_OK(lc_item(l, &v));
  CHECK_NEAR(v, 0.0, 0);
  lc_tensor *bad = NULL;
  CHECK_STATUS(lc_softmax(s, 1, &bad), LC_EINDEX);
  int64_t sh[2] = {2, 3};
  CHECK_OK(lc_zeros(2, sh, LC_INT32, &xi));
  CHECK_STATUS(lc_softmax(xi, 1, &bad), LC_EDTYPE);
  CHECK(msg_has("softmax"));
  lc_tensor *x = NULL;
  CHECK_OK(lc_zeros(2, sh, LC_FLOAT32, &x));
  CHECK_STATUS(lc_log_softmax(x, 2, &bad), LC_EINDEX);
  CHECK(msg_has("log_softmax") && msg_has("dim 2"));
  CHECK_STATUS(lc_log_softmax(x, -3, &bad), LC_EINDEX);
  CHECK(bad == NULL);
  lc_release(s);
  lc_release(y);
  lc_release(l);
  lc_release(xi);
  lc_release(x);
}

/* ---------------------------------------------------------------- module kinds */

TEST(module_reprs) {
  lc_module *m = NULL;
  CHECK(lc_nn_relu6(false, &m) == LC_OK && repr_is(m, "ReLU6()"));
  CHECK(lc_nn_relu6(true, &m) == LC_OK && repr_is(m, "ReLU6(inplace=true)"));
  CHECK(lc_nn_leaky_relu(0.01, false, &m) == LC_OK && repr_is(m, "LeakyReLU(negative_slope=0.01)"));
  CHECK(lc_nn_leaky_relu(0.2, true, &m) == LC_OK &&
        repr_is(m, "LeakyReLU(negative_slope=0.2, inplace=true)"));
  CHECK(lc_nn_elu(1, false, &m) == LC_OK && repr_is(m, "ELU(alpha=1.0)"));
  CHECK(lc_nn_gelu(LC_GELU_NONE, &m) == LC_OK && repr_is(m, "GELU(approximate='none')"));
  CHECK(lc_nn_gelu(LC_GELU_TANH, &m) == LC_OK && repr_is(m, "GELU(approximate='tanh')"));
  CHECK(lc_nn_silu(false, &m) == LC_OK && repr_is(m, "SiLU()"));
  CHECK(lc_nn_mish(false, &m) == LC_OK && repr_is(m, "Mish()"));
  CHECK(lc_nn_softplus(1, 20, &m) == LC_OK && repr_is(m, "Softplus(beta=1, threshold=20)"));
  CHECK(lc_nn_softplus(0.5, 10, &m) == LC_OK && repr_is(m, "Softplus(beta=0.5, threshold=10)"));
  CHECK(lc_nn_hardtanh(-1, 1, false, &m) == LC_OK &&
        repr_is(m, "Hardtanh(min_val=-1.0, max_val=1.0)"));
  CHECK(lc_nn_softmax(1, &m) == LC_OK && repr_is(m, "Softmax(dim=1)")); /* C: 0-based */
  CHECK(lc_nn_log_softmax(-1, &m) == LC_OK && repr_is(m, "LogSoftmax(dim=-1)"));
}

TEST(module_attrs_and_constructor_errors) {
  lc_module *m = NULL;
  lc_attr a;
  CHECK_OK(lc_nn_leaky_relu(0.1, false, &m));
  CHECK(lc_module_attr(m, "negative_slope", &a) && a.f == 0.1);
  lc_module_release(m);
  CHECK_OK(lc_nn_softmax(-1, &m));
  CHECK(lc_module_attr(m, "dim", &a) && a.type == LC_ATTR_DIM && a.i == -1);
  lc_module_release(m);
  CHECK_OK(lc_nn_hardtanh(-2, 3, false, &m));
  CHECK(lc_module_attr(m, "min_val", &a) && a.f == -2);
  CHECK(lc_module_attr(m, "max_val", &a) && a.f == 3);
  lc_module_release(m);
  CHECK_OK(lc_nn_softplus(2, 7, &m));
  CHECK(lc_module_attr(m, "beta", &a) && a.f == 2);
  CHECK(lc_module_attr(m, "threshold", &a) && a.f == 7);
  lc_module_release(m);
  CHECK_OK(lc_nn_elu(0.5, true, &m));
  CHECK(lc_module_attr(m, "alpha", &a) && a.f == 0.5);
  CHECK(lc_module_attr(m, "inplace", &a) && a.b);
  lc_module_release(m);
  m = NULL;
  CHECK_STATUS(lc_nn_hardtanh(1, 0, false, &m), LC_EARG);
  CHECK_STATUS(lc_nn_softplus(0, 20, &m), LC_EARG);
  CHECK_STATUS(lc_nn_gelu((lc_gelu_approx)3, &m), LC_EARG);
  CHECK(m == NULL);
}

TEST(module_forwards_match_functions) {
  int64_t sh[2] = {4, 6};
  lc_manual_seed(51);
  lc_tensor *x = NULL;
  CHECK_OK(lc_randn(2, sh, LC_FLOAT32, &x));
  lc_module *ms[NCASES] = {NULL};
  CHECK_OK(lc_nn_relu6(false, &ms[0]));
  CHECK_OK(lc_nn_leaky_relu(0.2, false, &ms[1]));
  CHECK_OK(lc_nn_elu(1.5, false, &ms[2]));
  CHECK_OK(lc_nn_gelu(LC_GELU_NONE, &ms[3]));
  CHECK_OK(lc_nn_gelu(LC_GELU_TANH, &ms[4]));
  CHECK_OK(lc_nn_silu(false, &ms[5]));
  CHECK_OK(lc_nn_mish(false, &ms[6]));
  CHECK_OK(lc_nn_softplus(2, 5, &ms[7]));
  CHECK_OK(lc_nn_hardtanh(-0.5, 1.5, false, &ms[8]));
  CHECK_OK(lc_nn_hardswish(false, &ms[9]));
  for (int c = 0; c < NCASES; c++) {
    lc_tensor *a = NULL, *b = NULL;
    CHECK_OK(lc_module_forward(ms[c], x, &a));
    CHECK_OK(run_act(cases[c].k, cases[c].a, cases[c].b, x, &b));
    bool eq = false;
    if (a && b) CHECK_OK(lc_equal(a, b, &eq));
    CHECK(eq);
    lc_release(a);
    lc_release(b);
    lc_module_release(ms[c]);
  }
  /* Softmax along dim 2 (0-based 1) */
  lc_module *sm = NULL, *lsm = NULL;
  lc_tensor *a = NULL, *b = NULL;
  CHECK_OK(lc_nn_softmax(1, &sm));
  CHECK_OK(lc_nn_log_softmax(0, &lsm));
  CHECK_OK(lc_module_forward(sm, x, &a));
  CHECK_OK(lc_softmax(x, 1, &b));
  bool eq = false;
  CHECK_OK(lc_equal(a, b, &eq));
  CHECK(eq);
  lc_release(a);
  lc_release(b);
  CHECK_OK(lc_module_forward(lsm, x, &a));
  CHECK_OK(lc_log_softmax(x, 0, &b));
  CHECK_OK(lc_equal(a, b, &eq));
  CHECK(eq);
  lc_release(a);
  lc_release(b);
  /* a 1-D input: dim 1 does not exist; C messages count from 0 like the repr (Lua shows 2) */
  int64_t n = 3;
  lc_tensor *v = NULL;
  a = NULL;
  CHECK_OK(lc_zeros(1, &n, LC_FLOAT32, &v));
  CHECK_STATUS(lc_module_forward(sm, v, &a), LC_EINDEX);
  CHECK(msg_has("Softmax") && msg_has("dim 1 out of range for a tensor with 1 dims"));
  CHECK(a == NULL);
  lc_release(v);
  lc_module_release(sm);
  lc_module_release(lsm);
  lc_release(x);
}

/* ---------------------------------------------------------------- float32 accuracy sweep */

/* Reference value f(x) and derivative f'(x) in double, and the size of the derivative's terms
 * (its relative error is measured against that where the terms cancel, at f'(x) = 0). */
typedef struct acc_ref {
  double f, d, dmag;
} acc_ref;

static acc_ref acc_ref_of(int k, double x, double a, double b) {
  /* ref_act's 1 + erf and 1 + tanh cancel for x < 0: erfc and a sigmoid here */
  acc_ref r = {ref_act(k, x, a, b), 0, 0};
  if (k == 3) r.f = 0.5 * x * erfc(-x / sqrt(2.0));
  if (k == 4) r.f = x * sigm(2 * sqrt(2 / M_PI) * (x + 0.044715 * x * x * x));
  switch (k) {
  case 1: r.d = x > 0 ? 1 : a; break;
  case 2: r.d = x > 0 ? 1 : a * exp(x); break;
  case 3: {
    double p = 0.5 * erfc(-x / sqrt(2.0)), q = x * exp(-0.5 * x * x) / sqrt(2 * M_PI);
    r.d = p + q;
    r.dmag = p + fabs(q);
    break;
  }
  case 4: {
    const double kk = sqrt(2 / M_PI), c = 0.044715;
    double s = sigm(2 * kk * (x + c * x * x * x)); /* 0.5 (1 + tanh(u)) = sigmoid(2u) */
    double p = s, q = 2 * x * s * (1 - s) * kk * (1 + 3 * c * x * x);
    r.d = p + q;
    r.dmag = p + fabs(q);
    break;
  }
  case 5: {
    double s = sigm(x);
    r.d = s * (1 + x * (1 - s));
    r.dmag = s * (1 + fabs(x) * (1 - s));
    break;
  }
  case 6: {
    double t = tanh(x > 20 ? x : log1p(exp(x))), q = x * sigm(x) * (1 - t * t);
    r.d = t + q;
    r.dmag = fabs(t) + fabs(q);
    break;
  }
  case 7: r.d = a * x > b ? 1 : sigm(a * x); break;
  default: break;
  }
  if (r.dmag < fabs(r.d)) r.dmag = fabs(r.d);
  return r;
}

/* Worst relative error of y against want over n values; |want| below floor counts as floor
 * (outputs in or near float32's subnormal range carry no relative accuracy). */
static double worst_rel(const double *y, const double *want, const double *mag, int64_t n,
                        double floor, int64_t *at) {
  double worst = 0;
  for (int64_t i = 0; i < n; i++) {
    double m = fmax(mag ? mag[i] : fabs(want[i]), floor);
    double e = y[i] == want[i] ? 0 : fabs(y[i] - want[i]) / m; /* inf == inf */
    if (isnan(e)) e = INFINITY;
    if (e > worst) {
      worst = e;
      *at = i;
    }
  }
  return worst;
}

/* Dense sweep of float32 inputs over [-20, 20] (step 2^-12) plus extremes (subnormals, 1e-30,
 * the ends of exp's range, 1e10, FLT_MAX): forward and backward of each smooth activation
 * against the float64 formulas on the same (float32) inputs. The bounds are a little above the
 * errors measured (LUCID_TEST_VERBOSE=1 prints them); PyTorch's float32 kernels are no closer. */
TEST(act_float32_accuracy_sweep) {
  static const double extremes[] = {1e-45, 1e-40, 1e-30, 1e-10, 1e-5, 30, 50, 87, 88.5, 89,
                                    100, 1e4, 1e10, 1e30, 3.4028234663852886e38};
  const int64_t nsweep = 40 * 4096 + 1, next = (int64_t)(sizeof extremes / sizeof *extremes);
  int64_t n = nsweep + 2 * next + 1;
  float *xs = malloc((size_t)n * sizeof *xs);
  double *want = malloc((size_t)n * sizeof *want), *dwant = malloc((size_t)n * sizeof *dwant);
  double *dmag = malloc((size_t)n * sizeof *dmag);
  for (int64_t i = 0; i < nsweep; i++) xs[i] = (float)(-20.0 + (double)i / 4096);
  for (int64_t i = 0; i < next; i++) {
    xs[nsweep + 2 * i] = (float)extremes[i];
    xs[nsweep + 2 * i + 1] = (float)-extremes[i];
  }
  xs[n - 1] = 0;
  /* bounds: forward, backward (relative; 1e-30 floor). gelu_tanh's left tail (x near -9, where
   * sigmoid(2u) ~ 1e-30) inherits the rounding of u ~ -36 (1e-5 after exp); silu's backward the
   * cancellation in 1 - sigmoid(x) at x ~ 16. Before the sweep: gelu 1.8e-5 / 3.9e-6, mish inf
   * (x n overflowed for x > 1.4e21), gelu_tanh's backward NaN for |x| > 1e13, elu 4.9e-7. */
  static const struct {
    int c;
    double fwd, bwd;
  } bounds[] = {{2, 3e-7, 3e-7},     {3, 5e-7, 4e-7}, {4, 1.5e-5, 1.5e-5},
                {5, 5e-7, 1.5e-6}, {6, 5e-7, 5e-7}, {7, 3e-7, 3e-7}};
  const bool verbose = getenv("LUCID_TEST_VERBOSE") != NULL;
  for (size_t b = 0; b < sizeof bounds / sizeof *bounds; b++) {
    const act_case *c = &cases[bounds[b].c];
    for (int64_t i = 0; i < n; i++) {
      acc_ref r = acc_ref_of(c->k, xs[i], c->a, c->b);
      want[i] = r.f;
      dwant[i] = r.d;
      dmag[i] = r.dmag;
    }
    lc_tensor *x = NULL, *y = NULL, *ones = NULL;
    CHECK_OK(lc_from_data(1, &n, LC_FLOAT32, xs, &x));
    lc_set_requires_grad(x, true);
    CHECK_OK(run_act(c->k, c->a, c->b, x, &y));
    CHECK_OK(lc_ones(1, &n, LC_FLOAT32, &ones));
    CHECK_OK(lc_backward(y, ones, false));
    double *v = y ? test_values(y) : NULL, *g = lc_grad(x) ? test_values(lc_grad(x)) : NULL;
    CHECK(v && g);
    if (v && g) {
      int64_t af = 0, ab = 0;
      double ef = worst_rel(v, want, NULL, n, 1e-30, &af);
      double eb = worst_rel(g, dwant, dmag, n, 1e-30, &ab);
      if (verbose || ef > bounds[b].fwd || eb > bounds[b].bwd)
        printf("  %s float32: worst relative error forward %.3g (x = %.9g), backward %.3g "
               "(x = %.9g)\n",
               c->name, ef, (double)xs[af], eb, (double)xs[ab]);
      CHECK(ef <= bounds[b].fwd);
      CHECK(eb <= bounds[b].bwd);
    }
    free(v);
    free(g);
    lc_release(x);
    lc_release(y);
    lc_release(ones);
  }
  free(xs);
  free(want);
  free(dwant);
  free(dmag);
}

/* softmax and log_softmax float32 over rows of 1003 values spread over [-20, 20] (a full lane
 * group tail included) and a row with +-1e30, forward and backward against float64 (the row
 * reductions run in lanes; the bounds are a little above the errors measured: 2.1e-6 / 2.6e-6
 * softmax, 9.4e-8 / 4.4e-7 log_softmax; with one running sum 2.2e-6 / 3.4e-6, 1.1e-7 / 7.4e-7). */
TEST(softmax_float32_accuracy_sweep) {
  enum { R = 3, C = 1003 };
  int64_t sh[2] = {R, C}, n = R * C;
  float *xs = malloc((size_t)n * sizeof *xs), *gs = malloc((size_t)n * sizeof *gs);
  double *want = malloc((size_t)n * sizeof *want), *dwant = malloc((size_t)n * sizeof *dwant);
  double *dmag = malloc((size_t)n * sizeof *dmag);
  for (int64_t i = 0; i < n; i++) {
    xs[i] = (float)(20 * sin(0.7 * (double)i + 0.3 * (double)(i / C)));
    gs[i] = (float)cos(1.3 * (double)i);
  }
  xs[2 * C + 5] = 1e30f;
  xs[2 * C + 6] = -1e30f;
  const bool verbose = getenv("LUCID_TEST_VERBOSE") != NULL;
  for (int log = 0; log < 2; log++) {
    for (int64_t r = 0; r < R; r++) {
      const float *x = xs + r * C, *g = gs + r * C;
      double m = -INFINITY, s = 0, sg = 0, sgy = 0;
      for (int i = 0; i < C; i++) m = fmax(m, x[i]);
      for (int i = 0; i < C; i++) s += exp(x[i] - m);
      for (int i = 0; i < C; i++) {
        double p = exp(x[i] - m) / s;
        want[r * C + i] = log ? (x[i] - m) - log1p(s - 1) : p;
        sg += g[i];
        sgy += g[i] * p;
      }
      for (int i = 0; i < C; i++) {
        double p = exp(x[i] - m) / s;
        dwant[r * C + i] = log ? g[i] - p * sg : p * (g[i] - sgy);
        dmag[r * C + i] = log ? fabs(g[i]) + p * fabs(sg) : p * (fabs(g[i]) + fabs(sgy));
      }
    }
    lc_tensor *x = NULL, *y = NULL, *gt = NULL;
    CHECK_OK(lc_from_data(2, sh, LC_FLOAT32, xs, &x));
    CHECK_OK(lc_from_data(2, sh, LC_FLOAT32, gs, &gt));
    lc_set_requires_grad(x, true);
    CHECK_OK(log ? lc_log_softmax(x, 1, &y) : lc_softmax(x, 1, &y));
    CHECK_OK(lc_backward(y, gt, false));
    double *v = y ? test_values(y) : NULL, *gx = lc_grad(x) ? test_values(lc_grad(x)) : NULL;
    CHECK(v && gx);
    if (v && gx) {
      int64_t af = 0, ab = 0;
      double ef = worst_rel(v, want, NULL, n, 1e-30, &af);
      double eb = worst_rel(gx, dwant, dmag, n, 1e-30, &ab);
      /* softmax: exp(x - max) inherits the rounding of x - max (|x - max| up to 40 here) */
      const double bf = log ? 2e-7 : 3e-6, bb = log ? 6e-7 : 3e-6;
      if (verbose || ef > bf || eb > bb)
        printf("  %s float32: worst relative error forward %.3g (at %lld), backward %.3g (at "
               "%lld)\n",
               log ? "log_softmax" : "softmax", ef, (long long)af, eb, (long long)ab);
      CHECK(ef <= bf);
      CHECK(eb <= bb);
    }
    free(v);
    free(gx);
    lc_release(x);
    lc_release(y);
    lc_release(gt);
  }
  free(xs);
  free(gs);
  free(want);
  free(dwant);
  free(dmag);
}

/* The list (src/kernels/activation_list.h) generates the op, the entry point, the module kind
 * and the descriptor of each row: they agree, and the generic entries reach the same ops. */
TEST(act_list_rows_agree) {
  int64_t n = 5;
  lc_tensor *x = NULL;
  CHECK_OK(lc_randn(1, &n, LC_FLOAT64, &x));
  for (int code = 0; code < LC_ACT_COUNT; code++) {
    const lc_act_desc *d = &lc_act_descs[code];
    CHECK(strcmp(d->name, lc_op_act[code].name) == 0);
    CHECK(lc_op_act[code].code == code);
    double p[2] = {d->params[0].def, d->params[1].def};
    lc_module *m = NULL;
    CHECK_OK(lc_nn_act_new(code, p, false, &m));
    CHECK(m && strcmp(lc_module_type_name(m), d->module) == 0);
    lc_tensor *a = NULL, *b = NULL;
    CHECK_OK(lc_act_apply(code, x, p, &a));
    CHECK_OK(lc_module_forward(m, x, &b));
    bool same = false;
    CHECK(a && b && lc_equal(a, b, &same) == LC_OK && same);
    lc_release(a);
    lc_release(b);
    lc_module_release(m);
  }
  lc_tensor *y = NULL;
  double p[2] = {0, 0};
  lc_module *m = NULL;
  CHECK_STATUS(lc_act_apply(LC_ACT_COUNT, x, p, &y), LC_EARG);
  CHECK_STATUS(lc_act_apply(-1, x, p, &y), LC_EARG);
  CHECK_STATUS(lc_nn_act_new(LC_ACT_COUNT, p, false, &m), LC_EARG);
  CHECK(y == NULL && m == NULL);
  /* module rules are the op's: checked once, at construction too */
  double bad[2] = {1, -1};
  CHECK_STATUS(lc_nn_act_new(LC_ACT_HARDTANH, bad, false, &m), LC_EARG);
  CHECK(msg_has("Hardtanh: max_val must be greater than or equal to min_val"));
  CHECK_STATUS(lc_nn_softplus(NAN, 20, &m), LC_EARG);
  CHECK(msg_has("Softplus: beta must be a non-zero number, got nan"));
  lc_release(x);
}
