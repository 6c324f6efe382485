#!/usr/bin/python3
"""fashion_mnist_torch.py - examples/fashion_mnist.lua's model and hyperparameters in PyTorch
1.13: trains EPOCHS epochs (default 1) and prints the same summary lines as
bench/fashion_mnist.lua:
    fashion_epoch_s <seconds> s
    fashion_accuracy_pct <test accuracy> %
usage: /usr/bin/python3 bench/fashion_mnist_torch.py [EPOCHS] [ROOT]"""
import gzip
import os
import struct
import sys
import time

import numpy as np
import torch
from torch import nn


def read_idx(path):
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        raw = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    assert zero == 0 and dtype == 0x08, path
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(root, kind):
    images = read_idx(os.path.join(root, "%s-images-idx3-ubyte.gz" % kind))
    labels = read_idx(os.path.join(root, "%s-labels-idx1-ubyte.gz" % kind))
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    return x, torch.from_numpy(labels.astype(np.int64))


def main():
    epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    root = sys.argv[2] if len(sys.argv) > 2 else "/usr/share/datasets/fashion-mnist"
    torch.manual_seed(1)
    xtr, ytr = load(root, "train")
    xte, yte = load(root, "t10k")
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batch = 64
    steps = (xtr.shape[0] + batch - 1) // batch
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps)
    t0 = time.perf_counter()
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(xtr.shape[0])
        for i in range(0, xtr.shape[0], batch):
            idx = perm[i:i + batch]
            loss = nn.functional.cross_entropy(model(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    seconds = (time.perf_counter() - t0) / epochs
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, xte.shape[0], 500):
            correct += (model(xte[i:i + 500]).argmax(1) == yte[i:i + 500]).sum().item()
    print("fashion_epoch_s %.4g s" % seconds)
    print("fashion_accuracy_pct %.4g %%" % (100.0 * correct / xte.shape[0]))


if __name__ == "__main__":
    main()
