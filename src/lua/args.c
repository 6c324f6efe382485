/*
 * args.c - argument checking for the Lua binding, and the one place that converts Lua's
 * 1-based dims and indices to the core's 0-based ones (and back in messages).
 *
 * Messages: "lucid.<fn>: argument <pos> (<name>): <what>, expected X, got Y", 1-based.
 */
#include "binding.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- errors */

/* Is source (a chunk name) one of lucid's own Lua files: embedded ("@[lucid] lucid.nn") or
 * installed and run from disk (".../lucid/nn.lua", ".../lucid/nn/conv.lua")? */
static bool lucid_source(const char *source) {
  if (strncmp(source, "@[lucid] ", 9) == 0) return true;
  size_t n = strlen(source);
  if (n < 5 || strcmp(source + n - 4, ".lua") != 0) return false;
  const char *base = source + n;
  while (base > source && base[-1] != '/')
    base--; /* the file name */
  const char *dir = base > source ? base - 1 : base;
  for (int up = 0; up < 2 && dir > source; up++) { /* lucid/x.lua or lucid/nn/x.lua */
    const char *d = dir;
    while (d > source && d[-1] != '/' && d[-1] != '@')
      d--;
    if (dir - d == 5 && strncmp(d, "lucid", 5) == 0) return true;
    dir = d > source ? d - 1 : d;
  }
  return false;
}

/* Pushes "file:line: " of the user's call: the first caller outside lucid's own Lua files, when
 * it is Lua code (errors point where the user called, through any of lucid's wrappers); "" when
 * it is C (pcall, a host) or there is none. */
static void push_user_where(lua_State *L) {
  lua_Debug ar;
  for (int level = 1; lua_getstack(L, level, &ar); level++) {
    lua_getinfo(L, "Sl", &ar);
    if (ar.currentline > 0 && lucid_source(ar.source)) continue;
    if (ar.currentline > 0) {
      lua_pushfstring(L, "%s:%d: ", ar.short_src, ar.currentline);
      return;
    }
    break;
  }
  lua_pushliteral(L, "");
}

static int raise_msg(lua_State *L, const char *msg) {
  push_user_where(L);
  lua_pushstring(L, msg);
  lua_concat(L, 2);
  return lua_error(L);
}

int lb_raise_message(lua_State *L, const char *msg) {
  /* "lucid." unless the message already names it ("lucid.data.Subset:get: ...") */
  if (strncmp(msg, "lucid.", 6) == 0) return raise_msg(L, msg);
  lua_pushfstring(L, "lucid.%s", msg);
  return raise_msg(L, lua_tostring(L, -1));
}

int lb_error(lua_State *L, const char *fn, const char *fmt, ...) {
  char msg[768];
  int k = snprintf(msg, sizeof msg, "%s: ", fn);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg + k, sizeof msg - (size_t)k, fmt, ap);
  va_end(ap);
  return lb_raise_message(L, msg);
}

int lb_argerror(lua_State *L, const char *fn, int pos, const char *name, const char *fmt, ...) {
  char msg[768];
  int k = snprintf(msg, sizeof msg, "%s: argument %d (%s): ", fn, pos, name);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg + k, sizeof msg - (size_t)k, fmt, ap);
  va_end(ap);
  return lb_raise_message(L, msg);
}

const char *lb_message_text(const char *msg) {
  const char *p = msg;
  const char *colon = strstr(p, ": lucid.");
  if (colon) { /* "file:line: lucid." */
    const char *d = colon;
    while (d > p && d[-1] >= '0' && d[-1] <= '9')
      d--;
    if (d < colon && d > p && d[-1] == ':') p = colon + 2;
  }
  return strncmp(p, "lucid.", 6) == 0 ? p + 6 : msg;
}

int lb_raise(lua_State *L) { return lb_raise_message(L, luaL_checkstring(L, 1)); }

const char *lb_last_error(void) {
  static _Thread_local char buf[768];
  return lc_render_positions(lc_last_error_marked(), 1, buf, sizeof buf);
}

const char *lb_core_text(void) {
  const char *msg = lb_last_error();
  const char *colon = strstr(msg, ": ");
  if (!colon || colon == msg) return msg;
  for (const char *p = msg; p < colon; p++)
    if (!(*p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
          (*p >= '0' && *p <= '9')))
      return msg;
  return colon + 2;
}

