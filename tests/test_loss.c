/* test_loss.c - the losses of include/lucid_loss.h: values against loops written here (in
 * double), every reduction, weights, ignore_index, label smoothing, probability targets,
 * pos_weight, extreme logits, gradients numerically (float64), and error cases. */
#include "gradcheck.h"
#include "lucid_loss.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

static lc_tensor *randn_t(int nd, const int64_t *shape, lc_dtype dt, bool grad) {
  lc_tensor *t = NULL;
  if (lc_randn(nd, shape, dt, &t)) return NULL;
  if (grad) lc_set_requires_grad(t, true);
  return t;
}

static lc_tensor *rand_t(int nd, const int64_t *shape, lc_dtype dt, double lo, double hi,
                         bool grad) {
  lc_tensor *t = NULL;
  if (lc_empty(nd, shape, dt, &t) || lc_uniform_(t, lo, hi)) {
    lc_release(t);
    return NULL;
  }
  if (grad) lc_set_requires_grad(t, true);
  return t;
}

static lc_tensor *i64s(int nd, const int64_t *shape, const int64_t *v) {
  lc_tensor *t = NULL;
  if (lc_from_data(nd, shape, LC_INT64, v, &t)) return NULL;
  return t;
}

static double item(const lc_tensor *t) {
  double v = NAN;
  if (t) lc_item(t, &v);
  return v;
}

static double maxrel(const double *a, const double *b, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; i++) {
    double e = fabs(a[i] - b[i]) / (1e-6 + fabs(b[i]));
    if (e > m || e != e) m = e;
  }
  return m;
}

/* ---------------------------------------------------------------- pointwise values */

typedef double (*ref_fn)(double x, double y, double p);
static double r_mse(double x, double y, double p) { return (x - y) * (x - y); }
static double r_l1(double x, double y, double p) { return fabs(x - y); }
static double r_huber(double x, double y, double p) {
  double a = fabs(x - y);
  return a < p ? 0.5 * a * a : p * (a - 0.5 * p);
}
static double r_sl1(double x, double y, double p) {
  double a = fabs(x - y);
  if (p == 0) return a;
  return a < p ? 0.5 * a * a / p : a - 0.5 * p;
}

/* Which public function, as one signature. */
static lc_status call_pw(int which, const lc_tensor *x, const lc_tensor *y, lc_reduction r,
                         double p, lc_tensor **out) {
  switch (which) {
  case 0: return lc_mse_loss(x, y, r, out);
  case 1: return lc_l1_loss(x, y, r, out);
  case 2: return lc_huber_loss(x, y, r, p, out);
  default: return lc_smooth_l1_loss(x, y, r, p, out);
  }
}

TEST(loss_pointwise_values_all_reductions) {
  ref_fn refs[] = {r_mse, r_l1, r_huber, r_sl1};
  double ps[] = {0, 0, 0.7, 0.4};
  int64_t s[] = {5, 7};
  for (int dti = 0; dti < 2; dti++) {
    lc_dtype dt = dti ? LC_FLOAT64 : LC_FLOAT32;
    lc_tensor *x = randn_t(2, s, dt, false), *y = randn_t(2, s, dt, false);
    double *xv = test_values(x), *yv = test_values(y);
    for (int k = 0; k < 4 && xv && yv; k++) {
      double ref[35], sum = 0;
      for (int i = 0; i < 35; i++) {
        ref[i] = refs[k](xv[i], yv[i], ps[k]);
        sum += ref[i];
      }
      lc_tensor *m = NULL, *su = NULL, *no = NULL;
      CHECK_OK(call_pw(k, x, y, LC_REDUCTION_MEAN, ps[k], &m));
      CHECK_OK(call_pw(k, x, y, LC_REDUCTION_SUM, ps[k], &su));
      CHECK_OK(call_pw(k, x, y, LC_REDUCTION_NONE, ps[k], &no));
      if (m && su && no) {
        CHECK(lc_ndim(m) == 0 && lc_ndim(su) == 0 && lc_dtype_of(m) == dt);
        CHECK_NEAR(item(m), sum / 35, 1e-5 * (1 + fabs(sum)));
        CHECK_NEAR(item(su), sum, 1e-5 * (1 + fabs(sum)));
        CHECK(lc_ndim(no) == 2 && lc_shape(no)[0] == 5 && lc_shape(no)[1] == 7);
        double *nv = test_values(no);
        CHECK(nv && maxrel(nv, ref, 35) < 1e-5);
        free(nv);
      }
      lc_release(m);
      lc_release(su);
      lc_release(no);
    }
    free(xv);
    free(yv);
    lc_release(x);
    lc_release(y);
  }
}

