/*
 * advindex.c - public advanced-indexing functions: scatter_reduce(_) (its own op,
 * src/kernels/advindex.c), and index_add(_), index_copy(_), index_put(_), take_along_dim and
 * one_hot, composed of recorded ops (scatter_add, scatter, gather, expand, reshape, ...), so
 * their gradients (and higher-order ones) are those ops'. In-place forms compute the result
 * and copy_ it into the target (recorded as an in-place write when autograd is involved).
 */
#include "../autograd/autograd.h"

#include <string.h>

/* Temporaries of one call, released together. */
typedef struct tmp {
  lc_tensor *t[64];
  int n;
} tmp;

static lc_tensor *keep(tmp *s, lc_tensor *t) {
  if (t && s->n < 64) s->t[s->n++] = t;
  return t;
}

static void drop(tmp *s) {
  for (int k = 0; k < s->n; k++)
    lc_release(s->t[k]);
  s->n = 0;
}

#define TRY(call)                                                                                  \
  do {                                                                                             \
    if ((st = (call)) != LC_OK) goto done;                                                         \
  } while (0)

static lc_status null_arg(const char *fn, const char *name) {
  return lc_set_error(LC_EARG, "%s: %s is NULL", fn, name);
}

static bool shapes_eq(int na, const int64_t *a, int nb, const int64_t *b) {
  if (na != nb) return false;
  for (int d = 0; d < na; d++)
    if (a[d] != b[d]) return false;
  return true;
}

static bool is_index_dtype(lc_dtype dt) { return dt == LC_INT64 || dt == LC_INT32; }

lc_status lc_sr_reduce_from_name(const char *name, lc_sr_reduce *out) {
  static const char *const names[LC_SR_COUNT] = {"sum", "prod", "mean", "amax", "amin"};
  for (int k = 0; name && k < LC_SR_COUNT; k++)
    if (!strcmp(name, names[k])) {
      *out = (lc_sr_reduce)k;
      return LC_OK;
    }
  return lc_set_error(LC_EARG,
                      "scatter_reduce: reduce must be one of sum, prod, mean, amax, amin, got %s",
                      name ? name : "NULL");
}

static lc_status sr_args(const char *fn, const lc_tensor *t, int dim, const lc_tensor *index,
                         const lc_tensor *src, lc_sr_reduce reduce, bool include_self,
                         lc_op_args *a) {
  if (!t) return null_arg(fn, "tensor");
  if (!index) return null_arg(fn, "index");
  if (!src) return null_arg(fn, "src");
  lc_status st = lc_wrap_dim(&dim, t->ndim, fn);
  if (st) return st;
  if ((int)reduce < 0 || reduce >= LC_SR_COUNT)
    return lc_set_error(LC_EARG, "%s: unknown reduction %d", fn, (int)reduce);
  a->i[0] = dim;
  a->i[1] = reduce;
  a->i[2] = include_self;
  a->ni = 3;
  return LC_OK;
}

lc_status lc_scatter_reduce(const lc_tensor *t, int dim, const lc_tensor *index,
                            const lc_tensor *src, lc_sr_reduce reduce, bool include_self,
                            lc_tensor **out) {
  lc_op_args a = {0};
  lc_status st = sr_args("scatter_reduce", t, dim, index, src, reduce, include_self, &a);
  if (st) return st;
  if (!out) return null_arg("scatter_reduce", "out");
  lc_tensor *in[3] = {(lc_tensor *)t, (lc_tensor *)index, (lc_tensor *)src};
  return lc_apply(&lc_op_scatter_reduce, 3, in, &a, out);
}

lc_status lc_scatter_reduce_(lc_tensor *t, int dim, const lc_tensor *index, const lc_tensor *src,
                             lc_sr_reduce reduce, bool include_self) {
  lc_op_args a = {0};
  lc_status st = sr_args("scatter_reduce_", t, dim, index, src, reduce, include_self, &a);
  if (st) return st;
  lc_tensor *in[3] = {t, (lc_tensor *)index, (lc_tensor *)src};
  return lc_apply_inplace(&lc_op_scatter_reduce, 3, in, &a);
}

/* ---------------------------------------------------------------- index_add, index_copy */

/* Checks index_add/index_copy's operands; on success *ix is index as a tensor shaped like
 * source varying along dim only (a view), and t1, s1 t and source with a 0-dim one seen as
 * 1-D. */
