#!/usr/bin/python3
"""cnn_torch.py - bench/bench_conv.lua's seed-CNN cases and bench/cnn_rss.lua in PyTorch 1.13,
printing the same "name value unit" lines. `cnn_torch.py rss` runs only the 100-step loop and
prints its peak RSS (run.sh starts it in a process of its own)."""
import resource
import sys

import torch
from torch import nn



from bench_common import best, report  # noqa: E402  (bench/bench_common.py)


def seed_cnn():
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Flatten(), nn.Linear(32 * 8 * 8, 128), nn.ReLU(), nn.Linear(128, 10))


def rss():
    torch.manual_seed(0)
    model = seed_cnn()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for _ in range(100):
        x = torch.randn(64, 3, 32, 32)
        y = torch.randint(0, 10, (64,))
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    report("seed_cnn_100_steps_peak_rss_mb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "MB")


def main():
    torch.manual_seed(0)
    model = seed_cnn()
    x = torch.randn(64, 3, 32, 32)
    y = torch.randint(0, 10, (64,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def train_step():
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    model.train()
    best(5, 1, train_step)
    report("seed_cnn_train_step_b64_ms", best(20, 5, train_step) * 1e3, "ms")
    model.eval()
    with torch.no_grad():
        best(5, 1, lambda: model(x))
        report("seed_cnn_inference_b64_ms", best(20, 5, lambda: model(x)) * 1e3, "ms")


if __name__ == "__main__":
    rss() if sys.argv[1:] == ["rss"] else main()
