/*
 * linalg.c - matrix products (lc_op_matmul, torch.matmul semantics), forward and backward.
 *
 * Operands are described by `mop` (shape, strides, data) rather than tensors, so 1-D promotion,
 * transposes and broadcast batch dims are just stride arithmetic. Each matrix of a batch goes to
 * cblas_?gemm directly when its last two strides are a row-major or transposed row-major layout
 * (CblasTrans), otherwise the operand is first copied to contiguous. Tiny products use a plain
 * loop: OpenBLAS's call overhead dominates a 4x3 by 3x2 product.
 */
#include "gemm.h"
#include "grad_graph.h"
#include "kernel_util.h"

#include <cblas.h>
#include <limits.h>
#include <string.h>

/* Below this many multiply-adds per matrix, a plain C loop beats a BLAS call. */
#define MM_TINY 4096

typedef struct mop {
  int nd;
  int64_t shape[LC_MAX_DIMS];
  int64_t str[LC_MAX_DIMS];
  const char *data;
} mop;

/* A tensor as an operand of at least 2 dims: 1-D a becomes (1, K) (as_row), 1-D b (K, 1). */
static void mop_of(mop *m, const lc_tensor *t, bool as_row) {
  m->data = lc_data(t);
  if (t->ndim == 1) {
    m->nd = 2;
    if (as_row) {
      m->shape[0] = 1, m->str[0] = 0;
      m->shape[1] = t->shape[0], m->str[1] = t->strides[0];
    } else {
      m->shape[0] = t->shape[0], m->str[0] = t->strides[0];
      m->shape[1] = 1, m->str[1] = 0;
    }
    return;
  }
  m->nd = t->ndim;
  memcpy(m->shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
  memcpy(m->str, t->strides, sizeof(int64_t) * (size_t)t->ndim);
}

/* Swaps the last two dims (a transposed view). */
static mop mop_t(const mop *m) {
  mop r = *m;
  int a = m->nd - 2, b = m->nd - 1;
  r.shape[a] = m->shape[b], r.shape[b] = m->shape[a];
  r.str[a] = m->str[b], r.str[b] = m->str[a];
  return r;
}

/* Can a rows x cols matrix with strides (sr, sc) go to row-major BLAS? Sets trans and ld. */
static bool blas_layout(int64_t rows, int64_t cols, int64_t sr, int64_t sc, bool *trans,
                        int64_t *ld) {
  int64_t mc = cols > 1 ? cols : 1, mr = rows > 1 ? rows : 1;
  /* a dim of size 1 has an irrelevant stride */
  if ((cols == 1 || sc == 1) && (rows == 1 || sr >= mc)) {
    *trans = false;
    *ld = rows == 1 ? mc : sr;
    return *ld < INT_MAX;
  }
  if ((rows == 1 || sr == 1) && (cols == 1 || sc >= mr)) {
    *trans = true;
    *ld = cols == 1 ? mr : sc;
    return *ld < INT_MAX;
  }
  return false;
}

/* The rows of lc_iter it copied from operand 1 (src) to operand 0 (dst). */
#define DEF_MOP_COPY(T, S)                                                                         \
  static void mop_copy_##S(const lc_iter *it, T *dst, const T *src) {                              \
    int64_t offs[LC_ITER_MAX_OPS];                                                                 \
    for (int64_t row = 0; row < it->outer; row++) {                                                \
      lc_iter_row(it, row, offs);                                                                  \
      T *d = dst + offs[0];                                                                        \
      const T *s = src + offs[1];                                                                  \
      for (int64_t k = 0; k < it->inner; k++)                                                      \
        d[k * it->inner_stride[0]] = s[k * it->inner_stride[1]];                                   \
    }                                                                                              \
  }
DEF_MOP_COPY(float, f32)
DEF_MOP_COPY(double, f64)

/* Strided copy of operand m into a fresh contiguous buffer (owned by *hold). */
static lc_status mop_contiguous(mop *m, lc_dtype dt, lc_tensor **hold) {
  lc_tensor *c = NULL;
  lc_status st = lc_tensor_new(m->nd, m->shape, dt, &c);
  if (st) return st;
  int64_t strides[LC_ITER_MAX_OPS][LC_MAX_DIMS];
  memcpy(strides[0], c->strides, sizeof(int64_t) * (size_t)m->nd);
  memcpy(strides[1], m->str, sizeof(int64_t) * (size_t)m->nd);
  lc_iter it;
  lc_iter_init(&it, 2, m->nd, m->shape, (const int64_t(*)[LC_MAX_DIMS])strides);
  if (c->numel > 0) {
    if (dt == LC_FLOAT32)
      mop_copy_f32(&it, lc_data(c), (const float *)m->data);
    else
      mop_copy_f64(&it, lc_data(c), (const double *)m->data);
  }
  m->data = lc_data(c);
  memcpy(m->str, c->strides, sizeof(int64_t) * (size_t)m->nd);
  *hold = c;
  return LC_OK;
}