static lc_status ia_prepare(const char *fn, const lc_tensor *t, int *dim, const lc_tensor *index,
                            const lc_tensor *source, tmp *s, lc_tensor **t1, lc_tensor **s1,
                            lc_tensor **ix) {
  if (!t) return null_arg(fn, "tensor");
  if (!index) return null_arg(fn, "index");
  if (!source) return null_arg(fn, "source");
  lc_status st = lc_wrap_dim(dim, t->ndim, fn);
  if (st) return st;
  if (!is_index_dtype(index->dtype))
    return lc_set_error(LC_EDTYPE, "%s: index must be an int64 or int32 tensor, got %s", fn,
                        lc_dtype_name(index->dtype));
  if (index->ndim > 1)
    return lc_set_error(LC_ESHAPE, "%s: index must be 1-D or 0-dim, got %d dims", fn, index->ndim);
  int nd = t->ndim ? t->ndim : 1;
  if ((source->ndim ? source->ndim : 1) != nd)
    return lc_set_error(LC_ESHAPE, "%s: source must have as many dims as the input (%d), got %d",
                        fn, t->ndim, source->ndim);
  int64_t one = 1;
  const int64_t *ts = t->ndim ? t->shape : &one, *ss = source->ndim ? source->shape : &one;
  for (int d = 0; d < nd; d++) {
    if (d == *dim) continue;
    if (ts[d] != ss[d]) {
      char a[256], b[256];
      return lc_set_error(
          LC_ESHAPE,
          "%s: source of shape %s does not match the input's shape %s outside dim " LC_POS_D, fn,
          lc_shape_str(source->ndim, source->shape, a, sizeof a),
          lc_shape_str(t->ndim, t->shape, b, sizeof b), *dim);
    }
  }
  if (ss[*dim] != index->numel)
    return lc_set_error(LC_ESHAPE,
                        "%s: index has %lld elements but source has size %lld along dim " LC_POS_D,
                        fn, (long long)index->numel, (long long)ss[*dim], *dim);
  if ((st = lc_check_indices(index, ts[*dim], *dim, fn))) return st;
  lc_tensor *r = NULL;
  if ((st = lc_reshape(t, nd, ts, &r))) return st;
  *t1 = keep(s, r);
  r = NULL;
  if ((st = lc_reshape(source, nd, ss, &r))) return st;
  *s1 = keep(s, r);
  int64_t sh[LC_MAX_DIMS];
  for (int d = 0; d < nd; d++)
    sh[d] = d == *dim ? index->numel : 1;
  r = NULL;
  if ((st = lc_reshape(index, nd, sh, &r))) return st;
  keep(s, r);
  lc_tensor *e = NULL;
  if ((st = lc_expand(r, nd, ss, &e))) return st;
  *ix = keep(s, e);
  return LC_OK;
}

static lc_status index_put_back(const lc_tensor *t, lc_tensor *r, tmp *s, lc_tensor **out) {
  (void)s;
  if (t->ndim) {
    *out = lc_retain(r);
    return LC_OK;
  }
  return lc_reshape(r, 0, NULL, out);
}

static lc_status index_add_impl(const char *fn, const lc_tensor *t, int dim, const lc_tensor *index,
                                const lc_tensor *source, double alpha, lc_tensor **out) {
  tmp s = {0};
  lc_tensor *t1 = NULL, *s1 = NULL, *ix = NULL, *r = NULL;
  lc_status st;
  TRY(ia_prepare(fn, t, &dim, index, source, &s, &t1, &s1, &ix));
  if (alpha != 1.0) {
    TRY(lc_binary_scalar(LC_MUL, s1, alpha, false, &r));
    s1 = keep(&s, r);
  }
  if (s1->dtype != t->dtype) {
    r = NULL;
    TRY(lc_to_dtype(s1, t->dtype, &r));
    s1 = keep(&s, r);
  }
  r = NULL;
  TRY(lc_scatter_add(t1, dim, ix, s1, &r));
  keep(&s, r);
  TRY(index_put_back(t, r, &s, out));
done:
  drop(&s);
  return st;
}

static lc_status index_copy_impl(const char *fn, const lc_tensor *t, int dim,
                                 const lc_tensor *index, const lc_tensor *source, lc_tensor **out) {
  tmp s = {0};
  lc_tensor *t1 = NULL, *s1 = NULL, *ix = NULL, *r = NULL;
  lc_status st;
  TRY(ia_prepare(fn, t, &dim, index, source, &s, &t1, &s1, &ix));
  if (source->dtype != t->dtype)
    TRY(lc_set_error(LC_EDTYPE, "%s: source must have the input's dtype %s, got %s", fn,
                     lc_dtype_name(t->dtype), lc_dtype_name(source->dtype)));
  TRY(lc_scatter(t1, dim, ix, s1, &r));
  keep(&s, r);
  TRY(index_put_back(t, r, &s, out));
done:
  drop(&s);
  return st;
}

