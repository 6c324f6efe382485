# mk/distributed.mk - data-parallel training over MPI (docs/distributed.md): the C library
# liblucid_distributed.a (src/distributed, include/lucid_distributed.h) and the Lua module
# lucid.mpi (build/lua/lucid/mpi.so, src/lua/distributed) behind lua/lucid/distributed.lua.
# Only these link with MPI (Open MPI: libopenmpi-dev); without it they are skipped and the rest
# of lucid builds as before. Included at the end of the Makefile.

MPI_PC      := $(shell pkg-config --exists ompi-c 2>/dev/null && echo ompi-c)
MPI_CFLAGS  := $(if $(MPI_PC),$(shell pkg-config --cflags $(MPI_PC)))
MPI_LIBS    := $(if $(MPI_PC),$(shell pkg-config --libs $(MPI_PC)))

DIST_SRC     = $(wildcard src/distributed/*.c)
DIST_OBJ     = $(DIST_SRC:%.c=$(BUILD)/obj/%.o)
DIST_LUA_OBJ = $(BUILD)/obj/src/lua/distributed/mpi.o
DIST_LIB     = $(BUILD)/liblucid_distributed.a
MPIMOD       = $(BUILD)/lua/lucid/mpi.so
DIST_CTEST   = $(BUILD)/bin/lucid-dist-c-test
# what `all` builds: nothing without MPI
DIST_TARGETS = $(if $(MPI_PC),$(DIST_LIB) $(MPIMOD) $(DIST_CTEST))

$(DIST_OBJ) $(DIST_LUA_OBJ): CFLAGS_ALL += $(MPI_CFLAGS)

$(DIST_LIB): $(DIST_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $(DIST_OBJ)

# lucid.core and the binding's helpers are left undefined: they resolve against the lucid.core
# already loaded (the interpreter exports its symbols; lua/lucid/distributed.lua makes a
# loaded core.so's global), so the process has one core.
$(MPIMOD): $(DIST_LUA_OBJ) $(DIST_LIB)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $(DIST_LUA_OBJ) $(DIST_LIB) $(SAN) $(MPI_LIBS) -lpthread

# The C API from a host without Lua (tests/distributed/c_api.c), run under mpirun by
# spec/distributed_spec.lua.
$(DIST_CTEST): tests/distributed/c_api.c $(DIST_LIB) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(MPI_CFLAGS) -o $@ $< $(DIST_LIB) $(LIB) $(LDLIBS_ALL) $(MPI_LIBS)
