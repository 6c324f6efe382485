/*
 * io.c - Lua binding of checkpoints (safetensors) and dataset files (IDX): the functions of
 * require("lucid.core")._io, used by lua/lucid/serialize.lua and lua/lucid/data.lua.
 *
 * These are internal entry points: a failure found by the core returns nil plus the core's
 * message (which names the file and the fault), so the Lua caller can raise it under its own
 * public name ("lucid.load: ...") at the user's call site. Misuse of the arguments themselves
 * raises.
 */
#include "binding.h"

#include "lucid_io.h"

#include <string.h>

#define HOLDER_MT "lucid.io.safetensors"

typedef struct holder {
  lc_safetensors *f;
} holder;

static int holder_gc(lua_State *L) {
  holder *h = luaL_testudata(L, 1, HOLDER_MT); /* NULL for a foreign value */
  if (h && h->f) {
    lc_safetensors_free(h->f);
    h->f = NULL;
  }
  return 0;
}

static int fail(lua_State *L) {
  lua_pushnil(L);
  lua_pushstring(L, lb_last_error());
  return 2;
}

/* _io.safetensors_load(path) -> names, tensors, file_dtypes, metadata | nil, message.
 * names/tensors/file_dtypes are sequences in header order; metadata maps key -> value. */
static int io_safetensors_load(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lb_state *s = lua_touserdata(L, LB_UV_STATE);
  if (s) lb_gc_check(L, s);
  /* the result lives in a collectable holder so a Lua error below cannot leak it */
  holder *h = lua_newuserdatauv(L, sizeof *h, 0);
  h->f = NULL;
  if (luaL_newmetatable(L, HOLDER_MT)) {
    lua_pushcfunction(L, holder_gc);
    lua_setfield(L, -2, "__gc");
    lb_seal_metatable(L);
  }
  lua_setmetatable(L, -2);
  if (lc_safetensors_load(path, &h->f) != LC_OK) return fail(L);
  lc_safetensors *f = h->f;
  int n = f->count > INT32_MAX ? INT32_MAX : (int)f->count;
  lua_createtable(L, n, 0);
  int names = lua_gettop(L);
  lua_createtable(L, n, 0);
  int tensors = lua_gettop(L);
  lua_createtable(L, n, 0);
  int dtypes = lua_gettop(L);
  for (int i = 0; i < n; i++) {
    lua_pushstring(L, f->names[i]);
    lua_rawseti(L, names, i + 1);
    lb_push(L, f->tensors[i]);
    lua_rawseti(L, tensors, i + 1);
    lua_pushstring(L, f->file_dtypes[i]);
    lua_rawseti(L, dtypes, i + 1);
  }
  lua_createtable(L, 0, (int)(f->meta_count > 64 ? 64 : f->meta_count));
  for (int64_t i = 0; i < f->meta_count; i++) {
    lua_pushstring(L, f->meta_values[i]);
    lua_setfield(L, -2, f->meta_keys[i]);
  }
  lc_safetensors_free(f);
  h->f = NULL;
  return 4;
}

/* Reads sequence `idx` of length n into C strings held by `out` (borrowed from the table). */
static void strings_of(lua_State *L, int idx, int n, const char **out, const char *what) {
  for (int i = 0; i < n; i++) {
    if (lua_rawgeti(L, idx, i + 1) != LUA_TSTRING)
      lb_error(L, "safetensors_save", "%s[%d] must be a string, got %s", what, i + 1,
               lb_typename(L, -1));
    out[i] = lua_tostring(L, -1); /* stays alive: the table holds it */
    lua_pop(L, 1);
  }
}

/* _io.safetensors_save(path, names, tensors [, meta_keys, meta_values]) -> true | nil, message */
static int io_safetensors_save(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  if (lua_isnoneornil(L, 4)) {
    lua_settop(L, 3);
    lua_newtable(L);
    lua_newtable(L);
  }
  luaL_checktype(L, 4, LUA_TTABLE);
  luaL_checktype(L, 5, LUA_TTABLE);
  lua_settop(L, 5);
  lua_Integer n = luaL_len(L, 2), nm = luaL_len(L, 4);
  if (luaL_len(L, 3) != n)
    lb_error(L, "safetensors_save", "%d names but %d tensors", (int)n, (int)luaL_len(L, 3));
  if (luaL_len(L, 5) != nm)
    lb_error(L, "safetensors_save", "metadata keys and values differ in length");
  if (n > INT32_MAX / 4 || nm > INT32_MAX / 4) lb_error(L, "safetensors_save", "too many entries");
  /* scratch arrays in a userdata: collected if an error unwinds */
  size_t words = (size_t)(2 * n + 2 * nm + 1);
  void **scratch = lua_newuserdatauv(L, words * sizeof(void *), 0);
  const char **names = (const char **)scratch;
  lc_tensor **ts = (lc_tensor **)(scratch + n);
  const char **mk = (const char **)(scratch + 2 * n);
  const char **mv = (const char **)(scratch + 2 * n + nm);
  strings_of(L, 2, (int)n, names, "names");
  strings_of(L, 4, (int)nm, mk, "metadata keys");
  strings_of(L, 5, (int)nm, mv, "metadata values");
  for (int i = 0; i < (int)n; i++) {
    lua_rawgeti(L, 3, i + 1);
    lb_tensor *u = lb_ud(L, -1);
    if (!u || !u->t)
      lb_error(L, "safetensors_save", "tensors[%d] must be a live tensor, got %s", i + 1,
               lb_typename(L, -1));
    ts[i] = u->t; /* borrowed: the table keeps the userdata alive */
    lua_pop(L, 1);
  }
  if (lc_safetensors_save(path, n, names, ts, nm, mk, mv) != LC_OK) return fail(L);
  lua_pushboolean(L, 1);
  return 1;
}

/* _io.idx_load(path, ndim (-1: any), dtype, scale, class_labels) -> tensor | nil, message;
 * class_labels: the file holds 0-based class indices (IDX label files), which Lua sees 1-based
 * (converted here, through the binding's one index mechanism). */
static int io_idx_load(lua_State *L) {
  const char *fn = LB_FN(L);
  const char *path = luaL_checkstring(L, 1);
  lua_Integer ndim = luaL_optinteger(L, 2, -1);
  lc_dtype dt = lua_isnoneornil(L, 3) ? LC_FLOAT32 : lb_dtype_arg(L, fn, 3, "dtype");
  double scale = luaL_optnumber(L, 4, 1.0);
  bool class_labels = lua_toboolean(L, 5);
  lua_settop(L, 4);
  if (ndim < -1 || ndim > LC_MAX_DIMS) lb_error(L, fn, "bad ndim %d", (int)ndim);
  lc_tensor **slot = lb_slot(L); /* before the allocation, so the collector can run first */
  if (lc_idx_load(path, (int)ndim, dt, scale, slot) != LC_OK) return fail(L);
  if (class_labels) lb_one_based(L, fn, slot);
  return 1;
}

const lb_reg lb_io_regs[] = {
    {"safetensors_load", io_safetensors_load, 0, LB_FUNC},
    {"safetensors_save", io_safetensors_save, 0, LB_FUNC},
    {"idx_load", io_idx_load, 0, LB_FUNC},
    {NULL, NULL, 0, 0},
};
