/* io.c - Lua binding of checkpoints and dataset files. Placeholder until they land. */
#include "binding.h"

const lb_reg lb_io_regs[] = {{NULL, NULL, 0, 0}};
