#!/bin/bash
# gpu-check.sh: builds aqa's CUDA backend on a GPU machine, runs the CUDA tests and the GPU
# benchmarks (beside PyTorch when it is installed), and prints a short table.  Made to finish
# within about 6 minutes from a fresh copy of the repository, and to print enough to debug from
# one run.
#
# Build: `autoreconf -fi && ./configure --with-cuda=DIR && make` of the CUDA targets; when that is
# impossible there (no autotools, no OpenBLAS/libpng/... development packages), a direct gcc build
# of the tensor core, autograd, the CUDA backend, nn/ and the I3D / MVLA / heads models, with a
# naive CBLAS stand-in for the CPU reference (only what the CUDA tests and bench_cuda need).
#
# Usage: scripts/gpu-check.sh            (writes logs to $OUT, or /tmp/aqa-gpu-check)
#   GPU_CHECK_SANITIZER=1  also runs test_cuda_ops under compute-sanitizer (slow)
#   GPU_CHECK_FORCE_DIRECT=1  skips the autotools attempt
set -u -o pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
LOG=${OUT:-/tmp/aqa-gpu-check}
mkdir -p "$LOG"
T0=$(date +%s)
say() { echo "[gpu-check +$(( $(date +%s) - T0 ))s] $*"; }

say "machine: $(uname -m), $(nproc) cores, $(gcc --version 2>/dev/null | head -1)"
nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader 2>&1 | head -4

# ---- the CUDA toolkit (headers for the build; NVRTC and cuBLAS libraries at run time) ----------
CUDA_DIR=""
for d in /usr/local/cuda "$(dirname "$(dirname "$(command -v nvcc 2>/dev/null || echo /none/bin/nvcc)")")" \
         /usr/local/cuda-13.0 /usr/local/cuda-13 /usr/local/cuda-12; do
    if [ -f "$d/include/nvrtc.h" ] && [ -f "$d/include/cuda.h" ]; then CUDA_DIR=$d; break; fi
done
if [ -z "$CUDA_DIR" ]; then
    say "FATAL: no CUDA toolkit headers (nvrtc.h, cuda.h) found; nvcc: $(command -v nvcc || echo none)"
    exit 1
fi
say "CUDA toolkit: $CUDA_DIR ($(cat "$CUDA_DIR/version.json" 2>/dev/null | grep -m1 -o '"version" *: *"[0-9.]*"' || echo '?'))"
LIBDIRS=""
for d in "$CUDA_DIR/lib64" "$CUDA_DIR/lib" "$CUDA_DIR/targets/x86_64-linux/lib"; do
    [ -d "$d" ] && LIBDIRS="$LIBDIRS:$d"
done
for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do # the driver, where containers mount it
    [ -d "$d" ] && LIBDIRS="$LIBDIRS:$d"
done
# pip wheels of NVRTC / cuBLAS (next to PyTorch) as a fallback
PYLIB=$(python3 -c 'import nvidia, os; print(os.path.dirname(nvidia.__path__[0]))' 2>/dev/null || true)
if [ -n "$PYLIB" ]; then
    for d in "$PYLIB"/nvidia/cu13/lib "$PYLIB"/nvidia/cuda_nvrtc/lib "$PYLIB"/nvidia/cublas/lib; do
        [ -d "$d" ] && LIBDIRS="$LIBDIRS:$d"
    done
fi
export LD_LIBRARY_PATH="${LIBDIRS#:}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
say "library path: $LD_LIBRARY_PATH"
ls "$CUDA_DIR"/lib64/libnvrtc.so* "$CUDA_DIR"/lib64/libcublas.so* 2>/dev/null | head -6
ldconfig -p 2>/dev/null | grep -E "libcuda\.so" | head -2

