/*
 * reduce.c - reductions: sum, mean, prod, amax, amin, var, std, norm, logsumexp, all, any
 * (lc_op_reduce, one op per row of LC_REDUCE_LIST in lucid_core.h, which also gives each its
 * dtype rule and options), max/min along a dim with indices (lc_op_max_dim / lc_op_min_dim)
 * and argmax/argmin; each forward next to its backward. A row's kernel is its cases in
 * racc_init, racc_merge, the block kernels (DEF_FLOAT_BLOCK, DEF_INT_BLOCK), racc_store and
 * DEF_RBACK.
 *
 * Strategy. A reduction splits x's dims into kept dims (one output element per index) and
 * reduced dims. The reduced dims are ordered by decreasing stride and coalesced by lc_iter, so
 * each output element's inputs come as a few runs (one run when they are dense in memory: the
 * last-dim and full reductions of contiguous tensors). A run is reduced by a block kernel into
 * a small accumulator (racc); accumulators merge in a fixed order. Paths:
 *   - one output, many inputs (full reduction): fixed-size chunks reduced in parallel, partial
 *     accumulators merged in chunk order, so the result never depends on the thread count;
 *   - contiguous x reduced over a block of leading/middle dims (column sums, sum over the batch
 *     dim): rows accumulated into a vector, vectorised across columns (sum/mean only);
 *   - otherwise: parallel over output elements, each walking its runs.
 * Float sums accumulate in double (16 independent lanes), which keeps a float32 sum of 1e6
 * values within 1e-6 relative error of the exact sum and still vectorises.
 */
#include "grad_graph.h"
#include "kernel_util.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Elements per chunk of a full reduction. A constant: chunk boundaries (and so the result) must
 * not depend on the number of threads. */
#define R_CHUNK ((int64_t)1 << 15)
/* Column-path block width (doubles on the stack). */
#define R_COLS 256

/* The DTYPES and ARGS columns of LC_REDUCE_LIST (lucid_core.h), as data. */
enum { RD_WIDEN, RD_SAME, RD_FLOAT, RD_BOOL };
#define REDUCE_DTYPES_(CODE, NAME, GradFn, DTYPES, SAVES, ARGS) [LC_##CODE] = RD_##DTYPES,
static const unsigned char reduce_dtypes[LC_REDUCE_COUNT] = {LC_REDUCE_LIST(REDUCE_DTYPES_)};
#undef REDUCE_DTYPES_
#define REDUCE_ARGS_(CODE, NAME, GradFn, DTYPES, SAVES, ARGS) [LC_##CODE] = LC_RA_##ARGS,
const unsigned char lc_reduce_args[LC_REDUCE_COUNT] = {LC_REDUCE_LIST(REDUCE_ARGS_)};
#undef REDUCE_ARGS_

/* ================================================================ dims and plans */

/* Marks the reduced dims of an ndim-dim tensor from args (LC_ARG_ALL or ni == 0: all dims). */
static lc_status parse_dims(const char *name, const lc_op_args *args, int ndim, bool *red) {
  for (int d = 0; d < LC_MAX_DIMS; d++)
    red[d] = false;
  if ((args->flags & LC_ARG_ALL) || args->ni == 0) {
    for (int d = 0; d < ndim; d++)
      red[d] = true;
    return LC_OK;
  }
  if (args->ni < 0 || args->ni > LC_MAX_DIMS)
    return lc_set_error(LC_EARG, "%s: expected at most %d dims to reduce, got %d", name,
                        LC_MAX_DIMS, args->ni);
  bool seen[LC_MAX_DIMS] = {false};
  for (int k = 0; k < args->ni; k++) {
    int d; /* a 0-dim tensor accepts dim 0 and -1, like PyTorch (lc_wrap_dim64) */
    lc_status st = lc_wrap_dim64(args->i[k], ndim, name, &d);
    if (st) return st;
    if (seen[d])
      return lc_set_error(
          LC_EARG, "%s: dim " LC_POS_D " appears more than once in the dims to reduce", name, d);
    seen[d] = true;
    if (ndim > 0) red[d] = true;
  }
  return LC_OK;
}

/* Operands of a plan: x (or the tensor walked), a second tensor of x's shape (the gradient
 * being written), and two tensors of the output's shape (grad_out, the forward output). */
enum { P_X = 0, P_GI = 1, P_G = 2, P_O = 3, P_NOPS = 4 };

typedef struct rplan {
  int ndim;
  const int64_t *shape;
  bool red[LC_MAX_DIMS];
  int nk; /* kept dims, in order */
  int64_t kshape[LC_MAX_DIMS];
  int64_t kstr[P_NOPS][LC_MAX_DIMS]; /* per operand, over the kept dims */
  int64_t nout, nred;
  lc_iter it; /* over the reduced dims: operands P_X, P_GI */
  int out_ndim;
  int64_t out_shape[LC_MAX_DIMS];
} rplan;

/* Builds the plan over (ndim, shape) with x strides xs and optional gi strides gs (either may
 * be NULL: treated as 0). Strides of operands P_G / P_O are set with plan_out_strides. */
static void plan_build(rplan *p, int ndim, const int64_t *shape, const bool *red, bool keepdim,
                       const int64_t *xs, const int64_t *gs) {
  memset(p, 0, sizeof *p);
  p->ndim = ndim;
  p->shape = shape;
  p->nred = 1;
  int rd[LC_MAX_DIMS], nr = 0;
  for (int d = 0; d < ndim; d++) {
    p->red[d] = red[d];
    if (red[d]) {
      p->nred *= shape[d];
      rd[nr++] = d;
      if (keepdim) p->out_shape[p->out_ndim++] = 1;
    } else {
      p->kshape[p->nk] = shape[d];
      p->kstr[P_X][p->nk] = xs ? xs[d] : 0;
      p->kstr[P_GI][p->nk] = gs ? gs[d] : 0;
      p->nk++;
      p->out_shape[p->out_ndim++] = shape[d];
    }
  }
  p->nout = lc_shape_numel(p->nk, p->kshape);
  /* Visit reduced dims by decreasing |stride| of x (stable): the order does not change what is
   * reduced, and walking memory in order lets lc_iter coalesce dense blocks into one run. */
  for (int a = 1; a < nr; a++) {
    int v = rd[a], b = a;
    int64_t sv = xs ? llabs(xs[v]) : 0;
    while (b > 0 && (xs ? llabs(xs[rd[b - 1]]) : 0) < sv) {
      rd[b] = rd[b - 1];
      b--;
    }
    rd[b] = v;
  }
  int64_t rshape[LC_MAX_DIMS], rstr[LC_ITER_MAX_OPS][LC_MAX_DIMS];
  memset(rstr, 0, sizeof rstr);
  for (int k = 0; k < nr; k++) {
    rshape[k] = shape[rd[k]];
    rstr[0][k] = xs ? xs[rd[k]] : 0;
    rstr[1][k] = gs ? gs[rd[k]] : 0;
  }
  lc_iter_init(&p->it, 2, nr, rshape, (const int64_t(*)[LC_MAX_DIMS])rstr);
}

/* Sets operand op's kept strides from a tensor of the output's shape (keepdim or not). */
static void plan_out_strides(rplan *p, int op, const lc_tensor *t) {
  int k = 0;
  if (t->ndim == p->ndim) { /* keepdim layout (or nothing reduced) */
    for (int d = 0; d < p->ndim; d++)
      if (!p->red[d]) p->kstr[op][k++] = t->strides[d];
  } else {
    for (int d = 0; d < t->ndim && k < p->nk; d++)
      p->kstr[op][k++] = t->strides[d];
  }
}

/* Odometer over the kept dims: element offsets of each operand for output element o. */
typedef struct kpos {
  int64_t idx[LC_MAX_DIMS];
  int64_t off[P_NOPS];
} kpos;

static void kpos_seek(const rplan *p, kpos *k, int64_t o) {
  for (int j = 0; j < P_NOPS; j++)
    k->off[j] = 0;
  for (int d = p->nk - 1; d >= 0; d--) {
    int64_t n = p->kshape[d];
    k->idx[d] = n ? o % n : 0;
    o = n ? o / n : 0;
    for (int j = 0; j < P_NOPS; j++)
      k->off[j] += k->idx[d] * p->kstr[j][d];
  }
}

