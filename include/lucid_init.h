/*
 * lucid_init.h - parameter initialisation (PyTorch's torch.nn.init) and gradient utilities
 * (torch.nn.utils: gradient clipping, parameters <-> one vector).
 *
 * Conventions are lucid.h's (0-based, lc_status results, messages in lc_last_error(), borrowed
 * arguments). The lc_init_* functions write into t in place with grad mode off (so they work on
 * parameters, i.e. leaves that require grad), bump t's version, and leave t untouched on
 * failure. The random ones draw from lucid's one generator (lc_manual_seed): the values differ
 * from PyTorch's, the distributions are the same. They need a float32/float64 tensor;
 * constant_/zeros_/ones_/eye_ take any dtype.
 */
#ifndef LUCID_INIT_H
#define LUCID_INIT_H

#include "lucid_core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- nn.init */

typedef enum lc_fan_mode { LC_FAN_IN = 0, LC_FAN_OUT } lc_fan_mode;

/* PyTorch's recommended gain for a nonlinearity: "linear", "conv1d", "conv2d", "conv3d",
 * "conv_transpose1d/2d/3d", "sigmoid" -> 1; "tanh" -> 5/3; "relu" -> sqrt(2); "leaky_relu" ->
 * sqrt(2 / (1 + slope^2)) with slope = param when has_param, else 0.01; "selu" -> 3/4.
 * LC_EARG for an unknown name or a non-finite slope. */
lc_status lc_init_calculate_gain(const char *nonlinearity, bool has_param, double param,
                                 double *out);
/* fan_in = size(1) * receptive field, fan_out = size(0) * receptive field, the receptive field
 * being the product of the sizes after dim 1 (conv weights {out, in, k...}). LC_ESHAPE for
 * fewer than 2 dims. */
lc_status lc_init_calculate_fan(const lc_tensor *t, int64_t *fan_in, int64_t *fan_out);

lc_status lc_init_uniform_(lc_tensor *t, double a, double b);     /* U(a, b) */
lc_status lc_init_normal_(lc_tensor *t, double mean, double std); /* N(mean, std^2) */
lc_status lc_init_constant_(lc_tensor *t, double value);
lc_status lc_init_zeros_(lc_tensor *t);
lc_status lc_init_ones_(lc_tensor *t);
/* The identity matrix (2-D tensors only; rectangular allowed). */
lc_status lc_init_eye_(lc_tensor *t);
/* U(-b, b) with b = gain sqrt(6 / (fan_in + fan_out)); N(0, std^2) with
 * std = gain sqrt(2 / (fan_in + fan_out)). At least 2 dims. */
lc_status lc_init_xavier_uniform_(lc_tensor *t, double gain);
lc_status lc_init_xavier_normal_(lc_tensor *t, double gain);
/* std = gain / sqrt(fan) with gain = calculate_gain(nonlinearity, a) and fan chosen by mode;
 * uniform: U(-sqrt(3) std, sqrt(3) std). PyTorch's defaults: a = 0, LC_FAN_IN, "leaky_relu".
 * A tensor with a zero-sized dim is left as is (PyTorch warns and returns). */
lc_status lc_init_kaiming_uniform_(lc_tensor *t, double a, lc_fan_mode mode,
                                   const char *nonlinearity);
lc_status lc_init_kaiming_normal_(lc_tensor *t, double a, lc_fan_mode mode,
                                  const char *nonlinearity);
/* A (semi-)orthogonal matrix times gain: t viewed as {size(0), numel / size(0)}; rows are
 * orthonormal when rows <= cols, else columns are. Householder QR of a N(0, 1) matrix in
 * float64, with Q's columns multiplied by the signs of R's diagonal as PyTorch does, so Q is
 * Haar-distributed. At least 2 dims. */
lc_status lc_init_orthogonal_(lc_tensor *t, double gain);

/* ---------------------------------------------------------------- nn.utils
 * params: n borrowed tensors; a parameter without a gradient (lc_grad() == NULL) is skipped.
 * Gradients are changed in place (versions bumped), with grad mode off. */

/* Scales all gradients by clip = min(1, max_norm / (total + 1e-6)), where total is the
 * norm_type-norm of all gradients together (norm_type > 0, or INFINITY for the max-abs norm);
 * writes total (0 when no parameter has a gradient). With error_if_nonfinite, a nan/inf total
 * is an LC_EARG error and nothing is changed. */
lc_status lc_clip_grad_norm_(int n, lc_tensor *const *params, double max_norm, double norm_type,
                             bool error_if_nonfinite, double *total_norm);
/* Clamps every gradient element into [-clip_value, clip_value] (clip_value >= 0). */
lc_status lc_clip_grad_value_(int n, lc_tensor *const *params, double clip_value);
/* All parameters flattened and concatenated into one 1-D tensor (through lc_cat, so it is
 * differentiable like PyTorch's). n >= 1; all of one dtype. */
lc_status lc_parameters_to_vector(int n, lc_tensor *const *params, lc_tensor **out);
/* Copies consecutive slices of the 1-D vec into the parameters (grad mode off, versions
 * bumped). vec's size must equal the parameters' total size (LC_ESHAPE otherwise). */
lc_status lc_vector_to_parameters(const lc_tensor *vec, int n, lc_tensor *const *params);

#ifdef __cplusplus
}
#endif
#endif /* LUCID_INIT_H */
