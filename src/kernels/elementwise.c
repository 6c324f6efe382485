/* elementwise.c - elementwise ops: dtype rules, forward and backward side by side, op defs.
 *
 * The loops themselves live in elementwise_loops.c behind lc_ew(). Forward functions pick the
 * compute and result dtypes and a loop kernel; backward functions combine the incoming gradient
 * with what forward saved through fused backward kernels (one pass, one allocation), then
 * reduce broadcast dims with lc_k_sum_to and cast back to the input's dtype. */
#include "elementwise.h"
#include "grad_graph.h"
#include "kernel_util.h"

#include <math.h>
#include <string.h>

/* ------------------------------------------------------------------ dtype rules */

static bool valid_dtype(lc_dtype dt) { return (unsigned)dt < LC_DTYPE_COUNT; }

/* The DTYPES column of LC_UNARY_LIST, as data. */
enum { UN_FLOAT, UN_ROUND, UN_SIGNED, UN_MAGN, UN_LOGIC };
#define UNARY_DTYPES_(CODE, NAME, GradFn, DTYPES, SAVES, COST) [LC_##CODE] = UN_##DTYPES,
static const unsigned char unary_dtypes[LC_UNARY_COUNT] = {LC_UNARY_LIST(UNARY_DTYPES_)};
#undef UNARY_DTYPES_

