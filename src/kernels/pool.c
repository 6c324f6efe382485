/*
 * pool.c - pooling: max (with argmax indices), average, adaptive average and adaptive max, over
 * 1 or 2 trailing spatial dims; forward and backward side by side.
 *
 * Every op reads the input as P planes of H x W (1-d: H = 1), all leading dims being planes.
 * Each output position pools a window that is, per axis, the positions base + i * step for the
 * kernel indices i in [lo, hi) that fall inside the input (an "axis plan", computed once per
 * call). Planes are independent and split over threads. Max pooling saves the argmax (flat
 * h * W + w within the plane, as PyTorch's indices) so backward is a scatter-add of the
 * gradient; average pooling's backward spreads each gradient over its window.
 */
#include "conv.h"
#include "grad_graph.h"
#include "kernel_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { POOL_MAX, POOL_AVG, POOL_AMAX, POOL_AAVG };

/* One axis: output o pools positions base[o] + i * step for i in [lo[o], hi[o]); cnt[o] is the
 * window size counted with padding (average pooling with count_include_pad). */
typedef struct axis {
  int64_t n_in, n_out, step;
  int64_t *base, *lo, *hi, *cnt; /* one allocation: 4 * n_out */
} axis;

typedef struct pplan {
  int kind;
  const char *name; /* "max_pool2d", ... */
  int sd;
  int64_t P, H, W, OH, OW;
  axis ah, aw;
  bool count_pad;
  bool fast2x2; /* max pool 2x2, stride 2, no padding, dilation 1 */
  lc_dtype dt;
} pplan;

static void plan_free(pplan *p) {
  free(p->ah.base);
  free(p->aw.base);
  p->ah.base = p->aw.base = NULL;
}

static lc_status axis_alloc(axis *a, int64_t n_out) {
  a->n_out = n_out;
  a->base = malloc(sizeof(int64_t) * 4 * (size_t)(n_out > 0 ? n_out : 1));
  if (!a->base) return lc_error_oom(sizeof(int64_t) * 4 * (size_t)n_out);
  a->lo = a->base + n_out, a->hi = a->lo + n_out, a->cnt = a->hi + n_out;
  return LC_OK;
}

/* Output size of a pooling window as PyTorch's pooling_output_shape. */
static int64_t pool_out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil) {
  int64_t num = in + 2 * p - d * (k - 1) - 1 + (ceil ? s - 1 : 0);
  int64_t o = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;
  if (ceil && (o - 1) * s >= in + p) o--;
  return o;
}

static lc_status axis_window(axis *a, int64_t in, int64_t k, int64_t s, int64_t p, int64_t d,
                             int64_t n_out) {
  lc_status st = axis_alloc(a, n_out);
  if (st) return st;
  a->n_in = in, a->step = d;
  for (int64_t o = 0; o < n_out; o++) {
    /* the kernel indices i in [lo, hi) with 0 <= b + i * d < in (closed form: k may be huge) */
    int64_t b = o * s - p;
    int64_t lo = b >= 0 ? 0 : (-b + d - 1) / d;
    int64_t hi = b > in - 1 ? 0 : (in - 1 - b) / d + 1;
    if (hi > k) hi = k;
    if (hi < lo) hi = lo;
    int64_t end = b + k < in + p ? b + k : in + p; /* PyTorch's divisor with padding */
    a->base[o] = b, a->lo[o] = lo, a->hi[o] = hi, a->cnt[o] = end - b;
  }
  return LC_OK;
}

static lc_status axis_adaptive(axis *a, int64_t in, int64_t n_out) {
  lc_status st = axis_alloc(a, n_out);
  if (st) return st;
  a->n_in = in, a->step = 1;
  for (int64_t o = 0; o < n_out; o++) {
    /* o * in can pass int64 (both up to 2^59): the window bounds in 128 bits */
    int64_t b = (int64_t)((__int128)o * in / n_out);
    int64_t e = (int64_t)(((__int128)(o + 1) * in + n_out - 1) / n_out);
    a->base[o] = b, a->lo[o] = 0, a->hi[o] = e - b, a->cnt[o] = e - b;
  }
  return LC_OK;
}

