/* test_reduce.c - reductions, max/min along a dim, argmax/argmin: values against float64
 * references computed here, dtypes, empty tensors, NaN, accuracy, thread independence and
 * gradients against central differences. */
#include "test.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---------------------------------------------------------------- helpers */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static double urand(void) { /* [0, 1) */
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return (double)(rng_state >> 11) / 9007199254740992.0;
}

/* A contiguous tensor of dtype dt holding vals (converted). */
static lc_tensor *mk(int nd, const int64_t *shape, lc_dtype dt, const double *vals) {
  int64_t n = 1;
  for (int d = 0; d < nd; d++)
    n *= shape[d];
  void *buf = malloc((size_t)(n > 0 ? n : 1) * 8);
  for (int64_t i = 0; i < n; i++)
    switch (dt) {
    case LC_FLOAT32: ((float *)buf)[i] = (float)vals[i]; break;
    case LC_FLOAT64: ((double *)buf)[i] = vals[i]; break;
    case LC_INT32: ((int32_t *)buf)[i] = (int32_t)vals[i]; break;
    case LC_INT64: ((int64_t *)buf)[i] = (int64_t)vals[i]; break;
    default: ((uint8_t *)buf)[i] = vals[i] != 0; break;
    }
  lc_tensor *t = NULL;
  if (lc_from_data(nd, shape, dt, buf, &t) != LC_OK) t = NULL;
  free(buf);
  return t;
}


static double at0(const lc_tensor *t) {
  double v = NAN;
  lc_item(t, &v);
  return v;
}

static bool same_double(double a, double b, double tol) {
  if (a != a || b != b) return a != a && b != b;
  if (isinf(a) || isinf(b)) return a == b;
  return fabs(a - b) <= tol * (1 + fabs(b));
}

/* Reference reduction of v (C order over (nd, shape)) over the dims in red[]: out[o] for each
 * kept index, in C order. Returns nout. */
static int64_t ref_reduce(int op, double p, int64_t corr, int nd, const int64_t *shape,
                          const bool *red, const double *v, double *out) {
  int64_t n = 1, nout = 1, nred = 1;
  for (int d = 0; d < nd; d++) {
    n *= shape[d];
    if (red[d])
      nred *= shape[d];
    else
      nout *= shape[d];
  }
  double *bucket = malloc((size_t)(nout * (nred > 0 ? nred : 1)) * sizeof(double));
  int64_t *fill = calloc((size_t)(nout > 0 ? nout : 1), sizeof(int64_t));
  for (int64_t i = 0; i < n; i++) {
    int64_t rem = i, o = 0, mul = 1;
    for (int d = nd - 1; d >= 0; d--) {
      int64_t idx = rem % shape[d];
      rem /= shape[d];
      if (!red[d]) {
        o += idx * mul;
        mul *= shape[d];
      }
    }
    bucket[o * nred + fill[o]++] = v[i];
  }
  for (int64_t o = 0; o < nout; o++) {
    const double *b = bucket + o * nred;
    double r = 0, m = 0;
    switch (op) {
    case LC_SUM:
      for (int64_t k = 0; k < nred; k++)
        r += b[k];
      break;
    case LC_MEAN:
      for (int64_t k = 0; k < nred; k++)
        r += b[k];
      r /= (double)nred;
      break;
    case LC_PROD:
      r = 1;
      for (int64_t k = 0; k < nred; k++)
        r *= b[k];
      break;
    case LC_AMAX:
      r = -INFINITY;
      for (int64_t k = 0; k < nred; k++)
        r = (b[k] != b[k] || b[k] > r) && r == r ? b[k] : r;
      break;
    case LC_AMIN:
      r = INFINITY;
      for (int64_t k = 0; k < nred; k++)
        r = (b[k] != b[k] || b[k] < r) && r == r ? b[k] : r;
      break;
    case LC_VAR:
    case LC_STD:
      for (int64_t k = 0; k < nred; k++)
        m += b[k];
      m /= (double)nred;
      for (int64_t k = 0; k < nred; k++)
        r += (b[k] - m) * (b[k] - m);
      r /= (double)(nred - corr > 0 ? nred - corr : 0);
      if (op == LC_STD) r = sqrt(r);
      break;
    case LC_NORM:
      if (p == INFINITY)
        for (int64_t k = 0; k < nred; k++)
          r = fmax(r, fabs(b[k]));
      else {
        for (int64_t k = 0; k < nred; k++)
          r += pow(fabs(b[k]), p);
        r = pow(r, 1 / p);
      }
      break;
    case LC_LOGSUMEXP:
      m = -INFINITY;
      for (int64_t k = 0; k < nred; k++)
        m = fmax(m, b[k]);
      for (int64_t k = 0; k < nred; k++)
        r += exp(b[k] - m);
      r = m + log(r);
      break;
    case LC_ALL:
      r = 1;
      for (int64_t k = 0; k < nred; k++)
        r = r && b[k] != 0;
      break;
    case LC_ANY:
      r = 0;
      for (int64_t k = 0; k < nred; k++)
        r = r || b[k] != 0;
      break;
    }
    out[o] = r;
  }
  free(bucket);
  free(fill);
  return nout;
}

