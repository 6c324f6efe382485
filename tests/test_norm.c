/* test_norm.c - batch / layer / group / instance norm (lucid_norm.h): values
 * against float64 references computed here, running statistics, eval mode, the fused ReLU,
 * strided inputs, gradients against central differences (float64), the modules (printing,
 * buffers, forward errors) and every error path. Build alone with
 *   make ctest-one T="tests/test_norm.c tests/gradcheck.c" */
#include "lucid_norm.h"

#include "gradcheck.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- helpers */

static uint64_t rng = 0x243f6a8885a308d3ull;
static double urand(void) {
  rng = rng * 6364136223846793005ull + 1442695040888963407ull;
  return (double)(rng >> 11) / 9007199254740992.0;
}

/* A contiguous tensor of random values in [lo, hi). */
static lc_tensor *rnd(int nd, const int64_t *shape, lc_dtype dt, double lo, double hi) {
  int64_t n = 1;
  for (int d = 0; d < nd; d++)
    n *= shape[d];
  double *v = malloc((size_t)(n ? n : 1) * sizeof *v);
  for (int64_t i = 0; i < n; i++)
    v[i] = lo + (hi - lo) * urand();
  lc_tensor *t = NULL, *c = NULL;
  if (lc_from_data(nd, shape, LC_FLOAT64, v, &t) == LC_OK && lc_to_dtype(t, dt, &c) == LC_OK) {
  }
  lc_release(t);
  free(v);
  return c;
}

static lc_tensor *leaf(lc_tensor *t) {
  lc_set_requires_grad(t, true);
  return t;
}

static double max_abs_diff(const double *a, const double *b, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = fabs(a[i] - b[i]);
    if (d > m || d != d) m = d != d ? INFINITY : d;
  }
  return m;
}

/* Reference batch norm over x {N, C, S} (values v), training stats or given ones. */
static void ref_bn(const double *x, int64_t N, int64_t C, int64_t S, const double *w,
                   const double *b, const double *mean_in, const double *var_in, double eps,
                   bool relu, double *y, double *mean_out, double *var_out) {
  for (int64_t c = 0; c < C; c++) {
    double m = 0, v = 0;
    if (mean_in) {
      m = mean_in[c];
      v = var_in[c];
    } else {
      for (int64_t n = 0; n < N; n++)
        for (int64_t s = 0; s < S; s++)
          m += x[(n * C + c) * S + s];
      m /= (double)(N * S);
      for (int64_t n = 0; n < N; n++)
        for (int64_t s = 0; s < S; s++) {
          double d = x[(n * C + c) * S + s] - m;
          v += d * d;
        }
      v /= (double)(N * S);
    }
    if (mean_out) mean_out[c] = m;
    if (var_out) var_out[c] = v;
    for (int64_t n = 0; n < N; n++)
      for (int64_t s = 0; s < S; s++) {
        int64_t i = (n * C + c) * S + s;
        double r = (x[i] - m) / sqrt(v + eps) * (w ? w[c] : 1) + (b ? b[c] : 0);
        y[i] = relu && r < 0 ? 0 : r;
      }
  }
}

/* Reference row normalisation: R rows of D, parameter index (r % G) * Cg + j / S. */
static void ref_rows(const double *x, int64_t R, int64_t D, int64_t G, int64_t Cg, int64_t S,
                     const double *w, const double *b, double eps, double *y) {
  for (int64_t r = 0; r < R; r++) {
    double m = 0, v = 0;
    for (int64_t j = 0; j < D; j++)
      m += x[r * D + j];
    m /= (double)D;
    for (int64_t j = 0; j < D; j++)
      v += (x[r * D + j] - m) * (x[r * D + j] - m);
    v /= (double)D;
    for (int64_t j = 0; j < D; j++) {
      int64_t p = (r % G) * Cg + j / S;
      y[r * D + j] = (x[r * D + j] - m) / sqrt(v + eps) * (w ? w[p] : 1) + (b ? b[p] : 0);
    }
  }
  (void)Cg;
}

/* ---------------------------------------------------------------- batch norm values */

