/* test_autograd.c - graph recording, the backward engine, in-place rules, gradcheck.
 *
 * Most tests use tiny ops defined here (scale, mul, add, sum, ...) so the engine is tested
 * independently of the real kernels; a few go through the real op table. */
#include "../src/autograd/autograd.h"
#include "gradcheck.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ local test ops */

static int64_t eoff(const lc_tensor *t, int64_t j) {
  int64_t off = 0;
  for (int d = t->ndim - 1; d >= 0; d--) {
    off += (j % t->shape[d]) * t->strides[d];
    j /= t->shape[d];
  }
  return off;
}
static double at(const lc_tensor *t, int64_t j) {
  return lc_load_f64(lc_data(t), t->dtype, eoff(t, j));
}

/* out = x * f[0] */
static lc_status scale_fw(const lc_op_def *op, int n, lc_tensor *const *in, const lc_op_args *a,
                          lc_tensor **out) {
  lc_tensor *o = NULL;
  lc_status st = lc_tensor_new(in[0]->ndim, in[0]->shape, in[0]->dtype, &o);
  if (st) return st;
  for (int64_t j = 0; j < o->numel; j++)
    lc_store_f64(lc_data(o), o->dtype, j, at(in[0], j) * a->f[0]);
  *out = o;
  return LC_OK;
}
static lc_status scale_bw(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **gi) {
  if (!ctx->needs_grad[0]) return LC_OK;
  lc_tensor *in[1] = {(lc_tensor *)g};
  return lc_op_run(ctx->op, 1, in, ctx->args, &gi[0]);
}
static const lc_op_def op_scale = {"scale", "ScaleBackward", 1,        1,   0, false,
                                   0,       scale_fw,        scale_bw, NULL};
static const lc_op_args two = {.f = {2.0, 0}};
static const lc_op_args one = {.f = {1.0, 0}};

/* out = a * b (same shape), saves both inputs */
static lc_status mul_fw(const lc_op_def *op, int n, lc_tensor *const *in, const lc_op_args *a,
                        lc_tensor **out) {
  if (in[0]->numel != in[1]->numel) return lc_set_error(LC_ESHAPE, "mul: shapes differ");
  lc_tensor *o = NULL;
  lc_status st =
      lc_tensor_new(in[0]->ndim, in[0]->shape, lc_promote(in[0]->dtype, in[1]->dtype), &o);
  if (st) return st;
  for (int64_t j = 0; j < o->numel; j++)
    lc_store_f64(lc_data(o), o->dtype, j, at(in[0], j) * at(in[1], j));
  *out = o;
  return LC_OK;
}
static const lc_op_def op_mul_nograd;
static lc_status mul_bw(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **gi) {
  lc_tensor *a = NULL, *b = NULL;
  lc_status st = lc_ctx_saved(ctx, 0, &a);
  if (!st) st = lc_ctx_saved(ctx, 1, &b);
  if (st) return st;
  lc_tensor *ga[2] = {(lc_tensor *)g, b}, *gb[2] = {(lc_tensor *)g, a};
  if (ctx->needs_grad[0] && (st = lc_op_run(&op_mul_nograd, 2, ga, NULL, &gi[0]))) return st;
  if (ctx->needs_grad[1] && (st = lc_op_run(&op_mul_nograd, 2, gb, NULL, &gi[1]))) return st;
  return LC_OK;
}
static const lc_op_def op_mul = {
    "mul", "MulBackward", 2, 1, 0, false, LC_SAVE_IN(0) | LC_SAVE_IN(1), mul_fw, mul_bw, NULL};
static const lc_op_def op_mul_nograd = {"mul", NULL, 2, 1, 0, false, 0, mul_fw, NULL, NULL};

/* out = a + b (same shape); backward passes the incoming gradient through (shared!) */
static lc_status add_fw(const lc_op_def *op, int n, lc_tensor *const *in, const lc_op_args *a,
                        lc_tensor **out) {
  lc_tensor *o = NULL;
  lc_status st =
      lc_tensor_new(in[0]->ndim, in[0]->shape, lc_promote(in[0]->dtype, in[1]->dtype), &o);
  if (st) return st;
  for (int64_t j = 0; j < o->numel; j++)
    lc_store_f64(lc_data(o), o->dtype, j, at(in[0], j) + at(in[1], j));
  *out = o;
  return LC_OK;
}
static lc_status add_bw(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **gi) {
  for (int i = 0; i < 2; i++)
    if (ctx->needs_grad[i]) gi[i] = lc_retain((lc_tensor *)g);
  return LC_OK;
}
static const lc_op_def op_add = {"add", "AddBackward", 2, 1, 0, false, 0, add_fw, add_bw, NULL};

/* 0-dim sum of all elements */
static lc_status sum_fw(const lc_op_def *op, int n, lc_tensor *const *in, const lc_op_args *a,
                        lc_tensor **out) {
  lc_tensor *o = NULL;
  lc_status st = lc_tensor_new(0, NULL, in[0]->dtype, &o);
  if (st) return st;
  double s = 0;
  for (int64_t j = 0; j < in[0]->numel; j++)
    s += at(in[0], j);
  lc_store_f64(lc_data(o), o->dtype, 0, s);
  *out = o;
  return LC_OK;
}
static lc_status sum_bw(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **gi) {
  if (!ctx->needs_grad[0]) return LC_OK;
  lc_status st = lc_tensor_new(ctx->in[0].ndim, ctx->in[0].shape, ctx->in[0].dtype, &gi[0]);
  if (!st) st = lc_k_fill(gi[0], at(g, 0));
  return st;
}
static const lc_op_def op_sum = {"sum", "SumBackward", 1, 1, 0, false, 0, sum_fw, sum_bw, NULL};

