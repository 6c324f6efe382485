# mk/fuzz.mk - libFuzzer harnesses of the file readers (tests/fuzz/fuzz_*.c), built with clang
# against a sanitized liblucid of their own (build-fuzz/):
#
#   make fuzz FUZZ_SECONDS=N   builds every fuzzer and runs each for N seconds (default 60)
#                              from its committed seed corpus tests/fuzz/<name>/ (written by
#                              tools/fuzz-corpus.lua); what it finds new goes to
#                              build-fuzz/corpus/<name>/, crashes to build-fuzz/crash-<name>-*.
#
# The Lua API fuzzer, tests/fuzz/lua_api.lua, runs too, under the ASan/UBSan interpreter
# (build-asan/bin/lucid): random calls of the API with random arguments from a grammar.
#
# A crash found becomes a regression test: its input goes into the seed corpus (every run
# replays it) and the fix gets a C test or spec. .ci/run runs `make fuzz FUZZ_SECONDS=20`.

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_SAN      = -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_NAMES    = safetensors idx onnx
FUZZ_BINS     = $(FUZZ_NAMES:%=build-fuzz/bin/fuzz-%)

.PHONY: fuzz fuzz-build fuzz-lua-build
fuzz-build: $(DEPS_OK)
	@command -v $(FUZZ_CC) >/dev/null || { echo "fuzz: $(FUZZ_CC) is not installed (tools/install-deps.sh installs clang)"; exit 1; }
	@$(MAKE) --no-print-directory CC=$(FUZZ_CC) BUILD=build-fuzz OPT="-O1 -g -fno-omit-frame-pointer" \
	  SAN="$(FUZZ_SAN) -fsanitize=fuzzer-no-link" build-fuzz/liblucid.a
	@$(MAKE) --no-print-directory $(FUZZ_BINS)

build-fuzz/bin/fuzz-%: tests/fuzz/fuzz_%.c build-fuzz/liblucid.a
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -std=c11 -O1 -g $(FUZZ_SAN) -fsanitize=fuzzer -Iinclude $< build-fuzz/liblucid.a \
	  $(PKG_LIBS) -lz -lm -lpthread -o $@

# The Lua API fuzzer (tests/fuzz/lua_api.lua) runs under the interpreter of check-asan's build.
fuzz-lua-build: $(DEPS_OK)
	@$(MAKE) --no-print-directory BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer" \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=all" build-asan/bin/lucid

# Prints "N passed, N failed" last (one count per fuzzer), as the test targets do.
fuzz: fuzz-build fuzz-lua-build
	@pass=0; fail=0; for n in $(FUZZ_NAMES); do \
	  mkdir -p build-fuzz/corpus/$$n; \
	  echo "fuzz: $$n for $(FUZZ_SECONDS) s"; \
	  if UBSAN_OPTIONS=print_stacktrace=1 build-fuzz/bin/fuzz-$$n -max_total_time=$(FUZZ_SECONDS) \
	    -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 -print_final_stats=0 \
	    -artifact_prefix=build-fuzz/crash-$$n- build-fuzz/corpus/$$n tests/fuzz/$$n \
	    2>build-fuzz/fuzz-$$n.log; then \
	  grep -E "Done [0-9]+ runs" build-fuzz/fuzz-$$n.log | tail -1; \
	  echo "ok - fuzz $$n"; pass=$$((pass + 1)); \
	  else tail -40 build-fuzz/fuzz-$$n.log; echo "not ok - fuzz $$n"; fail=$$((fail + 1)); fi; \
	done; \
	echo "fuzz: lua_api for $(FUZZ_SECONDS) s"; \
	if ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tools/lsan.supp \
	  UBSAN_OPTIONS=print_stacktrace=1 build-asan/bin/lucid tests/fuzz/lua_api.lua $(FUZZ_SECONDS) \
	  >build-fuzz/fuzz-lua_api.log 2>&1; then \
	  grep "lua_api fuzzer:" build-fuzz/fuzz-lua_api.log; echo "ok - fuzz lua_api"; pass=$$((pass + 1)); \
	else tail -40 build-fuzz/fuzz-lua_api.log; echo "not ok - fuzz lua_api"; fail=$$((fail + 1)); fi; \
	echo "$$pass passed, $$fail failed"; [ $$fail -eq 0 ]