/* Checks lc_reduce(op, x, dims) against ref_reduce (shape, dtype, values). */
static int check_reduce(int op, double p, const lc_tensor *x, int ndims, const int *dims,
                        bool keepdim, lc_dtype want_dt, double tol) {
  int fails = 0;
  lc_reduce_opts o;
  memset(&o, 0, sizeof o);
  o.ndims = ndims;
  for (int k = 0; k < ndims; k++)
    o.dims[k] = dims[k];
  o.keepdim = keepdim;
  o.p = p;
  o.correction = 1;
  lc_tensor *y = NULL;
  lc_status st = lc_reduce((lc_reduce_op)op, x, &o, &y);
  if (st != LC_OK) {
    printf("  reduce op %d failed: %s\n", op, lc_last_error());
    return 1;
  }
  int nd = lc_ndim(x);
  bool red[LC_MAX_DIMS] = {false};
  for (int k = 0; k < ndims; k++)
    red[(dims[k] + nd) % nd] = true;
  if (ndims == 0)
    for (int d = 0; d < nd; d++)
      red[d] = true;
  int want_nd = 0;
  int64_t want_shape[LC_MAX_DIMS];
  for (int d = 0; d < nd; d++)
    if (!red[d])
      want_shape[want_nd++] = lc_shape(x)[d];
    else if (keepdim)
      want_shape[want_nd++] = 1;
  if (lc_ndim(y) != want_nd || lc_dtype_of(y) != want_dt) {
    printf("  op %d: got ndim %d dtype %s, expected %d %s\n", op, lc_ndim(y),
           lc_dtype_name(lc_dtype_of(y)), want_nd, lc_dtype_name(want_dt));
    fails++;
  } else {
    for (int d = 0; d < want_nd; d++)
      fails += lc_shape(y)[d] != want_shape[d];
    double *xv = test_values(x), *yv = test_values(y);
    double *rv = malloc((size_t)(lc_numel(x) + 1) * sizeof(double));
    int64_t nout = ref_reduce(op, p, 1, nd, lc_shape(x), red, xv, rv);
    for (int64_t i = 0; i < nout; i++)
      if (!same_double(yv[i], rv[i], tol)) {
        printf("  op %d (ndims %d keepdim %d) out[%lld] = %.9g, expected %.9g\n", op, ndims,
               keepdim, (long long)i, yv[i], rv[i]);
        fails++;
        break;
      }
    free(xv);
    free(yv);
    free(rv);
  }
  lc_release(y);
  return fails;
}

static lc_tensor *rand_tensor(int nd, const int64_t *shape, lc_dtype dt, double lo, double hi) {
  int64_t n = 1;
  for (int d = 0; d < nd; d++)
    n *= shape[d];
  double *v = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
  for (int64_t i = 0; i < n; i++)
    v[i] = lo + (hi - lo) * urand();
  lc_tensor *t = mk(nd, shape, dt, v);
  free(v);
  return t;
}

/* ---------------------------------------------------------------- values */

TEST(reduce_every_op_every_dimset_contiguous_and_permuted) {
  static const int ops[] = {LC_SUM,  LC_MEAN, LC_PROD, LC_AMAX, LC_AMIN,      LC_VAR, LC_STD,
                            LC_NORM, LC_NORM, LC_NORM, LC_NORM, LC_LOGSUMEXP, LC_ALL, LC_ANY};
  static const double ps[] = {0, 0, 0, 0, 0, 0, 0, 2, 1, INFINITY, 3, 0, 0, 0};
  static const int dimsets[][3] = {{0}, {0}, {1}, {2}, {-1}, {0, 2}, {1, 2}, {0, 1}, {2, 0}};
  static const int ndimsets[] = {0, 1, 1, 1, 1, 2, 2, 2, 2};
  int64_t shape[] = {3, 4, 5}, pshape[] = {5, 4, 3};
  for (int dti = 0; dti < 2; dti++) {
    lc_dtype dt = dti ? LC_FLOAT32 : LC_FLOAT64;
    double tol = dti ? 2e-5 : 1e-12;
    lc_tensor *c = rand_tensor(3, shape, dt, -1.5, 1.5);
    lc_tensor *base = rand_tensor(3, pshape, dt, -1.5, 1.5), *perm = NULL;
    int pd[] = {2, 1, 0};
    CHECK_OK(lc_permute(base, pd, &perm));
    if (!c || !perm) return;
    CHECK(!lc_is_contiguous(perm));
    for (int pass = 0; pass < 2; pass++) {
      lc_tensor *x = pass ? perm : c;
      for (size_t oi = 0; oi < sizeof ops / sizeof ops[0]; oi++) {
        lc_dtype want = (ops[oi] == LC_ALL || ops[oi] == LC_ANY) ? LC_BOOL : dt;
        for (int s = 0; s < 9; s++)
          for (int kd = 0; kd < 2; kd++) {
            int f = check_reduce(ops[oi], ps[oi], x, ndimsets[s], dimsets[s], kd, want, tol);
            if (f) printf("  (dtype %s, permuted %d, dimset %d)\n", lc_dtype_name(dt), pass, s);
            *failures_ += f;
          }
      }
    }
    lc_release(c);
    lc_release(base);
    lc_release(perm);
  }
}

