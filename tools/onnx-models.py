"""Real models for lucid's ONNX runtime (issue: ResNet-18, MobileNetV2 and a small Transformer
encoder), exported by PyTorch 1.13 with random weights (fixed seeds) into a directory
(default build/onnx-models/), each with inputs at batch 1 and 16 and PyTorch's outputs as
serialized TensorProtos: <name>.onnx, <name>_b<N>_input.pb, <name>_b<N>_output.pb.
spec/onnx_models_spec.lua compares lucid's outputs when the directory exists;
bench/onnx_models.lua and bench/onnx_models_torch.py time both (`make bench`).
The small text encoder (1.4 MB) is also committed, as spec/fixtures/onnx/text_encoder*
(`python3 tools/onnx-models.py spec/fixtures/onnx text_encoder`), so the spec always runs it.
Needs python3-torch, python3-torchvision and python3-onnx.   `make onnx-models`"""
import os
import sys

import torch
import torch.nn as nn
import torchvision
from onnx import numpy_helper

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join("build", "onnx-models")
ONLY = set(sys.argv[2:])  # model names to write (default: all)


class TextEncoder(nn.Module):
    """Token and position embeddings, 2 post-norm encoder layers (d 128, 4 heads, GELU), a head."""

    def __init__(self, vocab=1000, d=128, heads=4, layers=2, max_len=64, classes=10):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.randn(1, max_len, d) * 0.02)
        layer = nn.TransformerEncoderLayer(d, heads, dim_feedforward=4 * d, dropout=0.0,
                                           activation="gelu", batch_first=True)
        self.enc = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d, classes)

    def forward(self, ids):
        x = self.tok(ids) + self.pos[:, : ids.shape[1]]
        return self.head(self.enc(x).mean(1))


def save_pb(path, t):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(t.detach().numpy()).SerializeToString())


def export(name, model, make_input, dynamic):
    if ONLY and name not in ONLY:
        return
    model.eval()
    x1 = make_input(1)
    path = os.path.join(OUT, name + ".onnx")
    # with grad enabled: PyTorch 1.13's fused Transformer fast path (not exportable) stays off
    torch.onnx.export(model, (x1,), path, input_names=["input"], output_names=["output"],
                      dynamic_axes=dynamic, opset_version=14, do_constant_folding=True)
    for b in (1, 16):
        x = x1 if b == 1 else make_input(b)
        with torch.no_grad():
            y = model(x)
        save_pb(os.path.join(OUT, "%s_b%d_input.pb" % (name, b)), x)
        save_pb(os.path.join(OUT, "%s_b%d_output.pb" % (name, b)), y)
    print("wrote", path)


def main():
    os.makedirs(OUT, exist_ok=True)
    image_axes = {"input": {0: "batch"}, "output": {0: "batch"}}
    torch.manual_seed(0)
    export("resnet18", torchvision.models.resnet18(), lambda b: torch.randn(b, 3, 224, 224),
           image_axes)
    torch.manual_seed(1)
    export("mobilenet_v2", torchvision.models.mobilenet_v2(),
           lambda b: torch.randn(b, 3, 224, 224), image_axes)
    torch.manual_seed(2)
    export("text_encoder", TextEncoder(), lambda b: torch.randint(0, 1000, (b, 64)),
           {"input": {0: "batch", 1: "seq"}, "output": {0: "batch"}})


if __name__ == "__main__":
    main()
