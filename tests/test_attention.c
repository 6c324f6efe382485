/* test_attention.c - the fused scaled dot-product attention (include/lucid_attention.h):
 * values against a naive softmax(q k^T * scale + mask) v written here (bool, float and broadcast
 * masks, causal, L != S, Ev != E, strided inputs), fully hidden rows, gradients by gradcheck
 * (with masks, causal, dropout), dropout's reproducibility, errors, and that a 4096-long
 * sequence runs under a memory limit far below one L x S matrix.
 * Run alone with: make ctest-one T=tests/test_attention.c */
#include "gradcheck.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The naive attention over BH heads of contiguous float64 data; mask (L x S, NULL: none) is
 * shared by every head: bmask != 0 attends, or fmask is added. */
static void naive(int64_t BH, int64_t L, int64_t S, int64_t E, int64_t Ev, const double *q,
                  const double *k, const double *v, const uint8_t *bmask, const double *fmask,
                  bool causal, double scale, double *out) {
  double *w = malloc(sizeof(double) * (size_t)(S > 0 ? S : 1));
  for (int64_t h = 0; h < BH; h++)
    for (int64_t i = 0; i < L; i++) {
      double mx = -INFINITY;
      for (int64_t j = 0; j < S; j++) {
        double s = 0;
        for (int64_t e = 0; e < E; e++)
          s += q[(h * L + i) * E + e] * k[(h * S + j) * E + e];
        s *= scale;
        if (fmask) s += fmask[i * S + j];
        if ((bmask && !bmask[i * S + j]) || (causal && j > i)) s = -INFINITY;
        w[j] = s;
        if (s > mx) mx = s;
      }
      double sum = 0;
      for (int64_t j = 0; j < S; j++) {
        w[j] = mx == -INFINITY ? 0 : exp(w[j] - mx);
        sum += w[j];
      }
      for (int64_t c = 0; c < Ev; c++) {
        double acc = 0;
        for (int64_t j = 0; j < S; j++)
          acc += w[j] * v[(h * S + j) * Ev + c];
        out[(h * L + i) * Ev + c] = sum > 0 ? acc / sum : 0;
      }
    }
  free(w);
}

static lc_tensor *rnd(int nd, const int64_t *sh, lc_dtype dt) {
  lc_tensor *t = NULL;
  if (lc_randn(nd, sh, dt, &t)) return NULL;
  return t;
}

static double max_diff(const lc_tensor *t, const double *ref) {
  double *a = test_values(t), m = 0;
  for (int64_t i = 0; a && i < lc_numel(t); i++)
    m = fmax(m, fabs(a[i] - ref[i]));
  free(a);
  return m;
}

TEST(attention_values_against_naive) {
  lc_manual_seed(11);
  /* L, S, E, Ev around the 64-wide tiles */
  const int64_t cfg[][4] = {{5, 3, 4, 2}, {70, 130, 16, 24}, {129, 64, 8, 8}, {1, 1, 1, 1}};
  for (int c = 0; c < 4; c++) {
    const int64_t L = cfg[c][0], S = cfg[c][1], E = cfg[c][2], Ev = cfg[c][3], BH = 6;
    int64_t sq[4] = {2, 3, L, E}, sk[4] = {2, 3, S, E}, sv[4] = {2, 3, S, Ev}, sm[2] = {L, S};
    for (int dt = 0; dt < 2; dt++) {
      lc_dtype t = dt ? LC_FLOAT32 : LC_FLOAT64;
      double tol = dt ? 2e-5 : 1e-12;
      lc_tensor *q = rnd(4, sq, t), *k = rnd(4, sk, t), *v = rnd(4, sv, t);
      lc_tensor *fm = rnd(2, sm, t), *u = NULL, *bm = NULL;
      CHECK_OK(lc_rand(2, sm, LC_FLOAT64, &u));
      CHECK_OK(lc_binary_scalar(LC_GT, u, 0.3, false, &bm));
      double *qd = test_values(q), *kd = test_values(k), *vd = test_values(v);
      double *fd = test_values(fm), *bd = test_values(bm);
      uint8_t *b8 = malloc((size_t)(L * S));
      for (int64_t i = 0; i < L * S; i++)
        b8[i] = bd[i] != 0;
      double *ref = malloc(sizeof(double) * (size_t)(BH * L * Ev));
      for (int mode = 0; mode < 5; mode++) {
        lc_sdpa_opts o = {.is_causal = mode == 3, .has_scale = mode == 4, .scale = 0.37};
        const lc_tensor *mask = mode == 1 ? bm : (mode == 2 ? fm : NULL);
        lc_tensor *out = NULL;
        CHECK_OK(lc_scaled_dot_product_attention(q, k, v, mask, &o, &out));
        naive(BH, L, S, E, Ev, qd, kd, vd, mode == 1 ? b8 : NULL, mode == 2 ? fd : NULL, mode == 3,
              mode == 4 ? 0.37 : 1 / sqrt((double)E), ref);
        CHECK(out && lc_ndim(out) == 4 && lc_shape(out)[2] == L && lc_shape(out)[3] == Ev);
        if (out) {
          double d = max_diff(out, ref);
          if (!(d <= tol)) printf("  cfg %d dtype %d mode %d: max diff %g\n", c, dt, mode, d);
          CHECK(d <= tol);
        }
        lc_release(out);
      }
      free(qd), free(kd), free(vd), free(fd), free(bd), free(b8), free(ref);
      lc_release(q), lc_release(k), lc_release(v), lc_release(fm), lc_release(u), lc_release(bm);
    }
  }
}

