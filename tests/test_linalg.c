/* test_linalg.c - matmul / mm / bmm / dot / outer against a naive triple loop in float64: every
 * rank combination, broadcast batches, transposed and strided inputs, the BLAS and the small
 * paths, error messages, and gradients against central differences. */
#include "test.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static double urand(void) {
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return (double)(rng_state >> 11) / 9007199254740992.0;
}

static lc_tensor *rand_tensor(int nd, const int64_t *shape, lc_dtype dt) {
  int64_t n = 1;
  for (int d = 0; d < nd; d++)
    n *= shape[d];
  double *v = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
  float *f = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
  for (int64_t i = 0; i < n; i++)
    f[i] = (float)(v[i] = 2 * urand() - 1);
  lc_tensor *t = NULL;
  if (lc_from_data(nd, shape, dt, dt == LC_FLOAT32 ? (void *)f : (void *)v, &t) != LC_OK) t = NULL;
  free(v);
  free(f);
  return t;
}


/* Reference torch.matmul on C-order values: returns the result values and its shape. */
static double *ref_matmul(const lc_tensor *a, const lc_tensor *b, int *ond, int64_t *oshape) {
  int na = lc_ndim(a), nb = lc_ndim(b);
  const int64_t *sa = lc_shape(a), *sb = lc_shape(b);
  double *av = test_values(a), *bv = test_values(b);
  int64_t M = na == 1 ? 1 : sa[na - 2], K = sa[na - 1], N = nb == 1 ? 1 : sb[nb - 1];
  int ba = na > 2 ? na - 2 : 0, bb = nb > 2 ? nb - 2 : 0, nbd = ba > bb ? ba : bb;
  int64_t bshape[LC_MAX_DIMS], nbatch = 1;
  for (int d = 0; d < nbd; d++) {
    int da = d - (nbd - ba), db = d - (nbd - bb);
    int64_t x = da >= 0 ? sa[da] : 1, y = db >= 0 ? sb[db] : 1;
    bshape[d] = x == 1 ? y : x;
    nbatch *= bshape[d];
  }
  *ond = 0;
  for (int d = 0; d < nbd; d++)
    oshape[(*ond)++] = bshape[d];
  if (na > 1) oshape[(*ond)++] = M;
  if (nb > 1) oshape[(*ond)++] = N;
  double *c = malloc((size_t)(nbatch * M * N + 1) * sizeof(double));
  for (int64_t bi = 0; bi < nbatch; bi++) {
    int64_t rem = bi, oa = 0, ob = 0, ma = 1, mb = 1;
    for (int d = nbd - 1; d >= 0; d--) {
      int64_t i = rem % bshape[d];
      rem /= bshape[d];
      int da = d - (nbd - ba), db = d - (nbd - bb);
      if (da >= 0) {
        oa += (sa[da] == 1 ? 0 : i) * ma;
        ma *= sa[da];
      }
      if (db >= 0) {
        ob += (sb[db] == 1 ? 0 : i) * mb;
        mb *= sb[db];
      }
    }
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) {
        double s = 0;
        for (int64_t k = 0; k < K; k++)
          s += av[oa * M * K + i * K + k] * bv[ob * K * N + k * N + j];
        c[bi * M * N + i * N + j] = s;
      }
  }
  free(av);
  free(bv);
  return c;
}

static int check_matmul(const lc_tensor *a, const lc_tensor *b, double tol) {
  lc_tensor *c = NULL;
  lc_status st = lc_matmul(a, b, &c);
  if (st != LC_OK) {
    printf("  matmul failed: %s\n", lc_last_error());
    return 1;
  }
  int nd;
  int64_t shape[LC_MAX_DIMS];
  double *r = ref_matmul(a, b, &nd, shape);
  int fails = 0;
  if (lc_ndim(c) != nd) {
    printf("  matmul ndim %d, expected %d\n", lc_ndim(c), nd);
    fails++;
  } else {
    for (int d = 0; d < nd; d++)
      fails += lc_shape(c)[d] != shape[d];
    double *cv = test_values(c);
    for (int64_t i = 0; i < lc_numel(c); i++)
      if (!(fabs(cv[i] - r[i]) <= tol * (1 + fabs(r[i])))) {
        printf("  matmul c[%lld] = %.9g, expected %.9g\n", (long long)i, cv[i], r[i]);
        fails++;
        break;
      }
    free(cv);
  }
  if (fails) printf("  (a %dD, b %dD)\n", lc_ndim(a), lc_ndim(b));
  free(r);
  lc_release(c);
  return fails;
}

