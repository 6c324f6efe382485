/*
 * conv.c - convolution (lc_op_conv: 1-d and 2-d, grouped, dilated, strided, and transposed),
 * forward and backward side by side.
 *
 * Strategy: im2col + GEMM per sample and group. For a conv, the columns of sample n, group g are
 * the (Cg * kh * kw) x (OH * OW) matrix of input patches, and
 *   forward       y[n,g]  = W_g (Og x Cg*kk) @ cols
 *   grad input    dx[n,g] = col2im(W_g^T @ dy[n,g])
 *   grad weight   dW_g   += dy[n,g] @ cols^T          (summed over the batch)
 *   grad bias     db     += row sums of dy[n,g]
 * A transposed conv swaps the roles (its forward is the conv's grad input, and so on), with the
 * im2col geometry taken on the output side. A 1x1 kernel with stride 1 and no padding skips
 * im2col (the columns are the input itself).
 *
 * Threads: samples are independent, so a batch of >= 2 samples is split over the runtime's
 * threads with lc_parallel_for_blas, each GEMM running single-threaded inside (OpenBLAS is set
 * to one thread for the duration and restored after, so the two never oversubscribe the cores;
 * src/core/parallel.c shares that process-wide setting between host threads). Per
 * sample GEMMs single-threaded on two cores beat one OpenBLAS-threaded GEMM per sample by 2-3x
 * here (measured: 32x256x144 per sample, 64 samples: 0.74 ms vs 1.3 ms). The weight gradient is
 * accumulated per batch chunk into its own buffer and the chunks are summed in chunk order.
 * A single sample (one group, not transposed) is split over output channels the same way
 * (conv_fwd_rows: one im2col, each thread a block of the GEMM's rows); float32 3x3 stride-1
 * convs at batch 1 with planes of 14 x 14 and up go through Winograd F(2x2, 3x3) instead
 * (conv_winograd.c; ResNet-18 at batch 1: 0.7-0.8x the time of im2col). The backward is
 * im2col's whatever ran forward.
 *
 * Workspace: each thread keeps one buffer for columns, grown on demand and reused by later
 * calls (a training step does not allocate it again); lc_conv_empty_cache() frees idle buffers
 * and a thread's buffer is freed when the thread exits.
 */
#include "conv.h"
#include "conv_winograd.h"
#include "grad_graph.h"
#include "kernel_util.h"

#include <cblas.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ================================================================ per-thread workspace */

typedef struct conv_ws {
  void *p;
  size_t cap;
  bool busy;
  struct conv_ws *next;
} conv_ws;

static pthread_mutex_t ws_lock = PTHREAD_MUTEX_INITIALIZER;
static conv_ws *ws_list; /* every thread's workspace (keeps them reachable for LSan) */
static _Thread_local conv_ws *ws_mine;
static pthread_key_t ws_key;
static pthread_once_t ws_once = PTHREAD_ONCE_INIT;
static bool ws_key_ok;

static void ws_thread_exit(void *p) {
  conv_ws *w = p;
  pthread_mutex_lock(&ws_lock);
  for (conv_ws **pp = &ws_list; *pp; pp = &(*pp)->next)
    if (*pp == w) {
      *pp = w->next;
      break;
    }
  pthread_mutex_unlock(&ws_lock);
  lc_aligned_free(w->p);
  free(w);
}

static void ws_key_init(void) {
  ws_key_ok = pthread_key_create(&ws_key, ws_thread_exit) == 0;
  (void)lc_on_empty_cache(lc_conv_empty_cache); /* lc_empty_cache frees idle workspaces too */
}

/* The calling thread's workspace with at least nbytes, marked busy; NULL on OOM (error set). */
static void *ws_acquire(size_t nbytes) {
  if (!ws_mine) {
    pthread_once(&ws_once, ws_key_init);
    conv_ws *w = calloc(1, sizeof *w);
    if (!w) {
      lc_error_oom(sizeof *w);
      return NULL;
    }
    pthread_mutex_lock(&ws_lock);
    w->next = ws_list;
    ws_list = w;
    pthread_mutex_unlock(&ws_lock);
    ws_mine = w;
    if (ws_key_ok) pthread_setspecific(ws_key, w);
  }
  conv_ws *w = ws_mine;
  pthread_mutex_lock(&ws_lock);
  w->busy = true;
  if (w->cap < nbytes) {
    lc_aligned_free(w->p);
    w->p = lc_aligned_alloc(nbytes);
    w->cap = w->p ? nbytes : 0;
  }
  void *p = w->p;
  if (!p) w->busy = false;
  pthread_mutex_unlock(&ws_lock);
  if (!p) lc_error_oom(nbytes);
  return p;
}

static void ws_release(void) {
  pthread_mutex_lock(&ws_lock);
  if (ws_mine) ws_mine->busy = false;
  pthread_mutex_unlock(&ws_lock);
}

void lc_conv_empty_cache(void) {
  pthread_mutex_lock(&ws_lock);
  for (conv_ws *w = ws_list; w; w = w->next)
    if (!w->busy) {
      lc_aligned_free(w->p);
      w->p = NULL;
      w->cap = 0;
    }
  pthread_mutex_unlock(&ws_lock);
}

/* ================================================================ im2col / col2im */

/* The image side (C channels of IH x IW) and the column side (CH x CW positions) of a conv. */
typedef struct i2c {
  int64_t C, IH, IW, CH, CW;
  int64_t kh, kw, sh, sw, ph, pw, dh, dw;
} i2c;

/* Range [lo, hi) of output positions o whose input o * s + off falls in [0, n). */
static void valid_range(int64_t n_out, int64_t s, int64_t off, int64_t n, int64_t *lo,
                        int64_t *hi) {
  int64_t a = off >= 0 ? 0 : (-off + s - 1) / s;
  int64_t b = n - off <= 0 ? 0 : (n - off + s - 1) / s;
  if (a > n_out) a = n_out;
  if (b > n_out) b = n_out;
  if (b < a) b = a;
  *lo = a, *hi = b;
}

