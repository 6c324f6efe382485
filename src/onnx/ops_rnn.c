/* ops_rnn.c - ONNX recurrent layers RNN, GRU and LSTM, run directly over float64 copies in
 * ONNX's layouts (W {dirs, G*H, I}, R {dirs, G*H, H}, B {dirs, 2*G*H}; gates iofc for LSTM,
 * zrh for GRU), with per-direction activations, clip, sequence_lens and layout (opset 14). */
#include "onnx_internal.h"

#include <math.h>
#include <string.h>
#include <strings.h>

typedef enum rnn_kind { K_RNN, K_GRU, K_LSTM } rnn_kind;

typedef enum act_fn {
  A_RELU,
  A_TANH,
  A_SIGMOID,
  A_AFFINE,
  A_LEAKY_RELU,
  A_THRESHOLDED_RELU,
  A_SCALED_TANH,
  A_HARD_SIGMOID,
  A_ELU,
  A_SOFTSIGN,
  A_SOFTPLUS
} act_fn;

typedef struct act {
  act_fn fn;
  double alpha, beta;
} act;

static double act_apply(const act *a, double x) {
  switch (a->fn) {
  case A_RELU: return x > 0 ? x : 0;
  case A_TANH: return tanh(x);
  case A_SIGMOID: return 1.0 / (1.0 + exp(-x));
  case A_AFFINE: return a->alpha * x + a->beta;
  case A_LEAKY_RELU: return x >= 0 ? x : a->alpha * x;
  case A_THRESHOLDED_RELU: return x > a->alpha ? x : 0;
  case A_SCALED_TANH: return a->alpha * tanh(a->beta * x);
  case A_HARD_SIGMOID: {
    double v = a->alpha * x + a->beta;
    return v < 0 ? 0 : v > 1 ? 1 : v;
  }
  case A_ELU: return x >= 0 ? x : a->alpha * (exp(x) - 1);
  case A_SOFTSIGN: return x / (1 + fabs(x));
  case A_SOFTPLUS: return log1p(exp(x));
  }
  return x;
}

/* name -> function, with its parameter count and defaults */
static const struct {
  const char *name;
  act_fn fn;
  int nparams;
  double alpha, beta;
} act_table[] = {
    {"Relu", A_RELU, 0, 0, 0},
    {"Tanh", A_TANH, 0, 0, 0},
    {"Sigmoid", A_SIGMOID, 0, 0, 0},
    {"Affine", A_AFFINE, 2, 1.0, 0.0},
    {"LeakyRelu", A_LEAKY_RELU, 1, 0.01, 0},
    {"ThresholdedRelu", A_THRESHOLDED_RELU, 1, 1.0, 0},
    {"ScaledTanh", A_SCALED_TANH, 2, 1.0, 1.0},
    {"HardSigmoid", A_HARD_SIGMOID, 2, 0.2, 0.5},
    {"Elu", A_ELU, 1, 1.0, 0},
    {"Softsign", A_SOFTSIGN, 0, 0, 0},
    {"Softplus", A_SOFTPLUS, 0, 0, 0},
};

/* The activations attribute (per direction: 1 for RNN, 2 for GRU, 3 for LSTM), alpha and beta
 * consumed in order by the activations that take them. */
static lc_status read_acts(ox_ctx *c, rnn_kind k, int dirs, act *acts) {
  static const act_fn defs[3][3] = {{A_TANH}, {A_SIGMOID, A_TANH}, {A_SIGMOID, A_TANH, A_TANH}};
  int per = k == K_RNN ? 1 : k == K_GRU ? 2 : 3;
  for (int d = 0; d < dirs; d++)
    for (int i = 0; i < per; i++)
      acts[d * per + i] = (act){defs[k][i], 0, 0};
  const Onnx__AttributeProto *a = ox_attr(c->node, "activations");
  if (!a || a->n_strings == 0) return LC_OK;
  if ((int)a->n_strings != per * dirs && !(dirs == 2 && (int)a->n_strings == per))
    return ox_node_error(c, LC_EFORMAT, "%zu activations (expected %d)", a->n_strings, per * dirs);
  const float *al, *be;
  int64_t nal = ox_attr_floats(c->node, "activation_alpha", &al);
  int64_t nbe = ox_attr_floats(c->node, "activation_beta", &be);
  int64_t ia = 0, ib = 0;
  for (int i = 0; i < per * dirs; i++) {
    const ProtobufCBinaryData *s = &a->strings[i % a->n_strings];
    size_t j = 0, n = sizeof act_table / sizeof act_table[0];
    for (; j < n; j++)
      if (strlen(act_table[j].name) == s->len &&
          strncasecmp((const char *)s->data, act_table[j].name, s->len) == 0)
        break;
    if (j == n)
      return ox_node_error(c, LC_EARG, "activation '%.*s' is not supported",
                           (int)(s->len > 64 ? 64 : s->len), (const char *)s->data);
    act *t = &acts[i];
    t->fn = act_table[j].fn;
    t->alpha = act_table[j].alpha;
    t->beta = act_table[j].beta;
    if (act_table[j].nparams >= 1 && ia < nal) t->alpha = al[ia++];
    if (act_table[j].nparams >= 2 && ib < nbe) t->beta = be[ib++];
  }
  return LC_OK;
}