#define DEF_MM_SMALL(T, S)                                                                         \
  static void mm_small_##S(const T *a, int64_t sam, int64_t sak, const T *b, int64_t sbk,          \
                           int64_t sbn, T *restrict c, int64_t M, int64_t N, int64_t K) {          \
    for (int64_t i = 0; i < M; i++)                                                                \
      for (int64_t j = 0; j < N; j++) {                                                            \
        double acc = 0;                                                                            \
        for (int64_t k = 0; k < K; k++)                                                            \
          acc += (double)a[i * sam + k * sak] * b[k * sbk + j * sbn];                              \
        c[i * N + j] = (T)acc;                                                                     \
      }                                                                                            \
  }
DEF_MM_SMALL(float, f32)
DEF_MM_SMALL(double, f64)

typedef struct mmjob {
  const mop *a, *b;
  lc_dtype dt;
  int nbd; /* batch dims */
  int64_t bshape[LC_MAX_DIMS];
  int64_t sa[LC_MAX_DIMS], sb[LC_MAX_DIMS]; /* batch strides (0 where broadcast) */
  int64_t M, N, K;
  bool ta, tb; /* BLAS layout of the operands (not for the small loop) */
  int64_t lda, ldb;
  char *c;
} mmjob;

static void batch_offsets(const mmjob *j, int64_t bi, int64_t *oa, int64_t *ob) {
  *oa = 0, *ob = 0;
  for (int d = j->nbd - 1; d >= 0; d--) {
    int64_t n = j->bshape[d], i = bi % n;
    bi /= n;
    *oa += i * j->sa[d];
    *ob += i * j->sb[d];
  }
}

/* Batches [b, e) with the plain loop. */
static void mm_small_batches(void *ctx, int64_t b, int64_t e) {
  const mmjob *j = ctx;
  const mop *A = j->a, *B = j->b;
  int64_t sam = A->str[A->nd - 2], sak = A->str[A->nd - 1];
  int64_t sbk = B->str[B->nd - 2], sbn = B->str[B->nd - 1];
  for (int64_t bi = b; bi < e; bi++) {
    int64_t oa, ob;
    batch_offsets(j, bi, &oa, &ob);
    if (j->dt == LC_FLOAT32)
      mm_small_f32((const float *)A->data + oa, sam, sak, (const float *)B->data + ob, sbk, sbn,
                   (float *)j->c + bi * j->M * j->N, j->M, j->N, j->K);
    else
      mm_small_f64((const double *)A->data + oa, sam, sak, (const double *)B->data + ob, sbk, sbn,
                   (double *)j->c + bi * j->M * j->N, j->M, j->N, j->K);
  }
}

/* Matrices [b, e) of a batched product that BLAS takes: one single-threaded gemm each. */
static void mm_blas_batches(void *ctx, int64_t b, int64_t e) {
  const mmjob *j = ctx;
  size_t es = lc_dtype_size(j->dt);
  for (int64_t bi = b; bi < e; bi++) {
    int64_t oa, ob;
    batch_offsets(j, bi, &oa, &ob);
    lk_gemm_unlocked(j->dt, j->ta, j->tb, j->M, j->N, j->K, 1.0, (const char *)j->a->data + oa * es,
                     j->lda, (const char *)j->b->data + ob * es, j->ldb, 0.0,
                     (char *)j->c + (size_t)(bi * j->M * j->N) * es, j->N);
  }
}

/* c = a @ b for operands of >= 2 dims with broadcast batch dims. The result is written to a
 * fresh contiguous tensor of shape (out_nd, out_shape) when given (same element order as
 * batch + (M, N)), else of shape batch + (M, N). */
