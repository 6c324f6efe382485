/* test_elementwise.c - elementwise ops: values vs libm, dtype rules, broadcasting, strided
 * inputs, scalar and in-place forms, where/clamp, the parallel path, sum_to, copies, and every
 * backward formula against central differences (tests/gradcheck.c). */
#include "../src/core/core.h"
#include "../src/kernels/op.h"
#include "gradcheck.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ helpers */

/* A contiguous tensor of dtype dt holding vals (converted by the core's store). */
static lc_tensor *mk(int ndim, const int64_t *shape, lc_dtype dt, const double *vals) {
  lc_tensor *t = NULL;
  if (lc_tensor_new(ndim, shape, dt, &t)) return NULL;
  for (int64_t i = 0; i < t->numel; i++)
    lc_store_f64(lc_data(t), dt, i, vals[i]);
  return t;
}

static lc_tensor *mk1(int64_t n, lc_dtype dt, const double *vals) { return mk(1, &n, dt, vals); }

/* Element j (C order) of any tensor, strided or not. */
static double at(const lc_tensor *t, int64_t j) {
  int64_t off = 0;
  for (int d = t->ndim - 1; d >= 0; d--) {
    off += (j % t->shape[d]) * t->strides[d];
    j /= t->shape[d];
  }
  return lc_load_f64(lc_data(t), t->dtype, off);
}

static bool same_value(double a, double b, double tol) {
  if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
  if (isinf(a) || isinf(b)) return a == b;
  return fabs(a - b) <= tol * (1 + fabs(b));
}

static double sigmoid_ref(double x) { return 1 / (1 + exp(-x)); }
static double sign_ref(double x) { return (double)((x > 0) - (x < 0)); }
static double neg_ref(double x) { return -x; }
static double rsqrt_ref(double x) { return 1 / sqrt(x); }
static double relu_ref(double x) { return x < 0 ? 0 : x; }
static double not_ref(double x) { return x == 0; }

/* ------------------------------------------------------------------ unary values */

TEST(elementwise_unary_values_f64) {
  double (*ref[LC_UNARY_COUNT])(double) = {[LC_NEG] = neg_ref,
                                           [LC_ABS] = fabs,
                                           [LC_SIGN] = sign_ref,
                                           [LC_EXP] = exp,
                                           [LC_LOG] = log,
                                           [LC_LOG1P] = log1p,
                                           [LC_SQRT] = sqrt,
                                           [LC_RSQRT] = rsqrt_ref,
                                           [LC_SIN] = sin,
                                           [LC_COS] = cos,
                                           [LC_TANH] = tanh,
                                           [LC_SIGMOID] = sigmoid_ref,
                                           [LC_RELU] = relu_ref,
                                           [LC_FLOOR] = floor,
                                           [LC_CEIL] = ceil,
                                           [LC_ROUND] = nearbyint,
                                           [LC_LOGICAL_NOT] = not_ref,
                                           [LC_ERF] = erf};
  /* mixed signs, halves (round half to even), zero; log/sqrt give NaN below 0 like libm */
  const double v[] = {-2.5, -1.5, -0.7, 0.0, 0.3, 0.5, 1.5, 2.5, 3.7, 10.0};
  lc_tensor *x = mk1(10, LC_FLOAT64, v);
  for (int op = 0; op < LC_UNARY_COUNT; op++) {
    lc_tensor *y = NULL;
    CHECK_OK(lc_unary((lc_unary_op)op, x, &y));
    if (!y) continue;
    CHECK(lc_dtype_of(y) == (op == LC_LOGICAL_NOT ? LC_BOOL : LC_FLOAT64));
    for (int i = 0; i < 10; i++) {
      double want = ref[op](v[i]);
      if (!same_value(at(y, i), want, 1e-15)) {
        printf("  unary op %d at %g: got %.17g want %.17g\n", op, v[i], at(y, i), want);
        CHECK(0);
      }
    }
    lc_release(y);
  }
  lc_release(x);
}

TEST(elementwise_unary_float32_and_stability) {
  const double v[] = {-800, -30, -1, 0, 1, 30, 800};
  lc_tensor *x = mk1(7, LC_FLOAT32, v), *y = NULL;
  CHECK_OK(lc_unary(LC_SIGMOID, x, &y));
  for (int i = 0; i < 7; i++) {
    CHECK(!isnan(at(y, i)));
    CHECK_NEAR(at(y, i), (float)sigmoid_ref(v[i]), 1e-7);
  }
  CHECK(lc_dtype_of(y) == LC_FLOAT32);
  lc_release(y);
  CHECK_OK(lc_unary(LC_TANH, x, &y));
  for (int i = 0; i < 7; i++)
    CHECK_NEAR(at(y, i), tanh(v[i]), 1e-6);
  lc_release(y);
  lc_release(x);
}

TEST(elementwise_unary_dtypes) {
  const double v[] = {-3, 0, 2, 5};
  lc_tensor *xi = mk1(4, LC_INT32, v), *xl = mk1(4, LC_INT64, v), *xb = mk1(4, LC_BOOL, v);
  lc_tensor *y = NULL;
  /* float math of integers gives float32 */
  CHECK_OK(lc_unary(LC_EXP, xi, &y));
  CHECK(lc_dtype_of(y) == LC_FLOAT32);
  CHECK_NEAR(at(y, 2), expf(2), 1e-5);
  lc_release(y);
  CHECK_OK(lc_unary(LC_SQRT, xb, &y));
  CHECK(lc_dtype_of(y) == LC_FLOAT32);
  CHECK_NEAR(at(y, 1), 0, 0);
  CHECK_NEAR(at(y, 2), 1, 0);
  lc_release(y);
  /* neg / abs / sign / relu / floor keep integer dtypes */
  lc_unary_op keep[] = {LC_NEG, LC_ABS, LC_SIGN, LC_RELU, LC_FLOOR, LC_CEIL, LC_ROUND};
  double (*kref[])(double) = {neg_ref, fabs, sign_ref, relu_ref, floor, ceil, nearbyint};
  for (int k = 0; k < 7; k++) {
    CHECK_OK(lc_unary(keep[k], xl, &y));
    CHECK(lc_dtype_of(y) == LC_INT64);
    for (int i = 0; i < 4; i++)
      CHECK_NEAR(at(y, i), kref[k](v[i]), 0);
    lc_release(y);
  }
  /* abs / floor of bool are identities; neg of bool is an error */
  CHECK_OK(lc_unary(LC_ABS, xb, &y));
  CHECK(lc_dtype_of(y) == LC_BOOL);
  for (int i = 0; i < 4; i++)
    CHECK_NEAR(at(y, i), v[i] != 0, 0);
  lc_release(y);
  y = NULL;
  CHECK_STATUS(lc_unary(LC_NEG, xb, &y), LC_EDTYPE);
  CHECK(y == NULL);
  CHECK_OK(lc_unary(LC_LOGICAL_NOT, xi, &y));
  CHECK(lc_dtype_of(y) == LC_BOOL);
  for (int i = 0; i < 4; i++)
    CHECK_NEAR(at(y, i), v[i] == 0, 0);
  lc_release(y);
  /* integer neg wraps instead of overflowing */
  const double big[] = {-2147483648.0};
  lc_tensor *m = mk1(1, LC_INT32, big);
  CHECK_OK(lc_unary(LC_NEG, m, &y));
  CHECK_NEAR(at(y, 0), -2147483648.0, 0);
  lc_release(y);
  lc_release(m);
  lc_release(xi);
  lc_release(xl);
  lc_release(xb);
}

/* ------------------------------------------------------------------ binary values */

