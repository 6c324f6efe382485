/*
 * sort.c - the sorting family: sort, argsort, topk, kthvalue, median (along a dim and over all
 * elements) and mode, with their backward functions side by side.
 *
 * One engine (sk_run) serves every op along a dim: the input, made contiguous, is seen as
 * {outer, n, inner} with n the size of `dim`; each of the outer * inner rows is copied into a
 * buffer of (value, index) pairs, which the op orders or selects in, and the op writes m results
 * per row into contiguous outputs seen as {outer, m, inner} (m = n for sort, k for topk, 1 for
 * kthvalue, median and mode). Rows are split into at most one block per thread, each block
 * with its own scratch allocated before the loop, so no allocation happens on a worker.
 *
 * The order is PyTorch's: NaN is larger than every number (last ascending, first descending),
 * and every comparison breaks ties by the original position, so the results are those of a
 * stable sort whatever the algorithm (merge sort for sort and mode, quickselect with a merge
 * sort fallback for topk, kthvalue and median). Mode returns the last occurrence of its value
 * (PyTorch documents no choice for either).
 *
 * The gradient of every op along a dim is the values-selecting one (PyTorch's
 * value_selecting_reduction_backward): the incoming gradient scattered to the selected
 * positions, zeros elsewhere. median over all elements spreads it evenly over the elements
 * equal to the median (evenly_distribute_backward), as PyTorch does.
 */
#include "grad_graph.h"
#include "kernel_util.h"

#include <math.h>
#include <string.h>

enum { SK_SORT, SK_ARGSORT, SK_TOPK, SK_KTH, SK_MEDIAN, SK_MODE };

/* args: i[0] dim (wrapped), i[1] k, i[2] descending / largest, i[3] sorted; LC_ARG_KEEPDIM. */
enum { A_DIM, A_K, A_DESC, A_SORTED };

/* ---------------------------------------------------------------- per-dtype row kernels */

typedef struct sk_job {
  int code;
  lc_dtype dt;
  const char *x; /* contiguous {outer, n, inner} */
  char *vals;    /* contiguous {outer, m, inner}; NULL for argsort */
  int64_t *idx;  /* contiguous {outer, m, inner} */
  int64_t outer, n, inner, m, k;
  bool desc;    /* sort: descending; topk: largest */
  int64_t rows; /* outer * inner */
  int64_t nblocks;
  char **scratch; /* per block: 2 * n pairs */
} sk_job;

/* A total order on (value, position) pairs: values ascending (NaN last) or descending (NaN
 * first), ties by ascending position. */
#define SK_NAN(ISF, v) ((ISF) && (v) != (v))
#define SK_ASC(ISF, a, b)                                                                          \
  ((a).v < (b).v ||                                                                                \
   (!((b).v < (a).v) &&                                                                            \
    (SK_NAN(ISF, (a).v) == SK_NAN(ISF, (b).v) ? (a).i < (b).i : SK_NAN(ISF, (b).v))))
#define SK_DESC(ISF, a, b)                                                                         \
  ((a).v > (b).v ||                                                                                \
   (!((b).v > (a).v) &&                                                                            \
    (SK_NAN(ISF, (a).v) == SK_NAN(ISF, (b).v) ? (a).i < (b).i : SK_NAN(ISF, (a).v))))

/* Merge sort (insertion-sorted runs of 16, then bottom-up merges) of a[0..n) with tmp[0..n),
 * and quickselect putting the element of rank k at a[k] (everything before it ranks lower),
 * falling back to the merge sort when the partitions degrade. ORD is asc or desc. */
