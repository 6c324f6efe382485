/* test_core_iter.c - lc_iter coalescing and row offsets, lc_k_copy / lc_k_fill, threads. */
#include "../src/core/core.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

/* A contiguous float64 tensor holding 0, 1, 2, ... */
static lc_tensor *iota_f64(int ndim, const int64_t *shape) {
  lc_tensor *t = NULL;
  if (lc_tensor_new(ndim, shape, LC_FLOAT64, &t)) return NULL;
  double *d = lc_data(t);
  for (int64_t i = 0; i < lc_numel(t); i++)
    d[i] = (double)i;
  return t;
}

/* Visits every element through the iterator and returns the operand-0 offsets in order. */
static int64_t *iter_offsets(const lc_iter *it) {
  int64_t n = it->outer * it->inner, k = 0;
  int64_t *o = malloc(sizeof *o * (size_t)(n ? n : 1));
  for (int64_t r = 0; r < it->outer; r++) {
    int64_t offs[LC_ITER_MAX_OPS];
    lc_iter_row(it, r, offs);
    for (int64_t j = 0; j < it->inner; j++)
      o[k++] = offs[0] + j * it->inner_stride[0];
  }
  return o;
}

/* The offset of C-order element i of (ndim, shape, strides), computed the slow way. */
static int64_t ref_offset(int ndim, const int64_t *shape, const int64_t *strides, int64_t i) {
  int64_t off = 0;
  for (int d = ndim - 1; d >= 0; d--) {
    off += (i % shape[d]) * strides[d];
    i /= shape[d];
  }
  return off;
}

static int check_iter_matches(int ndim, const int64_t *shape, const int64_t *strides) {
  lc_iter it;
  int64_t st[1][LC_MAX_DIMS];
  memcpy(st[0], strides, sizeof(int64_t) * (size_t)ndim);
  lc_iter_init(&it, 1, ndim, shape, (const int64_t(*)[LC_MAX_DIMS])st);
  int64_t n = lc_shape_numel(ndim, shape);
  if (it.outer * it.inner != n) return 0;
  int64_t *o = iter_offsets(&it);
  int ok = 1;
  for (int64_t i = 0; i < n; i++)
    ok &= o[i] == ref_offset(ndim, shape, strides, i);
  free(o);
  return ok;
}

TEST(iter_contiguous_coalesces_to_one_dim) {
  int64_t shape[] = {2, 3, 4}, str[1][LC_MAX_DIMS] = {{12, 4, 1}};
  lc_iter it;
  lc_iter_init(&it, 1, 3, shape, (const int64_t(*)[LC_MAX_DIMS])str);
  CHECK(it.ndim == 1);
  CHECK(it.inner == 24 && it.outer == 1 && it.inner_stride[0] == 1);
}

TEST(iter_drops_size1_and_keeps_uncoalescable) {
  /* a {3, 1, 4} slice of a {3, 8} tensor: rows of 4 with a row stride of 8 */
  int64_t shape[] = {3, 1, 4}, str[1][LC_MAX_DIMS] = {{8, 99, 1}};
  lc_iter it;
  lc_iter_init(&it, 1, 3, shape, (const int64_t(*)[LC_MAX_DIMS])str);
  CHECK(it.ndim == 2);
  CHECK(it.inner == 4 && it.outer == 3);
  int64_t offs[1];
  lc_iter_row(&it, 2, offs);
  CHECK(offs[0] == 16);
  CHECK(check_iter_matches(3, shape, str[0]));
}

TEST(iter_two_operands_coalesce_only_when_both_allow) {
  int64_t shape[] = {4, 5};
  int64_t str[2][LC_MAX_DIMS] = {{5, 1}, {1, 4}}; /* op 1 is a transpose */
  lc_iter it;
  lc_iter_init(&it, 2, 2, shape, (const int64_t(*)[LC_MAX_DIMS])str);
  CHECK(it.ndim == 2 && it.inner == 5 && it.outer == 4);
  CHECK(it.inner_stride[0] == 1 && it.inner_stride[1] == 4);
  int64_t offs[2];
  lc_iter_row(&it, 3, offs);
  CHECK(offs[0] == 15 && offs[1] == 3);
  int64_t str2[2][LC_MAX_DIMS] = {{5, 1}, {0, 1}}; /* op 1 broadcasts over dim 0 */
  lc_iter_init(&it, 2, 2, shape, (const int64_t(*)[LC_MAX_DIMS])str2);
  CHECK(it.ndim == 2 && it.inner == 5);
}

