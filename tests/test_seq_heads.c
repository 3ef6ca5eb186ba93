/* test_seq_heads.c: the clip-sequence heads TPT, HGCN, GDLT, MS-LSTM and MLP-Mixer
 * (models/heads/{tpt,hgcn,gdlt,mslstm,mixer}.c): parity with their PyTorch references
 * (scripts/seq_heads_torch.py -> tests/data/golden_seq_heads.safetensors from
 * scripts/gen_golden_seq_heads.py) of state_dict names, prediction, loss, every parameter's
 * gradient and the parameters after one Adam step, without and with MVLA's Z; the same forward in
 * float32; gradchecks of the losses in f64; CoRe's groups (groups.c); argument errors; a short
 * training run per head that must lower its loss; leak checks. */
#define GOLDEN_FILE "golden_seq_heads.safetensors"
#define TEST_GRAD_TOL 1e-6, 1e-6, 1e-5
#include "tests/test_util.h"

#include "models/heads/groups.h"
#include "models/heads/head.h"
#include "models/heads/seq.h"
#include "nn/optim.h"

static const char *const HEAD_NAMES[] = {"tpt", "hgcn", "gdlt", "mslstm", "mixer"};
#define N_SEQ_HEADS 5

/* The settings of scripts/gen_golden_seq_heads.py (BASE). */
static aqa_head_config golden_cfg(const char *head, bool mvla) {
    aqa_head_config c = aqa_head_config_default();
    aqa_seq_head_config *s = &c.seq;
    c.frame_dim = 8;
    c.feat_dim = 5;
    c.num_stages = 3;
    c.score_min = 0;
    c.score_max = 10;
    c.use_z = mvla;
    c.use_difficulty = !strcmp(head, "hgcn");
    s->len = 10;
    s->tpt_dim = 8, s->tpt_ffn = 12, s->tpt_heads = 2, s->tpt_queries = 3, s->tpt_depth = 3, s->tpt_hidden = 6;
    s->tpt_dropout = 0;
    s->hgcn_groups = 2, s->hgcn_scenes = 3, s->hgcn_k = 3, s->hgcn_factor = 2;
    s->hgcn_dims[0] = 8, s->hgcn_dims[1] = 8, s->hgcn_dims[2] = 4;
    s->hgcn_sample = false;
    s->gdlt_dim = 8, s->gdlt_heads = 2, s->gdlt_encoder = 1, s->gdlt_decoder = 2, s->gdlt_queries = 3;
    s->gdlt_dropout = 0;
    s->mslstm_conv = 6, s->mslstm_hidden = 5, s->mslstm_filters = 4, s->mslstm_attn_hidden = 3;
    s->mslstm_descriptors = 4, s->mslstm_merge = 3;
    s->mixer_dim = 8, s->mixer_depth = 2, s->mixer_tokens = 2, s->mixer_expansion = 2;
    return c;
}

/* A golden video "<c>.<who>.*" in dtype. */
static aqa_head_input golden_video(const char *c, const char *who, bool mvla, aqa_dtype dt) {
    aqa_head_input in = {.frames = NULL};
    in.frames = GOLDEN_AS(dt, "%s.%s.frames", c, who);
    if (mvla) {
        in.stages = GOLDEN_AS(dt, "%s.%s.stages", c, who);
        in.video = GOLDEN_AS(dt, "%s.%s.video", c, who);
        in.boundaries = GOLDEN_AS(AQA_I64, "%s.%s.boundaries", c, who);
    }
    return in;
}

