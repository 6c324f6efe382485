/*
 * ops/lapack.c - the public lucid.linalg functions (lucid_core.h, "linear algebra"): pointer and
 * shape checks, batch broadcasting and vector right-hand sides here, then lc_apply records the
 * factorization ops of src/kernels/lapack.c. Functions with several results slice them out of
 * the op's packed output (recorded slices, so autograd sees each result). det, pinv,
 * matrix_rank, matrix_power, the norms and cross are compositions of recorded ops: their
 * gradients (and higher-order gradients) come from the ops they are made of.
 */
#include "../kernels/lapack.h"
#include "../autograd/autograd.h"

#include <math.h>
#include <string.h>

#define TRY(call)                                                                                  \
  do {                                                                                             \
    if ((st = (call)) != LC_OK) goto done;                                                         \
  } while (0)

static lc_status need(const char *fn, const lc_tensor *a, const void *out) {
  if (!a || !out) return lc_set_error(LC_EARG, "%s: NULL tensor argument", fn);
  return LC_OK;
}

static lc_status need_mat(const char *fn, const char *name, const lc_tensor *a, bool square) {
  if (a->ndim < 2)
    return lc_set_error(LC_ESHAPE, "%s: %s must have at least 2 dimensions, got %d", fn, name,
                        a->ndim);
  if (square && a->shape[a->ndim - 1] != a->shape[a->ndim - 2])
    return lc_set_error(LC_ESHAPE, "%s: %s must be a batch of square matrices, got %lldx%lld", fn,
                        name, (long long)a->shape[a->ndim - 2], (long long)a->shape[a->ndim - 1]);
  return LC_OK;
}

static lc_status apply1(const lc_op_def *op, const lc_tensor *a, const lc_op_args *args,
                        lc_tensor **out) {
  lc_tensor *in[1] = {(lc_tensor *)a};
  return lc_apply(op, 1, in, args, out);
}

/* P[..., start:start+len] reshaped to (batch..., tail...) */
static lc_status part(const lc_tensor *P, int64_t start, int64_t len, int ntail,
                      const int64_t *tail, lc_tensor **out) {
  lc_tensor *s = NULL;
  lc_status st = lc_slice(P, P->ndim - 1, start, start + len, 1, &s);
  if (st) return st;
  int64_t shape[LC_MAX_DIMS];
  int nd = P->ndim - 1;
  memcpy(shape, P->shape, (size_t)nd * sizeof *shape);
  memcpy(shape + nd, tail, (size_t)ntail * sizeof *shape);
  st = lc_reshape(s, nd + ntail, shape, out);
  lc_release(s);
  return st;
}

/* a and b expanded to a common batch (all dims but their last `keep` ones). */
static lc_status batch_expand(const char *fn, const lc_tensor *a, const lc_tensor *b, int keep,
                              lc_tensor **ea, lc_tensor **eb) {
  int na = a->ndim - keep, nb = b->ndim - keep, nd = 0;
  int64_t bs[LC_MAX_DIMS], sa[LC_MAX_DIMS], sb[LC_MAX_DIMS];
  if (lc_broadcast_shapes(na, a->shape, nb, b->shape, &nd, bs, fn) != LC_OK)
    return lc_set_error(LC_ESHAPE, "%s: the batch dims of A and B do not broadcast", fn);
  if (nd + keep > LC_MAX_DIMS) return lc_set_error(LC_ESHAPE, "%s: too many dims", fn);
  memcpy(sa, bs, (size_t)nd * sizeof *sa);
  memcpy(sb, bs, (size_t)nd * sizeof *sb);
  memcpy(sa + nd, a->shape + na, (size_t)keep * sizeof *sa);
  memcpy(sb + nd, b->shape + nb, (size_t)keep * sizeof *sb);
  lc_status st = lc_expand(a, nd + keep, sa, ea);
  if (st) return st;
  if ((st = lc_expand(b, nd + keep, sb, eb))) {
    lc_release(*ea);
    *ea = NULL;
  }
  return st;
}

/* ---------------------------------------------------------------- inverses and solves */

