/*
 * nn_module.c - the "lucid.Module" userdata and the C functions of "lucid.nn_core".
 *
 * One userdata per live C module: a weak-valued registry table maps each lc_module* to its
 * userdata, so `model.fc1` returns the same Lua object each time while it is alive (identity,
 * ==, and table keys behave). Each userdata owns one reference.
 *
 * Modules written in Lua are C modules of the kind "lua" below: their state holds a registry
 * reference to an instance table (plain Lua fields; its metatable's __index is the Lua class).
 * When a C container runs one, the kind's forward calls the Lua method through lua_pcall and
 * turns a Lua error into a status and message, so no Lua error ever longjmps through C core
 * frames. Called directly from Lua, a Lua module's forward runs as a plain Lua call (any
 * number of arguments and results).
 *
 * Argument conventions: lua/lucid/nn.lua validates options and converts 1-based positions
 * before calling in here; these functions take 0-based positions (documented per function).
 */
#include <lauxlib.h>
#include <lua.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "binding.h"
#include "lucid_lua.h"
#include "lucid_nn.h"
#include "nn_binding.h"

#define NB_MT "lucid.Module"

typedef struct nb_module {
  lc_module *m; /* one reference, or NULL while being built */
} nb_module;

static const char cache_key = 0;   /* registry: weak table lightuserdata(lc_module*) -> ud */
static const char classes_key = 0; /* registry: type name -> class table (set by nn.lua) */

/* The lua_State running the innermost Lua -> C module call on this thread: the Lua kind's
 * forward runs its method there (it may be a coroutine). NULL outside such calls. */
static _Thread_local lua_State *nb_current;

/* ---------------------------------------------------------------- errors */

/* Raises the core's last message (positions 1-based), its leading "cfunction: " or "Kind: "
 * replaced by "<fn>: " when fn is set, in lb_error's dialect ("lucid.<fn>: ..."). */
static int raise_core(lua_State *L, const char *fn) {
  if (!fn) return lb_raise_message(L, lb_last_error());
  return lb_raise_message(L, lua_pushfstring(L, "%s: %s", fn, lb_core_text()));
}

static int raise(lua_State *L, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  const char *msg = lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  return lb_raise_message(L, msg);
}

/* ---------------------------------------------------------------- userdata */

static lc_module *nb_to(lua_State *L, int idx) {
  nb_module *u = luaL_testudata(L, idx, NB_MT);
  return u ? u->m : NULL;
}

static lc_module *nb_check(lua_State *L, int idx, const char *fn) {
  lc_module *m = nb_to(L, idx);
  if (!m) raise(L, "%s: expected a module, got %s", fn, luaL_typename(L, idx));
  return m;
}

static void push_cache(lua_State *L) { lua_rawgetp(L, LUA_REGISTRYINDEX, &cache_key); }

/* Pushes an empty module userdata; fill ->m, then call remember(). */
static nb_module *nb_slot(lua_State *L) {
  nb_module *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->m = NULL;
  luaL_setmetatable(L, NB_MT);
  return u;
}

/* Records the userdata at the top of the stack as m's Lua object. */
static void remember(lua_State *L, lc_module *m) {
  push_cache(L);
  lua_pushvalue(L, -2);
  lua_rawsetp(L, -2, m);
  lua_pop(L, 1);
}

/* Pushes m's userdata (the existing one if alive, else a new one holding a new reference). */
static void nb_push(lua_State *L, lc_module *m) {
  push_cache(L);
  if (lua_rawgetp(L, -1, m) == LUA_TUSERDATA) {
    lua_remove(L, -2);
    return;
  }
  lua_pop(L, 2);
  nb_module *u = nb_slot(L);
  u->m = lc_module_retain(m);
  remember(L, m);
}

/* ---- exported to the other binding files (nn_binding.h) ---- */

lc_module **nb_new_module_slot(lua_State *L) { return &nb_slot(L)->m; }
void nb_remember(lua_State *L) {
  nb_module *u = lua_touserdata(L, -1);
  remember(L, u->m);
}
void nb_push_module(lua_State *L, lc_module *m) { nb_push(L, m); }
lc_module *nb_check_module(lua_State *L, int idx, const char *fn) { return nb_check(L, idx, fn); }
lc_module *nb_to_module(lua_State *L, int idx) { return nb_to(L, idx); }
int nb_raise_core(lua_State *L, const char *fn) { return raise_core(L, fn); }

static int mm_gc(lua_State *L) {
  nb_module *u = luaL_testudata(L, 1, NB_MT);
  if (u && u->m) {
    lc_module *m = u->m;
    u->m = NULL;
    lc_module_release(m);
  }
  return 0;
}

/* ---------------------------------------------------------------- the "lua" kind */

typedef struct lk_state {
  lua_State *main; /* the main thread: valid as long as the Lua state */
  int inst;        /* registry reference to the instance table */
} lk_state;

static lc_status lk_forward(lc_module *m, const lc_tensor *x, lc_tensor **out);
static lc_status lk_extra_repr(const lc_module *m, char **out);
static void lk_destroy(lc_module *m) {
  lk_state *s = lc_module_state(m);
  if (!s) return;
  if (s->inst != LUA_NOREF) luaL_unref(s->main, LUA_REGISTRYINDEX, s->inst);
  free(s);
}

static const lc_module_kind lk_kind = {
    .name = "Module", .forward = lk_forward, .extra_repr = lk_extra_repr, .destroy = lk_destroy};

static bool is_lua_kind(const lc_module *m) { return lc_module_kind_of(m) == &lk_kind; }

static void push_inst(lua_State *L, const lc_module *m) {
  lk_state *s = lc_module_state(m);
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->inst);
}

/* Pushes the class table of m: the Lua class of a Lua module, else the class registered for
 * its type name by nn.lua, else nn.Module's; nil before nn.lua registered any. */
