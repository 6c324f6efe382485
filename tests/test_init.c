/* test_init.c - nn.init and nn.utils of include/lucid_init.h: statistics of the random
 * initialisers on large tensors, orthogonality, gains and fans, in-place semantics on
 * parameters (versions bumped, grad mode restored), gradient clipping, parameters <-> vector,
 * and error cases. */
#include "lucid_init.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

static lc_tensor *param(int nd, const int64_t *shape, lc_dtype dt) {
  lc_tensor *t = NULL;
  if (lc_zeros(nd, shape, dt, &t)) return NULL;
  lc_set_requires_grad(t, true);
  return t;
}

static void stats(const lc_tensor *t, double *mean, double *std, double *lo, double *hi) {
  double *v = test_values(t);
  int64_t n = lc_numel(t);
  double s = 0, s2 = 0;
  *lo = INFINITY;
  *hi = -INFINITY;
  for (int64_t i = 0; v && i < n; i++) {
    s += v[i];
    *lo = fmin(*lo, v[i]);
    *hi = fmax(*hi, v[i]);
  }
  *mean = s / (double)n;
  for (int64_t i = 0; v && i < n; i++)
    s2 += (v[i] - *mean) * (v[i] - *mean);
  *std = sqrt(s2 / (double)(n - 1));
  free(v);
}

TEST(init_calculate_gain_table) {
  double g = 0;
  const char *ones[] = {"linear",           "conv1d",           "conv2d",           "conv3d",
                        "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "sigmoid"};
  for (int i = 0; i < 8; i++) {
    CHECK_OK(lc_init_calculate_gain(ones[i], false, 0, &g));
    CHECK(g == 1.0);
  }
  CHECK_OK(lc_init_calculate_gain("tanh", false, 0, &g));
  CHECK_NEAR(g, 5.0 / 3.0, 1e-15);
  CHECK_OK(lc_init_calculate_gain("relu", false, 0, &g));
  CHECK_NEAR(g, sqrt(2.0), 1e-15);
  CHECK_OK(lc_init_calculate_gain("selu", false, 0, &g));
  CHECK_NEAR(g, 0.75, 1e-15);
  CHECK_OK(lc_init_calculate_gain("leaky_relu", false, 0, &g));
  CHECK_NEAR(g, sqrt(2.0 / (1 + 0.01 * 0.01)), 1e-15);
  CHECK_OK(lc_init_calculate_gain("leaky_relu", true, 0.2, &g));
  CHECK_NEAR(g, sqrt(2.0 / 1.04), 1e-15);
  CHECK_STATUS(lc_init_calculate_gain("swish", false, 0, &g), LC_EARG);
  CHECK(strstr(lc_last_error(), "swish"));
  CHECK_STATUS(lc_init_calculate_gain("leaky_relu", true, NAN, &g), LC_EARG);
  CHECK_STATUS(lc_init_calculate_gain(NULL, false, 0, &g), LC_EARG);
}

TEST(init_fans) {
  int64_t s2[] = {3, 5}, s4[] = {8, 4, 3, 2}, s1[] = {7};
  lc_tensor *a = NULL, *b = NULL, *c = NULL;
  lc_empty(2, s2, LC_FLOAT32, &a);
  lc_empty(4, s4, LC_FLOAT32, &b);
  lc_empty(1, s1, LC_FLOAT32, &c);
  int64_t fi = -1, fo = -1;
  CHECK_OK(lc_init_calculate_fan(a, &fi, &fo));
  CHECK(fi == 5 && fo == 3);
  CHECK_OK(lc_init_calculate_fan(b, &fi, &fo));
  CHECK(fi == 4 * 6 && fo == 8 * 6);
  CHECK_STATUS(lc_init_calculate_fan(c, &fi, &fo), LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "fewer than 2 dims"));
  CHECK_STATUS(lc_init_xavier_uniform_(c, 1), LC_ESHAPE);
  CHECK_STATUS(lc_init_kaiming_normal_(c, 0, LC_FAN_IN, "relu"), LC_ESHAPE);
  CHECK_STATUS(lc_init_orthogonal_(c, 1), LC_ESHAPE);
  CHECK_STATUS(lc_init_eye_(b), LC_ESHAPE);
  CHECK_STATUS(lc_init_kaiming_uniform_(a, 0, (lc_fan_mode)5, "relu"), LC_EARG);
  CHECK_STATUS(lc_init_kaiming_uniform_(a, 0, LC_FAN_IN, "nope"), LC_EARG);
  CHECK(strstr(lc_last_error(), "kaiming_uniform_"));
  lc_release(a);
  lc_release(b);
  lc_release(c);
}

