/* op.c - what every op shares: running an op without recording, fetching saved tensors, and
 * the contiguous copies of op.h and kernel_util.h. */
#include "kernel_util.h"

/* Ops that run on half tensors as they are: views (they share storage) and the ops that move
 * elements through lc_k_copy, which converts. */
static bool half_native(const lc_op_def *op) {
  return op->is_view || op == &lc_op_cast || op == &lc_op_clone;
}

#define HALF_MAX_INPUTS 16

/* Half precision compute (lucid_core.h): the half inputs as float32 copies, the float32
 * kernel, and float32 outputs converted back to the half dtype the inputs promote to (or that
 * args.dtype names). The conversions are vectorised loops (src/core/copy.c). */
static lc_status run_half(const lc_op_def *op, int n, lc_tensor *const *in, const lc_op_args *args,
                          lc_tensor **out) {
  if (half_native(op)) return op->forward(op, n, in, args, out);
  lc_tensor *stack_in[HALF_MAX_INPUTS], **cin = stack_in;
  if (n > HALF_MAX_INPUTS && !(cin = calloc((size_t)n, sizeof *cin)))
    return lc_set_error(LC_ENOMEM, "%s: out of memory converting half inputs", op->name);
  lc_dtype target = n > 0 ? in[0]->dtype : LC_FLOAT32;
  for (int i = 1; i < n; i++)
    target = lc_promote(target, in[i]->dtype);
  lc_op_args a = *args;
  if (lc_dtype_is_half(a.dtype)) {
    target = a.dtype;
    a.dtype = LC_FLOAT32;
  }
  lc_status st = LC_OK;
  int made = 0;
  for (; made < n && !st; made++) {
    if (lc_dtype_is_half(in[made]->dtype))
      st = lc_k_copy_as(in[made], LC_FLOAT32, &cin[made]);
    else
      cin[made] = lc_retain(in[made]);
  }
  if (st) made--; /* the failed slot holds nothing */
  lc_tensor *res[LC_OP_MAX_OUTPUTS] = {NULL};
  if (!st) st = op->forward(op, n, cin, &a, res);
  for (int i = 0; i < made; i++)
    lc_release(cin[i]);
  if (cin != stack_in) free(cin);
  if (st) return st;
  for (int k = 0; k < op->n_outputs; k++) {
    if (!st && res[k] && lc_dtype_is_half(target) && res[k]->dtype == LC_FLOAT32) {
      lc_tensor *h = NULL;
      st = lc_k_copy_as(res[k], target, &h);
      lc_release(res[k]);
      res[k] = h;
    }
  }
  if (st) {
    for (int k = 0; k < op->n_outputs; k++)
      lc_release(res[k]);
    return st;
  }
  for (int k = 0; k < op->n_outputs; k++)
    out[k] = res[k];
  return LC_OK;
}

lc_status lc_op_run(const lc_op_def *op, int n, lc_tensor *const *in, const lc_op_args *args,
                    lc_tensor **out) {
  if (!op || !op->forward)
    return lc_set_error(LC_EARG, "op_run: op %s has no forward function",
                        op && op->name ? op->name : "(null)");
  if (op->n_outputs < 1 || op->n_outputs > LC_OP_MAX_OUTPUTS)
    return lc_set_error(LC_EARG, "%s: op declares %d outputs, expected 1..%d", op->name,
                        op->n_outputs, LC_OP_MAX_OUTPUTS);
  if (op->n_inputs >= 0 && n != op->n_inputs)
    return lc_set_error(LC_EARG, "%s: expected %d inputs, got %d", op->name, op->n_inputs, n);
  if (n < 0) return lc_set_error(LC_EARG, "%s: negative input count %d", op->name, n);
  for (int i = 0; i < n; i++)
    if (!in[i]) return lc_set_error(LC_EARG, "%s: input %d is NULL", op->name, i);
  static const lc_op_args no_args;
  if (!args) args = &no_args;
  for (int i = 0; i < n; i++)
    if (lc_dtype_is_half(in[i]->dtype)) return run_half(op, n, in, args, out);
  if (lc_dtype_is_half(args->dtype) && !half_native(op)) return run_half(op, n, in, args, out);
  return op->forward(op, n, in, args, out);
}

static const char *ctx_name(const lc_op_ctx *ctx) {
  if (ctx->op && ctx->op->grad_fn_name) return ctx->op->grad_fn_name;
  if (ctx->op && ctx->op->name) return ctx->op->name;
  return "backward";
}

lc_status lc_ctx_saved(const lc_op_ctx *ctx, int k, lc_tensor **t) {
  if (k < 0 || k >= ctx->n_saved)
    return lc_set_error(LC_EINDEX, "%s: saved tensor %d out of range (the op saved %d)",
                        ctx_name(ctx), k, ctx->n_saved);
  lc_tensor *s = ctx->saved ? ctx->saved[k] : NULL;
  if (!s)
    return lc_set_error(LC_EGRAD,
                        "%s: trying to backward through the graph a second time (or directly "
                        "access saved tensors after they have already been freed); pass "
                        "retain_graph = true on the first call",
                        ctx_name(ctx));
  uint64_t v = lc_version(s);
  uint64_t want = ctx->saved_version ? ctx->saved_version[k] : v;
  if (v != want)
    return lc_set_error(LC_EGRAD,
                        "%s: a tensor saved for backward was modified by an in-place operation "
                        "(version %llu, expected %llu)",
                        ctx_name(ctx), (unsigned long long)v, (unsigned long long)want);
  *t = s;
  return LC_OK;
}

lc_status lc_k_expand_copy(const lc_tensor *t, int ndim, const int64_t *shape, lc_dtype dt,
                           lc_tensor **out) {
  lc_tensor *c = NULL;
  lc_status st = lc_tensor_new(ndim, shape, dt, &c);
  if (!st) st = lc_k_copy(c, t);
  if (st) {
    lc_release(c);
    return st;
  }
  *out = c;
  return LC_OK;
}

lc_status lc_k_copy_as(const lc_tensor *t, lc_dtype dt, lc_tensor **out) {
  return lc_k_expand_copy(t, t->ndim, t->shape, dt, out);
}

lc_status lc_k_dense_as(const lc_tensor *t, lc_dtype dt, lc_tensor **out) {
  if (t->contiguous && t->dtype == dt) {
    *out = lc_retain((lc_tensor *)t);
    return LC_OK;
  }
  return lc_k_copy_as(t, dt, out);
}

lc_status lc_k_dense(const lc_tensor *t, lc_tensor **out) { return lc_k_dense_as(t, t->dtype, out); }
