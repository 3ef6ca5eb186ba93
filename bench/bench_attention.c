/* bench_attention.c: the transformer layers at CLIP ViT-B/16 size (batch 8, seq 197, width 768,
 * 12 heads, MLP 3072, float32): MultiheadAttention forward and forward+backward, Linear 768->3072,
 * LayerNorm(768) and one pre-norm TransformerEncoderLayer (gelu, eval) forward+backward, in ms,
 * beside PyTorch's times for the same shapes (scripts/bench_torch_attention.py; conventions of
 * bench/bench_util.h).
 * Usage: bench/bench_attention [--quick] */
#include "autograd/autograd.h"
#include "bench/bench_util.h"
#include "nn/attention.h"
#include "nn/linear.h"
#include "nn/norm_layer.h"
#include "nn/transformer.h"
#include "ops/ops.h"

#define N_CASES 5

int main(int argc, char **argv) {
    bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    int reps = quick ? 1 : 5;
    const int64_t N = 8, L = 197, E = 768, H = 12, FF = 3072;
    aqa_manual_seed(1);
    aqa_tensor *x = aqa_requires_grad(aqa_randn(AQA_SHAPE(N, L, E), AQA_F32, NULL), true);
    aqa_tensor *gy = aqa_randn(AQA_SHAPE(N, L, E), AQA_F32, NULL);
    aqa_tensor *gl = aqa_randn(AQA_SHAPE(N, L, FF), AQA_F32, NULL);
    aqa_mha_layer *mha = aqa_mha_layer_new(NULL, "", E, H, 0.0, true, true);
    aqa_linear_layer *lin = aqa_linear_layer_new(NULL, "", E, FF, true);
    aqa_layer_norm_layer *ln = aqa_layer_norm_layer_new(NULL, "", 1, &E, 1e-5, true);
    aqa_transformer_config cfg = aqa_transformer_config_default(E, H);
    cfg.dim_feedforward = FF;
    cfg.dropout = 0.0;
    cfg.activation = AQA_ACT_GELU;
    cfg.batch_first = cfg.norm_first = true;
    aqa_transformer_encoder_layer *tel = aqa_transformer_encoder_layer_new(NULL, "", &cfg);
    if (!x || !mha || !lin || !ln || !tel) {
        fprintf(stderr, "bench_attention: setup failed: %s\n", aqa_last_error());
        return 1;
    }
    aqa_module_train(&tel->base, false);
    double t[N_CASES];
    bool prev = aqa_set_grad_enabled(false);
    t[0] = 1e3 * BENCH_BEST(reps, 0, aqa_mha_layer_forward(mha, x, x, x, NULL, NULL, NULL));
    aqa_set_grad_enabled(prev);
    t[1] = 1e3 * BENCH_BEST(reps, 0, aqa_backward(aqa_mha_layer_forward(mha, x, x, x, NULL, NULL, NULL), gy, false); aqa_zero_grad(x));
    t[2] = 1e3 * BENCH_BEST(reps, 0, aqa_backward(aqa_linear_layer_forward(lin, x), gl, false); aqa_zero_grad(x));
    t[3] = 1e3 * BENCH_BEST(reps, 0, aqa_backward(aqa_layer_norm_layer_forward(ln, x), gy, false); aqa_zero_grad(x));
    t[4] = 1e3 * BENCH_BEST(reps, 0, aqa_backward(aqa_transformer_encoder_layer_forward(tel, x, NULL, NULL), gy, false); aqa_zero_grad(x));
    const char *names[N_CASES] = {"MultiheadAttention forward", "MultiheadAttention forward + backward",
                                  "Linear 768 -> 3072 forward + backward", "LayerNorm 768 forward + backward",
                                  "TransformerEncoderLayer forward + backward"};
    const bool summary[N_CASES] = {false, false, false, true, true};
    double tt[N_CASES];
    bool have = !quick && bench_torch_times("bench_torch_attention.py", NULL, tt, N_CASES);
    char title[160];
    snprintf(title, sizeof title, "transformer layers, batch %lld, seq %lld, width %lld, %lld heads, MLP %lld, float32",
             (long long)N, (long long)L, (long long)E, (long long)H, (long long)FF);
    bench_print_setup(title);
    bench_print_head();
    for (int i = 0; i < N_CASES; i++) bench_row(names[i], "ms", t[i], have ? tt[i] : 0, false, summary[i]);
    bench_print_foot();
    aqa_module_free(&mha->base);
    aqa_module_free(&lin->base);
    aqa_module_free(&ln->base);
    aqa_module_free(&tel->base);
    aqa_tensor_free(x);
    aqa_tensor_free(gy);
    aqa_tensor_free(gl);
    return 0;
}
