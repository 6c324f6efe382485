/* nn_embedding.c - Lua binding of the embedding family (include/lucid_embedding.h):
 * nn.functional.embedding (core._F) and the Embedding constructor of lucid.nn_core. Indices
 * are 1-based: the kernel reads them with base 1. Errors read
 * "lucid.nn.functional.embedding: ...". */
#include "binding.h"
#include "nn_binding.h"
#include "nn_family.h"

#include "../ops/embedding.h"

#include "lucid_embedding.h"

#include <string.h>

static int f_embedding(lua_State *L) {
  char buf[96];
  const char *fn = fname(L, false, buf, sizeof buf);
  static const char *const P[] = {"input", "weight", "padding_idx"};
  lb_args_untabled(L, fn, P, 3);
  lc_tensor *idx = lb_tensor_arg(L, fn, 1, "input");
  lc_dtype it = lc_dtype_of(idx);
  if (it != LC_INT64 && it != LC_INT32)
    lb_argerror(L, fn, 1, "input", "expected an int64 or int32 tensor of 1-based indices, got %s",
                lc_dtype_name(it));
  lc_tensor *w = lb_tensor_arg(L, fn, 2, "weight");
  if (lc_ndim(w) != 2)
    lb_argerror(L, fn, 2, "weight", "expected a 2-D {num_embeddings, embedding_dim} tensor, got "
                "%d dims", lc_ndim(w));
  int64_t pad = lua_isnil(L, 3) ? LC_NO_PADDING : lb_position_option(L, fn, 3, "padding_idx");
  int64_t row;
  /* the op's own rule, asked first so its error names argument 3 (index errors name argument 1) */
  if (lc_embedding_padding_row("embedding", pad, lc_ndim(w) == 2 ? lc_shape(w)[0] : 0, &row)) {
    lb_argerror(L, fn, 3, "padding_idx", "%s", lb_core_text());
  }
  lc_tensor **out = lb_slot(L);
  /* indices stay 1-based: the kernel reads them with base 1 (no conversion copy) */
  if (lc_embedding_ex(idx, w, pad, 1, out) != LC_OK) {
    if (lc_last_status() == LC_EINDEX) lb_argerror(L, fn, 1, "input", "%s", lb_core_text());
    lb_core_error(L, fn);
  }
  return 1;
}

const lb_reg lb_embedding_regs[] = {{"embedding", f_embedding, 0, LB_FUNC}, {NULL, NULL, 0, 0}};

/* ---------------------------------------------------------------- module constructor */

/* embedding(n, d, padding_idx): padding_idx 1-based (negative from the end) or nil, converted
 * here; forward reads 1-based indices */
static int c_embedding(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1), d = luaL_checkinteger(L, 2);
  int64_t pad = lua_isnoneornil(L, 3) ? LC_NO_PADDING
                                       : lb_position_option(L, "nn.Embedding", 3, "padding_idx");
  MAKE("nn.Embedding", lc_nn_embedding_ex(n, d, pad, 1, slot));
}

const luaL_Reg nb_embedding_funcs[] = {{"embedding", c_embedding}, {NULL, NULL}};
