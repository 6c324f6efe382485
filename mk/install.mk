# mk/install.mk - shared libraries, pkg-config files, `make install` / `make uninstall`, and the
# targets the rockspec (lucid-scm-1.rockspec) calls. Included at the end of the Makefile.
#
#   make install   [PREFIX=/usr/local] [DESTDIR=]   (also LIBDIR, INCLUDEDIR, LUA_LDIR, ...)
#   make uninstall [PREFIX=/usr/local] [DESTDIR=]   removes exactly the files install puts
#
# What goes where (PREFIX=/usr/local):
#   bin/lucid                                 the interpreter (lucid statically linked in)
#   lib/liblucid.a, lib/liblucid.so.0.1.0     the C core (include/lucid.h, lucid_nn.h, ...; no Lua)
#     lib/liblucid.so.0 -> liblucid.so.0.1.0  (soname), lib/liblucid.so -> liblucid.so.0
#   lib/liblucid-lua.a, lib/liblucid-lua.so.* the Lua binding for C hosts (lucid_lua.h: lucid_preload,
#                                             lucid_push_tensor, ...) with every lua/lucid file
#                                             compiled in; needs liblucid and liblua5.4
#   include/lucid/*.h                         -I$(PREFIX)/include/lucid (pkg-config says so), so
#                                             `#include "lucid.h"` and <lucid/lucid.h> both work
#   lib/pkgconfig/lucid.pc, lucid-lua.pc
#   share/lua/5.4/lucid/**.lua                where stock lua5.4 looks (package.path)
#   lib/lua/5.4/lucid/core.so                 where stock lua5.4 looks (package.cpath); a
#                                             self-contained module (the core linked in statically)
#   lib/lua/5.4/lucid/mpi.so, lib/liblucid_distributed.a
#                                             with Open MPI only (mk/distributed.mk): the module
#                                             behind lucid.distributed, the C collectives
#
# ARCH defaults to -march=native (see the Makefile): for binaries meant for other machines build
# with e.g. `make install ARCH=-march=x86-64-v2` from a clean BUILD directory.

