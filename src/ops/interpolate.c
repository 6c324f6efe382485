/*
 * ops/interpolate.c - the public interpolation function (lucid_interpolate.h): argument checks
 * with messages naming the function, then lc_apply so autograd records it. The kernels and
 * backward function live in src/kernels/interpolate.c.
 */
#include "lucid_interpolate.h"

#include "../autograd/autograd.h"
#include "../kernels/interpolate.h"
#include "check_io.h"

#include <math.h>
#include <string.h>

_Static_assert((int)LC_INTERP_NEAREST == (int)LC_K_INTERP_NEAREST &&
                   (int)LC_INTERP_BILINEAR == (int)LC_K_INTERP_BILINEAR,
               "interpolation modes agree with the kernels'");

lc_status lc_interpolate(const lc_tensor *x, const lc_interpolate_opts *opts, lc_tensor **out) {
  const char *fn = "interpolate";
  if (!x || !opts || !out) return lc_set_error(LC_EARG, "%s: NULL argument", fn);
  lc_status st = check_input(fn, x, 0);
  if (st) return st;
  char b[128];
  if (opts->mode != LC_INTERP_NEAREST && opts->mode != LC_INTERP_BILINEAR)
    return lc_set_error(LC_EARG, "%s: unknown mode %d", fn, (int)opts->mode);
  bool bilinear = opts->mode == LC_INTERP_BILINEAR;
  if (bilinear ? x->ndim != 4 : (x->ndim != 3 && x->ndim != 4))
    return lc_set_error(LC_ESHAPE, "%s: mode %s expects a %s input, got input shape %s", fn,
                        bilinear ? "bilinear" : "nearest",
                        bilinear ? "4-D {N, C, H, W}" : "3-D {N, C, W} or 4-D {N, C, H, W}",
                        lc_shape_str(x->ndim, x->shape, b, sizeof b));
  if (opts->align_corners && !bilinear)
    return lc_set_error(
        LC_EARG, "%s: align_corners can only be set with the interpolating mode bilinear", fn);
  int nsp = x->ndim - 2;
  if ((opts->nsize > 0) == (opts->nscale > 0))
    return lc_set_error(LC_EARG, "%s: expected exactly one of size and scale_factor", fn);
  int given = opts->nsize > 0 ? opts->nsize : opts->nscale;
  const char *what = opts->nsize > 0 ? "size" : "scale_factor";
  if (given != 1 && given != nsp) {
    if (nsp == 1)
      return lc_set_error(LC_ESHAPE, "%s: expected %s with 1 entry for 1 spatial dim, got %d", fn,
                          what, given);
    return lc_set_error(LC_ESHAPE,
                        "%s: expected %s with 1 or %d entries for %d spatial dims, got %d", fn,
                        what, nsp, nsp, given);
  }
  lc_op_args args;
  memset(&args, 0, sizeof args);
  args.i[0] = opts->mode;
  args.i[1] = opts->align_corners;
  args.i[2] = nsp;
  args.ni = 3 + nsp;
  for (int k = 0; k < nsp; k++) {
    int64_t in = x->shape[2 + k], o;
    if (opts->nsize > 0) {
      o = opts->size[given == 1 ? 0 : k];
      if (o < 1)
        return lc_set_error(LC_EARG, "%s: output sizes must be >= 1, got %lld", fn, (long long)o);
    } else {
      double f = opts->scale_factor[given == 1 ? 0 : k];
      if (!(f > 0) || !isfinite(f))
        return lc_set_error(LC_EARG, "%s: scale_factor must be a positive number, got %g", fn, f);
      double od = floor((double)in * f);
      if (od > (double)(INT64_MAX / 16)) /* the cast below would be undefined */
        return lc_set_error(LC_EARG,
                            "%s: scale_factor %g gives an output size past 2^59 - 1 for a dim of "
                            "size %lld",
                            fn, f, (long long)in);
      o = (int64_t)od;
      if (o < 1 && in > 0)
        return lc_set_error(LC_EARG,
                            "%s: scale_factor %g gives an empty output for a dim of size %lld", fn,
                            f, (long long)in);
      args.f[k] = f;
    }
    args.i[3 + k] = o;
  }
  lc_tensor *in[1] = {(lc_tensor *)x};
  return lc_apply(&lc_op_interpolate, 1, in, &args, out);
}
