/*
 * lucid_conv.h - convolution, pooling and padding: tensor functions (with autograd) and the
 * module kinds Conv1d, Conv2d, ConvTranspose2d, MaxPool1d/2d, AvgPool1d/2d,
 * AdaptiveAvgPool1d/2d, AdaptiveMaxPool1d/2d.
 *
 * Conventions are lucid.h's: 0-based, every fallible function returns an lc_status with a
 * message in lc_last_error(), outputs go to the last argument(s) and are owned by the caller,
 * arguments are borrowed. Float32 and float64 tensors (all operands of one call share a dtype).
 *
 * Layouts follow PyTorch:
 *   1-d: input {N, C, L} or unbatched {C, L};     weight {out, in/groups, k}
 *   2-d: input {N, C, H, W} or unbatched {C, H, W}; weight {out, in/groups, kh, kw}
 *   transposed 2-d: weight {in, out/groups, kh, kw}
 *   pooling takes any number of leading dims before the 1 or 2 spatial dims (at least one).
 * Pairs of options are {height, width}; 1-d functions read entry [0] only.
 *
 * Threads: a convolution over a batch of >= 2 samples runs its samples on the runtime's threads
 * (lc_parallel_for), each calling BLAS single-threaded (OpenBLAS is set to 1 thread for the
 * duration and restored to lc_get_num_threads() after); a single sample runs on the calling
 * thread with a multi-threaded BLAS. Each thread keeps one growing workspace (the im2col
 * buffer) between calls, so a training loop does not allocate it again; lc_conv_empty_cache()
 * (and lc_empty_cache(), which calls it) frees the idle workspaces, and a thread's workspace is
 * freed when the thread exits.
 */
#ifndef LUCID_CONV_H
#define LUCID_CONV_H

#include "lucid_core.h"
#include "lucid_nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- padding */

typedef enum lc_pad_mode {
  LC_PAD_CONSTANT = 0, /* fill with a value (conv's padding_mode "zeros") */
  LC_PAD_REFLECT,      /* mirror without repeating the edge: pad < size of the dim */
  LC_PAD_REPLICATE,    /* repeat the edge */
  LC_PAD_CIRCULAR,     /* wrap around: pad <= size of the dim (after any cropping) */
  LC_PAD_MODE_COUNT
} lc_pad_mode;

/* "constant", "reflect", "replicate", "circular" (and "zeros" for LC_PAD_CONSTANT). */
const char *lc_pad_mode_name(lc_pad_mode mode);
lc_status lc_pad_mode_from_name(const char *name, lc_pad_mode *out);

/* torch.nn.functional.pad: pad holds npad (even) entries, PyTorch's order: (before, after) of
 * the LAST dim first, then of the dim before it, ... Negative entries crop, in every mode.
 * Constant mode pads any number of dims with `value` (the other modes take value 0: "padding
 * mode "reflect" doesn't take a value, got value 1"); the other modes pad the last 1, 2 or 3
 * dims (circular wraps around the cropped dim, so its pads are at most the cropped size). Any
 * dtype for constant mode; floats for the others. Differentiable. */
lc_status lc_pad(const lc_tensor *x, int npad, const int64_t *pad, lc_pad_mode mode, double value,
                 lc_tensor **out);

/* ---------------------------------------------------------------- convolution */

typedef struct lc_conv_opts {
  int64_t stride[2];         /* >= 1 */
  int64_t padding[2];        /* >= 0, both sides; ignored when `same` */
  int64_t dilation[2];       /* >= 1 */
  int64_t output_padding[2]; /* transposed only: 0 <= output_padding < max(stride, dilation) */
  int64_t groups;            /* >= 1, divides in and out channels */
  bool same;                 /* padding = "same" (not for transposed; needs stride 1): the
                                output has the input's size; when the total padding of a dim is
                                odd the extra element goes after, as PyTorch */
  bool valid;                /* padding = "valid": padding 0 (only changes how a module prints) */
  lc_pad_mode padding_mode;  /* LC_PAD_CONSTANT ("zeros"), LC_PAD_REFLECT, LC_PAD_REPLICATE or
                                LC_PAD_CIRCULAR; transposed convs take zeros only */
} lc_conv_opts;