#define DEF_ORDER(T, S, ISF, ORD, CMP)                                                             \
  static void msort_##ORD##_##S(pr_##S *a, pr_##S *tmp, int64_t n) {                               \
    const int64_t run = 16;                                                                        \
    for (int64_t b = 0; b < n; b += run) {                                                         \
      int64_t e = b + run < n ? b + run : n;                                                       \
      for (int64_t i = b + 1; i < e; i++) {                                                        \
        pr_##S x = a[i];                                                                           \
        int64_t j = i;                                                                             \
        for (; j > b && CMP(ISF, x, a[j - 1]); j--)                                                \
          a[j] = a[j - 1];                                                                         \
        a[j] = x;                                                                                  \
      }                                                                                            \
    }                                                                                              \
    pr_##S *src = a, *dst = tmp;                                                                   \
    for (int64_t w = run; w < n; w *= 2) {                                                         \
      for (int64_t lo = 0; lo < n; lo += 2 * w) {                                                  \
        int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;               \
        int64_t i = lo, j = mid, o = lo;                                                           \
        while (i < mid && j < hi)                                                                  \
          dst[o++] = CMP(ISF, src[j], src[i]) ? src[j++] : src[i++];                               \
        while (i < mid)                                                                            \
          dst[o++] = src[i++];                                                                     \
        while (j < hi)                                                                             \
          dst[o++] = src[j++];                                                                     \
      }                                                                                            \
      pr_##S *t_ = src;                                                                            \
      src = dst;                                                                                   \
      dst = t_;                                                                                    \
    }                                                                                              \
    if (src != a) memcpy(a, src, (size_t)n * sizeof *a);                                           \
  }                                                                                                \
                                                                                                   \
  static void qselect_##ORD##_##S(pr_##S *a, pr_##S *tmp, int64_t n, int64_t k) {                  \
    int64_t lo = 0, hi = n - 1;                                                                    \
    int depth = 8;                                                                                 \
    for (int64_t m = n; m > 1; m >>= 1)                                                            \
      depth += 2;                                                                                  \
    while (hi > lo) {                                                                              \
      if (depth-- == 0) {                                                                          \
        msort_##ORD##_##S(a + lo, tmp, hi - lo + 1);                                               \
        return;                                                                                    \
      }                                                                                            \
      int64_t mid = lo + (hi - lo) / 2;                                                            \
      pr_##S t_;                                                                                   \
      /* median of three at mid, then the pivot goes to hi */                                      \
      if (CMP(ISF, a[mid], a[lo])) t_ = a[mid], a[mid] = a[lo], a[lo] = t_;                        \
      if (CMP(ISF, a[hi], a[lo])) t_ = a[hi], a[hi] = a[lo], a[lo] = t_;                           \
      if (CMP(ISF, a[hi], a[mid])) t_ = a[hi], a[hi] = a[mid], a[mid] = t_;                        \
      t_ = a[mid], a[mid] = a[hi], a[hi] = t_;                                                     \
      const pr_##S p = a[hi];                                                                      \
      int64_t s = lo;                                                                              \
      for (int64_t j = lo; j < hi; j++)                                                            \
        if (CMP(ISF, a[j], p)) t_ = a[j], a[j] = a[s], a[s++] = t_;                                \
      a[hi] = a[s];                                                                                \
      a[s] = p;                                                                                    \
      if (s == k) return;                                                                          \
      if (k < s)                                                                                   \
        hi = s - 1;                                                                                \
      else                                                                                         \
        lo = s + 1;                                                                                \
    }                                                                                              \
  }