TEST(reduce_column_and_row_paths) {
  /* leading-dim (column) sums, a middle block, last dim, and odd widths around the block size */
  int64_t s1[] = {1000, 37}, s2[] = {4, 50, 300}, s3[] = {3, 700};
  lc_dtype dts[] = {LC_FLOAT32, LC_FLOAT64, LC_INT32, LC_INT64};
  for (int k = 0; k < 4; k++) {
    lc_dtype dt = dts[k];
    lc_dtype sdt = lc_dtype_is_float(dt) ? dt : LC_INT64;
    double tol = dt == LC_FLOAT32 ? 1e-5 : 1e-12;
    lc_tensor *a = rand_tensor(2, s1, dt, -10, 10), *b = rand_tensor(3, s2, dt, -10, 10);
    lc_tensor *c = rand_tensor(2, s3, dt, -10, 10);
    int d0[] = {0}, d1[] = {1}, d01[] = {0, 1};
    *failures_ += check_reduce(LC_SUM, 0, a, 1, d0, false, sdt, tol);
    *failures_ += check_reduce(LC_SUM, 0, a, 1, d0, true, sdt, tol);
    *failures_ += check_reduce(LC_SUM, 0, b, 1, d1, false, sdt, tol);
    *failures_ += check_reduce(LC_SUM, 0, b, 2, d01, true, sdt, tol);
    *failures_ += check_reduce(LC_SUM, 0, c, 1, d1, false, sdt, tol);
    *failures_ += check_reduce(LC_AMAX, 0, a, 1, d0, false, dt, 0);
    *failures_ += check_reduce(LC_AMIN, 0, b, 1, d1, false, dt, 0);
    if (lc_dtype_is_float(dt)) {
      *failures_ += check_reduce(LC_MEAN, 0, a, 1, d0, false, dt, tol);
      *failures_ += check_reduce(LC_MEAN, 0, b, 1, d1, true, dt, tol);
      *failures_ += check_reduce(LC_VAR, 0, a, 1, d0, false, dt, tol * 10);
      *failures_ += check_reduce(LC_LOGSUMEXP, 0, b, 1, d1, false, dt, tol);
    }
    lc_release(a);
    lc_release(b);
    lc_release(c);
  }
}

TEST(reduce_integer_and_bool_dtypes) {
  int64_t shape[] = {2, 3};
  double v[] = {1, -2, 3, 4, 5, -6};
  lc_tensor *i32 = mk(2, shape, LC_INT32, v), *i64 = mk(2, shape, LC_INT64, v);
  double bv[] = {1, 0, 1, 1, 1, 1};
  lc_tensor *bl = mk(2, shape, LC_BOOL, bv);
  if (!i32 || !i64 || !bl) return;
  int d1[] = {1};
  *failures_ += check_reduce(LC_SUM, 0, i32, 0, NULL, false, LC_INT64, 0);
  *failures_ += check_reduce(LC_SUM, 0, i32, 1, d1, false, LC_INT64, 0);
  *failures_ += check_reduce(LC_PROD, 0, i64, 1, d1, true, LC_INT64, 0);
  *failures_ += check_reduce(LC_AMAX, 0, i32, 1, d1, false, LC_INT32, 0);
  *failures_ += check_reduce(LC_AMIN, 0, i64, 0, NULL, false, LC_INT64, 0);
  *failures_ += check_reduce(LC_SUM, 0, bl, 0, NULL, false, LC_INT64, 0);
  *failures_ += check_reduce(LC_ALL, 0, bl, 1, d1, false, LC_BOOL, 0);
  *failures_ += check_reduce(LC_ANY, 0, i32, 1, d1, false, LC_BOOL, 0);
  *failures_ += check_reduce(LC_AMAX, 0, bl, 0, NULL, false, LC_BOOL, 0);
  lc_tensor *y = NULL;
  static const lc_reduce_op float_only[] = {LC_MEAN, LC_VAR, LC_STD, LC_NORM, LC_LOGSUMEXP};
  for (int k = 0; k < 5; k++) {
    CHECK_STATUS(lc_reduce(float_only[k], i64, NULL, &y), LC_EDTYPE);
    CHECK(strstr(lc_last_error(), "int64") != NULL);
  }
  CHECK_STATUS(lc_reduce(LC_MEAN, bl, NULL, &y), LC_EDTYPE);
  CHECK(y == NULL);
  lc_release(i32);
  lc_release(i64);
  lc_release(bl);
}