/* stride 1, padding 0, dilation 1, output_padding 0, groups 1, zeros. */
void lc_conv_opts_init(lc_conv_opts *o);

/* y = conv(x, w) + b (bias may be NULL). opts may be NULL (the defaults). The output size of a
 * dim is floor((in + 2 * padding - dilation * (k - 1) - 1) / stride) + 1, which must be >= 1
 * (else LC_ESHAPE: the kernel is larger than the padded input). Differentiable in x, w and b
 * (grad_fn "ConvolutionBackward"). */
lc_status lc_conv1d(const lc_tensor *x, const lc_tensor *w, const lc_tensor *b,
                    const lc_conv_opts *opts, lc_tensor **out);
lc_status lc_conv2d(const lc_tensor *x, const lc_tensor *w, const lc_tensor *b,
                    const lc_conv_opts *opts, lc_tensor **out);
/* The adjoint of conv2d in x ("deconvolution"): weight {in, out/groups, kh, kw}; output size
 * (in - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1. */
lc_status lc_conv_transpose2d(const lc_tensor *x, const lc_tensor *w, const lc_tensor *b,
                              const lc_conv_opts *opts, lc_tensor **out);

/* Frees every thread's idle convolution workspace (see the top of this file). Safe to call at
 * any time: a workspace in use by a running convolution is skipped. */
void lc_conv_empty_cache(void);

/* ---------------------------------------------------------------- pooling */

typedef struct lc_pool_opts {
  int64_t kernel_size[2];  /* >= 1 */
  int64_t stride[2];       /* >= 1 (lc_pool_opts_init: kernel_size, PyTorch's default) */
  int64_t padding[2];      /* 0 <= padding <= kernel_size / 2 (implicit -inf / zeros) */
  int64_t dilation[2];     /* >= 1; max pooling only */
  bool ceil_mode;          /* ceil instead of floor in the output size; a last window must
                              start inside the input or the left padding */
  bool count_include_pad;  /* average pooling: divide by the window size including padding
                              (PyTorch's default, true) */
} lc_pool_opts;

/* kernel (kh, kw), stride = kernel, padding 0, dilation 1, no ceil_mode, count_include_pad. */
void lc_pool_opts_init(lc_pool_opts *o, int64_t kh, int64_t kw);

/* Max pooling. *indices (may be NULL: not returned) receives int64 0-based positions of each
 * maximum in its flattened input plane (h * W + w), as PyTorch's return_indices (1-based in
 * Lua). NaN wins, as in PyTorch. Differentiable in x through values (grad_fn
 * "MaxPool2DWithIndicesBackward"). */
lc_status lc_max_pool1d(const lc_tensor *x, const lc_pool_opts *o, lc_tensor **out,
                        lc_tensor **indices);
lc_status lc_max_pool2d(const lc_tensor *x, const lc_pool_opts *o, lc_tensor **out,
                        lc_tensor **indices);
/* Average pooling (dilation must be 1). */
lc_status lc_avg_pool1d(const lc_tensor *x, const lc_pool_opts *o, lc_tensor **out);
lc_status lc_avg_pool2d(const lc_tensor *x, const lc_pool_opts *o, lc_tensor **out);
/* Adaptive pooling: output spatial size out_size (>= 1 each; -1 keeps the input's size, as
 * PyTorch's None). Window i of a dim of size n into m covers
 * [floor(i * n / m), ceil((i + 1) * n / m)). */
