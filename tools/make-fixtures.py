#!/usr/bin/python3
"""Writes spec/fixtures/tensor_ops.lua: PyTorch's results for lucid's tensor ops.

usage: python3 tools/make-fixtures.py [OUT]        (`make fixtures`)

Needs PyTorch (Debian's python3-torch); re-runs itself under /usr/bin/python3 when the python3
on PATH has no torch. The specs never need torch: they read the committed Lua file.

Each case is
  { name = "sum_dim2_keepdim", fn = "sum", call = "method", args = {{t = 1}, 2, true, n = 3},
    inputs = { {dtype =, shape =, data = {flat, C order}, requires_grad = true}, ... },
    expected = { {dtype =, shape =, data =}, ... },         -- one entry per returned value
    w = {dtype =, shape =, data =}, grads = { {...} or false, ... } }   -- when differentiable
call: "method" (args[1]:fn(args[2..n])), "function" (lucid.fn(args...)) or "operator" (fn is
one of + - * / ^ unm). In args, {t = i} stands for inputs[i], {list = {i, j}} for a Lua list of
inputs, {opts = {...}} for an options table; nil entries are kept through n.
Every index and dim is 1-based, as Lua users see them (indices in inputs and expected too).
grads are d sum(out[1] * w) / d inputs[i] for the inputs with requires_grad (false otherwise).
Float results (values and gradients) are computed in float64 from the float32-representable
inputs, so they are the exact answer rounded once; the dtype stored is what PyTorch returns for
the real input dtypes.
"""
import math
import os
import sys

try:
    import torch
except ImportError:
    if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    sys.exit("make-fixtures: PyTorch is needed (apt-get install python3-torch)")

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "spec", "fixtures", "tensor_ops.lua")

torch.manual_seed(1234)
F32, F64, I32, I64, BOOL = torch.float32, torch.float64, torch.int32, torch.int64, torch.bool
DTYPE_NAME = {F32: "float32", F64: "float64", I32: "int32", I64: "int64", BOOL: "bool"}


# ------------------------------------------------------------------ inputs

def rnd(*shape, lo=None, scale=1.0, dtype=F32):
    """randn values with a short mantissa (multiples of 1/64): exactly representable in float32,
    and their products and small sums are exact too, so float32 kernels can match closely."""
    x = torch.round(torch.randn(tuple(shape), dtype=F64) * scale * 64) / 64
    if lo is not None:  # a positive domain: |x| + lo
        x = x.abs() + lo
    return x.to(dtype)


def ints(low, high, *shape, dtype=I64):
    return torch.randint(low, high, shape, dtype=dtype)


def mask(*shape):
    return torch.rand(*shape) < 0.5


# ------------------------------------------------------------------ Lua argument markers

class T:  # inputs[i] (1-based)
    def __init__(self, i):
        self.i = i


class L:  # a Lua list of inputs
    def __init__(self, *idx):
        self.idx = idx


class O:  # an options table
    def __init__(self, **kw):
        self.kw = kw


# ------------------------------------------------------------------ serialisation

