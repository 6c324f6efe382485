/*
 * lapack.c - lucid.linalg's factorizations (lapack.h): inv, solve, slogdet, cholesky, qr, eigh,
 * svd and lstsq through OpenBLAS's LAPACK, forward and backward side by side.
 *
 * Each matrix of the batch is copied into a column-major float64 work matrix (so float32 goes
 * through the d* routines too, and any layout, views and expanded inputs included, works), the
 * routine runs, and the results are copied back row-major in the input's dtype. Backwards are
 * written with the grad_graph.h builder (matmul, solve, inv, ... run through ctx->run), so each
 * serves as its own backward_graph and differentiates again.
 */
#include "lapack.h"

#include "grad_graph.h"
#include "kernel_util.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* LAPACK runs with OpenBLAS single-threaded: lucid.linalg's matrices are small and batched,
 * and OpenBLAS's threaded LU / QR synchronise outside pthreads, which ThreadSanitizer cannot
 * follow (it reports races on the work buffers). */
#define SINGLE_THREADED_BLAS(fwd)                                                                  \
  static lc_status fwd##_1t(const lc_op_def *op, int n, lc_tensor *const *in,                      \
                            const lc_op_args *args, lc_tensor **out) {                             \
    lc_blas_single_begin();                                                                        \
    lc_status st = fwd(op, n, in, args, out);                                                      \
    lc_blas_single_end();                                                                          \
    return st;                                                                                     \
  }

/* A linalg op: its forward through SINGLE_THREADED_BLAS, and a backward made of recorded ops
 * (so it is its own backward_graph; NULL: not differentiable). */