static void push_class(lua_State *L, const lc_module *m) {
  if (is_lua_kind(m)) {
    push_inst(L, m);
    if (lua_getmetatable(L, -1)) {
      lua_getfield(L, -1, "__index");
      lua_replace(L, -3);
      lua_pop(L, 1);
      return;
    }
    lua_pop(L, 1);
    lua_pushnil(L);
    return;
  }
  lua_rawgetp(L, LUA_REGISTRYINDEX, &classes_key);
  if (lua_getfield(L, -1, lc_module_type_name(m)) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_getfield(L, -1, "Module");
  }
  lua_remove(L, -2);
}

/* Protected part of lk_forward: (m, x) as light userdata -> the tensor forward returned. */
static int lk_forward_protected(lua_State *L) {
  lc_module *m = lua_touserdata(L, 1);
  lc_tensor *x = lua_touserdata(L, 2);
  nb_push(L, m); /* 3: self */
  push_inst(L, m);
  lua_getfield(L, -1, "forward"); /* through the class chain */
  lua_pushvalue(L, 3);
  lucid_push_tensor(L, x);
  lua_call(L, 2, 1);
  if (!lucid_to_tensor(L, -1))
    raise(L, "%s:forward must return a tensor, got %s", lc_module_type_name(m),
          luaL_typename(L, -1));
  return 1;
}

static lc_status lk_forward(lc_module *m, const lc_tensor *x, lc_tensor **out) {
  lk_state *s = lc_module_state(m);
  lua_State *L = nb_current ? nb_current : s->main;
  if (!lua_checkstack(L, 8)) return lc_set_error(LC_ENOMEM, "Lua stack overflow");
  int top = lua_gettop(L);
  lua_pushcfunction(L, lk_forward_protected);
  lua_pushlightuserdata(L, m);
  lua_pushlightuserdata(L, (void *)x);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    if (msg) msg = lb_message_text(msg); /* lucid's errors nest without their prefix */
    /* a lucid error raised through Lua keeps its status */
    lc_status st = msg && lc_last_status() != LC_OK && strcmp(msg, lb_last_error()) == 0
                       ? lc_last_status()
                       : LC_EARG;
    lc_set_error(st, "%s", msg ? msg : "(error object is not a string)");
    lua_settop(L, top);
    return st;
  }
  *out = lc_retain(lucid_to_tensor(L, -1));
  lua_settop(L, top);
  return LC_OK;
}

/* extra_repr of a Lua module: its method `extra_repr` when the class defines one. */
static int lk_repr_protected(lua_State *L) {
  lc_module *m = lua_touserdata(L, 1);
  nb_push(L, m);
  push_inst(L, m);
  if (lua_getfield(L, -1, "extra_repr") == LUA_TNIL) return 0;
  lua_pushvalue(L, 2);
  lua_call(L, 1, 1);
  if (!lua_isstring(L, -1)) raise(L, "extra_repr must return a string");
  return 1;
}

static lc_status lk_extra_repr(const lc_module *m, char **out) {
  lk_state *s = lc_module_state(m);
  lua_State *L = nb_current ? nb_current : s->main;
  *out = NULL;
  if (!lua_checkstack(L, 8)) return lc_set_error(LC_ENOMEM, "Lua stack overflow");
  int top = lua_gettop(L);
  lua_pushcfunction(L, lk_repr_protected);
  lua_pushlightuserdata(L, (void *)m);
  lc_status st = LC_OK;
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    st = lc_set_error(LC_EARG, "%s", msg ? msg : "(error object is not a string)");
  } else if (lua_isstring(L, -1)) {
    size_t n;
    const char *str = lua_tolstring(L, -1, &n);
    if (n) {
      *out = malloc(n + 1);
      if (!*out)
        st = lc_set_error(LC_ENOMEM, "out of memory");
      else
        memcpy(*out, str, n + 1);
    }
  }
  lua_settop(L, top);
  return st;
}

/* ---------------------------------------------------------------- names */

/* Reserved names: attributes every module answers (a child or parameter of that name could
 * never be reached with `.`). */
static bool reserved(const char *name) { return strcmp(name, "training") == 0; }