TEST(reduce_empty_tensors) {
  int64_t shape[] = {0, 3};
  lc_tensor *x = NULL, *y = NULL;
  CHECK_OK(lc_zeros(2, shape, LC_FLOAT32, &x));
  if (!x) return;
  CHECK_OK(lc_reduce(LC_SUM, x, NULL, &y));
  CHECK(y && at0(y) == 0);
  lc_release(y);
  CHECK_OK(lc_reduce(LC_PROD, x, NULL, &y));
  CHECK(y && at0(y) == 1);
  lc_release(y);
  CHECK_OK(lc_reduce(LC_MEAN, x, NULL, &y));
  CHECK(y && isnan(at0(y)));
  lc_release(y);
  y = NULL;
  CHECK_STATUS(lc_reduce(LC_AMAX, x, NULL, &y), LC_EARG);
  CHECK(strstr(lc_last_error(), "max: cannot reduce an empty dimension") != NULL);
  CHECK(y == NULL);
  lc_tensor *v = NULL, *i = NULL;
  CHECK_STATUS(lc_max_dim(x, 0, false, &v, &i), LC_EARG);
  CHECK(strstr(lc_last_error(), "max: cannot reduce an empty dimension") != NULL);
  CHECK_STATUS(lc_argmax(x, true, 0, false, &v), LC_EARG);
  /* reducing the non-empty dim of an empty tensor gives an empty result */
  lc_reduce_opts o = {.ndims = 1, .dims = {1}};
  CHECK_OK(lc_reduce(LC_AMAX, x, &o, &y));
  CHECK(y && lc_ndim(y) == 1 && lc_shape(y)[0] == 0);
  lc_release(y);
  /* sum over the empty dim: zeros of the remaining shape */
  o.dims[0] = 0;
  CHECK_OK(lc_reduce(LC_SUM, x, &o, &y));
  CHECK(y && lc_numel(y) == 3);
  if (y) {
    double *yv = test_values(y);
    CHECK(yv && yv[0] == 0 && yv[1] == 0 && yv[2] == 0);
    free(yv);
  }
  lc_release(y);
  lc_release(x);
}

TEST(reduce_nan_propagates) {
  int64_t shape[] = {2, 3};
  double v[] = {1, NAN, 3, 4, 5, 6};
  lc_tensor *x = mk(2, shape, LC_FLOAT32, v), *y = NULL, *vals = NULL, *idx = NULL;
  if (!x) return;
  CHECK_OK(lc_reduce(LC_AMAX, x, NULL, &y));
  CHECK(y && isnan(at0(y)));
  lc_release(y);
  CHECK_OK(lc_reduce(LC_AMIN, x, NULL, &y));
  CHECK(y && isnan(at0(y)));
  lc_release(y);
  CHECK_OK(lc_reduce(LC_SUM, x, NULL, &y));
  CHECK(y && isnan(at0(y)));
  lc_release(y);
  CHECK_OK(lc_max_dim(x, 1, false, &vals, &idx));
  if (vals && idx) {
    double *vv = test_values(vals), *iv = test_values(idx);
    CHECK(isnan(vv[0]) && iv[0] == 1 && vv[1] == 6 && iv[1] == 2);
    free(vv);
    free(iv);
  }
  lc_release(vals);
  lc_release(idx);
  CHECK_OK(lc_argmin(x, true, 0, false, &y));
  CHECK(y && at0(y) == 1);
  lc_release(y);
  /* contiguous fast path of amax with a NaN deep inside a long run */
  int64_t n[] = {1000};
  double *w = malloc(1000 * sizeof(double));
  for (int k = 0; k < 1000; k++)
    w[k] = k;
  w[517] = NAN;
  lc_tensor *z = mk(1, n, LC_FLOAT64, w);
  CHECK_OK(lc_reduce(LC_AMAX, z, NULL, &y));
  CHECK(y && isnan(at0(y)));
  lc_release(y);
  free(w);
  lc_release(z);
  lc_release(x);
}

TEST(reduce_var_std_correction_edge_cases) {
  int64_t shape[] = {1};
  double v[] = {3};
  lc_tensor *x = mk(1, shape, LC_FLOAT64, v), *y = NULL;
  if (!x) return;
  lc_reduce_opts o = {.correction = 1};
  CHECK_OK(lc_reduce(LC_VAR, x, &o, &y)); /* 0 / 0 */
  CHECK(y && isnan(at0(y)));
  lc_release(y);
  o.correction = 0;
  CHECK_OK(lc_reduce(LC_STD, x, &o, &y));
  CHECK(y && at0(y) == 0);
  lc_release(y);
  int64_t s2[] = {2};
  double v2[] = {1, 3};
  lc_tensor *x2 = mk(1, s2, LC_FLOAT64, v2);
  o.correction = 5; /* N - correction < 0: M2 / 0 = inf */
  CHECK_OK(lc_reduce(LC_VAR, x2, &o, &y));
  CHECK(y && isinf(at0(y)));
  lc_release(y);
  o.correction = 0;
  CHECK_OK(lc_reduce(LC_VAR, x2, &o, &y));
  CHECK(y && at0(y) == 1);
  lc_release(y);
  /* stability: a large offset does not destroy the variance */
  int64_t s3[] = {1000};
  double *w = malloc(1000 * sizeof(double));
  double mean = 0, m2 = 0;
  for (int k = 0; k < 1000; k++)
    mean += (w[k] = (float)(1e4 + urand()));
  mean /= 1000;
  for (int k = 0; k < 1000; k++)
    m2 += (w[k] - mean) * (w[k] - mean);
  lc_tensor *x3 = mk(1, s3, LC_FLOAT32, w);
  o.correction = 1;
  CHECK_OK(lc_reduce(LC_VAR, x3, &o, &y));
  CHECK(y && fabs(at0(y) - m2 / 999) < 1e-3 * (m2 / 999));
  lc_release(y);
  free(w);
  lc_release(x);
  lc_release(x2);
  lc_release(x3);
}

