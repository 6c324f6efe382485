/* test_core_format.c - lc_to_string: exact text for the layouts lucid prints. */
#include "../src/core/core.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

/* Formats t (then releases it) and compares with want, printing both on a mismatch. */
static int prints_as(lc_tensor *t, const char *want) {
  if (!t) return 0;
  char *s = NULL;
  lc_status st = lc_to_string(t, &s);
  lc_release(t);
  if (st) {
    printf("  lc_to_string failed: %s\n", lc_last_error());
    return 0;
  }
  int ok = strcmp(s, want) == 0;
  if (!ok) printf("  got:\n%s\n  want:\n%s\n", s, want);
  lc_free(s);
  return ok;
}

static lc_tensor *from_f64(int ndim, const int64_t *shape, const double *d, lc_dtype dt) {
  lc_tensor *t = NULL, *c = NULL;
  if (lc_from_data(ndim, shape, LC_FLOAT64, d, &t)) return NULL;
  if (lc_empty(ndim, shape, dt, &c) == LC_OK) lc_k_copy(c, t);
  lc_release(t);
  return c;
}

TEST(format_floats_one_line) {
  int64_t s[] = {2, 2};
  double d[] = {0.123456, 1, 2, 3};
  CHECK(prints_as(from_f64(2, s, d, LC_FLOAT32), "tensor([[0.1235, 1.], [2., 3.]])"));
  CHECK(
      prints_as(from_f64(2, s, d, LC_FLOAT64), "tensor([[0.1235, 1.], [2., 3.]], dtype=float64)"));
  int64_t s5[] = {6};
  double e[] = {1e10, -2.5e-7, 0, -0.0, 1234.4, 0.0001};
  CHECK(prints_as(from_f64(1, s5, e, LC_FLOAT64),
                  "tensor([1.000e+10, -2.500e-07, 0., -0., 1234., 0.0001], dtype=float64)"));
  double sp[] = {NAN, INFINITY, -INFINITY, 12345.6, 99999999.5, -0.5};
  CHECK(prints_as(from_f64(1, s5, sp, LC_FLOAT64),
                  "tensor([nan, inf, -inf, 12346., 1.000e+08, -0.5], dtype=float64)"));
}

TEST(format_ints_bools_scalars_empty) {
  int64_t s[] = {3};
  double d[] = {-7, 0, 42};
  CHECK(prints_as(from_f64(1, s, d, LC_INT64), "tensor([-7, 0, 42], dtype=int64)"));
  CHECK(prints_as(from_f64(1, s, d, LC_INT32), "tensor([-7, 0, 42], dtype=int32)"));
  CHECK(prints_as(from_f64(1, s, d, LC_BOOL), "tensor([true, false, true], dtype=bool)"));
  lc_tensor *t = NULL;
  CHECK_OK(lc_scalar(3, LC_FLOAT32, &t));
  CHECK(prints_as(t, "tensor(3.)"));
  CHECK_OK(lc_scalar(-2, LC_INT64, &t));
  CHECK(prints_as(t, "tensor(-2, dtype=int64)"));
  int64_t e03[] = {0, 3}, e0[] = {0};
  CHECK_OK(lc_zeros(2, e03, LC_FLOAT32, &t));
  CHECK(prints_as(t, "tensor([], size={0, 3})"));
  CHECK_OK(lc_zeros(1, e0, LC_FLOAT32, &t));
  CHECK(prints_as(t, "tensor([])"));
  CHECK_OK(lc_zeros(1, e0, LC_INT64, &t));
  CHECK(prints_as(t, "tensor([], dtype=int64)"));
  char *str = NULL;
  CHECK_STATUS(lc_to_string(NULL, &str), LC_EARG);
}

TEST(format_multiline_right_aligned) {
  lc_tensor *t = NULL;
  CHECK_OK(lc_arange(0, 30, 1, LC_FLOAT32, &t)); /* too long for one line: wraps at 80 */
  CHECK(prints_as(t,
                  "tensor([ 0.,  1.,  2.,  3.,  4.,  5.,  6.,  7.,  8.,  9., 10., 11., 12., 13.,\n"
                  "        14., 15., 16., 17., 18., 19., 20., 21., 22., 23., 24., 25., 26., 27.,\n"
                  "        28., 29.])"));
  int64_t s[] = {3, 4};
  double d[] = {1, -2.5, 3, 1000, 5, 6, 7, 8, 9, 10, 11, 0.125};
  lc_tensor *a = from_f64(2, s, d, LC_FLOAT32); /* 72 columns: one line */
  CHECK(prints_as(a, "tensor([[1., -2.5, 3., 1000.], [5., 6., 7., 8.], [9., 10., 11., 0.125]])"));
  a = from_f64(2, s, d, LC_FLOAT64); /* the dtype suffix pushes it past 80 */
  CHECK(prints_as(a, "tensor([[   1.,  -2.5,    3., 1000.],\n"
                     "        [   5.,    6.,    7.,    8.],\n"
                     "        [   9.,   10.,   11., 0.125]], dtype=float64)"));
  double w[] = {1, -2.5, 3, 1000, 5, 6, 7, 8, 9, 10, 11, 0.123456};
  a = from_f64(2, s, w, LC_FLOAT64);
  CHECK(prints_as(a, "tensor([[    1.,   -2.5,     3.,  1000.],\n"
                     "        [    5.,     6.,     7.,     8.],\n"
                     "        [    9.,    10.,    11., 0.1235]], dtype=float64)"));
  int64_t s3[] = {2, 2, 2};
  double d3[] = {1, 2, 3, 4, 5, 6, 7, 8};
  lc_tensor *b = from_f64(3, s3, d3, LC_INT64);
  CHECK(prints_as(b, "tensor([[[1, 2], [3, 4]], [[5, 6], [7, 8]]], dtype=int64)"));
  double d4[] = {1, -2.25, 3, 4, 5, 6, 7, 8.123456, -9, 10, 11, 12.5};
  int64_t s223[] = {2, 2, 3};
  b = from_f64(3, s223, d4, LC_FLOAT64);
  CHECK(prints_as(b, "tensor([[[   1., -2.25,    3.],\n"
                     "         [   4.,    5.,    6.]],\n"
                     "\n"
                     "        [[   7., 8.123,   -9.],\n"
                     "         [  10.,   11.,  12.5]]], dtype=float64)"));
}

