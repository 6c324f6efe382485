/* rnn.c - the fused recurrence op of the recurrent family (rnn.h): the T steps of one layer and
 * direction of an RNN (tanh / relu), LSTM or GRU, forward and backward-through-time in C.
 *
 * Forward, per step: one GEMM h_{s-1} W_hh^T (+ b_hh), then one fused cell loop (gates,
 * activations, state update; LSTM with projection: one more GEMM m W_hr^T). The input
 * projection x W_ih^T + b_ih of all steps is the caller's one recorded linear op (src/ops/rnn.c),
 * so this op takes it as xp. Backward walks the steps back: per step the fused cell backward and
 * one GEMM for dh_{s-1} (+ one for the projection); dW_hh (and dW_hr) are one GEMM over all
 * steps at the end, db_hh a column sum. GRU's b_hn sits inside r * (W_hn h + b_hn), which is why
 * b_hh is an input here rather than folded into xp. create_graph through this op is an LC_EGRAD
 * error (no backward_graph).
 */
#include "rnn.h"
#include "kernel_util.h"
#include "vmath.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

typedef struct rnn_geo {
  int mode, G;
  bool reverse, proj, bias;
  int64_t T, B, H, Ho;
  const int64_t *len;                       /* NULL: every sample has T steps */
  int64_t o_h, o_c, o_g, o_n, o_m, ws_size; /* workspace offsets (elements) */
} rnn_geo;

/* The time index sample b is at in processing step s, or -1 past its length. */
static inline int64_t rnn_time(const rnn_geo *g, int64_t s, int64_t b) {
  int64_t L = g->len ? g->len[b] : g->T;
  if (s >= L) return -1;
  return g->reverse ? L - 1 - s : s;
}

#define RT float
#define S f32
#define GEMM cblas_sgemm
#define TANH vtanhf
#define SIGM sig_f32
#include "rnn_impl.h"
#undef RT
#undef S
#undef GEMM
#undef TANH
#undef SIGM
#define RT double
#define S f64
#define GEMM cblas_dgemm
#define TANH tanh
#define SIGM sig_f64
#include "rnn_impl.h"
#undef RT
#undef S
#undef GEMM
#undef TANH
#undef SIGM

static const char *FN_NAME = "rnn_recurrence";

static void geo_layout(rnn_geo *g) {
  int64_t TB = g->T * g->B, H = g->H;
  int64_t o = 0;
  g->o_h = o, o += (g->T + 1) * g->B * g->Ho;
  g->o_c = o, o += g->mode == LC_LSTM ? (g->T + 1) * g->B * H : 0;
  g->o_g = o, o += g->mode == LC_LSTM || g->mode == LC_GRU ? TB * g->G * H : 0;
  g->o_n = o, o += g->mode == LC_GRU ? TB * H : 0;
  g->o_m = o, o += g->proj ? TB * H : 0;
  g->ws_size = o;
}

static lc_status shape_is(const lc_tensor *t, const char *what, int nd, int64_t a, int64_t b,
                          int64_t c) {
  int64_t want[3] = {a, b, c};
  if (same_shape(t, nd, want)) return LC_OK;
  char got[128], exp[128];
  lc_shape_str(t->ndim, t->shape, got, sizeof got);
  lc_shape_str(nd, want, exp, sizeof exp);
  return lc_set_error(LC_ESHAPE, "%s: %s: expected shape %s, got %s", FN_NAME, what, exp, got);
}

/* The geometry from the inputs (checked: these come from src/ops/rnn.c, which checked the
 * user's arguments; this guards direct callers of the op). */
