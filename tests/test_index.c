/* test_index.c - index_select, gather, scatter(_), scatter_add, masked_fill(_), masked_select,
 * nonzero: values against loops written here, errors, and gradients. */
#include "gradcheck.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

static lc_tensor *seqb(int nd, const int64_t *shape, lc_dtype dt, double base) {
  lc_tensor *a = NULL, *r = NULL;
  int64_t n = 1;
  for (int i = 0; i < nd; i++)
    n *= shape[i];
  if (lc_arange(base, base + (double)n, 1, dt, &a)) return NULL;
  if (lc_reshape(a, nd, shape, &r)) r = NULL;
  lc_release(a);
  return r;
}

static lc_tensor *i64s(int nd, const int64_t *shape, const int64_t *v) {
  lc_tensor *t = NULL;
  if (lc_from_data(nd, shape, LC_INT64, v, &t)) return NULL;
  return t;
}

static lc_tensor *bools(int nd, const int64_t *shape, const uint8_t *v) {
  lc_tensor *t = NULL;
  if (lc_from_data(nd, shape, LC_BOOL, v, &t)) return NULL;
  return t;
}

static double at2(const lc_tensor *t, int64_t i, int64_t j) {
  int64_t idx[] = {i, j};
  double v = NAN;
  lc_get(t, idx, &v);
  return v;
}

static double at1(const lc_tensor *t, int64_t i) {
  double v = NAN;
  lc_get(t, &i, &v);
  return v;
}

static bool is_name(const lc_tensor *t, const char *name) {
  const char *n = lc_grad_fn_name(t);
  return n && strcmp(n, name) == 0;
}

TEST(index_select_values) {
  int64_t s[] = {4, 5}, si[] = {3};
  int64_t iv[] = {3, 0, 3};
  lc_tensor *t = seqb(2, s, LC_FLOAT32, 0), *idx = i64s(1, si, iv), *r0 = NULL, *r1 = NULL,
            *i32 = NULL, *r2 = NULL;
  if (!t || !idx) goto out;
  CHECK_OK(lc_index_select(t, 0, idx, &r0));
  if (r0) {
    CHECK(lc_shape(r0)[0] == 3 && lc_shape(r0)[1] == 5);
    for (int64_t i = 0; i < 3; i++)
      for (int64_t j = 0; j < 5; j++)
        CHECK(at2(r0, i, j) == at2(t, iv[i], j));
  }
  CHECK_OK(lc_index_select(t, -1, idx, &r1));
  if (r1) {
    CHECK(lc_shape(r1)[0] == 4 && lc_shape(r1)[1] == 3);
    for (int64_t i = 0; i < 4; i++)
      for (int64_t j = 0; j < 3; j++)
        CHECK(at2(r1, i, j) == at2(t, i, iv[j]));
  }
  /* int32 index on a transposed tensor */
  int32_t v32[] = {1, 4};
  int64_t s2[] = {2};
  lc_tensor *tr = NULL;
  CHECK_OK(lc_from_data(1, s2, LC_INT32, v32, &i32));
  CHECK_OK(lc_transpose(t, 0, 1, &tr)); /* {5, 4} */
  if (tr && i32) CHECK_OK(lc_index_select(tr, 0, i32, &r2));
  if (r2) {
    for (int64_t i = 0; i < 2; i++)
      for (int64_t j = 0; j < 4; j++)
        CHECK(at2(r2, i, j) == at2(t, j, v32[i]));
  }
  lc_release(tr);
out:
  lc_release(t);
  lc_release(idx);
  lc_release(i32);
  lc_release(r0);
  lc_release(r1);
  lc_release(r2);
}

