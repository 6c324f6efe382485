/* optim.c - Lua binding of the optimizers. Placeholder until they land. */
#include "binding.h"
#include "nn_binding.h"

const lb_reg lb_optim_regs[] = {{NULL, NULL, 0, 0}};
const luaL_Reg nb_optim_funcs[] = {{NULL, NULL}};