/* t as a contiguous float64 tensor (a new reference), or NULL for NULL. */
static lc_status f64_copy(const lc_tensor *t, lc_tensor **out) {
  *out = NULL;
  if (!t) return LC_OK;
  lc_tensor *a;
  lc_status st = lc_to_dtype(t, LC_FLOAT64, &a);
  if (st) return st;
  st = lc_contiguous(a, out);
  lc_release(a);
  return st;
}

static bool has_shape(const lc_tensor *t, int nd, int64_t a, int64_t b, int64_t c) {
  if (!t) return true;
  int64_t want[3] = {a, b, c};
  if (lc_ndim(t) != nd) return false;
  for (int i = 0; i < nd; i++)
    if (lc_shape(t)[i] != want[i]) return false;
  return true;
}

typedef struct rnn_dims {
  int64_t T, B, I, H, D, G;
  bool batch_first;
} rnn_dims;

/* One direction d over every sample. The input projections of all steps are one matrix
 * product (X W^T), the recurrent ones one product over the batch per step (H R^T, and for
 * GRU without linear_before_reset (r . H) Rh^T); the gates are the loops below. A sample
 * stops at its sequence length (its later outputs stay 0, its state is its last one). xd {T,
 * B, I} (or {B, T, I}); y {T, D, B, H} (or {B, T, D, H}); hn, cn {D, B, H} (or {B, D, H}). */
