/* attention.c - the fused scaled dot-product attention op, forward and backward side by side:
 * softmax(q k^T * scale + mask) v computed FlashAttention-2 style. Forward walks the keys in
 * tiles of SD_BC per tile of SD_BR query rows with an online softmax (a running max and sum per
 * row) and keeps only the output and each row's logsumexp; backward recomputes the scores tile
 * by tile from them (D_i = rowsum(dO * O)), so no L x S matrix ever exists: memory is linear in
 * the sequence lengths, plus tile-sized scratch per thread. The products of a tile are
 * single-threaded BLAS GEMMs; forward runs in parallel over (head, query tile), backward over
 * heads. The mask is read through its own strides (stride 0 on broadcast dims, never
 * expanded); dropout's keep mask is regenerated in backward from the saved seed (element e of
 * the (..., L, S) weights keeps when its 32-bit half of lc_rng_bits(seed, base + e / 2) is at
 * least p * 2^32, as in dropout.c). A row whose keys are all hidden gives output 0, logsumexp
 * -inf and gradient 0. float32 and float64; strided q, k, v are copied once. */
#include "attention.h"
#include "grad_graph.h"
#include "kernel_util.h"

#include <cblas.h>
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SD_BR 64 /* query rows per tile */
#define SD_BC 64 /* keys per tile */

typedef struct sdpa_job {
  int64_t BH, L, S, E, Ev, nqt, nkt;
  const void *q, *k, *v, *g;
  void *o, *lse, *dq, *dk, *dv, *D;
  bool bwd_dq; /* backward: one pass per head (dQ too) rather than split in two */
  /* the mask: element (bh, i, j) at mask + sd_mask_offset(bh) + i * msL + j * msS */
  const void *mask;
  lc_dtype mdt;
  int nb;                        /* batch dims */
  int64_t bshape[LC_MAX_DIMS];   /* their sizes */
  int64_t mbstride[LC_MAX_DIMS]; /* the mask's strides along them (0: broadcast) */
  int64_t msL, msS;
  bool causal;
  double scale, p, keep_scale;
  uint64_t seed, base, thresh;
  atomic_int failed;
} sdpa_job;

static inline int64_t sd_mask_offset(const sdpa_job *j, int64_t bh) {
  int64_t off = 0;
  for (int d = j->nb - 1; d >= 0; d--) {
    off += (bh % j->bshape[d]) * j->mbstride[d];
    bh /= j->bshape[d];
  }
  return off;
}

static inline bool sd_keep(const sdpa_job *j, uint64_t e) {
  uint64_t bits = lc_rng_bits(j->seed, j->base + (e >> 1));
  uint64_t u = (e & 1) ? (bits & 0xffffffffu) : (bits >> 32);
  return u >= j->thresh;
}

/* exp for the softmax weights (arguments <= 0 in practice): Cephes' expf polynomial after a
 * range reduction by ln 2, branch-free so the loops vectorise; exactly 0 below ln(FLT_MIN),
 * NaN stays NaN. About 2 ulp. */
static inline float sd_expf(float x) {
  const float lo = -87.33654f, hi = 88.0f;
  float xc = x < lo ? lo : (x > hi ? hi : x);
  float n = floorf(xc * 1.44269504088896341f + 0.5f);
  float r = xc - n * 0.693359375f + n * 2.12194440e-4f;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * r * r + r + 1.0f;
  union {
    uint32_t u;
    float f;
  } sc = {.u = (uint32_t)((int32_t)n + 127) << 23};
  float res = y * sc.f;
  res = x < lo ? 0.0f : res;
  return x != x ? x : res;
}

static inline double sd_exp(double x) { return exp(x); }

#define T float
#define SFX _f32
#define GEMM cblas_sgemm
#define EXPV sd_expf
#include "attention_impl.h"
#undef T
#undef SFX
#undef GEMM
#undef EXPV

#define T double
#define SFX _f64
#define GEMM cblas_dgemm
#define EXPV sd_exp
#include "attention_impl.h"
#undef T
#undef SFX
#undef GEMM
#undef EXPV

/* ------------------------------------------------------------------ argument rules */

static lc_status bad(int *arg, int which, const char *name, const char *fmt, const char *a,
                     const char *b) {
  *arg = which;
  char detail[1200];
  snprintf(detail, sizeof detail, fmt, a, b);
  return lc_set_error(which == 4 || which == 5 ? LC_EARG : LC_ESHAPE,
                      "scaled_dot_product_attention: %s: %s", name, detail);
}

