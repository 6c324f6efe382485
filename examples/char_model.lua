-- char_model.lua - the character-level language models of examples/char_lm.lua (bench/
-- char_lm_torch.py builds the same ones in PyTorch).
--
--   local models = dofile("examples/char_model.lua")
--   local m = models.new{model = "transformer", vocab = 96, d_model = 128, layers = 2, heads = 4}
--   local logits = m(x)                       -- x: int64 (B, L) of 1-based symbols -> (B, L, vocab)
--   local state = m:start(1)                  -- a decoding state for a batch of 1
--   local last = m:step(prompt, state)        -- logits of the last position, state advanced
--
-- transformer: embedding + sinusoidal positions, a decoder-only stack of pre-norm
-- TransformerEncoderLayers under a causal mask, a final LayerNorm and a linear head. Decoding
-- keeps a key/value cache per layer, so token t costs O(t), not a re-run of the prefix.
-- lstm: embedding, a 2-layer nn.LSTM and a linear head; decoding carries (h, c).
local lucid = require "lucid"
local nn = lucid.nn

local M = {}

local Transformer = nn.Module:extend("CharTransformer")

function Transformer:init(o)
  self.embed = nn.Embedding(o.vocab, o.d_model)
  self.pos = nn.SinusoidalPositionalEncoding(o.d_model, {max_len = o.max_len, batch_first = true})
  self.blocks = nn.TransformerEncoder(nn.TransformerEncoderLayer{d_model = o.d_model,
    nhead = o.heads, dim_feedforward = 4 * o.d_model, dropout = o.dropout, activation = "gelu",
    batch_first = true, norm_first = true}, o.layers)
  self.norm = nn.LayerNorm(o.d_model)
  self.head = nn.Linear(o.d_model, o.vocab)
end

-- x: (B, L) symbols; offset: the position of x's first symbol (decoding)
function Transformer:forward(x, cache, offset)
  local h = self.pos(self.embed(x), {offset = offset or 0})
  h = self.blocks(h, {is_causal = true, cache = cache})
  return self.head(self.norm(h))
end

function Transformer:start() return {cache = self.blocks:new_cache(), pos = 0} end

function Transformer:step(x, state)
  local logits = self(x, state.cache, state.pos)
  state.pos = state.pos + x.shape[2]
  return logits:select(2, logits.shape[2])
end

local LSTM = nn.Module:extend("CharLSTM")

function LSTM:init(o)
  self.embed = nn.Embedding(o.vocab, o.d_model)
  self.rnn = nn.LSTM(o.d_model, o.hidden, {num_layers = o.layers, batch_first = true,
    dropout = o.dropout})
  self.head = nn.Linear(o.hidden, o.vocab)
end

function LSTM:forward(x, hc)
  local out, state = self.rnn(self.embed(x), hc)
  return self.head(out), state
end

function LSTM:start() return {} end

function LSTM:step(x, state)
  local logits, hc = self(x, state.hc)
  state.hc = hc
  return logits:select(2, logits.shape[2])
end

-- o: model ("transformer" or "lstm"), vocab, d_model, layers, heads, hidden, dropout, max_len
function M.new(o)
  if o.model == "lstm" then return LSTM(o) end
  return Transformer(o)
end

return M
