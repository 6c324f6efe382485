/*
 * optim.c - Lua binding of the optimizers (include/lucid_optim.h).
 *
 * The functions go into "lucid.nn_core" (nb_optim_funcs) under optim_* names; the Lua API
 * (lua/lucid/optim.lua) builds lucid.optim from them. An optimizer is a "lucid.Optimizer"
 * userdata owning one lc_optimizer. The Lua side keeps the parameter groups as plain tables
 * (what users and schedulers read and write) and hands their options to C before each step
 * (optim_set_group), so C always steps with the current values.
 *
 * Indices here are Lua's: groups and parameters are 1-based; converted at this boundary.
 * Error messages name the Lua function given as `fname` ("optim.SGD") and, for options and
 * parameters, where they were found (`where`, e.g. "param_groups[2]").
 */
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "binding.h"
#include "lucid_optim.h"
#include "nn_binding.h"

#define OPT_MT "lucid.Optimizer"

const lb_reg lb_optim_regs[] = {{NULL, NULL, 0, 0}};

typedef struct ob_optim {
  lc_optimizer *o; /* owned; NULL while being built */
} ob_optim;

static int ob_gc(lua_State *L) {
  ob_optim *u = luaL_testudata(L, 1, OPT_MT);
  if (u) {
    lc_optimizer_free(u->o);
    u->o = NULL;
  }
  return 0;
}

