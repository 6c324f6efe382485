/* half.h - float16 / bfloat16 <-> float32 conversions as inline functions (bit for bit those of
 * PyTorch 1.13's c10/util/Half.h and BFloat16.h), for the cast loops to inline and vectorise.
 * They rely on float arithmetic rounding to nearest even: never build with -ffast-math. */
#ifndef LUCID_CORE_HALF_H
#define LUCID_CORE_HALF_H

#include <stdint.h>
#include <string.h>

static inline uint32_t lc_f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

static inline float lc_f32_from_bits(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

/* float32 -> float16, round to nearest even: the float addition below does the rounding of the
 * 13 dropped mantissa bits (or of the bits below a subnormal's last place); overflow goes to
 * inf, NaN to 0x7e00 with the sign. */
static inline uint16_t lc_h_from_f(float f) {
  const float scale_to_inf = 0x1.0p+112f, scale_to_zero = 0x1.0p-110f;
  uint32_t w = lc_f32_bits(f);
  float base = (lc_f32_from_bits(w & 0x7fffffffu) * scale_to_inf) * scale_to_zero;
  uint32_t shl1_w = w + w;
  uint32_t sign = w & 0x80000000u;
  uint32_t bias = shl1_w & 0xff000000u;
  bias = bias < 0x71000000u ? 0x71000000u : bias;
  base = lc_f32_from_bits((bias >> 1) + 0x07800000u) + base;
  uint32_t bits = lc_f32_bits(base);
  uint32_t exp_bits = (bits >> 13) & 0x00007c00u;
  uint32_t mantissa_bits = bits & 0x00000fffu;
  uint32_t nonsign = exp_bits + mantissa_bits;
  return (uint16_t)((sign >> 16) | (shl1_w > 0xff000000u ? 0x7e00u : nonsign));
}

/* float16 -> float32, exact (subnormals through a magic-number subtraction). */
static inline float lc_f_from_h(uint16_t h) {
  uint32_t w = (uint32_t)h << 16;
  uint32_t sign = w & 0x80000000u;
  uint32_t two_w = w + w;
  const uint32_t exp_offset = 0xe0u << 23;
  const float exp_scale = 0x1.0p-112f;
  float normalized = lc_f32_from_bits((two_w >> 4) + exp_offset) * exp_scale;
  const uint32_t magic_mask = 126u << 23;
  float denormalized = lc_f32_from_bits((two_w >> 17) | magic_mask) - 0.5f;
  uint32_t r = sign | (two_w < (1u << 27) ? lc_f32_bits(denormalized) : lc_f32_bits(normalized));
  return lc_f32_from_bits(r);
}

/* float32 -> bfloat16: the top 16 bits, rounded to nearest even; NaN to 0xffff, as PyTorch 1.13's
 * (vectorised) float32 tensor conversion gives for every NaN. */
static inline uint16_t lc_bf_from_f(float f) {
  uint32_t u = lc_f32_bits(f);
  uint32_t rounded = (u + (((u >> 16) & 1u) + 0x7fffu)) >> 16;
  return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? 0xffffu : rounded);
}

static inline float lc_f_from_bf(uint16_t h) { return lc_f32_from_bits((uint32_t)h << 16); }

#endif /* LUCID_CORE_HALF_H */
