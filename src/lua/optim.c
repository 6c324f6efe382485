/*
 * optim.c - Lua binding of the optimizers (include/lucid_optim.h).
 *
 * The functions go into "lucid.nn_core" (nb_optim_funcs) under optim_* names; the Lua API
 * (lua/lucid/optim.lua) builds lucid.optim from them. An optimizer is a "lucid.Optimizer"
 * userdata owning one lc_optimizer. The Lua side keeps the parameter groups as plain tables
 * (what users and schedulers read and write) and hands their options to C before each step
 * (optim_set_group), so C always steps with the current values.
 *
 * What a kind takes and keeps comes from the core's descriptors (lc_optim_kind_info):
 * optim_kinds hands them to Lua, which builds its constructors' positional order and defaults
 * from them, and the options are read here by the descriptor's types. The rules live in the
 * core (lc_optim_check_options, lc_optim_check_param, lc_optimizer_check_duplicates,
 * lc_optimizer_check_state / check_step), with the messages users see; this file names where a
 * value came from (a position in a parameter list is the core's, 0-based and marked, which
 * lb_core_error shows 1-based) and raises the way the tensor binding does (lb_error,
 * lb_argerror, lb_core_error: "lucid.<fn>: ...").
 *
 * Error messages name the Lua function given as `fname` ("optim.SGD", raised as
 * "lucid.optim.SGD: ...") and, for options and parameters, where they were found (`where`,
 * e.g. "param_groups[2]"). The methods optim_zero_grad and optim_state_of take the optimizer
 * table itself (they are Optimizer.zero_grad / Optimizer.state_of) and read their arguments
 * with lb_args, as tensor methods do.
 */
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdio.h>
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
    lb_seal_metatable(L);
  }
  lua_setmetatable(L, -2);
  return u;
}

static lc_optimizer *ob_to(lua_State *L, int idx) {
  ob_optim *u = luaL_testudata(L, idx, OPT_MT);
  return u ? u->o : NULL;
}

static lc_optimizer *ob_check(lua_State *L, int idx) {
  lc_optimizer *o = ob_to(L, idx);
  if (!o) lb_error(L, "optim", "expected an optimizer handle, got %s", lb_typename(L, idx));
  return o;
}

/* The Lua function's name passed at idx (for messages), "optim" when absent. */
static const char *fname_arg(lua_State *L, int idx) {
  const char *f = lua_tostring(L, idx);
  return f ? f : "optim";
}

/* A method's self (argument 1, an optimizer table holding its handle in _h). Writes the
 * method's name for messages, "optim.<Kind>:<method>", to fn. */
static lc_optimizer *self_arg(lua_State *L, const char *method, char *fn, size_t cap) {
  lc_optimizer *o = NULL;
  if (lua_type(L, 1) == LUA_TTABLE) {
    lua_pushliteral(L, "_h");
    lua_rawget(L, 1);
    o = ob_to(L, -1); /* the table keeps the handle alive */
    lua_pop(L, 1);
  }
  snprintf(fn, cap, "optim.%s:%s", o ? lc_optim_kind_name(lc_optimizer_kind(o)) : "Optimizer",
           method);
  if (!o)
    lb_argerror(L, fn, 1, "self", "expected an optimizer, got %s (call it as opt:%s(...))",
                lb_typename(L, 1), method);
  return o;
}

/* ---------------------------------------------------------------- kinds */

static const char *hparam_type_name(lc_optim_hparam_type t) {
  switch (t) {
  case LC_OPTIM_BOOL: return "boolean";
  case LC_OPTIM_PAIR: return "pair";
  default: return "number";
  }
}

/* A default as Lua sees it: an integer when integral (PyTorch's defaults are the literals 0,
 * 1e-3, ...: weight_decay prints as 0, not 0.0), else a float. */
static void push_value(lua_State *L, double v) {
  if (v == floor(v) && fabs(v) < 0x1p53)
    lua_pushinteger(L, (lua_Integer)v);
  else
    lua_pushnumber(L, v);
}

/* Pushes a hyper-parameter's default: a number, a boolean, {a, b}. */
static void push_default(lua_State *L, const lc_optim_hparam *h) {
  switch (h->type) {
  case LC_OPTIM_BOOL: lua_pushboolean(L, h->def[0] != 0); break;
  case LC_OPTIM_PAIR:
    lua_createtable(L, 2, 0);
    for (int j = 0; j < 2; j++) {
      push_value(L, h->def[j]);
      lua_rawseti(L, -2, j + 1);
    }
    break;
  default: push_value(L, h->def[0]); break;
  }
}

