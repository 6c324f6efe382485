/*
 * ops_advindex.c - the advanced-indexing family's tensor methods and lucid.* functions
 * (lucid_core.h, "advanced indexing"): einsum, scatter_reduce(_), index_add(_), index_copy(_),
 * index_put(_), take_along_dim, one_hot (also nn.functional.one_hot). Dims and indices are
 * 1-based; index tensors are converted to 0-based copies here (lb_index_tensor), so a value
 * out of range is reported against the Lua argument in 1-based terms.
 */
#include "binding.h"

#include <string.h>

#define CORE(call)                                                                                 \
  do {                                                                                             \
    if ((call) != LC_OK) lb_core_error(L, fn);                                                     \
  } while (0)

static void drop_tmp(lc_tensor **slot) {
  if (slot) {
    lc_release(*slot);
    *slot = NULL;
  }
}

static lc_tensor *input(lua_State *L, const char *fn, const char *const *names, int n) {
  lb_args(L, fn, names, n);
  return lb_tensor_arg(L, fn, 1, "input");
}

static bool is_index(lc_tensor *t) {
  return lc_dtype_of(t) == LC_INT64 || lc_dtype_of(t) == LC_INT32;
}

/* an index tensor argument, 1-based -> 0-based along dim d of size `size` */
static lc_tensor **index_arg(lua_State *L, const char *fn, int pos, const char *name, int64_t size,
                             int d) {
  lc_tensor *idx = lb_tensor_arg(L, fn, pos, name);
  if (!is_index(idx))
    lb_argerror(L, fn, pos, name, "expected an int64 or int32 tensor of indices, got %s",
                lc_dtype_name(lc_dtype_of(idx)));
  return lb_index_tensor(L, fn, pos, name, idx, size, d);
}

/* lucid.einsum(equation, a, b, ...) or lucid.einsum(equation, {a, b, ...}) */
static int f_einsum(lua_State *L) {
  const char *fn = LB_FN(L);
  if (lua_type(L, 1) != LUA_TSTRING)
    lb_argerror(L, fn, 1, "equation", "expected a string, got %s", lb_typename(L, 1));
  const char *eq = lua_tostring(L, 1);
  int n, base;
  if (lua_gettop(L) == 2 && lua_type(L, 2) == LUA_TTABLE && !lb_ud(L, 2)) {
    n = (int)lua_rawlen(L, 2);
    base = lua_gettop(L) + 1;
    for (int i = 1; i <= n; i++)
      lua_rawgeti(L, 2, i);
  } else {
    n = lua_gettop(L) - 1;
    base = 2;
  }
  if (n < 1) lb_argerror(L, fn, 2, "operands", "expected at least one tensor");
  if (n > 64) lb_argerror(L, fn, 2, "operands", "expected at most 64 tensors, got %d", n);
  const lc_tensor *ts[64];
  for (int i = 0; i < n; i++) {
    lb_tensor *u = lb_ud(L, base + i);
    if (!u || !u->t) {
      if (base == 2)
        lb_argerror(L, fn, 2 + i, "operand", "expected a tensor, got %s", lb_typename(L, base + i));
      lb_argerror(L, fn, 2, "operands", "expected a table of tensors, got %s at [%d]",
                  lb_typename(L, base + i), i + 1);
    }
    ts[i] = u->t;
  }
  lc_tensor **out = lb_slot(L);
  CORE(lc_einsum(eq, n, ts, out));
  return 1;
}

