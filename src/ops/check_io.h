/*
 * check_io.h - the NULL and input checks the family entry points share (src/ops/activation.c,
 * dropout.c, embedding.c, interpolate.c, linear.c, norm.c). Layer 4 (ops); private.
 */
#ifndef LUCID_OPS_CHECK_IO_H
#define LUCID_OPS_CHECK_IO_H

#include "../core/core.h"           /* check_input reads the tensor fields */
#include "../kernels/kernel_util.h" /* the float rule */

static inline lc_status check_io(const char *fn, const lc_tensor *x, const char *xname, void *out) {
  if (!x) return lc_set_error(LC_EARG, "%s: %s is NULL", fn, xname);
  if (!out) return lc_set_error(LC_EARG, "%s: out is NULL", fn);
  return LC_OK;
}

/* A float32 or float64 input with at least min_ndim dims (norm.c, interpolate.c). */
static inline lc_status check_input(const char *fn, const lc_tensor *x, int min_ndim) {
  if (need_float_dtype(fn, "input", x->dtype)) return LC_EDTYPE;
  if (x->ndim < min_ndim) {
    char b[128];
    return lc_set_error(LC_ESHAPE,
                        "%s: expected an input with at least %d dims, got input shape %s", fn,
                        min_ndim, lc_shape_str(x->ndim, x->shape, b, sizeof b));
  }
  return LC_OK;
}

#endif /* LUCID_OPS_CHECK_IO_H */
