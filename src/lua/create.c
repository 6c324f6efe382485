/*
 * create.c - tensor creation from Lua: lucid.Tensor/tensor from (nested) tables, zeros, ones,
 * full, arange, linspace, eye, random tensors, *_like, seeds and threads.
 */
#include "binding.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---------------------------------------------------------------- tables -> tensors */

typedef struct nest {
  int ndim;
  int64_t shape[LC_MAX_DIMS];
  int64_t path[LC_MAX_DIMS]; /* 1-based position being visited, for messages */
  bool bools;                /* leaves are booleans */
  lc_dtype dt;
  void *buf;
  int64_t n;
} nest;

static const char *path_str(const nest *s, int depth, char *buf, size_t cap) {
  size_t k = 0;
  buf[0] = '\0';
  for (int d = 0; d < depth && k < cap; d++)
    k += (size_t)snprintf(buf + k, cap - k, "[%lld]", (long long)s->path[d]);
  return buf;
}

static void store(lua_State *L, const char *fn, nest *s, int idx, int depth) {
  char pb[160];
  int ty = lua_type(L, idx);
  if (ty != LUA_TNUMBER && ty != LUA_TBOOLEAN)
    lb_argerror(L, fn, 1, "data", "element %s is %s, expected a number or a boolean",
                path_str(s, depth, pb, sizeof pb), lb_typename(L, idx));
  if ((ty == LUA_TBOOLEAN) != s->bools)
    lb_argerror(L, fn, 1, "data", "element %s is a %s but the first element is a %s",
                path_str(s, depth, pb, sizeof pb), ty == LUA_TBOOLEAN ? "boolean" : "number",
                s->bools ? "boolean" : "number");
  int64_t i = s->n++;
  if (ty == LUA_TBOOLEAN) {
    int b = lua_toboolean(L, idx);
    switch (s->dt) {
    case LC_FLOAT32: ((float *)s->buf)[i] = (float)b; break;
    case LC_FLOAT64: ((double *)s->buf)[i] = b; break;
    case LC_FLOAT16:
    case LC_BFLOAT16:
      ((uint16_t *)s->buf)[i] =
          s->dt == LC_FLOAT16 ? lc_float_to_half((float)b) : lc_float_to_bfloat16((float)b);
      break;
    case LC_INT32: ((int32_t *)s->buf)[i] = b; break;
    case LC_INT64: ((int64_t *)s->buf)[i] = b; break;
    default: ((uint8_t *)s->buf)[i] = (uint8_t)b; break;
    }
    return;
  }
  double v = (double)lua_tonumber(L, idx);
  switch (s->dt) {
  case LC_FLOAT32: ((float *)s->buf)[i] = (float)v; break;
  case LC_FLOAT64: ((double *)s->buf)[i] = v; break;
  case LC_FLOAT16:
  case LC_BFLOAT16:
    ((uint16_t *)s->buf)[i] =
        s->dt == LC_FLOAT16 ? lc_float_to_half((float)v) : lc_float_to_bfloat16((float)v);
    break;
  case LC_INT32:
  case LC_INT64: {
    int64_t iv;
    if (lua_isinteger(L, idx)) {
      iv = (int64_t)lua_tointeger(L, idx);
    } else {
      if (!isfinite(v) || v >= 9.3e18 || v <= -9.3e18)
        lb_argerror(L, fn, 1, "data", "element %s is %g, which an integer dtype cannot hold",
                    path_str(s, depth, pb, sizeof pb), v);
      iv = (int64_t)v; /* truncates toward zero, like a C cast (and PyTorch) */
    }
    if (s->dt == LC_INT32) {
      if (iv > INT32_MAX || iv < INT32_MIN)
        lb_argerror(L, fn, 1, "data", "element %s is %lld, out of range for int32",
                    path_str(s, depth, pb, sizeof pb), (long long)iv);
      ((int32_t *)s->buf)[i] = (int32_t)iv;
    } else {
      ((int64_t *)s->buf)[i] = iv;
    }
    break;
  }
  default: ((uint8_t *)s->buf)[i] = v != 0; break;
  }
}

