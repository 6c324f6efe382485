/* embedding.c - the embedding op, forward and backward side by side: rows of a weight
 * {num_embeddings, embedding_dim} looked up by an int64 / int32 index tensor, the gradient
 * accumulated per row (the padding row skipped). float32 and float64; contiguous operands (a
 * strided input is copied once). */
#include "embedding.h"
#include "grad_graph.h"
#include "kernel_util.h"

#include <stdio.h>
#include <string.h>

/* "[1, 0]": the position of flat C-order element k of shape, each coordinate marked. */
static void position_str(int ndim, const int64_t *shape, int64_t k, char *buf, size_t cap) {
  int64_t idx[LC_MAX_DIMS];
  for (int d = ndim - 1; d >= 0; d--) {
    idx[d] = shape[d] ? k % shape[d] : 0;
    k = shape[d] ? k / shape[d] : 0;
  }
  size_t n = (size_t)snprintf(buf, cap, "[");
  for (int d = 0; d < ndim && n < cap; d++)
    n += (size_t)snprintf(buf + n, cap - n, d ? ", " LC_POS_I : LC_POS_I, (long long)idx[d]);
  if (n < cap) snprintf(buf + n, cap - n, "]");
}

typedef struct emb_job {
  size_t row_bytes;
  int64_t base;
  const char *w;
  const void *idx;
  lc_dtype idt;
  char *y;
} emb_job;

static void emb_rows(void *ctx, int64_t b, int64_t e) {
  const emb_job *j = ctx;
  for (int64_t k = b; k < e; k++) {
    int64_t r = load_index(j->idx, j->idt, k) - j->base;
    memcpy(j->y + (size_t)k * j->row_bytes, j->w + (size_t)r * j->row_bytes, j->row_bytes);
  }
}

static lc_status emb_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                             const lc_op_args *args, lc_tensor **out) {
  const lc_tensor *w = in[0], *idx = in[1];
  lc_status st = need_float_dtype(op->name, "weight", w->dtype);
  if (st) return st;
  char buf[256];
  if (w->ndim != 2)
    return lc_set_error(LC_ESHAPE, "%s: weight must be 2-D {num_embeddings, embedding_dim}, got "
                                   "shape %s",
                        op->name, lc_shape_str(w->ndim, w->shape, buf, sizeof buf));
  if ((st = need_index(op->name, "input", idx))) return st;
  if (idx->ndim + 1 > LC_MAX_DIMS)
    return lc_set_error(LC_ESHAPE, "%s: input has %d dims, at most %d allowed", op->name,
                        idx->ndim, LC_MAX_DIMS - 1);
  const int64_t N = w->shape[0], D = w->shape[1], base = args->i[1];
  lc_tensor *hi = NULL, *hw = NULL, *y = NULL;
  const lc_tensor *ic = NULL, *wc = NULL;
  if ((st = dense(idx, idx->dtype, &hi, &ic))) return st;
  const void *ip = lc_data(ic);
  for (int64_t k = 0; k < ic->numel; k++) {
    int64_t v = load_index(ip, ic->dtype, k);
    if (v < base || v - base >= N) {
      /* Messages are 0-based like every C text, whatever base the indices were read in: the
       * index as a 0-based row, marked LC_POS_ABS (a row below 0 is shown shifted too), so a
       * binding that reads base-1 indices shows the user's own value by rendering 1-based. */
      char pos[256];
      position_str(ic->ndim, ic->shape, k, pos, sizeof pos);
      if (N == 0)
        st = lc_set_error(LC_EINDEX,
                          "%s: index " LC_POS_ABS " at position %s out of range: the embedding "
                          "has 0 rows",
                          op->name, (long long)(v - base), pos);
      else
        st = lc_set_error(
            LC_EINDEX,
            "%s: index " LC_POS_ABS " at position %s out of range for %lld embeddings "
            "(expected " LC_POS_I ".." LC_POS_I ")",
            op->name, (long long)(v - base), pos, (long long)N, 0LL, (long long)(N - 1));
      lc_release(hi);
      return st;
    }
  }
  int64_t shape[LC_MAX_DIMS];
  memcpy(shape, idx->shape, (size_t)idx->ndim * sizeof *shape);
  shape[idx->ndim] = D;
  if (!(st = dense(w, w->dtype, &hw, &wc)) &&
      !(st = lc_tensor_new(idx->ndim + 1, shape, w->dtype, &y))) {
    emb_job j = {.row_bytes = (size_t)D * lc_dtype_size(w->dtype),
                 .base = base,
                 .w = lc_data(wc),
                 .idx = ip,
                 .idt = ic->dtype,
                 .y = lc_data(y)};
    if (D > 0) lc_parallel_for(ic->numel, D, emb_rows, &j);
    *out = y;
  }
  lc_release(hi);
  lc_release(hw);
  return st;
}

