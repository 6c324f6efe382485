/*
 * misc_ops.c - public entry points of the miscellaneous tensor ops (lucid_core.h, "misc ops"):
 * meshgrid, unique(_consecutive), searchsorted, bucketize, clamp with tensor bounds,
 * nan_to_num(_), isclose, lerp(_), cdist, cosine_similarity, pairwise_distance.
 *
 * Layer 4 of 8 (ops). Most are compositions of recorded public ops, so autograd (and
 * create_graph) comes with them; clamp with tensor bounds is an op of its own
 * (src/kernels/misc_ops.c); unique, searchsorted and isclose call non-differentiable kernels.
 */
#include "../kernels/misc_ops.h"
#include "../autograd/autograd.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* ------------------------------------------------------------------ a composition helper
 * Sticky errors (as the grad-graph builder): every step after a failure returns NULL; every
 * intermediate is kept and released by cb_end. */
#define CB_KEEP 40
typedef struct cb {
  lc_status st;
  int n;
  lc_tensor *k[CB_KEEP];
} cb;

static lc_tensor *cb_keep(cb *c, lc_status st, lc_tensor *t) {
  if (!c->st && st) c->st = st;
  if (c->st) {
    lc_release(t);
    return NULL;
  }
  if (c->n == CB_KEEP) {
    lc_release(t);
    c->st = lc_set_error(LC_EARG, "misc_ops: too many intermediates");
    return NULL;
  }
  return c->k[c->n++] = t;
}
#define CB_STEP(c, call)                                                                           \
  do {                                                                                             \
    if ((c)->st) return NULL;                                                                      \
    lc_tensor *t_ = NULL;                                                                          \
    lc_status st_ = (call);                                                                        \
    return cb_keep((c), st_, t_);                                                                  \
  } while (0)

static lc_tensor *cb_bin(cb *c, lc_binary_op op, const lc_tensor *a, const lc_tensor *b) {
  CB_STEP(c, lc_binary(op, a, b, &t_));
}
static lc_tensor *cb_sc(cb *c, lc_binary_op op, const lc_tensor *a, double s) {
  CB_STEP(c, lc_binary_scalar(op, a, s, false, &t_));
}
static lc_tensor *cb_un(cb *c, lc_unary_op op, const lc_tensor *a) {
  CB_STEP(c, lc_unary(op, a, &t_));
}
static lc_tensor *cb_where(cb *c, const lc_tensor *cond, const lc_tensor *a, const lc_tensor *b) {
  CB_STEP(c, lc_where(cond, a, b, &t_));
}
static lc_tensor *cb_scalar(cb *c, double v, lc_dtype dt) { CB_STEP(c, lc_scalar(v, dt, &t_)); }
static lc_tensor *cb_unsq(cb *c, const lc_tensor *a, int dim) {
  CB_STEP(c, lc_unsqueeze(a, dim, &t_));
}
static lc_tensor *cb_red(cb *c, lc_reduce_op op, const lc_tensor *a, int dim, bool keepdim,
                         double p) {
  lc_reduce_opts o = {.ndims = 1, .dims = {dim}, .keepdim = keepdim, .p = p};
  CB_STEP(c, lc_reduce(op, a, &o, &t_));
}
static lc_tensor *cb_expand(cb *c, const lc_tensor *a, int ndim, const int64_t *shape) {
  CB_STEP(c, lc_expand(a, ndim, shape, &t_));
}

/* Hands r (kept) to *out and releases the rest; returns the first error. */
static lc_status cb_end(cb *c, lc_tensor *r, lc_tensor **out) {
  if (!c->st && out) *out = lc_retain(r);
  for (int i = 0; i < c->n; i++)
    lc_release(c->k[i]);
  c->n = 0;
  return c->st;
}

static lc_status null_arg(const char *fn, const char *what) {
  return lc_set_error(LC_EARG, "%s: %s is NULL", fn, what);
}

