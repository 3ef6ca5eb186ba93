/* bench_conv.c: Conv3d forward and forward+backward on an I3D-sized layer (x [1, 192, 8, 28, 28],
 * 3x3x3 kernel to 192 channels, padding 1), in ms and GFLOP/s, beside PyTorch's time for the same
 * layer (scripts/bench_torch_conv.py; conventions of bench/bench_util.h).
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
    double tt[2] = {0, 0};
    bool have = bench_torch_times("bench_torch_conv.py", NULL, tt, 2);
    bench_print_setup("Conv3d x [1, 192, 8, 28, 28], 3x3x3 kernel -> 192 channels, padding 1, float32");
    bench_print_head();
    bench_row("Conv3d 1x192x8x28x28, 3^3 -> 192, forward", "ms", t_f * 1e3, have ? tt[0] : 0, false, true);
    bench_row("Conv3d same, forward + backward", "ms", t_fb * 1e3, have ? tt[1] : 0, false, true);
    bench_row("Conv3d forward", "GFLOP/s", flops_f / t_f * 1e-9, have ? flops_f / tt[0] * 1e-6 : 0, true, false);
    bench_row("Conv3d forward + backward", "GFLOP/s", 3 * flops_f / t_fb * 1e-9, have ? 3 * flops_f / tt[1] * 1e-6 : 0,
              true, false);
    bench_print_foot();
    return 0;
}
