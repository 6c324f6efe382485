/*
 * vmath.h - vectorisable float math the kernel files share: expf, tanhf and a stable sigmoid that
 * GCC can vectorise loops over (glibc's are scalar calls). Used by elementwise_loops.c and the
 * recurrent cells (rnn.c). Layer 2 (kernels); private.
 */
#ifndef LUCID_KERNELS_VMATH_H
#define LUCID_KERNELS_VMATH_H

#include <math.h>
#include <stdint.h>

/* expf written so GCC can vectorise loops calling it (glibc's expf is a scalar call): range
 * reduction x = n ln2 + r with a two-part ln2, Cephes' degree-6 polynomial for e^r on
 * |r| <= ln2/2, and 2^n applied as two exact power-of-two factors so results down into the
 * subnormals and up to overflow come out right. Max error about 1 ulp over the whole range;
 * NaN propagates, +-inf give inf / 0. Branch-free: every step is a select or an fma. */
static inline float vexpf(float x) {
  /* NaN goes to the low clamp here (keeps the int conversion below defined), back at the end */
  const float xc = x >= -103.972084f ? (x <= 88.7228394f ? x : 88.7228394f) : -103.972084f;
  const float n = nearbyintf(xc * 1.44269504088896341f);
  float r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * r * r + r + 1.0f;
  /* 2^n = 2^h * 2^(n-h) with both halves in the normal range (n in [-150, 128]) */
  const int32_t ni = (int32_t)n, h = ni / 2;
  union {
    int32_t i;
    float f;
  } s1 = {.i = (h + 127) << 23}, s2 = {.i = (ni - h + 127) << 23};
  const float v = y * s1.f * s2.f;
  return x > 88.7228394f ? INFINITY : (x != x ? x : v);
}

/* tanhf, vectorisable (glibc's is a slow scalar call): Cephes' odd polynomial below 0.625,
 * 1 - 2/(e^2|x| + 1) with the sign restored above (no cancellation there). ~2 ulp. */
static inline float vtanhf(float x) {
  const float ax = fabsf(x), z = x * x;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  const float small = p * z * x + x;
  const float big = copysignf(1.0f - 2.0f / (vexpf(2.0f * ax) + 1.0f), x);
  return ax < 0.625f ? small : big;
}

/* Stable for large |x|: exp never overflows (1/(1+e^-x) for x >= 0, e^x/(1+e^x) otherwise). */
static inline float sig_f32(float x) {
  const float e = vexpf(-fabsf(x)), r = 1.0f / (1.0f + e);
  return x >= 0 ? r : e * r;
}
static inline double sig_f64(double x) {
  const double e = exp(-fabs(x)), r = 1.0 / (1.0 + e);
  return x >= 0 ? r : e * r;
}

#endif /* LUCID_KERNELS_VMATH_H */
