-- Losses against PyTorch (spec/fixtures/nn_loss.lua, written by tools/fixtures/loss.py):
-- forward values, input gradients and target gradients for every loss, reduction, weight,
-- ignore_index, label smoothing, probability targets, pos_weight and extreme logits, through
-- nn.functional and through the module classes; gradcheck in float64; error messages.
-- Tolerances (float32 data): relative 1e-5 plus absolute 1e-6 (absolute 1e-4 next to logits
-- of size 1e4, where float32 spacing is 1e-3).
local lucid = require "lucid"
local nn = require "lucid.nn"
local H = require "nn_helpers"
local helpers = require "helpers"
local F = nn.functional

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local CASES = dofile(here .. "fixtures/nn_loss.lua")

local tensor_opts = {weight = true, pos_weight = true}

local function build(c, dtype)
  dtype = dtype or "float32"
  local x = lucid.Tensor(c.input, {dtype = dtype, requires_grad = true})
  local tdt = c.target_dtype == "float32" and dtype or c.target_dtype
  local y = lucid.Tensor(c.target, {dtype = tdt, requires_grad = c.target_grad ~= nil})
  local opts = {}
  for k, v in pairs(c.opts) do
    opts[k] = tensor_opts[k] and lucid.Tensor(v, {dtype = dtype}) or v
  end
  return x, y, opts
end

local function tols(c)
  if c.name:find("extreme") then return 1e-5, 1e-4 end
  return 1e-5, 1e-6
end

local function check_case(c, out, x, y)
  local rel, abs = tols(c)
  assert.same(c.output_shape, out.shape)
  H.assert_close(out, c.output, rel, abs)
  if #c.output_shape > 0 then
    out:backward(lucid.Tensor(c.grad_output))
  else
    out:backward()
  end
  H.assert_close(x.grad, c.input_grad, rel, abs)
  if c.target_grad then H.assert_close(y.grad, c.target_grad, rel, abs) end
end

local classes = {
  mse_loss = "MSELoss", l1_loss = "L1Loss", huber_loss = "HuberLoss",
  smooth_l1_loss = "SmoothL1Loss", binary_cross_entropy = "BCELoss",
  binary_cross_entropy_with_logits = "BCEWithLogitsLoss", kl_div = "KLDivLoss",
  cross_entropy = "CrossEntropyLoss", nll_loss = "NLLLoss",
}

describe("losses against PyTorch", function()
  for _, c in ipairs(CASES) do
    it("F." .. c.fn .. " " .. c.name, function()
      local x, y, opts = build(c)
      check_case(c, F[c.fn](x, y, opts), x, y)
    end)
    it("nn." .. classes[c.fn] .. " " .. c.name, function()
      local x, y, opts = build(c)
      local loss = nn[classes[c.fn]](opts)
      check_case(c, loss(x, y), x, y)
    end)
  end
end)

describe("loss gradients (gradcheck, float64)", function()
  local seen = {}
  for _, c in ipairs(CASES) do
    -- one gradcheck per fixture case except the clamped / extreme ones, whose derivatives are
    -- not smooth at the points tested
    if not c.name:find("extreme") and not c.name:find("clamp") then
      it(c.fn .. " " .. c.name, function()
        local x, y, opts = build(c, "float64")
        x = x:detach()
        if c.target_grad then
          local yd = y:detach()
          if c.fn == "kl_div" and not opts.log_target then yd = yd:clamp(1e-3) end
          assert.is_true(lucid.autograd.gradcheck(function(a, b) return F[c.fn](a, b, opts) end,
            {x, yd}))
        else
          assert.is_true(lucid.autograd.gradcheck(function(a) return F[c.fn](a, y, opts) end, {x}))
        end
      end)
      seen[c.fn] = true
    end
  end
  it("covers every loss", function()
    for fn in pairs(classes) do assert.is_true(seen[fn], fn) end
  end)
end)

