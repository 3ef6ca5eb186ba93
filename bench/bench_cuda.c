/* bench_cuda.c: GPU throughput of aqa's CUDA backend through the public ops: GEMM TFLOP/s at
 * transformer sizes (FP32 and TF32), elementwise and reduction bandwidth, softmax.  Prints a
 * table and one "BENCH <name> <value> <unit>" line per row (scripts/gpu-check.sh pairs them with
 * scripts/bench_torch_cuda.py's numbers for the same shapes).  Exits 0 with a note when no GPU
 * is present.  Then the models (bench_models): full I3D forward+backward on 9 clips of 16x224x224
 * and bench_mvla's full-size MVLA training step, on the GPU (torch's numbers for them come from
 * scripts/bench_torch_i3d.py and scripts/bench_torch_mvla.py with --device cuda).
 * Usage: bench/bench_cuda [--quick] [--models | --no-models] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aqa.h"
#include "bench/mvla_step.h"
#include "models/heads/head.h"
#include "models/i3d/i3d.h"
#include "models/mvla/mvla.h"
#include "tensor/cuda/cuda.h"
#include "ops/ops.h"
#include "tensor/tensor-impl.h"

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

/* ---- models (I3D, MVLA) ----------------------------------------------------------------------- */

/* Milliseconds per call of body over reps calls after warm calls (synchronised); -1 on failure. */
#define TIME_MS(warm, reps, ok, ...)                                       \
    ({                                                                    \
        double t0_ = 0;                                                   \
        for (int r_ = 0; r_ < (warm) + (reps) && (ok); r_++) {            \
            if (r_ == (warm)) {                                           \
                aqa_cuda_synchronize(0);                                  \
                t0_ = now();                                              \
            }                                                             \
            aqa_scope_begin();                                            \
            __VA_ARGS__;                                                  \
            aqa_scope_end();                                              \
        }                                                                 \
        aqa_cuda_synchronize(0);                                          \
        (ok) ? 1e3 * (now() - t0_) / (reps) : -1.0;                       \
    })

/* pytorch-i3d's InceptionI3d to the 1024-d feature, train mode, loss = sum of the features, on 9
 * clips of 16x224x224 (scripts/bench_torch_i3d.py --case fwdbwd9 --device cuda).  The rows paired
 * with torch's use TF32 GEMMs, as torch's convolutions do by default (cudnn.allow_tf32); the
 * _fp32 row is full float32. */
static void bench_i3d(aqa_device dev, bool quick) {
    aqa_manual_seed(1);
    aqa_i3d *m = aqa_i3d_new(NULL);
    if (!m || aqa_module_to(&m->base, dev) != AQA_OK) {
        printf("bench_cuda: i3d setup failed: %s\n", aqa_last_error());
        if (m) aqa_module_free(&m->base);
        return;
    }
    int64_t B = 9, side = quick ? 112 : 224;
    aqa_tensor *x = aqa_to_device(aqa_rand(AQA_SHAPE(B, 3, 16, side, side), AQA_F32, NULL), dev);
    bool ok = x != NULL;
    char name[64];
    for (int tf = 1; tf >= 0 && ok; tf--) {
        aqa_cuda_set_tf32(tf == 1);
        aqa_module_train(&m->base, true);
        double ms = TIME_MS(1, quick ? 1 : 3, ok, {
            aqa_tensor *f = aqa_i3d_forward(m, x);
            ok = f && aqa_backward(aqa_sum_all(f), NULL, false) == AQA_OK;
            aqa_module_zero_grad(&m->base);
        });
        if (!ok) printf("bench_cuda: i3d forward+backward failed: %s\n", aqa_last_error());
        snprintf(name, sizeof name, "i3d_fwdbwd_9x16x%lld%s", (long long)side, tf ? "" : "_fp32");
        if (ok) row(name, ms, "ms");
        if (!tf || !ok) break;
        aqa_module_train(&m->base, false);
        bool prev = aqa_set_grad_enabled(false);
        ms = TIME_MS(1, quick ? 1 : 3, ok, ok = aqa_i3d_forward(m, x) != NULL);
        aqa_set_grad_enabled(prev);
        snprintf(name, sizeof name, "i3d_fwd_9x16x%lld", (long long)side);
        if (ok) row(name, ms, "ms");
    }
    aqa_cuda_set_tf32(false);
    aqa_cuda_mem_stats ms;
    if (aqa_cuda_memory_stats(0, &ms) == AQA_OK)
        printf("allocator after I3D: peak %.1f MiB in use\n", ms.peak_in_use / 1048576.0);
    aqa_tensor_free(x);
    aqa_module_free(&m->base);
}

/* bench/bench_mvla's case on the GPU: one full-size MVLA training step (TSA head) on cached
 * features, B = 8 pairs, forward + backward + Adam (scripts/bench_torch_mvla.py --device cuda). */
