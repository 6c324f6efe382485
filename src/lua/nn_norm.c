/* nn_norm.c - Lua binding of the norm family (lucid_norm.h): the tensor functions batch_norm,
 * layer_norm, group_norm and instance_norm (core._F, from which lua/lucid/nn/norm.lua builds
 * nn.functional) and the module constructors of BatchNorm1d/2d, LayerNorm, GroupNorm and
 * InstanceNorm2d (lucid.nn_core; their Lua classes convert the options' types before calling
 * them). The argument rules (eps >= 0, momentum, the sizes) are the core's: values are converted
 * here, never re-checked. Dims and sizes need no 0/1-based conversion here: the only dim-like
 * inputs are sizes. */
#include "lucid_norm.h"
#include "nn_family.h"

/* ---------------------------------------------------------------- helpers */

/* A number or false (PyTorch's momentum=None: cumulative average when allow_false) */
static double momentum_arg(lua_State *L, const char *fn, int pos, bool allow_false) {
  if (lua_isnoneornil(L, pos)) return 0.1;
  if (allow_false && lua_type(L, pos) == LUA_TBOOLEAN && !lua_toboolean(L, pos))
    return LC_MOMENTUM_CUMULATIVE;
  if (lua_type(L, pos) != LUA_TNUMBER)
    lb_argerror(L, fn, pos, "momentum", "expected a number%s, got %s",
                allow_false ? " or false" : "", lb_typename(L, pos));
  return lua_tonumber(L, pos);
}

/* eps (its rule, >= 0, is the op's) */
static double eps_arg(lua_State *L, const char *fn, int pos) {
  return lb_opt_num_arg(L, fn, pos, "eps", 1e-5);
}

/* ---------------------------------------------------------------- tensor functions */

/* batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps, relu) */
static int f_batch_norm(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input",    "running_mean", "running_var", "weight", "bias",
                                  "training", "momentum",     "eps",         "relu"};
  lb_args(L, fn, P, 9);
  lc_tensor *x = lb_tensor_arg(L, fn, 1, "input");
  lc_batch_norm_opts o = LC_BATCH_NORM_OPTS_INIT;
  o.running_mean = lb_opt_tensor_arg(L, fn, 2, "running_mean");
  o.running_var = lb_opt_tensor_arg(L, fn, 3, "running_var");
  for (int k = 2; k <= 5; k++)
    if (!lua_isnil(L, k) && !lb_ud(L, k))
      lb_argerror(L, fn, k, P[k - 1], "expected a tensor or nil, got %s", lb_typename(L, k));
  o.weight = lb_opt_tensor_arg(L, fn, 4, "weight");
  o.bias = lb_opt_tensor_arg(L, fn, 5, "bias");
  o.training = lb_opt_bool_arg(L, fn, 6, "training", false);
  o.momentum = momentum_arg(L, fn, 7, false);
  o.eps = eps_arg(L, fn, 8);
  o.relu = lb_opt_bool_arg(L, fn, 9, "relu", false);
  lc_tensor **slot = lb_slot(L);
  if (lc_batch_norm(x, &o, slot)) lb_core_error(L, fn);
  return 1;
}

/* layer_norm(input, normalized_shape, weight, bias, eps) */
static int f_layer_norm(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "normalized_shape", "weight", "bias", "eps"};
  lb_args(L, fn, P, 5);
  lc_tensor *x = lb_tensor_arg(L, fn, 1, "input");
  if (lua_isnil(L, 2)) lb_argerror(L, fn, 2, "normalized_shape", "missing");
  int64_t shape[LC_MAX_DIMS + 1]; /* one past the limit: the op reports too many */
  int n = int_list(L, fn, 2, "normalized_shape", LC_MAX_DIMS + 1, shape);
  lc_tensor *w = lua_isnil(L, 3) ? NULL : lb_tensor_arg(L, fn, 3, "weight");
  lc_tensor *b = lua_isnil(L, 4) ? NULL : lb_tensor_arg(L, fn, 4, "bias");
  double eps = eps_arg(L, fn, 5);
  lc_tensor **slot = lb_slot(L);
  if (lc_layer_norm(x, n, shape, w, b, eps, slot)) lb_core_error(L, fn);
  return 1;
}

/* group_norm(input, num_groups, weight, bias, eps) */
static int f_group_norm(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "num_groups", "weight", "bias", "eps"};
  lb_args(L, fn, P, 5);
  lc_tensor *x = lb_tensor_arg(L, fn, 1, "input");
  int64_t g = lb_int_arg(L, fn, 2, "num_groups");
  lc_tensor *w = lua_isnil(L, 3) ? NULL : lb_tensor_arg(L, fn, 3, "weight");
  lc_tensor *b = lua_isnil(L, 4) ? NULL : lb_tensor_arg(L, fn, 4, "bias");
  double eps = eps_arg(L, fn, 5);
  lc_tensor **slot = lb_slot(L);
  if (lc_group_norm(x, g, w, b, eps, slot)) lb_core_error(L, fn);
  return 1;
}

