-- The seed's third example: a CNN (the seed writes Conv2D; Conv2d is the same class).
-- run: build/bin/lucid examples/seed_3_cnn.lua
local lucid = require "lucid"
local nn = lucid.nn

lucid.manual_seed(0)
local model = nn.Sequential{
  {"conv1", nn.Conv2D{in_channels = 3, out_channels = 16, kernel_size = 3, padding = 1}},
  {"batch_norm1", nn.BatchNorm2d{num_features = 16}},
  {"relu1", nn.ReLU()},
  {"pool1", nn.MaxPool2d{kernel_size = 2, stride = 2}},
  {"conv2", nn.Conv2D{in_channels = 16, out_channels = 32, kernel_size = 3, padding = 1}},
  {"batch_norm2", nn.BatchNorm2d{num_features = 32}},
  {"relu2", nn.ReLU()},
  {"pool2", nn.MaxPool2d{kernel_size = 2, stride = 2}},
  {"flatten", nn.Flatten()},
  {"fc1", nn.Linear{in_features = 32 * 8 * 8, out_features = 128}},
  {"relu3", nn.ReLU()},
  {"fc2", nn.Linear{in_features = 128, out_features = 10}},
}
print(model)
local input_tensor = lucid.arange(1, 3 * 32 * 32 + 1):reshape(1, 3, 32, 32):requires_grad_()
local output = model(input_tensor)
print("output:", output)
output:sum():backward()
print("input_tensor.grad shape:", table.concat(input_tensor.grad.shape, "x"))
print("conv1.weight.grad shape:", table.concat(model.conv1.weight.grad.shape, "x"))
