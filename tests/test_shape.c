/* test_shape.c - view ops: layout (shape, strides, offset), storage sharing, values, errors,
 * and gradients (numerically checked in float64). */
#include "gradcheck.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

/* 0, 1, 2, ... in the given shape. */
static lc_tensor *seq(int nd, const int64_t *shape, lc_dtype dt) {
  lc_tensor *a = NULL, *r = NULL;
  int64_t n = 1;
  for (int i = 0; i < nd; i++)
    n *= shape[i];
  if (lc_arange(0, (double)n, 1, dt, &a)) return NULL;
  if (lc_reshape(a, nd, shape, &r)) r = NULL;
  lc_release(a);
  return r;
}

/* All elements in C order as doubles (malloc'ed). */
static double *vals(const lc_tensor *t) {
  double *b = malloc((size_t)(lc_numel(t) ? lc_numel(t) : 1) * sizeof *b);
  if (lc_copy_to_buffer(t, LC_FLOAT64, b)) {
    free(b);
    return NULL;
  }
  return b;
}

static bool shape_is(const lc_tensor *t, int nd, const int64_t *shape) {
  if (lc_ndim(t) != nd) return false;
  for (int i = 0; i < nd; i++)
    if (lc_shape(t)[i] != shape[i]) return false;
  return true;
}

static bool strides_are(const lc_tensor *t, const int64_t *strides) {
  for (int i = 0; i < lc_ndim(t); i++)
    if (lc_strides(t)[i] != strides[i]) return false;
  return true;
}

/* Element of t at a multi-index, read through its strides. */
static double at(const lc_tensor *t, const int64_t *idx) {
  double v = NAN;
  lc_get(t, idx, &v);
  return v;
}

TEST(shape_view_shares_storage_and_infers) {
  int64_t s[] = {24};
  lc_tensor *t = seq(1, s, LC_FLOAT32), *v = NULL, *w = NULL;
  if (!t) return;
  int64_t s2[] = {2, 3, 4};
  CHECK_OK(lc_view(t, 3, s2, &v));
  if (v) {
    CHECK(lc_same_storage(t, v));
    CHECK(shape_is(v, 3, s2));
    int64_t st[] = {12, 4, 1};
    CHECK(strides_are(v, st));
    CHECK(lc_offset(v) == 0);
    int64_t idx[] = {1, 2, 3};
    CHECK(at(v, idx) == 23);
    CHECK(lc_grad_fn_name(v) == NULL);
  }
  int64_t s3[] = {4, -1};
  CHECK_OK(lc_view(t, 2, s3, &w));
  if (w) {
    int64_t want[] = {4, 6};
    CHECK(shape_is(w, 2, want));
    CHECK(lc_same_storage(t, w));
    /* writes through a view are visible in the base */
    ((float *)lc_data(w))[7] = 100;
    int64_t i7[] = {7};
    CHECK(at(t, i7) == 100);
  }
  lc_release(t);
  lc_release(v);
  lc_release(w);
}

TEST(shape_view_errors) {
  int64_t s[] = {24};
  lc_tensor *t = seq(1, s, LC_FLOAT32), *v = NULL;
  if (!t) return;
  int64_t bad[] = {5, 5};
  CHECK_STATUS(lc_view(t, 2, bad, &v), LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "view: shape {5, 5} is invalid for input of size 24") != NULL);
  int64_t two[] = {-1, -1};
  CHECK_STATUS(lc_view(t, 2, two, &v), LC_ESHAPE);
  int64_t neg[] = {-2, 12};
  CHECK_STATUS(lc_view(t, 2, neg, &v), LC_ESHAPE);
  int64_t inf[] = {5, -1};
  CHECK_STATUS(lc_view(t, 2, inf, &v), LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "invalid for input of size 24") != NULL);
  CHECK(v == NULL);
  lc_release(t);
}