/* two outputs: out[0] = 2x (float), out[1] = int64 zeros; and an op returning only ints */
static lc_status two_fw(const lc_op_def *op, int n, lc_tensor *const *in, const lc_op_args *a,
                        lc_tensor **out) {
  lc_status st = scale_fw(op, n, in, &two, &out[0]);
  if (st) return st;
  st = lc_tensor_new(in[0]->ndim, in[0]->shape, LC_INT64, &out[1]);
  if (!st) st = lc_k_fill(out[1], 0);
  if (st) lc_release(out[0]);
  return st;
}
static lc_status two_bw(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **gi) {
  lc_op_args a = two;
  lc_tensor *in[1] = {(lc_tensor *)g};
  lc_status st = lc_op_run(&op_scale, 1, in, &a, &gi[0]);
  (void)ctx;
  return st;
}
static const lc_op_def op_two = {"two", "TwoBackward",  1,      2,      0,
                                 false, LC_SAVE_OUT(1), two_fw, two_bw, NULL};
static lc_status int_fw(const lc_op_def *op, int n, lc_tensor *const *in, const lc_op_args *a,
                        lc_tensor **out) {
  lc_status st = lc_tensor_new(in[0]->ndim, in[0]->shape, LC_INT64, out);
  if (!st) st = lc_k_fill(*out, 1);
  return st;
}
static const lc_op_def op_int = {"toint", "ToIntBackward", 1,        1,   0, false,
                                 0,       int_fw,          scale_bw, NULL};

/* a backward that fails, and one that returns a wrong shape */
static lc_status fail_bw(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **gi) {
  return lc_set_error(LC_EARG, "boom");
}
static const lc_op_def op_fail = {"fail", "FailBackward", 1,        1,       0,
                                  false,  LC_SAVE_IN(0),  scale_fw, fail_bw, NULL};
static lc_status badshape_bw(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **gi) {
  int64_t s[1] = {7};
  return lc_tensor_new(1, s, LC_FLOAT64, &gi[0]) || lc_k_fill(gi[0], 1) ? LC_ENOMEM : LC_OK;
}
static const lc_op_def op_badshape = {"bad", "BadBackward", 1,           1,   0, false,
                                      0,     scale_fw,      badshape_bw, NULL};
/* a wrong gradient (for gradcheck's negative test): d(2x) reported as 3 */
static lc_status wrong_bw(const lc_op_ctx *ctx, const lc_tensor *g, lc_tensor **gi) {
  lc_op_args a = {.f = {3.0, 0}};
  lc_tensor *in[1] = {(lc_tensor *)g};
  return lc_op_run(&op_scale, 1, in, &a, &gi[0]);
}
static const lc_op_def op_wrong = {"wrong", "WrongBackward", 1,        1,   0, false,
                                   0,       scale_fw,        wrong_bw, NULL};

/* ------------------------------------------------------------------ helpers */

static lc_tensor *leaf(int ndim, const int64_t *shape, const double *v, bool rg) {
  lc_tensor *t = NULL;
  if (lc_from_data(ndim, shape, LC_FLOAT64, v, &t)) return NULL;
  if (rg) lc_set_requires_grad(t, true);
  return t;
}
static lc_tensor *ap1(const lc_op_def *op, lc_tensor *a, const lc_op_args *args) {
  lc_tensor *o = NULL;
  lc_tensor *in[1] = {a};
  return lc_apply(op, 1, in, args, &o) ? NULL : o;
}
static lc_tensor *ap2(const lc_op_def *op, lc_tensor *a, lc_tensor *b) {
  lc_tensor *o = NULL;
  lc_tensor *in[2] = {a, b};
  return lc_apply(op, 2, in, NULL, &o) ? NULL : o;
}

static const int64_t S3[1] = {3};
static const double V3[3] = {1.0, -2.0, 0.5};

/* ------------------------------------------------------------------ tests */

TEST(ag_grad_mode_flag) {
  CHECK(lc_is_grad_enabled());
  CHECK(lc_grad_mode());
  CHECK(lc_set_grad_enabled(false) == true);
  CHECK(!lc_is_grad_enabled() && !lc_grad_mode());
  CHECK(lc_set_grad_enabled(true) == false);
  CHECK(lc_is_grad_enabled());
}

TEST(ag_op_run_and_ctx_saved_checks) {
  lc_tensor *x = leaf(1, S3, V3, false), *o = NULL;
  lc_tensor *in[2] = {x, x};
  CHECK_STATUS(lc_op_run(&op_scale, 2, in, &two, &o), LC_EARG);
  CHECK_STATUS(lc_apply(&op_scale, 2, in, &two, &o), LC_EARG);
  CHECK(o == NULL);
  lc_tensor *saved[1] = {x};
  uint64_t ver[1] = {lc_version(x)};
  lc_meta m = {0};
  bool ng = true;
  lc_op_ctx ctx = {&op_mul, &two, 1, &m, &m, &ng, 1, saved, ver, lc_op_run, false, NULL};
  lc_tensor *got = NULL;
  CHECK_OK(lc_ctx_saved(&ctx, 0, &got));
  CHECK(got == x);
  CHECK_STATUS(lc_ctx_saved(&ctx, 1, &got), LC_EINDEX);
  lc_bump_version(x);
  CHECK_STATUS(lc_ctx_saved(&ctx, 0, &got), LC_EGRAD);
  CHECK(strstr(lc_last_error(), "MulBackward: a tensor saved for backward was modified") != NULL);
  saved[0] = NULL;
  CHECK_STATUS(lc_ctx_saved(&ctx, 0, &got), LC_EGRAD);
  CHECK(strstr(lc_last_error(), "second time") != NULL);
  lc_release(x);
}