static void kpos_next(const rplan *p, kpos *k) {
  for (int d = p->nk - 1; d >= 0; d--) {
    if (++k->idx[d] < p->kshape[d]) {
      for (int j = 0; j < P_NOPS; j++)
        k->off[j] += p->kstr[j][d];
      return;
    }
    for (int j = 0; j < P_NOPS; j++)
      k->off[j] -= (p->kshape[d] - 1) * p->kstr[j][d];
    k->idx[d] = 0;
  }
}

static int64_t plan_cost(const rplan *p) { return p->nred > 0 ? p->nred : 1; }

/* ================================================================ accumulators */

/* One partial reduction. Which fields are used depends on the op:
 *   sum/mean/norm(finite p): a = sum; prod: a = product; amax/amin/norm(+-inf): a = extremum;
 *   var/std: n = count, a = mean, b = sum of squared deviations;
 *   logsumexp: a = max, b = sum of exp(x - a);  integer sum/prod/amax/amin/all/any: i. */
typedef struct racc {
  double a, b;
  int64_t i, n;
} racc;

static bool norm_is_max(double p) { return p == INFINITY; }
static bool norm_is_min(double p) { return p == -INFINITY; }

static racc racc_init(int op, double p, bool float_dt) {
  racc r = {0, 0, 0, 0};
  switch (op) {
  case LC_PROD:
    r.a = 1;
    r.i = 1;
    break;
  case LC_AMAX:
    r.a = -INFINITY;
    r.i = INT64_MIN;
    break;
  case LC_AMIN:
    r.a = INFINITY;
    r.i = INT64_MAX;
    break;
  case LC_NORM: r.a = norm_is_min(p) ? INFINITY : 0; break;
  case LC_LOGSUMEXP: r.a = -INFINITY; break;
  case LC_ALL: r.i = 1; break;
  default: break;
  }
  (void)float_dt;
  return r;
}

/* max/min that propagate NaN (PyTorch semantics). */
static inline double nmax(double a, double b) { return (a != a || a >= b) ? a : b; }
static inline double nmin(double a, double b) { return (a != a || a <= b) ? a : b; }

/* Merges s into d; d holds the earlier elements (order matters only for rounding). */
static void racc_merge(int op, double p, racc *d, const racc *s) {
  switch (op) {
  case LC_SUM:
  case LC_MEAN:
    d->a += s->a;
    d->i = (int64_t)((uint64_t)d->i + (uint64_t)s->i);
    break;
  case LC_PROD:
    d->a *= s->a;
    d->i = (int64_t)((uint64_t)d->i * (uint64_t)s->i);
    break;
  case LC_AMAX:
    d->a = nmax(d->a, s->a);
    d->i = d->i > s->i ? d->i : s->i;
    break;
  case LC_AMIN:
    d->a = nmin(d->a, s->a);
    d->i = d->i < s->i ? d->i : s->i;
    break;
  case LC_NORM:
    if (norm_is_max(p))
      d->a = nmax(d->a, s->a);
    else if (norm_is_min(p))
      d->a = nmin(d->a, s->a);
    else
      d->a += s->a;
    break;
  case LC_VAR:
  case LC_STD: { /* Chan et al.'s pairwise update: stable for any split */
    if (s->n == 0) break;
    if (d->n == 0) {
      *d = *s;
      break;
    }
    double n1 = (double)d->n, n2 = (double)s->n, n = n1 + n2;
    double delta = s->a - d->a;
    d->a += delta * (n2 / n);
    d->b += s->b + delta * delta * (n1 * n2 / n);
    d->n += s->n;
    break;
  }
  case LC_LOGSUMEXP: {
    if (s->a != s->a || d->a != d->a) {
      d->a = NAN;
      break;
    }
    if (s->a == -INFINITY) break;
    if (d->a == -INFINITY) {
      *d = *s;
      break;
    }
    double m = d->a > s->a ? d->a : s->a;
    if (m == INFINITY) {
      d->a = INFINITY;
      break;
    }
    d->b = d->b * exp(d->a - m) + s->b * exp(s->a - m);
    d->a = m;
    break;
  }
  case LC_ALL: d->i = d->i && s->i; break;
  case LC_ANY: d->i = d->i || s->i; break;
  default: break;
  }
}

/* ---------------------------------------------------------------- block kernels
 * blk_T(op, p, x, n, s) reduces x[0], x[s], ..., x[(n-1)s] into a fresh accumulator. */

#define SUM_LANES 16
#define EXT_LANES 64

/* all/any stop at the first element that decides them; shared by the float and int blocks. */
#define ALL_ANY_CASES                                                                              \
  case LC_ALL:                                                                                     \
    for (int64_t k = 0; k < n && r.i; k++)                                                         \
      r.i = x[k * s] != 0;                                                                         \
    break;                                                                                         \
  case LC_ANY:                                                                                     \
    for (int64_t k = 0; k < n && !r.i; k++)                                                        \
      r.i = x[k * s] != 0;                                                                         \
    break;