lc_status lc_linalg_inv(const lc_tensor *A, lc_tensor **out) {
  lc_status st = need("linalg_inv", A, out);
  if (!st) st = need_mat("linalg_inv", "input", A, true);
  return st ? st : apply1(&lc_op_linalg_inv, A, NULL, out);
}

/* B is a vector (PyTorch 1.13's rule): 1-D, or A's shape without its last dim. */
static bool rhs_is_vector(const lc_tensor *A, const lc_tensor *B) {
  if (B->ndim == 1) return true;
  if (B->ndim != A->ndim - 1) return false;
  for (int d = 0; d < B->ndim; d++)
    if (B->shape[d] != A->shape[d]) return false;
  return true;
}

static lc_status solve_like(const char *fn, const lc_op_def *op, const lc_tensor *A,
                            const lc_tensor *B, double rcond, lc_tensor **out) {
  lc_status st = need(fn, A, out);
  if (!st && !B) st = lc_set_error(LC_EARG, "%s: NULL tensor argument", fn);
  if (!st) st = need_mat(fn, "A", A, op == &lc_op_linalg_solve);
  if (st) return st;
  bool vec = rhs_is_vector(A, B);
  lc_tensor *Bm = NULL, *ea = NULL, *eb = NULL, *x = NULL;
  if (vec)
    TRY(lc_unsqueeze(B, B->ndim, &Bm));
  else
    Bm = lc_retain((lc_tensor *)B);
  TRY(need_mat(fn, "B", Bm, false));
  TRY(batch_expand(fn, A, Bm, 2, &ea, &eb));
  lc_op_args a;
  memset(&a, 0, sizeof a);
  a.f[0] = rcond;
  lc_tensor *in[2] = {ea, eb};
  TRY(lc_apply(op, 2, in, &a, &x));
  if (vec)
    st = lc_squeeze_dim(x, x->ndim - 1, out);
  else
    *out = lc_retain(x);
done:
  lc_release(Bm);
  lc_release(ea);
  lc_release(eb);
  lc_release(x);
  return st;
}

lc_status lc_linalg_solve(const lc_tensor *A, const lc_tensor *B, lc_tensor **out) {
  return solve_like("linalg_solve", &lc_op_linalg_solve, A, B, 0, out);
}

/* The values are gelsd's; under autograd the gradient is PyTorch's, that of pinv(A) @ B, added
 * as pinv(A) @ B - detach(pinv(A) @ B) (zero in value). */
lc_status lc_linalg_lstsq(const lc_tensor *A, const lc_tensor *B, double rcond, lc_tensor **out) {
  lc_tensor *x = NULL;
  lc_status st = solve_like("linalg_lstsq", &lc_op_linalg_lstsq, A, B, rcond, &x);
  if (st || !lc_grad_mode() || !(lc_requires_grad(A) || lc_requires_grad(B))) {
    if (!st) *out = x;
    return st;
  }
  lc_tensor *p = NULL, *pb = NULL, *pd = NULL, *z = NULL;
  TRY(lc_linalg_pinv(A, -1, -1, false, &p));
  TRY(lc_matmul(p, B, &pb));
  TRY(lc_detach(pb, &pd));
  TRY(lc_binary(LC_SUB, pb, pd, &z));
  st = lc_binary(LC_ADD, x, z, out);
done:
  lc_release(x);
  lc_release(p);
  lc_release(pb);
  lc_release(pd);
  lc_release(z);
  return st;
}

/* ---------------------------------------------------------------- determinants */

lc_status lc_linalg_slogdet(const lc_tensor *A, lc_tensor **sign, lc_tensor **logabsdet) {
  lc_status st = need("linalg_slogdet", A, sign);
  if (!st && !logabsdet) st = lc_set_error(LC_EARG, "linalg_slogdet: NULL tensor argument");
  if (!st) st = need_mat("linalg_slogdet", "input", A, true);
  if (st) return st;
  lc_tensor *in[1] = {(lc_tensor *)A}, *outs[2] = {NULL, NULL};
  if ((st = lc_apply(&lc_op_linalg_slogdet, 1, in, NULL, outs))) return st;
  *logabsdet = outs[0];
  *sign = outs[1];
  return LC_OK;
}

