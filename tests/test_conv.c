/* test_conv.c - convolution, pooling, padding (include/lucid_conv.h): results against direct
 * loop references computed here, gradients numerically (float64), thread-count independence,
 * module kinds (shapes, init, printing, forward errors) and option errors.
 * Run alone with: make ctest-one T="tests/test_conv.c tests/gradcheck.c" */
#include "lucid_conv.h"

#include "gradcheck.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

static lc_tensor *randn(int nd, const int64_t *shape, lc_dtype dt, bool grad) {
  lc_tensor *t = NULL;
  if (lc_randn(nd, shape, dt, &t)) return NULL;
  if (grad) lc_set_requires_grad(t, true);
  return t;
}

static double at(const double *v, const int64_t *shape, int nd, const int64_t *idx) {
  int64_t off = 0;
  for (int d = 0; d < nd; d++)
    off = off * shape[d] + idx[d];
  return v[off];
}

/* Direct 2-d (transposed) convolution in double: the reference. Output shape in oshape. */
static double *ref_conv2d(const lc_tensor *x, const lc_tensor *w, const lc_tensor *b,
                          const lc_conv_opts *o, bool transposed, int64_t *oshape) {
  double *xv = test_values(x), *wv = test_values(w), *bv = b ? test_values(b) : NULL;
  const int64_t *xs = lc_shape(x), *ws = lc_shape(w);
  int64_t N = xs[0], C = xs[1], H = xs[2], W = xs[3], G = o->groups, kh = ws[2], kw = ws[3];
  int64_t O = transposed ? ws[1] * G : ws[0], Cg = C / G, Og = O / G;
  int64_t OH, OW;
  if (!transposed) {
    OH = (H + 2 * o->padding[0] - o->dilation[0] * (kh - 1) - 1) / o->stride[0] + 1;
    OW = (W + 2 * o->padding[1] - o->dilation[1] * (kw - 1) - 1) / o->stride[1] + 1;
  } else {
    OH = (H - 1) * o->stride[0] - 2 * o->padding[0] + o->dilation[0] * (kh - 1) + o->output_padding[0] + 1;
    OW = (W - 1) * o->stride[1] - 2 * o->padding[1] + o->dilation[1] * (kw - 1) + o->output_padding[1] + 1;
  }
  oshape[0] = N, oshape[1] = O, oshape[2] = OH, oshape[3] = OW;
  double *y = calloc((size_t)(N * O * OH * OW), sizeof(double));
  for (int64_t n = 0; n < N; n++)
    for (int64_t g = 0; g < G; g++)
      for (int64_t c = 0; c < Cg; c++)
        for (int64_t oc = 0; oc < Og; oc++)
          for (int64_t i = 0; i < kh; i++)
            for (int64_t j = 0; j < kw; j++) {
              int64_t wi[4] = {transposed ? g * Cg + c : g * Og + oc, transposed ? oc : c, i, j};
              double wval = at(wv, ws, 4, wi);
              /* conv: y[oh] += x[oh*s - p + i*d]; transposed: y[h*s - p + i*d] += x[h] */
              int64_t A = transposed ? H : OH, B = transposed ? W : OW;
              for (int64_t p = 0; p < A; p++)
                for (int64_t q = 0; q < B; q++) {
                  int64_t r = p * o->stride[0] - o->padding[0] + i * o->dilation[0];
                  int64_t s = q * o->stride[1] - o->padding[1] + j * o->dilation[1];
                  int64_t lim_r = transposed ? OH : H, lim_s = transposed ? OW : W;
                  if (r < 0 || r >= lim_r || s < 0 || s >= lim_s) continue;
                  if (!transposed) {
                    int64_t xi[4] = {n, g * Cg + c, r, s};
                    y[((n * O + g * Og + oc) * OH + p) * OW + q] += wval * at(xv, xs, 4, xi);
                  } else {
                    int64_t xi[4] = {n, g * Cg + c, p, q};
                    y[((n * O + g * Og + oc) * OH + r) * OW + s] += wval * at(xv, xs, 4, xi);
                  }
                }
            }
  if (bv)
    for (int64_t n = 0; n < N; n++)
      for (int64_t oc = 0; oc < O; oc++)
        for (int64_t k = 0; k < OH * OW; k++)
          y[(n * O + oc) * OH * OW + k] += bv[oc];
  free(xv);
  free(wv);
  free(bv);
  return y;
}

typedef struct ccase {
  int64_t x[4], w[4];
  int64_t stride[2], pad[2], dil[2], opad[2], groups;
  bool transposed, bias;
} ccase;

static const ccase cases[] = {
    {{2, 3, 7, 6}, {4, 3, 3, 3}, {1, 1}, {1, 1}, {1, 1}, {0, 0}, 1, false, true},
    {{1, 2, 5, 8}, {3, 2, 2, 3}, {3, 4}, {0, 1}, {1, 1}, {0, 0}, 1, false, true},  /* stride > k */
    {{2, 4, 9, 9}, {4, 1, 3, 3}, {1, 1}, {2, 2}, {2, 2}, {0, 0}, 4, false, false}, /* depthwise,
                                                                                      dilation */
    {{2, 6, 7, 8}, {6, 1, 3, 3}, {2, 2}, {1, 1}, {1, 1}, {0, 0}, 6, false, true},  /* depthwise,
                                                                                      stride 2 */
    {{1, 3, 5, 9}, {3, 1, 3, 2}, {1, 3}, {1, 0}, {1, 2}, {0, 0}, 3, false, true},  /* depthwise,
                                                                                      mixed */
    {{2, 5, 6, 7}, {5, 1, 3, 3}, {1, 1}, {1, 1}, {1, 1}, {0, 0}, 5, false, true},  /* depthwise 3x3
                                                                                    */
    {{1, 3, 5, 5}, {3, 1, 3, 3}, {1, 1}, {0, 0}, {1, 1}, {0, 0}, 3, false, true},  /* 3x3, no pad */
    {{1, 2, 4, 2}, {2, 1, 3, 3}, {1, 1}, {1, 2}, {1, 1}, {0, 0}, 2, false, false}, /* 3x3, narrow */
    {{3, 4, 6, 5}, {6, 2, 1, 1}, {1, 1}, {0, 0}, {1, 1}, {0, 0}, 2, false, true},  /* 1x1, groups */
    {{2, 3, 1, 1}, {5, 3, 1, 1}, {1, 1}, {0, 0}, {1, 1}, {0, 0}, 1, false, true},  /* 1x1 map */
    {{2, 4, 4, 5}, {4, 3, 3, 2}, {2, 2}, {1, 0}, {1, 1}, {1, 0}, 1, true, true},   /* transposed */
    {{1, 4, 3, 3}, {4, 1, 2, 2}, {1, 2}, {0, 1}, {2, 1}, {0, 1}, 2, true, false},  /* grouped */
    {{2, 2, 4, 4}, {2, 3, 1, 1}, {1, 1}, {0, 0}, {1, 1}, {0, 0}, 1, true, true},   /* 1x1 */
};