/* optim_kinds() -> a list, in kind order, of {name = "SGD", step = false,
 * hparams = {{name = "lr", type = "number", keyword_only = false, required = true,
 * default = nil, rule = ">= 0"}, ...}, state = {"momentum_buffer"}}: the core's descriptors
 * (rule: lc_optim_rule_text, nil for none; informative: the rules are applied in C). A new table
 * on each call. */
static int f_kinds(lua_State *L) {
  lua_createtable(L, LC_OPTIM_KIND_COUNT, 0);
  for (int k = 0; k < LC_OPTIM_KIND_COUNT; k++) {
    const lc_optim_kind_desc *d = lc_optim_kind_info((lc_optim_kind)k);
    lua_createtable(L, 0, 4);
    lua_pushstring(L, d->name);
    lua_setfield(L, -2, "name");
    lua_pushboolean(L, d->has_step);
    lua_setfield(L, -2, "step");
    lua_createtable(L, d->num_hparams, 0);
    for (int j = 0; j < d->num_hparams; j++) {
      const lc_optim_hparam *h = &d->hparams[j];
      lua_createtable(L, 0, 6);
      lua_pushstring(L, h->name);
      lua_setfield(L, -2, "name");
      lua_pushstring(L, hparam_type_name(h->type));
      lua_setfield(L, -2, "type");
      lua_pushboolean(L, h->keyword_only);
      lua_setfield(L, -2, "keyword_only");
      lua_pushboolean(L, h->required);
      lua_setfield(L, -2, "required");
      if (!h->required) {
        push_default(L, h);
        lua_setfield(L, -2, "default");
      }
      if (lc_optim_rule_text(h->rule)) {
        lua_pushstring(L, lc_optim_rule_text(h->rule));
        lua_setfield(L, -2, "rule");
      }
      lua_rawseti(L, -2, j + 1);
    }
    lua_setfield(L, -2, "hparams");
    lua_createtable(L, d->num_state, 0);
    for (int j = 0; j < d->num_state; j++) {
      lua_pushstring(L, d->state_names[j]);
      lua_rawseti(L, -2, j + 1);
    }
    lua_setfield(L, -2, "state");
    lua_rawseti(L, -2, k + 1);
  }
  return 1;
}

/* ---------------------------------------------------------------- options */

/* Reads kind's options from the table at t by the descriptor's types (every key the kind
 * uses must be there; a required one missing says so), then checks their values with the
 * core's rules. where names the table in messages ("" for the constructor's options). */
static void read_options(lua_State *L, int t, lc_optim_kind kind, const char *fn, const char *where,
                         lc_optim_options *o) {
  const lc_optim_kind_desc *d = lc_optim_kind_info(kind);
  const char *dot = *where ? "." : "";
  lc_optim_default_options(kind, o);
  for (int k = 0; k < d->num_hparams; k++) {
    const lc_optim_hparam *h = &d->hparams[k];
    double v[2] = {0, 0};
    int ty = lua_getfield(L, t, h->name);
    if (ty == LUA_TNIL && h->required)
      lb_error(L, fn, "%s%s%s is required (%s has no default %s)", where, dot, h->name, d->name,
               h->name);
    switch (h->type) {
    case LC_OPTIM_BOOL:
      if (ty != LUA_TBOOLEAN)
        lb_error(L, fn, "%s%s%s must be a boolean, got %s", where, dot, h->name,
                 lb_typename(L, -1));
      v[0] = lua_toboolean(L, -1);
      break;
    case LC_OPTIM_PAIR:
      if (ty != LUA_TTABLE)
        lb_error(L, fn, "%s%s%s must be a table of two numbers, got %s", where, dot, h->name,
                 lb_typename(L, -1));
      if (lua_rawlen(L, -1) != 2)
        lb_error(L, fn, "%s%s%s must be a table of two numbers, got a table of length %d", where,
                 dot, h->name, (int)lua_rawlen(L, -1));
      for (int j = 0; j < 2; j++) {
        if (lua_rawgeti(L, -1, j + 1) != LUA_TNUMBER)
          lb_error(L, fn, "%s%s%s[%d] must be a number, got %s", where, dot, h->name, j + 1,
                   lb_typename(L, -1));
        v[j] = lua_tonumber(L, -1);
        lua_pop(L, 1);
      }
      break;
    default:
      if (ty != LUA_TNUMBER)
        lb_error(L, fn, "%s%s%s must be a number, got %s", where, dot, h->name, lb_typename(L, -1));
      v[0] = lua_tonumber(L, -1);
      break;
    }
    lua_pop(L, 1);
    lc_optim_set_hparam(kind, o, k, v);
  }
  if (lc_optim_check_options(kind, o) == LC_OK) return;
  /* the core's message without its function name, under ours and where */
  const char *m = lb_core_text();
  if (*where) lb_error(L, fn, "%s: %s", where, m);
  lb_error(L, fn, "%s", m);
}