TEST(attention_strided_inputs_and_3d) {
  lc_manual_seed(12);
  /* q given as a transposed view; 3-D (batch, L, E) inputs */
  int64_t sq[3] = {2, 6, 5}, sk[3] = {2, 7, 6}, sv[3] = {2, 7, 3};
  lc_tensor *qt = rnd(3, sq, LC_FLOAT64), *q = NULL, *qc = NULL, *k = rnd(3, sk, LC_FLOAT64);
  lc_tensor *v = rnd(3, sv, LC_FLOAT64), *a = NULL, *b = NULL;
  CHECK_OK(lc_transpose(qt, 1, 2, &q)); /* (2, 5, 6): L = 5, E = 6 */
  CHECK_OK(lc_contiguous(q, &qc));
  CHECK_OK(lc_scaled_dot_product_attention(q, k, v, NULL, NULL, &a));
  CHECK_OK(lc_scaled_dot_product_attention(qc, k, v, NULL, NULL, &b));
  bool eq = false;
  if (a && b) CHECK_OK(lc_equal(a, b, &eq));
  CHECK(eq);
  lc_release(qt), lc_release(q), lc_release(qc), lc_release(k), lc_release(v), lc_release(a),
      lc_release(b);
}

TEST(attention_fully_masked_row_is_zero_with_zero_grad) {
  lc_manual_seed(13);
  int64_t sq[3] = {1, 3, 4}, sm[2] = {3, 5}, sv[3] = {1, 5, 2};
  int64_t sk[3] = {1, 5, 4};
  lc_tensor *q = rnd(3, sq, LC_FLOAT64), *k = rnd(3, sk, LC_FLOAT64), *v = rnd(3, sv, LC_FLOAT64);
  uint8_t m[15] = {1, 1, 0, 0, 1, /* row 2 hidden */ 0, 0, 0, 0, 0, 0, 1, 0, 0, 0};
  lc_tensor *mask = NULL, *out = NULL, *g = NULL;
  CHECK_OK(lc_from_data(2, sm, LC_BOOL, m, &mask));
  lc_set_requires_grad(q, true);
  CHECK_OK(lc_scaled_dot_product_attention(q, k, v, mask, NULL, &out));
  double *o = out ? test_values(out) : NULL;
  CHECK(o && o[2] == 0 && o[3] == 0 && isfinite(o[0]) && isfinite(o[4]));
  lc_tensor *ones = NULL;
  CHECK_OK(lc_ones(3, (int64_t[]){1, 3, 2}, LC_FLOAT64, &ones));
  lc_tensor *outs[1] = {out}, *gos[1] = {ones}, *ins[1] = {q};
  CHECK_OK(lc_autograd_grad(1, outs, gos, 1, ins, false, false, &g));
  double *gd = g ? test_values(g) : NULL;
  bool ok = gd != NULL;
  for (int i = 0; gd && i < 12; i++)
    ok = ok && isfinite(gd[i]) && (i / 4 != 1 || gd[i] == 0);
  CHECK(ok);
  free(o), free(gd);
  lc_release(q), lc_release(k), lc_release(v), lc_release(mask), lc_release(out), lc_release(g),
      lc_release(ones);
}

typedef struct gc_ctx {
  const lc_tensor *mask;
  lc_sdpa_opts o;
  uint64_t seed;
} gc_ctx;

static lc_status gc_fn(void *vctx, lc_tensor *const *in, lc_tensor **out) {
  gc_ctx *c = vctx;
  if (c->o.dropout_p > 0) lc_manual_seed(c->seed); /* the same mask at every evaluation */
  return lc_scaled_dot_product_attention(in[0], in[1], in[2], c->mask, &c->o, out);
}

