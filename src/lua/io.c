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

/* Reads the list at option `name` of the table at idx into a userdata-held array of strings
 * (anchored on the stack); *n = -1 when the option is nil (unrestricted). */
static const char **root_list(lua_State *L, const char *fn, int idx, const char *name, int *n) {
  *n = -1;
  if (lua_getfield(L, idx, name) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_pushnil(L); /* keep the stack shape: one slot per list */
    return NULL;
  }
  if (lua_type(L, -1) != LUA_TTABLE)
    lb_error(L, fn, "option %s: expected a list of directories, got %s", name, lb_typename(L, -1));
  lua_Integer len = (lua_Integer)lua_rawlen(L, -1);
  if (len > 1024)
    lb_error(L, fn, "option %s: at most 1024 directories, got %lld", name, (long long)len);
  const char **list = lua_newuserdatauv(L, (size_t)(len > 0 ? len : 1) * sizeof *list, 1);
  lua_pushvalue(L, -2);
  lua_setiuservalue(L, -2, 1); /* the table keeps the strings alive */
  for (lua_Integer k = 1; k <= len; k++) {
    if (lua_rawgeti(L, -2, k) != LUA_TSTRING)
      lb_error(L, fn, "option %s: entry [%lld] must be a string, got %s", name, (long long)k,
               lb_typename(L, -1));
    list[k - 1] = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  lua_remove(L, -2);
  *n = (int)len;
  return list;
}

/* lucid.set_file_policy{read = {dirs}, write = {dirs}, lock = true}: the built-in root policy
 * (lc_set_file_roots; a missing list is unrestricted, an empty one allows nothing), then
 * lc_lock_file_policy with lock. lucid.set_file_policy() removes the policy (unless locked). */
static int io_set_file_policy(lua_State *L) {
  const char *fn = "set_file_policy";
  if (lua_isnoneornil(L, 1)) {
    if (lc_set_file_roots(NULL, -1, NULL, -1) != LC_OK) lb_error(L, fn, "%s", lb_core_text());
    return 0;
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
    if (strcmp(k, "read") && strcmp(k, "write") && strcmp(k, "lock"))
      lb_error(L, fn, "unknown option '%s' (expected one of: read, write, lock)",
               lua_type(L, -2) == LUA_TSTRING ? k : lb_typename(L, -2));
    lua_pop(L, 1);
  }
  int nr, nw;
  const char **r = root_list(L, fn, 1, "read", &nr);
  const char **w = root_list(L, fn, 1, "write", &nw);
  lua_getfield(L, 1, "lock");
  if (!lua_isnil(L, -1) && !lua_isboolean(L, -1))
    lb_error(L, fn, "option lock: expected a boolean, got %s", lb_typename(L, -1));
  bool lock = lua_toboolean(L, -1);
  if (lc_set_file_roots(r, nr, w, nw) != LC_OK) lb_error(L, fn, "%s", lb_core_text());
  if (lock) lc_lock_file_policy();
  return 0;
}

static int io_file_policy_locked(lua_State *L) {
  lua_pushboolean(L, lc_file_policy_locked());
  return 1;
}

const lb_reg lb_io_regs[] = {
    {"set_file_policy", io_set_file_policy, 0, LB_FUNC},
    {"file_policy_locked", io_file_policy_locked, 0, LB_FUNC},
    {"safetensors_load", io_safetensors_load, 0, LB_FUNC},
    {"safetensors_save", io_safetensors_save, 0, LB_FUNC},
    {"idx_load", io_idx_load, 0, LB_FUNC},
    {NULL, NULL, 0, 0},
};