/* ---------------------------------------------------------------- parameter lists */

/* The tensors of the Lua list at idx, each checked by the core's rule as entry i of where (the
 * core names it, 0-based and marked: lb_core_error shows it 1-based); the array lives in a
 * userdata pushed on the stack (collected if anything raises). */
static lc_tensor **read_params(lua_State *L, int idx, const char *fn, const char *where,
                               int64_t *n) {
  if (!lua_istable(L, idx))
    lb_error(L, fn, "%s must be a list of tensors, got %s", where, lb_typename(L, idx));
  lua_Integer len = (lua_Integer)lua_rawlen(L, idx);
  lc_tensor **ps = lua_newuserdatauv(L, (size_t)(len > 0 ? len : 1) * sizeof *ps, 0);
  for (lua_Integer i = 1; i <= len; i++) {
    lua_rawgeti(L, idx, i);
    lb_tensor *u = lb_ud(L, -1);
    if (!u || !u->t)
      lb_error(L, fn, "%s[%d] is not a tensor: optimizers can only optimize tensors, got %s", where,
               (int)i, u ? "a closed tensor" : lb_typename(L, -1));
    if (lc_optim_check_param(u->t, where, i - 1)) lb_core_error(L, fn);
    ps[i - 1] = u->t;
    lua_pop(L, 1);
  }
  *n = len;
  return ps;
}

/* optim_new(kind, params, options, fname [, where [, owhere]]) -> handle: one group. where
 * names the parameter list in messages, owhere the options ("" for the constructor's). */
static int f_new(lua_State *L) {
  const char *kname = luaL_checkstring(L, 1);
  const char *fn = fname_arg(L, 4);
  const char *where = luaL_optstring(L, 5, "params");
  const char *owhere = luaL_optstring(L, 6, "");
  lc_optim_kind kind;
  if (lc_optim_kind_from_name(kname, &kind)) lb_core_error(L, fn);
  luaL_checktype(L, 3, LUA_TTABLE);
  lc_optim_options opts;
  read_options(L, 3, kind, fn, owhere, &opts);
  int64_t n;
  lc_tensor **ps = read_params(L, 2, fn, where, &n);
  if (lc_optimizer_check_duplicates(NULL, n, ps, where)) lb_core_error(L, fn);
  ob_optim *u = ob_new(L);
  lc_optimizer *o = NULL;
  if (lc_optimizer_new(kind, n, ps, &opts, &o)) lb_core_error(L, fn);
  u->o = o;
  return 1;
}

/* optim_add_group(handle, params, options, fname [, where [, owhere]]) */
static int f_add_group(lua_State *L) {
  lc_optimizer *o = ob_check(L, 1);
  const char *fn = fname_arg(L, 4);
  const char *where = luaL_optstring(L, 5, "params");
  const char *owhere = luaL_optstring(L, 6, "");
  luaL_checktype(L, 3, LUA_TTABLE);
  lc_optim_options opts;
  read_options(L, 3, lc_optimizer_kind(o), fn, owhere, &opts);
  int64_t n;
  lc_tensor **ps = read_params(L, 2, fn, where, &n);
  if (lc_optimizer_check_duplicates(o, n, ps, where)) lb_core_error(L, fn);
  if (lc_optimizer_add_param_group(o, n, ps, &opts)) lb_core_error(L, fn);
  return 0;
}

