/* test_advindex.c - einsum, scatter_reduce, index_add, index_copy, index_put, take_along_dim,
 * one_hot: values against loops written here, errors, and gradients (gradcheck, float64). */
#include "gradcheck.h"
#include "test.h"

#include <stdio.h>
#include <string.h>

static lc_tensor *f64(int nd, const int64_t *shape, const double *v) {
  lc_tensor *t = NULL;
  if (lc_from_data(nd, shape, LC_FLOAT64, v, &t)) return NULL;
  return t;
}

static lc_tensor *i64(int nd, const int64_t *shape, const int64_t *v) {
  lc_tensor *t = NULL;
  if (lc_from_data(nd, shape, LC_INT64, v, &t)) return NULL;
  return t;
}

static double get(const lc_tensor *t, int64_t k) {
  double buf[64];
  if (lc_numel(t) > 64 || lc_copy_to_buffer(t, LC_FLOAT64, buf)) return NAN;
  return buf[k];
}

TEST(einsum_matches_loops) {
  int64_t sa[] = {2, 3}, sb[] = {3, 4};
  double av[6], bv[12];
  for (int k = 0; k < 6; k++)
    av[k] = k * 0.5 - 1;
  for (int k = 0; k < 12; k++)
    bv[k] = 1.0 / (k + 1);
  lc_tensor *a = f64(2, sa, av), *b = f64(2, sb, bv), *r = NULL, *tr = NULL, *bt = NULL;
  const lc_tensor *ops[2] = {a, b};
  CHECK_OK(lc_einsum("ij,jk->ik", 2, ops, &r));
  if (r) {
    CHECK(lc_ndim(r) == 2 && lc_shape(r)[0] == 2 && lc_shape(r)[1] == 4);
    for (int i = 0; i < 2; i++)
      for (int k = 0; k < 4; k++) {
        double s = 0;
        for (int j = 0; j < 3; j++)
          s += av[i * 3 + j] * bv[j * 4 + k];
        CHECK_NEAR(get(r, i * 4 + k), s, 1e-12);
      }
  }
  /* trace of a 3x3 (repeated subscripts, implicit output) */
  int64_t s3[] = {3, 3};
  double mv[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  lc_tensor *m = f64(2, s3, mv);
  const lc_tensor *o1[1] = {m};
  CHECK_OK(lc_einsum("ii", 1, o1, &tr));
  if (tr) CHECK(lc_ndim(tr) == 0 && get(tr, 0) == 15);
  /* ellipsis broadcasting: {2,1,2,3} x {3,3,2} */
  lc_tensor *x = NULL, *y = NULL;
  int64_t sx[] = {2, 1, 2, 3}, sy[] = {3, 3, 2};
  CHECK_OK(lc_ones(4, sx, LC_FLOAT64, &x));
  CHECK_OK(lc_ones(3, sy, LC_FLOAT64, &y));
  const lc_tensor *o2[2] = {x, y};
  CHECK_OK(lc_einsum("...ij,...jk", 2, o2, &bt));
  if (bt) {
    CHECK(lc_ndim(bt) == 4 && lc_shape(bt)[0] == 2 && lc_shape(bt)[1] == 3 && lc_shape(bt)[3] == 2);
    CHECK(get(bt, 0) == 3);
  }
  /* errors */
  lc_tensor *bad = NULL;
  CHECK_STATUS(lc_einsum("ij,jk->iz", 2, ops, &bad), LC_EARG);
  CHECK_STATUS(lc_einsum("ijk,jk", 2, ops, &bad), LC_ESHAPE);
  CHECK_STATUS(lc_einsum("ij,kl,lm", 2, ops, &bad), LC_EARG);
  CHECK_STATUS(lc_einsum("ij,ik", 2, ops, &bad), LC_ESHAPE);
  CHECK(bad == NULL);
  lc_release(a);
  lc_release(b);
  lc_release(r);
  lc_release(m);
  lc_release(tr);
  lc_release(x);
  lc_release(y);
  lc_release(bt);
}

TEST(scatter_reduce_values) {
  int64_t s[] = {2, 2}, si[] = {2, 2};
  double xv[] = {1, 2, 3, 4}, sv[] = {5, 6, 7, 8};
  int64_t iv[] = {0, 0, 1, 0};
  lc_tensor *x = f64(2, s, xv), *src = f64(2, s, sv), *idx = i64(2, si, iv), *r = NULL;
  /* dim 0: (0,0)<-5, (0,1)<-6, (1,0)<-7, (0,1)<-8 */
  double want[LC_SR_COUNT][2][4] = {
      {{6, 16, 10, 4}, {5, 14, 7, 4}},     {{5, 96, 21, 4}, {5, 48, 7, 4}},
      {{3, 16.0 / 3, 5, 4}, {5, 7, 7, 4}}, {{5, 8, 7, 4}, {5, 8, 7, 4}},
      {{1, 2, 3, 4}, {5, 6, 7, 4}},
  };
  for (int red = 0; red < LC_SR_COUNT; red++)
    for (int inc = 0; inc < 2; inc++) {
      r = NULL;
      CHECK_OK(lc_scatter_reduce(x, 0, idx, src, (lc_sr_reduce)red, inc == 0, &r));
      if (r)
        for (int k = 0; k < 4; k++)
          CHECK_NEAR(get(r, k), want[red][inc][k], 1e-12);
      lc_release(r);
    }
  int64_t bad_v[] = {0, 2, 0, 0};
  lc_tensor *bad = i64(2, si, bad_v);
  r = NULL;
  CHECK_STATUS(lc_scatter_reduce(x, 0, bad, src, LC_SR_SUM, true, &r), LC_EINDEX);
  CHECK(strstr(lc_last_error(), "scatter_reduce") != NULL);
  CHECK_STATUS(lc_scatter_reduce(x, 0, idx, src, (lc_sr_reduce)9, true, &r), LC_EARG);
  lc_sr_reduce code;
  CHECK_OK(lc_sr_reduce_from_name("amin", &code));
  CHECK(code == LC_SR_AMIN);
  CHECK_STATUS(lc_sr_reduce_from_name("max", &code), LC_EARG);
  lc_release(x);
  lc_release(src);
  lc_release(idx);
  lc_release(bad);
}

TEST(index_add_copy_put_take_one_hot) {
  int64_t s[] = {3, 2}, s1[] = {2};
  double xv[] = {0, 1, 2, 3, 4, 5}, sv[] = {10, 20, 30, 40};
  int64_t iv[] = {2, 2};
  int64_t s22[] = {2, 2};
  lc_tensor *x = f64(2, s, xv), *src = f64(2, s22, sv), *idx = i64(1, s1, iv), *r = NULL;
  CHECK_OK(lc_index_add(x, 0, idx, src, 0.5, &r));
  if (r) {
    CHECK(get(r, 4) == 4 + 20 && get(r, 5) == 5 + 30 && get(r, 0) == 0);
    lc_release(r);
    r = NULL;
  }
  CHECK_OK(lc_index_copy(x, 0, idx, src, &r));
  if (r) {
    CHECK(get(r, 4) == 10 || get(r, 4) == 30);
    lc_release(r);
    r = NULL;
  }
  int64_t i0v[] = {0, 2, 0}, i1v[] = {1, 0, 1}, s3[] = {3};
  lc_tensor *i0 = i64(1, s3, i0v), *i1 = i64(1, s3, i1v), *v = NULL;
  CHECK_OK(lc_full(0, NULL, 1.5, LC_FLOAT64, &v));
  const lc_tensor *ix[2] = {i0, i1};
  CHECK_OK(lc_index_put(x, 2, ix, v, true, &r));
  if (r) {
    CHECK(get(r, 1) == 1 + 3 && get(r, 4) == 4 + 1.5 && get(r, 0) == 0);
    lc_release(r);
    r = NULL;
  }
  int64_t bad[] = {3, 0, 0};
  lc_tensor *ib = i64(1, s3, bad);
  const lc_tensor *ixb[2] = {ib, i1};
  CHECK_STATUS(lc_index_put(x, 2, ixb, v, false, &r), LC_EINDEX);
  CHECK_STATUS(lc_index_add(x, 0, ib, src, 1, &r), LC_ESHAPE);
  /* take_along_dim: flattened */
  int64_t tv[] = {5, 0};
  lc_tensor *ti = i64(1, s1, tv);
  CHECK_OK(lc_take_along_dim(x, ti, false, 0, &r));
  if (r) {
    CHECK(get(r, 0) == 5 && get(r, 1) == 0);
    lc_release(r);
    r = NULL;
  }
  /* one_hot */
  CHECK_OK(lc_one_hot(i0, -1, &r));
  if (r) {
    CHECK(lc_dtype_of(r) == LC_INT64 && lc_shape(r)[1] == 3);
    CHECK(get(r, 0) == 1 && get(r, 5) == 1 && get(r, 6) == 1 && get(r, 1) == 0);
    lc_release(r);
    r = NULL;
  }
  CHECK_STATUS(lc_one_hot(i0, 2, &r), LC_EINDEX);
  lc_release(x);
  lc_release(src);
  lc_release(idx);
  lc_release(i0);
  lc_release(i1);
  lc_release(v);
  lc_release(ib);
  lc_release(ti);
}

typedef struct gc_ctx {
  int which;
  lc_tensor *idx;
} gc_ctx;

static lc_status f_adv(void *vc, lc_tensor *const *in, lc_tensor **out) {
  gc_ctx *c = vc;
  const lc_tensor *ops[2] = {in[0], in[1]};
  switch (c->which) {
  case 0: return lc_einsum("bij,bjk->bki", 2, ops, out);
  case 1: return lc_einsum("iij,jk->k", 2, ops, out);
  default:
    return lc_scatter_reduce(in[0], 0, c->idx, in[1], (lc_sr_reduce)(c->which - 2), true, out);
  }
}

TEST(advindex_gradcheck) {
  int64_t sa[] = {2, 2, 3}, sb[] = {2, 3, 2}, sc[] = {2, 2, 3}, sd[] = {3, 2};
  int64_t sx[] = {3, 3}, ss[] = {2, 3}, iv[] = {0, 1, 0, 2, 0, 0};
  lc_tensor *a = NULL, *b = NULL, *c3 = NULL, *d = NULL, *x = NULL, *s = NULL;
  lc_tensor *idx = i64(2, ss, iv);
  CHECK_OK(lc_randn(3, sa, LC_FLOAT64, &a));
  CHECK_OK(lc_randn(3, sb, LC_FLOAT64, &b));
  CHECK_OK(lc_randn(3, sc, LC_FLOAT64, &c3));
  CHECK_OK(lc_randn(2, sd, LC_FLOAT64, &d));
  CHECK_OK(lc_randn(2, sx, LC_FLOAT64, &x));
  CHECK_OK(lc_randn(2, ss, LC_FLOAT64, &s));
  lc_tensor *all[] = {a, b, c3, d, x, s};
  for (int k = 0; k < 6; k++)
    if (all[k]) lc_set_requires_grad(all[k], true);
  char msg[256];
  for (int w = 0; w < 2 + LC_SR_COUNT; w++) {
    gc_ctx c = {w, idx};
    lc_tensor *ins[2] = {w == 0 ? a : w == 1 ? c3 : x, w == 0 ? b : w == 1 ? d : s};
    int ok = gradcheck(f_adv, &c, 2, ins, 1e-6, 1e-7, 1e-5, msg, sizeof msg);
    if (!ok) printf("  case %d: %s\n", w, msg);
    CHECK(ok);
  }
  lc_release(a);
  lc_release(b);
  lc_release(c3);
  lc_release(d);
  lc_release(x);
  lc_release(s);
  lc_release(idx);
}
