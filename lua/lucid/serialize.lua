-- lucid.serialize: placeholder until checkpoints land.
local M = {}
function M.save() error("lucid.save: not available yet", 2) end
function M.load() error("lucid.load: not available yet", 2) end
return M
