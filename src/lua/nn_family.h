/*
 * nn_family.h - helpers the binding files of the layer families share (src/lua/nn_activation.c,
 * nn_dropout.c, nn_embedding.c, nn_interpolate.c, nn_linear.c, nn_norm.c): function names, the
 * refused inplace flag, size lists, module constructors; core errors are raised with
 * lb_core_error. Layer 7 (binding); private.
 */
#ifndef LUCID_LUA_NN_FAMILY_H
#define LUCID_LUA_NN_FAMILY_H

#include "binding.h"
#include "nn_binding.h"

#include <stdio.h>
#include <string.h>

/* "nn.functional.<registered name>" into buf, or the bare name for a method closure. */
static inline const char *fname(lua_State *L, bool method, char *buf, size_t cap) {
  if (method) return LB_FN(L);
  snprintf(buf, cap, "nn.functional.%s", LB_FN(L));
  return buf;
}

/* The functions keep no C temporaries across calls that may raise: outputs live in slots. */
#define CORE(call)                                                                                 \
  do {                                                                                             \
    if ((call) != LC_OK) lb_core_error(L, fn);                                                     \
  } while (0)

/* inplace = true is refused: lucid computes out of place (and autograd relies on it). */
static inline void no_inplace(lua_State *L, const char *fn, int pos) {
  if (lb_opt_bool_arg(L, fn, pos, "inplace", false))
    lb_argerror(L, fn, pos, "inplace",
                "in-place activations are not supported (lucid computes out of place): use "
                "inplace = false");
}

/* A size list: an integer or a table of integers, converted only (the count's and the sizes'
 * rules are the op's). out holds cap entries, one more than the op accepts: a longer table
 * stops there, so the op reports too many (as lb_sizes_arg). Returns the count, 0 for {}.
 * (nn_norm.c's normalized_shape, nn_interpolate.c's size.) */
static inline int int_list(lua_State *L, const char *fn, int pos, const char *name, int cap,
                           int64_t *out) {
  if (lua_type(L, pos) == LUA_TNUMBER) {
    out[0] = lb_int_arg(L, fn, pos, name);
    return 1;
  }
  if (lua_type(L, pos) != LUA_TTABLE)
    lb_argerror(L, fn, pos, name, "expected an integer or a table of integers, got %s",
                lb_typename(L, pos));
  lua_Unsigned len = lua_rawlen(L, pos);
  int n = len > (lua_Unsigned)cap ? cap : (int)len;
  for (int k = 0; k < n; k++) {
    lua_rawgeti(L, pos, k + 1);
    int ok = 0;
    lua_Integer v = lua_tointegerx(L, -1, &ok);
    if (!ok || lua_type(L, -1) != LUA_TNUMBER)
      lb_argerror(L, fn, pos, name, "entry %d: expected an integer, got %s", k + 1,
                  lb_typename(L, -1));
    out[k] = v;
    lua_pop(L, 1);
  }
  return n;
}

/* Pushes the module made by the core call (raising under `name` on failure). */
#define MAKE(name, call)                                                                           \
  do {                                                                                             \
    lc_module **slot = nb_new_module_slot(L);                                                      \
    if ((call) != LC_OK) return lb_core_error(L, name);                                            \
    nb_remember(L);                                                                                \
    return 1;                                                                                      \
  } while (0)

#endif /* LUCID_LUA_NN_FAMILY_H */
