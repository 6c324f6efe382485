/*
 * shape.c - view ops (view, permute, expand, slice, select): forward builds a new header over
 * the input's storage, backward maps the gradient back to the input's layout.
 *
 * Also home of lc_shape_view_strides() (PyTorch's computeStride), which src/ops/shape.c uses
 * to decide whether reshape can be a view (declared there by prototype: no header is shared).
 */
#include "grad_graph.h"
#include "kernel_util.h"

#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- shared helpers */

/* Strides that let a tensor of layout (t->shape, t->strides) be read as `shape` without
 * copying, or false when no such strides exist. PyTorch's computeStride: the old dims are cut
 * into chunks that are contiguous among themselves (stride[d] == size[d+1] * stride[d+1]);
 * each chunk must be covered exactly by a run of new dims. */
bool lc_shape_view_strides(const lc_tensor *t, int ndim, const int64_t *shape, int64_t *strides) {
  if (t->ndim == 0) {
    for (int i = 0; i < ndim; i++)
      strides[i] = 1;
    return true;
  }
  if (t->numel == 0) {
    /* Strides are arbitrary without elements: keep the old ones when the shape is the same,
     * else use dense strides (as NumPy and PyTorch do). */
    if (same_shape(t, ndim, shape)) {
      memcpy(strides, t->strides, (size_t)ndim * sizeof *strides);
    } else if (lc_check_shape("view", ndim, shape) == LC_OK) {
      lc_contiguous_strides(ndim, shape, strides);
    } else { /* sizes past the shape rule: the view's header refuses them (lc_tensor_view_of) */
      memset(strides, 0, (size_t)ndim * sizeof *strides);
    }
    return true;
  }
  int view_d = ndim - 1;
  int64_t chunk_base_stride = t->strides[t->ndim - 1];
  int64_t tensor_numel = 1, view_numel = 1;
  for (int d = t->ndim - 1; d >= 0; d--) {
    tensor_numel *= t->shape[d];
    if (d == 0 || (t->shape[d - 1] != 1 && t->strides[d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        strides[view_d] = view_numel * chunk_base_stride;
        view_numel *= shape[view_d];
        view_d--;
      }
      if (view_numel != tensor_numel) return false;
      if (d > 0) {
        chunk_base_stride = t->strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  return view_d == -1;
}

/* ---------------------------------------------------------------- view plumbing */

/* A new header over in's storage; out->view_base points at the tensor that owns the data (the
 * root of a chain of views), so autograd can refuse in-place writes through views of tensors
 * that require grad. */
static lc_status make_view(const lc_tensor *in, int ndim, const int64_t *shape,
                           const int64_t *strides, int64_t offset, lc_tensor **out) {
  lc_tensor *v = NULL;
  lc_status st = lc_tensor_view_of(in, ndim, shape, strides, offset, &v);
  if (st) return st;
  v->view_base = lc_retain(in->view_base ? in->view_base : (lc_tensor *)in);
  *out = v;
  return LC_OK;
}

static lc_status view_as_shape(const lc_tensor *x, int ndim, const int64_t *shape,
                               lc_tensor **out) {
  char buf[256];
  if (ndim < 0 || ndim > LC_MAX_DIMS)
    return lc_set_error(LC_ESHAPE, "view: a tensor has at most %d dims, got %d", LC_MAX_DIMS, ndim);
  for (int i = 0; i < ndim; i++)
    if (shape[i] < 0)
      return lc_set_error(LC_ESHAPE, "view: shape %s is invalid for input of size %lld",
                          lc_shape_str(ndim, shape, buf, sizeof buf), (long long)x->numel);
  if (lc_shape_numel(ndim, shape) != x->numel)
    return lc_set_error(LC_ESHAPE, "view: shape %s is invalid for input of size %lld",
                        lc_shape_str(ndim, shape, buf, sizeof buf), (long long)x->numel);
  int64_t strides[LC_MAX_DIMS];
  if (!lc_shape_view_strides(x, ndim, shape, strides))
    return lc_set_error(LC_ESHAPE,
                        "view: shape %s is not compatible with the input's size and strides; "
                        "use reshape",
                        lc_shape_str(ndim, shape, buf, sizeof buf));
  return make_view(x, ndim, shape, strides, x->offset, out);
}

/* reshape without recording: a view when the layout allows it, else a copy. */
static lc_status reshape_nograd(const lc_tensor *g, int ndim, const int64_t *shape,
                                lc_tensor **out) {
  int64_t strides[LC_MAX_DIMS];
  if (lc_shape_view_strides(g, ndim, shape, strides))
    return make_view(g, ndim, shape, strides, g->offset, out);
  lc_tensor *c = NULL;
  lc_status st = lc_k_copy_as(g, g->dtype, &c);
  if (st) return st;
  st = view_as_shape(c, ndim, shape, out);
  lc_release(c);
  return st;
}

/* ---------------------------------------------------------------- view */

static lc_status view_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                              const lc_op_args *args, lc_tensor **out) {
  return view_as_shape(in[0], args->ni, args->i, out);
}

static lc_status view_backward(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  if (!ctx->needs_grad[0]) return LC_OK;
  return reshape_nograd(g, ctx->in[0].ndim, ctx->in[0].shape, &grad_in[0]);
}

static lc_status view_backward_graph(const lc_op_ctx *ctx, const lc_tensor *g,
                                     lc_tensor **grad_in) {
  if (!ctx->needs_grad[0]) return LC_OK;
  lc_gb b = LC_GB_INIT(ctx);
  lc_gb_grad(&b, 0, lc_gb_reshape(&b, g, ctx->in[0].ndim, ctx->in[0].shape), grad_in);
  return lc_gb_end(&b, grad_in);
}

const lc_op_def lc_op_view = {
    .name = "view",
    .grad_fn_name = "ViewBackward",
    .n_inputs = 1,
    .n_outputs = 1,
    .is_view = true,
    .forward = view_forward,
    .backward = view_backward,
    .backward_graph = view_backward_graph,
};

/* ---------------------------------------------------------------- permute */

static lc_status check_perm(int ndim, const lc_op_args *args, int *perm) {
  if (args->ni != ndim)
    return lc_set_error(LC_ESHAPE,
                        "permute: the permutation has %d dims but the tensor has %d dims", args->ni,
                        ndim);
  bool seen[LC_MAX_DIMS] = {false};
  for (int i = 0; i < ndim; i++) {
    int64_t v = args->i[i];
    int p = (int)(v < 0 ? v + ndim : v); /* negative from the end */
    if (v < -ndim || v >= ndim) { /* the message (formatted only then) is lc_wrap_dim64's */
      char what[48];
      snprintf(what, sizeof what, "permute: entry " LC_POS_D, i);
      return lc_wrap_dim64(v, ndim, what, &p);
    }
    if (seen[p])
      return lc_set_error(LC_EARG,
                          "permute: dim " LC_POS_D " appears more than once in the permutation", p);
    seen[p] = true;
    perm[i] = p;
  }
  return LC_OK;
}

static lc_status permute_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                                 const lc_op_args *args, lc_tensor **out) {
  const lc_tensor *x = in[0];
  int perm[LC_MAX_DIMS];
  lc_status st = check_perm(x->ndim, args, perm);
  if (st) return st;
  int64_t shape[LC_MAX_DIMS], strides[LC_MAX_DIMS];
  for (int i = 0; i < x->ndim; i++) {
    shape[i] = x->shape[perm[i]];
    strides[i] = x->strides[perm[i]];
  }
  return make_view(x, x->ndim, shape, strides, x->offset, out);
}

/* The inverse permutation, through ctx->run: a plain view, or recorded under create_graph. */
static lc_status permute_backward(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  if (!ctx->needs_grad[0]) return LC_OK;
  lc_op_args inv = {.ni = (int)ctx->args->ni};
  for (int i = 0; i < ctx->args->ni; i++)
    inv.i[ctx->args->i[i]] = i;
  lc_tensor *in[1] = {(lc_tensor *)g};
  return ctx->run(&lc_op_permute, 1, in, &inv, &grad_in[0]);
}

const lc_op_def lc_op_permute = {
    .name = "permute",
    .grad_fn_name = "PermuteBackward",
    .n_inputs = 1,
    .n_outputs = 1,
    .is_view = true,
    .forward = permute_forward,
    .backward = permute_backward,
    .backward_graph = permute_backward,
};

/* ---------------------------------------------------------------- expand */

static lc_status expand_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                                const lc_op_args *args, lc_tensor **out) {
  const lc_tensor *x = in[0];
  int nd = args->ni;
  if (nd < x->ndim || nd > LC_MAX_DIMS)
    return lc_set_error(LC_ESHAPE,
                        "expand: the number of sizes provided (%d) must be at least the number "
                        "of dims of the tensor (%d) and at most %d",
                        nd, x->ndim, LC_MAX_DIMS);
  int lead = nd - x->ndim;
  int64_t strides[LC_MAX_DIMS];
  for (int i = 0; i < nd; i++) {
    int64_t s = args->i[i];
    if (s < 0)
      return lc_set_error(LC_ESHAPE, "expand: sizes must be non-negative, got %lld at dim %d",
                          (long long)s, i);
    if (i < lead) {
      strides[i] = 0;
    } else if (x->shape[i - lead] == s) {
      strides[i] = x->strides[i - lead];
    } else if (x->shape[i - lead] == 1) {
      strides[i] = 0;
    } else {
      return lc_set_error(LC_ESHAPE,
                          "expand: the expanded size %lld must match the existing size %lld at "
                          "dim %d",
                          (long long)s, (long long)x->shape[i - lead], i);
    }
  }
  return make_view(x, nd, args->i, strides, x->offset, out);
}

static lc_status expand_backward(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  if (!ctx->needs_grad[0]) return LC_OK;
  return lc_k_sum_to(g, ctx->in[0].ndim, ctx->in[0].shape, &grad_in[0]);
}

static lc_status expand_backward_graph(const lc_op_ctx *ctx, const lc_tensor *g,
                                       lc_tensor **grad_in) {
  if (!ctx->needs_grad[0]) return LC_OK;
  lc_gb b = LC_GB_INIT(ctx);
  lc_gb_grad(&b, 0, g, grad_in); /* sum_to the input's shape, an op */
  return lc_gb_end(&b, grad_in);
}

const lc_op_def lc_op_expand = {
    .name = "expand",
    .grad_fn_name = "ExpandBackward",
    .n_inputs = 1,
    .n_outputs = 1,
    .is_view = true,
    .forward = expand_forward,
    .backward = expand_backward,
    .backward_graph = expand_backward_graph,
};

/* ---------------------------------------------------------------- slice and select */

static lc_status slice_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                               const lc_op_args *args, lc_tensor **out) {
  const lc_tensor *x = in[0];
  int64_t dim = args->i[0], start = args->i[1], end = args->i[2], step = args->i[3];
  if (args->ni < 4 || dim < 0 || dim >= x->ndim)
    return lc_set_error(LC_EINDEX, "slice: dim %lld out of range for a tensor with %d dims",
                        (long long)dim, x->ndim);
  int64_t size = x->shape[dim];
  if (step < 1)
    return lc_set_error(LC_EARG, "slice: step must be at least 1, got %lld", (long long)step);
  if (start < 0 || start > end || end > size)
    return lc_set_error(LC_EINDEX,
                        "slice: range [%lld, %lld) is invalid for dim " LC_POS_I
                        " of size %lld (0-based, end exclusive: expected 0 <= start <= end <= "
                        "size)",
                        (long long)start, (long long)end, (long long)dim, (long long)size);
  int64_t shape[LC_MAX_DIMS], strides[LC_MAX_DIMS];
  memcpy(shape, x->shape, (size_t)x->ndim * sizeof *shape);
  memcpy(strides, x->strides, (size_t)x->ndim * sizeof *strides);
  /* no overflow for a step near 2^63: count without end + step, and a stride multiplied only
   * when two elements are taken (then step < size, and stride * step stays in the storage) */
  int64_t count = end == start ? 0 : (end - start - 1) / step + 1;
  shape[dim] = count;
  if (count > 1) strides[dim] = x->strides[dim] * step;
  return make_view(x, x->ndim, shape, strides, x->offset + start * x->strides[dim], out);
}

