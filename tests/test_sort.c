/* test_sort.c - sort, argsort, topk, kthvalue, median, mode: values and indices against a
 * stable reference written here (every dtype, every dim, strided inputs, NaNs, ties, long rows
 * that take the quickselect and merge paths), shapes of empty and 0-dim tensors, errors, and
 * gradients (numeric, and median's even split over ties). */
#include "gradcheck.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- the reference */

static bool nan_(double v) { return v != v; }

/* the total order of the kernels: ascending (NaN last) or descending (NaN first), ties by
 * position */
static bool before(double a, int64_t ia, double b, int64_t ib, bool desc) {
  if (nan_(a) || nan_(b)) {
    if (nan_(a) && nan_(b)) return ia < ib;
    return desc ? nan_(a) : nan_(b);
  }
  if (a != b) return desc ? a > b : a < b;
  return ia < ib;
}

/* positions of row r[0..n) in order (insertion sort) */
static void ref_order(const double *r, int64_t n, bool desc, int64_t *pos) {
  for (int64_t i = 0; i < n; i++) {
    int64_t j = i;
    for (; j > 0 && before(r[i], i, r[pos[j - 1]], pos[j - 1], desc); j--)
      pos[j] = pos[j - 1];
    pos[j] = i;
  }
}

enum { OP_SORT, OP_TOPK, OP_KTH, OP_MEDIAN, OP_MODE };

/* the m results of one row */
static int64_t ref_row(int op, const double *r, int64_t n, int64_t k, bool desc, int64_t *pos) {
  switch (op) {
  case OP_SORT: ref_order(r, n, desc, pos); return n;
  case OP_TOPK: ref_order(r, n, desc, pos); return k;
  case OP_KTH:
    ref_order(r, n, false, pos);
    pos[0] = pos[k - 1];
    return 1;
  case OP_MEDIAN:
    for (int64_t i = 0; i < n; i++)
      if (nan_(r[i])) {
        pos[0] = i;
        return 1;
      }
    ref_order(r, n, false, pos);
    pos[0] = pos[(n - 1) / 2];
    return 1;
  default: {
    int64_t best = -1, bestf = 0;
    for (int64_t i = 0; i < n; i++) {
      int64_t f = 0, last = i;
      for (int64_t j = 0; j < n; j++)
        if (r[j] == r[i] || (nan_(r[j]) && nan_(r[i]))) f++, last = j;
      if (f > bestf || (f == bestf && before(r[i], 0, r[best], 0, false) &&
                        !(r[i] == r[best] || (nan_(r[i]) && nan_(r[best]))))) {
        bestf = f;
        best = last;
      }
    }
    pos[0] = best;
    return 1;
  }
  }
}

static bool same(double a, double b) { return a == b || (nan_(a) && nan_(b)); }

/* Runs op on x along dim and compares with the reference over x's values in C order. */
static int check_op(int op, const lc_tensor *x, int dim, int64_t k, bool desc) {
  int bad = 0;
  lc_tensor *v = NULL, *ix = NULL;
  lc_status st;
  switch (op) {
  case OP_SORT: st = lc_sort(x, dim, desc, true, &v, &ix); break;
  case OP_TOPK: st = lc_topk(x, k, dim, desc, true, &v, &ix); break;
  case OP_KTH: st = lc_kthvalue(x, k, dim, true, &v, &ix); break;
  case OP_MEDIAN: st = lc_median_dim(x, dim, true, &v, &ix); break;
  default: st = lc_mode(x, dim, true, &v, &ix); break;
  }
  if (st) {
    printf("  op %d dim %d k %lld: %s\n", op, dim, (long long)k, lc_last_error());
    return 1;
  }
  double *xv = test_values(x), *vv = test_values(v), *iv = test_values(ix);
  int nd = lc_ndim(x);
  const int64_t *sh = lc_shape(x);
  int64_t outer = 1, inner = 1, n = nd ? sh[dim] : 1;
  for (int d = 0; d < dim; d++)
    outer *= sh[d];
  for (int d = dim + 1; d < nd; d++)
    inner *= sh[d];
  double *row = malloc((size_t)(n + 1) * sizeof *row);
  int64_t *pos = malloc((size_t)(n + 1) * sizeof *pos);
  for (int64_t o = 0; o < outer && !bad; o++)
    for (int64_t i = 0; i < inner && !bad; i++) {
      for (int64_t t = 0; t < n; t++)
        row[t] = xv[(o * n + t) * inner + i];
      int64_t m = ref_row(op, row, n, k, desc, pos);
      for (int64_t t = 0; t < m; t++) {
        int64_t at = (o * m + t) * inner + i;
        if (iv[at] != (double)pos[t] || !same(vv[at], row[pos[t]])) {
          printf("  op %d dim %d k %lld desc %d: row %lld/%lld result %lld: got %g@%g, expected "
                 "%g@%lld\n",
                 op, dim, (long long)k, desc, (long long)o, (long long)i, (long long)t, vv[at],
                 iv[at], row[pos[t]], (long long)pos[t]);
          bad = 1;
          break;
        }
      }
    }
  free(row);
  free(pos);
  free(xv);
  free(vv);
  free(iv);
  lc_release(v);
  lc_release(ix);
  return bad;
}

