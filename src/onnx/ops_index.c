/* ops_index.c - ONNX indexing ops: gathers, scatters, one-hot, nonzero, compress, unique,
 * reverse-sequence. Negative indices (allowed by ONNX from opset 11) are wrapped here, since
 * lucid's index ops take 0-based positions only. */
#include "onnx_internal.h"

#include <stdlib.h>
#include <string.h>

/* The int64 values of an integer index tensor (malloc'ed; at least one slot). */
static lc_status index_values(const ox_ctx *c, const lc_tensor *t, const char *what,
                              int64_t **out) {
  lc_dtype dt = lc_dtype_of(t);
  if (dt != LC_INT64 && dt != LC_INT32)
    return ox_node_error(c, LC_EDTYPE, "%s: expected int64 or int32, got %s", what,
                         lc_dtype_name(dt));
  int64_t n = lc_numel(t);
  int64_t *v = malloc((size_t)(n ? n : 1) * sizeof *v);
  if (!v) return lc_set_error(LC_ENOMEM, "%s: out of memory", what);
  lc_status st = lc_copy_to_buffer(t, LC_INT64, v);
  if (st) {
    free(v);
    return st;
  }
  *out = v;
  return LC_OK;
}

/* Wraps n index values into [0, size) (negative ones from the end), refusing others. */
static lc_status wrap_values(const ox_ctx *c, int64_t *v, int64_t n, int64_t size,
                             const char *what) {
  for (int64_t i = 0; i < n; i++) {
    if (v[i] < -size || v[i] >= size)
      return ox_node_error(c, LC_EINDEX, "%s[%lld] = %lld out of range for a dim of %lld", what,
                           (long long)i, (long long)v[i], (long long)size);
    if (v[i] < 0) v[i] += size;
  }
  return LC_OK;
}

/* idx with its values wrapped against size, as an int64 tensor of idx's shape. */
static lc_status wrapped_index(const ox_ctx *c, const lc_tensor *idx, int64_t size,
                               const char *what, lc_tensor **out) {
  int64_t *v;
  lc_status st = index_values(c, idx, what, &v);
  if (st) return st;
  st = wrap_values(c, v, lc_numel(idx), size, what);
  if (!st) st = lc_from_data(lc_ndim(idx), lc_shape(idx), LC_INT64, v, out);
  free(v);
  return st;
}

static int64_t prod(const int64_t *s, int from, int to) {
  int64_t p = 1;
  for (int i = from; i < to; i++)
    p *= s[i];
  return p;
}

/* Gather: data[..., indices, ...] along axis; out rank r - 1 + q. */
lc_status ox_gather(ox_ctx *c) {
  const lc_tensor *x = c->in[0], *idx = c->in[1];
  int r = lc_ndim(x), q = lc_ndim(idx), dim;
  lc_status st = ox_axis(ox_attr_int(c->node, "axis", 0), r, "axis", &dim);
  if (st) return st;
  if (r == 0) return ox_node_error(c, LC_ESHAPE, "0-dim data");
  if (r - 1 + q > LC_MAX_DIMS)
    return ox_node_error(c, LC_ESHAPE, "rank %d is not supported", r - 1 + q);
  lc_tensor *w = NULL, *flat = NULL, *sel = NULL;
  int64_t n = lc_numel(idx), shape[LC_MAX_DIMS];
  st = wrapped_index(c, idx, lc_shape(x)[dim], "indices", &w);
  if (!st) st = lc_reshape(w, 1, &n, &flat);
  if (!st) st = lc_index_select(x, dim, flat, &sel);
  int k = 0;
  for (int i = 0; i < dim; i++)
    shape[k++] = lc_shape(x)[i];
  for (int i = 0; i < q; i++)
    shape[k++] = lc_shape(idx)[i];
  for (int i = dim + 1; i < r; i++)
    shape[k++] = lc_shape(x)[i];
  if (!st) st = lc_reshape(sel, k, shape, &c->out[0]);
  lc_release(w);
  lc_release(flat);
  lc_release(sel);
  return st;
}

static lc_status check_same_rank(const ox_ctx *c, const lc_tensor *x, const lc_tensor *idx) {
  if (lc_ndim(idx) != lc_ndim(x) || lc_ndim(x) == 0)
    return ox_node_error(c, LC_ESHAPE, "indices of rank %d for data of rank %d", lc_ndim(idx),
                         lc_ndim(x));
  return LC_OK;
}

