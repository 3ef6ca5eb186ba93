/* test_heads.c: the assessment heads (models/heads): registry, gradchecks in f64 of each head's
 * loss, losses and predictions against values computed here from their definitions (MSE, the
 * Gaussian-target KL of USDL in both reductions, MUSDL's judge counts and FINA rule against
 * FineDiving-format scores, CoRe's groups closed at theta and its own-DD completeness), exemplar
 * averaging over distinct exemplars, 'w/ DD', Z reaching every head (gradients at every stage
 * and the video feature), and a short training run per head that must lower its loss. */
#include "tests/test_util.h"

#include <string.h>

#include "datasets/annotations.h"

#include "autograd/autograd.h"
#include "models/heads/head.h"
#include "nn/linear.h"
#include "nn/optim.h"
#include "ops/ops.h"
#include "tensor/tensor-impl.h"

static aqa_tensor *vec(const double *v, int64_t n) { return aqa_from_data(v, 1, (int64_t[]){n}, AQA_F64); }

static aqa_head_config small_cfg(void) {
    aqa_head_config c = aqa_head_config_default();
    c.feat_dim = 6;
    c.frame_dim = c.tsa_dim = 4;
    c.tsa_heads = 2;
    c.tsa_layers = 1;
    c.tsa_reg_hidden1 = c.tsa_reg_hidden2 = 8;
    c.core_depth = 3;
    c.core_hidden = 8;
    c.usdl_bins = 11;
    c.usdl_sigma = 1.5;
    c.musdl_judges = 5;
    c.musdl_bins = 6;
    c.judge_max = 5.0;
    c.mlp_hidden1 = c.mlp_hidden2 = 8;
    c.score_min = 0;
    c.score_max = 10;
    c.core_theta = 10;
    c.use_z = false; /* the heads' own input (video) unless a test asks for Z */
    return c;
}

typedef struct ctx {
    aqa_head *h;
    aqa_head_targets t;
    aqa_tensor *es;     /* exemplar scores */
    aqa_tensor *dd;     /* difficulty of the query videos (or NULL) */
    aqa_tensor *counts; /* judge counts of the query videos (or NULL) */
} ctx;

/* loss of the head with query video = in[0] (and exemplar video = in[1] when contrastive) */
static aqa_tensor *video_loss_fn(aqa_tensor *const *in, int n, void *user) {
    ctx *c = user;
    aqa_head_input q = {.video = in[0], .difficulty = c->dd, .judge_count = c->counts};
    aqa_head_input e = {.video = n > 1 ? in[1] : in[0], .difficulty = c->dd};
    aqa_head_result r;
    if (aqa_head_forward(c->h, &q, &e, c->es, &c->t, &r) != AQA_OK) return NULL;
    return r.loss;
}

/* A head of kind ops with small_cfg(), in float64 for the gradchecks; the check also wants the
 * parameter or buffer `tensor` when not NULL.  NULL after a failed check. */
static aqa_head *new_f64_head(const aqa_head_ops *ops, const char *tensor) {
    aqa_head_config hc = small_cfg();
    aqa_head *h = aqa_head_new(ops, &hc, NULL, "");
    CHECK_MSG(h && (!tensor || aqa_module_get(&h->base, tensor) != NULL), "new head (%s): %s",
              tensor ? tensor : "no tensor asked", aqa_last_error());
    if (h) CHECK(aqa_module_to_dtype(&h->base, AQA_F64) == AQA_OK);
    return h;
}

/* A random float64 query video feature (n, 6) requiring grad: gradchecks c's loss w.r.t. it, then
 * runs c's head on it (no exemplar, c's targets) into *r.  Returns the feature. */
static aqa_tensor *gradchecked_query(ctx *c, aqa_generator *g, int64_t n, aqa_head_result *r) {
    aqa_tensor *v = test_rand_leaf(g, AQA_SHAPE(n, 6), AQA_F64, 1.0);
    CHECK_GRAD(video_loss_fn, ((aqa_tensor *[]){v}), 1, c);
    aqa_head_input q = {.video = v, .difficulty = c->dd, .judge_count = c->counts};
    CHECK(aqa_head_forward(c->h, &q, NULL, NULL, &c->t, r) == AQA_OK);
    return v;
}

/* The logits of an evaluator MLP e (layer1, ReLU, layer2, ReLU, layer3) on v, computed here from
 * its layers. */
