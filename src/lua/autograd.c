/*
 * autograd.c - autograd from Lua: requires_grad_, backward, retain_grad, grad mode and
 * lucid.autograd.grad. (no_grad/enable_grad and gradcheck are written in Lua, in
 * lua/lucid/init.lua and lua/lucid/autograd.lua.)
 */
#include "binding.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int f_requires_grad_(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "requires_grad"};
  lb_args(L, fn, P, 2);
  lc_tensor *t = lb_tensor_arg(L, fn, 1, "input");
  bool flag = lb_opt_bool_arg(L, fn, 2, "requires_grad", true);
  if (lc_set_requires_grad(t, flag) != LC_OK) lb_core_error(L, fn);
  lua_settop(L, 1);
  return 1;
}

/* ---------------------------------------------------------------- gradient hooks
 * A Lua hook is a registry reference called from lc_register_hook's callback. It can only run
 * while a backward started from Lua is on this thread's stack (lucid.backward / autograd.grad
 * set hook_L for the call): the callback runs inside that C frame, so it uses its lua_State. */

static _Thread_local lua_State *hook_L;

lua_State *lb_backward_state(void) { return hook_L; }

static lc_status run_lua_hook(void *ud, const lc_tensor *grad, lc_tensor **replace) {
  lb_luaref *h = ud;
  lua_State *L = hook_L;
  if (!L)
    return lc_set_error(LC_EGRAD, "register_hook: a Lua hook can only run in a backward started "
                                  "from Lua");
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->ref);
  lb_push(L, (lc_tensor *)grad);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    lc_status st = lc_set_error(LC_EGRAD, "error in a gradient hook: %s", msg ? msg : "?");
    lua_pop(L, 1);
    return st;
  }
  lc_status st = LC_OK;
  if (!lua_isnil(L, -1)) {
    lb_tensor *u = lb_ud(L, -1);
    if (u && u->t)
      *replace = lc_retain(u->t);
    else
      st = lc_set_error(LC_EGRAD, "a gradient hook must return a tensor or nil, got %s",
                        lb_typename(L, -1));
  }
  lua_pop(L, 1);
  return st;
}

void lb_luaref_free(void *ud) {
  lb_luaref *h = ud;
  luaL_unref(h->main, LUA_REGISTRYINDEX, h->ref);
  free(h);
}

lb_luaref *lb_luaref_new(lua_State *L, int idx) {
  lb_luaref *h = malloc(sizeof *h);
  if (!h) return NULL;
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  h->main = lua_tothread(L, -1);
  lua_pop(L, 1);
  lua_pushvalue(L, idx);
  h->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return h;
}

#define HOOK_HANDLE_MT "lucid.RemovableHandle"

static lc_hook_handle **check_handle(lua_State *L) { return luaL_checkudata(L, 1, HOOK_HANDLE_MT); }

static int handle_remove(lua_State *L) {
  lc_hook_handle **hd = check_handle(L);
  lc_hook_handle_remove(*hd);
  return 0;
}

static int handle_gc(lua_State *L) {
  lc_hook_handle **hd = check_handle(L);
  lc_hook_handle_free(*hd);
  *hd = NULL;
  return 0;
}

/* a function, or a value whose metatable has __call */
static bool is_callable(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TFUNCTION) return true;
  if (!luaL_getmetafield(L, idx, "__call")) return false;
  lua_pop(L, 1);
  return true;
}

lc_hook_handle **lb_hook_handle_new(lua_State *L) {
  lc_hook_handle **hd = lua_newuserdatauv(L, sizeof *hd, 0);
  *hd = NULL;
  if (luaL_newmetatable(L, HOOK_HANDLE_MT)) {
    lua_pushcfunction(L, handle_gc);
    lua_setfield(L, -2, "__gc");
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, handle_remove);
    lua_setfield(L, -2, "remove");
    lua_setfield(L, -2, "__index");
    lb_seal_metatable(L);
  }
  lua_setmetatable(L, -2);
  return hd;
}

static lc_status run_lua_post_hook(void *ud, lc_tensor *leaf);

