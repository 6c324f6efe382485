/* activation.c - the activation family's ops, forward and backward side by side: elementwise
 * activations (the rows of activation_list.h: relu6, leaky_relu, elu, gelu, silu, mish,
 * softplus, hardtanh, hardswish), softmax and log_softmax. float32 and float64.
 *
 * Elementwise activations are one pass over (y, x) forward and (grad_x, g, x) backward: a
 * contiguous fast path over restrict pointers, other layouts walked row by row with lc_iter
 * (no contiguous copy), big tensors split with lc_parallel_for. Softmax-like ops read
 * contiguous operands (a strided input is copied once). Backward functions compute with raw
 * loops; they never record (lucid has no double backward).
 */
#include "activation.h"
#include "grad_graph.h"
#include "kernel_util.h"

#include "lucid_activation.h" /* lc_gelu_approx */

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------ elementwise activations */

/* float32 transcendental helpers written so the loops calling them vectorise (glibc's expf,
 * erff, expm1f are scalar calls without -ffast-math): branch-free, no float -> int conversion.
 *
 * exp: Cephes' expf (x = k ln2 + r, |r| <= ln2 / 2, degree-5 polynomial; max relative error
 * about 1e-7), k rounded with the 1.5 * 2^23 trick, 2^k built in the exponent bits. Inputs
 * beyond the float range give inf / 0; NaN propagates. */
/* c ? a : b through the bits, so both sides stay computed: a float select on a value that
 * makes the rest constant gets turned into a branch (jump threading), and a loop with a branch
 * does not vectorise. */
static inline float fsel(int c, float a, float b) {
  int32_t m = -(int32_t)c, ia, ib;
  memcpy(&ia, &a, sizeof ia);
  memcpy(&ib, &b, sizeof ib);
  int32_t r = (ia & m) | (ib & ~m);
  float f;
  memcpy(&f, &r, sizeof f);
  return f;
}
static inline double dsel(int c, double a, double b) { return c ? a : b; }
#define SEL_f32 fsel
#define SEL_f64 dsel

/* a * b + c, one rounding where the target has FMA (-std=c11 turns off GCC's contraction, so
 * the polynomials below spell it out), else two. */
#ifdef __FP_FAST_FMAF
#define FMAF(a, b, c) fmaf(a, b, c)
#else
#define FMAF(a, b, c) ((a) * (b) + (c))
#endif

/* exp(x - d) for x in [lo, hi] of fexp below and |d| small (a correction below x's last bit):
 * no range checks. */
static inline float fexp_in(float x, float d) {
  float kf = FMAF(x, 1.44269504088896341f, 0x1.8p23f); /* low mantissa bits hold round(x log2e) */
  int32_t kb;
  memcpy(&kb, &kf, sizeof kb);
  float k = kf - 0x1.8p23f;
  float r = FMAF(k, -0.693359375f, x); /* exact: k has at most 8 bits, 0.693359375 9 */
  r = FMAF(k, 2.12194440e-4f, r) - d;
  float y = FMAF(FMAF(FMAF(FMAF(FMAF(1.9875691500e-4f, r, 1.3981999507e-3f), r, 8.3334519073e-3f),
                           r, 4.1665795894e-2f),
                      r, 1.6666665459e-1f),
                 r, 5.0000001201e-1f);
  y = FMAF(y, r * r, r) + 1.0f;
  /* 2^k built in its exponent bits; unsigned so a NaN input (garbage k) shifts without UB */
  uint32_t eb = ((uint32_t)kb - 0x4B400000u + 127u) << 23;
  float p;
  memcpy(&p, &eb, sizeof p);
  return y * p;
}

static inline float fexp(float x) {
  const float hi = 88.3762626647949f, lo = -87.3365447504019f;
  float xc = fsel(x < lo, lo, x);
  xc = fsel(xc > hi, hi, xc);
  float y = fexp_in(xc, 0.0f);
  y = fsel(x > hi, INFINITY, y);
  return fsel(x < lo, 0.0f, y);
}

/* log(x) for normal x > 0 (Cephes' logf): x = m 2^e, m in [sqrt(1/2), sqrt 2), polynomial in
 * m - 1; relative error about 1e-7. */
static inline float flog(float x) {
  int32_t b;
  memcpy(&b, &x, sizeof b);
  int32_t e = ((b >> 23) & 0xff) - 126;
  int32_t mb = (b & 0x007fffff) | 0x3f000000; /* m in [0.5, 1) */
  float m;
  memcpy(&m, &mb, sizeof m);
  int32_t lt = m < 0.707106781186547524f;
  e -= lt;
  m = fsel(lt, m + m - 1.0f, m - 1.0f);
  float z = m * m;
  float y = ((((((((7.0376836292e-2f * m - 1.1514610310e-1f) * m + 1.1676998740e-1f) * m -
                  1.2420140846e-1f) * m + 1.4249322787e-1f) * m - 1.6668057665e-1f) * m +
               2.0000714765e-1f) * m - 2.4999993993e-1f) * m + 3.3333331174e-1f) * m * z;
  float fe = (float)e;
  y += -2.12194440e-4f * fe - 0.5f * z;
  return m + y + 0.693359375f * fe;
}

/* log1p(u) for u in [0, 1]: log(w), w = 1 + u rounded, corrected by the rounding error
 * (w - 1 - u) / w; gives u when w rounds to 1. */
static inline float flog1p01(float u) {
  float w = 1.0f + u;
  return flog(w) - ((w - 1.0f) - u) / w;
}
static inline double log1p01_f64(double u) { return log1p(u); }
#define log1p01_f32 flog1p01

/* exp(x) - 1 for x <= 0 (ELU's negative side): a Taylor polynomial near 0, where exp(x) - 1
 * would cancel, else fexp(x) - 1. */