static void bn_case(int *failures_, int nd, const int64_t *shape, lc_dtype dt, bool affine,
                    bool relu) {
  int64_t N = shape[0], C = shape[1], S = 1;
  for (int d = 2; d < nd; d++)
    S *= shape[d];
  lc_tensor *x = rnd(nd, shape, dt, -2, 3), *w = NULL, *b = NULL, *rm = NULL, *rv = NULL, *y = NULL;
  if (affine) {
    w = rnd(1, &C, dt, 0.5, 1.5);
    b = rnd(1, &C, dt, -1, 1);
  }
  CHECK_OK(lc_zeros(1, &C, LC_FLOAT32, &rm));
  CHECK_OK(lc_ones(1, &C, LC_FLOAT32, &rv));
  lc_batch_norm_opts o = LC_BATCH_NORM_OPTS_INIT;
  o.weight = w;
  o.bias = b;
  o.running_mean = rm;
  o.running_var = rv;
  o.training = true;
  o.relu = relu;
  CHECK_OK(lc_batch_norm(x, &o, &y));
  double *xv = test_values(x), *yv = test_values(y), *wv = w ? test_values(w) : NULL,
         *bv = b ? test_values(b) : NULL;
  double *ref = malloc((size_t)lc_numel(x) * sizeof *ref), *mean = malloc((size_t)C * 8),
         *var = malloc((size_t)C * 8);
  ref_bn(xv, N, C, S, wv, bv, NULL, NULL, 1e-5, relu, ref, mean, var);
  double tol = dt == LC_FLOAT32 ? 2e-5 : 1e-12;
  CHECK(max_abs_diff(yv, ref, lc_numel(x)) <= tol);
  /* running stats: 0.9 * (0, 1) + 0.1 * (mean, unbiased var) */
  double *rmv = test_values(rm), *rvv = test_values(rv);
  double M = (double)(N * S);
  for (int64_t c = 0; c < C; c++) {
    CHECK_NEAR(rmv[c], 0.1 * mean[c], 1e-6);
    CHECK_NEAR(rvv[c], 0.9 + 0.1 * var[c] * M / (M - 1), 1e-6);
  }
  /* eval with the running stats */
  lc_tensor *ye = NULL;
  o.training = false;
  CHECK_OK(lc_batch_norm(x, &o, &ye));
  double *yev = test_values(ye);
  ref_bn(xv, N, C, S, wv, bv, rmv, rvv, 1e-5, relu, ref, NULL, NULL);
  CHECK(max_abs_diff(yev, ref, lc_numel(x)) <= tol * 10);
  free(xv), free(yv), free(wv), free(bv), free(ref), free(mean), free(var), free(rmv), free(rvv),
      free(yev);
  lc_release(x), lc_release(w), lc_release(b), lc_release(rm), lc_release(rv), lc_release(y),
      lc_release(ye);
}

TEST(norm_batch_norm_values) {
  int64_t s2[2] = {7, 5}, s3[3] = {4, 3, 6}, s4[4] = {3, 4, 5, 6}, big[2] = {40, 300};
  bn_case(failures_, 2, s2, LC_FLOAT32, true, false);
  bn_case(failures_, 2, s2, LC_FLOAT64, false, false);
  bn_case(failures_, 3, s3, LC_FLOAT32, true, true);
  bn_case(failures_, 4, s4, LC_FLOAT32, true, false);
  bn_case(failures_, 4, s4, LC_FLOAT64, true, true);
  bn_case(failures_, 2, big, LC_FLOAT32, true, false); /* channel blocks > 256 */
}

TEST(norm_batch_norm_large_parallel_matches_reference) {
  int64_t shape[4] = {16, 8, 32, 32};
  bn_case(failures_, 4, shape, LC_FLOAT32, true, false);
}

TEST(norm_batch_norm_large_mean_is_stable) {
  /* values around 1e4 with spread 1: the shifted sums keep the variance exact enough */
  int64_t shape[2] = {64, 3}, C = 3;
  lc_tensor *x = rnd(2, shape, LC_FLOAT32, 1e4, 1e4 + 1), *y = NULL;
  lc_batch_norm_opts o = LC_BATCH_NORM_OPTS_INIT;
  o.training = true;
  CHECK_OK(lc_batch_norm(x, &o, &y));
  double *xv = test_values(x), *yv = test_values(y), ref[192];
  ref_bn(xv, 64, C, 1, NULL, NULL, NULL, NULL, 1e-5, false, ref, NULL, NULL);
  CHECK(max_abs_diff(yv, ref, 192) <= 1e-3);
  free(xv), free(yv);
  lc_release(x), lc_release(y);
}

TEST(norm_batch_norm_strided_input) {
  int64_t shape[4] = {3, 5, 4, 2};
  lc_tensor *x = rnd(4, shape, LC_FLOAT64, -1, 1), *xt = NULL, *xc = NULL, *y1 = NULL, *y2 = NULL;
  int perm[4] = {0, 1, 3, 2};
  CHECK_OK(lc_permute(x, perm, &xt)); /* {3, 5, 2, 4}, not contiguous */
  CHECK(!lc_is_contiguous(xt));
  CHECK_OK(lc_contiguous(xt, &xc));
  lc_batch_norm_opts o = LC_BATCH_NORM_OPTS_INIT;
  o.training = true;
  CHECK_OK(lc_batch_norm(xt, &o, &y1));
  CHECK_OK(lc_batch_norm(xc, &o, &y2));
  bool same = false;
  CHECK_OK(lc_allclose(y1, y2, 1e-12, 1e-12, &same));
  CHECK(same);
  lc_release(x), lc_release(xt), lc_release(xc), lc_release(y1), lc_release(y2);
}

/* ---------------------------------------------------------------- gradients */

typedef struct gctx {
  int which;
  bool training, relu;
  lc_tensor *rm, *rv;
} gctx;

static lc_status f_bn(void *vctx, lc_tensor *const *in, lc_tensor **out) {
  gctx *c = vctx;
  lc_batch_norm_opts o = LC_BATCH_NORM_OPTS_INIT;
  o.weight = in[1];
  o.bias = in[2];
  o.training = c->training;
  o.relu = c->relu;
  o.running_mean = c->training ? NULL : c->rm;
  o.running_var = c->training ? NULL : c->rv;
  return lc_batch_norm(in[0], &o, out);
}

static void check_grad(int *failures_, gradcheck_fn f, void *ctx, int n, lc_tensor *const *in) {
  char msg[512];
  int ok = gradcheck(f, ctx, n, in, 1e-6, 1e-6, 1e-4, msg, sizeof msg);
  if (!ok) printf("  gradcheck: %s\n", msg);
  CHECK(ok);
}

