/* test_scan.c - cumsum, cumprod, logcumsumexp, diff: values against loops written here (every
 * dim, strided and expanded inputs, 0-dim, empty), dtype rules, errors, and gradients
 * (gradcheck, cumprod with zeros included). */
#include "gradcheck.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

enum { OP_SUM, OP_PROD, OP_LSE };

static lc_status run(int op, const lc_tensor *t, int dim, const lc_dtype *dt, lc_tensor **out) {
  switch (op) {
  case OP_SUM: return lc_cumsum(t, dim, dt, out);
  case OP_PROD: return lc_cumprod(t, dim, dt, out);
  default: return lc_logcumsumexp(t, dim, out);
  }
}

/* The reference: element (o, k, i) of the (outer, n, inner) block is the scan of x over
 * (o, 0..k, i), recomputed from scratch. x and out are C-order values. */
static void ref_scan(int op, const double *x, double *out, int nd, const int64_t *shape, int dim) {
  int64_t outer = 1, inner = 1, n = nd ? shape[dim] : 1;
  for (int d = 0; d < dim; d++)
    outer *= shape[d];
  for (int d = dim + 1; d < nd; d++)
    inner *= shape[d];
  for (int64_t o = 0; o < outer; o++)
    for (int64_t k = 0; k < n; k++)
      for (int64_t i = 0; i < inner; i++) {
        double acc = op == OP_PROD ? 1 : 0, m = -INFINITY;
        if (op == OP_LSE)
          for (int64_t j = 0; j <= k; j++)
            m = fmax(m, x[(o * n + j) * inner + i]);
        for (int64_t j = 0; j <= k; j++) {
          double v = x[(o * n + j) * inner + i];
          if (op == OP_SUM)
            acc += v;
          else if (op == OP_PROD)
            acc *= v;
          else
            acc += exp(v - m);
        }
        out[(o * n + k) * inner + i] = op == OP_LSE ? m + log(acc) : acc;
      }
}

static int check_against_ref(int op, const lc_tensor *t, int dim, double tol) {
  lc_tensor *y = NULL;
  if (run(op, t, dim, NULL, &y) != LC_OK) {
    printf("  op %d: %s\n", op, lc_last_error());
    return 0;
  }
  int nd = lc_ndim(t), wd = dim < 0 ? dim + (nd ? nd : 1) : dim;
  double *x = test_values(t), *got = test_values(y);
  int64_t n = lc_numel(t);
  double *want = malloc((size_t)(n ? n : 1) * sizeof *want);
  int ok = x && got && want && lc_numel(y) == n && lc_ndim(y) == nd &&
           !memcmp(lc_shape(y), lc_shape(t), (size_t)nd * sizeof(int64_t));
  if (ok) {
    ref_scan(op, x, want, nd, lc_shape(t), wd);
    for (int64_t k = 0; k < n; k++)
      if (!(fabs(got[k] - want[k]) <= tol * (1 + fabs(want[k])))) {
        printf("  op %d dim %d: element %lld is %.9g, expected %.9g\n", op, dim, (long long)k,
               got[k], want[k]);
        ok = 0;
        break;
      }
  }
  free(x);
  free(got);
  free(want);
  lc_release(y);
  return ok;
}

TEST(scan_values_every_dim_and_layout) {
  int64_t s[] = {3, 4, 70}; /* 70 columns: more than one chunk */
  lc_tensor *x = NULL, *tr = NULL, *small = NULL, *ex = NULL, *z = NULL;
  CHECK_OK(lc_randn(3, s, LC_FLOAT64, &x));
  int perm[] = {2, 0, 1};
  if (x) CHECK_OK(lc_permute(x, perm, &tr));
  int64_t s1[] = {1, 5}, se[] = {4, 5};
  CHECK_OK(lc_randn(2, s1, LC_FLOAT32, &small));
  if (small) CHECK_OK(lc_expand(small, 2, se, &ex));
  CHECK_OK(lc_full(0, NULL, 0.5, LC_FLOAT32, &z));
  if (!x || !tr || !ex || !z) goto out;
  for (int op = OP_SUM; op <= OP_LSE; op++) {
    for (int d = -3; d < 3; d++) {
      CHECK(check_against_ref(op, x, d, 1e-12));
      CHECK(check_against_ref(op, tr, d, 1e-12));
    }
    CHECK(check_against_ref(op, ex, 0, 1e-6));
    CHECK(check_against_ref(op, ex, 1, 1e-6));
    CHECK(check_against_ref(op, z, 0, 0));
    CHECK(check_against_ref(op, z, -1, 0));
  }
out:
  lc_release(x);
  lc_release(tr);
  lc_release(small);
  lc_release(ex);
  lc_release(z);
}

