-- lucid.distributed: collectives on tensors across processes started by mpirun (PyTorch's
-- torch.distributed over MPI; docs/distributed.md). Ranks are 1-based.
--   local dist = require "lucid.distributed"
--   dist.init()
--   dist.all_reduce(t, "avg")
-- The C side is the module lucid.mpi (src/lua/distributed/mpi.c over liblucid_distributed),
-- loaded at init: requiring this file needs no MPI.
local lucid = require "lucid"

local A = require "lucid.args"
local fail, describe, collect, num_arg, bool_arg = A.fail, A.describe, A.collect, A.num_arg, A.bool_arg

local dist = {}

local mpi -- lucid.mpi, once init has loaded it

local function load_mpi()
  if mpi then return mpi end
  -- Under stock lua5.4 lucid.core was loaded with local symbols; lucid.mpi resolves the core's
  -- functions against it, so make them global first (the interpreter links the core in and
  -- exports it: there lucid.core is a preloaded module and nothing is loaded here).
  if not package.preload["lucid.core"] then
    local path = package.searchpath("lucid.core", package.cpath)
    -- (spelt differently: package.loadlib would reuse require's handle, which is local)
    if path then package.loadlib((path:gsub("([^/]+)$", "./%1")), "*") end
  end
  local ok, m = pcall(require, "lucid.mpi")
  if not ok then
    fail("distributed.init: the MPI module lucid.mpi is not available (lucid is built with it "
      .. "when Open MPI is installed: apt-get install libopenmpi-dev openmpi-bin, then make): %s",
      tostring(m))
  end
  mpi = m
  return m
end

local finalized = false

local function need(fname)
  if finalized then fail("%s: called after finalize (the process has left the job)", fname) end
  if not (mpi and mpi.is_initialized()) then
    fail("%s: lucid.distributed is not initialized (call lucid.distributed.init() first, in a "
      .. "process started by mpirun)", fname)
  end
  return mpi
end

local PRIORITIES = {auto = true, normal = true, idle = true}
local function priority_arg(fname, name, v)
  if not PRIORITIES[v] then
    fail("%s: %s must be \"auto\", \"normal\" or \"idle\", got %s", fname, name,
      type(v) == "string" and ("%q"):format(v) or describe(v))
  end
  return v
end

-- init([{timeout = 300, threads, comm_priority = "auto", shared_memory = true}]): joins the
-- job. With several processes on this machine, each gets cores / processes-per-machine
-- threads (at least 1) unless `threads` says otherwise, so the processes do not oversubscribe
-- the cores. The communication thread runs at idle priority when the computation fills every
-- core ("auto"; docs/distributed.md says why), else at normal priority. shared_memory = false
-- makes zeros_shared hand out ordinary tensors (every all_reduce then goes through MPI).
function dist.init(...)
  local fname = "distributed.init"
  local o = collect(fname, {}, {"timeout", "threads", "comm_priority", "shared_memory"}, false, ...)
  local shared = bool_arg(fname, "shared_memory", o.shared_memory, true)
  local priority = o.comm_priority == nil and "auto" or priority_arg(fname, "comm_priority", o.comm_priority)
  local timeout = num_arg(fname, "timeout", o.timeout, 0)
  if timeout < 0 or timeout ~= timeout then fail("%s: timeout must be > 0 seconds, got %s", fname, tostring(timeout)) end
  if o.threads ~= nil then A.int_arg(fname, "threads", o.threads, 1) end
  local m = load_mpi()
  m.init(timeout, shared)
  if o.threads then
    lucid.set_num_threads(o.threads)
  elseif m.local_size() > 1 then
    lucid.set_num_threads(math.max(1, lucid.get_num_threads() // m.local_size()))
  end
  m.set_comm_priority(priority) -- after the thread count, which "auto" depends on
end

-- set_comm_priority(p) ("auto", "normal", "idle"), get_comm_priority() -> "normal" or "idle"
function dist.set_comm_priority(p)
  local fname = "distributed.set_comm_priority"
  need(fname).set_comm_priority(priority_arg(fname, "argument 1 (priority)", p))
end
function dist.get_comm_priority() return need("distributed.get_comm_priority").comm_priority() end

function dist.is_initialized() return mpi ~= nil and mpi.is_initialized() end
function dist.rank() return need("distributed.rank").rank() end
function dist.world_size() return need("distributed.world_size").world_size() end
function dist.local_rank() return need("distributed.local_rank").local_rank() end
function dist.local_size() return need("distributed.local_size").local_size() end
function dist.get_timeout() return need("distributed.get_timeout").timeout() end
function dist.set_timeout(seconds)
  local fname = "distributed.set_timeout"
  need(fname).set_timeout(num_arg(fname, "seconds", seconds, nil) or fail("%s: missing argument seconds", fname))
end

local function tensor_arg(fname, name, t)
  if not lucid.is_tensor(t) then fail("%s: %s must be a tensor, got %s", fname, name, describe(t)) end
  return t
end

-- all_reduce(tensor [, op = "sum"] [, {async_op = false}]): tensor op= every rank's tensor, in
-- place; op is "sum", "avg", "max" or "min". Returns the tensor, or a Work handle (:wait(),
-- :is_completed()) with async_op.
function dist.all_reduce(...)
  local fname = "distributed.all_reduce"
  local o = collect(fname, {"tensor", "op"}, {"async_op"}, false, ...)
  local m = need(fname)
  local t = tensor_arg(fname, "tensor", o.tensor)
  local w = m.all_reduce(t, o.op, bool_arg(fname, "async_op", o.async_op, false))
  return w or t
end

-- broadcast(tensor [, src = 1] [, {async_op}]): every rank's tensor = rank src's, in place.
function dist.broadcast(...)
  local fname = "distributed.broadcast"
  local o = collect(fname, {"tensor", "src"}, {"async_op"}, false, ...)
  local m = need(fname)
  local t = tensor_arg(fname, "tensor", o.tensor)
  local src = o.src == nil and 1 or A.int_arg(fname, "src", o.src)
  local w = m.broadcast(t, src, bool_arg(fname, "async_op", o.async_op, false))
  return w or t
end

-- all_gather(tensor [, {async_op}]) -> a new tensor of shape (world_size, ...tensor's shape),
-- row r holding rank r's tensor (and the Work handle with async_op).
function dist.all_gather(...)
  local fname = "distributed.all_gather"
  local o = collect(fname, {"tensor"}, {"async_op"}, false, ...)
  local m = need(fname)
  local t = tensor_arg(fname, "tensor", o.tensor)
  local shape = {m.world_size(), table.unpack(t.shape)}
  local out = lucid.empty(shape, {dtype = t.dtype})
  local w = m.all_gather(out, t:contiguous(), bool_arg(fname, "async_op", o.async_op, false))
  if w then return out, w end
  return out
end

-- all_gather_into_tensor(output, input [, {async_op}]) -> output: output (world_size times
-- input's elements, any shape, contiguous) = the ranks' inputs in rank order. input may be
-- this rank's block of output (the in-place form: nothing is copied in). Through shared
-- memory when output comes from zeros_shared (every rank's must).
function dist.all_gather_into_tensor(...)
  local fname = "distributed.all_gather_into_tensor"
  local o = collect(fname, {"output", "input"}, {"async_op"}, false, ...)
  local m = need(fname)
  local out = tensor_arg(fname, "output", o.output)
  local w = m.all_gather(out, tensor_arg(fname, "input", o.input), bool_arg(fname, "async_op", o.async_op, false))
  return w or out
end

-- reduce_scatter(tensor [, op = "sum"] [, {async_op}]) -> a new tensor: tensor's dim 1 (a
-- multiple of world_size long) split into world_size blocks, each reduced over the ranks; rank
-- r gets block r (and the Work handle with async_op).
function dist.reduce_scatter(...)
  local fname = "distributed.reduce_scatter"
  local o = collect(fname, {"tensor", "op"}, {"async_op"}, false, ...)
  local m = need(fname)
  local t = tensor_arg(fname, "tensor", o.tensor)
  local k = m.world_size()
  if t.ndim == 0 or t.shape[1] % k ~= 0 then
    fail("%s: tensor's dim 1 must be a multiple of world_size (%d), got shape {%s}", fname, k,
      table.concat(t.shape, ", "))
  end
  local shape = {table.unpack(t.shape)}
  shape[1] = shape[1] // k
  local out = lucid.empty(shape, {dtype = t.dtype})
  local w = m.reduce_scatter(out, t:contiguous(), o.op, bool_arg(fname, "async_op", o.async_op, false))
  if w then return out, w end
  return out
end

-- barrier([{async_op}]): returns when every rank has reached it.
function dist.barrier(...)
  local fname = "distributed.barrier"
  local o = collect(fname, {}, {"async_op"}, false, ...)
  return need(fname).barrier(bool_arg(fname, "async_op", o.async_op, false))
end

-- zeros_shared(n [, {dtype = "float32"}]) -> a 1-D tensor of n zeros in memory the processes
-- of this machine share. Collective (every rank, same n and dtype, same order). all_reduce
-- "sum" or "avg" of it, or of a contiguous part of it (the same part on every rank), runs
-- through that memory, several times faster than through MPI; DistributedDataParallel keeps
-- its gradient buckets in such tensors. With one process per machine, or init's
-- shared_memory = false, it is an ordinary tensor (is_shared tells).
function dist.zeros_shared(...)
  local fname = "distributed.zeros_shared"
  local o = collect(fname, {"n"}, {"dtype"}, false, ...)
  local m = need(fname)
  local n = A.int_arg(fname, "n", o.n, 0)
  return m.zeros_shared(n, o.dtype)
end

-- is_shared(tensor) -> whether tensor lies in memory from zeros_shared
function dist.is_shared(t)
  local fname = "distributed.is_shared"
  return need(fname).is_shared(tensor_arg(fname, "argument 1 (tensor)", t))
end

-- shared_view(tensor, rank) -> a tensor over the same elements of a shared tensor (or of a
-- contiguous part of one) in rank's memory (rank on this machine): reads see rank's values,
-- writes change them. Not collective: order the ranks' accesses with barriers.
function dist.shared_view(t, rank)
  local fname = "distributed.shared_view"
  return need(fname).shared_view(tensor_arg(fname, "argument 1 (tensor)", t), rank)
end

-- stats() -> {bytes, ops, shared_ops, busy_seconds}: tensor bytes this rank handed to
-- collectives, the collectives completed (shared_ops: the all_reduces that went through
-- shared memory), and the time the communication thread spent in them, since init.
function dist.stats() return need("distributed.stats").stats() end

-- finalize(): leaves the job (every rank must call it; the Lua state's end does it otherwise).
function dist.finalize()
  need("distributed.finalize").finalize()
  finalized = true
end

-- abort([code = 1 [, message]]): ends the whole job at once, on every rank.
function dist.abort(code, message)
  if mpi then mpi.abort(code or 1, message) end
  if message then io.stderr:write("lucid.distributed: ", message, "\n") end
  os.exit(code or 1, false)
end

-- dist.optim (ZeroRedundancyOptimizer, lua/lucid/distributed/optim.lua), loaded at first use:
-- it requires this module.
setmetatable(dist, {__index = function(_, k)
  if k == "optim" then
    local m = require "lucid.distributed.optim"
    rawset(dist, "optim", m)
    return m
  end
end})

return dist
