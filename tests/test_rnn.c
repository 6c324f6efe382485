/* test_rnn.c - the recurrent family's C API (include/lucid_rnn.h): a C host building an LSTM
 * from raw weights (checked against a plain-C reference), a GRU cell against its formula,
 * lc_rnn against lc_rnn_cell step by step, float64 gradients of the fused recurrence against
 * central differences (every mode, bidirectional, lengths, projection) and the errors.
 * Run alone with: make ctest-one T=tests/test_rnn.c */
#include "lucid_rnn.h"

#include "family_test.h"
#include "gradcheck.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double sigm(double x) { return 1 / (1 + exp(-x)); }

/* deterministic "random" values in [-0.5, 0.5] */
static void fill(double *v, int64_t n, int seed) {
  for (int64_t k = 0; k < n; k++)
    v[k] = 0.5 * sin(0.37 * (double)(k + 1) * (seed + 1) + seed);
}

TEST(rnn_c_host_lstm_from_raw_weights) {
  enum { T = 4, B = 2, I = 3, H = 5 };
  double wih[4 * H * I], whh[4 * H * H], bih[4 * H], bhh[4 * H], x[T * B * I];
  fill(wih, 4 * H * I, 1), fill(whh, 4 * H * H, 2), fill(bih, 4 * H, 3), fill(bhh, 4 * H, 4);
  fill(x, T * B * I, 5);
  int64_t swih[2] = {4 * H, I}, swhh[2] = {4 * H, H}, sb = 4 * H, sx[3] = {T, B, I};
  for (int dti = 0; dti < 2; dti++) {
    lc_dtype dt = dti ? LC_FLOAT32 : LC_FLOAT64;
    lc_tensor *w[4] = {from(2, swih, dt, wih), from(2, swhh, dt, whh), from(1, &sb, dt, bih),
                       from(1, &sb, dt, bhh)};
    lc_tensor *xt = from(3, sx, dt, x), *out = NULL, *hn = NULL, *cn = NULL;
    lc_rnn_opts o = {.num_layers = 1, .bias = true};
    CHECK_OK(lc_rnn(LC_LSTM, xt, NULL, NULL, 4, w, &o, &out, &hn, &cn));
    CHECK(out && lc_ndim(out) == 3 && lc_shape(out)[2] == H);
    CHECK(hn && lc_ndim(hn) == 3 && lc_shape(hn)[0] == 1);
    CHECK(cn != NULL);
    double *ov = out ? test_values(out) : NULL, *hv = hn ? test_values(hn) : NULL,
           *cv = cn ? test_values(cn) : NULL;
    double tol = dti ? 1e-5 : 1e-12;
    for (int b = 0; b < B && ov && hv && cv; b++) {
      double h[H] = {0}, c[H] = {0};
      for (int t = 0; t < T; t++) {
        double g[4 * H], hnew[H];
        for (int r = 0; r < 4 * H; r++) {
          double a = bih[r] + bhh[r];
          for (int k = 0; k < I; k++)
            a += wih[r * I + k] * x[(t * B + b) * I + k];
          for (int k = 0; k < H; k++)
            a += whh[r * H + k] * h[k];
          g[r] = a;
        }
        for (int j = 0; j < H; j++) {
          double i = sigm(g[j]), f = sigm(g[H + j]), gg = tanh(g[2 * H + j]),
                 oo = sigm(g[3 * H + j]);
          c[j] = f * c[j] + i * gg;
          hnew[j] = oo * tanh(c[j]);
        }
        memcpy(h, hnew, sizeof h);
        for (int j = 0; j < H; j++)
          CHECK_NEAR(ov[(t * B + b) * H + j], h[j], tol);
      }
      for (int j = 0; j < H; j++) {
        CHECK_NEAR(hv[b * H + j], h[j], tol);
        CHECK_NEAR(cv[b * H + j], c[j], tol);
      }
    }
    free(ov), free(hv), free(cv);
    for (int k = 0; k < 4; k++)
      lc_release(w[k]);
    lc_release(xt), lc_release(out), lc_release(hn), lc_release(cn);
  }
}

