#!/usr/bin/env python3
"""Writes tests/data/golden_nn_layers.safetensors: PyTorch reference values for the transformer-side
layers (Linear, LayerNorm, MultiheadAttention, TransformerEncoderLayer), read by
tests/test_nn_layers.c and tests/test_attention.c.

Usage: python3 scripts/gen_golden_nn_layers.py [output path]   (torch 2.x, safetensors)

Inputs and parameters are float32 values (stored as float32); the reference outputs and gradients
are computed by torch in float64 from those values and stored as float64, so the C tests measure
only their own rounding.  For each case <c>: <c>.x* inputs, <c>.p.<param> parameters (named as in
the torch state_dict), <c>.y output, <c>.gy upstream gradient, <c>.gx* / <c>.g.<param> gradients.
__metadata__: torch version, and "<c>.keys" = the torch state_dict keys, comma separated.
The tel_post case also stores its full state_dict under "tel_post.sd.<key>" (float32), which the C
test loads with aqa_module_load."""
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

out_path = sys.argv[1] if len(sys.argv) > 1 else "tests/data/golden_nn_layers.safetensors"
gen = torch.Generator().manual_seed(20261126)
T = {}
META = {"torch": torch.__version__, "generator": "scripts/gen_golden_nn_layers.py"}


def rnd(*shape, scale=1.0):
    """float32-representable random values, returned as float64."""
    return (torch.randn(*shape, generator=gen, dtype=torch.float32) * scale).double()


def put(name, t, dtype=None):
    t = t.detach().contiguous()
    if dtype is not None:
        t = t.to(dtype)
    T[name] = t


def set_params(case, module, scale=0.5):
    """Random float32-representable parameters (biases non-zero too), recorded under <case>.p.*"""
    module.double()
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(rnd(*p.shape, scale=scale))
            put(f"{case}.p.{name}", p, torch.float32)
    META[f"{case}.keys"] = ",".join(module.state_dict().keys())


def grads(case, module, names):
    for n in names:
        put(f"{case}.g.{n}", dict(module.named_parameters())[n].grad)


# ---- Linear on a 3-D input --------------------------------------------------------------------------
lin = nn.Linear(5, 4)
set_params("linear", lin)
x = rnd(2, 3, 5).requires_grad_()
y = lin(x)
gy = rnd(*y.shape)
y.backward(gy)
put("linear.x", x, torch.float32)
put("linear.y", y)
put("linear.gy", gy, torch.float32)
put("linear.gx", x.grad)
grads("linear", lin, ["weight", "bias"])

# ---- LayerNorm: last dim with affine; last two dims without -----------------------------------------
ln = nn.LayerNorm(6)
set_params("ln1", ln)
x = (rnd(3, 4, 6) * 2 + 0.5).requires_grad_()
y = ln(x)
gy = rnd(*y.shape)
y.backward(gy)
put("ln1.x", x, torch.float32)
put("ln1.y", y)
put("ln1.gy", gy, torch.float32)
put("ln1.gx", x.grad)
grads("ln1", ln, ["weight", "bias"])

x = rnd(2, 3, 4, 5).requires_grad_()
y = F.layer_norm(x, (4, 5), eps=1e-5)
gy = rnd(*y.shape)
y.backward(gy)
put("ln2.x", x, torch.float32)
put("ln2.y", y)
put("ln2.gy", gy, torch.float32)
put("ln2.gx", x.grad)