/* op 0 scatter_reduce, 1 scatter_reduce_ */
static int f_scatter_reduce(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "dim", "index", "src", "reduce", "include_self"};
  lc_tensor *t = input(L, fn, P, 6);
  int d = lb_dim_arg(L, fn, 2, "dim", lc_ndim(t));
  lc_tensor *idx = lb_tensor_arg(L, fn, 3, "index");
  lc_tensor *src = lb_tensor_arg(L, fn, 4, "src");
  if (lua_type(L, 5) != LUA_TSTRING)
    lb_argerror(L, fn, 5, "reduce",
                "expected one of \"sum\", \"prod\", \"mean\", \"amax\", "
                "\"amin\", got %s",
                lb_typename(L, 5));
  lc_sr_reduce red;
  if (lc_sr_reduce_from_name(lua_tostring(L, 5), &red))
    lb_argerror(L, fn, 5, "reduce",
                "expected one of \"sum\", \"prod\", \"mean\", \"amax\", \"amin\", got \"%s\"",
                lua_tostring(L, 5));
  bool inc = lb_opt_bool_arg(L, fn, 6, "include_self", true);
  if (!is_index(idx))
    lb_argerror(L, fn, 3, "index", "expected an int64 or int32 tensor of indices, got %s",
                lc_dtype_name(lc_dtype_of(idx)));
  if (lc_ndim(idx) != lc_ndim(t))
    lb_argerror(L, fn, 3, "index", "expected an index with as many dims as the input (%d), got %d",
                lc_ndim(t), lc_ndim(idx));
  int64_t size = lc_ndim(t) ? lc_shape(t)[d] : 1;
  lc_tensor **k = lb_index_tensor(L, fn, 3, "index", idx, size, d);
  lc_status st;
  if (LB_OP(L)) {
    st = lc_scatter_reduce_(t, d, *k, src, red, inc);
    lua_pushvalue(L, 1);
  } else {
    lc_tensor **out = lb_slot(L);
    st = lc_scatter_reduce(t, d, *k, src, red, inc, out);
  }
  drop_tmp(k);
  if (st != LC_OK) lb_core_error(L, fn);
  return 1;
}

/* op 0 index_add, 1 index_add_, 2 index_copy, 3 index_copy_ */
static int f_index_add(lua_State *L) {
  const char *fn = LB_FN(L);
  int op = LB_OP(L);
  static const char *const P[] = {"input", "dim", "index", "source", "alpha"};
  lc_tensor *t = input(L, fn, P, op < 2 ? 5 : 4);
  int d = lb_dim_arg(L, fn, 2, "dim", lc_ndim(t));
  int64_t size = lc_ndim(t) ? lc_shape(t)[d] : 1;
  lc_tensor **k = index_arg(L, fn, 3, "index", size, d);
  lc_tensor *src = lb_tensor_arg(L, fn, 4, "source");
  double alpha = op < 2 ? lb_opt_num_arg(L, fn, 5, "alpha", 1.0) : 1.0;
  lc_status st;
  if (op & 1) {
    st = op == 1 ? lc_index_add_(t, d, *k, src, alpha) : lc_index_copy_(t, d, *k, src);
    lua_pushvalue(L, 1);
  } else {
    lc_tensor **out = lb_slot(L);
    st = op == 0 ? lc_index_add(t, d, *k, src, alpha, out) : lc_index_copy(t, d, *k, src, out);
  }
  drop_tmp(k);
  if (st != LC_OK) lb_core_error(L, fn);
  return 1;
}

/* op 0 index_put, 1 index_put_ */
static int f_index_put(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "indices", "values", "accumulate"};
  lc_tensor *t = input(L, fn, P, 4);
  if (lua_type(L, 2) != LUA_TTABLE || lb_ud(L, 2))
    lb_argerror(L, fn, 2, "indices", "expected a table of index tensors, got %s",
                lb_typename(L, 2));
  lc_tensor *values = lb_tensor_arg(L, fn, 3, "values");
  bool acc = lb_opt_bool_arg(L, fn, 4, "accumulate", false);
  int n = (int)lua_rawlen(L, 2);
  if (n < 1) lb_argerror(L, fn, 2, "indices", "expected at least one index tensor");
  if (n > LC_MAX_DIMS)
    lb_argerror(L, fn, 2, "indices", "expected at most %d index tensors, got %d", LC_MAX_DIMS, n);
  const lc_tensor *ix[LC_MAX_DIMS];
  lc_tensor **slots[LC_MAX_DIMS] = {0};
  int k = 0; /* the dim of t the next index tensor indexes */
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, 2, i + 1);
    lb_tensor *u = lb_ud(L, -1);
    if (!u || !u->t)
      lb_argerror(L, fn, 2, "indices", "expected a tensor at [%d], got %s", i + 1,
                  lb_typename(L, -1));
    lc_tensor *x = u->t;
    if (lc_dtype_of(x) == LC_BOOL) {
      ix[i] = x;
      k += lc_ndim(x) ? lc_ndim(x) : 1;
      continue; /* the userdata stays on the stack, keeping x alive */
    }
    if (!is_index(x))
      lb_argerror(L, fn, 2, "indices", "expected int64, int32 or bool tensors, got %s at [%d]",
                  lc_dtype_name(lc_dtype_of(x)), i + 1);
    if (k >= lc_ndim(t))
      lb_argerror(L, fn, 2, "indices", "too many indices for a tensor of %d dims", lc_ndim(t));
    slots[i] = lb_index_tensor(L, fn, 2, "indices", x, lc_shape(t)[k], k);
    ix[i] = *slots[i];
    k++;
  }
  lc_status st;
  if (LB_OP(L)) {
    st = lc_index_put_(t, n, ix, values, acc);
    lua_pushvalue(L, 1);
  } else {
    lc_tensor **out = lb_slot(L);
    st = lc_index_put(t, n, ix, values, acc, out);
  }
  for (int i = 0; i < n; i++)
    drop_tmp(slots[i]);
  if (st != LC_OK) lb_core_error(L, fn);
  return 1;
}

