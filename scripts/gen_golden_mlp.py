#!/usr/bin/env python3
"""Golden file for the foundation's composite check: a 2-layer MLP with softmax cross-entropy.

Writes tests/data/golden_mlp.safetensors with the inputs, weights, logits, loss and the gradients
of every input, computed by PyTorch in float32 and float64.  tests/test_parity.c recomputes them
with aqa's ops and compares.  Run: python3 scripts/gen_golden_mlp.py
"""
import os

import torch
from safetensors.torch import save_file

torch.manual_seed(0)
out = {}
for dtype, tag in ((torch.float32, "f32"), (torch.float64, "f64")):
    x = torch.randn(8, 5, dtype=dtype, requires_grad=True)
    w1 = (torch.randn(16, 5, dtype=dtype) * 0.4).requires_grad_()
    b1 = (torch.randn(16, dtype=dtype) * 0.1).requires_grad_()
    w2 = (torch.randn(3, 16, dtype=dtype) * 0.4).requires_grad_()
    b2 = (torch.randn(3, dtype=dtype) * 0.1).requires_grad_()
    y = torch.tensor([0, 2, 1, 1, 0, 2, 2, 1])
    h = torch.nn.functional.gelu(x @ w1.t() + b1)
    logits = h @ w2.t() + b2
    loss = torch.nn.functional.cross_entropy(logits, y)
    loss.backward()
    for name, t in (("x", x), ("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2)):
        out[f"{tag}.{name}"] = t.detach().clone()
        out[f"{tag}.grad_{name}"] = t.grad.clone()
    out[f"{tag}.logits"] = logits.detach().clone()
    out[f"{tag}.loss"] = loss.detach().clone()
    out[f"{tag}.y"] = y
path = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "golden_mlp.safetensors")
save_file(out, path, metadata={"generator": "scripts/gen_golden_mlp.py", "torch": torch.__version__})
print("wrote", os.path.normpath(path))