typedef struct emb_bjob {
  int64_t K, D, base, pad;
  const void *idx;
  lc_dtype idt, dt;
  const char *g;
  char *gw;
} emb_bjob;

#define EMB_BWD(T, S)                                                                              \
  static void emb_acc_##S(const emb_bjob *j, int64_t d0, int64_t d1) {                             \
    const T *restrict g = (const T *)j->g;                                                         \
    T *restrict gw = (T *)j->gw;                                                                   \
    for (int64_t k = 0; k < j->K; k++) {                                                           \
      int64_t r = load_index(j->idx, j->idt, k) - j->base;                                         \
      if (r == j->pad) continue;                                                                   \
      T *restrict dst = gw + r * j->D;                                                             \
      const T *restrict src = g + k * j->D;                                                        \
      for (int64_t d = d0; d < d1; d++)                                                            \
        dst[d] += src[d];                                                                          \
    }                                                                                              \
  }

EMB_BWD(float, f32)
EMB_BWD(double, f64)

/* Split over embedding columns: threads never write the same element. */
static void emb_cols(void *ctx, int64_t b, int64_t e) {
  const emb_bjob *j = ctx;
  if (j->dt == LC_FLOAT32)
    emb_acc_f32(j, b, e);
  else
    emb_acc_f64(j, b, e);
}

/* create_graph: the rows of g scatter-added into zeros of the weight's shape at the 0-based
 * indices (idx - base), the padding row's contributions masked out. */
static lc_status emb_backward_graph(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  if (!ctx->needs_grad[0]) return LC_OK;
  const lc_meta *wm = &ctx->in[0];
  lc_gb b = LC_GB_INIT(ctx);
  lc_tensor *idx = lc_gb_saved(&b, 0);
  if (b.st) return lc_gb_end(&b, grad_in);
  const int64_t K = idx->numel, D = wm->shape[1];
  int64_t k1[2] = {K, 1}, kd[2] = {K, D};
  lc_tensor *i0 = lc_gb_cast(&b, lc_gb_sc(&b, LC_SUB, idx, (double)ctx->args->i[1]), LC_INT64);
  lc_tensor *col = lc_gb_reshape(&b, i0, 2, k1);
  lc_tensor *rows = lc_gb_reshape(&b, g, 2, kd);
  rows = lc_gb_mask(&b, lc_gb_sc(&b, LC_NE, col, (double)ctx->args->i[0]), rows);
  lc_gb_grad(&b, 0, lc_gb_put_back(&b, wm, 0, rows, lc_gb_expand(&b, col, 2, kd)), grad_in);
  return lc_gb_end(&b, grad_in);
}

static lc_status emb_backward(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  if (!ctx->needs_grad[0]) return LC_OK;
  const lc_tensor *idx = NULL;
  lc_status st = saved(ctx, 0, &idx);
  if (st) return st;
  const lc_meta *wm = &ctx->in[0];
  if (!same_shape(g, ctx->out->ndim, ctx->out->shape)) return grad_shape_error(ctx, g);
  lc_tensor *hi = NULL, *hg = NULL, *gw = NULL;
  const lc_tensor *ic = NULL, *gc = NULL;
  if (!(st = dense(idx, idx->dtype, &hi, &ic)) && !(st = dense(g, wm->dtype, &hg, &gc)) &&
      !(st = lc_zeros(2, wm->shape, wm->dtype, &gw))) {
    emb_bjob j = {.K = ic->numel,
                  .D = wm->shape[1],
                  .base = ctx->args->i[1],
                  .pad = ctx->args->i[0],
                  .idx = lc_data(ic),
                  .idt = ic->dtype,
                  .dt = wm->dtype,
                  .g = lc_data(gc),
                  .gw = lc_data(gw)};
    lc_parallel_for(j.D, j.K > 0 ? j.K : 1, emb_cols, &j);
    grad_in[0] = gw;
  }
  lc_release(hi);
  lc_release(hg);
  return st;
}

const lc_op_def lc_op_embedding = {.name = "embedding",
                                   .grad_fn_name = "EmbeddingBackward",
                                   .n_inputs = 2,
                                   .n_outputs = 1,
                                   .save = LC_SAVE_IN(1),
                                   .forward = emb_forward,
                                   .backward = emb_backward,
                                   .backward_graph = emb_backward_graph};
