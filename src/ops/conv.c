/*
 * conv.c - public entry points of the conv family (include/lucid_conv.h): padding,
 * convolution, pooling. Option checks name the function and the option; the op forwards
 * (src/kernels/conv.c, pool.c, pad.c) check shapes; everything records through lc_apply.
 * padding = "same" with an odd total and non-zero padding modes run lc_pad before the conv
 * (so their gradient flows through PadBackward).
 */
#include "../autograd/autograd.h"
#include "../kernels/conv.h"

#include <string.h>

void lc_conv_opts_init(lc_conv_opts *o) {
  memset(o, 0, sizeof *o);
  o->stride[0] = o->stride[1] = 1;
  o->dilation[0] = o->dilation[1] = 1;
  o->groups = 1;
  o->padding_mode = LC_PAD_CONSTANT;
}

void lc_pool_opts_init(lc_pool_opts *o, int64_t kh, int64_t kw) {
  memset(o, 0, sizeof *o);
  o->kernel_size[0] = kh, o->kernel_size[1] = kw;
  o->stride[0] = kh, o->stride[1] = kw;
  o->dilation[0] = o->dilation[1] = 1;
  o->count_include_pad = true;
}

/* ---------------------------------------------------------------- pad */

lc_status lc_pad(const lc_tensor *x, int npad, const int64_t *pad, lc_pad_mode mode, double value,
                 lc_tensor **out) {
  if (!x || !out || (npad > 0 && !pad))
    return lc_set_error(LC_EARG, "pad: NULL argument");
  if (npad < 0 || npad > LC_MAX_DIMS)
    return lc_set_error(LC_EARG, "pad: expected 0..%d pad entries, got %d", LC_MAX_DIMS, npad);
  if ((unsigned)mode >= LC_PAD_MODE_COUNT)
    return lc_set_error(LC_EARG, "pad: unknown mode %d", (int)mode);
  if (mode != LC_PAD_CONSTANT && value != 0)
    return lc_set_error(LC_EARG, "pad: padding mode \"%s\" doesn't take a value, got value %g",
                        lc_pad_mode_name(mode), value);
  lc_op_args a;
  memset(&a, 0, sizeof a);
  for (int k = 0; k < npad; k++)
    a.i[k] = pad[k];
  a.ni = npad;
  a.flags = (int)mode << LC_PAD_MODE_SHIFT;
  a.f[0] = value;
  lc_tensor *in[1] = {(lc_tensor *)x};
  return lc_apply(&lc_op_pad, 1, in, &a, out);
}

/* ---------------------------------------------------------------- convolution */

