/* test_join.c - cat, stack, split, split_sizes, chunk: shapes, values, dtypes, errors and
 * gradients. */
#include "gradcheck.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

/* base, base+1, ... in the given shape. */
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

static double at(const lc_tensor *t, const int64_t *idx) {
  double v = NAN;
  lc_get(t, idx, &v);
  return v;
}

static void release_all(int n, lc_tensor **ts) {
  for (int i = 0; i < n; i++)
    lc_release(ts[i]);
}

static void free_pieces(int n, lc_tensor **ps) {
  if (!ps) return;
  release_all(n, ps);
  lc_free(ps);
}

TEST(join_cat_dim0_and_last) {
  int64_t sa[] = {2, 3}, sb[] = {1, 3}, sc[] = {2, 2};
  lc_tensor *a = seqb(2, sa, LC_FLOAT32, 0), *b = seqb(2, sb, LC_FLOAT32, 100),
            *c = seqb(2, sc, LC_FLOAT32, 200), *r0 = NULL, *r1 = NULL;
  if (!a || !b || !c) goto out;
  lc_tensor *ab[] = {a, b};
  CHECK_OK(lc_cat(2, ab, 0, &r0));
  if (r0) {
    CHECK(lc_shape(r0)[0] == 3 && lc_shape(r0)[1] == 3);
    CHECK(!lc_same_storage(r0, a));
    for (int64_t i = 0; i < 3; i++)
      for (int64_t j = 0; j < 3; j++) {
        int64_t ij[] = {i, j}, bj[] = {i - 2, j};
        CHECK(at(r0, ij) == (i < 2 ? at(a, ij) : at(b, bj)));
      }
  }
  lc_tensor *ac[] = {a, c, a};
  CHECK_OK(lc_cat(3, ac, -1, &r1));
  if (r1) {
    CHECK(lc_shape(r1)[0] == 2 && lc_shape(r1)[1] == 8);
    for (int64_t i = 0; i < 2; i++)
      for (int64_t j = 0; j < 8; j++) {
        int64_t ij[] = {i, j};
        double want;
        if (j < 3) {
          int64_t k[] = {i, j};
          want = at(a, k);
        } else if (j < 5) {
          int64_t k[] = {i, j - 3};
          want = at(c, k);
        } else {
          int64_t k[] = {i, j - 5};
          want = at(a, k);
        }
        CHECK(at(r1, ij) == want);
      }
  }
out:
  lc_release(a);
  lc_release(b);
  lc_release(c);
  lc_release(r0);
  lc_release(r1);
}

TEST(join_cat_mixed_dtypes_and_noncontiguous) {
  int64_t s[] = {2, 2};
  lc_tensor *i32 = seqb(2, s, LC_INT32, 1), *f32 = seqb(2, s, LC_FLOAT32, 0.5),
            *i64 = seqb(2, s, LC_INT64, 10), *r = NULL, *ri = NULL, *tr = NULL, *rt = NULL;
  if (!i32 || !f32 || !i64) goto out;
  lc_tensor *mix[] = {i32, f32};
  CHECK_OK(lc_cat(2, mix, 0, &r));
  if (r) {
    CHECK(lc_dtype_of(r) == LC_FLOAT32);
    int64_t k0[] = {1, 1}, k1[] = {3, 0};
    CHECK(at(r, k0) == 4 && at(r, k1) == 2.5);
  }
  lc_tensor *ints[] = {i32, i64};
  CHECK_OK(lc_cat(2, ints, 1, &ri));
  if (ri) {
    CHECK(lc_dtype_of(ri) == LC_INT64);
    int64_t k[] = {1, 3};
    CHECK(at(ri, k) == 13);
  }
  /* a transposed input is read through its strides */
  CHECK_OK(lc_transpose(f32, 0, 1, &tr));
  lc_tensor *tt[] = {tr, f32};
  if (tr) CHECK_OK(lc_cat(2, tt, 1, &rt));
  if (rt) {
    for (int64_t i = 0; i < 2; i++)
      for (int64_t j = 0; j < 2; j++) {
        int64_t ij[] = {i, j}, ji[] = {j, i}, o[] = {i, j + 2};
        CHECK(at(rt, ij) == at(f32, ji));
        CHECK(at(rt, o) == at(f32, ij));
      }
  }
out:
  lc_release(i32);
  lc_release(f32);
  lc_release(i64);
  lc_release(r);
  lc_release(ri);
  lc_release(tr);
  lc_release(rt);
}

