/*
 * lucid_lua.h - embedding lucid in a Lua 5.4 host.
 *
 * A host program (the `lucid` interpreter, a game, a server) that owns a lua_State calls
 * lucid_preload() once; from then on Lua code can `require "lucid"` without any search path,
 * because every Lua file of lucid is compiled into the binary. Stock `lua5.4` instead loads
 * the C module "lucid.core" (build/lua/lucid/core.so) and finds the lua/lucid Lua files on its path.
 *
 * Ownership: a tensor userdata owns exactly one reference to its lc_tensor. Functions below
 * say for each pointer whether it is borrowed or a new reference.
 */
#ifndef LUCID_LUA_H
#define LUCID_LUA_H

#include <lua.h>

#include "lucid.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The C module "lucid.core": registers the "lucid.Tensor" metatable and returns the table of
 * C functions that lua/lucid/init.lua builds the `lucid` table from. Use it as a
 * package.preload / luaL_requiref opener; it does not register the embedded Lua modules. */
int luaopen_lucid_core(lua_State *L);

/* Like `require "lucid"`: pushes (and returns 1) the lucid table, loading it from the sources
 * embedded in the binary when it is not loaded yet (calls lucid_preload() itself). Needs the
 * base and package libraries to be open (luaL_openlibs). */
int luaopen_lucid(lua_State *L);

/* Registers package.preload["lucid.core"] and a preload for every embedded Lua module
 * ("lucid", "lucid.autograd", ...), so `require "lucid"` works with no search path. A module
 * already in package.preload is left alone. Pushes nothing. */
void lucid_preload(lua_State *L);

/* Pushes a new tensor userdata for t. The userdata takes its OWN reference (lc_retain(t)); the
 * caller keeps, and must still release, its own reference. t must not be NULL. Returns 1. */
int lucid_push_tensor(lua_State *L, lc_tensor *t);

/* The tensor at stack index idx (BORROWED: valid while the userdata is alive and not closed).
 * Raises a Lua error naming argument idx when the value is not a tensor or was closed. */
lc_tensor *lucid_check_tensor(lua_State *L, int idx);

/* The tensor at stack index idx (BORROWED), or NULL when the value is not a tensor or was
 * closed. Never raises. */
lc_tensor *lucid_to_tensor(lua_State *L, int idx);

#ifdef __cplusplus
}
#endif
#endif /* LUCID_LUA_H */
