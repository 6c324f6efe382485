-- examples/char_lm.lua (the second main job, `make demo-text`) in its --quick form: trains a
-- tiny model on the start of the fortunes text, reports validation bits per character, saves a
-- checkpoint, resumes from it and samples from it through the decoding cache.
local bin = os.getenv("LUCID_BIN") or "build/bin/lucid"
local root = "/usr/share/games/fortunes"

local function run(args)
  local p = assert(io.popen(bin .. " examples/char_lm.lua " .. args .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end

local function have_text()
  local f = io.open(root .. "/fortunes", "rb")
  if f then f:close() end
  return f ~= nil
end

describe("examples/char_lm.lua", function()
  if not have_text() then
    pending("the fortunes package is not installed (apt-get install fortunes): char_lm specs skipped")
    return
  end
  local ckpt = os.tmpname()

  it("--quick trains, reports validation bits per character and saves a checkpoint", function()
    local ok, out = run("--quick --checkpoint " .. ckpt)
    assert.is_true(ok, out)
    assert.truthy(out:find("epoch 1/1  step    8/8  loss %d%.%d+ %(%d%.%d+ bpc%) +%d+ chars/s  took"), out)
    local bpc = tonumber(out:match("epoch 1: validation ([%d.]+) bits per character"))
    assert.is_not_nil(bpc, out)
    -- 8 steps of a tiny model: below the uniform code length over its 99 symbols (6.6 bits)
    assert.is_true(bpc < 6.6, out)
    local saved = require("lucid").load(ckpt)
    assert.equal(1, saved.epoch)
    assert.equal("transformer", saved.options.model)
    assert.is_not_nil(saved.model["blocks.layers.1.self_attn.in_proj_weight"])
  end)

  it("--resume continues from the checkpoint", function()
    local ok, out = run("--quick --epochs 2 --resume --checkpoint " .. ckpt)
    assert.is_true(ok, out)
    assert.truthy(out:find("resumed from " .. ckpt .. " after epoch 1", 1, true), out)
    assert.truthy(out:find("epoch 2: validation", 1, true), out)
  end)

  it("--sample generates text from the checkpoint", function()
    local ok, out = run("--sample 'Hello' --length 50 --top-k 5 --checkpoint " .. ckpt)
    os.remove(ckpt)
    assert.is_true(ok, out)
    local text = out:match("^(.-)\ngenerated 50 characters in")
    assert.is_not_nil(text, out)
    assert.equal("Hello", text:sub(1, 5))
    assert.equal(55, #text, out) -- the prompt and 50 symbols (bytes)
  end)

  it("--model lstm trains and samples through its (h, c) state", function()
    local lk = os.tmpname()
    local ok, out = run("--quick --model lstm --checkpoint " .. lk)
    assert.is_true(ok, out)
    assert.truthy(out:find("(rnn): LSTM(32, 32, num_layers=2, batch_first=true)", 1, true), out)
    assert.is_not_nil(tonumber(out:match("epoch 1: validation ([%d.]+) bits per character")), out)
    ok, out = run("--sample 'Hi' --length 20 --checkpoint " .. lk)
    os.remove(lk)
    assert.is_true(ok, out)
    assert.truthy(out:find("generated 20 characters", 1, true), out)
  end)

  it("bad options are a usage error", function()
    local ok, out = run("--model gru")
    assert.is_falsy(ok)
    assert.truthy(out:find("--model must be transformer or lstm, got gru", 1, true), out)
  end)
end)
