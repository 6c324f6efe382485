/* test_core_create.c - creation functions, the random generator, and value conversion. */
#include "../src/core/core.h"
#include "test.h"

#include <pthread.h>
#include <string.h>

#include <stdlib.h>
#include <string.h>

static double at(const lc_tensor *t, int64_t i) {
  return lc_load_f64(lc_data(t), lc_dtype_of(t), i);
}

TEST(create_constants) {
  int64_t s[] = {2, 3};
  lc_tensor *z = NULL, *o = NULL, *f = NULL, *e = NULL;
  CHECK_OK(lc_zeros(2, s, LC_FLOAT64, &z));
  CHECK_OK(lc_ones(2, s, LC_INT32, &o));
  CHECK_OK(lc_full(2, s, -2.5, LC_FLOAT32, &f));
  CHECK_OK(lc_empty(2, s, LC_BOOL, &e));
  if (!z || !o || !f || !e) return;
  int ok = 1;
  for (int i = 0; i < 6; i++)
    ok &= at(z, i) == 0 && at(o, i) == 1 && at(f, i) == -2.5;
  CHECK(ok);
  CHECK(lc_dtype_of(o) == LC_INT32 && lc_dtype_of(e) == LC_BOOL && lc_numel(e) == 6);
  CHECK(lc_ndim(z) == 2 && lc_shape(z)[1] == 3);
  lc_tensor *zl = NULL, *ol = NULL, *fl = NULL, *el = NULL;
  CHECK_OK(lc_zeros_like(o, &zl));
  CHECK_OK(lc_ones_like(z, &ol));
  CHECK_OK(lc_full_like(o, 7.9, &fl)); /* truncates into int32 */
  CHECK_OK(lc_empty_like(f, &el));
  if (zl && ol && fl && el) {
    CHECK(lc_dtype_of(zl) == LC_INT32 && at(zl, 5) == 0);
    CHECK(lc_dtype_of(ol) == LC_FLOAT64 && at(ol, 5) == 1);
    CHECK(at(fl, 0) == 7);
    CHECK(lc_dtype_of(el) == LC_FLOAT32 && lc_numel(el) == 6 && lc_ndim(el) == 2);
  }
  lc_release(zl), lc_release(ol), lc_release(fl), lc_release(el);
  lc_release(z), lc_release(o), lc_release(f), lc_release(e);
}

TEST(create_errors) {
  lc_tensor *t = NULL;
  int64_t neg[] = {2, -3};
  CHECK_STATUS(lc_zeros(2, neg, LC_FLOAT32, &t), LC_EARG);
  CHECK(strstr(lc_last_error(), "zeros") && strstr(lc_last_error(), "-3"));
  CHECK_STATUS(lc_empty(1, neg, (lc_dtype)42, &t), LC_EDTYPE);
  CHECK_STATUS(lc_ones(LC_MAX_DIMS + 1, neg, LC_FLOAT32, &t), LC_ESHAPE);
  CHECK_STATUS(lc_ones(2, NULL, LC_FLOAT32, &t), LC_EARG);
  int64_t s[] = {2};
  CHECK_STATUS(lc_full(1, s, NAN, LC_INT64, &t), LC_EARG);
  CHECK_STATUS(lc_full(1, s, 3e9, LC_INT32, &t), LC_EARG);
  CHECK_STATUS(lc_from_data(1, s, LC_FLOAT32, NULL, &t), LC_EARG);
  CHECK_STATUS(lc_full_like(NULL, 1, &t), LC_EARG);
  CHECK_STATUS(lc_eye(-1, 2, LC_FLOAT32, &t), LC_EARG);
  CHECK_STATUS(lc_scalar(INFINITY, LC_INT32, &t), LC_EARG);
  CHECK(t == NULL);
}

TEST(create_from_data_and_scalar) {
  int64_t s[] = {3};
  int32_t d[] = {4, -5, 6};
  lc_tensor *t = NULL, *b = NULL, *sc = NULL;
  CHECK_OK(lc_from_data(1, s, LC_INT32, d, &t));
  if (t) {
    d[0] = 100; /* copied, not wrapped */
    CHECK(at(t, 0) == 4 && at(t, 1) == -5 && at(t, 2) == 6);
  }
  uint8_t bd[] = {0, 2, 1};
  CHECK_OK(lc_from_data(1, s, LC_BOOL, bd, &b));
  if (b) CHECK(((uint8_t *)lc_data(b))[1] == 1); /* normalised to 0/1 */
  CHECK_OK(lc_scalar(2.5, LC_FLOAT64, &sc));
  if (sc) {
    CHECK(lc_ndim(sc) == 0 && lc_numel(sc) == 1 && at(sc, 0) == 2.5);
  }
  lc_release(t), lc_release(b), lc_release(sc);
}

