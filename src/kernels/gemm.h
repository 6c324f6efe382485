/*
 * gemm.h - the kernels' one matrix product: C = alpha op(A) op(B) + beta C, row-major, over
 * OpenBLAS, threaded by lucid's policy instead of OpenBLAS's own (gemm.c says why).
 * Layer 2 (kernels); private to src/kernels.
 */
#ifndef LUCID_KERNELS_GEMM_H
#define LUCID_KERNELS_GEMM_H

#include "op.h"

/* dt is LC_FLOAT32 or LC_FLOAT64 (a, b, c of that type); op(A) is M x K, op(B) K x N, C M x N
 * with leading dimensions lda, ldb, ldc in elements, as cblas_?gemm with CblasRowMajor. Dims
 * must fit an int (callers check). K == 0 scales C by beta. */
void lk_gemm(lc_dtype dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha,
             const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c,
             int64_t ldc);

/* C = op(A) op(B) + bias, the N-vector bias added to every row (a linear layer's forward); C's
 * prior contents are ignored. Each block of the product fills its own rows with the bias. */
void lk_gemm_bias(lc_dtype dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const void *a,
                  int64_t lda, const void *b, int64_t ldb, const void *bias, void *c, int64_t ldc);

/* The same product on the calling thread only (single-threaded BLAS), for code that already
 * runs inside one of lucid's parallel loops. */
void lk_gemm_serial(lc_dtype dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha,
                    const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c,
                    int64_t ldc);

/* lk_gemm_serial for a caller that has already made BLAS single-threaded (between
 * lc_blas_single_begin and lc_blas_single_end): no lock per call, for loops over many small
 * products. */
void lk_gemm_unlocked(lc_dtype dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha,
                      const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c,
                      int64_t ldc);

#endif