static void bench_mvla(aqa_device dev, bool quick) {
    mvla_step st;
    if (mvla_step_init(&st, dev)) {
        printf("bench_cuda: mvla setup failed: %s\n", aqa_last_error());
        return;
    }
    bool ok = true;
    double loss = 0;
    double ms = TIME_MS(2, quick ? 2 : 10, ok, {
        aqa_optim_zero_grad(st.opt);
        aqa_tensor *l = mvla_step_loss(&st, NULL, NULL);
        ok = l && aqa_backward(l, NULL, false) == AQA_OK && aqa_optim_step(st.opt) == AQA_OK;
        if (ok) loss = aqa_item(l);
    });
    if (ok) {
        printf("MVLA step: %d pairs, %d clips x %d, %d frames x %d, loss %.3f\n", MVLA_B, MVLA_N, MVLA_C, MVLA_T,
               MVLA_DC, loss);
        row("mvla_train_step_b8", ms, "ms");
    } else {
        printf("bench_cuda: mvla step failed: %s\n", aqa_last_error());
    }
    mvla_step_free(&st);
}

/* The models are built on the CPU and moved with aqa_module_to, as the training programs do
 * (the default device stays the CPU while they run). */
static void bench_models(aqa_device dev, bool quick) {
    aqa_device prev = aqa_default_device();
    aqa_set_default_device(AQA_DEVICE_CPU);
    bench_mvla(dev, quick);
    bench_i3d(dev, quick);
    aqa_set_default_device(prev);
    aqa_cuda_empty_cache(0);
}

/* ---- fused nn kernels (layer norm, batch norm, pooling, AdamW; scripts/bench_torch_cuda.py has
 * the same shapes) ------------------------------------------------------------------------------ */
