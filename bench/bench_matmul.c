/* bench_matmul.c: f32 matmul through aqa (aqa_matmul) beside OpenBLAS's cblas_sgemm called
 * directly on the same buffers, and a 2-layer MLP forward+backward step; prints a table.
 * Usage: bench/bench_matmul [--quick] */
#include <cblas.h>
#include "aqa.h"
#include "bench/bench_util.h"

int main(int argc, char **argv) {
    bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    double min_time = quick ? 0.05 : 0.5;
    int sizes[][3] = {{256, 256, 256}, {1024, 1024, 1024}, {197 * 8, 768, 768}, {197 * 8, 3072, 768}, {2048, 2048, 2048}};
    int n_sizes = quick ? 2 : 5;
    printf("f32 matmul, C[m,n] = A[m,k] B[k,n]   (threads: OpenBLAS default)\n");
    printf("%-18s %12s %12s %8s\n", "m x n x k", "aqa GF/s", "sgemm GF/s", "ratio");
    aqa_manual_seed(1);
    for (int s = 0; s < n_sizes; s++) {
        int m = sizes[s][0], n = sizes[s][1], k = sizes[s][2];
        aqa_scope_begin();
        aqa_tensor *a = aqa_randn(AQA_SHAPE(m, k), AQA_F32, NULL);
        aqa_tensor *b = aqa_randn(AQA_SHAPE(k, n), AQA_F32, NULL);
        aqa_tensor *c = aqa_empty(AQA_SHAPE(m, n), AQA_F32);
        double flops = 2.0 * m * n * k;
        double t_aqa = BENCH_BEST(1, min_time, {
            aqa_scope_begin();
            aqa_matmul(a, b);
            aqa_scope_end();
        });
        double t_blas = BENCH_BEST(1, min_time, cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f,
                                                        aqa_data(a), k, aqa_data(b), n, 0.0f, aqa_data(c), n));
        char label[32];
        snprintf(label, sizeof label, "%dx%dx%d", m, n, k);
        printf("%-18s %12.1f %12.1f %8.2f\n", label, flops / t_aqa * 1e-9, flops / t_blas * 1e-9, t_blas / t_aqa);
        aqa_scope_end();
    }

    /* 2-layer MLP step: [256, 512] -> 1024 (GELU) -> 10, cross-entropy, backward */
    aqa_tensor *w1 = aqa_requires_grad(aqa_mul_scalar(aqa_randn(AQA_SHAPE(1024, 512), AQA_F32, NULL), 0.04), true);
    aqa_tensor *w2 = aqa_requires_grad(aqa_mul_scalar(aqa_randn(AQA_SHAPE(10, 1024), AQA_F32, NULL), 0.03), true);
    aqa_tensor *x = aqa_randn(AQA_SHAPE(256, 512), AQA_F32, NULL);
    aqa_tensor *y = aqa_randint(0, 10, AQA_SHAPE(256, 1), NULL);
    double t_mlp = BENCH_BEST(1, min_time, {
        aqa_scope_begin();
        aqa_tensor *h = aqa_gelu(aqa_matmul(x, aqa_transpose(w1, 0, 1)));
        aqa_tensor *logp = aqa_log_softmax(aqa_matmul(h, aqa_transpose(w2, 0, 1)), 1);
        aqa_tensor *loss = aqa_neg(aqa_mean_all(aqa_gather(logp, 1, y)));
        aqa_backward(loss, NULL, false);
        aqa_zero_grad(w1);
        aqa_zero_grad(w2);
        aqa_scope_end();
    });
    printf("\nMLP 512-1024-10, batch 256, forward+backward: %.2f ms/step\n", t_mlp * 1e3);
    aqa_tensor_free(w1);
    aqa_tensor_free(w2);
    aqa_tensor_free(x);
    aqa_tensor_free(y);
    return 0;
}
