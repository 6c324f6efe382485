/*
 * lucid.c - the `lucid` interpreter: Lua 5.4 with lucid built in.
 *
 *   lucid [options] [script [args]]
 *
 * Behaves like the stock `lua` program (same options, same `arg` table, same error reports and
 * SIGINT handling) except that lucid's C core and its Lua modules are linked in, so
 * `require "lucid"` works from any directory, and that with no script and no -e it always
 * enters the read-eval-print loop (prompts and banner only when stdin is a terminal), so lines
 * piped in are evaluated and expression values printed. See docs/interpreter.md.
 *
 * Layer 8 of 8 (cli): the top; it reaches the rest only through lucid_lua.h.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "lucid_lua.h"

static const char *progname = "lucid";
static lua_State *globalL = NULL;

/* ---------------------------------------------------------------- errors and calls */

static void l_message(const char *pname, const char *msg) {
  if (pname) fprintf(stderr, "%s: ", pname);
  fprintf(stderr, "%s\n", msg);
  fflush(stderr);
}

/* Prints the error message on top of the stack (a string: see msghandler) and pops it. */
static int report(lua_State *L, int status) {
  if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    l_message(progname, msg ? msg : "(error object is not a string)");
    lua_pop(L, 1);
  }
  return status;
}

/* Message handler for every chunk: turns the error into a string and appends a traceback. */
static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* SIGINT while Lua runs: a signal handler cannot touch the Lua state safely, so it only sets a
 * hook; the hook raises the error at the next instruction, call or return. */
static void lstop(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted!");
}

static void setsignal(int sig, void (*handler)(int)) {
  struct sigaction sa;
  sa.sa_handler = handler;
  sa.sa_flags = 0;
  sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, NULL);
}

static void laction(int sig) {
  setsignal(sig, SIG_DFL); /* a second ^C kills the process */
  lua_sethook(globalL, lstop, LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT, 1);
}

static int docall(lua_State *L, int narg, int nres) {
  int base = lua_gettop(L) - narg;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  globalL = L;
  setsignal(SIGINT, laction);
  int status = lua_pcall(L, narg, nres, base);
  setsignal(SIGINT, SIG_DFL);
  lua_remove(L, base);
  return status;
}

static int dochunk(lua_State *L, int status) {
  if (status == LUA_OK) status = docall(L, 0, 0);
  return report(L, status);
}

static int dostring(lua_State *L, const char *s, const char *name) {
  return dochunk(L, luaL_loadbuffer(L, s, strlen(s), name));
}

/* -l g=mod or -l mod: global g (or mod) = require(mod). */
static int dolibrary(lua_State *L, char *globname) {
  char *modname = strchr(globname, '=');
  if (modname == NULL) {
    modname = globname;
  } else {
    *modname = '\0';
    modname++;
  }
  lua_getglobal(L, "require");
  lua_pushstring(L, modname);
  int status = docall(L, 1, 1);
  if (status == LUA_OK) lua_setglobal(L, globname);
  return report(L, status);
}

static void print_version(void) {
  printf("lucid %s (%s)\n", LUCID_VERSION, LUA_RELEASE);
  fflush(stdout);
}

static void print_usage(const char *badoption) {
  fprintf(stderr, "%s: ", progname);
  if (badoption[1] == 'e' || badoption[1] == 'l')
    fprintf(stderr, "'%s' needs argument\n", badoption);
  else
    fprintf(stderr, "unrecognized option '%s'\n", badoption);
  fprintf(stderr,
          "usage: %s [options] [script [args]]\n"
          "Available options are:\n"
          "  -e stat   execute string 'stat'\n"
          "  -i        enter interactive mode after executing 'script'\n"
          "  -l mod    require library 'mod' into global 'mod'\n"
          "  -l g=mod  require library 'mod' into global 'g'\n"
          "  -v        show version information\n"
          "  -E        ignore environment variables\n"
          "  -W        turn warnings on\n"
          "  --        stop handling options\n"
          "  -         stop handling options and execute stdin\n",
          progname);
  fflush(stderr);
}

/* ---------------------------------------------------------------- arguments */

/* arg[0] is the script, arg[1..] its arguments, the interpreter and options go below 0.
 * Without a script, arg[0] is the interpreter's name. */
