-- A job where rank 2 fails before the first collective, for spec/distributed_spec.lua:
--   mpirun -np 2 lucid fault.lua <timeout> error|hang|kill
local lucid = require "lucid"
local dist = require "lucid.distributed"
dist.init{timeout = tonumber(arg[1])}
if dist.rank() == 2 then
  if arg[2] == "hang" then
    local t = os.time()
    while os.time() - t < 60 do end -- busy, never calling the collective
  elseif arg[2] == "kill" then
    os.execute("kill -9 " .. io.open("/proc/self/stat"):read("n"))
  end
  error("boom on rank 2")
end
dist.all_reduce(lucid.ones(10))
print("rank 1 went on: wrong")