static lc_status need_float(const char *fn, const char *what, const lc_tensor *t) {
  if (!lc_dtype_is_float(t->dtype))
    return lc_set_error(LC_EDTYPE, "%s: expected a float32 or float64 %s, got %s", fn, what,
                        lc_dtype_name(t->dtype));
  return LC_OK;
}

/* ------------------------------------------------------------------ meshgrid */

lc_status lc_meshgrid(int n, lc_tensor *const *ts, bool xy, lc_tensor **outs) {
  if (!outs) return null_arg("meshgrid", "outs");
  if (n < 1 || !ts) return lc_set_error(LC_EARG, "meshgrid: expected at least one tensor");
  if (n > LC_MAX_DIMS)
    return lc_set_error(LC_ESHAPE, "meshgrid: at most %d tensors, got %d", LC_MAX_DIMS, n);
  int64_t shape[LC_MAX_DIMS];
  for (int i = 0; i < n; i++) {
    if (!ts[i]) return null_arg("meshgrid", "a tensor");
    if (ts[i]->ndim > 1)
      return lc_set_error(
          LC_ESHAPE, "meshgrid: expected 0-dim or 1-D tensors, got %d dims for tensor " LC_POS_D,
          ts[i]->ndim, i);
    if (ts[i]->dtype != ts[0]->dtype)
      return lc_set_error(
          LC_EDTYPE, "meshgrid: expected tensors of one dtype, got %s and %s (tensor " LC_POS_D ")",
          lc_dtype_name(ts[0]->dtype), lc_dtype_name(ts[i]->dtype), i);
  }
  /* Cartesian indexing swaps the first two output dims. */
#define MG_POS(i) ((xy && n >= 2 && (i) < 2) ? 1 - (i) : (i))
  for (int i = 0; i < n; i++)
    shape[MG_POS(i)] = ts[i]->numel;
  for (int i = 0; i < n; i++)
    outs[i] = NULL;
  lc_status st = LC_OK;
  for (int i = 0; i < n && !st; i++) {
    int64_t v[LC_MAX_DIMS];
    for (int d = 0; d < n; d++)
      v[d] = 1;
    v[MG_POS(i)] = ts[i]->numel;
    lc_tensor *r = NULL;
    st = lc_reshape(ts[i], n, v, &r);
    if (!st) st = lc_expand(r, n, shape, &outs[i]);
    lc_release(r);
  }
#undef MG_POS
  if (st)
    for (int i = 0; i < n; i++) {
      lc_release(outs[i]);
      outs[i] = NULL;
    }
  return st;
}

/* ------------------------------------------------------------------ unique */

static lc_status index_tensor(int64_t n, const int64_t *v, int ndim, const int64_t *shape,
                              lc_tensor **out) {
  lc_status st = lc_tensor_new(ndim, shape, LC_INT64, out);
  if (!st && n) memcpy(lc_data(*out), v, (size_t)n * sizeof *v);
  return st;
}