#define DEF_ROWS(T, S, ISF)                                                                        \
  typedef struct pr_##S {                                                                          \
    T v;                                                                                           \
    int64_t i;                                                                                     \
  } pr_##S;                                                                                        \
  DEF_ORDER(T, S, ISF, asc, SK_ASC)                                                                \
  DEF_ORDER(T, S, ISF, desc, SK_DESC)                                                              \
                                                                                                   \
  /* rows [r0, r1) of the job with the block's scratch */                                          \
  static void rows_##S(const sk_job *j, int64_t r0, int64_t r1, char *scratch) {                   \
    pr_##S *a = (pr_##S *)scratch, *tmp = a + j->n;                                                \
    const T *x = (const T *)j->x;                                                                  \
    T *vals = (T *)j->vals;                                                                        \
    const int64_t n = j->n, inner = j->inner, m = j->m;                                            \
    for (int64_t r = r0; r < r1; r++) {                                                            \
      const int64_t o = r / inner, in = r % inner;                                                 \
      const T *xr = x + o * n * inner + in;                                                        \
      for (int64_t t = 0; t < n; t++) {                                                            \
        a[t].v = xr[t * inner];                                                                    \
        a[t].i = t;                                                                                \
      }                                                                                            \
      const pr_##S *res = a; /* m results */                                                       \
      pr_##S one;                                                                                  \
      switch (j->code) {                                                                           \
      case SK_SORT:                                                                                \
      case SK_ARGSORT:                                                                             \
        if (j->desc)                                                                               \
          msort_desc_##S(a, tmp, n);                                                               \
        else                                                                                       \
          msort_asc_##S(a, tmp, n);                                                                \
        break;                                                                                     \
      case SK_TOPK:                                                                                \
        if (m == 0) break;                                                                         \
        if (j->desc) {                                                                             \
          if (m < n) qselect_desc_##S(a, tmp, n, m - 1);                                           \
          msort_desc_##S(a, tmp, m);                                                               \
        } else {                                                                                   \
          if (m < n) qselect_asc_##S(a, tmp, n, m - 1);                                            \
          msort_asc_##S(a, tmp, m);                                                                \
        }                                                                                          \
        break;                                                                                     \
      case SK_KTH:                                                                                 \
        qselect_asc_##S(a, tmp, n, j->k - 1);                                                      \
        res = a + (j->k - 1);                                                                      \
        break;                                                                                     \
      case SK_MEDIAN: {                                                                            \
        /* a NaN anywhere makes the median NaN: the first one */                                   \
        int64_t t = 0;                                                                             \
        while (t < n && !SK_NAN(ISF, a[t].v))                                                      \
          t++;                                                                                     \
        if (t < n) {                                                                               \
          res = a + t;                                                                             \
        } else {                                                                                   \
          qselect_asc_##S(a, tmp, n, (n - 1) / 2);                                                 \
          res = a + (n - 1) / 2;                                                                   \
        }                                                                                          \
        break;                                                                                     \
      }                                                                                            \
      default: { /* SK_MODE: the most frequent value (the smallest on ties), last occurrence */    \
        msort_asc_##S(a, tmp, n);                                                                  \
        int64_t best = 0, bestf = 0;                                                               \
        for (int64_t b = 0; b < n;) {                                                              \
          int64_t e = b + 1;                                                                       \
          while (e < n && (a[e].v == a[b].v || (SK_NAN(ISF, a[e].v) && SK_NAN(ISF, a[b].v))))      \
            e++;                                                                                   \
          if (e - b > bestf) {                                                                     \
            bestf = e - b;                                                                         \
            best = e - 1;                                                                          \
          }                                                                                        \
          b = e;                                                                                   \
        }                                                                                          \
        one = a[best];                                                                             \
        res = &one;                                                                                \
        break;                                                                                     \
      }                                                                                            \
      }                                                                                            \
      const int64_t ob = o * m * inner + in;                                                       \
      for (int64_t t = 0; t < m; t++)                                                              \
        j->idx[ob + t * inner] = res[t].i;                                                         \
      if (vals)                                                                                    \
        for (int64_t t = 0; t < m; t++)                                                            \
          vals[ob + t * inner] = res[t].v;                                                         \
    }                                                                                              \
  }

DEF_ROWS(float, f32, 1)
DEF_ROWS(double, f64, 1)
DEF_ROWS(int32_t, i32, 0)
DEF_ROWS(int64_t, i64, 0)
DEF_ROWS(uint8_t, b, 0)