TEST(rnn_gru_cell_formula_and_sequence_agrees_with_cells) {
  enum { T = 3, B = 2, I = 2, H = 3 };
  double wih[3 * H * I], whh[3 * H * H], bih[3 * H], bhh[3 * H], x[T * B * I], h0[B * H];
  fill(wih, 3 * H * I, 6), fill(whh, 3 * H * H, 7), fill(bih, 3 * H, 8), fill(bhh, 3 * H, 9);
  fill(x, T * B * I, 10), fill(h0, B * H, 11);
  int64_t swih[2] = {3 * H, I}, swhh[2] = {3 * H, H}, sb = 3 * H, sx[3] = {T, B, I},
          sh[3] = {1, B, H}, sx1[2] = {B, I}, sh1[2] = {B, H};
  lc_tensor *w[4] = {from(2, swih, LC_FLOAT64, wih), from(2, swhh, LC_FLOAT64, whh),
                     from(1, &sb, LC_FLOAT64, bih), from(1, &sb, LC_FLOAT64, bhh)};
  lc_tensor *xt = from(3, sx, LC_FLOAT64, x), *ht = from(3, sh, LC_FLOAT64, h0), *out = NULL,
            *hn = NULL;
  CHECK_OK(lc_rnn(LC_GRU, xt, ht, NULL, 4, w, NULL, &out, &hn, NULL));
  double *ov = out ? test_values(out) : NULL;
  /* the cell, step by step, from h0 */
  lc_tensor *h = from(2, sh1, LC_FLOAT64, h0);
  for (int t = 0; t < T && ov; t++) {
    lc_tensor *xs = from(2, sx1, LC_FLOAT64, x + t * B * I), *h1 = NULL;
    CHECK_OK(lc_rnn_cell(LC_GRU, xs, h, NULL, w[0], w[1], w[2], w[3], NULL, &h1, NULL));
    double *hv = h1 ? test_values(h1) : NULL, *hp = test_values(h);
    /* the formula, by hand */
    for (int b = 0; b < B && hv; b++)
      for (int j = 0; j < H; j++) {
        double a[3], hh[3];
        for (int q = 0; q < 3; q++) {
          int r = q * H + j;
          a[q] = bih[r], hh[q] = bhh[r];
          for (int k = 0; k < I; k++)
            a[q] += wih[r * I + k] * x[(t * B + b) * I + k];
          for (int k = 0; k < H; k++)
            hh[q] += whh[r * H + k] * hp[b * H + k];
        }
        double rr = sigm(a[0] + hh[0]), z = sigm(a[1] + hh[1]), n = tanh(a[2] + rr * hh[2]);
        CHECK_NEAR(hv[b * H + j], (1 - z) * n + z * hp[b * H + j], 1e-12);
        CHECK_NEAR(ov[(t * B + b) * H + j], hv[b * H + j], 1e-12);
      }
    free(hv), free(hp);
    lc_release(xs), lc_release(h);
    h = h1;
  }
  free(ov);
  lc_release(h);
  for (int k = 0; k < 4; k++)
    lc_release(w[k]);
  lc_release(xt), lc_release(ht), lc_release(out), lc_release(hn);
}

/* gradcheck: in = {x, h0, c0, weights...}; ctx: the configuration */
typedef struct cfg {
  lc_rnn_mode mode;
  int nw;
  lc_rnn_opts o;
} cfg;