lc_status lc_pool_check_window(const char *fn, int n, const int64_t *kernel_size,
                               const int64_t *stride, const int64_t *padding,
                               const int64_t *dilation) {
  /* bounds that keep every size and window computation within int64 */
  const int64_t lim = INT64_MAX / 8;
  for (int d = 0; d < n; d++) {
    int64_t k = kernel_size[d], s = stride[d], p = padding[d], dl = dilation ? dilation[d] : 1;
    if (k < 1)
      return lc_set_error(LC_EARG, "%s: kernel_size must be >= 1, got %lld", fn, (long long)k);
    if (s < 1) return lc_set_error(LC_EARG, "%s: stride must be >= 1, got %lld", fn, (long long)s);
    if (dl < 1)
      return lc_set_error(LC_EARG, "%s: dilation must be >= 1, got %lld", fn, (long long)dl);
    if (k - 1 > lim / dl)
      return lc_set_error(LC_EARG,
                          "%s: kernel_size * dilation is too large, got kernel_size %lld with "
                          "dilation %lld",
                          fn, (long long)k, (long long)dl);
    if (s > lim)
      return lc_set_error(LC_EARG, "%s: stride is too large, got %lld", fn, (long long)s);
    if (p < 0 || p > k / 2)
      return lc_set_error(LC_EARG,
                          "%s: padding must be >= 0 and at most half the kernel size, got padding "
                          "%lld for kernel_size %lld",
                          fn, (long long)p, (long long)k);
  }
  return LC_OK;
}

lc_status lc_pool_check_output_size(const char *fn, int sd, const int64_t *out_size) {
  for (int d = 0; d < sd; d++) {
    if (out_size[d] >= 1 || out_size[d] == -1) continue;
    if (sd == 1)
      return lc_set_error(LC_EARG, "%s: output_size must be >= 1, got %lld", fn,
                          (long long)out_size[d]);
    return lc_set_error(LC_EARG, "%s: output_size[" LC_POS_D "] must be >= 1, got %lld", fn, d,
                        (long long)out_size[d]);
  }
  return LC_OK;
}

/* The output's shape obeys the one shape rule (lc_check_shape) before the per-axis tables of
 * OH and OW entries are allocated. */
static lc_status check_out_shape(const char *fn, const lc_tensor *x, int sd, const pplan *p) {
  int64_t shape[LC_MAX_DIMS];
  int nd = x->ndim - sd;
  memcpy(shape, x->shape, sizeof(int64_t) * (size_t)nd);
  if (sd == 2) shape[nd++] = p->OH;
  shape[nd++] = p->OW;
  return lc_check_shape(fn, nd, shape);
}