TEST(norm_batch_norm_gradcheck) {
  int64_t s4[4] = {3, 2, 3, 2}, s2[2] = {5, 3}, C4 = 2, C2 = 3;
  for (int k = 0; k < 2; k++) {
    int nd = k ? 2 : 4;
    const int64_t *shape = k ? s2 : s4;
    int64_t C = k ? C2 : C4;
    lc_tensor *x = leaf(rnd(nd, shape, LC_FLOAT64, -1, 2));
    lc_tensor *w = leaf(rnd(1, &C, LC_FLOAT64, 0.5, 1.5)), *b = leaf(rnd(1, &C, LC_FLOAT64, -1, 1));
    lc_tensor *rm = rnd(1, &C, LC_FLOAT64, -0.5, 0.5), *rv = rnd(1, &C, LC_FLOAT64, 0.5, 2);
    lc_tensor *in[3] = {x, w, b};
    gctx train = {0, true, false, NULL, NULL}, eval = {0, false, false, rm, rv},
         relu = {0, true, true, NULL, NULL};
    check_grad(failures_, f_bn, &train, 3, in);
    check_grad(failures_, f_bn, &eval, 3, in);
    check_grad(failures_, f_bn, &relu, 3, in);
    lc_release(x), lc_release(w), lc_release(b), lc_release(rm), lc_release(rv);
  }
}

static lc_status f_bn_noaffine(void *vctx, lc_tensor *const *in, lc_tensor **out) {
  (void)vctx;
  lc_batch_norm_opts o = LC_BATCH_NORM_OPTS_INIT;
  o.training = true;
  return lc_batch_norm(in[0], &o, out);
}

TEST(norm_batch_norm_gradcheck_no_affine) {
  int64_t s[3] = {4, 3, 5};
  lc_tensor *x = leaf(rnd(3, s, LC_FLOAT64, -1, 1));
  check_grad(failures_, f_bn_noaffine, NULL, 1, &x);
  lc_release(x);
}

TEST(norm_batch_norm_records_and_only_needed_grads) {
  int64_t s[2] = {4, 3}, C = 3;
  lc_tensor *x = rnd(2, s, LC_FLOAT32, -1, 1), *w = leaf(rnd(1, &C, LC_FLOAT32, 0.5, 1.5)),
            *y = NULL, *sum = NULL;
  lc_batch_norm_opts o = LC_BATCH_NORM_OPTS_INIT;
  o.weight = w;
  o.training = true;
  CHECK_OK(lc_batch_norm(x, &o, &y));
  CHECK(lc_grad_fn_name(y) && !strcmp(lc_grad_fn_name(y), "BatchNormBackward"));
  CHECK_OK(lc_reduce(LC_SUM, y, NULL, &sum));
  CHECK_OK(lc_backward(sum, NULL, false));
  CHECK(lc_grad(w) != NULL);
  CHECK(lc_grad(x) == NULL);
  /* no grad anywhere: no graph */
  lc_tensor *y2 = NULL;
  o.weight = NULL;
  CHECK_OK(lc_batch_norm(x, &o, &y2));
  CHECK(lc_grad_fn_name(y2) == NULL);
  o.relu = true;
  o.weight = w;
  lc_tensor *y3 = NULL;
  CHECK_OK(lc_batch_norm(x, &o, &y3));
  CHECK(!strcmp(lc_grad_fn_name(y3), "BatchNormReluBackward"));
  double *v = test_values(y3);
  for (int i = 0; i < 12; i++)
    CHECK(v[i] >= 0);
  free(v);
  lc_release(x), lc_release(w), lc_release(y), lc_release(sum), lc_release(y2), lc_release(y3);
}

/* ---------------------------------------------------------------- layer / group / instance */

TEST(norm_layer_norm_values) {
  int64_t shape[3] = {2, 3, 4}, ns[2] = {3, 4};
  lc_tensor *x = rnd(3, shape, LC_FLOAT32, -2, 2), *w = rnd(2, ns, LC_FLOAT32, 0.5, 1.5),
            *b = rnd(2, ns, LC_FLOAT32, -1, 1), *y = NULL, *y1 = NULL;
  CHECK_OK(lc_layer_norm(x, 2, ns, w, b, 1e-5, &y));
  CHECK_OK(lc_layer_norm(x, 1, ns + 1, NULL, NULL, 1e-5, &y1));
  double *xv = test_values(x), *wv = test_values(w), *bv = test_values(b), *yv = test_values(y),
         *y1v = test_values(y1), ref[24];
  ref_rows(xv, 2, 12, 1, 12, 1, wv, bv, 1e-5, ref);
  CHECK(max_abs_diff(yv, ref, 24) <= 2e-5);
  ref_rows(xv, 6, 4, 1, 4, 1, NULL, NULL, 1e-5, ref);
  CHECK(max_abs_diff(y1v, ref, 24) <= 2e-5);
  free(xv), free(wv), free(bv), free(yv), free(y1v);
  lc_release(x), lc_release(w), lc_release(b), lc_release(y), lc_release(y1);
}