static inline float fexpm1_neg(float x) {
  /* degree 7: truncation below 2e-8 relative on [-0.35, 0] (degree 6 left 4.9e-7) */
  float p = x * (1.0f + x * (0.5f + x * (1.0f / 6 + x * (1.0f / 24 + x * (1.0f / 120 +
                                                     x * (1.0f / 720 + x * (1.0f / 5040)))))));
  return fsel(x > -0.35f, p, fexp(x) - 1.0f);
}

/* GELU float32 from one exp and one rational: with a = |x| / sqrt 2, erfc(a) = E R(a), E =
 * exp(-a^2), and R ~ erfcx(a) = P4(a) / Q5(a) (relative error 6e-9 on [0, 9.4], fitted for
 * this file); Phi(x) = erfc(-x / sqrt 2) / 2 is E R / 2 for x < 0, 1 - E R / 2 else, so the left
 * tail keeps its relative accuracy. x^2 enters exp as an exact sum (a rounded x^2 near 170 is
 * off by 1e-5, which exp turns into a relative error of 1e-5). The backward reuses E: Phi'(x) =
 * E / sqrt(2 pi). Beyond |x| = 13.19 (exp's argument below -87, Phi < 1e-39) E is 0.
 * Measured over a dense sweep (tests/test_activation.c): relative error < 4e-7 forward and
 * backward (the erfc form it replaced: 1.8e-5 in the left tail, 1.9e-6 on |x| < 5). */
static inline float gauss_f32(float x, float *E) {
  const float ax = fabsf(x), xc = fsel(ax < 13.19f, ax, 13.19f);
#ifdef __FP_FAST_FMAF
  const float s = xc * xc, sl = fmaf(xc, xc, -s); /* x^2 = s + sl */
#else
  float xh = (xc * 128.0f + 0x1.8p23f) - 0x1.8p23f; /* 7 fraction bits: xh^2 is exact */
  xh *= 0.0078125f;
  const float s = xh * xh, sl = (xc - xh) * (xc + xh);
#endif
  float e = fexp_in(-0.5f * s, 0.5f * sl);
  const float a = xc * 0.70710678118654752f;
  const float p = FMAF(FMAF(FMAF(FMAF(0.0327087265f, a, 0.228803206f), a, 0.730734946f), a,
                            1.23758345f),
                       a, 1.00000001f);
  const float q = FMAF(FMAF(FMAF(FMAF(FMAF(0.0579739953f, a, 0.405569927f), a, 1.32374543f), a,
                                 2.40042936f),
                            a, 2.36596318f),
                       a, 1.0f);
  e = fsel(ax > 13.19f, 0.0f, e);
  *E = e;
  const float h = 0.5f * (e * p / q);
  return fsel(x < 0, h, 1.0f - h); /* NaN: x * Phi and Phi + x E stay NaN */
}
static inline float gelu_f_f32(float v) {
  float e;
  return v * gauss_f32(v, &e);
}
static inline float gelu_b_f32(float g, float v) {
  float e;
  const float p = gauss_f32(v, &e);
  return g * FMAF(v * e, 0.39894228040143267794f, p);
}
static inline double gelu_f_f64(double v) { return v * 0.5 * erfc(-v * M_SQRT1_2); }
static inline double gelu_b_f64(double g, double v) {
  /* Phi(x) + x phi(x) */
  return g * (0.5 * erfc(-v * M_SQRT1_2) + v * exp(-0.5 * v * v) * 0.39894228040143267794);
}
static inline double expm1_neg_f64(double x) { return expm1(x); }
#define expm1_neg_f32 fexpm1_neg

/* Scalar formulas shared by the loops below. Constants are cast to T so float32 stays float.
 * tanh-based forms are rewritten with sigmoids (no cancellation, one exp): 0.5 (1 + tanh(u))
 * = sigmoid(2u), and tanh(softplus(x)) = n / (n + 2) with n = e^x (e^x + 2). */
#define ACT_SCALARS(T, S, EXP, FABS)                                                        \
  static inline T sigm_##S(T v) { return (T)1 / ((T)1 + EXP(-v)); }                               \
  /* u = sqrt(2/pi) (x + 0.044715 x^3); y = x sigmoid(2u) */                                     \
  static inline T gelut_f_##S(T v) {                                                             \
    T u = (T)0.79788456080286535588 * (v + (T)0.044715 * v * v * v);                            \
    return v * sigm_##S(2 * u);                                                                  \
  }                                                                                              \
  /* v capped to [-20, 20], where s is 0 or 1 to working precision: v^3 would overflow for   \
   * |v| > 1e12 and turn s (1 - s) v^3 into 0 * inf = NaN */                                   \
  static inline T gelut_b_##S(T g, T v) {                                                        \
    const T k = (T)0.79788456080286535588, c = (T)0.044715;                                      \
    const T w = SEL_##S(v < (T)-20, (T)-20, SEL_##S(v > (T)20, (T)20, v));                       \
    T s = sigm_##S(2 * k * (w + c * w * w * w));                                                 \
    return g * (s + 2 * w * s * ((T)1 - s) * k * ((T)1 + 3 * c * w * w));                       \
  }                                                                                              \
  static inline T silu_b_##S(T g, T v) {                                                         \
    T s = sigm_##S(v);                                                                           \
    return g * s * ((T)1 + v * ((T)1 - s));                                                      \
  }                                                                                              \
  /* n = e^x (e^x + 2), with x capped at 20 where tanh(softplus(x)) is 1 to working precision */ \
  static inline T mish_n_##S(T v) {                                                              \
    T e = EXP(SEL_##S(v < (T)20, v, (T)20));                                                     \
    return e * (e + 2);                                                                          \
  }                                                                                              \
  /* v (n / (n + 2)), not v n / (n + 2): v n overflows float32 for v > 1.4e21 */                \
  static inline T mish_f_##S(T v) {                                                              \
    T n = mish_n_##S(v);                                                                         \
    return v * (n / (n + 2));                                                                    \
  }                                                                                              \
  /* tsp + x sigmoid(x) (1 - tsp^2), 1 - tsp^2 = 4 (n + 1) / (n + 2)^2; past the cap (v > 20)   \
   * the second term is below 1e-15 but v times the capped 1 - tsp^2 is not: it is dropped */   \
  static inline T mish_b_##S(T g, T v) {                                                         \
    T n = mish_n_##S(v), d = n + 2, w = SEL_##S(v > (T)20, (T)0, v);                             \
    return g * (n / d + w * sigm_##S(v) * (4 * (n + 1) / (d * d)));                              \
  }                                                                                              \
  /* max(bx, 0) + log1p(exp(-|bx|)) = log(1 + exp(bx)) without overflow */                        \
  static inline T softplus_f_##S(T v, T b, T th) {                                               \
    T bx = v * b;                                                                                \
    T r = (SEL_##S(bx > 0, bx, (T)0) + log1p01_##S(EXP(-FABS(bx)))) / b;                         \
    return SEL_##S(bx > th, v, r);                                                               \
  }                                                                                              \
  static inline T softplus_b_##S(T g, T v, T b, T th) {                                          \
    T bx = v * b;                                                                                \
    return SEL_##S(bx > th, g, g / ((T)1 + EXP(-bx)));                                          \
  }                                                                                              \
  /* tested as v <= 0 so a NaN takes the x side: NaN forward, g backward (as PyTorch) */      \
  static inline T elu_f_##S(T v, T a) {                                                          \
    return SEL_##S(v <= 0, a * expm1_neg_##S(SEL_##S(v < 0, v, (T)0)), v);                      \
  }                                                                                              \
  static inline T elu_b_##S(T g, T v, T a) {                                                     \
    return SEL_##S(v <= 0, g * a * EXP(SEL_##S(v < 0, v, (T)0)), g);                             \
  }

