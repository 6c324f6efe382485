# lucid - build, test, bench.  `make demo` and `make test` do all set-up themselves.
.SUFFIXES:

ifeq ($(origin CC),default)
CC = cc
endif
BUILD    ?= build
# -O3: GCC's -O2 leaves the elementwise loops scalar. ARCH may be overridden for portable builds.
ARCH     ?= -march=native
OPT      ?= -O3 $(ARCH) -fno-math-errno
SAN      ?=
PKGS      = lua5.4 openblas
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
WARN      = -Wall -Wextra -Werror -Wno-unused-parameter
CFLAGS_ALL = -std=c11 -D_GNU_SOURCE $(WARN) $(OPT) $(SAN) -fPIC -Iinclude $(PKG_CFLAGS) $(CFLAGS)
LDLIBS_ALL = $(SAN) $(PKG_LIBS) -lz -lm -lpthread $(LDLIBS)

# Layers, lowest first (docs/CONTRIBUTING.md). liblucid holds everything below the Lua binding.
CORE_SRC  = $(wildcard src/core/*.c src/kernels/*.c src/autograd/*.c src/ops/*.c src/io/*.c \
                       src/nn/*.c)
LUA_SRC   = $(wildcard src/lua/*.c)
LUA_FILES = $(shell find lua -name '*.lua' | sort)
TEST_SRC  = $(wildcard tests/*.c)

CORE_OBJ  = $(CORE_SRC:%.c=$(BUILD)/obj/%.o)
LUA_OBJ   = $(LUA_SRC:%.c=$(BUILD)/obj/%.o)
TEST_OBJ  = $(TEST_SRC:%.c=$(BUILD)/obj/%.o)

LIB       = $(BUILD)/liblucid.a
LUAMOD    = $(BUILD)/lua/lucid/core.so
CLI       = $(BUILD)/bin/lucid
CTESTS    = $(BUILD)/bin/lucid-tests
DEPS_OK   = $(BUILD)/.deps-ok

.PHONY: all ctest-one deps demo demo-text bench-text test check-asan check-leaks bench fixtures format clean

all: $(DEPS_OK)
	@$(MAKE) --no-print-directory $(LIB) $(LUAMOD) $(CLI) $(CTESTS)

# Installs missing Debian packages once (apt-get as root, or through sudo).
$(DEPS_OK): tools/install-deps.sh
	sh tools/install-deps.sh
	@mkdir -p $(BUILD) && touch $@

deps:
	sh tools/install-deps.sh

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(LIB): $(CORE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $(CORE_OBJ)

$(LUAMOD): $(LUA_OBJ) $(BUILD)/obj/gen/embedded_lua.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $(LUA_OBJ) $(BUILD)/obj/gen/embedded_lua.o $(LIB) $(SAN) $(shell pkg-config --libs openblas) -lz -lm -lpthread

# The interpreter carries lucid's Lua files inside it, so it runs from any directory.
$(BUILD)/gen/embedded_lua.c: $(LUA_FILES) tools/embed-lua.lua
	@mkdir -p $(dir $@)
	lua5.4 tools/embed-lua.lua lua $@ $(LUA_FILES)

$(BUILD)/obj/gen/embedded_lua.o: $(BUILD)/gen/embedded_lua.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(CLI): $(BUILD)/obj/src/cli/lucid.o $(BUILD)/obj/gen/embedded_lua.o $(LUA_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/obj/src/cli/lucid.o: src/cli/lucid.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(CTESTS): $(TEST_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $(TEST_OBJ) $(LIB) $(LDLIBS_ALL)

# Builds a test binary with only tests/main.c and T (e.g. T=tests/test_reduce.c) and runs it:
# lets one part of the core be tested while other parts are still being written.
ctest-one: $(LIB)
	@mkdir -p $(BUILD)/bin
	$(CC) $(CFLAGS_ALL) -o $(BUILD)/bin/ctest-one tests/main.c tests/gradcheck.c $(T) $(LIB) $(LDLIBS_ALL)
	$(BUILD)/bin/ctest-one

# The main job: trains a CNN on Fashion-MNIST (examples/fashion_mnist.lua; docs/tutorial.md).
# DEMO_ARGS passes options, e.g. make demo DEMO_ARGS="--epochs 2".
demo: all
	$(CLI) examples/fashion_mnist.lua --checkpoint $(BUILD)/fashion_mnist.safetensors $(DEMO_ARGS)

# The second main job: a character-level language model on the text of Debian's fortunes
# package (examples/char_lm.lua; docs/tutorial.md, "A text model"), then a sample from it.
# DEMO_ARGS passes options, e.g. make demo-text DEMO_ARGS="--model lstm".
demo-text: all
	$(CLI) examples/char_lm.lua --checkpoint $(BUILD)/char_lm.safetensors $(DEMO_ARGS)
	$(CLI) examples/char_lm.lua --checkpoint $(BUILD)/char_lm.safetensors --sample "The "

# Prints "N passed, N failed" last (C tests and busted specs summed); non-zero on any failure.
test: all
	sh tools/run-tests.sh $(BUILD)

# ASan + UBSan over the C tests and the specs (run through the sanitized interpreter).
check-asan: $(DEPS_OK)
	@$(MAKE) --no-print-directory BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer" \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=all" \
	  build-asan/liblucid.a build-asan/bin/lucid build-asan/bin/lucid-tests
	ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tools/lsan.supp \
	  UBSAN_OPTIONS=print_stacktrace=1 sh tools/run-tests.sh build-asan asan

check-leaks: check-asan

# cblas_sgemm called directly from C: the yardstick for lucid's matmul.
$(BUILD)/bin/bench-blas: bench/blas.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(LDLIBS_ALL)

# The text model in lucid and in PyTorch for the same steps: validation bpc within 0.05 (issue 14).
bench-text: all
	sh bench/char_lm.sh $(BUILD)

bench: all
	@$(MAKE) --no-print-directory $(BUILD)/bin/bench-blas
	sh bench/run.sh $(BUILD)

# Each script under tools/fixtures/ writes spec/fixtures/<its name>.lua with PyTorch 1.13.
fixtures:
	/usr/bin/python3 tools/make-fixtures.py
	/usr/bin/python3 tools/make-nn-fixtures.py
	for f in tools/fixtures/*.py; do [ -e "$$f" ] || continue; /usr/bin/python3 "$$f" || exit 1; done

format:
	clang-format -i $$(find include src tests -name '*.[ch]')

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# Install, shared library and embedding targets live in mk/ (one file per concern).
-include $(wildcard mk/*.mk)
