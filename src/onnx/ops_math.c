/* ops_math.c - ONNX elementwise ops: arithmetic, comparison, logic, activations. */
#include "onnx_internal.h"

static bool is_int(lc_dtype dt) { return dt == LC_INT32 || dt == LC_INT64; }

static lc_status binary(ox_ctx *c, lc_binary_op op) {
  return lc_binary(op, c->in[0], c->in[1], &c->out[0]);
}

lc_status ox_add(ox_ctx *c) { return binary(c, LC_ADD); }
lc_status ox_sub(ox_ctx *c) { return binary(c, LC_SUB); }
lc_status ox_mul(ox_ctx *c) { return binary(c, LC_MUL); }

/* Integer Div truncates towards zero (C's rule, as ONNX's reference); float Div is true. */
lc_status ox_div(ox_ctx *c) {
  lc_dtype da = lc_dtype_of(c->in[0]), db = lc_dtype_of(c->in[1]);
  if (!is_int(da) || !is_int(db)) return binary(c, LC_DIV);
  lc_tensor *q, *t;
  lc_status st = lc_binary(LC_DIV, c->in[0], c->in[1], &q);
  if (st) return st;
  /* trunc = sign(q) * floor(|q|); exact for |values| < 2^53 in float64 */
  lc_tensor *q64;
  st = lc_to_dtype(q, LC_FLOAT64, &q64);
  lc_release(q);
  if (st) return st;
  lc_tensor *a = NULL, *f = NULL, *s = NULL;
  st = lc_unary(LC_ABS, q64, &a);
  if (!st) st = lc_unary_(LC_FLOOR, a);
  if (!st) st = lc_unary(LC_SIGN, q64, &s);
  if (!st) st = lc_binary(LC_MUL, a, s, &f);
  lc_release(q64);
  lc_release(a);
  lc_release(s);
  if (st) return st;
  st = lc_to_dtype(f, da == LC_INT64 || db == LC_INT64 ? LC_INT64 : LC_INT32, &t);
  lc_release(f);
  if (st) return st;
  c->out[0] = t;
  return LC_OK;
}

lc_status ox_relu(ox_ctx *c) { return lc_unary(LC_RELU, c->in[0], &c->out[0]); }
