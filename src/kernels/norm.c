/*
 * norm.c - batch norm and the row normalisations (layer, group, instance norm): forward and
 * closed-form backward side by side.
 *
 * Every kernel works on contiguous data (strided operands are copied first) in two passes:
 * one for the statistics, one for normalise + affine (y = x * scale + shift with per-channel or
 * per-row coefficients, a loop the compiler vectorises). Statistics are shifted sums in double:
 * with k the first value of the channel/row, sum(x - k) and sum((x - k)^2) give the mean and the
 * variance in one pass without the cancellation of sum(x^2) - n mean^2 when |mean| >> std.
 * Eight independent accumulators keep the sums vectorisable without reassociation.
 *
 * Backward: with xhat = (x - mean) * invstd and g the output gradient (masked by y > 0 for the
 * fused ReLU),
 *   training batch norm: dx = w invstd (g - mean(g) - xhat mean(g xhat))  per channel,
 *   eval batch norm:     dx = w invstd g,
 *   row norms:           dx = invstd (gw - mean(gw) - xhat mean(gw xhat))  per row,
 * dw = sum(g xhat), db = sum(g). Each dx is linear in (g, x): dx = a g + b (x - k) + c with per
 * channel/row coefficients, so its pass vectorises like the forward one.
 *
 * Both elementwise passes centre x on k, the mean rounded to x's dtype (exact in T): x - k loses
 * nothing when the values sit close to their mean, where x * scale + shift would cancel
 * catastrophically in float32 (|mean| / std = 1e5 would leave about two correct digits).
 *
 * The per-dtype loops are written once, as macros instantiated for float and double
 * (kernel_util.h); the op definitions follow them.
 */
#include "norm.h"
#include "grad_graph.h"
#include "kernel_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LANES 8
#define COLS 256 /* channel block of the {N, C} batch-norm paths (doubles on the stack) */

/* What the range functions share. Batch norm: N, C, S (x is {N, C, S}). Row norms: R rows of D
 * elements, G groups, Cg parameter runs of S elements per row. */
typedef struct nctx {
  const void *x, *g, *y, *w, *b; /* input, output gradient, output (ReLU mask), affine */
  void *out, *gw, *gb;           /* result, weight and bias gradients */
  double *stats;                 /* mean [0, K), variance [K, 2K) */
  double *coef;                  /* per channel / row scratch */
  int64_t N, C, S, R, G, Cg, D;
  double eps;
  bool train, relu;
} nctx;

static double invstd_of(double var, double eps) { return 1.0 / sqrt(var + eps); }

static const void *data_or_null(const lc_tensor *t) { return t ? lc_data(t) : NULL; }

/* ---------------------------------------------------------------- per-dtype loops */

/* The per-dtype loops, written once (kernel_util.h): shared runs, then batch norm, then the
 * row norms. */
#define NORM_RUNS(T, SUF)                                                                          \
  /* *s1 += sum(x - k), *s2 += sum((x - k)^2) over n contiguous values. */                         \
  static void shifted_sums_##SUF(const T *restrict x, int64_t n, double k, double *s1,             \
                                 double *s2) {                                                     \
    double a[LANES] = {0}, b[LANES] = {0};                                                         \
    int64_t i = 0;                                                                                 \
    for (; i + LANES <= n; i += LANES)                                                             \
      for (int l = 0; l < LANES; l++) {                                                            \
        double d = (double)x[i + l] - k;                                                           \
        a[l] += d;                                                                                 \
        b[l] += d * d;                                                                             \
      }                                                                                            \
    double A = 0, B = 0;                                                                           \
    for (; i < n; i++) {                                                                           \
      double d = (double)x[i] - k;                                                                 \
      A += d;                                                                                      \
      B += d * d;                                                                                  \
    }                                                                                              \
    for (int l = 0; l < LANES; l++) {                                                              \
      A += a[l];                                                                                   \
      B += b[l];                                                                                   \
    }                                                                                              \
    *s1 += A;                                                                                      \
    *s2 += B;                                                                                      \
  }                                                                                                \
                                                                                                   \
  /* *s1 += sum(g'), *s2 += sum(g' (x - m)) with g' = g, or g masked by y > 0. */                  \
  /* The ReLU mask is a multiplication by (T)(y > 0) before widening: a select (measured: the      \
   * fused backward 5x slower, even with g loaded unconditionally), or a comparison converted to   \
   * double, leaves GCC's vectoriser without a vector type for these loops. */                     \
  static void grad_sums_##SUF(const T *restrict g, const T *restrict x, const T *restrict y,       \
                              int64_t n, double m, double *s1, double *s2) {                       \
    double a[LANES] = {0}, b[LANES] = {0};                                                         \
    double A = 0, B = 0;                                                                           \
    int64_t i = 0;                                                                                 \
    if (y) {                                                                                       \
      /* lanes of T summed over blocks of 256 values, then added in double: the T arithmetic       \
       * vectorises, the blocks keep the rounding error near that of double sums. x is centred on  \
       * mt = m rounded to T (x - mt is exact near the mean), and sum(g' (x - m)) =                \
       * sum(g' (x - mt)) + (mt - m) sum(g') restores the rest. */                                 \
      T mt = (T)m;                                                                                 \
      double dm = (double)mt - m;                                                                  \
      while (i < n) {                                                                              \
        int64_t e = i + 256 < n ? i + 256 : n;                                                     \
        T ta[LANES] = {0}, tb[LANES] = {0};                                                        \
        for (; i + LANES <= e; i += LANES)                                                         \
          for (int l = 0; l < LANES; l++) {                                                        \
            T gm = g[i + l] * (T)(y[i + l] > 0);                                                   \
            ta[l] += gm;                                                                           \
            tb[l] += gm * (x[i + l] - mt);                                                         \
          }                                                                                        \
        for (; i < e; i++) {                                                                       \
          double gv = (double)(g[i] * (T)(y[i] > 0));                                              \
          A += gv;                                                                                 \
          B += gv * ((double)x[i] - m);                                                            \
        }                                                                                          \
        double sa = 0, sb = 0;                                                                     \
        for (int l = 0; l < LANES; l++) {                                                          \
          sa += (double)ta[l];                                                                     \
          sb += (double)tb[l];                                                                     \
        }                                                                                          \
        A += sa;                                                                                   \
        B += sb + dm * sa;                                                                         \
      }                                                                                            \
    } else {                                                                                       \
      for (; i + LANES <= n; i += LANES)                                                           \
        for (int l = 0; l < LANES; l++) {                                                          \
          a[l] += (double)g[i + l];                                                                \
          b[l] += (double)g[i + l] * ((double)x[i + l] - m);                                       \
        }                                                                                          \
      for (; i < n; i++) {                                                                         \
        A += (double)g[i];                                                                         \
        B += (double)g[i] * ((double)x[i] - m);                                                    \
      }                                                                                            \
    }                                                                                              \
    for (int l = 0; l < LANES; l++) {                                                              \
      A += a[l];                                                                                   \
      B += b[l];                                                                                   \
    }                                                                                              \
    *s1 += A;                                                                                      \
    *s2 += B;                                                                                      \
  }                                                                                                \
                                                                                                   \
  /* out = (x - k) * sc + sh (then max(0, .) with relu) over n values. */                          \
  static void affine_run_##SUF(T *restrict out, const T *restrict x, int64_t n, T k, T sc, T sh,   \
                               bool relu) {                                                        \
    if (relu) {                                                                                    \
      for (int64_t i = 0; i < n; i++) {                                                            \
        T v = (x[i] - k) * sc + sh;                                                                \
        out[i] = v > 0 ? v : (T)0;                                                                 \
      }                                                                                            \
    } else {                                                                                       \
      for (int64_t i = 0; i < n; i++)                                                              \
        out[i] = (x[i] - k) * sc + sh;                                                             \
    }                                                                                              \
  }                                                                                                \
                                                                                                   \
  /* out = a g' + b (x - k) + c over n values (g' = g, or g masked by y > 0 when y is given). */   \
  static void dx_run_##SUF(T *restrict out, const T *restrict g, const T *restrict x,              \
                           const T *restrict y, int64_t n, T a, T k, T b, T c) {                   \
    if (y) {                                                                                       \
      for (int64_t i = 0; i < n; i++)                                                              \
        out[i] = a * g[i] * (T)(y[i] > 0) + b * (x[i] - k) + c;                                    \
    } else {                                                                                       \
      for (int64_t i = 0; i < n; i++)                                                              \
        out[i] = a * g[i] + b * (x[i] - k) + c;                                                    \
    }                                                                                              \
  }                                                                                                \
                                                                                                   \
  /* the centre of a channel / row: its mean rounded to T */                                       \
  static double centre_##SUF(double mean) { return (double)(T)mean; }

