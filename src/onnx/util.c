/* util.c - helpers the op implementations share: integer inputs, axes, errors. */
#include "onnx_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

const char *ox_node_label(const ox_node *n) {
  const Onnx__NodeProto *p = n->proto;
  if (p->name && *p->name) return p->name;
  if (p->n_output && p->output[0] && *p->output[0]) return p->output[0];
  return "?";
}

lc_status ox_node_error(const ox_ctx *c, lc_status st, const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return lc_set_error(st, "onnx: node '%s' (%s, opset %d): %s", ox_node_label(c->node),
                      c->node->proto->op_type, c->opset, msg);
}

lc_status ox_read_ints(const lc_tensor *t, const char *what, int64_t *vals, int cap, int *n) {
  if (!t) return lc_set_error(LC_EARG, "%s: missing", what);
  lc_dtype dt = lc_dtype_of(t);
  if (dt != LC_INT64 && dt != LC_INT32)
    return lc_set_error(LC_EDTYPE, "%s: expected an int64 tensor, got %s", what, lc_dtype_name(dt));
  if (lc_ndim(t) > 1)
    return lc_set_error(LC_ESHAPE, "%s: expected a 1-D tensor, got %d dims", what, lc_ndim(t));
  int64_t cnt = lc_numel(t);
  if (cnt > cap)
    return lc_set_error(LC_ESHAPE, "%s: %lld values (at most %d)", what, (long long)cnt, cap);
  lc_status st = lc_copy_to_buffer(t, LC_INT64, vals);
  if (st) return st;
  *n = (int)cnt;
  return LC_OK;
}

lc_status ox_axis(int64_t axis, int rank, const char *what, int *out) {
  if (rank == 0 && (axis == 0 || axis == -1)) { /* a 0-dim tensor takes 0 and -1, as lucid's dims */
    *out = 0;
    return LC_OK;
  }
  if (axis < -(int64_t)rank || axis >= rank)
    return lc_set_error(LC_EINDEX, "%s: axis %lld out of range for rank %d (expected %d..%d)", what,
                        (long long)axis, rank, -rank, rank - 1);
  *out = (int)(axis < 0 ? axis + rank : axis);
  return LC_OK;
}

lc_status ox_int_tensor(int n, const int64_t *vals, lc_tensor **out) {
  int64_t shape[1] = {n};
  return lc_from_data(1, shape, LC_INT64, vals, out);
}

/* out = f(x) elementwise in x's dtype: float32 directly, every other number dtype through
 * float64 (halves and integers are converted back at the end). */
lc_status ox_map_scalar(const ox_ctx *c, const lc_tensor *x, ox_scalar_fn f, const double *p,
                        lc_tensor **out) {
  lc_dtype dt = lc_dtype_of(x);
  if (dt == LC_BOOL) return ox_node_error(c, LC_EDTYPE, "a bool input is not supported");
  lc_tensor *xc = NULL, *y = NULL;
  lc_status st;
  if (dt == LC_FLOAT32) {
    if ((st = lc_contiguous(x, &xc))) return st;
    if ((st = lc_empty(lc_ndim(x), lc_shape(x), LC_FLOAT32, &y))) {
      lc_release(xc);
      return st;
    }
    const float *s = lc_data(xc);
    float *d = lc_data(y);
    for (int64_t i = 0, n = lc_numel(x); i < n; i++)
      d[i] = (float)f(s[i], p);
    lc_release(xc);
    *out = y;
    return LC_OK;
  }
  if ((st = lc_to_dtype(x, LC_FLOAT64, &xc))) return st;
  st = lc_empty(lc_ndim(x), lc_shape(x), LC_FLOAT64, &y);
  if (!st) {
    double *d = lc_data(y);
    st = lc_copy_to_buffer(xc, LC_FLOAT64, d);
    for (int64_t i = 0, n = lc_numel(x); !st && i < n; i++)
      d[i] = f(d[i], p);
  }
  lc_release(xc);
  if (!st && dt != LC_FLOAT64) {
    lc_tensor *r;
    st = lc_to_dtype(y, dt, &r);
    lc_release(y);
    y = st ? NULL : r;
  }
  if (st) {
    lc_release(y);
    return st;
  }
  *out = y;
  return LC_OK;
}