#define DEF_I2C(T, S)                                                                              \
  static void im2col_##S(const i2c *g, const T *restrict img, T *restrict cols) {                  \
    int64_t CHW = g->CH * g->CW;                                                                   \
    for (int64_t c = 0; c < g->C; c++)                                                             \
      for (int64_t ki = 0; ki < g->kh; ki++)                                                       \
        for (int64_t kj = 0; kj < g->kw; kj++) {                                                   \
          T *restrict dst = cols + ((c * g->kh + ki) * g->kw + kj) * CHW;                          \
          int64_t offw = kj * g->dw - g->pw, lo, hi;                                               \
          valid_range(g->CW, g->sw, offw, g->IW, &lo, &hi);                                        \
          for (int64_t oh = 0; oh < g->CH; oh++, dst += g->CW) {                                   \
            int64_t ih = oh * g->sh - g->ph + ki * g->dh;                                          \
            if (ih < 0 || ih >= g->IH) {                                                           \
              memset(dst, 0, sizeof(T) * (size_t)g->CW);                                           \
              continue;                                                                            \
            }                                                                                      \
            const T *restrict src = img + (c * g->IH + ih) * g->IW + offw;                         \
            for (int64_t ow = 0; ow < lo; ow++)                                                    \
              dst[ow] = 0;                                                                         \
            if (g->sw == 1)                                                                        \
              memcpy(dst + lo, src + lo, sizeof(T) * (size_t)(hi - lo));                           \
            else                                                                                   \
              for (int64_t ow = lo; ow < hi; ow++)                                                 \
                dst[ow] = src[ow * g->sw];                                                         \
            for (int64_t ow = hi; ow < g->CW; ow++)                                                \
              dst[ow] = 0;                                                                         \
          }                                                                                        \
        }                                                                                          \
  }                                                                                                \
  /* img += the columns scattered back (img must be zeroed by the caller first). */                \
  static void col2im_##S(const i2c *g, const T *restrict cols, T *restrict img) {                  \
    int64_t CHW = g->CH * g->CW;                                                                   \
    for (int64_t c = 0; c < g->C; c++)                                                             \
      for (int64_t ki = 0; ki < g->kh; ki++)                                                       \
        for (int64_t kj = 0; kj < g->kw; kj++) {                                                   \
          const T *restrict src = cols + ((c * g->kh + ki) * g->kw + kj) * CHW;                    \
          int64_t offw = kj * g->dw - g->pw, lo, hi;                                               \
          valid_range(g->CW, g->sw, offw, g->IW, &lo, &hi);                                        \
          for (int64_t oh = 0; oh < g->CH; oh++, src += g->CW) {                                   \
            int64_t ih = oh * g->sh - g->ph + ki * g->dh;                                          \
            if (ih < 0 || ih >= g->IH) continue;                                                   \
            T *restrict dst = img + (c * g->IH + ih) * g->IW + offw;                               \
            if (g->sw == 1)                                                                        \
              for (int64_t ow = lo; ow < hi; ow++)                                                 \
                dst[ow] += src[ow];                                                                \
            else                                                                                   \
              for (int64_t ow = lo; ow < hi; ow++)                                                 \
                dst[ow * g->sw] += src[ow];                                                        \
          }                                                                                        \
        }                                                                                          \
  }
DEF_I2C(float, f32)
DEF_I2C(double, f64)

static void im2col(lc_dtype dt, const i2c *g, const void *img, void *cols) {
  if (dt == LC_FLOAT32)
    im2col_f32(g, img, cols);
  else
    im2col_f64(g, img, cols);
}

static void col2im(lc_dtype dt, const i2c *g, const void *cols, void *img) {
  if (dt == LC_FLOAT32)
    col2im_f32(g, cols, img);
  else
    col2im_f64(g, cols, img);
}

/* C (M x N, row-major, ldc N) = alpha-free op(A) @ op(B) + beta * C. */
static void gemm(lc_dtype dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const void *A,
                 int64_t lda, const void *B, int64_t ldb, double beta, void *C) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    if (beta == 0) memset(C, 0, (size_t)(M * N) * lc_dtype_size(dt));
    return;
  }
  if (dt == LC_FLOAT32)
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (int)M, (int)N, (int)K, 1.0f, A, (int)lda, B, (int)ldb, (float)beta, C, (int)N);
  else
    cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (int)M, (int)N, (int)K, 1.0, A, (int)lda, B, (int)ldb, beta, C, (int)N);
}

/* ================================================================ geometry */

typedef struct cjob {
  lc_dtype dt;
  size_t esz;
  bool transposed, one_by_one;
  int64_t N, G;
  int64_t Cin, Cout, Cg, Og; /* channels of x and y, per group */
  int64_t HW, OHW;           /* spatial sizes of x and y */
  int64_t kk;
  i2c geo;                   /* im2col geometry of one group (image side: x for conv, y for
                                transposed) */
  int64_t K, S;              /* the per-group weight as a K x S matrix: conv Og x Cg*kk,
                                transposed Cg x Og*kk */
  int64_t rows, cols;        /* the per-group column matrix: rows x cols */
  const char *x, *w, *b, *dy;
  const char *cols_buf;      /* conv_rows_range: the columns of the one sample */
  char *y, *dx, *dw, *db;    /* outputs; dw/db: per-chunk partials when nchunks > 1 */
  int64_t nchunks;
  lc_status st;              /* first failure of a worker (workspace OOM) */
  pthread_mutex_t lock;
} cjob;

static void job_fail(cjob *j, lc_status st) {
  pthread_mutex_lock(&j->lock);
  if (!j->st) j->st = st;
  pthread_mutex_unlock(&j->lock);
}

#define DEF_CONV_ROWS(T, S)                                                                        \
  /* Sets each of the `rows` rows (OHW long) of y to b[o]. */                                      \
  static void fill_bias_##S(const cjob *j, int64_t rows, T *y, const T *b) {                       \
    for (int64_t o = 0; o < rows; o++) {                                                           \
      T *restrict r = y + o * j->OHW, v = b[o];                                                    \
      for (int64_t k = 0; k < j->OHW; k++)                                                         \
        r[k] = v;                                                                                  \
    }                                                                                              \
  }                                                                                                \
  /* Adds b[o] to each of the Og rows (OHW long) of y. */                                          \
  static void add_bias_##S(const cjob *j, T *y, const T *b) {                                      \
    for (int64_t o = 0; o < j->Og; o++) {                                                          \
      T *restrict r = y + o * j->OHW, v = b[o];                                                    \
      for (int64_t k = 0; k < j->OHW; k++)                                                         \
        r[k] += v;                                                                                 \
    }                                                                                              \
  }                                                                                                \
  /* acc[o] += sum of row o (len long) of g, for Og rows. */                                       \
  static void row_sums_##S(const cjob *j, const T *g, int64_t len, T *acc) {                       \
    for (int64_t o = 0; o < j->Og; o++) {                                                          \
      double s = 0;                                                                                \
      const T *r = g + o * len;                                                                    \
      for (int64_t k = 0; k < len; k++)                                                            \
        s += r[k];                                                                                 \
      acc[o] += (T)s;                                                                              \
    }                                                                                              \
  }                                                                                                \
  /* Sums nchunks partials of len elements (consecutive in s) into d, in chunk order. */           \
  static void sum_partials_##S(const T *s, int64_t nchunks, int64_t len, T *restrict d) {          \
    memcpy(d, s, sizeof(T) * (size_t)len);                                                         \
    for (int64_t c = 1; c < nchunks; c++)                                                          \
      for (int64_t k = 0; k < len; k++)                                                            \
        d[k] += s[c * len + k];                                                                    \
  }
DEF_CONV_ROWS(float, f32)
DEF_CONV_ROWS(double, f64)

static void fill_bias(const cjob *j, int64_t rows, char *y, const char *b) {
  if (j->dt == LC_FLOAT32)
    fill_bias_f32(j, rows, (float *)y, (const float *)b);
  else
    fill_bias_f64(j, rows, (double *)y, (const double *)b);
}

static void add_bias(const cjob *j, char *y, const char *b) {
  if (j->dt == LC_FLOAT32)
    add_bias_f32(j, (float *)y, (const float *)b);
  else
    add_bias_f64(j, (double *)y, (const double *)b);
}

static void row_sums(const cjob *j, const char *g, int64_t len, char *acc) {
  if (j->dt == LC_FLOAT32)
    row_sums_f32(j, (const float *)g, len, (float *)acc);
  else
    row_sums_f64(j, (const double *)g, len, (double *)acc);
}