#define NORM_BN(T, SUF)                                                                            \
  /* statistics of channels [c0, c1), S > 1: each channel is N runs of S values */                 \
  static void bn_stats_chan_##SUF(void *vctx, int64_t c0, int64_t c1) {                            \
    nctx *c = vctx;                                                                                \
    const T *x = c->x;                                                                             \
    int64_t N = c->N, C = c->C, S = c->S;                                                          \
    double M = (double)(N * S);                                                                    \
    for (int64_t ch = c0; ch < c1; ch++) {                                                         \
      double k = (double)x[ch * S], s1 = 0, s2 = 0;                                                \
      for (int64_t n = 0; n < N; n++)                                                              \
        shifted_sums_##SUF(x + (n * C + ch) * S, S, k, &s1, &s2);                                  \
      double m = s1 / M, var = s2 / M - m * m;                                                     \
      c->stats[ch] = k + m;                                                                        \
      c->stats[C + ch] = var > 0 ? var : 0;                                                        \
    }                                                                                              \
  }                                                                                                \
                                                                                                   \
  /* statistics of channels [c0, c1), S == 1 ({N, C} input): rows walked in order, vectorised      \
   * across a block of channels */                                                                 \
  static void bn_stats_cols_##SUF(void *vctx, int64_t c0, int64_t c1) {                            \
    nctx *c = vctx;                                                                                \
    const T *x = c->x;                                                                             \
    int64_t N = c->N, C = c->C;                                                                    \
    double k[COLS], s1[COLS], s2[COLS];                                                            \
    for (int64_t b0 = c0; b0 < c1; b0 += COLS) {                                                   \
      int64_t nb = c1 - b0 < COLS ? c1 - b0 : COLS;                                                \
      for (int64_t j = 0; j < nb; j++) {                                                           \
        k[j] = (double)x[b0 + j];                                                                  \
        s1[j] = s2[j] = 0;                                                                         \
      }                                                                                            \
      for (int64_t n = 0; n < N; n++) {                                                            \
        const T *restrict row = x + n * C + b0;                                                    \
        for (int64_t j = 0; j < nb; j++) {                                                         \
          double d = (double)row[j] - k[j];                                                        \
          s1[j] += d;                                                                              \
          s2[j] += d * d;                                                                          \
        }                                                                                          \
      }                                                                                            \
      for (int64_t j = 0; j < nb; j++) {                                                           \
        double m = s1[j] / (double)N, var = s2[j] / (double)N - m * m;                             \
        c->stats[b0 + j] = k[j] + m;                                                               \
        c->stats[C + b0 + j] = var > 0 ? var : 0;                                                  \
      }                                                                                            \
    }                                                                                              \
  }                                                                                                \
                                                                                                   \
  /* coef[ch] = scale, coef[C + ch] = shift, coef[2C + ch] = centre of the forward transform       \
   * y = (x - centre) * scale + shift */                                                           \
  static void bn_scale_shift_##SUF(nctx *c) {                                                      \
    const T *w = c->w, *b = c->b;                                                                  \
    int64_t C = c->C;                                                                              \
    for (int64_t ch = 0; ch < C; ch++) {                                                           \
      double is = invstd_of(c->stats[C + ch], c->eps), mean = c->stats[ch];                        \
      double sc = (w ? (double)w[ch] : 1.0) * is, k = centre_##SUF(mean);                          \
      c->coef[ch] = sc;                                                                            \
      c->coef[C + ch] = (b ? (double)b[ch] : 0.0) - (mean - k) * sc;                               \
      c->coef[2 * C + ch] = k;                                                                     \
    }                                                                                              \
  }                                                                                                \
                                                                                                   \
  /* forward items [i0, i1) of N * C runs (S > 1) */                                               \
  static void bn_norm_runs_##SUF(void *vctx, int64_t i0, int64_t i1) {                             \
    nctx *c = vctx;                                                                                \
    int64_t C = c->C, S = c->S;                                                                    \
    for (int64_t i = i0; i < i1; i++) {                                                            \
      int64_t ch = i % C;                                                                          \
      affine_run_##SUF((T *)c->out + i * S, (const T *)c->x + i * S, S, (T)c->coef[2 * C + ch],    \
                       (T)c->coef[ch], (T)c->coef[C + ch], c->relu);                               \
    }                                                                                              \
  }                                                                                                \
                                                                                                   \
  /* forward rows [n0, n1) of an {N, C} input */                                                   \
  static void bn_norm_rows_##SUF(void *vctx, int64_t n0, int64_t n1) {                             \
    nctx *c = vctx;                                                                                \
    int64_t C = c->C;                                                                              \
    const double *restrict sc = c->coef, *restrict sh = c->coef + C,                               \
                           *restrict k = c->coef + 2 * C;                                          \
    for (int64_t n = n0; n < n1; n++) {                                                            \
      const T *restrict x = (const T *)c->x + n * C;                                               \
      T *restrict y = (T *)c->out + n * C;                                                         \
      if (c->relu) {                                                                               \
        for (int64_t j = 0; j < C; j++) {                                                          \
          T v = (T)(((double)x[j] - k[j]) * sc[j] + sh[j]);                                        \
          y[j] = v > 0 ? v : 0;                                                                    \
        }                                                                                          \
      } else {                                                                                     \
        for (int64_t j = 0; j < C; j++)                                                            \
          y[j] = (T)(((double)x[j] - k[j]) * sc[j] + sh[j]);                                       \
      }                                                                                            \
    }                                                                                              \
  }                                                                                                \
                                                                                                   \
  static lc_status bn_fwd_##SUF(nctx *c) {                                                         \
    if (c->train) {                                                                                \
      if (c->S == 1)                                                                               \
        lc_parallel_for(c->C, c->N, bn_stats_cols_##SUF, c);                                       \
      else                                                                                         \
        lc_parallel_for(c->C, c->N * c->S, bn_stats_chan_##SUF, c);                                \
    }                                                                                              \
    double *coef = malloc((size_t)(3 * c->C) * sizeof *coef);                                      \
    if (!coef) return lc_error_oom((size_t)(3 * c->C) * sizeof *coef);                             \
    c->coef = coef;                                                                                \
    bn_scale_shift_##SUF(c);                                                                       \
    if (c->S == 1)                                                                                 \
      lc_parallel_for(c->N, c->C, bn_norm_rows_##SUF, c);                                          \
    else                                                                                           \
      lc_parallel_for(c->N * c->C, c->S, bn_norm_runs_##SUF, c);                                   \
    c->coef = NULL;                                                                                \
    free(coef);                                                                                    \
    return LC_OK;                                                                                  \
  }                                                                                                \
                                                                                                   \
  /* backward sums of channels [c0, c1), S > 1: coef[3C + ch] = sum(g'), coef[4C + ch] =           \
   * sum(g' (x - mean)) */                                                                         \
  static void bn_bsums_chan_##SUF(void *vctx, int64_t c0, int64_t c1) {                            \
    nctx *c = vctx;                                                                                \
    int64_t N = c->N, C = c->C, S = c->S;                                                          \
    for (int64_t ch = c0; ch < c1; ch++) {                                                         \
      double s1 = 0, s2 = 0, m = c->stats[ch];                                                     \
      for (int64_t n = 0; n < N; n++) {                                                            \
        int64_t off = (n * C + ch) * S;                                                            \
        grad_sums_##SUF((const T *)c->g + off, (const T *)c->x + off,                              \
                        c->y ? (const T *)c->y + off : NULL, S, m, &s1, &s2);                      \
      }                                                                                            \
      c->coef[3 * C + ch] = s1;                                                                    \
      c->coef[4 * C + ch] = s2;                                                                    \
    }                                                                                              \
  }                                                                                                \
                                                                                                   \
  static void bn_bsums_cols_##SUF(void *vctx, int64_t c0, int64_t c1) {                            \
    nctx *c = vctx;                                                                                \
    int64_t N = c->N, C = c->C;                                                                    \
    double *restrict s1 = c->coef + 3 * C, *restrict s2 = c->coef + 4 * C;                         \
    const double *restrict mean = c->stats;                                                        \
    for (int64_t j = c0; j < c1; j++)                                                              \
      s1[j] = s2[j] = 0;                                                                           \
    for (int64_t n = 0; n < N; n++) {                                                              \
      const T *restrict g = (const T *)c->g + n * C, *restrict x = (const T *)c->x + n * C;        \
      const T *restrict y = c->y ? (const T *)c->y + n * C : NULL;                                 \
      if (y) {                                                                                     \
        for (int64_t j = c0; j < c1; j++) {                                                        \
          double gv = (double)(g[j] * (T)(y[j] > 0));                                              \
          s1[j] += gv;                                                                             \
          s2[j] += gv * ((double)x[j] - mean[j]);                                                  \
        }                                                                                          \
      } else {                                                                                     \
        for (int64_t j = c0; j < c1; j++) {                                                        \
          s1[j] += (double)g[j];                                                                   \
          s2[j] += (double)g[j] * ((double)x[j] - mean[j]);                                        \
        }                                                                                          \
      }                                                                                            \
    }                                                                                              \
  }                                                                                                \
                                                                                                   \
  static void bn_dx_runs_##SUF(void *vctx, int64_t i0, int64_t i1) {                               \
    nctx *c = vctx;                                                                                \
    int64_t C = c->C, S = c->S;                                                                    \
    for (int64_t i = i0; i < i1; i++) {                                                            \
      int64_t ch = i % C;                                                                          \
      dx_run_##SUF((T *)c->out + i * S, (const T *)c->g + i * S, (const T *)c->x + i * S,          \
                   c->y ? (const T *)c->y + i * S : NULL, S, (T)c->coef[ch],                       \
                   (T)c->coef[5 * C + ch], (T)c->coef[C + ch], (T)c->coef[2 * C + ch]);            \
    }                                                                                              \
  }                                                                                                \
                                                                                                   \
  static void bn_dx_rows_##SUF(void *vctx, int64_t n0, int64_t n1) {                               \
    nctx *c = vctx;                                                                                \
    int64_t C = c->C;                                                                              \
    const double *restrict a = c->coef, *restrict b = c->coef + C, *restrict cc = c->coef + 2 * C; \
    const double *restrict k = c->coef + 5 * C;                                                    \
    for (int64_t n = n0; n < n1; n++) {                                                            \
      const T *restrict g = (const T *)c->g + n * C, *restrict x = (const T *)c->x + n * C;        \
      const T *restrict y = c->y ? (const T *)c->y + n * C : NULL;                                 \
      T *restrict o = (T *)c->out + n * C;                                                         \
      if (y) {                                                                                     \
        for (int64_t j = 0; j < C; j++)                                                            \
          o[j] =                                                                                   \
              (T)(a[j] * (double)(g[j] * (T)(y[j] > 0)) + b[j] * ((double)x[j] - k[j]) + cc[j]);   \
      } else {                                                                                     \
        for (int64_t j = 0; j < C; j++)                                                            \
          o[j] = (T)(a[j] * (double)g[j] + b[j] * ((double)x[j] - k[j]) + cc[j]);                  \
      }                                                                                            \
    }                                                                                              \
  }                                                                                                \
                                                                                                   \
  /* coef: 6 C doubles. Sums first (when dx in training, dw or db need them), then per-channel     \
   * dx coefficients a, b, c in coef[0..3C) and the centres in coef[5C..6C). */                    \
  static void bn_bwd_##SUF(nctx *c) {                                                              \
    int64_t C = c->C, N = c->N, S = c->S;                                                          \
    double M = (double)(N * S);                                                                    \
    bool sums = (c->out && c->train) || c->gw || c->gb;                                            \
    if (sums && M > 0) {                                                                           \
      if (S == 1)                                                                                  \
        lc_parallel_for(C, N, bn_bsums_cols_##SUF, c);                                             \
      else                                                                                         \
        lc_parallel_for(C, (N * S), bn_bsums_chan_##SUF, c);                                       \
    } else {                                                                                       \
      for (int64_t k = 3 * C; k < 5 * C; k++)                                                      \
        c->coef[k] = 0;                                                                            \
    }                                                                                              \
    const T *w = c->w;                                                                             \
    for (int64_t ch = 0; ch < C; ch++) {                                                           \
      double is = invstd_of(c->stats[C + ch], c->eps), mean = c->stats[ch];                        \
      double sg = c->coef[3 * C + ch], sgx = c->coef[4 * C + ch];                                  \
      double a = (w ? (double)w[ch] : 1.0) * is, cen = centre_##SUF(mean);                         \
      if (c->gw) ((T *)c->gw)[ch] = (T)(sgx * is);                                                 \
      if (c->gb) ((T *)c->gb)[ch] = (T)sg;                                                         \
      c->coef[5 * C + ch] = cen;                                                                   \
      if (c->train && M > 0) {                                                                     \
        double k = a * is * is * sgx / M;                                                          \
        c->coef[ch] = a;                                                                           \
        c->coef[C + ch] = -k;                                                                      \
        c->coef[2 * C + ch] = -k * (cen - mean) - a * sg / M;                                      \
      } else {                                                                                     \
        c->coef[ch] = a;                                                                           \
        c->coef[C + ch] = 0;                                                                       \
        c->coef[2 * C + ch] = 0;                                                                   \
      }                                                                                            \
    }                                                                                              \
    if (!c->out || M == 0) return;                                                                 \
    if (S == 1)                                                                                    \
      lc_parallel_for(N, C, bn_dx_rows_##SUF, c);                                                  \
    else                                                                                           \
      lc_parallel_for((N * C), S, bn_dx_runs_##SUF, c);                                            \
  }

#define NORM_RN(T, SUF)                                                                            \
  static void rn_fwd_range_##SUF(void *vctx, int64_t r0, int64_t r1) {                             \
    nctx *c = vctx;                                                                                \
    int64_t D = c->D, R = c->R, G = c->G, Cg = c->Cg, S = c->S;                                    \
    const T *w = c->w, *b = c->b;                                                                  \
    for (int64_t r = r0; r < r1; r++) {                                                            \
      const T *restrict x = (const T *)c->x + r * D;                                               \
      T *restrict y = (T *)c->out + r * D;                                                         \
      double k = (double)x[0], s1 = 0, s2 = 0;                                                     \
      shifted_sums_##SUF(x, D, k, &s1, &s2);                                                       \
      double m = s1 / (double)D, var = s2 / (double)D - m * m;                                     \
      if (var < 0) var = 0;                                                                        \
      double mean = k + m, is = invstd_of(var, c->eps);                                            \
      c->stats[r] = mean;                                                                          \
      c->stats[R + r] = var;                                                                       \
      int64_t base = (r % G) * Cg;                                                                 \
      if (S == 1 && (w || b)) {                                                                    \
        /* a parameter per element (layer norm): xhat = (x - tm) * ti + td */                      \
        double cen = centre_##SUF(mean);                                                           \
        T tm = (T)cen, ti = (T)is, td = (T)((cen - mean) * is);                                    \
        const T *restrict wp = w ? w + base : NULL, *restrict bp = b ? b + base : NULL;            \
        if (wp && bp)                                                                              \
          for (int64_t j = 0; j < D; j++)                                                          \
            y[j] = ((x[j] - tm) * ti + td) * wp[j] + bp[j];                                        \
        else if (wp)                                                                               \
          for (int64_t j = 0; j < D; j++)                                                          \
            y[j] = ((x[j] - tm) * ti + td) * wp[j];                                                \
        else                                                                                       \
          for (int64_t j = 0; j < D; j++)                                                          \
            y[j] = (x[j] - tm) * ti + td + bp[j];                                                  \
      } else {                                                                                     \
        double cen = centre_##SUF(mean);                                                           \
        for (int64_t cc = 0; cc < (w || b ? Cg : 1); cc++) { /* one run per row without affine */  \
          double sc = (w ? (double)w[base + cc] : 1.0) * is;                                       \
          double sh = (b ? (double)b[base + cc] : 0.0) - (mean - cen) * sc;                        \
          int64_t len = w || b ? S : D;                                                            \
          affine_run_##SUF(y + cc * S, x + cc * S, len, (T)cen, (T)sc, (T)sh, false);              \
        }                                                                                          \
      }                                                                                            \
    }                                                                                              \
  }                                                                                                \
                                                                                                   \
  /* dx (and, for S > 1, the per-run sums for dw / db in coef) of rows [r0, r1) */                 \
  static void rn_bwd_range_##SUF(void *vctx, int64_t r0, int64_t r1) {                             \
    nctx *c = vctx;                                                                                \
    int64_t D = c->D, R = c->R, G = c->G, Cg = c->Cg, S = c->S;                                    \
    const T *w = c->w;                                                                             \
    for (int64_t r = r0; r < r1; r++) {                                                            \
      const T *restrict x = (const T *)c->x + r * D, *restrict g = (const T *)c->g + r * D;        \
      double mean = c->stats[r], is = invstd_of(c->stats[R + r], c->eps);                          \
      int64_t base = (r % G) * Cg;                                                                 \
      double sgw = 0, sgwx = 0; /* sum(g w), sum(g w (x - mean)) over the row */                   \
      if (S == 1) {                                                                                \
        if (w) {                                                                                   \
          const T *restrict wp = w + base;                                                         \
          double a[LANES] = {0}, b[LANES] = {0};                                                   \
          int64_t j = 0;                                                                           \
          for (; j + LANES <= D; j += LANES)                                                       \
            for (int l = 0; l < LANES; l++) {                                                      \
              double gw = (double)g[j + l] * (double)wp[j + l];                                    \
              a[l] += gw;                                                                          \
              b[l] += gw * ((double)x[j + l] - mean);                                              \
            }                                                                                      \
          for (; j < D; j++) {                                                                     \
            double gw = (double)g[j] * (double)wp[j];                                              \
            sgw += gw;                                                                             \
            sgwx += gw * ((double)x[j] - mean);                                                    \
          }                                                                                        \
          for (int l = 0; l < LANES; l++) {                                                        \
            sgw += a[l];                                                                           \
            sgwx += b[l];                                                                          \
          }                                                                                        \
        } else {                                                                                   \
          grad_sums_##SUF(g, x, NULL, D, mean, &sgw, &sgwx);                                       \
        }                                                                                          \
      } else {                                                                                     \
        double *A = c->coef + r * Cg, *B = c->coef + R * Cg + r * Cg;                              \
        for (int64_t cc = 0; cc < Cg; cc++) {                                                      \
          double s1 = 0, s2 = 0;                                                                   \
          grad_sums_##SUF(g + cc * S, x + cc * S, NULL, S, mean, &s1, &s2);                        \
          A[cc] = s1;                                                                              \
          B[cc] = s2;                                                                              \
          double wv = w ? (double)w[base + cc] : 1.0;                                              \
          sgw += wv * s1;                                                                          \
          sgwx += wv * s2;                                                                         \
        }                                                                                          \
      }                                                                                            \
      if (!c->out) continue;                                                                       \
      T *restrict o = (T *)c->out + r * D;                                                         \
      double k = is * is * is * sgwx / (double)D, cen = centre_##SUF(mean);                        \
      double cst = -k * (cen - mean) - is * sgw / (double)D;                                       \
      if (S == 1 && w) {                                                                           \
        const T *restrict wp = w + base;                                                           \
        T ti = (T)is, tk = (T)k, tc = (T)cst, tm = (T)cen;                                         \
        for (int64_t j = 0; j < D; j++)                                                            \
          o[j] = ti * wp[j] * g[j] - tk * (x[j] - tm) + tc;                                        \
      } else {                                                                                     \
        for (int64_t cc = 0; cc < Cg; cc++) {                                                      \
          double a = (w ? (double)w[base + cc] : 1.0) * is;                                        \
          dx_run_##SUF(o + cc * S, g + cc * S, x + cc * S, NULL, S, (T)a, (T)cen, (T)(-k),         \
                       (T)cst);                                                                    \
        }                                                                                          \
      }                                                                                            \
    }                                                                                              \
  }                                                                                                \
                                                                                                   \
  /* dw, db of parameter columns [j0, j1) when S == 1: rows walked in order (coef: 2 G Cg          \
   * double accumulators) */                                                                       \
  static void rn_dwdb_cols_##SUF(void *vctx, int64_t j0, int64_t j1) {                             \
    nctx *c = vctx;                                                                                \
    int64_t D = c->D, R = c->R, G = c->G, P = G * c->Cg;                                           \
    double *aw = c->coef, *ab = c->coef + P;                                                       \
    for (int64_t gr = 0; gr < G; gr++)                                                             \
      for (int64_t j = j0; j < j1; j++)                                                            \
        aw[gr * D + j] = ab[gr * D + j] = 0;                                                       \
    for (int64_t r = 0; r < R; r++) {                                                              \
      const T *restrict x = (const T *)c->x + r * D, *restrict g = (const T *)c->g + r * D;        \
      double mean = c->stats[r], is = invstd_of(c->stats[R + r], c->eps);                          \
      double *restrict pw = aw + (r % G) * D, *restrict pb = ab + (r % G) * D;                     \
      for (int64_t j = j0; j < j1; j++) {                                                          \
        pw[j] += (double)g[j] * ((double)x[j] - mean) * is;                                        \
        pb[j] += (double)g[j];                                                                     \
      }                                                                                            \
    }                                                                                              \
  }                                                                                                \
                                                                                                   \
  static void rn_bwd_##SUF(nctx *c) {                                                              \
    int64_t R = c->R, G = c->G, Cg = c->Cg, S = c->S, D = c->D, P = G * Cg;                        \
    if (R == 0 || D == 0) {                                                                        \
      if (c->gw) memset(c->gw, 0, (size_t)P * sizeof(T));                                          \
      if (c->gb) memset(c->gb, 0, (size_t)P * sizeof(T));                                          \
      return;                                                                                      \
    }                                                                                              \
    if (c->out || S > 1) lc_parallel_for(R, D, rn_bwd_range_##SUF, c);                             \
    if (!c->gw && !c->gb) return;                                                                  \
    double *aw, *ab;                                                                               \
    if (S > 1) {                                                                                   \
      /* reduce the per-(row, run) sums over the rows of each group, in row order */               \
      double *A = c->coef, *B = c->coef + R * Cg;                                                  \
      for (int64_t p = 0; p < P; p++) {                                                            \
        double sw = 0, sb = 0;                                                                     \
        int64_t gr = p / Cg, cc = p % Cg;                                                          \
        for (int64_t r = gr; r < R; r += G) {                                                      \
          sw += B[r * Cg + cc] * invstd_of(c->stats[R + r], c->eps);                               \
          sb += A[r * Cg + cc];                                                                    \
        }                                                                                          \
        if (c->gw) ((T *)c->gw)[p] = (T)sw;                                                        \
        if (c->gb) ((T *)c->gb)[p] = (T)sb;                                                        \
      }                                                                                            \
      return;                                                                                      \
    }                                                                                              \
    lc_parallel_for(D, R, rn_dwdb_cols_##SUF, c);                                                  \
    aw = c->coef;                                                                                  \
    ab = c->coef + P;                                                                              \
    for (int64_t p = 0; p < P; p++) {                                                              \
      if (c->gw) ((T *)c->gw)[p] = (T)aw[p];                                                       \
      if (c->gb) ((T *)c->gb)[p] = (T)ab[p];                                                       \
    }                                                                                              \
  }

#define NORM_LOOPS(T, SUF) NORM_RUNS(T, SUF) NORM_BN(T, SUF) NORM_RN(T, SUF)
NORM_LOOPS(float, f32)
NORM_LOOPS(double, f64)

/* ---------------------------------------------------------------- batch norm */

typedef struct bn_inputs {
  const lc_tensor *x, *w, *b, *rm, *rv;
} bn_inputs;

static lc_status bn_unpack(const char *name, int n, lc_tensor *const *in, int flags, bn_inputs *p) {
  int want = 1 + !!(flags & LC_NORM_W) + !!(flags & LC_NORM_B) + 2 * !!(flags & LC_NORM_RS);
  if (n != want) return lc_set_error(LC_EARG, "%s: expected %d inputs, got %d", name, want, n);
  int k = 1;
  p->x = in[0];
  p->w = flags & LC_NORM_W ? in[k++] : NULL;
  p->b = flags & LC_NORM_B ? in[k++] : NULL;
  p->rm = flags & LC_NORM_RS ? in[k++] : NULL;
  p->rv = flags & LC_NORM_RS ? in[k++] : NULL;
  return LC_OK;
}

/* p (weight or bias) must be a {n} tensor of x's dtype. */
static lc_status check_param(const char *name, const char *what, const lc_tensor *p,
                             const lc_tensor *x, int64_t n) {
  if (!p) return LC_OK;
  if (p->numel != n) {
    char b[128];
    return lc_set_error(LC_ESHAPE, "%s: expected %s with %lld elements, got shape %s", name, what,
                        (long long)n, lc_shape_str(p->ndim, p->shape, b, sizeof b));
  }
  if (p->dtype != x->dtype)
    return lc_set_error(LC_EDTYPE, "%s: expected %s of dtype %s (the input's), got %s", name, what,
                        lc_dtype_name(x->dtype), lc_dtype_name(p->dtype));
  return LC_OK;
}

static lc_status bn_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                            const lc_op_args *args, lc_tensor **out) {
  bn_inputs p = {NULL, NULL, NULL, NULL, NULL};
  lc_status st = bn_unpack(op->name, n, in, args->flags, &p);
  if (st) return st;
  const lc_tensor *x = p.x;
  if ((st = need_float_dtype(op->name, "input", x->dtype))) return st;
  if (x->ndim < 2)
    return lc_set_error(LC_ESHAPE, "%s: expected an input {N, C, ...} with at least 2 dims, got %d",
                        op->name, x->ndim);
  bool train = args->flags & LC_NORM_TRAIN;
  int64_t C = x->shape[1], N = x->shape[0];
  int64_t S = C > 0 && N > 0 ? x->numel / (N * C) : 0;
  if ((st = check_param(op->name, "weight", p.w, x, C))) return st;
  if ((st = check_param(op->name, "bias", p.b, x, C))) return st;
  if (!train && !p.rm)
    return lc_set_error(LC_EARG, "%s: running_mean and running_var are needed in eval mode",
                        op->name);
  if (p.rm &&
      (p.rm->numel != C || p.rv->numel != C || !is_float(p.rm->dtype) || !is_float(p.rv->dtype)))
    return lc_set_error(LC_ESHAPE,
                        "%s: expected float running_mean and running_var of %lld "
                        "elements, got %lld and %lld",
                        op->name, (long long)C, (long long)p.rm->numel, (long long)p.rv->numel);

  lc_tensor *tx = NULL, *tw = NULL, *tb = NULL, *y = NULL, *stats = NULL;
  const lc_tensor *cx, *cw, *cb;
  int64_t sshape[2] = {2, C};
  if ((st = dense(x, x->dtype, &tx, &cx)) || (st = dense(p.w, x->dtype, &tw, &cw)) ||
      (st = dense(p.b, x->dtype, &tb, &cb)) ||
      (st = lc_tensor_new(x->ndim, x->shape, x->dtype, &y)) ||
      (st = lc_tensor_new(2, sshape, LC_FLOAT64, &stats)))
    goto fail;
  double *sd = lc_data(stats);
  if (!train) {
    for (int64_t c = 0; c < C; c++) {
      sd[c] = lc_load_f64(lc_data(p.rm), p.rm->dtype, c * p.rm->strides[0]);
      sd[C + c] = lc_load_f64(lc_data(p.rv), p.rv->dtype, c * p.rv->strides[0]);
    }
  }
  nctx c = {.x = lc_data(cx),
            .w = data_or_null(cw),
            .b = data_or_null(cb),
            .out = lc_data(y),
            .stats = sd,
            .N = N,
            .C = C,
            .S = S,
            .eps = args->f[0],
            .train = train,
            .relu = op == &lc_op_batch_norm_relu};
  if (x->numel > 0) {
    if (x->dtype == LC_FLOAT32)
      st = bn_fwd_f32(&c);
    else
      st = bn_fwd_f64(&c);
    if (st) goto fail;
  } else if (train) {
    for (int64_t k = 0; k < 2 * C; k++)
      sd[k] = 0;
  }
  lc_release(tx);
  lc_release(tw);
  lc_release(tb);
  out[0] = y;
  out[1] = stats;
  return LC_OK;
fail:
  lc_release(tx);
  lc_release(tw);
  lc_release(tb);
  lc_release(y);
  lc_release(stats);
  return st;
}