static double bin_ref(lc_binary_op op, double a, double b) {
  switch (op) {
  case LC_ADD: return a + b;
  case LC_SUB: return a - b;
  case LC_MUL: return a * b;
  case LC_DIV: return a / b;
  case LC_POW: return pow(a, b);
  case LC_MAXIMUM: return fmax(a, b);
  case LC_MINIMUM: return fmin(a, b);
  case LC_EQ: return a == b;
  case LC_NE: return a != b;
  case LC_LT: return a < b;
  case LC_LE: return a <= b;
  case LC_GT: return a > b;
  case LC_GE: return a >= b;
  case LC_LOGICAL_AND: return (a != 0) && (b != 0);
  case LC_LOGICAL_OR: return (a != 0) || (b != 0);
  case LC_LOGICAL_XOR: return (a != 0) != (b != 0);
  default: return NAN;
  }
}

TEST(elementwise_binary_values_f64) {
  const double a[] = {1.5, -2.0, 0.0, 3.0, 2.0, 0.25, 7.0, -1.0};
  const double b[] = {2.0, 3.0, 0.0, -0.5, 2.0, 4.0, 0.0, 3.0};
  lc_tensor *ta = mk1(8, LC_FLOAT64, a), *tb = mk1(8, LC_FLOAT64, b);
  for (int op = 0; op < LC_BINARY_COUNT; op++) {
    lc_tensor *y = NULL;
    CHECK_OK(lc_binary((lc_binary_op)op, ta, tb, &y));
    if (!y) continue;
    CHECK(lc_dtype_of(y) == (op >= LC_EQ ? LC_BOOL : LC_FLOAT64));
    for (int i = 0; i < 8; i++) {
      double want = bin_ref((lc_binary_op)op, a[i], b[i]);
      if (!same_value(at(y, i), want, 1e-15)) {
        printf("  binary op %d (%g, %g): got %.17g want %.17g\n", op, a[i], b[i], at(y, i), want);
        CHECK(0);
      }
    }
    lc_release(y);
  }
  /* NaN propagates through maximum/minimum (unlike fmax) */
  const double n[] = {NAN, 1.0}, m[] = {1.0, NAN};
  lc_tensor *tn = mk1(2, LC_FLOAT64, n), *tm = mk1(2, LC_FLOAT64, m), *y = NULL;
  CHECK_OK(lc_binary(LC_MAXIMUM, tn, tm, &y));
  CHECK(isnan(at(y, 0)) && isnan(at(y, 1)));
  lc_release(y);
  CHECK_OK(lc_binary(LC_MINIMUM, tn, tm, &y));
  CHECK(isnan(at(y, 0)) && isnan(at(y, 1)));
  lc_release(y);
  lc_release(tn);
  lc_release(tm);
  lc_release(ta);
  lc_release(tb);
}

TEST(elementwise_binary_integer_values) {
  const double a[] = {7, -7, 3, 0, 2, -2, 1, -1};
  const double b[] = {2, 2, -3, 5, 10, 3, -4, -3};
  for (int d = 0; d < 2; d++) {
    lc_dtype dt = d ? LC_INT64 : LC_INT32;
    lc_tensor *ta = mk1(8, dt, a), *tb = mk1(8, dt, b);
    lc_binary_op ops[] = {LC_ADD, LC_SUB, LC_MUL, LC_MAXIMUM, LC_MINIMUM, LC_LT, LC_EQ};
    for (int k = 0; k < 7; k++) {
      lc_tensor *y = NULL;
      CHECK_OK(lc_binary(ops[k], ta, tb, &y));
      CHECK(lc_dtype_of(y) == (ops[k] >= LC_EQ ? LC_BOOL : dt));
      for (int i = 0; i < 8; i++)
        CHECK_NEAR(at(y, i), bin_ref(ops[k], a[i], b[i]), 0);
      lc_release(y);
    }
    /* true division: int / int -> float32 */
    lc_tensor *y = NULL;
    CHECK_OK(lc_binary(LC_DIV, ta, tb, &y));
    CHECK(lc_dtype_of(y) == LC_FLOAT32);
    for (int i = 0; i < 8; i++)
      CHECK_NEAR(at(y, i), (float)(a[i] / b[i]), 1e-6);
    lc_release(y);
    /* integer pow; negative exponents follow PyTorch's powi (1, -1 stay, others 0) */
    CHECK_OK(lc_binary(LC_POW, ta, tb, &y));
    CHECK(lc_dtype_of(y) == dt);
    for (int i = 0; i < 8; i++) {
      double want = b[i] >= 0 ? pow(a[i], b[i]) : (fabs(a[i]) == 1 ? pow(a[i], b[i]) : 0);
      CHECK_NEAR(at(y, i), want, 0);
    }
    lc_release(y);
    lc_release(ta);
    lc_release(tb);
  }
}

TEST(elementwise_bool_ops) {
  const double a[] = {0, 0, 1, 1}, b[] = {0, 1, 0, 1};
  lc_tensor *ta = mk1(4, LC_BOOL, a), *tb = mk1(4, LC_BOOL, b), *y = NULL;
  CHECK_OK(lc_binary(LC_ADD, ta, tb, &y));
  CHECK(lc_dtype_of(y) == LC_BOOL);
  for (int i = 0; i < 4; i++)
    CHECK_NEAR(at(y, i), (a[i] + b[i]) != 0, 0);
  lc_release(y);
  CHECK_OK(lc_binary(LC_MUL, ta, tb, &y));
  for (int i = 0; i < 4; i++)
    CHECK_NEAR(at(y, i), a[i] * b[i], 0);
  lc_release(y);
  CHECK_OK(lc_binary(LC_POW, ta, tb, &y));
  for (int i = 0; i < 4; i++)
    CHECK_NEAR(at(y, i), pow(a[i], b[i]), 0);
  lc_release(y);
  CHECK_OK(lc_binary(LC_LOGICAL_XOR, ta, tb, &y));
  for (int i = 0; i < 4; i++)
    CHECK_NEAR(at(y, i), a[i] != b[i], 0);
  lc_release(y);
  y = NULL;
  CHECK_STATUS(lc_binary(LC_SUB, ta, tb, &y), LC_EDTYPE);
  CHECK(y == NULL);
  lc_release(ta);
  lc_release(tb);
}

/* ------------------------------------------------------------------ dtype promotion */

static int rank(lc_dtype dt) {
  static const int r[LC_DTYPE_COUNT] = {
      [LC_BOOL] = 0,     [LC_INT32] = 1,   [LC_INT64] = 2,  [LC_FLOAT16] = 3,
      [LC_BFLOAT16] = 3, [LC_FLOAT32] = 4, [LC_FLOAT64] = 5};
  return r[dt];
}

TEST(elementwise_promotion_table) {
  const double one[] = {1, 1};
  for (int da = 0; da < LC_DTYPE_COUNT; da++) {
    for (int db = 0; db < LC_DTYPE_COUNT; db++) {
      lc_tensor *a = mk1(2, (lc_dtype)da, one), *b = mk1(2, (lc_dtype)db, one);
      lc_dtype p = rank((lc_dtype)da) >= rank((lc_dtype)db) ? (lc_dtype)da : (lc_dtype)db;
      if (rank((lc_dtype)da) == 3 && rank((lc_dtype)db) == 3 && da != db)
        p = LC_FLOAT32; /* float16 with bfloat16 */
      lc_binary_op ops[] = {LC_ADD, LC_MUL, LC_DIV, LC_MAXIMUM, LC_LT, LC_LOGICAL_OR};
      for (int k = 0; k < 6; k++) {
        lc_dtype want = p;
        if (ops[k] == LC_DIV && rank(p) < rank(LC_FLOAT16)) want = LC_FLOAT32;
        if (ops[k] >= LC_EQ) want = LC_BOOL;
        lc_tensor *y = NULL;
        CHECK_OK(lc_binary(ops[k], a, b, &y));
        if (y && lc_dtype_of(y) != want) {
          printf("  op %d %s x %s -> %s, want %s\n", (int)ops[k], lc_dtype_name(da),
                 lc_dtype_name(db), lc_dtype_name(lc_dtype_of(y)), lc_dtype_name(want));
          CHECK(0);
        }
        double r = bin_ref(ops[k], 1, 1);
        if (y) CHECK_NEAR(at(y, 1), want == LC_BOOL ? r != 0 : r, 0); /* True + True = True */
        lc_release(y);
      }
      lc_release(a);
      lc_release(b);
    }
  }
}

