/* bench_matmul.c: float32 matmul through aqa (aqa_matmul: OpenBLAS on one thread per part, the
 * product split over aqa's OpenMP team) in GFLOP/s, and a 2-layer MLP forward+backward step in ms,
 * beside PyTorch (torch.mm, scripts/bench_torch_matmul.py; conventions of bench/bench_util.h).
 * Usage: bench/bench_matmul [--quick] */
#include "aqa.h"
#include "bench/bench_util.h"

int main(int argc, char **argv) {
    bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    double min_time = quick ? 0.05 : 0.5;
    const int sizes[][3] = {{256, 256, 256}, {1024, 1024, 1024}, {2048, 2048, 2048}};
    const int n_sizes = quick ? 2 : 3;
    double gf[3];
    aqa_manual_seed(1);
    for (int s = 0; s < n_sizes; s++) {
        int m = sizes[s][0], n = sizes[s][1], k = sizes[s][2];
        aqa_scope_begin();
        aqa_tensor *a = aqa_randn(AQA_SHAPE(m, k), AQA_F32, NULL);
        aqa_tensor *b = aqa_randn(AQA_SHAPE(k, n), AQA_F32, NULL);
        double t = BENCH_BEST(1, min_time, aqa_matmul(a, b));
        gf[s] = 2.0 * m * n * k / t * 1e-9;
        aqa_scope_end();
    }

    /* 2-layer MLP step: [256, 512] -> 1024 (GELU) -> 10, cross-entropy, backward */
    aqa_tensor *w1 = aqa_requires_grad(aqa_mul_scalar(aqa_randn(AQA_SHAPE(1024, 512), AQA_F32, NULL), 0.04), true);
    aqa_tensor *w2 = aqa_requires_grad(aqa_mul_scalar(aqa_randn(AQA_SHAPE(10, 1024), AQA_F32, NULL), 0.03), true);
    aqa_tensor *x = aqa_randn(AQA_SHAPE(256, 512), AQA_F32, NULL);
    aqa_tensor *y = aqa_randint(0, 10, AQA_SHAPE(256, 1), NULL);
    double t_mlp = BENCH_BEST(1, min_time, {
        aqa_tensor *h = aqa_gelu(aqa_matmul(x, aqa_transpose(w1, 0, 1)));
        aqa_tensor *logp = aqa_log_softmax(aqa_matmul(h, aqa_transpose(w2, 0, 1)), 1);
        aqa_tensor *loss = aqa_neg(aqa_mean_all(aqa_gather(logp, 1, y)));
        aqa_backward(loss, NULL, false);
        aqa_zero_grad(w1);
        aqa_zero_grad(w2);
    });

    double tt[4] = {0, 0, 0, 0};
    char args[160] = "--min-s 0.5 --sizes ";
    for (int s = 0; s < n_sizes; s++)
        snprintf(args + strlen(args), sizeof args - strlen(args), "%s%d,%d,%d", s ? ";" : "'", sizes[s][0],
                 sizes[s][1], sizes[s][2]);
    strcat(args, "'");
    bool have = !quick && bench_torch_times("bench_torch_matmul.py", args, tt, n_sizes + 1);
    bench_print_setup("float32 matmul C[m, n] = A[m, k] B[k, n], and an MLP 512-1024-10 step (batch 256)");
    bench_print_head();
    for (int s = 0; s < n_sizes; s++) {
        char label[48];
        if (sizes[s][0] == sizes[s][1] && sizes[s][1] == sizes[s][2]) snprintf(label, sizeof label, "sgemm %d^3", sizes[s][0]);
        else snprintf(label, sizeof label, "sgemm %dx%dx%d", sizes[s][0], sizes[s][1], sizes[s][2]);
        bench_row(label, "GFLOP/s", gf[s], have ? tt[s] : 0, true, sizes[s][0] == 2048);
    }
    bench_row("MLP 512-1024-10 forward + backward", "ms", t_mlp * 1e3, have ? tt[n_sizes] : 0, false, false);
    bench_print_foot();
    aqa_tensor_free(w1);
    aqa_tensor_free(w2);
    aqa_tensor_free(x);
    aqa_tensor_free(y);
    return 0;
}
