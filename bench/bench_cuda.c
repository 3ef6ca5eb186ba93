/* bench_cuda.c: GPU throughput of aqa's CUDA backend through the public ops: GEMM TFLOP/s at
 * transformer sizes (FP32 and TF32), elementwise and reduction bandwidth, softmax.  Prints a
 * table and one "BENCH <name> <value> <unit>" line per row (scripts/gpu-check.sh pairs them with
 * scripts/bench_torch_cuda.py's numbers for the same shapes).  Exits 0 with a note when no GPU
 * is present.  Usage: bench/bench_cuda [--quick] */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "aqa.h"
#include "tensor/cuda/cuda.h"
#include "tensor/ops.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Seconds per call of body: 3 warm-up calls, then repeats for at least min_time, synchronised. */
#define TIME_GPU(min_time, body)                                        \
    ({                                                                  \
        for (int w_ = 0; w_ < 3; w_++) { aqa_scope_begin(); body; aqa_scope_end(); } \
        aqa_cuda_synchronize(0);                                        \
        int reps_ = 0;                                                  \
        double t0_ = now(), el_;                                        \
        do {                                                            \
            aqa_scope_begin();                                          \
            body;                                                       \
            aqa_scope_end();                                            \
            reps_++;                                                    \
            if (reps_ % 8 == 0) aqa_cuda_synchronize(0);                \
        } while ((el_ = now() - t0_) < (min_time) || reps_ % 8 != 0);   \
        aqa_cuda_synchronize(0);                                        \
        el_ = now() - t0_;                                              \
        el_ / reps_;                                                    \
    })

static void row(const char *name, double value, const char *unit) {
    printf("%-40s %10.2f %s\n", name, value, unit);
    printf("BENCH %s %.4f %s\n", name, value, unit);
}

int main(int argc, char **argv) {
    bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    double min_time = quick ? 0.05 : 0.3;
    if (!aqa_cuda_is_available()) {
        printf("bench_cuda: skipped, no GPU: %s\n", aqa_last_error());
        return 0;
    }
    char ver[512];
    printf("%s\n", aqa_cuda_version_string(ver, sizeof ver));
    aqa_device dev = aqa_cuda_device(0);
    aqa_set_default_device(dev);
    aqa_manual_seed(1);

    /* GEMM: (batch, m, n, k) at ViT-B/16 (batch 64: 64 * 197 tokens, width 768) sizes */
    int64_t g[][4] = {{1, 12608, 768, 768},  {1, 12608, 3072, 768}, {1, 12608, 768, 3072},
                      {1, 4096, 4096, 4096}, {768, 197, 197, 64},   {768, 197, 64, 197}};
    int ng = quick ? 2 : 6;
    for (int tf = 0; tf < 2; tf++) {
        aqa_cuda_set_tf32(tf == 1);
        for (int i = 0; i < ng; i++) {
            int64_t b = g[i][0], m = g[i][1], n = g[i][2], k = g[i][3];
            aqa_tensor *A = b > 1 ? aqa_randn(AQA_SHAPE(b, m, k), AQA_F32, NULL) : aqa_randn(AQA_SHAPE(m, k), AQA_F32, NULL);
            aqa_tensor *B = b > 1 ? aqa_randn(AQA_SHAPE(b, k, n), AQA_F32, NULL) : aqa_randn(AQA_SHAPE(k, n), AQA_F32, NULL);
            if (!A || !B) {
                printf("bench_cuda: %s\n", aqa_last_error());
                return 1;
            }
            aqa_tensor *r = NULL;
            double t = TIME_GPU(min_time, r = aqa_matmul(A, B));
            if (!r) {
                printf("bench_cuda: matmul failed: %s\n", aqa_last_error());
                return 1;
            }
            char name[80];
            snprintf(name, sizeof name, "gemm_%s_%lldx%lldx%lldx%lld", tf ? "tf32" : "fp32", (long long)b, (long long)m,
                     (long long)n, (long long)k);
            row(name, 2.0 * b * m * n * k / t / 1e12, "TFLOP/s");
            aqa_tensor_free(A);
            aqa_tensor_free(B);
        }
    }
    aqa_cuda_set_tf32(false);

    /* bandwidth: c = a + b over 64M floats (3 x 256 MB moved), sum, gelu, a transposed copy */
    int64_t N = quick ? (1 << 24) : (1 << 26);
    aqa_tensor *a = aqa_randn(AQA_SHAPE(N), AQA_F32, NULL), *bb = aqa_randn(AQA_SHAPE(N), AQA_F32, NULL);
    aqa_tensor *r = NULL;
    double t = TIME_GPU(min_time, r = aqa_add(a, bb));
    row("add_f32_64M", 3.0 * 4 * N / t / 1e9, "GB/s");
    t = TIME_GPU(min_time, r = aqa_gelu(a));
    row("gelu_f32_64M", 2.0 * 4 * N / t / 1e9, "GB/s");
    t = TIME_GPU(min_time, r = aqa_sum_all(a));
    row("sum_f32_64M", 4.0 * N / t / 1e9, "GB/s");
    aqa_tensor *a2 = aqa_view(a, AQA_SHAPE(8192, N / 8192));
    t = TIME_GPU(min_time, r = aqa_contiguous(aqa_transpose(a2, 0, 1)));
    row("transpose_copy_f32_64M", 2.0 * 4 * N / t / 1e9, "GB/s");
    t = TIME_GPU(min_time, r = aqa_sum(a2, 1, (int[]){0}, false));
    row("sum_dim0_f32_8192xN", 4.0 * N / t / 1e9, "GB/s");
    aqa_tensor_free(a);
    aqa_tensor_free(bb);

    /* softmax over attention scores [64 * 12 * 197, 197] */
    aqa_tensor *s = aqa_randn(AQA_SHAPE(64 * 12 * 197, 197), AQA_F32, NULL);
    t = TIME_GPU(min_time, r = aqa_softmax(s, 1));
    row("softmax_f32_151296x197", 2.0 * 4 * aqa_numel(s) / t / 1e9, "GB/s");
    aqa_tensor_free(s);
    (void)r;
    aqa_cuda_mem_stats ms;
    if (aqa_cuda_memory_stats(0, &ms) == AQA_OK)
        printf("allocator: peak %.1f MiB in use, %.1f MiB cached, %llu cuMemAlloc calls, %llu cache hits\n",
               ms.peak_in_use / 1048576.0, ms.cached / 1048576.0, (unsigned long long)ms.device_allocs,
               (unsigned long long)ms.cache_hits);
    return 0;
}
