/*
 * advindex.c - scatter_reduce: self with src's values folded in at index along dim by one of
 * sum, prod, mean, amax, amin (include_self: whether self's own values take part), with its
 * backward side by side.
 *
 * The forward walks the index tensor's positions in C order; two positions that differ only
 * along dim may fold into the same element, so the walk is serial. The backward follows
 * PyTorch 1.13's scatter_reduce_backward formula by formula, written with the grad-graph
 * builder (every step an op run through ctx->run), so it is its own backward_graph.
 */
#include "grad_graph.h"
#include "kernel_util.h"

#include <math.h>
#include <string.h>

static lc_status sr_check(const lc_tensor *t, int *dim, const lc_tensor *index,
                          const lc_tensor *src, int reduce) {
  const char *fn = "scatter_reduce";
  lc_status st = need_index(fn, "index", index);
  if (st) return st;
  if (reduce < 0 || reduce >= LC_SR_COUNT)
    return lc_set_error(LC_EARG, "%s: unknown reduction %d", fn, reduce);
  if (t->dtype == LC_BOOL)
    return lc_set_error(LC_EDTYPE, "%s: expected a numeric input, got bool", fn);
  if (src->dtype != t->dtype)
    return lc_set_error(LC_EDTYPE, "%s: src must have the input's dtype %s, got %s", fn,
                        lc_dtype_name(t->dtype), lc_dtype_name(src->dtype));
  int nd = t->ndim ? t->ndim : 1;
  st = lc_wrap_dim(dim, t->ndim, fn);
  if (st) return st;
  int ind = index->ndim ? index->ndim : 1, snd = src->ndim ? src->ndim : 1;
  if (ind != nd)
    return lc_set_error(LC_ESHAPE, "%s: index must have as many dims as the input (%d), got %d", fn,
                        t->ndim, index->ndim);
  if (snd != nd)
    return lc_set_error(LC_ESHAPE, "%s: src must have as many dims as the input (%d), got %d", fn,
                        t->ndim, src->ndim);
  for (int d = 0; d < t->ndim; d++) {
    if (d != *dim && index->shape[d] > t->shape[d])
      return lc_set_error(
          LC_ESHAPE, "%s: index size %lld at dim " LC_POS_D " exceeds the input's size %lld there",
          fn, (long long)index->shape[d], d, (long long)t->shape[d]);
    if (index->shape[d] > src->shape[d])
      return lc_set_error(LC_ESHAPE,
                          "%s: index size %lld at dim " LC_POS_D " exceeds src's size %lld there",
                          fn, (long long)index->shape[d], d, (long long)src->shape[d]);
  }
  return lc_check_indices(index, t->ndim ? t->shape[*dim] : 1, *dim, fn);
}

/* The C-order walk over the index positions: offsets into index, src and the output with the
 * coordinate along dim left out. */
typedef struct sr_walk {
  int nd, dim;
  int64_t shape[LC_MAX_DIMS], idx[LC_MAX_DIMS], st[3][LC_MAX_DIMS], off[3];
} sr_walk;

static void sr_next(sr_walk *w) {
  for (int d = w->nd - 1; d >= 0; d--) {
    if (++w->idx[d] < w->shape[d]) {
      for (int k = 0; k < 3; k++)
        w->off[k] += w->st[k][d];
      return;
    }
    for (int k = 0; k < 3; k++)
      w->off[k] -= (w->shape[d] - 1) * w->st[k][d];
    w->idx[d] = 0;
  }
}

