/*
 * dropout.c - public entry point of the dropout family (include/lucid_dropout.h): argument
 * checks, the random stream reserved, then the op through lc_apply so autograd records it. The
 * kernel, forward and backward side by side, is in src/kernels/dropout.c.
 */
#include "lucid_dropout.h"

#include "../autograd/autograd.h"
#include "../kernels/dropout.h"
#include "check_io.h"
#include "dropout.h"

lc_status lc_dropout_check_p(const char *fn, double p) {
  if (!(p >= 0 && p <= 1))
    return lc_set_error(LC_EARG, "%s: dropout probability has to be between 0 and 1, but got %g",
                        fn, p);
  return LC_OK;
}

lc_status lc_dropout(const lc_tensor *x, double p, bool training, lc_tensor **out) {
  lc_status st = check_io("dropout", x, "x", out);
  if (st) return st;
  if ((st = lc_dropout_check_p("dropout", p))) return st;
  if (!lc_dtype_is_float(x->dtype))
    return lc_set_error(LC_EDTYPE, "dropout: expected a float32 or float64 input, got %s",
                        lc_dtype_name(x->dtype));
  if (!training) {
    *out = lc_retain((lc_tensor *)x);
    return LC_OK;
  }
  /* One 64-bit draw serves two elements (two 32-bit uniforms). */
  uint64_t seed = 0;
  uint64_t base = lc_rng_reserve((uint64_t)(x->numel + 1) / 2, &seed);
  lc_op_args a = {.f = {p}, .i = {(int64_t)seed, (int64_t)base}, .ni = 2};
  lc_tensor *in[1] = {(lc_tensor *)x}, *res[2] = {NULL, NULL};
  if ((st = lc_apply(&lc_op_dropout, 1, in, &a, res))) return st;
  lc_release(res[1]); /* the mask: the graph keeps its own alias when it needs it */
  *out = res[0];
  return LC_OK;
}
