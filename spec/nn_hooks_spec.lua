-- Module hooks: register_forward_pre_hook, register_forward_hook, register_full_backward_hook
-- (PyTorch's semantics), inside containers (where the core runs children), on Lua modules, the
-- handles, and the errors.
local lucid = require "lucid"
local nn = lucid.nn
local F = nn.functional

local function close(a, b, tol)
  assert.is_true(lucid.allclose(a:to("float64"), b:to("float64"), tol or 1e-6, tol or 1e-6),
    tostring(a) .. " vs " .. tostring(b))
end

describe("module hooks", function()
  it("forward pre-hook sees and may replace the input", function()
    local lin = nn.Linear(3, 2)
    local seen
    local h = lin:register_forward_pre_hook(function(m, x)
      assert.is_true(rawequal(m, lin))
      seen = x
      return x * 2
    end)
    local x = lucid.randn(4, 3)
    close(lin(x), F.linear(x * 2, lin.weight, lin.bias))
    assert.is_true(rawequal(seen, x) or lucid.equal(seen, x))
    h:remove()
    close(lin(x), F.linear(x, lin.weight, lin.bias))
    h:remove() -- idempotent
  end)

  it("forward hook sees input and output and may replace the output", function()
    local relu = nn.ReLU()
    local got = {}
    relu:register_forward_hook(function(m, x, y)
      got.x, got.y = x, y
      return y + 1
    end)
    local x = lucid.tensor{-1, 2}
    close(relu(x), lucid.tensor{1, 3})
    close(got.x, x)
    close(got.y, lucid.tensor{0, 2})
  end)

  it("runs hooks in registration order, and on children inside a container", function()
    local order = {}
    local model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2), nn.ReLU(), nn.Linear(2, 1))
    model[2]:register_forward_hook(function() order[#order + 1] = "bn-a" end)
    model[2]:register_forward_hook(function() order[#order + 1] = "bn-b" end)
    model[3]:register_forward_pre_hook(function() order[#order + 1] = "relu-pre" end)
    model:register_forward_hook(function() order[#order + 1] = "seq" end)
    model(lucid.randn(4, 2))
    assert.are.same({"bn-a", "bn-b", "relu-pre", "seq"}, order)
  end)

  it("a hooked BatchNorm+ReLU pair is not fused, and computes the same", function()
    lucid.manual_seed(0)
    local model = nn.Sequential(nn.BatchNorm1d(3), nn.ReLU())
    local x = lucid.randn(6, 3)
    model:eval()
    local plain = model(x)
    local mid
    model[1]:register_forward_hook(function(_, _, y) mid = y:clone() end)
    close(model(x), plain)
    assert.is_not_nil(mid) -- the BatchNorm output existed on its own
    close(mid:relu(), plain)
  end)

  it("full backward hook gets grad_input and grad_output and may replace grad_input", function()
    lucid.manual_seed(2)
    local lin = nn.Linear(3, 2)
    local x = lucid.randn(4, 3):requires_grad_()
    local gi_seen, go_seen
    local h = lin:register_full_backward_hook(function(m, gi, go)
      assert.is_true(rawequal(m, lin))
      gi_seen, go_seen = gi:clone(), go:clone()
      return gi * 0.5
    end)
    local y = lin(x)
    assert.are.equal("BackwardHookFunctionBackward", y.grad_fn)
    local w = lucid.randn(4, 2)
    ;(y * w):sum():backward()
    close(go_seen, w)
    close(gi_seen, w:matmul(lin.weight))
    close(x.grad, w:matmul(lin.weight) * 0.5)
    -- the parameters' gradients are not changed by the hook (PyTorch's full hook)
    close(lin.weight.grad, w:t():matmul(x:detach()))
    h:remove()
    x.grad = nil
    lin:zero_grad()
    local y2 = lin(x)
    assert.are_not.equal("BackwardHookFunctionBackward", y2.grad_fn)
  end)

  it("full backward hook on a module whose input does not require grad gets nil", function()
    local lin = nn.Linear(3, 2)
    local calls, gin = 0, "unset"
    lin:register_full_backward_hook(function(_, gi, go)
      calls = calls + 1
      gin = gi
      assert.are.same({5, 2}, go.shape)
    end)
    lin(lucid.randn(5, 3)):sum():backward()
    assert.are.equal(1, calls)
    assert.is_nil(gin)
    assert.is_not_nil(lin.weight.grad)
  end)

  it("backward hooks inside a container see the child's gradients", function()
    lucid.manual_seed(5)
    local model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    local go_tanh
    model[2]:register_full_backward_hook(function(_, gi, go) go_tanh = go:clone() end)
    local x = lucid.randn(2, 3)
    local h1 = model[1](x)
    local h2 = model[2](h1)
    local ref = lucid.ones(2, 1):matmul(model[3].weight)
    model(x):sum():backward()
    close(go_tanh, ref)
    assert.is_true(h2.requires_grad)
  end)

  it("works on modules written in Lua", function()
    local Double = nn.Module:extend("Double")
    function Double:forward(x) return x * 2 end
    local d = Double()
    local pre, post = 0, 0
    d:register_forward_pre_hook(function() pre = pre + 1 end)
    d:register_forward_hook(function(_, _, y) post = post + 1; return y + 1 end)
    close(d(lucid.tensor{1, 2}), lucid.tensor{3, 5})
    local seq = nn.Sequential(d)
    close(seq(lucid.tensor{1}), lucid.tensor{3})
    assert.are.equal(2, pre)
    assert.are.equal(2, post)
  end)

  it("gives clear errors and stays usable", function()
    local lin = nn.Linear(2, 2)
    local model = nn.Sequential(lin)
    local h = lin:register_forward_hook(function() error("broken hook") end)
    local ok, err = pcall(model, lucid.randn(1, 2))
    assert.is_false(ok)
    assert.matches("Sequential.1 %(Linear%): error in a forward hook: .*broken hook", err)
    h:remove()
    h = lin:register_forward_hook(function() return 3 end)
    ok, err = pcall(lin, lucid.randn(1, 2))
    assert.is_false(ok)
    assert.matches("forward hook must return a tensor or nil, got number", err)
    h:remove()
    h = lin:register_full_backward_hook(function(_, gi) return lucid.zeros(7) end)
    local x = lucid.randn(1, 2):requires_grad_()
    ok, err = pcall(function() lin(x):sum():backward() end)
    assert.is_false(ok)
    assert.matches("backward hook returned a gradient of shape", err)
    h:remove()
    ok, err = pcall(function() lin:register_forward_hook(42) end)
    assert.is_false(ok)
    assert.matches("expected a function, got number", err)
    -- usable afterwards
    x.grad = nil
    lin(x):sum():backward()
    assert.is_not_nil(x.grad)
  end)

  it("a hook may remove itself while running", function()
    local lin = nn.Linear(2, 2)
    local n = 0
    local h
    h = lin:register_forward_hook(function() n = n + 1; h:remove() end)
    lin:register_forward_hook(function() n = n + 10 end)
    lin(lucid.randn(1, 2))
    lin(lucid.randn(1, 2))
    assert.are.equal(21, n)
  end)
end)
