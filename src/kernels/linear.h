/* linear.h - the fused linear op (linear.c): in = {x, W} or {x, W, b}, y = x W^T + b. */
#ifndef LUCID_KERNELS_LINEAR_H
#define LUCID_KERNELS_LINEAR_H

#include "op.h"

extern const lc_op_def lc_op_linear;

/* Shape and dtype checks of linear's inputs (b may be NULL), with the message set. */
lc_status lc_k_linear_check(const lc_tensor *x, const lc_tensor *w, const lc_tensor *b);

#endif /* LUCID_KERNELS_LINEAR_H */