static lc_conv_opts case_opts(const ccase *c) {
  lc_conv_opts o;
  lc_conv_opts_init(&o);
  for (int k = 0; k < 2; k++) {
    o.stride[k] = c->stride[k], o.padding[k] = c->pad[k], o.dilation[k] = c->dil[k];
    o.output_padding[k] = c->opad[k];
  }
  o.groups = c->groups;
  return o;
}

static lc_status run_case(const ccase *c, lc_tensor *x, lc_tensor *w, lc_tensor *b, lc_tensor **y) {
  lc_conv_opts o = case_opts(c);
  return c->transposed ? lc_conv_transpose2d(x, w, b, &o, y) : lc_conv2d(x, w, b, &o, y);
}

TEST(conv2d_matches_direct_loops) {
  lc_manual_seed(1);
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    const ccase *c = &cases[k];
    for (int dti = 0; dti < 2; dti++) {
      lc_dtype dt = dti ? LC_FLOAT64 : LC_FLOAT32;
      int64_t bshape[1] = {c->transposed ? c->w[1] * c->groups : c->w[0]};
      lc_tensor *x = randn(4, c->x, dt, false), *w = randn(4, c->w, dt, false);
      lc_tensor *b = c->bias ? randn(1, bshape, dt, false) : NULL, *y = NULL;
      CHECK_OK(run_case(c, x, w, b, &y));
      if (y) {
        lc_conv_opts o = case_opts(c);
        int64_t rs[4];
        double *ref = ref_conv2d(x, w, b, &o, c->transposed, rs), *got = test_values(y);
        CHECK(lc_ndim(y) == 4);
        for (int d = 0; d < 4; d++)
          CHECK(lc_shape(y)[d] == rs[d]);
        double worst = 0;
        for (int64_t i = 0; i < lc_numel(y); i++)
          worst = fmax(worst, fabs(got[i] - ref[i]));
        CHECK_NEAR(worst, 0, dt == LC_FLOAT32 ? 1e-4 : 1e-10);
        free(ref);
        free(got);
      }
      lc_release(x), lc_release(w), lc_release(b), lc_release(y);
    }
  }
}

static lc_status case_fn(void *ctx, lc_tensor *const *in, lc_tensor **out) {
  const ccase *c = ctx;
  return run_case(c, in[0], in[1], c->bias ? in[2] : NULL, out);
}

TEST(conv2d_gradcheck) {
  lc_manual_seed(2);
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    const ccase *c = &cases[k];
    int64_t bshape[1] = {c->transposed ? c->w[1] * c->groups : c->w[0]};
    lc_tensor *ins[3] = {randn(4, c->x, LC_FLOAT64, true), randn(4, c->w, LC_FLOAT64, true),
                         c->bias ? randn(1, bshape, LC_FLOAT64, true) : NULL};
    char msg[256];
    int ok = gradcheck(case_fn, (void *)c, c->bias ? 3 : 2, ins, 1e-6, 1e-7, 1e-5, msg, sizeof msg);
    if (!ok) printf("  case %zu: %s\n", k, msg);
    CHECK(ok);
    for (int i = 0; i < 3; i++)
      lc_release(ins[i]);
  }
}

typedef struct c1case {
  int64_t stride, pad, dil, groups;
  bool same;
  lc_pad_mode mode;
} c1case;

static lc_status conv1d_fn(void *ctx, lc_tensor *const *in, lc_tensor **out) {
  const c1case *c = ctx;
  lc_conv_opts o;
  lc_conv_opts_init(&o);
  o.stride[0] = c->stride, o.padding[0] = c->pad, o.dilation[0] = c->dil, o.groups = c->groups;
  o.same = c->same, o.padding_mode = c->mode;
  return lc_conv1d(in[0], in[1], in[2], &o, out);
}

TEST(conv1d_same_and_padding_modes_gradcheck) {
  lc_manual_seed(3);
  const c1case cs[] = {{1, 0, 1, 1, true, LC_PAD_CONSTANT},  {1, 0, 2, 1, true, LC_PAD_CONSTANT},
                       {2, 2, 1, 2, false, LC_PAD_REFLECT}, {1, 1, 2, 1, false, LC_PAD_REPLICATE},
                       {1, 2, 1, 1, false, LC_PAD_CIRCULAR}, {1, 0, 1, 2, true, LC_PAD_REFLECT}};
  int64_t xs[3] = {2, 4, 7}, bs[1] = {6};
  for (size_t k = 0; k < sizeof cs / sizeof *cs; k++) {
    int64_t ws[3] = {6, 4 / cs[k].groups, k == 1 ? 3 : 4}; /* even kernels: asymmetric same */
    lc_tensor *ins[3] = {randn(3, xs, LC_FLOAT64, true), randn(3, ws, LC_FLOAT64, true),
                         randn(1, bs, LC_FLOAT64, true)};
    lc_tensor *y = NULL;
    CHECK_OK(conv1d_fn((void *)&cs[k], ins, &y));
    if (y && cs[k].same) CHECK(lc_shape(y)[2] == 7);
    lc_release(y);
    char msg[256];
    int ok = gradcheck(conv1d_fn, (void *)&cs[k], 3, ins, 1e-6, 1e-7, 1e-5, msg, sizeof msg);
    if (!ok) printf("  case %zu: %s\n", k, msg);
    CHECK(ok);
    for (int i = 0; i < 3; i++)
      lc_release(ins[i]);
  }
}

TEST(conv1d_equals_conv2d_with_height_1) {
  lc_manual_seed(4);
  int64_t xs[3] = {3, 2, 9}, ws[3] = {4, 2, 3};
  lc_tensor *x = randn(3, xs, LC_FLOAT32, false), *w = randn(3, ws, LC_FLOAT32, false);
  lc_conv_opts o;
  lc_conv_opts_init(&o);
  o.stride[0] = 2, o.padding[0] = 1;
  lc_tensor *y1 = NULL, *x4 = NULL, *w4 = NULL, *y2 = NULL;
  CHECK_OK(lc_conv1d(x, w, NULL, &o, &y1));
  CHECK_OK(lc_unsqueeze(x, 2, &x4));
  CHECK_OK(lc_unsqueeze(w, 2, &w4));
  lc_conv_opts o2 = o;
  o2.stride[0] = 1, o2.stride[1] = 2, o2.padding[0] = 0, o2.padding[1] = 1;
  CHECK_OK(lc_conv2d(x4, w4, NULL, &o2, &y2));
  if (y1 && y2) {
    double *a = test_values(y1), *b = test_values(y2);
    CHECK(lc_numel(y1) == lc_numel(y2) && lc_ndim(y1) == 3);
    for (int64_t i = 0; i < lc_numel(y1); i++)
      CHECK_NEAR(a[i], b[i], 1e-6);
    free(a), free(b);
  }
  lc_release(x), lc_release(w), lc_release(y1), lc_release(x4), lc_release(w4), lc_release(y2);
}