#define SR_KERNEL(T, LOWEST, HIGHEST, DIVIDE)                                                      \
  do {                                                                                             \
    T *o = (T *)lc_data(r);                                                                        \
    const T *s = (const T *)lc_data(src);                                                          \
    const char *ix = lc_data(index);                                                               \
    if (!include_self) {                                                                           \
      T id = reduce == LC_SR_PROD   ? (T)1                                                         \
             : reduce == LC_SR_AMAX ? (LOWEST)                                                     \
             : reduce == LC_SR_AMIN ? (HIGHEST)                                                    \
                                    : (T)0;                                                        \
      sr_walk w = w0;                                                                              \
      for (int64_t k = 0; k < total; k++, sr_next(&w))                                             \
        o[w.off[2] + load_index(ix, index->dtype, w.off[0]) * ostr] = id;                          \
    }                                                                                              \
    sr_walk w = w0;                                                                                \
    for (int64_t k = 0; k < total; k++, sr_next(&w)) {                                             \
      int64_t p = w.off[2] + load_index(ix, index->dtype, w.off[0]) * ostr;                        \
      T v = s[w.off[1]];                                                                           \
      switch (reduce) {                                                                            \
      case LC_SR_SUM:                                                                              \
      case LC_SR_MEAN: o[p] += v; break;                                                           \
      case LC_SR_PROD: o[p] *= v; break;                                                           \
      case LC_SR_AMAX:                                                                             \
        if (v > o[p] || v != v) o[p] = v;                                                          \
        break;                                                                                     \
      default:                                                                                     \
        if (v < o[p] || v != v) o[p] = v;                                                          \
        break;                                                                                     \
      }                                                                                            \
      if (count) count[p]++;                                                                       \
    }                                                                                              \
    if (count)                                                                                     \
      for (int64_t p = 0; p < r->numel; p++)                                                       \
        if (count[p]) {                                                                            \
          T c_ = (T)(count[p] + (include_self ? 1 : 0));                                           \
          DIVIDE;                                                                                  \
        }                                                                                          \
  } while (0)

static int64_t floor_div64(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
  return q;
}

static lc_status sr_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                            const lc_op_args *args, lc_tensor **out) {
  (void)op;
  (void)n;
  const lc_tensor *t = in[0], *index = in[1], *src = in[2];
  int dim = (int)args->i[0], reduce = (int)args->i[1];
  bool include_self = args->i[2] != 0;
  lc_status st = sr_check(t, &dim, index, src, reduce);
  if (st) return st;
  lc_tensor *r = NULL;
  st = lc_k_copy_as(t, t->dtype, &r);
  if (st) return st;
  int64_t total = index->numel;
  int64_t *count = NULL;
  lc_tensor *ct = NULL; /* mean: how many src values each element received */
  if (reduce == LC_SR_MEAN && total > 0 && r->numel > 0) {
    st = lc_zeros(r->ndim, r->shape, LC_INT64, &ct);
    if (st) {
      lc_release(r);
      return st;
    }
    count = lc_data(ct);
  }
  sr_walk w0;
  memset(&w0, 0, sizeof w0);
  w0.nd = t->ndim ? t->ndim : 1;
  w0.dim = dim;
  for (int d = 0; d < w0.nd; d++) {
    w0.shape[d] = index->ndim ? index->shape[d] : 1;
    w0.st[0][d] = index->ndim ? index->strides[d] : 0;
    w0.st[1][d] = src->ndim ? src->strides[d] : 0;
    w0.st[2][d] = (d == dim || !r->ndim) ? 0 : r->strides[d];
  }
  int64_t ostr = r->ndim ? r->strides[dim] : 0;
  if (total > 0) {
    switch (t->dtype) {
    case LC_FLOAT32: SR_KERNEL(float, -INFINITY, INFINITY, o[p] /= c_); break;
    case LC_FLOAT64: SR_KERNEL(double, -INFINITY, INFINITY, o[p] /= c_); break;
    case LC_INT32:
      SR_KERNEL(int32_t, INT32_MIN, INT32_MAX, o[p] = (int32_t)floor_div64(o[p], c_));
      break;
    default: SR_KERNEL(int64_t, INT64_MIN, INT64_MAX, o[p] = floor_div64(o[p], c_)); break;
    }
  }
  lc_release(ct);
  *out = r;
  return LC_OK;
}

/* ---------------------------------------------------------------- backward */

static lc_tensor *gb_dim(lc_gb *b, const lc_op_def *op, int dim, int n, lc_tensor *const *in) {
  lc_op_args a = {.i = {dim}, .ni = 1};
  return lc_gb_op(b, op, n, in, &a);
}

