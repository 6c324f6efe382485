/* linear.c - the fused linear op: y = x W^T + b, as nn.Linear and F.linear run it.
 *
 * One op rather than transpose + matmul + add: forward is one GEMM into a result pre-filled
 * with the bias rows; backward computes grad_W = g^T x straight into W's {out, in} layout and
 * grad_x = g W, both contiguous, so no transposed gradient is copied when it is accumulated
 * into W.grad, and grad_b is a column sum of g. Inputs: x {..., in}, W {out, in} and optionally
 * b {out}; all of one float dtype. Leading dims of x are flattened into the GEMM's rows.
 */
#include "linear.h"
#include "kernel_util.h"

#include <cblas.h>
#include <stdio.h>
#include <string.h>

static const char *linear_shape_error(const lc_tensor *x, const lc_tensor *w,
                                      const lc_tensor *b, char *buf, size_t len) {
  char sx[128], sw[128];
  lc_shape_str(x->ndim, x->shape, sx, sizeof sx);
  lc_shape_str(w->ndim, w->shape, sw, sizeof sw);
  if (w->ndim != 2)
    snprintf(buf, len, "linear: weight must be 2-D {out_features, in_features}, got shape %s", sw);
  else if (x->ndim < 1 || x->shape[x->ndim - 1] != w->shape[1])
    snprintf(buf, len,
             "linear: input shape %s does not match weight shape %s (expected the input's last "
             "dimension to be %lld)",
             sx, sw, (long long)w->shape[1]);
  else if (b && (b->ndim != 1 || b->shape[0] != w->shape[0])) {
    char sb[128];
    lc_shape_str(b->ndim, b->shape, sb, sizeof sb);
    snprintf(buf, len, "linear: bias must have shape {%lld}, got %s", (long long)w->shape[0], sb);
  } else
    return NULL;
  return buf;
}

lc_status lc_k_linear_check(const lc_tensor *x, const lc_tensor *w, const lc_tensor *b) {
  char msg[512];
  if (linear_shape_error(x, w, b, msg, sizeof msg)) return lc_set_error(LC_ESHAPE, "%s", msg);
  lc_dtype dt = x->dtype;
  if (!is_float(dt) || w->dtype != dt || (b && b->dtype != dt))
    return lc_set_error(LC_EDTYPE,
                        "linear: expected input, weight and bias of one float dtype, got %s, %s "
                        "and %s",
                        lc_dtype_name(x->dtype), lc_dtype_name(w->dtype),
                        b ? lc_dtype_name(b->dtype) : "no bias");
  return LC_OK;
}

static lc_status linear_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                                const lc_op_args *args, lc_tensor **out) {
  (void)op, (void)args;
  if (n != 2 && n != 3) return lc_set_error(LC_EARG, "linear: expected 2 or 3 inputs, got %d", n);
  const lc_tensor *b = n == 3 ? in[2] : NULL;
  lc_status st = lc_k_linear_check(in[0], in[1], b);
  if (st) return st;
  lc_tensor *x = NULL, *w = NULL, *y = NULL;
  if ((st = lc_k_dense(in[0], &x)) || (st = lc_k_dense(in[1], &w))) goto done;
  int64_t shape[LC_MAX_DIMS];
  memcpy(shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
  int64_t k = w->shape[1], nout = w->shape[0];
  shape[x->ndim - 1] = nout;
  if ((st = lc_empty(x->ndim, shape, x->dtype, &y))) goto done;
  int64_t m = k ? lc_numel(x) / k : lc_numel(y) / (nout ? nout : 1);
  bool f32 = x->dtype == LC_FLOAT32;
  if (b) { /* y rows start as the bias, then GEMM adds x W^T (beta = 1) */
    lc_tensor *bd = NULL;
    if ((st = lc_k_dense(b, &bd))) goto done;
    size_t row = (size_t)nout * lc_dtype_size(x->dtype);
    char *yp = lc_data(y);
    for (int64_t i = 0; i < m; i++) memcpy(yp + (size_t)i * row, lc_data(bd), row);
    lc_release(bd);
  }
  if (m > 0 && nout > 0) {
    if (k == 0) {
      if (!b) memset(lc_data(y), 0, (size_t)(m * nout) * lc_dtype_size(x->dtype));
    } else if (f32) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)nout, (int)k, 1.0f,
                  lc_data(x), (int)k, lc_data(w), (int)k, b ? 1.0f : 0.0f, lc_data(y), (int)nout);
    } else {
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)nout, (int)k, 1.0,
                  lc_data(x), (int)k, lc_data(w), (int)k, b ? 1.0 : 0.0, lc_data(y), (int)nout);
    }
  }