/* Raises when `name` would hide a method of m's class or an attribute. */
static void check_shadow(lua_State *L, lc_module *m, const char *name, const char *fn) {
  lc_attr a;
  if (reserved(name) || lc_module_attr(m, name, &a))
    raise(L, "%s: name \"%s\" is an attribute of %s", fn, name, lc_module_type_name(m));
  push_class(L, m);
  bool hit = false;
  if (!lua_isnil(L, -1)) {
    hit = lua_getfield(L, -1, name) != LUA_TNIL;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  if (hit) raise(L, "%s: name \"%s\" shadows a method of %s", fn, name, lc_module_type_name(m));
}

/* ---------------------------------------------------------------- metamethods */

static void push_attr(lua_State *L, const lc_attr *a) {
  switch (a->type) {
  case LC_ATTR_INT: lua_pushinteger(L, a->i); break;
  case LC_ATTR_DIM: lua_pushinteger(L, a->i >= 0 ? a->i + 1 : a->i); break;
  case LC_ATTR_BOOL: lua_pushboolean(L, a->b); break;
  case LC_ATTR_FLOAT: lua_pushnumber(L, a->f); break;
  }
}

static bool is_indexed(const lc_module *m) { return lc_module_kind_of(m)->flags & LC_KIND_INDEXED; }

/* A child name from Lua as C names it: only a container's digit names (positions) convert, so
 * method and attribute lookups (model.forward) stay allocation-free. May push a string. */
static const char *child_key(lua_State *L, const lc_module *m, const char *k) {
  return is_indexed(m) && *k >= '0' && *k <= '9' ? lb_path_in(L, m, k) : k;
}

/* model[i]: 1-based, negative from the end. Past the end is nil (ipairs stops there). */
static int index_int(lua_State *L, lc_module *m) {
  int is_int = 0;
  lua_Integer i = lua_tointegerx(L, 2, &is_int); /* 3.0 is 3, as in a Lua table */
  if (!is_indexed(m) || !is_int || lua_type(L, 2) != LUA_TNUMBER) {
    lua_pushnil(L);
    return 1;
  }
  int64_t n = lc_module_num_children(m);
  if (i > n) {
    lua_pushnil(L);
    return 1;
  }
  nb_push(L, lc_module_child(m, lb_module_position(L, lc_module_type_name(m), 2, n, false)));
  return 1;
}

static int mm_index(lua_State *L) {
  lc_module *m = nb_check(L, 1, "index");
  if (lua_type(L, 2) == LUA_TNUMBER) return index_int(L, m);
  if (lua_type(L, 2) != LUA_TSTRING) {
    lua_pushnil(L);
    return 1;
  }
  const char *k = lua_tostring(L, 2);
  if (is_lua_kind(m)) {
    push_inst(L, m);
    if (lua_getfield(L, -1, k) != LUA_TNIL) return 1;
    lua_pop(L, 2);
  }
  int64_t i;
  if ((i = lc_module_find_child(m, child_key(L, m, k))) >= 0) {
    nb_push(L, lc_module_child(m, i));
    return 1;
  }
  if ((i = lc_module_find_parameter(m, k)) >= 0) {
    lucid_push_tensor(L, lc_module_own_parameter(m, i));
    return 1;
  }
  if ((i = lc_module_find_buffer(m, k)) >= 0) {
    lucid_push_tensor(L, lc_module_own_buffer(m, i));
    return 1;
  }
  if (strcmp(k, "training") == 0) {
    lua_pushboolean(L, lc_module_is_training(m));
    return 1;
  }
  lc_attr a;
  if (lc_module_attr(m, k, &a)) {
    push_attr(L, &a);
    return 1;
  }
  if (is_lua_kind(m)) {
    lua_pushnil(L);
    return 1;
  }
  push_class(L, m);
  if (lua_isnil(L, -1)) return 1;
  lua_getfield(L, -1, k);
  return 1;
}

/* name is Lua's (a positional one 1-based) */
static void add_child(lua_State *L, lc_module *m, int64_t pos, const char *name, lc_module *c,
                      const char *fn) {
  if (name) {
    if (is_indexed(m) && strcmp(name, "0") == 0)
      raise(L, "%s: a name made of digits is a position: \"0\" is none (positions count from 1)",
            fn);
    name = child_key(L, m, name);
    if (lc_module_check_name(m, name, fn) && !(is_indexed(m) && *name >= '0' && *name <= '9'))
      raise_core(L, fn);
    check_shadow(L, m, name, fn);
  }
  if (lc_module_insert(m, pos, name, c)) raise_core(L, fn);
}

static int mm_newindex(lua_State *L) {
  lc_module *m = nb_check(L, 1, "newindex");
  const char *tn = lc_module_type_name(m);
  if (lua_type(L, 2) == LUA_TNUMBER) {
    if (!is_indexed(m) || !lua_isinteger(L, 2))
      return raise(L, "%s: cannot assign to index %s", tn, lua_tostring(L, 2));
    lua_Integer i = lua_tointeger(L, 2), n = lc_module_num_children(m);
    lc_module *c = nb_to(L, 3);
    if (!c)
      return raise(L, "%s: [%d] = value: expected a module, got %s", tn, (int)i,
                   luaL_typename(L, 3));
    if (i == n + 1) {
      add_child(L, m, n, NULL, c, tn);
      return 0;
    }
    if (lc_module_replace(m, lb_module_position(L, tn, 2, n, false), c)) return raise_core(L, tn);
    return 0;
  }
  if (lua_type(L, 2) != LUA_TSTRING)
    return raise(L, "%s: attribute names are strings, got %s", tn, luaL_typename(L, 2));
  const char *k = lua_tostring(L, 2);
  const char *ck = child_key(L, m, k);
  int64_t ci = lc_module_find_child(m, ck), pi = lc_module_find_parameter(m, k),
          bi = lc_module_find_buffer(m, k);
  lc_module *c = nb_to(L, 3);
  lc_tensor *t = lucid_to_tensor(L, 3);
  if (strcmp(k, "training") == 0)
    return raise(L, "%s: set training with train(mode) or eval()", tn);
  if (lua_isnil(L, 3) && (ci >= 0 || pi >= 0 || bi >= 0)) {
    if (lc_module_remove(m, ci >= 0 ? ck : k)) return raise_core(L, tn);
    return 0;
  }
  if (c) {
    if (is_indexed(m) && strcmp(k, "0") == 0)
      return raise(L, "%s: a name made of digits is a position: \"0\" is none (positions count "
                      "from 1)", tn);
    if (pi >= 0 || bi >= 0)
      return raise(L, "%s: cannot assign a module to %s \"%s\"", tn,
                   pi >= 0 ? "parameter" : "buffer", k);
    if (ci < 0) check_shadow(L, m, k, tn);
    if (is_lua_kind(m)) { /* a plain field of that name gives way to the child */
      push_inst(L, m);
      lua_pushnil(L);
      lua_setfield(L, -2, k);
      lua_pop(L, 1);
    }
    if (lc_module_set_child(m, ck, c)) return raise_core(L, tn);
    return 0;
  }
  if (t) {
    if (ci >= 0) return raise(L, "%s: cannot assign a tensor to child module \"%s\"", tn, k);
    if (bi >= 0) {
      if (lc_module_register_buffer(m, k, t)) return raise_core(L, tn);
      return 0;
    }
    if (pi >= 0 || (lc_is_leaf(t) && lc_requires_grad(t))) {
      if (pi < 0) check_shadow(L, m, k, tn);
      if (lc_module_register_parameter(m, k, t)) return raise_core(L, tn);
      if (is_lua_kind(m)) {
        push_inst(L, m);
        lua_pushnil(L);
        lua_setfield(L, -2, k);
        lua_pop(L, 1);
      }
      return 0;
    }
    if (lc_requires_grad(t) && is_lua_kind(m))
      return raise(L,
                   "%s: cannot make the non-leaf tensor \"%s\" a parameter: use "
                   "nn.Parameter(t) or t:detach():requires_grad_()",
                   tn, k);
  }
  if (ci >= 0 || pi >= 0 || bi >= 0)
    return raise(L, "%s: cannot assign a %s to %s \"%s\"", tn, luaL_typename(L, 3),
                 ci >= 0   ? "child module"
                 : pi >= 0 ? "parameter"
                           : "buffer",
                 k);
  if (!is_lua_kind(m))
    return raise(L,
                 "%s: cannot set attribute \"%s\" (a built-in module takes modules, "
                 "parameters and buffers only)",
                 tn, k);
  push_inst(L, m);
  lua_pushvalue(L, 3);
  lua_setfield(L, -2, k);
  return 0;
}

static int run_forward(lua_State *L, lc_module *m, int xidx) {
  lc_tensor *x = lucid_to_tensor(L, xidx);
  if (!x)
    return raise(L, "%s: expected a tensor input, got %s", lc_module_type_name(m),
                 luaL_typename(L, xidx));
  if (lua_gettop(L) > xidx)
    return raise(L, "%s: expected one input tensor, got %d arguments", lc_module_type_name(m),
                 lua_gettop(L) - xidx + 1);
  lua_State *saved = nb_current;
  nb_current = L;
  lc_tensor *y = NULL;
  lc_status st = lc_module_forward(m, x, &y);
  nb_current = saved;
  if (st) return raise_core(L, NULL);
  /* pushing can only fail on memory exhaustion; y would then leak */
  lucid_push_tensor(L, y);
  lc_release(y);
  return 1;
}

static int mm_call(lua_State *L) {
  lc_module *m = nb_check(L, 1, "call");
  if (is_lua_kind(m) && lc_module_has_hooks(m)) {
    /* hooks run in the core's forward, which takes one tensor */
    if (lua_gettop(L) != 2 || !lucid_to_tensor(L, 2))
      return raise(L,
                   "%s: a module with hooks takes one tensor input (module hooks around a "
                   "forward of several arguments are not supported)",
                   lc_module_type_name(m));
    return run_forward(L, m, 2);
  }
  if (is_lua_kind(m)) {
    /* a Lua module called from Lua: a plain call of its forward, with all arguments */
    int nargs = lua_gettop(L) - 1;
    push_inst(L, m);
    lua_getfield(L, -1, "forward");
    lua_remove(L, -2);
    lua_insert(L, 1);
    lua_call(L, nargs + 1, LUA_MULTRET);
    return lua_gettop(L);
  }
  return run_forward(L, m, 2);
}

static int mm_len(lua_State *L) {
  lc_module *m = nb_check(L, 1, "len");
  if (!(lc_module_kind_of(m)->flags & LC_KIND_CONTAINER))
    return raise(L, "%s has no length (only containers do)", lc_module_type_name(m));
  lua_pushinteger(L, lc_module_num_children(m));
  return 1;
}

static int mm_tostring(lua_State *L) {
  lc_module *m = nb_check(L, 1, "tostring");
  char *s = NULL;
  lua_State *saved = nb_current;
  nb_current = L;
  lc_status st = lc_module_to_string_based(m, 1, &s); /* Lua counts from 1 */
  nb_current = saved;
  if (st) return raise_core(L, NULL);
  lua_pushstring(L, s); /* may raise only on memory exhaustion */
  lc_free(s);
  return 1;
}

/* ---------------------------------------------------------------- constructors */

static int f_linear(lua_State *L) {
  lua_Integer in = luaL_checkinteger(L, 1), out = luaL_checkinteger(L, 2);
  bool bias = lua_toboolean(L, 3);
  nb_module *u = nb_slot(L);
  if (lc_nn_linear(in, out, bias, &u->m)) return raise_core(L, "nn.Linear");
  remember(L, u->m);
  return 1;
}

/* flatten(start_dim, end_dim): 1-based dims (negative from the end), as Lua users write them,
 * converted by lb_dim_option */
static int f_flatten(lua_State *L) {
  int s = lb_dim_option(L, "nn.Flatten", 1, "start_dim");
  int e = lb_dim_option(L, "nn.Flatten", 2, "end_dim");
  nb_module *u = nb_slot(L);
  if (lc_nn_flatten(s, e, &u->m))
    return raise_core(L, "nn.Flatten");
  remember(L, u->m);
  return 1;
}

/* unflatten(dim, sizes): the 1-based dim, sizes a sequence of integers */
static int f_unflatten(lua_State *L) {
  const char *fn = "nn.Unflatten";
  int d = lb_dim_option(L, fn, 1, "dim");
  int64_t sizes[LC_MAX_DIMS + 1];
  int n = lb_sizes_arg(L, fn, 2, "unflattened_size", sizes); /* its rules are lc_nn_unflatten's */
  nb_module *u = nb_slot(L);
  if (lc_nn_unflatten(d, n, sizes, &u->m)) return lb_core_error(L, fn);
  remember(L, u->m);
  return 1;
}

static int make_simple(lua_State *L, lc_status (*fn)(lc_module **), const char *name) {
  nb_module *u = nb_slot(L);
  if (fn(&u->m)) return raise_core(L, name);
  remember(L, u->m);
  return 1;
}
static int f_identity(lua_State *L) { return make_simple(L, lc_nn_identity, "nn.Identity"); }
static int f_relu(lua_State *L) { return make_simple(L, lc_nn_relu, "nn.ReLU"); }
static int f_tanh(lua_State *L) { return make_simple(L, lc_nn_tanh, "nn.Tanh"); }
static int f_sigmoid(lua_State *L) { return make_simple(L, lc_nn_sigmoid, "nn.Sigmoid"); }

/* container(kind): an empty "Sequential", "ModuleList" or "ModuleDict" */
static int f_container(lua_State *L) {
  const char *k = luaL_checkstring(L, 1);
  nb_module *u = nb_slot(L);
  lc_status st;
  if (!strcmp(k, "Sequential"))
    st = lc_nn_sequential(0, NULL, NULL, &u->m);
  else if (!strcmp(k, "ModuleList"))
    st = lc_nn_module_list(0, NULL, &u->m);
  else if (!strcmp(k, "ModuleDict"))
    st = lc_nn_module_dict(0, NULL, NULL, &u->m);
  else
    return raise(L, "container: unknown kind %s", k);
  if (st) return raise_core(L, k);
  remember(L, u->m);
  return 1;
}

/* new_lua_module(type_name, class): a Lua module whose instance table has class as __index */
static int f_new_lua_module(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_State *main;
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  main = lua_tothread(L, -1);
  lua_pop(L, 1);
  nb_module *u = nb_slot(L);
  lk_state *st = malloc(sizeof *st);
  if (!st) return raise(L, "nn.Module: out of memory");
  st->main = main;
  st->inst = LUA_NOREF;
  if (lc_module_new(&lk_kind, st, name, &u->m)) return raise_core(L, name);
  lua_newtable(L); /* instance */
  lua_newtable(L); /* its metatable */
  lua_pushvalue(L, 2);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);
  st->inst = luaL_ref(L, LUA_REGISTRYINDEX);
  remember(L, u->m);
  return 1;
}

