/* bench_mvla.c: one full-size MVLA training step on cached features, with the TSA head: B = 8
 * query/exemplar pairs (16 videos through MVLA), 9 clips x 1024 I3D features, 96 frames x 512
 * CLIP features, D = 512, 3 stages, 32 stage texts and 64 video texts (512-d, frozen), default
 * settings (2-layer temporal transformer, SCA at both levels, every VLKL term); forward, backward
 * and an Adam step with the paper's two learning rates.  Prints ms per step beside PyTorch's
 * (scripts/bench_torch_mvla.py on scripts/mvla_torch.py, same shapes; conventions of
 * bench/bench_util.h).
 * Usage: bench/bench_mvla [--quick] */
#include "autograd/autograd.h"
#include "bench/bench_util.h"
#include "bench/mvla_step.h"
#include "models/heads/head.h"
#include "models/mvla/mvla.h"
#include "nn/optim.h"
#include "ops/ops.h"

int main(int argc, char **argv) {
    bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    int steps = quick ? 1 : 5;
    if (getenv("AQA_BENCH_STEPS")) steps = atoi(getenv("AQA_BENCH_STEPS"));
    mvla_step st;
    if (mvla_step_init(&st, AQA_DEVICE_CPU)) {
        fprintf(stderr, "bench_mvla: setup failed: %s\n", aqa_last_error());
        return 1;
    }
    double best = 1e30, total = 0, last_loss = 0, ph[4] = {0, 0, 0, 0}; /* mvla fwd, head fwd, backward, adam */
    for (int s = -1; s < steps; s++) {
        aqa_scope_begin();
        double t0 = bench_now();
        aqa_optim_zero_grad(st.opt);
        double t1 = t0, t2, t3;
        aqa_tensor *loss = mvla_step_loss(&st, &t1, bench_now);
        if (!loss) {
            fprintf(stderr, "bench_mvla: step failed: %s\n", aqa_last_error());
            return 1;
        }
        t2 = bench_now();
        aqa_backward(loss, NULL, false);
        t3 = bench_now();
        aqa_optim_step(st.opt);
        last_loss = aqa_item(loss);
        double el = bench_now() - t0;
        aqa_scope_end();
        if (s >= 0) {
            total += el;
            if (el < best) best = el;
            ph[0] += t1 - t0;
            ph[1] += t2 - t1;
            ph[2] += t3 - t2;
            ph[3] += t0 + el - t3;
        }
    }
    char args[32], title[256];
    snprintf(args, sizeof args, "--steps %d", steps);
    double ms = 1e3 * total / steps, tms = -1;
    if (!quick && !bench_torch_times("bench_torch_mvla.py", args, &tms, 1)) tms = -1;
    snprintf(title, sizeof title,
             "MVLA training step (TSA head, cached features): %lld pairs (%lld videos), %lld clips x %lld, %lld frames x "
             "%lld, D %lld, %lld parameters, loss %.3f",
             (long long)MVLA_B, (long long)MVLA_V, (long long)MVLA_N, (long long)MVLA_C, (long long)MVLA_T,
             (long long)MVLA_DC, (long long)st.cfg.dim,
             (long long)(aqa_module_num_params(&st.m->base, true) + aqa_module_num_params(&st.h->base, true)), last_loss);
    bench_print_setup(title);
    bench_print_head();
    bench_row("MVLA + TSA training step, 8 pairs, cached features", "ms", ms, tms > 0 ? tms : 0, false, !quick);
    printf("  aqa: best step %.1f ms; phases: mvla fwd %.1f, head fwd %.1f, backward %.1f, adam %.1f ms\n", 1e3 * best,
           1e3 * ph[0] / steps, 1e3 * ph[1] / steps, 1e3 * ph[2] / steps, 1e3 * ph[3] / steps);
    bench_print_foot();
    mvla_step_free(&st);
    return 0;
}
