/*
 * init.c - nn.init (include/lucid_init.h): in-place initialisers with grad mode off.
 *
 * The random fills go through lc_uniform_ / lc_normal_ (which bump the version); the others
 * through lc_fill_ / lc_copy_ with grad mode off, so parameters (leaves requiring grad) can be
 * written. orthogonal_ runs its own Householder QR in float64 (no LAPACK dependency).
 */
#include "lucid_init.h"

#include "../core/core.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static lc_status null_tensor(const char *fn) {
  return lc_set_error(LC_EARG, "%s: tensor is NULL", fn);
}

lc_status lc_init_calculate_gain(const char *nl, bool has_param, double param, double *out) {
  if (!nl || !out) return lc_set_error(LC_EARG, "calculate_gain: NULL argument");
  static const char *const ones[] = {"linear",           "conv1d",           "conv2d",
                                     "conv3d",           "conv_transpose1d", "conv_transpose2d",
                                     "conv_transpose3d", "sigmoid"};
  for (size_t i = 0; i < sizeof ones / sizeof *ones; i++)
    if (strcmp(nl, ones[i]) == 0) {
      *out = 1.0;
      return LC_OK;
    }
  if (strcmp(nl, "tanh") == 0) {
    *out = 5.0 / 3.0;
  } else if (strcmp(nl, "relu") == 0) {
    *out = sqrt(2.0);
  } else if (strcmp(nl, "leaky_relu") == 0) {
    double slope = has_param ? param : 0.01;
    if (!isfinite(slope))
      return lc_set_error(LC_EARG, "calculate_gain: negative_slope %g is not a valid number",
                          slope);
    *out = sqrt(2.0 / (1 + slope * slope));
  } else if (strcmp(nl, "selu") == 0) {
    *out = 3.0 / 4.0; /* PyTorch's value, for self-normalising networks */
  } else {
    return lc_set_error(LC_EARG,
                        "calculate_gain: unsupported nonlinearity '%s' (expected linear, conv1d, "
                        "conv2d, conv3d, conv_transpose1d, conv_transpose2d, conv_transpose3d, "
                        "sigmoid, tanh, relu, leaky_relu or selu)",
                        nl);
  }
  return LC_OK;
}

static lc_status fan(const char *fn, const lc_tensor *t, int64_t *fan_in, int64_t *fan_out) {
  if (!t) return null_tensor(fn);
  int nd = lc_ndim(t);
  if (nd < 2)
    return lc_set_error(LC_ESHAPE,
                        "%s: fan in and fan out can not be computed for a tensor with fewer than "
                        "2 dims, got %d",
                        fn, nd);
  const int64_t *s = lc_shape(t);
  int64_t rf = 1;
  for (int d = 2; d < nd; d++)
    rf *= s[d];
  *fan_in = s[1] * rf;
  *fan_out = s[0] * rf;
  return LC_OK;
}

lc_status lc_init_calculate_fan(const lc_tensor *t, int64_t *fan_in, int64_t *fan_out) {
  if (!fan_in || !fan_out) return lc_set_error(LC_EARG, "calculate_fan: NULL argument");
  return fan("calculate_fan", t, fan_in, fan_out);
}

/* ---------------------------------------------------------------- fills */

static lc_status rand_fill(const char *fn, lc_tensor *t, bool normal, double a, double b) {
  if (!t) return null_tensor(fn);
  bool prev = lc_set_grad_enabled(false);
  lc_status st = normal ? lc_normal_(t, a, b) : lc_uniform_(t, a, b);
  lc_set_grad_enabled(prev);
  if (st) {
    /* re-prefix the core's message with our name */
    const char *m = lc_last_error_marked();
    const char *colon = strchr(m, ':');
    char copy[512];
    snprintf(copy, sizeof copy, "%s", colon ? colon + 2 : m);
    return lc_set_error(st, "%s: %s", fn, copy);
  }
  return LC_OK;
}

lc_status lc_init_uniform_(lc_tensor *t, double a, double b) {
  return rand_fill("uniform_", t, false, a, b);
}

lc_status lc_init_normal_(lc_tensor *t, double mean, double std) {
  return rand_fill("normal_", t, true, mean, std);
}

lc_status lc_init_constant_(lc_tensor *t, double value) {
  if (!t) return null_tensor("constant_");
  bool prev = lc_set_grad_enabled(false);
  lc_status st = lc_fill_(t, value);
  lc_set_grad_enabled(prev);
  return st;
}

