#!/usr/bin/env python3
"""PyTorch's times for bench/bench_attention's shapes (CLIP ViT-B/16 sized: batch 8, seq 197,
width 768, 12 heads, MLP 3072), float32, the threads and clock of scripts/bench_torch_common.py, best of 5 after a warm-up, in ms:
MultiheadAttention forward (no grad) and forward+backward, Linear 768->3072 forward+backward,
LayerNorm(768) forward+backward, one pre-norm TransformerEncoderLayer (gelu, eval) forward+backward.
--machine prints just the numbers on one line (read by bench_attention)."""
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_torch_common as bc  # noqa: E402

bc.setup()
torch.manual_seed(1)
N, L, E, H, FF = 8, 197, 768, 12, 3072
x = torch.randn(N, L, E, requires_grad=True)
gy = torch.randn(N, L, E)
mha = nn.MultiheadAttention(E, H, batch_first=True)
lin = nn.Linear(E, FF)
gl = torch.randn(N, L, FF)
ln = nn.LayerNorm(E)
tel = nn.TransformerEncoderLayer(E, H, FF, dropout=0.0, activation="gelu", batch_first=True, norm_first=True).eval()


def best(fn, reps=5):
    return bc.best(fn, reps) * 1e3


def mha_f():
    with torch.no_grad():
        mha(x, x, x, need_weights=False)


def fb(fn, g):
    def run():
        y = fn()
        y.backward(g)
        x.grad = None
    return run


times = [best(mha_f), best(fb(lambda: mha(x, x, x, need_weights=False)[0], gy)), best(fb(lambda: lin(x), gl)),
         best(fb(lambda: ln(x), gy)), best(fb(lambda: tel(x), gy))]
if "--machine" in sys.argv:
    print(" ".join(f"{t:.3f}" for t in times))
else:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for name, t in zip(["mha fwd", "mha fwd+bwd", "linear fwd+bwd", "layernorm fwd+bwd", "encoder layer fwd+bwd"], times):
        print(f"{name:24s} {t:8.2f} ms")
