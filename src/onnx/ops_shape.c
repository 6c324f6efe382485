/* ops_shape.c - ONNX shape ops: views, reshapes, joins, indexing, constants. */
#include "onnx_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* n int64 values from an attribute (a loop: an empty attribute's pointer may be NULL). */
static void copy_ints(int64_t *dst, const int64_t *src, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    dst[i] = src[i];
}

lc_status ox_identity(ox_ctx *c) {
  c->out[0] = lc_retain(c->in[0]);
  return LC_OK;
}

/* Constant: a tensor attribute (value) or, from opset 12, value_float(s) / value_int(s). */
lc_status ox_constant(ox_ctx *c) {
  const Onnx__AttributeProto *a;
  if ((a = ox_attr(c->node, "value")) && a->t)
    return ox_tensor_from_proto(a->t, NULL, (int64_t)4 << 30, &c->out[0]);
  if ((a = ox_attr(c->node, "value_float")) && a->has_f)
    return lc_scalar(a->f, LC_FLOAT32, &c->out[0]);
  if ((a = ox_attr(c->node, "value_int")) && a->has_i)
    return lc_scalar((double)a->i, LC_INT64, &c->out[0]);
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
    copy_ints(shape, s, n);
  } else {
    lc_status st = ox_read_ints(c->in[1], "shape", shape, LC_MAX_DIMS, &n);
    if (st) return st;
  }
  bool allowzero = ox_attr_int(c->node, "allowzero", 0) != 0;
  for (int i = 0; i < n; i++) {
    if (shape[i] == 0 && !allowzero) {
      if (i >= lc_ndim(x))
        return ox_node_error(c, LC_ESHAPE, "shape[%d] = 0 copies a dim the input (rank %d) lacks",
                             i, lc_ndim(x));
      shape[i] = lc_shape(x)[i];
    } else if (shape[i] < -1) {
      return ox_node_error(c, LC_ESHAPE, "shape[%d] = %lld (expected >= -1)", i,
                           (long long)shape[i]);
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
    if (i < axis)
      a *= lc_shape(x)[i];
    else
      b *= lc_shape(x)[i];
  }
  int64_t shape[2] = {a, b};
  return lc_reshape(x, 2, shape, &c->out[0]);
}

/* ---------------------------------------------------------------- shared helpers */

/* One integer from a 0-dim or one-element 1-D integer tensor. */
static lc_status read_int_scalar(const ox_ctx *c, const lc_tensor *t, const char *what,
                                 int64_t *out) {
  int64_t v[1] = {0};
  int n = 0;
  lc_status st = ox_read_ints(t, what, v, 1, &n);
  if (st) return st;
  if (n != 1) return ox_node_error(c, LC_ESHAPE, "%s: expected one value, got %d", what, n);
  *out = v[0];
  return LC_OK;
}

/* The axes of Squeeze / Unsqueeze: the attribute before opset `since`, the optional input
 * `input` from it. *n is -1 when none are given. */
static lc_status read_axes(const ox_ctx *c, int input, int since, int64_t *vals, int *n) {
  *n = -1;
  if (c->opset >= since) {
    if (c->n_in > input && c->in[input])
      return ox_read_ints(c->in[input], "axes", vals, LC_MAX_DIMS, n);
    return LC_OK;
  }
  const int64_t *a;
  int64_t k = ox_attr_ints(c->node, "axes", &a);
  if (k > LC_MAX_DIMS)
    return ox_node_error(c, LC_ESHAPE, "%lld axes (at most %d)", (long long)k, LC_MAX_DIMS);
  if (k >= 0) {
    copy_ints(vals, a, k);
    *n = (int)k;
  }
  return LC_OK;
}

/* Wraps n ONNX axes against rank into dims, refusing repeats. */
static lc_status wrap_axes(const ox_ctx *c, const int64_t *axes, int n, int rank, int *dims) {
  bool seen[LC_MAX_DIMS] = {false};
  for (int i = 0; i < n; i++) {
    lc_status st = ox_axis(axes[i], rank, "axes", &dims[i]);
    if (st) return st;
    if (rank > 0 && seen[dims[i]])
      return ox_node_error(c, LC_EARG, "axis %lld repeats", (long long)axes[i]);
    if (rank > 0) seen[dims[i]] = true;
  }
  return LC_OK;
}

static lc_status give(ox_ctx *c, int j, lc_status st, lc_tensor *t) {
  if (st) {
    lc_release(t);
    return st;
  }
  c->out[j] = t;
  return LC_OK;
}

/* ---------------------------------------------------------------- shapes */

/* Shape: the input's dims as int64; start and end (opset 15) pick a range, clamped. */
lc_status ox_shape(ox_ctx *c) {
  int r = lc_ndim(c->in[0]);
  int64_t start = ox_attr_int(c->node, "start", 0), end = ox_attr_int(c->node, "end", r);
  if (start < 0) start += r;
  if (end < 0) end += r;
  start = start < 0 ? 0 : start > r ? r : start;
  end = end < 0 ? 0 : end > r ? r : end;
  if (end < start) end = start;
  int64_t dims[LC_MAX_DIMS];
  copy_ints(dims, lc_shape(c->in[0]) + start, end - start);
  return ox_int_tensor((int)(end - start), dims, &c->out[0]);
}

