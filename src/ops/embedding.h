/*
 * embedding.h - the embedding family's rules shared by its entry points (src/ops/embedding.c)
 * and its module kind (src/nn/embedding.c). Layer 4 (ops).
 */
#ifndef LUCID_OPS_EMBEDDING_H
#define LUCID_OPS_EMBEDDING_H

#include "lucid_embedding.h"

/* padding_idx (0-based, negative from the end, or LC_NO_PADDING) for n rows -> *row in [0, n),
 * or -1 for none; out of range is LC_EINDEX with a message starting with fn (positions marked). */
lc_status lc_embedding_padding_row(const char *fn, int64_t padding_idx, int64_t n, int64_t *row);

#endif /* LUCID_OPS_EMBEDDING_H */
