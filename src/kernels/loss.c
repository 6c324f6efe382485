/*
 * loss.c - loss ops, each forward next to its backward:
 *   - pointwise losses (the rows of loss_list.h: mse, l1, huber, smooth_l1,
 *     binary_cross_entropy(_with_logits), kl_div): one fused pass computing the per-element loss
 *     and, for mean/sum, its sum; backward one pass writing d/dinput and d/dtarget. A row's
 *     kernel is its case in pw_value (the loss of one element) and pw_grad (its derivatives);
 *     the passes, reductions and op definitions are shared;
 *   - class losses (cross_entropy, nll_loss): one pass per sample over its C class scores
 *     (max, sum of exp, log-sum-exp, negative log-likelihood, label smoothing), no N*C
 *     temporary; backward writes softmax - onehot (scaled) straight into the gradient.
 *
 * Arithmetic is in double whatever the data dtype. Sums over elements or samples go through
 * per-block partial sums (blocks of a fixed size, merged in order), so results never depend on
 * the number of threads.
 */
#include "loss.h"
#include "activation.h"
#include "grad_graph.h"
#include "kernel_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define L_BLOCK ((int64_t)4096) /* elements (or samples) per partial sum */

/* ---------------------------------------------------------------- helpers */

/* t broadcast to (nd, shape) as a fresh contiguous tensor of dtype dt, or t itself (retained)
 * when it already is exactly that. `what` names t in the error. */
static lc_status dense_as(const char *fn, const char *what, const lc_tensor *t, int nd,
                          const int64_t *shape, lc_dtype dt, lc_tensor **out) {
  if (t->contiguous && t->dtype == dt && same_shape(t, nd, shape)) {
    *out = lc_retain((lc_tensor *)t);
    return LC_OK;
  }
  if (!same_shape(t, nd, shape)) {
    bool ok = t->ndim <= nd;
    for (int d = 0; ok && d < t->ndim; d++) {
      int64_t s = t->shape[t->ndim - 1 - d];
      ok = s == 1 || s == shape[nd - 1 - d];
    }
    if (!ok) {
      char a[256], b[256];
      return lc_set_error(
          LC_ESHAPE, "%s: %s of shape %s does not broadcast to the input's shape %s", fn, what,
          lc_shape_str(t->ndim, t->shape, a, sizeof a), lc_shape_str(nd, shape, b, sizeof b));
    }
  }
  return lc_k_expand_copy(t, nd, shape, dt, out);
}

lc_status lc_loss_check_reduction(const char *fn, int64_t r, bool batchmean) {
  if (r == LC_REDUCTION_MEAN || r == LC_REDUCTION_SUM || r == LC_REDUCTION_NONE) return LC_OK;
  if (r == LC_REDUCTION_BATCHMEAN && batchmean) return LC_OK;
  return lc_set_error(LC_EARG, "%s: invalid reduction %lld (expected mean, sum or none%s)", fn,
                      (long long)r, batchmean ? " or batchmean" : "");
}

/* The incoming gradient as a dense tensor of dtype dt (for reduction "none"). */
static lc_status dense_grad(const lc_tensor *g, lc_dtype dt, lc_tensor **out) {
  return dense_as("loss backward", "gradient", g, g->ndim, g->shape, dt, out);
}

static double sum_partials(const double *p, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i++)
    s += p[i];
  return s;
}

/* Backward of an input we do not differentiate (weights): an error, never a silent zero. */
static lc_status no_grad_for(const lc_op_ctx *ctx, int i, const char *what) {
  if (i < ctx->n_inputs && ctx->needs_grad[i])
    return lc_set_error(LC_EGRAD, "%s: the derivative for '%s' is not implemented", ctx->op->name,
                        what);
  return LC_OK;
}

/* ================================================================ pointwise losses */

typedef struct pw_ctx {
  lc_pw_kind kind;
  double p; /* the row's parameter: delta, beta, log_target (1 or 0) */
  int64_t n;
  const void *x, *y, *w, *pw; /* contiguous, dtype of x; w/pw may be NULL */
  /* forward */
  void *out;       /* reduction none: per-element losses; else NULL */
  double *partial; /* else: one sum per block */
  /* backward */
  const void *g; /* none: per-element gradient; else NULL and gscale is the scalar */
  double gscale;
  void *gx, *gy; /* NULL when not needed */
} pw_ctx;

static inline double sgn(double d) { return (d > 0) - (d < 0); }

/* Stable log(1 + exp(-|x|)) + max(-x, 0) = log(1 + exp(-x)). */
static inline double softplus_neg(double x) { return log1p(exp(-fabs(x))) + (x < 0 ? -x : 0); }

static inline double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + exp(-x));
  double e = exp(x);
  return e / (1.0 + e);
}

/* Loss of one element (without weight). */
static inline double pw_value(const pw_ctx *c, double x, double y, double pwv) {
  double d = x - y, a = fabs(d), p = c->p;
  switch (c->kind) {
  case LC_PW_MSE: return d * d;
  case LC_PW_L1: return a;
  case LC_PW_HUBER: return a < p ? 0.5 * d * d : p * (a - 0.5 * p);
  case LC_PW_SMOOTH_L1:
    if (p == 0) return a;
    return a < p ? 0.5 * d * d / p : a - 0.5 * p;
  case LC_PW_BCE: {
    /* PyTorch clamps each log at -100 so x = 0 or 1 gives a finite loss */
    double lx = fmax(log(x), -100.0), l1x = fmax(log1p(-x), -100.0);
    return -(y * lx + (1 - y) * l1x);
  }
  case LC_PW_BCE_LOGITS: return (1 - y) * x + (1 + (pwv - 1) * y) * softplus_neg(x);
  case LC_PW_KL_DIV: /* p: log_target, 1 or 0 */
    if (p != 0) return exp(y) * (y - x);
    return (y == 0 ? 0.0 : y * log(y)) - y * x; /* xlogy(y, y) - y x */
  default: return NAN;
  }
}

