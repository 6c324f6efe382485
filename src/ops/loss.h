/*
 * loss.h - the pointwise losses by op code, for the layers above that work from the list
 * (src/kernels/loss_list.h) rather than by name: the binding (src/lua/nn_loss.c). Layer 4
 * (ops). The named entry points are in include/lucid_loss.h.
 */
#ifndef LUCID_OPS_LOSS_H
#define LUCID_OPS_LOSS_H

#include "../kernels/loss.h"

/* Pointwise loss `kind` (an lc_pw_kind) with its optional weights (NULL when absent or when
 * the row takes none) and its parameter p (0 for a row without one; a FLAG as 1 or 0),
 * recorded by autograd: the same as calling lc_<name>. */
lc_status lc_pw_loss_apply(int kind, const lc_tensor *input, const lc_tensor *target,
                           const lc_tensor *weight, const lc_tensor *pos_weight,
                           lc_reduction reduction, double p, lc_tensor **out);

/* The row's rule for its scalar parameter p (delta > 0, beta >= 0, both finite): LC_OK, or
 * LC_EARG with "<fn>: <param> must be <rule>, got <p>" (fn NULL: the row's name). The one
 * owner of that rule: lc_pw_loss_apply checks it, and the Lua loss classes call it at
 * construction through the binding. */
lc_status lc_pw_loss_check_param(int kind, const char *fn, double p);

#endif /* LUCID_OPS_LOSS_H */
