-- lucid.nn.rnn: nn.RNN, nn.LSTM, nn.GRU, nn.RNNCell, nn.LSTMCell, nn.GRUCell and
-- nn.utils.rnn.pack_padded_sequence / pad_packed_sequence. The classes are Lua modules holding
-- PyTorch's parameters (names, shapes, order, init); all compute is lc_rnn / lc_rnn_cell
-- (src/ops/rnn.c, the fused recurrence in src/kernels/rnn.c) through core._rnn / core._rnn_cell
-- (src/lua/nn_rnn.c). See docs/nn/recurrent.md; specs in spec/nn_rnn_spec.lua.
return function(nn, P)
  local tcore = P.tcore
  local fail, describe, args, int_arg, bool_arg, num_arg =
    P.fail, P.describe, P.args, P.int_arg, P.bool_arg, P.num_arg
  local is_tensor = tcore.is_tensor

  local GATES = {RNN_TANH = 1, RNN_RELU = 1, LSTM = 4, GRU = 3}

  -- ---------------------------------------------------------------- packed sequences

  -- A light packed sequence: the padded data as given (time-major unless batch_first) and the
  -- per-sample lengths (int64); the recurrent modules mask the padded steps.
  local Packed = {}
  Packed.__index = Packed
  Packed.__name = "PackedSequence"
  Packed.__tostring = function(p)
    return ("PackedSequence(data=%s, lengths=%s, batch_first=%s)"):format(
      tostring(p.data.shape), tostring(p.lengths), tostring(p.batch_first))
  end
  local function is_packed(v) return getmetatable(v) == Packed end

  local function lengths_tensor(f, name, v)
    if is_tensor(v) then
      if v:dim() ~= 1 then fail("%s: %s must be a 1-D tensor, got %d-D", f, name, v:dim()) end
      local dt = v.dtype
      if dt ~= "int64" and dt ~= "int32" then
        fail("%s: %s must be an integer tensor, got %s", f, name, dt)
      end
      return v:to("int64"):detach()
    elseif type(v) == "table" then
      for i, n in ipairs(v) do
        if math.type(n) ~= "integer" then
          fail("%s: %s[%d] must be an integer, got %s", f, name, i, describe(n))
        end
      end
      if #v == 0 then fail("%s: %s must not be empty", f, name) end
      return tcore.tensor(v, {dtype = "int64"})
    end
    fail("%s: %s must be a 1-D integer tensor or a table of integers, got %s", f, name, describe(v))
  end

  local rnn_utils = {}
  rnn_utils.PackedSequence = Packed

  -- pack_padded_sequence(input, lengths [, {batch_first = false, enforce_sorted = true}])
  function rnn_utils.pack_padded_sequence(input, lengths, ...)
    local f = "nn.utils.rnn.pack_padded_sequence"
    if not is_tensor(input) then fail("%s: argument 1 (input) must be a tensor, got %s", f, describe(input)) end
    local a = args(f, {"batch_first", "enforce_sorted"}, ...)
    local bf = bool_arg(f, "batch_first", a.batch_first, false)
    local sorted = bool_arg(f, "enforce_sorted", a.enforce_sorted, true)
    local l = lengths_tensor(f, "argument 2 (lengths)", lengths)
    if input:dim() < 2 then fail("%s: argument 1 (input) must have at least 2 dims, got %d", f, input:dim()) end
    local T, B = input.shape[bf and 2 or 1], input.shape[bf and 1 or 2]
    if l:numel() ~= B then
      fail("%s: argument 2 (lengths): expected %d lengths (the batch size), got %d", f, B, l:numel())
    end
    local lt = l:tolist()
    for i, n in ipairs(lt) do
      if n < 1 or n > T then
        fail("%s: argument 2 (lengths): every length must be in [1, %d], got %d at %d", f, T, n, i)
      end
      if sorted and i > 1 and n > lt[i - 1] then
        fail("%s: argument 2 (lengths) must be sorted in decreasing order when enforce_sorted "
          .. "is true (pass enforce_sorted = false for unsorted lengths)", f)
      end
    end
    return setmetatable({data = input, lengths = l, batch_first = bf}, Packed)
  end

  -- pad_packed_sequence(p [, {batch_first = false, padding_value = 0, total_length}]) -> padded, lengths
  function rnn_utils.pad_packed_sequence(p, ...)
    local f = "nn.utils.rnn.pad_packed_sequence"
    if not is_packed(p) then fail("%s: argument 1 must be a PackedSequence, got %s", f, describe(p)) end
    local a = args(f, {"batch_first", "padding_value", "total_length"}, ...)
    local bf = bool_arg(f, "batch_first", a.batch_first, false)
    local pv = num_arg(f, "padding_value", a.padding_value, 0)
    local x = p.data
    if p.batch_first then x = x:transpose(1, 2) end -- {T, B, ...}
    local T, B = x.shape[1], x.shape[2]
    local lt = p.lengths:tolist()
    local maxl = 0
    for _, n in ipairs(lt) do if n > maxl then maxl = n end end
    local total = a.total_length ~= nil and int_arg(f, "total_length", a.total_length) or maxl
    if total < maxl then
      fail("%s: total_length (%d) must be at least the longest length (%d)", f, total, maxl)
    end
    local pad = tcore.arange(0, T):reshape(T, 1):ge(p.lengths:reshape(1, B))
    local sh = {T, B}
    for d = 3, x:dim() do
      pad = pad:unsqueeze(d)
      sh[d] = x.shape[d]
    end
    x = x:masked_fill(pad:expand(table.unpack(sh)), pv)
    if total < T then
      x = x:narrow(1, 1, total)
    elseif total > T then
      local zs = {total - T, table.unpack(sh, 2)}
      x = tcore.cat({x, tcore.full(zs, pv, {dtype = x.dtype})}, 1)
    end
    if bf then x = x:transpose(1, 2) end
    return x, p.lengths
  end
  nn.utils.rnn = rnn_utils

  -- ---------------------------------------------------------------- nn.RNN / LSTM / GRU

  local function init_uniform(self, hidden)
    local bound = hidden > 0 and 1 / math.sqrt(hidden) or 0
    local prev = tcore.set_grad_enabled(false)
    local ok, err = pcall(function()
      for _, name in ipairs(self._flat_names) do self[name]:uniform_(-bound, bound) end
    end)
    tcore.set_grad_enabled(prev)
    if not ok then error(err, 0) end
    return self
  end

  local function make_seq(cname, mode_of, params)
    local C = P.Module:extend(cname)
    nn[cname] = C
    local f = "nn." .. cname
    function C:init(...)
      local a = args(f, params, ...)
      local input_size = int_arg(f, "input_size", a.input_size, 0)
      local hidden = int_arg(f, "hidden_size", a.hidden_size, 1)
      local L = int_arg(f, "num_layers", a.num_layers == nil and 1 or a.num_layers, 1)
      local bias = bool_arg(f, "bias", a.bias, true)
      local bf = bool_arg(f, "batch_first", a.batch_first, false)
      local dropout = num_arg(f, "dropout", a.dropout, 0)
      if dropout < 0 or dropout > 1 then
        fail("%s: dropout must be a number in [0, 1], got %s", f, tostring(dropout))
      end
      local bidi = bool_arg(f, "bidirectional", a.bidirectional, false)
      local proj = 0
      if cname == "LSTM" then
        proj = int_arg(f, "proj_size", a.proj_size == nil and 0 or a.proj_size, 0)
        if proj >= hidden then
          fail("%s: proj_size has to be smaller than hidden_size, got %d >= %d", f, proj, hidden)
        end
      end
      local mode = mode_of(f, a)
      self.mode, self.input_size, self.hidden_size = mode, input_size, hidden
      self.num_layers, self.bias, self.batch_first = L, bias, bf
      self.dropout, self.bidirectional, self.proj_size = dropout, bidi, proj
      if cname == "RNN" then self.nonlinearity = mode == "RNN_RELU" and "relu" or "tanh" end
      local G, D = GATES[mode], bidi and 2 or 1
      local real = proj > 0 and proj or hidden
      local names = {}
      for l = 0, L - 1 do
        for d = 0, D - 1 do
          local sfx = ("l%d%s"):format(l, d == 1 and "_reverse" or "")
          local in_l = l == 0 and input_size or real * D
          local shapes = {{"weight_ih_", {G * hidden, in_l}}, {"weight_hh_", {G * hidden, real}}}
          if bias then
            shapes[#shapes + 1] = {"bias_ih_", {G * hidden}}
            shapes[#shapes + 1] = {"bias_hh_", {G * hidden}}
          end
          if proj > 0 then shapes[#shapes + 1] = {"weight_hr_", {proj, hidden}} end
          for _, s in ipairs(shapes) do
            local name = s[1] .. sfx
            self[name] = nn.Parameter(tcore.empty(s[2]))
            names[#names + 1] = name
          end
        end
      end
      self._flat_names = names
      self:reset_parameters()
    end

    function C:reset_parameters() return init_uniform(self, self.hidden_size) end

    function C:extra_repr()
      local s = ("%d, %d"):format(self.input_size, self.hidden_size)
      if self.proj_size ~= 0 then s = s .. ", proj_size=" .. self.proj_size end
      if self.num_layers ~= 1 then s = s .. ", num_layers=" .. self.num_layers end
      if not self.bias then s = s .. ", bias=false" end
      if self.batch_first then s = s .. ", batch_first=true" end
      if self.dropout ~= 0 then s = s .. ", dropout=" .. tostring(self.dropout) end
      if self.bidirectional then s = s .. ", bidirectional=true" end
      return s
    end

    -- out, h_n = m(x [, h0] [, {lengths = ...}]); LSTM: out, {h_n, c_n} = m(x [, {h0, c0}] [, opts])
    function C:forward(x, hx, opts)
      local lstm = self.mode == "LSTM"
      if opts == nil and type(hx) == "table" and not is_tensor(hx) and hx[1] == nil
          and next(hx) ~= nil then
        opts, hx = hx, nil -- m(x, {lengths = ...})
      end
      local lengths, packed = nil, nil
      local lengths_arg = "argument 3 (lengths)"
      if opts ~= nil then
        if type(opts) ~= "table" then fail("%s: argument 3 must be an options table, got %s", f, describe(opts)) end
        for k in pairs(opts) do
          if k ~= "lengths" then fail("%s: unknown option '%s'", f, tostring(k)) end
        end
        if opts.lengths ~= nil then lengths = lengths_tensor(f, lengths_arg, opts.lengths) end
      end
      if is_packed(x) then
        packed = x
        if packed.batch_first ~= self.batch_first then
          fail("%s: argument 1 (input): the PackedSequence was made with batch_first = %s, the "
            .. "module has batch_first = %s", f, tostring(packed.batch_first), tostring(self.batch_first))
        end
        lengths, lengths_arg = packed.lengths, "argument 1 (input.lengths)"
        x = packed.data
      end
      if not is_tensor(x) then fail("%s: argument 1 (input) must be a tensor, got %s", f, describe(x)) end
      if lengths ~= nil and x:dim() ~= 3 then
        fail("%s: argument 1 (input): lengths need a 3-D (batched) input, got %d-D", f, x:dim())
      end
      local h0, c0
      if lstm then
        if hx ~= nil then
          if type(hx) ~= "table" or is_tensor(hx) or not is_tensor(hx[1]) or not is_tensor(hx[2]) then
            fail("%s: argument 2 (hx) must be a table {h0, c0} of two tensors, got %s", f, describe(hx))
          end
          h0, c0 = hx[1], hx[2]
        end
      elseif hx ~= nil then
        if not is_tensor(hx) then fail("%s: argument 2 (hx) must be a tensor, got %s", f, describe(hx)) end
        h0 = hx
      end
      local w = {}
      for i, name in ipairs(self._flat_names) do w[i] = self[name] end
      local out, hn, cn = tcore._rnn(self.mode, x, h0, c0, w, {
        num_layers = self.num_layers, bidirectional = self.bidirectional,
        batch_first = self.batch_first, bias = self.bias, dropout = self.dropout,
        training = self.training, proj_size = self.proj_size, lengths = lengths, name = f,
        hx_arg = lstm and "argument 2 (hx[1])" or "argument 2 (hx)",
        cx_arg = "argument 2 (hx[2])", lengths_arg = lengths_arg})
      if packed then out = setmetatable({data = out, lengths = lengths, batch_first = packed.batch_first}, Packed) end
      if lstm then return out, {hn, cn} end
      return out, hn
    end
    return C
  end

  make_seq("RNN", function(f, a)
    local nl = a.nonlinearity == nil and "tanh" or a.nonlinearity
    if nl == "tanh" then return "RNN_TANH" elseif nl == "relu" then return "RNN_RELU" end
    fail("%s: unknown nonlinearity '%s' (expected 'tanh' or 'relu')", f, tostring(nl))
  end, {"input_size", "hidden_size", "num_layers", "nonlinearity", "bias", "batch_first",
        "dropout", "bidirectional"})
  make_seq("LSTM", function() return "LSTM" end, {"input_size", "hidden_size", "num_layers",
        "bias", "batch_first", "dropout", "bidirectional", "proj_size"})
  make_seq("GRU", function() return "GRU" end, {"input_size", "hidden_size", "num_layers", "bias",
        "batch_first", "dropout", "bidirectional"})

  -- ---------------------------------------------------------------- cells

  local function make_cell(cname, mode_of, params)
    local C = P.Module:extend(cname)
    nn[cname] = C
    local f = "nn." .. cname
    function C:init(...)
      local a = args(f, params, ...)
      local input_size = int_arg(f, "input_size", a.input_size, 0)
      local hidden = int_arg(f, "hidden_size", a.hidden_size, 1)
      local bias = bool_arg(f, "bias", a.bias, true)
      self.mode = mode_of(f, a)
      self.input_size, self.hidden_size, self.bias = input_size, hidden, bias
      if cname == "RNNCell" then self.nonlinearity = self.mode == "RNN_RELU" and "relu" or "tanh" end
      local G = GATES[self.mode]
      self.weight_ih = nn.Parameter(tcore.empty({G * hidden, input_size}))
      self.weight_hh = nn.Parameter(tcore.empty({G * hidden, hidden}))
      local names = {"weight_ih", "weight_hh"}
      if bias then
        self.bias_ih = nn.Parameter(tcore.empty({G * hidden}))
        self.bias_hh = nn.Parameter(tcore.empty({G * hidden}))
        names[3], names[4] = "bias_ih", "bias_hh"
      end
      self._flat_names = names
      self:reset_parameters()
    end
    function C:reset_parameters() return init_uniform(self, self.hidden_size) end
    function C:extra_repr()
      local s = ("%d, %d"):format(self.input_size, self.hidden_size)
      if not self.bias then s = s .. ", bias=false" end
      if self.nonlinearity and self.nonlinearity ~= "tanh" then
        s = s .. ", nonlinearity=" .. self.nonlinearity
      end
      return s
    end
    function C:forward(x, hx)
      local h, c
      if self.mode == "LSTM" then
        if hx ~= nil then
          if type(hx) ~= "table" or is_tensor(hx) or not is_tensor(hx[1]) or not is_tensor(hx[2]) then
            fail("%s: argument 2 (hx) must be a table {h, c} of two tensors, got %s", f, describe(hx))
          end
          h, c = hx[1], hx[2]
        end
      elseif hx ~= nil then
        if not is_tensor(hx) then fail("%s: argument 2 (hx) must be a tensor, got %s", f, describe(hx)) end
        h = hx
      end
      return tcore._rnn_cell(self.mode, x, h, c, self.weight_ih, self.weight_hh,
        self.bias and self.bias_ih or nil, self.bias and self.bias_hh or nil, f)
    end
    return C
  end

  make_cell("RNNCell", function(f, a)
    local nl = a.nonlinearity == nil and "tanh" or a.nonlinearity
    if nl == "tanh" then return "RNN_TANH" elseif nl == "relu" then return "RNN_RELU" end
    fail("%s: unknown nonlinearity '%s' (expected 'tanh' or 'relu')", f, tostring(nl))
  end, {"input_size", "hidden_size", "bias", "nonlinearity"})
  make_cell("LSTMCell", function() return "LSTM" end, {"input_size", "hidden_size", "bias"})
  make_cell("GRUCell", function() return "GRU" end, {"input_size", "hidden_size", "bias"})
end
