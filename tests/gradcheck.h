/*
 * gradcheck.h - numeric gradient checking for C tests.
 *
 * Usage (inside a TEST):
 *
 *   static lc_status f(void *ctx, lc_tensor *const *in, lc_tensor **out) {
 *     return lc_binary(LC_MUL, in[0], in[1], out);     // any differentiable computation
 *   }
 *   ...
 *   lc_tensor *x, *y;                                  // float64 leaves
 *   lc_randn(2, shape, LC_FLOAT64, &x); lc_set_requires_grad(x, true);  (same for y)
 *   lc_tensor *ins[] = {x, y};
 *   char msg[256];
 *   CHECK(gradcheck(f, NULL, 2, ins, 1e-6, 1e-5, 1e-4, msg, sizeof msg) || printf("%s\n", msg));
 *
 * It compares the analytic gradient of sum(f(inputs) * w), for a fixed pseudo-random w
 * (obtained with lc_autograd_grad, so .grad is untouched), against central differences
 * (f(x + eps) - f(x - eps)) / 2eps computed element by element. An element passes when
 * |analytic - numeric| <= atol + rtol * |numeric|. Returns 1 on success, 0 on failure; msg
 * then names the worst input and element (or the error that stopped the check).
 * Inputs must be float64 tensors that require grad and have no history (leaves). Inputs may
 * be non-contiguous; f is called with grad mode on once, then with grad mode off.
 */
#ifndef LUCID_TESTS_GRADCHECK_H
#define LUCID_TESTS_GRADCHECK_H

#include "lucid.h"

#include <stddef.h>

typedef lc_status (*gradcheck_fn)(void *ctx, lc_tensor *const *in, lc_tensor **out);

int gradcheck(gradcheck_fn fn, void *ctx, int n, lc_tensor *const *inputs, double eps, double atol,
              double rtol, char *msg, size_t cap);

#endif