static void createargtable(lua_State *L, char **argv, int argc, int script) {
  int narg = argc - (script + 1);
  lua_createtable(L, narg > 0 ? narg : 0, script + 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

static int pushargs(lua_State *L) {
  if (lua_getglobal(L, "arg") != LUA_TTABLE) luaL_error(L, "'arg' is not a table");
  int n = (int)luaL_len(L, -1);
  luaL_checkstack(L, n + 3, "too many arguments to script");
  int i;
  for (i = 1; i <= n; i++)
    lua_rawgeti(L, -i, i);
  lua_remove(L, -i);
  return n;
}

static int handle_script(lua_State *L, char **argv) {
  const char *fname = argv[0];
  if (strcmp(fname, "-") == 0 && strcmp(argv[-1], "--") != 0) fname = NULL; /* stdin */
  int status = luaL_loadfile(L, fname);
  if (status == LUA_OK) {
    int n = pushargs(L);
    status = docall(L, n, LUA_MULTRET);
  }
  return report(L, status);
}

enum { HAS_ERROR = 1, HAS_I = 2, HAS_V = 4, HAS_E = 8, HAS_NOENV = 16 };

/* Scans the options. *first becomes the index of the script (0 when there is none) or, on a
 * bad option, of that option. */
static int collectargs(char **argv, int *first) {
  int args = 0;
  *first = 0;
  for (int i = 1; argv[i] != NULL; i++) {
    *first = i;
    if (argv[i][0] != '-') return args; /* the script */
    switch (argv[i][1]) {
    case '-':
      if (argv[i][2] != '\0') return HAS_ERROR;
      *first = argv[i + 1] != NULL ? i + 1 : 0;
      return args;
    case '\0': /* "-": the script is stdin */ return args;
    case 'E':
      if (argv[i][2] != '\0') return HAS_ERROR;
      args |= HAS_NOENV;
      break;
    case 'W':
      if (argv[i][2] != '\0') return HAS_ERROR;
      break;
    case 'i':
      args |= HAS_I; /* -i implies -v */
      /* fall through */
    case 'v':
      if (argv[i][2] != '\0') return HAS_ERROR;
      args |= HAS_V;
      break;
    case 'e':
      args |= HAS_E;
      /* fall through */
    case 'l':
      if (argv[i][2] == '\0') {
        i++;
        if (argv[i] == NULL || argv[i][0] == '-') return HAS_ERROR;
      }
      break;
    default: return HAS_ERROR;
    }
  }
  *first = 0;
  return args;
}

/* Runs -e, -l and -W in command-line order; 0 when some code failed. */
static int runargs(lua_State *L, char **argv, int n) {
  for (int i = 1; i < n; i++) {
    int option = argv[i][1];
    if (option == 'e' || option == 'l') {
      char *extra = argv[i] + 2;
      if (*extra == '\0') extra = argv[++i];
      int status = option == 'e' ? dostring(L, extra, "=(command line)") : dolibrary(L, extra);
      if (status != LUA_OK) return 0;
    } else if (option == 'W') {
      lua_warning(L, "@on", 0);
    }
  }
  return 1;
}

static int handle_luainit(lua_State *L) {
  const char *name = "=LUA_INIT_" LUA_VERSION_MAJOR "_" LUA_VERSION_MINOR;
  const char *init = getenv(name + 1);
  if (init == NULL) {
    name = "=LUA_INIT";
    init = getenv(name + 1);
  }
  if (init == NULL) return LUA_OK;
  if (init[0] == '@') return dochunk(L, luaL_loadfile(L, init + 1));
  return dostring(L, init, name);
}

/* ---------------------------------------------------------------- read-eval-print loop */

static int stdin_is_tty;

/* Reads one line (any length) and pushes it without its newline; 0 at end of input. */
static int pushline(lua_State *L, int firstline) {
  if (stdin_is_tty) {
    fputs(firstline ? "> " : ">> ", stdout);
    fflush(stdout);
  }
  char *buf = NULL;
  size_t cap = 0;
  ssize_t len = getline(&buf, &cap, stdin);
  if (len < 0) {
    free(buf);
    return 0;
  }
  if (len > 0 && buf[len - 1] == '\n') buf[--len] = '\0';
  if (firstline && buf[0] == '=') /* Lua 5.2 habit: "=expr" */
    lua_pushfstring(L, "return %s", buf + 1);
  else
    lua_pushlstring(L, buf, (size_t)len);
  free(buf);
  return 1;
}

/* Tries "return <line>" so an expression prints its value; leaves the chunk, or the line. */
static int addreturn(lua_State *L) {
  const char *line = lua_tostring(L, -1);
  const char *retline = lua_pushfstring(L, "return %s;", line);
  int status = luaL_loadbuffer(L, retline, strlen(retline), "=stdin");
  if (status == LUA_OK)
    lua_remove(L, -2); /* drop retline, keep the chunk above the line */
  else
    lua_pop(L, 2); /* drop the error and retline */
  return status;
}

/* A syntax error that ends at "<eof>" means the statement continues on the next line. */
static int incomplete(lua_State *L, int status) {
  if (status == LUA_ERRSYNTAX) {
    size_t lmsg;
    const char *msg = lua_tolstring(L, -1, &lmsg);
    if (lmsg >= 5 && strcmp(msg + lmsg - 5, "<eof>") == 0) {
      lua_pop(L, 1);
      return 1;
    }
  }
  return 0;
}

static int multiline(lua_State *L) {
  for (;;) {
    size_t len;
    const char *line = lua_tolstring(L, 1, &len);
    int status = luaL_loadbuffer(L, line, len, "=stdin");
    if (!incomplete(L, status) || !pushline(L, 0)) return status;
    lua_pushliteral(L, "\n");
    lua_insert(L, -2);
    lua_concat(L, 3); /* line .. "\n" .. next line */
  }
}

/* Reads and compiles one statement; -1 at end of input. Leaves the chunk (or an error). */
static int loadline(lua_State *L) {
  lua_settop(L, 0);
  if (!pushline(L, 1)) return -1;
  int status = addreturn(L);
  if (status != LUA_OK) status = multiline(L);
  lua_remove(L, 1); /* the line */
  return status;
}

/* Prints whatever the statement returned, through the global print (tensors use __tostring). */
static void l_print(lua_State *L) {
  int n = lua_gettop(L);
  if (n > 0) {
    luaL_checkstack(L, LUA_MINSTACK, "too many results to print");
    lua_getglobal(L, "print");
    lua_insert(L, 1);
    if (lua_pcall(L, n, 0, 0) != LUA_OK)
      l_message(progname, lua_pushfstring(L, "error calling 'print' (%s)", lua_tostring(L, -1)));
  }
}

static void doREPL(lua_State *L) {
  const char *oldprogname = progname;
  progname = NULL; /* errors at the prompt are not prefixed with the program name */
  /* `lucid` as a global, for convenience at the prompt. */
  lua_getglobal(L, "require");
  lua_pushliteral(L, "lucid");
  if (docall(L, 1, 1) == LUA_OK)
    lua_setglobal(L, "lucid");
  else
    report(L, LUA_ERRRUN);
  int status;
  while ((status = loadline(L)) != -1) {
    if (status == LUA_OK) status = docall(L, 0, LUA_MULTRET);
    if (status == LUA_OK)
      l_print(L);
    else
      report(L, status);
  }
  lua_settop(L, 0);
  if (stdin_is_tty) {
    fputs("\n", stdout);
    fflush(stdout);
  }
  progname = oldprogname;
}

/* ---------------------------------------------------------------- main */

/* Puts the C modules built or installed beside this program first on package.cpath: the
 * build tree's lua/ (build/bin/../lua/lucid/mpi.so) and an install's lib/lua/5.4/. Modules
 * that are not linked in (lucid.mpi, which needs MPI) are found there; they use this
 * program's own core, whose symbols the program exports. */
static void add_module_dirs(lua_State *L) {
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return;
  exe[n] = '\0';
  char *slash = strrchr(exe, '/');
  if (!slash) return;
  *slash = '\0';
  lua_getglobal(L, "package");
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  lua_getfield(L, -1, "cpath");
  lua_pushfstring(L, "%s/../lua/?.so;%s/../lib/lua/5.4/?.so;%s", exe, exe,
                  lua_isstring(L, -1) ? lua_tostring(L, -1) : "");
  lua_setfield(L, -3, "cpath");
  lua_pop(L, 2);
}

/* After a failed script: the function a module left in the registry under "lucid.on_error"
 * (lucid.distributed's ends the whole MPI job, so the other ranks stop instead of waiting for
 * this one) runs with the failure's exit status. */
static void run_error_hook(lua_State *L) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, "lucid.on_error") == LUA_TFUNCTION) {
    lua_pushinteger(L, EXIT_FAILURE);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) lua_pop(L, 1);
  } else {
    lua_pop(L, 1);
  }
}