#define DEF_FLOAT_BLOCK(T, S)                                                                      \
  static double sum_contig_##S(const T *restrict x, int64_t n) {                                   \
    double acc[SUM_LANES] = {0};                                                                   \
    int64_t k = 0;                                                                                 \
    for (; k + SUM_LANES <= n; k += SUM_LANES)                                                     \
      for (int j = 0; j < SUM_LANES; j++)                                                          \
        acc[j] += (double)x[k + j];                                                                \
    double tail = 0;                                                                               \
    for (; k < n; k++)                                                                             \
      tail += (double)x[k];                                                                        \
    for (int w = SUM_LANES / 2; w > 0; w /= 2)                                                     \
      for (int j = 0; j < w; j++)                                                                  \
        acc[j] += acc[j + w];                                                                      \
    return acc[0] + tail;                                                                          \
  }                                                                                                \
  /* sum of (x - mean)^2, SUM_LANES independent accumulators like sum_contig */                    \
  static double sqdev_contig_##S(const T *restrict x, int64_t n, double mean) {                    \
    double acc[SUM_LANES] = {0};                                                                   \
    int64_t k = 0;                                                                                 \
    for (; k + SUM_LANES <= n; k += SUM_LANES)                                                     \
      for (int j = 0; j < SUM_LANES; j++) {                                                        \
        double d = (double)x[k + j] - mean;                                                        \
        acc[j] += d * d;                                                                           \
      }                                                                                            \
    double tail = 0;                                                                               \
    for (; k < n; k++)                                                                             \
      tail += ((double)x[k] - mean) * ((double)x[k] - mean);                                       \
    for (int w = SUM_LANES / 2; w > 0; w /= 2)                                                     \
      for (int j = 0; j < w; j++)                                                                  \
        acc[j] += acc[j + w];                                                                      \
    return acc[0] + tail;                                                                          \
  }                                                                                                \
  /* EXT_LANES independent lanes: GCC vectorises this elementwise form (vmaxps), not a             \
   * single running max. NaN is tracked on the side, since max ignores it. */                      \
  static double ext_contig_##S(const T *restrict x, int64_t n, bool is_max) {                      \
    T m[EXT_LANES];                                                                                \
    int32_t nan[EXT_LANES];                                                                        \
    for (int j = 0; j < EXT_LANES; j++) {                                                          \
      m[j] = is_max ? (T)-INFINITY : (T)INFINITY;                                                  \
      nan[j] = 0;                                                                                  \
    }                                                                                              \
    int64_t k = 0;                                                                                 \
    if (is_max) {                                                                                  \
      for (; k + EXT_LANES <= n; k += EXT_LANES) {                                                 \
        const T *restrict xb = x + k;                                                              \
        for (int j = 0; j < EXT_LANES; j++) {                                                      \
          T v = xb[j];                                                                             \
          m[j] = v > m[j] ? v : m[j];                                                              \
          nan[j] |= v != v;                                                                        \
        }                                                                                          \
      }                                                                                            \
    } else {                                                                                       \
      for (; k + EXT_LANES <= n; k += EXT_LANES) {                                                 \
        const T *restrict xb = x + k;                                                              \
        for (int j = 0; j < EXT_LANES; j++) {                                                      \
          T v = xb[j];                                                                             \
          m[j] = v < m[j] ? v : m[j];                                                              \
          nan[j] |= v != v;                                                                        \
        }                                                                                          \
      }                                                                                            \
    }                                                                                              \
    double r = m[0];                                                                               \
    int anynan = 0;                                                                                \
    for (int j = 0; j < EXT_LANES; j++) {                                                          \
      r = is_max ? nmax(r, m[j]) : nmin(r, m[j]);                                                  \
      anynan |= nan[j];                                                                            \
    }                                                                                              \
    for (; k < n; k++)                                                                             \
      r = is_max ? nmax(r, x[k]) : nmin(r, x[k]);                                                  \
    return anynan ? NAN : r;                                                                       \
  }                                                                                                \
  static racc blk_##S(int op, double p, const T *x, int64_t n, int64_t s) {                        \
    racc r = racc_init(op, p, true);                                                               \
    switch (op) {                                                                                  \
    case LC_SUM:                                                                                   \
    case LC_MEAN:                                                                                  \
      if (s == 1)                                                                                  \
        r.a = sum_contig_##S(x, n);                                                                \
      else {                                                                                       \
        double a0 = 0, a1 = 0, a2 = 0, a3 = 0;                                                     \
        int64_t k = 0;                                                                             \
        for (; k + 4 <= n; k += 4) {                                                               \
          a0 += x[k * s];                                                                          \
          a1 += x[(k + 1) * s];                                                                    \
          a2 += x[(k + 2) * s];                                                                    \
          a3 += x[(k + 3) * s];                                                                    \
        }                                                                                          \
        for (; k < n; k++)                                                                         \
          a0 += x[k * s];                                                                          \
        r.a = (a0 + a1) + (a2 + a3);                                                               \
      }                                                                                            \
      break;                                                                                       \
    case LC_PROD:                                                                                  \
      for (int64_t k = 0; k < n; k++)                                                              \
        r.a *= (double)x[k * s];                                                                   \
      break;                                                                                       \
    case LC_AMAX:                                                                                  \
    case LC_AMIN:                                                                                  \
      if (s == 1)                                                                                  \
        r.a = ext_contig_##S(x, n, op == LC_AMAX);                                                 \
      else if (op == LC_AMAX)                                                                      \
        for (int64_t k = 0; k < n; k++)                                                            \
          r.a = nmax(r.a, x[k * s]);                                                               \
      else                                                                                         \
        for (int64_t k = 0; k < n; k++)                                                            \
          r.a = nmin(r.a, x[k * s]);                                                               \
      break;                                                                                       \
    case LC_VAR:                                                                                   \
    case LC_STD: { /* two passes over the block: mean, then squared deviations */                  \
      if (n == 0) break;                                                                           \
      double sum = 0;                                                                              \
      if (s == 1)                                                                                  \
        sum = sum_contig_##S(x, n);                                                                \
      else                                                                                         \
        for (int64_t k = 0; k < n; k++)                                                            \
          sum += x[k * s];                                                                         \
      double mean = sum / (double)n, m2 = 0;                                                       \
      if (s == 1)                                                                                  \
        m2 = sqdev_contig_##S(x, n, mean);                                                         \
      else                                                                                         \
        for (int64_t k = 0; k < n; k++) {                                                          \
          double dv = (double)x[k * s] - mean;                                                     \
          m2 += dv * dv;                                                                           \
        }                                                                                          \
      r.n = n;                                                                                     \
      r.a = mean;                                                                                  \
      r.b = m2;                                                                                    \
      break;                                                                                       \
    }                                                                                              \
    case LC_NORM:                                                                                  \
      if (norm_is_max(p))                                                                          \
        for (int64_t k = 0; k < n; k++)                                                            \
          r.a = nmax(r.a, fabs((double)x[k * s]));                                                 \
      else if (norm_is_min(p))                                                                     \
        for (int64_t k = 0; k < n; k++)                                                            \
          r.a = nmin(r.a, fabs((double)x[k * s]));                                                 \
      else if (p == 2)                                                                             \
        for (int64_t k = 0; k < n; k++)                                                            \
          r.a += (double)x[k * s] * (double)x[k * s];                                              \
      else if (p == 1)                                                                             \
        for (int64_t k = 0; k < n; k++)                                                            \
          r.a += fabs((double)x[k * s]);                                                           \
      else if (p == 0)                                                                             \
        for (int64_t k = 0; k < n; k++)                                                            \
          r.a += x[k * s] != 0;                                                                    \
      else                                                                                         \
        for (int64_t k = 0; k < n; k++)                                                            \
          r.a += pow(fabs((double)x[k * s]), p);                                                   \
      break;                                                                                       \
    case LC_LOGSUMEXP: {                                                                           \
      double m = -INFINITY;                                                                        \
      for (int64_t k = 0; k < n; k++)                                                              \
        m = nmax(m, x[k * s]);                                                                     \
      r.a = m;                                                                                     \
      if (m != m || m == INFINITY || m == -INFINITY) break;                                        \
      double e = 0;                                                                                \
      for (int64_t k = 0; k < n; k++)                                                              \
        e += exp((double)x[k * s] - m);                                                            \
      r.b = e;                                                                                     \
      break;                                                                                       \
    }                                                                                              \
    ALL_ANY_CASES                                                                                  \
    default: break;                                                                                \
    }                                                                                              \
    return r;                                                                                      \
  }

#define DEF_INT_BLOCK(T, S)                                                                        \
  static racc blk_##S(int op, double p, const T *x, int64_t n, int64_t s) {                        \
    racc r = racc_init(op, p, false);                                                              \
    switch (op) {                                                                                  \
    case LC_SUM:                                                                                   \
      if (s == 1) {                                                                                \
        uint64_t acc = 0; /* unsigned: wraps like PyTorch's int64 instead of overflowing */        \
        for (int64_t k = 0; k < n; k++)                                                            \
          acc += (uint64_t)(int64_t)x[k];                                                          \
        r.i = (int64_t)acc;                                                                        \
      } else {                                                                                     \
        uint64_t acc = 0;                                                                          \
        for (int64_t k = 0; k < n; k++)                                                            \
          acc += (uint64_t)(int64_t)x[k * s];                                                      \
        r.i = (int64_t)acc;                                                                        \
      }                                                                                            \
      break;                                                                                       \
    case LC_PROD: {                                                                                \
      uint64_t acc = 1;                                                                            \
      for (int64_t k = 0; k < n; k++)                                                              \
        acc *= (uint64_t)(int64_t)x[k * s];                                                        \
      r.i = (int64_t)acc;                                                                          \
      break;                                                                                       \
    }                                                                                              \
    case LC_AMAX:                                                                                  \
      for (int64_t k = 0; k < n; k++)                                                              \
        r.i = (int64_t)x[k * s] > r.i ? (int64_t)x[k * s] : r.i;                                   \
      break;                                                                                       \
    case LC_AMIN:                                                                                  \
      for (int64_t k = 0; k < n; k++)                                                              \
        r.i = (int64_t)x[k * s] < r.i ? (int64_t)x[k * s] : r.i;                                   \
      break;                                                                                       \
    ALL_ANY_CASES                                                                                  \
    default: break;                                                                                \
    }                                                                                              \
    return r;                                                                                      \
  }

DEF_FLOAT_BLOCK(float, f32)
DEF_FLOAT_BLOCK(double, f64)
DEF_INT_BLOCK(int32_t, i32)
DEF_INT_BLOCK(int64_t, i64)
DEF_INT_BLOCK(uint8_t, b)

static racc blk(int op, double p, lc_dtype dt, const char *x, int64_t n, int64_t s) {
  switch (dt) {
  case LC_FLOAT32: return blk_f32(op, p, (const float *)x, n, s);
  case LC_FLOAT64: return blk_f64(op, p, (const double *)x, n, s);
  case LC_INT32: return blk_i32(op, p, (const int32_t *)x, n, s);
  case LC_INT64: return blk_i64(op, p, (const int64_t *)x, n, s);
  default: return blk_b(op, p, (const uint8_t *)x, n, s);
  }
}

/* Writes the finished reduction of N elements to out[o]. */
static void racc_store(int op, double p, int64_t corr, int64_t N, const racc *r, lc_dtype in_dt,
                       void *out, lc_dtype odt, int64_t o) {
  if (op == LC_ALL || op == LC_ANY) {
    ((uint8_t *)out)[o] = r->i != 0;
    return;
  }
  if (!is_float(in_dt)) { /* sum/prod -> int64, amax/amin -> the input dtype */
    switch (odt) {
    case LC_INT64: ((int64_t *)out)[o] = r->i; break;
    case LC_INT32: ((int32_t *)out)[o] = (int32_t)r->i; break;
    default: ((uint8_t *)out)[o] = r->i != 0; break;
    }
    return;
  }
  double v = r->a;
  switch (op) {
  case LC_MEAN: v = r->a / (double)N; break; /* N == 0: 0/0 = nan, like PyTorch */
  case LC_VAR:
  case LC_STD: {
    /* PyTorch divides by max(0, N - correction): nan for 0/0, inf for M2/0. */
    double den = (double)N - (double)corr; /* in double: corr may be near +-2^63 */
    if (den < 0) den = 0;
    v = (N > 0 ? r->b : 0.0) / den;
    if (op == LC_STD) v = sqrt(v);
    break;
  }
  case LC_NORM:
    if (norm_is_max(p) || norm_is_min(p) || p == 0 || p == 1)
      v = r->a;
    else if (p == 2)
      v = sqrt(r->a);
    else
      v = pow(r->a, 1.0 / p);
    if (N == 0 && norm_is_min(p)) v = INFINITY;
    break;
  case LC_LOGSUMEXP:
    if (r->a != r->a || r->a == INFINITY || r->a == -INFINITY)
      v = r->a;
    else
      v = r->a + log(r->b);
    break;
  default: break;
  }
  if (odt == LC_FLOAT32)
    ((float *)out)[o] = (float)v;
  else
    ((double *)out)[o] = v;
}

