/*
 * ops_rearrange.c - tensor methods and lucid.* functions of the rearranging ops
 * (lucid_core.h): tril, triu, tril_, triu_, flip, roll, rot90, repeat_interleave.
 *
 * As in ops.c, each function is one closure serving `t:name(...)` and `lucid.name(t, ...)`
 * (the tensor is argument 1, "input"). Dims are 1-based here and converted by args.c's
 * lb_dim_value; shifts, k, the diagonal and the repeats are counts and pass unchanged. The
 * rules on them (counts that must agree, distinct dims, non-negative repeats) are the core's,
 * raised through lb_core_error, which shows the dims its messages name 1-based.
 */
#include "binding.h"

#include <string.h>

#define CORE(call)                                                                                 \
  do {                                                                                             \
    if ((call) != LC_OK) lb_core_error(L, fn);                                                     \
  } while (0)

/* Integer entry i (1-based) of the table at pos, for the messages of argument `name`. */
static int64_t int_entry(lua_State *L, const char *fn, int pos, const char *name, lua_Integer i,
                         const char *what) {
  lua_rawgeti(L, pos, i);
  int ok = 0;
  lua_Integer v = lua_tointegerx(L, -1, &ok);
  if (!ok || lua_type(L, -1) != LUA_TNUMBER)
    lb_argerror(L, fn, pos, name, "entry [%lld] is %s, expected an integer %s", (long long)i,
                lua_type(L, -1) == LUA_TNUMBER ? "not an integer" : lb_typename(L, -1), what);
  lua_pop(L, 1);
  return (int64_t)v;
}

/* Varargs numbers from position `first` (t:flip(1, 2)) are packed into one table there, so the
 * parameter reads as a table (t:flip({1, 2})); anything else is left for lb_args. */
static void pack_varargs(lua_State *L, const char *fn, int first, const char *name) {
  int top = lua_gettop(L);
  if (top <= first || lua_type(L, first) != LUA_TNUMBER) return;
  lua_createtable(L, top - first + 1, 0);
  for (int i = first; i <= top; i++) {
    if (lua_type(L, i) != LUA_TNUMBER)
      lb_argerror(L, fn, i, name, "expected an integer dim, got %s", lb_typename(L, i));
    lua_pushvalue(L, i);
    lua_rawseti(L, -2, i - first + 1);
  }
  lua_replace(L, first);
  lua_settop(L, first);
}

/* A dim or a table of dims at pos (1-based, negative from the end) into dims, 0-based; at
 * most max entries. Returns the count. */
static int dims_list(lua_State *L, const char *fn, int pos, const char *name, int ndim, int *dims,
                     int max) {
  if (lua_type(L, pos) == LUA_TNUMBER) {
    dims[0] = lb_dim_arg(L, fn, pos, name, ndim);
    return 1;
  }
  if (lua_type(L, pos) != LUA_TTABLE)
    lb_argerror(L, fn, pos, name, "expected a dim or a table of dims, got %s", lb_typename(L, pos));
  lua_Integer len = luaL_len(L, pos);
  if (len > max)
    lb_argerror(L, fn, pos, name, "expected at most %d dims, got %lld", max, (long long)len);
  for (lua_Integer i = 1; i <= len; i++)
    dims[i - 1] = lb_dim_value(L, fn, pos, name, int_entry(L, fn, pos, name, i, "dim"), ndim);
  return (int)len;
}

/* ---------------------------------------------------------------- tril, triu */

static int f_tri(lua_State *L) { /* op 0 tril, 1 triu, 2 tril_, 3 triu_ */
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "diagonal"};
  lb_args(L, fn, P, 2);
  lc_tensor *t = lb_tensor_arg(L, fn, 1, "input");
  int64_t k = lb_opt_int_arg(L, fn, 2, "diagonal", 0);
  int op = LB_OP(L);
  if (op >= 2) { /* the op's message names "tril", the in-place rules "tril_": either under fn */
    if ((op == 2 ? lc_tril_(t, k) : lc_triu_(t, k)) != LC_OK) lb_error(L, fn, "%s", lb_core_text());
    lua_pushvalue(L, 1);
    return 1;
  }
  lc_tensor **out = lb_slot(L);
  CORE(op == 0 ? lc_tril(t, k, out) : lc_triu(t, k, out));
  return 1;
}

/* ---------------------------------------------------------------- flip */

static int f_flip(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "dims"};
  pack_varargs(L, fn, 2, "dims");
  lb_args(L, fn, P, 2);
  lc_tensor *t = lb_tensor_arg(L, fn, 1, "input");
  if (lua_isnil(L, 2)) lb_argerror(L, fn, 2, "dims", "expected a dim or a table of dims, got nil");
  int dims[LC_MAX_DIMS];
  int n = dims_list(L, fn, 2, "dims", lc_ndim(t), dims, LC_MAX_DIMS);
  lc_tensor **out = lb_slot(L);
  CORE(lc_flip(t, n, dims, out)); /* repeats are the core's rule */
  return 1;
}

/* ---------------------------------------------------------------- roll */

