/*
 * shape.c - public view functions: view, reshape, permute, transpose, t, narrow, slice,
 * select, squeeze, unsqueeze, expand, flatten, unflatten. Each checks and normalises its arguments
 * (negative dims, -1 sizes) and records one view op through lc_apply.
 */
#include "shape.h"

#include "../autograd/autograd.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static lc_status apply1(const lc_op_def *op, const lc_tensor *t, const lc_op_args *a,
                        lc_tensor **out) {
  lc_tensor *in[1] = {(lc_tensor *)t};
  return lc_apply(op, 1, in, a, out);
}

static lc_status check_t(const char *fn, const lc_tensor *t, lc_tensor **out) {
  if (!t) return lc_set_error(LC_EARG, "%s: tensor is NULL", fn);
  if (!out) return lc_set_error(LC_EARG, "%s: out is NULL", fn);
  return LC_OK;
}

/* The product of the sizes other than -1 (checked: each >= 0); *over when it exceeds INT64_MAX
 * (a zero size makes it 0 whatever the others). */
static int64_t sizes_product(int n, const int64_t *sizes, bool *over) {
  *over = false;
  for (int k = 0; k < n; k++)
    if (sizes[k] == 0) return 0;
  int64_t prod = 1;
  for (int k = 0; k < n; k++) {
    if (sizes[k] == -1) continue;
    if (lc_mul_overflows(prod, sizes[k], &prod)) {
      *over = true;
      return INT64_MAX;
    }
  }
  return prod;
}

/* Resolves one -1 in shape into args->i and checks the element count against t. */
static lc_status infer_shape(const char *fn, const lc_tensor *t, int ndim, const int64_t *shape,
                             lc_op_args *a) {
  char buf[256];
  if (ndim < 0 || ndim > LC_MAX_DIMS)
    return lc_set_error(LC_ESHAPE, "%s: a tensor has at most %d dims, got %d", fn, LC_MAX_DIMS,
                        ndim);
  if (ndim > 0 && !shape) return lc_set_error(LC_EARG, "%s: shape is NULL", fn);
  int infer = -1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] == -1) {
      if (infer >= 0)
        return lc_set_error(LC_ESHAPE, "%s: only one dim can be inferred (-1), got shape %s", fn,
                            lc_shape_str(ndim, shape, buf, sizeof buf));
      infer = i;
    } else if (shape[i] < 0) {
      return lc_set_error(LC_ESHAPE, "%s: invalid size %lld at dim %d of shape %s", fn,
                          (long long)shape[i], i, lc_shape_str(ndim, shape, buf, sizeof buf));
    }
  }
  bool over; /* the known sizes multiply past int64: then they fit no tensor */
  int64_t known = sizes_product(ndim, shape, &over);
  memcpy(a->i, shape, (size_t)ndim * sizeof *shape);
  a->ni = ndim;
  if (over)
    return lc_set_error(LC_ESHAPE, "%s: shape %s is invalid for input of size %lld", fn,
                        lc_shape_str(ndim, shape, buf, sizeof buf), (long long)t->numel);
  if (infer >= 0) {
    if (known == 0 || t->numel % known != 0)
      return lc_set_error(LC_ESHAPE, "%s: shape %s is invalid for input of size %lld", fn,
                          lc_shape_str(ndim, shape, buf, sizeof buf), (long long)t->numel);
    a->i[infer] = t->numel / known;
  } else if (known != t->numel) {
    return lc_set_error(LC_ESHAPE, "%s: shape %s is invalid for input of size %lld", fn,
                        lc_shape_str(ndim, shape, buf, sizeof buf), (long long)t->numel);
  }
  return LC_OK;
}

lc_status lc_view(const lc_tensor *t, int ndim, const int64_t *shape, lc_tensor **out) {
  lc_status st = check_t("view", t, out);
  if (st) return st;
  lc_op_args a = {0};
  st = infer_shape("view", t, ndim, shape, &a);
  if (st) return st;
  return apply1(&lc_op_view, t, &a, out);
}

/* reshape with an already resolved shape: a view when possible, else a recorded copy. */
static lc_status reshape_resolved(const lc_tensor *t, const lc_op_args *a, lc_tensor **out) {
  int64_t strides[LC_MAX_DIMS];
  if (lc_shape_view_strides(t, a->ni, a->i, strides)) return apply1(&lc_op_view, t, a, out);
  lc_tensor *c = NULL;
  lc_status st = lc_contiguous(t, &c);
  if (st) return st;
  st = apply1(&lc_op_view, c, a, out);
  lc_release(c);
  return st;
}

