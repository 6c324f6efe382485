/* test_misc_ops.c - meshgrid, unique, searchsorted / bucketize, clamp with tensor bounds,
 * nan_to_num, isclose / allclose_ex, lerp, cdist, cosine_similarity, pairwise_distance through
 * the C API: values against small hand-written cases, 0-based results, errors, and gradients
 * (gradcheck in float64). */
#include "gradcheck.h"
#include "test.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

static lc_tensor *vec(int n, const double *v, lc_dtype dt) {
  int64_t s[1] = {n};
  lc_tensor *t = NULL;
  lc_tensor *d = NULL;
  if (lc_from_data(1, s, LC_FLOAT64, v, &d) != LC_OK) return NULL;
  if (lc_to_dtype(d, dt, &t) != LC_OK) t = NULL;
  lc_release(d);
  return t;
}

static int values_are(const lc_tensor *t, int n, const double *want) {
  if (!t || lc_numel(t) != n) return 0;
  double *v = test_values(t);
  int ok = v != NULL;
  for (int i = 0; ok && i < n; i++)
    ok = fabs(v[i] - want[i]) <= 1e-6 * (1 + fabs(want[i])) || (v[i] != v[i] && want[i] != want[i]);
  free(v);
  return ok;
}

TEST(misc_meshgrid) {
  lc_tensor *a = vec(3, (double[]){1, 2, 3}, LC_FLOAT32), *b = vec(2, (double[]){4, 5}, LC_FLOAT32);
  lc_tensor *ts[2] = {a, b}, *o[2] = {NULL, NULL};
  CHECK_OK(lc_meshgrid(2, ts, false, o));
  CHECK(o[0] && lc_shape(o[0])[0] == 3 && lc_shape(o[0])[1] == 2 && lc_strides(o[0])[1] == 0);
  CHECK(values_are(o[1], 6, (double[]){4, 5, 4, 5, 4, 5}));
  lc_release(o[0]);
  lc_release(o[1]);
  CHECK_OK(lc_meshgrid(2, ts, true, o));
  CHECK(o[0] && lc_shape(o[0])[0] == 2 && lc_shape(o[0])[1] == 3);
  CHECK(values_are(o[0], 6, (double[]){1, 2, 3, 1, 2, 3}));
  lc_release(o[0]);
  lc_release(o[1]);
  CHECK_STATUS(lc_meshgrid(0, ts, false, o), LC_EARG);
  lc_release(a);
  lc_release(b);
}

TEST(misc_unique) {
  lc_tensor *x = vec(6, (double[]){3, 1, 2, 1, 3, 3}, LC_INT64), *v = NULL, *inv = NULL,
            *cnt = NULL;
  CHECK_OK(lc_unique(x, true, false, 0, &v, &inv, &cnt));
  CHECK(values_are(v, 3, (double[]){1, 2, 3}));
  CHECK(values_are(inv, 6, (double[]){2, 0, 1, 0, 2, 2})); /* 0-based in C */
  CHECK(values_are(cnt, 3, (double[]){2, 1, 3}));
  CHECK(v && lc_dtype_of(v) == LC_INT64);
  lc_release(v);
  lc_release(inv);
  lc_release(cnt);
  v = inv = cnt = NULL;
  CHECK_OK(lc_unique_consecutive(x, false, 0, &v, NULL, &cnt));
  CHECK(values_are(v, 5, (double[]){3, 1, 2, 1, 3}));
  CHECK(values_are(cnt, 5, (double[]){1, 1, 1, 1, 2}));
  lc_release(v);
  lc_release(cnt);
  /* rows of a 3x2 matrix */
  int64_t s[2] = {3, 2};
  lc_tensor *m = NULL;
  CHECK_OK(lc_from_data(2, s, LC_FLOAT64, (double[]){1, 2, 0, 5, 1, 2}, &m));
  v = inv = NULL;
  CHECK_OK(lc_unique(m, true, true, 0, &v, &inv, NULL));
  CHECK(values_are(v, 4, (double[]){0, 5, 1, 2}));
  CHECK(values_are(inv, 3, (double[]){1, 0, 1}));
  lc_release(v);
  lc_release(inv);
  CHECK_STATUS(lc_unique(m, true, true, 5, &v, NULL, NULL), LC_EINDEX);
  lc_release(m);
  lc_release(x);
}

