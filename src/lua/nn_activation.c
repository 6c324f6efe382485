/* nn_activation.c - Lua binding of the activation family: tensor functions (core._F) and module
 * constructors (lucid.nn_core). Placeholder until the family lands. */
#include "binding.h"
#include "nn_binding.h"

const lb_reg lb_activation_regs[] = {{NULL, NULL, 0, 0}};
const luaL_Reg nb_activation_funcs[] = {{NULL, NULL}};
