#!/usr/bin/env python3
"""Golden file for nn/optim.h and nn/sched.h: torch.optim trajectories, clipping and schedules.

Writes tests/data/golden_optim.safetensors with
  init.p<i>          three small float32 parameters
  grads.p<i>         [20, ...] the gradient of parameter i at each step (fixed, random)
  <cfg>.p<i>         [20, ...] the parameter after each of the 20 steps of optimizer <cfg>
  clip.*             clip_grad_norm_ inputs, outputs and total norms (2-norm and inf-norm)
  sched.step, sched.cos   StepLR / CosineAnnealingLR learning rates for epochs 0..29
and metadata "cfg.<cfg>" = "kind=...;lr=...;..." describing each optimizer (parameter i >= 2
goes to a second group with lr2 / wd2 when present), parsed by tests/test_optim.c.
Run: python3 scripts/gen_golden_optim.py
"""
import os

import torch
from safetensors.torch import save_file

torch.manual_seed(0)
STEPS = 20
shapes = [(4, 3), (5,), (2, 3, 2)]
init = [torch.randn(s) for s in shapes]
grads = [torch.randn((STEPS,) + s) for s in shapes]
grads[1][7] = 0.0  # a zero gradient step
out = {f"init.p{i}": t for i, t in enumerate(init)}
out.update({f"grads.p{i}": g for i, g in enumerate(grads)})
meta = {"generator": "scripts/gen_golden_optim.py", "torch": torch.__version__}

configs = {
    "sgd": ("sgd", dict(lr=0.1)),
    "sgd_mom": ("sgd", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=1e-2)),
    "sgd_nesterov": ("sgd", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    "adam": ("adam", dict(lr=1e-2, weight_decay=1e-2)),
    "adam_ams": ("adam", dict(lr=3e-2, betas=(0.8, 0.99), eps=1e-6, amsgrad=True)),
    "adam_lowbeta": ("adam", dict(lr=1e-2, betas=(0.3, 0.9))),
    "adamw": ("adamw", dict(lr=1e-2, weight_decay=0.1)),
    "adamw_groups": ("adamw", dict(lr=1e-3, weight_decay=1e-2, lr2=1e-4, wd2=0.05)),
    "adamw_ams": ("adamw", dict(lr=1e-2, weight_decay=1e-2, amsgrad=True)),
}
for name, (kind, kw) in configs.items():
    params = [t.clone().requires_grad_() for t in init]
    kw = dict(kw)
    lr2, wd2 = kw.pop("lr2", None), kw.pop("wd2", None)
    if lr2 is not None:
        groups = [{"params": params[:2]}, {"params": params[2:], "lr": lr2, "weight_decay": wd2}]
    else:
        groups = [{"params": params}]
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[kind]
    opt = cls(groups, **kw)
    traj = [[] for _ in params]
    for s in range(STEPS):
        for p, g in zip(params, grads):
            p.grad = g[s].clone()
        opt.step()
        for i, p in enumerate(params):
            traj[i].append(p.detach().clone())
    for i in range(len(params)):
        out[f"{name}.p{i}"] = torch.stack(traj[i])
    desc = [f"kind={kind}"]
    b = kw.pop("betas", None)
    if b:
        desc += [f"beta1={b[0]!r}", f"beta2={b[1]!r}"]
    for k, v in kw.items():
        desc.append(f"{k}={int(v) if isinstance(v, bool) else repr(v)}")
    if lr2 is not None:
        desc += [f"lr2={lr2!r}", f"wd2={wd2!r}"]
    meta[f"cfg.{name}"] = ";".join(desc)

# clip_grad_norm_: a case that clips and one that does not, 2-norm and inf-norm
for tag, max_norm, norm_type in (("l2", 0.5, 2.0), ("l2_noclip", 100.0, 2.0), ("inf", 0.3, float("inf"))):
    params = [t.clone().requires_grad_() for t in init]
    for p, g in zip(params, grads):
        p.grad = g[0].clone() * 2
        out[f"clip.{tag}.in.{len([k for k in out if k.startswith(f'clip.{tag}.in.')])}"] = p.grad.clone()
    total = torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type=norm_type)
    for i, p in enumerate(params):
        out[f"clip.{tag}.out.{i}"] = p.grad.clone()
    out[f"clip.{tag}.total"] = total.reshape(1).clone()
    meta[f"clip.{tag}"] = f"max_norm={max_norm!r};norm_type={norm_type!r}"

# schedules: torch's recursive updates over 30 epochs
p = torch.zeros(1, requires_grad=True)
for tag, make in (("step", lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=7, gamma=0.3)),
                  ("cos", lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=12, eta_min=1e-3))):
    opt = torch.optim.SGD([p], lr=0.1)
    sch = make(opt)
    lrs = []
    for e in range(30):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sch.step()
    out[f"sched.{tag}"] = torch.tensor(lrs, dtype=torch.float64)

path = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "golden_optim.safetensors")
save_file({k: v.contiguous() for k, v in out.items()}, path, metadata=meta)
print("wrote", os.path.normpath(path), len(out), "tensors")