TEST(index_select_errors) {
  int64_t s[] = {4, 5}, si[] = {2}, s2[] = {1, 2};
  int64_t bad[] = {1, 5}, neg[] = {-1, 0}, ok2[] = {0, 1};
  lc_tensor *t = seqb(2, s, LC_FLOAT32, 0), *ib = i64s(1, si, bad), *in = i64s(1, si, neg),
            *i2 = i64s(2, s2, ok2), *fi = NULL, *x = NULL;
  CHECK_OK(lc_zeros(1, si, LC_FLOAT32, &fi));
  if (!t || !ib || !in || !i2 || !fi) goto out;
  CHECK_STATUS(lc_index_select(t, 1, ib, &x), LC_EINDEX);
  CHECK(strstr(lc_last_error(), "index_select: index[1] = 5 out of range for dim 1 of size 5 "
                                "(expected 0..4)") != NULL);
  CHECK_STATUS(lc_index_select(t, 0, in, &x), LC_EINDEX);
  CHECK(strstr(lc_last_error(), "index[0] = -1 out of range") != NULL);
  CHECK_STATUS(lc_index_select(t, 0, i2, &x), LC_ESHAPE);
  CHECK_STATUS(lc_index_select(t, 0, fi, &x), LC_EDTYPE);
  CHECK_STATUS(lc_index_select(t, 2, i2, &x), LC_EINDEX);
  CHECK_STATUS(lc_index_select(NULL, 0, ib, &x), LC_EARG);
  CHECK(x == NULL);
out:
  lc_release(t);
  lc_release(ib);
  lc_release(in);
  lc_release(i2);
  lc_release(fi);
}

TEST(index_gather_values_and_errors) {
  int64_t s[] = {3, 5}, si[] = {2, 3};
  int64_t iv[] = {4, 0, 4, 1, 1, 2};
  lc_tensor *t = seqb(2, s, LC_FLOAT64, 10), *idx = i64s(2, si, iv), *r = NULL, *r0 = NULL,
            *x = NULL;
  if (!t || !idx) goto out;
  CHECK_OK(lc_gather(t, 1, idx, &r));
  if (r) {
    CHECK(lc_shape(r)[0] == 2 && lc_shape(r)[1] == 3);
    for (int64_t i = 0; i < 2; i++)
      for (int64_t j = 0; j < 3; j++)
        CHECK(at2(r, i, j) == at2(t, i, iv[i * 3 + j]));
  }
  int64_t iv0[] = {2, 0, 1, 1, 2, 0};
  lc_tensor *idx0 = i64s(2, si, iv0);
  if (idx0) CHECK_OK(lc_gather(t, 0, idx0, &r0));
  if (r0) {
    for (int64_t i = 0; i < 2; i++)
      for (int64_t j = 0; j < 3; j++)
        CHECK(at2(r0, i, j) == at2(t, iv0[i * 3 + j], j));
  }
  int64_t bad[] = {0, 7, 0, 0, 0, 0};
  lc_tensor *ib = i64s(2, si, bad);
  if (ib) CHECK_STATUS(lc_gather(t, 1, ib, &x), LC_EINDEX);
  CHECK(strstr(lc_last_error(), "gather: index[0, 1] = 7 out of range for dim 1 of size 5") !=
        NULL);
  int64_t sbig[] = {4, 1}, vbig[] = {0, 0, 0, 0};
  lc_tensor *big = i64s(2, sbig, vbig); /* 4 rows > 3 on a dim other than dim */
  if (big) CHECK_STATUS(lc_gather(t, 1, big, &x), LC_ESHAPE);
  int64_t s1[] = {2};
  lc_tensor *i1 = i64s(1, s1, vbig);
  if (i1) CHECK_STATUS(lc_gather(t, 1, i1, &x), LC_ESHAPE);
  CHECK(x == NULL);
  lc_release(idx0);
  lc_release(ib);
  lc_release(big);
  lc_release(i1);
out:
  lc_release(t);
  lc_release(idx);
  lc_release(r);
  lc_release(r0);
}