TEST(ag_recording_basics) {
  lc_tensor *x = leaf(1, S3, V3, true), *c = leaf(1, S3, V3, false);
  CHECK(lc_is_leaf(x) && lc_requires_grad(x) && lc_grad_fn_name(x) == NULL);
  lc_tensor *y = ap1(&op_scale, x, &two);
  CHECK(y && !lc_is_leaf(y) && lc_requires_grad(y));
  CHECK(y && strcmp(lc_grad_fn_name(y), "ScaleBackward") == 0);
  CHECK(y && at(y, 1) == -4.0);
  lc_tensor *z = ap2(&op_mul, y, c); /* one input requires grad: recorded */
  CHECK(z && lc_requires_grad(z) && strcmp(lc_grad_fn_name(z), "MulBackward") == 0);
  lc_tensor *w = ap1(&op_scale, c, &two); /* nothing requires grad: not recorded */
  CHECK(w && lc_is_leaf(w) && !lc_requires_grad(w));
  lc_tensor *i = ap1(&op_int, x, NULL); /* integer result: never recorded */
  CHECK(i && lc_is_leaf(i) && !lc_requires_grad(i));
  lc_tensor *outs[2] = {NULL, NULL}, *in[1] = {x};
  CHECK_OK(lc_apply(&op_two, 1, in, NULL, outs));
  CHECK(outs[0] && lc_requires_grad(outs[0]) && !lc_is_leaf(outs[0]));
  CHECK(outs[1] && !lc_requires_grad(outs[1]) && lc_is_leaf(outs[1]));
  lc_release(outs[0]);
  lc_release(outs[1]);
  lc_release(i);
  lc_release(w);
  lc_release(z);
  lc_release(y);
  lc_release(c);
  lc_release(x);
}

TEST(ag_grad_mode_off_records_nothing) {
  lc_tensor *x = leaf(1, S3, V3, true);
  bool prev = lc_set_grad_enabled(false);
  lc_tensor *y = ap1(&op_scale, x, &two);
  lc_set_grad_enabled(prev);
  CHECK(y && lc_is_leaf(y) && !lc_requires_grad(y));
  CHECK_STATUS(lc_backward(y, NULL, false), LC_EGRAD);
  CHECK(strstr(lc_last_error(), "does not require grad") != NULL);
  lc_release(y);
  lc_release(x);
}

TEST(ag_backward_mul_and_accumulation) {
  lc_tensor *x = leaf(1, S3, V3, true);
  lc_tensor *y = ap2(&op_mul, x, x);
  lc_tensor *l = ap1(&op_sum, y, NULL);
  CHECK_OK(lc_backward(l, NULL, true));
  lc_tensor *g = lc_grad(x);
  CHECK(g != NULL);
  for (int j = 0; g && j < 3; j++)
    CHECK_NEAR(at(g, j), 2 * V3[j], 1e-12);
  CHECK_OK(lc_backward(l, NULL, false)); /* accumulates */
  g = lc_grad(x);
  for (int j = 0; g && j < 3; j++)
    CHECK_NEAR(at(g, j), 4 * V3[j], 1e-12);
  /* graph freed now */
  CHECK_STATUS(lc_backward(l, NULL, false), LC_EGRAD);
  CHECK(strstr(lc_last_error(), "backward through the graph a second time") != NULL);
  CHECK_OK(lc_set_grad(x, NULL));
  CHECK(lc_grad(x) == NULL);
  lc_release(l);
  lc_release(y);
  lc_release(x);
}

TEST(ag_diamond_and_shared_gradients) {
  /* z = (2x) + (2x): AddBackward hands the same gradient to both edges */
  lc_tensor *x = leaf(1, S3, V3, true);
  lc_tensor *y = ap1(&op_scale, x, &two);
  lc_tensor *z = ap2(&op_add, y, y);
  lc_tensor *u = ap2(&op_add, z, x); /* x reached twice: via y and directly */
  lc_tensor *seed = leaf(1, S3, (double[]){1, 1, 1}, false);
  CHECK_OK(lc_backward(u, seed, false));
  lc_tensor *g = lc_grad(x);
  for (int j = 0; g && j < 3; j++)
    CHECK_NEAR(at(g, j), 5.0, 1e-12);
  /* x.grad must not alias the seed */
  ((double *)lc_data(seed))[0] = 100;
  CHECK(g && at(g, 0) == 5.0);
  CHECK(g && !lc_same_storage(g, seed));
  lc_release(seed);
  lc_release(u);
  lc_release(z);
  lc_release(y);
  lc_release(x);
}

TEST(ag_backward_seed_rules) {
  int64_t s23[2] = {2, 3};
  double v[6] = {1, 2, 3, 4, 5, 6};
  lc_tensor *x = leaf(2, s23, v, true);
  lc_tensor *y = ap1(&op_scale, x, &two);
  CHECK_STATUS(lc_backward(y, NULL, true), LC_EGRAD);
  CHECK(strstr(lc_last_error(), "a gradient is needed for a tensor with") != NULL);
  CHECK(strstr(lc_last_error(), "{2, 3}") != NULL);
  lc_tensor *bad = leaf(1, S3, V3, false);
  CHECK_STATUS(lc_backward(y, bad, true), LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "{3}") && strstr(lc_last_error(), "{2, 3}"));
  /* a float32 seed is cast to the tensor's float64 */
  lc_tensor *seed = NULL;
  CHECK_OK(lc_full(2, s23, 0.5, LC_FLOAT32, &seed));
  CHECK_OK(lc_backward(y, seed, false));
  lc_tensor *g = lc_grad(x);
  CHECK(g && lc_dtype_of(g) == LC_FLOAT64);
  for (int j = 0; g && j < 6; j++)
    CHECK_NEAR(at(g, j), 1.0, 1e-12);
  /* backward on a one-element leaf seeds its own grad */
  lc_tensor *s = leaf(0, NULL, (double[]){3}, true);
  CHECK_OK(lc_backward(s, NULL, false));
  CHECK(lc_grad(s) && at(lc_grad(s), 0) == 1.0);
  lc_release(s);
  lc_release(seed);
  lc_release(bad);
  lc_release(y);
  lc_release(x);
}

