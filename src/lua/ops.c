/*
 * ops.c - tensor methods and the matching lucid.* functions: sizes, views, elementwise,
 * reductions, linear algebra, joining, indexing, conversion.
 *
 * Every function is one closure serving both `t:name(...)` and `lucid.name(t, ...)`, so the
 * tensor is argument 1 ("input") in both spellings and positions in messages agree.
 * Pattern: check all arguments, push the output slot(s), call the core, release temporaries,
 * then turn a failure into "lucid.<fn>: <core message>".
 */
#include "binding.h"

#include <math.h>
#include <string.h>

static const char *const P_IN[] = {"input"};
static const char *const P_BIN[] = {"input", "other"};
static const char *const P_RED[] = {"input", "dim", "keepdim"};

#define CORE(call)                                                                             \
  do {                                                                                         \
    if ((call) != LC_OK) lb_core_error(L, fn);                                                 \
  } while (0)

static lc_tensor *input1(lua_State *L, const char *fn, const char *const *names, int n) {
  lb_args(L, fn, names, n);
  return lb_tensor_arg(L, fn, 1, "input");
}

/* ---------------------------------------------------------------- sizes */

static int f_size(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "dim"};
  lc_tensor *t = input1(L, fn, P, 2);
  bool stride = LB_OP(L);
  const int64_t *v = stride ? lc_strides(t) : lc_shape(t);
  if (lua_isnil(L, 2)) {
    lua_createtable(L, lc_ndim(t), 0);
    for (int i = 0; i < lc_ndim(t); i++) {
      lua_pushinteger(L, (lua_Integer)v[i]);
      lua_rawseti(L, -2, i + 1);
    }
    return 1;
  }
  if (lc_ndim(t) == 0) lb_argerror(L, fn, 2, "dim", "a 0-dim tensor has no dims");
  lua_pushinteger(L, (lua_Integer)v[lb_dim_arg(L, fn, 2, "dim", lc_ndim(t))]);
  return 1;
}

static int f_dim(lua_State *L) {
  const char *fn = LB_FN(L);
  lc_tensor *t = input1(L, fn, P_IN, 1);
  switch (LB_OP(L)) {
  case 0: lua_pushinteger(L, lc_ndim(t)); break;
  case 1: lua_pushinteger(L, (lua_Integer)lc_numel(t)); break;
  default: lua_pushboolean(L, lc_is_contiguous(t)); break;
  }
  return 1;
}

/* ---------------------------------------------------------------- views */

static void no_more_args(lua_State *L, const char *fn, int next) {
  int top = lua_gettop(L);
  while (top >= next && lua_isnil(L, top)) top--;
  if (top >= next)
    lb_argerror(L, fn, next, "?", "unexpected argument of type %s", lb_typename(L, next));
}

static int f_view(lua_State *L) { /* op 0 view, 1 reshape */
  const char *fn = LB_FN(L);
  lc_tensor *t = lb_tensor_arg(L, fn, 1, "input");
  int nd;
  int64_t shape[LC_MAX_DIMS];
  int next = lb_shape_args(L, fn, 2, true, &nd, shape);
  no_more_args(L, fn, next);
  int neg = 0;
  for (int i = 0; i < nd; i++) neg += shape[i] == -1;
  if (neg > 1) lb_argerror(L, fn, 2, "size", "only one size may be -1, got %d", neg);
  lc_tensor **out = lb_slot(L);
  CORE(LB_OP(L) ? lc_reshape(t, nd, shape, out) : lc_view(t, nd, shape, out));
  return 1;
}

static int f_view_as(lua_State *L) { /* op 0 view_as, 1 reshape_as, 2 expand_as */
  const char *fn = LB_FN(L);
  lc_tensor *t = input1(L, fn, P_BIN, 2);
  lc_tensor *o = lb_tensor_arg(L, fn, 2, "other");
  lc_tensor **out = lb_slot(L);
  int op = LB_OP(L);
  CORE(op == 0   ? lc_view(t, lc_ndim(o), lc_shape(o), out)
       : op == 1 ? lc_reshape(t, lc_ndim(o), lc_shape(o), out)
                 : lc_expand(t, lc_ndim(o), lc_shape(o), out));
  return 1;
}

static int f_permute(lua_State *L) {
  const char *fn = LB_FN(L);
  lc_tensor *t = lb_tensor_arg(L, fn, 1, "input");
  int nd = lc_ndim(t), n = 0, dims[LC_MAX_DIMS];
  if (lua_type(L, 2) == LUA_TTABLE) {
    lua_Integer len = luaL_len(L, 2);
    if (len != nd)
      lb_argerror(L, fn, 2, "dims", "expected %d dims (one per dim of the tensor), got %lld", nd,
                  (long long)len);
    for (int i = 0; i < nd; i++) {
      lua_rawgeti(L, 2, i + 1);
      int ok = 0;
      lua_Integer d = lua_tointegerx(L, -1, &ok);
      if (!ok) lb_argerror(L, fn, 2, "dims", "entry [%d] is not an integer", i + 1);
      lua_pop(L, 1);
      dims[n++] = lb_dim_value(L, fn, 2, "dims", d, nd);
    }
    no_more_args(L, fn, 3);
  } else {
    while (lua_type(L, 2 + n) == LUA_TNUMBER && n < LC_MAX_DIMS) {
      dims[n] = lb_dim_value(L, fn, 2 + n, "dims", lb_int_arg(L, fn, 2 + n, "dims"), nd);
      n++;
    }
    no_more_args(L, fn, 2 + n);
    if (n != nd)
      lb_argerror(L, fn, 2, "dims", "expected %d dims (one per dim of the tensor), got %d", nd,
                  n);
  }
  lc_tensor **out = lb_slot(L);
  CORE(lc_permute(t, dims, out)); /* repeats are the kernel's rule */
  return 1;
}

