-- lucid.nn's attention and Transformer modules (lua/lucid/nn/transformer.lua) against PyTorch
-- 1.13 (spec/fixtures/transformer.lua, written by tools/fixtures/transformer.py): outputs and the
-- gradients of the inputs and of every parameter, loaded by PyTorch's names; then caches,
-- shapes, init and errors.
local lucid = require "lucid"
local nn = lucid.nn
local F = nn.functional
local fixtures = require "fixtures.transformer"

local function T(v, dtype) return lucid.Tensor(v, {dtype = dtype or "float64"}) end

local function close(got, want, tol, what)
  local w = T(want, "float64")
  local g = got:to("float64")
  assert(#g.shape == #w.shape or w:numel() == g:numel(), what .. ": shape")
  local err = (g:reshape(-1) - w:reshape(-1)):abs():max():item()
  local scale = w:abs():max():item()
  assert(err <= tol * (1 + scale), string.format("%s: max error %g", what, err))
end

-- PyTorch's ModuleList positions are 0-based, Lua's 1-based
local function lua_name(n)
  return (n:gsub("layers%.(%d+)%.", function(i) return "layers." .. (tonumber(i) + 1) .. "." end))
end

local function build(c)
  local env = setmetatable({nn = nn}, {__index = _G})
  local m = assert(load("return " .. c.ctor, "ctor", "t", env))()
  m:to(c.dtype)
  local sd = {}
  for _, kv in ipairs(c.state) do sd[lua_name(kv[1])] = T(kv[2], c.dtype) end
  if #c.state > 0 then m:load_state_dict(sd) end
  return m
end

describe("nn attention and Transformer modules against PyTorch", function()
  for name, c in pairs(fixtures) do
    it(name, function()
      local m = build(c)
      local ins = {}
      for i, v in ipairs(c.inputs) do ins[i] = T(v, c.dtype):requires_grad_() end
      local masks = {}
      for i, v in ipairs(c.masks) do
        masks[i] = v.bool and T(v.v, "int64"):ne(0) or T(v, c.dtype)
      end
      local env = setmetatable({masks = masks}, {__index = _G})
      local extra = assert(load("return " .. c.call, "call", "t", env))()
      local n = #ins
      local argv = {table.unpack(ins)}
      for i, e in ipairs(extra) do argv[n + i] = e end
      local outs = table.pack(m(table.unpack(argv, 1, n + #extra)))
      local tol = c.dtype == "float32" and 2e-5 or 1e-10
      local loss
      for i, want in ipairs(c.outputs) do
        close(outs[i], want, tol, name .. " output " .. i)
        local term = (outs[i] * T(c.weights[i], c.dtype)):sum()
        loss = loss and loss + term or term
      end
      loss:backward()
      local gtol = c.dtype == "float32" and 1e-4 or 1e-9
      for i, g in ipairs(c.grads) do close(ins[i].grad, g, gtol, name .. " grad of input " .. i) end
      local params = {}
      for pname, p in m:named_parameters() do params[pname] = p end
      for _, kv in ipairs(c.param_grads) do
        local p = assert(params[lua_name(kv[1])], name .. ": no parameter " .. kv[1])
        close(p.grad or lucid.zeros_like(p), kv[2], gtol, name .. " grad of " .. kv[1])
      end
    end)
  end
end)

describe("nn.MultiheadAttention", function()
  it("a key/value cache: token by token equals the causal forward over the whole prefix", function()
    lucid.manual_seed(3)
    for _, rotary in ipairs{false, true} do
      local m = nn.MultiheadAttention(8, 2, {batch_first = true, rotary = rotary or nil}):double()
      local x = lucid.randn({2, 6, 8}, {dtype = "float64"})
      local full = m(x, {is_causal = true, need_weights = false})
      local cache = nn.KVCache()
      -- a prefix of 2, then one token at a time
      local parts = {(m(x:narrow(2, 1, 2), {is_causal = true, need_weights = false, cache = cache}))}
      for t = 3, 6 do
        parts[#parts + 1] = (m(x:narrow(2, t, 1), {is_causal = true, need_weights = false, cache = cache}))
      end
      assert.equal(6, cache:length())
      assert.is_true(lucid.allclose(lucid.cat(parts, 2), full, 1e-12, 1e-12))
      cache:reset()
      assert.equal(0, cache:length())
    end
  end)
  it("a cache for another batch size is an error", function()
    local m = nn.MultiheadAttention(4, 2)
    local cache = nn.KVCache()
    m(lucid.randn(1, 2, 4), {cache = cache})
    local ok, err = pcall(m, lucid.randn(1, 3, 4), {cache = cache})
    assert.is_false(ok)
    assert.matches("cache holds a batch of 2, got a batch of 3", err)
  end)
  it("parameters: PyTorch's names, shapes and init", function()
    local m = nn.MultiheadAttention(6, 3, {kdim = 4, vdim = 5, add_bias_kv = true})
    local names = {}
    for _, kv in ipairs(m:state_dict()) do names[#names + 1] = kv[1] .. "=" .. table.concat(kv[2].shape, "x") end
    assert.same({"q_proj_weight=6x6", "k_proj_weight=6x4", "v_proj_weight=6x5", "in_proj_bias=18",
      "bias_k=1x1x6", "bias_v=1x1x6", "out_proj.weight=6x6", "out_proj.bias=6"}, names)
    assert.equal(0, m.in_proj_bias:abs():sum():item())
    assert.equal(0, m.out_proj.bias:abs():sum():item())
    local p = nn.MultiheadAttention(64, 4)
    local bound = math.sqrt(6 / (64 + 192))
    assert.is_true(p.in_proj_weight:abs():max():item() <= bound)
    assert.is_true(p.in_proj_weight:abs():max():item() > 0.9 * bound)
  end)
  it("gradcheck in float64, with masks and attention weights", function()
    local m = nn.MultiheadAttention(4, 2):double()
    local kpm = lucid.Tensor({{false, false, true}, {false, false, false}}, {dtype = "bool"})
    local am = lucid.randn({2, 3}, {dtype = "float64"})
    local q = lucid.randn({2, 2, 4}, {dtype = "float64"}):requires_grad_()
    local kv = lucid.randn({3, 2, 4}, {dtype = "float64"}):requires_grad_()
    assert.is_true(lucid.autograd.gradcheck(function(a, b)
      local o, w = m(a, b, {key_padding_mask = kpm, attn_mask = am})
      return o:sum() + (w * w):sum()
    end, {q, kv}))
  end)
  it("dropout acts in training only", function()
    local m = nn.MultiheadAttention(8, 2, {dropout = 0.5})
    local x = lucid.randn(4, 2, 8)
    local a = m(x)
    local b = m(x)
    assert.is_false(lucid.allclose(a, b))
    m:eval()
    assert.is_true(lucid.equal((m(x)), (m(x))))
  end)
  it("errors name the module, the argument and the shapes (1-based)", function()
    local function err(pat, f, ...)
      local ok, msg = pcall(f, ...)
      assert.is_false(ok)
      assert.matches(pat, msg, 1, true)
    end
    err("nn.MultiheadAttention: embed_dim must be divisible by num_heads, got embed_dim 6 and num_heads 4",
      nn.MultiheadAttention, 6, 4)
    local m = nn.MultiheadAttention(4, 2)
    err("nn.MultiheadAttention: argument 2 (query): expected a 2-D (unbatched) or 3-D tensor, got 4-D",
      m, lucid.randn(1, 2, 3, 4))
    err("nn.MultiheadAttention: argument 2 (query): expected embed_dim 4 in dim 3, got 5", m, lucid.randn(2, 3, 5))
    err("nn.MultiheadAttention: attn_mask: expected shape {2, 2}, got {2, 3}", m, lucid.randn(2, 3, 4),
      {attn_mask = lucid.zeros(2, 3)})
    err("nn.MultiheadAttention: key_padding_mask: expected shape {3, 2}, got {2, 3}", m, lucid.randn(2, 3, 4),
      {key_padding_mask = lucid.zeros(2, 3, {dtype = "bool"})})
    err("nn.MultiheadAttention: attn_mask must be a bool or float tensor, got dtype int64", m,
      lucid.randn(2, 3, 4), {attn_mask = lucid.zeros(2, 2, {dtype = "int64"})})
    err("nn.MultiheadAttention: unknown option", m, lucid.randn(2, 3, 4), {attn_maks = 1})
  end)
end)

describe("Transformer layers and helpers", function()
  it("TransformerEncoder's layers start as copies of the layer, and are distinct tensors", function()
    local layer = nn.TransformerEncoderLayer(8, 2, 16)
    local enc = nn.TransformerEncoder(layer, 3)
    assert.equal(3, #enc.layers)
    local w1 = enc.layers[1].linear1.weight
    assert.is_true(lucid.equal(w1, layer.linear1.weight))
    assert.is_true(lucid.equal(enc.layers[3].self_attn.in_proj_weight, layer.self_attn.in_proj_weight))
    w1:detach():add_(1)
    assert.is_false(lucid.equal(w1, enc.layers[2].linear1.weight))
    assert.equal(3 * layer:num_parameters(), enc:num_parameters())
  end)
  it("generate_square_subsequent_mask", function()
    local m = nn.Transformer.generate_square_subsequent_mask(3)
    assert.same({{0, -math.huge, -math.huge}, {0, 0, -math.huge}, {0, 0, 0}}, m:tolist())
  end)
  it("an encoder stack with per-layer caches decodes token by token as the causal forward", function()
    lucid.manual_seed(5)
    local enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, 0, {batch_first = true,
      norm_first = true, rotary = true}), 2):double()
    enc:eval()
    local x = lucid.randn({1, 5, 8}, {dtype = "float64"})
    local full = enc(x, {is_causal = true})
    local cache = enc:new_cache()
    local parts = {}
    for t = 1, 5 do parts[t] = enc(x:narrow(2, t, 1), {is_causal = true, cache = cache}) end
    assert.is_true(lucid.allclose(lucid.cat(parts, 2), full, 1e-12, 1e-12))
  end)
  it("RMSNorm: default eps is the dtype's epsilon, prints as PyTorch", function()
    local m = nn.RMSNorm(4)
    assert.equal("RMSNorm((4,), eps=None, elementwise_affine=true)", tostring(m))
    local x = lucid.Tensor({{1, 2, 3, 4}})
    local want = x / math.sqrt((1 + 4 + 9 + 16) / 4 + 1.1920928955078125e-07)
    assert.is_true(lucid.allclose(m(x), want, 1e-6, 1e-7))
    assert.is_true(lucid.allclose(F.rms_norm(x, 4), want, 1e-6, 1e-7))
    local ok, err = pcall(m, lucid.zeros(2, 3))
    assert.is_false(ok)
    assert.matches("nn.RMSNorm: input's last 1 dims must be {4} (normalized_shape), got shape {2, 3}", err, 1, true)
  end)
  it("sinusoidal_encoding: sin on odd features, cos on even ones (1-based)", function()
    local pe = F.sinusoidal_encoding(3, 4, {dtype = "float64"})
    assert.same({3, 4}, pe.shape)
    assert.is_true(math.abs(pe[2][1]:item() - math.sin(1)) < 1e-15)
    assert.is_true(math.abs(pe[2][2]:item() - math.cos(1)) < 1e-15)
    assert.is_true(math.abs(pe[3][3]:item() - math.sin(2 / 100)) < 1e-15)
  end)
  it("rotary embedding keeps norms and makes scores depend on relative positions", function()
    local r = nn.RotaryEmbedding(8)
    local q = lucid.randn({1, 1, 8}, {dtype = "float64"})
    local k = lucid.randn({1, 1, 8}, {dtype = "float64"})
    local function score(i, j)
      return (r(q, {offset = i}) * r(k, {offset = j})):sum():item()
    end
    assert.is_true(math.abs(score(3, 1) - score(7, 5)) < 1e-12)
    assert.is_true(math.abs(r(q, {offset = 9}):norm():item() - q:norm():item()) < 1e-12)
  end)
end)

describe("Transformer layer errors", function()
  local function err(pat, f, ...)
    local ok, msg = pcall(f, ...)
    assert.is_false(ok)
    assert.matches(pat, msg, 1, true)
  end
  it("name the layer, its argument and the shapes", function()
    local enc = nn.TransformerEncoderLayer(8, 2, 16)
    err("nn.TransformerEncoderLayer: argument 2 (src): expected d_model 8 in dim 3, got 6", enc, lucid.randn(3, 2, 6))
    err("nn.TransformerEncoderLayer: src_mask: expected shape {3, 3}, got {3, 4}", enc, lucid.randn(3, 2, 8),
      lucid.zeros(3, 4))
    err("nn.TransformerEncoderLayer: src_key_padding_mask: expected shape {2, 3}, got {3, 2}", enc,
      lucid.randn(3, 2, 8), nil, lucid.zeros(3, 2, {dtype = "bool"}))
    local dec = nn.TransformerDecoderLayer(8, 2, 16)
    err("nn.TransformerDecoderLayer: argument 3 (memory): expected d_model 8 in dim 3, got 4", dec,
      lucid.randn(3, 2, 8), lucid.randn(5, 2, 4))
    err("nn.TransformerDecoderLayer: memory_key_padding_mask: expected shape {2, 5}, got {2, 4}", dec,
      lucid.randn(3, 2, 8), lucid.randn(5, 2, 8), {memory_key_padding_mask = lucid.zeros(2, 4, {dtype = "bool"})})
    err("nn.TransformerEncoderLayer: activation must be \"relu\", \"gelu\" or a function, got number 3",
      nn.TransformerEncoderLayer, 8, 2, 16, 0, 3)
  end)
end)

describe("Transformer checkpoints", function()
  it("a TransformerEncoder's state dict goes through safetensors with PyTorch's names", function()
    local enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, 0), 2, nn.LayerNorm(8))
    local path = os.tmpname()
    lucid.save(path, enc:state_dict(), {torch_names = true})
    local raw = lucid.load(path)
    assert.is_not_nil(raw["layers.0.self_attn.in_proj_weight"])
    assert.is_not_nil(raw["layers.1.linear2.bias"])
    assert.is_not_nil(raw["norm.weight"])
    local other = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, 0), 2, nn.LayerNorm(8))
    other:load_state_dict(lucid.load(path, {torch_names = true}))
    os.remove(path)
    local x = lucid.randn(3, 2, 8)
    assert.is_true(lucid.equal(enc(x), other(x)))
  end)
end)
