/* nn_norm.c - Lua binding of the norm family (lucid_norm.h): the tensor functions batch_norm,
 * layer_norm, group_norm, instance_norm and interpolate (core._F, from which
 * lua/lucid/nn/norm.lua builds nn.functional) and the module constructors of BatchNorm1d/2d,
 * LayerNorm, GroupNorm, InstanceNorm2d and Upsample (lucid.nn_core; their Lua classes validate
 * the options before calling them). Dims and sizes need no 0/1-based conversion here: the only
 * dim-like inputs are sizes. */
#include "binding.h"
#include "lucid_norm.h"
#include "nn_binding.h"

#include <math.h>
#include <string.h>

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

static double eps_arg(lua_State *L, const char *fn, int pos) {
  double e = lb_opt_num_arg(L, fn, pos, "eps", 1e-5);
  if (!(e >= 0)) lb_argerror(L, fn, pos, "eps", "expected a number >= 0, got %g", e);
  return e;
}

/* A size list: an integer or a table of 1..max integers >= min_v. Returns the count. */
static int int_list(lua_State *L, const char *fn, int pos, const char *name, int max, int64_t min_v,
                    int64_t *out) {
  if (lua_type(L, pos) == LUA_TNUMBER) {
    out[0] = lb_int_arg(L, fn, pos, name);
    if (out[0] < min_v)
      lb_argerror(L, fn, pos, name, "expected sizes >= %lld, got %lld", (long long)min_v,
                  (long long)out[0]);
    return 1;
  }
  if (lua_type(L, pos) != LUA_TTABLE)
    lb_argerror(L, fn, pos, name, "expected an integer or a table of integers, got %s",
                lb_typename(L, pos));
  int n = (int)lua_rawlen(L, pos);
  if (n < 1 || n > max) lb_argerror(L, fn, pos, name, "expected 1 to %d sizes, got %d", max, n);
  for (int k = 0; k < n; k++) {
    lua_rawgeti(L, pos, k + 1);
    int ok = 0;
    lua_Integer v = lua_tointegerx(L, -1, &ok);
    if (!ok || lua_type(L, -1) != LUA_TNUMBER)
      lb_argerror(L, fn, pos, name, "entry %d: expected an integer, got %s", k + 1,
                  lb_typename(L, -1));
    if (v < min_v)
      lb_argerror(L, fn, pos, name, "entry %d: expected a size >= %lld, got %lld", k + 1,
                  (long long)min_v, (long long)v);
    out[k] = v;
    lua_pop(L, 1);
  }
  return n;
}

/* scale_factor: a number or a table of 1..2 positive numbers. */
static int scale_list(lua_State *L, const char *fn, int pos, double *out) {
  int n = 1;
  if (lua_type(L, pos) == LUA_TNUMBER) {
    out[0] = lua_tonumber(L, pos);
  } else if (lua_type(L, pos) == LUA_TTABLE) {
    n = (int)lua_rawlen(L, pos);
    if (n < 1 || n > 2)
      lb_argerror(L, fn, pos, "scale_factor", "expected 1 or 2 factors, got %d", n);
    for (int k = 0; k < n; k++) {
      lua_rawgeti(L, pos, k + 1);
      if (lua_type(L, -1) != LUA_TNUMBER)
        lb_argerror(L, fn, pos, "scale_factor", "entry %d: expected a number, got %s", k + 1,
                    lb_typename(L, -1));
      out[k] = lua_tonumber(L, -1);
      lua_pop(L, 1);
    }
  } else {
    lb_argerror(L, fn, pos, "scale_factor", "expected a number or a table of numbers, got %s",
                lb_typename(L, pos));
  }
  for (int k = 0; k < n; k++)
    if (!(out[k] > 0) || !isfinite(out[k]))
      lb_argerror(L, fn, pos, "scale_factor", "expected positive numbers, got %g", out[k]);
  return n;
}

