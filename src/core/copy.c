/* copy.c - raw copy (with broadcasting and dtype conversion) and fill kernels.
 *
 * Neither bumps versions nor knows about autograd: src/ops wraps them. Work is split over a flat
 * element range [0, numel) in C order of the destination, so contiguous and strided layouts
 * share the same parallel driver. */
#include "core.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* ------------------------------------------------------------------ cast loops */

/* One inner loop: n elements, destination stride ds and source stride ss (elements). */
typedef void (*cast_fn)(void *d, int64_t ds, const void *s, int64_t ss, int64_t n);

/* A conversion is load (the source element as a C value) then store (into the destination
 * type): half sources load as float, half destinations store a float rounded to nearest even
 * (float64 and integers go through float32, as PyTorch converts them). */
#define LD_PLAIN(x) (x)
#define LD_F16(x) lc_f_from_h(x)
#define LD_BF16(x) lc_f_from_bf(x)
#define ST_PLAIN(DT, v) ((DT)(v))
#define ST_BOOL(DT, v) ((DT)((v) != 0))
#define ST_F16(DT, v) lc_h_from_f((float)(v))
#define ST_BF16(DT, v) lc_bf_from_f((float)(v))

/* The branch on strides is hoisted by the compiler; the unit-stride loop vectorises. */
#define DEF_CAST(NAME, DT, ST, LD, STORE)                                                          \
  static void NAME(void *dv, int64_t ds, const void *sv, int64_t ss, int64_t n) {                  \
    DT *restrict d = dv;                                                                           \
    const ST *restrict s = sv;                                                                     \
    if (ds == 1 && ss == 1) {                                                                      \
      for (int64_t i = 0; i < n; i++)                                                              \
        d[i] = STORE(DT, LD(s[i]));                                                                \
    } else if (ds == 1 && ss == 0) {                                                               \
      const DT v = STORE(DT, LD(s[0]));                                                            \
      for (int64_t i = 0; i < n; i++)                                                              \
        d[i] = v;                                                                                  \
    } else {                                                                                       \
      for (int64_t i = 0; i < n; i++)                                                              \
        d[i * ds] = STORE(DT, LD(s[i * ss]));                                                      \
    }                                                                                              \
  }

/* A float that an integer type cannot hold (NaN, infinities, out of range) converts to the
 * type's lowest value, as x86's conversion instructions (and so PyTorch there) give it; in C
 * the plain cast would be undefined behaviour. */
#define ST_FI32(DT, v)                                                                             \
  (((v) == (v) && (v) > -2147483649.0 && (v) < 2147483648.0) ? (DT)(v) : (DT)INT32_MIN)
#define ST_FI64(DT, v)                                                                             \
  (((v) == (v) && (v) >= -9223372036854775808.0 && (v) < 9223372036854775808.0) ? (DT)(v)          \
                                                                                : (DT)INT64_MIN)

/* Rows: destination dtype; columns: source dtype (order of lc_dtype). FSTORE stores a float
 * source, STORE an integer or bool one. */
