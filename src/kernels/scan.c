/*
 * scan.c - the cumulative ops along one dim: cumsum, cumprod, logcumsumexp, with their
 * backward functions side by side.
 *
 * Layer 2 of 8 (kernels). Every scan sees its operand as a contiguous (outer, n, inner) block,
 * n the size of the scanned dim: a strided or expanded input is first made dense (and converted
 * to the compute dtype, as PyTorch's cumsum(dtype=) converts before it sums). Columns of the
 * block are scanned in chunks of up to SCAN_CH neighbouring inner positions, so the inner loop
 * runs along memory and vectorises; chunks are independent and are shared out by
 * lc_parallel_for. Accumulators are double for both float dtypes and 64-bit integers for the
 * integer ones (PyTorch's CPU acc_type), stored into the output's dtype at each step; integer
 * sums and products wrap (they are done in uint64, so overflow is defined).
 *
 * Dtypes (PyTorch 1.13): cumsum and cumprod of an integer or bool tensor give int64 unless a
 * dtype is asked for (args.i[1] = 1, args.dtype; bool is refused, as PyTorch has no bool
 * kernel); logcumsumexp needs a float tensor.
 *
 * Gradients: cumsum's is the reversed cumsum of the gradient. cumprod's is, per column with its
 * first zero at z, sum_{j>=i} g_j y_j / x_i before z, y_{z-1} * sum_{j>=z} g_j prod_{z<m<=j} x_m
 * at z, and 0 after it (PyTorch's cumprod_backward, exact when the input has zeros).
 * logcumsumexp's is PyTorch's stable form: exp(x_i + R+_i) - exp(x_i + R-_i), R+- the reversed
 * logcumsumexp of log|g| - y over the positive (negative) gradients (the lowest finite value of
 * the dtype standing for the others).
 */
#include "grad_graph.h"
#include "kernel_util.h"

#include <float.h>
#include <math.h>
#include <string.h>

#define SCAN_CH 64

enum { SCAN_SUM, SCAN_PROD, SCAN_LSE };

static const char *scan_name(int mode) {
  return mode == SCAN_SUM ? "cumsum" : mode == SCAN_PROD ? "cumprod" : "logcumsumexp";
}

/* PyTorch's _log_add_exp_helper(x, acc): NaN in either propagates, -inf + -inf stays -inf and
 * inf + inf stays inf. */
static inline double lae(double x, double y) {
  double mn = isnan(y) ? y : (y < x ? y : x);
  double mx = isnan(y) ? y : (x < y ? y : x);
  if (mn != mx || isfinite(mn)) return mx + log1p(exp(mn - mx));
  return x;
}

/* ---------------------------------------------------------------- the block walk */

typedef struct scan_ctx {
  int mode;
  bool reverse;
  lc_dtype dt;
  int64_t outer, n, inner, nch; /* nch: chunks per outer index */
  const char *x, *y, *g;        /* forward: x; backward: x, y (forward's output), g */
  char *out;
  double lowest; /* logcumsumexp backward: the dtype's lowest finite value */
} scan_ctx;

/* Decodes chunk r into its first element's offset and width. */
static inline void chunk_of(const scan_ctx *c, int64_t r, int64_t *base, int64_t *w) {
  int64_t o = r / c->nch, c0 = (r % c->nch) * SCAN_CH;
  *base = o * c->n * c->inner + c0;
  *w = c->inner - c0 < SCAN_CH ? c->inner - c0 : SCAN_CH;
}

/* Forward scans (and cumsum's reversed scan for its backward), per dtype: T the element type,
 * A the accumulator type. */
