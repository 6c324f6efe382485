/* tensor.c - tensor headers: lifetime, metadata, layout and broadcasting helpers. */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lc_node_base_release(lc_node_base *n) {
  if (n && atomic_fetch_sub_explicit(&n->refcount, 1, memory_order_acq_rel) == 1) n->destroy(n);
}

lc_tensor *lc_retain(lc_tensor *t) {
  if (t) atomic_fetch_add_explicit(&t->refcount, 1, memory_order_relaxed);
  return t;
}

void lc_release(lc_tensor *t) {
  /* view_base and grad are released iteratively: a chain of views of views must not recurse. */
  while (t && atomic_fetch_sub_explicit(&t->refcount, 1, memory_order_acq_rel) == 1) {
    lc_tensor *base = t->view_base;
    lc_release(t->grad);
    lc_release(t->grad_buffer);
    lc_node_base_release(t->grad_fn);
    lc_node_base_release(t->hooks);
    /* A header sharing its block with its storage is freed with the storage (which may
     * outlive it in views), not here. */
    lc_storage *s = t->storage, *home = t->home;
    bool embedded = home || (s && s->block == (void *)t);
    lc_storage_release(s);
    if (home) lc_storage_release(home); /* may free this header: t is not touched after */
    if (!embedded) lc_pool_put(LC_POOL_TENSOR, t);
    t = base;
  }
}

lc_status lc_check_like(const char *fn, const char *what, const lc_tensor *x, const lc_tensor *t) {
  if (x->ndim != t->ndim || memcmp(x->shape, t->shape, sizeof(int64_t) * (size_t)t->ndim)) {
    char a[256], b[256];
    return lc_set_error(LC_ESHAPE, "%s: the %s has shape %s, the tensor %s", fn, what,
                        lc_shape_str(x->ndim, x->shape, a, sizeof a),
                        lc_shape_str(t->ndim, t->shape, b, sizeof b));
  }
  if (x->dtype != t->dtype)
    return lc_set_error(LC_EDTYPE, "%s: the %s is %s, the tensor %s", fn, what,
                        lc_dtype_name(x->dtype), lc_dtype_name(t->dtype));
  return LC_OK;
}

lc_status lc_set_(lc_tensor *t, const lc_tensor *src) {
  if (!t || !src) return lc_set_error(LC_EARG, "set_: tensor and source must not be NULL");
  lc_status st = lc_check_like("set_", "source", src, t);
  if (st) return st;
  if (t->grad_fn)
    return lc_set_error(LC_EARG, "set_: the tensor has autograd history (only a leaf's data "
                                 "can be replaced)");
  if (t->view_base)
    return lc_set_error(LC_EARG, "set_: the tensor is a view (its base would keep the old data)");
  if (t == src) return LC_OK;
  lc_storage *old = t->storage;
  lc_storage_retain(src->storage);
  t->storage = src->storage;
  if (old->block == (void *)t)
    t->home = old; /* the reference moves: the block is this header */
  else
    lc_storage_release(old);
  t->offset = src->offset;
  memcpy(t->strides, src->strides, sizeof t->strides);
  t->contiguous = src->contiguous;
  return LC_OK;
}

int lc_ndim(const lc_tensor *t) { return t->ndim; }
const int64_t *lc_shape(const lc_tensor *t) { return t->shape; }
const int64_t *lc_strides(const lc_tensor *t) { return t->strides; }
int64_t lc_offset(const lc_tensor *t) { return t->offset; }
int64_t lc_numel(const lc_tensor *t) { return t->numel; }
lc_dtype lc_dtype_of(const lc_tensor *t) { return t->dtype; }
bool lc_is_contiguous(const lc_tensor *t) { return t->contiguous; }
size_t lc_storage_nbytes(const lc_tensor *t) { return t->storage->nbytes; }
bool lc_same_storage(const lc_tensor *a, const lc_tensor *b) { return a->storage == b->storage; }