TEST(scan_dtypes) {
  int64_t s[] = {4};
  int32_t iv[] = {3, -2, 7, 1};
  uint8_t bv[] = {1, 0, 1, 1};
  lc_tensor *i = NULL, *b = NULL, *f = NULL, *r = NULL;
  CHECK_OK(lc_from_data(1, s, LC_INT32, iv, &i));
  CHECK_OK(lc_from_data(1, s, LC_BOOL, bv, &b));
  CHECK_OK(lc_randn(1, s, LC_FLOAT32, &f));
  if (!i || !b || !f) goto out;
  struct {
    int op;
    lc_tensor *t;
    int has;
    lc_dtype ask, want;
  } cases[] = {
      {OP_SUM, i, 0, 0, LC_INT64},        {OP_PROD, i, 0, 0, LC_INT64},
      {OP_SUM, b, 0, 0, LC_INT64},        {OP_PROD, b, 0, 0, LC_INT64},
      {OP_SUM, i, 1, LC_INT32, LC_INT32}, {OP_SUM, i, 1, LC_FLOAT64, LC_FLOAT64},
      {OP_SUM, f, 0, 0, LC_FLOAT32},      {OP_PROD, f, 1, LC_FLOAT64, LC_FLOAT64},
      {OP_LSE, f, 0, 0, LC_FLOAT32},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    r = NULL;
    CHECK_OK(run(cases[k].op, cases[k].t, 0, cases[k].has ? &cases[k].ask : NULL, &r));
    if (r) CHECK(lc_dtype_of(r) == cases[k].want);
    lc_release(r);
  }
  r = NULL;
  CHECK_OK(lc_cumsum(i, 0, NULL, &r));
  if (r) {
    int64_t want[] = {3, 1, 8, 9};
    double *v = test_values(r);
    for (int k = 0; v && k < 4; k++)
      CHECK(v[k] == (double)want[k]);
    free(v);
  }
  lc_release(r);
  lc_dtype bo = LC_BOOL;
  r = NULL;
  CHECK_STATUS(lc_cumsum(b, 0, &bo, &r), LC_EDTYPE);
  CHECK_STATUS(lc_logcumsumexp(i, 0, &r), LC_EDTYPE);
  CHECK_STATUS(lc_logcumsumexp(b, 0, &r), LC_EDTYPE);
  CHECK(r == NULL);
out:
  lc_release(i);
  lc_release(b);
  lc_release(f);
}