static void sum_partials(lc_dtype dt, const char *src, int64_t nchunks, int64_t len, char *dst) {
  if (dt == LC_FLOAT32)
    sum_partials_f32((const float *)src, nchunks, len, (float *)dst);
  else
    sum_partials_f64((const double *)src, nchunks, len, (double *)dst);
}

/* ================================================================ forward */

static void conv_fwd_range(void *ctx, int64_t b, int64_t e) {
  cjob *j = ctx;
  size_t es = j->esz;
  char *ws = NULL;
  if (!j->one_by_one) {
    ws = ws_acquire((size_t)(j->rows * j->cols) * es);
    if (!ws) {
      job_fail(j, LC_ENOMEM);
      return;
    }
  }
  for (int64_t n = b; n < e; n++)
    for (int64_t g = 0; g < j->G; g++) {
      const char *xg = j->x + ((n * j->Cin + g * j->Cg) * j->HW) * es;
      const char *wg = j->w + (g * j->K * j->S) * es;
      char *yg = j->y + ((n * j->Cout + g * j->Og) * j->OHW) * es;
      if (!j->transposed) {
        const char *cols = xg;
        if (!j->one_by_one) {
          im2col(j->dt, &j->geo, xg, ws);
          cols = ws;
        }
        /* with a bias, y starts as the bias and the GEMM adds to it (beta 1): one pass over y
         * fewer than zeroing it (beta 0) and adding the bias after */
        if (j->b) fill_bias(j, j->Og, yg, j->b + g * j->Og * es);
        gemm(j->dt, false, false, j->Og, j->OHW, j->S, wg, j->S, cols, j->OHW, j->b ? 1 : 0, yg);
        continue;
      } else if (j->one_by_one) {
        gemm(j->dt, true, false, j->Og, j->HW, j->Cg, wg, j->S, xg, j->HW, 0, yg);
      } else {
        gemm(j->dt, true, false, j->rows, j->HW, j->Cg, wg, j->S, xg, j->HW, 0, ws);
        memset(yg, 0, (size_t)(j->Og * j->OHW) * es);
        col2im(j->dt, &j->geo, ws, yg);
      }
      if (j->b) add_bias(j, yg, j->b + g * j->Og * es);
    }
  if (ws) ws_release();
}

static bool parallel_pays(int64_t n, int64_t cost);

/* Batch 1, one group, not transposed: the columns (j->cols_buf, or x itself for a 1x1 map)
 * are made once and output channels [b, e) are one chunk's rows of the GEMM, so the sample
 * spreads over lucid's threads with single-threaded BLAS rather than over OpenBLAS's threads
 * (whose spinning then fights lucid's pool between convs). */
static void conv_rows_range(void *ctx, int64_t b, int64_t e) {
  cjob *j = ctx;
  size_t es = j->esz;
  char *yr = j->y + b * j->OHW * es;
  if (j->b) fill_bias(j, e - b, yr, j->b + b * es);
  gemm(j->dt, false, false, e - b, j->OHW, j->S, j->w + b * j->S * es, j->S, j->cols_buf, j->OHW,
       j->b ? 1 : 0, yr);
}

/* The batch-1 split of conv_rows_range when it pays; false (nothing done) otherwise. */
static bool conv_fwd_rows(cjob *j, int64_t cost) {
  if (j->N != 1 || j->G != 1 || j->transposed || !parallel_pays(j->Og, cost / j->Og + 1))
    return false;
  char *ws = NULL;
  if (!j->one_by_one) {
    ws = ws_acquire((size_t)(j->rows * j->cols) * j->esz);
    if (!ws) {
      j->st = LC_ENOMEM;
      return true;
    }
    im2col(j->dt, &j->geo, j->x, ws);
  }
  j->cols_buf = ws ? ws : j->x;
  lc_parallel_for_blas(j->Og, cost / j->Og + 1, conv_rows_range, j);
  if (ws) ws_release();
  return true;
}

/* Depthwise convolution (groups == in == out channels: MobileNet's 3x3 layers) computed
 * directly, one plane per item: as one GEMM per group it would be a 1-row matrix product
 * behind an im2col copy. Each kernel tap adds w * (a shifted row of x) to a row of y; with
 * stride 1 the inner loop is contiguous and vectorises. */
/* 3x3, stride 1, no dilation (most of MobileNet's depthwise layers): each output row in one
 * pass summing the nine taps, rows outside the input read from a zero row (zero: IW + 2). */
#define DEF_DEPTHWISE3(T, S)                                                                       \
  static void depthwise3x3_##S(const i2c *g, const T *x, const T *w, const T *bias, T *y,          \
                               T *zero) {                                                          \
    const int64_t OW = g->CW, IW = g->IW, pw = g->pw;                                              \
    for (int64_t i = 0; i < IW + 2; i++)                                                           \
      zero[i] = 0;                                                                                 \
    const T b0 = bias ? *bias : (T)0;                                                              \
    /* ow in [lo, hi): all three columns inside the row */                                         \
    int64_t lo = pw, hi = IW - 2 + pw;                                                             \
    if (lo > OW) lo = OW;                                                                          \
    if (hi > OW) hi = OW;                                                                          \
    if (hi < lo) hi = lo;                                                                          \
    for (int64_t oh = 0; oh < g->CH; oh++) {                                                       \
      const T *r[3];                                                                               \
      for (int k = 0; k < 3; k++) {                                                                \
        int64_t ih = oh - g->ph + k;                                                               \
        r[k] = ih >= 0 && ih < g->IH ? x + ih * IW : zero;                                         \
      }                                                                                            \
      T *restrict yr = y + oh * OW;                                                                \
      const T *restrict r0 = r[0] - pw, *restrict r1 = r[1] - pw, *restrict r2 = r[2] - pw;        \
      for (int64_t ow = lo; ow < hi; ow++)                                                         \
        yr[ow] = b0 + w[0] * r0[ow] + w[1] * r0[ow + 1] + w[2] * r0[ow + 2] + w[3] * r1[ow] +      \
                 w[4] * r1[ow + 1] + w[5] * r1[ow + 2] + w[6] * r2[ow] + w[7] * r2[ow + 1] +       \
                 w[8] * r2[ow + 2];                                                                \
      /* the edge columns, with bounds */                                                          \
      for (int64_t ow = 0; ow < OW; ow++) {                                                        \
        if (ow == lo && hi > lo) ow = hi;                                                          \
        if (ow >= OW) break;                                                                       \
        T acc = b0;                                                                                \
        for (int k = 0; k < 3; k++)                                                                \
          for (int c = 0; c < 3; c++) {                                                            \
            int64_t iw = ow - pw + c;                                                              \
            if (iw >= 0 && iw < IW) acc += w[3 * k + c] * r[k][iw];                                \
          }                                                                                        \
        yr[ow] = acc;                                                                              \
      }                                                                                            \
    }                                                                                              \
  }
DEF_DEPTHWISE3(float, f32)
DEF_DEPTHWISE3(double, f64)

