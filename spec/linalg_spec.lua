-- lucid.linalg: values and gradients against PyTorch 1.13 (spec/fixtures/linalg.lua, written by
-- tools/fixtures/linalg.py), float64 gradcheck / gradgradcheck, shapes, dtypes and errors.
local lucid = require "lucid"
local autograd = require "lucid.autograd"
local fixtures = require "fixtures.linalg"
local LA = lucid.linalg

local function T(v, dtype) return lucid.Tensor(v, {dtype = dtype or "float64"}) end
local function eye(n, dt) return lucid.eye(n, n, {dtype = dt}) end
local function spd(x) return x:matmul(x:transpose(-2, -1)) + eye(x.shape[#x.shape], x.dtype) end
local function sym(x) return x + x:transpose(-2, -1) end

-- the same computations as FNS in tools/fixtures/linalg.py
local F = {
  inv = function(a) return {LA.inv(a)} end,
  solve = function(a, b) return {LA.solve(a, b)} end,
  det = function(a) return {LA.det(a)} end,
  slogdet = function(a) return {LA.slogdet(a)} end,
  cholesky = function(x) return {LA.cholesky(spd(x))} end,
  cholesky_upper = function(x) return {LA.cholesky(spd(x), {upper = true})} end,
  qr = function(a)
    local q, r = LA.qr(a)
    return {q * q, r * r, q:matmul(r)}
  end,
  eigh = function(x)
    local l, v = LA.eigh(sym(x))
    return {l, v * v, (v * l:unsqueeze(-2)):matmul(v:transpose(-2, -1))}
  end,
  eigvalsh = function(x) return {LA.eigvalsh(sym(x))} end,
  svd = function(a)
    local u, s, vh = LA.svd(a, {full_matrices = false})
    return {s, u * u, vh * vh, (u * s:unsqueeze(-2)):matmul(vh)}
  end,
  svdvals = function(a) return {LA.svdvals(a)} end,
  pinv = function(a) return {LA.pinv(a)} end,
  pinv_herm = function(x) return {LA.pinv(spd(x), {hermitian = true})} end,
  power3 = function(a) return {LA.matrix_power(a, 3)} end,
  power_neg2 = function(a) return {LA.matrix_power(a, -2)} end,
  power0 = function(a) return {LA.matrix_power(a, 0)} end,
  mnorm_fro = function(a) return {LA.matrix_norm(a)} end,
  mnorm_nuc = function(a) return {LA.matrix_norm(a, "nuc")} end,
  mnorm_inf = function(a) return {LA.matrix_norm(a, math.huge)} end,
  mnorm_ninf = function(a) return {LA.matrix_norm(a, -math.huge)} end,
  mnorm_1 = function(a) return {LA.matrix_norm(a, 1)} end,
  mnorm_n1 = function(a) return {LA.matrix_norm(a, -1)} end,
  mnorm_2 = function(a) return {LA.matrix_norm(a, 2)} end,
  mnorm_n2 = function(a) return {LA.matrix_norm(a, -2)} end,
  mnorm_dims = function(a) return {LA.matrix_norm(a, 1, {dim = {1, 3}, keepdim = true})} end,
  vnorm_2 = function(x) return {LA.vector_norm(x)} end,
  vnorm_inf = function(x) return {LA.vector_norm(x, math.huge, {dim = -1})} end,
  vnorm_3 = function(x) return {LA.vector_norm(x, 3, {dim = {1, 2}, keepdim = true})} end,
  vnorm_1 = function(x) return {LA.vector_norm(x, 1, {dim = 1})} end,
  norm = function(x) return {LA.norm(x)} end,
  norm_vec = function(x) return {LA.norm(x, 3, {dim = 2})} end,
  cross = function(a, b) return {LA.cross(a, b)} end,
  lstsq = function(a, b) return {LA.lstsq(a, b).solution} end,
  lstsq_full = function(a, b)
    local r = LA.lstsq(a, b)
    return {r.solution, r.residuals, r.rank:double(), r.singular_values}
  end,
  rank = function(a) return {LA.matrix_rank(a)} end,
}

local function close(got, want, tol, what)
  if type(want) == "number" then
    assert(math.abs(got:item() - want) <= tol * (1 + math.abs(want)),
           what .. ": got " .. tostring(got:item()) .. ", want " .. want)
    return
  end
  local w = T(want, got.dtype == "int64" and "float64" or got.dtype)
  local g = got:to("float64")
  local err = (g - w:to("float64")):abs():max():item()
  local scale = w:to("float64"):abs():max():item()
  assert(err <= tol * (1 + scale), string.format("%s: max error %g", what, err))
end

describe("lucid.linalg against PyTorch", function()
  for name, c in pairs(fixtures) do
    it(name, function()
      local tol = c.dtype == "float32" and 2e-4 or 1e-9
      local ins = {}
      for i, v in ipairs(c.inputs) do
        ins[i] = T(v, c.dtype)
        if c.grads then ins[i]:requires_grad_() end
      end
      local outs = F[c.fn](table.unpack(ins))
      assert.equal(#c.outputs, #outs)
      for i, o in ipairs(outs) do
        assert.same(c.out_shapes[i], o.shape)
        close(o, c.outputs[i], tol, name .. " output " .. i)
      end
      if c.grads then
        local loss
        for i, o in ipairs(outs) do
          local term = (o * T(c.weights[i], c.dtype)):sum()
          loss = loss and loss + term or term
        end
        loss:backward()
        for i, g in ipairs(c.grads) do
          close(ins[i].grad, g, c.dtype == "float32" and 2e-3 or 1e-7, name .. " grad " .. i)
        end
      end
    end)
  end
end)

describe("lucid.linalg gradcheck and gradgradcheck (float64)", function()
  local function x(...) return lucid.randn({...}, {dtype = "float64"}):requires_grad_() end
  local function well(n) return (lucid.randn({2, n, n}, {dtype = "float64"}) + eye(n, "float64") * 4):requires_grad_() end
  local cases = {
    inv = {function(a) return LA.inv(a) end, function() return {well(3)} end},
    solve = {function(a, b) return LA.solve(a, b) end, function() return {well(3), x(2, 3, 2)} end},
    solve_vec = {function(a, b) return LA.solve(a, b) end, function() return {well(3), x(2, 3)} end},
    det = {function(a) return LA.det(a) end, function() return {well(3)} end},
    slogdet = {function(a) local _, l = LA.slogdet(a); return l end, function() return {well(3)} end},
    cholesky = {function(a) return LA.cholesky(spd(a)) end, function() return {x(2, 3, 3)} end},
    qr = {function(a) local q, r = LA.qr(a); return q:sum() + (r * r):sum() end, function() return {x(4, 3)} end},
    qr_wide = {function(a) local q, r = LA.qr(a); return (q * q * q):sum() + r:sum() end, function() return {x(3, 5)} end},
    eigh = {function(a) local l, v = LA.eigh(sym(a)); return l:sum() + (v * v * v * v):sum() end, function() return {x(3, 3)} end},
    eigvalsh = {function(a) return LA.eigvalsh(sym(a)) end, function() return {x(2, 3, 3)} end},
    svd = {function(a) local u, s, vh = LA.svd(a, {full_matrices = false}); return u:matmul(vh):sum() + s:sum() end, function() return {x(4, 3)} end},
    svd_wide = {function(a) local u, s, vh = LA.svd(a, {full_matrices = false}); return (u * u * u):sum() + (vh * vh * vh):sum() + s:pow(2):sum() end, function() return {x(2, 3)} end},
    svdvals = {function(a) return LA.svdvals(a) end, function() return {x(3, 4)} end},
    pinv = {function(a) return LA.pinv(a) end, function() return {x(3, 2)} end},
    matrix_power = {function(a) return LA.matrix_power(a, -3) end, function() return {well(2)} end},
    matrix_norm = {function(a) return LA.matrix_norm(a, "nuc") + LA.matrix_norm(a, -2) + LA.matrix_norm(a, 1) end, function() return {x(3, 4)} end},
    cross = {function(a, b) return LA.cross(a, b) end, function() return {x(2, 3), x(2, 3)} end},
    lstsq = {function(a, b) return LA.lstsq(a, b).solution end, function() return {x(5, 3), x(5, 2)} end},
    -- exactly singular (rank 2) next to a regular matrix: the gradient from the SVD's adjugate
    det_singular = {function(a) return LA.det(a) end, function()
      return {T({{{1, 2, 3}, {2, 4, 6}, {1, 0, 1}}, {{2, 1, 0}, {1, 3, 1}, {0, 1, 4}}}):requires_grad_()}
    end},
  }
  for name, c in pairs(cases) do
    it(name, function() assert.is_true(autograd.gradcheck(c[1], c[2]())) end)
  end
  for name in pairs(cases) do
    it(name .. " gradgradcheck", function()
      assert.is_true(autograd.gradgradcheck(cases[name][1], cases[name][2]()))
    end)
  end
end)

describe("lucid.linalg shapes and options", function()
  it("qr modes", function()
    local a = lucid.randn({2, 5, 3}, {dtype = "float64"})
    local q, r = LA.qr(a, "complete")
    assert.same({2, 5, 5}, q.shape)
    assert.same({2, 5, 3}, r.shape)
    assert.is_true(lucid.allclose(q:matmul(r), a, 1e-9, 1e-9))
    q, r = LA.qr(a, {mode = "r"})
    assert.same({2, 5, 0}, q.shape)
    assert.same({2, 3, 3}, r.shape)
  end)
  it("svd full_matrices (the default)", function()
    local a = lucid.randn({3, 5}, {dtype = "float64"})
    local u, s, vh = LA.svd(a)
    assert.same({3, 3}, u.shape)
    assert.same({3}, s.shape)
    assert.same({5, 5}, vh.shape)
    assert.is_true(lucid.allclose(vh:matmul(vh:t()), eye(5, "float64"), 1e-9, 1e-9))
  end)
  it("eigh UPLO reads one triangle", function()
    local a = T({{2, 100}, {1, 3}})
    local lo = LA.eigvalsh(a)
    local up = LA.eigvalsh(a, "U")
    assert.is_true(lucid.allclose(lo, LA.eigvalsh(T({{2, 1}, {1, 3}})), 1e-12, 1e-12))
    assert.is_true(lucid.allclose(up, LA.eigvalsh(T({{2, 100}, {100, 3}})), 1e-12, 1e-12))
  end)
  it("float32 stays float32, empty batches", function()
    local a = lucid.randn({0, 3, 3})
    assert.same({0, 3, 3}, LA.inv(a).shape)
    assert.equal("float32", LA.inv(lucid.eye(2, 2)).dtype)
    assert.same({0}, LA.det(a).shape)
    assert.same({3, 3}, LA.inv(lucid.eye(3, 3):expand(3, 3)).shape)
  end)
  it("non-contiguous and expanded inputs", function()
    local a = lucid.randn({3, 3}, {dtype = "float64"}) + eye(3, "float64") * 3
    assert.is_true(lucid.allclose(LA.inv(a:t()), LA.inv(a):t(), 1e-12, 1e-12))
    local e = a:unsqueeze(1):expand(4, 3, 3)
    assert.same({4}, LA.det(e).shape)
  end)
  it("singular matrices: slogdet gives sign 0, det 0", function()
    local s, l = LA.slogdet(lucid.zeros(2, 2))
    assert.equal(0, s:item())
    assert.equal(-math.huge, l:item())
    assert.equal(0, LA.det(lucid.zeros(2, 2)):item())
  end)
  it("det of a singular matrix has the adjugate as gradient; its value stays the LU's", function()
    local a = T({{1, 2, 3}, {2, 4, 6}, {1, 0, 1}}):requires_grad_()
    local d = LA.det(a)
    assert.equal(0, d:item())
    d:backward()
    -- adj(A)^T: the cofactors of A
    local cof = T({{4, 4, -4}, {-2, -2, 2}, {0, 0, 0}})
    assert.is_true(lucid.allclose(a.grad, cof, 0, 1e-12))
    local b = T({{1, 2}, {2, 4}}):requires_grad_()
    LA.det(b):backward()
    assert.is_true(lucid.allclose(b.grad, T({{4, -2}, {-2, 1}}), 0, 1e-12))
    -- rank n - 2: the adjugate is zero
    local c = T({{1, 2, 3}, {2, 4, 6}, {3, 6, 9}}):requires_grad_()
    LA.det(c):backward()
    assert.is_true(lucid.allclose(c.grad, lucid.zeros_like(c), 0, 1e-12))
  end)
  it("svd's values alone, at repeated singular values and eigenvalues: finite gradients", function()
    local a = eye(3, "float64"):requires_grad_()
    local _, s = LA.svd(a)
    s:sum():backward()
    assert.is_true(lucid.allclose(a.grad, eye(3, "float64"), 0, 1e-12))
    local b = eye(3, "float64"):requires_grad_()
    local l = LA.eigh(b)
    l:sum():backward()
    assert.is_true(lucid.allclose(b.grad, eye(3, "float64"), 0, 1e-12))
  end)
end)

describe("lucid.linalg errors", function()
  local function err(pat, f, ...)
    local ok, msg = pcall(f, ...)
    assert.is_false(ok)
    assert.truthy(tostring(msg):find(pat, 1, true), tostring(msg))
  end
  it("numerical failures name the matrix of the batch", function()
    local b = lucid.stack({lucid.eye(2, 2), lucid.Tensor({{1, 2}, {2, 1}}), lucid.eye(2, 2)})
    err("lucid.linalg.cholesky: the input is not positive-definite (matrix 2 of 3 in the batch: leading minor of order 2 is not positive)", LA.cholesky, b)
    err("lucid.linalg.inv: the input is singular", LA.inv, lucid.zeros(3, 3))
    err("lucid.linalg.solve: the input A is singular", LA.solve, lucid.zeros(2, 2), lucid.ones(2))
    -- the runtime stays usable
    assert.same({2, 2}, LA.inv(lucid.eye(2, 2)).shape)
  end)
  it("shapes and dtypes", function()
    err("lucid.linalg.inv: input must be a batch of square matrices, got 3x2", LA.inv, lucid.zeros(3, 2))
    err("lucid.linalg.det: input must have at least 2 dimensions, got 1", LA.det, lucid.zeros(3))
    err("expected a float32 or float64 input, got int64", LA.inv, lucid.eye(2, 2, {dtype = "int64"}))
    err("lucid.linalg.qr: argument 2 (mode)", LA.qr, lucid.zeros(2, 2), "full")
    err("lucid.linalg.eigh: argument 2 (UPLO)", LA.eigh, lucid.zeros(2, 2), "X")
    err("lucid.linalg.cross: dimension", LA.cross, lucid.zeros(2, 4), lucid.zeros(2, 4))
    err("lucid.linalg.solve", LA.solve, lucid.eye(3, 3), lucid.ones(2, 2))
    err("lucid.linalg.matrix_norm: ord", LA.matrix_norm, lucid.zeros(2, 2), 3)
  end)
  it("qr mode='r' has no gradient", function()
    local a = lucid.randn({3, 3}, {dtype = "float64"}):requires_grad_()
    local _, r = LA.qr(a, "r")
    err("only defined for mode='reduced'", function() r:sum():backward() end)
  end)
end)