TEST(init_uniform_normal_constant_on_parameters) {
  int64_t s[] = {400, 250};
  lc_tensor *p = param(2, s, LC_FLOAT32);
  double m, sd, lo, hi;
  uint64_t v0 = lc_version(p);
  CHECK_OK(lc_init_uniform_(p, -2, 3));
  CHECK(lc_version(p) > v0);
  CHECK(lc_is_grad_enabled() && lc_requires_grad(p) && lc_is_leaf(p));
  stats(p, &m, &sd, &lo, &hi);
  CHECK(lo >= -2 && hi < 3);
  CHECK_NEAR(m, 0.5, 0.02);
  CHECK_NEAR(sd, 5 / sqrt(12.0), 0.02);
  CHECK_OK(lc_init_normal_(p, 1, 0.5));
  stats(p, &m, &sd, &lo, &hi);
  CHECK_NEAR(m, 1, 0.01);
  CHECK_NEAR(sd, 0.5, 0.01);
  CHECK_OK(lc_init_constant_(p, 0.25));
  stats(p, &m, &sd, &lo, &hi);
  CHECK(lo == 0.25 && hi == 0.25);
  CHECK_OK(lc_init_ones_(p));
  stats(p, &m, &sd, &lo, &hi);
  CHECK(lo == 1 && hi == 1);
  CHECK_OK(lc_init_zeros_(p));
  stats(p, &m, &sd, &lo, &hi);
  CHECK(lo == 0 && hi == 0);
  CHECK_STATUS(lc_init_uniform_(p, 2, 1), LC_EARG);
  CHECK(strstr(lc_last_error(), "uniform_"));
  CHECK_STATUS(lc_init_normal_(p, 0, -1), LC_EARG);
  CHECK_STATUS(lc_init_uniform_(NULL, 0, 1), LC_EARG);
  lc_tensor *it = NULL;
  lc_zeros(2, s, LC_INT64, &it);
  CHECK_STATUS(lc_init_normal_(it, 0, 1), LC_EDTYPE);
  CHECK_OK(lc_init_constant_(it, 3)); /* any dtype */
  CHECK(lc_is_grad_enabled());
  lc_release(it);
  lc_release(p);
}

TEST(init_eye) {
  int64_t s[] = {3, 5};
  lc_tensor *p = param(2, s, LC_FLOAT64);
  CHECK_OK(lc_init_eye_(p));
  double *v = test_values(p);
  for (int i = 0; v && i < 3; i++)
    for (int j = 0; j < 5; j++)
      CHECK(v[i * 5 + j] == (i == j ? 1.0 : 0.0));
  free(v);
  lc_release(p);
}

TEST(init_xavier_and_kaiming_statistics) {
  int64_t s[] = {300, 200}, sc[] = {64, 32, 3, 3};
  lc_tensor *p = param(2, s, LC_FLOAT32), *c = param(4, sc, LC_FLOAT64);
  double m, sd, lo, hi;
  double xstd = 2 * sqrt(2.0 / 500);
  CHECK_OK(lc_init_xavier_uniform_(p, 2));
  stats(p, &m, &sd, &lo, &hi);
  CHECK(lo >= -sqrt(3.0) * xstd && hi <= sqrt(3.0) * xstd);
  CHECK_NEAR(sd, xstd, 0.02 * xstd);
  CHECK_OK(lc_init_xavier_normal_(p, 1));
  stats(p, &m, &sd, &lo, &hi);
  CHECK_NEAR(sd, xstd / 2, 0.02 * xstd / 2);
  CHECK_NEAR(m, 0, 0.01 * xstd);
  /* kaiming on a conv weight {out, in, kh, kw}: fan_in = 32 * 9, fan_out = 64 * 9 */
  double kstd = sqrt(2.0) / sqrt(32 * 9.0);
  CHECK_OK(lc_init_kaiming_normal_(c, 0, LC_FAN_IN, "relu"));
  stats(c, &m, &sd, &lo, &hi);
  CHECK_NEAR(sd, kstd, 0.02 * kstd);
  double ustd = sqrt(2.0 / (1 + 0.04)) / sqrt(64 * 9.0);
  CHECK_OK(lc_init_kaiming_uniform_(c, 0.2, LC_FAN_OUT, "leaky_relu"));
  stats(c, &m, &sd, &lo, &hi);
  CHECK(lo >= -sqrt(3.0) * ustd && hi <= sqrt(3.0) * ustd);
  CHECK_NEAR(sd, ustd, 0.02 * ustd);
  /* a zero-sized tensor is left alone */
  int64_t sz[] = {0, 3};
  lc_tensor *z = param(2, sz, LC_FLOAT32);
  CHECK_OK(lc_init_kaiming_uniform_(z, 0, LC_FAN_IN, "leaky_relu"));
  lc_release(z);
  lc_release(p);
  lc_release(c);
}