TEST(reduce_logsumexp_and_norm_special_values) {
  int64_t s[] = {3};
  double big[] = {1000, 1000, -INFINITY}, ninf[] = {-INFINITY, -INFINITY, -INFINITY};
  lc_tensor *a = mk(1, s, LC_FLOAT64, big), *b = mk(1, s, LC_FLOAT32, ninf), *y = NULL;
  if (!a || !b) return;
  CHECK_OK(lc_reduce(LC_LOGSUMEXP, a, NULL, &y));
  CHECK(y && fabs(at0(y) - (1000 + log(2.0))) < 1e-9);
  lc_release(y);
  CHECK_OK(lc_reduce(LC_LOGSUMEXP, b, NULL, &y));
  CHECK(y && isinf(at0(y)) && at0(y) < 0);
  lc_release(y);
  double v[] = {3, -4, 0};
  lc_tensor *c = mk(1, s, LC_FLOAT32, v);
  lc_reduce_opts o = {.p = 2};
  CHECK_OK(lc_reduce(LC_NORM, c, &o, &y));
  CHECK(y && at0(y) == 5);
  lc_release(y);
  o.p = 1;
  CHECK_OK(lc_reduce(LC_NORM, c, &o, &y));
  CHECK(y && at0(y) == 7);
  lc_release(y);
  o.p = INFINITY;
  CHECK_OK(lc_reduce(LC_NORM, c, &o, &y));
  CHECK(y && at0(y) == 4);
  lc_release(y);
  o.p = 0;
  CHECK_OK(lc_reduce(LC_NORM, c, &o, &y));
  CHECK(y && at0(y) == 2);
  lc_release(y);
  o.p = NAN;
  CHECK_STATUS(lc_reduce(LC_NORM, c, &o, &y), LC_EARG);
  lc_release(a);
  lc_release(b);
  lc_release(c);
}

TEST(reduce_bad_dims) {
  int64_t shape[] = {2, 3};
  lc_tensor *x = NULL, *y = NULL;
  CHECK_OK(lc_zeros(2, shape, LC_FLOAT32, &x));
  if (!x) return;
  lc_reduce_opts o = {.ndims = 1, .dims = {2}};
  CHECK_STATUS(lc_reduce(LC_SUM, x, &o, &y), LC_EINDEX);
  CHECK(strstr(lc_last_error(), "sum") != NULL);
  o.dims[0] = -3;
  CHECK_STATUS(lc_reduce(LC_SUM, x, &o, &y), LC_EINDEX);
  lc_reduce_opts rep = {.ndims = 2, .dims = {1, -1}};
  CHECK_STATUS(lc_reduce(LC_MEAN, x, &rep, &y), LC_EARG);
  CHECK(strstr(lc_last_error(), "more than once") != NULL);
  CHECK(strstr(lc_last_error(), "mean: dim ") == lc_last_error()); /* the public name, 0-based */
  CHECK_STATUS(lc_reduce((lc_reduce_op)99, x, NULL, &y), LC_EARG);
  lc_tensor *v = NULL, *i = NULL;
  CHECK_STATUS(lc_max_dim(x, 2, false, &v, &i), LC_EINDEX);
  CHECK_STATUS(lc_argmax(x, false, -3, false, &v), LC_EINDEX);
  CHECK(y == NULL && v == NULL && i == NULL);
  /* a 0-dim tensor reduces over dim 0 / -1 */
  lc_tensor *s = NULL;
  CHECK_OK(lc_scalar(4, LC_FLOAT64, &s));
  lc_reduce_opts z = {.ndims = 1, .dims = {-1}, .keepdim = true};
  CHECK_OK(lc_reduce(LC_SUM, s, &z, &y));
  CHECK(y && lc_ndim(y) == 0 && at0(y) == 4);
  lc_release(y);
  CHECK_OK(lc_max_dim(s, 0, false, &v, &i));
  CHECK(v && i && at0(v) == 4 && at0(i) == 0);
  lc_release(v);
  lc_release(i);
  lc_release(s);
  lc_release(x);
}

/* ---------------------------------------------------------------- max/min along dims, argmax */

