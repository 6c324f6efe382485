/* test_rearrange.c - tril, triu, flip, roll, rot90, repeat_interleave: values against index
 * formulas written here (on non-contiguous, expanded and empty inputs, every dtype), errors,
 * in-place forms, gradients (gradcheck) and second-order gradients (LC_CREATE_GRAPH). */
#include "gradcheck.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

/* {d0, d1, d2} of dtype dt with distinct values, seen through a permutation (so it is not
 * contiguous): the base is {d2, d0, d1}, permuted by (1, 2, 0). */
static lc_tensor *perm3(int64_t d0, int64_t d1, int64_t d2, lc_dtype dt) {
  int64_t bs[] = {d2, d0, d1}, n = d0 * d1 * d2;
  lc_tensor *a = NULL, *b = NULL, *r = NULL;
  if (lc_arange(-(double)(n / 2), (double)(n - n / 2), 1, LC_FLOAT64, &a)) return NULL;
  if (!lc_reshape(a, 3, bs, &b)) {
    lc_tensor *c = NULL;
    if (!lc_to_dtype(b, dt, &c)) {
      int perm[] = {1, 2, 0};
      if (lc_permute(c, perm, &r)) r = NULL;
      lc_release(c);
    }
  }
  lc_release(a);
  lc_release(b);
  return r;
}

static double at3(const lc_tensor *t, int64_t i, int64_t j, int64_t k) {
  int64_t idx[] = {i, j, k};
  double v = NAN;
  lc_get(t, idx, &v);
  return v;
}

static bool has_shape(const lc_tensor *t, int64_t a, int64_t b, int64_t c) {
  return t && lc_ndim(t) == 3 && lc_shape(t)[0] == a && lc_shape(t)[1] == b && lc_shape(t)[2] == c;
}

static int64_t wrapmod(int64_t s, int64_t n) {
  int64_t m = s % n;
  return m < 0 ? m + n : m;
}

static const lc_dtype DTYPES[] = {LC_FLOAT32, LC_FLOAT64, LC_INT32, LC_INT64, LC_BOOL};

TEST(rearrange_tril_triu_values) {
  const int64_t ks[] = {-6, -1, 0, 2, 7, INT64_MAX, INT64_MIN};
  for (size_t di = 0; di < 5; di++) {
    lc_tensor *x = perm3(2, 4, 5, DTYPES[di]);
    CHECK(x && !lc_is_contiguous(x));
    if (!x) continue;
    for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
      for (int upper = 0; upper < 2; upper++) {
        lc_tensor *r = NULL;
        CHECK_OK(upper ? lc_triu(x, ks[ki], &r) : lc_tril(x, ks[ki], &r));
        CHECK(has_shape(r, 2, 4, 5) && lc_dtype_of(r) == DTYPES[di] && lc_is_contiguous(r));
        if (!has_shape(r, 2, 4, 5)) continue;
        int bad = 0;
        for (int64_t b = 0; b < 2; b++)
          for (int64_t i = 0; i < 4; i++)
            for (int64_t j = 0; j < 5; j++) {
              __int128 diff = (__int128)j - i;
              bool keep = upper ? diff >= ks[ki] : diff <= ks[ki];
              bad += at3(r, b, i, j) != (keep ? at3(x, b, i, j) : 0);
            }
        CHECK(bad == 0);
        /* in place on a contiguous copy gives the same */
        lc_tensor *c = NULL;
        CHECK_OK(lc_contiguous(x, &c));
        if (c) {
          CHECK_OK(upper ? lc_triu_(c, ks[ki]) : lc_tril_(c, ks[ki]));
          bool eq = false;
          CHECK_OK(lc_equal(c, r, &eq));
          CHECK(eq);
        }
        lc_release(c);
        lc_release(r);
      }
    }
    lc_release(x);
  }
}

