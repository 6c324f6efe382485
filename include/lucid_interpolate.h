/*
 * lucid_interpolate.h - interpolation (resampling of the spatial dims: nearest, bilinear), as a
 * tensor function with autograd and as the Upsample module kind.
 *
 * Conventions are lucid.h's: every fallible function returns an lc_status with a message in
 * lc_last_error(), the result is written to the last argument (owned by the caller), tensor
 * arguments are borrowed. Float32 and float64 inputs; gradients flow to the input.
 *
 * Layouts: an input {N, C, *} has its spatial dims after the channels (dim 1).
 */
#ifndef LUCID_INTERPOLATE_H
#define LUCID_INTERPOLATE_H

#include "lucid_core.h"
#include "lucid_nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- interpolate */

typedef enum lc_interp_mode { LC_INTERP_NEAREST = 0, LC_INTERP_BILINEAR } lc_interp_mode;

typedef struct lc_interpolate_opts {
  lc_interp_mode mode;
  /* exactly one of: an output size per spatial dim (nsize = ndim - 2, or 1: used for every
   * spatial dim) or a scale factor (nscale likewise; output size floor(in * factor)) */
  int nsize;
  int64_t size[2];
  int nscale;
  double scale_factor[2];
  bool align_corners; /* bilinear only (true with nearest is an LC_EARG error) */
} lc_interpolate_opts;

/* Resamples the spatial dims of x: {N, C, W} (nearest) or {N, C, H, W} (nearest, bilinear).
 * Index rules are PyTorch's ("nearest": src = min(floor(dst * scale), in - 1); "bilinear" with
 * half-pixel centres unless align_corners), scale being 1 / scale_factor when a factor is given,
 * else in / out. */
lc_status lc_interpolate(const lc_tensor *x, const lc_interpolate_opts *opts, lc_tensor **out);

/* ---------------------------------------------------------------- module kind */

extern const lc_module_kind lc_kind_upsample;

/* Upsample: lc_interpolate with fixed options (copied). */
lc_status lc_nn_upsample(const lc_interpolate_opts *opts, lc_module **out);

#ifdef __cplusplus
}
#endif
#endif /* LUCID_INTERPOLATE_H */
