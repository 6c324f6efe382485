/*
 * utils.c - nn.utils (include/lucid_init.h): gradient clipping and parameters <-> vector.
 */
#include "lucid_init.h"

#include "../core/alloc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static lc_status check_list(const char *fn, int n, lc_tensor *const *params) {
  if (n < 0) return lc_set_error(LC_EARG, "%s: negative parameter count %d", fn, n);
  if (n > 0 && !params) return lc_set_error(LC_EARG, "%s: params is NULL", fn);
  for (int i = 0; i < n; i++)
    if (!params[i]) return lc_set_error(LC_EARG, "%s: parameter %d is NULL", fn, i);
  return LC_OK;
}

/* sum |g|^p (p finite) or max |g| (p infinite) of one gradient, in double. */
static lc_status grad_norm_part(const lc_tensor *g, double p, double *out) {
  int64_t n = lc_numel(g);
  double *v = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
  if (!v) return lc_set_error(LC_ENOMEM, "clip_grad_norm_: out of memory");
  lc_status st = n > 0 ? lc_copy_to_buffer(g, LC_FLOAT64, v) : LC_OK;
  double s = 0;
  if (!st) {
    if (isinf(p)) {
      for (int64_t i = 0; i < n; i++) {
        double a = fabs(v[i]);
        s = a > s || a != a ? a : s; /* nan propagates */
      }
    } else if (p == 2) {
      for (int64_t i = 0; i < n; i++)
        s += v[i] * v[i];
    } else if (p == 1) {
      for (int64_t i = 0; i < n; i++)
        s += fabs(v[i]);
    } else {
      for (int64_t i = 0; i < n; i++)
        s += pow(fabs(v[i]), p);
    }
  }
  free(v);
  *out = s;
  return st;
}

lc_status lc_clip_grad_norm_(int n, lc_tensor *const *params, double max_norm, double norm_type,
                             bool error_if_nonfinite, double *total_norm) {
  const char *fn = "clip_grad_norm_";
  lc_status st = check_list(fn, n, params);
  if (st) return st;
  if (!total_norm) return lc_set_error(LC_EARG, "%s: total_norm is NULL", fn);
  if (!(norm_type > 0))
    return lc_set_error(LC_EARG, "%s: norm_type must be positive (or inf), got %g", fn, norm_type);
  if (isnan(max_norm)) return lc_set_error(LC_EARG, "%s: max_norm is nan", fn);
  bool inf = isinf(norm_type);
  double acc = 0;
  int ngrads = 0;
  for (int i = 0; i < n && !st; i++) {
    const lc_tensor *g = lc_grad(params[i]);
    if (!g) continue;
    ngrads++;
    double part = 0;
    st = grad_norm_part(g, norm_type, &part);
    if (inf)
      acc = part > acc || part != part ? part : acc;
    else
      acc += part;
  }
  if (st) return st;
  if (ngrads == 0) {
    *total_norm = 0;
    return LC_OK;
  }
  double total = inf ? acc : (norm_type == 2 ? sqrt(acc) : pow(acc, 1.0 / norm_type));
  if (error_if_nonfinite && !isfinite(total))
    return lc_set_error(LC_EARG,
                        "%s: the total norm of order %g for gradients is non-finite, so it "
                        "cannot be clipped; pass error_if_nonfinite = false to clip anyway",
                        fn, norm_type);
  double coef = max_norm / (total + 1e-6);
  if (coef > 1) coef = 1; /* clamp(max = 1): nan stays nan, as in PyTorch */
  bool prev = lc_set_grad_enabled(false);
  for (int i = 0; i < n && !st; i++) {
    lc_tensor *g = lc_grad(params[i]);
    if (g) st = lc_binary_scalar_(LC_MUL, g, coef);
  }
  lc_set_grad_enabled(prev);
  if (!st) *total_norm = total;
  return st;
}

lc_status lc_clip_grad_value_(int n, lc_tensor *const *params, double clip_value) {
  const char *fn = "clip_grad_value_";
  lc_status st = check_list(fn, n, params);
  if (st) return st;
  if (!(clip_value >= 0))
    return lc_set_error(LC_EARG, "%s: clip_value must be >= 0, got %g", fn, clip_value);
  bool prev = lc_set_grad_enabled(false);
  for (int i = 0; i < n && !st; i++) {
    lc_tensor *g = lc_grad(params[i]);
    if (g) st = lc_clamp_(g, true, -clip_value, true, clip_value);
  }
  lc_set_grad_enabled(prev);
  return st;
}

lc_status lc_parameters_to_vector(int n, lc_tensor *const *params, lc_tensor **out) {
  const char *fn = "parameters_to_vector";
  lc_status st = check_list(fn, n, params);
  if (st) return st;
  if (!out) return lc_set_error(LC_EARG, "%s: out is NULL", fn);
  if (n <= 0) return lc_set_error(LC_EARG, "%s: expected at least one parameter, got none", fn);
  for (int i = 1; i < n; i++)
    if (lc_dtype_of(params[i]) != lc_dtype_of(params[0]))
      return lc_set_error(LC_EDTYPE, "%s: parameter %d is %s but parameter 0 is %s", fn, i,
                          lc_dtype_name(lc_dtype_of(params[i])),
                          lc_dtype_name(lc_dtype_of(params[0])));
  lc_tensor **flat = calloc((size_t)n, sizeof *flat);
  if (!flat) return lc_set_error(LC_ENOMEM, "%s: out of memory", fn);
  int64_t minus1 = -1;
  for (int i = 0; i < n && !st; i++)
    st = lc_reshape(params[i], 1, &minus1, &flat[i]);
  if (!st) st = lc_cat(n, flat, 0, out);
  for (int i = 0; i < n; i++)
    lc_release(flat[i]);
  free(flat);
  return st;
}

lc_status lc_vector_to_parameters(const lc_tensor *vec, int n, lc_tensor *const *params) {
  const char *fn = "vector_to_parameters";
  lc_status st = check_list(fn, n, params);
  if (st) return st;
  if (!vec) return lc_set_error(LC_EARG, "%s: vec is NULL", fn);
  if (lc_ndim(vec) != 1)
    return lc_set_error(LC_ESHAPE, "%s: expected a 1-D vector, got %d dims", fn, lc_ndim(vec));
  int64_t total = 0;
  for (int i = 0; i < n; i++)
    total += lc_numel(params[i]);
  if (total != lc_numel(vec))
    return lc_set_error(LC_ESHAPE, "%s: the vector has %lld elements but the parameters hold %lld",
                        fn, (long long)lc_numel(vec), (long long)total);
  bool prev = lc_set_grad_enabled(false);
  int64_t off = 0;
  for (int i = 0; i < n && !st; i++) {
    int64_t k = lc_numel(params[i]);
    lc_tensor *piece = NULL, *shaped = NULL;
    st = lc_narrow(vec, 0, off, k, &piece);
    if (!st) st = lc_reshape(piece, lc_ndim(params[i]), lc_shape(params[i]), &shaped);
    if (!st) st = lc_copy_(params[i], shaped);
    lc_release(piece);
    lc_release(shaped);
    off += k;
  }
  lc_set_grad_enabled(prev);
  return st;
}
