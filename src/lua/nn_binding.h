/*
 * nn_binding.h - the Lua binding of lucid's modules (include/lucid_nn.h).
 *
 * lucid_open_nn_core pushes the table of C functions that lua/lucid/nn.lua builds `lucid.nn`
 * from; it is registered as the C module "lucid.nn_core" (package.preload, set up next to
 * "lucid.core"). It also registers the "lucid.Module" userdata metatable.
 */
#ifndef LUCID_LUA_NN_BINDING_H
#define LUCID_LUA_NN_BINDING_H

#include <lua.h>

int lucid_open_nn_core(lua_State *L);

#endif /* LUCID_LUA_NN_BINDING_H */
