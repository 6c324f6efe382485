/* nn_conv.c - Lua binding of the conv family (lucid_conv.h): the tensor functions pad, conv1d,
 * conv2d, conv_transpose2d and the pooling functions (core._F, from which lua/lucid/nn/conv.lua
 * builds nn.functional), and the module constructors (lucid.nn_core; the Lua classes convert
 * the numbers before calling them). The arguments' rules are C's. Pooling indices are 1-based in
 * Lua: the binding adds 1 to the core's 0-based flat positions. */
#include "binding.h"
#include "lucid_conv.h"
#include "nn_binding.h"

#include <string.h>

/* ---------------------------------------------------------------- argument helpers */

/* An integer or a table of sd integers (sd = 1: also a 1-entry table) into out[0..sd); nil
 * leaves out as the caller preset it (the defaults of lc_conv_opts_init / lc_pool_opts_init).
 * The values' rules are C's. */
static void pair_arg(lua_State *L, const char *fn, int pos, const char *name, int sd,
                     int64_t *out) {
  if (lua_isnoneornil(L, pos)) return;
  if (lua_type(L, pos) == LUA_TNUMBER) {
    out[0] = out[1] = lb_int_arg(L, fn, pos, name);
  } else if (lua_type(L, pos) == LUA_TTABLE) {
    int n = (int)lua_rawlen(L, pos);
    if (n != sd)
      lb_argerror(L, fn, pos, name, "expected an integer or a table of %d integers, got a table of %d entries", sd, n);
    for (int k = 0; k < n; k++) {
      lua_rawgeti(L, pos, k + 1);
      int ok = 0;
      lua_Integer v = lua_tointegerx(L, -1, &ok);
      if (!ok)
        lb_argerror(L, fn, pos, name, "entry %d: expected an integer, got %s", k + 1, lb_typename(L, -1));
      out[k] = v;
      lua_pop(L, 1);
    }
  } else {
    lb_argerror(L, fn, pos, name, "expected an integer or a table of integers, got %s", lb_typename(L, pos));
  }
}

#define PADDING_NAMES "an integer, a table of integers, \"same\" or \"valid\""

/* padding "same" / "valid" into o; false for another string */
static bool padding_name(const char *s, lc_conv_opts *o) {
  o->same = !strcmp(s, "same");
  o->valid = !strcmp(s, "valid");
  return o->same || o->valid;
}

/* padding: an integer, a table, "same" or "valid". */
static void padding_arg(lua_State *L, const char *fn, int pos, int sd, lc_conv_opts *o) {
  if (lua_type(L, pos) == LUA_TSTRING) {
    const char *s = lua_tostring(L, pos);
    if (!padding_name(s, o))
      lb_argerror(L, fn, pos, "padding", "expected " PADDING_NAMES ", got \"%s\"", s);
    return;
  }
  pair_arg(L, fn, pos, "padding", sd, o->padding);
}

/* Pushes values and (when wanted) 1-based indices held in slots. Returns the count. */
static int push_with_indices(lua_State *L, const char *fn, lc_tensor **y, lc_tensor **ix, bool ri) {
  if (!ri) {
    lua_pop(L, 1); /* the indices slot, unused */
    return 1;
  }
  (void)y;
  lb_one_based(L, fn, ix);
  return 2;
}

/* ---------------------------------------------------------------- tensor functions */

