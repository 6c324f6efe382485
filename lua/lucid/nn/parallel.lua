-- nn.parallel.DistributedDataParallel: data-parallel training across the processes of an MPI
-- job (PyTorch's torch.nn.parallel.DistributedDataParallel; docs/distributed.md).
--
-- Each process runs the same model on its own part of the batch. At wrap time every parameter
-- and buffer is broadcast from rank 1 (after checking that all ranks hold the same parameter
-- shapes). During backward, gradients are averaged over the ranks: the parameters are grouped
-- into buckets of about bucket_cap_mb (in reverse registration order, the order backward
-- completes them), and as soon as every gradient of a bucket has been accumulated (a
-- post-accumulate-grad hook per parameter) the bucket is copied into one flat buffer whose
-- all_reduce starts at once, without blocking: the communication thread of lucid.distributed
-- moves it while backward goes on. Buckets start in index order on every rank, so the
-- collectives match. At the end of backward (an autograd callback) the remaining buckets start,
-- all are waited for and the averages are copied back into .grad.
--
-- A parameter that got no gradient in a backward (unused on this rank) contributes its current
-- .grad, or zeros; each bucket carries one flag per parameter, so a parameter no rank touched
-- keeps .grad = nil, as in PyTorch with find_unused_parameters.
local lucid = require "lucid"

return function(nn, P)
  local fail, describe, args = P.fail, P.describe, P.args

  local parallel = nn.parallel or {}
  nn.parallel = parallel

  local DDP = nn.Module:extend("DistributedDataParallel")
  parallel.DistributedDataParallel = DDP

  local FNAME = "nn.parallel.DistributedDataParallel"
  local sync_buffers

  local function shape_str(t) return "{" .. table.concat(t.shape, ", ") .. "}" end

  -- Every rank must hold the same parameters: rank 1's shapes are broadcast and compared here;
  -- every rank learns which ranks differ (one all_reduce), so all of them raise, none hangs.
  local function check_shapes(dist, params, names)
    local enc = {#params}
    for _, p in ipairs(params) do
      enc[#enc + 1] = p.ndim
      for _, d in ipairs(p.shape) do enc[#enc + 1] = d end
      enc[#enc + 1] = p.dtype == "float64" and 2 or 1
    end
    local len = lucid.tensor({#enc}, {dtype = "int64"})
    dist.broadcast(len, 1)
    local n1 = len:item()
    local theirs = lucid.zeros(n1, {dtype = "int64"})
    if dist.rank() == 1 then theirs:copy_(lucid.tensor(enc, {dtype = "int64"})) end
    dist.broadcast(theirs, 1)
    local ref = theirs:tolist()
    local why
    if ref[1] ~= #params then
      why = string.format("rank %d has %d parameters but rank 1 has %d", dist.rank(), #params, ref[1])
    else
      local at = 2
      for i, p in ipairs(params) do
        local nd = ref[at]
        local shape = {table.unpack(ref, at + 1, at + nd)}
        local dt = ref[at + nd + 1] == 2 and "float64" or "float32"
        at = at + nd + 2
        local same = nd == p.ndim and dt == (p.dtype == "float64" and "float64" or "float32")
        for k = 1, nd do same = same and shape[k] == p.shape[k] end
        if not same then
          why = string.format("parameter %d (%s) has shape %s (%s) on rank %d but {%s} (%s) on rank 1",
            i, names[i], shape_str(p), p.dtype, dist.rank(), table.concat(shape, ", "), dt)
          break
        end
      end
    end
    local bad = lucid.zeros(dist.world_size(), {dtype = "int32"})
    if why then bad[dist.rank()] = 1 end
    dist.all_reduce(bad, "max")
    local ranks = {}
    for r, v in ipairs(bad:tolist()) do if v ~= 0 then ranks[#ranks + 1] = tostring(r) end end
    if #ranks > 0 then
      fail("%s: the model's parameters differ across ranks: %s", FNAME,
        why or ("rank(s) " .. table.concat(ranks, ", ") .. " differ from rank 1 (see their errors)"))
    end
  end

  -- Buckets: consecutive parameters (in reverse order) of one dtype, about cap bytes each; the
  -- first at most 1 MB (PyTorch's rule), so the first all_reduce starts early in backward.
  -- flat holds the gradients, then one flag per parameter (1: this rank contributes a gradient);
  -- it lives in memory the processes of a machine share (zeros_shared), so that its all_reduce
  -- reads every process's bucket directly instead of sending it through MPI.
  local FIRST_BUCKET = 1024 * 1024
  local function make_buckets(dist, params, cap)
    local buckets, cur = {}, nil
    for i = #params, 1, -1 do
      local p = params[i]
      local bytes = p:numel() * (p.dtype == "float64" and 8 or 4)
      local limit = #buckets == 1 and math.min(cap, FIRST_BUCKET) or cap
      if cur == nil or cur.dtype ~= p.dtype or (cur.bytes > 0 and cur.bytes + bytes > limit) then
        cur = {dtype = p.dtype, bytes = 0, params = {}, offsets = {}, numel = 0}
        buckets[#buckets + 1] = cur
      end
      cur.params[#cur.params + 1] = p
      cur.offsets[#cur.offsets + 1] = cur.numel
      cur.numel = cur.numel + p:numel()
      cur.bytes = cur.bytes + bytes
    end
    for b, bk in ipairs(buckets) do
      bk.index = b
      bk.flat = dist.zeros_shared(bk.numel + #bk.params, {dtype = bk.dtype})
      bk.flags = bk.flat:narrow(1, bk.numel + 1, #bk.params)
      bk.views = {}
      for s, p in ipairs(bk.params) do
        bk.views[s] = bk.flat:narrow(1, bk.offsets[s] + 1, p:numel()):view(p.shape)
        -- backward computes what it can (Linear's weight and bias) straight into the bucket,
        -- and fill's copy of a gradient onto its own slot is then nothing
        lucid.autograd.set_grad_buffer(p, bk.views[s])
      end
    end
    return buckets
  end

  -- DistributedDataParallel(module [, {bucket_cap_mb = 25, broadcast_buffers = true}])
  function DDP:init(...)
    local o = args(FNAME, {"module", "bucket_cap_mb", "broadcast_buffers"}, ...)
    local dist = require "lucid.distributed"
    if not dist.is_initialized() then
      fail("%s: lucid.distributed is not initialized (call lucid.distributed.init() first, in a "
        .. "process started by mpirun)", FNAME)
    end
    local m = o.module
    if not nn.is_module(m) then fail("%s: argument 1 (module): expected a module, got %s", FNAME, describe(m)) end
    local cap = P.num_arg(FNAME, "bucket_cap_mb", o.bucket_cap_mb, 25)
    if not (cap > 0) then fail("%s: bucket_cap_mb must be > 0, got %s", FNAME, tostring(cap)) end
    self.module = m
    self._dist = dist
    self.broadcast_buffers = P.bool_arg(FNAME, "broadcast_buffers", o.broadcast_buffers, true)
    self.bucket_cap_mb = cap
    self.require_sync = true

    local params, names = {}, {}
    for name, p in m:named_parameters() do
      if p.requires_grad then
        if p.dtype ~= "float32" and p.dtype ~= "float64" then
          fail("%s: parameter %s is %s; only float32 and float64 parameters are supported", FNAME, name, p.dtype)
        end
        params[#params + 1], names[#names + 1] = p, name
      end
    end
    check_shapes(dist, params, names)
    lucid.no_grad(function()
      for _, p in ipairs(params) do dist.broadcast(p, 1) end
      for _, b in ipairs(m:buffers()) do dist.broadcast(b:is_contiguous() and b or b:contiguous(), 1) end
    end)
    local buckets = make_buckets(dist, params, cap * 1024 * 1024)
    self._params = params
    self._buckets = buckets
    -- where each parameter lives: its bucket and its slot in it
    local where = {}
    for _, bk in ipairs(buckets) do
      for s, p in ipairs(bk.params) do where[p] = {bk, s} end
    end
    local state = {pending = 0, ready = {}, filled = {}, next = 1, active = false, handles = {}}
    self._state = state
    -- the hooks hold the wrapper weakly: a dropped wrapper leaves its model free of it
    local weak = setmetatable({self}, {__mode = "v"})
    local handles = {}
    for _, p in ipairs(params) do
      local bk, s = table.unpack(where[p])
      handles[#handles + 1] = p:register_post_accumulate_grad_hook(function(t)
        local ddp = weak[1]
        if ddp then ddp:_grad_ready(bk, s, t) end
      end)
    end
    self._hook_handles = handles
  end

  function DDP:extra_repr()
    return string.format("world_size=%d, buckets=%d, bucket_cap_mb=%g", self._dist.world_size(),
      #self._buckets, self.bucket_cap_mb)
  end

  -- Starts bucket bk's all_reduce (averaging) without waiting.
  local function launch(st, dist, bk)
    st.handles[bk.index] = dist.all_reduce(bk.flat, "avg", {async_op = true})
  end

  -- Starts every complete bucket from st.next on, in index order.
  local function launch_ready(self, st)
    local buckets = self._buckets
    while st.next <= #buckets and st.filled[st.next] == #buckets[st.next].params do
      launch(st, self._dist, buckets[st.next])
      st.next = st.next + 1
    end
  end

  -- Slot s of bucket bk takes grad g (or zeros and flag 0 when g is nil).
  local function fill(bk, s, g)
    local slot = bk.views[s]
    if g then
      slot:copy_(g)
      bk.flags[s] = 1
    else
      slot:zero_()
      bk.flags[s] = 0
    end
  end

  -- The end of a backward: start what is left, wait for everything, write the averages back.
  local function finish(self)
    local st = self._state
    st.active = false
    local buckets = self._buckets
    lucid.no_grad(function()
      for b = st.next, #buckets do
        local bk = buckets[b]
        local ready = st.ready[b] or {}
        for s, p in ipairs(bk.params) do
          if not ready[s] then fill(bk, s, p.grad) end
        end
        launch(st, self._dist, bk)
      end
      local t0 = lucid.clock()
      for b = 1, #buckets do st.handles[b]:wait() end
      -- communication that backward did not hide (for benchmarks: comm_stats)
      st.wait_seconds = (st.wait_seconds or 0) + (lucid.clock() - t0)
      st.syncs = (st.syncs or 0) + 1
      for _, bk in ipairs(buckets) do
        local flags = bk.flags:tolist()
        for s, p in ipairs(bk.params) do
          if flags[s] > 0 then
            -- .grad becomes a view of the bucket (PyTorch's gradient_as_bucket_view): no
            -- copy back, and a later backward that accumulates into it fills the bucket itself
            local avg = bk.views[s]
            p.grad = avg
          end
        end
      end
    end)
    st.ready, st.filled, st.handles, st.next = {}, {}, {}, 1
  end

  function DDP:_grad_ready(bk, s, p)
    if not self.require_sync then return end
    local st = self._state
    if not st.active then
      st.active = true
      st.ready, st.filled, st.handles, st.next = {}, {}, {}, 1
      lucid.autograd.queue_callback(function() finish(self) end)
    end
    local ready = st.ready[bk.index]
    if not ready then
      ready = {}
      st.ready[bk.index] = ready
    end
    if ready[s] then return end
    ready[s] = true
    lucid.no_grad(fill, bk, s, p.grad)
    st.filled[bk.index] = (st.filled[bk.index] or 0) + 1
    launch_ready(self, st)
  end

  -- The module's buffers grouped by dtype, each group with a flat tensor (kept across calls
  -- while its size holds) and a view of it per buffer. Rebuilt on every call: a tensor's ==
  -- compares values, and m:buffers() returns new handles each time, so there is no identity to
  -- check a cached layout against (a buffer replaced by :to() or by assignment must be seen).
  local function buffer_layout(self)
    local flats = self._buf_flats or {}
    self._buf_flats = flats
    local groups, by_dtype = {}, {}
    for _, b in ipairs(self.module:buffers()) do
      if b:is_contiguous() and b:numel() > 0 then
        local g = by_dtype[b.dtype]
        if not g then
          g = {dtype = b.dtype, bufs = {}, numel = 0}
          by_dtype[b.dtype] = g
          groups[#groups + 1] = g
        end
        g.bufs[#g.bufs + 1] = b
        g.numel = g.numel + b:numel()
      end
    end
    for _, g in ipairs(groups) do
      local flat = flats[g.dtype]
      if not flat or flat:numel() ~= g.numel then
        flat = lucid.zeros(g.numel, {dtype = g.dtype})
        flats[g.dtype] = flat
      end
      g.flat, g.views = flat, {}
      local at = 1
      for i, b in ipairs(g.bufs) do
        g.views[i] = flat:narrow(1, at, b:numel()):view(b.shape)
        at = at + b:numel()
      end
    end
    return groups
  end

  -- Rank 1's buffers (BatchNorm's running statistics) on every rank, as PyTorch does before
  -- each training forward: one broadcast per dtype, not one per buffer (a ResNet has hundreds).
  sync_buffers = function(self)
    local dist = self._dist
    local root = dist.rank() == 1
    lucid.no_grad(function()
      for _, g in ipairs(buffer_layout(self)) do
        if root then
          for i, b in ipairs(g.bufs) do g.views[i]:copy_(b) end
        end
        dist.broadcast(g.flat, 1)
        if not root then
          for i, b in ipairs(g.bufs) do b:copy_(g.views[i]) end
        end
      end
    end)
  end

  function DDP:forward(...)
    local st = self._state
    if st.active then
      -- the last backward failed before its end: its buckets are abandoned
      st.active = false
      st.ready, st.filled, st.handles, st.next = {}, {}, {}, 1
    end
    if self.training and self.broadcast_buffers then sync_buffers(self) end
    return self.module(...)
  end

  -- no_sync([fn, ...]): gradients accumulate locally without communication (gradient
  -- accumulation); the next backward outside it averages the accumulated gradients. With fn,
  -- runs fn(...) so; without, returns a guard for `local g <close> = ddp:no_sync()`.
  function DDP:no_sync(fn, ...)
    local prev = self.require_sync
    self.require_sync = false
    if fn == nil then
      return setmetatable({}, {
        __close = function() self.require_sync = prev end,
        __name = "lucid.no_sync_guard",
      })
    end
    local r = table.pack(pcall(fn, ...))
    self.require_sync = prev
    if not r[1] then error(r[2], 0) end
    return table.unpack(r, 2, r.n)
  end

  -- comm_stats() -> {syncs, wait_seconds}: backward passes that averaged gradients, and the
  -- time their ends waited for all_reduces still running (the part backward did not hide).
  function DDP:comm_stats()
    local st = self._state
    return {syncs = st.syncs or 0, wait_seconds = st.wait_seconds or 0}
  end

  parallel.DDP = DDP
end