#define LINALG_OP(var, nm, gname, nin, nout, savemask, stem, bwd)                                  \
  SINGLE_THREADED_BLAS(stem##_forward)                                                             \
  const lc_op_def var = {.name = nm,                                                               \
                         .grad_fn_name = gname,                                                    \
                         .n_inputs = nin,                                                          \
                         .n_outputs = nout,                                                        \
                         .save = savemask,                                                         \
                         .forward = stem##_forward_1t,                                             \
                         .backward = bwd,                                                          \
                         .backward_graph = bwd};

/* ---------------------------------------------------------------- shapes and copies */

typedef struct mats {
  lc_tensor *d; /* dense input */
  int64_t nb;   /* matrices in the batch */
  lc_fint m, n;
} mats;

static lc_status mats_of(const char *fn, const char *name, const lc_tensor *t, bool square,
                         mats *a) {
  a->d = NULL;
  lc_status st = need_float_dtype(fn, name, t->dtype);
  if (st) return st;
  if (t->ndim < 2)
    return lc_set_error(LC_ESHAPE, "%s: %s must have at least 2 dimensions, got %d", fn, name,
                        t->ndim);
  int64_t m = t->shape[t->ndim - 2], n = t->shape[t->ndim - 1];
  if (square && m != n)
    return lc_set_error(LC_ESHAPE, "%s: %s must be a batch of square matrices, got %lldx%lld", fn,
                        name, (long long)m, (long long)n);
  if (m > 46340 || n > 46340 || m * n > INT_MAX / 4)
    return lc_set_error(LC_ESHAPE, "%s: %s matrices of %lldx%lld are too large for LAPACK", fn,
                        name, (long long)m, (long long)n);
  a->m = (lc_fint)m, a->n = (lc_fint)n;
  a->nb = (m * n) != 0 ? t->numel / (m * n) : lc_shape_numel(t->ndim - 2, t->shape);
  return lc_k_dense(t, &a->d);
}

/* Matrix k (m x n, row-major in d) into w column-major (leading dim ld). */
static void load_cm(const lc_tensor *d, int64_t off, lc_fint m, lc_fint n, double *w, lc_fint ld) {
  if (d->dtype == LC_FLOAT64) {
    const double *s = (const double *)lc_data(d) + off;
    for (lc_fint i = 0; i < m; i++)
      for (lc_fint j = 0; j < n; j++)
        w[(int64_t)j * ld + i] = s[(int64_t)i * n + j];
  } else {
    const float *s = (const float *)lc_data(d) + off;
    for (lc_fint i = 0; i < m; i++)
      for (lc_fint j = 0; j < n; j++)
        w[(int64_t)j * ld + i] = s[(int64_t)i * n + j];
  }
}

/* w (column-major, leading dim ld) into o row-major m x n at off; tri: 0 all, 1 lower, 2 upper
 * (the rest written as zeros). */
static void store_rm(lc_tensor *o, int64_t off, lc_fint m, lc_fint n, const double *w, lc_fint ld,
                     int tri) {
  for (lc_fint i = 0; i < m; i++)
    for (lc_fint j = 0; j < n; j++) {
      double v = w[(int64_t)j * ld + i];
      if ((tri == 1 && j > i) || (tri == 2 && j < i)) v = 0;
      if (o->dtype == LC_FLOAT64)
        ((double *)lc_data(o))[off + (int64_t)i * n + j] = v;
      else
        ((float *)lc_data(o))[off + (int64_t)i * n + j] = (float)v;
    }
}

static void store_vec(lc_tensor *o, int64_t off, lc_fint n, const double *w) {
  for (lc_fint i = 0; i < n; i++) {
    if (o->dtype == LC_FLOAT64)
      ((double *)lc_data(o))[off + i] = w[i];
    else
      ((float *)lc_data(o))[off + i] = (float)w[i];
  }
}

/* An output shaped like t's batch dims followed by `ntail` sizes. */
static lc_status new_out(const lc_tensor *t, int ntail, const int64_t *tail, lc_dtype dt,
                         lc_tensor **out) {
  int64_t shape[LC_MAX_DIMS];
  int nd = t->ndim - 2;
  memcpy(shape, t->shape, (size_t)nd * sizeof *shape);
  if (ntail) memcpy(shape + nd, tail, (size_t)ntail * sizeof *shape);
  return lc_tensor_new(nd + ntail, shape, dt, out);
}

/* " (matrix k of N in the batch: what)" or " (what)" for one matrix: k is 0-based here. */
static const char *where_(char *buf, size_t sz, int64_t k, int64_t nb, const char *what) {
  if (nb > 1)
    snprintf(buf, sz, "matrix %lld of %lld in the batch: %s", (long long)k + 1, (long long)nb,
             what);
  else
    snprintf(buf, sz, "%s", what);
  return buf;
}

/* Work buffers: one malloc, freed by the caller. */
static void *work_alloc(size_t bytes) { return malloc(bytes ? bytes : 1); }

static lc_fint lwork_of(double q) {
  double v = q < 1 ? 1 : q;
  return v > INT_MAX / 2 ? INT_MAX / 2 : (lc_fint)v;
}

#define NOMEM(fn) lc_set_error(LC_ENOMEM, "%s: out of memory for the LAPACK work space", fn)

/* ---------------------------------------------------------------- builder helpers */

/* x[..., start:end] of the last dim reshaped to (batch..., tail...) */
static lc_tensor *gb_part(lc_gb *b, const lc_tensor *x, int64_t start, int64_t len, int ntail,
                          const int64_t *tail) {
  if (b->st) return NULL;
  lc_op_args a = {.i = {x->ndim - 1, start, start + len, 1}, .ni = 4};
  lc_tensor *in[1] = {(lc_tensor *)x};
  lc_tensor *s = lc_gb_op(b, &lc_op_slice, 1, in, &a);
  if (!s) return NULL;
  int64_t shape[LC_MAX_DIMS];
  int nd = x->ndim - 1;
  memcpy(shape, x->shape, (size_t)nd * sizeof *shape);
  memcpy(shape + nd, tail, (size_t)ntail * sizeof *shape);
  return lc_gb_reshape(b, s, nd + ntail, shape);
}

static lc_tensor *gb_tri(lc_gb *b, const lc_op_def *op, const lc_tensor *x, int64_t k) {
  lc_op_args a = {.i = {k}, .ni = 1};
  lc_tensor *in[1] = {(lc_tensor *)x};
  return lc_gb_op(b, op, 1, in, &a);
}

static lc_tensor *gb_solve(lc_gb *b, const lc_tensor *a, const lc_tensor *x) {
  lc_tensor *in[2] = {(lc_tensor *)a, (lc_tensor *)x};
  return lc_gb_op(b, &lc_op_linalg_solve, 2, in, NULL);
}

/* x @ inv(a) = (a^T \ x^T)^T */
static lc_tensor *gb_solve_right(lc_gb *b, const lc_tensor *x, const lc_tensor *a) {
  return lc_gb_mT(b, gb_solve(b, lc_gb_mT(b, a), lc_gb_mT(b, x)));
}

/* An n x n identity (no history) in dt. */
static lc_tensor *gb_eye(lc_gb *b, int64_t n, lc_dtype dt) {
  if (b->st) return NULL;
  lc_tensor *e = NULL;
  b->st = lc_eye(n, n, dt, &e);
  return b->st ? NULL : lc_gb_keep(b, e);
}

/* v (..., n) as (..., 1, n) or (..., n, 1) */
static lc_tensor *gb_unsq(lc_gb *b, const lc_tensor *v, bool row) {
  if (b->st) return NULL;
  int64_t shape[LC_MAX_DIMS];
  int nd = v->ndim;
  memcpy(shape, v->shape, (size_t)(nd - 1) * sizeof *shape);
  shape[nd - 1] = row ? 1 : v->shape[nd - 1];
  shape[nd] = row ? v->shape[nd - 1] : 1;
  return lc_gb_reshape(b, v, nd + 1, shape);
}

/* ---------------------------------------------------------------- inv */

static lc_status inv_forward(const lc_op_def *op, int n_in, lc_tensor *const *in,
                             const lc_op_args *args, lc_tensor **out) {
  (void)op, (void)n_in, (void)args;
  const char *fn = "linalg_inv";
  mats a;
  lc_status st = mats_of(fn, "input", in[0], true, &a);
  if (st) return st;
  lc_tensor *r = NULL;
  if ((st = lc_tensor_new(in[0]->ndim, in[0]->shape, in[0]->dtype, &r))) goto done;
  lc_fint n = a.n, info = 0, lw = -1;
  double q = 0;
  if (a.nb == 0 || n == 0) goto done;
  dgetri_(&n, &q, &n, &info, &q, &lw, &info);
  lw = lwork_of(q);
  double *w = work_alloc(sizeof(double) * ((size_t)n * n + (size_t)lw));
  lc_fint *ipiv = work_alloc(sizeof(lc_fint) * (size_t)n);
  if (!w || !ipiv) {
    st = NOMEM(fn);
  } else {
    for (int64_t k = 0; k < a.nb && !st; k++) {
      load_cm(a.d, k * n * n, n, n, w, n);
      dgetrf_(&n, &n, w, &n, ipiv, &info);
      if (info > 0) {
        char what[96], buf[160];
        snprintf(what, sizeof what, "U[%d,%d] of its LU factorization is zero", (int)info,
                 (int)info);
        st = lc_set_error(LC_EARG, "%s: the input is singular (%s)", fn,
                          where_(buf, sizeof buf, k, a.nb, what));
        break;
      }
      dgetri_(&n, w, &n, ipiv, w + (size_t)n * n, &lw, &info);
      store_rm(r, k * n * n, n, n, w, n, 0);
    }
  }
  free(w);
  free(ipiv);
done:
  lc_release(a.d);
  if (st) {
    lc_release(r);
    return st;
  }
  *out = r;
  return LC_OK;
}

/* gA = -Y^T g Y^T, Y = inv(A) */
static lc_status inv_backward(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  lc_gb b = LC_GB_INIT(ctx);
  lc_tensor *yt = lc_gb_mT(&b, lc_gb_saved(&b, 0));
  lc_tensor *t = lc_gb_matmul(&b, lc_gb_matmul(&b, yt, g), yt);
  lc_gb_grad(&b, 0, lc_gb_un(&b, LC_NEG, t), grad_in);
  return lc_gb_end(&b, grad_in);
}

LINALG_OP(lc_op_linalg_inv, "linalg_inv", "LinalgInvBackward", 1, 1, LC_SAVE_OUT(0), inv,
          inv_backward)

/* ---------------------------------------------------------------- solve */

static lc_status solve_forward(const lc_op_def *op, int n_in, lc_tensor *const *in,
                               const lc_op_args *args, lc_tensor **out) {
  (void)op, (void)n_in, (void)args;
  const char *fn = "linalg_solve";
  mats a, bm = {0};
  lc_status st = mats_of(fn, "A", in[0], true, &a);
  if (!st) st = mats_of(fn, "B", in[1], false, &bm);
  lc_tensor *r = NULL;
  if (st) goto done;
  if (in[0]->dtype != in[1]->dtype) {
    st = lc_set_error(LC_EDTYPE, "%s: A and B must have the same dtype, got %s and %s", fn,
                      lc_dtype_name(in[0]->dtype), lc_dtype_name(in[1]->dtype));
    goto done;
  }
  if (bm.m != a.n || bm.nb != a.nb || in[0]->ndim != in[1]->ndim) {
    st = lc_set_error(LC_ESHAPE,
                      "%s: B must be (..., %d, k) with A's batch dims, got %d-D with "
                      "%lldx%lld matrices",
                      fn, (int)a.n, in[1]->ndim, (long long)bm.m, (long long)bm.n);
    goto done;
  }
  if ((st = lc_tensor_new(in[1]->ndim, in[1]->shape, in[1]->dtype, &r))) goto done;
  lc_fint n = a.n, k = bm.n, info = 0;
  if (a.nb == 0 || n == 0 || k == 0) goto done;
  double *w = work_alloc(sizeof(double) * ((size_t)n * n + (size_t)n * k));
  lc_fint *ipiv = work_alloc(sizeof(lc_fint) * (size_t)n);
  if (!w || !ipiv) {
    st = NOMEM(fn);
  } else {
    double *x = w + (size_t)n * n;
    for (int64_t j = 0; j < a.nb; j++) {
      load_cm(a.d, j * n * n, n, n, w, n);
      load_cm(bm.d, j * n * k, n, k, x, n);
      dgetrf_(&n, &n, w, &n, ipiv, &info);
      if (info > 0) {
        char what[96], buf[160];
        snprintf(what, sizeof what, "U[%d,%d] of its LU factorization is zero", (int)info,
                 (int)info);
        st = lc_set_error(LC_EARG, "%s: the input A is singular (%s)", fn,
                          where_(buf, sizeof buf, j, a.nb, what));
        break;
      }
      dgetrs_("N", &n, &k, w, &n, ipiv, x, &n, &info, 1);
      store_rm(r, j * n * k, n, k, x, n, 0);
    }
  }
  free(w);
  free(ipiv);
done:
  lc_release(a.d);
  lc_release(bm.d);
  if (st) {
    lc_release(r);
    return st;
  }
  *out = r;
  return LC_OK;
}

/* gB = A^-T g, gA = -gB X^T */
static lc_status solve_backward(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  lc_gb b = LC_GB_INIT(ctx);
  lc_tensor *A = lc_gb_saved(&b, 0), *X = lc_gb_saved(&b, 1);
  lc_tensor *gb = gb_solve(&b, lc_gb_mT(&b, A), g);
  if (ctx->needs_grad[1]) lc_gb_grad(&b, 1, gb, grad_in);
  if (ctx->needs_grad[0])
    lc_gb_grad(&b, 0, lc_gb_un(&b, LC_NEG, lc_gb_matmul(&b, gb, lc_gb_mT(&b, X))), grad_in);
  return lc_gb_end(&b, grad_in);
}

LINALG_OP(lc_op_linalg_solve, "linalg_solve", "LinalgSolveBackward", 2, 1,
          LC_SAVE_IN(0) | LC_SAVE_OUT(0), solve, solve_backward)

/* ---------------------------------------------------------------- slogdet */

static lc_status slogdet_forward(const lc_op_def *op, int n_in, lc_tensor *const *in,
                                 const lc_op_args *args, lc_tensor **out) {
  (void)op, (void)n_in, (void)args;
  const char *fn = "linalg_slogdet";
  mats a;
  lc_status st = mats_of(fn, "input", in[0], true, &a);
  if (st) return st;
  lc_tensor *lad = NULL, *sgn = NULL;
  double *w = NULL;
  lc_fint *ipiv = NULL;
  if ((st = new_out(in[0], 0, NULL, in[0]->dtype, &lad))) goto done;
  if ((st = new_out(in[0], 0, NULL, in[0]->dtype, &sgn))) goto done;
  lc_fint n = a.n, info = 0;
  w = work_alloc(sizeof(double) * ((size_t)n * n + 2));
  ipiv = work_alloc(sizeof(lc_fint) * ((size_t)n + 1));
  if (!w || !ipiv) {
    st = NOMEM(fn);
    goto done;
  }
  for (int64_t k = 0; k < a.nb; k++) {
    double s = 1, l = 0;
    if (n > 0) {
      load_cm(a.d, k * n * n, n, n, w, n);
      dgetrf_(&n, &n, w, &n, ipiv, &info);
      for (lc_fint i = 0; i < n; i++) {
        double u = w[(size_t)i * n + i];
        if (ipiv[i] != i + 1) s = -s;
        if (u < 0) s = -s;
        l += log(fabs(u));
      }
      if (info > 0) s = 0, l = -INFINITY;
    }
    store_vec(lad, k, 1, &l);
    store_vec(sgn, k, 1, &s);
  }
done:
  free(w);
  free(ipiv);
  lc_release(a.d);
  if (st) {
    lc_release(lad);
    lc_release(sgn);
    return st;
  }
  out[0] = lad;
  out[1] = sgn;
  return LC_OK;
}

/* g[..., None, None] * inv(A)^T */
static lc_status slogdet_backward(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  lc_gb b = LC_GB_INIT(ctx);
  lc_tensor *A = lc_gb_saved(&b, 0);
  lc_tensor *in[1] = {A};
  lc_tensor *it = lc_gb_mT(&b, lc_gb_op(&b, &lc_op_linalg_inv, 1, in, NULL));
  int64_t shape[LC_MAX_DIMS];
  memcpy(shape, g->shape, (size_t)g->ndim * sizeof *shape);
  shape[g->ndim] = shape[g->ndim + 1] = 1;
  lc_tensor *gg = lc_gb_reshape(&b, g, g->ndim + 2, shape);
  lc_gb_grad(&b, 0, lc_gb_bin(&b, LC_MUL, gg, it), grad_in);
  return lc_gb_end(&b, grad_in);
}

LINALG_OP(lc_op_linalg_slogdet, "linalg_slogdet", "LinalgSlogdetBackward", 1, 2, LC_SAVE_IN(0),
          slogdet, slogdet_backward)

/* ---------------------------------------------------------------- cholesky */

static lc_status cholesky_forward(const lc_op_def *op, int n_in, lc_tensor *const *in,
                                  const lc_op_args *args, lc_tensor **out) {
  (void)op, (void)n_in, (void)args;
  const char *fn = "linalg_cholesky";
  mats a;
  lc_status st = mats_of(fn, "input", in[0], true, &a);
  if (st) return st;
  lc_tensor *r = NULL;
  double *w = NULL;
  if ((st = lc_tensor_new(in[0]->ndim, in[0]->shape, in[0]->dtype, &r))) goto done;
  lc_fint n = a.n, info = 0;
  if (a.nb == 0 || n == 0) goto done;
  if (!(w = work_alloc(sizeof(double) * (size_t)n * n))) {
    st = NOMEM(fn);
    goto done;
  }
  for (int64_t k = 0; k < a.nb; k++) {
    load_cm(a.d, k * n * n, n, n, w, n);
    dpotrf_("L", &n, w, &n, &info, 1);
    if (info > 0) {
      char what[96], buf[160];
      snprintf(what, sizeof what, "leading minor of order %d is not positive", (int)info);
      st = lc_set_error(LC_EARG, "%s: the input is not positive-definite (%s)", fn,
                        where_(buf, sizeof buf, k, a.nb, what));
      goto done;
    }
    store_rm(r, k * n * n, n, n, w, n, 1);
  }
done:
  free(w);
  lc_release(a.d);
  if (st) {
    lc_release(r);
    return st;
  }
  *out = r;
  return LC_OK;
}

/* PyTorch's cholesky_backward: gA = L^-T Phi L^-1, Phi = sym-half of tril(L^T gL) */
static lc_status cholesky_backward(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  lc_gb b = LC_GB_INIT(ctx);
  lc_tensor *L = lc_gb_saved(&b, 0);
  lc_tensor *Lt = lc_gb_mT(&b, L);
  lc_tensor *p = gb_tri(&b, &lc_op_tril, lc_gb_matmul(&b, Lt, g), 0);
  p = lc_gb_sc(&b, LC_MUL, lc_gb_bin(&b, LC_ADD, p, lc_gb_mT(&b, gb_tri(&b, &lc_op_tril, p, -1))),
               0.5);
  lc_tensor *x = gb_solve(&b, Lt, p);
  lc_gb_grad(&b, 0, gb_solve_right(&b, x, L), grad_in);
  return lc_gb_end(&b, grad_in);
}

LINALG_OP(lc_op_linalg_cholesky, "linalg_cholesky", "LinalgCholeskyBackward", 1, 1, LC_SAVE_OUT(0),
          cholesky, cholesky_backward)

/* ---------------------------------------------------------------- qr */

static void qr_dims(int mode, lc_fint m, lc_fint n, lc_fint *kq, lc_fint *kr) {
  lc_fint k = m < n ? m : n;
  *kq = mode == 0 ? k : mode == 1 ? m : 0;
  *kr = mode == 1 ? m : k;
}

static lc_status qr_forward(const lc_op_def *op, int n_in, lc_tensor *const *in,
                            const lc_op_args *args, lc_tensor **out) {
  (void)op, (void)n_in;
  const char *fn = "linalg_qr";
  mats a;
  lc_status st = mats_of(fn, "input", in[0], false, &a);
  if (st) return st;
  int mode = (int)args->i[0];
  lc_fint m = a.m, n = a.n, k = m < n ? m : n, kq, kr, info = 0, lw = -1;
  qr_dims(mode, m, n, &kq, &kr);
  int64_t per = (int64_t)m * kq + (int64_t)kr * n;
  lc_tensor *r = NULL;
  double *w = NULL;
  if ((st = new_out(in[0], 1, &per, in[0]->dtype, &r))) goto done;
  if (a.nb == 0 || per == 0) goto done;
  lc_fint cols = n > kq ? n : kq, ld = m > 1 ? m : 1;
  double q1 = 0, q2 = 0, dummy = 0;
  dgeqrf_(&m, &n, &dummy, &ld, &dummy, &q1, &lw, &info);
  if (kq > 0) dorgqr_(&m, &kq, &k, &dummy, &ld, &dummy, &q2, &lw, &info);
  lw = lwork_of(q1 > q2 ? q1 : q2);
  size_t wa = (size_t)ld * cols;
  if (!(w = work_alloc(sizeof(double) * (2 * wa + (size_t)k + (size_t)lw)))) {
    st = NOMEM(fn);
    goto done;
  }
  double *rr = w + wa, *tau = rr + wa, *work = tau + k;
  for (int64_t j = 0; j < a.nb; j++) {
    int64_t off = j * per;
    load_cm(a.d, j * (int64_t)m * n, m, n, w, ld);
    if (k > 0) dgeqrf_(&m, &n, w, &ld, tau, work, &lw, &info);
    /* R: rows 0..kr-1 of the upper triangle (rows past k are zero) */
    memset(rr, 0, sizeof(double) * wa);
    for (lc_fint c = 0; c < n; c++)
      for (lc_fint i = 0; i <= c && i < k; i++)
        rr[(size_t)c * ld + i] = w[(size_t)c * ld + i];
    store_rm(r, off + (int64_t)m * kq, kr, n, rr, ld, 0);
    if (kq > 0) {
      for (size_t i = (size_t)ld * n; i < wa; i++)
        w[i] = 0;
      if (k > 0)
        dorgqr_(&m, &kq, &k, w, &ld, tau, work, &lw, &info);
      else
        for (lc_fint i = 0; i < kq && i < m; i++)
          w[(size_t)i * ld + i] = 1;
      store_rm(r, off, m, kq, w, ld, 0);
    }
  }
done:
  free(w);
  lc_release(a.d);
  if (st) {
    lc_release(r);
    return st;
  }
  *out = r;
  return LC_OK;
}

/* gradient for a square-or-tall (m >= n) reduced QR: (gQ + Q copyltu(M)) R^-T,
 * M = R gR^T - gQ^T Q */
static lc_tensor *qr_grad_tall(lc_gb *b, lc_tensor *Q, lc_tensor *R, lc_tensor *gQ, lc_tensor *gR) {
  lc_tensor *M = lc_gb_bin(b, LC_SUB, lc_gb_matmul(b, R, lc_gb_mT(b, gR)),
                           lc_gb_matmul(b, lc_gb_mT(b, gQ), Q));
  lc_tensor *c = lc_gb_bin(b, LC_ADD, gb_tri(b, &lc_op_tril, M, 0),
                           lc_gb_mT(b, gb_tri(b, &lc_op_tril, M, -1)));
  lc_tensor *t = lc_gb_bin(b, LC_ADD, gQ, lc_gb_matmul(b, Q, c));
  return gb_solve_right(b, t, lc_gb_mT(b, R));
}

static lc_status qr_backward(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  int mode = (int)ctx->args->i[0];
  const lc_meta *in = &ctx->in[0];
  lc_fint m = (lc_fint)in->shape[in->ndim - 2], n = (lc_fint)in->shape[in->ndim - 1], kq, kr;
  qr_dims(mode, m, n, &kq, &kr);
  if (mode == 2 || (mode == 1 && m > n))
    return lc_set_error(LC_EGRAD, "linalg_qr: backward: the gradient is only defined for "
                                  "mode='reduced' (or 'complete' with m <= n)");
  lc_gb b = LC_GB_INIT(ctx);
  lc_tensor *P = lc_gb_saved(&b, 0);
  int64_t qs[2] = {m, kq}, rs[2] = {kr, n};
  lc_tensor *Q = gb_part(&b, P, 0, (int64_t)m * kq, 2, qs);
  lc_tensor *R = gb_part(&b, P, (int64_t)m * kq, (int64_t)kr * n, 2, rs);
  lc_tensor *gQ = gb_part(&b, g, 0, (int64_t)m * kq, 2, qs);
  lc_tensor *gR = gb_part(&b, g, (int64_t)m * kq, (int64_t)kr * n, 2, rs);
  lc_tensor *gA;
  if (m >= n) {
    gA = qr_grad_tall(&b, Q, R, gQ, gR);
  } else {
    /* A = [X | Y], R = [U | V]: gY = Q gV, gX = tall-grad(gQ + Y gV^T, gU) */
    lc_op_args sx = {.i = {in->ndim - 1, 0, m, 1}, .ni = 4};
    lc_op_args sy = {.i = {in->ndim - 1, m, n, 1}, .ni = 4};
    lc_tensor *A = NULL;
    if (!b.st) {
      /* Y = Q V (the input itself is not saved) */
      A = lc_gb_matmul(&b, Q, R);
    }
    lc_tensor *t1[1] = {A}, *t2[1] = {R}, *t3[1] = {gR};
    lc_tensor *Y = lc_gb_op(&b, &lc_op_slice, 1, t1, &sy);
    lc_tensor *U = lc_gb_op(&b, &lc_op_slice, 1, t2, &sx);
    lc_tensor *gU = lc_gb_op(&b, &lc_op_slice, 1, t3, &sx);
    lc_tensor *gV = lc_gb_op(&b, &lc_op_slice, 1, t3, &sy);
    lc_tensor *gX = qr_grad_tall(
        &b, Q, U, lc_gb_bin(&b, LC_ADD, gQ, lc_gb_matmul(&b, Y, lc_gb_mT(&b, gV))), gU);
    lc_tensor *gY = lc_gb_matmul(&b, Q, gV);
    lc_tensor *parts[2] = {gX, gY};
    lc_op_args ca = {.i = {in->ndim - 1}, .ni = 1};
    gA = lc_gb_op(&b, &lc_op_cat, 2, parts, &ca);
  }
  lc_gb_grad(&b, 0, gA, grad_in);
  return lc_gb_end(&b, grad_in);
}

LINALG_OP(lc_op_linalg_qr, "linalg_qr", "LinalgQrBackward", 1, 1, LC_SAVE_OUT(0), qr, qr_backward)

/* ---------------------------------------------------------------- eigh */

static lc_status eigh_forward(const lc_op_def *op, int n_in, lc_tensor *const *in,
                              const lc_op_args *args, lc_tensor **out) {
  (void)op, (void)n_in;
  const char *fn = "linalg_eigh";
  mats a;
  lc_status st = mats_of(fn, "input", in[0], true, &a);
  if (st) return st;
  lc_fint n = a.n, info = 0, lw = -1, liw = -1, iq = 0;
  int64_t per = (int64_t)n + (int64_t)n * n;
  const char *uplo = args->i[0] ? "U" : "L";
  lc_tensor *r = NULL;
  double *w = NULL;
  lc_fint *iw = NULL;
  if ((st = new_out(in[0], 1, &per, in[0]->dtype, &r))) goto done;
  if (a.nb == 0 || n == 0) goto done;
  double q = 0, dummy = 0;
  dsyevd_("V", uplo, &n, &dummy, &n, &dummy, &q, &lw, &iq, &liw, &info, 1, 1);
  lw = lwork_of(q);
  liw = iq > 1 ? iq : 1;
  w = work_alloc(sizeof(double) * ((size_t)n * n + (size_t)n + (size_t)lw));
  iw = work_alloc(sizeof(lc_fint) * (size_t)liw);
  if (!w || !iw) {
    st = NOMEM(fn);
    goto done;
  }
  double *ev = w + (size_t)n * n, *work = ev + n;
  for (int64_t k = 0; k < a.nb; k++) {
    load_cm(a.d, k * n * n, n, n, w, n);
    dsyevd_("V", uplo, &n, w, &n, ev, work, &lw, iw, &liw, &info, 1, 1);
    if (info != 0) {
      char buf[160];
      st = lc_set_error(LC_EARG, "%s: the algorithm failed to converge (%s)", fn,
                        where_(buf, sizeof buf, k, a.nb, "dsyevd"));
      goto done;
    }
    store_vec(r, k * per, n, ev);
    store_rm(r, k * per + n, n, n, w, n, 0);
  }
done:
  free(w);
  free(iw);
  lc_release(a.d);
  if (st) {
    lc_release(r);
    return st;
  }
  *out = r;
  return LC_OK;
}

/* Whether g is zero outside [start, start + len) of its last dim: only the values' gradient
 * reached a packed eigh/svd output (PyTorch's undefined gV / gU, gVh: eigvalsh, svdvals, or
 * vectors unused). The backward is then V diag(gL) V^T (U diag(gS) Vh), which, unlike the full
 * formula, stays finite where values repeat (the vector terms would divide 0 by 0 there). */
static bool only_values_grad(lc_gb *b, const lc_tensor *g, int64_t start, int64_t len) {
  if (b->st) return false;
  lc_tensor *hold = NULL;
  const lc_tensor *c = NULL;
  if (dense(g, LC_FLOAT64, &hold, &c)) return false; /* no copy: the full formula */
  const double *v = (const double *)lc_data(c);
  int64_t per = g->shape[g->ndim - 1], rows = per ? g->numel / per : 0;
  bool zero = true;
  for (int64_t r = 0; r < rows && zero; r++)
    for (int64_t j = 0; j < per; j++)
      if ((j < start || j >= start + len) && v[r * per + j] != 0) {
        zero = false;
        break;
      }
  lc_release(hold);
  return zero;
}


/* gA = V (diag(gL) + skew(V^T gV) / E) V^T, skew(X) = (X - X^T) / 2, E_ij = L_j - L_i */
static lc_status eigh_backward(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  const lc_meta *in = &ctx->in[0];
  int64_t n = in->shape[in->ndim - 1], vs[2] = {n, n};
  lc_gb b = LC_GB_INIT(ctx);
  lc_tensor *P = lc_gb_saved(&b, 0);
  lc_tensor *L = gb_part(&b, P, 0, n, 1, &n), *V = gb_part(&b, P, n, n * n, 2, vs);
  lc_tensor *gL = gb_part(&b, g, 0, n, 1, &n), *gV = gb_part(&b, g, n, n * n, 2, vs);
  lc_dtype dt = in->dtype;
  lc_tensor *eye = gb_eye(&b, n, dt);
  if (only_values_grad(&b, g, 0, n)) {
    lc_tensor *X = lc_gb_bin(&b, LC_MUL, gb_unsq(&b, gL, true), eye);
    lc_gb_grad(&b, 0, lc_gb_matmul(&b, lc_gb_matmul(&b, V, X), lc_gb_mT(&b, V)), grad_in);
    return lc_gb_end(&b, grad_in);
  }
  lc_tensor *is_d = lc_gb_sc(&b, LC_NE, eye, 0);
  lc_tensor *E = lc_gb_bin(&b, LC_SUB, gb_unsq(&b, L, true), gb_unsq(&b, L, false));
  E = lc_gb_where(&b, is_d, lc_gb_bin(&b, LC_ADD, lc_gb_mask(&b, is_d, E), eye), E);
  lc_tensor *X = lc_gb_matmul(&b, lc_gb_mT(&b, V), gV);
  X = lc_gb_sc(&b, LC_MUL, lc_gb_bin(&b, LC_SUB, X, lc_gb_mT(&b, X)), 0.5);
  X = lc_gb_mask(&b, lc_gb_un(&b, LC_LOGICAL_NOT, is_d), lc_gb_bin(&b, LC_DIV, X, E));
  X = lc_gb_bin(&b, LC_ADD, X, lc_gb_bin(&b, LC_MUL, gb_unsq(&b, gL, true), eye));
  lc_gb_grad(&b, 0, lc_gb_matmul(&b, lc_gb_matmul(&b, V, X), lc_gb_mT(&b, V)), grad_in);
  return lc_gb_end(&b, grad_in);
}

LINALG_OP(lc_op_linalg_eigh, "linalg_eigh", "LinalgEighBackward", 1, 1, LC_SAVE_OUT(0), eigh,
          eigh_backward)

/* ---------------------------------------------------------------- svd */

static void svd_dims(bool full, lc_fint m, lc_fint n, lc_fint *k, lc_fint *ku, lc_fint *kv) {
  *k = m < n ? m : n;
  *ku = full ? m : *k;
  *kv = full ? n : *k;
}

static lc_status svd_forward(const lc_op_def *op, int n_in, lc_tensor *const *in,
                             const lc_op_args *args, lc_tensor **out) {
  (void)op, (void)n_in;
  const char *fn = "linalg_svd";
  mats a;
  lc_status st = mats_of(fn, "input", in[0], false, &a);
  if (st) return st;
  bool full = args->i[0] != 0;
  lc_fint m = a.m, n = a.n, k, ku, kv, info = 0, lw = -1;
  svd_dims(full, m, n, &k, &ku, &kv);
  int64_t per = (int64_t)m * ku + k + (int64_t)kv * n;
  lc_tensor *r = NULL;
  double *w = NULL;
  lc_fint *iw = NULL;
  if ((st = new_out(in[0], 1, &per, in[0]->dtype, &r))) goto done;
  if (a.nb == 0 || per == 0) goto done;
  if (k == 0) { /* full matrices of an empty side: identities */
    for (int64_t j = 0; j < a.nb; j++) {
      double one = 1;
      for (lc_fint i = 0; i < ku; i++)
        store_vec(r, j * per + (int64_t)i * ku + i, 1, &one);
      for (lc_fint i = 0; i < kv; i++)
        store_vec(r, j * per + (int64_t)m * ku + (int64_t)i * n + i, 1, &one);
    }
    goto done;
  }
  const char *jobz = full ? "A" : "S";
  lc_fint ldu = m, ldvt = kv;
  double q = 0, dummy = 0;
  dgesdd_(jobz, &m, &n, &dummy, &m, &dummy, &dummy, &ldu, &dummy, &ldvt, &q, &lw, &info, &info, 1);
  lw = lwork_of(q);
  size_t sz = (size_t)m * n + (size_t)k + (size_t)m * ku + (size_t)kv * n + (size_t)lw;
  w = work_alloc(sizeof(double) * sz);
  iw = work_alloc(sizeof(lc_fint) * 8 * (size_t)k);
  if (!w || !iw) {
    st = NOMEM(fn);
    goto done;
  }
  double *s = w + (size_t)m * n, *u = s + k, *vt = u + (size_t)m * ku, *work = vt + (size_t)kv * n;
  for (int64_t j = 0; j < a.nb; j++) {
    load_cm(a.d, j * (int64_t)m * n, m, n, w, m);
    dgesdd_(jobz, &m, &n, w, &m, s, u, &ldu, vt, &ldvt, work, &lw, iw, &info, 1);
    if (info != 0) {
      char buf[160];
      st = lc_set_error(LC_EARG, "%s: the algorithm failed to converge (%s)", fn,
                        where_(buf, sizeof buf, j, a.nb, "dgesdd"));
      goto done;
    }
    int64_t off = j * per;
    store_rm(r, off, m, ku, u, ldu, 0);
    store_vec(r, off + (int64_t)m * ku, k, s);
    store_rm(r, off + (int64_t)m * ku + k, kv, n, vt, ldvt, 0);
  }
done:
  free(w);
  free(iw);
  lc_release(a.d);
  if (st) {
    lc_release(r);
    return st;
  }
  *out = r;
  return LC_OK;
}

/* PyTorch's svd_backward (real case), on the reduced U, S, Vh (full_matrices narrowed). */
static lc_status svd_backward(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  const lc_meta *in = &ctx->in[0];
  bool full = ctx->args->i[0] != 0;
  lc_fint m = (lc_fint)in->shape[in->ndim - 2], n = (lc_fint)in->shape[in->ndim - 1], k, ku, kv;
  svd_dims(full, m, n, &k, &ku, &kv);
  lc_gb b = LC_GB_INIT(ctx);
  if (k == 0) {
    lc_gb_grad(&b, 0, lc_gb_zeros(&b, in, in->dtype), grad_in);
    return lc_gb_end(&b, grad_in);
  }
  lc_tensor *P = lc_gb_saved(&b, 0);
  int64_t us[2] = {m, ku}, vs[2] = {kv, n}, kk = k;
  int64_t ou = (int64_t)m * ku, ov = ou + k;
  lc_tensor *U = gb_part(&b, P, 0, ou, 2, us), *S = gb_part(&b, P, ou, k, 1, &kk);
  lc_tensor *Vh = gb_part(&b, P, ov, (int64_t)kv * n, 2, vs);
  lc_tensor *gU = gb_part(&b, g, 0, ou, 2, us), *gS = gb_part(&b, g, ou, k, 1, &kk);
  lc_tensor *gVh = gb_part(&b, g, ov, (int64_t)kv * n, 2, vs);
  if (full) {
    lc_op_args su = {.i = {in->ndim - 1, 0, k, 1}, .ni = 4};
    lc_op_args sv = {.i = {in->ndim - 2, 0, k, 1}, .ni = 4};
    lc_tensor *t[4] = {U, gU, Vh, gVh};
    U = lc_gb_op(&b, &lc_op_slice, 1, &t[0], &su);
    gU = lc_gb_op(&b, &lc_op_slice, 1, &t[1], &su);
    Vh = lc_gb_op(&b, &lc_op_slice, 1, &t[2], &sv);
    gVh = lc_gb_op(&b, &lc_op_slice, 1, &t[3], &sv);
  }
  if (only_values_grad(&b, g, ou, k)) {
    lc_tensor *US = lc_gb_bin(&b, LC_MUL, U, gb_unsq(&b, gS, true));
    lc_gb_grad(&b, 0, lc_gb_matmul(&b, US, Vh), grad_in);
    return lc_gb_end(&b, grad_in);
  }
  lc_tensor *V = lc_gb_mT(&b, Vh), *gV = lc_gb_mT(&b, gVh);
  lc_tensor *UhgU = lc_gb_matmul(&b, lc_gb_mT(&b, U), gU);
  UhgU = lc_gb_bin(&b, LC_SUB, UhgU, lc_gb_mT(&b, UhgU));
  lc_tensor *VhgV = lc_gb_matmul(&b, Vh, gV);
  VhgV = lc_gb_bin(&b, LC_SUB, VhgV, lc_gb_mT(&b, VhgV));
  lc_tensor *S2 = lc_gb_bin(&b, LC_MUL, S, S);
  lc_tensor *eye = gb_eye(&b, k, in->dtype), *is_d = lc_gb_sc(&b, LC_NE, eye, 0);
  lc_tensor *E = lc_gb_bin(&b, LC_SUB, gb_unsq(&b, S2, true), gb_unsq(&b, S2, false));
  E = lc_gb_where(&b, is_d, lc_gb_bin(&b, LC_ADD, lc_gb_mask(&b, is_d, E), eye), E);
  lc_tensor *Sr = gb_unsq(&b, S, true), *Sc = gb_unsq(&b, S, false);
  lc_tensor *gA =
      lc_gb_bin(&b, LC_ADD, lc_gb_bin(&b, LC_MUL, UhgU, Sr), lc_gb_bin(&b, LC_MUL, Sc, VhgV));
  gA = lc_gb_mask(&b, lc_gb_un(&b, LC_LOGICAL_NOT, is_d), lc_gb_bin(&b, LC_DIV, gA, E));
  gA = lc_gb_bin(&b, LC_ADD, gA, lc_gb_bin(&b, LC_MUL, gb_unsq(&b, gS, true), eye));
  if (m > k) {
    gA = lc_gb_matmul(&b, U, gA);
    lc_tensor *gUS = lc_gb_bin(&b, LC_DIV, gU, Sr);
    gA = lc_gb_bin(&b, LC_ADD, gA, gUS);
    gA = lc_gb_bin(&b, LC_SUB, gA, lc_gb_matmul(&b, U, lc_gb_matmul(&b, lc_gb_mT(&b, U), gUS)));
    gA = lc_gb_matmul(&b, gA, Vh);
  } else if (n > k) {
    gA = lc_gb_matmul(&b, gA, Vh);
    lc_tensor *gVS = lc_gb_mT(&b, lc_gb_bin(&b, LC_DIV, gV, Sr));
    gA = lc_gb_bin(&b, LC_ADD, gA, gVS);
    gA = lc_gb_bin(&b, LC_SUB, gA, lc_gb_matmul(&b, lc_gb_matmul(&b, gVS, V), Vh));
    gA = lc_gb_matmul(&b, U, gA);
  } else {
    gA = lc_gb_matmul(&b, U, lc_gb_matmul(&b, gA, Vh));
  }
  lc_gb_grad(&b, 0, gA, grad_in);
  return lc_gb_end(&b, grad_in);
}

LINALG_OP(lc_op_linalg_svd, "linalg_svd", "LinalgSvdBackward", 1, 1, LC_SAVE_OUT(0), svd,
          svd_backward)

/* ---------------------------------------------------------------- lstsq */

static lc_status lstsq_forward(const lc_op_def *op, int n_in, lc_tensor *const *in,
                               const lc_op_args *args, lc_tensor **out) {
  (void)op, (void)n_in;
  const char *fn = "linalg_lstsq";
  mats a, bm = {0};
  lc_status st = mats_of(fn, "A", in[0], false, &a);
  if (!st) st = mats_of(fn, "B", in[1], false, &bm);
  lc_tensor *r = NULL;
  double *w = NULL;
  lc_fint *iw = NULL;
  if (st) goto done;
  if (in[0]->dtype != in[1]->dtype) {
    st = lc_set_error(LC_EDTYPE, "%s: A and B must have the same dtype, got %s and %s", fn,
                      lc_dtype_name(in[0]->dtype), lc_dtype_name(in[1]->dtype));
    goto done;
  }
  if (bm.m != a.m || bm.nb != a.nb || in[0]->ndim != in[1]->ndim) {
    st = lc_set_error(LC_ESHAPE,
                      "%s: B must be (..., %d, k) with A's batch dims, got %d-D with "
                      "%lldx%lld matrices",
                      fn, (int)a.m, in[1]->ndim, (long long)bm.m, (long long)bm.n);
    goto done;
  }
  lc_fint m = a.m, n = a.n, k = bm.n, info = 0, lw = -1, rank = 0, iq = 0;
  int64_t tail[2] = {n, k};
  if ((st = new_out(in[0], 2, tail, in[0]->dtype, &r))) goto done;
  if (a.nb == 0 || n == 0 || k == 0) goto done;
  if (m == 0) {
    memset(lc_data(r), 0, (size_t)r->numel * lc_dtype_size(r->dtype));
    goto done;
  }
  lc_fint ldb = m > n ? m : n, mn = m < n ? m : n;
  double rcond = args->f[0] >= 0 ? args->f[0]
                                 : (in[0]->dtype == LC_FLOAT64 ? 2.220446049250313e-16
                                                               : 1.1920928955078125e-07) *
                                       (double)ldb;
  double q = 0, dummy = 0;
  dgelsd_(&m, &n, &k, &dummy, &m, &dummy, &ldb, &dummy, &rcond, &rank, &q, &lw, &iq, &info);
  lw = lwork_of(q);
  lc_fint liw = iq > 1 ? iq : 1;
  w = work_alloc(sizeof(double) * ((size_t)m * n + (size_t)ldb * k + (size_t)mn + (size_t)lw));
  iw = work_alloc(sizeof(lc_fint) * (size_t)liw);
  if (!w || !iw) {
    st = NOMEM(fn);
    goto done;
  }
  double *x = w + (size_t)m * n, *s = x + (size_t)ldb * k, *work = s + mn;
  for (int64_t j = 0; j < a.nb; j++) {
    load_cm(a.d, j * (int64_t)m * n, m, n, w, m);
    memset(x, 0, sizeof(double) * (size_t)ldb * k);
    load_cm(bm.d, j * (int64_t)m * k, m, k, x, ldb);
    dgelsd_(&m, &n, &k, w, &m, x, &ldb, s, &rcond, &rank, work, &lw, iw, &info);
    if (info != 0) {
      char buf[160];
      st = lc_set_error(LC_EARG, "%s: the algorithm failed to converge (%s)", fn,
                        where_(buf, sizeof buf, j, a.nb, "dgelsd"));
      goto done;
    }
    store_rm(r, j * (int64_t)n * k, n, k, x, ldb, 0);
  }
done:
  free(w);
  free(iw);
  lc_release(a.d);
  lc_release(bm.d);
  if (st) {
    lc_release(r);
    return st;
  }
  *out = r;
  return LC_OK;
}

LINALG_OP(lc_op_linalg_lstsq, "linalg_lstsq", NULL, 2, 1, 0, lstsq, NULL)