TEST(conv2d_unbatched_and_noncontiguous_input) {
  lc_manual_seed(5);
  int64_t xs[4] = {1, 3, 6, 6}, ws[4] = {2, 3, 3, 3};
  lc_tensor *x = randn(4, xs, LC_FLOAT32, false), *w = randn(4, ws, LC_FLOAT32, false);
  lc_tensor *x3 = NULL, *xt = NULL, *xtt = NULL, *y = NULL, *y3 = NULL, *yt = NULL;
  CHECK_OK(lc_squeeze_dim(x, 0, &x3));
  CHECK_OK(lc_conv2d(x, w, NULL, NULL, &y));
  CHECK_OK(lc_conv2d(x3, w, NULL, NULL, &y3));
  if (y3) CHECK(lc_ndim(y3) == 3 && lc_shape(y3)[0] == 2 && lc_shape(y3)[1] == 4);
  /* a transposed view transposed back: same values, non-contiguous strides */
  CHECK_OK(lc_transpose(x, 2, 3, &xt));
  CHECK_OK(lc_contiguous(xt, &xtt));
  lc_release(xt), xt = NULL;
  CHECK_OK(lc_transpose(xtt, 2, 3, &xt));
  if (xt) CHECK(!lc_is_contiguous(xt));
  CHECK_OK(lc_conv2d(xt, w, NULL, NULL, &yt));
  bool eq = false;
  if (y && yt) CHECK_OK(lc_allclose(y, yt, 1e-6, 1e-6, &eq));
  CHECK(eq);
  lc_release(x), lc_release(w), lc_release(x3), lc_release(xt), lc_release(xtt);
  lc_release(y), lc_release(y3), lc_release(yt);
}

/* Gradients summed over the batch do not depend on how it is split over threads. */
TEST(conv2d_same_result_with_one_or_two_threads) {
  lc_manual_seed(6);
  int64_t xs[4] = {5, 3, 12, 12}, ws[4] = {8, 3, 3, 3}, bs[1] = {8};
  lc_tensor *x = randn(4, xs, LC_FLOAT64, true), *w = randn(4, ws, LC_FLOAT64, true);
  lc_tensor *b = randn(1, bs, LC_FLOAT64, true);
  int prev = lc_get_num_threads();
  lc_tensor *gx[2] = {NULL, NULL}, *gw[2] = {NULL, NULL}, *ys[2] = {NULL, NULL};
  for (int r = 0; r < 2; r++) {
    lc_set_num_threads(r == 0 ? 1 : 2);
    lc_conv_opts o;
    lc_conv_opts_init(&o);
    o.padding[0] = o.padding[1] = 1;
    lc_tensor *y = NULL, *s = NULL;
    CHECK_OK(lc_conv2d(x, w, b, &o, &y));
    lc_reduce_opts ro = {0};
    if (y) CHECK_OK(lc_reduce(LC_SUM, y, &ro, &s));
    lc_tensor *ins[2] = {x, w}, *grads[2] = {NULL, NULL};
    if (s) CHECK_OK(lc_autograd_grad(1, &s, NULL, 2, ins, false, false, grads));
    gx[r] = grads[0], gw[r] = grads[1], ys[r] = y;
    lc_release(s);
  }
  lc_set_num_threads(prev);
  bool e1 = false, e2 = false, e3 = false;
  if (ys[0] && ys[1]) CHECK_OK(lc_allclose(ys[0], ys[1], 1e-12, 1e-12, &e1));
  if (gx[0] && gx[1]) CHECK_OK(lc_allclose(gx[0], gx[1], 1e-12, 1e-12, &e2));
  if (gw[0] && gw[1]) CHECK_OK(lc_allclose(gw[0], gw[1], 1e-10, 1e-10, &e3));
  CHECK(e1 && e2 && e3);
  for (int r = 0; r < 2; r++)
    lc_release(gx[r]), lc_release(gw[r]), lc_release(ys[r]);
  lc_release(x), lc_release(w), lc_release(b);
  lc_conv_empty_cache(); /* idle workspaces freed; the next call grows them again */
  int64_t s2[4] = {2, 3, 12, 12};
  lc_tensor *x2 = randn(4, s2, LC_FLOAT32, false), *w2 = NULL, *y2 = NULL;
  CHECK_OK(lc_randn(4, ws, LC_FLOAT32, &w2));
  CHECK_OK(lc_conv2d(x2, w2, NULL, NULL, &y2));
  lc_release(x2), lc_release(w2), lc_release(y2);
}

TEST(conv_errors_name_the_problem) {
  int64_t xs[4] = {1, 4, 8, 8}, ws[4] = {2, 3, 3, 3}, small[4] = {1, 3, 2, 2};
  lc_tensor *x = NULL, *w = NULL, *xs2 = NULL, *y = NULL;
  CHECK_OK(lc_zeros(4, xs, LC_FLOAT32, &x));
  CHECK_OK(lc_zeros(4, ws, LC_FLOAT32, &w));
  CHECK_OK(lc_zeros(4, small, LC_FLOAT32, &xs2));
  CHECK_STATUS(lc_conv2d(x, w, NULL, NULL, &y), LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "conv2d: expected input with 3 channels") != NULL);
  CHECK(strstr(lc_last_error(), "got 4: input shape {1, 4, 8, 8}") != NULL);
  CHECK_STATUS(lc_conv2d(xs2, w, NULL, NULL, &y), LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "larger than the padded input") != NULL);
  lc_conv_opts o;
  lc_conv_opts_init(&o);
  o.stride[1] = 0;
  CHECK_STATUS(lc_conv2d(xs2, w, NULL, &o, &y), LC_EARG);
  CHECK(strstr(lc_last_error(), "conv2d: stride must be >= 1, got 0") != NULL);
  lc_conv_opts_init(&o);
  o.groups = 3;
  CHECK_STATUS(lc_conv2d(x, w, NULL, &o, &y), LC_EARG);
  CHECK(strstr(lc_last_error(), "groups") != NULL);
  lc_conv_opts_init(&o);
  o.same = true, o.stride[0] = 2;
  CHECK_STATUS(lc_conv2d(x, w, NULL, &o, &y), LC_EARG);
  lc_tensor *xi = NULL;
  CHECK_OK(lc_zeros(4, xs, LC_INT64, &xi));
  CHECK_STATUS(lc_conv2d(xi, w, NULL, NULL, &y), LC_EDTYPE);
  int64_t bs[1] = {5};
  lc_tensor *b = NULL;
  CHECK_OK(lc_zeros(1, bs, LC_FLOAT32, &b));
  CHECK_STATUS(lc_conv2d(xs2, w, b, NULL, &y), LC_ESHAPE);
  lc_conv_opts_init(&o);
  o.output_padding[0] = 1; /* stride 1, dilation 1: must be 0 */
  int64_t tw[4] = {4, 2, 3, 3};
  lc_tensor *wt = NULL;
  CHECK_OK(lc_zeros(4, tw, LC_FLOAT32, &wt));
  CHECK_STATUS(lc_conv_transpose2d(x, wt, NULL, &o, &y), LC_EARG);
  CHECK(strstr(lc_last_error(), "output_padding") != NULL);
  CHECK(y == NULL);
  lc_release(x), lc_release(w), lc_release(xs2), lc_release(xi), lc_release(b), lc_release(wt);
}

