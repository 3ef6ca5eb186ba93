/* bench_mvla.c: one full-size MVLA training step on cached features, with the TSA head: B = 8
 * query/exemplar pairs (16 videos through MVLA), 9 clips x 1024 I3D features, 96 frames x 512
 * CLIP features, D = 512, 3 stages, 32 stage texts and 64 video texts (512-d, frozen), default
 * settings (2-layer temporal transformer, SCA at both levels, every VLKL term); forward, backward
 * and an Adam step with the paper's two learning rates.  Prints ms per step and training samples
 * (query videos) per second beside PyTorch's (scripts/bench_torch_mvla.py on scripts/mvla_torch.py,
 * same shapes, torch.set_num_threads(2); AQA_BENCH_TORCH=0 skips it) and the ratio.
 * Usage: bench/bench_mvla [--quick] */
#include "autograd/autograd.h"
#include "bench/bench_util.h"
#include "models/heads/head.h"
#include "models/mvla/mvla.h"
#include "nn/optim.h"
#include "tensor/ops.h"

int main(int argc, char **argv) {
    bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    int steps = quick ? 1 : 5;
    if (getenv("AQA_BENCH_STEPS")) steps = atoi(getenv("AQA_BENCH_STEPS"));
    const int64_t B = 8, V = 2 * B, N = 9, C = 1024, T = 96, Dc = 512, L = 2, CS = 32, CV = 64;
    aqa_manual_seed(1);
    aqa_mvla_config cfg = aqa_mvla_config_default();
    aqa_mvla *m = aqa_mvla_new(&cfg, NULL, "");
    aqa_head_config hc = aqa_head_config_default();
    aqa_head *h = m ? aqa_head_new(&aqa_head_tsa, &hc, NULL, "") : NULL;
    if (!m || !h) {
        fprintf(stderr, "bench_mvla: setup failed: %s\n", aqa_last_error());
        return 1;
    }
    aqa_tensor **bb = NULL, **rest = NULL, **hp = NULL;
    int nbb = 0, nrest = 0;
    aqa_mvla_param_groups(m, &bb, &nbb, &rest, &nrest);
    int nhp = aqa_module_parameters(&h->base, &hp);
    aqa_optimizer *opt = aqa_adam_new(&(aqa_adam_options)AQA_ADAM_DEFAULTS);
    aqa_optim_add_group(opt, bb, nbb, 1e-4, 0.0);
    aqa_optim_add_group(opt, rest, nrest, 1e-3, 0.0);
    aqa_optim_add_group(opt, hp, nhp, 1e-3, 0.0);

    /* cached random features and labels */
    aqa_mvla_batch b;
    memset(&b, 0, sizeof b);
    b.i3d = aqa_randn(AQA_SHAPE(V, N, C), AQA_F32, NULL);
    b.vis = aqa_randn(AQA_SHAPE(V, T, Dc), AQA_F32, NULL);
    b.stage_text = aqa_randn(AQA_SHAPE(CS, Dc), AQA_F32, NULL);
    b.video_text = aqa_randn(AQA_SHAPE(CV, Dc), AQA_F32, NULL);
    int64_t sid[V * 3], vid[V], bnd[V * 2];
    for (int64_t i = 0; i < V; i++) {
        for (int s = 0; s < 3; s++) sid[i * 3 + s] = (i * 7 + s * 11) % CS;
        vid[i] = (i * 5) % CV;
        bnd[i * 2] = 10 + (i * 3) % 30;
        bnd[i * 2 + 1] = 50 + (i * 5) % 40;
    }
    b.stage_text_ids = aqa_from_data(sid, 2, (int64_t[]){V, 3}, AQA_I64);
    b.video_text_ids = aqa_from_data(vid, 1, (int64_t[]){V}, AQA_I64);
    b.boundaries = aqa_from_data(bnd, 2, (int64_t[]){V, L}, AQA_I64);
    b.teacher_forcing = true;
    b.compute_losses = true;
    aqa_tensor *scores = aqa_mul_scalar(aqa_rand(AQA_SHAPE(V), AQA_F32, NULL), 100.0);

    double best = 1e30, total = 0, last_loss = 0, ph[4] = {0, 0, 0, 0}; /* mvla fwd, head fwd, backward, adam */
    for (int s = -1; s < steps; s++) {
        aqa_scope_begin();
        double t0 = bench_now();
        aqa_optim_zero_grad(opt);
        aqa_mvla_output o;
        aqa_head_input q, e;
        aqa_head_result r;
        aqa_head_targets tg = {aqa_narrow(scores, 0, 0, B), NULL, NULL};
        double t1, t2, t3;
        bool ok = aqa_mvla_forward(m, &b, &o) == AQA_OK;
        t1 = bench_now();
        ok = ok && aqa_mvla_head_input(&o, 0, B, &q) == AQA_OK && aqa_mvla_head_input(&o, B, B, &e) == AQA_OK &&
             aqa_head_forward(h, &q, &e, aqa_narrow(scores, 0, B, B), &tg, &r) == AQA_OK;
        if (!ok) {
            fprintf(stderr, "bench_mvla: step failed: %s\n", aqa_last_error());
            return 1;
        }
        aqa_tensor *loss = aqa_mvla_total_loss(m, &o, r.loss);
        t2 = bench_now();
        aqa_backward(loss, NULL, false);
        t3 = bench_now();
        aqa_optim_step(opt);
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
        char args[32];
    snprintf(args, sizeof args, "--steps %d", steps);
    double ms = 1e3 * total / steps, tms = -1;
    if (!quick && !bench_torch_times("bench_torch_mvla.py", args, &tms, 1)) tms = -1;
    printf("MVLA training step (TSA head, cached features): %lld pairs (%lld videos), %lld clips x %lld, %lld frames x %lld,"
           " D %lld, %lld parameters, loss %.3f\n",
           (long long)B, (long long)V, (long long)N, (long long)C, (long long)T, (long long)Dc, (long long)cfg.dim,
           (long long)(aqa_module_num_params(&m->base, true) + aqa_module_num_params(&h->base, true)), last_loss);
    printf("%-24s %10s %12s\n", "", "ms/step", "samples/s");
    printf("%-24s %10.1f %12.2f   (best %.1f ms)\n", "aqa", ms, 1e3 * (double)B / ms, 1e3 * best);
    printf("%-24s mvla fwd %.1f, head fwd %.1f, backward %.1f, adam %.1f ms\n", "aqa phases", 1e3 * ph[0] / steps,
           1e3 * ph[1] / steps, 1e3 * ph[2] / steps, 1e3 * ph[3] / steps);
    if (tms > 0) {
        printf("%-24s %10.1f %12.2f\n", "torch", tms, 1e3 * (double)B / tms);
        printf("%-24s %10.2f   (aqa samples/s / torch samples/s)\n", "throughput ratio", tms / ms);
    } else {
        printf("%-24s %10s\n", "torch", "-");
    }
    free(bb);
    free(rest);
    free(hp);
    aqa_optim_free(opt);
    aqa_module_free(&h->base);
    aqa_module_free(&m->base);
    aqa_tensor_free(b.i3d);
    aqa_tensor_free(b.vis);
    aqa_tensor_free(b.stage_text);
    aqa_tensor_free(b.video_text);
    aqa_tensor_free(b.stage_text_ids);
    aqa_tensor_free(b.video_text_ids);
    aqa_tensor_free(b.boundaries);
    aqa_tensor_free(scores);
    return 0;
}
