/* create.c - tensor creation: constants, ranges, wrapped buffers and random tensors.
 *
 * Random fills take one block of counters from the process-wide generator (random.c); element i
 * (in C order) of the result gets counter base + i, so the values are a pure function of the
 * seed, the call sequence and the index, never of the thread count. */
#include "core.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ argument checks */

static lc_status check_dtype(const char *fn, lc_dtype dt) {
  if ((unsigned)dt >= LC_DTYPE_COUNT)
    return lc_set_error(LC_EDTYPE,
                        "%s: invalid dtype %d (expected float32, float64, float16, "
                        "bfloat16, int32, int64 or bool)",
                        fn, (int)dt);
  return LC_OK;
}

static lc_status check_args(const char *fn, int ndim, const int64_t *shape, lc_dtype dt) {
  lc_status st = check_dtype(fn, dt);
  return st ? st : lc_check_shape(fn, ndim, shape);
}

/* A value stored into dtype dt must be representable (ints: finite and in range). */
static lc_status check_value(const char *fn, double v, lc_dtype dt) {
  if (dt == LC_INT32 && !(v >= -2147483648.0 && v < 2147483648.0))
    return lc_set_error(LC_EARG, "%s: value %g does not fit in int32", fn, v);
  if (dt == LC_INT64 && !(v >= -9223372036854775808.0 && v < 9223372036854775808.0))
    return lc_set_error(LC_EARG, "%s: value %g does not fit in int64", fn, v);
  return LC_OK;
}

static lc_status check_out(const char *fn, lc_tensor **out) {
  if (!out) return lc_set_error(LC_EARG, "%s: out is NULL", fn);
  return LC_OK;
}

/* ------------------------------------------------------------------ constants */

lc_status lc_empty(int ndim, const int64_t *shape, lc_dtype dt, lc_tensor **out) {
  lc_status st = check_args("empty", ndim, shape, dt);
  if (!st) st = check_out("empty", out);
  if (st) return st;
  return lc_tensor_new(ndim, shape, dt, out);
}

/* A new tensor filled with v (v already checked against dt). */
static lc_status new_filled(const char *fn, int ndim, const int64_t *shape, double v, lc_dtype dt,
                            lc_tensor **out) {
  lc_status st = check_args(fn, ndim, shape, dt);
  if (!st) st = check_out(fn, out);
  if (!st) st = check_value(fn, v, dt);
  if (st) return st;
  lc_tensor *t = NULL;
  st = lc_tensor_new(ndim, shape, dt, &t);
  if (st) return st;
  if (v == 0.0 && !signbit(v)) {
    memset(t->storage->data, 0, t->storage->nbytes); /* all-zero bytes are 0 in every dtype */
  } else {
    st = lc_k_fill(t, v);
    if (st) {
      lc_release(t);
      return st;
    }
  }
  *out = t;
  return LC_OK;
}

lc_status lc_zeros(int ndim, const int64_t *shape, lc_dtype dt, lc_tensor **out) {
  return new_filled("zeros", ndim, shape, 0.0, dt, out);
}

lc_status lc_ones(int ndim, const int64_t *shape, lc_dtype dt, lc_tensor **out) {
  return new_filled("ones", ndim, shape, 1.0, dt, out);
}

lc_status lc_full(int ndim, const int64_t *shape, double value, lc_dtype dt, lc_tensor **out) {
  return new_filled("full", ndim, shape, value, dt, out);
}

lc_status lc_scalar(double value, lc_dtype dt, lc_tensor **out) {
  return new_filled("scalar", 0, NULL, value, dt, out);
}

lc_status lc_from_data(int ndim, const int64_t *shape, lc_dtype dt, const void *data,
                       lc_tensor **out) {
  lc_status st = check_args("from_data", ndim, shape, dt);
  if (!st) st = check_out("from_data", out);
  if (st) return st;
  if (!data) {
    bool empty = false; /* (no product here: it could overflow before lc_tensor_new checks) */
    for (int i = 0; i < ndim; i++)
      empty |= shape[i] == 0;
    if (!empty) return lc_set_error(LC_EARG, "from_data: data is NULL for a non-empty tensor");
  }
  lc_tensor *t = NULL;
  st = lc_tensor_new(ndim, shape, dt, &t);
  if (st) return st;
  size_t nbytes = (size_t)t->numel * lc_dtype_size(dt);
  if (dt == LC_BOOL) {
    /* Bool storage holds exactly 0 or 1. */
    const uint8_t *src = data;
    uint8_t *dst = t->storage->data;
    for (int64_t i = 0; i < t->numel; i++)
      dst[i] = src[i] != 0;
  } else if (nbytes) {
    memcpy(t->storage->data, data, nbytes);
  }
  *out = t;
  return LC_OK;
}

