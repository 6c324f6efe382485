/* nn_interpolate.c - Lua binding of the interpolate family (lucid_interpolate.h): the tensor
 * function interpolate (core._F, from which lua/lucid/nn/interpolate.lua builds
 * nn.functional.interpolate and its alias upsample) and the module constructor of Upsample
 * (lucid.nn_core; its Lua class checks the option types before calling it). Sizes need no
 * 0/1-based conversion. */
#include "lucid_interpolate.h"
#include "nn_family.h"

#include <math.h>
#include <string.h>

/* scale_factor: a number or a table of 1..2 positive numbers. */
static int scale_list(lua_State *L, const char *fn, int pos, double *out) {
  int n = 1;
  if (lua_type(L, pos) == LUA_TNUMBER) {
    out[0] = lua_tonumber(L, pos);
  } else if (lua_type(L, pos) == LUA_TTABLE) {
    n = (int)lua_rawlen(L, pos);
    if (n < 1 || n > 2)
      lb_argerror(L, fn, pos, "scale_factor", "expected 1 or 2 factors, got %d", n);
    for (int k = 0; k < n; k++) {
      lua_rawgeti(L, pos, k + 1);
      if (lua_type(L, -1) != LUA_TNUMBER)
        lb_argerror(L, fn, pos, "scale_factor", "entry %d: expected a number, got %s", k + 1,
                    lb_typename(L, -1));
      out[k] = lua_tonumber(L, -1);
      lua_pop(L, 1);
    }
  } else {
    lb_argerror(L, fn, pos, "scale_factor", "expected a number or a table of numbers, got %s",
                lb_typename(L, pos));
  }
  return n; /* the values' rule (positive, finite) is lc_interpolate's */
}

/* Reads (size, scale_factor, mode, align_corners) at pos..pos+3 into o. */
static void interp_opts(lua_State *L, const char *fn, int pos, lc_interpolate_opts *o) {
  memset(o, 0, sizeof *o);
  bool has_size = !lua_isnoneornil(L, pos), has_scale = !lua_isnoneornil(L, pos + 1);
  if (has_size == has_scale)
    lb_error(L, fn, "expected exactly one of size and scale_factor, got %s",
             has_size ? "both" : "neither");
  if (has_size) {
    int64_t size[3] = {0}; /* one past the op's 2 entries: the op reports too many */
    o->nsize = int_list(L, fn, pos, "size", 3, size);
    memcpy(o->size, size, sizeof o->size);
  }
  if (has_scale) o->nscale = scale_list(L, fn, pos + 1, o->scale_factor);
  const char *mode = lua_isnoneornil(L, pos + 2) ? "nearest" : NULL;
  if (!mode) {
    if (lua_type(L, pos + 2) != LUA_TSTRING)
      lb_argerror(L, fn, pos + 2, "mode", "expected a string, got %s", lb_typename(L, pos + 2));
    mode = lua_tostring(L, pos + 2);
  }
  if (!strcmp(mode, "nearest"))
    o->mode = LC_INTERP_NEAREST;
  else if (!strcmp(mode, "bilinear"))
    o->mode = LC_INTERP_BILINEAR;
  else
    lb_argerror(L, fn, pos + 2, "mode", "expected \"nearest\" or \"bilinear\", got \"%s\"", mode);
  if (!lua_isnoneornil(L, pos + 3)) {
    if (o->mode != LC_INTERP_BILINEAR)
      lb_argerror(L, fn, pos + 3, "align_corners",
                  "can only be set with the interpolating mode \"bilinear\"");
    o->align_corners = lb_opt_bool_arg(L, fn, pos + 3, "align_corners", false);
  }
}

/* ---------------------------------------------------------------- tensor function */

/* interpolate(input, size, scale_factor, mode, align_corners) */
static int f_interpolate(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "size", "scale_factor", "mode", "align_corners"};
  lb_args(L, fn, P, 5);
  lc_tensor *x = lb_tensor_arg(L, fn, 1, "input");
  lc_interpolate_opts o;
  interp_opts(L, fn, 2, &o);
  lc_tensor **slot = lb_slot(L);
  if (lc_interpolate(x, &o, slot)) lb_core_error(L, fn);
  return 1;
}

const lb_reg lb_interpolate_regs[] = {
    {"interpolate", f_interpolate, 0, LB_FUNC},
    {NULL, NULL, 0, 0},
};

/* ---------------------------------------------------------------- module constructor */

/* (size, scale_factor, mode, align_corners) */
static int f_upsample(lua_State *L) {
  const char *fn = "nn.Upsample";
  lua_settop(L, 4);
  lc_interpolate_opts o;
  interp_opts(L, fn, 1, &o);
  lc_module **slot = nb_new_module_slot(L);
  if (lc_nn_upsample(&o, slot)) return lb_core_error(L, fn);
  nb_remember(L);
  return 1;
}

const luaL_Reg nb_interpolate_funcs[] = {
    {"upsample", f_upsample},
    {NULL, NULL},
};
