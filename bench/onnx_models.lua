-- onnx_models.lua - inference through lucid's ONNX runtime of the real models tools/onnx-models.py
-- exports (ResNet-18, MobileNetV2, the small Transformer encoder) at batch 1 and 16. Prints
-- "onnx_<model>_b<N>_ms value ms" lines (best of several trials); bench/onnx_models_torch.py
-- prints the same names for PyTorch eager.   usage: build/bin/lucid bench/onnx_models.lua [DIR]
local lucid = require "lucid"

local B = dofile((arg and arg[0] and arg[0]:match("^(.*/)") or "bench/") .. "common.lua")
local dir = (arg and arg[1]) or "build/onnx-models"

for _, name in ipairs{"resnet18", "mobilenet_v2", "text_encoder"} do
  local path = dir .. "/" .. name .. ".onnx"
  local f = io.open(path, "rb")
  if not f then
    io.stderr:write(("onnx_models: %s is absent (make onnx-models)\n"):format(path))
  else
    f:close()
    local m = lucid.onnx.load(path)
    for _, b in ipairs{1, 16} do
      local x = lucid.onnx.read_tensor(("%s/%s_b%d_input.pb"):format(dir, name, b))
      local function run() m(x) end
      run()
      local iters = b == 1 and 5 or 2
      B.report(("onnx_%s_b%d_ms"):format(name, b), B.best(iters, 3, run) * 1e3, "ms")
    end
  end
end
