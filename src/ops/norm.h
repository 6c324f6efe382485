/*
 * norm.h - layer norm's normalized_shape rule, shared by the entry point (src/ops/norm.c) and
 * the LayerNorm module kind (src/nn/norm.c). Layer 4 (ops); private.
 */
#ifndef LUCID_OPS_NORM_H
#define LUCID_OPS_NORM_H

#include "lucid_core.h"

/* normalized_shape holds 1..LC_MAX_DIMS sizes, each >= 1 (the failing entry marked). */
lc_status lc_norm_check_shape(const char *fn, int nshape, const int64_t *normalized_shape);

#endif /* LUCID_OPS_NORM_H */