static int released;
static void on_release(void *ctx, void *data) {
  released++;
  (void)ctx;
  (void)data;
}

TEST(create_from_buffer_wraps_and_releases) {
  float buf[6] = {1, 2, 3, 4, 5, 6};
  int64_t s[] = {2, 3};
  lc_tensor *t = NULL;
  released = 0;
  int64_t before = lc_bytes_in_use();
  CHECK_OK(lc_from_buffer(2, s, LC_FLOAT32, buf, on_release, NULL, &t));
  if (!t) return;
  CHECK(lc_data(t) == (void *)buf);
  CHECK(lc_bytes_in_use() == before); /* the caller's bytes are not lucid's */
  buf[4] = 50;
  CHECK(at(t, 4) == 50);
  lc_release(t);
  CHECK(released == 1);
  CHECK_STATUS(lc_from_buffer(2, s, LC_FLOAT32, (char *)buf + 1, NULL, NULL, &t), LC_EARG);
  CHECK_STATUS(lc_from_buffer(2, s, LC_FLOAT32, NULL, NULL, NULL, &t), LC_EARG);
}

TEST(storage_single_allocation_accounting) {
  int64_t before = lc_bytes_in_use();
  int64_t s[] = {4, 4};
  lc_tensor *t = NULL;
  CHECK_OK(lc_zeros(2, s, LC_FLOAT32, &t));
  CHECK(lc_bytes_in_use() == before + 64);
  if (t) CHECK(((uintptr_t)lc_data(t) % LC_ALIGN) == 0);
  lc_release(t);
  CHECK(lc_bytes_in_use() == before);
  /* zero-byte storages are fine too */
  int64_t e[] = {0};
  CHECK_OK(lc_zeros(1, e, LC_FLOAT32, &t));
  lc_release(t);
  CHECK(lc_bytes_in_use() == before);
}

TEST(create_arange) {
  lc_tensor *t = NULL;
  CHECK_OK(lc_arange(0, 10, 3, LC_INT64, &t));
  if (t) {
    CHECK(lc_numel(t) == 4);
    CHECK(at(t, 0) == 0 && at(t, 3) == 9);
  }
  lc_release(t);
  CHECK_OK(lc_arange(1, 0, -0.25, LC_FLOAT64, &t));
  if (t) {
    CHECK(lc_numel(t) == 4);
    CHECK(at(t, 3) == 0.25);
  }
  lc_release(t);
  CHECK_OK(lc_arange(0, 1, 0.1, LC_FLOAT32, &t));
  if (t) CHECK(lc_numel(t) == 10);
  lc_release(t);
  CHECK_OK(lc_arange(3, 3, 1, LC_FLOAT32, &t));
  if (t) CHECK(lc_numel(t) == 0 && lc_ndim(t) == 1);
  lc_release(t);
  t = NULL;
  CHECK_STATUS(lc_arange(0, 5, 0, LC_FLOAT32, &t), LC_EARG);
  CHECK_STATUS(lc_arange(0, 5, -1, LC_FLOAT32, &t), LC_EARG);
  CHECK_STATUS(lc_arange(0, NAN, 1, LC_FLOAT32, &t), LC_EARG);
  CHECK_STATUS(lc_arange(0, 5, 1, LC_BOOL, &t), LC_EDTYPE);
  CHECK_STATUS(lc_arange(0, 5e9, 1e9, LC_INT32, &t), LC_EARG);
  CHECK(t == NULL);
}

