/* ops_math.c - ONNX elementwise ops: arithmetic, unary math, comparison, logic, variadic
 * folds, Where, Clip and casts. Activations and softmax are in ops_activation.c. */
#include "onnx_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool is_int(lc_dtype dt) { return dt == LC_INT32 || dt == LC_INT64; }

/* ---------------------------------------------------------------- helpers */

/* The first n inputs must be given: the loader lets a node name "" (omitted) for any input,
 * required ones included. */
static lc_status need_inputs(const ox_ctx *c, int n) {
  for (int i = 0; i < n; i++)
    if (i >= c->n_in || !c->in[i]) return ox_node_error(c, LC_EARG, "input %d is missing", i);
  return LC_OK;
}

/* The float ops of ONNX take float tensors only. */
static lc_status map_float(ox_ctx *c, ox_scalar_fn f) {
  lc_status st0 = need_inputs(c, 1);
  if (st0) return st0;
  lc_dtype dt = lc_dtype_of(c->in[0]);
  if (!lc_dtype_is_float(dt))
    return ox_node_error(c, LC_EDTYPE, "a %s input is not supported (float types only)",
                         lc_dtype_name(dt));
  return ox_map_scalar(c, c->in[0], f, NULL, &c->out[0]);
}

/* NumPy's broadcast of a's and b's shapes into shape (nd dims). */
static lc_status broadcast_shape(const ox_ctx *c, const lc_tensor *a, const lc_tensor *b, int *nd,
                                 int64_t *shape) {
  int na = lc_ndim(a), nb = lc_ndim(b), n = na > nb ? na : nb;
  for (int i = 0; i < n; i++) {
    int64_t da = i < n - na ? 1 : lc_shape(a)[i - (n - na)];
    int64_t db = i < n - nb ? 1 : lc_shape(b)[i - (n - nb)];
    if (da != db && da != 1 && db != 1)
      return ox_node_error(c, LC_ESHAPE, "shapes do not broadcast: dim %d is %lld and %lld", i,
                           (long long)da, (long long)db);
    shape[i] = da == 1 ? db : da;
  }
  *nd = n;
  return LC_OK;
}

/* Both inputs broadcast and read in C order as int64 (ints) or float64 (fl) values, into
 * malloc'ed buffers (*pa, *pb, numel elements each). */
static lc_status read_pair(const ox_ctx *c, bool fl, int *nd, int64_t *shape, int64_t *numel,
                           void **pa, void **pb) {
  lc_status st = broadcast_shape(c, c->in[0], c->in[1], nd, shape);
  if (st) return st;
  int64_t n = 1;
  for (int i = 0; i < *nd; i++)
    n *= shape[i];
  *numel = n;
  *pa = malloc((size_t)(n ? n : 1) * 8);
  *pb = malloc((size_t)(n ? n : 1) * 8);
  if (!*pa || !*pb) st = lc_set_error(LC_ENOMEM, "out of memory");
  for (int k = 0; k < 2 && !st; k++) {
    lc_tensor *e;
    if ((st = lc_expand(c->in[k], *nd, shape, &e))) break;
    st = lc_copy_to_buffer(e, fl ? LC_FLOAT64 : LC_INT64, k ? *pb : *pa);
    lc_release(e);
  }
  if (st) {
    free(*pa);
    free(*pb);
    *pa = *pb = NULL;
  }
  return st;
}

/* A tensor from a float64/int64 buffer, converted to dt. */
static lc_status from_buffer(int nd, const int64_t *shape, lc_dtype src, const void *buf,
                             lc_dtype dt, lc_tensor **out) {
  lc_tensor *t;
  lc_status st = lc_from_data(nd, shape, src, buf, &t);
  if (st) return st;
  if (dt == src) {
    *out = t;
    return LC_OK;
  }
  st = lc_to_dtype(t, dt, out);
  lc_release(t);
  return st;
}

/* ---------------------------------------------------------------- arithmetic */

static lc_status binary(ox_ctx *c, lc_binary_op op) {
  lc_status st0 = need_inputs(c, 2);
  if (st0) return st0;
  return lc_binary(op, c->in[0], c->in[1], &c->out[0]);
}

