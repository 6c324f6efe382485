/* nn_conv.c - Lua binding of the conv family: tensor functions (core._F) and module
 * constructors (lucid.nn_core). Placeholder until the family lands. */
#include "binding.h"
#include "nn_binding.h"

const lb_reg lb_conv_regs[] = {{NULL, NULL, 0, 0}};
const luaL_Reg nb_conv_funcs[] = {{NULL, NULL}};