static lc_status rnn_direction(rnn_kind k, const rnn_dims *z, int d, bool reverse, const act *acts,
                               double clip, bool input_forget, bool lbr, const lc_tensor *xd,
                               const lc_tensor *wd, const lc_tensor *rd, const double *bias,
                               const int64_t *lens, const double *h0, const double *c0,
                               const double *peep, double *y, double *hn, double *cn) {
  int64_t H = z->H, G = z->G, T = z->T, B = z->B, D = z->D, GH = G * H;
  const double *Wb = bias ? bias + d * 2 * GH : NULL, *Rb = bias ? Wb + GH : NULL;
  const double *P = peep ? peep + d * 3 * H : NULL;
  lc_tensor *wsel = NULL, *wt = NULL, *x2 = NULL, *xw0 = NULL, *xw = NULL, *rsel = NULL;
  lc_tensor *rt = NULL, *rhsel = NULL, *rht = NULL, *hm = NULL, *cm = NULL, *rh = NULL;
  lc_tensor *zm = NULL, *hr = NULL, *rhr = NULL;
  int64_t x2s[2] = {T * B, z->I}, hs[2] = {B, H};
  lc_status st;
  if ((st = lc_select(wd, 0, d, &wsel)) || (st = lc_t(wsel, &wt)) ||
      (st = lc_reshape(xd, 2, x2s, &x2)) || (st = lc_matmul(x2, wt, &xw0)) ||
      (st = lc_contiguous(xw0, &xw)) || (st = lc_select(rd, 0, d, &rsel)) ||
      (st = lc_t(rsel, &rt)) || (st = lc_zeros(2, hs, LC_FLOAT64, &hm)) ||
      (st = lc_zeros(2, hs, LC_FLOAT64, &cm)) || (st = lc_zeros(2, hs, LC_FLOAT64, &rh)) ||
      (st = lc_zeros(2, hs, LC_FLOAT64, &zm)))
    goto done;
  if (k == K_GRU && !lbr &&
      ((st = lc_narrow(rsel, 0, 2 * H, H, &rhsel)) || (st = lc_t(rhsel, &rht))))
    goto done;
  double *h = lc_data(hm), *cs = lc_data(cm), *rhp = lc_data(rh), *zp = lc_data(zm);
  const double *xwp = lc_data(xw);
  int64_t maxlen = 0;
  for (int64_t b = 0; b < B; b++) {
    int64_t sidx = z->batch_first ? (b * D + d) * H : (d * B + b) * H;
    for (int64_t j = 0; j < H; j++) {
      h[b * H + j] = h0 ? h0[sidx + j] : 0;
      cs[b * H + j] = c0 ? c0[sidx + j] : 0;
    }
    int64_t len = lens ? lens[b] : T;
    maxlen = len > maxlen ? len : maxlen;
  }
#define CLIP(v) (clip > 0 ? ((v) < -clip ? -clip : (v) > clip ? clip : (v)) : (v))
#define WB(g) (Wb ? Wb[g] : 0.0)
#define RB(g) (Rb ? Rb[g] : 0.0)
  for (int64_t s = 0; s < maxlen; s++) {
    lc_release(hr);
    hr = NULL;
    lc_tensor *hr0 = NULL;
    if ((st = lc_mm(hm, rt, &hr0))) goto done;
    st = lc_contiguous(hr0, &hr);
    lc_release(hr0);
    if (st) goto done;
    const double *ghp = lc_data(hr);
    for (int64_t b = 0; b < B; b++) {
      int64_t len = lens ? lens[b] : T;
      if (s >= len) continue;
      int64_t t = reverse ? len - 1 - s : s;
      const double *gx = xwp + (z->batch_first ? b * T + t : t * B + b) * GH, *gh = ghp + b * GH;
      double *hb = h + b * H, *cb = cs + b * H;
      if (k == K_RNN) {
        for (int64_t j = 0; j < H; j++)
          hb[j] = act_apply(&acts[0], CLIP(gx[j] + WB(j) + gh[j] + RB(j)));
      } else if (k == K_LSTM) { /* iofc */
        for (int64_t j = 0; j < H; j++) {
          double vi = gx[j] + WB(j) + gh[j] + RB(j) + (P ? P[j] * cb[j] : 0);
          double vf = gx[2 * H + j] + WB(2 * H + j) + gh[2 * H + j] + RB(2 * H + j) +
                      (P ? P[2 * H + j] * cb[j] : 0);
          double it = act_apply(&acts[0], CLIP(vi));
          double ft = input_forget ? 1 - it : act_apply(&acts[0], CLIP(vf));
          double ct = act_apply(
              &acts[1], CLIP(gx[3 * H + j] + WB(3 * H + j) + gh[3 * H + j] + RB(3 * H + j)));
          cb[j] = ft * cb[j] + it * ct;
          double vo = gx[H + j] + WB(H + j) + gh[H + j] + RB(H + j) + (P ? P[H + j] * cb[j] : 0);
          hb[j] = act_apply(&acts[0], CLIP(vo)) * act_apply(&acts[2], cb[j]);
        }
      } else { /* zrh */
        for (int64_t j = 0; j < H; j++) {
          double zt = act_apply(&acts[0], CLIP(gx[j] + WB(j) + gh[j] + RB(j)));
          double rt_ = act_apply(&acts[0], CLIP(gx[H + j] + WB(H + j) + gh[H + j] + RB(H + j)));
          zp[b * H + j] = zt;
          if (lbr) {
            double hh = act_apply(&acts[1], CLIP(gx[2 * H + j] + WB(2 * H + j) +
                                                 rt_ * (gh[2 * H + j] + RB(2 * H + j))));
            rhp[b * H + j] = hh; /* the candidate, combined below */
          } else {
            rhp[b * H + j] = rt_ * hb[j];
          }
        }
        if (lbr)
          for (int64_t j = 0; j < H; j++)
            hb[j] = (1 - zp[b * H + j]) * rhp[b * H + j] + zp[b * H + j] * hb[j];
      }
    }
    if (k == K_GRU && !lbr) { /* the candidate reads (r . h) Rh^T */
      lc_release(rhr);
      rhr = NULL;
      lc_tensor *t0 = NULL;
      if ((st = lc_mm(rh, rht, &t0))) goto done;
      st = lc_contiguous(t0, &rhr);
      lc_release(t0);
      if (st) goto done;
      const double *rp = lc_data(rhr);
      for (int64_t b = 0; b < B; b++) {
        int64_t len = lens ? lens[b] : T;
        if (s >= len) continue;
        int64_t t = reverse ? len - 1 - s : s;
        const double *gx = xwp + (z->batch_first ? b * T + t : t * B + b) * GH;
        double *hb = h + b * H;
        for (int64_t j = 0; j < H; j++) {
          double hh = act_apply(
              &acts[1], CLIP(gx[2 * H + j] + WB(2 * H + j) + rp[b * H + j] + RB(2 * H + j)));
          hb[j] = (1 - zp[b * H + j]) * hh + zp[b * H + j] * hb[j];
        }
      }
    }
    if (y)
      for (int64_t b = 0; b < B; b++) {
        int64_t len = lens ? lens[b] : T;
        if (s >= len) continue;
        int64_t t = reverse ? len - 1 - s : s;
        double *yt = y + (z->batch_first ? ((b * T + t) * D + d) * H : ((t * D + d) * B + b) * H);
        memcpy(yt, h + b * H, sizeof(double) * (size_t)H);
      }
  }
#undef CLIP
#undef WB
#undef RB
  for (int64_t b = 0; b < B; b++) {
    int64_t sidx = z->batch_first ? (b * D + d) * H : (d * B + b) * H;
    memcpy(hn + sidx, h + b * H, sizeof(double) * (size_t)H);
    if (cn) memcpy(cn + sidx, cs + b * H, sizeof(double) * (size_t)H);
  }
done:;
  lc_tensor *all[] = {wsel, wt, x2, xw0, xw, rsel, rt, rhsel, rht, hm, cm, rh, zm, hr, rhr};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    lc_release(all[i]);
  return st;
}