/* d loss / d x and d loss / d y of one element (without weight). */
static inline void pw_grad(const pw_ctx *c, double x, double y, double pwv, double *dx,
                           double *dy) {
  double d = x - y, p = c->p;
  switch (c->kind) {
  case LC_PW_MSE:
    *dx = 2 * d;
    *dy = -2 * d;
    return;
  case LC_PW_L1:
    *dx = sgn(d);
    *dy = -*dx;
    return;
  case LC_PW_HUBER:
    *dx = d <= -p ? -p : d >= p ? p : d;
    *dy = -*dx;
    return;
  case LC_PW_SMOOTH_L1:
    if (p == 0)
      *dx = sgn(d);
    else
      *dx = d <= -p ? -1.0 : d >= p ? 1.0 : d / p;
    *dy = -*dx;
    return;
  case LC_PW_BCE:
    /* PyTorch's formula: (x - y) / max(x (1 - x), 1e-12) */
    *dx = (x - y) / fmax((1 - x) * x, 1e-12);
    *dy = fmax(log1p(-x), -100.0) - fmax(log(x), -100.0);
    return;
  case LC_PW_BCE_LOGITS: {
    double lw = 1 + (pwv - 1) * y;
    *dx = lw * sigmoid(x) - pwv * y;
    *dy = -x + (pwv - 1) * softplus_neg(x);
    return;
  }
  case LC_PW_KL_DIV: /* p: log_target, 1 or 0 */
    if (p != 0) {
      double e = exp(y);
      *dx = -e;
      *dy = e * (y - x + 1);
    } else {
      *dx = -y;
      *dy = log(y) + 1 - x;
    }
    return;
  default: *dx = *dy = NAN; return;
  }
}

#define PW_KERNELS(T, SUF)                                                                         \
  static void pw_fwd_##SUF(void *vc, int64_t b0, int64_t b1) {                                     \
    const pw_ctx *c = vc;                                                                          \
    const T *restrict x = c->x, *restrict y = c->y, *restrict w = c->w, *restrict pw = c->pw;      \
    T *restrict o = c->out;                                                                        \
    for (int64_t b = b0; b < b1; b++) {                                                            \
      int64_t i0 = b * L_BLOCK, i1 = i0 + L_BLOCK < c->n ? i0 + L_BLOCK : c->n;                    \
      double s = 0;                                                                                \
      for (int64_t i = i0; i < i1; i++) {                                                          \
        double l = pw_value(c, (double)x[i], (double)y[i], pw ? (double)pw[i] : 1.0);              \
        if (w) l *= (double)w[i];                                                                  \
        if (o)                                                                                     \
          o[i] = (T)l;                                                                             \
        else                                                                                       \
          s += l;                                                                                  \
      }                                                                                            \
      if (!o) c->partial[b] = s;                                                                   \
    }                                                                                              \
  }                                                                                                \
  static void pw_bwd_##SUF(void *vc, int64_t i0, int64_t i1) {                                     \
    const pw_ctx *c = vc;                                                                          \
    const T *restrict x = c->x, *restrict y = c->y, *restrict w = c->w, *restrict pw = c->pw;      \
    const T *restrict g = c->g;                                                                    \
    T *restrict gx = c->gx, *restrict gy = c->gy;                                                  \
    for (int64_t i = i0; i < i1; i++) {                                                            \
      double s = g ? (double)g[i] : c->gscale, dx, dy;                                             \
      if (w) s *= (double)w[i];                                                                    \
      pw_grad(c, (double)x[i], (double)y[i], pw ? (double)pw[i] : 1.0, &dx, &dy);                  \
      if (gx) gx[i] = (T)(s * dx);                                                                 \
      if (gy) gy[i] = (T)(s * dy);                                                                 \
    }                                                                                              \
  }

PW_KERNELS(float, f32)
PW_KERNELS(double, f64)

/* The dense operands of a pointwise loss: x, y (contiguous, x's dtype), weights expanded to
 * x's shape. Released by pw_release. */
typedef struct pw_operands {
  lc_tensor *x, *y, *w, *pw;
} pw_operands;

static void pw_release(pw_operands *o) {
  lc_release(o->x);
  lc_release(o->y);
  lc_release(o->w);
  lc_release(o->pw);
}

/* in: input, target [, weight] [, pos_weight] per flags. Checks and densifies. */
static lc_status pw_prepare(const char *fn, int n, lc_tensor *const *in, int flags,
                            pw_operands *o) {
  memset(o, 0, sizeof *o);
  const lc_tensor *x = in[0], *y = in[1];
  int want = 2 + !!(flags & LC_LOSS_HAS_WEIGHT) + !!(flags & LC_LOSS_HAS_POS_WEIGHT);
  if (n != want) return lc_set_error(LC_EARG, "%s: expected %d inputs, got %d", fn, want, n);
  lc_status st = need_float_dtype(fn, "input", x->dtype);
  if (st) return st;
  if (!same_shape(y, x->ndim, x->shape)) {
    char a[256], b[256];
    return lc_set_error(LC_ESHAPE,
                        "%s: target shape %s does not match input shape %s (they must be the "
                        "same)",
                        fn, lc_shape_str(y->ndim, y->shape, a, sizeof a),
                        lc_shape_str(x->ndim, x->shape, b, sizeof b));
  }
  int k = 2;
  st = dense_as(fn, "input", x, x->ndim, x->shape, x->dtype, &o->x);
  if (!st) st = dense_as(fn, "target", y, x->ndim, x->shape, x->dtype, &o->y);
  if (!st && (flags & LC_LOSS_HAS_WEIGHT))
    st = dense_as(fn, "weight", in[k++], x->ndim, x->shape, x->dtype, &o->w);
  if (!st && (flags & LC_LOSS_HAS_POS_WEIGHT))
    st = dense_as(fn, "pos_weight", in[k++], x->ndim, x->shape, x->dtype, &o->pw);
  if (st) pw_release(o);
  return st;
}

static lc_status pw_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                            const lc_op_args *args, lc_tensor **out) {
  lc_pw_kind kind = (lc_pw_kind)op->code;
  const char *fn = op->name;
  lc_status st = lc_loss_check_reduction(fn, args->i[0], lc_pw_descs[kind].batchmean);
  if (st) return st;
  lc_reduction red = (lc_reduction)args->i[0];
  pw_operands o;
  if ((st = pw_prepare(fn, n, in, args->flags, &o))) return st;
  const lc_tensor *x = o.x;
  lc_dtype dt = x->dtype;
  pw_ctx c = {.kind = kind,
              .p = args->f[0],
              .n = x->numel,
              .x = lc_data(o.x),
              .y = lc_data(o.y),
              .w = o.w ? lc_data(o.w) : NULL,
              .pw = o.pw ? lc_data(o.pw) : NULL};
  if (kind == LC_PW_BCE) {
    /* PyTorch refuses probabilities outside [0, 1] (the logs would be nan) */
    for (int64_t i = 0; i < c.n; i++) {
      double v = dt == LC_FLOAT32 ? ((const float *)c.x)[i] : ((const double *)c.x)[i];
      if (!(v >= 0 && v <= 1)) {
        pw_release(&o);
        return lc_set_error(LC_EARG,
                            "%s: all elements of input should be between 0 and 1, got %g at "
                            "flat position %lld",
                            fn, v, (long long)i);
      }
    }
  }
  void (*kern)(void *, int64_t, int64_t) = dt == LC_FLOAT32 ? pw_fwd_f32 : pw_fwd_f64;
  int64_t nb = (c.n + L_BLOCK - 1) / L_BLOCK;
  lc_tensor *r = NULL;
  if (red == LC_REDUCTION_NONE) {
    st = lc_tensor_new(x->ndim, x->shape, dt, &r);
    if (!st) {
      c.out = lc_data(r);
      lc_parallel_for(nb, L_BLOCK * 8, kern, &c);
    }
  } else {
    c.partial = malloc((size_t)(nb > 0 ? nb : 1) * sizeof(double));
    if (!c.partial) st = lc_error_oom((size_t)nb * sizeof(double));
    if (!st) st = lc_tensor_new(0, NULL, dt, &r);
    if (!st) {
      lc_parallel_for(nb, L_BLOCK * 8, kern, &c);
      double s = sum_partials(c.partial, nb);
      if (red == LC_REDUCTION_MEAN) s /= (double)c.n; /* 0/0 = nan for an empty input */
      if (red == LC_REDUCTION_BATCHMEAN) s /= x->ndim > 0 ? (double)x->shape[0] : 1.0;
      lc_store_f64(lc_data(r), dt, 0, s);
    }
    free(c.partial);
  }
  pw_release(&o);
  if (st) {
    lc_release(r);
    return st;
  }
  *out = r;
  return LC_OK;
}