#define DEF_DEPTHWISE(T, S)                                                                        \
  /* split: scratch of IW + 2 elements (stride 2: the input row's even and odd elements, so        \
   * every tap reads a contiguous run) */                                                          \
  static void depthwise_plane_##S(const i2c *g, const T *x, const T *w, const T *bias, T *y,       \
                                  T *split) {                                                      \
    const int64_t OW = g->CW, IW = g->IW, sw = g->sw, half = (IW + 1) / 2;                         \
    if (g->kh == 3 && g->kw == 3 && sw == 1 && g->sh == 1 && g->dh == 1 && g->dw == 1) {           \
      depthwise3x3_##S(g, x, w, bias, y, split);                                                   \
      return;                                                                                      \
    }                                                                                              \
    for (int64_t oh = 0; oh < g->CH; oh++) {                                                       \
      T *restrict yr = y + oh * OW;                                                                \
      T b0 = bias ? *bias : (T)0;                                                                  \
      for (int64_t ow = 0; ow < OW; ow++)                                                          \
        yr[ow] = b0;                                                                               \
      for (int64_t kh = 0; kh < g->kh; kh++) {                                                     \
        int64_t ih = oh * g->sh - g->ph + kh * g->dh;                                              \
        if (ih < 0 || ih >= g->IH) continue;                                                       \
        const T *restrict xr = x + ih * IW;                                                        \
        if (sw == 2) {                                                                             \
          T *restrict ev = split, *restrict od = split + half;                                     \
          for (int64_t i = 0; i < IW / 2; i++) {                                                   \
            ev[i] = xr[2 * i];                                                                     \
            od[i] = xr[2 * i + 1];                                                                 \
          }                                                                                        \
          if (IW % 2) ev[IW / 2] = xr[IW - 1];                                                     \
        }                                                                                          \
        for (int64_t kw = 0; kw < g->kw; kw++) {                                                   \
          const T wv = w[kh * g->kw + kw];                                                         \
          int64_t off = kw * g->dw - g->pw, lo, hi;                                                \
          valid_range(OW, sw, off, IW, &lo, &hi);                                                  \
          if (sw == 1) {                                                                           \
            const T *restrict xs = xr + off;                                                       \
            for (int64_t ow = lo; ow < hi; ow++)                                                   \
              yr[ow] += wv * xs[ow];                                                               \
          } else if (sw == 2) { /* input 2 ow + off: even ones for an even off */                  \
            int64_t par = off & 1, base = (off - par) / 2;                                         \
            const T *restrict xs = (par ? split + half : split) + base;                            \
            for (int64_t ow = lo; ow < hi; ow++)                                                   \
              yr[ow] += wv * xs[ow];                                                               \
          } else {                                                                                 \
            for (int64_t ow = lo; ow < hi; ow++)                                                   \
              yr[ow] += wv * xr[ow * sw + off];                                                    \
          }                                                                                        \
        }                                                                                          \
      }                                                                                            \
    }                                                                                              \
  }
DEF_DEPTHWISE(float, f32)
DEF_DEPTHWISE(double, f64)

static bool is_depthwise(const cjob *j) {
  return !j->transposed && j->G > 1 && j->Cg == 1 && j->Og == 1 && j->geo.kh * j->geo.kw > 0;
}

/* Items n * G + g of a depthwise conv. */
static void conv_dw_range(void *ctx, int64_t b, int64_t e) {
  cjob *j = ctx;
  size_t es = j->esz;
  char *split = malloc((size_t)(j->geo.IW + 2) * es);
  if (!split) {
    job_fail(j, LC_ENOMEM);
    return;
  }
  for (int64_t it = b; it < e; it++) {
    int64_t n = it / j->G, g = it % j->G;
    const char *xg = j->x + ((n * j->Cin + g) * j->HW) * es;
    const char *wg = j->w + (g * j->S) * es;
    const char *bg = j->b ? j->b + g * es : NULL;
    char *yg = j->y + ((n * j->Cout + g) * j->OHW) * es;
    if (j->dt == LC_FLOAT32)
      depthwise_plane_f32(&j->geo, (const float *)xg, (const float *)wg, (const float *)bg,
                          (float *)yg, (float *)split);
    else
      depthwise_plane_f64(&j->geo, (const double *)xg, (const double *)wg, (const double *)bg,
                          (double *)yg, (double *)split);
  }
  free(split);
}

#define WINO_MIN_OHW 196 /* output planes of 14 x 14 and up */
#define WINO_MIN_CH 16   /* input and output channels */

/* Whether n items of cost each are worth splitting over the runtime's threads. */
static bool parallel_pays(int64_t n, int64_t cost) {
  return lc_get_num_threads() > 1 && n >= 2 && n * cost >= LC_PARALLEL_GRAIN;
}

/* Runs fn over [0, n) items of cost each: across threads with single-threaded BLAS when it pays
 * (grain: the parallel_for cost per item), else on the calling thread (BLAS then uses the
 * runtime's threads itself). fn reports failures through its context. */
static void run_batch(int64_t n, int64_t cost, int64_t grain, lc_range_fn fn, void *ctx) {
  if (parallel_pays(n, cost))
    lc_parallel_for_blas(n, grain, fn, ctx);
  else
    fn(ctx, 0, n);
}

/* Whether the forward of j goes through Winograd F(2x2, 3x3) (conv_winograd.h): float32, 3x3,
 * stride 1, dilation 1, one group, not transposed; by default only at batch 1 (a batch of >= 2
 * keeps the per-sample split, whose GEMMs already run one per thread) and where the planes and
 * channel counts make the 16 GEMMs large enough to beat the one im2col GEMM. */
static bool use_winograd(const cjob *j) {
  const i2c *g = &j->geo;
  int mode = lc_conv_winograd_mode();
  if (mode == LC_WINO_NEVER || j->transposed || j->dt != LC_FLOAT32 || j->G != 1 || g->kh != 3 ||
      g->kw != 3 || g->sh != 1 || g->sw != 1 || g->dh != 1 || g->dw != 1)
    return false;
  if (mode == LC_WINO_ALWAYS) return true;
  return j->N == 1 && j->OHW >= WINO_MIN_OHW && j->Cg >= WINO_MIN_CH && j->Og >= WINO_MIN_CH;
}

/* The forward through Winograd; false (nothing done) when its workspace size overflows, and
 * the im2col path runs instead. */
static bool winograd_forward(cjob *j) {
  lc_wino_geom wg = {.N = j->N,
                     .Cin = j->Cin,
                     .H = j->geo.IH,
                     .W = j->geo.IW,
                     .Cout = j->Cout,
                     .ph = j->geo.ph,
                     .pw = j->geo.pw};
  size_t bytes = lc_conv_winograd_ws_bytes(&wg);
  if (bytes == 0) return false;
  float *ws = ws_acquire(bytes);
  if (!ws) {
    j->st = LC_ENOMEM;
    return true;
  }
  lc_conv_winograd_f32(&wg, (const float *)j->x, (const float *)j->w, (const float *)j->b,
                       (float *)j->y, ws);
  ws_release();
  return true;
}

/* Stride, dilation and padding above this are refused: with sizes below 2^59 (lc_check_shape)
 * every output-size expression then stays within int64 (checked where they multiply). */
#define CONV_OPT_MAX (INT64_C(1) << 59)

