/* test_conv_winograd.c - the Winograd F(2x2, 3x3) forward (src/kernels/conv_winograd.c) against
 * the im2col path: many shapes (odd sizes, padding 0 to 2, channel counts of no pattern, with
 * and without bias, batch 1 and 3, unbatched), float64 untouched, the size rule's dispatch,
 * thread-count independence and a gradcheck whose forward is Winograd's (the numeric
 * derivatives come from the Winograd forward, the analytic ones from the im2col backward).
 * Run alone with: make ctest-one T=tests/test_conv_winograd.c */
#include "../src/kernels/conv_winograd.h"
#include "lucid_conv.h"

#include "gradcheck.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

static lc_tensor *randn(int nd, const int64_t *shape, lc_dtype dt) {
  lc_tensor *t = NULL;
  if (lc_randn(nd, shape, dt, &t)) return NULL;
  return t;
}

static lc_tensor *to(const lc_tensor *t, lc_dtype dt) {
  lc_tensor *r = NULL;
  if (!t || lc_to_dtype(t, dt, &r)) return NULL;
  return r;
}

static lc_status conv_mode(int mode, const lc_tensor *x, const lc_tensor *w, const lc_tensor *b,
                           int64_t ph, int64_t pw, lc_tensor **y) {
  lc_conv_opts o;
  lc_conv_opts_init(&o);
  o.padding[0] = ph, o.padding[1] = pw;
  int prev = lc_conv_winograd_set_mode(mode);
  lc_status st = lc_conv2d(x, w, b, &o, y);
  lc_conv_winograd_set_mode(prev);
  return st;
}

/* max |a - b| and max |b| over all elements; false when the shapes differ. */
static bool max_diff(const lc_tensor *a, const lc_tensor *b, double *diff, double *scale) {
  if (!a || !b || lc_ndim(a) != lc_ndim(b) || lc_numel(a) != lc_numel(b)) return false;
  for (int d = 0; d < lc_ndim(a); d++)
    if (lc_shape(a)[d] != lc_shape(b)[d]) return false;
  double *va = test_values(a), *vb = test_values(b);
  *diff = 0, *scale = 0;
  for (int64_t i = 0; i < lc_numel(a); i++) {
    double e = fabs(va[i] - vb[i]);
    if (e > *diff) *diff = e;
    if (fabs(vb[i]) > *scale) *scale = fabs(vb[i]);
  }
  free(va);
  free(vb);
  return true;
}

static bool bitwise_equal(const lc_tensor *a, const lc_tensor *b) {
  if (!a || !b || lc_numel(a) != lc_numel(b) || lc_dtype_of(a) != lc_dtype_of(b)) return false;
  return memcmp(lc_data(a), lc_data(b), (size_t)lc_numel(a) * lc_dtype_size(lc_dtype_of(a))) == 0;
}

typedef struct wcase {
  int64_t N, C, H, W, O, ph, pw;
  bool bias;
} wcase;

static const wcase cases[] = {
    {1, 1, 3, 3, 1, 0, 0, false},    /* one output element */
    {1, 1, 1, 1, 1, 1, 1, true},     /* 1x1 input, padding makes the 3x3 */
    {1, 3, 5, 7, 4, 1, 1, true},     /* odd sizes: clipped last tile row and column */
    {1, 2, 4, 9, 5, 0, 0, false},    /* no padding */
    {3, 5, 6, 6, 3, 2, 2, true},     /* batch 3, padding 2 */
    {3, 7, 11, 5, 9, 1, 0, true},    /* unequal padding */
    {1, 13, 9, 10, 11, 0, 2, false}, /* channels of no pattern */
    {2, 17, 15, 15, 19, 1, 1, true}, {1, 33, 20, 3, 7, 1, 1, true}, /* tall, narrow */
    {1, 6, 3, 140, 5, 1, 1, true},   /* more than one block of 64 tiles in a row */
    {1, 70, 14, 14, 66, 1, 1, true}, /* the size rule's range */
};