/* weight and pos_weight (inputs 2 and 3 when given) have no gradient */
static lc_status pw_no_weight_grads(const lc_op_ctx *ctx) {
  int flags = ctx->args->flags, k = 2;
  lc_status st = LC_OK;
  if (flags & LC_LOSS_HAS_WEIGHT) st = no_grad_for(ctx, k++, "weight");
  if (!st && (flags & LC_LOSS_HAS_POS_WEIGHT)) st = no_grad_for(ctx, k++, "pos_weight");
  return st;
}

static lc_status pw_backward(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  lc_pw_kind kind = (lc_pw_kind)ctx->op->code;
  int flags = ctx->args->flags;
  lc_status st = pw_no_weight_grads(ctx);
  if (st) return st;
  bool need_x = ctx->needs_grad[0], need_y = ctx->needs_grad[1];
  if (!need_x && !need_y) return LC_OK;
  lc_tensor *saved[4] = {NULL};
  for (int i = 0; i < ctx->n_saved && i < 4 && !st; i++)
    st = lc_ctx_saved(ctx, i, &saved[i]);
  if (st) return st;
  pw_operands o;
  if ((st = pw_prepare(ctx->op->name, ctx->n_saved, saved, flags, &o))) return st;
  lc_dtype dt = o.x->dtype;
  lc_reduction red = (lc_reduction)ctx->args->i[0];
  pw_ctx c = {.kind = kind,
              .p = ctx->args->f[0],
              .n = o.x->numel,
              .x = lc_data(o.x),
              .y = lc_data(o.y),
              .w = o.w ? lc_data(o.w) : NULL,
              .pw = o.pw ? lc_data(o.pw) : NULL};
  lc_tensor *gd = NULL, *gx = NULL, *gy = NULL;
  if (red == LC_REDUCTION_NONE) {
    st = dense_grad(g, dt, &gd);
    if (!st) c.g = lc_data(gd);
  } else {
    double s = 0;
    st = lc_item(g, &s);
    if (red == LC_REDUCTION_MEAN) s /= (double)c.n;
    if (red == LC_REDUCTION_BATCHMEAN) s /= o.x->ndim > 0 ? (double)o.x->shape[0] : 1.0;
    c.gscale = s;
  }
  if (!st && need_x && !(st = lc_tensor_new(o.x->ndim, o.x->shape, dt, &gx))) c.gx = lc_data(gx);
  if (!st && need_y && !(st = lc_tensor_new(o.x->ndim, o.x->shape, dt, &gy))) c.gy = lc_data(gy);
  if (!st) lc_parallel_for(c.n, 16, dt == LC_FLOAT32 ? pw_bwd_f32 : pw_bwd_f64, &c);
  lc_release(gd);
  pw_release(&o);
  if (st) {
    lc_release(gx);
    lc_release(gy);
    return st;
  }
  grad_in[0] = gx;
  grad_in[1] = gy;
  return LC_OK;
}

/* create_graph: pw_grad's derivatives as recorded ops, times the weight and the reduction's
 * scale of g. */
