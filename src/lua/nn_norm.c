/* nn_norm.c - Lua binding of the norm family: tensor functions (core._F) and module
 * constructors (lucid.nn_core). Placeholder until the family lands. */
#include "binding.h"
#include "nn_binding.h"

const lb_reg lb_norm_regs[] = {{NULL, NULL, 0, 0}};
const luaL_Reg nb_norm_funcs[] = {{NULL, NULL}};