static void bench_fused(double min_time, bool quick) {
    aqa_tensor *r = NULL;
    bool ok = true, prev;
    /* layer norm over CLIP ViT-B/16 activations [64 * 197, 768] (x read, y written) */
    aqa_tensor *x = aqa_requires_grad(aqa_randn(AQA_SHAPE(12608, 768), AQA_F32, NULL), true);
    aqa_tensor *w = aqa_requires_grad(aqa_randn(AQA_SHAPE(768), AQA_F32, NULL), true);
    aqa_tensor *b = aqa_requires_grad(aqa_randn(AQA_SHAPE(768), AQA_F32, NULL), true);
    aqa_tensor *gy = aqa_randn(AQA_SHAPE(12608, 768), AQA_F32, NULL);
    int64_t D = 768;
    prev = aqa_set_grad_enabled(false);
    double t = TIME_GPU(min_time, r = aqa_layer_norm(x, 1, &D, w, b, 1e-5));
    aqa_set_grad_enabled(prev);
    if (r) row("layer_norm_f32_12608x768", 2.0 * 4 * aqa_numel(x) / t / 1e9, "GB/s");
    t = TIME_GPU(min_time, r = aqa_layer_norm(x, 1, &D, w, b, 1e-5); ok = r && aqa_backward(r, gy, false) == AQA_OK);
    if (ok) row("layer_norm_fwdbwd_f32_12608x768", 1e3 * t, "ms");
    aqa_tensor *fr[] = {x, w, b, gy};
    for (int i = 0; i < 4; i++) aqa_tensor_free(fr[i]);
    /* BatchNorm3d (training) over an I3D-sized activation [8, 64, 16, 56, 56] */
    x = aqa_requires_grad(aqa_randn(AQA_SHAPE(8, 64, 16, 56, 56), AQA_F32, NULL), true);
    w = aqa_requires_grad(aqa_randn(AQA_SHAPE(64), AQA_F32, NULL), true);
    b = aqa_requires_grad(aqa_randn(AQA_SHAPE(64), AQA_F32, NULL), true);
    gy = aqa_randn(AQA_SHAPE(8, 64, 16, 56, 56), AQA_F32, NULL);
    prev = aqa_set_grad_enabled(false);
    t = TIME_GPU(min_time, r = aqa_batch_norm(x, NULL, NULL, w, b, true, 0.1, 1e-5));
    aqa_set_grad_enabled(prev);
    if (r) row("batch_norm3d_f32_8x64x16x56x56", 1e3 * t, "ms");
    t = TIME_GPU(min_time, r = aqa_batch_norm(x, NULL, NULL, w, b, true, 0.1, 1e-5);
                 ok = r && aqa_backward(r, gy, false) == AQA_OK);
    if (ok) row("batch_norm3d_fwdbwd_f32_8x64x16x56x56", 1e3 * t, "ms");
    aqa_tensor_free(w);
    aqa_tensor_free(b);
    aqa_tensor_free(gy);
    /* the MaxPool3d of I3D's stem, (1, 3, 3) / (1, 2, 2) / pad (0, 1, 1), on the same activation */
    int64_t k[3] = {1, 3, 3}, s[3] = {1, 2, 2}, p[3] = {0, 1, 1};
    prev = aqa_set_grad_enabled(false);
    t = TIME_GPU(min_time, r = aqa_max_pool(x, 3, k, s, p, NULL, false, NULL));
    aqa_set_grad_enabled(prev);
    if (r) row("maxpool3d_f32_8x64x16x56x56", 1e3 * t, "ms");
    gy = aqa_randn(AQA_SHAPE(8, 64, 16, 28, 28), AQA_F32, NULL);
    t = TIME_GPU(min_time, r = aqa_max_pool(x, 3, k, s, p, NULL, false, NULL);
                 ok = r && aqa_backward(r, gy, false) == AQA_OK);
    if (ok) row("maxpool3d_fwdbwd_f32_8x64x16x56x56", 1e3 * t, "ms");
    aqa_tensor_free(x);
    aqa_tensor_free(gy);
    /* one AdamW step over 100M parameters in 100 tensors of 1M (gradients set once) */
    int np = quick ? 10 : 100;
    int64_t pn = 1 << 20;
    aqa_tensor **ps = calloc((size_t)np, sizeof *ps);
    for (int i = 0; i < np; i++) {
        ps[i] = aqa_requires_grad(aqa_randn(AQA_SHAPE(pn), AQA_F32, NULL), true);
        aqa_tensor *g = aqa__new_unowned(1, &pn, AQA_F32, aqa_tensor_device(ps[i]));
        aqa_scope_begin();
        if (g) aqa_copy_(g, aqa_randn(AQA_SHAPE(pn), AQA_F32, NULL));
        aqa_scope_end();
        ps[i]->grad = g;
    }
    aqa_optimizer *opt = aqa_adamw_new(&(aqa_adam_options)AQA_ADAMW_DEFAULTS);
    if (opt && aqa_optim_add_params(opt, ps, np) >= 0) {
        t = TIME_GPU(min_time, ok = aqa_optim_step(opt) == AQA_OK);
        char name[64];
        snprintf(name, sizeof name, "adamw_step_f32_%dM", np);
        if (ok) row(name, 1e3 * t, "ms");
    }
    aqa_optim_free(opt);
    for (int i = 0; i < np; i++) aqa_tensor_free(ps[i]);
    free(ps);
    /* softmax over CLIP text attention scores [64 * 8 * 77, 77] */
    x = aqa_randn(AQA_SHAPE(64 * 8 * 77, 77), AQA_F32, NULL);
    t = TIME_GPU(min_time, r = aqa_softmax(x, 1));
    row("softmax_f32_39424x77", 2.0 * 4 * aqa_numel(x) / t / 1e9, "GB/s");
    aqa_tensor_free(x);
    /* attention at CLIP's sizes: ViT-B/16 [64, 12, 197, 64], the text tower's causal [64, 8, 77, 64] */
    for (int c = 0; c < 2; c++) {
        int64_t H = c ? 8 : 12, T = c ? 77 : 197;
        aqa_tensor *qkv[3], *go = aqa_randn(AQA_SHAPE(64, H, T, 64), AQA_F32, NULL);
        for (int i = 0; i < 3; i++) qkv[i] = aqa_requires_grad(aqa_randn(AQA_SHAPE(64, H, T, 64), AQA_F32, NULL), true);
        char name[80];
        for (int fused = 1; fused >= 0; fused--) {
            if (!fused) setenv("AQA_ATTENTION_FUSED", "0", 1);
            prev = aqa_set_grad_enabled(false);
            t = TIME_GPU(min_time, r = aqa_scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], NULL, 0.0, c == 1, 0.0));
            aqa_set_grad_enabled(prev);
            snprintf(name, sizeof name, "sdpa%s_fwd%s_f32_64x%lldx%lldx64", c ? "_causal" : "", fused ? "" : "_composed",
                     (long long)H, (long long)T);
            if (r) row(name, 1e3 * t, "ms");
            t = TIME_GPU(min_time, r = aqa_scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], NULL, 0.0, c == 1, 0.0);
                         ok = r && aqa_backward(r, go, false) == AQA_OK);
            snprintf(name, sizeof name, "sdpa%s_fwdbwd%s_f32_64x%lldx%lldx64", c ? "_causal" : "",
                     fused ? "" : "_composed", (long long)H, (long long)T);
            if (ok) row(name, 1e3 * t, "ms");
            unsetenv("AQA_ATTENTION_FUSED");
        }
        for (int i = 0; i < 3; i++) aqa_tensor_free(qkv[i]);
        aqa_tensor_free(go);
    }
    (void)r;
}

int main(int argc, char **argv) {
    bool quick = false, models = true, ops = true;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = true;
        else if (!strcmp(argv[i], "--models")) ops = false;
        else if (!strcmp(argv[i], "--no-models")) models = false;
    }
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
    if (!ops) goto models;

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
    bench_fused(min_time, quick);
    (void)r;
    aqa_cuda_mem_stats ms;
    if (aqa_cuda_memory_stats(0, &ms) == AQA_OK)
        printf("allocator: peak %.1f MiB in use, %.1f MiB cached, %llu cuMemAlloc calls, %llu cache hits\n",
               ms.peak_in_use / 1048576.0, ms.cached / 1048576.0, (unsigned long long)ms.device_allocs,
               (unsigned long long)ms.cache_hits);
models:
    if (models) bench_models(dev, quick);
    return 0;
}