TEST(loss_smooth_l1_beta0_is_l1) {
  int64_t s[] = {9};
  lc_tensor *x = randn_t(1, s, LC_FLOAT64, false), *y = randn_t(1, s, LC_FLOAT64, false);
  lc_tensor *a = NULL, *b = NULL;
  CHECK_OK(lc_smooth_l1_loss(x, y, LC_REDUCTION_SUM, 0.0, &a));
  CHECK_OK(lc_l1_loss(x, y, LC_REDUCTION_SUM, &b));
  CHECK_NEAR(item(a), item(b), 1e-12);
  lc_release(a);
  lc_release(b);
  lc_release(x);
  lc_release(y);
}

TEST(loss_bce_values_weight_and_clamp) {
  int64_t s[] = {3, 4}, sw[] = {4};
  lc_tensor *x = rand_t(2, s, LC_FLOAT64, 0.05, 0.95, false),
            *y = rand_t(2, s, LC_FLOAT64, 0, 1, false),
            *w = rand_t(1, sw, LC_FLOAT64, 0.5, 2, false);
  double *xv = test_values(x), *yv = test_values(y), *wv = test_values(w);
  lc_tensor *r = NULL;
  CHECK_OK(lc_binary_cross_entropy(x, y, w, LC_REDUCTION_MEAN, &r));
  if (xv && yv && wv && r) {
    double sum = 0;
    for (int i = 0; i < 12; i++)
      sum += -wv[i % 4] * (yv[i] * log(xv[i]) + (1 - yv[i]) * log(1 - xv[i]));
    CHECK_NEAR(item(r), sum / 12, 1e-10);
  }
  free(xv);
  free(yv);
  free(wv);
  lc_release(r);
  /* probabilities 0 and 1: each log clamped at -100 */
  double pv[] = {0, 1, 1}, tv[] = {1, 0, 1};
  int64_t s3[] = {3};
  lc_tensor *p = NULL, *t = NULL, *q = NULL;
  lc_from_data(1, s3, LC_FLOAT32, (float[]){0, 1, 1}, &p);
  lc_from_data(1, s3, LC_FLOAT64, tv, &t);
  (void)pv;
  CHECK_OK(lc_binary_cross_entropy(p, t, NULL, LC_REDUCTION_NONE, &q));
  if (q) {
    double *qv = test_values(q);
    CHECK(qv && qv[0] == 100 && qv[1] == 100 && qv[2] == 0);
    free(qv);
    CHECK(lc_dtype_of(q) == LC_FLOAT32); /* the target follows the input's dtype */
  }
  lc_release(q);
  lc_release(p);
  lc_release(t);
  lc_release(x);
  lc_release(y);
  lc_release(w);
}

static double softplus(double v) { return v > 0 ? v + log1p(exp(-v)) : log1p(exp(v)); }