ACT_SCALARS(float, f32, fexp, fabsf)
ACT_SCALARS(double, f64, exp, fabs)

/* y[i] = E for v = x[i]: a contiguous loop (vectorisable) and a strided one. */
#define EW1(T, E)                                                                                     \
  do {                                                                                             \
    if (sy == 1 && sx == 1) {                                                                      \
      for (int64_t i = 0; i < n; i++) {                                                            \
        const T v = x[i];                                                                          \
        y[i] = (E);                                                                                \
      }                                                                                            \
    } else {                                                                                       \
      for (int64_t i = 0; i < n; i++) {                                                            \
        const T v = x[i * sx];                                                                     \
        y[i * sy] = (E);                                                                           \
      }                                                                                            \
    }                                                                                              \
  } while (0)

/* y[i] = E for g = gr[i], v = x[i]. */
#define EW2(T, E)                                                                                     \
  do {                                                                                             \
    if (sy == 1 && sg == 1 && sx == 1) {                                                           \
      for (int64_t i = 0; i < n; i++) {                                                            \
        const T g = gr[i], v = x[i];                                                               \
        y[i] = (E);                                                                                \
      }                                                                                            \
    } else {                                                                                       \
      for (int64_t i = 0; i < n; i++) {                                                            \
        const T g = gr[i * sg], v = x[i * sx];                                                     \
        y[i * sy] = (E);                                                                           \
      }                                                                                            \
    }                                                                                              \
  } while (0)

/* Each activation's loops, named after its code in activation_list.h: ACT_FWD_<CODE>(T, S)
 * writes y = f(x) and ACT_BWD_<CODE>(T, S) writes y = f'(x) g, as statements over EW1 / EW2 (in
 * scope: n, y, sy, x, sx, gr, sg and the parameters p0, p1 of type T). */
