/* test_optim.c: nn/optim.h and nn/sched.h against torch.optim (tests/data/golden_optim.safetensors
 * from scripts/gen_golden_optim.py): 20-step trajectories of SGD (momentum, dampening, Nesterov,
 * weight decay), Adam (L2, AMSGrad) and AdamW (parameter groups) on the fused CPU path and on the
 * composed path (strided parameters), clip_grad_norm_, StepLR / CosineAnnealingLR, warm-up +
 * cosine, and argument errors. */
#include <math.h>

#include "autograd/autograd.h"
#include "nn/optim.h"
#include "nn/sched.h"
#include "ops/ops.h"
#include "tensor/tensor-impl.h"
#include "tests/test_util.h"

#define STEPS 20
#define NP 3

/* Replaces p->grad by a copy of src (the engine stores gradients as unowned tensors). */
static void set_grad(aqa_tensor *p, aqa_tensor *src) {
    aqa_zero_grad(p);
    aqa_tensor *g = aqa__new_unowned(p->ndim, p->shape, p->dtype, AQA_DEVICE_CPU);
    aqa_copy_(g, src);
    p->grad = g;
}

typedef struct optim_cfg {
    char kind[8];
    double lr, momentum, dampening, wd, beta1, beta2, eps, lr2, wd2;
    int nesterov, amsgrad, has_wd;
} optim_cfg;

static void parse_cfg(const char *desc, optim_cfg *c) {
    memset(c, 0, sizeof *c);
    c->beta1 = 0.9;
    c->beta2 = 0.999;
    c->eps = 1e-8;
    c->lr2 = -1;
    char buf[256], *cursor = buf;
    snprintf(buf, sizeof buf, "%s", desc);
    for (const char *tok, *v; test_next_kv(&cursor, &tok, &v);) {
        if (!strcmp(tok, "kind")) snprintf(c->kind, sizeof c->kind, "%s", v);
        else if (!strcmp(tok, "lr")) c->lr = atof(v);
        else if (!strcmp(tok, "momentum")) c->momentum = atof(v);
        else if (!strcmp(tok, "dampening")) c->dampening = atof(v);
        else if (!strcmp(tok, "weight_decay")) c->wd = atof(v), c->has_wd = 1;
        else if (!strcmp(tok, "beta1")) c->beta1 = atof(v);
        else if (!strcmp(tok, "beta2")) c->beta2 = atof(v);
        else if (!strcmp(tok, "eps")) c->eps = atof(v);
        else if (!strcmp(tok, "nesterov")) c->nesterov = atoi(v);
        else if (!strcmp(tok, "amsgrad")) c->amsgrad = atoi(v);
        else if (!strcmp(tok, "lr2")) c->lr2 = atof(v);
        else if (!strcmp(tok, "wd2")) c->wd2 = atof(v);
    }
    if (!c->has_wd && !strcmp(c->kind, "adamw")) c->wd = 1e-2; /* torch's AdamW default */
}

static aqa_optimizer *make_optim(const optim_cfg *c, aqa_tensor **params) {
    aqa_optimizer *o;
    if (!strcmp(c->kind, "sgd")) {
        aqa_sgd_options so = {c->lr, c->momentum, c->dampening, c->wd, c->nesterov};
        o = aqa_sgd_new(&so);
    } else {
        aqa_adam_options ao = {c->lr, c->beta1, c->beta2, c->eps, c->wd, c->amsgrad};
        o = !strcmp(c->kind, "adam") ? aqa_adam_new(&ao) : aqa_adamw_new(&ao);
    }
    if (!o) return NULL;
    if (c->lr2 >= 0) {
        CHECK(aqa_optim_add_params(o, params, 2) == 0);
        CHECK(aqa_optim_add_group(o, params + 2, NP - 2, c->lr2, c->wd2) == 1);
    } else {
        CHECK(aqa_optim_add_params(o, params, NP) == 0);
    }
    return o;
}

