/* bench_optim.c: one AdamW step (lr 1e-3, weight decay 1e-2) over 10 float32 tensors of 2^20
 * elements (10.5M parameters, gradients set), ms per step (best of 10 after 3 warm-up steps),
 * on aqa's fused CPU path and on its composed (op by op) path, beside PyTorch's times for
 * foreach=False / foreach=True / fused=True (scripts/bench_torch_optim.py, run when python3 with
 * torch is present; AQA_BENCH_TORCH=0 skips it) and the ratios aqa fused / torch.
 * Usage: bench/bench_optim [--quick] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "autograd/autograd.h"
#include "nn/optim.h"
#include "tensor/ops.h"
#include "tensor/tensor-impl.h"

#define N_TENSORS 10
#define SIZE (1 << 20)

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* PyTorch's three times, from the script, or false. */
static bool torch_times(double *t) {
    const char *e = getenv("AQA_BENCH_TORCH");
    if (e && strcmp(e, "0") == 0) return false;
    static const char *const candidates[] = {"scripts/bench_torch_optim.py", "../scripts/bench_torch_optim.py"};
    const char *script = NULL;
    for (size_t i = 0; i < sizeof candidates / sizeof *candidates && !script; i++) {
        FILE *f = fopen(candidates[i], "r");
        if (f) {
            fclose(f);
            script = candidates[i];
        }
    }
    if (!script) return false;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "python3 %s --machine 2>/dev/null", script);
    FILE *p = popen(cmd, "r");
    if (!p) return false;
    int got = 0;
    for (int i = 0; i < 3; i++) got += fscanf(p, "%lf", &t[i]);
    pclose(p);
    return got == 3;
}

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
    for (int i = 0; i < 3; i++) aqa_optim_step(opt);
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        if (aqa_optim_step(opt) != AQA_OK) {
            fprintf(stderr, "bench_optim: %s\n", aqa_last_error());
            exit(1);
        }
        double el = now() - t0;
        if (el < best) best = el;
    }
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
    bool have = !quick && torch_times(tt);
    printf("AdamW step over %d x %d float32 parameters (%.1fM)\n", N_TENSORS, SIZE, N_TENSORS * SIZE / 1e6);
    printf("%-34s %10s\n", "case", "ms/step");
    printf("%-34s %10.2f\n", "aqa fused (contiguous)", fused);
    printf("%-34s %10.2f\n", "aqa composed (strided params)", composed);
    const char *tn[3] = {"torch foreach=False", "torch foreach=True", "torch fused=True"};
    for (int i = 0; i < 3; i++) {
        if (have && tt[i] >= 0) printf("%-34s %10.2f   (aqa fused / torch = %.2f)\n", tn[i], tt[i], fused / tt[i]);
        else printf("%-34s %10s\n", tn[i], "-");
    }
    printf("(torch with torch.set_num_threads(2); aqa with OMP_NUM_THREADS as set, default all cores)\n");
    return 0;
}