#define ACT_FWD_RELU6(T, S) EW1(T, v < 0 ? (T)0 : (v > 6 ? (T)6 : v))
#define ACT_BWD_RELU6(T, S) EW2(T, (v <= 0 || v >= 6) ? (T)0 : g)
#define ACT_FWD_LEAKY_RELU(T, S) EW1(T, v > 0 ? v : v * p0)
#define ACT_BWD_LEAKY_RELU(T, S) EW2(T, v > 0 ? g : g * p0)
#define ACT_FWD_ELU(T, S) EW1(T, elu_f_##S(v, p0))
#define ACT_BWD_ELU(T, S) EW2(T, elu_b_##S(g, v, p0))
/* p0: the approximation, LC_GELU_NONE (0, erf) or LC_GELU_TANH (1); one loop each */
#define ACT_FWD_GELU(T, S)                                                                         \
  if (p0 != 0)                                                                                     \
    EW1(T, gelut_f_##S(v));                                                                        \
  else                                                                                             \
    EW1(T, gelu_f_##S(v))
#define ACT_BWD_GELU(T, S)                                                                         \
  if (p0 != 0)                                                                                     \
    EW2(T, gelut_b_##S(g, v));                                                                     \
  else                                                                                             \
    EW2(T, gelu_b_##S(g, v))
#define ACT_FWD_SILU(T, S) EW1(T, v * sigm_##S(v))
#define ACT_BWD_SILU(T, S) EW2(T, silu_b_##S(g, v))
#define ACT_FWD_MISH(T, S) EW1(T, mish_f_##S(v))
#define ACT_BWD_MISH(T, S) EW2(T, mish_b_##S(g, v))
#define ACT_FWD_SOFTPLUS(T, S) EW1(T, softplus_f_##S(v, p0, p1))
#define ACT_BWD_SOFTPLUS(T, S) EW2(T, softplus_b_##S(g, v, p0, p1))
#define ACT_FWD_HARDTANH(T, S) EW1(T, v < p0 ? p0 : (v > p1 ? p1 : v))
#define ACT_BWD_HARDTANH(T, S) EW2(T, (v <= p0 || v >= p1) ? (T)0 : g)
/* x relu6(x + 3) / 6; PyTorch's gradient: 0 below -3, x / 3 + 1/2 up to 3 (inclusive), 1 above */
#define ACT_FWD_HARDSWISH(T, S) EW1(T, v * (v <= -3 ? (T)0 : (v >= 3 ? (T)6 : v + 3)) / 6)
#define ACT_BWD_HARDSWISH(T, S) EW2(T, v < -3 ? (T)0 : (v <= 3 ? g * (v / 3 + (T)0.5) : g))

/* The switch cases over the list, one set per dtype suffix (a macro called from the list
 * cannot see ACT_LOOPS's T and S). */
#define ACT_FWD_CASE_f32(CODE, ...) case LC_ACT_##CODE: ACT_FWD_##CODE(float, f32); break;
#define ACT_BWD_CASE_f32(CODE, ...) case LC_ACT_##CODE: ACT_BWD_##CODE(float, f32); break;
#define ACT_FWD_CASE_f64(CODE, ...) case LC_ACT_##CODE: ACT_FWD_##CODE(double, f64); break;
#define ACT_BWD_CASE_f64(CODE, ...) case LC_ACT_##CODE: ACT_BWD_##CODE(double, f64); break;

#define ACT_LOOPS(T, S)                                                                            \
  static void act_fwd_##S(int code, T p0, T p1, int64_t n, T *restrict y, int64_t sy,             \
                          const T *restrict x, int64_t sx) {                                       \
    switch (code) { LC_ACTIVATION_LIST(ACT_FWD_CASE_##S) }                                             \
  }                                                                                                \
  static void act_bwd_##S(int code, T p0, T p1, int64_t n, T *restrict y, int64_t sy,             \
                          const T *restrict gr, int64_t sg, const T *restrict x, int64_t sx) {     \
    switch (code) { LC_ACTIVATION_LIST(ACT_BWD_CASE_##S) }                                             \
  }

ACT_LOOPS(float, f32)
ACT_LOOPS(double, f64)

/* One elementwise pass: y = f(a) forward, y = f'(b) * a backward (a = g, b = x). */
typedef struct act_job {
  int code;
  double p0, p1;
  bool bwd;
  lc_dtype dt;
  char *y;
  const char *a, *b;
  lc_iter it; /* operands 0 = y, 1 = a, 2 = b; unused when flat */
} act_job;

static void act_span(const act_job *j, int64_t n, int64_t oy, int64_t sy, int64_t oa, int64_t sa,
                     int64_t ob, int64_t sb) {
  if (j->dt == LC_FLOAT32) {
    float *y = (float *)j->y + oy;
    const float *a = (const float *)j->a + oa;
    if (j->bwd)
      act_bwd_f32(j->code, (float)j->p0, (float)j->p1, n, y, sy, a, sa,
                  (const float *)j->b + ob, sb);
    else
      act_fwd_f32(j->code, (float)j->p0, (float)j->p1, n, y, sy, a, sa);
  } else {
    double *y = (double *)j->y + oy;
    const double *a = (const double *)j->a + oa;
    if (j->bwd)
      act_bwd_f64(j->code, j->p0, j->p1, n, y, sy, a, sa, (const double *)j->b + ob, sb);
    else
      act_fwd_f64(j->code, j->p0, j->p1, n, y, sy, a, sa);
  }
}

static void act_flat(void *ctx, int64_t b, int64_t e) {
  act_span(ctx, e - b, b, 1, b, 1, b, 1);
}

static void act_rows(void *ctx, int64_t b, int64_t e) {
  const act_job *j = ctx;
  int64_t offs[LC_ITER_MAX_OPS];
  for (int64_t r = b; r < e; r++) {
    lc_iter_row(&j->it, r, offs);
    act_span(j, j->it.inner, offs[0], j->it.inner_stride[0], offs[1], j->it.inner_stride[1],
             j->bwd ? offs[2] : 0, j->bwd ? j->it.inner_stride[2] : 0);
  }
}

#define ACT_COST(CODE, NAME, Module, GradFn, cost, INPLACE, NP, P0, P1) [LC_ACT_##CODE] = cost,
static const int64_t act_costs[LC_ACT_COUNT] = {LC_ACTIVATION_LIST(ACT_COST)};
#undef ACT_COST

static int64_t act_cost(int code) { return act_costs[code]; }

/* Runs j into the contiguous y, reading a (and b) with any strides of y's shape. */
static void act_run(act_job *j, lc_tensor *y, const lc_tensor *a, const lc_tensor *b) {
  j->dt = y->dtype;
  j->y = lc_data(y);
  j->a = lc_data(a);
  j->b = b ? lc_data(b) : NULL;
  if (y->numel == 0) return;
  int64_t cost = act_cost(j->code);
  if (a->contiguous && (!b || b->contiguous)) {
    lc_parallel_for(y->numel, cost, act_flat, j);
    return;
  }
  int64_t strides[3][LC_MAX_DIMS];
  memcpy(strides[0], y->strides, sizeof strides[0]);
  memcpy(strides[1], a->strides, sizeof strides[1]);
  if (b) memcpy(strides[2], b->strides, sizeof strides[2]);
  lc_iter_init(&j->it, b ? 3 : 2, y->ndim, y->shape, (const int64_t(*)[LC_MAX_DIMS])strides);
  lc_parallel_for(j->it.outer, j->it.inner * cost, act_rows, j);
}

lc_status lc_act_check(int code, const char *fn, const double *p) {
  switch (code) {
  case LC_ACT_GELU:
    if (p[0] != LC_GELU_NONE && p[0] != LC_GELU_TANH)
      return lc_set_error(LC_EARG, "%s: approximate must be LC_GELU_NONE or LC_GELU_TANH, got %g",
                          fn, p[0]);
    break;
  case LC_ACT_SOFTPLUS:
    if (p[0] == 0 || p[0] != p[0])
      return lc_set_error(LC_EARG, "%s: beta must be a non-zero number, got %g", fn,
                          p[0] == 0 ? p[0] : (double)NAN); /* NaN prints "nan", unsigned */
    break;
  case LC_ACT_HARDTANH:
    if (!(p[1] >= p[0]))
      return lc_set_error(LC_EARG,
                          "%s: max_val must be greater than or equal to min_val, got min_val = "
                          "%g, max_val = %g",
                          fn, p[0], p[1]);
    break;
  default: break;
  }
  return LC_OK;
}

static lc_status act_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                             const lc_op_args *args, lc_tensor **out) {
  const lc_tensor *x = in[0];
  lc_status st = need_float_dtype(op->name, "input", x->dtype);
  if (!st) st = lc_act_check(op->code, op->name, args->f);
  if (st) return st;
  lc_tensor *y = NULL;
  if ((st = lc_tensor_new(x->ndim, x->shape, x->dtype, &y))) return st;
  act_job j = {.code = op->code, .p0 = args->f[0], .p1 = args->f[1], .bwd = false};
  act_run(&j, y, x, NULL);
  *out = y;
  return LC_OK;
}

static lc_status act_backward(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  if (!ctx->needs_grad[0]) return LC_OK;
  const lc_tensor *x = NULL;
  lc_status st = saved(ctx, 0, &x);
  if (st) return st;
  if (!same_shape(g, x->ndim, x->shape)) return grad_shape_error(ctx, g);
  lc_tensor *hold = NULL, *gx = NULL;
  const lc_tensor *gc = g;
  if (g->dtype != x->dtype && (st = dense(g, x->dtype, &hold, &gc))) return st;
  if (!(st = lc_tensor_new(x->ndim, x->shape, x->dtype, &gx))) {
    act_job j = {.code = ctx->op->code, .p0 = ctx->args->f[0], .p1 = ctx->args->f[1], .bwd = true};
    act_run(&j, gx, gc, x);
    grad_in[0] = gx;
  }
  lc_release(hold);
  return st;
}

/* create_graph: f'(x) g of each activation as recorded ops (p0, p1: its parameters). */
static lc_status act_backward_graph(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  if (!ctx->needs_grad[0]) return LC_OK;
  const double p0 = ctx->args->f[0], p1 = ctx->args->f[1];
  lc_gb b = LC_GB_INIT(ctx);
  lc_tensor *x = lc_gb_saved(&b, 0), *r = NULL;
#define AND(u, v) lc_gb_bin(&b, LC_LOGICAL_AND, u, v)
#define MUL(u, v) lc_gb_bin(&b, LC_MUL, u, v)
#define ADD(u, v) lc_gb_bin(&b, LC_ADD, u, v)
#define MULS(u, c) lc_gb_sc(&b, LC_MUL, u, c)
#define ADDS(u, c) lc_gb_sc(&b, LC_ADD, u, c)
  switch ((lc_act_code)ctx->op->code) {
  case LC_ACT_RELU6:
  case LC_ACT_HARDTANH: {
    double lo = ctx->op->code == LC_ACT_RELU6 ? 0 : p0, hi = ctx->op->code == LC_ACT_RELU6 ? 6 : p1;
    r = lc_gb_mask(&b, AND(lc_gb_sc(&b, LC_GT, x, lo), lc_gb_sc(&b, LC_LT, x, hi)), g);
    break;
  }
  case LC_ACT_LEAKY_RELU: r = lc_gb_where(&b, lc_gb_sc(&b, LC_GT, x, 0), g, MULS(g, p0)); break;
  case LC_ACT_ELU: /* alpha e^x below 0 */
    r = lc_gb_where(&b, lc_gb_sc(&b, LC_GT, x, 0), g, MUL(g, MULS(lc_gb_un(&b, LC_EXP, x), p0)));
    break;
  case LC_ACT_SILU: { /* s (1 + x (1 - s)) */
    lc_tensor *sg = lc_gb_un(&b, LC_SIGMOID, x);
    r = MUL(g, MUL(sg, ADDS(MUL(x, lc_gb_rsc(&b, LC_SUB, 1, sg)), 1)));
    break;
  }
  case LC_ACT_MISH: { /* tanh(sp) + x sigmoid(x) (1 - tanh(sp)^2), sp = softplus(x) */
    lc_op_args sp = {.f = {1, 20}};
    lc_tensor *in[1] = {x};
    lc_tensor *t = lc_gb_un(&b, LC_TANH, lc_gb_op(&b, &lc_op_act[LC_ACT_SOFTPLUS], 1, in, &sp));
    lc_tensor *d = MUL(MUL(x, lc_gb_un(&b, LC_SIGMOID, x)), lc_gb_rsc(&b, LC_SUB, 1, MUL(t, t)));
    r = MUL(g, ADD(t, d));
    break;
  }
  case LC_ACT_SOFTPLUS: { /* sigmoid(beta x), 1 above the threshold */
    lc_tensor *bx = MULS(x, p0);
    r = lc_gb_where(&b, lc_gb_sc(&b, LC_GT, bx, p1), g, MUL(g, lc_gb_un(&b, LC_SIGMOID, bx)));
    break;
  }
  case LC_ACT_HARDSWISH: { /* 0 below -3, x / 3 + 1/2 up to 3, 1 above */
    lc_tensor *mid =
        lc_gb_where(&b, lc_gb_sc(&b, LC_LE, x, 3), MUL(g, ADDS(MULS(x, 1.0 / 3), 0.5)), g);
    r = lc_gb_mask(&b, lc_gb_sc(&b, LC_GE, x, -3), mid);
    break;
  }
  case LC_ACT_GELU:
    if (p0 == 0) { /* Phi(x) + x phi(x) */
      lc_tensor *cdf = MULS(ADDS(lc_gb_un(&b, LC_ERF, MULS(x, M_SQRT1_2)), 1), 0.5);
      lc_tensor *pdf =
          MULS(lc_gb_un(&b, LC_EXP, MULS(MUL(x, x), -0.5)), 0.5 * M_2_SQRTPI * M_SQRT1_2);
      r = MUL(g, ADD(cdf, MUL(x, pdf)));
    } else { /* 0.5 (1 + t) + 0.5 x (1 - t^2) k (1 + 3c x^2), t = tanh(k (x + c x^3)) */
      const double k = M_2_SQRTPI * M_SQRT1_2, c = 0.044715;
      lc_tensor *x2 = MUL(x, x);
      lc_tensor *t = lc_gb_un(&b, LC_TANH, MULS(ADD(x, MULS(MUL(x2, x), c)), k));
      lc_tensor *left = MULS(ADDS(t, 1), 0.5);
      lc_tensor *dt = MULS(MUL(x, lc_gb_rsc(&b, LC_SUB, 1, MUL(t, t))), 0.5 * k);
      r = MUL(g, ADD(left, MUL(dt, ADDS(MULS(x2, 3 * c), 1))));
    }
    break;
  default: b.st = lc_set_error(LC_EGRAD, "%s: no graph backward", ctx->op->name);
  }
#undef AND
#undef MUL
#undef ADD
#undef MULS
#undef ADDS
  lc_gb_grad(&b, 0, r, grad_in);
  return lc_gb_end(&b, grad_in);
}

#define ACT_DEF(CODE, NAME, Module, GradFn, cost, INPLACE, NP, P0, P1)                             \
  [LC_ACT_##CODE] = {.name = #NAME,                                                                \
                     .grad_fn_name = GradFn,                                                       \
                     .n_inputs = 1,                                                                \
                     .n_outputs = 1,                                                               \
                     .code = LC_ACT_##CODE,                                                        \
                     .save = LC_SAVE_IN(0),                                                        \
                     .forward = act_forward,                                                       \
                     .backward = act_backward,                                                     \
                     .backward_graph = act_backward_graph},
const lc_op_def lc_op_act[LC_ACT_COUNT] = {LC_ACTIVATION_LIST(ACT_DEF)};
#undef ACT_DEF

#define ACT_PARAM(P)                                                                               \
  {.name = LC_ACT_P_NAME(P),                                                                       \
   .def = LC_ACT_P_DEFAULT(P),                                                                     \
   .as_float = LC_ACT_P_AS_FLOAT(P),                                                               \
   .choices = LC_ACT_P_CHOICES(P)}
#define ACT_DESC(CODE, NAME, Module, GradFn, cost, INPLACE, NP, P0, P1)                           \
  [LC_ACT_##CODE] = {.name = #NAME,                                                                \
                     .module = Module,                                                             \
                     .inplace = INPLACE,                                                           \
                     .nparams = NP,                                                                \
                     .params = {ACT_PARAM(P0), ACT_PARAM(P1)}},
const lc_act_desc lc_act_descs[LC_ACT_COUNT] = {LC_ACTIVATION_LIST(ACT_DESC)};
#undef ACT_DESC
#undef ACT_PARAM

/* ------------------------------------------------------------------ softmax, log_softmax */

/* The tensor seen as {outer, size, inner} around dim. Work is split in tasks of one outer index
 * and a block of up to SM_BLK inner columns, processed together so the loops over the block
 * are contiguous (vectorisable); with inner == 1 a task is one contiguous row. */
#define SM_BLK 64

typedef struct sm_job {
  bool log, bwd;
  lc_dtype dt;
  int64_t outer, size, inner, nblk;
  char *y;       /* output: forward result or input gradient */
  const char *x; /* forward: the input; backward: the saved forward output */
  const char *g; /* backward: the output gradient */
} sm_job;

/* Row reductions run in SM_L lanes (lane c takes elements i = c mod SM_L, a tail after the last
 * full group) merged in a fixed order: vectorised without -ffast-math, the same for any thread
 * count, and no less accurate than one running sum. */
#define SM_L 16

#define SM_TASKS(T, S, EXP, LOG)                                                                   \
  static T sm_merge_##S(T *v, T tail, bool max) {                                                  \
    for (int w = SM_L / 2; w > 0; w /= 2)                                                          \
      for (int c = 0; c < w; c++)                                                                  \
        v[c] = max ? (v[c + w] > v[c] ? v[c + w] : v[c]) : v[c] + v[c + w];                        \
    return max ? (tail > v[0] ? tail : v[0]) : v[0] + tail;                                        \
  }                                                                                                \
  static T sm_max_##S(const T *restrict x, int64_t n) {                                            \
    T v[SM_L], t = x[0];                                                                           \
    for (int c = 0; c < SM_L; c++)                                                                 \
      v[c] = x[0];                                                                                 \
    int64_t i = 0;                                                                                 \
    for (; i + SM_L <= n; i += SM_L)                                                               \
      for (int c = 0; c < SM_L; c++)                                                               \
        v[c] = x[i + c] > v[c] ? x[i + c] : v[c];                                                  \
    for (; i < n; i++)                                                                             \
      t = x[i] > t ? x[i] : t;                                                                     \
    return sm_merge_##S(v, t, true);                                                               \
  }                                                                                                \
  /* sum of exp(x - m); y = the terms when y is not NULL */                                        \
  static T sm_sumexp_##S(const T *restrict x, T *restrict y, T m, int64_t n) {                     \
    T v[SM_L] = {0}, t = 0;                                                                        \
    int64_t i = 0;                                                                                 \
    if (y)                                                                                         \
      for (; i + SM_L <= n; i += SM_L)                                                             \
        for (int c = 0; c < SM_L; c++) {                                                           \
          const T e = EXP(x[i + c] - m);                                                           \
          y[i + c] = e;                                                                            \
          v[c] += e;                                                                               \
        }                                                                                          \
    else                                                                                           \
      for (; i + SM_L <= n; i += SM_L)                                                             \
        for (int c = 0; c < SM_L; c++)                                                             \
          v[c] += EXP(x[i + c] - m);                                                               \
    for (; i < n; i++) {                                                                           \
      const T e = EXP(x[i] - m);                                                                   \
      if (y) y[i] = e;                                                                             \
      t += e;                                                                                      \
    }                                                                                              \
    return sm_merge_##S(v, t, false);                                                              \
  }                                                                                                \
  /* sum of a[i] (b[i] when b is not NULL) */                                                      \
  static T sm_dot_##S(const T *restrict a, const T *restrict b, int64_t n) {                       \
    T v[SM_L] = {0}, t = 0;                                                                        \
    int64_t i = 0;                                                                                 \
    if (b) {                                                                                       \
      for (; i + SM_L <= n; i += SM_L)                                                             \
        for (int c = 0; c < SM_L; c++)                                                             \
          v[c] += a[i + c] * b[i + c];                                                             \
      for (; i < n; i++)                                                                           \
        t += a[i] * b[i];                                                                          \
    } else {                                                                                       \
      for (; i + SM_L <= n; i += SM_L)                                                             \
        for (int c = 0; c < SM_L; c++)                                                             \
          v[c] += a[i + c];                                                                        \
      for (; i < n; i++)                                                                           \
        t += a[i];                                                                                 \
    }                                                                                              \
    return sm_merge_##S(v, t, false);                                                              \
  }                                                                                                \
  static void sm_row_##S(const sm_job *j, int64_t o) {                                             \
    const int64_t n = j->size;                                                                     \
    const T *restrict x = (const T *)j->x + o * n;                                                 \
    T *restrict y = (T *)j->y + o * n;                                                             \
    if (!j->bwd) {                                                                                 \
      const T m = sm_max_##S(x, n);                                                                \
      if (j->log) {                                                                                \
        const T l = LOG(sm_sumexp_##S(x, NULL, m, n));                                             \
        for (int64_t i = 0; i < n; i++)                                                            \
          y[i] = (x[i] - m) - l;                                                                   \
      } else {                                                                                     \
        const T inv = (T)1 / sm_sumexp_##S(x, y, m, n);                                            \
        for (int64_t i = 0; i < n; i++)                                                            \
          y[i] *= inv;                                                                             \
      }                                                                                            \
    } else {                                                                                       \
      const T *restrict g = (const T *)j->g + o * n;                                               \
      if (j->log) { /* g - exp(out) sum(g) */                                                      \
        const T s = sm_dot_##S(g, NULL, n);                                                        \
        for (int64_t i = 0; i < n; i++)                                                            \
          y[i] = g[i] - EXP(x[i]) * s;                                                             \
      } else { /* out (g - sum(g out)) */                                                          \
        const T s = sm_dot_##S(g, x, n);                                                           \
        for (int64_t i = 0; i < n; i++)                                                            \
          y[i] = x[i] * (g[i] - s);                                                                \
      }                                                                                            \
    }                                                                                              \
  }                                                                                                \
  static void sm_block_##S(const sm_job *j, int64_t o, int64_t c0, int64_t w) {                    \
    const int64_t n = j->size, st = j->inner, base = o * n * st + c0;                              \
    const T *restrict x = (const T *)j->x + base;                                                  \
    T *restrict y = (T *)j->y + base;                                                              \
    T acc[SM_BLK], mx[SM_BLK];                                                                     \
    for (int64_t c = 0; c < w; c++)                                                                \
      acc[c] = 0;                                                                                  \
    if (!j->bwd) {                                                                                 \
      for (int64_t c = 0; c < w; c++)                                                              \
        mx[c] = x[c];                                                                              \
      for (int64_t i = 1; i < n; i++)                                                              \
        for (int64_t c = 0; c < w; c++)                                                            \
          mx[c] = x[i * st + c] > mx[c] ? x[i * st + c] : mx[c];                                   \
      for (int64_t i = 0; i < n; i++)                                                              \
        for (int64_t c = 0; c < w; c++) {                                                          \
          const T e = EXP(x[i * st + c] - mx[c]);                                                  \
          if (!j->log) y[i * st + c] = e;                                                          \
          acc[c] += e;                                                                             \
        }                                                                                          \
      if (j->log) {                                                                                \
        for (int64_t c = 0; c < w; c++)                                                            \
          acc[c] = LOG(acc[c]);                                                                    \
        for (int64_t i = 0; i < n; i++)                                                            \
          for (int64_t c = 0; c < w; c++)                                                          \
            y[i * st + c] = (x[i * st + c] - mx[c]) - acc[c];                                      \
      } else {                                                                                     \
        for (int64_t c = 0; c < w; c++)                                                            \
          acc[c] = (T)1 / acc[c];                                                                  \
        for (int64_t i = 0; i < n; i++)                                                            \
          for (int64_t c = 0; c < w; c++)                                                          \
            y[i * st + c] *= acc[c];                                                               \
      }                                                                                            \
    } else {                                                                                       \
      const T *restrict g = (const T *)j->g + base;                                                \
      if (j->log) {                                                                                \
        for (int64_t i = 0; i < n; i++)                                                            \
          for (int64_t c = 0; c < w; c++)                                                          \
            acc[c] += g[i * st + c];                                                               \
        for (int64_t i = 0; i < n; i++)                                                            \
          for (int64_t c = 0; c < w; c++)                                                          \
            y[i * st + c] = g[i * st + c] - EXP(x[i * st + c]) * acc[c];                           \
      } else {                                                                                     \
        for (int64_t i = 0; i < n; i++)                                                            \
          for (int64_t c = 0; c < w; c++)                                                          \
            acc[c] += g[i * st + c] * x[i * st + c];                                               \
        for (int64_t i = 0; i < n; i++)                                                            \
          for (int64_t c = 0; c < w; c++)                                                          \
            y[i * st + c] = x[i * st + c] * (g[i * st + c] - acc[c]);                              \
      }                                                                                            \
    }                                                                                              \
  }