static lc_status unique_impl(const char *fn, const lc_tensor *x, bool consecutive, bool has_dim,
                             int dim, lc_tensor **values, lc_tensor **inverse, lc_tensor **counts) {
  if (!x) return null_arg(fn, "input");
  if (!values) return null_arg(fn, "values");
  lc_tensor *d = NULL, *rowsd = NULL, *idx = NULL, *vals = NULL, *inv = NULL, *cnt = NULL;
  int64_t *first = NULL, *count = NULL, *which = NULL;
  int64_t rows, len, ng = 0;
  lc_status st;
  if (has_dim) {
    if (x->ndim == 0) return lc_set_error(LC_ESHAPE, "%s: dim given for a 0-dim tensor", fn);
    if ((st = lc_wrap_dim(&dim, x->ndim, fn))) return st;
  }
  if ((st = lc_detach(x, &d))) return st;
  int perm[LC_MAX_DIMS];
  if (has_dim) {
    perm[0] = dim;
    for (int k = 0, j = 1; k < x->ndim; k++)
      if (k != dim) perm[j++] = k;
    rows = x->shape[dim];
    len = 1;
    for (int k = 0; k < x->ndim; k++)
      if (k != dim) len *= x->shape[k];
    lc_tensor *p = NULL;
    st = lc_permute(d, perm, &p);
    if (!st) st = lc_contiguous(p, &rowsd);
    lc_release(p);
  } else {
    rows = x->numel;
    len = 1;
    int64_t s1[1] = {rows};
    lc_tensor *f = NULL;
    st = lc_reshape(d, 1, s1, &f);
    if (!st) {
      lc_release(d);
      d = f;
      dim = 0;
      rowsd = lc_retain(f);
    }
  }
  if (st) goto done;
  size_t nb = (size_t)(rows ? rows : 1) * sizeof(int64_t);
  first = malloc(nb);
  count = malloc(nb);
  which = malloc(nb);
  if (!first || !count || !which) {
    st = lc_error_oom(nb);
    goto done;
  }
  if ((st = lc_k_unique_rows(rowsd, rows, len, consecutive, &ng, first, count, which))) goto done;
  int64_t sn[1] = {ng};
  if ((st = index_tensor(ng, first, 1, sn, &idx))) goto done;
  if ((st = lc_index_select(d, dim, idx, &vals))) goto done;
  if (inverse) {
    int64_t sr[1] = {rows};
    st = has_dim ? index_tensor(rows, which, 1, sr, &inv)
                 : index_tensor(rows, which, x->ndim, x->shape, &inv);
    if (st) goto done;
  }
  if (counts && (st = index_tensor(ng, count, 1, sn, &cnt))) goto done;
  *values = vals;
  vals = NULL;
  if (inverse) *inverse = inv, inv = NULL;
  if (counts) *counts = cnt, cnt = NULL;
done:
  free(first);
  free(count);
  free(which);
  lc_release(d);
  lc_release(rowsd);
  lc_release(idx);
  lc_release(vals);
  lc_release(inv);
  lc_release(cnt);
  return st;
}

lc_status lc_unique(const lc_tensor *x, bool sorted, bool has_dim, int dim, lc_tensor **values,
                    lc_tensor **inverse, lc_tensor **counts) {
  (void)sorted; /* always sorted (PyTorch's order for sorted = false is unspecified) */
  return unique_impl("unique", x, false, has_dim, dim, values, inverse, counts);
}

lc_status lc_unique_consecutive(const lc_tensor *x, bool has_dim, int dim, lc_tensor **values,
                                lc_tensor **inverse, lc_tensor **counts) {
  return unique_impl("unique_consecutive", x, true, has_dim, dim, values, inverse, counts);
}

/* ------------------------------------------------------------------ searchsorted, bucketize */

static lc_status searchsorted_impl(const char *fn, const lc_tensor *seq, const lc_tensor *values,
                                   bool right, bool out_int32, const lc_tensor *sorter,
                                   lc_tensor **out) {
  if (!seq) return null_arg(fn, "sorted_sequence");
  if (!values) return null_arg(fn, "values");
  if (!out) return null_arg(fn, "out");
  if (seq->ndim == 0)
    return lc_set_error(LC_ESHAPE,
                        "%s: sorted_sequence must have at least one dim, got a 0-dim "
                        "tensor",
                        fn);
  if (seq->ndim > 1) {
    bool ok = values->ndim == seq->ndim;
    for (int k = 0; ok && k < seq->ndim - 1; k++)
      ok = values->shape[k] == seq->shape[k];
    if (!ok)
      return lc_set_error(LC_ESHAPE,
                          "%s: the leading dims of sorted_sequence and values must match (all "
                          "but the last), got %d-dim sorted_sequence and %d-dim values",
                          fn, seq->ndim, values->ndim);
  }
  if (seq->dtype == LC_BOOL || values->dtype == LC_BOOL)
    return lc_set_error(LC_EDTYPE, "%s: bool tensors are not supported", fn);
  if (sorter) {
    if (sorter->dtype != LC_INT64)
      return lc_set_error(LC_EDTYPE, "%s: sorter must be an int64 tensor, got %s", fn,
                          lc_dtype_name(sorter->dtype));
    bool same = sorter->ndim == seq->ndim;
    for (int k = 0; same && k < seq->ndim; k++)
      same = sorter->shape[k] == seq->shape[k];
    if (!same)
      return lc_set_error(LC_ESHAPE, "%s: sorter must have the shape of sorted_sequence", fn);
    lc_status st = lc_check_indices(sorter, seq->shape[seq->ndim - 1], seq->ndim - 1, fn);
    if (st) return st;
  }
  lc_tensor *o = NULL;
  lc_status st = lc_tensor_new(values->ndim, values->shape, out_int32 ? LC_INT32 : LC_INT64, &o);
  if (!st) st = lc_k_searchsorted(seq, values, sorter, right, o);
  if (st) {
    lc_release(o);
    return st;
  }
  *out = o;
  return LC_OK;
}