static lc_status pw_backward_graph(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  lc_pw_kind kind = (lc_pw_kind)ctx->op->code;
  int flags = ctx->args->flags, k = 2;
  lc_status st = pw_no_weight_grads(ctx);
  if (st) return st;
  const bool need_x = ctx->needs_grad[0], need_y = ctx->needs_grad[1];
  if (!need_x && !need_y) return LC_OK;
  lc_gb b = LC_GB_INIT(ctx);
  lc_tensor *x = lc_gb_saved(&b, 0), *y = lc_gb_saved(&b, 1), *w = NULL, *pw = NULL;
  k = 2;
  if (flags & LC_LOSS_HAS_WEIGHT) w = lc_gb_saved(&b, k++);
  if (flags & LC_LOSS_HAS_POS_WEIGHT) pw = lc_gb_saved(&b, k++);
  if (b.st) return lc_gb_end(&b, grad_in);
  const double p = ctx->args->f[0];
  lc_tensor *d = lc_gb_bin(&b, LC_SUB, x, y), *dx = NULL, *dy = NULL;
#define NEG(u) lc_gb_un(&b, LC_NEG, u)
  switch (kind) {
  case LC_PW_MSE: dx = lc_gb_sc(&b, LC_MUL, d, 2); break;
  case LC_PW_L1: dx = lc_gb_un(&b, LC_SIGN, d); break;
  case LC_PW_HUBER: {
    lc_op_args a = {.f = {-p, p}, .flags = LC_ARG_HAS_LO | LC_ARG_HAS_HI};
    dx = lc_gb_op(&b, &lc_op_clamp, 1, &d, &a);
    break;
  }
  case LC_PW_SMOOTH_L1:
    if (p == 0) {
      dx = lc_gb_un(&b, LC_SIGN, d);
    } else {
      lc_op_args a = {.f = {-1, 1}, .flags = LC_ARG_HAS_LO | LC_ARG_HAS_HI};
      lc_tensor *q = lc_gb_sc(&b, LC_DIV, d, p);
      dx = lc_gb_op(&b, &lc_op_clamp, 1, &q, &a);
    }
    break;
  case LC_PW_BCE: /* (x - y) / max(x (1 - x), 1e-12); dy = max(log1p(-x), -100) - max(log x, -100)
                   */
    dx = lc_gb_bin(
        &b, LC_DIV, d,
        lc_gb_sc(&b, LC_MAXIMUM, lc_gb_bin(&b, LC_MUL, x, lc_gb_rsc(&b, LC_SUB, 1, x)), 1e-12));
    if (need_y)
      dy = lc_gb_bin(&b, LC_SUB, lc_gb_sc(&b, LC_MAXIMUM, lc_gb_un(&b, LC_LOG1P, NEG(x)), -100),
                     lc_gb_sc(&b, LC_MAXIMUM, lc_gb_un(&b, LC_LOG, x), -100));
    break;
  case LC_PW_BCE_LOGITS: { /* (1 + (pw - 1) y) sigmoid(x) - pw y; dy = -x + (pw - 1) softplus(-x) */
    lc_tensor *sg = lc_gb_un(&b, LC_SIGMOID, x);
    if (!pw) {
      dx = lc_gb_bin(&b, LC_SUB, sg, y);
      dy = NEG(x);
    } else {
      lc_tensor *pm1 = lc_gb_sc(&b, LC_SUB, pw, 1);
      lc_tensor *lw = lc_gb_sc(&b, LC_ADD, lc_gb_bin(&b, LC_MUL, pm1, y), 1);
      dx = lc_gb_bin(&b, LC_SUB, lc_gb_bin(&b, LC_MUL, lw, sg), lc_gb_bin(&b, LC_MUL, pw, y));
      if (need_y) {
        lc_op_args sp = {.f = {1, 20}};
        lc_tensor *nx = NEG(x);
        lc_tensor *spn = lc_gb_op(&b, &lc_op_act[LC_ACT_SOFTPLUS], 1, &nx, &sp);
        dy = lc_gb_bin(&b, LC_ADD, nx, lc_gb_bin(&b, LC_MUL, pm1, spn));
      }
    }
    break;
  }
  case LC_PW_KL_DIV:
    if (p != 0) {
      lc_tensor *e = lc_gb_un(&b, LC_EXP, y);
      dx = NEG(e);
      if (need_y) dy = lc_gb_bin(&b, LC_MUL, e, lc_gb_sc(&b, LC_ADD, NEG(d), 1));
    } else {
      dx = NEG(y);
      if (need_y) dy = lc_gb_bin(&b, LC_SUB, lc_gb_sc(&b, LC_ADD, lc_gb_un(&b, LC_LOG, y), 1), x);
    }
    break;
  default: b.st = lc_set_error(LC_EGRAD, "%s: no graph backward", ctx->op->name);
  }
  /* the losses symmetric in d have dy = -dx */
  if (need_y && !dy && !b.st) dy = NEG(dx);
#undef NEG
  /* the reduction's scale: none keeps g's shape; mean, sum and batchmean have a 0-dim g */
  lc_reduction red = (lc_reduction)ctx->args->i[0];
  lc_tensor *gs = (lc_tensor *)g;
  if (red == LC_REDUCTION_MEAN && !b.st) gs = lc_gb_sc(&b, LC_DIV, g, (double)x->numel);
  if (red == LC_REDUCTION_BATCHMEAN && !b.st)
    gs = lc_gb_sc(&b, LC_DIV, g, x->ndim > 0 ? (double)x->shape[0] : 1.0);
  if (w) gs = lc_gb_bin(&b, LC_MUL, gs, w);
  if (need_x) lc_gb_grad(&b, 0, lc_gb_bin(&b, LC_MUL, dx, gs), grad_in);
  if (need_y) lc_gb_grad(&b, 1, lc_gb_bin(&b, LC_MUL, dy, gs), grad_in);
  return lc_gb_end(&b, grad_in);
}

/* One op and one descriptor per row of loss_list.h. */
#define PW_DEF_(CODE, NAME, Module, GradFn, WEIGHTS, PARAM, BATCHMEAN)                             \
  [LC_PW_##CODE] = {.name = #NAME,                                                                 \
                    .grad_fn_name = GradFn,                                                        \
                    .n_inputs = -1,                                                                \
                    .n_outputs = 1,                                                                \
                    .code = LC_PW_##CODE,                                                          \
                    .save = LC_SAVE_ALL_INPUTS,                                                    \
                    .forward = pw_forward,                                                         \
                    .backward = pw_backward,                                                       \
                    .backward_graph = pw_backward_graph},
const lc_op_def lc_op_pw_loss[LC_PW_COUNT] = {LC_PW_LOSS_LIST(PW_DEF_)};
#undef PW_DEF_

#define PW_DESC_(CODE, NAME, Module, GradFn, WEIGHTS, PARAM, BATCHMEAN)                            \
  [LC_PW_##CODE] = {.name = #NAME,                                                                 \
                    .module = Module,                                                              \
                    .weight = LC_PW_W_WEIGHT(WEIGHTS),                                             \
                    .pos_weight = LC_PW_W_POS_WEIGHT(WEIGHTS),                                     \
                    .batchmean = BATCHMEAN,                                                        \
                    .param = {.name = LC_PW_P_NAME(PARAM),                                         \
                              .def = LC_PW_P_DEFAULT(PARAM),                                       \
                              .flag = LC_PW_P_FLAG(PARAM),                                         \
                              .rule = LC_PW_P_RULE(PARAM)}},
const lc_pw_desc lc_pw_descs[LC_PW_COUNT] = {LC_PW_LOSS_LIST(PW_DESC_)};
#undef PW_DESC_

/* ================================================================ class losses */

/* A class-loss call laid out as input {N, C, S} (S = product of the dims after C). */
typedef struct cl_ctx {
  bool nll, prob;
  int64_t N, C, S, rows; /* rows = N * S samples */
  lc_dtype dt;
  const void *x;    /* input, contiguous */
  const int64_t *t; /* class targets (rows), 0-based */
  const void *y;    /* probability targets, contiguous, x's dtype */
  const double *w;  /* C weights or NULL */
  double wsum;      /* sum of the weights (C without weights) */
  bool has_ign;
  int64_t ign;
  double eps; /* label smoothing */
  /* forward */
  double *rowloss; /* rows: per-sample losses */
  double *lse;     /* rows: log-sum-exp per sample (cross_entropy) */
  /* backward */
  const double *lse_in;
  double *gr; /* rows: the gradient scale of each sample */
  void *gx, *gy;
} cl_ctx;

static inline bool cl_ignored(const cl_ctx *c, int64_t r) {
  return !c->prob && c->has_ign && c->t[r] == c->ign;
}

