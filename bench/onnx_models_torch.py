"""PyTorch eager inference of the models tools/onnx-models.py exports (same seeds, same inputs):
"onnx_<model>_b<N>_ms value ms" lines, as bench/onnx_models.lua prints for lucid."""
import os
import sys
import time

import torch
from onnx import numpy_helper
import onnx

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import importlib.util

spec = importlib.util.spec_from_file_location(
    "onnx_models", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "onnx-models.py"))
om = importlib.util.module_from_spec(spec)
spec.loader.exec_module(om)
import torchvision

DIR = sys.argv[1] if len(sys.argv) > 1 else os.path.join("build", "onnx-models")


def load_pb(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return torch.from_numpy(numpy_helper.to_array(t).copy())


def best(fn, iters, trials=3):
    t = float("inf")
    for _ in range(trials):
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        t = min(t, (time.perf_counter() - t0) / iters)
    return t


def main():
    makers = [("resnet18", 0, torchvision.models.resnet18), ("mobilenet_v2", 1, torchvision.models.mobilenet_v2),
              ("text_encoder", 2, om.TextEncoder)]
    for name, seed, make in makers:
        if not os.path.exists(os.path.join(DIR, name + ".onnx")):
            continue
        torch.manual_seed(seed)
        model = make().eval()
        for b in (1, 16):
            x = load_pb(os.path.join(DIR, "%s_b%d_input.pb" % (name, b)))
            with torch.no_grad():
                model(x)
                t = best(lambda: model(x), 5 if b == 1 else 2)
            print("onnx_%s_b%d_ms %.4g ms" % (name, b, t * 1e3))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