/* The RESULT column of LC_BINARY_LIST, as data. */
enum { BIN_PROMOTE, BIN_FLOAT, BIN_BOOL };
#define BINARY_RESULT_(CODE, NAME, GradFn, LOOPS, RESULT, SAVES, SAVES_SCALAR, INPLACE, COST)      \
  [LC_##CODE] = BIN_##RESULT,
static const unsigned char binary_result[LC_BINARY_COUNT] = {LC_BINARY_LIST(BINARY_RESULT_)};
#undef BINARY_RESULT_

static bool binary_is_bool_result(lc_binary_op op) { return binary_result[op] == BIN_BOOL; }

lc_status lc_ew_unary_dtype(lc_unary_op op, lc_dtype x, lc_dtype *cdt, lc_dtype *rdt) {
  if ((unsigned)op >= LC_UNARY_COUNT || !valid_dtype(x))
    return lc_set_error(LC_EARG, "unary: invalid op %d or dtype %d", (int)op, (int)x);
  switch (unary_dtypes[op]) {
  case UN_LOGIC:
    *cdt = x;
    *rdt = LC_BOOL;
    break;
  case UN_FLOAT: *cdt = *rdt = is_float(x) ? x : LC_FLOAT32; break;
  case UN_SIGNED:
    if (x == LC_BOOL)
      return lc_set_error(LC_EDTYPE, "%s: negation of a bool tensor is not supported, use "
                                     "logical_not instead",
                          lc_op_unary[op].name);
    *cdt = *rdt = x;
    break;
  default: *cdt = *rdt = x; break; /* ROUND, MAGN */
  }
  return LC_OK;
}

lc_status lc_ew_binary_dtype(lc_binary_op op, lc_dtype a, lc_dtype b, lc_dtype *cdt,
                             lc_dtype *rdt) {
  if ((unsigned)op >= LC_BINARY_COUNT || !valid_dtype(a) || !valid_dtype(b))
    return lc_set_error(LC_EARG, "binary: invalid op %d or dtypes %d, %d", (int)op, (int)a, (int)b);
  lc_dtype p = lc_promote(a, b);
  if (op == LC_SUB && p == LC_BOOL)
    return lc_set_error(LC_EDTYPE, "sub: subtraction of two bool tensors is not supported, "
                                   "use logical_xor instead");
  if (binary_result[op] == BIN_FLOAT && !is_float(p)) p = LC_FLOAT32; /* true division */
  *cdt = p;
  *rdt = binary_is_bool_result(op) ? LC_BOOL : p;
  return LC_OK;
}

/* An exactly integral number that fits int64. */
static bool is_integral(double s) { return s == floor(s) && fabs(s) < 9.2e18; }

lc_status lc_ew_scalar_dtype(lc_binary_op op, lc_dtype a, double s, lc_dtype *cdt, lc_dtype *rdt) {
  if ((unsigned)op >= LC_BINARY_COUNT || !valid_dtype(a))
    return lc_set_error(LC_EARG, "binary: invalid op %d or dtype %d", (int)op, (int)a);
  lc_dtype p;
  if (is_float(a))
    p = a; /* a number never widens float32 to float64 */
  else if (!is_integral(s))
    p = LC_FLOAT32;
  else
    p = a == LC_BOOL ? LC_INT64 : a;
  if (binary_result[op] == BIN_FLOAT && !is_float(p)) p = LC_FLOAT32;
  *cdt = p;
  *rdt = binary_is_bool_result(op) ? LC_BOOL : p;
  return LC_OK;
}

lc_dtype lc_ew_clamp_dtype(lc_dtype x, bool has_lo, double lo, bool has_hi, double hi) {
  if (is_float(x)) return x;
  if ((has_lo && !is_integral(lo)) || (has_hi && !is_integral(hi))) return LC_FLOAT32;
  return x == LC_BOOL ? LC_INT64 : x;
}

bool lc_ew_can_cast(lc_dtype from, lc_dtype to) {
  if (is_float(from)) return is_float(to);
  if (from != LC_BOOL && to == LC_BOOL) return false;
  return true;
}

/* ------------------------------------------------------------------ backward helpers */

/* Hands g (owned) to grad_in[i] reduced to input i's shape and cast to its dtype. */
static lc_status finish_grad(const lc_op_ctx *ctx, int i, lc_tensor *g, lc_tensor **grad_in) {
  lc_tensor *r = NULL;
  lc_status st = lc_k_sum_to(g, ctx->in[i].ndim, ctx->in[i].shape, &r);
  lc_release(g);
  if (st) return st;
  if (r->dtype != ctx->in[i].dtype && is_float(ctx->in[i].dtype)) {
    lc_tensor *c = NULL;
    st = lc_k_copy_as(r, ctx->in[i].dtype, &c);
    lc_release(r);
    if (st) return st;
    r = c;
  }
  grad_in[i] = r;
  return LC_OK;
}

/* Runs a backward kernel over (g, operands...) in g's dtype and finishes input i. */
static lc_status grad_kernel(const lc_op_ctx *ctx, int i, lc_ew_kernel k, const double *f,
                             int nargs, const lc_ew_arg *args, lc_tensor **grad_in) {
  /* the first float operand's dtype (where's gradient: g after the bool condition) */
  lc_dtype dt = LC_FLOAT32;
  for (int a = 0; a < nargs; a++)
    if (args[a].t && is_float(args[a].t->dtype)) {
      dt = args[a].t->dtype;
      break;
    }
  lc_tensor *g = NULL;
  lc_status st = lc_ew(ctx->op->grad_fn_name, k, dt, dt, f, nargs, args, &g);
  if (st) return st;
  return finish_grad(ctx, i, g, grad_in);
}

/* Zero gradient (sign, floor, ceil, round are differentiable with zero gradient). */
static lc_status zero_grad(const lc_op_ctx *ctx, int i, const lc_tensor *g, lc_tensor **grad_in) {
  lc_dtype dt = is_float(ctx->in[i].dtype) ? ctx->in[i].dtype : g->dtype;
  lc_tensor *z = NULL;
  lc_status st = lc_tensor_new(ctx->in[i].ndim, ctx->in[i].shape, dt, &z);
  if (st) return st;
  memset(lc_data(z), 0, (size_t)z->numel * lc_dtype_size(dt));
  grad_in[i] = z;
  return LC_OK;
}

#define ARG(x) ((lc_ew_arg){.t = (x), .s = 0})
#define NUM(v) ((lc_ew_arg){.t = NULL, .s = (v)})

/* ------------------------------------------------------------------ unary */

static lc_status unary_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                               const lc_op_args *args, lc_tensor **out) {
  const lc_unary_op code = (lc_unary_op)op->code;
  const lc_tensor *x = in[0];
  lc_dtype cdt, rdt;
  lc_status st = lc_ew_unary_dtype(code, x->dtype, &cdt, &rdt);
  if (st) return st;
  /* the kernels of the list come first, in list order: LC_EW_<CODE> == LC_<CODE> */
  _Static_assert((int)LC_EW_COPY == (int)LC_UNARY_COUNT, "unary kernels first, in list order");
  lc_ew_kernel k = (lc_ew_kernel)code;
  /* Identities: rounding an integer or bool, abs/sign/relu of a bool. */
  if (!is_float(cdt) && unary_dtypes[code] == UN_ROUND) k = LC_EW_COPY;
  if (cdt == LC_BOOL && unary_dtypes[code] == UN_MAGN) k = LC_EW_COPY;
  lc_ew_arg a = ARG(x);
  return lc_ew(op->name, k, cdt, rdt, NULL, 1, &a, out);
}

/* The gradient kernel of each row (LC_EW_KERNEL_COUNT: a ZERO row, whose gradient is zero). */
#define UN_GRAD_NONE(CODE) LC_EW_##CODE##_G
#define UN_GRAD_IN UN_GRAD_NONE
#define UN_GRAD_OUT UN_GRAD_NONE
#define UN_GRAD_ZERO(CODE) LC_EW_KERNEL_COUNT
#define UNARY_GRAD_(CODE, NAME, GradFn, DTYPES, SAVES, COST) [LC_##CODE] = UN_GRAD_##SAVES(CODE),
static const lc_ew_kernel unary_grad_kernel[LC_UNARY_COUNT] = {LC_UNARY_LIST(UNARY_GRAD_)};
#undef UNARY_GRAD_