static lc_status bn_backward(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  int flags = ctx->args->flags;
  bool relu = ctx->op == &lc_op_batch_norm_relu, train = flags & LC_NORM_TRAIN;
  int n = ctx->n_inputs;
  int iw = flags & LC_NORM_W ? 1 : -1;
  int ib = flags & LC_NORM_B ? 1 + (iw > 0) : -1;
  bool need_x = ctx->needs_grad[0], need_w = iw > 0 && ctx->needs_grad[iw],
       need_b = ib > 0 && ctx->needs_grad[ib];
  if (!need_x && !need_w && !need_b) return LC_OK;
  lc_tensor *x = NULL, *w = NULL, *y = NULL, *stats = NULL;
  lc_status st = lc_ctx_saved(ctx, 0, &x);
  if (!st && iw > 0) st = lc_ctx_saved(ctx, iw, &w);
  if (!st && relu) st = lc_ctx_saved(ctx, n, &y);
  if (!st) st = lc_ctx_saved(ctx, n + relu, &stats);
  if (st) return st;

  lc_tensor *tx = NULL, *tw = NULL, *tg = NULL, *ty = NULL, *gx = NULL, *gw = NULL, *gb = NULL;
  const lc_tensor *cx, *cw, *cg, *cy;
  double *coef = NULL;
  int64_t C = x->shape[1], N = x->shape[0];
  int64_t S = C > 0 && N > 0 ? x->numel / (N * C) : 0;
  if ((st = dense(x, x->dtype, &tx, &cx)) || (st = dense(w, x->dtype, &tw, &cw)) ||
      (st = dense(g, g->dtype, &tg, &cg)) || (st = dense(y, x->dtype, &ty, &cy)))
    goto done;
  if (cg->dtype != x->dtype) {
    st = grad_dtype_error(ctx, cg->dtype);
    goto done;
  }
  if ((need_x && (st = new_like(&ctx->in[0], &gx))) ||
      (need_w && (st = new_like(&ctx->in[iw], &gw))) ||
      (need_b && (st = new_like(&ctx->in[ib], &gb))))
    goto done;
  coef = malloc((size_t)(C > 0 ? 6 * C : 1) * sizeof *coef);
  if (!coef) {
    st = lc_error_oom((size_t)(6 * C) * sizeof *coef);
    goto done;
  }
  nctx c = {.x = lc_data(cx),
            .g = lc_data(cg),
            .y = cy ? lc_data(cy) : NULL,
            .w = data_or_null(cw),
            .out = gx ? lc_data(gx) : NULL,
            .gw = gw ? lc_data(gw) : NULL,
            .gb = gb ? lc_data(gb) : NULL,
            .stats = lc_data(stats),
            .coef = coef,
            .N = N,
            .C = C,
            .S = S,
            .eps = ctx->args->f[0],
            .train = train,
            .relu = relu};
  if (x->dtype == LC_FLOAT32)
    bn_bwd_f32(&c);
  else
    bn_bwd_f64(&c);
  grad_in[0] = gx;
  if (iw > 0) grad_in[iw] = gw;
  if (ib > 0) grad_in[ib] = gb;
  gx = gw = gb = NULL;
done:
  free(coef);
  lc_release(tx);
  lc_release(tw);
  lc_release(tg);
  lc_release(ty);
  lc_release(gx);
  lc_release(gw);
  lc_release(gb);
  return st;
}