#define DEF_SCAN(T, A, S)                                                                          \
  static void scan_rows_##S(void *ctx, int64_t begin, int64_t end) {                               \
    const scan_ctx *c = ctx;                                                                       \
    const T *restrict x = (const T *)c->x;                                                         \
    T *restrict y = (T *)c->out;                                                                   \
    const int64_t n = c->n, inner = c->inner;                                                      \
    A acc[SCAN_CH];                                                                                \
    for (int64_t r = begin; r < end; r++) {                                                        \
      int64_t base, w;                                                                             \
      chunk_of(c, r, &base, &w);                                                                   \
      for (int64_t j = 0; j < w; j++)                                                              \
        acc[j] = c->mode == SCAN_PROD ? (A)1 : (A)0;                                               \
      for (int64_t s = 0; s < n; s++) {                                                            \
        int64_t k = c->reverse ? n - 1 - s : s, off = base + k * inner;                            \
        const T *restrict xp = x + off;                                                            \
        T *restrict yp = y + off;                                                                  \
        if (c->mode == SCAN_SUM) {                                                                 \
          for (int64_t j = 0; j < w; j++) {                                                        \
            acc[j] += (A)xp[j];                                                                    \
            yp[j] = (T)acc[j];                                                                     \
          }                                                                                        \
        } else {                                                                                   \
          for (int64_t j = 0; j < w; j++) {                                                        \
            acc[j] *= (A)xp[j];                                                                    \
            yp[j] = (T)acc[j];                                                                     \
          }                                                                                        \
        }                                                                                          \
      }                                                                                            \
    }                                                                                              \
  }
DEF_SCAN(float, double, f32)
DEF_SCAN(double, double, f64)
DEF_SCAN(int32_t, uint64_t, i32)
DEF_SCAN(int64_t, uint64_t, i64)

#define DEF_LSE(T, S)                                                                              \
  static void lse_rows_##S(void *ctx, int64_t begin, int64_t end) {                                \
    const scan_ctx *c = ctx;                                                                       \
    const T *restrict x = (const T *)c->x;                                                         \
    T *restrict y = (T *)c->out;                                                                   \
    const int64_t n = c->n, inner = c->inner;                                                      \
    double acc[SCAN_CH];                                                                           \
    for (int64_t r = begin; r < end; r++) {                                                        \
      int64_t base, w;                                                                             \
      chunk_of(c, r, &base, &w);                                                                   \
      for (int64_t j = 0; j < w; j++)                                                              \
        acc[j] = -INFINITY;                                                                        \
      for (int64_t k = 0; k < n; k++) {                                                            \
        const T *xp = x + base + k * inner;                                                        \
        T *yp = y + base + k * inner;                                                              \
        for (int64_t j = 0; j < w; j++) {                                                          \
          acc[j] = lae((double)xp[j], acc[j]);                                                     \
          yp[j] = (T)acc[j];                                                                       \
        }                                                                                          \
      }                                                                                            \
    }                                                                                              \
  }
DEF_LSE(float, f32)
DEF_LSE(double, f64)

/* cumprod's gradient per column chunk: x the input, y the output, g the incoming gradient (all
 * of the compute dtype T). */
