/*
 * ops_misc.c - the miscellaneous tensor ops (lucid_core.h, "misc ops") as lucid.* functions and
 * tensor methods:
 *   lucid.meshgrid(t1, t2, ... [, {indexing = "ij" | "xy"}]) (or one table of tensors),
 *   t:unique({sorted =, return_inverse =, return_counts =, dim =}), t:unique_consecutive(...),
 *   lucid.searchsorted(sorted_sequence, values, {right =, side =, out_int32 =, sorter =}),
 *   lucid.bucketize(input, boundaries, {right =, out_int32 =}), t:clamp_min(min), t:clamp_max(max)
 *   (numbers or tensors; and the _ forms), t:nan_to_num({nan =, posinf =, neginf =}) and
 *   nan_to_num_, t:isclose(other, {rtol =, atol =, equal_nan =}), t:lerp(end, weight) and lerp_,
 *   lucid.cdist(x1, x2, {p = 2}), lucid.cosine_similarity(x1, x2, {dim = 2, eps = 1e-8}),
 *   lucid.pairwise_distance(x1, x2, {p = 2, eps = 1e-6, keepdim = false}).
 * Returned indices are 1-based: unique's inverse (1..#values) and searchsorted / bucketize's
 * insertion positions (1..n + 1: PyTorch's index i in [0, n] plus one). sorter is 1-based
 * (lucid.argsort's result). The rules are the core's (src/ops/misc_ops.c).
 */
#include "binding.h"

#include <string.h>

#define CORE(call)                                                                                 \
  do {                                                                                             \
    if ((call) != LC_OK) lb_core_error(L, fn);                                                     \
  } while (0)

/* ------------------------------------------------------------------ meshgrid */

