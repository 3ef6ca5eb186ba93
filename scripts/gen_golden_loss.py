#!/usr/bin/env python3
"""Golden file for nn/loss.h: PyTorch's loss values and input gradients.

Writes tests/data/golden_loss.safetensors.  Each case <name> has tensors
  <name>.x   the input (logits, probabilities, log-probabilities)
  <name>.t   the target (I64 class indices or floating)
  <name>.w   optional per-element / per-class weight, <name>.pw optional pos_weight
  <name>.g   the upstream gradient used for backward (ones for a scalar loss)
  <name>.out the loss, <name>.gx the gradient of sum(out * g) with respect to x
and a metadata entry "case.<name>" = "loss=...;reduction=...;..." describing the call, which
tests/test_loss.c parses, so adding a case here needs no C change.
Run: python3 scripts/gen_golden_loss.py
"""
import os

import torch
import torch.nn.functional as F

torch.manual_seed(0)
out = {}
meta = {"generator": "scripts/gen_golden_loss.py", "torch": torch.__version__}


def case(name, loss, reduction, x, t, w=None, pw=None, **kw):
    x = x.clone().requires_grad_()
    if loss == "mse":
        y = F.mse_loss(x, t, reduction=reduction)
    elif loss == "l1":
        y = F.l1_loss(x, t, reduction=reduction)
    elif loss == "bce":
        y = F.binary_cross_entropy(x, t, weight=w, reduction=reduction)
    elif loss == "bcel":
        y = F.binary_cross_entropy_with_logits(x, t, weight=w, pos_weight=pw, reduction=reduction)
    elif loss == "ce":
        T = kw.get("T", 1.0)
        y = F.cross_entropy(x / T if T != 1.0 else x, t, weight=w, reduction=reduction,
                            ignore_index=kw.get("ignore", -100), label_smoothing=kw.get("ls", 0.0))
    elif loss == "nll":
        y = F.nll_loss(x, t, weight=w, reduction=reduction, ignore_index=kw.get("ignore", -100))
    elif loss == "kl":
        y = F.kl_div(x, t, reduction=reduction, log_target=kw.get("log_target", False))
    else:
        raise ValueError(loss)
    g = torch.ones_like(y) if y.dim() == 0 else torch.randn_like(y)
    (y * g).sum().backward()
    assert torch.isfinite(y).all() and torch.isfinite(x.grad).all(), name
    out[f"{name}.x"] = x.detach().clone()
    out[f"{name}.t"] = t.clone()
    if w is not None:
        out[f"{name}.w"] = w.clone()
    if pw is not None:
        out[f"{name}.pw"] = pw.clone()
    out[f"{name}.g"] = g.clone()
    out[f"{name}.out"] = y.detach().clone()
    out[f"{name}.gx"] = x.grad.clone()
    desc = [f"loss={loss}", f"reduction={reduction}"]
    for k in ("T", "ignore", "ls", "log_target"):
        if k in kw:
            desc.append(f"{k}={int(kw[k]) if isinstance(kw[k], bool) else kw[k]}")
    meta[f"case.{name}"] = ";".join(desc)


f = torch.float32
for red in ("mean", "sum", "none"):
    x, t = torch.randn(4, 5), torch.randn(4, 5)
    case(f"mse_{red}", "mse", red, x, t)
    t2 = t.clone()
    t2[0, :2] = x[0, :2]  # ties: gradient 0 as torch
    case(f"l1_{red}", "l1", red, x, t2)
    p = torch.rand(3, 4) * 0.98 + 0.01
    case(f"bce_{red}", "bce", red, p, torch.rand(3, 4), w=torch.rand(3, 4))
    z = torch.randn(3, 4) * 3
    case(f"bcel_{red}", "bcel", red, z, (torch.rand(3, 4) > 0.5).to(f), pw=torch.rand(4) * 3)
    logits = torch.randn(6, 5) * 2
    tgt = torch.randint(0, 5, (6,))
    tgt[2] = -100
    case(f"ce_{red}", "ce", red, logits, tgt, ignore=-100)
    case(f"ce_w_ls_{red}", "ce", red, logits, tgt, w=torch.rand(5) + 0.5, ls=0.1, ignore=-100)
    case(f"ce_prob_{red}", "ce", red, logits, torch.softmax(torch.randn(6, 5), 1), w=torch.rand(5) + 0.5, ls=0.2)
    case(f"nll_{red}", "nll", red, torch.log_softmax(logits, 1), tgt, w=torch.rand(5) + 0.5)
for red in ("mean", "sum", "none", "batchmean"):
    lp = torch.log_softmax(torch.randn(3, 6), 1)
    q = torch.softmax(torch.randn(3, 6), 1)
    q[0, 1] = 0.0  # t log t = 0 at t = 0
    case(f"kl_{red}", "kl", red, lp, q)
    case(f"kl_logt_{red}", "kl", red, lp, torch.log_softmax(torch.randn(3, 6), 1), log_target=True)

# classification shapes: [N, C, d], 1-D logits, temperature (MVLA: cosine / tau), another ignore_index
case("ce_3d", "ce", "mean", torch.randn(2, 4, 3), torch.randint(0, 4, (2, 3)))
case("ce_1d", "ce", "mean", torch.randn(7), torch.tensor(3))
cos = torch.nn.functional.normalize(torch.randn(5, 8), dim=1) @ torch.nn.functional.normalize(torch.randn(6, 8), dim=1).t()
case("ce_temp", "ce", "mean", cos, torch.randint(0, 6, (5,)), T=0.07)
tg = torch.randint(0, 4, (5,))
tg[1] = 3
case("ce_ignore3_ls", "ce", "sum", torch.randn(5, 4), tg, ignore=3, ls=0.3)
case("ce_3d_prob", "ce", "none", torch.randn(2, 4, 3), torch.softmax(torch.randn(2, 4, 3), 1))

# stability: huge logits must give finite losses and gradients (torch's exact values)
big = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 5e3], [3.0, 1e4, 1e4]])
case("ce_large", "ce", "mean", big, torch.tensor([0, 0, 2]))
case("ce_large_ls", "ce", "none", big, torch.tensor([1, 0, 2]), ls=0.1)
case("bcel_large", "bcel", "none", torch.tensor([1e4, -1e4, 50.0, -50.0, 0.0, 1e4]),
     torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0, 1.0]))
case("bce_edges", "bce", "none", torch.tensor([0.0, 1.0, 1e-30, 0.5, 0.999]), torch.tensor([0.0, 1.0, 0.0, 1.0, 1.0]))

path = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "golden_loss.safetensors")
from safetensors.torch import save_file  # noqa: E402

save_file({k: v.contiguous() for k, v in out.items()}, path, metadata=meta)
print("wrote", os.path.normpath(path), len(out), "tensors")