static lc_status pool_setup(const lc_op_def *op, const lc_tensor *x, const lc_op_args *a, pplan *p,
                            int *out_nd, int64_t *out_shape) {
  memset(p, 0, sizeof *p);
  p->kind = op->code;
  int sd = (int)a->i[LC_POOL_SD];
  static const char *const names[4][2] = {{"max_pool1d", "max_pool2d"},
                                          {"avg_pool1d", "avg_pool2d"},
                                          {"adaptive_max_pool1d", "adaptive_max_pool2d"},
                                          {"adaptive_avg_pool1d", "adaptive_avg_pool2d"}};
  if (sd != 1 && sd != 2)
    return lc_set_error(LC_EARG, "%s: spatial rank must be 1 or 2, got %d", op->name, sd);
  const char *fn = p->name = names[p->kind][sd - 1];
  p->sd = sd;
  char sx[256];
  lc_status st = need_float_dtype(fn, "input", x->dtype);
  if (st) return st;
  if (x->ndim < sd + 1)
    return lc_set_error(LC_ESHAPE, "%s: expected an input with at least %d dims, got shape %s", fn,
                        sd + 1, lc_shape_str(x->ndim, x->shape, sx, sizeof sx));
  p->dt = x->dtype;
  p->H = sd == 2 ? x->shape[x->ndim - 2] : 1;
  p->W = x->shape[x->ndim - 1];
  p->P = 1;
  for (int d = 0; d < x->ndim - sd; d++)
    p->P *= x->shape[d];
  bool adaptive = p->kind == POOL_AMAX || p->kind == POOL_AAVG;
  if (adaptive) {
    /* the entry points resolved -1 (keep) and checked the rest: lc_pool_check_output_size */
    int64_t oh = sd == 2 ? a->i[LC_POOL_OH] : 1, ow = a->i[LC_POOL_OW];
    if (p->H < 1 || p->W < 1)
      return lc_set_error(LC_ESHAPE, "%s: expected non-empty spatial dims, got input shape %s", fn,
                          lc_shape_str(x->ndim, x->shape, sx, sizeof sx));
    p->OH = oh, p->OW = ow;
    if ((st = check_out_shape(fn, x, sd, p))) return st;
    if ((st = axis_adaptive(&p->ah, p->H, oh)) || (st = axis_adaptive(&p->aw, p->W, ow))) {
      plan_free(p);
      return st;
    }
  } else {
    int64_t kh = sd == 2 ? a->i[LC_POOL_KH] : 1, kw = a->i[LC_POOL_KW];
    int64_t sh = sd == 2 ? a->i[LC_POOL_SH] : 1, sw = a->i[LC_POOL_SW];
    int64_t ph = sd == 2 ? a->i[LC_POOL_PH] : 0, pw = a->i[LC_POOL_PW];
    int64_t dh = sd == 2 ? a->i[LC_POOL_DH] : 1, dw = a->i[LC_POOL_DW];
    bool ceil = (a->flags & LC_POOL_CEIL) != 0;
    int64_t ks[2] = {kh, kw}, ss[2] = {sh, sw}, ps[2] = {ph, pw}, ds[2] = {dh, dw};
    if ((st = lc_pool_check_window(fn, 2, ks, ss, ps, ds))) return st;
    p->OH = pool_out_size(p->H, kh, sh, ph, dh, ceil);
    p->OW = pool_out_size(p->W, kw, sw, pw, dw, ceil);
    if (p->OH < 1 || p->OW < 1) {
      char sk[64];
      return lc_set_error(
          LC_ESHAPE,
          "%s: kernel_size %s (with padding and dilation) is larger than the input: input shape %s",
          fn, lc_shape_str(sd, ks + (2 - sd), sk, sizeof sk),
          lc_shape_str(x->ndim, x->shape, sx, sizeof sx));
    }
    if ((st = check_out_shape(fn, x, sd, p))) return st;
    p->count_pad = (a->flags & LC_POOL_COUNT_PAD) != 0;
    p->fast2x2 = p->kind == POOL_MAX && sd == 2 && kh == 2 && kw == 2 && sh == 2 && sw == 2 &&
                 ph == 0 && pw == 0 && dh == 1 && dw == 1 && 2 * p->OH <= p->H && 2 * p->OW <= p->W;
    if ((st = axis_window(&p->ah, p->H, kh, sh, ph, dh, p->OH)) ||
        (st = axis_window(&p->aw, p->W, kw, sw, pw, dw, p->OW))) {
      plan_free(p);
      return st;
    }
  }
  int nd = x->ndim - sd;
  memcpy(out_shape, x->shape, sizeof(int64_t) * (size_t)nd);
  if (sd == 2) out_shape[nd++] = p->OH;
  out_shape[nd++] = p->OW;
  *out_nd = nd;
  return LC_OK;
}

/* ================================================================ forward */

typedef struct pjob {
  const pplan *p;
  const void *x;
  void *y;
  int64_t *idx;
  const void *g; /* backward: grad of y */
  void *gx;      /* backward: grad of x (zeroed) */
} pjob;