lc_status lc_conv_check_opts(const char *fn, int sd, bool transposed, const lc_conv_opts *o) {
  for (int d = 0; d < sd; d++) {
    if (o->stride[d] < 1)
      return lc_set_error(LC_EARG, "%s: stride must be >= 1, got %lld", fn,
                          (long long)o->stride[d]);
    if (o->dilation[d] < 1)
      return lc_set_error(LC_EARG, "%s: dilation must be >= 1, got %lld", fn,
                          (long long)o->dilation[d]);
    if (!o->same && !o->valid && o->padding[d] < 0)
      return lc_set_error(LC_EARG, "%s: padding must be >= 0, got %lld", fn,
                          (long long)o->padding[d]);
    const int64_t v[3] = {o->stride[d], o->dilation[d], o->padding[d]};
    static const char *const names[3] = {"stride", "dilation", "padding"};
    for (int k = 0; k < 3; k++)
      if (v[k] >= CONV_OPT_MAX)
        return lc_set_error(LC_EARG, "%s: %s must be below 2^59, got %lld", fn, names[k],
                            (long long)v[k]);
  }
  if ((unsigned)o->padding_mode >= LC_PAD_MODE_COUNT)
    return lc_set_error(LC_EARG, "%s: unknown padding_mode %d", fn, (int)o->padding_mode);
  if (!transposed) {
    for (int d = 0; o->same && d < sd; d++)
      if (o->stride[d] != 1)
        return lc_set_error(LC_EARG, "%s: padding \"same\" needs stride 1, got stride %lld", fn,
                            (long long)o->stride[d]);
    return LC_OK;
  }
  if (o->same || o->valid)
    return lc_set_error(LC_EARG,
                        "%s: padding must be an integer or a table of integers, got \"%s\"", fn,
                        o->same ? "same" : "valid");
  if (o->padding_mode != LC_PAD_CONSTANT)
    return lc_set_error(LC_EARG, "%s: only padding_mode \"zeros\" is supported, got \"%s\"", fn,
                        lc_pad_mode_name(o->padding_mode));
  for (int d = 0; d < sd; d++) {
    int64_t op = o->output_padding[d], s = o->stride[d], dl = o->dilation[d];
    if (op < 0 || (op >= s && op >= dl))
      return lc_set_error(LC_EARG,
                          "%s: output_padding must be >= 0 and smaller than stride or dilation, "
                          "got output_padding %lld for stride %lld and dilation %lld",
                          fn, (long long)op, (long long)s, (long long)dl);
  }
  return LC_OK;
}

lc_status lc_conv_check_groups(const char *fn, int64_t groups, int64_t in, int64_t out) {
  if (groups < 1)
    return lc_set_error(LC_EARG, "%s: groups must be >= 1, got %lld", fn, (long long)groups);
  if (in % groups)
    return lc_set_error(LC_EARG, "%s: groups (%lld) must divide in_channels (%lld)", fn,
                        (long long)groups, (long long)in);
  if (out % groups)
    return lc_set_error(LC_EARG, "%s: groups (%lld) must divide out_channels (%lld)", fn,
                        (long long)groups, (long long)out);
  return LC_OK;
}

/* Fills the job's geometry from the shapes; checks everything. out_shape receives y's shape. */
static lc_status conv_setup(const lc_op_args *a, int n, const lc_meta *xm, const lc_meta *wm,
                            const lc_meta *bm, cjob *j, int *out_nd, int64_t *out_shape) {
  const char *fn = (a->flags & LC_CONV_TRANSPOSED) ? "conv_transpose" : "conv";
  char sx[256], sw[256];
  memset(j, 0, sizeof *j);
  j->transposed = (a->flags & LC_CONV_TRANSPOSED) != 0;
  lc_status st = need_float_dtype(fn, "input", xm->dtype);
  if (st) return st;
  if (wm->dtype != xm->dtype || (n == 3 && bm->dtype != xm->dtype))
    return lc_set_error(LC_EDTYPE,
                        "%s: input, weight and bias must have the same dtype, got %s, %s%s%s", fn,
                        lc_dtype_name(xm->dtype), lc_dtype_name(wm->dtype), n == 3 ? " and " : "",
                        n == 3 ? lc_dtype_name(bm->dtype) : "");
  int sd = wm->ndim - 2;
  if (sd != 1 && sd != 2)
    return lc_set_error(LC_ESHAPE, "%s: expected a 3-D or 4-D weight, got shape %s", fn,
                        lc_shape_str(wm->ndim, wm->shape, sw, sizeof sw));
  bool batched = xm->ndim == sd + 2;
  if (!batched && xm->ndim != sd + 1)
    return lc_set_error(LC_ESHAPE, "%s: expected a %d-D or %d-D input for a %d-D weight, got shape %s",
                        fn, sd + 1, sd + 2, wm->ndim, lc_shape_str(xm->ndim, xm->shape, sx, sizeof sx));
  const int64_t *xs = xm->shape + (batched ? 1 : 0);
  int64_t H = sd == 2 ? xs[1] : 1, W = xs[sd];
  int64_t kh = sd == 2 ? wm->shape[2] : 1, kw = wm->shape[sd + 1];
  int64_t sh = sd == 2 ? a->i[LC_CONV_SH] : 1, swd = a->i[LC_CONV_SW - (sd == 1)];
  int64_t ph = sd == 2 ? a->i[LC_CONV_PH] : 0, pw = a->i[LC_CONV_PW - (sd == 1)];
  int64_t dh = sd == 2 ? a->i[LC_CONV_DH] : 1, dw = a->i[LC_CONV_DW - (sd == 1)];
  int64_t oph = sd == 2 ? a->i[LC_CONV_OPH] : 0, opw = a->i[LC_CONV_OPW - (sd == 1)];
  int64_t G = a->i[LC_CONV_G];
  /* the options' rules are lc_conv_check_opts', asked by the entry points */
  j->N = batched ? xm->shape[0] : 1;
  j->G = G;
  j->Cin = xs[0];
  /* a conv's weight is {out, in / groups, ...}, a transposed one's {in, out / groups, ...}: the
   * other channel count is a multiple of groups by construction (0 stands for it) */
  if ((st = lc_conv_check_groups(fn, G, j->transposed ? wm->shape[0] : 0,
                                 j->transposed ? 0 : wm->shape[0])))
    return st;
  if (!j->transposed) {
    if (j->Cin != wm->shape[1] * G)
      return lc_set_error(LC_ESHAPE,
                          "%s: expected input with %lld channels (weight %s, groups %lld), got %lld: input shape %s",
                          fn, (long long)(wm->shape[1] * G), lc_shape_str(wm->ndim, wm->shape, sw, sizeof sw),
                          (long long)G, (long long)j->Cin, lc_shape_str(xm->ndim, xm->shape, sx, sizeof sx));
    j->Cout = wm->shape[0];
  } else {
    if (j->Cin != wm->shape[0])
      return lc_set_error(LC_ESHAPE,
                          "%s: expected input with %lld channels (weight %s), got %lld: input shape %s",
                          fn, (long long)wm->shape[0], lc_shape_str(wm->ndim, wm->shape, sw, sizeof sw),
                          (long long)j->Cin, lc_shape_str(xm->ndim, xm->shape, sx, sizeof sx));
    j->Cout = wm->shape[1] * G;
  }
  if (n == 3 && (bm->ndim != 1 || bm->shape[0] != j->Cout))
    return lc_set_error(LC_ESHAPE, "%s: expected a bias of shape {%lld}, got %s", fn, (long long)j->Cout,
                        lc_shape_str(bm->ndim, bm->shape, sw, sizeof sw));
  j->Cg = j->Cin / G;
  j->Og = j->Cout / G;
  int64_t OH, OW;
  /* sizes < 2^59 and options < 2^59 (lc_conv_check_opts): the products below are checked, the
   * sums of two or three such terms fit */
  int64_t eh, ew, th, tw;
  if (lc_mul_overflows(dh, kh - 1, &eh) || lc_mul_overflows(dw, kw - 1, &ew) ||
      eh >= CONV_OPT_MAX || ew >= CONV_OPT_MAX ||
      (j->transposed && (lc_mul_overflows(H - 1, sh, &th) || lc_mul_overflows(W - 1, swd, &tw) ||
                         th >= CONV_OPT_MAX || tw >= CONV_OPT_MAX)))
    return lc_set_error(LC_ESHAPE,
                        "%s: the kernel size with dilation, or the input size with stride, is "
                        "too large (2^59 or more): input shape %s",
                        fn, lc_shape_str(xm->ndim, xm->shape, sx, sizeof sx));
  eh += 1, ew += 1;
  if (!j->transposed) {
    if (H + 2 * ph < eh || W + 2 * pw < ew) {
      int64_t pin[2] = {H + 2 * ph, W + 2 * pw}, ke[2] = {eh, ew};
      char sp[64], sk[64];
      return lc_set_error(LC_ESHAPE,
                          "%s: kernel size %s (with dilation) is larger than the padded input %s: input shape %s",
                          fn, lc_shape_str(sd, ke + (2 - sd), sk, sizeof sk),
                          lc_shape_str(sd, pin + (2 - sd), sp, sizeof sp),
                          lc_shape_str(xm->ndim, xm->shape, sx, sizeof sx));
    }
    OH = (H + 2 * ph - eh) / sh + 1;
    OW = (W + 2 * pw - ew) / swd + 1;
  } else {
    OH = th - 2 * ph + eh + oph;
    OW = tw - 2 * pw + ew + opw;
    if (OH < 1 || OW < 1) {
      int64_t os[2] = {OH, OW};
      return lc_set_error(LC_ESHAPE, "%s: the output size %s would be empty: input shape %s", fn,
                          lc_shape_str(sd, os + (2 - sd), sw, sizeof sw),
                          lc_shape_str(xm->ndim, xm->shape, sx, sizeof sx));
    }
  }
  j->HW = H * W;
  j->OHW = OH * OW;
  j->kk = kh * kw;
  /* image side of the im2col: x for a conv, y for a transposed conv */
  j->geo = (i2c){.C = j->transposed ? j->Og : j->Cg,
                 .IH = j->transposed ? OH : H, .IW = j->transposed ? OW : W,
                 .CH = j->transposed ? H : OH, .CW = j->transposed ? W : OW,
                 .kh = kh, .kw = kw, .sh = sh, .sw = swd, .ph = ph, .pw = pw, .dh = dh, .dw = dw};
  j->one_by_one = kh == 1 && kw == 1 && sh == 1 && swd == 1 && ph == 0 && pw == 0;
  j->K = j->transposed ? j->Cg : j->Og;
  j->S = j->transposed ? j->Og * j->kk : j->Cg * j->kk;
  j->rows = j->geo.C * j->kk;
  j->cols = j->geo.CH * j->geo.CW;
  if (j->rows > INT_MAX || j->cols > INT_MAX || j->S > INT_MAX || j->K > INT_MAX || j->HW > INT_MAX || j->OHW > INT_MAX)
    return lc_set_error(LC_ESHAPE, "%s: sizes above %d are not supported", fn, INT_MAX);
  j->dt = xm->dtype;
  j->esz = lc_dtype_size(j->dt);
  int nd = 0;
  if (batched) out_shape[nd++] = j->N;
  out_shape[nd++] = j->Cout;
  if (sd == 2) out_shape[nd++] = OH;
  out_shape[nd++] = OW;
  *out_nd = nd;
  return LC_OK;
}

