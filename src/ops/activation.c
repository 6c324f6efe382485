/*
 * activation.c - public entry points of the activation family (include/lucid_activation.h):
 * argument checks, then one op through lc_apply so autograd records it. The kernels, forward
 * and backward side by side, are in src/kernels/activation.c.
 */
#include "lucid_activation.h"

#include "../autograd/autograd.h"
#include "activation.h"
#include "check_io.h"

#include <math.h>
#include <string.h>

lc_status lc_act_apply(int code, const lc_tensor *x, const double *p, lc_tensor **out) {
  if (code < 0 || code >= LC_ACT_COUNT)
    return lc_set_error(LC_EARG, "activation: no activation with code %d", code);
  const lc_op_def *op = &lc_op_act[code];
  lc_status st = check_io(op->name, x, "x", out);
  if (st) return st;
  lc_op_args a = {.f = {p[0], p[1]}};
  lc_tensor *in[1] = {(lc_tensor *)x};
  return lc_apply(op, 1, in, &a, out); /* the op checks the parameters (lc_act_check) */
}

/* lc_<name>(x, [p0, [p1,]] out) for every row of activation_list.h, by parameter count. */
#define ACT_ENTRY_0(CODE, NAME, P0, P1)                                                            \
  lc_status lc_##NAME(const lc_tensor *x, lc_tensor **out) {                                       \
    return lc_act_apply(LC_ACT_##CODE, x, (const double[2]){0, 0}, out);                                    \
  }
#define ACT_ENTRY_1(CODE, NAME, P0, P1)                                                            \
  lc_status lc_##NAME(const lc_tensor *x, LC_ACT_P_TYPE(P0) p0, lc_tensor **out) {                 \
    return lc_act_apply(LC_ACT_##CODE, x, (const double[2]){(double)p0, 0}, out);                           \
  }
#define ACT_ENTRY_2(CODE, NAME, P0, P1)                                                            \
  lc_status lc_##NAME(const lc_tensor *x, LC_ACT_P_TYPE(P0) p0, LC_ACT_P_TYPE(P1) p1,             \
                      lc_tensor **out) {                                                           \
    return lc_act_apply(LC_ACT_##CODE, x, (const double[2]){(double)p0, (double)p1}, out);                  \
  }
#define ACT_ENTRY(CODE, NAME, Module, GradFn, cost, INPLACE, NP, P0, P1)                          \
  ACT_ENTRY_##NP(CODE, NAME, P0, P1)
LC_ACTIVATION_LIST(ACT_ENTRY)

/* ------------------------------------------------------------------ softmax */

static lc_status softmax_like(const lc_op_def *op, const lc_tensor *x, int dim, lc_tensor **out) {
  lc_status st = check_io(op->name, x, "x", out);
  if (!st) st = lc_wrap_dim(&dim, x->ndim, op->name);
  if (st) return st;
  lc_op_args a = {.i = {dim}, .ni = 1};
  lc_tensor *in[1] = {(lc_tensor *)x};
  return lc_apply(op, 1, in, &a, out);
}

lc_status lc_softmax(const lc_tensor *x, int dim, lc_tensor **out) {
  return softmax_like(&lc_op_softmax, x, dim, out);
}

lc_status lc_log_softmax(const lc_tensor *x, int dim, lc_tensor **out) {
  return softmax_like(&lc_op_log_softmax, x, dim, out);
}