/* t:register_hook(fn) and t:register_post_accumulate_grad_hook(fn): the hook as a registry
 * reference, and its handle (the result). */
static int register_lua_hook(lua_State *L, bool post) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "hook"};
  lb_args(L, fn, P, 2);
  lc_tensor *t = lb_tensor_arg(L, fn, 1, "input");
  if (!is_callable(L, 2))
    lb_argerror(L, fn, 2, "hook", "expected a function, got %s", lb_typename(L, 2));
  lc_hook_handle **hd = lb_hook_handle_new(L);
  lb_luaref *h = lb_luaref_new(L, 2);
  if (!h) lb_argerror(L, fn, 2, "hook", "out of memory");
  lc_status st =
      post ? lc_register_post_accumulate_grad_hook(t, run_lua_post_hook, h, lb_luaref_free, hd)
           : lc_register_hook(t, run_lua_hook, h, lb_luaref_free, hd);
  if (st != LC_OK) {
    lb_luaref_free(h);
    lb_core_error(L, fn);
  }
  return 1;
}

static int f_register_hook(lua_State *L) { return register_lua_hook(L, false); }

/* ---------------------------------------------------------------- post-accumulate-grad hooks
 * and queued callbacks: Lua functions called with the leaf (or nothing) from C callbacks that,
 * like gradient hooks, run inside the backward started from Lua (hook_L). The push and call
 * are protected, so no Lua error unwinds the engine's C frames. */

typedef struct lua_call1 {
  int ref;
  lc_tensor *arg; /* NULL: no argument */
} lua_call1;

static int call1_protected(lua_State *L) {
  lua_call1 *c = lua_touserdata(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->ref);
  if (c->arg) lb_push(L, c->arg);
  lua_call(L, c->arg ? 1 : 0, 1);
  return 1;
}

/* Calls the Lua function of h with arg: LC_OK (its result left on top of hook_L's stack, to
 * pop), or a core error "<what>: <Lua message>" (nothing left). */
static lc_status call_lua(lb_luaref *h, lc_tensor *arg, const char *who, const char *what) {
  lua_State *L = hook_L;
  if (!L)
    return lc_set_error(LC_EGRAD, "%s: a Lua function can only run in a backward started from Lua",
                        who);
  if (!lua_checkstack(L, LB_NUPVALUES + 4))
    return lc_set_error(LC_ENOMEM, "%s: Lua stack overflow", who);
  lua_call1 c = {h->ref, arg};
  /* the running C function is the lucid.backward / autograd.grad that started this pass: the
   * protected call gets its upvalues (the tensor metatable and state lb_push needs) */
  for (int i = 1; i <= LB_NUPVALUES; i++)
    lua_pushvalue(L, lua_upvalueindex(i));
  lua_pushcclosure(L, call1_protected, LB_NUPVALUES);
  lua_pushlightuserdata(L, &c);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    lc_status st = lc_set_error(LC_EGRAD, "%s: %s", what, msg ? msg : "?");
    lua_pop(L, 1);
    return st;
  }
  return LC_OK;
}

static lc_status run_lua_post_hook(void *ud, lc_tensor *leaf) {
  lc_status st = call_lua(ud, leaf, "register_post_accumulate_grad_hook",
                          "error in a post-accumulate-grad hook");
  if (st) return st;
  lua_State *L = hook_L;
  if (!lua_isnil(L, -1)) /* PyTorch: "should return None" */
    st = lc_set_error(LC_EGRAD, "a post-accumulate-grad hook must return nothing, got %s",
                      lb_typename(L, -1));
  lua_pop(L, 1);
  return st;
}

static int f_register_post_accumulate_grad_hook(lua_State *L) { return register_lua_hook(L, true); }

static lc_status run_lua_callback(void *ud) {
  lc_status st = call_lua(ud, NULL, "autograd_queue_callback", "error in a queued callback");
  if (!st) lua_pop(hook_L, 1); /* its results are ignored, as PyTorch's */
  return st;
}