static lc_status conv_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                              const lc_op_args *args, lc_tensor **out) {
  if ((n != 2 && n != 3) || !in[0] || !in[1] || (n == 3 && !in[2]))
    return lc_set_error(LC_EARG, "%s: expected 2 or 3 input tensors", op->name);
  lc_meta xm, wm, bm;
  meta_of(in[0], &xm);
  meta_of(in[1], &wm);
  if (n == 3) meta_of(in[2], &bm);
  cjob j;
  int ond;
  int64_t oshape[LC_MAX_DIMS];
  lc_status st = conv_setup(args, n, &xm, &wm, n == 3 ? &bm : NULL, &j, &ond, oshape);
  if (st) return st;
  lc_tensor *x = NULL, *w = NULL, *b = NULL, *y = NULL;
  if ((st = lc_k_dense(in[0], &x)) || (st = lc_k_dense(in[1], &w)) || (n == 3 && (st = lc_k_dense(in[2], &b))) ||
      (st = lc_tensor_new(ond, oshape, j.dt, &y)))
    goto done;
  j.x = lc_data(x), j.w = lc_data(w), j.b = b ? lc_data(b) : NULL, j.y = lc_data(y);
  pthread_mutex_init(&j.lock, NULL);
  int64_t cost = 2 * j.Cout * j.OHW * j.S + 1;
  if (y->numel > 0 && is_depthwise(&j)) {
    lc_parallel_for(j.N * j.G, 2 * j.OHW * j.S + 1, conv_dw_range, &j); /* cost per plane */
  } else if (y->numel > 0 && !(use_winograd(&j) && winograd_forward(&j)) &&
             !conv_fwd_rows(&j, cost)) {
    run_batch(j.N, cost, cost, conv_fwd_range, &j);
  }
  pthread_mutex_destroy(&j.lock);
  st = j.st;
done:
  lc_release(x);
  lc_release(w);
  lc_release(b);
  if (st) {
    lc_release(y);
    return st;
  }
  out[0] = y;
  return LC_OK;
}

/* ================================================================ backward */