lc_status lc_sdpa_validate(const lc_tensor *q, const lc_tensor *k, const lc_tensor *v,
                           const lc_tensor *mask, double p, bool causal, int *arg) {
  static const char *const names[] = {"query", "key", "value"};
  const lc_tensor *t3[3] = {q, k, v};
  char s1[256], s2[256];
  *arg = -1;
  if (!is_float(q->dtype)) {
    *arg = 0;
    return lc_set_error(LC_EDTYPE,
                        "scaled_dot_product_attention: query: expected a float32 or float64 "
                        "tensor, got %s",
                        lc_dtype_name(q->dtype));
  }
  for (int i = 0; i < 3; i++) {
    const lc_tensor *t = t3[i];
    if (i && t->dtype != q->dtype) {
      *arg = i;
      return lc_set_error(LC_EDTYPE,
                          "scaled_dot_product_attention: %s: expected a %s tensor (the "
                          "query's dtype), got %s",
                          names[i], lc_dtype_name(q->dtype), lc_dtype_name(t->dtype));
    }
    lc_shape_str(t->ndim, t->shape, s1, sizeof s1);
    if (t->ndim < 2)
      return bad(arg, i, names[i], "expected a tensor of at least 2 dims (..., %s), got shape %s",
                 i == 0 ? "L, E" : (i == 1 ? "S, E" : "S, Ev"), s1);
    if (i && t->ndim != q->ndim) {
      lc_shape_str(q->ndim, q->shape, s2, sizeof s2);
      return bad(arg, i, names[i], "expected as many dims as the query (shape %s), got shape %s",
                 s2, s1);
    }
    if (i && !shapes_equal(q->ndim - 2, q->shape, t->ndim - 2, t->shape)) {
      lc_shape_str(q->ndim - 2, q->shape, s2, sizeof s2);
      return bad(arg, i, names[i],
                 "expected the leading (batch, heads) dims %s of the query (they are not "
                 "broadcast), got shape %s",
                 s2, s1);
    }
  }
  const int nd = q->ndim;
  if (k->shape[nd - 1] != q->shape[nd - 1]) {
    char e[64];
    snprintf(e, sizeof e, "%lld", (long long)q->shape[nd - 1]);
    lc_shape_str(k->ndim, k->shape, s1, sizeof s1);
    return bad(arg, 1, "key",
               "expected the query's embedding size E = %s in its last dim, got "
               "shape %s",
               e, s1);
  }
  if (v->shape[nd - 2] != k->shape[nd - 2]) {
    char e[64];
    snprintf(e, sizeof e, "%lld", (long long)k->shape[nd - 2]);
    lc_shape_str(v->ndim, v->shape, s1, sizeof s1);
    return bad(arg, 2, "value",
               "expected the key's sequence length S = %s in its second-last "
               "dim, got shape %s",
               e, s1);
  }
  if (mask) {
    if (mask->dtype != LC_BOOL && mask->dtype != q->dtype) {
      *arg = 3;
      return lc_set_error(LC_EDTYPE,
                          "scaled_dot_product_attention: attn_mask: expected a bool tensor or "
                          "a %s one (the query's dtype), got %s",
                          lc_dtype_name(q->dtype), lc_dtype_name(mask->dtype));
    }
    int64_t want[LC_MAX_DIMS];
    for (int d = 0; d < nd - 1; d++)
      want[d] = q->shape[d];
    want[nd - 1] = k->shape[nd - 2];
    bool ok = mask->ndim <= nd;
    for (int d = 0; ok && d < mask->ndim; d++) {
      int64_t ms = mask->shape[mask->ndim - 1 - d], ws = want[nd - 1 - d];
      ok = ms == ws || ms == 1;
    }
    if (!ok) {
      lc_shape_str(nd, want, s2, sizeof s2);
      lc_shape_str(mask->ndim, mask->shape, s1, sizeof s1);
      return bad(arg, 3, "attn_mask",
                 "expected a shape broadcastable to %s (..., L, S), got "
                 "shape %s",
                 s2, s1);
    }
    if (causal) {
      *arg = 5;
      return lc_set_error(LC_EARG, "scaled_dot_product_attention: is_causal: expected false "
                                   "when an attn_mask is given (pass one or the other), got "
                                   "true");
    }
  }
  if (!(p >= 0 && p < 1)) {
    *arg = 4;
    return lc_set_error(LC_EARG,
                        "scaled_dot_product_attention: dropout_p: expected a "
                        "probability in [0, 1), got %g",
                        p);
  }
  return LC_OK;
}