/* every op, dim, k and direction over x */
static int check_all(const lc_tensor *x) {
  int bad = 0, nd = lc_ndim(x);
  bool boolean = lc_dtype_of(x) == LC_BOOL;
  for (int dim = 0; dim < (nd ? nd : 1); dim++) {
    int64_t n = nd ? lc_shape(x)[dim] : 1;
    for (int desc = 0; desc < 2; desc++)
      bad += check_op(OP_SORT, x, dim, 0, desc);
    bad += check_op(OP_MODE, x, dim, 0, false);
    if (boolean) continue;
    bad += check_op(OP_MEDIAN, x, dim, 0, false);
    for (int64_t k = 1; k <= n; k++) {
      bad += check_op(OP_KTH, x, dim, k, false);
      for (int desc = 0; desc < 2; desc++)
        bad += check_op(OP_TOPK, x, dim, k, desc);
    }
  }
  return bad;
}

/* A {3, 7, 5} tensor of small values with ties (and NaNs for floats) in dtype dt. */
static lc_tensor *ties(lc_dtype dt, unsigned seed) {
  int64_t s[] = {3, 7, 5};
  double v[105];
  for (int i = 0; i < 105; i++) {
    seed = seed * 1103515245u + 12345u;
    int r = (int)((seed >> 16) % 9);
    v[i] = dt == LC_BOOL ? (r & 1) : r == 8 && lc_dtype_is_float(dt) ? NAN : r - 3;
  }
  lc_tensor *d = NULL, *t = NULL;
  if (lc_from_data(3, s, LC_FLOAT64, v, &d)) return NULL;
  if (lc_to_dtype(d, dt, &t)) t = NULL;
  lc_release(d);
  return t;
}

TEST(sort_family_against_reference) {
  lc_dtype dts[] = {LC_FLOAT32, LC_FLOAT64, LC_INT32, LC_INT64, LC_BOOL};
  for (size_t k = 0; k < sizeof dts / sizeof *dts; k++) {
    lc_tensor *x = ties(dts[k], 7 + (unsigned)k), *xt = NULL, *xs = NULL;
    CHECK(x != NULL);
    if (!x) continue;
    CHECK(check_all(x) == 0);
    /* strided: a transposed view, and a stepped slice */
    CHECK_OK(lc_transpose(x, 0, 2, &xt));
    if (xt) CHECK(check_all(xt) == 0);
    CHECK_OK(lc_slice(x, 1, 1, 7, 2, &xs));
    if (xs) CHECK(check_all(xs) == 0);
    lc_release(x);
    lc_release(xt);
    lc_release(xs);
  }
}

/* Long rows: merge passes beyond the insertion runs, quickselect on sorted, reversed and
 * constant rows (its degenerate inputs), and an expanded (stride 0) input. */
TEST(sort_family_long_rows) {
  const int64_t n = 3000;
  double *v = malloc((size_t)(4 * n) * sizeof *v);
  for (int64_t i = 0; i < n; i++) {
    v[i] = (double)((i * 7919) % 1009); /* many ties */
    v[n + i] = (double)i;               /* sorted */
    v[2 * n + i] = (double)(n - i);     /* reversed */
    v[3 * n + i] = 4.0;                 /* constant */
  }
  int64_t s[] = {4, n};
  lc_tensor *x = NULL, *e = NULL, *one = NULL;
  CHECK_OK(lc_from_data(2, s, LC_FLOAT64, v, &x));
  if (x) {
    CHECK(check_op(OP_SORT, x, 1, 0, false) == 0);
    CHECK(check_op(OP_SORT, x, 1, 0, true) == 0);
    int64_t ks[] = {1, 2, 17, n / 2, n - 1, n};
    for (size_t k = 0; k < sizeof ks / sizeof *ks; k++) {
      CHECK(check_op(OP_TOPK, x, 1, ks[k], true) == 0);
      CHECK(check_op(OP_TOPK, x, 1, ks[k], false) == 0);
      CHECK(check_op(OP_KTH, x, 1, ks[k], false) == 0);
    }
    CHECK(check_op(OP_MEDIAN, x, 1, 0, false) == 0);
    CHECK(check_op(OP_MODE, x, 1, 0, false) == 0);
    int64_t es[] = {3, n};
    CHECK_OK(lc_slice(x, 0, 0, 1, 1, &one));
    if (one) CHECK_OK(lc_expand(one, 2, es, &e));
    if (e) {
      CHECK(check_op(OP_SORT, e, 1, 0, false) == 0);
      CHECK(check_op(OP_KTH, e, 0, 2, false) == 0);
    }
  }
  lc_release(x);
  lc_release(e);
  lc_release(one);
  free(v);
}

