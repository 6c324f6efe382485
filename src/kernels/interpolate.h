/*
 * interpolate.h - private interface of the interpolation kernels (src/kernels/interpolate.c),
 * shared with the public entry point in src/ops/interpolate.c.
 */
#ifndef LUCID_KERNELS_INTERPOLATE_H
#define LUCID_KERNELS_INTERPOLATE_H

#include "op.h"

/* Interpolation of x {B..., spatial...}: i[0] = lc_interp_mode, i[1] = align_corners, i[2] =
 * number of spatial dims (1 or 2), i[3..] = output sizes; f[0..1] = scale factors given by the
 * caller per spatial dim (0: none, the scale is in / out). */
extern const lc_op_def lc_op_interpolate;
/* i[0] values: lucid_interpolate.h's LC_INTERP_NEAREST / LC_INTERP_BILINEAR (checked in src/ops) */
enum { LC_K_INTERP_NEAREST = 0, LC_K_INTERP_BILINEAR = 1 };

#endif /* LUCID_KERNELS_INTERPOLATE_H */