static void sk_blocks(void *ctx, int64_t b0, int64_t b1) {
  const sk_job *j = ctx;
  for (int64_t b = b0; b < b1; b++) {
    int64_t r0 = j->rows * b / j->nblocks, r1 = j->rows * (b + 1) / j->nblocks;
    char *s = j->scratch[b];
    switch (j->dt) {
    case LC_FLOAT32: rows_f32(j, r0, r1, s); break;
    case LC_FLOAT64: rows_f64(j, r0, r1, s); break;
    case LC_INT32: rows_i32(j, r0, r1, s); break;
    case LC_INT64: rows_i64(j, r0, r1, s); break;
    default: rows_b(j, r0, r1, s); break;
    }
  }
}

/* ---------------------------------------------------------------- the engine */

/* Input x (contiguous) as {outer, n, inner} around dim (a 0-dim tensor: {1, 1, 1}). */
static void split_shape(int ndim, const int64_t *shape, int dim, int64_t *outer, int64_t *n,
                        int64_t *inner) {
  *outer = *inner = *n = 1;
  if (ndim == 0) return;
  for (int d = 0; d < dim; d++)
    *outer *= shape[d];
  for (int d = dim + 1; d < ndim; d++)
    *inner *= shape[d];
  *n = shape[dim];
}

/* Runs the op over x (any layout) into vals (may be NULL) and idx, both contiguous of the
 * results' shape, m results per row. */
static lc_status sk_run(int code, const lc_tensor *x, int dim, int64_t m, int64_t k, bool desc,
                        lc_tensor *vals, lc_tensor *idx) {
  lc_tensor *hold = NULL;
  const lc_tensor *c = NULL;
  lc_status st = dense(x, x->dtype, &hold, &c);
  if (st) return st;
  sk_job j = {.code = code, .dt = x->dtype, .x = lc_data(c), .m = m, .k = k, .desc = desc};
  j.vals = vals ? lc_data(vals) : NULL;
  j.idx = lc_data(idx);
  split_shape(x->ndim, x->shape, dim, &j.outer, &j.n, &j.inner);
  j.rows = j.outer * j.inner;
  if (j.rows == 0 || j.n == 0) {
    lc_release(hold);
    return LC_OK;
  }
  int64_t nt = lc_get_num_threads();
  j.nblocks = nt < 1 ? 1 : nt < j.rows ? nt : j.rows;
  /* 2 n pairs of at most 16 bytes per block (a pair is a value and an int64 position) */
  int64_t bytes;
  if (lc_mul_overflows(j.n, 32, &bytes)) {
    lc_release(hold);
    return lc_error_oom(SIZE_MAX);
  }
  char *blocks[64];
  if (j.nblocks > 64) j.nblocks = 64;
  j.scratch = blocks;
  int64_t got = 0;
  for (; got < j.nblocks; got++) {
    blocks[got] = malloc((size_t)bytes);
    if (!blocks[got]) break;
  }
  if (got < j.nblocks) {
    for (int64_t b = 0; b < got; b++)
      free(blocks[b]);
    lc_release(hold);
    return lc_error_oom((size_t)bytes);
  }
  int64_t lg = 1;
  for (int64_t v = j.n; v > 1; v >>= 1)
    lg++;
  int64_t per_row = j.n * lg, rows_per_block = j.rows / j.nblocks + 1, cost;
  if (lc_mul_overflows(per_row, rows_per_block, &cost)) cost = INT64_MAX;
  lc_parallel_for(j.nblocks, cost, sk_blocks, &j);
  for (int64_t b = 0; b < j.nblocks; b++)
    free(blocks[b]);
  lc_release(hold);
  return LC_OK;
}

/* Values (of x's dtype; skipped when vals is NULL) and int64 indices of shape (nd, shape). */
static lc_status new_outputs(const lc_tensor *x, int nd, const int64_t *shape, lc_tensor **vals,
                             lc_tensor **idx) {
  lc_status st = LC_OK;
  if (vals && (st = lc_tensor_new(nd, shape, x->dtype, vals))) return st;
  if ((st = lc_tensor_new(nd, shape, LC_INT64, idx))) {
    if (vals) {
      lc_release(*vals);
      *vals = NULL;
    }
  }
  return st;
}