lc_status ox_gather_elements(ox_ctx *c) {
  const lc_tensor *x = c->in[0], *idx = c->in[1];
  int dim;
  lc_status st = check_same_rank(c, x, idx);
  if (st || (st = ox_axis(ox_attr_int(c->node, "axis", 0), lc_ndim(x), "axis", &dim))) return st;
  for (int d = 0; d < lc_ndim(x); d++)
    if (d != dim && lc_shape(idx)[d] > lc_shape(x)[d])
      return ox_node_error(c, LC_ESHAPE, "indices dim %d is larger than data's", d);
  lc_tensor *w = NULL;
  st = wrapped_index(c, idx, lc_shape(x)[dim], "indices", &w);
  if (!st) st = lc_gather(x, dim, w, &c->out[0]);
  lc_release(w);
  return st;
}

/* ScatterElements (and the older Scatter): reduction none / add / mul (opset 16), max / min
 * (opset 18). */
static lc_status scatter_elements(ox_ctx *c, bool reductions) {
  const lc_tensor *x = c->in[0], *idx = c->in[1], *upd = c->in[2];
  int dim;
  lc_status st = check_same_rank(c, x, idx);
  if (st || (st = ox_axis(ox_attr_int(c->node, "axis", 0), lc_ndim(x), "axis", &dim))) return st;
  if (lc_ndim(upd) != lc_ndim(idx))
    return ox_node_error(c, LC_ESHAPE, "updates and indices differ in rank");
  for (int d = 0; d < lc_ndim(x); d++) {
    if (lc_shape(upd)[d] != lc_shape(idx)[d])
      return ox_node_error(c, LC_ESHAPE, "updates and indices differ in shape");
    if (d != dim && lc_shape(idx)[d] > lc_shape(x)[d])
      return ox_node_error(c, LC_ESHAPE, "indices dim %d is larger than data's", d);
  }
  if (lc_dtype_of(upd) != lc_dtype_of(x))
    return ox_node_error(c, LC_EDTYPE, "updates and data differ in dtype");
  char buf[16];
  const char *red =
      reductions ? ox_attr_string(c->node, "reduction", "none", buf, sizeof buf) : "none";
  lc_sr_reduce code = LC_SR_SUM;
  if (strcmp(red, "add") == 0)
    code = LC_SR_SUM;
  else if (strcmp(red, "mul") == 0)
    code = LC_SR_PROD;
  else if (strcmp(red, "max") == 0)
    code = LC_SR_AMAX;
  else if (strcmp(red, "min") == 0)
    code = LC_SR_AMIN;
  else if (strcmp(red, "none") != 0)
    return ox_node_error(c, LC_EARG, "reduction '%s' is not supported", red);
  lc_tensor *w = NULL;
  st = wrapped_index(c, idx, lc_shape(x)[dim], "indices", &w);
  if (!st && strcmp(red, "none") == 0)
    st = lc_scatter(x, dim, w, upd, &c->out[0]);
  else if (!st)
    st = lc_scatter_reduce(x, dim, w, upd, code, true, &c->out[0]);
  lc_release(w);
  return st;
}

lc_status ox_scatter_elements(ox_ctx *c) { return scatter_elements(c, true); }
lc_status ox_scatter(ox_ctx *c) { return scatter_elements(c, false); }

/* The flat slice numbers (over data's dims b..b+k-1, per batch) of an ND index tensor whose
 * last dim is k: out[m] for each of the M = numel / k tuples, batches of data's dims 0..b-1
 * numbered in front. */
