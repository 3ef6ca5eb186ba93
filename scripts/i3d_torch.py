#!/usr/bin/env python3
"""i3d_torch.py: a PyTorch I3D written for aqa's tests and benchmarks, with the module names,
channel lists and padding rules of piergiaj/pytorch-i3d's InceptionI3d (so its state_dict keys are
the same), plus a width multiplier for tiny test networks and the clip-feature head aqa uses
(AvgPool3d([2, 7, 7], stride 1) with each side clipped to the map, then the mean over the remaining
positions).

Run as a script it writes the golden files of tests/test_i3d.c:
  tests/data/i3d/weights.safetensors  state_dict of a small random I3D (key list in metadata)
  tests/data/i3d/golden.safetensors   inputs, eval/train outputs, updated running stats, gradients

    python3 scripts/i3d_torch.py [--out-dir tests/data/i3d]
"""
import argparse
import json
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

ENDPOINTS = ['Conv3d_1a_7x7', 'MaxPool3d_2a_3x3', 'Conv3d_2b_1x1', 'Conv3d_2c_3x3', 'MaxPool3d_3a_3x3',
             'Mixed_3b', 'Mixed_3c', 'MaxPool3d_4a_3x3', 'Mixed_4b', 'Mixed_4c', 'Mixed_4d', 'Mixed_4e',
             'Mixed_4f', 'MaxPool3d_5a_2x2', 'Mixed_5b', 'Mixed_5c']

MIXED = {'Mixed_3b': [64, 96, 128, 16, 32, 32], 'Mixed_3c': [128, 128, 192, 32, 96, 64],
         'Mixed_4b': [192, 96, 208, 16, 48, 64], 'Mixed_4c': [160, 112, 224, 24, 64, 64],
         'Mixed_4d': [128, 128, 256, 24, 64, 64], 'Mixed_4e': [112, 144, 288, 32, 64, 64],
         'Mixed_4f': [256, 160, 320, 32, 128, 128], 'Mixed_5b': [256, 160, 320, 32, 128, 128],
         'Mixed_5c': [384, 192, 384, 48, 128, 128]}

POOLS = {'MaxPool3d_2a_3x3': ([1, 3, 3], [1, 2, 2]), 'MaxPool3d_3a_3x3': ([1, 3, 3], [1, 2, 2]),
         'MaxPool3d_4a_3x3': ([3, 3, 3], [2, 2, 2]), 'MaxPool3d_5a_2x2': ([2, 2, 2], [2, 2, 2])}


def tf_same_pad(sizes, kernel, stride):
    """F.pad argument (w_lo, w_hi, h_lo, h_hi, t_lo, t_hi) of TensorFlow 'SAME' padding."""
    pads = []
    for s, k, st in zip(sizes, kernel, stride):
        total = max(k - st, 0) if s % st == 0 else max(k - s % st, 0)
        pads.append((total // 2, total - total // 2))
    return (pads[2][0], pads[2][1], pads[1][0], pads[1][1], pads[0][0], pads[0][1])


class SamePadMaxPool3d(nn.MaxPool3d):
    """pytorch-i3d's MaxPool3dSamePadding: zero 'SAME' padding, then max pooling."""

    def forward(self, x):
        return super().forward(F.pad(x, tf_same_pad(x.shape[2:], self.kernel_size, self.stride)))


class Unit3D(nn.Module):
    def __init__(self, cin, cout, kernel=(1, 1, 1), stride=(1, 1, 1), bn=True, relu=True, bias=False):
        super().__init__()
        self.kernel, self.stride, self.relu = list(kernel), list(stride), relu
        self.conv3d = nn.Conv3d(cin, cout, kernel, stride=stride, padding=0, bias=bias)
        if bn:
            self.bn = nn.BatchNorm3d(cout, eps=0.001, momentum=0.01)
        self.use_bn = bn

    def forward(self, x):
        x = self.conv3d(F.pad(x, tf_same_pad(x.shape[2:], self.kernel, self.stride)))
        if self.use_bn:
            x = self.bn(x)
        return F.relu(x) if self.relu else x


class InceptionModule(nn.Module):
    def __init__(self, cin, ch):
        super().__init__()
        self.b0 = Unit3D(cin, ch[0])
        self.b1a = Unit3D(cin, ch[1])
        self.b1b = Unit3D(ch[1], ch[2], (3, 3, 3))
        self.b2a = Unit3D(cin, ch[3])
        self.b2b = Unit3D(ch[3], ch[4], (3, 3, 3))
        self.b3a = SamePadMaxPool3d(kernel_size=[3, 3, 3], stride=(1, 1, 1), padding=0)
        self.b3b = Unit3D(cin, ch[5])

    def forward(self, x):
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], 1)


