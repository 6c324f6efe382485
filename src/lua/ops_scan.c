/*
 * ops_scan.c - the cumulative ops as tensor methods and lucid.* functions:
 *   t:cumsum(dim [, {dtype =}]), t:cumprod(dim [, {dtype =}]), t:logcumsumexp(dim),
 *   t:diff([n = 1 [, dim = -1 [, prepend [, append]]]]) (or {n =, dim =, prepend =, append =}).
 * dims are 1-based (negative from the end; a 0-dim tensor takes 1 or -1); the rules on dtypes,
 * shapes and n are the core's (src/kernels/scan.c, src/ops/scan.c).
 */
#include "binding.h"

#define CORE(call)                                                                                 \
  do {                                                                                             \
    if ((call) != LC_OK) lb_core_error(L, fn);                                                     \
  } while (0)

static int f_scan(lua_State *L) { /* op 0 cumsum, 1 cumprod, 2 logcumsumexp */
  const char *fn = LB_FN(L);
  int op = LB_OP(L);
  static const char *const P[] = {"input", "dim", "dtype"};
  lb_args(L, fn, P, op == 2 ? 2 : 3);
  lc_tensor *t = lb_tensor_arg(L, fn, 1, "input");
  int d = lb_dim_arg(L, fn, 2, "dim", lc_ndim(t));
  lc_dtype dt = LC_FLOAT32;
  bool has_dt = op != 2 && !lua_isnil(L, 3);
  if (has_dt) dt = lb_dtype_arg(L, fn, 3, "dtype");
  lc_tensor **out = lb_slot(L);
  switch (op) {
  case 0: CORE(lc_cumsum(t, d, has_dt ? &dt : NULL, out)); break;
  case 1: CORE(lc_cumprod(t, d, has_dt ? &dt : NULL, out)); break;
  default: CORE(lc_logcumsumexp(t, d, out)); break;
  }
  return 1;
}

static int f_diff(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "n", "dim", "prepend", "append"};
  lb_args(L, fn, P, 5);
  lc_tensor *t = lb_tensor_arg(L, fn, 1, "input");
  int64_t n = lb_opt_int_arg(L, fn, 2, "n", 1);
  int d = lb_opt_dim_arg(L, fn, 3, "dim", lc_ndim(t), -1);
  lc_tensor *pre = lua_isnil(L, 4) ? NULL : lb_tensor_arg(L, fn, 4, "prepend");
  lc_tensor *app = lua_isnil(L, 5) ? NULL : lb_tensor_arg(L, fn, 5, "append");
  lc_tensor **out = lb_slot(L);
  CORE(lc_diff(t, n, d, pre, app, out));
  return 1;
}

const lb_reg lb_scan_regs[] = {{"cumsum", f_scan, 0, LB_BOTH},
                               {"cumprod", f_scan, 1, LB_BOTH},
                               {"logcumsumexp", f_scan, 2, LB_BOTH},
                               {"diff", f_diff, 0, LB_BOTH},
                               {NULL, NULL, 0, 0}};