lc_status lc_searchsorted(const lc_tensor *seq, const lc_tensor *values, bool right, bool out_int32,
                          const lc_tensor *sorter, lc_tensor **out) {
  return searchsorted_impl("searchsorted", seq, values, right, out_int32, sorter, out);
}

lc_status lc_bucketize(const lc_tensor *x, const lc_tensor *boundaries, bool right, bool out_int32,
                       lc_tensor **out) {
  if (!boundaries) return null_arg("bucketize", "boundaries");
  if (boundaries->ndim != 1)
    return lc_set_error(LC_ESHAPE, "bucketize: boundaries must be 1-D, got %d dims",
                        boundaries->ndim);
  return searchsorted_impl("bucketize", boundaries, x, right, out_int32, NULL, out);
}

/* ------------------------------------------------------------------ clamp with tensor bounds */

static lc_status clamp_in(const char *fn, const lc_tensor *x, const lc_tensor *lo,
                          const lc_tensor *hi, lc_tensor **in, int *n, lc_op_args *a) {
  if (!x) return null_arg(fn, "input");
  if (!lo && !hi) return lc_set_error(LC_EARG, "%s: at least one of min and max must be given", fn);
  memset(a, 0, sizeof *a);
  *n = 0;
  in[(*n)++] = (lc_tensor *)x;
  if (lo) in[(*n)++] = (lc_tensor *)lo, a->flags |= LC_ARG_HAS_LO;
  if (hi) in[(*n)++] = (lc_tensor *)hi, a->flags |= LC_ARG_HAS_HI;
  return LC_OK;
}

lc_status lc_clamp_tensor(const lc_tensor *x, const lc_tensor *lo, const lc_tensor *hi,
                          lc_tensor **out) {
  if (!out) return null_arg("clamp", "out");
  lc_tensor *in[3];
  int n = 0;
  lc_op_args a;
  lc_status st = clamp_in("clamp", x, lo, hi, in, &n, &a);
  return st ? st : lc_apply(&lc_op_clamp_tensor, n, in, &a, out);
}

lc_status lc_clamp_tensor_(lc_tensor *x, const lc_tensor *lo, const lc_tensor *hi) {
  lc_tensor *in[3];
  int n = 0;
  lc_op_args a;
  lc_status st = clamp_in("clamp_", x, lo, hi, in, &n, &a);
  return st ? st : lc_apply_inplace(&lc_op_clamp_tensor, n, in, &a);
}

/* ------------------------------------------------------------------ nan_to_num */