/* Whether some matrix of the batch has determinant sign 0 (exactly singular). */
static bool any_zero(const lc_tensor *sign) {
  for (int64_t i = 0; i < sign->numel; i++) {
    double v = sign->dtype == LC_FLOAT64 ? ((const double *)lc_data(sign))[i]
                                         : ((const float *)lc_data(sign))[i];
    if (v == 0) return true;
  }
  return false;
}

/* det(U) det(Vh) prod(S) of A's SVD: det with a gradient that exists at singular matrices,
 * PyTorch's adjugate det(U) det(Vh) U diag(prod of the other S) Vh (prod's gradient is exact
 * with zeros; det(U) det(Vh) = +-1 is a constant, taken from the detached factors). */
static lc_status det_by_svd(const lc_tensor *A, lc_tensor **out) {
  lc_tensor *U = NULL, *S = NULL, *Vh = NULL, *Ud = NULL, *Vd = NULL, *su = NULL, *sv = NULL,
            *l = NULL, *c = NULL, *p = NULL;
  lc_status st;
  lc_reduce_opts last = {.ndims = 1, .dims = {-1}};
  TRY(lc_linalg_svd(A, false, &U, &S, &Vh));
  TRY(lc_detach(U, &Ud));
  TRY(lc_detach(Vh, &Vd));
  TRY(lc_linalg_slogdet(Ud, &su, &l));
  lc_release(l), l = NULL;
  TRY(lc_linalg_slogdet(Vd, &sv, &l));
  TRY(lc_binary(LC_MUL, su, sv, &c));
  TRY(lc_reduce(LC_PROD, S, &last, &p));
  st = lc_binary(LC_MUL, c, p, out);
done:
  lc_release(U), lc_release(S), lc_release(Vh), lc_release(Ud), lc_release(Vd);
  lc_release(su), lc_release(sv), lc_release(l), lc_release(c), lc_release(p);
  return st;
}

/* det = sign * exp(logabsdet), whose gradient det * inv(A)^T an exactly singular matrix does not
 * have. When A needs a gradient and a matrix of the batch is singular, the value stays the LU's
 * and the gradient is det_by_svd's, added as d - detach(d) (zero in value), as lstsq does. */
lc_status lc_linalg_det(const lc_tensor *A, lc_tensor **out) {
  lc_tensor *s = NULL, *l = NULL, *e = NULL, *v = NULL, *d = NULL, *dd = NULL, *z = NULL;
  lc_status st = need("linalg_det", A, out);
  if (!st) st = need_mat("linalg_det", "input", A, true);
  if (st) return st;
  TRY(lc_linalg_slogdet(A, &s, &l));
  if (!lc_grad_mode() || !lc_requires_grad(A) || !any_zero(s)) {
    TRY(lc_unary(LC_EXP, l, &e));
    st = lc_binary(LC_MUL, s, e, out);
    goto done;
  }
  lc_tensor *sd = NULL, *ld = NULL;
  TRY(lc_detach(s, &sd));
  st = lc_detach(l, &ld);
  lc_release(s), lc_release(l);
  s = sd, l = ld;
  if (st) goto done;
  TRY(lc_unary(LC_EXP, l, &e));
  TRY(lc_binary(LC_MUL, s, e, &v));
  TRY(det_by_svd(A, &d));
  TRY(lc_detach(d, &dd));
  TRY(lc_binary(LC_SUB, d, dd, &z));
  st = lc_binary(LC_ADD, v, z, out);
done:
  lc_release(s), lc_release(l), lc_release(e), lc_release(v);
  lc_release(d), lc_release(dd), lc_release(z);
  return st;
}

/* ---------------------------------------------------------------- factorizations */

lc_status lc_linalg_cholesky(const lc_tensor *A, bool upper, lc_tensor **out) {
  lc_status st = need("linalg_cholesky", A, out);
  if (!st) st = need_mat("linalg_cholesky", "input", A, true);
  if (st) return st;
  if (!upper) return apply1(&lc_op_linalg_cholesky, A, NULL, out);
  lc_tensor *L = NULL;
  if ((st = apply1(&lc_op_linalg_cholesky, A, NULL, &L))) return st;
  st = lc_transpose(L, L->ndim - 2, L->ndim - 1, out);
  lc_release(L);
  return st;
}

