/*
 * linalg.c - the lucid.linalg table (lucid_core.h, "linear algebra"): PyTorch 1.13's
 * torch.linalg with positional arguments, a trailing options table, or both, in PyTorch's
 * parameter order. Dims are 1-based (negative from the end). Several results are returned as
 * several values (Q, R = lucid.linalg.qr(A)); lstsq returns a table {solution, residuals, rank,
 * singular_values}.
 */
#include "binding.h"

#include <math.h>
#include <string.h>

#define CORE(call)                                                                                 \
  do {                                                                                             \
    if ((call) != LC_OK) lb_core_error(L, fn);                                                     \
  } while (0)

static lc_tensor *input(lua_State *L, const char *fn, const char *const *names, int n) {
  lb_args(L, fn, names, n);
  return lb_tensor_arg(L, fn, 1, names[0]);
}

static int f_unary(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"A"};
  lc_tensor *a = input(L, fn, P, 1);
  lc_tensor **o = lb_slot(L);
  switch (LB_OP(L)) {
  case 0: CORE(lc_linalg_inv(a, o)); break;
  case 1: CORE(lc_linalg_det(a, o)); break;
  default: CORE(lc_linalg_svdvals(a, o)); break;
  }
  return 1;
}

static int f_solve(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"A", "B", "rcond"};
  lc_tensor *a = input(L, fn, P, LB_OP(L) ? 3 : 2);
  lc_tensor *b = lb_tensor_arg(L, fn, 2, "B");
  if (!LB_OP(L)) {
    lc_tensor **o = lb_slot(L);
    CORE(lc_linalg_solve(a, b, o));
    return 1;
  }
  double rcond = lb_opt_num_arg(L, fn, 3, "rcond", -1);
  lc_tensor **x = lb_slot(L), **res = lb_slot(L), **rk = lb_slot(L), **sv = lb_slot(L);
  CORE(lc_linalg_lstsq_ex(a, b, rcond, x, res, rk, sv));
  lua_createtable(L, 0, 4);
  static const char *const fields[] = {"solution", "residuals", "rank", "singular_values"};
  for (int k = 0; k < 4; k++) {
    lua_pushvalue(L, -5 + k);
    lua_setfield(L, -2, fields[k]);
  }
  return 1;
}

static int f_slogdet(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"A"};
  lc_tensor *a = input(L, fn, P, 1);
  lc_tensor **s = lb_slot(L);
  lc_tensor **l = lb_slot(L);
  CORE(lc_linalg_slogdet(a, s, l));
  return 2;
}

static int f_cholesky(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"A", "upper"};
  lc_tensor *a = input(L, fn, P, 2);
  bool upper = lb_opt_bool_arg(L, fn, 2, "upper", false);
  lc_tensor **o = lb_slot(L);
  CORE(lc_linalg_cholesky(a, upper, o));
  return 1;
}

static int f_qr(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"A", "mode"};
  lc_tensor *a = input(L, fn, P, 2);
  const char *mode = lua_isnil(L, 2) ? "reduced" : NULL;
  if (!mode) {
    if (lua_type(L, 2) != LUA_TSTRING)
      lb_argerror(L, fn, 2, "mode", "expected 'reduced', 'complete' or 'r', got %s",
                  lb_typename(L, 2));
    mode = lua_tostring(L, 2);
  }
  lc_linalg_qr_mode m;
  if (!strcmp(mode, "reduced"))
    m = LC_QR_REDUCED;
  else if (!strcmp(mode, "complete"))
    m = LC_QR_COMPLETE;
  else if (!strcmp(mode, "r"))
    m = LC_QR_R;
  else
    return lb_argerror(L, fn, 2, "mode", "expected 'reduced', 'complete' or 'r', got '%s'", mode);
  lc_tensor **q = lb_slot(L);
  lc_tensor **r = lb_slot(L);
  CORE(lc_linalg_qr(a, m, q, r));
  return 2;
}

static bool uplo_arg(lua_State *L, const char *fn, int pos) {
  if (lua_isnil(L, pos)) return false;
  const char *u = lua_type(L, pos) == LUA_TSTRING ? lua_tostring(L, pos) : NULL;
  if (u && (!strcmp(u, "L") || !strcmp(u, "U"))) return u[0] == 'U';
  lb_argerror(L, fn, pos, "UPLO", "expected 'L' or 'U', got %s", u ? u : lb_typename(L, pos));
  return false;
}

static int f_eigh(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"A", "UPLO"};
  lc_tensor *a = input(L, fn, P, 2);
  bool upper = uplo_arg(L, fn, 2);
  lc_tensor **l = lb_slot(L);
  if (LB_OP(L)) {
    CORE(lc_linalg_eigvalsh(a, upper, l));
    return 1;
  }
  lc_tensor **v = lb_slot(L);
  CORE(lc_linalg_eigh(a, upper, l, v));
  return 2;
}

static int f_svd(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"A", "full_matrices"};
  lc_tensor *a = input(L, fn, P, 2);
  bool full = lb_opt_bool_arg(L, fn, 2, "full_matrices", true);
  lc_tensor **u = lb_slot(L);
  lc_tensor **s = lb_slot(L);
  lc_tensor **vh = lb_slot(L);
  CORE(lc_linalg_svd(a, full, u, s, vh));
  return 3;
}

