-- The recurrent family (nn.RNN / LSTM / GRU, the cells, nn.utils.rnn) against PyTorch 1.13
-- (spec/fixtures/rnn.lua, written by tools/fixtures/rnn.py): the torch state_dict is loaded by
-- name with load_state_dict; outputs, final states and the gradients of the input, the initial
-- states and every parameter are compared. Then float64 gradchecks of the fused recurrence
-- (every mode, lengths, reverse) and the cells, errors, printing, and the safetensors round trip.
local lucid = require "lucid"
local nn = require "lucid.nn"
local H = require "nn_helpers"
local helpers = require "helpers"
local core = require "lucid.core" -- core._rnn / core._rnn_cell: what the modules call

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local F = dofile(here .. "fixtures/rnn.lua")

local function load_sd(model, state, dtype)
  model:to(dtype)
  local sd = {}
  for i, kv in ipairs(state) do sd[i] = {kv[1], lucid.Tensor(kv[2], {dtype = dtype})} end
  local missing, unexpected = model:load_state_dict(sd)
  assert.same({}, missing)
  assert.same({}, unexpected)
  -- the names come out in PyTorch's registration order
  local i = 0
  for name in model:named_parameters() do
    i = i + 1
    assert.equal(state[i][1], name)
  end
  assert.equal(#state, i)
  return model
end

local function tol(c) if c.dtype == "float32" then return 2e-5, 2e-5 end return 1e-9, 1e-10 end

local names = {}
for k in pairs(F) do names[#names + 1] = k end
table.sort(names)

describe("recurrent layers against PyTorch 1.13", function()
  for _, name in ipairs(names) do
    local c = F[name]
    it(name, function()
      local dt = c.dtype
      local rel, abs = tol(c)
      local cell = c.kind:find("Cell") ~= nil
      local m = load_sd(nn[c.kind](3, 4, c.options), c.state_dict, dt)
      local x = lucid.Tensor(c.input, {dtype = dt, requires_grad = true})
      local h0 = c.h0 and lucid.Tensor(c.h0, {dtype = dt, requires_grad = true})
      local c0 = c.c0 and lucid.Tensor(c.c0, {dtype = dt, requires_grad = true})
      local lstm = c.kind == "LSTM" or c.kind == "LSTMCell"
      local state = h0
      if lstm and h0 then state = {h0, c0} end
      local loss
      if cell then
        local h1, c1 = m(x, state)
        H.assert_close(h1, c.h1, rel, abs)
        loss = (h1 * lucid.Tensor(c.wh, {dtype = dt})):sum()
        if lstm then
          H.assert_close(c1, c.c1, rel, abs)
          loss = loss + (c1 * lucid.Tensor(c.wc, {dtype = dt})):sum()
        end
      else
        local inp = x
        if c.lengths then
          inp = nn.utils.rnn.pack_padded_sequence(x, c.lengths,
            {batch_first = c.options.batch_first or false, enforce_sorted = false})
        end
        local out, hn = m(inp, state)
        if c.lengths then
          out = nn.utils.rnn.pad_packed_sequence(out, {batch_first = c.options.batch_first or false,
            total_length = 5})
        end
        local cn
        if lstm then hn, cn = hn[1], hn[2] end
        H.assert_close(out, c.output, rel, abs)
        H.assert_close(hn, c.h_n, rel, abs)
        loss = (out * lucid.Tensor(c.wy, {dtype = dt})):sum() + (hn * lucid.Tensor(c.wh, {dtype = dt})):sum()
        if lstm then
          H.assert_close(cn, c.c_n, rel, abs)
          loss = loss + (cn * lucid.Tensor(c.wc, {dtype = dt})):sum()
        end
      end
      loss:backward()
      H.assert_close(x.grad, c.input_grad, rel, abs)
      if h0 then H.assert_close(h0.grad, c.h0_grad, rel, abs) end
      if c0 then H.assert_close(c0.grad, c.c0_grad, rel, abs) end
      for pname, p in m:named_parameters() do
        assert(c.grads[pname], pname)
        local ok, err = pcall(H.assert_close, p.grad, c.grads[pname], rel, abs)
        if not ok then error(pname .. ": " .. err) end
      end
    end)
  end
end)

describe("recurrent layers", function()
  local gradcheck = lucid.autograd.gradcheck

  it("print as PyTorch does", function()
    assert.equal("LSTM(10, 20, num_layers=2, batch_first=true, bidirectional=true)",
      tostring(nn.LSTM(10, 20, {num_layers = 2, batch_first = true, bidirectional = true})))
    assert.equal("LSTM(10, 20, proj_size=5)", tostring(nn.LSTM(10, 20, {proj_size = 5})))
    assert.equal("GRU(3, 4, bias=false, dropout=0.5)", tostring(nn.GRU(3, 4, {bias = false, dropout = 0.5})))
    assert.equal("RNN(3, 4)", tostring(nn.RNN(3, 4, {nonlinearity = "relu"})))
    assert.equal("RNNCell(3, 4, nonlinearity=relu)", tostring(nn.RNNCell(3, 4, {nonlinearity = "relu"})))
    assert.equal("LSTMCell(3, 4, bias=false)", tostring(nn.LSTMCell(3, 4, false)))
  end)

  it("init U(-1/sqrt(hidden), 1/sqrt(hidden)) for every weight and bias", function()
    local m = nn.GRU(5, 16, {num_layers = 2})
    for name, p in m:named_parameters() do
      assert.is_true(p:abs():max():item() <= 0.25, name)
      assert.is_true(p:abs():max():item() > 0.2, name)
    end
  end)

  -- The fused recurrence in float64 against finite differences: every mode, with lengths, in
  -- both directions, with initial states, and the cells.
  for _, kind in ipairs{"RNN", "RNN_relu", "LSTM", "LSTM_proj", "GRU"} do
    it("gradcheck " .. kind .. " (bidirectional, lengths, 2 layers)", function()
      lucid.manual_seed(7)
      local opts = {num_layers = 2, bidirectional = true}
      local cls = kind:match("^[A-Z]+")
      if kind == "RNN_relu" then opts.nonlinearity = "relu" end
      if kind == "LSTM_proj" then opts.proj_size = 2 end
      local m = nn[cls](3, 3, opts):double()
      local Ho = opts.proj_size or 3
      local x = lucid.randn(4, 3, 3, {dtype = "float64"})
      local h0 = lucid.randn(4, 3, Ho, {dtype = "float64"})
      local c0 = lucid.randn(4, 3, 3, {dtype = "float64"})
      local names, inputs = {}, {x, h0, c0}
      for n, p in m:named_parameters() do
        names[#names + 1] = n
        inputs[#inputs + 1] = p:detach()
      end
      local lengths = {4, 1, 3}
      assert.is_true(gradcheck(function(xx, hh, cc, ...)
        local ps = {...}
        local mm = {}
        for i, n in ipairs(names) do mm[n] = ps[i] end
        local w = {}
        for i, n in ipairs(m._flat_names) do w[i] = mm[n] end
        local out, hn, cn = core._rnn(m.mode, xx, hh, cls == "LSTM" and cc or nil, w,
          {num_layers = 2, bidirectional = true, proj_size = opts.proj_size,
           lengths = lucid.tensor(lengths, {dtype = "int64"}), name = "nn." .. cls})
        if cn then return lucid.cat({out:reshape(-1), hn:reshape(-1), cn:reshape(-1)}) end
        return lucid.cat({out:reshape(-1), hn:reshape(-1)})
      end, inputs))
    end)
  end

  for _, kind in ipairs{"RNNCell", "LSTMCell", "GRUCell"} do
    it("gradcheck " .. kind, function()
      lucid.manual_seed(3)
      local m = nn[kind](3, 4):double()
      local x = lucid.randn(2, 3, {dtype = "float64"})
      local h = lucid.randn(2, 4, {dtype = "float64"})
      local c = lucid.randn(2, 4, {dtype = "float64"})
      assert.is_true(gradcheck(function(xx, hh, cc, wih, whh, bih, bhh)
        local h1, c1 = core._rnn_cell(m.mode, xx, hh, kind == "LSTMCell" and cc or nil, wih, whh,
          bih, bhh, "nn." .. kind)
        if c1 then return lucid.cat({h1, c1}) end
        return h1
      end, {x, h, c, m.weight_ih:detach(), m.weight_hh:detach(), m.bias_ih:detach(),
            m.bias_hh:detach()}))
    end)
  end

  it("padded steps: no state update, no gradient, output 0; reverse starts at the last valid step", function()
    lucid.manual_seed(11)
    local m = nn.GRU(2, 3, {bidirectional = true}):double()
    local x = lucid.randn(5, 2, 2, {dtype = "float64", requires_grad = true})
    local out, hn = m(x, {lengths = {3, 5}})
    -- sample 1 alone, cut to its 3 steps, gives the same
    local x1 = x:detach():narrow(2, 1, 1):narrow(1, 1, 3)
    local o1, h1 = m(x1)
    H.assert_close(out:narrow(2, 1, 1):narrow(1, 1, 3), o1:tolist(), 1e-12, 1e-12)
    H.assert_close(hn:narrow(2, 1, 1), h1:tolist(), 1e-12, 1e-12)
    assert.equal(0, out:narrow(2, 1, 1):narrow(1, 4, 2):abs():sum():item())
    out:sum():backward()
    assert.equal(0, x.grad:narrow(2, 1, 1):narrow(1, 4, 2):abs():sum():item())
  end)

  it("dropout between layers only when training", function()
    lucid.manual_seed(5)
    local m = nn.LSTM(3, 4, {num_layers = 2, dropout = 0.5})
    local x = lucid.randn(4, 2, 3)
    m:eval()
    local a = m(x)
    local b = m(x)
    H.assert_close(a, b:tolist(), 0, 0)
    m:train()
    local c = m(x)
    assert.is_false(H.close(a:tolist(), c:tolist(), 1e-6, 1e-7))
  end)

  it("state_dict round-trips through safetensors", function()
    local m = nn.LSTM(3, 4, {num_layers = 2, bidirectional = true, proj_size = 2})
    local path = os.tmpname()
    lucid.save(path, m:state_dict())
    local m2 = nn.LSTM(3, 4, {num_layers = 2, bidirectional = true, proj_size = 2})
    local missing, unexpected = m2:load_state_dict(lucid.load(path))
    os.remove(path)
    assert.same({}, missing)
    assert.same({}, unexpected)
    local x = lucid.randn(3, 2, 3)
    local o1, s1 = m(x)
    local o2, s2 = m2(x)
    H.assert_close(o1, o2:tolist(), 0, 0)
    H.assert_close(s1[2], s2[2]:tolist(), 0, 0)
  end)

  it("pad_packed_sequence masks, trims and converts the layout", function()
    local x = lucid.ones(2, 4, 1) -- batch_first
    local p = nn.utils.rnn.pack_padded_sequence(x, {2, 3}, {batch_first = true, enforce_sorted = false})
    local y, l = nn.utils.rnn.pad_packed_sequence(p, {padding_value = -1})
    assert.same({3, 2, 1}, y.shape)
    assert.same({{{1}, {1}}, {{1}, {1}}, {{-1}, {1}}}, y:tolist())
    assert.same({2, 3}, l:tolist())
    helpers.raises("must be sorted in decreasing order",
      nn.utils.rnn.pack_padded_sequence, x, {2, 3}, {batch_first = true})
  end)

  it("unbatched input as PyTorch 1.13 accepts", function()
    local m = nn.LSTM(3, 4, {num_layers = 2})
    local out, hc = m(lucid.randn(5, 3))
    assert.same({5, 4}, out.shape)
    assert.same({2, 4}, hc[1].shape)
    assert.same({2, 4}, hc[2].shape)
    local g = nn.GRUCell(3, 4)
    assert.same({4}, g(lucid.randn(3)).shape)
  end)

  it("bad input: errors name the module, the argument, expected vs actual shape", function()
    local m = nn.LSTM(10, 20, {num_layers = 2})
    local x = lucid.randn(5, 3, 10)
    helpers.raises("nn.LSTM: argument 2 (hx[1]): expected shape {2, 3, 20}, got {1, 3, 20}",
      function() return m(x, {lucid.zeros(1, 3, 20), lucid.zeros(2, 3, 20)}) end)
    helpers.raises("nn.LSTM: argument 2 (hx[2]): expected shape {2, 3, 20}, got {2, 3, 21}",
      function() return m(x, {lucid.zeros(2, 3, 20), lucid.zeros(2, 3, 21)}) end)
    helpers.raises({"nn.LSTM: argument 1 (input)", "2-D (unbatched) or 3-D (batched)", "got 4-D"},
      function() return m(lucid.randn(1, 5, 3, 10)) end)
    helpers.raises({"nn.LSTM: argument 1 (input)", "to be 10", "got 7"},
      function() return m(lucid.randn(5, 3, 7)) end)
    local g = nn.GRU(10, 20)
    helpers.raises("nn.GRU: argument 2 (hx): expected shape {1, 3, 20}, got {1, 2, 20}",
      function() return g(x, lucid.zeros(1, 2, 20)) end)
    helpers.raises({"nn.GRU: argument 3 (lengths)", "expected shape {3}, got {2}"},
      function() return g(x, {lengths = {1, 2}}) end)
    helpers.raises({"nn.GRU: argument 3 (lengths)", "[1, 5]", "got 6 at sample 3"},
      function() return g(x, {lengths = {1, 2, 6}}) end)
    helpers.raises({"nn.GRU: argument 3 (lengths)", "[1, 5]", "got 0"},
      function() return g(x, {lengths = {0, 2, 3}}) end)
    helpers.raises({"nn.GRUCell: argument 2 (hx): expected shape {3, 20}, got {3, 2}"},
      function() return nn.GRUCell(10, 20)(lucid.randn(3, 10), lucid.zeros(3, 2)) end)
    helpers.raises({"nn.LSTMCell: argument 2 (hx[2])"},
      function() return nn.LSTMCell(10, 20)(lucid.randn(3, 10), {lucid.zeros(3, 20), lucid.zeros(3)}) end)
    helpers.raises({"nn.RNN: argument 1 (input)", "float32 or float64", "int64"},
      function() return nn.RNN(2, 2)(lucid.zeros(3, 1, 2, {dtype = "int64"})) end)
    helpers.raises("proj_size has to be smaller", function() return nn.LSTM(3, 4, {proj_size = 4}) end)
  end)

  it("create_graph through the recurrence is a clear error", function()
    local m = nn.GRU(2, 2):double()
    local x = lucid.randn(3, 1, 2, {dtype = "float64", requires_grad = true})
    local out = m(x)
    helpers.raises("RnnRecurrenceBackward", function()
      return lucid.autograd.grad(out:sum(), {x}, {create_graph = true})
    end)
  end)
end)

describe("docs/nn/recurrent.md", function()
  it("its Lua examples run and print what their --> comments say", function()
    local f = assert(io.open(here .. "../docs/nn/recurrent.md", "rb"))
    local doc = f:read("a")
    f:close()
    -- the blocks build on each other (the first one's lucid and nn): run them as one chunk
    local n, codes = 0, {}
    for code in doc:gmatch("```lua\n(.-)```") do
      n = n + 1
      codes[n] = "do\n" .. code .. "end"
    end
    local code = "local lucid = require 'lucid'\nlocal nn = lucid.nn\n" .. table.concat(codes, "\n")
    local want, got = {}, {}
    for line in code:gmatch("[^\n]+") do
      local w = line:match("^print%(.*%)%s+%-%->%s(.*)$")
      if w then want[#want + 1] = w end
    end
    local env = setmetatable({print = function(...)
      local parts = {}
      for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
      got[#got + 1] = table.concat(parts, "\t")
    end}, {__index = _G})
    assert(load(code, "=recurrent.md", "t", env))()
    assert.same(want, got)
    assert.is_true(n >= 3)
  end)
end)
