/* test_gemm.c - the kernels' one matrix product (src/kernels/gemm.c) against a float64 loop:
 * every transpose combination, alpha and beta, leading dimensions wider than the matrices,
 * shapes split by rows and by columns (and too small to split), K = 0, float64, and the same
 * result on one and on two threads.
 * Run alone with: make ctest-one T=tests/test_gemm.c */
#include "../src/kernels/gemm.h"

#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* op(X)[i][k] of a row-major X with leading dimension ld. */
static double at(const float *x, bool t, int64_t ld, int64_t i, int64_t k) {
  return t ? x[k * ld + i] : x[i * ld + k];
}

static float frand(unsigned *s) {
  *s = *s * 1103515245u + 12345u;
  return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* Checks one float32 product of the given shape against the reference; returns failures. */
static int check_f32(int64_t M, int64_t N, int64_t K, bool ta, bool tb, double alpha, double beta,
                     int pad) {
  int64_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
  int64_t ra = ta ? K : M, rb = tb ? N : K;
  float *a = malloc(sizeof(float) * (size_t)(ra * lda + 1));
  float *b = malloc(sizeof(float) * (size_t)(rb * ldb + 1));
  float *c = malloc(sizeof(float) * (size_t)(M * ldc + 1));
  double *want = malloc(sizeof(double) * (size_t)(M * ldc + 1));
  unsigned s = (unsigned)(M * 131 + N * 17 + K);
  for (int64_t i = 0; i < ra * lda; i++)
    a[i] = frand(&s);
  for (int64_t i = 0; i < rb * ldb; i++)
    b[i] = frand(&s);
  for (int64_t i = 0; i < M * ldc; i++)
    c[i] = frand(&s);
  for (int64_t i = 0; i < M; i++)
    for (int64_t j = 0; j < ldc; j++) {
      double acc = 0;
      for (int64_t k = 0; k < K; k++)
        acc += at(a, ta, lda, i, k) * at(b, tb, ldb, k, j < N ? j : 0);
      /* the padding columns of C must stay as they were */
      want[i * ldc + j] = j < N ? alpha * acc + beta * c[i * ldc + j] : c[i * ldc + j];
    }
  lk_gemm(LC_FLOAT32, ta, tb, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc);
  int bad = 0;
  for (int64_t i = 0; i < M * ldc && !bad; i++)
    if (fabs(c[i] - want[i]) > 1e-4 * (1 + fabs(want[i]))) bad = 1;
  if (bad)
    fprintf(stderr, "  gemm %lldx%lldx%lld ta=%d tb=%d alpha=%g beta=%g pad=%d differs\n",
            (long long)M, (long long)N, (long long)K, ta, tb, alpha, beta, pad);
  free(a);
  free(b);
  free(c);
  free(want);
  return bad;
}

TEST(gemm_matches_reference_over_shapes_layouts_and_threads) {
  /* on two threads (gemm.c's cost rule): split by rows with a partial last block (600 x 80 x
   * 70, 129^3), by columns (80 x 600 x 70, 64 x 384 x 128), and products too small to split
   * (the rest) */
  static const int64_t shapes[][3] = {{600, 80, 70}, {80, 600, 70},  {64, 384, 128},
                                      {3, 5, 7},     {17, 33, 1},    {1, 700, 300},
                                      {700, 1, 300}, {129, 129, 129}};
  int bad = 0;
  for (int threads = 1; threads <= 2; threads++) {
    CHECK_OK(lc_set_num_threads(threads));
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
      for (int t = 0; t < 4; t++)
        bad += check_f32(shapes[s][0], shapes[s][1], shapes[s][2], t & 1, t & 2, 1.0, 0.0, 0);
    /* alpha, beta and wider leading dimensions */
    bad += check_f32(400, 96, 100, false, true, 0.5, 1.0, 3);
    bad += check_f32(96, 400, 100, true, false, -2.0, 0.25, 5);
  }
  CHECK(bad == 0);
  lc_set_num_threads(2);
}

/* lk_gemm_bias: rows start as the bias, split by rows and by columns and unsplit. */
TEST(gemm_bias_rows) {
  static const int64_t shapes[][3] = {{600, 80, 70}, {64, 384, 128}, {3, 5, 7}, {4, 6, 0}};
  int bad = 0;
  for (int threads = 1; threads <= 2; threads++) {
    CHECK_OK(lc_set_num_threads(threads));
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
      int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
      float *a = malloc(sizeof(float) * (size_t)(M * K + 1)),
            *b = malloc(sizeof(float) * (size_t)(N * K + 1));
      float *bias = malloc(sizeof(float) * (size_t)N), *c = malloc(sizeof(float) * (size_t)(M * N));
      unsigned r = 7;
      for (int64_t i = 0; i < M * K; i++)
        a[i] = frand(&r);
      for (int64_t i = 0; i < N * K; i++)
        b[i] = frand(&r);
      for (int64_t i = 0; i < N; i++)
        bias[i] = frand(&r);
      for (int64_t i = 0; i < M * N; i++)
        c[i] = 1e30f; /* ignored */
      lk_gemm_bias(LC_FLOAT32, false, true, M, N, K, a, K ? K : 1, b, K ? K : 1, bias, c, N);
      for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
          double want = bias[j];
          for (int64_t k = 0; k < K; k++)
            want += (double)a[i * K + k] * b[j * K + k];
          if (fabs(c[i * N + j] - want) > 1e-4 * (1 + fabs(want))) bad++;
        }
      free(a);
      free(b);
      free(bias);
      free(c);
    }
  }
  CHECK(bad == 0);
  lc_set_num_threads(2);
}

TEST(gemm_k0_scales_c_and_float64) {
  float c[6] = {1, 2, 3, 4, 5, 6};
  lk_gemm(LC_FLOAT32, false, false, 2, 3, 0, 1.0, NULL, 1, NULL, 3, 0.5, c, 3);
  CHECK(c[0] == 0.5f && c[5] == 3.0f);
  lk_gemm(LC_FLOAT32, false, false, 2, 3, 0, 1.0, NULL, 1, NULL, 3, 0.0, c, 3);
  CHECK(c[0] == 0 && c[5] == 0);
  /* float64, split by rows on two threads: 256 x 64 x 32 of ones is 32 everywhere */
  enum { M = 256, N = 64, K = 32 };
  double *a = malloc(sizeof(double) * M * K), *b = malloc(sizeof(double) * K * N);
  double *d = malloc(sizeof(double) * M * N);
  for (int i = 0; i < M * K; i++)
    a[i] = 1;
  for (int i = 0; i < K * N; i++)
    b[i] = 1;
  CHECK_OK(lc_set_num_threads(2));
  lk_gemm(LC_FLOAT64, false, false, M, N, K, 1.0, a, K, b, N, 0.0, d, N);
  int ok = 1;
  for (int i = 0; i < M * N; i++)
    ok &= d[i] == K;
  CHECK(ok);
  lk_gemm_serial(LC_FLOAT64, false, false, M, N, K, 2.0, a, K, b, N, 1.0, d, N);
  CHECK(d[0] == 3 * K && d[M * N - 1] == 3 * K);
  free(a);
  free(b);
  free(d);
}