TEST(create_linspace_and_eye) {
  lc_tensor *t = NULL;
  CHECK_OK(lc_linspace(-1, 1, 5, LC_FLOAT32, &t));
  if (t) CHECK(lc_numel(t) == 5 && at(t, 0) == -1 && at(t, 1) == -0.5 && at(t, 4) == 1);
  lc_release(t);
  CHECK_OK(lc_linspace(0, 10, 4, LC_INT64, &t));
  if (t) CHECK(at(t, 1) == 3 && at(t, 2) == 6 && at(t, 3) == 10);
  lc_release(t);
  CHECK_OK(lc_linspace(2, 7, 1, LC_FLOAT64, &t));
  if (t) CHECK(lc_numel(t) == 1 && at(t, 0) == 2);
  lc_release(t);
  CHECK_OK(lc_linspace(2, 7, 0, LC_FLOAT64, &t));
  if (t) CHECK(lc_numel(t) == 0);
  lc_release(t);
  t = NULL;
  CHECK_STATUS(lc_linspace(0, 1, -1, LC_FLOAT32, &t), LC_EARG);
  CHECK_STATUS(lc_linspace(NAN, 1, 3, LC_FLOAT32, &t), LC_EARG);
  CHECK_STATUS(lc_linspace(0, 1, 3, LC_BOOL, &t), LC_EDTYPE);
  CHECK(t == NULL);
  CHECK_OK(lc_eye(2, 3, LC_FLOAT32, &t));
  if (t) {
    double want[] = {1, 0, 0, 0, 1, 0};
    int ok = lc_shape(t)[0] == 2 && lc_shape(t)[1] == 3;
    for (int i = 0; i < 6; i++)
      ok &= at(t, i) == want[i];
    CHECK(ok);
  }
  lc_release(t);
}

static double mean_of(const lc_tensor *t) {
  double s = 0;
  for (int64_t i = 0; i < lc_numel(t); i++)
    s += at(t, i);
  return s / (double)lc_numel(t);
}

TEST(rng_reproducible_and_thread_independent) {
  int prev = lc_get_num_threads();
  int64_t s[] = {100000};
  lc_tensor *a = NULL, *b = NULL, *c = NULL, *n1 = NULL, *n2 = NULL;
  lc_manual_seed(1234);
  CHECK(lc_initial_seed() == 1234);
  CHECK_OK(lc_set_num_threads(1));
  CHECK_OK(lc_rand(1, s, LC_FLOAT32, &a));
  CHECK_OK(lc_randn(1, s, LC_FLOAT64, &n1));
  lc_manual_seed(1234);
  CHECK_OK(lc_set_num_threads(2));
  CHECK_OK(lc_rand(1, s, LC_FLOAT32, &b));
  CHECK_OK(lc_randn(1, s, LC_FLOAT64, &n2));
  CHECK_OK(lc_rand(1, s, LC_FLOAT32, &c)); /* the next call continues the stream */
  if (a && b && c && n1 && n2) {
    CHECK(memcmp(lc_data(a), lc_data(b), sizeof(float) * 100000) == 0);
    CHECK(memcmp(lc_data(n1), lc_data(n2), sizeof(double) * 100000) == 0);
    CHECK(memcmp(lc_data(a), lc_data(c), sizeof(float) * 100000) != 0);
    int in_range = 1;
    for (int64_t i = 0; i < s[0]; i++)
      in_range &= at(a, i) >= 0 && at(a, i) < 1;
    CHECK(in_range);
    CHECK_NEAR(mean_of(a), 0.5, 0.01);
  }
  lc_release(a), lc_release(b), lc_release(c), lc_release(n1), lc_release(n2);
  CHECK_OK(lc_set_num_threads(prev));
}

TEST(rng_randn_moments) {
  int64_t s[] = {200, 500};
  lc_tensor *t = NULL;
  lc_manual_seed(7);
  CHECK_OK(lc_randn(2, s, LC_FLOAT32, &t));
  if (!t) return;
  double m = mean_of(t), v = 0;
  for (int64_t i = 0; i < lc_numel(t); i++)
    v += (at(t, i) - m) * (at(t, i) - m);
  v /= (double)(lc_numel(t) - 1);
  CHECK_NEAR(m, 0.0, 0.01);
  CHECK_NEAR(sqrt(v), 1.0, 0.01);
  lc_release(t);
  /* lc_rng_uniform has 53 bits and is a pure function of (seed, counter) */
  CHECK(lc_rng_uniform(5, 9) == lc_rng_uniform(5, 9));
  CHECK(lc_rng_bits(5, 9) != lc_rng_bits(6, 9) && lc_rng_bits(5, 9) != lc_rng_bits(5, 10));
  uint64_t seed = 0;
  lc_manual_seed(99);
  uint64_t b0 = lc_rng_reserve(10, &seed);
  uint64_t b1 = lc_rng_reserve(5, &seed);
  CHECK(seed == 99 && b1 == b0 + 10);
}

