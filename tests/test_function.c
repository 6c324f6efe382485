/* test_function.c - custom autograd functions from C (lc_function_record): two outputs, the
 * payload's lifetime, non-differentiable outputs, an input modified in place, errors, and a
 * saved output differentiated again under LC_CREATE_GRAPH. */
#include "test.h"

#include <stdlib.h>
#include <string.h>

static double at(const lc_tensor *t, int64_t j) {
  double *v = test_values(t);
  double r = v ? v[j] : NAN;
  free(v);
  return r;
}

static lc_tensor *vec(const double *v, int64_t n, bool requires_grad) {
  lc_tensor *t = NULL;
  if (lc_from_data(1, &n, LC_FLOAT64, v, &t) != LC_OK) return NULL;
  if (requires_grad) lc_set_requires_grad(t, true);
  return t;
}

typedef struct payload {
  int *freed;
  lc_tensor *x, *y; /* inputs, owned */
  bool fail;
} payload;

static void payload_free(void *p) {
  payload *pl = p;
  (*pl->freed)++;
  lc_release(pl->x);
  lc_release(pl->y);
  free(pl);
}

/* outputs a = 2x, b = x * y: da = 2 ga + y gb, db = x gb */
static lc_status two_backward(const lc_function_ctx *ctx, void *p, int n_out, lc_tensor *const *g,
                              int n_in, const bool *needs, lc_tensor **gin) {
  (void)ctx;
  payload *pl = p;
  if (pl->fail) return lc_set_error(LC_EGRAD, "planted failure");
  if (n_out != 2 || n_in != 2) return lc_set_error(LC_EARG, "wrong counts");
  lc_tensor *t1 = NULL, *t2 = NULL;
  lc_status st = LC_OK;
  if (needs[0]) {
    st = lc_binary_scalar(LC_MUL, g[0], 2.0, false, &t1);
    if (!st) st = lc_binary(LC_MUL, g[1], pl->y, &t2);
    if (!st) st = lc_binary(LC_ADD, t1, t2, &gin[0]);
  }
  if (!st && needs[1]) st = lc_binary(LC_MUL, g[1], pl->x, &gin[1]);
  lc_release(t1);
  lc_release(t2);
  return st;
}

static const lc_function_def two_def = {two_backward, payload_free};

static lc_status two_forward(lc_tensor *x, lc_tensor *y, int *freed, bool fail, lc_tensor **a,
                             lc_tensor **b, const bool *diff) {
  bool prev = lc_set_grad_enabled(false);
  lc_status st = lc_binary_scalar(LC_MUL, x, 2.0, false, a);
  if (!st) st = lc_binary(LC_MUL, x, y, b);
  lc_set_grad_enabled(prev);
  if (st) return st;
  payload *pl = malloc(sizeof *pl);
  pl->freed = freed;
  pl->x = lc_retain(x);
  pl->y = lc_retain(y);
  pl->fail = fail;
  lc_tensor *in[2] = {x, y}, *out[2] = {*a, *b};
  return lc_function_record(&two_def, "TwoBackward", pl, 2, in, 2, out, diff);
}