def scaled(c, w):
    # floor(x + 0.5) (half away from zero), as the C side; Python's round() would round half to even
    return max(1, int(math.floor(c * w + 0.5)))


class InceptionI3d(nn.Module):
    """with_logits: build the logits layer (registered before the endpoints, as pytorch-i3d)."""

    def __init__(self, num_classes=400, in_channels=3, width=1.0, with_logits=True, dropout_p=0.5):
        super().__init__()
        chans, c = {}, in_channels
        for e in ENDPOINTS:
            if e in ('Conv3d_1a_7x7', 'Conv3d_2b_1x1'):
                c = scaled(64, width)
            elif e == 'Conv3d_2c_3x3':
                c = scaled(192, width)
            elif e in MIXED:
                m = [scaled(v, width) for v in MIXED[e]]
                c = m[0] + m[2] + m[4] + m[5]
            chans[e] = c
        self.feature_dim = chans['Mixed_5c']
        self.dropout = nn.Dropout(dropout_p)
        self.logits = Unit3D(self.feature_dim, num_classes, bn=False, relu=False, bias=True) if with_logits else None
        cin = in_channels
        for e in ENDPOINTS:
            if e == 'Conv3d_1a_7x7':
                mod = Unit3D(cin, chans[e], (7, 7, 7), (2, 2, 2))
            elif e == 'Conv3d_2b_1x1':
                mod = Unit3D(cin, chans[e])
            elif e == 'Conv3d_2c_3x3':
                mod = Unit3D(cin, chans[e], (3, 3, 3))
            elif e in POOLS:
                mod = SamePadMaxPool3d(kernel_size=POOLS[e][0], stride=POOLS[e][1], padding=0)
            else:
                mod = InceptionModule(cin, [scaled(v, width) for v in MIXED[e]])
            self.add_module(e, mod)
            cin = chans[e]

    def trunk(self, x, last='Mixed_5c'):
        for e in ENDPOINTS:
            x = self._modules[e](x)
            if e == last:
                break
        return x

    @staticmethod
    def head_pool(x):
        k = [min(a, b) for a, b in zip(x.shape[2:], (2, 7, 7))]
        return F.avg_pool3d(x, k, stride=1)

    def features_logits(self, x):
        p = self.head_pool(self.trunk(x))
        feats = p.mean(dim=(2, 3, 4))
        logits = None
        if self.logits is not None:
            logits = self.logits(self.dropout(p)).mean(dim=(2, 3, 4))
        return feats, logits