static lc_status select_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                                const lc_op_args *args, lc_tensor **out) {
  const lc_tensor *x = in[0];
  int64_t dim = args->i[0], index = args->i[1];
  if (x->ndim == 0) return lc_set_error(LC_EINDEX, "select: cannot select from a 0-dim tensor");
  if (args->ni < 2 || dim < 0 || dim >= x->ndim)
    return lc_set_error(LC_EINDEX,
                        "select: dim " LC_POS_I " out of range for a tensor with %d dims",
                        (long long)dim, x->ndim);
  if (index < 0 || index >= x->shape[dim])
    return lc_set_error(
        LC_EINDEX, "select: index " LC_POS_I " is out of range for dim " LC_POS_I " of size %lld",
        (long long)index, (long long)dim, (long long)x->shape[dim]);
  int64_t shape[LC_MAX_DIMS], strides[LC_MAX_DIMS];
  int k = 0;
  for (int i = 0; i < x->ndim; i++) {
    if (i == dim) continue;
    shape[k] = x->shape[i];
    strides[k++] = x->strides[i];
  }
  return make_view(x, k, shape, strides, x->offset + index * x->strides[dim], out);
}

/* slice and select backward: zeros of the input's shape with g copied into the part the
 * forward view picked out. */
static lc_status scatter_into_zeros(const lc_op_ctx *ctx, lc_forward_fn pick, const lc_tensor *g,
                                    lc_tensor **grad_in) {
  if (!ctx->needs_grad[0]) return LC_OK;
  lc_tensor *z = NULL, *part = NULL;
  lc_status st = lc_zeros(ctx->in[0].ndim, ctx->in[0].shape, g->dtype, &z);
  if (st) return st;
  lc_tensor *in[1] = {z};
  st = pick(ctx->op, 1, in, ctx->args, &part);
  if (!st) st = lc_k_copy(part, g);
  lc_release(part);
  if (st) {
    lc_release(z);
    return st;
  }
  grad_in[0] = z;
  return LC_OK;
}