/* Chunk c of nchunks covers samples [c * N / nchunks, (c + 1) * N / nchunks). */
static void conv_bwd_range(void *ctx, int64_t cb, int64_t ce) {
  cjob *j = ctx;
  size_t es = j->esz;
  int64_t wnum = j->G * j->K * j->S;
  bool need_cols = !j->one_by_one;
  /* conv with dx: a second buffer for W^T @ dy before col2im */
  bool need_dcols = !j->one_by_one && !j->transposed && j->dx;
  for (int64_t c = cb; c < ce; c++) {
    char *ws = NULL;
    if (need_cols || need_dcols) {
      ws = ws_acquire((size_t)(j->rows * j->cols) * es * (need_dcols ? 2 : 1));
      if (!ws) {
        job_fail(j, LC_ENOMEM);
        return;
      }
    }
    char *dwc = j->dw ? j->dw + c * wnum * es : NULL;
    char *dbc = j->db ? j->db + c * j->Cout * es : NULL;
    int64_t nb = c * j->N / j->nchunks, ne = (c + 1) * j->N / j->nchunks;
    for (int64_t n = nb; n < ne; n++)
      for (int64_t g = 0; g < j->G; g++) {
        const char *xg = j->x ? j->x + ((n * j->Cin + g * j->Cg) * j->HW) * es : NULL;
        const char *wg = j->w ? j->w + (g * j->K * j->S) * es : NULL;
        const char *dyg = j->dy + ((n * j->Cout + g * j->Og) * j->OHW) * es;
        char *dxg = j->dx ? j->dx + ((n * j->Cin + g * j->Cg) * j->HW) * es : NULL;
        char *dwg = dwc ? dwc + g * j->K * j->S * es : NULL;
        if (!j->transposed) {
          if (dwg) {
            const char *cols = xg;
            if (need_cols) {
              im2col(j->dt, &j->geo, xg, ws);
              cols = ws;
            }
            gemm(j->dt, false, true, j->Og, j->S, j->OHW, dyg, j->OHW, cols, j->OHW, 1, dwg);
          }
          if (dxg) {
            if (j->one_by_one) {
              gemm(j->dt, true, false, j->Cg, j->OHW, j->Og, wg, j->S, dyg, j->OHW, 0, dxg);
            } else {
              char *dcols = ws + (size_t)(j->rows * j->cols) * es;
              gemm(j->dt, true, false, j->S, j->OHW, j->Og, wg, j->S, dyg, j->OHW, 0, dcols);
              memset(dxg, 0, (size_t)(j->Cg * j->HW) * es);
              col2im(j->dt, &j->geo, dcols, dxg);
            }
          }
        } else {
          const char *cols = dyg; /* im2col of dy: (Og * kk) x HW */
          if (need_cols && (dxg || dwg)) {
            im2col(j->dt, &j->geo, dyg, ws);
            cols = ws;
          }
          if (dxg) gemm(j->dt, false, false, j->Cg, j->HW, j->S, wg, j->S, cols, j->HW, 0, dxg);
          if (dwg) gemm(j->dt, false, true, j->Cg, j->S, j->HW, xg, j->HW, cols, j->HW, 1, dwg);
        }
        if (dbc) row_sums(j, dyg, j->OHW, dbc + g * j->Og * es);
      }
    if (ws) ws_release();
  }
}

/* The fused gradients of conv(x, w [, b]) with args a for dy = grad_out: dx (needs ws), dw
 * (needs xs), db, each when asked for (NULL pointers for the others). xm / wm / bm are the
 * inputs' metas (bm when n == 3). */
static lc_status conv_grads(const lc_op_args *a, int n, const lc_meta *xm, const lc_meta *wm,
                            const lc_meta *bm, const lc_tensor *xs, const lc_tensor *ws,
                            const lc_tensor *grad_out, lc_tensor **dx_out, lc_tensor **dw_out,
                            lc_tensor **db_out) {
  bool need_x = dx_out != NULL, need_w = dw_out != NULL, need_b = n == 3 && db_out != NULL;
  cjob j;
  int ond;
  int64_t oshape[LC_MAX_DIMS];
  lc_status st = conv_setup(a, n, xm, wm, n == 3 ? bm : NULL, &j, &ond, oshape);
  if (st) return st;
  lc_tensor *x = NULL, *w = NULL, *dy = NULL, *dx = NULL, *dw = NULL, *db = NULL, *part = NULL;
  if (need_w && (st = lc_k_dense_as(xs, j.dt, &x))) goto fail;
  if (need_x && (st = lc_k_dense_as(ws, j.dt, &w))) goto fail;
  if ((st = lc_k_dense_as(grad_out, j.dt, &dy))) goto fail;
  if (need_x && (st = lc_tensor_new(xm->ndim, xm->shape, j.dt, &dx))) goto fail;
  if (need_w && (st = lc_tensor_new(wm->ndim, wm->shape, j.dt, &dw))) goto fail;
  if (need_b && (st = lc_tensor_new(1, bm->shape, j.dt, &db))) goto fail;
  int nt = lc_get_num_threads();
  int64_t cost = 2 * j.Cout * j.OHW * j.S * (need_x + need_w) + 1;
  j.nchunks = parallel_pays(j.N, cost) ? (j.N < nt ? j.N : nt) : 1;
  int64_t wnum = j.G * j.K * j.S;
  size_t es = j.esz;
  /* partial weight / bias gradients, one set per chunk, zeroed (the GEMMs accumulate) */
  int64_t plen = (need_w ? wnum : 0) + (need_b ? j.Cout : 0);
  if (plen > 0) {
    int64_t pshape[1] = {plen * j.nchunks};
    if ((st = lc_tensor_new(1, pshape, j.dt, &part))) goto fail;
    memset(lc_data(part), 0, (size_t)(plen * j.nchunks) * es);
  }
  j.x = x ? lc_data(x) : NULL;
  j.w = w ? lc_data(w) : NULL;
  j.dy = lc_data(dy);
  j.dx = dx ? lc_data(dx) : NULL;
  j.dw = need_w ? lc_data(part) : NULL;
  j.db = need_b ? (char *)lc_data(part) + (size_t)((need_w ? wnum : 0) * j.nchunks) * es : NULL;
  pthread_mutex_init(&j.lock, NULL);
  if (j.N > 0 && (need_x || need_w || need_b)) {
    if (j.nchunks > 1) /* chunks of samples: each worth a thread */
      run_batch(j.nchunks, cost * (j.N / j.nchunks), cost * (j.N / j.nchunks) + LC_PARALLEL_GRAIN,
                conv_bwd_range, &j);
    else
      conv_bwd_range(&j, 0, 1);
  } else if (dx) {
    memset(lc_data(dx), 0, (size_t)dx->numel * es);
  }
  pthread_mutex_destroy(&j.lock);
  if ((st = j.st)) goto fail;
  if (need_w) sum_partials(j.dt, j.dw, j.nchunks, wnum, lc_data(dw));
  if (need_b) sum_partials(j.dt, j.db, j.nchunks, j.Cout, lc_data(db));
  lc_release(x);
  lc_release(w);
  lc_release(dy);
  lc_release(part);
  if (dx_out) *dx_out = dx;
  if (dw_out) *dw_out = dw;
  if (need_b) *db_out = db;
  return LC_OK;
fail:
  lc_release(x);
  lc_release(w);
  lc_release(dy);
  lc_release(part);
  lc_release(dx);
  lc_release(dw);
  lc_release(db);
  return st;
}

static lc_status conv_backward(const lc_op_ctx *ctx, const lc_tensor *grad_out,
                               lc_tensor **grad_in) {
  int n = ctx->n_inputs;
  for (int i = 0; i < n; i++)
    grad_in[i] = NULL;
  lc_tensor *xs = NULL, *ws = NULL;
  lc_status st = lc_ctx_saved(ctx, 0, &xs);
  if (!st) st = lc_ctx_saved(ctx, 1, &ws);
  if (st) return st;
  return conv_grads(ctx->args, n, &ctx->in[0], &ctx->in[1], n == 3 ? &ctx->in[2] : NULL, xs, ws,
                    grad_out, ctx->needs_grad[0] ? &grad_in[0] : NULL,
                    ctx->needs_grad[1] ? &grad_in[1] : NULL,
                    n == 3 && ctx->needs_grad[2] ? &grad_in[2] : NULL);
}

/* ---- double backward: conv's two gradients as ops of their own.
 * conv(x, w) is bilinear, so with C = conv for fixed args:
 *   conv_input_grad(g, w) = dx (<dx, u> = <g, C(u, w)>),
 *   conv_weight_grad(x, g) = dw (<dw, v> = <g, C(x, v)>),
 * and their adjoints are again C, conv_input_grad and conv_weight_grad, so gradients of any
 * order run on the fused kernels. The missing operand's meta (x's for the input gradient, w's
 * for the weight gradient) rides in args.i[LC_CONV_NARGS..]: {ndim, shape...}. */

