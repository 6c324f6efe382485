-- Autograd from Lua (docs/autograd.md): leaves, backward, modes, errors, and gradcheck over
-- every differentiable op.
local h = require "helpers"
local lucid = h.lucid
local raises, same = h.raises, h.same
local gradcheck = lucid.autograd.gradcheck

local function leaf(...) return lucid.randn(...):double():requires_grad_() end
local function pos(...) return (lucid.rand(...) + 0.5):double():requires_grad_() end

describe("leaves and graph attributes", function()
  it("requires_grad, is_leaf, grad_fn", function()
    local x = lucid.ones(2)
    assert.is_false(x.requires_grad)
    assert.are.equal(x, x:requires_grad_())
    assert.is_true(x.requires_grad and x.is_leaf)
    assert.is_nil(x.grad_fn)
    local y = x * 2 + 1
    assert.is_true(y.requires_grad)
    assert.is_false(y.is_leaf)
    assert.are.equal("AddBackward", y.grad_fn)
    assert.are.equal("SumBackward", y:sum().grad_fn)
    x:requires_grad_(false)
    assert.is_false(x.requires_grad)
    raises({"lucid.requires_grad_", "only floating point"}, function() lucid.ones(2, {dtype = "int64"}):requires_grad_() end)
    raises({"lucid.Tensor.__newindex", "leaf"}, function() y.requires_grad = false end)
  end)
end)

describe("backward", function()
  it("uses an implicit seed for one-element outputs", function()
    local x = lucid.Tensor({1, 2, 3}, {requires_grad = true})
    local y = (x * x):sum()
    y:backward()
    same(x.grad, {2, 4, 6})
  end)

  it("takes an explicit gradient", function()
    local x = lucid.Tensor({1, 2, 3}, {requires_grad = true})
    local y = x * 3
    y:backward(lucid.Tensor({1, 0.5, 2}))
    same(x.grad, {3, 1.5, 6})
    lucid.backward((x * 1):sum()) -- also a function
    same(x.grad, {4, 2.5, 7})
  end)

  it("reports a missing seed, no graph, and a bad gradient", function()
    local x = lucid.ones(3, {requires_grad = true})
    -- the rules and their texts are lc_backward's (C), not re-checked by the binding
    raises({"lucid.backward: a gradient is needed for a tensor with 3 elements", "shape {3}"},
      function() (x * 2):backward() end)
    raises({"lucid.backward: the tensor does not require grad and has no grad_fn"},
      function() lucid.ones(1):backward() end)
    raises({"lucid.backward"}, function() (x * 2):backward(lucid.ones(4)) end)
    raises({"lucid.backward: argument 2 (gradient): expected a tensor, got number"},
      function() (x * 2):backward(1) end)
    raises({"lucid.backward: unknown option 'retain'"}, function() x:sum():backward{retain = true} end)
  end)

  it("accumulates into .grad until it is cleared", function()
    local x = lucid.ones(2, {requires_grad = true})
    for _ = 1, 3 do (x * 2):sum():backward() end
    same(x.grad, {6, 6})
    x.grad = nil
    (x * 2):sum():backward()
    same(x.grad, {2, 2})
    x.grad:zero_()
    same(x.grad, {0, 0})
  end)

  it("frees the graph unless retain_graph", function()
    local x = lucid.ones(2, {requires_grad = true})
    local y = (x:exp() * x):sum()
    y:backward{retain_graph = true}
    y:backward()
    same(x.grad, {4 * math.exp(1), 4 * math.exp(1)}, 1e-5)
    raises({"lucid.backward", "second time", "retain_graph"}, function() y:backward() end)
    local z = (x * x):sum()
    z:backward(nil, {retain_graph = true})
    z:backward(lucid.Tensor(1))
  end)

  it("does not propagate into detached tensors", function()
    local x = lucid.ones(2, {requires_grad = true})
    local d = x:detach()
    assert.is_false(d.requires_grad)
    assert.is_true(d.is_leaf)
    d[1] = 5 -- shares storage
    assert.are.equal(5, x[1]:item())
    local y = (x * d):sum()
    y:backward()
    same(x.grad, {5, 1})
  end)

  it("keeps .grad of non-leaves only with retain_grad", function()
    local x = lucid.ones(2, {requires_grad = true})
    local m = x * 3
    m:retain_grad()
    local k = x * 4
    (m * k):sum():backward()
    same(m.grad, {4, 4})
    assert.is_nil(k.grad)
    same(x.grad, {24, 24})
  end)
end)