static lc_status unary_backward(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  if (!ctx->needs_grad[0]) return LC_OK;
  const lc_unary_op code = (lc_unary_op)ctx->op->code;
  const lc_tensor *s = NULL; /* the one saved tensor: the input or the output */
  if (ctx->n_saved > 0) {
    lc_status st = saved(ctx, 0, &s);
    if (st) return st;
  }
  const lc_ew_kernel k = unary_grad_kernel[code];
  if (k == LC_EW_KERNEL_COUNT) return zero_grad(ctx, 0, g, grad_in); /* a ZERO row */
  lc_ew_arg a[2] = {ARG(g), ARG(s)};
  return grad_kernel(ctx, 0, k, NULL, s ? 2 : 1, a, grad_in);
}

#define UN_SAVE_NONE 0
#define UN_SAVE_IN LC_SAVE_IN(0)
#define UN_SAVE_OUT LC_SAVE_OUT(0)
#define UN_SAVE_ZERO 0
/* create_graph: the same gradients as recorded ops (s: the saved input or output). */
static lc_status unary_backward_graph(const lc_op_ctx *ctx, const lc_tensor *g,
                                      lc_tensor **grad_in) {
  if (!ctx->needs_grad[0]) return LC_OK;
  const lc_unary_op code = (lc_unary_op)ctx->op->code;
  if (unary_grad_kernel[code] == LC_EW_KERNEL_COUNT) return zero_grad(ctx, 0, g, grad_in);
  lc_gb b = LC_GB_INIT(ctx);
  lc_tensor *s = ctx->n_saved > 0 ? lc_gb_saved(&b, 0) : NULL, *r = NULL;
  switch (code) {
  case LC_NEG: r = lc_gb_un(&b, LC_NEG, g); break;
  case LC_ABS: r = lc_gb_bin(&b, LC_MUL, g, lc_gb_un(&b, LC_SIGN, s)); break;
  case LC_EXP: r = lc_gb_bin(&b, LC_MUL, g, s); break;
  case LC_LOG: r = lc_gb_bin(&b, LC_DIV, g, s); break;
  case LC_LOG1P: r = lc_gb_bin(&b, LC_DIV, g, lc_gb_sc(&b, LC_ADD, s, 1)); break;
  case LC_SQRT: r = lc_gb_bin(&b, LC_DIV, g, lc_gb_sc(&b, LC_MUL, s, 2)); break;
  case LC_RSQRT:
    r = lc_gb_bin(&b, LC_MUL, g, lc_gb_sc(&b, LC_MUL, lc_gb_sc(&b, LC_POW, s, 3), -0.5));
    break;
  case LC_SIN: r = lc_gb_bin(&b, LC_MUL, g, lc_gb_un(&b, LC_COS, s)); break;
  case LC_COS: r = lc_gb_bin(&b, LC_MUL, g, lc_gb_un(&b, LC_NEG, lc_gb_un(&b, LC_SIN, s))); break;
  case LC_TANH:
    r = lc_gb_bin(&b, LC_MUL, g, lc_gb_rsc(&b, LC_SUB, 1, lc_gb_bin(&b, LC_MUL, s, s)));
    break;
  case LC_SIGMOID:
    r = lc_gb_bin(&b, LC_MUL, lc_gb_bin(&b, LC_MUL, g, s), lc_gb_rsc(&b, LC_SUB, 1, s));
    break;
  case LC_RELU: r = lc_gb_mask(&b, lc_gb_sc(&b, LC_GT, s, 0), g); break;
  case LC_ERF: { /* 2/sqrt(pi) exp(-x^2) */
    lc_tensor *e = lc_gb_un(&b, LC_EXP, lc_gb_un(&b, LC_NEG, lc_gb_bin(&b, LC_MUL, s, s)));
    r = lc_gb_bin(&b, LC_MUL, g, lc_gb_sc(&b, LC_MUL, e, M_2_SQRTPI));
    break;
  }
  default: b.st = lc_set_error(LC_EGRAD, "%s: no graph backward", ctx->op->name);
  }
  lc_gb_grad(&b, 0, r, grad_in);
  return lc_gb_end(&b, grad_in);
}

#define UNARY_DEF(CODE, NAME, GradFn, DTYPES, SAVES, COST)                                         \
  [LC_##CODE] = {.name = #NAME,                                                                    \
                 .grad_fn_name = GradFn,                                                           \
                 .n_inputs = 1,                                                                    \
                 .n_outputs = 1,                                                                   \
                 .code = LC_##CODE,                                                                \
                 .save = UN_SAVE_##SAVES,                                                          \
                 .forward = unary_forward,                                                         \
                 .backward = GradFn ? unary_backward : NULL,                                       \
                 .backward_graph = GradFn ? unary_backward_graph : NULL},

const lc_op_def lc_op_unary[LC_UNARY_COUNT] = {LC_UNARY_LIST(UNARY_DEF)};
#undef UNARY_DEF

/* ------------------------------------------------------------------ binary (tensor, tensor) */