/* in-place forms: the result copied into t */
static lc_status write_back(const char *fn, lc_tensor *t, lc_tensor *r) {
  lc_status st = lc_inplace_check_target(fn, t);
  if (!st) st = lc_copy_(t, r);
  lc_release(r);
  return st;
}

lc_status lc_index_add(const lc_tensor *t, int dim, const lc_tensor *index, const lc_tensor *source,
                       double alpha, lc_tensor **out) {
  if (!out) return null_arg("index_add", "out");
  return index_add_impl("index_add", t, dim, index, source, alpha, out);
}

lc_status lc_index_add_(lc_tensor *t, int dim, const lc_tensor *index, const lc_tensor *source,
                        double alpha) {
  if (t && lc_inplace_check_target("index_add_", t)) return lc_last_status();
  lc_tensor *r = NULL;
  lc_status st = index_add_impl("index_add_", t, dim, index, source, alpha, &r);
  return st ? st : write_back("index_add_", t, r);
}

lc_status lc_index_copy(const lc_tensor *t, int dim, const lc_tensor *index,
                        const lc_tensor *source, lc_tensor **out) {
  if (!out) return null_arg("index_copy", "out");
  return index_copy_impl("index_copy", t, dim, index, source, out);
}

lc_status lc_index_copy_(lc_tensor *t, int dim, const lc_tensor *index, const lc_tensor *source) {
  if (t && lc_inplace_check_target("index_copy_", t)) return lc_last_status();
  lc_tensor *r = NULL;
  lc_status st = index_copy_impl("index_copy_", t, dim, index, source, &r);
  return st ? st : write_back("index_copy_", t, r);
}

/* ---------------------------------------------------------------- index_put */

