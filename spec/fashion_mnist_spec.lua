-- examples/fashion_mnist.lua (the main job, `make demo`) in its --quick form: trains on a
-- 2,000-image subset, saves a checkpoint, resumes from it.
local bin = os.getenv("LUCID_BIN") or "build/bin/lucid"
local root = "/usr/share/datasets/fashion-mnist"

local function run(args)
  local p = assert(io.popen(bin .. " examples/fashion_mnist.lua " .. args .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end

local function have_dataset()
  local f = io.open(root .. "/train-images-idx3-ubyte.gz", "rb")
  if f then f:close() end
  return f ~= nil
end

describe("examples/fashion_mnist.lua", function()
  if not have_dataset() then
    pending("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    return
  end
  local ckpt = os.tmpname()

  it("--quick trains, reports test accuracy and saves a checkpoint", function()
    local ok, out = run("--quick --checkpoint " .. ckpt)
    assert.is_true(ok, out)
    -- not a terminal: plain progress lines with every field
    assert.truthy(out:find("epoch 1/1  batch   32/32  loss %d%.%d+  acc +%d+%.%d+%%  +%d+ samples/s  took"), out)
    local acc = tonumber(out:match("epoch 1: test accuracy ([%d.]+)%%"))
    assert.is_not_nil(acc, out)
    assert.is_true(acc > 60, out) -- 2,000 images, one epoch: far above chance (10%)
    assert.truthy(out:find("checkpoint saved to " .. ckpt, 1, true), out)
    local saved = require("lucid").load(ckpt)
    assert.equal(1, saved.epoch)
    assert.is_not_nil(saved.model["conv1.weight"])
    assert.is_not_nil(saved.optim.state)
  end)

  it("--resume continues from the checkpoint", function()
    local ok, out = run("--quick --epochs 2 --resume --checkpoint " .. ckpt)
    assert.is_true(ok, out)
    assert.truthy(out:find("resumed from " .. ckpt .. " after epoch 1", 1, true), out)
    assert.falsy(out:find("epoch 1/2", 1, true), out)
    assert.truthy(out:find("epoch 2: test accuracy", 1, true), out)
    assert.equal(2, require("lucid").load(ckpt).epoch)
  end)

  it("examples/half_inference.lua evaluates the checkpoint in float32, float16 and bfloat16", function()
    local p = assert(io.popen(bin .. " examples/half_inference.lua --quick --checkpoint " .. ckpt .. " 2>&1"))
    local out = p:read("a")
    local ok = p:close()
    os.remove(ckpt)
    assert.is_true(ok, out)
    local acc = {}
    for _, dt in ipairs({"float32", "float16", "bfloat16"}) do
      local a, bytes = out:match(dt .. " +test accuracy ([%d.]+)%%.-parameters (%d+) bytes")
      assert.is_not_nil(a, out)
      acc[dt] = tonumber(a)
      assert.equal(dt == "float32" and 1687336 or 843668, tonumber(bytes), out)
    end
    assert.is_true(acc.float32 > 60, out)
    -- half precision costs the classifier (almost) nothing
    assert.is_true(math.abs(acc.float16 - acc.float32) <= 1, out)
    assert.is_true(math.abs(acc.bfloat16 - acc.float32) <= 2, out)
  end)

  it("rejects bad options and a missing checkpoint with a clear message", function()
    local ok, out = run("--epochs zero")
    assert.is_not_true(ok)
    assert.truthy(out:find("--epochs needs a positive integer, got zero", 1, true), out)
    ok, out = run("--bogus")
    assert.is_not_true(ok)
    assert.truthy(out:find("unknown option --bogus", 1, true), out)
    ok, out = run("--quick --resume --checkpoint /nonexistent/ckpt.safetensors")
    assert.is_not_true(ok)
    assert.truthy(out:find("--resume:", 1, true) and out:find("/nonexistent/ckpt.safetensors", 1, true), out)
  end)
end)
