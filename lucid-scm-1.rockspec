-- lucid-scm-1.rockspec - `luarocks make` from a checkout builds lucid with its Makefile and
-- installs the Lua module (lucid/core.so and lua/lucid/**.lua) and the `lucid` interpreter.
-- Build requirements: a C11 compiler, make, pkg-config, the Lua 5.4 headers, OpenBLAS and
-- zlib (Debian: liblua5.4-dev libopenblas-dev zlib1g-dev pkg-config), and a `lua5.4` program on
-- PATH (it compiles lucid's Lua files into the binaries).
rockspec_format = "3.0"
package = "lucid"
version = "scm-1"
source = {
  -- set to the published repository before `luarocks install` / `luarocks pack`;
  -- `luarocks make` builds the checkout it is run from and does not read this
  url = "git+https://example.invalid/lucid.git",
}
description = {
  summary = "Tensors, autograd and neural-network modules in C11, scripted from Lua 5.4",
  detailed = [[
lucid is a small, embeddable deep-learning runtime with a PyTorch-like Lua API
(lucid.Tensor, lucid.nn, autograd). The C core has no Lua in it; the Lua module is
lucid.core (C) plus the lucid.* Lua files.]],
  labels = {"deep-learning", "tensor", "autograd", "neural-network"},
}
dependencies = {
  "lua >= 5.4, < 5.5",
}
-- OpenBLAS is found by the Makefile through pkg-config (Debian keeps cblas.h in a multiarch
-- directory, /usr/include/x86_64-linux-gnu/openblas-pthread, that a header check would miss).
external_dependencies = {
  ZLIB = {header = "zlib.h"},
}
build = {
  type = "make",
  -- mk/install.mk: builds build/lua/lucid/core.so and build/bin/lucid, without `make all`'s
  -- Debian package step
  build_target = "lua-rock",
  build_variables = {
    -- appended after lucid's own flags (-O3 stays); lucid finds OpenBLAS via pkg-config
    CFLAGS = "-I$(LUA_INCDIR) -I$(ZLIB_INCDIR)",
    LDLIBS = "-L$(ZLIB_LIBDIR)",
  },
  install_target = "install-rock",
  install_variables = {
    LUA_LDIR = "$(LUADIR)", -- lucid/init.lua, lucid/nn.lua, ...
    LUA_CDIR = "$(LIBDIR)", -- lucid/core.so
    BINDIR = "$(BINDIR)",   -- lucid (the interpreter)
  },
}