TEST(index_scatter_values_and_inplace) {
  int64_t s[] = {3, 4}, si[] = {2, 2}, ss[] = {2, 3};
  int64_t iv[] = {3, 1, 0, 2};
  lc_tensor *t = seqb(2, s, LC_FLOAT32, 0), *idx = i64s(2, si, iv),
            *src = seqb(2, ss, LC_FLOAT64, 100), *r = NULL;
  if (!t || !idx || !src) goto out;
  CHECK_OK(lc_scatter(t, 1, idx, src, &r));
  if (r) {
    CHECK(lc_dtype_of(r) == LC_FLOAT32);
    double want[3][4];
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < 4; j++)
        want[i][j] = at2(t, i, j);
    for (int i = 0; i < 2; i++)
      for (int j = 0; j < 2; j++)
        want[i][iv[i * 2 + j]] = at2(src, i, j);
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < 4; j++)
        CHECK(at2(r, i, j) == want[i][j]);
    CHECK(at2(t, 0, 3) == 3); /* the input is untouched */
  }
  /* in place */
  uint64_t v0 = lc_version(t);
  CHECK_OK(lc_scatter_(t, 1, idx, src));
  CHECK(lc_version(t) > v0);
  if (r) {
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < 4; j++)
        CHECK(at2(t, i, j) == at2(r, i, j));
  }
  int64_t bad[] = {0, 4, 0, 0};
  lc_tensor *ib = i64s(2, si, bad), *x = NULL;
  if (ib) CHECK_STATUS(lc_scatter(t, 1, ib, src, &x), LC_EINDEX);
  CHECK(strstr(lc_last_error(), "scatter: index[0, 1] = 4 out of range for dim 1 of size 4") !=
        NULL);
  if (ib) CHECK_STATUS(lc_scatter_(t, 1, ib, src), LC_EINDEX);
  int64_t s1[] = {1, 1};
  lc_tensor *small = NULL;
  CHECK_OK(lc_zeros(2, s1, LC_FLOAT32, &small)); /* src smaller than index */
  if (small) CHECK_STATUS(lc_scatter(t, 1, idx, small, &x), LC_ESHAPE);
  CHECK(x == NULL);
  lc_release(ib);
  lc_release(small);
out:
  lc_release(t);
  lc_release(idx);
  lc_release(src);
  lc_release(r);
}

TEST(index_scatter_add_accumulates) {
  int64_t s[] = {3, 2}, si[] = {4, 2};
  int64_t iv[] = {0, 2, 0, 2, 1, 0, 0, 0};
  lc_tensor *t = NULL, *idx = i64s(2, si, iv), *src = seqb(2, si, LC_INT64, 1), *r = NULL;
  CHECK_OK(lc_ones(2, s, LC_INT64, &t));
  if (!t || !idx || !src) goto out;
  CHECK_OK(lc_scatter_add(t, 0, idx, src, &r));
  if (r) {
    CHECK(lc_dtype_of(r) == LC_INT64);
    double want[3][2] = {{1, 1}, {1, 1}, {1, 1}};
    for (int i = 0; i < 4; i++)
      for (int j = 0; j < 2; j++)
        want[iv[i * 2 + j]][j] += at2(src, i, j);
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < 2; j++)
        CHECK(at2(r, i, j) == want[i][j]);
  }
out:
  lc_release(t);
  lc_release(idx);
  lc_release(src);
  lc_release(r);
}

TEST(index_masked_fill) {
  int64_t s[] = {3, 4}, sm[] = {4}, sbad[] = {3};
  uint8_t mv[] = {1, 0, 0, 1}, mb[] = {1, 0, 1};
  lc_tensor *t = seqb(2, s, LC_INT32, 0), *m = bools(1, sm, mv), *mbad = bools(1, sbad, mb),
            *r = NULL, *x = NULL, *fm = NULL;
  if (!t || !m || !mbad) goto out;
  CHECK_OK(lc_masked_fill(t, m, -7, &r)); /* the mask row broadcasts over rows */
  if (r) {
    CHECK(lc_dtype_of(r) == LC_INT32);
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < 4; j++)
        CHECK(at2(r, i, j) == (mv[j] ? -7 : at2(t, i, j)));
  }
  CHECK_STATUS(lc_masked_fill(t, mbad, 1, &x), LC_ESHAPE);
  CHECK_OK(lc_zeros(1, sm, LC_FLOAT32, &fm));
  if (fm) CHECK_STATUS(lc_masked_fill(t, fm, 1, &x), LC_EDTYPE);
  /* a mask larger than t does not broadcast *to* t */
  int64_t s34[] = {2, 3, 4};
  lc_tensor *m3 = NULL;
  CHECK_OK(lc_zeros(3, s34, LC_BOOL, &m3));
  if (m3) CHECK_STATUS(lc_masked_fill(t, m3, 1, &x), LC_ESHAPE);
  lc_release(m3);
  CHECK(x == NULL);
  /* in place on a transposed view writes through to the base */
  lc_tensor *tr = NULL, *m2 = NULL;
  int64_t s3[] = {3};
  uint8_t m2v[] = {0, 1, 0};
  m2 = bools(1, s3, m2v);
  CHECK_OK(lc_transpose(t, 0, 1, &tr)); /* {4, 3}: mask over t's rows */
  if (tr && m2) {
    CHECK_OK(lc_masked_fill_(tr, m2, 99));
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < 4; j++)
        CHECK(at2(t, i, j) == (i == 1 ? 99 : i * 4 + j));
  }
  lc_release(tr);
  lc_release(m2);
