/*
 * elementwise.c - public elementwise entry points: unary, binary, scalar, in-place variants,
 * clamp, where, and the copies and conversions (clone, to_dtype, contiguous, copy_, fill_,
 * zero_). Each validates its arguments and runs one op through lc_apply / lc_apply_inplace.
 */
#include "../kernels/elementwise.h"
#include "../autograd/autograd.h"

#include <string.h>


static lc_status null_arg(const char *fn, const char *what) {
  return lc_set_error(LC_EARG, "%s: %s is NULL", fn, what);
}

static lc_status check_unary_op(const char *fn, lc_unary_op op) {
  if ((unsigned)op >= LC_UNARY_COUNT)
    return lc_set_error(LC_EARG, "%s: unknown unary op %d (expected 0..%d)", fn, (int)op,
                        LC_UNARY_COUNT - 1);
  return LC_OK;
}

static lc_status check_binary_op(const char *fn, lc_binary_op op) {
  if ((unsigned)op >= LC_BINARY_COUNT)
    return lc_set_error(LC_EARG, "%s: unknown binary op %d (expected 0..%d)", fn, (int)op,
                        LC_BINARY_COUNT - 1);
  return LC_OK;
}

/* In place: b must broadcast to exactly a's shape (the raw copy_ path; through the graph,
 * lc_apply_inplace checks the op's result with the same rule). */
static lc_status check_inplace_shape(const char *fn, const lc_tensor *a, const lc_tensor *b) {
  int nd;
  int64_t shape[LC_MAX_DIMS];
  lc_status st = lc_broadcast_shapes(a->ndim, a->shape, b->ndim, b->shape, &nd, shape, fn);
  if (st) return st;
  return lc_inplace_check_result(fn, a, nd, shape, a->dtype);
}

/* ------------------------------------------------------------------ unary */

lc_status lc_unary(lc_unary_op op, const lc_tensor *x, lc_tensor **out) {
  lc_status st = check_unary_op("unary", op);
  if (st) return st;
  if (!x) return null_arg(lc_op_unary[op].name, "x");
  if (!out) return null_arg(lc_op_unary[op].name, "out");
  lc_tensor *in[1] = {(lc_tensor *)x};
  return lc_apply(&lc_op_unary[op], 1, in, NULL, out);
}

lc_status lc_unary_(lc_unary_op op, lc_tensor *x) {
  lc_status st = check_unary_op("unary_", op);
  if (st) return st;
  if (!x) return null_arg(lc_op_unary[op].name, "x");
  lc_tensor *in[1] = {x}; /* the in-place rules are lc_apply_inplace's */
  return lc_apply_inplace(&lc_op_unary[op], 1, in, NULL);
}

/* ------------------------------------------------------------------ binary */

lc_status lc_binary(lc_binary_op op, const lc_tensor *a, const lc_tensor *b, lc_tensor **out) {
  lc_status st = check_binary_op("binary", op);
  if (st) return st;
  if (!a) return null_arg(lc_op_binary[op].name, "a");
  if (!b) return null_arg(lc_op_binary[op].name, "b");
  if (!out) return null_arg(lc_op_binary[op].name, "out");
  lc_tensor *in[2] = {(lc_tensor *)a, (lc_tensor *)b};
  return lc_apply(&lc_op_binary[op], 2, in, NULL, out);
}

lc_status lc_binary_(lc_binary_op op, lc_tensor *a, const lc_tensor *b) {
  lc_status st = check_binary_op("binary_", op);
  if (st) return st;
  if (!a) return null_arg(lc_op_binary[op].name, "a");
  if (!b) return null_arg(lc_op_binary[op].name, "b");
  lc_tensor *in[2] = {a, (lc_tensor *)b};
  return lc_apply_inplace(&lc_op_binary[op], 2, in, NULL);
}

static lc_op_args scalar_args(double s, bool reverse) {
  lc_op_args args;
  memset(&args, 0, sizeof args);
  args.f[0] = s;
  args.flags = reverse ? LC_ARG_REVERSE : 0;
  return args;
}

lc_status lc_binary_scalar(lc_binary_op op, const lc_tensor *a, double s, bool reverse,
                           lc_tensor **out) {
  lc_status st = check_binary_op("binary_scalar", op);
  if (st) return st;
  if (!a) return null_arg(lc_op_binary[op].name, "a");
  if (!out) return null_arg(lc_op_binary[op].name, "out");
  lc_op_args args = scalar_args(s, reverse);
  lc_tensor *in[1] = {(lc_tensor *)a};
  return lc_apply(&lc_op_binary_scalar[op], 1, in, &args, out);
}

lc_status lc_binary_scalar_(lc_binary_op op, lc_tensor *a, double s) {
  lc_status st = check_binary_op("binary_scalar_", op);
  if (st) return st;
  if (!a) return null_arg(lc_op_binary[op].name, "a");
  lc_op_args args = scalar_args(s, false);
  lc_tensor *in[1] = {a};
  return lc_apply_inplace(&lc_op_binary_scalar[op], 1, in, &args);
}

/* ------------------------------------------------------------------ clamp, where */