static int f_meshgrid(lua_State *L) {
  const char *fn = LB_FN(L);
  int top = lua_gettop(L);
  bool xy = false;
  if (top >= 1 && lb_is_options(L, top)) {
    lua_pushnil(L);
    while (lua_next(L, top)) {
      lua_pop(L, 1);
      if (lua_type(L, -1) != LUA_TSTRING || strcmp(lua_tostring(L, -1), "indexing"))
        lb_error(L, fn, "unknown option '%s'",
                 lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?");
    }
    lua_getfield(L, top, "indexing");
    if (!lua_isnil(L, -1)) {
      const char *s = lua_tostring(L, -1);
      if (lua_type(L, -1) != LUA_TSTRING || (strcmp(s, "ij") && strcmp(s, "xy")))
        lb_argerror(L, fn, top, "indexing", "expected \"ij\" or \"xy\", got %s",
                    lua_type(L, -1) == LUA_TSTRING ? s : lb_typename(L, -1));
      xy = s[0] == 'x';
    }
    lua_pop(L, 1);
    lua_settop(L, --top);
  }
  if (top == 1 && lua_type(L, 1) == LUA_TTABLE && !lb_ud(L, 1)) { /* one list of tensors */
    int n = (int)lua_rawlen(L, 1);
    for (int i = 1; i <= n; i++)
      lua_rawgeti(L, 1, i);
    lua_remove(L, 1);
    top = n;
  }
  if (top == 0) lb_error(L, fn, "expected at least one tensor");
  if (top > LC_MAX_DIMS) lb_error(L, fn, "at most %d tensors, got %d", LC_MAX_DIMS, top);
  lc_tensor *ts[LC_MAX_DIMS];
  for (int i = 0; i < top; i++)
    ts[i] = lb_tensor_arg(L, fn, i + 1, "tensors");
  lb_list *l = lb_list_new(L, top);
  CORE(lc_meshgrid(top, ts, xy, l->ts));
  for (int i = 0; i < top; i++) {
    lb_push(L, l->ts[i]);
  }
  return top;
}

/* ------------------------------------------------------------------ unique */

static int f_unique(lua_State *L) { /* op 0 unique, 1 unique_consecutive */
  const char *fn = LB_FN(L);
  bool cons = LB_OP(L) == 1;
  static const char *const P0[] = {"input", "sorted", "return_inverse", "return_counts", "dim"};
  static const char *const P1[] = {"input", "return_inverse", "return_counts", "dim"};
  int b = cons ? 2 : 3;
  lb_args(L, fn, cons ? P1 : P0, cons ? 4 : 5);
  lc_tensor *t = lb_tensor_arg(L, fn, 1, "input");
  bool sorted = cons ? true : lb_opt_bool_arg(L, fn, 2, "sorted", true);
  bool ri = lb_opt_bool_arg(L, fn, b, "return_inverse", false);
  bool rc = lb_opt_bool_arg(L, fn, b + 1, "return_counts", false);
  bool has_dim = !lua_isnil(L, b + 2);
  int d = has_dim ? lb_dim_arg(L, fn, b + 2, "dim", lc_ndim(t)) : 0;
  lc_tensor **v = lb_slot(L);
  int vi = lua_gettop(L);
  lc_tensor **inv = lb_slot(L);
  lc_tensor **cnt = lb_slot(L);
  CORE(cons ? lc_unique_consecutive(t, has_dim, d, v, ri ? inv : NULL, rc ? cnt : NULL)
            : lc_unique(t, sorted, has_dim, d, v, ri ? inv : NULL, rc ? cnt : NULL));
  if (ri) lb_one_based(L, fn, inv);
  int nret = 1;
  lua_pushvalue(L, vi);
  if (ri) lua_pushvalue(L, vi + 1), nret++;
  if (rc) lua_pushvalue(L, vi + 2), nret++;
  return nret;
}

/* ------------------------------------------------------------------ searchsorted, bucketize */

/* The tensor at pos, or a number made a 0-dim tensor of like's dtype (pushed). */
static lc_tensor *tensor_or_number(lua_State *L, const char *fn, int pos, const char *name,
                                   lc_dtype like) {
  double s;
  if (!lb_ud(L, pos) && lb_scalar(L, pos, &s)) {
    lc_tensor **slot = lb_slot(L);
    CORE(lc_scalar(s, like, slot));
    lua_replace(L, pos);
    return lb_ud(L, pos)->t;
  }
  return lb_tensor_arg(L, fn, pos, name);
}

static int f_searchsorted(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"sorted_sequence", "values", "out_int32",
                                  "right",           "side",   "sorter"};
  lb_args(L, fn, P, 6);
  lc_tensor *seq = lb_tensor_arg(L, fn, 1, "sorted_sequence");
  lc_tensor *v = tensor_or_number(L, fn, 2, "values", lc_dtype_of(seq));
  bool i32 = lb_opt_bool_arg(L, fn, 3, "out_int32", false);
  bool right = lb_opt_bool_arg(L, fn, 4, "right", false);
  if (!lua_isnil(L, 5)) {
    const char *s = lua_type(L, 5) == LUA_TSTRING ? lua_tostring(L, 5) : NULL;
    if (!s || (strcmp(s, "left") && strcmp(s, "right")))
      lb_argerror(L, fn, 5, "side", "expected \"left\" or \"right\", got %s",
                  s ? s : lb_typename(L, 5));
    bool sr = s[0] == 'r';
    if (!lua_isnil(L, 4) && sr != right)
      lb_argerror(L, fn, 5, "side", "side = \"%s\" contradicts right = %s", s,
                  right ? "true" : "false");
    right = sr;
  }
  lc_tensor **sorter = NULL;
  if (!lua_isnil(L, 6)) {
    lc_tensor *so = lb_tensor_arg(L, fn, 6, "sorter");
    int nd = lc_ndim(seq);
    int64_t n = nd ? lc_shape(seq)[nd - 1] : 1;
    sorter = lb_index_tensor(L, fn, 6, "sorter", so, n, nd ? nd - 1 : 0);
  }
  lc_tensor **out = lb_slot(L);
  CORE(lc_searchsorted(seq, v, right, i32, sorter ? *sorter : NULL, out));
  lb_one_based(L, fn, out);
  return 1;
}