out:
  lc_release(t);
  lc_release(m);
  lc_release(mbad);
  lc_release(r);
  lc_release(fm);
}

TEST(index_masked_select_and_nonzero) {
  int64_t s[] = {2, 3}, sm[] = {2, 1};
  uint8_t mv[] = {0, 1, 1, 0, 1, 0};
  lc_tensor *t = seqb(2, s, LC_FLOAT32, 1), *m = bools(2, s, mv), *mcol = NULL, *r = NULL,
            *r2 = NULL, *nz = NULL;
  uint8_t cv[] = {1, 0};
  mcol = bools(2, sm, cv);
  if (!t || !m || !mcol) goto out;
  CHECK_OK(lc_masked_select(t, m, &r));
  if (r) {
    int64_t k = 0;
    for (int i = 0; i < 6; i++)
      if (mv[i]) {
        CHECK(at1(r, k) == at2(t, i / 3, i % 3));
        k++;
      }
    CHECK(lc_ndim(r) == 1 && lc_shape(r)[0] == k);
  }
  CHECK_OK(lc_masked_select(t, mcol, &r2)); /* the mask broadcasts: row 0 */
  if (r2) {
    CHECK(lc_shape(r2)[0] == 3);
    for (int j = 0; j < 3; j++)
      CHECK(at1(r2, j) == at2(t, 0, j));
  }
  CHECK_OK(lc_nonzero(m, &nz));
  if (nz) {
    CHECK(lc_dtype_of(nz) == LC_INT64 && lc_ndim(nz) == 2 && lc_shape(nz)[1] == 2);
    int64_t k = 0;
    for (int i = 0; i < 6; i++)
      if (mv[i]) {
        CHECK(at2(nz, k, 0) == i / 3 && at2(nz, k, 1) == i % 3);
        k++;
      }
    CHECK(lc_shape(nz)[0] == k);
    CHECK(lc_grad_fn_name(nz) == NULL);
  }
  lc_tensor *x = NULL;
  CHECK_STATUS(lc_masked_select(t, t, &x), LC_EDTYPE);
  CHECK(x == NULL);
  /* nonzero of a 0-dim tensor: {1, 0} or {0, 0} */
  lc_tensor *z = NULL, *zn = NULL, *f = NULL, *fn = NULL;
  CHECK_OK(lc_scalar(3, LC_FLOAT32, &z));
  if (z) CHECK_OK(lc_nonzero(z, &zn));
  if (zn) CHECK(lc_shape(zn)[0] == 1 && lc_shape(zn)[1] == 0);
  /* a float tensor: -0.5 counts, 0 does not */
  double fv[] = {0, -0.5, 0, 2};
  int64_t s4[] = {4};
  CHECK_OK(lc_from_data(1, s4, LC_FLOAT64, fv, &f));
  if (f) CHECK_OK(lc_nonzero(f, &fn));
  if (fn) CHECK(lc_shape(fn)[0] == 2 && at2(fn, 0, 0) == 1 && at2(fn, 1, 0) == 3);
  lc_release(z);
  lc_release(zn);
  lc_release(f);
  lc_release(fn);
out:
  lc_release(t);
  lc_release(m);
  lc_release(mcol);
  lc_release(r);
  lc_release(r2);
  lc_release(nz);
}