TEST(shape_view_of_noncontiguous) {
  int64_t s[] = {2, 3, 4};
  lc_tensor *t = seq(3, s, LC_FLOAT64), *p = NULL, *v = NULL, *bad = NULL, *r = NULL;
  if (!t) return;
  int perm[] = {2, 0, 1};
  CHECK_OK(lc_permute(t, perm, &p)); /* {4, 2, 3}, strides {1, 12, 4} */
  if (!p) goto out;
  int64_t ps[] = {4, 2, 3}, pst[] = {1, 12, 4};
  CHECK(shape_is(p, 3, ps) && strides_are(p, pst));
  CHECK(!lc_is_contiguous(p));
  /* dims 1 and 2 form one contiguous chunk, so {4, 6} is a view */
  int64_t s46[] = {4, 6}, st46[] = {1, 4};
  CHECK_OK(lc_view(p, 2, s46, &v));
  if (v) {
    CHECK(strides_are(v, st46));
    CHECK(lc_same_storage(v, t));
    for (int64_t i = 0; i < 4; i++)
      for (int64_t j = 0; j < 6; j++) {
        int64_t iv[] = {i, j}, it[] = {j / 3, j % 3, i};
        CHECK(at(v, iv) == at(t, it));
      }
  }
  /* {24} would need one stride across both chunks: not a view ... */
  int64_t s24[] = {24};
  CHECK_STATUS(lc_view(p, 1, s24, &bad), LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "view: shape {24} is not compatible with the input's size and "
                                "strides; use reshape") != NULL);
  CHECK(bad == NULL);
  /* ... but reshape copies, in C order of the permuted tensor */
  CHECK_OK(lc_reshape(p, 1, s24, &r));
  if (r) {
    CHECK(!lc_same_storage(r, t));
    CHECK(lc_is_contiguous(r));
    double *rv = vals(r);
    for (int64_t k = 0; rv && k < 24; k++) {
      int64_t ip[] = {k / 6, (k / 3) % 2, k % 3};
      CHECK(rv[k] == at(p, ip));
    }
    free(rv);
  }
out:
  lc_release(t);
  lc_release(p);
  lc_release(v);
  lc_release(r);
}

TEST(shape_reshape_views_when_possible) {
  int64_t s[] = {3, 4};
  lc_tensor *t = seq(2, s, LC_FLOAT32), *r = NULL, *e = NULL, *re = NULL;
  if (!t) return;
  int64_t s2[] = {2, 2, -1};
  CHECK_OK(lc_reshape(t, 3, s2, &r));
  if (r) {
    int64_t want[] = {2, 2, 3};
    CHECK(shape_is(r, 3, want));
    CHECK(lc_same_storage(t, r));
  }
  /* an expanded tensor: {3, 1} -> {3, 5}; flattening the last two dims keeps stride 0 */
  int64_t c[] = {3, 1}, ex[] = {3, 5};
  lc_tensor *col = seq(2, c, LC_FLOAT32);
  if (col) {
    CHECK_OK(lc_expand(col, 2, ex, &e));
    int64_t s15[] = {15};
    if (e) CHECK_OK(lc_reshape(e, 1, s15, &re));
    if (re) {
      CHECK(!lc_same_storage(re, col)); /* stride 0 then 1: needs a copy */
      double *v = vals(re);
      for (int k = 0; v && k < 15; k++)
        CHECK(v[k] == (double)(k / 5));
      free(v);
    }
  }
  lc_release(t);
  lc_release(r);
  lc_release(col);
  lc_release(e);
  lc_release(re);
}

TEST(shape_views_of_views_offsets) {
  int64_t s[] = {4, 5};
  lc_tensor *t = seq(2, s, LC_FLOAT32), *tr = NULL, *n = NULL, *sel = NULL, *sl = NULL;
  if (!t) return;
  CHECK_OK(lc_transpose(t, 0, 1, &tr));         /* {5, 4}, strides {1, 5} */
  if (tr) CHECK_OK(lc_narrow(tr, 0, 1, 3, &n)); /* rows 1..3: offset 1 */
  if (n) {
    int64_t ns[] = {3, 4}, nst[] = {1, 5};
    CHECK(shape_is(n, 2, ns) && strides_are(n, nst));
    CHECK(lc_offset(n) == 1);
    CHECK_OK(lc_select(n, 1, -1, &sel)); /* column 3 of n: elements t[3][1..3] */
  }
  if (sel) {
    int64_t ss[] = {3}, sst[] = {1};
    CHECK(shape_is(sel, 1, ss) && strides_are(sel, sst));
    CHECK(lc_offset(sel) == 1 + 3 * 5);
    double *v = vals(sel);
    for (int k = 0; v && k < 3; k++)
      CHECK(v[k] == 3 * 5 + 1 + k);
    free(v);
    CHECK(lc_same_storage(sel, t));
  }
  /* strided slice of a transposed tensor */
  if (tr) CHECK_OK(lc_slice(tr, 1, 1, 4, 2, &sl)); /* columns 1 and 3 of tr */
  if (sl) {
    int64_t ss[] = {5, 2}, sst[] = {1, 10};
    CHECK(shape_is(sl, 2, ss) && strides_are(sl, sst));
    CHECK(lc_offset(sl) == 5);
    for (int64_t i = 0; i < 5; i++)
      for (int64_t j = 0; j < 2; j++) {
        int64_t iv[] = {i, j}, it[] = {1 + 2 * j, i};
        CHECK(at(sl, iv) == at(t, it));
      }
  }
  lc_release(t);
  lc_release(tr);
  lc_release(n);
  lc_release(sel);
  lc_release(sl);
}