lc_status ox_size(ox_ctx *c) {
  int64_t n = lc_numel(c->in[0]);
  return lc_from_data(0, NULL, LC_INT64, &n, &c->out[0]);
}

/* Transpose: perm, by default the dims reversed. */
lc_status ox_transpose(ox_ctx *c) {
  int r = lc_ndim(c->in[0]);
  int dims[LC_MAX_DIMS];
  const int64_t *perm;
  int64_t k = ox_attr_ints(c->node, "perm", &perm);
  if (k < 0) {
    for (int i = 0; i < r; i++)
      dims[i] = r - 1 - i;
  } else {
    if (k != r)
      return ox_node_error(c, LC_ESHAPE, "perm has %lld entries for rank %d", (long long)k, r);
    lc_status st = wrap_axes(c, perm, r, r, dims);
    if (st) return st;
  }
  if (r == 0) {
    c->out[0] = lc_retain(c->in[0]);
    return LC_OK;
  }
  return lc_permute(c->in[0], dims, &c->out[0]);
}

/* Squeeze: the listed dims (each of size 1) or every size-1 dim; axes an input from opset 13. */
lc_status ox_squeeze(ox_ctx *c) {
  const lc_tensor *x = c->in[0];
  int r = lc_ndim(x), n, dims[LC_MAX_DIMS];
  int64_t axes[LC_MAX_DIMS], shape[LC_MAX_DIMS];
  lc_status st = read_axes(c, 1, 13, axes, &n);
  if (st) return st;
  bool drop[LC_MAX_DIMS] = {false};
  if (n <= 0) { /* no axes (or an empty list, as onnxruntime reads it): every size-1 dim */
    for (int i = 0; i < r; i++)
      drop[i] = lc_shape(x)[i] == 1;
  } else {
    if ((st = wrap_axes(c, axes, n, r, dims))) return st;
    for (int i = 0; i < n && r > 0; i++) {
      if (lc_shape(x)[dims[i]] != 1)
        return ox_node_error(c, LC_ESHAPE, "cannot squeeze dim %d of size %lld", dims[i],
                             (long long)lc_shape(x)[dims[i]]);
      drop[dims[i]] = true;
    }
  }
  int k = 0;
  for (int i = 0; i < r; i++)
    if (!drop[i]) shape[k++] = lc_shape(x)[i];
  return lc_reshape(x, k, shape, &c->out[0]);
}

/* Unsqueeze: size-1 dims inserted at axes (of the output's rank); axes an input from opset 13. */
lc_status ox_unsqueeze(ox_ctx *c) {
  const lc_tensor *x = c->in[0];
  int r = lc_ndim(x), n, dims[LC_MAX_DIMS];
  int64_t axes[LC_MAX_DIMS], shape[LC_MAX_DIMS];
  lc_status st = read_axes(c, 1, 13, axes, &n);
  if (st) return st;
  if (n < 0) return ox_node_error(c, LC_EARG, "no axes");
  if (r + n > LC_MAX_DIMS) return ox_node_error(c, LC_ESHAPE, "rank %d is not supported", r + n);
  int ro = r + n;
  if ((st = wrap_axes(c, axes, n, ro, dims))) return st;
  bool ins[LC_MAX_DIMS] = {false};
  for (int i = 0; i < n; i++)
    ins[dims[i]] = true;
  for (int i = 0, k = 0; i < ro; i++)
    shape[i] = ins[i] ? 1 : lc_shape(x)[k++];
  return lc_reshape(x, ro, shape, &c->out[0]);
}

lc_status ox_concat(ox_ctx *c) {
  int dim;
  for (int i = 0; i < c->n_in; i++)
    if (!c->in[i]) return ox_node_error(c, LC_EARG, "input %d is missing", i);
  lc_status st = ox_axis(ox_attr_int(c->node, "axis", 0), lc_ndim(c->in[0]), "axis", &dim);
  if (st) return st;
  if (lc_ndim(c->in[0]) == 0) return ox_node_error(c, LC_ESHAPE, "0-dim inputs");
  return lc_cat(c->n_in, c->in, dim, &c->out[0]);
}

