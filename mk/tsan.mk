# mk/tsan.mk - ThreadSanitizer over the threaded parts (issue 12, item 6):
#
#   make check-tsan   builds build-tsan/ with -fsanitize=thread and runs the C tests (the
#                     thread pool's reductions, matmuls and convolutions among them), the
#                     threaded embedding example (two lua_States training at once on two
#                     threads) and the single-state host; any report fails the run
#                     (halt_on_error). Prints "N passed, N failed" last.
TSAN_RUN = TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1"

.PHONY: check-tsan
check-tsan: $(DEPS_OK)
	@$(MAKE) --no-print-directory BUILD=build-tsan OPT="-O1 -g" SAN="-fsanitize=thread" \
	  build-tsan/bin/lucid-tests build-tsan/bin/embed-threads build-tsan/bin/embed-host
	@pass=0; fail=0; \
	for t in "lucid-tests" "embed-threads examples/embed/train.lua" "embed-host examples/embed/model.lua"; do \
	  set -- $$t; \
	  if $(TSAN_RUN) build-tsan/bin/$$1 $$2 >build-tsan/tsan-$$1.log 2>&1; then \
	    echo "ok - tsan $$1"; pass=$$((pass + 1)); \
	  else tail -40 build-tsan/tsan-$$1.log; echo "not ok - tsan $$1"; fail=$$((fail + 1)); fi; \
	done; echo "$$pass passed, $$fail failed"; [ $$fail -eq 0 ]