static lc_status index_put_impl(const char *fn, const lc_tensor *t, int n,
                                const lc_tensor *const *indices, const lc_tensor *values,
                                bool accumulate, lc_tensor **out) {
  if (!t) return null_arg(fn, "tensor");
  if (!values) return null_arg(fn, "values");
  if (n < 1 || !indices) return lc_set_error(LC_EARG, "%s: expected at least one index tensor", fn);
  tmp s = {0};
  lc_status st = LC_OK;
  lc_tensor *ix[LC_MAX_DIMS], *r = NULL;
  int k = 0; /* dims of t indexed so far */
  for (int i = 0; i < n; i++) {
    const lc_tensor *x = indices[i];
    if (!x) TRY(lc_set_error(LC_EARG, "%s: index tensor " LC_POS_D " is NULL", fn, i));
    if (x->dtype == LC_BOOL) {
      int kd = x->ndim ? x->ndim : 1;
      if (x->ndim == 0) TRY(lc_set_error(LC_ESHAPE, "%s: a 0-dim bool mask is not supported", fn));
      if (k + kd > t->ndim)
        TRY(lc_set_error(LC_EINDEX, "%s: too many indices for a tensor of %d dims", fn, t->ndim));
      for (int d = 0; d < kd; d++)
        if (x->shape[d] != t->shape[k + d])
          TRY(lc_set_error(LC_ESHAPE,
                           "%s: the mask (index tensor " LC_POS_D
                           ") has size %lld at its dim " LC_POS_D
                           " but the indexed tensor has %lld at dim " LC_POS_D,
                           fn, i, (long long)x->shape[d], d, (long long)t->shape[k + d], k + d));
      r = NULL;
      TRY(lc_nonzero(x, &r));
      keep(&s, r);
      for (int d = 0; d < kd; d++) {
        lc_tensor *c = NULL;
        TRY(lc_select(r, 1, d, &c));
        ix[k++] = keep(&s, c);
      }
      continue;
    }
    if (!is_index_dtype(x->dtype))
      TRY(lc_set_error(LC_EDTYPE,
                       "%s: index tensor " LC_POS_D " must be int64, int32 or bool, got %s", fn, i,
                       lc_dtype_name(x->dtype)));
    if (k + 1 > t->ndim)
      TRY(lc_set_error(LC_EINDEX, "%s: too many indices for a tensor of %d dims", fn, t->ndim));
    TRY(lc_check_indices(x, t->shape[k], k, fn));
    ix[k++] = (lc_tensor *)x;
  }
  /* broadcast the index tensors together */
  int nb = 0;
  int64_t bshape[LC_MAX_DIMS] = {0};
  for (int i = 0; i < k; i++) {
    int no;
    int64_t o[LC_MAX_DIMS];
    TRY(lc_broadcast_shapes(nb, bshape, ix[i]->ndim, ix[i]->shape, &no, o, fn));
    nb = no;
    memcpy(bshape, o, sizeof o);
  }
  /* the linear position over t's first k dims */
  lc_tensor *lin = NULL;
  TRY(lc_zeros(nb, bshape, LC_INT64, &lin));
  keep(&s, lin);
  int64_t mult = 1;
  for (int i = k - 1; i >= 0; i--) {
    lc_tensor *a = NULL, *b = NULL;
    TRY(lc_binary_scalar(LC_MUL, ix[i], (double)mult, false, &a));
    keep(&s, a);
    TRY(lc_binary(LC_ADD, lin, a, &b));
    lin = keep(&s, b);
    mult *= t->shape[i];
  }
  int64_t N = lc_shape_numel(nb, bshape), P = mult;
  int rest = t->ndim - k;
  int64_t tsh[LC_MAX_DIMS + 1], vsh[LC_MAX_DIMS + 1], esh[2 * LC_MAX_DIMS];
  tsh[0] = P;
  vsh[0] = N;
  for (int d = 0; d < rest; d++)
    tsh[1 + d] = vsh[1 + d] = t->shape[k + d];
  if (nb + rest > LC_MAX_DIMS)
    TRY(lc_set_error(LC_ESHAPE, "%s: the indexed result has more than %d dims", fn, LC_MAX_DIMS));
  for (int d = 0; d < nb && d < LC_MAX_DIMS; d++)
    esh[d] = bshape[d];
  for (int d = 0; d < rest; d++)
    esh[nb + d] = t->shape[k + d];
  lc_tensor *lf = NULL, *tk = NULL, *v = NULL, *res = NULL;
  TRY(lc_reshape(lin, 1, &N, &lf));
  keep(&s, lf);
  TRY(lc_reshape(t, 1 + rest, tsh, &tk));
  keep(&s, tk);
  if (values->ndim > nb + rest) {
    char a[256], b[256];
    TRY(lc_set_error(LC_ESHAPE, "%s: values of shape %s do not broadcast to the indexed shape %s",
                     fn, lc_shape_str(values->ndim, values->shape, a, sizeof a),
                     lc_shape_str(nb + rest, esh, b, sizeof b)));
  }
  {
    int no;
    int64_t o[LC_MAX_DIMS];
    lc_status bs = lc_broadcast_shapes(values->ndim, values->shape, nb + rest, esh, &no, o, fn);
    if (bs || !shapes_eq(no, o, nb + rest, esh)) {
      char a[256], b[256];
      TRY(lc_set_error(LC_ESHAPE, "%s: values of shape %s do not broadcast to the indexed shape %s",
                       fn, lc_shape_str(values->ndim, values->shape, a, sizeof a),
                       lc_shape_str(nb + rest, esh, b, sizeof b)));
    }
  }
  TRY(lc_expand(values, nb + rest, esh, &v));
  keep(&s, v);
  lc_tensor *v2 = NULL;
  TRY(lc_reshape(v, 1 + rest, vsh, &v2));
  keep(&s, v2);
  if (v2->dtype != t->dtype) {
    lc_tensor *c = NULL;
    TRY(lc_to_dtype(v2, t->dtype, &c));
    v2 = keep(&s, c);
  }
  if (accumulate)
    TRY(lc_index_add(tk, 0, lf, v2, 1.0, &res));
  else
    TRY(lc_index_copy(tk, 0, lf, v2, &res));
  keep(&s, res);
  TRY(lc_reshape(res, t->ndim, t->shape, out));
done:
  drop(&s);
  return st;
}

lc_status lc_index_put(const lc_tensor *t, int n, const lc_tensor *const *indices,
                       const lc_tensor *values, bool accumulate, lc_tensor **out) {
  if (!out) return null_arg("index_put", "out");
  return index_put_impl("index_put", t, n, indices, values, accumulate, out);
}

lc_status lc_index_put_(lc_tensor *t, int n, const lc_tensor *const *indices,
                        const lc_tensor *values, bool accumulate) {
  if (t && lc_inplace_check_target("index_put_", t)) return lc_last_status();
  lc_tensor *r = NULL;
  lc_status st = index_put_impl("index_put_", t, n, indices, values, accumulate, &r);
  return st ? st : write_back("index_put_", t, r);
}