/* The list's binary kernels are contiguous, in list order: LC_EW_<CODE> == LC_EW_ADD + LC_<CODE>. */
static lc_ew_kernel binary_kernel(lc_binary_op code) {
  _Static_assert((int)LC_EW_LOGICAL_XOR - (int)LC_EW_ADD == (int)LC_LOGICAL_XOR - (int)LC_ADD &&
                     (int)LC_ADD == 0,
                 "binary kernels contiguous, in list order");
  return (lc_ew_kernel)(LC_EW_ADD + (int)code);
}

static lc_status binary_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                                const lc_op_args *args, lc_tensor **out) {
  const lc_binary_op code = (lc_binary_op)op->code;
  lc_dtype cdt, rdt;
  lc_status st = lc_ew_binary_dtype(code, in[0]->dtype, in[1]->dtype, &cdt, &rdt);
  if (st) return st;
  lc_ew_arg a[2] = {ARG(in[0]), ARG(in[1])};
  return lc_ew(op->name, binary_kernel(code), cdt, rdt, NULL, 2, a, out);
}

static lc_status binary_backward(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  const lc_binary_op code = (lc_binary_op)ctx->op->code;
  const bool ga = ctx->needs_grad[0], gb = ctx->needs_grad[1];
  const lc_tensor *a = NULL, *b = NULL;
  lc_status st = LC_OK;
  /* Fetch only what the needed gradients use (lc_ctx_saved checks versions). */
  if (ctx->n_saved == 2) {
    bool need_a = gb || (ga && code != LC_MUL && code != LC_DIV);
    bool need_b = ga || (gb && code != LC_MUL);
    if (need_a && (st = saved(ctx, 0, &a))) return st;
    if (need_b && (st = saved(ctx, 1, &b))) return st;
  }
  switch (code) {
  case LC_ADD:
  case LC_SUB:
    if (ga) st = finish_grad(ctx, 0, lc_retain((lc_tensor *)g), grad_in);
    if (!st && gb) {
      if (code == LC_ADD) {
        st = finish_grad(ctx, 1, lc_retain((lc_tensor *)g), grad_in);
      } else {
        lc_ew_arg x[1] = {ARG(g)};
        st = grad_kernel(ctx, 1, LC_EW_NEG, NULL, 1, x, grad_in);
      }
    }
    break;
  case LC_MUL:
    if (ga) st = grad_kernel(ctx, 0, LC_EW_MUL, NULL, 2, (lc_ew_arg[]){ARG(g), ARG(b)}, grad_in);
    if (!st && gb)
      st = grad_kernel(ctx, 1, LC_EW_MUL, NULL, 2, (lc_ew_arg[]){ARG(g), ARG(a)}, grad_in);
    break;
  case LC_DIV:
    if (ga) st = grad_kernel(ctx, 0, LC_EW_DIV, NULL, 2, (lc_ew_arg[]){ARG(g), ARG(b)}, grad_in);
    if (!st && gb)
      st =
          grad_kernel(ctx, 1, LC_EW_DIV_B, NULL, 3, (lc_ew_arg[]){ARG(g), ARG(a), ARG(b)}, grad_in);
    break;
  case LC_POW:
    if (ga)
      st = grad_kernel(ctx, 0, LC_EW_POW_BA, NULL, 3, (lc_ew_arg[]){ARG(g), ARG(a), ARG(b)},
                       grad_in);
    if (!st && gb)
      st = grad_kernel(ctx, 1, LC_EW_POW_BB, NULL, 3, (lc_ew_arg[]){ARG(g), ARG(a), ARG(b)},
                       grad_in);
    break;
  case LC_MAXIMUM:
  case LC_MINIMUM: {
    lc_ew_kernel k = code == LC_MAXIMUM ? LC_EW_MAX_B : LC_EW_MIN_B;
    if (ga) st = grad_kernel(ctx, 0, k, NULL, 3, (lc_ew_arg[]){ARG(g), ARG(a), ARG(b)}, grad_in);
    if (!st && gb)
      st = grad_kernel(ctx, 1, k, NULL, 3, (lc_ew_arg[]){ARG(g), ARG(b), ARG(a)}, grad_in);
    break;
  }
  default: st = lc_set_error(LC_EGRAD, "%s: not differentiable", ctx->op->name);
  }
  if (st) drop_grads(ctx, grad_in);
  return st;
}

/* maximum / minimum: the share of the gradient input a takes: 1 where a wins, 1/2 on a tie, 0
 * where it loses, against the tensor o (or, when o is NULL, the number os). A constant: no
 * history. */
static lc_tensor *winner_share(lc_gb *b, bool is_max, const lc_tensor *a, const lc_tensor *o,
                               double os, lc_dtype dt) {
  lc_binary_op win = is_max ? LC_GT : LC_LT;
  lc_tensor *w = o ? lc_gb_bin(b, win, a, o) : lc_gb_sc(b, win, a, os);
  lc_tensor *tie = o ? lc_gb_bin(b, LC_EQ, a, o) : lc_gb_sc(b, LC_EQ, a, os);
  return lc_gb_bin(b, LC_ADD, lc_gb_cast(b, w, dt),
                   lc_gb_sc(b, LC_MUL, lc_gb_cast(b, tie, dt), 0.5));
}