/* parameter(t): a new leaf sharing t's data, requiring grad */
static int f_parameter(lua_State *L) {
  lc_tensor *t = lucid_to_tensor(L, 1);
  if (!t) return raise(L, "nn.Parameter: expected a tensor, got %s", luaL_typename(L, 1));
  lc_tensor *p = NULL;
  if (lc_detach(t, &p)) return raise_core(L, "nn.Parameter");
  if (lc_set_requires_grad(p, true)) {
    lc_release(p);
    return raise_core(L, "nn.Parameter");
  }
  lucid_push_tensor(L, p);
  lc_release(p);
  return 1;
}

/* ---------------------------------------------------------------- structure */

/* insert(m, pos|nil, name|nil, child, fn): pos 1-based (negative from the end), nil appends */
static int f_insert(lua_State *L) {
  const char *fn = luaL_optstring(L, 5, "insert");
  lc_module *m = nb_check(L, 1, fn);
  int64_t n = lc_module_num_children(m);
  int64_t pos = lua_isnoneornil(L, 2) ? n : lb_module_position(L, fn, 2, n, true);
  const char *name = lua_isnoneornil(L, 3) ? NULL : lua_tostring(L, 3);
  if (!lua_isnoneornil(L, 3) && lua_type(L, 3) != LUA_TSTRING)
    return raise(L, "%s: a name must be a string, got %s", fn, luaL_typename(L, 3));
  lc_module *c = nb_to(L, 4);
  if (!c)
    return raise(L, "%s: expected a module%s%s%s, got %s", fn, name ? " for \"" : "",
                 name ? name : "", name ? "\"" : "", luaL_typename(L, 4));
  add_child(L, m, pos, name, c, fn);
  return 0;
}