lc_status ox_add(ox_ctx *c) { return binary(c, LC_ADD); }
lc_status ox_sub(ox_ctx *c) { return binary(c, LC_SUB); }
lc_status ox_mul(ox_ctx *c) { return binary(c, LC_MUL); }

/* Integer Div truncates towards zero (C's rule, as ONNX's reference), computed exactly in
 * int64 (lucid's integer division is a float one); a quotient by 0 is 0 (NumPy's result),
 * never a trap. Float Div is true division. */
lc_status ox_div(ox_ctx *c) {
  lc_status st = need_inputs(c, 2);
  if (st) return st;
  lc_dtype da = lc_dtype_of(c->in[0]), db = lc_dtype_of(c->in[1]);
  if (!is_int(da) || !is_int(db)) return binary(c, LC_DIV);
  int nd;
  int64_t shape[LC_MAX_DIMS], n;
  void *pa, *pb;
  if ((st = read_pair(c, false, &nd, shape, &n, &pa, &pb))) return st;
  int64_t *a = pa, *b = pb;
  for (int64_t i = 0; i < n; i++)
    a[i] = b[i] == 0 ? 0 : b[i] == -1 ? (int64_t)(0 - (uint64_t)a[i]) : a[i] / b[i];
  st = from_buffer(nd, shape, LC_INT64, a, da == LC_INT64 || db == LC_INT64 ? LC_INT64 : LC_INT32,
                   &c->out[0]);
  free(pa);
  free(pb);
  return st;
}

/* Pow: the result has the base's type (opset 12 allows an integer base with a float exponent
 * and the reverse); lucid computes in the promoted dtype, cast back to the base's. */
lc_status ox_pow(ox_ctx *c) {
  lc_status st0 = need_inputs(c, 2);
  if (st0) return st0;
  lc_dtype dt = lc_dtype_of(c->in[0]);
  if (dt == LC_BOOL || lc_dtype_of(c->in[1]) == LC_BOOL)
    return ox_node_error(c, LC_EDTYPE, "bool inputs are not supported");
  lc_tensor *p;
  lc_status st = lc_binary(LC_POW, c->in[0], c->in[1], &p);
  if (st) return st;
  if (lc_dtype_of(p) == dt) {
    c->out[0] = p;
    return LC_OK;
  }
  st = lc_to_dtype(p, dt, &c->out[0]);
  lc_release(p);
  return st;
}

/* Mod: fmod 0 gives the remainder with the divisor's sign (Python's %), fmod 1 C's fmod (the
 * dividend's sign). An integer remainder by 0 is 0 (NumPy's result), never a trap. */
