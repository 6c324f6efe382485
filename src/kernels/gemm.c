/*
 * gemm.c - the kernels' one matrix product (gemm.h), threaded by lucid's pool.
 *
 * OpenBLAS threads a GEMM itself from about 260K multiply-adds up, and its idle threads then
 * spin (sched_yield) for a while after every call. Between the many small GEMMs of a
 * Transformer, and the elementwise loops lucid runs on its own pool in between, those
 * spinning threads took a quarter of the CPU time of the ONNX text encoder here. So a product
 * runs single-threaded on the caller when it is small, and otherwise is cut into blocks of
 * rows (or of columns, when C is wide and short) that lucid's pool runs, each block a
 * single-threaded BLAS call (lc_parallel_for_blas keeps OpenBLAS at one thread meanwhile).
 * Each block repacks its share of A and all of B: a cost that only matters for products far
 * too small to be split at all.
 */
#include "gemm.h"

#include <cblas.h>
#include <string.h>

/* Rows (or columns) per block: a multiple of the sgemm/dgemm kernels' register tiles. */
#define GEMM_BLOCK 16
/* Multiply-adds counted as one unit of lc_parallel_for's work. A product is split once it is
 * worth two grains, 2 x 32768 x 16 = 1M multiply-adds (about 20 us on one core here, against
 * 2-10 us to hand a block to a worker): the text encoder's 64 x 128 x 384 QKV product at
 * batch 1 (3M) is split, a 64 x 64 x 32 attention product (131K) is not. */
#define GEMM_MACS_PER_UNIT 16

static CBLAS_TRANSPOSE tr(bool t) { return t ? CblasTrans : CblasNoTrans; }

static void blas(lc_dtype dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha,
                 const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c,
                 int64_t ldc) {
  if (dt == LC_FLOAT32)
    cblas_sgemm(CblasRowMajor, tr(ta), tr(tb), (int)M, (int)N, (int)K, (float)alpha, a, (int)lda, b,
                (int)ldb, (float)beta, c, (int)ldc);
  else
    cblas_dgemm(CblasRowMajor, tr(ta), tr(tb), (int)M, (int)N, (int)K, alpha, a, (int)lda, b,
                (int)ldb, beta, c, (int)ldc);
}

/* C = beta C when there is nothing to sum (BLAS wants K >= 1 for its leading dimensions). */
static void scale_c(lc_dtype dt, int64_t M, int64_t N, double beta, void *c, int64_t ldc) {
  size_t es = lc_dtype_size(dt);
  for (int64_t i = 0; i < M; i++) {
    char *row = (char *)c + (size_t)(i * ldc) * es;
    if (beta == 0) {
      memset(row, 0, (size_t)N * es);
    } else if (dt == LC_FLOAT32) {
      float *r = (float *)row;
      for (int64_t j = 0; j < N; j++)
        r[j] *= (float)beta;
    } else {
      double *r = (double *)row;
      for (int64_t j = 0; j < N; j++)
        r[j] *= beta;
    }
  }
}

void lk_gemm_unlocked(lc_dtype dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha,
                      const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c,
                      int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0)
    scale_c(dt, M, N, beta, c, ldc);
  else
    blas(dt, ta, tb, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc);
}

void lk_gemm_serial(lc_dtype dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha,
                    const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c,
                    int64_t ldc) {
  lc_blas_single_begin();
  lk_gemm_unlocked(dt, ta, tb, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc);
  lc_blas_single_end();
}

typedef struct gemm_job {
  lc_dtype dt;
  bool ta, tb, split_rows;
  int64_t M, N, K, lda, ldb, ldc;
  double alpha, beta;
  const char *a, *b;
  char *c;
  const char *bias; /* lk_gemm_bias: C's rows start as it (beta is then 1) */
} gemm_job;

/* Rows [r0, r1), columns [c0, c1) of C = the bias's columns [c0, c1). */
static void fill_bias(const gemm_job *j, int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
  size_t es = lc_dtype_size(j->dt), n = (size_t)(c1 - c0) * es;
  for (int64_t i = r0; i < r1; i++)
    memcpy(j->c + (size_t)(i * j->ldc + c0) * es, j->bias + (size_t)c0 * es, n);
}

/* Blocks [lo, hi) of rows of C (with A's matching rows) or of columns (with B's columns). */
static void gemm_blocks(void *ctx, int64_t lo, int64_t hi) {
  const gemm_job *j = ctx;
  size_t es = lc_dtype_size(j->dt);
  int64_t len = j->split_rows ? j->M : j->N;
  int64_t i0 = lo * GEMM_BLOCK, i1 = hi * GEMM_BLOCK < len ? hi * GEMM_BLOCK : len;
  if (i0 >= i1) return;
  if (j->bias) {
    if (j->split_rows)
      fill_bias(j, i0, i1, 0, j->N);
    else
      fill_bias(j, 0, j->M, i0, i1);
  }
  if (j->split_rows) {
    /* row i of op(A): row i of A, or column i of A when transposed */
    const char *a = j->a + (size_t)(j->ta ? i0 : i0 * j->lda) * es;
    blas(j->dt, j->ta, j->tb, i1 - i0, j->N, j->K, j->alpha, a, j->lda, j->b, j->ldb, j->beta,
         j->c + (size_t)(i0 * j->ldc) * es, j->ldc);
  } else {
    /* column i of op(B): column i of B, or row i of B when transposed */
    const char *b = j->b + (size_t)(j->tb ? i0 * j->ldb : i0) * es;
    blas(j->dt, j->ta, j->tb, j->M, i1 - i0, j->K, j->alpha, j->a, j->lda, b, j->ldb, j->beta,
         j->c + (size_t)i0 * es, j->ldc);
  }
}

/* The product of j over lucid's threads when it is big enough, else on this thread. */
static void run_job(gemm_job *j) {
  if (j->M <= 0 || j->N <= 0) return;
  /* rows when C is at least as tall as wide, or too narrow to cut */
  bool rows = j->M >= j->N || j->N < 2 * GEMM_BLOCK;
  int64_t len = rows ? j->M : j->N, other = rows ? j->N : j->M;
  int64_t blocks = (len + GEMM_BLOCK - 1) / GEMM_BLOCK;
  int64_t cost = GEMM_BLOCK * other * j->K / GEMM_MACS_PER_UNIT + 1;
  j->split_rows = rows;
  /* too little for a second thread (below two grains of work): one block of everything */
  if (j->K <= 0 || blocks < 2 || lc_get_num_threads() <= 1 ||
      blocks * cost < 2 * LC_PARALLEL_GRAIN) {
    if (j->bias) fill_bias(j, 0, j->M, 0, j->N);
    lk_gemm_serial(j->dt, j->ta, j->tb, j->M, j->N, j->K, j->alpha, j->a, j->lda, j->b, j->ldb,
                   j->beta, j->c, j->ldc);
    return;
  }
  lc_parallel_for_blas(blocks, cost, gemm_blocks, j);
}

void lk_gemm(lc_dtype dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha,
             const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c,
             int64_t ldc) {
  gemm_job j = {dt, ta, tb, true, M, N, K, lda, ldb, ldc, alpha, beta, a, b, c, NULL};
  run_job(&j);
}

void lk_gemm_bias(lc_dtype dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const void *a,
                  int64_t lda, const void *b, int64_t ldb, const void *bias, void *c, int64_t ldc) {
  gemm_job j = {dt, ta, tb, true, M, N, K, lda, ldb, ldc, 1.0, 1.0, a, b, c, bias};
  run_job(&j);
}
