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

/* For the binding files of layer families (nn_activation.c, nn_conv.c, ...). A constructor
 * pushes an empty module userdata with nb_new_module_slot, fills the slot with a core call
 * (raising with nb_raise_core on failure: the collector frees the empty userdata), then calls
 * nb_remember with the userdata on top of the stack so `model.x` returns this same object. */
#include "lucid_nn.h"
lc_module **nb_new_module_slot(lua_State *L);
void nb_remember(lua_State *L);
/* Pushes m's userdata (the existing one if alive, else a new one with a new reference). */
void nb_push_module(lua_State *L, lc_module *m);
lc_module *nb_check_module(lua_State *L, int idx, const char *fn); /* raises if not a module */
lc_module *nb_to_module(lua_State *L, int idx);                    /* NULL if not a module */
/* Raises lc_last_error(), its leading "cfunction: " replaced by fn ("nn.Conv2d"). */
int nb_raise_core(lua_State *L, const char *fn);

/* Functions each family adds to "lucid.nn_core" (constructors of its C module kinds). */
#include <lauxlib.h>
extern const luaL_Reg nb_activation_funcs[]; /* nn_activation.c */
extern const luaL_Reg nb_dropout_funcs[];    /* nn_dropout.c */
extern const luaL_Reg nb_embedding_funcs[];  /* nn_embedding.c */
extern const luaL_Reg nb_loss_funcs[];       /* nn_loss.c */
extern const luaL_Reg nb_conv_funcs[];       /* nn_conv.c */
extern const luaL_Reg nb_norm_funcs[];       /* nn_norm.c */
extern const luaL_Reg nb_optim_funcs[];      /* optim.c */
extern const luaL_Reg nb_interpolate_funcs[]; /* nn_interpolate.c */

#endif /* LUCID_LUA_NN_BINDING_H */
