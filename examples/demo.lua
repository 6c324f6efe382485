local lucid = require "lucid"
local nn, Tensor = lucid.nn, lucid.Tensor

-- 1. positional modules
local model = nn.Sequential(
  nn.Linear{in_features = 4, out_features = 3},
  nn.ReLU(),
  nn.Linear{in_features = 3, out_features = 2}
)
local input_tensor = Tensor({{1.0, 2.0, 3.0, 4.0}}, {requires_grad = true}) -- shape {1, 4}
local output = model(input_tensor)
print(output)
output:sum():backward()
print(input_tensor.grad)