TEST(norm_group_instance_values) {
  int64_t shape[4] = {2, 6, 3, 2}, C = 6;
  lc_tensor *x = rnd(4, shape, LC_FLOAT64, -2, 2), *w = rnd(1, &C, LC_FLOAT64, 0.5, 1.5),
            *b = rnd(1, &C, LC_FLOAT64, -1, 1), *y = NULL, *yi = NULL;
  CHECK_OK(lc_group_norm(x, 3, w, b, 1e-5, &y));
  lc_instance_norm_opts io = LC_INSTANCE_NORM_OPTS_INIT;
  io.weight = w;
  io.bias = b;
  CHECK_OK(lc_instance_norm(x, &io, &yi));
  double *xv = test_values(x), *wv = test_values(w), *bv = test_values(b), *yv = test_values(y),
         *yiv = test_values(yi), ref[72];
  ref_rows(xv, 6, 12, 3, 2, 6, wv, bv, 1e-5, ref);
  CHECK(max_abs_diff(yv, ref, 72) <= 1e-12);
  ref_rows(xv, 12, 6, 6, 1, 6, wv, bv, 1e-5, ref);
  CHECK(max_abs_diff(yiv, ref, 72) <= 1e-12);
  free(xv), free(wv), free(bv), free(yv), free(yiv);
  lc_release(x), lc_release(w), lc_release(b), lc_release(y), lc_release(yi);
}

TEST(norm_instance_norm_running_stats) {
  int64_t shape[3] = {3, 2, 5}, C = 2;
  lc_tensor *x = rnd(3, shape, LC_FLOAT64, -1, 3), *rm = NULL, *rv = NULL, *y = NULL, *ye = NULL;
  CHECK_OK(lc_zeros(1, &C, LC_FLOAT64, &rm));
  CHECK_OK(lc_ones(1, &C, LC_FLOAT64, &rv));
  lc_instance_norm_opts o = LC_INSTANCE_NORM_OPTS_INIT;
  o.running_mean = rm;
  o.running_var = rv;
  o.momentum = 0.5;
  CHECK_OK(lc_instance_norm(x, &o, &y));
  double *xv = test_values(x), *rmv = test_values(rm), *rvv = test_values(rv);
  for (int64_t c = 0; c < C; c++) {
    double am = 0, av = 0;
    for (int64_t n = 0; n < 3; n++) {
      double m = 0, v = 0;
      for (int s = 0; s < 5; s++)
        m += xv[(n * 2 + c) * 5 + s] / 5;
      for (int s = 0; s < 5; s++)
        v += pow(xv[(n * 2 + c) * 5 + s] - m, 2) / 4;
      am += m / 3;
      av += v / 3;
    }
    CHECK_NEAR(rmv[c], 0.5 * am, 1e-12);
    CHECK_NEAR(rvv[c], 0.5 + 0.5 * av, 1e-12);
  }
  o.use_input_stats = false;
  CHECK_OK(lc_instance_norm(x, &o, &ye));
  double *yev = test_values(ye), ref[30];
  ref_bn(xv, 3, 2, 5, NULL, NULL, rmv, rvv, 1e-5, false, ref, NULL, NULL);
  CHECK(max_abs_diff(yev, ref, 30) <= 1e-12);
  free(xv), free(rmv), free(rvv), free(yev);
  lc_release(x), lc_release(rm), lc_release(rv), lc_release(y), lc_release(ye);
}

static lc_status f_ln(void *vctx, lc_tensor *const *in, lc_tensor **out) {
  int64_t ns[2] = {3, 4};
  int k = *(int *)vctx;
  return lc_layer_norm(in[0], k, ns + 2 - k, k == 2 ? in[1] : NULL, k == 2 ? in[2] : NULL, 1e-5,
                       out);
}
static lc_status f_gn(void *vctx, lc_tensor *const *in, lc_tensor **out) {
  return lc_group_norm(in[0], *(int *)vctx, in[1], in[2], 1e-5, out);
}
static lc_status f_in(void *vctx, lc_tensor *const *in, lc_tensor **out) {
  (void)vctx;
  lc_instance_norm_opts o = LC_INSTANCE_NORM_OPTS_INIT;
  o.weight = in[1];
  o.bias = in[2];
  return lc_instance_norm(in[0], &o, out);
}

TEST(norm_row_norms_gradcheck) {
  int64_t s3[3] = {2, 3, 4}, ns[2] = {3, 4}, s4[4] = {2, 4, 3, 2}, C = 4;
  lc_tensor *x = leaf(rnd(3, s3, LC_FLOAT64, -1, 2)), *w = leaf(rnd(2, ns, LC_FLOAT64, 0.5, 1.5)),
            *b = leaf(rnd(2, ns, LC_FLOAT64, -1, 1));
  lc_tensor *in[3] = {x, w, b};
  int two = 2, one = 1;
  check_grad(failures_, f_ln, &two, 3, in);
  check_grad(failures_, f_ln, &one, 1, in);
  lc_tensor *x4 = leaf(rnd(4, s4, LC_FLOAT64, -1, 2)), *wc = leaf(rnd(1, &C, LC_FLOAT64, 0.5, 1.5)),
            *bc = leaf(rnd(1, &C, LC_FLOAT64, -1, 1));
  lc_tensor *in4[3] = {x4, wc, bc};
  int g2 = 2, g1 = 1;
  check_grad(failures_, f_gn, &g2, 3, in4);
  check_grad(failures_, f_gn, &g1, 3, in4);
  check_grad(failures_, f_in, NULL, 3, in4);
  /* group norm on {N, C} (runs of one element) */
  int64_t s2[2] = {3, 4};
  lc_tensor *x2 = leaf(rnd(2, s2, LC_FLOAT64, -1, 2));
  lc_tensor *in2[3] = {x2, wc, bc};
  check_grad(failures_, f_gn, &g2, 3, in2);
  lc_release(x), lc_release(w), lc_release(b), lc_release(x4), lc_release(wc), lc_release(bc),
      lc_release(x2);
}

