-- lucid.distributed.zeros_shared and the all_reduce through shared memory, checked against
-- the same all_reduce through MPI; run under mpirun by spec/distributed_spec.lua.
--   shared.lua shared|plain [off|badpart|badsrc]
-- shared/plain: whether zeros_shared must give shared memory in this layout (mpirun -np and
-- LUCID_DIST_SHM_GROUP); off: init{shared_memory = false}; badpart: the ranks pass different
-- parts of a shared tensor to all_reduce, badsrc: different sources to broadcast, which must
-- fail on every rank. Prints "shared ok" on rank 1.
local lucid = require "lucid"
local dist = require "lucid.distributed"
local expect, mode = arg[1], arg[2]
dist.init{timeout = 30, shared_memory = mode ~= "off"}
local r, k = dist.rank(), dist.world_size()
local shared = expect == "shared"

local function check(cond, what)
  if not cond then error(("rank %d: %s"):format(r, what), 0) end
end

-- the file names of this process's shared mappings (/dev/shm/lucid.<pid>.<n>, unlinked)
local function mappings()
  local n = 0
  for line in io.lines("/proc/self/maps") do
    if line:find("/dev/shm/lucid%.%d+%.%d+") then n = n + 1 end
  end
  return n
end

if mode == "badpart" then
  local s = dist.zeros_shared(100)
  check(dist.is_shared(s), "badpart needs shared memory")
  local ok, err = pcall(dist.all_reduce, s:narrow(1, r, 10))
  check(not ok, "different parts were accepted")
  print(tostring(err))
  os.exit(3)
end
if mode == "badsrc" then
  local s = dist.zeros_shared(100, {dtype = "int64"})
  check(dist.is_shared(s), "badsrc needs shared memory")
  local ok, err = pcall(dist.broadcast, s, r)
  check(not ok, "different sources were accepted")
  print(tostring(err))
  os.exit(3)
end

-- every rank's results must be the same bits: gathered and compared with rank 1's row
local function same_everywhere(t, what)
  local g = dist.all_gather(t)
  for q = 2, k do check(lucid.equal(g[q], g[1]), what .. ": rank " .. q .. " differs from rank 1") end
end

local ok, err
local maps0 = mappings()
for _, dt in ipairs{"float32", "float64"} do
  local tol = dt == "float32" and 1e-5 or 1e-12
  for _, n in ipairs{1, 5, 17, 1000, 100003} do
    local s = dist.zeros_shared(n, {dtype = dt})
    local what = ("%s n=%d"):format(dt, n)
    check(s.dtype == dt and s.ndim == 1 and s.shape[1] == n, what .. ": shape/dtype")
    check(s:abs():max():item() == 0, what .. ": not zeros")
    check(dist.is_shared(s) == shared, what .. ": is_shared is " .. tostring(dist.is_shared(s)))
    for _, op in ipairs{"sum", "avg"} do
      lucid.manual_seed(1000 * r + n)
      local v = lucid.randn(n, {dtype = dt})
      s:copy_(v)
      local ref = v:clone()
      local st0 = dist.stats()
      check(dist.all_reduce(s, op) == s, what .. ": returns the tensor")
      local st1 = dist.stats()
      dist.all_reduce(ref, op) -- an ordinary tensor: through MPI
      check(st1.shared_ops - st0.shared_ops == (shared and 1 or 0), what .. ": shared_ops")
      local err = (s - ref):abs():max():item()
      check(err <= tol * (1 + ref:abs():max():item()), ("%s %s: off by %g from MPI's"):format(what, op, err))
      same_everywhere(s, what .. " " .. op)
    end
  end
end

-- a part of a shared tensor (the same part everywhere); the rest stays as it was
local s = dist.zeros_shared(64)
s:fill_(r)
dist.all_reduce(s:narrow(1, 3, 40), "sum")
local want = k * (k + 1) / 2
for i, v in ipairs(s:tolist()) do
  local e = (i >= 3 and i <= 42) and want or r
  check(v == e, ("narrow: [%d] = %g, expected %g"):format(i, v, e))
end