/* pad(input, pad, mode = "constant", value = 0) */
static int f_pad(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "pad", "mode", "value"};
  lb_args(L, fn, P, 4);
  lc_tensor *x = lb_tensor_arg(L, fn, 1, "input");
  if (lua_type(L, 2) != LUA_TTABLE)
    lb_argerror(L, fn, 2, "pad", "expected a table of integers, got %s", lb_typename(L, 2));
  /* the list's rules (even, at most 2 per dim) are C's; entries beyond LC_MAX_DIMS are not
   * read (lc_pad refuses such a count before reading any) */
  int n = (int)lua_rawlen(L, 2);
  int64_t p[LC_MAX_DIMS];
  for (int k = 0; k < n && k < LC_MAX_DIMS; k++) {
    lua_rawgeti(L, 2, k + 1);
    int ok = 0;
    p[k] = lua_tointegerx(L, -1, &ok);
    if (!ok) lb_argerror(L, fn, 2, "pad", "entry %d: expected an integer, got %s", k + 1, lb_typename(L, -1));
    lua_pop(L, 1);
  }
  lc_pad_mode mode = LC_PAD_CONSTANT;
  if (!lua_isnil(L, 3)) {
    if (lua_type(L, 3) != LUA_TSTRING)
      lb_argerror(L, fn, 3, "mode", "expected a string, got %s", lb_typename(L, 3));
    const char *m = lua_tostring(L, 3);
    if (!strcmp(m, "zeros") || lc_pad_mode_from_name(m, &mode))
      lb_argerror(L, fn, 3, "mode",
                  "expected \"constant\", \"reflect\", \"replicate\" or \"circular\", got \"%s\"", m);
  }
  double value = lb_opt_num_arg(L, fn, 4, "value", 0);
  lc_tensor **y = lb_slot(L);
  if (lc_pad(x, n, p, mode, value, y)) return lb_core_error(L, fn);
  return 1;
}

/* conv1d / conv2d(input, weight, bias, stride, padding, dilation, groups) */
static int f_conv(lua_State *L) {
  const char *fn = LB_FN(L);
  int sd = LB_OP(L);
  static const char *const P[] = {"input", "weight", "bias", "stride", "padding", "dilation", "groups"};
  lb_args(L, fn, P, 7);
  lc_tensor *x = lb_tensor_arg(L, fn, 1, "input"), *w = lb_tensor_arg(L, fn, 2, "weight");
  lc_tensor *b = lb_opt_tensor_arg(L, fn, 3, "bias");
  lc_conv_opts o;
  lc_conv_opts_init(&o);
  pair_arg(L, fn, 4, "stride", sd, o.stride);
  padding_arg(L, fn, 5, sd, &o);
  pair_arg(L, fn, 6, "dilation", sd, o.dilation);
  o.groups = lb_opt_int_arg(L, fn, 7, "groups", 1);
  lc_tensor **y = lb_slot(L);
  lc_status st = sd == 1 ? lc_conv1d(x, w, b, &o, y) : lc_conv2d(x, w, b, &o, y);
  if (st) return lb_core_error(L, fn);
  return 1;
}

/* conv_transpose2d(input, weight, bias, stride, padding, output_padding, groups, dilation) */
static int f_conv_transpose2d(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input",          "weight", "bias",    "stride", "padding",
                                  "output_padding", "groups", "dilation"};
  lb_args(L, fn, P, 8);
  lc_tensor *x = lb_tensor_arg(L, fn, 1, "input"), *w = lb_tensor_arg(L, fn, 2, "weight");
  lc_tensor *b = lb_opt_tensor_arg(L, fn, 3, "bias");
  lc_conv_opts o;
  lc_conv_opts_init(&o);
  pair_arg(L, fn, 4, "stride", 2, o.stride);
  pair_arg(L, fn, 5, "padding", 2, o.padding);
  pair_arg(L, fn, 6, "output_padding", 2, o.output_padding);
  o.groups = lb_opt_int_arg(L, fn, 7, "groups", 1);
  pair_arg(L, fn, 8, "dilation", 2, o.dilation);
  lc_tensor **y = lb_slot(L);
  if (lc_conv_transpose2d(x, w, b, &o, y)) return lb_core_error(L, fn);
  return 1;
}

/* max_pool1d / max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode,
 * return_indices) */