void *lc_data(const lc_tensor *t) {
  return (char *)t->storage->data + t->offset * (int64_t)lc_dtype_size(t->dtype);
}

void lc_bump_version(lc_tensor *t) { atomic_fetch_add(&t->storage->version, 1); }
uint64_t lc_version(const lc_tensor *t) { return atomic_load(&t->storage->version); }

int64_t lc_shape_numel(int ndim, const int64_t *shape) {
  int64_t n = 1;
  bool bad = false; /* a negative size or a product past int64: -1, unless a size is 0 */
  for (int i = 0; i < ndim; i++) {
    if (shape[i] == 0) return 0;
    bad = bad || shape[i] < 0 || lc_mul_overflows(n, shape[i], &n);
  }
  return bad ? -1 : n;
}

void lc_contiguous_strides(int ndim, const int64_t *shape, int64_t *strides) {
  int64_t s = 1; /* bounded: a checked shape's sizes (each at least 1) multiply within int64 */
  for (int i = ndim - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i] > 1 ? shape[i] : 1;
  }
}

void lc_tensor_refresh(lc_tensor *t) {
  t->numel = lc_shape_numel(t->ndim, t->shape);
  /* C-contiguous: strides match the dense layout, ignoring dims of size 1. */
  bool c = true;
  int64_t expect = 1;
  for (int i = t->ndim - 1; i >= 0; i--) {
    if (t->shape[i] == 1) continue;
    if (t->strides[i] != expect) {
      c = false;
      break;
    }
    expect *= t->shape[i];
  }
  t->contiguous = c || t->numel == 0;
}

lc_status lc_check_shape(const char *what, int ndim, const int64_t *shape) {
  if (ndim < 0 || ndim > LC_MAX_DIMS)
    return lc_set_error(LC_ESHAPE, "%s: expected 0..%d dims, got %d", what, LC_MAX_DIMS, ndim);
  if (ndim > 0 && !shape)
    return lc_set_error(LC_EARG, "%s: shape is NULL for a %d-dim tensor", what, ndim);
  /* The sizes, each at least 1, must multiply within 2^59 - 1 = int64 / 16 (the largest
   * element): then the element count, the byte count and every contiguous stride fit too, even
   * with a 0 size. */
  int64_t span = 1;
  const int64_t limit = INT64_MAX / 16;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0)
      return lc_set_error(LC_EARG, "%s: sizes must be non-negative, got %lld at dim " LC_POS_D,
                          what, (long long)shape[i], i);
    if (lc_mul_overflows(span, shape[i] > 1 ? shape[i] : 1, &span) || span > limit) {
      char b[LC_MAX_DIMS * 24 + 4];
      return lc_set_error(LC_ENOMEM,
                          "%s: shape %s is too large: its sizes multiply past 2^59 - 1 (the "
                          "element count, byte count or strides would overflow 64 bits)",
                          what, lc_shape_str(ndim, shape, b, sizeof b));
    }
  }
  return LC_OK;
}

static lc_tensor *header_alloc(void) {
  lc_tensor *t = lc_pool_get(LC_POOL_TENSOR);
  if (!t) t = malloc(sizeof *t);
  if (!t) {
    lc_error_oom(sizeof *t);
    return NULL;
  }
  memset(t, 0, sizeof *t);
  atomic_init(&t->refcount, 1);
  return t;
}

