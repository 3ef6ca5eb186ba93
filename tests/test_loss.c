/* test_loss.c: nn/loss.h against PyTorch (tests/data/golden_loss.safetensors, written by
 * scripts/gen_golden_loss.py: values and input gradients of every loss and reduction, including
 * logits of 1e4; tests/data/golden_loss_ranking.safetensors, by scripts/gen_golden_loss_ranking.py:
 * smooth L1, Huber, margin ranking, triplet margin and cosine embedding with the gradients of
 * every input), gradchecks in float64, and argument errors. */
#include <math.h>

#include "autograd/autograd.h"
#include "nn/loss.h"
#include "ops/ops.h"
#include "tests/test_util.h"

/* A parsed "case.<name>" description (of either golden file). */
typedef struct loss_case {
    char loss[24];
    aqa_reduction reduction;
    double T, ls;                           /* cross-entropy: temperature, label smoothing */
    int64_t ignore;                         /* cross-entropy / NLL: ignore_index */
    int log_target;                         /* KL: log-probability target */
    int n_in;                               /* golden_loss_ranking: differentiable inputs */
    double beta, delta, margin, p, eps;     /* smooth L1, Huber, ranking and triplet options */
    int swap;                               /* triplet: distance swap */
} loss_case;

static aqa_reduction parse_reduction(const char *s) {
    if (!strcmp(s, "sum")) return AQA_REDUCTION_SUM;
    if (!strcmp(s, "none")) return AQA_REDUCTION_NONE;
    if (!strcmp(s, "batchmean")) return AQA_REDUCTION_BATCHMEAN;
    return AQA_REDUCTION_MEAN;
}

static void parse_case(const char *desc, loss_case *c) {
    memset(c, 0, sizeof *c);
    c->T = 1.0;
    c->ignore = -100;
    char buf[256], *cursor = buf;
    snprintf(buf, sizeof buf, "%s", desc);
    for (const char *tok, *v; test_next_kv(&cursor, &tok, &v);) {
        if (!strcmp(tok, "loss")) snprintf(c->loss, sizeof c->loss, "%s", v);
        else if (!strcmp(tok, "reduction")) c->reduction = parse_reduction(v);
        else if (!strcmp(tok, "T")) c->T = atof(v);
        else if (!strcmp(tok, "ls")) c->ls = atof(v);
        else if (!strcmp(tok, "ignore")) c->ignore = atoll(v);
        else if (!strcmp(tok, "log_target")) c->log_target = atoi(v);
        else if (!strcmp(tok, "n_in")) c->n_in = atoi(v);
        else if (!strcmp(tok, "beta")) c->beta = atof(v);
        else if (!strcmp(tok, "delta")) c->delta = atof(v);
        else if (!strcmp(tok, "margin")) c->margin = atof(v);
        else if (!strcmp(tok, "p")) c->p = atof(v);
        else if (!strcmp(tok, "eps")) c->eps = atof(v);
        else if (!strcmp(tok, "swap")) c->swap = atoi(v);
    }
}

static aqa_tensor *call_loss(const loss_case *c, aqa_tensor *x, aqa_tensor *t, aqa_tensor *w, aqa_tensor *pw) {
    if (!strcmp(c->loss, "mse")) return aqa_mse_loss(x, t, c->reduction);
    if (!strcmp(c->loss, "l1")) return aqa_l1_loss(x, t, c->reduction);
    if (!strcmp(c->loss, "bce")) return aqa_bce_loss(x, t, w, c->reduction);
    if (!strcmp(c->loss, "bcel")) return aqa_bce_with_logits(x, t, w, pw, c->reduction);
    if (!strcmp(c->loss, "nll")) return aqa_nll_loss(x, t, w, c->ignore, c->reduction);
    if (!strcmp(c->loss, "kl")) return aqa_kl_div(x, t, c->reduction, c->log_target);
    if (!strcmp(c->loss, "ce")) {
        aqa_cross_entropy_options o = AQA_CROSS_ENTROPY_DEFAULTS;
        o.reduction = c->reduction;
        o.weight = w;
        o.ignore_index = c->ignore;
        o.label_smoothing = c->ls;
        o.temperature = c->T;
        return aqa_cross_entropy(x, t, &o);
    }
    return NULL;
}

/* Calls fn(f, name, description) in a scope of its own for every "case.<name>" of a golden file;
 * returns the number of cases (0 when the file cannot be opened).  Nothing may outlive them. */
