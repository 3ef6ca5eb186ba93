#!/usr/bin/env python3
"""Writes tests/data/golden_seq_layers.safetensors: PyTorch reference values for the sequence and
graph layers (LSTM, GRU, TransformerDecoderLayer / TransformerDecoder, dense graph convolution),
read by tests/test_rnn.c, tests/test_attention.c and tests/test_graph_conv.c.

Usage: python3 scripts/gen_golden_seq_layers.py [output path]   (torch 2.x, safetensors)

Inputs and parameters are float32 values (stored as float32); outputs and gradients are computed
by torch in float64 from those values and stored as float64.  For each case <c>: inputs <c>.x,
<c>.h0, ..., parameters <c>.p.<name> (named as in the torch state_dict), outputs <c>.y (and
<c>.hn, <c>.cn), their upstream gradients <c>.gy (<c>.ghn, <c>.gcn), the backward of
sum(y * gy) + sum(hn * ghn) + ... giving <c>.gx... and <c>.g.<name>.
__metadata__: torch version, and "<c>.keys" = the torch state_dict keys, comma separated.

The graph convolution has no torch.nn class; its reference is torch_geometric's DenseGCNConv,
restated below in plain torch (dense_gcn) so that the script needs torch only."""
import sys

import torch
import torch.nn as nn
from safetensors.torch import save_file

out_path = sys.argv[1] if len(sys.argv) > 1 else "tests/data/golden_seq_layers.safetensors"
gen = torch.Generator().manual_seed(20260412)
T = {}
META = {"torch": torch.__version__, "generator": "scripts/gen_golden_seq_layers.py"}


def rnd(*shape, scale=1.0):
    """float32-representable random values, returned as float64."""
    return (torch.randn(*shape, generator=gen, dtype=torch.float32) * scale).double()


def put(name, t, dtype=None):
    t = t.detach().clone().contiguous()  # never shared between two names (safetensors refuses that)
    if dtype is not None:
        t = t.to(dtype)
    T[name] = t


def set_params(case, module, scale=0.5):
    """Random float32-representable parameters, recorded under <case>.p.*; the state_dict keys."""
    module.double()
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(rnd(*p.shape, scale=scale))
            put(f"{case}.p.{name}", p, torch.float32)
    META[f"{case}.keys"] = ",".join(module.state_dict().keys())


def leaf(case, name, *shape, scale=1.0):
    x = rnd(*shape, scale=scale).requires_grad_()
    put(f"{case}.{name}", x, torch.float32)
    return x


def backward(case, outputs, inputs, module):
    """outputs: {name: tensor}; stores them, random upstream gradients g<name>, and the gradients
    of the inputs ({name: leaf}) and of every parameter of module."""
    loss = 0
    for name, y in outputs.items():
        gy = rnd(*y.shape)
        put(f"{case}.{name}", y)
        put(f"{case}.g{name}", gy, torch.float32)
        loss = loss + (y * gy).sum()
    loss.backward()
    for name, x in inputs.items():
        put(f"{case}.g{name}", x.grad)
    if module is not None:
        for name, p in module.named_parameters():
            put(f"{case}.g.{name}", p.grad)


# ---- LSTM / GRU --------------------------------------------------------------------------------
def rnn_case(case, cls, L, N, I, H, layers, bidir, batch_first, bias, with_h0, unbatched=False):
    m = cls(I, H, num_layers=layers, bias=bias, batch_first=batch_first, bidirectional=bidir)
    set_params(case, m)
    D = 2 if bidir else 1
    xs = (L, I) if unbatched else (N, L, I) if batch_first else (L, N, I)
    x = leaf(case, "x", *xs)
    inputs = {"x": x}
    hs = (D * layers, H) if unbatched else (D * layers, N, H)
    state = None
    if with_h0:
        inputs["h0"] = leaf(case, "h0", *hs, scale=0.5)
        if cls is nn.LSTM:
            inputs["c0"] = leaf(case, "c0", *hs, scale=0.5)
            state = (inputs["h0"], inputs["c0"])
        else:
            state = inputs["h0"]
    y, st = m(x, state)
    outputs = {"y": y}
    if cls is nn.LSTM:
        outputs["hn"], outputs["cn"] = st
    else:
        outputs["hn"] = st
    backward(case, outputs, inputs, m)


rnn_case("lstm_a", nn.LSTM, L=5, N=3, I=4, H=3, layers=2, bidir=True, batch_first=False, bias=True, with_h0=True)
rnn_case("lstm_b", nn.LSTM, L=4, N=2, I=5, H=6, layers=1, bidir=False, batch_first=True, bias=False, with_h0=False)
rnn_case("lstm_u", nn.LSTM, L=6, N=1, I=3, H=4, layers=2, bidir=False, batch_first=False, bias=True, with_h0=True,
         unbatched=True)
