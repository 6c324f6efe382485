-- half_inference.lua - what half precision costs the Fashion-MNIST CNN: evaluates the model
-- examples/fashion_mnist.lua trained on the test set in float32, float16 and bfloat16.
--
--   lucid examples/half_inference.lua [--checkpoint FILE] [--root DIR] [--quick]
--
-- Loads the checkpoint fashion_mnist.lua saved (default fashion_mnist.safetensors); without one
-- it first trains one epoch with fashion_mnist.lua (--quick: its 2,000-image form) and saves
-- it there. Each precision converts a copy of the model (model:half(), model:to("bfloat16"))
-- and the images, runs the forward in inference mode and prints the test accuracy, the
-- parameter bytes and how far the logits are from float32's. docs/tensor.md ("Half
-- precision") reports the numbers.
local lucid = require "lucid"
local data = lucid.data

local opts = {checkpoint = "fashion_mnist.safetensors", root = "/usr/share/datasets/fashion-mnist",
  quick = false}
local argv = arg or {}
local i = 1
while i <= #argv do
  local a = argv[i]
  if (a == "--checkpoint" or a == "--root") and argv[i + 1] then
    opts[a:sub(3)] = argv[i + 1]
    i = i + 1
  elseif a == "--quick" then
    opts.quick = true
  else
    io.stderr:write(("half_inference.lua: unknown option %s\nusage: lucid examples/half_inference.lua " ..
      "[--checkpoint FILE] [--root DIR] [--quick]\n"):format(a))
    os.exit(2)
  end
  i = i + 1
end

local here = (arg and arg[0] or ""):match("^(.*[/\\])") or "./"

local f = io.open(opts.checkpoint, "rb")
if f then
  f:close()
else
  print(("no checkpoint at %s: training one epoch with fashion_mnist.lua first"):format(opts.checkpoint))
  local saved = arg
  arg = {[0] = here .. "fashion_mnist.lua", "--epochs", "1", "--checkpoint", opts.checkpoint,
    "--root", opts.root}
  if opts.quick then arg[#arg + 1] = "--quick" end
  dofile(here .. "fashion_mnist.lua")
  arg = saved
end

local ckpt = lucid.load(opts.checkpoint)
local build = dofile(here .. "fashion_model.lua")

local test_set = data.FashionMNIST{root = opts.root, train = false}
if opts.quick then test_set = data.Subset(test_set, lucid.arange(1, 1001, {dtype = "int64"})) end
local loader = data.DataLoader(test_set, {batch_size = 500})

local function param_bytes(m)
  local n = 0
  for _, p in ipairs(m:parameters()) do n = n + p:numel() * p:element_size() end
  return n
end

-- test accuracy of the model in dtype, and the largest |logit - float32 logit|
local ref_logits = {}
local function evaluate(dtype)
  local model = build()
  model:load_state_dict(ckpt.model)
  model:eval()
  model:to(dtype)
  local correct, total, maxdiff, batch = 0, 0, 0, 0
  local t0 = lucid.clock()
  lucid.no_grad(function()
    for images, labels in loader:iter() do
      batch = batch + 1
      local logits = model(images:to(dtype)):float()
      if dtype == "float32" then
        ref_logits[batch] = logits
      else
        maxdiff = math.max(maxdiff, (logits - ref_logits[batch]):abs():max():item())
      end
      correct = correct + logits:argmax(2):eq(labels):sum():item()
      total = total + labels.shape[1]
    end
  end)
  return correct / total, param_bytes(model), maxdiff, lucid.clock() - t0
end

print(("%d test images, checkpoint %s (epoch %s)"):format(#test_set, opts.checkpoint,
  tostring(ckpt.epoch)))
local acc32
for _, dt in ipairs({"float32", "float16", "bfloat16"}) do
  local acc, bytes, diff, secs = evaluate(dt)
  acc32 = acc32 or acc
  print(("%-8s  test accuracy %.2f%%  (%+.2f points)  parameters %d bytes  max |logit diff| %.4g  %.1f s")
    :format(dt, acc * 100, (acc - acc32) * 100, bytes, diff, secs))
end
