#!/usr/bin/env python3
"""convert_i3d_pt.py: a pytorch-i3d checkpoint (rgb_imagenet.pt, rgb_charades.pt, or a fine-tuned
state_dict) to safetensors with the same tensor names, for models/i3d (aqa_i3d_load).

    python3 scripts/convert_i3d_pt.py rgb_imagenet.pt rgb_imagenet.safetensors

Accepts a plain state_dict, a dict holding one under 'state_dict'/'model', and DataParallel's
"module." prefix (removed).  Floating tensors are written as float32; num_batches_tracked (absent
from the 2018 checkpoints) is written when present and otherwise left out (aqa_i3d_load keeps 0).
The names are checked against scripts/i3d_torch.py's InceptionI3d (pytorch-i3d's names) unless
--no-check; a checkpoint of a network cut before the logits (no logits.*) is accepted."""
import argparse
import os
import sys

import torch


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('src', help='torch checkpoint (.pt/.pth)')
    ap.add_argument('dst', help='output .safetensors')
    ap.add_argument('--no-check', action='store_true', help='do not compare names with pytorch-i3d')
    a = ap.parse_args()
    from safetensors.torch import save_file

    sd = torch.load(a.src, map_location='cpu', weights_only=False)
    for key in ('state_dict', 'model'):
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            sd = sd[key]
    if not isinstance(sd, dict):
        sys.exit('%s: not a state_dict (got %s)' % (a.src, type(sd).__name__))
    out = {}
    for k, v in sd.items():
        if not torch.is_tensor(v):
            continue
        name = k[len('module.'):] if k.startswith('module.') else k
        out[name] = (v.float() if v.is_floating_point() else v).contiguous().clone()
    if not a.no_check:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from i3d_torch import InceptionI3d
        has_logits = 'logits.conv3d.weight' in out
        classes = out['logits.conv3d.weight'].shape[0] if has_logits else 400
        ref = InceptionI3d(num_classes=classes, with_logits=has_logits).state_dict()
        missing = [k for k in ref if k not in out and not k.endswith('num_batches_tracked')]
        unexpected = [k for k in out if k not in ref]
        shapes = [k for k in out if k in ref and tuple(out[k].shape) != tuple(ref[k].shape)]
        if missing or unexpected or shapes:
            sys.exit('%s: not pytorch-i3d InceptionI3d names: missing %s, unexpected %s, mis-shaped %s' %
                     (a.src, missing[:5], unexpected[:5], shapes[:5]))
    meta = {'source': os.path.basename(a.src), 'converter': 'scripts/convert_i3d_pt.py',
            'torch_version': torch.__version__, 'format': 'pytorch-i3d InceptionI3d state_dict'}
    save_file(out, a.dst, metadata=meta)
    print('%s: %d tensors, %d floating-point values -> %s' % (a.src, len(out),
          sum(v.numel() for k, v in out.items() if v.is_floating_point()), a.dst))


if __name__ == '__main__':
    main()