static lc_status conv_common(const char *fn, int sd, bool transposed, const lc_tensor *x,
                             const lc_tensor *w, const lc_tensor *b, const lc_conv_opts *opts,
                             lc_tensor **out) {
  if (!x || !w || !out) return lc_set_error(LC_EARG, "%s: NULL argument", fn);
  lc_conv_opts o;
  if (opts)
    o = *opts;
  else
    lc_conv_opts_init(&o);
  lc_status st = lc_conv_check_opts(fn, sd, transposed, &o);
  if (st) return st;
  if (w->ndim != sd + 2) {
    char s[256];
    return lc_set_error(LC_ESHAPE, "%s: expected a %d-D weight, got shape %s", fn, sd + 2,
                        lc_shape_str(w->ndim, w->shape, s, sizeof s));
  }
  /* explicit padding before/after per spatial dim (k = 0 is height for 2-d) */
  int64_t before[2] = {0, 0}, after[2] = {0, 0};
  bool asym = false;
  for (int k = 0; k < sd; k++) {
    if (o.same) {
      int64_t total = o.dilation[k] * (w->shape[2 + k] - 1);
      before[k] = total / 2, after[k] = total - total / 2;
      asym |= before[k] != after[k];
    } else {
      before[k] = after[k] = o.padding[k];
    }
  }
  lc_op_args a;
  memset(&a, 0, sizeof a);
  a.ni = LC_CONV_NARGS;
  a.i[LC_CONV_SH] = o.stride[0], a.i[LC_CONV_SW] = sd == 2 ? o.stride[1] : 1;
  a.i[LC_CONV_DH] = o.dilation[0], a.i[LC_CONV_DW] = sd == 2 ? o.dilation[1] : 1;
  a.i[LC_CONV_G] = o.groups;
  if (transposed) {
    a.flags |= LC_CONV_TRANSPOSED;
    a.i[LC_CONV_OPH] = o.output_padding[0];
    a.i[LC_CONV_OPW] = sd == 2 ? o.output_padding[1] : 0;
  }
  lc_tensor *xp = NULL;
  bool any_pad = before[0] || after[0] || before[1] || after[1];
  if (any_pad && (asym || o.padding_mode != LC_PAD_CONSTANT)) {
    /* pad explicitly (pad list: last dim first), then convolve without padding */
    if (x->ndim < sd + 1) {
      char s[256];
      return lc_set_error(LC_ESHAPE, "%s: expected a %d-D or %d-D input, got shape %s", fn, sd + 1,
                          sd + 2, lc_shape_str(x->ndim, x->shape, s, sizeof s));
    }
    int64_t pl[4];
    for (int k = 0; k < sd; k++) {
      pl[2 * k] = before[sd - 1 - k];
      pl[2 * k + 1] = after[sd - 1 - k];
    }
    if ((st = lc_pad(x, 2 * sd, pl, o.padding_mode, 0.0, &xp))) {
      char msg[512];
      strncpy(msg, lc_last_error_marked(), sizeof msg - 1);
      msg[sizeof msg - 1] = 0;
      return lc_set_error(st, "%s: %s", fn, msg);
    }
  } else {
    a.i[LC_CONV_PH] = before[0], a.i[LC_CONV_PW] = sd == 2 ? before[1] : 0;
  }
  lc_tensor *in[3] = {xp ? xp : (lc_tensor *)x, (lc_tensor *)w, (lc_tensor *)b};
  st = lc_apply(&lc_op_conv, b ? 3 : 2, in, &a, out);
  if (st) {
    /* name the public function rather than the op */
    char msg[512];
    const char *m = lc_last_error_marked();
    if (!strncmp(m, "conv_transpose: ", 16))
      m += 16;
    else if (!strncmp(m, "conv: ", 6))
      m += 6;
    strncpy(msg, m, sizeof msg - 1);
    msg[sizeof msg - 1] = 0;
    lc_set_error(st, "%s: %s", fn, msg);
  }
  lc_release(xp);
  return st;
}

lc_status lc_conv1d(const lc_tensor *x, const lc_tensor *w, const lc_tensor *b,
                    const lc_conv_opts *opts, lc_tensor **out) {
  return conv_common("conv1d", 1, false, x, w, b, opts, out);
}

lc_status lc_conv2d(const lc_tensor *x, const lc_tensor *w, const lc_tensor *b,
                    const lc_conv_opts *opts, lc_tensor **out) {
  return conv_common("conv2d", 2, false, x, w, b, opts, out);
}

lc_status lc_conv_transpose2d(const lc_tensor *x, const lc_tensor *w, const lc_tensor *b,
                              const lc_conv_opts *opts, lc_tensor **out) {
  return conv_common("conv_transpose2d", 2, true, x, w, b, opts, out);
}

/* ---------------------------------------------------------------- pooling */

/* Entry k (0 = height for 2-d) of a pair into the args slot pair (h, w): 1-d uses the w slot. */
static void put(lc_op_args *a, int sd, int slot_h, const int64_t *v) {
  if (sd == 2) {
    a->i[slot_h] = v[0];
    a->i[slot_h + 1] = v[1];
  } else {
    a->i[slot_h] = 1;
    a->i[slot_h + 1] = v[0];
  }
}