int lb_core_error(lua_State *L, const char *fn) {
  const char *m = lb_last_error();
  if (!m || !*m) m = "failed";
  /* The core prefixes its own function name: drop it when it repeats ours (C's "autograd_grad"
   * is Lua's "autograd.grad"). */
  size_t n = strlen(fn), i = 0;
  while (i < n && (m[i] == fn[i] || (m[i] == '_' && fn[i] == '.'))) i++;
  if (i == n && m[n] == ':' && m[n + 1] == ' ') return lb_error(L, fn, "%s", m + n + 2);
  /* A module's forward names the failing child after the module's type: under that type,
   * "Sequential.fc2 (Linear): ..." is "fc2 (Linear): ...". */
  if (i == n && n > 0 && m[n] == '.') return lb_error(L, fn, "%s", m + n + 1);
  /* Our last name alone repeats too: a module kind ("Linear: " under "nn.Linear"), an op under
   * its family ("hardtanh: " under "nn.functional.hardtanh"), a method ("pop: " under
   * "Sequential:pop"). Another name (an inner op's, "copy_: ") stays. */
  const char *last = fn;
  for (const char *p = fn; *p; p++)
    if (*p == '.' || *p == ':') last = p + 1;
  n = strlen(last);
  if (n > 0 && strncmp(m, last, n) == 0 && m[n] == ':' && m[n + 1] == ' ') m += n + 2;
  return lb_error(L, fn, "%s", m);
}


int lb_binary_error(lua_State *L, const char *fn, const lc_tensor *a, const lc_tensor *b) {
  (void)a, (void)b; /* the core's broadcast message marks its dim: lb_core_error shows it 1-based */
  return lb_core_error(L, fn);
}

const char *lb_typename(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TUSERDATA) {
    if (luaL_getmetafield(L, idx, "__name") == LUA_TSTRING) {
      const char *n = lua_tostring(L, -1);
      lua_pop(L, 1);
      if (strcmp(n, LB_TENSOR_MT) == 0) return "tensor";
      return n; /* interned in the metatable, stays valid */
    }
  }
  return luaL_typename(L, idx);
}

/* "2.5", "-3", "string", ... for "got X" */
static const char *got(lua_State *L, int idx, char *buf, size_t cap) {
  if (lua_type(L, idx) == LUA_TNUMBER) {
    if (lua_isinteger(L, idx))
      snprintf(buf, cap, "%lld", (long long)lua_tointeger(L, idx));
    else
      snprintf(buf, cap, "%.14g", lua_tonumber(L, idx));
    return buf;
  }
  if (lua_type(L, idx) == LUA_TSTRING) {
    snprintf(buf, cap, "'%.40s'", lua_tostring(L, idx));
    return buf;
  }
  return lb_typename(L, idx);
}

void lb_seal_metatable(lua_State *L) {
  lua_getfield(L, -1, "__name");
  lua_setfield(L, -2, "__metatable");
}

/* ---------------------------------------------------------------- normalisation */

/* A table without a metatable: not a module, dataset or optimizer. */
static bool is_plain_table(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TTABLE) return false;
  if (!lua_getmetatable(L, idx)) return true;
  lua_pop(L, 1);
  return false;
}

/* A plain table holding a string key. */
bool lb_is_options(lua_State *L, int idx) {
  if (!is_plain_table(L, idx)) return false;
  idx = lua_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) == LUA_TSTRING) {
      lua_pop(L, 2);
      return true;
    }
    lua_pop(L, 1);
  }
  return false;
}

static bool is_empty_plain_table(lua_State *L, int idx) {
  if (!is_plain_table(L, idx)) return false;
  lua_pushnil(L);
  if (!lua_next(L, idx)) return true;
  lua_pop(L, 2);
  return false;
}

/* The one argument parser (lb_args, lb_args_untabled and Lua's args.collect all come here).
 * The arguments are at stack indices base..top; names[0..n) are the parameters, the first
 * npos of which may be given by position (the rest by name only). Afterwards parameter i
 * (0-based) is at base + i and the top is base + n - 1. The rule for "a trailing table is
 * options": a table without a metatable holding a string key, or an empty one that has no
 * positional slot (beyond npos) or whose function takes no table argument (untabled). */
