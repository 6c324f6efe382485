/*
 * join.c - public joining and splitting: cat, stack, split, split_sizes, chunk.
 * The pieces of split/chunk are narrow views recorded through lc_op_slice, so gradients flow
 * back to the split tensor.
 */
#include "../autograd/autograd.h"

#include <stdio.h>
#include <stdlib.h>

lc_status lc_cat(int n, lc_tensor *const *ts, int dim, lc_tensor **out) {
  if (!out) return lc_set_error(LC_EARG, "cat: out is NULL");
  if (n < 1 || !ts) return lc_set_error(LC_EARG, "cat: expected a non-empty list of tensors");
  for (int k = 0; k < n; k++)
    if (!ts[k]) return lc_set_error(LC_EARG, "cat: tensor %d is NULL", k);
  const lc_tensor *t0 = ts[0];
  for (int k = 0; k < n; k++)
    if (ts[k]->ndim == 0)
      return lc_set_error(
          LC_ESHAPE, "cat: zero-dimensional tensor (at position %d) cannot be concatenated", k);
  lc_status st = lc_wrap_dim(&dim, t0->ndim, "cat");
  if (st) return st;
  for (int k = 1; k < n; k++) {
    const lc_tensor *t = ts[k];
    if (t->ndim != t0->ndim)
      return lc_set_error(LC_ESHAPE,
                          "cat: tensors must have the same number of dims: tensor 0 has %d, "
                          "tensor %d has %d",
                          t0->ndim, k, t->ndim);
    for (int d = 0; d < t0->ndim; d++)
      if (d != dim && t->shape[d] != t0->shape[d])
        return lc_set_error(LC_ESHAPE,
                            "cat: sizes of tensors must match except in dim %d: expected size "
                            "%lld but got size %lld for tensor %d at dim %d",
                            dim, (long long)t0->shape[d], (long long)t->shape[d], k, d);
  }
  lc_op_args a = {.i = {dim}, .ni = 1};
  return lc_apply(&lc_op_cat, n, ts, &a, out);
}

lc_status lc_stack(int n, lc_tensor *const *ts, int dim, lc_tensor **out) {
  if (!out) return lc_set_error(LC_EARG, "stack: out is NULL");
  if (n < 1 || !ts) return lc_set_error(LC_EARG, "stack: expected a non-empty list of tensors");
  for (int k = 0; k < n; k++)
    if (!ts[k]) return lc_set_error(LC_EARG, "stack: tensor %d is NULL", k);
  const lc_tensor *t0 = ts[0];
  for (int k = 1; k < n; k++) {
    const lc_tensor *t = ts[k];
    bool same = t->ndim == t0->ndim;
    for (int d = 0; same && d < t0->ndim; d++)
      same = t->shape[d] == t0->shape[d];
    if (!same) {
      char a[256], b[256];
      return lc_set_error(LC_ESHAPE,
                          "stack: expects each tensor to be equal size, but got %s at entry 0 "
                          "and %s at entry %d",
                          lc_shape_str(t0->ndim, t0->shape, a, sizeof a),
                          lc_shape_str(t->ndim, t->shape, b, sizeof b), k);
    }
  }
  int nd = t0->ndim + 1;
  if (dim < -nd || dim >= nd)
    return lc_set_error(LC_EINDEX,
                        "stack: dim %d out of range for stacking %d-dim tensors (expected "
                        "%d..%d)",
                        dim, t0->ndim, -nd, nd - 1);
  if (dim < 0) dim += nd;
  lc_tensor **us = calloc((size_t)n, sizeof *us);
  if (!us) return lc_error_oom((size_t)n * sizeof *us);
  lc_status st = LC_OK;
  for (int k = 0; k < n && !st; k++)
    st = lc_unsqueeze(ts[k], dim, &us[k]);
  if (!st) st = lc_cat(n, us, dim, out);
  for (int k = 0; k < n; k++)
    lc_release(us[k]);
  free(us);
  return st;
}

/* Narrow views of t along dim with the given sizes (already checked to sum to its size). */
static lc_status split_views(const lc_tensor *t, int dim, int n, const int64_t *sizes, int *nout,
                             lc_tensor ***outs) {
  lc_tensor **r = calloc((size_t)(n > 0 ? n : 1), sizeof *r);
  if (!r) return lc_error_oom((size_t)n * sizeof *r);
  lc_status st = LC_OK;
  int64_t off = 0;
  for (int k = 0; k < n && !st; k++) {
    lc_op_args a = {.i = {dim, off, off + sizes[k], 1}, .ni = 4};
    lc_tensor *in[1] = {(lc_tensor *)t};
    st = lc_apply(&lc_op_slice, 1, in, &a, &r[k]);
    off += sizes[k];
  }
  if (st) {
    for (int k = 0; k < n; k++)
      lc_release(r[k]);
    free(r);
    return st;
  }
  *nout = n;
  *outs = r;
  return LC_OK;
}