TEST(loss_bce_with_logits_pos_weight_and_extremes) {
  int64_t s[] = {2, 3}, sp[] = {3};
  lc_tensor *x = randn_t(2, s, LC_FLOAT64, false), *y = rand_t(2, s, LC_FLOAT64, 0, 1, false),
            *pw = rand_t(1, sp, LC_FLOAT64, 0.5, 3, false);
  double *xv = test_values(x), *yv = test_values(y), *pv = test_values(pw);
  lc_tensor *r = NULL;
  CHECK_OK(lc_binary_cross_entropy_with_logits(x, y, NULL, pw, LC_REDUCTION_SUM, &r));
  if (xv && yv && pv && r) {
    double sum = 0;
    for (int i = 0; i < 6; i++) /* -(p y log s(x) + (1 - y) log(1 - s(x))) */
      sum += pv[i % 3] * yv[i] * softplus(-xv[i]) + (1 - yv[i]) * softplus(xv[i]);
    CHECK_NEAR(item(r), sum, 1e-10);
  }
  free(xv);
  free(yv);
  free(pv);
  lc_release(r);
  /* extreme logits: finite losses and gradients */
  float ev[] = {1e4f, -1e4f, 1e4f, -1e4f};
  float tv[] = {1, 0, 0, 1};
  int64_t s4[] = {4};
  lc_tensor *e = NULL, *t = NULL, *l = NULL;
  lc_from_data(1, s4, LC_FLOAT32, ev, &e);
  lc_from_data(1, s4, LC_FLOAT32, tv, &t);
  lc_set_requires_grad(e, true);
  CHECK_OK(lc_binary_cross_entropy_with_logits(e, t, NULL, NULL, LC_REDUCTION_NONE, &l));
  if (l) {
    double *lv = test_values(l);
    CHECK(lv && lv[0] == 0 && lv[1] == 0 && lv[2] == 1e4 && lv[3] == 1e4);
    free(lv);
    lc_tensor *s_ = NULL;
    lc_reduce_opts o = {0};
    CHECK_OK(lc_reduce(LC_SUM, l, &o, &s_));
    CHECK_OK(lc_backward(s_, NULL, false));
    double *gv = lc_grad(e) ? test_values(lc_grad(e)) : NULL;
    CHECK(gv && gv[0] == 0 && gv[1] == 0 && gv[2] == 1 && gv[3] == -1);
    free(gv);
    lc_release(s_);
  }
  lc_release(l);
  lc_release(e);
  lc_release(t);
  lc_release(x);
  lc_release(y);
  lc_release(pw);
}

TEST(loss_kl_div_values_batchmean_log_target) {
  int64_t s[] = {3, 4};
  lc_tensor *x = randn_t(2, s, LC_FLOAT64, false), *y = rand_t(2, s, LC_FLOAT64, 0.1, 1, false);
  double *xv = test_values(x), *yv = test_values(y);
  lc_tensor *a = NULL, *b = NULL, *ly = NULL;
  CHECK_OK(lc_kl_div(x, y, LC_REDUCTION_BATCHMEAN, false, &a));
  CHECK_OK(lc_unary(LC_LOG, y, &ly));
  CHECK_OK(lc_kl_div(x, ly, LC_REDUCTION_MEAN, true, &b));
  if (xv && yv && a && b) {
    double sum = 0;
    for (int i = 0; i < 12; i++)
      sum += yv[i] * (log(yv[i]) - xv[i]);
    CHECK_NEAR(item(a), sum / 3, 1e-10);
    CHECK_NEAR(item(b), sum / 12, 1e-10);
  }
  free(xv);
  free(yv);
  lc_release(a);
  lc_release(b);
  lc_release(ly);
  lc_release(x);
  lc_release(y);
}

/* ---------------------------------------------------------------- class losses */