lc_status lc_reshape(const lc_tensor *t, int ndim, const int64_t *shape, lc_tensor **out) {
  lc_status st = check_t("reshape", t, out);
  if (st) return st;
  lc_op_args a = {0};
  st = infer_shape("reshape", t, ndim, shape, &a);
  if (st) return st;
  return reshape_resolved(t, &a, out);
}

lc_status lc_permute(const lc_tensor *t, const int *dims, lc_tensor **out) {
  lc_status st = check_t("permute", t, out);
  if (st) return st;
  if (t->ndim > 0 && !dims) return lc_set_error(LC_EARG, "permute: dims is NULL");
  lc_op_args a = {.ni = t->ndim};
  for (int i = 0; i < t->ndim; i++) /* the kernel owns the permutation rule (check_perm) */
    a.i[i] = dims[i];
  return apply1(&lc_op_permute, t, &a, out);
}

lc_status lc_transpose(const lc_tensor *t, int dim0, int dim1, lc_tensor **out) {
  lc_status st = check_t("transpose", t, out);
  if (st) return st;
  st = lc_wrap_dim(&dim0, t->ndim, "transpose");
  if (!st) st = lc_wrap_dim(&dim1, t->ndim, "transpose");
  if (st) return st;
  lc_op_args a = {.ni = t->ndim};
  for (int i = 0; i < t->ndim; i++)
    a.i[i] = i;
  if (t->ndim > 0) {
    a.i[dim0] = dim1;
    a.i[dim1] = dim0;
  }
  return apply1(&lc_op_permute, t, &a, out);
}

lc_status lc_t(const lc_tensor *t, lc_tensor **out) {
  lc_status st = check_t("t", t, out);
  if (st) return st;
  if (t->ndim > 2)
    return lc_set_error(LC_ESHAPE, "t: expects a tensor with <= 2 dims, got %d dims", t->ndim);
  /* 0-D and 1-D: the identity permutation, still a (recorded) view */
  return lc_transpose(t, 0, t->ndim == 2 ? 1 : 0, out);
}

static lc_status slice_apply(const lc_tensor *t, int dim, int64_t start, int64_t end, int64_t step,
                             lc_tensor **out) {
  lc_op_args a = {.i = {dim, start, end, step}, .ni = 4};
  return apply1(&lc_op_slice, t, &a, out);
}

static lc_status need_dims(const char *fn, const lc_tensor *t) {
  if (t->ndim == 0)
    return lc_set_error(LC_EINDEX, "%s: expects a tensor with at least 1 dim, got a 0-dim tensor",
                        fn);
  return LC_OK;
}

lc_status lc_narrow(const lc_tensor *t, int dim, int64_t start, int64_t length, lc_tensor **out) {
  lc_status st = check_t("narrow", t, out);
  if (!st) st = need_dims("narrow", t);
  if (!st) st = lc_wrap_dim(&dim, t->ndim, "narrow");
  if (st) return st;
  int64_t size = t->shape[dim];
  if (start < -size || start > size)
    return lc_set_error(
        LC_EINDEX, "narrow: start " LC_POS_I " is out of range for dim " LC_POS_D " of size %lld",
        (long long)start, dim, (long long)size);
  if (start < 0) start += size; /* PyTorch wraps a negative start */
  if (length < 0 || length > size - start) /* start + length could overflow */
    return lc_set_error(LC_EINDEX,
                        "narrow: start (" LC_POS_I ") + length (%lld) exceeds dim " LC_POS_D
                        " of size %lld (length must be >= 0)",
                        (long long)start, (long long)length, dim, (long long)size);
  return slice_apply(t, dim, start, start + length, 1, out);
}

lc_status lc_slice(const lc_tensor *t, int dim, int64_t start, int64_t end, int64_t step,
                   lc_tensor **out) {
  lc_status st = check_t("slice", t, out);
  if (!st) st = need_dims("slice", t);
  if (!st) st = lc_wrap_dim(&dim, t->ndim, "slice");
  if (st) return st;
  return slice_apply(t, dim, start, end, step, out); /* the range rule is the kernel's */
}

