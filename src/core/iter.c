/* iter.c - strided iteration: drops size-1 dims, coalesces dims every operand can merge, and
 * exposes the innermost dim so kernels run a tight loop over it (see lc_iter in core.h). */
#include "core.h"

#include <string.h>

void lc_iter_init(lc_iter *it, int nops, int ndim, const int64_t *shape,
                  const int64_t (*strides)[LC_MAX_DIMS]) {
  memset(it, 0, sizeof *it);
  it->nops = nops;
  int64_t numel = lc_shape_numel(ndim, shape);
  if (numel == 0) {
    /* Nothing to visit: one empty dim so `inner` and `outer` are both 0. */
    it->ndim = 1;
    it->shape[0] = 0;
    it->inner = 0;
    it->outer = 0;
    return;
  }
  /* Keep dims of size > 1, outermost first. */
  int n = 0;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] == 1) continue;
    it->shape[n] = shape[d];
    for (int k = 0; k < nops; k++)
      it->strides[k][n] = strides[k][d];
    n++;
  }
  /* Coalesce from the inside out: dim i merges into the kept dim j below it (j inner) when
   * every operand steps over dim i exactly as far as one full sweep of dim j. */
  if (n > 1) {
    int m = n - 1; /* index of the current innermost kept (merged) dim, written backwards */
    int64_t cs[LC_MAX_DIMS];
    int64_t cst[LC_ITER_MAX_OPS][LC_MAX_DIMS];
    int top = LC_MAX_DIMS - 1;
    cs[top] = it->shape[m];
    for (int k = 0; k < nops; k++)
      cst[k][top] = it->strides[k][m];
    for (int i = m - 1; i >= 0; i--) {
      bool ok = true;
      for (int k = 0; k < nops && ok; k++)
        ok = it->strides[k][i] == cst[k][top] * cs[top];
      if (ok) {
        cs[top] *= it->shape[i];
      } else {
        top--;
        cs[top] = it->shape[i];
        for (int k = 0; k < nops; k++)
          cst[k][top] = it->strides[k][i];
      }
    }
    n = LC_MAX_DIMS - top;
    for (int d = 0; d < n; d++) {
      it->shape[d] = cs[top + d];
      for (int k = 0; k < nops; k++)
        it->strides[k][d] = cst[k][top + d];
    }
  }
  it->ndim = n;
  if (n == 0) {
    /* 0-dim (or all dims of size 1): a single element at offset 0. */
    it->inner = 1;
    it->outer = 1;
    return;
  }
  it->inner = it->shape[n - 1];
  for (int k = 0; k < nops; k++)
    it->inner_stride[k] = it->strides[k][n - 1];
  it->outer = numel / it->inner;
}

void lc_iter_row(const lc_iter *it, int64_t row, int64_t *offs) {
  for (int k = 0; k < it->nops; k++)
    offs[k] = 0;
  /* Decompose row over the outer dims, innermost outer dim fastest. */
  for (int d = it->ndim - 2; d >= 0 && row > 0; d--) {
    int64_t sz = it->shape[d];
    int64_t i = row % sz;
    row /= sz;
    for (int k = 0; k < it->nops; k++)
      offs[k] += i * it->strides[k][d];
  }
}

void lc_iter_row_at(const lc_iter *it, int64_t row, int64_t *idx, int64_t *offs) {
  for (int k = 0; k < it->nops; k++)
    offs[k] = 0;
  for (int d = it->ndim - 2; d >= 0; d--) {
    int64_t sz = it->shape[d];
    idx[d] = row % sz;
    row /= sz;
    for (int k = 0; k < it->nops; k++)
      offs[k] += idx[d] * it->strides[k][d];
  }
}