static lc_status slice_backward(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  return scatter_into_zeros(ctx, slice_forward, g, grad_in);
}

static lc_status select_backward(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  return scatter_into_zeros(ctx, select_forward, g, grad_in);
}

/* create_graph: slice and select place g back with scatter_add (whose own gradient is a
 * gather), at a constant index: positions start, start + step, ... along dim, expanded over
 * the other dims. select is a slice of one position with its dim removed. */
static lc_status place_backward_graph(const lc_op_ctx *ctx, const lc_tensor *g,
                                      lc_tensor **grad_in) {
  if (!ctx->needs_grad[0]) return LC_OK;
  const lc_meta *m = &ctx->in[0];
  const bool is_select = ctx->op == &lc_op_select;
  const int dim = (int)ctx->args->i[0];
  const int64_t start = ctx->args->i[1], step = is_select ? 1 : ctx->args->i[3];
  int64_t sh[LC_MAX_DIMS], one[LC_MAX_DIMS];
  for (int d = 0; d < m->ndim; d++) {
    sh[d] = d == dim ? (is_select ? 1 : g->shape[d]) : m->shape[d];
    one[d] = d == dim ? sh[d] : 1;
  }
  lc_gb b = LC_GB_INIT(ctx);
  lc_tensor *ix = NULL;
  b.st = lc_tensor_new(1, &sh[dim], LC_INT64, &ix);
  if (!b.st) {
    int64_t *p = lc_data(ix);
    for (int64_t k = 0; k < sh[dim]; k++)
      p[k] = start + k * step;
  }
  ix = lc_gb_keep(&b, ix);
  ix = lc_gb_expand(&b, lc_gb_reshape(&b, ix, m->ndim, one), m->ndim, sh);
  lc_tensor *src = lc_gb_reshape(&b, g, m->ndim, sh);
  lc_gb_grad(&b, 0, lc_gb_put_back(&b, m, dim, src, ix), grad_in);
  return lc_gb_end(&b, grad_in);
}