TEST(shape_permute_transpose_t) {
  int64_t s[] = {2, 3, 4};
  lc_tensor *t = seq(3, s, LC_FLOAT32), *p = NULL, *tr = NULL, *x = NULL;
  if (!t) return;
  int perm[] = {-1, 0, 1}; /* negative dims wrap */
  CHECK_OK(lc_permute(t, perm, &p));
  if (p) {
    int64_t ps[] = {4, 2, 3}, pst[] = {1, 12, 4};
    CHECK(shape_is(p, 3, ps) && strides_are(p, pst));
    CHECK(lc_same_storage(p, t));
  }
  int rep[] = {0, 1, 1};
  CHECK_STATUS(lc_permute(t, rep, &x), LC_EARG);
  CHECK(strcmp(lc_last_error(), "permute: dim 1 appears more than once in the permutation") == 0);
  int neg[] = {2, 0, -1}; /* -1 is dim 2: a repeat */
  CHECK_STATUS(lc_permute(t, neg, &x), LC_EARG);
  CHECK(strcmp(lc_last_error(), "permute: dim 2 appears more than once in the permutation") == 0);
  int oob[] = {0, 1, 3};
  CHECK_STATUS(lc_permute(t, oob, &x), LC_EINDEX);
  CHECK(strcmp(lc_last_error(), "permute: entry 2: dim 3 out of range for a tensor with 3 dims "
                                "(expected 0..2 or -3..-1)") == 0);
  CHECK_OK(lc_transpose(t, -1, 0, &tr));
  if (tr) {
    int64_t ts[] = {4, 3, 2}, tst[] = {1, 4, 12};
    CHECK(shape_is(tr, 3, ts) && strides_are(tr, tst));
  }
  CHECK_STATUS(lc_transpose(t, 0, 3, &x), LC_EINDEX);
  CHECK_STATUS(lc_t(t, &x), LC_ESHAPE);
  CHECK(x == NULL);
  lc_release(t);
  lc_release(p);
  lc_release(tr);

  /* t() of 2-D swaps; of 1-D and 0-D returns a view of the same shape */
  int64_t m[] = {2, 3}, one[] = {5};
  lc_tensor *a = seq(2, m, LC_FLOAT32), *b = seq(1, one, LC_FLOAT32), *z = NULL, *at2 = NULL,
            *bt = NULL, *zt = NULL;
  CHECK_OK(lc_scalar(7, LC_FLOAT32, &z));
  if (a) CHECK_OK(lc_t(a, &at2));
  if (at2) {
    int64_t ts[] = {3, 2}, tst[] = {1, 3};
    CHECK(shape_is(at2, 2, ts) && strides_are(at2, tst));
  }
  if (b) CHECK_OK(lc_t(b, &bt));
  if (bt) CHECK(shape_is(bt, 1, one) && lc_same_storage(bt, b));
  if (z) CHECK_OK(lc_t(z, &zt));
  if (zt) CHECK(lc_ndim(zt) == 0 && lc_same_storage(zt, z));
  lc_release(a);
  lc_release(b);
  lc_release(z);
  lc_release(at2);
  lc_release(bt);
  lc_release(zt);
}