/* Reference cross entropy of {N, C, S} in double with PyTorch's rules. */
static double ref_ce(const double *x, const int64_t *t, const double *w, int64_t N, int64_t C,
                     int64_t S, bool ign, int64_t ig, double eps, lc_reduction red, double *rows) {
  double total = 0, W = 0;
  for (int64_t n = 0; n < N; n++)
    for (int64_t s = 0; s < S; s++) {
      int64_t r = n * S + s, ti = t[r];
      if (ign && ti == ig) {
        rows[r] = 0;
        continue;
      }
      double m = -INFINITY, se = 0;
      for (int64_t c = 0; c < C; c++)
        m = fmax(m, x[(n * C + c) * S + s]);
      for (int64_t c = 0; c < C; c++)
        se += exp(x[(n * C + c) * S + s] - m);
      double lse = m + log(se), sm = 0;
      for (int64_t c = 0; c < C; c++)
        sm += (w ? w[c] : 1) * (lse - x[(n * C + c) * S + s]);
      double wt = w ? w[ti] : 1;
      rows[r] = (1 - eps) * wt * (lse - x[(n * C + ti) * S + s]) + eps / (double)C * sm;
      total += rows[r];
      W += wt;
    }
  return red == LC_REDUCTION_MEAN ? total / W : total;
}

TEST(loss_cross_entropy_matches_reference) {
  int64_t N = 6, C = 5, S = 3;
  int64_t s2[] = {N, C}, s3[] = {N, C, S}, sw[] = {C}, st1[] = {N}, st2[] = {N, S};
  int64_t tv[18];
  for (int i = 0; i < 18; i++)
    tv[i] = (i * 7 + 3) % C;
  lc_tensor *w = rand_t(1, sw, LC_FLOAT32, 0.5, 2, false);
  double *wv = test_values(w);
  for (int spatial = 0; spatial < 2; spatial++) {
    int64_t SS = spatial ? S : 1;
    lc_tensor *x = randn_t(spatial ? 3 : 2, spatial ? s3 : s2, LC_FLOAT32, false);
    lc_tensor *t = i64s(spatial ? 2 : 1, spatial ? st2 : st1, tv);
    double *xv = test_values(x);
    for (int cfg = 0; cfg < 4 && xv && t && wv; cfg++) {
      lc_class_loss_opts o = {0};
      o.weight = cfg & 1 ? w : NULL;
      o.has_ignore_index = cfg >= 2;
      o.ignore_index = 3;
      o.label_smoothing = cfg == 3 ? 0.2 : 0;
      double rows[18];
      for (int red = 0; red < 3; red++) {
        o.reduction = (lc_reduction)red;
        double ref = ref_ce(xv, tv, o.weight ? wv : NULL, N, C, SS, o.has_ignore_index, 3,
                            o.label_smoothing, o.reduction, rows);
        lc_tensor *r = NULL;
        CHECK_OK(lc_cross_entropy(x, t, &o, &r));
        if (!r) continue;
        if (o.reduction == LC_REDUCTION_NONE) {
          CHECK(lc_ndim(r) == (spatial ? 2 : 1) && lc_shape(r)[0] == N);
          double *rv = test_values(r);
          CHECK(rv && maxrel(rv, rows, N * SS) < 1e-5);
          free(rv);
        } else {
          CHECK_NEAR(item(r), ref, 1e-5 * (1 + fabs(ref)));
        }
        lc_release(r);
      }
    }
    free(xv);
    lc_release(x);
    lc_release(t);
  }
  free(wv);
  lc_release(w);
}

TEST(loss_cross_entropy_extreme_logits_and_1d) {
  float xv[] = {1e4f, -1e4f, 0, -1e4f, 1e4f, 5};
  int64_t s[] = {2, 3}, st[] = {2}, tv[] = {0, 0};
  lc_tensor *x = NULL, *t = i64s(1, st, tv), *r = NULL;
  lc_from_data(2, s, LC_FLOAT32, xv, &x);
  CHECK_OK(lc_cross_entropy(x, t, &(lc_class_loss_opts){.reduction = LC_REDUCTION_NONE}, &r));
  if (r) {
    double *rv = test_values(r);
    CHECK(rv && rv[0] == 0 && rv[1] == 2e4);
    free(rv);
  }
  lc_release(r);
  /* {C} input with a 0-dim target */
  int64_t sc[] = {4};
  lc_tensor *v = randn_t(1, sc, LC_FLOAT64, false), *t0 = NULL, *r1 = NULL;
  int64_t two = 2;
  lc_from_data(0, NULL, LC_INT64, &two, &t0);
  CHECK_OK(lc_cross_entropy(v, t0, NULL, &r1));
  double *vv = test_values(v);
  if (vv && r1) {
    double se = 0;
    for (int c = 0; c < 4; c++)
      se += exp(vv[c]);
    CHECK_NEAR(item(r1), log(se) - vv[2], 1e-12);
  }
  free(vv);
  lc_release(r1);
  lc_release(t0);
  lc_release(v);
  lc_release(x);
  lc_release(t);
}

