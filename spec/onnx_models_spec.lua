-- Real models through lucid's ONNX runtime, against PyTorch 1.13's outputs (rtol 1e-4,
-- atol 1e-5) at batch 1 and 16: the small Transformer encoder committed under
-- spec/fixtures/onnx/ always, ResNet-18 and MobileNetV2 when `make onnx-models` wrote them
-- (build/onnx-models/, or $LUCID_ONNX_MODELS; it needs python3-torchvision, a tools-only
-- package). Written by tools/onnx-models.py.
local lucid = require "lucid"

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local built = os.getenv("LUCID_ONNX_MODELS") or "build/onnx-models"

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- max |got - want| / (atol + rtol |want|): <= 1 is within tolerance
local function worst(got, want, rtol, atol)
  local err = (got - want):abs()
  local tol = want:abs() * rtol + atol
  return (err / tol):max():item()
end

describe("real models exported by PyTorch", function()
  local models = {
    {"text_encoder", here .. "fixtures/onnx/"},
    {"resnet18", built .. "/"},
    {"mobilenet_v2", built .. "/"},
  }
  for _, spec in ipairs(models) do
    local name, dir = spec[1], spec[2]
    if not exists(dir .. name .. ".onnx") then
      print(("# skip %s: %s%s.onnx is absent (make onnx-models writes it; needs python3-torchvision)")
        :format(name, dir, name))
    else
      it(name .. " gives PyTorch's outputs at batch 1 and 16", function()
        local m = lucid.onnx.load(dir .. name .. ".onnx")
        for _, b in ipairs{1, 16} do
          local x = lucid.onnx.read_tensor(("%s%s_b%d_input.pb"):format(dir, name, b))
          local want = lucid.onnx.read_tensor(("%s%s_b%d_output.pb"):format(dir, name, b))
          local got = m(x)
          assert.same(want.shape, got.shape)
          local w = worst(got, want, 1e-4, 1e-5)
          assert.is_true(w <= 1, ("%s at batch %d: error %.3g times the tolerance"):format(name, b, w))
        end
      end)
    end
  end
end)