lc_status lc_linalg_qr(const lc_tensor *A, lc_linalg_qr_mode mode, lc_tensor **Q, lc_tensor **R) {
  lc_status st = need("linalg_qr", A, Q);
  if (!st && !R) st = lc_set_error(LC_EARG, "linalg_qr: NULL tensor argument");
  if (!st) st = need_mat("linalg_qr", "input", A, false);
  if (!st && (mode < LC_QR_REDUCED || mode > LC_QR_R))
    st = lc_set_error(LC_EARG, "linalg_qr: unknown mode %d", (int)mode);
  if (st) return st;
  int64_t m = A->shape[A->ndim - 2], n = A->shape[A->ndim - 1], k = m < n ? m : n;
  int64_t kq = mode == LC_QR_REDUCED ? k : mode == LC_QR_COMPLETE ? m : 0;
  int64_t kr = mode == LC_QR_COMPLETE ? m : k;
  lc_op_args a = {.i = {mode}, .ni = 1};
  lc_tensor *P = NULL, *q = NULL;
  TRY(apply1(&lc_op_linalg_qr, A, &a, &P));
  int64_t qs[2] = {m, kq}, rs[2] = {kr, n};
  TRY(part(P, 0, m * kq, 2, qs, &q));
  TRY(part(P, m * kq, kr * n, 2, rs, R));
  *Q = q, q = NULL;
done:
  lc_release(P);
  lc_release(q);
  return st;
}

static lc_status eigh_run(const char *fn, const lc_tensor *A, bool upper, lc_tensor **L,
                          lc_tensor **V) {
  lc_status st = need(fn, A, L);
  if (!st) st = need_mat(fn, "input", A, true);
  if (st) return st;
  int64_t n = A->shape[A->ndim - 1], vs[2] = {n, n};
  lc_op_args a = {.i = {upper}, .ni = 1};
  lc_tensor *P = NULL, *l = NULL;
  TRY(apply1(&lc_op_linalg_eigh, A, &a, &P));
  TRY(part(P, 0, n, 1, &n, &l));
  if (V) TRY(part(P, n, n * n, 2, vs, V));
  *L = l, l = NULL;
done:
  lc_release(P);
  lc_release(l);
  return st;
}

lc_status lc_linalg_eigh(const lc_tensor *A, bool upper, lc_tensor **L, lc_tensor **V) {
  if (!V) return lc_set_error(LC_EARG, "linalg_eigh: NULL tensor argument");
  return eigh_run("linalg_eigh", A, upper, L, V);
}

lc_status lc_linalg_eigvalsh(const lc_tensor *A, bool upper, lc_tensor **L) {
  return eigh_run("linalg_eigvalsh", A, upper, L, NULL);
}

static lc_status svd_run(const char *fn, const lc_tensor *A, bool full, lc_tensor **U,
                         lc_tensor **S, lc_tensor **Vh) {
  lc_status st = need(fn, A, S);
  if (!st) st = need_mat(fn, "input", A, false);
  if (st) return st;
  int64_t m = A->shape[A->ndim - 2], n = A->shape[A->ndim - 1], k = m < n ? m : n;
  int64_t ku = full ? m : k, kv = full ? n : k;
  lc_op_args a = {.i = {full}, .ni = 1};
  lc_tensor *P = NULL, *u = NULL, *s = NULL;
  int64_t us[2] = {m, ku}, vs[2] = {kv, n};
  TRY(apply1(&lc_op_linalg_svd, A, &a, &P));
  TRY(part(P, m * ku, k, 1, &k, &s));
  if (U) TRY(part(P, 0, m * ku, 2, us, &u));
  if (Vh) TRY(part(P, m * ku + k, kv * n, 2, vs, Vh));
  if (U) *U = u, u = NULL;
  *S = s, s = NULL;
done:
  lc_release(P);
  lc_release(u);
  lc_release(s);
  return st;
}

lc_status lc_linalg_svd(const lc_tensor *A, bool full_matrices, lc_tensor **U, lc_tensor **S,
                        lc_tensor **Vh) {
  if (!U || !Vh) return lc_set_error(LC_EARG, "linalg_svd: NULL tensor argument");
  return svd_run("linalg_svd", A, full_matrices, U, S, Vh);
}