/* Split: sizes from the split attribute (before opset 13) or input, else equal parts. */
lc_status ox_split(ox_ctx *c) {
  const lc_tensor *x = c->in[0];
  int dim, n = -1;
  lc_status st = ox_axis(ox_attr_int(c->node, "axis", 0), lc_ndim(x), "axis", &dim);
  if (st) return st;
  if (lc_ndim(x) == 0) return ox_node_error(c, LC_ESHAPE, "0-dim input");
  int64_t *sizes = malloc((size_t)(c->n_out + 1) * sizeof *sizes);
  if (!sizes) return LC_ENOMEM;
  int64_t len = lc_shape(x)[dim];
  if (c->opset >= 13) {
    if (c->n_in > 1 && c->in[1]) st = ox_read_ints(c->in[1], "split", sizes, c->n_out + 1, &n);
    if (!st && n == 0) n = -1; /* an empty list: equal parts */
  } else {
    const int64_t *s;
    int64_t k = ox_attr_ints(c->node, "split", &s);
    if (k > c->n_out)
      st = ox_node_error(c, LC_ESHAPE, "%lld split sizes for %d outputs", (long long)k, c->n_out);
    else if (k >= 0)
      copy_ints(sizes, s, n = (int)k);
  }
  if (!st && n < 0) { /* equal parts (opset 18's uneven last part too) */
    int64_t part = (len + c->n_out - 1) / c->n_out;
    for (int i = 0; i < c->n_out; i++) {
      int64_t rest = len - part * i;
      sizes[i] = rest < 0 ? 0 : rest < part ? rest : part;
    }
    n = c->n_out;
  }
  int64_t sum = 0;
  for (int i = 0; !st && i < n; i++) {
    if (sizes[i] < 0) st = ox_node_error(c, LC_ESHAPE, "split[%d] = %lld", i, (long long)sizes[i]);
    sum += sizes[i];
  }
  if (!st && (n != c->n_out || sum != len))
    st = ox_node_error(c, LC_ESHAPE,
                       "%d split sizes summing to %lld for %d outputs and a dim of %lld", n,
                       (long long)sum, c->n_out, (long long)len);
  lc_tensor **outs = NULL;
  int got = 0;
  if (!st) st = lc_split_sizes(x, n, sizes, dim, &got, &outs);
  free(sizes);
  if (st) return st;
  for (int i = 0; i < got; i++) {
    if (i < c->n_out)
      c->out[i] = outs[i];
    else
      lc_release(outs[i]);
  }
  lc_free(outs);
  return LC_OK;
}

/* One axis of Slice: ONNX's clamping rules, a negative step through a flip. */
static lc_status slice_dim(const lc_tensor *t, int d, int64_t s, int64_t e, int64_t step,
                           lc_tensor **out) {
  int64_t n = lc_shape(t)[d];
  if (s < 0) s += n;
  if (e < 0) e += n;
  if (step > 0) {
    s = s < 0 ? 0 : s > n ? n : s;
    e = e < 0 ? 0 : e > n ? n : e;
    return lc_slice(t, d, s, e < s ? s : e, step, out);
  }
  if (n == 0) return lc_slice(t, d, 0, 0, 1, out);
  s = s < 0 ? 0 : s > n - 1 ? n - 1 : s;
  e = e < -1 ? -1 : e > n - 1 ? n - 1 : e;
  /* element i of t is element n-1-i of the flipped tensor */
  int64_t fs = n - 1 - s, fe = n - 1 - e;
  lc_tensor *f;
  lc_status st = lc_flip(t, 1, &d, &f);
  if (st) return st;
  st = lc_slice(f, d, fs, fe < fs ? fs : fe, step == INT64_MIN ? INT64_MAX : -step, out);
  lc_release(f);
  return st;
}

/* Slice: starts, ends, axes (attributes before opset 10; inputs from 10, with steps). */
lc_status ox_slice(ox_ctx *c) {
  const lc_tensor *x = c->in[0];
  int r = lc_ndim(x), ns = 0, ne = 0, na = -1, nst = -1, dims[LC_MAX_DIMS];
  int64_t starts[LC_MAX_DIMS], ends[LC_MAX_DIMS], axes[LC_MAX_DIMS], steps[LC_MAX_DIMS];
  lc_status st = LC_OK;
  if (c->opset >= 10) {
    if (c->n_in < 3 || !c->in[1] || !c->in[2])
      return ox_node_error(c, LC_EARG, "starts and ends are required");
    if ((st = ox_read_ints(c->in[1], "starts", starts, LC_MAX_DIMS, &ns))) return st;
    if ((st = ox_read_ints(c->in[2], "ends", ends, LC_MAX_DIMS, &ne))) return st;
    if (c->n_in > 3 && c->in[3] && (st = ox_read_ints(c->in[3], "axes", axes, LC_MAX_DIMS, &na)))
      return st;
    if (c->n_in > 4 && c->in[4] && (st = ox_read_ints(c->in[4], "steps", steps, LC_MAX_DIMS, &nst)))
      return st;
  } else {
    const int64_t *v;
    int64_t k;
    if ((k = ox_attr_ints(c->node, "starts", &v)) < 0 || k > LC_MAX_DIMS)
      return ox_node_error(c, LC_EARG, "bad starts");
    copy_ints(starts, v, ns = (int)k);
    if ((k = ox_attr_ints(c->node, "ends", &v)) < 0 || k > LC_MAX_DIMS)
      return ox_node_error(c, LC_EARG, "bad ends");
    copy_ints(ends, v, ne = (int)k);
    if ((k = ox_attr_ints(c->node, "axes", &v)) > LC_MAX_DIMS)
      return ox_node_error(c, LC_EARG, "bad axes");
    if (k >= 0) copy_ints(axes, v, na = (int)k);
  }
  if (ne != ns || (na >= 0 && na != ns) || (nst >= 0 && nst != ns))
    return ox_node_error(c, LC_ESHAPE, "starts, ends, axes and steps differ in length");
  if (na < 0) {
    if (ns > r) return ox_node_error(c, LC_ESHAPE, "%d starts for rank %d", ns, r);
    for (int i = 0; i < ns; i++)
      axes[i] = i;
  }
  if (r == 0 && ns > 0) return ox_node_error(c, LC_ESHAPE, "cannot slice a 0-dim tensor");
  if ((st = wrap_axes(c, axes, ns, r, dims))) return st;
  lc_tensor *cur = lc_retain((lc_tensor *)x);
  for (int i = 0; i < ns; i++) {
    int64_t step = nst >= 0 ? steps[i] : 1;
    if (step == 0) {
      lc_release(cur);
      return ox_node_error(c, LC_EARG, "steps[%d] is 0", i);
    }
    lc_tensor *next;
    st = slice_dim(cur, dims[i], starts[i], ends[i], step, &next);
    lc_release(cur);
    if (st) return st;
    cur = next;
  }
  c->out[0] = cur;
  return LC_OK;
}