lc_status lc_init_zeros_(lc_tensor *t) { return lc_init_constant_(t, 0.0); }
lc_status lc_init_ones_(lc_tensor *t) { return lc_init_constant_(t, 1.0); }

/* Copies src (any dtype, t's numel, C order) into t with grad mode off. */
static lc_status write_values(lc_tensor *t, const lc_tensor *src) {
  lc_tensor *v = NULL;
  lc_status st = lc_reshape(src, lc_ndim(t), lc_shape(t), &v);
  if (st) return st;
  bool prev = lc_set_grad_enabled(false);
  st = lc_copy_(t, v);
  lc_set_grad_enabled(prev);
  lc_release(v);
  return st;
}

lc_status lc_init_eye_(lc_tensor *t) {
  if (!t) return null_tensor("eye_");
  if (lc_ndim(t) != 2)
    return lc_set_error(LC_ESHAPE, "eye_: only 2-D tensors are supported, got %d dims", lc_ndim(t));
  lc_tensor *e = NULL;
  lc_status st = lc_eye(lc_shape(t)[0], lc_shape(t)[1], lc_dtype_of(t), &e);
  if (!st) st = write_values(t, e);
  lc_release(e);
  return st;
}

static lc_status check_float(const char *fn, const lc_tensor *t) {
  if (!t) return null_tensor(fn);
  if (!lc_dtype_is_float(lc_dtype_of(t)))
    return lc_set_error(LC_EDTYPE, "%s: expected a float tensor (float32 or float64), got %s", fn,
                        lc_dtype_name(lc_dtype_of(t)));
  return LC_OK;
}

static lc_status xavier(const char *fn, lc_tensor *t, double gain, bool normal) {
  int64_t fi = 0, fo = 0;
  lc_status st = check_float(fn, t);
  if (!st) st = fan(fn, t, &fi, &fo);
  if (st) return st;
  if (!isfinite(gain)) return lc_set_error(LC_EARG, "%s: gain must be finite, got %g", fn, gain);
  double std = fi + fo > 0 ? gain * sqrt(2.0 / (double)(fi + fo)) : 0.0;
  if (normal) return rand_fill(fn, t, true, 0.0, fabs(std));
  double b = sqrt(3.0) * fabs(std);
  return rand_fill(fn, t, false, -b, b);
}

lc_status lc_init_xavier_uniform_(lc_tensor *t, double gain) {
  return xavier("xavier_uniform_", t, gain, false);
}

lc_status lc_init_xavier_normal_(lc_tensor *t, double gain) {
  return xavier("xavier_normal_", t, gain, true);
}

static lc_status kaiming(const char *fn, lc_tensor *t, double a, lc_fan_mode mode, const char *nl,
                         bool normal) {
  lc_status st = check_float(fn, t);
  if (st) return st;
  if (mode != LC_FAN_IN && mode != LC_FAN_OUT)
    return lc_set_error(LC_EARG, "%s: mode must be fan_in or fan_out, got %d", fn, (int)mode);
  if (!nl) return lc_set_error(LC_EARG, "%s: nonlinearity is NULL", fn);
  int64_t fi = 0, fo = 0;
  if ((st = fan(fn, t, &fi, &fo))) return st;
  double gain;
  if ((st = lc_init_calculate_gain(nl, true, a, &gain))) {
    char copy[512];
    snprintf(copy, sizeof copy, "%s", lc_last_error_marked());
    return lc_set_error(st, "%s: %s", fn, copy);
  }
  if (lc_numel(t) == 0) return LC_OK; /* PyTorch: "Initializing zero-element tensors is a no-op" */
  int64_t f = mode == LC_FAN_IN ? fi : fo;
  double std = gain / sqrt((double)f);
  if (normal) return rand_fill(fn, t, true, 0.0, std);
  double b = sqrt(3.0) * std;
  return rand_fill(fn, t, false, -b, b);
}

lc_status lc_init_kaiming_uniform_(lc_tensor *t, double a, lc_fan_mode mode, const char *nl) {
  return kaiming("kaiming_uniform_", t, a, mode, nl, false);
}

lc_status lc_init_kaiming_normal_(lc_tensor *t, double a, lc_fan_mode mode, const char *nl) {
  return kaiming("kaiming_normal_", t, a, mode, nl, true);
}

/* ---------------------------------------------------------------- orthogonal_ */

/* Reduced QR of the m x n row-major matrix a (m >= n) by Householder reflections: writes the
 * m x n Q into q and R's diagonal into d. a is overwritten. v: m scratch doubles. */