static lc_status nd_offsets(const ox_ctx *c, const lc_tensor *x, const lc_tensor *idx, int b,
                            int64_t **out, int64_t *m, int64_t *slice) {
  int r = lc_ndim(x), q = lc_ndim(idx);
  if (q < 1) return ox_node_error(c, LC_ESHAPE, "indices must have at least 1 dim");
  int64_t k = lc_shape(idx)[q - 1];
  if (b < 0 || b >= q || b >= r) return ox_node_error(c, LC_EARG, "batch_dims %d", b);
  if (k < 1 || k > r - b)
    return ox_node_error(c, LC_ESHAPE, "index tuples of %lld for data of rank %d", (long long)k, r);
  for (int i = 0; i < b; i++)
    if (lc_shape(idx)[i] != lc_shape(x)[i])
      return ox_node_error(c, LC_ESHAPE, "batch dim %d differs", i);
  int64_t *v;
  lc_status st = index_values(c, idx, "indices", &v);
  if (st) return st;
  int64_t tuples = lc_numel(idx) / k, per_batch = prod(lc_shape(idx), b, q - 1);
  int64_t slices = prod(lc_shape(x), b, b + (int)k); /* slices per batch */
  for (int64_t t = 0; t < tuples && !st; t++) {
    int64_t off = 0;
    for (int j = 0; j < k && !st; j++) {
      int64_t n = lc_shape(x)[b + j], i = v[t * k + j];
      if (i < -n || i >= n)
        st = ox_node_error(c, LC_EINDEX, "index %lld out of range for dim %d of size %lld",
                           (long long)i, b + j, (long long)n);
      off = off * n + (i < 0 ? i + n : i);
    }
    v[t] = (per_batch ? t / per_batch : 0) * slices + off;
  }
  if (st) {
    free(v);
    return st;
  }
  *out = v;
  *m = tuples;
  *slice = prod(lc_shape(x), b + (int)k, r);
  return LC_OK;
}

/* GatherND: batch_dims (opset 12); out shape indices.shape[:-1] + data.shape[b+k:]. */
lc_status ox_gather_nd(ox_ctx *c) {
  const lc_tensor *x = c->in[0], *idx = c->in[1];
  int b = (int)ox_attr_int(c->node, "batch_dims", 0), r = lc_ndim(x), q = lc_ndim(idx);
  int64_t *off = NULL, m = 0, slice = 0;
  lc_status st = nd_offsets(c, x, idx, b, &off, &m, &slice);
  if (st) return st;
  int64_t k = lc_shape(idx)[q - 1], shape[LC_MAX_DIMS];
  int nd = 0;
  for (int i = 0; i < q - 1; i++)
    shape[nd++] = lc_shape(idx)[i];
  for (int i = b + (int)k; i < r && nd < LC_MAX_DIMS; i++)
    shape[nd++] = lc_shape(x)[i];
  if (q - 1 + r - b - k > LC_MAX_DIMS)
    st = ox_node_error(c, LC_ESHAPE, "result rank is not supported");
  lc_tensor *xc = NULL, *y = NULL;
  if (!st) st = lc_contiguous(x, &xc);
  if (!st) st = lc_empty(nd, shape, lc_dtype_of(x), &y);
  if (!st) {
    size_t row = (size_t)slice * lc_dtype_size(lc_dtype_of(x));
    const char *src = lc_data(xc);
    char *dst = lc_data(y);
    for (int64_t t = 0; row && t < m; t++)
      memcpy(dst + (size_t)t * row, src + (size_t)off[t] * row, row);
    c->out[0] = y;
  }
  free(off);
  lc_release(xc);
  return st;
}

/* ScatterND: data's slices at the index tuples replaced (or reduced: add / mul at opset 16,
 * max / min at 18), as a scatter along dim 0 of data viewed as (slices, slice size). */