TEST(shape_narrow_slice_select) {
  int64_t s[] = {4, 6};
  lc_tensor *t = seq(2, s, LC_FLOAT32), *n = NULL, *sl = NULL, *se = NULL, *x = NULL;
  if (!t) return;
  CHECK_OK(lc_narrow(t, -1, -4, 3, &n)); /* columns 2..4 (negative start wraps) */
  if (n) {
    int64_t ns[] = {4, 3}, nst[] = {6, 1};
    CHECK(shape_is(n, 2, ns) && strides_are(n, nst) && lc_offset(n) == 2);
    CHECK(lc_same_storage(n, t));
  }
  CHECK_STATUS(lc_narrow(t, 1, 4, 3, &x), LC_EINDEX);
  CHECK_STATUS(lc_narrow(t, 1, 0, -1, &x), LC_EINDEX);
  CHECK_STATUS(lc_narrow(t, 2, 0, 1, &x), LC_EINDEX);
  CHECK_OK(lc_slice(t, 0, 1, 4, 2, &sl)); /* rows 1, 3 */
  if (sl) {
    int64_t ss[] = {2, 6}, sst[] = {12, 1};
    CHECK(shape_is(sl, 2, ss) && strides_are(sl, sst) && lc_offset(sl) == 6);
    double *v = vals(sl);
    for (int k = 0; v && k < 12; k++)
      CHECK(v[k] == (1 + 2 * (k / 6)) * 6 + k % 6);
    free(v);
  }
  CHECK_STATUS(lc_slice(t, 0, 3, 2, 1, &x), LC_EINDEX);
  CHECK_STATUS(lc_slice(t, 0, 0, 5, 1, &x), LC_EINDEX);
  CHECK_STATUS(lc_slice(t, 0, 0, 4, 0, &x), LC_EARG);
  CHECK_OK(lc_select(t, 0, -2, &se)); /* row 2 */
  if (se) {
    int64_t ss[] = {6};
    CHECK(shape_is(se, 1, ss) && lc_offset(se) == 12);
  }
  CHECK_STATUS(lc_select(t, 0, 4, &x), LC_EINDEX);
  CHECK(strstr(lc_last_error(),
               "select: index 4 out of range for dim 0 of size 4 (expected 0..3 or -4..-1)") !=
        NULL);
  CHECK_STATUS(lc_select(t, 0, -5, &x), LC_EINDEX);
  CHECK(x == NULL);
  /* select on 1-D gives a 0-dim view; an empty slice is fine */
  lc_tensor *e0 = NULL, *emp = NULL;
  if (se) CHECK_OK(lc_select(se, 0, 5, &e0));
  if (e0) {
    double v = 0;
    CHECK(lc_ndim(e0) == 0);
    CHECK_OK(lc_item(e0, &v));
    CHECK(v == 17);
  }
  CHECK_OK(lc_slice(t, 1, 6, 6, 1, &emp));
  if (emp) CHECK(lc_numel(emp) == 0 && lc_shape(emp)[1] == 0);
  lc_release(t);
  lc_release(n);
  lc_release(sl);
  lc_release(se);
  lc_release(e0);
  lc_release(emp);
}

TEST(shape_squeeze_unsqueeze) {
  int64_t s[] = {1, 3, 1, 2};
  lc_tensor *t = seq(4, s, LC_FLOAT32), *a = NULL, *b = NULL, *c = NULL, *d = NULL, *x = NULL;
  if (!t) return;
  CHECK_OK(lc_squeeze(t, &a));
  int64_t sa[] = {3, 2};
  if (a) CHECK(shape_is(a, 2, sa) && lc_same_storage(a, t));
  CHECK_OK(lc_squeeze_dim(t, -2, &b));
  int64_t sb[] = {1, 3, 2};
  if (b) CHECK(shape_is(b, 3, sb));
  CHECK_OK(lc_squeeze_dim(t, 1, &c)); /* size 3: a no-op view */
  if (c) CHECK(shape_is(c, 4, s) && lc_same_storage(c, t));
  CHECK_STATUS(lc_squeeze_dim(t, 4, &x), LC_EINDEX);
  CHECK_OK(lc_unsqueeze(t, -1, &d));
  int64_t sd[] = {1, 3, 1, 2, 1};
  if (d) CHECK(shape_is(d, 5, sd));
  CHECK_STATUS(lc_unsqueeze(t, 5, &x), LC_EINDEX);
  CHECK_STATUS(lc_unsqueeze(t, -6, &x), LC_EINDEX);
  CHECK(x == NULL);
  lc_release(a);
  lc_release(b);
  lc_release(c);
  lc_release(d);
  /* unsqueeze of a non-contiguous tensor keeps the other strides */
  lc_tensor *tr = NULL, *u = NULL;
  if (a) {
    CHECK_OK(lc_transpose(t, 1, 3, &tr)); /* {1, 2, 1, 3} */
    if (tr) CHECK_OK(lc_unsqueeze(tr, 2, &u));
    if (u) {
      int64_t su[] = {1, 2, 1, 1, 3};
      CHECK(shape_is(u, 5, su));
      CHECK(lc_strides(u)[1] == 1 && lc_strides(u)[4] == 2);
    }
  }
  lc_release(tr);
  lc_release(u);
  lc_release(t);

  /* 0-dim: unsqueeze(0) -> {1}; squeeze of {1, 1} -> 0-dim; squeeze_dim(0) of 0-dim ok */
  lc_tensor *z = NULL, *z1 = NULL, *z11 = NULL, *zz = NULL, *zs = NULL;
  CHECK_OK(lc_scalar(3, LC_FLOAT64, &z));
  if (!z) return;
  CHECK_OK(lc_unsqueeze(z, 0, &z1));
  int64_t one[] = {1};
  if (z1) CHECK(shape_is(z1, 1, one));
  if (z1) CHECK_OK(lc_unsqueeze(z1, -1, &z11));
  if (z11) CHECK_OK(lc_squeeze(z11, &zz));
  if (zz) CHECK(lc_ndim(zz) == 0 && lc_same_storage(zz, z));
  CHECK_OK(lc_squeeze_dim(z, -1, &zs));
  if (zs) CHECK(lc_ndim(zs) == 0);
  CHECK_STATUS(lc_unsqueeze(z, 2, &x), LC_EINDEX);
  lc_release(z);
  lc_release(z1);
  lc_release(z11);
  lc_release(zz);
  lc_release(zs);
}

