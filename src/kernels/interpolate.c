/*
 * interpolate.c - resampling of the trailing spatial dims: nearest (1-D and 2-D) and bilinear
 * (2-D), forward and backward side by side.
 *
 * Source indices and weights follow PyTorch 1.13's CPU kernels exactly, including the scale
 * computed in the tensor's precision (float for float32), so nearest picks the same pixels:
 *   nearest:  src = min(floorf(dst * scale), in - 1), the product rounded to float;
 *   bilinear: src = scale (dst + 0.5) - 0.5 (computed in double, then rounded to the tensor's
 *             precision) clamped at 0 (align_corners: scale dst), the two neighbours floor(src)
 *             and floor(src) + 1 (clamped), weights 1 - l and l; out == in copies;
 * scale = 1 / scale_factor when the caller gave a factor, else in / out ((in - 1) / (out - 1)
 * with align_corners). Index and weight tables are built once per call (output-sized), then
 * every plane (one per leading index) runs in parallel; backward scatters into the plane of the
 * input gradient, so planes never conflict.
 */
#include "interpolate.h"
#include "grad_graph.h"
#include "kernel_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct ictx {
  const void *src;
  void *dst;
  int64_t ih, iw, oh, ow; /* 1-D: ih = oh = 1 */
  const int64_t *h0, *h1, *w0, *w1;
  const void *lh0, *lh1, *lw0, *lw1; /* bilinear weights (T) */
  bool bilinear;
} ictx;

/* PyTorch 1.13's forward (upsample_generic_Nd with HelperInterpNearest): the scale in the
 * tensor's precision, src = floorf(dst * scale) with the product rounded to float (also for
 * float64), no shortcut for out == in or out == 2 in (a factor of 1.05 or 2.05 reads by the
 * factor). PyTorch's nearest backward does keep those shortcuts, so there its gradient is not
 * the gradient of its forward; lucid's backward is the adjoint of this forward. */
static int64_t nearest_src_f32(int64_t dst, int64_t in, int64_t out, double sf) {
  float scale = sf > 0 ? (float)(1.0 / sf) : (float)in / (float)out;
  int64_t s = (int64_t)floorf((float)dst * scale);
  return s < in - 1 ? s : in - 1;
}

static int64_t nearest_src_f64(int64_t dst, int64_t in, int64_t out, double sf) {
  double scale = sf > 0 ? 1.0 / sf : (double)in / (double)out;
  int64_t s = (int64_t)floorf((float)((double)dst * scale));
  return s < in - 1 ? s : in - 1;
}

