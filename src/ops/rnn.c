/*
 * ops/rnn.c - the recurrent family's public C functions (include/lucid_rnn.h): argument checks
 * with messages naming the argument and the expected vs actual shape, then per layer and
 * direction ONE recorded linear op (the input projection of all T steps, a GEMM over T*B rows)
 * and ONE recorded fused recurrence op (src/kernels/rnn.c) whose packed result {y, h_n, c_n} is
 * sliced out with recorded slices. Layers are joined by cat (bidirectional) and dropout.
 */
#include "../kernels/rnn.h"
#include "../autograd/autograd.h"

#include "lucid_dropout.h"
#include "lucid_rnn.h"

#include <stdio.h>
#include <string.h>

#define TRY(call)                                                                                  \
  do {                                                                                             \
    if ((st = (call)) != LC_OK) goto done;                                                         \
  } while (0)

static int gates_of(lc_rnn_mode m) { return m == LC_LSTM ? 4 : m == LC_GRU ? 3 : 1; }

static lc_status want_shape(const char *fn, const char *arg, const lc_tensor *t, int nd,
                            const int64_t *shape) {
  if (t->ndim == nd && !memcmp(t->shape, shape, (size_t)nd * sizeof *shape)) return LC_OK;
  char a[160], b[160];
  lc_shape_str(nd, shape, a, sizeof a);
  lc_shape_str(t->ndim, t->shape, b, sizeof b);
  return lc_set_error(LC_ESHAPE, "%s: %s: expected shape %s, got %s", fn, arg, a, b);
}

static lc_status want_dtype(const char *fn, const char *arg, const lc_tensor *t, lc_dtype dt) {
  if (t->dtype == dt) return LC_OK;
  return lc_set_error(LC_EDTYPE, "%s: %s: expected %s (the input's dtype), got %s", fn, arg,
                      lc_dtype_name(dt), lc_dtype_name(t->dtype));
}

/* P[start:start+len] reshaped to (nd, shape) */
static lc_status part(const lc_tensor *P, int64_t start, int nd, const int64_t *shape,
                      lc_tensor **out) {
  int64_t len = 1;
  for (int d = 0; d < nd; d++)
    len *= shape[d];
  lc_tensor *s = NULL;
  lc_status st = lc_slice(P, 0, start, start + len, 1, &s);
  if (st) return st;
  st = lc_reshape(s, nd, shape, out);
  lc_release(s);
  return st;
}

/* One layer and direction: xp = x W_ih^T + b_ih (one GEMM), then the fused recurrence. x {T, B,
 * F}; h0 {B, Ho}; c0 {B, H} (LSTM). y {T, B, Ho}, hn {B, Ho}, cn {B, H} (LSTM, else untouched). */
static lc_status run_dir(lc_rnn_mode mode, const lc_tensor *x, lc_tensor *h0, lc_tensor *c0,
                         lc_tensor *w_ih, lc_tensor *w_hh, lc_tensor *b_ih, lc_tensor *b_hh,
                         lc_tensor *w_hr, const lc_tensor *lengths, bool reverse, lc_tensor **y,
                         lc_tensor **hn, lc_tensor **cn) {
  lc_tensor *xp = NULL, *res[2] = {NULL, NULL};
  lc_status st;
  TRY(lc_linear(x, w_ih, b_ih, &xp));
  lc_tensor *in[7] = {xp,
                      h0,
                      c0 ? c0 : h0,
                      w_hh,
                      b_hh ? b_hh : w_hh,
                      w_hr ? w_hr : w_hh,
                      lengths ? (lc_tensor *)lengths : w_hh};
  lc_op_args a = {.ni = LC_RNNA_N};
  a.i[LC_RNNA_MODE] = mode;
  a.i[LC_RNNA_REVERSE] = reverse;
  a.i[LC_RNNA_BIAS] = b_hh != NULL;
  a.i[LC_RNNA_PROJ] = w_hr != NULL;
  a.i[LC_RNNA_LENGTHS] = lengths != NULL;
  TRY(lc_apply(&lc_op_rnn_recurrence, 7, in, &a, res));
  int64_t T = x->shape[0], B = x->shape[1], Ho = h0->shape[1];
  int64_t sy[3] = {T, B, Ho}, sh[2] = {B, Ho};
  TRY(part(res[0], 0, 3, sy, y));
  TRY(part(res[0], T * B * Ho, 2, sh, hn));
  if (mode == LC_LSTM) TRY(part(res[0], T * B * Ho + B * Ho, 2, c0->shape, cn));
done:
  lc_release(xp);
  lc_release(res[0]);
  lc_release(res[1]);
  return st;
}