TEST(rearrange_flip_values) {
  for (size_t di = 0; di < 5; di++) {
    lc_tensor *x = perm3(3, 4, 5, DTYPES[di]);
    if (!x) {
      CHECK(x);
      continue;
    }
    int dsets[][3] = {{0, 2, 0}, {-1, 0, 0}, {1, 0, 2}, {0, 0, 0}};
    int counts[] = {2, 1, 3, 0};
    for (int s = 0; s < 4; s++) {
      bool f[3] = {false, false, false};
      for (int k = 0; k < counts[s]; k++)
        f[(dsets[s][k] + 3) % 3] = true;
      lc_tensor *r = NULL;
      CHECK_OK(lc_flip(x, counts[s], dsets[s], &r));
      CHECK(has_shape(r, 3, 4, 5) && lc_dtype_of(r) == DTYPES[di]);
      if (!has_shape(r, 3, 4, 5)) continue;
      int bad = 0;
      for (int64_t i = 0; i < 3; i++)
        for (int64_t j = 0; j < 4; j++)
          for (int64_t k = 0; k < 5; k++)
            bad += at3(r, i, j, k) != at3(x, f[0] ? 2 - i : i, f[1] ? 3 - j : j, f[2] ? 4 - k : k);
      CHECK(bad == 0);
      lc_release(r);
    }
    lc_release(x);
  }
  /* an expanded input (stride 0) */
  int64_t s1[] = {3, 1}, se[] = {3, 4};
  lc_tensor *a = NULL, *col = NULL, *e = NULL, *r = NULL;
  CHECK_OK(lc_arange(0, 3, 1, LC_FLOAT32, &a));
  if (a) CHECK_OK(lc_reshape(a, 2, s1, &col));
  if (col) CHECK_OK(lc_expand(col, 2, se, &e));
  int both[] = {0, 1};
  if (e) CHECK_OK(lc_flip(e, 2, both, &r));
  if (r) {
    int64_t idx[2];
    for (idx[0] = 0; idx[0] < 3; idx[0]++)
      for (idx[1] = 0; idx[1] < 4; idx[1]++) {
        double v = -1;
        lc_get(r, idx, &v);
        CHECK(v == (double)(2 - idx[0]));
      }
  }
  lc_release(a);
  lc_release(col);
  lc_release(e);
  lc_release(r);
}

TEST(rearrange_roll_values) {
  for (size_t di = 0; di < 5; di++) {
    lc_tensor *x = perm3(3, 4, 5, DTYPES[di]);
    if (!x) {
      CHECK(x);
      continue;
    }
    /* per dim, a repeated dim composing, and shifts past the size either way */
    int64_t sh[] = {1, -4, 13, 2};
    int dims[] = {0, 2, -1, 1};
    lc_tensor *r = NULL;
    CHECK_OK(lc_roll(x, 4, sh, 4, dims, &r));
    if (has_shape(r, 3, 4, 5)) {
      int64_t s0 = 1, s1 = 2, s2 = wrapmod(-4 + 13, 5);
      int bad = 0;
      for (int64_t i = 0; i < 3; i++)
        for (int64_t j = 0; j < 4; j++)
          for (int64_t k = 0; k < 5; k++)
            bad += at3(r, i, j, k) !=
                   at3(x, wrapmod(i - s0, 3), wrapmod(j - s1, 4), wrapmod(k - s2, 5));
      CHECK(bad == 0);
    } else {
      CHECK(0);
    }
    lc_release(r);
    r = NULL;
    /* flattened: C order of x shifted by 7 */
    int64_t flat = -53;
    CHECK_OK(lc_roll(x, 1, &flat, 0, NULL, &r));
    if (has_shape(r, 3, 4, 5)) {
      int bad = 0;
      for (int64_t p = 0; p < 60; p++) {
        int64_t q = wrapmod(p - wrapmod(flat, 60), 60);
        bad += at3(r, p / 20, p / 5 % 4, p % 5) != at3(x, q / 20, q / 5 % 4, q % 5);
      }
      CHECK(bad == 0);
    } else {
      CHECK(0);
    }
    lc_release(r);
    lc_release(x);
  }
}

