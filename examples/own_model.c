/* own_model.c: writing your own model with aqa, start to finish (docs/writing-a-model.md walks
 * through this file).
 *
 * The model scores a video from its clip features, as AQA heads do: a per-clip projection (a
 * Sequential), attention pooling over the clips, a custom differentiable op (L2 normalisation
 * with a hand-written backward) and a linear score.  The program then
 *   1. gradchecks the custom op and the whole model (every parameter) in float64,
 *   2. compares scores, loss and every gradient with the same model in PyTorch on the same
 *      weights (tests/data/golden_own_model.safetensors, from scripts/gen_golden_own_model.py),
 *   3. trains it (AdamW, warm-up + cosine, MSE + a margin ranking term) on a synthetic task,
 *   4. saves a checkpoint half-way and checks that a run resumed from it ends bit-identical.
 * It prints what it measured and exits with status 1 when a check fails.
 * Run: examples/own_model [--golden FILE] [--steps N] [--checkpoint FILE] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aqa.h"

enum { C = 8, H = 16, N_CLIPS = 6, N_VIDEOS = 256, BATCH = 32 };

/* ---- 1. a custom differentiable op: y = x / max(||x||, eps) along the last dim (F.normalize) */

#define NORM_EPS 1e-12

/* saved[0] = y, saved[1] = the clamped norm n [..., 1].  dx = (g - y sum(g y)) / n, and g / n
 * where the norm was clamped (n is a constant there). */
static void l2_normalize_backward(aqa_node *node, aqa_tensor *g, aqa_tensor **grad_in) {
    aqa_tensor *y = node->saved[0], *n = node->saved[1];
    int last = -1;
    aqa_tensor *gy = aqa_sum(aqa_mul(g, y), 1, &last, true);
    gy = aqa_where(aqa_gt_scalar(n, NORM_EPS), gy, aqa_zeros_like(gy));
    grad_in[0] = aqa_div(aqa_sub(g, aqa_mul(y, gy)), n);
}

static aqa_tensor *l2_normalize(aqa_tensor *x) {
    bool prev = aqa_set_grad_enabled(false); /* the value, without recording the ops inside */
    int last = -1;
    aqa_tensor *n = aqa_clamp(aqa_sqrt(aqa_sum(aqa_square(x), 1, &last, true)), NORM_EPS, INFINITY);
    aqa_tensor *y = aqa_div(x, n);
    aqa_set_grad_enabled(prev);
    aqa_node *node = aqa_node_record("l2_normalize", l2_normalize_backward, 1, &x, y);
    if (node) {
        aqa_node_save(node, y);
        aqa_node_save(node, n);
    }
    return y;
}

/* ---- 2. the model ------------------------------------------------------------------------ */

typedef struct clip_scorer {
    aqa_module base;        /* type "ClipScorer"; owns the children below */
    aqa_module *proj;       /* "proj": Sequential(Linear(C, H), GELU), applied to every clip */
    aqa_linear_layer *attn; /* "attn": one attention logit per clip */
    aqa_linear_layer *head; /* "head": the score */
} clip_scorer;

static clip_scorer *clip_scorer_new(void) {
    clip_scorer *m = aqa_module_new(sizeof *m, "ClipScorer", NULL, "", NULL);
    if (!m) return NULL;
    m->proj = aqa_sequential_new(&m->base, "proj");
    aqa_linear_layer_new(m->proj, NULL, C, H, true);        /* proj.0.weight, proj.0.bias */
    aqa_activation_layer_new(m->proj, NULL, AQA_ACT_GELU); /* proj.1 */
    m->attn = aqa_linear_layer_new(&m->base, "attn", H, 1, true);
    m->head = aqa_linear_layer_new(&m->base, "head", H, 1, true);
    if (!m->proj || m->proj->n_children != 2 || !m->attn || !m->head) {
        aqa_module_free(&m->base);
        return NULL;
    }
    return m;
}

/* x [B, N, C] clip features -> [B] scores. */
static aqa_tensor *clip_scorer_forward(clip_scorer *m, aqa_tensor *x) {
    aqa_tensor *h = aqa_module_forward(m->proj, x);                       /* [B, N, H] */
    aqa_tensor *a = aqa_softmax(aqa_linear_layer_forward(m->attn, h), 1); /* [B, N, 1] */
    int clips = 1;
    aqa_tensor *v = l2_normalize(aqa_sum(aqa_mul(a, h), 1, &clips, false)); /* [B, H] */
    return aqa_squeeze(aqa_linear_layer_forward(m->head, v), -1);          /* [B] */
}

