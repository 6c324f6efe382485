/*
 * module.c - the C module "lucid.core" and the embedding entry points of lucid_lua.h.
 */
#include "binding.h"
#include "nn_binding.h"

#include <dlfcn.h>
#include <stdio.h>

static const char state_key = 0; /* registry key (its address) of the lb_state userdata */

lb_state *lb_state_of(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &state_key);
  lb_state *s = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return s;
}

/* package.preload[name] = f unless something is there already. */
static void preload_c(lua_State *L, const char *name, lua_CFunction f) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  if (lua_getfield(L, -1, name) == LUA_TNIL) {
    lua_pushcfunction(L, f);
    lua_setfield(L, -3, name);
  }
  lua_pop(L, 2);
}

/* Pushes a closure of f with the binding's upvalues (mt, state, methods, op, name). */
static void push_fn(lua_State *L, int mt, int st, int methods, lua_CFunction f, int op,
                    const char *name) {
  lua_pushvalue(L, mt);
  lua_pushvalue(L, st);
  lua_pushvalue(L, methods);
  lua_pushinteger(L, op);
  lua_pushstring(L, name);
  lua_pushcclosure(L, f, LB_NUPVALUES);
}

static void register_all(lua_State *L, int mt, int st, int methods, int module,
                         const lb_reg *regs) {
  for (const lb_reg *r = regs; r->name; r++) {
    push_fn(L, mt, st, methods, r->fn, r->op, r->name);
    if (r->where & LB_METHOD) {
      lua_pushvalue(L, -1);
      lua_setfield(L, methods, r->name);
    }
    if (r->where & LB_FUNC) {
      lua_pushvalue(L, -1);
      lua_setfield(L, module, r->name);
    }
    lua_pop(L, 1);
  }
}

/* lua_close() dlcloses C modules, but the pool's and OpenBLAS's worker threads started by the core
 * live on in this library's code: unmapping it under them crashes the process at exit. Pin the
 * library (a no-op when linked into an executable). */
static void pin_library(void) {
  Dl_info info;
  if (dladdr((void *)luaopen_lucid_core, &info) && info.dli_fname)
    (void)dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

int luaopen_lucid_core(lua_State *L) {
  luaL_checkversion(L);
  pin_library();
  luaL_checkstack(L, 16, "lucid.core");
  luaL_newmetatable(L, LB_TENSOR_MT);
  int mt = lua_gettop(L);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &state_key) != LUA_TUSERDATA) {
    lua_pop(L, 1);
    lb_state *s = lua_newuserdatauv(L, sizeof *s, 0);
    s->next_gc = lc_bytes_in_use() + LB_GC_MIN_STEP;
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &state_key);
  }
  int st = lua_gettop(L);
  lua_newtable(L);
  int methods = lua_gettop(L);
  lua_newtable(L);
  int module = lua_gettop(L);

  for (const luaL_Reg *r = lb_tensor_meta; r->name; r++) {
    push_fn(L, mt, st, methods, r->func, 0, r->name);
    lua_setfield(L, mt, r->name);
  }
  lua_pushvalue(L, mt);
  lb_seal_metatable(L); /* getmetatable(t) is "lucid.Tensor" */
  lua_pop(L, 1);
  register_all(L, mt, st, methods, module, lb_ops_regs);
  register_all(L, mt, st, methods, module, lb_create_regs);
  register_all(L, mt, st, methods, module, lb_autograd_regs);
  register_all(L, mt, st, methods, module, lb_rearrange_regs);
  register_all(L, mt, st, methods, module, lb_scan_regs);
  register_all(L, mt, st, methods, module, lb_sort_regs);
  register_all(L, mt, st, methods, module, lb_rnn_regs);
  register_all(L, mt, st, methods, module, lb_misc_regs);
  register_all(L, mt, st, methods, module, lb_half_regs);
  register_all(L, mt, st, methods, module, lb_advindex_regs);

  lua_newtable(L); /* lucid.linalg: names "linalg.x" stored as x */
  for (const lb_reg *r = lb_linalg_regs; r->name; r++) {
    push_fn(L, mt, st, methods, r->fn, r->op, r->name);
    lua_setfield(L, -2, r->name + sizeof "linalg." - 1);
  }
  lua_setfield(L, module, "linalg");

  lua_newtable(L);
  int functional = lua_gettop(L);
  const lb_reg *families[] = {lb_activation_regs, lb_dropout_regs, lb_embedding_regs,
                              lb_loss_regs,       lb_conv_regs,    lb_norm_regs,
                              lb_optim_regs,      lb_linear_regs,  lb_interpolate_regs,
                              lb_attention_regs};
  for (size_t i = 0; i < sizeof families / sizeof *families; i++)
    register_all(L, mt, st, methods, functional, families[i]);
  lua_setfield(L, module, "_F");
  lua_newtable(L);
  register_all(L, mt, st, methods, lua_gettop(L), lb_io_regs);
  lua_setfield(L, module, "_io");
  lua_newtable(L);
  register_all(L, mt, st, methods, lua_gettop(L), lb_onnx_regs);
  lua_setfield(L, module, "_onnx");

  lua_pushvalue(L, methods);
  lua_setfield(L, module, "_methods");
  /* lucid's modules binding (src/lua/nn_module.c) ships in the same C library. */
  preload_c(L, "lucid.nn_core", lucid_open_nn_core);
  lua_pushliteral(L, LUCID_VERSION);
  lua_setfield(L, module, "_VERSION");
  return 1;
}

/* package.preload loader for one embedded Lua module (upvalue: its table entry). */
static int embedded_loader(lua_State *L) {
  const struct lucid_embedded_lua *e = lua_touserdata(L, lua_upvalueindex(1));
  char chunkname[160];
  snprintf(chunkname, sizeof chunkname, "@[lucid] %s", e->module);
  if (luaL_loadbufferx(L, e->source, e->len, chunkname, "t") != LUA_OK) return lua_error(L);
  lua_pushstring(L, e->module);
  lua_pushliteral(L, ":embedded:");
  lua_call(L, 2, 1);
  return 1;
}

void lucid_preload(lua_State *L) {
  luaL_checkstack(L, 4, "lucid_preload");
  preload_c(L, "lucid.core", luaopen_lucid_core);
  preload_c(L, "lucid.nn_core", lucid_open_nn_core);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  for (const struct lucid_embedded_lua *e = lucid_embedded_lua; e->module; e++) {
    if (lua_getfield(L, -1, e->module) == LUA_TNIL) {
      lua_pushlightuserdata(L, (void *)e);
      lua_pushcclosure(L, embedded_loader, 1);
      lua_setfield(L, -3, e->module);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

int luaopen_lucid(lua_State *L) {
  lucid_preload(L);
  if (lua_getglobal(L, "require") != LUA_TFUNCTION)
    return lb_error(L, "luaopen_lucid", "the package library is not open (luaL_openlibs)");
  lua_pushliteral(L, "lucid");
  lua_call(L, 1, 1);
  return 1;
}
