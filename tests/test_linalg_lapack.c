/* test_linalg_lapack.c - the lc_linalg_* functions (LAPACK through OpenBLAS): values against
 * hand-computed results and identities, batch errors, and float64 gradchecks. */
#include "gradcheck.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

static lc_tensor *mat(int64_t m, int64_t n, const double *v) {
  int64_t shape[2] = {m, n};
  lc_tensor *t = NULL;
  if (lc_from_data(2, shape, LC_FLOAT64, v, &t)) return NULL;
  return t;
}

static double get2(const lc_tensor *t, int64_t i, int64_t j) {
  int64_t idx[2] = {i, j};
  double v = NAN;
  lc_get(t, idx, &v);
  return v;
}

static double item(const lc_tensor *t) {
  double v = NAN;
  lc_item(t, &v);
  return v;
}

static const double SPD[9] = {4, 1, 2, 1, 5, 3, 2, 3, 6};

TEST(linalg_inv_det_solve) {
  lc_tensor *a = mat(3, 3, SPD), *inv = NULL, *p = NULL, *d = NULL, *s = NULL, *l = NULL;
  CHECK_OK(lc_linalg_inv(a, &inv));
  CHECK_OK(lc_matmul(a, inv, &p));
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++)
      CHECK_NEAR(get2(p, i, j), i == j ? 1 : 0, 1e-12);
  CHECK_OK(lc_linalg_det(a, &d));
  CHECK_NEAR(item(d), 70, 1e-10);
  CHECK_OK(lc_linalg_slogdet(a, &s, &l));
  CHECK_NEAR(item(s), 1, 0);
  CHECK_NEAR(item(l), log(70), 1e-12);
  double bv[3] = {1, 2, 3};
  int64_t n3 = 3;
  lc_tensor *b = NULL, *x = NULL;
  CHECK_OK(lc_from_data(1, &n3, LC_FLOAT64, bv, &b));
  CHECK_OK(lc_linalg_solve(a, b, &x));
  CHECK(x && lc_ndim(x) == 1);
  if (x) {
    double *xv = test_values(x);
    CHECK_NEAR(xv[1], 1.0 / 7, 1e-12);
    free(xv);
  }
  lc_release(a), lc_release(inv), lc_release(p), lc_release(d), lc_release(s), lc_release(l);
  lc_release(b), lc_release(x);
}

TEST(linalg_factorizations) {
  lc_tensor *a = mat(3, 3, SPD), *L = NULL, *q = NULL, *r = NULL, *ev = NULL, *v = NULL;
  lc_tensor *u = NULL, *sv = NULL, *vh = NULL;
  CHECK_OK(lc_linalg_cholesky(a, false, &L));
  CHECK_NEAR(get2(L, 0, 0), 2, 1e-12);
  CHECK_NEAR(get2(L, 0, 2), 0, 0);
  CHECK_OK(lc_linalg_qr(a, LC_QR_REDUCED, &q, &r));
  CHECK_NEAR(get2(r, 2, 0), 0, 0);
  CHECK_OK(lc_linalg_eigh(a, false, &ev, &v));
  CHECK_OK(lc_linalg_svd(a, true, &u, &sv, &vh));
  /* symmetric positive definite: singular values are the eigenvalues, reversed */
  double *e = test_values(ev), *s = test_values(sv);
  for (int i = 0; i < 3; i++)
    CHECK_NEAR(e[i], s[2 - i], 1e-10);
  free(e), free(s);
  lc_release(a), lc_release(L), lc_release(q), lc_release(r), lc_release(ev), lc_release(v);
  lc_release(u), lc_release(sv), lc_release(vh);
}

TEST(linalg_errors_name_the_batch_matrix) {
  double v[12] = {1, 0, 0, 1, 1, 2, 2, 1, 1, 0, 0, 1};
  int64_t shape[3] = {3, 2, 2};
  lc_tensor *b = NULL, *out = NULL;
  CHECK_OK(lc_from_data(3, shape, LC_FLOAT64, v, &b));
  CHECK_STATUS(lc_linalg_cholesky(b, false, &out), LC_EARG);
  CHECK(strstr(lc_last_error(), "linalg_cholesky: the input is not positive-definite (matrix 2 of "
                                "3 in the batch: leading minor of order 2 is not positive)"));
  lc_tensor *z = NULL;
  int64_t s2[2] = {2, 2};
  CHECK_OK(lc_zeros(2, s2, LC_FLOAT64, &z));
  CHECK_STATUS(lc_linalg_inv(z, &out), LC_EARG);
  CHECK(strstr(lc_last_error(), "singular"));
  lc_tensor *r = NULL;
  int64_t s32[2] = {3, 2};
  CHECK_OK(lc_zeros(2, s32, LC_FLOAT64, &r));
  CHECK_STATUS(lc_linalg_det(r, &out), LC_ESHAPE);
  CHECK_STATUS(lc_linalg_inv(NULL, &out), LC_EARG);
  lc_release(b), lc_release(z), lc_release(r);
}

static lc_status f_inv(void *c, lc_tensor *const *in, lc_tensor **out) {
  (void)c;
  return lc_linalg_inv(in[0], out);
}

static lc_status f_svdvals(void *c, lc_tensor *const *in, lc_tensor **out) {
  (void)c;
  return lc_linalg_svdvals(in[0], out);
}

static lc_status f_solve(void *c, lc_tensor *const *in, lc_tensor **out) {
  (void)c;
  return lc_linalg_solve(in[0], in[1], out);
}

TEST(linalg_gradcheck) {
  int64_t sh[2] = {3, 3}, sb[2] = {3, 2};
  lc_tensor *a = mat(3, 3, SPD), *b = NULL;
  CHECK_OK(lc_randn(2, sb, LC_FLOAT64, &b));
  lc_set_requires_grad(a, true);
  lc_set_requires_grad(b, true);
  char msg[256];
  lc_tensor *ins[2] = {a, b};
  CHECK(gradcheck(f_inv, NULL, 1, ins, 1e-6, 1e-6, 1e-4, msg, sizeof msg) || printf("%s\n", msg));
  CHECK(gradcheck(f_svdvals, NULL, 1, ins, 1e-6, 1e-6, 1e-4, msg, sizeof msg) ||
        printf("%s\n", msg));
  CHECK(gradcheck(f_solve, NULL, 2, ins, 1e-6, 1e-6, 1e-4, msg, sizeof msg) || printf("%s\n", msg));
  (void)sh;
  lc_release(a), lc_release(b);
}
