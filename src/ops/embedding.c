/*
 * embedding.c - public entry points of the embedding family (include/lucid_embedding.h):
 * argument checks, then the op through lc_apply so autograd records it. The kernel, forward and
 * backward side by side, is in src/kernels/embedding.c.
 */
#include "lucid_embedding.h"

#include "embedding.h"

#include "../autograd/autograd.h"
#include "../kernels/embedding.h"
#include "check_io.h"

lc_status lc_embedding_padding_row(const char *fn, int64_t padding_idx, int64_t n, int64_t *row) {
  *row = -1;
  if (padding_idx == LC_NO_PADDING) return LC_OK;
  int64_t r = padding_idx < 0 ? padding_idx + n : padding_idx;
  if (r < 0 || r >= n)
    return lc_set_error(LC_EINDEX,
                        "%s: padding_idx " LC_POS_I " out of range for %lld embeddings (expected "
                        LC_POS_I ".." LC_POS_I " or " LC_POS_I ".." LC_POS_I ")",
                        fn, (long long)padding_idx, (long long)n, 0LL, (long long)(n - 1),
                        (long long)-n, -1LL);
  *row = r;
  return LC_OK;
}

lc_status lc_embedding_ex(const lc_tensor *input, const lc_tensor *weight, int64_t padding_idx,
                          int64_t index_base, lc_tensor **out) {
  lc_status st = check_io("embedding", input, "input", out);
  if (!st) st = check_io("embedding", weight, "weight", out);
  if (st) return st;
  if (index_base != 0 && index_base != 1)
    return lc_set_error(LC_EARG, "embedding: index_base must be 0 or 1, got %lld",
                        (long long)index_base);
  if (weight->ndim != 2) {
    char buf[256];
    return lc_set_error(LC_ESHAPE,
                        "embedding: weight must be 2-D {num_embeddings, embedding_dim}, got "
                        "shape %s",
                        lc_shape_str(weight->ndim, weight->shape, buf, sizeof buf));
  }
  int64_t pad = -1; /* the op's "none" */
  if ((st = lc_embedding_padding_row("embedding", padding_idx, weight->shape[0], &pad))) return st;
  lc_op_args a = {.i = {pad, index_base}, .ni = 2};
  lc_tensor *in[2] = {(lc_tensor *)weight, (lc_tensor *)input};
  return lc_apply(&lc_op_embedding, 2, in, &a, out);
}

lc_status lc_embedding(const lc_tensor *input, const lc_tensor *weight, int64_t padding_idx,
                       lc_tensor **out) {
  return lc_embedding_ex(input, weight, padding_idx, 0, out);
}