/* int64 values that doubles cannot tell apart are ordered exactly. */
TEST(sort_int64_exact) {
  int64_t big = INT64_C(9007199254740993); /* 2^53 + 1 */
  int64_t v[] = {big, big - 1, big + 2, INT64_MIN, INT64_MAX};
  int64_t s[] = {5};
  lc_tensor *x = NULL, *sv = NULL, *si = NULL;
  CHECK_OK(lc_from_data(1, s, LC_INT64, v, &x));
  if (x) CHECK_OK(lc_sort(x, 0, false, false, &sv, &si));
  if (sv && si) {
    const int64_t *a = lc_data(sv), *b = lc_data(si);
    int64_t want[] = {INT64_MIN, big - 1, big, big + 2, INT64_MAX}, wi[] = {3, 1, 0, 2, 4};
    for (int i = 0; i < 5; i++)
      CHECK(a[i] == want[i] && b[i] == wi[i]);
  }
  lc_release(x);
  lc_release(sv);
  lc_release(si);
}

TEST(sort_family_shapes) {
  lc_tensor *z = NULL, *v = NULL, *ix = NULL, *s = NULL;
  int64_t s03[] = {0, 3};
  CHECK_OK(lc_zeros(2, s03, LC_FLOAT32, &z));
  if (z) {
    CHECK_OK(lc_sort(z, 0, false, false, &v, &ix));
    if (v) CHECK(lc_ndim(v) == 2 && lc_shape(v)[0] == 0 && lc_dtype_of(ix) == LC_INT64);
    lc_release(v);
    lc_release(ix);
    v = ix = NULL;
    CHECK_OK(lc_topk(z, 2, 1, true, true, &v, &ix));
    if (v) CHECK(lc_ndim(v) == 2 && lc_shape(v)[0] == 0 && lc_shape(v)[1] == 2);
    lc_release(v);
    lc_release(ix);
    v = ix = NULL;
    CHECK_OK(lc_topk(z, 0, 0, true, true, &v, &ix));
    lc_release(v);
    lc_release(ix);
    v = ix = NULL;
    CHECK_OK(lc_median_dim(z, 1, false, &v, &ix)); /* no rows: fine */
    if (v) CHECK(lc_ndim(v) == 1 && lc_shape(v)[0] == 0);
    lc_release(v);
    lc_release(ix);
    v = ix = NULL;
    CHECK_STATUS(lc_median_dim(z, 0, false, &v, &ix), LC_EINDEX);
    CHECK_STATUS(lc_mode(z, 0, false, &v, &ix), LC_EINDEX);
    CHECK_STATUS(lc_kthvalue(z, 1, 0, false, &v, &ix), LC_EINDEX);
    CHECK_STATUS(lc_topk(z, 1, 0, true, true, &v, &ix), LC_EINDEX);
    CHECK_OK(lc_median(z, &s)); /* empty float: nan */
    if (s) CHECK(lc_ndim(s) == 0 && nan_(*(float *)lc_data(s)));
    lc_release(s);
    s = NULL;
  }
  lc_release(z);
  z = NULL;
  int64_t s0[] = {0};
  CHECK_OK(lc_zeros(1, s0, LC_INT64, &z));
  if (z) CHECK_STATUS(lc_median(z, &s), LC_EARG);
  lc_release(z);
  z = NULL;
  /* 0-dim: a row of one */
  double five = 5;
  CHECK_OK(lc_from_data(0, NULL, LC_FLOAT64, &five, &z));
  if (z) {
    CHECK_OK(lc_topk(z, 0, -1, true, true, &v, &ix)); /* PyTorch: the element, for k = 0 too */
    if (v) CHECK(lc_ndim(v) == 0 && *(double *)lc_data(v) == 5 && *(int64_t *)lc_data(ix) == 0);
    lc_release(v);
    lc_release(ix);
    v = ix = NULL;
    CHECK_OK(lc_kthvalue(z, 1, 0, true, &v, &ix));
    if (v) CHECK(lc_ndim(v) == 0);
    lc_release(v);
    lc_release(ix);
    v = ix = NULL;
    CHECK_STATUS(lc_kthvalue(z, 2, 0, false, &v, &ix), LC_EINDEX);
    CHECK_STATUS(lc_sort(z, 1, false, false, &v, &ix), LC_EINDEX);
    CHECK_OK(lc_median(z, &s));
    if (s) CHECK(*(double *)lc_data(s) == 5);
  }
  lc_release(s);
  lc_release(z);
}