/* pop(m, pos|nil, fn): pos 1-based (negative from the end), nil the last */
static int f_pop(lua_State *L) {
  const char *fn = luaL_optstring(L, 3, "pop");
  lc_module *m = nb_check(L, 1, fn);
  int64_t n = lc_module_num_children(m);
  if (lua_isnoneornil(L, 2)) { /* the last */
    lua_settop(L, 3);
    lua_pushinteger(L, -1);
    lua_replace(L, 2);
  }
  int64_t pos = lb_module_position(L, fn, 2, n, false);
  lc_module *c = NULL;
  if (lc_module_pop(m, pos, &c)) return raise_core(L, NULL);
  /* c is only kept in a C local across nb_push, which raises only on memory exhaustion */
  nb_push(L, c);
  lc_module_release(c);
  return 1;
}

static int f_remove(lua_State *L) {
  lc_module *m = nb_check(L, 1, "remove");
  const char *name = luaL_checkstring(L, 2);
  name = child_key(L, m, name);
  if (lc_module_remove(m, name)) return raise_core(L, luaL_optstring(L, 3, NULL));
  return 0;
}

/* slice(m, i, j|nil, fn): entries i..j (1-based, inclusive, negative from the end) */
static int f_slice(lua_State *L) {
  const char *fn = luaL_optstring(L, 4, "slice");
  lc_module *m = nb_check(L, 1, fn);
  int64_t start, end;
  lb_module_range(L, fn, 2, lc_module_num_children(m), &start, &end);
  nb_module *u = nb_slot(L);
  if (lc_module_slice(m, start, end, &u->m)) return raise_core(L, "slice");
  remember(L, u->m);
  return 1;
}

static int f_len(lua_State *L) {
  lua_pushinteger(L, lc_module_num_children(nb_check(L, 1, "len")));
  return 1;
}