TEST(join_cat_errors) {
  int64_t sa[] = {2, 3}, sb[] = {2, 4}, s1[] = {3};
  lc_tensor *a = NULL, *b = NULL, *v = NULL, *z = NULL, *x = NULL;
  CHECK_OK(lc_zeros(2, sa, LC_FLOAT32, &a));
  CHECK_OK(lc_zeros(2, sb, LC_FLOAT32, &b));
  CHECK_OK(lc_zeros(1, s1, LC_FLOAT32, &v));
  CHECK_OK(lc_scalar(1, LC_FLOAT32, &z));
  if (!a || !b || !v || !z) goto out;
  lc_tensor *aab[] = {a, a, b};
  CHECK_STATUS(lc_cat(3, aab, 0, &x), LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "tensor 2") != NULL);
  CHECK(strstr(lc_last_error(), "expected size 3 but got size 4") != NULL);
  CHECK_OK(lc_cat(3, aab, 1, &x)); /* along dim 1 they fit: {2, 10} */
  if (x) CHECK(lc_shape(x)[1] == 10);
  lc_release(x);
  x = NULL;
  lc_tensor *av[] = {a, v};
  CHECK_STATUS(lc_cat(2, av, 0, &x), LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "tensor 1 has 1") != NULL);
  lc_tensor *az[] = {a, z};
  CHECK_STATUS(lc_cat(2, az, 0, &x), LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "position 1") != NULL);
  CHECK_STATUS(lc_cat(0, aab, 0, &x), LC_EARG);
  CHECK_STATUS(lc_cat(1, aab, 2, &x), LC_EINDEX);
  lc_tensor *an[] = {a, NULL};
  CHECK_STATUS(lc_cat(2, an, 0, &x), LC_EARG);
  CHECK(x == NULL);
out:
  lc_release(a);
  lc_release(b);
  lc_release(v);
  lc_release(z);
}

TEST(join_stack) {
  int64_t s[] = {2, 3};
  lc_tensor *a = seqb(2, s, LC_FLOAT64, 0), *b = seqb(2, s, LC_FLOAT64, 50), *r0 = NULL, *r2 = NULL,
            *x = NULL, *c = NULL;
  if (!a || !b) goto out;
  lc_tensor *ab[] = {a, b};
  CHECK_OK(lc_stack(2, ab, 0, &r0));
  if (r0) {
    CHECK(lc_ndim(r0) == 3 && lc_shape(r0)[0] == 2 && lc_shape(r0)[1] == 2 && lc_shape(r0)[2] == 3);
    int64_t k[] = {1, 1, 2}, kb[] = {1, 2};
    CHECK(at(r0, k) == at(b, kb));
  }
  CHECK_OK(lc_stack(2, ab, -1, &r2));
  if (r2) {
    CHECK(lc_shape(r2)[0] == 2 && lc_shape(r2)[1] == 3 && lc_shape(r2)[2] == 2);
    for (int64_t i = 0; i < 2; i++)
      for (int64_t j = 0; j < 3; j++) {
        int64_t ka[] = {i, j, 0}, kb[] = {i, j, 1}, ij[] = {i, j};
        CHECK(at(r2, ka) == at(a, ij) && at(r2, kb) == at(b, ij));
      }
  }
  int64_t s2[] = {3, 2};
  CHECK_OK(lc_zeros(2, s2, LC_FLOAT64, &c));
  lc_tensor *aac[] = {a, a, c};
  CHECK_STATUS(lc_stack(3, aac, 0, &x), LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "entry 2") != NULL);
  CHECK_STATUS(lc_stack(2, ab, 3, &x), LC_EINDEX);
  CHECK_STATUS(lc_stack(2, ab, -4, &x), LC_EINDEX);
  CHECK(x == NULL);
  /* 0-dim tensors stack into 1-D */
  lc_tensor *z1 = NULL, *z2 = NULL, *zs = NULL;
  CHECK_OK(lc_scalar(1, LC_FLOAT32, &z1));
  CHECK_OK(lc_scalar(2, LC_FLOAT32, &z2));
  lc_tensor *zz[] = {z1, z2};
  if (z1 && z2) CHECK_OK(lc_stack(2, zz, 0, &zs));
  if (zs) {
    int64_t k[] = {1};
    CHECK(lc_ndim(zs) == 1 && lc_shape(zs)[0] == 2 && at(zs, k) == 2);
  }
  lc_release(z1);
  lc_release(z2);
  lc_release(zs);
out:
  lc_release(a);
  lc_release(b);
  lc_release(c);
  lc_release(r0);
  lc_release(r2);
}

