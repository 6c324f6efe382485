/* op.c - what every op shares: running an op without recording, fetching saved tensors, and
 * the contiguous copies of op.h and kernel_util.h. */
#include "kernel_util.h"

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
  return op->forward(op, n, in, args ? args : &no_args, out);
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