lc_status lc_linalg_svdvals(const lc_tensor *A, lc_tensor **S) {
  return svd_run("linalg_svdvals", A, false, NULL, S, NULL);
}

/* ---------------------------------------------------------------- pinv, rank, power */

static lc_status reduce_last(lc_reduce_op op, const lc_tensor *x, bool keepdim, lc_tensor **out) {
  lc_reduce_opts o;
  memset(&o, 0, sizeof o);
  o.ndims = 1;
  o.dims[0] = -1;
  o.keepdim = keepdim;
  return lc_reduce(op, x, &o, out);
}

/* The kept-values mask of pinv / matrix_rank: |s| > max(atol, rtol * max|s|) (s: (..., k)). */
static lc_status sv_mask(const lc_tensor *s, int64_t m, int64_t n, double atol, double rtol,
                         lc_tensor **mask) {
  if (rtol < 0)
    rtol = atol > 0 ? 0
                    : (s->dtype == LC_FLOAT64 ? 2.220446049250313e-16 : 1.1920928955078125e-07) *
                          (double)(m > n ? m : n);
  if (atol < 0) atol = 0;
  lc_tensor *a = NULL, *mx = NULL, *t = NULL, *th = NULL;
  lc_status st;
  TRY(lc_unary(LC_ABS, s, &a));
  if (s->shape[s->ndim - 1] == 0) {
    st = lc_binary_scalar(LC_GT, a, atol, false, mask);
    goto done;
  }
  TRY(reduce_last(LC_AMAX, a, true, &mx));
  TRY(lc_binary_scalar(LC_MUL, mx, rtol, false, &t));
  TRY(lc_clamp(t, true, atol, false, 0, &th));
  st = lc_binary(LC_GT, a, th, mask);
done:
  lc_release(a);
  lc_release(mx);
  lc_release(t);
  lc_release(th);
  return st;
}

lc_status lc_linalg_pinv(const lc_tensor *A, double atol, double rtol, bool hermitian,
                         lc_tensor **out) {
  const char *fn = "linalg_pinv";
  lc_status st = need(fn, A, out);
  if (!st) st = need_mat(fn, "input", A, hermitian);
  if (st) return st;
  lc_tensor *U = NULL, *S = NULL, *Vh = NULL, *mask = NULL, *safe = NULL, *inv = NULL, *inv0 = NULL,
            *col = NULL, *sc = NULL, *ut = NULL, *vt = NULL, *one = NULL, *zero = NULL;
  int64_t m = A->shape[A->ndim - 2], n = A->shape[A->ndim - 1];
  if (hermitian)
    TRY(lc_linalg_eigh(A, false, &S, &U));
  else
    TRY(lc_linalg_svd(A, false, &U, &S, &Vh));
  TRY(sv_mask(S, m, n, atol, rtol, &mask));
  TRY(lc_scalar(1, S->dtype, &one));
  TRY(lc_scalar(0, S->dtype, &zero));
  TRY(lc_where(mask, S, one, &safe));
  TRY(lc_binary_scalar(LC_DIV, safe, 1, true, &inv0));
  TRY(lc_where(mask, inv0, zero, &inv));
  TRY(lc_unsqueeze(inv, inv->ndim - 1, &col)); /* (..., 1, k) */
  /* pinv = V diag(1/s) U^T with V = Vh^T (svd) or U (eigh) */
  if (hermitian)
    TRY(lc_binary(LC_MUL, U, col, &sc));
  else {
    TRY(lc_transpose(Vh, Vh->ndim - 2, Vh->ndim - 1, &vt));
    TRY(lc_binary(LC_MUL, vt, col, &sc));
  }
  TRY(lc_transpose(U, U->ndim - 2, U->ndim - 1, &ut));
  st = lc_matmul(sc, ut, out);
done:
  lc_release(U), lc_release(S), lc_release(Vh), lc_release(mask), lc_release(safe);
  lc_release(inv), lc_release(inv0), lc_release(col), lc_release(sc), lc_release(ut);
  lc_release(vt), lc_release(one), lc_release(zero);
  return st;
}

