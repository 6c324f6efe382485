/* gradcheck.c - analytic vs numeric gradients (see gradcheck.h). */
#include "gradcheck.h"

#include "../src/core/core.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* Element offset (from lc_data) of flat C-order index j. */
static int64_t elem_offset(const lc_tensor *t, int64_t j) {
  int64_t off = 0;
  for (int d = t->ndim - 1; d >= 0; d--) {
    off += (j % t->shape[d]) * t->strides[d];
    j /= t->shape[d];
  }
  return off;
}

/* sum(out * w) in double; w is contiguous float64 with out's shape. */
static double weighted_sum(const lc_tensor *out, const double *w) {
  double s = 0;
  const void *d = lc_data(out);
  for (int64_t j = 0; j < out->numel; j++)
    s += lc_load_f64(d, out->dtype, elem_offset(out, j)) * w[j];
  return s;
}

static double eval(gradcheck_fn fn, void *ctx, lc_tensor *const *inputs, const double *w,
                   lc_status *st) {
  lc_tensor *out = NULL;
  *st = fn(ctx, inputs, &out);
  if (*st) return NAN;
  double s = weighted_sum(out, w);
  lc_release(out);
  return s;
}

int gradcheck(gradcheck_fn fn, void *ctx, int n, lc_tensor *const *inputs, double eps, double atol,
              double rtol, char *msg, size_t cap) {
  if (cap) msg[0] = 0;
  for (int i = 0; i < n; i++) {
    const lc_tensor *x = inputs[i];
    if (x->dtype != LC_FLOAT64 || !x->requires_grad || x->grad_fn) {
      snprintf(msg, cap, "gradcheck: input %d must be a float64 leaf that requires grad", i);
      return 0;
    }
  }
  int ok = 0;
  lc_tensor *out = NULL, **grads = calloc((size_t)n, sizeof *grads), *wt = NULL;
  double *w = NULL;
  bool prev = lc_set_grad_enabled(true);
  lc_status st = fn(ctx, inputs, &out);
  if (st) {
    snprintf(msg, cap, "gradcheck: f failed: %s", lc_last_error());
    goto done;
  }
  if (!lc_dtype_is_float(out->dtype)) {
    snprintf(msg, cap, "gradcheck: f returned a %s tensor", lc_dtype_name(out->dtype));
    goto done;
  }
  /* fixed weights in [0.5, 1.5) with random signs, from a local LCG (leaves lc's RNG alone) */
  w = malloc((size_t)(out->numel ? out->numel : 1) * sizeof *w);
  uint64_t s = 0x2545F4914F6CDD1Dull;
  for (int64_t j = 0; j < out->numel; j++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    double u = (double)(s >> 11) / 9007199254740992.0;
    w[j] = (s >> 7 & 1 ? 1 : -1) * (0.5 + u);
  }
  if ((st = lc_from_data(out->ndim, out->shape, LC_FLOAT64, w, &wt))) {
    snprintf(msg, cap, "gradcheck: %s", lc_last_error());
    goto done;
  }
  if (!out->requires_grad) {
    snprintf(msg, cap, "gradcheck: the output does not require grad (no graph recorded)");
    goto done;
  }
  st = lc_autograd_grad(1, &out, &wt, n, inputs, false, true, grads);
  if (st) {
    snprintf(msg, cap, "gradcheck: autograd_grad failed: %s", lc_last_error());
    goto done;
  }

  lc_set_grad_enabled(false);
  double worst = -1;
  ok = 1;
  for (int i = 0; i < n && ok >= 0; i++) {
    lc_tensor *x = inputs[i];
    double *xd = lc_data(x);
    for (int64_t j = 0; j < x->numel; j++) {
      int64_t off = elem_offset(x, j);
      double orig = xd[off];
      xd[off] = orig + eps;
      lc_bump_version(x);
      double fp = eval(fn, ctx, inputs, w, &st);
      xd[off] = orig - eps;
      lc_bump_version(x);
      double fm = st ? NAN : eval(fn, ctx, inputs, w, &st);
      xd[off] = orig;
      lc_bump_version(x);
      if (st) {
        snprintf(msg, cap, "gradcheck: f failed while perturbing input %d: %s", i, lc_last_error());
        ok = -1;
        break;
      }
      double num = (fp - fm) / (2 * eps);
      double ana = grads[i]
                       ? lc_load_f64(lc_data(grads[i]), grads[i]->dtype, elem_offset(grads[i], j))
                       : 0.0;
      double diff = fabs(ana - num), tol = atol + rtol * fabs(num);
      double excess = diff / tol;
      bool bad = !(diff <= tol);
      if (bad) {
        ok = 0;
        if (isnan(excess)) excess = INFINITY;
      }
      if (excess > worst) {
        worst = excess;
        snprintf(msg, cap,
                 "gradcheck: %s: worst is input %d element %lld (flat): analytic %.9g, numeric "
                 "%.9g, |diff| %.3g (tolerance %.3g)",
                 bad ? "FAILED" : "passed", i, (long long)j, ana, num, diff, tol);
      }
    }
  }
  if (ok < 0) ok = 0;
done:
  lc_set_grad_enabled(prev);
  for (int i = 0; i < n; i++)
    lc_release(grads[i]);
  free(grads);
  free(w);
  lc_release(wt);
  lc_release(out);
  return ok;
}
