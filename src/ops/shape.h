/*
 * shape.h - the unflatten rules for the layers above that name its sizes otherwise: nn.Unflatten
 * (src/nn/layers.c) checks its sizes when built and runs lc_unflatten_as at forward. Layer 4
 * (ops); private. The public view functions are in include/lucid_core.h.
 */
#ifndef LUCID_OPS_SHAPE_H
#define LUCID_OPS_SHAPE_H

#include "lucid_core.h"

/* Unflatten's rules on its sizes (1..LC_MAX_DIMS entries, each >= 0 or -1, at most one -1),
 * shared by lc_unflatten and nn.Unflatten's constructor; `what` names the sizes ("sizes",
 * "unflattened_size"), positions marked. */
lc_status lc_unflatten_check_sizes(const char *fn, const char *what, int nsizes,
                                   const int64_t *sizes);

/* lc_unflatten with its messages naming the sizes `what` (lc_unflatten's is "sizes"). */
lc_status lc_unflatten_as(const char *what, const lc_tensor *x, int dim, int nsizes,
                          const int64_t *sizes, lc_tensor **out);

#endif /* LUCID_OPS_SHAPE_H */