TEST(join_split_and_split_sizes) {
  int64_t s[] = {7, 2};
  lc_tensor *t = seqb(2, s, LC_FLOAT32, 0);
  if (!t) return;
  int n = 0;
  lc_tensor **ps = NULL;
  CHECK_OK(lc_split(t, 3, 0, &n, &ps));
  if (ps) {
    CHECK(n == 3);
    int64_t want[] = {3, 3, 1};
    for (int k = 0; k < n && k < 3; k++) {
      CHECK(lc_shape(ps[k])[0] == want[k] && lc_shape(ps[k])[1] == 2);
      CHECK(lc_same_storage(ps[k], t));
      CHECK(lc_offset(ps[k]) == 6 * k);
    }
    int64_t k0[] = {0, 1}, tk[] = {6, 1};
    if (n == 3) CHECK(at(ps[2], k0) == at(t, tk));
  }
  free_pieces(n, ps);
  ps = NULL;
  CHECK_OK(lc_split(t, 1, -1, &n, &ps)); /* along the last dim */
  if (ps) {
    CHECK(n == 2 && lc_shape(ps[1])[1] == 1 && lc_offset(ps[1]) == 1);
  }
  free_pieces(n, ps);
  ps = NULL;
  int64_t sizes[] = {2, 0, 5};
  CHECK_OK(lc_split_sizes(t, 3, sizes, 0, &n, &ps));
  if (ps) {
    CHECK(n == 3);
    for (int k = 0; k < n && k < 3; k++)
      CHECK(lc_shape(ps[k])[0] == sizes[k]);
    if (n == 3) CHECK(lc_offset(ps[2]) == 4);
  }
  free_pieces(n, ps);
  ps = NULL;
  int64_t bad[] = {2, 4};
  CHECK_STATUS(lc_split_sizes(t, 2, bad, 0, &n, &ps), LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "sum to 6") != NULL);
  int64_t negs[] = {8, -1};
  CHECK_STATUS(lc_split_sizes(t, 2, negs, 0, &n, &ps), LC_EARG);
  CHECK_STATUS(lc_split(t, 0, 0, &n, &ps), LC_EARG);
  CHECK_STATUS(lc_split(t, 2, 2, &n, &ps), LC_EINDEX);
  CHECK(ps == NULL);
  lc_release(t);
}

TEST(join_chunk) {
  int64_t s7[] = {7}, s6[] = {6}, s0[] = {0, 3};
  lc_tensor *a = seqb(1, s7, LC_INT64, 0), *b = seqb(1, s6, LC_FLOAT32, 0), *e = NULL;
  CHECK_OK(lc_zeros(2, s0, LC_FLOAT32, &e));
  if (!a || !b || !e) goto out;
  int n = 0;
  lc_tensor **ps = NULL;
  CHECK_OK(lc_chunk(a, 3, 0, &n, &ps)); /* ceil(7/3) = 3: 3, 3, 1 */
  if (ps) {
    CHECK(n == 3);
    if (n == 3) CHECK(lc_numel(ps[0]) == 3 && lc_numel(ps[1]) == 3 && lc_numel(ps[2]) == 1);
    int64_t k[] = {0};
    if (n == 3) CHECK(at(ps[2], k) == 6);
  }
  free_pieces(n, ps);
  ps = NULL;
  CHECK_OK(lc_chunk(b, 4, 0, &n, &ps)); /* ceil(6/4) = 2: only 3 chunks */
  if (ps) {
    CHECK(n == 3);
    for (int k = 0; k < n; k++)
      CHECK(lc_numel(ps[k]) == 2 && lc_same_storage(ps[k], b));
  }
  free_pieces(n, ps);
  ps = NULL;
  CHECK_OK(lc_chunk(e, 2, 0, &n, &ps)); /* an empty dim: `chunks` empty pieces */
  if (ps) {
    CHECK(n == 2);
    for (int k = 0; k < n; k++)
      CHECK(lc_numel(ps[k]) == 0 && lc_shape(ps[k])[1] == 3);
  }
  free_pieces(n, ps);
  ps = NULL;
  CHECK_STATUS(lc_chunk(b, 0, 0, &n, &ps), LC_EARG);
  CHECK(ps == NULL);
out:
  lc_release(a);
  lc_release(b);
  lc_release(e);
}

/* ---------------------------------------------------------------- gradients */

static lc_status f_cat(void *ctx, lc_tensor *const *in, lc_tensor **out) {
  return lc_cat(3, in, *(int *)ctx, out);
}