def randomise_bn(model, x_cal, gen):
    """Random affine weights; running statistics near the real ones (so eval activations neither
    vanish nor explode), perturbed: mean + 0.1 N(0,1) * std, var * U(0.7, 1.4)."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm3d):
            m.momentum = 1.0
            with torch.no_grad():
                m.weight.copy_(0.5 + torch.rand(m.num_features, generator=gen))
                m.bias.copy_(0.2 * torch.randn(m.num_features, generator=gen))
    model.train()
    with torch.no_grad():
        model.trunk(x_cal)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm3d):
            c = m.num_features
            m.momentum = 0.01
            with torch.no_grad():
                std = m.running_var.sqrt()
                m.running_mean += 0.1 * torch.randn(c, generator=gen) * std
                m.running_var *= 0.7 + 0.7 * torch.rand(c, generator=gen)
                m.num_batches_tracked.fill_(7)


def main():
    from safetensors.torch import save_file
    ap = argparse.ArgumentParser()
    ap.add_argument('--out-dir', default=os.path.join(os.path.dirname(__file__), '..', 'tests', 'data', 'i3d'))
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    width, classes = 1.0 / 32, 10
    model = InceptionI3d(num_classes=classes, width=width, with_logits=True).double()
    shape = (2, 3, 8, 20, 16)
    x_cal = torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1
    randomise_bn(model, x_cal, gen)
    with torch.no_grad():
        model.logits.conv3d.bias.copy_(0.1 * torch.randn(classes, generator=gen))
    # the input is stored as float16, so draw values float16 represents exactly
    x = (torch.rand(shape, generator=gen) * 2 - 1).half().double()
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    meta = {'torch_version': torch.__version__, 'keys': '\n'.join(sd.keys()),
            'config': json.dumps({'width_multiplier': width, 'num_classes': classes, 'input': list(shape)})}
    weights = {k: (v.float() if v.is_floating_point() else v).contiguous() for k, v in sd.items()}
    save_file(weights, os.path.join(args.out_dir, 'weights.safetensors'), metadata=meta)
    # computations in float64 from the float32-rounded weights the C side loads
    model.load_state_dict({k: v.double() if v.is_floating_point() else v for k, v in weights.items()})
    g = {}
    g['input'] = x.half()
    model.eval()
    xe = x.clone().requires_grad_(True)
    feats, logits = model.features_logits(xe)
    mixed3b = model.trunk(x, 'Mixed_3b')
    gf = torch.randn(feats.shape, generator=gen, dtype=torch.float64)
    (feats * gf).sum().backward()
    g['eval.features'] = feats.detach()
    g['eval.logits'] = logits.detach()
    g['eval.mixed_3b'] = mixed3b.detach()
    g['eval.grad_input'] = xe.grad
    g['grad_features'] = gf
    # train mode: batch statistics, running statistics updated, gradients
    model.train()
    model.zero_grad(set_to_none=True)
    xt = x.clone().requires_grad_(True)
    feats_t = model.trunk(xt)
    feats_t = InceptionI3d.head_pool(feats_t).mean(dim=(2, 3, 4))
    (feats_t * gf).sum().backward()
    g['train.features'] = feats_t.detach()
    g['train.grad_input'] = xt.grad
    for name in ('Conv3d_1a_7x7.conv3d.weight', 'Mixed_4f.b1b.conv3d.weight', 'Mixed_5c.b3b.bn.weight'):
        g['train.grad.' + name] = model.get_parameter(name).grad
    for k, v in model.state_dict().items():
        if 'running' in k or 'num_batches' in k:
            g['train.' + k] = v.clone()
    # the feature head alone on a map with several remaining positions
    hx = torch.randn((2, 5, 5, 9, 8), generator=gen, dtype=torch.float64)
    g['head.input'] = hx
    g['head.features'] = InceptionI3d.head_pool(hx).mean(dim=(2, 3, 4))
    out = {k: (v.float() if v.dtype == torch.float64 else v).contiguous() for k, v in g.items()}
    save_file(out, os.path.join(args.out_dir, 'golden.safetensors'), metadata={'torch_version': torch.__version__})
    for f in ('weights.safetensors', 'golden.safetensors'):
        print(f, os.path.getsize(os.path.join(args.out_dir, f)), 'bytes')
    print('features', feats.flatten()[:6].tolist(), 'std', feats.std().item())
    print('logits', logits.flatten()[:6].tolist())


if __name__ == '__main__':
    main()
