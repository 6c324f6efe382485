-- tests/fuzz/lua_api.lua - a grammar-based fuzzer of lucid's Lua API (issue 12, item 5).
--
--   lucid tests/fuzz/lua_api.lua [seconds] [seed]
--
-- `make fuzz` runs it under the sanitized interpreter (build-asan/bin/lucid). It keeps a pool
-- of values: tensors of random shapes and dtypes, modules, numbers (including huge, negative,
-- NaN and infinite ones), strings, tables of sizes, booleans, nil. Then it calls random
-- functions and methods of the API with random arguments drawn from the pool, and adds the
-- tensors and modules they return to the pool. Every call must either work or raise a lucid
-- error. A crash or a sanitizer report ends the process; a Lua runtime error from inside lucid
-- is reported and fails the run. The run is confined the way a host confines a script: a
-- memory limit, and a file policy that keeps it inside a temporary directory. The last line is
-- "N passed, N failed" (calls made, unclear errors).
local lucid = require "lucid"
local nn = lucid.nn

local seconds = tonumber(arg and arg[1]) or 10
local seed = tonumber(arg and arg[2]) or os.time()
math.randomseed(seed)
lucid.manual_seed(seed)

local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p '" .. dir .. "'")
lucid.set_file_policy{read = {dir}, write = {dir}}
lucid.set_memory_limit(lucid.bytes_in_use() + (512 << 20))

local R = math.random
local NUMBERS = {0, 1, -1, 2, 3, 0.5, -2.5, 1e300, -1e300, 0 / 0, math.huge, -math.huge,
  math.maxinteger, math.mininteger, 1 << 62, 7, 16, 1e-12}
local STRINGS = {"float32", "float64", "int64", "int32", "bool", "sum", "mean", "none",
  "nearest", "bilinear", "same", "valid", "zeros", "", "x", dir .. "/f.safetensors", "/etc/passwd"}

local pool = {}
local function add(v) if #pool < 64 then pool[#pool + 1] = v else pool[R(#pool)] = v end end

local function small_shape()
  local s = {}
  for i = 1, R(0, 4) do s[i] = R(0, 5) end
  return s
end

local function random_tensor()
  local dts = {"float32", "float64", "int64", "int32", "bool"}
  local ok, t = pcall(lucid.randn, small_shape())
  if not ok then return lucid.ones(2) end
  local ok2, c = pcall(t.to, t, dts[R(#dts)])
  return ok2 and c or t
end

local function value()
  local k = R(12)
  if k <= 4 and #pool > 0 then return pool[R(#pool)] end
  if k == 5 then return random_tensor() end
  if k == 6 then return NUMBERS[R(#NUMBERS)] end
  if k == 7 then return R(-3, 6) end
  if k == 8 then return STRINGS[R(#STRINGS)] end
  if k == 9 then return small_shape() end
  if k == 10 then return R(2) == 1 end
  if k == 11 then return {dim = R(-2, 3), keepdim = R(2) == 1, reduction = "sum"} end
  return nil
end

-- the API: functions of the public tables, and methods of tensors and modules
local funcs = {}
local SKIP = {manual_seed = true, set_num_threads = true, set_file_policy = true,
  set_memory_limit = true, FashionMNIST = true, MNIST = true, set_grad_enabled = true}
for tname, t in pairs{lucid = lucid, nn = nn, F = nn.functional, init = nn.init, utils = nn.utils,
    optim = lucid.optim, data = lucid.data, autograd = lucid.autograd} do
  for k, f in pairs(t) do
    local mt = getmetatable(f)
    if not SKIP[k] and (type(f) == "function" or (type(mt) == "table" and mt.__call)) then
      funcs[#funcs + 1] = {tname .. "." .. k, f}
    end
  end
end
local methods = {}
for k, f in pairs(require("lucid.core")._methods) do
  if type(f) == "function" then methods[#methods + 1] = {k, f} end
end

for _ = 1, 16 do add(random_tensor()) end
add(nn.Linear(3, 2))
add(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()))

local calls, unclear, worked = 0, 0, 0
local deadline = os.clock() + seconds
while os.clock() < deadline do
  local name, f, args
  if R(2) == 1 then
    local e = funcs[R(#funcs)]
    name, f = e[1], e[2]
    args = {}
  else
    local e = methods[R(#methods)]
    name, f = "Tensor:" .. e[1], e[2]
    args = {pool[R(#pool)]}
  end
  for _ = 1, R(0, 4) do args[#args + 1] = value() end
  local r = table.pack(pcall(f, table.unpack(args, 1, 6)))
  calls = calls + 1
  if r[1] then
    worked = worked + 1
    for i = 2, r.n do
      local v = r[i]
      if lucid.is_tensor(v) or require("lucid.nn_core").is_module(v) then add(v) end
    end
  elseif not tostring(r[2]):find("lucid", 1, true) then
    unclear = unclear + 1
    io.stderr:write("unclear error from ", name, ": ", tostring(r[2]), "\n")
  end
  if calls % 500 == 0 then collectgarbage() end
end

lucid.set_memory_limit(0)
lucid.set_file_policy()
os.execute("rm -rf '" .. dir .. "'")
print(("lua_api fuzzer: seed %d, %d calls (%d worked), %d unclear errors"):format(seed, calls, worked,
  unclear))
print(("%d passed, %d failed"):format(calls - unclear, unclear))
os.exit(unclear == 0 and 0 or 1)