/* A leaf with init's values but non-contiguous storage (forces the composed update path). */
static aqa_tensor *strided_copy(aqa_tensor *init, aqa_tensor **base_out) {
    if (init->ndim >= 2) {
        int last = init->ndim - 1;
        aqa_tensor *base = aqa_keep(aqa_contiguous(aqa_transpose(init, 0, last)));
        *base_out = base;
        return aqa_keep(aqa_transpose(base, 0, last));
    }
    aqa_tensor *base = aqa_keep(aqa_zeros(AQA_SHAPE(2 * init->shape[0]), init->dtype));
    *base_out = base;
    aqa_tensor *v = aqa_keep(aqa_slice(base, 0, 0, 2 * init->shape[0], 2));
    aqa_copy_(v, init);
    return v;
}

/* Runs config `name` for 20 steps; mode 0 fused (contiguous f32), 1 composed (strided f32),
 * 2 float64 parameters.  Returns the worst relative error over all steps and parameters. */
static double run_trajectory(const aqa_st_file *f, const char *name, const char *desc, int mode) {
    optim_cfg c;
    parse_cfg(desc, &c);
    aqa_scope_begin();
    aqa_tensor *params[NP], *bases[NP] = {0}, *grads[NP];
    char k[96];
    for (int i = 0; i < NP; i++) {
        snprintf(k, sizeof k, "init.p%d", i);
        aqa_tensor *init = aqa_st_load(f, k, AQA_F32);
        snprintf(k, sizeof k, "grads.p%d", i);
        grads[i] = aqa_st_load(f, k, AQA_F32);
        if (mode == 1) params[i] = strided_copy(init, &bases[i]);
        else params[i] = aqa_keep(aqa_to_dtype(init, mode == 2 ? AQA_F64 : AQA_F32));
        if (mode == 1) CHECK(!aqa_is_contiguous(params[i]));
        aqa_requires_grad(params[i], true);
    }
    aqa_optimizer *o = make_optim(&c, params);
    CHECK_MSG(o != NULL, "%s: %s", name, aqa_last_error());
    double worst = 0;
    for (int s = 0; o && s < STEPS; s++) {
        for (int i = 0; i < NP; i++) set_grad(params[i], aqa_select(grads[i], 0, s));
        CHECK_MSG(aqa_optim_step(o) == AQA_OK, "%s: %s", name, aqa_last_error());
        for (int i = 0; i < NP; i++) {
            snprintf(k, sizeof k, "%s.p%d", name, i);
            aqa_tensor *ref = aqa_select(aqa_st_load(f, k, AQA_F32), 0, s);
            worst = fmax(worst, test_max_rel_diff(params[i], ref));
        }
    }
    if (o) CHECK_EQ_INT(o->state[o->n_groups - 1][0].step, STEPS);
    aqa_optim_zero_grad(o);
    for (int i = 0; i < NP; i++) CHECK(params[i]->grad == NULL);
    aqa_optim_free(o);
    for (int i = 0; i < NP; i++) {
        aqa_tensor_free(params[i]);
        aqa_tensor_free(bases[i]);
    }
    aqa_scope_end();
    return worst;
}

/* The golden file (kept open by tests/test_util.h), or NULL after a FAIL line. */
static const aqa_st_file *open_golden(void) {
    if (!test_golden_open("golden_optim.safetensors"))
        CHECK_MSG(0, "cannot open golden_optim.safetensors: %s", aqa_last_error());
    return test_golden_file;
}

