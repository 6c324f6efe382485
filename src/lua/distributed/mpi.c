/*
 * mpi.c - the Lua module lucid.mpi: liblucid_distributed's collectives (lucid_distributed.h)
 * for lua/lucid/distributed.lua, which is the public face (lucid.distributed).
 *
 * A separate module (build/lua/lucid/mpi.so), the only Lua module linked with MPI. It uses the
 * binding's helpers and the core from the lucid.core already loaded in the process (the
 * interpreter exports them; under stock lua5.4, lucid.distributed loads lucid.core's library
 * with global symbols first), so tensors are the same objects and there is one core.
 *
 * Ranks are 1-based here, as everything in Lua; the C API's are 0-based.
 */
#include "../binding.h"
#include "lucid_distributed.h"
#include "lucid_lua.h"

#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#define WORK_MT "lucid.distributed.Work"

typedef struct {
  lc_dist_work *w;
  const char *fn;
} work_ud;

static lc_dist_op op_arg(lua_State *L, const char *fn, int pos) {
  static const char *const names[] = {"sum", "avg", "max", "min", NULL};
  if (lua_isnoneornil(L, pos)) return LC_DIST_SUM;
  const char *s = lua_tostring(L, pos);
  if (lua_type(L, pos) == LUA_TSTRING)
    for (int i = 0; names[i]; i++)
      if (strcmp(s, names[i]) == 0) return (lc_dist_op)i;
  lb_argerror(L, fn, pos, "op", "expected \"sum\", \"avg\", \"max\" or \"min\", got %s",
              lua_type(L, pos) == LUA_TSTRING ? s : lb_typename(L, pos));
  return LC_DIST_SUM;
}

/* Reserves the handle's userdata first when async, so an allocation failure of Lua's cannot
 * leak a started operation: the userdata exists before the work does. */
#define RUN(L, fn, async, call)                                                                    \
  do {                                                                                             \
    lc_dist_work *w_ = NULL;                                                                       \
    lc_dist_work **wp_ = (async) ? &w_ : NULL;                                                     \
    work_ud *u_ = NULL;                                                                            \
    if (async) {                                                                                   \
      u_ = lua_newuserdatauv(L, sizeof *u_, 0);                                                    \
      u_->w = NULL;                                                                                \
      u_->fn = fn;                                                                                 \
      luaL_setmetatable(L, WORK_MT);                                                               \
    }                                                                                              \
    lc_status st_ = (call);                                                                        \
    if (st_) return lb_core_error(L, fn);                                                          \
    if (!(async)) return 0;                                                                        \
    u_->w = w_;                                                                                    \
    return 1;                                                                                      \
  } while (0)

/* registry["lucid.on_error"] (the interpreter calls it after a failed script): ends the job. */
static int on_error(lua_State *L) {
  lc_dist_abort((int)luaL_optinteger(L, 1, 1),
                "the script failed (its error is above): ending the job on every rank");
  return 0;
}

/* __gc of the sentinel init leaves in the registry: when the Lua state closes without
 * finalize, leave the job then (a barrier bounded by the timeout first); a job that cannot be
 * left cleanly is ended, so no rank waits for this one. */
static int sentinel_gc(lua_State *L) {
  (void)L;
  if (!lc_dist_is_initialized()) return 0;
  if (lc_dist_finalize()) lc_dist_abort(1, lb_last_error());
  return 0;
}

/* init(timeout, shared_memory): distributed.lua has checked both */
static int l_init(lua_State *L) {
  lc_dist_opts o = {.timeout = luaL_optnumber(L, 1, 0),
                    .no_shared_memory = !lua_isnoneornil(L, 2) && !lua_toboolean(L, 2)};
  if (lc_dist_init(&o)) return lb_core_error(L, "distributed.init");
  lua_pushcfunction(L, on_error);
  lua_setfield(L, LUA_REGISTRYINDEX, "lucid.on_error");
  lua_newuserdatauv(L, 1, 0);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, sentinel_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, "lucid.distributed.sentinel");
  return 0;
}