static void fill(lua_State *L, const char *fn, nest *s, int idx, int depth) {
  char pb[160];
  if (depth == s->ndim) {
    if (lua_type(L, idx) == LUA_TTABLE)
      lb_argerror(L, fn, 1, "data", "ragged nested table: element %s is a table, expected a %s",
                  path_str(s, depth, pb, sizeof pb), s->bools ? "boolean" : "number");
    store(L, fn, s, idx, depth);
    return;
  }
  if (lua_type(L, idx) != LUA_TTABLE)
    lb_argerror(L, fn, 1, "data",
                "ragged nested table: element %s is %s, expected a table of %lld entries",
                path_str(s, depth, pb, sizeof pb), lb_typename(L, idx),
                (long long)s->shape[depth]);
  lua_Integer len = luaL_len(L, idx);
  if (len != s->shape[depth])
    lb_argerror(L, fn, 1, "data", "ragged nested table: element %s has %lld entries, expected %lld",
                depth ? path_str(s, depth, pb, sizeof pb) : "(top level)", (long long)len,
                (long long)s->shape[depth]);
  luaL_checkstack(L, 2, "lucid.Tensor: nesting too deep");
  for (lua_Integer i = 1; i <= len; i++) {
    s->path[depth] = i;
    lua_rawgeti(L, idx, i);
    fill(L, fn, s, lua_gettop(L), depth + 1);
    lua_pop(L, 1);
  }
}

/* Pushes a slot with the tensor for the nested table at stack index 1. */
static void from_table(lua_State *L, const char *fn, const lb_copts *o) {
  nest s;
  memset(&s, 0, sizeof s);
  /* Shape from the first entry at each depth. */
  lua_pushvalue(L, 1);
  while (lua_type(L, -1) == LUA_TTABLE) {
    if (s.ndim == LC_MAX_DIMS)
      lb_argerror(L, fn, 1, "data", "nested deeper than %d levels", LC_MAX_DIMS);
    lua_Integer len = luaL_len(L, -1);
    s.shape[s.ndim++] = len;
    if (len == 0) break;
    lua_rawgeti(L, -1, 1);
    lua_remove(L, -2);
  }
  s.bools = lua_type(L, -1) == LUA_TBOOLEAN;
  lua_pop(L, 1);
  s.dt = o->has_dtype ? o->dtype : s.bools ? LC_BOOL : LC_FLOAT32;
  int64_t numel = 1;
  for (int d = 0; d < s.ndim; d++) {
    if (s.shape[d] > 0 && numel > (INT64_C(1) << 40) / s.shape[d])
      lb_argerror(L, fn, 1, "data", "too many elements");
    numel *= s.shape[d];
  }
  s.buf = lua_newuserdatauv(L, (size_t)(numel > 0 ? numel : 1) * lc_dtype_size(s.dt), 0);
  int bufidx = lua_gettop(L);
  fill(L, fn, &s, 1, 0);
  lc_tensor **out = lb_slot(L);
  if (lc_from_data(s.ndim, s.shape, s.dt, s.buf, out) != LC_OK) lb_core_error(L, fn);
  lua_remove(L, bufidx);
}

static int f_tensor(lua_State *L) {
  const char *fn = LB_FN(L);
  lb_copts o;
  lb_creation_opts(L, fn, 2, &o);
  lc_tensor **out;
  lc_tensor *src = lb_opt_tensor_arg(L, fn, 1, "data");
  double v;
  if (src) { /* a detached copy, like torch.tensor(t) */
    lc_tensor **det = lb_slot(L);
    if (lc_detach(src, det) != LC_OK) lb_core_error(L, fn);
    out = lb_slot(L);
    lc_status st = o.has_dtype && o.dtype != lc_dtype_of(src) ? lc_to_dtype(*det, o.dtype, out)
                                                               : lc_clone(*det, out);
    lc_release(*det);
    *det = NULL;
    if (st != LC_OK) lb_core_error(L, fn);
  } else if (lb_scalar(L, 1, &v)) {
    lc_dtype dt = o.has_dtype ? o.dtype : lua_type(L, 1) == LUA_TBOOLEAN ? LC_BOOL : LC_FLOAT32;
    out = lb_slot(L);
    if (lc_scalar(v, dt, out) != LC_OK) lb_core_error(L, fn);
  } else if (lua_type(L, 1) == LUA_TTABLE) {
    from_table(L, fn, &o);
    out = lua_touserdata(L, -1);
  } else {
    return lb_argerror(L, fn, 1, "data", "expected a number, a boolean, a (nested) table or a "
                       "tensor, got %s", lb_typename(L, 1));
  }
  lb_apply_copts(L, fn, *out, &o);
  return 1;
}