lc_status lc_tensor_new(int ndim, const int64_t *shape, lc_dtype dt, lc_tensor **out) {
  if ((unsigned)dt >= LC_DTYPE_COUNT) return lc_set_error(LC_EDTYPE, "tensor: invalid dtype");
  lc_status st = lc_check_shape("tensor", ndim, shape);
  if (st) return st;
  int64_t n = lc_shape_numel(ndim, shape);
  size_t nbytes = (size_t)n * lc_dtype_size(dt);
  lc_tensor *t;
  if (nbytes <= LC_SMALL_BYTES) {
    /* small: header, storage and data in one block (one malloc, or none from the pool) */
    lc_storage *s;
    t = lc_storage_new_embedded(nbytes, &s);
    if (!t) return LC_ENOMEM;
    memset(t, 0, sizeof *t);
    atomic_init(&t->refcount, 1);
    t->storage = s;
  } else {
    t = header_alloc();
    if (!t) return LC_ENOMEM;
    t->storage = lc_storage_new(nbytes);
    if (!t->storage) {
      lc_pool_put(LC_POOL_TENSOR, t);
      return LC_ENOMEM;
    }
  }
  t->dtype = dt;
  t->ndim = ndim;
  t->numel = n;
  t->contiguous = true; /* fresh dense layout */
  if (ndim) memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
  lc_contiguous_strides(ndim, shape, t->strides);
  *out = t;
  return LC_OK;
}

lc_status lc_tensor_view_of(const lc_tensor *src, int ndim, const int64_t *shape,
                            const int64_t *strides, int64_t offset, lc_tensor **out) {
  lc_status st = lc_check_shape("view", ndim, shape);
  if (st) return st;
  lc_tensor *t = header_alloc();
  if (!t) return LC_ENOMEM;
  lc_storage_retain(src->storage);
  t->storage = src->storage;
  t->dtype = src->dtype;
  t->ndim = ndim;
  if (ndim) {
    memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    memcpy(t->strides, strides, (size_t)ndim * sizeof *strides);
  }
  t->offset = offset;
  lc_tensor_refresh(t);
  *out = t;
  return LC_OK;
}

lc_status lc_wrap_dim64(int64_t dim, int ndim, const char *what, int *out) {
  int n = ndim > 0 ? ndim : 1; /* a 0-dim tensor accepts dim 0 and -1, like PyTorch */
  int64_t d = dim < 0 ? dim + n : dim;
  if (d < 0 || d >= n)
    return lc_set_error(LC_EINDEX,
                        "%s: dim " LC_POS_I
                        " out of range for a tensor with %d dims (expected " LC_POS_D ".." LC_POS_D
                        " or " LC_POS_D ".." LC_POS_D ")",
                        what, (long long)dim, ndim, 0, n - 1, -n, -1);
  *out = (int)d;
  return LC_OK;
}

lc_status lc_wrap_dim(int *dim, int ndim, const char *what) {
  return lc_wrap_dim64(*dim, ndim, what, dim);
}

lc_status lc_wrap_index(int64_t *index, int64_t size, int dim, const char *what) {
  int64_t i = *index < 0 && size > 0 ? *index + size : *index;
  if (i < 0 || i >= size) {
    if (size == 0)
      return lc_set_error(LC_EINDEX,
                          "%s: index " LC_POS_I " out of range for dim " LC_POS_D
                          " of size 0 (it has no indices)",
                          what, (long long)*index, dim);
    return lc_set_error(LC_EINDEX,
                        "%s: index " LC_POS_I " out of range for dim " LC_POS_D
                        " of size %lld (expected " LC_POS_I ".." LC_POS_I " or " LC_POS_I
                        ".." LC_POS_I ")",
                        what, (long long)*index, dim, (long long)size, 0LL, (long long)size - 1,
                        -(long long)size, -1LL);
  }
  *index = i;
  return LC_OK;
}

void lc_marked_position(int nd, const int64_t *shape, int64_t flat, char *buf, size_t cap) {
  int64_t c[LC_MAX_DIMS];
  for (int d = nd - 1; d >= 0; d--) {
    c[d] = shape[d] ? flat % shape[d] : 0;
    flat = shape[d] ? flat / shape[d] : 0;
  }
  size_t n = 0;
  buf[0] = 0;
  for (int d = 0; d < nd && n < cap; d++)
    n += (size_t)snprintf(buf + n, cap - n, "%s" LC_POS_I "%s", d ? ", " : "[", (long long)c[d],
                          d + 1 == nd ? "]" : "");
}

