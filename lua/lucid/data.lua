-- lucid.data: datasets and batching (PyTorch's torch.utils.data, 1-based). See docs/data.md.
--   local ds = lucid.data.TensorDataset(x, y)
--   local loader = lucid.data.DataLoader(ds, {batch_size = 64, shuffle = true})
--   for xb, yb in loader:iter() do ... end
local lucid = require "lucid"
local core = require "lucid.core"
local io_core = core._io
local serialize = require "lucid.serialize"

local data = {}

local mtype = math.type
local is_tensor = lucid.is_tensor

local A = require "lucid.args"
local fail, describe, args, int_arg, bool_arg = A.fail, A.describe, A.args, A.int_arg, A.bool_arg

-- Runs fn(...) and re-raises any error at the user's call site (level 3: the caller of the
-- public function that called guard).
local function guard(fn, ...)
  local r = table.pack(pcall(fn, ...))
  if not r[1] then error(r[2], 3) end
  return table.unpack(r, 2, r.n)
end

-- For constructors: the error propagates to the class's __call, which re-raises it at the
-- user's call site.
local function direct(fn, ...) return fn(...) end

-- Calls cls.init(self, ...); lucid's own errors are re-raised at the caller of the
-- constructor, anything else (a user's init) unchanged.
local function construct(c, ...)
  local self = setmetatable({}, c)
  if c.init then
    local ok, err = pcall(c.init, self, ...)
    if not ok then
      if type(err) == "string" and err:find("^lucid%.data%.") then error(err, 3) end
      error(err, 0)
    end
  end
  return self
end

local callable = require("lucid.args").callable

local function ds_len(fname, ds)
  local ok, n = pcall(function() return #ds end)
  if not ok or mtype(n) ~= "integer" then
    fail("%s: the dataset must support #ds (define len() or __len), got %s", fname,
      ok and describe(n) or tostring(n))
  end
  return n
end

-- ------------------------------------------------------------------ Dataset

-- Base class. A dataset defines len() (or __len) and get(i) for i in 1..#ds; get may return
-- several values (an input and a target). Datasets that can fetch many samples at once may
-- define get_batch(index) (index: a 1-D int64 tensor of 1-based positions) returning the
-- collated batch; DataLoader uses it when no collate_fn is given.
local Dataset = {__name = "Dataset"}
Dataset.__index = Dataset
Dataset.__len = function(self) return self:len() end
Dataset.__tostring = function(self)
  local ok, n = pcall(function() return #self end)
  return string.format("%s(%s)", getmetatable(self).__name or "Dataset", ok and tostring(n) or "?")
end
data.Dataset = Dataset

function Dataset:len()
  fail("lucid.data.%s: len() is not defined (a dataset defines len() and get(i))",
    getmetatable(self).__name or "Dataset")
end
function Dataset:get()
  fail("lucid.data.%s: get(i) is not defined (a dataset defines len() and get(i))",
    getmetatable(self).__name or "Dataset")
end

local function class(name, parent, ctor)
  local cls = {__name = name, super = parent}
  for k, v in pairs(parent) do -- metamethods are looked up raw: copy them
    if type(k) == "string" and k:sub(1, 2) == "__" and k ~= "__name" and k ~= "__index" then cls[k] = v end
  end
  cls.__index = cls
  local pindex = rawget(parent, "__index")
  if type(pindex) == "function" then -- the parent resolves some keys itself (Subset's get_batch)
    cls.__index = function(self, k)
      local v = rawget(cls, k)
      if v ~= nil then return v end
      return pindex(self, k)
    end
  end
  return setmetatable(cls, {
    __index = parent,
    __call = ctor or function(c, ...) return (construct(c, ...)) end,
    __tostring = function() return "lucid.data." .. name end,
  })
end

setmetatable(Dataset, {
  __call = function(c, ...) return (construct(c, ...)) end,
  __tostring = function() return "lucid.data.Dataset" end,
})

-- local MyData = lucid.data.Dataset:extend("MyData"); function MyData:init(...) end
-- function MyData:len() ... end; function MyData:get(i) ... end
function Dataset.extend(parent, name)
  if type(parent) ~= "table" then fail("lucid.data.Dataset.extend: call it on a class: Dataset:extend(\"Name\")") end
  if type(name) ~= "string" or name == "" then
    fail("lucid.data.Dataset.extend: argument 1 (name): expected a non-empty string, got %s", describe(name))
  end
  return class(name, parent)
end

-- A sample index: 1..n or -n..-1 -> 1..n, by the binding's one position rule.
local position = require("lucid.nn_core").position
local function check_index(fname, i, n) return position(fname, i, n, "samples", "the dataset is empty") end

-- Whether ds's get_batch goes with its get(i): a class that overrides get(i) below the class
-- defining get_batch (a TensorDataset subclass with its own get, say) is batched through get.
local function batches_itself(ds)
  if ds.get_batch == nil then return false end
  if type(ds) ~= "table" then return true end
  if rawget(ds, "get_batch") ~= nil then return true end
  if rawget(ds, "get") ~= nil then return false end
  local level = getmetatable(ds)
  while type(level) == "table" do
    if rawget(level, "get_batch") ~= nil then return true end
    if rawget(level, "get") ~= nil then return false end
    level = rawget(level, "super")
  end
  return true -- not a lucid.data class: trust its get_batch
end

-- ------------------------------------------------------------------ TensorDataset

local TensorDataset = class("TensorDataset", Dataset)
data.TensorDataset = TensorDataset

function TensorDataset:init(...)
  local fname = "lucid.data.TensorDataset"
  local ts = table.pack(...)
  direct(function()
    if ts.n == 0 then fail("%s: expected at least one tensor", fname) end
    local n
    for i = 1, ts.n do
      local t = ts[i]
      if not is_tensor(t) then fail("%s: argument %d: expected a tensor, got %s", fname, i, describe(t)) end
      if t.ndim == 0 then fail("%s: argument %d: a 0-dim tensor has no samples (expected at least 1 dim)", fname, i) end
      local rows = t.shape[1]
      if n == nil then
        n = rows
      elseif rows ~= n then
        fail("%s: argument %d has %d samples (size of dim 1) but argument 1 has %d: all tensors "
          .. "must have the same size in dim 1", fname, i, rows, n)
      end
    end
    self.tensors = {table.unpack(ts, 1, ts.n)}
    self._n = n
  end)
end

function TensorDataset:len() return self._n end

function TensorDataset:get(i)
  local j = guard(check_index, "lucid.data.TensorDataset:get", i, self._n)
  local ts = self.tensors
  if #ts == 1 then return ts[1][j] end
  local out = {}
  for k = 1, #ts do out[k] = ts[k][j] end
  return table.unpack(out, 1, #ts)
end

-- index: 1-D int64 tensor of 1-based positions -> one batch per tensor (copies).
function TensorDataset:get_batch(index)
  local ts = self.tensors
  if #ts == 1 then return ts[1]:index_select(1, index) end
  local out = {}
  for k = 1, #ts do out[k] = ts[k]:index_select(1, index) end
  return table.unpack(out, 1, #ts)
end

-- ------------------------------------------------------------------ Subset

local Subset = class("Subset", Dataset)
data.Subset = Subset

-- indices: a Lua list or a 1-D integer tensor of 1-based positions into ds.
function Subset:init(ds, indices)
  local fname = "lucid.data.Subset"
  direct(function()
    if type(ds) ~= "table" and type(ds) ~= "userdata" then
      fail("%s: argument 1 (dataset): expected a dataset, got %s", fname, describe(ds))
    end
    local n = ds_len(fname, ds)
    local list
    if is_tensor(indices) then
      if indices.ndim ~= 1 or (indices.dtype ~= "int64" and indices.dtype ~= "int32") then
        fail("%s: argument 2 (indices): expected a 1-D int64 or int32 tensor, got a %d-D %s tensor",
          fname, indices.ndim, indices.dtype)
      end
      list = indices:tolist()
    elseif type(indices) == "table" then
      list = {}
      for k = 1, #indices do list[k] = indices[k] end
    else
      fail("%s: argument 2 (indices): expected a list or a tensor of indices, got %s", fname, describe(indices))
    end
    for k, i in ipairs(list) do
      if mtype(i) ~= "integer" then
        if mtype(i) == "float" and i == math.floor(i) then list[k] = math.tointeger(i)
        else fail("%s: indices[%d] must be an integer, got %s", fname, k, describe(i)) end
      end
      if list[k] < 1 or list[k] > n then
        fail("%s: indices[%d] = %d out of range for a dataset of %d samples (expected 1..%d)",
          fname, k, list[k], n, n)
      end
    end
    self.dataset = ds
    self.indices = list
    self._index = #list > 0 and lucid.tensor(list, {dtype = "int64"}) or nil
  end)
end

function Subset:len() return #self.indices end

function Subset:get(i)
  local j = guard(check_index, "lucid.data.Subset:get", i, #self.indices)
  return self.dataset:get(self.indices[j])
end

function Subset:get_batch(index) return self.dataset:get_batch(self._index:index_select(1, index)) end

-- A get_batch exactly when the wrapped dataset has one.
function Subset.__index(self, k)
  if k == "get_batch" then
    local base = rawget(self, "dataset")
    if base == nil or not batches_itself(base) then return nil end
  end
  return Subset[k]
end

-- ------------------------------------------------------------------ random_split

-- random_split(ds, lengths [, {seed = n}]): lengths are counts adding up to #ds, or fractions
-- adding up to 1 (floor(n * f) each, the remainder handed out one by one from the first
-- split). The permutation comes from lucid's generator (lucid.manual_seed); `seed` reseeds it
-- first.
function data.random_split(ds, lengths, opts)
  local fname = "lucid.data.random_split"
  return guard(function()
    local o = args(fname, {"seed"}, opts)
    local n = ds_len(fname, ds)
    if type(lengths) ~= "table" or #lengths == 0 then
      fail("%s: argument 2 (lengths): expected a non-empty list of lengths or fractions, got %s", fname, describe(lengths))
    end
    local counts, total, all_frac = {}, 0, true
    for k, v in ipairs(lengths) do
      if type(v) ~= "number" or v < 0 or v ~= v then
        fail("%s: lengths[%d] must be a non-negative number, got %s", fname, k, describe(v))
      end
      if v > 1 then all_frac = false end
      total = total + v
    end
    if all_frac and math.abs(total - 1) < 1e-9 then
      local used = 0
      for k, f in ipairs(lengths) do
        counts[k] = math.floor(n * f)
        used = used + counts[k]
      end
      local k = 1
      while used < n do -- round-robin the remainder, as PyTorch does
        counts[k] = counts[k] + 1
        used = used + 1
        k = k % #counts + 1
      end
    else
      for k, v in ipairs(lengths) do
        if mtype(v) ~= "integer" and not (v == math.floor(v)) then
          fail("%s: lengths[%d] = %s is neither an integer count nor part of fractions adding up to 1",
            fname, k, tostring(v))
        end
        counts[k] = math.tointeger(v)
      end
      if total ~= n then
        fail("%s: lengths add up to %s but the dataset has %d samples", fname, tostring(total), n)
      end
    end
    if o.seed ~= nil then lucid.manual_seed(int_arg(fname, "seed", o.seed, 0)) end
    local perm = n > 0 and lucid.randperm(n):tolist() or {}
    local out, at = {}, 0
    for k, c in ipairs(counts) do
      out[k] = Subset(ds, table.move(perm, at + 1, at + c, 1, {}))
      at = at + c
    end
    return out
  end)
end

-- ------------------------------------------------------------------ collate

local collate

-- list: the values at one position of every sample of a batch.
function collate(list, where)
  local first = list[1]
  if is_tensor(first) then
    for k = 2, #list do
      if not is_tensor(list[k]) then
        fail("collate: sample %d%s is %s but sample 1 is a tensor", k, where, describe(list[k]))
      end
    end
    return lucid.stack(list, 1)
  end
  local ty = type(first)
  if ty == "number" then
    local ints = true
    for k, v in ipairs(list) do
      if type(v) ~= "number" then fail("collate: sample %d%s is %s but sample 1 is a number", k, where, describe(v)) end
      if mtype(v) ~= "integer" then ints = false end
    end
    return lucid.tensor(list, {dtype = ints and "int64" or "float32"})
  end
  if ty == "boolean" then
    for k, v in ipairs(list) do
      if type(v) ~= "boolean" then fail("collate: sample %d%s is %s but sample 1 is a boolean", k, where, describe(v)) end
    end
    return lucid.tensor(list, {dtype = "bool"})
  end
  if ty == "string" then return {table.unpack(list)} end
  if ty == "table" and getmetatable(first) == nil then
    local out = {}
    for key in pairs(first) do
      local col = {}
      for k, s in ipairs(list) do
        if type(s) ~= "table" then fail("collate: sample %d%s is %s but sample 1 is a table", k, where, describe(s)) end
        local v = s[key]
        if v == nil then fail("collate: sample %d%s lacks key %s", k, where, tostring(key)) end
        col[k] = v
      end
      out[key] = collate(col, where .. "[" .. (type(key) == "string" and ("\"" .. key .. "\"") or tostring(key)) .. "]")
    end
    return out
  end
  fail("collate: cannot batch %s%s (expected tensors, numbers, booleans, strings or tables of them)",
    describe(first), where)
end

-- default_collate(samples): samples is a list; tensors are stacked along a new dim 1, numbers
-- become a tensor (int64 when all are integers, else float32), booleans a bool tensor, strings
-- stay a list, tables are collated key by key.
function data.default_collate(samples)
  return guard(function()
    if type(samples) ~= "table" or #samples == 0 then
      fail("lucid.data.default_collate: expected a non-empty list of samples, got %s", describe(samples))
    end
    return collate(samples, "")
  end)
end

-- ------------------------------------------------------------------ DistributedSampler

-- DistributedSampler(dataset [, {num_replicas, rank, shuffle = true, seed = 0,
-- drop_last = false}]): the share of the dataset one process of a data-parallel job reads
-- (PyTorch's torch.utils.data.DistributedSampler). num_replicas and rank (1-based) default to
-- lucid.distributed's world size and rank. Each epoch every rank draws the same permutation
-- (from seed + epoch: call set_epoch(e) before each epoch, or every epoch repeats the order),
-- pads it by repeating its start until it divides evenly (or, with drop_last, cuts the tail),
-- and takes every num_replicas-th sample from position rank. The shuffle uses its own
-- generator, not lucid's, so it leaves lucid.manual_seed's stream alone.
local DistributedSampler = {__name = "DistributedSampler"}
DistributedSampler.__index = DistributedSampler
data.DistributedSampler = setmetatable(DistributedSampler, {
  __call = function(_, ...) return DistributedSampler.new(...) end,
  __tostring = function() return "lucid.data.DistributedSampler" end,
})

function DistributedSampler.new(...)
  local fname = "lucid.data.DistributedSampler"
  return guard(function(...)
    local o = args(fname, {"dataset", "num_replicas", "rank", "shuffle", "seed", "drop_last"}, ...)
    local ds = o.dataset
    if ds == nil then fail("%s: missing argument dataset", fname) end
    local n = ds_len(fname, ds)
    local replicas, rank = o.num_replicas, o.rank
    if replicas == nil or rank == nil then
      local dist = require "lucid.distributed"
      if not dist.is_initialized() then
        fail("%s: give num_replicas and rank, or call lucid.distributed.init() first", fname)
      end
      replicas = replicas or dist.world_size()
      rank = rank or dist.rank()
    end
    replicas = int_arg(fname, "num_replicas", replicas, 1)
    rank = int_arg(fname, "rank", rank, 1)
    if rank > replicas then
      fail("%s: rank %d out of range (expected 1..%d)", fname, rank, replicas)
    end
    local self = setmetatable({}, DistributedSampler)
    self.dataset, self.num_replicas, self.rank = ds, replicas, rank
    self.shuffle = bool_arg(fname, "shuffle", o.shuffle, true)
    self.seed = o.seed == nil and 0 or int_arg(fname, "seed", o.seed)
    self.drop_last = bool_arg(fname, "drop_last", o.drop_last, false)
    self.epoch = 0
    if self.drop_last and n % replicas ~= 0 then
      self.num_samples = (n - replicas) // replicas + ((n - replicas) % replicas ~= 0 and 1 or 0)
      if n < replicas then self.num_samples = 0 end
    else
      self.num_samples = (n + replicas - 1) // replicas
    end
    self.total_size = self.num_samples * replicas
    return self
  end, ...)
end

function DistributedSampler:set_epoch(epoch)
  self.epoch = guard(int_arg, "lucid.data.DistributedSampler:set_epoch", "epoch", epoch)
end

function DistributedSampler:__len() return self.num_samples end

function DistributedSampler:__tostring()
  return string.format("DistributedSampler(rank %d of %d, %d samples, shuffle=%s, drop_last=%s)",
    self.rank, self.num_replicas, self.num_samples, tostring(self.shuffle), tostring(self.drop_last))
end

-- splitmix64: a small generator with a good spread, in Lua's wrapping 64-bit integers.
local function splitmix(state)
  return function()
    state = state + 0x9E3779B97F4A7C15
    local z = state
    z = (z ~ (z >> 30)) * -4658895280553007687 -- 0xBF58476D1CE4E5B9
    z = (z ~ (z >> 27)) * -7723592293110705685 -- 0x94D049BB133111EB
    return z ~ (z >> 31)
  end
end

-- The epoch's 1-based dataset indices for this rank.
function DistributedSampler:indices()
  local n = #self.dataset
  local idx = {}
  for i = 1, n do idx[i] = i end
  if self.shuffle then
    local rand = splitmix(self.seed * 1000003 + self.epoch)
    for i = n, 2, -1 do
      local j = ((rand() >> 1) % i) + 1
      idx[i], idx[j] = idx[j], idx[i]
    end
  end
  local total = self.total_size
  if not self.drop_last then
    local k = 1
    while #idx < total do -- pad by repeating the start (PyTorch's rule)
      idx[#idx + 1] = idx[k]
      k = k % n + 1
    end
  end
  local out = {}
  for p = self.rank, total, self.num_replicas do out[#out + 1] = idx[p] end
  return out
end

-- ------------------------------------------------------------------ DataLoader

local DataLoader = {__name = "DataLoader"}
DataLoader.__index = DataLoader
data.DataLoader = setmetatable(DataLoader, {
  __call = function(_, ...) return DataLoader.new(...) end,
  __tostring = function() return "lucid.data.DataLoader" end,
})

-- DataLoader(dataset [, batch_size [, shuffle]] [, {batch_size = 1, shuffle = false,
-- drop_last = false, collate_fn = nil, sampler = nil}])
function DataLoader.new(...)
  local fname = "lucid.data.DataLoader"
  return guard(function(...)
    local o = args(fname, {"dataset", "batch_size", "shuffle", "drop_last", "collate_fn", "sampler"}, ...)
    local ds = o.dataset
    if ds == nil then fail("%s: missing argument dataset", fname) end
    if type(ds) ~= "table" and type(ds) ~= "userdata" then
      fail("%s: argument 1 (dataset): expected a dataset, got %s", fname, describe(ds))
    end
    ds_len(fname, ds)
    if type(ds.get) ~= "function" and not callable(ds.get) then
      fail("%s: argument 1 (dataset): expected a dataset with a get(i) method", fname)
    end
    local self = setmetatable({}, DataLoader)
    self.dataset = ds
    self.batch_size = o.batch_size == nil and 1 or int_arg(fname, "batch_size", o.batch_size, 1)
    self.shuffle = bool_arg(fname, "shuffle", o.shuffle, false)
    self.drop_last = bool_arg(fname, "drop_last", o.drop_last, false)
    if o.collate_fn ~= nil and not callable(o.collate_fn) then
      fail("%s: collate_fn must be a function, got %s", fname, describe(o.collate_fn))
    end
    self.collate_fn = o.collate_fn
    if o.sampler ~= nil then
      local smp = o.sampler
      if (type(smp) ~= "table" and type(smp) ~= "userdata") or not callable(smp.indices) then
        fail("%s: sampler must be a sampler (an object with an indices() method, such as "
          .. "data.DistributedSampler), got %s", fname, describe(smp))
      end
      if self.shuffle then
        fail("%s: sampler and shuffle = true cannot be combined (the sampler decides the order)", fname)
      end
      self.sampler = smp
    end
    return self
  end, ...)
end

-- The samples of one pass, in order: the sampler's 1-based indices, or nil for 1..#dataset.
local function sampler_order(self)
  local smp = self.sampler
  if smp == nil then return nil end
  local list = smp:indices()
  local n = #self.dataset
  for k, i in ipairs(list) do
    if mtype(i) ~= "integer" or i < 1 or i > n then
      fail("lucid.data.DataLoader: the sampler's index %d is %s (expected an integer in 1..%d)", k, describe(i), n)
    end
  end
  return list
end

function DataLoader:__len()
  local n = self.sampler and #self.sampler or #self.dataset
  if self.drop_last then return n // self.batch_size end
  return (n + self.batch_size - 1) // self.batch_size
end

function DataLoader:__tostring()
  return string.format("DataLoader(%d samples, batch_size=%d, shuffle=%s, drop_last=%s)",
    #self.dataset, self.batch_size, tostring(self.shuffle), tostring(self.drop_last))
end

-- for x, y in loader:iter() do ... end: one pass over the dataset (reshuffled per call when
-- shuffle is set). Each step returns the collated batch: as many values as ds:get returns.
function DataLoader:iter()
  local ds, bs = self.dataset, self.batch_size
  local order_list = sampler_order(self)
  local n = order_list and #order_list or #ds
  local nb = self.drop_last and n // bs or (n + bs - 1) // bs
  local collate_fn = self.collate_fn
  local fast = collate_fn == nil and batches_itself(ds)
  local order
  if order_list then
    if fast and n > 0 then order = lucid.tensor(order_list, {dtype = "int64"}) end
  elseif self.shuffle and n > 0 then
    order = lucid.randperm(n)
    if not fast then order_list = order:tolist() end
  elseif fast and n > 0 then
    order = lucid.arange(1, n + 1, {dtype = "int64"})
  end
  local b = 0
  return function()
    b = b + 1
    if b > nb then return nil end
    local start = (b - 1) * bs + 1
    local len = math.min(bs, n - start + 1)
    if fast then return ds:get_batch(order:narrow(1, start, len)) end
    local samples, width = {}, 0
    for k = 1, len do
      local i = order_list and order_list[start + k - 1] or start + k - 1
      local s = table.pack(ds:get(i))
      if s.n > width then width = s.n end
      samples[k] = s
    end
    if collate_fn then
      -- a sample of several values reaches collate_fn as a table of them
      local list = {}
      for k, s in ipairs(samples) do
        if width <= 1 then list[k] = s[1] else list[k] = {table.unpack(s, 1, s.n)} end
      end
      return collate_fn(list)
    end
    local ok, r = pcall(function()
      local out = {}
      for p = 1, width do
        local col = {}
        for k, s in ipairs(samples) do
          if s[p] == nil then fail("collate: sample %d returned %d values, sample 1 returned %d", k, s.n, width) end
          col[k] = s[p]
        end
        out[p] = collate(col, width > 1 and (" (value " .. p .. ")") or "")
      end
      return out
    end)
    if not ok then error("lucid.data.DataLoader: " .. tostring(r), 2) end
    return table.unpack(r, 1, width)
  end
end

-- ------------------------------------------------------------------ IDX files and Fashion-MNIST

-- read_idx(path [, {dtype = "float32", ndim = nil, scale = 1}]) -> tensor: an IDX file, plain
-- or gzip-compressed (recognised by content).
function data.read_idx(path, opts)
  local fname = "lucid.data.read_idx"
  return guard(function()
    if type(path) ~= "string" then fail("%s: argument 1 (path): expected a string, got %s", fname, describe(path)) end
    local o = args(fname, {"dtype", "ndim", "scale"}, opts)
    local ndim = o.ndim == nil and -1 or int_arg(fname, "ndim", o.ndim, 0)
    local scale = o.scale == nil and 1 or o.scale
    if type(scale) ~= "number" then fail("%s: scale must be a number, got %s", fname, describe(scale)) end
    local t, msg = io_core.idx_load(path, ndim, o.dtype or "float32", scale)
    if not t then fail("%s: %s", fname, serialize._core_message(msg)) end
    return t
  end)
end

local FMNIST_CLASSES = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                        "Sneaker", "Bag", "Ankle boot"}

-- The first of root/name(.gz) and root/FashionMNIST/raw/name(.gz) that exists.
local function find_file(fname, root, name)
  local tried = {}
  for _, dir in ipairs({root, root .. "/FashionMNIST/raw"}) do
    for _, p in ipairs({dir .. "/" .. name .. ".gz", dir .. "/" .. name}) do
      local f = io.open(p, "rb")
      if f then
        f:close()
        return p
      end
      tried[#tried + 1] = p
    end
  end
  fail("%s: missing file %s (looked for %s)", fname, root .. "/" .. name .. ".gz", table.concat(tried, ", "))
end

local function mnist_like(cls_name, default_root, classes)
  local cls = class(cls_name, TensorDataset)
  cls.classes = classes
  cls.get_batch = TensorDataset.get_batch -- batches of data and targets, as get returns them
  -- {root = default_root, train = true}
  function cls:init(...)
    local fname = "lucid.data." .. cls_name
    direct(function(...)
      local o = args(fname, {"root", "train"}, ...)
      local root = o.root == nil and default_root or o.root
      if type(root) ~= "string" then fail("%s: root must be a string, got %s", fname, describe(root)) end
      root = root:gsub("/+$", "")
      local train = bool_arg(fname, "train", o.train, true)
      local prefix = train and "train" or "t10k"
      local ipath = find_file(fname, root, prefix .. "-images-idx3-ubyte")
      local lpath = find_file(fname, root, prefix .. "-labels-idx1-ubyte")
      local images, msg = io_core.idx_load(ipath, 3, "float32", 1 / 255)
      if not images then fail("%s: %s", fname, serialize._core_message(msg)) end
      local labels
      labels, msg = io_core.idx_load(lpath, 1, "int64", 1, true) -- classes 1-based, as lucid's
      if not labels then fail("%s: %s", fname, serialize._core_message(msg)) end
      local n = images.shape[1]
      if labels.shape[1] ~= n then
        fail("%s: %s holds %d images but %s holds %d labels", fname, ipath, n, lpath, labels.shape[1])
      end
      if n > 0 and (labels:min():item() < 1 or labels:max():item() > #classes) then
        fail("%s: %s holds labels outside its %d classes", fname, lpath, #classes)
      end
      self.data = images:view(n, 1, images.shape[2], images.shape[3])
      self.targets = labels
      self.train = train
      self.root = root
      self.files = {images = ipath, labels = lpath}
      self.tensors = {self.data, self.targets}
      self._n = n
    end, ...)
  end
  -- get(i) -> image {1, H, W} (float32 in [0, 1]), label (a Lua integer, 1..#classes)
  function cls:get(i)
    local j = guard(check_index, "lucid.data." .. cls_name .. ":get", i, self._n)
    return self.data[j], self.targets[j]:item()
  end
  return cls
end

data.FashionMNIST = mnist_like("FashionMNIST", "/usr/share/datasets/fashion-mnist", FMNIST_CLASSES)
data.MNIST = mnist_like("MNIST", "/usr/share/datasets/mnist",
  {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"})

return data