lc_status lc_nan_to_num(const lc_tensor *x, const double *nan, const double *posinf,
                        const double *neginf, lc_tensor **out) {
  if (!x) return null_arg("nan_to_num", "input");
  if (!out) return null_arg("nan_to_num", "out");
  if (!lc_dtype_is_float(x->dtype)) return lc_clone(x, out);
  const double big = x->dtype == LC_FLOAT32 ? (double)FLT_MAX : DBL_MAX;
  cb c = {0};
  lc_tensor *r = (lc_tensor *)x;
  r = cb_where(&c, cb_bin(&c, LC_NE, x, x), cb_scalar(&c, nan ? *nan : 0.0, x->dtype), r);
  r = cb_where(&c, cb_sc(&c, LC_EQ, x, INFINITY), cb_scalar(&c, posinf ? *posinf : big, x->dtype),
               r);
  r = cb_where(&c, cb_sc(&c, LC_EQ, x, -INFINITY), cb_scalar(&c, neginf ? *neginf : -big, x->dtype),
               r);
  return cb_end(&c, r, out);
}

lc_status lc_nan_to_num_(lc_tensor *x, const double *nan, const double *posinf,
                         const double *neginf) {
  if (!x) return null_arg("nan_to_num_", "input");
  if (!lc_dtype_is_float(x->dtype)) return LC_OK;
  lc_tensor *r = NULL;
  lc_status st = lc_nan_to_num(x, nan, posinf, neginf, &r);
  if (!st) st = lc_copy_(x, r);
  lc_release(r);
  return st;
}

/* ------------------------------------------------------------------ isclose */

lc_status lc_isclose(const lc_tensor *a, const lc_tensor *b, double rtol, double atol,
                     bool equal_nan, lc_tensor **out) {
  if (!a) return null_arg("isclose", "input");
  if (!b) return null_arg("isclose", "other");
  if (!out) return null_arg("isclose", "out");
  if (a->dtype != b->dtype)
    return lc_set_error(LC_EDTYPE, "isclose: input and other must have one dtype, got %s and %s",
                        lc_dtype_name(a->dtype), lc_dtype_name(b->dtype));
  if (!(rtol >= 0) || !(atol >= 0))
    return lc_set_error(LC_EARG,
                        "isclose: rtol and atol must be non-negative, got rtol = %g, atol = %g",
                        rtol, atol);
  int ndim = 0;
  int64_t shape[LC_MAX_DIMS];
  lc_status st = lc_broadcast_shapes(a->ndim, a->shape, b->ndim, b->shape, &ndim, shape, "isclose");
  lc_tensor *o = NULL;
  if (!st) st = lc_tensor_new(ndim, shape, LC_BOOL, &o);
  if (!st) st = lc_k_isclose(a, b, rtol, atol, equal_nan, o);
  if (st) {
    lc_release(o);
    return st;
  }
  *out = o;
  return LC_OK;
}

/* ------------------------------------------------------------------ lerp */

static lc_status lerp_check(const lc_tensor *s, const lc_tensor *e, const lc_tensor *w) {
  if (!s) return null_arg("lerp", "input");
  if (!e) return null_arg("lerp", "end");
  lc_status st = need_float("lerp", "input", s);
  if (st) return st;
  if (e->dtype != s->dtype)
    return lc_set_error(LC_EDTYPE, "lerp: expected dtype %s for end, got %s",
                        lc_dtype_name(s->dtype), lc_dtype_name(e->dtype));
  if (w && w->dtype != s->dtype)
    return lc_set_error(LC_EDTYPE, "lerp: expected dtype %s for weight, got %s",
                        lc_dtype_name(s->dtype), lc_dtype_name(w->dtype));
  return LC_OK;
}

static lc_status lerp_impl(const lc_tensor *s, const lc_tensor *e, const lc_tensor *w, double ws,
                           lc_tensor **out) {
  lc_status st = lerp_check(s, e, w);
  if (st) return st;
  if (!out) return null_arg("lerp", "out");
  cb c = {0};
  lc_tensor *d = cb_bin(&c, LC_SUB, e, s);
  lc_tensor *r = cb_bin(&c, LC_ADD, s, w ? cb_bin(&c, LC_MUL, w, d) : cb_sc(&c, LC_MUL, d, ws));
  return cb_end(&c, r, out);
}