/* ------------------------------------------------------------------ broadcasting, strides */

TEST(elementwise_broadcast_3x1_by_4) {
  const double a[] = {1, 2, 3}, b[] = {10, 20, 30, 40};
  int64_t sa[] = {3, 1}, sb[] = {4};
  lc_tensor *ta = mk(2, sa, LC_FLOAT32, a), *tb = mk(1, sb, LC_FLOAT32, b), *y = NULL;
  CHECK_OK(lc_binary(LC_SUB, ta, tb, &y));
  CHECK(lc_ndim(y) == 2 && lc_shape(y)[0] == 3 && lc_shape(y)[1] == 4);
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 4; j++)
      CHECK_NEAR(at(y, i * 4 + j), a[i] - b[j], 0);
  lc_release(y);
  /* reversed operands take the other stride-0 path */
  CHECK_OK(lc_binary(LC_SUB, tb, ta, &y));
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 4; j++)
      CHECK_NEAR(at(y, i * 4 + j), b[j] - a[i], 0);
  lc_release(y);
  /* incompatible shapes */
  int64_t sc[] = {5};
  lc_tensor *tc = mk(1, sc, LC_FLOAT32, (double[]){1, 2, 3, 4, 5});
  y = NULL;
  CHECK_STATUS(lc_binary(LC_ADD, tb, tc, &y), LC_ESHAPE);
  CHECK(y == NULL);
  CHECK(strstr(lc_last_error(), "add") != NULL);
  lc_release(tc);
  lc_release(ta);
  lc_release(tb);
}

TEST(elementwise_noncontiguous_inputs) {
  double v[12];
  for (int i = 0; i < 12; i++)
    v[i] = i * 0.5 - 2;
  int64_t s34[] = {3, 4}, s43[] = {4, 3}, tstr[] = {1, 4};
  lc_tensor *base = mk(2, s34, LC_FLOAT64, v), *tr = NULL, *y = NULL;
  /* the transpose of base as a {4, 3} view with strides {1, 4} */
  CHECK_OK(lc_tensor_view_of(base, 2, s43, tstr, 0, &tr));
  CHECK(!lc_is_contiguous(tr));
  CHECK_OK(lc_unary(LC_EXP, tr, &y));
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 3; j++)
      CHECK_NEAR(at(y, i * 3 + j), exp(v[j * 4 + i]), 1e-14);
  lc_release(y);
  /* transposed view with a contiguous operand of the same shape */
  lc_tensor *c = mk(2, s43, LC_FLOAT64, v);
  CHECK_OK(lc_binary(LC_MUL, tr, c, &y));
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 3; j++)
      CHECK_NEAR(at(y, i * 3 + j), v[j * 4 + i] * v[i * 3 + j], 1e-14);
  lc_release(y);
  /* mixed dtypes with a strided operand: the int view is converted first */
  lc_tensor *bi = mk(2, s34, LC_INT32, (double[]){1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  lc_tensor *tri = NULL;
  CHECK_OK(lc_tensor_view_of(bi, 2, s43, tstr, 0, &tri));
  CHECK_OK(lc_binary(LC_ADD, tri, c, &y));
  CHECK(lc_dtype_of(y) == LC_FLOAT64);
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 3; j++)
      CHECK_NEAR(at(y, i * 3 + j), (j * 4 + i + 1) + v[i * 3 + j], 0);
  lc_release(y);
  /* a view with an offset (column 1 of base: shape {3}, stride 4, offset 1) */
  lc_tensor *col = NULL;
  int64_t s3[] = {3}, st4[] = {4};
  CHECK_OK(lc_tensor_view_of(base, 1, s3, st4, 1, &col));
  CHECK_OK(lc_binary_scalar(LC_MUL, col, 2.0, false, &y));
  for (int i = 0; i < 3; i++)
    CHECK_NEAR(at(y, i), 2 * v[i * 4 + 1], 0);
  lc_release(y);
  lc_release(col);
  lc_release(tri);
  lc_release(bi);
  lc_release(c);
  lc_release(tr);
  lc_release(base);
}

/* ------------------------------------------------------------------ scalars */

TEST(elementwise_scalar_ops) {
  const double v[] = {1, 2, 4, 8};
  lc_tensor *f = mk1(4, LC_FLOAT32, v), *i = mk1(4, LC_INT32, v), *l = mk1(4, LC_INT64, v);
  lc_tensor *b = mk1(4, LC_BOOL, (double[]){0, 1, 1, 0});
  lc_tensor *y = NULL;
  struct {
    lc_tensor *t;
    lc_binary_op op;
    double s;
    bool rev;
    lc_dtype want;
  } cases[] = {
      {f, LC_ADD, 2.5, false, LC_FLOAT32}, /* never widens to float64 */
      {i, LC_ADD, 2, false, LC_INT32},     {l, LC_ADD, 2.5, false, LC_FLOAT32},
      {i, LC_DIV, 2, false, LC_FLOAT32},   {b, LC_ADD, 1, false, LC_INT64},
      {b, LC_MUL, 0.5, false, LC_FLOAT32}, {b, LC_EQ, 1, false, LC_BOOL},
      {i, LC_LT, 2.5, false, LC_BOOL},     {f, LC_SUB, 10, true, LC_FLOAT32},
      {i, LC_DIV, 1, true, LC_FLOAT32},    {l, LC_POW, 2, false, LC_INT64},
      {i, LC_POW, 2, true, LC_INT32},      {f, LC_POW, 0.5, false, LC_FLOAT32},
      {l, LC_MAXIMUM, 3, false, LC_INT64}, {f, LC_MINIMUM, 3, true, LC_FLOAT32},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    CHECK_OK(lc_binary_scalar(cases[k].op, cases[k].t, cases[k].s, cases[k].rev, &y));
    if (!y) continue;
    CHECK(lc_dtype_of(y) == cases[k].want);
    for (int j = 0; j < 4; j++) {
      double x = at(cases[k].t, j);
      double want =
          cases[k].rev ? bin_ref(cases[k].op, cases[k].s, x) : bin_ref(cases[k].op, x, cases[k].s);
      if (cases[k].want == LC_FLOAT32) want = (float)want;
      if (!same_value(at(y, j), want, 1e-7)) {
        printf("  scalar case %zu element %d: got %g want %g\n", k, j, at(y, j), want);
        CHECK(0);
      }
    }
    lc_release(y);
    y = NULL;
  }
  /* integers to negative integer powers */
  CHECK_STATUS(lc_binary_scalar(LC_POW, i, -1, false, &y), LC_EARG);
  CHECK(strstr(lc_last_error(), "negative integer powers") != NULL);
  CHECK(y == NULL);
  /* a float base with an integer tensor exponent is fine */
  CHECK_OK(lc_binary_scalar(LC_POW, i, 0.5, true, &y));
  CHECK(lc_dtype_of(y) == LC_FLOAT32);
  CHECK_NEAR(at(y, 3), pow(0.5, 8), 1e-9);
  lc_release(y);
  lc_release(f);
  lc_release(i);
  lc_release(l);
  lc_release(b);
}

/* ------------------------------------------------------------------ in place */