const lc_op_def lc_op_slice = {
    .name = "slice",
    .grad_fn_name = "SliceBackward",
    .n_inputs = 1,
    .n_outputs = 1,
    .is_view = true,
    .forward = slice_forward,
    .backward = slice_backward,
    .backward_graph = place_backward_graph,
};

const lc_op_def lc_op_select = {
    .name = "select",
    .grad_fn_name = "SelectBackward",
    .n_inputs = 1,
    .n_outputs = 1,
    .is_view = true,
    .forward = select_forward,
    .backward = select_backward,
    .backward_graph = place_backward_graph,
};

/* ---------------------------------------------------------------- as_strided, as_strided_scatter
 * The two ops behind autograd through in-place writes into views (engine.c, PyTorch's
 * CopySlices). Geometry: input `geom`, an int64 tensor {ndim, offset, shape..., strides...}
 * giving a view of a contiguous tensor of the base's shape. Both produce new contiguous tensors
 * and are each other's adjoint, so they differentiate to any order. */

typedef struct geom {
  int ndim;
  int64_t offset, shape[LC_MAX_DIMS], strides[LC_MAX_DIMS];
} geom;

static lc_status read_geom(const char *fn, const lc_tensor *g, const lc_tensor *base, geom *out) {
  if (g->dtype != LC_INT64 || g->ndim != 1 || !g->contiguous || g->numel < 2)
    return lc_set_error(LC_EARG, "%s: malformed view geometry", fn);
  const int64_t *p = lc_data(g);
  int nd = (int)p[0];
  if (nd < 0 || nd > LC_MAX_DIMS || g->numel != 2 + 2 * (int64_t)nd)
    return lc_set_error(LC_EARG, "%s: malformed view geometry", fn);
  out->ndim = nd;
  out->offset = p[1];
  /* the view must lie inside the base: offset + sum (shape - 1) * stride within [0, numel) */
  int64_t lo = out->offset, hi = out->offset, n = 1;
  for (int d = 0; d < nd; d++) {
    out->shape[d] = p[2 + d];
    out->strides[d] = p[2 + nd + d];
    if (out->shape[d] < 0) return lc_set_error(LC_EARG, "%s: malformed view geometry", fn);
    n *= out->shape[d];
    if (out->shape[d] > 1) {
      int64_t span = (out->shape[d] - 1) * out->strides[d];
      if (span < 0)
        lo += span;
      else
        hi += span;
    }
  }
  if (n > 0 && (lo < 0 || hi >= base->numel))
    return lc_set_error(LC_EINDEX, "%s: the view lies outside its base", fn);
  return LC_OK;
}