/* ------------------------------------------------------------------ forward */

/* Fills the sizes of j from q, k, v (validated) and the mask's view. */
static void job_shape(sdpa_job *j, const lc_tensor *q, const lc_tensor *k, const lc_tensor *v,
                      const lc_tensor *mask, const lc_op_args *args) {
  const int nd = q->ndim;
  j->nb = nd - 2;
  j->BH = 1;
  for (int d = 0; d < nd - 2; d++) {
    j->bshape[d] = q->shape[d];
    j->BH *= q->shape[d];
  }
  j->L = q->shape[nd - 2];
  j->E = q->shape[nd - 1];
  j->S = k->shape[nd - 2];
  j->Ev = v->shape[nd - 1];
  j->nqt = (j->L + SD_BR - 1) / SD_BR;
  j->nkt = (j->S + SD_BC - 1) / SD_BC;
  j->scale = args->f[0];
  j->p = args->f[1];
  j->keep_scale = j->p > 0 ? 1.0 / (1.0 - j->p) : 1.0;
  j->seed = (uint64_t)args->i[0];
  j->base = (uint64_t)args->i[1];
  j->thresh = (uint64_t)ldexp(j->p, 32);
  j->causal = args->i[2] != 0;
  j->mask = NULL;
  if (mask) {
    /* the mask's strides aligned to the right of (batch..., L, S), 0 where broadcast */
    int64_t st[LC_MAX_DIMS];
    for (int d = 0; d < nd; d++) {
      int md = mask->ndim - nd + d;
      st[d] = md < 0 || mask->shape[md] == 1 ? 0 : mask->strides[md];
    }
    for (int d = 0; d < nd - 2; d++)
      j->mbstride[d] = st[d];
    j->msL = st[nd - 2];
    j->msS = st[nd - 1];
    j->mask = lc_data(mask);
    j->mdt = mask->dtype;
  }
  atomic_init(&j->failed, 0);
}

static lc_status sdpa_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                              const lc_op_args *args, lc_tensor **out) {
  (void)op;
  const lc_tensor *mask = n > 3 ? in[3] : NULL;
  int arg;
  lc_status st = lc_sdpa_validate(in[0], in[1], in[2], mask, args->f[1], args->i[2] != 0, &arg);
  if (st) return st;
  lc_tensor *h[3] = {NULL, NULL, NULL}, *o = NULL, *lse = NULL;
  const lc_tensor *c[3];
  for (int i = 0; i < 3 && !st; i++)
    st = dense(in[i], in[0]->dtype, &h[i], &c[i]);
  const int nd = in[0]->ndim;
  int64_t shape[LC_MAX_DIMS];
  memcpy(shape, in[0]->shape, sizeof(int64_t) * (size_t)nd);
  shape[nd - 1] = in[2]->shape[nd - 1];
  if (!st) st = lc_tensor_new(nd, shape, in[0]->dtype, &o);
  if (!st) st = lc_tensor_new(nd - 1, shape, in[0]->dtype, &lse);
  if (!st) {
    sdpa_job j;
    job_shape(&j, c[0], c[1], c[2], mask, args);
    j.q = lc_data(c[0]);
    j.k = lc_data(c[1]);
    j.v = lc_data(c[2]);
    j.o = lc_data(o);
    j.lse = lc_data(lse);
    const int64_t units = j.BH * j.nqt;
    if (units > 0) {
      lc_range_fn fn = in[0]->dtype == LC_FLOAT32 ? fwd_f32 : fwd_f64;
      lc_blas_single_begin();
      lc_parallel_for(units, SD_BR * (j.S + 1) * (j.E + j.Ev + 1) / 8 + 1, fn, &j);
      lc_blas_single_end();
    }
    if (atomic_load(&j.failed))
      st = lc_error_oom(sizeof(double) * (size_t)(2 * SD_BR * SD_BC + SD_BR * (j.Ev + 2)));
  }
  for (int i = 0; i < 3; i++)
    lc_release(h[i]);
  if (st) {
    lc_release(o);
    lc_release(lse);
    return st;
  }
  out[0] = o;
  out[1] = lse;
  return LC_OK;
}

/* ------------------------------------------------------------------ backward */

