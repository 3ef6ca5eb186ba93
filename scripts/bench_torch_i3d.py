#!/usr/bin/env python3
"""PyTorch's numbers for bench/bench_i3d: the full-size I3D of scripts/i3d_torch.py (pytorch-i3d's
InceptionI3d, random weights, to the 1024-d feature) on 16 x side x side clips, float32,
the threads of scripts/bench_torch_common.py.

    python3 scripts/bench_torch_i3d.py --case fwd1|fwd9|fwdbwd1|fwdbwd9 [--side 224 --warm 1 --reps 2]
                                       [--device cuda]

prints "seconds peak_MB cpu_seconds": the best time per call (after the warm-up calls), this
process's peak resident memory (ru_maxrss) and the CPU seconds (all threads) of that call.
Without --case it runs all three and prints a table.  --device cuda runs on the GPU (the time
synchronised; scripts/gpu-check.sh, beside bench/bench_cuda)."""
import argparse
import os
import resource
import subprocess
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_torch_common as bc  # noqa: E402
from i3d_torch import InceptionI3d  # noqa: E402


def cpu_seconds():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def run(case, side, warm, reps, device='cpu'):
    bc.setup()
    torch.manual_seed(1)
    model = InceptionI3d(with_logits=False).to(device)
    b = 9 if case in ('fwd9', 'fwdbwd9') else 1
    x = torch.rand(b, 3, 16, side, side).to(device)
    sync = torch.cuda.synchronize if device.startswith('cuda') else (lambda: None)
    best, best_cpu = float('inf'), 0.0
    for r in range(warm + reps):
        sync()
        t0, c0 = bc.clock(), cpu_seconds()
        if case.startswith('fwdbwd'):
            model.train()
            f, _ = model.features_logits(x)
            f.sum().backward()
            model.zero_grad(set_to_none=True)
        else:
            model.eval()
            with torch.no_grad():
                model.features_logits(x)
        sync()
        t, ct = bc.clock() - t0, cpu_seconds() - c0
        if r >= warm and t < best:
            best, best_cpu = t, ct
    return best, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, best_cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--case', choices=['fwd1', 'fwd9', 'fwdbwd1', 'fwdbwd9'])
    ap.add_argument('--side', type=int, default=224)
    ap.add_argument('--warm', type=int, default=1)
    ap.add_argument('--reps', type=int, default=2)
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--machine', action='store_true', help='(the numbers only: the default with --case)')
    a = ap.parse_args()
    if a.case:
        s, mb, cpu = run(a.case, a.side, a.warm, a.reps, a.device)
        print('%.4f %.1f %.4f' % (s, mb, cpu))
        return
    for case in ('fwd1', 'fwd9', 'fwdbwd1'):  # fwdbwd9 only on request (~10 GB)
        out = subprocess.run([sys.executable, __file__, '--case', case, '--side', str(a.side), '--warm',
                              str(a.warm), '--reps', str(a.reps)], capture_output=True, text=True).stdout.split()
        s, mb = float(out[0]), float(out[1])
        clips = 9 if case == 'fwd9' else 1
        print('%-8s %8.2f s  %7.3f clips/s  peak %6.0f MB  (torch %s)' % (case, s, clips / s, mb, torch.__version__))


if __name__ == '__main__':
    main()