TEST(loss_nll_and_probability_targets) {
  int64_t s[] = {4, 3}, st[] = {4}, tv[] = {2, 0, 1, 1};
  lc_tensor *x = randn_t(2, s, LC_FLOAT64, false), *t = i64s(1, st, tv), *ls = NULL;
  lc_tensor *ce = NULL, *nll = NULL, *lse = NULL, *oh = NULL, *ce_p = NULL;
  lc_reduce_opts o = {.ndims = 1, .dims = {1}, .keepdim = true};
  CHECK_OK(lc_reduce(LC_LOGSUMEXP, x, &o, &lse));
  CHECK_OK(lc_binary(LC_SUB, x, lse, &ls));
  CHECK_OK(lc_cross_entropy(x, t, NULL, &ce));
  CHECK_OK(lc_nll_loss(ls, t, NULL, &nll));
  CHECK_NEAR(item(ce), item(nll), 1e-12);
  /* one-hot probabilities give the class-index loss */
  lc_tensor *z = NULL, *idx = NULL, *src = NULL;
  int64_t si[] = {4, 1}, ones_s[] = {4, 1};
  CHECK_OK(lc_zeros(2, s, LC_FLOAT64, &z));
  CHECK_OK(lc_from_data(2, si, LC_INT64, tv, &idx));
  CHECK_OK(lc_ones(2, ones_s, LC_FLOAT64, &src));
  CHECK_OK(lc_scatter(z, 1, idx, src, &oh));
  CHECK_OK(lc_cross_entropy(x, oh, NULL, &ce_p));
  CHECK_NEAR(item(ce_p), item(ce), 1e-12);
  lc_release(z);
  lc_release(idx);
  lc_release(src);
  lc_release(oh);
  lc_release(ce_p);
  lc_release(ce);
  lc_release(nll);
  lc_release(lse);
  lc_release(ls);
  lc_release(x);
  lc_release(t);
}

TEST(loss_all_ignored_is_nan) {
  int64_t s[] = {2, 3}, st[] = {2}, tv[] = {1, 1};
  lc_tensor *x = randn_t(2, s, LC_FLOAT32, false), *t = i64s(1, st, tv), *r = NULL;
  lc_class_loss_opts o = {.has_ignore_index = true, .ignore_index = 1};
  CHECK_OK(lc_cross_entropy(x, t, &o, &r));
  CHECK(r && isnan(item(r)));
  lc_release(r);
  lc_release(x);
  lc_release(t);
}

/* ---------------------------------------------------------------- gradients */

typedef struct gc_case {
  int which; /* 0..3 pointwise, 4 bce, 5 bce logits, 6 kl, 7 kl log, 8 ce, 9 nll, 10 ce prob */
  lc_reduction red;
  const lc_tensor *t; /* class targets or a fixed weight */
  const lc_tensor *w;
  lc_class_loss_opts o;
} gc_case;