TEST(ag_version_counter_catches_in_place_change) {
  lc_tensor *a = leaf(1, S3, V3, true), *b = leaf(1, S3, V3, false);
  lc_tensor *y = ap2(&op_mul, a, b); /* saves b */
  lc_tensor *l = ap1(&op_sum, y, NULL);
  lc_tensor *in[1] = {b};
  CHECK_OK(lc_apply_inplace(&op_scale, 1, in, &two)); /* b doesn't require grad: allowed */
  CHECK(at(b, 0) == 2.0);
  CHECK_STATUS(lc_backward(l, NULL, false), LC_EGRAD);
  CHECK(strstr(lc_last_error(), "MulBackward: a tensor saved for backward was modified by an "
                                "in-place operation") != NULL);
  CHECK(lc_grad(a) == NULL); /* never a wrong gradient */
  lc_release(l);
  lc_release(y);
  lc_release(b);
  lc_release(a);
}

TEST(ag_in_place_rules) {
  lc_tensor *x = leaf(1, S3, V3, true);
  lc_tensor *in[1] = {x};
  CHECK_STATUS(lc_apply_inplace(&op_scale, 1, in, &two), LC_EGRAD);
  CHECK(strstr(lc_last_error(), "a leaf tensor that requires grad is being used in an in-place") !=
        NULL);
  CHECK(at(x, 0) == 1.0);
  /* grad mode off: allowed (optimizer updates), bumps the version, records nothing */
  uint64_t v0 = lc_version(x);
  bool prev = lc_set_grad_enabled(false);
  CHECK_OK(lc_apply_inplace(&op_scale, 1, in, &two));
  lc_set_grad_enabled(prev);
  CHECK(at(x, 0) == 2.0 && lc_version(x) == v0 + 1 && lc_is_leaf(x));
  /* float result into an int tensor */
  lc_tensor *it = NULL, *f = leaf(1, S3, V3, false);
  CHECK_OK(lc_zeros(1, S3, LC_INT64, &it));
  lc_tensor *in2[2] = {it, f};
  CHECK_STATUS(lc_apply_inplace(&op_add, 2, in2, NULL), LC_EDTYPE);
  /* result shape must be self's shape */
  int64_t s1[1] = {1};
  lc_tensor *small = leaf(1, s1, V3, false);
  lc_tensor *in3[1] = {small};
  CHECK_STATUS(lc_apply_inplace(&op_badshape, 1, in3, &two), LC_OK); /* forward is scale: ok */
  lc_release(small);
  lc_release(f);
  lc_release(it);
  lc_release(x);
}

TEST(ag_in_place_rebases_history) {
  lc_tensor *x = leaf(1, S3, V3, true);
  lc_tensor *h = ap1(&op_scale, x, &two); /* h = 2x */
  lc_tensor *in[2] = {h, h};
  CHECK_OK(lc_apply_inplace(&op_mul, 2, in, NULL)); /* h = h * h = 4x^2, saves old h */
  CHECK(strcmp(lc_grad_fn_name(h), "MulBackward") == 0 && !lc_is_leaf(h));
  CHECK_NEAR(at(h, 1), 16.0, 1e-12);
  lc_tensor *l = ap1(&op_sum, h, NULL);
  CHECK_OK(lc_backward(l, NULL, false));
  lc_tensor *g = lc_grad(x);
  for (int j = 0; g && j < 3; j++)
    CHECK_NEAR(at(g, j), 8 * V3[j], 1e-12);
  lc_release(l);
  lc_release(h);
  lc_release(x);

  /* a tensor without grad becomes part of the graph when an input requires grad */
  lc_tensor *w = leaf(1, S3, V3, true), *acc = NULL;
  CHECK_OK(lc_zeros(1, S3, LC_FLOAT64, &acc));
  lc_tensor *in2[2] = {acc, w};
  CHECK_OK(lc_apply_inplace(&op_add, 2, in2, NULL));
  CHECK(lc_requires_grad(acc) && strcmp(lc_grad_fn_name(acc), "AddBackward") == 0);
  lc_tensor *l2 = ap1(&op_sum, acc, NULL);
  CHECK_OK(lc_backward(l2, NULL, false));
  CHECK(lc_grad(w) && at(lc_grad(w), 2) == 1.0);
  lc_release(l2);
  lc_release(acc);
  lc_release(w);
}

/* In place on a view of a tensor with history (CopySlices): h = 2x, v = h viewed as 3x1, v *= 2
 * in place: h now holds 4x, and both h and v differentiate through the write. */
TEST(ag_in_place_on_view_of_grad_tensor) {
  lc_tensor *x = leaf(1, S3, V3, true);
  lc_tensor *h = ap1(&op_scale, x, &two);
  lc_op_args va = {.i = {3, 1}, .ni = 2};
  lc_tensor *v = ap1(&lc_op_view, h, &va);
  CHECK(v && lc_requires_grad(v));
  if (v) {
    lc_tensor *in[1] = {v};
    CHECK_OK(lc_apply_inplace(&op_scale, 1, in, &two));
    for (int j = 0; j < 3; j++)
      CHECK_NEAR(at(h, j), 4 * V3[j], 1e-12);
    CHECK(strcmp(lc_grad_fn_name(h), "CopySlices") == 0);
    lc_tensor *s = ap1(&op_sum, h, NULL);
    CHECK_OK(lc_backward(s, NULL, false));
    for (int j = 0; lc_grad(x) && j < 3; j++)
      CHECK_NEAR(at(lc_grad(x), j), 4.0, 1e-12);
    lc_release(s);
  }
  /* a view of a leaf that requires grad stays refused */
  lc_tensor *lv = ap1(&lc_op_view, x, &va);
  if (lv) {
    lc_tensor *in[1] = {lv};
    CHECK_STATUS(lc_apply_inplace(&op_scale, 1, in, &two), LC_EGRAD);
    CHECK(strstr(lc_last_error(), "a view of a leaf tensor that requires grad") != NULL);
  }
  lc_release(lv);
  lc_release(v);
  lc_release(h);
  lc_release(x);
}