/* register_parameter(m, name, t, fn) / register_buffer(m, name, t, fn) */
static int register_tensor(lua_State *L, bool param) {
  const char *fn = luaL_optstring(L, 4, param ? "register_parameter" : "register_buffer");
  lc_module *m = nb_check(L, 1, fn);
  if (lua_type(L, 2) != LUA_TSTRING)
    return raise(L, "%s: a name must be a string, got %s", fn, luaL_typename(L, 2));
  const char *name = lua_tostring(L, 2);
  lc_tensor *t = lucid_to_tensor(L, 3);
  if (!t)
    return raise(L, "%s: expected a tensor for \"%s\", got %s", fn, name, luaL_typename(L, 3));
  bool exists =
      param ? lc_module_find_parameter(m, name) >= 0 : lc_module_find_buffer(m, name) >= 0;
  if (!exists) {
    if (lc_module_check_name(m, name, fn)) return raise_core(L, fn);
    check_shadow(L, m, name, fn);
  }
  lc_status st =
      param ? lc_module_register_parameter(m, name, t) : lc_module_register_buffer(m, name, t);
  if (st) return raise_core(L, fn);
  if (is_lua_kind(m)) {
    push_inst(L, m);
    lua_pushnil(L);
    lua_setfield(L, -2, name);
  }
  return 0;
}
static int f_register_parameter(lua_State *L) { return register_tensor(L, true); }
static int f_register_buffer(lua_State *L) { return register_tensor(L, false); }

/* ---------------------------------------------------------------- queries */

/* A userdata holding a list while it is copied into Lua tables: freed by the collector if
 * anything raises half-way. */
typedef struct nb_box {
  bool modules;
  lc_named_tensors t;
  lc_named_modules m;
} nb_box;

static int box_gc(lua_State *L) {
  nb_box *b = luaL_testudata(L, 1, "lucid.nn.box"); /* NULL for a foreign value */
  if (b->modules)
    lc_named_modules_free(&b->m);
  else
    lc_named_tensors_free(&b->t);
  return 0;
}

static nb_box *new_box(lua_State *L, bool modules) {
  nb_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  memset(b, 0, sizeof *b);
  b->modules = modules;
  if (luaL_newmetatable(L, "lucid.nn.box")) {
    lua_pushcfunction(L, box_gc);
    lua_setfield(L, -2, "__gc");
    lb_seal_metatable(L);
  }
  lua_setmetatable(L, -2);
  return b;
}

/* Replaces the box on top with two sequences: names (paths relative to m, as Lua names them),
 * values. */