static void collect(lua_State *L, const char *fn, int base, const char *const *names, int n,
                    int npos, bool untabled) {
  int top = lua_gettop(L);
  while (top >= base && lua_isnil(L, top))
    top--;
  lua_settop(L, top);
  int given = top - base + 1; /* arguments, the options table included */
  int opts = 0; /* the common call has no table last: one lua_type, nothing more */
  if (given > 0 && lua_type(L, top) == LUA_TTABLE &&
      (lb_is_options(L, top) || (is_empty_plain_table(L, top) && (untabled || given > npos))))
    opts = top;
  int npositional = opts ? given - 1 : given;
  if (npositional > npos)
    lb_error(L, fn, "too many arguments: expected at most %d, got %d", npos, npositional);
  int last = base + n - 1; /* parameter n - 1's slot */
  if (!opts) {
    lua_settop(L, last);
    return;
  }
  /* a1..a_k, O  ->  a1..a_k, nil..., O at last + 1 */
  lua_settop(L, last + 1);
  lua_rotate(L, base + npositional, -1);
  lua_pushnil(L);
  while (lua_next(L, last + 1)) {
    if (lua_type(L, -2) != LUA_TSTRING) {
      char b[64];
      lb_error(L, fn, "options table: unexpected key %s (options are named)", got(L, -2, b, sizeof b));
    }
    const char *key = lua_tostring(L, -2);
    int j = -1;
    for (int i = 0; i < n && j < 0; i++)
      if (strcmp(names[i], key) == 0) j = i;
    if (j < 0) {
      char list[512] = "";
      for (int i = 0; i < n; i++) {
        strncat(list, names[i], sizeof list - strlen(list) - 1);
        if (i + 1 < n) strncat(list, ", ", sizeof list - strlen(list) - 1);
      }
      lb_error(L, fn, "unknown option '%s' (expected one of: %s)", key, list);
    }
    if (!lua_isnil(L, base + j))
      lb_argerror(L, fn, j + 1, names[j], "given both by position and in the options table");
    lua_pushvalue(L, -1);
    lua_replace(L, base + j);
    lua_pop(L, 1);
  }
  lua_settop(L, last);
}

void lb_args(lua_State *L, const char *fn, const char *const *names, int n) {
  collect(L, fn, 1, names, n, n, false);
}

void lb_args_untabled(lua_State *L, const char *fn, const char *const *names, int n) {
  collect(L, fn, 1, names, n, n, true);
}

/* collect_args(fname, params, extra, untabled, ...) (nn_core): lucid.args.collect's parser.
 * Returns a table name -> value of params (positional, then by name) and extra (by name only). */
int lb_collect_args(lua_State *L) {
  const char *fn = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  bool untabled = lua_toboolean(L, 4);
  int npos = (int)lua_rawlen(L, 2);
  int nextra = lua_istable(L, 3) ? (int)lua_rawlen(L, 3) : 0;
  int n = npos + nextra;
  if (n > 64) return lb_error(L, "collect_args", "at most 64 parameters");
  const char *names[64] = {0};
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, i < npos ? 2 : 3, i < npos ? i + 1 : i - npos + 1);
    names[i] = lua_tostring(L, -1); /* anchored in the tables at 2 and 3 */
    lua_pop(L, 1);
    if (!names[i]) return lb_error(L, "collect_args", "parameter names must be strings");
  }
  int base = 5;
  luaL_checkstack(L, n + 8, "collect_args");
  collect(L, fn, base, names, n, npos, untabled);
  lua_createtable(L, 0, n);
  for (int i = 0; i < n; i++) {
    lua_pushvalue(L, base + i);
    lua_setfield(L, -2, names[i]);
  }
  return 1;
}

/* ---------------------------------------------------------------- scalars */

lc_tensor *lb_opt_tensor_arg(lua_State *L, const char *fn, int pos, const char *name) {
  lb_tensor *u = lb_ud(L, pos);
  if (!u) return NULL;
  if (!u->t) lb_argerror(L, fn, pos, name, "tensor was closed");
  return u->t;
}

lc_tensor *lb_tensor_arg(lua_State *L, const char *fn, int pos, const char *name) {
  lb_tensor *u = lb_ud(L, pos);
  if (!u) lb_argerror(L, fn, pos, name, "expected a tensor, got %s", lb_typename(L, pos));
  if (!u->t) lb_argerror(L, fn, pos, name, "tensor was closed");
  return u->t;
}

