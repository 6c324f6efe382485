-- The seed's fifth example: a ModuleList inside a Sequential. Called, a ModuleList applies its
-- modules in order.
-- run: build/bin/lucid examples/seed_5_modulelist.lua
local lucid = require "lucid"
local nn = lucid.nn

lucid.manual_seed(0)
local layers = nn.ModuleList{nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 10)}
local model = nn.Sequential{{"layer_sequence", layers}, {"output_layer", nn.Linear(10, 1)}}
print(model)
local input_tensor = lucid.ones({1, 10}, {requires_grad = true})
local output = model(input_tensor)
print("output:", output)
output:backward()
print("input_tensor.grad:", input_tensor.grad)
for name, p in model:named_parameters() do
  print(name, "shape {" .. table.concat(p.shape, ", ") .. "}", "grad sum:", p.grad:sum():item())
end
