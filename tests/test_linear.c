/* test_linear.c - the fused linear op (lc_linear) and the thread pool behind lc_parallel_for. */
#include "../src/core/core.h"
#include "test.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static lc_tensor *randn2(int64_t r, int64_t c, lc_dtype dt, bool grad) {
  int64_t shape[2] = {r, c};
  lc_tensor *t = NULL;
  if (lc_randn(2, shape, dt, &t)) return NULL;
  if (grad) lc_set_requires_grad(t, true);
  return t;
}

/* lc_linear against matmul + add, values and gradients, float32 and float64. */
TEST(linear_matches_matmul) {
  lc_dtype dts[2] = {LC_FLOAT32, LC_FLOAT64};
  for (int d = 0; d < 2; d++) {
    lc_dtype dt = dts[d];
    double tol = dt == LC_FLOAT32 ? 1e-4 : 1e-10;
    lc_tensor *x = randn2(5, 7, dt, true), *w = randn2(3, 7, dt, true);
    int64_t three = 3;
    lc_tensor *b = NULL;
    CHECK_OK(lc_randn(1, &three, dt, &b));
    CHECK_OK(lc_set_requires_grad(b, true));
    lc_tensor *y = NULL, *s = NULL;
    CHECK_OK(lc_linear(x, w, b, &y));
    CHECK_OK(lc_reduce(LC_SUM, y, NULL, &s));
    CHECK_OK(lc_backward(s, NULL, false));
    lc_tensor *gx = lc_retain(lc_grad(x)), *gw = lc_retain(lc_grad(w)), *gb = lc_retain(lc_grad(b));
    CHECK_OK(lc_set_grad(x, NULL));
    CHECK_OK(lc_set_grad(w, NULL));
    CHECK_OK(lc_set_grad(b, NULL));
    lc_tensor *wt = NULL, *m = NULL, *y2 = NULL, *s2 = NULL;
    CHECK_OK(lc_t(w, &wt));
    CHECK_OK(lc_matmul(x, wt, &m));
    CHECK_OK(lc_binary(LC_ADD, m, b, &y2));
    CHECK_OK(lc_reduce(LC_SUM, y2, NULL, &s2));
    CHECK_OK(lc_backward(s2, NULL, false));
    bool ok = false;
    CHECK_OK(lc_allclose(y, y2, tol, tol, &ok));
    CHECK(ok);
    CHECK_OK(lc_allclose(gx, lc_grad(x), tol, tol, &ok));
    CHECK(ok);
    CHECK_OK(lc_allclose(gw, lc_grad(w), tol, tol, &ok));
    CHECK(ok);
    CHECK_OK(lc_allclose(gb, lc_grad(b), tol, tol, &ok));
    CHECK(ok);
    CHECK(lc_is_contiguous(lc_grad(w)));
    const char *name = lc_grad_fn_name(y);
    CHECK(name && !strcmp(name, "LinearBackward"));
    lc_tensor *ts[] = {x, w, b, y, s, gx, gw, gb, wt, m, y2, s2};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) lc_release(ts[i]);
  }
}

TEST(linear_batched_no_bias_and_errors) {
  int64_t xs[3] = {2, 3, 4};
  lc_tensor *x = NULL, *w = randn2(5, 4, LC_FLOAT32, false), *y = NULL;
  CHECK_OK(lc_randn(3, xs, LC_FLOAT32, &x));
  CHECK_OK(lc_linear(x, w, NULL, &y));
  CHECK(y && lc_ndim(y) == 3 && lc_shape(y)[2] == 5 && lc_shape(y)[0] == 2);
  /* element (1, 2, 3) = x[1,2,:] . w[3,:] */
  double want = 0, got = 0, a = 0, c = 0;
  for (int64_t k = 0; k < 4; k++) {
    int64_t ix[3] = {1, 2, k}, iw[2] = {3, k};
    lc_get(x, ix, &a);
    lc_get(w, iw, &c);
    want += a * c;
  }
  int64_t iy[3] = {1, 2, 3};
  CHECK_OK(lc_get(y, iy, &got));
  CHECK_NEAR(got, want, 1e-5);
  lc_tensor *bad = randn2(5, 3, LC_FLOAT32, false), *w64 = randn2(5, 4, LC_FLOAT64, false);
  lc_tensor *r = NULL;
  CHECK_STATUS(lc_linear(x, bad, NULL, &r), LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "expected the input's last dimension to be 3") != NULL);
  CHECK_STATUS(lc_linear(x, w64, NULL, &r), LC_EDTYPE);
  CHECK_STATUS(lc_linear(x, w, w, &r), LC_ESHAPE);
  CHECK_STATUS(lc_linear(NULL, w, NULL, &r), LC_EARG);
  CHECK(r == NULL);
  lc_release(x);
  lc_release(w);
  lc_release(y);
  lc_release(bad);
  lc_release(w64);
}

