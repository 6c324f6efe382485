-- Autograd through in-place writes into views (docs/autograd.md, "In-place operations"):
-- x[i] = y, narrow(...):copy_(y), masked_fill_ and arithmetic on views while recording, with
-- PyTorch's CopySlices semantics, checked by gradcheck / gradgradcheck and closed forms.
local h = require "helpers"
local lucid = h.lucid
local raises, same = h.raises, h.same
local gradcheck, gradgradcheck = lucid.autograd.gradcheck, lucid.autograd.gradgradcheck

local function leaf(...) return lucid.randn(...):double():requires_grad_() end

describe("in-place writes into views under autograd", function()
  it("x[i] = y into a plain tensor gives x a history reaching y", function()
    local y = lucid.Tensor({1, 2, 3}, {requires_grad = true})
    local x = lucid.zeros(2, 3)
    x[2] = y * 2
    assert.are.equal("CopySlices", x.grad_fn)
    same(x, {{0, 0, 0}, {2, 4, 6}})
    ;(x * x):sum():backward()
    same(y.grad, {8, 16, 24}) -- d/dy sum((2y)^2)
  end)

  it("an overwritten region gets no gradient, the rest keeps its own", function()
    local a = lucid.Tensor({{1, 2}, {3, 4}}, {requires_grad = true})
    local b = a * 1
    b:narrow(2, 1, 1):copy_(lucid.Tensor({{10}, {20}}))
    same(b, {{10, 2}, {20, 4}})
    b:sum():backward()
    same(a.grad, {{0, 1}, {0, 1}})
  end)

  it("masked_fill_ and mul_ on a view, and views of views", function()
    local a = lucid.Tensor({{1, 2}, {3, 4}}, {requires_grad = true})
    local c = a * 1
    c[1]:masked_fill_(lucid.Tensor({true, false}), 5)
    c[{{}, 2}]:mul_(3) -- a column: a strided view
    same(c, {{5, 6}, {3, 12}})
    c:sum():backward()
    same(a.grad, {{0, 3}, {1, 3}})
    a.grad = nil
    local d = a * 1
    d:narrow(1, 2, 1):narrow(2, 2, 1):mul_(10) -- a view of a view: the root is written
    d:sum():backward()
    same(a.grad, {{1, 1}, {1, 10}})
  end)

  it("the view itself differentiates through the write", function()
    local a = lucid.Tensor({1, 2, 3}, {requires_grad = true})
    local y = lucid.Tensor(7, {requires_grad = true})
    local t = a * 2
    local v = t:narrow(1, 2, 2)
    v[1] = y * 3
    same(v, {21, 6})
    ;(v * v):sum():backward()
    assert.are.equal(2 * 21 * 3, y.grad:item())
    same(a.grad, {0, 0, 2 * 6 * 2})
  end)

  it("gradcheck and gradgradcheck through CopySlices", function()
    local f = function(a, y)
      local t = a * 1
      t[2] = y * y
      t:narrow(2, 2, 2):mul_(a:narrow(2, 1, 2))
      return t:tanh()
    end
    assert.is_true(gradcheck(f, {leaf(3, 3), leaf(3)}))
    assert.is_true(gradgradcheck(f, {leaf(3, 3), leaf(3)}))
  end)

  it("the version counter still refuses a backward that needs an overwritten value", function()
    local a = lucid.Tensor({1, 2, 3}, {requires_grad = true})
    local t = a * 1
    local s = t:narrow(1, 1, 2):exp() -- ExpBackward saves its output, not t
    local p = t * t                   -- MulBackward saves t
    t[1] = 0
    raises({"modified by an in-place operation"}, function() p:sum():backward() end)
    s:sum():backward() -- exp's saved output is a separate tensor: still fine
    assert.is_true(a.grad ~= nil)
  end)

  it("a view of a leaf that requires grad is refused; grad mode off writes plainly", function()
    local a = lucid.ones(3, {requires_grad = true})
    raises({"copy_: a view of a leaf tensor that requires grad"}, function() a[{{1, 2}}]:copy_(lucid.zeros(2)) end)
    lucid.no_grad(function() a[{{1, 2}}]:copy_(lucid.zeros(2)) end)
    same(a, {0, 0, 1})
  end)

  it("a view made a leaf that requires grad, written into its own base (no reference cycle)", function()
    -- v is a leaf view of r; r's new history refers to v. The leak check of check-asan guards
    -- the cycle r -> history -> v -> r this once made (found by the Lua API fuzzer).
    local r = lucid.Tensor({1, 2, 3, 4})
    local v = r:narrow(1, 1, 2):requires_grad_()
    r:narrow(1, 3, 2):add_(v)
    same(r, {1, 2, 4, 6})
    ;(r * lucid.Tensor({1, 10, 100, 1000})):sum():backward()
    same(v.grad, {100, 1000})
  end)
end)