TEST(shape_expand) {
  int64_t s[] = {3, 1};
  lc_tensor *t = seq(2, s, LC_FLOAT32), *e = NULL, *x = NULL;
  if (!t) return;
  int64_t es[] = {2, -1, 4};
  CHECK_OK(lc_expand(t, 3, es, &e));
  if (e) {
    int64_t want[] = {2, 3, 4}, st[] = {0, 1, 0};
    CHECK(shape_is(e, 3, want) && strides_are(e, st));
    CHECK(lc_same_storage(e, t));
    for (int64_t i = 0; i < 2; i++)
      for (int64_t j = 0; j < 3; j++)
        for (int64_t k = 0; k < 4; k++) {
          int64_t iv[] = {i, j, k};
          CHECK(at(e, iv) == (double)j);
        }
  }
  int64_t lead[] = {-1, 3, 1};
  CHECK_STATUS(lc_expand(t, 3, lead, &x), LC_ESHAPE);
  int64_t fewer[] = {3};
  CHECK_STATUS(lc_expand(t, 1, fewer, &x), LC_ESHAPE);
  int64_t r[] = {3};
  lc_tensor *v = seq(1, r, LC_FLOAT32);
  int64_t bad[] = {2, 4};
  if (v) CHECK_STATUS(lc_expand(v, 2, bad, &x), LC_ESHAPE);
  CHECK(strstr(lc_last_error(),
               "expand: the expanded size 4 must match the existing size 3 at dim 1") != NULL);
  CHECK(x == NULL);
  /* a 0-dim tensor expands to anything; expanding to size 0 is allowed */
  lc_tensor *z = NULL, *ze = NULL, *e0 = NULL;
  CHECK_OK(lc_scalar(2, LC_FLOAT32, &z));
  int64_t zs[] = {2, 2}, s0[] = {3, 0};
  if (z) CHECK_OK(lc_expand(z, 2, zs, &ze));
  if (ze) CHECK(lc_strides(ze)[0] == 0 && lc_strides(ze)[1] == 0 && lc_numel(ze) == 4);
  CHECK_OK(lc_expand(t, 2, s0, &e0));
  if (e0) CHECK(lc_numel(e0) == 0);
  lc_release(t);
  lc_release(e);
  lc_release(v);
  lc_release(z);
  lc_release(ze);
  lc_release(e0);
}

TEST(shape_flatten) {
  int64_t s[] = {2, 3, 4};
  lc_tensor *t = seq(3, s, LC_FLOAT32), *a = NULL, *b = NULL, *c = NULL, *p = NULL, *x = NULL;
  if (!t) return;
  CHECK_OK(lc_flatten(t, 1, 2, &a));
  int64_t sa[] = {2, 12}, sb[] = {24};
  if (a) CHECK(shape_is(a, 2, sa) && lc_same_storage(a, t));
  CHECK_OK(lc_flatten(t, 0, -1, &b));
  if (b) CHECK(shape_is(b, 1, sb));
  CHECK_STATUS(lc_flatten(t, 2, 1, &x), LC_EARG);
  CHECK_STATUS(lc_flatten(t, 0, 3, &x), LC_EINDEX);
  /* a non-contiguous tensor that cannot be viewed flat is copied */
  CHECK_OK(lc_transpose(t, 0, 2, &p));
  if (p) CHECK_OK(lc_flatten(p, 0, -1, &c));
  if (c) {
    CHECK(shape_is(c, 1, sb) && !lc_same_storage(c, t));
    double *v = vals(c);
    for (int64_t k = 0; v && k < 24; k++) {
      int64_t ip[] = {k / 6, (k / 2) % 3, k % 2};
      CHECK(v[k] == at(p, ip));
    }
    free(v);
  }
  lc_release(a);
  lc_release(b);
  lc_release(c);
  lc_release(p);
  lc_release(t);
  lc_tensor *z = NULL, *zf = NULL;
  CHECK_OK(lc_scalar(1, LC_FLOAT32, &z));
  if (z) CHECK_OK(lc_flatten(z, 0, -1, &zf));
  int64_t one[] = {1};
  if (zf) CHECK(shape_is(zf, 1, one));
  lc_release(z);
  lc_release(zf);
}