#define DEF_POOL_FWD(T, S)                                                                         \
  static void max_fwd_##S(const pplan *p, const T *restrict x, T *restrict y,                      \
                          int64_t *restrict ix) {                                                  \
    const axis *ah = &p->ah, *aw = &p->aw;                                                         \
    if (p->fast2x2) {                                                                              \
      for (int64_t oh = 0; oh < p->OH; oh++) {                                                     \
        const T *r0 = x + 2 * oh * p->W, *r1 = r0 + p->W;                                          \
        for (int64_t ow = 0; ow < p->OW; ow++) {                                                   \
          int64_t c = 2 * ow, best = 2 * oh * p->W + c;                                            \
          T v = r0[c];                                                                             \
          if (r0[c + 1] > v || r0[c + 1] != r0[c + 1])                                             \
            v = r0[c + 1], best = 2 * oh * p->W + c + 1;                                           \
          if (r1[c] > v || r1[c] != r1[c]) v = r1[c], best = (2 * oh + 1) * p->W + c;              \
          if (r1[c + 1] > v || r1[c + 1] != r1[c + 1])                                             \
            v = r1[c + 1], best = (2 * oh + 1) * p->W + c + 1;                                     \
          y[oh * p->OW + ow] = v;                                                                  \
          ix[oh * p->OW + ow] = best;                                                              \
        }                                                                                          \
      }                                                                                            \
      return;                                                                                      \
    }                                                                                              \
    for (int64_t oh = 0; oh < p->OH; oh++)                                                         \
      for (int64_t ow = 0; ow < p->OW; ow++) {                                                     \
        T best = -INFINITY;                                                                        \
        int64_t bi = -1;                                                                           \
        for (int64_t i = ah->lo[oh]; i < ah->hi[oh]; i++) {                                        \
          int64_t h = ah->base[oh] + i * ah->step;                                                 \
          const T *row = x + h * p->W;                                                             \
          for (int64_t j = aw->lo[ow]; j < aw->hi[ow]; j++) {                                      \
            int64_t w = aw->base[ow] + j * aw->step;                                               \
            T v = row[w];                                                                          \
            if (bi < 0 || v > best || v != v) best = v, bi = h * p->W + w;                         \
          }                                                                                        \
        }                                                                                          \
        y[oh * p->OW + ow] = best;                                                                 \
        ix[oh * p->OW + ow] = bi;                                                                  \
      }                                                                                            \
  }                                                                                                \
  /* Max pooling as two passes, for windows other than fast2x2: each input row's max over every    \
   * output column's window (hv, with its column in hc), then the max of those over each output    \
   * row's window of rows. The scan order, and so the tie and NaN rules, are the direct loop's     \
   * (row-major: the first maximum, or the last NaN); the passes run plain loops over output       \
   * columns, which vectorise where the window is whole (ResNet-18's 3x3 stride-2 pool at batch 1: \
   * 3.5 ms with the direct loop, 0.65 ms so). hv and hc hold H x OW entries. */                   \
  static void max_sep_##S(const pplan *p, const T *restrict x, T *restrict y,                      \
                          int64_t *restrict ix, T *restrict hv, int32_t *restrict hc) {            \
    const axis *ah = &p->ah, *aw = &p->aw;                                                         \
    const int64_t OW = p->OW, W = p->W, sw = aw->step;                                             \
    /* the output columns whose window is whole and evenly spaced: [c0, c1) */                     \
    int64_t kw = 0, c0 = 0, c1 = 0, s = 0;                                                         \
    for (int64_t ow = 0; ow < OW; ow++)                                                            \
      if (aw->hi[ow] - aw->lo[ow] > kw) kw = aw->hi[ow] - aw->lo[ow];                              \
    while (c0 < OW && (aw->lo[c0] != 0 || aw->hi[c0] != kw))                                       \
      c0++;                                                                                        \
    c1 = c0;                                                                                       \
    if (c0 + 1 < OW) s = aw->base[c0 + 1] - aw->base[c0];                                          \
    while (c1 < OW && aw->lo[c1] == 0 && aw->hi[c1] == kw &&                                       \
           aw->base[c1] == aw->base[c0] + (c1 - c0) * s)                                           \
      c1++;                                                                                        \
    for (int64_t h = 0; h < p->H; h++) {                                                           \
      const T *restrict row = x + h * W;                                                           \
      T *restrict v = hv + h * OW;                                                                 \
      int32_t *restrict c = hc + h * OW;                                                           \
      for (int64_t ow = 0; ow < OW; ow++) {                                                        \
        if (ow == c0 && c1 > c0) { /* the whole windows: column j of each, for every ow */         \
          const T *restrict r = row + aw->base[c0];                                                \
          for (int64_t o = 0; o < c1 - c0; o++)                                                    \
            v[c0 + o] = r[o * s], c[c0 + o] = (int32_t)(aw->base[c0] + o * s);                     \
          for (int64_t j = 1; j < kw; j++)                                                         \
            for (int64_t o = 0; o < c1 - c0; o++) {                                                \
              T t = r[o * s + j * sw];                                                             \
              bool take = t > v[c0 + o] || t != t;                                                 \
              v[c0 + o] = take ? t : v[c0 + o];                                                    \
              c[c0 + o] = take ? (int32_t)(aw->base[c0] + o * s + j * sw) : c[c0 + o];             \
            }                                                                                      \
          ow = c1 - 1;                                                                             \
          continue;                                                                                \
        }                                                                                          \
        T bv = -INFINITY;                                                                          \
        int32_t bc = -1;                                                                           \
        for (int64_t j = aw->lo[ow]; j < aw->hi[ow]; j++) {                                        \
          int64_t w = aw->base[ow] + j * sw;                                                       \
          T t = row[w];                                                                            \
          if (bc < 0 || t > bv || t != t) bv = t, bc = (int32_t)w;                                 \
        }                                                                                          \
        v[ow] = bv, c[ow] = bc;                                                                    \
      }                                                                                            \
    }                                                                                              \
    for (int64_t oh = 0; oh < p->OH; oh++) {                                                       \
      T *restrict yo = y + oh * OW;                                                                \
      int64_t *restrict io = ix + oh * OW;                                                         \
      for (int64_t ow = 0; ow < OW; ow++)                                                          \
        yo[ow] = -INFINITY, io[ow] = -1;                                                           \
      for (int64_t i = ah->lo[oh]; i < ah->hi[oh]; i++) {                                          \
        int64_t h = ah->base[oh] + i * ah->step;                                                   \
        const T *restrict v = hv + h * OW;                                                         \
        const int32_t *restrict c = hc + h * OW;                                                   \
        for (int64_t ow = 0; ow < OW; ow++) {                                                      \
          T t = v[ow];                                                                             \
          bool take = c[ow] >= 0 && (io[ow] < 0 || t > yo[ow] || t != t);                          \
          yo[ow] = take ? t : yo[ow];                                                              \
          io[ow] = take ? h * W + c[ow] : io[ow];                                                  \
        }                                                                                          \
      }                                                                                            \
    }                                                                                              \
  }                                                                                                \
  static void avg_fwd_##S(const pplan *p, const T *restrict x, T *restrict y) {                    \
    const axis *ah = &p->ah, *aw = &p->aw;                                                         \
    for (int64_t oh = 0; oh < p->OH; oh++)                                                         \
      for (int64_t ow = 0; ow < p->OW; ow++) {                                                     \
        double s = 0;                                                                              \
        for (int64_t i = ah->lo[oh]; i < ah->hi[oh]; i++) {                                        \
          const T *row = x + (ah->base[oh] + i) * p->W;                                            \
          for (int64_t j = aw->lo[ow]; j < aw->hi[ow]; j++)                                        \
            s += row[aw->base[ow] + j];                                                            \
        }                                                                                          \
        y[oh * p->OW + ow] = (T)(s / (double)pool_divisor(p, oh, ow));                             \
      }                                                                                            \
  }                                                                                                \
  /* planes [b, e) */                                                                              \
  static void fwd_planes_##S(const pjob *j, int64_t b, int64_t e) {                                \
    const pplan *p = j->p;                                                                         \
    int64_t in = p->H * p->W, on = p->OH * p->OW;                                                  \
    bool is_max = p->kind == POOL_MAX || p->kind == POOL_AMAX;                                     \
    /* the two-pass max's rows (W < 2^31: the plan checked the sizes fit memory) */                \
    T *hv = NULL;                                                                                  \
    int32_t *hc = NULL;                                                                            \
    if (is_max && !p->fast2x2 && p->W <= INT32_MAX) {                                              \
      hv = malloc(sizeof(T) * (size_t)(p->H * p->OW));                                             \
      hc = malloc(sizeof(int32_t) * (size_t)(p->H * p->OW));                                       \
    }                                                                                              \
    for (int64_t pl = b; pl < e; pl++) {                                                           \
      const T *x = (const T *)j->x + pl * in;                                                      \
      T *y = (T *)j->y + pl * on;                                                                  \
      if (is_max && hv && hc)                                                                      \
        max_sep_##S(p, x, y, j->idx + pl * on, hv, hc);                                            \
      else if (is_max) /* 2x2 stride 2, or no memory for the rows: the direct loop */              \
        max_fwd_##S(p, x, y, j->idx + pl * on);                                                    \
      else                                                                                         \
        avg_fwd_##S(p, x, y);                                                                      \
    }                                                                                              \
    free(hv);                                                                                      \
    free(hc);                                                                                      \
  }