static int f_bucketize(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "boundaries", "out_int32", "right"};
  lb_args(L, fn, P, 4);
  lc_tensor *bd = lb_tensor_arg(L, fn, 2, "boundaries");
  lc_tensor *x = tensor_or_number(L, fn, 1, "input", lc_dtype_of(bd));
  bool i32 = lb_opt_bool_arg(L, fn, 3, "out_int32", false);
  bool right = lb_opt_bool_arg(L, fn, 4, "right", false);
  lc_tensor **out = lb_slot(L);
  CORE(lc_bucketize(x, bd, right, i32, out));
  lb_one_based(L, fn, out);
  return 1;
}

/* ------------------------------------------------------------------ clamp_min / clamp_max */

static int f_clamp_side(lua_State *L) { /* op bit 0: max (else min); bit 1: in place */
  const char *fn = LB_FN(L);
  int op = LB_OP(L);
  bool is_max = op & 1, inplace = op & 2;
  static const char *const PMIN[] = {"input", "min"}, *const PMAX[] = {"input", "max"};
  const char *name = is_max ? "max" : "min";
  lb_args(L, fn, is_max ? PMAX : PMIN, 2);
  lc_tensor *t = lb_tensor_arg(L, fn, 1, "input");
  double s = 0;
  lb_tensor *u = lb_ud(L, 2);
  if (!u && !lb_scalar(L, 2, &s))
    lb_argerror(L, fn, 2, name, "expected a tensor or a number, got %s", lb_typename(L, 2));
  lc_tensor *bt = u ? u->t : NULL;
  if (inplace) {
    if (bt)
      CORE(lc_clamp_tensor_(t, is_max ? NULL : bt, is_max ? bt : NULL));
    else
      CORE(lc_clamp_(t, !is_max, s, is_max, s));
    lua_settop(L, 1);
    return 1;
  }
  lc_tensor **out = lb_slot(L);
  if (bt)
    CORE(lc_clamp_tensor(t, is_max ? NULL : bt, is_max ? bt : NULL, out));
  else
    CORE(lc_clamp(t, !is_max, s, is_max, s, out));
  return 1;
}

/* ------------------------------------------------------------------ nan_to_num */

static int f_nan_to_num(lua_State *L) { /* op 1: in place */
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "nan", "posinf", "neginf"};
  lb_args(L, fn, P, 4);
  lc_tensor *t = lb_tensor_arg(L, fn, 1, "input");
  double v[3];
  const double *p[3] = {NULL, NULL, NULL};
  for (int k = 0; k < 3; k++)
    if (!lua_isnil(L, k + 2)) {
      v[k] = lb_num_arg(L, fn, k + 2, P[k + 1]);
      p[k] = &v[k];
    }
  if (LB_OP(L)) {
    CORE(lc_nan_to_num_(t, p[0], p[1], p[2]));
    lua_settop(L, 1);
    return 1;
  }
  lc_tensor **out = lb_slot(L);
  CORE(lc_nan_to_num(t, p[0], p[1], p[2], out));
  return 1;
}

/* ------------------------------------------------------------------ isclose */

static int f_isclose(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "other", "rtol", "atol", "equal_nan"};
  lb_args(L, fn, P, 5);
  lc_tensor *a = lb_tensor_arg(L, fn, 1, "input");
  lc_tensor *b = lb_tensor_arg(L, fn, 2, "other");
  double rtol = lb_opt_num_arg(L, fn, 3, "rtol", 1e-5),
         atol = lb_opt_num_arg(L, fn, 4, "atol", 1e-8);
  bool en = lb_opt_bool_arg(L, fn, 5, "equal_nan", false);
  lc_tensor **out = lb_slot(L);
  CORE(lc_isclose(a, b, rtol, atol, en, out));
  return 1;
}

/* ------------------------------------------------------------------ lerp */