static lc_status geo_of(lc_tensor *const *in, const lc_op_args *args, rnn_geo *g) {
  memset(g, 0, sizeof *g);
  g->mode = (int)args->i[LC_RNNA_MODE];
  if (g->mode < LC_RNN_TANH || g->mode > LC_GRU)
    return lc_set_error(LC_EARG, "%s: unknown mode %d", FN_NAME, g->mode);
  g->G = g->mode == LC_LSTM ? 4 : g->mode == LC_GRU ? 3 : 1;
  g->reverse = args->i[LC_RNNA_REVERSE] != 0;
  g->bias = args->i[LC_RNNA_BIAS] != 0;
  g->proj = args->i[LC_RNNA_PROJ] != 0;
  if (g->proj && g->mode != LC_LSTM)
    return lc_set_error(LC_EARG, "%s: a projection is LSTM's only", FN_NAME);
  const lc_tensor *xp = in[0], *whh = in[3];
  lc_dtype dt = xp->dtype;
  if (!is_float(dt))
    return lc_set_error(LC_EDTYPE, "%s: expected a float32 or float64 input, got %s", FN_NAME,
                        lc_dtype_name(dt));
  if (xp->ndim != 3 || whh->ndim != 2)
    return lc_set_error(LC_ESHAPE, "%s: expected xp {T, B, G*H} and w_hh {G*H, Ho}", FN_NAME);
  g->T = xp->shape[0], g->B = xp->shape[1];
  g->Ho = whh->shape[1];
  if (whh->shape[0] % g->G)
    return lc_set_error(LC_ESHAPE, "%s: w_hh's rows are not a multiple of %d", FN_NAME, g->G);
  g->H = whh->shape[0] / g->G;
  int64_t GH = g->G * g->H;
  lc_status st;
  if ((st = shape_is(xp, "xp", 3, g->T, g->B, GH))) return st;
  if ((st = shape_is(in[1], "h0", 2, g->B, g->Ho, 0))) return st;
  if (g->mode == LC_LSTM && (st = shape_is(in[2], "c0", 2, g->B, g->H, 0))) return st;
  if (g->bias && (st = shape_is(in[4], "b_hh", 1, GH, 0, 0))) return st;
  if (g->proj) {
    if ((st = shape_is(in[5], "w_hr", 2, g->Ho, g->H, 0))) return st;
  } else if (g->Ho != g->H)
    return lc_set_error(LC_ESHAPE, "%s: w_hh {%lld, %lld} is not square per gate", FN_NAME,
                        (long long)GH, (long long)g->Ho);
  for (int k = 1; k < 6; k++)
    if (in[k]->dtype != dt)
      return lc_set_error(LC_EDTYPE, "%s: inputs of mixed dtypes (%s and %s)", FN_NAME,
                          lc_dtype_name(dt), lc_dtype_name(in[k]->dtype));
  if (args->i[LC_RNNA_LENGTHS]) {
    const lc_tensor *l = in[6];
    if (l->dtype != LC_INT64 || (st = shape_is(l, "lengths", 1, g->B, 0, 0)))
      return st ? st : lc_set_error(LC_EDTYPE, "%s: lengths must be int64", FN_NAME);
  }
  geo_layout(g);
  return LC_OK;
}

static lc_status check_lengths(const rnn_geo *g) {
  if (!g->len) return LC_OK;
  for (int64_t b = 0; b < g->B; b++)
    if (g->len[b] < 1 || g->len[b] > g->T)
      return lc_set_error(LC_EARG, "%s: lengths[%lld] = %lld is outside [1, %lld]", FN_NAME,
                          (long long)b, (long long)g->len[b], (long long)g->T);
  return LC_OK;
}

#define TRY(call)                                                                                  \
  do {                                                                                             \
    if ((st = (call)) != LC_OK) goto done;                                                         \
  } while (0)

static lc_status rec_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                             const lc_op_args *args, lc_tensor **out) {
  (void)op;
  if (n != 7) return lc_set_error(LC_EARG, "%s: expected 7 inputs, got %d", FN_NAME, n);
  rnn_geo g;
  lc_status st = geo_of(in, args, &g);
  if (st) return st;
  lc_dtype dt = in[0]->dtype;
  lc_tensor *d[7] = {0}, *res = NULL, *ws = NULL, *gh = NULL;
  for (int k = 0; k < 7; k++) {
    bool used = k < 2 || k == 3 || (k == 2 && g.mode == LC_LSTM) || (k == 4 && g.bias) ||
                (k == 5 && g.proj) || (k == 6 && args->i[LC_RNNA_LENGTHS]);
    if (used) TRY(lc_k_dense(in[k], &d[k]));
  }
  g.len = d[6] ? lc_data(d[6]) : NULL;
  TRY(check_lengths(&g));
  int64_t ny = g.T * g.B * g.Ho, nh = g.B * g.Ho, nc = g.mode == LC_LSTM ? g.B * g.H : 0;
  int64_t rs = ny + nh + nc, wss = g.ws_size, ghs[2] = {g.B, g.G * g.H};
  /* y is written at every valid step; padded ones stay 0. The workspace is fully written except
   * rows no one reads (the step loop zeroes the ones a GEMM reads). */
  if (g.len)
    TRY(lc_zeros(1, &rs, dt, &res));
  else
    TRY(lc_empty(1, &rs, dt, &res));
  TRY(lc_empty(1, &wss, dt, &ws));
  TRY(lc_empty(2, ghs, dt, &gh));
  size_t es = lc_dtype_size(dt);
  char *wp = lc_data(ws), *rp = lc_data(res);
  memcpy(wp + (size_t)g.o_h * es, lc_data(d[1]), (size_t)nh * es);
  if (g.mode == LC_LSTM) memcpy(wp + (size_t)g.o_c * es, lc_data(d[2]), (size_t)nc * es);
  const void *bhh = d[4] ? lc_data(d[4]) : NULL, *whr = d[5] ? lc_data(d[5]) : NULL;
  if (dt == LC_FLOAT32)
    rnn_fwd_f32(&g, lc_data(d[0]), lc_data(d[3]), bhh, whr, (float *)rp, (float *)wp, lc_data(gh));
  else
    rnn_fwd_f64(&g, lc_data(d[0]), lc_data(d[3]), bhh, whr, (double *)rp, (double *)wp,
                lc_data(gh));
  memcpy(rp + (size_t)ny * es, wp + (size_t)(g.o_h + g.T * nh) * es, (size_t)nh * es);
  if (nc)
    memcpy(rp + (size_t)(ny + nh) * es, wp + (size_t)(g.o_c + g.T * nc) * es, (size_t)nc * es);
done:
  for (int k = 0; k < 7; k++)
    lc_release(d[k]);
  lc_release(gh);
  if (st) {
    lc_release(res);
    lc_release(ws);
    return st;
  }
  out[0] = res;
  out[1] = ws;
  return LC_OK;
}