lc_status lc_linalg_matrix_rank(const lc_tensor *A, double atol, double rtol, bool hermitian,
                                lc_tensor **out) {
  const char *fn = "linalg_matrix_rank";
  lc_status st = need(fn, A, out);
  if (!st) st = need_mat(fn, "input", A, hermitian);
  if (st) return st;
  lc_tensor *S = NULL, *mask = NULL;
  int64_t m = A->shape[A->ndim - 2], n = A->shape[A->ndim - 1];
  if (hermitian)
    TRY(lc_linalg_eigvalsh(A, false, &S));
  else
    TRY(lc_linalg_svdvals(A, &S));
  TRY(sv_mask(S, m, n, atol, rtol, &mask));
  st = reduce_last(LC_SUM, mask, false, out);
done:
  lc_release(S);
  lc_release(mask);
  return st;
}

/* PyTorch's full result (driver gelsd): rank and singular values of A (no gradient), and the
 * squared residuals sum((A X - B)^2) over the rows, shaped (*, k), when m > n and every matrix
 * is full-rank; else an empty tensor. */
lc_status lc_linalg_lstsq_ex(const lc_tensor *A, const lc_tensor *B, double rcond,
                             lc_tensor **solution, lc_tensor **residuals, lc_tensor **rank,
                             lc_tensor **singular_values) {
  lc_tensor *x = NULL, *rk = NULL, *sv = NULL, *ax = NULL, *d = NULL, *res = NULL;
  lc_status st = lc_linalg_lstsq(A, B, rcond, &x);
  if (st) return st;
  bool prev = lc_set_grad_enabled(false);
  int64_t m = A->shape[A->ndim - 2], n = A->shape[A->ndim - 1];
  lc_tensor *mask = NULL;
  st = lc_linalg_svdvals(A, &sv);
  if (!st) st = sv_mask(sv, m, n, -1, rcond, &mask); /* matrix_rank's rule, one SVD */
  if (!st) st = reduce_last(LC_SUM, mask, false, &rk);
  lc_release(mask);
  lc_set_grad_enabled(prev);
  if (st) goto done;
  bool full = m > n && rk->numel > 0;
  const int64_t *r = lc_data(rk);
  for (int64_t i = 0; full && i < rk->numel; i++)
    full = r[i] == n;
  if (full) {
    TRY(lc_matmul(A, x, &ax));
    TRY(lc_binary(LC_SUB, ax, B, &d));
    lc_tensor *sq = NULL;
    TRY(lc_binary(LC_MUL, d, d, &sq));
    lc_reduce_opts o = {.ndims = 1, .dims = {rhs_is_vector(A, B) ? -1 : -2}};
    st = lc_reduce(LC_SUM, sq, &o, &res);
    lc_release(sq);
    if (st) goto done;
  } else {
    int64_t zero = 0;
    TRY(lc_zeros(1, &zero, x->dtype, &res));
  }
  *solution = x;
  *residuals = res;
  *rank = rk;
  *singular_values = sv;
  x = res = rk = sv = NULL;
done:
  lc_release(x);
  lc_release(rk);
  lc_release(sv);
  lc_release(ax);
  lc_release(d);
  lc_release(res);
  return st;
}

lc_status lc_linalg_matrix_power(const lc_tensor *A, int64_t k, lc_tensor **out) {
  const char *fn = "linalg_matrix_power";
  lc_status st = need(fn, A, out);
  if (!st) st = need_mat(fn, "input", A, true);
  if (st) return st;
  lc_tensor *base = NULL, *acc = NULL, *t = NULL;
  if (k == 0) {
    int64_t n = A->shape[A->ndim - 1];
    lc_tensor *e = NULL;
    if ((st = lc_eye(n, n, A->dtype, &e))) return st;
    st = lc_expand(e, A->ndim, A->shape, &t);
    lc_release(e);
    if (!st) st = lc_contiguous(t, out);
    lc_release(t);
    return st;
  }
  if (k < 0)
    TRY(lc_linalg_inv(A, &base));
  else
    base = lc_retain((lc_tensor *)A);
  uint64_t p = k < 0 ? (uint64_t)(-(k + 1)) + 1 : (uint64_t)k;
  for (;;) {
    if (p & 1) {
      if (!acc)
        acc = lc_retain(base);
      else {
        TRY(lc_matmul(acc, base, &t));
        lc_release(acc);
        acc = t, t = NULL;
      }
    }
    p >>= 1;
    if (!p) break;
    TRY(lc_matmul(base, base, &t));
    lc_release(base);
    base = t, t = NULL;
  }
  if (acc == A) { /* k == 1: a new tensor, as PyTorch's clone */
    st = lc_clone(A, out);
  } else {
    *out = acc, acc = NULL;
  }
done:
  lc_release(base);
  lc_release(acc);
  lc_release(t);
  return st;
}