lc_status lc_select(const lc_tensor *t, int dim, int64_t index, lc_tensor **out) {
  lc_status st = check_t("select", t, out);
  if (!st) st = need_dims("select", t);
  if (!st) st = lc_wrap_dim(&dim, t->ndim, "select");
  if (st) return st;
  if ((st = lc_wrap_index(&index, t->shape[dim], dim, "select"))) return st;
  lc_op_args a = {.i = {dim, index}, .ni = 2};
  return apply1(&lc_op_select, t, &a, out);
}

lc_status lc_squeeze(const lc_tensor *t, lc_tensor **out) {
  lc_status st = check_t("squeeze", t, out);
  if (st) return st;
  lc_op_args a = {0};
  for (int i = 0; i < t->ndim; i++)
    if (t->shape[i] != 1) a.i[a.ni++] = t->shape[i];
  return apply1(&lc_op_view, t, &a, out);
}

lc_status lc_squeeze_dim(const lc_tensor *t, int dim, lc_tensor **out) {
  lc_status st = check_t("squeeze", t, out);
  if (!st) st = lc_wrap_dim(&dim, t->ndim, "squeeze");
  if (st) return st;
  lc_op_args a = {0};
  for (int i = 0; i < t->ndim; i++)
    if (i != dim || t->shape[i] != 1) a.i[a.ni++] = t->shape[i];
  return apply1(&lc_op_view, t, &a, out);
}

lc_status lc_unsqueeze(const lc_tensor *t, int dim, lc_tensor **out) {
  lc_status st = check_t("unsqueeze", t, out);
  if (st) return st;
  if (dim < -(t->ndim + 1) || dim > t->ndim)
    return lc_set_error(LC_EINDEX,
                        "unsqueeze: dim %d out of range for a tensor with %d dims (expected "
                        "%d..%d)",
                        dim, t->ndim, -(t->ndim + 1), t->ndim);
  if (t->ndim >= LC_MAX_DIMS)
    return lc_set_error(LC_ESHAPE, "unsqueeze: a tensor has at most %d dims", LC_MAX_DIMS);
  if (dim < 0) dim += t->ndim + 1;
  lc_op_args a = {.ni = t->ndim + 1};
  for (int i = 0, k = 0; i < t->ndim + 1; i++)
    a.i[i] = i == dim ? 1 : t->shape[k++];
  return apply1(&lc_op_view, t, &a, out);
}

lc_status lc_expand(const lc_tensor *t, int ndim, const int64_t *shape, lc_tensor **out) {
  lc_status st = check_t("expand", t, out);
  if (st) return st;
  if (ndim < t->ndim || ndim > LC_MAX_DIMS)
    return lc_set_error(LC_ESHAPE,
                        "expand: the number of sizes provided (%d) must be at least the number "
                        "of dims of the tensor (%d) and at most %d",
                        ndim, t->ndim, LC_MAX_DIMS);
  if (ndim > 0 && !shape) return lc_set_error(LC_EARG, "expand: shape is NULL");
  int lead = ndim - t->ndim;
  lc_op_args a = {.ni = ndim};
  for (int i = 0; i < ndim; i++) {
    int64_t s = shape[i];
    if (s == -1) {
      if (i < lead)
        return lc_set_error(LC_ESHAPE,
                            "expand: -1 is not allowed for the new leading dim %d (it has no "
                            "existing size to keep)",
                            i);
      s = t->shape[i - lead];
    } else if (s < 0) {
      return lc_set_error(LC_ESHAPE, "expand: invalid size %lld at dim %d", (long long)s, i);
    }
    a.i[i] = s;
  }
  return apply1(&lc_op_expand, t, &a, out);
}

lc_status lc_flatten(const lc_tensor *t, int start_dim, int end_dim, lc_tensor **out) {
  lc_status st = check_t("flatten", t, out);
  if (!st) st = lc_wrap_dim(&start_dim, t->ndim, "flatten");
  if (!st) st = lc_wrap_dim(&end_dim, t->ndim, "flatten");
  if (st) return st;
  lc_op_args a = {0};
  if (t->ndim == 0) {
    a.ni = 1;
    a.i[0] = 1;
    return apply1(&lc_op_view, t, &a, out);
  }
  if (start_dim > end_dim)
    return lc_set_error(LC_EARG,
                        "flatten: start_dim " LC_POS_D " must not come after end_dim " LC_POS_D,
                        start_dim, end_dim);
  for (int i = 0; i < start_dim; i++)
    a.i[a.ni++] = t->shape[i];
  a.i[a.ni++] = lc_shape_numel(end_dim - start_dim + 1, t->shape + start_dim);
  for (int i = end_dim + 1; i < t->ndim; i++)
    a.i[a.ni++] = t->shape[i];
  /* like PyTorch, a view when the layout allows it, else a copy */
  return reshape_resolved(t, &a, out);
}