TEST(scan_errors_and_edges) {
  int64_t s[] = {2, 3}, se[] = {0, 3};
  lc_tensor *x = NULL, *e = NULL, *r = NULL, *s0 = NULL;
  CHECK_OK(lc_randn(2, s, LC_FLOAT32, &x));
  CHECK_OK(lc_zeros(2, se, LC_FLOAT32, &e));
  CHECK_OK(lc_full(0, NULL, 1, LC_FLOAT32, &s0));
  if (!x || !e || !s0) goto out;
  CHECK_STATUS(lc_cumsum(x, 2, NULL, &r), LC_EINDEX);
  CHECK_STATUS(lc_cumprod(x, -3, NULL, &r), LC_EINDEX);
  CHECK_STATUS(lc_logcumsumexp(s0, 1, &r), LC_EINDEX);
  CHECK_STATUS(lc_cumsum(NULL, 0, NULL, &r), LC_EARG);
  CHECK_STATUS(lc_cumsum(x, 0, NULL, NULL), LC_EARG);
  lc_dtype junk = (lc_dtype)99;
  CHECK_STATUS(lc_cumsum(x, 0, &junk, &r), LC_EDTYPE);
  CHECK(r == NULL);
  for (int op = OP_SUM; op <= OP_LSE; op++) {
    for (int d = 0; d < 2; d++) {
      r = NULL;
      CHECK_OK(run(op, e, d, NULL, &r));
      if (r) CHECK(lc_ndim(r) == 2 && lc_shape(r)[0] == 0 && lc_shape(r)[1] == 3);
      lc_release(r);
    }
  }
  /* diff */
  r = NULL;
  CHECK_STATUS(lc_diff(s0, 1, 0, NULL, NULL, &r), LC_ESHAPE);
  CHECK_STATUS(lc_diff(x, 1, 2, NULL, NULL, &r), LC_EINDEX);
  CHECK_STATUS(lc_diff(x, 1, 0, s0, NULL, &r), LC_ESHAPE); /* ndim differs */
  CHECK_STATUS(lc_diff(x, 1, -1, NULL, e, &r), LC_ESHAPE); /* {0, 3} vs {2, .} along dim 1 */
  CHECK_STATUS(lc_diff(NULL, 1, 0, NULL, NULL, &r), LC_EARG);
  CHECK_OK(lc_diff(x, 1, 0, e, NULL, &r)); /* prepend {0, 3} along dim 0 fits */
  if (r) CHECK(lc_shape(r)[0] == 1 && lc_shape(r)[1] == 3);
  lc_release(r);
  r = NULL;
  CHECK_OK(lc_diff(x, 100, -1, NULL, NULL, &r));
  if (r) CHECK(lc_shape(r)[0] == 2 && lc_shape(r)[1] == 0);
  lc_release(r);
  r = NULL;
  CHECK_OK(lc_diff(e, 1, 0, NULL, NULL, &r));
  if (r) CHECK(lc_shape(r)[0] == 0 && lc_shape(r)[1] == 3);
  lc_release(r);
out:
  lc_release(x);
  lc_release(e);
  lc_release(s0);
}

TEST(diff_values) {
  int64_t s[] = {2, 4}, sp[] = {2, 1};
  double v[] = {1, 4, 9, 16, 2, -3, 5, 0}, pv[] = {0.5, 1};
  lc_tensor *x = NULL, *p = NULL, *r = NULL, *r2 = NULL, *r3 = NULL;
  CHECK_OK(lc_from_data(2, s, LC_FLOAT64, v, &x));
  CHECK_OK(lc_from_data(2, sp, LC_FLOAT64, pv, &p));
  if (!x || !p) goto out;
  CHECK_OK(lc_diff(x, 2, -1, NULL, NULL, &r));
  if (r) {
    double want[] = {2, 2, 13, -13}, *g = test_values(r);
    CHECK(lc_shape(r)[1] == 2);
    for (int k = 0; g && k < 4; k++)
      CHECK(g[k] == want[k]);
    free(g);
  }
  CHECK_OK(lc_diff(x, 1, 1, p, p, &r2)); /* {0.5, x, 0.5} per row */
  if (r2) {
    double want[] = {0.5, 3, 5, 7, -15.5, 1, -5, 8, -5, 1}, *g = test_values(r2);
    CHECK(lc_shape(r2)[1] == 5);
    for (int k = 0; g && k < 10; k++)
      CHECK(g[k] == want[k]);
    free(g);
  }
  CHECK_OK(lc_diff(x, 0, 1, p, NULL, &r3)); /* a copy; prepend unused */
  if (r3) CHECK(lc_shape(r3)[0] == 2 && lc_shape(r3)[1] == 4 && r3 != x);
out:
  lc_release(x);
  lc_release(p);
  lc_release(r);
  lc_release(r2);
  lc_release(r3);
}

