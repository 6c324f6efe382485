/*
 * embedding.h - private interface of the embedding kernel (src/kernels/embedding.c) shared with
 * its entry points (src/ops/embedding.c). Layer 2 of 8 (kernels).
 */
#ifndef LUCID_KERNELS_EMBEDDING_H
#define LUCID_KERNELS_EMBEDDING_H

#include "op.h"

/* in = {weight {N, D}, index (int64/int32, any shape)}; i[0] = padding row (0-based, in
 * [0, N)) or -1; i[1] = index base (0 or 1). Saves the index. */
extern const lc_op_def lc_op_embedding;

#endif /* LUCID_KERNELS_EMBEDDING_H */
