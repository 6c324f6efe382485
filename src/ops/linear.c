/* linear.c - the public entry points of the linear family's ops (src/kernels/linear.c):
 * lc_linear (the fused linear op) and lc_bilinear. */
#include "../kernels/linear.h"
#include "../autograd/autograd.h"
#include "check_io.h"

lc_status lc_linear(const lc_tensor *x, const lc_tensor *weight, const lc_tensor *bias,
                    lc_tensor **out) {
  if (!x || !weight || !out)
    return lc_set_error(LC_EARG, "linear: input, weight and out must not be NULL");
  lc_status st = lc_k_linear_check(x, weight, bias);
  if (st) return st;
  lc_tensor *in[3] = {(lc_tensor *)x, (lc_tensor *)weight, (lc_tensor *)bias};
  return lc_apply(&lc_op_linear, bias ? 3 : 2, in, NULL, out);
}

lc_status lc_bilinear(const lc_tensor *x1, const lc_tensor *x2, const lc_tensor *weight,
                      const lc_tensor *bias, lc_tensor **out) {
  lc_status st = check_io("bilinear", x1, "x1", out);
  if (!st) st = check_io("bilinear", x2, "x2", out);
  if (!st) st = check_io("bilinear", weight, "weight", out);
  if (st) return st;
  lc_tensor *in[4] = {(lc_tensor *)x1, (lc_tensor *)x2, (lc_tensor *)weight, (lc_tensor *)bias};
  return lc_apply(&lc_op_bilinear, bias ? 4 : 3, in, NULL, out);
}