static lc_tensor *gb_gather(lc_gb *b, lc_tensor *x, int dim, lc_tensor *index) {
  lc_tensor *in[2] = {x, index};
  return gb_dim(b, &lc_op_gather, dim, 2, in);
}

static lc_tensor *gb_scatter_add(lc_gb *b, lc_tensor *x, int dim, lc_tensor *index, lc_tensor *s) {
  lc_tensor *in[3] = {x, index, s};
  return gb_dim(b, &lc_op_scatter_add, dim, 3, in);
}

static lc_tensor *gb_full(lc_gb *b, const lc_tensor *like, double v) {
  if (b->st) return NULL;
  lc_tensor *t = NULL;
  if (lc_full(like->ndim, like->shape, v, like->dtype, &t) != LC_OK) b->st = lc_last_status();
  return lc_gb_keep(b, t);
}

/* geometry tensor {ndim, 0, shape..., contiguous strides of `of`} */
static lc_tensor *gb_geom(lc_gb *b, const lc_tensor *view, const lc_tensor *of) {
  if (b->st) return NULL;
  int64_t g[2 + 2 * LC_MAX_DIMS];
  int nd = view->ndim, k = 0;
  g[k++] = nd;
  g[k++] = 0;
  for (int d = 0; d < nd; d++)
    g[k++] = view->shape[d];
  int64_t s = 1, str[LC_MAX_DIMS];
  for (int d = nd - 1; d >= 0; d--) {
    str[d] = s;
    s *= of->shape[d] > 0 ? of->shape[d] : 1;
  }
  for (int d = 0; d < nd; d++)
    g[k++] = str[d];
  int64_t len = k;
  lc_tensor *t = NULL;
  if (lc_from_data(1, &len, LC_INT64, g, &t) != LC_OK) b->st = lc_last_status();
  return lc_gb_keep(b, t);
}

static lc_tensor *gb_sr(lc_gb *b, lc_tensor *self, int dim, lc_tensor *index, lc_tensor *src,
                        const lc_op_args *args) {
  lc_tensor *in[3] = {self, index, src};
  lc_op_args a = *args;
  a.i[0] = dim;
  return lc_gb_op(b, &lc_op_scatter_reduce, 3, in, &a);
}

