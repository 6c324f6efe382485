/*
 * optim_kernels.c - the fused update loops of the optimizers, one per kind and dtype.
 *
 * Each loop follows PyTorch 1.13's single-tensor code (torch/optim/<kind>.py) operation by
 * operation, in the parameter's dtype, with the Python-side scalars (1 - beta1, -lr, ...)
 * computed in double and then converted, as ATen does. The per-element order of the tensor
 * ops is kept (e.g. addcdiv(p, m, d, value=v) is p + v * m / d), so float32 results agree
 * with PyTorch's to about an ulp (ATen may fuse some multiply-adds).
 */
#include "optim_internal.h"

#include <math.h>

/* Threads only for large parameters: ~this many flops per element. */
#define COST_SGD 4
#define COST_ADAM 12

/* Each kind has an always-inlined body taking its option flags as parameters; the entry point
 * calls it with every combination of literal flags, so each combination is compiled into its
 * own branch-free loop (the compiler does not unswitch this many flags by itself, and a
 * conditional store through a maybe-NULL buffer blocks vectorisation). maximize is a sign
 * (-1 * g is exactly -g), AdamW's decay a factor (exactly 1 for Adam). */
#define INLINE static inline __attribute__((always_inline))

#define DEFINE_KERNELS(T, S, SQRT)                                                                 \
  INLINE void sgd_body_##S(const lc_optim_kctx *c, int64_t b, int64_t e, bool has_wd,              \
                           bool has_mom, bool nesterov, bool init) {                               \
    const lc_optim_options *o = c->opts;                                                           \
    T *restrict p = c->p;                                                                          \
    const T *restrict g = c->g;                                                                    \
    T *restrict buf = c->b[0];                                                                     \
    const T sgn = o->maximize ? (T)-1 : (T)1, wd = (T)o->weight_decay;                             \
    const T mom = (T)o->momentum, damp1 = (T)(1 - o->dampening), neglr = (T)(-o->lr);              \
    for (int64_t i = b; i < e; i++) {                                                              \
      T d = sgn * g[i];                                                                            \
      if (has_wd) d = d + wd * p[i];                                                               \
      if (has_mom) {                                                                               \
        /* first step: buf = clone(d); then buf = buf * momentum + (1 - dampening) * d */          \
        T bb = init ? d : buf[i] * mom + damp1 * d;                                                \
        buf[i] = bb;                                                                               \
        d = nesterov ? d + mom * bb : bb;                                                          \
      }                                                                                            \
      p[i] = p[i] + neglr * d;                                                                     \
    }                                                                                              \
  }                                                                                                \
  static void sgd_##S(void *vc, int64_t b, int64_t e) {                                            \
    const lc_optim_kctx *c = vc;                                                                   \
    const lc_optim_options *o = c->opts;                                                           \
    bool wd = o->weight_decay != 0, mom = o->momentum != 0 && c->b[0];                             \
    if (!mom) {                                                                                    \
      if (wd)                                                                                      \
        sgd_body_##S(c, b, e, true, false, false, false);                                          \
      else                                                                                         \
        sgd_body_##S(c, b, e, false, false, false, false);                                         \
    } else if (c->init) {                                                                          \
      if (o->nesterov)                                                                             \
        sgd_body_##S(c, b, e, wd, true, true, true);                                               \
      else                                                                                         \
        sgd_body_##S(c, b, e, wd, true, false, true);                                              \
    } else if (o->nesterov) {                                                                      \
      if (wd)                                                                                      \
        sgd_body_##S(c, b, e, true, true, true, false);                                            \
      else                                                                                         \
        sgd_body_##S(c, b, e, false, true, true, false);                                           \
    } else {                                                                                       \
      if (wd)                                                                                      \
        sgd_body_##S(c, b, e, true, true, false, false);                                           \
      else                                                                                         \
        sgd_body_##S(c, b, e, false, true, false, false);                                          \
    }                                                                                              \
  }                                                                                                \
                                                                                                   \
  /* Adam and AdamW (decoupled: p *= 1 - lr * weight_decay before the moments). */                 \
  INLINE void adam_body_##S(const lc_optim_kctx *c, int64_t b, int64_t e, bool has_wd, bool ams) { \
    const lc_optim_options *o = c->opts;                                                           \
    T *restrict p = c->p;                                                                          \
    const T *restrict g = c->g;                                                                    \
    T *restrict m = c->b[0], *restrict v = c->b[1], *restrict vmax = c->b[2];                      \
    const bool adamw = c->kind == LC_OPTIM_ADAMW;                                                  \
    const T sgn = o->maximize ? (T)-1 : (T)1, wd = (T)o->weight_decay;                             \
    const T decay = adamw ? (T)(1 - o->lr * o->weight_decay) : (T)1;                               \
    const T b1 = (T)o->beta1, omb1 = (T)(1 - o->beta1);                                            \
    const T b2 = (T)o->beta2, omb2 = (T)(1 - o->beta2);                                            \
    const T bc2s = (T)c->bc2_sqrt, eps = (T)o->eps, negss = (T)(-c->step_size);                    \
    for (int64_t i = b; i < e; i++) {                                                              \
      T d = sgn * g[i];                                                                            \
      T pi = p[i] * decay;                                                                         \
      if (has_wd) d = d + wd * pi;                                                                 \
      T mi = m[i] * b1 + omb1 * d;                                                                 \
      T vi = v[i] * b2 + omb2 * d * d;                                                             \
      m[i] = mi;                                                                                   \
      v[i] = vi;                                                                                   \
      if (ams) {                                                                                   \
        vi = vmax[i] < vi ? vi : vmax[i];                                                          \
        vmax[i] = vi;                                                                              \
      }                                                                                            \
      T den = SQRT(vi) / bc2s + eps;                                                               \
      p[i] = pi + negss * mi / den;                                                                \
    }                                                                                              \
  }                                                                                                \
  static void adam_##S(void *vc, int64_t b, int64_t e) {                                           \
    const lc_optim_kctx *c = vc;                                                                   \
    const lc_optim_options *o = c->opts;                                                           \
    /* AdamW never adds the decay to the gradient */                                               \
    bool wd = c->kind == LC_OPTIM_ADAM && o->weight_decay != 0, ams = o->amsgrad && c->b[2];       \
    if (ams) {                                                                                     \
      if (wd)                                                                                      \
        adam_body_##S(c, b, e, true, true);                                                        \
      else                                                                                         \
        adam_body_##S(c, b, e, false, true);                                                       \
    } else {                                                                                       \
      if (wd)                                                                                      \
        adam_body_##S(c, b, e, true, false);                                                       \
      else                                                                                         \
        adam_body_##S(c, b, e, false, false);                                                      \
    }                                                                                              \
  }                                                                                                \
                                                                                                   \
  INLINE void rmsprop_body_##S(const lc_optim_kctx *c, int64_t b, int64_t e, bool has_wd,          \
                               bool centered, bool has_mom) {                                      \
    const lc_optim_options *o = c->opts;                                                           \
    T *restrict p = c->p;                                                                          \
    const T *restrict g = c->g;                                                                    \
    T *restrict sq = c->b[0], *restrict buf = c->b[1], *restrict ga = c->b[2];                     \
    const T sgn = o->maximize ? (T)-1 : (T)1, wd = (T)o->weight_decay;                             \
    const T alpha = (T)o->alpha, oma = (T)(1 - o->alpha);                                          \
    const T eps = (T)o->eps, mom = (T)o->momentum, neglr = (T)(-o->lr);                            \
    for (int64_t i = b; i < e; i++) {                                                              \
      T d = sgn * g[i];                                                                            \
      if (has_wd) d = d + wd * p[i];                                                               \
      T s = sq[i] * alpha + oma * d * d;                                                           \
      sq[i] = s;                                                                                   \
      T avg;                                                                                       \
      if (centered) {                                                                              \
        T a = ga[i] * alpha + oma * d;                                                             \
        ga[i] = a;                                                                                 \
        avg = SQRT(s + (T)(-1) * a * a); /* square_avg.addcmul(grad_avg, grad_avg, value=-1) */    \
      } else {                                                                                     \
        avg = SQRT(s);                                                                             \
      }                                                                                            \
      avg = avg + eps;                                                                             \
      if (has_mom) {                                                                               \
        T bb = buf[i] * mom + d / avg;                                                             \
        buf[i] = bb;                                                                               \
        p[i] = p[i] + neglr * bb;                                                                  \
      } else {                                                                                     \
        p[i] = p[i] + neglr * d / avg;                                                             \
      }                                                                                            \
    }                                                                                              \
  }                                                                                                \
  static void rmsprop_##S(void *vc, int64_t b, int64_t e) {                                        \
    const lc_optim_kctx *c = vc;                                                                   \
    const lc_optim_options *o = c->opts;                                                           \
    bool wd = o->weight_decay != 0, cen = o->centered && c->b[2];                                  \
    bool mom = o->momentum > 0 && c->b[1];                                                         \
    switch ((wd ? 4 : 0) | (cen ? 2 : 0) | (mom ? 1 : 0)) {                                        \
    case 0: rmsprop_body_##S(c, b, e, false, false, false); break;                                 \
    case 1: rmsprop_body_##S(c, b, e, false, false, true); break;                                  \
    case 2: rmsprop_body_##S(c, b, e, false, true, false); break;                                  \
    case 3: rmsprop_body_##S(c, b, e, false, true, true); break;                                   \
    case 4: rmsprop_body_##S(c, b, e, true, false, false); break;                                  \
    case 5: rmsprop_body_##S(c, b, e, true, false, true); break;                                   \
    case 6: rmsprop_body_##S(c, b, e, true, true, false); break;                                   \
    default: rmsprop_body_##S(c, b, e, true, true, true); break;                                   \
    }                                                                                              \
  }                                                                                                \
                                                                                                   \
  INLINE void adagrad_body_##S(const lc_optim_kctx *c, int64_t b, int64_t e, bool has_wd) {        \
    const lc_optim_options *o = c->opts;                                                           \
    T *restrict p = c->p;                                                                          \
    const T *restrict g = c->g;                                                                    \
    T *restrict sum = c->b[0];                                                                     \
    const T sgn = o->maximize ? (T)-1 : (T)1, wd = (T)o->weight_decay;                             \
    const T eps = (T)o->eps, negclr = (T)(-c->clr);                                                \
    for (int64_t i = b; i < e; i++) {                                                              \
      T d = sgn * g[i];                                                                            \
      if (has_wd) d = d + wd * p[i];                                                               \
      T s = sum[i] + d * d;                                                                        \
      sum[i] = s;                                                                                  \
      T std = SQRT(s) + eps;                                                                       \
      p[i] = p[i] + negclr * d / std;                                                              \
    }                                                                                              \
  }                                                                                                \
  static void adagrad_##S(void *vc, int64_t b, int64_t e) {                                        \
    const lc_optim_kctx *c = vc;                                                                   \
    if (c->opts->weight_decay != 0)                                                                \
      adagrad_body_##S(c, b, e, true);                                                             \
    else                                                                                           \
      adagrad_body_##S(c, b, e, false);                                                            \
  }

DEFINE_KERNELS(float, f32, sqrtf)
DEFINE_KERNELS(double, f64, sqrt)

void lc_optim_run(const lc_optim_kctx *c, int64_t numel) {
  bool f64 = c->dtype == LC_FLOAT64;
  lc_range_fn fn = NULL;
  int64_t cost = COST_ADAM;
  switch (c->kind) {
  case LC_OPTIM_SGD:
    fn = f64 ? sgd_f64 : sgd_f32;
    cost = COST_SGD;
    break;
  case LC_OPTIM_ADAM:
  case LC_OPTIM_ADAMW: fn = f64 ? adam_f64 : adam_f32; break;
  case LC_OPTIM_RMSPROP: fn = f64 ? rmsprop_f64 : rmsprop_f32; break;
  case LC_OPTIM_ADAGRAD: fn = f64 ? adagrad_f64 : adagrad_f32; break;
  default: return;
  }
  if (numel > 0) lc_parallel_for(numel, cost, fn, (void *)c);
}