-- non-blocking, interleaved with ordinary collectives, in start order; reused buffers
local a, b = dist.zeros_shared(5000), dist.zeros_shared(300, {dtype = "float64"})
for round = 1, 3 do
  a:fill_(r * round); b:fill_(-r)
  local plain = lucid.full({7}, r)
  local wa = dist.all_reduce(a, "avg", {async_op = true})
  local wp = dist.all_reduce(plain, "max", {async_op = true})
  local wb = dist.all_reduce(b, "sum", {async_op = true})
  wb:wait(); wa:wait(); wp:wait()
  check(a:min():item() == round * (k + 1) / 2 and a:max():item() == round * (k + 1) / 2, "async avg")
  check(b:min():item() == -want and b:max():item() == -want, "async sum")
  check(plain:min():item() == k, "async plain")
end
-- a shared tensor's other reductions and collectives go through MPI on its memory
a:fill_(r)
dist.all_reduce(a, "max")
check(a:min():item() == k, "max on a shared tensor")

-- broadcast of a shared tensor copies from the source's memory (across "machines": through
-- MPI to the source's peer on each, then its memory), any dtype, from every source
for _, dt in ipairs{"float32", "float64", "int64", "float16", "bool"} do
  local t = dist.zeros_shared(777, {dtype = dt})
  for src = 1, k do
    lucid.manual_seed(src)
    local want_t = (lucid.rand(777) * 200):to(dt)
    if r == src then t:copy_(want_t) else t:fill_(0) end
    local st0 = dist.stats()
    check(dist.broadcast(t, src) == t, "broadcast returns the tensor")
    check(dist.stats().shared_ops - st0.shared_ops == (shared and 1 or 0), dt .. ": broadcast shared_ops")
    check(lucid.equal(t, want_t), ("broadcast %s from %d"):format(dt, src))
  end
end
-- a part (the same everywhere): the rest keeps each rank's values; async, between others
local p = dist.zeros_shared(300, {dtype = "float64"})
p:fill_(r)
local wq = dist.broadcast(p:narrow(1, 101, 50), k, {async_op = true})
local plain = dist.all_reduce(lucid.full({3}, r), "sum", {async_op = true})
local wq2 = dist.broadcast(p:narrow(1, 1, 10), 1, {async_op = true})
wq:wait(); plain:wait(); wq2:wait()
for i, v in ipairs(p:tolist()) do
  local e = (i >= 101 and i <= 150) and k or i <= 10 and 1 or r
  check(v == e, ("broadcast part: [%d] = %g, expected %g"):format(i, v, e))
end
p, wq, wq2, plain = nil, nil, nil, nil

