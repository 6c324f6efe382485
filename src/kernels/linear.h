/* linear.h - the linear family's ops (linear.c): the fused linear op and bilinear. */
#ifndef LUCID_KERNELS_LINEAR_H
#define LUCID_KERNELS_LINEAR_H

#include "op.h"

/* in = {x, W} or {x, W, b}, y = x W^T + b. */
extern const lc_op_def lc_op_linear;

/* Shape and dtype checks of linear's inputs (b may be NULL), with the message set. */
lc_status lc_k_linear_check(const lc_tensor *x, const lc_tensor *w, const lc_tensor *b);

/* in = {x1, x2, weight[, bias]} (3 or 4 inputs). Saves its inputs. */
extern const lc_op_def lc_op_bilinear;

#endif /* LUCID_KERNELS_LINEAR_H */
