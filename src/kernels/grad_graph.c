/* grad_graph.c - the lc_gb_* builder (grad_graph.h): differentiable gradient formulas for the
 * backward_graph functions, every step an op run through ctx->run. */
#include "grad_graph.h"

#include "elementwise.h"
#include "kernel_util.h"

#include <string.h>

lc_tensor *lc_gb_keep(lc_gb *b, lc_tensor *t) {
  if (b->st) {
    lc_release(t);
    return NULL;
  }
  if (!t) {
    b->st = lc_set_error(LC_EGRAD, "%s: backward_graph: missing operand", b->ctx->op->name);
    return NULL;
  }
  if (b->n == LC_GB_KEEP) {
    lc_release(t);
    b->st = lc_set_error(LC_EGRAD, "%s: backward_graph: more than %d steps", b->ctx->op->name,
                         LC_GB_KEEP);
    return NULL;
  }
  b->keep[b->n++] = t;
  return t;
}

lc_tensor *lc_gb_op(lc_gb *b, const lc_op_def *op, int n, lc_tensor *const *in,
                    const lc_op_args *args) {
  if (b->st) return NULL;
  for (int i = 0; i < n; i++)
    if (!in[i]) {
      b->st = lc_set_error(LC_EGRAD, "%s: backward_graph: missing operand", b->ctx->op->name);
      return NULL;
    }
  lc_op_args none;
  if (!args) {
    memset(&none, 0, sizeof none);
    args = &none;
  }
  lc_tensor *out[LC_OP_MAX_OUTPUTS] = {NULL};
  lc_status st = b->ctx->run(op, n, in, args, out);
  if (st) {
    b->st = st;
    return NULL;
  }
  for (int k = 1; k < op->n_outputs; k++)
    lc_release(out[k]);
  return lc_gb_keep(b, out[0]);
}

#define T(x) ((lc_tensor *)(x))

lc_tensor *lc_gb_un(lc_gb *b, lc_unary_op code, const lc_tensor *x) {
  lc_tensor *in[1] = {T(x)};
  return lc_gb_op(b, &lc_op_unary[code], 1, in, NULL);
}

lc_tensor *lc_gb_bin(lc_gb *b, lc_binary_op code, const lc_tensor *x, const lc_tensor *y) {
  lc_tensor *in[2] = {T(x), T(y)};
  return lc_gb_op(b, &lc_op_binary[code], 2, in, NULL);
}

lc_tensor *lc_gb_sc(lc_gb *b, lc_binary_op code, const lc_tensor *x, double s) {
  lc_op_args a = {.f = {s}};
  lc_tensor *in[1] = {T(x)};
  return lc_gb_op(b, &lc_op_binary_scalar[code], 1, in, &a);
}

lc_tensor *lc_gb_rsc(lc_gb *b, lc_binary_op code, double s, const lc_tensor *x) {
  lc_op_args a = {.f = {s}, .flags = LC_ARG_REVERSE};
  lc_tensor *in[1] = {T(x)};
  return lc_gb_op(b, &lc_op_binary_scalar[code], 1, in, &a);
}

lc_tensor *lc_gb_where(lc_gb *b, const lc_tensor *cond, const lc_tensor *x, const lc_tensor *y) {
  lc_tensor *in[3] = {T(cond), T(x), T(y)};
  return lc_gb_op(b, &lc_op_where, 3, in, NULL);
}

lc_tensor *lc_gb_mask(lc_gb *b, const lc_tensor *cond, const lc_tensor *x) {
  if (b->st) return NULL;
  lc_tensor *z = NULL;
  b->st = lc_tensor_new(0, NULL, x->dtype, &z);
  if (!b->st) b->st = lc_k_fill(z, 0.0);
  if (b->st) {
    lc_release(z);
    return NULL;
  }
  return lc_gb_where(b, cond, x, lc_gb_keep(b, z));
}

lc_tensor *lc_gb_cast(lc_gb *b, const lc_tensor *x, lc_dtype dt) {
  if (b->st) return NULL;
  if (x->dtype == dt) return T(x);
  lc_op_args a = {.dtype = dt};
  lc_tensor *in[1] = {T(x)};
  return lc_gb_op(b, &lc_op_cast, 1, in, &a);
}

static lc_op_args shape_args(int ndim, const int64_t *shape) {
  lc_op_args a = {.ni = ndim};
  if (ndim > 0) memcpy(a.i, shape, (size_t)ndim * sizeof *shape);
  return a;
}