PREFIX       ?= /usr/local
DESTDIR      ?=
BINDIR       ?= $(PREFIX)/bin
LIBDIR       ?= $(PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
LUA_LDIR     ?= $(PREFIX)/share/lua/5.4
LUA_CDIR     ?= $(PREFIX)/lib/lua/5.4

INSTALL      ?= install

LUCID_VER    := $(shell sed -n 's/^\#define LUCID_VERSION "\(.*\)"/\1/p' include/lucid_core.h)
LUCID_SOMAJOR = $(firstword $(subst ., ,$(LUCID_VER)))

SO_CORE      = $(BUILD)/liblucid.so.$(LUCID_VER)
SO_LUA       = $(BUILD)/liblucid-lua.so.$(LUCID_VER)
LIB_LUA      = $(BUILD)/liblucid-lua.a
PC_FILES     = $(BUILD)/pkgconfig/lucid.pc $(BUILD)/pkgconfig/lucid-lua.pc
EMBED_LUA_OBJ = $(BUILD)/obj/gen/embedded_lua.o

# What the core needs at link time besides itself (also Libs.private of lucid.pc).
LUCID_DEPLIBS = $(SAN) $(CORE_LIBS)
# Shared objects must resolve every symbol (not possible under the sanitizers' runtime).
SO_DEFS      = $(if $(SAN),,-Wl,--no-undefined)

.PHONY: shared install uninstall install-lua install-rock lua-rock pkgconfig

shared: $(SO_CORE) $(SO_LUA) $(LIB_LUA)

$(SO_CORE): $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,liblucid.so.$(LUCID_SOMAJOR) $(SO_DEFS) -o $@ $(CORE_OBJ) $(LUCID_DEPLIBS)
	ln -sf liblucid.so.$(LUCID_VER) $(BUILD)/liblucid.so.$(LUCID_SOMAJOR)
	ln -sf liblucid.so.$(LUCID_SOMAJOR) $(BUILD)/liblucid.so

$(LIB_LUA): $(LUA_OBJ) $(EMBED_LUA_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $(LUA_OBJ) $(EMBED_LUA_OBJ)

# Linked against liblucid.so.0 (the soname), not a second copy of the core.
$(SO_LUA): $(LUA_OBJ) $(EMBED_LUA_OBJ) $(SO_CORE)
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,liblucid-lua.so.$(LUCID_SOMAJOR) $(SO_DEFS) -o $@ $(LUA_OBJ) \
	  $(EMBED_LUA_OBJ) -L$(BUILD) -llucid $(shell pkg-config --libs lua5.4) $(LUCID_DEPLIBS) -ldl
	ln -sf liblucid-lua.so.$(LUCID_VER) $(BUILD)/liblucid-lua.so.$(LUCID_SOMAJOR)
	ln -sf liblucid-lua.so.$(LUCID_SOMAJOR) $(BUILD)/liblucid-lua.so

# The .pc files depend on the install directories, so they are regenerated on every use.
pkgconfig:
	@mkdir -p $(BUILD)/pkgconfig
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' \
	  -e 's|@VERSION@|$(LUCID_VER)|g' -e 's|@LUA_LDIR@|$(LUA_LDIR)|g' -e 's|@LUA_CDIR@|$(LUA_CDIR)|g' \
	  lucid.pc.in >$(BUILD)/pkgconfig/lucid.pc
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' \
	  -e 's|@VERSION@|$(LUCID_VER)|g' -e 's|@LUA_LDIR@|$(LUA_LDIR)|g' -e 's|@LUA_CDIR@|$(LUA_CDIR)|g' \
	  lucid-lua.pc.in >$(BUILD)/pkgconfig/lucid-lua.pc

# Installed file lists (relative to their directory). Computed from the tree, so uninstall
# removes what an install from the same tree put.
INST_HEADERS = $(notdir $(wildcard include/*.h))
INST_LUA     = $(patsubst lua/%,%,$(LUA_FILES))
INST_LIBS    = liblucid.a liblucid.so.$(LUCID_VER) liblucid.so.$(LUCID_SOMAJOR) liblucid.so \
               liblucid-lua.a liblucid-lua.so.$(LUCID_VER) liblucid-lua.so.$(LUCID_SOMAJOR) liblucid-lua.so

install: $(LIB) $(LUAMOD) $(CLI) $(DIST_TARGETS) shared pkgconfig install-lua
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR)/lucid \
	  $(DESTDIR)$(PKGCONFIGDIR)
	$(INSTALL) -m 755 $(CLI) $(DESTDIR)$(BINDIR)/lucid
	$(INSTALL) -m 644 $(LIB) $(LIB_LUA) $(DESTDIR)$(LIBDIR)/
	$(INSTALL) -m 755 $(SO_CORE) $(SO_LUA) $(DESTDIR)$(LIBDIR)/
	ln -sf liblucid.so.$(LUCID_VER) $(DESTDIR)$(LIBDIR)/liblucid.so.$(LUCID_SOMAJOR)
	ln -sf liblucid.so.$(LUCID_SOMAJOR) $(DESTDIR)$(LIBDIR)/liblucid.so
	ln -sf liblucid-lua.so.$(LUCID_VER) $(DESTDIR)$(LIBDIR)/liblucid-lua.so.$(LUCID_SOMAJOR)
	ln -sf liblucid-lua.so.$(LUCID_SOMAJOR) $(DESTDIR)$(LIBDIR)/liblucid-lua.so
	$(INSTALL) -m 644 $(addprefix include/,$(INST_HEADERS)) $(DESTDIR)$(INCLUDEDIR)/lucid/
	$(INSTALL) -m 644 $(PC_FILES) $(DESTDIR)$(PKGCONFIGDIR)/
	$(if $(MPI_PC),$(INSTALL) -m 644 $(DIST_LIB) $(DESTDIR)$(LIBDIR)/)

# The Lua module alone: what stock lua5.4 (and the rockspec) needs.
install-lua: $(LUAMOD) $(if $(MPI_PC),$(MPIMOD))
	$(INSTALL) -d $(DESTDIR)$(LUA_CDIR)/lucid
	$(INSTALL) -m 755 $(LUAMOD) $(DESTDIR)$(LUA_CDIR)/lucid/core.so
	$(if $(MPI_PC),$(INSTALL) -m 755 $(MPIMOD) $(DESTDIR)$(LUA_CDIR)/lucid/mpi.so)
	for f in $(INST_LUA); do \
	  $(INSTALL) -d "$(DESTDIR)$(LUA_LDIR)/$$(dirname $$f)" && \
	  $(INSTALL) -m 644 "lua/$$f" "$(DESTDIR)$(LUA_LDIR)/$$f" || exit 1; \
	done

# Directories below are lucid's own (…/include/lucid, …/lua/5.4/lucid): removed when left empty.
# Shared directories (bin, lib, include, ...) are never removed.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/lucid
	rm -f $(addprefix $(DESTDIR)$(LIBDIR)/,$(INST_LIBS))
	rm -f $(addprefix $(DESTDIR)$(INCLUDEDIR)/lucid/,$(INST_HEADERS))
	rm -f $(DESTDIR)$(PKGCONFIGDIR)/lucid.pc $(DESTDIR)$(PKGCONFIGDIR)/lucid-lua.pc
	rm -f $(DESTDIR)$(LUA_CDIR)/lucid/core.so $(DESTDIR)$(LUA_CDIR)/lucid/mpi.so
	rm -f $(DESTDIR)$(LIBDIR)/liblucid_distributed.a
	rm -f $(addprefix $(DESTDIR)$(LUA_LDIR)/,$(INST_LUA))
	for d in $(DESTDIR)$(INCLUDEDIR)/lucid $(DESTDIR)$(LUA_CDIR)/lucid \
	    $$(cd lua && find lucid -type d | sort -r | sed 's|^|$(DESTDIR)$(LUA_LDIR)/|'); do \
	  if [ -d "$$d" ]; then rmdir "$$d" 2>/dev/null || echo "uninstall: kept $$d (not empty)"; fi; \
	done

# For `luarocks make` (lucid-scm-1.rockspec): builds the module and the interpreter without the
# Debian dependency step of `make all`.
lua-rock: $(LUAMOD) $(CLI)

install-rock: install-lua $(CLI)
	$(INSTALL) -d $(DESTDIR)$(BINDIR)
	$(INSTALL) -m 755 $(CLI) $(DESTDIR)$(BINDIR)/lucid