static lc_status sdpa_backward(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  const int ni = ctx->n_inputs;
  const lc_tensor *sv[6] = {NULL};
  lc_status st = LC_OK;
  for (int k = 0; k < ni + 2 && !st; k++)
    st = saved(ctx, k, &sv[k]);
  if (st) return st;
  const lc_tensor *mask = ni > 3 ? sv[3] : NULL, *o = sv[ni], *lse = sv[ni + 1];
  if (!same_shape(g, ctx->out->ndim, ctx->out->shape)) return grad_shape_error(ctx, g);
  const lc_dtype dt = ctx->in[0].dtype;
  lc_tensor *h[4] = {NULL, NULL, NULL, NULL}, *d[3] = {NULL, NULL, NULL};
  const lc_tensor *c[4];
  for (int i = 0; i < 3 && !st; i++)
    st = dense(sv[i], dt, &h[i], &c[i]);
  if (!st) st = dense(g, dt, &h[3], &c[3]);
  for (int i = 0; i < 3 && !st; i++)
    st = lc_zeros(ctx->in[i].ndim, ctx->in[i].shape, dt, &d[i]);
  if (!st) {
    sdpa_job j;
    job_shape(&j, c[0], c[1], c[2], mask, ctx->args);
    j.q = lc_data(c[0]);
    j.k = lc_data(c[1]);
    j.v = lc_data(c[2]);
    j.g = lc_data(c[3]);
    j.o = lc_data(o);
    j.lse = lc_data(lse);
    j.dq = lc_data(d[0]);
    j.dk = lc_data(d[1]);
    j.dv = lc_data(d[2]);
    const int64_t rows = j.BH * j.L;
    if (rows > 0 && j.S > 0) {
      const bool f32 = dt == LC_FLOAT32;
      j.D = malloc((f32 ? sizeof(float) : sizeof(double)) * (size_t)rows);
      if (!j.D) {
        st = lc_error_oom((f32 ? sizeof(float) : sizeof(double)) * (size_t)rows);
      } else {
        /* One pass per head (dK, dV and dQ together) when the heads fill the threads; with
         * fewer heads, two passes that split further: (head, key tile) for dK and dV, then
         * (head, query tile) for dQ, recomputing the scores once more. */
        const int64_t blk = SD_BR * SD_BC * (j.E + j.Ev + 1) / 8 + 1;
        lc_blas_single_begin();
        lc_parallel_for(rows, j.Ev + 1, f32 ? rowdot_f32 : rowdot_f64, &j);
        j.bwd_dq =
            j.BH >= lc_get_num_threads() || j.BH * j.nqt * j.nkt * blk < 4 * LC_PARALLEL_GRAIN;
        if (j.bwd_dq) {
          lc_parallel_for(j.BH, j.nqt * j.nkt * blk, f32 ? bwd_kv_f32 : bwd_kv_f64, &j);
        } else {
          lc_parallel_for(j.BH * j.nkt, j.nqt * blk, f32 ? bwd_kv_f32 : bwd_kv_f64, &j);
          lc_parallel_for(j.BH * j.nqt, j.nkt * blk, f32 ? bwd_q_f32 : bwd_q_f64, &j);
        }
        lc_blas_single_end();
        free(j.D);
        if (atomic_load(&j.failed)) st = lc_error_oom(sizeof(double) * (size_t)(4 * SD_BR * SD_BC));
      }
    }
  }
  for (int i = 0; i < 4; i++)
    lc_release(h[i]);
  for (int i = 0; i < 3; i++) {
    if (!st && ctx->needs_grad[i])
      grad_in[i] = d[i];
    else
      lc_release(d[i]);
  }
  return st;
}

/* create_graph: the same gradient as a recorded composition (O(L x S) memory, as PyTorch's
 * math path): P = softmax(q k^T * scale + mask) recomputed from q and k (the saved logsumexp
 * is only a constant shift, so P stays a differentiable function of q and k), then dV = P^T g,
 * dP = g V^T, dS = P * (dP - rowsum(dP * P)), dQ = dS K * scale, dK = dS^T Q * scale. A hidden
 * row has P = 0 (its denominator gets 1 added). Dropout is not supported here. */