/* The divisor of an average window. */
static int64_t pool_divisor(const pplan *p, int64_t oh, int64_t ow) {
  if (p->count_pad) return p->ah.cnt[oh] * p->aw.cnt[ow];
  return (p->ah.hi[oh] - p->ah.lo[oh]) * (p->aw.hi[ow] - p->aw.lo[ow]);
}

DEF_POOL_FWD(float, f32)
DEF_POOL_FWD(double, f64)

static void pool_fwd_range(void *ctx, int64_t b, int64_t e) {
  const pjob *j = ctx;
  if (j->p->dt == LC_FLOAT32)
    fwd_planes_f32(j, b, e);
  else
    fwd_planes_f64(j, b, e);
}

/* Work units per plane for lc_parallel_for. */
static int64_t plane_cost(const pplan *p) {
  int64_t wh = p->OH > 0 ? (p->H + p->OH - 1) / p->OH + 1 : 1;
  int64_t ww = p->OW > 0 ? (p->W + p->OW - 1) / p->OW + 1 : 1;
  return p->OH * p->OW * wh * ww + p->H * p->W;
}

static lc_status pool_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                              const lc_op_args *args, lc_tensor **out) {
  if (n != 1 || !in[0]) return lc_set_error(LC_EARG, "%s: expected 1 input tensor", op->name);
  pplan p;
  int ond;
  int64_t oshape[LC_MAX_DIMS];
  lc_status st = pool_setup(op, in[0], args, &p, &ond, oshape);
  if (st) return st;
  bool is_max = p.kind == POOL_MAX || p.kind == POOL_AMAX;
  lc_tensor *x = NULL, *y = NULL, *ix = NULL;
  if ((st = lc_k_dense(in[0], &x)) || (st = lc_tensor_new(ond, oshape, p.dt, &y)) ||
      (is_max && (st = lc_tensor_new(ond, oshape, LC_INT64, &ix))))
    goto fail;
  pjob j = {.p = &p, .x = lc_data(x), .y = lc_data(y), .idx = ix ? lc_data(ix) : NULL};
  if (y->numel > 0) lc_parallel_for(p.P, plane_cost(&p), pool_fwd_range, &j);
  plan_free(&p);
  lc_release(x);
  out[0] = y;
  if (is_max) out[1] = ix;
  return LC_OK;
fail:
  plan_free(&p);
  lc_release(x);
  lc_release(y);
  lc_release(ix);
  return st;
}