describe("grad modes", function()
  it("no_grad disables recording and restores the mode, also after an error", function()
    local x = lucid.ones(2, {requires_grad = true})
    local y, extra = lucid.no_grad(function(a, b) return a * 2, b end, x, "extra")
    assert.is_false(y.requires_grad)
    assert.are.equal("extra", extra)
    assert.is_true(lucid.is_grad_enabled())
    local ok, err = pcall(lucid.no_grad, function()
      assert(not lucid.is_grad_enabled())
      error("boom")
    end)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("boom", 1, true))
    assert.is_true(lucid.is_grad_enabled())
    local ok2, e2 = pcall(lucid.no_grad, function() error({code = 7}) end)
    assert.is_false(ok2)
    assert.are.equal(7, e2.code) -- error objects pass through unchanged
  end)

  it("enable_grad inside no_grad, set_grad_enabled, and the <close> guard", function()
    local x = lucid.ones(2, {requires_grad = true})
    lucid.no_grad(function()
      local y = lucid.enable_grad(function() return x * 2 end)
      assert.is_true(y.requires_grad)
      assert.is_false(lucid.is_grad_enabled())
    end)
    assert.is_true(lucid.set_grad_enabled(false))
    assert.is_false((x * 2).requires_grad)
    assert.is_false(lucid.set_grad_enabled(true))
    do
      local guard <close> = lucid.no_grad()
      assert.is_false(lucid.is_grad_enabled())
    end
    assert.is_true(lucid.is_grad_enabled())
    raises({"lucid.no_grad: argument 1 (fn): expected a function, got number"}, lucid.no_grad, 3)
    raises({"lucid.set_grad_enabled: argument 1 (mode): expected a boolean"}, lucid.set_grad_enabled, 1)
  end)
end)

describe("in-place operations and autograd", function()
  it("errors when a saved tensor was modified", function()
    local x = lucid.ones(2, {requires_grad = true})
    local e = x:exp()
    local y = e:sum()
    e:mul_(2) -- exp saved its output
    raises({"lucid.backward", "modified by an in-place operation"}, function() y:backward() end)
  end)

  it("forbids in-place changes of leaves that require grad, except under no_grad", function()
    local x = lucid.ones(2, {requires_grad = true})
    raises({"lucid.add_", "leaf"}, function() x:add_(1) end)
    raises({"lucid.Tensor.__newindex", "requires grad"}, function() x[1] = 3 end)
    lucid.no_grad(function() x:add_(1) end)
    same(x, {2, 2})
  end)

  it("records in-place ops on non-leaves", function()
    local x = lucid.Tensor({1, 2}, {requires_grad = true})
    local y = x * 1
    y:mul_(3)
    y:sum():backward()
    same(x.grad, {3, 3})
  end)
end)

