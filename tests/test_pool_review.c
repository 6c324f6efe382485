/* test_pool_review.c - pooling and padding at their edges (include/lucid_conv.h): option values
 * whose size arithmetic would overflow int64, windows of huge kernels, negative pads of the
 * gather modes and what pad's messages call a dim. Values against PyTorch 1.13 are in
 * spec/nn_pool_pad_spec.lua; nearest interpolation's source indices are tests/test_interpolate.c's.
 * (tests/test_pool.c is about the memory pool.)
 * Run alone with: make ctest-one T="tests/test_pool_review.c tests/gradcheck.c" */
#include "lucid_conv.h"

#include "family_test.h"
#include "gradcheck.h"
#include "test.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Kernel, dilation and stride values near INT64_MAX made the output-size arithmetic overflow
 * (undefined behaviour) and the window scan loop for up to 2^63 steps. */
TEST(pool_huge_options_are_errors_not_overflow) {
  int64_t s[3] = {1, 1, 3};
  lc_tensor *x = arange_f(3, s, LC_FLOAT32), *y = NULL, *ix = NULL;
  CHECK(x != NULL);
  lc_pool_opts o;
  lc_pool_opts_init(&o, INT64_MAX, 1); /* 1-d reads entry [0] */
  o.padding[0] = 1;
  o.dilation[0] = 3;
  CHECK_STATUS(lc_max_pool1d(x, &o, &y, &ix), LC_EARG);
  CHECK(strstr(lc_last_error(), "max_pool1d: kernel_size * dilation is too large") != NULL);
  lc_pool_opts_init(&o, 2, 1);
  o.stride[0] = INT64_MAX;
  o.ceil_mode = true;
  CHECK_STATUS(lc_max_pool1d(x, &o, &y, &ix), LC_EARG);
  CHECK(strstr(lc_last_error(), "max_pool1d: stride is too large") != NULL);
  CHECK_STATUS(lc_avg_pool1d(x, &o, &y), LC_EARG);
  CHECK(y == NULL && ix == NULL);
  lc_release(x);
}

/* A kernel far larger than the input (allowed with padding up to half of it): its window is
 * the clipped input, found without scanning the kernel. */
TEST(pool_huge_kernel_window_is_the_input) {
  int64_t s[3] = {1, 1, 3};
  lc_tensor *x = arange_f(3, s, LC_FLOAT64), *y = NULL, *ix = NULL, *a = NULL;
  lc_pool_opts o;
  lc_pool_opts_init(&o, 4000000000LL, 1);
  o.padding[0] = 2000000000LL;
  CHECK_OK(lc_max_pool1d(x, &o, &y, &ix));
  CHECK_OK(lc_avg_pool1d(x, &o, &a)); /* count_include_pad: the divisor is the padded window */
  if (y && ix && a) {
    CHECK(lc_numel(y) == 1 && lc_numel(a) == 1);
    double *v = test_values(y), *iv = test_values(ix), *av = test_values(a);
    CHECK_NEAR(v[0], 2.0, 0);
    CHECK_NEAR(iv[0], 2.0, 0);
    CHECK_NEAR(av[0], 3.0 / 4000000000.0, 1e-20); /* PyTorch: min(b + k, in + p) - b */
    free(v), free(iv), free(av);
  }
  lc_release(x), lc_release(y), lc_release(ix), lc_release(a);
}

/* Negative pads of reflect / replicate / circular crop (PyTorch 1.13): reflect and replicate
 * read position q - before mirrored or clamped at the input's edges, circular wraps around
 * the cropped dim. */
TEST(pad_negative_in_gather_modes) {
  int64_t s[2] = {1, 4};
  lc_tensor *x = arange_f(2, s, LC_FLOAT64);
  static const struct {
    lc_pad_mode mode;
    int64_t pad[2];
    int n;
    double want[6];
  } cs[] = {
      {LC_PAD_REFLECT, {-1, 2}, 5, {1, 2, 3, 2, 1}},
      {LC_PAD_REFLECT, {2, -1}, 5, {2, 1, 0, 1, 2}},
      {LC_PAD_REPLICATE, {2, -1}, 5, {0, 0, 0, 1, 2}},
      {LC_PAD_REPLICATE, {-1, -1}, 2, {1, 2}},
      {LC_PAD_CIRCULAR, {2, -1}, 5, {1, 2, 0, 1, 2}},
      {LC_PAD_CIRCULAR, {-1, 2}, 5, {1, 2, 3, 1, 2}},
      {LC_PAD_CIRCULAR, {-2, -2}, 0, {0}},
  };
  for (size_t c = 0; c < sizeof cs / sizeof *cs; c++) {
    lc_tensor *y = NULL;
    CHECK_OK(lc_pad(x, 2, cs[c].pad, cs[c].mode, 0, &y));
    if (!y) continue;
    CHECK(lc_shape(y)[1] == cs[c].n);
    double *v = test_values(y);
    for (int i = 0; v && i < cs[c].n; i++)
      CHECK_NEAR(v[i], cs[c].want[i], 0);
    free(v);
    lc_release(y);
  }
  lc_release(x);
}