/* ================================================================ backward */

#define DEF_POOL_BWD(T, S)                                                                         \
  static void avg_bwd_##S(const pplan *p, const T *restrict g, T *restrict gx) {                   \
    const axis *ah = &p->ah, *aw = &p->aw;                                                         \
    for (int64_t oh = 0; oh < p->OH; oh++)                                                         \
      for (int64_t ow = 0; ow < p->OW; ow++) {                                                     \
        T v = (T)((double)g[oh * p->OW + ow] / (double)pool_divisor(p, oh, ow));                   \
        for (int64_t i = ah->lo[oh]; i < ah->hi[oh]; i++) {                                        \
          T *row = gx + (ah->base[oh] + i) * p->W;                                                 \
          for (int64_t jj = aw->lo[ow]; jj < aw->hi[ow]; jj++)                                     \
            row[aw->base[ow] + jj] += v;                                                           \
        }                                                                                          \
      }                                                                                            \
  }                                                                                                \
  static void max_bwd_##S(int64_t on, const int64_t *restrict ix, const T *restrict g,             \
                          T *restrict gx) {                                                        \
    for (int64_t o = 0; o < on; o++)                                                               \
      if (ix[o] >= 0) gx[ix[o]] += g[o];                                                           \
  }                                                                                                \
  static void bwd_planes_##S(const pjob *j, int64_t b, int64_t e) {                                \
    const pplan *p = j->p;                                                                         \
    int64_t in = p->H * p->W, on = p->OH * p->OW;                                                  \
    bool is_max = p->kind == POOL_MAX || p->kind == POOL_AMAX;                                     \
    for (int64_t pl = b; pl < e; pl++) {                                                           \
      const T *g = (const T *)j->g + pl * on;                                                      \
      T *gx = (T *)j->gx + pl * in;                                                                \
      if (is_max)                                                                                  \
        max_bwd_##S(on, j->idx + pl * on, g, gx);                                                  \
      else                                                                                         \
        avg_bwd_##S(p, g, gx);                                                                     \
    }                                                                                              \
  }