static lc_status check_lengths(const char *fn, const char *arg, const lc_tensor *l, int64_t T,
                               int64_t B) {
  if (l->dtype != LC_INT64)
    return lc_set_error(LC_EDTYPE, "%s: %s: expected an int64 tensor, got %s", fn, arg,
                        lc_dtype_name(l->dtype));
  lc_status st = want_shape(fn, arg, l, 1, &B);
  if (st) return st;
  lc_tensor *d = NULL;
  if ((st = lc_contiguous(l, &d))) return st;
  const int64_t *p = lc_data(d);
  for (int64_t b = 0; b < B && !st; b++)
    if (p[b] < 1 || p[b] > T)
      st = lc_set_error(LC_EARG,
                        "%s: %s: every length must be in [1, %lld] (the sequence "
                        "length), got %lld at sample " LC_POS_I,
                        fn, arg, (long long)T, (long long)p[b], (long long)b);
  lc_release(d);
  return st;
}

lc_status lc_rnn(lc_rnn_mode mode, const lc_tensor *input, const lc_tensor *hx, const lc_tensor *cx,
                 int n_weights, lc_tensor *const *weights, const lc_rnn_opts *opts, lc_tensor **out,
                 lc_tensor **h_n, lc_tensor **c_n) {
  static const lc_rnn_opts dflt = {.num_layers = 1, .bias = true};
  if (!opts) opts = &dflt;
  const char *fn = opts->name ? opts->name : "rnn";
  const char *hxa = opts->hx_arg ? opts->hx_arg : "argument 2 (hx)";
  const char *cxa = opts->cx_arg ? opts->cx_arg : "argument 3 (cx)";
  const char *la = opts->lengths_arg ? opts->lengths_arg : "lengths";
  if (!input || !out || !h_n || (n_weights > 0 && !weights))
    return lc_set_error(LC_EARG, "%s: NULL argument", fn);
  if (c_n) *c_n = NULL;
  if (mode < LC_RNN_TANH || mode > LC_GRU)
    return lc_set_error(LC_EARG, "%s: unknown mode %d", fn, (int)mode);
  int G = gates_of(mode), L = opts->num_layers > 0 ? opts->num_layers : 1,
      D = opts->bidirectional ? 2 : 1;
  bool proj = opts->proj_size > 0;
  if (opts->num_layers < 0)
    return lc_set_error(LC_EARG, "%s: num_layers must be >= 1, got %d", fn, opts->num_layers);
  if (opts->proj_size < 0 || (proj && mode != LC_LSTM))
    return lc_set_error(LC_EARG, "%s: proj_size must be 0%s, got %lld", fn,
                        mode == LC_LSTM ? " or positive" : " (LSTM only)",
                        (long long)opts->proj_size);
  if (opts->dropout < 0 || opts->dropout > 1)
    return lc_set_error(LC_EARG, "%s: dropout must be in [0, 1], got %g", fn, opts->dropout);
  int per = 2 + (opts->bias ? 2 : 0) + (proj ? 1 : 0);
  if (n_weights != L * D * per)
    return lc_set_error(LC_EARG,
                        "%s: expected %d weight tensors (%d layers x %d directions x "
                        "%d), got %d",
                        fn, L * D * per, L, D, per, n_weights);
  for (int k = 0; k < n_weights; k++)
    if (!weights[k]) return lc_set_error(LC_EARG, "%s: weight %d is NULL", fn, k);
  if (input->ndim != 2 && input->ndim != 3)
    return lc_set_error(LC_ESHAPE,
                        "%s: argument 1 (input): expected a 2-D (unbatched) or 3-D "
                        "(batched) tensor, got %d-D",
                        fn, input->ndim);
  lc_dtype dt = input->dtype;
  if (dt != LC_FLOAT32 && dt != LC_FLOAT64)
    return lc_set_error(LC_EDTYPE,
                        "%s: argument 1 (input): expected a float32 or float64 "
                        "tensor, got %s",
                        fn, lc_dtype_name(dt));
  const lc_tensor *w_hh0 = weights[1];
  if (w_hh0->ndim != 2 || w_hh0->shape[0] % G || w_hh0->shape[0] == 0)
    return lc_set_error(LC_ESHAPE, "%s: weight_hh_l0 must be {%d*hidden_size, hidden_size}", fn, G);
  int64_t H = w_hh0->shape[0] / G, Ho = proj ? opts->proj_size : H;
  if (proj && Ho >= H)
    return lc_set_error(LC_EARG, "%s: proj_size (%lld) must be smaller than hidden_size (%lld)", fn,
                        (long long)Ho, (long long)H);
  bool unbatched = input->ndim == 2;
  lc_status st = LC_OK;
  lc_tensor *x = NULL, *h = NULL, *c = NULL, *layer = NULL, *ys[2] = {0}, *o = NULL;
  lc_tensor **hs = calloc((size_t)(2 * L * D), sizeof *hs), **cs = hs ? hs + L * D : NULL;
  if (!hs) return lc_set_error(LC_ENOMEM, "%s: out of memory", fn);
  /* x {T, B, F} */
  if (unbatched)
    TRY(lc_unsqueeze(input, 1, &x));
  else if (opts->batch_first)
    TRY(lc_transpose(input, 0, 1, &x));
  else
    x = lc_retain((lc_tensor *)input);
  int64_t T = x->shape[0], B = x->shape[1], F = x->shape[2];
  const lc_tensor *w_ih0 = weights[0];
  if (w_ih0->ndim != 2 || w_ih0->shape[0] != G * H) {
    st = lc_set_error(LC_ESHAPE, "%s: weight_ih_l0 must be {%lld, input_size}", fn,
                      (long long)(G * H));
    goto done;
  }
  if (F != w_ih0->shape[1]) {
    st = lc_set_error(LC_ESHAPE,
                      "%s: argument 1 (input): expected input.size(-1) to be %lld "
                      "(input_size), got %lld",
                      fn, (long long)w_ih0->shape[1], (long long)F);
    goto done;
  }
  /* every weight's shape and dtype, named as PyTorch names the parameter */
  for (int k = 0; k < n_weights; k++) {
    static const char *const base[5] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh",
                                        "weight_hr"};
    int l = k / (per * D), d = k / per % D, j = k % per;
    int role = opts->bias ? j : (j < 2 ? j : 4);
    int64_t in_l = l == 0 ? F : D * Ho, want[2];
    int nd = role == 2 || role == 3 ? 1 : 2;
    want[0] = role == 4 ? Ho : G * H;
    want[1] = role == 0 ? in_l : role == 1 ? Ho : H;
    char nm[64];
    snprintf(nm, sizeof nm, "%s_l%d%s", base[role], l, d ? "_reverse" : "");
    TRY(want_shape(fn, nm, weights[k], nd, want));
    if (weights[k]->dtype != dt) {
      st = lc_set_error(LC_EDTYPE,
                        "%s: %s: expected %s (the input's dtype), got %s (convert the "
                        "input or the module)",
                        fn, nm, lc_dtype_name(dt), lc_dtype_name(weights[k]->dtype));
      goto done;
    }
  }
  int64_t sh[3] = {L * D, B, Ho}, sc[3] = {L * D, B, H};
  if (hx) {
    TRY(want_dtype(fn, hxa, hx, dt));
    if (unbatched) {
      TRY(want_shape(fn, hxa, hx, 2, (int64_t[]){L * D, Ho}));
      TRY(lc_unsqueeze(hx, 1, &h));
    } else {
      TRY(want_shape(fn, hxa, hx, 3, sh));
      h = lc_retain((lc_tensor *)hx);
    }
  }
  if (cx && mode == LC_LSTM) {
    TRY(want_dtype(fn, cxa, cx, dt));
    if (unbatched) {
      TRY(want_shape(fn, cxa, cx, 2, (int64_t[]){L * D, H}));
      TRY(lc_unsqueeze(cx, 1, &c));
    } else {
      TRY(want_shape(fn, cxa, cx, 3, sc));
      c = lc_retain((lc_tensor *)cx);
    }
  }
  if (opts->lengths) TRY(check_lengths(fn, la, opts->lengths, T, B));
  layer = lc_retain(x);
  for (int l = 0; l < L; l++) {
    for (int d = 0; d < D; d++) {
      int k = l * D + d;
      lc_tensor *const *w = weights + k * per;
      lc_tensor *wih = w[0], *whh = w[1], *bih = opts->bias ? w[2] : NULL,
                *bhh = opts->bias ? w[3] : NULL, *whr = proj ? w[per - 1] : NULL;
      lc_tensor *h0 = NULL, *c0 = NULL;
      if (h)
        st = lc_select(h, 0, k, &h0);
      else
        st = lc_zeros(2, (int64_t[]){B, Ho}, dt, &h0);
      if (!st && mode == LC_LSTM) {
        if (c)
          st = lc_select(c, 0, k, &c0);
        else
          st = lc_zeros(2, (int64_t[]){B, H}, dt, &c0);
      }
      if (!st)
        st = run_dir(mode, layer, h0, c0, wih, whh, bih, bhh, whr, opts->lengths, d == 1, &ys[d],
                     &hs[k], &cs[k]);
      lc_release(h0);
      lc_release(c0);
      if (st) goto done;
    }
    lc_tensor *next = NULL;
    if (D == 2)
      TRY(lc_cat(2, ys, 2, &next));
    else
      next = lc_retain(ys[0]);
    lc_release(ys[0]), lc_release(ys[1]);
    ys[0] = ys[1] = NULL;
    lc_release(layer);
    layer = next;
    if (opts->training && opts->dropout > 0 && l < L - 1) {
      TRY(lc_dropout(layer, opts->dropout, true, &next));
      lc_release(layer);
      layer = next;
    }
  }
  lc_tensor *hn = NULL, *cn = NULL;
  TRY(lc_stack(L * D, hs, 0, &hn));
  if (mode == LC_LSTM && (st = lc_stack(L * D, cs, 0, &cn))) {
    lc_release(hn);
    goto done;
  }
  if (unbatched) {
    lc_tensor *a = NULL, *b = NULL, *e = NULL;
    st = lc_squeeze_dim(layer, 1, &a);
    if (!st) st = lc_squeeze_dim(hn, 1, &b);
    if (!st && cn) st = lc_squeeze_dim(cn, 1, &e);
    lc_release(hn), lc_release(cn);
    if (st) {
      lc_release(a), lc_release(b), lc_release(e);
      goto done;
    }
    o = a, hn = b, cn = e;
  } else if (opts->batch_first) {
    st = lc_transpose(layer, 0, 1, &o);
    if (st) {
      lc_release(hn), lc_release(cn);
      goto done;
    }
  } else
    o = lc_retain(layer);
  *out = o;
  *h_n = hn;
  if (c_n)
    *c_n = cn;
  else
    lc_release(cn);
