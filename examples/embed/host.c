/*
 * host.c - a C program that embeds lucid in its own lua_State.
 *
 *   1. opens Lua and lucid (luaL_openlibs + lucid_preload: `require "lucid"` needs no path),
 *   2. runs model.lua, which defines a classifier in Lua (nn.Module:extend),
 *   3. gives the model weights the host owns (tensors built in C, handed to load_state_dict),
 *   4. wraps a host-owned float buffer as the input (lc_from_buffer, no copy), pushes it with
 *      lucid_push_tensor, calls the Lua model from C and reads the logits back with
 *      lucid_to_tensor, then takes the argmax in C,
 *   5. checks the logits and predictions against the same network computed in plain C, saves
 *      and reloads a checkpoint when lucid.save / lucid.load are available,
 *   6. closes the state: the input buffer's release callback must have run by then.
 *
 * usage: host [model.lua]      (default examples/embed/model.lua)
 * Last line, checked by the test suite:
 *   host: OK <n> predictions match the C reference; checkpoint: <...>; input buffer released
 *
 * Error handling: every lucid C call returns an lc_status; every Lua call runs under lua_pcall
 * (the functions named p_* run in protected mode), so no Lua error can reach the panic handler.
 * C-owned tensor references are released after the protected call returns, whatever happened in
 * it: the Lua side takes references of its own (lucid_push_tensor retains).
 */
#include <lauxlib.h>
#include <lualib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lucid_lua.h"

#define N_IN 2
#define N_HIDDEN 4
#define N_OUT 3
#define N_SAMPLES 6

/* The host's weights. fc1 splits a point into the positive and negative parts of x and y
 * (after the ReLU); fc2 scores "right" (x > 0), "up" (y > 0) and "left or down". */
static const float W1[N_HIDDEN][N_IN] = {{1, 0}, {0, 1}, {-1, 0}, {0, -1}};
static const float B1[N_HIDDEN] = {0, 0, 0, 0};
static const float W2[N_OUT][N_HIDDEN] = {{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 0.5f, 0.5f}};
static const float B2[N_OUT] = {0, 0, 0.25f};
static const float SAMPLES[N_SAMPLES][N_IN] = {{2, 0.5f},  {0.1f, 3},     {-1, -2},
                                               {0.3f, -4}, {-0.5f, 1.5f}, {1.25f, 1}};

/* ---------------------------------------------------------------- Lua helpers */

static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
  return 1;
}