static lc_status bn_backward_graph(const lc_op_ctx *ctx, const lc_tensor *grad_out,
                                   lc_tensor **grad_in);

const lc_op_def lc_op_batch_norm = {.name = "batch_norm",
                                    .grad_fn_name = "BatchNormBackward",
                                    .n_inputs = -1,
                                    .n_outputs = 2,
                                    .save = LC_SAVE_ALL_INPUTS | LC_SAVE_OUT(1),
                                    .forward = bn_forward,
                                    .backward = bn_backward,
                                    .backward_graph = bn_backward_graph};

const lc_op_def lc_op_batch_norm_relu = {.name = "batch_norm",
                                         .grad_fn_name = "BatchNormReluBackward",
                                         .n_inputs = -1,
                                         .n_outputs = 2,
                                         .save =
                                             LC_SAVE_ALL_INPUTS | LC_SAVE_OUT(0) | LC_SAVE_OUT(1),
                                         .forward = bn_forward,
                                         .backward = bn_backward,
                                         .backward_graph = bn_backward_graph};

/* ---------------------------------------------------------------- row norms */

static lc_status rn_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                            const lc_op_args *args, lc_tensor **out) {
  int flags = args->flags;
  int want = 1 + !!(flags & LC_NORM_W) + !!(flags & LC_NORM_B);
  if (n != want) return lc_set_error(LC_EARG, "%s: expected %d inputs, got %d", op->name, want, n);
  const lc_tensor *x = in[0];
  const lc_tensor *w = flags & LC_NORM_W ? in[1] : NULL;
  const lc_tensor *b = flags & LC_NORM_B ? in[1 + !!w] : NULL;
  lc_status st = need_float_dtype(op->name, "input", x->dtype);
  if (st) return st;
  int64_t G = args->i[0], Cg = args->i[1], S = args->i[2];
  int64_t D = Cg * S;
  if (G < 1 || Cg < 0 || S < 0 || (D > 0 && x->numel % D) || (D == 0 && x->numel))
    return lc_set_error(LC_ESHAPE, "%s: rows of %lld elements do not divide an input of %lld",
                        op->name, (long long)D, (long long)x->numel);
  int64_t R = D > 0 ? x->numel / D : 0;
  if (R % G)
    return lc_set_error(LC_ESHAPE, "%s: %lld rows are not a multiple of %lld groups", op->name,
                        (long long)R, (long long)G);
  if ((st = check_param(op->name, "weight", w, x, G * Cg))) return st;
  if ((st = check_param(op->name, "bias", b, x, G * Cg))) return st;

  lc_tensor *tx = NULL, *tw = NULL, *tb = NULL, *y = NULL, *stats = NULL;
  const lc_tensor *cx, *cw, *cb;
  int64_t sshape[2] = {2, R};
  if ((st = dense(x, x->dtype, &tx, &cx)) || (st = dense(w, x->dtype, &tw, &cw)) ||
      (st = dense(b, x->dtype, &tb, &cb)) ||
      (st = lc_tensor_new(x->ndim, x->shape, x->dtype, &y)) ||
      (st = lc_tensor_new(2, sshape, LC_FLOAT64, &stats)))
    goto fail;
  nctx c = {.x = lc_data(cx),
            .w = data_or_null(cw),
            .b = data_or_null(cb),
            .out = lc_data(y),
            .stats = lc_data(stats),
            .R = R,
            .G = G,
            .Cg = Cg,
            .S = S,
            .D = D,
            .eps = args->f[0]};
  if (x->numel > 0) {
    if (x->dtype == LC_FLOAT32)
      lc_parallel_for(R, D, rn_fwd_range_f32, &c);
    else
      lc_parallel_for(R, D, rn_fwd_range_f64, &c);
  }
  lc_release(tx);
  lc_release(tw);
  lc_release(tb);
  out[0] = y;
  out[1] = stats;
  return LC_OK;
fail:
  lc_release(tx);
  lc_release(tw);
  lc_release(tb);
  lc_release(y);
  lc_release(stats);
  return st;
}

