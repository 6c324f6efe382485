#!/usr/bin/python3
"""bench_activation_torch.py - bench/bench_activation.lua's cases in PyTorch (float32, one
thread), printing the same "name value us" lines.   usage: /usr/bin/python3 bench/bench_activation_torch.py"""

import torch
import torch.nn.functional as F

torch.set_num_threads(1)
torch.manual_seed(0)


from bench_common import best, report  # noqa: E402  (bench/bench_common.py)


ITERS, TRIALS = 10, 7
BIG = (1000, 1000)
# Lua's softmax dim 1 is PyTorch's dim 0
CASES = [
    ("gelu", BIG, lambda x: F.gelu(x)),
    ("gelu_tanh", BIG, lambda x: F.gelu(x, approximate="tanh")),
    ("silu", BIG, lambda x: F.silu(x)),
    ("mish", BIG, lambda x: F.mish(x)),
    ("softplus", BIG, lambda x: F.softplus(x)),
    ("elu", BIG, lambda x: F.elu(x)),
    ("leaky_relu", BIG, lambda x: F.leaky_relu(x)),
    ("softmax_last", BIG, lambda x: F.softmax(x, -1)),
    ("softmax_dim1", BIG, lambda x: F.softmax(x, 0)),
    ("softmax_64x1000_last", (64, 1000), lambda x: F.softmax(x, -1)),
    ("softmax_64x1000_dim1", (64, 1000), lambda x: F.softmax(x, 0)),
    ("log_softmax_last", BIG, lambda x: F.log_softmax(x, -1)),
]


def main():
    for name, shape, f in CASES:
        numel = shape[0] * shape[1]
        iters = max(ITERS, int(ITERS * 1e6 / numel))
        x = torch.randn(shape) * 3
        with torch.no_grad():
            best(2, 1, lambda: f(x))
            report(name + "_fwd", best(iters, TRIALS, lambda: f(x)) * 1e6, "us")
        xg = x.detach().requires_grad_()
        g = torch.randn(shape)

        def step():
            xg.grad = None
            f(xg).backward(g)
            return xg.grad

        best(2, 1, step)
        report(name + "_fwdbwd", best(iters, TRIALS, step) * 1e6, "us")


if __name__ == "__main__":
    main()
