#!/usr/bin/env python3
"""Writes the golden safetensors files read by tests/test_safetensors.c.

Run from the repository root with the pip python that has torch 2.x and safetensors:

    python3 scripts/gen_safetensors_golden.py              # (re)writes tests/data/safetensors/
    python3 scripts/gen_safetensors_golden.py --check FILE # checks a file written by aqa's C writer

Outputs (tiny, a few KB):
  golden.safetensors  written by safetensors.torch.save_file: F32/F64/F16/BF16/I64/I32/U8/BOOL
                      tensors, 0-d scalars, empty tensors, special F16/BF16 bit patterns
                      (subnormals, infinities, NaN), and __metadata__ recording the versions used.
  golden_expected.txt the same values as plain text, one tensor per line:
                          tensor NAME DTYPE NDIM D0 D1 ... : V0 V1 ...
                      floats are printed as Python repr() of the exact float64 value of each element
                      (so F16/BF16/F32 values are exact), "nan"/"inf"/"-inf" for specials; then
                          meta KEY VALUE...
                      for each metadata entry (VALUE runs to the end of the line).
The C test compares what it reads against golden_expected.txt, never against values computed by
aqa itself.  Regenerating may reorder the metadata keys inside the header (the official writer
keeps them in a Rust HashMap), so the bytes can differ between runs while the content is equal;
the C test does not depend on that order.

--check FILE loads FILE with the official library (the file the C test exports when run with
AQA_ST_EXPORT=FILE) and verifies it holds exactly the golden tensors and metadata.
"""
import math
import os
import sys

import torch
import safetensors
from safetensors.torch import load_file, save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "safetensors")

# F16 bit patterns worth checking: +-0, smallest/largest subnormal, smallest normal, 1, 0.1,
# largest finite, +-inf, a quiet NaN.
F16_BITS = [0x0000, 0x8000, 0x0001, 0x03FF, 0x0400, 0x3C00, 0x2E66, 0x7BFF, 0xFBFF, 0x7C00,
            0xFC00, 0x7E00, 0x8001, 0xC000]
# BF16: +-0, smallest subnormal, smallest normal, 1, -2.5, largest finite, +-inf, NaN.
BF16_BITS = [0x0000, 0x8000, 0x0001, 0x0080, 0x3F80, 0xC020, 0x7F7F, 0x7F80, 0xFF80, 0x7FC0,
             0x3DCD]


def from_bits(bits, dtype):
    return torch.tensor(bits, dtype=torch.int32).to(torch.int16).view(dtype)


def golden_tensors():
    g = torch.Generator().manual_seed(0)
    return {
        "f32_2x3": torch.tensor([[1.0, -2.5, 3.25], [0.1, -1e-30, 6.5e7]], dtype=torch.float32),
        "f32_rand_3x4x5": torch.randn(3, 4, 5, generator=g, dtype=torch.float32),
        "f64_vec": torch.tensor([1.0 / 3.0, -1e-300, 2.5e10, 5e-324, -0.0], dtype=torch.float64),
        "f16_special": from_bits(F16_BITS, torch.float16),
        "f16_rand_4x3": torch.randn(4, 3, generator=g).to(torch.float16),
        "bf16_special": from_bits(BF16_BITS, torch.bfloat16),
        "bf16_rand_2x5": torch.randn(2, 5, generator=g).to(torch.bfloat16),
        "i64_vec": torch.tensor([0, -1, 2**53 + 1, -(2**62), 2**63 - 1, -(2**63)], dtype=torch.int64),
        "i32_vec": torch.tensor([7, -2**31, 2**31 - 1], dtype=torch.int32),
        "u8_vec": torch.tensor([0, 1, 255], dtype=torch.uint8),
        "bool_vec": torch.tensor([True, False, True]),
        "scalar_f32": torch.tensor(3.5, dtype=torch.float32),
        "scalar_i64": torch.tensor(-42, dtype=torch.int64),
        "scalar_bf16": torch.tensor(-0.15625, dtype=torch.bfloat16),
        "empty_f32_0x3": torch.zeros(0, 3, dtype=torch.float32),
        "empty_i64": torch.zeros(0, dtype=torch.int64),
        "layer.0.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3),
    }


def golden_metadata():
    return {
        "generator": "scripts/gen_safetensors_golden.py",
        "torch_version": torch.__version__,
        "safetensors_version": safetensors.__version__,
        "format": "pt",
        "unicode": "caf\u00e9 \u2713 \"quoted\"",
    }


DTYPE_NAMES = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16",
               torch.bfloat16: "BF16", torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8",
               torch.bool: "BOOL"}


def fmt_value(v):
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    return str(int(v))


def expected_text(tensors, metadata):
    lines = []
    for name, t in tensors.items():
        if t.dtype.is_floating_point:
            vals = [fmt_value(float(x)) for x in t.double().flatten().tolist()]
        else:
            vals = [fmt_value(int(x)) for x in t.flatten().tolist()]
        dims = [str(d) for d in t.shape]
        lines.append(" ".join(["tensor", name, DTYPE_NAMES[t.dtype], str(t.dim())] + dims + [":"] + vals))
    for k, v in metadata.items():
        lines.append("meta %s %s" % (k, v))
    return "\n".join(lines) + "\n"


def check(path):
    want = golden_tensors()
    got = load_file(path)
    assert sorted(got) == sorted(want), (sorted(got), sorted(want))
    for name, t in want.items():
        u = got[name]
        assert u.dtype == t.dtype and u.shape == t.shape, name
        # Bitwise comparison (NaN patterns and -0 included).
        assert torch.equal(u.reshape(-1).view(torch.uint8), t.reshape(-1).view(torch.uint8)), name
    from safetensors import safe_open
    with safe_open(path, framework="pt") as f:
        meta = f.metadata()
    want_meta = golden_metadata()
    assert set(meta) == set(want_meta), meta
    for k in want_meta:  # versions may differ from the ones running this check
        assert k.endswith("_version") or meta[k] == want_meta[k], (k, meta[k])
    print("OK: %s read by safetensors %s: %d tensors, metadata %s" % (path, safetensors.__version__, len(got), meta))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        check(sys.argv[2])
        return
    os.makedirs(OUT, exist_ok=True)
    tensors = golden_tensors()
    meta = golden_metadata()
    save_file(tensors, os.path.join(OUT, "golden.safetensors"), metadata=meta)
    # Re-read the file the library wrote: the expected values are those actually stored.
    stored = load_file(os.path.join(OUT, "golden.safetensors"))
    with open(os.path.join(OUT, "golden_expected.txt"), "w", encoding="utf-8") as f:
        f.write(expected_text({k: stored[k] for k in tensors}, meta))
    print("wrote golden.safetensors and golden_expected.txt to", os.path.normpath(OUT))


if __name__ == "__main__":
    main()