typedef void (*golden_case_fn)(const aqa_st_file *f, const char *name, const char *desc);
static int for_each_golden_case(const char *file, golden_case_fn fn) {
    if (!test_golden_open(file)) {
        CHECK_MSG(0, "cannot open %s: %s", file, aqa_last_error());
        return 0;
    }
    int64_t live = aqa_live_tensors();
    int n_cases = 0;
    for (int i = 0; i < aqa_st_metadata_count(test_golden_file); i++) {
        const char *key, *value;
        if (aqa_st_metadata_at(test_golden_file, i, &key, &value) != AQA_OK || strncmp(key, "case.", 5) != 0) continue;
        aqa_scope_begin();
        fn(test_golden_file, key + 5, value);
        aqa_scope_end();
        n_cases++;
    }
    CHECK_EQ_INT(aqa_live_tensors(), live);
    return n_cases;
}

/* Compares a loss with torch's, then runs backward of sum(out * g); AQA_OK when it ran. */
static aqa_status check_loss_then_backward(const char *name, const char *desc, aqa_tensor *out, aqa_tensor *out_ref,
                                           aqa_tensor *g) {
    CHECK_MSG(out != NULL, "%s (%s): %s", name, desc, aqa_last_error());
    double e = out ? test_scaled_err(out, out_ref, 1) : INFINITY;
    CHECK_MSG(e <= 1e-5, "%s (%s): loss normalised error %.3g", name, desc, e);
    aqa_status st = out ? aqa_backward(aqa_sum_all(aqa_mul(out, g)), NULL, false) : AQA_EINVAL;
    CHECK_MSG(st == AQA_OK, "%s: backward: %s", name, aqa_last_error());
    return st;
}

static void golden_case(const aqa_st_file *f, const char *name, const char *value) {
    loss_case c;
    parse_case(value, &c);
    char k[128];
#define LOADOPT(var, suffix, dt)                                                           \
    snprintf(k, sizeof k, "%s.%s", name, suffix);                                          \
    aqa_tensor *var = aqa_st_find(f, k) >= 0 ? aqa_st_load(f, k, (dt)) : NULL;
    snprintf(k, sizeof k, "%s.t", name);
    int ti = aqa_st_find(f, k);
    aqa_dtype tdt = ti >= 0 && aqa_st_get(f, ti)->dtype == AQA_ST_I64 ? AQA_I64 : AQA_F32;
    LOADOPT(x, "x", AQA_F32) LOADOPT(t, "t", tdt) LOADOPT(w, "w", AQA_F32) LOADOPT(pw, "pw", AQA_F32)
    LOADOPT(g, "g", AQA_F32) LOADOPT(out_ref, "out", AQA_F32) LOADOPT(gx_ref, "gx", AQA_F32)
    CHECK_MSG(x && t && g && out_ref && gx_ref, "%s: missing tensors: %s", name, aqa_last_error());
    aqa_requires_grad(x, true);
    if (check_loss_then_backward(name, value, call_loss(&c, x, t, w, pw), out_ref, g) != AQA_OK) return;
    double eg = test_scaled_err(x->grad, gx_ref, 1);
    CHECK_MSG(eg <= 1e-5, "%s (%s): input gradient normalised error %.3g", name, value, eg);
}

static void test_golden_torch(void) {
    int n_cases = for_each_golden_case("golden_loss.safetensors", golden_case);
    printf("    %d golden cases\n", n_cases);
    CHECK(n_cases >= 40);
}

/* ---- gradchecks in float64 --------------------------------------------------------------- */

typedef struct gc_ctx {
    loss_case c;
    aqa_tensor *t, *w, *pw;
} gc_ctx;

static aqa_tensor *gc_fn(aqa_tensor *const *in, int n, void *user) {
    (void)n;
    gc_ctx *g = user;
    return call_loss(&g->c, in[0], g->t, g->w, g->pw);
}

static void gradcheck_case(const char *desc, aqa_tensor *x, aqa_tensor *t, aqa_tensor *w, aqa_tensor *pw) {
    gc_ctx g = {.t = t, .w = w, .pw = pw};
    parse_case(desc, &g.c);
    aqa_requires_grad(x, true);
    aqa_gradcheck_result r = aqa_gradcheck(gc_fn, &x, 1, &g, 1e-6, 1e-7, 1e-5);
    CHECK_MSG(r.ok, "%s: %s", desc, r.message);
}