lc_status lc_from_buffer(int ndim, const int64_t *shape, lc_dtype dt, void *data,
                         void (*release)(void *ctx, void *data), void *ctx, lc_tensor **out) {
  lc_status st = check_args("from_buffer", ndim, shape, dt);
  if (!st) st = check_out("from_buffer", out);
  if (st) return st;
  int64_t n = lc_shape_numel(ndim, shape); /* fits: lc_check_shape */
  size_t esz = lc_dtype_size(dt);
  if (n && !data)
    return lc_set_error(LC_EARG, "from_buffer: data is NULL for %lld elements", (long long)n);
  if ((uintptr_t)data % esz)
    return lc_set_error(LC_EARG, "from_buffer: data is not aligned to %zu bytes (the size of %s)",
                        esz, lc_dtype_name(dt));
  lc_tensor *t = calloc(1, sizeof *t);
  if (!t) return lc_error_oom(sizeof *t);
  t->storage = lc_storage_wrap(data, (size_t)n * esz, release, ctx);
  if (!t->storage) {
    free(t);
    return LC_ENOMEM;
  }
  atomic_init(&t->refcount, 1);
  t->dtype = dt;
  t->ndim = ndim;
  if (ndim) memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
  lc_contiguous_strides(ndim, shape, t->strides);
  lc_tensor_refresh(t);
  *out = t;
  return LC_OK;
}

/* ------------------------------------------------------------------ ranges */

/* Element i = start + i * step computed in double, stored as dt. */
static void store_affine(lc_tensor *t, double start, double step) {
  void *d = t->storage->data;
  for (int64_t i = 0; i < t->numel; i++)
    lc_store_f64(d, t->dtype, i, start + (double)i * step);
}

lc_status lc_arange(double start, double end, double step, lc_dtype dt, lc_tensor **out) {
  lc_status st = check_dtype("arange", dt);
  if (!st) st = check_out("arange", out);
  if (st) return st;
  if (dt == LC_BOOL) return lc_set_error(LC_EDTYPE, "arange: expected a numeric dtype, got bool");
  if (!isfinite(start) || !isfinite(end) || !isfinite(step))
    return lc_set_error(LC_EARG, "arange: start, end and step must be finite, got %g, %g, %g",
                        start, end, step);
  if (step == 0) return lc_set_error(LC_EARG, "arange: step must be non-zero");
  if ((end - start) / step < 0)
    return lc_set_error(LC_EARG,
                        "arange: the step's sign does not lead from start %g to end %g (step %g)",
                        start, end, step);
  double count = ceil((end - start) / step);
  if (!(count < 9.0e15)) return lc_set_error(LC_EARG, "arange: too many elements (%g)", count);
  int64_t n = (int64_t)count;
  if (n > 0) {
    double last = start + (double)(n - 1) * step;
    if ((st = check_value("arange", start, dt)) || (st = check_value("arange", last, dt)))
      return st;
  }
  lc_tensor *t = NULL;
  st = lc_tensor_new(1, &n, dt, &t);
  if (st) return st;
  store_affine(t, start, step);
  *out = t;
  return LC_OK;
}

lc_status lc_linspace(double start, double end, int64_t steps, lc_dtype dt, lc_tensor **out) {
  lc_status st = check_dtype("linspace", dt);
  if (!st) st = check_out("linspace", out);
  if (st) return st;
  if (dt == LC_BOOL) return lc_set_error(LC_EDTYPE, "linspace: expected a numeric dtype, got bool");
  if (steps < 0)
    return lc_set_error(LC_EARG, "linspace: steps must be non-negative, got %lld",
                        (long long)steps);
  if (!isfinite(start) || !isfinite(end))
    return lc_set_error(LC_EARG, "linspace: start and end must be finite, got %g and %g", start,
                        end);
  if ((st = check_value("linspace", start, dt)) || (st = check_value("linspace", end, dt)))
    return st;
  lc_tensor *t = NULL;
  st = lc_tensor_new(1, &steps, dt, &t);
  if (st) return st;
  void *d = t->storage->data;
  if (steps == 1) {
    lc_store_f64(d, dt, 0, start);
  } else if (steps > 1) {
    /* Like PyTorch: the first half counts up from start, the second half down from end, so
     * both endpoints are exact. */
    double step = (end - start) / (double)(steps - 1);
    int64_t half = steps / 2;
    for (int64_t i = 0; i < steps; i++) {
      double v = i < half ? start + step * (double)i : end - step * (double)(steps - 1 - i);
      lc_store_f64(d, dt, i, v);
    }
  }
  *out = t;
  return LC_OK;
}