/* ---------------------------------------------------------------- errors */

TEST(norm_function_errors) {
  int64_t s[4] = {1, 3, 1, 1}, s2[2] = {4, 3}, C = 3, C2 = 2;
  lc_tensor *x = rnd(4, s, LC_FLOAT32, 0, 1), *x2 = rnd(2, s2, LC_FLOAT32, 0, 1), *xi = NULL,
            *w2 = rnd(1, &C2, LC_FLOAT32, 0, 1), *w64 = rnd(1, &C, LC_FLOAT64, 0, 1), *y = NULL;
  CHECK_OK(lc_zeros(2, s2, LC_INT64, &xi));
  lc_batch_norm_opts o = LC_BATCH_NORM_OPTS_INIT;
  o.training = true;
  CHECK_STATUS(lc_batch_norm(x, &o, &y), LC_ESHAPE); /* one value per channel */
  CHECK(strstr(lc_last_error(), "more than 1 value per channel") &&
        strstr(lc_last_error(), "{1, 3, 1, 1}"));
  CHECK_STATUS(lc_batch_norm(xi, &o, &y), LC_EDTYPE);
  o.weight = w2;
  CHECK_STATUS(lc_batch_norm(x2, &o, &y), LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "weight of shape {3}, got {2}"));
  o.weight = w64;
  CHECK_STATUS(lc_batch_norm(x2, &o, &y), LC_EDTYPE);
  o.weight = NULL;
  o.training = false;
  CHECK_STATUS(lc_batch_norm(x2, &o, &y), LC_EARG); /* eval without running stats */
  CHECK_STATUS(lc_batch_norm(x2, NULL, &y), LC_EARG);
  int64_t ns[1] = {4};
  CHECK_STATUS(lc_layer_norm(x2, 1, ns, NULL, NULL, 1e-5, &y), LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "layer_norm") && strstr(lc_last_error(), "{4, 3}"));
  CHECK_STATUS(lc_layer_norm(x2, 0, ns, NULL, NULL, 1e-5, &y), LC_EARG);
  CHECK_STATUS(lc_group_norm(x2, 2, NULL, NULL, 1e-5, &y), LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "divisible"));
  CHECK_STATUS(lc_group_norm(x2, 0, NULL, NULL, 1e-5, &y), LC_EARG);
  CHECK_STATUS(lc_instance_norm(x2, NULL, &y), LC_ESHAPE); /* one spatial element */
  lc_instance_norm_opts io = LC_INSTANCE_NORM_OPTS_INIT;
  io.use_input_stats = false;
  CHECK_STATUS(lc_instance_norm(x, &io, &y), LC_EARG);
  lc_interpolate_opts bad = {LC_INTERP_NEAREST, 1, {4, 0}, 0, {0, 0}, true};
  CHECK_STATUS(lc_interpolate(x, &bad, &y), LC_EARG); /* align_corners with nearest */
  lc_interpolate_opts both = {LC_INTERP_NEAREST, 1, {4, 0}, 1, {2, 0}, false};
  CHECK_STATUS(lc_interpolate(x, &both, &y), LC_EARG);
  lc_interpolate_opts bil = {LC_INTERP_BILINEAR, 1, {4, 0}, 0, {0, 0}, false};
  CHECK_STATUS(lc_interpolate(x2, &bil, &y), LC_ESHAPE);
  lc_interpolate_opts neg = {LC_INTERP_NEAREST, 0, {0, 0}, 1, {-1, 0}, false};
  CHECK_STATUS(lc_interpolate(x, &neg, &y), LC_EARG);
  CHECK(y == NULL);
  /* the runtime keeps working after the errors */
  o.training = true;
  CHECK_OK(lc_batch_norm(x2, &o, &y));
  lc_release(y);
  lc_release(x), lc_release(x2), lc_release(xi), lc_release(w2), lc_release(w64);
}

/* ---------------------------------------------------------------- modules */

static char *repr(lc_module *m) {
  char *s = NULL;
  if (lc_module_to_string(m, &s) != LC_OK) return NULL;
  return s;
}