/* The per-dtype tables and plane loops. */
#define INTERP_LOOPS(T, S)                                                                         \
  static void lin_table_##S(int64_t in, int64_t out, bool align, double sf, int64_t *i0,           \
                            int64_t *i1, void *vl0, void *vl1) {                                   \
    T *l0 = vl0, *l1 = vl1;                                                                        \
    T scale;                                                                                       \
    if (align)                                                                                     \
      scale = out > 1 ? (T)(in - 1) / (T)(out - 1) : (T)0;                                         \
    else                                                                                           \
      scale = sf > 0 ? (T)(1.0 / sf) : (T)in / (T)out;                                             \
    for (int64_t d = 0; d < out; d++) {                                                            \
      if (out == in) {                                                                             \
        i0[d] = i1[d] = d;                                                                         \
        l0[d] = 1;                                                                                 \
        l1[d] = 0;                                                                                 \
        continue;                                                                                  \
      }                                                                                            \
      T src = align ? scale * (T)d : (T)((double)scale * ((double)d + 0.5) - 0.5);                 \
      if (src < 0) src = 0;                                                                        \
      int64_t a = (int64_t)src;                                                                    \
      i0[d] = a;                                                                                   \
      i1[d] = a + (a < in - 1 ? 1 : 0);                                                            \
      T l = src - (T)a;                                                                            \
      if (l < 0) l = 0;                                                                            \
      if (l > 1) l = 1;                                                                            \
      l1[d] = l;                                                                                   \
      l0[d] = (T)1 - l;                                                                            \
    }                                                                                              \
  }                                                                                                \
                                                                                                   \
  static void fwd_planes_##S(void *vctx, int64_t p0, int64_t p1) {                                 \
    const ictx *c = vctx;                                                                          \
    int64_t ih = c->ih, iw = c->iw, oh = c->oh, ow = c->ow;                                        \
    for (int64_t p = p0; p < p1; p++) {                                                            \
      const T *restrict x = (const T *)c->src + p * ih * iw;                                       \
      T *restrict y = (T *)c->dst + p * oh * ow;                                                   \
      if (!c->bilinear) {                                                                          \
        for (int64_t h = 0; h < oh; h++) {                                                         \
          const T *restrict row = x + c->h0[h] * iw;                                               \
          T *restrict o = y + h * ow;                                                              \
          for (int64_t w = 0; w < ow; w++)                                                         \
            o[w] = row[c->w0[w]];                                                                  \
        }                                                                                          \
      } else {                                                                                     \
        const T *lh0 = c->lh0, *lh1 = c->lh1, *lw0 = c->lw0, *lw1 = c->lw1;                        \
        for (int64_t h = 0; h < oh; h++) {                                                         \
          const T *restrict r0 = x + c->h0[h] * iw, *restrict r1 = x + c->h1[h] * iw;              \
          T a0 = lh0[h], a1 = lh1[h];                                                              \
          T *restrict o = y + h * ow;                                                              \
          for (int64_t w = 0; w < ow; w++) {                                                       \
            int64_t j0 = c->w0[w], j1 = c->w1[w];                                                  \
            o[w] = a0 * (lw0[w] * r0[j0] + lw1[w] * r0[j1]) +                                      \
                   a1 * (lw0[w] * r1[j0] + lw1[w] * r1[j1]);                                       \
          }                                                                                        \
        }                                                                                          \
      }                                                                                            \
    }                                                                                              \
  }                                                                                                \
                                                                                                   \
  static void bwd_planes_##S(void *vctx, int64_t p0, int64_t p1) {                                 \
    const ictx *c = vctx;                                                                          \
    int64_t ih = c->ih, iw = c->iw, oh = c->oh, ow = c->ow;                                        \
    for (int64_t p = p0; p < p1; p++) {                                                            \
      const T *g = (const T *)c->src + p * oh * ow;                                                \
      T *gx = (T *)c->dst + p * ih * iw;                                                           \
      if (!c->bilinear) {                                                                          \
        for (int64_t h = 0; h < oh; h++) {                                                         \
          T *row = gx + c->h0[h] * iw;                                                             \
          const T *gr = g + h * ow;                                                                \
          for (int64_t w = 0; w < ow; w++)                                                         \
            row[c->w0[w]] += gr[w];                                                                \
        }                                                                                          \
      } else {                                                                                     \
        const T *lh0 = c->lh0, *lh1 = c->lh1, *lw0 = c->lw0, *lw1 = c->lw1;                        \
        for (int64_t h = 0; h < oh; h++) {                                                         \
          T *r0 = gx + c->h0[h] * iw, *r1 = gx + c->h1[h] * iw;                                    \
          const T *gr = g + h * ow;                                                                \
          for (int64_t w = 0; w < ow; w++) {                                                       \
            int64_t j0 = c->w0[w], j1 = c->w1[w];                                                  \
            T v = gr[w];                                                                           \
            r0[j0] += lh0[h] * lw0[w] * v;                                                         \
            r0[j1] += lh0[h] * lw1[w] * v;                                                         \
            r1[j0] += lh1[h] * lw0[w] * v;                                                         \
            r1[j1] += lh1[h] * lw1[w] * v;                                                         \
          }                                                                                        \
        }                                                                                          \
      }                                                                                            \
    }                                                                                              \
  }

INTERP_LOOPS(float, f32)
INTERP_LOOPS(double, f64)

/* The tables for one spatial dim: idx0/idx1 (and weights l0/l1 in dtype dt when bilinear). */
static void tables(lc_dtype dt, bool bilinear, bool align, int64_t in, int64_t out, double sf,
                   int64_t *i0, int64_t *i1, void *l0, void *l1) {
  if (dt == LC_FLOAT32) {
    if (bilinear)
      lin_table_f32(in, out, align, sf, i0, i1, l0, l1);
    else
      for (int64_t d = 0; d < out; d++)
        i0[d] = nearest_src_f32(d, in, out, sf);
  } else {
    if (bilinear)
      lin_table_f64(in, out, align, sf, i0, i1, l0, l1);
    else
      for (int64_t d = 0; d < out; d++)
        i0[d] = nearest_src_f64(d, in, out, sf);
  }
}

/* Plane geometry of x (nsp spatial dims, output sizes os) and the tables, in one allocation. */
typedef struct iplan {
  int64_t planes;
  ictx c;
  void *mem;
} iplan;