TEST(elementwise_inplace) {
  const double v[] = {1, -2, 3, -4};
  lc_tensor *f = mk1(4, LC_FLOAT32, v), *i = mk1(4, LC_INT64, v), *y = NULL;
  uint64_t ver = lc_version(f);
  CHECK_OK(lc_binary_(LC_MUL, f, f));
  CHECK(lc_version(f) > ver);
  for (int k = 0; k < 4; k++)
    CHECK_NEAR(at(f, k), v[k] * v[k], 0);
  /* float64 operand computed then cast into float32 */
  lc_tensor *d = mk1(4, LC_FLOAT64, (double[]){0.5, 0.5, 0.5, 0.5});
  CHECK_OK(lc_binary_(LC_ADD, f, d));
  CHECK(lc_dtype_of(f) == LC_FLOAT32);
  CHECK_NEAR(at(f, 1), 4.5, 0);
  /* int += float, int /= int, int exp_: float results cannot go into an int tensor */
  CHECK_STATUS(lc_binary_(LC_ADD, i, d), LC_EDTYPE);
  CHECK_STATUS(lc_binary_(LC_DIV, i, i), LC_EDTYPE);
  CHECK_STATUS(lc_binary_scalar_(LC_ADD, i, 0.5), LC_EDTYPE);
  CHECK_STATUS(lc_unary_(LC_EXP, i), LC_EDTYPE);
  for (int k = 0; k < 4; k++)
    CHECK_NEAR(at(i, k), v[k], 0); /* untouched */
  /* int ops that stay int */
  CHECK_OK(lc_binary_scalar_(LC_MUL, i, 3));
  for (int k = 0; k < 4; k++)
    CHECK_NEAR(at(i, k), 3 * v[k], 0);
  CHECK_OK(lc_unary_(LC_ABS, i));
  for (int k = 0; k < 4; k++)
    CHECK_NEAR(at(i, k), fabs(3 * v[k]), 0);
  /* a comparison in place writes 0/1 into a float tensor */
  lc_tensor *g = mk1(4, LC_FLOAT32, (double[]){1, 5, 3, 0});
  CHECK_OK(lc_binary_scalar_(LC_GT, g, 2));
  for (int k = 0; k < 4; k++)
    CHECK_NEAR(at(g, k), (k == 1 || k == 2) ? 1 : 0, 0);
  /* bool targets take only bool results */
  lc_tensor *b = mk1(4, LC_BOOL, (double[]){1, 0, 1, 0});
  CHECK_STATUS(lc_binary_scalar_(LC_ADD, b, 1), LC_EDTYPE);
  CHECK_OK(lc_binary_(LC_LOGICAL_AND, b, g));
  for (int k = 0; k < 4; k++)
    CHECK_NEAR(at(b, k), k == 2, 0);
  /* the operand must broadcast to the target's shape exactly */
  int64_t s41[] = {4, 1};
  lc_tensor *col = mk(2, s41, LC_FLOAT32, v);
  CHECK_STATUS(lc_binary_(LC_ADD, f, col), LC_ESHAPE);
  CHECK_STATUS(lc_binary_(LC_ADD, col, d), LC_ESHAPE); /* {4,1} op {4} is {4,4} */
  /* unary_ and clamp_ */
  CHECK_OK(lc_unary_(LC_NEG, g));
  CHECK_NEAR(at(g, 1), -1, 0);
  CHECK_OK(lc_clamp_(f, true, 2, true, 5));
  for (int k = 0; k < 4; k++)
    CHECK(at(f, k) >= 2 && at(f, k) <= 5);
  CHECK_STATUS(lc_clamp_(i, true, 0.5, false, 0), LC_EDTYPE);
  CHECK_OK(lc_clamp_(i, false, 0, true, 5));
  for (int k = 0; k < 4; k++)
    CHECK_NEAR(at(i, k), fmin(fabs(3 * v[k]), 5), 0);
  /* argument checks */
  CHECK_STATUS(lc_unary_(LC_UNARY_COUNT, f), LC_EARG);
  CHECK_STATUS(lc_binary_(LC_BINARY_COUNT, f, f), LC_EARG);
  CHECK_STATUS(lc_binary_(LC_ADD, NULL, f), LC_EARG);
  CHECK_STATUS(lc_binary_(LC_ADD, f, NULL), LC_EARG);
  CHECK_STATUS(lc_binary_scalar_(LC_ADD, NULL, 1), LC_EARG);
  CHECK_STATUS(lc_unary_(LC_NEG, NULL), LC_EARG);
  lc_release(y);
  lc_release(col);
  lc_release(b);
  lc_release(g);
  lc_release(d);
  lc_release(f);
  lc_release(i);
}

/* ------------------------------------------------------------------ where, clamp */

TEST(elementwise_where_clamp) {
  const double c[] = {1, 0, 0, 1}, a[] = {1, 2, 3, 4}, bv[] = {-1, -2, -3, -4};
  int64_t s4[] = {4}, s21[] = {2, 1}, s1[] = {1};
  lc_tensor *cond = mk(1, s4, LC_BOOL, c), *ta = mk(1, s4, LC_FLOAT32, a);
  lc_tensor *tb = mk(2, s21, LC_INT64, bv), *y = NULL;
  CHECK_OK(lc_where(cond, ta, tb, &y)); /* {4}, {4}, {2,1} -> {2,4}, float32 */
  CHECK(lc_ndim(y) == 2 && lc_shape(y)[0] == 2 && lc_shape(y)[1] == 4);
  CHECK(lc_dtype_of(y) == LC_FLOAT32);
  for (int r = 0; r < 2; r++)
    for (int j = 0; j < 4; j++)
      CHECK_NEAR(at(y, r * 4 + j), c[j] ? a[j] : bv[r], 0);
  lc_release(y);
  y = NULL;
  CHECK_STATUS(lc_where(ta, ta, tb, &y), LC_EDTYPE); /* cond must be bool */
  CHECK_STATUS(lc_where(NULL, ta, tb, &y), LC_EARG);
  CHECK(y == NULL);
  /* scalar-like operand */
  lc_tensor *z = mk(1, s1, LC_FLOAT32, (double[]){9});
  CHECK_OK(lc_where(cond, z, ta, &y));
  for (int j = 0; j < 4; j++)
    CHECK_NEAR(at(y, j), c[j] ? 9 : a[j], 0);
  lc_release(y);

  const double x[] = {-3, -0.5, 0.5, 2, NAN};
  lc_tensor *tx = mk1(5, LC_FLOAT64, x);
  CHECK_OK(lc_clamp(tx, true, -1, true, 1, &y));
  for (int j = 0; j < 5; j++)
    CHECK(same_value(at(y, j), fmin(fmax(x[j], -1), 1), 0) || isnan(x[j]));
  CHECK(isnan(at(y, 4))); /* NaN propagates */
  lc_release(y);
  CHECK_OK(lc_clamp(tx, true, 0, false, 0, &y));
  for (int j = 0; j < 4; j++)
    CHECK_NEAR(at(y, j), fmax(x[j], 0), 0);
  lc_release(y);
  CHECK_OK(lc_clamp(tx, true, 2, true, 1, &y)); /* lo > hi: everything is hi, like PyTorch */
  for (int j = 0; j < 4; j++)
    CHECK_NEAR(at(y, j), 1, 0);
  lc_release(y);
  y = NULL;
  CHECK_STATUS(lc_clamp(tx, false, 0, false, 0, &y), LC_EARG);
  CHECK(y == NULL);
  /* integer clamp: integral bounds keep int, a fractional bound gives float32 */
  lc_tensor *ti = mk1(4, LC_INT32, (double[]){-5, 0, 5, 10});
  CHECK_OK(lc_clamp(ti, true, -1, true, 6, &y));
  CHECK(lc_dtype_of(y) == LC_INT32);
  CHECK_NEAR(at(y, 0), -1, 0);
  CHECK_NEAR(at(y, 3), 6, 0);
  lc_release(y);
  CHECK_OK(lc_clamp(ti, false, 0, true, 2.5, &y));
  CHECK(lc_dtype_of(y) == LC_FLOAT32);
  CHECK_NEAR(at(y, 3), 2.5, 0);
  lc_release(y);
  lc_release(ti);
  lc_release(tx);
  lc_release(z);
  lc_release(cond);
  lc_release(ta);
  lc_release(tb);
}

