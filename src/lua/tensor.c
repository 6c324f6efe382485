/*
 * tensor.c - the "lucid.Tensor" userdata: lifetime, collector accounting, metamethods,
 * attributes and [] indexing; and the embedding API of lucid_lua.h.
 */
#include "binding.h"

#include <string.h>

/* ---------------------------------------------------------------- userdata and slots */

const char lb_tensor_tag = 0;

/* A full userdata of exactly our size carrying our tag is one of ours (a light userdata has
 * raw length 0; a string or table is not a userdata, so lua_touserdata gives NULL). */
lb_tensor *lb_ud(lua_State *L, int idx) {
  lb_tensor *u = lua_touserdata(L, idx);
  if (!u || lua_rawlen(L, idx) != sizeof *u || u->tag != &lb_tensor_tag) return NULL;
  return u;
}

/* Tensor bytes are invisible to Lua's collector (a userdata is 8 bytes), so a loop making
 * temporaries would let C memory grow unboundedly between Lua's own cycles. We watch the
 * bytes held by live storages and force a full collection once they pass a threshold that
 * adapts to what survived the last one: max(64 MiB, live) above the live bytes. */
void lb_gc_check(lua_State *L, lb_state *st) {
  int64_t used = lc_bytes_in_use(), limit = lc_memory_limit();
  /* under a host's memory limit, collect once three quarters of it are in use, so that a loop
   * of temporaries stays within the limit when its live data does */
  int64_t next = limit > 0 && limit - limit / 4 < st->next_gc ? limit - limit / 4 : st->next_gc;
  if (used <= next) return;
  lua_gc(L, LUA_GCCOLLECT);
  int64_t live = lc_bytes_in_use();
  /* Garbage allowed before the next collection: a quarter of what is live, at least
   * LB_GC_MIN_STEP. A full collection costs time in proportion to the Lua heap, not to tensor
   * bytes, so collecting often is cheap, while each byte of garbage allowed is a byte of RSS. */
  st->next_gc = live + (live / 4 > LB_GC_MIN_STEP ? live / 4 : LB_GC_MIN_STEP);
}

/* Lua's collector sees a tensor as a 16-byte userdata, while a small tensor also holds about
 * 600 bytes of C memory (header, storage, data). Left alone, a loop of small temporaries
 * (`c = a + b`) makes tens of thousands of tensors per collection cycle, whose C memory (tens
 * of MiB) falls out of the caches between being allocated and freed, and is too much for the
 * block pools of src/core/storage.c. So every LB_SLOT_BATCH new userdata we add
 * LB_SLOT_C_BYTES each to the collector's debt, as if Lua had allocated them: cycles then come
 * sooner and the garbage of one cycle stays cache-sized. LB_SLOT_C_BYTES was tuned with `make
 * bench` (c = a + b on 4x4: 64 -> 187 ns, 128 -> 159, 256 -> 167, 640 -> 190, none -> ~380):
 * beyond ~256 the extra marking costs more than the locality gains. A stopped collector
 * (collectgarbage("stop")) is left stopped. Large tensors are handled by lb_gc_check. */
#define LB_SLOT_BATCH 64
#define LB_SLOT_C_BYTES 256
static _Thread_local unsigned slot_count;

lc_tensor **lb_slot(lua_State *L) {
  lb_state *st = lua_touserdata(L, LB_UV_STATE);
  if (st) lb_gc_check(L, st);
  if (++slot_count % LB_SLOT_BATCH == 0 && lua_gc(L, LUA_GCISRUNNING) == 1)
    lua_gc(L, LUA_GCSTEP, LB_SLOT_BATCH * LB_SLOT_C_BYTES / 1024);
  lb_tensor *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->t = NULL;
  u->tag = &lb_tensor_tag;
  lua_pushvalue(L, LB_UV_MT);
  lua_setmetatable(L, -2);
  return &u->t;
}

void lb_push(lua_State *L, lc_tensor *t) {
  lc_tensor **slot = lb_slot(L);
  *slot = lc_retain(t);
}

/* ---------------------------------------------------------------- tensor lists */

