#!/bin/sh
# char_lm.sh - issue 14's text-model check (`make bench-text`): trains examples/char_lm.lua's
# default model (or MODEL=lstm) in lucid and the same model in PyTorch (bench/char_lm_torch.py)
# on the same batches for the same steps, then prints both validation bits per character, their
# difference (target: within 0.05) and both times per epoch. About 6-8 minutes on 2 cores.
#   usage: bench/char_lm.sh BUILD_DIR
BUILD=${1:-build}
MODEL=${MODEL:-transformer}
set -e
log=$(mktemp)
ckpt=$(mktemp)
trap 'rm -f "$log" "$ckpt"' EXIT
echo "== lucid: examples/char_lm.lua --model $MODEL"
"$BUILD/bin/lucid" examples/char_lm.lua --model "$MODEL" --checkpoint "$ckpt" | tee "$log" | grep -E "^epoch [0-9]+:|training time"
l_bpc=$(sed -n 's/^final validation: \([0-9.]*\) bits per character$/\1/p' "$log")
l_s=$(sed -n 's/^training time: \([0-9.]*\) s per epoch$/\1/p' "$log")
if ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
  echo "lucid: $l_bpc bpc, $l_s s per epoch; PyTorch not installed (apt-get install python3-torch): no comparison"
  exit 0
fi
echo "== PyTorch: bench/char_lm_torch.py --model $MODEL"
/usr/bin/python3 bench/char_lm_torch.py --model "$MODEL" | tee "$log"
t_bpc=$(sed -n 's/^char_lm_[a-z]*_val_bpc \([0-9.]*\) bpc$/\1/p' "$log")
t_s=$(sed -n 's/^char_lm_[a-z]*_epoch_s \([0-9.]*\) s$/\1/p' "$log")
awk -v l="$l_bpc" -v t="$t_bpc" -v ls="$l_s" -v ts="$t_s" -v m="$MODEL" 'BEGIN {
  d = l - t; if (d < 0) d = -d
  printf "%s: validation bpc lucid %.3f, PyTorch %.3f, difference %.3f (within 0.05: %s); s per epoch lucid %.1f, PyTorch %.1f (%.2fx)\n",
    m, l, t, d, d <= 0.05 ? "met" : "MISSED", ls, ts, ls / ts }'