/* ---------------------------------------------------------------- pooling */

TEST(max_pool2d_values_and_indices_match_a_direct_scan) {
  lc_manual_seed(7);
  int64_t xs[4] = {2, 3, 7, 9};
  lc_tensor *x = randn(4, xs, LC_FLOAT32, false);
  double *xv = test_values(x);
  struct {
    int64_t k[2], s[2], p[2], d[2];
    bool ceil;
  } cs[] = {{{2, 2}, {2, 2}, {0, 0}, {1, 1}, false}, {{3, 2}, {2, 1}, {1, 1}, {1, 2}, true},
            {{2, 3}, {3, 2}, {1, 0}, {2, 1}, false}, {{3, 3}, {2, 2}, {1, 1}, {1, 1}, true}};
  for (size_t c = 0; c < sizeof cs / sizeof *cs; c++) {
    lc_pool_opts o;
    lc_pool_opts_init(&o, cs[c].k[0], cs[c].k[1]);
    for (int d = 0; d < 2; d++)
      o.stride[d] = cs[c].s[d], o.padding[d] = cs[c].p[d], o.dilation[d] = cs[c].d[d];
    o.ceil_mode = cs[c].ceil;
    lc_tensor *y = NULL, *ix = NULL;
    CHECK_OK(lc_max_pool2d(x, &o, &y, &ix));
    if (!y) continue;
    const int64_t *ys = lc_shape(y);
    double *yv = test_values(y), *iv = test_values(ix);
    for (int64_t pl = 0; pl < 6; pl++)
      for (int64_t oh = 0; oh < ys[2]; oh++)
        for (int64_t ow = 0; ow < ys[3]; ow++) {
          double best = -INFINITY;
          int64_t bi = -1;
          for (int64_t i = 0; i < o.kernel_size[0]; i++)
            for (int64_t j = 0; j < o.kernel_size[1]; j++) {
              int64_t h = oh * o.stride[0] - o.padding[0] + i * o.dilation[0];
              int64_t w = ow * o.stride[1] - o.padding[1] + j * o.dilation[1];
              if (h < 0 || h >= 7 || w < 0 || w >= 9) continue;
              double v = xv[pl * 63 + h * 9 + w];
              if (bi < 0 || v > best) best = v, bi = h * 9 + w;
            }
          int64_t at_ = (pl * ys[2] + oh) * ys[3] + ow;
          CHECK_NEAR(yv[at_], best, 0);
          CHECK_NEAR(iv[at_], (double)bi, 0);
        }
    free(yv), free(iv);
    lc_release(y), lc_release(ix);
  }
  free(xv);
  lc_release(x);
}

typedef struct pcase {
  int kind; /* 0 max2d, 1 avg2d, 2 aavg2d, 3 amax2d, 4 max1d, 5 avg1d, 6 aavg1d, 7 amax1d */
  int64_t k[2], s[2], p[2], d[2];
  bool ceil, cip;
  int64_t os[2];
} pcase;

static lc_status pool_fn(void *ctx, lc_tensor *const *in, lc_tensor **out) {
  const pcase *c = ctx;
  lc_pool_opts o;
  lc_pool_opts_init(&o, c->k[0], c->k[1]);
  for (int d = 0; d < 2; d++)
    o.stride[d] = c->s[d], o.padding[d] = c->p[d], o.dilation[d] = c->d[d] ? c->d[d] : 1;
  o.ceil_mode = c->ceil, o.count_include_pad = c->cip;
  switch (c->kind) {
  case 0: return lc_max_pool2d(in[0], &o, out, NULL);
  case 1: return lc_avg_pool2d(in[0], &o, out);
  case 2: return lc_adaptive_avg_pool2d(in[0], c->os, out);
  case 3: return lc_adaptive_max_pool2d(in[0], c->os, out, NULL);
  case 4: return lc_max_pool1d(in[0], &o, out, NULL);
  case 5: return lc_avg_pool1d(in[0], &o, out);
  case 6: return lc_adaptive_avg_pool1d(in[0], c->os[0], out);
  default: return lc_adaptive_max_pool1d(in[0], c->os[0], out, NULL);
  }
}

TEST(pooling_gradcheck) {
  lc_manual_seed(8);
  const pcase cs[] = {
      {0, {2, 2}, {2, 2}, {0, 0}, {1, 1}, false, true, {0, 0}},
      {0, {3, 2}, {2, 1}, {1, 1}, {1, 2}, true, true, {0, 0}},
      {1, {3, 3}, {2, 2}, {1, 1}, {1, 1}, true, true, {0, 0}},
      {1, {3, 2}, {2, 3}, {1, 1}, {1, 1}, true, false, {0, 0}},
      {2, {0, 0}, {0, 0}, {0, 0}, {0, 0}, false, false, {3, 4}},
      {2, {0, 0}, {0, 0}, {0, 0}, {0, 0}, false, false, {-1, 2}},
      {3, {0, 0}, {0, 0}, {0, 0}, {0, 0}, false, false, {4, 3}},
      {4, {3, 0}, {2, 0}, {1, 0}, {2, 0}, true, false, {0, 0}},
      {5, {3, 0}, {2, 0}, {1, 0}, {1, 0}, false, false, {0, 0}},
      {6, {0, 0}, {0, 0}, {0, 0}, {0, 0}, false, false, {4, 0}},
      {7, {0, 0}, {0, 0}, {0, 0}, {0, 0}, false, false, {3, 0}},
  };
  for (size_t c = 0; c < sizeof cs / sizeof *cs; c++) {
    int64_t s4[4] = {2, 2, 7, 6}, s3[3] = {2, 3, 9};
    bool one = cs[c].kind >= 4;
    /* distinct values so max pooling is differentiable at the sample */
    lc_tensor *x = NULL, *perm = NULL, *xf = NULL;
    int64_t n = one ? 54 : 168;
    CHECK_OK(lc_randperm(n, &perm));
    CHECK_OK(lc_to_dtype(perm, LC_FLOAT64, &xf));
    CHECK_OK(lc_reshape(xf, one ? 3 : 4, one ? s3 : s4, &x));
    lc_release(perm), lc_release(xf);
    if (!x) continue;
    lc_set_requires_grad(x, true);
    char msg[256];
    int ok = gradcheck(pool_fn, (void *)&cs[c], 1, &x, 1e-6, 1e-7, 1e-5, msg, sizeof msg);
    if (!ok) printf("  case %zu: %s\n", c, msg);
    CHECK(ok);
    lc_release(x);
  }
}