/* as_strided(x, geom): a contiguous copy of the view geom of x (x read as contiguous). */
static lc_status as_strided_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                                    const lc_op_args *args, lc_tensor **out) {
  geom gm;
  lc_status st = read_geom(op->name, in[1], in[0], &gm);
  if (st) return st;
  lc_tensor *d = NULL, *v = NULL;
  if ((st = lc_k_dense(in[0], &d))) return st;
  st = lc_tensor_view_of(d, gm.ndim, gm.shape, gm.strides, d->offset + gm.offset, &v);
  if (!st) st = lc_k_copy_as(v, v->dtype, out);
  lc_release(v);
  lc_release(d);
  return st;
}

/* as_strided_scatter(base, src, geom): a contiguous copy of base with the view geom replaced
 * by src. */
static lc_status as_strided_scatter_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                                            const lc_op_args *args, lc_tensor **out) {
  geom gm;
  lc_status st = read_geom(op->name, in[2], in[0], &gm);
  if (st) return st;
  const lc_tensor *src = in[1];
  if (src->ndim != gm.ndim ||
      (gm.ndim && memcmp(src->shape, gm.shape, (size_t)gm.ndim * sizeof gm.shape[0])))
    return lc_set_error(LC_ESHAPE, "%s: src does not have the view's shape", op->name);
  lc_dtype dt = lc_promote(in[0]->dtype, src->dtype);
  lc_tensor *r = NULL, *v = NULL;
  if ((st = lc_k_copy_as(in[0], dt, &r))) return st;
  st = lc_tensor_view_of(r, gm.ndim, gm.shape, gm.strides, gm.offset, &v);
  if (!st) st = lc_k_copy(v, src);
  lc_release(v);
  if (st) {
    lc_release(r);
    return st;
  }
  *out = r;
  return LC_OK;
}

