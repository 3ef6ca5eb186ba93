#!/bin/sh
# run.sh: runs tests/test_cuda_ops against the CPU emulator of the CUDA driver, NVRTC and cuBLAS
# (emu_cuda.c), on a machine without a GPU.  This checks the backend's host logic (geometry,
# splits, argument packing, cuBLAS transposes, index lists) and its kernels' logic (compiled as
# C++ with emu_shim.h), not the GPU compiler or timing.  Slow: one host thread per CUDA thread.
# Usage: sh tensor/cuda/emu/run.sh [test program, default tests/test_cuda_ops]
set -e
here=$(cd "$(dirname "$0")" && pwd)
cuda=${CUDA_HOME:-/usr/local/cuda}
out=${TMPDIR:-/tmp}/aqa-emu-$$
mkdir -p "$out"
gcc -O1 -shared -fPIC -Wall -I"$cuda/include" "$here/emu_cuda.c" -o "$out/libaqa_emu_cuda.so" -ldl -lpthread
export AQA_CUDA_DRIVER_LIB="$out/libaqa_emu_cuda.so" AQA_NVRTC_LIB="$out/libaqa_emu_cuda.so" \
       AQA_CUBLAS_LIB="$out/libaqa_emu_cuda.so" AQA_EMU_DIR="$here" AQA_KERNEL_CACHE="${AQA_KERNEL_CACHE:-$out/cache}"
prog=${1:-tests/test_cuda_ops}
if [ $# -gt 0 ]; then shift; fi
status=0
"$prog" "$@" || status=$?
rm -rf "$out"
exit $status