static lc_status sdpa_backward_graph(const lc_op_ctx *ctx, const lc_tensor *g,
                                     lc_tensor **grad_in) {
  if (ctx->args->f[1] > 0)
    return lc_set_error(LC_EGRAD,
                        "%s: create_graph (higher-order gradients) with dropout_p > 0 "
                        "is not supported",
                        ctx->op->grad_fn_name);
  const int ni = ctx->n_inputs;
  const lc_dtype dt = ctx->in[0].dtype;
  const double scale = ctx->args->f[0];
  lc_gb b = LC_GB_INIT(ctx);
  lc_tensor *q = lc_gb_saved(&b, 0), *k = lc_gb_saved(&b, 1), *v = lc_gb_saved(&b, 2);
  lc_tensor *mask = ni > 3 ? lc_gb_saved(&b, 3) : NULL, *lse = lc_gb_saved(&b, ni + 1);
  if (b.st) return lc_gb_end(&b, grad_in);
  const int nd = q->ndim;
  const int64_t L = q->shape[nd - 2], S = k->shape[nd - 2];
  lc_tensor *s = lc_gb_sc(&b, LC_MUL, lc_gb_matmul(&b, q, lc_gb_mT(&b, k)), scale);
  if (mask)
    s = lc_gb_bin(&b, LC_ADD, s,
                  mask->dtype == LC_BOOL ? lc_gb_un(&b, LC_LOG, lc_gb_cast(&b, mask, dt)) : mask);
  if (ctx->args->i[2] && !b.st) { /* causal: 0 on and below the diagonal, -inf above */
    lc_tensor *c = NULL;
    int64_t sh[2] = {L, S};
    b.st = lc_tensor_new(2, sh, dt, &c);
    if (!b.st) {
      lc_gb_keep(&b, c);
      for (int64_t i = 0; i < L; i++)
        for (int64_t j = 0; j < S; j++) {
          double x = j > i ? -INFINITY : 0.0;
          if (dt == LC_FLOAT32)
            ((float *)lc_data(c))[i * S + j] = (float)x;
          else
            ((double *)lc_data(c))[i * S + j] = x;
        }
      s = lc_gb_bin(&b, LC_ADD, s, c);
    }
  }
  int64_t col[LC_MAX_DIMS];
  for (int d = 0; d < nd - 1; d++)
    col[d] = q->shape[d];
  col[nd - 1] = 1;
  bool red[LC_MAX_DIMS] = {false};
  red[nd - 1] = true;
  lc_tensor *l1 = lc_gb_reshape(&b, lse, nd, col);
  lc_tensor *live = lc_gb_sc(&b, LC_NE, l1, -INFINITY);
  lc_tensor *e = lc_gb_un(&b, LC_EXP, lc_gb_bin(&b, LC_SUB, s, lc_gb_mask(&b, live, l1)));
  lc_tensor *den = lc_gb_bin(&b, LC_ADD, lc_gb_sum_keep(&b, e, red),
                             lc_gb_cast(&b, lc_gb_un(&b, LC_LOGICAL_NOT, live), dt));
  lc_tensor *p = lc_gb_bin(&b, LC_DIV, e, den);
  if (ctx->needs_grad[2]) lc_gb_grad(&b, 2, lc_gb_matmul(&b, lc_gb_mT(&b, p), g), grad_in);
  if (ctx->needs_grad[0] || ctx->needs_grad[1]) {
    lc_tensor *dp = lc_gb_matmul(&b, g, lc_gb_mT(&b, v));
    lc_tensor *dr = lc_gb_sum_keep(&b, lc_gb_bin(&b, LC_MUL, dp, p), red);
    lc_tensor *ds =
        lc_gb_sc(&b, LC_MUL, lc_gb_bin(&b, LC_MUL, p, lc_gb_bin(&b, LC_SUB, dp, dr)), scale);
    if (ctx->needs_grad[0]) lc_gb_grad(&b, 0, lc_gb_matmul(&b, ds, k), grad_in);
    if (ctx->needs_grad[1]) lc_gb_grad(&b, 1, lc_gb_matmul(&b, lc_gb_mT(&b, ds), q), grad_in);
  }
  return lc_gb_end(&b, grad_in);
}

#define SDPA_SAVE (LC_SAVE_IN(0) | LC_SAVE_IN(1) | LC_SAVE_IN(2) | LC_SAVE_OUT(0) | LC_SAVE_OUT(1))

const lc_op_def lc_op_sdpa = {.name = "scaled_dot_product_attention",
                              .grad_fn_name = "ScaledDotProductAttentionBackward",
                              .n_inputs = 3,
                              .n_outputs = 2,
                              .save = SDPA_SAVE,
                              .forward = sdpa_forward,
                              .backward = sdpa_backward,
                              .backward_graph = sdpa_backward_graph};

const lc_op_def lc_op_sdpa_mask = {.name = "scaled_dot_product_attention",
                                   .grad_fn_name = "ScaledDotProductAttentionBackward",
                                   .n_inputs = 4,
                                   .n_outputs = 2,
                                   .save = SDPA_SAVE | LC_SAVE_IN(3),
                                   .forward = sdpa_forward,
                                   .backward = sdpa_backward,
                                   .backward_graph = sdpa_backward_graph};