/* The golden head of case c = "<head>_plain|mvla" with torch's parameters (TPT: and groups), in dt. */
static aqa_head *golden_head(const char *head, bool mvla, const char *c, aqa_dtype dt) {
    aqa_head_config cfg = golden_cfg(head, mvla);
    aqa_head *h = aqa_head_new(aqa_head_find(head), &cfg, NULL, "");
    CHECK_MSG(h != NULL, "%s: %s", c, aqa_last_error());
    if (!h) return NULL;
    char key[64];
    snprintf(key, sizeof key, "%s.keys", c);
    CHECK_NAMES(&h->base, key);
    snprintf(key, sizeof key, "%s.p.", c);
    GOLDEN_INTO_MODULE(&h->base, key, false);
    if (!strcmp(head, "tpt")) {
        aqa_scope_begin();
        aqa_tensor *d = GOLDEN_AS(AQA_F64, "%s.deltas", c);
        double v[12];
        CHECK(d && aqa_numel(d) == 12 && aqa_copy_to_host(d, v, AQA_F64) == AQA_OK);
        CHECK(aqa_tpt_head_set_groups(h, v, 12) == AQA_OK);
        aqa_scope_end();
    }
    CHECK(aqa_module_to_dtype(&h->base, dt) == AQA_OK);
    return h;
}

/* The golden forward (training mode, with targets) of case c on h. */
static aqa_status golden_forward(aqa_head *h, const char *c, bool mvla, aqa_dtype dt, aqa_head_result *r) {
    bool tpt = h->ops == &aqa_head_tpt;
    aqa_head_input q = golden_video(c, "q", mvla, dt), e = tpt ? golden_video(c, "e", mvla, dt) : q;
    if (h->ops == &aqa_head_hgcn) q.difficulty = GOLDEN_AS(dt, "%s.difficulty", c);
    aqa_head_targets t = {GOLDEN_AS(dt, "%s.score", c), NULL};
    return aqa_head_forward(h, &q, tpt ? &e : NULL, tpt ? GOLDEN_AS(dt, "%s.exemplar_score", c) : NULL, &t, r);
}

/* Every parameter's gradient against "<c>.g.<name>"; those torch's loss does not reach (metadata
 * "<c>.nograd") must have none here either. */
static void check_grads(aqa_module *m, const char *c, double rtol, double atol) {
    aqa_scope_begin();
    aqa_named_tensor *list = NULL;
    int n = aqa_module_named_tensors(m, false, &list);
    for (int i = 0; i < n; i++) {
        char key[256];
        snprintf(key, sizeof key, "%s.g.%s", c, list[i].name);
        if (aqa_st_find(test_golden_file, key) >= 0)
            CHECK_CLOSE(key, list[i].tensor->grad, GOLDEN("%s", key), rtol, atol);
        else
            CHECK_MSG(!list[i].tensor->grad || test_max_abs(list[i].tensor->grad) == 0, "%s: a gradient where torch has none",
                      key);
    }
    aqa_named_tensors_free(list, n);
    aqa_scope_end();
}

/* Case c in dt: names, prediction, loss and every gradient; in float64 (tight) also the parameters
 * after one Adam step, in float32 (the dtype training uses) the forward and gradients only. */