/* ---- the pool: concurrent host threads and nested calls get every element exactly once */

typedef struct count_job {
  int *hits;
  bool nested;
} count_job;

static void count_range(void *ctx, int64_t b, int64_t e);

static void nested_range(void *ctx, int64_t b, int64_t e) {
  count_job *j = ctx;
  for (int64_t i = b; i < e; i++) j->hits[i]++;
}

static void count_range(void *ctx, int64_t b, int64_t e) {
  count_job *j = ctx;
  if (j->nested) {
    count_job inner = {j->hits + b, false};
    lc_parallel_for(e - b, LC_PARALLEL_GRAIN, nested_range, &inner);
    return;
  }
  for (int64_t i = b; i < e; i++) j->hits[i]++;
}

static void *hammer(void *arg) {
  int *bad = arg;
  enum { N = 100000 };
  int *hits = calloc(N, sizeof *hits);
  if (!hits) return NULL;
  for (int round = 0; round < 200; round++) {
    count_job j = {hits, round % 3 == 0};
    lc_parallel_for(N, 64, count_range, &j);
  }
  for (int i = 0; i < N; i++)
    if (hits[i] != 200) (*bad)++;
  free(hits);
  return NULL;
}

TEST(parallel_pool_concurrent_and_nested) {
  int threads = lc_get_num_threads();
  CHECK_OK(lc_set_num_threads(3));
  int bad[2] = {0, 0};
  pthread_t th[2];
  for (int i = 0; i < 2; i++) CHECK(pthread_create(&th[i], NULL, hammer, &bad[i]) == 0);
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  CHECK(bad[0] == 0 && bad[1] == 0);
  CHECK_OK(lc_set_num_threads(1)); /* fewer threads than workers: the idle ones acknowledge */
  hammer(&bad[0]);
  CHECK(bad[0] == 0);
  CHECK_OK(lc_set_num_threads(threads));
}

/* lc_parallel_for_blas: OpenBLAS single-threaded while the loop runs in parallel, even when
 * lc_set_num_threads is called meanwhile; the runtime's count applies once it ends. */
int openblas_get_num_threads(void); /* from libopenblas */

typedef struct blas_probe {
  atomic_int during; /* OpenBLAS's count seen inside the loop after set_num_threads */
} blas_probe;

static void probe_range(void *ctx, int64_t b, int64_t e) {
  blas_probe *p = ctx;
  (void)e;
  if (b == 0) { /* chunk 0 runs on the calling thread */
    lc_set_num_threads(2);
    atomic_store(&p->during, openblas_get_num_threads());
  }
}

TEST(parallel_for_blas_holds_blas_single_threaded) {
  int threads = lc_get_num_threads();
  CHECK_OK(lc_set_num_threads(3));
  blas_probe p = {0};
  lc_parallel_for_blas(4, LC_PARALLEL_GRAIN, probe_range, &p);
  CHECK(atomic_load(&p.during) == 1);
  CHECK(openblas_get_num_threads() == 2);
  /* a loop too small to split runs serially and leaves BLAS its threads */
  atomic_store(&p.during, 0);
  lc_parallel_for_blas(1, 1, probe_range, &p);
  CHECK(atomic_load(&p.during) == 2);
  CHECK_OK(lc_set_num_threads(threads));
  CHECK(openblas_get_num_threads() == threads);
}
