/* nn/interpolate.c - the module kind of the interpolate family: Upsample
 * (lucid_interpolate.h), lc_interpolate (src/ops/interpolate.c) with options fixed at
 * construction. Forward messages carry no function name (lc_module_forward adds the path). */
#include "lucid_interpolate.h"

#include "kind_helpers.h"

static lc_status up_forward(lc_module *m, const lc_tensor *x, lc_tensor **out) {
  const lc_interpolate_opts *o = lc_module_state(m);
  lc_status st = lc_interpolate(x, o, out);
  return st ? strip_fn(st, "interpolate") : LC_OK;
}

static lc_status up_extra(const lc_module *m, char **out) {
  const lc_interpolate_opts *o = lc_module_state(m);
  char buf[256], a[40], b[40];
  int n;
  if (o->nsize > 0) {
    if (o->nsize == 1)
      n = snprintf(buf, sizeof buf, "size=%lld", (long long)o->size[0]);
    else
      n = snprintf(buf, sizeof buf, "size=(%lld, %lld)", (long long)o->size[0],
                   (long long)o->size[1]);
  } else {
    if (o->nscale == 1)
      n = snprintf(buf, sizeof buf, "scale_factor=%s",
                   num_str(o->scale_factor[0], true, a, sizeof a));
    else
      n = snprintf(buf, sizeof buf, "scale_factor=(%s, %s)",
                   num_str(o->scale_factor[0], true, a, sizeof a),
                   num_str(o->scale_factor[1], true, b, sizeof b));
  }
  snprintf(buf + n, sizeof buf - (size_t)n, ", mode='%s'",
           o->mode == LC_INTERP_BILINEAR ? "bilinear" : "nearest");
  *out = lc_nn_strdup(buf);
  return *out ? LC_OK : nn_oom();
}

static bool up_attr(const lc_module *m, const char *name, lc_attr *out) {
  const lc_interpolate_opts *o = lc_module_state(m);
  if (!strcmp(name, "align_corners"))
    *out = (lc_attr){.type = LC_ATTR_BOOL, .b = o->align_corners};
  else
    return false;
  return true;
}

const lc_module_kind lc_kind_upsample = {.name = "Upsample",
                                         .forward = up_forward,
                                         .extra_repr = up_extra,
                                         .attr = up_attr,
                                         .destroy = free_state};

lc_status lc_nn_upsample(const lc_interpolate_opts *opts, lc_module **out) {
  if (!opts || !out) return lc_set_error(LC_EARG, "Upsample: NULL argument");
  if (opts->mode != LC_INTERP_NEAREST && opts->mode != LC_INTERP_BILINEAR)
    return lc_set_error(LC_EARG, "Upsample: unknown mode %d", (int)opts->mode);
  if ((opts->nsize > 0) == (opts->nscale > 0) || opts->nsize > 2 || opts->nscale > 2)
    return lc_set_error(LC_EARG, "Upsample: expected exactly one of size and scale_factor (1 or 2 "
                                 "entries)");
  for (int k = 0; k < opts->nsize; k++)
    if (opts->size[k] < 1)
      return lc_set_error(LC_EARG, "Upsample: sizes must be >= 1, got %lld",
                          (long long)opts->size[k]);
  for (int k = 0; k < opts->nscale; k++)
    if (!(opts->scale_factor[k] > 0) || !isfinite(opts->scale_factor[k]))
      return lc_set_error(LC_EARG, "Upsample: scale_factor must be a positive number, got %g",
                          opts->scale_factor[k]);
  if (opts->align_corners && opts->mode != LC_INTERP_BILINEAR)
    return lc_set_error(LC_EARG,
                        "Upsample: align_corners can only be set with the interpolating mode "
                        "bilinear");
  lc_interpolate_opts *s = malloc(sizeof *s);
  if (!s) return nn_oom();
  *s = *opts;
  return lc_module_new(&lc_kind_upsample, s, NULL, out);
}