TEST(rng_randint_randperm) {
  int64_t s[] = {5000};
  lc_tensor *t = NULL;
  CHECK_OK(lc_randint(-3, 4, 1, s, LC_INT64, &t));
  if (t) {
    int seen[7] = {0}, ok = 1;
    for (int64_t i = 0; i < s[0]; i++) {
      int64_t v = ((int64_t *)lc_data(t))[i];
      ok &= v >= -3 && v < 4;
      if (v >= -3 && v < 4) seen[v + 3] = 1;
    }
    CHECK(ok);
    for (int k = 0; k < 7; k++)
      CHECK(seen[k]);
  }
  lc_release(t);
  CHECK_OK(lc_randint(0, 2, 1, s, LC_BOOL, &t));
  lc_release(t);
  CHECK_OK(lc_randint(INT64_MIN, INT64_MAX, 1, s, LC_INT64, &t));
  lc_release(t);
  t = NULL;
  CHECK_STATUS(lc_randint(4, 4, 1, s, LC_INT64, &t), LC_EARG);
  CHECK_STATUS(lc_randint(0, INT64_C(1) << 40, 1, s, LC_INT32, &t), LC_EARG);
  CHECK_STATUS(lc_randint(0, 5, 1, s, LC_BOOL, &t), LC_EARG);
  CHECK_STATUS(lc_randperm(-1, &t), LC_EARG);
  CHECK(t == NULL);
  CHECK_OK(lc_randperm(1000, &t));
  if (t) {
    CHECK(lc_dtype_of(t) == LC_INT64 && lc_numel(t) == 1000);
    char *seen = calloc(1000, 1);
    int ok = seen != NULL, moved = 0;
    for (int64_t i = 0; ok && i < 1000; i++) {
      int64_t v = ((int64_t *)lc_data(t))[i];
      ok &= v >= 0 && v < 1000 && !seen[v];
      if (v >= 0 && v < 1000) seen[v] = 1;
      moved += v != i;
    }
    CHECK(ok && moved > 900);
    free(seen);
  }
  lc_release(t);
  CHECK_OK(lc_randperm(0, &t));
  if (t) CHECK(lc_numel(t) == 0);
  lc_release(t);
}

TEST(rng_uniform_normal_inplace) {
  int64_t s[] = {4, 6};
  lc_tensor *t = NULL, *v = NULL, *i = NULL;
  CHECK_OK(lc_zeros(2, s, LC_FLOAT64, &t));
  if (!t) return;
  uint64_t ver = lc_version(t);
  CHECK_OK(lc_uniform_(t, -2, -1));
  CHECK(lc_version(t) > ver);
  int ok = 1;
  for (int k = 0; k < 24; k++)
    ok &= at(t, k) >= -2 && at(t, k) < -1;
  CHECK(ok);
  /* strided: only the viewed elements change */
  int64_t vs[] = {4, 3}, vst[] = {6, 2};
  CHECK_OK(lc_tensor_view_of(t, 2, vs, vst, 0, &v));
  if (v) {
    CHECK_OK(lc_k_fill(t, 0));
    CHECK_OK(lc_normal_(v, 10, 0.5));
    ok = 1;
    for (int k = 0; k < 24; k++)
      ok &= (k % 2 == 0) ? at(t, k) > 5 : at(t, k) == 0;
    CHECK(ok);
  }
  CHECK_STATUS(lc_uniform_(t, 1, 0), LC_EARG);
  CHECK_STATUS(lc_uniform_(t, NAN, 0), LC_EARG);
  CHECK_STATUS(lc_normal_(t, 0, -1), LC_EARG);
  CHECK_STATUS(lc_normal_(t, INFINITY, 1), LC_EARG);
  CHECK_OK(lc_zeros(2, s, LC_INT64, &i));
  CHECK_STATUS(lc_uniform_(i, 0, 1), LC_EDTYPE);
  CHECK_STATUS(lc_normal_(i, 0, 1), LC_EDTYPE);
  lc_tensor *r = NULL;
  CHECK_STATUS(lc_rand(2, s, LC_INT32, &r), LC_EDTYPE);
  CHECK_STATUS(lc_randn(2, s, LC_BOOL, &r), LC_EDTYPE);
  CHECK(r == NULL);
  lc_release(v), lc_release(t), lc_release(i);
}