static int list_gc(lua_State *L) {
  lb_list *l = luaL_testudata(L, 1, LB_LIST_MT); /* NULL for a foreign value */
  if (l && l->ts) {
    for (int i = 0; i < l->n; i++) lc_release(l->ts[i]);
    if (l->free_array) lc_free(l->ts);
    l->ts = NULL;
    l->n = 0;
  }
  return 0;
}

lb_list *lb_list_new(lua_State *L, int n) {
  lb_list *l = lua_newuserdatauv(L, sizeof *l, 1);
  l->ts = NULL;
  l->n = 0;
  l->free_array = true;
  if (luaL_newmetatable(L, LB_LIST_MT)) {
    lua_pushcfunction(L, list_gc);
    lua_setfield(L, -2, "__gc");
    lb_seal_metatable(L);
  }
  lua_setmetatable(L, -2);
  if (n > 0) {
    /* The array is a user value of the list, so it outlives the list's finalizer. */
    lc_tensor **ts = lua_newuserdatauv(L, (size_t)n * sizeof *ts, 0);
    for (int i = 0; i < n; i++) ts[i] = NULL;
    lua_setiuservalue(L, -2, 1);
    l->ts = ts;
    l->n = n;
    l->free_array = false;
  }
  return l;
}

void lb_list_to_table(lua_State *L, lb_list *l) {
  lua_createtable(L, l->n, 0);
  for (int i = 0; i < l->n; i++) {
    if (!l->ts[i]) continue;
    lc_tensor **slot = lb_slot(L);
    *slot = l->ts[i]; /* moved */
    l->ts[i] = NULL;
    lua_rawseti(L, -2, i + 1);
  }
}

/* ---------------------------------------------------------------- self */

static lc_tensor *self_tensor(lua_State *L, const char *fn) {
  lb_tensor *u = lb_ud(L, 1);
  if (!u) lb_argerror(L, fn, 1, "self", "expected a tensor, got %s", lb_typename(L, 1));
  if (!u->t) lb_argerror(L, fn, 1, "self", "tensor was closed");
  return u->t;
}

/* ---------------------------------------------------------------- arithmetic metamethods */

/* The hot path: no option parsing, metatable compared against the upvalue, the number side
 * passed as a scalar (never materialised as a tensor). */
static int arith(lua_State *L, lc_binary_op op, const char *fn) {
  lb_tensor *ua = lb_ud(L, 1), *ub = lb_ud(L, 2);
  lc_status st;
  if (ua && ub) {
    if (!ua->t || !ub->t) lb_error(L, fn, "tensor was closed");
    lc_tensor **out = lb_slot(L);
    if (lc_binary(op, ua->t, ub->t, out) != LC_OK) lb_binary_error(L, fn, ua->t, ub->t);
    return 1;
  } else if (ua) {
    double s;
    if (!ua->t) lb_error(L, fn, "tensor was closed");
    if (lua_type(L, 2) != LUA_TNUMBER || !lb_scalar(L, 2, &s))
      lb_argerror(L, fn, 2, "other", "expected a tensor or a number, got %s",
                  lb_typename(L, 2));
    lc_tensor **out = lb_slot(L);
    st = lc_binary_scalar(op, ua->t, s, false, out);
  } else if (ub) {
    double s;
    if (!ub->t) lb_error(L, fn, "tensor was closed");
    if (lua_type(L, 1) != LUA_TNUMBER || !lb_scalar(L, 1, &s))
      lb_argerror(L, fn, 1, "input", "expected a tensor or a number, got %s",
                  lb_typename(L, 1));
    lc_tensor **out = lb_slot(L);
    st = lc_binary_scalar(op, ub->t, s, true, out);
  } else { /* called directly with no tensor at all (getmetatable(t).__add(1, 2)) */
    return lb_argerror(L, fn, 1, "input", "expected a tensor, got %s", lb_typename(L, 1));
  }
  if (st != LC_OK) lb_core_error(L, fn);
  return 1;
}