TEST(attention_gradcheck) {
  lc_manual_seed(14);
  int64_t sq[4] = {1, 2, 5, 3}, sk[4] = {1, 2, 7, 3}, sv[4] = {1, 2, 7, 4}, sm[4] = {1, 1, 5, 7};
  lc_tensor *fm = rnd(4, sm, LC_FLOAT64), *u = NULL, *bm = NULL;
  CHECK_OK(lc_rand(4, sm, LC_FLOAT64, &u));
  CHECK_OK(lc_binary_scalar(LC_GT, u, 0.25, false, &bm));
  for (int mode = 0; mode < 5; mode++) {
    lc_tensor *ins[3] = {rnd(4, sq, LC_FLOAT64), rnd(4, sk, LC_FLOAT64), rnd(4, sv, LC_FLOAT64)};
    for (int i = 0; i < 3; i++)
      lc_set_requires_grad(ins[i], true);
    gc_ctx c = {.mask = mode == 1 ? bm : (mode == 2 ? fm : NULL),
                .o = {.is_causal = mode == 3, .dropout_p = mode == 4 ? 0.3 : 0},
                .seed = 99};
    char msg[256] = "";
    int ok = gradcheck(gc_fn, &c, 3, ins, 1e-6, 1e-7, 1e-5, msg, sizeof msg);
    if (!ok) printf("  mode %d: %s\n", mode, msg);
    CHECK(ok);
    for (int i = 0; i < 3; i++)
      lc_release(ins[i]);
  }
  lc_release(fm), lc_release(u), lc_release(bm);
}

TEST(attention_dropout_reproducible) {
  lc_manual_seed(15);
  int64_t sh[3] = {2, 40, 8};
  lc_tensor *q = rnd(3, sh, LC_FLOAT32), *a = NULL, *b = NULL, *c = NULL;
  lc_sdpa_opts o = {.dropout_p = 0.5};
  lc_manual_seed(7);
  CHECK_OK(lc_scaled_dot_product_attention(q, q, q, NULL, &o, &a));
  CHECK_OK(lc_scaled_dot_product_attention(q, q, q, NULL, &o, &c));
  lc_manual_seed(7);
  CHECK_OK(lc_scaled_dot_product_attention(q, q, q, NULL, &o, &b));
  bool eq = false, eq2 = true;
  if (a && b) CHECK_OK(lc_equal(a, b, &eq));
  if (a && c) CHECK_OK(lc_equal(a, c, &eq2));
  CHECK(eq);
  CHECK(!eq2);
  lc_release(q), lc_release(a), lc_release(b), lc_release(c);
}

