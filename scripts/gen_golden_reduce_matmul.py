#!/usr/bin/env python3
"""Writes tests/data/golden_reduce_matmul.safetensors: PyTorch reference values for the
reductions, softmax family and matmul (tests/test_reduce.c, tests/test_matmul.c).

For each op NAME: NAME.y is the output and NAME.gx (NAME.ga / NAME.gb for matmul) the input
gradients for the fixed upstream gradient NAME.gy.  All float32.  Run with torch 2.x:
    python3 scripts/gen_golden_reduce_matmul.py
"""
import os

import torch
from safetensors.torch import save_file

torch.manual_seed(20240611)
out = {}


def put(name, t):
    out[name] = t.detach().to(torch.float32).contiguous().clone()


def golden_unary(name, x, fn):
    x = x.detach().clone().requires_grad_(True)
    y = fn(x)
    gy = torch.randn(y.shape)
    (y * gy).sum().backward()
    put(name + ".y", y)
    put(name + ".gy", gy)
    put(name + ".gx", x.grad)


# ---- reductions and softmax on one [4, 6, 5] input ------------------------------------------
x = torch.randn(4, 6, 5)
put("red.x", x)
golden_unary("sum_1", x, lambda t: t.sum(1))
golden_unary("sum_02k", x, lambda t: t.sum((0, 2), keepdim=True))
golden_unary("mean_m1", x, lambda t: t.mean(-1))
golden_unary("var_1", x, lambda t: t.var(1))
golden_unary("var_02_c0", x, lambda t: t.var((0, 2), correction=0, keepdim=True))
golden_unary("std_all", x, lambda t: t.std())
golden_unary("max_dim1", x, lambda t: t.max(1).values)
golden_unary("min_dim2", x, lambda t: t.min(2, keepdim=True).values)
golden_unary("amax_all", x, lambda t: t.max())
golden_unary("softmax_m1", x, lambda t: torch.softmax(t, -1))
golden_unary("softmax_1", x, lambda t: torch.softmax(t, 1))
golden_unary("log_softmax_m1", x, lambda t: torch.log_softmax(t, -1))
golden_unary("log_softmax_0", x, lambda t: torch.log_softmax(t, 0))
golden_unary("logsumexp_12", x, lambda t: torch.logsumexp(t, (1, 2)))
golden_unary("softmax_t", x, lambda t: torch.softmax(t.transpose(0, 2), -1))
put("max_dim1.idx", x.max(1).indices)
put("argmax_2", x.argmax(2))
put("argmin_all", x.argmin())

# attention-like block: rows of 197 with a wide range
att = torch.randn(3, 197) * 6
put("att.x", att)
put("att.softmax", torch.softmax(att, -1))
put("att.log_softmax", torch.log_softmax(att, -1))

# ---- matmul in every rank combination ---------------------------------------------------------
mm_cases = {
    "mm_1x1": ((5,), (5,)),
    "mm_2x1": ((3, 5), (5,)),
    "mm_1x2": ((5,), (5, 4)),
    "mm_2x2": ((3, 5), (5, 4)),
    "mm_3x1": ((2, 3, 5), (5,)),
    "mm_1x3": ((5,), (2, 5, 4)),
    "mm_3x2": ((2, 3, 5), (5, 4)),
    "mm_2x3": ((3, 5), (2, 5, 4)),
    "mm_bcast": ((2, 1, 3, 4), (5, 4, 6)),
}
for name, (sa, sb) in mm_cases.items():
    a = torch.randn(*sa, requires_grad=True)
    b = torch.randn(*sb, requires_grad=True)
    y = torch.matmul(a, b)
    gy = torch.randn(y.shape)
    (y * gy).sum().backward()
    put(name + ".a", a)
    put(name + ".b", b)
    put(name + ".y", y)
    put(name + ".gy", gy)
    put(name + ".ga", a.grad)
    put(name + ".gb", b.grad)

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data",
                    "golden_reduce_matmul.safetensors")
save_file(out, path, metadata={"generator": "scripts/gen_golden_reduce_matmul.py",
                               "torch": torch.__version__})
print("wrote", os.path.normpath(path), len(out), "tensors,", os.path.getsize(path), "bytes")
