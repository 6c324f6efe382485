/* dropout.c - the training-mode dropout op, forward and backward side by side: the keep mask
 * drawn from lucid's counter-based generator (two elements per draw, so it does not depend on
 * the thread count), the kept elements scaled by 1 / (1 - p); backward applies the saved mask.
 * float32 and float64; contiguous operands (a strided input is copied once). */
#include "dropout.h"
#include "grad_graph.h"
#include "kernel_util.h"

#include <math.h>

/* Element k keeps when its 32-bit uniform (half k % 2 of draw k / 2) is >= thresh, i.e. with
 * probability 1 - p (to 2^-32); thresh = 2^32 drops everything (p = 1). */
typedef struct do_job {
  lc_dtype dt;
  int64_t n;
  uint64_t seed, base, thresh;
  double scale;
  char *y;
  uint8_t *mask;
  const char *x;    /* forward: the input; backward: the output gradient */
  bool bwd;
} do_job;

#define DO_LOOP(T, S)                                                                              \
  static void do_apply_##S(const do_job *j, int64_t b, int64_t e) {                                \
    const T sc = (T)j->scale;                                                                      \
    const T *restrict x = (const T *)j->x;                                                         \
    const uint8_t *restrict m = j->mask;                                                           \
    T *restrict y = (T *)j->y;                                                                     \
    for (int64_t k = b; k < e; k++)                                                                \
      y[k] = m[k] ? x[k] * sc : (T)0;                                                              \
  }

DO_LOOP(float, f32)
DO_LOOP(double, f64)

/* Forward: draws the mask for pairs [b, e), then applies it; backward applies the saved one. */
static void do_range(void *ctx, int64_t b, int64_t e) {
  const do_job *j = ctx;
  int64_t kb = 2 * b, ke = 2 * e < j->n ? 2 * e : j->n;
  if (!j->bwd) {
    uint8_t *restrict m = j->mask;
    for (int64_t p = b; p < e; p++) {
      uint64_t bits = lc_rng_bits(j->seed, j->base + (uint64_t)p);
      m[2 * p] = (bits >> 32) >= j->thresh;
      if (2 * p + 1 < j->n) m[2 * p + 1] = (bits & 0xffffffffu) >= j->thresh;
    }
  }
  if (j->dt == LC_FLOAT32)
    do_apply_f32(j, kb, ke);
  else
    do_apply_f64(j, kb, ke);
}

static double do_scale(double p) { return p >= 1 ? 0.0 : 1.0 / (1.0 - p); }

static lc_status do_check_p(const char *fn, double p) {
  if (!(p >= 0 && p <= 1))
    return lc_set_error(LC_EARG, "%s: dropout probability has to be between 0 and 1, but got %g",
                        fn, p);
  return LC_OK;
}

static lc_status do_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                            const lc_op_args *args, lc_tensor **out) {
  const lc_tensor *x = in[0];
  lc_status st = need_float_dtype(op->name, "input", x->dtype);
  if (!st) st = do_check_p(op->name, args->f[0]);
  if (st) return st;
  lc_tensor *hold = NULL, *y = NULL, *mask = NULL;
  const lc_tensor *xc = NULL;
  if (!(st = dense(x, x->dtype, &hold, &xc)) &&
      !(st = lc_tensor_new(x->ndim, x->shape, x->dtype, &y)) &&
      !(st = lc_tensor_new(x->ndim, x->shape, LC_BOOL, &mask))) {
    const double p = args->f[0];
    do_job j = {.dt = x->dtype,
                .n = x->numel,
                .seed = (uint64_t)args->i[0],
                .base = (uint64_t)args->i[1],
                .thresh = (uint64_t)ldexp(p, 32),
                .scale = do_scale(p),
                .y = lc_data(y),
                .mask = lc_data(mask),
                .x = lc_data(xc),
                .bwd = false};
    lc_parallel_for((x->numel + 1) / 2, 16, do_range, &j);
    out[0] = y;
    out[1] = mask;
  } else {
    lc_release(y);
    lc_release(mask);
  }
  lc_release(hold);
  return st;
}

static lc_status do_backward(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  if (!ctx->needs_grad[0]) return LC_OK;
  const lc_tensor *mask = NULL;
  lc_status st = saved(ctx, 0, &mask);
  if (st) return st;
  if (!same_shape(g, mask->ndim, mask->shape)) return grad_shape_error(ctx, g);
  lc_dtype dt = ctx->in[0].dtype;
  lc_tensor *hg = NULL, *hm = NULL, *gx = NULL;
  const lc_tensor *gc = NULL, *mc = NULL;
  if (!(st = dense(g, dt, &hg, &gc)) && !(st = dense(mask, LC_BOOL, &hm, &mc)) &&
      !(st = lc_tensor_new(mask->ndim, mask->shape, dt, &gx))) {
    do_job j = {.dt = dt,
                .n = gx->numel,
                .scale = do_scale(ctx->args->f[0]),
                .y = lc_data(gx),
                .mask = lc_data(mc),
                .x = lc_data(gc),
                .bwd = true};
    lc_parallel_for((gx->numel + 1) / 2, 2, do_range, &j);
    grad_in[0] = gx;
  }
  lc_release(hg);
  lc_release(hm);
  return st;
}

/* create_graph: g where kept, times 1 / (1 - p) */
static lc_status do_backward_graph(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  if (!ctx->needs_grad[0]) return LC_OK;
  lc_gb b = LC_GB_INIT(ctx);
  lc_tensor *mask = lc_gb_saved(&b, 0);
  lc_tensor *r = lc_gb_sc(&b, LC_MUL, lc_gb_mask(&b, mask, g), do_scale(ctx->args->f[0]));
  lc_gb_grad(&b, 0, r, grad_in);
  return lc_gb_end(&b, grad_in);
}

const lc_op_def lc_op_dropout = {.name = "dropout",
                                 .grad_fn_name = "DropoutBackward",
                                 .n_inputs = 1,
                                 .n_outputs = 2,
                                 .save = LC_SAVE_OUT(1),
                                 .forward = do_forward,
                                 .backward = do_backward,
                                 .backward_graph = do_backward_graph};