/* g d(a^e)/da = g e a^(e-1), 0 where e == 0 (e: a tensor, or NULL with the number es) */
static lc_tensor *pow_grad_base(lc_gb *b, const lc_tensor *g, const lc_tensor *a,
                                const lc_tensor *e, double es) {
  if (!e) {
    if (es == 0) return lc_gb_sc(b, LC_MUL, g, 0);
    return lc_gb_bin(b, LC_MUL, g, lc_gb_sc(b, LC_MUL, lc_gb_sc(b, LC_POW, a, es - 1), es));
  }
  lc_tensor *t = lc_gb_bin(
      b, LC_MUL, g, lc_gb_bin(b, LC_MUL, e, lc_gb_bin(b, LC_POW, a, lc_gb_sc(b, LC_SUB, e, 1))));
  return lc_gb_mask(b, lc_gb_sc(b, LC_NE, e, 0), t);
}

/* g d(a^e)/de = g a^e log(a), 0 where a == 0 and e >= 0 (a: a tensor, or NULL with the number
 * as) */
static lc_tensor *pow_grad_exp(lc_gb *b, const lc_tensor *g, const lc_tensor *a, double as,
                               const lc_tensor *e) {
  lc_tensor *p = a ? lc_gb_bin(b, LC_POW, a, e) : lc_gb_rsc(b, LC_POW, as, e);
  lc_tensor *gp = lc_gb_bin(b, LC_MUL, g, p);
  lc_tensor *t =
      a ? lc_gb_bin(b, LC_MUL, gp, lc_gb_un(b, LC_LOG, a)) : lc_gb_sc(b, LC_MUL, gp, log(as));
  if (!a && as != 0) return t;
  lc_tensor *keep =
      a ? lc_gb_un(b, LC_LOGICAL_NOT,
                   lc_gb_bin(b, LC_LOGICAL_AND, lc_gb_sc(b, LC_EQ, a, 0), lc_gb_sc(b, LC_GE, e, 0)))
        : lc_gb_sc(b, LC_LT, e, 0);
  return lc_gb_mask(b, keep, t);
}

static lc_status binary_backward_graph(const lc_op_ctx *ctx, const lc_tensor *g,
                                       lc_tensor **grad_in) {
  const lc_binary_op code = (lc_binary_op)ctx->op->code;
  const bool ga = ctx->needs_grad[0], gb_ = ctx->needs_grad[1];
  lc_gb b = LC_GB_INIT(ctx);
  lc_tensor *a = ctx->n_saved == 2 ? lc_gb_saved(&b, 0) : NULL;
  lc_tensor *y = ctx->n_saved == 2 ? lc_gb_saved(&b, 1) : NULL;
  lc_tensor *da = NULL, *db = NULL;
  switch (code) {
  case LC_ADD:
  case LC_SUB:
    da = (lc_tensor *)g;
    if (gb_) db = code == LC_ADD ? (lc_tensor *)g : lc_gb_un(&b, LC_NEG, g);
    break;
  case LC_MUL:
    if (ga) da = lc_gb_bin(&b, LC_MUL, g, y);
    if (gb_) db = lc_gb_bin(&b, LC_MUL, g, a);
    break;
  case LC_DIV:
    if (ga) da = lc_gb_bin(&b, LC_DIV, g, y);
    if (gb_)
      db =
          lc_gb_un(&b, LC_NEG,
                   lc_gb_bin(&b, LC_DIV, lc_gb_bin(&b, LC_MUL, g, a), lc_gb_bin(&b, LC_MUL, y, y)));
    break;
  case LC_POW:
    if (ga) da = pow_grad_base(&b, g, a, y, 0);
    if (gb_) db = pow_grad_exp(&b, g, a, 0, y);
    break;
  case LC_MAXIMUM:
  case LC_MINIMUM:
    if (ga) da = lc_gb_bin(&b, LC_MUL, g, winner_share(&b, code == LC_MAXIMUM, a, y, 0, g->dtype));
    if (gb_) db = lc_gb_bin(&b, LC_MUL, g, winner_share(&b, code == LC_MAXIMUM, y, a, 0, g->dtype));
    break;
  default: b.st = lc_set_error(LC_EGRAD, "%s: not differentiable", ctx->op->name);
  }
  if (ga) lc_gb_grad(&b, 0, da, grad_in);
  if (gb_) lc_gb_grad(&b, 1, db, grad_in);
  return lc_gb_end(&b, grad_in);
}