TEST(function_two_outputs) {
  const double X[3] = {1, 2, 3}, Y[3] = {-1, 0.5, 4};
  int freed = 0;
  lc_tensor *x = vec(X, 3, true), *y = vec(Y, 3, true), *a = NULL, *b = NULL, *s = NULL;
  lc_tensor *sa = NULL, *sb = NULL;
  CHECK_OK(two_forward(x, y, &freed, false, &a, &b, NULL));
  CHECK(a && lc_grad_fn_name(a) && strcmp(lc_grad_fn_name(a), "TwoBackward") == 0);
  CHECK(b && lc_grad_fn_name(b) && strcmp(lc_grad_fn_name(b), "TwoBackward") == 0);
  lc_reduce_opts all = {0};
  /* loss = sum(a) + 3 sum(b) */
  CHECK_OK(lc_reduce(LC_SUM, a, &all, &sa));
  CHECK_OK(lc_reduce(LC_SUM, b, &all, &sb));
  lc_tensor *sb3 = NULL;
  CHECK_OK(lc_binary_scalar(LC_MUL, sb, 3.0, false, &sb3));
  CHECK_OK(lc_binary(LC_ADD, sa, sb3, &s));
  CHECK_OK(lc_backward(s, NULL, false));
  for (int j = 0; j < 3; j++) {
    CHECK(lc_grad(x) && fabs(at(lc_grad(x), j) - (2 + 3 * Y[j])) < 1e-12);
    CHECK(lc_grad(y) && fabs(at(lc_grad(y), j) - 3 * X[j]) < 1e-12);
  }
  CHECK(freed == 1); /* released by the backward (no retain_graph) */
  CHECK(lc_backward(s, NULL, false) == LC_EGRAD);
  CHECK(strstr(lc_last_error(), "second time") != NULL);
  lc_release(s);
  lc_release(sb3);
  lc_release(sa);
  lc_release(sb);

  /* only b reaches the loss: a's gradient arrives as zeros */
  CHECK_OK(lc_set_grad(x, NULL));
  CHECK_OK(lc_set_grad(y, NULL));
  lc_release(a);
  lc_release(b);
  CHECK_OK(two_forward(x, y, &freed, false, &a, &b, NULL));
  CHECK_OK(lc_reduce(LC_SUM, b, &all, &sb));
  CHECK_OK(lc_backward(sb, NULL, true));
  for (int j = 0; j < 3; j++)
    CHECK(lc_grad(x) && fabs(at(lc_grad(x), j) - Y[j]) < 1e-12);
  CHECK(freed == 1); /* retained */
  lc_release(sb);
  lc_release(a);
  lc_release(b);
  CHECK(freed == 2); /* the graph died */

  /* a non-differentiable output gets no history */
  bool diff[2] = {true, false};
  CHECK_OK(two_forward(x, y, &freed, false, &a, &b, diff));
  CHECK(lc_requires_grad(a) && !lc_requires_grad(b) && lc_grad_fn_name(b) == NULL);
  lc_release(a);
  lc_release(b);
  CHECK(freed == 3);

  /* nothing to record: the payload is freed at once */
  bool prev = lc_set_grad_enabled(false);
  CHECK_OK(two_forward(x, y, &freed, false, &a, &b, NULL));
  lc_set_grad_enabled(prev);
  CHECK(freed == 4 && !lc_requires_grad(a));
  lc_release(a);
  lc_release(b);

  /* a failing backward: its error, prefixed with the node's name; the runtime goes on */
  CHECK_OK(two_forward(x, y, &freed, true, &a, &b, NULL));
  CHECK_OK(lc_reduce(LC_SUM, a, &all, &sa));
  CHECK(lc_backward(sa, NULL, false) == LC_EGRAD);
  CHECK(strstr(lc_last_error(), "TwoBackward: planted failure") != NULL);
  lc_release(sa);
  lc_release(a);
  lc_release(b);
  CHECK(freed == 5);
  lc_release(x);
  lc_release(y);
}

/* exp as a custom function that saves its output: under LC_CREATE_GRAPH the saved output gets
 * its history back (lc_function_saved_output), so d2/dx2 exp = exp */
static lc_status exp_backward(const lc_function_ctx *ctx, void *p, int n_out, lc_tensor *const *g,
                              int n_in, const bool *needs, lc_tensor **gin) {
  (void)n_out;
  (void)n_in;
  (void)needs;
  lc_tensor *y = NULL;
  lc_status st = lc_function_saved_output(ctx, 0, p, &y);
  if (!st) st = lc_binary(LC_MUL, g[0], y, &gin[0]);
  lc_release(y);
  return st;
}
static void exp_free(void *p) { lc_release(p); }
static const lc_function_def exp_def = {exp_backward, exp_free};

