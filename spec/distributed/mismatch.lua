-- Rank 2 builds a model of another shape: DistributedDataParallel must refuse it on every rank.
local lucid = require "lucid"
local dist = require "lucid.distributed"
dist.init{timeout = 30}
local model = lucid.nn.Linear(dist.rank() == 2 and 4 or 4, dist.rank() == 2 and 5 or 4)
local ok, err = pcall(lucid.nn.parallel.DistributedDataParallel, model)
print(("rank %d: %s"):format(dist.rank(), tostring(err)))
assert(not ok)
os.exit(1)