static void meta_to_args(lc_op_args *a, const lc_meta *m) {
  a->i[LC_CONV_NARGS] = m->ndim;
  for (int d = 0; d < m->ndim; d++)
    a->i[LC_CONV_NARGS + 1 + d] = m->shape[d];
  a->ni = LC_CONV_NARGS + 1 + m->ndim;
}

static lc_meta meta_from_args(const lc_op_args *a, lc_dtype dt) {
  lc_meta m = {.ndim = (int)a->i[LC_CONV_NARGS], .dtype = dt};
  for (int d = 0; d < m.ndim; d++)
    m.shape[d] = a->i[LC_CONV_NARGS + 1 + d];
  return m;
}

static lc_op_args conv_args_only(const lc_op_args *a) {
  lc_op_args c = *a;
  c.ni = LC_CONV_NARGS;
  return c;
}

/* in = {g, w}: dx of conv, shaped as the x meta in args */
static lc_status conv_input_grad_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                                         const lc_op_args *args, lc_tensor **out) {
  (void)op;
  (void)n;
  lc_meta xm = meta_from_args(args, in[1]->dtype), wm;
  meta_of(in[1], &wm);
  lc_op_args c = conv_args_only(args);
  return conv_grads(&c, 2, &xm, &wm, NULL, NULL, in[1], in[0], &out[0], NULL, NULL);
}

/* in = {x, g}: dw of conv, shaped as the w meta in args */
static lc_status conv_weight_grad_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                                          const lc_op_args *args, lc_tensor **out) {
  (void)op;
  (void)n;
  lc_meta xm, wm = meta_from_args(args, in[0]->dtype);
  meta_of(in[0], &xm);
  lc_op_args c = conv_args_only(args);
  return conv_grads(&c, 2, &xm, &wm, NULL, in[0], NULL, in[1], NULL, &out[0], NULL);
}

const lc_op_def lc_op_conv_input_grad, lc_op_conv_weight_grad;

/* d conv_input_grad(g, w): to g, C(gu, w); to w, conv_weight_grad(gu, g) */
static lc_status conv_input_grad_backward(const lc_op_ctx *ctx, const lc_tensor *gu,
                                          lc_tensor **grad_in) {
  lc_gb b = LC_GB_INIT(ctx);
  lc_tensor *g = lc_gb_saved(&b, 0), *w = lc_gb_saved(&b, 1);
  lc_op_args c = conv_args_only(ctx->args);
  if (ctx->needs_grad[0]) {
    lc_tensor *in[2] = {(lc_tensor *)gu, w};
    lc_gb_grad(&b, 0, lc_gb_op(&b, &lc_op_conv, 2, in, &c), grad_in);
  }
  if (ctx->needs_grad[1]) {
    lc_op_args a = c;
    meta_to_args(&a, &ctx->in[1]);
    lc_tensor *in[2] = {(lc_tensor *)gu, g};
    lc_gb_grad(&b, 1, lc_gb_op(&b, &lc_op_conv_weight_grad, 2, in, &a), grad_in);
  }
  return lc_gb_end(&b, grad_in);
}

/* d conv_weight_grad(x, g): to x, conv_input_grad(g, gv); to g, C(x, gv) */
static lc_status conv_weight_grad_backward(const lc_op_ctx *ctx, const lc_tensor *gv,
                                           lc_tensor **grad_in) {
  lc_gb b = LC_GB_INIT(ctx);
  lc_tensor *x = lc_gb_saved(&b, 0), *g = lc_gb_saved(&b, 1);
  lc_op_args c = conv_args_only(ctx->args);
  if (ctx->needs_grad[0]) {
    lc_op_args a = c;
    meta_to_args(&a, &ctx->in[0]);
    lc_tensor *in[2] = {g, (lc_tensor *)gv};
    lc_gb_grad(&b, 0, lc_gb_op(&b, &lc_op_conv_input_grad, 2, in, &a), grad_in);
  }
  if (ctx->needs_grad[1]) {
    lc_tensor *in[2] = {x, (lc_tensor *)gv};
    lc_gb_grad(&b, 1, lc_gb_op(&b, &lc_op_conv, 2, in, &c), grad_in);
  }
  return lc_gb_end(&b, grad_in);
}

const lc_op_def lc_op_conv_input_grad = {.name = "conv_input_grad",
                                         .grad_fn_name = "ConvolutionBackwardBackward",
                                         .n_inputs = 2,
                                         .n_outputs = 1,
                                         .save = LC_SAVE_IN(0) | LC_SAVE_IN(1),
                                         .forward = conv_input_grad_forward,
                                         .backward = conv_input_grad_backward,
                                         .backward_graph = conv_input_grad_backward};
const lc_op_def lc_op_conv_weight_grad = {.name = "conv_weight_grad",
                                          .grad_fn_name = "ConvolutionBackwardBackward",
                                          .n_inputs = 2,
                                          .n_outputs = 1,
                                          .save = LC_SAVE_IN(0) | LC_SAVE_IN(1),
                                          .forward = conv_weight_grad_forward,
                                          .backward = conv_weight_grad_backward,
                                          .backward_graph = conv_weight_grad_backward};

/* conv's gradients as recorded ops (create_graph) */
static lc_status conv_backward_graph(const lc_op_ctx *ctx, const lc_tensor *g,
                                     lc_tensor **grad_in) {
  int n = ctx->n_inputs;
  lc_gb b = LC_GB_INIT(ctx);
  lc_tensor *x = lc_gb_saved(&b, 0), *w = lc_gb_saved(&b, 1);
  lc_op_args c = conv_args_only(ctx->args);
  if (ctx->needs_grad[0]) {
    lc_op_args a = c;
    meta_to_args(&a, &ctx->in[0]);
    lc_tensor *in[2] = {(lc_tensor *)g, w};
    lc_gb_grad(&b, 0, lc_gb_op(&b, &lc_op_conv_input_grad, 2, in, &a), grad_in);
  }
  if (ctx->needs_grad[1]) {
    lc_op_args a = c;
    meta_to_args(&a, &ctx->in[1]);
    lc_tensor *in[2] = {x, (lc_tensor *)g};
    lc_gb_grad(&b, 1, lc_gb_op(&b, &lc_op_conv_weight_grad, 2, in, &a), grad_in);
  }
  if (n == 3 && ctx->needs_grad[2]) {
    /* db: g summed over every dim but the channel one (dim 1 batched, 0 unbatched) */
    int cdim = ctx->in[0].ndim == ctx->in[1].ndim ? 1 : 0;
    bool red[LC_MAX_DIMS] = {false};
    for (int d = 0; d < g->ndim; d++)
      red[d] = d != cdim;
    lc_tensor *s = lc_gb_sum_keep(&b, g, red);
    lc_gb_grad(&b, 2, lc_gb_reshape(&b, s, 1, ctx->in[2].shape), grad_in);
  }
  return lc_gb_end(&b, grad_in);
}

const lc_op_def lc_op_conv = {.name = "conv",
                              .grad_fn_name = "ConvolutionBackward",
                              .n_inputs = -1,
                              .n_outputs = 1,
                              .save = LC_SAVE_IN(0) | LC_SAVE_IN(1),
                              .forward = conv_forward,
                              .backward = conv_backward,
                              .backward_graph = conv_backward_graph};
