/* embedding.c - the Embedding module kind: its weight, its init (N(0, 1), the padding row
 * zeroed) and its forward, one call of lc_embedding_ex (src/ops/embedding.c). */
#include "lucid_embedding.h"
#include "kind_helpers.h"
#include "nn.h"

#include "../core/core.h"
#include "../ops/embedding.h"

typedef struct emb_state {
  int64_t n, d;
  int64_t pad; /* 0-based row, or -1 */
  int64_t base;
} emb_state;

static lc_tensor *emb_weight(const lc_module *m) {
  int64_t i = lc_module_find_parameter(m, "weight");
  return i >= 0 ? lc_module_own_parameter(m, i) : NULL;
}

static lc_status emb_reset(lc_module *m) {
  const emb_state *s = lc_module_state(m);
  lc_tensor *w = emb_weight(m);
  if (!w) return lc_set_error(LC_ESTATE, "Embedding: the weight parameter was removed");
  bool prev = lc_set_grad_enabled(false);
  lc_status st = lc_normal_(w, 0, 1);
  if (!st && s->pad >= 0 && s->pad < lc_shape(w)[0]) {
    lc_tensor *row = NULL;
    st = lc_select(w, 0, s->pad, &row);
    if (!st) st = lc_zero_(row);
    lc_release(row);
  }
  if (!st) lc_bump_version(w);
  lc_set_grad_enabled(prev);
  return st;
}

static lc_status emb_forward(lc_module *m, const lc_tensor *x, lc_tensor **out) {
  const emb_state *s = lc_module_state(m);
  lc_tensor *w = emb_weight(m);
  if (!w) return lc_set_error(LC_ESTATE, "the weight parameter was removed");
  return strip_fn(lc_embedding_ex(x, w, s->pad >= 0 ? s->pad : LC_NO_PADDING, s->base, out),
                  "embedding");
}

static lc_status emb_extra(const lc_module *m, char **out) {
  const emb_state *s = lc_module_state(m);
  if (s->pad < 0) return set_repr(out, "%lld, %lld", (long long)s->n, (long long)s->d);
  /* a marked position: 0-based in C, 1-based in Lua (lc_module_to_string_based) */
  return set_repr(out, "%lld, %lld, padding_idx=" LC_POS_I, (long long)s->n, (long long)s->d,
                  (long long)s->pad);
}

static bool emb_attr(const lc_module *m, const char *name, lc_attr *out) {
  const emb_state *s = lc_module_state(m);
  if (strcmp(name, "num_embeddings") == 0)
    *out = (lc_attr){.type = LC_ATTR_INT, .i = s->n};
  else if (strcmp(name, "embedding_dim") == 0)
    *out = (lc_attr){.type = LC_ATTR_INT, .i = s->d};
  else if (strcmp(name, "padding_idx") == 0 && s->pad >= 0)
    *out = (lc_attr){.type = LC_ATTR_DIM, .i = s->pad};
  else
    return false;
  return true;
}

const lc_module_kind lc_kind_embedding = {.name = "Embedding",
                                          .forward = emb_forward,
                                          .extra_repr = emb_extra,
                                          .reset_parameters = emb_reset,
                                          .attr = emb_attr,
                                          .destroy = free_state};

lc_status lc_nn_embedding_ex(int64_t num_embeddings, int64_t embedding_dim, int64_t padding_idx,
                             int64_t index_base, lc_module **out) {
  if (!out) return lc_set_error(LC_EARG, "Embedding: out is NULL");
  if (num_embeddings < 0 || embedding_dim < 0)
    return lc_set_error(LC_EARG,
                        "Embedding: num_embeddings and embedding_dim must be >= 0, got %lld and "
                        "%lld",
                        (long long)num_embeddings, (long long)embedding_dim);
  if (index_base != 0 && index_base != 1)
    return lc_set_error(LC_EARG, "Embedding: index_base must be 0 or 1, got %lld",
                        (long long)index_base);
  int64_t pad = -1;
  lc_status pst = lc_embedding_padding_row("Embedding", padding_idx, num_embeddings, &pad);
  if (pst) return pst;
  emb_state *s = malloc(sizeof *s);
  if (!s) return nn_oom();
  *s = (emb_state){num_embeddings, embedding_dim, pad, index_base};
  lc_module *m;
  lc_status st = lc_module_new(&lc_kind_embedding, s, NULL, &m);
  if (st) return st;
  int64_t shape[2] = {num_embeddings, embedding_dim};
  lc_tensor *w = NULL;
  st = lc_zeros(2, shape, LC_FLOAT32, &w);
  if (!st) st = lc_set_requires_grad(w, true);
  if (!st) st = lc_module_register_parameter(m, "weight", w);
  lc_release(w);
  if (!st) st = emb_reset(m);
  if (st) {
    lc_module_release(m);
    return st;
  }
  *out = m;
  return LC_OK;
}

lc_status lc_nn_embedding(int64_t num_embeddings, int64_t embedding_dim, int64_t padding_idx,
                          lc_module **out) {
  return lc_nn_embedding_ex(num_embeddings, embedding_dim, padding_idx, 0, out);
}