static lc_status one_input(const lc_op_def *op, int n, lc_tensor *const *in) {
  if (n != 1 || !in[0]) return lc_set_error(LC_EARG, "%s: expected 1 input tensor", op->name);
  return LC_OK;
}

/* topk, kthvalue and median are not defined on bool tensors (PyTorch: "not implemented for
 * 'Bool'"); sort, argsort and mode are. */
static lc_status need_numeric(const char *fn, const lc_tensor *x) {
  if (x->dtype == LC_BOOL)
    return lc_set_error(LC_EDTYPE,
                        "%s: expected a float32, float64, int32 or int64 tensor, got bool", fn);
  return LC_OK;
}

/* ---------------------------------------------------------------- sort, argsort, topk */

static lc_status sort_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                              const lc_op_args *args, lc_tensor **out) {
  lc_status st = one_input(op, n, in);
  if (st) return st;
  const lc_tensor *x = in[0];
  int dim = (int)args->i[A_DIM];
  if ((st = lc_wrap_dim(&dim, x->ndim, op->name))) return st;
  bool argsort = op->code == SK_ARGSORT;
  lc_tensor *v = NULL, *ix = NULL;
  if ((st = new_outputs(x, x->ndim, x->shape, argsort ? NULL : &v, &ix))) return st;
  int64_t m = x->ndim ? x->shape[dim] : 1;
  if ((st = sk_run(op->code, x, dim, m, 0, args->i[A_DESC] != 0, v, ix))) {
    lc_release(v);
    lc_release(ix);
    return st;
  }
  if (argsort) {
    out[0] = ix;
  } else {
    out[0] = v;
    out[1] = ix;
  }
  return LC_OK;
}

static lc_status topk_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                              const lc_op_args *args, lc_tensor **out) {
  lc_status st = one_input(op, n, in);
  if (st) return st;
  const lc_tensor *x = in[0];
  if ((st = need_numeric(op->name, x))) return st;
  int dim = (int)args->i[A_DIM];
  if ((st = lc_wrap_dim(&dim, x->ndim, op->name))) return st;
  int64_t k = args->i[A_K], size = x->ndim ? x->shape[dim] : 1;
  if (k < 0 || k > size)
    return lc_set_error(LC_EINDEX,
                        "topk: k = %lld out of range for dim " LC_POS_D
                        " of size %lld (expected 0..%lld)",
                        (long long)k, dim, (long long)size, (long long)size);
  int64_t shape[LC_MAX_DIMS];
  memcpy(shape, x->shape, (size_t)x->ndim * sizeof *shape);
  /* a 0-dim tensor gives its element back (PyTorch: for k = 0 too) */
  int64_t m = x->ndim ? k : 1;
  if (x->ndim) shape[dim] = k;
  lc_tensor *v = NULL, *ix = NULL;
  if ((st = new_outputs(x, x->ndim, shape, &v, &ix))) return st;
  if ((st = sk_run(SK_TOPK, x, dim, m, k, args->i[A_DESC] != 0, v, ix))) {
    lc_release(v);
    lc_release(ix);
    return st;
  }
  out[0] = v;
  out[1] = ix;
  return LC_OK;
}

/* ---------------------------------------------------------------- kthvalue, median, mode */