/* Expand: the input broadcast with shape (both ways: a 1 in shape keeps the input's dim). */
lc_status ox_expand(ox_ctx *c) {
  const lc_tensor *x = c->in[0];
  int64_t shape[LC_MAX_DIMS], out[LC_MAX_DIMS];
  int n, r = lc_ndim(x);
  lc_status st = ox_read_ints(c->in[1], "shape", shape, LC_MAX_DIMS, &n);
  if (st) return st;
  int ro = n > r ? n : r;
  for (int i = 0; i < ro; i++) {
    int ia = i - (ro - r), ib = i - (ro - n);
    int64_t a = ia >= 0 ? lc_shape(x)[ia] : 1, b = ib >= 0 ? shape[ib] : 1;
    if (b < 0) return ox_node_error(c, LC_ESHAPE, "shape[%d] = %lld", ib, (long long)b);
    if (a != b && a != 1 && b != 1)
      return ox_node_error(c, LC_ESHAPE, "dim %lld does not broadcast to %lld", (long long)a,
                           (long long)b);
    out[i] = a == 1 ? b : a;
  }
  return lc_expand(x, ro, out, &c->out[0]);
}

/* Tile: each dim repeated, dim by dim: unsqueeze, expand, merge. */
lc_status ox_tile(ox_ctx *c) {
  const lc_tensor *x = c->in[0];
  int r = lc_ndim(x), n;
  int64_t reps[LC_MAX_DIMS], shape[LC_MAX_DIMS + 1];
  lc_status st = ox_read_ints(c->in[1], "repeats", reps, LC_MAX_DIMS, &n);
  if (st) return st;
  if (n != r) return ox_node_error(c, LC_ESHAPE, "%d repeats for rank %d", n, r);
  lc_tensor *cur = lc_retain((lc_tensor *)x);
  for (int d = 0; d < r && !st; d++) {
    if (reps[d] < 0) st = ox_node_error(c, LC_EARG, "repeats[%d] = %lld", d, (long long)reps[d]);
    if (st || reps[d] == 1) continue;
    int k = 0;
    for (int i = 0; i < r; i++) {
      if (i == d) shape[k++] = reps[d];
      shape[k++] = lc_shape(cur)[i];
    }
    lc_tensor *u = NULL, *e = NULL, *m = NULL;
    st = lc_unsqueeze(cur, d, &u);
    if (!st) st = lc_expand(u, r + 1, shape, &e);
    for (int i = 0; i < r; i++)
      shape[i] = lc_shape(cur)[i];
    shape[d] *= reps[d];
    if (!st) st = lc_reshape(e, r, shape, &m);
    lc_release(u);
    lc_release(e);
    lc_release(cur);
    cur = m;
  }
  return give(c, 0, st, cur);
}

/* ConstantOfShape: the value attribute's one element (default float32 0) filling shape. */
lc_status ox_constant_of_shape(ox_ctx *c) {
  int64_t shape[LC_MAX_DIMS], ones[LC_MAX_DIMS];
  int n;
  lc_status st = ox_read_ints(c->in[0], "shape", shape, LC_MAX_DIMS, &n);
  if (st) return st;
  for (int i = 0; i < n; i++) {
    if (shape[i] < 0)
      return ox_node_error(c, LC_ESHAPE, "shape[%d] = %lld", i, (long long)shape[i]);
    ones[i] = 1;
  }
  const Onnx__AttributeProto *a = ox_attr(c->node, "value");
  lc_tensor *v = NULL, *v1 = NULL, *e = NULL;
  if (a && a->t)
    st = ox_tensor_from_proto(a->t, NULL, 1 << 20, &v);
  else
    st = lc_zeros(0, NULL, LC_FLOAT32, &v);
  if (st) return st;
  if (lc_numel(v) != 1)
    st = ox_node_error(c, LC_ESHAPE, "value has %lld elements", (long long)lc_numel(v));
  if (!st) st = lc_reshape(v, n, ones, &v1);
  if (!st) st = lc_expand(v1, n, shape, &e);
  if (!st) st = lc_contiguous(e, &c->out[0]);
  lc_release(v);
  lc_release(v1);
  lc_release(e);
  return st;
}

