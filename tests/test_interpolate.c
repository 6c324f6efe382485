/* test_interpolate.c - the interpolate family (lucid_interpolate.h): nearest and bilinear
 * values against hand-computed ones, nearest's source indices (PyTorch 1.13's, factor and
 * precision rules), gradients against central differences (float64). Values against PyTorch
 * are in spec/nn_interpolate_spec.lua and spec/nn_pool_pad_spec.lua.
 * Run alone with: make ctest-one T="tests/test_interpolate.c tests/gradcheck.c" */
#include "lucid_interpolate.h"

#include "family_test.h"
#include "gradcheck.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

TEST(interpolate_nearest_values) {
  /* {1, 1, 3} -> 7 (scale 3/7) and x2 (size 6): floor(dst * in / out) */
  double v[3] = {1, 2, 3};
  int64_t s[3] = {1, 1, 3};
  lc_tensor *x = NULL, *y = NULL, *y2 = NULL;
  CHECK_OK(lc_from_data(3, s, LC_FLOAT64, v, &x));
  lc_interpolate_opts o = {LC_INTERP_NEAREST, 1, {7, 0}, 0, {0, 0}, false};
  CHECK_OK(lc_interpolate(x, &o, &y));
  CHECK(lc_shape(y)[2] == 7);
  double *yv = test_values(y);
  for (int d = 0; d < 7; d++)
    CHECK_NEAR(yv[d], v[(int)floor(d * 3.0 / 7.0)], 0);
  lc_interpolate_opts o2 = {LC_INTERP_NEAREST, 0, {0, 0}, 1, {2, 0}, false};
  CHECK_OK(lc_interpolate(x, &o2, &y2));
  double *y2v = test_values(y2);
  CHECK(lc_shape(y2)[2] == 6);
  for (int d = 0; d < 6; d++)
    CHECK_NEAR(y2v[d], v[d / 2], 0);
  free(yv), free(y2v);
  lc_release(x), lc_release(y), lc_release(y2);
}

TEST(interpolate_bilinear_values) {
  /* 2x2 -> 3x3 with align_corners: corners kept, centre the mean */
  double v[4] = {0, 1, 2, 3};
  int64_t s[4] = {1, 1, 2, 2};
  lc_tensor *x64 = NULL, *x = NULL, *y = NULL, *y2 = NULL;
  CHECK_OK(lc_from_data(4, s, LC_FLOAT64, v, &x64));
  CHECK_OK(lc_to_dtype(x64, LC_FLOAT32, &x)); /* float32: the tables in float, as PyTorch */
  lc_release(x64);
  lc_interpolate_opts o = {LC_INTERP_BILINEAR, 1, {3, 0}, 0, {0, 0}, true};
  CHECK_OK(lc_interpolate(x, &o, &y));
  double *yv = test_values(y);
  double want[9] = {0, 0.5, 1, 1, 1.5, 2, 2, 2.5, 3};
  for (int k = 0; k < 9; k++)
    CHECK_NEAR(yv[k], want[k], 1e-6);
  /* half-pixel: 2 -> 4 gives weights 1, .75/.25, .25/.75, 1 along each dim */
  lc_interpolate_opts o2 = {LC_INTERP_BILINEAR, 0, {0, 0}, 1, {2, 0}, false};
  CHECK_OK(lc_interpolate(x, &o2, &y2));
  double *y2v = test_values(y2);
  double row[4] = {0, 0.25, 0.75, 1};
  for (int h = 0; h < 4; h++)
    for (int w = 0; w < 4; w++)
      CHECK_NEAR(y2v[h * 4 + w], 2 * row[h] + row[w], 1e-6);
  free(yv), free(y2v);
  lc_release(x), lc_release(y), lc_release(y2);
}

static lc_status f_interp(void *vctx, lc_tensor *const *in, lc_tensor **out) {
  return lc_interpolate(in[0], vctx, out);
}