TEST(misc_searchsorted) {
  lc_tensor *s = vec(4, (double[]){1, 3, 5, 7}, LC_FLOAT32),
            *v = vec(4, (double[]){0, 3, 6, 9}, LC_FLOAT32);
  lc_tensor *o = NULL;
  CHECK_OK(lc_searchsorted(s, v, false, false, NULL, &o));
  CHECK(values_are(o, 4, (double[]){0, 1, 3, 4}) && lc_dtype_of(o) == LC_INT64);
  lc_release(o);
  CHECK_OK(lc_bucketize(v, s, true, true, &o));
  CHECK(values_are(o, 4, (double[]){0, 2, 3, 4}) && lc_dtype_of(o) == LC_INT32);
  lc_release(o);
  lc_tensor *u = vec(4, (double[]){5, 1, 7, 3}, LC_FLOAT32),
            *so = vec(4, (double[]){1, 3, 0, 2}, LC_INT64);
  CHECK_OK(lc_searchsorted(u, v, false, false, so, &o));
  CHECK(values_are(o, 4, (double[]){0, 1, 3, 4}));
  lc_release(o);
  lc_tensor *bad = vec(4, (double[]){1, 3, 0, 4}, LC_INT64);
  CHECK_STATUS(lc_searchsorted(u, v, false, false, bad, &o), LC_EINDEX);
  lc_release(bad);
  lc_release(u);
  lc_release(so);
  lc_release(s);
  lc_release(v);
}

TEST(misc_elementwise) {
  lc_tensor *x = vec(4, (double[]){-1, 0.5, 3, NAN}, LC_FLOAT32);
  lc_tensor *lo = vec(1, (double[]){0}, LC_FLOAT32),
            *hi = vec(4, (double[]){1, 1, 2, 1}, LC_FLOAT32);
  lc_tensor *o = NULL;
  CHECK_OK(lc_clamp_tensor(x, lo, hi, &o));
  CHECK(values_are(o, 4, (double[]){0, 0.5, 2, NAN}));
  lc_release(o);
  CHECK_STATUS(lc_clamp_tensor(x, NULL, NULL, &o), LC_EARG);
  lc_tensor *n = vec(4, (double[]){NAN, INFINITY, -INFINITY, 2}, LC_FLOAT64);
  double nv = 1, pv = 2;
  CHECK_OK(lc_nan_to_num(n, &nv, &pv, NULL, &o));
  CHECK(values_are(o, 4, (double[]){1, 2, -DBL_MAX, 2}));
  lc_release(o);
  CHECK_OK(lc_nan_to_num_(n, NULL, NULL, NULL));
  CHECK(values_are(n, 4, (double[]){0, DBL_MAX, -DBL_MAX, 2}));
  lc_tensor *a = vec(3, (double[]){1, NAN, 2}, LC_FLOAT32),
            *b = vec(3, (double[]){1 + 1e-7, NAN, 2.1}, LC_FLOAT32);
  CHECK_OK(lc_isclose(a, b, 1e-5, 1e-8, true, &o));
  CHECK(values_are(o, 3, (double[]){1, 1, 0}) && lc_dtype_of(o) == LC_BOOL);
  lc_release(o);
  bool all = true;
  CHECK_OK(lc_allclose_ex(a, a, 1e-5, 1e-8, false, &all));
  CHECK(!all);
  CHECK_OK(lc_allclose_ex(a, a, 1e-5, 1e-8, true, &all));
  CHECK(all);
  lc_tensor *e = vec(3, (double[]){3, 3, 4}, LC_FLOAT32);
  CHECK_OK(lc_lerp_scalar(a, e, 0.5, &o));
  CHECK(values_are(o, 3, (double[]){2, NAN, 3}));
  lc_release(o);
  lc_tensor *i64 = vec(1, (double[]){1}, LC_INT64);
  CHECK_STATUS(lc_lerp_scalar(i64, i64, 0.5, &o), LC_EDTYPE);
  CHECK_STATUS(lc_isclose(a, i64, 0, 0, false, &o), LC_EDTYPE);
  lc_release(i64);
  lc_release(e);
  lc_release(a);
  lc_release(b);
  lc_release(n);
  lc_release(x);
  lc_release(lo);
  lc_release(hi);
}