/* ================================================================ forward driver */

typedef struct rjob {
  const rplan *p;
  int op;
  double pn;    /* norm's p */
  int64_t corr; /* var/std */
  lc_dtype dt;
  size_t es;
  const char *x;
  void *out;
  lc_dtype odt;
  racc *partials; /* full-reduction chunks */
  int64_t chunk;  /* elements (single run) or rows per chunk */
} rjob;

/* Output elements [b, e): each walks its runs. */
static void reduce_outputs(void *ctx, int64_t b, int64_t e) {
  const rjob *j = ctx;
  const rplan *p = j->p;
  const lc_iter *it = &p->it;
  kpos k;
  kpos_seek(p, &k, b);
  int64_t offs[LC_ITER_MAX_OPS];
  for (int64_t o = b; o < e; o++) {
    racc r = racc_init(j->op, j->pn, is_float(j->dt));
    if (p->nred > 0) {
      for (int64_t row = 0; row < it->outer; row++) {
        lc_iter_row(it, row, offs);
        const char *base = j->x + (k.off[P_X] + offs[0]) * (int64_t)j->es;
        racc s = blk(j->op, j->pn, j->dt, base, it->inner, it->inner_stride[0]);
        if (row == 0)
          r = s;
        else
          racc_merge(j->op, j->pn, &r, &s);
      }
    }
    racc_store(j->op, j->pn, j->corr, p->nred, &r, j->dt, j->out, j->odt, o);
    kpos_next(p, &k);
  }
}

/* Chunks [b, e) of a full reduction (one output element, p->nred > R_CHUNK). */
static void reduce_chunks(void *ctx, int64_t b, int64_t e) {
  const rjob *j = ctx;
  const lc_iter *it = &j->p->it;
  int64_t offs[LC_ITER_MAX_OPS];
  for (int64_t c = b; c < e; c++) {
    racc r;
    if (it->outer == 1) { /* one run: chunk it by elements */
      int64_t s = c * j->chunk, n = it->inner - s < j->chunk ? it->inner - s : j->chunk;
      lc_iter_row(it, 0, offs);
      r = blk(j->op, j->pn, j->dt, j->x + (offs[0] + s * it->inner_stride[0]) * (int64_t)j->es, n,
              it->inner_stride[0]);
    } else { /* many runs: chunk by rows */
      int64_t r0 = c * j->chunk, r1 = r0 + j->chunk < it->outer ? r0 + j->chunk : it->outer;
      r = racc_init(j->op, j->pn, is_float(j->dt));
      for (int64_t row = r0; row < r1; row++) {
        lc_iter_row(it, row, offs);
        racc s = blk(j->op, j->pn, j->dt, j->x + offs[0] * (int64_t)j->es, it->inner,
                     it->inner_stride[0]);
        if (row == r0)
          r = s;
        else
          racc_merge(j->op, j->pn, &r, &s);
      }
    }
    j->partials[c] = r;
  }
}

/* ---- column path: contiguous x viewed as (A, R, C), reducing R (sum/mean) ---- */
typedef struct cjob {
  const char *x;
  void *out;
  lc_dtype dt, odt;
  int64_t A, R, C, ncb;
  double scale; /* mean: 1/R */
} cjob;

#define DEF_COLSUM(T, S)                                                                           \
  static void colsum_##S(const T *restrict x, int64_t R, int64_t C, int64_t w,                     \
                         double *restrict acc) {                                                   \
    for (int64_t c = 0; c < w; c++)                                                                \
      acc[c] = 0;                                                                                  \
    for (int64_t r = 0; r < R; r++) {                                                              \
      const T *restrict row = x + r * C;                                                           \
      for (int64_t c = 0; c < w; c++)                                                              \
        acc[c] += (double)row[c];                                                                  \
    }                                                                                              \
  }
DEF_COLSUM(float, f32)
DEF_COLSUM(double, f64)

#define DEF_COLSUM_INT(T, S)                                                                       \
  static void colsum_##S(const T *restrict x, int64_t R, int64_t C, int64_t w,                     \
                         uint64_t *restrict acc) {                                                 \
    for (int64_t c = 0; c < w; c++)                                                                \
      acc[c] = 0;                                                                                  \
    for (int64_t r = 0; r < R; r++) {                                                              \
      const T *restrict row = x + r * C;                                                           \
      for (int64_t c = 0; c < w; c++)                                                              \
        acc[c] += (uint64_t)(int64_t)row[c];                                                       \
    }                                                                                              \
  }
DEF_COLSUM_INT(int32_t, i32)
DEF_COLSUM_INT(int64_t, i64)
DEF_COLSUM_INT(uint8_t, b)

static void colsum_tasks(void *ctx, int64_t b, int64_t e) {
  const cjob *j = ctx;
  size_t es = lc_dtype_size(j->dt);
  for (int64_t t = b; t < e; t++) {
    int64_t a = t / j->ncb, c0 = (t % j->ncb) * R_COLS;
    int64_t w = j->C - c0 < R_COLS ? j->C - c0 : R_COLS;
    const char *x = j->x + (a * j->R * j->C + c0) * (int64_t)es;
    int64_t o = a * j->C + c0;
    if (is_float(j->dt)) {
      double acc[R_COLS];
      if (j->dt == LC_FLOAT32)
        colsum_f32((const float *)x, j->R, j->C, w, acc);
      else
        colsum_f64((const double *)x, j->R, j->C, w, acc);
      if (j->odt == LC_FLOAT32)
        for (int64_t c = 0; c < w; c++)
          ((float *)j->out)[o + c] = (float)(acc[c] * j->scale);
      else
        for (int64_t c = 0; c < w; c++)
          ((double *)j->out)[o + c] = acc[c] * j->scale;
    } else {
      uint64_t acc[R_COLS];
      if (j->dt == LC_INT32)
        colsum_i32((const int32_t *)x, j->R, j->C, w, acc);
      else if (j->dt == LC_INT64)
        colsum_i64((const int64_t *)x, j->R, j->C, w, acc);
      else
        colsum_b((const uint8_t *)x, j->R, j->C, w, acc);
      for (int64_t c = 0; c < w; c++)
        ((int64_t *)j->out)[o + c] = (int64_t)acc[c];
    }
  }
}

/* True (and A, R, C set) when x is contiguous and the reduced dims are one block of adjacent
 * dims followed by at least one kept dim of size > 1 worth vectorising over. */
static bool column_layout(const lc_tensor *x, const bool *red, int64_t *A, int64_t *R, int64_t *C) {
  if (!x->contiguous) return false;
  int d0 = -1, d1 = -1;
  for (int d = 0; d < x->ndim; d++) {
    if (!red[d]) continue;
    if (d0 < 0)
      d0 = d;
    else if (d != d1)
      return false; /* not adjacent */
    d1 = d + 1;
  }
  if (d0 < 0 || d1 >= x->ndim) return false;
  *A = lc_shape_numel(d0, x->shape);
  *R = lc_shape_numel(d1 - d0, x->shape + d0);
  *C = lc_shape_numel(x->ndim - d1, x->shape + d1);
  return *C >= 2 && *R >= 1;
}

static lc_dtype reduce_out_dtype(int op, lc_dtype dt) {
  switch (reduce_dtypes[op]) {
  case RD_BOOL: return LC_BOOL;
  case RD_WIDEN: return is_float(dt) ? dt : LC_INT64;
  default: return dt;
  }
}

/* The reduction itself (no argument checks beyond dims): used by forward and by backward
 * functions that need e.g. a mean. */