#define DEF_PROD_BACK(T, S)                                                                        \
  static void prod_back_rows_##S(void *ctx, int64_t begin, int64_t end) {                          \
    const scan_ctx *c = ctx;                                                                       \
    const T *x = (const T *)c->x, *y = (const T *)c->y, *g = (const T *)c->g;                      \
    T *gi = (T *)c->out;                                                                           \
    const int64_t n = c->n, inner = c->inner;                                                      \
    int64_t z[SCAN_CH];                                                                            \
    double sum[SCAN_CH], u[SCAN_CH];                                                               \
    for (int64_t r = begin; r < end; r++) {                                                        \
      int64_t base, w;                                                                             \
      chunk_of(c, r, &base, &w);                                                                   \
      for (int64_t j = 0; j < w; j++) {                                                            \
        z[j] = n;                                                                                  \
        sum[j] = 0;                                                                                \
        u[j] = 0;                                                                                  \
      }                                                                                            \
      for (int64_t k = 0; k < n; k++) {                                                            \
        const T *xp = x + base + k * inner;                                                        \
        for (int64_t j = 0; j < w; j++)                                                            \
          if (z[j] == n && xp[j] == 0) z[j] = k;                                                   \
      }                                                                                            \
      for (int64_t k = n - 1; k >= 0; k--) {                                                       \
        int64_t off = base + k * inner;                                                            \
        const T *xp = x + off, *yp = y + off, *gp = g + off;                                       \
        const T *xn = k + 1 < n ? xp + inner : NULL, *yb = k > 0 ? yp - inner : NULL;              \
        T *op = gi + off;                                                                          \
        for (int64_t j = 0; j < w; j++) {                                                          \
          double gv = (double)gp[j];                                                               \
          sum[j] += gv * (double)yp[j];                                                            \
          /* u = sum_{m>=k} g_m prod_{k<l<=m} x_l, by Horner from the end */                       \
          u[j] = xn ? gv + (double)xn[j] * u[j] : gv;                                              \
          double v;                                                                                \
          if (k < z[j])                                                                            \
            v = sum[j] / (double)xp[j];                                                            \
          else if (k == z[j])                                                                      \
            v = yb ? u[j] * (double)yb[j] : u[j];                                                  \
          else                                                                                     \
            v = 0;                                                                                 \
          op[j] = (T)v;                                                                            \
        }                                                                                          \
      }                                                                                            \
    }                                                                                              \
  }
DEF_PROD_BACK(float, f32)
DEF_PROD_BACK(double, f64)

/* logcumsumexp's gradient per column chunk (PyTorch's formula, fused). */
#define DEF_LSE_BACK(T, S)                                                                         \
  static void lse_back_rows_##S(void *ctx, int64_t begin, int64_t end) {                           \
    const scan_ctx *c = ctx;                                                                       \
    const T *x = (const T *)c->x, *y = (const T *)c->y, *g = (const T *)c->g;                      \
    T *gi = (T *)c->out;                                                                           \
    const int64_t n = c->n, inner = c->inner;                                                      \
    const double lowest = c->lowest;                                                               \
    double rp[SCAN_CH], rn[SCAN_CH];                                                               \
    for (int64_t r = begin; r < end; r++) {                                                        \
      int64_t base, w;                                                                             \
      chunk_of(c, r, &base, &w);                                                                   \
      for (int64_t j = 0; j < w; j++)                                                              \
        rp[j] = rn[j] = -INFINITY;                                                                 \
      for (int64_t k = n - 1; k >= 0; k--) {                                                       \
        int64_t off = base + k * inner;                                                            \
        const T *xp = x + off, *yp = y + off, *gp = g + off;                                       \
        T *op = gi + off;                                                                          \
        for (int64_t j = 0; j < w; j++) {                                                          \
          double gv = (double)gp[j], yv = (double)yp[j], xv = (double)xp[j];                       \
          double lp = gv > 0 ? log(gv) : lowest, ln = gv < 0 ? log(-gv) : lowest;                  \
          rp[j] = lae(lp - yv, rp[j]);                                                             \
          rn[j] = lae(ln - yv, rn[j]);                                                             \
          op[j] = (T)(exp(rp[j] + xv) - exp(rn[j] + xv));                                          \
        }                                                                                          \
      }                                                                                            \
    }                                                                                              \
  }
DEF_LSE_BACK(float, f32)
DEF_LSE_BACK(double, f64)

/* The (outer, n, inner) split of (ndim, shape) at dim (a 0-dim tensor: 1, 1, 1). */
static void block_of(int ndim, const int64_t *shape, int dim, scan_ctx *c) {
  c->outer = 1;
  c->inner = 1;
  c->n = ndim ? shape[dim] : 1;
  for (int d = 0; d < dim; d++)
    c->outer *= shape[d];
  for (int d = dim + 1; d < ndim; d++)
    c->inner *= shape[d];
  c->nch = (c->inner + SCAN_CH - 1) / SCAN_CH;
}

static void run_chunks(scan_ctx *c, lc_range_fn fn) {
  int64_t w = c->inner < SCAN_CH ? c->inner : SCAN_CH;
  lc_parallel_for(c->outer * c->nch, c->n * w, fn, c);
}

