#!/usr/bin/env python3
"""Golden file for the losses AQA papers add to the usual ones (nn/loss.h): smooth L1, Huber,
margin ranking, triplet margin and cosine embedding -- PyTorch's values and the gradients of
every differentiable input.

Writes tests/data/golden_loss_ranking.safetensors.  Each case <name> has tensors
  <name>.in0, <name>.in1, <name>.in2   the differentiable inputs (as many as the loss takes)
  <name>.t     the target, when the loss has one (float32)
  <name>.g     the upstream gradient used for backward (ones for a scalar loss)
  <name>.out   the loss; <name>.gin<k> the gradient of sum(out * g) with respect to in<k>
and a metadata entry "case.<name>" = "loss=...;reduction=...;n_in=...;..." (the loss's options)
that tests/test_loss.c parses, so adding a case here needs no C change.
Run: python3 scripts/gen_golden_loss_ranking.py
"""
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(0)
out = {}
meta = {"generator": "scripts/gen_golden_loss_ranking.py", "torch": torch.__version__}


def case(name, loss, reduction, inputs, t=None, **kw):
    xs = [x.clone().requires_grad_() for x in inputs]
    if loss == "smooth_l1":
        y = F.smooth_l1_loss(xs[0], t, reduction=reduction, beta=kw["beta"])
    elif loss == "huber":
        y = F.huber_loss(xs[0], t, reduction=reduction, delta=kw["delta"])
    elif loss == "margin_ranking":
        y = F.margin_ranking_loss(xs[0], xs[1], t, margin=kw["margin"], reduction=reduction)
    elif loss == "triplet":
        y = F.triplet_margin_loss(xs[0], xs[1], xs[2], margin=kw["margin"], p=kw["p"], eps=kw["eps"],
                                  swap=bool(kw["swap"]), reduction=reduction)
    elif loss == "cosine_embedding":
        y = F.cosine_embedding_loss(xs[0], xs[1], t, margin=kw["margin"], reduction=reduction)
    else:
        raise ValueError(loss)
    g = torch.ones_like(y) if y.dim() == 0 else torch.randn_like(y)
    (y * g).sum().backward()
    assert torch.isfinite(y).all(), name
    for k, x in enumerate(xs):
        assert torch.isfinite(x.grad).all(), name
        out[f"{name}.in{k}"] = x.detach().clone()
        out[f"{name}.gin{k}"] = x.grad.clone()
    if t is not None:
        out[f"{name}.t"] = t.clone().float()
    out[f"{name}.g"] = g.clone()
    out[f"{name}.out"] = y.detach().clone()
    desc = [f"loss={loss}", f"reduction={reduction}", f"n_in={len(xs)}"]
    desc += [f"{k}={v}" for k, v in kw.items()]
    meta[f"case.{name}"] = ";".join(desc)


def signs(*shape):
    return torch.randint(0, 2, shape).float() * 2 - 1


for red in ("mean", "sum", "none"):
    x, t = torch.randn(4, 5), torch.randn(4, 5)
    case(f"smooth_l1_{red}", "smooth_l1", red, [x], t, beta=1.0)
    case(f"smooth_l1_b05_{red}", "smooth_l1", red, [x], t, beta=0.5)
    case(f"huber_{red}", "huber", red, [x], t, delta=1.0)
    case(f"huber_d2_{red}", "huber", red, [x * 2], t, delta=2.0)
    case(f"margin_ranking_{red}", "margin_ranking", red, [torch.randn(6), torch.randn(6)], signs(6), margin=0.5)
    a, p, n = torch.randn(5, 8), torch.randn(5, 8), torch.randn(5, 8)
    case(f"triplet_{red}", "triplet", red, [a, a + 0.3 * p, n], margin=1.0, p=2.0, eps=1e-6, swap=0)
    case(f"cosine_embedding_{red}", "cosine_embedding", red, [torch.randn(6, 7), torch.randn(6, 7)], signs(6),
         margin=0.2)
# other settings: beta 0 (L1), the margin ranking of score pairs in [N, 1], triplet with swap,
# p = 1 and p = 3, 1-D triplets and cosine pairs, margin 0
case("smooth_l1_b0", "smooth_l1", "mean", [torch.randn(3, 4)], torch.randn(3, 4), beta=0.0)
case("margin_ranking_2d", "margin_ranking", "mean", [torch.randn(4, 1), torch.randn(4, 1)], signs(4, 1), margin=0.0)
a, p, n = torch.randn(6, 4), torch.randn(6, 4), torch.randn(6, 4)
case("triplet_swap", "triplet", "mean", [a, p, n], margin=0.5, p=2.0, eps=1e-6, swap=1)
case("triplet_p1", "triplet", "sum", [a, p, n], margin=2.0, p=1.0, eps=1e-6, swap=0)
case("triplet_p3", "triplet", "none", [a, p, n], margin=1.5, p=3.0, eps=1e-6, swap=0)
case("triplet_1d", "triplet", "mean", [torch.randn(5), torch.randn(5), torch.randn(5)], margin=1.0, p=2.0,
     eps=1e-6, swap=0)
case("cosine_embedding_1d", "cosine_embedding", "mean", [torch.randn(9), torch.randn(9)], torch.tensor(-1.0),
     margin=-0.5)
case("cosine_embedding_m0", "cosine_embedding", "sum", [torch.randn(5, 3), torch.randn(5, 3)], signs(5), margin=0.0)

path = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "golden_loss_ranking.safetensors")
save_file({k: v.contiguous() for k, v in out.items()}, path, metadata=meta)
print("wrote", os.path.normpath(path), len(out), "tensors")
