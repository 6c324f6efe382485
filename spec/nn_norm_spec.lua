-- The norm family (BatchNorm1d/2d, LayerNorm, GroupNorm, InstanceNorm2d and their
-- nn.functional functions) against PyTorch (spec/fixtures/nn_norm.lua, written by
-- tools/fixtures/norm.py): outputs, gradients of input / weight / bias, running statistics
-- after 3 training steps, eval mode. float32 tolerances: relative 1e-5, absolute 2e-5 (values
-- are O(1); gradients summed over up to 100 elements). Then gradcheck in float64 for every
-- function, printing, state dicts and errors.
local lucid = require "lucid"
local nn = require "lucid.nn"
local F = nn.functional
local H = require "nn_helpers"

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local FX = dofile(here .. "fixtures/nn_norm.lua")

local REL, ABS = 1e-5, 2e-5
local T = lucid.Tensor

local function load_affine(m, c)
  if c.weight then
    local missing = m:load_state_dict({weight = T(c.weight), bias = T(c.bias)}, {strict = false})
    assert.is_true(#missing >= 0)
  end
  return m
end

-- steps training forwards, backward through the last one, then eval: everything vs PyTorch
local function check_training(m, c)
  load_affine(m, c)
  m:train()
  local x, y
  for i = 1, #c.inputs do
    x = T(c.inputs[i], {requires_grad = true})
    y = m(x)
    H.assert_close(y, c.outputs[i], REL, ABS)
  end
  y:backward(T(c.grad_output))
  H.assert_close(x.grad, c.input_grad, REL, ABS)
  if c.weight then
    H.assert_close(m.weight.grad, c.weight_grad, REL, ABS)
    H.assert_close(m.bias.grad, c.bias_grad, REL, ABS)
  end
  if c.running_mean then
    H.assert_close(m.running_mean, c.running_mean, REL, 1e-6)
    H.assert_close(m.running_var, c.running_var, REL, 1e-6)
    assert.equal(c.num_batches_tracked, m.num_batches_tracked:item())
  end
  m:eval()
  H.assert_close(m(T(c.eval_input)), c.eval_output, REL, ABS)
end

describe("norm modules against PyTorch", function()
  it("BatchNorm2d: 3 training steps, gradients, running stats, eval", function()
    check_training(nn.BatchNorm2d(3), FX.bn2d)
  end)
  it("BatchNorm1d on {N, C}", function()
    check_training(nn.BatchNorm1d(5), FX.bn1d)
  end)
  it("BatchNorm1d on {N, C, L} with momentum 0.3", function()
    check_training(nn.BatchNorm1d(3, {momentum = 0.3}), FX.bn1d_3d)
  end)
  it("BatchNorm1d with momentum = false: cumulative moving average (PyTorch's None)", function()
    check_training(nn.BatchNorm1d(4, {momentum = false}), FX.bn1d_cumulative)
  end)
  it("BatchNorm2d without affine, eps 1e-3", function()
    check_training(nn.BatchNorm2d{num_features = 2, affine = false, eps = 1e-3}, FX.bn2d_no_affine)
  end)
  it("InstanceNorm2d with affine and running stats", function()
    check_training(nn.InstanceNorm2d(3, {affine = true, track_running_stats = true}),
      FX.instance2d_tracked)
  end)
  it("InstanceNorm2d with PyTorch's defaults", function()
    check_training(nn.InstanceNorm2d(3), FX.instance2d)
  end)

  local function check_affine(m, c)
    load_affine(m, c)
    local x = T(c.input, {requires_grad = true})
    local y = m(x)
    H.assert_close(y, c.output, REL, ABS)
    y:backward(T(c.grad_output))
    H.assert_close(x.grad, c.input_grad, REL, ABS)
    if c.weight then
      H.assert_close(m.weight.grad, c.weight_grad, REL, ABS)
      H.assert_close(m.bias.grad, c.bias_grad, REL, ABS)
    end
  end
  it("LayerNorm over the last two dims", function() check_affine(nn.LayerNorm({3, 4}), FX.layer_norm) end)
  it("LayerNorm without affine", function()
    check_affine(nn.LayerNorm(6, {elementwise_affine = false}), FX.layer_norm_1)
  end)
  it("GroupNorm on {N, C, H, W}", function() check_affine(nn.GroupNorm(3, 6), FX.group_norm) end)
  it("GroupNorm on {N, C}", function() check_affine(nn.GroupNorm(2, 4), FX.group_norm_2d) end)

  it("F.batch_norm with the fused ReLU equals relu(batch_norm(...))", function()
    local c = FX.bn_relu
    local x = T(c.input, {requires_grad = true})
    local w, b = T(c.weight, {requires_grad = true}), T(c.bias, {requires_grad = true})
    local y = F.batch_norm(x, nil, nil, {weight = w, bias = b, training = true, relu = true})
    H.assert_close(y, c.output, REL, ABS)
    y:backward(T(c.grad_output))
    H.assert_close(x.grad, c.input_grad, REL, ABS)
    H.assert_close(w.grad, c.weight_grad, REL, ABS)
    H.assert_close(b.grad, c.bias_grad, REL, ABS)
  end)
end)

describe("norm gradients (gradcheck, float64)", function()
  local gc = lucid.autograd.gradcheck
  local function r(...) return lucid.randn({...}, {dtype = "float64"}) end

  it("batch_norm: training, eval with running stats, fused ReLU, {N, C} and {N, C, H, W}", function()
    for _, shape in ipairs{{5, 3}, {3, 3, 2, 2}} do
      local x, w, b = lucid.randn(shape, {dtype = "float64"}), r(3):abs() + 0.5, r(3)
      local rm, rv = r(3), r(3):abs() + 0.5
      assert.is_true(gc(function(x_, w_, b_)
        return F.batch_norm(x_, nil, nil, {weight = w_, bias = b_, training = true})
      end, {x, w, b}))
      assert.is_true(gc(function(x_, w_, b_)
        return F.batch_norm(x_, rm, rv, {weight = w_, bias = b_})
      end, {x, w, b}))
      assert.is_true(gc(function(x_, w_, b_)
        return F.batch_norm(x_, nil, nil, w_, b_, true, 0.1, 1e-5, true)
      end, {x, w, b}))
    end
  end)

  it("layer_norm, group_norm, instance_norm", function()
    local x = r(2, 4, 3, 2)
    assert.is_true(gc(function(x_, w_, b_) return F.layer_norm(x_, {3, 2}, {weight = w_, bias = b_}) end,
      {x, r(3, 2), r(3, 2)}))
    assert.is_true(gc(function(x_) return F.layer_norm(x_, 2) end, {x}))
    assert.is_true(gc(function(x_, w_, b_) return F.group_norm(x_, 2, w_, b_) end, {x, r(4), r(4)}))
    assert.is_true(gc(function(x_, w_, b_)
      return F.instance_norm(x_, {weight = w_, bias = b_})
    end, {x, r(4), r(4)}))
  end)
end)

describe("norm modules", function()
  it("print like PyTorch (Lua booleans, tables for shapes)", function()
    assert.equal("BatchNorm2d(16, eps=1e-05, momentum=0.1, affine=true, track_running_stats=true)",
      tostring(nn.BatchNorm2d{num_features = 16}))
    assert.equal(FX.bn2d.repr:gsub("True", "true"), tostring(nn.BatchNorm2d(3)))
    assert.equal("BatchNorm1d(4, eps=0.001, momentum=false, affine=false, track_running_stats=false)",
      tostring(nn.BatchNorm1d(4, 1e-3, false, false, false)))
    assert.equal("LayerNorm((4,), eps=1e-05, elementwise_affine=true)", tostring(nn.LayerNorm(4)))
    assert.equal("GroupNorm(2, 4, eps=1e-05, affine=true)", tostring(nn.GroupNorm(2, 4)))
    assert.equal("InstanceNorm2d(3, eps=1e-05, momentum=0.1, affine=false, track_running_stats=false)",
      tostring(nn.InstanceNorm2d(3)))
  end)

  it("BatchNorm2d: parameters, buffers and state dict as PyTorch's", function()
    local bn = nn.BatchNorm2d(4)
    local names = {}
    for _, kv in ipairs(bn:state_dict()) do names[#names + 1] = kv[1] end
    assert.same({"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}, names)
    assert.same({1, 1, 1, 1}, bn.weight:tolist())
    assert.same({0, 0, 0, 0}, bn.bias:tolist())
    assert.same({1, 1, 1, 1}, bn.running_var:tolist())
    assert.equal("int64", bn.num_batches_tracked.dtype)
    assert.same({}, bn.num_batches_tracked.shape)
    assert.equal(8, bn:num_parameters())
    assert.equal(4, bn.num_features)
    assert.is_true(bn.affine and bn.track_running_stats)
    assert.is_nil(nn.BatchNorm1d(2, {momentum = false}).momentum)
    local plain = nn.BatchNorm2d(4, {affine = false, track_running_stats = false})
    assert.equal(0, #plain:state_dict())
    -- without running stats, eval mode still normalises with the batch statistics
    plain:eval()
    local y = plain(lucid.randn(3, 4, 2, 2) * 5 + 3)
    assert.is_true(math.abs(y:mean():item()) < 1e-4)
  end)

  it("eval mode does not touch the running stats; train mode counts batches", function()
    local bn = nn.BatchNorm1d(3)
    bn(lucid.randn(4, 3))
    bn(lucid.randn(4, 3))
    assert.equal(2, bn.num_batches_tracked:item())
    bn:eval()
    local before = bn.running_mean:tolist()
    bn(lucid.randn(4, 3))
    assert.same(before, bn.running_mean:tolist())
    assert.equal(2, bn.num_batches_tracked:item())
  end)

  it("works inside a Sequential and trains", function()
    local model = nn.Sequential{
      {"fc", nn.Linear(4, 6)}, {"bn", nn.BatchNorm1d(6)}, {"ln", nn.LayerNorm(6)}, {"out", nn.Linear(6, 1)},
    }
    local x = lucid.randn(8, 4)
    model(x):sum():backward()
    assert.is_not_nil(model.bn.weight.grad)
    assert.is_not_nil(model.ln.bias.grad)
    assert.is_not_nil(model.fc.weight.grad)
  end)

  it("float32 values far from their mean (|mean| / std = 1e5): as precise as float64 allows", function()
    -- the elementwise passes centre x on its mean; x * scale + shift cancelled (2e-3 errors)
    for _, case in ipairs{
      {"BatchNorm2d", function() return nn.BatchNorm2d(3) end, {4, 3, 8, 8}},
      {"BatchNorm1d {N, C, L}", function() return nn.BatchNorm1d(3) end, {4, 3, 50}},
      {"GroupNorm", function() return nn.GroupNorm(2, 4) end, {3, 4, 6, 6}},
      {"InstanceNorm2d", function() return nn.InstanceNorm2d(3, {affine = true}) end, {2, 3, 8, 8}},
      {"LayerNorm", function() return nn.LayerNorm(64) end, {6, 64}},
    } do
      lucid.manual_seed(5)
      local m32 = case[2]()
      local m64 = case[2]():to("float64")
      local x0 = lucid.randn(case[3]) * 0.01 + 1000
      local x32 = x0:clone():requires_grad_()
      local x64 = x0:to("float64"):requires_grad_()
      local y32, y64 = m32(x32), m64(x64)
      local g = lucid.randn(y32.shape)
      y32:backward(g)
      y64:backward(g:to("float64"))
      local function rel(a, b)
        return (a:to("float64") - b):abs():max():item() / b:abs():max():item()
      end
      assert.is_true(rel(y32, y64) < 1e-6, case[1] .. " output " .. rel(y32, y64))
      assert.is_true(rel(x32.grad, x64.grad) < 1e-6, case[1] .. " input grad " .. rel(x32.grad, x64.grad))
      assert.is_true(rel(m32.weight.grad, m64.weight.grad) < 1e-6, case[1] .. " weight grad")
    end
  end)

  it("InstanceNorm2d takes an unbatched {C, H, W} input", function()
    local y = nn.InstanceNorm2d(2)(lucid.randn(2, 3, 3))
    assert.same({2, 3, 3}, y.shape)
  end)
end)

describe("norm errors", function()
  it("wrong channel count or rank names the module and the shapes", function()
    local model = nn.Sequential{{"bn1", nn.BatchNorm2d(16)}}
    assert.equal("lucid.Sequential.bn1 (BatchNorm2d): expected input with 16 channels, got 8: input shape {2, 8, 4, 4}",
      H.err(model, lucid.randn(2, 8, 4, 4)))
    assert.matches("BatchNorm2d: expected a 4%-D {N, C, H, W} input, got 3%-D: input shape {2, 16, 4}",
      H.err(nn.BatchNorm2d(16), lucid.randn(2, 16, 4)))
    assert.matches("BatchNorm1d: expected a 2%-D {N, C} or 3%-D {N, C, L} input",
      H.err(nn.BatchNorm1d(3), lucid.randn(2, 3, 4, 4)))
    assert.matches("LayerNorm: expected input with trailing dims {4} %(normalized_shape%): input shape {2, 5}",
      H.err(nn.LayerNorm(4), lucid.randn(2, 5)))
    assert.matches("GroupNorm: expected input with 4 channels, got 6",
      H.err(nn.GroupNorm(2, 4), lucid.randn(2, 6)))
    -- the runtime keeps working
    assert.same({2, 16, 4, 4}, model(lucid.randn(2, 16, 4, 4)).shape)
  end)

  it("a batch of one value per channel is an error in training, fine in eval", function()
    local bn = nn.BatchNorm1d(16)
    assert.matches("BatchNorm1d: expected more than 1 value per channel when training, got 1: input shape {1, 16}",
      H.err(bn, lucid.randn(1, 16)))
    assert.equal(0, bn.num_batches_tracked:item())
    bn:eval()
    assert.same({1, 16}, bn(lucid.randn(1, 16)).shape)
    assert.matches("more than 1 value per channel",
      H.err(F.batch_norm, lucid.randn(1, 3), nil, nil, {training = true}))
    assert.matches("InstanceNorm2d: expected more than 1 spatial element",
      H.err(nn.InstanceNorm2d(3), lucid.randn(2, 3, 1, 1)))
  end)

  it("a failing training forward leaves num_batches_tracked and the running stats alone", function()
    for _, momentum in ipairs{0.1, false} do
      local bn = nn.BatchNorm1d(3, {momentum = momentum})
      local fused = nn.Sequential(nn.BatchNorm1d(3, {momentum = momentum}), nn.ReLU())
      local x64 = lucid.randn({4, 3}, {dtype = "float64"})
      assert.matches("expected weight of dtype float64", H.err(bn, x64))
      assert.matches("expected weight of dtype float64", H.err(fused, x64))
      assert.matches("expected a float32 or float64 input, got int64",
        H.err(bn, lucid.ones({4, 3}, {dtype = "int64"})))
      for _, m in ipairs{bn, fused[1]} do
        assert.equal(0, m.num_batches_tracked:item())
        assert.same({0, 0, 0}, m.running_mean:tolist())
        -- the next good batch is the first one counted (momentum false: the cumulative
        -- average of one batch is that batch's mean)
        local x = lucid.randn(4, 3)
        if m == bn then m(x) else fused(x) end
        assert.equal(1, m.num_batches_tracked:item())
        if not momentum then H.assert_close(m.running_mean, x:mean(1):tolist(), 1e-6, 1e-6) end
      end
    end
  end)

  it("constructor options are checked", function()
    assert.matches("nn.BatchNorm2d: unknown option 'momentun'", H.err(nn.BatchNorm2d, 4, {momentun = 0.2}))
    assert.equal("lucid.nn.BatchNorm2d: momentum must be a number or false, got string",
      H.err(nn.BatchNorm2d, 4, {momentum = "x"}))
    assert.equal("lucid.nn.InstanceNorm2d: momentum must be a number, got boolean",
      H.err(nn.InstanceNorm2d, 4, {momentum = false}))
    assert.equal("lucid.nn.GroupNorm: num_channels (6) must be divisible by num_groups (4)",
      H.err(nn.GroupNorm, 4, 6))
    assert.matches("nn.LayerNorm: missing argument normalized_shape", H.err(nn.LayerNorm))
    assert.matches("nn.Upsample: expected exactly one of size and scale_factor",
      H.err(nn.Upsample, {mode = "nearest"}))
    assert.matches("align_corners.*bilinear", H.err(nn.Upsample, {scale_factor = 2, align_corners = true}))
  end)

  it("the classes convert types; the values' rules are the C constructors' (one owner)", function()
    -- types: the Lua classes (lucid.args' int_arg / num_arg / bool_arg)
    assert.equal("lucid.nn.BatchNorm1d: num_features must be an integer, got number 2.5",
      H.err(nn.BatchNorm1d, 2.5))
    assert.equal("lucid.nn.BatchNorm2d: eps must be a number, got string", H.err(nn.BatchNorm2d, 4, {eps = "x"}))
    assert.equal("lucid.nn.BatchNorm2d: affine must be a boolean, got number 1",
      H.err(nn.BatchNorm2d, 4, {affine = 1}))
    assert.equal("lucid.nn.LayerNorm: normalized_shape[2] must be an integer, got number 2.5",
      H.err(nn.LayerNorm, {3, 2.5}))
    assert.equal("lucid.nn.GroupNorm: eps must be a number, got boolean", H.err(nn.GroupNorm, 2, 4, true))
    -- rules: src/nn/norm.c (layer norm's sizes: src/ops/norm.c, shared with F.layer_norm)
    assert.equal("lucid.nn.BatchNorm2d: num_features must be >= 1, got 0", H.err(nn.BatchNorm2d, 0))
    assert.equal("lucid.nn.InstanceNorm2d: num_features must be >= 1, got -3", H.err(nn.InstanceNorm2d, -3))
    assert.equal("lucid.nn.BatchNorm2d: eps must be >= 0, got -1", H.err(nn.BatchNorm2d, 4, {eps = -1}))
    assert.equal("lucid.nn.BatchNorm2d: momentum must be in [0, 1] (or negative for a cumulative " ..
      "average), got 2", H.err(nn.BatchNorm2d, 4, {momentum = 2}))
    assert.equal("lucid.nn.InstanceNorm2d: momentum must be in [0, 1], got -0.5",
      H.err(nn.InstanceNorm2d, 4, {momentum = -0.5}))
    assert.equal("lucid.nn.LayerNorm: normalized_shape[1] must be >= 1, got 0", H.err(nn.LayerNorm, 0))
    assert.equal("lucid.nn.LayerNorm: normalized_shape[2] must be >= 1, got 0", H.err(nn.LayerNorm, {3, 0}))
    assert.equal("lucid.nn.LayerNorm: normalized_shape must have 1..16 dims, got 0",
      H.err(nn.LayerNorm, {normalized_shape = {}}))
    local many = {}
    for i = 1, 17 do many[i] = 1 end
    assert.equal("lucid.nn.LayerNorm: normalized_shape must have 1..16 dims, got 17", H.err(nn.LayerNorm, many))
    assert.equal("lucid.nn.LayerNorm: eps must be >= 0, got -1", H.err(nn.LayerNorm, 4, -1))
    assert.equal("lucid.nn.GroupNorm: num_groups and num_channels must be >= 1, got 0 and 6",
      H.err(nn.GroupNorm, 0, 6))
    assert.equal("lucid.nn.GroupNorm: num_groups and num_channels must be >= 1, got 2 and 0",
      H.err(nn.GroupNorm, 2, 0))
  end)

  it("functions convert; eps and normalized_shape's rules are the ops'", function()
    local x = lucid.randn(4, 3)
    assert.equal("lucid.batch_norm: eps must be >= 0, got -1",
      H.err(F.batch_norm, x, nil, nil, {training = true, eps = -1}))
    assert.equal("lucid.layer_norm: eps must be >= 0, got -1", H.err(F.layer_norm, x, 3, {eps = -1}))
    assert.equal("lucid.group_norm: eps must be >= 0, got -1", H.err(F.group_norm, x, 3, {eps = -1}))
    assert.equal("lucid.instance_norm: eps must be >= 0, got -1",
      H.err(F.instance_norm, lucid.randn(2, 3, 4), {eps = -1}))
    assert.equal("lucid.layer_norm: normalized_shape[1] must be >= 1, got 0", H.err(F.layer_norm, x, 0))
    assert.equal("lucid.layer_norm: normalized_shape[2] must be >= 1, got -1", H.err(F.layer_norm, x, {3, -1}))
    assert.equal("lucid.layer_norm: normalized_shape must have 1..16 dims, got 0", H.err(F.layer_norm, x, {}))
    -- interpolate's size (the same converter): its rule is lc_interpolate's / lc_nn_upsample's
    assert.equal("lucid.interpolate: output sizes must be >= 1, got 0",
      H.err(F.interpolate, lucid.randn(1, 1, 4), {size = 0}))
    assert.equal("lucid.nn.Upsample: sizes must be >= 1, got 0", H.err(nn.Upsample, {size = {0}}))
    assert.equal("lucid.nn.Upsample: expected exactly one of size and scale_factor (1 or 2 entries)",
      H.err(nn.Upsample, {size = {2, 3, 4}}))
  end)

  it("functions check their arguments", function()
    local x = lucid.randn(4, 3)
    assert.matches("lucid.batch_norm: running_mean and running_var are required when not training",
      H.err(F.batch_norm, x, nil, nil))
    assert.matches("batch_norm: expected weight of shape {3}, got {2}",
      H.err(F.batch_norm, x, nil, nil, {weight = lucid.ones(2), training = true}))
    assert.matches("batch_norm: unknown option 'train'", H.err(F.batch_norm, x, nil, nil, {train = true}))
    assert.matches("layer_norm: expected an input whose last 1 dims are {4}, got input shape {4, 3}",
      H.err(F.layer_norm, x, 4))
    assert.matches("group_norm: expected the number of channels %(3%) to be divisible by num_groups %(2%)",
      H.err(F.group_norm, x, 2))
    assert.matches("interpolate: expected exactly one of size and scale_factor, got neither",
      H.err(F.interpolate, lucid.randn(1, 1, 4)))
    assert.matches("interpolate: mode bilinear expects a 4%-D {N, C, H, W} input, got input shape {1, 1, 4}",
      H.err(F.interpolate, lucid.randn(1, 1, 4), {size = 8, mode = "bilinear"}))
    assert.matches("argument 4 %(mode%): expected \"nearest\" or \"bilinear\", got \"cubic\"",
      H.err(F.interpolate, lucid.randn(1, 1, 4), {size = 8, mode = "cubic"}))
    assert.matches("BatchNorm1d: expected weight of dtype float64 %(the input's%), got float32",
      H.err(nn.BatchNorm1d(3), lucid.randn({4, 3}, {dtype = "float64"})))
    -- and still works
    assert.same({1, 1, 8}, F.interpolate(lucid.randn(1, 1, 4), {scale_factor = 2}).shape)
  end)
end)