TEST(function_saved_output_double_backward) {
  const double X[2] = {0.3, -1.2};
  lc_tensor *x = vec(X, 2, true), *y = NULL, *s = NULL, *alias = NULL;
  bool prev = lc_set_grad_enabled(false);
  CHECK_OK(lc_unary(LC_EXP, x, &y));
  lc_set_grad_enabled(prev);
  CHECK_OK(lc_detach(y, &alias));
  CHECK_OK(lc_function_record(&exp_def, "MyExpBackward", alias, 1, &x, 1, &y, NULL));
  lc_reduce_opts all = {0};
  CHECK_OK(lc_reduce(LC_SUM, y, &all, &s));
  lc_tensor *g = NULL, *gs = NULL, *gg = NULL;
  CHECK_OK(lc_autograd_grad_ex(1, &s, NULL, 1, &x, LC_CREATE_GRAPH | LC_RETAIN_GRAPH, &g));
  CHECK(g && lc_requires_grad(g));
  if (g) CHECK_OK(lc_reduce(LC_SUM, g, &all, &gs));
  if (gs) CHECK_OK(lc_autograd_grad(1, &gs, NULL, 1, &x, false, false, &gg));
  for (int j = 0; gg && j < 2; j++)
    CHECK(fabs(at(gg, j) - exp(X[j])) < 1e-12);
  lc_release(gg);
  lc_release(gs);
  lc_release(g);
  lc_release(s);
  lc_release(y);
  lc_release(x);
}

/* an input modified in place and returned is rebased onto the node; a leaf that requires grad
 * cannot be; an output with a history is refused */
TEST(function_dirty_input_and_checks) {
  const double X[2] = {1, 2};
  int freed = 0;
  lc_tensor *x = vec(X, 2, true), *h = NULL, *s = NULL;
  CHECK_OK(lc_binary_scalar(LC_MUL, x, 3.0, false, &h)); /* h = 3x, has history */
  bool prev = lc_set_grad_enabled(false);
  lc_tensor *two = NULL;
  CHECK_OK(lc_full(0, NULL, 2.0, LC_FLOAT64, &two));
  CHECK_OK(lc_binary_(LC_MUL, h, two)); /* h *= 2 in place, unrecorded */
  lc_set_grad_enabled(prev);
  payload *pl = calloc(1, sizeof *pl);
  pl->freed = &freed;
  pl->x = vec(X, 2, false);
  pl->y = vec(X, 2, false);
  /* the node replaced h's history (its backward is not run here) */
  lc_tensor *in[1] = {h}, *out[1] = {h};
  CHECK_OK(lc_function_record(&two_def, "DirtyBackward", pl, 1, in, 1, out, NULL));
  CHECK(lc_grad_fn_name(h) && strcmp(lc_grad_fn_name(h), "DirtyBackward") == 0);
  lc_release(h);
  CHECK(freed == 1);

  /* a leaf that requires grad cannot be the output */
  pl = calloc(1, sizeof *pl);
  pl->freed = &freed;
  in[0] = out[0] = x;
  CHECK(lc_function_record(&two_def, "LeafBackward", pl, 1, in, 1, out, NULL) == LC_EGRAD);
  CHECK(strstr(lc_last_error(), "leaf tensor that requires grad") != NULL);
  CHECK(freed == 2);
  /* an output that already has a history */
  CHECK_OK(lc_binary_scalar(LC_MUL, x, 3.0, false, &s));
  pl = calloc(1, sizeof *pl);
  pl->freed = &freed;
  in[0] = x;
  out[0] = s;
  CHECK(lc_function_record(&two_def, "HistBackward", pl, 1, in, 1, out, NULL) == LC_EGRAD);
  CHECK(strstr(lc_last_error(), "already has a history") != NULL);
  CHECK(freed == 3);
  lc_release(s);
  lc_release(two);
  lc_release(x);
}
