/* nn_loss.c - Lua binding of the loss family: tensor functions (core._F) and module
 * constructors (lucid.nn_core). Placeholder until the family lands. */
#include "binding.h"
#include "nn_binding.h"

const lb_reg lb_loss_regs[] = {{NULL, NULL, 0, 0}};
const luaL_Reg nb_loss_funcs[] = {{NULL, NULL}};