static int mm_add(lua_State *L) { return arith(L, LC_ADD, "add"); }
static int mm_sub(lua_State *L) { return arith(L, LC_SUB, "sub"); }
static int mm_mul(lua_State *L) { return arith(L, LC_MUL, "mul"); }
static int mm_div(lua_State *L) { return arith(L, LC_DIV, "div"); }
static int mm_pow(lua_State *L) { return arith(L, LC_POW, "pow"); }

static int mm_unm(lua_State *L) {
  lc_tensor *t = self_tensor(L, "neg");
  lc_tensor **out = lb_slot(L);
  if (lc_unary(LC_NEG, t, out) != LC_OK) lb_core_error(L, "neg");
  return 1;
}

/* ---------------------------------------------------------------- other metamethods */

static int mm_gc(lua_State *L) {
  lb_tensor *u = lb_ud(L, 1); /* never a foreign userdata: __gc can be called by hand */
  if (u && u->t) {
    lc_release(u->t);
    u->t = NULL;
  }
  return 0;
}

static int mm_eq(lua_State *L) {
  lb_tensor *ua = lb_ud(L, 1), *ub = lb_ud(L, 2);
  bool eq = false;
  if (ua && ub && ua->t && ub->t) {
    if (lc_equal(ua->t, ub->t, &eq) != LC_OK) eq = false; /* a == b never raises */
  } else if (ua && ub) {
    eq = ua == ub;
  }
  lua_pushboolean(L, eq);
  return 1;
}

static int mm_len(lua_State *L) {
  lc_tensor *t = self_tensor(L, "Tensor.__len");
  if (lc_ndim(t) == 0) lb_error(L, "Tensor.__len", "a 0-dim tensor has no length");
  lua_pushinteger(L, (lua_Integer)lc_shape(t)[0]);
  return 1;
}

static int mm_tostring(lua_State *L) {
  lb_tensor *u = lb_ud(L, 1);
  if (!u) return lb_error(L, "Tensor.__tostring", "expected a tensor");
  if (!u->t) {
    lua_pushliteral(L, "tensor(<closed>)");
    return 1;
  }
  lc_tensor *t = u->t;
  char extra[96] = "";
  const char *gf = lc_grad_fn_name(t);
  if (gf)
    snprintf(extra, sizeof extra, ", grad_fn=<%s>", gf);
  else if (lc_requires_grad(t))
    snprintf(extra, sizeof extra, ", requires_grad=true");
  char *s = NULL;
  if (lc_to_string(t, &s) != LC_OK) lb_core_error(L, "Tensor.__tostring");
  size_t n = strlen(s);
  if (*extra && n > 0 && s[n - 1] == ')') {
    /* "tensor([1., 2.], requires_grad=true)": the autograd note goes inside the parentheses */
    lua_pushlstring(L, s, n - 1);
    lua_pushstring(L, extra);
    lua_pushliteral(L, ")");
    lua_concat(L, 3);
  } else {
    lua_pushlstring(L, s, n);
  }
  lc_free(s);
  return 1;
}

/* ---------------------------------------------------------------- attributes */