static lc_status matmul_ops(const mop *a0, const mop *b0, lc_dtype dt, int out_nd,
                            const int64_t *out_shape, lc_tensor **out) {
  mop a = *a0, b = *b0;
  mmjob j;
  memset(&j, 0, sizeof j);
  j.dt = dt;
  j.M = a.shape[a.nd - 2], j.K = a.shape[a.nd - 1], j.N = b.shape[b.nd - 1];
  lc_status st =
      lc_broadcast_shapes(a.nd - 2, a.shape, b.nd - 2, b.shape, &j.nbd, j.bshape, "matmul");
  if (st) return st;
  int64_t full[LC_MAX_DIMS + 2];
  memcpy(full, j.bshape, sizeof(int64_t) * (size_t)j.nbd);
  full[j.nbd] = j.M, full[j.nbd + 1] = j.N;
  if (j.nbd + 2 > LC_MAX_DIMS)
    return lc_set_error(LC_ESHAPE, "matmul: result would have %d dims, at most %d allowed",
                        j.nbd + 2, LC_MAX_DIMS);
  lc_tensor *c = NULL;
  if ((st = out_shape ? lc_tensor_new(out_nd, out_shape, dt, &c)
                      : lc_tensor_new(j.nbd + 2, full, dt, &c)))
    return st;
  int64_t nbatch = lc_shape_numel(j.nbd, j.bshape);
  if (c->numel == 0) {
    *out = c;
    return LC_OK;
  }
  if (j.K == 0) { /* empty sum */
    memset(lc_data(c), 0, (size_t)c->numel * lc_dtype_size(dt));
    *out = c;
    return LC_OK;
  }
  j.c = lc_data(c);
  lc_tensor *ha = NULL, *hb = NULL; /* contiguous copies, when needed */
  bool ta = false, tb = false;
  int64_t lda = 0, ldb = 0;
  bool tiny = j.M * j.N * j.K < MM_TINY;
  if (!tiny) {
    if (!blas_layout(j.M, j.K, a.str[a.nd - 2], a.str[a.nd - 1], &ta, &lda)) {
      if ((st = mop_contiguous(&a, dt, &ha))) goto fail;
      blas_layout(j.M, j.K, a.str[a.nd - 2], a.str[a.nd - 1], &ta, &lda);
    }
    if (!blas_layout(j.K, j.N, b.str[b.nd - 2], b.str[b.nd - 1], &tb, &ldb)) {
      if ((st = mop_contiguous(&b, dt, &hb))) goto fail;
      blas_layout(j.K, j.N, b.str[b.nd - 2], b.str[b.nd - 1], &tb, &ldb);
    }
    if (j.M > INT_MAX || j.N > INT_MAX || j.K > INT_MAX) {
      st = lc_set_error(LC_ESHAPE, "matmul: matrix dims above %d are not supported", INT_MAX);
      goto fail;
    }
  }
  for (int d = 0; d < j.nbd; d++) {
    int da = d - (j.nbd - (a.nd - 2)), db = d - (j.nbd - (b.nd - 2));
    j.sa[d] = (da >= 0 && a.shape[da] == j.bshape[d]) ? a.str[da] : 0;
    j.sb[d] = (db >= 0 && b.shape[db] == j.bshape[d]) ? b.str[db] : 0;
  }
  j.a = &a, j.b = &b;
  if (tiny) {
    lc_parallel_for(nbatch, j.M * j.N * j.K, mm_small_batches, &j);
  } else {
    j.ta = ta, j.tb = tb, j.lda = lda, j.ldb = ldb;
    if (nbatch == 1 || (nbatch < lc_get_num_threads() && j.M * j.N * j.K >= ((int64_t)1 << 22))) {
      /* one matrix, or fewer matrices than threads and each big: every product split over
       * the threads */
      for (int64_t bi = 0; bi < nbatch; bi++) {
        int64_t oa, ob;
        batch_offsets(&j, bi, &oa, &ob);
        size_t es = lc_dtype_size(dt);
        lk_gemm(dt, ta, tb, j.M, j.N, j.K, 1.0, (const char *)a.data + oa * (int64_t)es, lda,
                (const char *)b.data + ob * (int64_t)es, ldb, 0.0,
                (char *)j.c + (size_t)(bi * j.M * j.N) * es, j.N);
      }
    } else { /* the matrices over lucid's threads, each a single-threaded product */
      lc_blas_single_begin(); /* once for the batch, also when the loop runs serially */
      lc_parallel_for(nbatch, j.M * j.N * j.K / 16 + 1, mm_blas_batches, &j);
      lc_blas_single_end();
    }
  }
  lc_release(ha);
  lc_release(hb);
  *out = c;
  return LC_OK;
fail:
  lc_release(ha);
  lc_release(hb);
  lc_release(c);
  return st;
}

