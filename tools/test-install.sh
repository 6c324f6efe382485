#!/bin/sh
# Installs lucid into temporary directories and uses it the way an outside project would:
#   1. make install PREFIX=$tmp/prefix; builds examples/embed/{c_only,onnx_host,host,threads,classify}.c
#      against the installed headers and libraries through pkg-config (shared, and c_only also
#      statically), runs them (classify with a checkpoint the installed `lucid` interpreter
#      trains with examples/fashion_mnist.lua --quick, when the Fashion-MNIST files are there);
#      builds and runs the complete C programs of docs/embedding.md the way the doc says, and
#      checks every installed header compiles on its own with pkg-config's flags;
#      runs stock lua5.4 and the installed `lucid` interpreter against the tree;
#      make uninstall; checks no file is left;
#   2. make install DESTDIR=$tmp/stage PREFIX=/usr/local: checks stock lua5.4's own default
#      search paths find the staged module, then uninstalls and checks no file is left.
# Prints "ok - ..." / "not ok - ..." per check and, last, "install tests: N passed, N failed".
# usage: test-install.sh [BUILD_DIR]          (run from the repository root)
BUILD=${1:-build}
MAKE=${MAKE:-make}
ROOT=$(pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
# Stock lua5.4 must see only what the test gives it.
unset LUA_PATH LUA_PATH_5_4 LUA_CPATH LUA_CPATH_5_4 LUA_INIT LUA_INIT_5_4

ok() { pass=$((pass + 1)); echo "ok - $1"; }
not_ok() {
  fail=$((fail + 1))
  echo "not ok - $1"
  [ -n "$2" ] && [ -f "$2" ] && sed 's/^/#   /' "$2" | tail -n 30
}
# check DESCRIPTION COMMAND...: passes when the command exits 0 (its output goes to $tmp/out)
check() {
  desc=$1
  shift
  if "$@" >"$tmp/out" 2>&1; then ok "$desc"; else not_ok "$desc" "$tmp/out"; return 1; fi
}
# expect DESCRIPTION PATTERN COMMAND...: passes when the command exits 0 and prints PATTERN
expect() {
  desc=$1
  pat=$2
  shift 2
  if "$@" >"$tmp/out" 2>&1 && grep -q -- "$pat" "$tmp/out"; then ok "$desc"; else not_ok "$desc" "$tmp/out"; fi
}
# -j1: a make started from a recipe (make test) gets no jobserver
mk() { $MAKE --no-print-directory -j1 -s BUILD="$BUILD" "$@"; }
# Files and symlinks below $1 (none expected after an uninstall), and lucid directories.
leftovers() { find "$1" \( -type f -o -type l -o -name '*lucid*' \) -print 2>/dev/null; }

version=$(sed -n 's/^#define LUCID_VERSION "\(.*\)"/\1/p' include/lucid_core.h)
CCW="${CC:-cc} -std=c11 -Wall -Wextra -Werror -O2"

# ------------------------------------------------------------------ 1. PREFIX=$tmp/prefix
P=$tmp/prefix

# Everything that needs the installation of part 1.
use_prefix() {
  missing=""
  for h in include/*.h; do
    [ -e "$P/include/lucid/${h#include/}" ] || missing="$missing $h"
  done
  for f in bin/lucid lib/liblucid.a "lib/liblucid.so.$version" lib/liblucid.so.0 lib/liblucid.so \
    lib/liblucid-lua.a "lib/liblucid-lua.so.$version" lib/liblucid-lua.so.0 lib/liblucid-lua.so \
    include/lucid/lucid.h include/lucid/lucid_nn.h include/lucid/lucid_lua.h \
    lib/pkgconfig/lucid.pc lib/pkgconfig/lucid-lua.pc \
    share/lua/5.4/lucid/init.lua share/lua/5.4/lucid/nn.lua lib/lua/5.4/lucid/core.so; do
    [ -e "$P/$f" ] || missing="$missing $f"
  done
  echo "missing:$missing" >"$tmp/out"
  if [ -z "$missing" ]; then ok "installed files present"; else not_ok "installed files present" "$tmp/out"; fi
  check "liblucid.so.0 -> liblucid.so.$version" test "$(readlink "$P/lib/liblucid.so.0")" = "liblucid.so.$version"
  expect "soname liblucid.so.0" "SONAME.*liblucid.so.0" readelf -d "$P/lib/liblucid.so.$version"

  export PKG_CONFIG_PATH="$P/lib/pkgconfig"
  expect "pkg-config --modversion lucid" "^$version\$" pkg-config --modversion lucid
  expect "pkg-config lucid-lua pulls in lucid and lua5.4" "-llucid-lua -llucid -llua5.4" pkg-config --libs lucid-lua

  # The examples, built with pkg-config's flags only (no -Iinclude, nothing from build/).
  check "build c_only.c with pkg-config lucid (shared)" \
    sh -c "$CCW \$(pkg-config --cflags lucid) examples/embed/c_only.c \$(pkg-config --libs lucid) -o '$tmp/c_only'"
  expect "c_only (shared) runs" "^c_only: OK" env LD_LIBRARY_PATH="$P/lib" "$tmp/c_only"
  expect "c_only uses the installed liblucid.so.0" "$P/lib/liblucid.so.0" env LD_LIBRARY_PATH="$P/lib" ldd "$tmp/c_only"
  check "build onnx_host.c with pkg-config lucid (shared)" \
    sh -c "$CCW \$(pkg-config --cflags lucid) examples/embed/onnx_host.c \$(pkg-config --libs lucid) -o '$tmp/onnx_host'"
  expect "onnx_host (shared) runs a PyTorch export" "^onnx_host: OK" env LD_LIBRARY_PATH="$P/lib" "$tmp/onnx_host" \
    spec/fixtures/onnx/text_encoder.onnx spec/fixtures/onnx/text_encoder_b1_input.pb spec/fixtures/onnx/text_encoder_b1_output.pb
  check "build onnx_host.c with pkg-config --static lucid and -l:liblucid.a" \
    sh -c "$CCW \$(pkg-config --cflags lucid) examples/embed/onnx_host.c \$(pkg-config --static --libs lucid | sed 's|-llucid\\b|-l:liblucid.a|') -o '$tmp/onnx_host_static'"
  expect "onnx_host (static) runs" "^onnx_host: OK" "$tmp/onnx_host_static" \
    spec/fixtures/onnx/text_encoder.onnx spec/fixtures/onnx/text_encoder_b1_input.pb spec/fixtures/onnx/text_encoder_b1_output.pb
  check "build c_only.c with pkg-config --static lucid and -l:liblucid.a" \
    sh -c "$CCW \$(pkg-config --cflags lucid) examples/embed/c_only.c \$(pkg-config --static --libs lucid | sed 's|-llucid\\b|-l:liblucid.a|') -o '$tmp/c_only_static'"
  expect "c_only (static) runs without LD_LIBRARY_PATH" "^c_only: OK" "$tmp/c_only_static"
  check "build host.c with pkg-config lucid-lua" \
    sh -c "$CCW \$(pkg-config --cflags lucid-lua) examples/embed/host.c \$(pkg-config --libs lucid-lua) -lm -o '$tmp/host'"
  expect "host runs" "^host: OK" env LD_LIBRARY_PATH="$P/lib" "$tmp/host" examples/embed/model.lua
  check "build threads.c with pkg-config lucid-lua" \
    sh -c "$CCW \$(pkg-config --cflags lucid-lua) examples/embed/threads.c \$(pkg-config --libs lucid-lua) -lpthread -o '$tmp/threads'"
  expect "threads runs" "^threads: OK" env LD_LIBRARY_PATH="$P/lib" "$tmp/threads" examples/embed/train.lua
  check "build sandbox.c with pkg-config lucid-lua" \
    sh -c "$CCW \$(pkg-config --cflags lucid-lua) examples/embed/sandbox.c \$(pkg-config --libs lucid-lua) -o '$tmp/sandbox'"
  expect "sandbox runs" "^sandbox: OK 9 attempts refused" env LD_LIBRARY_PATH="$P/lib" "$tmp/sandbox"
  check "build classify.c with pkg-config lucid-lua" \
    sh -c "$CCW \$(pkg-config --cflags lucid-lua) examples/embed/classify.c \$(pkg-config --libs lucid-lua) -lm -o '$tmp/classify'"
  fm=/usr/share/datasets/fashion-mnist
  if [ ! -f "$fm/t10k-images-idx3-ubyte.gz" ]; then
    ok "classify runs # skip $fm is absent"
  elif check "installed lucid trains a checkpoint (fashion_mnist.lua --quick)" \
    "$P/bin/lucid" examples/fashion_mnist.lua --quick --checkpoint "$tmp/fm.safetensors"; then
    expect "classify runs" "^classify: OK 200 images" env LD_LIBRARY_PATH="$P/lib" "$tmp/classify" \
      examples/fashion_model.lua "$tmp/fm.safetensors" "$fm/t10k-images-idx3-ubyte.gz" \
      "$fm/t10k-labels-idx1-ubyte.gz" 200
  fi

  # Each installed header compiles alone (lucid_lua.h with lucid-lua's flags, which add Lua's).
  for h in "$P"/include/lucid/*.h; do
    name=${h##*/}
    pc=lucid
    [ "$name" = lucid_lua.h ] && pc=lucid-lua
    printf '#include "%s"\nint main(void) { return 0; }\n' "$name" >"$tmp/hdr.c"
    check "installed $name compiles on its own" \
      sh -c "$CCW \$(pkg-config --cflags $pc) -c '$tmp/hdr.c' -o '$tmp/hdr.o'"
  done

  # docs/embedding.md's complete programs (the ```c blocks with a main), each built with the
  # command line the doc gives right after it (`cc NAME.c $(pkg-config ...) -o OUT`) and checked
  # against the output the doc shows. awk writes block n to doc<n>.c and, into doc<n>.cmd, the
  # first such command within the 6 lines after the block.
  mkdir -p "$tmp/doc"
  awk -v dir="$tmp/doc" '
    /^```c$/ { n++; f = dir "/doc" n ".c"; inblock = 1; next }
    /^```/ && inblock { inblock = 0; close(f); after = 6; next }
    inblock { print > f; next }
    after > 0 {
      after--
      if (match($0, /cc [a-z_]+\.c [^`&]*-o [a-z_]+/)) {
        print substr($0, RSTART, RLENGTH) > (dir "/doc" n ".cmd"); after = 0
      }
    }' docs/embedding.md
  docs_run=0
  for f in "$tmp"/doc/doc*.c; do
    grep -q '^int main(' "$f" || continue
    docs_run=$((docs_run + 1))
    cmd=$(cat "${f%.c}.cmd" 2>/dev/null)
    src=$(echo "$cmd" | sed -n 's/^cc \([a-z_]*\.c\) .*/\1/p')
    out=$(echo "$cmd" | sed -n 's/.* -o \([a-z_]*\)$/\1/p')
    if [ -z "$src" ] || [ -z "$out" ]; then
      echo "no 'cc NAME.c ... -o OUT' line after the program of ${f##*/}" >"$tmp/out"
      not_ok "docs/embedding.md: ${f##*/} has a build command" "$tmp/out"
      continue
    fi
    cp "$f" "$tmp/doc/$src"
    check "docs/embedding.md: $cmd" sh -c "cd '$tmp/doc' && $CCW ${cmd#cc }" || continue
    case $src in
      example.c) want1="loss = 21"; want2="dloss/dw = tensor([[5.], [7.], [9.]])" ;;
      *) want1="sum = 12, rows = 2"; want2="still usable after lua_close: 1 element(s)" ;;
    esac
    env LD_LIBRARY_PATH="$P/lib" "$tmp/doc/$out" >"$tmp/docprog.out" 2>&1
    rc=$?
    echo "exit $rc; the doc says it prints '$want1' and '$want2'" >>"$tmp/docprog.out"
    if [ "$rc" -eq 0 ] && grep -qxF -- "$want1" "$tmp/docprog.out" &&
      grep -qxF -- "$want2" "$tmp/docprog.out" && grep -qF -- "$want1" docs/embedding.md &&
      grep -qF -- "$want2" docs/embedding.md; then
      ok "docs/embedding.md: $src prints what the doc says"
    else
      not_ok "docs/embedding.md: $src prints what the doc says" "$tmp/docprog.out"
    fi
  done
  echo "found $docs_run" >"$tmp/out"
  if [ "$docs_run" -eq 2 ]; then ok "docs/embedding.md has its two complete programs"; else
    not_ok "docs/embedding.md has its two complete programs" "$tmp/out"
  fi

  # Stock lua5.4 against the installed tree, from a directory without lucid in it.
  lmod=$(pkg-config --variable=INSTALL_LMOD lucid-lua)
  cmod=$(pkg-config --variable=INSTALL_CMOD lucid-lua)
  cat >"$tmp/stock.lua" <<EOF
package.path = "$lmod/?.lua;$lmod/?/init.lua;" .. package.path
package.cpath = "$cmod/?.so;" .. package.cpath
local l = require "lucid"
print(l.ones(2))
assert(package.searchpath("lucid", package.path):find("$lmod", 1, true) == 1)
assert(package.searchpath("lucid.core", package.cpath):find("$cmod", 1, true) == 1)
local y = l.nn.Sequential(l.nn.Linear(2, 3), l.nn.ReLU())(l.ones(4, 2))
print("stock lua5.4 shape", y.shape[1], y.shape[2])
EOF
  (cd "$tmp" && lua5.4 stock.lua) >"$tmp/stock.out" 2>&1
  expect "stock lua5.4 requires the installed lucid and lucid.nn" "stock lua5.4 shape	4	3" cat "$tmp/stock.out"
  expect "stock lua5.4: print(lucid.ones(2))" "^tensor(\[1., 1.\])" cat "$tmp/stock.out"
  expect "installed interpreter runs" "^tensor(\[1., 1.\])" \
    sh -c "cd '$tmp' && '$P/bin/lucid' -e 'print(require(\"lucid\").ones(2))'"
  # lucid.distributed from the installed tree: the interpreter finds lib/lua/5.4/lucid/mpi.so
  # beside itself, stock lua5.4 through package.cpath
  if command -v mpirun >/dev/null 2>&1 && [ -e "$cmod/lucid/mpi.so" ]; then
    cat >"$tmp/dist.lua" <<EOF
package.path = "$lmod/?.lua;$lmod/?/init.lua;" .. package.path
package.cpath = "$cmod/?.so;" .. package.cpath
local l = require "lucid"
local d = require "lucid.distributed"
d.init()
local t = d.all_reduce(l.ones(3))
if d.rank() == 1 then print("all_reduce over " .. d.world_size() .. ": " .. t[1]:item()) end
d.finalize()
EOF
    mpi="mpirun --allow-run-as-root --oversubscribe -np 2"
    expect "installed interpreter runs lucid.distributed under mpirun" "^all_reduce over 2: 2.0" \
      sh -c "cd '$tmp' && $mpi '$P/bin/lucid' dist.lua"
    expect "stock lua5.4 runs the installed lucid.distributed under mpirun" "^all_reduce over 2: 2.0" \
      sh -c "cd '$tmp' && $mpi lua5.4 dist.lua"
  else
    ok "lucid.distributed from the installed tree # skip Open MPI is absent"
  fi
  unset PKG_CONFIG_PATH
}

if check "make install PREFIX=<tmp>" mk install PREFIX="$P"; then use_prefix; fi
check "make uninstall PREFIX=<tmp>" mk uninstall PREFIX="$P"
leftovers "$P" >"$tmp/left"
if [ ! -s "$tmp/left" ]; then ok "uninstall leaves nothing"; else not_ok "uninstall leaves nothing" "$tmp/left"; fi

# ------------------------------------------------------------------ 2. DESTDIR, PREFIX=/usr/local
S=$tmp/stage

use_stage() {
  expect "staged lucid.pc says prefix=/usr/local" "^/usr/local\$" \
    env PKG_CONFIG_PATH="$S/usr/local/lib/pkgconfig" pkg-config --variable=prefix lucid
  # lua5.4's own default paths, moved into the stage: the layout is what stock lua5.4 searches.
  cat >"$tmp/default.lua" <<EOF
local function stage(p)
  assert(p:find("/usr/local/", 1, true), "no /usr/local entry in " .. p)
  return (p:gsub("/usr/local/", "$S/usr/local/"))
end
package.path, package.cpath = stage(package.path), stage(package.cpath)
local l = require "lucid"
assert(package.searchpath("lucid.core", package.cpath):find("$S", 1, true) == 1)
print("default paths find", l.ones(2):sum():item())
EOF
  expect "stock lua5.4's default /usr/local paths find the staged files" "default paths find	2" \
    sh -c "cd '$tmp' && lua5.4 default.lua"
}

if check "make install DESTDIR=<tmp> PREFIX=/usr/local" mk install DESTDIR="$S" PREFIX=/usr/local; then
  use_stage
fi
check "make uninstall DESTDIR=<tmp> PREFIX=/usr/local" mk uninstall DESTDIR="$S" PREFIX=/usr/local
leftovers "$S" >"$tmp/left"
if [ ! -s "$tmp/left" ]; then ok "DESTDIR uninstall leaves nothing"; else not_ok "DESTDIR uninstall leaves nothing" "$tmp/left"; fi

# ------------------------------------------------------------------ the rockspec
# luarocks is not needed: load the rockspec as luarocks does (a chunk setting globals), check its
# fields, and that the make targets it names exist.
cat >"$tmp/rockspec.lua" <<'EOF'
local path = arg[1]
local env = {}
local chunk = assert(loadfile(path, "t", env))
chunk()
local function need(cond, what) if not cond then error(path .. ": " .. what, 0) end end
need(env.package == "lucid", "package must be \"lucid\"")
need(type(env.version) == "string"
  and path:find(env.package .. "-" .. env.version .. ".rockspec", 1, true) ~= nil,
  "version must match the file name")
need(type(env.source) == "table" and type(env.source.url) == "string", "source.url missing")
need(type(env.description) == "table" and type(env.description.summary) == "string",
  "description.summary missing")
need(type(env.dependencies) == "table", "dependencies missing")
local b = env.build
need(type(b) == "table" and b.type == "make", "build.type must be \"make\"")
need(type(b.install_variables) == "table", "build.install_variables missing")
for _, k in ipairs{"LUA_LDIR", "LUA_CDIR"} do
  need(type(b.install_variables[k]) == "string", "install_variables." .. k .. " missing")
end
print(b.build_target or "", b.install_target or "install")
print("rockspec ok")
EOF
expect "lucid-scm-1.rockspec is valid Lua with a make build" "^rockspec ok" lua5.4 "$tmp/rockspec.lua" lucid-scm-1.rockspec
targets=$(head -n 1 "$tmp/out")
for t in $targets; do
  check "rockspec make target '$t' exists" mk -n "$t" PREFIX="$tmp/rock" LUA_LDIR="$tmp/rock/lua" LUA_CDIR="$tmp/rock/lib" BINDIR="$tmp/rock/bin"
done

# `luarocks make` itself, into a tree of its own, when luarocks is installed (optional:
# install-deps.sh does not install it); then stock lua5.4 loads lucid from that tree.
cd "$ROOT" || exit 1
if command -v luarocks >/dev/null 2>&1; then
  expect "luarocks make installs lucid into a tree" "lucid scm-1 is now installed" \
    luarocks --lua-version 5.4 --tree "$tmp/rocktree" make lucid-scm-1.rockspec
  expect "stock lua5.4 loads lucid from the luarocks tree" "LinearBackward" \
    env LUA_PATH="$tmp/rocktree/share/lua/5.4/?.lua;$tmp/rocktree/share/lua/5.4/?/init.lua" \
    LUA_CPATH="$tmp/rocktree/lib/lua/5.4/?.so" \
    lua5.4 -e 'local l = require "lucid"; print(l.nn.Linear(2, 3)(l.ones(1, 2)))'
else
  echo "ok - luarocks make # skip: luarocks is not installed"
fi

echo "install tests: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