TEST(avg_and_adaptive_pool_values) {
  double v[16];
  for (int i = 0; i < 16; i++)
    v[i] = i;
  int64_t s[3] = {1, 4, 4};
  lc_tensor *x = NULL, *y = NULL;
  CHECK_OK(lc_from_data(3, s, LC_FLOAT64, v, &x));
  lc_pool_opts o;
  lc_pool_opts_init(&o, 2, 2);
  o.padding[0] = o.padding[1] = 1;
  o.count_include_pad = false;
  CHECK_OK(lc_avg_pool2d(x, &o, &y)); /* unbatched {C, H, W} */
  if (y) {
    CHECK(lc_ndim(y) == 3 && lc_shape(y)[1] == 3 && lc_shape(y)[2] == 3);
    double *yv = test_values(y);
    CHECK_NEAR(yv[0], v[0], 1e-12);                           /* corner: 1 element */
    CHECK_NEAR(yv[1], (v[1] + v[2]) / 2, 1e-12);              /* rows -1..0, cols 1..2 */
    free(yv);
  }
  lc_release(y), y = NULL;
  int64_t os[2] = {3, -1};
  CHECK_OK(lc_adaptive_avg_pool2d(x, os, &y));
  if (y) {
    CHECK(lc_shape(y)[1] == 3 && lc_shape(y)[2] == 4);
    double *yv = test_values(y);
    CHECK_NEAR(yv[4], (v[4] + v[8]) / 2, 1e-12); /* row 1: rows [1, 3) */
    free(yv);
  }
  lc_release(y), lc_release(x);
}

TEST(pool_errors) {
  int64_t s[4] = {1, 1, 3, 3};
  lc_tensor *x = NULL, *y = NULL;
  CHECK_OK(lc_zeros(4, s, LC_FLOAT32, &x));
  lc_pool_opts o;
  lc_pool_opts_init(&o, 2, 2);
  o.padding[0] = 2;
  CHECK_STATUS(lc_max_pool2d(x, &o, &y, NULL), LC_EARG);
  CHECK(strstr(lc_last_error(), "max_pool2d: padding") != NULL);
  lc_pool_opts_init(&o, 4, 4);
  CHECK_STATUS(lc_max_pool2d(x, &o, &y, NULL), LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "larger than the input") != NULL);
  lc_pool_opts_init(&o, 0, 2);
  CHECK_STATUS(lc_avg_pool2d(x, &o, &y), LC_EARG);
  CHECK(strstr(lc_last_error(), "kernel_size") != NULL);
  int64_t os[2] = {0, 2};
  CHECK_STATUS(lc_adaptive_avg_pool2d(x, os, &y), LC_EARG);
  int64_t s1[1] = {5};
  lc_tensor *x1 = NULL;
  CHECK_OK(lc_zeros(1, s1, LC_FLOAT32, &x1));
  lc_pool_opts_init(&o, 2, 2);
  CHECK_STATUS(lc_max_pool2d(x1, &o, &y, NULL), LC_ESHAPE);
  CHECK(y == NULL);
  lc_release(x), lc_release(x1);
}

/* ---------------------------------------------------------------- pad */

static lc_status pad_fn(void *ctx, lc_tensor *const *in, lc_tensor **out) {
  const int *mode = ctx;
  int64_t p[4] = {2, 1, 1, 2};
  if (*mode == LC_PAD_CONSTANT) p[1] = -1; /* crop */
  /* a value is constant mode's only: the others take 0 */
  return lc_pad(in[0], 4, p, (lc_pad_mode)*mode, *mode == LC_PAD_CONSTANT ? 0.5 : 0, out);
}

TEST(pad_values_and_gradcheck) {
  double v[12];
  for (int i = 0; i < 12; i++)
    v[i] = i + 1;
  int64_t s[3] = {1, 3, 4};
  lc_tensor *x = NULL;
  CHECK_OK(lc_from_data(3, s, LC_FLOAT64, v, &x));
  if (!x) return;
  int64_t p[2] = {2, 1};
  const int64_t want[4][7] = {{0, 0, 1, 2, 3, 4, 0}, /* constant 0 */
                              {3, 2, 1, 2, 3, 4, 3},
                              {1, 1, 1, 2, 3, 4, 4},
                              {3, 4, 1, 2, 3, 4, 1}};
  for (int m = 0; m < 4; m++) {
    lc_tensor *y = NULL;
    CHECK_OK(lc_pad(x, 2, p, (lc_pad_mode)m, 0, &y));
    if (!y) continue;
    CHECK(lc_shape(y)[2] == 7 && lc_shape(y)[1] == 3);
    double *yv = test_values(y);
    for (int k = 0; k < 7; k++)
      CHECK_NEAR(yv[k], (double)want[m][k], 0);
    free(yv);
    lc_release(y);
  }
  lc_set_requires_grad(x, true);
  for (int m = 0; m < 4; m++) {
    char msg[256];
    int ok = gradcheck(pad_fn, &m, 1, &x, 1e-6, 1e-7, 1e-5, msg, sizeof msg);
    if (!ok) printf("  mode %d: %s\n", m, msg);
    CHECK(ok);
  }
  lc_tensor *y = NULL;
  int64_t big[2] = {4, 0};
  CHECK_STATUS(lc_pad(x, 2, big, LC_PAD_REFLECT, 0, &y), LC_EARG);
  CHECK(strstr(lc_last_error(), "reflect") != NULL);
  int64_t odd[3] = {1, 1, 1};
  CHECK_STATUS(lc_pad(x, 3, odd, LC_PAD_CONSTANT, 0, &y), LC_EARG);
  int64_t three[6] = {1, 1, 1, 1, 1, 1}; /* 3 padded dims need a 4-D input */
  CHECK_STATUS(lc_pad(x, 6, three, LC_PAD_REPLICATE, 0, &y), LC_ESHAPE);
  lc_pad_mode pm;
  CHECK_OK(lc_pad_mode_from_name("zeros", &pm));
  CHECK(pm == LC_PAD_CONSTANT);
  CHECK_STATUS(lc_pad_mode_from_name("mirror", &pm), LC_EARG);
  CHECK(!strcmp(lc_pad_mode_name(LC_PAD_CIRCULAR), "circular"));
  /* constant mode on an integer tensor */
  lc_tensor *xi = NULL;
  CHECK_OK(lc_to_dtype(x, LC_INT32, &xi));
  CHECK_OK(lc_pad(xi, 2, p, LC_PAD_CONSTANT, 7, &y));
  if (y) {
    double *yv = test_values(y);
    CHECK_NEAR(yv[0], 7, 0);
    CHECK_NEAR(yv[2], 1, 0);
    free(yv);
  }
  lc_release(y), lc_release(xi), lc_release(x);
}