static lc_status f_stack(void *ctx, lc_tensor *const *in, lc_tensor **out) {
  return lc_stack(2, in, *(int *)ctx, out);
}

/* piece `which` of split(x, 2, dim 1) concatenated with piece 0 of chunk(x, 2, dim 0) */
static lc_status f_split(void *ctx, lc_tensor *const *in, lc_tensor **out) {
  int which = *(int *)ctx, n1 = 0, n2 = 0;
  lc_tensor **p1 = NULL, **p2 = NULL;
  lc_status st = lc_split(in[0], 2, 1, &n1, &p1);
  if (!st) st = lc_chunk(in[0], 2, 0, &n2, &p2);
  if (!st) {
    lc_tensor *a = NULL, *b = NULL;
    st = lc_flatten(p1[which], 0, -1, &a);
    if (!st) st = lc_flatten(p2[0], 0, -1, &b);
    lc_tensor *ab[] = {a, b};
    if (!st) st = lc_cat(2, ab, 0, out);
    lc_release(a);
    lc_release(b);
  }
  free_pieces(n1, p1);
  free_pieces(n2, p2);
  return st;
}

TEST(join_gradients_numeric) {
  int64_t sa[] = {2, 3}, sb[] = {2, 1}, sc[] = {2, 4};
  lc_tensor *a = NULL, *b = NULL, *c = NULL;
  CHECK_OK(lc_randn(2, sa, LC_FLOAT64, &a));
  CHECK_OK(lc_randn(2, sb, LC_FLOAT64, &b));
  CHECK_OK(lc_randn(2, sc, LC_FLOAT64, &c));
  if (!a || !b || !c) goto out;
  lc_set_requires_grad(a, true);
  lc_set_requires_grad(b, true);
  lc_set_requires_grad(c, true);
  char msg[256];
  int dim = 1;
  lc_tensor *abc[] = {a, b, c};
  int ok = gradcheck(f_cat, &dim, 3, abc, 1e-6, 1e-7, 1e-6, msg, sizeof msg);
  if (!ok) printf("  cat: %s\n", msg);
  CHECK(ok);
  for (dim = -3; dim <= 2; dim++) {
    lc_tensor *aa[] = {a, a};
    ok = gradcheck(f_stack, &dim, 2, aa, 1e-6, 1e-7, 1e-6, msg, sizeof msg);
    if (!ok) printf("  stack dim %d: %s\n", dim, msg);
    CHECK(ok);
  }
  for (int which = 0; which < 2; which++) {
    lc_tensor *cc[] = {c};
    ok = gradcheck(f_split, &which, 1, cc, 1e-6, 1e-7, 1e-6, msg, sizeof msg);
    if (!ok) printf("  split piece %d: %s\n", which, msg);
    CHECK(ok);
  }
out:
  lc_release(a);
  lc_release(b);
  lc_release(c);
}

TEST(join_cat_backward_mixed_float_dtypes) {
  int64_t s[] = {2};
  lc_tensor *a = NULL, *b = NULL, *r = NULL, *g = NULL;
  CHECK_OK(lc_ones(1, s, LC_FLOAT32, &a));
  CHECK_OK(lc_ones(1, s, LC_FLOAT64, &b));
  if (!a || !b) goto out;
  lc_set_requires_grad(a, true);
  lc_set_requires_grad(b, true);
  lc_tensor *ab[] = {a, b};
  CHECK_OK(lc_cat(2, ab, 0, &r));
  if (!r) goto out;
  CHECK(lc_dtype_of(r) == LC_FLOAT64);
  CHECK(lc_grad_fn_name(r) && strcmp(lc_grad_fn_name(r), "CatBackward") == 0);
  double gv[] = {1, 2, 3, 4};
  int64_t s4[] = {4};
  CHECK_OK(lc_from_data(1, s4, LC_FLOAT64, gv, &g));
  if (g) CHECK_OK(lc_backward(r, g, false));
  lc_tensor *ga = lc_grad(a), *gb = lc_grad(b);
  CHECK(ga && gb);
  if (ga && gb) {
    CHECK(lc_dtype_of(ga) == LC_FLOAT32 && lc_dtype_of(gb) == LC_FLOAT64);
    int64_t k0[] = {0}, k1[] = {1};
    CHECK(at(ga, k0) == 1 && at(ga, k1) == 2 && at(gb, k0) == 3 && at(gb, k1) == 4);
  }
out:
  lc_release(a);
  lc_release(b);
  lc_release(r);
  lc_release(g);
}