static lc_status pool_common(const lc_op_def *op, const char *fn, int sd, const lc_tensor *x,
                             const lc_pool_opts *o, const int64_t *osize, lc_tensor **out,
                             lc_tensor **indices) {
  if (!x || !out) return lc_set_error(LC_EARG, "%s: NULL argument", fn);
  lc_op_args a;
  memset(&a, 0, sizeof a);
  a.ni = LC_POOL_NARGS;
  a.i[LC_POOL_SD] = sd;
  lc_status st;
  if (o) {
    /* the window's rules are the kernel's (lc_pool_check_window) */
    int64_t ones[2] = {1, 1};
    put(&a, sd, LC_POOL_KH, o->kernel_size);
    put(&a, sd, LC_POOL_SH, o->stride);
    put(&a, sd, LC_POOL_PH, o->padding);
    put(&a, sd, LC_POOL_DH, op == &lc_op_max_pool ? o->dilation : ones);
    if (o->ceil_mode) a.flags |= LC_POOL_CEIL;
    if (o->count_include_pad) a.flags |= LC_POOL_COUNT_PAD;
  } else {
    if (x->ndim < sd + 1) {
      char s[256];
      return lc_set_error(LC_ESHAPE, "%s: expected an input with at least %d dims, got shape %s",
                          fn, sd + 1, lc_shape_str(x->ndim, x->shape, s, sizeof s));
    }
    if ((st = lc_pool_check_output_size(fn, sd, osize))) return st;
    int64_t os[2];
    for (int k = 0; k < sd; k++)
      os[k] = osize[k] == -1 ? x->shape[x->ndim - sd + k] : osize[k];
    put(&a, sd, LC_POOL_OH, os);
  }
  lc_tensor *in[1] = {(lc_tensor *)x}, *res[2] = {NULL, NULL};
  if ((st = lc_apply(op, 1, in, &a, res))) return st;
  *out = res[0];
  if (indices)
    *indices = res[1];
  else
    lc_release(res[1]);
  return LC_OK;
}

lc_status lc_max_pool1d(const lc_tensor *x, const lc_pool_opts *o, lc_tensor **out,
                        lc_tensor **indices) {
  if (!o) return lc_set_error(LC_EARG, "max_pool1d: NULL options");
  return pool_common(&lc_op_max_pool, "max_pool1d", 1, x, o, NULL, out, indices);
}
lc_status lc_max_pool2d(const lc_tensor *x, const lc_pool_opts *o, lc_tensor **out,
                        lc_tensor **indices) {
  if (!o) return lc_set_error(LC_EARG, "max_pool2d: NULL options");
  return pool_common(&lc_op_max_pool, "max_pool2d", 2, x, o, NULL, out, indices);
}
lc_status lc_avg_pool1d(const lc_tensor *x, const lc_pool_opts *o, lc_tensor **out) {
  if (!o) return lc_set_error(LC_EARG, "avg_pool1d: NULL options");
  return pool_common(&lc_op_avg_pool, "avg_pool1d", 1, x, o, NULL, out, NULL);
}
lc_status lc_avg_pool2d(const lc_tensor *x, const lc_pool_opts *o, lc_tensor **out) {
  if (!o) return lc_set_error(LC_EARG, "avg_pool2d: NULL options");
  return pool_common(&lc_op_avg_pool, "avg_pool2d", 2, x, o, NULL, out, NULL);
}
lc_status lc_adaptive_avg_pool1d(const lc_tensor *x, int64_t out_size, lc_tensor **out) {
  return pool_common(&lc_op_adaptive_avg_pool, "adaptive_avg_pool1d", 1, x, NULL, &out_size, out,
                     NULL);
}
lc_status lc_adaptive_avg_pool2d(const lc_tensor *x, const int64_t out_size[2], lc_tensor **out) {
  if (!out_size) return lc_set_error(LC_EARG, "adaptive_avg_pool2d: NULL output_size");
  return pool_common(&lc_op_adaptive_avg_pool, "adaptive_avg_pool2d", 2, x, NULL, out_size, out,
                     NULL);
}
lc_status lc_adaptive_max_pool1d(const lc_tensor *x, int64_t out_size, lc_tensor **out,
                                 lc_tensor **indices) {
  return pool_common(&lc_op_adaptive_max_pool, "adaptive_max_pool1d", 1, x, NULL, &out_size, out,
                     indices);
}
lc_status lc_adaptive_max_pool2d(const lc_tensor *x, const int64_t out_size[2], lc_tensor **out,
                                 lc_tensor **indices) {
  if (!out_size) return lc_set_error(LC_EARG, "adaptive_max_pool2d: NULL output_size");
  return pool_common(&lc_op_adaptive_max_pool, "adaptive_max_pool2d", 2, x, NULL, out_size, out,
                     indices);
}