/* Shapes for a rank-r operand: batch dims from `batch`, then the two matrix dims. */
static int shape_for(int rank, const int64_t *batch, int nbatch, int64_t r0, int64_t r1, bool left,
                     int64_t *out) {
  if (rank == 1) {
    out[0] = left ? r1 : r0;
    return 1;
  }
  int n = 0;
  for (int d = nbatch - (rank - 2); d < nbatch; d++)
    out[n++] = batch[d];
  out[n++] = r0;
  out[n++] = r1;
  return n;
}

TEST(matmul_every_rank_combination) {
  /* small sizes (plain loop) and large ones (BLAS) */
  int64_t sizes[2][3] = {{3, 4, 5}, {40, 70, 30}};
  int64_t batch_a[] = {2, 1, 3}, batch_b[] = {1, 4, 3}; /* broadcast to {2, 4, 3} */
  for (int dti = 0; dti < 2; dti++) {
    lc_dtype dt = dti ? LC_FLOAT32 : LC_FLOAT64;
    double tol = dti ? 1e-5 : 1e-12;
    for (int sz = 0; sz < 2; sz++) {
      int64_t M = sizes[sz][0], K = sizes[sz][1], N = sizes[sz][2];
      for (int ra = 1; ra <= 5; ra++)
        for (int rb = 1; rb <= 5; rb++) {
          int64_t sa[LC_MAX_DIMS], sb[LC_MAX_DIMS];
          int na = shape_for(ra, batch_a, 3, M, K, true, sa);
          int nb = shape_for(rb, batch_b, 3, K, N, false, sb);
          lc_tensor *a = rand_tensor(na, sa, dt), *b = rand_tensor(nb, sb, dt);
          if (!a || !b) return;
          *failures_ += check_matmul(a, b, tol);
          lc_release(a);
          lc_release(b);
        }
    }
  }
}

TEST(matmul_transposed_and_strided_inputs) {
  for (int big = 0; big < 2; big++) {
    int64_t M = big ? 50 : 3, K = big ? 60 : 4, N = big ? 70 : 2;
    int64_t sat[] = {K, M}, sbt[] = {N, K}, sa2[] = {M, 2 * K}, sbatch[] = {3, K, M};
    lc_tensor *at = rand_tensor(2, sat, LC_FLOAT32), *bt = rand_tensor(2, sbt, LC_FLOAT32);
    lc_tensor *a = NULL, *b = NULL, *wide = rand_tensor(2, sa2, LC_FLOAT32), *step = NULL;
    lc_tensor *batched = rand_tensor(3, sbatch, LC_FLOAT32), *bat = NULL;
    CHECK_OK(lc_transpose(at, 0, 1, &a));            /* (M, K), column-major: BLAS Trans */
    CHECK_OK(lc_transpose(bt, 0, 1, &b));            /* (K, N), column-major */
    CHECK_OK(lc_slice(wide, 1, 0, 2 * K, 2, &step)); /* (M, K), column stride 2: copied */
    CHECK_OK(lc_transpose(batched, 1, 2, &bat));     /* (3, M, K) with transposed matrices */
    if (!a || !b || !step || !bat) return;
    CHECK(!lc_is_contiguous(a) && !lc_is_contiguous(step));
    *failures_ += check_matmul(a, b, 1e-5);
    *failures_ += check_matmul(step, b, 1e-5);
    *failures_ += check_matmul(bat, b, 1e-5);
    lc_tensor *bad = NULL;
    CHECK_STATUS(lc_matmul(a, bt, &bad), LC_ESHAPE); /* (M, K) x (N, K) */
    lc_tensor *v = NULL;                             /* strided 1-D operand: a column of a */
    CHECK_OK(lc_select(a, 0, 1, &v));
    if (v) *failures_ += check_matmul(v, b, 1e-5);
    lc_release(v);
    lc_release(at);
    lc_release(bt);
    lc_release(a);
    lc_release(b);
    lc_release(wide);
    lc_release(step);
    lc_release(batched);
    lc_release(bat);
  }
}