/* saved: 0 h0 (unused), 1 w_hh, 2 b_hh, 3 w_hr, 4 lengths, 5 ws (see .save) */
static lc_status rec_backward(const lc_op_ctx *ctx, const lc_tensor *grad_out,
                              lc_tensor **grad_in) {
  lc_status st = LC_OK;
  lc_tensor *whh = NULL, *whr = NULL, *len = NULL, *ws = NULL, *xp_meta = NULL;
  (void)xp_meta;
  TRY(lc_ctx_saved(ctx, 0, &whh));
  TRY(lc_ctx_saved(ctx, 1, &whr));
  TRY(lc_ctx_saved(ctx, 2, &len));
  TRY(lc_ctx_saved(ctx, 3, &ws));
done:
  if (st) return st;
  const lc_op_args *args = ctx->args;
  rnn_geo g;
  memset(&g, 0, sizeof g);
  g.mode = (int)args->i[LC_RNNA_MODE];
  g.G = g.mode == LC_LSTM ? 4 : g.mode == LC_GRU ? 3 : 1;
  g.reverse = args->i[LC_RNNA_REVERSE] != 0;
  g.bias = args->i[LC_RNNA_BIAS] != 0;
  g.proj = args->i[LC_RNNA_PROJ] != 0;
  g.T = ctx->in[0].shape[0], g.B = ctx->in[0].shape[1];
  g.H = whh->shape[0] / g.G, g.Ho = whh->shape[1];
  geo_layout(&g);
  lc_dtype dt = ctx->in[0].dtype;
  size_t es = lc_dtype_size(dt);
  lc_tensor *gd = NULL, *dx = NULL, *DG = NULL, *DH = NULL, *dh = NULL, *dc = NULL, *dhp = NULL,
            *dm = NULL, *wd = NULL, *rd = NULL, *ld = NULL, *dW = NULL, *db = NULL, *dWr = NULL;
  int64_t TB = g.T * g.B, GH = g.G * g.H;
  int64_t sx[3] = {g.T, g.B, GH}, sh[2] = {g.B, g.Ho}, sc[2] = {g.B, g.H}, sp[3] = {g.T, g.B, g.Ho};
#undef TRY
#define TRY(call)                                                                                  \
  do {                                                                                             \
    if ((st = (call)) != LC_OK) goto out;                                                          \
  } while (0)
  TRY(lc_k_dense_as(grad_out, dt, &gd));
  TRY(lc_k_dense(whh, &wd));
  if (g.proj) TRY(lc_k_dense(whr, &rd));
  if (args->i[LC_RNNA_LENGTHS]) {
    TRY(lc_k_dense(len, &ld));
    g.len = lc_data(ld);
  }
  if (g.len)
    TRY(lc_zeros(3, sx, dt, &dx));
  else
    TRY(lc_empty(3, sx, dt, &dx));
  TRY(lc_empty(3, sx, dt, &DG));
  if (g.proj) TRY(lc_empty(3, sp, dt, &DH));
  TRY(lc_empty(2, sh, dt, &dh));
  TRY(lc_empty(2, sh, dt, &dhp));
  TRY(lc_zeros(2, sc, dt, &dc));
  if (g.proj) TRY(lc_empty(2, sc, dt, &dm));
  {
    const char *gp = lc_data(gd);
    int64_t ny = TB * g.Ho, nh = g.B * g.Ho;
    memcpy(lc_data(dh), gp + (size_t)ny * es, (size_t)nh * es);
    if (g.mode == LC_LSTM)
      memcpy(lc_data(dc), gp + (size_t)(ny + nh) * es, (size_t)(g.B * g.H) * es);
    void *rp = rd ? lc_data(rd) : NULL, *dhpp = DH ? lc_data(DH) : NULL,
         *dmp = dm ? lc_data(dm) : NULL;
    if (dt == LC_FLOAT32)
      rnn_bwd_f32(&g, lc_data(wd), rp, lc_data(ws), (const float *)gp, lc_data(dh), lc_data(dc),
                  lc_data(dx), lc_data(DG), dhpp, lc_data(dhp), dmp);
    else
      rnn_bwd_f64(&g, lc_data(wd), rp, lc_data(ws), (const double *)gp, lc_data(dh), lc_data(dc),
                  lc_data(dx), lc_data(DG), dhpp, lc_data(dhp), dmp);
  }
  const char *wsp = lc_data(ws);
  if (ctx->needs_grad[3]) {
    int64_t s2[2] = {GH, g.Ho};
    TRY(lc_empty(2, s2, dt, &dW));
    if (TB > 0 && GH > 0 && g.Ho > 0) {
      if (dt == LC_FLOAT32)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)GH, (int)g.Ho, (int)TB, 1.0f,
                    lc_data(DG), (int)GH, (const float *)wsp + g.o_h, (int)g.Ho, 0.0f, lc_data(dW),
                    (int)g.Ho);
      else
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)GH, (int)g.Ho, (int)TB, 1.0,
                    lc_data(DG), (int)GH, (const double *)wsp + g.o_h, (int)g.Ho, 0.0, lc_data(dW),
                    (int)g.Ho);
    } else
      memset(lc_data(dW), 0, (size_t)(GH * g.Ho) * es);
  }
  if (g.bias && ctx->needs_grad[4]) {
    TRY(lc_zeros(1, &GH, dt, &db));
    if (dt == LC_FLOAT32) {
      const float *p = lc_data(DG);
      float *o = lc_data(db);
      for (int64_t r = 0; r < TB; r++)
        for (int64_t j = 0; j < GH; j++)
          o[j] += p[r * GH + j];
    } else {
      const double *p = lc_data(DG);
      double *o = lc_data(db);
      for (int64_t r = 0; r < TB; r++)
        for (int64_t j = 0; j < GH; j++)
          o[j] += p[r * GH + j];
    }
  }
  if (g.proj && ctx->needs_grad[5]) {
    int64_t s2[2] = {g.Ho, g.H};
    TRY(lc_empty(2, s2, dt, &dWr));
    if (TB > 0 && g.H > 0 && g.Ho > 0) {
      if (dt == LC_FLOAT32)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)g.Ho, (int)g.H, (int)TB, 1.0f,
                    lc_data(DH), (int)g.Ho, (const float *)wsp + g.o_m, (int)g.H, 0.0f,
                    lc_data(dWr), (int)g.H);
      else
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)g.Ho, (int)g.H, (int)TB, 1.0,
                    lc_data(DH), (int)g.Ho, (const double *)wsp + g.o_m, (int)g.H, 0.0,
                    lc_data(dWr), (int)g.H);
    } else
      memset(lc_data(dWr), 0, (size_t)(g.Ho * g.H) * es);
  }
  if (ctx->needs_grad[0]) grad_in[0] = dx, dx = NULL;
  if (ctx->needs_grad[1]) grad_in[1] = dh, dh = NULL;
  if (ctx->needs_grad[2] && g.mode == LC_LSTM) grad_in[2] = dc, dc = NULL;
  if (dW) grad_in[3] = dW, dW = NULL;
  if (db) grad_in[4] = db, db = NULL;
  if (dWr) grad_in[5] = dWr, dWr = NULL;
out:
  lc_release(gd), lc_release(dx), lc_release(DG), lc_release(DH), lc_release(dh);
  lc_release(dc), lc_release(dhp), lc_release(dm), lc_release(wd), lc_release(rd);
  lc_release(ld), lc_release(dW), lc_release(db), lc_release(dWr);
  return st;
}

const lc_op_def lc_op_rnn_recurrence = {
    .name = "rnn_recurrence",
    .grad_fn_name = "RnnRecurrenceBackward",
    .n_inputs = 7,
    .n_outputs = 2,
    .save = LC_SAVE_IN(3) | LC_SAVE_IN(5) | LC_SAVE_IN(6) | LC_SAVE_OUT(1),
    .forward = rec_forward,
    .backward = rec_backward,
    .backward_graph = NULL,
};
