/* mvla_step.h: the full-size MVLA training step that bench_mvla (CPU) and bench_cuda (GPU) time,
 * built in one place so both measure the same thing as scripts/bench_torch_mvla.py: TSA head,
 * B = 8 query/exemplar pairs (16 videos), 9 clips x 1024 I3D features, 96 frames x 512 CLIP
 * features, D = 512, 3 stages, 32 stage and 64 video texts (frozen), Adam with the paper's groups
 * (1e-4 for the backbone, 1e-3 for the rest and the head).  Random features and labels, seed 1. */
#ifndef AQA_BENCH_MVLA_STEP_H
#define AQA_BENCH_MVLA_STEP_H

#include <stdlib.h>
#include <string.h>

#include "models/heads/head.h"
#include "models/mvla/mvla.h"
#include "nn/optim.h"
#include "ops/ops.h"

enum { MVLA_B = 8, MVLA_V = 2 * MVLA_B, MVLA_N = 9, MVLA_C = 1024, MVLA_T = 96, MVLA_DC = 512, MVLA_L = 2,
       MVLA_CS = 32, MVLA_CV = 64 };

typedef struct mvla_step {
    aqa_mvla_config cfg;     /* the model's settings (defaults) */
    aqa_mvla *m;             /* the model and its head, on the device */
    aqa_head *h;
    aqa_tensor **groups[3];  /* parameter lists of the three Adam groups (owned) */
    aqa_optimizer *opt;
    aqa_mvla_batch b;        /* cached features, texts, ids and boundaries (owned) */
    aqa_tensor *scores;      /* [V] judge scores of the queries then the exemplars (owned) */
} mvla_step;

/* Builds everything on the CPU and moves it to dev.  0 on success, else the error is recorded
 * and what was built is freed. */
static void mvla_step_free(mvla_step *s);
__attribute__((unused)) static int mvla_step_init(mvla_step *s, aqa_device dev) {
    memset(s, 0, sizeof *s);
    aqa_manual_seed(1);
    s->cfg = aqa_mvla_config_default();
    s->m = aqa_mvla_new(&s->cfg, NULL, "");
    aqa_head_config hc = aqa_head_config_default();
    s->h = s->m ? aqa_head_new(&aqa_head_tsa, &hc, NULL, "") : NULL;
    if (!s->m || !s->h || aqa_module_to(&s->m->base, dev) || aqa_module_to(&s->h->base, dev)) goto fail;
    int nbb = 0, nrest = 0, nhp;
    if (aqa_mvla_param_groups(s->m, &s->groups[0], &nbb, &s->groups[1], &nrest)) goto fail;
    if ((nhp = aqa_module_parameters(&s->h->base, &s->groups[2])) < 0) goto fail;
    s->opt = aqa_adam_new(&(aqa_adam_options)AQA_ADAM_DEFAULTS);
    if (!s->opt) goto fail;
    aqa_optim_add_group(s->opt, s->groups[0], nbb, 1e-4, 0.0);
    aqa_optim_add_group(s->opt, s->groups[1], nrest, 1e-3, 0.0);
    aqa_optim_add_group(s->opt, s->groups[2], nhp, 1e-3, 0.0);
    const int64_t V = MVLA_V;
    int64_t sid[MVLA_V * 3], vid[MVLA_V], bnd[MVLA_V * 2];
    for (int64_t i = 0; i < V; i++) {
        for (int k = 0; k < 3; k++) sid[i * 3 + k] = (i * 7 + k * 11) % MVLA_CS;
        vid[i] = (i * 5) % MVLA_CV;
        bnd[i * 2] = 10 + (i * 3) % 30;
        bnd[i * 2 + 1] = 50 + (i * 5) % 40;
    }
    /* made in a scope so the CPU originals die with it; the device copies are kept */
    aqa_mvla_batch *b = &s->b;
    aqa_scope_begin();
    b->i3d = aqa_keep(aqa_to_device(aqa_randn(AQA_SHAPE(V, MVLA_N, MVLA_C), AQA_F32, NULL), dev));
    b->vis = aqa_keep(aqa_to_device(aqa_randn(AQA_SHAPE(V, MVLA_T, MVLA_DC), AQA_F32, NULL), dev));
    b->stage_text = aqa_keep(aqa_to_device(aqa_randn(AQA_SHAPE(MVLA_CS, MVLA_DC), AQA_F32, NULL), dev));
    b->video_text = aqa_keep(aqa_to_device(aqa_randn(AQA_SHAPE(MVLA_CV, MVLA_DC), AQA_F32, NULL), dev));
    b->stage_text_ids = aqa_keep(aqa_to_device(aqa_from_data(sid, 2, (int64_t[]){V, 3}, AQA_I64), dev));
    b->video_text_ids = aqa_keep(aqa_to_device(aqa_from_data(vid, 1, (int64_t[]){V}, AQA_I64), dev));
    b->boundaries = aqa_keep(aqa_to_device(aqa_from_data(bnd, 2, (int64_t[]){V, MVLA_L}, AQA_I64), dev));
    s->scores = aqa_keep(aqa_to_device(aqa_mul_scalar(aqa_rand(AQA_SHAPE(V), AQA_F32, NULL), 100.0), dev));
    aqa_scope_end();
    b->teacher_forcing = true;
    b->compute_losses = true;
    if (b->i3d && b->vis && b->stage_text && b->video_text && b->stage_text_ids && b->video_text_ids &&
        b->boundaries && s->scores)
        return 0;
fail:
    mvla_step_free(s);
    return 1;
}

/* Forward of MVLA and the head (queries against their exemplars), the total loss in the caller's
 * scope; NULL on failure.  *mvla_done, when not NULL, is set to bench_now() after MVLA's forward. */
__attribute__((unused)) static aqa_tensor *mvla_step_loss(mvla_step *s, double *mvla_done, double (*now)(void)) {
    aqa_mvla_output o;
    aqa_head_input q, e;
    aqa_head_result r;
    aqa_head_targets tg = {aqa_narrow(s->scores, 0, 0, MVLA_B), NULL};
    if (aqa_mvla_forward(s->m, &s->b, &o)) return NULL;
    if (mvla_done) *mvla_done = now();
    if (aqa_mvla_head_input(&o, 0, MVLA_B, &q) || aqa_mvla_head_input(&o, MVLA_B, MVLA_B, &e) ||
        aqa_head_forward(s->h, &q, &e, aqa_narrow(s->scores, 0, MVLA_B, MVLA_B), &tg, &r))
        return NULL;
    return aqa_mvla_total_loss(s->m, &o, r.loss);
}

static void mvla_step_free(mvla_step *s) {
    for (int i = 0; i < 3; i++) free(s->groups[i]);
    aqa_optim_free(s->opt);
    if (s->h) aqa_module_free(&s->h->base);
    if (s->m) aqa_module_free(&s->m->base);
    aqa_tensor *ts[] = {s->b.i3d, s->b.vis, s->b.stage_text, s->b.video_text, s->b.stage_text_ids,
                        s->b.video_text_ids, s->b.boundaries, s->scores};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) aqa_tensor_free(ts[i]);
    memset(s, 0, sizeof *s);
}

#endif /* AQA_BENCH_MVLA_STEP_H */
