/*
 * misc_ops.c - kernels of the miscellaneous tensor ops: clamp with tensor bounds (an op with
 * forward and backward side by side), and the non-differentiable kernels behind unique,
 * searchsorted and isclose (called by src/ops/misc_ops.c; their results carry no gradient).
 *
 * Layer 2 of 8 (kernels; docs/CONTRIBUTING.md).
 */
#include "misc_ops.h"

#include "grad_graph.h"
#include "kernel_util.h"

#include <string.h>

/* ------------------------------------------------------------------ clamp (tensor bounds) */

static lc_status clamp_tensor_forward(const lc_op_def *op, int n, lc_tensor *const *in,
                                      const lc_op_args *args, lc_tensor **out) {
  (void)op;
  const bool has_lo = (args->flags & LC_ARG_HAS_LO) != 0,
             has_hi = (args->flags & LC_ARG_HAS_HI) != 0;
  if (n != 1 + has_lo + has_hi || (!has_lo && !has_hi))
    return lc_set_error(LC_EARG, "clamp: at least one of min and max must be given");
  lc_op_args none = {0};
  lc_tensor *r = lc_retain(in[0]);
  int k = 1;
  if (has_lo) {
    lc_tensor *t = NULL, *ab[2] = {r, in[k++]};
    lc_status st = lc_op_run(&lc_op_binary[LC_MAXIMUM], 2, ab, &none, &t);
    lc_release(r);
    if (st) return st;
    r = t;
  }
  if (has_hi) {
    lc_tensor *t = NULL, *ab[2] = {r, in[k]};
    lc_status st = lc_op_run(&lc_op_binary[LC_MINIMUM], 2, ab, &none, &t);
    lc_release(r);
    if (st) return st;
    r = t;
  }
  out[0] = r;
  return LC_OK;
}

/* PyTorch 1.13's clamp_backward and clamp_backward_min_max, written with the builder: the
 * same function serves create_graph. */
static lc_status clamp_tensor_backward(const lc_op_ctx *ctx, const lc_tensor *g,
                                       lc_tensor **grad_in) {
  const bool has_lo = (ctx->args->flags & LC_ARG_HAS_LO) != 0,
             has_hi = (ctx->args->flags & LC_ARG_HAS_HI) != 0;
  const int ilo = has_lo ? 1 : -1, ihi = has_hi ? (has_lo ? 2 : 1) : -1;
  lc_gb b = LC_GB_INIT(ctx);
  lc_tensor *x = lc_gb_saved(&b, 0);
  lc_tensor *lo = has_lo ? lc_gb_saved(&b, ilo) : NULL;
  lc_tensor *hi = has_hi ? lc_gb_saved(&b, ihi) : NULL;
  if (has_lo && has_hi) {
    if (ctx->needs_grad[0]) {
      lc_tensor *c =
          lc_gb_bin(&b, LC_LOGICAL_AND, lc_gb_bin(&b, LC_GE, x, lo), lc_gb_bin(&b, LC_LE, x, hi));
      lc_gb_grad(&b, 0, lc_gb_mask(&b, c, g), grad_in);
    }
    if (ctx->needs_grad[ilo]) {
      lc_tensor *c =
          lc_gb_bin(&b, LC_LOGICAL_AND, lc_gb_bin(&b, LC_LT, x, lo), lc_gb_bin(&b, LC_LT, lo, hi));
      lc_gb_grad(&b, ilo, lc_gb_mask(&b, c, g), grad_in);
    }
    if (ctx->needs_grad[ihi]) {
      lc_tensor *c =
          lc_gb_bin(&b, LC_LOGICAL_OR, lc_gb_bin(&b, LC_GT, x, hi), lc_gb_bin(&b, LC_LT, hi, lo));
      lc_gb_grad(&b, ihi, lc_gb_mask(&b, c, g), grad_in);
    }
  } else if (has_lo) {
    if (ctx->needs_grad[0])
      lc_gb_grad(&b, 0, lc_gb_mask(&b, lc_gb_bin(&b, LC_GE, x, lo), g), grad_in);
    if (ctx->needs_grad[ilo])
      lc_gb_grad(&b, ilo, lc_gb_mask(&b, lc_gb_bin(&b, LC_LT, x, lo), g), grad_in);
  } else {
    if (ctx->needs_grad[0])
      lc_gb_grad(&b, 0, lc_gb_mask(&b, lc_gb_bin(&b, LC_LE, x, hi), g), grad_in);
    if (ctx->needs_grad[ihi])
      lc_gb_grad(&b, ihi, lc_gb_mask(&b, lc_gb_bin(&b, LC_GT, x, hi), g), grad_in);
  }
  return lc_gb_end(&b, grad_in);
}