/* Pushes a new empty handle (its metatable made on first use). */
static ob_optim *ob_new(lua_State *L) {
  ob_optim *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->o = NULL;
  if (luaL_newmetatable(L, OPT_MT)) {
    lua_pushcfunction(L, ob_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushliteral(L, "false");
    lua_setfield(L, -2, "__metatable");
  }
  lua_setmetatable(L, -2);
  return u;
}

/* Raises a formatted message without a position: luaL_error's would name the line of
 * lua/lucid/optim.lua that called the binding, not the user's code (the nn binding raises the
 * same way). */
static int raise(lua_State *L, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  return lua_error(L);
}

static lc_optimizer *ob_check(lua_State *L, int idx) {
  ob_optim *u = luaL_testudata(L, idx, OPT_MT);
  if (!u || !u->o)
    raise(L, "lucid.optim: expected an optimizer handle, got %s", luaL_typename(L, idx));
  return u->o;
}

static const char *fname_arg(lua_State *L, int idx) {
  const char *f = lua_tostring(L, idx);
  return f ? f : "lucid.optim";
}

/* ---------------------------------------------------------------- options */

static double num_field(lua_State *L, int t, const char *key, const char *fname,
                        const char *where) {
  lua_getfield(L, t, key);
  if (lua_type(L, -1) != LUA_TNUMBER)
    raise(L, "%s: %s%s%s must be a number, got %s", fname, where, *where ? "." : "", key,
               luaL_typename(L, -1));
  double v = lua_tonumber(L, -1);
  lua_pop(L, 1);
  return v;
}

static bool bool_field(lua_State *L, int t, const char *key, const char *fname, const char *where) {
  lua_getfield(L, t, key);
  if (lua_type(L, -1) != LUA_TBOOLEAN)
    raise(L, "%s: %s%s%s must be a boolean, got %s", fname, where, *where ? "." : "", key,
               luaL_typename(L, -1));
  bool v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

/* Reads kind's options from the table at t (every key the kind uses must be there). */
static void read_options(lua_State *L, int t, lc_optim_kind kind, const char *fname,
                         const char *where, lc_optim_options *o) {
  lc_optim_default_options(kind, o);
  o->lr = num_field(L, t, "lr", fname, where);
  o->weight_decay = num_field(L, t, "weight_decay", fname, where);
  o->maximize = bool_field(L, t, "maximize", fname, where);
  switch (kind) {
  case LC_OPTIM_SGD:
    o->momentum = num_field(L, t, "momentum", fname, where);
    o->dampening = num_field(L, t, "dampening", fname, where);
    o->nesterov = bool_field(L, t, "nesterov", fname, where);
    break;
  case LC_OPTIM_ADAM:
  case LC_OPTIM_ADAMW:
    o->eps = num_field(L, t, "eps", fname, where);
    o->amsgrad = bool_field(L, t, "amsgrad", fname, where);
    lua_getfield(L, t, "betas");
    if (lua_type(L, -1) != LUA_TTABLE || lua_rawlen(L, -1) != 2)
      raise(L, "%s: %s%sbetas must be a table of two numbers, got %s", fname, where,
                 *where ? "." : "", luaL_typename(L, -1));
    for (int k = 1; k <= 2; k++) {
      if (lua_rawgeti(L, -1, k) != LUA_TNUMBER)
        raise(L, "%s: %s%sbetas[%d] must be a number, got %s", fname, where, *where ? "." : "",
                   k, luaL_typename(L, -1));
      *(k == 1 ? &o->beta1 : &o->beta2) = lua_tonumber(L, -1);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
    break;
  case LC_OPTIM_RMSPROP:
    o->alpha = num_field(L, t, "alpha", fname, where);
    o->eps = num_field(L, t, "eps", fname, where);
    o->momentum = num_field(L, t, "momentum", fname, where);
    o->centered = bool_field(L, t, "centered", fname, where);
    break;
  case LC_OPTIM_ADAGRAD:
    o->lr_decay = num_field(L, t, "lr_decay", fname, where);
    o->eps = num_field(L, t, "eps", fname, where);
    o->initial_accumulator_value = num_field(L, t, "initial_accumulator_value", fname, where);
    break;
  default: break;
  }
}

/* Raises the core's message for a failed options check, naming where the options came from. */
static int raise_options(lua_State *L, const char *fname, const char *where) {
  const char *msg = lc_last_error();
  const char *colon = strstr(msg, ": ");
  if (colon && strncmp(msg, "lc_", 3) == 0) msg = colon + 2;
  if (*where) return raise(L, "%s: %s: %s", fname, where, msg);
  return raise(L, "%s: %s", fname, msg);
}

/* ---------------------------------------------------------------- parameter lists */

/* The tensors of the Lua list at idx, checked with 1-based messages; the array lives in a
 * userdata pushed on the stack (collected if anything raises). */
static lc_tensor **read_params(lua_State *L, int idx, const char *fname, const char *where,
                               int64_t *n) {
  if (!lua_istable(L, idx))
    raise(L, "%s: %s must be a list of tensors, got %s", fname, where, luaL_typename(L, idx));
  lua_Integer len = (lua_Integer)lua_rawlen(L, idx);
  lc_tensor **ps = lua_newuserdatauv(L, (size_t)(len > 0 ? len : 1) * sizeof *ps, 0);
  for (lua_Integer i = 1; i <= len; i++) {
    lua_rawgeti(L, idx, i);
    lc_tensor *t = lucid_to_tensor(L, -1);
    if (!t)
      raise(L, "%s: %s[%d] is not a tensor: optimizers can only optimize tensors, got %s",
                 fname, where, (int)i, luaL_typename(L, -1));
    if (!lc_dtype_is_float(lc_dtype_of(t)))
      raise(L, "%s: %s[%d]: expected a float32 or float64 tensor, got %s", fname, where,
                 (int)i, lc_dtype_name(lc_dtype_of(t)));
    if (!lc_requires_grad(t))
      raise(L,
                 "%s: %s[%d] does not require grad (set requires_grad = true, or leave it "
                 "out)",
                 fname, where, (int)i);
    if (!lc_is_leaf(t))
      raise(L, "%s: %s[%d] is not a leaf tensor: can't optimize a non-leaf tensor", fname,
                 where, (int)i);
    for (lua_Integer j = 1; j < i; j++)
      if (ps[j - 1] == t)
        raise(L, "%s: %s[%d] and %s[%d] are the same tensor", fname, where, (int)j, where,
                   (int)i);
    ps[i - 1] = t;
    lua_pop(L, 1);
  }
  *n = len;
  return ps;
}

/* optim_new(kind, params, options, fname [, where [, owhere]]) -> handle: one group. where
 * names the parameter list in messages, owhere the options ("" for the constructor's). */
static int f_new(lua_State *L) {
  const char *kname = luaL_checkstring(L, 1);
  const char *fname = fname_arg(L, 4);
  const char *where = luaL_optstring(L, 5, "params");
  const char *owhere = luaL_optstring(L, 6, "");
  lc_optim_kind kind;
  if (lc_optim_kind_from_name(kname, &kind)) return nb_raise_core(L, fname);
  luaL_checktype(L, 3, LUA_TTABLE);
  lc_optim_options opts;
  read_options(L, 3, kind, fname, owhere, &opts);
  int64_t n;
  lc_tensor **ps = read_params(L, 2, fname, where, &n);
  ob_optim *u = ob_new(L);
  lc_optimizer *o = NULL;
  if (lc_optimizer_new(kind, n, ps, &opts, &o)) return raise_options(L, fname, owhere);
  u->o = o;
  return 1;
}

/* optim_add_group(handle, params, options, fname [, where [, owhere]]) */
static int f_add_group(lua_State *L) {
  lc_optimizer *o = ob_check(L, 1);
  const char *fname = fname_arg(L, 4);
  const char *where = luaL_optstring(L, 5, "params");
  const char *owhere = luaL_optstring(L, 6, "");
  luaL_checktype(L, 3, LUA_TTABLE);
  lc_optim_options opts;
  read_options(L, 3, lc_optimizer_kind(o), fname, owhere, &opts);
  int64_t n;
  lc_tensor **ps = read_params(L, 2, fname, where, &n);
  /* a parameter already in a group: named here, 1-based (the core's message counts from 0) */
  for (int64_t g = 0; g < lc_optimizer_num_groups(o); g++) {
    int64_t first, count;
    if (lc_optimizer_group_range(o, g, &first, &count)) return nb_raise_core(L, fname);
    for (int64_t j = first; j < first + count; j++)
      for (int64_t k = 0; k < n; k++)
        if (ps[k] == lc_optimizer_param(o, j))
          return raise(L,
                       "%s: %s[%d] is already in param_groups[%d] (some parameters appear in "
                       "more than one group)",
                       fname, where, (int)(k + 1), (int)(g + 1));
  }
  if (lc_optimizer_add_param_group(o, n, ps, &opts)) return raise_options(L, fname, owhere);
  return 0;
}

/* optim_set_group(handle, g, options, fname, where): g 1-based */
static int f_set_group(lua_State *L) {
  lc_optimizer *o = ob_check(L, 1);
  lua_Integer g = luaL_checkinteger(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  const char *fname = fname_arg(L, 4);
  const char *where = luaL_optstring(L, 5, "");
  lc_optim_options opts;
  read_options(L, 3, lc_optimizer_kind(o), fname, where, &opts);
  if (lc_optimizer_set_options(o, g - 1, &opts)) return raise_options(L, fname, where);
  return 0;
}

static int f_step(lua_State *L) {
  lc_optimizer *o = ob_check(L, 1);
  if (lc_optimizer_step(o)) return nb_raise_core(L, fname_arg(L, 2));
  return 0;
}

static int f_zero_grad(lua_State *L) {
  lc_optimizer *o = ob_check(L, 1);
  if (lc_optimizer_zero_grad(o, lua_toboolean(L, 2))) return nb_raise_core(L, fname_arg(L, 3));
  return 0;
}

static int f_num_params(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)lc_optimizer_num_params(ob_check(L, 1)));
  return 1;
}

static int64_t param_index(lua_State *L, lc_optimizer *o, int idx) {
  lua_Integer i = luaL_checkinteger(L, idx);
  if (i < 1 || i > lc_optimizer_num_params(o))
    raise(L, "lucid.optim: parameter %d out of range 1..%d", (int)i,
               (int)lc_optimizer_num_params(o));
  return (int64_t)i - 1;
}

/* optim_get_state(handle, i) -> nil | {step = n, <buffer> = tensor (the live buffer), ...} */
static int f_get_state(lua_State *L) {
  lc_optimizer *o = ob_check(L, 1);
  int64_t i = param_index(L, o, 2);
  if (!lc_optimizer_has_state(o, i)) {
    lua_pushnil(L);
    return 1;
  }
  lc_optim_kind kind = lc_optimizer_kind(o);
  lua_newtable(L);
  if (lc_optim_has_step(kind)) {
    int64_t step = 0;
    lc_optimizer_get_step(o, i, &step);
    lua_pushinteger(L, (lua_Integer)step);
    lua_setfield(L, -2, "step");
  }
  for (int k = 0; k < lc_optim_num_state_buffers(kind); k++) {
    const char *name = lc_optim_state_name(kind, k);
    lc_tensor *t = NULL;
    if (lc_optimizer_get_state(o, i, name, &t)) return nb_raise_core(L, "lucid.optim");
    if (!t) continue;
    /* lucid_push_tensor takes its own reference; drop ours before anything can raise */
    lucid_push_tensor(L, t);
    lc_release(t);
    lua_setfield(L, -2, name);
  }
  return 1;
}

/* optim_set_state(handle, i, tbl | nil, fname, where): replaces parameter i's state. */
static int f_set_state(lua_State *L) {
  lc_optimizer *o = ob_check(L, 1);
  int64_t i = param_index(L, o, 2);
  const char *fname = fname_arg(L, 4);
  const char *where = luaL_optstring(L, 5, "state");
  lc_optim_kind kind = lc_optimizer_kind(o);
  if (lua_isnoneornil(L, 3)) {
    lc_optimizer_clear_state(o, i);
    return 0;
  }
  if (!lua_istable(L, 3))
    return raise(L, "%s: %s must be a table, got %s", fname, where, luaL_typename(L, 3));
  /* check every key first, so a bad entry leaves the state untouched */
  lua_pushnil(L);
  while (lua_next(L, 3)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      return raise(L, "%s: %s: keys must be strings, got %s", fname, where,
                        luaL_typename(L, -2));
    const char *key = lua_tostring(L, -2);
    if (strcmp(key, "step") == 0) {
      if (!lc_optim_has_step(kind))
        return raise(L, "%s: %s.step: %s keeps no step count", fname, where,
                          lc_optim_kind_name(kind));
      if (!lua_isinteger(L, -1) &&
          !(lua_type(L, -1) == LUA_TNUMBER && lua_tonumber(L, -1) == floor(lua_tonumber(L, -1))))
        return raise(L, "%s: %s.step must be an integer, got %s", fname, where,
                          luaL_typename(L, -1));
      if (!lua_isinteger(L, -1) && !(fabs(lua_tonumber(L, -1)) < 0x1p62))
        return raise(L, "%s: %s.step is too large, got %s", fname, where, lua_tostring(L, -1));
      if (lua_tonumber(L, -1) < 0)
        return raise(L, "%s: %s.step must be >= 0, got %s", fname, where, lua_tostring(L, -1));
    } else {
      int k = 0;
      while (k < lc_optim_num_state_buffers(kind) && strcmp(lc_optim_state_name(kind, k), key))
        k++;
      if (k == lc_optim_num_state_buffers(kind))
        return raise(L, "%s: %s: unknown state entry '%s' for %s", fname, where, key,
                          lc_optim_kind_name(kind));
      const lc_tensor *t = lucid_to_tensor(L, -1);
      if (!t)
        return raise(L, "%s: %s.%s must be a tensor, got %s", fname, where, key,
                          luaL_typename(L, -1));
      const lc_tensor *p = lc_optimizer_param(o, i);
      bool same = lc_ndim(t) == lc_ndim(p);
      for (int d = 0; same && d < lc_ndim(p); d++)
        same = lc_shape(t)[d] == lc_shape(p)[d];
      if (!same)
        return raise(L, "%s: %s.%s: shape does not match the parameter's", fname, where, key);
    }
    lua_pop(L, 1);
  }
  lc_optimizer_clear_state(o, i);
  lc_status st = LC_OK;
  if (lua_getfield(L, 3, "step") != LUA_TNIL)
    st = lc_optimizer_set_step(o, i, lua_isinteger(L, -1) ? (int64_t)lua_tointeger(L, -1)
                                                          : (int64_t)lua_tonumber(L, -1));
  else
    st = lc_optimizer_set_step(o, i, 0); /* an entry without a step count still has state */
  lua_pop(L, 1);
  for (int k = 0; !st && k < lc_optim_num_state_buffers(kind); k++) {
    const char *name = lc_optim_state_name(kind, k);
    lua_getfield(L, 3, name);
    const lc_tensor *t = lucid_to_tensor(L, -1);
    if (t) st = lc_optimizer_set_state(o, i, name, t);
    lua_pop(L, 1);
  }
  if (st) return nb_raise_core(L, fname);
  return 0;
}

const luaL_Reg nb_optim_funcs[] = {
    {"optim_new", f_new},
    {"optim_add_group", f_add_group},
    {"optim_set_group", f_set_group},
    {"optim_step", f_step},
    {"optim_zero_grad", f_zero_grad},
    {"optim_num_params", f_num_params},
    {"optim_get_state", f_get_state},
    {"optim_set_state", f_set_state},
    {NULL, NULL},
};