static lc_status rn_backward(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  int flags = ctx->args->flags;
  int n = ctx->n_inputs;
  int iw = flags & LC_NORM_W ? 1 : -1;
  int ib = flags & LC_NORM_B ? 1 + (iw > 0) : -1;
  bool need_x = ctx->needs_grad[0], need_w = iw > 0 && ctx->needs_grad[iw],
       need_b = ib > 0 && ctx->needs_grad[ib];
  if (!need_x && !need_w && !need_b) return LC_OK;
  lc_tensor *x = NULL, *w = NULL, *stats = NULL;
  lc_status st = lc_ctx_saved(ctx, 0, &x);
  if (!st && iw > 0) st = lc_ctx_saved(ctx, iw, &w);
  if (!st) st = lc_ctx_saved(ctx, n, &stats);
  if (st) return st;

  int64_t G = ctx->args->i[0], Cg = ctx->args->i[1], S = ctx->args->i[2], D = Cg * S;
  int64_t R = stats->shape[1];
  lc_tensor *tx = NULL, *tw = NULL, *tg = NULL, *gx = NULL, *gw = NULL, *gb = NULL;
  const lc_tensor *cx, *cw, *cg;
  double *coef = NULL;
  if ((st = dense(x, x->dtype, &tx, &cx)) || (st = dense(w, x->dtype, &tw, &cw)) ||
      (st = dense(g, g->dtype, &tg, &cg)))
    goto done;
  if (cg->dtype != x->dtype) {
    st = grad_dtype_error(ctx, cg->dtype);
    goto done;
  }
  if ((need_x && (st = new_like(&ctx->in[0], &gx))) ||
      (need_w && (st = new_like(&ctx->in[iw], &gw))) ||
      (need_b && (st = new_like(&ctx->in[ib], &gb))))
    goto done;
  /* scratch: per (row, run) sums of g and g (x - mean) when runs are longer than one element
   * (group / instance norm), else per-parameter double accumulators for dw, db */
  size_t ncoef = S > 1 ? (size_t)(2 * R * Cg) : (size_t)(2 * G * Cg);
  coef = malloc((ncoef ? ncoef : 1) * sizeof *coef);
  if (!coef) {
    st = lc_error_oom(ncoef * sizeof *coef);
    goto done;
  }
  nctx c = {.x = lc_data(cx),
            .g = lc_data(cg),
            .w = data_or_null(cw),
            .out = gx ? lc_data(gx) : NULL,
            .gw = gw ? lc_data(gw) : NULL,
            .gb = gb ? lc_data(gb) : NULL,
            .stats = lc_data(stats),
            .coef = coef,
            .R = R,
            .G = G,
            .Cg = Cg,
            .S = S,
            .D = D,
            .eps = ctx->args->f[0]};
  if (x->dtype == LC_FLOAT32)
    rn_bwd_f32(&c);
  else
    rn_bwd_f64(&c);
  grad_in[0] = gx;
  if (iw > 0) grad_in[iw] = gw;
  if (ib > 0) grad_in[ib] = gb;
  gx = gw = gb = NULL;
done:
  free(coef);
  lc_release(tx);
  lc_release(tw);
  lc_release(tg);
  lc_release(gx);
  lc_release(gw);
  lc_release(gb);
  return st;
}

