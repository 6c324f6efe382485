/*
 * conv.h - private interface of the conv family's kernels (conv.c, pool.c, pad.c), shared with
 * the public entry points in src/ops/conv.c. Public API: include/lucid_conv.h.
 */
#ifndef LUCID_KERNELS_CONV_H
#define LUCID_KERNELS_CONV_H

#include "lucid_conv.h"
#include "op.h"

/* lc_op_conv: inputs {x, w} or {x, w, b}; the spatial rank is w's ndim - 2 (1 or 2); x has
 * that rank + 2 dims, or + 1 (unbatched). args.i: */
enum {
  LC_CONV_SH = 0, LC_CONV_SW, /* stride */
  LC_CONV_PH, LC_CONV_PW,     /* padding (both sides) */
  LC_CONV_DH, LC_CONV_DW,     /* dilation */
  LC_CONV_G,                  /* groups */
  LC_CONV_OPH, LC_CONV_OPW,   /* output padding (transposed) */
  LC_CONV_NARGS
};
#define LC_CONV_TRANSPOSED (1 << 8) /* args.flags: transposed convolution */
extern const lc_op_def lc_op_conv;

/* The family's option rules, each in one place: the module constructors (src/nn/conv.c) call
 * these when a layer is made; at the op, the conv entry points (src/ops/conv.c) ask
 * lc_conv_check_opts and lc_pool_check_output_size (the kernels trust those args), the conv
 * kernel lc_conv_check_groups and the pool kernel lc_pool_check_window. Messages read
 * "fn: <rule>, got <values>". */
/* sd pairs of o: stride, dilation >= 1, padding >= 0 (unless same / valid), padding_mode
 * known; "same" needs stride 1; a transposed conv takes numeric padding, padding_mode zeros
 * and 0 <= output_padding < stride or dilation. */
lc_status lc_conv_check_opts(const char *fn, int sd, bool transposed, const lc_conv_opts *o);
/* groups >= 1 dividing in_channels and out_channels. */
lc_status lc_conv_check_groups(const char *fn, int64_t groups, int64_t in, int64_t out);
/* Window pooling's n pairs (entry 0 first): kernel_size, stride >= 1, dilation >= 1 (NULL: all
 * 1), 0 <= padding <= kernel_size / 2, and kernel_size * dilation and stride small enough for
 * the size arithmetic. */
lc_status lc_pool_check_window(const char *fn, int n, const int64_t *kernel_size,
                               const int64_t *stride, const int64_t *padding,
                               const int64_t *dilation);
/* Adaptive pooling's sd output sizes: >= 1, or -1 (keep the input's size). */
lc_status lc_pool_check_output_size(const char *fn, int sd, const int64_t *out_size);

/* Pooling ops. Input: any leading dims, then args.i[LC_POOL_SD] (1 or 2) spatial dims. */
enum {
  LC_POOL_KH = 0, LC_POOL_KW,
  LC_POOL_SH, LC_POOL_SW,
  LC_POOL_PH, LC_POOL_PW,
  LC_POOL_DH, LC_POOL_DW,
  LC_POOL_SD,               /* spatial rank */
  LC_POOL_OH, LC_POOL_OW,   /* adaptive: output size */
  LC_POOL_NARGS
};
#define LC_POOL_CEIL (1 << 8)      /* args.flags */
#define LC_POOL_COUNT_PAD (1 << 9) /* args.flags */
extern const lc_op_def lc_op_max_pool;          /* out[1] = int64 indices */
extern const lc_op_def lc_op_avg_pool;
extern const lc_op_def lc_op_adaptive_max_pool; /* out[1] = int64 indices */
extern const lc_op_def lc_op_adaptive_avg_pool;

/* lc_op_pad: args.i[0..ni) = the pad list (PyTorch order), mode in flags >> 8, value f[0]. */
#define LC_PAD_MODE_SHIFT 8
extern const lc_op_def lc_op_pad;

#endif /* LUCID_KERNELS_CONV_H */
