-- Every collective of lucid.distributed on every rank, checked against what it must give;
-- run under mpirun by spec/distributed_spec.lua. Prints "collectives ok" on rank 1 at the end.
local lucid = require "lucid"
local dist = require "lucid.distributed"
assert(not dist.is_initialized())
dist.init{timeout = 60}
assert(dist.is_initialized())
local r, k = dist.rank(), dist.world_size()
assert(r >= 1 and r <= k and dist.local_rank() == r and dist.local_size() == k)
assert(dist.get_timeout() == 60)

local function near(t, list, what)
  local got = t:reshape(-1):tolist()
  assert(#got == #list, what .. ": length " .. #got)
  for i = 1, #list do
    assert(math.abs(got[i] - list[i]) < 1e-6, ("%s: [%d] = %s, expected %s"):format(what, i, got[i], list[i]))
  end
end
local sum = k * (k + 1) // 2

-- all_reduce: every op, float and integer dtypes, in place, returning the tensor
for _, dt in ipairs{"float32", "float64", "int32", "int64"} do
  local t = lucid.tensor({r, -r, 2}, {dtype = dt})
  assert(dist.all_reduce(t) == t)
  near(t, {sum, -sum, 2 * k}, "sum " .. dt)
  t = lucid.tensor({r, -r}, {dtype = dt}); dist.all_reduce(t, "max"); near(t, {k, -1}, "max " .. dt)
  t = lucid.tensor({r, -r}, {dtype = dt}); dist.all_reduce(t, {op = "min"}); near(t, {1, -k}, "min " .. dt)
end
local t = lucid.tensor({r, 2 * r}, {dtype = "float64"})
dist.all_reduce(t, "avg")
near(t, {sum / k, 2 * sum / k}, "avg")
local b = lucid.tensor({r == 2, false}); dist.all_reduce(b, "max"); near(b:int(), {1, 0}, "bool max")

-- non-blocking: handles complete in order; a large tensor too
local big = lucid.full({1 << 18}, r)
local w1 = dist.all_reduce(big, "sum", {async_op = true})
local small = lucid.ones(3)
local w2 = dist.all_reduce(small, "sum", {async_op = true})
assert(w2:wait() == true and w1:is_completed())
assert(tostring(w1):find("completed"))
near(small, {k, k, k}, "async small")
assert(big:min():item() == sum and big:max():item() == sum, "async big")

-- broadcast from each rank
for src = 1, k do
  local x = lucid.tensor({r, r * 10})
  dist.broadcast(x, src)
  near(x, {src, src * 10}, "broadcast from " .. src)
end
local x = lucid.tensor({r})
dist.broadcast(x, {src = k, async_op = true}):wait()
near(x, {k}, "async broadcast")

-- all_gather: rank order, any shape
local g = dist.all_gather(lucid.tensor({{r, -r}}))
assert(g.ndim == 3 and g.shape[1] == k and g.shape[2] == 1 and g.shape[3] == 2)
local want = {}
for q = 1, k do want[#want + 1] = q; want[#want + 1] = -q end
near(g, want, "all_gather")
local g2, wg = dist.all_gather(lucid.tensor({r * 1.5}), {async_op = true})
wg:wait()
near(g2, (function() local l = {} for q = 1, k do l[q] = q * 1.5 end return l end)(), "async all_gather")

-- reduce_scatter: block r of the sum
local input = lucid.arange(1, 2 * k + 1):float():mul(r)
local rs = dist.reduce_scatter(input, "sum")
near(rs, {(2 * r - 1) * sum, 2 * r * sum}, "reduce_scatter")

-- barrier, and the counters
dist.barrier()
dist.barrier({async_op = true}):wait()
local s = dist.stats()
assert(s.ops > 20 and s.bytes > (1 << 20) and s.busy_seconds >= 0)

-- bad arguments: clear errors, and the runtime still works after them
local function fails(pat, f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "expected an error matching " .. pat)
  assert(tostring(err):find(pat, 1, true), "error was: " .. tostring(err))
end
fails("all_reduce: tensor must be contiguous", dist.all_reduce, lucid.ones(3, 4):t())
fails('expected "sum", "avg", "max" or "min", got mean', dist.all_reduce, lucid.ones(2), "mean")
fails("avg needs a float32 or float64 tensor", dist.all_reduce, lucid.ones(2, {dtype = "int64"}), "avg")
fails("cannot reduce bool tensors with sum", dist.all_reduce, lucid.tensor({true}))
fails("tensor must be a tensor, got number", dist.all_reduce, 3)
fails("src", dist.broadcast, lucid.ones(1), k + 1)
fails("multiple of world_size", dist.reduce_scatter, lucid.ones(2 * k + 1))
fails("already initialized", dist.init)

-- the communication thread's priority: idle when the processes' threads fill the cores
local cores = tonumber(io.popen("nproc"):read("l"))
local want_auto = k * lucid.get_num_threads() >= cores and "idle" or "normal"
assert(dist.get_comm_priority() == want_auto, "auto priority: " .. dist.get_comm_priority() .. ", expected " .. want_auto)
dist.set_comm_priority("normal"); assert(dist.get_comm_priority() == "normal")
t = lucid.ones(2); dist.all_reduce(t); near(t, {k, k}, "at normal priority")
dist.set_comm_priority("idle"); assert(dist.get_comm_priority() == "idle")
t = lucid.ones(2); dist.all_reduce(t); near(t, {k, k}, "at idle priority")
dist.set_comm_priority("auto"); assert(dist.get_comm_priority() == want_auto)
fails('distributed.set_comm_priority: argument 1 (priority) must be "auto", "normal" or "idle", got "fast"',
  dist.set_comm_priority, "fast")
t = lucid.ones(2); dist.all_reduce(t); near(t, {k, k}, "after errors")

dist.finalize()
fails("called after finalize", dist.all_reduce, lucid.ones(1))
if r == 1 then print("collectives ok") end