# ---- build ------------------------------------------------------------------------------------
BIN=""
if [ "${GPU_CHECK_FORCE_DIRECT:-0}" != 1 ] && command -v autoreconf >/dev/null 2>&1; then
    say "autotools build"
    if (autoreconf -fi && ./configure --with-cuda="$CUDA_DIR" &&
        make -j16 libaqa.la tests/test_cuda_ops tests/test_nvrtc_compile tests/test_cuda_conv tests/test_cuda_nn tests/test_cuda_host bench/bench_cuda) >"$LOG/build.log" 2>&1; then
        BIN=$ROOT
        grep -E "warning:" "$LOG/build.log" | grep -E "tensor/cuda|test_cuda|test_nvrtc|bench_cuda" | head -20
    else
        say "autotools build failed; last lines:"
        tail -15 "$LOG/build.log"
    fi
else
    say "no autoreconf here (or GPU_CHECK_FORCE_DIRECT=1)"
fi

if [ -z "$BIN" ]; then
    say "direct gcc build (tensor core + autograd + CUDA backend, naive CBLAS stand-in)"
    B=$ROOT/.gpu-build
    rm -rf "$B"
    mkdir -p "$B/obj" "$B/inc"
    VERSION=$(sed -n 's/^AC_INIT(\[aqa\], \[\([^]]*\)\].*/\1/p' configure.ac)
    cat >"$B/inc/config.h" <<CONF
#define PACKAGE_VERSION "${VERSION:-0.0.0}"
#define VERSION "${VERSION:-0.0.0}"
#define AQA_HAVE_CUDA 1
#define AQA_CUDA_HOME "$CUDA_DIR"
CONF
    cat >"$B/inc/cblas.h" <<'CBLASH'
/* naive CBLAS stand-in for gpu-check's direct build (row-major only) */
#ifndef GPU_CHECK_CBLAS_H
#define GPU_CHECK_CBLAS_H
typedef int blasint;
enum CBLAS_ORDER { CblasRowMajor = 101, CblasColMajor = 102 };
enum CBLAS_TRANSPOSE { CblasNoTrans = 111, CblasTrans = 112, CblasConjTrans = 113 };
void cblas_sgemm(enum CBLAS_ORDER o, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, blasint m, blasint n, blasint k,
                 float alpha, const float *a, blasint lda, const float *b, blasint ldb, float beta, float *c, blasint ldc);
void cblas_dgemm(enum CBLAS_ORDER o, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, blasint m, blasint n, blasint k,
                 double alpha, const double *a, blasint lda, const double *b, blasint ldb, double beta, double *c,
                 blasint ldc);
void cblas_sgemv(enum CBLAS_ORDER o, enum CBLAS_TRANSPOSE t, blasint m, blasint n, float alpha, const float *a,
                 blasint lda, const float *x, blasint incx, float beta, float *y, blasint incy);
void cblas_dgemv(enum CBLAS_ORDER o, enum CBLAS_TRANSPOSE t, blasint m, blasint n, double alpha, const double *a,
                 blasint lda, const double *x, blasint incx, double beta, double *y, blasint incy);
#endif
CBLASH
    cat >"$B/cblas_naive.c" <<'CBLASC'
#include "cblas.h"
#define GEMM(NAME, T)                                                                                   \
    void NAME(enum CBLAS_ORDER o, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, blasint m, blasint n, \
              blasint k, T alpha, const T *a, blasint lda, const T *b, blasint ldb, T beta, T *c, blasint ldc) { \
        (void)o;                                                                                        \
        _Pragma("omp parallel for") for (blasint i = 0; i < m; i++) for (blasint j = 0; j < n; j++) {  \
            double acc = 0;                                                                             \
            for (blasint l = 0; l < k; l++)                                                             \
                acc += (double)(ta == CblasNoTrans ? a[(long)i * lda + l] : a[(long)l * lda + i]) *     \
                       (double)(tb == CblasNoTrans ? b[(long)l * ldb + j] : b[(long)j * ldb + l]);      \
            c[(long)i * ldc + j] = (T)(alpha * acc + (beta == 0 ? 0.0 : (double)beta * c[(long)i * ldc + j])); \
        }                                                                                               \
    }
