-- The seed's first example: a Sequential of positional modules.
-- run: build/bin/lucid examples/seed_1_positional.lua
local lucid = require "lucid"
local nn, Tensor = lucid.nn, lucid.Tensor

lucid.manual_seed(0)
local model = nn.Sequential(
  nn.Linear{in_features = 4, out_features = 3},
  nn.ReLU(),
  nn.Linear{in_features = 3, out_features = 2}
)
print(model)
local input_tensor = Tensor({{1.0, 2.0, 3.0, 4.0}}, {requires_grad = true}) -- shape {1, 4}
local output = model(input_tensor)
print("output:", output)
output:sum():backward()
print("input_tensor.grad:", input_tensor.grad)
for name, p in model:named_parameters() do
  print(name .. ".grad:", p.grad)
end