static int f_roll(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "shifts", "dims"};
  lb_args(L, fn, P, 3);
  lc_tensor *t = lb_tensor_arg(L, fn, 1, "input");
  int ns = 1, nd = 0;
  int64_t one_shift;
  int one_dim;
  int64_t *shifts = &one_shift;
  int *dims = &one_dim;
  if (lua_type(L, 2) == LUA_TTABLE) {
    lua_Integer len = luaL_len(L, 2);
    if (len > 1 << 20) lb_argerror(L, fn, 2, "shifts", "too many shifts (%lld)", (long long)len);
    ns = (int)len;
    shifts = lua_newuserdatauv(L, (size_t)(ns ? ns : 1) * sizeof *shifts, 0);
    for (int i = 0; i < ns; i++)
      shifts[i] = int_entry(L, fn, 2, "shifts", i + 1, "shift");
  } else if (lua_type(L, 2) == LUA_TNUMBER) {
    one_shift = lb_int_arg(L, fn, 2, "shifts");
  } else {
    lb_argerror(L, fn, 2, "shifts", "expected an integer or a table of integers, got %s",
                lb_typename(L, 2));
  }
  if (lua_type(L, 3) == LUA_TTABLE) {
    lua_Integer len = luaL_len(L, 3);
    if (len > 1 << 20) lb_argerror(L, fn, 3, "dims", "too many dims (%lld)", (long long)len);
    nd = (int)len;
    dims = lua_newuserdatauv(L, (size_t)(nd ? nd : 1) * sizeof *dims, 0);
    for (int i = 0; i < nd; i++)
      dims[i] =
          lb_dim_value(L, fn, 3, "dims", int_entry(L, fn, 3, "dims", i + 1, "dim"), lc_ndim(t));
  } else if (!lua_isnil(L, 3)) {
    if (lua_type(L, 3) != LUA_TNUMBER)
      lb_argerror(L, fn, 3, "dims", "expected a dim or a table of dims, got %s", lb_typename(L, 3));
    one_dim = lb_dim_arg(L, fn, 3, "dims", lc_ndim(t));
    nd = 1;
  }
  /* the counts' rules (shifts given, as many as dims, one without dims) are lc_roll's */
  lc_tensor **out = lb_slot(L);
  CORE(lc_roll(t, ns, shifts, nd, dims, out));
  return 1;
}

/* ---------------------------------------------------------------- rot90 */

static int f_rot90(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "k", "dims"};
  lb_args(L, fn, P, 3);
  lc_tensor *t = lb_tensor_arg(L, fn, 1, "input");
  int64_t k = lb_opt_int_arg(L, fn, 2, "k", 1);
  int dims[LC_MAX_DIMS] = {0, 1}, n = 2;
  /* a tensor of fewer than 2 dims has no plane to rotate in: the core says so, whatever the
   * dims (which could not be converted against it) */
  if (!lua_isnil(L, 3) && lc_ndim(t) >= 2) {
    if (lua_type(L, 3) != LUA_TTABLE)
      lb_argerror(L, fn, 3, "dims", "expected a table of 2 dims, got %s", lb_typename(L, 3));
    n = dims_list(L, fn, 3, "dims", lc_ndim(t), dims, LC_MAX_DIMS);
  }
  lc_tensor **out = lb_slot(L);
  CORE(lc_rot90(t, k, n, dims, out)); /* 2 distinct dims: the core's rule */
  return 1;
}

/* ---------------------------------------------------------------- repeat_interleave */

static int f_repeat_interleave(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "repeats", "dim"};
  lb_args(L, fn, P, 3);
  lc_tensor *t = lb_tensor_arg(L, fn, 1, "input");
  bool has_dim = !lua_isnil(L, 3);
  int dim = has_dim ? lb_dim_arg(L, fn, 3, "dim", lc_ndim(t)) : 0;
  lc_tensor *reps = lb_opt_tensor_arg(L, fn, 2, "repeats");
  if (reps) {
    lc_tensor **out = lb_slot(L);
    CORE(lc_repeat_interleave(t, reps, has_dim, dim, out));
    return 1;
  }
  if (lua_type(L, 2) == LUA_TTABLE) { /* a Lua sequence of counts: an int64 repeats tensor */
    lua_Integer len = luaL_len(L, 2);
    if (len > ((lua_Integer)1 << 40))
      lb_argerror(L, fn, 2, "repeats", "too many repeats (%lld)", (long long)len);
    lc_tensor **tmp = lb_slot(L);
    int64_t n = (int64_t)len;
    CORE(lc_empty(1, &n, LC_INT64, tmp));
    int64_t *v = lc_data(*tmp);
    for (lua_Integer i = 1; i <= len; i++)
      v[i - 1] = int_entry(L, fn, 2, "repeats", i, "count");
    lc_tensor **out = lb_slot(L);
    lc_status st = lc_repeat_interleave(t, *tmp, has_dim, dim, out);
    lc_release(*tmp);
    *tmp = NULL;
    if (st != LC_OK) lb_core_error(L, fn);
    return 1;
  }
  if (lua_type(L, 2) != LUA_TNUMBER)
    lb_argerror(L, fn, 2, "repeats",
                "expected an integer, a table of integers or an int64/int32 tensor, got %s",
                lb_typename(L, 2));
  int64_t r = lb_int_arg(L, fn, 2, "repeats");
  lc_tensor **out = lb_slot(L);
  CORE(lc_repeat_interleave_int(t, r, has_dim, dim, out));
  return 1;
}

/* ---------------------------------------------------------------- registration */

const lb_reg lb_rearrange_regs[] = {{"tril", f_tri, 0, LB_BOTH},
                                    {"triu", f_tri, 1, LB_BOTH},
                                    {"tril_", f_tri, 2, LB_METHOD},
                                    {"triu_", f_tri, 3, LB_METHOD},
                                    {"flip", f_flip, 0, LB_BOTH},
                                    {"roll", f_roll, 0, LB_BOTH},
                                    {"rot90", f_rot90, 0, LB_BOTH},
                                    {"repeat_interleave", f_repeat_interleave, 0, LB_BOTH},
                                    {NULL, NULL, 0, 0}};