int64_t lb_int_arg(lua_State *L, const char *fn, int pos, const char *name) {
  int ok = 0;
  lua_Integer v = lua_tointegerx(L, pos, &ok);
  if (!ok || lua_type(L, pos) != LUA_TNUMBER) {
    char b[64];
    lb_argerror(L, fn, pos, name, "expected an integer, got %s", got(L, pos, b, sizeof b));
  }
  return (int64_t)v;
}

int64_t lb_opt_int_arg(lua_State *L, const char *fn, int pos, const char *name, int64_t def) {
  return lua_isnoneornil(L, pos) ? def : lb_int_arg(L, fn, pos, name);
}

double lb_num_arg(lua_State *L, const char *fn, int pos, const char *name) {
  if (lua_type(L, pos) != LUA_TNUMBER)
    lb_argerror(L, fn, pos, name, "expected a number, got %s", lb_typename(L, pos));
  return (double)lua_tonumber(L, pos);
}

double lb_opt_num_arg(lua_State *L, const char *fn, int pos, const char *name, double def) {
  return lua_isnoneornil(L, pos) ? def : lb_num_arg(L, fn, pos, name);
}

bool lb_opt_bool_arg(lua_State *L, const char *fn, int pos, const char *name, bool def) {
  if (lua_isnoneornil(L, pos)) return def;
  if (lua_type(L, pos) != LUA_TBOOLEAN)
    lb_argerror(L, fn, pos, name, "expected a boolean, got %s", lb_typename(L, pos));
  return lua_toboolean(L, pos);
}

bool lb_scalar(lua_State *L, int idx, double *out) {
  switch (lua_type(L, idx)) {
  case LUA_TNUMBER: *out = (double)lua_tonumber(L, idx); return true;
  case LUA_TBOOLEAN: *out = lua_toboolean(L, idx) ? 1.0 : 0.0; return true;
  default: return false;
  }
}

static const struct {
  const char *name;
  lc_dtype dt;
} dtype_names[] = {{"float32", LC_FLOAT32}, {"float", LC_FLOAT32}, {"float64", LC_FLOAT64},
                   {"double", LC_FLOAT64},  {"int32", LC_INT32},   {"int", LC_INT32},
                   {"int64", LC_INT64},     {"long", LC_INT64},    {"bool", LC_BOOL},
                   {"float16", LC_FLOAT16}, {"half", LC_FLOAT16},  {"bfloat16", LC_BFLOAT16}};

/* Reads the value at stack index idx; messages name argument `pos`. */
static lc_dtype dtype_value(lua_State *L, const char *fn, int idx, int pos, const char *name) {
  if (lua_type(L, idx) != LUA_TSTRING)
    lb_argerror(L, fn, pos, name, "expected a dtype name (\"float32\", ...), got %s",
                lb_typename(L, idx));
  const char *s = lua_tostring(L, idx);
  if (strncmp(s, "lucid.", 6) == 0) s += 6; /* "lucid.float64" reads like torch.float64 */
  for (size_t i = 0; i < sizeof dtype_names / sizeof dtype_names[0]; i++)
    if (strcmp(s, dtype_names[i].name) == 0) return dtype_names[i].dt;
  return (lc_dtype)lb_argerror(L, fn, pos, name,
                               "unknown dtype '%s' (expected float32, float64, float16, "
                               "bfloat16, int32, int64 or bool)",
                               s);
}

lc_dtype lb_dtype_arg(lua_State *L, const char *fn, int pos, const char *name) {
  return dtype_value(L, fn, pos, pos, name);
}

/* ---------------------------------------------------------------- dims and indices */

/* Raises the core's last message (a dim or index rule of lc_wrap_*) as argument pos's error:
 * "lucid.<fn>: argument <pos> (<name>): <message without its own 'what: '>". */
static int wrap_error(lua_State *L, const char *fn, int pos, const char *name) {
  const char *m = lb_last_error(), *colon = strstr(m, ": ");
  return lb_argerror(L, fn, pos, name, "%s", colon ? colon + 2 : m);
}

/* The conversion only: 1-based d (0 has no 0-based image) to C's, whose lc_wrap_dim64 owns the
 * range rule and its message. */