TEST(ag_detach) {
  lc_tensor *x = leaf(1, S3, V3, true);
  lc_tensor *y = ap1(&op_scale, x, &two), *d = NULL;
  CHECK_OK(lc_detach(y, &d));
  CHECK(d && lc_is_leaf(d) && !lc_requires_grad(d) && lc_same_storage(d, y));
  lc_tensor *z = ap1(&op_scale, d, &two);
  CHECK(z && !lc_requires_grad(z));
  lc_release(z);
  lc_release(d);
  lc_release(y);
  lc_release(x);
}

TEST(ag_retain_grad_on_non_leaf) {
  lc_tensor *x = leaf(1, S3, V3, true);
  CHECK_OK(lc_retain_grad(x)); /* leaf: no-op */
  CHECK(!lc_retains_grad(x));
  lc_tensor *plain = leaf(1, S3, V3, false); /* no requires_grad: an error, as in PyTorch */
  CHECK_STATUS(lc_retain_grad(plain), LC_EGRAD);
  CHECK(strstr(lc_last_error(), "does not require grad") != NULL);
  lc_release(plain);
  lc_tensor *h = ap1(&op_scale, x, &two);
  lc_tensor *hh = ap2(&op_mul, h, h);
  lc_tensor *l = ap1(&op_sum, hh, NULL);
  CHECK(!lc_retains_grad(h));
  CHECK_OK(lc_retain_grad(h));
  CHECK_OK(lc_retain_grad(h)); /* twice is fine */
  CHECK(lc_retains_grad(h) && lc_grad(h) == NULL);
  CHECK_OK(lc_backward(l, NULL, false));
  lc_tensor *gh = lc_grad(h), *gx = lc_grad(x);
  CHECK(gh && gx);
  for (int j = 0; gh && gx && j < 3; j++) {
    CHECK_NEAR(at(gh, j), 2 * at(h, j), 1e-12);
    CHECK_NEAR(at(gx, j), 4 * at(h, j), 1e-12);
  }
  CHECK(lc_grad(hh) == NULL); /* not retained */
  CHECK_OK(lc_set_grad(h, NULL));
  CHECK(lc_grad(h) == NULL);
  /* the tensor may die before the graph: the node only holds the shared slot */
  lc_tensor *h2 = ap1(&op_scale, x, &two);
  CHECK_OK(lc_retain_grad(h2));
  lc_tensor *l2 = ap1(&op_sum, h2, NULL);
  lc_release(h2);
  CHECK_OK(lc_backward(l2, NULL, false));
  lc_release(l2);
  lc_release(l);
  lc_release(hh);
  lc_release(h);
  lc_release(x);
}

TEST(ag_autograd_grad_leaves_grad_untouched) {
  lc_tensor *x = leaf(1, S3, V3, true), *u = leaf(1, S3, V3, true);
  lc_tensor *h = ap1(&op_scale, x, &two);
  lc_tensor *y = ap2(&op_mul, h, x); /* y = 2x^2 */
  lc_tensor *l = ap1(&op_sum, y, NULL);
  lc_tensor *ins[3] = {x, h, u}, *gr[3] = {NULL, NULL, NULL};
  CHECK_STATUS(lc_autograd_grad(1, &l, NULL, 3, ins, true, false, gr), LC_EGRAD);
  CHECK(strstr(lc_last_error(), "input 2 is not reachable") != NULL);
  CHECK(gr[0] == NULL);
  CHECK_OK(lc_autograd_grad(1, &l, NULL, 3, ins, true, true, gr));
  CHECK(gr[0] && gr[1] && gr[2] == NULL);
  for (int j = 0; gr[0] && gr[1] && j < 3; j++) {
    CHECK_NEAR(at(gr[0], j), 4 * V3[j], 1e-12); /* d(2x^2)/dx */
    CHECK_NEAR(at(gr[1], j), V3[j], 1e-12);     /* d(h*x)/dh = x */
  }
  CHECK(lc_grad(x) == NULL && lc_grad(u) == NULL);
  /* a NULL entry of grad_outputs: seed 1 for a one-element output, an error naming the output
   * (0-based in C) otherwise */
  {
    lc_tensor *ones3 = NULL, *outs2[2] = {l, y}, *gos2[2] = {NULL, NULL}, *g2[1] = {NULL};
    CHECK_OK(lc_full(1, S3, 1.0, LC_FLOAT64, &ones3));
    gos2[1] = ones3;
    CHECK_OK(lc_autograd_grad(2, outs2, gos2, 1, ins, true, false, g2));
    lc_release(g2[0]);
    g2[0] = NULL;
    gos2[1] = NULL;
    CHECK_STATUS(lc_autograd_grad(2, outs2, gos2, 1, ins, true, false, g2), LC_EGRAD);
    CHECK(strstr(lc_last_error(), "output 1: a gradient is needed") != NULL);
    lc_release(ones3);
  }
  /* several outputs with explicit grad_outputs */
  lc_tensor *outs[2] = {y, h}, *gos[2] = {NULL, NULL}, *g1[1] = {NULL};
  CHECK_OK(lc_full(1, S3, 1.0, LC_FLOAT64, &gos[0]));
  CHECK_OK(lc_full(1, S3, 2.0, LC_FLOAT64, &gos[1]));
  CHECK_OK(lc_autograd_grad(2, outs, gos, 1, ins, false, false, g1));
  for (int j = 0; g1[0] && j < 3; j++)
    CHECK_NEAR(at(g1[0], j), 4 * V3[j] + 4, 1e-12);
  /* not requiring grad */
  lc_tensor *c = leaf(1, S3, V3, false), *cins[1] = {c}, *cg[1] = {NULL};
  CHECK_STATUS(lc_autograd_grad(1, &l, NULL, 1, cins, false, true, cg), LC_EGRAD);
  CHECK_STATUS(lc_autograd_grad(1, &c, NULL, 1, ins, false, true, cg), LC_EGRAD);
  lc_release(c);
  lc_release(g1[0]);
  lc_release(gos[0]);
  lc_release(gos[1]);
  for (int i = 0; i < 3; i++)
    lc_release(gr[i]);
  lc_release(l);
  lc_release(y);
  lc_release(h);
  lc_release(u);
  lc_release(x);
}