static int f_transpose(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "dim0", "dim1"};
  lc_tensor *t = input1(L, fn, P, 3);
  int d0 = lb_dim_arg(L, fn, 2, "dim0", lc_ndim(t));
  int d1 = lb_dim_arg(L, fn, 3, "dim1", lc_ndim(t));
  lc_tensor **out = lb_slot(L);
  CORE(lc_transpose(t, d0, d1, out));
  return 1;
}

static int f_t(lua_State *L) {
  const char *fn = LB_FN(L);
  lc_tensor *t = input1(L, fn, P_IN, 1);
  if (lc_ndim(t) > 2)
    lb_argerror(L, fn, 1, "input", "expected a tensor with at most 2 dims, got %d (use "
                "transpose or permute)", lc_ndim(t));
  lc_tensor **out = lb_slot(L);
  CORE(lc_t(t, out));
  return 1;
}

static int f_narrow(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "dim", "start", "length"};
  lc_tensor *t = input1(L, fn, P, 4);
  if (lc_ndim(t) == 0) lb_argerror(L, fn, 1, "input", "cannot narrow a 0-dim tensor");
  int d = lb_dim_arg(L, fn, 2, "dim", lc_ndim(t));
  int64_t size = lc_shape(t)[d];
  int64_t length = lb_int_arg(L, fn, 4, "length");
  int64_t s = lb_int_arg(L, fn, 3, "start");
  /* start converts (size + 1, one past the end, is allowed for an empty narrow, as PyTorch's
   * size); the length rules are lc_narrow's */
  int64_t start = (length == 0 && s == size + 1) ? size
                                                  : lb_index_value(L, fn, 3, "start", s, size, d);
  lc_tensor **out = lb_slot(L);
  CORE(lc_narrow(t, d, start, length, out));
  return 1;
}

static int f_select(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "dim", "index"};
  lc_tensor *t = input1(L, fn, P, 3);
  if (lc_ndim(t) == 0) lb_argerror(L, fn, 1, "input", "cannot select from a 0-dim tensor");
  int d = lb_dim_arg(L, fn, 2, "dim", lc_ndim(t));
  int64_t i = lb_index_value(L, fn, 3, "index", lb_int_arg(L, fn, 3, "index"), lc_shape(t)[d], d);
  lc_tensor **out = lb_slot(L);
  CORE(lc_select(t, d, i, out));
  return 1;
}

static int f_squeeze(lua_State *L) { /* op 0 squeeze, 1 unsqueeze */
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "dim"};
  lc_tensor *t = input1(L, fn, P, 2);
  lc_tensor **out;
  if (LB_OP(L) == 1) {
    int d = lb_dim_arg(L, fn, 2, "dim", lc_ndim(t) + 1);
    out = lb_slot(L);
    CORE(lc_unsqueeze(t, d, out));
  } else if (lua_isnil(L, 2)) {
    out = lb_slot(L);
    CORE(lc_squeeze(t, out));
  } else {
    int d = lb_dim_arg(L, fn, 2, "dim", lc_ndim(t));
    out = lb_slot(L);
    if (lc_ndim(t) == 0)
      *out = lc_retain(t);
    else
      CORE(lc_squeeze_dim(t, d, out));
  }
  return 1;
}

static int f_expand(lua_State *L) {
  const char *fn = LB_FN(L);
  lc_tensor *t = lb_tensor_arg(L, fn, 1, "input");
  int nd;
  int64_t shape[LC_MAX_DIMS];
  int next = lb_shape_args(L, fn, 2, true, &nd, shape);
  no_more_args(L, fn, next);
  int od = lc_ndim(t);
  if (nd < od)
    lb_argerror(L, fn, 2, "size", "expected at least %d sizes (the tensor's dims), got %d", od,
                nd);
  for (int i = 0; i < nd; i++) {
    if (shape[i] != -1) continue;
    int j = i - (nd - od);
    if (j < 0)
      lb_argerror(L, fn, 2, "size", "-1 is only allowed for existing dims, not new dim %d", i + 1);
    shape[i] = lc_shape(t)[j];
  }
  lc_tensor **out = lb_slot(L);
  CORE(lc_expand(t, nd, shape, out));
  return 1;
}

static int f_flatten(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "start_dim", "end_dim"};
  lc_tensor *t = input1(L, fn, P, 3);
  int nd = lc_ndim(t);
  int s = lb_opt_dim_arg(L, fn, 2, "start_dim", nd, 0);
  int e = lb_opt_dim_arg(L, fn, 3, "end_dim", nd, nd > 0 ? nd - 1 : 0);
  lc_tensor **out = lb_slot(L);
  CORE(lc_flatten(t, s, e, out)); /* the order rule and the 0-dim case are lc_flatten's */
  return 1;
}

/* unflatten(dim, sizes): the 1-based dim and the sizes as C values; the rules are lc_unflatten's */
static int f_unflatten(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "dim", "sizes"};
  lc_tensor *t = input1(L, fn, P, 3);
  int d = lb_dim_arg(L, fn, 2, "dim", lc_ndim(t));
  int64_t sizes[LC_MAX_DIMS + 1];
  int n = lb_sizes_arg(L, fn, 3, "sizes", sizes);
  lc_tensor **out = lb_slot(L);
  CORE(lc_unflatten(t, d, n, sizes, out));
  return 1;
}