/* Range: start, start + delta, ... before limit, in the inputs' dtype. */
lc_status ox_range(ox_ctx *c) {
  lc_dtype dt = lc_dtype_of(c->in[0]);
  for (int i = 0; i < 3; i++)
    if (lc_numel(c->in[i]) != 1) return ox_node_error(c, LC_ESHAPE, "input %d is not a scalar", i);
  bool integral = dt == LC_INT32 || dt == LC_INT64;
  double s, l, d;
  int64_t s64 = 0, l64 = 0, d64 = 0;
  lc_status st;
  if ((st = lc_item(c->in[0], &s)) || (st = lc_item(c->in[1], &l)) || (st = lc_item(c->in[2], &d)))
    return st;
  if (integral && ((st = lc_item_int64(c->in[0], &s64)) || (st = lc_item_int64(c->in[1], &l64)) ||
                   (st = lc_item_int64(c->in[2], &d64))))
    return st;
  if (d == 0) return ox_node_error(c, LC_EARG, "delta is 0");
  double cnt = ceil((l - s) / d);
  if (integral) { /* exactly, in unsigned arithmetic (the span may pass INT64_MAX) */
    uint64_t span = d64 > 0 ? (uint64_t)l64 - (uint64_t)s64 : (uint64_t)s64 - (uint64_t)l64;
    uint64_t step = d64 > 0 ? (uint64_t)d64 : 0 - (uint64_t)d64;
    bool any = d64 > 0 ? l64 > s64 : l64 < s64;
    cnt = any ? (double)((span - 1) / step + 1) : 0;
  }
  if (!(cnt > 0)) cnt = 0;
  if (cnt > (double)((int64_t)1 << 40)) return ox_node_error(c, LC_ESHAPE, "%g elements", cnt);
  int64_t n = (int64_t)cnt;
  lc_tensor *t;
  if ((st = lc_empty(1, &n, integral ? LC_INT64 : LC_FLOAT64, &t))) return st;
  if (integral) {
    int64_t *p = lc_data(t);
    for (int64_t i = 0; i < n; i++)
      p[i] = (int64_t)((uint64_t)s64 + (uint64_t)i * (uint64_t)d64);
  } else {
    double *p = lc_data(t);
    for (int64_t i = 0; i < n; i++)
      p[i] = s + (double)i * d;
  }
  st = lc_to_dtype(t, dt, &c->out[0]);
  lc_release(t);
  return st;
}

/* EyeLike: ones on diagonal k of a 2-D tensor, in the dtype attribute's type or the input's. */
lc_status ox_eye_like(ox_ctx *c) {
  const lc_tensor *x = c->in[0];
  if (lc_ndim(x) != 2)
    return ox_node_error(c, LC_ESHAPE, "expected a 2-D input, got %d dims", lc_ndim(x));
  lc_dtype dt = lc_dtype_of(x);
  const Onnx__AttributeProto *a = ox_attr(c->node, "dtype");
  if (a && a->has_i) {
    lc_status st = ox_dtype_from_onnx((int32_t)a->i, &dt);
    if (st) return st;
  }
  int64_t rows = lc_shape(x)[0], cols = lc_shape(x)[1], k = ox_attr_int(c->node, "k", 0);
  lc_tensor *t;
  lc_status st = lc_zeros(2, lc_shape(x), LC_FLOAT64, &t);
  if (st) return st;
  double *p = lc_data(t);
  for (int64_t i = 0; i < rows; i++)
    if (i + k >= 0 && i + k < cols) p[i * cols + i + k] = 1;
  st = lc_to_dtype(t, dt, &c->out[0]);
  lc_release(t);
  return st;
}

/* Trilu (opset 14): the upper (default) or lower triangle from diagonal k (optional input). */
lc_status ox_trilu(ox_ctx *c) {
  int64_t k = 0;
  if (c->n_in > 1 && c->in[1]) {
    lc_status st = read_int_scalar(c, c->in[1], "k", &k);
    if (st) return st;
  }
  if (lc_ndim(c->in[0]) < 2) return ox_node_error(c, LC_ESHAPE, "expected at least 2 dims");
  if (ox_attr_int(c->node, "upper", 1)) return lc_triu(c->in[0], k, &c->out[0]);
  return lc_tril(c->in[0], k, &c->out[0]);
}

/* reshape to `split` (6 dims), permute by perm, reshape to `merged` (4 dims) */
static lc_status rearrange(const lc_tensor *x, const int64_t *split, const int *perm,
                           const int64_t *merged, lc_tensor **out) {
  lc_tensor *a = NULL, *b = NULL;
  lc_status st = lc_reshape(x, 6, split, &a);
  if (!st) st = lc_permute(a, perm, &b);
  if (!st) st = lc_reshape(b, 4, merged, out);
  lc_release(a);
  lc_release(b);
  return st;
}