/* ------------------------------------------------------------------ big tensors */

TEST(elementwise_parallel_matches_serial) {
  const int64_t n = 3 * LC_PARALLEL_GRAIN + 17;
  int64_t shape[] = {n / 7, 7};
  lc_manual_seed(7);
  lc_tensor *a = NULL, *b = NULL, *row = NULL;
  CHECK_OK(lc_randn(2, shape, LC_FLOAT32, &a));
  CHECK_OK(lc_randn(2, shape, LC_FLOAT32, &b));
  int64_t s7[] = {7};
  CHECK_OK(lc_randn(1, s7, LC_FLOAT32, &row));
  int prev = lc_get_num_threads();
  lc_tensor *r[2][4] = {{0}};
  for (int pass = 0; pass < 2; pass++) {
    CHECK_OK(lc_set_num_threads(pass ? 4 : 1));
    CHECK_OK(lc_binary(LC_ADD, a, b, &r[pass][0]));
    CHECK_OK(lc_unary(LC_SIGMOID, a, &r[pass][1]));
    CHECK_OK(lc_binary(LC_MUL, a, row, &r[pass][2])); /* broadcast: lc_iter rows */
    lc_tensor *at_ = NULL;
    CHECK_OK(lc_transpose(a, 0, 1, &at_));
    CHECK_OK(lc_binary_scalar(LC_POW, at_, 2, false, &r[pass][3])); /* strided */
    lc_release(at_);
  }
  CHECK_OK(lc_set_num_threads(prev));
  for (int k = 0; k < 4; k++) {
    bool eq = false;
    CHECK_OK(lc_equal(r[0][k], r[1][k], &eq));
    CHECK(eq);
  }
  /* and the values are right */
  const float *pa = lc_data(a), *pb = lc_data(b), *pr = lc_data(row);
  const float *add = lc_data(r[0][0]), *mul = lc_data(r[0][2]);
  int bad = 0;
  for (int64_t j = 0; j < n / 7 * 7; j++) {
    bad += add[j] != pa[j] + pb[j];
    bad += mul[j] != pa[j] * pr[j % 7];
  }
  CHECK(bad == 0);
  for (int p = 0; p < 2; p++)
    for (int k = 0; k < 4; k++)
      lc_release(r[p][k]);
  lc_release(a);
  lc_release(b);
  lc_release(row);
}

/* ------------------------------------------------------------------ sum_to */

TEST(elementwise_sum_to) {
  int64_t s234[] = {2, 3, 4}, s34[] = {3, 4}, s14[] = {1, 4}, s131[] = {1, 3, 1}, s5[] = {5};
  double v[24];
  for (int i = 0; i < 24; i++)
    v[i] = i + 1;
  lc_tensor *g = mk(3, s234, LC_FLOAT32, v), *r = NULL;
  /* same shape: grad itself */
  CHECK_OK(lc_k_sum_to(g, 3, s234, &r));
  CHECK(r == g);
  lc_release(r);
  CHECK_OK(lc_k_sum_to(g, 2, s34, &r));
  CHECK(lc_dtype_of(r) == LC_FLOAT32);
  for (int j = 0; j < 12; j++)
    CHECK_NEAR(at(r, j), v[j] + v[12 + j], 0);
  lc_release(r);
  CHECK_OK(lc_k_sum_to(g, 2, s14, &r));
  for (int k = 0; k < 4; k++) {
    double s = 0;
    for (int i = 0; i < 6; i++)
      s += v[i * 4 + k];
    CHECK_NEAR(at(r, k), s, 0);
  }
  lc_release(r);
  CHECK_OK(lc_k_sum_to(g, 3, s131, &r)); /* inner dim summed */
  for (int j = 0; j < 3; j++) {
    double s = 0;
    for (int i = 0; i < 2; i++)
      for (int k = 0; k < 4; k++)
        s += v[i * 12 + j * 4 + k];
    CHECK_NEAR(at(r, j), s, 0);
  }
  lc_release(r);
  CHECK_OK(lc_k_sum_to(g, 0, NULL, &r));
  CHECK(lc_ndim(r) == 0);
  CHECK_NEAR(at(r, 0), 24 * 25 / 2, 0);
  lc_release(r);
  r = NULL;
  CHECK_STATUS(lc_k_sum_to(g, 1, s5, &r), LC_ESHAPE);
  CHECK(r == NULL);
  /* strided grad (a transposed view) */
  lc_tensor *tv = NULL;
  int64_t s43[] = {4, 3}, st[] = {1, 4}, s3[] = {3};
  lc_tensor *g2 = mk(2, s34, LC_FLOAT64, v);
  CHECK_OK(lc_tensor_view_of(g2, 2, s43, st, 0, &tv));
  CHECK_OK(lc_k_sum_to(tv, 1, s3, &r));
  for (int j = 0; j < 3; j++) {
    double s = 0;
    for (int k = 0; k < 4; k++)
      s += v[j * 4 + k];
    CHECK_NEAR(at(r, j), s, 0);
  }
  lc_release(r);
  lc_release(tv);
  lc_release(g2);
  lc_release(g);
}

/* ------------------------------------------------------------------ copies, conversion */

TEST(elementwise_clone_cast_contiguous) {
  const double v[] = {1.7, -2.2, 0, 3};
  int64_t s22[] = {2, 2}, tst[] = {1, 2};
  lc_tensor *x = mk(2, s22, LC_FLOAT32, v), *y = NULL, *tv = NULL;
  CHECK_OK(lc_clone(x, &y));
  CHECK(y != x && !lc_same_storage(x, y));
  for (int j = 0; j < 4; j++)
    CHECK_NEAR(at(y, j), at(x, j), 0);
  lc_release(y);
  CHECK_OK(lc_to_dtype(x, LC_FLOAT32, &y));
  CHECK(y == x);
  lc_release(y);
  CHECK_OK(lc_to_dtype(x, LC_INT32, &y));
  CHECK(lc_dtype_of(y) == LC_INT32);
  for (int j = 0; j < 4; j++)
    CHECK_NEAR(at(y, j), trunc((float)v[j]), 0);
  lc_release(y);
  CHECK_OK(lc_to_dtype(x, LC_BOOL, &y));
  for (int j = 0; j < 4; j++)
    CHECK_NEAR(at(y, j), v[j] != 0, 0);
  lc_release(y);
  y = NULL;
  CHECK_STATUS(lc_to_dtype(x, LC_DTYPE_COUNT, &y), LC_EDTYPE);
  CHECK(y == NULL);
  CHECK_OK(lc_contiguous(x, &y));
  CHECK(y == x);
  lc_release(y);
  CHECK_OK(lc_tensor_view_of(x, 2, s22, tst, 0, &tv));
  CHECK_OK(lc_contiguous(tv, &y));
  CHECK(y != tv && lc_is_contiguous(y));
  for (int j = 0; j < 4; j++)
    CHECK_NEAR(at(y, j), at(tv, j), 0);
  lc_release(y);
  CHECK_STATUS(lc_clone(NULL, &y), LC_EARG);
  CHECK_STATUS(lc_contiguous(x, NULL), LC_EARG);
  lc_release(tv);
  lc_release(x);
}

