#!/usr/bin/env python3
"""Golden file for examples/own_model.c (docs/writing-a-model.md): the same clip-feature scorer in
PyTorch, its weights, one batch, the scores, the loss and every parameter's gradient.

Writes tests/data/golden_own_model.safetensors with
  model.<state_dict key>     the weights (PyTorch's names: proj.0.weight, attn.bias, ...)
  input.x [B, N, C]          clip features; input.target [B] scores
  output.score [B], output.loss []
  grad.<state_dict key>      d loss / d parameter
Run: python3 scripts/gen_golden_own_model.py
"""
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

B, N, C, H = 8, 6, 8, 16


class ClipScorer(nn.Module):
    """Per-clip projection, attention pooling over clips, L2-normalised pooled feature, score."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Sequential(nn.Linear(C, H), nn.GELU())
        self.attn = nn.Linear(H, 1)
        self.head = nn.Linear(H, 1)

    def forward(self, x):
        h = self.proj(x)                                   # [B, N, H]
        a = torch.softmax(self.attn(h), dim=1)             # [B, N, 1] weights over clips
        v = F.normalize((a * h).sum(dim=1), dim=-1)        # [B, H]
        return self.head(v).squeeze(-1)                    # [B]


def loss_fn(score, target):
    """MSE plus a margin ranking term on pairs (first half against second half of the batch)."""
    half = score.shape[0] // 2
    sign = torch.sign(target[:half] - target[half:])
    return F.mse_loss(score, target) + 0.1 * F.margin_ranking_loss(score[:half], score[half:], sign, margin=0.5)


torch.manual_seed(0)
model = ClipScorer()
x = torch.randn(B, N, C)
target = torch.randn(B)
score = model(x)
loss = loss_fn(score, target)
loss.backward()

out = {f"model.{k}": v.detach().clone() for k, v in model.state_dict().items()}
out["input.x"] = x
out["input.target"] = target
out["output.score"] = score.detach().clone()
out["output.loss"] = loss.detach().clone()
for k, p in model.named_parameters():
    out[f"grad.{k}"] = p.grad.clone()
meta = {"generator": "scripts/gen_golden_own_model.py", "torch": torch.__version__}
path = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "golden_own_model.safetensors")
save_file({k: v.contiguous() for k, v in out.items()}, path, metadata=meta)
print("wrote", os.path.normpath(path), len(out), "tensors; loss", loss.item())