TEST(convert_item_get_buffer) {
  lc_tensor *t = NULL, *s = NULL;
  double d = 0;
  int64_t n = 0;
  CHECK_OK(lc_scalar(-3.75, LC_FLOAT32, &s));
  if (s) {
    CHECK_OK(lc_item(s, &d));
    CHECK(d == -3.75);
    CHECK_OK(lc_item_int64(s, &n));
    CHECK(n == -3);
  }
  lc_release(s);
  CHECK_OK(lc_scalar(NAN, LC_FLOAT64, &s));
  if (s) CHECK_STATUS(lc_item_int64(s, &n), LC_EARG);
  lc_release(s);
  CHECK_OK(lc_arange(0, 6, 1, LC_INT64, &t));
  if (!t) return;
  CHECK_STATUS(lc_item(t, &d), LC_ESHAPE);
  CHECK(strcmp(lc_last_error(), "item: expected a tensor with one element, got 6 elements") == 0);
  int64_t s23[] = {2, 3}, sT[] = {3, 2}, stT[] = {1, 3};
  lc_tensor *v = NULL, *vt = NULL;
  CHECK_OK(lc_tensor_view_of(t, 2, s23, (int64_t[]){3, 1}, 0, &v));
  CHECK_OK(lc_tensor_view_of(t, 2, sT, stT, 0, &vt));
  if (v && vt) {
    CHECK_OK(lc_get(v, (int64_t[]){1, 2}, &d));
    CHECK(d == 5);
    CHECK_OK(lc_get(vt, (int64_t[]){2, 1}, &d));
    CHECK(d == 5);
    CHECK_STATUS(lc_get(v, (int64_t[]){2, 0}, &d), LC_EINDEX);
    CHECK(strstr(lc_last_error(), "dim 0") != NULL);
    CHECK_STATUS(lc_get(v, (int64_t[]){0, -1}, &d), LC_EINDEX);
    float buf[6];
    CHECK_OK(lc_copy_to_buffer(vt, LC_FLOAT32, buf)); /* transposed: C order of the view */
    float want[] = {0, 3, 1, 4, 2, 5};
    CHECK(memcmp(buf, want, sizeof buf) == 0);
    CHECK_STATUS(lc_copy_to_buffer(vt, (lc_dtype)9, buf), LC_EDTYPE);
    CHECK_STATUS(lc_copy_to_buffer(vt, LC_FLOAT32, NULL), LC_EARG);
  }
  lc_release(v), lc_release(vt), lc_release(t);
}

TEST(convert_equal_allclose) {
  lc_tensor *a = NULL, *b = NULL, *c = NULL, *row = NULL;
  CHECK_OK(lc_arange(0, 6, 1, LC_INT64, &a));
  CHECK_OK(lc_arange(0, 6, 1, LC_FLOAT32, &b));
  int64_t s23[] = {2, 3};
  CHECK_OK(lc_zeros(2, s23, LC_FLOAT64, &c));
  if (!a || !b || !c) return;
  bool r = false;
  CHECK_OK(lc_equal(a, b, &r)); /* different dtypes compare by value */
  CHECK(r);
  CHECK_OK(lc_equal(a, c, &r)); /* different shapes */
  CHECK(!r);
  ((float *)lc_data(b))[5] = 5.0001f;
  CHECK_OK(lc_equal(a, b, &r));
  CHECK(!r);
  CHECK_OK(lc_allclose(b, a, 1e-3, 0, &r));
  CHECK(r);
  CHECK_OK(lc_allclose(b, a, 0, 1e-6, &r));
  CHECK(!r);
  ((float *)lc_data(b))[5] = NAN;
  CHECK_OK(lc_allclose(b, b, 1, 1, &r));
  CHECK(!r);
  CHECK_OK(lc_equal(b, b, &r));
  CHECK(!r);
  /* allclose broadcasts: a {3} row against {2, 3} */
  double rv[] = {0, 0, 1e-9};
  int64_t s3[] = {3};
  CHECK_OK(lc_from_data(1, s3, LC_FLOAT64, rv, &row));
  if (row) {
    CHECK_OK(lc_allclose(row, c, 0, 1e-8, &r));
    CHECK(r);
    CHECK_OK(lc_allclose(row, c, 0, 1e-10, &r));
    CHECK(!r);
    CHECK_STATUS(lc_allclose(row, a, 0, 0, &r), LC_ESHAPE);
    CHECK_STATUS(lc_allclose(row, c, -1, 0, &r), LC_EARG);
  }
  lc_release(a), lc_release(b), lc_release(c), lc_release(row);
}