TEST(elementwise_copy_fill_zero) {
  int64_t s23[] = {2, 3}, s3[] = {3};
  lc_tensor *dst = mk(2, s23, LC_INT64, (double[]){0, 0, 0, 0, 0, 0});
  lc_tensor *src = mk(1, s3, LC_FLOAT64, (double[]){1.9, -2.5, 3});
  uint64_t ver = lc_version(dst);
  CHECK_OK(lc_copy_(dst, src)); /* broadcast + cast */
  CHECK(lc_version(dst) > ver);
  for (int j = 0; j < 6; j++)
    CHECK_NEAR(at(dst, j), trunc(at(src, j % 3)), 0);
  CHECK_STATUS(lc_copy_(src, dst), LC_ESHAPE); /* {2,3} does not fit {3} */
  CHECK_STATUS(lc_copy_(NULL, src), LC_EARG);
  ver = lc_version(dst);
  CHECK_OK(lc_fill_(dst, 7));
  CHECK(lc_version(dst) > ver);
  for (int j = 0; j < 6; j++)
    CHECK_NEAR(at(dst, j), 7, 0);
  CHECK_OK(lc_zero_(dst));
  for (int j = 0; j < 6; j++)
    CHECK_NEAR(at(dst, j), 0, 0);
  CHECK_STATUS(lc_fill_(NULL, 1), LC_EARG);
  /* raw writes into a leaf that requires grad: error in grad mode, fine under no_grad */
  lc_tensor *w = mk(1, s3, LC_FLOAT64, (double[]){1, 2, 3});
  CHECK_OK(lc_set_requires_grad(w, true));
  CHECK_STATUS(lc_fill_(w, 1), LC_EGRAD);
  CHECK_STATUS(lc_zero_(w), LC_EGRAD);
  CHECK_STATUS(lc_copy_(w, src), LC_EGRAD);
  bool prev = lc_set_grad_enabled(false);
  CHECK_OK(lc_zero_(w));
  CHECK_OK(lc_copy_(w, src));
  lc_set_grad_enabled(prev);
  CHECK_NEAR(at(w, 1), -2.5, 0);
  /* copy_ from a src that requires grad: the gradient flows to src (summed over broadcast) */
  lc_tensor *d2 = mk(2, s23, LC_FLOAT64, (double[]){0, 0, 0, 0, 0, 0}), *loss = NULL;
  CHECK_OK(lc_copy_(d2, w));
  CHECK(lc_grad_fn_name(d2) != NULL);
  lc_tensor *sq = NULL;
  CHECK_OK(lc_binary(LC_MUL, d2, d2, &sq));
  lc_reduce_opts o;
  memset(&o, 0, sizeof o);
  CHECK_OK(lc_reduce(LC_SUM, sq, &o, &loss));
  CHECK_OK(lc_backward(loss, NULL, false));
  lc_tensor *gw = lc_grad(w);
  CHECK(gw != NULL);
  if (gw)
    for (int j = 0; j < 3; j++)
      CHECK_NEAR(at(gw, j), 2 * 2 * at(w, j), 1e-12);
  /* fill_ of a non-leaf cuts the gradient to what it held before */
  lc_tensor *h = NULL, *loss2 = NULL;
  CHECK_OK(lc_binary_scalar(LC_MUL, w, 3, false, &h));
  CHECK_OK(lc_fill_(h, 2));
  CHECK_NEAR(at(h, 0), 2, 0);
  CHECK_OK(lc_reduce(LC_SUM, h, &o, &loss2));
  CHECK_OK(lc_set_grad(w, NULL));
  lc_status st = lc_backward(loss2, NULL, false);
  CHECK_OK(st);
  CHECK(lc_grad(w) == NULL || at(lc_grad(w), 0) == 0);
  if (st == LC_OK && lc_grad(w)) {
    for (int j = 0; j < 3; j++)
      CHECK_NEAR(at(lc_grad(w), j), 0, 0);
  }
  lc_release(loss2);
  lc_release(h);
  lc_release(sq);
  lc_release(loss);
  lc_release(d2);
  lc_release(w);
  lc_release(src);
  lc_release(dst);
}

/* ------------------------------------------------------------------ argument checks */

TEST(elementwise_argument_errors) {
  const double v[] = {1, 2};
  lc_tensor *x = mk1(2, LC_FLOAT32, v), *y = NULL;
  CHECK_STATUS(lc_unary(LC_UNARY_COUNT, x, &y), LC_EARG);
  CHECK_STATUS(lc_unary((lc_unary_op)-1, x, &y), LC_EARG);
  CHECK_STATUS(lc_unary(LC_EXP, NULL, &y), LC_EARG);
  CHECK_STATUS(lc_unary(LC_EXP, x, NULL), LC_EARG);
  CHECK_STATUS(lc_binary(LC_BINARY_COUNT, x, x, &y), LC_EARG);
  CHECK_STATUS(lc_binary(LC_ADD, x, NULL, &y), LC_EARG);
  CHECK_STATUS(lc_binary(LC_ADD, NULL, x, &y), LC_EARG);
  CHECK_STATUS(lc_binary(LC_ADD, x, x, NULL), LC_EARG);
  CHECK_STATUS(lc_binary_scalar(LC_BINARY_COUNT, x, 1, false, &y), LC_EARG);
  CHECK_STATUS(lc_binary_scalar(LC_ADD, NULL, 1, false, &y), LC_EARG);
  CHECK_STATUS(lc_clamp(NULL, true, 0, true, 1, &y), LC_EARG);
  CHECK_STATUS(lc_where(x, x, x, NULL), LC_EARG);
  CHECK_STATUS(lc_to_dtype(NULL, LC_FLOAT32, &y), LC_EARG);
  CHECK(y == NULL);
  /* empty tensors work and stay empty */
  int64_t s0[] = {0, 3};
  lc_tensor *e = NULL;
  CHECK_OK(lc_tensor_new(2, s0, LC_FLOAT32, &e));
  CHECK_OK(lc_binary(LC_ADD, e, e, &y));
  CHECK(lc_numel(y) == 0 && lc_ndim(y) == 2);
  lc_release(y);
  lc_release(e);
  lc_release(x);
}

/* ------------------------------------------------------------------ backward */

typedef struct {
  int kind; /* 0 unary, 1 binary, 2 scalar, 3 reverse scalar, 4 clamp, 5 where, 6 cast */
  int op;
  double s, lo, hi;
  lc_tensor *cond;
} fctx;

static lc_status fn(void *vc, lc_tensor *const *in, lc_tensor **out) {
  const fctx *c = vc;
  switch (c->kind) {
  case 0: return lc_unary((lc_unary_op)c->op, in[0], out);
  case 1: return lc_binary((lc_binary_op)c->op, in[0], in[1], out);
  case 2: return lc_binary_scalar((lc_binary_op)c->op, in[0], c->s, false, out);
  case 3: return lc_binary_scalar((lc_binary_op)c->op, in[0], c->s, true, out);
  case 4: return lc_clamp(in[0], !isnan(c->lo), c->lo, !isnan(c->hi), c->hi, out);
  case 5: return lc_where(c->cond, in[0], in[1], out);
  default: {
    /* float64 -> float32 -> float64: ToCopyBackward twice */
    lc_tensor *f = NULL;
    lc_status st = lc_to_dtype(in[0], LC_FLOAT32, &f);
    if (st) return st;
    st = lc_binary(LC_MUL, f, f, out);
    lc_release(f);
    return st;
  }
  }
}

static lc_tensor *leaf(int ndim, const int64_t *shape, const double *v) {
  lc_tensor *t = mk(ndim, shape, LC_FLOAT64, v);
  if (t) lc_set_requires_grad(t, true);
  return t;
}

#define GRADCHECK(ctx, n, ins, tol)                                                                \
  do {                                                                                             \
    char msg_[512];                                                                                \
    int ok_ = gradcheck(fn, (ctx), (n), (ins), 1e-6, (tol), (tol), msg_, sizeof msg_);             \
    if (!ok_) printf("  kind %d op %d: %s\n", (ctx)->kind, (ctx)->op, msg_);                       \
    CHECK(ok_);                                                                                    \
  } while (0)