/* out = the scan (mode, reverse) of the contiguous x (dtype dt) along dim. */
static lc_status scan_dense(int mode, bool reverse, const lc_tensor *x, int dim, lc_tensor **out) {
  lc_tensor *r = NULL;
  lc_status st = lc_tensor_new(x->ndim, x->shape, x->dtype, &r);
  if (st) return st;
  if (r->numel > 0) {
    scan_ctx c = {
        .mode = mode, .reverse = reverse, .dt = x->dtype, .x = lc_data(x), .out = lc_data(r)};
    block_of(x->ndim, x->shape, dim, &c);
    lc_range_fn fn = NULL;
    if (mode == SCAN_LSE) {
      fn = x->dtype == LC_FLOAT32 ? lse_rows_f32 : lse_rows_f64;
    } else {
      switch (x->dtype) {
      case LC_FLOAT32: fn = scan_rows_f32; break;
      case LC_FLOAT64: fn = scan_rows_f64; break;
      case LC_INT32: fn = scan_rows_i32; break;
      default: fn = scan_rows_i64; break;
      }
    }
    run_chunks(&c, fn);
  }
  *out = r;
  return LC_OK;
}

/* ---------------------------------------------------------------- forward */

/* The dtype a scan computes in and returns (args: i[1] = 1 when args.dtype was asked for). */
static lc_status scan_dtype(int mode, const lc_tensor *t, const lc_op_args *args, lc_dtype *dt) {
  const char *fn = scan_name(mode);
  if (mode == SCAN_LSE) {
    lc_status st = need_float_dtype(fn, "input", t->dtype);
    if (st) return st;
    *dt = t->dtype;
    return LC_OK;
  }
  if (args->ni > 1 && args->i[1]) {
    if ((unsigned)args->dtype >= LC_DTYPE_COUNT)
      return lc_set_error(LC_EDTYPE, "%s: unknown dtype %d", fn, (int)args->dtype);
    if (args->dtype == LC_BOOL)
      return lc_set_error(LC_EDTYPE,
                          "%s: dtype bool is not supported (expected float32, "
                          "float64, int32 or int64)",
                          fn);
    *dt = args->dtype;
  } else {
    *dt = is_float(t->dtype) ? t->dtype : LC_INT64;
  }
  return LC_OK;
}

static lc_status scan_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                              const lc_op_args *args, lc_tensor **out) {
  const lc_tensor *t = in[0];
  int mode = op->code;
  int dim = (int)args->i[0];
  lc_status st = lc_wrap_dim(&dim, t->ndim, scan_name(mode));
  if (st) return st;
  lc_dtype dt = t->dtype;
  st = scan_dtype(mode, t, args, &dt);
  if (st) return st;
  lc_tensor *x = NULL;
  st = lc_k_dense_as(t, dt, &x);
  if (st) return st;
  /* args.i[2]: cumsum from the end (its own gradient, and backward_graph's) */
  bool reverse = mode == SCAN_SUM && args->ni > 2 && args->i[2];
  st = scan_dense(mode, reverse, x, dim, out);
  lc_release(x);
  return st;
}

/* ---------------------------------------------------------------- backward */

/* g in dtype dt, contiguous (a new reference). */
static lc_status grad_as(const lc_op_ctx *ctx, const lc_tensor *g, lc_dtype dt, lc_tensor **out) {
  if (!same_shape(g, ctx->out->ndim, ctx->out->shape)) return grad_shape_error(ctx, g);
  return lc_k_dense_as(g, dt, out);
}

/* r (dtype of the forward's output) as the input's gradient, in the input's dtype. */
static lc_status to_input_dtype(const lc_op_ctx *ctx, lc_tensor *r, lc_tensor **grad_in) {
  if (r->dtype == ctx->in[0].dtype) {
    *grad_in = r;
    return LC_OK;
  }
  lc_status st = lc_k_copy_as(r, ctx->in[0].dtype, grad_in);
  lc_release(r);
  return st;
}