lc_status lc_eye(int64_t n, int64_t m, lc_dtype dt, lc_tensor **out) {
  if (n < 0 || m < 0)
    return lc_set_error(LC_EARG, "eye: sizes must be non-negative, got n = %lld, m = %lld",
                        (long long)n, (long long)m);
  int64_t shape[2] = {n, m};
  lc_tensor *t = NULL;
  lc_status st = new_filled("eye", 2, shape, 0.0, dt, &t);
  if (st) return st;
  int64_t k = n < m ? n : m;
  for (int64_t i = 0; i < k; i++)
    lc_store_f64(t->storage->data, dt, i * m + i, 1.0);
  *out = t;
  return LC_OK;
}

static lc_status check_like(const char *fn, const lc_tensor *t, lc_tensor **out) {
  if (!t) return lc_set_error(LC_EARG, "%s: tensor is NULL", fn);
  return check_out(fn, out);
}

lc_status lc_empty_like(const lc_tensor *t, lc_tensor **out) {
  lc_status st = check_like("empty_like", t, out);
  return st ? st : lc_tensor_new(t->ndim, t->shape, t->dtype, out);
}

lc_status lc_zeros_like(const lc_tensor *t, lc_tensor **out) {
  lc_status st = check_like("zeros_like", t, out);
  return st ? st : new_filled("zeros_like", t->ndim, t->shape, 0.0, t->dtype, out);
}

lc_status lc_ones_like(const lc_tensor *t, lc_tensor **out) {
  lc_status st = check_like("ones_like", t, out);
  return st ? st : new_filled("ones_like", t->ndim, t->shape, 1.0, t->dtype, out);
}

lc_status lc_full_like(const lc_tensor *t, double value, lc_tensor **out) {
  lc_status st = check_like("full_like", t, out);
  return st ? st : new_filled("full_like", t->ndim, t->shape, value, t->dtype, out);
}

/* ------------------------------------------------------------------ random fills */

typedef enum { RND_UNIFORM, RND_NORMAL, RND_INT } rnd_kind;

typedef struct rnd_ctx {
  rnd_kind kind;
  lc_dtype dt;
  bool flat;
  lc_iter it;
  char *data;
  uint64_t seed, base;
  double a, b;     /* uniform: [a, b); normal: mean a, std b */
  int64_t ilow;    /* randint: low */
  uint64_t irange; /* randint: high - low (> 0) */
} rnd_ctx;

/* Uniform integer in [0, range) from 64 random bits (multiply-high; bias <= range / 2^64). */
static inline uint64_t bounded(uint64_t bits, uint64_t range) {
  return (uint64_t)(((unsigned __int128)bits * range) >> 64);
}