TEST(elementwise_backward_unary) {
  int64_t s23[] = {2, 3};
  /* positive values away from kinks (abs, relu, floor jumps) */
  const double pos[] = {0.3, 0.7, 1.3, 2.2, 0.45, 1.9};
  const double mix[] = {-1.3, 0.7, -0.35, 2.2, -0.45, 1.9};
  for (int op = 0; op < LC_UNARY_COUNT; op++) {
    if (op == LC_LOGICAL_NOT) continue;
    bool domain_pos = op == LC_LOG || op == LC_SQRT || op == LC_RSQRT || op == LC_LOG1P;
    lc_tensor *x = leaf(2, s23, domain_pos ? pos : mix);
    fctx c = {.kind = 0, .op = op};
    GRADCHECK(&c, 1, &x, 1e-6);
    lc_release(x);
  }
  /* grad_fn names, and comparisons / logical ops have none */
  lc_tensor *x = leaf(2, s23, mix), *y = NULL;
  const char *names[] = {
      [LC_NEG] = "NegBackward",   [LC_EXP] = "ExpBackward",   [LC_ABS] = "AbsBackward",
      [LC_TANH] = "TanhBackward", [LC_RELU] = "ReluBackward", [LC_SIGMOID] = "SigmoidBackward",
      [LC_SIGN] = "SignBackward"};
  lc_unary_op more[] = {LC_NEG, LC_EXP, LC_ABS, LC_SIGN, LC_TANH, LC_RELU, LC_SIGMOID};
  for (int k = 0; k < 7; k++) {
    CHECK_OK(lc_unary(more[k], x, &y));
    CHECK(lc_grad_fn_name(y) && strcmp(lc_grad_fn_name(y), names[more[k]]) == 0);
    CHECK(lc_requires_grad(y));
    lc_release(y);
  }
  CHECK_OK(lc_unary(LC_LOGICAL_NOT, x, &y));
  CHECK(lc_grad_fn_name(y) == NULL && !lc_requires_grad(y));
  lc_release(y);
  CHECK_OK(lc_binary(LC_LT, x, x, &y));
  CHECK(lc_grad_fn_name(y) == NULL && !lc_requires_grad(y));
  lc_release(y);
  lc_release(x);
}

TEST(elementwise_backward_binary_broadcast) {
  int64_t s31[] = {3, 1}, s4[] = {4};
  const double a[] = {0.6, 1.4, 2.1}, b[] = {0.5, -1.2, 1.7, 2.4};
  const double bp[] = {0.5, 1.2, 1.7, 2.4};
  for (int op = 0; op <= LC_MINIMUM; op++) {
    lc_tensor *ins[2] = {leaf(2, s31, a), leaf(1, s4, op == LC_POW ? bp : b)};
    fctx c = {.kind = 1, .op = op};
    GRADCHECK(&c, 2, ins, 1e-6);
    lc_release(ins[0]);
    lc_release(ins[1]);
  }
  /* only one side requiring grad */
  lc_tensor *x = leaf(2, s31, a), *k = mk(1, s4, LC_FLOAT64, b);
  lc_tensor *ins[2] = {x, k};
  for (int op = 0; op <= LC_MINIMUM; op++) {
    if (op == LC_POW) continue;
    fctx c = {.kind = 1, .op = op};
    GRADCHECK(&c, 1, ins, 1e-6);
  }
  lc_release(x);
  lc_release(k);
}

TEST(elementwise_backward_special_cases) {
  int64_t s3[] = {3};
  /* maximum / minimum ties split the gradient in half */
  lc_tensor *a = leaf(1, s3, (double[]){1, 2, 3}), *b = leaf(1, s3, (double[]){1, 5, 0});
  lc_tensor *y = NULL, *g = mk(1, s3, LC_FLOAT64, (double[]){1, 1, 1});
  CHECK_OK(lc_binary(LC_MAXIMUM, a, b, &y));
  CHECK(strcmp(lc_grad_fn_name(y), "MaximumBackward") == 0);
  CHECK_OK(lc_backward(y, g, false));
  CHECK_NEAR(at(lc_grad(a), 0), 0.5, 0);
  CHECK_NEAR(at(lc_grad(b), 0), 0.5, 0);
  CHECK_NEAR(at(lc_grad(a), 1), 0, 0);
  CHECK_NEAR(at(lc_grad(b), 1), 1, 0);
  CHECK_NEAR(at(lc_grad(a), 2), 1, 0);
  lc_release(y);
  lc_set_grad(a, NULL);
  lc_set_grad(b, NULL);
  /* pow: d/db at a == 0 with b >= 0 is 0 (not NaN) */
  lc_tensor *a0 = leaf(1, s3, (double[]){0, 2, 0}), *b0 = leaf(1, s3, (double[]){2, 3, 0});
  CHECK_OK(lc_binary(LC_POW, a0, b0, &y));
  CHECK_OK(lc_backward(y, g, false));
  CHECK_NEAR(at(lc_grad(b0), 0), 0, 0);
  CHECK_NEAR(at(lc_grad(b0), 1), 8 * log(2), 1e-12);
  CHECK_NEAR(at(lc_grad(b0), 2), 0, 0);
  CHECK_NEAR(at(lc_grad(a0), 0), 0, 0);         /* 2 * 0^1 */
  CHECK_NEAR(at(lc_grad(a0), 1), 3 * 4, 1e-12); /* 3 * 2^2 */
  CHECK_NEAR(at(lc_grad(a0), 2), 0, 0);         /* exponent 0 */
  lc_release(y);
  /* a tensor saved for backward and modified in place: LC_EGRAD */
  lc_tensor *s = NULL;
  CHECK_OK(lc_unary(LC_SIN, a, &y)); /* saves a */
  CHECK_OK(lc_binary(LC_MUL, a, a, &s));
  bool prev = lc_set_grad_enabled(false);
  CHECK_OK(lc_binary_scalar_(LC_ADD, a, 1));
  lc_set_grad_enabled(prev);
  CHECK_STATUS(lc_backward(y, g, false), LC_EGRAD);
  lc_release(s);
  lc_release(y);
  /* exp saves its output, not its input: modifying the input does not matter */
  CHECK_OK(lc_unary(LC_EXP, a, &y));
  prev = lc_set_grad_enabled(false);
  CHECK_OK(lc_binary_scalar_(LC_ADD, a, 1));
  lc_set_grad_enabled(prev);
  lc_set_grad(a, NULL);
  CHECK_OK(lc_backward(y, g, false));
  for (int j = 0; j < 3; j++)
    CHECK_NEAR(at(lc_grad(a), j), at(y, j), 0);
  lc_release(y);
  lc_release(a0);
  lc_release(b0);
  lc_release(g);
  lc_release(a);
  lc_release(b);
}

