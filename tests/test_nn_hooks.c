/* test_nn_hooks.c - module hooks from C: a pre-hook replacing the input, a forward hook
 * replacing the output, a full backward hook scaling grad_input, inside a Sequential. */
#include "test.h"

#include "lucid_nn.h"

#include <stdlib.h>

static int pre_calls, fwd_calls, bwd_calls, freed;

static lc_status neg_pre(void *ud, lc_module *m, const lc_tensor *x, lc_tensor **rep) {
  (void)ud;
  (void)m;
  pre_calls++;
  return lc_unary(LC_NEG, x, rep);
}
static lc_status plus_one(void *ud, lc_module *m, const lc_tensor *x, const lc_tensor *y,
                          lc_tensor **rep) {
  (void)ud;
  (void)m;
  (void)x;
  fwd_calls++;
  return lc_binary_scalar(LC_ADD, y, 1.0, false, rep);
}
static lc_status half_grad(void *ud, lc_module *m, const lc_tensor *gi, const lc_tensor *go,
                           lc_tensor **rep) {
  (void)ud;
  (void)m;
  bwd_calls++;
  if (!gi || !go) return lc_set_error(LC_EARG, "expected both gradients");
  return lc_binary_scalar(LC_MUL, gi, 0.5, false, rep);
}
static void count_free(void *ud) {
  (void)ud;
  freed++;
}

TEST(nn_module_hooks_c_api) {
  pre_calls = fwd_calls = bwd_calls = freed = 0;
  lc_module *relu = NULL, *seq = NULL;
  CHECK_OK(lc_nn_relu(&relu));
  CHECK_OK(lc_nn_sequential(1, &relu, NULL, &seq));
  lc_hook_handle *h1 = NULL, *h2 = NULL, *h3 = NULL;
  CHECK_OK(lc_module_register_forward_pre_hook(relu, neg_pre, NULL, count_free, &h1));
  CHECK_OK(lc_module_register_forward_hook(relu, plus_one, NULL, count_free, &h2));
  CHECK_OK(lc_module_register_full_backward_hook(relu, half_grad, NULL, count_free, &h3));
  CHECK(lc_module_has_hooks(relu));
  const double X[3] = {-1, 2, -3};
  int64_t n = 3;
  lc_tensor *x = NULL, *y = NULL, *s = NULL;
  CHECK_OK(lc_from_data(1, &n, LC_FLOAT64, X, &x));
  CHECK_OK(lc_set_requires_grad(x, true));
  CHECK_OK(lc_module_forward(seq, x, &y)); /* relu(-x) + 1 = {2, 1, 4} */
  double *v = y ? test_values(y) : NULL;
  CHECK(v && v[0] == 2 && v[1] == 1 && v[2] == 4);
  free(v);
  lc_reduce_opts all = {0};
  CHECK_OK(lc_reduce(LC_SUM, y, &all, &s));
  CHECK_OK(lc_backward(s, NULL, false));
  /* d/dx relu(-x) = -1 where -x > 0; the hook halves grad_input of the ReLU (before the neg) */
  v = lc_grad(x) ? test_values(lc_grad(x)) : NULL;
  CHECK(v && v[0] == -0.5 && v[1] == 0 && v[2] == -0.5);
  free(v);
  CHECK(pre_calls == 1 && fwd_calls == 1 && bwd_calls == 1);
  lc_hook_handle_remove(h1);
  lc_hook_handle_remove(h2);
  lc_hook_handle_remove(h3);
  CHECK(freed == 3 && !lc_module_has_hooks(relu));
  lc_hook_handle_free(h1);
  lc_hook_handle_free(h2);
  lc_hook_handle_free(h3);
  lc_release(s);
  lc_release(y);
  lc_release(x);
  lc_module_release(seq);
  lc_module_release(relu);
}