/* create_graph: with x seen as (R / G, G, Cg, S) and the parameters as (1, G, Cg, 1), the
 * statistics are recomputed as recorded ops (they depend on x), then
 *   dx = rstd (dy - mean(dy) - xhat mean(dy xhat)), dy = g w,
 *   dw = sum(g xhat), db = sum(g) over the batch and run dims. */
/* The gradients of a normalisation y = w * (x - mu) * rstd + b as recorded ops (create_graph),
 * shared by the row norms and batch norm. x4 and g4 are x and the gradient reshaped alike;
 * w4 the weight viewed to broadcast (NULL: none); the statistics are over the dims in rows (D
 * elements each) and the weight / bias gradients sum over cols. mu and var given (batch norm
 * in eval mode: the running ones) are constants; NULL: the batch's, differentiated through. */
static void norm_grads_graph(lc_gb *b, const lc_op_ctx *ctx, lc_tensor *x4, lc_tensor *g4,
                             lc_tensor *w4, lc_tensor *mu, lc_tensor *var, const bool *rows,
                             const bool *cols, double D, int iw, int ib, lc_tensor **grad_in) {
  bool need_x = ctx->needs_grad[0], need_w = iw > 0 && ctx->needs_grad[iw],
       need_b = ib > 0 && ctx->needs_grad[ib];
  bool batch_stats = !mu;
  if (batch_stats) mu = lc_gb_sc(b, LC_DIV, lc_gb_sum_keep(b, x4, rows), D);
  lc_tensor *xc = lc_gb_bin(b, LC_SUB, x4, mu);
  if (batch_stats)
    var = lc_gb_sc(b, LC_DIV, lc_gb_sum_keep(b, lc_gb_bin(b, LC_MUL, xc, xc), rows), D);
  lc_tensor *rstd = lc_gb_un(b, LC_RSQRT, lc_gb_sc(b, LC_ADD, var, ctx->args->f[0]));
  lc_tensor *xhat = lc_gb_bin(b, LC_MUL, xc, rstd);
  const lc_meta *xm = &ctx->in[0];
  if (need_x) {
    lc_tensor *dy = w4 ? lc_gb_bin(b, LC_MUL, g4, w4) : g4;
    lc_tensor *in = dy;
    if (batch_stats) {
      lc_tensor *m1 = lc_gb_sc(b, LC_DIV, lc_gb_sum_keep(b, dy, rows), D);
      lc_tensor *m2 =
          lc_gb_sc(b, LC_DIV, lc_gb_sum_keep(b, lc_gb_bin(b, LC_MUL, dy, xhat), rows), D);
      in = lc_gb_bin(b, LC_SUB, lc_gb_bin(b, LC_SUB, dy, m1), lc_gb_bin(b, LC_MUL, xhat, m2));
    }
    lc_tensor *dx = lc_gb_bin(b, LC_MUL, rstd, in);
    lc_gb_grad(b, 0, lc_gb_reshape(b, dx, xm->ndim, xm->shape), grad_in);
  }
  if (need_w) {
    lc_tensor *dw = lc_gb_sum_keep(b, lc_gb_bin(b, LC_MUL, g4, xhat), cols);
    lc_gb_grad(b, iw, lc_gb_reshape(b, dw, ctx->in[iw].ndim, ctx->in[iw].shape), grad_in);
  }
  if (need_b) {
    lc_tensor *db = lc_gb_sum_keep(b, g4, cols);
    lc_gb_grad(b, ib, lc_gb_reshape(b, db, ctx->in[ib].ndim, ctx->in[ib].shape), grad_in);
  }
}