/* optim_set_group(handle, g, options, fname, where): g 1-based */
static int f_set_group(lua_State *L) {
  lc_optimizer *o = ob_check(L, 1);
  lua_Integer g = luaL_checkinteger(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  const char *fn = fname_arg(L, 4);
  const char *where = luaL_optstring(L, 5, "");
  lc_optim_options opts;
  read_options(L, 3, lc_optimizer_kind(o), fn, where, &opts);
  if (lc_optimizer_set_options(o, g - 1, &opts)) lb_core_error(L, fn);
  return 0;
}

static int f_step(lua_State *L) {
  lc_optimizer *o = ob_check(L, 1);
  if (lc_optimizer_step(o)) lb_core_error(L, fname_arg(L, 2));
  return 0;
}

/* Optimizer.zero_grad(self [, set_to_none = true]), also zero_grad{set_to_none = false} */
static int f_zero_grad(lua_State *L) {
  static const char *const names[] = {"self", "set_to_none"};
  char fn[64];
  lc_optimizer *o = self_arg(L, "zero_grad", fn, sizeof fn);
  lb_args(L, fn, names, 2);
  bool set_to_none = lb_opt_bool_arg(L, fn, 2, "set_to_none", true);
  if (lc_optimizer_zero_grad(o, set_to_none)) lb_core_error(L, fn);
  return 0;
}

static int f_num_params(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)lc_optimizer_num_params(ob_check(L, 1)));
  return 1;
}

/* A 1-based parameter index (as every Lua caller passes) -> 0-based; raises when out of range. */
static int64_t param_index(lua_State *L, lc_optimizer *o, int idx, const char *fn) {
  int64_t i = lb_int_arg(L, fn, idx, "i"), n = lc_optimizer_num_params(o);
  if (i < 1) lb_argerror(L, fn, idx, "i", "i must be >= 1, got %lld", (long long)i);
  if (i > n)
    lb_argerror(L, fn, idx, "i", "i must be <= %lld (the number of parameters), got %lld",
                (long long)n, (long long)i);
  return i - 1;
}

/* Optimizer.state_of(self, i) -> nil | {step = n, <buffer> = tensor (the live buffer), ...}:
 * parameter i (1-based over all groups). */
static int f_state_of(lua_State *L) {
  static const char *const names[] = {"self", "i"};
  char fn[64];
  lc_optimizer *o = self_arg(L, "state_of", fn, sizeof fn);
  lb_args(L, fn, names, 2);
  int64_t i = param_index(L, o, 2, fn);
  if (!lc_optimizer_has_state(o, i)) {
    lua_pushnil(L);
    return 1;
  }
  const lc_optim_kind_desc *d = lc_optim_kind_info(lc_optimizer_kind(o));
  lua_newtable(L);
  if (d->has_step) {
    int64_t step = 0;
    if (lc_optimizer_get_step(o, i, &step)) lb_core_error(L, fn);
    lua_pushinteger(L, (lua_Integer)step);
    lua_setfield(L, -2, "step");
  }
  for (int k = 0; k < d->num_state; k++) {
    lc_tensor *t = NULL;
    if (lc_optimizer_get_state(o, i, d->state_names[k], &t)) lb_core_error(L, fn);
    if (!t) continue;
    /* lucid_push_tensor takes its own reference; drop ours before anything can raise */
    lucid_push_tensor(L, t);
    lc_release(t);
    lua_setfield(L, -2, d->state_names[k]);
  }
  return 1;
}

/* ---------------------------------------------------------------- state */

/* A state entry's step at idx (a number or a one-element tensor, as a file round trip may
 * give) as a count; checked by the core's rule for parameter i. */
static int64_t read_step(lua_State *L, lc_optimizer *o, int64_t i, int idx, const char *fn,
                         const char *where) {
  double v;
  lb_tensor *u = lb_ud(L, idx);
  if (lua_isinteger(L, idx)) {
    if (lc_optimizer_check_step(o, i, (int64_t)lua_tointeger(L, idx), where))
      lb_error(L, fn, "%s", lb_last_error());
    return (int64_t)lua_tointeger(L, idx);
  }
  if (lua_type(L, idx) == LUA_TNUMBER) {
    v = lua_tonumber(L, idx);
  } else if (u && u->t && lc_numel(u->t) == 1) {
    if (lc_item(u->t, &v)) lb_core_error(L, fn);
  } else {
    lb_error(L, fn, "%s.step must be an integer, got %s", where, lb_typename(L, idx));
  }
  if (v != floor(v)) lb_error(L, fn, "%s.step must be an integer, got %.17g", where, v);
  if (!(fabs(v) < 0x1p62))
    lb_error(L, fn, "%s.step is too large (a step must be an integer below 2^62), got %g", where,
             v);
  if (lc_optimizer_check_step(o, i, (int64_t)v, where)) lb_error(L, fn, "%s", lb_last_error());
  return (int64_t)v;
}