static void golden_case(const char *head, bool mvla, aqa_dtype dt) {
    char c[32];
    snprintf(c, sizeof c, "%s_%s", head, mvla ? "mvla" : "plain");
    int64_t live = aqa_live_tensors();
    aqa_head *h = golden_head(head, mvla, c, dt);
    if (!h) return;
    bool f64 = dt == AQA_F64;
    aqa_named_tensor *list = NULL;
    int np = aqa_module_named_tensors(&h->base, false, &list);
    aqa_tensor **p = calloc((size_t)(np > 0 ? np : 1), sizeof *p);
    for (int i = 0; p && i < np; i++) p[i] = list[i].tensor;
    aqa_optimizer *opt = aqa_adam_new(&(aqa_adam_options)AQA_ADAM_DEFAULTS);
    CHECK(np > 0 && p && opt && aqa_optim_add_group(opt, p, np, 1e-3, 0.0) >= 0);
    aqa_scope_begin();
    aqa_head_result r;
    aqa_status st = golden_forward(h, c, mvla, dt, &r);
    CHECK_MSG(st == AQA_OK, "%s forward: %s", c, aqa_last_error());
    if (st == AQA_OK) {
        CHECK_CLOSE("pred", r.pred, GOLDEN_AS(dt, "%s.pred", c), f64 ? 1e-9 : 1e-4, f64 ? 1e-9 : 1e-5);
        CHECK_CLOSE("loss", r.loss, GOLDEN_AS(dt, "%s.loss", c), f64 ? 1e-9 : 1e-4, f64 ? 1e-9 : 1e-5);
        CHECK(aqa_backward(r.loss, NULL, false) == AQA_OK);
        /* float32: an absolute floor, gradients that are 0 in exact arithmetic come out near 1e-7 */
        check_grads(&h->base, c, f64 ? 1e-7 : 1e-3, f64 ? 1e-9 : 1e-5);
        CHECK(!f64 || aqa_optim_step(opt) == AQA_OK);
        for (int i = 0; f64 && i < np; i++) {
            char key[256];
            snprintf(key, sizeof key, "%s.after.%s", c, list[i].name);
            CHECK_CLOSE(key, list[i].tensor, GOLDEN_AS(AQA_F64, "%s", key), 1e-9, 1e-9);
        }
    }
    aqa_scope_end();
    aqa_named_tensors_free(list, np);
    aqa_optim_free(opt);
    free(p);
    aqa_module_free(&h->base);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

static void test_golden_training_step(void) {
    if (!test_golden_open(GOLDEN_FILE)) { SKIP("%s absent", GOLDEN_FILE); return; }
    const char *only = getenv("AQA_TEST_HEAD");
    for (int k = 0; k < N_SEQ_HEADS; k++)
        for (int mvla = 0; mvla < 2; mvla++)
            if (!only || !strcmp(only, HEAD_NAMES[k])) golden_case(HEAD_NAMES[k], mvla, AQA_F64);
}

static void test_golden_float32(void) {
    if (!test_golden_open(GOLDEN_FILE)) { SKIP("%s absent", GOLDEN_FILE); return; }
    for (int k = 0; k < N_SEQ_HEADS; k++)
        for (int mvla = 0; mvla < 2; mvla++) golden_case(HEAD_NAMES[k], mvla, AQA_F32);
}

/* ---- CoRe's groups ------------------------------------------------------------------------------ */

static void test_groups(void) {
    double g[8], rel;
    CHECK(aqa_groups_from_deltas(g, 4, (double[]){-1.0, 0.5, 4.0, -2.0}, 4, 0.0) == AQA_OK);
    /* |d| sorted 0.5 1 2 4: the positive half cut at index 1 (1) up to the largest (4), mirrored */
    const double want[8] = {-4, -1, -1, 0, 0, 1, 1, 4};
    for (int i = 0; i < 8; i++) CHECK_NEAR(g[i], want[i], 0);
    CHECK_EQ_INT(aqa_groups_leaf(g, 4, 0.5, &rel), 2);
    CHECK_NEAR(rel, 0.5, 1e-15);
    CHECK_EQ_INT(aqa_groups_leaf(g, 4, -1.0, &rel), 0); /* (left, right] below 0 */
    CHECK_NEAR(rel, 1.0, 1e-15);
    CHECK_EQ_INT(aqa_groups_leaf(g, 4, 1.0, &rel), 3); /* [left, right) from 0 */
    CHECK_NEAR(rel, 0.0, 1e-15);
    CHECK_EQ_INT(aqa_groups_leaf(g, 4, 9.0, &rel), 3); /* outside: the nearest leaf */
    CHECK_NEAR(aqa_groups_value(g, 2, 0.25), 0.25, 1e-15);
    CHECK_NEAR(aqa_groups_value(g, 0, 0.5), -2.5, 1e-15);
    CHECK(aqa_groups_from_deltas(g, 4, (double[]){1.0}, 1, 3.0) == AQA_OK);
    CHECK_NEAR(g[7], 3.0, 0); /* an explicit maximum (CoRe's Max) */
    CHECK(aqa_groups_from_deltas(g, 3, (double[]){1.0}, 1, 0.0) == AQA_EINVAL);
    aqa_clear_error();
    /* the tree loss: NLL of the true leaves + MSE within each leaf, both directions */
    aqa_scope_begin();
    CHECK(aqa_groups_from_deltas(g, 4, (double[]){-1.0, 0.5, 4.0, -2.0}, 4, 0.0) == AQA_OK);
    aqa_tensor *logp = aqa_log_softmax(aqa_randn(AQA_SHAPE(4, 4), AQA_F64, NULL), 1);
    aqa_tensor *delta = aqa_rand(AQA_SHAPE(4, 4), AQA_F64, NULL);
    double lp[16], dv[16], expect = 0;
    aqa_copy_to_host(logp, lp, AQA_F64);
    aqa_copy_to_host(delta, dv, AQA_F64);
    /* diffs 0.5 (leaf 2, rel 0.5) and 2 (leaf 3, rel 1/3); reversed -0.5 (leaf 1, rel 0.5), -2 (leaf 0, rel 2/3) */
    int leaf[4] = {2, 3, 1, 0};
    double r[4] = {0.5, 1.0 / 3.0, 0.5, 2.0 / 3.0};
    for (int i = 0; i < 4; i++) {
        expect += -lp[i * 4 + leaf[i]] / 2;
        expect += (dv[i * 4 + leaf[i]] - r[i]) * (dv[i * 4 + leaf[i]] - r[i]);
    }
    aqa_tensor *loss = aqa_groups_loss(logp, delta, g, 4, (double[]){0.5, 2.0}, 2);
    CHECK(loss && fabs(aqa_item(loss) - expect) < 1e-12);
    double pr[4];
    CHECK(aqa_groups_predict(logp, delta, g, 4, pr) == AQA_OK);
    for (int i = 0; i < 4; i++) {
        int64_t k = 0;
        for (int j = 1; j < 4; j++)
            if (lp[i * 4 + j] > lp[i * 4 + k]) k = j;
        CHECK_NEAR(pr[i], aqa_groups_value(g, k, dv[i * 4 + k]), 1e-15);
    }
    aqa_scope_end();
}

/* ---- gradchecks --------------------------------------------------------------------------------- */

typedef struct loss_ctx {
    aqa_head *h;          /* float64, no dropout */
    aqa_head_input q, e;  /* frames replaced by the checked inputs */
    aqa_tensor *es;       /* exemplar scores (TPT) */
    aqa_head_targets t;   /* targets */
} loss_ctx;

/* the loss with query frames in[0] (and exemplar frames in[1] for TPT) */
static aqa_tensor *head_loss_fn(aqa_tensor *const *in, int n, void *user) {
    loss_ctx *c = user;
    c->q.frames = in[0];
    c->e.frames = n > 1 ? in[1] : in[0];
    aqa_head_result r;
    bool tpt = c->h->ops == &aqa_head_tpt;
    if (aqa_head_forward(c->h, &c->q, tpt ? &c->e : NULL, c->es, &c->t, &r) != AQA_OK) return NULL;
    return r.loss;
}

/* Each head's loss against its input sequences in float64 (with MVLA's Z).  MS-LSTM is left out:
 * its skip gates round with a straight-through gradient, which no finite difference reproduces. */
static void test_gradcheck(void) {
    aqa_generator g = {test_seed("seq heads gradcheck"), 0};
    const char *names[] = {"tpt", "hgcn", "gdlt", "mixer"};
    for (int k = 0; k < 4; k++) {
        aqa_head_config cfg = golden_cfg(names[k], true);
        aqa_manual_seed(5 + k);
        aqa_head *h = aqa_head_new(aqa_head_find(names[k]), &cfg, NULL, "");
        CHECK_MSG(h != NULL, "%s: %s", names[k], aqa_last_error());
        if (!h) continue;
        CHECK(aqa_module_to_dtype(&h->base, AQA_F64) == AQA_OK);
        aqa_scope_begin();
        int64_t B = 3;
        loss_ctx c = {.h = h};
        c.q.stages = c.e.stages = aqa_randn(AQA_SHAPE(B, 3, 5), AQA_F64, &g);
        c.q.video = c.e.video = aqa_randn(AQA_SHAPE(B, 5), AQA_F64, &g);
        c.q.boundaries = c.e.boundaries = aqa_from_data((int64_t[]){3, 7, 2, 5, 4, 8}, AQA_SHAPE(B, 2), AQA_I64);
        c.t.score = aqa_from_data((double[]){3.0, 7.5, 5.0}, AQA_SHAPE(B), AQA_F64);
        c.q.difficulty = aqa_from_data((double[]){1.5, 2.0, 3.0}, AQA_SHAPE(B), AQA_F64);
        c.es = aqa_from_data((double[]){4.0, 6.0, 5.5}, AQA_SHAPE(B), AQA_F64);
        if (k == 0) CHECK(aqa_tpt_head_set_groups(h, (double[]){-3, -1, 0.5, 2, 4, -2.5}, 6) == AQA_OK);
        aqa_tensor *xq = test_rand_leaf(&g, AQA_SHAPE(B, 10, 8), AQA_F64, 1.0);
        aqa_tensor *xe = test_rand_leaf(&g, AQA_SHAPE(B, 10, 8), AQA_F64, 1.0);
        CHECK_GRAD(head_loss_fn, ((aqa_tensor *[]){xq, xe}), k == 0 ? 2 : 1, &c);
        aqa_scope_end();
        aqa_module_free(&h->base);
    }
}

/* ---- behaviour ---------------------------------------------------------------------------------- */

/* HGCN samples mu + std eps in training only; TPT averages its prediction over exemplars. */
static void test_modes_and_exemplars(void) {
    int64_t live = aqa_live_tensors();
    aqa_head_config cfg = golden_cfg("hgcn", false);
    cfg.seq.hgcn_sample = true;
    cfg.use_difficulty = false;
    aqa_head *h = aqa_head_new(&aqa_head_hgcn, &cfg, NULL, "");
    aqa_head_config tc = golden_cfg("tpt", false);
    aqa_head *t = aqa_head_new(&aqa_head_tpt, &tc, NULL, "");
    CHECK(h && t);
    if (!h || !t) {
        aqa_module_free(h ? &h->base : NULL);
        aqa_module_free(t ? &t->base : NULL);
        return;
    }
    aqa_scope_begin();
    aqa_head_input q = {.frames = aqa_randn(AQA_SHAPE(3, 10, 8), AQA_F32, NULL)};
    aqa_head_result a, b, e1, e2;
    CHECK(aqa_head_forward(h, &q, NULL, NULL, NULL, &a) == AQA_OK && aqa_head_forward(h, &q, NULL, NULL, NULL, &b) == AQA_OK);
    CHECK(a.pred && b.pred && test_max_abs(aqa_sub(a.pred, b.pred)) > 0); /* two draws of eps */
    aqa_module_train(&h->base, false);
    CHECK(aqa_head_forward(h, &q, NULL, NULL, NULL, &e1) == AQA_OK && aqa_head_forward(h, &q, NULL, NULL, NULL, &e2) == AQA_OK);
    CHECK_CLOSE("eval prediction (mu) repeats", e1.pred, e2.pred, 0, 0);
    /* TPT: the average over exemplars is the mean of the single-exemplar predictions */
    aqa_module_train(&t->base, false);
    aqa_head_input ex[2] = {{.frames = aqa_randn(AQA_SHAPE(3, 10, 8), AQA_F32, NULL)},
                            {.frames = aqa_randn(AQA_SHAPE(3, 10, 8), AQA_F32, NULL)}};
    aqa_tensor *es[2] = {aqa_full(AQA_SHAPE(3), 4.0, AQA_F32), aqa_full(AQA_SHAPE(3), 6.0, AQA_F32)};
    aqa_head_result r0, r1;
    CHECK(aqa_head_forward(t, &q, &ex[0], es[0], NULL, &r0) == AQA_OK && aqa_head_forward(t, &q, &ex[1], es[1], NULL, &r1) == AQA_OK);
    aqa_tensor *avg = aqa_head_predict_exemplars(t, &q, ex, es, 2, NULL);
    CHECK_CLOSE("exemplar average", avg, aqa_mul_scalar(aqa_add(r0.pred, r1.pred), 0.5), 1e-6, 1e-6);
    aqa_scope_end();
    aqa_module_free(&h->base);
    aqa_module_free(&t->base);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

static void test_errors(void) {
    int64_t live = aqa_live_tensors();
    aqa_scope_begin();
    aqa_head_input bad_width = {.frames = aqa_zeros(AQA_SHAPE(2, 10, 7), AQA_F32)};
    aqa_head_input short_seq = {.frames = aqa_zeros(AQA_SHAPE(2, 9, 8), AQA_F32)};
    aqa_head_result r;
    for (int k = 0; k < N_SEQ_HEADS; k++) {
        aqa_head_config cfg = golden_cfg(HEAD_NAMES[k], k == 2);
        aqa_head *h = aqa_head_new(aqa_head_find(HEAD_NAMES[k]), &cfg, NULL, "");
        CHECK(h != NULL);
        if (!h) continue;
        bool tpt = h->ops == &aqa_head_tpt;
        aqa_tensor *es = aqa_zeros(AQA_SHAPE(2), AQA_F32);
        CHECK(aqa_head_forward(h, &bad_width, tpt ? &bad_width : NULL, tpt ? es : NULL, NULL, &r) != AQA_OK);
        CHECK_MSG(strstr(aqa_last_error(), HEAD_NAMES[k]) && strstr(aqa_last_error(), "needs frames [B, seq.len, 8], got [2, 10, 7]"),
                  "%s", aqa_last_error());
        CHECK(aqa_head_forward(h, &short_seq, tpt ? &short_seq : NULL, tpt ? es : NULL, NULL, &r) != AQA_OK);
        if (k == 2) { /* with MVLA the head needs Z and the boundaries */
            aqa_head_input no_z = {.frames = aqa_zeros(AQA_SHAPE(2, 10, 8), AQA_F32)};
            CHECK(aqa_head_forward(h, &no_z, NULL, NULL, NULL, &r) != AQA_OK);
            CHECK(strstr(aqa_last_error(), "with MVLA it needs stages, video and boundaries") != NULL);
        }
        aqa_module_free(&h->base);
    }
    /* sequence rules of MS-LSTM and the mixer when the length is free */
    aqa_head_config cfg = golden_cfg("mslstm", false);
    cfg.seq.len = 0;
    aqa_head *m = aqa_head_new(&aqa_head_mslstm, &cfg, NULL, "");
    aqa_head_input seven = {.frames = aqa_zeros(AQA_SHAPE(2, 7, 8), AQA_F32)};
    CHECK(m && aqa_head_forward(m, &seven, NULL, NULL, NULL, &r) != AQA_OK);
    CHECK(strstr(aqa_last_error(), "at least 8 steps") != NULL);
    aqa_module_free(m ? &m->base : NULL);
    cfg = golden_cfg("mixer", false);
    cfg.seq.len = 0;
    m = aqa_head_new(&aqa_head_mixer, &cfg, NULL, "");
    CHECK(m && aqa_head_forward(m, &seven, NULL, NULL, NULL, &r) != AQA_OK);
    CHECK(strstr(aqa_last_error(), "7 steps do not split into steps of 2 clips") != NULL);
    /* settings and groups */
    CHECK(aqa_tpt_head_set_groups(m, (double[]){1.0}, 1) == AQA_EINVAL);
    aqa_module_free(m ? &m->base : NULL);
    cfg = golden_cfg("hgcn", false);
    cfg.seq.hgcn_groups = 3;
    CHECK(aqa_head_new(&aqa_head_hgcn, &cfg, NULL, "") == NULL);
    CHECK(strstr(aqa_last_error(), "must divide into 3 groups") != NULL);
    cfg = golden_cfg("gdlt", false);
    cfg.seq.gdlt_heads = 3;
    CHECK(aqa_head_new(&aqa_head_gdlt, &cfg, NULL, "") == NULL);
    aqa_clear_error();
    aqa_scope_end();
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

/* A short training run per head (and with MVLA's Z) on scores that the sequences determine must
 * lower its loss. */
static void test_heads_learn(void) {
    int64_t live = aqa_live_tensors();
    aqa_generator g = {test_seed("seq heads learn"), 0};
    for (int k = 0; k < N_SEQ_HEADS; k++) {
        aqa_head_config cfg = golden_cfg(HEAD_NAMES[k], k % 2 == 1);
        cfg.use_difficulty = false;
        cfg.seq.mslstm_merge = 8; /* 3 ReLU units die too easily (torch's reference too, on some seeds) */
        aqa_manual_seed(40 + k);
        aqa_head *h = aqa_head_new(aqa_head_find(HEAD_NAMES[k]), &cfg, NULL, "");
        CHECK(h != NULL);
        if (!h) continue;
        aqa_tensor **p = NULL;
        int np = aqa_module_parameters(&h->base, &p);
        aqa_optimizer *opt = aqa_adam_new(&(aqa_adam_options)AQA_ADAM_DEFAULTS);
        aqa_optim_add_group(opt, p, np, 1e-2, 0.0);
        int64_t B = 12;
        aqa_tensor *x = aqa_randn(AQA_SHAPE(2 * B, 10, 8), AQA_F32, &g);
        aqa_tensor *st = aqa_randn(AQA_SHAPE(2 * B, 3, 5), AQA_F32, &g), *vd = aqa_randn(AQA_SHAPE(2 * B, 5), AQA_F32, &g);
        aqa_scope_begin();
        aqa_tensor *bd = aqa_keep(aqa_contiguous(aqa_expand(aqa_from_data((int64_t[]){3, 7}, AQA_SHAPE(1, 2), AQA_I64), 2, (int64_t[]){B, 2})));
        aqa_scope_end();
        double xs[24 * 80], s[24];
        aqa_copy_to_host(x, xs, AQA_F64);
        for (int i = 0; i < 2 * B; i++) s[i] = 5 + 1.5 * (xs[i * 80] + xs[i * 80 + 9]); /* from clip 0 and 1 */
        if (k == 0) {
            double d[12];
            for (int i = 0; i < B; i++) d[i] = s[i] - s[B + i];
            aqa_tpt_head_set_groups(h, d, B);
        }
        aqa_tensor *sc = aqa_from_data(s, 1, (int64_t[]){2 * B}, AQA_F64);
        double first = 0, last = 0;
        for (int step = 0; step < 60; step++) {
            aqa_scope_begin();
            aqa_head_input q = {.frames = aqa_narrow(x, 0, 0, B), .boundaries = bd, .stages = aqa_narrow(st, 0, 0, B),
                                .video = aqa_narrow(vd, 0, 0, B)};
            aqa_head_input e = {.frames = aqa_narrow(x, 0, B, B), .boundaries = bd, .stages = aqa_narrow(st, 0, B, B),
                                .video = aqa_narrow(vd, 0, B, B)};
            aqa_head_targets t = {aqa_narrow(sc, 0, 0, B), NULL};
            aqa_head_result r;
            aqa_optim_zero_grad(opt);
            if (aqa_head_forward(h, &q, &e, aqa_narrow(sc, 0, B, B), &t, &r) != AQA_OK) {
                CHECK_MSG(0, "%s: %s", HEAD_NAMES[k], aqa_last_error());
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
        printf("    %s%s: loss %.4f -> %.4f\n", HEAD_NAMES[k], k % 2 ? " (MVLA)" : "", first, last);
        CHECK_MSG(last < 0.7 * first, "%s did not learn: %.4f -> %.4f", HEAD_NAMES[k], first, last);
        aqa_tensor_free(x);
        aqa_tensor_free(st);
        aqa_tensor_free(vd);
        aqa_tensor_free(bd);
        aqa_tensor_free(sc);
        free(p);
        aqa_optim_free(opt);
        aqa_module_free(&h->base);
    }
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

int main(void) {
    RUN(test_golden_training_step);
    RUN(test_golden_float32);
    RUN(test_groups);
    RUN(test_gradcheck);
    RUN(test_modes_and_exemplars);
    RUN(test_errors);
    RUN(test_heads_learn);
    test_golden_close();
    return test_finish();
}