TEST(rearrange_rot90_values) {
  for (size_t di = 0; di < 5; di++) {
    lc_tensor *x = perm3(2, 3, 4, DTYPES[di]);
    if (!x) {
      CHECK(x);
      continue;
    }
    for (int64_t k = -5; k <= 6; k++) {
      /* in the plane (0, 2): k = 1 is flip(2) then transpose(0, 2) */
      int dims[] = {0, 2};
      lc_tensor *r = NULL;
      CHECK_OK(lc_rot90(x, k, 2, dims, &r));
      int64_t m = wrapmod(k, 4);
      bool odd = m % 2;
      if (!has_shape(r, odd ? 4 : 2, 3, odd ? 2 : 4)) {
        CHECK(0);
        lc_release(r);
        continue;
      }
      int bad = 0;
      for (int64_t i = 0; i < (odd ? 4 : 2); i++)
        for (int64_t j = 0; j < 3; j++)
          for (int64_t l = 0; l < (odd ? 2 : 4); l++) {
            double want = m == 0   ? at3(x, i, j, l)
                          : m == 1 ? at3(x, l, j, 3 - i)
                          : m == 2 ? at3(x, 1 - i, j, 3 - l)
                                   : at3(x, 1 - l, j, i);
            bad += at3(r, i, j, l) != want;
          }
      CHECK(bad == 0);
      /* rot90 by -k undoes it */
      lc_tensor *back = NULL;
      CHECK_OK(lc_rot90(r, -k, 2, dims, &back));
      bool eq = false;
      if (back) CHECK_OK(lc_equal(back, x, &eq));
      CHECK(eq);
      lc_release(back);
      lc_release(r);
    }
    /* dims NULL: the default plane (0, 1) */
    lc_tensor *a = NULL, *b = NULL;
    int d01[] = {0, 1};
    CHECK_OK(lc_rot90(x, 1, 0, NULL, &a));
    CHECK_OK(lc_rot90(x, 1, 2, d01, &b));
    bool eq = false;
    if (a && b) CHECK_OK(lc_equal(a, b, &eq));
    CHECK(eq);
    lc_release(a);
    lc_release(b);
    lc_release(x);
  }
}

TEST(rearrange_repeat_interleave_values) {
  for (size_t di = 0; di < 5; di++) {
    lc_tensor *x = perm3(2, 3, 4, DTYPES[di]);
    if (!x) {
      CHECK(x);
      continue;
    }
    /* int32 repeats with a zero, along the middle dim */
    int32_t rv[] = {2, 0, 3};
    int64_t rs[] = {3};
    lc_tensor *reps = NULL, *r = NULL;
    CHECK_OK(lc_from_data(1, rs, LC_INT32, rv, &reps));
    if (reps) CHECK_OK(lc_repeat_interleave(x, reps, true, -2, &r));
    if (has_shape(r, 2, 5, 4) && lc_dtype_of(r) == DTYPES[di]) {
      const int64_t src[] = {0, 0, 2, 2, 2};
      int bad = 0;
      for (int64_t i = 0; i < 2; i++)
        for (int64_t j = 0; j < 5; j++)
          for (int64_t k = 0; k < 4; k++)
            bad += at3(r, i, j, k) != at3(x, i, src[j], k);
      CHECK(bad == 0);
    } else {
      CHECK(0);
    }
    lc_release(r);
    r = NULL;
    /* a number, flattened */
    CHECK_OK(lc_repeat_interleave_int(x, 3, false, 0, &r));
    if (r && lc_ndim(r) == 1 && lc_shape(r)[0] == 72) {
      int bad = 0;
      for (int64_t p = 0; p < 72; p++) {
        int64_t q = p / 3, idx = p;
        double v = NAN;
        lc_get(r, &idx, &v);
        bad += v != at3(x, q / 12, q / 4 % 3, q % 4);
      }
      CHECK(bad == 0);
    } else {
      CHECK(0);
    }
    lc_release(r);
    lc_release(reps);
    lc_release(x);
  }
}

