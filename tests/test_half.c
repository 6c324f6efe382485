/* test_half.c - float16 / bfloat16: scalar and bulk conversions (rounding edge cases, bit
 * patterns as PyTorch 1.13 gives them), promotion, and ops computed in float32. */
#include "test.h"

#include <math.h>
#include <string.h>

static float bits_f(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

TEST(half_scalar_conversions) {
  static const struct {
    float f;
    uint16_t h, bf;
  } cases[] = {
      {0.0f, 0x0000, 0x0000},           {-0.0f, 0x8000, 0x8000},          {1.0f, 0x3c00, 0x3f80},
      {65504.0f, 0x7bff, 0x4780},       {65520.0f, 0x7c00, 0x4780},       /* half overflow */
      {65519.0f, 0x7bff, 0x4780},       {1.00048828125f, 0x3c00, 0x3f80}, /* tie -> even */
      {1.00146484375f, 0x3c02, 0x3f80},                                   /* tie -> up (odd) */
      {0x1p-24f, 0x0001, 0x3380},    /* smallest float16 subnormal */
      {0x1p-25f, 0x0000, 0x3300},    /* tie -> 0 */
      {0x1.8p-24f, 0x0002, 0x33c0},  /* tie -> even (2) */
      {0x1p-14f, 0x0400, 0x3880},    /* smallest normal */
      {1.00390625f, 0x3c04, 0x3f80}, /* bfloat16 tie -> even */
      {1.01171875f, 0x3c0c, 0x3f82}, /* bfloat16 tie -> up */
      {INFINITY, 0x7c00, 0x7f80},       {-INFINITY, 0xfc00, 0xff80},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    CHECK(lc_float_to_half(cases[i].f) == cases[i].h);
    CHECK(lc_float_to_bfloat16(cases[i].f) == cases[i].bf);
  }
  CHECK(lc_float_to_half(bits_f(0x7fc00000u)) == 0x7e00);
  CHECK(lc_float_to_half(bits_f(0xffc00000u)) == 0xfe00);
  CHECK(lc_float_to_bfloat16(bits_f(0x7fc00000u)) == 0xffff);
  CHECK(lc_half_to_float(0x0001) == 0x1p-24f);
  CHECK(lc_half_to_float(0x03ff) == 0x1.ff8p-15f);
  CHECK(lc_half_to_float(0x7bff) == 65504.0f);
  CHECK(isinf(lc_half_to_float(0xfc00)) && lc_half_to_float(0xfc00) < 0);
  CHECK(isnan(lc_half_to_float(0x7e00)));
  CHECK(signbit(lc_half_to_float(0x8000)));
  CHECK(lc_bfloat16_to_float(0x3f80) == 1.0f);
  /* every finite float16 survives the round trip */
  int bad = 0;
  for (uint32_t h = 0; h < 0x10000; h++) {
    if ((h & 0x7c00) == 0x7c00) continue;
    if (lc_float_to_half(lc_half_to_float((uint16_t)h)) != h) bad++;
    if ((h & 0x7f80) != 0x7f80 && lc_float_to_bfloat16(lc_bfloat16_to_float((uint16_t)h)) != h)
      bad++;
  }
  CHECK(bad == 0);
}

TEST(half_bulk_and_tensors) {
  float src[37], back[37];
  uint16_t h[37];
  for (int i = 0; i < 37; i++)
    src[i] = (float)(i - 18) * 0.37f;
  lc_half_from_float(LC_FLOAT16, h, src, 37);
  lc_half_to_float_n(LC_FLOAT16, back, h, 37);
  for (int i = 0; i < 37; i++) {
    CHECK(h[i] == lc_float_to_half(src[i]));
    CHECK(fabsf(back[i] - src[i]) <= 0x1p-11f * fabsf(src[i]));
  }
  CHECK(lc_dtype_size(LC_FLOAT16) == 2 && lc_dtype_size(LC_BFLOAT16) == 2);
  CHECK(strcmp(lc_dtype_name(LC_BFLOAT16), "bfloat16") == 0);
  lc_dtype dt;
  CHECK_OK(lc_dtype_from_name("half", &dt));
  CHECK(dt == LC_FLOAT16);
  CHECK(lc_dtype_is_float(LC_BFLOAT16) && lc_dtype_is_half(LC_FLOAT16));
  CHECK(!lc_dtype_is_half(LC_FLOAT32));

  int64_t shape[2] = {3, 4};
  lc_tensor *a = NULL, *b = NULL, *c = NULL, *s = NULL, *f = NULL, *m = NULL, *bt = NULL;
  CHECK_OK(lc_arange(0, 12, 1, LC_FLOAT16, &a));
  CHECK_OK(lc_full(2, shape, 0.5, LC_FLOAT16, &b));
  lc_tensor *a2 = NULL;
  CHECK_OK(lc_reshape(a, 2, shape, &a2));
  CHECK_OK(lc_binary(LC_MUL, a2, b, &c));
  CHECK(c && lc_dtype_of(c) == LC_FLOAT16);
  double v = 0;
  int64_t idx[2] = {2, 3};
  CHECK_OK(lc_get(c, idx, &v));
  CHECK(v == 5.5);
  CHECK_OK(lc_to_dtype(c, LC_FLOAT32, &f));
  CHECK(f && lc_dtype_of(f) == LC_FLOAT32);
  CHECK_OK(lc_transpose(b, 0, 1, &bt));
  CHECK_OK(lc_matmul(a2, bt, &m));
  CHECK(m && lc_dtype_of(m) == LC_FLOAT16);
  int64_t i0[2] = {1, 2};
  CHECK_OK(lc_get(m, i0, &v));
  CHECK(v == (4 + 5 + 6 + 7) * 0.5);
  lc_tensor *bf = NULL, *mix = NULL;
  CHECK_OK(lc_to_dtype(b, LC_BFLOAT16, &bf));
  CHECK_OK(lc_binary(LC_ADD, bf, b, &mix));
  CHECK(mix && lc_dtype_of(mix) == LC_FLOAT32);
  CHECK(lc_set_requires_grad(b, true) == LC_EGRAD);
  CHECK(strstr(lc_last_error(), "float16 tensors do not support autograd yet"));
  lc_release(a);
  lc_release(a2);
  lc_release(b);
  lc_release(c);
  lc_release(s);
  lc_release(f);
  lc_release(m);
  lc_release(bt);
  lc_release(bf);
  lc_release(mix);
}