done:
  lc_release(x);
  lc_release(w);
  if (st) {
    lc_release(y);
    return st;
  }
  out[0] = y;
  return LC_OK;
}

/* Column sums of g {m, nout} into o {nout}. */
#define DEF_COLUMN_SUMS(T, S)                                                                      \
  static void column_sums_##S(const T *restrict gp, int64_t m, int64_t nout, T *restrict o) {      \
    memset(o, 0, sizeof(T) * (size_t)nout);                                                        \
    for (int64_t i = 0; i < m; i++)                                                                \
      for (int64_t j = 0; j < nout; j++)                                                           \
        o[j] += gp[i * nout + j];                                                                  \
  }
DEF_COLUMN_SUMS(float, f32)
DEF_COLUMN_SUMS(double, f64)

static void column_sums(const lc_tensor *g, int64_t m, int64_t nout, lc_tensor *gb) {
  if (g->dtype == LC_FLOAT32)
    column_sums_f32(lc_data(g), m, nout, lc_data(gb));
  else
    column_sums_f64(lc_data(g), m, nout, lc_data(gb));
}

static lc_status linear_backward(const lc_op_ctx *ctx, const lc_tensor *grad_out,
                                 lc_tensor **grad_in) {
  for (int i = 0; i < ctx->n_inputs; i++) grad_in[i] = NULL;
  lc_tensor *xs = NULL, *ws = NULL, *x = NULL, *w = NULL, *g = NULL;
  lc_status st = lc_ctx_saved(ctx, 0, &xs);
  if (!st) st = lc_ctx_saved(ctx, 1, &ws);
  if (st) return st;
  if ((st = lc_k_dense(xs, &x)) || (st = lc_k_dense(ws, &w)) || (st = lc_k_dense(grad_out, &g))) goto fail;
  int64_t k = w->shape[1], nout = w->shape[0];
  int64_t m = nout ? lc_numel(g) / nout : 0;
  bool f32 = x->dtype == LC_FLOAT32;
  if (ctx->needs_grad[0]) { /* grad_x = g W: {m, k} */
    if ((st = lc_zeros(x->ndim, x->shape, x->dtype, &grad_in[0]))) goto fail;
    if (m > 0 && k > 0 && nout > 0) {
      if (f32)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)k, (int)nout, 1.0f,
                    lc_data(g), (int)nout, lc_data(w), (int)k, 0.0f, lc_data(grad_in[0]), (int)k);
      else
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)k, (int)nout, 1.0,
                    lc_data(g), (int)nout, lc_data(w), (int)k, 0.0, lc_data(grad_in[0]), (int)k);
    }
  }
  if (ctx->needs_grad[1]) { /* grad_W = g^T x: {nout, k} */
    if ((st = lc_zeros(2, w->shape, w->dtype, &grad_in[1]))) goto fail;
    if (m > 0 && k > 0 && nout > 0) {
      if (f32)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nout, (int)k, (int)m, 1.0f,
                    lc_data(g), (int)nout, lc_data(x), (int)k, 0.0f, lc_data(grad_in[1]), (int)k);
      else
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nout, (int)k, (int)m, 1.0,
                    lc_data(g), (int)nout, lc_data(x), (int)k, 0.0, lc_data(grad_in[1]), (int)k);
    }
  }
  if (ctx->n_inputs == 3 && ctx->needs_grad[2]) {
    if ((st = lc_empty(1, &nout, g->dtype, &grad_in[2]))) goto fail;
    column_sums(g, m, nout, grad_in[2]);
  }
  lc_release(x);
  lc_release(w);
  lc_release(g);
  return LC_OK;
fail:
  drop_grads(ctx, grad_in);
  lc_release(x);
  lc_release(w);
  lc_release(g);
  return st;
}

const lc_op_def lc_op_linear = {.name = "linear",
                                .grad_fn_name = "LinearBackward",
                                .n_inputs = -1,
                                .n_outputs = 1,
                                .save = LC_SAVE_IN(0) | LC_SAVE_IN(1),
                                .forward = linear_forward,
                                .backward = linear_backward};
