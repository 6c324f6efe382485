/*
 * activation.h - the elementwise activations by op code, for the layers above that work from
 * the list (src/kernels/activation_list.h) rather than by name: the module kinds (src/nn) and
 * the binding (src/lua). Layer 4 (ops). The named entry points are in include/lucid_activation.h.
 */
#ifndef LUCID_OPS_ACTIVATION_H
#define LUCID_OPS_ACTIVATION_H

#include "../kernels/activation.h"

/* Activation `code` (an lc_act_code) of x with its parameters p[0..nparams-1] (a CHOICE as its
 * position), recorded by autograd: the same as calling lc_<name>. */
lc_status lc_act_apply(int code, const lc_tensor *x, const double *p, lc_tensor **out);

#endif /* LUCID_OPS_ACTIVATION_H */