done:
  lc_release(x), lc_release(h), lc_release(c), lc_release(layer);
  lc_release(ys[0]), lc_release(ys[1]);
  for (int k = 0; k < 2 * L * D; k++)
    lc_release(hs[k]);
  free(hs);
  return st;
}

lc_status lc_rnn_cell(lc_rnn_mode mode, const lc_tensor *input, const lc_tensor *hx,
                      const lc_tensor *cx, const lc_tensor *w_ih, const lc_tensor *w_hh,
                      const lc_tensor *b_ih, const lc_tensor *b_hh, const char *name,
                      lc_tensor **h1, lc_tensor **c1) {
  const char *fn = name ? name : "rnn_cell";
  if (!input || !w_ih || !w_hh || !h1) return lc_set_error(LC_EARG, "%s: NULL argument", fn);
  if (c1) *c1 = NULL;
  if (mode < LC_RNN_TANH || mode > LC_GRU)
    return lc_set_error(LC_EARG, "%s: unknown mode %d", fn, (int)mode);
  if (!b_ih != !b_hh) return lc_set_error(LC_EARG, "%s: give both biases or neither", fn);
  int G = gates_of(mode);
  if (input->ndim != 1 && input->ndim != 2)
    return lc_set_error(LC_ESHAPE,
                        "%s: argument 1 (input): expected a 1-D (unbatched) or 2-D "
                        "(batched) tensor, got %d-D",
                        fn, input->ndim);
  lc_dtype dt = input->dtype;
  if (dt != LC_FLOAT32 && dt != LC_FLOAT64)
    return lc_set_error(LC_EDTYPE,
                        "%s: argument 1 (input): expected a float32 or float64 "
                        "tensor, got %s",
                        fn, lc_dtype_name(dt));
  if (w_hh->ndim != 2 || w_hh->shape[0] % G || w_hh->shape[0] == 0 ||
      w_hh->shape[1] * G != w_hh->shape[0])
    return lc_set_error(LC_ESHAPE, "%s: weight_hh must be {%d*hidden_size, hidden_size}", fn, G);
  int64_t H = w_hh->shape[1];
  bool unb = input->ndim == 1;
  int64_t B = unb ? 1 : input->shape[0], F = input->shape[input->ndim - 1];
  lc_status st = LC_OK;
  lc_tensor *x = NULL, *h = NULL, *c = NULL, *xp = NULL, *xp3 = NULL, *res[2] = {0}, *a = NULL,
            *b = NULL;
  if (w_ih->ndim != 2 || w_ih->shape[0] != G * H)
    return lc_set_error(LC_ESHAPE, "%s: weight_ih must be {%lld, input_size}", fn,
                        (long long)(G * H));
  if (F != w_ih->shape[1])
    return lc_set_error(LC_ESHAPE,
                        "%s: argument 1 (input): expected input.size(-1) to be %lld "
                        "(input_size), got %lld",
                        fn, (long long)w_ih->shape[1], (long long)F);
  TRY(want_dtype(fn, "weight_ih", w_ih, dt));
  TRY(want_dtype(fn, "weight_hh", w_hh, dt));
  if (b_ih) {
    TRY(want_dtype(fn, "bias_ih", b_ih, dt));
    TRY(want_dtype(fn, "bias_hh", b_hh, dt));
    TRY(want_shape(fn, "bias_ih", b_ih, 1, (int64_t[]){G * H}));
    TRY(want_shape(fn, "bias_hh", b_hh, 1, (int64_t[]){G * H}));
  }
  if (unb)
    TRY(lc_unsqueeze(input, 0, &x));
  else
    x = lc_retain((lc_tensor *)input);
  int64_t s2[2] = {B, H};
  const char *hxa = mode == LC_LSTM ? "argument 2 (hx[1])" : "argument 2 (hx)";
  if (hx) {
    TRY(want_dtype(fn, hxa, hx, dt));
    if (unb) {
      TRY(want_shape(fn, hxa, hx, 1, &H));
      TRY(lc_unsqueeze(hx, 0, &h));
    } else {
      TRY(want_shape(fn, hxa, hx, 2, s2));
      h = lc_retain((lc_tensor *)hx);
    }
  } else
    TRY(lc_zeros(2, s2, dt, &h));
  if (mode == LC_LSTM) {
    if (cx) {
      TRY(want_dtype(fn, "argument 2 (hx[2])", cx, dt));
      if (unb) {
        TRY(want_shape(fn, "argument 2 (hx[2])", cx, 1, &H));
        TRY(lc_unsqueeze(cx, 0, &c));
      } else {
        TRY(want_shape(fn, "argument 2 (hx[2])", cx, 2, s2));
        c = lc_retain((lc_tensor *)cx);
      }
    } else
      TRY(lc_zeros(2, s2, dt, &c));
  }
  TRY(lc_linear(x, w_ih, b_ih, &xp));
  TRY(lc_reshape(xp, 3, (int64_t[]){1, B, G * H}, &xp3));
  {
    lc_tensor *in[7] = {xp3,
                        h,
                        c ? c : h,
                        (lc_tensor *)w_hh,
                        (lc_tensor *)(b_hh ? b_hh : w_hh),
                        (lc_tensor *)w_hh,
                        (lc_tensor *)w_hh};
    lc_op_args ar = {.ni = LC_RNNA_N};
    ar.i[LC_RNNA_MODE] = mode;
    ar.i[LC_RNNA_BIAS] = b_hh != NULL;
    TRY(lc_apply(&lc_op_rnn_recurrence, 7, in, &ar, res));
  }
  int64_t sh1[2] = {B, H};
  TRY(part(res[0], 0, unb ? 1 : 2, unb ? &H : sh1, &a));
  if (mode == LC_LSTM && c1) TRY(part(res[0], 2 * B * H, unb ? 1 : 2, unb ? &H : sh1, &b));
  *h1 = a, a = NULL;
  if (c1) *c1 = b, b = NULL;
done:
  lc_release(x), lc_release(h), lc_release(c), lc_release(xp), lc_release(xp3);
  lc_release(res[0]), lc_release(res[1]), lc_release(a), lc_release(b);
  return st;
}