TEST(ag_long_chain_no_stack_overflow) {
  lc_tensor *x = leaf(1, S3, V3, true);
  lc_tensor *h = lc_retain(x);
  for (int i = 0; i < 100000 && h; i++) {
    lc_tensor *n = ap1(&op_scale, h, &one);
    lc_release(h);
    h = n;
  }
  CHECK(h != NULL);
  lc_tensor *l = h ? ap1(&op_sum, h, NULL) : NULL;
  CHECK_OK(lc_backward(l, NULL, false));
  CHECK(lc_grad(x) && at(lc_grad(x), 2) == 1.0);
  lc_release(l);
  lc_release(h); /* destroys 100k nodes iteratively */
  /* and a chain destroyed without ever running backward */
  h = lc_retain(x);
  for (int i = 0; i < 100000 && h; i++) {
    lc_tensor *n = ap1(&op_scale, h, &one);
    lc_release(h);
    h = n;
  }
  lc_release(h);
  lc_release(x);
}

TEST(ag_requires_grad_and_set_grad_errors) {
  lc_tensor *i = NULL;
  CHECK_OK(lc_zeros(1, S3, LC_INT64, &i));
  CHECK_STATUS(lc_set_requires_grad(i, true), LC_EDTYPE);
  CHECK(strstr(lc_last_error(), "only floating point tensors can require gradients, got int64"));
  CHECK_OK(lc_set_requires_grad(i, false));
  lc_tensor *x = leaf(1, S3, V3, true);
  lc_tensor *y = ap1(&op_scale, x, &two);
  CHECK_STATUS(lc_set_requires_grad(y, false), LC_EGRAD);
  CHECK_OK(lc_set_requires_grad(y, true));
  int64_t s2[1] = {2};
  lc_tensor *g2 = leaf(1, s2, V3, false), *gf = NULL, *g = leaf(1, S3, V3, false);
  CHECK_OK(lc_zeros(1, S3, LC_FLOAT32, &gf));
  CHECK_STATUS(lc_set_grad(x, g2), LC_ESHAPE);
  CHECK_STATUS(lc_set_grad(x, gf), LC_EDTYPE);
  CHECK_OK(lc_set_grad(x, g));
  CHECK(lc_grad(x) == g);
  CHECK_OK(lc_set_requires_grad(x, false));
  CHECK(!lc_requires_grad(x));
  lc_release(g);
  lc_release(gf);
  lc_release(g2);
  lc_release(y);
  lc_release(x);
  lc_release(i);
}

TEST(ag_backward_errors_are_prefixed_and_clean) {
  lc_tensor *x = leaf(1, S3, V3, true);
  lc_tensor *y = ap1(&op_fail, x, &two);
  lc_tensor *l = ap1(&op_sum, y, NULL);
  CHECK_STATUS(lc_backward(l, NULL, false), LC_EARG);
  CHECK(strcmp(lc_last_error(), "FailBackward: boom") == 0);
  lc_tensor *b = ap1(&op_badshape, x, &two);
  lc_tensor *lb = ap1(&op_sum, b, NULL);
  CHECK_STATUS(lc_backward(lb, NULL, false), LC_ESHAPE);
  CHECK(strstr(lc_last_error(), "BadBackward: backward returned a gradient of shape {7}"));
  CHECK(lc_grad(x) == NULL);
  lc_release(lb);
  lc_release(b);
  lc_release(l);
  lc_release(y);
  lc_release(x);
}

static lc_status f_mul_scale(void *ctx, lc_tensor *const *in, lc_tensor **out) {
  lc_tensor *h = NULL, *ins[1] = {in[0]};
  lc_status st = lc_apply(&op_scale, 1, ins, &two, &h);
  if (st) return st;
  lc_tensor *m[2] = {h, in[1]};
  st = lc_apply(&op_mul, 2, m, NULL, out);
  lc_release(h);
  return st;
}
static lc_status f_wrong(void *ctx, lc_tensor *const *in, lc_tensor **out) {
  return lc_apply(&op_wrong, 1, in, &two, out);
}
static lc_status f_real_mul(void *ctx, lc_tensor *const *in, lc_tensor **out) {
  return lc_apply(&lc_op_binary[LC_MUL], 2, in, NULL, out);
}

