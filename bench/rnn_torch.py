#!/usr/bin/python3
"""rnn_torch.py - bench/bench_rnn.lua's cases in PyTorch (float32, default threads): a training
step (forward, sum loss, backward) and the forward alone of a 2-layer LSTM and GRU, input 256,
hidden 256, seq 64, batch 32, printing the same "name value ms" lines.
usage: /usr/bin/python3 bench/rnn_torch.py"""
import sys

import torch
import torch.nn as nn

sys.dont_write_bytecode = True
from bench_common import best, report  # noqa: E402  (bench/bench_common.py)

torch.manual_seed(0)
T, N, IN, HID = 64, 32, 256, 256
ITERS, TRIALS = 3, 5

for kind in ["LSTM", "GRU"]:
    m = getattr(nn, kind)(IN, HID, num_layers=2)
    x = torch.randn(T, N, IN)

    def step():
        m.zero_grad()
        out, _ = m(x)
        out.sum().backward()

    step()
    report(kind.lower() + "_2l_h256_t64_b32_train_step_ms", best(ITERS, TRIALS, step) * 1e3, "ms")

    def fwd():
        with torch.no_grad():
            m(x)

    fwd()
    report(kind.lower() + "_2l_h256_t64_b32_forward_ms", best(ITERS, TRIALS, fwd) * 1e3, "ms")