static lc_status seq_fn(void *ctx, lc_tensor *const *in, lc_tensor **out) {
  const cfg *c = ctx;
  lc_tensor *y = NULL, *hn = NULL, *cn = NULL, *parts[3], *flat[3] = {0};
  lc_status st = lc_rnn(c->mode, in[0], in[1], c->mode == LC_LSTM ? in[2] : NULL, c->nw, in + 3,
                        &c->o, &y, &hn, &cn);
  if (st) return st;
  parts[0] = y, parts[1] = hn, parts[2] = cn;
  int n = cn ? 3 : 2;
  int64_t m1 = -1;
  for (int k = 0; k < n && !st; k++)
    st = lc_reshape(parts[k], 1, &m1, &flat[k]);
  if (!st) st = lc_cat(n, flat, 0, out);
  for (int k = 0; k < 3; k++)
    lc_release(parts[k]), lc_release(flat[k]);
  return st;
}

TEST(rnn_gradcheck_fused_recurrence_every_mode) {
  enum { T = 4, B = 3, I = 2, H = 3 };
  lc_manual_seed(21);
  int64_t lens[B] = {4, 1, 3}, nb = B;
  lc_tensor *lt = NULL;
  CHECK_OK(lc_from_data(1, &nb, LC_INT64, lens, &lt));
  const lc_rnn_mode modes[5] = {LC_RNN_TANH, LC_RNN_RELU, LC_LSTM, LC_GRU, LC_LSTM};
  for (int mi = 0; mi < 5; mi++) {
    lc_rnn_mode mode = modes[mi];
    bool proj = mi == 4;
    int G = mode == LC_LSTM ? 4 : mode == LC_GRU ? 3 : 1, L = 2, D = 2;
    int64_t P = proj ? 2 : H;
    cfg c = {.mode = mode,
             .o = {.num_layers = L,
                   .bidirectional = true,
                   .bias = true,
                   .proj_size = proj ? P : 0,
                   .lengths = lt,
                   .batch_first = mi == 1}};
    int per = 4 + (proj ? 1 : 0);
    c.nw = L * D * per;
    lc_tensor *in[3 + 2 * 2 * 5] = {0};
    int64_t sx[3] = {mi == 1 ? B : T, mi == 1 ? T : B, I}, sh[3] = {L * D, B, P},
            sc[3] = {L * D, B, H};
    in[0] = leaf(3, sx, 1), in[1] = leaf(3, sh, 0.5), in[2] = leaf(3, sc, 0.5);
    for (int l = 0; l < L; l++)
      for (int d = 0; d < D; d++) {
        lc_tensor **w = in + 3 + (l * D + d) * per;
        int64_t s0[2] = {G * H, l ? D * P : I}, s1[2] = {G * H, P}, s2 = G * H, s3[2] = {P, H};
        w[0] = leaf(2, s0, 0.5), w[1] = leaf(2, s1, 0.5);
        w[2] = leaf(1, &s2, 0.5), w[3] = leaf(1, &s2, 0.5);
        if (proj) w[4] = leaf(2, s3, 0.5);
      }
    char msg[256] = "";
    int ok = gradcheck(seq_fn, &c, 3 + c.nw, in, 1e-6, 1e-6, 1e-5, msg, sizeof msg);
    CHECK(ok || printf("mode %d: %s\n", mi, msg));
    for (int k = 0; k < 3 + c.nw; k++)
      lc_release(in[k]);
  }
  lc_release(lt);
}