static lc_status select_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                                const lc_op_args *args, lc_tensor **out) {
  lc_status st = one_input(op, n, in);
  if (st) return st;
  const lc_tensor *x = in[0];
  if (op->code != SK_MODE && (st = need_numeric(op->name, x))) return st;
  int dim = (int)args->i[A_DIM];
  if ((st = lc_wrap_dim(&dim, x->ndim, op->name))) return st;
  int64_t size = x->ndim ? x->shape[dim] : 1, k = args->i[A_K];
  if (size == 0)
    return lc_set_error(LC_EINDEX, "%s: cannot take the %s of the empty dim " LC_POS_D, op->name,
                        op->code == SK_KTH ? "k-th smallest value" : op->name, dim);
  if (op->code == SK_KTH && (k < 1 || k > size))
    return lc_set_error(LC_EINDEX,
                        "kthvalue: k = %lld out of range for dim " LC_POS_D
                        " of size %lld (expected 1..%lld)",
                        (long long)k, dim, (long long)size, (long long)size);
  bool keep = (args->flags & LC_ARG_KEEPDIM) != 0;
  int64_t shape[LC_MAX_DIMS];
  int nd = 0;
  for (int d = 0; d < x->ndim; d++) {
    if (d != dim)
      shape[nd++] = x->shape[d];
    else if (keep)
      shape[nd++] = 1;
  }
  lc_tensor *v = NULL, *ix = NULL;
  if ((st = new_outputs(x, nd, shape, &v, &ix))) return st;
  if ((st = sk_run(op->code, x, dim, 1, k, false, v, ix))) {
    lc_release(v);
    lc_release(ix);
    return st;
  }
  out[0] = v;
  out[1] = ix;
  return LC_OK;
}

/* ---------------------------------------------------------------- backward along a dim */

/* grad_in = zeros of the input's shape with g (the values' gradient, m per row) added at the
 * saved indices along dim. */
#define DEF_SCATTER_BACK(T, S)                                                                     \
  static void scatter_back_##S(T *restrict gi, const T *restrict g, const int64_t *restrict ix,    \
                               int64_t outer, int64_t n, int64_t m, int64_t inner) {               \
    for (int64_t o = 0; o < outer; o++)                                                            \
      for (int64_t t = 0; t < m; t++) {                                                            \
        const T *gr = g + (o * m + t) * inner;                                                     \
        const int64_t *xr = ix + (o * m + t) * inner;                                              \
        T *gir = gi + o * n * inner;                                                               \
        for (int64_t i = 0; i < inner; i++)                                                        \
          gir[xr[i] * inner + i] += gr[i];                                                         \
      }                                                                                            \
  }
DEF_SCATTER_BACK(float, f32)
DEF_SCATTER_BACK(double, f64)

static lc_status select_backward(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **grad_in) {
  if (!ctx->needs_grad[0]) return LC_OK;
  const lc_meta *m = &ctx->in[0];
  if (!same_shape(g, ctx->out->ndim, ctx->out->shape)) return grad_shape_error(ctx, g);
  const lc_tensor *ix = NULL;
  lc_status st = saved(ctx, 0, &ix);
  if (st) return st;
  int dim = (int)ctx->args->i[A_DIM];
  if ((st = lc_wrap_dim(&dim, m->ndim, ctx->op->grad_fn_name))) return st;
  lc_tensor *gi = NULL, *hold = NULL;
  const lc_tensor *gc = NULL;
  if ((st = lc_zeros(m->ndim, m->shape, m->dtype, &gi))) return st;
  if ((st = dense(g, m->dtype, &hold, &gc))) {
    lc_release(gi);
    return st;
  }
  int64_t outer, n, inner;
  split_shape(m->ndim, m->shape, dim, &outer, &n, &inner);
  int64_t rows = outer * inner, mm = rows ? ix->numel / rows : 0;
  if (rows && n && ix->contiguous) {
    if (m->dtype == LC_FLOAT32)
      scatter_back_f32(lc_data(gi), lc_data(gc), lc_data(ix), outer, n, mm, inner);
    else
      scatter_back_f64(lc_data(gi), lc_data(gc), lc_data(ix), outer, n, mm, inner);
  }
  lc_release(hold);
  grad_in[0] = gi;
  return LC_OK;
}

/* The same gradient as recorded ops (create_graph): scatter_add of g into zeros at the indices,
 * g and the indices first given back the reduced dim (size 1) when the op removed it. */