static lc_status split_args(const char *fn, const lc_tensor *t, int *dim, int *n,
                            lc_tensor ***outs) {
  if (!t) return lc_set_error(LC_EARG, "%s: tensor is NULL", fn);
  if (!n || !outs) return lc_set_error(LC_EARG, "%s: output pointers are NULL", fn);
  if (t->ndim == 0)
    return lc_set_error(LC_EINDEX, "%s: expects a tensor with at least 1 dim, got a 0-dim tensor",
                        fn);
  return lc_wrap_dim(dim, t->ndim, fn);
}

/* Pieces of `size` (the last may be smaller); an empty dim gives one empty piece. */
static lc_status split_by(const char *fn, const lc_tensor *t, int64_t size, int dim, int *n,
                          lc_tensor ***outs) {
  int64_t len = t->shape[dim];
  if (size < 0 || (size == 0 && len != 0))
    return lc_set_error(LC_EARG, "%s: split size must be positive, got %lld", fn, (long long)size);
  int64_t pieces = len == 0 ? 1 : (len - 1) / size + 1; /* no len + size overflow */
  if (pieces > 1 << 30)
    return lc_set_error(LC_EARG, "%s: too many pieces (%lld)", fn, (long long)pieces);
  int64_t *sizes = malloc((size_t)pieces * sizeof *sizes);
  if (!sizes) return lc_error_oom((size_t)pieces * sizeof *sizes);
  for (int64_t k = 0; k < pieces; k++)
    sizes[k] = k < pieces - 1 ? size : len - size * k;
  lc_status st = split_views(t, dim, (int)pieces, sizes, n, outs);
  free(sizes);
  return st;
}

lc_status lc_split(const lc_tensor *t, int64_t size, int dim, int *n, lc_tensor ***outs) {
  lc_status st = split_args("split", t, &dim, n, outs);
  if (st) return st;
  return split_by("split", t, size, dim, n, outs);
}

lc_status lc_split_sizes(const lc_tensor *t, int nsizes, const int64_t *sizes, int dim, int *n,
                         lc_tensor ***outs) {
  lc_status st = split_args("split_sizes", t, &dim, n, outs);
  if (st) return st;
  if (nsizes < 1 || !sizes)
    return lc_set_error(LC_EARG, "split_sizes: expected at least one size, got %d", nsizes);
  int64_t sum = 0;
  bool over = false;
  for (int k = 0; k < nsizes; k++) {
    if (sizes[k] < 0)
      return lc_set_error(LC_EARG, "split_sizes: size " LC_POS_D " is negative (%lld)", k,
                          (long long)sizes[k]);
    over = over || lc_add_overflows(sum, sizes[k], &sum);
  }
  if (over || sum != t->shape[dim]) {
    char total[32];
    snprintf(total, sizeof total, "%lld", (long long)sum);
    return lc_set_error(LC_ESHAPE,
                        "split_sizes: sizes must sum to the size of dim " LC_POS_D
                        " (%lld), but they sum to %s",
                        dim, (long long)t->shape[dim], over ? "more than 2^63 - 1" : total);
  }
  return split_views(t, dim, nsizes, sizes, n, outs);
}

lc_status lc_chunk(const lc_tensor *t, int chunks, int dim, int *n, lc_tensor ***outs) {
  lc_status st = split_args("chunk", t, &dim, n, outs);
  if (st) return st;
  if (chunks < 1)
    return lc_set_error(LC_EARG, "chunk: number of chunks must be at least 1, got %d", chunks);
  int64_t len = t->shape[dim];
  if (len == 0) {
    /* torch.chunk of an empty dim: `chunks` empty pieces */
    int64_t *sizes = calloc((size_t)chunks, sizeof *sizes);
    if (!sizes) return lc_error_oom((size_t)chunks * sizeof *sizes);
    st = split_views(t, dim, chunks, sizes, n, outs);
    free(sizes);
    return st;
  }
  return split_by("chunk", t, (len + chunks - 1) / chunks, dim, n, outs);
}