TEST(norm_modules_print) {
  lc_module *bn = NULL, *bn1 = NULL, *ln = NULL, *gn = NULL, *in = NULL, *up = NULL, *up2 = NULL;
  int64_t ns[2] = {3, 4};
  CHECK_OK(lc_nn_batch_norm2d(16, 1e-5, 0.1, true, true, &bn));
  CHECK_OK(lc_nn_batch_norm1d(8, 1e-3, LC_MOMENTUM_CUMULATIVE, false, true, &bn1));
  CHECK_OK(lc_nn_layer_norm(2, ns, 1e-5, true, &ln));
  CHECK_OK(lc_nn_group_norm(2, 4, 1e-5, true, &gn));
  CHECK_OK(lc_nn_instance_norm2d(3, 1e-5, 0.1, false, false, &in));
  lc_interpolate_opts o = {LC_INTERP_NEAREST, 0, {0, 0}, 1, {2, 0}, false};
  lc_interpolate_opts o2 = {LC_INTERP_BILINEAR, 2, {4, 6}, 0, {0, 0}, true};
  CHECK_OK(lc_nn_upsample(&o, &up));
  CHECK_OK(lc_nn_upsample(&o2, &up2));
  const struct {
    lc_module *m;
    const char *want;
  } cases[] = {
      {bn, "BatchNorm2d(16, eps=1e-05, momentum=0.1, affine=true, track_running_stats=true)"},
      {bn1, "BatchNorm1d(8, eps=0.001, momentum=false, affine=false, track_running_stats=true)"},
      {ln, "LayerNorm((3, 4), eps=1e-05, elementwise_affine=true)"},
      {gn, "GroupNorm(2, 4, eps=1e-05, affine=true)"},
      {in, "InstanceNorm2d(3, eps=1e-05, momentum=0.1, affine=false, track_running_stats=false)"},
      {up, "Upsample(scale_factor=2.0, mode='nearest')"},
      {up2, "Upsample(size=(4, 6), mode='bilinear')"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *s = repr(cases[i].m);
    CHECK(s && !strcmp(s, cases[i].want));
    if (s && strcmp(s, cases[i].want)) printf("  got %s\n", s);
    lc_free(s);
  }
  lc_attr a;
  CHECK(lc_module_attr(bn, "num_features", &a) && a.i == 16);
  CHECK(lc_module_attr(bn, "momentum", &a) && a.f == 0.1);
  CHECK(!lc_module_attr(bn1, "momentum", &a));
  CHECK(lc_module_attr(gn, "num_groups", &a) && a.i == 2);
  CHECK(lc_module_attr(up2, "align_corners", &a) && a.b);
  CHECK(lc_module_num_parameters(bn) == 32 && lc_module_num_parameters(bn1) == 0);
  CHECK(lc_module_num_parameters(ln) == 24);
  CHECK(lc_module_num_own_buffers(in) == 0 && lc_module_num_own_buffers(bn) == 3);
  lc_module_release(bn), lc_module_release(bn1), lc_module_release(ln), lc_module_release(gn),
      lc_module_release(in), lc_module_release(up), lc_module_release(up2);
}

TEST(norm_batch_norm_module_running_stats) {
  /* momentum 0.1: after k steps on the same batch, rm = (1 - 0.9^k) mean; cumulative: the
   * plain average, i.e. the mean itself */
  lc_module *bn = NULL, *cum = NULL;
  CHECK_OK(lc_nn_batch_norm1d(3, 1e-5, 0.1, true, true, &bn));
  CHECK_OK(lc_nn_batch_norm1d(3, 1e-5, LC_MOMENTUM_CUMULATIVE, true, true, &cum));
  int64_t s[3] = {4, 3, 2};
  lc_tensor *x = rnd(3, s, LC_FLOAT32, -1, 3);
  double *xv = test_values(x), ref[24], mean[3], var[3];
  ref_bn(xv, 4, 3, 2, NULL, NULL, NULL, NULL, 1e-5, false, ref, mean, var);
  for (int k = 0; k < 3; k++) {
    lc_tensor *y = NULL, *y2 = NULL;
    CHECK_OK(lc_module_forward(bn, x, &y));
    CHECK_OK(lc_module_forward(cum, x, &y2));
    lc_release(y), lc_release(y2);
  }
  lc_tensor *rm = lc_module_own_buffer(bn, lc_module_find_buffer(bn, "running_mean"));
  lc_tensor *rv = lc_module_own_buffer(bn, lc_module_find_buffer(bn, "running_var"));
  lc_tensor *nbt = lc_module_own_buffer(bn, lc_module_find_buffer(bn, "num_batches_tracked"));
  lc_tensor *crm = lc_module_own_buffer(cum, lc_module_find_buffer(cum, "running_mean"));
  double *rmv = test_values(rm), *rvv = test_values(rv), *crmv = test_values(crm);
  int64_t k = 0;
  CHECK_OK(lc_item_int64(nbt, &k));
  CHECK(k == 3 && lc_dtype_of(nbt) == LC_INT64 && lc_ndim(nbt) == 0);
  double f = 1 - pow(0.9, 3);
  for (int c = 0; c < 3; c++) {
    CHECK_NEAR(rmv[c], f * mean[c], 1e-5);
    CHECK_NEAR(rvv[c], pow(0.9, 3) + f * var[c] * 8 / 7, 1e-5);
    CHECK_NEAR(crmv[c], mean[c], 1e-5);
  }
  /* eval: running stats; outputs differ from the training ones */
  lc_module_train(bn, false);
  lc_tensor *ye = NULL;
  CHECK_OK(lc_module_forward(bn, x, &ye));
  double *yev = test_values(ye), want[24];
  ref_bn(xv, 4, 3, 2, NULL, NULL, rmv, rvv, 1e-5, false, want, NULL, NULL);
  CHECK(max_abs_diff(yev, want, 24) <= 1e-5);
  CHECK_OK(lc_item_int64(nbt, &k));
  CHECK(k == 3);
  /* reset_parameters restores the running stats */
  CHECK_OK(lc_module_reset_parameters(bn));
  double *after = test_values(rm);
  CHECK(after[0] == 0 && after[2] == 0);
  free(xv), free(rmv), free(rvv), free(crmv), free(yev), free(after);
  lc_release(x), lc_release(ye);
  lc_module_release(bn), lc_module_release(cum);
}

TEST(norm_module_forward_errors) {
  lc_module *bn = NULL, *bn1 = NULL, *ln = NULL, *gn = NULL, *in = NULL, *seq = NULL;
  int64_t ns[1] = {4};
  CHECK_OK(lc_nn_batch_norm2d(16, 1e-5, 0.1, true, true, &bn));
  CHECK_OK(lc_nn_batch_norm1d(16, 1e-5, 0.1, true, true, &bn1));
  CHECK_OK(lc_nn_layer_norm(1, ns, 1e-5, true, &ln));
  CHECK_OK(lc_nn_group_norm(2, 4, 1e-5, true, &gn));
  CHECK_OK(lc_nn_instance_norm2d(3, 1e-5, 0.1, false, false, &in));
  int64_t s8[4] = {2, 8, 4, 4}, s3[3] = {2, 16, 4}, s1[2] = {1, 16}, s5[2] = {2, 5};
  lc_tensor *x8 = rnd(4, s8, LC_FLOAT32, 0, 1), *x3 = rnd(3, s3, LC_FLOAT32, 0, 1),
            *x1 = rnd(2, s1, LC_FLOAT32, 0, 1), *x5 = rnd(2, s5, LC_FLOAT32, 0, 1), *y = NULL;
  CHECK_STATUS(lc_module_forward(bn, x8, &y), LC_ESHAPE);
  CHECK(!strcmp(lc_last_error(),
                "BatchNorm2d: expected input with 16 channels, got 8: input shape {2, 8, 4, 4}"));
  CHECK_STATUS(lc_module_forward(bn, x3, &y), LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "BatchNorm2d: expected a 4-D") &&
        strstr(lc_last_error(), "{2, 16, 4}"));
  CHECK_STATUS(lc_module_forward(bn1, x1, &y), LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "more than 1 value per channel") &&
        strstr(lc_last_error(), "{1, 16}"));
  CHECK_STATUS(lc_module_forward(ln, x5, &y), LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "LayerNorm: expected input with trailing dims {4}"));
  CHECK_STATUS(lc_module_forward(gn, x5, &y), LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "GroupNorm: expected input with 4 channels, got 5"));
  CHECK_STATUS(lc_module_forward(in, x8, &y), LC_ESHAPE);
  /* in a container: the path */
  lc_module *mods[1] = {bn};
  const char *names[1] = {"bn1"};
  CHECK_OK(lc_nn_sequential(1, mods, names, &seq));
  CHECK_STATUS(lc_module_forward(seq, x8, &y), LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "Sequential.bn1 (BatchNorm2d): expected input with 16 channels"));
  /* a batch of 1 is fine in eval mode */
  lc_module_train(bn1, false);
  CHECK_OK(lc_module_forward(bn1, x1, &y));
  lc_release(y);
  /* unbatched instance norm input {C, H, W} */
  int64_t su[3] = {3, 4, 5};
  lc_tensor *xu = rnd(3, su, LC_FLOAT32, 0, 1);
  y = NULL;
  CHECK_OK(lc_module_forward(in, xu, &y));
  CHECK(y && lc_ndim(y) == 3);
  lc_release(y);
  /* constructor errors */
  lc_module *bad = NULL;
  CHECK_STATUS(lc_nn_batch_norm2d(0, 1e-5, 0.1, true, true, &bad), LC_EARG);
  CHECK_STATUS(lc_nn_group_norm(3, 4, 1e-5, true, &bad), LC_EARG);
  CHECK_STATUS(lc_nn_layer_norm(0, ns, 1e-5, true, &bad), LC_EARG);
  CHECK_STATUS(lc_nn_instance_norm2d(3, 1e-5, -1, false, false, &bad), LC_EARG);
  lc_interpolate_opts none = {LC_INTERP_NEAREST, 0, {0, 0}, 0, {0, 0}, false};
  CHECK_STATUS(lc_nn_upsample(&none, &bad), LC_EARG);
  CHECK(bad == NULL);
  lc_release(x8), lc_release(x3), lc_release(x1), lc_release(x5), lc_release(xu);
  lc_module_release(bn), lc_module_release(bn1), lc_module_release(ln), lc_module_release(gn),
      lc_module_release(in), lc_module_release(seq);
}