static int l_is_initialized(lua_State *L) {
  lua_pushboolean(L, lc_dist_is_initialized());
  return 1;
}
static int l_rank(lua_State *L) {
  lua_pushinteger(L, lc_dist_rank() + 1);
  return 1;
}
static int l_world_size(lua_State *L) {
  lua_pushinteger(L, lc_dist_world_size());
  return 1;
}
static int l_local_rank(lua_State *L) {
  lua_pushinteger(L, lc_dist_local_rank() + 1);
  return 1;
}
static int l_local_size(lua_State *L) {
  lua_pushinteger(L, lc_dist_local_size());
  return 1;
}
static int l_timeout(lua_State *L) {
  lua_pushnumber(L, lc_dist_timeout());
  return 1;
}
static int l_set_timeout(lua_State *L) {
  if (lc_dist_set_timeout(luaL_checknumber(L, 1)))
    return lb_core_error(L, "distributed.set_timeout");
  return 0;
}

static const char *const priority_names[] = {"auto", "normal", "idle", NULL};

/* set_comm_priority(name): the Lua layer has checked name */
static int l_set_comm_priority(lua_State *L) {
  lc_dist_priority p = (lc_dist_priority)luaL_checkoption(L, 1, NULL, priority_names);
  if (lc_dist_set_comm_priority(p)) return lb_core_error(L, "distributed.set_comm_priority");
  return 0;
}
static int l_comm_priority(lua_State *L) {
  lua_pushstring(L, priority_names[lc_dist_comm_priority()]);
  return 1;
}

/* all_reduce(t, op, async) */
static int l_all_reduce(lua_State *L) {
  const char *fn = "distributed.all_reduce";
  lc_tensor *t = lb_tensor_arg(L, fn, 1, "tensor");
  lc_dist_op op = op_arg(L, fn, 2);
  bool async = lua_toboolean(L, 3);
  RUN(L, fn, async, lc_dist_all_reduce(t, op, wp_));
}

/* broadcast(t, src (1-based), async) */
static int l_broadcast(lua_State *L) {
  const char *fn = "distributed.broadcast";
  lc_tensor *t = lb_tensor_arg(L, fn, 1, "tensor");
  lua_Integer src = luaL_optinteger(L, 2, 1);
  bool async = lua_toboolean(L, 3);
  if (src < 1 || src > lc_dist_world_size())
    return lb_argerror(L, fn, 2, "src", "rank %lld out of range (expected 1..%d)", (long long)src,
                       lc_dist_world_size());
  RUN(L, fn, async, lc_dist_broadcast(t, (int)(src - 1), wp_));
}

/* all_gather(out, in, async) */
static int l_all_gather(lua_State *L) {
  const char *fn = "distributed.all_gather";
  lc_tensor *out = lb_tensor_arg(L, fn, 1, "output");
  lc_tensor *in = lb_tensor_arg(L, fn, 2, "input");
  bool async = lua_toboolean(L, 3);
  RUN(L, fn, async, lc_dist_all_gather(out, in, wp_));
}

/* reduce_scatter(out, in, op, async) */
static int l_reduce_scatter(lua_State *L) {
  const char *fn = "distributed.reduce_scatter";
  lc_tensor *out = lb_tensor_arg(L, fn, 1, "output");
  lc_tensor *in = lb_tensor_arg(L, fn, 2, "input");
  lc_dist_op op = op_arg(L, fn, 3);
  bool async = lua_toboolean(L, 4);
  RUN(L, fn, async, lc_dist_reduce_scatter(out, in, op, wp_));
}

static int l_barrier(lua_State *L) {
  const char *fn = "distributed.barrier";
  bool async = lua_toboolean(L, 1);
  RUN(L, fn, async, lc_dist_barrier(wp_));
}

/* zeros_shared(n, dtype) */
static int l_zeros_shared(lua_State *L) {
  const char *fn = "distributed.zeros_shared";
  int64_t n = lb_int_arg(L, fn, 1, "n");
  lc_dtype dt = lua_isnoneornil(L, 2) ? LC_FLOAT32 : lb_dtype_arg(L, fn, 2, "dtype");
  lc_tensor *t = NULL;
  if (lc_dist_zeros_shared(n, dt, &t)) return lb_core_error(L, fn);
  int r = lucid_push_tensor(L, t); /* a new reference: the userdata's */
  lc_release(t);
  return r;
}

static int l_is_shared(lua_State *L) {
  lua_pushboolean(L, lc_dist_is_shared(lb_tensor_arg(L, "distributed.is_shared", 1, "tensor")));
  return 1;
}

