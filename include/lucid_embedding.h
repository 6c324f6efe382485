/*
 * lucid_embedding.h - embedding lookups: the tensor function (with autograd) and the Embedding
 * module kind.
 *
 * Conventions are lucid.h's: dims and indices are 0-based (negative dims count from the end),
 * every fallible function returns an lc_status with a message in lc_last_error(), a produced
 * tensor is written to the last argument and owned by the caller, arguments are borrowed.
 */
#ifndef LUCID_EMBEDDING_H
#define LUCID_EMBEDDING_H

#include "lucid_core.h"
#include "lucid_nn.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LC_NO_PADDING INT64_MIN /* padding_idx value meaning "no padding row" */

/* Looks up rows of weight {num_embeddings, embedding_dim} (float) for every entry of input
 * (int64 or int32, any shape): out has shape input.shape + {embedding_dim}. padding_idx is a
 * 0-based row (negative counts from the end) or LC_NO_PADDING; that row receives no gradient
 * (its forward value is whatever the row holds). An index outside [0, num_embeddings) is an
 * LC_EINDEX error naming the index, its position and the range. */
lc_status lc_embedding(const lc_tensor *input, const lc_tensor *weight, int64_t padding_idx,
                       lc_tensor **out);
/* The same with indices counted from index_base (0 or 1): bindings whose users count from 1
 * pass 1 and the raw index tensor, with no conversion copy. padding_idx is still 0-based (or
 * LC_NO_PADDING). Messages are 0-based as every C text (an index read as 5 with index_base 1
 * is row 4), their numbers marked, so such a binding shows its users' values by rendering them
 * 1-based (lc_render_positions). */
lc_status lc_embedding_ex(const lc_tensor *input, const lc_tensor *weight, int64_t padding_idx,
                          int64_t index_base, lc_tensor **out);

/* ---------------------------------------------------------------- module kind */

extern const lc_module_kind lc_kind_embedding;

/* weight {num_embeddings, embedding_dim} float32 ~ N(0, 1) (PyTorch's init), the padding row
 * (0-based, negative from the end, or LC_NO_PADDING) zeroed; reset_parameters redraws it.
 * Printing follows PyTorch ("Embedding(10, 3, padding_idx=0)"). Attributes (lc_module_attr):
 * num_embeddings, embedding_dim (INT), padding_idx (DIM: a row, 0-based; absent without
 * padding). */
lc_status lc_nn_embedding(int64_t num_embeddings, int64_t embedding_dim, int64_t padding_idx,
                          lc_module **out);
/* The same, with forward reading indices counted from index_base (0 or 1, see
 * lc_embedding_ex). The printed padding_idx is 0-based like every C position
 * (lc_module_to_string_based shows it 1-based, as the Lua binding does). */
lc_status lc_nn_embedding_ex(int64_t num_embeddings, int64_t embedding_dim, int64_t padding_idx,
                             int64_t index_base, lc_module **out);

#ifdef __cplusplus
}
#endif
#endif /* LUCID_EMBEDDING_H */