static int unbox(lua_State *L, const lc_module *m) {
  nb_box *b = lua_touserdata(L, -1);
  int64_t n = b->modules ? b->m.n : b->t.n;
  lua_createtable(L, (int)n, 0);
  lua_createtable(L, (int)n, 0);
  for (int64_t i = 0; i < n; i++) {
    lb_path_out(L, m, b->modules ? b->m.names[i] : b->t.names[i]);
    lua_rawseti(L, -3, i + 1);
    if (b->modules)
      nb_push(L, b->m.modules[i]);
    else
      lucid_push_tensor(L, b->t.tensors[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_remove(L, -3);
  return 2;
}

static int query_tensors(lua_State *L, int which) {
  lc_module *m = nb_check(L, 1, "parameters");
  bool recurse = lua_isnone(L, 2) || lua_toboolean(L, 2);
  nb_box *b = new_box(L, false);
  lc_status st = which == 0   ? lc_module_named_parameters(m, recurse, &b->t)
                 : which == 1 ? lc_module_named_buffers(m, recurse, &b->t)
                              : lc_module_state_dict(m, &b->t);
  if (st) return raise_core(L, NULL);
  return unbox(L, m);
}
static int f_named_parameters(lua_State *L) { return query_tensors(L, 0); }
static int f_named_buffers(lua_State *L) { return query_tensors(L, 1); }
static int f_state_dict(lua_State *L) { return query_tensors(L, 2); }

static int query_modules(lua_State *L, bool all) {
  lc_module *m = nb_check(L, 1, "modules");
  nb_box *b = new_box(L, true);
  lc_status st = all ? lc_module_named_modules(m, &b->m) : lc_module_named_children(m, &b->m);
  if (st) return raise_core(L, NULL);
  return unbox(L, m);
}
static int f_named_children(lua_State *L) { return query_modules(L, false); }
static int f_named_modules(lua_State *L) { return query_modules(L, true); }

/* load_state_dict(m, names, tensors, strict) -> missing names, unexpected names */
static int f_load_state_dict(lua_State *L) {
  lc_module *m = nb_check(L, 1, "load_state_dict");
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  bool strict = lua_toboolean(L, 4);
  lua_Integer n = luaL_len(L, 2);
  nb_box *sd = new_box(L, false); /* 5: names borrowed from Lua strings are copied in */
  sd->t.names = calloc((size_t)n + 1, sizeof *sd->t.names);
  sd->t.tensors = calloc((size_t)n + 1, sizeof *sd->t.tensors);
  if (!sd->t.names || !sd->t.tensors) return raise(L, "load_state_dict: out of memory");
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, 2, i);
    lua_rawgeti(L, 3, i);
    lc_tensor *t = lucid_to_tensor(L, -1);
    if (!t)
      return raise(L, "load_state_dict: value for \"%s\" must be a tensor, got %s",
                   lua_tostring(L, -2), luaL_typename(L, -1));
    size_t len;
    lb_path_in(L, m, lua_tostring(L, -2));
    const char *s = lua_tolstring(L, -1, &len);
    char *copy = malloc(len + 1);
    if (!copy) return raise(L, "load_state_dict: out of memory");
    memcpy(copy, s, len + 1);
    sd->t.names[sd->t.n] = copy;
    sd->t.tensors[sd->t.n] = lc_retain(t);
    sd->t.n++;
    lua_pop(L, 3);
  }
  nb_box *miss = new_box(L, false);  /* 6 */
  nb_box *unexp = new_box(L, false); /* 7 */
  lua_State *saved = nb_current;
  nb_current = L;
  lc_status st = lc_module_load_state_dict(m, &sd->t, strict, &miss->t, &unexp->t);
  nb_current = saved;
  if (st) return raise_core(L, NULL);
  for (int k = 0; k < 2; k++) {
    nb_box *b = k ? unexp : miss;
    lua_createtable(L, (int)b->t.n, 0);
    for (int64_t i = 0; i < b->t.n; i++) {
      lb_path_out(L, m, b->t.names[i]);
      lua_rawseti(L, -2, i + 1);
    }
  }
  return 2;
}

static int f_num_parameters(lua_State *L) {
  lua_pushinteger(L, lc_module_num_parameters(nb_check(L, 1, "num_parameters")));
  return 1;
}

static int f_train(lua_State *L) {
  lc_module_train(nb_check(L, 1, "train"), lua_toboolean(L, 2));
  return 0;
}

static int f_zero_grad(lua_State *L) {
  if (lc_module_zero_grad(nb_check(L, 1, "zero_grad"), lua_toboolean(L, 2)))
    return raise_core(L, "zero_grad");
  return 0;
}

/* to_dtype(m, dtype_name) */
static int f_to_dtype(lua_State *L) {
  lc_module *m = nb_check(L, 1, "to");
  lc_dtype dt;
  if (lc_dtype_from_name(luaL_checkstring(L, 2), &dt))
    return raise(L,
                 "to: unknown dtype \"%s\" (expected \"float32\", \"float64\", \"float16\" or "
                 "\"bfloat16\")",
                 lua_tostring(L, 2));
  if (lc_module_to_dtype(m, dt)) return raise_core(L, "to");
  lua_settop(L, 1);
  return 1;
}

static int f_reset_parameters(lua_State *L) {
  if (lc_module_reset_parameters(nb_check(L, 1, "reset_parameters")))
    return raise_core(L, "reset_parameters");
  return 0;
}

/* ---------------------------------------------------------------- module hooks
 * register_forward_pre_hook / register_forward_hook / register_full_backward_hook(m, fn): the
 * core runs the hooks (src/nn/module_hooks.c); each Lua hook is called protected, in the
 * lua_State running the forward (nb_current) or the backward started from Lua. */

enum { MH_PRE, MH_FWD, MH_BWD };
static const char *const mh_what[] = {"forward pre-hook", "forward hook", "backward hook"};

typedef struct mh_call {
  int kind;
  lb_luaref *h;
  lc_module *m;
  const lc_tensor *a, *b; /* pre: input; fwd: input, output; bwd: grad_input, grad_output */
  lc_tensor *rep;
} mh_call;

static void push_or_nil(lua_State *L, const lc_tensor *t) {
  if (t)
    lucid_push_tensor(L, (lc_tensor *)t);
  else
    lua_pushnil(L);
}

static int mh_protected(lua_State *L) {
  mh_call *c = lua_touserdata(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->h->ref);
  nb_push(L, c->m);
  push_or_nil(L, c->a);
  if (c->kind != MH_PRE) push_or_nil(L, c->b);
  lua_call(L, c->kind == MH_PRE ? 2 : 3, 1);
  if (lua_isnil(L, -1)) return 0;
  lc_tensor *t = lucid_to_tensor(L, -1);
  if (!t)
    return raise(L, "a %s must return a tensor or nil, got %s", mh_what[c->kind],
                 luaL_typename(L, -1));
  c->rep = lc_retain(t);
  return 0;
}

static lc_status mh_run(mh_call *c, lc_tensor **replace) {
  lua_State *L = c->kind == MH_BWD ? lb_backward_state() : nb_current ? nb_current : c->h->main;
  if (!L)
    return lc_set_error(LC_EGRAD, "a module backward hook written in Lua can only run in a "
                                  "backward started from Lua");
  if (!lua_checkstack(L, 8)) return lc_set_error(LC_ENOMEM, "Lua stack overflow");
  lua_pushcfunction(L, mh_protected);
  lua_pushlightuserdata(L, c);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    if (msg) msg = lb_message_text(msg);
    lc_status st = lc_set_error(LC_EARG, "error in a %s: %s", mh_what[c->kind],
                                msg ? msg : "(error object is not a string)");
    lua_pop(L, 1);
    lc_release(c->rep);
    return st;
  }
  *replace = c->rep;
  return LC_OK;
}

static lc_status mh_pre(void *ud, lc_module *m, const lc_tensor *x, lc_tensor **rep) {
  mh_call c = {MH_PRE, ud, m, x, NULL, NULL};
  return mh_run(&c, rep);
}
static lc_status mh_fwd(void *ud, lc_module *m, const lc_tensor *x, const lc_tensor *y,
                        lc_tensor **rep) {
  mh_call c = {MH_FWD, ud, m, x, y, NULL};
  return mh_run(&c, rep);
}
static lc_status mh_bwd(void *ud, lc_module *m, const lc_tensor *gi, const lc_tensor *go,
                        lc_tensor **rep) {
  mh_call c = {MH_BWD, ud, m, gi, go, NULL};
  return mh_run(&c, rep);
}

static int register_module_hook(lua_State *L, int kind, const char *fn) {
  lc_module *m = nb_check(L, 1, fn);
  if (lua_type(L, 2) != LUA_TFUNCTION && !luaL_getmetafield(L, 2, "__call"))
    return raise(L, "lucid.nn.Module:%s: argument 1 (hook): expected a function, got %s", fn,
                 luaL_typename(L, 2));
  lua_settop(L, 2);
  lc_hook_handle **hd = lb_hook_handle_new(L);
  lb_luaref *h = lb_luaref_new(L, 2);
  if (!h) return raise(L, "lucid.nn.Module:%s: out of memory", fn);
  lc_status st =
      kind == MH_PRE   ? lc_module_register_forward_pre_hook(m, mh_pre, h, lb_luaref_free, hd)
      : kind == MH_FWD ? lc_module_register_forward_hook(m, mh_fwd, h, lb_luaref_free, hd)
                       : lc_module_register_full_backward_hook(m, mh_bwd, h, lb_luaref_free, hd);
  if (st) {
    lb_luaref_free(h);
    return raise_core(L, fn);
  }
  return 1;
}