static void check_grad(int *failures_, lc_interpolate_opts *o, lc_tensor *x) {
  char msg[512];
  int ok = gradcheck(f_interp, o, 1, &x, 1e-6, 1e-6, 1e-4, msg, sizeof msg);
  if (!ok) printf("  gradcheck: %s\n", msg);
  CHECK(ok);
}

TEST(interpolate_gradcheck) {
  int64_t s3[3] = {2, 2, 5}, s4[4] = {2, 1, 3, 4};
  lc_tensor *x3 = leaf(3, s3, 1), *x4 = leaf(4, s4, 1);
  lc_interpolate_opts n1 = {LC_INTERP_NEAREST, 1, {8, 0}, 0, {0, 0}, false};
  lc_interpolate_opts n1d = {LC_INTERP_NEAREST, 1, {3, 0}, 0, {0, 0}, false};
  lc_interpolate_opts n2 = {LC_INTERP_NEAREST, 0, {0, 0}, 2, {2, 1.5}, false};
  lc_interpolate_opts b1 = {LC_INTERP_BILINEAR, 2, {5, 7}, 0, {0, 0}, false};
  lc_interpolate_opts b2 = {LC_INTERP_BILINEAR, 2, {2, 9}, 0, {0, 0}, true};
  lc_interpolate_opts b3 = {LC_INTERP_BILINEAR, 0, {0, 0}, 1, {1.7, 0}, false};
  check_grad(failures_, &n1, x3);
  check_grad(failures_, &n1d, x3);
  check_grad(failures_, &n2, x4);
  check_grad(failures_, &b1, x4);
  check_grad(failures_, &b2, x4);
  check_grad(failures_, &b3, x4);
  lc_release(x3), lc_release(x4);
}

/* Nearest interpolation reads src = floorf(dst * scale) with scale = 1 / scale_factor when a
 * factor is given: no shortcut for out == 2 in (factor 2.05) or out == in (factor 1.05), and
 * float64 rounds dst * scale to float before the floor, as PyTorch 1.13's forward. */
TEST(interpolate_nearest_source_indices) {
  static const struct {
    lc_dtype dt;
    int64_t in;
    double sf;
    int64_t size;
    int n;
    int64_t want[20];
  } cs[] = {
      {LC_FLOAT32, 10, 2.05, 0, 20, {0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9}},
      {LC_FLOAT64, 10, 2.05, 0, 20, {0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9}},
      {LC_FLOAT32, 10, 1.05, 0, 10, {0, 0, 1, 2, 3, 4, 5, 6, 7, 8}},
      {LC_FLOAT64, 6, 1.4000000000000001, 0, 8, {0, 0, 1, 2, 2, 3, 4, 5}},
      {LC_FLOAT64, 26, 0, 46, 1, {0}}, /* only output 23 checked: reads 13 */
  };
  for (size_t c = 0; c < sizeof cs / sizeof *cs; c++) {
    int64_t s[3] = {1, 1, cs[c].in};
    lc_tensor *x = arange_f(3, s, cs[c].dt), *y = NULL;
    lc_interpolate_opts o;
    memset(&o, 0, sizeof o);
    o.mode = LC_INTERP_NEAREST;
    if (cs[c].size) {
      o.nsize = 1, o.size[0] = cs[c].size;
    } else {
      o.nscale = 1, o.scale_factor[0] = cs[c].sf;
    }
    CHECK_OK(lc_interpolate(x, &o, &y));
    if (y) {
      double *v = test_values(y);
      if (cs[c].size) {
        CHECK_NEAR(v[23], 13.0, 0);
      } else {
        CHECK(lc_shape(y)[2] == cs[c].n);
        for (int i = 0; i < cs[c].n; i++)
          if (v[i] != (double)cs[c].want[i]) {
            printf("  case %zu: output %d reads %g, expected %lld\n", c, i, v[i],
                   (long long)cs[c].want[i]);
            CHECK(0);
          }
      }
      free(v);
    }
    lc_release(x), lc_release(y);
  }
}