def lua_num(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if math.isnan(v):
        return "0/0"
    if math.isinf(v):
        return "math.huge" if v > 0 else "-math.huge"
    s = repr(float(v))
    return s


def lua_val(v):
    if v is None:
        return "nil"
    if isinstance(v, (bool, int, float)):
        return lua_num(v)
    if isinstance(v, str):
        return '"%s"' % v
    if isinstance(v, T):
        return "{t = %d}" % v.i
    if isinstance(v, L):
        return "{list = {%s}}" % ", ".join(str(i) for i in v.idx)
    if isinstance(v, O):
        return "{opts = {%s}}" % ", ".join("%s = %s" % (k, lua_val(x)) for k, x in v.kw.items())
    if isinstance(v, (list, tuple)):
        return "{%s}" % ", ".join(lua_val(x) for x in v)
    raise TypeError(v)


def lua_tensor(t, dtype=None, extra=""):
    """dtype: the dtype to record (the values may come from the float64 reference run)."""
    dtype = dtype or t.dtype
    flat = t.detach().reshape(-1).tolist()
    if dtype == BOOL:
        data = ", ".join("true" if x else "false" for x in flat)
    elif dtype in (I32, I64):
        data = ", ".join(str(int(x)) for x in flat)
    else:
        data = ", ".join(lua_num(float(x)) for x in flat)
    shape = ", ".join(str(s) for s in t.shape)
    return '{dtype = "%s", shape = {%s}, data = {%s}%s}' % (DTYPE_NAME[dtype], shape, data, extra)


# ------------------------------------------------------------------ cases

CASES = []


def case(name, fn, args, inputs, torch_fn, call="method", grad=None, index_outputs=()):
    """torch_fn(*inputs) -> a tensor or a tuple. grad: indices (0-based) of the inputs to
    differentiate; default: every floating input, when the first output is floating.
    index_outputs: outputs holding 0-based indices, stored 1-based."""
    if any(c["name"] == name for c in CASES):
        raise ValueError("duplicate case " + name)
    real = torch_fn(*inputs)
    real = real if isinstance(real, tuple) else (real,)
    # the float64 reference run
    ref_in = [x.to(F64) if x.is_floating_point() else x for x in inputs]
    if grad is None:
        grad = [i for i, x in enumerate(inputs) if x.is_floating_point()] \
            if real[0].is_floating_point() else []
    for i in grad:
        ref_in[i] = ref_in[i].clone().requires_grad_(True)
    ref = torch_fn(*ref_in)
    ref = ref if isinstance(ref, tuple) else (ref,)
    expected = []
    for k, (r, f) in enumerate(zip(real, ref)):
        assert r.shape == f.shape, name
        if k in index_outputs:
            expected.append(lua_tensor(r + 1))
        elif r.is_floating_point():
            expected.append(lua_tensor(f, r.dtype))
        else:
            assert torch.equal(r, f.to(r.dtype)), name
            expected.append(lua_tensor(r))
    c = {"name": name, "fn": fn, "call": call, "args": args, "expected": expected}
    ins = []
    for i, x in enumerate(inputs):
        ins.append(lua_tensor(x, extra=", requires_grad = true" if i in grad else ""))
    c["inputs"] = ins
    if grad:
        w = rnd(*real[0].shape)
        loss = (ref[0] * w.to(F64)).sum()
        gs = torch.autograd.grad(loss, [ref_in[i] for i in grad], allow_unused=True)
        grads = ["false"] * len(inputs)
        for i, g in zip(grad, gs):
            grads[i] = lua_tensor(g if g is not None else torch.zeros_like(ref_in[i]),
                                  inputs[i].dtype)
        c["w"] = lua_tensor(w, real[0].dtype)
        c["grads"] = grads
    CASES.append(c)


def margs(n_tensors, *rest):
    return [T(i) for i in range(1, n_tensors + 1)] + list(rest)


# -- unary
UNARY = {
    "neg": (torch.neg, None), "abs": (torch.abs, None), "sign": (torch.sign, None),
    "exp": (torch.exp, None), "log": (torch.log, 0.25), "log1p": (torch.log1p, 0.0),
    "sqrt": (torch.sqrt, 0.25), "rsqrt": (torch.rsqrt, 0.25), "sin": (torch.sin, None),
    "cos": (torch.cos, None), "tanh": (torch.tanh, None), "sigmoid": (torch.sigmoid, None),
    "relu": (torch.relu, None), "floor": (torch.floor, None), "ceil": (torch.ceil, None),
    "round": (torch.round, None),
}
for op, (f, lo) in UNARY.items():
    scale = 2.0 if op in ("floor", "ceil", "round", "sign", "relu", "abs") else 1.0
    x = rnd(2, 3, lo=lo, scale=scale)
    if op in ("floor", "ceil", "round"):
        x = x + 1 / 128  # an odd multiple of 1/128: never an integer or a half (no ties)
    if op in ("abs", "sign", "relu"):
        x = torch.where(x == 0, torch.full_like(x, 0.5), x)  # keep clear of the kink
    case(op, op, margs(1), [x], f)
    case(op + "_fn", op, margs(1), [x], f, call="function")
    case(op + "_f64", op, margs(1), [x.to(F64)], f)
    if op in ("exp", "sin", "tanh", "sqrt", "neg", "abs"):
        case(op + "_3d", op, margs(1), [rnd(2, 2, 3, lo=lo)], f)
        xt = rnd(3, 4, lo=lo)
        case(op + "_noncontig", op, margs(1), [xt], lambda a, f=f: f(a.t()))  # lua side: t()
        CASES[-1]["pre"] = "t"
case("neg_int64", "neg", margs(1), [ints(-5, 5, 2, 3)], torch.neg)
case("abs_int32", "abs", margs(1), [ints(-5, 5, 2, 3, dtype=I32)], torch.abs)
case("exp_int64", "exp", margs(1), [ints(-3, 3, 4)], torch.exp)
case("logical_not", "logical_not", margs(1), [mask(2, 3)], torch.logical_not)
case("unm_operator", "unm", margs(1), [rnd(2, 3)], torch.neg, call="operator")

# -- binary
BINARY = {
    "add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div, "pow": torch.pow,
    "maximum": torch.maximum, "minimum": torch.minimum,
}
BROADCAST = [("same", (2, 3), (2, 3)), ("row", (2, 3), (3,)), ("col", (3, 1), (1, 4)),
             ("3d", (2, 1, 3), (4, 1)), ("scalar0d", (2, 3), ())]
for op, f in BINARY.items():
    for tag, sa, sb in BROADCAST:
        a = rnd(*sa, lo=0.5 if op == "pow" else None)
        b = rnd(*sb, lo=0.5 if op == "div" else None) if op != "pow" else rnd(*sb, scale=0.5)
        if op == "div":
            b = b * torch.where(torch.rand(sb) < 0.5, -1.0, 1.0)
        case("%s_%s" % (op, tag), op, margs(2), [a, b], f)
    a, b = rnd(2, 3, lo=0.5), rnd(2, 3, lo=0.5)
    case(op + "_fn", op, margs(2), [a, b], f, call="function")
    case(op + "_f64", op, margs(2), [a.to(F64), b.to(F64)], f)
    case(op + "_scalar", op, [T(1), 1.5], [a], lambda x, f=f: f(x, torch.tensor(1.5)))
    case(op + "_scalar_left", op, [2.5, T(1)], [a], lambda x, f=f: f(torch.tensor(2.5), x),
         call="function")
case("add_int32", "add", margs(2), [ints(-9, 9, 2, 3, dtype=I32), ints(-9, 9, 3, dtype=I32)],
     torch.add)
case("add_int64_float32", "add", margs(2), [ints(-9, 9, 2, 3), rnd(2, 3)], torch.add)
case("add_float32_float64", "add", margs(2), [rnd(2, 3), rnd(3, dtype=F64)], torch.add)
case("mul_int64_scalar", "mul", [T(1), 3], [ints(-9, 9, 2, 3)], lambda x: x * 3)
case("div_int64", "div", margs(2), [ints(-9, 9, 2, 3), ints(1, 5, 2, 3)], torch.div)
case("add_bool_int64", "add", margs(2), [mask(2, 3), ints(0, 5, 3)], torch.add)
for sym, f in (("+", torch.add), ("-", torch.sub), ("*", torch.mul), ("/", torch.div)):
    a, b = rnd(2, 3), rnd(3, lo=0.5)
    case("operator_%s" % {"+": "add", "-": "sub", "*": "mul", "/": "div"}[sym], sym, margs(2),
         [a, b], f, call="operator")
    case("operator_%s_scalar_left" % {"+": "add", "-": "sub", "*": "mul", "/": "div"}[sym], sym,
         [2.0, T(1)], [b], lambda x, f=f: f(torch.tensor(2.0), x), call="operator")
    case("operator_%s_scalar_right" % {"+": "add", "-": "sub", "*": "mul", "/": "div"}[sym], sym,
         [T(1), 2.0], [a], lambda x, f=f: f(x, torch.tensor(2.0)), call="operator")
case("operator_pow", "^", margs(2), [rnd(2, 3, lo=0.5), rnd(2, 3, scale=0.5)], torch.pow,
     call="operator")
case("operator_pow_scalar", "^", [T(1), 2], [rnd(2, 3)], lambda x: x ** 2, call="operator")

for op in ("eq", "ne", "lt", "le", "gt", "ge"):
    f = getattr(torch, op)
    a = rnd(3, 4, scale=0.05)  # small values: many exact ties
    case(op, op, margs(2), [a, rnd(3, 4, scale=0.05)], f)
    case(op + "_broadcast", op, margs(2), [a, rnd(4, scale=0.05)], f)
    case(op + "_scalar", op, [T(1), 0.0], [a], lambda x, f=f: f(x, 0.0))
    case(op + "_int64", op, margs(2), [ints(0, 3, 2, 3), ints(0, 3, 3)], f)
for op in ("logical_and", "logical_or", "logical_xor"):
    f = getattr(torch, op)
    case(op, op, margs(2), [mask(2, 3), mask(2, 3)], f)
    case(op + "_broadcast", op, margs(2), [mask(3, 1), mask(4)], f)

# -- clamp, where
x = rnd(3, 4)
# bounds are odd multiples of 1/256 while x is on a 1/64 grid: no element sits on a bound
LO, HI = -0.49609375, 0.50390625
case("clamp", "clamp", [T(1), LO, HI], [x], lambda a: torch.clamp(a, LO, HI))
case("clamp_min_only", "clamp", [T(1), -0.25390625, None], [x],
     lambda a: torch.clamp(a, min=-0.25390625))
case("clamp_max_only", "clamp", [T(1), None, 0.25390625], [x],
     lambda a: torch.clamp(a, max=0.25390625))
case("clamp_opts", "clamp", [T(1), O(min=-1.00390625, max=0.75390625)], [x],
     lambda a: torch.clamp(a, -1.00390625, 0.75390625))
case("clamp_fn", "clamp", [T(1), LO, HI], [x], lambda a: torch.clamp(a, LO, HI),
     call="function")
case("clamp_int64", "clamp", [T(1), -2, 3], [ints(-9, 9, 3, 4)], lambda a: torch.clamp(a, -2, 3))
case("where", "where", margs(3), [mask(3, 4), rnd(3, 4), rnd(3, 4)], torch.where,
     call="function")
case("where_broadcast", "where", margs(3), [mask(3, 1), rnd(1, 4), rnd(3, 4)], torch.where,
     call="function")
case("where_int64", "where", margs(3), [mask(2, 3), ints(0, 9, 2, 3), ints(0, 9, 2, 3)],
     torch.where, call="function")

# -- reductions
X3 = rnd(2, 3, 4)
# distinct absolute values, no zero: amax/amin/inf-norm have a unique winner (ties split
# gradients in PyTorch)
XD = ((torch.randperm(24) + 1).to(F64) / 8 * torch.where(torch.rand(24) < 0.5, -1.0, 1.0)
      ).to(F32).reshape(2, 3, 4)
XP = rnd(2, 3, 4, lo=0.5, scale=0.5) * torch.where(torch.rand(2, 3, 4) < 0.3, -1.0, 1.0)
REDUCE = {
    "sum": (torch.sum, X3), "mean": (torch.mean, X3), "prod": (torch.prod, XP),
    "amax": (torch.amax, XD), "amin": (torch.amin, XD), "var": (torch.var, X3),
    "std": (torch.std, X3), "norm": (None, X3), "logsumexp": (torch.logsumexp, X3),
}


def reducer(op, dim=None, keepdim=False, **kw):
    def f(x):
        if op == "norm":
            p = kw.get("p", 2)
            return torch.linalg.vector_norm(x, p, dim=dim, keepdim=keepdim)
        if op in ("var", "std"):
            return getattr(torch, op)(x, dim=dim, keepdim=keepdim, **kw)
        if dim is None:
            return getattr(torch, op)(x, dim=tuple(range(x.dim()))) if op in \
                ("amax", "amin", "logsumexp") else getattr(torch, op)(x)
        if op == "prod":
            return torch.prod(x, dim, keepdim)
        return getattr(torch, op)(x, dim=dim, keepdim=keepdim)
    return f


def lua_dim(d):
    return [x + 1 for x in d] if isinstance(d, tuple) else d + 1 if d >= 0 else d


for op, (_, x) in REDUCE.items():
    if op != "logsumexp":
        case(op + "_all", op, [T(1)], [x], reducer(op))
        case(op + "_all_fn", op, [T(1)], [x], reducer(op), call="function")
    for d in (0, 1, 2, -1) + (((0, 2),) if op != "prod" else ()):
        for keep in (False, True):
            tag = "m".join(str(v) for v in lua_dim(d)) if isinstance(d, tuple) else str(lua_dim(d))
            name = "%s_dim%s%s" % (op, tag.replace("-", "neg"), "_keepdim" if keep else "")
            extra = ([2] if op == "norm" else [])
            case(name, op, [T(1)] + extra + [lua_dim(d), keep], [x], reducer(op, d, keep))
    case(op + "_opts", op, [T(1), O(dim=2, keepdim=True)], [x], reducer(op, 1, True))
case("sum_f64", "sum", [T(1), 2], [X3.to(F64)], reducer("sum", 1))
case("sum_int64", "sum", [T(1)], [ints(-9, 9, 3, 4)], torch.sum)
case("sum_int32_dim", "sum", [T(1), 1], [ints(-9, 9, 3, 4, dtype=I32)], lambda a: a.sum(0))
case("sum_bool", "sum", [T(1)], [mask(3, 4)], torch.sum)
case("prod_int64", "prod", [T(1), 2], [ints(-3, 4, 3, 4)], lambda a: a.prod(1))
case("amax_int64", "amax", [T(1), 2], [ints(-9, 9, 3, 4)], lambda a: a.amax(1))
case("var_unbiased_false", "var", [T(1), O(dim=2, unbiased=False)], [X3],
     reducer("var", 1, unbiased=False))
case("std_correction0", "std", [T(1), O(dim=3, correction=0)], [X3],
     reducer("std", 2, correction=0))
case("var_all_unbiased_false", "var", [T(1), O(unbiased=False)], [X3],
     lambda a: torch.var(a, unbiased=False))
case("norm_p1", "norm", [T(1), 1], [X3], reducer("norm", p=1))
case("norm_p1_dim2", "norm", [T(1), 1, 2], [X3], reducer("norm", 1, p=1))
case("norm_inf_dim3", "norm", [T(1), math.inf, 3, True], [XD], reducer("norm", 2, True, p=math.inf))
case("norm_p3_dim1", "norm", [T(1), 3, 1], [X3], reducer("norm", 0, p=3))
case("logsumexp_2d", "logsumexp", [T(1), 2], [rnd(3, 5, scale=3)], lambda a: a.logsumexp(1))
case("all", "all", [T(1)], [mask(3, 4)], torch.all)
case("all_dim", "all", [T(1), 2], [torch.rand(3, 4) < 0.8], lambda a: a.all(1))
case("any", "any", [T(1)], [torch.rand(3, 4) < 0.1], torch.any)
case("any_dim_keepdim", "any", [T(1), 1, True], [torch.rand(3, 4) < 0.2],
     lambda a: a.any(0, keepdim=True))

# -- max/min (values, indices), argmax/argmin
XU = (torch.randperm(24).reshape(2, 3, 4).to(F64) / 8 - 1.5).to(F32)  # distinct: no ties
for op in ("max", "min"):
    f = getattr(torch, op)
    case(op + "_all", op, [T(1)], [XU], f)
    for d in (0, 1, 2, -1):
        for keep in (False, True):
            case("%s_dim%s%s" % (op, str(lua_dim(d)).replace("-", "neg"),
                                  "_keepdim" if keep else ""),
                 op, [T(1), lua_dim(d), keep], [XU],
                 lambda a, f=f, d=d, keep=keep: tuple(f(a, d, keep)), index_outputs=(1,))
    case(op + "_int64_dim", op, [T(1), 2], [torch.randperm(12).reshape(3, 4)],
         lambda a, f=f: tuple(f(a, 1)), index_outputs=(1,))
for op in ("argmax", "argmin"):
    f = getattr(torch, op)
    case(op + "_all", op, [T(1)], [XU], f, index_outputs=(0,))
    case(op + "_all_fn", op, [T(1)], [XU], f, index_outputs=(0,), call="function")
    for d in (0, 1, 2, -1):
        for keep in (False, True):
            case("%s_dim%s%s" % (op, str(lua_dim(d)).replace("-", "neg"),
                                  "_keepdim" if keep else ""),
                 op, [T(1), lua_dim(d), keep], [XU],
                 lambda a, f=f, d=d, keep=keep: f(a, d, keep), index_outputs=(0,))

# -- linear algebra
MATMUL = [("1x1", (4,), (4,)), ("1x2", (3,), (3, 5)), ("2x1", (4, 3), (3,)),
          ("2x2", (4, 3), (3, 5)), ("3x3", (2, 4, 3), (2, 3, 5)), ("3x2", (2, 4, 3), (3, 5)),
          ("2x3", (4, 3), (2, 3, 5)), ("1x3", (3,), (2, 3, 5)), ("3x1", (2, 4, 3), (3,)),
          ("4x3_broadcast", (2, 1, 4, 3), (3, 3, 2)), ("4x4", (2, 2, 4, 3), (2, 2, 3, 5))]
for tag, sa, sb in MATMUL:
    case("matmul_" + tag, "matmul", margs(2), [rnd(*sa), rnd(*sb)], torch.matmul)
case("matmul_fn", "matmul", margs(2), [rnd(4, 3), rnd(3, 5)], torch.matmul, call="function")
case("matmul_f64", "matmul", margs(2), [rnd(4, 3, dtype=F64), rnd(3, 5, dtype=F64)],
     torch.matmul)
case("matmul_transposed", "matmul", margs(2), [rnd(3, 4), rnd(5, 3)],
     lambda a, b: torch.matmul(a.t(), b.t()))
CASES[-1]["pre"] = "t"  # both operands transposed (non-contiguous) on the Lua side
case("mm", "mm", margs(2), [rnd(4, 3), rnd(3, 5)], torch.mm)
case("bmm", "bmm", margs(2), [rnd(2, 4, 3), rnd(2, 3, 5)], torch.bmm)
case("dot", "dot", margs(2), [rnd(5), rnd(5)], torch.dot)
case("outer", "outer", margs(2), [rnd(4), rnd(3)], torch.outer)

# -- joining
A, B, C = rnd(2, 3), rnd(2, 3), rnd(2, 3)
for d in (0, 1, -1):
    case("cat_dim%s" % str(lua_dim(d)).replace("-", "neg"), "cat", [L(1, 2, 3), lua_dim(d)],
         [A, B, C], lambda *ts, d=d: torch.cat(ts, d), call="function")
case("cat_default", "cat", [L(1, 2)], [rnd(2, 3), rnd(4, 3)], lambda *ts: torch.cat(ts),
     call="function")
case("cat_sizes", "cat", [L(1, 2), 2], [rnd(2, 1), rnd(2, 4)], lambda *ts: torch.cat(ts, 1),
     call="function")
for d in (0, 1, 2, -1):
    case("stack_dim%s" % str(lua_dim(d)).replace("-", "neg"), "stack", [L(1, 2, 3), lua_dim(d)],
         [A, B, C], lambda *ts, d=d: torch.stack(ts, d), call="function")
case("stack_default", "stack", [L(1, 2)], [A, B], lambda *ts: torch.stack(ts), call="function")
case("cat_int64", "cat", [L(1, 2)], [ints(0, 9, 2), ints(0, 9, 3)], lambda *ts: torch.cat(ts),
     call="function")

# -- indexing (indices stored 1-based: index inputs are shifted when written, see below)
INDEX_INPUTS = []


def icase(name, fn, args, inputs, torch_fn, index_pos, **kw):
    """Like case(); inputs[index_pos] holds 0-based indices for torch, written 1-based."""
    case(name, fn, args, inputs, torch_fn, **kw)
    c = CASES[-1]
    c["inputs"][index_pos] = lua_tensor(inputs[index_pos] + 1)


X = rnd(4, 5)
icase("index_select_dim1", "index_select", [T(1), 1, T(2)], [X, torch.tensor([3, 0, 3, 1])],
      lambda a, i: a.index_select(0, i), 1)
icase("index_select_dim2", "index_select", [T(1), 2, T(2)], [X, torch.tensor([4, 2])],
      lambda a, i: a.index_select(1, i), 1)
icase("index_select_neg", "index_select", [T(1), -1, T(2)], [X, torch.tensor([0, 0, 1])],
      lambda a, i: a.index_select(-1, i), 1)
icase("index_select_int32", "index_select", [T(1), 1, T(2)],
      [X, torch.tensor([2, 1], dtype=I32)], lambda a, i: a.index_select(0, i), 1)
icase("index_select_fn", "index_select", [T(1), 2, T(2)], [X, torch.tensor([1, 3])],
      lambda a, i: torch.index_select(a, 1, i), 1, call="function")
icase("gather_dim1", "gather", [T(1), 1, T(2)], [X, ints(0, 4, 3, 5)],
      lambda a, i: a.gather(0, i), 1)
icase("gather_dim2", "gather", [T(1), 2, T(2)], [X, ints(0, 5, 4, 2)],
      lambda a, i: a.gather(1, i), 1)
icase("gather_int64_src", "gather", [T(1), 2, T(2)], [ints(0, 9, 3, 4), ints(0, 4, 3, 4)],
      lambda a, i: a.gather(1, i), 1)
# scatter: unique targets per column/row (duplicate targets are unordered in PyTorch)
SI0 = torch.stack([torch.randperm(4)[:3] for _ in range(5)], 1)  # (3, 5), dim 0, into 4 rows
SI1 = torch.stack([torch.randperm(5)[:2] for _ in range(4)], 0)  # (4, 2), dim 1, into 5 cols
icase("scatter_dim1", "scatter", [T(1), 1, T(2), T(3)], [X, SI0, rnd(3, 5)],
      lambda a, i, s: a.scatter(0, i, s), 1, grad=[0, 2])
icase("scatter_dim2", "scatter", [T(1), 2, T(2), T(3)], [X, SI1, rnd(4, 2)],
      lambda a, i, s: a.scatter(1, i, s), 1, grad=[0, 2])
icase("scatter_src_larger", "scatter", [T(1), 2, T(2), T(3)], [X, SI1, rnd(4, 3)],
      lambda a, i, s: a.scatter(1, i, s), 1, grad=[0])
icase("scatter_add_dim1", "scatter_add", [T(1), 1, T(2), T(3)], [X, ints(0, 4, 3, 5), rnd(3, 5)],
      lambda a, i, s: a.scatter_add(0, i, s), 1, grad=[0, 2])
case("masked_fill", "masked_fill", [T(1), T(2), -2.5], [X, mask(4, 5)],
     lambda a, m: a.masked_fill(m, -2.5))
case("masked_fill_broadcast", "masked_fill", [T(1), T(2), 7.0], [X, mask(5)],
     lambda a, m: a.masked_fill(m, 7.0))
case("masked_fill_int64", "masked_fill", [T(1), T(2), 0], [ints(1, 9, 3, 4), mask(3, 4)],
     lambda a, m: a.masked_fill(m, 0))
case("masked_select", "masked_select", [T(1), T(2)], [X, mask(4, 5)],
     lambda a, m: a.masked_select(m))


# -- unary ops added after the first fixtures (at the end, so the cases above keep their values)
for op, f in (("erf", torch.erf),):
    x = rnd(2, 3, scale=1.5)
    case(op, op, margs(1), [x], f)
    case(op + "_fn", op, margs(1), [x], f, call="function")
    case(op + "_f64", op, margs(1), [x.to(F64)], f)
    case(op + "_int64", op, margs(1), [ints(-3, 3, 4)], f)


# ------------------------------------------------------------------ output

def write(path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    out = ["-- generated by tools/make-fixtures.py from PyTorch %s: do not edit (make fixtures)"
           % torch.__version__, "return {"]
    for c in CASES:
        a = c["args"]
        fields = ['name = "%s"' % c["name"], 'fn = "%s"' % c["fn"], 'call = "%s"' % c["call"],
                  "args = {%s, n = %d}" % (", ".join(lua_val(v) for v in a), len(a))]
        if "pre" in c:
            fields.append('pre = "%s"' % c["pre"])
        fields.append("inputs = {%s}" % ", ".join(c["inputs"]))
        fields.append("expected = {%s}" % ", ".join(c["expected"]))
        if "grads" in c:
            fields.append("w = %s" % c["w"])
            fields.append("grads = {%s}" % ", ".join(c["grads"]))
        out.append("  {" + ",\n   ".join(fields) + "},")
    out.append("}")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    print("make-fixtures: wrote %d cases to %s" % (len(CASES), os.path.relpath(path)))


write(OUT)
