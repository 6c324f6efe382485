/* dtype.c - dtype names, sizes, promotion, and scalar load/store by dtype. */
#include "core.h"

#include <string.h>

static const char *const dtype_names[LC_DTYPE_COUNT] = {"float32", "float64", "int32",   "int64",
                                                        "bool",    "float16", "bfloat16"};
static const size_t dtype_sizes[LC_DTYPE_COUNT] = {4, 8, 4, 8, 1, 2, 2};

const char *lc_dtype_name(lc_dtype dt) {
  return (unsigned)dt < LC_DTYPE_COUNT ? dtype_names[dt] : "?";
}

size_t lc_dtype_size(lc_dtype dt) { return (unsigned)dt < LC_DTYPE_COUNT ? dtype_sizes[dt] : 0; }

bool lc_dtype_is_float(lc_dtype dt) {
  return dt == LC_FLOAT32 || dt == LC_FLOAT64 || dt == LC_FLOAT16 || dt == LC_BFLOAT16;
}

bool lc_dtype_is_half(lc_dtype dt) { return dt == LC_FLOAT16 || dt == LC_BFLOAT16; }

lc_status lc_dtype_from_name(const char *name, lc_dtype *out) {
  static const struct {
    const char *name;
    lc_dtype dt;
  } aliases[] = {{"float32", LC_FLOAT32}, {"float", LC_FLOAT32}, {"float64", LC_FLOAT64},
                 {"double", LC_FLOAT64},  {"int32", LC_INT32},   {"int", LC_INT32},
                 {"int64", LC_INT64},     {"long", LC_INT64},    {"bool", LC_BOOL},
                 {"float16", LC_FLOAT16}, {"half", LC_FLOAT16},  {"bfloat16", LC_BFLOAT16}};
  for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++) {
    if (name && strcmp(name, aliases[i].name) == 0) {
      *out = aliases[i].dt;
      return LC_OK;
    }
  }
  return lc_set_error(LC_EDTYPE,
                      "unknown dtype '%s' (expected float32, float64, float16, bfloat16, int32, "
                      "int64 or bool)",
                      name ? name : "(null)");
}

/* bool < int32 < int64 < float16, bfloat16 < float32 < float64; float16 with bfloat16 gives
 * float32 (torch.promote_types) */
static int dtype_rank(lc_dtype dt) {
  switch (dt) {
  case LC_BOOL: return 0;
  case LC_INT32: return 1;
  case LC_INT64: return 2;
  case LC_FLOAT16:
  case LC_BFLOAT16: return 3;
  case LC_FLOAT32: return 4;
  case LC_FLOAT64: return 5;
  default: return -1;
  }
}

lc_dtype lc_promote(lc_dtype a, lc_dtype b) {
  if (lc_dtype_is_half(a) && lc_dtype_is_half(b) && a != b) return LC_FLOAT32;
  return dtype_rank(a) >= dtype_rank(b) ? a : b;
}

uint16_t lc_float_to_half(float f) { return lc_h_from_f(f); }
float lc_half_to_float(uint16_t h) { return lc_f_from_h(h); }
uint16_t lc_float_to_bfloat16(float f) { return lc_bf_from_f(f); }
float lc_bfloat16_to_float(uint16_t h) { return lc_f_from_bf(h); }

void lc_half_from_float(lc_dtype dt, uint16_t *restrict dst, const float *restrict src, int64_t n) {
  if (dt == LC_BFLOAT16)
    for (int64_t i = 0; i < n; i++)
      dst[i] = lc_bf_from_f(src[i]);
  else
    for (int64_t i = 0; i < n; i++)
      dst[i] = lc_h_from_f(src[i]);
}

void lc_half_to_float_n(lc_dtype dt, float *restrict dst, const uint16_t *restrict src, int64_t n) {
  if (dt == LC_BFLOAT16)
    for (int64_t i = 0; i < n; i++)
      dst[i] = lc_f_from_bf(src[i]);
  else
    for (int64_t i = 0; i < n; i++)
      dst[i] = lc_f_from_h(src[i]);
}

double lc_load_f64(const void *data, lc_dtype dt, int64_t i) {
  switch (dt) {
  case LC_FLOAT32: return ((const float *)data)[i];
  case LC_FLOAT64: return ((const double *)data)[i];
  case LC_INT32: return ((const int32_t *)data)[i];
  case LC_INT64: return (double)((const int64_t *)data)[i];
  case LC_BOOL: return ((const uint8_t *)data)[i] != 0;
  case LC_FLOAT16: return lc_f_from_h(((const uint16_t *)data)[i]);
  case LC_BFLOAT16: return lc_f_from_bf(((const uint16_t *)data)[i]);
  default: return 0;
  }
}

int64_t lc_load_i64(const void *data, lc_dtype dt, int64_t i) {
  switch (dt) {
  case LC_INT32: return ((const int32_t *)data)[i];
  case LC_INT64: return ((const int64_t *)data)[i];
  case LC_BOOL: return ((const uint8_t *)data)[i] != 0;
  default: return (int64_t)lc_load_f64(data, dt, i);
  }
}

void lc_store_f64(void *data, lc_dtype dt, int64_t i, double v) {
  switch (dt) {
  case LC_FLOAT32: ((float *)data)[i] = (float)v; break;
  case LC_FLOAT64: ((double *)data)[i] = v; break;
  case LC_INT32: ((int32_t *)data)[i] = (int32_t)v; break;
  case LC_INT64: ((int64_t *)data)[i] = (int64_t)v; break;
  case LC_BOOL: ((uint8_t *)data)[i] = v != 0; break;
  case LC_FLOAT16: ((uint16_t *)data)[i] = lc_h_from_f((float)v); break;
  case LC_BFLOAT16: ((uint16_t *)data)[i] = lc_bf_from_f((float)v); break;
  default: break;
  }
}
