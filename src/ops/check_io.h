/*
 * check_io.h - the NULL checks the family entry points share (src/ops/activation.c,
 * dropout.c, embedding.c, linear.c, shape.c). Layer 4 (ops); private.
 */
#ifndef LUCID_OPS_CHECK_IO_H
#define LUCID_OPS_CHECK_IO_H

#include "lucid_core.h"

static inline lc_status check_io(const char *fn, const lc_tensor *x, const char *xname, void *out) {
  if (!x) return lc_set_error(LC_EARG, "%s: %s is NULL", fn, xname);
  if (!out) return lc_set_error(LC_EARG, "%s: out is NULL", fn);
  return LC_OK;
}

#endif /* LUCID_OPS_CHECK_IO_H */