/* ---------------------------------------------------------------- shapes -> tensors */

static int f_fill_like(lua_State *L) { /* op: 0 zeros, 1 ones, 2 empty, 3 rand, 4 randn */
  const char *fn = LB_FN(L);
  int nd;
  int64_t shape[LC_MAX_DIMS];
  int next = lb_shape_args(L, fn, 1, false, &nd, shape);
  lb_copts o;
  lb_creation_opts(L, fn, next, &o);
  lc_tensor **out = lb_slot(L);
  lc_status st;
  switch (LB_OP(L)) {
  case 0: st = lc_zeros(nd, shape, o.dtype, out); break;
  case 1: st = lc_ones(nd, shape, o.dtype, out); break;
  case 2: st = lc_empty(nd, shape, o.dtype, out); break;
  case 3: st = lc_rand(nd, shape, o.dtype, out); break;
  default: st = lc_randn(nd, shape, o.dtype, out); break;
  }
  if (st != LC_OK) lb_core_error(L, fn);
  lb_apply_copts(L, fn, *out, &o);
  return 1;
}

static int f_full(lua_State *L) {
  const char *fn = LB_FN(L);
  int nd;
  int64_t shape[LC_MAX_DIMS];
  lb_shape_table(L, fn, 1, "size", false, &nd, shape);
  double v;
  if (!lb_scalar(L, 2, &v))
    lb_argerror(L, fn, 2, "fill_value", "expected a number or a boolean, got %s",
                lb_typename(L, 2));
  lb_copts o;
  lb_creation_opts(L, fn, 3, &o);
  lc_dtype dt = o.has_dtype ? o.dtype : lua_type(L, 2) == LUA_TBOOLEAN ? LC_BOOL : LC_FLOAT32;
  lc_tensor **out = lb_slot(L);
  if (lc_full(nd, shape, v, dt, out) != LC_OK) lb_core_error(L, fn);
  lb_apply_copts(L, fn, *out, &o);
  return 1;
}

static int f_arange(lua_State *L) {
  const char *fn = LB_FN(L);
  int n = 0;
  while (n < 3 && lua_type(L, n + 1) == LUA_TNUMBER) n++;
  if (n == 0) lb_argerror(L, fn, 1, "end", "expected a number, got %s", lb_typename(L, 1));
  double start = 0, end, step = 1;
  if (n == 1) {
    end = lua_tonumber(L, 1);
  } else {
    start = lua_tonumber(L, 1);
    end = lua_tonumber(L, 2);
    if (n == 3) step = lua_tonumber(L, 3);
  }
  if (step == 0 || !isfinite(step)) lb_argerror(L, fn, 3, "step", "step must be non-zero and finite");
  if ((end - start) / step < 0)
    lb_argerror(L, fn, n == 3 ? 3 : 2, n == 3 ? "step" : "end",
                "the range [%g, %g) with step %g is inconsistent", start, end, step);
  lb_copts o;
  lb_creation_opts(L, fn, n + 1, &o);
  lc_tensor **out = lb_slot(L);
  if (lc_arange(start, end, step, o.dtype, out) != LC_OK) lb_core_error(L, fn);
  lb_apply_copts(L, fn, *out, &o);
  return 1;
}

static int f_linspace(lua_State *L) {
  const char *fn = LB_FN(L);
  double a = lb_num_arg(L, fn, 1, "start"), b = lb_num_arg(L, fn, 2, "end");
  int64_t steps = lb_int_arg(L, fn, 3, "steps");
  if (steps < 0) lb_argerror(L, fn, 3, "steps", "expected >= 0, got %lld", (long long)steps);
  lb_copts o;
  lb_creation_opts(L, fn, 4, &o);
  lc_tensor **out = lb_slot(L);
  if (lc_linspace(a, b, steps, o.dtype, out) != LC_OK) lb_core_error(L, fn);
  lb_apply_copts(L, fn, *out, &o);
  return 1;
}