/* shared_view(t, rank (1-based)) */
static int l_shared_view(lua_State *L) {
  const char *fn = "distributed.shared_view";
  lc_tensor *t = lb_tensor_arg(L, fn, 1, "tensor");
  int64_t rank = lb_int_arg(L, fn, 2, "rank");
  if (rank < 1 || rank > lc_dist_world_size())
    lb_argerror(L, fn, 2, "rank", "expected a rank in 1..%d, got %lld", lc_dist_world_size(),
                (long long)rank);
  lc_tensor *v = NULL;
  if (lc_dist_shared_view(t, (int)(rank - 1), &v)) return lb_core_error(L, fn);
  int r = lucid_push_tensor(L, v);
  lc_release(v);
  return r;
}

static int l_stats(lua_State *L) {
  lc_dist_stats s;
  lc_dist_get_stats(&s);
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, (lua_Integer)s.shared_ops);
  lua_setfield(L, -2, "shared_ops");
  lua_pushinteger(L, (lua_Integer)s.bytes);
  lua_setfield(L, -2, "bytes");
  lua_pushinteger(L, (lua_Integer)s.ops);
  lua_setfield(L, -2, "ops");
  lua_pushnumber(L, s.busy_seconds);
  lua_setfield(L, -2, "busy_seconds");
  return 1;
}

static int l_finalize(lua_State *L) {
  if (lc_dist_finalize()) return lb_core_error(L, "distributed.finalize");
  return 0;
}

static int l_abort(lua_State *L) {
  int code = (int)luaL_optinteger(L, 1, 1);
  const char *msg = luaL_optstring(L, 2, NULL);
  lc_dist_abort(code, msg);
  return 0;
}

/* ---- Work handles */

static work_ud *check_work(lua_State *L) { return luaL_checkudata(L, 1, WORK_MT); }

static int w_wait(lua_State *L) {
  work_ud *u = check_work(L);
  if (u->w && lc_dist_wait(u->w)) return lb_core_error(L, u->fn);
  lua_pushboolean(L, 1);
  return 1;
}

static int w_is_completed(lua_State *L) {
  work_ud *u = check_work(L);
  lua_pushboolean(L, !u->w || lc_dist_is_completed(u->w));
  return 1;
}

static int w_gc(lua_State *L) {
  work_ud *u = check_work(L);
  lc_dist_work_free(u->w);
  u->w = NULL;
  return 0;
}

static int w_tostring(lua_State *L) {
  work_ud *u = check_work(L);
  lua_pushfstring(L, "lucid.distributed.Work (%s, %s)", u->fn + strlen("distributed."),
                  !u->w || lc_dist_is_completed(u->w) ? "completed" : "pending");
  return 1;
}

int luaopen_lucid_mpi(lua_State *L) {
  luaL_checkversion(L);
  if (luaL_newmetatable(L, WORK_MT)) {
    static const luaL_Reg m[] = {{"wait", w_wait}, {"is_completed", w_is_completed}, {NULL, NULL}};
    luaL_newlib(L, m);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, w_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, w_tostring);
    lua_setfield(L, -2, "__tostring");
    lb_seal_metatable(L);
  }
  lua_pop(L, 1);
  static const luaL_Reg f[] = {{"init", l_init},
                               {"is_initialized", l_is_initialized},
                               {"rank", l_rank},
                               {"world_size", l_world_size},
                               {"local_rank", l_local_rank},
                               {"local_size", l_local_size},
                               {"timeout", l_timeout},
                               {"set_timeout", l_set_timeout},
                               {"set_comm_priority", l_set_comm_priority},
                               {"comm_priority", l_comm_priority},
                               {"all_reduce", l_all_reduce},
                               {"broadcast", l_broadcast},
                               {"all_gather", l_all_gather},
                               {"reduce_scatter", l_reduce_scatter},
                               {"barrier", l_barrier},
                               {"zeros_shared", l_zeros_shared},
                               {"is_shared", l_is_shared},
                               {"shared_view", l_shared_view},
                               {"stats", l_stats},
                               {"finalize", l_finalize},
                               {"abort", l_abort},
                               {NULL, NULL}};
  luaL_newlib(L, f);
  return 1;
}