static int f_take_along_dim(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "indices", "dim"};
  lc_tensor *t = input(L, fn, P, 3);
  bool has_dim = !lua_isnoneornil(L, 3);
  int d = has_dim ? lb_dim_arg(L, fn, 3, "dim", lc_ndim(t)) : 0;
  int64_t size = has_dim ? (lc_ndim(t) ? lc_shape(t)[d] : 1) : lc_numel(t);
  lc_tensor *idx = lb_tensor_arg(L, fn, 2, "indices");
  if (has_dim && lc_ndim(idx) != lc_ndim(t))
    lb_argerror(L, fn, 2, "indices", "expected as many dims as the input (%d), got %d", lc_ndim(t),
                lc_ndim(idx));
  lc_tensor **k = index_arg(L, fn, 2, "indices", size, has_dim ? d : 0);
  lc_tensor **out = lb_slot(L);
  lc_status st = lc_take_along_dim(t, *k, has_dim, d, out);
  drop_tmp(k);
  if (st != LC_OK) lb_core_error(L, fn);
  return 1;
}

/* one_hot(input, num_classes = -1): classes 1..C in Lua; class k sets position k */
static int f_one_hot(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "num_classes"};
  lc_tensor *t = input(L, fn, P, 2);
  int64_t c = lb_opt_int_arg(L, fn, 2, "num_classes", -1);
  if (c < -1)
    lb_argerror(L, fn, 2, "num_classes", "expected -1 (infer) or a count >= 0, got %lld",
                (long long)c);
  if (!is_index(t))
    lb_argerror(L, fn, 1, "input", "expected an int64 or int32 tensor of classes, got %s",
                lc_dtype_name(lc_dtype_of(t)));
  lc_tensor **k;
  if (c >= 0) {
    k = lb_one_based_tensor(L, fn, 1, "input", t, c, "input", "classes", NULL);
    if (lc_check_indices(*k, c, lc_ndim(t), "input"))
      lb_argerror(L, fn, 1, "input", "class out of range: classes are 1-based (expected 1..%lld)",
                  (long long)c);
  } else {
    k = lb_one_based_tensor(L, fn, 1, "input", t, 0, "input", "classes", NULL);
  }
  lc_tensor **out = lb_slot(L);
  lc_status st = lc_one_hot(*k, c, out);
  drop_tmp(k);
  if (st != LC_OK) lb_core_error(L, fn);
  return 1;
}

#define B LB_BOTH
#define M LB_METHOD
#define F LB_FUNC
const lb_reg lb_advindex_regs[] = {{"einsum", f_einsum, 0, F},
                                   {"scatter_reduce", f_scatter_reduce, 0, B},
                                   {"scatter_reduce_", f_scatter_reduce, 1, M},
                                   {"index_add", f_index_add, 0, B},
                                   {"index_add_", f_index_add, 1, M},
                                   {"index_copy", f_index_add, 2, B},
                                   {"index_copy_", f_index_add, 3, M},
                                   {"index_put", f_index_put, 0, B},
                                   {"index_put_", f_index_put, 1, M},
                                   {"take_along_dim", f_take_along_dim, 0, B},
                                   {"one_hot", f_one_hot, 0, F},
                                   {NULL, NULL, 0, 0}};