/* lucid.autograd.queue_callback(fn) (lua/lucid/autograd.lua) */
static int f_queue_callback(lua_State *L) {
  const char *fn = "autograd.queue_callback";
  static const char *const P[] = {"callback"};
  lb_args(L, fn, P, 1);
  if (!is_callable(L, 1))
    lb_argerror(L, fn, 1, "callback", "expected a function, got %s", lb_typename(L, 1));
  lb_luaref *h = lb_luaref_new(L, 1);
  if (!h) lb_argerror(L, fn, 1, "callback", "out of memory");
  /* h is the core's from here: freed after the callback ran, or at once when this fails */
  if (lc_autograd_queue_callback(run_lua_callback, h, lb_luaref_free) != LC_OK)
    lb_core_error(L, fn);
  return 0;
}

/* lucid.autograd.set_grad_buffer(leaf, buffer | nil) (lua/lucid/autograd.lua) */
static int f_set_grad_buffer(lua_State *L) {
  const char *fn = "autograd.set_grad_buffer";
  static const char *const P[] = {"input", "buffer"};
  lb_args(L, fn, P, 2);
  lc_tensor *t = lb_tensor_arg(L, fn, 1, "input");
  lc_tensor *buf = lua_isnil(L, 2) ? NULL : lb_tensor_arg(L, fn, 2, "buffer");
  if (lc_set_grad_buffer(t, buf) != LC_OK) lb_core_error(L, fn);
  return 0;
}

/* Runs a backward with hook_L set to L (restored after, also for nested backwards). */
#define WITH_HOOKS(L, call)                                                                        \
  do {                                                                                             \
    lua_State *prev_hook_L_ = hook_L;                                                              \
    hook_L = (L);                                                                                  \
    st_ = (call);                                                                                  \
    hook_L = prev_hook_L_;                                                                         \
  } while (0)

static int f_backward(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input", "gradient", "retain_graph", "create_graph"};
  lb_args(L, fn, P, 4);
  lc_tensor *t = lb_tensor_arg(L, fn, 1, "input");
  lc_tensor *g = NULL;
  if (!lua_isnil(L, 2)) g = lb_tensor_arg(L, fn, 2, "gradient");
  bool create = lb_opt_bool_arg(L, fn, 4, "create_graph", false);
  bool retain = lb_opt_bool_arg(L, fn, 3, "retain_graph", create); /* PyTorch's default */
  unsigned flags = (retain ? LC_RETAIN_GRAPH : 0) | (create ? LC_CREATE_GRAPH : 0);
  /* the rules (requires grad, a gradient for non-scalars) and their messages are lc_backward's */
  lc_status st_;
  WITH_HOOKS(L, lc_backward_ex(t, g, flags));
  if (st_ != LC_OK) lb_core_error(L, fn);
  return 0;
}

static int f_retain_grad(lua_State *L) {
  const char *fn = LB_FN(L);
  static const char *const P[] = {"input"};
  lb_args(L, fn, P, 1);
  lc_tensor *t = lb_tensor_arg(L, fn, 1, "input");
  if (lc_retain_grad(t) != LC_OK) lb_core_error(L, fn);
  lua_settop(L, 1);
  return 1;
}

static int f_set_grad_enabled(lua_State *L) {
  const char *fn = LB_FN(L);
  if (lua_type(L, 1) != LUA_TBOOLEAN)
    lb_argerror(L, fn, 1, "mode", "expected a boolean, got %s", lb_typename(L, 1));
  lua_pushboolean(L, lc_set_grad_enabled(lua_toboolean(L, 1)));
  return 1;
}

static int f_is_grad_enabled(lua_State *L) {
  lua_pushboolean(L, lc_is_grad_enabled());
  return 1;
}