TEST(max_min_dim_and_argmax_against_reference) {
  int64_t pshape[] = {4, 6, 5};
  lc_tensor *base = rand_tensor(3, pshape, LC_FLOAT32, -3, 3), *x = NULL;
  int pd[] = {1, 2, 0}; /* x: {6, 5, 4}, not contiguous */
  CHECK_OK(lc_permute(base, pd, &x));
  if (!x) return;
  double *xv = test_values(x);
  const int64_t *sh = lc_shape(x);
  for (int dim = 0; dim < 3; dim++)
    for (int kd = 0; kd < 2; kd++)
      for (int mx = 0; mx < 2; mx++) {
        lc_tensor *v = NULL, *i = NULL, *ai = NULL;
        CHECK_OK(mx ? lc_max_dim(x, dim, kd, &v, &i) : lc_min_dim(x, dim, kd, &v, &i));
        CHECK_OK(mx ? lc_argmax(x, false, dim - 3, kd, &ai) : lc_argmin(x, false, dim, kd, &ai));
        if (!v || !i || !ai) continue;
        CHECK(lc_ndim(v) == (kd ? 3 : 2) && lc_dtype_of(i) == LC_INT64);
        CHECK(lc_dtype_of(v) == LC_FLOAT32);
        double *vv = test_values(v), *iv = test_values(i), *av = test_values(ai);
        /* reference: walk the kept index space in C order */
        int64_t o = 0;
        for (int64_t a = 0; a < sh[0]; a++)
          for (int64_t b = 0; b < sh[1]; b++)
            for (int64_t c = 0; c < sh[2]; c++) {
              int64_t idx[3] = {a, b, c};
              if (idx[dim] != 0) continue;
              double best = 0;
              int64_t bi = -1;
              for (int64_t k = 0; k < sh[dim]; k++) {
                idx[dim] = k;
                double e = xv[(idx[0] * sh[1] + idx[1]) * sh[2] + idx[2]];
                if (bi < 0 || (mx ? e > best : e < best)) best = e, bi = k;
              }
              CHECK(vv[o] == best && iv[o] == bi && av[o] == bi);
              o++;
            }
        free(vv);
        free(iv);
        free(av);
        lc_release(v);
        lc_release(i);
        lc_release(ai);
      }
  /* flattened argmax in C order of the permuted tensor */
  int64_t n = lc_numel(x), bmax = 0, bmin = 0;
  for (int64_t k = 1; k < n; k++) {
    if (xv[k] > xv[bmax]) bmax = k;
    if (xv[k] < xv[bmin]) bmin = k;
  }
  lc_tensor *am = NULL;
  CHECK_OK(lc_argmax(x, true, 0, false, &am));
  CHECK(am && lc_ndim(am) == 0 && at0(am) == (double)bmax);
  lc_release(am);
  CHECK_OK(lc_argmin(x, true, 0, true, &am));
  CHECK(am && lc_ndim(am) == 3 && at0(am) == (double)bmin);
  lc_release(am);
  free(xv);
  lc_release(x);
  lc_release(base);
}

TEST(max_dim_ties_first_occurrence_and_ints) {
  int64_t s[] = {2, 4};
  double v[] = {1, 7, 7, 2, -5, -5, 0, -5};
  lc_tensor *x = mk(2, s, LC_INT64, v), *vals = NULL, *idx = NULL;
  if (!x) return;
  CHECK_OK(lc_max_dim(x, 1, true, &vals, &idx));
  if (vals && idx) {
    double *vv = test_values(vals), *iv = test_values(idx);
    CHECK(lc_dtype_of(vals) == LC_INT64 && lc_ndim(vals) == 2 && lc_shape(vals)[1] == 1);
    CHECK(vv[0] == 7 && iv[0] == 1 && vv[1] == 0 && iv[1] == 2);
    free(vv);
    free(iv);
  }
  lc_release(vals);
  lc_release(idx);
  CHECK_OK(lc_min_dim(x, 1, false, &vals, &idx));
  if (vals && idx) {
    double *vv = test_values(vals), *iv = test_values(idx);
    CHECK(vv[0] == 1 && iv[0] == 0 && vv[1] == -5 && iv[1] == 0);
    free(vv);
    free(iv);
  }
  lc_release(vals);
  lc_release(idx);
  lc_release(x);
}

/* ---------------------------------------------------------------- accuracy and threads */

TEST(reduce_float32_sum_accuracy_1e6) {
  int64_t n[] = {1000000};
  float *f = malloc(1000000 * sizeof(float));
  double exact = 0;
  for (int k = 0; k < 1000000; k++) {
    f[k] = (float)urand();
    exact += f[k];
  }
  lc_tensor *x = NULL, *y = NULL;
  CHECK_OK(lc_from_data(1, n, LC_FLOAT32, f, &x));
  if (!x) return;
  CHECK_OK(lc_reduce(LC_SUM, x, NULL, &y));
  CHECK(y && fabs(at0(y) - exact) / exact <= 1e-6);
  lc_release(y);
  CHECK_OK(lc_reduce(LC_MEAN, x, NULL, &y));
  CHECK(y && fabs(at0(y) - exact / 1e6) / (exact / 1e6) <= 1e-6);
  lc_release(y);
  /* the same values as a strided (column-major) 1000x1000 view */
  int64_t s2[] = {1000, 1000};
  lc_tensor *m = NULL, *mt = NULL;
  CHECK_OK(lc_from_data(2, s2, LC_FLOAT32, f, &m));
  CHECK_OK(lc_transpose(m, 0, 1, &mt));
  if (mt) {
    CHECK_OK(lc_reduce(LC_SUM, mt, NULL, &y));
    CHECK(y && fabs(at0(y) - exact) / exact <= 1e-6);
    lc_release(y);
  }
  lc_release(m);
  lc_release(mt);
  free(f);
  lc_release(x);
}

static bool bitwise_same(const lc_tensor *a, const lc_tensor *b) {
  size_t n = (size_t)lc_numel(a) * lc_dtype_size(lc_dtype_of(a));
  return lc_numel(a) == lc_numel(b) && memcmp(lc_data(a), lc_data(b), n) == 0;
}