typedef struct padcase {
  lc_pad_mode mode;
  int64_t pad[4];
} padcase;

static lc_status pad_fn(void *ctx, lc_tensor *const *in, lc_tensor **out) {
  const padcase *c = ctx;
  return lc_pad(in[0], 4, c->pad, c->mode, 0, out);
}

/* The gradient of every gather mode with negative pads is the adjoint of its forward, also for
 * a strided (transposed) input. */
TEST(pad_negative_gradcheck) {
  lc_manual_seed(5);
  static const padcase cs[] = {
      {LC_PAD_REFLECT, {-1, 3, 2, -2}},
      {LC_PAD_REPLICATE, {3, -2, -1, 2}},
      {LC_PAD_CIRCULAR, {2, -1, -1, 1}},
      {LC_PAD_CIRCULAR, {-2, 2, 3, -1}},
  };
  int64_t s[4] = {1, 2, 4, 5};
  for (size_t c = 0; c < sizeof cs / sizeof *cs; c++) {
    lc_tensor *x0 = NULL, *x = NULL, *xt = NULL;
    CHECK_OK(lc_randn(4, s, LC_FLOAT64, &x0));
    CHECK_OK(lc_transpose(x0, 2, 3, &xt)); /* {1, 2, 5, 4}, strided */
    CHECK_OK(lc_transpose(xt, 2, 3, &x));  /* back to {1, 2, 4, 5}, still a strided view */
    lc_release(xt);
    if (!x) {
      lc_release(x0);
      continue;
    }
    lc_tensor *leaf = NULL;
    CHECK_OK(lc_detach(x, &leaf));
    lc_set_requires_grad(leaf, true);
    char msg[256];
    int ok = gradcheck(pad_fn, (void *)&cs[c], 1, &leaf, 1e-6, 1e-7, 1e-5, msg, sizeof msg);
    if (!ok) printf("  case %zu: %s\n", c, msg);
    CHECK(ok);
    lc_release(leaf), lc_release(x), lc_release(x0);
  }
}

/* pad's messages name a dim from the end (-1 is the last), which reads the same in C (0-based)
 * and in Lua (1-based); they named it 0-based before. */
TEST(pad_errors_name_dims_from_the_end) {
  int64_t s[3] = {1, 2, 3}, p2[2] = {3, 0}, p4[4] = {0, 0, 2, 0}, crop[2] = {-2, -2},
          circ[4] = {2, -2, 0, 0}, neg[2] = {-5, 1};
  lc_tensor *x = arange_f(3, s, LC_FLOAT32), *y = NULL;
  CHECK_STATUS(lc_pad(x, 2, p2, LC_PAD_REFLECT, 0, &y), LC_EARG);
  CHECK(strstr(lc_last_error(), "got 3 for dim -1 of size 3") != NULL);
  CHECK_STATUS(lc_pad(x, 4, p4, LC_PAD_REFLECT, 0, &y), LC_EARG);
  CHECK(strstr(lc_last_error(), "got 2 for dim -2 of size 2") != NULL);
  CHECK_STATUS(lc_pad(x, 2, crop, LC_PAD_CONSTANT, 0, &y), LC_ESHAPE);
  CHECK(strstr(lc_last_error(),
               "pad: dim -1 of size 3 padded by (-2, -2) would get the negative size -1") != NULL);
  /* circular wraps around the cropped dim: at most its cropped size */
  CHECK_STATUS(lc_pad(x, 4, circ, LC_PAD_CIRCULAR, 0, &y), LC_EARG);
  CHECK(strstr(lc_last_error(), "got 2 for dim -1 of size 1") != NULL);
  CHECK_STATUS(lc_pad(x, 2, neg, LC_PAD_CIRCULAR, 0, &y), LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "negative size -1") != NULL);
  CHECK(y == NULL);
  lc_release(x);
}