TEST(iter_zero_dim_and_empty) {
  lc_iter it;
  int64_t str[1][LC_MAX_DIMS] = {{0}};
  lc_iter_init(&it, 1, 0, NULL, (const int64_t(*)[LC_MAX_DIMS])str);
  CHECK(it.inner == 1 && it.outer == 1);
  int64_t offs[1] = {42};
  lc_iter_row(&it, 0, offs);
  CHECK(offs[0] == 0);
  int64_t shape[] = {3, 0, 2}, str3[1][LC_MAX_DIMS] = {{0, 2, 1}};
  lc_iter_init(&it, 1, 3, shape, (const int64_t(*)[LC_MAX_DIMS])str3);
  CHECK(it.outer == 0);
  int64_t ones[] = {1, 1}, str1[1][LC_MAX_DIMS] = {{7, 3}};
  lc_iter_init(&it, 1, 2, ones, (const int64_t(*)[LC_MAX_DIMS])str1);
  CHECK(it.inner == 1 && it.outer == 1);
}

TEST(iter_permuted_expanded_sliced_views) {
  int64_t base_shape[] = {2, 3, 4};
  lc_tensor *t = iota_f64(3, base_shape);
  if (!t) return;
  /* permuted {4, 2, 3} */
  int64_t ps[] = {4, 2, 3}, pst[] = {1, 12, 4};
  CHECK(check_iter_matches(3, ps, pst));
  lc_tensor *v = NULL;
  CHECK_OK(lc_tensor_view_of(t, 3, ps, pst, 0, &v));
  /* copy the permuted view into a contiguous tensor and compare with the slow offsets */
  lc_tensor *c = NULL;
  CHECK_OK(lc_tensor_new(3, ps, LC_FLOAT64, &c));
  if (v && c) {
    CHECK_OK(lc_k_copy(c, v));
    const double *cd = lc_data(c);
    int ok = 1;
    for (int64_t i = 0; i < 24; i++)
      ok &= cd[i] == (double)ref_offset(3, ps, pst, i);
    CHECK(ok);
  }
  lc_release(v);
  lc_release(c);
  /* expanded {3, 2, 4} with a 0 stride */
  int64_t es[] = {3, 2, 4}, est[] = {0, 12, 1};
  CHECK(check_iter_matches(3, es, est));
  /* sliced every other element along the last dim, with an offset */
  int64_t ss[] = {2, 2, 2}, sst[] = {12, 4, 2};
  CHECK(check_iter_matches(3, ss, sst));
  CHECK_OK(lc_tensor_view_of(t, 3, ss, sst, 1, &v));
  CHECK_OK(lc_tensor_new(3, ss, LC_FLOAT64, &c));
  if (v && c) {
    CHECK_OK(lc_k_copy(c, v));
    const double *cd = lc_data(c);
    int ok = 1;
    for (int64_t i = 0; i < 8; i++)
      ok &= cd[i] == (double)(1 + ref_offset(3, ss, sst, i));
    CHECK(ok);
  }
  lc_release(v);
  lc_release(c);
  /* negative strides (a flip) */
  int64_t fs[] = {3, 4}, fst[] = {4, -1};
  CHECK(check_iter_matches(2, fs, fst));
  lc_release(t);
}