#define BIN_SAVE_AB (LC_SAVE_IN(0) | LC_SAVE_IN(1))
#define BIN_SAVE_A LC_SAVE_IN(0)
#define BIN_SAVE_NONE 0
#define BINARY_DEF(CODE, NAME, GradFn, LOOPS, RESULT, SAVES, SAVES_SCALAR, INPLACE, COST)          \
  [LC_##CODE] = {.name = #NAME,                                                                    \
                 .grad_fn_name = GradFn,                                                           \
                 .n_inputs = 2,                                                                    \
                 .n_outputs = 1,                                                                   \
                 .code = LC_##CODE,                                                                \
                 .save = BIN_SAVE_##SAVES,                                                         \
                 .forward = binary_forward,                                                        \
                 .backward = GradFn ? binary_backward : NULL,                                      \
                 .backward_graph = GradFn ? binary_backward_graph : NULL},
const lc_op_def lc_op_binary[LC_BINARY_COUNT] = {LC_BINARY_LIST(BINARY_DEF)};
#undef BINARY_DEF

/* ------------------------------------------------------------------ binary (tensor, number) */

static lc_status scalar_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                                const lc_op_args *args, lc_tensor **out) {
  const lc_binary_op code = (lc_binary_op)op->code;
  const double s = args->f[0];
  const bool rev = (args->flags & LC_ARG_REVERSE) != 0;
  lc_dtype cdt, rdt;
  lc_status st = lc_ew_scalar_dtype(code, in[0]->dtype, s, &cdt, &rdt);
  if (st) return st;
  if (code == LC_POW && !rev && !is_float(cdt) && s < 0)
    return lc_set_error(LC_EARG,
                        "pow: integers to negative integer powers are not allowed "
                        "(exponent %g)",
                        s);
  lc_ew_arg a[2] = {ARG(in[0]), NUM(s)};
  if (rev) {
    a[1] = a[0];
    a[0] = NUM(s);
  }
  return lc_ew(op->name, binary_kernel(code), cdt, rdt, NULL, 2, a, out);
}

static lc_status scalar_backward(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  if (!ctx->needs_grad[0]) return LC_OK;
  const lc_binary_op code = (lc_binary_op)ctx->op->code;
  const double s = ctx->args->f[0];
  const bool rev = (ctx->args->flags & LC_ARG_REVERSE) != 0;
  const lc_tensor *a = NULL;
  if (ctx->n_saved > 0) {
    lc_status st = saved(ctx, 0, &a);
    if (st) return st;
  }
  switch (code) {
  case LC_ADD: return finish_grad(ctx, 0, lc_retain((lc_tensor *)g), grad_in);
  case LC_SUB:
    if (!rev) return finish_grad(ctx, 0, lc_retain((lc_tensor *)g), grad_in);
    return grad_kernel(ctx, 0, LC_EW_NEG, NULL, 1, (lc_ew_arg[]){ARG(g)}, grad_in);
  case LC_MUL:
    return grad_kernel(ctx, 0, LC_EW_MUL, NULL, 2, (lc_ew_arg[]){ARG(g), NUM(s)}, grad_in);
  case LC_DIV:
    if (!rev) /* d(a/s) = g/s */
      return grad_kernel(ctx, 0, LC_EW_DIV, NULL, 2, (lc_ew_arg[]){ARG(g), NUM(s)}, grad_in);
    /* d(s/a) = -g s / a^2 */
    return grad_kernel(ctx, 0, LC_EW_DIV_B, NULL, 3, (lc_ew_arg[]){ARG(g), NUM(s), ARG(a)},
                       grad_in);
  case LC_POW:
    if (!rev) /* d(a^s) = g s a^(s-1) */
      return grad_kernel(ctx, 0, LC_EW_POW_BA, NULL, 3, (lc_ew_arg[]){ARG(g), ARG(a), NUM(s)},
                         grad_in);
    /* d(s^a) = g s^a log(s) */
    return grad_kernel(ctx, 0, LC_EW_POW_BB, NULL, 3, (lc_ew_arg[]){ARG(g), NUM(s), ARG(a)},
                       grad_in);
  case LC_MAXIMUM:
  case LC_MINIMUM:
    return grad_kernel(ctx, 0, code == LC_MAXIMUM ? LC_EW_MAX_B : LC_EW_MIN_B, NULL, 3,
                       (lc_ew_arg[]){ARG(g), ARG(a), NUM(s)}, grad_in);
  default: return lc_set_error(LC_EGRAD, "%s: not differentiable", ctx->op->name);
  }
}