static lc_status cumsum_backward(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  if (!ctx->needs_grad[0]) return LC_OK;
  int dim = (int)ctx->args->i[0];
  lc_status st = lc_wrap_dim(&dim, ctx->in[0].ndim, "CumsumBackward");
  if (st) return st;
  /* PyTorch converts the gradient to the input's dtype first, then sums it backwards. */
  lc_tensor *gd = NULL;
  st = grad_as(ctx, g, ctx->in[0].dtype, &gd);
  if (st) return st;
  bool reverse = ctx->args->ni > 2 && ctx->args->i[2];
  st = scan_dense(SCAN_SUM, !reverse, gd, dim, &grad_in[0]);
  lc_release(gd);
  return st;
}

/* x (saved input, as dt), y (saved output) and g, each dense in dt; released by the caller. */
static lc_status back_operands(const lc_op_ctx *ctx, const lc_tensor *g, lc_dtype dt, lc_tensor **x,
                               lc_tensor **y, lc_tensor **gd) {
  const lc_tensor *xs = NULL, *ys = NULL;
  lc_status st = saved(ctx, 0, &xs);
  if (!st) st = saved(ctx, 1, &ys);
  if (!st) st = grad_as(ctx, g, dt, gd);
  if (!st) st = lc_k_dense_as(xs, dt, x);
  if (!st) st = lc_k_dense_as(ys, dt, y);
  return st;
}

static lc_status scan_backward_common(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in,
                                      int mode) {
  if (!ctx->needs_grad[0]) return LC_OK;
  const char *gname = ctx->op->grad_fn_name;
  int dim = (int)ctx->args->i[0];
  lc_status st = lc_wrap_dim(&dim, ctx->in[0].ndim, gname);
  if (st) return st;
  lc_dtype dt = ctx->out->dtype;
  int64_t numel = lc_shape_numel(ctx->out->ndim, ctx->out->shape);
  int64_t n = ctx->out->ndim ? ctx->out->shape[dim] : 1;
  lc_tensor *r = NULL;
  /* PyTorch's trivial cases: the gradient passes through (cumprod: one element or a dim of
   * size 1; logcumsumexp: a 0-dim or empty tensor). */
  if ((mode == SCAN_PROD && (numel <= 1 || n == 1)) ||
      (mode == SCAN_LSE && (ctx->out->ndim == 0 || numel == 0))) {
    st = grad_as(ctx, g, dt, &r);
    if (st) return st;
    return to_input_dtype(ctx, r, grad_in);
  }
  lc_tensor *x = NULL, *y = NULL, *gd = NULL;
  st = back_operands(ctx, g, dt, &x, &y, &gd);
  if (!st) st = lc_tensor_new(ctx->out->ndim, ctx->out->shape, dt, &r);
  if (!st && numel > 0) {
    scan_ctx c = {.mode = mode,
                  .dt = dt,
                  .x = lc_data(x),
                  .y = lc_data(y),
                  .g = lc_data(gd),
                  .out = lc_data(r),
                  .lowest = dt == LC_FLOAT32 ? -(double)FLT_MAX : -DBL_MAX};
    block_of(ctx->out->ndim, ctx->out->shape, dim, &c);
    lc_range_fn fn;
    if (mode == SCAN_PROD)
      fn = dt == LC_FLOAT32 ? prod_back_rows_f32 : prod_back_rows_f64;
    else
      fn = dt == LC_FLOAT32 ? lse_back_rows_f32 : lse_back_rows_f64;
    run_chunks(&c, fn);
  }
  lc_release(x);
  lc_release(y);
  lc_release(gd);
  if (st) {
    lc_release(r);
    return st;
  }
  return to_input_dtype(ctx, r, grad_in);
}

static lc_status cumprod_backward(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  return scan_backward_common(ctx, g, grad_in, SCAN_PROD);
}

