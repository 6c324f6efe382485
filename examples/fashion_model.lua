-- fashion_model.lua - the CNN of examples/fashion_mnist.lua, in a file of its own so that other
-- programs (examples/embed/classify.c, a host application) build the very same model and load
-- the checkpoints that example writes.
--   local build = dofile("examples/fashion_model.lua"); local model = build()
-- Input {N, 1, 28, 28} (images in [0, 1]), output {N, 10} logits. Layer types are the seed's.
local nn = require("lucid").nn

return function()
  return nn.Sequential{
    {"conv1", nn.Conv2d{in_channels = 1, out_channels = 32, kernel_size = 3, padding = 1}},
    {"batch_norm1", nn.BatchNorm2d{num_features = 32}},
    {"relu1", nn.ReLU()},
    {"pool1", nn.MaxPool2d{kernel_size = 2, stride = 2}},        -- 32 x 14 x 14
    {"conv2", nn.Conv2d{in_channels = 32, out_channels = 64, kernel_size = 3, padding = 1}},
    {"batch_norm2", nn.BatchNorm2d{num_features = 64}},
    {"relu2", nn.ReLU()},
    {"pool2", nn.MaxPool2d{kernel_size = 2, stride = 2}},        -- 64 x 7 x 7
    {"flatten", nn.Flatten()},
    {"fc1", nn.Linear{in_features = 64 * 7 * 7, out_features = 128}},
    {"relu3", nn.ReLU()},
    {"fc2", nn.Linear{in_features = 128, out_features = 10}},
  }
end