lc_status ox_scatter_nd(ox_ctx *c) {
  const lc_tensor *x = c->in[0], *idx = c->in[1], *upd = c->in[2];
  int r = lc_ndim(x), q = lc_ndim(idx);
  int64_t *off = NULL, m = 0, slice = 0;
  lc_status st = nd_offsets(c, x, idx, 0, &off, &m, &slice);
  if (st) return st;
  int64_t k = lc_shape(idx)[q - 1];
  bool ok = lc_ndim(upd) == q - 1 + r - k && lc_dtype_of(upd) == lc_dtype_of(x);
  for (int i = 0; ok && i < q - 1; i++)
    ok = lc_shape(upd)[i] == lc_shape(idx)[i];
  for (int i = 0; ok && i < r - k; i++)
    ok = lc_shape(upd)[q - 1 + i] == lc_shape(x)[k + i];
  char buf[16];
  const char *red = ox_attr_string(c->node, "reduction", "none", buf, sizeof buf);
  lc_sr_reduce code = LC_SR_SUM;
  if (!ok)
    st = ox_node_error(c, LC_ESHAPE, "updates do not fit indices and data");
  else if (strcmp(red, "mul") == 0)
    code = LC_SR_PROD;
  else if (strcmp(red, "max") == 0)
    code = LC_SR_AMAX;
  else if (strcmp(red, "min") == 0)
    code = LC_SR_AMIN;
  else if (strcmp(red, "add") != 0 && strcmp(red, "none") != 0)
    st = ox_node_error(c, LC_EARG, "reduction '%s' is not supported", red);
  int64_t xs[2] = {lc_numel(x) / (slice ? slice : 1), slice}, us[2] = {m, slice}, is[2] = {m, 1};
  lc_tensor *x2 = NULL, *u2 = NULL, *i1 = NULL, *i2 = NULL, *y = NULL;
  if (!st && slice == 0) {
    free(off);
    return lc_clone(x, &c->out[0]);
  }
  if (!st) st = lc_reshape(x, 2, xs, &x2);
  if (!st) st = lc_reshape(upd, 2, us, &u2);
  if (!st) st = lc_from_data(2, is, LC_INT64, off, &i1);
  if (!st) st = lc_expand(i1, 2, us, &i2);
  if (!st && strcmp(red, "none") == 0)
    st = lc_scatter(x2, 0, i2, u2, &y);
  else if (!st)
    st = lc_scatter_reduce(x2, 0, i2, u2, code, true, &y);
  if (!st) st = lc_reshape(y, r, lc_shape(x), &c->out[0]);
  free(off);
  lc_release(x2);
  lc_release(u2);
  lc_release(i1);
  lc_release(i2);
  lc_release(y);
  return st;
}

/* NonZero: (rank, count) int64 positions, lucid's (count, rank) transposed. */
lc_status ox_nonzero(ox_ctx *c) {
  lc_tensor *nz = NULL, *t = NULL;
  lc_status st = lc_nonzero(c->in[0], &nz);
  if (!st) st = lc_transpose(nz, 0, 1, &t);
  if (!st) st = lc_contiguous(t, &c->out[0]);
  lc_release(nz);
  lc_release(t);
  return st;
}

/* OneHot: values[1] where the class equals the index (negative ones wrap), values[0]
 * elsewhere; the classes dim inserted at axis (default -1, the last). */
lc_status ox_one_hot(ox_ctx *c) {
  const lc_tensor *ind = c->in[0], *values = c->in[2];
  int r = lc_ndim(ind), dim;
  double dd;
  lc_status st;
  if (lc_numel(c->in[1]) != 1) return ox_node_error(c, LC_ESHAPE, "depth is not a scalar");
  if (lc_numel(values) != 2) return ox_node_error(c, LC_ESHAPE, "values must have 2 elements");
  if ((st = lc_item(c->in[1], &dd))) return st;
  if (!(dd >= 1 && dd <= (double)(1 << 30))) return ox_node_error(c, LC_EARG, "depth %g", dd);
  if (r + 1 > LC_MAX_DIMS) return ox_node_error(c, LC_ESHAPE, "rank %d is not supported", r + 1);
  if ((st = ox_axis(ox_attr_int(c->node, "axis", -1), r + 1, "axis", &dim))) return st;
  int64_t depth = (int64_t)dd, n = lc_numel(ind), shape[LC_MAX_DIMS];
  int64_t *v = malloc((size_t)(n ? n : 1) * sizeof *v);
  if (!v) return lc_set_error(LC_ENOMEM, "OneHot: out of memory");
  lc_tensor *vc = NULL, *y = NULL;
  st = lc_copy_to_buffer(ind, LC_INT64, v); /* float indices truncate */
  if (!st) st = lc_contiguous(values, &vc);
  for (int i = 0, k = 0; i <= r; i++)
    shape[i] = i == dim ? depth : lc_shape(ind)[k++];
  if (!st) st = lc_empty(r + 1, shape, lc_dtype_of(values), &y);
  if (!st) {
    size_t es = lc_dtype_size(lc_dtype_of(values));
    const char *off = lc_data(vc), *on = off + es;
    char *dst = lc_data(y);
    int64_t inner = prod(lc_shape(ind), dim, r), outer = inner ? n / inner : 0;
    for (int64_t o = 0; o < outer; o++)
      for (int64_t d = 0; d < depth; d++)
        for (int64_t i = 0; i < inner; i++) {
          int64_t cls = v[o * inner + i];
          if (cls < 0) cls += depth;
          memcpy(dst + (size_t)((o * depth + d) * inner + i) * es, cls == d ? on : off, es);
        }
    c->out[0] = y;
  }
  free(v);
  lc_release(vc);
  return st;
}