static lc_status block_args(const ox_ctx *c, int64_t *b, const int64_t **s) {
  const lc_tensor *x = c->in[0];
  if (lc_ndim(x) != 4)
    return ox_node_error(c, LC_ESHAPE, "expected a 4-D input, got %d dims", lc_ndim(x));
  *b = ox_attr_int(c->node, "blocksize", 0);
  if (*b <= 0 || *b > ((int64_t)1 << 20))
    return ox_node_error(c, LC_EARG, "blocksize %lld", (long long)*b);
  *s = lc_shape(x);
  return LC_OK;
}

/* DepthToSpace: mode DCR (default; depth, column, row) or CRD (opset 11). */
lc_status ox_depth_to_space(ox_ctx *c) {
  int64_t b = 1;
  const int64_t *s = NULL;
  lc_status st = block_args(c, &b, &s);
  if (st) return st;
  if (s[1] % (b * b))
    return ox_node_error(c, LC_ESHAPE, "channels %lld not divisible by %lld", (long long)s[1],
                         (long long)(b * b));
  char buf[16];
  const char *mode = ox_attr_string(c->node, "mode", "DCR", buf, sizeof buf);
  int64_t cc = s[1] / (b * b), merged[4] = {s[0], cc, s[2] * b, s[3] * b};
  if (strcmp(mode, "DCR") == 0) {
    int64_t split[6] = {s[0], b, b, cc, s[2], s[3]};
    int perm[6] = {0, 3, 4, 1, 5, 2};
    return rearrange(c->in[0], split, perm, merged, &c->out[0]);
  }
  if (strcmp(mode, "CRD") == 0) {
    int64_t split[6] = {s[0], cc, b, b, s[2], s[3]};
    int perm[6] = {0, 1, 4, 2, 5, 3};
    return rearrange(c->in[0], split, perm, merged, &c->out[0]);
  }
  return ox_node_error(c, LC_EARG, "mode '%s' is not supported", mode);
}

lc_status ox_space_to_depth(ox_ctx *c) {
  int64_t b = 1;
  const int64_t *s = NULL;
  lc_status st = block_args(c, &b, &s);
  if (st) return st;
  if (s[2] % b || s[3] % b)
    return ox_node_error(c, LC_ESHAPE, "spatial dims not divisible by %lld", (long long)b);
  int64_t split[6] = {s[0], s[1], s[2] / b, b, s[3] / b, b};
  int perm[6] = {0, 3, 5, 1, 2, 4};
  int64_t merged[4] = {s[0], s[1] * b * b, s[2] / b, s[3] / b};
  return rearrange(c->in[0], split, perm, merged, &c->out[0]);
}

/* CumSum: along the axis input; exclusive shifts by one, reverse scans from the end. */
/* s shifted by one along dim, a zero slice in front (CumSum's exclusive). */
static lc_status shift_in_zero(const lc_tensor *s, int dim, lc_tensor **out) {
  int64_t n = lc_ndim(s) ? lc_shape(s)[dim] : 1;
  if (lc_ndim(s) == 0 || n == 0) return lc_zeros_like(s, out);
  lc_tensor *head = NULL, *first = NULL, *parts[2] = {NULL, NULL};
  lc_status st = lc_narrow(s, dim, 0, n - 1, &head);
  if (!st) st = lc_narrow(s, dim, 0, 1, &first);
  if (!st) st = lc_zeros_like(first, &parts[0]);
  parts[1] = head;
  if (!st) st = lc_cat(2, parts, dim, out);
  lc_release(head);
  lc_release(first);
  lc_release(parts[0]);
  return st;
}

lc_status ox_cumsum(ox_ctx *c) {
  const lc_tensor *x = c->in[0];
  int64_t axis = 0;
  int dim;
  lc_status st = read_int_scalar(c, c->in[1], "axis", &axis);
  if (st || (st = ox_axis(axis, lc_ndim(x), "axis", &dim))) return st;
  bool reverse = ox_attr_int(c->node, "reverse", 0) != 0;
  bool exclusive = ox_attr_int(c->node, "exclusive", 0) != 0;
  lc_dtype dt = lc_dtype_of(x);
  if (dt == LC_BOOL) return ox_node_error(c, LC_EDTYPE, "bool input is not supported");
  /* reverse: the scan of the flipped input, flipped back */
  lc_tensor *a = NULL, *s = NULL, *e = NULL, *y = NULL;
  if (reverse)
    st = lc_flip(x, 1, &dim, &a);
  else
    a = lc_retain((lc_tensor *)x);
  if (!st) st = lc_cumsum(a, dim, lc_dtype_is_float(dt) ? NULL : &dt, &s);
  if (!st && exclusive)
    st = shift_in_zero(s, dim, &e);
  else if (!st)
    e = lc_retain(s);
  if (!st && reverse)
    st = lc_flip(e, 1, &dim, &y);
  else if (!st)
    y = lc_retain(e);
  lc_release(a);
  lc_release(s);
  lc_release(e);
  if (!st) c->out[0] = y;
  return st;
}