int lb_dim_value(lua_State *L, const char *fn, int pos, const char *name, int64_t d,
                     int ndim) {
  int n = ndim > 0 ? ndim : 1;
  if (d == 0)
    lb_argerror(L, fn, pos, name, "dim 0 is invalid: dims are 1-based (expected 1..%d or -%d..-1)",
                n, n);
  int c;
  if (lc_wrap_dim64(d > 0 ? d - 1 : d, ndim, "dim", &c)) wrap_error(L, fn, pos, name);
  return c;
}

int64_t lb_position_option(lua_State *L, const char *fn, int pos, const char *name) {
  int64_t v = lb_int_arg(L, fn, pos, name);
  if (v == 0)
    lb_argerror(L, fn, pos, name, "0 is invalid: positions are 1-based (1 is the first, -1 the "
                "last)");
  return v > 0 ? v - 1 : v;
}

int lb_dim_option(lua_State *L, const char *fn, int pos, const char *name) {
  int64_t d = lb_int_arg(L, fn, pos, name);
  if (d == 0)
    lb_argerror(L, fn, pos, name, "dim 0 is invalid: dims are 1-based (1 is the first, -1 the "
                "last)");
  if (d > LC_MAX_DIMS || d < -LC_MAX_DIMS)
    lb_argerror(L, fn, pos, name, "dim %lld out of range (a tensor has at most %d dims)",
                (long long)d, LC_MAX_DIMS);
  return (int)(d > 0 ? d - 1 : d);
}

int lb_dim_arg(lua_State *L, const char *fn, int pos, const char *name, int ndim) {
  if (lua_isnoneornil(L, pos)) lb_argerror(L, fn, pos, name, "expected a dim, got nil");
  return lb_dim_value(L, fn, pos, name, lb_int_arg(L, fn, pos, name), ndim);
}

int lb_opt_dim_arg(lua_State *L, const char *fn, int pos, const char *name, int ndim, int def0) {
  if (lua_isnoneornil(L, pos)) return def0;
  return lb_dim_arg(L, fn, pos, name, ndim);
}

int lb_dims_arg(lua_State *L, const char *fn, int pos, const char *name, int ndim, int *dims) {
  if (lua_isnoneornil(L, pos)) return 0;
  int n = 0;
  if (lua_type(L, pos) == LUA_TTABLE) {
    lua_Integer len = luaL_len(L, pos);
    if (len > LC_MAX_DIMS)
      lb_argerror(L, fn, pos, name, "at most %d dims, got %lld", LC_MAX_DIMS, (long long)len);
    for (lua_Integer i = 1; i <= len; i++) {
      lua_rawgeti(L, pos, i);
      int ok = 0;
      lua_Integer d = lua_tointegerx(L, -1, &ok);
      if (!ok || lua_type(L, -1) != LUA_TNUMBER) {
        char b[64];
        lb_argerror(L, fn, pos, name, "entry [%lld] is %s, expected an integer dim", (long long)i,
                    got(L, -1, b, sizeof b));
      }
      lua_pop(L, 1);
      dims[n++] = lb_dim_value(L, fn, pos, name, d, ndim);
    }
  } else if (lua_type(L, pos) == LUA_TNUMBER) {
    dims[n++] = lb_dim_arg(L, fn, pos, name, ndim);
  } else {
    lb_argerror(L, fn, pos, name, "expected a dim or a table of dims, got %s",
                lb_typename(L, pos));
  }
  /* repeats are the reduction kernel's rule */
  if (ndim == 0) return 0; /* reducing a 0-dim tensor over its one pseudo-dim: over all */
  return n;
}

int64_t lb_index_value(lua_State *L, const char *fn, int pos, const char *name, int64_t v,
                       int64_t size, int dim0) {
  if (v == 0)
    lb_argerror(L, fn, pos, name,
                "index 0 is invalid: indices are 1-based (expected 1..%lld or -%lld..-1 for dim "
                "%d)",
                (long long)size, (long long)size, dim0 + 1);
  int64_t c = v > 0 ? v - 1 : v; /* the conversion; lc_wrap_index owns the range rule */
  if (lc_wrap_index(&c, size, dim0, "index")) wrap_error(L, fn, pos, name);
  return c;
}

/* ---------------------------------------------------------------- module paths */

/* Module paths cross here: C names positional children 0-based (as PyTorch does), Lua users
 * 1-based (include/lucid_nn.h; docs/nn.md "Positional names"). */
