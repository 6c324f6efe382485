/* nn_linear.c - Lua binding of the linear family's tensor functions (lc_linear and lc_bilinear,
 * include/lucid_core.h): nn.functional.linear and nn.functional.bilinear (core._F), which
 * lua/lucid/nn/linear.lua hands on (nn.Bilinear calls F.bilinear). nn.Linear's module kind is a
 * built-in one (lc_nn_linear, include/lucid_nn.h): its constructor is bound in nn_module.c.
 * Errors read "lucid.nn.functional.<name>: ...". */
#include "binding.h"
#include "nn_family.h"

static int f_bilinear(lua_State *L) {
  char buf[96];
  const char *fn = fname(L, false, buf, sizeof buf);
  static const char *const P[] = {"input1", "input2", "weight", "bias"};
  lb_args_untabled(L, fn, P, 4);
  lc_tensor *x1 = lb_tensor_arg(L, fn, 1, "input1");
  lc_tensor *x2 = lb_tensor_arg(L, fn, 2, "input2");
  lc_tensor *w = lb_tensor_arg(L, fn, 3, "weight");
  lc_tensor *b = lua_isnil(L, 4) ? NULL : lb_tensor_arg(L, fn, 4, "bias");
  lc_tensor **out = lb_slot(L);
  CORE(lc_bilinear(x1, x2, w, b, out));
  return 1;
}

static int f_linear(lua_State *L) {
  char buf[96];
  const char *fn = fname(L, false, buf, sizeof buf);
  static const char *const P[] = {"input", "weight", "bias"};
  lb_args_untabled(L, fn, P, 3);
  lc_tensor *x = lb_tensor_arg(L, fn, 1, "input");
  lc_tensor *w = lb_tensor_arg(L, fn, 2, "weight");
  lc_tensor *b = lua_isnil(L, 3) ? NULL : lb_tensor_arg(L, fn, 3, "bias");
  lc_tensor **out = lb_slot(L);
  CORE(lc_linear(x, w, b, out));
  return 1;
}

const lb_reg lb_linear_regs[] = {
    {"bilinear", f_bilinear, 0, LB_FUNC}, {"linear", f_linear, 0, LB_FUNC}, {NULL, NULL, 0, 0}};