GEMM(cblas_sgemm, float)
GEMM(cblas_dgemm, double)
#define GEMV(NAME, T)                                                                                   \
    void NAME(enum CBLAS_ORDER o, enum CBLAS_TRANSPOSE t, blasint m, blasint n, T alpha, const T *a, blasint lda, \
              const T *x, blasint incx, T beta, T *y, blasint incy) {                                   \
        (void)o;                                                                                        \
        blasint ny = t == CblasNoTrans ? m : n, nx = t == CblasNoTrans ? n : m;                         \
        for (blasint i = 0; i < ny; i++) {                                                              \
            double acc = 0;                                                                             \
            for (blasint l = 0; l < nx; l++)                                                            \
                acc += (double)(t == CblasNoTrans ? a[(long)i * lda + l] : a[(long)l * lda + i]) * (double)x[(long)l * incx]; \
            y[(long)i * incy] = (T)(alpha * acc + (beta == 0 ? 0.0 : (double)beta * y[(long)i * incy])); \
        }                                                                                               \
    }
GEMV(cblas_sgemv, float)
GEMV(cblas_dgemv, double)
CBLASC
    sh tensor/cuda/embed.sh tensor/cuda/kernels >"$B/kernels_text.c"
    CFLAGS="-O2 -g -std=gnu11 -fopenmp -Wall -Wextra -Wno-unused-parameter -I$B/inc -I$ROOT -I$CUDA_DIR/include"
    # nn layers too (test_cuda_ops runs them on the GPU); the weights-file code needs cJSON, which
    # this image may lack, so module.c's file functions link against stubs that report an error
    cat >"$B/st_stub.c" <<'STSTUB'