static int f_register_forward_pre_hook(lua_State *L) {
  return register_module_hook(L, MH_PRE, "register_forward_pre_hook");
}
static int f_register_forward_hook(lua_State *L) {
  return register_module_hook(L, MH_FWD, "register_forward_hook");
}
static int f_register_full_backward_hook(lua_State *L) {
  return register_module_hook(L, MH_BWD, "register_full_backward_hook");
}
static int f_has_hooks(lua_State *L) {
  lua_pushboolean(L, lc_module_has_hooks(nb_check(L, 1, "has_hooks")));
  return 1;
}

/* forward(m, x): the built-in forward (what Module:forward does for built-in kinds) */
static int f_forward(lua_State *L) {
  lc_module *m = nb_check(L, 1, "forward");
  if (is_lua_kind(m))
    return raise(L,
                 "%s:forward is not defined (a module written in Lua defines "
                 "function %s:forward(x))",
                 lc_module_type_name(m), lc_module_type_name(m));
  return run_forward(L, m, 2);
}

static int f_type_name(lua_State *L) {
  lua_pushstring(L, lc_module_type_name(nb_check(L, 1, "type_name")));
  return 1;
}

static int f_is_module(lua_State *L) {
  lua_pushboolean(L, nb_to(L, 1) != NULL);
  return 1;
}

static int f_is_indexed(lua_State *L) {
  lua_pushboolean(L, is_indexed(nb_check(L, 1, "is_indexed")));
  return 1;
}

static int f_is_lua_module(lua_State *L) {
  lua_pushboolean(L, is_lua_kind(nb_check(L, 1, "is_lua_module")));
  return 1;
}

/* set_class(type_name, class): the method table of built-in modules of that type */
static int f_set_class(lua_State *L) {
  luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &classes_key);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_rawset(L, -3);
  return 0;
}

/* instance(m): the instance table of a Lua module (its plain fields) */
static int f_instance(lua_State *L) {
  lc_module *m = nb_check(L, 1, "instance");
  if (!is_lua_kind(m)) return 0;
  push_inst(L, m);
  return 1;
}

static const luaL_Reg meta[] = {
    {"__index", mm_index}, {"__newindex", mm_newindex}, {"__call", mm_call},
    {"__len", mm_len},     {"__tostring", mm_tostring}, {"__gc", mm_gc},
    {NULL, NULL},
};

static const luaL_Reg funcs[] = {
    {"linear", f_linear},
    {"flatten", f_flatten},
    {"unflatten", f_unflatten},
    {"identity", f_identity},
    {"relu", f_relu},
    {"tanh", f_tanh},
    {"sigmoid", f_sigmoid},
    {"container", f_container},
    {"new_lua_module", f_new_lua_module},
    {"parameter", f_parameter},
    {"insert", f_insert},
    {"shift_positions", lb_shift_positions},
    {"collect_args", lb_collect_args},
    {"raise", lb_raise},
    {"position", lb_position_lua},
    {"pop", f_pop},
    {"remove", f_remove},
    {"slice", f_slice},
    {"len", f_len},
    {"register_parameter", f_register_parameter},
    {"register_buffer", f_register_buffer},
    {"named_parameters", f_named_parameters},
    {"named_buffers", f_named_buffers},
    {"state_dict", f_state_dict},
    {"named_children", f_named_children},
    {"named_modules", f_named_modules},
    {"load_state_dict", f_load_state_dict},
    {"num_parameters", f_num_parameters},
    {"train", f_train},
    {"zero_grad", f_zero_grad},
    {"reset_parameters", f_reset_parameters},
    {"to_dtype", f_to_dtype},
    {"forward", f_forward},
    {"register_forward_pre_hook", f_register_forward_pre_hook},
    {"register_forward_hook", f_register_forward_hook},
    {"register_full_backward_hook", f_register_full_backward_hook},
    {"has_hooks", f_has_hooks},
    {"tostring", mm_tostring},
    {"type_name", f_type_name},
    {"is_module", f_is_module},
    {"is_indexed", f_is_indexed},
    {"is_lua_module", f_is_lua_module},
    {"set_class", f_set_class},
    {"instance", f_instance},
    {NULL, NULL},
};

int lucid_open_nn_core(lua_State *L) {
  if (luaL_newmetatable(L, NB_MT)) {
    luaL_setfuncs(L, meta, 0);
    lua_pushliteral(L, "lucid.Module");
    lua_setfield(L, -2, "__name");
    lb_seal_metatable(L);
  }
  lua_pop(L, 1);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &cache_key) != LUA_TTABLE) {
    lua_newtable(L);
    lua_newtable(L);
    lua_pushliteral(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &cache_key);
  }
  lua_pop(L, 1);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &classes_key) != LUA_TTABLE) {
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &classes_key);
  }
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  /* the constructors of the layer families, each in its own binding file */
  const luaL_Reg *families[] = {nb_activation_funcs, nb_dropout_funcs,    nb_embedding_funcs,
                                nb_loss_funcs,       nb_conv_funcs,       nb_norm_funcs,
                                nb_optim_funcs,      nb_interpolate_funcs};
  for (size_t i = 0; i < sizeof families / sizeof *families; i++)
    luaL_setfuncs(L, families[i], 0);
  return 1;
}
