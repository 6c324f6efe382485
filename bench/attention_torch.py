#!/usr/bin/python3
"""attention_torch.py - bench/bench_attention.lua's case in PyTorch 1.13 (float32, its default
threads): forward + backward of the composite softmax(q k^T / sqrt(d)) v with autograd, and of
torch.nn.functional._scaled_dot_product_attention (1.13's private fused entry, which still
materialises the L x S weights), printing the same "name value unit" lines.
usage: /usr/bin/python3 bench/attention_torch.py"""

import math
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, __file__.rsplit("/", 1)[0] if "/" in __file__ else ".")
from bench_common import best, report  # noqa: E402  (bench/bench_common.py)


def status_mb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main():
    torch.manual_seed(0)
    B, H, L, D = 1, 8, 1024, 64
    q, k, v = (torch.randn(B, H, L, D, requires_grad=True) for _ in range(3))
    g = torch.randn(B, H, L, D)

    def composite():
        s = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(D)
        o = torch.matmul(torch.softmax(s, -1), v)
        o.backward(g)
        q.grad = k.grad = v.grad = None

    def fused():
        o = F._scaled_dot_product_attention(q, k, v, None, 0.0, False, False)[0]
        o.backward(g)
        q.grad = k.grad = v.grad = None

    before = status_mb("VmRSS")
    composite()
    report("attn_b1_h8_s1024_d64_peak_rss_delta_mb", status_mb("VmHWM") - before, "MB")
    composite()
    report("attn_b1_h8_s1024_d64_fwd_bwd_ms", 1e3 * best(3, 5, composite), "ms")
    if hasattr(F, "_scaled_dot_product_attention"):
        fused()
        report("attn_torch_private_sdpa_fwd_bwd_ms", 1e3 * best(3, 5, fused), "ms")


if __name__ == "__main__":
    main()