TEST(ag_gradcheck_helper) {
  int64_t s23[2] = {2, 3};
  double va[6] = {0.3, -1.2, 0.7, 2.0, -0.4, 1.1}, vb[6] = {1.5, 0.2, -0.9, 0.6, 1.3, -2.2};
  lc_tensor *a = leaf(2, s23, va, true), *b = leaf(2, s23, vb, true);
  lc_tensor *ins[2] = {a, b};
  char msg[300];
  int ok = gradcheck(f_mul_scale, NULL, 2, ins, 1e-6, 1e-6, 1e-5, msg, sizeof msg);
  CHECK(ok);
  if (!ok) printf("  %s\n", msg);
  CHECK(lc_grad(a) == NULL); /* gradcheck leaves .grad alone */
  CHECK(!gradcheck(f_wrong, NULL, 1, ins, 1e-6, 1e-6, 1e-5, msg, sizeof msg));
  CHECK(strstr(msg, "FAILED") && strstr(msg, "input 0"));
  /* through the real op table */
  ok = gradcheck(f_real_mul, NULL, 2, ins, 1e-6, 1e-6, 1e-5, msg, sizeof msg);
  CHECK(ok);
  if (!ok) printf("  %s\n", msg);
  /* non-float64 / non-leaf inputs are refused */
  lc_tensor *y = ap1(&op_scale, a, &two), *bad[1] = {y};
  CHECK(!gradcheck(f_wrong, NULL, 1, bad, 1e-6, 1e-6, 1e-5, msg, sizeof msg));
  CHECK(strstr(msg, "float64 leaf") != NULL);
  lc_release(y);
  lc_release(b);
  lc_release(a);
}

/* ------------------------------------------------------------------ through the public API */

static lc_status f_public(void *ctx, lc_tensor *const *in, lc_tensor **out) {
  /* sum over dim 1 of (a * b + b) * exp(a), b broadcast from {3} */
  lc_tensor *m = NULL, *s = NULL, *e = NULL, *p = NULL;
  lc_status st = lc_binary(LC_MUL, in[0], in[1], &m);
  if (!st) st = lc_binary(LC_ADD, m, in[1], &s);
  if (!st) st = lc_unary(LC_EXP, in[0], &e);
  if (!st) st = lc_binary(LC_MUL, s, e, &p);
  lc_reduce_opts o = {.ndims = 1, .dims = {1}};
  if (!st) st = lc_reduce(LC_SUM, p, &o, out);
  lc_release(m);
  lc_release(s);
  lc_release(e);
  lc_release(p);
  return st;
}

TEST(ag_public_api_graphs) {
  int64_t s23[2] = {2, 3};
  double va[6] = {0.3, -1.2, 0.7, 2.0, -0.4, 1.1};
  lc_tensor *a = leaf(2, s23, va, true), *b = leaf(1, S3, V3, true);
  lc_tensor *ins[2] = {a, b};
  char msg[300];
  int ok = gradcheck(f_public, NULL, 2, ins, 1e-6, 1e-6, 1e-5, msg, sizeof msg);
  CHECK(ok);
  if (!ok) printf("  %s\n", msg);

  /* broadcast add: b's gradient is summed over the broadcast dim */
  lc_tensor *c = NULL, *l = NULL;
  CHECK_OK(lc_binary(LC_ADD, a, b, &c));
  CHECK(c && strcmp(lc_grad_fn_name(c), "AddBackward") == 0);
  CHECK_OK(lc_reduce(LC_SUM, c, &(lc_reduce_opts){0}, &l));
  CHECK_OK(lc_backward(l, NULL, false));
  CHECK(lc_grad(b) && lc_ndim(lc_grad(b)) == 1 && at(lc_grad(b), 0) == 2.0);
  CHECK(lc_grad(a) && at(lc_grad(a), 5) == 1.0);
  lc_release(l);
  lc_release(c);

  /* in-place through lc_binary_: modifying a saved tensor is caught */
  lc_tensor *w = NULL, *y = NULL, *ly = NULL;
  CHECK_OK(lc_full(1, S3, 3.0, LC_FLOAT64, &w));
  CHECK_OK(lc_binary(LC_MUL, b, w, &y));
  CHECK_OK(lc_reduce(LC_SUM, y, &(lc_reduce_opts){0}, &ly));
  CHECK_OK(lc_binary_scalar_(LC_ADD, w, 1.0));
  CHECK_STATUS(lc_backward(ly, NULL, false), LC_EGRAD);
  CHECK(strstr(lc_last_error(), "modified by an in-place operation") != NULL);
  /* in-place on the leaf itself */
  CHECK_STATUS(lc_binary_scalar_(LC_MUL, b, 2.0), LC_EGRAD);
  lc_release(ly);
  lc_release(y);
  lc_release(w);
  lc_release(b);
  lc_release(a);
}

/* The in-place leaf rule holds for a non-differentiable op too (PyTorch refuses it as well). */
TEST(ag_inplace_leaf_rule_for_nondifferentiable_ops) {
  int64_t n = 3;
  lc_tensor *x = NULL;
  CHECK_OK(lc_zeros(1, &n, LC_FLOAT32, &x));
  CHECK_OK(lc_set_requires_grad(x, true));
  CHECK_STATUS(lc_unary_(LC_LOGICAL_NOT, x), LC_EGRAD);
  CHECK(strstr(lc_last_error(), "logical_not_: a leaf tensor that requires grad") != NULL);
  bool prev = lc_set_grad_enabled(false);
  CHECK_OK(lc_unary_(LC_LOGICAL_NOT, x)); /* allowed under no_grad */
  lc_set_grad_enabled(prev);
  lc_release(x);
}

/* create_graph from C: d/dx sum(x^3) = 3x^2 comes back with a history, and its own gradient is
 * 6x; without LC_RETAIN_GRAPH the forward graph is gone after the first pass. */