static int f_max_pool(lua_State *L) {
  const char *fn = LB_FN(L);
  int sd = LB_OP(L);
  static const char *const P[] = {"input",    "kernel_size", "stride",        "padding",
                                  "dilation", "ceil_mode",   "return_indices"};
  lb_args(L, fn, P, 7);
  lc_tensor *x = lb_tensor_arg(L, fn, 1, "input");
  if (lua_isnil(L, 2)) lb_argerror(L, fn, 2, "kernel_size", "missing");
  lc_pool_opts o;
  int64_t k[2] = {1, 1};
  pair_arg(L, fn, 2, "kernel_size", sd, k);
  lc_pool_opts_init(&o, k[0], k[1]);
  pair_arg(L, fn, 3, "stride", sd, o.stride);
  pair_arg(L, fn, 4, "padding", sd, o.padding);
  pair_arg(L, fn, 5, "dilation", sd, o.dilation);
  o.ceil_mode = lb_opt_bool_arg(L, fn, 6, "ceil_mode", false);
  bool ri = lb_opt_bool_arg(L, fn, 7, "return_indices", false);
  lc_tensor **y = lb_slot(L), **ix = lb_slot(L);
  lc_status st = sd == 1 ? lc_max_pool1d(x, &o, y, ix) : lc_max_pool2d(x, &o, y, ix);
  if (st) return lb_core_error(L, fn);
  return push_with_indices(L, fn, y, ix, ri);
}

/* avg_pool1d / avg_pool2d(input, kernel_size, stride, padding, ceil_mode, count_include_pad) */
static int f_avg_pool(lua_State *L) {
  const char *fn = LB_FN(L);
  int sd = LB_OP(L);
  static const char *const P[] = {"input",   "kernel_size", "stride",
                                  "padding", "ceil_mode",   "count_include_pad"};
  lb_args(L, fn, P, 6);
  lc_tensor *x = lb_tensor_arg(L, fn, 1, "input");
  if (lua_isnil(L, 2)) lb_argerror(L, fn, 2, "kernel_size", "missing");
  lc_pool_opts o;
  int64_t k[2] = {1, 1};
  pair_arg(L, fn, 2, "kernel_size", sd, k);
  lc_pool_opts_init(&o, k[0], k[1]);
  pair_arg(L, fn, 3, "stride", sd, o.stride);
  pair_arg(L, fn, 4, "padding", sd, o.padding);
  o.ceil_mode = lb_opt_bool_arg(L, fn, 5, "ceil_mode", false);
  o.count_include_pad = lb_opt_bool_arg(L, fn, 6, "count_include_pad", true);
  lc_tensor **y = lb_slot(L);
  if ((sd == 1 ? lc_avg_pool1d(x, &o, y) : lc_avg_pool2d(x, &o, y))) return lb_core_error(L, fn);
  return 1;
}

/* output_size: an integer, or a table of sd entries where nil (or a hole) keeps the input size
 * (-1 for C, whose rule the sizes are). A table with holes has no reliable length, so entries
 * 1..sd are read directly. */
static void out_size_arg(lua_State *L, const char *fn, int pos, int sd, int64_t *out) {
  out[0] = out[1] = -1;
  if (lua_type(L, pos) == LUA_TNUMBER) {
    out[0] = out[1] = lb_int_arg(L, fn, pos, "output_size");
  } else if (lua_type(L, pos) == LUA_TTABLE) {
    for (int k = 0; k < sd; k++) {
      lua_rawgeti(L, pos, k + 1);
      if (!lua_isnil(L, -1)) {
        int ok = 0;
        out[k] = lua_tointegerx(L, -1, &ok);
        if (!ok)
          lb_argerror(L, fn, pos, "output_size", "entry %d: expected an integer or nil, got %s",
                      k + 1, lb_typename(L, -1));
      }
      lua_pop(L, 1);
    }
    lua_rawgeti(L, pos, sd + 1);
    if (!lua_isnil(L, -1))
      lb_argerror(L, fn, pos, "output_size", "expected at most %d entries", sd);
    lua_pop(L, 1);
  } else {
    lb_argerror(L, fn, pos, "output_size", "expected an integer or a table, got %s",
                lb_typename(L, pos));
  }
}

