/*
 * rearrange.c - public rearranging functions: tril(_), triu(_), flip, roll, rot90,
 * repeat_interleave. These check pointers, counts and dims and record through lc_apply; the
 * op forwards (src/kernels/rearrange.c) check shapes, dtypes and the repeats.
 */
#include "../autograd/autograd.h"

static lc_status check_io(const char *fn, const lc_tensor *t, const void *out) {
  if (!t) return lc_set_error(LC_EARG, "%s: tensor is NULL", fn);
  if (!out) return lc_set_error(LC_EARG, "%s: out is NULL", fn);
  return LC_OK;
}

/* ---------------------------------------------------------------- tril, triu */

static lc_status tri(const lc_op_def *op, const lc_tensor *t, int64_t diagonal, lc_tensor **out) {
  lc_status st = check_io(op->name, t, out);
  if (st) return st;
  lc_op_args a = {.i = {diagonal}, .ni = 1};
  lc_tensor *in[1] = {(lc_tensor *)t};
  return lc_apply(op, 1, in, &a, out);
}

static lc_status tri_(const lc_op_def *op, const char *fn, lc_tensor *t, int64_t diagonal) {
  lc_status st = check_io(fn, t, t);
  if (st) return st;
  lc_op_args a = {.i = {diagonal}, .ni = 1};
  lc_tensor *in[1] = {t};
  return lc_apply_inplace(op, 1, in, &a);
}

lc_status lc_tril(const lc_tensor *t, int64_t diagonal, lc_tensor **out) {
  return tri(&lc_op_tril, t, diagonal, out);
}

lc_status lc_triu(const lc_tensor *t, int64_t diagonal, lc_tensor **out) {
  return tri(&lc_op_triu, t, diagonal, out);
}

lc_status lc_tril_(lc_tensor *t, int64_t diagonal) {
  return tri_(&lc_op_tril, "tril_", t, diagonal);
}

lc_status lc_triu_(lc_tensor *t, int64_t diagonal) {
  return tri_(&lc_op_triu, "triu_", t, diagonal);
}

/* ---------------------------------------------------------------- flip */

lc_status lc_flip(const lc_tensor *t, int ndims, const int *dims, lc_tensor **out) {
  lc_status st = check_io("flip", t, out);
  if (st) return st;
  if (ndims < 0 || (ndims > 0 && !dims))
    return lc_set_error(LC_EARG, "flip: expected ndims >= 0 dims, got %d%s", ndims,
                        ndims > 0 ? " and no array" : "");
  /* every entry is checked here (there may be more than LC_MAX_DIMS); the op gets them wrapped
   * and distinct */
  bool seen[LC_MAX_DIMS] = {false};
  lc_op_args a = {0};
  for (int k = 0; k < ndims; k++) {
    int d;
    if ((st = lc_wrap_dim64(dims[k], t->ndim, "flip", &d))) return st;
    if (seen[d])
      return lc_set_error(LC_EARG, "flip: dim " LC_POS_D " appears more than once in dims", d);
    seen[d] = true;
    a.i[a.ni++] = d;
  }
  lc_tensor *in[1] = {(lc_tensor *)t};
  return lc_apply(&lc_op_flip, 1, in, &a, out);
}

/* ---------------------------------------------------------------- roll */

lc_status lc_roll(const lc_tensor *t, int nshifts, const int64_t *shifts, int ndims,
                  const int *dims, lc_tensor **out) {
  lc_status st = check_io("roll", t, out);
  if (st) return st;
  if (nshifts < 1 || !shifts) return lc_set_error(LC_EARG, "roll: shifts is required (got none)");
  if (ndims < 0 || (ndims > 0 && !dims))
    return lc_set_error(LC_EARG, "roll: expected ndims >= 0 dims, got %d", ndims);
  lc_op_args a = {0};
  if (ndims == 0) {
    if (nshifts != 1)
      return lc_set_error(LC_EARG,
                          "roll: without dims, shifts must be a single value (the flattened "
                          "tensor is rolled), got %d shifts",
                          nshifts);
    a.flags = LC_ARG_ALL;
    a.i[0] = t->numel ? shifts[0] % t->numel : 0;
    a.ni = 1;
  } else {
    if (nshifts != ndims)
      return lc_set_error(LC_EARG,
                          "roll: shifts and dims must have the same length, got %d shift%s and "
                          "%d dim%s",
                          nshifts, nshifts == 1 ? "" : "s", ndims, ndims == 1 ? "" : "s");
    if (t->ndim == 0)
      return lc_set_error(LC_EINDEX,
                          "roll: a 0-dim tensor has no dim to roll along (leave dims out to roll "
                          "the flattened tensor)");
    /* a dim may repeat, as in PyTorch (the rolls compose): the shifts add up modulo its size */
    a.ni = t->ndim;
    for (int k = 0; k < ndims; k++) {
      int d;
      if ((st = lc_wrap_dim64(dims[k], t->ndim, "roll", &d))) return st;
      int64_t n = t->shape[d];
      if (n == 0) continue;
      int64_t s = shifts[k] % n;
      if (s < 0) s += n;
      a.i[d] = (a.i[d] + s) % n;
    }
  }
  lc_tensor *in[1] = {(lc_tensor *)t};
  return lc_apply(&lc_op_roll, 1, in, &a, out);
}

/* ---------------------------------------------------------------- rot90 */

lc_status lc_rot90(const lc_tensor *t, int64_t k, int ndims, const int *dims, lc_tensor **out) {
  lc_status st = check_io("rot90", t, out);
  if (st) return st;
  static const int def[2] = {0, 1};
  if (ndims == 0 && !dims) {
    dims = def;
    ndims = 2;
  }
  if (ndims != 2 || !dims)
    return lc_set_error(LC_EARG, "rot90: expected 2 rotation dims, got %d", ndims);
  /* the op checks the tensor's dims and that the two differ */
  lc_op_args a = {.i = {k % 4, dims[0], dims[1]}, .ni = 3};
  lc_tensor *in[1] = {(lc_tensor *)t};
  return lc_apply(&lc_op_rot90, 1, in, &a, out);
}

/* ---------------------------------------------------------------- repeat_interleave */

lc_status lc_repeat_interleave(const lc_tensor *t, const lc_tensor *repeats, bool has_dim, int dim,
                               lc_tensor **out) {
  lc_status st = check_io("repeat_interleave", t, out);
  if (st) return st;
  if (!repeats) return lc_set_error(LC_EARG, "repeat_interleave: repeats is NULL");
  lc_op_args a = {.ni = 1};
  if (has_dim) {
    if (t->ndim > 0 && (st = lc_wrap_dim(&dim, t->ndim, "repeat_interleave"))) return st;
    a.i[0] = dim; /* a 0-dim tensor's refusal is the op's */
  } else {
    a.flags = LC_ARG_ALL;
  }
  lc_tensor *in[2] = {(lc_tensor *)t, (lc_tensor *)repeats};
  return lc_apply(&lc_op_repeat_interleave, 2, in, &a, out);
}

lc_status lc_repeat_interleave_int(const lc_tensor *t, int64_t repeats, bool has_dim, int dim,
                                   lc_tensor **out) {
  lc_status st = check_io("repeat_interleave", t, out);
  if (st) return st;
  /* a negative count is the op's error (none when the dim is empty, as in PyTorch) */
  lc_tensor *r = NULL;
  if ((st = lc_from_data(0, NULL, LC_INT64, &repeats, &r))) return st;
  st = lc_repeat_interleave(t, r, has_dim, dim, out);
  lc_release(r);
  return st;
}