static int f_simple(lua_State *L) { /* op 0 contiguous, 1 detach, 2 clone */
  const char *fn = LB_FN(L);
  lc_tensor *t = input1(L, fn, P_IN, 1);
  lc_tensor **out = lb_slot(L);
  int op = LB_OP(L);
  CORE(op == 0 ? lc_contiguous(t, out) : op == 1 ? lc_detach(t, out) : lc_clone(t, out));
  return 1;
}

/* ---------------------------------------------------------------- elementwise */

static int f_unary(lua_State *L) {
  const char *fn = LB_FN(L);
  lc_tensor *t = input1(L, fn, P_IN, 1);
  lc_tensor **out = lb_slot(L);
  CORE(lc_unary((lc_unary_op)LB_OP(L), t, out));
  return 1;
}

static int f_unary_(lua_State *L) {
  const char *fn = LB_FN(L);
  lc_tensor *t = input1(L, fn, P_IN, 1);
  CORE(lc_unary_((lc_unary_op)LB_OP(L), t));
  lua_settop(L, 1);
  return 1;
}

static int f_binary(lua_State *L) {
  const char *fn = LB_FN(L);
  lc_binary_op op = (lc_binary_op)LB_OP(L);
  lb_args(L, fn, P_BIN, 2);
  lc_tensor *a = lb_opt_tensor_arg(L, fn, 1, "input");
  lc_tensor *b = lb_opt_tensor_arg(L, fn, 2, "other");
  double s;
  lc_tensor **out;
  if (a && b) {
    out = lb_slot(L);
    if (lc_binary(op, a, b, out) != LC_OK) lb_binary_error(L, fn, a, b);
  } else if (a) {
    if (!lb_scalar(L, 2, &s))
      lb_argerror(L, fn, 2, "other", "expected a tensor or a number, got %s", lb_typename(L, 2));
    out = lb_slot(L);
    CORE(lc_binary_scalar(op, a, s, false, out));
  } else if (b) {
    if (!lb_scalar(L, 1, &s))
      lb_argerror(L, fn, 1, "input", "expected a tensor or a number, got %s", lb_typename(L, 1));
    out = lb_slot(L);
    CORE(lc_binary_scalar(op, b, s, true, out));
  } else {
    lb_argerror(L, fn, 1, "input", "expected a tensor, got %s", lb_typename(L, 1));
  }
  return 1;
}

static int f_binary_(lua_State *L) {
  const char *fn = LB_FN(L);
  lc_binary_op op = (lc_binary_op)LB_OP(L);
  lc_tensor *a = input1(L, fn, P_BIN, 2);
  lc_tensor *b = lb_opt_tensor_arg(L, fn, 2, "other");
  double s;
  if (b) {
    if (lc_binary_(op, a, b) != LC_OK) lb_binary_error(L, fn, a, b);
  } else {
    if (!lb_scalar(L, 2, &s))
      lb_argerror(L, fn, 2, "other", "expected a tensor or a number, got %s", lb_typename(L, 2));
    CORE(lc_binary_scalar_(op, a, s));
  }
  lua_settop(L, 1);
  return 1;
}

/* A tensor bound (min or max) goes to lc_clamp_tensor; numbers keep the scalar op. A number
 * beside a tensor bound becomes a 0-dim tensor (the input's dtype when float, else float32 for
 * a fractional number). */
static lc_tensor *clamp_bound(lua_State *L, const char *fn, int pos, const char *name,
                              const lc_tensor *x) {
  if (lua_isnil(L, pos)) return NULL;
  lb_tensor *u = lb_ud(L, pos);
  if (u) return u->t;
  double s = lb_num_arg(L, fn, pos, name);
  lc_dtype dt = lc_dtype_of(x);
  if (!lc_dtype_is_float(dt) && s != (double)(int64_t)s) dt = LC_FLOAT32;
  lc_tensor **slot = lb_slot(L);
  CORE(lc_scalar(s, dt, slot));
  lua_replace(L, pos);
  return *slot;
}

static int f_clamp(lua_State *L) { /* op 1: in place */
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "min", "max"};
  lc_tensor *t = input1(L, fn, P, 3);
  if (lb_ud(L, 2) || lb_ud(L, 3)) {
    lc_tensor *tl = clamp_bound(L, fn, 2, "min", t), *th = clamp_bound(L, fn, 3, "max", t);
    if (LB_OP(L)) {
      CORE(lc_clamp_tensor_(t, tl, th));
      lua_settop(L, 1);
      return 1;
    }
    lc_tensor **out = lb_slot(L);
    CORE(lc_clamp_tensor(t, tl, th, out));
    return 1;
  }
  bool hl = !lua_isnil(L, 2), hh = !lua_isnil(L, 3);
  double lo = lb_opt_num_arg(L, fn, 2, "min", 0), hi = lb_opt_num_arg(L, fn, 3, "max", 0);
  if (!hl && !hh) lb_error(L, fn, "at least one of min and max must be given");
  if (LB_OP(L)) {
    CORE(lc_clamp_(t, hl, lo, hh, hi));
    lua_settop(L, 1);
    return 1;
  }
  lc_tensor **out = lb_slot(L);
  CORE(lc_clamp(t, hl, lo, hh, hi, out));
  return 1;
}

/* A tensor argument or a number made into a 0-dim tensor of dtype dt (a temporary slot). */
static lc_tensor *tensor_or_scalar(lua_State *L, const char *fn, int pos, const char *name,
                                   lc_dtype dt, lc_tensor ***tmp) {
  lc_tensor *t = lb_opt_tensor_arg(L, fn, pos, name);
  *tmp = NULL;
  if (t) return t;
  double s;
  if (!lb_scalar(L, pos, &s))
    lb_argerror(L, fn, pos, name, "expected a tensor or a number, got %s", lb_typename(L, pos));
  *tmp = lb_slot(L);
  CORE(lc_scalar(s, dt, *tmp));
  return **tmp;
}