TEST(winograd_matches_float64_im2col_over_shapes) {
  lc_manual_seed(11);
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    const wcase *c = &cases[k];
    int64_t xs[4] = {c->N, c->C, c->H, c->W}, ws[4] = {c->O, c->C, 3, 3}, bs[1] = {c->O};
    lc_tensor *x = randn(4, xs, LC_FLOAT32), *w = randn(4, ws, LC_FLOAT32);
    lc_tensor *b = c->bias ? randn(1, bs, LC_FLOAT32) : NULL;
    lc_tensor *x64 = to(x, LC_FLOAT64), *w64 = to(w, LC_FLOAT64), *b64 = to(b, LC_FLOAT64);
    lc_tensor *yw = NULL, *yi = NULL, *yref = NULL;
    CHECK_OK(conv_mode(LC_WINO_ALWAYS, x, w, b, c->ph, c->pw, &yw));
    CHECK_OK(conv_mode(LC_WINO_NEVER, x, w, b, c->ph, c->pw, &yi));
    CHECK_OK(conv_mode(LC_WINO_NEVER, x64, w64, b64, c->ph, c->pw, &yref));
    double dw = 0, di = 0, scale = 0;
    CHECK(max_diff(yw, yref, &dw, &scale));
    CHECK(max_diff(yi, yref, &di, &scale));
    /* float32 rounding over 9 C products: Winograd within a few times im2col's error (measured:
     * about equal; a 0.2% error in one transform coefficient fails every case) */
    double tol = 2e-7 * (1 + scale) * sqrt((double)(9 * c->C)) + 4 * di;
    if (!(dw <= tol))
      printf("  case %zu: winograd error %.3g, im2col %.3g, tol %.3g\n", k, dw, di, tol);
    CHECK(dw <= tol);
    CHECK(!bitwise_equal(yw, yi) || lc_numel(yw) <= 2); /* Winograd did run */
    lc_release(x), lc_release(w), lc_release(b), lc_release(x64), lc_release(w64);
    lc_release(b64), lc_release(yw), lc_release(yi), lc_release(yref);
  }
}

TEST(winograd_unbatched_and_noncontiguous_input) {
  lc_manual_seed(12);
  int64_t xs[3] = {4, 9, 8}, ws[4] = {6, 4, 3, 3};
  lc_tensor *x = randn(3, xs, LC_FLOAT32), *w = randn(4, ws, LC_FLOAT32), *xt = NULL;
  lc_tensor *yw = NULL, *yi = NULL, *ytw = NULL, *yti = NULL;
  CHECK_OK(conv_mode(LC_WINO_ALWAYS, x, w, NULL, 1, 1, &yw));
  CHECK_OK(conv_mode(LC_WINO_NEVER, x, w, NULL, 1, 1, &yi));
  double d = 1, s = 0;
  CHECK(max_diff(yw, yi, &d, &s) && lc_ndim(yw) == 3 && d <= 1e-5 * (1 + s));
  CHECK_OK(lc_transpose(x, 1, 2, &xt)); /* 4 x 8 x 9, a strided view */
  CHECK_OK(conv_mode(LC_WINO_ALWAYS, xt, w, NULL, 0, 2, &ytw));
  CHECK_OK(conv_mode(LC_WINO_NEVER, xt, w, NULL, 0, 2, &yti));
  d = 1;
  CHECK(max_diff(ytw, yti, &d, &s) && d <= 1e-5 * (1 + s));
  lc_release(x), lc_release(w), lc_release(xt), lc_release(yw), lc_release(yi);
  lc_release(ytw), lc_release(yti);
}

TEST(winograd_dispatch_rule_and_float64_untouched) {
  lc_manual_seed(13);
  /* batch 1, 14 x 14 output, 16 channels: the size rule takes Winograd */
  int64_t xs[4] = {1, 16, 14, 14}, ws[4] = {16, 16, 3, 3}, bs[1] = {16};
  lc_tensor *x = randn(4, xs, LC_FLOAT32), *w = randn(4, ws, LC_FLOAT32),
            *b = randn(1, bs, LC_FLOAT32);
  lc_tensor *ya = NULL, *yw = NULL, *yi = NULL;
  CHECK_OK(conv_mode(LC_WINO_AUTO, x, w, b, 1, 1, &ya));
  CHECK_OK(conv_mode(LC_WINO_ALWAYS, x, w, b, 1, 1, &yw));
  CHECK_OK(conv_mode(LC_WINO_NEVER, x, w, b, 1, 1, &yi));
  CHECK(bitwise_equal(ya, yw));
  CHECK(!bitwise_equal(ya, yi));
  lc_release(ya), lc_release(yw), lc_release(yi), lc_release(x);
  /* batch 2: the per-sample im2col split */
  xs[0] = 2;
  x = randn(4, xs, LC_FLOAT32);
  ya = yi = NULL;
  CHECK_OK(conv_mode(LC_WINO_AUTO, x, w, b, 1, 1, &ya));
  CHECK_OK(conv_mode(LC_WINO_NEVER, x, w, b, 1, 1, &yi));
  CHECK(bitwise_equal(ya, yi));
  lc_release(ya), lc_release(yi);
  /* float64 always keeps im2col */
  lc_tensor *x64 = to(x, LC_FLOAT64), *w64 = to(w, LC_FLOAT64), *b64 = to(b, LC_FLOAT64);
  ya = yi = NULL;
  CHECK_OK(conv_mode(LC_WINO_ALWAYS, x64, w64, b64, 1, 1, &ya));
  CHECK_OK(conv_mode(LC_WINO_NEVER, x64, w64, b64, 1, 1, &yi));
  CHECK(bitwise_equal(ya, yi));
  lc_release(ya), lc_release(yi);
  /* strided, dilated and grouped 3x3 convs are not eligible either */
  lc_conv_opts o;
  lc_conv_opts_init(&o);
  o.padding[0] = o.padding[1] = 1;
  for (int v = 0; v < 3; v++) {
    lc_conv_opts p = o;
    int64_t wgs[4] = {16, 16, 3, 3};
    if (v == 0) p.stride[0] = 2;
    if (v == 1) p.dilation[1] = 2;
    if (v == 2) p.groups = 2, wgs[1] = 8;
    lc_tensor *wg = randn(4, wgs, LC_FLOAT32), *r[2] = {NULL, NULL};
    for (int m = 0; m < 2; m++) {
      int prev = lc_conv_winograd_set_mode(m ? LC_WINO_NEVER : LC_WINO_ALWAYS);
      CHECK_OK(lc_conv2d(x, wg, b, &p, &r[m]));
      lc_conv_winograd_set_mode(prev);
    }
    CHECK(bitwise_equal(r[0], r[1]));
    lc_release(wg), lc_release(r[0]), lc_release(r[1]);
  }
  lc_release(x), lc_release(w), lc_release(b), lc_release(x64), lc_release(w64), lc_release(b64);
}