static void trajectories(int mode, double tol) {
    const aqa_st_file *f = open_golden();
    if (!f) return;
    int64_t live = aqa_live_tensors();
    int n = 0;
    for (int i = 0; i < aqa_st_metadata_count(f); i++) {
        const char *key, *value;
        if (aqa_st_metadata_at(f, i, &key, &value) != AQA_OK || strncmp(key, "cfg.", 4) != 0) continue;
        double e = run_trajectory(f, key + 4, value, mode);
        printf("    %-14s max relative error over 20 steps %.3g\n", key + 4, e);
        CHECK_MSG(e <= tol, "%s (%s): max relative error %.3g > %.3g", key + 4, value, e, tol);
        n++;
    }
    CHECK(n >= 9);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

static void test_golden_fused(void) { trajectories(0, 1e-6); }
static void test_golden_composed_strided(void) { trajectories(1, 1e-6); }
/* float64 parameters follow the same algorithm; they differ from torch's float32 run by float32
 * rounding only */
static void test_golden_float64(void) { trajectories(2, 2e-5); }

static void test_clip_grad_norm(void) {
    const aqa_st_file *f = open_golden();
    if (!f) return;
    const char *tags[] = {"l2", "l2_noclip", "inf"};
    for (int t = 0; t < 3; t++) {
        aqa_scope_begin();
        char k[96];
        snprintf(k, sizeof k, "clip.%s", tags[t]);
        const char *desc = aqa_st_metadata(f, k);
        double max_norm = atof(strstr(desc, "max_norm=") + 9);
        double norm_type = strstr(desc, "inf") ? INFINITY : 2.0;
        aqa_tensor *params[NP];
        for (int i = 0; i < NP; i++) {
            snprintf(k, sizeof k, "clip.%s.in.%d", tags[t], i);
            aqa_tensor *g = aqa_st_load(f, k, AQA_F32);
            params[i] = aqa_zeros(g->ndim, g->shape, AQA_F32);
            set_grad(params[i], g);
        }
        double total = -1;
        CHECK(aqa_clip_grad_norm(params, NP, max_norm, norm_type, false, &total) == AQA_OK);
        snprintf(k, sizeof k, "clip.%s.total", tags[t]);
        double ref = aqa_item(aqa_st_load(f, k, AQA_F64));
        CHECK_MSG(fabs(total - ref) <= 1e-6 * ref, "%s: total norm %.9g vs torch %.9g", tags[t], total, ref);
        for (int i = 0; i < NP; i++) {
            snprintf(k, sizeof k, "clip.%s.out.%d", tags[t], i);
            double e = test_max_rel_diff(params[i]->grad, aqa_st_load(f, k, AQA_F32));
            CHECK_MSG(e <= 1e-6, "%s: clipped gradient %d error %.3g", tags[t], i, e);
            aqa_zero_grad(params[i]);
        }
        aqa_scope_end();
    }
    /* non-finite total: error only when asked, gradients untouched then */
    aqa_scope_begin();
    aqa_tensor *p = aqa_zeros(AQA_SHAPE(3), AQA_F32);
    float bad[3] = {1.0f, NAN, 2.0f};
    set_grad(p, aqa_from_data(bad, AQA_SHAPE(3), AQA_F32));
    double total = 0;
    CHECK(aqa_clip_grad_norm(&p, 1, 1.0, 2.0, true, &total) == AQA_EINVAL);
    CHECK(isnan(total));
    CHECK(strstr(aqa_last_error(), "non-finite") != NULL);
    CHECK_NEAR(aqa_get(p->grad, (int64_t[]){0}), 1.0, 0);
    CHECK(aqa_clip_grad_norm(&p, 1, 1.0, 2.0, false, &total) == AQA_OK);
    aqa_zero_grad(p);
    aqa_scope_end();
}

static void test_schedules(void) {
    const aqa_st_file *f = open_golden();
    if (!f) return;
    aqa_scope_begin();
    aqa_tensor *st = aqa_st_load(f, "sched.step", AQA_F64), *co = aqa_st_load(f, "sched.cos", AQA_F64);
    aqa_lr_schedule s1 = aqa_step_lr(7, 0.3), s2 = aqa_cosine_lr(12, 1e-3);
    for (int64_t e = 0; st && co && e < 30; e++) {
        double r1 = aqa_get(st, &e), r2 = aqa_get(co, &e);
        CHECK_MSG(fabs(aqa_lr_at(&s1, 0.1, e) - r1) <= 1e-9 * r1, "StepLR epoch %lld: %.12g vs torch %.12g",
                  (long long)e, aqa_lr_at(&s1, 0.1, e), r1);
        CHECK_MSG(fabs(aqa_lr_at(&s2, 0.1, e) - r2) <= 1e-9 * fmax(r2, 1e-3), "Cosine epoch %lld: %.12g vs torch %.12g",
                  (long long)e, aqa_lr_at(&s2, 0.1, e), r2);
    }
    aqa_scope_end();

    /* warm-up + cosine (independent hand values) */
    aqa_lr_schedule w = aqa_warmup_cosine(10, 110, 0.0);
    CHECK_NEAR(aqa_lr_at(&w, 1.0, 0), 0.1, 1e-15);
    CHECK_NEAR(aqa_lr_at(&w, 1.0, 4), 0.5, 1e-15);
    CHECK_NEAR(aqa_lr_at(&w, 1.0, 9), 1.0, 1e-15);
    CHECK_NEAR(aqa_lr_at(&w, 1.0, 10), 1.0, 1e-15);
    CHECK_NEAR(aqa_lr_at(&w, 1.0, 60), 0.5, 1e-12);
    CHECK_NEAR(aqa_lr_at(&w, 1.0, 110), 0.0, 1e-15);
    CHECK_NEAR(aqa_lr_at(&w, 1.0, 500), 0.0, 1e-15);
    for (int64_t t = 10; t < 110; t++) CHECK(aqa_lr_at(&w, 1.0, t + 1) <= aqa_lr_at(&w, 1.0, t));

    /* applied to groups: each keeps its own base rate (MVLA: 1e-4 backbone, 1e-3 head) */
    aqa_tensor *a = aqa_zeros(AQA_SHAPE(2), AQA_F32), *b = aqa_zeros(AQA_SHAPE(2), AQA_F32);
    aqa_adam_options ao = AQA_ADAMW_DEFAULTS;
    aqa_optimizer *o = aqa_adamw_new(&ao);
    CHECK(aqa_optim_add_group(o, &a, 1, 1e-4, 0.05) == 0);
    CHECK(aqa_optim_add_group(o, &b, 1, 1e-3, 0.05) == 1);
    aqa_lr_schedule_apply(&w, o, 60);
    CHECK_NEAR(o->groups[0].lr, 0.5e-4, 1e-16);
    CHECK_NEAR(o->groups[1].lr, 0.5e-3, 1e-15);
    CHECK_NEAR(o->groups[1].initial_lr, 1e-3, 0);
    CHECK_EQ_INT(aqa_optim_num_params(o), 2);
    aqa_optim_free(o);
    aqa_tensor_free(a);
    aqa_tensor_free(b);
}

static void test_skip_and_errors(void) {
    aqa_tensor *p = aqa_requires_grad(aqa_ones(AQA_SHAPE(3), AQA_F32), true);
    aqa_tensor *q = aqa_requires_grad(aqa_ones(AQA_SHAPE(3), AQA_F32), true);
    aqa_adam_options ao = AQA_ADAM_DEFAULTS;
    aqa_optimizer *o = aqa_adam_new(&ao);
    CHECK(aqa_optim_add_params(o, (aqa_tensor *[]){p, q}, 2) == 0);
    /* q has no gradient: skipped, no state, unchanged */
    aqa_scope_begin();
    set_grad(p, aqa_full(AQA_SHAPE(3), 0.5, AQA_F32));
    aqa_scope_end();
    CHECK(aqa_optim_step(o) == AQA_OK);
    CHECK_EQ_INT(o->state[0][0].step, 1);
    CHECK_EQ_INT(o->state[0][1].step, 0);
    CHECK(o->state[0][1].exp_avg == NULL);
    CHECK_NEAR(aqa_get(q, (int64_t[]){1}), 1.0, 0);
    /* first Adam step moves by lr * sign(grad) (bias-corrected) */
    CHECK_NEAR(aqa_get(p, (int64_t[]){1}), 1.0 - 1e-3, 1e-7);
    /* a parameter in two groups, a non-float parameter, bad hyper-parameters */
    CHECK(aqa_optim_add_params(o, &p, 1) == -1);
    CHECK_STR(aqa_last_error(), "aqa_optim_add_group: parameter 0 (unnamed float32 [3]) is already in group 0 "
                                "(parameter 0); a parameter can be in one group only");
    aqa_set_name(p, "fc.weight");
    aqa_tensor *r = aqa_requires_grad(aqa_ones(AQA_SHAPE(2), AQA_F32), true);
    CHECK(aqa_optim_add_params(o, (aqa_tensor *[]){r, p}, 2) == -1);
    CHECK(strstr(aqa_last_error(), "parameter 1 (fc.weight) is already in group 0") != NULL);
    CHECK(aqa_optim_add_params(o, (aqa_tensor *[]){r, r}, 2) == -1);
    CHECK(strstr(aqa_last_error(), "parameter 1 (unnamed float32 [2]) is listed twice (also at 0)") != NULL);
    aqa_tensor_free(r);
    aqa_tensor *ints = aqa_zeros(AQA_SHAPE(2), AQA_I64);
    CHECK(aqa_optim_add_params(o, &ints, 1) == -1);
    aqa_optim_free(o);
    aqa_tensor_free(ints);
    aqa_sgd_options so = AQA_SGD_DEFAULTS;
    so.nesterov = true;
    CHECK(aqa_sgd_new(&so) == NULL);
    so.nesterov = false;
    so.lr = -1;
    CHECK(aqa_sgd_new(&so) == NULL);
    ao.beta2 = 1.0;
    CHECK(aqa_adamw_new(&ao) == NULL);
    CHECK(strstr(aqa_last_error(), "beta2") != NULL);
    /* a gradient whose shape differs from the parameter's */
    o = aqa_sgd_new(&(aqa_sgd_options)AQA_SGD_DEFAULTS);
    aqa_optim_add_params(o, &q, 1);
    aqa_scope_begin();
    aqa_tensor *wrong = aqa__new_unowned(1, (int64_t[]){4}, AQA_F32, AQA_DEVICE_CPU);
    aqa_zero_(wrong);
    q->grad = wrong;
    aqa_scope_end();
    CHECK(aqa_optim_step(o) == AQA_EINVAL);
    aqa_optim_free(o);
    aqa_zero_grad(p);
    aqa_zero_grad(q);
    aqa_tensor_free(p);
    aqa_tensor_free(q);
}

/* A large parameter takes the threaded SIMD path; its result must equal the composed path's bit
 * for bit (with AMSGrad and a beta1 that selects torch's other lerp form as well). */
static void large_case(const aqa_adam_options *ao, uint64_t seed) {
    aqa_manual_seed(seed);
    int64_t n = 300001; /* odd: the SIMD loop's scalar tail runs too */
    aqa_tensor *p1 = aqa_requires_grad(aqa_randn(AQA_SHAPE(n), AQA_F32, NULL), true);
    aqa_tensor *base = aqa_zeros(AQA_SHAPE(2 * n), AQA_F32);
    aqa_scope_begin();
    aqa_tensor *p2 = aqa_keep(aqa_slice(base, 0, 0, 2 * n, 2));
    aqa_copy_(p2, p1);
    aqa_requires_grad(p2, true);
    aqa_scope_end();
    aqa_optimizer *o1 = aqa_adamw_new(ao), *o2 = aqa_adamw_new(ao);
    aqa_optim_add_params(o1, &p1, 1);
    aqa_optim_add_params(o2, &p2, 1);
    for (int s = 0; s < 3; s++) {
        aqa_tensor *g = aqa_randn(AQA_SHAPE(n), AQA_F32, NULL);
        set_grad(p1, g);
        set_grad(p2, g);
        aqa_tensor_free(g);
        CHECK(aqa_optim_step(o1) == AQA_OK);
        CHECK(aqa_optim_step(o2) == AQA_OK);
    }
    /* the composed path performs the same IEEE operations in the same order: identical bits */
    double e = test_max_rel_diff(p1, p2);
    CHECK_MSG(e == 0, "fused vs composed (amsgrad %d, beta1 %g): %.3g", ao->amsgrad, ao->beta1, e);
    aqa_optim_free(o1);
    aqa_optim_free(o2);
    aqa_zero_grad(p1);
    aqa_zero_grad(p2);
    aqa_tensor_free(p1);
    aqa_tensor_free(p2);
    aqa_tensor_free(base);
}

/* A large parameter takes the threaded SIMD path; its result must equal the composed path's bit
 * for bit, with AMSGrad and with a beta1 that selects torch's other lerp form as well. */
static void test_large_threaded_matches_composed(void) {
    uint64_t seed = test_seed("large adamw");
    aqa_adam_options ao = AQA_ADAMW_DEFAULTS;
    large_case(&ao, seed);
    ao.amsgrad = true;
    large_case(&ao, seed);
    ao.beta1 = 0.3;
    ao.weight_decay = 0.0;
    large_case(&ao, seed);
}

int main(void) {
    RUN(test_golden_fused);
    RUN(test_golden_composed_strided);
    RUN(test_golden_float64);
    RUN(test_clip_grad_norm);
    RUN(test_schedules);
    RUN(test_skip_and_errors);
    RUN(test_large_threaded_matches_composed);
    test_golden_close();
    return test_finish();
}