TEST(matmul_dot_outer_mm_bmm) {
  int64_t s5[] = {5}, s3[] = {3}, s23[] = {2, 3}, s35[] = {3, 5}, s234[] = {2, 3, 4},
          s245[] = {2, 4, 5}, s345[] = {3, 4, 5};
  lc_tensor *x = rand_tensor(1, s5, LC_FLOAT64), *y = rand_tensor(1, s5, LC_FLOAT64);
  lc_tensor *z = rand_tensor(1, s3, LC_FLOAT64), *c = NULL;
  double *xv = test_values(x), *yv = test_values(y), *zv = test_values(z);
  CHECK_OK(lc_dot(x, y, &c));
  if (c) {
    double d = 0, got = 0;
    for (int k = 0; k < 5; k++)
      d += xv[k] * yv[k];
    CHECK_OK(lc_item(c, &got));
    CHECK(lc_ndim(c) == 0);
    CHECK_NEAR(got, d, 1e-12);
  }
  lc_release(c);
  c = NULL;
  CHECK_OK(lc_outer(z, x, &c));
  if (c) {
    double *cv = test_values(c);
    CHECK(lc_ndim(c) == 2 && lc_shape(c)[0] == 3 && lc_shape(c)[1] == 5);
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < 5; j++)
        CHECK_NEAR(cv[i * 5 + j], zv[i] * xv[j], 1e-12);
    free(cv);
  }
  lc_release(c);
  c = NULL;
  lc_tensor *a = rand_tensor(2, s23, LC_FLOAT32), *b = rand_tensor(2, s35, LC_FLOAT32);
  lc_tensor *p = rand_tensor(3, s234, LC_FLOAT32), *q = rand_tensor(3, s245, LC_FLOAT32);
  lc_tensor *r = rand_tensor(3, s345, LC_FLOAT32);
  CHECK_OK(lc_mm(a, b, &c));
  CHECK(c && lc_ndim(c) == 2 && lc_shape(c)[0] == 2 && lc_shape(c)[1] == 5);
  lc_release(c);
  c = NULL;
  CHECK_OK(lc_bmm(p, q, &c));
  CHECK(c && lc_ndim(c) == 3 && lc_shape(c)[2] == 5);
  lc_release(c);
  c = NULL;
  /* errors of the fixed-rank forms */
  CHECK_STATUS(lc_mm(p, b, &c), LC_ESHAPE);
  CHECK_STATUS(lc_mm(x, b, &c), LC_ESHAPE);
  CHECK_STATUS(lc_bmm(a, b, &c), LC_ESHAPE);
  CHECK_STATUS(lc_bmm(p, r, &c), LC_ESHAPE); /* batch 2 vs 3 */
  CHECK(strstr(lc_last_error(), "bmm") != NULL);
  CHECK_STATUS(lc_dot(x, z, &c), LC_ESHAPE);
  CHECK_STATUS(lc_dot(a, b, &c), LC_ESHAPE);
  CHECK_STATUS(lc_outer(a, x, &c), LC_ESHAPE);
  CHECK(c == NULL);
  free(xv);
  free(yv);
  free(zv);
  lc_release(x);
  lc_release(y);
  lc_release(z);
  lc_release(a);
  lc_release(b);
  lc_release(p);
  lc_release(q);
  lc_release(r);
}