TEST(ag_create_graph_second_derivative) {
  lc_tensor *x = leaf(1, S3, V3, true), *x2 = NULL, *x3 = NULL, *s = NULL;
  CHECK_OK(lc_binary(LC_MUL, x, x, &x2));
  CHECK_OK(lc_binary(LC_MUL, x2, x, &x3));
  lc_reduce_opts all = {0};
  CHECK_OK(lc_reduce(LC_SUM, x3, &all, &s));
  lc_tensor *g = NULL, *gs = NULL, *h = NULL;
  CHECK_OK(lc_autograd_grad_ex(1, &s, NULL, 1, &x, LC_CREATE_GRAPH | LC_RETAIN_GRAPH, &g));
  CHECK(g && lc_grad_fn_name(g) != NULL && lc_requires_grad(g));
  for (int j = 0; g && j < 3; j++)
    CHECK_NEAR(at(g, j), 3 * V3[j] * V3[j], 1e-12);
  CHECK_OK(lc_reduce(LC_SUM, g, &all, &gs));
  CHECK_OK(lc_autograd_grad_ex(1, &gs, NULL, 1, &x, 0, &h));
  for (int j = 0; h && j < 3; j++)
    CHECK_NEAR(at(h, j), 6 * V3[j], 1e-12);
  CHECK(h && lc_grad_fn_name(h) == NULL);
  /* that pass did not retain: the forward graph it went back through is freed */
  CHECK_STATUS(lc_backward_ex(s, NULL, LC_CREATE_GRAPH), LC_EGRAD);
  CHECK_OK(lc_set_grad(x, NULL)); /* what the failed pass accumulated before the freed node */
  /* lc_backward_ex: .grad gets the recorded gradient; clearing it breaks the x -> .grad -> graph
   * -> x cycle */
  lc_tensor *s2 = NULL, *sq = NULL;
  CHECK_OK(lc_binary(LC_MUL, x, x, &sq));
  CHECK_OK(lc_reduce(LC_SUM, sq, &all, &s2));
  CHECK_OK(lc_backward_ex(s2, NULL, LC_CREATE_GRAPH));
  CHECK(lc_grad(x) && lc_grad_fn_name(lc_grad(x)) != NULL);
  for (int j = 0; lc_grad(x) && j < 3; j++)
    CHECK_NEAR(at(lc_grad(x), j), 2 * V3[j], 1e-12);
  CHECK_OK(lc_set_grad(x, NULL));
  lc_release(s2);
  lc_release(sq);
  lc_release(h);
  lc_release(gs);
  lc_release(g);
  lc_release(s);
  lc_release(x3);
  lc_release(x2);
  lc_release(x);
}

/* lc_register_hook from C: a leaf's hook sees the summed gradient once and doubles it; after
 * lc_hook_handle_remove it no longer runs; ud is released with the hook. */
static int hook_calls, hook_freed;
static lc_status double_hook(void *ud, const lc_tensor *g, lc_tensor **rep) {
  (void)ud;
  hook_calls++;
  return lc_binary_scalar(LC_MUL, g, 2.0, false, rep);
}
static void count_free(void *ud) {
  (void)ud;
  hook_freed++;
}
TEST(ag_register_hook_c_api) {
  hook_calls = hook_freed = 0;
  lc_tensor *x = leaf(1, S3, V3, true), *y = NULL, *s = NULL;
  lc_hook_handle *hd = NULL;
  CHECK_OK(lc_register_hook(x, double_hook, NULL, count_free, &hd));
  CHECK_OK(lc_binary(LC_MUL, x, x, &y));
  lc_reduce_opts all = {0};
  CHECK_OK(lc_reduce(LC_SUM, y, &all, &s));
  CHECK_OK(lc_backward(s, NULL, true));
  CHECK(hook_calls == 1);
  for (int j = 0; lc_grad(x) && j < 3; j++)
    CHECK_NEAR(at(lc_grad(x), j), 4 * V3[j], 1e-12);
  lc_hook_handle_remove(hd);
  CHECK(hook_freed == 1);
  CHECK_OK(lc_set_grad(x, NULL));
  CHECK_OK(lc_backward(s, NULL, false));
  CHECK(hook_calls == 1);
  for (int j = 0; lc_grad(x) && j < 3; j++)
    CHECK_NEAR(at(lc_grad(x), j), 2 * V3[j], 1e-12);
  lc_hook_handle_free(hd);
  /* a hook left registered is released with its tensor */
  CHECK_OK(lc_register_hook(x, double_hook, NULL, count_free, &hd));
  lc_hook_handle_free(hd);
  CHECK(hook_freed == 1);
  lc_release(s);
  lc_release(y);
  lc_release(x);
  CHECK(hook_freed == 2);
}

/* An op whose definition has no backward_graph (op_sum here): create_graph through it is an
 * LC_EGRAD error naming it, and a plain backward still works afterwards. */
TEST(ag_create_graph_without_backward_graph) {
  lc_tensor *x = leaf(1, S3, V3, true), *y = NULL, *g = NULL;
  lc_tensor *in[1] = {x};
  CHECK_OK(lc_apply(&op_sum, 1, in, NULL, &y));
  CHECK_STATUS(lc_autograd_grad_ex(1, &y, NULL, 1, &x, LC_CREATE_GRAPH | LC_RETAIN_GRAPH, &g),
               LC_EGRAD);
  CHECK(strstr(lc_last_error(), "SumBackward: higher-order gradients (create_graph = true) are "
                                "not implemented for sum yet") != NULL);
  CHECK_OK(lc_autograd_grad(1, &y, NULL, 1, &x, false, false, &g));
  for (int j = 0; g && j < 3; j++)
    CHECK_NEAR(at(g, j), 1.0, 1e-12);
  lc_release(g);
  lc_release(y);
  lc_release(x);
}