/* adaptive_avg_pool1d/2d(input, output_size) */
static int f_adaptive_avg(lua_State *L) {
  const char *fn = LB_FN(L);
  int sd = LB_OP(L);
  static const char *const P[] = {"input", "output_size"};
  lb_args(L, fn, P, 2);
  lc_tensor *x = lb_tensor_arg(L, fn, 1, "input");
  int64_t os[2];
  out_size_arg(L, fn, 2, sd, os);
  lc_tensor **y = lb_slot(L);
  if ((sd == 1 ? lc_adaptive_avg_pool1d(x, os[0], y) : lc_adaptive_avg_pool2d(x, os, y)))
    return lb_core_error(L, fn);
  return 1;
}

/* adaptive_max_pool1d/2d(input, output_size, return_indices) */
static int f_adaptive_max(lua_State *L) {
  const char *fn = LB_FN(L);
  int sd = LB_OP(L);
  static const char *const P[] = {"input", "output_size", "return_indices"};
  lb_args(L, fn, P, 3);
  lc_tensor *x = lb_tensor_arg(L, fn, 1, "input");
  int64_t os[2];
  out_size_arg(L, fn, 2, sd, os);
  bool ri = lb_opt_bool_arg(L, fn, 3, "return_indices", false);
  lc_tensor **y = lb_slot(L), **ix = lb_slot(L);
  if ((sd == 1 ? lc_adaptive_max_pool1d(x, os[0], y, ix) : lc_adaptive_max_pool2d(x, os, y, ix)))
    return lb_core_error(L, fn);
  return push_with_indices(L, fn, y, ix, ri);
}

/* conv_empty_cache(): frees the idle convolution workspaces */
static int f_conv_empty_cache(lua_State *L) {
  lc_conv_empty_cache();
  return 0;
}

const lb_reg lb_conv_regs[] = {
    {"pad", f_pad, 0, LB_FUNC},
    {"conv1d", f_conv, 1, LB_FUNC},
    {"conv2d", f_conv, 2, LB_FUNC},
    {"conv_transpose2d", f_conv_transpose2d, 2, LB_FUNC},
    {"max_pool1d", f_max_pool, 1, LB_FUNC},
    {"max_pool2d", f_max_pool, 2, LB_FUNC},
    {"avg_pool1d", f_avg_pool, 1, LB_FUNC},
    {"avg_pool2d", f_avg_pool, 2, LB_FUNC},
    {"adaptive_avg_pool1d", f_adaptive_avg, 1, LB_FUNC},
    {"adaptive_avg_pool2d", f_adaptive_avg, 2, LB_FUNC},
    {"adaptive_max_pool1d", f_adaptive_max, 1, LB_FUNC},
    {"adaptive_max_pool2d", f_adaptive_max, 2, LB_FUNC},
    {"conv_empty_cache", f_conv_empty_cache, 0, LB_FUNC},
    {NULL, NULL, 0, 0},
};

/* ---------------------------------------------------------------- module constructors */

static int64_t int_at(lua_State *L, int idx) { return (int64_t)luaL_checkinteger(L, idx); }

/* a pair from a table {a, b} at idx */
static void pair_at(lua_State *L, int idx, int64_t *out) {
  luaL_checktype(L, idx, LUA_TTABLE);
  for (int k = 0; k < 2; k++) {
    lua_rawgeti(L, idx, k + 1);
    out[k] = lua_isnil(L, -1) ? 1 : (int64_t)luaL_checkinteger(L, -1);
    lua_pop(L, 1);
  }
}

/* conv(kind, in, out, {kh, kw}, {stride}, {padding} | padding string, {dilation}, groups,
 *      bias, padding_mode string, {output_padding}); kind: "Conv1d", "Conv2d",
 * "ConvTranspose2d". The Lua class has converted the numbers (pairs are full tables); the
 * strings are converted here, and every rule is lc_nn_conv*'s. */