static int f_eye(lua_State *L) {
  const char *fn = LB_FN(L);
  int64_t n = lb_int_arg(L, fn, 1, "n");
  int next = 2;
  int64_t m = n;
  if (lua_type(L, 2) == LUA_TNUMBER) {
    m = lb_int_arg(L, fn, 2, "m");
    next = 3;
  }
  if (n < 0) lb_argerror(L, fn, 1, "n", "expected >= 0, got %lld", (long long)n);
  if (m < 0) lb_argerror(L, fn, 2, "m", "expected >= 0, got %lld", (long long)m);
  lb_copts o;
  lb_creation_opts(L, fn, next, &o);
  lc_tensor **out = lb_slot(L);
  if (lc_eye(n, m, o.dtype, out) != LC_OK) lb_core_error(L, fn);
  lb_apply_copts(L, fn, *out, &o);
  return 1;
}

static int f_randint(lua_State *L) {
  const char *fn = LB_FN(L);
  int64_t low = 0, high;
  int spos;
  if (lua_type(L, 2) == LUA_TTABLE) { /* randint(high, size) */
    high = lb_int_arg(L, fn, 1, "high");
    spos = 2;
  } else {
    low = lb_int_arg(L, fn, 1, "low");
    high = lb_int_arg(L, fn, 2, "high");
    spos = 3;
  }
  if (high <= low)
    lb_argerror(L, fn, spos - 1, "high", "expected high > low (%lld), got %lld", (long long)low,
                (long long)high);
  int nd;
  int64_t shape[LC_MAX_DIMS];
  lb_shape_table(L, fn, spos, "size", false, &nd, shape);
  lb_copts o;
  lb_creation_opts(L, fn, spos + 1, &o);
  lc_tensor **out = lb_slot(L);
  if (lc_randint(low, high, nd, shape, o.has_dtype ? o.dtype : LC_INT64, out) != LC_OK)
    lb_core_error(L, fn);
  lb_apply_copts(L, fn, *out, &o);
  return 1;
}

static int f_randperm(lua_State *L) {
  const char *fn = LB_FN(L);
  int64_t n = lb_int_arg(L, fn, 1, "n");
  if (n < 0) lb_argerror(L, fn, 1, "n", "expected >= 0, got %lld", (long long)n);
  lb_copts o;
  lb_creation_opts(L, fn, 2, &o);
  lc_tensor **p = lb_slot(L);
  if (lc_randperm(n, p) != LC_OK) lb_core_error(L, fn);
  lb_one_based(L, fn, p);
  if (o.has_dtype && o.dtype != LC_INT64) {
    lc_tensor **out = lb_slot(L);
    if (lc_to_dtype(*p, o.dtype, out) != LC_OK) lb_core_error(L, fn);
  }
  return 1;
}

static int f_like(lua_State *L) { /* op: 0 zeros, 1 ones, 2 empty, 3 rand, 4 randn, 5 full */
  const char *fn = LB_FN(L);
  int op = LB_OP(L);
  lc_tensor *t = lb_tensor_arg(L, fn, 1, "input");
  double v = 0;
  int opos = 2;
  if (op == 5) {
    if (!lb_scalar(L, 2, &v))
      lb_argerror(L, fn, 2, "fill_value", "expected a number, got %s", lb_typename(L, 2));
    opos = 3;
  }
  lb_copts o;
  lb_creation_opts(L, fn, opos, &o);
  lc_dtype dt = o.has_dtype ? o.dtype : lc_dtype_of(t);
  int nd = lc_ndim(t);
  const int64_t *sh = lc_shape(t);
  lc_tensor **out = lb_slot(L);
  lc_status st;
  switch (op) {
  case 0: st = lc_zeros(nd, sh, dt, out); break;
  case 1: st = lc_ones(nd, sh, dt, out); break;
  case 2: st = lc_empty(nd, sh, dt, out); break;
  case 3: st = lc_rand(nd, sh, dt, out); break;
  case 4: st = lc_randn(nd, sh, dt, out); break;
  default: st = lc_full(nd, sh, v, dt, out); break;
  }
  if (st != LC_OK) lb_core_error(L, fn);
  lb_apply_copts(L, fn, *out, &o);
  return 1;
}

/* ---------------------------------------------------------------- seeds, threads, misc */

static int f_manual_seed(lua_State *L) {
  const char *fn = LB_FN(L);
  int64_t s = lb_int_arg(L, fn, 1, "seed");
  lc_manual_seed((uint64_t)s);
  return 0;
}

