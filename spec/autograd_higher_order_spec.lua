-- Higher-order gradients (docs/autograd.md, "Higher-order gradients"): backward{create_graph}
-- and lucid.autograd.grad{create_graph}, checked by gradgradcheck in float64 over every op that
-- has a differentiable backward, by closed forms (d^2 x^3 = 6x, Hessian-vector products), and
-- by the three uses that need them: gradient penalties, Hessian-vector products, MAML steps.
local h = require "helpers"
local lucid = h.lucid
local raises, same, close = h.raises, h.same, h.close
local gradgradcheck = lucid.autograd.gradgradcheck
local grad = lucid.autograd.grad
local F = lucid.nn.functional
local nn = lucid.nn

local function leaf(...) return lucid.randn(...):double():requires_grad_() end
local function pos(...) return (lucid.rand(...) + 0.5):double():requires_grad_() end

describe("create_graph", function()
  it("makes gradients differentiable: d/dx 3x^2 = 6x", function()
    local x = lucid.Tensor({1, 2, 3}, {dtype = "float64", requires_grad = true})
    local g = grad((x * x * x):sum(), x, {create_graph = true})[1]
    assert.are.equal("AddBackward", g.grad_fn)
    same(g, {3, 12, 27})
    same(grad(g:sum(), x, {retain_graph = true})[1], {6, 12, 18})
    -- third order
    local g2 = grad(g:sum(), x, {create_graph = true})[1]
    same(grad(g2:sum(), x)[1], {6, 6, 6})
  end)

  it("without create_graph, gradients have no history", function()
    local x = leaf(3)
    local g = grad((x * x):sum(), x)[1]
    assert.is_nil(g.grad_fn)
    assert.is_false(g.requires_grad)
  end)

  it("backward{create_graph = true} leaves a .grad with a history; retain_graph defaults to it", function()
    local x = lucid.Tensor({1, 2}, {dtype = "float64", requires_grad = true})
    local y = (x * x * x):sum()
    y:backward{create_graph = true}
    local gx = x.grad
    assert.are.equal("AddBackward", gx.grad_fn)
    same(gx, {3, 12})
    x.grad = nil -- .grad references the graph that references x: clear it when done
    gx:sum():backward{retain_graph = true}
    same(x.grad, {6, 12})
    x.grad = nil
    y:backward() -- the first graph was retained (retain_graph = create_graph)
    same(x.grad, {3, 12})
  end)

  it("positional form follows PyTorch: grad(outputs, inputs, grad_outputs, retain_graph, create_graph, allow_unused)", function()
    local x, z = leaf(2), leaf(2)
    local g = grad((x * x):sum(), {x, z}, nil, nil, true, true)
    assert.is_nil(g[2])
    assert.is_true(g[1].requires_grad)
  end)

  it("a Hessian-vector product equals the explicit Hessian times v", function()
    -- f(x) = sum(tanh(A x)) for a 3x3 A: H = A^T diag(-2 t (1 - t^2)) A, t = tanh(A x)
    local A = lucid.randn(3, 3):double()
    local x = leaf(3)
    local v = lucid.randn(3):double()
    local g = grad(lucid.tanh(A:matmul(x)):sum(), x, {create_graph = true})[1]
    local hv = grad(g, x, {grad_outputs = v})[1]
    local t = lucid.tanh(A:matmul(x:detach()))
    local d = -2 * t * (1 - t * t)
    local H = A:t():matmul(d:unsqueeze(2) * A)
    close(hv, H:matmul(v), 1e-10)
  end)

  it("a WGAN-GP gradient penalty trains the critic's weights", function()
    lucid.manual_seed(3)
    local critic = lucid.nn.Sequential(lucid.nn.Linear(4, 8), lucid.nn.LeakyReLU(0.2), lucid.nn.Linear(8, 1)):double()
    local x = lucid.randn(5, 4):double():requires_grad_()
    local out = critic(x)
    local gx = grad(out, x, {grad_outputs = lucid.ones(5, 1):double(), create_graph = true})[1]
    local penalty = ((gx:norm(2, 2) - 1) ^ 2):mean()
    local params = critic:parameters()
    local gp = grad(penalty, params, {allow_unused = true})
    assert.is_nil(gp[4]) -- the last bias does not move the input gradient
    -- against central differences of the penalty in the first weight matrix
    local w = params[1]
    local function pen()
      local xx = x:detach():requires_grad_()
      local gg = grad(critic(xx), xx, {grad_outputs = lucid.ones(5, 1):double()})[1]
      return ((gg:norm(2, 2) - 1) ^ 2):mean():item()
    end
    for _, ij in ipairs({{1, 1}, {3, 2}, {8, 4}}) do
      local i, j = ij[1], ij[2]
      local orig = w[{i, j}]:item()
      lucid.no_grad(function() w[{i, j}] = orig + 1e-6 end)
      local fp = pen()
      lucid.no_grad(function() w[{i, j}] = orig - 1e-6 end)
      local fm = pen()
      lucid.no_grad(function() w[{i, j}] = orig end)
      assert.is_true(math.abs(gp[1][{i, j}]:item() - (fp - fm) / 2e-6) < 1e-6)
    end
  end)

  it("a MAML step: the outer gradient flows through the inner update", function()
    -- inner: w' = w - lr * d/dw loss(w); outer: loss(w'), differentiated w.r.t. w
    local x, y = lucid.randn(6, 3):double(), lucid.randn(6, 1):double()
    local w0 = lucid.randn(3, 1):double()
    local lr = 0.1
    local function outer(w, create)
      local inner = ((x:matmul(w) - y) ^ 2):mean()
      local gw = grad(inner, w, {create_graph = create})[1]
      local w1 = w - gw * lr
      return ((x:matmul(w1) - y) ^ 2):mean()
    end
    local w = w0:clone():requires_grad_()
    local g = grad(outer(w, true), w)[1]
    -- numerically, through the whole two-step function
    local eps = 1e-6
    for i = 1, 3 do
      local function at(d)
        local ww = w0:clone()
        ww[{i, 1}] = ww[{i, 1}]:item() + d
        return outer(ww:requires_grad_(), false):item()
      end
      assert.is_true(math.abs(g[{i, 1}]:item() - (at(eps) - at(-eps)) / (2 * eps)) < 1e-7)
    end
    -- without create_graph the inner gradient is a constant: a different (first-order) result
    local g1 = grad(outer(w, false), w)[1]
    assert.is_true((g1 - g):abs():max():item() > 1e-6)
  end)