describe("lucid.autograd.grad", function()
  it("returns gradients without touching .grad", function()
    local x = lucid.Tensor({1, 2}, {requires_grad = true})
    local w = lucid.Tensor({3, 4}, {requires_grad = true})
    local y = (x * w):sum()
    local g = lucid.autograd.grad(y, {x, w})
    assert.are.equal(2, g.n)
    same(g[1], {3, 4})
    same(g[2], {1, 2})
    assert.is_nil(x.grad)
    local gx = lucid.autograd.grad(x * 2, x, {grad_outputs = lucid.Tensor({1, 10})})
    same(gx[1], {2, 20})
    local u = lucid.ones(1, {requires_grad = true})
    local gu = lucid.autograd.grad((x * 2):sum(), {x, u}, {allow_unused = true})
    same(gu[1], {2, 2})
    assert.is_nil(gu[2])
    -- the core's rules and messages, its 0-based positions shown 1-based (one mechanism:
    -- marked positions rendered by the binding)
    raises({"lucid.autograd.grad: input 2 is not reachable from the outputs"},
      lucid.autograd.grad, (x * 2):sum(), {x, u})
    raises({"lucid.autograd.grad: output 1: a gradient is needed for a tensor with 2 elements"},
      lucid.autograd.grad, x * 2, x)
    raises({"lucid.autograd.grad: output 2: a gradient is needed for a tensor with 2 elements"},
      lucid.autograd.grad, {y, x * 2}, x)
    raises({"lucid.autograd.grad: output 2 does not require grad"},
      lucid.autograd.grad, {y, lucid.ones(1)}, x)
    raises({"lucid.autograd.grad: argument 2 (inputs): entry [2] is number"}, lucid.autograd.grad, y, {x, 1})
  end)
end)

