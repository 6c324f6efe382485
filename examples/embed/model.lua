-- model.lua - the model a C host (examples/embed/host.c) loads into its own lua_State.
--
-- Returns a table of functions the host calls from C:
--   M.new(n_in, n_hidden, n_out)      -> a Classifier in eval mode
--   M.predict(model, x)               -> logits {N, n_out} (no graph is recorded)
--   M.checkpoint_roundtrip(model, x)  -> true when a model rebuilt from a checkpoint
--                                        (lucid.save / lucid.load) gives the same logits; or
--                                        nil, reason when checkpoints are not available
local lucid = require "lucid"
local nn = lucid.nn

-- A two-layer classifier written in Lua (nn.Module:extend); its Linear children run in C.
local Classifier = nn.Module:extend("Classifier")

function Classifier:init(n_in, n_hidden, n_out)
  self.sizes = {n_in, n_hidden, n_out} -- a plain field
  self.fc1 = nn.Linear(n_in, n_hidden)  -- modules: registered as children
  self.fc2 = nn.Linear(n_hidden, n_out)
end

function Classifier:forward(x)
  return self.fc2(self.fc1(x):relu())
end

local M = {}

function M.new(n_in, n_hidden, n_out)
  return Classifier(n_in, n_hidden, n_out):eval()
end

function M.predict(model, x)
  return lucid.no_grad(function() return model(x) end)
end

function M.checkpoint_roundtrip(model, x)
  local path = os.tmpname()
  local ok, err = pcall(lucid.save, path, model:state_dict()) -- lucid.save(path, obj)
  if not ok then
    os.remove(path)
    -- lua/lucid/serialize.lua is a placeholder until checkpoints land
    if tostring(err):find("not available", 1, true) then return nil, tostring(err) end
    error(err, 0)
  end
  local loaded = lucid.load(path)
  os.remove(path)
  local fresh = M.new(table.unpack(model.sizes))
  fresh:load_state_dict(loaded)
  return lucid.equal(M.predict(fresh, x), M.predict(model, x))
end

return M