const lc_op_def lc_op_clamp_tensor = {.name = "clamp",
                                      .grad_fn_name = "ClampBackward",
                                      .n_inputs = -1,
                                      .n_outputs = 1,
                                      .save = LC_SAVE_ALL_INPUTS,
                                      .forward = clamp_tensor_forward,
                                      .backward = clamp_tensor_backward,
                                      .backward_graph = clamp_tensor_backward};

/* ------------------------------------------------------------------ unique */

typedef struct rows_ctx {
  const double *f;  /* float data, or */
  const int64_t *i; /* integer data */
  int64_t len;
} rows_ctx;

/* <0, 0, >0; NaN after every number and equal to nothing (so -2 / 2 never 0 for NaN). */
static int cmp_rows(const rows_ctx *c, int64_t a, int64_t b, bool *equal) {
  *equal = true;
  for (int64_t k = 0; k < c->len; k++) {
    if (c->f) {
      double x = c->f[a * c->len + k], y = c->f[b * c->len + k];
      if (x == y) continue;
      *equal = false;
      bool nx = x != x, ny = y != y;
      if (nx || ny) {
        if (nx && ny) continue; /* keep looking for an order; rows stay unequal */
        return nx ? 1 : -1;
      }
      return x < y ? -1 : 1;
    } else {
      int64_t x = c->i[a * c->len + k], y = c->i[b * c->len + k];
      if (x != y) {
        *equal = false;
        return x < y ? -1 : 1;
      }
    }
  }
  return 0;
}

/* Stable merge sort of idx[0..n) by cmp_rows, using tmp. */
static void sort_rows(const rows_ctx *c, int64_t *idx, int64_t *tmp, int64_t n) {
  for (int64_t w = 1; w < n; w *= 2) {
    for (int64_t lo = 0; lo < n; lo += 2 * w) {
      int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
      int64_t i = lo, j = mid, k = lo;
      while (i < mid && j < hi) {
        bool eq;
        tmp[k++] = cmp_rows(c, idx[j], idx[i], &eq) < 0 ? idx[j++] : idx[i++];
      }
      while (i < mid)
        tmp[k++] = idx[i++];
      while (j < hi)
        tmp[k++] = idx[j++];
    }
    memcpy(idx, tmp, (size_t)n * sizeof *idx);
  }
}

lc_status lc_k_unique_rows(const lc_tensor *x, int64_t rows, int64_t len, bool consecutive,
                           int64_t *n_groups, int64_t *first, int64_t *counts, int64_t *inverse) {
  *n_groups = 0;
  if (rows == 0) return LC_OK;
  const bool flt = is_float(x->dtype);
  lc_tensor *d = NULL;
  lc_status st = lc_k_dense_as(x, flt ? LC_FLOAT64 : LC_INT64, &d);
  if (st) return st;
  rows_ctx c = {.f = flt ? lc_data(d) : NULL, .i = flt ? NULL : lc_data(d), .len = len};
  int64_t *idx = malloc((size_t)rows * 2 * sizeof *idx);
  if (!idx) {
    lc_release(d);
    return lc_error_oom((size_t)rows * 2 * sizeof *idx);
  }
  for (int64_t r = 0; r < rows; r++)
    idx[r] = r;
  if (!consecutive) sort_rows(&c, idx, idx + rows, rows);
  int64_t g = -1;
  for (int64_t r = 0; r < rows; r++) {
    bool eq = false;
    if (r > 0) (void)cmp_rows(&c, idx[r - 1], idx[r], &eq);
    if (r == 0 || !eq) {
      g++;
      first[g] = idx[r];
      counts[g] = 0;
    }
    counts[g]++;
    inverse[idx[r]] = g;
  }
  *n_groups = g + 1;
  free(idx);
  lc_release(d);
  return LC_OK;
}