static lc_status scalar_backward_graph(const lc_op_ctx *ctx, const lc_tensor *g,
                                       lc_tensor **grad_in) {
  if (!ctx->needs_grad[0]) return LC_OK;
  const lc_binary_op code = (lc_binary_op)ctx->op->code;
  const double s = ctx->args->f[0];
  const bool rev = (ctx->args->flags & LC_ARG_REVERSE) != 0;
  lc_gb b = LC_GB_INIT(ctx);
  lc_tensor *a = ctx->n_saved > 0 ? lc_gb_saved(&b, 0) : NULL, *r = NULL;
  switch (code) {
  case LC_ADD: r = (lc_tensor *)g; break;
  case LC_SUB: r = rev ? lc_gb_un(&b, LC_NEG, g) : (lc_tensor *)g; break;
  case LC_MUL: r = lc_gb_sc(&b, LC_MUL, g, s); break;
  case LC_DIV:
    r = !rev ? lc_gb_sc(&b, LC_DIV, g, s) /* d(s/a) = -g s / a^2 */
             : lc_gb_sc(&b, LC_MUL, lc_gb_bin(&b, LC_DIV, g, lc_gb_bin(&b, LC_MUL, a, a)), -s);
    break;
  case LC_POW: r = !rev ? pow_grad_base(&b, g, a, NULL, s) : pow_grad_exp(&b, g, NULL, s, a); break;
  case LC_MAXIMUM:
  case LC_MINIMUM:
    r = lc_gb_bin(&b, LC_MUL, g, winner_share(&b, code == LC_MAXIMUM, a, NULL, s, g->dtype));
    break;
  default: b.st = lc_set_error(LC_EGRAD, "%s: not differentiable", ctx->op->name);
  }
  lc_gb_grad(&b, 0, r, grad_in);
  return lc_gb_end(&b, grad_in);
}

#define SCALAR_DEF(CODE, NAME, GradFn, LOOPS, RESULT, SAVES, SAVES_SCALAR, INPLACE, COST)          \
  [LC_##CODE] = {.name = #NAME,                                                                    \
                 .grad_fn_name = GradFn,                                                           \
                 .n_inputs = 1,                                                                    \
                 .n_outputs = 1,                                                                   \
                 .code = LC_##CODE,                                                                \
                 .save = BIN_SAVE_##SAVES_SCALAR,                                                  \
                 .forward = scalar_forward,                                                        \
                 .backward = GradFn ? scalar_backward : NULL,                                      \
                 .backward_graph = GradFn ? scalar_backward_graph : NULL},
const lc_op_def lc_op_binary_scalar[LC_BINARY_COUNT] = {LC_BINARY_LIST(SCALAR_DEF)};
#undef SCALAR_DEF

/* ------------------------------------------------------------------ clamp */

/* Bounds as kernel parameters: a missing bound is -inf / +inf (saturated for integers). */
static void clamp_bounds(const lc_op_args *args, double f[2]) {
  f[0] = (args->flags & LC_ARG_HAS_LO) ? args->f[0] : -INFINITY;
  f[1] = (args->flags & LC_ARG_HAS_HI) ? args->f[1] : INFINITY;
}

static lc_status clamp_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                               const lc_op_args *args, lc_tensor **out) {
  const bool has_lo = (args->flags & LC_ARG_HAS_LO) != 0,
             has_hi = (args->flags & LC_ARG_HAS_HI) != 0;
  if (!has_lo && !has_hi)
    return lc_set_error(LC_EARG, "clamp: at least one of min and max must be given");
  lc_dtype dt = lc_ew_clamp_dtype(in[0]->dtype, has_lo, args->f[0], has_hi, args->f[1]);
  double f[2];
  clamp_bounds(args, f);
  lc_ew_arg a = ARG(in[0]);
  return lc_ew(op->name, LC_EW_CLAMP, dt, dt, f, 1, &a, out);
}

static lc_status clamp_backward(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  if (!ctx->needs_grad[0]) return LC_OK;
  const lc_tensor *x = NULL;
  lc_status st = saved(ctx, 0, &x);
  if (st) return st;
  double f[2];
  clamp_bounds(ctx->args, f);
  return grad_kernel(ctx, 0, LC_EW_CLAMP_B, f, 2, (lc_ew_arg[]){ARG(g), ARG(x)}, grad_in);
}

static lc_status clamp_backward_graph(const lc_op_ctx *ctx, const lc_tensor *g,
                                      lc_tensor **grad_in) {
  if (!ctx->needs_grad[0]) return LC_OK;
  lc_gb b = LC_GB_INIT(ctx);
  lc_tensor *x = lc_gb_saved(&b, 0), *in = NULL;
  if (ctx->args->flags & LC_ARG_HAS_LO) in = lc_gb_sc(&b, LC_GE, x, ctx->args->f[0]);
  if (ctx->args->flags & LC_ARG_HAS_HI) {
    lc_tensor *hi = lc_gb_sc(&b, LC_LE, x, ctx->args->f[1]);
    in = in ? lc_gb_bin(&b, LC_LOGICAL_AND, in, hi) : hi;
  }
  lc_gb_grad(&b, 0, lc_gb_mask(&b, in, g), grad_in);
  return lc_gb_end(&b, grad_in);
}

const lc_op_def lc_op_clamp = {.name = "clamp",
                               .grad_fn_name = "ClampBackward",
                               .n_inputs = 1,
                               .n_outputs = 1,
                               .save = LC_SAVE_IN(0),
                               .forward = clamp_forward,
                               .backward = clamp_backward,
                               .backward_graph = clamp_backward_graph};

/* ------------------------------------------------------------------ where */