static void test_gradcheck(void) {
    aqa_manual_seed(test_seed("gradcheck inputs"));
    aqa_scope_begin();
    const char *reds[] = {"mean", "sum", "none"};
    for (int ri = 0; ri < 3; ri++) {
        char d[128];
        aqa_tensor *x = aqa_randn(AQA_SHAPE(3, 4), AQA_F64, NULL), *t = aqa_randn(AQA_SHAPE(3, 4), AQA_F64, NULL);
        snprintf(d, sizeof d, "loss=mse;reduction=%s", reds[ri]);
        gradcheck_case(d, x, t, NULL, NULL);
        snprintf(d, sizeof d, "loss=l1;reduction=%s", reds[ri]);
        gradcheck_case(d, aqa_detach(x), t, NULL, NULL);
        aqa_tensor *p = aqa_add_scalar(aqa_mul_scalar(aqa_rand(AQA_SHAPE(3, 4), AQA_F64, NULL), 0.9), 0.05);
        aqa_tensor *pt = aqa_rand(AQA_SHAPE(3, 4), AQA_F64, NULL), *pw = aqa_rand(AQA_SHAPE(4), AQA_F64, NULL);
        aqa_tensor *w = aqa_rand(AQA_SHAPE(3, 4), AQA_F64, NULL);
        snprintf(d, sizeof d, "loss=bce;reduction=%s", reds[ri]);
        gradcheck_case(d, p, pt, w, NULL);
        snprintf(d, sizeof d, "loss=bcel;reduction=%s", reds[ri]);
        gradcheck_case(d, aqa_detach(x), pt, w, pw);
        aqa_tensor *logits = aqa_mul_scalar(aqa_randn(AQA_SHAPE(5, 4), AQA_F64, NULL), 2.0);
        int64_t lab[5] = {0, 3, -100, 1, 2};
        aqa_tensor *labels = aqa_from_data(lab, AQA_SHAPE(5), AQA_I64);
        aqa_tensor *cw = aqa_add_scalar(aqa_rand(AQA_SHAPE(4), AQA_F64, NULL), 0.5);
        snprintf(d, sizeof d, "loss=ce;reduction=%s;ls=0.15;T=0.5", reds[ri]);
        gradcheck_case(d, logits, labels, cw, NULL);
        snprintf(d, sizeof d, "loss=ce;reduction=%s", reds[ri]);
        gradcheck_case(d, aqa_detach(logits), labels, NULL, NULL);
        aqa_tensor *soft = aqa_softmax(aqa_randn(AQA_SHAPE(5, 4), AQA_F64, NULL), 1);
        snprintf(d, sizeof d, "loss=ce;reduction=%s;ls=0.1", reds[ri]);
        gradcheck_case(d, aqa_detach(logits), soft, cw, NULL);
        aqa_tensor *lp = aqa_log_softmax(aqa_randn(AQA_SHAPE(5, 4), AQA_F64, NULL), 1);
        snprintf(d, sizeof d, "loss=nll;reduction=%s", reds[ri]);
        gradcheck_case(d, lp, labels, cw, NULL);
        snprintf(d, sizeof d, "loss=kl;reduction=%s", reds[ri]);
        gradcheck_case(d, aqa_detach(lp), soft, NULL, NULL);
        snprintf(d, sizeof d, "loss=kl;reduction=%s;log_target=1", reds[ri]);
        gradcheck_case(d, aqa_detach(lp), aqa_log(soft), NULL, NULL);
    }
    /* [N, C, d] logits, a non-contiguous (transposed) input, batchmean */
    aqa_tensor *x3 = aqa_randn(AQA_SHAPE(2, 3, 4), AQA_F64, NULL);
    aqa_tensor *t3 = aqa_randint(0, 3, AQA_SHAPE(2, 4), NULL);
    gradcheck_case("loss=ce;reduction=mean;ls=0.2", x3, t3, NULL, NULL);
    aqa_tensor *xt = aqa_transpose(aqa_randn(AQA_SHAPE(4, 3), AQA_F64, NULL), 0, 1); /* [3, 4] view */
    gradcheck_case("loss=mse;reduction=mean", xt, aqa_transpose(aqa_randn(AQA_SHAPE(4, 3), AQA_F64, NULL), 0, 1),
                   NULL, NULL);
    gradcheck_case("loss=ce;reduction=mean", aqa_transpose(aqa_randn(AQA_SHAPE(4, 3), AQA_F64, NULL), 0, 1),
                   aqa_randint(0, 4, AQA_SHAPE(3), NULL), NULL, NULL);
    gradcheck_case("loss=kl;reduction=batchmean", aqa_log_softmax(aqa_randn(AQA_SHAPE(3, 5), AQA_F64, NULL), 1),
                   aqa_softmax(aqa_randn(AQA_SHAPE(3, 5), AQA_F64, NULL), 1), NULL, NULL);
    aqa_scope_end();
}