TEST(reduce_results_do_not_depend_on_thread_count) {
  int64_t n[] = {3000001}, s2[] = {300, 10001};
  lc_tensor *x = rand_tensor(1, n, LC_FLOAT32, -1, 1), *m = rand_tensor(2, s2, LC_FLOAT32, -1, 1);
  if (!x || !m) return;
  int saved = lc_get_num_threads();
  static const lc_reduce_op ops[] = {LC_SUM, LC_VAR, LC_LOGSUMEXP, LC_NORM, LC_PROD};
  lc_reduce_opts d0 = {.ndims = 1, .dims = {0}, .correction = 1, .p = 2};
  lc_reduce_opts d1 = {.ndims = 1, .dims = {1}, .correction = 1, .p = 2};
  lc_reduce_opts all = {.correction = 1, .p = 2};
  for (int k = 0; k < 5; k++) {
    lc_tensor *r[2][3] = {{NULL}};
    for (int t = 0; t < 2; t++) {
      CHECK_OK(lc_set_num_threads(t + 1));
      CHECK_OK(lc_reduce(ops[k], x, &all, &r[t][0]));
      CHECK_OK(lc_reduce(ops[k], m, &d0, &r[t][1]));
      CHECK_OK(lc_reduce(ops[k], m, &d1, &r[t][2]));
    }
    for (int j = 0; j < 3; j++) {
      CHECK(r[0][j] && r[1][j] && bitwise_same(r[0][j], r[1][j]));
      lc_release(r[0][j]);
      lc_release(r[1][j]);
    }
  }
  lc_set_num_threads(saved);
  lc_release(x);
  lc_release(m);
}

/* ---------------------------------------------------------------- gradients */

/* f(x) = sum(reduce(x) * w); checks lc_backward's x.grad against central differences. */
static int check_grad(lc_reduce_op op, double p, int64_t corr, lc_tensor *x, int ndims,
                      const int *dims, bool keepdim) {
  int fails = 0;
  lc_reduce_opts o;
  memset(&o, 0, sizeof o);
  o.ndims = ndims;
  for (int k = 0; k < ndims; k++)
    o.dims[k] = dims[k];
  o.keepdim = keepdim;
  o.p = p;
  o.correction = corr;
  lc_set_requires_grad(x, true);
  lc_tensor *y = NULL, *w = NULL;
  if (lc_reduce(op, x, &o, &y) != LC_OK) {
    printf("  forward failed: %s\n", lc_last_error());
    return 1;
  }
  w = rand_tensor(lc_ndim(y), lc_shape(y), LC_FLOAT64, 0.5, 1.5);
  lc_set_grad(x, NULL);
  if (lc_backward(y, w, false) != LC_OK) {
    printf("  backward failed: %s\n", lc_last_error());
    lc_release(y);
    lc_release(w);
    return 1;
  }
  double *g = test_values(lc_grad(x)), *wv = test_values(w);
  int64_t n = lc_numel(x), ny = lc_numel(y);
  double *xd = lc_data(x); /* contiguous float64 */
  bool prev = lc_set_grad_enabled(false);
  for (int64_t i = 0; i < n; i++) {
    double keep = xd[i], h = 1e-6, f[2];
    for (int s = 0; s < 2; s++) {
      xd[i] = keep + (s ? -h : h);
      lc_tensor *yy = NULL;
      lc_reduce(op, x, &o, &yy);
      double *yv = test_values(yy);
      f[s] = 0;
      for (int64_t k = 0; k < ny; k++)
        f[s] += yv[k] * wv[k];
      free(yv);
      lc_release(yy);
    }
    xd[i] = keep;
    double num = (f[0] - f[1]) / (2 * h);
    if (fabs(num - g[i]) > 1e-5 * (1 + fabs(num))) {
      printf("  op %d grad[%lld] = %.9g, numeric %.9g\n", op, (long long)i, g[i], num);
      fails++;
      break;
    }
  }
  lc_set_grad_enabled(prev);
  free(g);
  free(wv);
  lc_release(y);
  lc_release(w);
  return fails;
}

TEST(reduce_backward_matches_central_differences) {
  static const lc_reduce_op ops[] = {LC_SUM, LC_MEAN, LC_PROD, LC_AMAX, LC_AMIN, LC_VAR,
                                     LC_STD, LC_NORM, LC_NORM, LC_NORM, LC_NORM, LC_LOGSUMEXP};
  static const double ps[] = {0, 0, 0, 0, 0, 0, 0, 2, 1, 3, INFINITY, 0};
  static const int dimsets[][2] = {{0}, {1}, {0, 2}, {-1}};
  static const int nds[] = {0, 1, 2, 1};
  int64_t shape[] = {2, 3, 4};
  for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++)
    for (int s = 0; s < 4; s++)
      for (int kd = 0; kd < 2; kd++) {
        /* distinct values away from 0 so max/abs are differentiable at the point */
        lc_tensor *x = rand_tensor(3, shape, LC_FLOAT64, 0.5, 1.5);
        double *xd = lc_data(x);
        for (int i = 0; i < 24; i++)
          xd[i] = (i % 3 ? 1 : -1) * (0.5 + 0.04 * ((i * 7) % 24));
        int f = check_grad(ops[k], ps[k], 1, x, nds[s], dimsets[s], kd);
        if (f) printf("  (op %d p %g dimset %d keepdim %d)\n", ops[k], ps[k], s, kd);
        *failures_ += f;
        lc_release(x);
      }
}

