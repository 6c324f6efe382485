/*
 * misc_ops.h - private to src/kernels and src/ops: the miscellaneous tensor ops of
 * src/kernels/misc_ops.c (clamp with tensor bounds, unique, searchsorted, isclose).
 * Layer 2 (kernels).
 */
#ifndef LUCID_KERNELS_MISC_OPS_H
#define LUCID_KERNELS_MISC_OPS_H

#include "op.h"

/* clamp with tensor bounds: in = {x, [lo], [hi]} as LC_ARG_HAS_LO / LC_ARG_HAS_HI say.
 * minimum(maximum(x, lo), hi) (NaN in any operand gives NaN, as torch.clamp); gradients as
 * PyTorch 1.13's clamp_backward / clamp_backward_min_max, summed to each operand's shape. */
extern const lc_op_def lc_op_clamp_tensor;

/* Groups the rows of x (contiguous, `rows` rows of `len` elements) into equal runs: sorted
 * (lexicographic, NaN after everything and never equal) unless consecutive. Writes the count of
 * groups to *n_groups, for each group its first row in first (caller-sized: rows entries),
 * its size in counts (rows entries) and for each row its group in inverse (rows entries). */
lc_status lc_k_unique_rows(const lc_tensor *x, int64_t rows, int64_t len, bool consecutive,
                           int64_t *n_groups, int64_t *first, int64_t *counts, int64_t *inverse);

/* For each value, its insertion position (0-based, in [0, n]) into the matching row of seq
 * (the last dim; one row when seq is 1-D). seq and values have one dtype; sorter (int64, seq's
 * shape, checked in range) reads the rows through it. out is int64 or int32, values' shape. */
lc_status lc_k_searchsorted(const lc_tensor *seq, const lc_tensor *values, const lc_tensor *sorter,
                            bool right, lc_tensor *out);

/* |a - b| <= atol + rtol * |b| elementwise into the bool tensor out (the broadcast shape). */
lc_status lc_k_isclose(const lc_tensor *a, const lc_tensor *b, double rtol, double atol,
                       bool equal_nan, lc_tensor *out);

#endif /* LUCID_KERNELS_MISC_OPS_H */