TEST(shape_unflatten_shapes_and_errors) {
  int64_t sh[3] = {2, 12, 3};
  lc_tensor *x = NULL, *y = NULL;
  CHECK_OK(lc_zeros(3, sh, LC_FLOAT32, &x));
  int64_t s1[3] = {2, -1, 3};
  CHECK_OK(lc_unflatten(x, 1, 3, s1, &y));
  CHECK(y && lc_ndim(y) == 5 && lc_shape(y)[1] == 2 && lc_shape(y)[2] == 2 && lc_shape(y)[3] == 3 &&
        lc_shape(y)[4] == 3);
  lc_release(y);
  int64_t s2[2] = {1, 3};
  CHECK_OK(lc_unflatten(x, -1, 2, s2, &y));
  CHECK(y && lc_ndim(y) == 4 && lc_shape(y)[3] == 3);
  lc_release(y);
  y = NULL;
  int64_t s3[2] = {5, 2}, s4[2] = {-1, -1}, s5[2] = {-1, 5};
  CHECK_STATUS(lc_unflatten(x, 1, 2, s3, &y), LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "multiply to 10") && strstr(lc_last_error(), "size 12"));
  CHECK_STATUS(lc_unflatten(x, 1, 2, s4, &y), LC_EARG);
  CHECK_STATUS(lc_unflatten(x, 1, 2, s5, &y), LC_ESHAPE);
  CHECK_STATUS(lc_unflatten(x, 3, 2, s3, &y), LC_EINDEX);
  CHECK_STATUS(lc_unflatten(x, 1, 0, s3, &y), LC_EARG);
  CHECK(y == NULL);
  lc_release(x);
}

/* The fit rule's messages: 0-based marked dims, the input's shape, products that overflow. */
TEST(shape_unflatten_messages_and_overflow) {
  int64_t sh[2] = {3, 12};
  lc_tensor *x = NULL, *y = NULL;
  CHECK_OK(lc_zeros(2, sh, LC_FLOAT32, &x));
  int64_t s1[2] = {5, 2};
  CHECK_STATUS(lc_unflatten(x, -1, 2, s1, &y), LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "unflatten: sizes {5, 2} does not fit dim 1 of size 12: input "
                                "shape {3, 12} (the sizes multiply to 10)") != NULL);
  char one_based[512];
  lc_render_positions(lc_last_error_marked(), 1, one_based, sizeof one_based);
  CHECK(strstr(one_based, "does not fit dim 2 of size 12") != NULL);
  int64_t s2[2] = {-1, 5};
  CHECK_STATUS(lc_unflatten(x, 1, 2, s2, &y), LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "the other sizes multiply to 5, which does not divide 12") != NULL);
  int64_t s3[2] = {0, -1};
  CHECK_STATUS(lc_unflatten(x, 1, 2, s3, &y), LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "-1 cannot be inferred next to a size 0") != NULL);
  /* 2^62 * 4 overflows int64: an error, not a wrapped product that happens to fit */
  int64_t big[3] = {INT64_C(1) << 62, 4, 3}, bigi[3] = {INT64_C(1) << 62, 4, -1};
  CHECK_STATUS(lc_unflatten(x, 1, 3, big, &y), LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "multiply to more than 9223372036854775807") != NULL);
  CHECK_STATUS(lc_unflatten(x, 1, 3, bigi, &y), LC_ESHAPE);
  CHECK_STATUS(lc_unflatten(x, 2, 2, s1, &y), LC_EINDEX);
  CHECK(strstr(lc_last_error(), "unflatten: dim 2 out of range for a tensor with 2 dims") != NULL);
  lc_tensor *z = NULL;
  CHECK_OK(lc_scalar(1, LC_FLOAT32, &z));
  int64_t s4[1] = {1};
  CHECK_STATUS(lc_unflatten(z, 0, 1, s4, &y), LC_ESHAPE);
  CHECK_STATUS(lc_unflatten(x, 1, 2, s1, NULL), LC_EARG);
  CHECK_STATUS(lc_unflatten(NULL, 1, 2, s1, &y), LC_EARG);
  CHECK(y == NULL);
  lc_release(z);
  lc_release(x);
}

/* Views of contiguous and strided inputs, zero sizes, gradients. */
static lc_status f_unflatten(void *ctx, lc_tensor *const *in, lc_tensor **out) {
  (void)ctx;
  int64_t sizes[2] = {2, -1};
  lc_tensor *t = NULL;
  lc_status st = lc_transpose(in[0], 0, 1, &t); /* {6, 4}: strided */
  if (!st) st = lc_unflatten(t, 0, 2, sizes, out);
  lc_release(t);
  return st;
}

