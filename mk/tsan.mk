# mk/tsan.mk - ThreadSanitizer over the threaded parts (issue 12, item 6):
#
#   make check-tsan   builds build-tsan/ with -fsanitize=thread and runs the C tests (the
#                     thread pool's reductions, matmuls and convolutions among them), the
#                     threaded embedding example (two lua_States training at once on two
#                     threads) and the single-state host; any report fails the run
#                     (halt_on_error). With Open MPI, also the distributed C test on 2
#                     processes (the communication thread, shared buffers released on the
#                     caller's thread) over Open MPI's shared-memory transport: its TCP one
#                     reports a lock-order inversion inside Open MPI itself. Prints
#                     "N passed, N failed" last.
TSAN_RUN = TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1"
TSAN_MPI = $(if $(MPI_PC),$(shell command -v mpirun >/dev/null 2>&1 && echo yes))
TSAN_MPIRUN = mpirun --allow-run-as-root --oversubscribe --mca btl self,vader -x TSAN_OPTIONS -np 2

.PHONY: check-tsan
check-tsan: $(DEPS_OK)
	@$(MAKE) --no-print-directory BUILD=build-tsan OPT="-O1 -g" SAN="-fsanitize=thread" \
	  build-tsan/bin/lucid-tests build-tsan/bin/embed-threads build-tsan/bin/embed-host \
	  $(if $(TSAN_MPI),build-tsan/bin/lucid-dist-c-test)
	@pass=0; fail=0; \
	for t in "lucid-tests" "embed-threads examples/embed/train.lua" "embed-host examples/embed/model.lua"; do \
	  set -- $$t; \
	  if $(TSAN_RUN) build-tsan/bin/$$1 $$2 >build-tsan/tsan-$$1.log 2>&1; then \
	    echo "ok - tsan $$1"; pass=$$((pass + 1)); \
	  else tail -40 build-tsan/tsan-$$1.log; echo "not ok - tsan $$1"; fail=$$((fail + 1)); fi; \
	done; \
	if [ -n "$(TSAN_MPI)" ]; then \
	  if $(TSAN_RUN) $(TSAN_MPIRUN) build-tsan/bin/lucid-dist-c-test >build-tsan/tsan-dist.log 2>&1; then \
	    echo "ok - tsan lucid-dist-c-test (2 processes)"; pass=$$((pass + 1)); \
	  else tail -40 build-tsan/tsan-dist.log; echo "not ok - tsan lucid-dist-c-test"; fail=$$((fail + 1)); fi; \
	else echo "# skip tsan lucid-dist-c-test: Open MPI is absent"; fi; \
	echo "$$pass passed, $$fail failed"; [ $$fail -eq 0 ]