rnn_case("gru_a", nn.GRU, L=5, N=3, I=4, H=3, layers=2, bidir=True, batch_first=False, bias=True, with_h0=True)
rnn_case("gru_b", nn.GRU, L=4, N=2, I=5, H=6, layers=1, bidir=False, batch_first=True, bias=True, with_h0=False)
rnn_case("gru_u", nn.GRU, L=6, N=1, I=3, H=4, layers=1, bidir=True, batch_first=False, bias=False, with_h0=True,
         unbatched=True)


# ---- TransformerDecoderLayer / TransformerDecoder, eval mode -------------------------------------
def decoder_case(case, module, batch_first, T_, S, N, tgt_mask, memory_mask, tkpm, mkpm):
    E = 8
    set_params(case, module)
    with torch.no_grad():  # norms near their usual init, so the test exercises realistic values
        for name, p in module.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.copy_((p + 1.0).float().double())  # float32-representable, as every value here
                put(f"{case}.p.{name}", p, torch.float32)
    module.eval()
    tgt = leaf(case, "x", *((N, T_, E) if batch_first else (T_, N, E)))
    mem = leaf(case, "mem", *((N, S, E) if batch_first else (S, N, E)))
    for name, t in (("tgt_mask", tgt_mask), ("memory_mask", memory_mask), ("tkpm", tkpm), ("mkpm", mkpm)):
        if t is not None:
            put(f"{case}.{name}", t, torch.float32 if t.is_floating_point() else None)
    y = module(tgt, mem, tgt_mask=tgt_mask, memory_mask=memory_mask, tgt_key_padding_mask=tkpm,
               memory_key_padding_mask=mkpm)
    backward(case, {"y": y}, {"x": tgt, "mem": mem}, module)
    for k, v in module.state_dict().items():
        put(f"{case}.sd.{k}", v, torch.float32)


T_, S, N = 5, 6, 2
causal = torch.triu(torch.full((T_, T_), float("-inf"), dtype=torch.float64), diagonal=1)
tkpm = torch.zeros(N, T_, dtype=torch.bool)
tkpm[1, 4] = True
mkpm = torch.zeros(N, S, dtype=torch.bool)
mkpm[0, 5] = True
mkpm[1, 3:] = True
decoder_case("dec_post", nn.TransformerDecoderLayer(8, 2, dim_feedforward=16, dropout=0.1), False, T_, S, N,
             causal, None, tkpm, mkpm)
mm = rnd(T_, S, scale=0.5)
decoder_case("dec_pre", nn.TransformerDecoderLayer(8, 2, dim_feedforward=16, dropout=0.1, activation="gelu",
                                                   batch_first=True, norm_first=True), True, T_, S, N,
             None, mm, None, mkpm)
stack = nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, dim_feedforward=16, batch_first=True), 2,
                              norm=nn.LayerNorm(8))
decoder_case("dec_stack", stack, True, T_, S, N, causal, None, None, None)


# ---- dense graph convolution (torch_geometric.nn.DenseGCNConv, restated) --------------------------
def dense_gcn(x, adj, weight, bias, mask, normalize):
    """DenseGCNConv.forward (add_loop=True, improved=False) when normalize, else y = adj x W^T + b."""
    if normalize:
        adj = adj.clone()
        idx = torch.arange(adj.shape[-1])
        adj[..., idx, idx] = 1
        d = adj.sum(-1).clamp(min=1).pow(-0.5)
        adj = d.unsqueeze(-1) * adj * d.unsqueeze(-2)
    y = adj @ (x @ weight.t())
    if bias is not None:
        y = y + bias
    if mask is not None:
        y = y * mask.unsqueeze(-1).to(y.dtype)
    return y


def gcn_case(case, B, Nn, I, O, batched_adj, normalize, with_mask, bias=True):
    x = leaf(case, "x", B, Nn, I)
    a = torch.rand(*((B, Nn, Nn) if batched_adj else (Nn, Nn)), generator=gen, dtype=torch.float32).double()
    a = (a * (a > 0.4)).requires_grad_()  # sparse-ish non-negative weights, some rows of degree < 1
    put(f"{case}.adj", a, torch.float32)
    w = leaf(case, "p.lin.weight", O, I, scale=0.5)
    b = leaf(case, "p.bias", O, scale=0.5) if bias else None
    mask = None
    if with_mask:
        mask = torch.ones(B, Nn, dtype=torch.bool)
        mask[0, -1] = False
        put(f"{case}.mask", mask)
    y = dense_gcn(x, a, w, b, mask, normalize)
    inputs = {"x": x, "adj": a, ".lin.weight": w}
    if bias:
        inputs[".bias"] = b
    backward(case, {"y": y}, inputs, None)


gcn_case("gcn_norm", B=2, Nn=5, I=4, O=3, batched_adj=True, normalize=True, with_mask=True)
gcn_case("gcn_raw", B=3, Nn=4, I=3, O=5, batched_adj=False, normalize=False, with_mask=False)

save_file(T, out_path, metadata=META)
total = sum(t.numel() * t.element_size() for t in T.values())
print(f"wrote {out_path}: {len(T)} tensors, {total} bytes of data")
