/*
 * activation.h - private interface of the activation family's kernels (src/kernels/activation.c)
 * shared with its public entry points (src/ops/activation.c).
 *
 * Every op here is one fused forward kernel with a one-pass backward next to it, for float32 and
 * float64. Outputs are fresh contiguous tensors.
 */
#ifndef LUCID_KERNELS_ACTIVATION_H
#define LUCID_KERNELS_ACTIVATION_H

#include "op.h"

/* Elementwise activations; op code = the enum value, parameters in args.f. */
typedef enum lc_act_code {
  LC_ACT_RELU6,      /* no parameter */
  LC_ACT_LEAKY_RELU, /* f[0] = negative_slope */
  LC_ACT_ELU,        /* f[0] = alpha */
  LC_ACT_GELU,       /* exact (erf) */
  LC_ACT_GELU_TANH,  /* tanh approximation */
  LC_ACT_SILU,
  LC_ACT_MISH,
  LC_ACT_SOFTPLUS, /* f[0] = beta (non-zero), f[1] = threshold */
  LC_ACT_HARDTANH, /* f[0] = min_val, f[1] = max_val (>= min_val) */
  LC_ACT_COUNT
} lc_act_code;

/* Each saves its input. */
extern const lc_op_def lc_op_act[LC_ACT_COUNT];

/* i[0] = dim (0-based, already wrapped; 0 for a 0-dim input). Save their output. */
extern const lc_op_def lc_op_softmax, lc_op_log_softmax;

/* Training-mode dropout: f[0] = p in [0, 1]; i[0] = RNG seed and i[1] = first counter (as from
 * lc_rng_reserve of ceil(numel / 2) counters; element k uses half k % 2 of counter i[1] + k / 2).
 * out[0] = the result, out[1] = the keep mask (bool, contiguous, saved for backward). */
extern const lc_op_def lc_op_dropout;

/* in = {weight {N, D}, index (int64/int32, any shape)}; i[0] = padding row (0-based, in
 * [0, N)) or -1; i[1] = index base (0 or 1). Saves the index. */
extern const lc_op_def lc_op_embedding;

/* in = {x1, x2, weight[, bias]} (3 or 4 inputs). Saves its inputs. */
extern const lc_op_def lc_op_bilinear;

#endif /* LUCID_KERNELS_ACTIVATION_H */
