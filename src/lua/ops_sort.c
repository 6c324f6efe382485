/*
 * ops_sort.c - the sorting family's tensor methods and lucid.* functions (lucid_core.h, "sorting
 * and selection"): sort, argsort, topk, kthvalue, median, mode. Each serves t:name(...) and
 * lucid.name(t, ...) with positional arguments, a trailing options table, or both, in PyTorch's
 * parameter order. Dims are 1-based (default -1, the last); returned indices are 1-based int64;
 * k is a count (topk) or a rank (kthvalue, 1 = the smallest), the same in Lua as in C.
 */
#include "binding.h"

#define CORE(call)                                                                                 \
  do {                                                                                             \
    if ((call) != LC_OK) lb_core_error(L, fn);                                                     \
  } while (0)

static lc_tensor *input(lua_State *L, const char *fn, const char *const *names, int n) {
  lb_args(L, fn, names, n);
  return lb_tensor_arg(L, fn, 1, "input");
}

/* op 0 sort (values, indices), 1 argsort (indices) */
static int f_sort(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "dim", "descending", "stable"};
  lc_tensor *t = input(L, fn, P, 4);
  int dim = lb_opt_dim_arg(L, fn, 2, "dim", lc_ndim(t), -1);
  bool desc = lb_opt_bool_arg(L, fn, 3, "descending", false);
  bool stable = lb_opt_bool_arg(L, fn, 4, "stable", false);
  if (LB_OP(L)) {
    lc_tensor **i = lb_slot(L);
    CORE(lc_argsort(t, dim, desc, stable, i));
    lb_one_based(L, fn, i);
    return 1;
  }
  lc_tensor **v = lb_slot(L);
  lc_tensor **i = lb_slot(L);
  CORE(lc_sort(t, dim, desc, stable, v, i));
  lb_one_based(L, fn, i);
  return 2;
}

static int f_topk(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "k", "dim", "largest", "sorted"};
  lc_tensor *t = input(L, fn, P, 5);
  int64_t k = lb_int_arg(L, fn, 2, "k");
  int dim = lb_opt_dim_arg(L, fn, 3, "dim", lc_ndim(t), -1);
  bool largest = lb_opt_bool_arg(L, fn, 4, "largest", true);
  bool sorted = lb_opt_bool_arg(L, fn, 5, "sorted", true);
  lc_tensor **v = lb_slot(L);
  lc_tensor **i = lb_slot(L);
  CORE(lc_topk(t, k, dim, largest, sorted, v, i));
  lb_one_based(L, fn, i);
  return 2;
}

static int f_kthvalue(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "k", "dim", "keepdim"};
  lc_tensor *t = input(L, fn, P, 4);
  int64_t k = lb_int_arg(L, fn, 2, "k");
  int dim = lb_opt_dim_arg(L, fn, 3, "dim", lc_ndim(t), -1);
  bool keep = lb_opt_bool_arg(L, fn, 4, "keepdim", false);
  lc_tensor **v = lb_slot(L);
  lc_tensor **i = lb_slot(L);
  CORE(lc_kthvalue(t, k, dim, keep, v, i));
  lb_one_based(L, fn, i);
  return 2;
}

/* op 0 median (no dim: one result, the lower median of all elements), 1 mode (dim -1) */
static int f_median(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "dim", "keepdim"};
  lc_tensor *t = input(L, fn, P, 3);
  bool is_mode = LB_OP(L);
  if (!is_mode && lua_isnil(L, 2)) {
    if (!lua_isnil(L, 3)) lb_argerror(L, fn, 3, "keepdim", "keepdim needs a dim");
    lc_tensor **out = lb_slot(L);
    CORE(lc_median(t, out));
    return 1;
  }
  int dim = lb_opt_dim_arg(L, fn, 2, "dim", lc_ndim(t), -1);
  bool keep = lb_opt_bool_arg(L, fn, 3, "keepdim", false);
  lc_tensor **v = lb_slot(L);
  lc_tensor **i = lb_slot(L);
  CORE(is_mode ? lc_mode(t, dim, keep, v, i) : lc_median_dim(t, dim, keep, v, i));
  lb_one_based(L, fn, i);
  return 2;
}

const lb_reg lb_sort_regs[] = {{"sort", f_sort, 0, LB_BOTH},
                               {"argsort", f_sort, 1, LB_BOTH},
                               {"topk", f_topk, 0, LB_BOTH},
                               {"kthvalue", f_kthvalue, 0, LB_BOTH},
                               {"median", f_median, 0, LB_BOTH},
                               {"mode", f_median, 1, LB_BOTH},
                               {NULL, NULL, 0, 0}};