lc_status lc_unflatten_check_sizes(const char *fn, const char *what, int nsizes,
                                   const int64_t *sizes) {
  if (nsizes < 1 || nsizes > LC_MAX_DIMS || !sizes)
    return lc_set_error(LC_EARG, "%s: %s must hold 1..%d sizes, got %d", fn, what, LC_MAX_DIMS,
                        sizes ? nsizes : 0);
  int infer = -1;
  for (int k = 0; k < nsizes; k++) {
    if (sizes[k] < -1)
      return lc_set_error(LC_EARG, "%s: %s[" LC_POS_D "] must be >= 0 or -1, got %lld", fn, what, k,
                          (long long)sizes[k]);
    if (sizes[k] == -1) {
      if (infer >= 0)
        return lc_set_error(LC_EARG,
                            "%s: only one size may be -1, got -1 at " LC_POS_D " and " LC_POS_D, fn,
                            infer, k);
      infer = k;
    }
  }
  return LC_OK;
}

lc_status lc_unflatten_as(const char *what, const lc_tensor *x, int dim, int nsizes,
                          const int64_t *sizes, lc_tensor **out) {
  lc_status st = check_t("unflatten", x, out);
  if (st) return st;
  if (x->ndim == 0) return lc_set_error(LC_ESHAPE, "unflatten: cannot unflatten a 0-dim tensor");
  if ((st = lc_wrap_dim(&dim, x->ndim, "unflatten"))) return st;
  if ((st = lc_unflatten_check_sizes("unflatten", what, nsizes, sizes))) return st;
  if (x->ndim - 1 + nsizes > LC_MAX_DIMS)
    return lc_set_error(LC_ESHAPE, "unflatten: the result would have %d dims, at most %d allowed",
                        x->ndim - 1 + nsizes, LC_MAX_DIMS);
  int infer = -1;
  for (int k = 0; k < nsizes; k++)
    if (sizes[k] == -1) infer = k;
  bool over;
  const int64_t prod = sizes_product(nsizes, sizes, &over), size = x->shape[dim];
  bool fits = infer >= 0 ? !over && prod != 0 && size % prod == 0 : !over && prod == size;
  if (!fits) {
    char b1[256], b2[256], why[160];
    if (over)
      snprintf(why, sizeof why, "the sizes multiply to more than %lld", (long long)INT64_MAX);
    else if (infer >= 0 && prod == 0)
      snprintf(why, sizeof why, "-1 cannot be inferred next to a size 0");
    else if (infer >= 0)
      snprintf(why, sizeof why,
               "-1 cannot be inferred: the other sizes multiply to %lld, which does not divide "
               "%lld",
               (long long)prod, (long long)size);
    else
      snprintf(why, sizeof why, "the sizes multiply to %lld", (long long)prod);
    return lc_set_error(LC_ESHAPE,
                        "unflatten: %s %s does not fit dim " LC_POS_D
                        " of size %lld: input shape %s (%s)",
                        what, lc_shape_str(nsizes, sizes, b1, sizeof b1), dim, (long long)size,
                        lc_shape_str(x->ndim, x->shape, b2, sizeof b2), why);
  }
  lc_op_args a = {0};
  for (int d = 0; d < dim; d++)
    a.i[a.ni++] = x->shape[d];
  for (int k = 0; k < nsizes; k++)
    a.i[a.ni++] = k == infer ? size / prod : sizes[k];
  for (int d = dim + 1; d < x->ndim; d++)
    a.i[a.ni++] = x->shape[d];
  /* like PyTorch, a view when the layout allows it, else a copy */
  return reshape_resolved(x, &a, out);
}

lc_status lc_unflatten(const lc_tensor *x, int dim, int nsizes, const int64_t *sizes,
                       lc_tensor **out) {
  return lc_unflatten_as("sizes", x, dim, nsizes, sizes, out);
}