/* A tensor or a sequence of tensors at pos -> borrowed pointers in a userdata (pushed). */
static lc_tensor **tensor_list(lua_State *L, const char *fn, int pos, const char *name, int *n,
                               bool allow_nil_entries) {
  lb_tensor *u = lb_ud(L, pos);
  if (u) {
    if (!u->t) lb_argerror(L, fn, pos, name, "tensor was closed");
    lc_tensor **ts = lua_newuserdatauv(L, sizeof *ts, 0);
    ts[0] = u->t;
    *n = 1;
    return ts;
  }
  if (lua_type(L, pos) != LUA_TTABLE)
    lb_argerror(L, fn, pos, name, "expected a tensor or a table of tensors, got %s",
                lb_typename(L, pos));
  lua_Integer len = luaL_len(L, pos);
  if (len < 1 || len > 1 << 20)
    lb_argerror(L, fn, pos, name, "expected at least one tensor, got %lld", (long long)len);
  lc_tensor **ts = lua_newuserdatauv(L, (size_t)len * sizeof *ts, 0);
  for (lua_Integer i = 1; i <= len; i++) {
    lua_rawgeti(L, pos, i);
    u = lb_ud(L, -1);
    if (!(u && u->t) && !(allow_nil_entries && lua_isnil(L, -1)))
      lb_argerror(L, fn, pos, name, "entry [%lld] is %s, expected a tensor", (long long)i,
                  u ? "a closed tensor" : lb_typename(L, -1));
    ts[i - 1] = u ? u->t : NULL;
    lua_pop(L, 1);
  }
  *n = (int)len;
  return ts;
}

/* ---------------------------------------------------------------- custom functions
 * lucid.autograd.Function (lua/lucid/autograd.lua) runs forward itself and hands the result to
 * core._function_record, which records one node (lc_function_record) whose payload is below:
 * the Lua backward (a registry reference to a closure made by autograd.lua) and the saved
 * tensors. Like a hook, the backward runs in the lua_State of the backward started from Lua. */

typedef struct lua_fn {
  lua_State *main; /* for the unref when the node drops the payload */
  int ref;
  int n_saved;
  lc_tensor **saved; /* owned: an input (or any tensor) as is, an output as a history-free alias */
  uint64_t *version; /* saved[i]'s version when recorded */
  int *out_k;        /* output number of saved[i], -1 when it is not an output */
} lua_fn;

static void lua_fn_free(void *p) {
  lua_fn *f = p;
  luaL_unref(f->main, LUA_REGISTRYINDEX, f->ref);
  for (int i = 0; i < f->n_saved; i++)
    lc_release(f->saved[i]);
  free(f->saved);
  free(f->version);
  free(f->out_k);
  free(f);
}

typedef struct lua_fn_call {
  const lc_function_ctx *ctx;
  lua_fn *f;
  int n_out, n_in;
  lc_tensor *const *grad_out;
  lc_tensor **grad_in;
  lc_status st; /* a core error while unpacking (its message is set) */
} lua_fn_call;

/* Runs protected (lua_pcall), so an error raised while pushing cannot unwind the engine's C
 * frames: closure(saved, grad_out...) -> one gradient (tensor or nil) per input. */
static int lua_fn_call_protected(lua_State *L) {
  lua_fn_call *c = lua_touserdata(L, 1);
  lua_fn *f = c->f;
  luaL_checkstack(L, c->n_out + c->n_in + 8, "autograd.Function backward");
  lua_rawgeti(L, LUA_REGISTRYINDEX, f->ref);
  lua_createtable(L, f->n_saved, 0);
  for (int i = 0; i < f->n_saved; i++) {
    if (lc_version(f->saved[i]) != f->version[i]) {
      c->st = lc_set_error(LC_EGRAD,
                           "one of the variables needed for gradient computation has been "
                           "modified by an inplace operation: saved tensor " LC_POS_D
                           " is at version %llu; expected version %llu instead",
                           i, (unsigned long long)lc_version(f->saved[i]),
                           (unsigned long long)f->version[i]);
      return 0;
    }
    lc_tensor **slot = lb_slot(L);
    if (f->out_k[i] >= 0)
      c->st = lc_function_saved_output(c->ctx, f->out_k[i], f->saved[i], slot);
    else
      *slot = lc_retain(f->saved[i]);
    if (c->st) return 0;
    lua_rawseti(L, -2, i + 1);
  }
  for (int k = 0; k < c->n_out; k++)
    lb_push(L, c->grad_out[k]);
  lua_call(L, 1 + c->n_out, c->n_in);
  int base = lua_gettop(L) - c->n_in;
  for (int i = 0; i < c->n_in; i++) {
    lb_tensor *u = lb_ud(L, base + 1 + i);
    if (u && u->t)
      c->grad_in[i] = lc_retain(u->t);
    else if (!lua_isnil(L, base + 1 + i))
      return luaL_error(L,
                        "backward returned %s as the gradient of input %d, expected a tensor "
                        "or nil",
                        lb_typename(L, base + 1 + i), i + 1);
  }
  return 0;
}