TEST(attention_errors) {
  int64_t s4[4] = {2, 3, 4, 5}, s1[1] = {5}, sE[4] = {2, 3, 4, 6}, sS[4] = {2, 3, 6, 5};
  int64_t sb[4] = {2, 2, 4, 5}, sm[2] = {3, 4};
  lc_tensor *q = rnd(4, s4, LC_FLOAT32), *r1 = rnd(1, s1, LC_FLOAT32), *kE = rnd(4, sE, LC_FLOAT32);
  lc_tensor *vS = rnd(4, sS, LC_FLOAT32), *kb = rnd(4, sb, LC_FLOAT32), *m = rnd(2, sm, LC_FLOAT32);
  lc_tensor *q64 = rnd(4, s4, LC_FLOAT64), *qi = NULL, *out = NULL;
  CHECK_OK(lc_zeros(4, s4, LC_INT64, &qi));
  CHECK_STATUS(lc_scaled_dot_product_attention(NULL, q, q, NULL, NULL, &out), LC_EARG);
  CHECK_STATUS(lc_scaled_dot_product_attention(q, q, q, NULL, NULL, NULL), LC_EARG);
  CHECK_STATUS(lc_scaled_dot_product_attention(r1, q, q, NULL, NULL, &out), LC_ESHAPE);
  CHECK_STATUS(lc_scaled_dot_product_attention(q, kE, q, NULL, NULL, &out), LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "key") && strstr(lc_last_error(), "E = 5"));
  CHECK_STATUS(lc_scaled_dot_product_attention(q, q, vS, NULL, NULL, &out), LC_ESHAPE);
  CHECK_STATUS(lc_scaled_dot_product_attention(q, kb, kb, NULL, NULL, &out), LC_ESHAPE);
  CHECK_STATUS(lc_scaled_dot_product_attention(q, q, q, m, NULL, &out), LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "attn_mask") != NULL);
  CHECK_STATUS(lc_scaled_dot_product_attention(qi, qi, qi, NULL, NULL, &out), LC_EDTYPE);
  CHECK_STATUS(lc_scaled_dot_product_attention(q, q64, q, NULL, NULL, &out), LC_EDTYPE);
  lc_sdpa_opts o = {.dropout_p = 1.0};
  CHECK_STATUS(lc_scaled_dot_product_attention(q, q, q, NULL, &o, &out), LC_EARG);
  o.dropout_p = -0.1;
  CHECK_STATUS(lc_scaled_dot_product_attention(q, q, q, NULL, &o, &out), LC_EARG);
  lc_sdpa_opts oc = {.is_causal = true};
  lc_tensor *bm = NULL;
  CHECK_OK(lc_ones(2, (int64_t[]){4, 4}, LC_BOOL, &bm));
  CHECK_STATUS(lc_scaled_dot_product_attention(q, q, q, bm, &oc, &out), LC_EARG);
  /* the float mask must have the query's dtype */
  lc_tensor *m64 = NULL;
  CHECK_OK(lc_zeros(2, (int64_t[]){4, 4}, LC_FLOAT64, &m64));
  CHECK_STATUS(lc_scaled_dot_product_attention(q, q, q, m64, NULL, &out), LC_EDTYPE);
  CHECK(out == NULL);
  /* create_graph: not with dropout */
  lc_tensor *x = rnd(4, s4, LC_FLOAT64), *y = NULL, *g = NULL;
  lc_set_requires_grad(x, true);
  lc_sdpa_opts od = {.dropout_p = 0.25};
  CHECK_OK(lc_scaled_dot_product_attention(x, x, x, NULL, &od, &y));
  lc_tensor *ones = NULL;
  CHECK_OK(lc_ones(4, s4, LC_FLOAT64, &ones));
  lc_tensor *outs[1] = {y}, *gos[1] = {ones}, *ins[1] = {x};
  lc_status st = lc_autograd_grad_ex(1, outs, gos, 1, ins, LC_CREATE_GRAPH, &g);
  CHECK(st == LC_EGRAD && strstr(lc_last_error(), "ScaledDotProductAttention"));
  lc_release(g);
  lc_release(q), lc_release(r1), lc_release(kE), lc_release(vS), lc_release(kb), lc_release(m),
      lc_release(q64), lc_release(qi), lc_release(bm), lc_release(m64), lc_release(x),
      lc_release(y), lc_release(ones);
}

TEST(attention_empty) {
  int64_t sq[3] = {2, 0, 4}, sk[3] = {2, 3, 4}, sv[3] = {2, 3, 5}, sk0[3] = {2, 0, 4};
  int64_t sv0[3] = {2, 0, 5}, sq1[3] = {2, 2, 4};
  lc_tensor *q = NULL, *k = rnd(3, sk, LC_FLOAT32), *v = rnd(3, sv, LC_FLOAT32), *o = NULL;
  CHECK_OK(lc_zeros(3, sq, LC_FLOAT32, &q));
  CHECK_OK(lc_scaled_dot_product_attention(q, k, v, NULL, NULL, &o));
  CHECK(o && lc_numel(o) == 0 && lc_shape(o)[2] == 5);
  lc_release(o), o = NULL;
  /* no keys: every row hidden, output 0 */
  lc_tensor *q1 = rnd(3, sq1, LC_FLOAT32), *k0 = NULL, *v0 = NULL;
  CHECK_OK(lc_zeros(3, sk0, LC_FLOAT32, &k0));
  CHECK_OK(lc_zeros(3, sv0, LC_FLOAT32, &v0));
  CHECK_OK(lc_scaled_dot_product_attention(q1, k0, v0, NULL, NULL, &o));
  double *od = o ? test_values(o) : NULL;
  bool zero = od != NULL;
  for (int i = 0; od && i < 20; i++)
    zero = zero && od[i] == 0;
  CHECK(zero);
  free(od);
  lc_release(q), lc_release(k), lc_release(v), lc_release(o), lc_release(q1), lc_release(k0),
      lc_release(v0);
}

/* L = S = 4096, E = 64, one head: one L x S float32 matrix is 64 MB. Forward and backward run
 * with a memory limit of what is in use plus 16 MB, so nothing of size L x S can be allocated
 * as a storage (the kernels' scratch is a few tiles per thread). */