TEST(rearrange_empty_and_0dim) {
  int64_t s[] = {2, 0, 3};
  lc_tensor *e = NULL, *r = NULL, *s0 = NULL;
  CHECK_OK(lc_zeros(3, s, LC_FLOAT32, &e));
  if (!e) return;
  int d[] = {0, 1, 2};
  int64_t sh[] = {1, 1, 1};
  CHECK_OK(lc_tril(e, 0, &r));
  CHECK(has_shape(r, 2, 0, 3));
  lc_release(r), r = NULL;
  CHECK_OK(lc_flip(e, 3, d, &r));
  CHECK(has_shape(r, 2, 0, 3));
  lc_release(r), r = NULL;
  CHECK_OK(lc_roll(e, 3, sh, 3, d, &r));
  CHECK(has_shape(r, 2, 0, 3));
  lc_release(r), r = NULL;
  CHECK_OK(lc_roll(e, 1, sh, 0, NULL, &r));
  CHECK(has_shape(r, 2, 0, 3));
  lc_release(r), r = NULL;
  int d12[] = {1, 2};
  CHECK_OK(lc_rot90(e, 1, 2, d12, &r));
  CHECK(has_shape(r, 2, 3, 0));
  lc_release(r), r = NULL;
  CHECK_OK(lc_repeat_interleave_int(e, 4, true, 2, &r));
  CHECK(has_shape(r, 2, 0, 12));
  lc_release(r), r = NULL;
  CHECK_OK(lc_repeat_interleave_int(e, 4, false, 0, &r));
  CHECK(r && lc_ndim(r) == 1 && lc_numel(r) == 0);
  lc_release(r), r = NULL;
  lc_release(e);
  /* 0-dim: flip and the flattened roll and repeat_interleave work, the rest refuse */
  CHECK_OK(lc_scalar(4.5, LC_FLOAT32, &s0));
  if (!s0) return;
  int z[] = {0};
  CHECK_OK(lc_flip(s0, 1, z, &r));
  CHECK(r && lc_ndim(r) == 0);
  lc_release(r), r = NULL;
  CHECK_OK(lc_roll(s0, 1, sh, 0, NULL, &r));
  CHECK(r && lc_ndim(r) == 0);
  lc_release(r), r = NULL;
  CHECK_OK(lc_repeat_interleave_int(s0, 2, false, 0, &r));
  CHECK(r && lc_ndim(r) == 1 && lc_shape(r)[0] == 2);
  lc_release(r), r = NULL;
  CHECK_STATUS(lc_tril(s0, 0, &r), LC_ESHAPE);
  CHECK_STATUS(lc_rot90(s0, 1, 0, NULL, &r), LC_ESHAPE);
  CHECK_STATUS(lc_roll(s0, 1, sh, 1, z, &r), LC_EINDEX);
  CHECK_STATUS(lc_repeat_interleave_int(s0, 2, true, 0, &r), LC_ESHAPE);
  CHECK(r == NULL);
  lc_release(s0);
}

