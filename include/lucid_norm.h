/*
 * lucid_norm.h - normalization layers: batch / layer / group / instance norm, as tensor
 * functions with autograd and as modules. Interpolation is its own family (lucid_interpolate.h).
 *
 * Conventions are lucid.h's: 0-based dims, every fallible function returns an lc_status with a
 * message in lc_last_error(), the result is written to the last argument (owned by the caller),
 * tensor arguments are borrowed. Float32 and float64 inputs; weight and bias (when given) have
 * the input's dtype. Gradients flow to the input, the weight and the bias (closed-form
 * backward); running statistics never take gradients.
 *
 * Layouts: "channels" is dim 1 of an input {N, C, *} (any number of trailing spatial dims).
 */
#ifndef LUCID_NORM_H
#define LUCID_NORM_H

#include "lucid_core.h"
#include "lucid_nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- batch norm */

typedef struct lc_batch_norm_opts {
  const lc_tensor *weight; /* {C} or NULL (scale 1) */
  const lc_tensor *bias;   /* {C} or NULL (shift 0) */
  /* {C} float tensors or NULL (both or neither). With training they are updated in place:
   * r = (1 - momentum) r + momentum s, with the batch mean, and the batch variance with
   * Bessel's correction (n / (n - 1)), as PyTorch. Without training they are the statistics
   * used, and are required. */
  lc_tensor *running_mean;
  lc_tensor *running_var;
  bool training; /* normalise with the batch statistics (biased variance) */
  double momentum;
  double eps;
  bool relu; /* fused max(0, .) after the affine transform (one pass, gradient masked) */
} lc_batch_norm_opts;

/* PyTorch's defaults: no weight, bias or running stats, eval mode, momentum 0.1, eps 1e-5. */
#define LC_BATCH_NORM_OPTS_INIT                                                                    \
  { NULL, NULL, NULL, NULL, false, 0.1, 1e-5, false }

/* y = (x - mean) / sqrt(var + eps) * weight + bias per channel, x {N, C, *} (ndim >= 2).
 * Training with only one value per channel (N * spatial == 1) is an LC_ESHAPE error. opts may
 * be NULL (the defaults, which need running stats: an error). */
lc_status lc_batch_norm(const lc_tensor *x, const lc_batch_norm_opts *opts, lc_tensor **out);

/* ---------------------------------------------------------------- layer / group / instance */

/* Normalises over the last nshape dims of x, whose sizes must equal normalized_shape; weight
 * and bias (NULL or of shape normalized_shape) apply elementwise. */
lc_status lc_layer_norm(const lc_tensor *x, int nshape, const int64_t *normalized_shape,
                        const lc_tensor *weight, const lc_tensor *bias, double eps,
                        lc_tensor **out);

/* x {N, C, *}: C split into num_groups groups (C % num_groups == 0), each (sample, group)
 * normalised over its channels and spatial positions; weight, bias {C} per channel or NULL. */
lc_status lc_group_norm(const lc_tensor *x, int64_t num_groups, const lc_tensor *weight,
                        const lc_tensor *bias, double eps, lc_tensor **out);

typedef struct lc_instance_norm_opts {
  const lc_tensor *weight, *bias; /* {C} or NULL */
  /* {C} or NULL (both or neither). With use_input_stats they are updated in place with the
   * per-instance statistics averaged over the batch (variance unbiased), as PyTorch; without
   * it they are the statistics used, and are required. */
  lc_tensor *running_mean, *running_var;
  bool use_input_stats;
  double momentum;
  double eps;
} lc_instance_norm_opts;

#define LC_INSTANCE_NORM_OPTS_INIT                                                                 \
  { NULL, NULL, NULL, NULL, true, 0.1, 1e-5 }

/* Each (sample, channel) of x {N, C, *} (ndim >= 3) normalised over its spatial positions.
 * With use_input_stats, one spatial position per instance is an LC_ESHAPE error. opts may be
 * NULL (the defaults). */
lc_status lc_instance_norm(const lc_tensor *x, const lc_instance_norm_opts *opts, lc_tensor **out);

/* ---------------------------------------------------------------- modules */

/* Pass as momentum for PyTorch's momentum=None: a cumulative moving average (the factor is
 * 1 / num_batches_tracked). Any negative momentum means the same. */
#define LC_MOMENTUM_CUMULATIVE (-1.0)

extern const lc_module_kind lc_kind_batch_norm1d, lc_kind_batch_norm2d, lc_kind_layer_norm,
    lc_kind_group_norm, lc_kind_instance_norm2d;

/* BatchNorm1d (input {N, C} or {N, C, L}) and BatchNorm2d ({N, C, H, W}), float32. With affine:
 * parameters weight (ones) and bias (zeros) {C}; with track_running_stats: buffers
 * running_mean (zeros), running_var (ones) {C} and num_batches_tracked (int64, 0-dim, 0),
 * counted up by every training forward. Training uses the batch statistics (and updates the
 * running ones); eval uses the running statistics, or the batch's without track_running_stats.
 * Attributes num_features (INT), eps, momentum (FLOAT; absent when cumulative), affine,
 * track_running_stats (BOOL). */
lc_status lc_nn_batch_norm1d(int64_t num_features, double eps, double momentum, bool affine,
                             bool track_running_stats, lc_module **out);
lc_status lc_nn_batch_norm2d(int64_t num_features, double eps, double momentum, bool affine,
                             bool track_running_stats, lc_module **out);
/* LayerNorm over trailing dims of sizes normalized_shape (nshape >= 1 entries, copied); with
 * elementwise_affine, weight (ones) and bias (zeros) of that shape. Attributes eps (FLOAT),
 * elementwise_affine (BOOL), normalized_ndim (INT). */
lc_status lc_nn_layer_norm(int nshape, const int64_t *normalized_shape, double eps,
                           bool elementwise_affine, lc_module **out);
/* GroupNorm: num_channels % num_groups == 0; affine: weight ones, bias zeros {num_channels}.
 * Input {N, C, *}. Attributes num_groups, num_channels (INT), eps (FLOAT), affine (BOOL). */
lc_status lc_nn_group_norm(int64_t num_groups, int64_t num_channels, double eps, bool affine,
                           lc_module **out);
/* InstanceNorm2d: input {N, C, H, W} or unbatched {C, H, W}. PyTorch's defaults are
 * affine = false, track_running_stats = false; with tracking, buffers as BatchNorm's and eval
 * uses them. */
lc_status lc_nn_instance_norm2d(int64_t num_features, double eps, double momentum, bool affine,
                                bool track_running_stats, lc_module **out);

#ifdef __cplusplus
}
#endif
#endif /* LUCID_NORM_H */