static lc_status rnn_run(ox_ctx *c, rnn_kind k) {
  const lc_tensor *x = c->in[0], *w = c->in[1], *r = c->in[2];
  const lc_tensor *b = c->n_in > 3 ? c->in[3] : NULL, *sl = c->n_in > 4 ? c->in[4] : NULL;
  const lc_tensor *ih = c->n_in > 5 ? c->in[5] : NULL;
  const lc_tensor *ic = k == K_LSTM && c->n_in > 6 ? c->in[6] : NULL;
  const lc_tensor *pp = k == K_LSTM && c->n_in > 7 ? c->in[7] : NULL;
  lc_dtype dt = lc_dtype_of(x);
  if (!lc_dtype_is_float(dt))
    return ox_node_error(c, LC_EDTYPE, "input of dtype %s is not supported", lc_dtype_name(dt));
  rnn_dims z;
  z.G = k == K_RNN ? 1 : k == K_GRU ? 3 : 4;
  z.batch_first = c->opset >= 14 && ox_attr_int(c->node, "layout", 0) != 0;
  char buf[32];
  const char *dir = ox_attr_string(c->node, "direction", "forward", buf, sizeof buf);
  bool bidi = strcmp(dir, "bidirectional") == 0, rev = strcmp(dir, "reverse") == 0;
  if (!bidi && !rev && strcmp(dir, "forward") != 0)
    return ox_node_error(c, LC_EARG, "direction '%s' is not supported", dir);
  z.D = bidi ? 2 : 1;
  if (lc_ndim(x) != 3 || lc_ndim(w) != 3 || lc_ndim(r) != 3)
    return ox_node_error(c, LC_ESHAPE, "X, W and R must have 3 dims");
  z.T = lc_shape(x)[z.batch_first ? 1 : 0];
  z.B = lc_shape(x)[z.batch_first ? 0 : 1];
  z.I = lc_shape(x)[2];
  z.H = lc_shape(r)[2];
  int64_t hs = ox_attr_int(c->node, "hidden_size", z.H);
  if (hs != z.H || z.H < 1)
    return ox_node_error(c, LC_ESHAPE, "hidden_size %lld does not match R", (long long)hs);
  int64_t GH = z.G * z.H, D = z.D, B = z.B, H = z.H;
  bool sb = z.batch_first;
  if (!has_shape(w, 3, D, GH, z.I) || !has_shape(r, 3, D, GH, H) ||
      (b && !has_shape(b, 2, D, 2 * GH, 0)) ||
      (ih && !has_shape(ih, 3, sb ? B : D, sb ? D : B, H)) ||
      (ic && !has_shape(ic, 3, sb ? B : D, sb ? D : B, H)) ||
      (pp && !has_shape(pp, 2, D, 3 * H, 0)) || (sl && !has_shape(sl, 1, B, 0, 0)))
    return ox_node_error(c, LC_ESHAPE,
                         "W, R, B, sequence_lens, initial states or P do not fit X {%lld, %lld, "
                         "%lld} with %lld directions and hidden size %lld",
                         (long long)lc_shape(x)[0], (long long)lc_shape(x)[1], (long long)z.I,
                         (long long)D, (long long)H);
  act acts[6];
  lc_status st = read_acts(c, k, (int)D, acts);
  if (st) return st;
  double clip = ox_attr_float(c->node, "clip", 0.0);
  bool input_forget = k == K_LSTM && ox_attr_int(c->node, "input_forget", 0);
  bool lbr = k == K_GRU && ox_attr_int(c->node, "linear_before_reset", 0);
  int64_t lens[4096];
  int64_t *lp = NULL;
  if (sl) {
    int n;
    if (B > 4096)
      return ox_node_error(c, LC_ESHAPE,
                           "sequence_lens over a batch of more than 4096 is not supported");
    if ((st = ox_read_ints(sl, "sequence_lens", lens, 4096, &n))) return st;
    for (int i = 0; i < n; i++)
      if (lens[i] < 0 || lens[i] > z.T)
        return ox_node_error(c, LC_EINDEX, "sequence_lens[%d] = %lld outside 0..%lld", i,
                             (long long)lens[i], (long long)z.T);
    lp = lens;
  }
  bool want_y = c->n_out > 0 && c->node->out[0] >= 0;
  bool want_c = k == K_LSTM && c->n_out > 2 && c->node->out[2] >= 0;
  lc_tensor *xd = NULL, *wd = NULL, *rd = NULL, *bd = NULL, *hd = NULL, *cd = NULL, *pd = NULL;
  lc_tensor *y = NULL, *hn = NULL, *cn = NULL;
  int64_t yshape[4] = {z.T, D, B, H}, yshape_b[4] = {B, z.T, D, H};
  int64_t sshape[3] = {D, B, H}, sshape_b[3] = {B, D, H};
  /* computed outside autograd: the state buffers are updated in place between steps */
  bool grad = lc_set_grad_enabled(false);
  if (!(st = f64_copy(x, &xd)) && !(st = f64_copy(w, &wd)) && !(st = f64_copy(r, &rd)) &&
      !(st = f64_copy(b, &bd)) && !(st = f64_copy(ih, &hd)) && !(st = f64_copy(ic, &cd)) &&
      !(st = f64_copy(pp, &pd)) && !(st = lc_zeros(3, sb ? sshape_b : sshape, LC_FLOAT64, &hn)) &&
      !(st = lc_zeros(3, sb ? sshape_b : sshape, LC_FLOAT64, &cn)) &&
      !(st = want_y ? lc_zeros(4, sb ? yshape_b : yshape, LC_FLOAT64, &y) : LC_OK)) {
    int per = k == K_RNN ? 1 : k == K_GRU ? 2 : 3;
    for (int d = 0; d < D && !st; d++)
      st = rnn_direction(k, &z, d, rev || d == 1, acts + d * per, clip, input_forget, lbr, xd, wd,
                         rd, bd ? lc_data(bd) : NULL, lp, hd ? lc_data(hd) : NULL,
                         cd ? lc_data(cd) : NULL, pd ? lc_data(pd) : NULL, y ? lc_data(y) : NULL,
                         lc_data(hn), lc_data(cn));
  }
  lc_set_grad_enabled(grad);
  lc_tensor *outs[3] = {y, hn, cn};
  bool want[3] = {want_y, c->n_out > 1 && c->node->out[1] >= 0, want_c};
  for (int i = 0; i < 3 && !st; i++) {
    if (!want[i] || !outs[i]) continue;
    if (dt != LC_FLOAT64)
      st = lc_to_dtype(outs[i], dt, &c->out[i]);
    else
      c->out[i] = lc_retain(outs[i]);
  }
  lc_tensor *all[] = {xd, wd, rd, bd, hd, cd, pd, y, hn, cn};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    lc_release(all[i]);
  return st;
}

lc_status ox_rnn(ox_ctx *c) { return rnn_run(c, K_RNN); }
lc_status ox_gru(ox_ctx *c) { return rnn_run(c, K_GRU); }
lc_status ox_lstm(ox_ctx *c) { return rnn_run(c, K_LSTM); }
