#!/usr/bin/env python3
"""bench_torch_cuda.py: PyTorch on the GPU at the shapes of bench/bench_cuda.c, printing the same
"BENCH <name> <value> <unit>" lines so that scripts/gpu-check.sh can print aqa/torch ratios.

Exits 0 with a note when torch or a GPU is missing.  Usage: python3 scripts/bench_torch_cuda.py [--quick]
"""
import sys
import time

try:
    import torch
except ImportError:
    print("bench_torch_cuda: torch is not installed here; skipping the PyTorch comparison")
    sys.exit(0)

if not torch.cuda.is_available():
    print("bench_torch_cuda: torch %s sees no GPU; skipping" % torch.__version__)
    sys.exit(0)

quick = "--quick" in sys.argv
min_time = 0.05 if quick else 0.3
dev = torch.device("cuda")
print("torch %s, CUDA %s, %s" % (torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0)))


def timed(fn):
    """Seconds per call: 3 warm-ups, then batches of 8 until min_time has passed."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    reps = 0
    t0 = time.perf_counter()
    while True:
        for _ in range(8):
            fn()
        reps += 8
        torch.cuda.synchronize()
        el = time.perf_counter() - t0
        if el >= min_time:
            return el / reps


def row(name, value, unit):
    print("%-40s %10.2f %s" % (name, value, unit))
    print("BENCH %s %.4f %s" % (name, value, unit))


torch.manual_seed(1)
shapes = [(1, 12608, 768, 768), (1, 12608, 3072, 768), (1, 12608, 768, 3072),
          (1, 4096, 4096, 4096), (768, 197, 197, 64), (768, 197, 64, 197)]
if quick:
    shapes = shapes[:2]
for tf in (False, True):
    torch.backends.cuda.matmul.allow_tf32 = tf
    for (b, m, n, k) in shapes:
        if b > 1:
            A = torch.randn(b, m, k, device=dev)
            B = torch.randn(b, k, n, device=dev)
        else:
            A = torch.randn(m, k, device=dev)
            B = torch.randn(k, n, device=dev)
        t = timed(lambda: torch.matmul(A, B))
        row("gemm_%s_%dx%dx%dx%d" % ("tf32" if tf else "fp32", b, m, n, k), 2.0 * b * m * n * k / t / 1e12, "TFLOP/s")
        del A, B
torch.backends.cuda.matmul.allow_tf32 = False

N = (1 << 24) if quick else (1 << 26)
a = torch.randn(N, device=dev)
bb = torch.randn(N, device=dev)
t = timed(lambda: a + bb)
row("add_f32_64M", 3.0 * 4 * N / t / 1e9, "GB/s")
t = timed(lambda: torch.nn.functional.gelu(a))
row("gelu_f32_64M", 2.0 * 4 * N / t / 1e9, "GB/s")
t = timed(lambda: a.sum())
row("sum_f32_64M", 4.0 * N / t / 1e9, "GB/s")
a2 = a.view(8192, N // 8192)
t = timed(lambda: a2.t().contiguous())
row("transpose_copy_f32_64M", 2.0 * 4 * N / t / 1e9, "GB/s")
t = timed(lambda: a2.sum(0))
row("sum_dim0_f32_8192xN", 4.0 * N / t / 1e9, "GB/s")
del a, bb, a2
s = torch.randn(64 * 12 * 197, 197, device=dev)
t = timed(lambda: torch.softmax(s, 1))
row("softmax_f32_151296x197", 2.0 * 4 * s.numel() / t / 1e9, "GB/s")
del s

# fused nn kernels (bench_cuda.c's bench_fused)
x = torch.randn(12608, 768, device=dev, requires_grad=True)
w = torch.randn(768, device=dev, requires_grad=True)
b = torch.randn(768, device=dev, requires_grad=True)
gy = torch.randn(12608, 768, device=dev)
with torch.no_grad():
    t = timed(lambda: torch.nn.functional.layer_norm(x, (768,), w, b, 1e-5))
row("layer_norm_f32_12608x768", 2.0 * 4 * x.numel() / t / 1e9, "GB/s")
t = timed(lambda: torch.nn.functional.layer_norm(x, (768,), w, b, 1e-5).backward(gy))
row("layer_norm_fwdbwd_f32_12608x768", 1e3 * t, "ms")
del x, w, b, gy
x = torch.randn(8, 64, 16, 56, 56, device=dev, requires_grad=True)
w = torch.randn(64, device=dev, requires_grad=True)
b = torch.randn(64, device=dev, requires_grad=True)
gy = torch.randn(8, 64, 16, 56, 56, device=dev)
with torch.no_grad():
    t = timed(lambda: torch.nn.functional.batch_norm(x, None, None, w, b, True, 0.1, 1e-5))
row("batch_norm3d_f32_8x64x16x56x56", 1e3 * t, "ms")
t = timed(lambda: torch.nn.functional.batch_norm(x, None, None, w, b, True, 0.1, 1e-5).backward(gy))
row("batch_norm3d_fwdbwd_f32_8x64x16x56x56", 1e3 * t, "ms")
del w, b, gy
with torch.no_grad():
    t = timed(lambda: torch.nn.functional.max_pool3d(x, (1, 3, 3), (1, 2, 2), (0, 1, 1)))
row("maxpool3d_f32_8x64x16x56x56", 1e3 * t, "ms")
gy = torch.randn(8, 64, 16, 28, 28, device=dev)
t = timed(lambda: torch.nn.functional.max_pool3d(x, (1, 3, 3), (1, 2, 2), (0, 1, 1)).backward(gy))
row("maxpool3d_fwdbwd_f32_8x64x16x56x56", 1e3 * t, "ms")
del x, gy
np_ = 10 if quick else 100
ps = [torch.randn(1 << 20, device=dev, requires_grad=True) for _ in range(np_)]
for p in ps:
    p.grad = torch.randn(1 << 20, device=dev)
opt = torch.optim.AdamW(ps)  # torch's default: the foreach (multi-tensor) implementation
t = timed(opt.step)
row("adamw_step_f32_%dM" % np_, 1e3 * t, "ms")
del ps, opt
x = torch.randn(64 * 8 * 77, 77, device=dev)
t = timed(lambda: torch.softmax(x, 1))
row("softmax_f32_39424x77", 2.0 * 4 * x.numel() / t / 1e9, "GB/s")
for c in (0, 1):
    H, T = (8, 77) if c else (12, 197)
    qkv = [torch.randn(64, H, T, 64, device=dev, requires_grad=True) for _ in range(3)]
    go = torch.randn(64, H, T, 64, device=dev)
    sdpa = torch.nn.functional.scaled_dot_product_attention
    with torch.no_grad():
        t = timed(lambda: sdpa(qkv[0], qkv[1], qkv[2], is_causal=c == 1))
    row("sdpa%s_fwd_f32_64x%dx%dx64" % ("_causal" if c else "", H, T), 1e3 * t, "ms")
    t = timed(lambda: sdpa(qkv[0], qkv[1], qkv[2], is_causal=c == 1).backward(go))
    row("sdpa%s_fwdbwd_f32_64x%dx%dx64" % ("_causal" if c else "", H, T), 1e3 * t, "ms")
    del qkv, go
