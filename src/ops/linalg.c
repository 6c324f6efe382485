/*
 * ops/linalg.c - public matrix products (lucid.h): shape checks for the fixed-rank forms, then
 * lc_apply(lc_op_matmul) so autograd records them. Kernels: src/kernels/linalg.c.
 */
#include "../autograd/autograd.h"

static lc_status run_matmul(const lc_tensor *a, const lc_tensor *b, lc_tensor **out) {
  lc_tensor *in[2] = {(lc_tensor *)a, (lc_tensor *)b};
  return lc_apply(&lc_op_matmul, 2, in, NULL, out);
}

static lc_status check_args(const char *name, const lc_tensor *a, const lc_tensor *b,
                            lc_tensor **out) {
  if (!a || !b || !out) return lc_set_error(LC_EARG, "%s: NULL tensor argument", name);
  return LC_OK;
}

lc_status lc_matmul(const lc_tensor *a, const lc_tensor *b, lc_tensor **out) {
  lc_status st = check_args("matmul", a, b, out);
  return st ? st : run_matmul(a, b, out);
}

lc_status lc_mm(const lc_tensor *a, const lc_tensor *b, lc_tensor **out) {
  lc_status st = check_args("mm", a, b, out);
  if (st) return st;
  if (a->ndim != 2 || b->ndim != 2)
    return lc_set_error(LC_ESHAPE, "mm: expected 2-D tensors, got %d-D and %d-D", a->ndim, b->ndim);
  return run_matmul(a, b, out);
}

lc_status lc_bmm(const lc_tensor *a, const lc_tensor *b, lc_tensor **out) {
  lc_status st = check_args("bmm", a, b, out);
  if (st) return st;
  if (a->ndim != 3 || b->ndim != 3)
    return lc_set_error(LC_ESHAPE, "bmm: expected 3-D tensors, got %d-D and %d-D", a->ndim,
                        b->ndim);
  if (a->shape[0] != b->shape[0])
    return lc_set_error(LC_ESHAPE, "bmm: batch sizes differ: %lld and %lld", (long long)a->shape[0],
                        (long long)b->shape[0]);
  return run_matmul(a, b, out);
}

lc_status lc_dot(const lc_tensor *a, const lc_tensor *b, lc_tensor **out) {
  lc_status st = check_args("dot", a, b, out);
  if (st) return st;
  if (a->ndim != 1 || b->ndim != 1)
    return lc_set_error(LC_ESHAPE, "dot: expected 1-D tensors, got %d-D and %d-D", a->ndim,
                        b->ndim);
  if (a->shape[0] != b->shape[0])
    return lc_set_error(LC_ESHAPE, "dot: tensors have different lengths: %lld and %lld",
                        (long long)a->shape[0], (long long)b->shape[0]);
  return run_matmul(a, b, out);
}

/* outer(a, b) = a[:, None] @ b[None, :], through recorded views so gradients flow. */
lc_status lc_outer(const lc_tensor *a, const lc_tensor *b, lc_tensor **out) {
  lc_status st = check_args("outer", a, b, out);
  if (st) return st;
  if (a->ndim != 1 || b->ndim != 1)
    return lc_set_error(LC_ESHAPE, "outer: expected 1-D tensors, got %d-D and %d-D", a->ndim,
                        b->ndim);
  lc_tensor *ac = NULL, *br = NULL;
  if ((st = lc_unsqueeze(a, 1, &ac))) return st;
  if ((st = lc_unsqueeze(b, 0, &br))) {
    lc_release(ac);
    return st;
  }
  st = run_matmul(ac, br, out);
  lc_release(ac);
  lc_release(br);
  return st;
}
