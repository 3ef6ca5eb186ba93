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
    c.use_stage_features = mvla;
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
    aqa_head_input in = {NULL, NULL, NULL, NULL};
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
    aqa_head_targets t = {GOLDEN_AS(dt, "%s.score", c), NULL, h->ops == &aqa_head_hgcn ? GOLDEN_AS(dt, "%s.difficulty", c) : NULL};
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

/* Case c in float64: names, prediction, loss, gradients, and the parameters after one Adam step. */
static void golden_step(const char *head, bool mvla) {
    char c[32];
    snprintf(c, sizeof c, "%s_%s", head, mvla ? "mvla" : "plain");
    int64_t live = aqa_live_tensors();
    aqa_head *h = golden_head(head, mvla, c, AQA_F64);
    if (!h) return;
    aqa_named_tensor *list = NULL;
    int np = aqa_module_named_tensors(&h->base, false, &list);
    aqa_tensor **p = calloc((size_t)(np > 0 ? np : 1), sizeof *p);
    for (int i = 0; p && i < np; i++) p[i] = list[i].tensor;
    aqa_optimizer *opt = aqa_adam_new(&(aqa_adam_options)AQA_ADAM_DEFAULTS);
    CHECK(np > 0 && p && opt && aqa_optim_add_group(opt, p, np, 1e-3, 0.0) >= 0);
    aqa_scope_begin();
    aqa_head_result r;
    aqa_status st = golden_forward(h, c, mvla, AQA_F64, &r);
    CHECK_MSG(st == AQA_OK, "%s forward: %s", c, aqa_last_error());
    if (st == AQA_OK) {
        CHECK_CLOSE("pred", r.pred, GOLDEN_AS(AQA_F64, "%s.pred", c), 1e-9, 1e-9);
        CHECK_CLOSE("loss", r.loss, GOLDEN_AS(AQA_F64, "%s.loss", c), 1e-9, 1e-9);
        CHECK(aqa_backward(r.loss, NULL, false) == AQA_OK);
        check_grads(&h->base, c, 1e-7, 1e-9);
        CHECK(aqa_optim_step(opt) == AQA_OK);
        for (int i = 0; i < np; i++) {
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

/* Case c's forward and gradients in float32 (the dtype training uses). */
static void golden_f32(const char *head, bool mvla) {
    char c[32];
    snprintf(c, sizeof c, "%s_%s", head, mvla ? "mvla" : "plain");
    int64_t live = aqa_live_tensors();
    aqa_head *h = golden_head(head, mvla, c, AQA_F32);
    if (!h) return;
    aqa_scope_begin();
    aqa_head_result r;
    aqa_status st = golden_forward(h, c, mvla, AQA_F32, &r);
    CHECK_MSG(st == AQA_OK, "%s forward: %s", c, aqa_last_error());
    if (st == AQA_OK) {
        CHECK_CLOSE_SCALED("pred", r.pred, GOLDEN("%s.pred", c), 1e-4);
        CHECK_CLOSE_SCALED("loss", r.loss, GOLDEN("%s.loss", c), 1e-4);
        CHECK(aqa_backward(r.loss, NULL, false) == AQA_OK);
        aqa_named_tensor *list = NULL;
        int n = aqa_module_named_tensors(&h->base, false, &list);
        for (int i = 0; i < n; i++) {
            char key[256];
            snprintf(key, sizeof key, "%s.g.%s", c, list[i].name);
            /* absolute floor: gradients that are 0 in exact arithmetic come out near 1e-7 */
            if (aqa_st_find(test_golden_file, key) >= 0) CHECK_CLOSE(key, list[i].tensor->grad, GOLDEN("%s", key), 1e-3, 1e-5);
        }
        aqa_named_tensors_free(list, n);
    }
    aqa_scope_end();
    aqa_module_free(&h->base);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

static void test_golden_training_step(void) {
    if (!test_golden_open(GOLDEN_FILE)) { SKIP("%s absent", GOLDEN_FILE); return; }
    const char *only = getenv("AQA_TEST_HEAD");
    for (int k = 0; k < N_SEQ_HEADS; k++)
        for (int mvla = 0; mvla < 2; mvla++)
            if (!only || !strcmp(only, HEAD_NAMES[k])) golden_step(HEAD_NAMES[k], mvla);
}

static void test_golden_float32(void) {
    if (!test_golden_open(GOLDEN_FILE)) { SKIP("%s absent", GOLDEN_FILE); return; }
    for (int k = 0; k < N_SEQ_HEADS; k++)
        for (int mvla = 0; mvla < 2; mvla++) golden_f32(HEAD_NAMES[k], mvla);
}

int main(void) {
    RUN(test_golden_training_step);
    RUN(test_golden_float32);
    test_golden_close();
    return test_finish();
}
