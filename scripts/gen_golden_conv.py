#!/usr/bin/env python3
"""Golden data for the convolution, pooling and batch-norm layers (tests/test_conv.c,
tests/test_pool_bn.c): inputs, parameters, outputs and the gradients of inputs and parameters for a
fixed upstream gradient, computed by PyTorch in float64 and stored as float32.

Run: python3 scripts/gen_golden_conv.py  ->  tests/data/golden_conv.safetensors
"""
import math
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(0)
T = {}
DT = torch.float64


def rnd(*shape):
    return torch.randn(*shape, dtype=DT)


def put(prefix, **tensors):
    for k, v in tensors.items():
        T[f"{prefix}.{k}"] = v.detach().to(torch.float32).contiguous() if v.is_floating_point() else v.contiguous()


def with_grads(prefix, fn, **inputs):
    """Runs fn(**inputs) on leaves requiring grad; stores inputs, y, gy and each input's gradient."""
    leaves = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
    y = fn(**leaves)
    gy = rnd(*y.shape)
    y.backward(gy)
    put(prefix, y=y, gy=gy, **inputs)
    put(prefix, **{"g" + k: v.grad for k, v in leaves.items()})


def tf_same_pad(x, k, s, d=(1, 1, 1)):
    """pytorch-i3d Unit3D's padding: pad_total = max((ceil(in/s)-1)*s + (k-1)*d + 1 - in, 0)."""
    pads = []
    for i in reversed(range(len(k))):
        n = x.shape[2 + i]
        total = max((math.ceil(n / s[i]) - 1) * s[i] + (k[i] - 1) * d[i] + 1 - n, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


# ---- convolutions ---------------------------------------------------------------------------------
with_grads("conv1d", lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1, dilation=2, groups=2),
           x=rnd(2, 4, 9), w=rnd(6, 2, 3), b=rnd(6))
with_grads("conv2d", lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=(1, 0), dilation=(1, 2)),
           x=rnd(2, 3, 7, 6), w=rnd(4, 3, 3, 2), b=rnd(4))
with_grads("conv3d", lambda x, w, b: F.conv3d(x, w, b, stride=(1, 2, 2), padding=(1, 1, 0), groups=2),
           x=rnd(1, 4, 5, 6, 7), w=rnd(4, 2, 3, 3, 2), b=rnd(4))
with_grads("conv3d_tf_same", lambda x, w, b: F.conv3d(tf_same_pad(x, (3, 3, 3), (2, 2, 2)), w, b, stride=2),
           x=rnd(1, 3, 7, 9, 8), w=rnd(5, 3, 3, 3, 3), b=rnd(5))
with_grads("conv2d_same", lambda x, w: F.conv2d(x, w, None, padding="same", dilation=(1, 2)),
           x=rnd(1, 2, 6, 7), w=rnd(3, 2, 4, 3))
with_grads("conv3d_1x1", lambda x, w, b: F.conv3d(x, w, b), x=rnd(2, 6, 3, 4, 5), w=rnd(4, 6, 1, 1, 1), b=rnd(4))
with_grads("conv_t1d", lambda x, w, b: F.conv_transpose1d(x, w, b, stride=2, padding=1, output_padding=1, groups=2),
           x=rnd(2, 4, 7), w=rnd(4, 3, 3), b=rnd(6))

# ---- pooling -------------------------------------------------------------------------------------
with_grads("maxpool1d", lambda x: F.max_pool1d(x, 3, 2, 1, ceil_mode=True), x=rnd(2, 3, 10))
T["maxpool1d.idx"] = F.max_pool1d(T["maxpool1d.x"].double(), 3, 2, 1, ceil_mode=True, return_indices=True)[1]
with_grads("maxpool2d", lambda x: F.max_pool2d(x, (3, 2), (2, 2), (1, 0), dilation=(1, 2)), x=rnd(1, 2, 7, 8))
with_grads("maxpool3d", lambda x: F.max_pool3d(x, 3, 2, 1, ceil_mode=True), x=rnd(1, 2, 5, 6, 7))
with_grads("avgpool1d", lambda x: F.avg_pool1d(x, 4, 3, 2, ceil_mode=True, count_include_pad=False), x=rnd(2, 3, 10))
with_grads("avgpool2d", lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=True), x=rnd(1, 2, 7, 8))
with_grads("avgpool2d_div", lambda x: F.avg_pool2d(x, 3, 2, 1, divisor_override=5), x=rnd(1, 2, 7, 8))
with_grads("avgpool3d", lambda x: F.avg_pool3d(x, (2, 3, 3), (1, 2, 2), 1, count_include_pad=False),
           x=rnd(1, 2, 5, 6, 7))
with_grads("adapool1d", lambda x: F.adaptive_avg_pool1d(x, 4), x=rnd(2, 3, 10))
with_grads("adapool2d", lambda x: F.adaptive_avg_pool2d(x, (3, 4)), x=rnd(1, 2, 7, 9))
with_grads("adapool3d", lambda x: F.adaptive_avg_pool3d(x, (2, 3, 4)), x=rnd(1, 2, 5, 7, 6))

# ---- batch norm ------------------------------------------------------------------------------------
def bn_case(prefix, mod, shape, steps=3):
    with torch.no_grad():
        if mod.weight is not None:
            mod.weight.copy_(rnd(*mod.weight.shape))
            mod.bias.copy_(rnd(*mod.bias.shape))
    put(prefix, weight=mod.weight, bias=mod.bias)
    mod.train()
    for s in range(steps):
        x = (rnd(*shape) * 2 + 1).requires_grad_(True)
        mod.zero_grad()
        y = mod(x)
        gy = rnd(*shape)
        y.backward(gy)
        put(f"{prefix}.step{s}", x=x, y=y, gy=gy, gx=x.grad, gweight=mod.weight.grad, gbias=mod.bias.grad,
            running_mean=mod.running_mean, running_var=mod.running_var)
        T[f"{prefix}.step{s}.num_batches_tracked"] = mod.num_batches_tracked.clone()
    mod.eval()
    mod.zero_grad()
    x = rnd(*shape).requires_grad_(True)
    y = mod(x)
    gy = rnd(*shape)
    y.backward(gy)
    put(f"{prefix}.eval", x=x, y=y, gy=gy, gx=x.grad, gweight=mod.weight.grad, gbias=mod.bias.grad)


bn_case("bn2d", torch.nn.BatchNorm2d(4).double(), (2, 4, 3, 4))
bn_case("bn1d_cma", torch.nn.BatchNorm1d(3, momentum=None).double(), (8, 3))
bn_case("bn3d", torch.nn.BatchNorm3d(3, eps=1e-3, momentum=0.3).double(), (2, 3, 2, 3, 4), steps=1)

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "golden_conv.safetensors")
save_file(T, out, metadata={"generator": "scripts/gen_golden_conv.py", "torch": torch.__version__})
print(f"wrote {len(T)} tensors, {os.path.getsize(out)} bytes to {os.path.normpath(out)}", file=sys.stderr)
