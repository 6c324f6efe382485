-- The seed's second example: an ordered list of named modules.
-- run: build/bin/lucid examples/seed_2_ordered.lua
local lucid = require "lucid"
local nn, Tensor = lucid.nn, lucid.Tensor

lucid.manual_seed(0)
local model = nn.Sequential{
  {"fc1", nn.Linear{in_features = 5, out_features = 3}},
  {"activation", nn.Tanh()},
  {"fc2", nn.Linear{in_features = 3, out_features = 1}},
}
print(model)
local input_tensor = Tensor({{0.5, -1.2, 3.3, 0.0, 2.1}}, {requires_grad = true})
local output = model(input_tensor)
print("output:", output)
output:backward()            -- one element: the gradient seed is implicit
print("input_tensor.grad:", input_tensor.grad)
print("fc1.weight.grad:", model.fc1.weight.grad)
print("fc2.bias.grad:", model.fc2.bias.grad)