static lc_status clamp_args(const char *fn, bool has_lo, double lo, bool has_hi, double hi,
                            lc_op_args *args) {
  if (!has_lo && !has_hi)
    return lc_set_error(LC_EARG, "%s: at least one of min and max must be given", fn);
  memset(args, 0, sizeof *args);
  args->f[0] = lo;
  args->f[1] = hi;
  args->flags = (has_lo ? LC_ARG_HAS_LO : 0) | (has_hi ? LC_ARG_HAS_HI : 0);
  return LC_OK;
}

lc_status lc_clamp(const lc_tensor *x, bool has_lo, double lo, bool has_hi, double hi,
                   lc_tensor **out) {
  if (!x) return null_arg("clamp", "x");
  if (!out) return null_arg("clamp", "out");
  lc_op_args args;
  lc_status st = clamp_args("clamp", has_lo, lo, has_hi, hi, &args);
  if (st) return st;
  lc_tensor *in[1] = {(lc_tensor *)x};
  return lc_apply(&lc_op_clamp, 1, in, &args, out);
}

lc_status lc_clamp_(lc_tensor *x, bool has_lo, double lo, bool has_hi, double hi) {
  if (!x) return null_arg("clamp_", "x");
  lc_op_args args;
  lc_status st = clamp_args("clamp_", has_lo, lo, has_hi, hi, &args);
  if (st) return st;
  lc_tensor *in[1] = {x};
  return lc_apply_inplace(&lc_op_clamp, 1, in, &args);
}

lc_status lc_where(const lc_tensor *cond, const lc_tensor *a, const lc_tensor *b, lc_tensor **out) {
  if (!cond) return null_arg("where", "cond");
  if (!a) return null_arg("where", "a");
  if (!b) return null_arg("where", "b");
  if (!out) return null_arg("where", "out");
  lc_tensor *in[3] = {(lc_tensor *)cond, (lc_tensor *)a, (lc_tensor *)b};
  return lc_apply(&lc_op_where, 3, in, NULL, out);
}

/* ------------------------------------------------------------------ copies and conversion */

lc_status lc_clone(const lc_tensor *t, lc_tensor **out) {
  if (!t) return null_arg("clone", "t");
  if (!out) return null_arg("clone", "out");
  lc_tensor *in[1] = {(lc_tensor *)t};
  return lc_apply(&lc_op_clone, 1, in, NULL, out);
}

lc_status lc_contiguous(const lc_tensor *t, lc_tensor **out) {
  if (!t) return null_arg("contiguous", "t");
  if (!out) return null_arg("contiguous", "out");
  if (t->contiguous) {
    *out = lc_retain((lc_tensor *)t);
    return LC_OK;
  }
  lc_tensor *in[1] = {(lc_tensor *)t};
  return lc_apply(&lc_op_clone, 1, in, NULL, out);
}

lc_status lc_to_dtype(const lc_tensor *t, lc_dtype dt, lc_tensor **out) {
  if (!t) return null_arg("to", "t");
  if (!out) return null_arg("to", "out");
  if ((unsigned)dt >= LC_DTYPE_COUNT)
    return lc_set_error(LC_EDTYPE, "to: invalid dtype %d", (int)dt);
  if (t->dtype == dt) {
    *out = lc_retain((lc_tensor *)t);
    return LC_OK;
  }
  lc_op_args args;
  memset(&args, 0, sizeof args);
  args.dtype = dt;
  lc_tensor *in[1] = {(lc_tensor *)t};
  return lc_apply(&lc_op_cast, 1, in, &args, out);
}

/* Through the graph when autograd must see the write: src requires grad (the gradient flows
 * to it) or dst has history (which the write cuts). Otherwise a raw copy. */
static bool needs_graph(const lc_tensor *dst, const lc_tensor *src) {
  return lc_grad_mode() && (dst->grad_fn || (src && src->requires_grad));
}

lc_status lc_copy_(lc_tensor *dst, const lc_tensor *src) {
  if (!dst) return null_arg("copy_", "dst");
  if (!src) return null_arg("copy_", "src");
  lc_status st = lc_inplace_check_target("copy_", dst);
  if (st) return st;
  if ((st = check_inplace_shape("copy_", dst, src))) return st;
  if (needs_graph(dst, src)) {
    lc_tensor *in[2] = {dst, (lc_tensor *)src};
    return lc_apply_inplace(&lc_op_copy, 2, in, NULL);
  }
  if ((st = lc_k_copy(dst, src))) return st;
  lc_bump_version(dst);
  return LC_OK;
}

static lc_status fill_impl(const char *fn, lc_tensor *t, double value) {
  if (!t) return null_arg(fn, "t");
  lc_status st = lc_inplace_check_target(fn, t);
  if (st) return st;
  if (needs_graph(t, NULL)) {
    /* A non-leaf with history: record the write so gradients stop flowing into the old
     * values (the filled tensor's gradient w.r.t. them is zero). */
    lc_tensor *s = NULL;
    if ((st = lc_tensor_new(0, NULL, t->dtype, &s))) return st;
    lc_store_f64(lc_data(s), t->dtype, 0, value);
    lc_tensor *in[2] = {t, s};
    st = lc_apply_inplace(&lc_op_copy, 2, in, NULL);
    lc_release(s);
    return st;
  }
  if ((st = lc_k_fill(t, value))) return st;
  lc_bump_version(t);
  return LC_OK;
}

lc_status lc_fill_(lc_tensor *t, double value) { return fill_impl("fill_", t, value); }

lc_status lc_zero_(lc_tensor *t) { return fill_impl("zero_", t, 0.0); }
