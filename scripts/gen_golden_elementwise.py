#!/usr/bin/env python3
"""Writes tests/data/golden_elementwise.safetensors: float32 inputs, outputs and input gradients
(for a stored upstream gradient) of aqa's elementwise ops, computed by PyTorch on the CPU.

Run from the repository root:  python3 scripts/gen_golden_elementwise.py
Names:  unary.x, unary.xpos (positive inputs for log/sqrt/rsqrt/log1p/pow),
        unary.<op>.{out,gy,grad};  binary.{a,b,apos}, binary.<op>.{out,gy,grad_a,grad_b}
        (a: [2,3,4], b: [3,1], broadcast).  tests/test_elementwise.c reads them."""
import os
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(20261126)
out = {}

x = torch.randn(4, 5) * 2.0
x[0, 0] = 0.0          # the kinks of relu/abs/sign at 0 (same gradient in every torch version)
x[0, 1] = -0.5
x[0, 2] = 0.8
# clamp's bounds are chosen off the sample values: the gradient exactly at a bound changed between
# torch versions (1.13: 1, inclusive; recent 2.x: 0); aqa keeps 1 (tests/test_elementwise.c).
xpos = x.abs() + 0.1
out["unary.x"] = x
out["unary.xpos"] = xpos

unary = {
    "neg": (torch.neg, x), "exp": (torch.exp, x), "log": (torch.log, xpos),
    "sqrt": (torch.sqrt, xpos), "rsqrt": (torch.rsqrt, xpos), "abs": (torch.abs, x),
    "tanh": (torch.tanh, x), "sigmoid": (torch.sigmoid, x), "relu": (torch.relu, x),
    "gelu": (F.gelu, x), "gelu_tanh": (lambda t: F.gelu(t, approximate="tanh"), x),
    "quick_gelu": (lambda t: t * torch.sigmoid(1.702 * t), x), "log1p": (torch.log1p, xpos),
    "softplus": (F.softplus, x), "square": (torch.square, x),
    "clamp": (lambda t: torch.clamp(t, -0.55, 0.75), x),
    "pow_scalar": (lambda t: torch.pow(t, 1.7), xpos),
    "mul_scalar": (lambda t: t * 1.5, x), "div_scalar": (lambda t: t / 3.0, x),
    "add_scalar": (lambda t: t + 0.25, x), "rsub_scalar": (lambda t: 2.0 - t, x),
}
for name, (fn, inp) in unary.items():
    t = inp.clone().requires_grad_(True)
    y = fn(t)
    gy = torch.randn_like(y)
    y.backward(gy)
    out[f"unary.{name}.out"] = y.detach()
    out[f"unary.{name}.gy"] = gy
    out[f"unary.{name}.grad"] = t.grad

a = torch.randn(2, 3, 4)
b = torch.randn(3, 1)
apos = a.abs() + 0.5
out["binary.a"] = a
out["binary.b"] = b
out["binary.apos"] = apos
binary = {
    "add": (torch.add, a), "sub": (torch.sub, a), "mul": (torch.mul, a), "div": (torch.div, a),
    "maximum": (torch.maximum, a), "minimum": (torch.minimum, a), "pow": (torch.pow, apos),
    "where": (lambda p, q: torch.where(p > q, p, q * 2.0), a),
}
for name, (fn, inp) in binary.items():
    ta = inp.clone().requires_grad_(True)
    tb = b.clone().requires_grad_(True)
    y = fn(ta, tb)
    gy = torch.randn_like(y)
    y.backward(gy)
    out[f"binary.{name}.out"] = y.detach()
    out[f"binary.{name}.gy"] = gy
    out[f"binary.{name}.grad_a"] = ta.grad
    out[f"binary.{name}.grad_b"] = tb.grad

out = {k: v.contiguous().float() for k, v in out.items()}
path = os.path.join("tests", "data", "golden_elementwise.safetensors")
save_file(out, path, metadata={"torch_version": torch.__version__,
                               "generator": "scripts/gen_golden_elementwise.py"})
print(f"wrote {path}: {len(out)} tensors, torch {torch.__version__}")