static lc_status reduce_compute(int op, const lc_tensor *x, const bool *red, bool keepdim,
                                double pn, int64_t corr, lc_tensor **out) {
  const char *name = lc_op_reduce[op].name;
  rplan p;
  plan_build(&p, x->ndim, x->shape, red, keepdim, x->strides, NULL);
  if ((op == LC_AMAX || op == LC_AMIN) && p.nred == 0 && p.nout > 0)
    return lc_set_error(LC_EARG, "%s: cannot reduce an empty dimension", name);
  lc_dtype odt = reduce_out_dtype(op, x->dtype);
  lc_tensor *o = NULL;
  lc_status st = lc_tensor_new(p.out_ndim, p.out_shape, odt, &o);
  if (st) return st;
  if (p.nout == 0) {
    *out = o;
    return LC_OK;
  }
  int64_t A, R, C;
  if ((op == LC_SUM || op == LC_MEAN) && column_layout(x, red, &A, &R, &C)) {
    cjob cj = {lc_data(x),
               lc_data(o),
               x->dtype,
               odt,
               A,
               R,
               C,
               (C + R_COLS - 1) / R_COLS,
               op == LC_MEAN ? 1.0 / (double)R : 1.0};
    lc_parallel_for(A * cj.ncb, R * (C < R_COLS ? C : R_COLS), colsum_tasks, &cj);
    *out = o;
    return LC_OK;
  }
  rjob j = {&p,         op,         pn,  corr, x->dtype, lc_dtype_size(x->dtype),
            lc_data(x), lc_data(o), odt, NULL, 0};
  if (p.nout == 1 && p.nred > R_CHUNK) {
    const lc_iter *it = &p.it;
    int64_t nchunks;
    if (it->outer == 1) {
      j.chunk = R_CHUNK;
      nchunks = (it->inner + R_CHUNK - 1) / R_CHUNK;
    } else {
      j.chunk = it->inner >= R_CHUNK ? 1 : R_CHUNK / it->inner;
      nchunks = (it->outer + j.chunk - 1) / j.chunk;
    }
    j.partials = malloc((size_t)nchunks * sizeof(racc));
    if (!j.partials) {
      lc_release(o);
      return lc_error_oom((size_t)nchunks * sizeof(racc));
    }
    lc_parallel_for(nchunks, R_CHUNK, reduce_chunks, &j);
    racc r = j.partials[0];
    for (int64_t c = 1; c < nchunks; c++)
      racc_merge(op, pn, &r, &j.partials[c]);
    racc_store(op, pn, corr, p.nred, &r, x->dtype, j.out, odt, 0);
    free(j.partials);
  } else {
    lc_parallel_for(p.nout, plan_cost(&p), reduce_outputs, &j);
  }
  *out = o;
  return LC_OK;
}

static lc_status reduce_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                                const lc_op_args *args, lc_tensor **out) {
  int code = op->code;
  const char *name = op->name;
  if (n != 1 || !in[0]) return lc_set_error(LC_EARG, "%s: expected 1 input tensor", name);
  const lc_tensor *x = in[0];
  if (reduce_dtypes[code] == RD_FLOAT && !is_float(x->dtype))
    return lc_set_error(LC_EDTYPE,
                        "%s: expected a float32 or float64 tensor, got %s (convert it with "
                        ":float() or :double() first)",
                        name, lc_dtype_name(x->dtype));
  bool red[LC_MAX_DIMS];
  lc_status st = parse_dims(name, args, x->ndim, red);
  if (st) return st;
  double pn = lc_reduce_args[code] == LC_RA_P ? args->f[0] : 0;
  if (pn != pn) return lc_set_error(LC_EARG, "%s: p must not be nan", name);
  int64_t corr = lc_reduce_args[code] == LC_RA_CORRECTION ? (int64_t)args->f[1] : 0;
  return reduce_compute(code, x, red, (args->flags & LC_ARG_KEEPDIM) != 0, pn, corr, &out[0]);
}

/* ================================================================ reduce backward */

typedef struct bjob {
  const rplan *p;
  int op;
  double pn;
  int64_t corr;
  lc_dtype dt;
  const char *x; /* may be NULL (sum/mean) */
  char *gi;
  const lc_tensor *g, *o;
} bjob;

/* For each output element: up to two passes over its runs of x / gi. Math in double. */
#define DEF_RBACK(T, S)                                                                            \
  static void rback_##S(void *ctx, int64_t b, int64_t e) {                                         \
    const bjob *j = ctx;                                                                           \
    const rplan *p = j->p;                                                                         \
    const lc_iter *it = &p->it;                                                                    \
    const T *x = (const T *)j->x;                                                                  \
    T *gi = (T *)j->gi;                                                                            \
    const char *gd = lc_data(j->g);                                                                \
    const char *od = j->o ? lc_data(j->o) : NULL;                                                  \
    double N = (double)p->nred, pn = j->pn;                                                        \
    int64_t offs[LC_ITER_MAX_OPS];                                                                 \
    kpos k;                                                                                        \
    kpos_seek(p, &k, b);                                                                           \
    for (int64_t oi = b; oi < e; oi++, kpos_next(p, &k)) {                                         \
      double gv = lc_load_f64(gd, j->g->dtype, k.off[P_G]);                                        \
      double ov = od ? lc_load_f64(od, j->o->dtype, k.off[P_O]) : 0;                               \
      /* pass 1: per-slice statistics */                                                           \
      double s1 = 0, s2 = 1;                                                                       \
      int64_t cnt = 0;                                                                             \
      bool pass1 = j->op == LC_PROD || j->op == LC_AMAX || j->op == LC_AMIN || j->op == LC_VAR ||  \
                   j->op == LC_STD || (j->op == LC_NORM && (norm_is_max(pn) || norm_is_min(pn)));  \
      if (pass1)                                                                                   \
        for (int64_t row = 0; row < it->outer; row++) {                                            \
          lc_iter_row(it, row, offs);                                                              \
          const T *xr = x + k.off[P_X] + offs[0];                                                  \
          int64_t xs = it->inner_stride[0];                                                        \
          for (int64_t q = 0; q < it->inner; q++) {                                                \
            double v = xr[q * xs];                                                                 \
            switch (j->op) {                                                                       \
            case LC_PROD:                                                                          \
              if (v == 0)                                                                          \
                cnt++;                                                                             \
              else                                                                                 \
                s2 *= v;                                                                           \
              break;                                                                               \
            case LC_AMAX:                                                                          \
            case LC_AMIN: cnt += (v == ov) || (v != v && ov != ov); break;                         \
            case LC_NORM: cnt += fabs(v) == ov; break;                                             \
            default: s1 += v; break; /* var/std: sum for the mean */                               \
            }                                                                                      \
          }                                                                                        \
        }                                                                                          \
      double mean = s1 / N;                                                                        \
      double den = (double)(p->nred - j->corr > 0 ? p->nred - j->corr : 0);                        \
      for (int64_t row = 0; row < it->outer; row++) {                                              \
        lc_iter_row(it, row, offs);                                                                \
        const T *xr = x ? x + k.off[P_X] + offs[0] : NULL;                                         \
        T *gr = gi + k.off[P_GI] + offs[1];                                                        \
        int64_t xs = it->inner_stride[0], gs = it->inner_stride[1];                                \
        switch (j->op) {                                                                           \
        case LC_SUM:                                                                               \
          for (int64_t q = 0; q < it->inner; q++)                                                  \
            gr[q * gs] = (T)gv;                                                                    \
          break;                                                                                   \
        case LC_MEAN:                                                                              \
          for (int64_t q = 0; q < it->inner; q++)                                                  \
            gr[q * gs] = (T)(gv / N);                                                              \
          break;                                                                                   \
        case LC_PROD:                                                                              \
          for (int64_t q = 0; q < it->inner; q++) {                                                \
            double v = xr[q * xs];                                                                 \
            double r = cnt == 0 ? gv * ov / v : (cnt == 1 && v == 0 ? gv * s2 : 0.0);              \
            gr[q * gs] = (T)r;                                                                     \
          }                                                                                        \
          break;                                                                                   \
        case LC_AMAX:                                                                              \
        case LC_AMIN:                                                                              \
          for (int64_t q = 0; q < it->inner; q++) {                                                \
            double v = xr[q * xs];                                                                 \
            bool hit = (v == ov) || (v != v && ov != ov);                                          \
            gr[q * gs] = (T)(hit ? gv / (double)cnt : 0.0);                                        \
          }                                                                                        \
          break;                                                                                   \
        case LC_VAR:                                                                               \
          for (int64_t q = 0; q < it->inner; q++)                                                  \
            gr[q * gs] = (T)(gv * 2.0 * ((double)xr[q * xs] - mean) / den);                        \
          break;                                                                                   \
        case LC_STD:                                                                               \
          /* std == 0 gives 0, like PyTorch's masked_fill */                                       \
          for (int64_t q = 0; q < it->inner; q++)                                                  \
            gr[q * gs] = (T)(ov == 0 ? 0.0 : gv * ((double)xr[q * xs] - mean) / (den * ov));       \
          break;                                                                                   \
        case LC_NORM:                                                                              \
          for (int64_t q = 0; q < it->inner; q++) {                                                \
            double v = xr[q * xs], sg = (v > 0) - (v < 0), r;                                      \
            if (norm_is_max(pn) || norm_is_min(pn))                                                \
              r = fabs(v) == ov ? gv * sg / cnt : 0.0;                                             \
            else if (pn == 0)                                                                      \
              r = 0;                                                                               \
            else if (pn == 1)                                                                      \
              r = gv * sg;                                                                         \
            else if (ov == 0)                                                                      \
              r = 0;                                                                               \
            else if (pn == 2)                                                                      \
              r = gv * v / ov;                                                                     \
            else                                                                                   \
              r = gv * sg * pow(fabs(v), pn - 1) / pow(ov, pn - 1);                                \
            gr[q * gs] = (T)r;                                                                     \
          }                                                                                        \
          break;                                                                                   \
        case LC_LOGSUMEXP:                                                                         \
          for (int64_t q = 0; q < it->inner; q++)                                                  \
            gr[q * gs] = (T)(gv * exp((double)xr[q * xs] - ov));                                   \
          break;                                                                                   \
        default: break;                                                                            \
        }                                                                                          \
      }                                                                                            \
    }                                                                                              \
  }
