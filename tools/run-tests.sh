#!/bin/sh
# Runs the C tests, the busted specs, the embedding examples, ONNX's node tests and (except in
# asan mode) the install test; prints "N passed, N failed" (all summed) last.
# usage: run-tests.sh BUILD_DIR [asan]
# In asan mode the specs run inside the sanitized `lucid` interpreter (which carries lucid
# itself), so every C line they reach is checked.
BUILD=${1:-build}
MODE=${2:-}
# spec/interpreter_spec.lua runs this build's interpreter
export LUCID_BIN="$BUILD/bin/lucid"
log=$(mktemp)
ckdir=""
trap 'rm -f "$log"; [ -z "$ckdir" ] || rm -rf "$ckdir"' EXIT

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
  # through lua5.4 explicitly: busted's `#!/usr/bin/env lua` finds whatever `lua` the system's
  # alternatives point to (installing luarocks, for one, makes it Lua 5.1)
  lua5.4 "$(command -v busted)" -o TAP >"$log" 2>&1
fi
b_rc=$?
cat "$log"
b_pass=$(grep -c '^ok ' "$log")
b_fail=$(grep -c '^not ok ' "$log")
if [ "$b_rc" -ne 0 ] && [ "$b_fail" -eq 0 ]; then b_fail=1; echo "busted: exited $b_rc"; fi
if ! grep -q '^1\.\.[0-9]' "$log"; then b_fail=$((b_fail + 1)); echo "busted: no TAP plan (crashed?)"; fi

# The embedding examples (examples/embed, built by mk/embed.mk with this build's flags, so
# sanitized in asan mode): each ends with a line saying what it verified.
e_pass=0
e_fail=0
run_example() { # NAME PATTERN COMMAND...
  name=$1
  pat=$2
  shift 2
  if [ ! -x "$1" ]; then
    echo "not ok - embed $name: $1 was not built"
    e_fail=$((e_fail + 1))
    return
  fi
  "$@" >"$log" 2>&1
  rc=$?
  cat "$log"
  if [ "$rc" -eq 0 ] && grep -q "$pat" "$log"; then
    echo "ok - embed $name"
    e_pass=$((e_pass + 1))
  else
    echo "not ok - embed $name (exit $rc)"
    e_fail=$((e_fail + 1))
  fi
}
run_example c_only '^c_only: OK' "$BUILD/bin/embed-c-only"
run_example host '^host: OK' "$BUILD/bin/embed-host" examples/embed/model.lua
run_example threads '^threads: OK' "$BUILD/bin/embed-threads" examples/embed/train.lua
run_example sandbox '^sandbox: OK' "$BUILD/bin/embed-sandbox"
run_example onnx '^onnx_host: OK' "$BUILD/bin/embed-onnx-host" spec/fixtures/onnx/text_encoder.onnx \
  spec/fixtures/onnx/text_encoder_b16_input.pb spec/fixtures/onnx/text_encoder_b16_output.pb

# classify.c: a checkpoint written by examples/fashion_mnist.lua --quick (2,000 training images,
# about 2 s, 3 s sanitized), then the host classifies test images read in C with it and must
# beat 50% (the quick model gets about 74%). N = 200 in asan mode, 1000 otherwise.
seconds() { date +%s.%N 2>/dev/null || date +%s; }
dataset=/usr/share/datasets/fashion-mnist
if [ ! -f "$dataset/t10k-images-idx3-ubyte.gz" ]; then
  echo "ok - embed classify # skip $dataset is absent"
  e_pass=$((e_pass + 1))
elif [ ! -x "$BUILD/bin/embed-classify" ]; then
  echo "not ok - embed classify: $BUILD/bin/embed-classify was not built"
  e_fail=$((e_fail + 1))