/* The reference: a direct row-major scan of each window (the first maximum, or the last NaN),
 * windows as PyTorch's: start o * s - p, k taps d apart, inside the input. */
static void ref_max_pool(const float *x, int64_t H, int64_t W, const lc_pool_opts *o, int64_t OH,
                         int64_t OW, float *y, int64_t *ix) {
  for (int64_t oh = 0; oh < OH; oh++)
    for (int64_t ow = 0; ow < OW; ow++) {
      float best = 0;
      int64_t bi = -1;
      for (int64_t i = 0; i < o->kernel_size[0]; i++) {
        int64_t h = oh * o->stride[0] - o->padding[0] + i * o->dilation[0];
        if (h < 0 || h >= H) continue;
        for (int64_t j = 0; j < o->kernel_size[1]; j++) {
          int64_t w = ow * o->stride[1] - o->padding[1] + j * o->dilation[1];
          if (w < 0 || w >= W) continue;
          float v = x[h * W + w];
          if (bi < 0 || v > best || v != v) best = v, bi = h * W + w;
        }
      }
      y[oh * OW + ow] = best;
      ix[oh * OW + ow] = bi;
    }
}

/* max_pool2d's two-pass kernel (whole windows vectorised, the edges direct) gives the direct
 * scan's values and indices, ties (values from {0, 1, 2}) and NaNs included, over kernel,
 * stride, padding, dilation and ceil_mode choices and odd sizes. */
TEST(max_pool2d_two_pass_matches_direct_scan) {
  static const int64_t cfg[][8] = {/* kh kw sh sw ph pw dh dw */
                                   {3, 3, 2, 2, 1, 1, 1, 1}, {3, 3, 1, 1, 1, 1, 1, 1},
                                   {2, 3, 2, 1, 0, 1, 1, 1}, {3, 2, 3, 2, 1, 0, 2, 1},
                                   {5, 5, 2, 3, 2, 2, 1, 2}, {1, 1, 1, 1, 0, 0, 1, 1},
                                   {2, 2, 1, 1, 0, 0, 1, 1}, {4, 4, 4, 4, 2, 2, 1, 1}};
  static const int64_t sizes[][2] = {{11, 13}, {7, 7}, {16, 9}, {5, 23}};
  int bad = 0;
  unsigned r = 1;
  for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++)
    for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++)
      for (int ceil_mode = 0; ceil_mode <= 1; ceil_mode++) {
        int64_t shape[4] = {2, 3, sizes[z][0], sizes[z][1]}, H = shape[2], W = shape[3];
        lc_tensor *x = NULL, *y = NULL, *ix = NULL;
        CHECK_OK(lc_empty(4, shape, LC_FLOAT32, &x));
        float *xd = lc_data(x);
        for (int64_t i = 0; i < lc_numel(x); i++) {
          r = r * 1103515245u + 12345u;
          xd[i] = (r >> 16) % 41 == 0 ? NAN : (float)((r >> 8) % 3);
        }
        lc_pool_opts o;
        lc_pool_opts_init(&o, cfg[c][0], cfg[c][1]);
        o.stride[0] = cfg[c][2], o.stride[1] = cfg[c][3];
        o.padding[0] = cfg[c][4], o.padding[1] = cfg[c][5];
        o.dilation[0] = cfg[c][6], o.dilation[1] = cfg[c][7];
        o.ceil_mode = ceil_mode;
        if (lc_max_pool2d(x, &o, &y, &ix) != LC_OK) { /* an option set PyTorch refuses */
          lc_release(x);
          continue;
        }
        int64_t OH = lc_shape(y)[2], OW = lc_shape(y)[3], on = OH * OW;
        float *want = malloc(sizeof(float) * (size_t)on);
        int64_t *wix = malloc(sizeof(int64_t) * (size_t)on);
        const float *yd = lc_data(y);
        const int64_t *id = lc_data(ix);
        for (int64_t pl = 0; pl < 6; pl++) {
          ref_max_pool(xd + pl * H * W, H, W, &o, OH, OW, want, wix);
          for (int64_t k = 0; k < on; k++) {
            float g = yd[pl * on + k];
            bool same = (g != g && want[k] != want[k]) || g == want[k];
            if (!same || id[pl * on + k] != wix[k]) bad++;
          }
        }
        free(want);
        free(wix);
        lc_release(x);
        lc_release(y);
        lc_release(ix);
      }
  CHECK(bad == 0);
}
