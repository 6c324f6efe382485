/*
 * dropout.h - private interface of the dropout kernel (src/kernels/dropout.c) shared with its
 * entry point (src/ops/dropout.c). Layer 2 of 8 (kernels).
 */
#ifndef LUCID_KERNELS_DROPOUT_H
#define LUCID_KERNELS_DROPOUT_H

#include "op.h"

/* Training-mode dropout: f[0] = p in [0, 1]; i[0] = RNG seed and i[1] = first counter (as from
 * lc_rng_reserve of ceil(numel / 2) counters; element k uses half k % 2 of counter i[1] + k / 2).
 * out[0] = the result, out[1] = the keep mask (bool, contiguous, saved for backward). */
extern const lc_op_def lc_op_dropout;

#endif /* LUCID_KERNELS_DROPOUT_H */