static int f_initial_seed(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)lc_initial_seed());
  return 1;
}

static int f_set_num_threads(lua_State *L) {
  const char *fn = LB_FN(L);
  int64_t n = lb_int_arg(L, fn, 1, "n");
  if (n < 1 || n > 4096) lb_argerror(L, fn, 1, "n", "expected 1..4096, got %lld", (long long)n);
  if (lc_set_num_threads((int)n) != LC_OK) lb_core_error(L, fn);
  return 0;
}

static int f_get_num_threads(lua_State *L) {
  lua_pushinteger(L, lc_get_num_threads());
  return 1;
}

static int f_is_tensor(lua_State *L) {
  lua_pushboolean(L, lb_ud(L, 1) != NULL);
  return 1;
}

/* lucid.set_memory_limit(bytes [, {lock = true}]): lc_set_memory_limit, then
 * lc_lock_memory_limit with lock (the host's setting a script cannot undo). */
static int f_set_memory_limit(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"bytes", "lock"};
  lb_args(L, fn, P, 2);
  int64_t bytes = lb_int_arg(L, fn, 1, "bytes");
  bool lock = lb_opt_bool_arg(L, fn, 2, "lock", false);
  if (lc_set_memory_limit(bytes) != LC_OK) lb_core_error(L, fn);
  if (lock) lc_lock_memory_limit();
  return 0;
}

/* lucid.memory_limit() -> bytes (0: none), locked */
static int f_memory_limit(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)lc_memory_limit());
  lua_pushboolean(L, lc_memory_limit_locked());
  return 2;
}

/* lucid.empty_cache(): returns cached free blocks and idle workspaces to the system */
static int f_empty_cache(lua_State *L) {
  (void)L;
  lc_empty_cache();
  return 0;
}

static int f_bytes_in_use(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)lc_bytes_in_use());
  return 1;
}

/* lucid.clock(): seconds of a monotonic wall clock (for timing and progress; os.clock counts
 * the CPU time of every thread, which overstates multi-threaded work). */
static int f_clock(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec * 1e-9);
  return 1;
}

const lb_reg lb_create_regs[] = {{"clock", f_clock, 0, LB_FUNC},
                                 {"tensor", f_tensor, 0, LB_FUNC},
                                 {"Tensor", f_tensor, 0, LB_FUNC},
                                 {"zeros", f_fill_like, 0, LB_FUNC},
                                 {"ones", f_fill_like, 1, LB_FUNC},
                                 {"empty", f_fill_like, 2, LB_FUNC},
                                 {"rand", f_fill_like, 3, LB_FUNC},
                                 {"randn", f_fill_like, 4, LB_FUNC},
                                 {"full", f_full, 0, LB_FUNC},
                                 {"arange", f_arange, 0, LB_FUNC},
                                 {"linspace", f_linspace, 0, LB_FUNC},
                                 {"eye", f_eye, 0, LB_FUNC},
                                 {"randint", f_randint, 0, LB_FUNC},
                                 {"randperm", f_randperm, 0, LB_FUNC},
                                 {"zeros_like", f_like, 0, LB_FUNC},
                                 {"ones_like", f_like, 1, LB_FUNC},
                                 {"empty_like", f_like, 2, LB_FUNC},
                                 {"rand_like", f_like, 3, LB_FUNC},
                                 {"randn_like", f_like, 4, LB_FUNC},
                                 {"full_like", f_like, 5, LB_FUNC},
                                 {"manual_seed", f_manual_seed, 0, LB_FUNC},
                                 {"initial_seed", f_initial_seed, 0, LB_FUNC},
                                 {"set_num_threads", f_set_num_threads, 0, LB_FUNC},
                                 {"get_num_threads", f_get_num_threads, 0, LB_FUNC},
                                 {"is_tensor", f_is_tensor, 0, LB_FUNC},
                                 {"bytes_in_use", f_bytes_in_use, 0, LB_FUNC},
                                 {"set_memory_limit", f_set_memory_limit, 0, LB_FUNC},
                                 {"memory_limit", f_memory_limit, 0, LB_FUNC},
                                 {"empty_cache", f_empty_cache, 0, LB_FUNC},
                                 {NULL, NULL, 0, 0}};
