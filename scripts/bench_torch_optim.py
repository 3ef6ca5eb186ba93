#!/usr/bin/env python3
"""PyTorch's time for bench/bench_optim's case: one AdamW step (lr 1e-3, weight decay 1e-2, the
other arguments default) over 10 float32 tensors of 2^20 elements (10.5M parameters), with
gradients set, the threads and clock of scripts/bench_torch_common.py; best of 10 after 3 warm-up steps, in ms, for
foreach=False (the single-tensor loop, the CPU default), foreach=True (multi-tensor ops) and
fused=True (one kernel per tensor, when this torch supports it on the CPU; else -1).
--machine prints just the three numbers on one line (read by bench_optim)."""
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_torch_common as bc  # noqa: E402

bc.setup()
torch.manual_seed(0)
N_TENSORS, SIZE = 10, 1 << 20


def bench(**kw):
    params = [torch.randn(SIZE, requires_grad=True) for _ in range(N_TENSORS)]
    for p in params:
        p.grad = torch.randn(SIZE)
    try:
        opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-2, **kw)
        opt.step()
    except (RuntimeError, ValueError):
        return -1.0
    for _ in range(2):
        opt.step()
    best = 1e30
    for _ in range(10):
        t0 = bc.clock()
        opt.step()
        best = min(best, bc.clock() - t0)
    return best * 1e3


t = [bench(foreach=False), bench(foreach=True), bench(fused=True)]
if "--machine" in sys.argv:
    print(" ".join(f"{v:.4f}" for v in t))
else:
    print(f"torch {torch.__version__}, AdamW over {N_TENSORS} x {SIZE} float32, {bc.threads()} threads")
    for name, v in zip(("foreach=False", "foreach=True", "fused=True"), t):
        print(f"{name:16s} {v:8.2f} ms" if v >= 0 else f"{name:16s} unsupported")