/* ---------------------------------------------------------------- modules */

static char *repr(lc_module *m) {
  char *s = NULL;
  if (lc_module_to_string(m, &s)) return NULL;
  return s;
}

TEST(conv_modules_shapes_init_and_printing) {
  lc_manual_seed(9);
  int64_t k[2] = {3, 3};
  lc_conv_opts o;
  lc_conv_opts_init(&o);
  o.padding[0] = o.padding[1] = 1;
  lc_module *m = NULL;
  CHECK_OK(lc_nn_conv2d(3, 16, k, &o, true, &m));
  if (!m) return;
  char *s = repr(m);
  CHECK(s && !strcmp(s, "Conv2d(3, 16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))"));
  lc_free(s);
  lc_tensor *w = lc_module_own_parameter(m, lc_module_find_parameter(m, "weight"));
  CHECK(lc_ndim(w) == 4 && lc_shape(w)[0] == 16 && lc_shape(w)[1] == 3);
  double *wv = test_values(w), mx = 0, bound = 1 / sqrt(27.0);
  for (int64_t i = 0; i < lc_numel(w); i++)
    mx = fmax(mx, fabs(wv[i]));
  CHECK(mx <= bound && mx > 0.8 * bound);
  free(wv);
  lc_attr a;
  CHECK(lc_module_attr(m, "out_channels", &a) && a.i == 16);
  int64_t xs[4] = {2, 4, 8, 8};
  lc_tensor *x = NULL, *y = NULL;
  CHECK_OK(lc_zeros(4, xs, LC_FLOAT32, &x));
  CHECK_STATUS(lc_module_forward(m, x, &y), LC_ESHAPE);
  CHECK(!strcmp(lc_last_error(),
                "Conv2d: expected input with 3 channels, got 4: input shape {2, 4, 8, 8}"));
  lc_release(x);
  int64_t x2s[2] = {3, 8};
  CHECK_OK(lc_zeros(2, x2s, LC_FLOAT32, &x));
  CHECK_STATUS(lc_module_forward(m, x, &y), LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "expected a 3-D (unbatched) or 4-D (batched) input") != NULL);
  lc_release(x);
  int64_t x3s[4] = {2, 3, 5, 5};
  CHECK_OK(lc_zeros(4, x3s, LC_FLOAT32, &x));
  CHECK_OK(lc_module_forward(m, x, &y));
  if (y) CHECK(lc_shape(y)[1] == 16 && lc_shape(y)[2] == 5);
  lc_release(x), lc_release(y);
  lc_module_release(m);

  lc_conv_opts_init(&o);
  o.stride[0] = 2, o.groups = 2, o.dilation[1] = 2, o.padding_mode = LC_PAD_REFLECT;
  o.padding[0] = 1;
  int64_t k2[2] = {3, 5};
  CHECK_OK(lc_nn_conv2d(4, 6, k2, &o, false, &m));
  if (m) {
    s = repr(m);
    CHECK(s && !strcmp(s, "Conv2d(4, 6, kernel_size=(3, 5), stride=(2, 1), padding=(1, 0), "
                          "dilation=(1, 2), groups=2, bias=false, padding_mode=reflect)"));
    lc_free(s);
    CHECK(lc_module_find_parameter(m, "bias") < 0);
    lc_module_release(m);
  }
  lc_conv_opts_init(&o);
  o.same = true;
  CHECK_OK(lc_nn_conv1d(2, 3, 4, &o, true, &m));
  if (m) {
    s = repr(m);
    CHECK(s && !strcmp(s, "Conv1d(2, 3, kernel_size=(4,), stride=(1,), padding=same)"));
    lc_free(s);
    lc_module_release(m);
  }
  lc_conv_opts_init(&o);
  o.stride[0] = o.stride[1] = 2, o.output_padding[0] = o.output_padding[1] = 1;
  CHECK_OK(lc_nn_conv_transpose2d(4, 6, k, &o, true, &m));
  if (m) {
    s = repr(m);
    CHECK(s && !strcmp(s, "ConvTranspose2d(4, 6, kernel_size=(3, 3), stride=(2, 2), "
                          "output_padding=(1, 1))"));
    lc_free(s);
    lc_tensor *wt = lc_module_own_parameter(m, 0);
    CHECK(lc_shape(wt)[0] == 4 && lc_shape(wt)[1] == 6);
    int64_t xs4[4] = {1, 4, 5, 5};
    CHECK_OK(lc_zeros(4, xs4, LC_FLOAT32, &x));
    CHECK_OK(lc_module_forward(m, x, &y));
    if (y) CHECK(lc_shape(y)[1] == 6 && lc_shape(y)[2] == 12);
    lc_release(x), lc_release(y);
    lc_module_release(m);
  }
  /* option errors name the option */
  lc_conv_opts_init(&o);
  o.groups = 3;
  CHECK_STATUS(lc_nn_conv2d(4, 6, k, &o, true, &m), LC_EARG);
  CHECK(strstr(lc_last_error(), "Conv2d: groups (3) must divide in_channels (4)") != NULL);
  lc_conv_opts_init(&o);
  o.stride[1] = 0;
  CHECK_STATUS(lc_nn_conv2d(4, 6, k, &o, true, &m), LC_EARG);
  CHECK(strstr(lc_last_error(), "stride") != NULL);
  int64_t k0[2] = {0, 3};
  CHECK_STATUS(lc_nn_conv2d(4, 6, k0, NULL, true, &m), LC_EARG);
  CHECK(strstr(lc_last_error(), "kernel_size") != NULL);
}

