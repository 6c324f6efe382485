/*
 * conv_winograd.h - private interface of the Winograd F(2x2, 3x3) forward convolution
 * (conv_winograd.c), used by the conv kernel's dispatch (conv.c) and the C tests. Layer 2.
 *
 * It computes a float32 3x3, stride-1, dilation-1, ungrouped convolution forward with 16 GEMMs
 * of (Cout x Cin) @ (Cin x tiles) instead of one of (Cout x 9 Cin) @ (9 Cin x OH*OW): 2.25x
 * fewer multiplications. float64 never comes here (its exact im2col path stays), nor does
 * the backward pass (gradients are the im2col path's, whatever computed the forward).
 */
#ifndef LUCID_KERNELS_CONV_WINOGRAD_H
#define LUCID_KERNELS_CONV_WINOGRAD_H

#include "op.h"

/* The sizes of one call. */
typedef struct lc_wino_geom {
  int64_t N, Cin, H, W, Cout, ph, pw; /* input N x Cin x H x W, padding (both sides) */
} lc_wino_geom;

/* The float workspace lc_conv_winograd_f32 needs, in bytes; 0 when a size overflows. */
size_t lc_conv_winograd_ws_bytes(const lc_wino_geom *g);

/* y (N x Cout x OH x OW, OH = H + 2 ph - 2, OW = W + 2 pw - 2, both >= 1) = the convolution of
 * x (N x Cin x H x W) with w (Cout x Cin x 3 x 3), plus b (Cout; NULL: none). All contiguous;
 * ws holds lc_conv_winograd_ws_bytes(g) bytes (LC_ALIGN-aligned). Samples run one after the
 * other, each spread over the runtime's threads (serially when called from inside a parallel
 * loop). Cannot fail. */
void lc_conv_winograd_f32(const lc_wino_geom *g, const float *x, const float *w, const float *b,
                          float *y, float *ws);

/* Whether the conv dispatch uses Winograd for an eligible conv (float32, 3x3, stride 1,
 * dilation 1, groups 1, not transposed): LC_WINO_AUTO by the size rule in conv.c (batch 1,
 * large enough planes and channel counts), LC_WINO_ALWAYS for every eligible conv,
 * LC_WINO_NEVER for none. A test hook (process-wide, not thread-safe to change while convs
 * run); returns the previous mode. */
enum { LC_WINO_AUTO = 0, LC_WINO_ALWAYS = 1, LC_WINO_NEVER = 2 };
int lc_conv_winograd_set_mode(int mode);
int lc_conv_winograd_mode(void);

#endif /* LUCID_KERNELS_CONV_WINOGRAD_H */
