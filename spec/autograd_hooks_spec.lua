-- Gradient hooks (docs/autograd.md, "Hooks"): t:register_hook(fn) on leaves and non-leaves,
-- replacing gradients, order, removal, errors, and hooks under autograd.grad and create_graph.
local h = require "helpers"
local lucid = h.lucid
local raises, same = h.raises, h.same
local grad = lucid.autograd.grad

describe("t:register_hook", function()
  it("sees a leaf's total gradient once, before it lands in .grad, and may replace it", function()
    local x = lucid.Tensor({1, 2}, {requires_grad = true})
    local calls, seen = 0, nil
    x:register_hook(function(g) calls = calls + 1; seen = g:clone(); return g * 10 end)
    ;(x * x):sum():backward() -- x reaches MulBackward through both edges: summed first
    assert.are.equal(1, calls)
    same(seen, {2, 4})
    same(x.grad, {20, 40})
  end)

  it("on a non-leaf, changes the gradient that flows on into its history", function()
    local x = lucid.Tensor({1, 2, 3}, {requires_grad = true})
    local y = x * 2
    local seen
    y:register_hook(function(g) seen = g:clone(); return g * 0 + 1 end)
    ;(y * y):sum():backward()
    same(seen, {4, 8, 12})
    same(x.grad, {2, 2, 2}) -- d(2x)/dx times the replaced gradient 1
  end)

  it("returning nil keeps the gradient; hooks run in registration order", function()
    local x = lucid.Tensor({1, 1}, {requires_grad = true})
    local order = {}
    x:register_hook(function(g) order[#order + 1] = "a"; return g + 1 end)
    x:register_hook(function(g) order[#order + 1] = "b"; same(g, {3, 3}); return nil end)
    ;(x * 2):sum():backward()
    same(x.grad, {3, 3})
    assert.are.same({"a", "b"}, order)
  end)

  it("a handle removes its hook (twice is harmless); dropping the handle keeps the hook", function()
    local x = lucid.Tensor({1}, {requires_grad = true})
    local n = 0
    local hd = x:register_hook(function() n = n + 1 end)
    x:register_hook(function() n = n + 10 end) -- handle dropped at once
    collectgarbage()
    ;(x * 1):sum():backward()
    assert.are.equal(11, n)
    hd:remove()
    hd:remove()
    ;(x * 1):sum():backward()
    assert.are.equal(21, n)
    assert.has_error(function() hd.x = 1 end)
  end)

  it("runs under lucid.autograd.grad and under create_graph", function()
    local x = lucid.Tensor({1, 2}, {dtype = "float64", requires_grad = true})
    x:register_hook(function(g) return g * 2 end)
    same(grad((x * x):sum(), x)[1], {4, 8})
    local g = grad((x * x * x):sum(), x, {create_graph = true})[1] -- 2 * 3x^2, with history
    same(g, {6, 24})
    same(grad(g:sum(), x)[1], {2 * 2 * 6 * 1, 2 * 2 * 6 * 2}) -- d(6x^2)/dx = 12x, doubled again
  end)

  it("errors name the hook and leave the runtime usable", function()
    local x = lucid.Tensor({1, 2}, {requires_grad = true})
    local hd = x:register_hook(function() error("boom") end)
    raises({"lucid.backward", "error in a gradient hook", "boom"}, function() (x * 1):sum():backward() end)
    hd:remove()
    hd = x:register_hook(function() return lucid.ones(3) end)
    raises({"lucid.backward", "hook returned a gradient of shape {3}, expected {2}"},
      function() (x * 1):sum():backward() end)
    hd:remove()
    hd = x:register_hook(function() return 5 end)
    raises({"must return a tensor or nil, got number"}, function() (x * 1):sum():backward() end)
    hd:remove()
    x.grad = nil
    ;(x * 3):sum():backward()
    same(x.grad, {3, 3})
    raises({"lucid.register_hook", "doesn't require gradient"}, function() lucid.ones(2):register_hook(print) end)
    raises({"lucid.register_hook: argument 2 (hook): expected a function, got number"}, function() x:register_hook(5) end)
  end)
end)
