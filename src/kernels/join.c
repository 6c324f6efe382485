/*
 * join.c - cat: n tensors joined along one dim. Forward copies each input into its band of
 * the output; backward hands each input the matching band (a view) of the gradient.
 */
#include "grad_graph.h"
#include "kernel_util.h"

#include <string.h>

static lc_status cat_check(int n, lc_tensor *const *in, const lc_op_args *args, int *dim_out,
                           lc_dtype *dt_out, int64_t *shape) {
  if (n < 1) return lc_set_error(LC_EARG, "cat: expected at least one tensor, got %d", n);
  const lc_tensor *t0 = in[0];
  int nd = t0->ndim;
  if (nd == 0)
    return lc_set_error(LC_ESHAPE, "cat: zero-dimensional tensor (at position 0) cannot be "
                                   "concatenated");
  int dim = (int)args->i[0];
  lc_status st = lc_wrap_dim(&dim, nd, "cat");
  if (st) return st;
  lc_dtype dt = t0->dtype;
  memcpy(shape, t0->shape, (size_t)nd * sizeof *shape);
  shape[dim] = 0;
  for (int k = 0; k < n; k++) {
    const lc_tensor *t = in[k];
    if (t->ndim != nd)
      return lc_set_error(LC_ESHAPE,
                          "cat: tensors must have the same number of dims: tensor 0 has %d, "
                          "tensor %d has %d",
                          nd, k, t->ndim);
    for (int d = 0; d < nd; d++) {
      if (d != dim && t->shape[d] != t0->shape[d])
        return lc_set_error(LC_ESHAPE,
                            "cat: sizes of tensors must match except in dim %d: expected size "
                            "%lld but got size %lld for tensor %d at dim %d",
                            dim, (long long)t0->shape[d], (long long)t->shape[d], k, d);
    }
    if (lc_add_overflows(shape[dim], t->shape[dim], &shape[dim]))
      return lc_set_error(LC_ESHAPE, "cat: the sizes along dim " LC_POS_D " sum past 2^63 - 1",
                          dim);
    dt = lc_promote(dt, t->dtype);
  }
  *dim_out = dim;
  *dt_out = dt;
  return LC_OK;
}

static lc_status cat_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                             const lc_op_args *args, lc_tensor **out) {
  int dim = 0;
  lc_dtype dt = LC_FLOAT32;
  int64_t shape[LC_MAX_DIMS];
  lc_status st = cat_check(n, in, args, &dim, &dt, shape);
  if (st) return st;
  int nd = in[0]->ndim;
  lc_tensor *r = NULL;
  st = lc_tensor_new(nd, shape, dt, &r);
  if (st) return st;
  /* inner: elements after dim; outer: rows before it. */
  int64_t outer = lc_shape_numel(dim, shape), inner = lc_shape_numel(nd - dim - 1, shape + dim + 1);
  size_t es = lc_dtype_size(dt);
  int64_t off = 0;
  for (int k = 0; k < n && !st; k++) {
    const lc_tensor *t = in[k];
    int64_t len = t->shape[dim];
    if (len == 0) continue;
    if (t->dtype == dt && t->contiguous) {
      /* Fast path: each outer row of t is one contiguous block of its band in r. */
      const char *src = lc_data(t);
      char *dst = (char *)lc_data(r) + (size_t)(off * inner) * es;
      size_t block = (size_t)(len * inner) * es, rstep = (size_t)(shape[dim] * inner) * es;
      for (int64_t o = 0; o < outer; o++)
        memcpy(dst + (size_t)o * rstep, src + (size_t)o * block, block);
    } else {
      int64_t bshape[LC_MAX_DIMS];
      memcpy(bshape, shape, (size_t)nd * sizeof *bshape);
      bshape[dim] = len;
      lc_tensor *band = NULL;
      st = lc_tensor_view_of(r, nd, bshape, r->strides, r->offset + off * r->strides[dim], &band);
      if (!st) st = lc_k_copy(band, t);
      lc_release(band);
    }
    off += len;
  }
  if (st) {
    lc_release(r);
    return st;
  }
  *out = r;
  return LC_OK;
}

static lc_status cat_backward_graph(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  int dim = (int)ctx->args->i[0];
  lc_status st = lc_wrap_dim(&dim, ctx->in[0].ndim, "CatBackward");
  if (st) return st;
  lc_gb b = LC_GB_INIT(ctx);
  int64_t off = 0;
  for (int k = 0; k < ctx->n_inputs; k++) {
    int64_t len = ctx->in[k].shape[dim];
    if (ctx->needs_grad[k]) {
      lc_op_args a = {.i = {dim, off, off + len, 1}, .ni = 4};
      lc_tensor *gin[1] = {(lc_tensor *)g};
      lc_gb_grad(&b, k, lc_gb_op(&b, &lc_op_slice, 1, gin, &a), grad_in);
    }
    off += len;
  }
  return lc_gb_end(&b, grad_in);
}

static lc_status cat_backward(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  int dim = (int)ctx->args->i[0];
  lc_status st = lc_wrap_dim(&dim, ctx->in[0].ndim, "CatBackward");
  if (st) return st;
  int64_t off = 0;
  int k;
  for (k = 0; k < ctx->n_inputs; k++) {
    int64_t len = ctx->in[k].shape[dim];
    if (ctx->needs_grad[k]) {
      lc_op_args a = {.i = {dim, off, off + len, 1}, .ni = 4};
      lc_tensor *gin[1] = {(lc_tensor *)g}, *band = NULL;
      st = lc_op_run(&lc_op_slice, 1, gin, &a, &band);
      if (st) break;
      if (band->dtype != ctx->in[k].dtype) {
        /* Inputs of mixed float dtypes: each gets its gradient in its own dtype. */
        lc_tensor *c = NULL;
        st = lc_k_copy_as(band, ctx->in[k].dtype, &c);
        lc_release(band);
        if (st) break;
        band = c;
      }
      grad_in[k] = band;
    }
    off += len;
  }
  if (st) {
    for (int j = 0; j < k; j++) { /* release only the gradients this call produced */
      if (ctx->needs_grad[j]) {
        lc_release(grad_in[j]);
        grad_in[j] = NULL;
      }
    }
  }
  return st;
}

const lc_op_def lc_op_cat = {
    .name = "cat",
    .grad_fn_name = "CatBackward",
    .n_inputs = -1,
    .n_outputs = 1,
    .forward = cat_forward,
    .backward = cat_backward,
    .backward_graph = cat_backward_graph,
};