lc_status lc_lerp(const lc_tensor *start, const lc_tensor *end, const lc_tensor *weight,
                  lc_tensor **out) {
  if (!weight) return null_arg("lerp", "weight");
  return lerp_impl(start, end, weight, 0, out);
}

lc_status lc_lerp_scalar(const lc_tensor *start, const lc_tensor *end, double weight,
                         lc_tensor **out) {
  return lerp_impl(start, end, NULL, weight, out);
}

static lc_status lerp_inplace(lc_tensor *s, const lc_tensor *e, const lc_tensor *w, double ws) {
  lc_tensor *r = NULL;
  lc_status st = lerp_impl(s, e, w, ws, &r);
  if (!st) st = lc_copy_(s, r);
  lc_release(r);
  return st;
}

lc_status lc_lerp_(lc_tensor *start, const lc_tensor *end, const lc_tensor *weight) {
  if (!weight) return null_arg("lerp_", "weight");
  return lerp_inplace(start, end, weight, 0);
}

lc_status lc_lerp_scalar_(lc_tensor *start, const lc_tensor *end, double weight) {
  return lerp_inplace(start, end, NULL, weight);
}

/* ------------------------------------------------------------------ distances */

lc_status lc_cdist(const lc_tensor *x1, const lc_tensor *x2, double p, lc_tensor **out) {
  if (!x1) return null_arg("cdist", "x1");
  if (!x2) return null_arg("cdist", "x2");
  if (!out) return null_arg("cdist", "out");
  lc_status st = need_float("cdist", "x1", x1);
  if (!st) st = need_float("cdist", "x2", x2);
  if (st) return st;
  if (x1->ndim < 2 || x2->ndim < 2)
    return lc_set_error(LC_ESHAPE, "cdist: x1 and x2 must have at least 2 dims, got %d and %d",
                        x1->ndim, x2->ndim);
  if (x1->shape[x1->ndim - 1] != x2->shape[x2->ndim - 1])
    return lc_set_error(LC_ESHAPE,
                        "cdist: x1 and x2 must have the same size in the last dim, got %lld and "
                        "%lld",
                        (long long)x1->shape[x1->ndim - 1], (long long)x2->shape[x2->ndim - 1]);
  if (!(p >= 0)) return lc_set_error(LC_EARG, "cdist: p must be non-negative, got %g", p);
  const int64_t P = x1->shape[x1->ndim - 2], R = x2->shape[x2->ndim - 2];
  cb c = {0};
  lc_tensor *r;
  if (p == 2 && (P > 25 || R > 25)) {
    /* PyTorch's _euclidean_dist: [-2 x1, |x1|^2, 1] . [x2, 1, |x2|^2]^T, clamped at 1e-30. */
    lc_tensor *n1 = cb_red(&c, LC_SUM, cb_bin(&c, LC_MUL, x1, x1), -1, true, 0);
    lc_tensor *n2 = cb_red(&c, LC_SUM, cb_bin(&c, LC_MUL, x2, x2), -1, true, 0);
    lc_tensor *o1 = NULL, *o2 = NULL, *a = NULL, *b = NULL, *bt = NULL, *m = NULL, *cl = NULL;
    if (!c.st) {
      lc_status s_ = lc_ones_like(n1, &o1);
      o1 = cb_keep(&c, s_, o1);
    }
    if (!c.st) {
      lc_status s_ = lc_ones_like(n2, &o2);
      o2 = cb_keep(&c, s_, o2);
    }
    if (!c.st) {
      lc_tensor *pa[3] = {cb_sc(&c, LC_MUL, x1, -2), n1, o1};
      if (!c.st) {
        lc_status s_ = lc_cat(3, pa, -1, &a);
        a = cb_keep(&c, s_, a);
      }
    }
    if (!c.st) {
      lc_tensor *pb[3] = {(lc_tensor *)x2, o2, n2};
      {
        lc_status s_ = lc_cat(3, pb, -1, &b);
        b = cb_keep(&c, s_, b);
      }
    }
    if (!c.st) {
      lc_status s_ = lc_transpose(b, -1, -2, &bt);
      bt = cb_keep(&c, s_, bt);
    }
    if (!c.st) {
      lc_status s_ = lc_matmul(a, bt, &m);
      m = cb_keep(&c, s_, m);
    }
    if (!c.st) {
      lc_status s_ = lc_clamp(m, true, 1e-30, false, 0, &cl);
      cl = cb_keep(&c, s_, cl);
    }
    r = cb_un(&c, LC_SQRT, cl);
  } else {
    lc_tensor *diff = cb_bin(&c, LC_SUB, cb_unsq(&c, x1, -2), cb_unsq(&c, x2, -3));
    r = cb_red(&c, LC_NORM, diff, -1, false, p);
  }
  return cb_end(&c, r, out);
}