/* MSE plus a margin ranking term on pairs (the batch's first half against its second half). */
static aqa_tensor *scorer_loss(aqa_tensor *score, aqa_tensor *target) {
    if (!score || !target) return NULL;
    int64_t half = score->shape[0] / 2;
    aqa_tensor *sign = aqa_sign(aqa_sub(aqa_narrow(target, 0, 0, half), aqa_narrow(target, 0, half, half)));
    aqa_tensor *rank = aqa_margin_ranking_loss(aqa_narrow(score, 0, 0, half), aqa_narrow(score, 0, half, half), sign,
                                               0.5, AQA_REDUCTION_MEAN);
    return aqa_add(aqa_mse_loss(score, target, AQA_REDUCTION_MEAN), aqa_mul_scalar(rank, 0.1));
}

/* ---- 3. gradient checks ---------------------------------------------------------------- */

static aqa_tensor *normalize_fn(aqa_tensor *const *in, int n, void *user) { return l2_normalize(in[0]); }

typedef struct model_batch {
    clip_scorer *m;     /* the model */
    aqa_tensor *x;      /* [B, N, C] */
    aqa_tensor *target; /* [B] */
} model_batch;

/* The loss as a function of the model's parameters (gradcheck perturbs them in place). */
static aqa_tensor *model_fn(aqa_tensor *const *in, int n, void *user) {
    model_batch *b = user;
    return scorer_loss(clip_scorer_forward(b->m, b->x), b->target);
}

static bool check_gradients(void) {
    bool ok = true;
    aqa_scope_begin();
    aqa_tensor *x = aqa_requires_grad(aqa_randn(AQA_SHAPE(4, 5), AQA_F64, NULL), true);
    aqa_gradcheck_result r = aqa_gradcheck(normalize_fn, &x, 1, NULL, 1e-6, 1e-8, 1e-6);
    printf("gradcheck l2_normalize: %s\n", r.message);
    ok = ok && r.ok;
    clip_scorer *m = clip_scorer_new();
    aqa_tensor **params = NULL;
    int n = m && aqa_module_to_dtype(&m->base, AQA_F64) == AQA_OK ? aqa_module_parameters(&m->base, &params) : -1;
    model_batch b = {m, aqa_randn(AQA_SHAPE(4, N_CLIPS, C), AQA_F64, NULL), aqa_randn(AQA_SHAPE(4), AQA_F64, NULL)};
    r = n > 0 ? aqa_gradcheck(model_fn, params, n, &b, 1e-6, 1e-8, 1e-5) : (aqa_gradcheck_result){0};
    printf("gradcheck ClipScorer, %d parameters: %s\n", n, n > 0 ? r.message : aqa_last_error());
    ok = ok && n > 0 && r.ok;
    free(params);
    aqa_module_free(&m->base);
    aqa_scope_end();
    return ok;
}

/* ---- 4. parity with PyTorch --------------------------------------------------------------- */

/* max |a - b| / max |b|: the normalised error of the parity checks. */
static double normalised_error(aqa_tensor *a, aqa_tensor *b) {
    if (!a || !b || !aqa_same_shape(a, b)) return INFINITY;
    double scale = aqa_item(aqa_max_all(aqa_abs(b)));
    return aqa_item(aqa_max_all(aqa_abs(aqa_sub(a, b)))) / (scale > 0 ? scale : 1);
}

/* The weights, batch, scores, loss and gradients PyTorch wrote (PyTorch's state_dict names are
 * the model's own: the file loads as it is). */