/* Writes n values with element stride `stride`, the first taking counter `ctr`. */
static void rnd_row(const rnd_ctx *c, char *p, int64_t stride, uint64_t ctr, int64_t n) {
  const uint64_t s = c->seed;
  switch (c->kind) {
  case RND_UNIFORM:
    if (c->dt == LC_FLOAT32) {
      float *d = (float *)p, lo = (float)c->a, hi = (float)c->b;
      for (int64_t i = 0; i < n; i++) {
        float v = (float)(c->a + (c->b - c->a) * lc_rng_uniform(s, ctr + (uint64_t)i));
        /* rounding to float32 may land on the open upper bound */
        d[i * stride] = v < hi || lo == hi ? v : nextafterf(hi, lo);
      }
    } else if (lc_dtype_is_half(c->dt)) {
      /* rounding to half may land on the open upper bound: the half just below it instead */
      uint16_t *d = (uint16_t *)p, hb;
      lc_store_f64(&hb, c->dt, 0, c->b);
      uint16_t below = c->b > 0 ? (uint16_t)(hb - 1) : c->b < 0 ? (uint16_t)(hb + 1) : 0x8001u;
      for (int64_t i = 0; i < n; i++) {
        double v = c->a + (c->b - c->a) * lc_rng_uniform(s, ctr + (uint64_t)i);
        lc_store_f64(d, c->dt, i * stride, v);
        if (!(lc_load_f64(d, c->dt, i * stride) < c->b) && c->a != c->b) d[i * stride] = below;
      }
    } else {
      double *d = (double *)p;
      for (int64_t i = 0; i < n; i++) {
        double v = c->a + (c->b - c->a) * lc_rng_uniform(s, ctr + (uint64_t)i);
        d[i * stride] = v < c->b || c->a == c->b ? v : nextafter(c->b, c->a);
      }
    }
    break;
  case RND_NORMAL: {
    /* Elements 2k and 2k+1 are the cosine and sine halves of one Box-Muller pair drawn from
     * counter base + k (the cosine half equals lc_rng_normal): one log and one sincos per two
     * values. A chunk starting at an odd element recomputes its pair, so values still depend
     * only on the element's index. */
    const uint64_t first = ctr - c->base; /* flat index of the row's first element */
    for (int64_t i = 0; i < n;) {
      uint64_t idx = first + (uint64_t)i, k = c->base + idx / 2;
      uint64_t a = lc_rng_bits(s, k), b = lc_rng_bits(s, k ^ (UINT64_C(1) << 63));
      double u1 = (double)((a >> 11) + 1) * 0x1.0p-53;
      double u2 = (double)(b >> 11) * 0x1.0p-53;
      double r = sqrt(-2.0 * log(u1)), sn, cs;
      sincos(6.283185307179586 * u2, &sn, &cs);
      double z[2] = {c->a + c->b * r * cs, c->a + c->b * r * sn};
      int j = (int)(idx & 1);
      for (; j < 2 && i < n; j++, i++) {
        if (c->dt == LC_FLOAT32)
          ((float *)p)[i * stride] = (float)z[j];
        else if (c->dt == LC_FLOAT64)
          ((double *)p)[i * stride] = z[j];
        else
          lc_store_f64(p, c->dt, i * stride, z[j]);
      }
    }
    break;
  }
  case RND_INT:
    for (int64_t i = 0; i < n; i++) {
      /* two's complement wrap-around: low + offset never leaves [low, high) */
      uint64_t off = bounded(lc_rng_bits(s, ctr + (uint64_t)i), c->irange);
      int64_t v = (int64_t)((uint64_t)c->ilow + off);
      switch (c->dt) {
      case LC_INT64: ((int64_t *)p)[i * stride] = v; break;
      case LC_INT32: ((int32_t *)p)[i * stride] = (int32_t)v; break;
      case LC_FLOAT32: ((float *)p)[i * stride] = (float)v; break;
      case LC_FLOAT64: ((double *)p)[i * stride] = (double)v; break;
      case LC_FLOAT16:
      case LC_BFLOAT16: lc_store_f64(p, c->dt, i * stride, (double)v); break;
      default: ((uint8_t *)p)[i * stride] = v != 0; break;
      }
    }
    break;
  }
}

static void rnd_range(void *vctx, int64_t b, int64_t e) {
  const rnd_ctx *c = vctx;
  const int64_t esz = (int64_t)lc_dtype_size(c->dt);
  if (c->flat) {
    rnd_row(c, c->data + b * esz, 1, c->base + (uint64_t)b, e - b);
    return;
  }
  const int64_t inner = c->it.inner;
  int64_t row = b / inner, col = b % inner;
  while (b < e) {
    int64_t off;
    lc_iter_row(&c->it, row, &off);
    int64_t cnt = inner - col < e - b ? inner - col : e - b;
    rnd_row(c, c->data + (off + col * c->it.inner_stride[0]) * esz, c->it.inner_stride[0],
            c->base + (uint64_t)b, cnt);
    b += cnt;
    row++;
    col = 0;
  }
}

/* Fills t (any layout) in C order; element i uses counter base + i. */
static void rnd_fill(lc_tensor *t, rnd_ctx *c) {
  c->dt = t->dtype;
  c->data = lc_data(t);
  c->base = lc_rng_reserve((uint64_t)t->numel, &c->seed);
  if (t->numel == 0) return;
  c->flat = t->contiguous;
  if (!c->flat) {
    /* Coalescing must keep C order, which it does (dims are never reordered). */
    lc_iter_init(&c->it, 1, t->ndim, t->shape, (const int64_t(*)[LC_MAX_DIMS])t->strides);
  }
  lc_parallel_for(t->numel, 16, rnd_range, c);
}

static lc_status check_float(const char *fn, lc_dtype dt) {
  if (!lc_dtype_is_float(dt))
    return lc_set_error(
        LC_EDTYPE, "%s: expected a float dtype (float32, float64, float16 or bfloat16), got %s", fn,
        lc_dtype_name(dt));
  return LC_OK;
}

