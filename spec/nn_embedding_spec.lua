-- The embedding family (docs/nn/embedding.md): F.embedding and nn.Embedding. Values and
-- gradients against PyTorch (the embedding cases of spec/fixtures/nn_activation.lua, written by
-- tools/fixtures/activation.py): float32 within relative 1e-5 / absolute 1e-6, float64 within
-- relative 1e-10 / absolute 1e-12; gradients numerically with lucid.autograd.gradcheck.
local lucid = require "lucid"
local nn = require "lucid.nn"
local F = nn.functional
local H = require "nn_helpers"
local helpers = require "helpers"
local gradcheck = lucid.autograd.gradcheck

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local FX = dofile(here .. "fixtures/nn_activation.lua")

local function tol(c)
  if c.dtype == "float64" then return 1e-10, 1e-12 end
  return 1e-5, 1e-6
end

local function close(t, want, c) H.assert_close(t, want, tol(c)) end

local function f64(...) return lucid.randn({...}, {dtype = "float64"}) end

describe("embedding against PyTorch", function()
  for _, name in ipairs{"embedding", "embedding_pad"} do
    it(name .. ": F.embedding and nn.Embedding (1-based indices)", function()
      local c = FX[name]
      local idx = lucid.Tensor(c.input, {dtype = "int64"})
      local w = lucid.Tensor(c.weight, {requires_grad = true})
      local y = F.embedding(idx, w, c.padding_idx)
      close(y, c.output, c)
      y:backward(lucid.Tensor(c.grad_output))
      close(w.grad, c.weight_grad, c)
      -- the module, weight loaded through load_state_dict
      local m = nn.Embedding(6, 3, {padding_idx = c.padding_idx})
      m:load_state_dict({{"weight", lucid.Tensor(c.weight)}})
      local ym = m(lucid.Tensor(c.input, {dtype = "int32"}))
      close(ym, c.output, c)
      ym:backward(lucid.Tensor(c.grad_output))
      close(m.weight.grad, c.weight_grad, c)
    end)
  end

  it("the padding row is zeroed at init and gets no gradient", function()
    local m = nn.Embedding(5, 4, {padding_idx = 2})
    H.assert_close(m.weight[2], {0, 0, 0, 0})
    local y = m(lucid.Tensor({2, 2, 3, 5}, {dtype = "int64"}))
    H.assert_close(y[1], {0, 0, 0, 0})
    y:sum():backward()
    H.assert_close(m.weight.grad[2], {0, 0, 0, 0})
    H.assert_close(m.weight.grad[3], {1, 1, 1, 1})
    H.assert_close(m.weight.grad[1], {0, 0, 0, 0})
    -- negative padding_idx counts from the end
    local last = nn.Embedding(5, 2, {padding_idx = -1})
    assert.equal(5, last.padding_idx)
    assert.equal("Embedding(5, 2, padding_idx=5)", tostring(last))
  end)

  it("weights are N(0, 1) like PyTorch's", function()
    lucid.manual_seed(3)
    local w = nn.Embedding(1000, 20).weight
    assert.is_true(math.abs(w:mean():item()) < 0.02)
    assert.is_true(math.abs(w:std():item() - 1) < 0.03)
  end)

  it("from_pretrained copies the weights and freezes them by default", function()
    local e = lucid.randn(4, 3)
    local m = nn.Embedding.from_pretrained(e)
    assert.is_true(m.weight:equal(e))
    assert.is_false(m.weight.requires_grad)
    assert.is_true(nn.Embedding.from_pretrained(e, {freeze = false}).weight.requires_grad)
  end)
end)

describe("embedding arguments", function()
  it("take positional arguments and/or an options table", function()
    local idx = lucid.Tensor({2, 1}, {dtype = "int64"})
    local w = lucid.randn(3, 2)
    H.assert_close(F.embedding(idx, w, {}), F.embedding(idx, w):tolist())
    H.assert_close(F.embedding{input = idx, weight = w}, F.embedding(idx, w):tolist())
  end)

  it("gradcheck in float64", function()
    lucid.manual_seed(2)
    local idx = lucid.Tensor({{1, 3}, {3, 4}}, {dtype = "int64"})
    assert.is_true(gradcheck(function(w) return F.embedding(idx, w) * F.embedding(idx, w) end, {f64(4, 3)}))
  end)
end)