#define DEF_CAST_ROW(DN, DT, STORE, FSTORE)                                                        \
  DEF_CAST(cast_##DN##_f32, DT, float, LD_PLAIN, FSTORE)                                           \
  DEF_CAST(cast_##DN##_f64, DT, double, LD_PLAIN, FSTORE)                                          \
  DEF_CAST(cast_##DN##_i32, DT, int32_t, LD_PLAIN, STORE)                                          \
  DEF_CAST(cast_##DN##_i64, DT, int64_t, LD_PLAIN, STORE)                                          \
  DEF_CAST(cast_##DN##_b, DT, uint8_t, LD_PLAIN, STORE)                                            \
  DEF_CAST(cast_##DN##_f16, DT, uint16_t, LD_F16, FSTORE)                                          \
  DEF_CAST(cast_##DN##_bf16, DT, uint16_t, LD_BF16, FSTORE)

DEF_CAST_ROW(f32, float, ST_PLAIN, ST_PLAIN)
DEF_CAST_ROW(f64, double, ST_PLAIN, ST_PLAIN)
DEF_CAST_ROW(i32, int32_t, ST_PLAIN, ST_FI32)
DEF_CAST_ROW(i64, int64_t, ST_PLAIN, ST_FI64)
DEF_CAST_ROW(b, uint8_t, ST_BOOL, ST_BOOL)
DEF_CAST_ROW(f16, uint16_t, ST_F16, ST_F16)
DEF_CAST_ROW(bf16, uint16_t, ST_BF16, ST_BF16)

/* half to the same half dtype: the bits as they are (NaN payloads kept) */
DEF_CAST(cast_u16_same, uint16_t, uint16_t, LD_PLAIN, ST_PLAIN)

#define CAST_ROW(DN)                                                                               \
  {                                                                                                \
    cast_##DN##_f32, cast_##DN##_f64, cast_##DN##_i32, cast_##DN##_i64, cast_##DN##_b,             \
        cast_##DN##_f16, cast_##DN##_bf16                                                          \
  }
static const cast_fn cast_table[LC_DTYPE_COUNT][LC_DTYPE_COUNT] = {
    CAST_ROW(f32), CAST_ROW(f64), CAST_ROW(i32), CAST_ROW(i64),
    CAST_ROW(b),   CAST_ROW(f16), CAST_ROW(bf16)};

/* ------------------------------------------------------------------ fill loops */

typedef void (*fill_fn)(void *d, int64_t ds, const void *v, int64_t n);

#define DEF_FILL(NAME, DT)                                                                         \
  static void NAME(void *dv, int64_t ds, const void *vp, int64_t n) {                              \
    DT *restrict d = dv;                                                                           \
    const DT v = *(const DT *)vp;                                                                  \
    if (ds == 1) {                                                                                 \
      for (int64_t i = 0; i < n; i++)                                                              \
        d[i] = v;                                                                                  \
    } else {                                                                                       \
      for (int64_t i = 0; i < n; i++)                                                              \
        d[i * ds] = v;                                                                             \
    }                                                                                              \
  }
DEF_FILL(fill_f32, float)
DEF_FILL(fill_f64, double)
DEF_FILL(fill_i32, int32_t)
DEF_FILL(fill_i64, int64_t)
DEF_FILL(fill_b, uint8_t)
DEF_FILL(fill_u16, uint16_t)
static const fill_fn fill_table[LC_DTYPE_COUNT] = {fill_f32, fill_f64, fill_i32, fill_i64,
                                                   fill_b,   fill_u16, fill_u16};

/* ------------------------------------------------------------------ flat-range driver */

typedef struct run_ctx {
  lc_iter it;
  bool flat;      /* both operands contiguous over the whole range: no iterator needed */
  bool is_memcpy; /* flat and same dtype */
  bool same_dtype;
  char *d;
  const char *s;
  size_t dsz, ssz;
  cast_fn cast; /* copy */
  fill_fn fill; /* fill (s points at the value) */
} run_ctx;

static void run_range(void *vctx, int64_t b, int64_t e) {
  const run_ctx *c = vctx;
  if (c->flat) {
    if (c->is_memcpy)
      memcpy(c->d + (size_t)b * c->dsz, c->s + (size_t)b * c->ssz, (size_t)(e - b) * c->dsz);
    else if (c->fill)
      c->fill(c->d + (size_t)b * c->dsz, 1, c->s, e - b);
    else
      c->cast(c->d + (size_t)b * c->dsz, 1, c->s + (size_t)b * c->ssz, 1, e - b);
    return;
  }
  const int64_t inner = c->it.inner;
  int64_t row = b / inner, col = b % inner;
  int64_t offs[LC_ITER_MAX_OPS], idx[LC_MAX_DIMS];
  /* rows of one dtype, unit stride on both sides: memcpy (the common strided copy: a
   * transpose or a slice made contiguous, row by row) */
  bool rows_memcpy =
      !c->fill && c->same_dtype && c->it.inner_stride[0] == 1 && c->it.inner_stride[1] == 1;
  lc_iter_row_at(&c->it, row, idx, offs);
  while (b < e) {
    int64_t cnt = inner - col < e - b ? inner - col : e - b;
    char *d = c->d + (offs[0] + col * c->it.inner_stride[0]) * (int64_t)c->dsz;
    if (c->fill) {
      c->fill(d, c->it.inner_stride[0], c->s, cnt);
    } else {
      const char *s = c->s + (offs[1] + col * c->it.inner_stride[1]) * (int64_t)c->ssz;
      if (rows_memcpy)
        memcpy(d, s, (size_t)cnt * c->dsz);
      else
        c->cast(d, c->it.inner_stride[0], s, c->it.inner_stride[1], cnt);
    }
    b += cnt;
    col = 0;
    if (b < e) lc_iter_next_row(&c->it, idx, offs);
  }
}

/* Element-offset extent [lo, hi] a tensor touches in its storage. */
static void extent(const lc_tensor *t, int64_t *lo, int64_t *hi) {
  int64_t a = t->offset, b = t->offset;
  for (int i = 0; i < t->ndim; i++) {
    int64_t span = (t->shape[i] - 1) * t->strides[i];
    if (span > 0)
      b += span;
    else
      a += span;
  }
  *lo = a;
  *hi = b;
}

static bool same_layout(const lc_tensor *a, const lc_tensor *b) {
  if (a->dtype != b->dtype || a->ndim != b->ndim || a->offset != b->offset) return false;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i] || (a->shape[i] > 1 && a->strides[i] != b->strides[i]))
      return false;
  return true;
}

lc_status lc_k_copy(lc_tensor *dst, const lc_tensor *src) {
  /* src's strides over dst's shape; src may have extra leading dims of size 1. */
  int64_t sstr[LC_MAX_DIMS] = {0};
  int lead = dst->ndim - src->ndim;
  for (int j = 0; j < src->ndim; j++) {
    int i = j + lead;
    if (i < 0) {
      if (src->shape[j] != 1) goto bad_shape;
      continue;
    }
    if (src->shape[j] == dst->shape[i])
      sstr[i] = src->strides[j];
    else if (src->shape[j] == 1)
      sstr[i] = 0;
    else
      goto bad_shape;
  }
  if (dst->numel == 0) return LC_OK;

  /* Overlapping memory: copy through a contiguous temporary (identical layouts are a no-op). */
  if (dst->storage == src->storage) {
    if (same_layout(dst, src)) return LC_OK;
    int64_t dlo, dhi, slo, shi;
    extent(dst, &dlo, &dhi);
    extent(src, &slo, &shi);
    int64_t dbl = dlo * (int64_t)lc_dtype_size(dst->dtype),
            dbh = (dhi + 1) * (int64_t)lc_dtype_size(dst->dtype);
    int64_t sbl = slo * (int64_t)lc_dtype_size(src->dtype),
            sbh = (shi + 1) * (int64_t)lc_dtype_size(src->dtype);
    if (dbl < sbh && sbl < dbh) {
      lc_tensor *tmp = NULL;
      lc_status st = lc_tensor_new(src->ndim, src->shape, src->dtype, &tmp);
      if (st) return st;
      st = lc_k_copy(tmp, src);
      if (!st) st = lc_k_copy(dst, tmp);
      lc_release(tmp);
      return st;
    }
  }

  run_ctx c;
  memset(&c, 0, sizeof c);
  c.d = lc_data(dst);
  c.s = lc_data(src);
  c.dsz = lc_dtype_size(dst->dtype);
  c.ssz = lc_dtype_size(src->dtype);
  c.same_dtype = dst->dtype == src->dtype;
  c.cast = dst->dtype == src->dtype && lc_dtype_is_half(dst->dtype)
               ? cast_u16_same
               : cast_table[dst->dtype][src->dtype];
  if (dst->contiguous && src->contiguous && src->numel == dst->numel) {
    c.flat = true;
    c.is_memcpy = dst->dtype == src->dtype;
  } else {
    int64_t strides[2][LC_MAX_DIMS];
    memcpy(strides[0], dst->strides, sizeof strides[0]);
    memcpy(strides[1], sstr, sizeof strides[1]);
    lc_iter_init(&c.it, 2, dst->ndim, dst->shape, (const int64_t(*)[LC_MAX_DIMS])strides);
  }
  lc_parallel_for(dst->numel, c.is_memcpy ? 1 : 2, run_range, &c);
  return LC_OK;

bad_shape : {
  char a[256], b[256];
  return lc_set_error(LC_ESHAPE, "copy: source of shape %s cannot be broadcast to shape %s",
                      lc_shape_str(src->ndim, src->shape, a, sizeof a),
                      lc_shape_str(dst->ndim, dst->shape, b, sizeof b));
}
}

lc_status lc_k_fill(lc_tensor *t, double v) {
  union {
    float f32;
    double f64;
    int32_t i32;
    int64_t i64;
    uint8_t b;
    uint16_t u16;
  } val;
  switch (t->dtype) {
  case LC_FLOAT32: val.f32 = (float)v; break;
  case LC_FLOAT64: val.f64 = v; break;
  case LC_INT32:
    if (!(v >= -2147483648.0 && v < 2147483648.0))
      return lc_set_error(LC_EARG, "fill: value %g does not fit in int32", v);
    val.i32 = (int32_t)v;
    break;
  case LC_INT64:
    /* 2^63 is exactly representable; anything >= it (or NaN) does not fit. */
    if (!(v >= -9223372036854775808.0 && v < 9223372036854775808.0))
      return lc_set_error(LC_EARG, "fill: value %g does not fit in int64", v);
    val.i64 = (int64_t)v;
    break;
  case LC_BOOL: val.b = v != 0; break;
  case LC_FLOAT16: val.u16 = lc_h_from_f((float)v); break;
  case LC_BFLOAT16: val.u16 = lc_bf_from_f((float)v); break;
  default: return lc_set_error(LC_EDTYPE, "fill: invalid dtype %d", (int)t->dtype);
  }
  if (t->numel == 0) return LC_OK;
  run_ctx c;
  memset(&c, 0, sizeof c);
  c.d = lc_data(t);
  c.s = (const char *)&val;
  c.dsz = lc_dtype_size(t->dtype);
  c.fill = fill_table[t->dtype];
  if (t->contiguous) {
    c.flat = true;
  } else {
    lc_iter_init(&c.it, 1, t->ndim, t->shape, (const int64_t(*)[LC_MAX_DIMS])t->strides);
  }
  lc_parallel_for(t->numel, 1, run_range, &c);
  return LC_OK;
}