/* x1 and x2 expanded to their broadcast shape (kept in c). */
static void broadcast2(cb *c, const char *fn, const lc_tensor *x1, const lc_tensor *x2,
                       lc_tensor **a, lc_tensor **b, int *ndim) {
  int64_t shape[LC_MAX_DIMS];
  *a = *b = NULL;
  lc_status st = lc_broadcast_shapes(x1->ndim, x1->shape, x2->ndim, x2->shape, ndim, shape, fn);
  if (st) {
    if (!c->st) c->st = st;
    return;
  }
  *a = cb_expand(c, x1, *ndim, shape);
  *b = cb_expand(c, x2, *ndim, shape);
}

lc_status lc_cosine_similarity(const lc_tensor *x1, const lc_tensor *x2, int dim, double eps,
                               lc_tensor **out) {
  if (!x1) return null_arg("cosine_similarity", "x1");
  if (!x2) return null_arg("cosine_similarity", "x2");
  if (!out) return null_arg("cosine_similarity", "out");
  lc_status st = need_float("cosine_similarity", "x1", x1);
  if (!st) st = need_float("cosine_similarity", "x2", x2);
  if (st) return st;
  cb c = {0};
  lc_tensor *a, *b;
  int ndim = 0;
  broadcast2(&c, "cosine_similarity", x1, x2, &a, &b, &ndim);
  if (!c.st && (st = lc_wrap_dim(&dim, ndim, "cosine_similarity"))) c.st = st;
  lc_tensor *w12 = cb_red(&c, LC_SUM, cb_bin(&c, LC_MUL, a, b), dim, false, 0);
  lc_tensor *n1 = cb_red(&c, LC_SUM, cb_bin(&c, LC_MUL, a, a), dim, false, 0);
  lc_tensor *n2 = cb_red(&c, LC_SUM, cb_bin(&c, LC_MUL, b, b), dim, false, 0);
  lc_tensor *n12 = cb_bin(&c, LC_MUL, n1, n2), *cl = NULL;
  if (!c.st) {
    lc_status s_ = lc_clamp(n12, true, eps * eps, false, 0, &cl);
    cl = cb_keep(&c, s_, cl);
  }
  lc_tensor *r = cb_bin(&c, LC_DIV, w12, cb_un(&c, LC_SQRT, cl));
  return cb_end(&c, r, out);
}

lc_status lc_pairwise_distance(const lc_tensor *x1, const lc_tensor *x2, double p, double eps,
                               bool keepdim, lc_tensor **out) {
  if (!x1) return null_arg("pairwise_distance", "x1");
  if (!x2) return null_arg("pairwise_distance", "x2");
  if (!out) return null_arg("pairwise_distance", "out");
  lc_status st = need_float("pairwise_distance", "x1", x1);
  if (!st) st = need_float("pairwise_distance", "x2", x2);
  if (st) return st;
  cb c = {0};
  lc_tensor *d = cb_sc(&c, LC_ADD, cb_bin(&c, LC_SUB, x1, x2), eps);
  lc_tensor *r = d && d->ndim == 0 ? cb_un(&c, LC_ABS, d) : cb_red(&c, LC_NORM, d, -1, keepdim, p);
  return cb_end(&c, r, out);
}