/* Compress: the slices along axis (or elements of the flattened input) where condition is
 * true; a condition shorter than the dim leaves the rest out. */
lc_status ox_compress(ox_ctx *c) {
  const lc_tensor *x = c->in[0], *cond = c->in[1];
  lc_status st;
  if (lc_ndim(cond) != 1) return ox_node_error(c, LC_ESHAPE, "condition must be 1-D");
  const Onnx__AttributeProto *a = ox_attr(c->node, "axis");
  lc_tensor *src = NULL, *cb = NULL, *sel = NULL;
  int dim = 0;
  if (a && a->has_i) {
    if ((st = ox_axis(a->i, lc_ndim(x), "axis", &dim))) return st;
    if (lc_ndim(x) == 0) return ox_node_error(c, LC_ESHAPE, "0-dim input");
    src = lc_retain((lc_tensor *)x);
  } else {
    int64_t n = lc_numel(x);
    if ((st = lc_reshape(x, 1, &n, &src))) return st;
  }
  int64_t len = lc_shape(src)[dim], nc = lc_numel(cond), cnt = 0;
  int64_t *pos = malloc((size_t)(nc ? nc : 1) * sizeof *pos);
  st = pos ? lc_to_dtype(cond, LC_BOOL, &cb) : lc_set_error(LC_ENOMEM, "Compress: out of memory");
  if (!st) {
    lc_tensor *cc = NULL;
    st = lc_contiguous(cb, &cc);
    const unsigned char *p = st ? NULL : lc_data(cc);
    for (int64_t i = 0; !st && i < nc; i++) {
      if (!p[i]) continue;
      if (i >= len)
        st = ox_node_error(c, LC_EINDEX, "condition[%lld] is true beyond the dim of %lld",
                           (long long)i, (long long)len);
      pos[cnt++] = i;
    }
    lc_release(cc);
  }
  if (!st) st = lc_from_data(1, &cnt, LC_INT64, pos, &sel);
  if (!st) st = lc_index_select(src, dim, sel, &c->out[0]);
  free(pos);
  lc_release(src);
  lc_release(cb);
  lc_release(sel);
  return st;
}

/* Unique: lucid's sorted unique values, inverse and counts, plus the first occurrences; with
 * sorted = 0, everything reordered by first occurrence. Outputs Y, indices, inverse, counts. */
lc_status ox_unique(ox_ctx *c) {
  const lc_tensor *x = c->in[0];
  const Onnx__AttributeProto *a = ox_attr(c->node, "axis");
  bool has_dim = a && a->has_i, sorted = ox_attr_int(c->node, "sorted", 1) != 0;
  int dim = 0;
  lc_status st;
  if (has_dim && (st = ox_axis(a->i, lc_ndim(x), "axis", &dim))) return st;
  if (has_dim && lc_ndim(x) == 0) return ox_node_error(c, LC_ESHAPE, "0-dim input");
  lc_tensor *vals = NULL, *inv = NULL, *cnts = NULL, *perm = NULL;
  if ((st = lc_unique(x, true, has_dim, dim, &vals, &inv, &cnts))) return st;
  int64_t len = lc_numel(inv), nu = lc_numel(cnts);
  int64_t *iv = malloc((size_t)(len + 1) * sizeof *iv), *cv = malloc((size_t)(nu + 1) * sizeof *cv);
  int64_t *first = malloc((size_t)(nu + 1) * sizeof *first),
          *order = malloc((size_t)(nu + 1) * sizeof *order);
  int64_t *rank = malloc((size_t)(nu + 1) * sizeof *rank);
  st =
      iv && cv && first && order && rank ? LC_OK : lc_set_error(LC_ENOMEM, "Unique: out of memory");
  if (!st) st = lc_copy_to_buffer(inv, LC_INT64, iv);
  if (!st) st = lc_copy_to_buffer(cnts, LC_INT64, cv);
  if (!st) {
    for (int64_t u = 0; u < nu; u++)
      first[u] = -1;
    for (int64_t p = 0; p < len; p++)
      if (iv[p] >= 0 && iv[p] < nu && first[iv[p]] < 0) first[iv[p]] = p;
    /* order[j]: the sorted unique value that comes j-th (by first occurrence when unsorted) */
    for (int64_t u = 0; u < nu; u++)
      order[u] = u;
    if (!sorted) { /* by first occurrence: the values in the order their first positions come */
      int64_t j = 0;
      for (int64_t p = 0; p < len; p++)
        if (iv[p] >= 0 && iv[p] < nu && first[iv[p]] == p) order[j++] = iv[p];
    }
    for (int64_t j = 0; j < nu; j++)
      rank[order[j]] = j;
    for (int64_t p = 0; p < len; p++)
      iv[p] = iv[p] >= 0 && iv[p] < nu ? rank[iv[p]] : 0;
    for (int64_t j = 0; j < nu; j++)
      rank[j] = first[order[j]]; /* reused: indices */
    for (int64_t j = 0; j < nu; j++)
      first[j] = cv[order[j]]; /* reused: counts */
  }
  if (!st) st = lc_from_data(1, &nu, LC_INT64, order, &perm);
  if (!st) st = lc_index_select(vals, has_dim ? dim : 0, perm, &c->out[0]);
  if (!st && c->n_out > 1) st = lc_from_data(1, &nu, LC_INT64, rank, &c->out[1]);
  if (!st && c->n_out > 2) st = lc_from_data(1, &len, LC_INT64, iv, &c->out[2]);
  if (!st && c->n_out > 3) st = lc_from_data(1, &nu, LC_INT64, first, &c->out[3]);
  free(iv);
  free(cv);
  free(first);
  free(order);
  free(rank);
  lc_release(vals);
  lc_release(inv);
  lc_release(cnts);
  lc_release(perm);
  return st;
}