/* The element count of a meta, and an error for the empty input (the statistics divide by
 * counts there). */
static int64_t meta_numel(const lc_meta *m) {
  int64_t n = 1;
  for (int d = 0; d < m->ndim; d++)
    n *= m->shape[d];
  return n;
}

static lc_status rn_backward_graph(const lc_op_ctx *ctx, const lc_tensor *grad_out,
                                   lc_tensor **grad_in) {
  int flags = ctx->args->flags;
  int iw = flags & LC_NORM_W ? 1 : -1;
  int ib = flags & LC_NORM_B ? 1 + (iw > 0) : -1;
  const int64_t G = ctx->args->i[0], Cg = ctx->args->i[1], S = ctx->args->i[2], D = Cg * S;
  int64_t numel = meta_numel(&ctx->in[0]);
  lc_gb b = LC_GB_INIT(ctx);
  lc_tensor *x = lc_gb_saved(&b, 0), *w = iw > 0 ? lc_gb_saved(&b, iw) : NULL;
  if (b.st || D == 0 || numel == 0) {
    if (!b.st)
      b.st = lc_set_error(LC_EGRAD, "%s: higher-order gradients of an empty input", ctx->op->name);
    return lc_gb_end(&b, grad_in);
  }
  int64_t s4[4] = {numel / D / G, G, Cg, S}, p4[4] = {1, G, Cg, 1};
  bool rows[4] = {false, false, true, true}, cols[4] = {true, false, false, true};
  lc_tensor *x4 = lc_gb_reshape(&b, x, 4, s4), *g4 = lc_gb_reshape(&b, grad_out, 4, s4);
  lc_tensor *w4 = w ? lc_gb_reshape(&b, w, 4, p4) : NULL;
  norm_grads_graph(&b, ctx, x4, g4, w4, NULL, NULL, rows, cols, (double)D, iw, ib, grad_in);
  return lc_gb_end(&b, grad_in);
}