static lc_status new_random(const char *fn, int ndim, const int64_t *shape, lc_dtype dt, rnd_ctx *c,
                            lc_tensor **out) {
  lc_status st = check_args(fn, ndim, shape, dt);
  if (!st) st = check_out(fn, out);
  if (!st && c->kind != RND_INT) st = check_float(fn, dt);
  if (st) return st;
  lc_tensor *t = NULL;
  st = lc_tensor_new(ndim, shape, dt, &t);
  if (st) return st;
  rnd_fill(t, c);
  *out = t;
  return LC_OK;
}

lc_status lc_rand(int ndim, const int64_t *shape, lc_dtype dt, lc_tensor **out) {
  rnd_ctx c = {.kind = RND_UNIFORM, .a = 0.0, .b = 1.0};
  return new_random("rand", ndim, shape, dt, &c, out);
}

lc_status lc_randn(int ndim, const int64_t *shape, lc_dtype dt, lc_tensor **out) {
  rnd_ctx c = {.kind = RND_NORMAL, .a = 0.0, .b = 1.0};
  return new_random("randn", ndim, shape, dt, &c, out);
}

lc_status lc_randint(int64_t low, int64_t high, int ndim, const int64_t *shape, lc_dtype dt,
                     lc_tensor **out) {
  lc_status st = check_dtype("randint", dt);
  if (st) return st;
  if (low >= high)
    return lc_set_error(LC_EARG, "randint: expected low < high, got low = %lld, high = %lld",
                        (long long)low, (long long)high);
  if (dt == LC_INT32 && (low < INT32_MIN || high - 1 > INT32_MAX))
    return lc_set_error(LC_EARG, "randint: range [%lld, %lld) does not fit in int32",
                        (long long)low, (long long)high);
  if (dt == LC_BOOL && (low < 0 || high > 2))
    return lc_set_error(LC_EARG, "randint: range [%lld, %lld) does not fit in bool (0 or 1)",
                        (long long)low, (long long)high);
  rnd_ctx c = {.kind = RND_INT, .ilow = low, .irange = (uint64_t)high - (uint64_t)low};
  return new_random("randint", ndim, shape, dt, &c, out);
}

lc_status lc_uniform_(lc_tensor *t, double low, double high) {
  if (!t) return lc_set_error(LC_EARG, "uniform_: tensor is NULL");
  lc_status st = check_float("uniform_", t->dtype);
  if (st) return st;
  if (!isfinite(low) || !isfinite(high))
    return lc_set_error(LC_EARG, "uniform_: bounds must be finite, got low = %g, high = %g", low,
                        high);
  if (low > high)
    return lc_set_error(LC_EARG, "uniform_: expected low <= high, got low = %g, high = %g", low,
                        high);
  if (!isfinite(high - low))
    return lc_set_error(LC_EARG, "uniform_: high - low overflows (low = %g, high = %g)", low, high);
  rnd_ctx c = {.kind = RND_UNIFORM, .a = low, .b = high};
  rnd_fill(t, &c);
  lc_bump_version(t);
  return LC_OK;
}

lc_status lc_normal_(lc_tensor *t, double mean, double std) {
  if (!t) return lc_set_error(LC_EARG, "normal_: tensor is NULL");
  lc_status st = check_float("normal_", t->dtype);
  if (st) return st;
  if (!isfinite(mean) || !isfinite(std))
    return lc_set_error(LC_EARG, "normal_: mean and std must be finite, got mean = %g, std = %g",
                        mean, std);
  if (std < 0) return lc_set_error(LC_EARG, "normal_: expected std >= 0, got %g", std);
  rnd_ctx c = {.kind = RND_NORMAL, .a = mean, .b = std};
  rnd_fill(t, &c);
  lc_bump_version(t);
  return LC_OK;
}

lc_status lc_randperm(int64_t n, lc_tensor **out) {
  lc_status st = check_out("randperm", out);
  if (st) return st;
  if (n < 0)
    return lc_set_error(LC_EARG, "randperm: n must be non-negative, got %lld", (long long)n);
  lc_tensor *t = NULL;
  st = lc_tensor_new(1, &n, LC_INT64, &t);
  if (st) return st;
  int64_t *p = t->storage->data;
  for (int64_t i = 0; i < n; i++)
    p[i] = i;
  /* Fisher-Yates: step i swaps p[i] with p[j], j uniform in [0, i], drawn from counter base+i. */
  uint64_t seed = 0;
  uint64_t base = lc_rng_reserve((uint64_t)n, &seed);
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)bounded(lc_rng_bits(seed, base + (uint64_t)i), (uint64_t)i + 1);
    int64_t tmp = p[i];
    p[i] = p[j];
    p[j] = tmp;
  }
  *out = t;
  return LC_OK;
}