static lc_status gc_fn(void *vctx, lc_tensor *const *in, lc_tensor **out) {
  gc_case *c = vctx;
  switch (c->which) {
  case 0:
  case 1:
  case 2:
  case 3: return call_pw(c->which, in[0], in[1], c->red, 0.6, out);
  case 4: return lc_binary_cross_entropy(in[0], in[1], c->w, c->red, out);
  case 5: return lc_binary_cross_entropy_with_logits(in[0], in[1], c->w, c->t, c->red, out);
  case 6: return lc_kl_div(in[0], in[1], c->red, false, out);
  case 7: return lc_kl_div(in[0], in[1], c->red, true, out);
  case 8: c->o.reduction = c->red; return lc_cross_entropy(in[0], c->t, &c->o, out);
  case 9: c->o.reduction = c->red; return lc_nll_loss(in[0], c->t, &c->o, out);
  default: c->o.reduction = c->red; return lc_cross_entropy(in[0], in[1], &c->o, out);
  }
}

TEST(loss_gradcheck_all) {
  int64_t s[] = {3, 4}, sw[] = {4}, st[] = {3}, s3[] = {2, 4, 3}, st3[] = {2, 3};
  int64_t tv[] = {1, 3, 0, 2, 2, 1};
  lc_tensor *tcls = i64s(1, st, tv), *tcls3 = i64s(2, st3, tv);
  lc_tensor *wc = rand_t(1, sw, LC_FLOAT64, 0.5, 2, false);
  char msg[512];
  for (int which = 0; which <= 10; which++)
    for (int red = 0; red < 3; red++) {
      gc_case c = {.which = which, .red = (lc_reduction)red};
      lc_tensor *x = NULL, *y = NULL;
      int n = 2;
      if (which == 4) { /* probabilities away from 0 and 1 */
        x = rand_t(2, s, LC_FLOAT64, 0.1, 0.9, true);
        y = rand_t(2, s, LC_FLOAT64, 0, 1, true);
        c.w = wc;
      } else if (which == 5) {
        x = randn_t(2, s, LC_FLOAT64, true);
        y = rand_t(2, s, LC_FLOAT64, 0, 1, true);
        c.w = wc;
        c.t = wc; /* pos_weight */
      } else if (which == 6) {
        x = randn_t(2, s, LC_FLOAT64, true);
        y = rand_t(2, s, LC_FLOAT64, 0.2, 1, true);
      } else if (which >= 8) {
        bool sp = red == 1; /* one reduction over spatial inputs */
        x = randn_t(sp ? 3 : 2, sp ? s3 : s, LC_FLOAT64, true);
        c.t = sp ? tcls3 : tcls;
        c.o.weight = wc;
        c.o.has_ignore_index = which != 10;
        c.o.ignore_index = 2;
        c.o.label_smoothing = which == 8 ? 0.1 : 0;
        n = 1;
        if (which == 10) {
          y = rand_t(sp ? 3 : 2, sp ? s3 : s, LC_FLOAT64, 0, 1, true);
          n = 2;
          c.o.label_smoothing = 0.15;
        }
      } else {
        x = randn_t(2, s, LC_FLOAT64, true);
        y = randn_t(2, s, LC_FLOAT64, true);
      }
      lc_tensor *ins[2] = {x, y};
      int ok = gradcheck(gc_fn, &c, n, ins, 1e-6, 1e-6, 1e-4, msg, sizeof msg);
      if (!ok) printf("  loss %d reduction %d: %s\n", which, red, msg);
      CHECK(ok);
      lc_release(x);
      lc_release(y);
    }
  lc_release(tcls);
  lc_release(tcls3);
  lc_release(wc);
}