end)

describe("gradgradcheck", function()
  it("reports a wrong second derivative and checks its arguments", function()
    raises({"lucid.autograd.gradgradcheck: argument 1 (fn)"}, gradgradcheck, 1, {leaf(2)})
    raises({"lucid.autograd.gradgradcheck: argument 2 (inputs): entry [1] is a number"}, gradgradcheck,
      function(a) return a end, {1})
    -- detach() inside hides a factor from the second derivative only
    local bad = function(a) return a * a:detach() * a end
    raises({"gradient mismatch"}, gradgradcheck, bad, {leaf(3)})
  end)

  local unary = {"neg", "abs", "exp", "sin", "cos", "tanh", "sigmoid", "relu", "erf"}
  for _, name in ipairs(unary) do
    it("unary " .. name, function()
      assert.is_true(gradgradcheck(function(a) return a[name](a) end, {leaf(2, 3)}))
      assert.is_true(gradgradcheck(function(a) return a:t()[name](a:t()) end, {leaf(2, 3)}))
    end)
  end
  for _, name in ipairs({"log", "log1p", "sqrt", "rsqrt"}) do
    it("unary " .. name, function()
      assert.is_true(gradgradcheck(function(a) return a[name](a) end, {pos(2, 3)}))
    end)
  end
  it("zero-gradient unary ops (sign, floor, ceil, round)", function()
    for _, name in ipairs({"sign", "floor", "ceil", "round"}) do
      assert.is_true(gradgradcheck(function(a) return a[name](a) * a end, {leaf(4)}), name)
    end
  end)

  for _, name in ipairs({"add", "sub", "mul", "div", "maximum", "minimum"}) do
    it("binary " .. name .. " with broadcasting and scalars", function()
      local f = function(a, b) return a[name](a, b) * a end
      assert.is_true(gradgradcheck(f, {leaf(2, 3), pos(2, 3)}))
      assert.is_true(gradgradcheck(f, {leaf(2, 3), pos(3)}))
      assert.is_true(gradgradcheck(f, {leaf(2, 1), pos(1, 3)}))
      assert.is_true(gradgradcheck(function(a) return a[name](a, 1.5) * a end, {leaf(2, 3)}))
      assert.is_true(gradgradcheck(function(a) return lucid[name](1.5, a) * a end, {pos(2, 3)}))
    end)
  end

  it("pow with tensor and scalar exponents", function()
    assert.is_true(gradgradcheck(function(a, b) return a:pow(b) end, {pos(2, 3), leaf(2, 3)}))
    assert.is_true(gradgradcheck(function(a) return a ^ 3 end, {leaf(2, 3)}))
    assert.is_true(gradgradcheck(function(a) return a ^ 0.5 end, {pos(2, 3)}))
    assert.is_true(gradgradcheck(function(a) return 2 ^ a end, {leaf(2, 3)}))
  end)

  it("clamp, where, masked_fill, to, clone", function()
    assert.is_true(gradgradcheck(function(a) return a:clamp(-0.5, 0.5) * a end, {leaf(3, 4)}))
    assert.is_true(gradgradcheck(function(a) return a:clamp(nil, 0.2) * a end, {leaf(3, 4)}))
    local c = lucid.rand(3, 4):gt(0.5)
    assert.is_true(gradgradcheck(function(a, b) return lucid.where(c, a * a, b * a) end, {leaf(3, 4), leaf(4)}))
    assert.is_true(gradgradcheck(function(a) return a:masked_fill(c, 2) * a end, {leaf(3, 4)}))
    assert.is_true(gradgradcheck(function(a) return (a * a):clone() end, {leaf(3)}))
  end)

  for _, name in ipairs({"sum", "mean", "amax", "amin", "logsumexp", "var", "std", "norm"}) do
    it("reduction " .. name, function()
      local input = name == "norm" and leaf(2, 3) or pos(2, 3)
      local sq = function(r) return r * r end
      if name ~= "logsumexp" then
        assert.is_true(gradgradcheck(function(a) return sq(a[name](a)) end, {input}))
      end
      for d = 1, 2 do
        for _, keep in ipairs({false, true}) do
          if name == "norm" then
            assert.is_true(gradgradcheck(function(a) return a:norm(2, d, keep) end, {input}))
            assert.is_true(gradgradcheck(function(a) return a:norm(3, d, keep) end, {input}))
            assert.is_true(gradgradcheck(function(a) return sq(a:norm(1, d, keep)) end, {input}))
          else
            assert.is_true(gradgradcheck(function(a) return sq(a[name](a, d, keep)) end, {input}))
          end
        end
      end
    end)
  end

  it("max/min with a dim", function()
    assert.is_true(gradgradcheck(function(a) local v = a:max(2); return v * v end, {leaf(3, 4)}))
    assert.is_true(gradgradcheck(function(a) local v = a:min(1, true); return v * v end, {leaf(3, 4)}))
  end)

  it("linear algebra", function()
    assert.is_true(gradgradcheck(lucid.matmul, {leaf(2, 3), leaf(3, 2)}))
    assert.is_true(gradgradcheck(lucid.matmul, {leaf(3), leaf(3, 2)}))
    assert.is_true(gradgradcheck(lucid.matmul, {leaf(2, 3), leaf(3)}))
    assert.is_true(gradgradcheck(lucid.matmul, {leaf(3), leaf(3)}))
    assert.is_true(gradgradcheck(lucid.matmul, {leaf(2, 2, 3), leaf(3, 2)}))
    assert.is_true(gradgradcheck(lucid.bmm, {leaf(2, 2, 3), leaf(2, 3, 2)}))
    assert.is_true(gradgradcheck(function(x, w, b) return F.linear(x, w, b):tanh() end,
      {leaf(2, 3), leaf(4, 3), leaf(4)}))
    assert.is_true(gradgradcheck(function(x, w) return F.linear(x, w):tanh() end, {leaf(2, 2, 3), leaf(4, 3)}))
  end)

  it("views, joins and index ops", function()
    local x = leaf(2, 3, 2)
    local views = {
      function(a) return a:view(6, 2) end,
      function(a) return a:permute(3, 1, 2) end,
      function(a) return a:narrow(2, 2, 2) end,
      function(a) return a:select(2, 3) end,
      function(a) return a[{2, {1, 3, 2}, -1}] end,
      function(a) return a:sum(1, true):expand(4, 3, 2) end,
      function(a) return a:transpose(1, 2):reshape(3, 4) end,
    }
    for i, f in ipairs(views) do
      assert.is_true(gradgradcheck(function(a) local v = f(a); return v * v end, {x}), "view " .. i)
    end
    assert.is_true(gradgradcheck(function(a, b) return lucid.cat({a * a, b}, 2) * b:sum() end, {leaf(2, 3), leaf(2, 1)}))
    assert.is_true(gradgradcheck(function(a, b) return lucid.stack({a, b}, 1) ^ 2 end, {leaf(2, 3), leaf(2, 3)}))
    local idx = lucid.Tensor({3, 1, 3}, {dtype = "int64"})
    assert.is_true(gradgradcheck(function(a) return a:index_select(2, idx) ^ 2 end, {leaf(2, 4)}))
    local gi = lucid.Tensor({{1, 2}, {2, 2}, {1, 1}}, {dtype = "int64"})
    assert.is_true(gradgradcheck(function(a) return a:gather(2, gi) ^ 2 end, {leaf(3, 4)}))
    local si = lucid.Tensor({{2, 1, 3, 3}}, {dtype = "int64"})
    assert.is_true(gradgradcheck(function(a, s) return a:scatter(1, si, s) ^ 2 end, {leaf(3, 4), leaf(1, 4)}))
    assert.is_true(gradgradcheck(function(a, s) return a:scatter_add(1, si, s) ^ 2 end, {leaf(3, 4), leaf(1, 4)}))
  end)

  it("activations and softmax", function()
    local acts = {
      function(a) return F.relu6(a * 4) end,
      function(a) return F.leaky_relu(a, 0.1) * a end,
      function(a) return F.elu(a, 0.7) end,
      function(a) return F.gelu(a) end,
      function(a) return F.gelu(a, "tanh") end,
      function(a) return F.silu(a) end,
      function(a) return F.mish(a) end,
      function(a) return F.softplus(a, 2, 1) end,
      function(a) return F.hardtanh(a, -0.5, 0.5) * a end,
      function(a) return F.hardswish(a * 4) end,
      function(a) return a:softmax(2) end,
      function(a) return a:softmax(1) end,
      function(a) return a:log_softmax(2) end,
    }
    for i, f in ipairs(acts) do
      assert.is_true(gradgradcheck(f, {leaf(2, 3)}), "activation " .. i)
    end
  end)

  it("pointwise losses, every reduction, with weights", function()
    local y = lucid.randn(2, 3):double()
    local p01 = lucid.rand(2, 3):double() * 0.8 + 0.1
    local w = lucid.rand(2, 3):double() + 0.5
    local pw = lucid.rand(3):double() + 0.5
    for _, red in ipairs({"mean", "sum", "none"}) do
      local o = {reduction = red}
      assert.is_true(gradgradcheck(function(a, b) return F.mse_loss(a, b, o) end, {leaf(2, 3), leaf(2, 3)}), red)
      assert.is_true(gradgradcheck(function(a) return F.l1_loss(a * a, y, o) end, {leaf(2, 3)}), red)
      assert.is_true(gradgradcheck(function(a) return F.huber_loss(a * a, y, {reduction = red, delta = 0.5}) end, {leaf(2, 3)}), red)
      assert.is_true(gradgradcheck(function(a) return F.smooth_l1_loss(a * a, y, {reduction = red, beta = 0.5}) end, {leaf(2, 3)}), red)
      assert.is_true(gradgradcheck(function(a) return F.binary_cross_entropy(a:sigmoid(), p01, {weight = w, reduction = red}) end, {leaf(2, 3)}), red)
      assert.is_true(gradgradcheck(function(a, b) return F.binary_cross_entropy_with_logits(a, b, {reduction = red}) end, {leaf(2, 3), p01:clone():requires_grad_()}), red)
      assert.is_true(gradgradcheck(function(a) return F.binary_cross_entropy_with_logits(a, p01, {pos_weight = pw, reduction = red}) end, {leaf(2, 3)}), red)
      assert.is_true(gradgradcheck(function(a, b) return F.kl_div(a, b, {reduction = red, log_target = true}) * 1 end, {leaf(2, 3), leaf(2, 3)}), red)
      assert.is_true(gradgradcheck(function(a, b) return F.kl_div(a * a, b, {reduction = red}) end, {leaf(2, 3), pos(2, 3)}), red)
    end
  end)

  it("cross_entropy and nll_loss (class targets, weights, ignore_index, K-dim inputs)", function()
    local t = lucid.Tensor({1, 3, 2}, {dtype = "int64"})
    local cw = lucid.rand(3):double() + 0.5
    for _, red in ipairs({"mean", "sum", "none"}) do
      assert.is_true(gradgradcheck(function(a) return F.cross_entropy(a, t, {reduction = red}) end, {leaf(3, 3)}), red)
      assert.is_true(gradgradcheck(function(a) return F.cross_entropy(a, t, {weight = cw, ignore_index = 3, reduction = red}) end, {leaf(3, 3)}), red)
      assert.is_true(gradgradcheck(function(a) return F.nll_loss(a:log_softmax(2), t, {weight = cw, reduction = red}) end, {leaf(3, 3)}), red)
      local tk = lucid.Tensor({{1, 2}, {3, 1}}, {dtype = "int64"})
      assert.is_true(gradgradcheck(function(a) return F.cross_entropy(a, tk, {reduction = red}) end, {leaf(2, 3, 2)}), red)
    end
    -- label smoothing and class-probability targets (with weights, every reduction)
    local q = lucid.rand(3, 3):double()
    q = q / q:sum(2, {keepdim = true})
    for _, red in ipairs({"mean", "sum", "none"}) do
      assert.is_true(gradgradcheck(function(a)
        return F.cross_entropy(a, t, {label_smoothing = 0.2, weight = cw, reduction = red})
      end, {leaf(3, 3)}), red)
      assert.is_true(gradgradcheck(function(a)
        return F.cross_entropy(a, t, {label_smoothing = 0.1, ignore_index = 2, reduction = red})
      end, {leaf(3, 3)}), red)
      assert.is_true(gradgradcheck(function(a)
        return F.cross_entropy(a, q, {label_smoothing = 0.3, weight = cw, reduction = red})
      end, {leaf(3, 3)}), red)
    end
    local tk = lucid.Tensor({{1, 2}, {3, 1}}, {dtype = "int64"})
    assert.is_true(gradgradcheck(function(a)
      return F.cross_entropy(a, tk, {label_smoothing = 0.2})
    end, {leaf(2, 3, 2)}))
    -- a probability target that requires grad: the mixed second derivatives too
    local qq = q:clone():requires_grad_()
    for _, red in ipairs({"mean", "sum", "none"}) do
      assert.is_true(gradgradcheck(function(a, tq)
        return F.cross_entropy(a, tq, {label_smoothing = 0.2, weight = cw, reduction = red})
      end, {leaf(3, 3), qq}), red)
    end
    assert.is_true(gradgradcheck(function(a, tq) return F.cross_entropy(a, tq) end,
      {leaf(2, 3, 2), lucid.rand(2, 3, 2):double():requires_grad_()}))
  end)

  it("dropout (a fixed mask) and embedding (with padding_idx)", function()
    local drop = function(a) lucid.manual_seed(7); return F.dropout(a * a, 0.4, true) end
    assert.is_true(gradgradcheck(drop, {leaf(3, 4)}))
    local idx = lucid.Tensor({{1, 3}, {3, 2}}, {dtype = "int64"})
    assert.is_true(gradgradcheck(function(w) return F.embedding(idx, w) ^ 2 end, {leaf(4, 3)}))
    assert.is_true(gradgradcheck(function(w) return F.embedding(idx, w, {padding_idx = 3}) ^ 2 end, {leaf(4, 3)}))
  end)

  it("layer_norm, group_norm and instance_norm", function()
    assert.is_true(gradgradcheck(function(x, w, b) return F.layer_norm(x, {3}, w, b) end,
      {leaf(2, 3), leaf(3), leaf(3)}))
    assert.is_true(gradgradcheck(function(x) return F.layer_norm(x, {2, 2}) end, {leaf(2, 2, 2)}))
    assert.is_true(gradgradcheck(function(x, w, b) return F.group_norm(x, 2, w, b) end,
      {leaf(2, 4, 2), leaf(4), leaf(4)}))
    assert.is_true(gradgradcheck(function(x) return F.instance_norm(x) end, {leaf(2, 2, 3)}))
  end)

  it("differentiates convolutions twice (fused kernels for every order)", function()
    assert.is_true(gradgradcheck(function(x, w, b)
      return F.conv2d(x, w, b, {stride = 2, padding = 1})
    end, {leaf(2, 3, 5, 5), leaf(4, 3, 3, 3), leaf(4)}))
    assert.is_true(gradgradcheck(function(x, w)
      return F.conv2d(x, w, nil, {groups = 2, dilation = 2, padding = 2})
    end, {leaf(1, 4, 4, 4), leaf(2, 2, 3, 3)}))
    assert.is_true(gradgradcheck(function(x, w, b)
      return F.conv_transpose2d(x, w, b, {stride = 2, output_padding = 1})
    end, {leaf(2, 3, 3, 3), leaf(3, 2, 3, 3), leaf(2)}))
    assert.is_true(gradgradcheck(function(x, w) return F.conv1d(x, w, nil, {stride = 2}) end,
      {leaf(3, 7), leaf(2, 3, 3)})) -- unbatched
    -- a third order through conv, against central differences of the second order's sum
    local x, w = leaf(1, 1, 3, 3), leaf(1, 1, 2, 2)
    local g1 = grad(F.conv2d(x, w):pow(3):sum(), w, {create_graph = true})[1]
    local g2 = grad(g1:sum(), w, {create_graph = true})[1]
    local g3 = grad(g2:sum(), w)[1]
    local function second(wv)
      local ww = wv:detach():requires_grad_()
      local a = grad(F.conv2d(x:detach(), ww):pow(3):sum(), ww, {create_graph = true})[1]
      return grad(a:sum(), ww)[1]:sum():item()
    end
    local eps = 1e-6
    for k = 1, 4 do
      local i, j = (k - 1) // 2 + 1, (k - 1) % 2 + 1
      local wp, wm = w:detach():clone(), w:detach():clone()
      wp[{1, 1, i, j}] = wp[{1, 1, i, j}]:item() + eps
      wm[{1, 1, i, j}] = wm[{1, 1, i, j}]:item() - eps
      local num = (second(wp) - second(wm)) / (2 * eps)
      assert.is_true(math.abs(g3[{1, 1, i, j}]:item() - num) < 1e-5 * math.max(1, math.abs(num)))
    end
  end)

  it("differentiates pooling twice", function()
    assert.is_true(gradgradcheck(function(x) return F.max_pool2d(x, 2) end, {leaf(2, 2, 4, 4)}))
    assert.is_true(gradgradcheck(function(x)
      return F.max_pool2d(x, 3, {stride = 2, padding = 1})
    end, {leaf(1, 2, 5, 5)}))
    assert.is_true(gradgradcheck(function(x) return F.max_pool1d(x, 2) end, {leaf(2, 6)}))
    assert.is_true(gradgradcheck(function(x)
      return F.avg_pool2d(x, 2, {padding = 1, count_include_pad = false})
    end, {leaf(2, 2, 5, 5)}))
    assert.is_true(gradgradcheck(function(x) return F.adaptive_avg_pool2d(x, {3, 2}) end,
      {leaf(2, 2, 5, 5)}))
    assert.is_true(gradgradcheck(function(x) return F.adaptive_max_pool2d(x, {2, 2}) end,
      {leaf(1, 2, 5, 5)}))
  end)

  it("differentiates padding twice, in every mode", function()
    for _, mode in ipairs{"constant", "reflect", "replicate", "circular"} do
      local opts = mode == "constant" and {value = 0.5} or {mode = mode}
      assert.is_true(gradgradcheck(function(x) return F.pad(x, {1, 2, 2, 1}, opts) end,
        {leaf(1, 2, 4, 4)}), mode)
    end
    assert.is_true(gradgradcheck(function(x) return F.pad(x, {-1, 2}) end, {leaf(2, 5)}))
  end)

  it("differentiates norm twice for every p (0, fractional, negative, infinite)", function()
    for _, p in ipairs{math.huge, -math.huge, 0.5, 3, -1.5} do
      assert.is_true(gradgradcheck(function(x) return x:norm(p, 2) end, {leaf(3, 4)}), tostring(p))
    end
    assert.is_true(gradgradcheck(function(x) return x:norm(0) end, {leaf(3, 4)}))
    assert.is_true(gradgradcheck(function(a, b) return lucid.cdist(a, b, {p = math.huge}) end,
      {leaf(3, 2), leaf(4, 2)}))
    assert.is_true(gradgradcheck(function(a, b)
      return F.pairwise_distance(a, b, {p = 0.7})
    end, {leaf(3, 2), leaf(3, 2)}))
  end)

  it("differentiates bilinear twice", function()
    assert.is_true(gradgradcheck(function(a, b, w, bias) return F.bilinear(a, b, w, bias) end,
      {leaf(3, 2), leaf(3, 4), leaf(5, 2, 4), leaf(5)}))
    assert.is_true(gradgradcheck(function(a, b, w) return F.bilinear(a, b, w) end,
      {leaf(2, 3, 2), leaf(2, 3, 3), leaf(2, 2, 3)}))
  end)

  it("differentiates prod twice, exactly with zeros", function()
    local function T(t) return lucid.Tensor(t, {dtype = "float64", requires_grad = true}) end
    assert.is_true(gradgradcheck(function(x) return x:prod() end, {leaf(2, 3)}))
    assert.is_true(gradgradcheck(function(x) return x:prod(2) end, {leaf(2, 3)}))
    assert.is_true(gradgradcheck(function(x) return x:prod(1, {keepdim = true}) end,
      {leaf(3, 2, 2)}))
    assert.is_true(gradgradcheck(function(x) return x:prod(2) end,
      {T{{0, 2, 3}, {0, 0, 1.5}, {1, 2, 3}}}))
    assert.is_true(gradgradcheck(function(x) return x:prod() end, {T{{0.5, 0}, {0, 2}}}))
  end)

  it("differentiates masked_select twice (broadcast masks too)", function()
    local mask = lucid.Tensor({{true, false, true}, {false, true, true}})
    assert.is_true(gradgradcheck(function(x) return x:masked_select(mask) end, {leaf(2, 3)}))
    assert.is_true(gradgradcheck(function(x)
      return x:masked_select(lucid.Tensor({true, false, true}))
    end, {leaf(2, 3)}))
    assert.is_true(gradgradcheck(function(x) return x:masked_select(mask) end, {leaf(3)}))
  end)

  it("differentiates interpolation twice", function()
    assert.is_true(gradgradcheck(function(x) return F.interpolate(x, {scale_factor = 2}) end,
      {leaf(1, 2, 3, 3)}))
    assert.is_true(gradgradcheck(function(x)
      return F.interpolate(x, {size = {5, 4}, mode = "bilinear", align_corners = true})
    end, {leaf(1, 2, 3, 3)}))
  end)

  it("differentiates batch_norm twice, in training and eval mode, fused with ReLU too", function()
    assert.is_true(gradgradcheck(function(x, w, b)
      return F.batch_norm(x, nil, nil, w, b, true)
    end, {leaf(4, 3, 2), leaf(3), leaf(3)}))
    assert.is_true(gradgradcheck(function(x) return F.batch_norm(x, nil, nil, nil, nil, true) end,
      {leaf(3, 2, 2, 2)}))
    local rm, rv = lucid.randn(3):double(), lucid.rand(3):double() + 0.5
    assert.is_true(gradgradcheck(function(x, w, b)
      return F.batch_norm(x, rm, rv, w, b, false)
    end, {leaf(4, 3), leaf(3), leaf(3)}))
    local m = nn.Sequential(nn.BatchNorm1d(3), nn.ReLU()):double() -- the fused pair
    assert.is_true(gradgradcheck(function(x) return m(x) end, {leaf(5, 3)}))
    m:eval()
    assert.is_true(gradgradcheck(function(x) return m(x) end, {leaf(5, 3)}))
  end)

  it("computes a WGAN-GP penalty through a convolutional critic", function()
    lucid.manual_seed(11)
    local critic = nn.Sequential(nn.Conv2d(1, 2, 3, {padding = 1}), nn.Tanh(), nn.Flatten(),
      nn.Linear(2 * 4 * 4, 1)):double()
    local x = leaf(3, 1, 4, 4)
    local function penalty()
      local g = grad(critic(x):sum(), x, {create_graph = true})[1]
      return ((g:reshape(3, -1):norm(2, 2) - 1) ^ 2):mean()
    end
    critic:zero_grad()
    penalty():backward()
    local w = critic[1].weight
    local analytic = w.grad:clone()
    local eps = 1e-6
    for _, idx in ipairs{{1, 1, 1, 1}, {2, 1, 2, 3}, {1, 1, 3, 2}} do
      local v = w[idx]:item()
      lucid.no_grad(function() w[idx] = v + eps end)
      local up = penalty():item()
      lucid.no_grad(function() w[idx] = v - eps end)
      local down = penalty():item()
      lucid.no_grad(function() w[idx] = v end)
      local num = (up - down) / (2 * eps)
      assert.is_true(math.abs(analytic[idx]:item() - num) < 1e-6 * math.max(1, math.abs(num)),
        ("%g vs %g"):format(analytic[idx]:item(), num))
    end
  end)
end)