static int pmain(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  int script;
  int args = collectargs(argv, &script);
  luaL_checkversion(L);
  if (args == HAS_ERROR) {
    print_usage(argv[script]);
    return 0;
  }
  if (args & HAS_V) print_version();
  if (args & HAS_NOENV) { /* -E: ignore LUA_PATH, LUA_CPATH and LUA_INIT */
    lua_pushboolean(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
  }
  luaL_openlibs(L);
  lucid_preload(L); /* require "lucid" finds the embedded modules first */
  add_module_dirs(L);
  createargtable(L, argv, argc, script);
  lua_gc(L, LUA_GCRESTART);
  if (!(args & HAS_NOENV) && handle_luainit(L) != LUA_OK) return 0;
  if (!runargs(L, argv, script > 0 ? script : argc)) return 0;
  if (script > 0 && handle_script(L, argv + script) != LUA_OK) return 0;
  if (args & HAS_I) {
    doREPL(L);
  } else if (script == 0 && !(args & (HAS_E | HAS_V))) {
    if (stdin_is_tty) print_version();
    doREPL(L);
  }
  lua_pushboolean(L, 1);
  return 1;
}

int main(int argc, char **argv) {
  if (argv[0] && argv[0][0]) progname = argv[0];
  stdin_is_tty = isatty(0);
  lua_State *L = luaL_newstate();
  if (L == NULL) {
    l_message(progname, "cannot create state: not enough memory");
    return EXIT_FAILURE;
  }
  globalL = L;
  lua_gc(L, LUA_GCSTOP); /* no collections while the libraries load */
  lua_pushcfunction(L, pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  int status = lua_pcall(L, 2, 1, 0);
  int result = lua_toboolean(L, -1);
  report(L, status);
  if (!result || status != LUA_OK) run_error_hook(L);
  lua_close(L);
  return (result && status == LUA_OK) ? EXIT_SUCCESS : EXIT_FAILURE;
}