TEST(copy_broadcasts_and_casts) {
  int64_t rs[] = {3};
  lc_tensor *row = iota_f64(1, rs); /* {0, 1, 2} */
  lc_tensor *dst = NULL;
  int64_t ds[] = {2, 3};
  CHECK_OK(lc_tensor_new(2, ds, LC_INT32, &dst));
  if (!row || !dst) return;
  ((double *)lc_data(row))[1] = -1.75; /* truncates toward zero */
  ((double *)lc_data(row))[2] = 2.9;
  CHECK_OK(lc_k_copy(dst, row));
  const int32_t *d = lc_data(dst);
  CHECK(d[0] == 0 && d[1] == -1 && d[2] == 2 && d[3] == 0 && d[4] == -1 && d[5] == 2);
  /* anything -> bool is != 0 */
  lc_tensor *b = NULL;
  CHECK_OK(lc_tensor_new(2, ds, LC_BOOL, &b));
  if (b) {
    ((double *)lc_data(row))[0] = 0.0;
    CHECK_OK(lc_k_copy(b, row));
    const uint8_t *bd = lc_data(b);
    CHECK(bd[0] == 0 && bd[1] == 1 && bd[2] == 1 && bd[3] == 0);
    /* bool -> float64 */
    lc_tensor *f = NULL;
    CHECK_OK(lc_tensor_new(2, ds, LC_FLOAT64, &f));
    if (f) {
      CHECK_OK(lc_k_copy(f, b));
      CHECK(((double *)lc_data(f))[4] == 1.0 && ((double *)lc_data(f))[3] == 0.0);
    }
    lc_release(f);
  }
  lc_release(b);
  /* column {2, 1} broadcast to {2, 3} */
  int64_t cs[] = {2, 1};
  lc_tensor *col = iota_f64(2, cs);
  if (col) {
    CHECK_OK(lc_k_copy(dst, col));
    CHECK(d[0] == 0 && d[2] == 0 && d[3] == 1 && d[5] == 1);
  }
  /* shape errors */
  int64_t bad[] = {4};
  lc_tensor *wrong = iota_f64(1, bad);
  CHECK_STATUS(lc_k_copy(dst, wrong), LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "{4}") != NULL);
  /* dst cannot be broadcast itself: {2,3} into {3} */
  lc_tensor *small = NULL;
  CHECK_OK(lc_tensor_new(1, rs, LC_FLOAT64, &small));
  CHECK_STATUS(lc_k_copy(small, dst), LC_ESHAPE);
  lc_release(small);
  lc_release(wrong);
  lc_release(col);
  lc_release(row);
  lc_release(dst);
}

TEST(copy_same_dtype_contiguous_and_overlap) {
  int64_t s[] = {10};
  lc_tensor *a = iota_f64(1, s), *b = NULL;
  CHECK_OK(lc_tensor_new(1, s, LC_FLOAT64, &b));
  if (!a || !b) return;
  CHECK_OK(lc_k_copy(b, a));
  CHECK(memcmp(lc_data(a), lc_data(b), 80) == 0);
  /* overlapping views of one storage: dst = a[1:10], src = a[0:9] (a shift right) */
  int64_t vs[] = {9}, vst[] = {1};
  lc_tensor *d = NULL, *src = NULL;
  CHECK_OK(lc_tensor_view_of(a, 1, vs, vst, 1, &d));
  CHECK_OK(lc_tensor_view_of(a, 1, vs, vst, 0, &src));
  if (d && src) {
    CHECK_OK(lc_k_copy(d, src));
    const double *ad = lc_data(a);
    int ok = ad[0] == 0;
    for (int i = 1; i < 10; i++)
      ok &= ad[i] == (double)(i - 1);
    CHECK(ok);
  }
  lc_release(d);
  lc_release(src);
  lc_release(a);
  lc_release(b);
}

TEST(copy_large_strided_parallel) {
  int64_t s[] = {600, 500};
  lc_tensor *a = iota_f64(2, s), *out = NULL, *v = NULL;
  int64_t ts[] = {500, 600}, tst[] = {1, 500};
  CHECK_OK(lc_tensor_new(2, ts, LC_FLOAT32, &out));
  if (!a || !out) return;
  CHECK_OK(lc_tensor_view_of(a, 2, ts, tst, 0, &v));
  CHECK_OK(lc_set_num_threads(2));
  CHECK_OK(lc_k_copy(out, v));
  const float *o = lc_data(out);
  int ok = 1;
  for (int64_t i = 0; i < 500; i++)
    for (int64_t j = 0; j < 600; j++)
      ok &= o[i * 600 + j] == (float)(j * 500 + i);
  CHECK(ok);
  lc_release(v);
  lc_release(a);
  lc_release(out);
}