static void drop_tmp(lc_tensor **slot) {
  if (slot) {
    lc_release(*slot);
    *slot = NULL;
  }
}

static int f_where(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"condition", "input", "other"};
  lb_args(L, fn, P, 3);
  lc_tensor *c = lb_tensor_arg(L, fn, 1, "condition");
  lc_tensor *a0 = lb_opt_tensor_arg(L, fn, 2, "input"), *b0 = lb_opt_tensor_arg(L, fn, 3, "other");
  lc_dtype dt = a0 ? lc_dtype_of(a0) : b0 ? lc_dtype_of(b0) : LC_FLOAT32;
  lc_tensor **ta, **tb;
  lc_tensor *a = tensor_or_scalar(L, fn, 2, "input", dt, &ta);
  lc_tensor *b = tensor_or_scalar(L, fn, 3, "other", dt, &tb);
  lc_tensor **out = lb_slot(L);
  lc_status st = lc_where(c, a, b, out);
  drop_tmp(ta);
  drop_tmp(tb);
  if (st != LC_OK) lb_core_error(L, fn);
  return 1;
}

/* ---------------------------------------------------------------- reductions */

static void reduce_common(lua_State *L, const char *fn, lc_tensor *t, int dim_pos, int keep_pos,
                          lc_reduce_opts *o) {
  memset(o, 0, sizeof *o);
  o->ndims = lb_dims_arg(L, fn, dim_pos, "dim", lc_ndim(t), o->dims);
  o->keepdim = lb_opt_bool_arg(L, fn, keep_pos, "keepdim", false);
  o->correction = 1;
  o->p = 2;
}

/* The rows of LC_REDUCE_LIST by their ARGS column: DIMS (f_reduce), DIMS_REQ (f_reduce_dim),
 * CORRECTION (f_var), P (f_norm). */
static int reduce_dims(lua_State *L, bool dim_required) {
  const char *fn = LB_FN(L);
  lc_reduce_op op = (lc_reduce_op)LB_OP(L);
  lc_tensor *t = input1(L, fn, P_RED, 3);
  if (dim_required && lua_isnil(L, 2))
    lb_argerror(L, fn, 2, "dim", "expected a dim or a table of dims, got nil");
  lc_reduce_opts o;
  reduce_common(L, fn, t, 2, 3, &o);
  lc_tensor **out = lb_slot(L);
  CORE(lc_reduce(op, t, &o, out));
  return 1;
}

static int f_reduce(lua_State *L) { return reduce_dims(L, false); }
static int f_reduce_dim(lua_State *L) { return reduce_dims(L, true); }

static int f_var(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "dim", "keepdim", "correction", "unbiased"};
  lc_tensor *t = input1(L, fn, P, 5);
  lc_reduce_opts o;
  reduce_common(L, fn, t, 2, 3, &o);
  if (!lua_isnil(L, 4) && !lua_isnil(L, 5))
    lb_argerror(L, fn, 5, "unbiased", "give either correction or unbiased, not both");
  o.correction = lb_opt_int_arg(L, fn, 4, "correction", 1);
  if (o.correction < 0)
    lb_argerror(L, fn, 4, "correction", "expected >= 0, got %lld", (long long)o.correction);
  if (!lua_isnil(L, 5)) o.correction = lb_opt_bool_arg(L, fn, 5, "unbiased", true) ? 1 : 0;
  lc_tensor **out = lb_slot(L);
  CORE(lc_reduce((lc_reduce_op)LB_OP(L), t, &o, out));
  return 1;
}

static int f_norm(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "p", "dim", "keepdim"};
  lc_tensor *t = input1(L, fn, P, 4);
  lc_reduce_opts o;
  reduce_common(L, fn, t, 3, 4, &o);
  if (lua_type(L, 2) == LUA_TSTRING) {
    const char *p = lua_tostring(L, 2);
    if (strcmp(p, "fro") == 0)
      o.p = 2;
    else if (strcmp(p, "inf") == 0)
      o.p = INFINITY;
    else
      lb_argerror(L, fn, 2, "p", "expected a number, \"fro\" or \"inf\", got '%s'", p);
  } else {
    o.p = lb_opt_num_arg(L, fn, 2, "p", 2.0);
  }
  lc_tensor **out = lb_slot(L);
  CORE(lc_reduce((lc_reduce_op)LB_OP(L), t, &o, out));
  return 1;
}

static int f_maxmin(lua_State *L) { /* op 0 max, 1 min */
  const char *fn = LB_FN(L);
  bool is_min = LB_OP(L);
  lc_tensor *t = input1(L, fn, P_RED, 3);
  lc_tensor *o = lb_opt_tensor_arg(L, fn, 2, "dim");
  if (o) { /* t:max(other): elementwise, as torch.max(a, b) */
    lc_tensor **out = lb_slot(L);
    CORE(lc_binary(is_min ? LC_MINIMUM : LC_MAXIMUM, t, o, out));
    return 1;
  }
  if (lua_isnil(L, 2)) {
    if (!lua_isnil(L, 3)) lb_argerror(L, fn, 3, "keepdim", "keepdim needs a dim");
    lc_reduce_opts ro;
    memset(&ro, 0, sizeof ro);
    lc_tensor **out = lb_slot(L);
    CORE(lc_reduce(is_min ? LC_AMIN : LC_AMAX, t, &ro, out));
    return 1;
  }
  int d = lb_dim_arg(L, fn, 2, "dim", lc_ndim(t));
  bool keep = lb_opt_bool_arg(L, fn, 3, "keepdim", false);
  lc_tensor **v = lb_slot(L);
  lc_tensor **i = lb_slot(L);
  CORE(is_min ? lc_min_dim(t, d, keep, v, i) : lc_max_dim(t, d, keep, v, i));
  lb_one_based(L, fn, i);
  return 2;
}