static const char *push_rebased(lua_State *L, const lc_module *m, const char *path, int from,
                                int to) {
  char *s = NULL;
  if (lc_module_rebase_path(m, path, from, to, &s)) {
    lua_pushstring(L, path); /* out of memory: show it as given */
    return lua_tostring(L, -1);
  }
  lua_pushstring(L, s);
  lc_free(s);
  return lua_tostring(L, -1);
}

const char *lb_path_in(lua_State *L, const lc_module *m, const char *path) {
  return push_rebased(L, m, path, 1, 0);
}

const char *lb_path_out(lua_State *L, const lc_module *m, const char *path) {
  return push_rebased(L, m, path, 0, 1);
}

int lb_shift_positions(lua_State *L) {
  size_t len;
  const char *name = luaL_checklstring(L, 1, &len);
  lua_Integer delta = luaL_checkinteger(L, 2);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (const char *p = name; p;) {
    const char *dot = strchr(p, '.');
    size_t n = dot ? (size_t)(dot - p) : strlen(p);
    bool digits = n > 0 && n < 19;
    for (size_t k = 0; k < n && digits; k++)
      digits = p[k] >= '0' && p[k] <= '9';
    if (digits) {
      long long v = strtoll(p, NULL, 10) + delta;
      if (v < 0) {
        lua_pushnil(L);
        return 1;
      }
      char num[24];
      luaL_addlstring(&b, num, (size_t)snprintf(num, sizeof num, "%lld", v));
    } else
      luaL_addlstring(&b, p, n);
    p = dot ? dot + 1 : NULL;
    if (p) luaL_addchar(&b, '.');
  }
  luaL_pushresult(&b);
  return 1;
}

/* An integer index (a float with an integral value is one, as Lua's own t[2.0] is t[2]). */
static lua_Integer index_arg(lua_State *L, const char *fn, int pos) {
  int ok = 0;
  lua_Integer i = lua_tointegerx(L, pos, &ok);
  if (!ok || lua_type(L, pos) != LUA_TNUMBER) {
    char b[64];
    lb_error(L, fn, "index must be an integer, got %s", got(L, pos, b, sizeof b));
  }
  return i;
}

int64_t lb_position(lua_State *L, const char *fn, int pos, int64_t n, bool allow_end,
                    const char *things, const char *empty) {
  lua_Integer i = index_arg(L, fn, pos);
  int64_t j = i < 0 ? n + i + 1 : i, hi = allow_end ? n + 1 : n;
  if (j >= 1 && j <= hi) return j - 1;
  if (hi == 0) lb_error(L, fn, "index %lld out of range: %s", (long long)i, empty);
  if (i == 0)
    lb_error(L, fn, "index 0 is invalid: indices are 1-based (expected 1..%lld or -%lld..-1)",
             (long long)hi, (long long)n);
  return lb_error(L, fn, "index %lld out of range for %lld %s (expected 1..%lld or -%lld..-1)",
                  (long long)i, (long long)n, things, (long long)hi, (long long)n);
}

int64_t lb_module_position(lua_State *L, const char *fn, int pos, int64_t n, bool allow_end) {
  return lb_position(L, fn, pos, n, allow_end, "modules", "the container is empty");
}

int lb_position_lua(lua_State *L) {
  const char *fn = luaL_checkstring(L, 1);
  int64_t n = luaL_checkinteger(L, 3);
  const char *things = luaL_optstring(L, 4, "items");
  const char *empty = luaL_optstring(L, 5, "there are none");
  lua_pushinteger(L, lb_position(L, fn, 2, n, false, things, empty) + 1);
  return 1;
}

void lb_module_range(lua_State *L, const char *fn, int pos, int64_t n, int64_t *start,
                     int64_t *end) {
  lua_Integer ij[2];
  for (int k = 0; k < 2; k++) {
    if (k == 1 && lua_isnoneornil(L, pos + 1)) {
      ij[1] = -1; /* to the end */
      continue;
    }
    ij[k] = index_arg(L, fn, pos + k);
  }
  int64_t a = ij[0] < 0 ? n + ij[0] + 1 : ij[0], b = ij[1] < 0 ? n + ij[1] + 1 : ij[1];
  if (a < 1 || a > n + 1 || b < 0 || b > n)
    lb_error(L, fn, "range %lld..%lld out of range for %lld modules", (long long)ij[0],
             (long long)ij[1], (long long)n);
  if (b < a) b = a - 1; /* empty */
  *start = a - 1;
  *end = b;
}

