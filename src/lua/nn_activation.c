/* nn_activation.c - Lua binding of the activation family (include/lucid_activation.h): the
 * tensor functions behind nn.functional (core._F), the tensor methods t:softmax(dim) and
 * t:log_softmax(dim), and the module constructors of lucid.nn_core.
 *
 * Functions take positional arguments and/or a trailing options table (lb_args); dims are
 * 1-based and converted here. Errors read
 * "lucid.nn.functional.<name>: ..." (methods: "lucid.<name>: ...").
 * Module constructors read and convert their arguments here too (Softmax's 1-based dim
 * included); the rules are the ops' (lc_act_check, lc_nn_softmax). */
#include "binding.h"
#include "nn_binding.h"
#include "nn_family.h"

#include "lucid_activation.h"

#include "../kernels/activation.h"
#include "../nn/nn.h"
#include "../ops/activation.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- elementwise activations */

/* The rows of src/kernels/activation_list.h, bound generically from their descriptors: the
 * function nn.functional.<name>(input, params..., [inplace]) and the module constructor
 * (params..., [inplace]), each positional and/or with a trailing options table. The argument
 * rules are the op's (lc_act_check); here only Lua values become C ones. */

/* The parameter at stack index pos as the C value: a number, or a choice's 0-based position. */
static double act_param(lua_State *L, const char *fn, int pos, const lc_act_param *p) {
  if (!p->choices) return lb_opt_num_arg(L, fn, pos, p->name, p->def);
  if (lua_isnil(L, pos)) return p->def;
  const char *s = lua_type(L, pos) == LUA_TSTRING ? lua_tostring(L, pos) : NULL;
  int k = 0;
  for (const char *c = p->choices; s; k++) {
    size_t len = strcspn(c, "|");
    if (strlen(s) == len && strncmp(s, c, len) == 0) return k;
    if (!c[len]) break;
    c += len + 1;
  }
  char list[128] = "", one[48];
  for (const char *c = p->choices; *c;) {
    size_t len = strcspn(c, "|");
    snprintf(one, sizeof one, "%s\"%.*s\"", list[0] ? (c[len] ? ", " : " or ") : "", (int)len,
             c);
    strncat(list, one, sizeof list - strlen(list) - 1);
    c += len + (c[len] ? 1 : 0);
  }
  return lb_argerror(L, fn, pos, p->name, "expected %s, got %s", list,
                     s ? s : lb_typename(L, pos));
}

/* Reads the descriptor's parameters from stack index first on, then the inplace flag (when the
 * row has one) into *inplace; names[] gets the parameter names in order. */
static int act_names(const lc_act_desc *d, const char **names, bool with_input) {
  int n = 0;
  if (with_input) names[n++] = "input";
  for (int i = 0; i < d->nparams; i++)
    names[n++] = d->params[i].name;
  if (d->inplace) names[n++] = "inplace";
  return n;
}

static void act_params(lua_State *L, const char *fn, const lc_act_desc *d, int first, double *p) {
  p[0] = p[1] = 0;
  for (int i = 0; i < d->nparams; i++)
    p[i] = act_param(L, fn, first + i, &d->params[i]);
}

static int f_act(lua_State *L) {
  char buf[96];
  const char *fn = fname(L, false, buf, sizeof buf);
  const int code = LB_OP(L);
  const lc_act_desc *d = &lc_act_descs[code];
  const char *names[4];
  int n = act_names(d, names, true);
  lb_args_untabled(L, fn, names, n);
  lc_tensor *x = lb_tensor_arg(L, fn, 1, "input");
  double p[2];
  act_params(L, fn, d, 2, p);
  if (d->inplace) no_inplace(L, fn, n);
  lc_tensor **out = lb_slot(L);
  CORE(lc_act_apply(code, x, p, out));
  return 1;
}

/* The module constructor of row upvalue 1: nn.<Module>(params..., [inplace]). */
static int c_act(lua_State *L) {
  const int code = (int)lua_tointeger(L, lua_upvalueindex(1));
  const lc_act_desc *d = &lc_act_descs[code];
  char fn[64];
  snprintf(fn, sizeof fn, "nn.%s", d->module);
  const char *names[3];
  int n = act_names(d, names, false);
  lb_args_untabled(L, fn, names, n);
  double p[2];
  act_params(L, fn, d, 1, p);
  bool inplace = d->inplace && lb_opt_bool_arg(L, fn, n, "inplace", false);
  lc_module **slot = nb_new_module_slot(L);
  if (lc_nn_act_new(code, p, inplace, slot) != LC_OK) return lb_core_error(L, fn);
  nb_remember(L);
  return 1;
}

/* nn_core.activations(): the rows, for lua/lucid/nn/activation.lua to build its classes from:
 * {{name = "leaky_relu", module = "LeakyReLU", new = constructor}, ...} in list order. */
static int c_activations(lua_State *L) {
  lua_createtable(L, LC_ACT_COUNT, 0);
  for (int code = 0; code < LC_ACT_COUNT; code++) {
    lua_createtable(L, 0, 3);
    lua_pushstring(L, lc_act_descs[code].name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, lc_act_descs[code].module);
    lua_setfield(L, -2, "module");
    lua_pushinteger(L, code);
    lua_pushcclosure(L, c_act, 1);
    lua_setfield(L, -2, "new");
    lua_rawseti(L, -2, (lua_Integer)code + 1);
  }
  return 1;
}

/* ---------------------------------------------------------------- softmax */

/* op bit 0: log_softmax; bit 1: the tensor method */
static int f_softmax(lua_State *L) {
  char buf[96];
  const int op = LB_OP(L);
  const char *fn = fname(L, op & 2, buf, sizeof buf);
  static const char *const P[] = {"input", "dim"};
  lb_args_untabled(L, fn, P, 2);
  lc_tensor *x = lb_tensor_arg(L, fn, 1, "input");
  if (lua_isnil(L, 2))
    lb_argerror(L, fn, 2, "dim", "a dim is required (e.g. -1 for the last dim), got nil");
  int d = lb_dim_arg(L, fn, 2, "dim", lc_ndim(x));
  lc_tensor **out = lb_slot(L);
  CORE((op & 1) ? lc_log_softmax(x, d, out) : lc_softmax(x, d, out));
  return 1;
}

#define ACT_REG(CODE, NAME, Module, GradFn, cost, INPLACE, NP, P0, P1)                           \
  {#NAME, f_act, LC_ACT_##CODE, LB_FUNC},
const lb_reg lb_activation_regs[] = {
    LC_ACTIVATION_LIST(ACT_REG)
    {"softmax", f_softmax, 0, LB_FUNC},
    {"log_softmax", f_softmax, 1, LB_FUNC},
    {"softmax", f_softmax, 2, LB_METHOD},
    {"log_softmax", f_softmax, 3, LB_METHOD},
    {NULL, NULL, 0, 0}};

/* ---------------------------------------------------------------- module constructors */

/* softmax(dim) / log_softmax(dim): the 1-based dim Lua users write (negative from the end) */
static int c_softmax(lua_State *L) {
  int d = lb_dim_option(L, "nn.Softmax", 1, "dim");
  MAKE("nn.Softmax", lc_nn_softmax(d, slot));
}
static int c_log_softmax(lua_State *L) {
  int d = lb_dim_option(L, "nn.LogSoftmax", 1, "dim");
  MAKE("nn.LogSoftmax", lc_nn_log_softmax(d, slot));
}

const luaL_Reg nb_activation_funcs[] = {{"activations", c_activations},
                                        {"softmax", c_softmax},
                                        {"log_softmax", c_log_softmax},
                                        {NULL, NULL}};