TEST(index_large_parallel_gather_matches_loop) {
  /* big enough to run on several threads */
  int64_t s[] = {300, 257}, si[] = {300, 300};
  lc_tensor *t = NULL, *idx = NULL, *r = NULL, *sa = NULL, *z = NULL;
  CHECK_OK(lc_randn(2, s, LC_FLOAT32, &t));
  CHECK_OK(lc_randint(0, 257, 2, si, LC_INT64, &idx));
  if (!t || !idx) goto out;
  CHECK_OK(lc_gather(t, 1, idx, &r));
  if (r) {
    int bad = 0;
    for (int64_t i = 0; i < 300; i++)
      for (int64_t j = 0; j < 300; j++)
        bad += at2(r, i, j) != at2(t, i, (int64_t)at2(idx, i, j));
    CHECK(bad == 0);
  }
  /* scatter_add of ones counts how often each position was hit */
  lc_tensor *ones = NULL;
  CHECK_OK(lc_ones(2, si, LC_FLOAT32, &ones));
  CHECK_OK(lc_zeros(2, s, LC_FLOAT32, &z));
  if (ones && z) CHECK_OK(lc_scatter_add(z, 1, idx, ones, &sa));
  if (sa) {
    int64_t *cnt = calloc(300 * 257, sizeof *cnt);
    for (int64_t i = 0; cnt && i < 300; i++)
      for (int64_t j = 0; j < 300; j++)
        cnt[i * 257 + (int64_t)at2(idx, i, j)]++;
    int bad = 0;
    for (int64_t i = 0; cnt && i < 300; i++)
      for (int64_t j = 0; j < 257; j++)
        bad += at2(sa, i, j) != (double)cnt[i * 257 + j];
    CHECK(bad == 0);
    free(cnt);
  }
  lc_release(ones);
out:
  lc_release(t);
  lc_release(idx);
  lc_release(r);
  lc_release(sa);
  lc_release(z);
}

TEST(index_select_embedding_lookup_matches_loop) {
  /* dim 0 of a wide table with many indices: threads split the index, rows stay contiguous */
  int64_t s[] = {1000, 64}, si[] = {5000};
  lc_tensor *w = NULL, *idx = NULL, *r = NULL, *g = NULL;
  CHECK_OK(lc_randn(2, s, LC_FLOAT64, &w));
  CHECK_OK(lc_randint(0, 1000, 1, si, LC_INT64, &idx));
  if (!w || !idx) goto out;
  CHECK_OK(lc_index_select(w, 0, idx, &r));
  if (r) {
    int bad = 0;
    for (int64_t k = 0; k < 5000; k++) {
      int64_t row = (int64_t)at1(idx, k);
      for (int64_t j = 0; j < 64; j++)
        bad += at2(r, k, j) != at2(w, row, j);
    }
    CHECK(bad == 0);
  }
  /* backward (index_add of ones) counts the hits of each row */
  CHECK_OK(lc_set_requires_grad(w, true));
  lc_release(r);
  r = NULL;
  CHECK_OK(lc_index_select(w, 0, idx, &r));
  int64_t so[] = {5000, 64};
  CHECK_OK(lc_ones(2, so, LC_FLOAT64, &g));
  if (r && g) CHECK_OK(lc_backward(r, g, false));
  lc_tensor *gw = lc_grad(w);
  CHECK(gw != NULL);
  if (gw) {
    int64_t *cnt = calloc(1000, sizeof *cnt);
    for (int64_t k = 0; cnt && k < 5000; k++)
      cnt[(int64_t)at1(idx, k)]++;
    int bad = 0;
    for (int64_t i = 0; cnt && i < 1000; i++)
      for (int64_t j = 0; j < 64; j += 21)
        bad += at2(gw, i, j) != (double)cnt[i];
    CHECK(bad == 0);
    free(cnt);
  }
out:
  lc_release(w);
  lc_release(idx);
  lc_release(r);
  lc_release(g);
}

TEST(index_inplace_on_view_of_grad_tensor_is_refused) {
  int64_t s[] = {2, 3}, sm[] = {3};
  uint8_t mv[] = {1, 0, 1};
  lc_tensor *x = NULL, *row = NULL, *m = bools(1, sm, mv);
  CHECK_OK(lc_zeros(2, s, LC_FLOAT32, &x));
  if (!x || !m) goto out;
  CHECK_OK(lc_set_requires_grad(x, true));
  CHECK_OK(lc_select(x, 0, 1, &row)); /* a view of a leaf that requires grad */
  if (row) CHECK_STATUS(lc_masked_fill_(row, m, 1), LC_EGRAD);
  CHECK(at2(x, 1, 0) == 0); /* nothing was written */
out:
  lc_release(x);
  lc_release(row);
  lc_release(m);
}

