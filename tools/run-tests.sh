#!/bin/sh
# Runs the C tests and the busted specs; prints "N passed, N failed" (both summed) last.
# usage: run-tests.sh BUILD_DIR [asan]
# In asan mode the specs run inside the sanitized `lucid` interpreter (which carries lucid
# itself), so every C line they reach is checked.
BUILD=${1:-build}
MODE=${2:-}
# spec/interpreter_spec.lua runs this build's interpreter
export LUCID_BIN="$BUILD/bin/lucid"
log=$(mktemp)
trap 'rm -f "$log"' EXIT

"$BUILD/bin/lucid-tests" >"$log" 2>&1
c_rc=$?
cat "$log"
c_pass=$(sed -n 's/^C tests: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$log" | tail -n 1)
c_fail=$(sed -n 's/^C tests: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$log" | tail -n 1)
if [ -z "$c_pass" ]; then c_pass=0; c_fail=1; echo "C tests: crashed or printed no summary (exit $c_rc)"; fi
if [ "$c_rc" -ne 0 ] && [ "$c_fail" -eq 0 ]; then c_fail=1; fi

if [ "$MODE" = asan ]; then
  "$BUILD/bin/lucid" "$(command -v busted)" -o TAP >"$log" 2>&1
else
  busted -o TAP >"$log" 2>&1
fi
b_rc=$?
cat "$log"
b_pass=$(grep -c '^ok ' "$log")
b_fail=$(grep -c '^not ok ' "$log")
if [ "$b_rc" -ne 0 ] && [ "$b_fail" -eq 0 ]; then b_fail=1; echo "busted: exited $b_rc"; fi
if ! grep -q '^1\.\.[0-9]' "$log"; then b_fail=$((b_fail + 1)); echo "busted: no TAP plan (crashed?)"; fi

pass=$((c_pass + b_pass))
fail=$((c_fail + b_fail))
echo "C tests: $c_pass passed, $c_fail failed; specs: $b_pass passed, $b_fail failed"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