/* ------------------------------------------------------------------ searchsorted */

lc_status lc_k_searchsorted(const lc_tensor *seq, const lc_tensor *values, const lc_tensor *sorter,
                            bool right, lc_tensor *out) {
  const bool flt = is_float(seq->dtype);
  const lc_dtype dt = flt ? LC_FLOAT64 : LC_INT64;
  lc_tensor *s = NULL, *v = NULL, *so = NULL;
  lc_status st = lc_k_dense_as(seq, dt, &s);
  if (!st) st = lc_k_dense_as(values, dt, &v);
  if (!st && sorter) st = lc_k_dense_as(sorter, LC_INT64, &so);
  if (st) goto done;
  const int64_t n = seq->ndim ? seq->shape[seq->ndim - 1] : 1;
  const int64_t vlast = values->ndim ? values->shape[values->ndim - 1] : 1;
  const bool one_row = seq->ndim <= 1;
  const int64_t *ord = so ? lc_data(so) : NULL;
  const double *sf = lc_data(s), *vf = lc_data(v);
  const int64_t *si = lc_data(s), *vi = lc_data(v);
  void *o = lc_data(out);
  for (int64_t e = 0; e < values->numel; e++) {
    const int64_t base = one_row || vlast == 0 ? 0 : (e / vlast) * n;
    int64_t lo = 0, hi = n;
    while (lo < hi) {
      int64_t mid = lo + (hi - lo) / 2, at = base + (ord ? ord[base + mid] : mid);
      bool go_right;
      if (flt) {
        double a = sf[at], x = vf[e];
        go_right = right ? !(a > x) : !(a >= x);
      } else {
        int64_t a = si[at], x = vi[e];
        go_right = right ? !(a > x) : !(a >= x);
      }
      if (go_right)
        lo = mid + 1;
      else
        hi = mid;
    }
    if (out->dtype == LC_INT32)
      ((int32_t *)o)[e] = (int32_t)lo;
    else
      ((int64_t *)o)[e] = lo;
  }
done:
  lc_release(s);
  lc_release(v);
  lc_release(so);
  return st;
}

/* ------------------------------------------------------------------ isclose */

lc_status lc_k_isclose(const lc_tensor *a, const lc_tensor *b, double rtol, double atol,
                       bool equal_nan, lc_tensor *out) {
  int64_t st[3][LC_MAX_DIMS] = {{0}};
  lc_broadcast_strides(a, out->ndim, out->shape, st[0]);
  lc_broadcast_strides(b, out->ndim, out->shape, st[1]);
  lc_contiguous_strides(out->ndim, out->shape, st[2]);
  if (out->numel == 0) return LC_OK;
  lc_iter it;
  lc_iter_init(&it, 3, out->ndim, out->shape, (const int64_t(*)[LC_MAX_DIMS])st);
  const void *pa = lc_data(a), *pb = lc_data(b);
  uint8_t *po = lc_data(out);
  for (int64_t r = 0; r < it.outer; r++) {
    int64_t offs[LC_ITER_MAX_OPS];
    lc_iter_row(&it, r, offs);
    for (int64_t j = 0; j < it.inner; j++)
      po[offs[2] + j * it.inner_stride[2]] = lc_close_f64(
          lc_load_f64(pa, a->dtype, offs[0] + j * it.inner_stride[0]),
          lc_load_f64(pb, b->dtype, offs[1] + j * it.inner_stride[1]), rtol, atol, equal_nan);
  }
  return LC_OK;
}