static void householder_qr(double *a, int64_t m, int64_t n, double *q, double *d, double *vs) {
  /* vs holds the reflectors: column k's vector lives in rows k..m-1 of a, after the loop */
  for (int64_t k = 0; k < n; k++) {
    double norm = 0;
    for (int64_t i = k; i < m; i++)
      norm += a[i * n + k] * a[i * n + k];
    norm = sqrt(norm);
    double x0 = a[k * n + k];
    double alpha = x0 >= 0 ? -norm : norm; /* the sign avoiding cancellation in v0 = x0 - alpha */
    d[k] = alpha;
    a[k * n + k] = x0 - alpha; /* v = x - alpha e1, stored in place */
    double vv = 0;
    for (int64_t i = k; i < m; i++)
      vv += a[i * n + k] * a[i * n + k];
    vs[k] = vv;
    if (vv == 0) continue; /* x is already alpha e1 (a zero column): H = I */
    for (int64_t j = k + 1; j < n; j++) {
      double s = 0;
      for (int64_t i = k; i < m; i++)
        s += a[i * n + k] * a[i * n + j];
      s = 2 * s / vv;
      for (int64_t i = k; i < m; i++)
        a[i * n + j] -= s * a[i * n + k];
    }
  }
  /* Q = H_0 ... H_{n-1} applied to the first n columns of the identity */
  memset(q, 0, (size_t)(m * n) * sizeof *q);
  for (int64_t i = 0; i < n; i++)
    q[i * n + i] = 1;
  for (int64_t k = n - 1; k >= 0; k--) {
    double vv = vs[k];
    if (vv == 0) continue;
    for (int64_t j = 0; j < n; j++) {
      double s = 0;
      for (int64_t i = k; i < m; i++)
        s += a[i * n + k] * q[i * n + j];
      s = 2 * s / vv;
      for (int64_t i = k; i < m; i++)
        q[i * n + j] -= s * a[i * n + k];
    }
  }
}

lc_status lc_init_orthogonal_(lc_tensor *t, double gain) {
  const char *fn = "orthogonal_";
  lc_status st = check_float(fn, t);
  if (st) return st;
  if (lc_ndim(t) < 2)
    return lc_set_error(LC_ESHAPE, "%s: only tensors with 2 or more dims are supported, got %d", fn,
                        lc_ndim(t));
  if (!isfinite(gain)) return lc_set_error(LC_EARG, "%s: gain must be finite, got %g", fn, gain);
  if (lc_numel(t) == 0) return LC_OK;
  int64_t rows = lc_shape(t)[0], cols = lc_numel(t) / rows;
  int64_t m = rows >= cols ? rows : cols, n = rows >= cols ? cols : rows;
  lc_tensor *g = NULL, *w = NULL;
  int64_t gshape[2] = {rows, cols};
  double *a = malloc((size_t)(m * n) * sizeof(double)),
         *q = malloc((size_t)(m * n) * sizeof(double));
  double *d = malloc((size_t)n * sizeof(double)), *vs = malloc((size_t)n * sizeof(double));
  double *res = malloc((size_t)(m * n) * sizeof(double));
  if (!a || !q || !d || !vs || !res) {
    st = lc_error_oom((size_t)(m * n) * sizeof(double) * 3);
    goto out;
  }
  if ((st = lc_randn(2, gshape, LC_FLOAT64, &g))) goto out;
  const double *gv = lc_data(g);
  /* a = G (rows >= cols) or G^T, so that a is tall */
  for (int64_t i = 0; i < rows; i++)
    for (int64_t j = 0; j < cols; j++) {
      if (rows >= cols)
        a[i * n + j] = gv[i * cols + j];
      else
        a[j * n + i] = gv[i * cols + j];
    }
  householder_qr(a, m, n, q, d, vs);
  /* Q times the signs of diag(R): the unique QR with a positive diagonal, as PyTorch does
   * (a zero diagonal entry, which has probability 0, keeps its column) */
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++)
      q[i * n + j] *= (d[j] < 0 ? -1.0 : 1.0) * gain;
  for (int64_t i = 0; i < rows; i++)
    for (int64_t j = 0; j < cols; j++)
      res[i * cols + j] = rows >= cols ? q[i * n + j] : q[j * n + i];
  if ((st = lc_from_data(2, gshape, LC_FLOAT64, res, &w))) goto out;
  st = write_values(t, w);
out:
  lc_release(g);
  lc_release(w);
  free(a);
  free(q);
  free(d);
  free(vs);
  free(res);
  return st;
}
