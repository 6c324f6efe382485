/*
 * norm.h - private interface of the normalization kernels (src/kernels/norm.c), shared with the
 * public entry points in src/ops/norm.c.
 */
#ifndef LUCID_KERNELS_NORM_H
#define LUCID_KERNELS_NORM_H

#include "op.h"

/* Private lc_op_args.flags bits of these ops (above the shared LC_ARG_* bits). */
enum {
  LC_NORM_W = 1 << 8,      /* a weight input follows x */
  LC_NORM_B = 1 << 9,      /* a bias input follows (x, [weight]) */
  LC_NORM_TRAIN = 1 << 10, /* batch norm: normalise with the batch statistics */
  LC_NORM_RS = 1 << 11,    /* batch norm: running mean and var inputs follow (eval) */
};

/* Batch norm over x {N, C, *}. Inputs: x, [weight {C}], [bias {C}], [running_mean {C},
 * running_var {C}] as the flags say; f[0] = eps. Outputs: y (x's shape and dtype) and the
 * statistics used, {2, C} float64: row 0 the mean, row 1 the biased variance (the batch's when
 * LC_NORM_TRAIN, else copied from the running ones). Only y is differentiable. The _relu def
 * applies max(0, .) in the same pass and masks the gradient by y > 0. */
extern const lc_op_def lc_op_batch_norm, lc_op_batch_norm_relu;

/* Row normalisation: x (contiguous or not) seen as R rows of D = i[1] * i[2] elements; row r
 * belongs to group r % i[0]; element j of row r uses weight / bias entry
 * (r % i[0]) * i[1] + j / i[2]. Layer norm: i = {1, D, 1}; group norm: {G, C / G, spatial};
 * instance norm: {C, 1, spatial}. Inputs x, [weight], [bias] as the flags say; f[0] = eps.
 * Outputs y and {2, R} float64 statistics (mean, biased variance) per row. */
extern const lc_op_def lc_op_layer_norm, lc_op_group_norm, lc_op_instance_norm;

#endif /* LUCID_KERNELS_NORM_H */