/* lua_pcall with a traceback handler; on error prints it and pops it. */
static int pcall_tb(lua_State *L, int nargs, int nresults, const char *what) {
  int base = lua_gettop(L) - nargs; /* the function */
  lua_pushcfunction(L, traceback);
  lua_insert(L, base);
  int st = lua_pcall(L, nargs, nresults, base);
  lua_remove(L, base);
  if (st != LUA_OK) {
    fprintf(stderr, "host: %s: %s\n", what, lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  return st;
}

/* Protected: model:load_state_dict{{"fc1.weight", w[0]}, ...} with the host's tensors.
 * Stack: 1 model, 2 lightuserdata (lc_tensor *w[4], borrowed: pushing retains). */
static int p_set_weights(lua_State *L) {
  static const char *const names[4] = {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"};
  lc_tensor **w = lua_touserdata(L, 2);
  lua_getfield(L, 1, "load_state_dict");
  lua_pushvalue(L, 1);
  lua_createtable(L, 4, 0);
  for (int i = 0; i < 4; i++) {
    lua_createtable(L, 2, 0);
    lua_pushstring(L, names[i]);
    lua_rawseti(L, -2, 1);
    lucid_push_tensor(L, w[i]); /* the userdata takes its own reference */
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, -2, i + 1);
  }
  lua_call(L, 2, 0); /* strict: a missing or misshapen weight is an error */
  return 0;
}

/* Protected: returns M[fn](model, x). Stack: 1 M, 2 model, 3 lightuserdata (lc_tensor *x,
 * borrowed), upvalue 1: the function name. */
static int p_call_with_input(lua_State *L) {
  const char *fn = lua_tostring(L, lua_upvalueindex(1));
  lc_tensor *x = lua_touserdata(L, 3);
  if (lua_getfield(L, 1, fn) != LUA_TFUNCTION) return luaL_error(L, "model.lua has no %s", fn);
  lua_pushvalue(L, 2);
  lucid_push_tensor(L, x);
  lua_call(L, 2, 2);
  return 2;
}

/* ---------------------------------------------------------------- the input buffer */

/* lc_from_buffer's release callback: runs when the last tensor using the buffer goes away
 * (here: when the Lua userdata is collected, at the latest in lua_close). */
static void release_buffer(void *ctx, void *data) {
  (*(int *)ctx)++;
  free(data);
}

/* The same network in plain C: the reference the Lua model's output is checked against. */
static void reference_forward(const float *x, float *logits) {
  float h[N_HIDDEN];
  for (int j = 0; j < N_HIDDEN; j++) {
    float a = B1[j];
    for (int k = 0; k < N_IN; k++) a += W1[j][k] * x[k];
    h[j] = a > 0 ? a : 0;
  }
  for (int c = 0; c < N_OUT; c++) {
    float a = B2[c];
    for (int j = 0; j < N_HIDDEN; j++) a += W2[c][j] * h[j];
    logits[c] = a;
  }
}

static int argmax(const float *v, int n) {
  int best = 0;
  for (int i = 1; i < n; i++)
    if (v[i] > v[best]) best = i;
  return best;
}

int main(int argc, char **argv) {
  const char *model_path = argc > 1 ? argv[1] : "examples/embed/model.lua";
  int rc = 1, released = 0, n_ok = 0;
  bool wrapped = false; /* the buffer became a tensor: release_buffer must run once */
  lc_tensor *w[4] = {NULL, NULL, NULL, NULL}, *x = NULL, *pred = NULL, *kept = NULL;
  float *buf = NULL;
  char checkpoint[200] = "not run";

  lua_State *L = luaL_newstate();
  if (L == NULL) {
    fprintf(stderr, "host: cannot create a Lua state\n");
    return 1;
  }
  luaL_openlibs(L); /* lucid needs the base and package libraries */
  lucid_preload(L); /* package.preload["lucid"], ["lucid.core"], ["lucid.nn"], ... */

  /* model.lua returns its table of functions: M at index 1 */
  if (luaL_loadfile(L, model_path) != LUA_OK) {
    fprintf(stderr, "host: %s\n", lua_tostring(L, -1));
    goto done;
  }
  if (pcall_tb(L, 0, 1, model_path) != LUA_OK) goto done;
  if (!lua_istable(L, 1)) {
    fprintf(stderr, "host: %s did not return a table\n", model_path);
    goto done;
  }

  /* model = M.new(N_IN, N_HIDDEN, N_OUT): index 2 */
  lua_getfield(L, 1, "new");
  lua_pushinteger(L, N_IN);
  lua_pushinteger(L, N_HIDDEN);
  lua_pushinteger(L, N_OUT);
  if (pcall_tb(L, 3, 1, "M.new") != LUA_OK) goto done;

  /* the host's weights: copies of its arrays (lc_from_data copies) */
  const int64_t s_w1[2] = {N_HIDDEN, N_IN}, s_b1[1] = {N_HIDDEN}, s_w2[2] = {N_OUT, N_HIDDEN},
                s_b2[1] = {N_OUT};
  if (lc_from_data(2, s_w1, LC_FLOAT32, W1, &w[0]) || lc_from_data(1, s_b1, LC_FLOAT32, B1, &w[1]) ||
      lc_from_data(2, s_w2, LC_FLOAT32, W2, &w[2]) || lc_from_data(1, s_b2, LC_FLOAT32, B2, &w[3])) {
    fprintf(stderr, "host: weights: %s\n", lc_last_error());
    goto done;
  }
  lua_pushcfunction(L, p_set_weights);
  lua_pushvalue(L, 2);
  lua_pushlightuserdata(L, w);
  int st = pcall_tb(L, 2, 0, "load_state_dict");
  for (int i = 0; i < 4; i++) { /* ours go whatever happened: the module copied the values */
    lc_release(w[i]);
    w[i] = NULL;
  }
  if (st != LUA_OK) goto done;

  /* the input: a host-owned buffer wrapped without copying */
  buf = malloc(sizeof SAMPLES);
  if (buf == NULL) goto done;
  memcpy(buf, SAMPLES, sizeof SAMPLES);
  const int64_t s_x[2] = {N_SAMPLES, N_IN};
  if (lc_from_buffer(2, s_x, LC_FLOAT32, buf, release_buffer, &released, &x) != LC_OK) {
    fprintf(stderr, "host: lc_from_buffer: %s\n", lc_last_error());
    goto done; /* the buffer is still ours: freed below */
  }
  buf = NULL; /* the tensor owns it now: release_buffer frees it */
  wrapped = true;

  /* logits = M.predict(model, x) */
  lua_pushvalue(L, 1);
  lua_pushliteral(L, "predict");
  lua_pushcclosure(L, p_call_with_input, 1);
  lua_insert(L, -2); /* p_call_with_input, M */
  lua_pushvalue(L, 2);
  lua_pushlightuserdata(L, x);
  st = pcall_tb(L, 3, 2, "M.predict");
  if (st != LUA_OK) goto done;
  lua_pop(L, 1);                          /* predict returns one value */
  lc_tensor *logits = lucid_to_tensor(L, -1); /* BORROWED from the userdata; never raises */
  if (logits == NULL || lc_ndim(logits) != 2 || lc_shape(logits)[0] != N_SAMPLES ||
      lc_shape(logits)[1] != N_OUT) {
    fprintf(stderr, "host: M.predict did not return a {%d, %d} tensor\n", N_SAMPLES, N_OUT);
    goto done;
  }
  if (lc_requires_grad(logits)) { /* predict ran under no_grad: no graph */
    fprintf(stderr, "host: logits unexpectedly require grad\n");
    goto done;
  }
  kept = lc_retain(logits); /* our own reference: valid after the userdata is gone */
  lua_pop(L, 1);

  /* predictions: argmax over classes (0-based in C), read into host memory */
  float got[N_SAMPLES][N_OUT];
  int64_t classes[N_SAMPLES];
  if (lc_argmax(kept, false, 1, false, &pred) != LC_OK ||
      lc_copy_to_buffer(pred, LC_INT64, classes) != LC_OK ||
      lc_copy_to_buffer(kept, LC_FLOAT32, got) != LC_OK) {
    fprintf(stderr, "host: reading the result: %s\n", lc_last_error());
    goto done;
  }
  for (int i = 0; i < N_SAMPLES; i++) {
    float want[N_OUT];
    reference_forward(SAMPLES[i], want);
    bool close = true;
    for (int c = 0; c < N_OUT; c++) close = close && fabsf(got[i][c] - want[c]) <= 1e-5f;
    int want_class = argmax(want, N_OUT);
    printf("point (%5.2f, %5.2f) -> class %lld  logits [%.3f, %.3f, %.3f]%s\n", SAMPLES[i][0],
           SAMPLES[i][1], (long long)classes[i], got[i][0], got[i][1], got[i][2],
           close && classes[i] == want_class ? "" : "  MISMATCH with the C reference");
    if (close && classes[i] == want_class) n_ok++;
  }
  if (n_ok != N_SAMPLES) goto done;

  /* checkpoint round trip, when lucid.save / lucid.load exist */
  lua_pushvalue(L, 1);
  lua_pushliteral(L, "checkpoint_roundtrip");
  lua_pushcclosure(L, p_call_with_input, 1);
  lua_insert(L, -2);
  lua_pushvalue(L, 2);
  lua_pushlightuserdata(L, x);
  if (pcall_tb(L, 3, 2, "M.checkpoint_roundtrip") != LUA_OK) goto done;
  if (lua_toboolean(L, -2)) {
    snprintf(checkpoint, sizeof checkpoint, "saved, reloaded, same logits");
  } else if (lua_isnil(L, -2) && lua_isstring(L, -1)) {
    snprintf(checkpoint, sizeof checkpoint, "skipped (%s)", lua_tostring(L, -1));
  } else {
    fprintf(stderr, "host: the reloaded checkpoint gives different logits\n");
    goto done;
  }
  lua_pop(L, 2);
  rc = 0;

done:
  lc_release(pred);
  for (int i = 0; i < 4; i++) lc_release(w[i]);
  lc_release(x); /* the Lua userdata holds its own reference until it is collected */
  x = NULL;
  lua_close(L);  /* collects every userdata: the input's last reference goes here */
  free(buf);     /* only non-NULL when lc_from_buffer failed */
  if (kept) {    /* our reference outlived the state */
    if (lc_numel(kept) != N_SAMPLES * N_OUT) rc = 1;
    lc_release(kept);
  }
  if (wrapped && released != 1) {
    fprintf(stderr, "host: the input buffer was released %d times (expected 1)\n", released);
    rc = 1;
  }
  if (rc == 0)
    printf("host: OK %d predictions match the C reference; checkpoint: %s; input buffer "
           "released\n",
           n_ok, checkpoint);
  return rc;
}