TEST(sort_family_errors) {
  double d[] = {3, 1, 2};
  int64_t s[] = {3};
  lc_tensor *x = NULL, *b = NULL, *v = NULL, *ix = NULL;
  CHECK_OK(lc_from_data(1, s, LC_FLOAT64, d, &x));
  CHECK_OK(lc_to_dtype(x, LC_BOOL, &b));
  if (!x || !b) goto out;
  CHECK_STATUS(lc_topk(x, 4, 0, true, true, &v, &ix), LC_EINDEX);
  CHECK(strstr(lc_last_error(), "topk: k = 4 out of range for dim 0 of size 3 (expected 0..3)"));
  CHECK_STATUS(lc_topk(x, -1, 0, true, true, &v, &ix), LC_EINDEX);
  CHECK_STATUS(lc_kthvalue(x, 0, 0, false, &v, &ix), LC_EINDEX);
  CHECK(strstr(lc_last_error(), "kthvalue: k = 0 out of range for dim 0 of size 3"));
  CHECK_STATUS(lc_kthvalue(x, 4, -1, false, &v, &ix), LC_EINDEX);
  CHECK_STATUS(lc_sort(x, 1, false, false, &v, &ix), LC_EINDEX);
  CHECK_STATUS(lc_mode(x, -2, false, &v, &ix), LC_EINDEX);
  CHECK_STATUS(lc_topk(b, 1, 0, true, true, &v, &ix), LC_EDTYPE);
  CHECK_STATUS(lc_kthvalue(b, 1, 0, true, &v, &ix), LC_EDTYPE);
  CHECK_STATUS(lc_median(b, &v), LC_EDTYPE);
  CHECK_STATUS(lc_median_dim(b, 0, false, &v, &ix), LC_EDTYPE);
  CHECK_STATUS(lc_sort(NULL, 0, false, false, &v, &ix), LC_EARG);
  CHECK_STATUS(lc_sort(x, 0, false, false, &v, NULL), LC_EARG);
  CHECK(v == NULL && ix == NULL);
out:
  lc_release(x);
  lc_release(b);
}

/* ---------------------------------------------------------------- gradients */

typedef struct gctx {
  int op, dim;
  int64_t k;
  bool flag;
} gctx;

static lc_status f_sel(void *vc, lc_tensor *const *in, lc_tensor **out) {
  const gctx *c = vc;
  lc_tensor *ix = NULL;
  lc_status st;
  switch (c->op) {
  case OP_SORT: st = lc_sort(in[0], c->dim, c->flag, false, out, &ix); break;
  case OP_TOPK: st = lc_topk(in[0], c->k, c->dim, c->flag, true, out, &ix); break;
  case OP_KTH: st = lc_kthvalue(in[0], c->k, c->dim, c->flag, out, &ix); break;
  case OP_MEDIAN:
    st = c->dim < -5 ? lc_median(in[0], out) : lc_median_dim(in[0], c->dim, c->flag, out, &ix);
    break;
  default: st = lc_mode(in[0], c->dim, c->flag, out, &ix); break;
  }
  lc_release(ix);
  return st;
}

