-- lucid.save / lucid.load (safetensors checkpoints): round trips of every kind of object,
-- files written by PyTorch's safetensors layout (spec/fixtures/io/, written by
-- tools/fixtures/safetensors.py), crash safety and error messages.
local lucid = require "lucid"
local nn = require "lucid.nn"
local serialize = require "lucid.serialize"
local H = require "helpers"

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local F = dofile(here .. "fixtures/io_safetensors.lua")
local FIXDIR = here .. "fixtures/"

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p '" .. d .. "'"))
  return d
end

local function rmdir(d) os.execute("rm -rf '" .. d .. "'") end

local function listdir(d)
  local p = assert(io.popen("ls -A '" .. d .. "'"))
  local names = {}
  for line in p:lines() do names[#names + 1] = line end
  p:close()
  table.sort(names)
  return names
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local function flat(t)
  local v = t:reshape(-1):tolist()
  return type(v) == "table" and v or {v}
end

local dtype_of = {F32 = "float32", F64 = "float64", I64 = "int64", I32 = "int32", BOOL = "bool",
                  F16 = "float16", BF16 = "bfloat16", U8 = "int32", I8 = "int32", I16 = "int32"}

local function check_fixture_tensors(sd, spec)
  assert.equal(#spec.tensors, #sd)
  for i, want in ipairs(spec.tensors) do
    local name, t = sd[i][1], sd[i][2]
    assert.equal(want.name, name)
    assert.equal(dtype_of[want.dtype], t.dtype, name)
    assert.same(want.shape, t.shape, name)
    assert.same(want.values, flat(t), name) -- exact: the values were converted exactly
  end
end

describe("lucid.load of files in PyTorch's safetensors layout", function()
  it("loads a PyTorch state_dict as an ordered state dict with its metadata", function()
    local spec = F.torch_model
    local sd, meta = lucid.load(FIXDIR .. spec.file)
    assert.equal("StateDict", getmetatable(sd).__name)
    check_fixture_tensors(sd, spec)
    assert.same(spec.metadata, meta)
    assert.truthy(lucid.equal(sd["0.weight"], sd[2][2]))
  end)

  it("maps PyTorch's 0-based child names and reproduces the model's output", function()
    local spec = F.torch_model
    local sd = serialize.from_torch_names(lucid.load(FIXDIR .. spec.file))
    local names = {}
    for i, kv in ipairs(sd) do names[i] = kv[1] end
    assert.same({"1.bias", "1.weight", "3.bias", "3.weight"}, names)
    local model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    local missing, unexpected = model:load_state_dict(sd)
    assert.same({}, missing)
    assert.same({}, unexpected)
    local x = lucid.Tensor(spec.input.values):reshape(spec.input.shape)
    local y = model(x)
    assert.same(spec.output.shape, y.shape)
    local want = spec.output.values
    for i, v in ipairs(flat(y)) do assert.is_true(math.abs(v - want[i]) <= 1e-5 * (1 + math.abs(want[i]))) end
    -- the same through the load option
    local sd2 = lucid.load(FIXDIR .. spec.file, {torch_names = true})
    assert.equal("1.bias", sd2[1][1])
    model:load_state_dict(sd2)
  end)

  it("loads every dtype (F16/BF16 as float16/bfloat16, small integers as int32)", function()
    local spec = F.torch_dtypes
    local sd, meta = lucid.load(FIXDIR .. spec.file)
    check_fixture_tensors(sd, spec)
    assert.same(spec.metadata, meta)
    assert.equal(0, sd["scalar"].ndim)
    assert.same({0, 3}, sd["empty"].shape)
  end)

  it("reads the files lucid wrote for the Python reader back into the same structure", function()
    local sd = lucid.load(FIXDIR .. "io/lucid_state_dict.safetensors")
    assert.equal("StateDict", getmetatable(sd).__name)
    assert.equal("1.weight", sd[1][1])
    assert.equal("3.bias", sd[4][1])
    local ck, meta = lucid.load(FIXDIR .. "io/lucid_checkpoint.safetensors")
    assert.same({source = "lucid"}, meta)
    assert.equal(3, ck.epoch)
    assert.equal("integer", math.type(ck.epoch))
    assert.equal(0.1, ck.optim.param_groups[1].lr)
    assert.same({1, 2}, ck.optim.param_groups[1].params)
    assert.equal(3, ck.optim.state[1].step)
    assert.same({4, 3}, ck.optim.state[1].exp_avg.shape)
    assert.equal("StateDict", getmetatable(ck.model).__name)
    assert.same({true, false, true}, ck.mask:tolist())
    assert.equal(2.5, ck.scalar:item())
    assert.same({-3, -2, -1, 0, 1, 2}, flat(ck.i64))
    assert.equal("int32", ck.i32.dtype)
  end)
end)

describe("lucid.save / lucid.load round trips", function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() rmdir(dir) end)

  it("a module's state_dict keeps order and values and loads into a fresh model", function()
    lucid.manual_seed(7)
    local model = nn.Sequential{{"fc1", nn.Linear(4, 3)}, {"act", nn.Tanh()}, {"fc2", nn.Linear(3, 2)}}
    local sd = model:state_dict()
    local path = dir .. "/model.safetensors"
    lucid.save(path, sd)
    local back = lucid.load(path)
    assert.equal("StateDict", getmetatable(back).__name)
    assert.equal(#sd, #back)
    for i, kv in ipairs(sd) do
      assert.equal(kv[1], back[i][1])
      assert.is_true(kv[2]:equal(back[i][2]))
      assert.equal(kv[2].dtype, back[i][2].dtype)
    end
    assert.is_true(back["fc2.bias"]:equal(model.fc2.bias))
    local fresh = nn.Sequential{{"fc1", nn.Linear(4, 3)}, {"act", nn.Tanh()}, {"fc2", nn.Linear(3, 2)}}
    fresh:load_state_dict(back)
    local x = lucid.randn(5, 4)
    assert.is_true(fresh(x):equal(model(x)))
    assert.same({"model.safetensors"}, listdir(dir))
  end)

  it("a table name -> tensor of every dtype, shape and layout", function()
    local w = lucid.randn(3, 4)
    local obj = {
      f32 = w,
      f64 = lucid.randn(2, 2, {dtype = "float64"}),
      i32 = lucid.tensor({-2147483648, 0, 2147483647}, {dtype = "int32"}),
      i64 = lucid.tensor({-(1 << 62), 5}, {dtype = "int64"}),
      flags = lucid.tensor({true, false}),
      scalar = lucid.tensor(1.5),
      empty = lucid.zeros(0, 4),
      wT = w:t(),                                   -- a non-contiguous view
      grad = lucid.ones(2, {requires_grad = true}), -- data only; requires_grad is not stored
      ["with.dots"] = lucid.arange(3),
    }
    local path = dir .. "/d.safetensors"
    lucid.save(path, obj)
    local back = lucid.load(path)
    assert.is_nil(getmetatable(back))
    local n = 0
    for k, t in pairs(obj) do
      n = n + 1
      assert.is_true(lucid.is_tensor(back[k]), k)
      assert.equal(t.dtype, back[k].dtype, k)
      assert.same(t.shape, back[k].shape, k)
      assert.is_true(t:equal(back[k]), k)
    end
    local m = 0
    for _ in pairs(back) do m = m + 1 end
    assert.equal(n, m)
    assert.is_false(back.grad.requires_grad)
    assert.is_true(back.wT:is_contiguous())
  end)

  it("a nested checkpoint keeps key types, numbers, booleans and strings exactly", function()
    local exp_avg = lucid.randn(4)
    local obj = {
      model = nn.Linear(2, 2):state_dict(),
      optim = {
        state = {[1] = {step = 3, exp_avg = exp_avg}, [2] = {step = 3, exp_avg = lucid.zeros(2)}},
        param_groups = {{lr = 0.1, betas = {0.9, 0.999}, params = {1, 2}, amsgrad = false}},
      },
      epoch = 3,
      third = 1 / 3,
      big = math.maxinteger,
      small = math.mininteger,
      inf = math.huge, ninf = -math.huge, nan = 0 / 0, negzero = -0.0,
      name = "run \"α\"\n\t\1end",
      bytes = "\255\0\128",
      empty = {},
      mixed = {10, 20, x = "y", [2.5] = "float key", [true] = "bool key", [-1] = "negative"},
      shared = {a = exp_avg, b = exp_avg},
    }
    local path = dir .. "/ckpt.safetensors"
    lucid.save(path, obj, {metadata = {author = "spec"}})
    local back, meta = lucid.load(path)
    assert.same({author = "spec"}, meta)
    assert.equal("StateDict", getmetatable(back.model).__name)
    assert.same({"weight", "bias"}, {back.model[1][1], back.model[2][1]})
    assert.equal(3, back.optim.state[1].step)
    assert.equal("integer", math.type(back.optim.state[1].step))
    assert.is_true(back.optim.state[1].exp_avg:equal(exp_avg))
    assert.is_nil(back.optim.state["1"])
    local g = back.optim.param_groups[1]
    assert.equal(0.1, g.lr)
    assert.equal("float", math.type(g.lr))
    assert.same({0.9, 0.999}, g.betas)
    assert.same({1, 2}, g.params)
    assert.equal("integer", math.type(g.params[1]))
    assert.is_false(g.amsgrad)
    assert.equal(1 / 3, back.third)
    assert.equal(math.maxinteger, back.big)
    assert.equal(math.mininteger, back.small)
    assert.equal(math.huge, back.inf)
    assert.equal(-math.huge, back.ninf)
    assert.is_true(back.nan ~= back.nan)
    assert.equal("-0.0", tostring(back.negzero))
    assert.equal(obj.name, back.name)
    assert.equal(obj.bytes, back.bytes)
    assert.same({}, back.empty)
    assert.same(obj.mixed, back.mixed)
    assert.equal(back.shared.a, back.shared.b) -- one tensor reached twice is stored once
    -- tensors are stored under dotted names a PyTorch user can read
    local raw = require("lucid.core")._io.safetensors_load(path)
    table.sort(raw)
    assert.same({"model.bias", "model.weight", "optim.state.1.exp_avg", "optim.state.2.exp_avg"}, raw)
  end)

  it("a single tensor and plain values at the top level", function()
    local t = lucid.arange(6):reshape(2, 3)
    lucid.save(dir .. "/t.safetensors", t)
    assert.is_true(lucid.load(dir .. "/t.safetensors"):equal(t))
    lucid.save(dir .. "/n.safetensors", {1, 2.5, "x", false})
    assert.same({1, 2.5, "x", false}, lucid.load(dir .. "/n.safetensors"))
  end)

  it("writes PyTorch names with {torch_names = true}", function()
    local model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    local path = dir .. "/torch.safetensors"
    lucid.save(path, model:state_dict(), {torch_names = true})
    local raw = lucid.load(path)
    local names = {}
    for i, kv in ipairs(raw) do names[i] = kv[1] end
    assert.same({"0.weight", "0.bias", "2.weight", "2.bias"}, names)
    local back = lucid.load(path, {torch_names = true})
    assert.equal("1.weight", back[1][1])
    model:load_state_dict(back)
  end)
end)

describe("lucid.save crash safety and errors", function()
  local dir, path, before
  before_each(function()
    dir = tmpdir()
    path = dir .. "/keep.safetensors"
    lucid.save(path, {w = lucid.ones(3)})
    before = read(path)
  end)
  after_each(function() rmdir(dir) end)

  local function unchanged()
    assert.equal(before, read(path))
    assert.same({"keep.safetensors"}, listdir(dir)) -- no temporary file left behind
  end

  it("refuses values that cannot be saved before touching the file", function()
    H.raises({"lucid.save:", "function", '"w.f"'}, lucid.save, path, {w = {f = print}})
    unchanged()
    local cyc = {}
    cyc.self = cyc
    H.raises({"lucid.save:", "contains itself"}, lucid.save, path, {c = cyc})
    unchanged()
    H.raises({"lucid.save:", "module", "state_dict()"}, lucid.save, path, nn.Linear(2, 2))
    unchanged()
    H.raises({"lucid.save:", "metatable"}, lucid.save, path, {x = setmetatable({}, {__name = "Thing"})})
    unchanged()
    H.raises({"lucid.save:", "\"a.b\""}, lucid.save, path, {["a.b"] = lucid.ones(1), a = {b = lucid.zeros(1)}})
    unchanged()
    H.raises({"lucid.save:", "key of type table"}, lucid.save, path, {[{}] = 1})
    unchanged()
    H.raises({"lucid.save:", "metadata", "strings"}, lucid.save, path, {}, {metadata = {k = 1}})
    H.raises({"lucid.save:", "reserved"}, lucid.save, path, {}, {metadata = {lucid = "x"}})
    H.raises({"lucid.save:", "unknown option 'meta'"}, lucid.save, path, {}, {meta = {}})
    H.raises({"lucid.save:", "argument 1 (path)"}, lucid.save, 42, {})
    H.raises({"lucid.save:", "argument 2"}, lucid.save, path, nil)
    unchanged()
  end)

  it("a save that fails in the core names the file and leaves the old one", function()
    local bad = dir .. "/no/such/dir/x.safetensors"
    H.raises({"lucid.save:", bad}, lucid.save, bad, {w = lucid.ones(1)})
    unchanged()
    -- a tensor name that is not UTF-8 is refused before the file is opened
    H.raises({"lucid.save:", "UTF-8"}, lucid.save, path, {["\255"] = lucid.ones(1)})
    -- named by its key path (not by a 0-based position in the file)
    H.raises({"lucid.save:", 'the tensor at "m.\\xFF"', "not valid UTF-8"}, lucid.save, path,
      {m = {["\255"] = lucid.ones(1)}})
    unchanged()
  end)

  it("a successful save replaces the file atomically", function()
    lucid.save(path, {w = lucid.zeros(5)})
    assert.same({5}, lucid.load(path).w.shape)
    assert.same({"keep.safetensors"}, listdir(dir))
  end)
end)

describe("lucid.load errors", function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() rmdir(dir) end)

  it("names the file and the fault", function()
    local missing = dir .. "/missing.safetensors"
    H.raises({"lucid.load:", missing, "No such file"}, lucid.load, missing)
    local good = dir .. "/good.safetensors"
    lucid.save(good, {w = lucid.ones(100)})
    local bytes = read(good)
    local cut = dir .. "/cut.safetensors"
    write(cut, bytes:sub(1, #bytes - 10))
    H.raises({"lucid.load:", cut, "past the end"}, lucid.load, cut)
    local junk = dir .. "/junk.safetensors"
    write(junk, "this is not a checkpoint at all")
    H.raises({"lucid.load:", junk, "header length"}, lucid.load, junk)
    local flipped = dir .. "/flip.safetensors"
    write(flipped, bytes:sub(1, 8) .. "[" .. bytes:sub(10))
    H.raises({"lucid.load:", flipped, "malformed header JSON"}, lucid.load, flipped)
    H.raises({"lucid.load:", "argument 1 (path)"}, lucid.load, nil)
    H.raises({"lucid.load:", "unknown option"}, lucid.load, good, {strict = true})
  end)

  it("rejects a damaged lucid structure record", function()
    local io_core = require("lucid.core")._io
    local p = dir .. "/meta.safetensors"
    assert(io_core.safetensors_save(p, {"w"}, {lucid.ones(1)}, {"lucid"}, {"{bad"}))
    H.raises({"lucid.load:", p, 'metadata "lucid" is malformed'}, lucid.load, p)
    assert(io_core.safetensors_save(p, {"w"}, {lucid.ones(1)}, {"lucid"},
      {'{"version":1,"tree":{"t":"nope"}}'}))
    H.raises({"lucid.load:", "nope", "does not hold"}, lucid.load, p)
    assert(io_core.safetensors_save(p, {}, {}, {"lucid"}, {'{"version":99,"tree":true}'}))
    H.raises({"lucid.load:", "newer lucid"}, lucid.load, p)
  end)
end)

describe("lucid.serialize name mapping", function()
  it("shifts numeric segments between PyTorch and lucid", function()
    local t = lucid.ones(1)
    local sd = serialize.new_state_dict{{"0.weight", t}, {"layers.2.bias", t}, {"fc.10.w", t}, {"bn.num_batches_tracked", t}}
    local l = serialize.from_torch_names(sd)
    assert.same({"1.weight", "layers.3.bias", "fc.11.w", "bn.num_batches_tracked"},
      {l[1][1], l[2][1], l[3][1], l[4][1]})
    assert.equal(t, l["layers.3.bias"])
    local back = serialize.to_torch_names(l)
    for i = 1, 4 do assert.equal(sd[i][1], back[i][1]) end
    -- a table name -> tensor
    assert.same({["1.w"] = 1, x = 2}, serialize.from_torch_names({["0.w"] = 1, x = 2}))
    H.raises({"to_torch_names", "segment 0"}, serialize.to_torch_names, {["0.w"] = t})
    H.raises({"from_torch_names", "expected a state dict"}, serialize.from_torch_names, 5)
  end)
end)