/* TopK: k from the attribute (before opset 10) or input; largest and sorted from opset 11. */
lc_status ox_topk(ox_ctx *c) {
  const lc_tensor *x = c->in[0];
  int64_t k = 0;
  int dim;
  lc_status st = LC_OK;
  if (c->opset >= 10) {
    if (c->n_in < 2 || !c->in[1]) return ox_node_error(c, LC_EARG, "K is required");
    st = read_int_scalar(c, c->in[1], "K", &k);
  } else {
    k = ox_attr_int(c->node, "k", -1);
  }
  if (st || (st = ox_axis(ox_attr_int(c->node, "axis", -1), lc_ndim(x), "axis", &dim))) return st;
  int64_t n = lc_ndim(x) ? lc_shape(x)[dim] : 1;
  if (k < 0 || k > n)
    return ox_node_error(c, LC_EARG, "k = %lld for a dim of %lld", (long long)k, (long long)n);
  bool largest = ox_attr_int(c->node, "largest", 1) != 0;
  bool sorted = ox_attr_int(c->node, "sorted", 1) != 0;
  lc_tensor *v, *i;
  if ((st = lc_topk(x, k, dim, largest, sorted, &v, &i))) return st;
  c->out[0] = v;
  if (c->n_out > 1)
    c->out[1] = i;
  else
    lc_release(i);
  return LC_OK;
}

/* ArgMax / ArgMin: select_last_index (opset 12) through a flip. */
static lc_status arg_extreme(ox_ctx *c, bool max) {
  const lc_tensor *x = c->in[0];
  int dim;
  lc_status st = ox_axis(ox_attr_int(c->node, "axis", 0), lc_ndim(x), "axis", &dim);
  if (st) return st;
  bool keep = ox_attr_int(c->node, "keepdims", 1) != 0;
  bool last = ox_attr_int(c->node, "select_last_index", 0) != 0;
  if (lc_ndim(x) > 0 && lc_shape(x)[dim] == 0) return ox_node_error(c, LC_ESHAPE, "empty axis");
  lc_tensor *f = NULL, *i = NULL, *r = NULL;
  if (last && lc_ndim(x) > 0)
    st = lc_flip(x, 1, &dim, &f);
  else
    f = lc_retain((lc_tensor *)x);
  if (!st) st = (max ? lc_argmax : lc_argmin)(f, false, dim, keep, &i);
  lc_release(f);
  if (st || !last || lc_ndim(x) == 0) return give(c, 0, st, i);
  st = lc_binary_scalar(LC_SUB, i, (double)(lc_shape(x)[dim] - 1), true, &r);
  lc_release(i);
  return give(c, 0, st, r);
}

lc_status ox_argmax(ox_ctx *c) { return arg_extreme(c, true); }
lc_status ox_argmin(ox_ctx *c) { return arg_extreme(c, false); }

/* ---------------------------------------------------------------- Pad */

typedef enum { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE, PAD_WRAP } pad_mode;

/* The source index for output index o of a dim of size n padded by `before` (-1: the fill). */
static int64_t pad_source(int64_t o, int64_t before, int64_t n, pad_mode mode) {
  int64_t i = o - before;
  if (i >= 0 && i < n) return i;
  switch (mode) {
  case PAD_CONSTANT: return -1;
  case PAD_EDGE: return i < 0 ? 0 : n - 1;
  case PAD_WRAP: return ((i % n) + n) % n;
  case PAD_REFLECT:
  default: {
    if (n == 1) return 0;
    int64_t p = 2 * (n - 1), m = ((i % p) + p) % p;
    return m < n ? m : p - m;
  }
  }
}

/* Pad over a contiguous copy: a table per dim gives each output index's source offset (-1:
 * the fill), then every row of the last dim is filled from them. */
static lc_status pad_run(const lc_tensor *x, const int64_t *pads, pad_mode mode, const void *fill,
                         lc_tensor **out) {
  int r = lc_ndim(x);
  int64_t oshape[LC_MAX_DIMS], idx[LC_MAX_DIMS] = {0}, *tab[LC_MAX_DIMS] = {NULL}, sum = 0;
  for (int d = 0; d < r; d++) {
    oshape[d] = lc_shape(x)[d] + pads[d] + pads[d + r];
    sum += oshape[d];
  }
  lc_tensor *xc = NULL, *y = NULL;
  int64_t *mem = NULL;
  lc_status st = lc_empty(r, oshape, lc_dtype_of(x), &y); /* first: it checks the sizes */
  if (!st) st = lc_contiguous(x, &xc);
  if (!st && !(mem = malloc((size_t)(sum + 1) * sizeof *mem)))
    st = lc_set_error(LC_ENOMEM, "Pad: out of memory");
  if (st) {
    lc_release(y);
    free(mem);
    lc_release(xc);
    return st;
  }
  int64_t stride = 1;
  int64_t at = 0;
  for (int d = 0; d < r; d++) {
    tab[d] = mem + at;
    at += oshape[d];
  }
  for (int d = r - 1; d >= 0; d--) {
    for (int64_t o = 0; o < oshape[d]; o++) {
      int64_t i = pad_source(o, pads[d], lc_shape(x)[d], mode);
      tab[d][o] = i < 0 ? -1 : i * stride;
    }
    stride *= lc_shape(x)[d];
  }
  size_t es = lc_dtype_size(lc_dtype_of(x));
  const char *src = lc_data(xc);
  char *dst = lc_data(y);
  int64_t total = lc_numel(y), row = r ? oshape[r - 1] : 1;
  for (int64_t k = 0; row && k < total; k += row) {
    int64_t base = 0;
    for (int d = 0; d < r - 1 && base >= 0; d++)
      base = tab[d][idx[d]] < 0 ? -1 : base + tab[d][idx[d]];
    for (int64_t j = 0; j < row; j++) {
      int64_t off = base < 0 || (r && tab[r - 1][j] < 0) ? -1 : base + (r ? tab[r - 1][j] : 0);
      memcpy(dst + (size_t)(k + j) * es, off < 0 ? fill : src + (size_t)off * es, es);
    }
    for (int d = r - 2; d >= 0; d--) {
      if (++idx[d] < oshape[d]) break;
      idx[d] = 0;
    }
  }
  free(mem);
  lc_release(xc);
  *out = y;
  return LC_OK;
}