TEST(reduce_backward_special_cases) {
  int64_t s[] = {3};
  /* prod with one zero: the product of the others; with two zeros: all 0 */
  double v1[] = {2, 0, 3}, v2[] = {0, 0, 3}, ties[] = {1, 3, 3}, zero[] = {0, 0, 0};
  lc_tensor *x = mk(1, s, LC_FLOAT64, v1), *y = NULL;
  lc_set_requires_grad(x, true);
  CHECK_OK(lc_reduce(LC_PROD, x, NULL, &y));
  CHECK(y && lc_grad_fn_name(y) && strcmp(lc_grad_fn_name(y), "ProdBackward") == 0);
  CHECK_OK(lc_backward(y, NULL, false));
  double *g = test_values(lc_grad(x));
  CHECK(g && g[0] == 0 && g[1] == 6 && g[2] == 0);
  free(g);
  lc_release(y);
  lc_release(x);
  x = mk(1, s, LC_FLOAT64, v2);
  lc_set_requires_grad(x, true);
  CHECK_OK(lc_reduce(LC_PROD, x, NULL, &y));
  CHECK_OK(lc_backward(y, NULL, false));
  g = test_values(lc_grad(x));
  CHECK(g && g[0] == 0 && g[1] == 0 && g[2] == 0);
  free(g);
  lc_release(y);
  lc_release(x);
  /* amax ties split the gradient evenly */
  x = mk(1, s, LC_FLOAT32, ties);
  lc_set_requires_grad(x, true);
  CHECK_OK(lc_reduce(LC_AMAX, x, NULL, &y));
  CHECK_OK(lc_backward(y, NULL, false));
  g = test_values(lc_grad(x));
  CHECK(g && g[0] == 0 && g[1] == 0.5 && g[2] == 0.5);
  free(g);
  lc_release(y);
  lc_release(x);
  /* 2-norm of a zero vector: gradient 0, not nan */
  x = mk(1, s, LC_FLOAT64, zero);
  lc_set_requires_grad(x, true);
  lc_reduce_opts o = {.p = 2};
  CHECK_OK(lc_reduce(LC_NORM, x, &o, &y));
  CHECK_OK(lc_backward(y, NULL, false));
  g = test_values(lc_grad(x));
  CHECK(g && g[0] == 0 && g[1] == 0 && g[2] == 0);
  free(g);
  lc_release(y);
  lc_release(x);
  /* all/any are not differentiable */
  x = mk(1, s, LC_FLOAT32, v1);
  lc_set_requires_grad(x, true);
  CHECK_OK(lc_reduce(LC_ANY, x, NULL, &y));
  CHECK(y && !lc_requires_grad(y) && lc_grad_fn_name(y) == NULL);
  lc_release(y);
  lc_release(x);
}

TEST(max_dim_backward_scatters_to_indices) {
  int64_t s[] = {2, 3};
  double v[] = {1, 5, 2, 9, 0, 9};
  lc_tensor *x = mk(2, s, LC_FLOAT64, v), *vals = NULL, *idx = NULL;
  lc_set_requires_grad(x, true);
  for (int kd = 0; kd < 2; kd++) {
    lc_set_grad(x, NULL);
    CHECK_OK(lc_max_dim(x, 1, kd, &vals, &idx));
    if (!vals) continue;
    CHECK(strcmp(lc_grad_fn_name(vals), "MaxBackward") == 0);
    CHECK(!lc_requires_grad(idx));
    double gw[] = {2, 3};
    int64_t gs[] = {2, 1};
    lc_tensor *gt = mk(kd ? 2 : 1, gs, LC_FLOAT64, gw);
    CHECK_OK(lc_backward(vals, gt, false));
    double *g = test_values(lc_grad(x));
    CHECK(g && g[0] == 0 && g[1] == 2 && g[2] == 0 && g[3] == 3 && g[4] == 0 && g[5] == 0);
    free(g);
    lc_release(gt);
    lc_release(vals);
    lc_release(idx);
  }
  lc_set_grad(x, NULL);
  CHECK_OK(lc_min_dim(x, 0, false, &vals, &idx));
  if (vals) {
    CHECK(strcmp(lc_grad_fn_name(vals), "MinBackward") == 0);
    int64_t gs[] = {3};
    double gw[] = {1, 2, 3};
    lc_tensor *gt = mk(1, gs, LC_FLOAT64, gw);
    CHECK_OK(lc_backward(vals, gt, false));
    double *g = test_values(lc_grad(x));
    CHECK(g && g[0] == 1 && g[1] == 0 && g[2] == 3 && g[3] == 0 && g[4] == 2 && g[5] == 0);
    free(g);
    lc_release(gt);
  }
  lc_release(vals);
  lc_release(idx);
  lc_release(x);
}