static int64_t mod_int(int64_t a, int64_t b, bool fmod_) {
  if (b == 0 || b == -1) return 0; /* also keeps INT64_MIN % -1 from trapping */
  int64_t r = a % b;
  if (!fmod_ && r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

static double mod_float(double a, double b, bool fmod_) {
  double r = fmod(a, b);
  if (!fmod_ && r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

lc_status ox_mod(ox_ctx *c) {
  lc_status st0 = need_inputs(c, 2);
  if (st0) return st0;
  lc_dtype da = lc_dtype_of(c->in[0]), db = lc_dtype_of(c->in[1]);
  if (da != db)
    return ox_node_error(c, LC_EDTYPE, "inputs of different types (%s and %s) are not supported",
                         lc_dtype_name(da), lc_dtype_name(db));
  if (da == LC_BOOL) return ox_node_error(c, LC_EDTYPE, "bool inputs are not supported");
  bool fmod_ = ox_attr_int(c->node, "fmod", 0) != 0;
  bool fl = lc_dtype_is_float(da);
  int nd;
  int64_t shape[LC_MAX_DIMS], n;
  void *a, *b;
  lc_status st = read_pair(c, fl, &nd, shape, &n, &a, &b);
  if (st) return st;
  if (fl)
    for (int64_t i = 0; i < n; i++)
      ((double *)a)[i] = mod_float(((double *)a)[i], ((double *)b)[i], fmod_);
  else
    for (int64_t i = 0; i < n; i++)
      ((int64_t *)a)[i] = mod_int(((int64_t *)a)[i], ((int64_t *)b)[i], fmod_);
  st = from_buffer(nd, shape, fl ? LC_FLOAT64 : LC_INT64, a, da, &c->out[0]);
  free(a);
  free(b);
  return st;
}

/* BitShift over unsigned values. lucid holds uint8/uint16 as int32 and uint32 as int64, so a
 * left shift is not wrapped to the original width (uint64 tensors do not load at all). */
lc_status ox_bitshift(ox_ctx *c) {
  lc_status st0 = need_inputs(c, 2);
  if (st0) return st0;
  lc_dtype da = lc_dtype_of(c->in[0]), db = lc_dtype_of(c->in[1]);
  if (!is_int(da) || !is_int(db))
    return ox_node_error(c, LC_EDTYPE, "%s and %s inputs are not supported (integers only)",
                         lc_dtype_name(da), lc_dtype_name(db));
  char buf[16];
  const char *dir = ox_attr_string(c->node, "direction", "", buf, sizeof buf);
  bool left = strcmp(dir, "LEFT") == 0;
  if (!left && strcmp(dir, "RIGHT") != 0)
    return ox_node_error(c, LC_EARG, "direction '%s' is not supported (LEFT or RIGHT)", dir);
  int nd;
  int64_t shape[LC_MAX_DIMS], n;
  void *a, *b;
  lc_status st = read_pair(c, false, &nd, shape, &n, &a, &b);
  if (st) return st;
  int64_t *x = a, *y = b;
  for (int64_t i = 0; i < n; i++) {
    uint64_t v = (uint64_t)x[i];
    x[i] = y[i] < 0 || y[i] >= 64 ? 0 : (int64_t)(left ? v << y[i] : v >> y[i]);
  }
  st = from_buffer(nd, shape, LC_INT64, x, da == LC_INT64 || db == LC_INT64 ? LC_INT64 : LC_INT32,
                   &c->out[0]);
  free(a);
  free(b);
  return st;
}

/* ---------------------------------------------------------------- unary math */

static lc_status unary(ox_ctx *c, lc_unary_op op) {
  lc_status st0 = need_inputs(c, 1);
  if (st0) return st0;
  return lc_unary(op, c->in[0], &c->out[0]);
}

/* lucid's float unary ops turn integers into float32; ONNX's take floats only. */
static lc_status unary_float(ox_ctx *c, lc_unary_op op) {
  lc_status st0 = need_inputs(c, 1);
  if (st0) return st0;
  lc_dtype dt = lc_dtype_of(c->in[0]);
  if (!lc_dtype_is_float(dt))
    return ox_node_error(c, LC_EDTYPE, "a %s input is not supported (float types only)",
                         lc_dtype_name(dt));
  return unary(c, op);
}

lc_status ox_abs(ox_ctx *c) { return unary(c, LC_ABS); }
lc_status ox_neg(ox_ctx *c) { return unary(c, LC_NEG); }
lc_status ox_sign(ox_ctx *c) { return unary(c, LC_SIGN); }
lc_status ox_relu(ox_ctx *c) { return unary(c, LC_RELU); }
lc_status ox_exp(ox_ctx *c) { return unary_float(c, LC_EXP); }
lc_status ox_log(ox_ctx *c) { return unary_float(c, LC_LOG); }
lc_status ox_sqrt(ox_ctx *c) { return unary_float(c, LC_SQRT); }
lc_status ox_sin(ox_ctx *c) { return unary_float(c, LC_SIN); }
lc_status ox_cos(ox_ctx *c) { return unary_float(c, LC_COS); }
lc_status ox_tanh(ox_ctx *c) { return unary_float(c, LC_TANH); }
lc_status ox_sigmoid(ox_ctx *c) { return unary_float(c, LC_SIGMOID); }
lc_status ox_erf(ox_ctx *c) { return unary_float(c, LC_ERF); }
lc_status ox_floor(ox_ctx *c) { return unary_float(c, LC_FLOOR); }
lc_status ox_ceil(ox_ctx *c) { return unary_float(c, LC_CEIL); }
lc_status ox_round(ox_ctx *c) { return unary_float(c, LC_ROUND); } /* half to even, as ONNX */

lc_status ox_reciprocal(ox_ctx *c) {
  lc_status st0 = need_inputs(c, 1);
  if (st0) return st0;
  lc_dtype dt = lc_dtype_of(c->in[0]);
  if (!lc_dtype_is_float(dt))
    return ox_node_error(c, LC_EDTYPE, "a %s input is not supported (float types only)",
                         lc_dtype_name(dt));
  return lc_binary_scalar(LC_DIV, c->in[0], 1.0, true, &c->out[0]);
}

/* The ones lucid has no op for, through libm. */
#define OX_LIBM_(name)                                                                             \
  static double f_##name(double x, const double *p) {                                              \
    (void)p;                                                                                       \
    return name(x);                                                                                \
  }
OX_LIBM_(tan)
OX_LIBM_(asin)
OX_LIBM_(acos)
OX_LIBM_(atan)
OX_LIBM_(sinh)
OX_LIBM_(cosh)
OX_LIBM_(asinh)
OX_LIBM_(acosh)
OX_LIBM_(atanh)
#undef OX_LIBM_

lc_status ox_tan(ox_ctx *c) { return map_float(c, f_tan); }
lc_status ox_asin(ox_ctx *c) { return map_float(c, f_asin); }
lc_status ox_acos(ox_ctx *c) { return map_float(c, f_acos); }
lc_status ox_atan(ox_ctx *c) { return map_float(c, f_atan); }
lc_status ox_sinh(ox_ctx *c) { return map_float(c, f_sinh); }
lc_status ox_cosh(ox_ctx *c) { return map_float(c, f_cosh); }
lc_status ox_asinh(ox_ctx *c) { return map_float(c, f_asinh); }
lc_status ox_acosh(ox_ctx *c) { return map_float(c, f_acosh); }
lc_status ox_atanh(ox_ctx *c) { return map_float(c, f_atanh); }

/* IsNaN / IsInf -> bool; integer inputs hold neither. */
static lc_status classify(ox_ctx *c, bool nan, bool pos, bool neg) {
  lc_status st0 = need_inputs(c, 1);
  if (st0) return st0;
  const lc_tensor *x = c->in[0];
  lc_tensor *y;
  lc_status st = lc_zeros(lc_ndim(x), lc_shape(x), LC_BOOL, &y);
  if (st) return st;
  int64_t n = lc_numel(x);
  if (lc_dtype_is_float(lc_dtype_of(x)) && n > 0) {
    double *v = malloc((size_t)n * sizeof *v);
    if (!v) st = lc_set_error(LC_ENOMEM, "out of memory");
    if (!st) st = lc_copy_to_buffer(x, LC_FLOAT64, v);
    uint8_t *d = lc_data(y);
    for (int64_t i = 0; !st && i < n; i++)
      d[i] = nan ? isnan(v[i]) : (pos && v[i] == INFINITY) || (neg && v[i] == -INFINITY);
    free(v);
  }
  if (st) {
    lc_release(y);
    return st;
  }
  c->out[0] = y;
  return LC_OK;
}

lc_status ox_isnan(ox_ctx *c) { return classify(c, true, false, false); }

lc_status ox_isinf(ox_ctx *c) {
  return classify(c, false, ox_attr_int(c->node, "detect_positive", 1) != 0,
                  ox_attr_int(c->node, "detect_negative", 1) != 0);
}

/* ---------------------------------------------------------------- comparison and logic */

lc_status ox_equal(ox_ctx *c) { return binary(c, LC_EQ); }
lc_status ox_greater(ox_ctx *c) { return binary(c, LC_GT); }
lc_status ox_greater_or_equal(ox_ctx *c) { return binary(c, LC_GE); }
lc_status ox_less(ox_ctx *c) { return binary(c, LC_LT); }
lc_status ox_less_or_equal(ox_ctx *c) { return binary(c, LC_LE); }

static lc_status logic(ox_ctx *c, lc_binary_op op) {
  lc_status st0 = need_inputs(c, 2);
  if (st0) return st0;
  if (lc_dtype_of(c->in[0]) != LC_BOOL || lc_dtype_of(c->in[1]) != LC_BOOL)
    return ox_node_error(c, LC_EDTYPE, "%s and %s inputs are not supported (bool only)",
                         lc_dtype_name(lc_dtype_of(c->in[0])),
                         lc_dtype_name(lc_dtype_of(c->in[1])));
  return binary(c, op);
}

lc_status ox_and(ox_ctx *c) { return logic(c, LC_LOGICAL_AND); }
lc_status ox_or(ox_ctx *c) { return logic(c, LC_LOGICAL_OR); }
lc_status ox_xor(ox_ctx *c) { return logic(c, LC_LOGICAL_XOR); }

lc_status ox_not(ox_ctx *c) {
  lc_status st0 = need_inputs(c, 1);
  if (st0) return st0;
  if (lc_dtype_of(c->in[0]) != LC_BOOL)
    return ox_node_error(c, LC_EDTYPE, "a %s input is not supported (bool only)",
                         lc_dtype_name(lc_dtype_of(c->in[0])));
  return unary(c, LC_LOGICAL_NOT);
}

/* ---------------------------------------------------------------- variadic: Max Min Sum Mean */

/* in[0] op in[1] op ... with broadcasting (from opset 8; earlier shapes were equal anyway). */
static lc_status fold(ox_ctx *c, lc_binary_op op, lc_tensor **out) {
  for (int i = 0; i < c->n_in; i++)
    if (!c->in[i]) return ox_node_error(c, LC_EARG, "input %d is missing", i);
  if (c->n_in < 1) return ox_node_error(c, LC_EARG, "no inputs");
  lc_tensor *acc = lc_retain(c->in[0]);
  for (int i = 1; i < c->n_in; i++) {
    lc_tensor *r;
    lc_status st = lc_binary(op, acc, c->in[i], &r);
    lc_release(acc);
    if (st) return st;
    acc = r;
  }
  *out = acc;
  return LC_OK;
}

lc_status ox_max(ox_ctx *c) { return fold(c, LC_MAXIMUM, &c->out[0]); }
lc_status ox_min(ox_ctx *c) { return fold(c, LC_MINIMUM, &c->out[0]); }
lc_status ox_sum(ox_ctx *c) { return fold(c, LC_ADD, &c->out[0]); }

lc_status ox_mean(ox_ctx *c) {
  for (int i = 0; i < c->n_in; i++)
    if (c->in[i] && !lc_dtype_is_float(lc_dtype_of(c->in[i])))
      return ox_node_error(c, LC_EDTYPE, "a %s input is not supported (float types only)",
                           lc_dtype_name(lc_dtype_of(c->in[i])));
  lc_tensor *s;
  lc_status st = fold(c, LC_ADD, &s);
  if (st) return st;
  st = lc_binary_scalar(LC_DIV, s, (double)c->n_in, false, &c->out[0]);
  lc_release(s);
  return st;
}

/* ---------------------------------------------------------------- Where, Clip */

lc_status ox_where(ox_ctx *c) {
  lc_status st0 = need_inputs(c, 3);
  if (st0) return st0;
  if (lc_dtype_of(c->in[0]) != LC_BOOL)
    return ox_node_error(c, LC_EDTYPE, "a %s condition is not supported (bool only)",
                         lc_dtype_name(lc_dtype_of(c->in[0])));
  return lc_where(c->in[0], c->in[1], c->in[2], &c->out[0]);
}

/* A bound of Clip: an optional 0-dim (or one-element) input from opset 11, before that the
 * min/max attributes. */
static lc_status clip_bound(ox_ctx *c, int k, const char *name, bool *has, double *v) {
  *has = false;
  if (c->opset < 11) {
    const Onnx__AttributeProto *a = ox_attr(c->node, name);
    if (a && a->has_f) {
      *has = true;
      *v = a->f;
    }
    return LC_OK;
  }
  if (k >= c->n_in || !c->in[k]) return LC_OK;
  if (lc_numel(c->in[k]) != 1)
    return ox_node_error(c, LC_ESHAPE, "%s has %lld elements (expected a scalar)", name,
                         (long long)lc_numel(c->in[k]));
  *has = true;
  return lc_item(c->in[k], v);
}

lc_status ox_clip(ox_ctx *c) {
  lc_status st0 = need_inputs(c, 1);
  if (st0) return st0;
  bool has_lo, has_hi;
  double lo = 0, hi = 0;
  lc_status st = clip_bound(c, 1, "min", &has_lo, &lo);
  if (!st) st = clip_bound(c, 2, "max", &has_hi, &hi);
  if (st) return st;
  if (lc_dtype_of(c->in[0]) == LC_BOOL)
    return ox_node_error(c, LC_EDTYPE, "a bool input is not supported");
  if (!has_lo && !has_hi) {
    c->out[0] = lc_retain(c->in[0]);
    return LC_OK;
  }
  if (has_lo && has_hi && lo > hi) lo = hi; /* NumPy's clip: max wins */
  return lc_clamp(c->in[0], has_lo, lo, has_hi, hi, &c->out[0]);
}

/* ---------------------------------------------------------------- Cast, CastLike */

/* Values cast to an ONNX integer type lucid widens (int8, uint8, int16, uint16, uint32) wrap
 * to that type's range, as a C cast (and NumPy's astype) does; bits 0: no wrapping. */
static int onnx_int_bits(int32_t t, bool *is_signed) {
  *is_signed =
      t == ONNX__TENSOR_PROTO__DATA_TYPE__INT8 || t == ONNX__TENSOR_PROTO__DATA_TYPE__INT16;
  switch (t) {
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
  case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8: return 8;
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT16:
  case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16: return 16;
  case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32: return 32;
  default: return 0;
  }
}

static lc_status cast_wrapped(const lc_tensor *x, lc_dtype dt, int bits, bool sgn,
                              lc_tensor **out) {
  lc_tensor *w;
  lc_status st = lc_to_dtype(x, LC_INT64, &w);
  if (st) return st;
  lc_tensor *wc;
  st = lc_contiguous(w, &wc);
  lc_release(w);
  if (st) return st;
  /* a private copy to wrap in place (lc_to_dtype may have returned x itself) */
  st = lc_clone(wc, &w);
  lc_release(wc);
  if (st) return st;
  int64_t *d = lc_data(w);
  uint64_t mask = (UINT64_C(1) << bits) - 1;
  for (int64_t i = 0, n = lc_numel(w); i < n; i++) {
    uint64_t u = (uint64_t)d[i] & mask;
    d[i] = sgn && (u >> (bits - 1)) ? (int64_t)u - (int64_t)(mask + 1) : (int64_t)u;
  }
  st = lc_to_dtype(w, dt, out);
  lc_release(w);
  return st;
}

static lc_status cast_to(ox_ctx *c, const lc_tensor *x, lc_dtype dt, int bits, bool sgn) {
  if (bits) return cast_wrapped(x, dt, bits, sgn, &c->out[0]);
  return lc_to_dtype(x, dt, &c->out[0]);
}

lc_status ox_cast(ox_ctx *c) {
  lc_status st0 = need_inputs(c, 1);
  if (st0) return st0;
  const Onnx__AttributeProto *a = ox_attr(c->node, "to");
  if (!a || !a->has_i) return ox_node_error(c, LC_EFORMAT, "no 'to' attribute");
  lc_dtype dt;
  if (ox_dtype_from_onnx((int32_t)a->i, &dt))
    return ox_node_error(c, LC_EDTYPE, "casting to %s is not supported",
                         ox_onnx_type_name((int32_t)a->i));
  bool sgn;
  int bits = onnx_int_bits((int32_t)a->i, &sgn);
  return cast_to(c, c->in[0], dt, bits, sgn);
}

/* CastLike (opset 15): to the second input's dtype (an int8-family tensor arrives widened, so
 * no wrapping to its original range). */
lc_status ox_cast_like(ox_ctx *c) {
  lc_status st0 = need_inputs(c, 2);
  if (st0) return st0;
  return cast_to(c, c->in[0], lc_dtype_of(c->in[1]), 0, false);
}