static int nb_conv(lua_State *L) {
  const char *kind = luaL_checkstring(L, 1);
  char fn[64];
  snprintf(fn, sizeof fn, "nn.%s", kind);
  lc_conv_opts o;
  lc_conv_opts_init(&o);
  int64_t k[2];
  pair_at(L, 4, k);
  pair_at(L, 5, o.stride);
  if (lua_type(L, 6) == LUA_TSTRING) {
    if (!padding_name(lua_tostring(L, 6), &o))
      lb_error(L, fn, "padding must be " PADDING_NAMES ", got \"%s\"", lua_tostring(L, 6));
  } else {
    pair_at(L, 6, o.padding);
  }
  pair_at(L, 7, o.dilation);
  o.groups = int_at(L, 8);
  bool bias = lua_toboolean(L, 9);
  /* PyTorch's padding_mode names: "zeros" for constant, which it does not take */
  const char *mode = lua_type(L, 10) == LUA_TSTRING ? lua_tostring(L, 10) : NULL;
  if (!mode || !strcmp(mode, "constant") || lc_pad_mode_from_name(mode, &o.padding_mode))
    lb_error(
        L, fn,
        "padding_mode must be \"zeros\", \"reflect\", \"replicate\" or \"circular\", got %s%s%s",
        mode ? "\"" : "", mode ? mode : lb_typename(L, 10), mode ? "\"" : "");
  if (!lua_isnoneornil(L, 11)) pair_at(L, 11, o.output_padding);
  lc_module **slot = nb_new_module_slot(L);
  lc_status st;
  if (!strcmp(kind, "Conv1d"))
    st = lc_nn_conv1d(int_at(L, 2), int_at(L, 3), k[0], &o, bias, slot);
  else if (!strcmp(kind, "Conv2d"))
    st = lc_nn_conv2d(int_at(L, 2), int_at(L, 3), k, &o, bias, slot);
  else
    st = lc_nn_conv_transpose2d(int_at(L, 2), int_at(L, 3), k, &o, bias, slot);
  if (st) return lb_core_error(L, fn);
  nb_remember(L);
  return 1;
}

/* pool(kind, {k}, {stride}, {padding}, {dilation}, ceil_mode, count_include_pad,
 *      return_indices) for MaxPool1d/2d, AvgPool1d/2d */
static int nb_pool(lua_State *L) {
  const char *kind = luaL_checkstring(L, 1);
  char fn[64];
  snprintf(fn, sizeof fn, "nn.%s", kind);
  lc_pool_opts o;
  int64_t k[2];
  pair_at(L, 2, k);
  lc_pool_opts_init(&o, k[0], k[1]);
  pair_at(L, 3, o.stride);
  pair_at(L, 4, o.padding);
  pair_at(L, 5, o.dilation);
  o.ceil_mode = lua_toboolean(L, 6);
  o.count_include_pad = lua_toboolean(L, 7);
  bool ri = lua_toboolean(L, 8);
  lc_module **slot = nb_new_module_slot(L);
  lc_status st;
  if (!strcmp(kind, "MaxPool1d"))
    st = lc_nn_max_pool1d(&o, ri, slot);
  else if (!strcmp(kind, "MaxPool2d"))
    st = lc_nn_max_pool2d(&o, ri, slot);
  else if (!strcmp(kind, "AvgPool1d"))
    st = lc_nn_avg_pool1d(&o, slot);
  else
    st = lc_nn_avg_pool2d(&o, slot);
  if (st) return lb_core_error(L, fn);
  nb_remember(L);
  return 1;
}

