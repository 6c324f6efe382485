-- bench_transformer.lua - issue 14's Transformer cases: a TransformerEncoderLayer training step
-- (d_model 256, 4 heads, PyTorch's defaults dim_feedforward 2048 and dropout 0.1, seq 128,
-- batch 32, batch_first: forward, sum loss, backward, Adam step) and generating 256 characters
-- with examples/char_model.lua's default Transformer through its key/value cache.
-- bench/transformer_torch.py prints the same cases for PyTorch 1.13 (and the char_gen baselines:
-- re-running the prefix, and a cache of its own). Run: build/bin/lucid bench/bench_transformer.lua
local lucid = require "lucid"
local nn = lucid.nn

local dir = arg and arg[0] and arg[0]:match("^(.*/)") or "bench/"
local B = dofile(dir .. "common.lua")
local report, best = B.report, B.best

lucid.manual_seed(0)

do
  local layer = nn.TransformerEncoderLayer(256, 4, {batch_first = true})
  local opt = lucid.optim.Adam(layer:parameters(), {lr = 1e-4})
  local x = lucid.randn(32, 128, 256)
  local function step()
    opt:zero_grad()
    layer(x):sum():backward()
    opt:step()
  end
  best(2, 1, step)
  report("enc_layer_256_train_step_ms", best(5, 3, step) * 1e3, "ms")
  layer:eval()
  lucid.no_grad(function()
    best(2, 1, function() layer(x) end)
    report("enc_layer_256_inference_ms", best(5, 3, function() layer(x) end) * 1e3, "ms")
  end)
end

do
  local models = dofile(dir .. "../examples/char_model.lua")
  local m = models.new{model = "transformer", vocab = 96, d_model = 128, layers = 2, heads = 4,
    dropout = 0, max_len = 1024}
  m:eval()
  local n = 256
  local function gen()
    lucid.no_grad(function()
      local state = m:start(1)
      local x = lucid.zeros({1, 1}, {dtype = "int64"}) + 1
      for _ = 1, n do
        local logits = m:step(x, state)
        x = logits:argmax(2):reshape(1, 1)
      end
    end)
  end
  gen()
  local cps = n / best(1, 3, gen)
  -- one measurement, filed twice: against PyTorch re-running the prefix and against PyTorch
  -- keeping a cache of its own (bench/transformer_torch.py prints both baselines)
  report("char_gen_transformer_cps", cps, "chars/s")
  report("char_gen_transformer_cached_cps", cps, "chars/s")
end