static lc_status plan(const char *name, const lc_meta *x, const lc_op_args *args, iplan *p) {
  int nsp = (int)args->i[2];
  bool bilinear = args->i[0] == LC_K_INTERP_BILINEAR, align = args->i[1] != 0;
  if (nsp < 1 || nsp > 2 || x->ndim < nsp + 1 || (bilinear && nsp != 2))
    return lc_set_error(LC_EARG, "%s: bad spatial rank %d for a %d-dim input", name, nsp, x->ndim);
  memset(p, 0, sizeof *p);
  int64_t in_sp[2] = {1, 1}, out_sp[2] = {1, 1};
  double sf[2] = {0, 0};
  for (int k = 0; k < nsp; k++) {
    in_sp[2 - nsp + k] = x->shape[x->ndim - nsp + k];
    out_sp[2 - nsp + k] = args->i[3 + k];
    sf[2 - nsp + k] = args->f[k];
  }
  p->planes = 1;
  for (int d = 0; d < x->ndim - nsp; d++)
    p->planes *= x->shape[d];
  /* the output obeys the one shape rule before its index tables are sized from it */
  int64_t oshape[LC_MAX_DIMS];
  memcpy(oshape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
  for (int k = 0; k < nsp; k++)
    oshape[x->ndim - nsp + k] = out_sp[2 - nsp + k];
  lc_status cst = lc_check_shape(name, x->ndim, oshape);
  if (cst) return cst;
  size_t tsz = lc_dtype_size(x->dtype);
  size_t n = (size_t)(out_sp[0] + out_sp[1]);
  size_t bytes = 2 * n * sizeof(int64_t) + 2 * n * tsz + 16;
  char *mem = malloc(bytes);
  if (!mem) return lc_error_oom(bytes);
  int64_t *h0 = (int64_t *)mem, *h1 = h0 + out_sp[0], *w0 = h1 + out_sp[0], *w1 = w0 + out_sp[1];
  char *wt = (char *)(w1 + out_sp[1]);
  void *lh0 = wt, *lh1 = wt + out_sp[0] * tsz, *lw0 = wt + 2 * out_sp[0] * tsz,
       *lw1 = wt + (2 * out_sp[0] + out_sp[1]) * tsz;
  tables(x->dtype, bilinear, align, in_sp[0], out_sp[0], sf[0], h0, h1, lh0, lh1);
  tables(x->dtype, bilinear, align, in_sp[1], out_sp[1], sf[1], w0, w1, lw0, lw1);
  p->mem = mem;
  p->c = (ictx){.ih = in_sp[0],
                .iw = in_sp[1],
                .oh = out_sp[0],
                .ow = out_sp[1],
                .h0 = h0,
                .h1 = h1,
                .w0 = w0,
                .w1 = w1,
                .lh0 = lh0,
                .lh1 = lh1,
                .lw0 = lw0,
                .lw1 = lw1,
                .bilinear = bilinear};
  return LC_OK;
}

static lc_status interp_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                                const lc_op_args *args, lc_tensor **out) {
  const lc_tensor *x = in[0];
  lc_status st = need_float_dtype(op->name, "input", x->dtype);
  if (st) return st;
  lc_meta m;
  meta_of(x, &m);
  iplan p;
  if ((st = plan(op->name, &m, args, &p))) return st;
  int nsp = (int)args->i[2];
  int64_t oshape[LC_MAX_DIMS];
  memcpy(oshape, x->shape, sizeof oshape);
  for (int k = 0; k < nsp; k++)
    oshape[x->ndim - nsp + k] = args->i[3 + k];
  lc_tensor *cx = NULL, *y = NULL;
  st = lc_k_dense(x, &cx);
  if (!st) st = lc_tensor_new(x->ndim, oshape, x->dtype, &y);
  if (!st) {
    p.c.src = lc_data(cx);
    p.c.dst = lc_data(y);
    int64_t cost = p.c.oh * p.c.ow * (p.c.bilinear ? 4 : 1);
    if (y->numel > 0 && x->numel > 0)
      lc_parallel_for(p.planes, cost, x->dtype == LC_FLOAT32 ? fwd_planes_f32 : fwd_planes_f64,
                      &p.c);
  }
  free(p.mem);
  lc_release(cx);
  if (st) {
    lc_release(y);
    return st;
  }
  out[0] = y;
  return LC_OK;
}

static lc_status interp_backward(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  if (!ctx->needs_grad[0]) return LC_OK;
  const lc_meta *x = &ctx->in[0];
  iplan p;
  lc_status st = plan(ctx->op->grad_fn_name, x, ctx->args, &p);
  if (st) return st;
  lc_tensor *cg = NULL, *gx = NULL;
  st = lc_k_dense_as(g, x->dtype, &cg);
  if (!st) st = lc_tensor_new(x->ndim, x->shape, x->dtype, &gx);
  if (!st) {
    p.c.src = lc_data(cg);
    p.c.dst = lc_data(gx);
    int64_t n = lc_numel(gx);
    if (n > 0) memset(lc_data(gx), 0, (size_t)n * lc_dtype_size(x->dtype));
    int64_t cost = p.c.oh * p.c.ow * (p.c.bilinear ? 4 : 1);
    if (n > 0 && lc_numel(cg) > 0)
      lc_parallel_for(p.planes, cost, x->dtype == LC_FLOAT32 ? bwd_planes_f32 : bwd_planes_f64,
                      &p.c);
  }
  free(p.mem);
  lc_release(cg);
  if (st) {
    lc_release(gx);
    return st;
  }
  grad_in[0] = gx;
  return LC_OK;
}

/* interpolation is linear in x: its gradient is lc_gb_linear_grad's */
static lc_status interp_backward_graph(const lc_op_ctx *ctx, const lc_tensor *g,
                                       lc_tensor **grad_in) {
  lc_gb b = LC_GB_INIT(ctx);
  lc_gb_grad(&b, 0, lc_gb_linear_grad(&b, g, ctx->args), grad_in);
  return lc_gb_end(&b, grad_in);
}

const lc_op_def lc_op_interpolate = {.name = "interpolate",
                                     .grad_fn_name = "InterpolateBackward",
                                     .n_inputs = 1,
                                     .n_outputs = 1,
                                     .save = 0,
                                     .forward = interp_forward,
                                     .backward = interp_backward,
                                     .backward_graph = interp_backward_graph};