TEST(pool_modules_printing_and_forward) {
  lc_pool_opts o;
  lc_pool_opts_init(&o, 2, 2);
  lc_module *m = NULL;
  CHECK_OK(lc_nn_max_pool2d(&o, false, &m));
  if (m) {
    char *s = repr(m);
    CHECK(s && !strcmp(s, "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=false)"));
    lc_free(s);
    int64_t xs[4] = {1, 2, 5, 5};
    lc_tensor *x = NULL, *y = NULL;
    CHECK_OK(lc_zeros(4, xs, LC_FLOAT32, &x));
    CHECK_OK(lc_module_forward(m, x, &y));
    if (y) CHECK(lc_shape(y)[2] == 2 && lc_shape(y)[3] == 2);
    lc_release(y);
    lc_release(x);
    int64_t bad[1] = {5};
    CHECK_OK(lc_zeros(1, bad, LC_FLOAT32, &x));
    CHECK_STATUS(lc_module_forward(m, x, &y), LC_ESHAPE);
    CHECK(strstr(lc_last_error(), "MaxPool2d: expected a 3-D (unbatched) or 4-D") != NULL);
    lc_release(x);
    lc_module_release(m);
  }
  lc_pool_opts_init(&o, 3, 3);
  o.stride[0] = o.stride[1] = 1;
  CHECK_OK(lc_nn_avg_pool1d(&o, &m));
  if (m) {
    char *s = repr(m);
    CHECK(s && !strcmp(s, "AvgPool1d(kernel_size=(3,), stride=(1,), padding=(0,))"));
    lc_free(s);
    lc_attr a;
    CHECK(lc_module_attr(m, "count_include_pad", &a) && a.b);
    lc_module_release(m);
  }
  int64_t os[2] = {-1, 7};
  CHECK_OK(lc_nn_adaptive_avg_pool2d(os, &m));
  if (m) {
    char *s = repr(m);
    CHECK(s && !strcmp(s, "AdaptiveAvgPool2d(output_size=(nil, 7))"));
    lc_free(s);
    lc_module_release(m);
  }
  CHECK_OK(lc_nn_adaptive_max_pool2d(os, true, &m));
  if (m) {
    lc_attr a;
    CHECK(lc_module_attr(m, "return_indices", &a) && a.b);
    bool ri = false;
    int64_t got[2];
    CHECK(lc_nn_pool_info(m, NULL, got, &ri) && ri && got[0] == -1 && got[1] == 7);
    lc_module_release(m);
  }
  lc_pool_opts_init(&o, 2, 2);
  o.padding[0] = 2;
  CHECK_STATUS(lc_nn_max_pool2d(&o, false, &m), LC_EARG);
  CHECK(strstr(lc_last_error(), "MaxPool2d: padding") != NULL);
  os[0] = 0;
  CHECK_STATUS(lc_nn_adaptive_avg_pool2d(os, &m), LC_EARG);
}

/* The family's option rules live once (src/kernels/conv.c, pool.c): a module constructor and
 * its function give the same message. */
TEST(option_rules_are_one_for_modules_and_functions) {
  lc_module *m = NULL;
  int64_t k[2] = {3, 3};
  lc_conv_opts o;
  lc_conv_opts_init(&o);
  o.groups = 0; /* no division by zero: a clear error */
  CHECK_STATUS(lc_nn_conv2d(2, 3, k, &o, true, &m), LC_EARG);
  CHECK(!strcmp(lc_last_error(), "Conv2d: groups must be >= 1, got 0"));
  CHECK_STATUS(lc_nn_conv2d(0, 3, k, NULL, true, &m), LC_EARG);
  CHECK(!strcmp(lc_last_error(), "Conv2d: in_channels must be >= 1, got 0"));
  CHECK_STATUS(lc_nn_conv1d(2, -1, 3, NULL, true, &m), LC_EARG);
  CHECK(!strcmp(lc_last_error(), "Conv1d: out_channels must be >= 1, got -1"));
  lc_conv_opts_init(&o);
  o.valid = true;
  CHECK_STATUS(lc_nn_conv_transpose2d(2, 3, k, &o, true, &m), LC_EARG);
  CHECK(
      !strcmp(lc_last_error(),
              "ConvTranspose2d: padding must be an integer or a table of integers, got \"valid\""));
  lc_conv_opts_init(&o);
  o.padding_mode = LC_PAD_CIRCULAR;
  CHECK_STATUS(lc_nn_conv_transpose2d(2, 3, k, &o, true, &m), LC_EARG);
  CHECK(!strcmp(lc_last_error(),
                "ConvTranspose2d: only padding_mode \"zeros\" is supported, got \"circular\""));
  lc_conv_opts_init(&o);
  o.stride[1] = 2, o.output_padding[1] = 2;
  CHECK_STATUS(lc_nn_conv_transpose2d(2, 3, k, &o, true, &m), LC_EARG);
  CHECK(!strcmp(lc_last_error(), "ConvTranspose2d: output_padding must be >= 0 and smaller than "
                                 "stride or dilation, got output_padding 2 for stride 2 and "
                                 "dilation 1"));
  o.output_padding[1] = 1; /* < stride */
  CHECK_OK(lc_nn_conv_transpose2d(2, 3, k, &o, true, &m));
  lc_module_release(m), m = NULL;
  /* the function: the same rule and words */
  int64_t xs[4] = {1, 2, 5, 5}, ws[4] = {3, 2, 3, 3};
  lc_tensor *x = NULL, *w = NULL, *y = NULL;
  CHECK_OK(lc_zeros(4, xs, LC_FLOAT32, &x));
  CHECK_OK(lc_zeros(4, ws, LC_FLOAT32, &w));
  lc_conv_opts_init(&o);
  o.groups = 0;
  CHECK_STATUS(lc_conv2d(x, w, NULL, &o, &y), LC_EARG);
  CHECK(!strcmp(lc_last_error(), "conv2d: groups must be >= 1, got 0"));
  o.groups = 2; /* 3 output channels */
  CHECK_STATUS(lc_conv2d(x, w, NULL, &o, &y), LC_EARG);
  CHECK(!strcmp(lc_last_error(), "conv2d: groups (2) must divide out_channels (3)"));
  lc_conv_opts_init(&o);
  o.same = true, o.stride[0] = 3;
  CHECK_STATUS(lc_conv2d(x, w, NULL, &o, &y), LC_EARG);
  CHECK(!strcmp(lc_last_error(), "conv2d: padding \"same\" needs stride 1, got stride 3"));
  CHECK(y == NULL);
  /* pooling: stride >= 1 (lc_pool_opts_init's default is the kernel size), at construction too */
  lc_pool_opts po;
  lc_pool_opts_init(&po, 2, 2);
  po.stride[1] = 0;
  CHECK_STATUS(lc_nn_avg_pool2d(&po, &m), LC_EARG);
  CHECK(!strcmp(lc_last_error(), "AvgPool2d: stride must be >= 1, got 0"));
  CHECK_STATUS(lc_avg_pool2d(x, &po, &y), LC_EARG);
  CHECK(!strcmp(lc_last_error(), "avg_pool2d: stride must be >= 1, got 0"));
  lc_pool_opts_init(&po, 2, 1);
  po.stride[0] = INT64_MAX;
  CHECK_STATUS(lc_nn_max_pool1d(&po, false, &m), LC_EARG);
  CHECK(strstr(lc_last_error(), "MaxPool1d: stride is too large") != NULL);
  /* output_size: >= 1 or -1 (keep); a marked entry, 0-based in C */
  int64_t os[2] = {2, -2};
  CHECK_STATUS(lc_nn_adaptive_max_pool2d(os, false, &m), LC_EARG);
  CHECK(!strcmp(lc_last_error(), "AdaptiveMaxPool2d: output_size[1] must be >= 1, got -2"));
  CHECK_STATUS(lc_adaptive_max_pool2d(x, os, &y, NULL), LC_EARG);
  CHECK(!strcmp(lc_last_error(), "adaptive_max_pool2d: output_size[1] must be >= 1, got -2"));
  CHECK_STATUS(lc_adaptive_avg_pool1d(x, 0, &y), LC_EARG);
  CHECK(!strcmp(lc_last_error(), "adaptive_avg_pool1d: output_size must be >= 1, got 0"));
  os[1] = -1;
  CHECK_OK(lc_adaptive_max_pool2d(x, os, &y, NULL));
  if (y) CHECK(lc_shape(y)[2] == 2 && lc_shape(y)[3] == 5);
  lc_release(y), y = NULL;
  /* pad: a value is constant mode's */
  int64_t p[2] = {1, 1};
  CHECK_STATUS(lc_pad(x, 2, p, LC_PAD_REFLECT, 1, &y), LC_EARG);
  CHECK(
      !strcmp(lc_last_error(), "pad: padding mode \"reflect\" doesn't take a value, got value 1"));
  CHECK(y == NULL);
  lc_release(x), lc_release(w);
}

