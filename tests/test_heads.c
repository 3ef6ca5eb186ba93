/* test_heads.c: the assessment heads (models/heads): registry, gradchecks in f64 of each head's
 * loss, losses and predictions against values computed here from their definitions (MSE, the
 * Gaussian-target KL of USDL, MUSDL's middle-judges sum, CoRe's symmetric groups), exemplar
 * averaging, 'w/ DD', and a short training run per head that must lower its loss. */
#include "tests/test_util.h"

#include <string.h>

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
    return c;
}

typedef struct ctx {
    aqa_head *h;
    aqa_head_targets t;
    aqa_tensor *es; /* exemplar scores */
} ctx;

/* loss of the head with query video = in[0] (and exemplar video = in[1] when contrastive) */
static aqa_tensor *video_loss_fn(aqa_tensor *const *in, int n, void *user) {
    ctx *c = user;
    aqa_head_input q = {NULL, NULL, NULL, in[0]}, e = {NULL, NULL, NULL, n > 1 ? in[1] : in[0]};
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
    aqa_head_input q = {NULL, NULL, NULL, v};
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
    ctx c = {h, {vec((double[]){1.0, 2.0, 3.0}, 3), NULL, NULL}, NULL};
    aqa_head_result r;
    aqa_tensor *v = gradchecked_query(&c, &g, 3, &r);
    aqa_head_input q = {NULL, NULL, NULL, v};
    double p[3], mse = 0;
    aqa_copy_to_host(r.pred, p, AQA_F64);
    for (int i = 0; i < 3; i++) mse += (p[i] - (i + 1.0)) * (p[i] - (i + 1.0)) / 3;
    CHECK_NEAR(aqa_item(r.loss), mse, 1e-12);
    /* w/ DD: loss on score / DD, prediction x DD */
    h->cfg.use_difficulty = true;
    aqa_head_targets td = {c.t.score, NULL, vec((double[]){2.0, 2.0, 4.0}, 3)};
    aqa_head_result rd;
    CHECK(aqa_head_forward(h, &q, NULL, NULL, &td, &rd) == AQA_OK);
    CHECK_NEAR(aqa_get(rd.pred, (int64_t[]){2}), 4 * p[2], 1e-12);
    double mse_dd = 0, s_dd[3] = {0.5, 1.0, 0.75};
    for (int i = 0; i < 3; i++) mse_dd += (p[i] - s_dd[i]) * (p[i] - s_dd[i]) / 3;
    CHECK_NEAR(aqa_item(rd.loss), mse_dd, 1e-12);
    /* stage features stand in for the video feature (their mean) */
    aqa_tensor *st = aqa_unsqueeze(v, 1);
    aqa_head_input qs = {NULL, NULL, aqa_cat((aqa_tensor *[]){st, st}, 2, 1), NULL};
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
    ctx c = {h, {vec((double[]){3.0, 7.5}, 2), NULL, NULL}, NULL};
    aqa_head_result r;
    aqa_tensor *v = gradchecked_query(&c, &g, 2, &r);
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

static void test_musdl_head(void) {
    int64_t live = aqa_live_tensors();
    aqa_generator g = {test_seed("musdl head"), 0};
    aqa_head *h = new_f64_head(&aqa_head_musdl, "evaluators.4.layer1.weight");
    if (!h) return;
    aqa_scope_begin();
    double js[10] = {1, 2, 3, 4, 5, 0.5, 1.5, 2.5, 3.5, 4.5};
    aqa_tensor *judges = aqa_from_data(js, 2, (int64_t[]){2, 5}, AQA_F64);
    ctx c = {h, {NULL, judges, vec((double[]){2.0, 3.0}, 2)}, NULL};
    aqa_head_result r;
    aqa_tensor *v = gradchecked_query(&c, &g, 2, &r);
    /* prediction: each judge's argmax bin (6 bins over [0, 5]: bin k = k), sorted, the middle 3
     * (5 judges: drop 1 each side) summed, x DD */
    double pred[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
        double jp[5];
        for (int j = 0; j < 5; j++) {
            char name[64];
            snprintf(name, sizeof name, "evaluators.%d", j);
            aqa_tensor *lg = evaluator_logits(aqa_module_find(&h->base, name), v);
            jp[j] = (double)aqa_item(aqa_argmax(aqa_select(lg, 0, i), 0, false));
        }
        for (int a = 0; a < 5; a++)
            for (int b = a + 1; b < 5; b++)
                if (jp[b] < jp[a]) {
                    double t = jp[a];
                    jp[a] = jp[b];
                    jp[b] = t;
                }
        pred[i] = (jp[1] + jp[2] + jp[3]) * (i == 0 ? 2.0 : 3.0);
        CHECK_NEAR(aqa_get(r.pred, (int64_t[]){i}), pred[i], 1e-12);
    }
    CHECK(r.loss && aqa_item(r.loss) > 0);
    aqa_scope_end();
    aqa_module_free(&h->base);
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
    /* depth 3: 4 leaves; deltas |d| sorted 0.5 1 2 4 -> positive half [0, 1), [1, 4] */
    double d[] = {-1.0, 0.5, 4.0, -2.0};
    CHECK(aqa_core_head_set_groups(h, d, 4) == AQA_OK);
    aqa_tensor *gr = aqa_module_get(&h->base, "groups");
    double gv[8];
    aqa_copy_to_host(gr, gv, AQA_F64);
    double ge[8] = {-4, -1, -1, 0, 0, 1, 1, 4};
    for (int i = 0; i < 8; i++) CHECK_NEAR(gv[i], ge[i], 1e-12);
    CHECK(aqa_core_head_set_groups(aqa_head_new(&aqa_head_mlp, &hc, &h->base, "x"), d, 4) == AQA_EINVAL);
    CHECK(aqa_module_to_dtype(&h->base, AQA_F64) == AQA_OK);
    aqa_scope_begin();
    ctx c = {h, {vec((double[]){5.0, 2.0, 7.0}, 3), NULL, NULL}, vec((double[]){4.5, 3.5, 6.0}, 3)};
    aqa_tensor *vq = test_rand_leaf(&g, AQA_SHAPE(3, 6), AQA_F64, 1.0), *ve = test_rand_leaf(&g, AQA_SHAPE(3, 6), AQA_F64, 1.0);
    CHECK_GRAD(video_loss_fn, ((aqa_tensor *[]){vq, ve}), 2, &c);
    aqa_head_input q = {NULL, NULL, NULL, vq}, e = {NULL, NULL, NULL, ve};
    aqa_head_result r;
    CHECK(aqa_head_forward(h, &q, &e, c.es, &c.t, &r) == AQA_OK);
    CHECK(r.loss && aqa_item(r.loss) > 0 && r.pred && r.pred->shape[0] == 3);
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
    hc.use_stage_features = false; /* plain TSA: frames + boundaries only */
    aqa_manual_seed(9);
    aqa_head *h = aqa_head_new(&aqa_head_tsa, &hc, NULL, "");
    CHECK(h && aqa_module_get(&h->base, "stage_proj.weight") == NULL);
    if (!h) return;
    aqa_scope_begin();
    bool prev = aqa_set_grad_enabled(false);
    aqa_tensor *b = aqa_from_data((int64_t[]){3, 7, 2, 9}, 2, (int64_t[]){2, 2}, AQA_I64);
    aqa_head_input q = {aqa_randn(AQA_SHAPE(2, 12, 4), AQA_F32, &g), b, NULL, NULL};
    aqa_head_input ex[2] = {{aqa_randn(AQA_SHAPE(2, 12, 4), AQA_F32, &g), b, NULL, NULL},
                            {aqa_randn(AQA_SHAPE(2, 12, 4), AQA_F32, &g), b, NULL, NULL}};
    aqa_tensor *sc[2] = {aqa_from_data((float[]){1, 2}, 1, (int64_t[]){2}, AQA_F32),
                         aqa_from_data((float[]){3, 5}, 1, (int64_t[]){2}, AQA_F32)};
    aqa_head_result r0, r1;
    CHECK(aqa_head_forward(h, &q, &ex[0], sc[0], NULL, &r0) == AQA_OK && r0.loss == NULL);
    CHECK(aqa_head_forward(h, &q, &ex[1], sc[1], NULL, &r1) == AQA_OK);
    aqa_tensor *avg = aqa_head_predict_exemplars(h, &q, ex, sc, 2, NULL);
    CHECK(avg && r0.pred && r1.pred);
    if (avg && r0.pred && r1.pred)
        for (int i = 0; i < 2; i++)
            CHECK_NEAR(aqa_get(avg, (int64_t[]){i}),
                       0.5 * (aqa_get(r0.pred, (int64_t[]){i}) + aqa_get(r1.pred, (int64_t[]){i})), 1e-5);
    /* a bad split is named */
    aqa_head_input bad = q;
    bad.boundaries = aqa_from_data((int64_t[]){7, 3, 2, 9}, 2, (int64_t[]){2, 2}, AQA_I64);
    CHECK(aqa_head_forward(h, &bad, &ex[0], sc[0], NULL, &r0) != AQA_OK && strstr(aqa_last_error(), "boundary"));
    aqa_set_grad_enabled(prev);
    aqa_scope_end();
    aqa_module_free(&h->base);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

/* Every head learns a toy task: score = 5 + 2 * x[0] (in range [0, 10]), 60 Adam steps. */
static void test_heads_learn(void) {
    int64_t live = aqa_live_tensors();
    aqa_generator g = {test_seed("heads learn"), 0};
    const char *names[] = {"mlp", "usdl", "core", "tsa"};
    for (int k = 0; k < 4; k++) {
        aqa_head_config hc = small_cfg();
        hc.use_stage_features = true;
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
            aqa_head_input q = {aqa_narrow(fr, 0, 0, B), bds, aqa_narrow(aqa_cat((aqa_tensor *[]){st, st, st}, 3, 1), 0, 0, B),
                                aqa_narrow(x, 0, 0, B)};
            aqa_head_input e = {aqa_narrow(fr, 0, B, B), bds, aqa_narrow(aqa_cat((aqa_tensor *[]){st, st, st}, 3, 1), 0, B, B),
                                aqa_narrow(x, 0, B, B)};
            aqa_head_targets t = {aqa_narrow(sc, 0, 0, B), NULL, NULL};
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
    RUN(test_core_head);
    RUN(test_tsa_plain_and_exemplars);
    RUN(test_heads_learn);
    return test_finish();
}