TEST(elementwise_backward_scalar_clamp_where_cast) {
  int64_t s23[] = {2, 3};
  const double v[] = {0.4, 1.3, 2.2, 0.7, 1.6, 2.9};
  lc_binary_op ops[] = {LC_ADD, LC_SUB, LC_MUL, LC_DIV, LC_POW, LC_MAXIMUM, LC_MINIMUM};
  for (int k = 0; k < 7; k++) {
    for (int rev = 0; rev < 2; rev++) {
      lc_tensor *x = leaf(2, s23, v);
      fctx c = {.kind = 2 + rev, .op = ops[k], .s = ops[k] == LC_POW ? 1.7 : 1.45};
      GRADCHECK(&c, 1, &x, 1e-6);
      lc_release(x);
    }
  }
  /* clamp: both bounds, one bound */
  const double w[] = {-1.2, -0.3, 0.2, 0.6, 1.4, 0.95};
  double bounds[][2] = {{-0.5, 1.0}, {0, NAN}, {NAN, 0.5}};
  for (int k = 0; k < 3; k++) {
    lc_tensor *x = leaf(2, s23, w);
    fctx c = {.kind = 4, .lo = bounds[k][0], .hi = bounds[k][1]};
    GRADCHECK(&c, 1, &x, 1e-6);
    lc_release(x);
  }
  /* where with broadcasting: cond {2,3}, a {3}, b {2,1} */
  int64_t s3[] = {3}, s21[] = {2, 1};
  lc_tensor *cond = mk(2, s23, LC_BOOL, (double[]){1, 0, 1, 0, 0, 1});
  lc_tensor *ins[2] = {leaf(1, s3, (double[]){1, 2, 3}), leaf(2, s21, (double[]){-1, -2})};
  fctx c = {.kind = 5, .cond = cond};
  GRADCHECK(&c, 2, ins, 1e-6);
  lc_tensor *y = NULL;
  CHECK_OK(lc_where(cond, ins[0], ins[1], &y));
  CHECK(strcmp(lc_grad_fn_name(y), "WhereBackward") == 0);
  lc_release(y);
  lc_release(ins[0]);
  lc_release(ins[1]);
  lc_release(cond);
  /* cast: float32 round trip, so a looser tolerance; gradient comes back as float64 */
  lc_tensor *x = leaf(2, s23, v);
  fctx cc = {.kind = 6};
  char msg[512];
  int ok = gradcheck(fn, &cc, 1, &x, 1e-3, 1e-3, 1e-3, msg, sizeof msg);
  if (!ok) printf("  cast: %s\n", msg);
  CHECK(ok);
  lc_tensor *f = NULL, *loss = NULL;
  CHECK_OK(lc_to_dtype(x, LC_FLOAT32, &f));
  CHECK(strcmp(lc_grad_fn_name(f), "ToCopyBackward") == 0);
  CHECK_OK(lc_clone(f, &y));
  CHECK(strcmp(lc_grad_fn_name(y), "CloneBackward") == 0);
  lc_reduce_opts o;
  memset(&o, 0, sizeof o);
  CHECK_OK(lc_reduce(LC_SUM, y, &o, &loss));
  CHECK_OK(lc_backward(loss, NULL, false));
  CHECK(lc_grad(x) && lc_dtype_of(lc_grad(x)) == LC_FLOAT64);
  if (lc_grad(x))
    for (int j = 0; j < 6; j++)
      CHECK_NEAR(at(lc_grad(x), j), 1, 0);
  lc_release(loss);
  lc_release(y);
  lc_release(f);
  lc_release(x);
}

TEST(elementwise_backward_mixed_dtypes) {
  /* float32 * float64 -> float64; each gradient comes back in its input's dtype */
  int64_t s3[] = {3};
  lc_tensor *a = mk(1, s3, LC_FLOAT32, (double[]){1, 2, 3});
  lc_tensor *b = mk(1, s3, LC_FLOAT64, (double[]){4, 5, 6});
  lc_tensor *k = mk(1, s3, LC_INT32, (double[]){7, 8, 9});
  CHECK_OK(lc_set_requires_grad(a, true));
  CHECK_OK(lc_set_requires_grad(b, true));
  lc_tensor *y = NULL, *z = NULL, *g = mk(1, s3, LC_FLOAT64, (double[]){1, 1, 1});
  CHECK_OK(lc_binary(LC_MUL, a, b, &y));
  CHECK(lc_dtype_of(y) == LC_FLOAT64);
  CHECK_OK(lc_binary(LC_MUL, y, k, &z)); /* int operand: no gradient to it */
  CHECK_OK(lc_backward(z, g, false));
  CHECK(lc_grad(a) && lc_dtype_of(lc_grad(a)) == LC_FLOAT32);
  CHECK(lc_grad(b) && lc_dtype_of(lc_grad(b)) == LC_FLOAT64);
  if (lc_grad(a) && lc_grad(b))
    for (int j = 0; j < 3; j++) {
      CHECK_NEAR(at(lc_grad(a), j), at(b, j) * at(k, j), 0);
      CHECK_NEAR(at(lc_grad(b), j), at(a, j) * at(k, j), 0);
    }
  lc_release(z);
  lc_release(y);
  lc_release(g);
  lc_release(k);
  lc_release(a);
  lc_release(b);
}

/* ------------------------------------------------------------------ float32 accuracy */

/* Distance in units in the last place between two floats (monotone integer mapping). */
static int64_t ulp_dist(float a, float b) {
  int32_t ia, ib;
  memcpy(&ia, &a, 4);
  memcpy(&ib, &b, 4);
  int64_t la = ia < 0 ? (int64_t)INT32_MIN - ia : ia, lb = ib < 0 ? (int64_t)INT32_MIN - ib : ib;
  return la > lb ? la - lb : lb - la;
}

/* exp / tanh / sigmoid of float32 use lucid's own vectorisable approximations: check them
 * against the double-precision libm result over their whole range, subnormals included. */
TEST(elementwise_float32_transcendental_accuracy) {
  const int64_t n = 400001;
  double *v = malloc((size_t)n * sizeof *v);
  for (int64_t i = 0; i < n; i++)
    v[i] = -110.0 + 205.0 * (double)i / (double)(n - 1);
  /* dense near 0 too, where tanh's two formulas meet */
  for (int64_t i = 0; i < 2000; i++)
    v[i] = (double)(i - 1000) * 1e-3;
  lc_tensor *x = mk1(n, LC_FLOAT32, v);
  struct {
    lc_unary_op op;
    double (*ref)(double);
    int64_t max_ulp;
  } cases[] = {{LC_EXP, exp, 2}, {LC_TANH, tanh, 3}, {LC_SIGMOID, sigmoid_ref, 3}};
  for (int k = 0; k < 3; k++) {
    lc_tensor *y = NULL;
    CHECK_OK(lc_unary(cases[k].op, x, &y));
    if (!y) continue;
    const float *xs = lc_data(x), *ys = lc_data(y);
    int64_t worst = 0, worst_i = 0;
    for (int64_t i = 0; i < n; i++) {
      float want = (float)cases[k].ref((double)xs[i]);
      int64_t d = ulp_dist(ys[i], want);
      if (d > worst) {
        worst = d;
        worst_i = i;
      }
    }
    if (worst > cases[k].max_ulp)
      printf("  op %d: %lld ulp at x = %.9g (got %.9g, want %.9g)\n", (int)cases[k].op,
             (long long)worst, xs[worst_i], ys[worst_i], (float)cases[k].ref(xs[worst_i]));
    CHECK(worst <= cases[k].max_ulp);
    lc_release(y);
  }
  /* special values */
  const double sp[] = {INFINITY, -INFINITY, NAN, 88.72, 89, -87.5, -103.9, -104, 0, -0.0};
  lc_tensor *s = mk1(10, LC_FLOAT32, sp), *e = NULL, *t = NULL, *g = NULL;
  CHECK_OK(lc_unary(LC_EXP, s, &e));
  CHECK_OK(lc_unary(LC_TANH, s, &t));
  CHECK_OK(lc_unary(LC_SIGMOID, s, &g));
  for (int i = 0; i < 10; i++) {
    float fx = (float)sp[i];
    CHECK(same_value(at(e, i), expf(fx), 0) || ulp_dist((float)at(e, i), expf(fx)) <= 2);
    CHECK(same_value(at(t, i), tanhf(fx), 0) || ulp_dist((float)at(t, i), tanhf(fx)) <= 2);
    CHECK(same_value(at(g, i), (float)sigmoid_ref(fx), 0) ||
          ulp_dist((float)at(g, i), (float)sigmoid_ref(fx)) <= 3);
  }
  lc_release(e);
  lc_release(t);
  lc_release(g);
  lc_release(s);
  lc_release(x);
  free(v);
}
