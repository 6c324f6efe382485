/*
 * loss.h - the pointwise losses by op code, for the layers above that work from the list
 * (src/kernels/loss_list.h) rather than by name: the binding (src/lua/nn_loss.c). Layer 4
 * (ops). The named entry points are in include/lucid_loss.h.
 */
#ifndef LUCID_OPS_LOSS_H
#define LUCID_OPS_LOSS_H

#include "../kernels/loss.h"
#include "lucid_loss.h" /* lc_class_loss_opts */

/* Pointwise loss `kind` (an lc_pw_kind) with its optional weights (NULL when absent or when
 * the row takes none) and its parameter p (0 for a row without one; a FLAG as 1 or 0),
 * recorded by autograd: the same as calling lc_<name>. */
lc_status lc_pw_loss_apply(int kind, const lc_tensor *input, const lc_tensor *target,
                           const lc_tensor *weight, const lc_tensor *pos_weight,
                           lc_reduction reduction, double p, lc_tensor **out);

/* The option rules of a loss, for callers that check options before any tensor exists (the
 * Lua loss classes at construction, through the binding): the reduction (the kernels' rule,
 * src/kernels/loss.h) and a pointwise row's scalar parameter p (delta > 0, beta >= 0, both
 * finite; fn NULL: the row's name) or a class loss's label_smoothing. LC_OK, or LC_EARG with
 * "<fn>: <option> must be ..., got ...". The one owner of the parameter rule: lc_pw_loss_apply
 * checks it. */
lc_status lc_pw_loss_check_options(int kind, const char *fn, lc_reduction reduction, double p);
lc_status lc_class_loss_check_options(const char *fn, bool nll, const lc_class_loss_opts *o);

#endif /* LUCID_OPS_LOSS_H */
