/*
 * onnx.c - Lua binding of the ONNX runtime (include/lucid_onnx.h): the functions of
 * require("lucid.core")._onnx, used by lua/lucid/onnx.lua (lucid.onnx.load).
 *
 * As in io.c, a failure the core reports returns nil plus the core's message, so the Lua
 * caller raises it under its own public name at the user's call site; misuse of these internal
 * functions' arguments raises directly.
 */
#include "binding.h"
#include "nn_binding.h"

#include "lucid_onnx.h"

#include <string.h>

#define MODEL_MT "lucid.onnx.model"

typedef struct model_ud {
  lc_onnx_model *m;
} model_ud;

static int model_gc(lua_State *L) {
  model_ud *u = luaL_testudata(L, 1, MODEL_MT);
  if (u && u->m) {
    lc_onnx_free(u->m);
    u->m = NULL;
  }
  return 0;
}

static lc_onnx_model *check_model(lua_State *L, int idx) {
  model_ud *u = luaL_checkudata(L, idx, MODEL_MT);
  if (!u->m) lb_error(L, "onnx", "the model was freed");
  return u->m;
}

static int fail(lua_State *L) {
  lua_pushnil(L);
  lua_pushstring(L, lb_last_error());
  return 2;
}

static bool opt_bool(lua_State *L, int t, const char *k) {
  lua_getfield(L, t, k);
  bool v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

/* _onnx.load(path, opts) -> model | nil, message. opts: trainable, no_fusion,
 * external_data_dir, max_file_bytes, max_nodes, max_nesting (checked by lua/lucid/onnx.lua). */
static int onnx_load(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lc_onnx_opts o;
  memset(&o, 0, sizeof o);
  if (lua_istable(L, 2)) {
    o.trainable = opt_bool(L, 2, "trainable");
    o.no_fusion = opt_bool(L, 2, "no_fusion");
    lua_getfield(L, 2, "external_data_dir");
    o.external_data_dir = lua_tostring(L, -1); /* kept alive by the table */
    lua_pop(L, 1);
    lua_getfield(L, 2, "max_file_bytes");
    o.max_file_bytes = (int64_t)lua_tointeger(L, -1);
    lua_getfield(L, 2, "max_nodes");
    o.max_nodes = (int64_t)lua_tointeger(L, -1);
    lua_getfield(L, 2, "max_nesting");
    o.max_nesting = (int)lua_tointeger(L, -1);
    lua_pop(L, 3);
  }
  lb_state *s = lua_touserdata(L, LB_UV_STATE);
  if (s) lb_gc_check(L, s);
  model_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->m = NULL;
  if (luaL_newmetatable(L, MODEL_MT)) {
    lua_pushcfunction(L, model_gc);
    lua_setfield(L, -2, "__gc");
    lb_seal_metatable(L);
  }
  lua_setmetatable(L, -2);
  if (lc_onnx_load(path, &o, &u->m) != LC_OK) return fail(L);
  return 1;
}

/* _onnx.info(model) -> {inputs = {{name, dtype, shape (-1 dynamic) | false}...},
 *                       outputs = {names}, opset = n} */
static int onnx_info(lua_State *L) {
  lc_onnx_model *m = check_model(L, 1);
  lua_createtable(L, 0, 3);
  int ni = lc_onnx_num_inputs(m), no = lc_onnx_num_outputs(m);
  lua_createtable(L, ni, 0);
  for (int i = 0; i < ni; i++) {
    lc_dtype dt;
    int nd;
    int64_t dims[LC_MAX_DIMS];
    lc_onnx_input_info(m, i, &dt, &nd, dims);
    lua_createtable(L, 0, 3);
    lua_pushstring(L, lc_onnx_input_name(m, i));
    lua_setfield(L, -2, "name");
    lua_pushstring(L, lc_dtype_name(dt));
    lua_setfield(L, -2, "dtype");
    if (nd >= 0) {
      lua_createtable(L, nd, 0);
      for (int k = 0; k < nd; k++) {
        lua_pushinteger(L, dims[k]);
        lua_rawseti(L, -2, k + 1);
      }
    } else {
      lua_pushboolean(L, 0);
    }
    lua_setfield(L, -2, "shape");
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "inputs");
  lua_createtable(L, no, 0);
  for (int j = 0; j < no; j++) {
    lua_pushstring(L, lc_onnx_output_name(m, j));
    lua_rawseti(L, -2, j + 1);
  }
  lua_setfield(L, -2, "outputs");
  lua_pushinteger(L, lc_onnx_opset(m));
  lua_setfield(L, -2, "opset");
  lua_pushinteger(L, lc_onnx_num_nodes(m, false));
  lua_setfield(L, -2, "nodes");
  lua_pushinteger(L, lc_onnx_num_nodes(m, true));
  lua_setfield(L, -2, "nodes_run");
  return 1;
}

/* _onnx.parameters(model) -> names, tensors (the model's initializers, shared) */
static int onnx_parameters(lua_State *L) {
  lc_onnx_model *m = check_model(L, 1);
  int64_t n = lc_onnx_num_parameters(m);
  if (n > INT32_MAX) n = INT32_MAX;
  lua_createtable(L, (int)n, 0);
  lua_createtable(L, (int)n, 0);
  for (int64_t i = 0; i < n; i++) {
    const char *name;
    lc_tensor *t;
    lc_onnx_parameter(m, i, &name, &t);
    lua_pushstring(L, name);
    lua_rawseti(L, -3, (lua_Integer)i + 1);
    lb_push(L, t);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 2;
}

/* _onnx.run(model, inputs) -> outputs (a sequence) | nil, message. inputs: a sequence of
 * tensors in graph input order (checked by the caller). */
static int onnx_run(lua_State *L) {
  lc_onnx_model *m = check_model(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  int ni = lc_onnx_num_inputs(m), no = lc_onnx_num_outputs(m);
  lb_state *s = lua_touserdata(L, LB_UV_STATE);
  if (s) lb_gc_check(L, s);
  /* input pointers and output slots live in userdata: nothing leaks if an error unwinds */
  const lc_tensor **in = lua_newuserdatauv(L, ((size_t)ni + 1) * sizeof *in, 0);
  for (int i = 0; i < ni; i++) {
    lua_rawgeti(L, 2, i + 1);
    lb_tensor *u = lb_ud(L, -1);
    if (!u || !u->t) lb_error(L, "onnx", "input %d is not a tensor", i + 1);
    in[i] = u->t; /* the table keeps it alive */
    lua_pop(L, 1);
  }
  /* every output's userdata exists before the run, so nothing can raise once it returned */
  lua_createtable(L, no, 0);
  int outs = lua_gettop(L);
  for (int j = 0; j < no; j++) {
    lb_slot(L);
    lua_rawseti(L, outs, j + 1);
  }
  lc_tensor **out = lua_newuserdatauv(L, ((size_t)no + 1) * sizeof *out, 0);
  for (int j = 0; j < no; j++)
    out[j] = NULL;
  if (lc_onnx_run(m, ni, in, no, out) != LC_OK) return fail(L);
  for (int j = 0; j < no; j++) {
    lua_rawgeti(L, outs, j + 1);
    lb_ud(L, -1)->t = out[j]; /* the slot takes the reference */
    lua_pop(L, 1);
  }
  lua_pushvalue(L, outs);
  return 1;
}

/* _onnx.read_tensor(path) -> tensor | nil, message (a serialized TensorProto) */
static int onnx_read_tensor(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lc_tensor **slot = lb_slot(L);
  if (lc_onnx_read_tensor(path, slot) != LC_OK) return fail(L);
  return 1;
}

/* _onnx.export(module, example, path, static_batch) -> true | nil, message */
static int onnx_export(lua_State *L) {
  lc_module *m = nb_check_module(L, 1, "onnx.export");
  lb_tensor *x = lb_ud(L, 2);
  if (!x || !x->t) lb_error(L, "onnx.export", "argument 2 (example_input): expected a tensor");
  const char *path = luaL_checkstring(L, 3);
  lc_onnx_export_opts o = {.static_batch = lua_toboolean(L, 4)};
  if (lc_onnx_export(m, x->t, path, &o) != LC_OK) return fail(L);
  lua_pushboolean(L, 1);
  return 1;
}

const lb_reg lb_onnx_regs[] = {
    {"export", onnx_export, 0, LB_FUNC},
    {"load", onnx_load, 0, LB_FUNC},
    {"info", onnx_info, 0, LB_FUNC},
    {"parameters", onnx_parameters, 0, LB_FUNC},
    {"run", onnx_run, 0, LB_FUNC},
    {"read_tensor", onnx_read_tensor, 0, LB_FUNC},
    {NULL, NULL, 0, 0},
};