TEST(rearrange_errors) {
  lc_tensor *x = perm3(2, 3, 4, LC_FLOAT32), *r = NULL, *f = NULL, *r2 = NULL, *neg = NULL;
  if (!x) {
    CHECK(x);
    return;
  }
  int dup[] = {0, -3}, out3[] = {0, 3}, one[] = {1};
  int64_t sh[] = {1, 2};
  CHECK_STATUS(lc_flip(x, 2, dup, &r), LC_EARG);
  CHECK(strstr(lc_last_error(), "flip: dim 0 appears more than once in dims"));
  CHECK_STATUS(lc_flip(x, 2, out3, &r), LC_EINDEX);
  CHECK(strstr(lc_last_error(), "flip: dim 3 out of range"));
  CHECK_STATUS(lc_roll(x, 2, sh, 1, one, &r), LC_EARG);
  CHECK(strstr(lc_last_error(), "got 2 shifts and 1 dim"));
  CHECK_STATUS(lc_roll(x, 2, sh, 0, NULL, &r), LC_EARG);
  CHECK_STATUS(lc_roll(x, 0, sh, 0, NULL, &r), LC_EARG);
  CHECK_STATUS(lc_roll(x, 2, sh, 2, out3, &r), LC_EINDEX);
  CHECK_STATUS(lc_rot90(x, 1, 1, one, &r), LC_EARG);
  CHECK(strstr(lc_last_error(), "rot90: expected 2 rotation dims, got 1"));
  CHECK_STATUS(lc_rot90(x, 1, 2, dup, &r), LC_EARG);
  CHECK(strstr(lc_last_error(), "rot90: the rotation dims must differ, got dim 0 twice"));
  CHECK_STATUS(lc_rot90(x, 1, 2, out3, &r), LC_EINDEX);
  CHECK_STATUS(lc_repeat_interleave_int(x, -1, true, 0, &r), LC_EARG);
  int64_t rs[] = {3}, rv[] = {1, -2, 0}, r2s[] = {1, 2}, r2v[] = {1, 1};
  CHECK_OK(lc_from_data(1, rs, LC_INT64, rv, &neg));
  if (neg) {
    CHECK_STATUS(lc_repeat_interleave(x, neg, true, 1, &r), LC_EARG);
    CHECK(strstr(lc_last_error(), "repeats must be non-negative, got repeats[1] = -2"));
    CHECK_STATUS(lc_repeat_interleave(x, neg, true, 0, &r), LC_ESHAPE);
    CHECK(strstr(lc_last_error(), "one per element of dim 0 (2), got 3"));
  }
  CHECK_OK(lc_ones(1, rs, LC_FLOAT32, &f));
  if (f) CHECK_STATUS(lc_repeat_interleave(x, f, true, 1, &r), LC_EDTYPE);
  CHECK_OK(lc_from_data(2, r2s, LC_INT64, r2v, &r2));
  if (r2) CHECK_STATUS(lc_repeat_interleave(x, r2, true, 0, &r), LC_ESHAPE);
  CHECK_STATUS(lc_repeat_interleave(x, NULL, true, 0, &r), LC_EARG);
  CHECK_STATUS(lc_tril(NULL, 0, &r), LC_EARG);
  CHECK_STATUS(lc_flip(x, 1, one, NULL), LC_EARG);
  CHECK_STATUS(lc_flip(x, 1, NULL, &r), LC_EARG);
  CHECK_STATUS(lc_tril_(NULL, 0), LC_EARG);
  CHECK(r == NULL);
  lc_release(x);
  lc_release(f);
  lc_release(r2);
  lc_release(neg);
}

/* ---------------------------------------------------------------- gradients */

typedef struct rctx {
  int which;
  const lc_tensor *reps;
} rctx;

static lc_status f_rearr(void *p, lc_tensor *const *in, lc_tensor **out) {
  const rctx *c = p;
  int d02[] = {0, 2}, dm[] = {-1};
  int64_t sh[] = {1, -2}, flat = 5;
  switch (c->which) {
  case 0: return lc_tril(in[0], 1, out);
  case 1: return lc_triu(in[0], -1, out);
  case 2: return lc_flip(in[0], 2, d02, out);
  case 3: return lc_roll(in[0], 2, sh, 2, d02, out);
  case 4: return lc_roll(in[0], 1, &flat, 0, NULL, out);
  case 5: return lc_rot90(in[0], 1, 2, d02, out);
  case 6: return lc_rot90(in[0], 3, 1 + 1, (int[]){-1, 1}, out);
  case 7: return lc_repeat_interleave(in[0], c->reps, true, 1, out);
  case 8: return lc_repeat_interleave_int(in[0], 2, false, 0, out);
  default: return lc_flip(in[0], 1, dm, out);
  }
}

