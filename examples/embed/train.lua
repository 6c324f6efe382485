-- train.lua - one training job, run by examples/embed/threads.c in a lua_State of its own.
--
-- Returns a function train{model = "mlp" | "net", seed = n, steps = n} that fits a small model
-- to a synthetic regression problem with plain SGD and returns
--   first_loss, last_loss, checksum (the sum of every parameter after training).
--
-- Per-thread determinism: the data and the initial weights come from lucid's generator, which
-- is per OS thread: lucid.manual_seed(seed) here seeds this thread's only, so the job draws the
-- same numbers whether or not another thread is training at the same time.
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
    lr = 0.2,
  },
}

return function(opts)
  local b = assert(builders[opts.model], "train: unknown model " .. tostring(opts.model))
  lucid.manual_seed(opts.seed)

  local n = 64
  local x = lucid.rand(n, b.n_in) * 2 - 1
  local rows = {}
  for i, v in ipairs(x:tolist()) do rows[i] = {b.target(v)} end
  local y = lucid.Tensor(rows)

  local model = b.model() -- nn.Linear's default initialisation draws from the same generator
  local params = model:parameters()

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
