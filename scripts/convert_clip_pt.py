#!/usr/bin/env python3
"""Converts OpenAI's CLIP checkpoint (.pt: a TorchScript archive such as ViT-B-16.pt, or a plain
torch.save'd state dict) to safetensors with OpenAI's state_dict names, which aqa_clip_load
reads (models/clip/clip.h).

    python3 scripts/convert_clip_pt.py ViT-B-16.pt ViT-B-16.safetensors [--keep-dtype]

The scalars OpenAI keeps beside the weights (input_resolution, context_length, vocab_size) are
dropped, as clip.model.build_model does.  Weights are written as float32 (what clip.load gives on
a CPU) unless --keep-dtype (OpenAI's files hold float16; aqa converts them when loading).  Only
ViT models are accepted (aqa has no ModifiedResNet tower).  Needs torch and safetensors."""
import argparse
import os
import sys

import torch
from safetensors.torch import save_file

DROPPED = ("input_resolution", "context_length", "vocab_size")


def load_state_dict(path):
    try:
        model = torch.jit.load(path, map_location="cpu")
        return model.state_dict()
    except RuntimeError:
        obj = torch.load(path, map_location="cpu", weights_only=False)
        if isinstance(obj, dict) and "state_dict" in obj:
            obj = obj["state_dict"]
        if hasattr(obj, "state_dict"):
            obj = obj.state_dict()
        if not isinstance(obj, dict):
            raise SystemExit(f"{path}: neither a TorchScript archive nor a state dict")
        return obj


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--keep-dtype", action="store_true", help="keep float16 weights as they are")
    ap.add_argument("--vision-heads", type=int, help="heads of a model narrower than OpenAI's (width / 64)")
    ap.add_argument("--text-heads", type=int, help="likewise for the text transformer")
    args = ap.parse_args()
    sd = load_state_dict(args.src)
    sd = {k[len("module."):] if k.startswith("module.") else k: v for k, v in sd.items()}
    if "visual.proj" not in sd:
        raise SystemExit(f"{args.src}: no visual.proj: not an OpenAI CLIP ViT checkpoint (ResNet towers are not supported)")
    out = {}
    for k, v in sd.items():
        if k in DROPPED:
            continue
        v = v.detach().cpu()
        if not args.keep_dtype and v.is_floating_point():
            v = v.float()
        out[k] = v.contiguous()
    meta = {"format": "pt", "source": os.path.basename(args.src), "converter": "scripts/convert_clip_pt.py",
            "torch": torch.__version__}
    if args.vision_heads:
        meta["vision_heads"] = str(args.vision_heads)
    if args.text_heads:
        meta["text_heads"] = str(args.text_heads)
    save_file(out, args.dst, metadata=meta)
    n = sum(v.numel() for v in out.values())
    print(f"{args.dst}: {len(out)} tensors, {n / 1e6:.1f} M parameters", file=sys.stderr)


if __name__ == "__main__":
    main()