/* normalized_shape's rule has one owner (src/ops/norm.c), for the function and the module: 1..16
 * sizes, each >= 1, the failing entry marked (0-based in C) */
TEST(norm_normalized_shape_rule) {
  int64_t s[2] = {4, 3}, ns[2] = {3, 0}, neg[1] = {-2}, many[LC_MAX_DIMS + 1];
  for (int k = 0; k <= LC_MAX_DIMS; k++)
    many[k] = 1;
  lc_tensor *x = rnd(2, s, LC_FLOAT32, 0, 1), *y = NULL;
  lc_module *m = NULL;
  CHECK_STATUS(lc_layer_norm(x, 1, ns + 1, NULL, NULL, 1e-5, &y), LC_EARG);
  CHECK(!strcmp(lc_last_error(), "layer_norm: normalized_shape[0] must be >= 1, got 0"));
  CHECK(!strcmp(lc_last_error_marked(), "layer_norm: normalized_shape[" LC_POS_MARK "0" LC_POS_MARK
                                        "] must be >= 1, got 0"));
  CHECK_STATUS(lc_layer_norm(x, 1, neg, NULL, NULL, 1e-5, &y), LC_EARG);
  CHECK(!strcmp(lc_last_error(), "layer_norm: normalized_shape[0] must be >= 1, got -2"));
  CHECK_STATUS(lc_layer_norm(x, 0, ns, NULL, NULL, 1e-5, &y), LC_EARG);
  CHECK(!strcmp(lc_last_error(), "layer_norm: normalized_shape must have 1..16 dims, got 0"));
  CHECK_STATUS(lc_layer_norm(x, LC_MAX_DIMS + 1, many, NULL, NULL, 1e-5, &y), LC_EARG);
  CHECK(!strcmp(lc_last_error(), "layer_norm: normalized_shape must have 1..16 dims, got 17"));
  CHECK_STATUS(lc_nn_layer_norm(2, ns, 1e-5, true, &m), LC_EARG);
  CHECK(!strcmp(lc_last_error(), "LayerNorm: normalized_shape[1] must be >= 1, got 0"));
  CHECK_STATUS(lc_nn_layer_norm(LC_MAX_DIMS + 1, many, 1e-5, true, &m), LC_EARG);
  CHECK(!strcmp(lc_last_error(), "LayerNorm: normalized_shape must have 1..16 dims, got 17"));
  CHECK(y == NULL && m == NULL);
  /* the other constructor rules the Lua classes no longer repeat */
  CHECK_STATUS(lc_nn_group_norm(0, 6, 1e-5, true, &m), LC_EARG);
  CHECK(
      !strcmp(lc_last_error(), "GroupNorm: num_groups and num_channels must be >= 1, got 0 and 6"));
  CHECK_STATUS(lc_nn_batch_norm1d(0, 1e-5, 0.1, true, true, &m), LC_EARG);
  CHECK(!strcmp(lc_last_error(), "BatchNorm1d: num_features must be >= 1, got 0"));
  CHECK(m == NULL);
  lc_release(x);
}

