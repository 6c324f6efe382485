-- Dropout (docs/nn/dropout.md): F.dropout and nn.Dropout. The masks come from lucid's own
-- generator, so values are checked by their statistics, not against PyTorch fixtures;
-- gradients numerically with lucid.autograd.gradcheck in float64.
local lucid = require "lucid"
local nn = require "lucid.nn"
local F = nn.functional
local H = require "nn_helpers"
local helpers = require "helpers"
local gradcheck = lucid.autograd.gradcheck

describe("dropout", function()
  it("keeps the mean, zeroes about p of the elements and scales the rest by 1/(1-p)", function()
    lucid.manual_seed(7)
    local x = lucid.ones(200000)
    for _, p in ipairs{0.2, 0.5, 0.9} do
      local y = F.dropout(x, p)
      local kept = y:ne(0):sum():item() / 200000
      local sd = math.sqrt(p * (1 - p) / 200000)
      assert.is_true(math.abs(kept - (1 - p)) < 5 * sd, "kept fraction " .. kept)
      assert.is_true(math.abs(y:mean():item() - 1) < 5 * sd / (1 - p), "mean")
      assert.is_true(math.abs(y:max():item() - 1 / (1 - p)) < 1e-5)
    end
  end)

  it("nn.Dropout follows the training flag; eval is the identity", function()
    local d = nn.Dropout(0.5)
    assert.is_true(d.training)
    local x = lucid.randn(50)
    local y = d(x)
    assert.is_true(y:eq(0):sum():item() > 5)
    d:eval()
    assert.is_true(d(x):equal(x))
    assert.is_nil(d(x).grad_fn)
    assert.is_true(F.dropout(x, 0.5, false):equal(x))
    assert.is_true(F.dropout(x, {p = 0.5, training = false}):equal(x))
    d:train()
    assert.is_false(d(x):equal(x))
  end)

  it("is reproducible under lucid.manual_seed", function()
    local x = lucid.randn(64, 33)
    local d = nn.Dropout(0.3)
    lucid.manual_seed(123)
    local a, a2 = d(x), F.dropout(x, 0.3)
    lucid.manual_seed(123)
    local b, b2 = d(x), F.dropout(x, 0.3)
    assert.is_true(a:equal(b))
    assert.is_true(a2:equal(b2))
    assert.is_false(a:equal(a2))
  end)

  it("p = 0 is the identity, p = 1 gives zeros; the gradient is the mask times 1/(1-p)", function()
    local x = lucid.randn(10, 10, {requires_grad = true})
    assert.is_true(F.dropout(x, 0):equal(x))
    assert.is_true(F.dropout(x, 1):equal(lucid.zeros(10, 10)))
    local y = F.dropout(x, 0.25)
    assert.equal("DropoutBackward", y.grad_fn)
    y:sum():backward()
    local want = y:ne(0):float() / 0.75
    H.assert_close(x.grad, want:tolist())
  end)

  it("takes an empty trailing options table and everything by name", function()
    local x = lucid.randn(2, 3)
    H.assert_close(F.dropout(x, 0.5, false, {}), x:tolist())
    H.assert_close(F.dropout{input = x, training = false}, x:tolist())
  end)

  it("gradcheck in float64 (one mask for every evaluation)", function()
    lucid.manual_seed(2)
    assert.is_true(gradcheck(function(x)
      lucid.manual_seed(9) -- the same mask for every evaluation
      return F.dropout(x, 0.4)
    end, {lucid.randn({4, 6}, {dtype = "float64"})}))
  end)

  it("prints like PyTorch and exposes p and inplace", function()
    local cases = {
      {nn.Dropout(), "Dropout(p=0.5, inplace=false)"},
      {nn.Dropout(0.1), "Dropout(p=0.1, inplace=false)"},
    }
    for _, c in ipairs(cases) do assert.equal(c[2], tostring(c[1])) end
    assert.equal(0.3, nn.Dropout(0.3).p)
    assert.is_false(nn.Dropout(0.3).inplace)
  end)
end)

describe("dropout errors", function()
  local x = lucid.randn(2, 3)

  it("dropout: p outside [0, 1]", function()
    helpers.raises({"lucid.nn.functional.dropout", "between 0 and 1", "got 1.5"},
      F.dropout, x, 1.5)
    helpers.raises({"lucid.nn.functional.dropout", "-0.1"}, F.dropout, x, -0.1)
    helpers.raises({"nn.Dropout", "between 0 and 1", "got 2"}, nn.Dropout, 2)
    helpers.raises({"lucid.nn.functional.dropout", "argument 3 (training)", "boolean"},
      F.dropout, x, 0.5, "yes")
  end)

  it("nn.Dropout converts p (lucid.args' num_arg); its rule is lc_nn_dropout's", function()
    assert.equal("lucid.nn.Dropout: p must be a number, got string", H.err(nn.Dropout, "0.5"))
    assert.equal("lucid.nn.Dropout: inplace must be a boolean, got number 1", H.err(nn.Dropout, 0.5, 1))
    assert.equal("lucid.nn.Dropout: dropout probability has to be between 0 and 1, but got -0.5",
      H.err(nn.Dropout, -0.5))
    assert.equal("lucid.nn.Dropout: dropout probability has to be between 0 and 1, but got 1.5",
      H.err(nn.Dropout, {p = 1.5}))
  end)
end)
