#!/usr/bin/env python3
"""PyTorch's time for bench/bench_mvla's case: one full-size MVLA training step on cached features
with the TSA head (scripts/mvla_torch.py): 8 query/exemplar pairs (16 videos), 9 clips x 1024,
96 frames x 512, D 512, 32 stage / 64 video texts, forward + backward + Adam (lr 1e-4 for the
temporal transformer and projections, 1e-3 for the rest), float32, the threads and clock of scripts/bench_torch_common.py,
mean of --steps steps after one warm-up.  --machine prints just ms/step (read by bench_mvla).
--device cuda runs it on the GPU (torch.set_default_device: mvla_torch.py's factory calls follow;
loss.item() synchronises each step), as bench/bench_cuda's mvla_train_step_b8."""
import argparse
import sys

import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import bench_torch_common as bc  # noqa: E402
import mvla_torch as M  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--machine", action="store_true")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    if a.device != "cpu":
        torch.set_default_device(a.device)
    bc.setup()
    torch.manual_seed(1)
    c = M.default_config()
    m, h = M.MVLA(c), M.TSAHead(c)
    m.train()
    h.train()
    bb, rest = M.param_groups(m, h)
    opt = torch.optim.Adam([{"params": bb, "lr": 1e-4}, {"params": rest, "lr": 1e-3}], lr=1e-3)
    B, V, N, T = 8, 16, 9, 96
    i3d, vis = torch.randn(V, N, 1024), torch.randn(V, T, 512)
    stage_text, video_text = torch.randn(32, 512), torch.randn(64, 512)
    sid = torch.tensor([[(i * 7 + s * 11) % 32 for s in range(3)] for i in range(V)])
    vid = torch.tensor([(i * 5) % 64 for i in range(V)])
    bnd = torch.tensor([[10 + (i * 3) % 30, 50 + (i * 5) % 40] for i in range(V)])
    scores = torch.rand(V) * 100

    ph = [0.0, 0.0, 0.0, 0.0]  # mvla forward, head forward, backward, adam

    def step(record):
        t0 = bc.clock()
        opt.zero_grad(set_to_none=True)
        o = m(i3d, vis, stage_text, video_text, sid, vid, bnd, teacher_forcing=True)
        t1 = bc.clock()
        _, hl = h(M.head_input(o, 0, B), M.head_input(o, B, B), scores[B:], scores[:B])
        loss = hl + sum(o["losses"].values())
        t2 = bc.clock()
        loss.backward()
        t3 = bc.clock()
        opt.step()
        t4 = bc.clock()
        if record:
            for i, d in enumerate((t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                ph[i] += d
        return loss.item()

    step(False)
    t0 = bc.clock()
    for _ in range(a.steps):
        step(True)
    ms = 1e3 * (bc.clock() - t0) / a.steps
    if a.machine:
        print(f"{ms:.3f}")
    else:
        print(f"torch {torch.__version__}: {ms:.1f} ms/step, {1e3 * B / ms:.2f} samples/s; phases: mvla fwd "
              f"{1e3 * ph[0] / a.steps:.1f}, head fwd {1e3 * ph[1] / a.steps:.1f}, backward {1e3 * ph[2] / a.steps:.1f}, "
              f"adam {1e3 * ph[3] / a.steps:.1f} ms")


if __name__ == "__main__":
    main()