static lc_status logcumsumexp_backward(const lc_op_ctx *ctx, const lc_tensor *g,
                                       lc_tensor **grad_in) {
  return scan_backward_common(ctx, g, grad_in, SCAN_LSE);
}

/* ---------------------------------------------------------------- create_graph
 * The same gradients as compositions of recorded ops (grad_graph.h), so they differentiate
 * again: cumsum's is a cumsum from the end; logcumsumexp's is PyTorch's formula written out;
 * cumprod's is PyTorch's: the cumsum from the end of g y, over x, when x has no zeros, else the
 * exact sum_{j>=i} g_j prod_{m<=j, m!=i} x_m through an (n, n) matrix per line (O(n^2) memory,
 * only under create_graph). */

static lc_tensor *gb_scan(lc_gb *b, const lc_op_def *op, const lc_tensor *x, int dim,
                          bool reverse) {
  lc_op_args a = {.i = {dim, 0, reverse}, .ni = 3};
  lc_tensor *in[1] = {(lc_tensor *)x};
  return lc_gb_op(b, op, 1, in, &a);
}

static lc_tensor *gb_flip(lc_gb *b, const lc_tensor *x, int dim) {
  lc_op_args a = {.i = {dim}, .ni = 1};
  lc_tensor *in[1] = {(lc_tensor *)x};
  return lc_gb_op(b, &lc_op_flip, 1, in, &a);
}

/* A constant (no history) of shape (nd, shape) and dtype dt filled with v, kept by b. */
static lc_tensor *gb_const(lc_gb *b, int nd, const int64_t *shape, lc_dtype dt, double v) {
  if (b->st) return NULL;
  lc_tensor *t = NULL;
  b->st = lc_tensor_new(nd, shape, dt, &t);
  if (!b->st) b->st = lc_k_fill(t, v);
  if (b->st) {
    lc_release(t);
    return NULL;
  }
  return lc_gb_keep(b, t);
}

/* The dim and the trivial case (the gradient passes through) of a scan's backward. */
static bool graph_prologue(lc_gb *b, int *dim, bool trivial_small) {
  const lc_op_ctx *ctx = b->ctx;
  *dim = (int)ctx->args->i[0];
  b->st = lc_wrap_dim(dim, ctx->in[0].ndim, ctx->op->grad_fn_name);
  if (b->st) return true;
  int64_t numel = lc_shape_numel(ctx->out->ndim, ctx->out->shape);
  int64_t n = ctx->out->ndim ? ctx->out->shape[*dim] : 1;
  return ctx->out->ndim == 0 || numel == 0 || (trivial_small && n == 1);
}

static lc_status cumsum_backward_graph(const lc_op_ctx *ctx, const lc_tensor *g,
                                       lc_tensor **grad_in) {
  if (!ctx->needs_grad[0]) return LC_OK;
  lc_gb b = LC_GB_INIT(ctx);
  int dim = (int)ctx->args->i[0];
  b.st = lc_wrap_dim(&dim, ctx->in[0].ndim, "CumsumBackward");
  bool reverse = ctx->args->ni > 2 && ctx->args->i[2];
  lc_tensor *gc = lc_gb_cast(&b, g, ctx->in[0].dtype);
  lc_gb_grad(&b, 0, gb_scan(&b, &lc_op_cumsum, gc, dim, !reverse), grad_in);
  return lc_gb_end(&b, grad_in);
}