static lc_status sr_backward(const lc_op_ctx *ctx, const lc_tensor *gc, lc_tensor **grad_in) {
  lc_gb b = LC_GB_INIT(ctx);
  lc_tensor *g = (lc_tensor *)gc;
  lc_tensor *self = lc_gb_saved(&b, 0), *index = lc_gb_saved(&b, 1), *src0 = lc_gb_saved(&b, 2),
            *result = lc_gb_saved(&b, 3);
  if (b.st) return lc_gb_end(&b, grad_in);
  int dim = (int)ctx->args->i[0], reduce = (int)ctx->args->i[1];
  bool include_self = ctx->args->i[2] != 0;
  lc_wrap_dim(&dim, ctx->in[0].ndim, "ScatterReduceBackward");
  /* src cut to index's shape (the positions that were read) */
  bool cut = !same_shape(src0, index->ndim, index->shape);
  lc_tensor *geom = cut ? gb_geom(&b, index, src0) : NULL;
  lc_tensor *src = src0;
  if (cut) {
    lc_tensor *in[2] = {src0, geom};
    src = lc_gb_op(&b, &lc_op_as_strided, 2, in, NULL);
  }
  lc_tensor *gself = NULL, *gsrc = NULL;
  switch (reduce) {
  case LC_SR_SUM:
    gself = g;
    gsrc = gb_gather(&b, g, dim, index);
    break;
  case LC_SR_PROD: {
    lc_tensor *zs = lc_gb_sc(&b, LC_EQ, self, 0.0);
    lc_op_args one = {.f = {1.0}};
    lc_tensor *mi[2] = {self, zs};
    lc_tensor *mself = lc_gb_op(&b, &lc_op_masked_fill, 2, mi, &one);
    lc_tensor *mres = gb_sr(&b, mself, dim, index, src, ctx->args);
    gself = lc_gb_bin(&b, LC_DIV, lc_gb_bin(&b, LC_MUL, g, mres), mself);
    lc_tensor *szero = lc_gb_sc(&b, LC_EQ, src, 0.0);
    lc_tensor *nz = gb_gather(&b,
                              gb_scatter_add(&b, lc_gb_zeros(&b, &ctx->in[0], self->dtype), dim,
                                             index, lc_gb_cast(&b, szero, self->dtype)),
                              dim, index);
    lc_tensor *single = lc_gb_bin(&b, LC_LOGICAL_AND, szero, lc_gb_sc(&b, LC_EQ, nz, 1.0));
    lc_tensor *ms[2] = {src, single};
    lc_tensor *msrc = lc_gb_op(&b, &lc_op_masked_fill, 2, ms, &one);
    lc_tensor *msres = gb_sr(&b, self, dim, index, msrc, ctx->args);
    lc_tensor *mz[2] = {src, szero};
    lc_tensor *src1 = lc_gb_op(&b, &lc_op_masked_fill, 2, mz, &one);
    gsrc = lc_gb_where(
        &b, single, gb_gather(&b, lc_gb_bin(&b, LC_MUL, g, msres), dim, index),
        lc_gb_bin(&b, LC_DIV, gb_gather(&b, lc_gb_bin(&b, LC_MUL, g, result), dim, index), src1));
    break;
  }
  case LC_SR_MEAN: {
    lc_tensor *base = include_self ? gb_full(&b, g, 1.0) : gb_full(&b, g, 0.0);
    lc_tensor *cnt = gb_scatter_add(&b, base, dim, index, gb_full(&b, src, 1.0));
    lc_op_args one = {.f = {1.0}};
    lc_tensor *ci[2] = {cnt, lc_gb_sc(&b, LC_EQ, cnt, 0.0)};
    cnt = lc_gb_op(&b, &lc_op_masked_fill, 2, ci, &one);
    gself = lc_gb_bin(&b, LC_DIV, g, cnt);
    gsrc = lc_gb_bin(&b, LC_DIV, gb_gather(&b, g, dim, index), gb_gather(&b, cnt, dim, index));
    break;
  }
  default: { /* amax, amin: shared evenly among the elements equal to the result */
    lc_tensor *value = gb_gather(&b, result, dim, index);
    lc_tensor *sis = lc_gb_bin(&b, LC_EQ, self, result);
    lc_tensor *srs = lc_gb_bin(&b, LC_EQ, src, value);
    lc_tensor *nd = gb_scatter_add(&b, lc_gb_cast(&b, sis, self->dtype), dim, index,
                                   lc_gb_cast(&b, srs, self->dtype));
    lc_tensor *gd = lc_gb_bin(&b, LC_DIV, g, nd);
    gself = lc_gb_mask(&b, sis, gd);
    gsrc = lc_gb_mask(&b, srs, gb_gather(&b, gd, dim, index));
    break;
  }
  }
  if (ctx->needs_grad[0]) {
    if (!include_self && !b.st) {
      lc_meta im;
      meta_of(index, &im);
      lc_tensor *in[3] = {gself, index, lc_gb_zeros(&b, &im, gself->dtype)};
      gself = gb_dim(&b, &lc_op_scatter, dim, 3, in);
    }
    lc_gb_grad(&b, 0, gself, grad_in);
  }
  if (ctx->needs_grad[2]) {
    if (cut && !b.st) {
      lc_tensor *in[3] = {lc_gb_zeros(&b, &ctx->in[2], gsrc->dtype), gsrc, geom};
      gsrc = lc_gb_op(&b, &lc_op_as_strided_scatter, 3, in, NULL);
    }
    lc_gb_grad(&b, 2, gsrc, grad_in);
  }
  return lc_gb_end(&b, grad_in);
}

const lc_op_def lc_op_scatter_reduce = {
    .name = "scatter_reduce",
    .grad_fn_name = "ScatterReduceBackward",
    .n_inputs = 3,
    .n_outputs = 1,
    .save = LC_SAVE_IN(0) | LC_SAVE_IN(1) | LC_SAVE_IN(2) | LC_SAVE_OUT(0),
    .forward = sr_forward,
    .backward = sr_backward,
    .backward_graph = sr_backward,
};