static int f_argmax(lua_State *L) { /* op 0 argmax, 1 argmin */
  const char *fn = LB_FN(L);
  lc_tensor *t = input1(L, fn, P_RED, 3);
  bool all = lua_isnil(L, 2);
  int d = all ? 0 : lb_dim_arg(L, fn, 2, "dim", lc_ndim(t));
  bool keep = lb_opt_bool_arg(L, fn, 3, "keepdim", false);
  lc_tensor **out = lb_slot(L);
  CORE(LB_OP(L) ? lc_argmin(t, all, d, keep, out) : lc_argmax(t, all, d, keep, out));
  lb_one_based(L, fn, out);
  return 1;
}

/* ---------------------------------------------------------------- linear algebra */

static int f_linalg(lua_State *L) {
  const char *fn = LB_FN(L);
  lb_args(L, fn, P_BIN, 2);
  lc_tensor *a = lb_tensor_arg(L, fn, 1, "input");
  lc_tensor *b = lb_tensor_arg(L, fn, 2, "other");
  lc_tensor **out = lb_slot(L);
  switch (LB_OP(L)) {
  case 0: CORE(lc_matmul(a, b, out)); break;
  case 1: CORE(lc_mm(a, b, out)); break;
  case 2: CORE(lc_bmm(a, b, out)); break;
  case 3: CORE(lc_dot(a, b, out)); break;
  default: CORE(lc_outer(a, b, out)); break;
  }
  return 1;
}

/* ---------------------------------------------------------------- joining and splitting */

static int f_cat(lua_State *L) { /* op 0 cat, 1 stack */
  const char *fn = LB_FN(L);
  static const char *const P[] = {"tensors", "dim"};
  lb_args(L, fn, P, 2);
  if (lua_type(L, 1) != LUA_TTABLE)
    lb_argerror(L, fn, 1, "tensors", "expected a table of tensors, got %s", lb_typename(L, 1));
  lua_Integer n = luaL_len(L, 1);
  if (n < 1) lb_argerror(L, fn, 1, "tensors", "expected at least one tensor, got none");
  if (n > 1 << 20) lb_argerror(L, fn, 1, "tensors", "too many tensors (%lld)", (long long)n);
  /* Borrowed pointers; the table on the stack keeps the tensors alive. */
  lc_tensor **ts = lua_newuserdatauv(L, (size_t)n * sizeof *ts, 0);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    lb_tensor *u = lb_ud(L, -1);
    if (!u || !u->t)
      lb_argerror(L, fn, 1, "tensors", "entry [%lld] is %s, expected a tensor", (long long)i,
                  u ? "a closed tensor" : lb_typename(L, -1));
    ts[i - 1] = u->t;
    lua_pop(L, 1);
  }
  int nd = lc_ndim(ts[0]) + (LB_OP(L) ? 1 : 0);
  int d = lua_isnil(L, 2) ? 0 : lb_dim_arg(L, fn, 2, "dim", nd);
  lc_tensor **out = lb_slot(L);
  CORE(LB_OP(L) ? lc_stack((int)n, ts, d, out) : lc_cat((int)n, ts, d, out));
  return 1;
}

static int f_split(lua_State *L) { /* op 0 split, 1 chunk */
  const char *fn = LB_FN(L);
  bool chunk = LB_OP(L);
  static const char *const PS[] = {"input", "split_size_or_sections", "dim"};
  static const char *const PC[] = {"input", "chunks", "dim"};
  const char *const *P = chunk ? PC : PS;
  lc_tensor *t = input1(L, fn, P, 3);
  if (lc_ndim(t) == 0) lb_argerror(L, fn, 1, "input", "cannot split a 0-dim tensor");
  int d = lb_opt_dim_arg(L, fn, 3, "dim", lc_ndim(t), 0);
  int n = 0;
  lc_tensor **outs = NULL;
  lc_status st;
  lb_list *l = lb_list_new(L, 0);
  if (!chunk && lua_type(L, 2) == LUA_TTABLE) {
    int ns;
    int64_t sizes[LC_MAX_DIMS * 64];
    lua_Integer len = luaL_len(L, 2);
    if (len > (lua_Integer)(sizeof sizes / sizeof sizes[0]))
      lb_argerror(L, fn, 2, P[1], "too many sections (%lld)", (long long)len);
    for (ns = 0; ns < len; ns++) {
      lua_rawgeti(L, 2, ns + 1);
      int ok = 0;
      sizes[ns] = lua_tointegerx(L, -1, &ok);
      if (!ok) lb_argerror(L, fn, 2, P[1], "entry [%d] is not an integer", ns + 1);
      lua_pop(L, 1);
    }
    /* the sizes' rules (non-negative, summing to the dim's size) are lc_split_sizes' */
    if (lc_split_sizes(t, ns, sizes, d, &n, &outs) != LC_OK)
      lb_argerror(L, fn, 2, P[1], "%s", lb_core_text());
    st = LC_OK;
  } else {
    int64_t k = lb_int_arg(L, fn, 2, P[1]);
    if (k < 1 || (chunk && k > 1 << 30))
      lb_argerror(L, fn, 2, P[1], "expected a positive integer, got %lld", (long long)k);
    st = chunk ? lc_chunk(t, (int)k, d, &n, &outs) : lc_split(t, k, d, &n, &outs);
  }
  if (st != LC_OK) lb_core_error(L, fn);
  l->ts = outs;
  l->n = n;
  lb_list_to_table(L, l);
  return 1;
}

/* ---------------------------------------------------------------- indexing */