#define CL_KERNELS(T, SUF)                                                                         \
  static void cl_fwd_##SUF(void *vc, int64_t r0, int64_t r1) {                                     \
    const cl_ctx *c = vc;                                                                          \
    const int64_t C = c->C, S = c->S;                                                              \
    const double k = c->eps / (double)C;                                                           \
    for (int64_t r = r0; r < r1; r++) {                                                            \
      const int64_t n = r / S, s = r % S;                                                          \
      const T *restrict xr = (const T *)c->x + n * C * S + s;                                      \
      if (cl_ignored(c, r)) {                                                                      \
        c->rowloss[r] = 0;                                                                         \
        if (c->lse) c->lse[r] = 0;                                                                 \
        continue;                                                                                  \
      }                                                                                            \
      if (c->nll) {                                                                                \
        int64_t ti = c->t[r];                                                                      \
        c->rowloss[r] = -(c->w ? c->w[ti] : 1.0) * (double)xr[ti * S];                             \
        continue;                                                                                  \
      }                                                                                            \
      /* log-sum-exp around the max, so exp never overflows */                                     \
      double m = -INFINITY, se = 0;                                                                \
      if (S == 1) {                                                                                \
        for (int64_t j = 0; j < C; j++)                                                            \
          m = (double)xr[j] > m ? (double)xr[j] : m;                                               \
        if (m == -INFINITY || m == INFINITY) m = 0; /* all -inf, or inf: let it be nan/inf */      \
        for (int64_t j = 0; j < C; j++)                                                            \
          se += exp((double)xr[j] - m);                                                            \
      } else {                                                                                     \
        for (int64_t j = 0; j < C; j++)                                                            \
          m = (double)xr[j * S] > m ? (double)xr[j * S] : m;                                       \
        if (m == -INFINITY || m == INFINITY) m = 0;                                                \
        for (int64_t j = 0; j < C; j++)                                                            \
          se += exp((double)xr[j * S] - m);                                                        \
      }                                                                                            \
      const double lse = m + log(se);                                                              \
      c->lse[r] = lse;                                                                             \
      double loss = 0;                                                                             \
      if (c->prob) {                                                                               \
        const T *restrict yr = (const T *)c->y + n * C * S + s;                                    \
        for (int64_t j = 0; j < C; j++) {                                                          \
          double yt = (1 - c->eps) * (double)yr[j * S] + k;                                        \
          loss -= (c->w ? c->w[j] : 1.0) * yt * ((double)xr[j * S] - lse);                         \
        }                                                                                          \
      } else {                                                                                     \
        int64_t ti = c->t[r];                                                                      \
        loss = (1 - c->eps) * (c->w ? c->w[ti] : 1.0) * (lse - (double)xr[ti * S]);                \
        if (c->eps > 0) {                                                                          \
          double sx = 0;                                                                           \
          for (int64_t j = 0; j < C; j++)                                                          \
            sx += (c->w ? c->w[j] : 1.0) * (double)xr[j * S];                                      \
          loss += k * (lse * c->wsum - sx);                                                        \
        }                                                                                          \
      }                                                                                            \
      c->rowloss[r] = loss;                                                                        \
    }                                                                                              \
  }                                                                                                \
  static void cl_bwd_##SUF(void *vc, int64_t r0, int64_t r1) {                                     \
    const cl_ctx *c = vc;                                                                          \
    const int64_t C = c->C, S = c->S;                                                              \
    const double k = c->eps / (double)C;                                                           \
    for (int64_t r = r0; r < r1; r++) {                                                            \
      const int64_t n = r / S, s = r % S, base = n * C * S + s;                                    \
      const T *restrict xr = (const T *)c->x + base;                                               \
      T *restrict gxr = c->gx ? (T *)c->gx + base : NULL;                                          \
      T *restrict gyr = c->gy ? (T *)c->gy + base : NULL;                                          \
      const double gr = c->gr[r];                                                                  \
      if (cl_ignored(c, r) || c->nll) {                                                            \
        if (gxr) {                                                                                 \
          for (int64_t j = 0; j < C; j++)                                                          \
            gxr[j * S] = 0;                                                                        \
          if (c->nll && !cl_ignored(c, r))                                                         \
            gxr[c->t[r] * S] = (T)(-gr * (c->w ? c->w[c->t[r]] : 1.0));                            \
        }                                                                                          \
        continue;                                                                                  \
      }                                                                                            \
      const double lse = c->lse_in[r];                                                             \
      if (c->prob) {                                                                               \
        const T *restrict yr = (const T *)c->y + base;                                             \
        double A = 0; /* sum_j w_j yt_j */                                                         \
        for (int64_t j = 0; j < C; j++)                                                            \
          A += (c->w ? c->w[j] : 1.0) * ((1 - c->eps) * (double)yr[j * S] + k);                    \
        for (int64_t j = 0; j < C; j++) {                                                          \
          double wj = c->w ? c->w[j] : 1.0, yt = (1 - c->eps) * (double)yr[j * S] + k;             \
          double x = (double)xr[j * S];                                                            \
          if (gxr) gxr[j * S] = (T)(gr * (A * exp(x - lse) - wj * yt));                            \
          if (gyr) gyr[j * S] = (T)(-gr * (1 - c->eps) * wj * (x - lse));                          \
        }                                                                                          \
        continue;                                                                                  \
      }                                                                                            \
      /* softmax - onehot, scaled; label smoothing adds k (wsum p_j - w_j) */                      \
      const int64_t ti = c->t[r];                                                                  \
      const double a = gr * (1 - c->eps) * (c->w ? c->w[ti] : 1.0), b = gr * k;                    \
      if (S == 1 && !c->w) {                                                                       \
        const double pa = a + b * c->wsum;                                                         \
        for (int64_t j = 0; j < C; j++)                                                            \
          gxr[j] = (T)(pa * exp((double)xr[j] - lse) - b);                                         \
      } else {                                                                                     \
        for (int64_t j = 0; j < C; j++) {                                                          \
          double p = exp((double)xr[j * S] - lse);                                                 \
          gxr[j * S] = (T)(a * p + b * (c->wsum * p - (c->w ? c->w[j] : 1.0)));                    \
        }                                                                                          \
      }                                                                                            \
      gxr[ti * S] = (T)((double)gxr[ti * S] - a);                                                  \
    }                                                                                              \
  }

CL_KERNELS(float, f32)
CL_KERNELS(double, f64)

/* Owned buffers of a prepared class-loss call. */
typedef struct cl_operands {
  lc_tensor *x, *y; /* dense input, dense probability target */
  int64_t *t;       /* malloc'ed 0-based targets (or NULL when tview is used) */
  double *w;
} cl_operands;

static void cl_release(cl_operands *o) {
  lc_release(o->x);
  lc_release(o->y);
  free(o->t);
  free(o->w);
}

lc_status lc_loss_check_label_smoothing(const char *fn, bool nll, double eps) {
  if (!(eps >= 0 && eps <= 1))
    return lc_set_error(LC_EARG, "%s: label_smoothing must be in [0, 1], got %g", fn, eps);
  if (nll && eps != 0)
    return lc_set_error(LC_EARG, "%s: label_smoothing is not an option of nll_loss", fn);
  return LC_OK;
}