static lc_status lua_fn_backward(const lc_function_ctx *ctx, void *payload, int n_out,
                                 lc_tensor *const *grad_out, int n_in, const bool *needs_grad,
                                 lc_tensor **grad_in) {
  lua_State *L = hook_L;
  if (!L)
    return lc_set_error(LC_EGRAD, "a lucid.autograd.Function's backward can only run in a "
                                  "backward started from Lua");
  lua_fn_call c = {ctx, payload, n_out, n_in, grad_out, grad_in, LC_OK};
  if (!lua_checkstack(L, LB_NUPVALUES + 4))
    return lc_set_error(LC_ENOMEM, "autograd.Function: Lua stack overflow");
  /* the running C function is the lucid.backward / autograd.grad that started this pass: the
   * protected call gets its upvalues (the tensor metatable and state lb_slot needs) */
  for (int i = 1; i <= LB_NUPVALUES; i++)
    lua_pushvalue(L, lua_upvalueindex(i));
  lua_pushcclosure(L, lua_fn_call_protected, LB_NUPVALUES);
  lua_pushlightuserdata(L, &c);
  int rc = lua_pcall(L, 1, 0, 0);
  lc_status st = c.st;
  if (rc != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    st = lc_set_error(LC_EGRAD, "error in backward: %s", msg ? msg : "?");
    lua_pop(L, 1);
  }
  if (st)
    for (int i = 0; i < n_in; i++) {
      lc_release(grad_in[i]);
      grad_in[i] = NULL;
    }
  for (int i = 0; i < n_in && !st; i++)
    if (!needs_grad[i]) {
      lc_release(grad_in[i]);
      grad_in[i] = NULL;
    }
  return st;
}

static const lc_function_def lua_fn_def = {lua_fn_backward, lua_fn_free};

