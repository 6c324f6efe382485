/*
 * nn_family.h - helpers the binding files of the layer families share (src/lua/nn_activation.c,
 * nn_dropout.c, nn_embedding.c, nn_linear.c): function names, the core's messages re-raised
 * under the Lua name, float inputs, the refused inplace flag, module constructors. Layer 7
 * (binding); private.
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

/* Raises the core's message under fn, dropping the core's own "name: " prefix ("hardtanh",
 * "Hardtanh"). */
static inline int core_error(lua_State *L, const char *fn) {
  const char *m = lb_last_error();
  const char *colon = strstr(m, ": ");
  if (colon) {
    bool word = colon > m;
    for (const char *p = m; p < colon; p++)
      if (!(*p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
            (*p >= '0' && *p <= '9')))
        word = false;
    if (word) m = colon + 2;
  }
  return lb_error(L, fn, "%s", m);
}

/* The functions keep no C temporaries across calls that may raise: outputs live in slots. */
#define CORE(call)                                                                                 \
  do {                                                                                             \
    if ((call) != LC_OK) core_error(L, fn);                                                        \
  } while (0)

static inline lc_tensor *float_input(lua_State *L, const char *fn, int pos, const char *name) {
  lc_tensor *t = lb_tensor_arg(L, fn, pos, name);
  if (!lc_dtype_is_float(lc_dtype_of(t)))
    lb_argerror(L, fn, pos, name, "expected a float32 or float64 tensor, got %s",
                lc_dtype_name(lc_dtype_of(t)));
  return t;
}

/* inplace = true is refused: lucid computes out of place (and autograd relies on it). */
static inline void no_inplace(lua_State *L, const char *fn, int pos) {
  if (lb_opt_bool_arg(L, fn, pos, "inplace", false))
    lb_argerror(L, fn, pos, "inplace",
                "in-place activations are not supported (lucid computes out of place): use "
                "inplace = false");
}

/* Pushes the module made by the core call (raising under `name` on failure). */
#define MAKE(name, call)                                                                           \
  do {                                                                                             \
    lc_module **slot = nb_new_module_slot(L);                                                      \
    if ((call) != LC_OK) return nb_raise_core(L, name);                                            \
    nb_remember(L);                                                                                \
    return 1;                                                                                      \
  } while (0)

#endif /* LUCID_LUA_NN_FAMILY_H */