/* Checks shapes, dtypes, target values and options; fills c and o. */
static lc_status cl_prepare(const char *fn, bool nll, int n, lc_tensor *const *in,
                            const lc_op_args *args, cl_ctx *c, cl_operands *o) {
  memset(c, 0, sizeof *c);
  memset(o, 0, sizeof *o);
  const lc_tensor *x = in[0], *t = in[1];
  bool has_w = (args->flags & LC_LOSS_HAS_WEIGHT) != 0;
  if (n != 2 + has_w)
    return lc_set_error(LC_EARG, "%s: expected %d inputs, got %d", fn, 2 + has_w, n);
  lc_status st = lc_loss_check_reduction(fn, args->i[0], false);
  if (!st) st = need_float_dtype(fn, "input", x->dtype);
  if (st) return st;
  char a[256], b[256], c3[256];
  if (x->ndim < 1)
    return lc_set_error(LC_ESHAPE,
                        "%s: input must have a class dim ({C}, {N, C} or {N, C, d1, "
                        "...}), got a 0-dim tensor",
                        fn);
  c->nll = nll;
  c->dt = x->dtype;
  c->N = x->ndim == 1 ? 1 : x->shape[0];
  c->C = x->ndim == 1 ? x->shape[0] : x->shape[1];
  c->S = 1;
  for (int d = 2; d < x->ndim; d++)
    c->S *= x->shape[d];
  c->rows = c->N * c->S;
  c->eps = args->f[0];
  c->has_ign = (args->flags & LC_LOSS_HAS_IGNORE) != 0;
  c->ign = args->i[1];
  if ((st = lc_loss_check_label_smoothing(fn, nll, c->eps))) return st;
  c->prob = is_float(t->dtype);
  if (c->prob) {
    if (nll)
      return lc_set_error(LC_EDTYPE, "%s: target must hold class indices (int64 or int32), got %s",
                          fn, lc_dtype_name(t->dtype));
    if (!same_shape(t, x->ndim, x->shape))
      return lc_set_error(LC_ESHAPE,
                          "%s: a float target holds class probabilities and must have the "
                          "input's shape %s, got %s (class indices must be an int64 or int32 "
                          "tensor)",
                          fn, lc_shape_str(x->ndim, x->shape, a, sizeof a),
                          lc_shape_str(t->ndim, t->shape, b, sizeof b));
    if (c->has_ign)
      return lc_set_error(LC_EARG,
                          "%s: ignore_index is not supported with class-probability "
                          "targets",
                          fn);
  } else {
    if (t->dtype != LC_INT64 && t->dtype != LC_INT32)
      return lc_set_error(LC_EDTYPE,
                          "%s: target must be class indices (int64 or int32) or class "
                          "probabilities (float), got %s",
                          fn, lc_dtype_name(t->dtype));
    /* expected target shape: input without its class dim */
    int64_t ts[LC_MAX_DIMS];
    int tn = 0;
    if (x->ndim >= 2) {
      ts[tn++] = x->shape[0];
      for (int d = 2; d < x->ndim; d++)
        ts[tn++] = x->shape[d];
    }
    if (!same_shape(t, tn, ts))
      return lc_set_error(
          LC_ESHAPE, "%s: expected target of shape %s for input of shape %s, got %s", fn,
          lc_shape_str(tn, ts, a, sizeof a), lc_shape_str(x->ndim, x->shape, b, sizeof b),
          lc_shape_str(t->ndim, t->shape, c3, sizeof c3));
  }
  if (has_w) {
    const lc_tensor *w = in[2];
    if ((st = need_float_dtype(fn, "weight", w->dtype))) return st;
    if (w->ndim != 1 || w->shape[0] != c->C)
      return lc_set_error(LC_ESHAPE, "%s: weight must have shape {%lld} (one per class), got %s",
                          fn, (long long)c->C, lc_shape_str(w->ndim, w->shape, a, sizeof a));
  }

  /* buffers */
  st = dense_as(fn, "input", x, x->ndim, x->shape, x->dtype, &o->x);
  if (st) goto fail;
  c->x = lc_data(o->x);
  if (c->prob) {
    if ((st = dense_as(fn, "target", t, x->ndim, x->shape, x->dtype, &o->y))) goto fail;
    c->y = lc_data(o->y);
  } else {
    o->t = malloc((size_t)(c->rows > 0 ? c->rows : 1) * sizeof(int64_t));
    if (!o->t) {
      st = lc_error_oom((size_t)c->rows * sizeof(int64_t));
      goto fail;
    }
    if (c->rows > 0 && (st = lc_copy_to_buffer(t, LC_INT64, o->t))) goto fail;
    c->t = o->t;
    for (int64_t r = 0; r < c->rows; r++) {
      int64_t v = o->t[r];
      if ((v < 0 || v >= c->C) && !(c->has_ign && v == c->ign)) {
        char where[LC_MAX_DIMS * 28 + 4];
        lc_marked_position(t->ndim, t->shape, r, where, sizeof where);
        st = lc_set_error(LC_EINDEX,
                          "%s: target%s = " LC_POS_I
                          " is out of range for %lld classes (expected " LC_POS_I ".." LC_POS_I
                          "%s)",
                          fn, where, (long long)v, (long long)c->C, 0LL, (long long)c->C - 1,
                          c->has_ign ? ", or ignore_index" : "");
        goto fail;
      }
    }
  }
  if (has_w) {
    o->w = malloc((size_t)(c->C > 0 ? c->C : 1) * sizeof(double));
    if (!o->w) {
      st = lc_error_oom((size_t)c->C * sizeof(double));
      goto fail;
    }
    if (c->C > 0 && (st = lc_copy_to_buffer(in[2], LC_FLOAT64, o->w))) goto fail;
    c->w = o->w;
    for (int64_t j = 0; j < c->C; j++)
      c->wsum += o->w[j];
  } else {
    c->wsum = (double)c->C;
  }
  return LC_OK;
fail:
  cl_release(o);
  return st;
}

/* The denominator of reduction "mean": the summed weight of the samples not ignored (class
 * targets: PyTorch's weighted mean), or the number of samples (probability targets). */
static double cl_mean_denominator(const cl_ctx *c) {
  /* no classes: an empty input, whose mean is nan as PyTorch's (0 / 0), whatever N is */
  if (c->prob) return c->C > 0 ? (double)c->rows : 0.0;
  double W = 0;
  for (int64_t r = 0; r < c->rows; r++)
    if (!cl_ignored(c, r)) W += c->w ? c->w[c->t[r]] : 1.0;
  return W;
}

