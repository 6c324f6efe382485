/*
 * lucid_activation.h - activations and softmax:
 * tensor functions (with autograd) and their module kinds.
 *
 * Conventions are lucid.h's: dims and indices are 0-based (negative dims count from the end),
 * every fallible function returns an lc_status with a message in lc_last_error(), a produced
 * tensor is written to the last argument and owned by the caller, arguments are borrowed.
 *
 * The elementwise activations, softmax and log_softmax take float32 or float64 tensors (other
 * dtypes are an LC_EDTYPE error) and return a new contiguous tensor of the same dtype; each runs
 * as one fused kernel whose backward is one more pass (no graph of primitive ops is recorded).
 * Module kinds are single-input (lucid_nn.h). Bilinear is the linear family's, next to
 * lc_linear in lucid_core.h.
 */
#ifndef LUCID_ACTIVATION_H
#define LUCID_ACTIVATION_H

#include "lucid_core.h"
#include "lucid_nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- elementwise activations */

/* min(max(x, 0), 6); the gradient is 0 at x <= 0 and x >= 6 (PyTorch's hardtanh rule). */
lc_status lc_relu6(const lc_tensor *x, lc_tensor **out);
/* x > 0 ? x : negative_slope * x (PyTorch's default slope is 0.01). */
lc_status lc_leaky_relu(const lc_tensor *x, double negative_slope, lc_tensor **out);
/* x > 0 ? x : alpha * (exp(x) - 1) (default alpha 1). */
lc_status lc_elu(const lc_tensor *x, double alpha, lc_tensor **out);

typedef enum lc_gelu_approx {
  LC_GELU_NONE = 0, /* x * Phi(x) with the exact normal CDF (erf) */
  LC_GELU_TANH      /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
} lc_gelu_approx;
lc_status lc_gelu(const lc_tensor *x, lc_gelu_approx approximate, lc_tensor **out);
/* x * sigmoid(x) */
lc_status lc_silu(const lc_tensor *x, lc_tensor **out);
/* x * tanh(softplus(x)) */
lc_status lc_mish(const lc_tensor *x, lc_tensor **out);
/* log(1 + exp(beta x)) / beta, and x itself where beta x > threshold (defaults 1 and 20).
 * beta must be non-zero (LC_EARG). Computed as max(bx, 0) + log1p(exp(-|bx|)), which never
 * overflows. */
lc_status lc_softplus(const lc_tensor *x, double beta, double threshold, lc_tensor **out);
/* clamp(x, min_val, max_val) (defaults -1 and 1); max_val < min_val is LC_EARG. The gradient
 * is 0 where x <= min_val or x >= max_val. */
lc_status lc_hardtanh(const lc_tensor *x, double min_val, double max_val, lc_tensor **out);

/* x relu6(x + 3) / 6 (MobileNetV3's hard swish); the gradient is 0 below -3, x / 3 + 1/2 on
 * [-3, 3] and 1 above, as PyTorch's. */
lc_status lc_hardswish(const lc_tensor *x, lc_tensor **out);

/* ---------------------------------------------------------------- softmax */

/* exp(x) / sum(exp(x)) along dim, and its logarithm x - logsumexp(x), both computed after
 * subtracting the maximum along dim (no overflow for any finite input). A 0-dim tensor takes
 * dim 0 or -1. */
lc_status lc_softmax(const lc_tensor *x, int dim, lc_tensor **out);
lc_status lc_log_softmax(const lc_tensor *x, int dim, lc_tensor **out);

/* ---------------------------------------------------------------- module kinds */

extern const lc_module_kind lc_kind_relu6, lc_kind_leaky_relu, lc_kind_elu, lc_kind_gelu,
    lc_kind_silu, lc_kind_mish, lc_kind_softplus, lc_kind_hardtanh, lc_kind_softmax,
    lc_kind_log_softmax, lc_kind_hardswish;

/* Printing follows PyTorch ("LeakyReLU(negative_slope=0.01)", "Softmax(dim=1)"), with dims
 * 0-based (marked positions: lc_module_to_string_based(m, 1, ...) shows them 1-based, as the
 * Lua binding does) and booleans as true/false.
 * `inplace` is remembered and printed (when true) but lucid always
 * computes out of place, which autograd needs anyway.
 * Attributes (lc_module_attr): inplace (BOOL) where there is one; negative_slope, alpha, beta,
 * threshold, min_val, max_val (FLOAT); dim (DIM). */
lc_status lc_nn_relu6(bool inplace, lc_module **out);
lc_status lc_nn_leaky_relu(double negative_slope, bool inplace, lc_module **out);
lc_status lc_nn_elu(double alpha, bool inplace, lc_module **out);
lc_status lc_nn_gelu(lc_gelu_approx approximate, lc_module **out);
lc_status lc_nn_silu(bool inplace, lc_module **out);
lc_status lc_nn_mish(bool inplace, lc_module **out);
lc_status lc_nn_softplus(double beta, double threshold, lc_module **out);
lc_status lc_nn_hardtanh(double min_val, double max_val, bool inplace, lc_module **out);
lc_status lc_nn_hardswish(bool inplace, lc_module **out);
/* dim: 0-based, negative from the end; checked against the input at forward time. */
lc_status lc_nn_softmax(int dim, lc_module **out);
lc_status lc_nn_log_softmax(int dim, lc_module **out);

#ifdef __cplusplus
}
#endif
#endif /* LUCID_ACTIVATION_H */