static lc_status as_strided_backward(const lc_op_ctx *ctx, const lc_tensor *g,
                                     lc_tensor **grad_in) {
  if (!ctx->needs_grad[0]) return LC_OK;
  lc_tensor *gm = NULL, *z = NULL;
  lc_status st = lc_ctx_saved(ctx, 0, &gm);
  if (!st) st = lc_zeros(ctx->in[0].ndim, ctx->in[0].shape, g->dtype, &z);
  if (st) return st;
  lc_tensor *in[3] = {z, (lc_tensor *)g, gm};
  st = ctx->run(&lc_op_as_strided_scatter, 3, in, NULL, &grad_in[0]);
  lc_release(z);
  return st;
}

static lc_status as_strided_scatter_backward(const lc_op_ctx *ctx, const lc_tensor *g,
                                             lc_tensor **grad_in) {
  lc_tensor *gm = NULL;
  lc_status st = lc_ctx_saved(ctx, 0, &gm);
  if (st) return st;
  if (ctx->needs_grad[0]) { /* g with the overwritten view zeroed */
    lc_tensor *z = NULL;
    if ((st = lc_zeros(ctx->in[1].ndim, ctx->in[1].shape, g->dtype, &z))) return st;
    lc_tensor *in[3] = {(lc_tensor *)g, z, gm};
    st = ctx->run(&lc_op_as_strided_scatter, 3, in, NULL, &grad_in[0]);
    lc_release(z);
    if (st) return st;
  }
  if (ctx->needs_grad[1]) {
    lc_tensor *in[2] = {(lc_tensor *)g, gm};
    st = ctx->run(&lc_op_as_strided, 2, in, NULL, &grad_in[1]);
    if (st) {
      lc_release(grad_in[0]);
      grad_in[0] = NULL;
    }
  }
  return st;
}

const lc_op_def lc_op_as_strided = {
    .name = "as_strided",
    .grad_fn_name = "AsStridedBackward",
    .n_inputs = 2,
    .n_outputs = 1,
    .save = LC_SAVE_IN(1),
    .forward = as_strided_forward,
    .backward = as_strided_backward,
    .backward_graph = as_strided_backward,
};

const lc_op_def lc_op_as_strided_scatter = {
    .name = "as_strided_scatter",
    .grad_fn_name = "CopySlices",
    .n_inputs = 3,
    .n_outputs = 1,
    .save = LC_SAVE_IN(2),
    .forward = as_strided_scatter_forward,
    .backward = as_strided_scatter_backward,
    .backward_graph = as_strided_scatter_backward,
};
