-- lucid.onnx: running ONNX models (torch.onnx.export's files) on lucid's C runtime
-- (include/lucid_onnx.h; docs/onnx.md).
--
--   local m = lucid.onnx.load("model.onnx" [, {trainable = false, fusion = true,
--                              external_data_dir = dir, max_file_bytes = n, max_nodes = n,
--                              max_nesting = n}])
--   local y = m(x)                 -- inputs by position, outputs in graph order
--   local y = m{input = x}         -- or by the graph's input names
--   local outs = m:run{input = x}  -- outputs by name
--
-- The model is an nn.Module (class nn.OnnxModel): with {trainable = true} its float
-- initializers are its parameters, so lucid's optimizers can fine-tune it.
local lucid = require "lucid"
local core = require "lucid.core"
local nn = require "lucid.nn"
local A = require "lucid.args"

local fail, describe = A.fail, A.describe
local C = core._onnx

local onnx = {}

-- "lc_onnx_run: input 1 ..." -> "input 1 ..." (the Lua caller names itself)
local function core_text(msg)
  msg = tostring(msg):gsub("^lc_onnx_%w+: ", "")
  return msg
end

local OPTS = {trainable = "boolean", fusion = "boolean", external_data_dir = "string",
  max_file_bytes = "integer", max_nodes = "integer", max_nesting = "integer"}

local function check_opts(f, opts)
  if opts == nil then return {} end
  if type(opts) ~= "table" then fail("%s: argument 2 (options): expected a table, got %s", f, describe(opts)) end
  for k, v in pairs(opts) do
    local want = OPTS[k]
    if not want then fail("%s: unknown option '%s'", f, tostring(k)) end
    local ok
    if want == "integer" then ok = math.type(v) == "integer" and v > 0
    else ok = type(v) == want end
    if not ok then
      fail("%s: option '%s': expected %s, got %s", f, k,
        want == "integer" and "a positive integer" or "a " .. want, describe(v))
    end
  end
  return opts
end

local OnnxModel = nn.Module:extend("OnnxModel")
nn.OnnxModel = OnnxModel

function OnnxModel:init(path, opts)
  local f = "onnx.load"
  if type(path) ~= "string" then fail("%s: argument 1 (path): expected a string, got %s", f, describe(path)) end
  opts = check_opts(f, opts)
  local copts = {trainable = opts.trainable, no_fusion = opts.fusion == false,
    external_data_dir = opts.external_data_dir, max_file_bytes = opts.max_file_bytes,
    max_nodes = opts.max_nodes, max_nesting = opts.max_nesting}
  local m, err = C.load(path, copts)
  if not m then fail("%s: %s", f, core_text(err)) end
  self._model = m
  local info = C.info(m)
  self.path = path
  self.opset = info.opset
  -- nodes in the file, and nodes a run executes after folding and fusion
  self.num_nodes, self.num_nodes_run = info.nodes, info.nodes_run
  self.inputs = info.inputs -- {name, dtype, shape (-1: dynamic) | false}
  self.input_names, self.output_names = {}, {}
  for i, v in ipairs(info.inputs) do self.input_names[i] = v.name end
  for i, v in ipairs(info.outputs) do self.output_names[i] = v end
  -- the initializers by their ONNX names; trainable ones also as the module's parameters
  -- (a module name cannot hold ".": "fc1.weight" is registered as "fc1_weight")
  local names, tensors = C.parameters(m)
  self._init_names, self._init_tensors = names, tensors
  self.parameter_names = {}
  if opts.trainable then
    local used = {}
    for i, name in ipairs(names) do
      local t = tensors[i]
      if t.requires_grad then
        local pname = name:gsub("[.]", "_")
        if pname == "" then pname = "p" end
        local base, k = pname, 1
        while used[pname] or self[pname] ~= nil do k = k + 1; pname = base .. "_" .. k end
        used[pname] = true
        self:register_parameter(pname, t)
        self.parameter_names[pname] = name
      end
    end
  end
end

function OnnxModel:extra_repr()
  return ("%q, opset=%d, inputs=%d, outputs=%d"):format(self.path, self.opset,
    #self.input_names, #self.output_names)
end

-- The graph's inputs from m(x1, x2, ...) or m{name = x, ...}, in graph order.
local function gather_inputs(self, f, ...)
  local n, names = select("#", ...), self.input_names
  local first = ...
  local list = {}
  if n == 1 and type(first) == "table" and getmetatable(first) == nil then
    for k in pairs(first) do
      local known = false
      for _, name in ipairs(names) do if name == k then known = true break end end
      if not known then
        fail("%s: no graph input named '%s' (the inputs are: %s)", f, tostring(k),
          table.concat(names, ", "))
      end
    end
    for i, name in ipairs(names) do
      local v = first[name]
      if v == nil then fail("%s: input '%s' is missing", f, name) end
      if not core.is_tensor(v) then fail("%s: input '%s': expected a tensor, got %s", f, name, describe(v)) end
      list[i] = v
    end
  else
    if n ~= #names then
      fail("%s: the model takes %d input%s (%s), got %d", f, #names, #names == 1 and "" or "s",
        table.concat(names, ", "), n)
    end
    for i = 1, n do
      local v = select(i, ...)
      if not core.is_tensor(v) then
        fail("%s: argument %d (%s): expected a tensor, got %s", f, i, names[i], describe(v))
      end
      list[i] = v
    end
  end
  return list
end

local function run(self, f, ...)
  local outs, err = C.run(self._model, gather_inputs(self, f, ...))
  if not outs then fail("%s: %s", f, core_text(err)) end
  return outs
end

-- y1, y2, ... = m(x1, ...) or m{name = x}: the outputs in graph order.
function OnnxModel:forward(...)
  return table.unpack(run(self, "OnnxModel", ...))
end

-- outs = m:run(...): {output_name = tensor, ...}
function OnnxModel:run(...)
  local outs = run(self, "OnnxModel:run", ...)
  local named = {}
  for i, name in ipairs(self.output_names) do named[name] = outs[i] end
  return named
end

-- for name, tensor in m:initializers(): every initializer still used, by its ONNX name
function OnnxModel:initializers()
  local i, names, ts = 0, self._init_names, self._init_tensors
  return function()
    i = i + 1
    if names[i] ~= nil then return names[i], ts[i] end
  end
end

-- lucid.onnx.load(path [, opts]) -> nn.OnnxModel
function onnx.load(path, opts) return OnnxModel(path, opts) end

-- lucid.onnx.export(model, example_input, path [, {dynamic_batch = true}]): writes a model of
-- lucid's built-in modules (Sequential containers and the layers docs/onnx.md lists) as ONNX,
-- running example_input through it; the input is named "input", the output "output".
function onnx.export(model, example, path, opts)
  local f = "onnx.export"
  if getmetatable(model) ~= "lucid.Module" then
    fail("%s: argument 1 (model): expected a module, got %s", f, describe(model))
  end
  if not core.is_tensor(example) then
    fail("%s: argument 2 (example_input): expected a tensor, got %s", f, describe(example))
  end
  if type(path) ~= "string" then fail("%s: argument 3 (path): expected a string, got %s", f, describe(path)) end
  local dynamic = true
  if opts ~= nil then
    if type(opts) ~= "table" then fail("%s: argument 4 (options): expected a table, got %s", f, describe(opts)) end
    for k, v in pairs(opts) do
      if k ~= "dynamic_batch" then fail("%s: unknown option '%s'", f, tostring(k)) end
      if type(v) ~= "boolean" then fail("%s: option 'dynamic_batch': expected a boolean, got %s", f, describe(v)) end
      dynamic = v
    end
  end
  local ok, err = C.export(model, example, path, not dynamic)
  if not ok then fail("%s: %s", f, core_text(err)) end
  return path
end

-- lucid.onnx.read_tensor(path) -> tensor: one serialized TensorProto (ONNX's .pb test files)
function onnx.read_tensor(path)
  if type(path) ~= "string" then
    fail("onnx.read_tensor: argument 1 (path): expected a string, got %s", describe(path))
  end
  local t, err = C.read_tensor(path)
  if not t then fail("onnx.read_tensor: %s", core_text(err)) end
  return t
end

onnx.OnnxModel = OnnxModel
return onnx