describe("printing and attributes", function()
  it("prints like PyTorch, indices 1-based", function()
    local cases = {
      {nn.Embedding(10, 3), "Embedding(10, 3)"},
      {nn.Embedding(10, 3, {padding_idx = 1}), "Embedding(10, 3, padding_idx=1)"},
    }
    for _, c in ipairs(cases) do assert.equal(c[2], tostring(c[1])) end
  end)

  it("exposes the options as attributes", function()
    local e = nn.Embedding(7, 4, {padding_idx = 3})
    assert.equal(7, e.num_embeddings)
    assert.equal(4, e.embedding_dim)
    assert.equal(3, e.padding_idx)
    assert.is_nil(nn.Embedding(7, 4).padding_idx)
  end)
end)

describe("errors", function()
  local x = lucid.randn(2, 3)
  local ix = lucid.Tensor({{1, 2}, {3, 11}}, {dtype = "int64"})
  local w = lucid.randn(10, 4)

  it("embedding: out-of-range indices name the index, its position and the range", function()
    helpers.raises({"lucid.nn.functional.embedding", "argument 1 (input)", "index 11",
      "position [2, 2]", "10 embeddings", "expected 1..10"}, F.embedding, ix, w)
    helpers.raises({"index 0", "position [1]", "expected 1..10"}, F.embedding,
      lucid.Tensor({0}, {dtype = "int64"}), w)
    helpers.raises({"Embedding: index 11 at position [2, 2] out of range for 10 embeddings " ..
      "(expected 1..10)"}, nn.Embedding(10, 4), ix)
    helpers.raises({"Sequential.emb (Embedding): index 11"}, nn.Sequential{{"emb", nn.Embedding(10, 4)}}, ix)
    helpers.raises({"argument 1 (input)", "int64 or int32", "float32"}, F.embedding, x, w)
    helpers.raises({"argument 3 (padding_idx)", "11 out of range for 10 embeddings"},
      F.embedding, ix, w, 11)
    helpers.raises({"nn.Embedding", "argument 3 (padding_idx)", "0 is invalid"}, nn.Embedding, 10, 3,
      {padding_idx = 0})
    -- one owner (C) for the range, the same text for the module and the function, 1-based
    helpers.raises({"nn.Embedding: padding_idx 11 out of range for 10 embeddings " ..
      "(expected 1..10 or -10..-1)"}, nn.Embedding, 10, 3, {padding_idx = 11})
    helpers.raises({"lucid.nn.functional.embedding", "argument 3 (padding_idx)",
      "padding_idx -11 out of range for 10 embeddings (expected 1..10 or -10..-1)"},
      F.embedding, ix, w, -11)
    -- the sizes' rule is lc_nn_embedding_ex's (one owner): the class converts types only
    assert.equal("lucid.nn.Embedding: num_embeddings and embedding_dim must be >= 0, got -1 and 3",
      H.err(nn.Embedding, -1, 3))
    assert.equal("lucid.nn.Embedding: num_embeddings and embedding_dim must be >= 0, got 3 and -2",
      H.err(nn.Embedding, 3, -2))
    assert.equal("lucid.nn.Embedding: num_embeddings must be an integer, got number 2.5",
      H.err(nn.Embedding, 2.5, 3))
    helpers.raises({"Embedding", "int64 or int32", "float32"}, nn.Embedding(10, 4), x)
  end)
end)

describe("F.embedding's weight", function()
  it("must be float32 or float64 (C's rule, naming the weight)", function()
    assert.equal("lucid.nn.functional.embedding: expected a float32 or float64 weight, got int64",
      H.err(F.embedding, lucid.ones(2, {dtype = "int64"}), lucid.ones(2, 3, {dtype = "int64"})))
  end)
end)