describe("gradcheck", function()
  it("reports a wrong gradient naming the input and element", function()
    -- x:detach() hides one factor from autograd: analytic x, numeric 2x
    local bad = function(a, b) return a * b:detach() * b end
    local err = raises({"lucid.autograd.gradcheck: gradient mismatch for input 2 at element [", "analytic", "numeric"},
      gradcheck, bad, {lucid.ones(2, 2), lucid.Tensor({{1, 2}, {3, 4}})})
    assert.truthy(err:find("element %[%d, %d%]"), err)
    raises({"lucid.autograd.gradcheck: unknown option 'tol'"}, gradcheck, bad, {lucid.ones(1)}, {tol = 1})
    raises({"lucid.autograd.gradcheck: argument 2 (inputs): entry [1] is a number"}, gradcheck, bad, {1})
  end)

  local unary = {
    "neg", "abs", "exp", "sin", "cos", "tanh", "sigmoid", "relu", "erf",
  }
  for _, name in ipairs(unary) do
    it("unary " .. name, function()
      assert.is_true(gradcheck(function(a) return a[name](a) end, {leaf(3, 4)}))
      -- non-contiguous input
      assert.is_true(gradcheck(function(a) return a:t()[name](a:t()) end, {leaf(3, 4)}))
    end)
  end
  for _, name in ipairs({"log", "log1p", "sqrt", "rsqrt"}) do
    it("unary " .. name, function()
      assert.is_true(gradcheck(function(a) return a[name](a) end, {pos(3, 4)}))
    end)
  end

  it("zero-gradient unary ops (sign, floor, ceil, round)", function()
    for _, name in ipairs({"sign", "floor", "ceil", "round"}) do
      local x = leaf(4)
      local g = lucid.autograd.grad(x[name](x):sum(), x, {allow_unused = true})
      if g[1] then same(g[1], {0, 0, 0, 0}) end
    end
  end)

  for _, name in ipairs({"add", "sub", "mul", "div", "maximum", "minimum"}) do
    it("binary " .. name .. " with broadcasting, scalars and expanded inputs", function()
      local f = function(a, b) return a[name](a, b) end
      assert.is_true(gradcheck(f, {leaf(3, 4), pos(3, 4)}))
      assert.is_true(gradcheck(f, {leaf(3, 4), pos(4)}))           -- broadcast
      assert.is_true(gradcheck(f, {leaf(3, 1), pos(1, 4)}))        -- both broadcast
      assert.is_true(gradcheck(function(a) return a[name](a, 1.5) end, {leaf(2, 3)}))
      assert.is_true(gradcheck(function(a) return lucid[name](1.5, a) end, {pos(2, 3)}))
      assert.is_true(gradcheck(function(a, b) return f(a:expand(3, 4), b) end, {leaf(1, 4), pos(3, 4)}))
    end)
  end

  it("pow (tensor and scalar exponents), operators", function()
    assert.is_true(gradcheck(function(a, b) return a:pow(b) end, {pos(2, 3), leaf(2, 3)}))
    assert.is_true(gradcheck(function(a) return a ^ 3 end, {leaf(2, 3)}))
    assert.is_true(gradcheck(function(a) return 2 ^ a end, {leaf(2, 3)}))
    assert.is_true(gradcheck(function(a, b) return -(a + b) * (a - b) / (b * b + 1) end, {leaf(2, 3), leaf(3)}))
  end)

  it("clamp, where, masked_fill, to", function()
    assert.is_true(gradcheck(function(a) return a:clamp(-0.5, 0.5) end, {leaf(3, 4)}))
    local c = lucid.rand(3, 4):gt(0.5)
    assert.is_true(gradcheck(function(a, b) return lucid.where(c, a, b) end, {leaf(3, 4), leaf(4)}))
    assert.is_true(gradcheck(function(a) return a:masked_fill(c, 2) end, {leaf(3, 4)}))
    assert.is_true(gradcheck(function(a) return a:float():double() end, {leaf(3)}, {eps = 1e-2, atol = 1e-3, rtol = 1e-2}))
  end)

  for _, name in ipairs({"sum", "mean", "prod", "amax", "amin", "logsumexp", "var", "std", "norm"}) do
    it("reduction " .. name .. " over each dim, with and without keepdim", function()
      local x = pos(2, 3, 4)
      local input = name == "norm" and leaf(2, 3, 4) or x
      if name ~= "logsumexp" then
        assert.is_true(gradcheck(function(a) return a[name](a) end, {input}))
      end
      for d = 1, 3 do
        for _, keep in ipairs({false, true}) do
          if name == "norm" then
            assert.is_true(gradcheck(function(a) return a:norm(2, d, keep) end, {input}))
          else
            assert.is_true(gradcheck(function(a) return a[name](a, d, keep) end, {input}))
          end
        end
      end
      if name == "sum" or name == "mean" then
        assert.is_true(gradcheck(function(a) return a[name](a, {1, 3}) end, {x}))
        assert.is_true(gradcheck(function(a) return a:t()[name](a:t(), 1) end, {leaf(3, 4)}))
      end
    end)
  end

  it("max/min with a dim (values)", function()
    assert.is_true(gradcheck(function(a) return (a:max(2)) end, {leaf(3, 4)}))
    assert.is_true(gradcheck(function(a) return (a:min(1, true)) end, {leaf(3, 4)}))
    assert.is_true(gradcheck(function(a) return a:max() end, {leaf(3, 4)}))
  end)

  it("linear algebra", function()
    assert.is_true(gradcheck(lucid.matmul, {leaf(2, 3), leaf(3, 4)}))
    assert.is_true(gradcheck(function(a, b) return a:t():matmul(b) end, {leaf(3, 2), leaf(3, 4)}))
    assert.is_true(gradcheck(lucid.matmul, {leaf(3), leaf(3, 2)}))
    assert.is_true(gradcheck(lucid.matmul, {leaf(2, 3), leaf(3)}))
    assert.is_true(gradcheck(lucid.matmul, {leaf(2, 2, 3), leaf(3, 2)})) -- batched, broadcast
    assert.is_true(gradcheck(lucid.mm, {leaf(2, 3), leaf(3, 2)}))
    assert.is_true(gradcheck(lucid.bmm, {leaf(2, 2, 3), leaf(2, 3, 2)}))
    assert.is_true(gradcheck(lucid.dot, {leaf(4), leaf(4)}))
    assert.is_true(gradcheck(lucid.outer, {leaf(3), leaf(2)}))
  end)

  it("views", function()
    local x = leaf(2, 3, 4)
    local views = {
      function(a) return a:view(6, 4) end,
      function(a) return a:reshape(4, -1) end,
      function(a) return a:permute(3, 1, 2) end,
      function(a) return a:transpose(1, 3) end,
      function(a) return a:narrow(3, 2, 2) end,
      function(a) return a:select(2, 3) end,
      function(a) return a[{2, {1, 3, 2}, -1}] end,
      function(a) return a[{{}, 2}] end,
      function(a) return a:unsqueeze(2):squeeze(2) end,
      function(a) return a:sum(1, true):expand(5, 3, 4) end,
      function(a) return a:flatten(2) end,
      function(a) return a:t():contiguous() end,
      function(a) return a:transpose(1, 2):reshape(3, 8) end, -- reshape of a non-contiguous view copies
    }
    for i, f in ipairs(views) do
      local inp = i == 12 and leaf(3, 4) or x
      assert.is_true(gradcheck(f, {inp}), "view " .. i)
    end
  end)

  it("joining and splitting", function()
    assert.is_true(gradcheck(function(a, b) return lucid.cat({a, b}, 2) end, {leaf(2, 3), leaf(2, 1)}))
    assert.is_true(gradcheck(function(a, b) return lucid.stack({a, b}, 1) end, {leaf(2, 3), leaf(2, 3)}))
    assert.is_true(gradcheck(function(a) local p = a:split(2, 2); return p[2] * 3 + p[1]:sum() end, {leaf(2, 4)}))
    assert.is_true(gradcheck(function(a) return a:chunk(3, 1)[3] end, {leaf(3, 2)}))
  end)

  it("index ops", function()
    local idx = lucid.Tensor({3, 1, 3}, {dtype = "int64"})
    assert.is_true(gradcheck(function(a) return a:index_select(2, idx) end, {leaf(2, 4)}))
    local gi = lucid.Tensor({{1, 2}, {2, 2}, {1, 1}}, {dtype = "int64"})
    assert.is_true(gradcheck(function(a) return a:gather(2, gi) end, {leaf(3, 4)}))
    local si = lucid.Tensor({{2, 1, 3, 3}}, {dtype = "int64"})
    assert.is_true(gradcheck(function(a, s) return a:scatter(1, si, s) end, {leaf(3, 4), leaf(1, 4)}))
    assert.is_true(gradcheck(function(a, s) return a:scatter_add(1, si, s) end, {leaf(3, 4), leaf(1, 4)}))
    local m = lucid.Tensor({{true, false}, {false, true}})
    assert.is_true(gradcheck(function(a) return a:masked_select(m) end, {leaf(2, 2)}))
    assert.is_true(gradcheck(function(a) return a[m] * 2 end, {leaf(2, 2)}))
  end)

  it("a 0-dim input and float32 inputs (converted to float64)", function()
    assert.is_true(gradcheck(function(a, b) return a * b end, {lucid.Tensor(2), lucid.randn(3)}))
  end)
end)