# ---- MultiheadAttention -------------------------------------------------------------------------------
def mha_case(case, batch_first, self_attn, L, S, N, attn_mask, kpm):
    E, H = 8, 2
    m = nn.MultiheadAttention(E, H, batch_first=batch_first)
    set_params(case, m)
    m.eval()
    shape_q = (N, L, E) if batch_first else (L, N, E)
    shape_k = (N, S, E) if batch_first else (S, N, E)
    q = rnd(*shape_q).requires_grad_()
    kv = q if self_attn else rnd(*shape_k).requires_grad_()
    out, w = m(q, kv, kv, key_padding_mask=kpm, attn_mask=attn_mask, need_weights=True, average_attn_weights=True)
    gy = rnd(*out.shape)
    out.backward(gy)
    put(f"{case}.xq", q, torch.float32)
    if not self_attn:
        put(f"{case}.xkv", kv, torch.float32)
        put(f"{case}.gxkv", kv.grad)
    if attn_mask is not None:
        put(f"{case}.attn_mask", attn_mask, torch.float32 if attn_mask.is_floating_point() else None)
    if kpm is not None:
        put(f"{case}.kpm", kpm)
    put(f"{case}.y", out)
    put(f"{case}.w", w)
    put(f"{case}.gy", gy, torch.float32)
    put(f"{case}.gxq", q.grad)
    grads(case, m, ["in_proj_weight", "in_proj_bias", "out_proj.weight"])


# self-attention, [L, N, E], float mask (causal plus random values) and a boolean padding mask
L, N = 5, 3
am = torch.triu(torch.full((L, L), float("-inf"), dtype=torch.float64), diagonal=1) + rnd(L, L, scale=0.3)
am = am.float().double()
kpm = torch.zeros(N, L, dtype=torch.bool)
kpm[0, 4] = True
kpm[2, 3:] = True  # never a whole row: every query keeps key 0
mha_case("mha_a", False, True, L, L, N, am, kpm)

# cross-attention (key is value), batch first, boolean per-head mask [N*H, L, S] and padding mask
L, S, N, H = 4, 6, 3, 2
bm = torch.rand(N * H, L, S, generator=gen) < 0.3
bm[:, :, 0] = False
kpm = torch.zeros(N, S, dtype=torch.bool)
kpm[1, 5] = True
kpm[2, 2] = True
mha_case("mha_b", True, False, L, S, N, bm, kpm)


# ---- TransformerEncoderLayer, gelu, eval mode -------------------------------------------------------
def tel_case(case, norm_first, batch_first, kpm, save_state):
    E, H, FF, L, N = 8, 2, 16, 5, 2
    m = nn.TransformerEncoderLayer(E, H, dim_feedforward=FF, dropout=0.1, activation="gelu",
                                   batch_first=batch_first, norm_first=norm_first)
    set_params(case, m)
    with torch.no_grad():  # norms near their usual init, so the test exercises realistic values
        m.norm1.weight.add_(1.0)
        m.norm2.weight.add_(1.0)
        put(f"{case}.p.norm1.weight", m.norm1.weight, torch.float32)
        put(f"{case}.p.norm2.weight", m.norm2.weight, torch.float32)
    m.eval()
    shape = (N, L, E) if batch_first else (L, N, E)
    x = rnd(*shape).requires_grad_()
    # the "fast path" of torch's encoder layer is skipped because grad is required
    y = m(x, src_key_padding_mask=kpm)
    gy = rnd(*y.shape)
    y.backward(gy)
    put(f"{case}.x", x, torch.float32)
    if kpm is not None:
        put(f"{case}.kpm", kpm)
    put(f"{case}.y", y)
    put(f"{case}.gy", gy, torch.float32)
    put(f"{case}.gx", x.grad)
    grads(case, m, ["self_attn.in_proj_weight", "linear1.weight", "linear2.bias", "norm1.weight"])
    if save_state:
        for k, v in m.state_dict().items():
            put(f"{case}.sd.{k}", v, torch.float32)


kpm = torch.zeros(2, 5, dtype=torch.bool)
kpm[1, 4] = True
tel_case("tel_post", False, False, kpm, True)
tel_case("tel_pre", True, True, None, False)

# state_dict names of a 2-layer encoder with a final norm (names only)
enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16), 2, norm=nn.LayerNorm(8), enable_nested_tensor=False)
META["encoder.keys"] = ",".join(enc.state_dict().keys())

save_file(T, out_path, metadata=META)
total = sum(t.numel() * t.element_size() for t in T.values())
print(f"wrote {out_path}: {len(T)} tensors, {total} bytes of data")