lc_tensor *lc_gb_reshape(lc_gb *b, const lc_tensor *x, int ndim, const int64_t *shape) {
  if (b->st) return NULL;
  if (same_shape(x, ndim, shape)) return T(x);
  int64_t strides[LC_MAX_DIMS];
  lc_tensor *src = T(x);
  if (!lc_shape_view_strides(x, ndim, shape, strides)) {
    lc_tensor *in[1] = {src};
    src = lc_gb_op(b, &lc_op_clone, 1, in, NULL);
    if (!src) return NULL;
  }
  lc_op_args a = shape_args(ndim, shape);
  lc_tensor *in[1] = {src};
  return lc_gb_op(b, &lc_op_view, 1, in, &a);
}

lc_tensor *lc_gb_expand(lc_gb *b, const lc_tensor *x, int ndim, const int64_t *shape) {
  if (b->st) return NULL;
  if (same_shape(x, ndim, shape)) return T(x);
  lc_op_args a = shape_args(ndim, shape);
  lc_tensor *in[1] = {T(x)};
  return lc_gb_op(b, &lc_op_expand, 1, in, &a);
}

lc_tensor *lc_gb_sum_to(lc_gb *b, const lc_tensor *x, int ndim, const int64_t *shape) {
  if (b->st) return NULL;
  if (same_shape(x, ndim, shape)) return T(x);
  lc_op_args a = shape_args(ndim, shape);
  lc_tensor *in[1] = {T(x)};
  return lc_gb_op(b, &lc_op_sum_to, 1, in, &a);
}

lc_tensor *lc_gb_permute(lc_gb *b, const lc_tensor *x, int ndim, const int64_t *perm) {
  lc_op_args a = shape_args(ndim, perm);
  lc_tensor *in[1] = {T(x)};
  return lc_gb_op(b, &lc_op_permute, 1, in, &a);
}

lc_tensor *lc_gb_mT(lc_gb *b, const lc_tensor *x) {
  if (b->st) return NULL;
  if (x->ndim < 2) return T(x);
  int64_t perm[LC_MAX_DIMS];
  for (int i = 0; i < x->ndim; i++)
    perm[i] = i;
  perm[x->ndim - 2] = x->ndim - 1;
  perm[x->ndim - 1] = x->ndim - 2;
  return lc_gb_permute(b, x, x->ndim, perm);
}

lc_tensor *lc_gb_matmul(lc_gb *b, const lc_tensor *x, const lc_tensor *y) {
  lc_tensor *in[2] = {T(x), T(y)};
  return lc_gb_op(b, &lc_op_matmul, 2, in, NULL);
}

lc_tensor *lc_gb_sum_keep(lc_gb *b, const lc_tensor *x, const bool *red) {
  if (b->st) return NULL;
  lc_op_args a = {.flags = LC_ARG_KEEPDIM};
  for (int d = 0; d < x->ndim; d++)
    if (red[d]) a.i[a.ni++] = d;
  if (a.ni == 0) return T(x);
  lc_tensor *in[1] = {T(x)};
  return lc_gb_op(b, &lc_op_reduce[LC_SUM], 1, in, &a);
}

lc_tensor *lc_gb_zeros(lc_gb *b, const lc_meta *m, lc_dtype dt) {
  if (b->st) return NULL;
  lc_tensor *z = NULL;
  b->st = lc_zeros(m->ndim, m->shape, dt, &z);
  return lc_gb_keep(b, z);
}

lc_tensor *lc_gb_put_back(lc_gb *b, const lc_meta *m, int dim, const lc_tensor *src,
                          const lc_tensor *index) {
  if (b->st) return NULL;
  if (!src || !index) return lc_gb_keep(b, NULL);
  if (src->ndim != m->ndim || index->ndim != m->ndim) {
    int64_t ks[LC_MAX_DIMS]; /* m's shape with dim of size 1 */
    for (int d = 0; d < m->ndim; d++)
      ks[d] = d == dim ? 1 : m->shape[d];
    if (src->ndim != m->ndim) src = lc_gb_reshape(b, src, m->ndim, ks);
    if (index->ndim != m->ndim) index = lc_gb_reshape(b, index, m->ndim, ks);
  }
  lc_op_args a = {.i = {dim}, .ni = 1};
  lc_tensor *in[3] = {lc_gb_zeros(b, m, src ? src->dtype : LC_FLOAT32), T(index), T(src)};
  return lc_gb_op(b, &lc_op_scatter_add, 3, in, &a);
}

lc_tensor *lc_gb_saved(lc_gb *b, int k) {
  if (b->st) return NULL;
  lc_tensor *t = NULL;
  b->st = lc_ctx_saved(b->ctx, k, &t);
  return b->st ? NULL : t;
}