static bool check_parity(const char *golden) {
    clip_scorer *m = clip_scorer_new();
    aqa_st_file *f = NULL;
    aqa_load_report report;
    if (!m || aqa_module_load(&m->base, golden, true, aqa_checkpoint_model_name, NULL, &report) != AQA_OK ||
        aqa_st_open(golden, &f) != AQA_OK) {
        printf("parity with PyTorch: %s\n", aqa_last_error());
        aqa_module_free(m ? &m->base : NULL);
        return false;
    }
    aqa_scope_begin();
    aqa_tensor *target = aqa_st_load(f, "input.target", AQA_F32);
    aqa_tensor *score = clip_scorer_forward(m, aqa_st_load(f, "input.x", AQA_F32));
    aqa_tensor *loss = scorer_loss(score, target);
    double worst = fmax(normalised_error(score, aqa_st_load(f, "output.score", AQA_F32)),
                        normalised_error(loss, aqa_st_load(f, "output.loss", AQA_F32)));
    if (!loss || aqa_backward(loss, NULL, false) != AQA_OK) worst = INFINITY;
    aqa_named_tensor *list;
    int n = aqa_module_named_tensors(&m->base, false, &list);
    for (int i = 0; i < n; i++) {
        char key[256];
        snprintf(key, sizeof key, "grad.%s", list[i].name);
        worst = fmax(worst, normalised_error(list[i].tensor->grad, aqa_st_load(f, key, AQA_F32)));
    }
    aqa_named_tensors_free(list, n);
    printf("parity with PyTorch: scores, loss and %d gradients within %.2g (normalised error, float32)\n", n, worst);
    aqa_scope_end();
    aqa_st_close(f);
    aqa_module_free(&m->base);
    return worst <= 1e-4;
}

/* ---- 5. training, checkpoint, resume ---------------------------------------------------------- */

/* The synthetic task: N_VIDEOS videos of N_CLIPS clip features; the score is a fixed nonlinear
 * function of the features (a teacher direction, best clip counts most). */
static void make_task(aqa_tensor **x, aqa_tensor **y) {
    aqa_generator gen = {.seed = 7, .offset = 0};
    aqa_scope_begin();
    *x = aqa_keep(aqa_randn(AQA_SHAPE(N_VIDEOS, N_CLIPS, C), AQA_F32, &gen));
    aqa_tensor *teacher = aqa_randn(AQA_SHAPE(C, 1), AQA_F32, &gen);
    aqa_tensor *per_clip = aqa_squeeze(aqa_matmul(*x, teacher), -1); /* [V, N] */
    *y = aqa_keep(aqa_tanh(aqa_mul_scalar(aqa_max_dim(per_clip, 1, false, NULL), 0.5)));
    aqa_scope_end();
}

typedef struct trainer {
    clip_scorer *m;        /* the model */
    aqa_optimizer *opt;    /* AdamW over all its parameters */
    aqa_lr_schedule sched; /* warm-up then cosine */
} trainer;

static bool trainer_init(trainer *t, int steps) {
    t->m = clip_scorer_new();
    aqa_tensor **params;
    int n = t->m ? aqa_module_parameters(&t->m->base, &params) : -1;
    if (n < 0) return false;
    t->opt = aqa_adamw_new(&(aqa_adam_options)AQA_ADAMW_DEFAULTS);
    bool ok = t->opt && aqa_optim_add_group(t->opt, params, n, 1e-2, 1e-4) == 0;
    free(params);
    t->sched = aqa_warmup_cosine(steps / 10, steps, 0.0);
    return ok;
}

static void trainer_free(trainer *t) {
    aqa_optim_free(t->opt);
    aqa_module_free(t->m ? &t->m->base : NULL);
}

/* Steps [from, to): batch `step` is videos step*BATCH ... (mod N_VIDEOS), so a resumed run sees
 * the same batches.  The loss of each step goes to losses[step] when not NULL. */
static bool train(trainer *t, aqa_tensor *x, aqa_tensor *y, int from, int to, double *losses) {
    for (int step = from; step < to; step++) {
        aqa_scope_begin();
        int64_t first = (int64_t)step * BATCH % N_VIDEOS;
        aqa_tensor *loss = scorer_loss(clip_scorer_forward(t->m, aqa_narrow(x, 0, first, BATCH)),
                                       aqa_narrow(y, 0, first, BATCH));
        aqa_optim_zero_grad(t->opt);
        aqa_status st = loss ? aqa_backward(loss, NULL, false) : aqa_last_status();
        if (st == AQA_OK) {
            aqa_lr_schedule_apply(&t->sched, t->opt, step);
            st = aqa_optim_step(t->opt);
        }
        if (losses && loss) losses[step] = aqa_item(loss);
        aqa_scope_end();
        if (st != AQA_OK) {
            fprintf(stderr, "step %d: %s\n", step, aqa_last_error());
            return false;
        }
    }
    return true;
}

