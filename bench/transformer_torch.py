#!/usr/bin/env python3
"""transformer_torch.py - bench/bench_transformer.lua's cases in PyTorch 1.13: a
TransformerEncoderLayer training step and inference (d_model 256, 4 heads, defaults, seq 128,
batch 32), and generating 256 characters with char_lm's Transformer, by re-running the growing
prefix (char_gen_transformer_cps, the "no cache" baseline) and with a key/value cache of its own
(char_gen_transformer_cached_cps). Prints "name value unit" lines."""
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from char_lm_torch import CharTransformer  # noqa: E402


def best(iters, trials, fn):
    t = float("inf")
    for _ in range(trials):
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        t = min(t, (time.perf_counter() - t0) / iters)
    return t


def main():
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(256, 4, batch_first=True)
    opt = torch.optim.Adam(layer.parameters(), lr=1e-4)
    x = torch.randn(32, 128, 256)

    def step():
        opt.zero_grad()
        layer(x).sum().backward()
        opt.step()

    best(2, 1, step)
    print("enc_layer_256_train_step_ms %.4g ms" % (best(5, 3, step) * 1e3))
    layer.eval()
    with torch.no_grad():
        best(2, 1, lambda: layer(x))
        print("enc_layer_256_inference_ms %.4g ms" % (best(5, 3, lambda: layer(x)) * 1e3))

    m = CharTransformer(96, 128, 2, 4)
    m.eval()
    n = 256

    def prefix():
        with torch.no_grad():
            x = torch.zeros(1, 1, dtype=torch.int64)
            for _ in range(n):
                logits = m(x)[:, -1]
                x = torch.cat([x, logits.argmax(-1, keepdim=True)], 1)

    def cached():
        with torch.no_grad():
            cache = [None] * len(m.blocks.layers)
            x = torch.zeros(1, 1, dtype=torch.int64)
            for pos in range(n):
                x = m.step(x, cache, pos).argmax(-1, keepdim=True)

    print("char_gen_transformer_cps %.4g chars/s" % (n / best(1, 2, prefix)))
    print("char_gen_transformer_cached_cps %.4g chars/s" % (n / best(1, 3, cached)))


if __name__ == "__main__":
    main()