TEST(rng_randn_pairs_thread_independent_odd_split) {
  int prev = lc_get_num_threads();
  int64_t s[] = {100001}; /* odd: a thread chunk starts in the middle of a Box-Muller pair */
  lc_tensor *a = NULL, *b = NULL, *base = NULL, *v = NULL;
  lc_manual_seed(2024);
  CHECK_OK(lc_set_num_threads(1));
  CHECK_OK(lc_randn(1, s, LC_FLOAT64, &a));
  lc_manual_seed(2024);
  CHECK_OK(lc_set_num_threads(2));
  CHECK_OK(lc_randn(1, s, LC_FLOAT64, &b));
  if (a && b) {
    CHECK(memcmp(lc_data(a), lc_data(b), sizeof(double) * 100001) == 0);
    /* element 2k is the cosine half of counter k's pair, i.e. lc_rng_normal */
    CHECK(at(a, 0) == lc_rng_normal(2024, 0) && at(a, 4) == lc_rng_normal(2024, 2));
    CHECK(at(a, 1) != at(a, 0));
  }
  /* a strided normal_ gives the same values as a contiguous one */
  int64_t big[] = {3, 70001}, vs[] = {3, 70001}, vst[] = {1, 3};
  CHECK_OK(lc_empty(2, big, LC_FLOAT32, &base));
  if (base) CHECK_OK(lc_tensor_view_of(base, 2, vs, vst, 0, &v)); /* a transpose-like layout */
  lc_release(a), lc_release(b);
  a = b = NULL;
  CHECK_OK(lc_empty(2, vs, LC_FLOAT32, &a));
  if (a && v) {
    lc_manual_seed(5);
    CHECK_OK(lc_normal_(a, 1, 2));
    lc_manual_seed(5);
    CHECK_OK(lc_normal_(v, 1, 2));
    lc_tensor *c = NULL;
    CHECK_OK(lc_empty(2, vs, LC_FLOAT32, &c));
    if (c) {
      CHECK_OK(lc_k_copy(c, v));
      CHECK(memcmp(lc_data(a), lc_data(c), sizeof(float) * 3 * 70001) == 0);
    }
    lc_release(c);
  }
  lc_release(a), lc_release(v), lc_release(base);
  CHECK_OK(lc_set_num_threads(prev));
}

/* The generator is per thread: another thread's seeding and draws leave ours alone, and the
 * same seed gives the same stream on any thread. */
static void *draw_seeded(void *arg) {
  double *out = arg;
  lc_manual_seed(42);
  int64_t n = 8;
  lc_tensor *t = NULL;
  if (lc_rand(1, &n, LC_FLOAT64, &t) == LC_OK) lc_copy_to_buffer(t, LC_FLOAT64, out);
  lc_release(t);
  return NULL;
}

TEST(create_rng_per_thread) {
  int64_t n = 8;
  double mine[8], theirs[8], again[8];
  lc_manual_seed(42);
  lc_tensor *a = NULL, *b = NULL;
  CHECK_OK(lc_rand(1, &n, LC_FLOAT64, &a));
  lc_manual_seed(42);
  CHECK_OK(lc_rand(1, &n, LC_FLOAT64, &b)); /* b: 8 draws, then a thread reseeds its own */
  pthread_t th;
  CHECK(pthread_create(&th, NULL, draw_seeded, theirs) == 0);
  pthread_join(th, NULL);
  CHECK(lc_initial_seed() == 42);
  lc_tensor *c = NULL;
  CHECK_OK(lc_rand(1, &n, LC_FLOAT64, &c)); /* continues our stream, not restarted */
  CHECK_OK(lc_copy_to_buffer(a, LC_FLOAT64, mine));
  CHECK_OK(lc_copy_to_buffer(c, LC_FLOAT64, again));
  CHECK(memcmp(mine, theirs, sizeof mine) == 0);
  CHECK(memcmp(mine, again, sizeof mine) != 0);
  lc_release(a);
  lc_release(b);
  lc_release(c);
}