/* core._function_record(name, backward, inputs, outputs, differentiable, saved) */
static int f_function_record(lua_State *L) {
  const char *fn = "autograd.Function";
  const char *name = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  int n_in = 0, n_out = 0, n_saved = 0;
  lc_tensor **ins = NULL;
  luaL_checktype(L, 3, LUA_TTABLE);
  if (luaL_len(L, 3) > 0) ins = tensor_list(L, fn, 3, "inputs", &n_in, false);
  lc_tensor **outs = tensor_list(L, fn, 4, "outputs", &n_out, false);
  luaL_checktype(L, 5, LUA_TTABLE);
  bool *diff = lua_newuserdatauv(L, (size_t)n_out * sizeof *diff, 0);
  for (int k = 0; k < n_out; k++) {
    lua_rawgeti(L, 5, k + 1);
    diff[k] = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  lc_tensor **sv = NULL;
  luaL_checktype(L, 6, LUA_TTABLE);
  if (luaL_len(L, 6) > 0) sv = tensor_list(L, fn, 6, "saved", &n_saved, false);

  lua_fn *f = calloc(1, sizeof *f);
  if (!f) return luaL_error(L, "%s: out of memory", fn);
  f->main = NULL;
  f->ref = LUA_NOREF;
  if (n_saved) {
    f->saved = calloc((size_t)n_saved, sizeof *f->saved);
    f->version = calloc((size_t)n_saved, sizeof *f->version);
    f->out_k = calloc((size_t)n_saved, sizeof *f->out_k);
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  f->main = lua_tothread(L, -1);
  lua_pop(L, 1);
  lc_status st = LC_OK;
  if (n_saved && (!f->saved || !f->version || !f->out_k))
    st = lc_set_error(LC_ENOMEM, "%s: out of memory", fn);
  for (int i = 0; i < n_saved && !st; i++) {
    f->n_saved = i + 1;
    f->out_k[i] = -1;
    for (int k = 0; k < n_out; k++)
      if (outs[k] == sv[i]) f->out_k[i] = k;
    /* an output is kept without its history (no cycle node -> output -> node) and given it
     * back when unpacked under create_graph */
    if (f->out_k[i] >= 0)
      st = lc_detach(sv[i], &f->saved[i]);
    else
      f->saved[i] = lc_retain(sv[i]);
    if (!st) f->version[i] = lc_version(sv[i]);
  }
  lua_pushvalue(L, 2);
  f->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  if (st) {
    lua_fn_free(f);
    lb_core_error(L, fn);
  }
  if (lc_function_record(&lua_fn_def, name, f, n_in, ins, n_out, outs, diff) != LC_OK)
    lb_core_error(L, fn); /* f was freed by lc_function_record */
  return 0;
}

static int f_grad(lua_State *L) {
  const char *fn = "autograd.grad";
  /* PyTorch's order, without its deprecated only_inputs */
  static const char *const P[] = {"outputs",      "inputs",       "grad_outputs",
                                  "retain_graph", "create_graph", "allow_unused"};
  lb_args(L, fn, P, 6);
  int no, ni, ng = 0;
  lc_tensor **outs = tensor_list(L, fn, 1, "outputs", &no, false);
  lc_tensor **ins = tensor_list(L, fn, 2, "inputs", &ni, false);
  lc_tensor **gouts = NULL;
  if (!lua_isnil(L, 3)) {
    gouts = tensor_list(L, fn, 3, "grad_outputs", &ng, true);
    if (ng != no)
      lb_argerror(L, fn, 3, "grad_outputs", "expected %d gradients (one per output), got %d", no,
                  ng);
  }
  bool create = lb_opt_bool_arg(L, fn, 5, "create_graph", false);
  bool retain = lb_opt_bool_arg(L, fn, 4, "retain_graph", create); /* PyTorch's default */
  bool allow_unused = lb_opt_bool_arg(L, fn, 6, "allow_unused", false);
  unsigned flags = (retain ? LC_RETAIN_GRAPH : 0) | (create ? LC_CREATE_GRAPH : 0) |
                   (allow_unused ? LC_ALLOW_UNUSED : 0);
  /* the rules (outputs require grad, a gradient for non-scalar outputs, reachable inputs) and
   * their messages are lc_autograd_grad's, positions shown 1-based by lb_core_error */
  /* grad_outputs entries left nil reach C as NULL: lc_autograd_grad seeds them with ones */
  /* The results land in a tensor list owned by the collector until moved into the table. */
  lb_list *l = lb_list_new(L, ni);
  lc_status st_;
  WITH_HOOKS(L, lc_autograd_grad_ex(no, outs, gouts, ni, ins, flags, l->ts));
  if (st_ != LC_OK) lb_core_error(L, fn);
  lb_list_to_table(L, l);
  lua_pushinteger(L, ni);
  lua_setfield(L, -2, "n");
  return 1;
}

const lb_reg lb_autograd_regs[] = {
    {"requires_grad_", f_requires_grad_, 0, LB_METHOD},
    {"backward", f_backward, 0, LB_BOTH},
    {"retain_grad", f_retain_grad, 0, LB_METHOD},
    {"register_hook", f_register_hook, 0, LB_METHOD},
    {"register_post_accumulate_grad_hook", f_register_post_accumulate_grad_hook, 0, LB_METHOD},
    {"_queue_callback", f_queue_callback, 0, LB_FUNC},
    {"_set_grad_buffer", f_set_grad_buffer, 0, LB_FUNC},
    {"set_grad_enabled", f_set_grad_enabled, 0, LB_FUNC},
    {"is_grad_enabled", f_is_grad_enabled, 0, LB_FUNC},
    {"grad", f_grad, 0, LB_FUNC},
    {"_function_record", f_function_record, 0, LB_FUNC},
    {NULL, NULL, 0, 0}};