/* ---------------------------------------------------------------- gradients */

typedef struct ictx {
  int which;
  lc_tensor *idx, *mask;
} ictx;

static lc_status f_index(void *vctx, lc_tensor *const *in, lc_tensor **out) {
  ictx *c = vctx;
  switch (c->which) {
  case 0: return lc_index_select(in[0], 1, c->idx, out);
  case 1: return lc_gather(in[0], 1, c->idx, out);
  case 2: return lc_scatter(in[0], 1, c->idx, in[1], out);
  case 3: return lc_scatter_add(in[0], 1, c->idx, in[1], out);
  case 4: return lc_masked_fill(in[0], c->mask, 2.5, out);
  case 5: return lc_masked_select(in[0], c->mask, out);
  default: return lc_set_error(LC_EARG, "bad case");
  }
}

TEST(index_gradients_numeric) {
  int64_t s[] = {3, 4}, s1[] = {5}, s2[] = {3, 2}, ssrc[] = {3, 3}, sm[] = {2, 3, 4};
  int64_t v1[] = {3, 0, 3, 1, 3};    /* repeats: gradients accumulate */
  int64_t v2[] = {1, 1, 0, 3, 2, 0}; /* gather: repeats within a row */
  int64_t v3[] = {1, 3, 0, 2, 2, 0}; /* scatter: distinct within each row */
  uint8_t mv[24];
  for (int i = 0; i < 24; i++)
    mv[i] = (i * 7) % 3 == 0;
  lc_tensor *x = NULL, *src = NULL, *i1 = i64s(1, s1, v1), *i2 = i64s(2, s2, v2),
            *i3 = i64s(2, s2, v3), *m = bools(3, sm, mv), *m2 = NULL;
  int64_t sm2[] = {4};
  uint8_t mv2[] = {1, 0, 0, 1};
  m2 = bools(1, sm2, mv2);
  CHECK_OK(lc_randn(2, s, LC_FLOAT64, &x));
  CHECK_OK(lc_randn(2, ssrc, LC_FLOAT64, &src)); /* larger than the index: padding grads */
  if (!x || !src || !i1 || !i2 || !i3 || !m || !m2) goto out;
  lc_set_requires_grad(x, true);
  lc_set_requires_grad(src, true);
  char msg[256];
  struct {
    int which, n;
    lc_tensor *idx, *mask;
  } cases[] = {{0, 1, i1, NULL}, {1, 1, i2, NULL}, {2, 2, i3, NULL},
               {3, 2, i2, NULL}, {4, 1, NULL, m2}, {5, 1, NULL, m}};
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    ictx c = {cases[k].which, cases[k].idx, cases[k].mask};
    lc_tensor *ins[] = {x, src};
    int ok = gradcheck(f_index, &c, cases[k].n, ins, 1e-6, 1e-7, 1e-6, msg, sizeof msg);
    if (!ok) printf("  case %d: %s\n", cases[k].which, msg);
    CHECK(ok);
  }
out:
  lc_release(x);
  lc_release(src);
  lc_release(i1);
  lc_release(i2);
  lc_release(i3);
  lc_release(m);
  lc_release(m2);
}