lc_status lc_check_indices(const lc_tensor *idx, int64_t size, int dim, const char *what) {
  if (!idx) return lc_set_error(LC_EARG, "%s: index tensor is NULL", what);
  if (idx->dtype != LC_INT64 && idx->dtype != LC_INT32)
    return lc_set_error(LC_EDTYPE, "%s: expected an int64 or int32 index tensor, got %s", what,
                        lc_dtype_name(idx->dtype));
  if (idx->numel == 0) return LC_OK;
  lc_iter it;
  lc_iter_init(&it, 1, idx->ndim, idx->shape, (const int64_t(*)[LC_MAX_DIMS])idx->strides);
  const void *p = lc_data(idx);
  int64_t offs[LC_ITER_MAX_OPS];
  for (int64_t r = 0; r < it.outer; r++) {
    lc_iter_row(&it, r, offs);
    for (int64_t j = 0; j < it.inner; j++) {
      int64_t k = offs[0] + j * it.inner_stride[0];
      int64_t v = idx->dtype == LC_INT64 ? ((const int64_t *)p)[k] : ((const int32_t *)p)[k];
      if (v >= 0 && v < size) continue;
      char where[LC_MAX_DIMS * 28 + 4];
      lc_marked_position(idx->ndim, idx->shape, r * it.inner + j, where, sizeof where);
      if (size == 0)
        return lc_set_error(LC_EINDEX,
                            "%s: index%s = " LC_POS_I " out of range for dim " LC_POS_D
                            " of size 0 (it has no indices)",
                            what, where, (long long)v, dim);
      return lc_set_error(LC_EINDEX,
                          "%s: index%s = " LC_POS_I " out of range for dim " LC_POS_D
                          " of size %lld (expected " LC_POS_I ".." LC_POS_I ")",
                          what, where, (long long)v, dim, (long long)size, 0LL,
                          (long long)size - 1);
    }
  }
  return LC_OK;
}

const char *lc_shape_str(int ndim, const int64_t *shape, char *buf, size_t cap) {
  size_t len = 0;
  len += (size_t)snprintf(buf, cap, "{");
  for (int i = 0; i < ndim && len < cap; i++)
    len += (size_t)snprintf(buf + len, cap - len, i ? ", %lld" : "%lld", (long long)shape[i]);
  if (len < cap) snprintf(buf + len, cap - len, "}");
  return buf;
}

lc_status lc_broadcast_shapes(int na, const int64_t *a, int nb, const int64_t *b, int *nout,
                              int64_t *out, const char *what) {
  int n = na > nb ? na : nb;
  for (int i = 0; i < n; i++) {
    int64_t sa = i < n - na ? 1 : a[i - (n - na)];
    int64_t sb = i < n - nb ? 1 : b[i - (n - nb)];
    if (sa != sb && sa != 1 && sb != 1) {
      char ba[256], bb[256];
      return lc_set_error(LC_ESHAPE,
                          "%s: shapes %s and %s cannot be broadcast (size %lld vs %lld at "
                          "dim " LC_POS_D " of the result)",
                          what, lc_shape_str(na, a, ba, sizeof ba),
                          lc_shape_str(nb, b, bb, sizeof bb), (long long)sa, (long long)sb, i);
    }
    out[i] = sa == 1 ? sb : sa;
  }
  *nout = n;
  return LC_OK;
}

void lc_broadcast_strides(const lc_tensor *t, int ndim, const int64_t *shape,
                          int64_t *strides) {
  int lead = ndim - t->ndim;
  for (int i = 0; i < ndim; i++) {
    if (i < lead) {
      strides[i] = 0;
    } else {
      int j = i - lead;
      strides[i] = (t->shape[j] == 1 && shape[i] != 1) ? 0 : t->strides[j];
    }
  }
}