/* Checks the state table at idx for parameter i (0-based) without changing anything: keys,
 * the step count and every buffer (a tensor of the parameter's shape), by the core's rules. */
static void check_state_table(lua_State *L, lc_optimizer *o, int64_t i, int idx, const char *fn,
                              const char *where) {
  if (!lua_istable(L, idx))
    lb_error(L, fn, "%s must be a table, got %s", where, lb_typename(L, idx));
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      lb_error(L, fn, "%s: keys must be strings, got %s", where, lb_typename(L, -2));
    const char *key = lua_tostring(L, -2);
    if (strcmp(key, "step") == 0) {
      read_step(L, o, i, lua_gettop(L), fn, where);
    } else {
      if (lc_optimizer_check_state(o, i, key, NULL, where)) lb_error(L, fn, "%s", lb_last_error());
      lb_tensor *u = lb_ud(L, -1);
      if (!u || !u->t)
        lb_error(L, fn, "%s.%s must be a tensor, got %s", where, key, lb_typename(L, -1));
      if (lc_optimizer_check_state(o, i, key, u->t, where)) lb_error(L, fn, "%s", lb_last_error());
    }
    lua_pop(L, 1);
  }
}

/* optim_check_state(handle, i, tbl | nil, fname, where): what optim_set_state would refuse,
 * raised, with nothing changed (i 1-based). */
static int f_check_state(lua_State *L) {
  lc_optimizer *o = ob_check(L, 1);
  const char *fn = fname_arg(L, 4);
  const char *where = luaL_optstring(L, 5, "state");
  int64_t i = param_index(L, o, 2, fn);
  if (!lua_isnoneornil(L, 3)) check_state_table(L, o, i, 3, fn, where);
  return 0;
}

/* optim_set_state(handle, i, tbl | nil, fname, where): replaces parameter i's state (1-based;
 * checked first: on an error nothing changes). */
static int f_set_state(lua_State *L) {
  lc_optimizer *o = ob_check(L, 1);
  const char *fn = fname_arg(L, 4);
  const char *where = luaL_optstring(L, 5, "state");
  int64_t i = param_index(L, o, 2, fn);
  if (lua_isnoneornil(L, 3)) {
    if (lc_optimizer_clear_state(o, i)) lb_core_error(L, fn);
    return 0;
  }
  check_state_table(L, o, i, 3, fn, where);
  const lc_optim_kind_desc *d = lc_optim_kind_info(lc_optimizer_kind(o));
  lc_status st = lc_optimizer_clear_state(o, i);
  /* an entry without a step count still has state */
  int64_t step = 0;
  if (lua_getfield(L, 3, "step") != LUA_TNIL) step = read_step(L, o, i, lua_gettop(L), fn, where);
  lua_pop(L, 1);
  if (!st) st = lc_optimizer_set_step(o, i, step);
  for (int k = 0; !st && k < d->num_state; k++) {
    lua_getfield(L, 3, d->state_names[k]);
    lb_tensor *u = lb_ud(L, -1);
    if (u && u->t) st = lc_optimizer_set_state(o, i, d->state_names[k], u->t);
    lua_pop(L, 1);
  }
  if (st) lb_core_error(L, fn);
  return 0;
}

const luaL_Reg nb_optim_funcs[] = {
    {"optim_kinds", f_kinds},
    {"optim_new", f_new},
    {"optim_add_group", f_add_group},
    {"optim_set_group", f_set_group},
    {"optim_step", f_step},
    {"optim_zero_grad", f_zero_grad},
    {"optim_num_params", f_num_params},
    {"optim_state_of", f_state_of},
    {"optim_check_state", f_check_state},
    {"optim_set_state", f_set_state},
    {NULL, NULL},
};