static lc_status logcumsumexp_backward_graph(const lc_op_ctx *ctx, const lc_tensor *g,
                                             lc_tensor **grad_in) {
  if (!ctx->needs_grad[0]) return LC_OK;
  lc_gb b = LC_GB_INIT(ctx);
  int dim;
  if (graph_prologue(&b, &dim, false)) {
    lc_gb_grad(&b, 0, g, grad_in);
    return lc_gb_end(&b, grad_in);
  }
  lc_tensor *x = lc_gb_saved(&b, 0), *y = lc_gb_saved(&b, 1);
  lc_dtype dt = ctx->out->dtype;
  lc_tensor *lowest = gb_const(&b, 0, NULL, dt, dt == LC_FLOAT32 ? -(double)FLT_MAX : -DBL_MAX);
  lc_tensor *la = lc_gb_un(&b, LC_LOG, lc_gb_un(&b, LC_ABS, g));
  lc_tensor *parts[2];
  for (int k = 0; k < 2; k++) {
    lc_tensor *sel = lc_gb_sc(&b, k == 0 ? LC_GT : LC_LT, g, 0);
    lc_tensor *lg = lc_gb_where(&b, sel, la, lowest);
    lc_tensor *rev = gb_flip(&b,
                             gb_scan(&b, &lc_op_logcumsumexp,
                                     gb_flip(&b, lc_gb_bin(&b, LC_SUB, lg, y), dim), dim, false),
                             dim);
    parts[k] = lc_gb_un(&b, LC_EXP, lc_gb_bin(&b, LC_ADD, rev, x));
  }
  lc_gb_grad(&b, 0, lc_gb_bin(&b, LC_SUB, parts[0], parts[1]), grad_in);
  return lc_gb_end(&b, grad_in);
}

/* The exact form with zeros, for x and g (dtype dt) along dim. */
static lc_tensor *cumprod_grad_zeros(lc_gb *b, lc_tensor *x, lc_tensor *y, const lc_tensor *g,
                                     int dim) {
  if (b->st) return NULL;
  int nd = x->ndim;
  int64_t n = x->shape[dim], perm[LC_MAX_DIMS], inv[LC_MAX_DIMS];
  int64_t s2[LC_MAX_DIMS + 1], s1[LC_MAX_DIMS + 1];
  if (nd + 1 > LC_MAX_DIMS) {
    b->st = lc_set_error(LC_ESHAPE,
                         "CumprodBackward: create_graph with zeros needs one dim more "
                         "than the input's %d (at most %d)",
                         nd, LC_MAX_DIMS);
    return NULL;
  }
  int k = 0;
  for (int d = 0; d < nd; d++)
    if (d != dim) perm[k++] = d;
  perm[k] = dim;
  for (int d = 0; d < nd; d++)
    inv[perm[d]] = d;
  /* lines last: (..., n); the matrix (..., n_i, n_j) */
  lc_tensor *xt = lc_gb_permute(b, x, nd, perm), *gt = lc_gb_permute(b, g, nd, perm);
  lc_tensor *yt = lc_gb_permute(b, y, nd, perm);
  for (int d = 0; d < nd - 1; d++)
    s2[d] = s1[d] = x->shape[perm[d]];
  s2[nd - 1] = n;
  s2[nd] = n;
  s1[nd - 1] = 1;
  s1[nd] = n;
  lc_dtype dt = x->dtype;
  lc_tensor *upper = NULL, *strict = NULL;
  int64_t nn[2] = {n, n};
  if (!b->st) {
    upper = gb_const(b, 2, nn, LC_BOOL, 0);
    strict = gb_const(b, 2, nn, LC_BOOL, 0);
  }
  if (b->st) return NULL;
  uint8_t *up = lc_data(upper), *st = lc_data(strict);
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < n; j++) {
      up[i * n + j] = j >= i;
      st[i * n + j] = j > i;
    }
  lc_tensor *one = gb_const(b, 0, NULL, dt, 1);
  /* M[i, j] = prod_{i<m<=j} x_m for j >= i, else 0 */
  lc_tensor *xb = lc_gb_expand(b, lc_gb_reshape(b, xt, nd + 1, s1), nd + 1, s2);
  lc_tensor *m =
      lc_gb_mask(b, upper, gb_scan(b, &lc_op_cumprod, lc_gb_where(b, strict, xb, one), nd, false));
  bool red[LC_MAX_DIMS] = {false};
  red[nd] = true;
  lc_tensor *sum =
      lc_gb_sum_keep(b, lc_gb_bin(b, LC_MUL, m, lc_gb_reshape(b, gt, nd + 1, s1)), red);
  lc_tensor *sv = lc_gb_reshape(b, sum, nd, s2);
  /* prod_{m<i} x_m: 1, then cumprod(x) up to n - 2 */
  lc_tensor *excl = NULL;
  if (n == 1) {
    excl = gb_const(b, 0, NULL, dt, 1);
  } else if (!b->st) {
    lc_op_args a = {.i = {nd - 1, 0, n - 1, 1}, .ni = 4};
    lc_tensor *in[1] = {yt};
    lc_tensor *head = lc_gb_op(b, &lc_op_slice, 1, in, &a);
    lc_tensor *ones = gb_const(b, nd, s1, dt, 1);
    lc_op_args c = {.i = {nd - 1}, .ni = 1};
    lc_tensor *cin[2] = {ones, head};
    excl = ones && head ? lc_gb_op(b, &lc_op_cat, 2, cin, &c) : NULL;
  }
  return lc_gb_permute(b, lc_gb_bin(b, LC_MUL, excl, sv), nd, inv);
}