DEF_POOL_BWD(float, f32)
DEF_POOL_BWD(double, f64)

static void pool_bwd_range(void *ctx, int64_t b, int64_t e) {
  const pjob *j = ctx;
  if (j->p->dt == LC_FLOAT32)
    bwd_planes_f32(j, b, e);
  else
    bwd_planes_f64(j, b, e);
}

/* The gradient of pool op (args) at an input of meta m for grad_out: a scatter-add at the
 * saved indices ix (max) or a spread over each window (average). */
static lc_status pool_grad(const lc_op_def *op, const lc_op_args *args, const lc_meta *m,
                           const lc_tensor *grad_out, const lc_tensor *ix, lc_tensor **out) {
  /* the plan needs a tensor header of the input's shape: use the (empty) gradient itself */
  lc_tensor *gx = NULL, *g = NULL, *ixc = NULL;
  lc_status st = new_like(m, &gx);
  if (st) return st;
  pplan p;
  int ond;
  int64_t oshape[LC_MAX_DIMS];
  if ((st = pool_setup(op, gx, args, &p, &ond, oshape))) {
    lc_release(gx);
    return st;
  }
  memset(lc_data(gx), 0, (size_t)gx->numel * lc_dtype_size(m->dtype));
  if ((st = lc_k_dense_as(grad_out, m->dtype, &g))) goto fail;
  if (ix && (st = lc_k_dense(ix, &ixc))) goto fail;
  pjob j = {.p = &p, .g = lc_data(g), .gx = lc_data(gx), .idx = ixc ? lc_data(ixc) : NULL};
  if (g->numel > 0) lc_parallel_for(p.P, plane_cost(&p), pool_bwd_range, &j);
  plan_free(&p);
  lc_release(g);
  lc_release(ixc);
  *out = gx;
  return LC_OK;
fail:
  plan_free(&p);
  lc_release(g);
  lc_release(ixc);
  lc_release(gx);
  return st;
}

static lc_status pool_backward(const lc_op_ctx *ctx, const lc_tensor *grad_out,
                               lc_tensor **grad_in) {
  grad_in[0] = NULL;
  if (!ctx->needs_grad[0]) return LC_OK;
  bool is_max = ctx->op->code == POOL_MAX || ctx->op->code == POOL_AMAX;
  lc_tensor *ix = NULL;
  if (is_max) {
    lc_status st = lc_ctx_saved(ctx, 0, &ix);
    if (st) return st;
  }
  return pool_grad(ctx->op, ctx->args, &ctx->in[0], grad_out, ix, &grad_in[0]);
}