TEST(rnn_errors_name_argument_and_shapes) {
  enum { T = 5, B = 3, I = 10, H = 20 };
  lc_tensor *w[8] = {0};
  for (int l = 0; l < 2; l++) {
    int64_t s0[2] = {4 * H, l ? H : I}, s1[2] = {4 * H, H}, s2 = 4 * H;
    CHECK_OK(lc_zeros(2, s0, LC_FLOAT32, &w[l * 4]));
    CHECK_OK(lc_zeros(2, s1, LC_FLOAT32, &w[l * 4 + 1]));
    CHECK_OK(lc_zeros(1, &s2, LC_FLOAT32, &w[l * 4 + 2]));
    CHECK_OK(lc_zeros(1, &s2, LC_FLOAT32, &w[l * 4 + 3]));
  }
  int64_t sx[3] = {T, B, I}, shb[3] = {1, B, H}, sx4[4] = {1, T, B, I}, sxf[3] = {T, B, 7};
  lc_tensor *x = NULL, *hb = NULL, *x4 = NULL, *xf = NULL, *out = NULL, *hn = NULL, *cn = NULL;
  CHECK_OK(lc_zeros(3, sx, LC_FLOAT32, &x));
  CHECK_OK(lc_zeros(3, shb, LC_FLOAT32, &hb));
  CHECK_OK(lc_zeros(4, sx4, LC_FLOAT32, &x4));
  CHECK_OK(lc_zeros(3, sxf, LC_FLOAT32, &xf));
  lc_rnn_opts o = {
      .num_layers = 2, .bias = true, .name = "nn.LSTM", .hx_arg = "argument 2 (hx[1])"};
  CHECK_STATUS(lc_rnn(LC_LSTM, x, hb, NULL, 8, w, &o, &out, &hn, &cn), LC_ESHAPE);
  CHECK(msg_has("nn.LSTM: argument 2 (hx[1]): expected shape {2, 3, 20}, got {1, 3, 20}") ||
        printf("%s\n", lc_last_error()));
  CHECK_STATUS(lc_rnn(LC_LSTM, x4, NULL, NULL, 8, w, &o, &out, &hn, &cn), LC_ESHAPE);
  CHECK(msg_has("argument 1 (input)") && msg_has("got 4-D"));
  CHECK_STATUS(lc_rnn(LC_LSTM, xf, NULL, NULL, 8, w, &o, &out, &hn, &cn), LC_ESHAPE);
  CHECK(msg_has("to be 10 (input_size), got 7"));
  CHECK_STATUS(lc_rnn(LC_LSTM, x, NULL, NULL, 7, w, &o, &out, &hn, &cn), LC_EARG);
  CHECK(msg_has("expected 8 weight tensors"));
  int64_t bad[3] = {5, 0, 2}, nb = 3, two = 2;
  lc_tensor *l = NULL, *l2 = NULL;
  CHECK_OK(lc_from_data(1, &nb, LC_INT64, bad, &l));
  CHECK_OK(lc_from_data(1, &two, LC_INT64, bad, &l2));
  o.lengths = l;
  CHECK_STATUS(lc_rnn(LC_LSTM, x, NULL, NULL, 8, w, &o, &out, &hn, &cn), LC_EARG);
  CHECK(msg_has("lengths") && msg_has("[1, 5]") && msg_has("got 0"));
  o.lengths = l2;
  CHECK_STATUS(lc_rnn(LC_LSTM, x, NULL, NULL, 8, w, &o, &out, &hn, &cn), LC_ESHAPE);
  CHECK(msg_has("expected shape {3}, got {2}"));
  CHECK(out == NULL && hn == NULL && cn == NULL);
  /* a weight of the wrong shape is named as PyTorch names the parameter */
  lc_tensor *bad_w = NULL, *keep = w[5];
  int64_t sbw[2] = {4 * H, H + 1};
  CHECK_OK(lc_zeros(2, sbw, LC_FLOAT32, &bad_w));
  w[5] = bad_w;
  o.lengths = NULL;
  CHECK_STATUS(lc_rnn(LC_LSTM, x, NULL, NULL, 8, w, &o, &out, &hn, &cn), LC_ESHAPE);
  CHECK(msg_has("weight_hh_l1: expected shape {80, 20}, got {80, 21}") ||
        printf("%s\n", lc_last_error()));
  w[5] = keep;
  lc_release(bad_w);
  /* and it still works */
  o.lengths = NULL;
  CHECK_OK(lc_rnn(LC_LSTM, x, NULL, NULL, 8, w, &o, &out, &hn, &cn));
  lc_release(out), lc_release(hn), lc_release(cn);
  lc_release(l), lc_release(l2), lc_release(x), lc_release(hb), lc_release(x4), lc_release(xf);
  for (int k = 0; k < 8; k++)
    lc_release(w[k]);
}