/* ---------------------------------------------------------------- shapes */

static int64_t size_value(lua_State *L, const char *fn, int pos, const char *name, int idx,
                          long long entry, bool allow_neg1) {
  int ok = 0;
  lua_Integer v = lua_tointegerx(L, idx, &ok);
  if (!ok || lua_type(L, idx) != LUA_TNUMBER || v < (allow_neg1 ? -1 : 0)) {
    char b[64];
    const char *what = allow_neg1 ? "a non-negative integer or -1" : "a non-negative integer";
    if (entry > 0)
      lb_argerror(L, fn, pos, name, "entry [%lld] is %s, expected %s", entry,
                  got(L, idx, b, sizeof b), what);
    lb_argerror(L, fn, pos, name, "expected %s, got %s", what, got(L, idx, b, sizeof b));
  }
  return (int64_t)v;
}

void lb_shape_table(lua_State *L, const char *fn, int pos, const char *name, bool allow_neg1,
                    int *ndim, int64_t *shape) {
  if (lua_type(L, pos) == LUA_TNUMBER) {
    *ndim = 1;
    shape[0] = size_value(L, fn, pos, name, pos, 0, allow_neg1);
    return;
  }
  if (lua_type(L, pos) != LUA_TTABLE)
    lb_argerror(L, fn, pos, name, "expected a shape (a table of sizes), got %s",
                lb_typename(L, pos));
  lua_Integer len = luaL_len(L, pos);
  if (len > LC_MAX_DIMS)
    lb_argerror(L, fn, pos, name, "a tensor has at most %d dims, got %lld", LC_MAX_DIMS,
                (long long)len);
  for (lua_Integer i = 1; i <= len; i++) {
    lua_rawgeti(L, pos, i);
    shape[i - 1] = size_value(L, fn, pos, name, -1, (long long)i, allow_neg1);
    lua_pop(L, 1);
  }
  *ndim = (int)len;
}

int lb_sizes_arg(lua_State *L, const char *fn, int pos, const char *name, int64_t *sizes) {
  if (lua_type(L, pos) != LUA_TTABLE)
    lb_argerror(L, fn, pos, name, "expected a table of sizes, e.g. {2, 5}, got %s",
                lb_typename(L, pos));
  lua_Integer n = luaL_len(L, pos);
  if (n > LC_MAX_DIMS) n = LC_MAX_DIMS + 1; /* too many: C reports it */
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, pos, i);
    int ok = 0;
    lua_Integer v = lua_tointegerx(L, -1, &ok);
    if (!ok)
      lb_argerror(L, fn, pos, name, "entry [%lld] is %s, expected an integer", (long long)i,
                  lb_typename(L, -1));
    sizes[i - 1] = (int64_t)v;
    lua_pop(L, 1);
  }
  return (int)n;
}

int lb_shape_args(lua_State *L, const char *fn, int first, bool allow_neg1, int *ndim,
                  int64_t *shape) {
  if (lua_type(L, first) == LUA_TTABLE && !lb_is_options(L, first)) {
    lb_shape_table(L, fn, first, "size", allow_neg1, ndim, shape);
    return first + 1;
  }
  int i = first, n = 0;
  while (lua_type(L, i) == LUA_TNUMBER) {
    if (n == LC_MAX_DIMS)
      lb_argerror(L, fn, i, "size", "a tensor has at most %d dims", LC_MAX_DIMS);
    shape[n++] = size_value(L, fn, i, "size", i, 0, allow_neg1);
    i++;
  }
  *ndim = n;
  return i;
}

/* ---------------------------------------------------------------- creation options */