static int f_lerp(lua_State *L) { /* op 1: in place */
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "end", "weight"};
  lb_args(L, fn, P, 3);
  lc_tensor *s = lb_tensor_arg(L, fn, 1, "input");
  lc_tensor *e = lb_tensor_arg(L, fn, 2, "end");
  double w = 0;
  lb_tensor *u = lb_ud(L, 3);
  if (!u && !lb_scalar(L, 3, &w))
    lb_argerror(L, fn, 3, "weight", "expected a tensor or a number, got %s", lb_typename(L, 3));
  if (LB_OP(L)) {
    CORE(u ? lc_lerp_(s, e, u->t) : lc_lerp_scalar_(s, e, w));
    lua_settop(L, 1);
    return 1;
  }
  lc_tensor **out = lb_slot(L);
  CORE(u ? lc_lerp(s, e, u->t, out) : lc_lerp_scalar(s, e, w, out));
  return 1;
}

/* ------------------------------------------------------------------ distances */

static int f_cdist(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"x1", "x2", "p"};
  lb_args(L, fn, P, 3);
  lc_tensor *a = lb_tensor_arg(L, fn, 1, "x1"), *b = lb_tensor_arg(L, fn, 2, "x2");
  double p = lb_opt_num_arg(L, fn, 3, "p", 2);
  lc_tensor **out = lb_slot(L);
  CORE(lc_cdist(a, b, p, out));
  return 1;
}

static int f_cosine_similarity(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"x1", "x2", "dim", "eps"};
  lb_args(L, fn, P, 4);
  lc_tensor *a = lb_tensor_arg(L, fn, 1, "x1"), *b = lb_tensor_arg(L, fn, 2, "x2");
  int nd = lc_ndim(a) > lc_ndim(b) ? lc_ndim(a) : lc_ndim(b);
  int d = lua_isnil(L, 3) ? 1 : lb_dim_arg(L, fn, 3, "dim", nd);
  double eps = lb_opt_num_arg(L, fn, 4, "eps", 1e-8);
  lc_tensor **out = lb_slot(L);
  CORE(lc_cosine_similarity(a, b, d, eps, out));
  return 1;
}

static int f_pairwise_distance(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"x1", "x2", "p", "eps", "keepdim"};
  lb_args(L, fn, P, 5);
  lc_tensor *a = lb_tensor_arg(L, fn, 1, "x1"), *b = lb_tensor_arg(L, fn, 2, "x2");
  double p = lb_opt_num_arg(L, fn, 3, "p", 2), eps = lb_opt_num_arg(L, fn, 4, "eps", 1e-6);
  bool keep = lb_opt_bool_arg(L, fn, 5, "keepdim", false);
  lc_tensor **out = lb_slot(L);
  CORE(lc_pairwise_distance(a, b, p, eps, keep, out));
  return 1;
}

const lb_reg lb_misc_regs[] = {{"meshgrid", f_meshgrid, 0, LB_FUNC},
                               {"unique", f_unique, 0, LB_BOTH},
                               {"unique_consecutive", f_unique, 1, LB_BOTH},
                               {"searchsorted", f_searchsorted, 0, LB_FUNC},
                               {"bucketize", f_bucketize, 0, LB_FUNC},
                               {"clamp_min", f_clamp_side, 0, LB_BOTH},
                               {"clamp_max", f_clamp_side, 1, LB_BOTH},
                               {"clamp_min_", f_clamp_side, 2, LB_METHOD},
                               {"clamp_max_", f_clamp_side, 3, LB_METHOD},
                               {"nan_to_num", f_nan_to_num, 0, LB_BOTH},
                               {"nan_to_num_", f_nan_to_num, 1, LB_METHOD},
                               {"isclose", f_isclose, 0, LB_BOTH},
                               {"lerp", f_lerp, 0, LB_BOTH},
                               {"lerp_", f_lerp, 1, LB_METHOD},
                               {"cdist", f_cdist, 0, LB_FUNC},
                               {"cosine_similarity", f_cosine_similarity, 0, LB_FUNC},
                               {"pairwise_distance", f_pairwise_distance, 0, LB_FUNC},
                               {NULL, NULL, 0, 0}};
