#!/bin/sh
# Runs lucid's benchmarks (bench/bench.lua), PyTorch's (bench/bench_torch.py, when
# /usr/bin/python3 can import torch) and cblas_sgemm called from C (bench/blas.c), then prints a
# table: each case, lucid, PyTorch, lucid's speed relative to PyTorch (>1: lucid is faster), and
# the target from the issue.   usage: bench/run.sh BUILD_DIR   (`make bench`)
BUILD=${1:-build}
set -e
out=$(mktemp)
one=$(mktemp)
trap 'rm -f "$out" "$one"' EXIT

# step TAG TITLE CMD...: runs CMD, shows its output and files its lines under TAG
step() {
  tag=$1 title=$2
  shift 2
  echo "== $title"
  "$@" >"$one"
  cat "$one"
  sed "s/^/$tag /" "$one" >>"$out"
}

step blas "cblas_sgemm from C" "$BUILD/bin/bench-blas"
step lucid "lucid ($BUILD/bin/lucid bench/bench.lua)" "$BUILD/bin/lucid" bench/bench.lua
if /usr/bin/python3 -c "import torch" 2>/dev/null; then
  step torch "PyTorch (/usr/bin/python3 bench/bench_torch.py)" /usr/bin/python3 bench/bench_torch.py
else
  echo "== PyTorch: not installed (apt-get install python3-torch): no comparison"
fi
echo

awk '
  { v[$1, $2] = $3; if ($1 == "lucid") { order[++n] = $2; unit[$2] = $4 } }
  function fmt(x) { return x == "" ? "-" : sprintf("%.4g", x) }
  END {
    printf "%-24s %-8s %10s %10s %11s   %s\n", "case", "unit", "lucid", "PyTorch", "vs PyTorch", "target"
    for (i = 1; i <= n; i++) {
      c = order[i]; l = v["lucid", c]; t = v["torch", c]; u = unit[c]
      ratio = "-"
      if (t != "" && l > 0 && t > 0) ratio = sprintf("%.2fx", (u == "ns" || u == "us" || u == "ms") ? t / l : l / t)
      target = ""
      if (c ~ /^add_(1|4x4)_ns$/) target = sprintf("<= 250 ns: %s", l <= 250 ? "met" : "MISSED")
      if (c == "add_grad_ns") target = sprintf("<= 400 ns: %s", l <= 400 ? "met" : "MISSED")
      if (c == "mlp_4_3_2_us") target = sprintf("<= 10 us: %s", l <= 10 ? "met" : "MISSED")
      if (c == "seq_4_3_2_sgd_us") target = sprintf("<= 12 us: %s", l <= 12 ? "met" : "MISSED")
      if (c == "mlp_784_256_10_step_ms") target = sprintf("<= 0.6 ms: %s", l <= 0.6 ? "met" : "MISSED")
      if (c == "add_10M_1t_gbps") target = sprintf(">= 22 GB/s: %s", l >= 22 ? "met" : "MISSED")
      if (c ~ /^matmul_1024/) {
        b = v["blas", c == "matmul_1024_gflops" ? "blas_sgemm_1024_gflops" : "blas_sgemm_1024_1t_gflops"]
        if (b > 0) target = sprintf("%.1f%% of cblas_sgemm (%s GFLOP/s), >= 95%%: %s", 100 * l / b,
                                    fmt(b), l >= 0.95 * b ? "met" : "MISSED")
      }
      printf "%-24s %-8s %10s %10s %11s   %s\n", c, u, fmt(l), fmt(t), ratio, target
    }
    if (n == 0) print "no lucid results (did bench.lua fail?)"
    else print "\nvs PyTorch: how many times faster lucid is than PyTorch (below 1: slower)"
  }' "$out"
