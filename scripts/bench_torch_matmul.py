#!/usr/bin/env python3
"""PyTorch's GFLOP/s for bench/bench_matmul's float32 products C[m, n] = A[m, k] B[k, n] (torch.mm,
the threads and clock of scripts/bench_torch_common.py, best run after a warm-up, at least --min-s
seconds in all) and its 2-layer MLP step in ms.  --machine prints just the numbers on one line
(read by bench_matmul); --sizes takes the shapes as m,n,k;m,n,k;..."""
import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_torch_common as bc  # noqa: E402


def best_for(fn, min_s):
    """Best time of fn, repeated until min_s seconds have been spent (at least twice)."""
    fn()
    best, spent, n = 1e30, 0.0, 0
    while spent < min_s or n < 2:
        t0 = bc.clock()
        fn()
        t = bc.clock() - t0
        best, spent, n = min(best, t), spent + t, n + 1
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--machine", action="store_true")
    ap.add_argument("--sizes", default="256,256,256;1024,1024,1024;2048,2048,2048")
    ap.add_argument("--min-s", type=float, default=0.5)
    a = ap.parse_args()
    bc.setup()
    torch.manual_seed(1)
    out = []
    for spec in a.sizes.split(";"):
        m, n, k = (int(v) for v in spec.split(","))
        x, y = torch.randn(m, k), torch.randn(k, n)
        t = best_for(lambda: torch.mm(x, y), a.min_s)
        out.append(2.0 * m * n * k / t * 1e-9)
    w1 = (torch.randn(1024, 512) * 0.04).requires_grad_()
    w2 = (torch.randn(10, 1024) * 0.03).requires_grad_()
    xb, yb = torch.randn(256, 512), torch.randint(0, 10, (256,))

    def mlp():
        loss = F.cross_entropy(F.gelu(xb @ w1.t()) @ w2.t(), yb)
        loss.backward()
        w1.grad = w2.grad = None

    out.append(best_for(mlp, a.min_s) * 1e3)
    if a.machine:
        print(" ".join(f"{v:.4f}" for v in out))
    else:
        print(f"torch {torch.__version__}, {bc.threads()} threads: GFLOP/s " + " ".join(f"{v:.1f}" for v in out[:-1]) +
              f"; MLP step {out[-1]:.2f} ms")


if __name__ == "__main__":
    main()
