-- train.lua - one training job, run by examples/embed/threads.c in a lua_State of its own.
--
-- Returns a function train{model = "mlp" | "net", seed = n, steps = n} that fits a small model
-- to a synthetic regression problem with plain SGD and returns
--   first_loss, last_loss, checksum (the sum of every parameter after training).
--
-- Per-state determinism: the data and the initial weights come from Lua's math.random, which
-- belongs to this lua_State, seeded with `seed`. lucid's own generator (lucid.manual_seed,
-- lucid.rand, nn.Linear's initialisation) is ONE generator for the whole process: two threads
-- drawing from it at once interleave their draws, so a job run next to another would not see
-- the numbers it sees alone. Hence every parameter is overwritten here from math.random.
local lucid = require "lucid"
local nn = lucid.nn

-- A model written in Lua: a residual tanh block and a linear head.
local Net = nn.Module:extend("Net")

function Net:init(n_in, n_hidden)
  self.inp = nn.Linear(n_in, n_hidden)
  self.block = nn.Linear(n_hidden, n_hidden)
  self.head = nn.Linear(n_hidden, 1)
end

function Net:forward(x)
  local h = self.inp(x):tanh()
  return self.head(h + self.block(h):tanh())
end

local builders = {
  -- y = x1 * x2 - 0.5 x3
  mlp = {
    n_in = 3,
    target = function(v) return v[1] * v[2] - 0.5 * v[3] end,
    model = function() return nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 1)) end,
    lr = 0.2,
  },
  -- y = x1^2 - x2
  net = {
    n_in = 2,
    target = function(v) return v[1] * v[1] - v[2] end,
    model = function() return Net(2, 12) end,
    lr = 0.1,
  },
}

-- Uniform in [-bound, bound) from this state's generator, shaped like t.
local function uniform_like(t, bound)
  local vals = {}
  for i = 1, t:numel() do vals[i] = (2 * math.random() - 1) * bound end
  return lucid.Tensor(vals):reshape(t.shape)
end

return function(opts)
  local b = assert(builders[opts.model], "train: unknown model " .. tostring(opts.model))
  math.randomseed(opts.seed)

  local n = 64
  local xs, ys = {}, {}
  for i = 1, n do
    local v = {}
    for j = 1, b.n_in do v[j] = 2 * math.random() - 1 end
    xs[i], ys[i] = v, {b.target(v)}
  end
  local x, y = lucid.Tensor(xs), lucid.Tensor(ys)

  local model = b.model()
  local params = model:parameters()
  lucid.no_grad(function()
    for _, p in ipairs(params) do
      local fan_in = p.ndim == 2 and p.shape[2] or p.shape[1]
      p:copy_(uniform_like(p, 1 / math.sqrt(fan_in)))
    end
  end)

  local first, last
  for step = 1, opts.steps do
    local loss = ((model(x) - y) ^ 2):mean()
    model:zero_grad()
    loss:backward()
    lucid.no_grad(function()
      for _, p in ipairs(params) do p:sub_(p.grad * b.lr) end
    end)
    last = loss:item()
    if step == 1 then first = last end
  end

  local checksum = 0
  for _, p in ipairs(params) do checksum = checksum + p:double():sum():item() end
  return first, last, checksum
end