static lc_status matmul_check(const lc_tensor *a, const lc_tensor *b) {
  if (!is_float(a->dtype) || !is_float(b->dtype))
    return lc_set_error(LC_EDTYPE, "matmul: expected float32 or float64 tensors, got %s",
                        lc_dtype_name(is_float(a->dtype) ? b->dtype : a->dtype));
  if (a->dtype != b->dtype)
    return lc_set_error(LC_EDTYPE,
                        "matmul: expected both tensors to have the same dtype, got %s and %s",
                        lc_dtype_name(a->dtype), lc_dtype_name(b->dtype));
  if (a->ndim == 0 || b->ndim == 0)
    return lc_set_error(LC_ESHAPE,
                        "matmul: both arguments need at least 1 dimension, got %d and %d", a->ndim,
                        b->ndim);
  int64_t ka = a->shape[a->ndim - 1], kb = b->shape[b->ndim == 1 ? 0 : b->ndim - 2];
  if (ka != kb) {
    char sa[256], sb[256];
    return lc_set_error(LC_ESHAPE, "matmul: shapes %s and %s cannot be multiplied (%lld != %lld)",
                        lc_shape_str(a->ndim, a->shape, sa, sizeof sa),
                        lc_shape_str(b->ndim, b->shape, sb, sizeof sb), (long long)ka,
                        (long long)kb);
  }
  return LC_OK;
}

static lc_status matmul_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                                const lc_op_args *args, lc_tensor **out) {
  if (n != 2 || !in[0] || !in[1]) return lc_set_error(LC_EARG, "matmul: expected 2 input tensors");
  const lc_tensor *a = in[0], *b = in[1];
  lc_status st = matmul_check(a, b);
  if (st) return st;
  mop ma, mb;
  mop_of(&ma, a, true);
  mop_of(&mb, b, false);
  /* The result shape: broadcast batch + (M, N), without the dims added to promote a 1-D
   * operand. Its element order is the same, so the product is written straight into it. */
  int nbd = 0;
  int64_t shape[LC_MAX_DIMS + 2];
  if ((st = lc_broadcast_shapes(ma.nd - 2, ma.shape, mb.nd - 2, mb.shape, &nbd, shape, "matmul")))
    return st;
  int nd = nbd;
  if (a->ndim > 1) shape[nd++] = ma.shape[ma.nd - 2];
  if (b->ndim > 1) shape[nd++] = mb.shape[mb.nd - 1];
  if (nd > LC_MAX_DIMS)
    return lc_set_error(LC_ESHAPE, "matmul: result would have %d dims, at most %d allowed", nd,
                        LC_MAX_DIMS);
  return matmul_ops(&ma, &mb, a->dtype, nd, shape, &out[0]);
}

/* g (the shape of the forward result) as an operand of shape batch + (M, N). */
static void grad_mop(mop *g, const lc_tensor *t, const lc_meta *a, const lc_meta *b) {
  g->data = lc_data(t);
  int nd = 0, k = 0;
  int nb = t->ndim - (a->ndim > 1) - (b->ndim > 1);
  for (; k < nb; k++, nd++)
    g->shape[nd] = t->shape[k], g->str[nd] = t->strides[k];
  if (a->ndim > 1)
    g->shape[nd] = t->shape[k], g->str[nd] = t->strides[k], k++, nd++;
  else
    g->shape[nd] = 1, g->str[nd] = 0, nd++;
  if (b->ndim > 1)
    g->shape[nd] = t->shape[k], g->str[nd] = t->strides[k], k++, nd++;
  else
    g->shape[nd] = 1, g->str[nd] = 0, nd++;
  g->nd = nd;
}

/* Sums r (batch + matrix) over broadcast batch dims to the promoted operand's shape, then drops
 * the promoted dim to give the input's shape. */
static lc_status reduce_to_input(lc_tensor *r, const mop *m2, const lc_meta *in, bool as_row,
                                 lc_tensor **out) {
  lc_tensor *s = NULL;
  lc_status st = lc_k_sum_to(r, m2->nd, m2->shape, &s);
  if (st) return st;
  if (in->ndim != 1) {
    *out = s;
    return LC_OK;
  }
  /* drop the size-1 promoted dim: always a valid view */
  int64_t shape[1] = {in->shape[0]}, strides[1] = {s->strides[as_row ? 1 : 0]};
  st = lc_tensor_view_of(s, 1, shape, strides, s->offset, out);
  lc_release(s);
  return st;
}

/* create_graph: with 1-D operands promoted to matrices (a: 1 x k, b: k x 1) and g reshaped to
 * the promoted product, grad_a = g b^T and grad_b = a^T g, summed over broadcast batch dims and
 * reshaped back. */
