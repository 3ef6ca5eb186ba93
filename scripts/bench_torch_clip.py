#!/usr/bin/env python3
"""PyTorch's throughput for bench/bench_clip's shapes: CLIP ViT-B/16 (random weights, our PyTorch
implementation in gen_golden_clip.py, float32, eval, torch.no_grad, the threads and clock of scripts/bench_torch_common.py):
image encoding of a batch of 8 at 224x224 and text encoding of 32 prompts at context 77 (the same
token ids as bench_clip: prompt i has 5 + (7 i mod 13) tokens between SOT and EOT).  Best of
--reps runs after one warm-up.  --machine prints just "images_per_s texts_per_s"."""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_torch_common as bc  # noqa: E402
from gen_golden_clip import CLIP  # noqa: E402

VIT_B16 = dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768, vision_patch_size=16,
               context_length=77, vocab_size=49408, transformer_width=512, transformer_heads=8,
               transformer_layers=12)


def prompt_ids(n=32, ctx=77):
    ids = torch.zeros(n, ctx, dtype=torch.long)
    for i in range(n):
        length = 5 + (7 * i) % 13
        ids[i, 0] = 49406
        for j in range(length):
            ids[i, 1 + j] = 1 + (131 * i + 977 * j) % 49000
        ids[i, 1 + length] = 49407
    return ids


def best(fn, reps):
    return bc.best(fn, reps)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--machine", action="store_true")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=bc.threads())
    ap.add_argument("--device", default="cpu", help="cpu, or cuda (TF32 off, as aqa's default)")
    ap.add_argument("--batch", type=int, default=8, help="images per batch")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dev = torch.device(args.device)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    model = CLIP(**VIT_B16).eval().to(dev)
    images = torch.randn(args.batch, 3, 224, 224, device=dev)
    ids = prompt_ids().to(dev)

    def run(fn):
        fn()
        if dev.type == "cuda":
            torch.cuda.synchronize()

    with torch.no_grad():
        ti = best(lambda: run(lambda: model.encode_image(images)), args.reps)
        tt = best(lambda: run(lambda: model.encode_text(ids)), args.reps)
    b = args.batch
    if args.machine:
        print(f"{b / ti:.4f} {32 / tt:.4f}")
    else:
        print(f"torch {torch.__version__} on {args.device}, {args.threads} threads: image {b / ti:.2f} images/s "
              f"({ti * 1e3:.1f} ms per batch of {b}), text {32 / tt:.2f} texts/s ({tt * 1e3:.1f} ms per 32)")


if __name__ == "__main__":
    main()