SM_TASKS(float, f32, fexp, logf)
SM_TASKS(double, f64, exp, log)

static void sm_tasks(void *ctx, int64_t b, int64_t e) {
  const sm_job *j = ctx;
  for (int64_t t = b; t < e; t++) {
    int64_t o = t / j->nblk, c0 = (t % j->nblk) * SM_BLK;
    if (j->inner == 1) {
      if (j->dt == LC_FLOAT32)
        sm_row_f32(j, o);
      else
        sm_row_f64(j, o);
    } else {
      int64_t w = j->inner - c0 < SM_BLK ? j->inner - c0 : SM_BLK;
      if (j->dt == LC_FLOAT32)
        sm_block_f32(j, o, c0, w);
      else
        sm_block_f64(j, o, c0, w);
    }
  }
}

static void sm_run(sm_job *j, const lc_tensor *t, int dim) {
  j->outer = 1;
  j->inner = 1;
  j->size = t->ndim ? t->shape[dim] : 1;
  for (int d = 0; d < dim; d++)
    j->outer *= t->shape[d];
  for (int d = dim + 1; d < t->ndim; d++)
    j->inner *= t->shape[d];
  if (t->numel == 0) return;
  j->nblk = (j->inner + SM_BLK - 1) / SM_BLK;
  int64_t w = j->inner < SM_BLK ? j->inner : SM_BLK;
  lc_parallel_for(j->outer * j->nblk, j->size * w * 8, sm_tasks, j);
}