static lc_status where_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                               const lc_op_args *args, lc_tensor **out) {
  if (in[0]->dtype != LC_BOOL)
    return lc_set_error(LC_EDTYPE, "where: condition must be a bool tensor, got %s",
                        lc_dtype_name(in[0]->dtype));
  lc_dtype dt = lc_promote(in[1]->dtype, in[2]->dtype);
  lc_ew_arg a[3] = {ARG(in[0]), ARG(in[1]), ARG(in[2])};
  return lc_ew(op->name, LC_EW_WHERE, dt, dt, NULL, 3, a, out);
}

static lc_status where_backward(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  if (!ctx->needs_grad[1] && !ctx->needs_grad[2]) return LC_OK;
  const lc_tensor *cond = NULL;
  lc_status st = saved(ctx, 0, &cond);
  if (st) return st;
  if (ctx->needs_grad[1]) /* g where cond, else 0 */
    st = grad_kernel(ctx, 1, LC_EW_WHERE, NULL, 3, (lc_ew_arg[]){ARG(cond), ARG(g), NUM(0)},
                     grad_in);
  if (!st && ctx->needs_grad[2])
    st = grad_kernel(ctx, 2, LC_EW_WHERE, NULL, 3, (lc_ew_arg[]){ARG(cond), NUM(0), ARG(g)},
                     grad_in);
  if (st) drop_grads(ctx, grad_in);
  return st;
}

static lc_status where_backward_graph(const lc_op_ctx *ctx, const lc_tensor *g,
                                      lc_tensor **grad_in) {
  lc_gb b = LC_GB_INIT(ctx);
  lc_tensor *cond = lc_gb_saved(&b, 0);
  if (ctx->needs_grad[1]) lc_gb_grad(&b, 1, lc_gb_mask(&b, cond, g), grad_in);
  if (ctx->needs_grad[2])
    lc_gb_grad(&b, 2, lc_gb_mask(&b, lc_gb_un(&b, LC_LOGICAL_NOT, cond), g), grad_in);
  return lc_gb_end(&b, grad_in);
}

const lc_op_def lc_op_where = {.name = "where",
                               .grad_fn_name = "WhereBackward",
                               .n_inputs = 3,
                               .n_outputs = 1,
                               .save = LC_SAVE_IN(0),
                               .forward = where_forward,
                               .backward = where_backward,
                               .backward_graph = where_backward_graph};

/* ------------------------------------------------------------------ cast, clone, copy */

static lc_status cast_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                              const lc_op_args *args, lc_tensor **out) {
  if (!valid_dtype(args->dtype))
    return lc_set_error(LC_EDTYPE, "to: invalid dtype %d", (int)args->dtype);
  return lc_k_copy_as(in[0], args->dtype, out);
}

static lc_status pass_backward_graph(const lc_op_ctx *ctx, const lc_tensor *g,
                                     lc_tensor **grad_in) {
  const int i = ctx->n_inputs - 1;
  if (!ctx->needs_grad[i]) return LC_OK;
  lc_gb b = LC_GB_INIT(ctx);
  lc_gb_grad(&b, i, g, grad_in);
  return lc_gb_end(&b, grad_in);
}

/* Also clone's and copy_'s: the gradient passes through, reduced and cast back to the input. */
static lc_status pass_backward(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  const int i = ctx->n_inputs - 1; /* the source: input 0, or copy_'s src (input 1) */
  if (!ctx->needs_grad[i]) return LC_OK;
  return finish_grad(ctx, i, lc_retain((lc_tensor *)g), grad_in);
}

const lc_op_def lc_op_cast = {.name = "to",
                              .grad_fn_name = "ToCopyBackward",
                              .n_inputs = 1,
                              .n_outputs = 1,
                              .forward = cast_forward,
                              .backward = pass_backward,
                              .backward_graph = pass_backward_graph};

static lc_status clone_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                               const lc_op_args *args, lc_tensor **out) {
  return lc_k_copy_as(in[0], in[0]->dtype, out);
}

const lc_op_def lc_op_clone = {.name = "clone",
                               .grad_fn_name = "CloneBackward",
                               .n_inputs = 1,
                               .n_outputs = 1,
                               .forward = clone_forward,
                               .backward = pass_backward,
                               .backward_graph = pass_backward_graph};

/* copy_: {dst, src} -> src broadcast to dst's shape, in dst's dtype. dst's old values are
 * overwritten, so its gradient is none (pass_backward only serves input 1). */
static lc_status copy_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                              const lc_op_args *args, lc_tensor **out) {
  return lc_k_expand_copy(in[1], in[0]->ndim, in[0]->shape, in[0]->dtype, out);
}

const lc_op_def lc_op_copy = {.name = "copy", /* lc_apply_inplace reports it as "copy_" */
                              .grad_fn_name = "CopyBackwards",
                              .n_inputs = 2,
                              .n_outputs = 1,
                              .forward = copy_forward,
                              .backward = pass_backward,
                              .backward_graph = pass_backward_graph};