TEST(sort_family_gradcheck) {
  int64_t s[] = {4, 5, 3};
  lc_tensor *x = NULL, *xt = NULL, *m = NULL;
  CHECK_OK(lc_randn(3, s, LC_FLOAT64, &x));
  if (!x) return;
  lc_set_requires_grad(x, true);
  CHECK_OK(lc_transpose(x, 0, 2, &xt));
  char msg[256];
  gctx cases[] = {{OP_SORT, 1, 0, false}, {OP_SORT, 0, 0, true},   {OP_SORT, -1, 0, false},
                  {OP_TOPK, 1, 2, true},  {OP_TOPK, 2, 3, false},  {OP_KTH, 0, 3, false},
                  {OP_KTH, 1, 2, true},   {OP_MEDIAN, 1, 0, true}, {OP_MEDIAN, 2, 0, false},
                  {OP_MEDIAN, -9, 0, 0},  {OP_MODE, 0, 0, false}};
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    lc_tensor *ins[] = {x};
    int ok = gradcheck(f_sel, &cases[k], 1, ins, 1e-6, 1e-7, 1e-6, msg, sizeof msg);
    if (!ok) printf("  case %zu: %s\n", k, msg);
    CHECK(ok);
  }
  /* median's gradient is split evenly over the elements equal to it */
  double d[] = {2, 1, 2, 5, 2, 0};
  int64_t s6[] = {6};
  lc_tensor *y = NULL, *g = NULL;
  CHECK_OK(lc_from_data(1, s6, LC_FLOAT64, d, &y));
  if (y) {
    lc_set_requires_grad(y, true);
    CHECK_OK(lc_median(y, &m));
    if (m) CHECK_OK(lc_backward(m, NULL, false));
    g = lc_grad(y);
    if (g) {
      const double *gv = lc_data(g);
      double want[] = {1.0 / 3, 0, 1.0 / 3, 0, 1.0 / 3, 0};
      for (int i = 0; i < 6; i++)
        CHECK_NEAR(gv[i], want[i], 1e-15);
    }
    CHECK(m && strcmp(lc_grad_fn_name(m), "MedianBackward") == 0);
  }
  lc_release(m);
  lc_release(y);
  lc_release(xt);
  lc_release(x);
}

/* Every allocation of every op, forward and backward, failed in turn: a status with a message,
 * nothing leaked (LeakSanitizer under make check-asan), and the same call works right after. */
static lc_status sel_step(lc_tensor *x) {
  lc_tensor *xt = NULL, *v[6] = {NULL}, *ix[6] = {NULL}, *total = NULL;
  lc_status st = lc_transpose(x, 0, 1, &xt);
  if (!st) st = lc_sort(xt, 1, true, false, &v[0], &ix[0]);
  if (!st) st = lc_topk(xt, 2, 0, true, true, &v[1], &ix[1]);
  if (!st) st = lc_kthvalue(xt, 2, 1, false, &v[2], &ix[2]);
  if (!st) st = lc_median_dim(xt, 0, true, &v[3], &ix[3]);
  if (!st) st = lc_mode(xt, 1, false, &v[4], &ix[4]);
  if (!st) st = lc_median(xt, &v[5]);
  if (!st) st = lc_argsort(xt, 0, false, false, &ix[5]);
  for (int k = 0; k < 6 && !st; k++) {
    lc_reduce_opts o = {0};
    lc_tensor *s = NULL, *n = NULL;
    st = lc_reduce(LC_SUM, v[k], &o, &s);
    if (!st && total) {
      st = lc_binary(LC_ADD, total, s, &n);
      lc_release(s);
      s = n;
    }
    lc_release(total);
    total = s;
  }
  if (!st) st = lc_backward(total, NULL, false);
  lc_release(total);
  lc_release(xt);
  for (int k = 0; k < 6; k++) {
    lc_release(v[k]);
    lc_release(ix[k]);
  }
  return st;
}

TEST(sort_family_alloc_failure) {
  int64_t s[] = {6, 5};
  lc_tensor *x = NULL;
  CHECK_OK(lc_randn(2, s, LC_FLOAT64, &x));
  if (!x) return;
  lc_set_requires_grad(x, true);
  CHECK_OK(sel_step(x));
  lc_debug_track_allocations(true);
  int64_t before = lc_debug_allocations();
  CHECK_OK(sel_step(x));
  int64_t k = lc_debug_allocations() - before, failed = 0;
  CHECK(k > 20);
  for (int64_t n = 1; n <= k; n++) {
    lc_debug_fail_allocation(n);
    lc_status st = sel_step(x);
    lc_debug_fail_allocation(0);
    if (st != LC_OK) {
      failed++;
      CHECK(lc_last_error()[0] != 0);
    }
    lc_status again = sel_step(x);
    if (again != LC_OK) {
      CHECK_OK(again);
      break;
    }
  }
  lc_debug_track_allocations(false);
  CHECK(failed > k / 2);
  lc_release(x);
}
