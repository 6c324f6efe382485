/* linear.c - lc_linear, the public entry of the fused linear op (src/kernels/linear.c). */
#include "../autograd/autograd.h"
#include "../kernels/linear.h"

lc_status lc_linear(const lc_tensor *x, const lc_tensor *weight, const lc_tensor *bias,
                    lc_tensor **out) {
  if (!x || !weight || !out)
    return lc_set_error(LC_EARG, "linear: input, weight and out must not be NULL");
  lc_status st = lc_k_linear_check(x, weight, bias);
  if (st) return st;
  lc_tensor *in[3] = {(lc_tensor *)x, (lc_tensor *)weight, (lc_tensor *)bias};
  return lc_apply(&lc_op_linear, bias ? 3 : 2, in, NULL, out);
}