/* op 0 pinv, 1 matrix_rank */
static int f_pinv(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"A", "atol", "rtol", "hermitian"};
  lc_tensor *a = input(L, fn, P, 4);
  double atol = lb_opt_num_arg(L, fn, 2, "atol", -1);
  double rtol = lb_opt_num_arg(L, fn, 3, "rtol", -1);
  if (!lua_isnil(L, 2) && atol < 0) lb_argerror(L, fn, 2, "atol", "must be >= 0, got %g", atol);
  if (!lua_isnil(L, 3) && rtol < 0) lb_argerror(L, fn, 3, "rtol", "must be >= 0, got %g", rtol);
  bool herm = lb_opt_bool_arg(L, fn, 4, "hermitian", false);
  lc_tensor **o = lb_slot(L);
  if (LB_OP(L))
    CORE(lc_linalg_matrix_rank(a, atol, rtol, herm, o));
  else
    CORE(lc_linalg_pinv(a, atol, rtol, herm, o));
  return 1;
}

static int f_matrix_power(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"A", "n"};
  lc_tensor *a = input(L, fn, P, 2);
  int64_t n = lb_int_arg(L, fn, 2, "n");
  lc_tensor **o = lb_slot(L);
  CORE(lc_linalg_matrix_power(a, n, o));
  return 1;
}

/* ord at pos: nil (has = false), a number (math.huge for inf), 'fro' or 'nuc' */
static lc_linalg_norm_kind ord_arg(lua_State *L, const char *fn, int pos, bool strings, bool *has,
                                   double *ord) {
  *has = !lua_isnil(L, pos);
  *ord = 2;
  if (!*has) return LC_NORM_ORD;
  if (lua_type(L, pos) == LUA_TSTRING && strings) {
    const char *s = lua_tostring(L, pos);
    if (!strcmp(s, "fro")) return LC_NORM_FRO;
    if (!strcmp(s, "nuc")) return LC_NORM_NUC;
    lb_argerror(L, fn, pos, "ord", "expected a number, 'fro' or 'nuc', got '%s'", s);
  }
  if (lua_type(L, pos) != LUA_TNUMBER)
    lb_argerror(L, fn, pos, "ord",
                strings ? "expected a number, 'fro' or 'nuc', got %s" : "expected a number, got %s",
                lb_typename(L, pos));
  *ord = lua_tonumber(L, pos);
  return LC_NORM_ORD;
}

/* op 0 norm, 1 vector_norm, 2 matrix_norm */
static int f_norm(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"x", "ord", "dim", "keepdim"};
  lc_tensor *x = input(L, fn, P, 4);
  int op = LB_OP(L);
  bool has;
  double ord;
  lc_linalg_norm_kind kind = ord_arg(L, fn, 2, op != 1, &has, &ord);
  int dims[LC_MAX_DIMS];
  int nd = lb_dims_arg(L, fn, 3, "dim", lc_ndim(x), dims);
  bool keep = lb_opt_bool_arg(L, fn, 4, "keepdim", false);
  lc_tensor **o = lb_slot(L);
  if (op == 1) {
    CORE(lc_linalg_vector_norm(x, has ? ord : 2, nd, dims, keep, o));
  } else if (op == 2) {
    if (lua_isnil(L, 3)) nd = 2, dims[0] = -2, dims[1] = -1;
    if (nd != 2) lb_argerror(L, fn, 3, "dim", "expected 2 dims, got %d", nd);
    if (!has) kind = LC_NORM_FRO;
    CORE(lc_linalg_matrix_norm(x, kind, ord, dims[0], dims[1], keep, o));
  } else {
    CORE(lc_linalg_norm(x, has, kind, ord, nd, dims, keep, o));
  }
  return 1;
}

static int f_cross(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "other", "dim"};
  lc_tensor *a = input(L, fn, P, 3);
  lc_tensor *b = lb_tensor_arg(L, fn, 2, "other");
  int nd = lc_ndim(a) > lc_ndim(b) ? lc_ndim(a) : lc_ndim(b);
  int dim = lb_opt_dim_arg(L, fn, 3, "dim", nd, -1);
  lc_tensor **o = lb_slot(L);
  CORE(lc_linalg_cross(a, b, dim, o));
  return 1;
}

/* Names carry the "linalg." prefix (error messages read "lucid.linalg.inv: ..."); module.c
 * stores each under the name without it in the lucid.linalg table. */
const lb_reg lb_linalg_regs[] = {{"linalg.inv", f_unary, 0, LB_FUNC},
                                 {"linalg.det", f_unary, 1, LB_FUNC},
                                 {"linalg.svdvals", f_unary, 2, LB_FUNC},
                                 {"linalg.solve", f_solve, 0, LB_FUNC},
                                 {"linalg.lstsq", f_solve, 1, LB_FUNC},
                                 {"linalg.slogdet", f_slogdet, 0, LB_FUNC},
                                 {"linalg.cholesky", f_cholesky, 0, LB_FUNC},
                                 {"linalg.qr", f_qr, 0, LB_FUNC},
                                 {"linalg.eigh", f_eigh, 0, LB_FUNC},
                                 {"linalg.eigvalsh", f_eigh, 1, LB_FUNC},
                                 {"linalg.svd", f_svd, 0, LB_FUNC},
                                 {"linalg.pinv", f_pinv, 0, LB_FUNC},
                                 {"linalg.matrix_rank", f_pinv, 1, LB_FUNC},
                                 {"linalg.matrix_power", f_matrix_power, 0, LB_FUNC},
                                 {"linalg.norm", f_norm, 0, LB_FUNC},
                                 {"linalg.vector_norm", f_norm, 1, LB_FUNC},
                                 {"linalg.matrix_norm", f_norm, 2, LB_FUNC},
                                 {"linalg.cross", f_cross, 0, LB_FUNC},
                                 {NULL, NULL, 0, 0}};