/* ---------------------------------------------------------------- norms */

lc_status lc_linalg_vector_norm(const lc_tensor *x, double ord, int ndims, const int *dims,
                                bool keepdim, lc_tensor **out) {
  lc_status st = need("linalg_vector_norm", x, out);
  if (st) return st;
  if (ndims < 0 || ndims > LC_MAX_DIMS)
    return lc_set_error(LC_EARG, "linalg_vector_norm: bad number of dims %d", ndims);
  lc_reduce_opts o;
  memset(&o, 0, sizeof o);
  o.ndims = ndims;
  for (int i = 0; i < ndims; i++)
    o.dims[i] = dims[i];
  o.keepdim = keepdim;
  o.p = ord;
  return lc_reduce(LC_NORM, x, &o, out);
}

lc_status lc_linalg_matrix_norm(const lc_tensor *A, lc_linalg_norm_kind kind, double ord, int d0,
                                int d1, bool keepdim, lc_tensor **out) {
  const char *fn = "linalg_matrix_norm";
  lc_status st = need(fn, A, out);
  if (!st) st = need_mat(fn, "input", A, false);
  if (!st) st = lc_wrap_dim(&d0, A->ndim, fn);
  if (!st) st = lc_wrap_dim(&d1, A->ndim, fn);
  if (!st && d0 == d1)
    st = lc_set_error(LC_EARG, "%s: dims must be different, got %d and %d", fn, d0, d1);
  if (st) return st;
  if (kind == LC_NORM_FRO) {
    int dims[2] = {d0, d1};
    return lc_linalg_vector_norm(A, 2, 2, dims, keepdim, out);
  }
  lc_tensor *a = NULL, *s = NULL, *r = NULL, *p = NULL, *t = NULL;
  bool is_min = ord < 0;
  double ab = fabs(ord);
  if (kind != LC_NORM_NUC && ab != 1 && ab != 2 && ab != INFINITY)
    return lc_set_error(LC_EARG, "%s: ord must be 'fro', 'nuc', inf, -inf, 1, -1, 2 or -2, got %g",
                        fn, ord);
  if (kind == LC_NORM_NUC || ab == 2) {
    int perm[LC_MAX_DIMS], k = 0;
    for (int d = 0; d < A->ndim; d++)
      if (d != d0 && d != d1) perm[k++] = d;
    perm[k++] = d0, perm[k++] = d1;
    TRY(lc_permute(A, perm, &p));
    TRY(lc_linalg_svdvals(p, &s));
    TRY(reduce_last(kind == LC_NORM_NUC ? LC_SUM : is_min ? LC_AMIN : LC_AMAX, s, false, &r));
    if (keepdim) {
      int lo = d0 < d1 ? d0 : d1, hi = d0 < d1 ? d1 : d0;
      TRY(lc_unsqueeze(r, lo, &t));
      lc_release(r);
      r = NULL;
      TRY(lc_unsqueeze(t, hi, &r));
    }
    *out = r, r = NULL;
    goto done;
  }
  /* 1: max over columns of the column sums |A| (sum over d0); inf: rows (sum over d1) */
  int sd = ab == 1 ? d0 : d1, md = ab == 1 ? d1 : d0;
  lc_reduce_opts o;
  memset(&o, 0, sizeof o);
  o.ndims = 1;
  o.dims[0] = sd;
  o.keepdim = true;
  TRY(lc_unary(LC_ABS, A, &a));
  TRY(lc_reduce(LC_SUM, a, &o, &s));
  o.dims[0] = md;
  TRY(lc_reduce(is_min ? LC_AMIN : LC_AMAX, s, &o, &r));
  if (keepdim) {
    *out = r, r = NULL;
  } else {
    int hi = d0 > d1 ? d0 : d1, lo = d0 > d1 ? d1 : d0;
    TRY(lc_squeeze_dim(r, hi, &t));
    st = lc_squeeze_dim(t, lo, out);
  }
done:
  lc_release(a), lc_release(s), lc_release(r), lc_release(p), lc_release(t);
  return st;
}

