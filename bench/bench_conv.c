/* bench_conv.c: Conv3d forward and forward+backward on an I3D-sized layer (x [1, 192, 8, 28, 28],
 * 3x3x3 kernel to 192 channels, padding 1), in ms and GFLOP/s, beside PyTorch's time for the same
 * layer (scripts/bench_torch_conv.py, run when python3 with torch is present; AQA_BENCH_TORCH=0
 * skips it) and the ratio.
 * Usage: bench/bench_conv [--quick] */
#include "autograd/autograd.h"
#include "bench/bench_util.h"
#include "nn/conv.h"
#include "ops/ops.h"

int main(int argc, char **argv) {
    bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    int reps = quick ? 1 : 5;
    const int64_t N = 1, C = 192, D = 8, H = 28, W = 28, O = 192, K = 3;
    aqa_manual_seed(1);
    aqa_scope_begin();
    aqa_tensor *x = aqa_requires_grad(aqa_randn(AQA_SHAPE(N, C, D, H, W), AQA_F32, NULL), true);
    aqa_tensor *w = aqa_requires_grad(aqa_mul_scalar(aqa_randn(AQA_SHAPE(O, C, K, K, K), AQA_F32, NULL), 0.02), true);
    aqa_tensor *b = aqa_requires_grad(aqa_zeros(AQA_SHAPE(O), AQA_F32), true);
    aqa_tensor *gy = aqa_randn(AQA_SHAPE(N, O, D, H, W), AQA_F32, NULL);
    aqa_conv_opts o = {.padding = {1, 1, 1}};
    double flops_f = 2.0 * N * O * D * H * W * (C * K * K * K);
    double t_f = BENCH_BEST(reps, 0, {
        aqa_scope_begin();
        bool prev = aqa_set_grad_enabled(false);
        aqa_conv3d(x, w, b, &o);
        aqa_set_grad_enabled(prev);
        aqa_scope_end();
    });
    double t_fb = BENCH_BEST(reps, 0, {
        aqa_scope_begin();
        aqa_tensor *y = aqa_conv3d(x, w, b, &o);
        aqa_backward(y, gy, false);
        aqa_zero_grad(x);
        aqa_zero_grad(w);
        aqa_zero_grad(b);
        aqa_scope_end();
    });
    aqa_scope_end();
    printf("Conv3d x[1,192,8,28,28] k3x3x3 -> 192, pad 1, f32 (column budget %zu MiB)\n", aqa_conv_tile_bytes() >> 20);
    printf("%-22s %10s %10s %10s %10s\n", "", "aqa ms", "GFLOP/s", "torch ms", "ratio");
    double tt[2] = {0, 0};
    bool have_torch = bench_torch_times("bench_torch_conv.py", NULL, tt, 2);
    double tf = tt[0], tfb = tt[1];
    if (have_torch) {
        printf("%-22s %10.1f %10.1f %10.1f %10.2f\n", "forward", t_f * 1e3, flops_f / t_f * 1e-9, tf, t_f * 1e3 / tf);
        printf("%-22s %10.1f %10.1f %10.1f %10.2f\n", "forward+backward", t_fb * 1e3, 3 * flops_f / t_fb * 1e-9, tfb,
               t_fb * 1e3 / tfb);
    } else {
        printf("%-22s %10.1f %10.1f %10s %10s\n", "forward", t_f * 1e3, flops_f / t_f * 1e-9, "n/a", "");
        printf("%-22s %10.1f %10.1f %10s %10s\n", "forward+backward", t_fb * 1e3, 3 * flops_f / t_fb * 1e-9, "n/a", "");
    }
    printf("(ratio = aqa time / torch time; torch with torch.set_num_threads(2))\n");
    return 0;
}