lc_status lc_adaptive_avg_pool1d(const lc_tensor *x, int64_t out_size, lc_tensor **out);
lc_status lc_adaptive_avg_pool2d(const lc_tensor *x, const int64_t out_size[2], lc_tensor **out);
lc_status lc_adaptive_max_pool1d(const lc_tensor *x, int64_t out_size, lc_tensor **out,
                                 lc_tensor **indices);
lc_status lc_adaptive_max_pool2d(const lc_tensor *x, const int64_t out_size[2], lc_tensor **out,
                                 lc_tensor **indices);

/* ---------------------------------------------------------------- module kinds */

extern const lc_module_kind lc_kind_conv1d, lc_kind_conv2d, lc_kind_conv_transpose2d,
    lc_kind_max_pool1d, lc_kind_max_pool2d, lc_kind_avg_pool1d, lc_kind_avg_pool2d,
    lc_kind_adaptive_avg_pool1d, lc_kind_adaptive_avg_pool2d, lc_kind_adaptive_max_pool1d,
    lc_kind_adaptive_max_pool2d;

/* Convolution layers (float32 parameters): weight as above, bias {out} when `bias`. Initialised
 * as PyTorch: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias, fan_in = in / groups *
 * prod(kernel) (for ConvTranspose2d PyTorch's fan_in is computed from its weight's dim 1:
 * out / groups * prod(kernel)). opts may be NULL. Attributes: in_channels, out_channels, groups
 * (INT). Forward checks the input's rank and channel count ("expected input with 3 channels,
 * got 4: input shape {1, 4, 8, 8}"). 1-d layers read entry [0] of kernel_size and of the
 * opts pairs. The rules, checked when the layer is made: in_channels, out_channels,
 * kernel_size >= 1, groups >= 1 dividing both channel counts, and the functions' option rules
 * (lc_conv_opts above). */
lc_status lc_nn_conv1d(int64_t in_channels, int64_t out_channels, int64_t kernel_size,
                       const lc_conv_opts *opts, bool bias, lc_module **out);
lc_status lc_nn_conv2d(int64_t in_channels, int64_t out_channels, const int64_t kernel_size[2],
                       const lc_conv_opts *opts, bool bias, lc_module **out);
lc_status lc_nn_conv_transpose2d(int64_t in_channels, int64_t out_channels,
                                 const int64_t kernel_size[2], const lc_conv_opts *opts, bool bias,
                                 lc_module **out);

/* Pooling layers (forward returns the pooled values only; return_indices is recorded for the
 * bindings, which return the indices too). The options' rules are the functions' (checked
 * here, when the layer is made). */
lc_status lc_nn_max_pool1d(const lc_pool_opts *o, bool return_indices, lc_module **out);
lc_status lc_nn_max_pool2d(const lc_pool_opts *o, bool return_indices, lc_module **out);
lc_status lc_nn_avg_pool1d(const lc_pool_opts *o, lc_module **out);
lc_status lc_nn_avg_pool2d(const lc_pool_opts *o, lc_module **out);
/* out_size entries: >= 1, or -1 for None (keep the input's size). */
lc_status lc_nn_adaptive_avg_pool1d(int64_t out_size, lc_module **out);
lc_status lc_nn_adaptive_avg_pool2d(const int64_t out_size[2], lc_module **out);
lc_status lc_nn_adaptive_max_pool1d(int64_t out_size, bool return_indices, lc_module **out);
lc_status lc_nn_adaptive_max_pool2d(const int64_t out_size[2], bool return_indices,
                                    lc_module **out);

/* The options a conv / pool module was made with (for bindings and printing). Returns false
 * when m is not of a conv (resp. pool) kind. kernel_size / out_size receive 2 entries (1-d:
 * entry [1] is 1). */
bool lc_nn_conv_info(const lc_module *m, int64_t kernel_size[2], lc_conv_opts *opts);
bool lc_nn_pool_info(const lc_module *m, lc_pool_opts *opts, int64_t out_size[2],
                     bool *return_indices);

#ifdef __cplusplus
}
#endif
#endif /* LUCID_CONV_H */
