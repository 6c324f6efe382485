-- The seed's fourth example: modules added to an empty Sequential one by one.
-- run: build/bin/lucid examples/seed_4_dynamic.lua
local lucid = require "lucid"
local nn = lucid.nn

lucid.manual_seed(0)
local model = nn.Sequential()
model:add_module("fc1", nn.Linear{in_features = 10, out_features = 5})
model:add_module("relu", nn.ReLU())
model:add_module("fc2", nn.Linear{in_features = 5, out_features = 2})
print(model)
local input_tensor = lucid.ones({1, 10}, {requires_grad = true})
local output = model(input_tensor)
print("output:", output)
output:sum():backward()
print("input_tensor.grad:", input_tensor.grad)
print("fc2.weight.grad:", model.fc2.weight.grad)
