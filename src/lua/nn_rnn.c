/* nn_rnn.c - Lua binding of the recurrent family (include/lucid_rnn.h): the private functions
 * core._rnn and core._rnn_cell that the Lua modules nn.RNN / LSTM / GRU and the cells
 * (lua/lucid/nn/rnn.lua) call; all compute is lc_rnn / lc_rnn_cell. Errors read
 * "lucid.<name>: ..." with the module's name the Lua side passes. */
#include "binding.h"

#include "lucid_rnn.h"

#include <string.h>

static lc_rnn_mode mode_arg(lua_State *L, const char *fn, int pos) {
  const char *m = luaL_checkstring(L, pos);
  if (!strcmp(m, "RNN_TANH")) return LC_RNN_TANH;
  if (!strcmp(m, "RNN_RELU")) return LC_RNN_RELU;
  if (!strcmp(m, "LSTM")) return LC_LSTM;
  if (!strcmp(m, "GRU")) return LC_GRU;
  lb_argerror(L, fn, pos, "mode", "expected RNN_TANH, RNN_RELU, LSTM or GRU, got %s", m);
  return LC_RNN_TANH;
}

static bool field_bool(lua_State *L, int t, const char *k, bool def) {
  lua_getfield(L, t, k);
  bool v = lua_isnil(L, -1) ? def : lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

static lua_Integer field_int(lua_State *L, int t, const char *k, lua_Integer def) {
  lua_getfield(L, t, k);
  lua_Integer v = lua_isnil(L, -1) ? def : lua_tointeger(L, -1);
  lua_pop(L, 1);
  return v;
}

/* _rnn(mode, input, hx|nil, cx|nil, {weights...}, {num_layers=, bidirectional=, batch_first=,
 * bias=, dropout=, training=, proj_size=, lengths=, name=, hx_arg=, cx_arg=}) -> out, h_n [, c_n]
 */
static int f_rnn(lua_State *L) {
  luaL_checktype(L, 6, LUA_TTABLE);
  lua_getfield(L, 6, "name");
  const char *fn = lua_isstring(L, -1) ? lua_tostring(L, -1) : "rnn";
  lua_pop(L, 1); /* the options table keeps the string alive */
  lc_rnn_mode mode = mode_arg(L, fn, 1);
  lc_tensor *x = lb_tensor_arg(L, fn, 1 + 1, "input");
  lc_tensor *hx = lb_opt_tensor_arg(L, fn, 3, "hx");
  lc_tensor *cx = lb_opt_tensor_arg(L, fn, 4, "cx");
  luaL_checktype(L, 5, LUA_TTABLE);
  int nw = (int)lua_rawlen(L, 5);
  if (nw > 4096) lb_error(L, fn, "too many weights (%d)", nw);
  lc_tensor **ws = lua_newuserdatauv(L, sizeof(lc_tensor *) * (size_t)(nw ? nw : 1), 0);
  for (int k = 0; k < nw; k++) {
    lua_rawgeti(L, 5, k + 1);
    ws[k] = lb_tensor_arg(L, fn, lua_gettop(L), "weight");
    lua_pop(L, 1); /* the weights table keeps it alive */
  }
  lc_rnn_opts o = {0};
  o.num_layers = (int)field_int(L, 6, "num_layers", 1);
  o.bidirectional = field_bool(L, 6, "bidirectional", false);
  o.batch_first = field_bool(L, 6, "batch_first", false);
  o.bias = field_bool(L, 6, "bias", true);
  o.training = field_bool(L, 6, "training", false);
  o.proj_size = field_int(L, 6, "proj_size", 0);
  lua_getfield(L, 6, "dropout");
  o.dropout = lua_isnil(L, -1) ? 0 : lua_tonumber(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, 6, "lengths");
  if (!lua_isnil(L, -1)) o.lengths = lb_tensor_arg(L, fn, lua_gettop(L), "lengths");
  lua_pop(L, 1);
  o.name = fn;
  lua_getfield(L, 6, "hx_arg");
  o.hx_arg = lua_tostring(L, -1);
  lua_getfield(L, 6, "cx_arg");
  o.cx_arg = lua_tostring(L, -1);
  lua_getfield(L, 6, "lengths_arg");
  o.lengths_arg = lua_tostring(L, -1);
  lua_getfield(L, 6, "name");
  o.name = lua_tostring(L, -1);
  if (!o.name) o.name = "rnn";
  /* the four strings stay on the stack until return */
  lc_tensor **out = lb_slot(L), **hn = lb_slot(L), **cn = lb_slot(L);
  if (lc_rnn(mode, x, hx, cx, nw, ws, &o, out, hn, cn) != LC_OK) return lb_core_error(L, o.name);
  if (*cn) return 3;
  lua_pop(L, 1);
  return 2;
}

/* _rnn_cell(mode, input, hx|nil, cx|nil, w_ih, w_hh, b_ih|nil, b_hh|nil, name) -> h1 [, c1] */
static int f_rnn_cell(lua_State *L) {
  const char *fn = luaL_optstring(L, 9, "rnn_cell");
  lc_rnn_mode mode = mode_arg(L, fn, 1);
  lc_tensor *x = lb_tensor_arg(L, fn, 2, "input");
  lc_tensor *hx = lb_opt_tensor_arg(L, fn, 3, "hx");
  lc_tensor *cx = lb_opt_tensor_arg(L, fn, 4, "cx");
  lc_tensor *wih = lb_tensor_arg(L, fn, 5, "weight_ih");
  lc_tensor *whh = lb_tensor_arg(L, fn, 6, "weight_hh");
  lc_tensor *bih = lb_opt_tensor_arg(L, fn, 7, "bias_ih");
  lc_tensor *bhh = lb_opt_tensor_arg(L, fn, 8, "bias_hh");
  lc_tensor **h1 = lb_slot(L), **c1 = lb_slot(L);
  if (lc_rnn_cell(mode, x, hx, cx, wih, whh, bih, bhh, fn, h1, c1) != LC_OK)
    return lb_core_error(L, fn);
  if (*c1) return 2;
  lua_pop(L, 1);
  return 1;
}

const lb_reg lb_rnn_regs[] = {
    {"_rnn", f_rnn, 0, LB_FUNC}, {"_rnn_cell", f_rnn_cell, 0, LB_FUNC}, {NULL, NULL, 0, 0}};