#include "tensor/tensor_file.h"
aqa_status aqa_st_open(const char *p, aqa_st_file **o) { (void)o; return aqa_fail(AQA_EUNSUPPORTED, "%s: no safetensors in the gpu-check build", p); }
void aqa_st_close(aqa_st_file *f) { (void)f; }
int aqa_st_count(const aqa_st_file *f) { (void)f; return 0; }
const char *aqa_st_name(const aqa_st_file *f, int i) { (void)f; (void)i; return ""; }
const aqa_st_tensor *aqa_st_get(const aqa_st_file *f, int i) { (void)f; (void)i; return 0; }
aqa_tensor *aqa_st_load(const aqa_st_file *f, const char *n, aqa_dtype d) { (void)f; (void)d; return aqa_fail_null("%s: no safetensors", n); }
int aqa_st_find(const aqa_st_file *f, const char *n) { (void)f; (void)n; return -1; }
const char *aqa_st_metadata(const aqa_st_file *f, const char *k) { (void)f; (void)k; return 0; }
int aqa_st_metadata_count(const aqa_st_file *f) { (void)f; return 0; }
aqa_status aqa_st_metadata_at(const aqa_st_file *f, int i, const char **k, const char **v) { (void)f; (void)i; (void)k; (void)v; return aqa_fail(AQA_EUNSUPPORTED, "no safetensors"); }
aqa_status aqa_save_tensors(const char *p, int n, const char *const *a, aqa_tensor *const *b, int m, const char *const *c, const char *const *d) { (void)n; (void)a; (void)b; (void)m; (void)c; (void)d; return aqa_fail(AQA_EUNSUPPORTED, "%s: no safetensors", p); }
STSTUB
    SRCS="$(ls base/*.c tensor/*.c ops/*.c autograd/*.c | grep -v tensor_file.c) io/atomic_file.c $(ls nn/*.c | grep -v checkpoint.c) $B/st_stub.c $(ls tensor/cuda/*.c | grep -v kernels_text.c) $B/kernels_text.c $B/cblas_naive.c"
    # the models bench_cuda and test_cuda_conv run (I3D without its clip loader: no image codecs)
    SRCS="$SRCS models/i3d/i3d.c $(ls models/mvla/*.c models/heads/*.c)"
    ok=1
    echo $SRCS | tr ' ' '\n' | xargs -P 16 -I{} sh -c 'gcc '"$CFLAGS"' -c {} -o '"$B"'/obj/$(echo {} | tr / _).o' \
        >"$LOG/build.log" 2>&1 || ok=0
    rm -f "$B/libaqa_direct.a" && ar rcs "$B/libaqa_direct.a" "$B"/obj/*.o
    for p in tests/test_cuda_ops tests/test_nvrtc_compile tests/test_cuda_conv tests/test_cuda_nn tests/test_cuda_host bench/bench_cuda; do
        mkdir -p "$B/$(dirname $p)"
        gcc $CFLAGS "$p.c" "$B/libaqa_direct.a" -o "$B/$p" -ldl -lpthread -lm >>"$LOG/build.log" 2>&1 || ok=0
    done
    grep -E "error|warning" "$LOG/build.log" | head -30
    if [ $ok = 1 ]; then BIN=$B; else say "FATAL: direct build failed"; tail -30 "$LOG/build.log"; exit 1; fi
fi
say "built in $BIN"

# ---- tests --------------------------------------------------------------------------------------
# outside $LOG: the device tool brings back at most 8 files from $OUT
export AQA_KERNEL_CACHE="${TMPDIR:-/tmp}/aqa-gpu-check-kernels"
rm -rf "$AQA_KERNEL_CACHE"
export AQA_CUDA_SYNC=1 AQA_CUDA_VERBOSE=1 AQA_REQUIRE_GPU=1
say "tests/test_cuda_ops"
timeout 300 "$BIN/tests/test_cuda_ops" 2>&1 | tee "$LOG/test_cuda_ops.log"
rc_ops=${PIPESTATUS[0]}
say "tests/test_cuda_ops exit $rc_ops; kernel cache now $(ls "$AQA_KERNEL_CACHE" 2>/dev/null | wc -l) files"
say "tests/test_cuda_ops again (warm disk cache, checks cached CUBINs load)"
timeout 200 "$BIN/tests/test_cuda_ops" >"$LOG/test_cuda_ops_2.log" 2>&1
rc_ops2=$?
grep -E "^(FAIL|SKIP)" "$LOG/test_cuda_ops_2.log" | head -10
say "second run exit $rc_ops2"
if [ "${GPU_CHECK_SANITIZER:-0}" = 1 ] && command -v compute-sanitizer >/dev/null; then
    say "compute-sanitizer memcheck on test_cuda_ops"
    timeout 300 compute-sanitizer --tool memcheck --error-exitcode 9 "$BIN/tests/test_cuda_ops" >"$LOG/sanitizer.log" 2>&1
    say "compute-sanitizer exit $?"
    grep -E "ERROR SUMMARY|Invalid|out of bounds" "$LOG/sanitizer.log" | head -10
fi
say "tests/test_cuda_conv"
timeout 150 "$BIN/tests/test_cuda_conv" 2>&1 | tee "$LOG/test_cuda_conv.log"
rc_conv=${PIPESTATUS[0]}
say "tests/test_cuda_conv exit $rc_conv"
say "tests/test_cuda_nn (fused layer norm, batch norm, pooling, Adam, softmax, reductions)"
timeout 150 "$BIN/tests/test_cuda_nn" 2>&1 | tee "$LOG/test_cuda_nn.log"
rc_cnn=${PIPESTATUS[0]}
say "tests/test_cuda_nn exit $rc_cnn"
say "tests/test_cuda_host (concurrent host threads, first bad index, reduction bits, arch)"
timeout 120 "$BIN/tests/test_cuda_host" 2>&1 | tee "$LOG/test_cuda_host.log"
say "tests/test_nvrtc_compile"
timeout 200 "$BIN/tests/test_nvrtc_compile" >"$LOG/test_nvrtc_compile.log" 2>&1
rc_nv=$?
grep -E "^(PASS|FAIL|SKIP)|sm_[0-9]+:" "$LOG/test_nvrtc_compile.log" | head -20

# ---- benchmarks -----------------------------------------------------------------------------------
unset AQA_CUDA_SYNC
say "bench/bench_cuda"
timeout 150 "$BIN/bench/bench_cuda" --no-models 2>&1 | tee "$LOG/bench_cuda.log"
say "scripts/bench_torch_cuda.py"
PYTHONUNBUFFERED=1 timeout 150 python3 scripts/bench_torch_cuda.py 2>&1 | tee "$LOG/bench_torch.log"
# the models: full I3D forward(+backward) on 9 clips of 16x224x224, the full-size MVLA training step
say "bench/bench_cuda --models (MVLA step, I3D 9x16x224x224)"
timeout 150 "$BIN/bench/bench_cuda" --models 2>&1 | tee -a "$LOG/bench_cuda.log"
say "torch: scripts/bench_torch_mvla.py / bench_torch_i3d.py --device cuda"
if python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    tm=$(PYTHONUNBUFFERED=1 timeout 60 python3 scripts/bench_torch_mvla.py --device cuda --steps 10 --machine 2>>"$LOG/bench_torch.log" | tail -1)
    [ -n "$tm" ] && echo "BENCH mvla_train_step_b8 $tm ms" | tee -a "$LOG/bench_torch.log"
    for c in fwdbwd9 fwd9; do
        ti=$(PYTHONUNBUFFERED=1 timeout 60 python3 scripts/bench_torch_i3d.py --case $c --device cuda --warm 1 --reps 3 2>>"$LOG/bench_torch.log" | tail -1 | awk '{print $1 * 1000}')
        name=i3d_fwdbwd_9x16x224; [ $c = fwd9 ] && name=i3d_fwd_9x16x224
        [ -n "$ti" ] && echo "BENCH $name $ti ms" | tee -a "$LOG/bench_torch.log"
    done
else
    say "torch sees no GPU: no torch numbers for the models"
fi

# ---- summary ------------------------------------------------------------------------------------
echo
echo "==================== gpu-check summary ($(( $(date +%s) - T0 )) s) ===================="
for f in test_cuda_ops test_cuda_ops_2 test_cuda_conv test_cuda_nn test_cuda_host test_nvrtc_compile; do
    l="$LOG/$f.log"
    [ -f "$l" ] || continue
    printf "%-22s PASS %3d  FAIL %3d  SKIP %3d\n" "$f" "$(grep -c '^PASS' "$l")" "$(grep -c '^FAIL' "$l")" "$(grep -c '^SKIP' "$l")"
    grep -E "^FAIL" "$l" | head -10
done
printf "%-40s %12s %12s %8s\n" "benchmark" "aqa" "torch" "ratio"
grep '^BENCH' "$LOG/bench_cuda.log" 2>/dev/null | while read -r _ name val unit; do
    tv=$(grep "^BENCH $name " "$LOG/bench_torch.log" 2>/dev/null | awk '{print $3}')
    if [ -n "$tv" ]; then
        # aqa's speed / torch's: throughputs divide as they are, times (ms) the other way round
        ratio=$(awk -v a="$val" -v b="$tv" -v u="$unit" 'BEGIN { if (u == "ms") { t = a; a = b; b = t }
                                                               if (b > 0) printf "%.2f", a / b; else print "-" }')
    else
        tv="-"; ratio="-"
    fi
    printf "%-40s %12s %12s %8s  %s\n" "$name" "$val" "$tv" "$ratio" "$unit"
done
echo "logs: $LOG"
[ $rc_ops = 0 ] && [ $rc_nv = 0 ] && [ $rc_conv = 0 ] && [ $rc_cnn = 0 ]