/* instance_norm(input, running_mean, running_var, weight, bias, use_input_stats, momentum,
 * eps) */
static int f_instance_norm(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "running_mean",    "running_var", "weight",
                                  "bias",  "use_input_stats", "momentum",    "eps"};
  lb_args(L, fn, P, 8);
  lc_tensor *x = lb_tensor_arg(L, fn, 1, "input");
  lc_instance_norm_opts o = LC_INSTANCE_NORM_OPTS_INIT;
  for (int k = 2; k <= 5; k++)
    if (!lua_isnil(L, k) && !lb_ud(L, k))
      lb_argerror(L, fn, k, P[k - 1], "expected a tensor or nil, got %s", lb_typename(L, k));
  o.running_mean = lb_opt_tensor_arg(L, fn, 2, "running_mean");
  o.running_var = lb_opt_tensor_arg(L, fn, 3, "running_var");
  o.weight = lb_opt_tensor_arg(L, fn, 4, "weight");
  o.bias = lb_opt_tensor_arg(L, fn, 5, "bias");
  o.use_input_stats = lb_opt_bool_arg(L, fn, 6, "use_input_stats", true);
  o.momentum = momentum_arg(L, fn, 7, false);
  o.eps = eps_arg(L, fn, 8);
  lc_tensor **slot = lb_slot(L);
  if (lc_instance_norm(x, &o, slot)) lb_core_error(L, fn);
  return 1;
}

const lb_reg lb_norm_regs[] = {
    {"batch_norm", f_batch_norm, 0, LB_FUNC},
    {"layer_norm", f_layer_norm, 0, LB_FUNC},
    {"group_norm", f_group_norm, 0, LB_FUNC},
    {"instance_norm", f_instance_norm, 0, LB_FUNC},
    {NULL, NULL, 0, 0},
};

/* ---------------------------------------------------------------- module constructors */

/* The Lua classes (lua/lucid/nn/norm.lua) convert types and fill in defaults; these take plain
 * positional values, and the constructors (src/nn/norm.c) check them. */

typedef lc_status (*bn_ctor)(int64_t, double, double, bool, bool, lc_module **);

/* (num_features, eps, momentum (number or false), affine, track_running_stats) */
static int make_bn(lua_State *L, bn_ctor ctor, const char *name) {
  int64_t C = luaL_checkinteger(L, 1);
  double eps = luaL_checknumber(L, 2);
  double mom = momentum_arg(L, name, 3, true);
  bool affine = lua_toboolean(L, 4), track = lua_toboolean(L, 5);
  lc_module **slot = nb_new_module_slot(L);
  if (ctor(C, eps, mom, affine, track, slot)) return lb_core_error(L, name);
  nb_remember(L);
  return 1;
}
static int f_batch_norm1d(lua_State *L) { return make_bn(L, lc_nn_batch_norm1d, "nn.BatchNorm1d"); }
static int f_batch_norm2d(lua_State *L) { return make_bn(L, lc_nn_batch_norm2d, "nn.BatchNorm2d"); }
static int f_instance_norm2d(lua_State *L) {
  return make_bn(L, lc_nn_instance_norm2d, "nn.InstanceNorm2d");
}

/* (normalized_shape: integer or table, eps, elementwise_affine) */
static int f_layer_norm_m(lua_State *L) {
  const char *fn = "nn.LayerNorm";
  int64_t shape[LC_MAX_DIMS + 1]; /* one past the limit: lc_nn_layer_norm reports too many */
  int n = int_list(L, fn, 1, "normalized_shape", LC_MAX_DIMS + 1, shape);
  double eps = luaL_checknumber(L, 2);
  bool affine = lua_toboolean(L, 3);
  lc_module **slot = nb_new_module_slot(L);
  if (lc_nn_layer_norm(n, shape, eps, affine, slot)) return lb_core_error(L, fn);
  nb_remember(L);
  return 1;
}

/* (num_groups, num_channels, eps, affine) */
static int f_group_norm_m(lua_State *L) {
  int64_t g = luaL_checkinteger(L, 1), c = luaL_checkinteger(L, 2);
  double eps = luaL_checknumber(L, 3);
  bool affine = lua_toboolean(L, 4);
  lc_module **slot = nb_new_module_slot(L);
  if (lc_nn_group_norm(g, c, eps, affine, slot)) return lb_core_error(L, "nn.GroupNorm");
  nb_remember(L);
  return 1;
}

const luaL_Reg nb_norm_funcs[] = {
    {"batch_norm1d", f_batch_norm1d},       {"batch_norm2d", f_batch_norm2d},
    {"instance_norm2d", f_instance_norm2d}, {"layer_norm", f_layer_norm_m},
    {"group_norm", f_group_norm_m},         {NULL, NULL},
};