DEF_RBACK(float, f32)
DEF_RBACK(double, f64)

static lc_status reduce_backward(const lc_op_ctx *ctx, const lc_tensor *grad_out,
                                 lc_tensor **grad_in) {
  grad_in[0] = NULL;
  if (!ctx->needs_grad[0]) return LC_OK;
  int code = ctx->op->code;
  const lc_meta *m = &ctx->in[0];
  bool red[LC_MAX_DIMS];
  lc_status st = parse_dims(ctx->op->name, ctx->args, m->ndim, red);
  if (st) return st;
  if (!is_float(m->dtype))
    return lc_set_error(LC_EDTYPE, "%s: backward needs a float tensor, got %s", ctx->op->name,
                        lc_dtype_name(m->dtype));
  lc_tensor *x = NULL, *o = NULL;
  int k = 0;
  if (ctx->op->save & LC_SAVE_IN(0)) {
    if ((st = lc_ctx_saved(ctx, k++, &x))) return st;
  }
  if (ctx->op->save & LC_SAVE_OUT(0)) {
    if ((st = lc_ctx_saved(ctx, k++, &o))) return st;
  }
  lc_tensor *gi = NULL;
  if ((st = lc_tensor_new(m->ndim, m->shape, m->dtype, &gi))) return st;
  rplan p;
  plan_build(&p, m->ndim, m->shape, red, (ctx->args->flags & LC_ARG_KEEPDIM) != 0,
             x ? x->strides : gi->strides, gi->strides);
  plan_out_strides(&p, P_G, grad_out);
  if (o) plan_out_strides(&p, P_O, o);
  bjob j = {&p,
            code,
            ctx->args->f[0],
            (int64_t)ctx->args->f[1],
            m->dtype,
            x ? lc_data(x) : NULL,
            lc_data(gi),
            grad_out,
            o};
  if (p.nred > 0 && p.nout > 0)
    lc_parallel_for(p.nout, plan_cost(&p), m->dtype == LC_FLOAT32 ? rback_f32 : rback_f64, &j);
  grad_in[0] = gi;
  return LC_OK;
}

/* One op per row of LC_REDUCE_LIST; the args: i = the dims (none with LC_ARG_ALL), flags
 * LC_ARG_KEEPDIM, f[0] = p (P rows), f[1] = correction (CORRECTION rows). */
#define RD_SAVE_NONE 0
#define RD_SAVE_IN LC_SAVE_IN(0)
#define RD_SAVE_IN_OUT (LC_SAVE_IN(0) | LC_SAVE_OUT(0))
/* create_graph: the gradients of reduce_backward as recorded ops. g is first given the kept
 * (size-1) reduced dims, so it broadcasts against the input. */
/* The exclusive product along the last dim of xr (shape {kept..., R}): entry i is the product
 * of the entries before it (reverse: after it), from a recorded cumprod, so it is exact with
 * zeros and differentiable again. */
static lc_tensor *exclusive_cumprod(lc_gb *b, lc_tensor *xr, int nd, bool reverse) {
  if (!xr) return NULL;
  int last = nd - 1;
  int64_t R = xr->shape[last];
  lc_op_args fa = {.i = {last}, .ni = 1};
  lc_tensor *src = reverse ? lc_gb_op(b, &lc_op_flip, 1, &xr, &fa) : xr;
  lc_op_args ca = {.i = {last, 0}, .ni = 2};
  lc_tensor *c = src ? lc_gb_op(b, &lc_op_cumprod, 1, &src, &ca) : NULL;
  lc_op_args sa = {.i = {last, 0, R - 1, 1}, .ni = 4};
  lc_tensor *head = c ? lc_gb_op(b, &lc_op_slice, 1, &c, &sa) : NULL;
  lc_meta om = {.ndim = nd, .dtype = xr->dtype};
  memcpy(om.shape, xr->shape, (size_t)nd * sizeof om.shape[0]);
  om.shape[last] = 1;
  lc_tensor *parts[2] = {lc_gb_sc(b, LC_ADD, lc_gb_zeros(b, &om, xr->dtype), 1.0), head};
  lc_op_args ja = {.i = {last}, .ni = 1};
  lc_tensor *e = parts[0] && head ? lc_gb_op(b, &lc_op_cat, 2, parts, &ja) : NULL;
  return reverse && e ? lc_gb_op(b, &lc_op_flip, 1, &e, &fa) : e;
}

/* prod's gradient factor: for each element, the product of the others in its reduction group
 * (the reduced dims moved last and flattened; exclusive products from both sides). */
static lc_tensor *prod_of_others(lc_gb *b, lc_tensor *x, const lc_meta *m, const bool *red) {
  if (!x) return NULL;
  int64_t perm[LC_MAX_DIMS], inv[LC_MAX_DIMS], rs[LC_MAX_DIMS], ps[LC_MAX_DIMS];
  int nk = 0, k = 0;
  int64_t R = 1;
  for (int d = 0; d < m->ndim; d++)
    if (!red[d]) perm[k++] = d;
  nk = k;
  for (int d = 0; d < m->ndim; d++)
    if (red[d]) {
      perm[k++] = d;
      R *= m->shape[d];
    }
  if (R == 0 || m->ndim == 0) return lc_gb_sc(b, LC_ADD, lc_gb_zeros(b, m, x->dtype), 1.0);
  for (int d = 0; d < m->ndim; d++) {
    inv[perm[d]] = d;
    ps[d] = m->shape[perm[d]];
  }
  for (int d = 0; d < nk; d++)
    rs[d] = ps[d];
  rs[nk] = R;
  lc_tensor *xr = lc_gb_reshape(b, lc_gb_permute(b, x, m->ndim, perm), nk + 1, rs);
  lc_tensor *o = lc_gb_bin(b, LC_MUL, exclusive_cumprod(b, xr, nk + 1, false),
                           exclusive_cumprod(b, xr, nk + 1, true));
  return lc_gb_permute(b, lc_gb_reshape(b, o, m->ndim, ps), m->ndim, inv);
}