/* Output shape of reduction none: input without its class dim. */
static int cl_out_shape(const lc_tensor *x, int64_t *shape) {
  int nd = 0;
  if (x->ndim >= 2) {
    shape[nd++] = x->shape[0];
    for (int d = 2; d < x->ndim; d++)
      shape[nd++] = x->shape[d];
  }
  return nd;
}

static lc_status cl_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                            const lc_op_args *args, lc_tensor **out) {
  bool nll = op == &lc_op_nll_loss;
  cl_ctx c;
  cl_operands o;
  lc_status st = cl_prepare(op->name, nll, n, in, args, &c, &o);
  if (st) return st;
  lc_reduction red = (lc_reduction)args->i[0];
  lc_tensor *r = NULL, *lse = NULL;
  int64_t rows = c.rows;
  c.rowloss = malloc((size_t)(rows > 0 ? rows : 1) * sizeof(double));
  if (!c.rowloss) st = lc_error_oom((size_t)rows * sizeof(double));
  if (!st && !nll) {
    st = lc_tensor_new(1, &rows, LC_FLOAT64, &lse);
    if (!st) c.lse = lc_data(lse);
  }
  if (!st) {
    lc_parallel_for(rows, c.C * 4 + 8, c.dt == LC_FLOAT32 ? cl_fwd_f32 : cl_fwd_f64, &c);
    int64_t shape[LC_MAX_DIMS];
    if (red == LC_REDUCTION_NONE) {
      int nd = cl_out_shape(in[0], shape);
      st = lc_tensor_new(nd, shape, c.dt, &r);
      for (int64_t i = 0; !st && i < rows; i++)
        lc_store_f64(lc_data(r), c.dt, i, c.rowloss[i]);
    } else {
      /* fixed blocks, merged in order: deterministic */
      double s = 0;
      for (int64_t b0 = 0; b0 < rows; b0 += L_BLOCK) {
        double p = 0;
        for (int64_t i = b0; i < rows && i < b0 + L_BLOCK; i++)
          p += c.rowloss[i];
        s += p;
      }
      if (red == LC_REDUCTION_MEAN) s /= cl_mean_denominator(&c);
      st = lc_tensor_new(0, NULL, c.dt, &r);
      if (!st) lc_store_f64(lc_data(r), c.dt, 0, s);
    }
  }
  free(c.rowloss);
  cl_release(&o);
  if (st) {
    lc_release(r);
    lc_release(lse);
    return st;
  }
  out[0] = r;
  if (!nll) out[1] = lse;
  return LC_OK;
}

static lc_status cl_backward(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  bool nll = ctx->op == &lc_op_nll_loss;
  lc_status st = no_grad_for(ctx, 2, "weight");
  if (st) return st;
  bool need_x = ctx->needs_grad[0], need_y = ctx->needs_grad[1];
  if (!need_x && !need_y) return LC_OK;
  int nin = ctx->n_inputs;
  lc_tensor *saved[4] = {NULL};
  for (int i = 0; i < ctx->n_saved && i < 4 && !st; i++)
    st = lc_ctx_saved(ctx, i, &saved[i]);
  if (st) return st;
  cl_ctx c;
  cl_operands o;
  if ((st = cl_prepare(ctx->op->name, nll, nin, saved, ctx->args, &c, &o))) return st;
  if (!nll) c.lse_in = lc_data(saved[nin]); /* out[1], saved after the inputs */
  lc_reduction red = (lc_reduction)ctx->args->i[0];
  lc_dtype dt = c.dt;
  lc_tensor *gd = NULL, *gx = NULL, *gy = NULL;
  c.gr = malloc((size_t)(c.rows > 0 ? c.rows : 1) * sizeof(double));
  if (!c.gr) st = lc_error_oom((size_t)c.rows * sizeof(double));
  if (!st && red == LC_REDUCTION_NONE) {
    st = dense_grad(g, dt, &gd);
    for (int64_t r = 0; !st && r < c.rows; r++)
      c.gr[r] = lc_load_f64(lc_data(gd), dt, r);
  } else if (!st) {
    double s = 0;
    st = lc_item(g, &s);
    if (red == LC_REDUCTION_MEAN) s /= cl_mean_denominator(&c);
    for (int64_t r = 0; r < c.rows; r++)
      c.gr[r] = s;
  }
  const lc_tensor *x = o.x;
  if (!st && need_x && !(st = lc_tensor_new(x->ndim, x->shape, dt, &gx))) c.gx = lc_data(gx);
  if (!st && need_y && c.prob && !(st = lc_tensor_new(x->ndim, x->shape, dt, &gy)))
    c.gy = lc_data(gy);
  if (!st) lc_parallel_for(c.rows, c.C * 4 + 8, dt == LC_FLOAT32 ? cl_bwd_f32 : cl_bwd_f64, &c);
  free(c.gr);
  lc_release(gd);
  cl_release(&o);
  if (st) {
    lc_release(gx);
    lc_release(gy);
    return st;
  }
  grad_in[0] = gx;
  grad_in[1] = gy;
  return LC_OK;
}

/* create_graph. nll_loss is linear in its input, so its gradient is G1 g, where G1 (the
 * gradient for a unit g: the weighted one-hot targets over the reduction's denominator) is a
 * constant that the plain backward computes. cross_entropy is a loss linear in log_softmax(x)
 * (class targets, probabilities and label smoothing alike): the same G1 g, G1 its derivative
 * in log_softmax, taken back through a recorded log_softmax of the input. The plain backward
 * gives that G1 when run with an infinite logsumexp (every softmax term exp(x - lse) is 0). */
/* cross_entropy with class-probability targets q, as recorded ops (the target may require grad):
 * with qt = (1 - eps) q + eps / C and w the class weights, loss_row = -sum_c w qt lsm, so
 * d/dlsm = -w qt g / den and d/dq = -(1 - eps) w lsm g / den (den: the rows for mean, else 1). */