static lc_status cumprod_backward_graph(const lc_op_ctx *ctx, const lc_tensor *g,
                                        lc_tensor **grad_in) {
  if (!ctx->needs_grad[0]) return LC_OK;
  lc_gb b = LC_GB_INIT(ctx);
  int dim;
  if (graph_prologue(&b, &dim, true)) {
    lc_gb_grad(&b, 0, g, grad_in);
    return lc_gb_end(&b, grad_in);
  }
  lc_dtype dt = ctx->out->dtype;
  lc_tensor *x = lc_gb_cast(&b, lc_gb_saved(&b, 0), dt), *y = lc_gb_saved(&b, 1);
  lc_tensor *gc = lc_gb_cast(&b, g, dt), *r = NULL;
  bool zeros = false;
  if (!b.st) {
    lc_tensor *xd = NULL;
    b.st = lc_k_dense(x, &xd);
    if (!b.st) {
      const char *p = lc_data(xd);
      for (int64_t k = 0; k < xd->numel && !zeros; k++)
        zeros = lc_load_f64(p, dt, k) == 0;
    }
    lc_release(xd);
  }
  if (!zeros)
    r = lc_gb_bin(&b, LC_DIV, gb_scan(&b, &lc_op_cumsum, lc_gb_bin(&b, LC_MUL, gc, y), dim, true),
                  x);
  else
    r = cumprod_grad_zeros(&b, x, y, gc, dim);
  lc_gb_grad(&b, 0, r, grad_in);
  return lc_gb_end(&b, grad_in);
}

/* ---------------------------------------------------------------- the ops */

const lc_op_def lc_op_cumsum = {
    .name = "cumsum",
    .grad_fn_name = "CumsumBackward",
    .n_inputs = 1,
    .n_outputs = 1,
    .code = SCAN_SUM,
    .save = 0,
    .forward = scan_forward,
    .backward = cumsum_backward,
    .backward_graph = cumsum_backward_graph,
};

const lc_op_def lc_op_cumprod = {
    .name = "cumprod",
    .grad_fn_name = "CumprodBackward",
    .n_inputs = 1,
    .n_outputs = 1,
    .code = SCAN_PROD,
    .save = LC_SAVE_IN(0) | LC_SAVE_OUT(0),
    .forward = scan_forward,
    .backward = cumprod_backward,
    .backward_graph = cumprod_backward_graph,
};

const lc_op_def lc_op_logcumsumexp = {
    .name = "logcumsumexp",
    .grad_fn_name = "LogcumsumexpBackward",
    .n_inputs = 1,
    .n_outputs = 1,
    .code = SCAN_LSE,
    .save = LC_SAVE_IN(0) | LC_SAVE_OUT(0),
    .forward = scan_forward,
    .backward = logcumsumexp_backward,
    .backward_graph = logcumsumexp_backward_graph,
};