static lc_status reduce_backward_graph(const lc_op_ctx *ctx, const lc_tensor *grad_out,
                                       lc_tensor **grad_in) {
  if (!ctx->needs_grad[0]) return LC_OK;
  const int code = ctx->op->code;
  const lc_meta *m = &ctx->in[0];
  bool red[LC_MAX_DIMS];
  lc_status st = parse_dims(ctx->op->name, ctx->args, m->ndim, red);
  if (st) return st;
  int64_t ks[LC_MAX_DIMS];
  double n = 1;
  for (int d = 0; d < m->ndim; d++) {
    ks[d] = red[d] ? 1 : m->shape[d];
    if (red[d]) n *= (double)m->shape[d];
  }
  lc_gb b = LC_GB_INIT(ctx);
  int k = 0;
  lc_tensor *x = (ctx->op->save & LC_SAVE_IN(0)) ? lc_gb_saved(&b, k++) : NULL;
  lc_tensor *o = (ctx->op->save & LC_SAVE_OUT(0)) ? lc_gb_saved(&b, k++) : NULL;
  lc_tensor *g = lc_gb_reshape(&b, grad_out, m->ndim, ks), *r = NULL;
  if (o) o = lc_gb_reshape(&b, o, m->ndim, ks);
  const double p = ctx->args->f[0], corr = ctx->args->f[1];
  switch (code) {
  case LC_SUM: r = lc_gb_expand(&b, g, m->ndim, m->shape); break;
  case LC_MEAN: r = lc_gb_expand(&b, lc_gb_sc(&b, LC_DIV, g, n), m->ndim, m->shape); break;
  case LC_PROD: r = lc_gb_bin(&b, LC_MUL, g, prod_of_others(&b, x, m, red)); break;
  case LC_AMAX:
  case LC_AMIN: { /* shared evenly between the tied extremes, as PyTorch */
    lc_tensor *hit = lc_gb_cast(&b, lc_gb_bin(&b, LC_EQ, x, o), grad_out->dtype);
    r = lc_gb_bin(&b, LC_DIV, lc_gb_bin(&b, LC_MUL, g, hit), lc_gb_sum_keep(&b, hit, red));
    break;
  }
  case LC_VAR:
  case LC_STD: {
    lc_tensor *dev = lc_gb_bin(&b, LC_SUB, x, lc_gb_sc(&b, LC_DIV, lc_gb_sum_keep(&b, x, red), n));
    lc_tensor *scale = lc_gb_sc(&b, LC_DIV, dev, n - corr);
    if (code == LC_VAR)
      r = lc_gb_bin(&b, LC_MUL, g, lc_gb_sc(&b, LC_MUL, scale, 2));
    else
      r = lc_gb_bin(&b, LC_MUL, g, lc_gb_bin(&b, LC_DIV, scale, o));
    break;
  }
  case LC_NORM:
    if (isinf(p)) { /* shared evenly between the tied extremes of |x|, as the plain backward */
      lc_tensor *hit =
          lc_gb_cast(&b, lc_gb_bin(&b, LC_EQ, lc_gb_un(&b, LC_ABS, x), o), grad_out->dtype);
      r = lc_gb_bin(&b, LC_DIV,
                    lc_gb_bin(&b, LC_MUL, g, lc_gb_bin(&b, LC_MUL, hit, lc_gb_un(&b, LC_SIGN, x))),
                    lc_gb_sum_keep(&b, hit, red));
    } else if (p == 0) { /* a count: no gradient */
      r = lc_gb_zeros(&b, m, grad_out->dtype);
    } else if (p == 1) {
      r = lc_gb_bin(&b, LC_MUL, g, lc_gb_un(&b, LC_SIGN, x));
    } else {
      /* sign(x) |x|^(p-1) / norm^(p-1), 0 where the norm is 0 */
      lc_tensor *num = p == 2 ? x
                              : lc_gb_bin(&b, LC_MUL, lc_gb_un(&b, LC_SIGN, x),
                                          lc_gb_sc(&b, LC_POW, lc_gb_un(&b, LC_ABS, x), p - 1));
      lc_tensor *den = p == 2 ? o : lc_gb_sc(&b, LC_POW, o, p - 1);
      lc_tensor *q = lc_gb_bin(&b, LC_MUL, g, lc_gb_bin(&b, LC_DIV, num, den));
      r = lc_gb_mask(&b, lc_gb_sc(&b, LC_NE, o, 0), q);
    }
    break;
  case LC_LOGSUMEXP:
    r = lc_gb_bin(&b, LC_MUL, g, lc_gb_un(&b, LC_EXP, lc_gb_bin(&b, LC_SUB, x, o)));
    break;
  default:
    b.st = lc_set_error(LC_EGRAD,
                        "%s: higher-order gradients (create_graph = true) are not implemented "
                        "for %s yet",
                        ctx->op->grad_fn_name, ctx->op->name);
  }
  lc_gb_grad(&b, 0, r, grad_in);
  return lc_gb_end(&b, grad_in);
}

#define REDUCE_DEF_(CODE, NAME, GradFn, DTYPES, SAVES, ARGS)                                       \
  [LC_##CODE] = {.name = #NAME,                                                                    \
                 .grad_fn_name = GradFn,                                                           \
                 .n_inputs = 1,                                                                    \
                 .n_outputs = 1,                                                                   \
                 .code = LC_##CODE,                                                                \
                 .save = RD_SAVE_##SAVES,                                                          \
                 .forward = reduce_forward,                                                        \
                 .backward = GradFn ? reduce_backward : NULL,                                      \
                 .backward_graph = GradFn ? reduce_backward_graph : NULL},
const lc_op_def lc_op_reduce[LC_REDUCE_COUNT] = {LC_REDUCE_LIST(REDUCE_DEF_)};
#undef REDUCE_DEF_

/* ================================================================ max/min along a dim */

/* Index of the max (or min) of x[0], x[s], ..., first occurrence; the first NaN wins. */
#define DEF_ARGEXT(T, S, ISFLOAT)                                                                  \
  static int64_t argext_##S(const T *x, int64_t n, int64_t s, bool is_max) {                       \
    int64_t best = 0;                                                                              \
    T bv = x[0];                                                                                   \
    if (ISFLOAT && bv != bv) return 0;                                                             \
    for (int64_t k = 1; k < n; k++) {                                                              \
      T v = x[k * s];                                                                              \
      if (ISFLOAT && v != v) return k;                                                             \
      if (is_max ? v > bv : v < bv) {                                                              \
        bv = v;                                                                                    \
        best = k;                                                                                  \
      }                                                                                            \
    }                                                                                              \
    return best;                                                                                   \
  }
DEF_ARGEXT(float, f32, 1)
DEF_ARGEXT(double, f64, 1)
DEF_ARGEXT(int32_t, i32, 0)
DEF_ARGEXT(int64_t, i64, 0)
DEF_ARGEXT(uint8_t, b, 0)

static int64_t argext(lc_dtype dt, const char *x, int64_t n, int64_t s, bool is_max) {
  switch (dt) {
  case LC_FLOAT32: return argext_f32((const float *)x, n, s, is_max);
  case LC_FLOAT64: return argext_f64((const double *)x, n, s, is_max);
  case LC_INT32: return argext_i32((const int32_t *)x, n, s, is_max);
  case LC_INT64: return argext_i64((const int64_t *)x, n, s, is_max);
  default: return argext_b((const uint8_t *)x, n, s, is_max);
  }
}

typedef struct mjob {
  const rplan *p;
  bool is_max;
  lc_dtype dt;
  size_t es;
  const char *x;
  char *vals; /* may be NULL (argmax) */
  int64_t *idx;
  int64_t dsize, dstride;
} mjob;

static void maxdim_outputs(void *ctx, int64_t b, int64_t e) {
  const mjob *j = ctx;
  kpos k;
  kpos_seek(j->p, &k, b);
  for (int64_t o = b; o < e; o++, kpos_next(j->p, &k)) {
    const char *base = j->x + k.off[P_X] * (int64_t)j->es;
    int64_t i = argext(j->dt, base, j->dsize, j->dstride, j->is_max);
    j->idx[o] = i;
    if (j->vals)
      memcpy(j->vals + o * (int64_t)j->es, base + i * j->dstride * (int64_t)j->es, j->es);
  }
}

/* values (may be NULL) and indices of the max/min of x along dim. */
static lc_status maxdim_compute(const char *name, const lc_tensor *x, int dim, bool keepdim,
                                bool is_max, lc_tensor **vals, lc_tensor **idx) {
  lc_status st = lc_wrap_dim(&dim, x->ndim, name);
  if (st) return st;
  bool red[LC_MAX_DIMS] = {false};
  if (x->ndim > 0) red[dim] = true;
  rplan p;
  plan_build(&p, x->ndim, x->shape, red, keepdim, x->strides, NULL);
  if (p.nred == 0 && p.nout > 0)
    return lc_set_error(LC_EARG, "%s: cannot reduce an empty dimension", name);
  lc_tensor *v = NULL, *ix = NULL;
  if (vals && (st = lc_tensor_new(p.out_ndim, p.out_shape, x->dtype, &v))) return st;
  if ((st = lc_tensor_new(p.out_ndim, p.out_shape, LC_INT64, &ix))) {
    lc_release(v);
    return st;
  }
  mjob j = {&p,
            is_max,
            x->dtype,
            lc_dtype_size(x->dtype),
            lc_data(x),
            v ? lc_data(v) : NULL,
            lc_data(ix),
            x->ndim > 0 ? x->shape[dim] : 1,
            x->ndim > 0 ? x->strides[dim] : 0};
  if (p.nout > 0) lc_parallel_for(p.nout, plan_cost(&p), maxdim_outputs, &j);
  if (vals) *vals = v;
  *idx = ix;
  return LC_OK;
}