/* adaptive_pool(kind, {oh, ow} (-1 = keep), return_indices) */
static int nb_adaptive_pool(lua_State *L) {
  const char *kind = luaL_checkstring(L, 1);
  char fn[64];
  snprintf(fn, sizeof fn, "nn.%s", kind);
  int64_t os[2];
  pair_at(L, 2, os);
  bool ri = lua_toboolean(L, 3);
  lc_module **slot = nb_new_module_slot(L);
  lc_status st;
  if (!strcmp(kind, "AdaptiveAvgPool1d"))
    st = lc_nn_adaptive_avg_pool1d(os[0], slot);
  else if (!strcmp(kind, "AdaptiveAvgPool2d"))
    st = lc_nn_adaptive_avg_pool2d(os, slot);
  else if (!strcmp(kind, "AdaptiveMaxPool1d"))
    st = lc_nn_adaptive_max_pool1d(os[0], ri, slot);
  else
    st = lc_nn_adaptive_max_pool2d(os, ri, slot);
  if (st) return lb_core_error(L, fn);
  nb_remember(L);
  return 1;
}

static void set_pair(lua_State *L, const char *name, int sd, const int64_t *v) {
  lua_createtable(L, sd, 0);
  for (int k = 0; k < sd; k++) {
    lua_pushinteger(L, v[k]);
    lua_rawseti(L, -2, k + 1);
  }
  lua_setfield(L, -2, name);
}

/* conv_options(m) / pool_options(m): the options a module was made with, as a table (nil
 * when m is not of the family) */
static int nb_conv_options(lua_State *L) {
  lc_module *m = nb_check_module(L, 1, "options");
  int64_t k[2];
  lc_conv_opts o;
  lc_pool_opts po;
  int64_t os[2];
  bool ri;
  const char *tn = lc_module_type_name(m);
  int sd = strstr(tn, "1d") ? 1 : 2;
  if (lc_nn_conv_info(m, k, &o)) {
    lua_createtable(L, 0, 10);
    set_pair(L, "kernel_size", sd, k);
    set_pair(L, "stride", sd, o.stride);
    if (o.same || o.valid)
      lua_pushstring(L, o.same ? "same" : "valid"), lua_setfield(L, -2, "padding");
    else
      set_pair(L, "padding", sd, o.padding);
    set_pair(L, "dilation", sd, o.dilation);
    if (strstr(tn, "Transpose")) set_pair(L, "output_padding", sd, o.output_padding);
    lua_pushinteger(L, o.groups), lua_setfield(L, -2, "groups");
    lua_pushstring(L, o.padding_mode == LC_PAD_CONSTANT ? "zeros" : lc_pad_mode_name(o.padding_mode));
    lua_setfield(L, -2, "padding_mode");
    return 1;
  }
  if (lc_nn_pool_info(m, &po, os, &ri)) {
    lua_createtable(L, 0, 8);
    if (strstr(tn, "Adaptive")) {
      lua_createtable(L, sd, 0);
      for (int d = 0; d < sd; d++) /* None (keep the input's size) stays a hole: nil */
        if (os[d] >= 0) lua_pushinteger(L, os[d]), lua_rawseti(L, -2, d + 1);
      lua_setfield(L, -2, "output_size");
    } else {
      set_pair(L, "kernel_size", sd, po.kernel_size);
      set_pair(L, "stride", sd, po.stride);
      set_pair(L, "padding", sd, po.padding);
      lua_pushboolean(L, po.ceil_mode), lua_setfield(L, -2, "ceil_mode");
      if (strstr(tn, "Max"))
        set_pair(L, "dilation", sd, po.dilation);
      else
        lua_pushboolean(L, po.count_include_pad), lua_setfield(L, -2, "count_include_pad");
    }
    if (strstr(tn, "Max")) lua_pushboolean(L, ri), lua_setfield(L, -2, "return_indices");
    return 1;
  }
  lua_pushnil(L);
  return 1;
}

const luaL_Reg nb_conv_funcs[] = {
    {"conv", nb_conv},
    {"pool", nb_pool},
    {"adaptive_pool", nb_adaptive_pool},
    {"conv_options", nb_conv_options},
    {NULL, NULL},
};