/* Reads (size, scale_factor, mode, align_corners) at pos..pos+3 into o. */
static void interp_opts(lua_State *L, const char *fn, int pos, lc_interpolate_opts *o) {
  memset(o, 0, sizeof *o);
  bool has_size = !lua_isnoneornil(L, pos), has_scale = !lua_isnoneornil(L, pos + 1);
  if (has_size == has_scale)
    lb_error(L, fn, "expected exactly one of size and scale_factor, got %s",
             has_size ? "both" : "neither");
  if (has_size) o->nsize = int_list(L, fn, pos, "size", 2, 1, o->size);
  if (has_scale) o->nscale = scale_list(L, fn, pos + 1, o->scale_factor);
  const char *mode = lua_isnoneornil(L, pos + 2) ? "nearest" : NULL;
  if (!mode) {
    if (lua_type(L, pos + 2) != LUA_TSTRING)
      lb_argerror(L, fn, pos + 2, "mode", "expected a string, got %s", lb_typename(L, pos + 2));
    mode = lua_tostring(L, pos + 2);
  }
  if (!strcmp(mode, "nearest"))
    o->mode = LC_INTERP_NEAREST;
  else if (!strcmp(mode, "bilinear"))
    o->mode = LC_INTERP_BILINEAR;
  else
    lb_argerror(L, fn, pos + 2, "mode", "expected \"nearest\" or \"bilinear\", got \"%s\"", mode);
  if (!lua_isnoneornil(L, pos + 3)) {
    if (o->mode != LC_INTERP_BILINEAR)
      lb_argerror(L, fn, pos + 3, "align_corners",
                  "can only be set with the interpolating mode \"bilinear\"");
    o->align_corners = lb_opt_bool_arg(L, fn, pos + 3, "align_corners", false);
  }
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
  int64_t shape[LC_MAX_DIMS];
  int n = int_list(L, fn, 2, "normalized_shape", LC_MAX_DIMS, 1, shape);
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

/* interpolate(input, size, scale_factor, mode, align_corners) */
static int f_interpolate(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "size", "scale_factor", "mode", "align_corners"};
  lb_args(L, fn, P, 5);
  lc_tensor *x = lb_tensor_arg(L, fn, 1, "input");
  lc_interpolate_opts o;
  interp_opts(L, fn, 2, &o);
  lc_tensor **slot = lb_slot(L);
  if (lc_interpolate(x, &o, slot)) lb_core_error(L, fn);
  return 1;
}

const lb_reg lb_norm_regs[] = {
    {"batch_norm", f_batch_norm, 0, LB_FUNC},   {"layer_norm", f_layer_norm, 0, LB_FUNC},
    {"group_norm", f_group_norm, 0, LB_FUNC},   {"instance_norm", f_instance_norm, 0, LB_FUNC},
    {"interpolate", f_interpolate, 0, LB_FUNC}, {NULL, NULL, 0, 0},
};

/* ---------------------------------------------------------------- module constructors */

/* The Lua classes (lua/lucid/nn/norm.lua) validate types and defaults; these take plain
 * positional values. */

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
  int64_t shape[LC_MAX_DIMS];
  int n = int_list(L, fn, 1, "normalized_shape", LC_MAX_DIMS, 1, shape);
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

/* (size, scale_factor, mode, align_corners) */
static int f_upsample(lua_State *L) {
  const char *fn = "nn.Upsample";
  lua_settop(L, 4);
  lc_interpolate_opts o;
  interp_opts(L, fn, 1, &o);
  lc_module **slot = nb_new_module_slot(L);
  if (lc_nn_upsample(&o, slot)) return lb_core_error(L, fn);
  nb_remember(L);
  return 1;
}

const luaL_Reg nb_norm_funcs[] = {
    {"batch_norm1d", f_batch_norm1d},
    {"batch_norm2d", f_batch_norm2d},
    {"instance_norm2d", f_instance_norm2d},
    {"layer_norm", f_layer_norm_m},
    {"group_norm", f_group_norm_m},
    {"upsample", f_upsample},
    {NULL, NULL},
};
