-- float16 and bfloat16 (docs/tensor.md "Half precision"): names, conversions bit for bit against
-- PyTorch 1.13 (spec/fixtures/half.lua, written by tools/fixtures/half.py), promotion, creation,
-- printing, views, and ops computed in float32 against PyTorch's half results.
local h = require "helpers"
local lucid = h.lucid
local raises = h.raises

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local FX = require("helpers").fixture("half")

local flat = require("helpers").flat

local function check(name, t, expected, rel, abs)
  local got, want = flat(t:tolist()), flat(expected)
  assert(#got == #want, ("%s: %d values, expected %d"):format(name, #got, #want))
  for i = 1, #got do
    local a, b = got[i], want[i]
    local ok
    if b ~= b then
      ok = a ~= a
    elseif b == math.huge or b == -math.huge then
      ok = a == b
    else
      ok = math.abs(a - b) <= abs + rel * math.abs(b)
    end
    assert(ok, ("%s: element %d is %.17g, expected %.17g"):format(name, i, a, b))
  end
end

-- one unit in the last place: float16 has 11 significant bits, bfloat16 8
local ULP = {float16 = 2 ^ -10, bfloat16 = 2 ^ -7}

describe("half precision", function()
  it("names the dtypes as torch does", function()
    assert.equal("float16", lucid.float16)
    assert.equal("float16", lucid.half)
    assert.equal("bfloat16", lucid.bfloat16)
    local t = lucid.tensor({1, 2})
    assert.equal("float16", t:half().dtype)
    assert.equal("bfloat16", t:bfloat16().dtype)
    assert.equal("float16", t:to("half").dtype)
    assert.equal("bfloat16", t:to("bfloat16").dtype)
    assert.equal("float16", t:to(lucid.float16).dtype)
    assert.equal("float16", t:type("float16"):type())
    assert.equal(2, t:half():element_size())
    assert.equal(2, t:bfloat16():element_size())
    assert.equal(4, t:element_size())
    assert.equal("float32", t:half():float().dtype)
  end)

  for _, dt in ipairs({"float16", "bfloat16"}) do
    it(dt .. ": float32 -> " .. dt .. " bit for bit as PyTorch (ties to even, overflow, subnormals, NaN)", function()
      for _, key in ipairs({"convert_" .. dt, "convert64_" .. dt}) do
        local c = FX[key]
        local src = lucid.tensor(c.input, {dtype = key:find("64") and "float64" or "float32"})
        local hv = src:to(dt)
        assert.equal(dt, hv.dtype)
        local bits = lucid.half_bits(hv):tolist()
        for i, want in ipairs(c.bits) do
          -- a NaN's sign does not survive the fixture's text (0/0): NaN patterns match without it
          local nan = c.input[i] ~= c.input[i]
          assert(bits[i] == want or nan and bits[i] % 0x8000 == want % 0x8000, ("%s: element %d (%.17g) -> 0x%04x, PyTorch 0x%04x"):format(
            key, i, c.input[i], bits[i], want))
        end
        -- and back, exactly
        local back = hv:float():tolist()
        for i, want in ipairs(c.back) do
          if want ~= want then
            assert(back[i] ~= back[i], key .. ": NaN expected at " .. i)
          else
            assert(back[i] == want, ("%s: back %d is %.17g, want %.17g"):format(key, i, back[i], want))
            if want == 0 then assert.equal(1 / want, 1 / back[i]) end -- the sign of zero
          end
        end
      end
    end)
  end

  it("converts to and from every dtype", function()
    local x = lucid.tensor({-2.75, 0, 1.5, 3})
    for _, dt in ipairs({"float16", "bfloat16"}) do
      local hv = x:to(dt)
      assert.same({-2.75, 0, 1.5, 3}, hv:tolist())
      assert.same({-2, 0, 1, 3}, hv:int():tolist())
      assert.same({-2, 0, 1, 3}, hv:long():tolist())
      assert.same({true, false, true, true}, hv:bool():tolist())
      assert.same({-2.75, 0, 1.5, 3}, hv:double():tolist())
      assert.same({1, 0, 1}, lucid.tensor({true, false, true}):to(dt):tolist())
      assert.same({7, -3}, lucid.tensor({7, -3}, {dtype = "int64"}):to(dt):tolist())
      assert.same({-2.75, 0, 1.5, 3}, hv:to(dt == "float16" and "bfloat16" or "float16"):tolist())
      -- copy_ between dtypes, both ways
      local dst = lucid.zeros(4, {dtype = dt})
      dst:copy_(x)
      assert.same({-2.75, 0, 1.5, 3}, dst:tolist())
      local f = lucid.zeros(4)
      f:copy_(dst)
      assert.same({-2.75, 0, 1.5, 3}, f:tolist())
      assert.equal(-2.75, hv[1]:item())
      assert.equal(3, hv:max():item())
    end
    assert.equal(65504, lucid.tensor({65504}):half():item())
    assert.equal(math.huge, lucid.tensor({65520}):half():item())
  end)

  it("promotes as torch.result_type", function()
    local h16 = lucid.ones(2, {dtype = "float16"})
    local b16 = lucid.ones(2, {dtype = "bfloat16"})
    local f32, f64 = lucid.ones(2), lucid.ones(2, {dtype = "float64"})
    local i64 = lucid.ones(2, {dtype = "int64"})
    local bool = lucid.ones(2, {dtype = "bool"})
    assert.equal("float16", (h16 + h16).dtype)
    assert.equal("float32", (h16 + f32).dtype)
    assert.equal("float64", (h16 + f64).dtype)
    assert.equal("float32", (h16 + b16).dtype)
    assert.equal("float32", (b16 * h16).dtype)
    assert.equal("float16", (h16 + i64).dtype)
    assert.equal("bfloat16", (i64 * b16).dtype)
    assert.equal("float16", (h16 + bool).dtype)
    assert.equal("float16", (h16 * 2.5).dtype)
    assert.equal("bfloat16", (3 - b16).dtype)
    assert.equal("float16", (i64 / h16).dtype)
    assert.equal("bool", lucid.lt(h16, f32).dtype)
    assert.equal("float16", h16:sum().dtype)
    assert.equal("bfloat16", b16:mean().dtype)
    assert.equal("int64", h16:argmax().dtype)
    assert.equal("float16", lucid.where(bool, h16, h16).dtype)
  end)

  it("creates half tensors", function()
    for _, dt in ipairs({"float16", "bfloat16"}) do
      assert.same({0, 0}, lucid.zeros(2, {dtype = dt}):tolist())
      assert.same({1, 1}, lucid.ones(2, {dtype = dt}):tolist())
      assert.same({0.5, 0.5}, lucid.full({2}, 0.5, {dtype = dt}):tolist())
      assert.same({0, 1, 2, 3}, lucid.arange(0, 4, {dtype = dt}):tolist())
      assert.same({{1, 0}, {0, 1}}, lucid.eye(2, {dtype = dt}):tolist())
      assert.equal(dt, lucid.zeros_like(lucid.ones(2, {dtype = dt})).dtype)
      lucid.manual_seed(3)
      local r = lucid.rand(1000, {dtype = dt})
      assert.equal(dt, r.dtype)
      assert(r:min():item() >= 0 and r:max():item() < 1)
      local n = lucid.randn(2000, {dtype = dt})
      assert.equal(dt, n.dtype)
      assert(math.abs(n:float():mean():item()) < 0.1)
      assert(math.abs(n:float():std():item() - 1) < 0.1)
      local u = lucid.zeros(100, {dtype = dt})
      u:uniform_(2, 3)
      assert(u:min():item() >= 2 and u:max():item() < 3)
      assert.equal(dt, lucid.tensor({1, 2}, {dtype = dt}).dtype)
    end
  end)

  it("prints like PyTorch, with the dtype", function()
    assert.equal("tensor([1., 2.5, -3.], dtype=float16)", tostring(lucid.tensor({1, 2.5, -3}):half()))
    assert.equal("tensor([inf, nan], dtype=bfloat16)",
      tostring(lucid.tensor({math.huge, 0 / 0}):bfloat16()))
    assert.equal("tensor(0.3333, dtype=float16)", tostring(lucid.tensor(1 / 3):half()))
  end)

  it("views, slices and contiguous copies keep half data", function()
    local x = lucid.arange(0, 12):reshape(3, 4):half()
    local t = x:t()
    assert.is_false(t:is_contiguous())
    assert.equal("float16", t.dtype)
    assert.same({{0, 4, 8}, {1, 5, 9}, {2, 6, 10}, {3, 7, 11}}, t:tolist())
    assert.same(t:tolist(), t:contiguous():tolist())
    assert.same({5, 6}, x[2][{{2, 3}}]:tolist())
    assert.same({{1, 5, 9}}, t:narrow(1, 2, 1):tolist())
    local e = lucid.tensor({1.5}):bfloat16():expand(3)
    assert.same({3, 3, 3}, (e + e):tolist())
    assert.same({0, 1, 2, 3}, x:flatten():narrow(1, 1, 4):tolist())
    assert.same({{0, 1}, {4, 5}, {8, 9}}, (t[{{1, 2}}]):t():tolist())
    assert.same({3, 2}, lucid.cat({x:narrow(2, 1, 1), x:narrow(2, 2, 1)}, 2).shape)
    assert.equal("float16", lucid.cat({x, x}).dtype)
  end)

  for _, dt in ipairs({"float16", "bfloat16"}) do
    it(dt .. ": ops against PyTorch's half results", function()
      local n = 0
      for name, c in pairs(FX) do
        if c.op and c.dtype == dt then
          n = n + 1
          local a, b = lucid.tensor(c.a):to(dt), lucid.tensor(c.b):to(dt)
          local r
          if c.op == "add" then r = a + b
          elseif c.op == "mul" then r = a * b
          elseif c.op == "div" then r = a / b
          elseif c.op == "sub_scalar" then r = a - 0.3
          elseif c.op == "exp" then r = a:exp()
          elseif c.op == "tanh" then r = a:tanh()
          elseif c.op == "sigmoid" then r = a:sigmoid()
          elseif c.op == "sqrt_abs" then r = a:abs():sqrt()
          elseif c.op == "relu" then r = a:relu()
          elseif c.op == "sum" then r = a:sum()
          elseif c.op == "sum_dim" then r = a:sum(2)
          elseif c.op == "mean" then r = a:mean()
          elseif c.op == "amax_dim" then r = a:amax(1)
          elseif c.op == "softmax" then r = lucid.nn.functional.softmax(a, 2)
          end
          assert(r, "no lucid form for " .. c.op)
          assert.equal(c.out_dtype, r.dtype, name)
          -- computed in float32 and rounded once: within one half ulp of PyTorch's
          check(name, r, c.out, ULP[dt], 1e-4)
        end
      end
      assert.equal(14, n)
      local c = FX["matmul_" .. dt]
      local a, b = lucid.tensor(c.a):to(dt), lucid.tensor(c.b):to(dt)
      local m = a:matmul(b)
      assert.equal(dt, m.dtype)
      check("matmul_" .. dt, m, c.out, 2 * ULP[dt], 2 * ULP[dt])
      local l = lucid.nn.functional.linear(a, b:t())
      assert.equal(dt, l.dtype)
      check("linear_" .. dt, l, c.out, 2 * ULP[dt], 2 * ULP[dt])
      local F = lucid.nn.functional
      c = FX["conv2d_" .. dt]
      local y = F.conv2d(lucid.tensor(c.x):to(dt), lucid.tensor(c.w):to(dt),
        lucid.tensor(c.bias):to(dt), {stride = {2, 1}, padding = 1})
      assert.equal(dt, y.dtype)
      assert.same(c.out_shape, y.shape)
      -- 27-term sums of O(1) values: a couple of ulps of the largest output
      check("conv2d_" .. dt, y, c.out, 2 * ULP[dt], 8 * ULP[dt])
      c = FX["linear_" .. dt]
      l = F.linear(lucid.tensor(c.x):to(dt), lucid.tensor(c.w):to(dt), lucid.tensor(c.bias):to(dt))
      assert.equal(dt, l.dtype)
      check("linear_bias_" .. dt, l, c.out, 2 * ULP[dt], 8 * ULP[dt])
    end)
  end

  it("hostile shapes and empty tensors stay errors or empty results", function()
    raises("lucid.zeros", function() return lucid.zeros(2 ^ 40, 2 ^ 40, {dtype = "float16"}) end)
    local e = lucid.zeros(0, 2 ^ 40, {dtype = "bfloat16"})
    assert.equal("bfloat16", (e + 1).dtype)
    assert.same({0, 2 ^ 40}, e:exp().shape)
    assert.same({0}, e:sum(2).shape)
    assert.equal(0, lucid.zeros(0, {dtype = "float16"}):sum():item())
    assert.same({}, lucid.zeros(0, {dtype = "float16"}):tolist())
    raises("half_bits", function() return lucid.half_bits(lucid.ones(2)) end)
  end)

  it("in-place ops store back into the half tensor", function()
    local x = lucid.tensor({1, 2, 3}):half()
    x:add_(lucid.tensor({0.5, 0.5, 0.5}))
    assert.equal("float16", x.dtype)
    assert.same({1.5, 2.5, 3.5}, x:tolist())
    x:mul_(2)
    assert.same({3, 5, 7}, x:tolist())
    x:fill_(0.1)
    assert.equal(lucid.tensor({0.1}):half():item(), x[1]:item())
  end)

  it("does not support autograd yet, with a clear error", function()
    raises("float16 tensors do not support autograd yet",
      function() return lucid.zeros(2, {dtype = "float16", requires_grad = true}) end)
    raises("bfloat16 tensors do not support autograd yet",
      function() return lucid.zeros(2, {dtype = "bfloat16"}):requires_grad_() end)
    local w = lucid.ones(2, {requires_grad = true})
    raises("float16 tensors do not support autograd yet",
      function() return w * lucid.ones(2, {dtype = "float16"}) end)
    -- a custom Function returning a half tensor from an input that requires grad
    local Half = lucid.autograd.Function{
      name = "ToHalf",
      forward = function(ctx, x) return x:detach():half() end,
      backward = function(ctx, g) return g:float() end,
    }
    raises("ToHalfBackward: float16 tensors do not support autograd yet", function() return Half(w) end)
    -- without grad mode (inference) the mixed op is fine
    local r = lucid.no_grad(function() return w * lucid.ones(2, {dtype = "float16"}) end)
    assert.equal("float32", r.dtype)
  end)

  it("safetensors: PyTorch's F16 / BF16 tensors load natively and save back as F16 / BF16", function()
    local sd = lucid.load(here .. "fixtures/io/torch_dtypes.safetensors")
    local hv, bv = sd["half"], sd["bf16"]
    assert.equal("float16", hv.dtype)
    assert.equal("bfloat16", bv.dtype)
    assert.same({1.0, -2.5, 65504.0, 6.103515625e-05, 0.0}, hv:tolist())
    assert.same({1.0, -3.0, 0.15625, 9.972771014849226e+19}, bv:tolist())
    local path = os.tmpname()
    lucid.save(path, {h = hv, b = bv, f = lucid.tensor({0.1, 0.2}):half():t()})
    local f = assert(io.open(path, "rb"))
    local bytes = f:read("a")
    f:close()
    assert(bytes:find('"h":{"dtype":"F16"', 1, true), "F16 entry")
    assert(bytes:find('"b":{"dtype":"BF16"', 1, true), "BF16 entry")
    local back = lucid.load(path)
    os.remove(path)
    assert.equal("float16", back.h.dtype)
    assert.equal("bfloat16", back.b.dtype)
    assert.same(lucid.half_bits(hv):tolist(), lucid.half_bits(back.h):tolist())
    assert.same(lucid.half_bits(bv):tolist(), lucid.half_bits(back.b):tolist())
    assert.same(lucid.tensor({0.1, 0.2}):half():tolist(), back.f:tolist())
  end)

  it("model:half() / model:to(\"bfloat16\") convert parameters and buffers; inference works", function()
    local build = dofile(here .. "../examples/fashion_model.lua")
    local function param_bytes(m)
      local n = 0
      for _, p in ipairs(m:parameters()) do n = n + p:numel() * p:element_size() end
      return n
    end
    lucid.manual_seed(7)
    local m = build()
    m:eval()
    local x = lucid.rand(3, 1, 28, 28)
    local ref = lucid.no_grad(function() return m(x) end)
    local full = param_bytes(m)
    assert.equal(1687336, full)
    for _, dt in ipairs({"float16", "bfloat16"}) do
      local mh = build()
      mh:load_state_dict(m:state_dict())
      mh:eval()
      local conv = dt == "float16" and mh:half() or mh:to(dt)
      assert.equal(mh, conv)
      assert.equal(full / 2, param_bytes(mh)) -- memory halves
      assert.equal(dt, mh.conv1.weight.dtype)
      assert.equal(dt, mh.batch_norm1.running_mean.dtype)
      assert.is_false(mh.fc1.weight.requires_grad)
      assert.equal("int64", mh.batch_norm1.num_batches_tracked.dtype)
      local y = mh(x:to(dt)) -- no grad mode needed: half parameters do not require grad
      assert.equal(dt, y.dtype)
      assert.same({3, 10}, y.shape)
      local err = (y:float() - ref):abs():max():item()
      assert(err < (dt == "float16" and 5e-3 or 3e-2), dt .. " logits off by " .. err)
      mh:float()
      assert.equal("float32", mh.fc1.weight.dtype)
      assert.is_true(mh.fc1.weight.requires_grad)
    end
    local s = lucid.nn.Sequential(lucid.nn.Linear(4, 3), lucid.nn.Dropout(0.5), lucid.nn.Softmax(2),
      lucid.nn.Flatten())
    s:eval()
    s:bfloat16()
    local p = s(lucid.rand(2, 4):bfloat16())
    assert.equal("bfloat16", p.dtype)
    check("softmax rows", p:float():sum(2), {1, 1}, 0, 2 ^ -6)
  end)
end)