static int f_index_select(lua_State *L) { /* op 0 index_select, 1 gather */
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "dim", "index"};
  lc_tensor *t = input1(L, fn, P, 3);
  if (lc_ndim(t) == 0) lb_argerror(L, fn, 1, "input", "cannot index a 0-dim tensor");
  int d = lb_dim_arg(L, fn, 2, "dim", lc_ndim(t));
  lc_tensor *idx = lb_tensor_arg(L, fn, 3, "index");
  if (LB_OP(L) == 0 && lc_ndim(idx) != 1)
    lb_argerror(L, fn, 3, "index", "expected a 1-D index tensor, got %d dims", lc_ndim(idx));
  if (LB_OP(L) == 1 && lc_ndim(idx) != lc_ndim(t))
    lb_argerror(L, fn, 3, "index", "expected an index with as many dims as the input (%d), got %d",
                lc_ndim(t), lc_ndim(idx));
  lc_tensor **k = lb_index_tensor(L, fn, 3, "index", idx, lc_shape(t)[d], d);
  lc_tensor **out = lb_slot(L);
  lc_status st = LB_OP(L) ? lc_gather(t, d, *k, out) : lc_index_select(t, d, *k, out);
  drop_tmp(k);
  if (st != LC_OK) lb_core_error(L, fn);
  return 1;
}

static int f_scatter(lua_State *L) { /* op 0 scatter, 1 scatter_, 2 scatter_add */
  const char *fn = LB_FN(L);
  int op = LB_OP(L);
  static const char *const P[] = {"input", "dim", "index", "src"};
  lc_tensor *t = input1(L, fn, P, 4);
  if (lc_ndim(t) == 0) lb_argerror(L, fn, 1, "input", "cannot scatter into a 0-dim tensor");
  int d = lb_dim_arg(L, fn, 2, "dim", lc_ndim(t));
  lc_tensor *idx = lb_tensor_arg(L, fn, 3, "index");
  if (lc_ndim(idx) != lc_ndim(t))
    lb_argerror(L, fn, 3, "index", "expected an index with as many dims as the input (%d), got %d",
                lc_ndim(t), lc_ndim(idx));
  lc_tensor *src = lb_opt_tensor_arg(L, fn, 4, "src");
  double v = 0;
  if (!src && (op == 2 || !lb_scalar(L, 4, &v)))
    lb_argerror(L, fn, 4, "src", "expected a tensor%s, got %s", op == 2 ? "" : " or a number",
                lb_typename(L, 4));
  lc_tensor **k = lb_index_tensor(L, fn, 3, "index", idx, lc_shape(t)[d], d);
  lc_tensor **tmp = NULL;
  if (!src) {
    tmp = lb_slot(L);
    CORE(lc_full(lc_ndim(idx), lc_shape(idx), v, lc_dtype_of(t), tmp));
    src = *tmp;
  }
  lc_status st;
  if (op == 1) {
    st = lc_scatter_(t, d, *k, src);
    lua_pushvalue(L, 1);
  } else {
    lc_tensor **out = lb_slot(L);
    st = op == 2 ? lc_scatter_add(t, d, *k, src, out) : lc_scatter(t, d, *k, src, out);
  }
  drop_tmp(k);
  drop_tmp(tmp);
  if (st != LC_OK) lb_core_error(L, fn);
  return 1;
}

static double fill_value(lua_State *L, const char *fn, int pos, const char *name) {
  double v;
  if (lb_scalar(L, pos, &v)) return v;
  lc_tensor *vt = lb_opt_tensor_arg(L, fn, pos, name);
  if (!vt || lc_numel(vt) != 1)
    lb_argerror(L, fn, pos, name, "expected a number or a one-element tensor, got %s",
                vt ? "a tensor with several elements" : lb_typename(L, pos));
  CORE(lc_item(vt, &v));
  return v;
}

static int f_masked_fill(lua_State *L) { /* op 1: in place */
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "mask", "value"};
  lc_tensor *t = input1(L, fn, P, 3);
  lc_tensor *m = lb_tensor_arg(L, fn, 2, "mask");
  if (lc_dtype_of(m) != LC_BOOL)
    lb_argerror(L, fn, 2, "mask", "expected a bool tensor, got %s", lc_dtype_name(lc_dtype_of(m)));
  double v = fill_value(L, fn, 3, "value");
  if (LB_OP(L)) {
    CORE(lc_masked_fill_(t, m, v));
    lua_settop(L, 1);
    return 1;
  }
  lc_tensor **out = lb_slot(L);
  CORE(lc_masked_fill(t, m, v, out));
  return 1;
}

static int f_masked_select(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "mask"};
  lc_tensor *t = input1(L, fn, P, 2);
  lc_tensor *m = lb_tensor_arg(L, fn, 2, "mask");
  if (lc_dtype_of(m) != LC_BOOL)
    lb_argerror(L, fn, 2, "mask", "expected a bool tensor, got %s", lc_dtype_name(lc_dtype_of(m)));
  lc_tensor **out = lb_slot(L);
  CORE(lc_masked_select(t, m, out));
  return 1;
}

static int f_nonzero(lua_State *L) {
  const char *fn = LB_FN(L);
  lc_tensor *t = input1(L, fn, P_IN, 1);
  lc_tensor **out = lb_slot(L);
  CORE(lc_nonzero(t, out));
  lb_one_based(L, fn, out);
  return 1;
}

/* ---------------------------------------------------------------- in-place fills */

static int f_fill_(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "value"};
  lc_tensor *t = input1(L, fn, P, 2);
  CORE(lc_fill_(t, fill_value(L, fn, 2, "value")));
  lua_settop(L, 1);
  return 1;
}