TEST(matmul_errors_and_empty) {
  int64_t s23[] = {2, 3}, s45[] = {4, 5}, s30[] = {3, 0}, s02[] = {0, 2}, s2x0[] = {2, 0};
  lc_tensor *a = NULL, *b = NULL, *i = NULL, *d = NULL, *c = NULL;
  CHECK_OK(lc_ones(2, s23, LC_FLOAT32, &a));
  CHECK_OK(lc_ones(2, s45, LC_FLOAT32, &b));
  CHECK_OK(lc_ones(2, s45, LC_INT64, &i));
  CHECK_OK(lc_ones(2, s45, LC_FLOAT64, &d));
  CHECK_STATUS(lc_matmul(a, b, &c), LC_ESHAPE);
  CHECK(strcmp(lc_last_error(), "matmul: shapes {2, 3} and {4, 5} cannot be multiplied (3 != 4)") ==
        0);
  CHECK_STATUS(lc_matmul(i, i, &c), LC_EDTYPE);
  CHECK(strcmp(lc_last_error(), "matmul: expected float32 or float64 tensors, got int64") == 0);
  CHECK_STATUS(lc_matmul(b, d, &c), LC_EDTYPE);
  CHECK(strstr(lc_last_error(), "float32 and float64") != NULL);
  lc_tensor *s = NULL;
  CHECK_OK(lc_scalar(2, LC_FLOAT32, &s));
  CHECK_STATUS(lc_matmul(s, a, &c), LC_ESHAPE);
  CHECK(c == NULL);
  /* batch dims that do not broadcast */
  int64_t b1[] = {2, 3, 3}, b2[] = {4, 3, 3};
  lc_tensor *p = NULL, *q = NULL;
  CHECK_OK(lc_ones(3, b1, LC_FLOAT32, &p));
  CHECK_OK(lc_ones(3, b2, LC_FLOAT32, &q));
  CHECK_STATUS(lc_matmul(p, q, &c), LC_ESHAPE);
  /* K = 0: zeros; M = 0: empty */
  lc_tensor *e1 = NULL, *e2 = NULL, *e3 = NULL;
  CHECK_OK(lc_ones(2, s2x0, LC_FLOAT64, &e1));
  CHECK_OK(lc_ones(2, s02, LC_FLOAT64, &e2));
  CHECK_OK(lc_matmul(e1, e2, &c));
  if (c) {
    double *cv = test_values(c);
    CHECK(lc_shape(c)[0] == 2 && lc_shape(c)[1] == 2 && cv[0] == 0 && cv[3] == 0);
    free(cv);
  }
  lc_release(c);
  c = NULL;
  CHECK_OK(lc_ones(2, s30, LC_FLOAT64, &e3));
  CHECK_STATUS(lc_matmul(e2, e3, &c), LC_ESHAPE); /* {0,2} x {3,0}: 2 != 3 */
  CHECK_OK(lc_matmul(e3, e2, &c));                /* {3,0} x {0,2} */
  CHECK(c && lc_numel(c) == 6);
  lc_release(c);
  lc_release(a);
  lc_release(b);
  lc_release(i);
  lc_release(d);
  lc_release(s);
  lc_release(p);
  lc_release(q);
  lc_release(e1);
  lc_release(e2);
  lc_release(e3);
}

