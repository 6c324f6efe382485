/* sum_to.c - lc_k_sum_to: the adjoint of broadcasting (sums a gradient over broadcast dims).
 *
 * The output is visited with stride 0 over the summed dims, so one lc_iter pass over grad
 * accumulates every element into its slot, keepdim-style. float32 accumulates in float64 (a
 * bias gradient sums a whole batch) and is rounded once at the end. Serial: the output is
 * shared by every row, and broadcast gradients are usually small next to the forward pass. */
#include "kernel_util.h"

#include <string.h>

#define SUM_ROWS(T, S, ACC)                                                                        \
  static void sum_rows_##S(const lc_iter *it, ACC *restrict acc, const T *restrict g) {            \
    const int64_t inner = it->inner, os = it->inner_stride[0], gs = it->inner_stride[1];           \
    int64_t offs[LC_ITER_MAX_OPS];                                                                 \
    for (int64_t r = 0; r < it->outer; r++) {                                                      \
      lc_iter_row(it, r, offs);                                                                    \
      ACC *o = acc + offs[0];                                                                      \
      const T *x = g + offs[1];                                                                    \
      if (os == 0) { /* the inner dim is summed: a dot-style reduction */                          \
        ACC s = 0;                                                                                 \
        for (int64_t i = 0; i < inner; i++)                                                        \
          s += (ACC)x[i * gs];                                                                     \
        *o += s;                                                                                   \
      } else if (os == 1 && gs == 1) {                                                             \
        for (int64_t i = 0; i < inner; i++)                                                        \
          o[i] += (ACC)x[i];                                                                       \
      } else {                                                                                     \
        for (int64_t i = 0; i < inner; i++)                                                        \
          o[i * os] += (ACC)x[i * gs];                                                             \
      }                                                                                            \
    }                                                                                              \
  }

SUM_ROWS(float, f32, double)
SUM_ROWS(double, f64, double)
SUM_ROWS(int32_t, i32, int64_t)
SUM_ROWS(int64_t, i64, int64_t)
SUM_ROWS(uint8_t, b, int64_t)

lc_status lc_k_sum_to(const lc_tensor *grad, int ndim, const int64_t *shape, lc_tensor **out) {
  if (!grad || !out || (ndim > 0 && !shape)) return lc_set_error(LC_EARG, "sum_to: NULL argument");
  /* Same shape: nothing to reduce. */
  if (same_shape(grad, ndim, shape)) {
    *out = lc_retain((lc_tensor *)grad);
    return LC_OK;
  }
  /* The target must broadcast to grad's shape: every target dim is 1 or equal. */
  int lead = grad->ndim - ndim;
  bool ok = lead >= 0;
  for (int i = 0; ok && i < ndim; i++)
    ok = shape[i] == 1 || shape[i] == grad->shape[lead + i];
  if (!ok) {
    char a[256], b[256];
    return lc_set_error(LC_ESHAPE, "sum_to: gradient of shape %s cannot be summed to shape %s",
                        lc_shape_str(grad->ndim, grad->shape, a, sizeof a),
                        lc_shape_str(ndim, shape, b, sizeof b));
  }

  const lc_dtype dt = grad->dtype;
  const lc_dtype acc_dt = is_float(dt) ? LC_FLOAT64 : LC_INT64;
  lc_tensor *acc = NULL;
  lc_status st = lc_tensor_new(ndim, shape, acc_dt, &acc);
  if (st) return st;
  memset(lc_data(acc), 0, (size_t)acc->numel * lc_dtype_size(acc_dt));

  if (grad->numel > 0) {
    /* Accumulator strides over grad's shape: 0 on leading and size-1 (broadcast) dims. */
    int64_t strides[2][LC_MAX_DIMS];
    for (int i = 0; i < grad->ndim; i++) {
      int j = i - lead;
      strides[0][i] = (j < 0 || shape[j] == 1) ? 0 : acc->strides[j];
      strides[1][i] = grad->strides[i];
    }
    lc_iter it;
    lc_iter_init(&it, 2, grad->ndim, grad->shape, (const int64_t(*)[LC_MAX_DIMS])strides);
    const void *g = lc_data(grad);
    void *a = lc_data(acc);
    switch (dt) {
    case LC_FLOAT32: sum_rows_f32(&it, a, g); break;
    case LC_FLOAT64: sum_rows_f64(&it, a, g); break;
    case LC_INT32: sum_rows_i32(&it, a, g); break;
    case LC_INT64: sum_rows_i64(&it, a, g); break;
    default: sum_rows_b(&it, a, g); break;
    }
  }

  /* Bool sums become int64 (as sum does); other dtypes keep grad's dtype. */
  const lc_dtype out_dt = dt == LC_BOOL ? LC_INT64 : dt;
  if (out_dt == acc_dt) {
    *out = acc;
    return LC_OK;
  }
  st = lc_k_copy_as(acc, out_dt, out);
  lc_release(acc);
  return st;
}

/* ------------------------------------------------------------------ sum_to as an op */

/* The graph form of lc_k_sum_to (used by backward_graph functions through lc_gb_sum_to): its
 * gradient is the expansion back to the input's shape, itself an op, so it differentiates to
 * any order. */
static lc_status sum_to_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                                const lc_op_args *args, lc_tensor **out) {
  (void)op;
  (void)n;
  if (same_shape(in[0], args->ni, args->i)) /* a new header, never in[0] itself */
    return lc_tensor_view_of(in[0], in[0]->ndim, in[0]->shape, in[0]->strides, in[0]->offset, out);
  return lc_k_sum_to(in[0], args->ni, args->i, out);
}

static lc_status sum_to_backward(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  if (!ctx->needs_grad[0]) return LC_OK;
  lc_op_args a = {.ni = ctx->in[0].ndim};
  memcpy(a.i, ctx->in[0].shape, (size_t)a.ni * sizeof a.i[0]);
  lc_tensor *in[1] = {(lc_tensor *)g};
  return ctx->run(&lc_op_expand, 1, in, &a, &grad_in[0]);
}

const lc_op_def lc_op_sum_to = {.name = "sum_to",
                                .grad_fn_name = "SumToBackward",
                                .n_inputs = 1,
                                .n_outputs = 1,
                                .forward = sum_to_forward,
                                .backward = sum_to_backward,
                                .backward_graph = sum_to_backward};