TEST(index_grad_fn_names_and_scatter_backward_values) {
  int64_t s[] = {2, 3}, si[] = {2, 1};
  int64_t iv[] = {2, 0};
  uint8_t mv[] = {1, 0, 1, 0, 0, 1};
  lc_tensor *x = NULL, *src = NULL, *idx = i64s(2, si, iv), *m = bools(2, s, mv);
  CHECK_OK(lc_randn(2, s, LC_FLOAT64, &x));
  CHECK_OK(lc_randn(2, si, LC_FLOAT64, &src));
  if (!x || !src || !idx || !m) goto out;
  lc_set_requires_grad(x, true);
  lc_set_requires_grad(src, true);
  lc_tensor *r[6] = {NULL};
  int64_t s1[] = {2};
  lc_tensor *i1 = i64s(1, s1, iv);
  if (i1) CHECK_OK(lc_index_select(x, 1, i1, &r[0]));
  CHECK_OK(lc_gather(x, 1, idx, &r[1]));
  CHECK_OK(lc_scatter(x, 1, idx, src, &r[2]));
  CHECK_OK(lc_scatter_add(x, 1, idx, src, &r[3]));
  CHECK_OK(lc_masked_fill(x, m, 0, &r[4]));
  CHECK_OK(lc_masked_select(x, m, &r[5]));
  const char *names[] = {"IndexSelectBackward", "GatherBackward",     "ScatterBackward",
                         "ScatterAddBackward",  "MaskedFillBackward", "MaskedSelectBackward"};
  for (int k = 0; k < 6; k++)
    CHECK(r[k] && is_name(r[k], names[k]));
  /* scatter backward with a seed of ones: x's grad is 0 where src landed, 1 elsewhere */
  lc_tensor *g = NULL;
  CHECK_OK(lc_ones(2, s, LC_FLOAT64, &g));
  if (r[2] && g) CHECK_OK(lc_backward(r[2], g, false));
  lc_tensor *gx = lc_grad(x), *gs = lc_grad(src);
  CHECK(gx && gs);
  if (gx && gs) {
    for (int i = 0; i < 2; i++)
      for (int j = 0; j < 3; j++)
        CHECK(at2(gx, i, j) == (j == iv[i] ? 0 : 1));
    CHECK(at2(gs, 0, 0) == 1 && at2(gs, 1, 0) == 1);
  }
  for (int k = 0; k < 6; k++)
    lc_release(r[k]);
  lc_release(g);
  lc_release(i1);
  /* scatter_ on a leaf that requires grad is refused by autograd */
  CHECK_STATUS(lc_scatter_(x, 1, idx, src), LC_EGRAD);
out:
  lc_release(x);
  lc_release(src);
  lc_release(idx);
  lc_release(m);
}

/* The dim and index rules (lucid_core.h) every op and the Lua binding apply: 0-based texts in
 * C, 1-based once rendered for Lua; a bad index tensor value named by its position. */
TEST(index_rules_and_their_messages) {
  int d = -1;
  CHECK_OK(lc_wrap_dim(&d, 3, "f"));
  CHECK(d == 2);
  CHECK_STATUS(lc_wrap_dim64(INT64_C(1) << 40, 2, "f", &d), LC_EINDEX);
  CHECK(strstr(lc_last_error(), "f: dim 1099511627776 out of range for a tensor with 2 dims "
                                "(expected 0..1 or -2..-1)") != NULL);
  int64_t i = -3;
  CHECK_OK(lc_wrap_index(&i, 3, 0, "f"));
  CHECK(i == 0);
  i = 3;
  CHECK_STATUS(lc_wrap_index(&i, 3, 1, "f"), LC_EINDEX);
  CHECK(strcmp(lc_last_error(),
               "f: index 3 out of range for dim 1 of size 3 (expected 0..2 or -3..-1)") == 0);
  char buf[256];
  lc_render_positions(lc_last_error_marked(), 1, buf, sizeof buf);
  CHECK(strcmp(buf, "f: index 4 out of range for dim 2 of size 3 (expected 1..3 or -3..-1)") == 0);
  CHECK_STATUS(lc_wrap_index(&i, 0, 0, "f"), LC_EINDEX);
  CHECK(strstr(lc_last_error(), "of size 0 (it has no indices)") != NULL);

  /* a transposed (non-contiguous) index tensor: the position is the logical one */
  int64_t s[] = {2, 3}, v[] = {0, 1, 2, 0, 1, 9}; /* [[0, 1, 2], [0, 1, 9]] */
  lc_tensor *idx = i64s(2, s, v), *t = NULL;
  if (!idx) return;
  CHECK_OK(lc_transpose(idx, 0, 1, &t)); /* 9 is t[2][1], flat element 5 of {3, 2} */
  if (t) {
    CHECK_STATUS(lc_check_indices(t, 3, 0, "g"), LC_EINDEX);
    CHECK(strcmp(lc_last_error(),
                 "g: index[2, 1] = 9 out of range for dim 0 of size 3 (expected 0..2)") == 0);
    CHECK_OK(lc_check_indices(t, 10, 0, "g"));
  }
  lc_release(t);
  lc_release(idx);
}