TEST(loss_grad_fn_names_and_no_graph_without_grad) {
  int64_t s[] = {2, 3}, st[] = {2}, tv[] = {0, 2};
  lc_tensor *x = randn_t(2, s, LC_FLOAT32, true), *t = i64s(1, st, tv), *r = NULL, *m = NULL;
  CHECK_OK(lc_cross_entropy(x, t, NULL, &r));
  CHECK(r && lc_grad_fn_name(r) && strcmp(lc_grad_fn_name(r), "CrossEntropyLossBackward") == 0);
  CHECK_OK(lc_mse_loss(x, x, LC_REDUCTION_MEAN, &m));
  CHECK(m && strcmp(lc_grad_fn_name(m), "MseLossBackward") == 0);
  lc_release(r);
  lc_release(m);
  r = NULL;
  bool prev = lc_set_grad_enabled(false);
  CHECK_OK(lc_cross_entropy(x, t, NULL, &r));
  CHECK(r && !lc_requires_grad(r));
  lc_set_grad_enabled(prev);
  lc_release(r);
  lc_release(x);
  lc_release(t);
}

TEST(loss_weight_gradient_is_an_error) {
  int64_t s[] = {2, 3}, sw[] = {3};
  lc_tensor *x = randn_t(2, s, LC_FLOAT64, true), *y = rand_t(2, s, LC_FLOAT64, 0, 1, false),
            *w = rand_t(1, sw, LC_FLOAT64, 0.5, 1, true), *r = NULL;
  CHECK_OK(lc_binary_cross_entropy_with_logits(x, y, w, NULL, LC_REDUCTION_SUM, &r));
  if (r) CHECK_STATUS(lc_backward(r, NULL, false), LC_EGRAD);
  CHECK(strstr(lc_last_error(), "weight") != NULL);
  lc_release(r);
  lc_release(x);
  lc_release(y);
  lc_release(w);
}

/* ---------------------------------------------------------------- errors */

