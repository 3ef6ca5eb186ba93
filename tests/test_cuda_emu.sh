#!/bin/sh
# test_cuda_emu.sh: the CUDA backend's host-side tests (tests/test_cuda_host) on a machine without
# a GPU, against the CPU emulator of the driver, NVRTC and cuBLAS (tensor/cuda/emu/run.sh), posing
# as three GPUs: an H100-like cc 9.0 with 2 and with 132 multiprocessors (a reduction must give
# the same bits on both) and a cc 10.0 GPU newer than anything the emulated NVRTC knows (its
# kernels must come as PTX).  Skips when the build has no CUDA backend or no C++ compiler (the
# emulator compiles the kernels as C++).  Run from the build folder.
src=${AQA_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
prog=tests/test_cuda_host
if [ ! -x "$prog" ]; then
    echo "SKIP test_cuda_emu: $prog is not built (no CUDA backend in this build)"; exit 0
fi
if ! command -v g++ >/dev/null || ! command -v python3 >/dev/null || [ ! -f "${CUDA_HOME:-/usr/local/cuda}/include/cuda.h" ]; then
    echo "SKIP test_cuda_emu: the emulator needs g++, python3 and the CUDA headers"; exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export AQA_KERNEL_CACHE="$tmp/cache" # shared by the three runs: each program is emulated-compiled once
emu() { sh "$src/tensor/cuda/emu/run.sh" "$prog" "$@"; }

# 1. every case, cc 9.0 with 2 SMs
AQA_EMU_SM_COUNT=2 emu >"$tmp/sm2.log" 2>&1
grep -E '^(PASS|FAIL|SKIP) ' "$tmp/sm2.log"
grep -q '^FAIL ' "$tmp/sm2.log" && sed -n '/^FAIL/,$p' "$tmp/sm2.log" | grep '^    ' | head -5

# 2. the same reductions as a 132-SM GPU: the same bits
AQA_EMU_SM_COUNT=132 emu test_reduction_bits >"$tmp/sm132.log" 2>&1
a=$(grep '^BITS ' "$tmp/sm2.log"); b=$(grep '^BITS ' "$tmp/sm132.log")
if [ -n "$a" ] && [ "$a" = "$b" ]; then
    echo "PASS test_cuda_reduction_bits_across_gpu_models"
else
    echo "FAIL test_cuda_reduction_bits_across_gpu_models: 2 SMs: $a; 132 SMs: $b"
fi

# 3. a cc 10.0 GPU: PTX for the newest arch the emulated NVRTC has (sm_90)
AQA_EMU_CC=100 emu test_ptx_for_newer_gpu >"$tmp/cc100.log" 2>&1
if grep -q '^PASS test_ptx_for_newer_gpu' "$tmp/cc100.log" && grep -q 'NVRTC target compute_90' "$tmp/cc100.log"; then
    echo "PASS test_cuda_ptx_for_newer_major"
else
    echo "FAIL test_cuda_ptx_for_newer_major:"; tail -5 "$tmp/cc100.log"
fi