static lc_status select_backward_graph(const lc_op_ctx *ctx, const lc_tensor *grad_out,
                                       lc_tensor **grad_in) {
  if (!ctx->needs_grad[0]) return LC_OK;
  const lc_meta *m = &ctx->in[0];
  lc_gb b = LC_GB_INIT(ctx);
  lc_tensor *ix = lc_gb_saved(&b, 0);
  if (m->ndim == 0) { /* a row of one: the value is the element */
    lc_gb_grad(&b, 0, grad_out, grad_in);
    return lc_gb_end(&b, grad_in);
  }
  int dim = (int)ctx->args->i[A_DIM];
  if (!b.st) b.st = lc_wrap_dim(&dim, m->ndim, ctx->op->grad_fn_name);
  lc_gb_grad(&b, 0, lc_gb_put_back(&b, m, dim, grad_out, ix), grad_in);
  return lc_gb_end(&b, grad_in);
}

/* ---------------------------------------------------------------- median of all elements */

static lc_status median_all_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                                    const lc_op_args *args, lc_tensor **out) {
  (void)args;
  lc_status st = one_input(op, n, in);
  if (st) return st;
  const lc_tensor *x = in[0];
  if ((st = need_numeric("median", x))) return st;
  lc_tensor *v = NULL, *ix = NULL, *flat = NULL;
  if ((st = lc_tensor_new(0, NULL, x->dtype, &v))) return st;
  if (x->numel == 0) {
    if (!is_float(x->dtype)) {
      lc_release(v);
      return lc_set_error(LC_EARG, "median: an empty %s tensor has no median",
                          lc_dtype_name(x->dtype));
    }
    lc_store_f64(lc_data(v), x->dtype, 0, NAN); /* PyTorch: nan */
    out[0] = v;
    return LC_OK;
  }
  lc_tensor *hold = NULL;
  const lc_tensor *c = NULL;
  int64_t len = x->numel;
  if ((st = dense(x, x->dtype, &hold, &c))) goto fail;
  if ((st = lc_tensor_view_of(c, 1, &len, &(int64_t){1}, c->offset, &flat))) goto fail;
  if ((st = lc_tensor_new(0, NULL, LC_INT64, &ix))) goto fail;
  st = sk_run(SK_MEDIAN, flat, 0, 1, 0, false, v, ix);
fail:
  lc_release(ix);
  lc_release(flat);
  lc_release(hold);
  if (st) {
    lc_release(v);
    return st;
  }
  out[0] = v;
  return LC_OK;
}

/* grad_in = g / count at the elements equal to the median (NaN: at the NaNs), 0 elsewhere. */
#define DEF_EVEN_BACK(T, S)                                                                        \
  static void even_back_##S(T *restrict gi, const T *restrict x, int64_t n, T med, double g) {     \
    bool nan = med != med;                                                                         \
    int64_t count = 0;                                                                             \
    for (int64_t t = 0; t < n; t++)                                                                \
      count += nan ? x[t] != x[t] : x[t] == med;                                                   \
    T share = (T)(g / (double)(count ? count : 1));                                                \
    for (int64_t t = 0; t < n; t++)                                                                \
      gi[t] = (nan ? x[t] != x[t] : x[t] == med) ? share : (T)0;                                   \
  }
DEF_EVEN_BACK(float, f32)
DEF_EVEN_BACK(double, f64)