else
  n=1000
  [ "$MODE" = asan ] && n=200
  ckdir=$(mktemp -d)
  t0=$(seconds)
  "$BUILD/bin/lucid" examples/fashion_mnist.lua --quick --checkpoint "$ckdir/fm.safetensors" \
    >"$log" 2>&1
  rc=$?
  t1=$(seconds)
  if [ "$rc" -ne 0 ]; then
    cat "$log"
    echo "not ok - embed classify: training the checkpoint failed (exit $rc)"
    e_fail=$((e_fail + 1))
  else
    tail -n 2 "$log"
    "$BUILD/bin/embed-classify" examples/fashion_model.lua "$ckdir/fm.safetensors" \
      "$dataset/t10k-images-idx3-ubyte.gz" "$dataset/t10k-labels-idx1-ubyte.gz" "$n" >"$log" 2>&1
    rc=$?
    t2=$(seconds)
    cat "$log"
    acc=$(sed -n "s/^classify: OK $n images, accuracy \([0-9.]*\)%\$/\1/p" "$log")
    awk -v a="$t0" -v b="$t1" -v c="$t2" \
      'BEGIN { printf "# classify: training %.1f s, classifying %.1f s\n", b - a, c - b }'
    if [ "$rc" -eq 0 ] && [ -n "$acc" ] && awk -v a="$acc" 'BEGIN { exit !(a > 50) }'; then
      echo "ok - embed classify ($n images, accuracy $acc%)"
      e_pass=$((e_pass + 1))
    else
      echo "not ok - embed classify (exit $rc, accuracy ${acc:-none}; expected an OK line above 50%)"
      e_fail=$((e_fail + 1))
    fi
  fi
  rm -rf "$ckdir"
  ckdir=""
fi

# ONNX's backend node tests through lucid's ONNX runtime (tools/onnx-node-tests.c: per-op table,
# then "N passed, N failed"; the skips listed with reasons in tools/onnx-skip.txt). They come with
# Debian's libonnx-testdata, which tools/install-deps.sh installs.
o_pass=0
o_fail=0
if [ ! -d /usr/share/libonnx-testdata/data/node ]; then
  echo "ok - onnx node tests # skip /usr/share/libonnx-testdata is absent (Debian's libonnx-testdata)"
elif [ ! -x "$BUILD/bin/onnx-node-tests" ]; then
  echo "not ok - onnx node tests: $BUILD/bin/onnx-node-tests was not built"
  o_fail=1
else
  "$BUILD/bin/onnx-node-tests" -x tools/onnx-skip.txt >"$log" 2>&1
  o_rc=$?
  cat "$log"
  o_pass=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$log" | tail -n 1)
  o_fail=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$log" | tail -n 1)
  if [ -z "$o_pass" ]; then o_pass=0; o_fail=1; echo "onnx node tests: printed no summary (exit $o_rc)"; fi
  if [ "$o_rc" -ne 0 ] && [ "$o_fail" -eq 0 ]; then o_fail=1; fi
fi

# make install / uninstall into temporary directories and builds against the installation
# (tools/test-install.sh). Not in asan mode: it installs the regular, unsanitized build.
i_pass=0
i_fail=0
if [ "$MODE" != asan ]; then
  sh tools/test-install.sh "$BUILD" >"$log" 2>&1
  i_rc=$?
  cat "$log"
  i_pass=$(sed -n 's/^install tests: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$log" | tail -n 1)
  i_fail=$(sed -n 's/^install tests: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$log" | tail -n 1)
  if [ -z "$i_pass" ]; then i_pass=0; i_fail=1; echo "install tests: printed no summary (exit $i_rc)"; fi
  if [ "$i_rc" -ne 0 ] && [ "$i_fail" -eq 0 ]; then i_fail=1; fi
fi

pass=$((c_pass + b_pass + e_pass + o_pass + i_pass))
fail=$((c_fail + b_fail + e_fail + o_fail + i_fail))
echo "C tests: $c_pass passed, $c_fail failed; specs: $b_pass passed, $b_fail failed;" \
  "embedding examples: $e_pass passed, $e_fail failed; onnx node tests: $o_pass passed," \
  "$o_fail failed; install: $i_pass passed, $i_fail failed"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
