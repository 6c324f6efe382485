-- lucid.data: Dataset protocol, TensorDataset, Subset, random_split, DataLoader, collate,
-- IDX files and Fashion-MNIST.
local lucid = require "lucid"
local data = lucid.data
local H = require "helpers"

local function flat(t)
  local v = t:reshape(-1):tolist()
  return type(v) == "table" and v or {v}
end

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p '" .. d .. "'"))
  return d
end

local function write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

-- An IDX file: magic 0 0 type ndims, big-endian sizes, then the bytes.
local function idx_bytes(type_code, dims, payload)
  local parts = {string.char(0, 0, type_code, #dims)}
  for _, d in ipairs(dims) do parts[#parts + 1] = string.pack(">I4", d) end
  parts[#parts + 1] = payload
  return table.concat(parts)
end

-- A dataset written in Lua: sample i is (a tensor {2} of i and -i, the integer label i % 3).
local Squares = data.Dataset:extend("Squares")
function Squares:init(n) self.n = n end
function Squares:len() return self.n end
function Squares:get(i) return lucid.tensor({i, -i}), i % 3 end

describe("lucid.data datasets", function()
  it("Dataset:extend gives a class with #ds and get(i)", function()
    local ds = Squares(5)
    assert.equal(5, #ds)
    local x, y = ds:get(2)
    assert.same({2, -2}, x:tolist())
    assert.equal(2, y)
    assert.equal("Squares(5)", tostring(ds))
    local Bare = data.Dataset:extend("Bare")
    H.raises({"Bare", "len() is not defined"}, function() return #Bare() end)
    H.raises({"Bare", "get(i) is not defined"}, function() return Bare():get(1) end)
    H.raises({"extend", "non-empty string"}, data.Dataset.extend, data.Dataset, 3)
  end)

  it("TensorDataset returns rows of every tensor and checks first dims", function()
    local x = lucid.arange(12):reshape(6, 2)
    local y = lucid.arange(1, 7, {dtype = "int64"})
    local ds = data.TensorDataset(x, y)
    assert.equal(6, #ds)
    local xi, yi = ds:get(3)
    assert.same({4, 5}, xi:tolist())
    assert.equal(3, yi:item())
    local xl, yl = ds:get(-1)
    assert.same({10, 11}, xl:tolist())
    assert.equal(6, yl:item())
    assert.equal(x, ds.tensors[1])
    local single = data.TensorDataset(x)
    assert.same({0, 1}, single:get(1):tolist())
    H.raises({"TensorDataset", "argument 2 has 5 samples", "argument 1 has 6"},
      data.TensorDataset, x, lucid.zeros(5))
    H.raises({"TensorDataset", "argument 2: expected a tensor"}, data.TensorDataset, x, {1, 2})
    H.raises({"TensorDataset", "at least one tensor"}, data.TensorDataset)
    H.raises({"TensorDataset", "0-dim"}, data.TensorDataset, lucid.tensor(1))
    H.raises({"TensorDataset:get", "index 0 is invalid", "1-based"}, ds.get, ds, 0)
    H.raises({"TensorDataset:get", "index 7 out of range for 6 samples"}, ds.get, ds, 7)
    local e = select(2, pcall(ds.get, ds, -7))
    assert.truthy(e:find("lucid.data.TensorDataset:get: index -7 out of range for 6 samples " ..
      "(expected 1..6 or -6..-1)", 1, true), e)
    assert.equal(select(2, ds:get(6)):item(), select(2, ds:get(-1)):item())
    e = select(2, pcall(data.TensorDataset(lucid.zeros(0, 2)).get, data.TensorDataset(lucid.zeros(0, 2)), 1))
    assert.truthy(e:find("index 1 out of range: the dataset is empty", 1, true), e)
    H.raises({"TensorDataset:get", "integer"}, ds.get, ds, 1.5)
  end)

  it("Subset maps indices and keeps the fast batch path of its dataset", function()
    local x = lucid.arange(10):reshape(5, 2)
    local ds = data.TensorDataset(x)
    local sub = data.Subset(ds, {5, 1, 3})
    assert.equal(3, #sub)
    assert.same({8, 9}, sub:get(1):tolist())
    assert.same({4, 5}, sub:get(-1):tolist())
    assert.is_function(sub.get_batch)
    assert.same({{0, 1}, {4, 5}}, sub:get_batch(lucid.tensor({2, 3}, {dtype = "int64"})):tolist())
    local by_tensor = data.Subset(ds, lucid.tensor({2, 2}, {dtype = "int64"}))
    assert.same({2, 3}, by_tensor:get(2):tolist())
    assert.is_nil(data.Subset(Squares(4), {1}).get_batch)
    H.raises({"Subset", "indices[2] = 6 out of range", "1..5"}, data.Subset, ds, {1, 6})
    H.raises({"Subset", "indices[1] = 0"}, data.Subset, ds, {0})
    H.raises({"Subset", "1-D int64 or int32"}, data.Subset, ds, lucid.ones(2))
  end)

  it("random_split takes counts or fractions and partitions the dataset", function()
    local ds = Squares(10)
    lucid.manual_seed(3)
    local a, b = table.unpack(data.random_split(ds, {7, 3}))
    assert.equal(7, #a)
    assert.equal(3, #b)
    local seen = {}
    for _, s in ipairs({a, b}) do
      for _, i in ipairs(s.indices) do
        assert.is_nil(seen[i])
        seen[i] = true
      end
    end
    for i = 1, 10 do assert.is_true(seen[i]) end
    -- reproducible from the seed (option or lucid.manual_seed)
    local c = data.random_split(ds, {7, 3}, {seed = 3})
    assert.same(a.indices, c[1].indices)
    lucid.manual_seed(3)
    assert.same(a.indices, data.random_split(ds, {7, 3})[1].indices)
    -- fractions: floor, remainder handed out round-robin from the first
    local f = data.random_split(ds, {0.8, 0.2})
    assert.same({8, 2}, {#f[1], #f[2]})
    local g = data.random_split(Squares(5), {0.5, 0.5})
    assert.same({3, 2}, {#g[1], #g[2]})
    local h = data.random_split(Squares(7), {1 / 3, 1 / 3, 1 / 3})
    assert.same({3, 2, 2}, {#h[1], #h[2], #h[3]})
    H.raises({"random_split", "add up to 9", "10 samples"}, data.random_split, ds, {5, 4})
    H.raises({"random_split", "lengths[2]"}, data.random_split, ds, {5, -5})
    H.raises({"random_split", "non-empty list"}, data.random_split, ds, {})
    H.raises({"random_split", "unknown option 'generator'"}, data.random_split, ds, {5, 5}, {generator = 1})
  end)
end)

describe("lucid.data.DataLoader", function()
  it("batches in order with a short last batch, or drops it", function()
    local x = lucid.arange(20):reshape(10, 2)
    local y = lucid.arange(1, 11, {dtype = "int64"})
    local ds = data.TensorDataset(x, y)
    local loader = data.DataLoader(ds, {batch_size = 4})
    assert.equal(3, #loader)
    local sizes, labels = {}, {}
    for xb, yb in loader:iter() do
      sizes[#sizes + 1] = xb.shape[1]
      assert.same({xb.shape[1], 2}, xb.shape)
      assert.equal("int64", yb.dtype)
      for _, v in ipairs(yb:tolist()) do labels[#labels + 1] = v end
    end
    assert.same({4, 4, 2}, sizes)
    assert.same({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, labels)
    local dl = data.DataLoader(ds, 4, {drop_last = true})
    assert.equal(2, #dl)
    local n = 0
    for xb in dl:iter() do
      n = n + 1
      assert.equal(4, xb.shape[1])
    end
    assert.equal(2, n)
    -- defaults: batch_size 1
    assert.equal(10, #data.DataLoader(ds))
    assert.equal(10, #data.DataLoader{dataset = ds})
  end)

  it("shuffles every epoch, visiting each sample once, reproducibly from the seed", function()
    local ds = data.TensorDataset(lucid.arange(1, 101, {dtype = "int64"}))
    local loader = data.DataLoader(ds, {batch_size = 16, shuffle = true})
    local function epoch()
      local order = {}
      for b in loader:iter() do
        for _, v in ipairs(b:tolist()) do order[#order + 1] = v end
      end
      return order
    end
    lucid.manual_seed(11)
    local e1, e2 = epoch(), epoch()
    local sorted = {table.unpack(e1)}
    table.sort(sorted)
    for i = 1, 100 do assert.equal(i, sorted[i]) end
    assert.are_not.same(e1, e2)
    local seq = {}
    for i = 1, 100 do seq[i] = i end
    assert.are_not.same(seq, e1)
    lucid.manual_seed(11)
    assert.same(e1, epoch())
  end)

  it("the fast TensorDataset path matches per-sample get + collate", function()
    local x = lucid.randn(37, 3, 2)
    local y = lucid.randint(0, 5, {37})
    local fast = data.TensorDataset(x, y)
    -- the same data without get_batch
    local Slow = data.Dataset:extend("Slow")
    function Slow:len() return 37 end
    function Slow:get(i) return fast:get(i) end
    for _, shuffle in ipairs({false, true}) do
      lucid.manual_seed(5)
      local a = {}
      for xb, yb in data.DataLoader(fast, 8, shuffle):iter() do a[#a + 1] = {xb, yb} end
      lucid.manual_seed(5)
      local i = 0
      for xb, yb in data.DataLoader(Slow(), 8, shuffle):iter() do
        i = i + 1
        assert.is_true(xb:equal(a[i][1]))
        assert.is_true(yb:equal(a[i][2]))
        assert.equal(a[i][2].dtype, yb.dtype)
      end
      assert.equal(5, i)
    end
  end)

  it("default collate stacks tensors, types numbers and recurses into tables", function()
    local x, y = data.DataLoader(Squares(5), 2):iter()()
    assert.same({{1, -1}, {2, -2}}, x:tolist())
    assert.equal("int64", y.dtype)
    assert.same({1, 2}, y:tolist())
    local Dict = data.Dataset:extend("Dict")
    function Dict:len() return 3 end
    function Dict:get(i)
      return {img = lucid.full({2}, i), w = i / 2, ok = i > 1, tag = "s" .. i, pair = {i, i * 1.5}}
    end
    local b = data.DataLoader(Dict(), 3):iter()()
    assert.same({3, 2}, b.img.shape)
    assert.equal("float32", b.w.dtype)
    H.same(b.w, {0.5, 1, 1.5})
    assert.same({false, true, true}, b.ok:tolist())
    assert.same({"s1", "s2", "s3"}, b.tag)
    assert.equal("int64", b.pair[1].dtype)
    assert.equal("float32", b.pair[2].dtype)
    assert.same({3, 2}, data.default_collate({lucid.ones(2), lucid.ones(2), lucid.ones(2)}).shape)
    local Bad = data.Dataset:extend("Bad")
    function Bad:len() return 2 end
    function Bad:get(i) return i == 1 and lucid.ones(2) or 5 end
    H.raises({"DataLoader", "collate", "sample 2", "number"}, function()
      for _ in data.DataLoader(Bad(), 2):iter() do end
    end)
  end)

  it("collate_fn receives the list of samples", function()
    local got
    local loader = data.DataLoader(Squares(4), {batch_size = 3, collate_fn = function(samples)
      got = samples
      return #samples, "extra"
    end})
    local n, e = loader:iter()()
    assert.equal(3, n)
    assert.equal("extra", e)
    assert.equal(3, #got)
    assert.same({2, -2}, got[2][1]:tolist()) -- a sample of several values arrives as a table
    assert.equal(2, got[2][2])
  end)

  it("a subclass that overrides get(i) is batched through its get, also under a Subset", function()
    local Aug = data.TensorDataset:extend("Aug")
    function Aug:get(i)
      local x, y = data.TensorDataset.get(self, i)
      return x * 100, y
    end
    local ds = Aug(lucid.arange(1, 6), lucid.arange(1, 6, {dtype = "int64"}))
    local xs = {}
    for xb, yb in data.DataLoader(ds, 2):iter() do
      for k, v in ipairs(xb:tolist()) do xs[#xs + 1] = v; assert.equal(v, 100 * yb:tolist()[k]) end
    end
    assert.same({100, 200, 300, 400, 500}, xs)
    local sub = data.Subset(ds, {5, 2})
    assert.is_nil(sub.get_batch)
    assert.same({500, 200}, data.DataLoader(sub, 2):iter()():tolist())
    -- a class that defines both keeps its get_batch; a Subset subclass keeps Subset's
    local Both = data.TensorDataset:extend("Both")
    function Both:get(i) return data.TensorDataset.get(self, i) end
    function Both:get_batch(index) return data.TensorDataset.get_batch(self, index) * -1 end
    assert.same({-1, -2}, data.DataLoader(Both(lucid.arange(1, 4)), 2):iter()():tolist())
    local MySub = data.Subset:extend("MySub")
    local ms = MySub(data.TensorDataset(lucid.arange(1, 6)), {4, 1})
    assert.is_function(ms.get_batch)
    assert.same({4, 1}, data.DataLoader(ms, 2):iter()():tolist())
  end)

  it("shuffle over a Subset with drop_last, of a dataset whose get returns a table", function()
    local Rec = data.Dataset:extend("Rec")
    function Rec:len() return 10 end
    function Rec:get(i) return {x = lucid.tensor({i, -i}), y = i, name = "s" .. i} end
    for _, base in ipairs({Rec(), data.TensorDataset(lucid.arange(1, 11, {dtype = "int64"}))}) do
      local sub = data.Subset(base, {2, 4, 6, 8, 10})
      local loader = data.DataLoader(sub, {batch_size = 2, shuffle = true, drop_last = true})
      assert.equal(2, #loader)
      lucid.manual_seed(3)
      local seen, batches = {}, 0
      for b in loader:iter() do
        batches = batches + 1
        local ys = lucid.is_tensor(b) and b:tolist() or b.y:tolist()
        assert.equal(2, #ys)
        if not lucid.is_tensor(b) then
          assert.same({2, 2}, b.x.shape)
          for k, y in ipairs(ys) do
            assert.same({y, -y}, b.x[k]:tolist())
            assert.equal("s" .. y, b.name[k])
          end
        end
        for _, y in ipairs(ys) do
          assert.equal(0, y % 2)
          assert.is_nil(seen[y])
          seen[y] = true
        end
      end
      assert.equal(2, batches)
      -- the same permutation from the same seed, whichever path batches
      lucid.manual_seed(3)
      local again = {}
      for b in loader:iter() do
        for _, y in ipairs(lucid.is_tensor(b) and b:tolist() or b.y:tolist()) do again[y] = true end
      end
      assert.same(seen, again)
    end
  end)

  it("checks its arguments", function()
    local ds = Squares(3)
    H.raises({"DataLoader", "batch_size must be >= 1"}, data.DataLoader, ds, 0)
    H.raises({"DataLoader", "batch_size must be an integer"}, data.DataLoader, ds, 1.5)
    H.raises({"DataLoader", "shuffle must be a boolean"}, data.DataLoader, ds, {shuffle = 1})
    H.raises({"DataLoader", "unknown option 'num_workers'"}, data.DataLoader, ds, {num_workers = 2})
    H.raises({"DataLoader", "collate_fn must be a function"}, data.DataLoader, ds, {collate_fn = 3})
    H.raises({"DataLoader", "expected a dataset"}, data.DataLoader, 5)
    H.raises({"DataLoader", "missing argument dataset"}, data.DataLoader, {batch_size = 2})
  end)
end)

describe("lucid.data.read_idx", function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() os.execute("rm -rf '" .. dir .. "'") end)

  it("reads IDX files and names the file in errors", function()
    local p = dir .. "/x-idx2-ubyte"
    write(p, idx_bytes(0x08, {2, 3}, string.char(0, 51, 102, 153, 204, 255)))
    local t = data.read_idx(p, {scale = 1 / 255})
    assert.same({2, 3}, t.shape)
    H.same(t, {{0, 0.2, 0.4}, {0.6, 0.8, 1}}, 1e-6)
    assert.same({0, 51, 102, 153, 204, 255}, flat(data.read_idx(p, {dtype = "int64"})))
    local q = dir .. "/s-idx1-short"
    write(q, idx_bytes(0x0B, {3}, string.pack(">i2>i2>i2", -5, 300, 7)))
    assert.same({-5, 300, 7}, data.read_idx(q, {dtype = "int32", ndim = 1}):tolist())
    H.raises({"read_idx", p, "expected 3 dims, the file has 2"}, data.read_idx, p, {ndim = 3})
    write(q, idx_bytes(0x08, {10}, "abc"))
    H.raises({"read_idx", q, "truncated"}, data.read_idx, q)
    write(q, "PK\3\4 not an idx file")
    H.raises({"read_idx", q, "bad magic"}, data.read_idx, q)
    H.raises({"read_idx", dir .. "/none", "No such file"}, data.read_idx, dir .. "/none")
    H.raises({"read_idx", "unknown option 'dims'"}, data.read_idx, p, {dims = 1})
  end)
end)

describe("lucid.data.FashionMNIST", function()
  local ROOT = "/usr/share/datasets/fashion-mnist"
  local present = io.open(ROOT .. "/train-labels-idx1-ubyte.gz", "rb")
  if present then present:close() end

  it("loads the training set fast: images in [0, 1], 1-based int64 labels", function()
    if not present then return pending("Fashion-MNIST not installed at " .. ROOT) end
    local t0 = os.clock()
    local ds = data.FashionMNIST{root = ROOT, train = true}
    local secs = os.clock() - t0
    assert.is_true(secs < 2, ("loading took %.2f s of CPU"):format(secs))
    assert.equal(60000, #ds)
    assert.same({60000, 1, 28, 28}, ds.data.shape)
    assert.equal("float32", ds.data.dtype)
    assert.equal(0, ds.data:min():item())
    assert.equal(1, ds.data:max():item())
    assert.same({60000}, ds.targets.shape)
    assert.equal("int64", ds.targets.dtype)
    assert.equal(1, ds.targets:min():item())
    assert.equal(10, ds.targets:max():item())
    -- the training set is balanced: 6000 images per class
    for c = 1, 10 do assert.equal(6000, ds.targets:eq(c):sum():item()) end
    local img, label = ds:get(1)
    assert.same({1, 28, 28}, img.shape)
    assert.equal("integer", math.type(label))
    assert.equal(ds.targets[1]:item(), label)
    assert.is_true(img:equal(ds.data[1]))
    assert.equal(10, #ds.classes)
    assert.equal("Ankle boot", ds.classes[10])
    -- batches through the fast path
    local loader = data.DataLoader(ds, {batch_size = 256, shuffle = true, drop_last = true})
    assert.equal(234, #loader)
    local xb, yb = loader:iter()()
    assert.same({256, 1, 28, 28}, xb.shape)
    assert.same({256}, yb.shape)
  end)

  it("loads the test set with the default root", function()
    if not present then return pending("Fashion-MNIST not installed at " .. ROOT) end
    local ds = data.FashionMNIST{train = false}
    assert.equal(10000, #ds)
    assert.same({10000, 1, 28, 28}, ds.data.shape)
  end)

  it("names the missing, truncated or inconsistent file", function()
    local dir = tmpdir()
    H.raises({"FashionMNIST", "missing file", dir .. "/train-images-idx3-ubyte.gz"},
      data.FashionMNIST, {root = dir})
    local images = idx_bytes(0x08, {3, 28, 28}, string.rep("\7", 3 * 28 * 28))
    write(dir .. "/train-images-idx3-ubyte", images)
    H.raises({"FashionMNIST", "missing file", "train-labels-idx1-ubyte"}, data.FashionMNIST, {root = dir})
    local labels = dir .. "/train-labels-idx1-ubyte"
    write(labels, idx_bytes(0x08, {3}, string.char(0, 9)))
    H.raises({"FashionMNIST", labels, "truncated"}, data.FashionMNIST, {root = dir})
    write(labels, idx_bytes(0x08, {2}, string.char(0, 9)))
    H.raises({"FashionMNIST", "3 images", "2 labels"}, data.FashionMNIST, {root = dir})
    write(labels, idx_bytes(0x08, {3}, string.char(0, 9, 10)))
    H.raises({"FashionMNIST", labels, "outside its 10 classes"}, data.FashionMNIST, {root = dir})
    write(labels, idx_bytes(0x08, {3}, string.char(0, 9, 4)))
    local ds = data.FashionMNIST{root = dir}
    assert.same({1, 10, 5}, ds.targets:tolist())
    H.same(ds.data[1][1][1][1], 7 / 255)
    H.raises({"FashionMNIST", "unknown option 'download'"}, data.FashionMNIST, {root = dir, download = true})
    -- the loader batches FashionMNIST with one index_select per tensor, not one get per image
    local calls, get = 0, data.FashionMNIST.get
    data.FashionMNIST.get = function(...) calls = calls + 1; return get(...) end
    local ok, xb, yb = pcall(function() return data.DataLoader(ds, 3):iter()() end)
    data.FashionMNIST.get = get
    assert(ok, xb)
    assert.equal(0, calls)
    assert.same({3, 1, 28, 28}, xb.shape)
    assert.same({1, 10, 5}, yb:tolist())
    os.execute("rm -rf '" .. dir .. "'")
  end)
end)
