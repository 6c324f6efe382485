/* nn_dropout.c - Lua binding of the dropout family (include/lucid_dropout.h):
 * nn.functional.dropout (core._F) and the Dropout constructor of lucid.nn_core. Errors read
 * "lucid.nn.functional.dropout: ...". */
#include "binding.h"
#include "nn_binding.h"
#include "nn_family.h"

#include "lucid_dropout.h"

static int f_dropout(lua_State *L) {
  char buf[96];
  const char *fn = fname(L, false, buf, sizeof buf);
  static const char *const P[] = {"input", "p", "training", "inplace"};
  lb_args_untabled(L, fn, P, 4);
  lc_tensor *x = lb_tensor_arg(L, fn, 1, "input");
  double p = lb_opt_num_arg(L, fn, 2, "p", 0.5);
  bool training = lb_opt_bool_arg(L, fn, 3, "training", true);
  no_inplace(L, fn, 4);
  lc_tensor **out = lb_slot(L);
  CORE(lc_dropout(x, p, training, out));
  return 1;
}

const lb_reg lb_dropout_regs[] = {{"dropout", f_dropout, 0, LB_FUNC}, {NULL, NULL, 0, 0}};

/* ---------------------------------------------------------------- module constructor */

static int c_dropout(lua_State *L) {
  double p = luaL_checknumber(L, 1);
  MAKE("nn.Dropout", lc_nn_dropout(p, lua_toboolean(L, 2), slot));
}

const luaL_Reg nb_dropout_funcs[] = {{"dropout", c_dropout}, {NULL, NULL}};