static lc_status maxdim_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                                const lc_op_args *args, lc_tensor **out) {
  if (n != 1 || !in[0]) return lc_set_error(LC_EARG, "%s: expected 1 input tensor", op->name);
  return maxdim_compute(op->name, in[0], (int)args->i[0], (args->flags & LC_ARG_KEEPDIM) != 0,
                        op->code == LC_AMAX, &out[0], &out[1]);
}

/* Scatters grad_out to the saved indices; everything else gets 0. */
#define DEF_MAXBACK(T, S)                                                                          \
  static void maxback_##S(const rplan *p, const lc_tensor *g, const lc_tensor *ix, T *gi,          \
                          int64_t dstride) {                                                       \
    const char *gd = lc_data(g);                                                                   \
    const int64_t *id = lc_data(ix);                                                               \
    kpos k;                                                                                        \
    kpos_seek(p, &k, 0);                                                                           \
    for (int64_t o = 0; o < p->nout; o++, kpos_next(p, &k))                                        \
      gi[k.off[P_GI] + id[k.off[P_O]] * dstride] = (T)lc_load_f64(gd, g->dtype, k.off[P_G]);       \
  }
DEF_MAXBACK(float, f32)
DEF_MAXBACK(double, f64)

static lc_status maxdim_backward(const lc_op_ctx *ctx, const lc_tensor *grad_out,
                                 lc_tensor **grad_in) {
  grad_in[0] = NULL;
  if (!ctx->needs_grad[0]) return LC_OK;
  const lc_meta *m = &ctx->in[0];
  lc_tensor *ix = NULL, *gi = NULL;
  lc_status st = lc_ctx_saved(ctx, 0, &ix);
  if (st) return st;
  if ((st = lc_tensor_new(m->ndim, m->shape, m->dtype, &gi))) return st;
  memset(lc_data(gi), 0, (size_t)gi->numel * lc_dtype_size(gi->dtype));
  int dim = (int)ctx->args->i[0];
  if ((st = lc_wrap_dim(&dim, m->ndim, ctx->op->name))) {
    lc_release(gi);
    return st;
  }
  bool red[LC_MAX_DIMS] = {false};
  if (m->ndim > 0) red[dim] = true;
  rplan p;
  plan_build(&p, m->ndim, m->shape, red, (ctx->args->flags & LC_ARG_KEEPDIM) != 0, gi->strides,
             gi->strides);
  plan_out_strides(&p, P_G, grad_out);
  plan_out_strides(&p, P_O, ix);
  int64_t ds = m->ndim > 0 ? gi->strides[dim] : 0;
  if (gi->numel > 0) {
    if (m->dtype == LC_FLOAT32)
      maxback_f32(&p, grad_out, ix, lc_data(gi), ds);
    else
      maxback_f64(&p, grad_out, ix, lc_data(gi), ds);
  }
  grad_in[0] = gi;
  return LC_OK;
}

/* create_graph: g (given its kept dim back) scatter-added into zeros at the saved indices */
static lc_status maxdim_backward_graph(const lc_op_ctx *ctx, const lc_tensor *grad_out,
                                       lc_tensor **grad_in) {
  if (!ctx->needs_grad[0]) return LC_OK;
  const lc_meta *m = &ctx->in[0];
  lc_gb b = LC_GB_INIT(ctx);
  lc_tensor *ix = lc_gb_saved(&b, 0);
  if (m->ndim == 0) {
    lc_gb_grad(&b, 0, grad_out, grad_in);
    return lc_gb_end(&b, grad_in);
  }
  int dim = (int)ctx->args->i[0];
  if (!b.st) b.st = lc_wrap_dim(&dim, m->ndim, ctx->op->name);
  lc_gb_grad(&b, 0, lc_gb_put_back(&b, m, dim, grad_out, ix), grad_in);
  return lc_gb_end(&b, grad_in);
}

const lc_op_def lc_op_max_dim = {.name = "max",
                                 .grad_fn_name = "MaxBackward",
                                 .n_inputs = 1,
                                 .n_outputs = 2,
                                 .code = LC_AMAX,
                                 .save = LC_SAVE_OUT(1),
                                 .forward = maxdim_forward,
                                 .backward = maxdim_backward,
                                 .backward_graph = maxdim_backward_graph};
const lc_op_def lc_op_min_dim = {.name = "min",
                                 .grad_fn_name = "MinBackward",
                                 .n_inputs = 1,
                                 .n_outputs = 2,
                                 .code = LC_AMIN,
                                 .save = LC_SAVE_OUT(1),
                                 .forward = maxdim_forward,
                                 .backward = maxdim_backward,
                                 .backward_graph = maxdim_backward_graph};

/* ================================================================ argmax / argmin */

/* Flattened (C-order) index of the max/min over all elements. */
#define DEF_ARGALL(T, S, ISFLOAT)                                                                  \
  static int64_t argall_##S(const lc_tensor *x, bool is_max) {                                     \
    lc_iter it;                                                                                    \
    lc_iter_init(&it, 1, x->ndim, x->shape, (const int64_t(*)[LC_MAX_DIMS])x->strides);            \
    const T *base = lc_data(x);                                                                    \
    int64_t best = -1, offs[LC_ITER_MAX_OPS];                                                      \
    T bv = 0;                                                                                      \
    for (int64_t row = 0; row < it.outer; row++) {                                                 \
      lc_iter_row(&it, row, offs);                                                                 \
      const T *r = base + offs[0];                                                                 \
      int64_t k = argext_##S(r, it.inner, it.inner_stride[0], is_max);                             \
      T v = r[k * it.inner_stride[0]];                                                             \
      if (ISFLOAT && v != v) return row * it.inner + k;                                            \
      if (best < 0 || (is_max ? v > bv : v < bv)) {                                                \
        bv = v;                                                                                    \
        best = row * it.inner + k;                                                                 \
      }                                                                                            \
    }                                                                                              \
    return best;                                                                                   \
  }
DEF_ARGALL(float, f32, 1)
DEF_ARGALL(double, f64, 1)
DEF_ARGALL(int32_t, i32, 0)
DEF_ARGALL(int64_t, i64, 0)
DEF_ARGALL(uint8_t, b, 0)

static lc_status argext_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                                const lc_op_args *args, lc_tensor **out) {
  if (n != 1 || !in[0]) return lc_set_error(LC_EARG, "%s: expected 1 input tensor", op->name);
  const lc_tensor *x = in[0];
  bool is_max = op->code == LC_AMAX, keepdim = (args->flags & LC_ARG_KEEPDIM) != 0;
  if (!(args->flags & LC_ARG_ALL))
    return maxdim_compute(op->name, x, (int)args->i[0], keepdim, is_max, NULL, &out[0]);
  if (x->numel == 0) return lc_set_error(LC_EARG, "%s: cannot reduce an empty tensor", op->name);
  int64_t shape[LC_MAX_DIMS];
  for (int d = 0; d < x->ndim; d++)
    shape[d] = 1;
  lc_tensor *o = NULL;
  lc_status st = lc_tensor_new(keepdim ? x->ndim : 0, shape, LC_INT64, &o);
  if (st) return st;
  int64_t r;
  switch (x->dtype) {
  case LC_FLOAT32: r = argall_f32(x, is_max); break;
  case LC_FLOAT64: r = argall_f64(x, is_max); break;
  case LC_INT32: r = argall_i32(x, is_max); break;
  case LC_INT64: r = argall_i64(x, is_max); break;
  default: r = argall_b(x, is_max); break;
  }
  *(int64_t *)lc_data(o) = r;
  out[0] = o;
  return LC_OK;
}

const lc_op_def lc_op_argmax = {
    .name = "argmax", .n_inputs = 1, .n_outputs = 1, .code = LC_AMAX, .forward = argext_forward};
const lc_op_def lc_op_argmin = {
    .name = "argmin", .n_inputs = 1, .n_outputs = 1, .code = LC_AMIN, .forward = argext_forward};
