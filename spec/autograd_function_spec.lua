-- lucid.autograd.Function: forward and backward written in Lua (PyTorch's
-- torch.autograd.Function): saved tensors, needs_input_grad, mark_dirty,
-- mark_non_differentiable, several inputs and outputs, nil gradients, double backward, use
-- inside modules, and the errors.
local lucid = require "lucid"
local nn = lucid.nn
local autograd = lucid.autograd
local Function = autograd.Function

local function f64(t) return lucid.tensor(t, {dtype = "float64", requires_grad = true}) end

local function close(a, b, tol)
  assert.is_true(lucid.allclose(a:to("float64"), b:to("float64"), tol or 1e-6, tol or 1e-6),
    tostring(a) .. " vs " .. tostring(b))
end

local Exp = Function{
  name = "MyExp",
  forward = function(ctx, x)
    local y = x:exp()
    ctx:save_for_backward(y)
    return y
  end,
  backward = function(ctx, g) return g * ctx.saved_tensors[1] end,
}

-- y = a * x + b with a a Lua number; b optional (nil allowed)
local Affine = Function{
  name = "Affine",
  forward = function(ctx, x, a, b)
    ctx.a = a
    ctx:save_for_backward(x, b)
    if b then return x * a + b end
    return x * a
  end,
  backward = function(ctx, g)
    local _, b = table.unpack(ctx.saved_tensors, 1, 2)
    local gx = ctx.needs_input_grad[1] and g * ctx.a or nil
    local gb = (b and ctx.needs_input_grad[3]) and g or nil
    return gx, nil, gb
  end,
}

