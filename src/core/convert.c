/* convert.c - reading values out of tensors: item, get, copy to a buffer, equal, allclose. */
#include "core.h"

#include <math.h>
#include <string.h>

static lc_status check_tensor(const char *fn, const lc_tensor *t, const void *out) {
  if (!t) return lc_set_error(LC_EARG, "%s: tensor is NULL", fn);
  if (!out) return lc_set_error(LC_EARG, "%s: out is NULL", fn);
  return LC_OK;
}

static lc_status check_one(const char *fn, const lc_tensor *t) {
  if (t->numel != 1)
    return lc_set_error(LC_ESHAPE, "%s: expected a tensor with one element, got %lld elements", fn,
                        (long long)t->numel);
  return LC_OK;
}

lc_status lc_item(const lc_tensor *t, double *out) {
  lc_status st = check_tensor("item", t, out);
  if (!st) st = check_one("item", t);
  if (st) return st;
  *out = lc_load_f64(lc_data(t), t->dtype, 0);
  return LC_OK;
}

lc_status lc_item_int64(const lc_tensor *t, int64_t *out) {
  lc_status st = check_tensor("item_int64", t, out);
  if (!st) st = check_one("item_int64", t);
  if (st) return st;
  if (lc_dtype_is_float(t->dtype)) {
    double v = lc_load_f64(lc_data(t), t->dtype, 0);
    if (!(v >= -9223372036854775808.0 && v < 9223372036854775808.0))
      return lc_set_error(LC_EARG, "item_int64: value %g cannot be converted to int64", v);
    *out = (int64_t)v; /* truncates toward zero */
    return LC_OK;
  }
  *out = lc_load_i64(lc_data(t), t->dtype, 0);
  return LC_OK;
}

lc_status lc_get(const lc_tensor *t, const int64_t *index, double *out) {
  lc_status st = check_tensor("get", t, out);
  if (st) return st;
  if (t->ndim > 0 && !index) return lc_set_error(LC_EARG, "get: index is NULL");
  int64_t off = 0;
  for (int d = 0; d < t->ndim; d++) {
    if (index[d] < 0 || index[d] >= t->shape[d])
      return lc_set_error(LC_EINDEX, "get: index %lld is out of bounds for dim %d with size %lld",
                          (long long)index[d], d, (long long)t->shape[d]);
    off += index[d] * t->strides[d];
  }
  *out = lc_load_f64(lc_data(t), t->dtype, off);
  return LC_OK;
}

lc_status lc_copy_to_buffer(const lc_tensor *t, lc_dtype dt, void *buf) {
  if (!t) return lc_set_error(LC_EARG, "copy_to_buffer: tensor is NULL");
  if ((unsigned)dt >= LC_DTYPE_COUNT)
    return lc_set_error(LC_EDTYPE, "copy_to_buffer: invalid dtype %d", (int)dt);
  if (t->numel == 0) return LC_OK;
  if (!buf) return lc_set_error(LC_EARG, "copy_to_buffer: buf is NULL");
  /* A header on the stack describing buf as a contiguous tensor: lc_k_copy only reads layout
   * fields and the storage's data pointer, and nothing retains or releases it. */
  lc_storage s;
  memset(&s, 0, sizeof s);
  s.data = buf;
  s.nbytes = (size_t)t->numel * lc_dtype_size(dt);
  lc_tensor d;
  memset(&d, 0, sizeof d);
  d.storage = &s;
  d.dtype = dt;
  d.ndim = t->ndim;
  memcpy(d.shape, t->shape, sizeof d.shape);
  lc_contiguous_strides(d.ndim, d.shape, d.strides);
  lc_tensor_refresh(&d);
  return lc_k_copy(&d, t);
}

/* Calls visit(ctx, a_offset, b_offset) for every element pair of a and b (strides over
 * (ndim, shape)) in C order until it returns false; returns whether all returned true. */