/* lc_empty_cache frees the idle workspaces too (registered by the conv kernels); later
 * convolutions allocate a new one and give the same result (ASan checks nothing dangles). */
TEST(conv2d_after_empty_cache) {
  lc_manual_seed(5);
  int64_t xs[4] = {3, 2, 6, 6}, ws[4] = {4, 2, 3, 3};
  lc_tensor *x = randn(4, xs, LC_FLOAT32, false), *w = randn(4, ws, LC_FLOAT32, false);
  lc_conv_opts o = {0};
  o.stride[0] = o.stride[1] = 1;
  o.dilation[0] = o.dilation[1] = 1;
  o.groups = 1;
  lc_tensor *y1 = NULL, *y2 = NULL;
  CHECK_OK(lc_conv2d(x, w, NULL, &o, &y1));
  lc_empty_cache();
  CHECK_OK(lc_conv2d(x, w, NULL, &o, &y2));
  bool same = false;
  if (y1 && y2) CHECK_OK(lc_equal(y1, y2, &same));
  CHECK(same);
  lc_release(x), lc_release(w), lc_release(y1), lc_release(y2);
}

/* ---------------------------------------------------------------- OpenBLAS's thread count */

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

int openblas_get_num_threads(void); /* from libopenblas */

typedef struct blas_race {
  lc_tensor *x, *w;
  atomic_bool done;
  lc_status st;
} blas_race;

static void *long_conv(void *p) {
  blas_race *r = p;
  lc_tensor *y = NULL;
  r->st = lc_conv2d(r->x, r->w, NULL, NULL, &y);
  lc_release(y);
  atomic_store(&r->done, true);
  return NULL;
}

/* Batched convolutions run single-threaded GEMMs on the pool's threads and hold OpenBLAS at one
 * thread meanwhile. The setting is process-wide: a convolution finishing on one host thread must
 * not give OpenBLAS its threads back while another host thread's convolution still runs, and the
 * runtime's count comes back once both are done (forward, backward, and failing calls). */
TEST(conv_openblas_threads_restored_and_shared_between_host_threads) {
  int prev = lc_get_num_threads();
  CHECK_OK(lc_set_num_threads(2));
  lc_manual_seed(8);
  /* a long convolution on another host thread (about 1 GFLOP) */
  int64_t bxs[4] = {8, 32, 64, 64}, bws[4] = {64, 32, 3, 3};
  blas_race r = {randn(4, bxs, LC_FLOAT32, false), randn(4, bws, LC_FLOAT32, false), false, LC_OK};
  int64_t xs[4] = {4, 8, 16, 16}, ws[4] = {8, 8, 3, 3};
  lc_tensor *x = randn(4, xs, LC_FLOAT32, true), *w = randn(4, ws, LC_FLOAT32, true);
  pthread_t th;
  bool started = r.x && r.w && pthread_create(&th, NULL, long_conv, &r) == 0;
  CHECK(started);
  if (started) {
    /* wait until the long one holds OpenBLAS at one thread, then run a short batched one */
    for (int i = 0; i < 1000000 && openblas_get_num_threads() != 1 && !atomic_load(&r.done); i++)
      sched_yield();
    lc_tensor *y = NULL;
    CHECK_OK(lc_conv2d(x, w, NULL, NULL, &y));
    int during = openblas_get_num_threads();
    if (!atomic_load(&r.done)) CHECK(during == 1); /* (else the machine was too fast to tell) */
    lc_release(y);
    pthread_join(th, NULL);
    CHECK_OK(r.st);
  }
  CHECK(openblas_get_num_threads() == 2);
  /* backward (chunked over the threads), and a failing call, leave the count as it was */
  lc_tensor *y = NULL, *s = NULL;
  CHECK_OK(lc_conv2d(x, w, NULL, NULL, &y));
  lc_reduce_opts ro = {0};
  if (y) CHECK_OK(lc_reduce(LC_SUM, y, &ro, &s));
  if (s) CHECK_OK(lc_backward(s, NULL, false));
  CHECK(openblas_get_num_threads() == 2);
  int64_t bad[4] = {8, 3, 3, 3};
  lc_tensor *wb = randn(4, bad, LC_FLOAT32, false), *yb = NULL;
  CHECK_STATUS(lc_conv2d(x, wb, NULL, NULL, &yb), LC_ESHAPE);
  CHECK(openblas_get_num_threads() == 2);
  lc_set_num_threads(prev);
  CHECK(openblas_get_num_threads() == prev);
  lc_release(y), lc_release(s), lc_release(wb), lc_release(x), lc_release(w);
  lc_release(r.x), lc_release(r.w);
}