lc_status lc_linalg_norm(const lc_tensor *x, bool has_ord, lc_linalg_norm_kind kind, double ord,
                         int ndims, const int *dims, bool keepdim, lc_tensor **out) {
  lc_status st = need("linalg_norm", x, out);
  if (st) return st;
  if (ndims == 2 || kind != LC_NORM_ORD || (ndims == 0 && has_ord && x->ndim == 2)) {
    if (ndims == 1 || ndims > 2)
      return lc_set_error(LC_EARG, "linalg_norm: a matrix norm takes 2 dims, got %d", ndims);
    if (kind == LC_NORM_ORD && !has_ord) kind = LC_NORM_FRO;
    if (ndims == 0 && x->ndim != 2)
      return lc_set_error(LC_ESHAPE,
                          "linalg_norm: a matrix norm without dims needs a 2-D input, "
                          "got %d-D",
                          x->ndim);
    int d0 = ndims ? dims[0] : -2, d1 = ndims ? dims[1] : -1;
    return lc_linalg_matrix_norm(x, kind, ord, d0, d1, keepdim, out);
  }
  return lc_linalg_vector_norm(x, has_ord ? ord : 2, ndims, dims, keepdim, out);
}

/* ---------------------------------------------------------------- cross */

lc_status lc_linalg_cross(const lc_tensor *a, const lc_tensor *b, int dim, lc_tensor **out) {
  const char *fn = "linalg_cross";
  lc_status st = need(fn, a, out);
  if (!st && !b) st = lc_set_error(LC_EARG, "%s: NULL tensor argument", fn);
  if (st) return st;
  if (a->ndim != b->ndim)
    return lc_set_error(LC_ESHAPE,
                        "%s: input and other must have the same number of dims, got "
                        "%d and %d",
                        fn, a->ndim, b->ndim);
  int nd = 0;
  int64_t shape[LC_MAX_DIMS];
  if (lc_broadcast_shapes(a->ndim, a->shape, b->ndim, b->shape, &nd, shape, fn) != LC_OK)
    return lc_set_error(LC_ESHAPE, "%s: the shapes of input and other do not broadcast", fn);
  if ((st = lc_wrap_dim(&dim, nd, fn))) return st;
  if (shape[dim] != 3)
    return lc_set_error(LC_ESHAPE, "%s: dimension " LC_POS_D " must have size 3, got %lld", fn, dim,
                        (long long)shape[dim]);
  lc_tensor *ea = NULL, *eb = NULL, *x[3] = {0}, *y[3] = {0}, *c[3] = {0}, *p = NULL, *q = NULL;
  TRY(lc_expand(a, nd, shape, &ea));
  TRY(lc_expand(b, nd, shape, &eb));
  for (int i = 0; i < 3; i++) {
    TRY(lc_select(ea, dim, i, &x[i]));
    TRY(lc_select(eb, dim, i, &y[i]));
  }
  for (int i = 0; i < 3; i++) {
    int j = (i + 1) % 3, k = (i + 2) % 3;
    TRY(lc_binary(LC_MUL, x[j], y[k], &p));
    TRY(lc_binary(LC_MUL, x[k], y[j], &q));
    TRY(lc_binary(LC_SUB, p, q, &c[i]));
    lc_release(p), lc_release(q);
    p = q = NULL;
  }
  st = lc_stack(3, c, dim, out);
done:
  lc_release(ea), lc_release(eb), lc_release(p), lc_release(q);
  for (int i = 0; i < 3; i++)
    lc_release(x[i]), lc_release(y[i]), lc_release(c[i]);
  return st;
}