typedef struct gctx {
  int op, dim;
} gctx;

static lc_status f_scan(void *ctx, lc_tensor *const *in, lc_tensor **out) {
  const gctx *c = ctx;
  if (c->op == 3) return lc_diff(in[0], 2, c->dim, in[1], in[2], out);
  return run(c->op, in[0], c->dim, NULL, out);
}

TEST(scan_gradcheck) {
  int64_t s[] = {3, 4, 5};
  lc_tensor *x = NULL, *xz = NULL, *p = NULL, *a = NULL;
  CHECK_OK(lc_randn(3, s, LC_FLOAT64, &x));
  CHECK_OK(lc_randn(3, s, LC_FLOAT64, &xz));
  int64_t sp[] = {3, 4, 2}, sa[] = {3, 4, 1};
  CHECK_OK(lc_randn(3, sp, LC_FLOAT64, &p));
  CHECK_OK(lc_randn(3, sa, LC_FLOAT64, &a));
  if (!x || !xz || !p || !a) goto out;
  double *zd = lc_data(xz); /* zeros, some columns with two */
  zd[0] = zd[7] = zd[27] = zd[47] = zd[12] = zd[59] = 0;
  lc_set_requires_grad(x, true);
  lc_set_requires_grad(xz, true);
  lc_set_requires_grad(p, true);
  lc_set_requires_grad(a, true);
  char msg[256];
  for (int op = OP_SUM; op <= OP_LSE; op++)
    for (int d = 0; d < 3; d++) {
      gctx c = {op, d};
      lc_tensor *ins[] = {x};
      int ok = gradcheck(f_scan, &c, 1, ins, 1e-6, 1e-7, 1e-6, msg, sizeof msg);
      if (!ok) printf("  op %d dim %d: %s\n", op, d, msg);
      CHECK(ok);
    }
  for (int d = 0; d < 3; d++) {
    gctx c = {OP_PROD, d};
    lc_tensor *ins[] = {xz};
    int ok = gradcheck(f_scan, &c, 1, ins, 1e-6, 1e-7, 1e-6, msg, sizeof msg);
    if (!ok) printf("  cumprod with zeros, dim %d: %s\n", d, msg);
    CHECK(ok);
  }
  gctx c = {3, 2};
  lc_tensor *ins[] = {x, p, a};
  int ok = gradcheck(f_scan, &c, 3, ins, 1e-6, 1e-7, 1e-6, msg, sizeof msg);
  if (!ok) printf("  diff: %s\n", msg);
  CHECK(ok);
out:
  lc_release(x);
  lc_release(xz);
  lc_release(p);
  lc_release(a);
}

TEST(scan_cumprod_zero_gradient_exact) {
  /* PyTorch: cumprod([2, 0, 3, 0, 4]) with upstream [1, 2, 3, 4, 5] gives [1, 22, 0, 0, 0] */
  int64_t s[] = {5};
  double v[] = {2, 0, 3, 0, 4}, gv[] = {1, 2, 3, 4, 5};
  lc_tensor *x = NULL, *g = NULL, *y = NULL;
  CHECK_OK(lc_from_data(1, s, LC_FLOAT64, v, &x));
  CHECK_OK(lc_from_data(1, s, LC_FLOAT64, gv, &g));
  if (!x || !g) goto out;
  lc_set_requires_grad(x, true);
  CHECK_OK(lc_cumprod(x, 0, NULL, &y));
  if (y) {
    CHECK(strcmp(lc_grad_fn_name(y), "CumprodBackward") == 0);
    CHECK_OK(lc_backward(y, g, false));
    double want[] = {1, 22, 0, 0, 0}, *got = lc_grad(x) ? test_values(lc_grad(x)) : NULL;
    CHECK(got != NULL);
    for (int k = 0; got && k < 5; k++)
      CHECK(got[k] == want[k]);
    free(got);
  }
out:
  lc_release(x);
  lc_release(g);
  lc_release(y);
}