TEST(fill_contiguous_strided_and_errors) {
  int64_t s[] = {4, 6};
  lc_tensor *t = NULL, *v = NULL;
  CHECK_OK(lc_tensor_new(2, s, LC_INT64, &t));
  if (!t) return;
  CHECK_OK(lc_k_fill(t, 7));
  const int64_t *d = lc_data(t);
  CHECK(d[0] == 7 && d[23] == 7);
  int64_t vs[] = {4, 3}, vst[] = {6, 2}; /* every other column */
  CHECK_OK(lc_tensor_view_of(t, 2, vs, vst, 1, &v));
  if (v) CHECK_OK(lc_k_fill(v, -2.9));
  CHECK(d[0] == 7 && d[1] == -2 && d[2] == 7 && d[3] == -2 && d[23] == -2 && d[22] == 7);
  CHECK_STATUS(lc_k_fill(t, NAN), LC_EARG);
  CHECK_STATUS(lc_k_fill(t, 1e300), LC_EARG);
  lc_release(v);
  lc_release(t);
  lc_tensor *b = NULL;
  CHECK_OK(lc_tensor_new(1, s, LC_BOOL, &b));
  if (b) {
    CHECK_OK(lc_k_fill(b, 0.5));
    CHECK(((uint8_t *)lc_data(b))[3] == 1);
  }
  lc_release(b);
  lc_tensor *big = NULL;
  int64_t bs[] = {200001};
  CHECK_OK(lc_tensor_new(1, bs, LC_FLOAT32, &big));
  if (big) {
    CHECK_OK(lc_k_fill(big, 1.5));
    const float *f = lc_data(big);
    int ok = 1;
    for (int64_t i = 0; i < bs[0]; i++)
      ok &= f[i] == 1.5f;
    CHECK(ok);
  }
  lc_release(big);
}

static void mark_range(void *ctx, int64_t b, int64_t e) {
  int *hits = ctx;
  for (int64_t i = b; i < e; i++)
    hits[i]++;
}

TEST(parallel_for_covers_range_once) {
  CHECK_STATUS(lc_set_num_threads(0), LC_EARG);
  int prev = lc_get_num_threads();
  CHECK(prev >= 1);
  CHECK_OK(lc_set_num_threads(3));
  CHECK(lc_get_num_threads() == 3);
  int n = 100000;
  int *hits = calloc((size_t)n, sizeof *hits);
  if (!hits) return;
  lc_parallel_for(n, 10, mark_range, hits); /* parallel */
  lc_parallel_for(n, 0, mark_range, hits);  /* cost < 1 counts as 1 */
  lc_parallel_for(7, 1, mark_range, hits);  /* serial */
  lc_parallel_for(0, 1, mark_range, hits);  /* nothing */
  int ok = 1;
  for (int i = 0; i < n; i++)
    ok &= hits[i] == (i < 7 ? 3 : 2);
  CHECK(ok);
  free(hits);
  CHECK_OK(lc_set_num_threads(prev));
}

/* lc_iter_row_at + lc_iter_next_row step through the rows exactly as lc_iter_row computes each:
 * permuted, sliced and two-operand iterators, from every starting row. */
TEST(iter_next_row_matches_row_offsets) {
  static const int64_t shape[4] = {3, 4, 5, 6};
  int64_t s_perm[LC_MAX_DIMS] = {1, 18, 90, 3}; /* a permuted layout: nothing coalesces */
  int64_t s_cont[LC_MAX_DIMS] = {120, 30, 6, 1};
  int64_t strides[2][LC_MAX_DIMS];
  memcpy(strides[0], s_cont, sizeof strides[0]);
  memcpy(strides[1], s_perm, sizeof strides[1]);
  lc_iter it;
  lc_iter_init(&it, 2, 4, shape, (const int64_t(*)[LC_MAX_DIMS])strides);
  CHECK(it.ndim >= 3);
  for (int64_t start = 0; start < it.outer; start++) {
    int64_t idx[LC_MAX_DIMS], offs[LC_ITER_MAX_OPS], want[LC_ITER_MAX_OPS];
    lc_iter_row_at(&it, start, idx, offs);
    for (int64_t r = start; r < it.outer; r++) {
      lc_iter_row(&it, r, want);
      CHECK(offs[0] == want[0] && offs[1] == want[1]);
      if (offs[0] != want[0] || offs[1] != want[1]) return;
      if (r + 1 < it.outer) lc_iter_next_row(&it, idx, offs);
    }
  }
}
