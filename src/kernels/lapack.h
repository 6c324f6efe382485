/*
 * lapack.h - private to src/kernels and src/ops: the Fortran LAPACK routines lucid.linalg uses
 * (exported by OpenBLAS; Debian ships no LAPACKE headers) and the linalg op defs.
 *
 * Fortran conventions: every argument by pointer, matrices column-major, LP64 int, and one
 * hidden size_t length per character argument after the others (gfortran's ABI). The kernels
 * (lapack.c) copy each row-major matrix into a column-major float64 work matrix, so every
 * dtype goes through the d* routines.
 */
#ifndef LUCID_KERNELS_LAPACK_H
#define LUCID_KERNELS_LAPACK_H

#include <stddef.h>

#include "op.h"

typedef int lc_fint; /* LAPACK's INTEGER (LP64 OpenBLAS) */

void dgetrf_(const lc_fint *m, const lc_fint *n, double *a, const lc_fint *lda, lc_fint *ipiv,
             lc_fint *info);
void dgetri_(const lc_fint *n, double *a, const lc_fint *lda, const lc_fint *ipiv, double *work,
             const lc_fint *lwork, lc_fint *info);
void dgetrs_(const char *trans, const lc_fint *n, const lc_fint *nrhs, const double *a,
             const lc_fint *lda, const lc_fint *ipiv, double *b, const lc_fint *ldb, lc_fint *info,
             size_t trans_len);
void dpotrf_(const char *uplo, const lc_fint *n, double *a, const lc_fint *lda, lc_fint *info,
             size_t uplo_len);
void dgeqrf_(const lc_fint *m, const lc_fint *n, double *a, const lc_fint *lda, double *tau,
             double *work, const lc_fint *lwork, lc_fint *info);
void dorgqr_(const lc_fint *m, const lc_fint *n, const lc_fint *k, double *a, const lc_fint *lda,
             const double *tau, double *work, const lc_fint *lwork, lc_fint *info);
void dgesdd_(const char *jobz, const lc_fint *m, const lc_fint *n, double *a, const lc_fint *lda,
             double *s, double *u, const lc_fint *ldu, double *vt, const lc_fint *ldvt,
             double *work, const lc_fint *lwork, lc_fint *iwork, lc_fint *info, size_t jobz_len);
void dsyevd_(const char *jobz, const char *uplo, const lc_fint *n, double *a, const lc_fint *lda,
             double *w, double *work, const lc_fint *lwork, lc_fint *iwork, const lc_fint *liwork,
             lc_fint *info, size_t jobz_len, size_t uplo_len);
void dgelsd_(const lc_fint *m, const lc_fint *n, const lc_fint *nrhs, double *a, const lc_fint *lda,
             double *b, const lc_fint *ldb, double *s, const double *rcond, lc_fint *rank,
             double *work, const lc_fint *lwork, lc_fint *iwork, lc_fint *info);

/* ---- the op defs (lapack.c). A is (..., m, n), float32 or float64; batch dims of two-input
 * ops are equal (src/ops broadcasts them first). Ops with several differentiable results
 * return them packed along one last dim, in the order listed, each flattened row-major; the
 * public functions slice them out, so autograd sees one output. */
extern const lc_op_def lc_op_linalg_inv;      /* inv(A) */
extern const lc_op_def lc_op_linalg_solve;    /* in = {A, B (..., n, k)}: X with A X = B */
extern const lc_op_def lc_op_linalg_slogdet;  /* out[0] logabsdet, out[1] sign (no gradient) */
extern const lc_op_def lc_op_linalg_cholesky; /* lower L */
/* i[0] = mode (0 reduced, 1 complete, 2 r): packed [Q (m x kq) | R (kr x n)] */
extern const lc_op_def lc_op_linalg_qr;
/* i[0] = upper: packed [eigenvalues (n) | eigenvectors V (n x n, columns)] */
extern const lc_op_def lc_op_linalg_eigh;
/* i[0] = full_matrices: packed [U (m x ku) | S (k) | Vh (kv x n)] */
extern const lc_op_def lc_op_linalg_svd;
/* in = {A, B (..., m, k)}, f[0] = rcond (< 0: eps * max(m, n)): the solution (..., n, k) */
extern const lc_op_def lc_op_linalg_lstsq;

#endif /* LUCID_KERNELS_LAPACK_H */