/* Pad: pads (begins of every dim, then ends) an attribute before opset 11, then an input with
 * constant_value and (opset 18) axes inputs; modes constant, reflect, edge, wrap. */
lc_status ox_pad(ox_ctx *c) {
  const lc_tensor *x = c->in[0];
  int r = lc_ndim(x), n;
  int64_t raw[2 * LC_MAX_DIMS], pads[2 * LC_MAX_DIMS] = {0};
  lc_status st;
  lc_tensor *fill = NULL, *fillc = NULL;
  if (c->opset >= 11) {
    if (c->n_in < 2 || !c->in[1]) return ox_node_error(c, LC_EARG, "pads is required");
    if ((st = ox_read_ints(c->in[1], "pads", raw, 2 * LC_MAX_DIMS, &n))) return st;
  } else {
    const int64_t *v;
    int64_t k = ox_attr_ints(c->node, "pads", &v);
    if (k < 0 || k > 2 * LC_MAX_DIMS) return ox_node_error(c, LC_EARG, "bad pads");
    copy_ints(raw, v, n = (int)k);
  }
  int64_t axes[LC_MAX_DIMS];
  int na = r, dims[LC_MAX_DIMS];
  if (c->n_in > 3 && c->in[3]) {
    if ((st = ox_read_ints(c->in[3], "axes", axes, LC_MAX_DIMS, &na))) return st;
    if ((st = wrap_axes(c, axes, na, r, dims))) return st;
  } else {
    for (int i = 0; i < r; i++)
      dims[i] = i;
  }
  if (n != 2 * na) return ox_node_error(c, LC_ESHAPE, "%d pads for %d axes", n, na);
  for (int i = 0; i < na; i++) {
    pads[dims[i]] = raw[i];
    pads[dims[i] + r] = raw[i + na];
  }
  char buf[16];
  const char *m = ox_attr_string(c->node, "mode", "constant", buf, sizeof buf);
  pad_mode mode;
  if (strcmp(m, "constant") == 0)
    mode = PAD_CONSTANT;
  else if (strcmp(m, "reflect") == 0)
    mode = PAD_REFLECT;
  else if (strcmp(m, "edge") == 0)
    mode = PAD_EDGE;
  else if (strcmp(m, "wrap") == 0)
    mode = PAD_WRAP;
  else
    return ox_node_error(c, LC_EARG, "mode '%s' is not supported", m);
  for (int d = 0; d < r; d++) {
    int64_t len = lc_shape(x)[d] + pads[d] + pads[d + r];
    if (len < 0 || pads[d] > (1 << 30) || pads[d + r] > (1 << 30))
      return ox_node_error(c, LC_ESHAPE, "pads %lld, %lld for dim %d of size %lld",
                           (long long)pads[d], (long long)pads[d + r], d,
                           (long long)lc_shape(x)[d]);
    if (mode != PAD_CONSTANT && lc_shape(x)[d] == 0 && (pads[d] > 0 || pads[d + r] > 0))
      return ox_node_error(c, LC_ESHAPE, "mode '%s' cannot pad the empty dim %d", m, d);
  }
  if (mode == PAD_CONSTANT && c->opset >= 11 && c->n_in > 2 && c->in[2]) {
    if (lc_numel(c->in[2]) != 1)
      return ox_node_error(c, LC_ESHAPE, "constant_value is not a scalar");
    st = lc_to_dtype(c->in[2], lc_dtype_of(x), &fill);
  } else {
    double v = c->opset < 11 ? ox_attr_float(c->node, "value", 0) : 0;
    st = lc_scalar(v, lc_dtype_of(x), &fill);
  }
  if (!st) st = lc_contiguous(fill, &fillc);
  if (!st) st = pad_run(x, pads, mode, lc_data(fillc), &c->out[0]);
  lc_release(fill);
  lc_release(fillc);
  return st;
}
