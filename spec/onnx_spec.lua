-- lucid.onnx: models exported by PyTorch 1.13 (spec/fixtures/onnx/*.onnx, written with their
-- inputs and PyTorch's outputs by tools/fixtures/onnx_export.py) run through lucid's ONNX
-- runtime: outputs equal PyTorch's (rtol 1e-4, atol 1e-5), with and without the fusions;
-- dynamic batch sizes, named inputs, several outputs, external data; fine-tuning with
-- {trainable = true}; the errors of bad calls and bad files.
local lucid = require "lucid"
local nn = require "lucid.nn"
local H = require "nn_helpers"

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local F = dofile(here .. "fixtures/onnx_export.lua")
local dir = here .. "fixtures/onnx/"

local function run_case(file, c, opts)
  local m = lucid.onnx.load(dir .. file, opts)
  local inputs = {}
  for i, x in ipairs(c.inputs) do inputs[i] = lucid.Tensor(x) end
  local outs = {m(table.unpack(inputs))}
  assert.equal(#c.outputs, #outs)
  for j, want in ipairs(c.outputs) do H.assert_close(outs[j], want, 1e-4, 1e-5) end
  return m, outs
end

describe("lucid.onnx", function()
  local files = {mlp = "mlp.onnx", mlp_batch5 = "mlp.onnx", two_io = "two_io.onnx",
    cnn = "cnn.onnx", conv_bn_relu = "conv_bn_relu.onnx", transformer = "transformer.onnx",
    lstm = "lstm.onnx", layernorm_gelu = "layernorm_gelu.onnx",
    mlp_external = "mlp_external.onnx"}
  local names = {}
  for k in pairs(F) do names[#names + 1] = k end
  table.sort(names)
  for _, name in ipairs(names) do
    it("runs " .. name .. " as PyTorch does", function() run_case(files[name], F[name]) end)
    it("runs " .. name .. " without fusions as PyTorch does", function()
      run_case(files[name], F[name], {fusion = false})
    end)
  end

  it("is an nn.Module naming its inputs and outputs", function()
    local m = lucid.onnx.load(dir .. "two_io.onnx")
    assert.same({"a", "b"}, m.input_names)
    assert.same({"ab", "rowsum"}, m.output_names)
    assert.equal(13, m.opset)
    assert.equal("float32", m.inputs[1].dtype)
    assert.same({2, 3}, m.inputs[1].shape)
    assert.truthy(tostring(m):find("OnnxModel", 1, true))
    local mlp = lucid.onnx.load(dir .. "mlp.onnx")
    assert.same({-1, 8}, mlp.inputs[1].shape) -- the batch is dynamic
    local count = 0
    for name, t in mlp:initializers() do
      count = count + 1
      assert.is_string(name)
      assert.is_true(lucid.is_tensor(t))
    end
    assert.equal(4, count)
    assert.equal(0, #mlp:parameters()) -- not trainable: no parameters
  end)

  it("takes named inputs and returns outputs by name", function()
    local c = F.two_io
    local m = lucid.onnx.load(dir .. "two_io.onnx")
    local a, b = lucid.Tensor(c.inputs[1]), lucid.Tensor(c.inputs[2])
    local ab, rowsum = m{b = b, a = a}
    H.assert_close(ab, c.outputs[1], 1e-4, 1e-5)
    H.assert_close(rowsum, c.outputs[2], 1e-4, 1e-5)
    local named = m:run{a = a, b = b}
    H.assert_close(named.rowsum, c.outputs[2], 1e-4, 1e-5)
    H.assert_close(named.ab, c.outputs[1], 1e-4, 1e-5)
  end)

  it("sits in an nn.Sequential", function()
    local seq = nn.Sequential(lucid.onnx.load(dir .. "mlp.onnx"), nn.ReLU())
    local y = seq(lucid.Tensor(F.mlp.inputs[1]))
    H.assert_close(y, lucid.Tensor(F.mlp.outputs[1]):relu():tolist(), 1e-4, 1e-5)
  end)

  it("fine-tunes with {trainable = true}: gradients as lucid's own layers give", function()
    local m = lucid.onnx.load(dir .. "mlp.onnx", {trainable = true})
    local params = m:parameters()
    assert.equal(4, #params)
    for name in m:named_parameters() do assert.is_nil(name:find(".", 1, true)) end
    -- the same network from lucid's layers, with the initializers' values (Gemm transB = 1:
    -- weights are (out, in) as in nn.Linear)
    local inits = {}
    for name, t in m:initializers() do inits[name] = t end
    local ref = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    lucid.no_grad(function()
      ref[1].weight:copy_(inits["0.weight"]); ref[1].bias:copy_(inits["0.bias"])
      ref[3].weight:copy_(inits["2.weight"]); ref[3].bias:copy_(inits["2.bias"])
    end)
    local x = lucid.Tensor(F.mlp.inputs[1])
    m(x):pow(2):sum():backward()
    ref(x):pow(2):sum():backward()
    H.assert_close(inits["0.weight"].grad, ref[1].weight.grad:tolist(), 1e-5, 1e-6)
    H.assert_close(inits["2.bias"].grad, ref[3].bias.grad:tolist(), 1e-5, 1e-6)
    -- and an optimizer lowers a loss through it
    local opt = lucid.optim.SGD(m:parameters(), {lr = 0.05})
    local target = lucid.zeros(3, 4)
    local first, last
    for step = 1, 20 do
      opt:zero_grad()
      local loss = nn.functional.mse_loss(m(x), target)
      loss:backward()
      opt:step()
      if step == 1 then first = loss:item() end
      last = loss:item()
    end
    assert.is_true(last < 0.5 * first)
  end)

  it("checks its inputs", function()
    local m = lucid.onnx.load(dir .. "mlp.onnx")
    local msg = H.err(m, lucid.zeros(3, 8), lucid.zeros(3, 8))
    assert.truthy(msg:find("takes 1 input (x), got 2", 1, true), msg)
    msg = H.err(m, lucid.zeros(3, 7))
    assert.truthy(msg:find("input 1 ('x'): dim 2 is 7, the model expects 8", 1, true), msg)
    msg = H.err(m, lucid.zeros(3, 8, {dtype = "float64"}))
    assert.truthy(msg:find("expected float32, got float64", 1, true), msg)
    msg = H.err(m, lucid.zeros(8))
    assert.truthy(msg:find("expected 2 dims, got 1", 1, true), msg)
    msg = H.err(m, {y = lucid.zeros(3, 8)})
    assert.truthy(msg:find("no graph input named 'y' (the inputs are: x)", 1, true), msg)
    msg = H.err(m, "x")
    assert.truthy(msg:find("argument 1 (x): expected a tensor, got string", 1, true), msg)
    -- and still runs afterwards
    H.assert_close(m(lucid.Tensor(F.mlp.inputs[1])), F.mlp.outputs[1], 1e-4, 1e-5)
  end)

  it("rejects bad options and files with clear errors", function()
    local msg = H.err(lucid.onnx.load, dir .. "mlp.onnx", {trainabel = true})
    assert.truthy(msg:find("onnx.load: unknown option 'trainabel'", 1, true), msg)
    msg = H.err(lucid.onnx.load, dir .. "mlp.onnx", {max_nodes = 0})
    assert.truthy(msg:find("option 'max_nodes': expected a positive integer", 1, true), msg)
    msg = H.err(lucid.onnx.load, 42)
    assert.truthy(msg:find("argument 1 (path): expected a string, got number", 1, true), msg)
    msg = H.err(lucid.onnx.load, dir .. "absent.onnx")
    assert.truthy(msg:find("lucid.onnx.load: onnx: cannot open", 1, true), msg)
    local tmp = os.tmpname()
    -- random bytes, then a truncated model
    local f = assert(io.open(tmp, "wb"))
    f:write(("\255\1\2\3garbage"):rep(50))
    f:close()
    msg = H.err(lucid.onnx.load, tmp)
    assert.truthy(msg:find("onnx", 1, true), msg)
    local whole = assert(io.open(dir .. "cnn.onnx", "rb")):read("a")
    for _, cut in ipairs({1, 17, #whole // 2, #whole - 3}) do
      f = assert(io.open(tmp, "wb"))
      f:write(whole:sub(1, cut))
      f:close()
      local ok, err = pcall(lucid.onnx.load, tmp)
      assert.is_false(ok, "a model cut at " .. cut .. " bytes loaded")
      assert.truthy(tostring(err):find("onnx", 1, true))
    end
    os.remove(tmp)
    -- a model too large for the caller's limit
    msg = H.err(lucid.onnx.load, dir .. "cnn.onnx", {max_file_bytes = 100})
    assert.truthy(msg:find("the limit is 100", 1, true), msg)
  end)

  it("reads ONNX's serialized tensors (8-bit integers widened to int32)", function()
    local t = lucid.onnx.read_tensor(dir .. "tensor_f32.pb")
    assert.equal("float32", t.dtype)
    assert.same({{0, 0.25, 0.5}, {0.75, 1, 1.25}}, t:tolist())
    t = lucid.onnx.read_tensor(dir .. "tensor_i64.pb")
    assert.equal("int64", t.dtype)
    assert.same({{-3}, {2 ^ 40 // 1}}, t:tolist())
    t = lucid.onnx.read_tensor(dir .. "tensor_u8.pb")
    assert.equal("int32", t.dtype)
    assert.same({0, 7, 255}, t:tolist())
    t = lucid.onnx.read_tensor(dir .. "tensor_bool.pb")
    assert.equal("bool", t.dtype)
    assert.same({true, false, true}, t:tolist())
    local msg = H.err(lucid.onnx.read_tensor, dir .. "mlp.onnx")
    assert.truthy(msg:find("onnx.read_tensor: onnx:", 1, true), msg)
  end)
end)