void lb_creation_opts(lua_State *L, const char *fn, int idx, lb_copts *o) {
  o->has_dtype = false;
  o->dtype = LC_FLOAT32;
  o->requires_grad = false;
  int top = lua_gettop(L);
  while (top > idx && lua_isnil(L, top)) top--;
  if (top > idx) {
    char b[64];
    lb_argerror(L, fn, idx + 1, "?", "unexpected argument %s", got(L, idx + 1, b, sizeof b));
  }
  if (lua_isnoneornil(L, idx)) return;
  if (lua_type(L, idx) != LUA_TTABLE) {
    char b[64];
    lb_argerror(L, fn, idx, "options", "expected an options table {dtype =, requires_grad =}, "
                "got %s", got(L, idx, b, sizeof b));
  }
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    if (!k || (strcmp(k, "dtype") != 0 && strcmp(k, "requires_grad") != 0)) {
      char b[64];
      lb_argerror(L, fn, idx, "options", "unknown option %s (expected dtype, requires_grad)",
                  k ? (snprintf(b, sizeof b, "'%s'", k), b) : got(L, -2, b, sizeof b));
    }
    lua_pop(L, 1);
  }
  lua_getfield(L, idx, "dtype");
  if (!lua_isnil(L, -1)) {
    o->dtype = dtype_value(L, fn, lua_gettop(L), idx, "dtype");
    o->has_dtype = true;
  }
  lua_pop(L, 1);
  if (lua_getfield(L, idx, "requires_grad") != LUA_TNIL) {
    if (lua_type(L, -1) != LUA_TBOOLEAN)
      lb_argerror(L, fn, idx, "requires_grad", "expected a boolean, got %s", lb_typename(L, -1));
    o->requires_grad = lua_toboolean(L, -1);
  }
  lua_pop(L, 1);
}

void lb_apply_copts(lua_State *L, const char *fn, lc_tensor *t, const lb_copts *o) {
  if (o->requires_grad && lc_set_requires_grad(t, true) != LC_OK) lb_core_error(L, fn);
}

/* ---------------------------------------------------------------- index tensors */

lc_tensor **lb_one_based_tensor(lua_State *L, const char *fn, int pos, const char *name,
                                const lc_tensor *idx, int64_t size, const char *what,
                                const char *kind, const int64_t *keep) {
  int64_t n = lc_numel(idx);
  /* The buffer is a userdata: freed by the collector if an error below unwinds. */
  int64_t *buf = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof(int64_t), 0);
  if (n > 0 && lc_copy_to_buffer(idx, LC_INT64, buf) != LC_OK) lb_core_error(L, fn);
  for (int64_t k = 0; k < n; k++) {
    if (buf[k] < 1 && !(keep && buf[k] == *keep)) { /* no 0-based image: the conversion's error */
      char where[LC_MAX_DIMS * 28 + 4], shown[LC_MAX_DIMS * 28 + 4];
      lc_marked_position(lc_ndim(idx), lc_shape(idx), k, where, sizeof where);
      char range[64] = "";
      if (size > 0) snprintf(range, sizeof range, " (expected 1..%lld)", (long long)size);
      lb_argerror(L, fn, pos, name, "%s%s = %lld is invalid: %s are 1-based%s", what,
                  lc_render_positions(where, 1, shown, sizeof shown), (long long)buf[k], kind,
                  range);
    }
    buf[k] -= 1; /* a kept value shifts with the others (ignore_index) */
  }
  lc_tensor **slot = lb_slot(L);
  if (lc_from_data(lc_ndim(idx), lc_shape(idx), LC_INT64, buf, slot) != LC_OK)
    lb_core_error(L, fn);
  lua_remove(L, -2); /* the buffer */
  return slot;
}

lc_tensor **lb_index_tensor(lua_State *L, const char *fn, int pos, const char *name,
                            const lc_tensor *idx, int64_t size, int dim0) {
  lc_dtype dt = lc_dtype_of(idx);
  if (dt != LC_INT64 && dt != LC_INT32)
    lb_argerror(L, fn, pos, name, "expected an int64 or int32 tensor of 1-based indices, got %s",
                lc_dtype_name(dt));
  lc_tensor **slot = lb_one_based_tensor(L, fn, pos, name, idx, size, "index", "indices", NULL);
  if (lc_check_indices(*slot, size, dim0, "index")) wrap_error(L, fn, pos, name); /* C's rule */
  return slot;
}

void lb_one_based(lua_State *L, const char *fn, lc_tensor **slot) {
  /* Out of place: max/min's indices may be saved by autograd, so they must not be bumped. */
  lc_tensor *t = NULL;
  if (lc_binary_scalar(LC_ADD, *slot, 1.0, false, &t) != LC_OK) lb_core_error(L, fn);
  lc_release(*slot);
  *slot = t;
}