/* Whether every parameter of a equals b's bit for bit. */
static bool same_weights(clip_scorer *a, clip_scorer *b) {
    aqa_named_tensor *la, *lb;
    int na = aqa_module_named_tensors(&a->base, true, &la), nb = aqa_module_named_tensors(&b->base, true, &lb);
    bool same = na == nb && na > 0;
    aqa_scope_begin();
    for (int i = 0; same && i < na; i++) same = aqa_item(aqa_max_all(aqa_ne(la[i].tensor, lb[i].tensor))) == 0;
    aqa_scope_end();
    aqa_named_tensors_free(la, na);
    aqa_named_tensors_free(lb, nb);
    return same;
}

static bool check_training(int steps, const char *checkpoint) {
    aqa_tensor *x, *y;
    make_task(&x, &y);
    double *losses = calloc((size_t)steps, sizeof *losses);
    trainer run = {0}, resumed = {0};
    int half = steps / 2;
    aqa_manual_seed(0);
    bool ok = losses && trainer_init(&run, steps) && train(&run, x, y, 0, half, losses);
    aqa_checkpoint ck = {.model = &run.m->base, .optim = run.opt, .step = half};
    ok = ok && aqa_checkpoint_save(checkpoint, &ck) == AQA_OK && train(&run, x, y, half, steps, losses);
    double first = 0, last = 0;
    for (int i = 0; ok && i < 10; i++) {
        first += losses[i] / 10;
        last += losses[steps - 1 - i] / 10;
    }
    printf("training: mean loss of the first 10 steps %.4f, of the last 10 %.4f (%d steps)\n", first, last, steps);
    ok = ok && last < 0.5 * first;
    /* a new process would do this: build the model and optimizer again, load, continue */
    aqa_manual_seed(123); /* a different initialisation: the checkpoint overwrites it */
    aqa_checkpoint back = {0};
    ok = ok && trainer_init(&resumed, steps);
    back.model = resumed.m ? &resumed.m->base : NULL;
    back.optim = resumed.opt;
    ok = ok && aqa_checkpoint_load(checkpoint, &back) == AQA_OK && back.step == half &&
         train(&resumed, x, y, (int)back.step, steps, NULL);
    bool same = ok && same_weights(run.m, resumed.m);
    printf("checkpoint at step %d, resumed to step %d: weights %s the uninterrupted run's\n", half, steps,
           same ? "bit-identical to" : "DIFFERENT from");
    if (!ok) fprintf(stderr, "training: %s\n", aqa_last_error());
    free(back.loaded_config);
    trainer_free(&run);
    trainer_free(&resumed);
    free(losses);
    aqa_tensor_free(x);
    aqa_tensor_free(y);
    return ok && same;
}

int main(int argc, char **argv) {
    const char *golden = "tests/data/golden_own_model.safetensors", *checkpoint = "own_model.ckpt.safetensors";
    int steps = 200;
    for (int i = 1; i < argc; i += 2) {
        const bool known =
            !strcmp(argv[i], "--golden") || !strcmp(argv[i], "--steps") || !strcmp(argv[i], "--checkpoint");
        if (!strcmp(argv[i], "--help")) {
            printf("usage: own_model [--golden FILE] [--steps N] [--checkpoint FILE]\n");
            return 0;
        }
        if (!known || i + 1 >= argc) {
            if (strncmp(argv[i], "--", 2))
                fprintf(stderr, "own_model: unexpected argument \"%s\"; --help lists the settings\n", argv[i]);
            else if (!known) fprintf(stderr, "own_model: unknown setting \"%s\"; --help lists them\n", argv[i] + 2);
            else fprintf(stderr, "own_model: %s needs a value\n", argv[i]);
            return 2;
        }
        if (!strcmp(argv[i], "--golden")) golden = argv[i + 1];
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else checkpoint = argv[i + 1];
    }
    if (steps < 20) {
        fprintf(stderr, "--steps must be at least 20\n");
        return 2;
    }
    aqa_manual_seed(0);
    bool ok = check_gradients();
    ok = check_parity(golden) && ok;
    ok = check_training(steps, checkpoint) && ok;
    printf("%s\n", ok ? "all checks passed" : "SOME CHECKS FAILED");
    return ok ? 0 : 1;
}