static double ortho_error(const lc_tensor *t, double gain) {
  int64_t r = lc_shape(t)[0], c = lc_numel(t) / r;
  double *v = test_values(t), worst = 0;
  bool rows = r <= c; /* rows orthonormal, else columns */
  int64_t k = rows ? r : c, len = rows ? c : r;
  for (int64_t i = 0; v && i < k; i++)
    for (int64_t j = 0; j < k; j++) {
      double s = 0;
      for (int64_t l = 0; l < len; l++)
        s += rows ? v[i * c + l] * v[j * c + l] : v[l * c + i] * v[l * c + j];
      worst = fmax(worst, fabs(s - (i == j ? gain * gain : 0)));
    }
  free(v);
  return v ? worst : INFINITY;
}

TEST(init_orthogonal) {
  int64_t wide[] = {5, 12}, tall[] = {30, 4}, conv[] = {6, 2, 3}, sq[] = {16, 16};
  lc_tensor *a = param(2, wide, LC_FLOAT64), *b = param(2, tall, LC_FLOAT32),
            *c = param(3, conv, LC_FLOAT64), *d = param(2, sq, LC_FLOAT64);
  CHECK_OK(lc_init_orthogonal_(a, 1));
  CHECK(ortho_error(a, 1) < 1e-12); /* W W^T = I */
  CHECK_OK(lc_init_orthogonal_(b, 2));
  CHECK(ortho_error(b, 2) < 1e-5); /* W^T W = 4 I */
  CHECK_OK(lc_init_orthogonal_(c, 1));
  CHECK(ortho_error(c, 1) < 1e-12);
  CHECK_OK(lc_init_orthogonal_(d, 1));
  CHECK(ortho_error(d, 1) < 1e-12);
  /* two draws differ (random), and the matrix is not the identity */
  double *v1 = test_values(d);
  CHECK_OK(lc_init_orthogonal_(d, 1));
  double *v2 = test_values(d);
  CHECK(v1 && v2 && v1[0] != v2[0] && fabs(v1[0]) < 1);
  free(v1);
  free(v2);
  CHECK(lc_is_grad_enabled());
  lc_release(a);
  lc_release(b);
  lc_release(c);
  lc_release(d);
}

/* ---------------------------------------------------------------- nn.utils */

static lc_tensor *with_grad(int nd, const int64_t *shape, const double *g) {
  lc_tensor *p = param(nd, shape, LC_FLOAT32), *gt = NULL;
  if (!p) return NULL;
  if (lc_from_data(nd, shape, LC_FLOAT64, g, &gt) == LC_OK) {
    lc_tensor *g32 = NULL;
    lc_to_dtype(gt, LC_FLOAT32, &g32);
    lc_set_grad(p, g32);
    lc_release(g32);
  }
  lc_release(gt);
  return p;
}

TEST(utils_clip_grad_norm) {
  int64_t s1[] = {2}, s2[] = {2, 2};
  double g1[] = {3, 0}, g2[] = {0, 4, 0, 0};
  lc_tensor *ps[3] = {with_grad(1, s1, g1), param(1, s1, LC_FLOAT32), with_grad(2, s2, g2)};
  double total = -1;
  CHECK_OK(lc_clip_grad_norm_(3, ps, 1.0, 2, false, &total));
  CHECK_NEAR(total, 5, 1e-6);
  double *v = test_values(lc_grad(ps[0]));
  CHECK(v && fabs(v[0] - 3 * 1.0 / (5 + 1e-6)) < 1e-6);
  free(v);
  CHECK(lc_grad(ps[1]) == NULL); /* skipped */
  /* a max_norm above the norm leaves gradients (coefficient clamped at 1) */
  CHECK_OK(lc_clip_grad_norm_(3, ps, 100, 2, false, &total));
  CHECK_NEAR(total, 1, 1e-5);
  /* inf norm and p = 1 */
  CHECK_OK(lc_clip_grad_norm_(3, ps, 100, INFINITY, false, &total));
  CHECK_NEAR(total, 0.8, 1e-5);
  CHECK_OK(lc_clip_grad_norm_(3, ps, 100, 1, false, &total));
  CHECK_NEAR(total, 1.4, 1e-5);
  CHECK_OK(lc_clip_grad_norm_(3, ps, 100, 3, false, &total));
  CHECK_NEAR(total, pow(pow(0.6, 3) + pow(0.8, 3), 1.0 / 3), 1e-5);
  CHECK_STATUS(lc_clip_grad_norm_(3, ps, 1, 0, false, &total), LC_EARG);
  CHECK_STATUS(lc_clip_grad_norm_(3, ps, 1, 2, false, NULL), LC_EARG);
  /* non-finite with error_if_nonfinite */
  double gi[] = {INFINITY, 1};
  lc_tensor *pi = with_grad(1, s1, gi);
  CHECK_STATUS(lc_clip_grad_norm_(1, &pi, 1, 2, true, &total), LC_EARG);
  CHECK(strstr(lc_last_error(), "non-finite"));
  /* no gradients at all: 0 */
  lc_tensor *none = ps[1];
  CHECK_OK(lc_clip_grad_norm_(1, &none, 1, 2, false, &total));
  CHECK(total == 0);
  CHECK(lc_is_grad_enabled());
  lc_release(pi);
  for (int i = 0; i < 3; i++)
    lc_release(ps[i]);
}