/* Batch norm over {N, C, S}: statistics per channel over N and S (train), or the running ones
 * (eval, constants); the fused ReLU masks the gradient by y > 0 first. */
static lc_status bn_backward_graph(const lc_op_ctx *ctx, const lc_tensor *grad_out,
                                   lc_tensor **grad_in) {
  int flags = ctx->args->flags;
  bool relu = ctx->op == &lc_op_batch_norm_relu, train = flags & LC_NORM_TRAIN;
  int n = ctx->n_inputs;
  int iw = flags & LC_NORM_W ? 1 : -1;
  int ib = flags & LC_NORM_B ? 1 + (iw > 0) : -1;
  int irm = (flags & LC_NORM_RS) ? 1 + (iw > 0) + (ib > 0) : -1;
  const lc_meta *xm = &ctx->in[0];
  int64_t numel = meta_numel(xm), N = xm->shape[0], C = xm->shape[1];
  lc_gb b = LC_GB_INIT(ctx);
  lc_tensor *x = lc_gb_saved(&b, 0), *w = iw > 0 ? lc_gb_saved(&b, iw) : NULL;
  if (b.st || numel == 0) {
    if (!b.st)
      b.st = lc_set_error(LC_EGRAD, "%s: higher-order gradients of an empty input", ctx->op->name);
    return lc_gb_end(&b, grad_in);
  }
  int64_t S = numel / (N * C);
  int64_t s3[3] = {N, C, S}, p3[3] = {1, C, 1};
  bool red[3] = {true, false, true};
  lc_tensor *g = (lc_tensor *)grad_out;
  if (relu) {
    lc_tensor *y = lc_gb_saved(&b, n);
    g = y ? lc_gb_mask(&b, lc_gb_sc(&b, LC_GT, y, 0.0), g) : NULL;
  }
  lc_tensor *x3 = lc_gb_reshape(&b, x, 3, s3), *g3 = lc_gb_reshape(&b, g, 3, s3);
  lc_tensor *w3 = w ? lc_gb_reshape(&b, w, 3, p3) : NULL;
  lc_tensor *mu = NULL, *var = NULL;
  if (!train) {
    lc_tensor *rm = lc_gb_saved(&b, irm), *rv = lc_gb_saved(&b, irm + 1);
    mu = lc_gb_reshape(&b, lc_gb_cast(&b, rm, xm->dtype), 3, p3);
    var = lc_gb_reshape(&b, lc_gb_cast(&b, rv, xm->dtype), 3, p3);
  }
  if (!b.st)
    norm_grads_graph(&b, ctx, x3, g3, w3, mu, var, red, red, (double)(N * S), iw, ib, grad_in);
  return lc_gb_end(&b, grad_in);
}

#define ROW_NORM_OP(var, nm, gname)                                                                \
  const lc_op_def var = {.name = nm,                                                               \
                         .grad_fn_name = gname,                                                    \
                         .n_inputs = -1,                                                           \
                         .n_outputs = 2,                                                           \
                         .save = LC_SAVE_ALL_INPUTS | LC_SAVE_OUT(1),                              \
                         .forward = rn_forward,                                                    \
                         .backward = rn_backward,                                                  \
                         .backward_graph = rn_backward_graph};
ROW_NORM_OP(lc_op_layer_norm, "layer_norm", "LayerNormBackward")
ROW_NORM_OP(lc_op_group_norm, "group_norm", "GroupNormBackward")
ROW_NORM_OP(lc_op_instance_norm, "instance_norm", "InstanceNormBackward")