TEST(misc_distances) {
  int64_t s1[2] = {2, 2}, s2[2] = {1, 2};
  lc_tensor *x1 = NULL, *x2 = NULL, *o = NULL;
  CHECK_OK(lc_from_data(2, s1, LC_FLOAT64, (double[]){0, 0, 3, 4}, &x1));
  CHECK_OK(lc_from_data(2, s2, LC_FLOAT64, (double[]){0, 0}, &x2));
  CHECK_OK(lc_cdist(x1, x2, 2, &o));
  CHECK(values_are(o, 2, (double[]){0, 5}));
  lc_release(o);
  CHECK_OK(lc_cdist(x1, x2, 1, &o));
  CHECK(values_are(o, 2, (double[]){0, 7}));
  lc_release(o);
  CHECK_OK(lc_cdist(x1, x2, INFINITY, &o));
  CHECK(values_are(o, 2, (double[]){0, 4}));
  lc_release(o);
  CHECK_STATUS(lc_cdist(x1, x2, -1, &o), LC_EARG);
  CHECK_OK(lc_cosine_similarity(x1, x1, 1, 1e-8, &o));
  CHECK(values_are(o, 2, (double[]){0, 1}));
  lc_release(o);
  CHECK_OK(lc_pairwise_distance(x1, x2, 2, 0, false, &o));
  CHECK(values_are(o, 2, (double[]){0, 5}));
  lc_release(o);
  lc_release(x1);
  lc_release(x2);
}

static lc_status f_clamp3(void *ctx, lc_tensor *const *in, lc_tensor **out) {
  (void)ctx;
  return lc_clamp_tensor(in[0], in[1], in[2], out);
}
static lc_status f_lerp3(void *ctx, lc_tensor *const *in, lc_tensor **out) {
  (void)ctx;
  return lc_lerp(in[0], in[1], in[2], out);
}
static lc_status f_cdist(void *ctx, lc_tensor *const *in, lc_tensor **out) {
  return lc_cdist(in[0], in[1], *(const double *)ctx, out);
}

TEST(misc_gradcheck) {
  int64_t sx[2] = {3, 4}, sl[2] = {1, 4}, sh[2] = {3, 1}, sa[2] = {30, 3}, sb[2] = {4, 3};
  lc_tensor *x = NULL, *lo = NULL, *hi = NULL, *a = NULL, *b = NULL;
  CHECK_OK(lc_randn(2, sx, LC_FLOAT64, &x));
  CHECK_OK(lc_randn(2, sl, LC_FLOAT64, &lo));
  CHECK_OK(lc_randn(2, sh, LC_FLOAT64, &hi));
  CHECK_OK(lc_randn(2, sa, LC_FLOAT64, &a));
  CHECK_OK(lc_randn(2, sb, LC_FLOAT64, &b));
  if (!x || !lo || !hi || !a || !b) goto out;
  lc_tensor *all[] = {x, lo, hi, a, b};
  for (int i = 0; i < 5; i++)
    lc_set_requires_grad(all[i], true);
  char msg[256];
  lc_tensor *c3[] = {x, lo, hi};
  int ok = gradcheck(f_clamp3, NULL, 3, c3, 1e-6, 1e-7, 1e-6, msg, sizeof msg);
  if (!ok) printf("  clamp: %s\n", msg);
  CHECK(ok);
  lc_tensor *w = NULL;
  CHECK_OK(lc_rand(2, sl, LC_FLOAT64, &w));
  if (w) {
    lc_set_requires_grad(w, true);
    lc_tensor *l3[] = {x, hi, w};
    ok = gradcheck(f_lerp3, NULL, 3, l3, 1e-6, 1e-7, 1e-6, msg, sizeof msg);
    if (!ok) printf("  lerp: %s\n", msg);
    CHECK(ok);
    lc_release(w);
  }
  const double ps[] = {2, 1, 3};
  for (int k = 0; k < 3; k++) {
    lc_tensor *d2[] = {a, b};
    ok = gradcheck(f_cdist, (void *)&ps[k], 2, d2, 1e-6, 1e-6, 1e-5, msg, sizeof msg);
    if (!ok) printf("  cdist p=%g: %s\n", ps[k], msg);
    CHECK(ok);
  }
out:
  lc_release(x);
  lc_release(lo);
  lc_release(hi);
  lc_release(a);
  lc_release(b);
}
