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