static lc_status cl_prob_backward_graph(const lc_op_ctx *ctx, const lc_tensor *g,
                                        lc_tensor **grad_in) {
  lc_gb b = LC_GB_INIT(ctx);
  lc_tensor *x = lc_gb_saved(&b, 0), *q = lc_gb_saved(&b, 1);
  lc_tensor *w = ctx->n_inputs == 3 ? lc_gb_saved(&b, 2) : NULL;
  if (b.st) return lc_gb_end(&b, grad_in);
  const int cdim = x->ndim >= 2 ? 1 : 0;
  const int64_t C = x->ndim ? x->shape[cdim] : 1;
  const double eps = ctx->args->f[0];
  const lc_reduction red = (lc_reduction)ctx->args->i[0];
  const double den = red == LC_REDUCTION_MEAN ? (C > 0 ? (double)(x->numel / C) : 0.0) : 1.0;
  /* g with the class dim as 1 (reduction none), else the scalar */
  lc_tensor *gb = (lc_tensor *)g;
  if (g->ndim > 0 && g->ndim < x->ndim) {
    int64_t sh[LC_MAX_DIMS];
    for (int d = 0, j = 0; d < x->ndim; d++)
      sh[d] = d == cdim ? 1 : g->shape[j++];
    gb = lc_gb_reshape(&b, g, x->ndim, sh);
  }
  lc_tensor *scale = lc_gb_sc(&b, LC_DIV, gb, -den); /* -g / den */
  lc_tensor *wb = NULL;
  if (w) {
    int64_t sh[LC_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++)
      sh[d] = d == cdim ? C : 1;
    wb = lc_gb_reshape(&b, lc_gb_cast(&b, w, x->dtype), x->ndim, sh);
  }
  lc_op_args a = {.i = {cdim}, .ni = 1};
  lc_tensor *lsm = lc_gb_op(&b, &lc_op_log_softmax, 1, &x, &a);
  if (ctx->needs_grad[0]) {
    lc_tensor *qt = lc_gb_sc(&b, LC_ADD, lc_gb_sc(&b, LC_MUL, q, 1 - eps), C > 0 ? eps / C : 0);
    lc_tensor *l = lc_gb_bin(&b, LC_MUL, wb ? lc_gb_bin(&b, LC_MUL, qt, wb) : qt, scale);
    bool rd[LC_MAX_DIMS] = {false};
    rd[cdim] = x->ndim > 0;
    lc_tensor *r = lc_gb_bin(
        &b, LC_SUB, l, lc_gb_bin(&b, LC_MUL, lc_gb_un(&b, LC_EXP, lsm), lc_gb_sum_keep(&b, l, rd)));
    lc_gb_grad(&b, 0, r, grad_in);
  }
  if (ctx->needs_grad[1]) {
    lc_tensor *l = wb ? lc_gb_bin(&b, LC_MUL, lsm, wb) : lsm;
    lc_gb_grad(&b, 1, lc_gb_sc(&b, LC_MUL, lc_gb_bin(&b, LC_MUL, l, scale), 1 - eps), grad_in);
  }
  return lc_gb_end(&b, grad_in);
}

static lc_status cl_backward_graph(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  const bool nll = ctx->op == &lc_op_nll_loss;
  lc_status st = no_grad_for(ctx, 2, "weight");
  if (st) return st;
  if (!nll && lc_dtype_is_float(ctx->in[1].dtype)) return cl_prob_backward_graph(ctx, g, grad_in);
  if (ctx->needs_grad[1])
    return lc_set_error(LC_EGRAD,
                        "%s: higher-order gradients for a target that requires grad are not "
                        "implemented yet",
                        ctx->op->name);
  if (!ctx->needs_grad[0]) return LC_OK;
  lc_gb b = LC_GB_INIT(ctx);
  lc_tensor *x = lc_gb_saved(&b, 0);
  if (b.st) return lc_gb_end(&b, grad_in);
  const int nin = ctx->n_inputs;
  lc_tensor *ones = NULL, *gi[4] = {NULL}, *lse_inf = NULL;
  b.st = lc_tensor_new(g->ndim, g->shape, g->dtype, &ones);
  if (!b.st) b.st = lc_k_fill(ones, 1.0);
  lc_gb_keep(&b, ones);
  lc_tensor *saved[5] = {NULL};
  uint64_t version[5] = {0};
  if (!b.st && !nll) {
    int64_t C = x->ndim >= 2 ? x->shape[1] : x->ndim == 1 ? x->shape[0] : 1;
    int64_t rows = C > 0 ? x->numel / C : 0;
    b.st = lc_tensor_new(1, &rows, LC_FLOAT64, &lse_inf);
    if (!b.st) b.st = lc_k_fill(lse_inf, INFINITY);
    lc_gb_keep(&b, lse_inf);
    for (int k = 0; k < nin && k < 4; k++) {
      saved[k] = ctx->saved[k];
      version[k] = ctx->saved_version[k];
    }
    saved[nin] = lse_inf;
    version[nin] = lse_inf ? lc_version(lse_inf) : 0;
  }
  if (!b.st) {
    bool ng[4] = {true, false, false, false};
    lc_op_ctx unit = *ctx;
    unit.needs_grad = ng;
    unit.run = lc_op_run;
    unit.create_graph = false;
    if (nll) {
      unit.n_saved = nin; /* nll saves the inputs only */
    } else {
      unit.saved = saved;
      unit.saved_version = version;
    }
    b.st = cl_backward(&unit, ones, gi);
  }
  lc_tensor *g1 = lc_gb_keep(&b, gi[0]);
  if (b.st) return lc_gb_end(&b, grad_in);
  /* g per row: reduction none gives g the input's shape without the class dim */
  const int cdim = x->ndim >= 2 ? 1 : 0;
  lc_tensor *gb = (lc_tensor *)g;
  if (g->ndim > 0 && g->ndim < x->ndim) {
    int64_t sh[LC_MAX_DIMS];
    for (int d = 0, j = 0; d < x->ndim; d++)
      sh[d] = d == cdim ? 1 : g->shape[j++];
    gb = lc_gb_reshape(&b, g, x->ndim, sh);
  }
  lc_tensor *r = lc_gb_bin(&b, LC_MUL, g1, gb);
  if (!nll) {
    lc_op_args a = {.i = {cdim}, .ni = 1};
    lc_tensor *lsm = lc_gb_op(&b, &lc_op_log_softmax, 1, &x, &a);
    bool red[LC_MAX_DIMS] = {false};
    red[cdim] = x->ndim > 0;
    r = lc_gb_bin(&b, LC_SUB, r,
                  lc_gb_bin(&b, LC_MUL, lc_gb_un(&b, LC_EXP, lsm), lc_gb_sum_keep(&b, r, red)));
  }
  lc_gb_grad(&b, 0, r, grad_in);
  return lc_gb_end(&b, grad_in);
}

const lc_op_def lc_op_cross_entropy = {
    .name = "cross_entropy",
    .grad_fn_name = "CrossEntropyLossBackward",
    .n_inputs = -1,
    .n_outputs = 2,
    .save = LC_SAVE_ALL_INPUTS | LC_SAVE_OUT(1),
    .forward = cl_forward,
    .backward = cl_backward,
    .backward_graph = cl_backward_graph,
};

const lc_op_def lc_op_nll_loss = {
    .name = "nll_loss",
    .grad_fn_name = "NllLossBackward",
    .n_inputs = -1,
    .n_outputs = 1,
    .save = LC_SAVE_ALL_INPUTS,
    .forward = cl_forward,
    .backward = cl_backward,
    .backward_graph = cl_backward_graph,
};