static aqa_tensor *evaluator_logits(aqa_module *e, aqa_tensor *v) {
    aqa_linear_layer *l1 = (aqa_linear_layer *)aqa_module_find(e, "layer1");
    aqa_linear_layer *l2 = (aqa_linear_layer *)aqa_module_find(e, "layer2");
    aqa_linear_layer *l3 = (aqa_linear_layer *)aqa_module_find(e, "layer3");
    return aqa_linear_layer_forward(
        l3, aqa_relu(aqa_linear_layer_forward(l2, aqa_relu(aqa_linear_layer_forward(l1, v)))));
}

static void test_registry(void) {
    const char *const *names = aqa_head_names();
    int n = 0;
    while (names[n]) n++;
    CHECK_EQ_INT(n, 10);
    CHECK(aqa_head_find("tsa") == &aqa_head_tsa && aqa_head_find("musdl") == &aqa_head_musdl);
    CHECK(aqa_head_find("tsa")->is_contrastive && aqa_head_find("core")->is_contrastive);
    CHECK(!aqa_head_find("usdl")->is_contrastive && !aqa_head_find("mlp")->is_contrastive);
    CHECK(aqa_head_find("nope") == NULL && strstr(aqa_last_error(), "nope"));
}

static void test_mlp_head(void) {
    int64_t live = aqa_live_tensors();
    aqa_generator g = {test_seed("mlp head"), 0};
    aqa_head *h = new_f64_head(&aqa_head_mlp, NULL);
    if (!h) return;
    aqa_scope_begin();
    ctx c = {h, {vec((double[]){1.0, 2.0, 3.0}, 3), NULL}, NULL, NULL, NULL};
    aqa_head_result r;
    aqa_tensor *v = gradchecked_query(&c, &g, 3, &r);
    aqa_head_input q = {.video = v};
    double p[3], mse = 0;
    aqa_copy_to_host(r.pred, p, AQA_F64);
    for (int i = 0; i < 3; i++) mse += (p[i] - (i + 1.0)) * (p[i] - (i + 1.0)) / 3;
    CHECK_NEAR(aqa_item(r.loss), mse, 1e-12);
    /* w/ DD: loss on score / DD, prediction x DD */
    h->cfg.use_difficulty = true;
    aqa_head_result rd;
    CHECK(aqa_head_forward(h, &q, NULL, NULL, &c.t, &rd) == AQA_EINVAL && strstr(aqa_last_error(), "difficulty"));
    q.difficulty = vec((double[]){2.0, 2.0, 4.0}, 3);
    CHECK(aqa_head_forward(h, &q, NULL, NULL, &c.t, &rd) == AQA_OK);
    CHECK_NEAR(aqa_get(rd.pred, (int64_t[]){2}), 4 * p[2], 1e-12);
    double mse_dd = 0, s_dd[3] = {0.5, 1.0, 0.75};
    for (int i = 0; i < 3; i++) mse_dd += (p[i] - s_dd[i]) * (p[i] - s_dd[i]) / 3;
    CHECK_NEAR(aqa_item(rd.loss), mse_dd, 1e-12);
    /* stage features stand in for the video feature (their mean) */
    aqa_tensor *st = aqa_unsqueeze(v, 1);
    aqa_head_input qs = {.stages = aqa_cat((aqa_tensor *[]){st, st}, 2, 1)};
    aqa_head_result rs;
    h->cfg.use_difficulty = false;
    CHECK(aqa_head_forward(h, &qs, NULL, NULL, NULL, &rs) == AQA_OK && rs.loss == NULL);
    CHECK(rs.pred && fabs(aqa_get(rs.pred, (int64_t[]){1}) - p[1]) < 1e-12);
    aqa_scope_end();
    aqa_module_free(&h->base);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

static void test_usdl_head(void) {
    int64_t live = aqa_live_tensors();
    aqa_generator g = {test_seed("usdl head"), 0};
    aqa_head *h = new_f64_head(&aqa_head_usdl, "evaluator.layer3.weight");
    if (!h) return;
    aqa_scope_begin();
    ctx c = {h, {vec((double[]){3.0, 7.5}, 2), NULL}, NULL, NULL, NULL};
    aqa_head_result r;
    aqa_tensor *v = gradchecked_query(&c, &g, 2, &r);
    /* USDL's code: KLDivLoss's 'mean', the same sum over every element (2 x 11) */
    h->cfg.usdl_kl_mean = true;
    aqa_head_result rm;
    CHECK(aqa_head_forward(h, &(aqa_head_input){.video = v}, NULL, NULL, &c.t, &rm) == AQA_OK);
    if (rm.loss && r.loss) CHECK_NEAR(aqa_item(rm.loss), aqa_item(r.loss) / 11.0, 1e-12);
    h->cfg.usdl_kl_mean = false;
    /* the loss by its definition: KL(gaussian target || softmax) with 11 bins over [0, 10] */
    aqa_tensor *logits = evaluator_logits(aqa_module_find(&h->base, "evaluator"), v);
    double lg[22], kl = 0;
    aqa_copy_to_host(logits, lg, AQA_F64);
    double s[2] = {3.0, 7.5};
    for (int i = 0; i < 2; i++) {
        double mx = -1e300, z = 0, tz = 0, tg[11];
        int best = 0;
        for (int k = 0; k < 11; k++) {
            if (lg[i * 11 + k] > mx) mx = lg[i * 11 + k], best = k;
            tg[k] = exp(-0.5 * pow((k - s[i]) / 1.5, 2));
            tz += tg[k];
        }
        for (int k = 0; k < 11; k++) z += exp(lg[i * 11 + k] - mx);
        for (int k = 0; k < 11; k++) {
            double t = tg[k] / tz, lp = lg[i * 11 + k] - mx - log(z);
            kl += t * (log(t) - lp) / 2;
        }
        CHECK_NEAR(aqa_get(r.pred, (int64_t[]){i}), (double)best, 1e-12); /* bin width 1 */
    }
    CHECK_NEAR(aqa_item(r.loss), kl, 1e-10);
    aqa_scope_end();
    aqa_module_free(&h->base);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

/* The final score MUSDL predicts when evaluator j's argmax is judge score js[j] for every video:
 * each judge's last layer is set to put all its weight on that bin. */
static void force_judges(aqa_head *h, const double *js, int n) {
    const aqa_head_config *c = &h->cfg;
    for (int j = 0; j < n; j++) {
        char name[64];
        snprintf(name, sizeof name, "evaluators.%d.layer3", j);
        aqa_linear_layer *l = (aqa_linear_layer *)aqa_module_find(&h->base, name);
        CHECK(l != NULL);
        if (!l) continue;
        double *b = calloc((size_t)c->musdl_bins, sizeof *b);
        int64_t bin = (int64_t)llround((js[j] - c->judge_min) / (c->judge_max - c->judge_min) * (double)(c->musdl_bins - 1));
        b[bin] = 100.0;
        aqa_tensor *bt = aqa_from_data(b, 1, (int64_t[]){c->musdl_bins}, AQA_F64);
        CHECK(aqa_copy_(l->bias, bt) == AQA_OK && aqa_copy_(l->weight, aqa_zeros_like(l->weight)) == AQA_OK);
        aqa_tensor_free(bt);
        free(b);
    }
}

static void test_musdl_head(void) {
    int64_t live = aqa_live_tensors();
    aqa_generator g = {test_seed("musdl head"), 0};
    aqa_head *h = new_f64_head(&aqa_head_musdl, "evaluators.4.layer1.weight");
    if (!h) return;
    aqa_scope_begin();
    /* row 0 has 5 judges, row 1 only 3: its last two columns are padding */
    double js[10] = {1, 2, 3, 4, 5, 0.5, 1.5, 2.5, 0, 0};
    aqa_tensor *judges = aqa_from_data(js, 2, (int64_t[]){2, 5}, AQA_F64);
    ctx c = {h, {NULL, judges}, NULL, vec((double[]){2.0, 3.0}, 2), test_i64((int64_t[]){5, 3}, 1, (int64_t[]){2})};
    aqa_head_result r;
    aqa_tensor *v = gradchecked_query(&c, &g, 2, &r);
    /* prediction: each present judge's argmax bin (6 bins over [0, 5]: bin k = k); 5 judges: 0.6 x
     * their sum (FineDiving's synchro panels), 3 judges: their sum; x DD */
    double pred[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
        int n = i == 0 ? 5 : 3;
        for (int j = 0; j < n; j++) {
            char name[64];
            snprintf(name, sizeof name, "evaluators.%d", j);
            aqa_tensor *lg = evaluator_logits(aqa_module_find(&h->base, name), v);
            pred[i] += (double)aqa_item(aqa_argmax(aqa_select(lg, 0, i), 0, false));
        }
        pred[i] *= (n == 5 ? 0.6 : 1.0) * (i == 0 ? 2.0 : 3.0);
        CHECK_NEAR(aqa_get(r.pred, (int64_t[]){i}), pred[i], 1e-12);
    }
    CHECK(r.loss && aqa_item(r.loss) > 0);
    /* absent judges never reach the loss: changing row 1's padding changes nothing, a present
     * judge does */
    aqa_head_input q = {.video = v, .difficulty = c.dd, .judge_count = c.counts};
    double js2[10] = {1, 2, 3, 4, 5, 0.5, 1.5, 2.5, 4.5, 3.0};
    aqa_head_result r2;
    CHECK(aqa_head_forward(h, &q, NULL, NULL, &(aqa_head_targets){NULL, aqa_from_data(js2, 2, (int64_t[]){2, 5}, AQA_F64)},
                           &r2) == AQA_OK);
    if (r.loss && r2.loss) CHECK_NEAR(aqa_item(r2.loss), aqa_item(r.loss), 1e-12);
    js2[7] = 0.0;
    CHECK(aqa_head_forward(h, &q, NULL, NULL, &(aqa_head_targets){NULL, aqa_from_data(js2, 2, (int64_t[]){2, 5}, AQA_F64)},
                           &r2) == AQA_OK);
    if (r.loss && r2.loss) CHECK(fabs(aqa_item(r2.loss) - aqa_item(r.loss)) > 1e-6);
    /* the loss: each judge's KL averaged over the videos that have it, summed over judges */
    double want = 0;
    for (int j = 0; j < 5; j++) {
        char name[64];
        snprintf(name, sizeof name, "evaluators.%d", j);
        aqa_tensor *lp = aqa_log_softmax(evaluator_logits(aqa_module_find(&h->base, name), v), 1);
        double kl = 0, lpv[12];
        aqa_copy_to_host(lp, lpv, AQA_F64);
        int present = 0;
        for (int i = 0; i < 2; i++) {
            if (j >= (i == 0 ? 5 : 3)) continue;
            present++;
            double t[6], z = 0;
            for (int k = 0; k < 6; k++) z += t[k] = exp(-0.5 * pow((k - js[i * 5 + j]) / 1.5, 2));
            for (int k = 0; k < 6; k++) kl += t[k] / z * (log(t[k] / z) - lpv[i * 6 + k]);
        }
        want += kl / present;
    }
    CHECK_NEAR(aqa_item(r.loss), want, 1e-10);
    /* a count outside 1..judges is refused */
    q.judge_count = test_i64((int64_t[]){5, 6}, 1, (int64_t[]){2});
    CHECK(aqa_head_forward(h, &q, NULL, NULL, NULL, &r2) == AQA_EINVAL && strstr(aqa_last_error(), "judges"));
    aqa_scope_end();
    aqa_module_free(&h->base);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

/* FINA's rule for 3, 5 and 7 judges reproduces the FineDiving-format fixture's dive scores from its
 * judges and DD (tests/data/finediving: difficulty x (middle 3 of 7 | 0.6 x sum of 5 | sum of 3)):
 * with each evaluator forced to its judge's score, MUSDL predicts the dive score. */
static void test_musdl_fina_rule(void) {
    int64_t live = aqa_live_tensors();
    aqa_ann_manifest *m = aqa_ann_load_finediving(test_data_path("finediving"));
    CHECK_MSG(m != NULL, "%s", aqa_last_error());
    if (!m) return;
    aqa_head_config hc = small_cfg();
    aqa_head_config_usdl_mtl_aqa(&hc); /* 7 judges of 21 bins over [0, 10], FINA's rule */
    aqa_head *h = aqa_head_new(&aqa_head_musdl, &hc, NULL, "");
    CHECK(h && aqa_module_to_dtype(&h->base, AQA_F64) == AQA_OK);
    int seen[8] = {0};
    for (size_t i = 0; h && i < m->n_samples; i++) {
        const aqa_ann_sample *s = &m->samples[i];
        aqa_scope_begin();
        force_judges(h, s->judges, s->n_judges);
        aqa_head_input q = {.video = aqa_zeros(AQA_SHAPE(1, 6), AQA_F64), .difficulty = vec(&s->difficulty, 1),
                            .judge_count = test_i64((int64_t[]){s->n_judges}, 1, (int64_t[]){1})};
        aqa_head_result r;
        CHECK(aqa_head_forward(h, &q, NULL, NULL, NULL, &r) == AQA_OK);
        if (r.pred)
            CHECK_MSG(fabs(aqa_item(r.pred) - s->score) < 0.006, "%s (%d judges): predicted %.4f, score %.4f", s->key,
                      s->n_judges, aqa_item(r.pred), s->score);
        seen[s->n_judges & 7]++;
        aqa_scope_end();
    }
    CHECK(seen[3] && seen[5] && seen[7]);
    /* JIGSAWS: the 6 GRS items summed, no DD */
    aqa_head_config_usdl_jigsaws(&hc);
    aqa_head *jh = aqa_head_new(&aqa_head_musdl, &hc, NULL, "");
    CHECK(jh && aqa_module_to_dtype(&jh->base, AQA_F64) == AQA_OK);
    if (jh) {
        aqa_scope_begin();
        const double grs[6] = {3, 4, 2, 5, 3, 4};
        force_judges(jh, grs, 6);
        aqa_head_result r;
        CHECK(aqa_head_forward(jh, &(aqa_head_input){.video = aqa_zeros(AQA_SHAPE(1, 6), AQA_F64)}, NULL, NULL, NULL, &r) ==
              AQA_OK);
        if (r.pred) CHECK_NEAR(aqa_item(r.pred), 21.0, 1e-12);
        aqa_scope_end();
        aqa_module_free(&jh->base);
    }
    if (h) aqa_module_free(&h->base);
    aqa_ann_free(m);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

static void test_core_head(void) {
    int64_t live = aqa_live_tensors();
    aqa_generator g = {test_seed("core head"), 0};
    aqa_head_config hc = small_cfg();
    aqa_head *h = aqa_head_new(&aqa_head_core, &hc, NULL, "");
    CHECK(h && aqa_module_get(&h->base, "feature_layers.1.0.weight") && aqa_module_get(&h->base, "clf_layers.1.bias") &&
          aqa_module_get(&h->base, "reg_layer.weight") && aqa_module_get(&h->base, "first_layer.0.weight"));
    if (!h) return;
    /* depth 3: 4 leaves; |d| sorted 0.5 1 2 4 -> positive half [0, 1), [1, theta = 10] (CoRe's
     * Group_helper Max = score_range, not the largest delta) */
    double d[] = {-1.0, 0.5, 4.0, -2.0};
    CHECK(aqa_core_head_set_groups(h, d, 4) == AQA_OK);
    aqa_tensor *gr = aqa_module_get(&h->base, "groups");
    double gv[8];
    aqa_copy_to_host(gr, gv, AQA_F64);
    double ge[8] = {-10, -1, -1, 0, 0, 1, 1, 10};
    for (int i = 0; i < 8; i++) CHECK_NEAR(gv[i], ge[i], 1e-12);
    CHECK(aqa_core_head_set_groups(aqa_head_new(&aqa_head_mlp, &hc, &h->base, "x"), d, 4) == AQA_EINVAL);
    CHECK(aqa_module_to_dtype(&h->base, AQA_F64) == AQA_OK);
    aqa_scope_begin();
    ctx c = {h, {vec((double[]){5.0, 2.0, 7.0}, 3), NULL}, vec((double[]){4.5, 3.5, 6.0}, 3), NULL, NULL};
    aqa_tensor *vq = test_rand_leaf(&g, AQA_SHAPE(3, 6), AQA_F64, 1.0), *ve = test_rand_leaf(&g, AQA_SHAPE(3, 6), AQA_F64, 1.0);
    CHECK_GRAD(video_loss_fn, ((aqa_tensor *[]){vq, ve}), 2, &c);
    aqa_head_input q = {.video = vq}, e = {.video = ve};
    aqa_head_result r;
    CHECK(aqa_head_forward(h, &q, &e, c.es, &c.t, &r) == AQA_OK);
    CHECK(r.loss && aqa_item(r.loss) > 0 && r.pred && r.pred->shape[0] == 3);
    /* with DD each video's score is divided by its own DD (CoRe's completeness): scores and DD
     * doubled on the exemplar side only leave the prediction as it is */
    h->cfg.use_difficulty = true;
    q.difficulty = vec((double[]){2.0, 1.0, 2.5}, 3);
    e.difficulty = vec((double[]){1.5, 1.0, 2.0}, 3);
    aqa_head_result rd, rd2;
    CHECK(aqa_head_forward(h, &q, &e, c.es, NULL, &rd) == AQA_OK);
    aqa_head_input e2 = e;
    e2.difficulty = aqa_mul_scalar(e.difficulty, 2.0);
    CHECK(aqa_head_forward(h, &q, &e2, aqa_mul_scalar(c.es, 2.0), NULL, &rd2) == AQA_OK);
    CHECK_CLOSE("core own-DD completeness", rd2.pred, rd.pred, 1e-12, 1e-12);
    /* ... while dividing both by the query's DD (the earlier rule) would differ */
    aqa_head_input e3 = e;
    e3.difficulty = q.difficulty;
    CHECK(aqa_head_forward(h, &q, &e3, c.es, NULL, &rd2) == AQA_OK);
    CHECK(rd.pred && rd2.pred && aqa_item(aqa_max_all(aqa_abs(aqa_sub(rd.pred, rd2.pred)))) > 1e-6);
    e.difficulty = NULL;
    CHECK(aqa_head_forward(h, &q, &e, c.es, NULL, &rd) == AQA_EINVAL && strstr(aqa_last_error(), "difficulty"));
    /* contrastive heads refuse a missing exemplar */
    CHECK(aqa_head_forward(h, &q, NULL, NULL, &c.t, &r) == AQA_EINVAL && strstr(aqa_last_error(), "exemplar"));
    aqa_scope_end();
    aqa_module_free(&h->base);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

static void test_tsa_plain_and_exemplars(void) {
    int64_t live = aqa_live_tensors();
    aqa_generator g = {test_seed("tsa plain"), 0};
    aqa_head_config hc = small_cfg();
    hc.use_z = false; /* plain TSA: frames + boundaries only */
    aqa_manual_seed(9);
    aqa_head *h = aqa_head_new(&aqa_head_tsa, &hc, NULL, "");
    CHECK(h && aqa_module_get(&h->base, "stage_proj.weight") == NULL);
    if (!h) return;
    aqa_scope_begin();
    bool prev = aqa_set_grad_enabled(false);
    aqa_tensor *b = aqa_from_data((int64_t[]){3, 7, 2, 9}, 2, (int64_t[]){2, 2}, AQA_I64);
    aqa_head_input q = {.frames = aqa_randn(AQA_SHAPE(2, 12, 4), AQA_F32, &g), .boundaries = b};
    aqa_head_input ex[3] = {{.frames = aqa_randn(AQA_SHAPE(2, 12, 4), AQA_F32, &g), .boundaries = b},
                            {.frames = aqa_randn(AQA_SHAPE(2, 12, 4), AQA_F32, &g), .boundaries = b},
                            {.frames = aqa_randn(AQA_SHAPE(2, 12, 4), AQA_F32, &g), .boundaries = b}};
    aqa_tensor *sc[3] = {aqa_from_data((float[]){1, 2}, 1, (int64_t[]){2}, AQA_F32),
                         aqa_from_data((float[]){3, 5}, 1, (int64_t[]){2}, AQA_F32),
                         aqa_from_data((float[]){6, 9}, 1, (int64_t[]){2}, AQA_F32)};
    aqa_head_result r[3];
    for (int k = 0; k < 3; k++) CHECK(aqa_head_forward(h, &q, &ex[k], sc[k], NULL, &r[k]) == AQA_OK && r[k].loss == NULL);
    double p[3][2];
    for (int k = 0; k < 3; k++) aqa_copy_to_host(r[k].pred, p[k], AQA_F64);
    aqa_tensor *avg = aqa_head_predict_exemplars(h, &q, ex, sc, 2, NULL);
    CHECK(avg != NULL);
    if (avg)
        for (int i = 0; i < 2; i++) CHECK_NEAR(aqa_get(avg, (int64_t[]){i}), 0.5 * (p[0][i] + p[1][i]), 1e-5);
    /* query 0's group had 2 distinct exemplars (the third slot repeats the first), query 1's all 3:
     * each averages its own, TSA/CoRe's train_file_list[:voter_number] */
    aqa_tensor *cnt = test_i64((int64_t[]){2, 3}, 1, (int64_t[]){2});
    aqa_head_input exr[3] = {ex[0], ex[1], ex[2]};
    aqa_tensor *scr[3] = {sc[0], sc[1], sc[2]};
    aqa_tensor *avg2 = aqa_head_predict_exemplars(h, &q, exr, scr, 3, cnt);
    CHECK(avg2 != NULL);
    if (avg2) {
        CHECK_NEAR(aqa_get(avg2, (int64_t[]){0}), (p[0][0] + p[1][0]) / 2, 1e-5);
        CHECK_NEAR(aqa_get(avg2, (int64_t[]){1}), (p[0][1] + p[1][1] + p[2][1]) / 3, 1e-5);
    }
    CHECK(aqa_head_predict_exemplars(h, &q, exr, scr, 3, test_i64((int64_t[]){2}, 1, (int64_t[]){1})) == NULL &&
          strstr(aqa_last_error(), "counts"));
    /* a bad split is named */
    aqa_head_input bad = q;
    bad.boundaries = aqa_from_data((int64_t[]){7, 3, 2, 9}, 2, (int64_t[]){2, 2}, AQA_I64);
    CHECK(aqa_head_forward(h, &bad, &ex[0], sc[0], NULL, &r[0]) != AQA_OK && strstr(aqa_last_error(), "boundary"));
    aqa_set_grad_enabled(prev);
    aqa_scope_end();
    aqa_module_free(&h->base);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

/* "R regresses Z": with use_z every head's loss has a gradient at every stage feature (Z^sta_s) and
 * at the video feature (Z^vid), so stage-level SCA trains whatever the head; without use_z the
 * non-TSA heads read the video feature alone (stage gradients exactly 0). */
static void test_z_reaches_heads(void) {
    int64_t live = aqa_live_tensors();
    aqa_generator g = {test_seed("z reaches heads"), 0};
    const char *names[] = {"tsa", "core", "usdl", "musdl", "mlp"};
    for (int z = 1; z >= 0; z--)
        for (int k = 0; k < 5; k++) {
            aqa_head_config hc = small_cfg();
            hc.use_z = z;
            aqa_manual_seed(31 + k);
            aqa_head *h = aqa_head_new(aqa_head_find(names[k]), &hc, NULL, "");
            CHECK(h != NULL);
            if (!h) continue;
            aqa_scope_begin();
            int64_t B = 3;
            aqa_tensor *st[2], *vd[2];
            for (int v = 0; v < 2; v++) {
                st[v] = test_rand_leaf(&g, AQA_SHAPE(B, 3, 6), AQA_F32, 1.0);
                vd[v] = test_rand_leaf(&g, AQA_SHAPE(B, 6), AQA_F32, 1.0);
            }
            aqa_tensor *bd = test_i64((int64_t[]){3, 7, 2, 9, 4, 8}, 2, (int64_t[]){3, 2});
            aqa_tensor *cnt = test_i64((int64_t[]){5, 4, 5}, 1, (int64_t[]){3});
            aqa_head_input q = {.frames = aqa_randn(AQA_SHAPE(B, 12, 4), AQA_F32, &g), .boundaries = bd, .stages = st[0],
                                .video = vd[0], .judge_count = cnt, .difficulty = vec((double[]){1, 2, 3}, 3)};
            aqa_head_input e = {.frames = aqa_randn(AQA_SHAPE(B, 12, 4), AQA_F32, &g), .boundaries = bd, .stages = st[1],
                                .video = vd[1], .difficulty = q.difficulty};
            aqa_head_targets t = {aqa_from_data((float[]){2, 5, 8}, 1, (int64_t[]){3}, AQA_F32),
                                  aqa_mul_scalar(aqa_rand(AQA_SHAPE(B, 5), AQA_F32, &g), 5.0)};
            aqa_head_result r;
            CHECK_MSG(aqa_head_forward(h, &q, &e, aqa_from_data((float[]){3, 4, 6}, 1, (int64_t[]){3}, AQA_F32), &t, &r) ==
                          AQA_OK,
                      "%s: %s", names[k], aqa_last_error());
            if (r.loss && aqa_backward(r.loss, NULL, false) == AQA_OK) {
                bool stage_grad = st[0]->grad != NULL, every = stage_grad;
                for (int s = 0; every && s < 3; s++) /* each stage row of the query */
                    every = aqa_item(aqa_sum_all(aqa_abs(aqa_select(st[0]->grad, 1, s)))) > 0;
                bool video_grad = vd[0]->grad && aqa_item(aqa_sum_all(aqa_abs(vd[0]->grad))) > 0;
                if (z) {
                    CHECK_MSG(every && video_grad, "%s with use_z: Z^sta %s, Z^vid %s", names[k],
                              every ? "reached" : "missed", video_grad ? "reached" : "missed");
                } else if (k > 0) {
                    CHECK_MSG(!stage_grad || aqa_item(aqa_sum_all(aqa_abs(st[0]->grad))) == 0,
                              "%s without use_z reads the stages", names[k]);
                    CHECK_MSG(video_grad, "%s without use_z: no gradient at the video feature", names[k]);
                }
            }
            aqa_scope_end();
            aqa_module_free(&h->base);
        }
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

/* Every head learns a toy task: score = 5 + 2 * x[0] (in range [0, 10]), 60 Adam steps. */
static void test_heads_learn(void) {
    int64_t live = aqa_live_tensors();
    aqa_generator g = {test_seed("heads learn"), 0};
    const char *names[] = {"mlp", "usdl", "core", "tsa"};
    for (int k = 0; k < 4; k++) {
        aqa_head_config hc = small_cfg();
        hc.use_z = true;
        aqa_manual_seed(21 + k);
        aqa_head *h = aqa_head_new(aqa_head_find(names[k]), &hc, NULL, "");
        CHECK(h != NULL);
        if (!h) continue;
        aqa_tensor **p = NULL;
        int np = aqa_module_parameters(&h->base, &p);
        aqa_optimizer *opt = aqa_adam_new(&(aqa_adam_options)AQA_ADAM_DEFAULTS);
        aqa_optim_add_group(opt, p, np, 1e-2, 0.0);
        int64_t B = 16;
        aqa_tensor *x = aqa_randn(AQA_SHAPE(2 * B, 6), AQA_F32, &g);
        aqa_tensor *fr = aqa_randn(AQA_SHAPE(2 * B, 12, 4), AQA_F32, &g);
        aqa_tensor *bd = aqa_from_data((int64_t[]){4, 8}, 2, (int64_t[]){1, 2}, AQA_I64);
        aqa_tensor *bdx = aqa_expand(bd, 2, (int64_t[]){B, 2});
        aqa_tensor *bds = aqa_contiguous(bdx);
        aqa_tensor_free(bdx);
        double xs[32 * 6], s[32];
        aqa_copy_to_host(x, xs, AQA_F64);
        for (int i = 0; i < 2 * B; i++) s[i] = fmin(9.5, fmax(0.5, 5 + 2 * xs[i * 6]));
        if (k == 2) {
            double d[16];
            for (int i = 0; i < B; i++) d[i] = s[i] - s[B + i];
            aqa_core_head_set_groups(h, d, B);
        }
        aqa_tensor *sc = aqa_from_data(s, 1, (int64_t[]){2 * B}, AQA_F64);
        double first = 0, last = 0;
        for (int step = 0; step < 60; step++) {
            aqa_scope_begin();
            aqa_tensor *st = aqa_unsqueeze(x, 1);
            aqa_tensor *st3 = aqa_cat((aqa_tensor *[]){st, st, st}, 3, 1);
            aqa_head_input q = {.frames = aqa_narrow(fr, 0, 0, B), .boundaries = bds, .stages = aqa_narrow(st3, 0, 0, B),
                                .video = aqa_narrow(x, 0, 0, B)};
            aqa_head_input e = {.frames = aqa_narrow(fr, 0, B, B), .boundaries = bds, .stages = aqa_narrow(st3, 0, B, B),
                                .video = aqa_narrow(x, 0, B, B)};
            aqa_head_targets t = {aqa_narrow(sc, 0, 0, B), NULL};
            aqa_head_result r;
            aqa_optim_zero_grad(opt);
            if (aqa_head_forward(h, &q, &e, aqa_narrow(sc, 0, B, B), &t, &r) != AQA_OK || !r.loss) {
                CHECK_MSG(0, "%s: %s", names[k], aqa_last_error());
                aqa_scope_end();
                break;
            }
            double l = aqa_item(r.loss);
            if (step == 0) first = l;
            last = l;
            aqa_backward(r.loss, NULL, false);
            aqa_optim_step(opt);
            aqa_scope_end();
        }
        printf("    %s: loss %.4f -> %.4f\n", names[k], first, last);
        CHECK_MSG(last < 0.7 * first, "%s did not learn: %.4f -> %.4f", names[k], first, last);
        aqa_tensor_free(x);
        aqa_tensor_free(fr);
        aqa_tensor_free(bd);
        aqa_tensor_free(bds);
        aqa_tensor_free(sc);
        free(p);
        aqa_optim_free(opt);
        aqa_module_free(&h->base);
    }
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

int main(void) {
    RUN(test_registry);
    RUN(test_mlp_head);
    RUN(test_usdl_head);
    RUN(test_musdl_head);
    RUN(test_musdl_fina_rule);
    RUN(test_core_head);
    RUN(test_tsa_plain_and_exemplars);
    RUN(test_z_reaches_heads);
    RUN(test_heads_learn);
    return test_finish();
}