/* the gradient of a non-contiguous logits view reaches the base tensor */
static void test_noncontiguous_logits(void) {
    aqa_scope_begin();
    aqa_manual_seed(7);
    aqa_tensor *base = aqa_requires_grad(aqa_randn(AQA_SHAPE(4, 6), AQA_F64, NULL), true);
    aqa_tensor *lt = aqa_transpose(base, 0, 1); /* [6, 4] view */
    int64_t lab[6] = {0, 1, 2, 3, 0, 1};
    aqa_tensor *labels = aqa_from_data(lab, AQA_SHAPE(6), AQA_I64);
    aqa_tensor *l1 = aqa_cross_entropy(lt, labels, NULL);
    aqa_tensor *l2 = aqa_cross_entropy(aqa_contiguous(aqa_detach(lt)), labels, NULL);
    CHECK(l1 && l2);
    if (l1 && l2) CHECK_NEAR(aqa_item(l1), aqa_item(l2), 1e-12);
    CHECK(aqa_backward(l1, NULL, false) == AQA_OK);
    CHECK(base->grad && base->grad->shape[0] == 4 && base->grad->shape[1] == 6);
    aqa_scope_end();
}

static void test_errors(void) {
    aqa_scope_begin();
    aqa_tensor *x = aqa_zeros(AQA_SHAPE(3, 4), AQA_F32);
    int64_t bad[3] = {0, 4, 1};
    aqa_tensor *lab = aqa_from_data(bad, AQA_SHAPE(3), AQA_I64);
    CHECK(aqa_cross_entropy(x, lab, NULL) == NULL); /* class 4 out of range */
    CHECK(aqa_cross_entropy(x, aqa_zeros(AQA_SHAPE(4), AQA_I64), NULL) == NULL);
    CHECK(strstr(aqa_last_error(), "aqa_cross_entropy") != NULL);
    CHECK(aqa_mse_loss(x, x, AQA_REDUCTION_BATCHMEAN) == NULL);
    CHECK(strstr(aqa_last_error(), "batchmean") != NULL);
    CHECK(aqa_bce_loss(x, aqa_zeros(AQA_SHAPE(4), AQA_F32), NULL, AQA_REDUCTION_MEAN) == NULL);
    aqa_cross_entropy_options o = AQA_CROSS_ENTROPY_DEFAULTS;
    o.temperature = 0;
    CHECK(aqa_cross_entropy(x, aqa_zeros(AQA_SHAPE(3), AQA_I64), &o) == NULL);
    o = AQA_CROSS_ENTROPY_DEFAULTS;
    o.weight = aqa_ones(AQA_SHAPE(3), AQA_F32);
    CHECK(aqa_cross_entropy(x, aqa_zeros(AQA_SHAPE(3), AQA_I64), &o) == NULL);
    CHECK(aqa_mse_loss(NULL, x, AQA_REDUCTION_MEAN) == NULL);
    aqa_scope_end();
}

/* ---- smooth L1, Huber, ranking and embedding losses ---------------------------------------- */

static aqa_tensor *call_rank_loss(const loss_case *c, aqa_tensor *const *in, aqa_tensor *t) {
    if (!strcmp(c->loss, "smooth_l1")) return aqa_smooth_l1_loss(in[0], t, c->reduction, c->beta);
    if (!strcmp(c->loss, "huber")) return aqa_huber_loss(in[0], t, c->reduction, c->delta);
    if (!strcmp(c->loss, "margin_ranking")) return aqa_margin_ranking_loss(in[0], in[1], t, c->margin, c->reduction);
    if (!strcmp(c->loss, "cosine_embedding")) return aqa_cosine_embedding_loss(in[0], in[1], t, c->margin, c->reduction);
    if (!strcmp(c->loss, "triplet")) {
        aqa_triplet_options o = {c->margin, c->p, c->eps, c->swap != 0, c->reduction};
        return aqa_triplet_margin_loss(in[0], in[1], in[2], &o);
    }
    return aqa_fail_null("unknown loss %s", c->loss);
}

typedef struct rank_gc {
    loss_case c;
    aqa_tensor *t;
} rank_gc;

static aqa_tensor *rank_gc_fn(aqa_tensor *const *in, int n, void *user) {
    rank_gc *g = user;
    return call_rank_loss(&g->c, in, g->t);
}

/* One golden case against torch (values and the gradient of every input, float32), then the same
 * call gradchecked in float64 on the case's own inputs. */