static lc_status matmul_backward_graph(const lc_op_ctx *ctx, const lc_tensor *grad_out,
                                       lc_tensor **grad_in) {
  lc_gb b = LC_GB_INIT(ctx);
  lc_tensor *a = lc_gb_saved(&b, 0), *y = lc_gb_saved(&b, 1);
  if (b.st) return lc_gb_end(&b, grad_in);
  const int64_t one = 1;
  int64_t as[LC_MAX_DIMS], bs[LC_MAX_DIMS];
  int an = a->ndim, bn = y->ndim;
  memcpy(as, a->shape, (size_t)an * sizeof *as);
  memcpy(bs, y->shape, (size_t)bn * sizeof *bs);
  if (an == 1) {
    as[1] = as[0];
    as[0] = one;
    an = 2;
  }
  if (bn == 1) {
    bs[1] = one;
    bn = 2;
  }
  lc_tensor *a2 = lc_gb_reshape(&b, a, an, as), *b2 = lc_gb_reshape(&b, y, bn, bs);
  /* the promoted product's shape: broadcast batch dims, then m x n */
  int nb = (an > bn ? an : bn) - 2;
  int64_t os[LC_MAX_DIMS];
  for (int d = 0; d < nb; d++) {
    int ia = d - (nb - (an - 2)), ib = d - (nb - (bn - 2));
    int64_t sa = ia >= 0 ? as[ia] : 1, sb = ib >= 0 ? bs[ib] : 1;
    os[d] = sa == 1 ? sb : sa;
  }
  os[nb] = as[an - 2];
  os[nb + 1] = bs[bn - 1];
  lc_tensor *g2 = lc_gb_reshape(&b, grad_out, nb + 2, os);
  if (ctx->needs_grad[0]) {
    lc_tensor *r = lc_gb_sum_to(&b, lc_gb_matmul(&b, g2, lc_gb_mT(&b, b2)), an, as);
    lc_gb_grad(&b, 0, lc_gb_reshape(&b, r, ctx->in[0].ndim, ctx->in[0].shape), grad_in);
  }
  if (ctx->needs_grad[1]) {
    lc_tensor *r = lc_gb_sum_to(&b, lc_gb_matmul(&b, lc_gb_mT(&b, a2), g2), bn, bs);
    lc_gb_grad(&b, 1, lc_gb_reshape(&b, r, ctx->in[1].ndim, ctx->in[1].shape), grad_in);
  }
  return lc_gb_end(&b, grad_in);
}

static lc_status matmul_backward(const lc_op_ctx *ctx, const lc_tensor *grad_out,
                                 lc_tensor **grad_in) {
  grad_in[0] = grad_in[1] = NULL;
  lc_tensor *a = NULL, *b = NULL;
  lc_status st = lc_ctx_saved(ctx, 0, &a);
  if (!st) st = lc_ctx_saved(ctx, 1, &b);
  if (st) return st;
  const lc_tensor *g = grad_out;
  if (g->dtype != a->dtype) /* should not happen; keep BLAS fed with one dtype */
    return grad_dtype_error(ctx, g->dtype);
  mop ma, mb, mg;
  mop_of(&ma, a, true);
  mop_of(&mb, b, false);
  grad_mop(&mg, g, &ctx->in[0], &ctx->in[1]);
  if (ctx->needs_grad[0]) { /* grad_a = g @ b^T */
    mop bt = mop_t(&mb);
    lc_tensor *r = NULL;
    if ((st = matmul_ops(&mg, &bt, a->dtype, 0, NULL, &r))) goto fail;
    st = reduce_to_input(r, &ma, &ctx->in[0], true, &grad_in[0]);
    lc_release(r);
    if (st) goto fail;
  }
  if (ctx->needs_grad[1]) { /* grad_b = a^T @ g */
    mop at = mop_t(&ma);
    lc_tensor *r = NULL;
    if ((st = matmul_ops(&at, &mg, a->dtype, 0, NULL, &r))) goto fail;
    st = reduce_to_input(r, &mb, &ctx->in[1], false, &grad_in[1]);
    lc_release(r);
    if (st) goto fail;
  }
  return LC_OK;
fail:
  lc_release(grad_in[0]);
  grad_in[0] = NULL;
  return st;
}

const lc_op_def lc_op_matmul = {.name = "matmul",
                                .grad_fn_name = "MatmulBackward",
                                .n_inputs = 2,
                                .n_outputs = 1,
                                .save = LC_SAVE_IN(0) | LC_SAVE_IN(1),
                                .forward = matmul_forward,
                                .backward = matmul_backward,
                                .backward_graph = matmul_backward_graph};