static lc_status median_all_backward(const lc_op_ctx *ctx, const lc_tensor *g,
                                     lc_tensor **grad_in) {
  if (!ctx->needs_grad[0]) return LC_OK;
  const lc_meta *m = &ctx->in[0];
  if (g->numel != 1) return grad_shape_error(ctx, g);
  const lc_tensor *x = NULL, *med = NULL;
  lc_status st = saved(ctx, 0, &x);
  if (!st) st = saved(ctx, 1, &med);
  if (st) return st;
  lc_tensor *gi = NULL, *hold = NULL;
  const lc_tensor *xc = NULL;
  if ((st = lc_tensor_new(m->ndim, m->shape, m->dtype, &gi))) return st;
  if ((st = dense(x, m->dtype, &hold, &xc))) {
    lc_release(gi);
    return st;
  }
  double gv = lc_load_f64(lc_data(g), g->dtype, 0);
  if (m->dtype == LC_FLOAT32)
    even_back_f32(lc_data(gi), lc_data(xc), gi->numel, *(const float *)lc_data(med), gv);
  else
    even_back_f64(lc_data(gi), lc_data(xc), gi->numel, *(const double *)lc_data(med), gv);
  lc_release(hold);
  grad_in[0] = gi;
  return LC_OK;
}

/* median_all_backward as recorded ops: where(x == median, g / count, 0) (x != x for a NaN
 * median). */
static lc_status median_all_backward_graph(const lc_op_ctx *ctx, const lc_tensor *g,
                                           lc_tensor **grad_in) {
  if (!ctx->needs_grad[0]) return LC_OK;
  lc_gb b = LC_GB_INIT(ctx);
  lc_tensor *x = lc_gb_saved(&b, 0), *med = lc_gb_saved(&b, 1);
  if (b.st) return lc_gb_end(&b, grad_in);
  double mv = lc_load_f64(lc_data(med), med->dtype, 0);
  lc_tensor *mask = mv != mv ? lc_gb_bin(&b, LC_NE, x, x) : lc_gb_bin(&b, LC_EQ, x, med);
  bool red[LC_MAX_DIMS];
  for (int d = 0; d < LC_MAX_DIMS; d++)
    red[d] = true;
  lc_tensor *count = lc_gb_sum_keep(&b, lc_gb_cast(&b, mask, g->dtype), red);
  lc_tensor *share = lc_gb_bin(&b, LC_DIV, g, count);
  if (!b.st) share = lc_gb_expand(&b, share, x->ndim, x->shape);
  lc_gb_grad(&b, 0, lc_gb_mask(&b, mask, share), grad_in);
  return lc_gb_end(&b, grad_in);
}

/* ---------------------------------------------------------------- the ops */

/* The ops that pick one position (or k) per row along dim: out[1] holds the positions, which
 * their backward scatters the gradient back to. */
#define PICK_OP(var, nm, gname, kind, fwd)                                                         \
  const lc_op_def var = {.name = nm,                                                               \
                         .grad_fn_name = gname,                                                    \
                         .n_inputs = 1,                                                            \
                         .n_outputs = 2,                                                           \
                         .code = kind,                                                             \
                         .save = LC_SAVE_OUT(1),                                                   \
                         .forward = fwd,                                                           \
                         .backward = select_backward,                                              \
                         .backward_graph = select_backward_graph};
PICK_OP(lc_op_sort, "sort", "SortBackward", SK_SORT, sort_forward)
PICK_OP(lc_op_topk, "topk", "TopkBackward", SK_TOPK, topk_forward)
PICK_OP(lc_op_kthvalue, "kthvalue", "KthvalueBackward", SK_KTH, select_forward)
PICK_OP(lc_op_median_dim, "median", "MedianBackward", SK_MEDIAN, select_forward)
PICK_OP(lc_op_mode, "mode", "ModeBackward", SK_MODE, select_forward)
#undef PICK_OP

const lc_op_def lc_op_argsort = {
    .name = "argsort", .n_inputs = 1, .n_outputs = 1, .code = SK_ARGSORT, .forward = sort_forward};
const lc_op_def lc_op_median = {.name = "median",
                                .grad_fn_name = "MedianBackward",
                                .n_inputs = 1,
                                .n_outputs = 1,
                                .code = SK_MEDIAN,
                                .save = LC_SAVE_IN(0) | LC_SAVE_OUT(0),
                                .forward = median_all_forward,
                                .backward = median_all_backward,
                                .backward_graph = median_all_backward_graph};
