/* test_linear.c - the linear family: the fused linear op (lc_linear) and bilinear
 * (lc_bilinear: values against loops, gradients against central differences, errors), and the
 * thread pool behind lc_parallel_for.
 * Run alone with: make ctest-one T="tests/test_linear.c tests/gradcheck.c" */
#include "../src/core/core.h"
#include "family_test.h"
#include "gradcheck.h"
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

/* ---------------------------------------------------------------- bilinear */

TEST(bilinear_values_against_loops) {
  const int64_t B0 = 2, B1 = 3, I = 4, J = 5, O = 3;
  int64_t s1[3] = {B0, B1, I}, s2[3] = {B0, B1, J}, sw[3] = {O, I, J};
  lc_manual_seed(41);
  for (int dti = 0; dti < 2; dti++) {
    lc_dtype dt = dti ? LC_FLOAT32 : LC_FLOAT64;
    lc_tensor *x1 = NULL, *x2 = NULL, *w = NULL, *b = NULL, *y = NULL, *yn = NULL;
    CHECK_OK(lc_randn(3, s1, dt, &x1));
    CHECK_OK(lc_randn(3, s2, dt, &x2));
    CHECK_OK(lc_randn(3, sw, dt, &w));
    CHECK_OK(lc_randn(1, &O, dt, &b));
    CHECK_OK(lc_bilinear(x1, x2, w, b, &y));
    CHECK_OK(lc_bilinear(x1, x2, w, NULL, &yn));
    CHECK(y && lc_ndim(y) == 3 && lc_shape(y)[2] == O);
    double *a1 = test_values(x1), *a2 = test_values(x2), *aw = test_values(w), *ab = test_values(b),
           *vy = test_values(y), *vn = test_values(yn);
    for (int64_t r = 0; r < B0 * B1; r++)
      for (int64_t o = 0; o < O; o++) {
        double s = 0;
        for (int64_t i = 0; i < I; i++)
          for (int64_t j = 0; j < J; j++)
            s += a1[r * I + i] * aw[(o * I + i) * J + j] * a2[r * J + j];
        double tol = dt == LC_FLOAT32 ? 1e-4 : 1e-12;
        CHECK_NEAR(vy[r * O + o], s + ab[o], tol * (1 + fabs(s)));
        CHECK_NEAR(vn[r * O + o], s, tol * (1 + fabs(s)));
      }
    free(a1), free(a2), free(aw), free(ab), free(vy), free(vn);
    lc_release(x1), lc_release(x2), lc_release(w), lc_release(b), lc_release(y), lc_release(yn);
  }
}

static lc_status bl_fn(void *ctx, lc_tensor *const *in, lc_tensor **out) {
  return lc_bilinear(in[0], in[1], in[2], ctx ? in[3] : NULL, out);
}

TEST(bilinear_gradcheck_float64) {
  int64_t s1[2] = {3, 2}, s2[2] = {3, 4}, sw[3] = {2, 2, 4}, sb = 2;
  lc_manual_seed(42);
  for (int wb = 0; wb < 2; wb++) {
    lc_tensor *in[4] = {leaf(2, s1, 1), leaf(2, s2, 1), leaf(3, sw, 1), leaf(1, &sb, 1)};
    char msg[512];
    int ok =
        gradcheck(bl_fn, wb ? (void *)1 : NULL, wb ? 4 : 3, in, 1e-6, 1e-7, 1e-5, msg, sizeof msg);
    if (!ok) printf("  %s\n", msg);
    CHECK(ok);
    for (int k = 0; k < 4; k++)
      lc_release(in[k]);
  }
  /* 1-D (unbatched) inputs */
  int64_t i1 = 2, i2 = 3, w1[3] = {2, 2, 3};
  lc_tensor *u[3] = {leaf(1, &i1, 1), leaf(1, &i2, 1), leaf(3, w1, 1)};
  char msg[512];
  CHECK(gradcheck(bl_fn, NULL, 3, u, 1e-6, 1e-7, 1e-5, msg, sizeof msg));
  for (int k = 0; k < 3; k++)
    lc_release(u[k]);
}

TEST(bilinear_errors) {
  int64_t s1[2] = {3, 2}, s2[2] = {3, 4}, sw[3] = {5, 2, 4}, s2b[2] = {2, 4}, sb = 4;
  lc_tensor *x1 = NULL, *x2 = NULL, *w = NULL, *x2b = NULL, *b = NULL, *x1d = NULL, *y = NULL;
  CHECK_OK(lc_zeros(2, s1, LC_FLOAT32, &x1));
  CHECK_OK(lc_zeros(2, s2, LC_FLOAT32, &x2));
  CHECK_OK(lc_zeros(3, sw, LC_FLOAT32, &w));
  CHECK_OK(lc_zeros(2, s2b, LC_FLOAT32, &x2b));
  CHECK_OK(lc_zeros(1, &sb, LC_FLOAT32, &b));
  CHECK_OK(lc_zeros(2, s1, LC_FLOAT64, &x1d));
  CHECK_STATUS(lc_bilinear(x2, x1, w, NULL, &y), LC_ESHAPE);
  CHECK(msg_has("input1") && msg_has("2 features"));
  CHECK_STATUS(lc_bilinear(x1, x2b, w, NULL, &y), LC_ESHAPE);
  CHECK(msg_has("leading dims"));
  CHECK_STATUS(lc_bilinear(x1, x2, w, b, &y), LC_ESHAPE);
  CHECK(msg_has("bias") && msg_has("{5}"));
  CHECK_STATUS(lc_bilinear(x1d, x2, w, NULL, &y), LC_EDTYPE);
  CHECK_STATUS(lc_bilinear(x1, x2, x1, NULL, &y), LC_ESHAPE);
  CHECK_STATUS(lc_bilinear(x1, NULL, w, NULL, &y), LC_EARG);
  CHECK(y == NULL);
  lc_release(x1), lc_release(x2), lc_release(w), lc_release(x2b), lc_release(b), lc_release(x1d);
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