TEST(attention_long_sequence_memory) {
  lc_manual_seed(16);
  int64_t sh[3] = {1, 4096, 64};
  lc_tensor *q = rnd(3, sh, LC_FLOAT32), *k = rnd(3, sh, LC_FLOAT32), *v = rnd(3, sh, LC_FLOAT32);
  lc_tensor *g = rnd(3, sh, LC_FLOAT32), *o = NULL;
  lc_set_requires_grad(q, true), lc_set_requires_grad(k, true), lc_set_requires_grad(v, true);
  int64_t before = lc_bytes_in_use();
  CHECK_OK(lc_set_memory_limit(before + (16 << 20)));
  lc_sdpa_opts oc = {.is_causal = true};
  CHECK_OK(lc_scaled_dot_product_attention(q, k, v, NULL, &oc, &o));
  if (o) CHECK_OK(lc_backward(o, g, false));
  CHECK(lc_bytes_in_use() - before < (16 << 20));
  CHECK_OK(lc_set_memory_limit(0));
  lc_tensor *gq = lc_grad(q);
  double *gv = gq ? test_values(gq) : NULL;
  bool fin = gv != NULL;
  for (int64_t i = 0; gv && i < 4096 * 64; i += 997)
    fin = fin && isfinite(gv[i]);
  CHECK(fin);
  free(gv);
  lc_release(q), lc_release(k), lc_release(v), lc_release(g), lc_release(o);
}

/* One head with many tiles takes the split backward ((head, key tile) then (head, query tile))
 * when there are more threads than heads; two heads take the one-pass backward. The gradients
 * of head 0 agree either way. */
TEST(attention_split_backward_matches_one_pass) {
  lc_manual_seed(17);
  int64_t sq[3] = {2, 300, 16}, sk[3] = {2, 260, 16}, sv[3] = {2, 260, 8};
  for (int causal = 0; causal < 2; causal++) {
    lc_tensor *q2 = rnd(3, sq, LC_FLOAT64), *k2 = rnd(3, sk, LC_FLOAT64);
    lc_tensor *v2 = rnd(3, sv, LC_FLOAT64), *q1 = NULL, *k1 = NULL, *v1 = NULL;
    CHECK_OK(lc_narrow(q2, 0, 0, 1, &q1));
    CHECK_OK(lc_narrow(k2, 0, 0, 1, &k1));
    CHECK_OK(lc_narrow(v2, 0, 0, 1, &v1));
    lc_tensor *in2[3] = {q2, k2, v2}, *in1[3] = {q1, k1, v1};
    lc_tensor *g2[3] = {NULL}, *g1[3] = {NULL}, *o2 = NULL, *o1 = NULL, *w2 = NULL, *w1 = NULL;
    for (int i = 0; i < 3; i++)
      lc_set_requires_grad(in2[i], true);
    lc_sdpa_opts o = {.is_causal = causal == 1};
    CHECK_OK(lc_scaled_dot_product_attention(q2, k2, v2, NULL, &o, &o2));
    int64_t so[3] = {2, 300, 8};
    w2 = rnd(3, so, LC_FLOAT64);
    CHECK_OK(lc_narrow(w2, 0, 0, 1, &w1));
    CHECK_OK(lc_autograd_grad(1, &o2, &w2, 3, in2, false, false, g2));
    /* the single head: its own leaves */
    lc_tensor *c1[3] = {NULL};
    for (int i = 0; i < 3; i++) {
      CHECK_OK(lc_contiguous(in1[i], &c1[i]));
      lc_tensor *d = NULL;
      CHECK_OK(lc_detach(c1[i], &d));
      lc_release(c1[i]);
      c1[i] = d;
      lc_set_requires_grad(c1[i], true);
    }
    CHECK_OK(lc_scaled_dot_product_attention(c1[0], c1[1], c1[2], NULL, &o, &o1));
    CHECK_OK(lc_autograd_grad(1, &o1, &w1, 3, c1, false, false, g1));
    for (int i = 0; i < 3; i++) {
      lc_tensor *h0 = NULL;
      if (g2[i]) CHECK_OK(lc_narrow(g2[i], 0, 0, 1, &h0));
      double *a = h0 ? test_values(h0) : NULL, *b = g1[i] ? test_values(g1[i]) : NULL, m = 0;
      for (int64_t e = 0; a && b && e < lc_numel(g1[i]); e++)
        m = fmax(m, fabs(a[e] - b[e]));
      CHECK(a && b && m < 1e-12);
      free(a), free(b);
      lc_release(h0), lc_release(g2[i]), lc_release(g1[i]), lc_release(c1[i]);
      lc_release(in1[i]), lc_release(in2[i]);
    }
    lc_release(o2), lc_release(o1), lc_release(w2), lc_release(w1);
  }
}