/* ReverseSequence: for each batch b, the first sequence_lens[b] steps along time_axis
 * reversed, the rest copied. */
lc_status ox_reverse_sequence(ox_ctx *c) {
  const lc_tensor *x = c->in[0];
  int r = lc_ndim(x);
  int64_t ba = ox_attr_int(c->node, "batch_axis", 1), ta = ox_attr_int(c->node, "time_axis", 0);
  if (r < 2) return ox_node_error(c, LC_ESHAPE, "expected at least 2 dims");
  if (ba < 0 || ba > 1 || ta < 0 || ta > 1 || ba == ta)
    return ox_node_error(c, LC_EARG, "batch_axis %lld and time_axis %lld", (long long)ba,
                         (long long)ta);
  int64_t nb = lc_shape(x)[ba], nt = lc_shape(x)[ta], *lens;
  if (lc_ndim(c->in[1]) != 1 || lc_shape(c->in[1])[0] != nb)
    return ox_node_error(c, LC_ESHAPE, "sequence_lens must hold %lld values", (long long)nb);
  lc_status st = index_values(c, c->in[1], "sequence_lens", &lens);
  if (st) return st;
  for (int64_t b = 0; b < nb && !st; b++)
    if (lens[b] < 0 || lens[b] > nt)
      st = ox_node_error(c, LC_EINDEX, "sequence_lens[%lld] = %lld for %lld steps", (long long)b,
                         (long long)lens[b], (long long)nt);
  lc_tensor *xc = NULL, *y = NULL;
  if (!st) st = lc_contiguous(x, &xc);
  if (!st) st = lc_empty(r, lc_shape(x), lc_dtype_of(x), &y);
  if (!st) {
    /* rows of the trailing dims, laid out as [d0][d1][inner] */
    int64_t inner = prod(lc_shape(x), 2, r), d1 = lc_shape(x)[1];
    size_t row = (size_t)inner * lc_dtype_size(lc_dtype_of(x));
    const char *src = lc_data(xc);
    char *dst = lc_data(y);
    for (int64_t i = 0; row && i < lc_shape(x)[0]; i++)
      for (int64_t j = 0; j < d1; j++) {
        int64_t b = ba == 0 ? i : j, t = ba == 0 ? j : i, len = lens[b];
        int64_t ts = t < len ? len - 1 - t : t;
        int64_t si = ba == 0 ? i : ts, sj = ba == 0 ? ts : j;
        memcpy(dst + (size_t)(i * d1 + j) * row, src + (size_t)(si * d1 + sj) * row, row);
      }
    c->out[0] = y;
  }
  free(lens);
  lc_release(xc);
  return st;
}