static lc_status sm_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                            const lc_op_args *args, lc_tensor **out) {
  const lc_tensor *x = in[0];
  lc_status st = need_float_dtype(op->name, "input", x->dtype);
  if (st) return st;
  int dim = (int)args->i[0];
  if ((st = lc_wrap_dim(&dim, x->ndim, op->name))) return st;
  lc_tensor *hold = NULL, *y = NULL;
  const lc_tensor *xc = NULL;
  if ((st = dense(x, x->dtype, &hold, &xc))) return st;
  if (!(st = lc_tensor_new(x->ndim, x->shape, x->dtype, &y))) {
    sm_job j = {.log = op == &lc_op_log_softmax, .bwd = false, .dt = x->dtype};
    j.x = lc_data(xc);
    j.y = lc_data(y);
    sm_run(&j, x, dim);
    *out = y;
  }
  lc_release(hold);
  return st;
}

static lc_status sm_backward(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  if (!ctx->needs_grad[0]) return LC_OK;
  const lc_tensor *y = NULL;
  lc_status st = saved(ctx, 0, &y);
  if (st) return st;
  if (!same_shape(g, y->ndim, y->shape)) return grad_shape_error(ctx, g);
  int dim = (int)ctx->args->i[0];
  if ((st = lc_wrap_dim(&dim, y->ndim, ctx->op->grad_fn_name))) return st;
  lc_tensor *hy = NULL, *hg = NULL, *gx = NULL;
  const lc_tensor *yc = NULL, *gc = NULL;
  if (!(st = dense(y, y->dtype, &hy, &yc)) && !(st = dense(g, y->dtype, &hg, &gc)) &&
      !(st = lc_tensor_new(y->ndim, y->shape, y->dtype, &gx))) {
    sm_job j = {.log = ctx->op == &lc_op_log_softmax, .bwd = true, .dt = y->dtype};
    j.x = lc_data(yc);
    j.g = lc_data(gc);
    j.y = lc_data(gx);
    sm_run(&j, y, dim);
    grad_in[0] = gx;
  }
  lc_release(hy);
  lc_release(hg);
  return st;
}