/* ---- double backward.
 * Max pooling's gradient is g put back at the saved indices (flat within each plane): written
 * with put_back (a scatter-add into zeros), whose adjoint is a gather. Average pooling is
 * linear: lc_gb_linear_grad. */

static lc_status max_pool_backward_graph(const lc_op_ctx *ctx, const lc_tensor *g,
                                         lc_tensor **grad_in) {
  lc_gb b = LC_GB_INIT(ctx);
  const lc_meta *m = &ctx->in[0];
  int sd = (int)ctx->args->i[LC_POOL_SD], lead = m->ndim - sd;
  lc_tensor *ix = lc_gb_saved(&b, 0);
  int64_t gshape[LC_MAX_DIMS];
  lc_meta flat = {.ndim = lead + 1, .dtype = m->dtype};
  int64_t plane = 1, oplane = 1;
  for (int d = 0; d < lead; d++)
    gshape[d] = flat.shape[d] = m->shape[d];
  for (int d = lead; d < m->ndim; d++) {
    plane *= m->shape[d];
    oplane *= g->shape[d];
  }
  flat.shape[lead] = plane;
  gshape[lead] = oplane;
  lc_tensor *g2 = lc_gb_reshape(&b, g, lead + 1, gshape);
  lc_tensor *i2 = ix ? lc_gb_reshape(&b, ix, lead + 1, gshape) : NULL;
  lc_tensor *dx = i2 ? lc_gb_put_back(&b, &flat, lead, g2, i2) : NULL;
  lc_gb_grad(&b, 0, dx ? lc_gb_reshape(&b, dx, m->ndim, m->shape) : NULL, grad_in);
  return lc_gb_end(&b, grad_in);
}

static lc_status avg_pool_backward_graph(const lc_op_ctx *ctx, const lc_tensor *g,
                                         lc_tensor **grad_in) {
  lc_gb b = LC_GB_INIT(ctx);
  lc_gb_grad(&b, 0, lc_gb_linear_grad(&b, g, ctx->args), grad_in);
  return lc_gb_end(&b, grad_in);
}

const lc_op_def lc_op_max_pool = {.name = "max_pool",
                                  .grad_fn_name = "MaxPoolWithIndicesBackward",
                                  .n_inputs = 1,
                                  .n_outputs = 2,
                                  .code = POOL_MAX,
                                  .save = LC_SAVE_OUT(1),
                                  .forward = pool_forward,
                                  .backward = pool_backward,
                                  .backward_graph = max_pool_backward_graph};
const lc_op_def lc_op_avg_pool = {.name = "avg_pool",
                                  .grad_fn_name = "AvgPoolBackward",
                                  .n_inputs = 1,
                                  .n_outputs = 1,
                                  .code = POOL_AVG,
                                  .forward = pool_forward,
                                  .backward = pool_backward,
                                  .backward_graph = avg_pool_backward_graph};
const lc_op_def lc_op_adaptive_max_pool = {.name = "adaptive_max_pool",
                                           .grad_fn_name = "AdaptiveMaxPoolBackward",
                                           .n_inputs = 1,
                                           .n_outputs = 2,
                                           .code = POOL_AMAX,
                                           .save = LC_SAVE_OUT(1),
                                           .forward = pool_forward,
                                           .backward = pool_backward,
                                           .backward_graph = max_pool_backward_graph};
const lc_op_def lc_op_adaptive_avg_pool = {.name = "adaptive_avg_pool",
                                           .grad_fn_name = "AdaptiveAvgPoolBackward",
                                           .n_inputs = 1,
                                           .n_outputs = 1,
                                           .code = POOL_AAVG,
                                           .forward = pool_forward,
                                           .backward = pool_backward,
                                           .backward_graph = avg_pool_backward_graph};
