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
    mlp_external = "mlp_external.onnx", layernorm_decomposed = "layernorm_decomposed.onnx",
    layernorm_plain = "layernorm_plain.onnx", layernorm_shared = "layernorm_shared.onnx"}
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
    local mlp = lucid.onnx.load(dir .. "mlp.onnx", {fusion = false})
    assert.same({-1, 8}, mlp.inputs[1].shape) -- the batch is dynamic
    local count = 0
    for name, t in mlp:initializers() do
      count = count + 1
      assert.is_string(name)
      assert.is_true(lucid.is_tensor(t))
    end
    assert.equal(4, count)
    assert.equal(0, #mlp:parameters()) -- not trainable: no parameters
    -- fused, the Gemms run on folded copies: their initializers are not listed
    count = 0
    for _ in lucid.onnx.load(dir .. "mlp.onnx"):initializers() do count = count + 1 end
    assert.equal(0, count)
  end)

  it("folds and fuses: Conv + BatchNormalization + Relu and the exported GELU run as one node each", function()
    local m = lucid.onnx.load(dir .. "conv_bn_relu.onnx")
    assert.equal(3, m.num_nodes)
    assert.equal(1, m.num_nodes_run)
    assert.equal(3, lucid.onnx.load(dir .. "conv_bn_relu.onnx", {fusion = false}).num_nodes_run)
    -- Gemm, LayerNormalization, GELU (Div, Erf, Add, Mul, Mul and their Constants), Gemm
    m = lucid.onnx.load(dir .. "layernorm_gelu.onnx")
    assert.equal(4, m.num_nodes_run)
    assert.is_true(m.num_nodes >= 8)
    H.assert_close(m(lucid.Tensor(F.layernorm_gelu.inputs[1])), F.layernorm_gelu.outputs[1], 1e-4, 1e-5)
  end)

  it("fuses LayerNorm as exported before opset 17 (ReduceMean ... Div, Mul, Add) into one node", function()
    -- MatMul+Add, the layer norm (9 nodes), the GELU (5), MatMul+Add: 4 nodes run
    local m = lucid.onnx.load(dir .. "layernorm_decomposed.onnx")
    assert.equal(4, m.num_nodes_run)
    assert.is_true(lucid.onnx.load(dir .. "layernorm_decomposed.onnx", {fusion = false}).num_nodes_run >= 17)
    -- without elementwise affine the pattern ends at the Div
    assert.equal(1, lucid.onnx.load(dir .. "layernorm_plain.onnx").num_nodes_run)
    -- x - mean is also a graph output: nothing may be fused away (both outputs still right)
    m = lucid.onnx.load(dir .. "layernorm_shared.onnx")
    assert.equal(7, m.num_nodes_run)
    local y, d = m(lucid.Tensor(F.layernorm_shared.inputs[1]))
    H.assert_close(y, F.layernorm_shared.outputs[1], 1e-4, 1e-5)
    H.assert_close(d, F.layernorm_shared.outputs[2], 1e-4, 1e-5)
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

-- python3-onnx's checker (with full shape inference) on a file, when python3-onnx is installed
local function onnx_checker()
  local p = io.popen("/usr/bin/python3 -c 'import onnx' 2>/dev/null && echo yes")
  local have = p and p:read("a"):find("yes")
  if p then p:close() end
  if not have then return nil end
  return function(path)
    local cmd = ("/usr/bin/python3 -c \"import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), "
      .. "full_check=True); print('checked')\" '%s' 2>&1"):format(path)
    local q = assert(io.popen(cmd))
    local out = q:read("a")
    q:close()
    return out:find("checked", 1, true) ~= nil, out
  end
end

describe("lucid.onnx.export", function()
  local check = onnx_checker()
  if not check then print("# skip: python3-onnx is not installed: exported files are re-imported only") end

  -- exports, re-imports, compares with the module itself (and another batch size), checks
  -- index_shift: subtracted from the inputs given to the exported model (an Embedding's
  -- indices are 1-based in Lua, 0-based in ONNX, as in PyTorch)
  local function roundtrip(model, x, x2, opts, index_shift)
    local path = os.tmpname()
    model:eval()
    assert.equal(path, lucid.onnx.export(model, x, path, opts))
    local back = lucid.onnx.load(path)
    for _, input in ipairs{x, x2} do
      local want = lucid.no_grad(function() return model(input) end)
      local got = back(index_shift and input - index_shift or input)
      assert.same(want.shape, got.shape)
      H.assert_close(got, want:tolist(), 1e-4, 1e-5)
    end
    if check then
      local ok, out = check(path)
      assert.is_true(ok, out)
    end
    os.remove(path)
    return back
  end

  it("writes the seed's models (containers, named children, the CNN)", function()
    roundtrip(nn.Sequential(nn.Linear{in_features = 4, out_features = 3}, nn.ReLU(),
      nn.Linear{in_features = 3, out_features = 2}), lucid.randn(1, 4), lucid.randn(5, 4))
    roundtrip(nn.Sequential{{"fc1", nn.Linear(5, 3)}, {"activation", nn.Tanh()},
      {"fc2", nn.Linear(3, 1)}}, lucid.randn(2, 5), lucid.randn(3, 5))
    local cnn = nn.Sequential{
      {"conv1", nn.Conv2D{in_channels = 3, out_channels = 16, kernel_size = 3, padding = 1}},
      {"batch_norm1", nn.BatchNorm2d{num_features = 16}},
      {"relu1", nn.ReLU()},
      {"pool1", nn.MaxPool2d{kernel_size = 2, stride = 2}},
      {"conv2", nn.Conv2D{in_channels = 16, out_channels = 32, kernel_size = 3, padding = 1}},
      {"batch_norm2", nn.BatchNorm2d{num_features = 32}},
      {"relu2", nn.ReLU()},
      {"pool2", nn.MaxPool2d{kernel_size = 2, stride = 2}},
      {"flatten", nn.Flatten()},
      {"fc1", nn.Linear{in_features = 32 * 8 * 8, out_features = 128}},
      {"relu3", nn.ReLU()},
      {"fc2", nn.Linear{in_features = 128, out_features = 10}},
    }
    -- running statistics that are not the initial ones
    cnn:train()
    lucid.no_grad(function() cnn(lucid.randn(4, 3, 32, 32)) end)
    roundtrip(cnn, lucid.randn(1, 3, 32, 32), lucid.randn(3, 3, 32, 32))
    local path = os.tmpname()
    cnn:train()
    lucid.onnx.export(cnn, lucid.randn(1, 3, 32, 32), path)
    local names = {}
    for name in lucid.onnx.load(path, {fusion = false}):initializers() do names[name] = true end
    os.remove(path)
    assert.is_true(names["conv1.weight"] or false)
    assert.is_true(cnn.training) -- the module's mode is restored
    local layers = nn.ModuleList{nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 10)}
    roundtrip(nn.Sequential{{"layer_sequence", layers}, {"output_layer", nn.Linear(10, 1)}},
      lucid.randn(1, 10), lucid.randn(2, 10))
  end)

  it("writes the other built-in layers", function()
    roundtrip(nn.Sequential(nn.Conv1d(2, 4, 3, {padding = "same"}), nn.BatchNorm1d(4),
      nn.LeakyReLU(0.2), nn.AvgPool1d(2), nn.Conv1d(4, 4, 3, {stride = 2, padding_mode = "reflect",
      padding = 1}), nn.ELU(0.5), nn.Flatten(), nn.Dropout(0.5), nn.Linear(16, 6), nn.GELU(),
      nn.SiLU(), nn.Hardtanh(-0.5, 0.5), nn.LayerNorm(6), nn.ReLU6(), nn.Hardswish(),
      nn.Softmax(2)), lucid.randn(2, 2, 16), lucid.randn(5, 2, 16))
    roundtrip(nn.Sequential(nn.ConvTranspose2d(3, 2, 3, {stride = 2, padding = 1,
      output_padding = 1}), nn.Sigmoid(), nn.AdaptiveAvgPool2d(2), nn.Flatten(1, 2),
      nn.LogSoftmax(-1)), lucid.randn(1, 3, 4, 4), lucid.randn(2, 3, 4, 4))
    roundtrip(nn.Sequential(nn.Conv2d(1, 3, 3, {padding = 1, groups = 1, dilation = 1}),
      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 2)), lucid.randn(2, 1, 6, 6),
      lucid.randn(1, 1, 6, 6))
    -- an Embedding takes int64 indices (1-based in Lua, 0-based in the ONNX file, as
    -- PyTorch's); its 3-D output goes through MatMul + Add
    local emb = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 3))
    roundtrip(emb, lucid.Tensor({{1, 2, 3}, {4, 5, 6}}, {dtype = "int64"}),
      lucid.Tensor({{10, 1, 2}}, {dtype = "int64"}), nil, 1)
    -- a fixed batch size when asked
    local path = os.tmpname()
    lucid.onnx.export(nn.Sequential(nn.Linear(3, 2)), lucid.randn(4, 3), path, {dynamic_batch = false})
    assert.same({4, 3}, lucid.onnx.load(path).inputs[1].shape)
    os.remove(path)
  end)

  it("says which module it cannot write", function()
    local Custom = nn.Module:extend("Custom")
    function Custom:forward(x) return x * 2 end
    local model = nn.Sequential{{"fc", nn.Linear(3, 3)}, {"mine", Custom()}}
    local msg = H.err(lucid.onnx.export, model, lucid.randn(2, 3), os.tmpname())
    assert.truthy(msg:find("module 'mine' (Custom)", 1, true), msg)
    msg = H.err(lucid.onnx.export, model, "x", "/tmp/x.onnx")
    assert.truthy(msg:find("argument 2 (example_input): expected a tensor, got string", 1, true), msg)
    msg = H.err(lucid.onnx.export, nn.Linear(3, 3), lucid.randn(2, 3), "/tmp/x.onnx", {dynamic = true})
    assert.truthy(msg:find("unknown option 'dynamic'", 1, true), msg)
    msg = H.err(lucid.onnx.export, nn.Linear(3, 3), lucid.randn(2, 3), "/nonexistent/dir/x.onnx")
    assert.truthy(msg:find("cannot write", 1, true), msg)
  end)
end)

describe("docs/onnx.md", function()
  it("lists every op of the op table (src/onnx/op_list.h)", function()
    local list = assert(io.open("src/onnx/op_list.h")):read("a")
    local doc = assert(io.open("docs/onnx.md")):read("a")
    local n = 0
    for name in list:gmatch("\n%s*X%((%w+),") do
      n = n + 1
      assert.truthy(doc:find("`" .. name .. "`", 1, true), "docs/onnx.md does not list " .. name)
    end
    assert.is_true(n > 10)
  end)
end)