/* create_graph: softmax y (g - sum(g y)), log_softmax g - e^y sum(g), sums over dim kept. */
static lc_status sm_backward_graph(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  if (!ctx->needs_grad[0]) return LC_OK;
  lc_gb b = LC_GB_INIT(ctx);
  lc_tensor *y = lc_gb_saved(&b, 0), *r = NULL;
  int dim = (int)ctx->args->i[0];
  if (!b.st) b.st = lc_wrap_dim(&dim, y->ndim, ctx->op->grad_fn_name);
  bool red[LC_MAX_DIMS] = {false};
  if (!b.st && y->ndim > 0) red[dim] = true;
  if (ctx->op == &lc_op_log_softmax)
    r = lc_gb_bin(&b, LC_SUB, g,
                  lc_gb_bin(&b, LC_MUL, lc_gb_un(&b, LC_EXP, y), lc_gb_sum_keep(&b, g, red)));
  else
    r = lc_gb_bin(&b, LC_MUL, y,
                  lc_gb_bin(&b, LC_SUB, g, lc_gb_sum_keep(&b, lc_gb_bin(&b, LC_MUL, g, y), red)));
  lc_gb_grad(&b, 0, r, grad_in);
  return lc_gb_end(&b, grad_in);
}

const lc_op_def lc_op_softmax = {.name = "softmax",
                                 .grad_fn_name = "SoftmaxBackward",
                                 .n_inputs = 1,
                                 .n_outputs = 1,
                                 .save = LC_SAVE_OUT(0),
                                 .forward = sm_forward,
                                 .backward = sm_backward,
                                 .backward_graph = sm_backward_graph};

const lc_op_def lc_op_log_softmax = {.name = "log_softmax",
                                     .grad_fn_name = "LogSoftmaxBackward",
                                     .n_inputs = 1,
                                     .n_outputs = 1,
                                     .save = LC_SAVE_OUT(0),
                                     .forward = sm_forward,
                                     .backward = sm_backward,
                                     .backward_graph = sm_backward_graph};
