/*
 * sandbox.c - a host that runs a script it does not trust (docs/embedding.md, "Sandboxing a
 * script").
 *
 *   1. opens a lua_State with the safe standard libraries only (no io, os, debug or package
 *      loaders from disk) and lucid (lucid_preload: `require "lucid"` works from memory),
 *   2. confines lucid's files to one directory (lc_set_file_roots) and its tensors to 64 MiB
 *      (lc_set_memory_limit), and locks both,
 *   3. runs the script below, which tries what a hostile mod would: read a file outside the
 *      directory, lift the limits, allocate past them, reach a tensor's metatable, call a
 *      metamethod on a foreign value; and does honest work (trains a step, saves a checkpoint
 *      in its directory, loads it back),
 *   4. checks in C what the script reported and that the host survived.
 *
 * usage: sandbox [dir]     (default: a fresh directory under /tmp)
 * Last line, checked by the test suite: sandbox: OK <n> attempts refused; checkpoint <bytes> bytes
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */

#include <lauxlib.h>
#include <lualib.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lucid_io.h"
#include "lucid_lua.h"

/* The untrusted script: it returns the number of refused attempts, the size of its checkpoint
 * and a message for anything that unexpectedly worked. */
static const char *const SCRIPT =
    "local lucid = require 'lucid'\n"
    "local dir = ...\n"
    "local refused, surprises = 0, {}\n"
    "local function attempt(what, fn, ...)\n"
    "  local ok, e = pcall(fn, ...)\n"
    "  if ok then surprises[#surprises + 1] = what else refused = refused + 1 end\n"
    "end\n"
    "attempt('read outside', lucid.load, '/etc/passwd')\n"
    "attempt('escape with ..', lucid.load, dir .. '/../../etc/passwd')\n"
    "attempt('write outside', lucid.save, '/tmp/lucid-sandbox-escape.safetensors', {w = "
    "lucid.ones(1)})\n"
    "attempt('lift the file policy', lucid.set_file_policy)\n"
    "attempt('lift the memory limit', lucid.set_memory_limit, 0)\n"
    "attempt('allocate 1 GiB', lucid.zeros, 256 * 1024 * 1024)\n"
    "attempt('an absurd shape', lucid.zeros, 0, 1 << 62, 1 << 62)\n"
    "attempt('swap a metamethod', function() getmetatable(lucid.ones(1)).__index = {} end)\n"
    "attempt('arith on nothing', function() return lucid.ones(1) + io end)\n"
    "-- honest work: a training step and a checkpoint in its own directory\n"
    "local nn = lucid.nn\n"
    "local model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))\n"
    "local opt = lucid.optim.SGD(model:parameters(), 0.1)\n"
    "local loss = nn.functional.cross_entropy(model(lucid.randn(16, 4)), lucid.ones(16, {dtype = "
    "'int64'}))\n"
    "loss:backward()\n"
    "opt:step()\n"
    "lucid.save(dir .. '/model.safetensors', model:state_dict())\n"
    "local back = lucid.load(dir .. '/model.safetensors')\n"
    "assert(#back == 4, 'the checkpoint holds 4 tensors')\n"
    "return refused, table.concat(surprises, ', ')\n";

static const int ATTEMPTS = 9;

int main(int argc, char **argv) {
  char dir[256];
  if (argc > 1) {
    snprintf(dir, sizeof dir, "%s", argv[1]);
  } else {
    snprintf(dir, sizeof dir, "/tmp/lucid-sandbox-XXXXXX");
    if (!mkdtemp(dir)) {
      perror("sandbox: mkdtemp");
      return 1;
    }
  }
  /* the host's policy, set and locked before the script runs */
  const char *roots[] = {dir};
  if (lc_set_file_roots(roots, 1, roots, 1) != LC_OK || lc_set_memory_limit(64 << 20) != LC_OK) {
    fprintf(stderr, "sandbox: %s\n", lc_last_error());
    return 1;
  }
  lc_lock_file_policy();
  lc_lock_memory_limit();

  lua_State *L = luaL_newstate();
  if (!L) return 1;
  /* the safe libraries only: a script gets no io, os, debug, or loading code from disk */
  static const luaL_Reg safe[] = {
      {LUA_GNAME, luaopen_base},          {LUA_LOADLIBNAME, luaopen_package},
      {LUA_TABLIBNAME, luaopen_table},    {LUA_STRLIBNAME, luaopen_string},
      {LUA_MATHLIBNAME, luaopen_math},    {LUA_UTF8LIBNAME, luaopen_utf8},
      {LUA_COLIBNAME, luaopen_coroutine}, {NULL, NULL}};
  for (const luaL_Reg *lib = safe; lib->func; lib++) {
    luaL_requiref(L, lib->name, lib->func, 1);
    lua_pop(L, 1);
  }
  /* require finds lucid in memory only: no searchers that read files */
  lua_getglobal(L, "package");
  lua_createtable(L, 1, 0);
  lua_getfield(L, -2, "searchers");
  lua_rawgeti(L, -1, 1); /* the preload searcher */
  lua_rawseti(L, -3, 1);
  lua_pop(L, 1);
  lua_setfield(L, -2, "searchers");
  lua_pop(L, 1);
  lua_pushnil(L);
  lua_setglobal(L, "dofile");
  lua_pushnil(L);
  lua_setglobal(L, "loadfile");
  lucid_preload(L);

  int rc = 1;
  if (luaL_loadbufferx(L, SCRIPT, strlen(SCRIPT), "=untrusted", "t") != LUA_OK) {
    fprintf(stderr, "sandbox: %s\n", lua_tostring(L, -1));
  } else {
    lua_pushstring(L, dir);
    if (lua_pcall(L, 1, 2, 0) != LUA_OK) {
      fprintf(stderr, "sandbox: the script failed: %s\n", lua_tostring(L, -1));
    } else {
      int refused = (int)lua_tointeger(L, -2);
      const char *surprises = lua_tostring(L, -1);
      char path[320];
      snprintf(path, sizeof path, "%s/model.safetensors", dir);
      struct stat sb;
      bool saved = stat(path, &sb) == 0 && sb.st_size > 0;
      bool escaped = access("/tmp/lucid-sandbox-escape.safetensors", F_OK) == 0;
      if (refused == ATTEMPTS && surprises && !*surprises && saved && !escaped) {
        printf("sandbox: OK %d attempts refused; checkpoint %lld bytes\n", refused,
               (long long)sb.st_size);
        rc = 0;
      } else {
        fprintf(stderr, "sandbox: %d of %d attempts refused (worked: %s), saved %d, escaped %d\n",
                refused, ATTEMPTS, surprises ? surprises : "?", saved, escaped);
      }
      unlink(path);
    }
  }
  lua_close(L);
  if (argc <= 1) rmdir(dir);
  return rc;
}