/* f = sum(matmul(a, b) * w): checks both gradients against central differences. */
static int check_matmul_grad(int na, const int64_t *sa, int nb, const int64_t *sb) {
  lc_tensor *a = rand_tensor(na, sa, LC_FLOAT64), *b = rand_tensor(nb, sb, LC_FLOAT64);
  lc_set_requires_grad(a, true);
  lc_set_requires_grad(b, true);
  lc_tensor *c = NULL;
  if (lc_matmul(a, b, &c) != LC_OK) {
    printf("  matmul failed: %s\n", lc_last_error());
    return 1;
  }
  int fails = 0;
  if (!lc_grad_fn_name(c) || strcmp(lc_grad_fn_name(c), "MatmulBackward") != 0) fails++;
  lc_tensor *w = rand_tensor(lc_ndim(c), lc_shape(c), LC_FLOAT64);
  double *wv = test_values(w);
  int64_t nc = lc_numel(c);
  if (lc_backward(c, w, false) != LC_OK) {
    printf("  backward failed: %s\n", lc_last_error());
    fails++;
  }
  bool prev = lc_set_grad_enabled(false);
  for (int which = 0; which < 2 && !fails; which++) {
    lc_tensor *t = which ? b : a;
    double *g = test_values(lc_grad(t)), *td = lc_data(t);
    if (!g || lc_ndim(lc_grad(t)) != lc_ndim(t)) {
      fails++;
      free(g);
      break;
    }
    for (int64_t i = 0; i < lc_numel(t); i++) {
      double keep = td[i], h = 1e-6, f[2];
      for (int s = 0; s < 2; s++) {
        td[i] = keep + (s ? -h : h);
        lc_tensor *cc = NULL;
        lc_matmul(a, b, &cc);
        double *cv = test_values(cc);
        f[s] = 0;
        for (int64_t k = 0; k < nc; k++)
          f[s] += cv[k] * wv[k];
        free(cv);
        lc_release(cc);
      }
      td[i] = keep;
      double num = (f[0] - f[1]) / (2 * h);
      if (fabs(num - g[i]) > 1e-6 * (1 + fabs(num))) {
        printf("  grad %c[%lld] = %.9g, numeric %.9g (a %dD, b %dD)\n", which ? 'b' : 'a',
               (long long)i, g[i], num, na, nb);
        fails++;
        break;
      }
    }
    free(g);
  }
  lc_set_grad_enabled(prev);
  free(wv);
  lc_release(w);
  lc_release(c);
  lc_release(a);
  lc_release(b);
  return fails;
}

TEST(matmul_backward_matches_central_differences) {
  int64_t k4[] = {4}, m34[] = {3, 4}, k45[] = {4, 5}, b234[] = {2, 3, 4}, b145[] = {1, 4, 5},
          b2134[] = {2, 1, 3, 4}, b345[] = {3, 4, 5}, b45[] = {4, 5};
  *failures_ += check_matmul_grad(1, k4, 1, k4);
  *failures_ += check_matmul_grad(1, k4, 2, k45);
  *failures_ += check_matmul_grad(2, m34, 1, k4);
  *failures_ += check_matmul_grad(2, m34, 2, k45);
  *failures_ += check_matmul_grad(3, b234, 2, k45);   /* b broadcast over the batch */
  *failures_ += check_matmul_grad(2, m34, 3, b345);   /* a broadcast */
  *failures_ += check_matmul_grad(3, b234, 3, b145);  /* size-1 batch dim */
  *failures_ += check_matmul_grad(4, b2134, 3, b345); /* {2,1} x {3} batches */
  *failures_ += check_matmul_grad(1, k4, 3, b345);
  *failures_ += check_matmul_grad(3, b234, 1, k4);
  *failures_ += check_matmul_grad(1, k4, 2, b45);
  int64_t big_a[] = {2, 20, 15}, big_b[] = {15, 17}; /* 5100 multiply-adds: the BLAS path */
  *failures_ += check_matmul_grad(3, big_a, 2, big_b);
}

TEST(outer_records_gradients) {
  int64_t s3[] = {3}, s2[] = {2};
  lc_tensor *a = rand_tensor(1, s3, LC_FLOAT64), *b = rand_tensor(1, s2, LC_FLOAT64), *c = NULL;
  lc_set_requires_grad(a, true);
  lc_set_requires_grad(b, true);
  CHECK_OK(lc_outer(a, b, &c));
  if (c) {
    CHECK(lc_requires_grad(c));
    int64_t s32[] = {3, 2};
    lc_tensor *ones = NULL;
    CHECK_OK(lc_ones(2, s32, LC_FLOAT64, &ones));
    CHECK_OK(lc_backward(c, ones, false));
    double *ga = test_values(lc_grad(a)), *gb = test_values(lc_grad(b)), *av = test_values(a), *bv = test_values(b);
    if (ga && gb) {
      for (int i = 0; i < 3; i++)
        CHECK_NEAR(ga[i], bv[0] + bv[1], 1e-12);
      for (int j = 0; j < 2; j++)
        CHECK_NEAR(gb[j], av[0] + av[1] + av[2], 1e-12);
    }
    CHECK(ga && gb);
    free(ga);
    free(gb);
    free(av);
    free(bv);
    lc_release(ones);
  }
  lc_release(c);
  lc_release(a);
  lc_release(b);
}