TEST(format_summarised) {
  lc_tensor *t = NULL, *v = NULL;
  CHECK_OK(lc_arange(0, 2000, 1, LC_FLOAT32, &t));
  if (!t) return;
  char *s = NULL;
  CHECK_OK(lc_to_string(t, &s));
  if (s) CHECK(strcmp(s, "tensor([0., 1., 2., ..., 1997., 1998., 1999.])") == 0);
  lc_free(s);
  int64_t vs[] = {40, 50}, vst[] = {50, 1};
  CHECK_OK(lc_tensor_view_of(t, 2, vs, vst, 0, &v));
  CHECK(prints_as(v, "tensor([[   0.,    1.,    2.,   ...,   47.,   48.,   49.],\n"
                     "        [  50.,   51.,   52.,   ...,   97.,   98.,   99.],\n"
                     "        [ 100.,  101.,  102.,   ...,  147.,  148.,  149.],\n"
                     "        ...,\n"
                     "        [1850., 1851., 1852.,   ..., 1897., 1898., 1899.],\n"
                     "        [1900., 1901., 1902.,   ..., 1947., 1948., 1949.],\n"
                     "        [1950., 1951., 1952.,   ..., 1997., 1998., 1999.]])"));
  /* a summarised tensor still prints on one line when it fits */
  int64_t s1[] = {1, 2000};
  CHECK_OK(lc_zeros(2, s1, LC_INT64, &v));
  CHECK(prints_as(v, "tensor([[0, 0, 0, ..., 0, 0, 0]], dtype=int64)"));
  /* 1000 elements exactly is not summarised */
  int64_t s2[] = {1000};
  CHECK_OK(lc_zeros(1, s2, LC_BOOL, &v));
  s = NULL;
  CHECK_OK(lc_to_string(v, &s));
  if (s) CHECK(strstr(s, "...") == NULL && strlen(s) > 5000);
  lc_free(s);
  lc_release(v);
  lc_release(t);
}

/* Marked positions (LC_POS_D / LC_POS_I): 0-based and unmarked through the C API, rendered in
 * base 1 by lc_render_positions (what the Lua binding shows), negative dims as they are. */
TEST(format_marked_positions) {
  lc_set_error(LC_EINDEX, "dim " LC_POS_D " out of range (expected " LC_POS_D ".." LC_POS_D
                          " or " LC_POS_D ".." LC_POS_D "), index " LC_POS_I,
               3, 0, 2, -3, -1, (long long)41);
  CHECK(strcmp(lc_last_error(), "dim 3 out of range (expected 0..2 or -3..-1), index 41") == 0);
  char buf[128];
  lc_render_positions(lc_last_error_marked(), 1, buf, sizeof buf);
  CHECK(strcmp(buf, "dim 4 out of range (expected 1..3 or -3..-1), index 42") == 0);
  /* in place, with a carry (9 -> 10), a marked non-number copied, a lone mark dropped */
  char s[64];
  snprintf(s, sizeof s, "a " LC_POS_D " b " LC_POS_MARK "x" LC_POS_MARK " c " LC_POS_MARK, 9);
  lc_render_positions(s, 1, s, strlen(s) + 1);
  CHECK(strcmp(s, "a 10 b x c ") == 0);
  /* truncation keeps the buffer terminated */
  lc_render_positions("position " LC_POS_MARK "12345" LC_POS_MARK, 1, buf, 12);
  CHECK(strlen(buf) == 11 && strncmp(buf, "position 12", 11) == 0);
  /* a message re-raised through lc_last_error_marked keeps its marks */
  char inner[256];
  snprintf(inner, sizeof inner, "%s", lc_last_error_marked());
  lc_set_error(LC_EINDEX, "outer: %s", inner);
  lc_render_positions(lc_last_error_marked(), 1, buf, sizeof buf);
  CHECK(strcmp(buf, "outer: dim 4 out of range (expected 1..3 or -3..-1), index 42") == 0);
  CHECK(strcmp(lc_last_error(), "outer: dim 3 out of range (expected 0..2 or -3..-1), index 41") == 0);
}
