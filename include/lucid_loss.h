/*
 * lucid_loss.h - loss functions (PyTorch's torch.nn.functional losses) as tensor functions with
 * autograd.
 *
 * Conventions are lucid.h's: 0-based (class indices are 0..C-1), every function returns an
 * lc_status with a message in lc_last_error(), the result goes to the last argument `out` and
 * is owned by the caller (one reference), tensor arguments are borrowed.
 *
 * Every loss takes a reduction: LC_REDUCTION_MEAN (the default, 0, so a zero-initialised
 * options struct means PyTorch's defaults), LC_REDUCTION_SUM, or LC_REDUCTION_NONE (the
 * per-element / per-sample losses, same shape as the input, or the input without its class dim
 * for the class losses). LC_REDUCTION_BATCHMEAN is accepted by lc_kl_div only (the sum divided
 * by the size of dim 0). mean and sum give a 0-dim tensor of the input's dtype.
 *
 * input must be float32 or float64. A float target of another dtype is converted to input's
 * dtype (through a recorded cast, so its gradient still flows); integer targets of the
 * pointwise losses are converted too. Input and target of the pointwise losses must have the
 * same shape (lucid does not broadcast them, PyTorch warns and broadcasts). Gradients are
 * computed for input and, where the target is a float tensor that requires grad, for target;
 * gradients for weight / pos_weight are not supported (an LC_EGRAD error at backward).
 *
 * The kernels compute in float64 for float32 data (one rounding at the end), sums are
 * deterministic (fixed blocks, independent of the thread count).
 */
#ifndef LUCID_LOSS_H
#define LUCID_LOSS_H

#include "lucid_core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lc_reduction {
  LC_REDUCTION_MEAN = 0,
  LC_REDUCTION_SUM,
  LC_REDUCTION_NONE,
  LC_REDUCTION_BATCHMEAN /* lc_kl_div only */
} lc_reduction;

/* "mean", "sum", "none", "batchmean" <-> the enum (LC_EARG for an unknown name). */
const char *lc_reduction_name(lc_reduction r);
lc_status lc_reduction_from_name(const char *name, lc_reduction *out);

/* ---------------------------------------------------------------- pointwise losses */

/* (x - y)^2 */
lc_status lc_mse_loss(const lc_tensor *input, const lc_tensor *target, lc_reduction reduction,
                      lc_tensor **out);
/* |x - y| */
lc_status lc_l1_loss(const lc_tensor *input, const lc_tensor *target, lc_reduction reduction,
                     lc_tensor **out);
/* d = |x - y|: 0.5 d^2 when d < delta, else delta (d - 0.5 delta). delta > 0 (PyTorch: 1). */
lc_status lc_huber_loss(const lc_tensor *input, const lc_tensor *target, lc_reduction reduction,
                        double delta, lc_tensor **out);
/* d = |x - y|: 0.5 d^2 / beta when d < beta, else d - 0.5 beta; beta = 0 is the L1 loss.
 * beta >= 0 (PyTorch: 1). */
lc_status lc_smooth_l1_loss(const lc_tensor *input, const lc_tensor *target, lc_reduction reduction,
                            double beta, lc_tensor **out);
/* -w (y log x + (1 - y) log(1 - x)), each log clamped at -100 as PyTorch does. input values
 * must lie in [0, 1] (LC_EARG otherwise). weight: NULL or a tensor broadcasting to input's
 * shape. */
lc_status lc_binary_cross_entropy(const lc_tensor *input, const lc_tensor *target,
                                  const lc_tensor *weight, lc_reduction reduction, lc_tensor **out);
/* -w (p y log s(x) + (1 - y) log(1 - s(x))) with s the sigmoid, in the stable form
 * (1 - y) x + (1 + (p - 1) y) (log1p(exp(-|x|)) + max(-x, 0)). weight: NULL or broadcasting to
 * input; pos_weight: NULL or broadcasting to input (typically {C}, the last dim). */
lc_status lc_binary_cross_entropy_with_logits(const lc_tensor *input, const lc_tensor *target,
                                              const lc_tensor *weight, const lc_tensor *pos_weight,
                                              lc_reduction reduction, lc_tensor **out);
/* input holds log-probabilities. log_target false: y (log y - x) (0 where y = 0);
 * true: exp(y) (y - x). reduction "mean" divides by numel, as PyTorch does (which warns that
 * "batchmean" is the mathematically correct one). */
lc_status lc_kl_div(const lc_tensor *input, const lc_tensor *target, lc_reduction reduction,
                    bool log_target, lc_tensor **out);

/* ---------------------------------------------------------------- class losses */

/* Options of lc_cross_entropy / lc_nll_loss. Zero-initialised = PyTorch's defaults. */
typedef struct lc_class_loss_opts {
  const lc_tensor *weight; /* NULL or {C}: a weight per class (borrowed) */
  bool has_ignore_index;   /* false: no class is ignored */
  int64_t ignore_index;    /* 0-based; samples whose target equals it add nothing */
  lc_reduction reduction;
  double label_smoothing; /* cross_entropy only, in [0, 1] */
} lc_class_loss_opts;

/* Cross entropy of logits. input: {N, C}, {N, C, d1, ...} or {C}. target:
 *   - class indices: int64 or int32, shape {N}, {N, d1, ...} or {} (for a {C} input), values
 *     in 0..C-1 or equal to ignore_index (else LC_EINDEX naming the target);
 *   - class probabilities: a float tensor of input's shape (ignore_index is then an error).
 * One fused pass: log-softmax and the negative log-likelihood per sample (no N*C temporary;
 * backward computes softmax - onehot, scaled, straight into the gradient).
 * reduction mean with class targets is PyTorch's weighted mean: the sum of per-sample losses
 * divided by the sum of weight[target] over the samples not ignored (their count without a
 * weight); nan when every sample is ignored. With probability targets it divides by the
 * number of samples (N * d1 * ...). opts may be NULL (defaults). */
lc_status lc_cross_entropy(const lc_tensor *input, const lc_tensor *target,
                           const lc_class_loss_opts *opts, lc_tensor **out);
/* -weight[t] * input[t] per sample; input holds log-probabilities, shapes and the weighted
 * mean as lc_cross_entropy with class targets; label_smoothing must be 0. */
lc_status lc_nll_loss(const lc_tensor *input, const lc_tensor *target,
                      const lc_class_loss_opts *opts, lc_tensor **out);

#ifdef __cplusplus
}
#endif
#endif /* LUCID_LOSS_H */