static void push_shape(lua_State *L, const lc_tensor *t) {
  int nd = lc_ndim(t);
  lua_createtable(L, nd, 0);
  for (int i = 0; i < nd; i++) {
    lua_pushinteger(L, (lua_Integer)lc_shape(t)[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

static bool get_attribute(lua_State *L, lc_tensor *t, const char *k) {
  if (strcmp(k, "shape") == 0) {
    push_shape(L, t);
  } else if (strcmp(k, "dtype") == 0) {
    lua_pushstring(L, lc_dtype_name(lc_dtype_of(t)));
  } else if (strcmp(k, "ndim") == 0) {
    lua_pushinteger(L, lc_ndim(t));
  } else if (strcmp(k, "requires_grad") == 0) {
    lua_pushboolean(L, lc_requires_grad(t));
  } else if (strcmp(k, "is_leaf") == 0) {
    lua_pushboolean(L, lc_is_leaf(t));
  } else if (strcmp(k, "grad_fn") == 0) {
    const char *n = lc_grad_fn_name(t);
    if (n)
      lua_pushstring(L, n);
    else
      lua_pushnil(L);
  } else if (strcmp(k, "grad") == 0) {
    lc_tensor *g = lc_grad(t);
    if (g)
      lb_push(L, g);
    else
      lua_pushnil(L);
  } else if (strcmp(k, "T") == 0) {
    lc_tensor **out = lb_slot(L);
    if (lc_t(t, out) != LC_OK) lb_core_error(L, "Tensor.T");
  } else {
    return false;
  }
  return true;
}

/* ---------------------------------------------------------------- [] indexing */

/* Replaces the view in `slot` by op's result, releasing the previous one. */
#define STEP(call)                                                                             \
  do {                                                                                         \
    lc_tensor *nt_ = NULL;                                                                     \
    lc_tensor *cur = *slot;                                                                    \
    if ((call) != LC_OK) lb_core_error(L, fn);                                                 \
    lc_release(cur);                                                                           \
    *slot = nt_;                                                                               \
  } while (0)

static int64_t range_end(lua_State *L, const char *fn, int kidx, int64_t v, int64_t size,
                         int dim, bool is_start) {
  /* Inclusive bounds; negative counts from the end. Start may be size + 1 and end may be
   * start - 1 (an empty range). */
  int64_t r = v < 0 ? v + size + 1 : v;
  if (is_start ? (r < 1 || r > size + 1) : (r < 0 || r > size))
    lb_argerror(L, fn, kidx, "index",
                "range %s %lld out of range for dim %d of size %lld (expected 1..%lld or "
                "-%lld..-1)",
                is_start ? "start" : "end", (long long)v, dim + 1, (long long)size,
                (long long)size, (long long)size);
  return r;
}

bool lb_index_view(lua_State *L, const char *fn, lc_tensor *t, int kidx) {
  kidx = lua_absindex(L, kidx);
  int kt = lua_type(L, kidx);
  if (kt == LUA_TNUMBER) {
    if (lc_ndim(t) == 0) lb_argerror(L, fn, kidx, "index", "cannot index a 0-dim tensor");
    int64_t i = lb_index_value(L, fn, kidx, "index", lb_int_arg(L, fn, kidx, "index"),
                               lc_shape(t)[0], 0);
    lc_tensor **out = lb_slot(L);
    if (lc_select(t, 0, i, out) != LC_OK) lb_core_error(L, fn);
    return true;
  }
  if (kt == LUA_TUSERDATA && lb_ud(L, kidx)) return false;
  if (kt != LUA_TTABLE)
    lb_argerror(L, fn, kidx, "index",
                "expected a number, a table of indices/ranges or a tensor, got %s",
                lb_typename(L, kidx));
  lua_Integer n = luaL_len(L, kidx);
  lc_tensor **slot = lb_slot(L);
  *slot = lc_retain(t);
  int cur_dim = 0;
  for (lua_Integer e = 1; e <= n; e++) {
    lua_rawgeti(L, kidx, e);
    int et = lua_type(L, -1);
    int nd = lc_ndim(*slot);
    if (cur_dim >= nd)
      lb_argerror(L, fn, kidx, "index", "too many indices: the tensor has %d dims, got %lld",
                  lc_ndim(t), (long long)n);
    int64_t size = lc_shape(*slot)[cur_dim];
    if (et == LUA_TNUMBER) {
      int ok = 0;
      lua_Integer v = lua_tointegerx(L, -1, &ok);
      if (!ok) lb_argerror(L, fn, kidx, "index", "entry [%lld] is not an integer", (long long)e);
      int64_t i = lb_index_value(L, fn, kidx, "index", v, size, (int)(e - 1));
      STEP(lc_select(cur, cur_dim, i, &nt_));
    } else if (et == LUA_TTABLE || (et == LUA_TSTRING && strcmp(lua_tostring(L, -1), ":") == 0)) {
      int64_t a = 1, b = size, s = 1;
      if (et == LUA_TTABLE) {
        lua_Integer m = luaL_len(L, -1);
        if (m > 3)
          lb_argerror(L, fn, kidx, "index",
                      "entry [%lld]: a range is {}, {i}, {first, last} or {first, last, step}",
                      (long long)e);
        int64_t v[3];
        for (lua_Integer j = 1; j <= m; j++) {
          lua_rawgeti(L, -1, j);
          int ok = 0;
          v[j - 1] = lua_tointegerx(L, -1, &ok);
          if (!ok)
            lb_argerror(L, fn, kidx, "index", "entry [%lld][%lld] is not an integer",
                        (long long)e, (long long)j);
          lua_pop(L, 1);
        }
        if (m >= 1) {
          if (v[0] == 0 || (m >= 2 && v[1] == 0))
            lb_argerror(L, fn, kidx, "index",
                        "entry [%lld]: 0 is not a valid 1-based range bound", (long long)e);
          a = range_end(L, fn, kidx, v[0], size, (int)(e - 1), true);
          b = m >= 2 ? range_end(L, fn, kidx, v[1], size, (int)(e - 1), false) : a;
          if (m == 1 && a > size)
            lb_argerror(L, fn, kidx, "index", "entry [%lld]: index %lld out of range for dim %d "
                        "of size %lld", (long long)e, (long long)v[0], (int)e,
                        (long long)size);
        }
        if (m == 3) {
          s = v[2];
          if (s < 1)
            lb_argerror(L, fn, kidx, "index", "entry [%lld]: step must be >= 1, got %lld",
                        (long long)e, (long long)s);
        }
        if (b < a - 1)
          lb_argerror(L, fn, kidx, "index",
                      "entry [%lld]: range end %lld is before start %lld", (long long)e,
                      (long long)b, (long long)a);
      }
      if (b < a) b = a - 1;
      STEP(lc_slice(cur, cur_dim, a - 1, b, s, &nt_));
      cur_dim++;
    } else {
      lb_argerror(L, fn, kidx, "index",
                  "entry [%lld] is %s, expected an index, a range table or \":\"", (long long)e,
                  lb_typename(L, -1));
    }
    lua_pop(L, 1);
  }
  return true;
}

static int mm_index(lua_State *L) {
  if (lua_type(L, 2) == LUA_TSTRING) {
    lua_pushvalue(L, 2);
    if (lua_rawget(L, LB_UV_METHODS) != LUA_TNIL) return 1;
    lua_pop(L, 1);
    lc_tensor *t = self_tensor(L, "Tensor.__index");
    if (!get_attribute(L, t, lua_tostring(L, 2))) lua_pushnil(L);
    return 1;
  }
  const char *fn = "Tensor.__index";
  lc_tensor *t = self_tensor(L, fn);
  if (lb_index_view(L, fn, t, 2)) return 1;
  /* a tensor key: bool mask -> masked_select; integer tensor -> index_select on dim 1 */
  lc_tensor *k = lb_ud(L, 2)->t;
  if (!k) lb_argerror(L, fn, 2, "index", "tensor was closed");
  if (lc_dtype_of(k) == LC_BOOL) {
    lc_tensor **out = lb_slot(L);
    if (lc_masked_select(t, k, out) != LC_OK) lb_core_error(L, fn);
    return 1;
  }
  if (lc_ndim(t) == 0) lb_argerror(L, fn, 2, "index", "cannot index a 0-dim tensor");
  if (lc_ndim(k) != 1)
    lb_argerror(L, fn, 2, "index", "an index tensor must be 1-D, got %d dims", lc_ndim(k));
  lc_tensor **k0 = lb_index_tensor(L, fn, 2, "index", k, lc_shape(t)[0], 0);
  lc_tensor **out = lb_slot(L);
  lc_status st = lc_index_select(t, 0, *k0, out);
  lc_release(*k0);
  *k0 = NULL;
  if (st != LC_OK) lb_core_error(L, fn);
  return 1;
}

static int mm_newindex(lua_State *L) {
  const char *fn = "Tensor.__newindex";
  lc_tensor *t = self_tensor(L, fn);
  if (lua_type(L, 2) == LUA_TSTRING) {
    const char *k = lua_tostring(L, 2);
    if (strcmp(k, "requires_grad") == 0) {
      if (lua_type(L, 3) != LUA_TBOOLEAN)
        lb_argerror(L, fn, 3, "requires_grad", "expected a boolean, got %s", lb_typename(L, 3));
      if (lc_set_requires_grad(t, lua_toboolean(L, 3)) != LC_OK) lb_core_error(L, fn);
      return 0;
    }
    if (strcmp(k, "grad") == 0) {
      lc_tensor *g = lua_isnil(L, 3) ? NULL : lb_tensor_arg(L, fn, 3, "grad");
      if (lc_set_grad(t, g) != LC_OK) lb_core_error(L, fn);
      return 0;
    }
    return lb_error(L, fn, "cannot set field '%s' (settable: requires_grad, grad, [index])", k);
  }
  double v = 0;
  bool is_num = lb_scalar(L, 3, &v);
  lc_tensor *src = is_num ? NULL : lb_opt_tensor_arg(L, fn, 3, "value");
  if (!is_num && !src)
    lb_argerror(L, fn, 3, "value", "expected a number or a tensor, got %s", lb_typename(L, 3));
  if (lb_index_view(L, fn, t, 2)) {
    lc_tensor *view = *(lc_tensor **)lua_touserdata(L, -1);
    lc_status st = is_num ? lc_fill_(view, v) : lc_copy_(view, src);
    if (st != LC_OK) lb_core_error(L, fn);
    return 0;
  }
  lc_tensor *k = lb_ud(L, 2)->t;
  if (!k) lb_argerror(L, fn, 2, "index", "tensor was closed");
  if (lc_dtype_of(k) != LC_BOOL)
    lb_argerror(L, fn, 2, "index", "assignment through an index tensor is not supported (use "
                "scatter_ or index with ranges); a bool mask is");
  if (!is_num) {
    if (lc_numel(src) != 1)
      lb_argerror(L, fn, 3, "value", "with a mask, the value must be a number or a one-element "
                  "tensor");
    if (lc_item(src, &v) != LC_OK) lb_core_error(L, fn);
  }
  if (lc_masked_fill_(t, k, v) != LC_OK) lb_core_error(L, fn);
  return 0;
}

const luaL_Reg lb_tensor_meta[] = {
    {"__index", mm_index}, {"__newindex", mm_newindex}, {"__tostring", mm_tostring},
    {"__len", mm_len},     {"__eq", mm_eq},             {"__add", mm_add},
    {"__sub", mm_sub},     {"__mul", mm_mul},           {"__div", mm_div},
    {"__pow", mm_pow},     {"__unm", mm_unm},           {"__gc", mm_gc},
    {"__close", mm_gc},    {NULL, NULL}};

/* ---------------------------------------------------------------- embedding API */

int lucid_push_tensor(lua_State *L, lc_tensor *t) {
  luaL_checkstack(L, 4, "lucid_push_tensor");
  if (luaL_getmetatable(L, LB_TENSOR_MT) == LUA_TNIL) {
    lua_pop(L, 1);
    luaL_requiref(L, "lucid.core", luaopen_lucid_core, 0);
    lua_pop(L, 1);
    luaL_getmetatable(L, LB_TENSOR_MT);
  }
  lua_pop(L, 1);
  lb_state *st = lb_state_of(L);
  if (st) lb_gc_check(L, st);
  lb_tensor *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->t = NULL;
  u->tag = &lb_tensor_tag;
  luaL_setmetatable(L, LB_TENSOR_MT);
  u->t = lc_retain(t);
  return 1;
}

lc_tensor *lucid_to_tensor(lua_State *L, int idx) {
  lb_tensor *u = luaL_testudata(L, idx, LB_TENSOR_MT);
  return u ? u->t : NULL;
}

lc_tensor *lucid_check_tensor(lua_State *L, int idx) {
  lb_tensor *u = luaL_testudata(L, idx, LB_TENSOR_MT);
  if (!u) luaL_typeerror(L, idx, "lucid.Tensor");
  if (!u->t) luaL_argerror(L, idx, "tensor was closed");
  return u->t;
}
