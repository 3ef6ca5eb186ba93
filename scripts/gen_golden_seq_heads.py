#!/usr/bin/env python3
"""Writes tests/data/golden_seq_heads.safetensors: forward and one training step of the reference
heads of scripts/seq_heads_torch.py (TPT, HGCN, GDLT, MS-LSTM, MLP-Mixer) at small sizes, each
without ("<head>_plain") and with MVLA's Z ("<head>_mvla"), read by tests/test_seq_heads.c.

Usage: python3 scripts/gen_golden_seq_heads.py [output path]   (torch 2.x, safetensors)

Per case <c>: inputs <c>.q.frames (and .stages, .video, .boundaries with MVLA), for TPT the
exemplar <c>.e.* and <c>.exemplar_score, <c>.deltas (the training differences its groups are
built from); <c>.score (and <c>.difficulty for HGCN); parameters <c>.p.<name> (float32 values,
the state_dict names); the model in training mode (BatchNorm on batch statistics, no dropout,
HGCN without sampling) gives <c>.pred and <c>.loss; backward gives <c>.g.<name> (metadata
"<c>.nograd" lists the parameters the loss does not reach: HGCN's fc2_logvar without sampling,
the mixer's unused layer_norm); one
torch.optim.Adam step (lr 1e-3) gives <c>.after.<name>.  Values are float64 computed from the
float32 inputs.  __metadata__: torch version, the settings as JSON ("<c>.cfg") and "<c>.keys"."""
import json
import os
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seq_heads_torch import HEADS, groups_from_deltas  # noqa: E402

out_path = sys.argv[1] if len(sys.argv) > 1 else "tests/data/golden_seq_heads.safetensors"
gen = torch.Generator().manual_seed(20260413)
T = {}
META = {"torch": torch.__version__, "generator": "scripts/gen_golden_seq_heads.py"}

B, STEPS, CF, C, S = 3, 10, 8, 5, 3
BASE = {"frame_dim": CF, "feat_dim": C, "len": STEPS, "score_min": 0.0, "score_max": 10.0,
        "tpt_dim": 8, "tpt_ffn": 12, "tpt_heads": 2, "tpt_queries": 3, "tpt_depth": 3, "tpt_hidden": 6,
        "tpt_temp": 0.07, "tpt_margin": 2.0, "tpt_var_weight": 0.05,
        "hgcn_groups": 2, "hgcn_scenes": 3, "hgcn_k": 3, "hgcn_factor": 2, "hgcn_dims": [8, 8, 4],
        "gdlt_dim": 8, "gdlt_heads": 2, "gdlt_encoder": 1, "gdlt_decoder": 2, "gdlt_queries": 3,
        "gdlt_alpha": 1.0, "gdlt_margin": 1.0,
        "mslstm_conv": 6, "mslstm_hidden": 5, "mslstm_filters": 4, "mslstm_attn_hidden": 3,
        "mslstm_descriptors": 4, "mslstm_merge": 3,
        "mixer_dim": 8, "mixer_depth": 2, "mixer_tokens": 2, "mixer_expansion": 2}


def rnd(*shape, scale=1.0):
    return (torch.randn(tuple(shape), generator=gen, dtype=torch.float32) * scale).double()


def f32(t):
    """t rounded to float32 (every input and parameter is float32-representable), as float64."""
    return t.float().double()


def put(name, t, dtype=None):
    t = t.detach().clone().contiguous()
    T[name] = t.to(dtype) if dtype is not None else t


def video(case, who, mvla):
    v = {"frames": rnd(B, STEPS, CF)}
    put(f"{case}.{who}.frames", v["frames"], torch.float32)
    if mvla:
        v["stages"], v["video"] = rnd(B, S, C), rnd(B, C)
        v["boundaries"] = torch.tensor([[3, 7], [2, 5], [4, 8]])
        for k in ("stages", "video"):
            put(f"{case}.{who}.{k}", v[k], torch.float32)
        put(f"{case}.{who}.boundaries", v["boundaries"])
    return v


def case(name, mvla):
    c = f"{name}_{'mvla' if mvla else 'plain'}"
    cfg = dict(BASE, mvla=mvla)
    META[f"{c}.cfg"] = json.dumps(cfg)
    torch.manual_seed(1)
    m = HEADS[name](cfg).double()
    with torch.no_grad():
        for k, p in m.named_parameters():
            p.copy_(f32(rnd(*p.shape, scale=0.5) + (1.0 if "norm" in k and k.endswith("weight") else 0.0)))
            if k.endswith("temp"):
                p.fill_(0.25)  # a softer attention than 0.07 keeps the small test away from one-hot weights
            put(f"{c}.p.{k}", p, torch.float32)
    META[f"{c}.keys"] = ",".join(k for k in m.state_dict().keys())
    m.train()
    q = video(c, "q", mvla)
    score = f32(torch.rand(B, generator=gen, dtype=torch.float32).double() * 8 + 1)
    put(f"{c}.score", score, torch.float32)
    if name == "tpt":
        e = video(c, "e", mvla)
        es = f32(torch.rand(B, generator=gen, dtype=torch.float32).double() * 8 + 1)
        put(f"{c}.exemplar_score", es, torch.float32)
        deltas = f32((torch.rand(12, generator=gen, dtype=torch.float32).double() - 0.5) * 12)
        put(f"{c}.deltas", deltas, torch.float32)
        m.groups.copy_(groups_from_deltas(deltas, m.groups.shape[0]))
        pred, loss = m(q, e, es, score)
    elif name == "hgcn":
        dd = f32(torch.tensor([1.5, 2.0, 3.2], dtype=torch.float64))
        put(f"{c}.difficulty", dd, torch.float32)
        pred, loss = m(q, score, dd)
    else:
        pred, loss = m(q, score)
    put(f"{c}.pred", pred)
    put(f"{c}.loss", loss)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    opt.zero_grad()
    loss.backward()
    for k, p in m.named_parameters():
        if p.grad is not None:
            put(f"{c}.g.{k}", p.grad)
    META[f"{c}.nograd"] = ",".join(k for k, p in m.named_parameters() if p.grad is None)
    opt.step()
    for k, p in m.named_parameters():
        put(f"{c}.after.{k}", p)


for head in HEADS:
    for mvla in (False, True):
        case(head, mvla)

save_file(T, out_path, metadata=META)
total = sum(t.numel() * t.element_size() for t in T.values())
print(f"wrote {out_path}: {len(T)} tensors, {total} bytes of data")