/* ---------------------------------------------------------------- take_along_dim, one_hot */

lc_status lc_take_along_dim(const lc_tensor *t, const lc_tensor *indices, bool has_dim, int dim,
                            lc_tensor **out) {
  const char *fn = "take_along_dim";
  if (!t) return null_arg(fn, "tensor");
  if (!indices) return null_arg(fn, "indices");
  if (!out) return null_arg(fn, "out");
  if (!is_index_dtype(indices->dtype))
    return lc_set_error(LC_EDTYPE, "%s: indices must be an int64 or int32 tensor, got %s", fn,
                        lc_dtype_name(indices->dtype));
  tmp s = {0};
  lc_status st = LC_OK;
  lc_tensor *a = NULL, *b = NULL;
  if (!has_dim) {
    int64_t m1 = -1;
    TRY(lc_reshape(t, 1, &m1, &a));
    keep(&s, a);
    TRY(lc_reshape(indices, 1, &m1, &b));
    keep(&s, b);
    TRY(lc_check_indices(b, a->shape[0], 0, fn));
    TRY(lc_gather(a, 0, b, out));
    goto done;
  }
  TRY(lc_wrap_dim(&dim, t->ndim, fn));
  if (t->ndim != indices->ndim)
    TRY(lc_set_error(LC_ESHAPE,
                     "%s: input and indices must have the same number of dims, got %d and %d", fn,
                     t->ndim, indices->ndim));
  if (t->ndim == 0) {
    TRY(lc_check_indices(indices, 1, 0, fn));
    TRY(lc_clone(t, out));
    goto done;
  }
  int64_t ts[LC_MAX_DIMS], bs[LC_MAX_DIMS];
  memcpy(ts, t->shape, sizeof(int64_t) * (size_t)t->ndim);
  ts[dim] = indices->shape[dim];
  int nb;
  TRY(lc_broadcast_shapes(t->ndim, ts, indices->ndim, indices->shape, &nb, bs, fn));
  TRY(lc_check_indices(indices, t->shape[dim], dim, fn));
  TRY(lc_expand(indices, nb, bs, &b));
  keep(&s, b);
  bs[dim] = t->shape[dim];
  TRY(lc_expand(t, nb, bs, &a));
  keep(&s, a);
  TRY(lc_gather(a, dim, b, out));
done:
  drop(&s);
  return st;
}

lc_status lc_one_hot(const lc_tensor *t, int64_t num_classes, lc_tensor **out) {
  const char *fn = "one_hot";
  if (!t) return null_arg(fn, "tensor");
  if (!out) return null_arg(fn, "out");
  if (!is_index_dtype(t->dtype))
    return lc_set_error(LC_EDTYPE, "%s: expected an int64 or int32 tensor of class indices, got %s",
                        fn, lc_dtype_name(t->dtype));
  if (t->ndim + 1 > LC_MAX_DIMS)
    return lc_set_error(LC_ESHAPE, "%s: the result would have more than %d dims", fn, LC_MAX_DIMS);
  tmp s = {0};
  lc_status st = LC_OK;
  if (num_classes < 0) {
    if (t->numel == 0)
      TRY(lc_set_error(LC_EARG, "%s: cannot infer the number of classes from an empty tensor", fn));
    lc_tensor *m = NULL;
    lc_reduce_opts ro = {0};
    TRY(lc_reduce(LC_AMAX, t, &ro, &m));
    keep(&s, m);
    int64_t mx = 0;
    TRY(lc_item_int64(m, &mx));
    num_classes = mx + 1;
  }
  TRY(lc_check_indices(t, num_classes, t->ndim, fn));
  int64_t sh[LC_MAX_DIMS];
  memcpy(sh, t->shape, sizeof(int64_t) * (size_t)t->ndim);
  sh[t->ndim] = num_classes;
  lc_tensor *z = NULL, *ix = NULL, *one = NULL;
  TRY(lc_zeros(t->ndim + 1, sh, LC_INT64, &z));
  keep(&s, z);
  if (t->numel && num_classes) {
    TRY(lc_unsqueeze(t, t->ndim, &ix));
    keep(&s, ix);
    TRY(lc_full(ix->ndim, ix->shape, 1, LC_INT64, &one));
    keep(&s, one);
    TRY(lc_scatter_(z, t->ndim, ix, one));
  }
  *out = lc_retain(z);
done:
  drop(&s);
  return st;
}