static void golden_ranking_case(const aqa_st_file *f, const char *name, const char *value) {
    loss_case c;
    parse_case(value, &c);
    char k[128];
    aqa_tensor *in[3] = {0}, *gin_ref[3] = {0}, *in64[3] = {0};
    bool ok = c.n_in >= 1 && c.n_in <= 3;
    for (int j = 0; ok && j < c.n_in; j++) {
        snprintf(k, sizeof k, "%s.in%d", name, j);
        in[j] = aqa_requires_grad(aqa_st_load(f, k, AQA_F32), true);
        in64[j] = aqa_requires_grad(aqa_st_load(f, k, AQA_F64), true);
        snprintf(k, sizeof k, "%s.gin%d", name, j);
        gin_ref[j] = aqa_st_load(f, k, AQA_F32);
        ok = in[j] && in64[j] && gin_ref[j];
    }
    snprintf(k, sizeof k, "%s.t", name);
    aqa_tensor *t = aqa_st_find(f, k) >= 0 ? aqa_st_load(f, k, AQA_F32) : NULL;
    aqa_tensor *t64 = t ? aqa_to_dtype(t, AQA_F64) : NULL;
    snprintf(k, sizeof k, "%s.g", name);
    aqa_tensor *g = aqa_st_load(f, k, AQA_F32);
    snprintf(k, sizeof k, "%s.out", name);
    aqa_tensor *out_ref = aqa_st_load(f, k, AQA_F32);
    CHECK_MSG(ok && g && out_ref, "%s: missing tensors: %s", name, aqa_last_error());
    aqa_status st = check_loss_then_backward(name, value, ok ? call_rank_loss(&c, in, t) : NULL, out_ref, g);
    for (int j = 0; st == AQA_OK && j < c.n_in; j++) {
        double eg = test_scaled_err(in[j]->grad, gin_ref[j], 1);
        CHECK_MSG(eg <= 1e-5, "%s (%s): gradient of input %d normalised error %.3g", name, value, j, eg);
    }
    if (ok) {
        rank_gc gc = {c, t64};
        aqa_gradcheck_result r = aqa_gradcheck(rank_gc_fn, in64, c.n_in, &gc, 1e-6, 1e-7, 1e-5);
        CHECK_MSG(r.ok, "%s (%s): gradcheck: %s", name, value, r.message);
    }
}

static void test_golden_ranking_losses(void) {
    int n_cases = for_each_golden_case("golden_loss_ranking.safetensors", golden_ranking_case);
    printf("    %d golden cases (gradchecked too)\n", n_cases);
    CHECK(n_cases >= 28);
}

static void test_ranking_loss_errors(void) {
    aqa_scope_begin();
    aqa_tensor *x = aqa_zeros(AQA_SHAPE(3, 4), AQA_F32), *v = aqa_zeros(AQA_SHAPE(3), AQA_F32);
    CHECK(aqa_smooth_l1_loss(x, x, AQA_REDUCTION_MEAN, -1.0) == NULL);
    CHECK_STR(aqa_last_error(), "aqa_smooth_l1_loss: beta must be >= 0, got -1");
    CHECK(aqa_huber_loss(x, x, AQA_REDUCTION_MEAN, 0.0) == NULL);
    CHECK_STR(aqa_last_error(), "aqa_huber_loss: delta must be > 0, got 0");
    CHECK(aqa_margin_ranking_loss(x, x, v, 0.0, AQA_REDUCTION_MEAN) == NULL);
    CHECK_STR(aqa_last_error(), "aqa_margin_ranking_loss: input1 [3, 4] and target [3] must have the same number of "
                                "dimensions");
    CHECK(aqa_triplet_margin_loss(x, x, v, NULL) == NULL);
    CHECK(strstr(aqa_last_error(), "negative [3]") != NULL);
    CHECK(aqa_triplet_margin_loss(x, x, x, &(aqa_triplet_options){1.0, 0.0, 1e-6, false, AQA_REDUCTION_MEAN}) == NULL);
    CHECK(aqa_cosine_embedding_loss(x, x, aqa_zeros(AQA_SHAPE(4), AQA_F32), 0.0, AQA_REDUCTION_MEAN) == NULL);
    CHECK(strstr(aqa_last_error(), "want target [N]") != NULL);
    CHECK(aqa_cosine_embedding_loss(x, x, v, 0.0, AQA_REDUCTION_BATCHMEAN) == NULL);
    aqa_scope_end();
}

int main(void) {
    RUN(test_golden_torch);
    RUN(test_golden_ranking_losses);
    RUN(test_ranking_loss_errors);
    RUN(test_gradcheck);
    RUN(test_noncontiguous_logits);
    RUN(test_errors);
    test_golden_close();
    return test_finish();
}