TEST(shape_unflatten_view_copy_and_gradient) {
  int64_t s[] = {4, 6};
  lc_tensor *t = seq(2, s, LC_FLOAT32), *a = NULL, *p = NULL, *c = NULL;
  if (!t) return;
  int64_t sz[2] = {3, 2}, sa[] = {4, 3, 2};
  CHECK_OK(lc_unflatten(t, 1, 2, sz, &a));
  if (a) CHECK(shape_is(a, 3, sa) && lc_same_storage(a, t));
  /* splitting one dim is a view of a strided input too (the transposed {6, 4}) */
  CHECK_OK(lc_transpose(t, 0, 1, &p));
  int64_t sp[] = {2, 2}, sc[] = {6, 2, 2};
  if (p) CHECK_OK(lc_unflatten(p, 1, 2, sp, &c));
  if (c) {
    CHECK(shape_is(c, 3, sc) && lc_same_storage(c, t));
    double *v = vals(c);
    for (int64_t k = 0; v && k < 24; k++) {
      int64_t ip[] = {k / 4, k % 4};
      CHECK(v[k] == at(p, ip));
    }
    free(v);
  }
  lc_release(a);
  lc_release(c);
  lc_release(p);
  lc_release(t);
  /* an empty dim takes sizes with a 0 */
  int64_t ze[] = {2, 0}, zs[2] = {3, 0}, zw[] = {2, 3, 0};
  lc_tensor *e = NULL, *ef = NULL;
  CHECK_OK(lc_zeros(2, ze, LC_FLOAT32, &e));
  if (e) CHECK_OK(lc_unflatten(e, 1, 2, zs, &ef));
  if (ef) CHECK(shape_is(ef, 3, zw));
  lc_release(e);
  lc_release(ef);
  lc_tensor *x = NULL;
  lc_manual_seed(17);
  CHECK_OK(lc_randn(2, s, LC_FLOAT64, &x));
  if (!x) return;
  lc_set_requires_grad(x, true);
  lc_tensor *ins[] = {x};
  char msg[256];
  CHECK(gradcheck(f_unflatten, NULL, 1, ins, 1e-6, 1e-7, 1e-6, msg, sizeof msg) ||
        printf("%s\n", msg));
  lc_release(x);
}

TEST(shape_empty_tensors) {
  int64_t s[] = {0, 3};
  lc_tensor *t = NULL, *v = NULL, *p = NULL, *x = NULL;
  CHECK_OK(lc_zeros(2, s, LC_FLOAT32, &t));
  if (!t) return;
  int64_t s2[] = {3, 0, 5};
  CHECK_OK(lc_view(t, 3, s2, &x)); /* any shape with 0 elements views an empty tensor */
  if (x) CHECK(shape_is(x, 3, s2) && lc_same_storage(x, t));
  lc_release(x);
  x = NULL;
  int64_t s3[] = {3, 0};
  CHECK_OK(lc_view(t, 2, s3, &v));
  if (v) CHECK(shape_is(v, 2, s3));
  int64_t s4[] = {-1, 0};
  CHECK_STATUS(lc_view(t, 2, s4, &x), LC_ESHAPE); /* -1 is ambiguous with a 0 size */
  CHECK_OK(lc_transpose(t, 0, 1, &p));
  if (p) CHECK(shape_is(p, 2, s3));
  lc_release(t);
  lc_release(v);
  lc_release(p);
}

/* ---------------------------------------------------------------- gradients */

typedef struct gctx {
  int which;
} gctx;

static lc_status f_views(void *ctx, lc_tensor *const *in, lc_tensor **out) {
  int which = ((gctx *)ctx)->which;
  const lc_tensor *x = in[0]; /* {3, 4} float64 */
  switch (which) {
  case 0: {
    int64_t s[] = {2, -1, 2};
    return lc_view(x, 3, s, out);
  }
  case 1: {
    int perm[] = {1, 0};
    return lc_permute(x, perm, out);
  }
  case 2: {
    lc_tensor *u = NULL;
    lc_status st = lc_unsqueeze(x, 1, &u); /* {3, 1, 4} */
    if (st) return st;
    int64_t s[] = {2, 3, 5, 4};
    st = lc_expand(u, 4, s, out);
    lc_release(u);
    return st;
  }
  case 3: return lc_slice(x, 1, 1, 4, 2, out);
  case 4: return lc_select(x, 0, -1, out);
  case 5: return lc_narrow(x, 1, 1, 2, out);
  case 6: {
    /* reshape of a transposed tensor copies: the gradient goes through the copy */
    lc_tensor *tr = NULL;
    lc_status st = lc_t(x, &tr);
    if (st) return st;
    int64_t s[] = {12};
    st = lc_reshape(tr, 1, s, out);
    lc_release(tr);
    return st;
  }
  case 7: {
    /* a chain: transpose -> narrow -> flatten -> unsqueeze -> squeeze */
    lc_tensor *a = NULL, *b = NULL, *c = NULL, *d = NULL;
    lc_status st = lc_transpose(x, 0, 1, &a);
    if (!st) st = lc_narrow(a, 0, 1, 3, &b);
    if (!st) st = lc_flatten(b, 0, 1, &c);
    if (!st) st = lc_unsqueeze(c, 0, &d);
    if (!st) st = lc_squeeze(d, out);
    lc_release(a);
    lc_release(b);
    lc_release(c);
    lc_release(d);
    return st;
  }
  default: return lc_set_error(LC_EARG, "bad case");
  }
}