void lc_gb_grad(lc_gb *b, int i, const lc_tensor *t, lc_tensor **grad_in) {
  if (b->st) return;
  const lc_meta *m = &b->ctx->in[i];
  lc_tensor *r = lc_gb_sum_to(b, t, m->ndim, m->shape);
  if (r && lc_dtype_is_float(m->dtype)) r = lc_gb_cast(b, r, m->dtype);
  if (!r) return;
  lc_release(grad_in[i]);
  grad_in[i] = lc_retain(r);
}

lc_status lc_gb_end(lc_gb *b, lc_tensor **grad_in) {
  for (int k = 0; k < b->n; k++)
    lc_release(b->keep[k]);
  b->n = 0;
  if (b->st && grad_in)
    for (int i = 0; i < b->ctx->n_inputs; i++) {
      lc_release(grad_in[i]);
      grad_in[i] = NULL;
    }
  return b->st;
}

/* ---- the gradient of an op linear in its one input, as an op (lc_gb_linear_grad).
 * Inputs {g, desc}: desc is an int64 tensor {address of the op's def, ndim, shape...} of the
 * input the gradient is for (it never leaves the runtime: only backward_graph functions make
 * one). Forward runs the op's fused backward; the backward of that linear map is its adjoint,
 * the op's forward itself, run on the incoming gradient. */

static lc_status desc_decode(const lc_tensor *desc, const lc_op_def **op, lc_meta *m, lc_dtype dt) {
  const int64_t *d = lc_data(desc);
  *op = (const lc_op_def *)(uintptr_t)d[0];
  m->ndim = (int)d[1];
  m->dtype = dt;
  for (int k = 0; k < m->ndim; k++)
    m->shape[k] = d[2 + k];
  return LC_OK;
}

static lc_status linear_grad_forward(const lc_op_def *self, int n, lc_tensor *const *in,
                                     const lc_op_args *args, lc_tensor **out) {
  (void)self;
  (void)n;
  const lc_op_def *op;
  lc_meta m;
  desc_decode(in[1], &op, &m, in[0]->dtype);
  bool need = true;
  lc_op_ctx ctx = {.op = op,
                   .args = args,
                   .n_inputs = 1,
                   .in = &m,
                   .out = &m,
                   .needs_grad = &need,
                   .run = lc_op_run};
  lc_tensor *gi[1] = {NULL};
  lc_status st = op->backward(&ctx, in[0], gi);
  if (st) return st;
  if (!gi[0]) return lc_set_error(LC_EGRAD, "%s: no gradient", op->name);
  out[0] = gi[0];
  return LC_OK;
}

static lc_status linear_grad_backward(const lc_op_ctx *ctx, const lc_tensor *gg,
                                      lc_tensor **grad_in) {
  lc_gb b = LC_GB_INIT(ctx);
  lc_tensor *desc = lc_gb_saved(&b, 0);
  if (ctx->needs_grad[0] && desc) {
    const lc_op_def *op;
    lc_meta m;
    desc_decode(desc, &op, &m, gg->dtype);
    lc_tensor *in[1] = {T(gg)};
    lc_gb_grad(&b, 0, lc_gb_op(&b, op, 1, in, ctx->args), grad_in);
  }
  return lc_gb_end(&b, grad_in);
}

static const lc_op_def lc_op_linear_grad = {.name = "linear_grad",
                                            .grad_fn_name = "LinearOpBackwardBackward",
                                            .n_inputs = 2,
                                            .n_outputs = 1,
                                            .save = LC_SAVE_IN(1),
                                            .forward = linear_grad_forward,
                                            .backward = linear_grad_backward,
                                            .backward_graph = linear_grad_backward};

lc_tensor *lc_gb_linear_grad(lc_gb *b, const lc_tensor *g, const lc_op_args *args) {
  if (b->st) return NULL;
  const lc_meta *m = &b->ctx->in[0];
  int64_t n = 2 + m->ndim;
  lc_tensor *desc = NULL;
  b->st = lc_tensor_new(1, &n, LC_INT64, &desc);
  if (b->st) return NULL;
  int64_t *d = lc_data(desc);
  d[0] = (int64_t)(uintptr_t)b->ctx->op;
  d[1] = m->ndim;
  for (int k = 0; k < m->ndim; k++)
    d[2 + k] = m->shape[k];
  lc_tensor *in[2] = {T(g), lc_gb_keep(b, desc)};
  return lc_gb_op(b, &lc_op_linear_grad, 2, in, args);
}
