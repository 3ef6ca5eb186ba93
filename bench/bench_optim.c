/* bench_optim.c: one AdamW step (lr 1e-3, weight decay 1e-2) over 10 float32 tensors of 2^20
 * elements (10.5M parameters, gradients set), ms per step (best of 10 after 3 warm-up steps),
 * on aqa's fused CPU path and on its composed (op by op) path, beside PyTorch's times for
 * foreach=False / foreach=True / fused=True (scripts/bench_torch_optim.py; conventions of
 * bench/bench_util.h).
 * Usage: bench/bench_optim [--quick] */
#include "autograd/autograd.h"
#include "bench/bench_util.h"
#include "nn/optim.h"
#include "ops/ops.h"
#include "tensor/tensor-impl.h"

#define N_TENSORS 10
#define SIZE (1 << 20)

/* ms per AdamW step; strided = parameters are every other element of a twice larger buffer,
 * which sends the update down the composed path. */
static double bench(bool strided, int reps) {
    aqa_tensor *params[N_TENSORS], *bases[N_TENSORS] = {0};
    aqa_manual_seed(0);
    for (int i = 0; i < N_TENSORS; i++) {
        if (strided) {
            bases[i] = aqa_randn(AQA_SHAPE(2 * SIZE), AQA_F32, NULL);
            aqa_scope_begin();
            params[i] = aqa_keep(aqa_slice(bases[i], 0, 0, 2 * SIZE, 2));
            aqa_scope_end();
        } else {
            params[i] = aqa_randn(AQA_SHAPE(SIZE), AQA_F32, NULL);
        }
        aqa_requires_grad(params[i], true);
        aqa_tensor *g = aqa__new_unowned(1, (int64_t[]){SIZE}, AQA_F32, AQA_DEVICE_CPU);
        aqa_normal_(g, 0, 1, NULL);
        params[i]->grad = g;
    }
    aqa_adam_options o = AQA_ADAMW_DEFAULTS;
    aqa_optimizer *opt = aqa_adamw_new(&o);
    aqa_optim_add_params(opt, params, N_TENSORS);
    for (int i = 0; i < 2; i++) aqa_optim_step(opt); /* with BENCH_BEST's warm-up: 3 steps before timing */
    double best = BENCH_BEST(reps, 0, {
        if (aqa_optim_step(opt) != AQA_OK) {
            fprintf(stderr, "bench_optim: %s\n", aqa_last_error());
            exit(1);
        }
    });
    aqa_optim_free(opt);
    for (int i = 0; i < N_TENSORS; i++) {
        aqa_zero_grad(params[i]);
        aqa_tensor_free(params[i]);
        aqa_tensor_free(bases[i]);
    }
    return best * 1e3;
}

int main(int argc, char **argv) {
    bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    int reps = quick ? 2 : 10;
    double fused = bench(false, reps);
    double composed = bench(true, quick ? 1 : 3);
    double tt[3];
    bool have = !quick && bench_torch_times("bench_torch_optim.py", NULL, tt, 3);
    char title[96];
    snprintf(title, sizeof title, "AdamW step over %d x %d float32 parameters (%.1fM)", N_TENSORS, SIZE,
             N_TENSORS * SIZE / 1e6);
    bench_print_setup(title);
    bench_print_head();
    const char *tn[3] = {"AdamW step, aqa fused vs torch foreach=False", "AdamW step, aqa fused vs torch foreach=True",
                         "AdamW step, aqa fused vs torch fused=True"};
    for (int i = 0; i < 3; i++) bench_row(tn[i], "ms", fused, have && tt[i] >= 0 ? tt[i] : 0, false, false);
    bench_row("AdamW step, aqa composed (strided parameters)", "ms", composed, 0, false, false);
    bench_print_foot();
    return 0;
}