TEST(rearrange_gradcheck) {
  lc_tensor *x = perm3(2, 3, 4, LC_FLOAT64), *reps = NULL;
  int64_t rs[] = {3}, rv[] = {2, 0, 3};
  CHECK_OK(lc_from_data(1, rs, LC_INT64, rv, &reps));
  if (!x || !reps) goto out;
  /* random values on the permuted (non-contiguous) layout */
  lc_tensor *n = NULL;
  CHECK_OK(lc_randn(3, lc_shape(x), LC_FLOAT64, &n));
  if (n) CHECK_OK(lc_copy_(x, n));
  lc_release(n);
  CHECK_OK(lc_set_requires_grad(x, true));
  char msg[256];
  for (int w = 0; w < 10; w++) {
    rctx c = {w, reps};
    lc_tensor *ins[] = {x};
    int ok = gradcheck(f_rearr, &c, 1, ins, 1e-6, 1e-7, 1e-6, msg, sizeof msg);
    if (!ok) printf("  case %d: %s\n", w, msg);
    CHECK(ok);
  }
out:
  lc_release(x);
  lc_release(reps);
}

/* Second order through these ops alone: g = d<op(x), w>/dx = op^T w is recorded (under
 * create_graph) as a function of the seed w, so d<g, u>/dw = op(u). */
TEST(rearrange_second_order) {
  int64_t s[] = {2, 3, 4}, rs[] = {3}, rv[] = {1, 0, 2};
  lc_tensor *x = NULL, *u = NULL, *reps = NULL;
  CHECK_OK(lc_randn(3, s, LC_FLOAT64, &x));
  CHECK_OK(lc_randn(3, s, LC_FLOAT64, &u));
  CHECK_OK(lc_from_data(1, rs, LC_INT64, rv, &reps));
  if (!x || !u || !reps) goto out;
  CHECK_OK(lc_set_requires_grad(x, true));
  for (int k = 0; k < 10; k++) {
    rctx c = {k, reps};
    lc_tensor *y = NULL, *w = NULL, *g = NULL, *gg = NULL, *ref = NULL;
    CHECK_OK(f_rearr(&c, &x, &y));
    if (y) CHECK_OK(lc_randn(lc_ndim(y), lc_shape(y), LC_FLOAT64, &w));
    if (w) CHECK_OK(lc_set_requires_grad(w, true));
    if (w) CHECK_OK(lc_autograd_grad_ex(1, &y, &w, 1, &x, LC_RETAIN_GRAPH | LC_CREATE_GRAPH, &g));
    CHECK(g && lc_grad_fn_name(g) != NULL);
    if (g) CHECK_OK(lc_autograd_grad_ex(1, &g, &u, 1, &w, 0, &gg));
    CHECK_OK(f_rearr(&c, &u, &ref));
    bool close = false;
    if (gg && ref) CHECK_OK(lc_allclose(gg, ref, 1e-12, 1e-12, &close));
    if (!close) printf("  case %d: second-order gradient differs\n", k);
    CHECK(close);
    lc_release(y);
    lc_release(w);
    lc_release(g);
    lc_release(gg);
    lc_release(ref);
  }
out:
  lc_release(x);
  lc_release(u);
  lc_release(reps);
}

TEST(rearrange_inplace_and_names) {
  int64_t s[] = {3, 3};
  lc_tensor *a = NULL, *b = NULL, *r = NULL;
  CHECK_OK(lc_randn(2, s, LC_FLOAT32, &a));
  if (!a) return;
  CHECK_OK(lc_set_requires_grad(a, true));
  CHECK_STATUS(lc_tril_(a, 0), LC_EGRAD); /* a leaf that requires grad */
  CHECK_OK(lc_binary_scalar(LC_MUL, a, 2.0, false, &b));
  if (b) {
    CHECK_OK(lc_triu_(b, 1));
    CHECK(lc_grad_fn_name(b) && strcmp(lc_grad_fn_name(b), "TriuBackward") == 0);
    lc_reduce_opts o = {0};
    CHECK_OK(lc_reduce(LC_SUM, b, &o, &r));
    if (r) CHECK_OK(lc_backward(r, NULL, false));
    lc_tensor *g = lc_grad(a);
    CHECK(g != NULL);
    if (g)
      for (int64_t i = 0; i < 3; i++)
        for (int64_t j = 0; j < 3; j++) {
          int64_t idx[] = {i, j};
          double v = -1;
          lc_get(g, idx, &v);
          CHECK(v == (j > i ? 2.0 : 0.0));
        }
  }
  lc_release(a);
  lc_release(b);
  lc_release(r);
}