typedef bool (*pair_fn)(void *ctx, int64_t ia, int64_t ib);
static bool all_pairs(int ndim, const int64_t *shape, const int64_t *sa, const int64_t *sb,
                      pair_fn visit, void *ctx) {
  int64_t st[2][LC_MAX_DIMS];
  memcpy(st[0], sa, sizeof st[0]);
  memcpy(st[1], sb, sizeof st[1]);
  lc_iter it;
  lc_iter_init(&it, 2, ndim, shape, (const int64_t(*)[LC_MAX_DIMS])st);
  for (int64_t r = 0; r < it.outer; r++) {
    int64_t offs[LC_ITER_MAX_OPS];
    lc_iter_row(&it, r, offs);
    for (int64_t j = 0; j < it.inner; j++)
      if (!visit(ctx, offs[0] + j * it.inner_stride[0], offs[1] + j * it.inner_stride[1]))
        return false;
  }
  return true;
}

typedef struct cmp_ctx {
  const void *a, *b;
  lc_dtype da, db;
  double rtol, atol;
  bool equal_nan;
} cmp_ctx;

static bool eq_float(void *vc, int64_t ia, int64_t ib) {
  const cmp_ctx *c = vc;
  return lc_load_f64(c->a, c->da, ia) == lc_load_f64(c->b, c->db, ib);
}

static bool eq_int(void *vc, int64_t ia, int64_t ib) {
  const cmp_ctx *c = vc;
  return lc_load_i64(c->a, c->da, ia) == lc_load_i64(c->b, c->db, ib);
}

static bool close_pair(void *vc, int64_t ia, int64_t ib) {
  const cmp_ctx *c = vc;
  return lc_close_f64(lc_load_f64(c->a, c->da, ia), lc_load_f64(c->b, c->db, ib), c->rtol, c->atol,
                      c->equal_nan);
}

lc_status lc_equal(const lc_tensor *a, const lc_tensor *b, bool *out) {
  if (!a || !b) return lc_set_error(LC_EARG, "equal: tensor is NULL");
  if (!out) return lc_set_error(LC_EARG, "equal: out is NULL");
  if (a->ndim != b->ndim || memcmp(a->shape, b->shape, (size_t)a->ndim * sizeof(int64_t))) {
    *out = false;
    return LC_OK;
  }
  cmp_ctx c = {.a = lc_data(a), .b = lc_data(b), .da = a->dtype, .db = b->dtype};
  /* Integers (and bools) compare exactly as int64; anything involving a float as double. */
  bool ints = !lc_dtype_is_float(a->dtype) && !lc_dtype_is_float(b->dtype);
  *out = all_pairs(a->ndim, a->shape, a->strides, b->strides, ints ? eq_int : eq_float, &c);
  return LC_OK;
}

lc_status lc_allclose(const lc_tensor *a, const lc_tensor *b, double rtol, double atol, bool *out) {
  return lc_allclose_ex(a, b, rtol, atol, false, out);
}

lc_status lc_allclose_ex(const lc_tensor *a, const lc_tensor *b, double rtol, double atol,
                         bool equal_nan, bool *out) {
  if (!a || !b) return lc_set_error(LC_EARG, "allclose: tensor is NULL");
  if (!out) return lc_set_error(LC_EARG, "allclose: out is NULL");
  if (!(rtol >= 0) || !(atol >= 0))
    return lc_set_error(LC_EARG,
                        "allclose: rtol and atol must be non-negative, got rtol = %g, atol = %g",
                        rtol, atol);
  int ndim = 0;
  int64_t shape[LC_MAX_DIMS], sa[LC_MAX_DIMS] = {0}, sb[LC_MAX_DIMS] = {0};
  lc_status st =
      lc_broadcast_shapes(a->ndim, a->shape, b->ndim, b->shape, &ndim, shape, "allclose");
  if (st) return st;
  lc_broadcast_strides(a, ndim, shape, sa);
  lc_broadcast_strides(b, ndim, shape, sb);
  cmp_ctx c = {.a = lc_data(a),
               .b = lc_data(b),
               .da = a->dtype,
               .db = b->dtype,
               .rtol = rtol,
               .atol = atol,
               .equal_nan = equal_nan};
  *out = all_pairs(ndim, shape, sa, sb, close_pair, &c);
  return LC_OK;
}
