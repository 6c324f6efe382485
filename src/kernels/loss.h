/*
 * loss.h - private to the kernels and src/ops/loss.c: the loss ops (src/kernels/loss.c).
 */
#ifndef LUCID_KERNELS_LOSS_H
#define LUCID_KERNELS_LOSS_H

#include "lucid_loss.h"
#include "op.h"

/* Pointwise losses: one def per kind, indexed by lc_pw_kind. Inputs: input, target (same
 * shape and dtype), then weight if LC_LOSS_HAS_WEIGHT, then pos_weight if
 * LC_LOSS_HAS_POS_WEIGHT (each broadcasting to input). args: i[0] = lc_reduction, f[0] =
 * delta (huber) / beta (smooth_l1), flags LC_LOSS_*. */
typedef enum lc_pw_kind {
  LC_PW_MSE,
  LC_PW_L1,
  LC_PW_HUBER,
  LC_PW_SMOOTH_L1,
  LC_PW_BCE,
  LC_PW_BCE_LOGITS,
  LC_PW_KL_DIV,
  LC_PW_COUNT
} lc_pw_kind;

enum {
  LC_LOSS_HAS_WEIGHT = 1 << 8,
  LC_LOSS_HAS_POS_WEIGHT = 1 << 9,
  LC_LOSS_LOG_TARGET = 1 << 10, /* kl_div */
  LC_LOSS_HAS_IGNORE = 1 << 11, /* class losses: i[1] = ignore_index (0-based) */
};

extern const lc_op_def lc_op_pw_loss[LC_PW_COUNT];

/* Class losses. Inputs: input {N, C, d...} or {C}, target (class indices int64/int32, 0-based,
 * or probabilities of input's shape and dtype: cross_entropy only), then weight {C} if
 * LC_LOSS_HAS_WEIGHT. args: i[0] = lc_reduction, i[1] = ignore_index with
 * LC_LOSS_HAS_IGNORE, f[0] = label_smoothing. cross_entropy's out[1] is the float64 log-sum-exp
 * of each sample (saved for backward; callers drop it). */
extern const lc_op_def lc_op_cross_entropy;
extern const lc_op_def lc_op_nll_loss;

#endif /* LUCID_KERNELS_LOSS_H */