TEST(shape_gradients_numeric) {
  int64_t s[] = {3, 4};
  for (int which = 0; which < 8; which++) {
    lc_tensor *x = NULL;
    CHECK_OK(lc_randn(2, s, LC_FLOAT64, &x));
    if (!x) return;
    CHECK_OK(lc_set_requires_grad(x, true));
    gctx c = {which};
    char msg[256];
    lc_tensor *ins[] = {x};
    int ok = gradcheck(f_views, &c, 1, ins, 1e-6, 1e-7, 1e-6, msg, sizeof msg);
    if (!ok) printf("  case %d: %s\n", which, msg);
    CHECK(ok);
    lc_release(x);
  }
}

TEST(shape_grad_fn_names_and_backward) {
  int64_t s[] = {2, 3};
  lc_tensor *x = NULL;
  CHECK_OK(lc_ones(2, s, LC_FLOAT64, &x));
  if (!x) return;
  CHECK_OK(lc_set_requires_grad(x, true));
  lc_tensor *v = NULL, *p = NULL, *e = NULL, *sl = NULL, *se = NULL, *u = NULL;
  int64_t s6[] = {6}, se3[] = {4, 2, 3};
  int perm[] = {1, 0};
  CHECK_OK(lc_view(x, 1, s6, &v));
  CHECK_OK(lc_permute(x, perm, &p));
  CHECK_OK(lc_expand(x, 3, se3, &e));
  CHECK_OK(lc_slice(x, 1, 0, 3, 2, &sl));
  CHECK_OK(lc_select(x, 0, 1, &se));
  CHECK_OK(lc_unsqueeze(x, 0, &u));
  if (v) CHECK(v && lc_grad_fn_name(v) && strcmp(lc_grad_fn_name(v), "ViewBackward") == 0);
  if (p) CHECK(lc_grad_fn_name(p) && strcmp(lc_grad_fn_name(p), "PermuteBackward") == 0);
  if (e) CHECK(lc_grad_fn_name(e) && strcmp(lc_grad_fn_name(e), "ExpandBackward") == 0);
  if (sl) CHECK(lc_grad_fn_name(sl) && strcmp(lc_grad_fn_name(sl), "SliceBackward") == 0);
  if (se) CHECK(lc_grad_fn_name(se) && strcmp(lc_grad_fn_name(se), "SelectBackward") == 0);
  if (u) CHECK(lc_grad_fn_name(u) && strcmp(lc_grad_fn_name(u), "ViewBackward") == 0);
  /* expand's backward sums over the 4 copies: seed ones -> grad 4 everywhere */
  lc_tensor *g = NULL;
  CHECK_OK(lc_ones(3, se3, LC_FLOAT64, &g));
  if (e && g) CHECK_OK(lc_backward(e, g, false));
  lc_tensor *xg = lc_grad(x);
  CHECK(xg != NULL);
  if (xg) {
    double *gv = vals(xg);
    for (int k = 0; gv && k < 6; k++)
      CHECK(gv[k] == 4);
    free(gv);
  }
  lc_release(g);
  lc_release(v);
  lc_release(p);
  lc_release(e);
  lc_release(sl);
  lc_release(se);
  lc_release(u);
  lc_release(x);
}

TEST(shape_null_and_bad_args) {
  lc_tensor *x = NULL;
  int64_t s[] = {2};
  CHECK_STATUS(lc_view(NULL, 1, s, &x), LC_EARG);
  CHECK_STATUS(lc_reshape(NULL, 1, s, &x), LC_EARG);
  CHECK_STATUS(lc_squeeze(NULL, &x), LC_EARG);
  lc_tensor *t = NULL, *big = NULL;
  CHECK_OK(lc_zeros(1, s, LC_FLOAT32, &t));
  if (!t) return;
  CHECK_STATUS(lc_view(t, 1, s, NULL), LC_EARG);
  CHECK_STATUS(lc_view(t, LC_MAX_DIMS + 1, s, &big), LC_ESHAPE);
  lc_tensor *z = NULL;
  CHECK_OK(lc_scalar(1, LC_FLOAT32, &z));
  if (z) {
    CHECK_STATUS(lc_select(z, 0, 0, &x), LC_EINDEX);
    CHECK_STATUS(lc_narrow(z, 0, 0, 1, &x), LC_EINDEX);
  }
  CHECK(x == NULL && big == NULL);
  lc_release(t);
  lc_release(z);
}
