-- [] indexing and assignment (docs/tensor.md "Indexing with []").
local h = require "helpers"
local lucid = h.lucid
local raises, same = h.raises, h.same

local function m34() return lucid.arange(12):reshape(3, 4) end

describe("t[...] reading", function()
  it("a number selects along dim 1 (negative from the end)", function()
    local m = m34()
    same(m[1], {0, 1, 2, 3})
    same(m[-1], {8, 9, 10, 11})
    local s = lucid.Tensor({5, 6})[2]
    assert.are.equal(0, s.ndim)
    assert.are.equal(6, s:item())
  end)

  it("a table gives one entry per dim; missing trailing dims are whole", function()
    local m = m34()
    same(m[{2, 3}], 6)
    same(m[{2}], {4, 5, 6, 7})
    same(m[{}], {{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9, 10, 11}})
  end)

  it("ranges are inclusive, with optional step; {} and ':' are whole dims", function()
    local m = m34()
    same(m[{{2, 3}}], {{4, 5, 6, 7}, {8, 9, 10, 11}})
    same(m[{{}, 2}], {1, 5, 9})
    same(m[{":", 2}], {1, 5, 9})
    same(m[{{1, -1, 2}, {2, 3}}], {{1, 2}, {9, 10}})
    same(m[{{-2, -1}, -1}], {7, 11})
    same(m[{{2}, {4}}], {{7}}) -- {i} keeps the dim
    assert.are.same({0, 4}, m[{{3, 2}}].shape) -- empty range
  end)

  it("results are views sharing storage", function()
    local m = m34()
    local v = m[{{}, {2, 3}}]
    v:fill_(-1)
    same(m, {{0, -1, -1, 3}, {4, -1, -1, 7}, {8, -1, -1, 11}})
    local row = m[2]
    row:zero_()
    same(m[2], {0, 0, 0, 0})
  end)

  it("a bool mask selects; an integer tensor picks rows (1-based)", function()
    local m = m34()
    same(m[m:ge(9)], {9, 10, 11})
    same(m[lucid.Tensor({3, 1}, {dtype = "int64"})], {{8, 9, 10, 11}, {0, 1, 2, 3}})
  end)

  it("attributes and methods are not confused with indices", function()
    local m = m34()
    assert.are.same({3, 4}, m.shape)
    assert.is_nil(m.no_such_field)
    assert.is_function(m.sum)
  end)

  it("rejects bad indices", function()
    local m = m34()
    raises({"lucid.Tensor.__index: argument 2 (index): index 4 out of range for dim 1 of size 3 (expected 1..3 or -3..-1)"},
      function() return m[4] end)
    raises({"index 0 is invalid: indices are 1-based"}, function() return m[0] end)
    raises({"index 5 out of range for dim 2 of size 4"}, function() return m[{1, 5}] end)
    raises({"too many indices: the tensor has 2 dims, got 3"}, function() return m[{1, 1, 1}] end)
    raises({"range end 5 out of range for dim 1 of size 3"}, function() return m[{{1, 5}}] end)
    raises({"step must be >= 1, got 0"}, function() return m[{{1, 3, 0}}] end)
    raises({"range end 1 is before start 3"}, function() return m[{{3, 1}}] end)
    raises({"entry [1] is boolean"}, function() return m[{true}] end)
    raises({"expected a number, a table of indices/ranges or a tensor, got boolean"}, function() return m[true] end)
    raises({"cannot index a 0-dim tensor"}, function() return lucid.Tensor(1)[1] end)
    raises({"index[2] = 4 out of range for dim 1 of size 3"},
      function() return m[lucid.Tensor({1, 4}, {dtype = "int64"})] end)
    raises({"is not an integer"}, function() return m[{1.5}] end)
  end)
end)

describe("t[...] = v assignment", function()
  it("fills with a number or copies a broadcast tensor", function()
    local m = lucid.zeros(3, 4)
    m[1] = 1
    m[{2, 3}] = 5
    m[{{}, 4}] = 9
    m[{3, {1, 2}}] = lucid.Tensor({7, 8})
    same(m, {{1, 1, 1, 9}, {0, 0, 5, 9}, {7, 8, 0, 9}})
    m[{{1, 2}, {1, 2}}] = lucid.Tensor({-1, -2}) -- broadcast over rows
    same(m[{{1, 2}, {1, 2}}], {{-1, -2}, {-1, -2}})
    m[m:eq(9)] = 0
    same(m[{{}, 4}], {0, 0, 0})
    m[m:lt(0)] = lucid.Tensor(3)
    same(m[1], {3, 3, 1, 0})
  end)

  it("sets requires_grad and grad", function()
    local t = lucid.zeros(2)
    t.requires_grad = true
    assert.is_true(t.requires_grad)
    t.grad = lucid.ones(2)
    same(t.grad, {1, 1})
    t.grad = nil
    assert.is_nil(t.grad)
  end)

  it("rejects bad assignments", function()
    local m = lucid.zeros(2, 2)
    raises({"lucid.Tensor.__newindex: argument 3 (value): expected a number or a tensor, got string"},
      function() m[1] = "x" end)
    raises({"lucid.Tensor.__newindex", "cannot set field 'foo'"}, function() m.foo = 1 end)
    raises({"argument 3 (requires_grad): expected a boolean"}, function() m.requires_grad = 1 end)
    raises({"lucid.Tensor.__newindex"}, function() m[1] = lucid.ones(3) end)
    raises({"index 3 out of range for dim 1 of size 2"}, function() m[3] = 1 end)
    raises({"assignment through an index tensor is not supported"},
      function() m[lucid.Tensor({1}, {dtype = "int64"})] = 1 end)
    raises({"lucid.Tensor.__newindex", "grad"}, function() m.grad = lucid.ones(3) end)
  end)
end)
