#!/usr/bin/env python3
"""PyTorch's time for bench/bench_conv's layer: Conv3d on x [1, 192, 8, 28, 28], 3x3x3 kernel to 192
channels, padding 1, float32, the threads and clock of scripts/bench_torch_common.py; forward (no grad) and forward+backward, best
of 5 after a warm-up, in ms.  --machine prints just "forward_ms fwd_bwd_ms" (read by bench_conv)."""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_torch_common as bc  # noqa: E402

bc.setup()
torch.manual_seed(1)
x = torch.randn(1, 192, 8, 28, 28, requires_grad=True)
conv = torch.nn.Conv3d(192, 192, 3, padding=1)
gy = torch.randn(1, 192, 8, 28, 28)


def best(fn, reps=5):
    return bc.best(fn, reps) * 1e3


def fwd():
    with torch.no_grad():
        conv(x)


def fwd_bwd():
    y = conv(x)
    y.backward(gy)
    x.grad = None
    conv.zero_grad(set_to_none=True)


tf, tfb = best(fwd), best(fwd_bwd)
if "--machine" in sys.argv:
    print(f"{tf:.3f} {tfb:.3f}")
else:
    flops = 2.0 * 192 * 8 * 28 * 28 * 192 * 27
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, mkldnn {torch.backends.mkldnn.is_available()}")
    print(f"forward          {tf:8.1f} ms  {flops / tf * 1e-6:7.1f} GFLOP/s")
    print(f"forward+backward {tfb:8.1f} ms  {3 * flops / tfb * 1e-6:7.1f} GFLOP/s")