describe("loss modules", function()
  it("print like PyTorch", function()
    assert.equal("CrossEntropyLoss()", tostring(nn.CrossEntropyLoss()))
    assert.equal("MSELoss()", tostring(nn.MSELoss()))
    assert.equal("KLDivLoss()", tostring(nn.KLDivLoss{reduction = "batchmean"}))
    assert.equal("BCEWithLogitsLoss()", tostring(nn.BCEWithLogitsLoss{pos_weight = lucid.ones(3)}))
  end)

  it("take options positionally and by name, and keep them as fields", function()
    local w = lucid.Tensor({1, 2, 3})
    local a = nn.CrossEntropyLoss(w, 2, "sum", 0.1)
    local b = nn.CrossEntropyLoss{weight = w, ignore_index = 2, reduction = "sum", label_smoothing = 0.1}
    assert.equal("sum", a.reduction)
    assert.equal(2, b.ignore_index)
    assert.equal(0.1, b.label_smoothing)
    local x = lucid.randn(4, 3)
    local t = lucid.Tensor({1, 2, 3, 1}, {dtype = "int64"})
    assert.equal(a(x, t):item(), b(x, t):item())
    assert.equal(a(x, t):item(), F.cross_entropy(x, t, w, 2, "sum", 0.1):item())
    -- the options can be changed after construction
    b.reduction = "none"
    assert.same({4}, b(x, t).shape)
    assert.equal(1.0, nn.HuberLoss().delta)
    assert.equal(0.5, nn.SmoothL1Loss{beta = 0.5}.beta)
  end)

  it("keep weight and pos_weight as buffers", function()
    local l = nn.BCEWithLogitsLoss{weight = lucid.ones(2), pos_weight = lucid.Tensor({1, 3})}
    local sd = l:state_dict()
    assert.equal(2, #sd)
    assert.equal("weight", sd[1][1])
    assert.equal("pos_weight", sd[2][1])
    assert.equal(0, #nn.CrossEntropyLoss():state_dict())
  end)

  it("are nn.Modules, usable inside Lua modules and training loops", function()
    local Net = nn.Module:extend("Net")
    function Net:init() self.fc = nn.Linear(3, 4); self.crit = nn.CrossEntropyLoss() end
    function Net:forward(x, t) return self.crit(self.fc(x), t) end
    local net = Net()
    local x = lucid.randn(5, 3)
    local t = lucid.Tensor({1, 2, 3, 4, 1}, {dtype = "int64"})
    local l0 = net(x, t):item()
    for _ = 1, 30 do
      net:zero_grad()
      local l = net(x, t)
      l:backward()
      lucid.no_grad(function()
        for _, p in ipairs(net:parameters()) do p:sub_(p.grad * 0.5) end
      end)
    end
    assert.is_true(net(x, t):item() < l0)
  end)

  it("reject bad options at construction", function()
    -- the functional forms' readers and C's rules, naming the constructor's own arguments
    local H = require "nn_helpers"
    assert.equal("lucid.nn.CrossEntropyLoss: argument 3 (reduction): unknown reduction 'avg' " ..
      "(expected mean, sum or none)", H.err(nn.CrossEntropyLoss, {reduction = "avg"}))
    helpers.raises({"nn.MSELoss", "unknown option 'size_average'"}, nn.MSELoss, {size_average = true})
    assert.equal("lucid.nn.NLLLoss: argument 1 (weight): expected a tensor, got table",
      H.err(nn.NLLLoss, {weight = {1, 2}}))
    assert.equal("lucid.nn.NLLLoss: argument 2 (ignore_index): expected an integer, got 1.5",
      H.err(nn.NLLLoss, nil, 1.5))
    assert.equal("lucid.nn.CrossEntropyLoss: label_smoothing must be in [0, 1], got 2",
      H.err(nn.CrossEntropyLoss, {label_smoothing = 2}))
    assert.equal("lucid.nn.HuberLoss: delta must be a positive number, got 0",
      H.err(nn.HuberLoss, {delta = 0}))
    assert.equal("lucid.nn.BCEWithLogitsLoss: argument 3 (pos_weight): expected a tensor, got number",
      H.err(nn.BCEWithLogitsLoss, {pos_weight = 2}))
    assert.equal("lucid.nn.MSELoss: argument 1 (reduction): unknown reduction 'batchmean' " ..
      "(expected mean, sum or none)", H.err(nn.MSELoss, "batchmean"))
    -- the same rules as the functional forms
    assert.equal("lucid.nn.functional.cross_entropy: label_smoothing must be in [0, 1], got 2",
      H.err(F.cross_entropy, lucid.zeros(2, 3), lucid.Tensor({1, 2}, {dtype = "int64"}),
        {label_smoothing = 2}))
    -- defaults filled in, given values kept
    assert.equal("batchmean", nn.KLDivLoss("batchmean").reduction)
    local ce = nn.CrossEntropyLoss()
    assert.equal("mean", ce.reduction)
    assert.equal(0, ce.label_smoothing)
    assert.is_nil(ce.ignore_index)
    assert.equal(3, nn.NLLLoss(nil, 3.0).ignore_index)
    assert.equal(1.0, nn.HuberLoss().delta)
    assert.is_false(nn.KLDivLoss().log_target)
  end)
end)

describe("loss errors", function()
  local x = lucid.randn(3, 4)
  local function long(v) return lucid.Tensor(v, {dtype = "int64"}) end

  it("name a class target out of range (1-based), and its position", function()
    helpers.raises({"lucid.nn.functional.cross_entropy: target[2] = 5 is out of range for 4 " ..
      "classes (expected 1..4)"},
      F.cross_entropy, x, long({1, 5, 2}))
    helpers.raises({"target[3] = 0 is invalid: class indices are 1-based (expected 1..4)"},
      F.nll_loss, x, long({1, 2, 0}))
    helpers.raises({"target[1, 2] = 9"}, F.cross_entropy, lucid.randn(2, 4, 3),
      long({{1, 9, 1}, {1, 1, 1}}))
    helpers.raises({"expected 1..4, or ignore_index"}, F.cross_entropy, x, long({1, 7, 2}),
      {ignore_index = 3})
    -- a target equal to ignore_index may lie outside 1..C (PyTorch's -100 habit)
    local l = F.cross_entropy(x, long({1, -100, 2}), {ignore_index = -100, reduction = "none"})
    assert.equal(0, l:tolist()[2])
  end)

  it("give both shapes on a mismatch", function()
    helpers.raises({"mse_loss", "{4, 3}", "{3, 4}"}, F.mse_loss, x, lucid.randn(4, 3))
    helpers.raises({"cross_entropy: expected target of shape {3} for input of shape {3, 4}, got {2}"},
      F.cross_entropy, x, long({1, 2}))
    helpers.raises({"cross_entropy", "{3, 4}", "{4}", "int64 or int32"}, F.cross_entropy, x,
      lucid.Tensor({1, 2, 3, 4}))
    helpers.raises({"weight", "{4}", "{3}"}, F.cross_entropy, x, long({1, 2, 3}),
      {weight = lucid.ones(3)})
    helpers.raises({"pos_weight", "{3}", "{3, 4}"}, F.binary_cross_entropy_with_logits, x,
      lucid.rand(3, 4), {pos_weight = lucid.ones(3)})
  end)

  it("check reductions, options and types", function()
    helpers.raises({"argument 3 (reduction)", "unknown reduction 'avg'"}, F.mse_loss, x, x,
      {reduction = "avg"})
    helpers.raises({"unknown reduction 'batchmean'"}, F.l1_loss, x, x, "batchmean")
    helpers.raises({"unknown option 'reduce'"}, F.cross_entropy, x, long({1, 2, 3}), {reduce = true})
    helpers.raises({"label_smoothing", "[0, 1]"}, F.cross_entropy, x, long({1, 2, 3}),
      {label_smoothing = -0.5})
    helpers.raises({"between 0 and 1"}, F.binary_cross_entropy, x, lucid.rand(3, 4))
    helpers.raises({"cross_entropy: target must be class indices (int64 or int32) or class " ..
      "probabilities (float), got bool"}, F.cross_entropy, x, lucid.full({3}, true))
    helpers.raises({"ignore_index is not supported"}, F.cross_entropy, x, lucid.rand(3, 4),
      {ignore_index = 1})
    helpers.raises({"cross_entropy: input must have a class dim ({C}, {N, C} or {N, C, d1, ...}), got a 0-dim tensor"},
      F.cross_entropy, lucid.Tensor(1.0), long(1))
    helpers.raises({"expected a float32 or float64 input"}, F.mse_loss, long({1, 2}), long({1, 2}))
  end)

  it("refuse a gradient for weight instead of silently dropping it", function()
    local w = lucid.ones(4, {requires_grad = true})
    local l = F.binary_cross_entropy_with_logits(lucid.randn(3, 4, {requires_grad = true}),
      lucid.rand(3, 4), {weight = w})
    helpers.raises({"derivative for 'weight' is not implemented"}, function() l:backward() end)
  end)

  it("works on a {C} input with a 0-dim target, float64, and without grad", function()
    local v = lucid.randn(5, {dtype = "float64"})
    local l = F.cross_entropy(v, long(2))
    local want = v:logsumexp(1):item() - v[2]:item()
    assert.is_true(math.abs(l:item() - want) < 1e-12)
    assert.equal("float64", l.dtype)
    lucid.no_grad(function()
      assert.is_false(F.cross_entropy(lucid.randn(2, 3, {requires_grad = true}), long({1, 3})).requires_grad)
    end)
  end)
end)

describe("losses of empty inputs", function()
  it("mean is nan (0 / 0) as in PyTorch, also with no classes and probability targets", function()
    local function isnan(t) local v = t:item(); return v ~= v end
    local empty_n = lucid.zeros(0, 3)
    assert.is_true(isnan(F.cross_entropy(empty_n, lucid.zeros({0}, {dtype = "int64"}))))
    assert.is_true(isnan(F.cross_entropy(empty_n, lucid.zeros(0, 3))))
    -- {2, 0}: two samples over no classes (PyTorch: nan, as the input has no elements)
    local x = lucid.zeros(2, 0, {requires_grad = true})
    local l = F.cross_entropy(x, lucid.zeros(2, 0))
    assert.is_true(isnan(l))
    l:backward()
    assert.same({2, 0}, x.grad.shape)
    assert.equal(0, F.cross_entropy(x, lucid.zeros(2, 0), {reduction = "sum"}):item())
    assert.same({2}, F.cross_entropy(x, lucid.zeros(2, 0), {reduction = "none"}).shape)
  end)
end)