TEST(utils_clip_grad_value) {
  int64_t s[] = {4};
  double g[] = {-3, 0.5, 2, -0.1};
  lc_tensor *p = with_grad(1, s, g);
  CHECK_OK(lc_clip_grad_value_(1, &p, 1));
  double *v = test_values(lc_grad(p));
  CHECK(v && v[0] == -1 && v[1] == 0.5 && v[2] == 1 && fabs(v[3] + 0.1) < 1e-7);
  free(v);
  CHECK_STATUS(lc_clip_grad_value_(1, &p, -1), LC_EARG);
  CHECK_STATUS(lc_clip_grad_value_(1, NULL, 1), LC_EARG);
  lc_release(p);
}

TEST(utils_parameters_vector_roundtrip) {
  int64_t s1[] = {2, 3}, s2[] = {4};
  lc_tensor *a = param(2, s1, LC_FLOAT32), *b = param(1, s2, LC_FLOAT32);
  lc_init_normal_(a, 0, 1);
  lc_init_normal_(b, 0, 1);
  lc_tensor *ps[2] = {a, b}, *vec = NULL, *twice = NULL;
  CHECK_OK(lc_parameters_to_vector(2, ps, &vec));
  CHECK(vec && lc_ndim(vec) == 1 && lc_shape(vec)[0] == 10 && lc_requires_grad(vec));
  double *va = test_values(a), *vb = test_values(b), *vv = vec ? test_values(vec) : NULL;
  for (int i = 0; va && vb && vv && i < 10; i++)
    CHECK(vv[i] == (i < 6 ? va[i] : vb[i - 6]));
  /* write 2 * vec back */
  if (vec) {
    bool prev = lc_set_grad_enabled(false);
    CHECK_OK(lc_binary_scalar(LC_MUL, vec, 2, false, &twice));
    lc_set_grad_enabled(prev);
  }
  uint64_t v0 = lc_version(a);
  CHECK_OK(lc_vector_to_parameters(twice, 2, ps));
  CHECK(lc_version(a) > v0);
  double *na = test_values(a), *nb = test_values(b);
  for (int i = 0; va && na && i < 6; i++)
    CHECK(na[i] == 2 * va[i]);
  for (int i = 0; vb && nb && i < 4; i++)
    CHECK(nb[i] == 2 * vb[i]);
  /* size and shape checks */
  int64_t s9[] = {9};
  lc_tensor *short_v = NULL;
  lc_zeros(1, s9, LC_FLOAT32, &short_v);
  CHECK_STATUS(lc_vector_to_parameters(short_v, 2, ps), LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "9") && strstr(lc_last_error(), "10"));
  CHECK_STATUS(lc_vector_to_parameters(a, 2, ps), LC_ESHAPE); /* 2-D */
  CHECK_STATUS(lc_parameters_to_vector(0, ps, &vec), LC_EARG);
  lc_tensor *d = NULL;
  lc_zeros(1, s2, LC_FLOAT64, &d);
  lc_tensor *mixed[2] = {a, d};
  lc_tensor *dummy = NULL;
  CHECK_STATUS(lc_parameters_to_vector(2, mixed, &dummy), LC_EDTYPE);
  free(va);
  free(vb);
  free(vv);
  free(na);
  free(nb);
  lc_release(d);
  lc_release(short_v);
  lc_release(twice);
  lc_release(vec);
  lc_release(a);
  lc_release(b);
}
