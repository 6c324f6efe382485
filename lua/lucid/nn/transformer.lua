-- lucid.nn.transformer: nn.MultiheadAttention, the Transformer layers and containers
-- (PyTorch 1.13's semantics, parameter names and init), nn.RMSNorm, and the positional helpers
-- (sinusoidal encoding, rotary embedding). They are Lua modules over C ops: projections are
-- F.linear (one GEMM), attention is F.scaled_dot_product_attention's fused kernel when it is
-- built in and no weights are asked for, else softmax(q k^T * scale + mask) v. A key/value
-- cache makes incremental decoding cost O(t) per token. See docs/nn/attention.md; specs in
-- spec/nn_transformer_spec.lua (fixtures from tools/fixtures/transformer.py).
return function(nn, P)
  local F, tcore = P.F, P.tcore
  local fail, describe, args = P.fail, P.describe, P.args
  local int_arg, num_arg, bool_arg = P.int_arg, P.num_arg, P.bool_arg
  local is_tensor = tcore.is_tensor
  local Module = P.Module

  local function lucid() return require "lucid" end -- lucid requires nn: resolved at call time

  local function shape_str(s) return "{" .. table.concat(s, ", ") .. "}" end

  local function need_tensor(f, name, v)
    if not is_tensor(v) then fail("%s: %s must be a tensor, got %s", f, name, describe(v)) end
    return v
  end

  local function need_shape(f, name, t, want)
    local s = t.shape
    local ok = #s == #want
    for i = 1, #want do ok = ok and s[i] == want[i] end
    if not ok then
      fail("%s: %s: expected shape %s, got %s", f, name, shape_str(want), shape_str(s))
    end
  end

  -- A bool mask (true = masked out) or a float mask (added) as a float mask in dtype.
  local function float_mask(f, name, m, dtype)
    if m.dtype == "bool" then
      return lucid().zeros(m.shape, {dtype = dtype}):masked_fill(m, -math.huge)
    end
    if m.dtype ~= "float32" and m.dtype ~= "float64" then
      fail("%s: %s must be a bool or float tensor, got dtype %s", f, name, m.dtype)
    end
    return m:to(dtype)
  end

  -- softmax(q k^T * scale + mask) v over the last two dims; weights returned when asked for.
  -- Without weights the fused kernel runs when it is built in (memory linear in the length).
  -- causal: the fused kernel's own top-left causal mask (no L x S mask built)
  local function attend(q, k, v, mask, dropout_p, need_weights, scale, causal)
    local sdpa = F.scaled_dot_product_attention
    if sdpa and not need_weights then
      return sdpa(q, k, v, {attn_mask = mask, dropout_p = dropout_p, scale = scale,
        is_causal = causal or nil})
    end
    local s = (q * scale):matmul(k:transpose(-2, -1))
    if mask then s = s + mask end
    local w = F.softmax(s, -1)
    if dropout_p > 0 then w = F.dropout(w, dropout_p, true) end
    return w:matmul(v), w
  end

  -- ---------------------------------------------------------------- positional helpers

  -- F.sinusoidal_encoding(length, d_model [, {dtype =, offset = 0}]): (length, d_model) with
  -- pe[p, 2i-1] = sin(p w_i), pe[p, 2i] = cos(p w_i), w_i = 10000^(-2(i-1)/d_model), positions
  -- p = offset .. offset + length - 1 (0 for the first token, as the Transformer paper).
  function F.sinusoidal_encoding(...)
    local f = "nn.functional.sinusoidal_encoding"
    local a = args(f, {"length", "d_model", "dtype", "offset"}, ...)
    local L = int_arg(f, "length", a.length, 0)
    local d = int_arg(f, "d_model", a.d_model, 1)
    if d % 2 ~= 0 then fail("%s: d_model must be even, got %d", f, d) end
    local off = int_arg(f, "offset", a.offset or 0, 0)
    local lu = lucid()
    local pos = lu.arange(off, off + L, {dtype = "float64"}):unsqueeze(2)
    local w = (lu.arange(0, d, 2, {dtype = "float64"}) * (-math.log(10000) / d)):exp()
    local ang = pos * w
    -- interleave sin and cos: stack on a new last dim, then merge it
    local pe = lu.stack({ang:sin(), ang:cos()}, 3):reshape(L, d)
    return pe:to(a.dtype or "float32")
  end

  -- nn.SinusoidalPositionalEncoding(d_model [, {dropout = 0, max_len = 5000, batch_first =
  -- false}]): x + pe for x (L, N, E) (batch_first: (N, L, E)) or (L, E); forward(x [, {offset}]).
  local SPE = Module:extend("SinusoidalPositionalEncoding")
  nn.SinusoidalPositionalEncoding = SPE
  function SPE:init(...)
    local f = "nn.SinusoidalPositionalEncoding"
    local a = args(f, {"d_model", "dropout", "max_len", "batch_first"}, ...)
    self.d_model = int_arg(f, "d_model", a.d_model, 1)
    self.max_len = int_arg(f, "max_len", a.max_len or 5000, 1)
    self.batch_first = bool_arg(f, "batch_first", a.batch_first, false)
    self.p = num_arg(f, "dropout", a.dropout, 0)
    -- a plain field, not a buffer: computed again on load, so checkpoints need not hold it
    self.pe = F.sinusoidal_encoding(self.max_len, self.d_model, {dtype = "float64"})
  end
  function SPE:extra_repr()
    return ("d_model=%d, max_len=%d, dropout=%g"):format(self.d_model, self.max_len, self.p)
  end
  function SPE:forward(x, opts)
    local f = "nn.SinusoidalPositionalEncoding"
    need_tensor(f, "argument 2 (input)", x)
    local off = opts and opts.offset or 0
    local nd = x:dim()
    if nd ~= 2 and nd ~= 3 then
      fail("%s: argument 2 (input): expected a 2-D or 3-D tensor, got %d-D", f, nd)
    end
    if x.shape[nd] ~= self.d_model then
      fail("%s: argument 2 (input): expected size %d in dim %d (d_model), got %d", f,
        self.d_model, nd, x.shape[nd])
    end
    local L = (nd == 3 and self.batch_first) and x.shape[2] or x.shape[1]
    if off + L > self.max_len then
      fail("%s: positions up to %d exceed max_len %d", f, off + L, self.max_len)
    end
    -- the table in x's dtype, converted once per dtype (not at every call)
    if not self._pe or self._pe.dtype ~= x.dtype then self._pe = self.pe:to(x.dtype) end
    local pe = self._pe:narrow(1, off + 1, L)
    if nd == 3 then pe = self.batch_first and pe:unsqueeze(1) or pe:unsqueeze(2) end
    local y = x + pe
    if self.p > 0 then y = F.dropout(y, self.p, self.training) end
    return y
  end

  -- nn.RotaryEmbedding(dim [, {base = 10000}]): RoPE on the first `dim` features of each head
  -- (dim even; the rest pass unchanged), "rotate half" layout (features i and i + dim/2 form a
  -- pair, as GPT-NeoX and Llama's Hugging Face port). rope(x [, {offset = 0}]) rotates x
  -- (..., L, head_dim) at positions offset .. offset + L - 1; rope:apply(q, k [, opts]) both.
  local Rope = Module:extend("RotaryEmbedding")
  nn.RotaryEmbedding = Rope
  function Rope:init(...)
    local f = "nn.RotaryEmbedding"
    local a = args(f, {"dim", "base"}, ...)
    self.dim = int_arg(f, "dim", a.dim, 2)
    if self.dim % 2 ~= 0 then fail("%s: dim must be even, got %d", f, self.dim) end
    self.base = num_arg(f, "base", a.base, 10000)
  end
  function Rope:extra_repr() return ("dim=%d, base=%g"):format(self.dim, self.base) end
  -- cos and sin (L, dim) in dtype for positions off .. off + L - 1
  function Rope:tables(L, off, dtype)
    local lu = lucid()
    local key = L .. ":" .. off .. ":" .. dtype
    if self._key == key then return self._cos, self._sin end
    local inv = (lu.arange(0, self.dim, 2, {dtype = "float64"}) * (-math.log(self.base) / self.dim)):exp()
    local ang = lu.arange(off, off + L, {dtype = "float64"}):unsqueeze(2) * inv
    ang = lu.cat({ang, ang}, 2)
    self._key, self._cos, self._sin = key, ang:cos():to(dtype), ang:sin():to(dtype)
    return self._cos, self._sin
  end
  function Rope:forward(x, opts)
    local f = "nn.RotaryEmbedding"
    need_tensor(f, "argument 2 (input)", x)
    local nd = x:dim()
    if nd < 2 then fail("%s: argument 2 (input): expected at least 2 dims (..., L, head_dim), got %d", f, nd) end
    local hd, L = x.shape[nd], x.shape[nd - 1]
    if hd < self.dim then
      fail("%s: argument 2 (input): head_dim (dim %d) is %d, smaller than the rotary dim %d", f, nd, hd, self.dim)
    end
    local off = opts and opts.offset or 0
    local cos, sin = self:tables(L, off, x.dtype)
    local r, rest = x, nil
    if hd > self.dim then r, rest = x:narrow(nd, 1, self.dim), x:narrow(nd, self.dim + 1, hd - self.dim) end
    local h = self.dim // 2
    local x1, x2 = r:narrow(nd, 1, h), r:narrow(nd, h + 1, h)
    local y = r * cos + lucid().cat({-x2, x1}, nd) * sin
    if rest then y = lucid().cat({y, rest}, nd) end
    return y
  end
  function Rope:apply(q, k, opts) return self(q, opts), self(k, opts) end

  -- ---------------------------------------------------------------- RMSNorm

  -- nn.RMSNorm(normalized_shape [, eps] [, elementwise_affine = true]) (PyTorch 2.4's):
  -- x / sqrt(mean(x^2 over the last #normalized_shape dims) + eps) * weight; eps nil means the
  -- dtype's machine epsilon, as PyTorch. F.rms_norm(x, normalized_shape [, {weight =, eps =}]).
  local function rms_norm(f, x, shape, weight, eps)
    local nd, k = x:dim(), #shape
    if nd < k then fail("%s: input must have at least %d dims, got %d", f, k, nd) end
    for i = 1, k do
      if x.shape[nd - k + i] ~= shape[i] then
        fail("%s: input's last %d dims must be %s (normalized_shape), got shape %s", f, k,
          shape_str(shape), shape_str(x.shape))
      end
    end
    local dims = {}
    for i = 1, k do dims[i] = nd - k + i end
    if eps == nil then eps = x.dtype == "float64" and 2.220446049250313e-16 or 1.1920928955078125e-07 end
    local y = x * ((x * x):mean(dims, true) + eps):rsqrt()
    if weight then y = y * weight end
    return y
  end
  local function shape_arg(f, s)
    if math.type(s) then s = {s} end
    if type(s) ~= "table" or #s == 0 then
      fail("%s: normalized_shape must be an integer or a non-empty table of integers, got %s", f, describe(s))
    end
    local out = {}
    for i, v in ipairs(s) do out[i] = int_arg(f, "normalized_shape[" .. i .. "]", v, 1) end
    return out
  end
  function F.rms_norm(x, ...)
    local f = "nn.functional.rms_norm"
    need_tensor(f, "argument 1 (input)", x)
    local a = P.args(f, {"normalized_shape", "weight", "eps"}, ...)
    return rms_norm(f, x, shape_arg(f, a.normalized_shape), a.weight, a.eps)
  end
  local RMSNorm = Module:extend("RMSNorm")
  nn.RMSNorm = RMSNorm
  function RMSNorm:init(shape, ...)
    local f = "nn.RMSNorm"
    local a
    if type(shape) == "table" and shape.normalized_shape ~= nil then
      a = args(f, {"normalized_shape", "eps", "elementwise_affine"}, shape)
    else
      a = args(f, {"eps", "elementwise_affine"}, ...)
      a.normalized_shape = shape
    end
    self.normalized_shape = shape_arg(f, a.normalized_shape)
    self.eps = a.eps ~= nil and num_arg(f, "eps", a.eps) or nil
    self.elementwise_affine = bool_arg(f, "elementwise_affine", a.elementwise_affine, true)
    if self.elementwise_affine then
      self.weight = nn.Parameter(lucid().ones(self.normalized_shape))
    end
  end
  function RMSNorm:extra_repr()
    return ("(%s,), eps=%s, elementwise_affine=%s"):format(table.concat(self.normalized_shape, ", "),
      self.eps and tostring(self.eps) or "None", tostring(self.elementwise_affine))
  end
  function RMSNorm:reset_parameters()
    if self.weight then nn.init.ones_(self.weight) end
  end
  function RMSNorm:forward(x)
    need_tensor("nn.RMSNorm", "argument 2 (input)", x)
    return rms_norm("nn.RMSNorm", x, self.normalized_shape, self.weight, self.eps)
  end

  -- ---------------------------------------------------------------- MultiheadAttention

  local MHA = Module:extend("MultiheadAttention")
  nn.MultiheadAttention = MHA
  local MHA_ARGS = {"embed_dim", "num_heads", "dropout", "bias", "add_bias_kv", "add_zero_attn",
    "kdim", "vdim", "batch_first", "rotary"}

  function MHA:init(...)
    local f = "nn.MultiheadAttention"
    local a = args(f, MHA_ARGS, ...)
    local E = int_arg(f, "embed_dim", a.embed_dim, 1)
    local H = int_arg(f, "num_heads", a.num_heads, 1)
    if E % H ~= 0 then
      fail("%s: embed_dim must be divisible by num_heads, got embed_dim %d and num_heads %d", f, E, H)
    end
    self._args = a
    self.embed_dim, self.num_heads, self.head_dim = E, H, E // H
    self.kdim = a.kdim and int_arg(f, "kdim", a.kdim, 1) or E
    self.vdim = a.vdim and int_arg(f, "vdim", a.vdim, 1) or E
    self.dropout = num_arg(f, "dropout", a.dropout, 0)
    if self.dropout < 0 or self.dropout > 1 then fail("%s: dropout must be in [0, 1], got %g", f, self.dropout) end
    self.batch_first = bool_arg(f, "batch_first", a.batch_first, false)
    self.add_zero_attn = bool_arg(f, "add_zero_attn", a.add_zero_attn, false)
    local bias = bool_arg(f, "bias", a.bias, true)
    local lu = lucid()
    self._qkv_same_embed_dim = self.kdim == E and self.vdim == E
    -- registration order = PyTorch's state_dict order
    if self._qkv_same_embed_dim then
      self.in_proj_weight = nn.Parameter(lu.empty(3 * E, E))
    else
      self.q_proj_weight = nn.Parameter(lu.empty(E, E))
      self.k_proj_weight = nn.Parameter(lu.empty(E, self.kdim))
      self.v_proj_weight = nn.Parameter(lu.empty(E, self.vdim))
    end
    if bias then self.in_proj_bias = nn.Parameter(lu.empty(3 * E)) end
    if bool_arg(f, "add_bias_kv", a.add_bias_kv, false) then
      self.bias_k = nn.Parameter(lu.empty(1, 1, E))
      self.bias_v = nn.Parameter(lu.empty(1, 1, E))
    end
    self.out_proj = nn.Linear(E, E, {bias = bias})
    if a.rotary ~= nil then
      if a.rotary == true then a.rotary = Rope(self.head_dim) end
      if not P.core.is_module(a.rotary) then
        fail("%s: rotary must be true or an nn.RotaryEmbedding, got %s", f, describe(a.rotary))
      end
      self.rotary = a.rotary
    end
    self:_reset_attention()
  end

  -- PyTorch's _reset_parameters: xavier_uniform_ projections, zero biases, xavier_normal_
  -- bias_k / bias_v (out_proj.weight keeps Linear's init)
  function MHA:_reset_attention()
    local init = nn.init
    if self.in_proj_weight then init.xavier_uniform_(self.in_proj_weight)
    else
      init.xavier_uniform_(self.q_proj_weight)
      init.xavier_uniform_(self.k_proj_weight)
      init.xavier_uniform_(self.v_proj_weight)
    end
    if self.in_proj_bias then
      init.zeros_(self.in_proj_bias)
      init.zeros_(self.out_proj.bias)
    end
    if self.bias_k then
      init.xavier_normal_(self.bias_k)
      init.xavier_normal_(self.bias_v)
    end
  end
  function MHA:reset_parameters() self:_reset_attention() end

  function MHA:extra_repr()
    local s = ("embed_dim=%d, num_heads=%d"):format(self.embed_dim, self.num_heads)
    if self.dropout > 0 then s = s .. (", dropout=%g"):format(self.dropout) end
    if not self._qkv_same_embed_dim then s = s .. (", kdim=%d, vdim=%d"):format(self.kdim, self.vdim) end
    if self.batch_first then s = s .. ", batch_first=true" end
    return s
  end

  local MHA_FWD = {"key", "value", "key_padding_mask", "need_weights", "attn_mask",
    "average_attn_weights", "is_causal", "cache"}

  -- The three projections: one GEMM for self-attention with the packed weight.
  function MHA:_project(q, k, v)
    local E = self.embed_dim
    local b = self.in_proj_bias
    local bq, bk, bv
    if b then bq, bk, bv = b:narrow(1, 1, E), b:narrow(1, E + 1, E), b:narrow(1, 2 * E + 1, E) end
    if self.in_proj_weight then
      local w = self.in_proj_weight
      if q == k and k == v then
        local p = F.linear(q, w, b)
        return p:narrow(-1, 1, E), p:narrow(-1, E + 1, E), p:narrow(-1, 2 * E + 1, E)
      end
      local wq, wk, wv = w:narrow(1, 1, E), w:narrow(1, E + 1, E), w:narrow(1, 2 * E + 1, E)
      if k == v then
        local wkv = w:narrow(1, E + 1, 2 * E)
        local p = F.linear(k, wkv, b and b:narrow(1, E + 1, 2 * E))
        return F.linear(q, wq, bq), p:narrow(-1, 1, E), p:narrow(-1, E + 1, E)
      end
      return F.linear(q, wq, bq), F.linear(k, wk, bk), F.linear(v, wv, bv)
    end
    return F.linear(q, self.q_proj_weight, bq), F.linear(k, self.k_proj_weight, bk),
      F.linear(v, self.v_proj_weight, bv)
  end

  -- mha(query [, key [, value]] [, {key_padding_mask =, need_weights = true, attn_mask =,
  -- average_attn_weights = true, is_causal = false, cache =}]) -> attn_output, weights (nil
  -- unless need_weights). key and value default to query (self-attention).
  function MHA:forward(query, ...)
    -- inside a Transformer layer, messages name the layer and its arguments (self._names)
    local names = self._names
    local f = names and names.f or "nn.MultiheadAttention"
    local am_name = names and names.attn_mask or "attn_mask"
    local kpm_name = names and names.key_padding_mask or "key_padding_mask"
    local a = args(f, MHA_FWD, ...)
    need_tensor(f, "argument 2 (query)", query)
    local key = a.key == nil and query or need_tensor(f, "argument 3 (key)", a.key)
    local value = a.value == nil and key or need_tensor(f, "argument 4 (value)", a.value)
    local need_weights = bool_arg(f, "need_weights", a.need_weights, true)
    local average = bool_arg(f, "average_attn_weights", a.average_attn_weights, true)
    local is_causal = bool_arg(f, "is_causal", a.is_causal, false)
    local E, H, hd = self.embed_dim, self.num_heads, self.head_dim
    local nd = query:dim()
    if nd ~= 2 and nd ~= 3 then
      fail("%s: argument 2 (query): expected a 2-D (unbatched) or 3-D tensor, got %d-D", f, nd)
    end
    local batched = nd == 3
    for i, t in ipairs{key, value} do
      if t:dim() ~= nd then
        fail("%s: argument %d (%s): expected a %d-D tensor as query, got %d-D", f, i + 2,
          i == 1 and "key" or "value", nd, t:dim())
      end
    end
    if not batched then
      query, key, value = query:unsqueeze(2), key:unsqueeze(2), value:unsqueeze(2)
    elseif self.batch_first then
      query, key, value = query:transpose(1, 2), key:transpose(1, 2), value:transpose(1, 2)
    end
    -- from here on (L, N, E) as PyTorch's function
    local L, N = query.shape[1], query.shape[2]
    local S = key.shape[1]
    if query.shape[3] ~= E then
      fail("%s: argument 2 (query): expected embed_dim %d in dim %d, got %d", f, E, nd, query.shape[3])
    end
    if key.shape[3] ~= self.kdim then
      fail("%s: argument 3 (key): expected kdim %d in dim %d, got %d", f, self.kdim, nd, key.shape[3])
    end
    if value.shape[3] ~= self.vdim then
      fail("%s: argument 4 (value): expected vdim %d in dim %d, got %d", f, self.vdim, nd, value.shape[3])
    end
    if key.shape[2] ~= N or value.shape[2] ~= N or value.shape[1] ~= S then
      fail("%s: key and value must have query's batch size %d and the same length, got key %s and value %s",
        f, N, shape_str(key.shape), shape_str(value.shape))
    end
    local q, k, v = self:_project(query, key, value)
    -- masks, as (N*H or 1, L, S') float masks added to the scores
    local dt = q.dtype
    local mask
    if a.attn_mask ~= nil then
      local m = need_tensor(f, am_name, a.attn_mask)
      if m:dim() == 2 then need_shape(f, am_name, m, {L, S}); m = m:unsqueeze(1)
      elseif m:dim() == 3 then need_shape(f, am_name, m, {N * H, L, S})
      else fail("%s: %s: expected a 2-D (L, S) or 3-D (N*num_heads, L, S) tensor, got %d-D", f, am_name, m:dim()) end
      mask = float_mask(f, am_name, m, dt)
    end
    local kpm
    if a.key_padding_mask ~= nil then
      kpm = need_tensor(f, kpm_name, a.key_padding_mask)
      if batched then need_shape(f, kpm_name, kpm, {N, S})
      else need_shape(f, kpm_name, kpm, {S}); kpm = kpm:unsqueeze(1) end
      kpm = float_mask(f, kpm_name, kpm, dt)
    end
    local lu = lucid()
    if self.bias_k then
      k = lu.cat({k, self.bias_k:expand(1, N, E)}, 1)
      v = lu.cat({v, self.bias_v:expand(1, N, E)}, 1)
      if mask then mask = F.pad(mask, {0, 1}) end
      if kpm then kpm = F.pad(kpm, {0, 1}) end
    end
    -- heads: (L, N, E) -> (N*H, L, hd)
    local function heads(t) return t:reshape(t.shape[1], N * H, hd):transpose(1, 2) end
    q, k, v = heads(q), heads(k), heads(v)
    if self.add_zero_attn then
      local z = lu.zeros({N * H, 1, hd}, {dtype = dt})
      k, v = lu.cat({k, z}, 2), lu.cat({v, z}, 2)
      if mask then mask = F.pad(mask, {0, 1}) end
      if kpm then kpm = F.pad(kpm, {0, 1}) end
    end
    -- the cache: earlier steps' keys and values (already projected, with their positions)
    local past = 0
    local cache = a.cache
    if cache ~= nil then
      if type(cache) ~= "table" then fail("%s: cache must be a table (nn.KVCache()), got %s", f, describe(cache)) end
      if self.bias_k or self.add_zero_attn then
        fail("%s: a cache cannot be combined with add_bias_kv or add_zero_attn", f)
      end
      past = cache.k and cache.k.shape[2] or 0
      if past > 0 and cache.k.shape[1] ~= N * H then
        fail("%s: cache holds a batch of %d, got a batch of %d", f, cache.k.shape[1] // H, N)
      end
    end
    if self.rotary then
      q = self.rotary(q, {offset = past})
      k = self.rotary(k, {offset = past})
    end
    if cache ~= nil then
      if past > 0 then
        k, v = lu.cat({cache.k, k}, 2), lu.cat({cache.v, v}, 2)
        if mask then fail("%s: attn_mask with a non-empty cache: use is_causal", f) end
        if kpm and kpm.shape[2] ~= past + S then
          fail("%s: key_padding_mask with a cache must cover all %d keys, got %d", f, past + S, kpm.shape[2])
        end
      end
      cache.k, cache.v = k, v
    end
    local Skeys = k.shape[2]
    -- without a cache or another mask, causal is the fused kernel's top-left triangle
    local fused_causal = is_causal and past == 0 and not mask and not kpm and not need_weights
      and F.scaled_dot_product_attention ~= nil
    if is_causal and not fused_causal and (L > 1 or Skeys > past + 1) then -- (one new last query sees every key)
      -- query i (at position past + i) sees keys j <= past + i
      local c = lu.ones(L, Skeys, {dtype = "bool"}):triu(past + 1)
      local cm = lu.zeros({L, Skeys}, {dtype = dt}):masked_fill(c, -math.huge):unsqueeze(1)
      mask = mask and mask + cm or cm
    end
    if kpm then
      kpm = kpm:reshape(N, 1, 1, Skeys):expand(N, H, 1, Skeys):reshape(N * H, 1, Skeys)
      mask = mask and mask + kpm or kpm
    end
    local p = self.training and self.dropout or 0
    local o, w = attend(q, k, v, mask, p, need_weights, 1 / math.sqrt(hd), fused_causal)
    -- (N*H, L, hd) -> (L, N, E) -> out_proj
    o = o:transpose(1, 2):reshape(L, N, E)
    o = self.out_proj(o)
    if need_weights then
      w = w:reshape(N, H, L, Skeys)
      if average then w = w:sum(2) / H end
    end
    if not batched then
      o = o:squeeze(2)
      if w then w = w:squeeze(1) end
    elseif self.batch_first then
      o = o:transpose(1, 2)
    end
    return o, w
  end

  -- nn.KVCache(): an empty cache for one attention module (fields k, v filled by forward);
  -- cache:reset() empties it, cache:length() the number of cached positions.
  local KVCache = {}
  KVCache.__index = KVCache
  function nn.KVCache() return setmetatable({}, KVCache) end
  function KVCache:reset() self.k, self.v = nil, nil end
  function KVCache:length() return self.k and self.k.shape[2] or 0 end

  -- ---------------------------------------------------------------- Transformer layers

  local function activation_arg(f, v)
    if v == nil or v == "relu" then return F.relu, "relu" end
    if v == "gelu" then return F.gelu, "gelu" end
    if type(v) == "function" then return v, "function" end
    fail("%s: activation must be \"relu\", \"gelu\" or a function, got %s", f, describe(v))
  end

  local LAYER_ARGS = {"d_model", "nhead", "dim_feedforward", "dropout", "activation",
    "layer_norm_eps", "batch_first", "norm_first", "rotary"}

  local function layer_common(self, f, a)
    self._args = a
    local d = int_arg(f, "d_model", a.d_model, 1)
    local h = int_arg(f, "nhead", a.nhead, 1)
    local ff = int_arg(f, "dim_feedforward", a.dim_feedforward or 2048, 1)
    local p = num_arg(f, "dropout", a.dropout, 0.1)
    local eps = num_arg(f, "layer_norm_eps", a.layer_norm_eps, 1e-5)
    self.batch_first = bool_arg(f, "batch_first", a.batch_first, false)
    self.norm_first = bool_arg(f, "norm_first", a.norm_first, false)
    self._act = activation_arg(f, a.activation)
    self.d_model = d
    return d, h, ff, p, eps
  end

  -- A copy with the same options and parameter values (PyTorch's deepcopy in _get_clones).
  -- x's last dim must be d_model (arg: the argument's position and name, for the message)
  local function need_features(self, f, arg, x)
    need_tensor(f, arg, x)
    local nd = x:dim()
    if nd ~= 2 and nd ~= 3 then fail("%s: %s: expected a 2-D (unbatched) or 3-D tensor, got %d-D", f, arg, nd) end
    if x.shape[nd] ~= self.d_model then
      fail("%s: %s: expected d_model %d in dim %d, got %d", f, arg, self.d_model, nd, x.shape[nd])
    end
  end

  local function clone_layer(f, layer)
    if type(layer) ~= "userdata" or not layer._args or not layer._clone then
      fail("%s: the layer must be an nn.TransformerEncoderLayer or nn.TransformerDecoderLayer, got %s", f, describe(layer))
    end
    return layer:_clone()
  end
  local function clone_via(cls)
    return function(self)
      local c = cls(self._args)
      c:load_state_dict(self:state_dict())
      if not self.training then c:eval() end
      return c
    end
  end

  local Enc = Module:extend("TransformerEncoderLayer")
  nn.TransformerEncoderLayer = Enc
  function Enc:init(...)
    local f = "nn.TransformerEncoderLayer"
    local a = args(f, LAYER_ARGS, ...)
    local d, h, ff, p, eps = layer_common(self, f, a)
    self.self_attn = MHA(d, h, {dropout = p, batch_first = self.batch_first, rotary = a.rotary})
    self.self_attn._names = {f = f, attn_mask = "src_mask", key_padding_mask = "src_key_padding_mask"}
    self.linear1 = nn.Linear(d, ff)
    self.dropout = nn.Dropout(p)
    self.linear2 = nn.Linear(ff, d)
    self.norm1 = nn.LayerNorm(d, {eps = eps})
    self.norm2 = nn.LayerNorm(d, {eps = eps})
    self.dropout1 = nn.Dropout(p)
    self.dropout2 = nn.Dropout(p)
  end
  Enc._clone = clone_via(Enc)
  function Enc:_sa(x, mask, kpm, causal, cache)
    return self.dropout1((self.self_attn(x, x, x, {attn_mask = mask, key_padding_mask = kpm,
      need_weights = false, is_causal = causal, cache = cache})))
  end
  function Enc:_ff(x) return self.dropout2(self.linear2(self.dropout(self._act(self.linear1(x))))) end
  -- layer(src [, src_mask [, src_key_padding_mask]] [, {is_causal =, cache =}])
  function Enc:forward(src, ...)
    local f = "nn.TransformerEncoderLayer"
    need_features(self, f, "argument 2 (src)", src)
    local a = P.core.collect_args(f, {"src_mask", "src_key_padding_mask"}, {"is_causal", "cache"}, true, ...)
    local x = src
    if self.norm_first then
      x = x + self:_sa(self.norm1(x), a.src_mask, a.src_key_padding_mask, a.is_causal, a.cache)
      x = x + self:_ff(self.norm2(x))
    else
      x = self.norm1(x + self:_sa(x, a.src_mask, a.src_key_padding_mask, a.is_causal, a.cache))
      x = self.norm2(x + self:_ff(x))
    end
    return x
  end

  local Dec = Module:extend("TransformerDecoderLayer")
  nn.TransformerDecoderLayer = Dec
  function Dec:init(...)
    local f = "nn.TransformerDecoderLayer"
    local a = args(f, LAYER_ARGS, ...)
    local d, h, ff, p, eps = layer_common(self, f, a)
    self.self_attn = MHA(d, h, {dropout = p, batch_first = self.batch_first, rotary = a.rotary})
    self.self_attn._names = {f = f, attn_mask = "tgt_mask", key_padding_mask = "tgt_key_padding_mask"}
    self.multihead_attn = MHA(d, h, {dropout = p, batch_first = self.batch_first})
    self.multihead_attn._names = {f = f, attn_mask = "memory_mask",
      key_padding_mask = "memory_key_padding_mask"}
    self.linear1 = nn.Linear(d, ff)
    self.dropout = nn.Dropout(p)
    self.linear2 = nn.Linear(ff, d)
    self.norm1 = nn.LayerNorm(d, {eps = eps})
    self.norm2 = nn.LayerNorm(d, {eps = eps})
    self.norm3 = nn.LayerNorm(d, {eps = eps})
    self.dropout1 = nn.Dropout(p)
    self.dropout2 = nn.Dropout(p)
    self.dropout3 = nn.Dropout(p)
  end
  Dec._clone = clone_via(Dec)
  local DEC_FWD = {"memory", "tgt_mask", "memory_mask", "tgt_key_padding_mask", "memory_key_padding_mask"}
  -- layer(tgt, memory [, tgt_mask [, memory_mask [, tgt_key_padding_mask [,
  -- memory_key_padding_mask]]]] [, {tgt_is_causal =, cache =}])
  function Dec:forward(tgt, ...)
    local f = "nn.TransformerDecoderLayer"
    need_features(self, f, "argument 2 (tgt)", tgt)
    local a = P.core.collect_args(f, DEC_FWD, {"tgt_is_causal", "cache"}, true, ...)
    need_features(self, f, "argument 3 (memory)", a.memory)
    local function sa(x)
      return self.dropout1((self.self_attn(x, x, x, {attn_mask = a.tgt_mask,
        key_padding_mask = a.tgt_key_padding_mask, need_weights = false,
        is_causal = a.tgt_is_causal, cache = a.cache})))
    end
    local function mha(x)
      return self.dropout2((self.multihead_attn(x, a.memory, a.memory, {attn_mask = a.memory_mask,
        key_padding_mask = a.memory_key_padding_mask, need_weights = false})))
    end
    local function ffb(x) return self.dropout3(self.linear2(self.dropout(self._act(self.linear1(x))))) end
    local x = tgt
    if self.norm_first then
      x = x + sa(self.norm1(x))
      x = x + mha(self.norm2(x))
      x = x + ffb(self.norm3(x))
    else
      x = self.norm1(x + sa(x))
      x = self.norm2(x + mha(x))
      x = self.norm3(x + ffb(x))
    end
    return x
  end

  -- nn.TransformerEncoder(encoder_layer, num_layers [, norm]): num_layers copies of the layer
  -- (same initial values, as PyTorch's deepcopy), in layers (a ModuleList), then norm if given.
  local TEnc = Module:extend("TransformerEncoder")
  nn.TransformerEncoder = TEnc
  local function stack_init(self, f, layer, n, norm)
    n = int_arg(f, "num_layers", n, 0)
    local list = {}
    for i = 1, n do list[i] = clone_layer(f, layer) end
    self.layers = nn.ModuleList(list)
    self.num_layers = n
    if norm ~= nil then
      if not P.core.is_module(norm) then fail("%s: norm must be a module, got %s", f, describe(norm)) end
      self.norm = norm
    end
  end
  function TEnc:init(...)
    local f = "nn.TransformerEncoder"
    local a = args(f, {"encoder_layer", "num_layers", "norm", "enable_nested_tensor"}, ...)
    stack_init(self, f, a.encoder_layer, a.num_layers, a.norm)
  end
  -- enc(src [, mask [, src_key_padding_mask]] [, {is_causal =, cache =}]); cache: a list of
  -- one nn.KVCache per layer (nn.TransformerEncoder.new_cache(enc) makes it).
  function TEnc:forward(src, ...)
    local f = "nn.TransformerEncoder"
    local a = P.core.collect_args(f, {"mask", "src_key_padding_mask"}, {"is_causal", "cache"}, true, ...)
    local x = src
    for i = 1, self.num_layers do
      x = self.layers[i](x, a.mask, a.src_key_padding_mask,
        {is_causal = a.is_causal, cache = a.cache and a.cache[i]})
    end
    if self.norm then x = self.norm(x) end
    return x
  end
  function TEnc:new_cache()
    local c = {}
    for i = 1, self.num_layers do c[i] = nn.KVCache() end
    return c
  end

  local TDec = Module:extend("TransformerDecoder")
  nn.TransformerDecoder = TDec
  function TDec:init(...)
    local f = "nn.TransformerDecoder"
    local a = args(f, {"decoder_layer", "num_layers", "norm"}, ...)
    stack_init(self, f, a.decoder_layer, a.num_layers, a.norm)
  end
  function TDec:forward(tgt, ...)
    local f = "nn.TransformerDecoder"
    local a = P.core.collect_args(f, DEC_FWD, {"tgt_is_causal", "cache"}, true, ...)
    local x = tgt
    for i = 1, self.num_layers do
      x = self.layers[i](x, a.memory, a.tgt_mask, a.memory_mask, a.tgt_key_padding_mask,
        a.memory_key_padding_mask, {tgt_is_causal = a.tgt_is_causal, cache = a.cache and a.cache[i]})
    end
    if self.norm then x = self.norm(x) end
    return x
  end
  TDec.new_cache = TEnc.new_cache

  -- nn.Transformer([d_model = 512] [, nhead = 8] [, num_encoder_layers = 6] [,
  -- num_decoder_layers = 6] [, dim_feedforward = 2048] [, dropout = 0.1] [, activation] [,
  -- custom_encoder] [, custom_decoder] [, layer_norm_eps] [, batch_first] [, norm_first])
  local T = Module:extend("Transformer")
  nn.Transformer = T
  function T:init(...)
    local f = "nn.Transformer"
    local a = args(f, {"d_model", "nhead", "num_encoder_layers", "num_decoder_layers",
      "dim_feedforward", "dropout", "activation", "custom_encoder", "custom_decoder",
      "layer_norm_eps", "batch_first", "norm_first"}, ...)
    local d, h = a.d_model or 512, a.nhead or 8
    local o = {d_model = d, nhead = h, dim_feedforward = a.dim_feedforward or 2048,
      dropout = a.dropout, activation = a.activation, layer_norm_eps = a.layer_norm_eps,
      batch_first = a.batch_first, norm_first = a.norm_first}
    local eps = num_arg(f, "layer_norm_eps", a.layer_norm_eps, 1e-5)
    self.d_model, self.nhead = int_arg(f, "d_model", d, 1), int_arg(f, "nhead", h, 1)
    self.batch_first = bool_arg(f, "batch_first", a.batch_first, false)
    self.encoder = a.custom_encoder or TEnc(Enc(o), a.num_encoder_layers or 6, nn.LayerNorm(d, {eps = eps}))
    self.decoder = a.custom_decoder or TDec(Dec(o), a.num_decoder_layers or 6, nn.LayerNorm(d, {eps = eps}))
    -- PyTorch's _reset_parameters: xavier_uniform_ on every parameter with more than one dim
    for _, p in ipairs(self:parameters()) do
      if p:dim() > 1 then nn.init.xavier_uniform_(p) end
    end
  end
  -- model(src, tgt [, src_mask [, tgt_mask [, memory_mask [, src_key_padding_mask [,
  -- tgt_key_padding_mask [, memory_key_padding_mask]]]]]])
  function T:forward(src, ...)
    local f = "nn.Transformer"
    local a = args(f, {"tgt", "src_mask", "tgt_mask", "memory_mask", "src_key_padding_mask",
      "tgt_key_padding_mask", "memory_key_padding_mask"}, ...)
    need_tensor(f, "argument 2 (src)", src)
    need_tensor(f, "argument 3 (tgt)", a.tgt)
    local bdim = self.batch_first and 1 or 2
    if src:dim() == 3 and a.tgt:dim() == 3 and src.shape[bdim] ~= a.tgt.shape[bdim] then
      fail("%s: the batch number of src and tgt must be equal, got %d and %d", f, src.shape[bdim], a.tgt.shape[bdim])
    end
    if src.shape[src:dim()] ~= self.d_model or a.tgt.shape[a.tgt:dim()] ~= self.d_model then
      fail("%s: the feature number of src and tgt must be equal to d_model %d, got %d and %d", f,
        self.d_model, src.shape[src:dim()], a.tgt.shape[a.tgt:dim()])
    end
    local memory = self.encoder(src, a.src_mask, a.src_key_padding_mask)
    return self.decoder(a.tgt, memory, a.tgt_mask, a.memory_mask, a.tgt_key_padding_mask,
      a.memory_key_padding_mask)
  end
  -- (sz, sz) float: -inf above the diagonal, 0 elsewhere
  function T.generate_square_subsequent_mask(sz, opts)
    local n = int_arg("nn.Transformer.generate_square_subsequent_mask", "sz", sz, 0)
    local lu = lucid()
    local dt = opts and opts.dtype or "float32"
    return lu.zeros({n, n}, {dtype = dt}):masked_fill(lu.ones(n, n, {dtype = "bool"}):triu(1), -math.huge)
  end
end