TEST(loss_errors) {
  int64_t s[] = {2, 3}, s2[] = {3, 2}, st[] = {2}, sw[] = {4};
  int64_t bad[] = {0, 3}, neg[] = {-1, 0};
  lc_tensor *x = randn_t(2, s, LC_FLOAT32, false), *y = randn_t(2, s2, LC_FLOAT32, false);
  lc_tensor *tb = i64s(1, st, bad), *tn = i64s(1, st, neg),
            *w4 = rand_t(1, sw, LC_FLOAT32, 0, 1, false);
  lc_tensor *xi = NULL, *r = NULL;
  CHECK_STATUS(lc_mse_loss(x, y, LC_REDUCTION_MEAN, &r), LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "{3, 2}") && strstr(lc_last_error(), "{2, 3}"));
  CHECK_STATUS(lc_mse_loss(x, x, (lc_reduction)7, &r), LC_EARG);
  CHECK_STATUS(lc_mse_loss(x, x, LC_REDUCTION_BATCHMEAN, &r), LC_EARG);
  CHECK_STATUS(lc_mse_loss(NULL, x, LC_REDUCTION_MEAN, &r), LC_EARG);
  CHECK_STATUS(lc_mse_loss(x, x, LC_REDUCTION_MEAN, NULL), LC_EARG);
  CHECK_STATUS(lc_huber_loss(x, x, LC_REDUCTION_MEAN, 0, &r), LC_EARG);
  CHECK_STATUS(lc_smooth_l1_loss(x, x, LC_REDUCTION_MEAN, -1, &r), LC_EARG);
  lc_zeros(2, s, LC_INT64, &xi);
  CHECK_STATUS(lc_l1_loss(xi, x, LC_REDUCTION_MEAN, &r), LC_EDTYPE);
  CHECK_STATUS(lc_binary_cross_entropy(x, x, NULL, LC_REDUCTION_MEAN, &r), LC_EARG); /* randn */
  CHECK(strstr(lc_last_error(), "between 0 and 1"));
  CHECK_STATUS(lc_binary_cross_entropy_with_logits(x, x, NULL, w4, LC_REDUCTION_MEAN, &r),
               LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "pos_weight"));
  CHECK_STATUS(lc_cross_entropy(x, tb, NULL, &r), LC_EINDEX);
  /* 0-based in C: the element [1] holds 3, for classes 0..2 */
  CHECK(strstr(lc_last_error(), "cross_entropy: target[1] = 3 is out of range for 3 classes "
                                "(expected 0..2)"));
  CHECK_STATUS(lc_nll_loss(x, tn, NULL, &r), LC_EINDEX);
  lc_class_loss_opts o = {.has_ignore_index = true, .ignore_index = -1};
  CHECK_OK(lc_nll_loss(x, tn, &o, &r)); /* -1 ignored */
  lc_release(r);
  r = NULL;
  CHECK_STATUS(lc_cross_entropy(x, y, NULL, &r), LC_ESHAPE); /* float target of another shape */
  CHECK_STATUS(lc_cross_entropy(x, x, &o, &r), LC_EARG);     /* ignore_index with probabilities */
  o = (lc_class_loss_opts){.weight = w4};
  lc_tensor *t2 = i64s(1, st, (int64_t[]){0, 1});
  CHECK_STATUS(lc_cross_entropy(x, t2, &o, &r), LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "weight"));
  o = (lc_class_loss_opts){.label_smoothing = 1.5};
  CHECK_STATUS(lc_cross_entropy(x, t2, &o, &r), LC_EARG);
  o = (lc_class_loss_opts){.label_smoothing = 0.1};
  CHECK_STATUS(lc_nll_loss(x, t2, &o, &r), LC_EARG);
  CHECK_STATUS(lc_cross_entropy(x, x, &(lc_class_loss_opts){.reduction = (lc_reduction)9}, &r),
               LC_EARG);
  lc_tensor *tw = i64s(1, sw, (int64_t[]){0, 1, 0, 1}); /* 4 targets for a batch of 2 */
  CHECK_STATUS(lc_cross_entropy(x, tw, NULL, &r), LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "{2}") && strstr(lc_last_error(), "{4}"));
  lc_tensor *x0 = NULL;
  lc_scalar(1, LC_FLOAT32, &x0);
  CHECK_STATUS(lc_cross_entropy(x0, t2, NULL, &r), LC_ESHAPE);
  lc_reduction rr;
  CHECK_OK(lc_reduction_from_name("batchmean", &rr));
  CHECK(rr == LC_REDUCTION_BATCHMEAN && strcmp(lc_reduction_name(LC_REDUCTION_SUM), "sum") == 0);
  CHECK_STATUS(lc_reduction_from_name("avg", &rr), LC_EARG);
  CHECK(r == NULL); /* untouched on failure */
  lc_release(x0);
  lc_release(tw);
  lc_release(t2);
  lc_release(xi);
  lc_release(x);
  lc_release(y);
  lc_release(tb);
  lc_release(tn);
  lc_release(w4);
}

TEST(loss_big_batch_threads_deterministic) {
  int64_t s[] = {20000, 10}, st[] = {20000};
  lc_tensor *x = randn_t(2, s, LC_FLOAT32, true), *t = NULL, *a = NULL, *b = NULL;
  CHECK_OK(lc_randint(0, 10, 1, st, LC_INT64, &t));
  int nt = lc_get_num_threads();
  CHECK_OK(lc_cross_entropy(x, t, NULL, &a));
  lc_set_num_threads(1);
  CHECK_OK(lc_cross_entropy(x, t, NULL, &b));
  lc_set_num_threads(nt);
  CHECK(a && b && item(a) == item(b));
  if (a) {
    CHECK_OK(lc_backward(a, NULL, false));
    /* rows of softmax - onehot sum to 0 */
    lc_tensor *rs = NULL;
    lc_reduce_opts o = {.ndims = 1, .dims = {1}};
    CHECK_OK(lc_reduce(LC_SUM, lc_grad(x), &o, &rs));
    double *v = rs ? test_values(rs) : NULL;
    double m = 0;
    for (int i = 0; v && i < 20000; i++)
      m = fmax(m, fabs(v[i]));
    CHECK(v && m < 1e-9);
    free(v);
    lc_release(rs);
  }
  lc_release(a);
  lc_release(b);
  lc_release(x);
  lc_release(t);
}