describe("autograd retain_grad errors", function()
  it("retain_grad on a tensor that does not require grad is an error", function()
    local ok, e = pcall(function() lucid.ones(2):retain_grad() end)
    assert.is_false(ok)
    assert.truthy(e:find("retain_grad: can't retain the gradient of a tensor that does not require grad", 1, true), e)
    local x = lucid.ones(2, {requires_grad = true})
    x:retain_grad() -- a leaf that requires grad: fine (a no-op)
    assert.is_true(x.requires_grad)
  end)
end)

describe("autograd in-place errors", function()
  it("assigning into a view of a leaf that requires grad names copy_ once", function()
    local a = lucid.ones(3, {requires_grad = true})
    local v = a[{{1, 2}}]
    local ok, e = pcall(function() v[1] = 5 end)
    assert.is_false(ok)
    assert.truthy(e:find("copy_: a view of a leaf tensor that requires grad is being used in an in-place operation", 1, true), e)
    assert.falsy(e:find("copy__", 1, true), e)
  end)
end)

describe("autograd.grad of a leaf", function()
  it("with respect to itself is the incoming gradient, as in PyTorch (found by the Lua API fuzzer)", function()
    local x = lucid.ones(2, {requires_grad = true})
    local g = lucid.autograd.grad(x, x, lucid.Tensor({2, 3}))
    assert.same({2, 3}, g[1]:tolist())
  end)
end)