-- all_gather_into_tensor into a shared tensor: in place (the input is this rank's block) and
-- from another tensor, against all_gather through MPI
for _, dt in ipairs{"float32", "int64", "float16"} do
  for _, block in ipairs{1, 7, 1000} do
    local out = dist.zeros_shared(k * block, {dtype = dt})
    lucid.manual_seed(r * 31 + block)
    local mine = (lucid.rand(block) * 100):to(dt)
    local want = dist.all_gather(mine):reshape(k * block)
    local what = ("all_gather_into_tensor %s block %d"):format(dt, block)
    for _, in_place in ipairs{true, false} do
      out:fill_(0)
      local input = mine
      if in_place then
        input = out:narrow(1, (r - 1) * block + 1, block)
        input:copy_(mine)
      end
      local st0 = dist.stats()
      check(dist.all_gather_into_tensor(out, input) == out, what .. ": returns output")
      check(dist.stats().shared_ops - st0.shared_ops == (shared and 1 or 0), what .. ": shared_ops")
      check(lucid.equal(out, want), what .. (in_place and " in place" or ""))
    end
  end
end
-- shared_view: rank q's copy of a shared tensor, for the ranks of this machine (group)
local g = tonumber(os.getenv("LUCID_DIST_SHM_GROUP") or "") or k
local sv = dist.zeros_shared(12)
sv:fill_(r)
dist.barrier()
local seen = 0
for q = 1, k do
  local okv, v = pcall(dist.shared_view, sv:narrow(1, 3, 4), q)
  local same = (q - 1) // g == (r - 1) // g
  if shared and same then
    check(okv, "shared_view of rank " .. q .. ": " .. tostring(v))
    check(v.shape[1] == 4 and v:min():item() == q and v:max():item() == q, "shared_view reads rank " .. q)
    seen = seen + 1
  else
    check(not okv and tostring(v):find(shared and "is not on this machine" or "not in shared memory", 1, true),
      "shared_view of rank " .. q .. ": " .. tostring(v))
  end
end
check(seen == (shared and math.min(g, k) or 0), "shared_view: ranks seen")
if shared then
  -- writes reach the other rank's memory; the view keeps it mapped after its tensor died
  local nxt = (r - 1) // g * g + (r % g) + 1 -- the next rank of this group
  local v = dist.shared_view(sv, nxt)
  dist.barrier()
  v[r]:fill_(100 + r)
  dist.barrier()
  local from = (r - 1) // g * g + ((r - 2) % g) + 1
  check(sv[from]:item() == 100 + from, "a write through shared_view")
  sv = nil
  collectgarbage(); collectgarbage()
  check(v[r]:item() == 100 + r, "the view outlives its tensor")
  v = nil
end
ok, err = pcall(dist.shared_view, lucid.zeros(3), 1)
check(not ok and tostring(err):find("distributed.shared_view: the tensor is not in shared memory", 1, true), tostring(err))
ok, err = pcall(dist.shared_view, dist.zeros_shared(3), k + 1)
check(not ok and tostring(err):find("expected a rank in 1.." .. k, 1, true), tostring(err))
sv = nil

-- an ordinary output, in place (MPI_IN_PLACE), async; a 2-D output
local o2 = lucid.zeros(k, 3)
o2[r]:fill_(r)
dist.all_gather_into_tensor(o2, o2[r], {async_op = true}):wait()
for q = 1, k do check(o2[q]:min():item() == q and o2[q]:max():item() == q, "in place through MPI") end
local bad = lucid.zeros(k * 2)
ok, err = pcall(dist.all_gather_into_tensor, bad, bad:narrow(1, r == 1 and 2 or 1, 2))
check(not ok and tostring(err):find("output and input must not share storage, unless input is this rank's block of output", 1, true),
  "overlapping input: " .. tostring(err))
o2, bad = nil, nil

-- sizes that differ are refused on every rank, and the runtime stays usable
ok, err = pcall(dist.zeros_shared, 10 + r)
check(not ok and tostring(err):find("distributed.zeros_shared: the ranks asked for different sizes", 1, true),
  "size mismatch: " .. tostring(err))
ok, err = pcall(dist.zeros_shared, -1)
check(not ok and tostring(err):find("zeros_shared: n must be >= 0", 1, true), "negative n: " .. tostring(err))
local z = dist.zeros_shared(0)
check(z:numel() == 0 and not dist.is_shared(z), "empty")
dist.all_reduce(z, "sum")
check(dist.all_reduce(lucid.ones(2))[1]:item() == k, "usable after the refusal")

-- dead tensors unmap their memory (nothing is left mapped, nothing in /dev/shm)
if shared then check(mappings() > maps0, "mapped while alive") end
s, a, b, z = nil, nil, nil, nil
collectgarbage(); collectgarbage()
local keep = dist.zeros_shared(8)
keep:fill_(r)
dist.all_reduce(keep, "sum")
collectgarbage(); collectgarbage()
check(mappings() == maps0 + (shared and 1 or 0), ("mappings left: %d"):format(mappings() - maps0))
dist.finalize()
-- after finalize the memory stays usable until its tensor dies
keep:add_(1)
check(keep:min():item() == want + 1, "after finalize")
keep = nil
collectgarbage(); collectgarbage()
check(mappings() == maps0, "unmapped after finalize")
local leftover = io.popen("ls /dev/shm | grep -c '^lucid\\.' || true"):read("a")
if r == 1 then print("leftover shm objects: " .. leftover:gsub("%s+", "")) end
if r == 1 then print("shared ok") end
