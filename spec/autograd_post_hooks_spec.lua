-- Leaf hooks firing as soon as the leaf is complete, t:register_post_accumulate_grad_hook and
-- lucid.autograd.queue_callback (docs/autograd.md, "Hooks during the pass"): what a
-- DistributedDataParallel overlapping all_reduce with the rest of backward needs.
local h = require "helpers"
local lucid = h.lucid
local raises, same = h.raises, h.same
local autograd = lucid.autograd

-- loss = sum(((a * 2) * b) * c): backward reaches c first, a last
local function chain()
  local a = lucid.Tensor({1, 1}, {requires_grad = true})
  local b = lucid.Tensor({2, 2}, {requires_grad = true})
  local c = lucid.Tensor({3, 3}, {requires_grad = true})
  return a, b, c, (a * 2 * b * c):sum()
end

describe("t:register_post_accumulate_grad_hook", function()
  it("runs as each leaf completes: a leaf used early in the forward after the ones used late", function()
    local a, b, c, loss = chain()
    local order, seen = {}, {}
    for name, t in pairs({a = a, b = b, c = c}) do
      t:register_post_accumulate_grad_hook(function(p)
        order[#order + 1] = name
        seen[name] = {grad = p.grad:clone(), a = a.grad ~= nil, b = b.grad ~= nil}
      end)
    end
    loss:backward({retain_graph = true})
    assert.are.same({"c", "b", "a"}, order)
    assert.is_false(seen.c.a or seen.c.b) -- before the pass ends: a and b are still to come
    assert.is_true(seen.b.b and not seen.b.a)
    same(seen.a.grad, {12, 12}) -- the hook is given the tensor, with its .grad accumulated
    same(seen.c.grad, {4, 4})
    loss:backward() -- a second backward: .grad includes the first one's
    same(seen.a.grad, {24, 24})
  end)

  it("a leaf used by two nodes completes once, with the sum over both", function()
    local x = lucid.Tensor({2, 2}, {requires_grad = true})
    local w = lucid.Tensor({5, 5}, {requires_grad = true})
    local calls, seen, x_done_at_w = 0, nil, nil
    x:register_hook(function(g) seen = g:clone() end)
    x:register_post_accumulate_grad_hook(function() calls = calls + 1 end)
    w:register_post_accumulate_grad_hook(function() x_done_at_w = x.grad ~= nil end)
    ;(x * 3 * w * x):sum():backward()
    assert.are.equal(1, calls)
    same(seen, {60, 60}) -- d(3x^2 w)/dx = 6xw
    same(x.grad, {60, 60})
    assert.is_false(x_done_at_w)
  end)

  it("gradient hooks run before it; not under autograd.grad; removable; backward of the leaf", function()
    local x = lucid.Tensor({1, 2}, {requires_grad = true})
    local order = {}
    local hd = x:register_post_accumulate_grad_hook(function(p)
      order[#order + 1] = "post"
      same(p.grad, {20, 20})
    end)
    x:register_hook(function(g) order[#order + 1] = "pre"; return g * 10 end)
    ;(x * 2):sum():backward()
    assert.are.same({"pre", "post"}, order)
    order = {}
    same(autograd.grad((x * 2):sum(), x)[1], {20, 20})
    assert.are.same({"pre"}, order)
    hd:remove()
    hd:remove()
    order = {}
    ;(x * 2):sum():backward()
    assert.are.same({"pre"}, order)

    local y = lucid.Tensor({1, 2}, {requires_grad = true})
    local got
    y:register_post_accumulate_grad_hook(function(p) got = p.grad:clone() end)
    y:backward(lucid.Tensor({7, 8}))
    same(got, {7, 8})
  end)

  it("errors stop the backward; bad arguments are clear errors", function()
    local x = lucid.Tensor({1, 2}, {requires_grad = true})
    local hd = x:register_post_accumulate_grad_hook(function() error("boom") end)
    raises({"lucid.backward", "error in a post-accumulate-grad hook", "boom"},
      function() (x * 1):sum():backward() end)
    hd:remove()
    hd = x:register_post_accumulate_grad_hook(function() return 1 end)
    raises({"lucid.backward", "post-accumulate-grad hook must return nothing, got number"},
      function() (x * 1):sum():backward() end)
    hd:remove()
    x.grad = nil
    ;(x * 3):sum():backward()
    same(x.grad, {3, 3})
    raises({"lucid.register_post_accumulate_grad_hook", "doesn't require gradient"},
      function() lucid.ones(2):register_post_accumulate_grad_hook(print) end)
    raises({"lucid.register_post_accumulate_grad_hook", "non-leaf"},
      function() (x * 2):register_post_accumulate_grad_hook(print) end)
    raises({"lucid.register_post_accumulate_grad_hook: argument 2 (hook): expected a function, got number"},
      function() x:register_post_accumulate_grad_hook(5) end)
  end)
end)

describe("lucid.autograd.queue_callback", function()
  it("runs once at the end of the backward, after the last leaf's hooks, in queue order", function()
    local a, b, c, loss = chain()
    local order, queued, complete = {}, false, nil
    c:register_post_accumulate_grad_hook(function()
      order[#order + 1] = "c"
      if queued then return end
      queued = true
      autograd.queue_callback(function()
        order[#order + 1] = "cb1"
        complete = a.grad ~= nil and b.grad ~= nil and c.grad ~= nil
        autograd.queue_callback(function() order[#order + 1] = "nested" end)
      end)
      autograd.queue_callback(function() order[#order + 1] = "cb2" end)
    end)
    a:register_post_accumulate_grad_hook(function() order[#order + 1] = "a" end)
    loss:backward({retain_graph = true})
    assert.are.same({"c", "a", "cb1", "cb2", "nested"}, order)
    assert.is_true(complete)
    order = {}
    loss:backward() -- nothing left over from the first backward
    assert.are.same({"c", "a"}, order)
  end)

  it("works from a gradient hook, a Function's backward and under autograd.grad", function()
    local x = lucid.Tensor({1, 2}, {requires_grad = true})
    local n = 0
    x:register_hook(function() autograd.queue_callback(function() n = n + 1 end) end)
    autograd.grad((x * 2):sum(), x)
    assert.are.equal(1, n)
    local Id = autograd.Function{
      forward = function(_, t) return t:clone() end,
      backward = function(_, g) autograd.queue_callback(function() n = n + 10 end); return g end,
    }
    Id.apply(x):sum():backward()
    assert.are.equal(12, n) -- x's hook queued one more
  end)

  it("a failing callback stops the rest and the backward raises; outside a backward it is an error", function()
    local x = lucid.Tensor({1, 2}, {requires_grad = true})
    local ran = false
    local hd = x:register_hook(function()
      autograd.queue_callback(function() error("late boom") end)
      autograd.queue_callback(function() ran = true end)
    end)
    raises({"lucid.backward", "error in a queued callback", "late boom"},
      function() (x * 1):sum():backward() end)
    assert.is_false(ran)
    same(x.grad, {1, 1}) -- the pass itself completed
    hd:remove()
    -- a pass that fails runs none of its callbacks
    hd = x:register_hook(function()
      autograd.queue_callback(function() ran = true end)
      error("hook boom")
    end)
    raises({"error in a gradient hook", "hook boom"}, function() (x * 1):sum():backward() end)
    assert.is_false(ran)
    hd:remove()
    raises({"lucid.autograd.queue_callback", "no backward is running"},
      function() autograd.queue_callback(function() end) end)
    raises({"lucid.autograd.queue_callback: argument 1 (callback): expected a function, got number"},
      function() autograd.queue_callback(5) end)
    raises({"lucid.autograd.queue_callback"}, function() autograd.queue_callback() end)
    collectgarbage()
  end)
end)

describe("lucid.autograd.set_grad_buffer", function()
  it("makes Linear write its weight and bias gradients into the buffer, which becomes .grad", function()
    lucid.manual_seed(3)
    local m = lucid.nn.Linear(5, 3)
    local x = lucid.randn(4, 5)
    m(x):sum():backward()
    local gw, gb = m.weight.grad:clone(), m.bias.grad:clone()
    m:zero_grad()
    local flat = lucid.full({18}, 0 / 0) -- NaN: every element must be written
    local vw, vb = flat:narrow(1, 1, 15):view(3, 5), flat:narrow(1, 16, 3)
    autograd.set_grad_buffer(m.weight, vw)
    autograd.set_grad_buffer(m.bias, vb)
    m(x):sum():backward()
    assert.is_true(lucid.equal(vw, gw) and lucid.equal(vb, gb))
    -- .grad is the buffer: an in-place change of one shows in the other
    m.weight.grad:mul_(2)
    assert.is_true(lucid.equal(vw, gw * 2))
    m(x):sum():backward() -- accumulates into it
    assert.is_true(lucid.allclose(vw, gw * 3) and lucid.allclose(vb, gb * 2))
    m:zero_grad() -- set_to_none: the next gradient is written afresh
    m(x):sum():backward()
    assert.is_true(lucid.equal(vw, gw))
    autograd.set_grad_buffer(m.weight, nil)
    m:zero_grad()
    m(x):sum():backward()
    m.weight.grad:zero_()
    assert.is_true(lucid.equal(vw, gw)) -- no longer the buffer
  end)

  it("refuses buffers that do not fit, naming the argument", function()
    local w = lucid.zeros({3, 5}, {requires_grad = true})
    raises({"autograd.set_grad_buffer", "the buffer has shape {5, 3}, the tensor {3, 5}"},
      autograd.set_grad_buffer, w, lucid.zeros(5, 3))
    raises({"autograd.set_grad_buffer", "the buffer is float64, the tensor float32"},
      autograd.set_grad_buffer, w, lucid.zeros({3, 5}, {dtype = "float64"}))
    raises({"autograd.set_grad_buffer", "must be contiguous"}, autograd.set_grad_buffer, w, lucid.zeros(5, 3):t())
    raises({"autograd.set_grad_buffer", "does not require grad"}, autograd.set_grad_buffer, lucid.zeros(3, 5), lucid.zeros(3, 5))
    raises({"autograd.set_grad_buffer", "argument 2 (buffer)"}, autograd.set_grad_buffer, w, 5)
  end)
end)