static int f_zero_(lua_State *L) {
  const char *fn = LB_FN(L);
  lc_tensor *t = input1(L, fn, P_IN, 1);
  CORE(lc_zero_(t));
  lua_settop(L, 1);
  return 1;
}

/* t:copy_(src) (op 0), t:set_(src) (op 1: t's data becomes src's, lc_set_) */
static int f_copy_(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "src"};
  lc_tensor *t = input1(L, fn, P, 2);
  lc_tensor *s = lb_tensor_arg(L, fn, 2, "src");
  CORE(LB_OP(L) ? lc_set_(t, s) : lc_copy_(t, s));
  lua_settop(L, 1);
  return 1;
}

static int f_random_(lua_State *L) { /* op 0 uniform_(from, to), 1 normal_(mean, std) */
  const char *fn = LB_FN(L);
  static const char *const PU[] = {"input", "from", "to"};
  static const char *const PN[] = {"input", "mean", "std"};
  bool normal = LB_OP(L);
  const char *const *P = normal ? PN : PU;
  lc_tensor *t = input1(L, fn, P, 3);
  double a = lb_opt_num_arg(L, fn, 2, P[1], 0.0), b = lb_opt_num_arg(L, fn, 3, P[2], 1.0);
  if (normal && b < 0) lb_argerror(L, fn, 3, "std", "expected >= 0, got %g", b);
  if (!normal && b < a) lb_argerror(L, fn, 3, "to", "expected to >= from (%g), got %g", a, b);
  CORE(normal ? lc_normal_(t, a, b) : lc_uniform_(t, a, b));
  lua_settop(L, 1);
  return 1;
}

/* ---------------------------------------------------------------- comparison of whole tensors */

static int f_equal(lua_State *L) {
  const char *fn = LB_FN(L);
  lc_tensor *a = input1(L, fn, P_BIN, 2);
  lc_tensor *b = lb_tensor_arg(L, fn, 2, "other");
  bool eq = false;
  CORE(lc_equal(a, b, &eq));
  lua_pushboolean(L, eq);
  return 1;
}

static int f_allclose(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "other", "rtol", "atol", "equal_nan"};
  lc_tensor *a = input1(L, fn, P, 5);
  lc_tensor *b = lb_tensor_arg(L, fn, 2, "other");
  double rtol = lb_opt_num_arg(L, fn, 3, "rtol", 1e-5), atol = lb_opt_num_arg(L, fn, 4, "atol", 1e-8);
  bool en = lb_opt_bool_arg(L, fn, 5, "equal_nan", false);
  bool eq = false;
  CORE(lc_allclose_ex(a, b, rtol, atol, en, &eq));
  lua_pushboolean(L, eq);
  return 1;
}

/* ---------------------------------------------------------------- conversion */

static int f_to(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "dtype"};
  lc_tensor *t = input1(L, fn, P, 2);
  lc_tensor *o = lb_opt_tensor_arg(L, fn, 2, "dtype");
  lc_dtype dt = o ? lc_dtype_of(o) : lb_dtype_arg(L, fn, 2, "dtype");
  lc_tensor **out = lb_slot(L);
  CORE(lc_to_dtype(t, dt, out));
  return 1;
}

static int f_cast(lua_State *L) { /* float(), double(), ...: op = dtype */
  const char *fn = LB_FN(L);
  lc_tensor *t = input1(L, fn, P_IN, 1);
  lc_tensor **out = lb_slot(L);
  CORE(lc_to_dtype(t, (lc_dtype)LB_OP(L), out));
  return 1;
}

static int f_type(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "dtype"};
  lc_tensor *t = input1(L, fn, P, 2);
  if (lua_isnil(L, 2)) {
    lua_pushstring(L, lc_dtype_name(lc_dtype_of(t)));
    return 1;
  }
  lc_dtype dt = lb_dtype_arg(L, fn, 2, "dtype");
  lc_tensor **out = lb_slot(L);
  CORE(lc_to_dtype(t, dt, out));
  return 1;
}

static int f_item(lua_State *L) {
  const char *fn = LB_FN(L);
  lc_tensor *t = input1(L, fn, P_IN, 1);
  if (lc_numel(t) != 1)
    lb_argerror(L, fn, 1, "input", "item() needs a tensor with one element, got %lld elements",
                (long long)lc_numel(t));
  lc_dtype dt = lc_dtype_of(t);
  if (dt == LC_INT32 || dt == LC_INT64) {
    int64_t v;
    CORE(lc_item_int64(t, &v));
    lua_pushinteger(L, (lua_Integer)v);
  } else {
    double v;
    CORE(lc_item(t, &v));
    if (dt == LC_BOOL)
      lua_pushboolean(L, v != 0);
    else
      lua_pushnumber(L, v);
  }
  return 1;
}

static void build_list(lua_State *L, const lc_tensor *t, int d, const void *buf, int64_t *pos) {
  lc_dtype dt = lc_dtype_of(t);
  if (d == lc_ndim(t)) {
    if (dt == LC_INT32 || dt == LC_INT64)
      lua_pushinteger(L, (lua_Integer)((const int64_t *)buf)[*pos]);
    else if (dt == LC_BOOL)
      lua_pushboolean(L, ((const double *)buf)[*pos] != 0);
    else
      lua_pushnumber(L, ((const double *)buf)[*pos]);
    (*pos)++;
    return;
  }
  int64_t n = lc_shape(t)[d];
  luaL_checkstack(L, 4, "lucid.tolist: nesting too deep");
  lua_createtable(L, (int)(n < 1 << 24 ? n : 0), 0);
  for (int64_t i = 0; i < n; i++) {
    build_list(L, t, d + 1, buf, pos);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}

static int f_tolist(lua_State *L) {
  const char *fn = LB_FN(L);
  lc_tensor *t = input1(L, fn, P_IN, 1);
  lc_dtype dt = lc_dtype_of(t);
  lc_dtype bdt = (dt == LC_INT32 || dt == LC_INT64) ? LC_INT64 : LC_FLOAT64;
  int64_t n = lc_numel(t);
  void *buf = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * 8, 0);
  if (n > 0) CORE(lc_copy_to_buffer(t, bdt, buf));
  int64_t pos = 0;
  build_list(L, t, 0, buf, &pos);
  return 1;
}