TEST(winograd_same_result_with_one_or_two_threads) {
  lc_manual_seed(14);
  int64_t xs[4] = {1, 24, 30, 29}, ws[4] = {40, 24, 3, 3}, bs[1] = {40};
  lc_tensor *x = randn(4, xs, LC_FLOAT32), *w = randn(4, ws, LC_FLOAT32),
            *b = randn(1, bs, LC_FLOAT32);
  lc_tensor *y[2] = {NULL, NULL};
  int prev = lc_get_num_threads();
  for (int r = 0; r < 2; r++) {
    lc_set_num_threads(r + 1);
    CHECK_OK(conv_mode(LC_WINO_ALWAYS, x, w, b, 1, 1, &y[r]));
  }
  lc_set_num_threads(prev);
  double d = 1, s = 0;
  CHECK(max_diff(y[0], y[1], &d, &s) && d <= 1e-5 * (1 + s));
  lc_release(x), lc_release(w), lc_release(b), lc_release(y[0]), lc_release(y[1]);
}

/* float64 leaves -> float32 -> the Winograd forward -> float64: the gradient through it is the
 * im2col backward's, so gradcheck's central differences (of the Winograd forward, exact up to
 * float32 rounding since a conv is linear in each argument) check the forward's values. */
static lc_status wino_fn(void *ctx, lc_tensor *const *in, lc_tensor **out) {
  const wcase *c = ctx;
  lc_tensor *f[3] = {NULL, NULL, NULL}, *y = NULL;
  lc_status st = LC_OK;
  for (int i = 0; i < 3 && !st; i++)
    if (i < 2 || c->bias) st = lc_to_dtype(in[i], LC_FLOAT32, &f[i]);
  if (!st) st = conv_mode(LC_WINO_ALWAYS, f[0], f[1], f[2], c->ph, c->pw, &y);
  if (!st) st = lc_to_dtype(y, LC_FLOAT64, out);
  for (int i = 0; i < 3; i++)
    lc_release(f[i]);
  lc_release(y);
  return st;
}

TEST(winograd_forward_gradcheck) {
  lc_manual_seed(15);
  static const wcase gc[] = {{1, 3, 5, 6, 4, 1, 1, true}, {2, 2, 4, 5, 3, 2, 0, false}};
  for (size_t k = 0; k < sizeof gc / sizeof *gc; k++) {
    const wcase *c = &gc[k];
    int64_t xs[4] = {c->N, c->C, c->H, c->W}, ws[4] = {c->O, c->C, 3, 3}, bs[1] = {c->O};
    lc_tensor *ins[3] = {randn(4, xs, LC_FLOAT64), randn(4, ws, LC_FLOAT64),
                         c->bias ? randn(1, bs, LC_FLOAT64) : NULL};
    for (int i = 0; i < 3; i++)
      if (ins[i]) lc_set_requires_grad(ins[i], true);
    char msg[256];
    int ok = gradcheck(wino_fn, (void *)c, c->bias ? 3 : 2, ins, 1e-2, 2e-3, 2e-3, msg, sizeof msg);
    if (!ok) printf("  case %zu: %s\n", k, msg);
    CHECK(ok);
    for (int i = 0; i < 3; i++)
      lc_release(ins[i]);
  }
}