TEST(norm_module_gradients_reach_parameters) {
  lc_module *bn = NULL;
  CHECK_OK(lc_nn_batch_norm2d(2, 1e-5, 0.1, true, true, &bn));
  int64_t s[4] = {2, 2, 3, 3};
  lc_tensor *x = leaf(rnd(4, s, LC_FLOAT32, -1, 1)), *y = NULL, *g = rnd(4, s, LC_FLOAT32, -1, 1);
  CHECK_OK(lc_module_forward(bn, x, &y));
  CHECK_OK(lc_backward(y, g, false));
  lc_tensor *w = lc_module_own_parameter(bn, lc_module_find_parameter(bn, "weight"));
  lc_tensor *b = lc_module_own_parameter(bn, lc_module_find_parameter(bn, "bias"));
  CHECK(lc_grad(w) && lc_grad(b) && lc_grad(x));
  /* db = sum of g per channel */
  double *gv = test_values(g), *dbv = test_values(lc_grad(b));
  for (int c = 0; c < 2; c++) {
    double sum = 0;
    for (int n = 0; n < 2; n++)
      for (int k = 0; k < 9; k++)
        sum += gv[(n * 2 + c) * 9 + k];
    CHECK_NEAR(dbv[c], sum, 1e-5);
  }
  free(gv), free(dbv);
  lc_release(x), lc_release(y), lc_release(g);
  lc_module_release(bn);
}

/* Updating running statistics must not disturb what backward saved (the {2, C} statistics). */
static void grads_with_running(int *failures_, bool instance) {
  int64_t s[4] = {3, 2, 2, 3}, C = 2;
  lc_tensor *x = leaf(rnd(4, s, LC_FLOAT64, -1, 2)), *g = rnd(4, s, LC_FLOAT64, -1, 1);
  lc_tensor *grads[2] = {NULL, NULL};
  for (int k = 0; k < 2; k++) {
    lc_tensor *rm = NULL, *rv = NULL, *y = NULL;
    CHECK_OK(lc_zeros(1, &C, LC_FLOAT64, &rm));
    CHECK_OK(lc_ones(1, &C, LC_FLOAT64, &rv));
    if (instance) {
      lc_instance_norm_opts o = LC_INSTANCE_NORM_OPTS_INIT;
      o.running_mean = k ? rm : NULL;
      o.running_var = k ? rv : NULL;
      CHECK_OK(lc_instance_norm(x, &o, &y));
    } else {
      lc_batch_norm_opts o = LC_BATCH_NORM_OPTS_INIT;
      o.training = true;
      o.running_mean = k ? rm : NULL;
      o.running_var = k ? rv : NULL;
      CHECK_OK(lc_batch_norm(x, &o, &y));
    }
    lc_tensor *in[1] = {x}, *gs[1] = {g};
    CHECK_OK(lc_autograd_grad(1, &y, gs, 1, in, false, false, &grads[k]));
    lc_release(rm), lc_release(rv), lc_release(y);
  }
  bool same = false;
  CHECK_OK(lc_allclose(grads[0], grads[1], 1e-12, 1e-12, &same));
  CHECK(same);
  lc_release(grads[0]), lc_release(grads[1]), lc_release(x), lc_release(g);
}

TEST(norm_running_update_keeps_saved_stats) {
  grads_with_running(failures_, false);
  grads_with_running(failures_, true);
}