describe("lucid.autograd.Function", function()
  it("computes values and gradients like the built-in op", function()
    local x = lucid.tensor({0.5, -1, 2}, {requires_grad = true})
    local y = Exp.apply(x)
    assert.are.equal("MyExpBackward", y.grad_fn)
    assert.is_true(y.requires_grad)
    close(y, x:detach():exp())
    y:sum():backward()
    close(x.grad, x:detach():exp())
  end)

  it("is called as Fn.apply(x), Fn:apply(x) and Fn(x)", function()
    local x = lucid.tensor({1, 2}, {requires_grad = true})
    close(Exp.apply(x), Exp:apply(x))
    close(Exp(x), Exp.apply(x))
    assert.are.equal("lucid.autograd.Function(MyExp)", tostring(Exp))
  end)

  it("passes float64 gradcheck and gradgradcheck", function()
    assert.is_true(autograd.gradcheck(function(x) return Exp(x) end, {f64{0.1, -0.7, 1.3}}))
    assert.is_true(autograd.gradgradcheck(function(x) return Exp(x) end, {f64{0.1, -0.7, 1.3}}))
    assert.is_true(autograd.gradcheck(function(x, b) return Affine(x, 2.5, b) end,
      {f64{1, 2, 3}, f64{0.5, 0.25, -1}}))
  end)

  it("differentiates twice through a saved output (create_graph)", function()
    local x = f64{0.3, 1.1}
    local g = autograd.grad(Exp(x):sum(), x, nil, nil, true)[1]
    assert.is_true(g.requires_grad)
    local gg = autograd.grad(g:sum(), x)[1]
    close(gg, x:detach():exp(), 1e-12)
  end)

  it("takes non-tensor arguments and nil gradients, and sets needs_input_grad", function()
    local seen
    local Probe = Function{
      forward = function(ctx, x, k, y)
        seen = ctx.needs_input_grad
        return x * k + y
      end,
      backward = function(ctx, g) return g * 2, nil, nil end,
    }
    local x = lucid.tensor({1, 2}, {requires_grad = true})
    local y = lucid.tensor({3, 4})
    local out = Probe(x, 2, y)
    assert.are.same({true, false, false}, seen)
    out:sum():backward()
    close(x.grad, lucid.tensor{2, 2})
    assert.is_nil(y.grad)
    -- without grad mode nothing is recorded
    local z = lucid.no_grad(function() return Probe(x, 2, y) end)
    assert.is_false(z.requires_grad)
    assert.are.same({false, false, false}, seen)
  end)

  it("has several outputs; an unused one gets a zero gradient", function()
    local SinCos = Function{
      name = "SinCos",
      forward = function(ctx, x)
        ctx:save_for_backward(x)
        return x:sin(), x:cos()
      end,
      backward = function(ctx, gs, gc)
        local x = ctx.saved_tensors[1]
        return gs * x:cos() - gc * x:sin()
      end,
    }
    local x = f64{0.2, 0.9, -1.4}
    local s, c = SinCos(x)
    assert.are.equal("SinCosBackward", s.grad_fn)
    assert.are.equal("SinCosBackward", c.grad_fn)
    ;(s * 2 + c * 3):sum():backward()
    close(x.grad, x:detach():cos() * 2 - x:detach():sin() * 3, 1e-12)
    x.grad = nil
    local s2 = SinCos(x)
    s2:sum():backward()
    close(x.grad, x:detach():cos(), 1e-12)
    assert.is_true(autograd.gradcheck(function(t)
      local a, b = SinCos(t)
      return a * b
    end, {f64{0.3, -0.6}}))
    assert.is_true(autograd.gradgradcheck(function(t)
      local a, b = SinCos(t)
      return a + b * b
    end, {f64{0.3, -0.6}}))
  end)

  it("retains the gradient of any output and runs hooks on it", function()
    local Two = Function{
      forward = function(ctx, x) return x * 2, x * 3 end,
      backward = function(ctx, ga, gb) return ga * 2 + gb * 3 end,
    }
    local x = lucid.tensor({1, 2}, {requires_grad = true})
    local a, b = Two(x)
    b:retain_grad()
    local hooked
    b:register_hook(function(g) hooked = g:clone() return g * 10 end)
    ;(a + b * 4):sum():backward()
    close(b.grad, lucid.tensor{40, 40}) -- .grad holds the hooked gradient, as for any tensor
    close(hooked, lucid.tensor{4, 4})
    close(x.grad, lucid.tensor{2 + 120, 2 + 120})
  end)

  it("marks outputs non-differentiable", function()
    local SortIdx = Function{
      forward = function(ctx, x)
        local v, i = x:sort()
        ctx:mark_non_differentiable(i)
        ctx.i = i
        return v, i
      end,
      backward = function(ctx, gv, gi)
        assert.are.same(gv.shape, gi.shape) -- materialized zeros
        return lucid.zeros_like(gv):scatter(1, ctx.i, gv)
      end,
    }
    local x = lucid.tensor({3, 1, 2}, {requires_grad = true})
    local v, i = SortIdx(x)
    assert.is_true(v.requires_grad)
    assert.is_false(i.requires_grad)
    assert.is_nil(i.grad_fn)
    ;(v * lucid.tensor{1, 10, 100}):sum():backward()
    close(x.grad, lucid.tensor{100, 1, 10})
  end)

  it("rebases an input marked dirty (in place) onto its node", function()
    local Double_ = Function{
      name = "Double_",
      forward = function(ctx, x)
        x:mul_(2)
        ctx:mark_dirty(x)
        return x
      end,
      backward = function(ctx, g) return g * 2 end,
    }
    local leaf = lucid.tensor({1, 2}, {requires_grad = true})
    local h = leaf * 3
    local r = Double_(h)
    assert.is_true(rawequal(r, h))
    assert.are.equal("Double_Backward", h.grad_fn)
    close(h, lucid.tensor{6, 12})
    h:sum():backward()
    close(leaf.grad, lucid.tensor{6, 6})
    -- a leaf that requires grad cannot be modified in place
    local ok, err = pcall(Double_, lucid.tensor({1}, {requires_grad = true}))
    assert.is_false(ok)
    assert.matches("leaf tensor that requires grad has been modified in place", err)
    -- a tensor marked dirty must be returned
    local Forgot = Function{
      forward = function(ctx, x) x:mul_(2); ctx:mark_dirty(x); return x * 1 end,
      backward = function(ctx, g) return g end,
    }
    ok, err = pcall(Forgot, lucid.tensor({1}, {requires_grad = true}) * 1)
    assert.is_false(ok)
    assert.matches("marked dirty", err)
  end)

  it("returns an input given back unchanged as a new tensor with the node's history", function()
    local Id = Function{
      forward = function(ctx, x) return x end,
      backward = function(ctx, g) return g * 5 end,
    }
    local x = lucid.tensor({1, 2}, {requires_grad = true})
    local y = Id(x)
    assert.is_false(rawequal(x, y))
    assert.is_nil(x.grad_fn)
    y:sum():backward()
    close(x.grad, lucid.tensor{5, 5})
  end)

  it("refuses a backward after a saved tensor was modified in place", function()
    local x = lucid.tensor({1, 2}, {requires_grad = true})
    local y = Exp(x)
    y:add_(1)
    local ok, err = pcall(function() y:sum():backward() end)
    assert.is_false(ok)
    assert.matches("modified by an inplace operation", err)
  end)

  it("names the function when its backward fails, and the runtime stays usable", function()
    local Bad = Function{
      name = "Bad",
      forward = function(ctx, x) return x * 2 end,
      backward = function(ctx, g) error("boom") end,
    }
    local x = lucid.tensor({1, 2}, {requires_grad = true})
    local ok, err = pcall(function() Bad(x):sum():backward() end)
    assert.is_false(ok)
    assert.matches("BadBackward: error in backward: .*boom", err)

    local Count = Function{
      name = "Count",
      forward = function(ctx, x, y) return x + y end,
      backward = function(ctx, g) return g end,
    }
    ok, err = pcall(function() Count(x, x):sum():backward() end)
    assert.is_false(ok)
    assert.matches("CountBackward: .*incorrect number of gradients %(expected 2", err)

    local NonTensor = Function{
      forward = function(ctx, x, k) return x * k end,
      backward = function(ctx, g) return g, g end,
    }
    ok, err = pcall(function() NonTensor(x, 3):sum():backward() end)
    assert.is_false(ok)
    assert.matches("forward argument 2 is not a tensor", err)

    local WrongShape = Function{
      forward = function(ctx, x) return x:sum() end,
      backward = function(ctx, g) return g end,
    }
    ok, err = pcall(function() WrongShape(x):backward() end)
    assert.is_false(ok)
    assert.matches("gradient of shape", err)

    local WrongType = Function{
      forward = function(ctx, x) return x * 1 end,
      backward = function(ctx, g) return 3 end,
    }
    ok, err = pcall(function() WrongType(x):sum():backward() end)
    assert.is_false(ok)
    assert.matches("expected a tensor or nil", err)

    -- the runtime works after all of that
    x.grad = nil
    Exp(x):sum():backward()
    close(x.grad, x:detach():exp())
  end)

  it("checks its definition", function()
    assert.has_error(function() Function{forward = function() end} end,
      "lucid.autograd.Function: backward: expected a function, got nil")
    assert.has_error(function()
      Function{forward = function() end, backward = function() end, bogus = 1}
    end, "lucid.autograd.Function: unknown key 'bogus' (expected forward, backward, name)")
    local ok, err = pcall(function()
      local ctx = {}
      Exp.forward(ctx, lucid.ones(1)) -- ctx:save_for_backward outside apply
    end)
    assert.is_false(ok)
    assert.matches("save_for_backward", err)
  end)

  it("works inside modules and containers, and trains", function()
    local Scale = nn.Module:extend("Scale")
    local ScaleFn = Function{
      name = "ScaleFn",
      forward = function(ctx, x, w)
        ctx:save_for_backward(x, w)
        return x * w
      end,
      backward = function(ctx, g)
        local x, w = ctx.saved_tensors[1], ctx.saved_tensors[2]
        return g * w, (g * x):sum(1)
      end,
    }
    function Scale:init(n) self.w = nn.Parameter(lucid.ones(n)) end
    function Scale:forward(x) return ScaleFn(x, self.w) end

    lucid.manual_seed(3)
    local model = nn.Sequential(nn.Linear(3, 4), Scale(4), nn.Tanh(), nn.Linear(4, 1))
    local x, target = lucid.randn(8, 3), lucid.randn(8, 1)
    local opt = lucid.optim.SGD(model:parameters(), {lr = 0.1})
    local first, last
    for step = 1, 30 do
      opt:zero_grad()
      local loss = nn.functional.mse_loss(model(x), target)
      loss:backward()
      opt:step()
      if step == 1 then first = loss:item() end
      last = loss:item()
    end
    assert.is_true(last < first * 0.9, ("loss %g -> %g"):format(first, last))
    -- the Lua function's gradient equals the built-in one
    local w = lucid.randn(4):requires_grad_()
    local xi = lucid.randn(2, 4):requires_grad_()
    ScaleFn(xi, w):pow(2):sum():backward()
    local gw, gx = w.grad:clone(), xi.grad:clone()
    w.grad, xi.grad = nil, nil
    (xi * w):pow(2):sum():backward()
    close(gw, w.grad)
    close(gx, xi.grad)
  end)

  it("frees what it saved after a backward without retain_graph", function()
    local x = lucid.tensor({1, 2}, {requires_grad = true})
    local y = Exp(x)
    y:sum():backward()
    local ok, err = pcall(function() y:sum():backward() end)
    assert.is_false(ok)
    assert.matches("backward through the graph a second time", err)
    local y2 = Exp(x)
    y2:sum():backward{retain_graph = true}
    y2:sum():backward()
    close(x.grad, x:detach():exp() * 3)
  end)
end)
