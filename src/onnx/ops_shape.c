/* ops_shape.c - ONNX shape ops: views, reshapes, joins, indexing, constants. */
#include "onnx_internal.h"

#include <string.h>

lc_status ox_identity(ox_ctx *c) {
  c->out[0] = lc_retain(c->in[0]);
  return LC_OK;
}

/* Constant: a tensor attribute (value) or, from opset 12, value_float(s) / value_int(s). */
lc_status ox_constant(ox_ctx *c) {
  const Onnx__AttributeProto *a;
  if ((a = ox_attr(c->node, "value")) && a->t)
    return ox_tensor_from_proto(a->t, NULL, (int64_t)4 << 30, &c->out[0]);
  if ((a = ox_attr(c->node, "value_float")) && a->has_f) return lc_scalar(a->f, LC_FLOAT32, &c->out[0]);
  if ((a = ox_attr(c->node, "value_int")) && a->has_i) return lc_scalar((double)a->i, LC_INT64, &c->out[0]);
  if ((a = ox_attr(c->node, "value_floats"))) {
    int64_t shape[1] = {(int64_t)a->n_floats};
    return lc_from_data(1, shape, LC_FLOAT32, a->floats, &c->out[0]);
  }
  if ((a = ox_attr(c->node, "value_ints"))) {
    int64_t shape[1] = {(int64_t)a->n_ints};
    return lc_from_data(1, shape, LC_INT64, a->ints, &c->out[0]);
  }
  if (ox_attr(c->node, "sparse_value"))
    return ox_node_error(c, LC_EDTYPE, "sparse_value is not supported");
  if (ox_attr(c->node, "value_string") || ox_attr(c->node, "value_strings"))
    return ox_node_error(c, LC_EDTYPE, "string tensors are not supported");
  return ox_node_error(c, LC_EFORMAT, "no value attribute");
}

/* Reshape: 0 copies the input's dim (unless allowzero, opset 14), -1 is inferred. */
lc_status ox_reshape(ox_ctx *c) {
  const lc_tensor *x = c->in[0];
  int64_t shape[LC_MAX_DIMS];
  int n;
  if (c->n_in < 2 || !c->in[1]) {
    const int64_t *s;
    int64_t k = ox_attr_ints(c->node, "shape", &s); /* opset < 5 */
    if (k < 0 || k > LC_MAX_DIMS) return ox_node_error(c, LC_EFORMAT, "no shape");
    n = (int)k;
    memcpy(shape, s, (size_t)n * sizeof *shape);
  } else {
    lc_status st = ox_read_ints(c->in[1], "shape", shape, LC_MAX_DIMS, &n);
    if (st) return st;
  }
  bool allowzero = ox_attr_int(c->node, "allowzero", 0) != 0;
  for (int i = 0; i < n; i++) {
    if (shape[i] == 0 && !allowzero) {
      if (i >= lc_ndim(x))
        return ox_node_error(c, LC_ESHAPE, "shape[%d] = 0 copies a dim the input (rank %d) lacks", i,
                             lc_ndim(x));
      shape[i] = lc_shape(x)[i];
    } else if (shape[i] < -1) {
      return ox_node_error(c, LC_ESHAPE, "shape[%d] = %lld (expected >= -1)", i, (long long)shape[i]);
    }
  }
  return lc_reshape(x, n, shape, &c->out[0]);
}

/* Flatten: (prod(dims[:axis]), prod(dims[axis:])). */
lc_status ox_flatten(ox_ctx *c) {
  const lc_tensor *x = c->in[0];
  int r = lc_ndim(x);
  int64_t axis = ox_attr_int(c->node, "axis", 1);
  if (axis < -r || axis > r)
    return ox_node_error(c, LC_EINDEX, "axis %lld out of range for rank %d", (long long)axis, r);
  if (axis < 0) axis += r;
  int64_t a = 1, b = 1;
  for (int i = 0; i < r; i++) {
    if (i < axis) a *= lc_shape(x)[i];
    else b *= lc_shape(x)[i];
  }
  int64_t shape[2] = {a, b};
  return lc_reshape(x, 2, shape, &c->out[0]);
}