/* ---------------------------------------------------------------- registration */

#define M LB_METHOD
#define F LB_FUNC
#define B LB_BOTH

#define BINARY_INPLACE_0(CODE, NAME)
#define BINARY_INPLACE_1(CODE, NAME) {#NAME "_", f_binary_, LC_##CODE, M},
#define BINARY_ROWS_(CODE, NAME, GradFn, LOOPS, RESULT, SAVES, SAVES_SCALAR, INPLACE, COST)        \
  {#NAME, f_binary, LC_##CODE, B}, BINARY_INPLACE_##INPLACE(CODE, NAME)
#define UNARY_ROWS_(CODE, NAME, GradFn, DTYPES, SAVES, COST)                                     \
  {#NAME, f_unary, LC_##CODE, B}, {#NAME "_", f_unary_, LC_##CODE, M},
#define REDUCE_FN_DIMS f_reduce
#define REDUCE_FN_DIMS_REQ f_reduce_dim
#define REDUCE_FN_CORRECTION f_var
#define REDUCE_FN_P f_norm
#define REDUCE_ROWS_(CODE, NAME, GradFn, DTYPES, SAVES, ARGS)                                      \
  {#NAME, REDUCE_FN_##ARGS, LC_##CODE, B},
const lb_reg lb_ops_regs[] = {
    {"size", f_size, 0, M},
    {"stride", f_size, 1, M},
    {"dim", f_dim, 0, M},
    {"ndimension", f_dim, 0, M},
    {"numel", f_dim, 1, B},
    {"nelement", f_dim, 1, M},
    {"is_contiguous", f_dim, 2, M},

    {"view", f_view, 0, M},
    {"reshape", f_view, 1, B},
    {"view_as", f_view_as, 0, M},
    {"reshape_as", f_view_as, 1, M},
    {"expand_as", f_view_as, 2, M},
    {"permute", f_permute, 0, B},
    {"transpose", f_transpose, 0, B},
    {"t", f_t, 0, B},
    {"narrow", f_narrow, 0, B},
    {"select", f_select, 0, B},
    {"squeeze", f_squeeze, 0, B},
    {"unsqueeze", f_squeeze, 1, B},
    {"expand", f_expand, 0, M},
    {"flatten", f_flatten, 0, B},
    {"unflatten", f_unflatten, 0, B},
    {"contiguous", f_simple, 0, M},
    {"detach", f_simple, 1, B},
    {"clone", f_simple, 2, B},

    /* every row of LC_UNARY_LIST: t:<name>(), lucid.<name>(t) and t:<name>_() */
    LC_UNARY_LIST(UNARY_ROWS_)

    /* every row of LC_BINARY_LIST: t:<name>(o), lucid.<name>(t, o), t:<name>_(o) when INPLACE */
    LC_BINARY_LIST(BINARY_ROWS_){"clamp", f_clamp, 0, B},
    {"clamp_", f_clamp, 1, M},
    {"clip", f_clamp, 0, B},
    {"clip_", f_clamp, 1, M},
    {"where", f_where, 0, F},

    /* every row of LC_REDUCE_LIST: t:<name>(...) and lucid.<name>(t, ...) */
    LC_REDUCE_LIST(REDUCE_ROWS_){"max", f_maxmin, 0, B},
    {"min", f_maxmin, 1, B},
    {"argmax", f_argmax, 0, B},
    {"argmin", f_argmax, 1, B},

    {"matmul", f_linalg, 0, B},
    {"mm", f_linalg, 1, B},
    {"bmm", f_linalg, 2, B},
    {"dot", f_linalg, 3, B},
    {"outer", f_linalg, 4, B},

    {"cat", f_cat, 0, F},
    {"stack", f_cat, 1, F},
    {"split", f_split, 0, B},
    {"chunk", f_split, 1, B},

    {"index_select", f_index_select, 0, B},
    {"gather", f_index_select, 1, B},
    {"scatter", f_scatter, 0, B},
    {"scatter_", f_scatter, 1, M},
    {"scatter_add", f_scatter, 2, B},
    {"masked_fill", f_masked_fill, 0, B},
    {"masked_fill_", f_masked_fill, 1, M},
    {"masked_select", f_masked_select, 0, B},
    {"nonzero", f_nonzero, 0, B},

    {"fill_", f_fill_, 0, M},
    {"zero_", f_zero_, 0, M},
    {"copy_", f_copy_, 0, M},
    {"set_", f_copy_, 1, M},
    {"uniform_", f_random_, 0, M},
    {"normal_", f_random_, 1, M},

    {"equal", f_equal, 0, B},
    {"allclose", f_allclose, 0, B},

    {"to", f_to, 0, M},
    {"float", f_cast, LC_FLOAT32, M},
    {"double", f_cast, LC_FLOAT64, M},
    {"int", f_cast, LC_INT32, M},
    {"long", f_cast, LC_INT64, M},
    {"bool", f_cast, LC_BOOL, M},
    {"type", f_type, 0, M},
    {"item", f_item, 0, M},
    {"tolist", f_tolist, 0, M},
    {"totable", f_tolist, 0, M},
    {NULL, NULL, 0, 0}};
