/*
 * fused_helpers.h - kept only for activation.c, which still includes it by this name: the
 * helpers (need_float, dense, saved, same_shape, grad_shape_error, ...) live in kernel_util.h.
 * Delete this file once activation.c includes kernel_util.h.
 */
#ifndef LUCID_KERNELS_FUSED_HELPERS_H
#define LUCID_KERNELS_FUSED_HELPERS_H

#include "kernel_util.h"

#endif /* LUCID_KERNELS_FUSED_HELPERS_H */
