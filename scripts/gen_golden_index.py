#!/usr/bin/env python3
"""Writes tests/data/golden_index.safetensors: inputs, outputs and input gradients (for a fixed
upstream gradient gy_<case>) of PyTorch's cat, stack, chunk, index_select, gather, embedding,
one_hot and pad, read by tests/test_index.c.

Usage: python3 scripts/gen_golden_index.py [output path]   (torch 2.x, safetensors)
Names: <case>_x* inputs (float32, or int64 for indices), <case>_y output, <case>_gy upstream
gradient, <case>_gx* gradients of the float inputs."""
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

out_path = sys.argv[1] if len(sys.argv) > 1 else "tests/data/golden_index.safetensors"
g = torch.Generator().manual_seed(20261126)
T = {}


def rnd(*shape):
    return torch.randn(*shape, generator=g, dtype=torch.float32)


def record(case, inputs, fn):
    """inputs: list of tensors; float ones get gradients.  fn(*inputs) -> one tensor."""
    leaves = [t.clone().requires_grad_(t.is_floating_point()) for t in inputs]
    y = fn(*leaves)
    gy = rnd(*y.shape) if y.is_floating_point() else None
    if gy is not None:
        y.backward(gy)
        T[f"{case}_gy"] = gy
    T[f"{case}_y"] = y.detach().contiguous()
    for i, t in enumerate(leaves):
        T[f"{case}_x{i}"] = t.detach().contiguous()
        if t.is_floating_point():
            T[f"{case}_gx{i}"] = t.grad.contiguous()


# cat of three inputs along the middle dimension (dim -2 of 3-d tensors)
record("cat", [rnd(2, 3, 4), rnd(2, 1, 4), rnd(2, 5, 4)], lambda a, b, c: torch.cat([a, b, c], dim=-2))
# stack along dim 1
record("stack", [rnd(3, 4), rnd(3, 4), rnd(3, 4)], lambda a, b, c: torch.stack([a, b, c], dim=1))
# chunk of 7 rows into 3 pieces, pieces weighted differently in the output
record("chunk", [rnd(7, 3)],
       lambda x: torch.cat([p * (i + 1) for i, p in enumerate(torch.chunk(x, 3, dim=0))], dim=0))
# index_select with repeated indices, along dim 0 and along the last dim
record("isel0", [rnd(5, 3), torch.tensor([4, 0, 4, 2, 4])], lambda x, i: torch.index_select(x, 0, i))
record("isel1", [rnd(2, 3, 4), torch.tensor([3, 3, 0])], lambda x, i: torch.index_select(x, 2, i))
# gather along dim 1 (index smaller than the input in dim 0) and dim 0
record("gather1", [rnd(4, 5), torch.tensor([[0, 4, 4], [1, 1, 2], [3, 0, 3]])],
       lambda x, i: torch.gather(x, 1, i))
record("gather0", [rnd(3, 4), torch.tensor([[2, 0, 1, 2], [2, 2, 0, 0]])], lambda x, i: torch.gather(x, 0, i))
# embedding with repeated ids, 2-d ids
record("emb", [rnd(6, 4), torch.tensor([[5, 0, 5], [2, 5, 0]])], lambda w, i: F.embedding(i, w))
# pads: positive on the last two dims, mixed positive/negative on three dims
record("pad1", [rnd(2, 3, 4)], lambda x: F.pad(x, (1, 2, 0, 1), value=0.5))
record("pad2", [rnd(2, 3, 4)], lambda x: F.pad(x, (-1, 2, 1, -2, 1, 0), value=-1.5))
# one_hot with num_classes -1 (max + 1) and explicit
record("onehot1", [torch.tensor([[3, 0], [1, 3]])], lambda i: F.one_hot(i, -1))
record("onehot2", [torch.tensor([2, 0, 2])], lambda i: F.one_hot(i, 5))

save_file(T, out_path, metadata={"generator": "scripts/gen_golden_index.py", "torch": torch.__version__})
print(f"wrote {out_path}: {len(T)} tensors (torch {torch.__version__})")