TEST(winograd_kernel_direct_call_matches_im2col) {
  /* the kernel entry point itself (the dispatch's callee): batch 2, padding 1 / 0 */
  lc_manual_seed(16);
  lc_wino_geom g = {.N = 2, .Cin = 5, .H = 7, .W = 8, .Cout = 3, .ph = 1, .pw = 0};
  int64_t xs[4] = {2, 5, 7, 8}, ws[4] = {3, 5, 3, 3}, bs[1] = {3}, ys[4] = {2, 3, 7, 6};
  lc_tensor *x = randn(4, xs, LC_FLOAT32), *w = randn(4, ws, LC_FLOAT32),
            *b = randn(1, bs, LC_FLOAT32);
  lc_tensor *yi = NULL, *y = NULL;
  CHECK_OK(conv_mode(LC_WINO_NEVER, x, w, b, 1, 0, &yi));
  CHECK_OK(lc_zeros(4, ys, LC_FLOAT32, &y));
  size_t bytes = lc_conv_winograd_ws_bytes(&g);
  CHECK(bytes > 0);
  float *ws_ = aligned_alloc(64, (bytes + 63) / 64 * 64);
  if (y && ws_) {
    lc_conv_winograd_f32(&g, lc_data(x), lc_data(w), lc_data(b), lc_data(y), ws_);
    double d = 1, s = 0;
    CHECK(max_diff(y, yi, &d, &s) && d <= 1e-5 * (1 + s));
  }
  free(ws_);
  lc_release(x), lc_release(w), lc_release(b), lc_release(yi), lc_release(y);
}

/* Batch 1 outside Winograd (strided, 1x1, 5x5, grouped): one sample split over output
 * channels on lucid's threads (conv_fwd_rows) matches the float64 path, with 1 or 2 threads. */
TEST(batch1_conv_split_over_output_channels) {
  lc_manual_seed(17);
  struct {
    int64_t C, H, W, O, k, s, p, g;
    bool bias, unbatched;
  } cs[] = {{8, 20, 21, 16, 3, 2, 1, 1, true, false},
            {32, 17, 17, 48, 1, 1, 0, 1, false, false},
            {5, 23, 19, 33, 5, 1, 2, 1, true, true},
            {8, 16, 16, 16, 3, 1, 1, 2, true, false},
            {6, 30, 30, 40, 3, 1, 1, 1, false, false}}; /* the last: Winograd, for contrast */
  int prev = lc_get_num_threads();
  for (size_t k = 0; k < sizeof cs / sizeof *cs; k++) {
    int64_t xs[4] = {1, cs[k].C, cs[k].H, cs[k].W},
            ws[4] = {cs[k].O, cs[k].C / cs[k].g, cs[k].k, cs[k].k};
    int64_t bs[1] = {cs[k].O};
    int xnd = cs[k].unbatched ? 3 : 4;
    lc_tensor *x = randn(xnd, xs + (4 - xnd), LC_FLOAT32), *w = randn(4, ws, LC_FLOAT32);
    lc_tensor *b = cs[k].bias ? randn(1, bs, LC_FLOAT32) : NULL;
    lc_tensor *x64 = to(x, LC_FLOAT64), *w64 = to(w, LC_FLOAT64), *b64 = to(b, LC_FLOAT64);
    lc_conv_opts o;
    lc_conv_opts_init(&o);
    o.stride[0] = o.stride[1] = cs[k].s, o.padding[0] = o.padding[1] = cs[k].p, o.groups = cs[k].g;
    lc_tensor *ref = NULL, *y[2] = {NULL, NULL};
    CHECK_OK(lc_conv2d(x64, w64, b64, &o, &ref));
    for (int r = 0; r < 2; r++) {
      lc_set_num_threads(r + 1);
      CHECK_OK(lc_conv2d(x, w, b, &o, &y[r]));
      double d = 1, s = 0;
      CHECK(max_diff(y[r], ref, &d, &s));
      double tol = 1e-6 * (1 + s) * sqrt((double)(ws[1] * ws[2] * ws[3]));
      if (!(d <= tol)) printf("  case %zu, %d threads: error %.3g, tol %.3g\n", k, r + 1, d, tol);
      CHECK(d <= tol);
    }
    lc_set_num_threads(prev);
    lc_release(x), lc_release(w), lc_release(b), lc_release(x64), lc_release(w64);
    lc_release(b64), lc_release(ref), lc_release(y[0]), lc_release(y[1]);
  }
}
