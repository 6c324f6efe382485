/*
 * blas.c - the yardstick for lucid's matmul: cblas_sgemm on 1024x1024 float32, called directly.
 *
 * Prints "blas_sgemm_1024_gflops <value>" with OpenBLAS's default thread count (what lucid's
 * matmul uses when it has a wall clock to be timed with), then
 * "blas_sgemm_1024_1t_gflops <value>" on one thread (what bench.lua compares against when it
 * times with os.clock, which counts the CPU time of every thread). Best of several runs after
 * a warm-up.
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { N = 1024, WARMUP = 2, RUNS = 7 };

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double best_gflops(const float *a, const float *b, float *c) {
  double best = 1e30;
  for (int r = 0; r < WARMUP + RUNS; r++) {
    double t0 = now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, 1.0f, a, N, b, N, 0.0f, c, N);
    double dt = now() - t0;
    if (r >= WARMUP && dt < best) best = dt;
  }
  return 2.0 * N * N * N / best * 1e-9;
}

int main(void) {
  float *a = malloc(sizeof(float) * N * N);
  float *b = malloc(sizeof(float) * N * N);
  float *c = malloc(sizeof(float) * N * N);
  if (!a || !b || !c) {
    fprintf(stderr, "bench-blas: out of memory\n");
    free(a);
    free(b);
    free(c);
    return 1;
  }
  srand(1);
  for (int i = 0; i < N * N; i++) {
    a[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    b[i] = (float)rand() / (float)RAND_MAX - 0.5f;
  }
  int threads = openblas_get_num_threads();
  printf("blas_sgemm_1024_gflops %.2f\n", best_gflops(a, b, c));
  fflush(stdout);
  openblas_set_num_threads(1);
  printf("blas_sgemm_1024_1t_gflops %.2f\n", best_gflops(a, b, c));
  openblas_set_num_threads(threads);
  free(a);
  free(b);
  free(c);
  return 0;
}
