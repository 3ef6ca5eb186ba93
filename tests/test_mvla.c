/* test_mvla.c: MVLA (models/mvla): stage matrices and boundary selection against hand-computed
 * values; gradchecks in f64 of the VLKL losses, SCA, stage pooling, the TSA head (with map keys
 * and values, Z tokens) and the whole MVLA loss w.r.t. several parameters; parity of a forward
 * (with TSA's I3D maps), backward, one Adam step and an eval-mode inference with PyTorch
 * (tests/data/golden_mvla.safetensors from scripts/gen_golden_mvla.py on scripts/mvla_torch.py),
 * of PSNet's two map layouts, TSA with Z as biases, a FUM model, CoRe's tree with DD, USDL and
 * MUSDL; the ablation switches, errors and leaks. */
#include "tests/test_util.h"

#include <string.h>
#include <unistd.h>

#include "autograd/autograd.h"
#include "models/heads/head.h"
#include "models/mvla/mvla.h"
#include "models/mvla/stages.h"
#include "models/mvla/text_tables.h"
#include "nn/optim.h"
#include "tensor/tensor_file.h"
#include "ops/ops.h"
#include "tensor/tensor-impl.h"

#define GOLDEN_FILE "golden_mvla.safetensors"

/* ---- helpers ------------------------------------------------------------------------------ */

/* The tiny configuration of scripts/gen_golden_mvla.py. */
static aqa_mvla_config tiny_cfg(void) {
    aqa_mvla_config c = aqa_mvla_config_default();
    c.num_clips = 3;
    c.i3d_dim = 64;
    c.num_frames = 8;
    c.clip_feat_dim = 8;
    c.text_dim = 12;
    c.dim = 8;
    c.num_boundaries = 2;
    c.seg_mlp_hidden1 = c.seg_mlp_hidden2 = 8;
    c.temporal_layers = 2;
    c.temporal_heads = 2;
    c.temporal_ffn = 16;
    c.temporal_dropout = 0.0;
    c.sca_mlp_hidden = 8;
    return c;
}

/* tiny_cfg with FUM's fixed clip boundaries (clips of 4 frames every 3 over 8 frames: starts 0,
 * 3 and min(6, 8 - 4) = 4, the CBP clips' rule; stages split after clips 1 and 2), as the FUM
 * model of scripts/gen_golden_mvla.py. */
static aqa_mvla_config tiny_fum_cfg(void) {
    aqa_mvla_config c = tiny_cfg();
    c.scheme = AQA_MVLA_FUM;
    c.clip_len = 4;
    c.clip_stride = 3;
    c.fum_boundaries[0] = 1;
    c.fum_boundaries[1] = 2;
    return c;
}

static aqa_head_config tiny_head_cfg(void) {
    aqa_head_config h = aqa_head_config_default();
    h.feat_dim = 8;
    h.frame_dim = 4;
    h.num_stages = 3;
    h.tsa_tokens = 5;
    h.tsa_dim = 4;
    h.tsa_heads = 2;
    h.tsa_layers = 2;
    h.tsa_mlp_ratio = 4.0;
    h.tsa_reg_hidden1 = h.tsa_reg_hidden2 = 8;
    return h;
}


/* ---- stage matrices and boundary selection -------------------------------------------------- */

static void test_stage_matrices(void) {
    int64_t live = aqa_live_tensors();
    aqa_scope_begin();
    aqa_tensor *b = test_i64((int64_t[]){2, 5}, 2, (int64_t[]){1, 2});
    aqa_tensor *P = aqa_stage_pool_matrix(b, 8, AQA_F64);
    CHECK(P && P->shape[1] == 3 && P->shape[2] == 8);
    if (P) {
        double v[24];
        aqa_copy_to_host(P, v, AQA_F64);
        CHECK_NEAR(v[0], 0.5, 1e-15);
        CHECK_NEAR(v[2], 0.0, 1e-15);
        CHECK_NEAR(v[8 + 2], 1.0 / 3, 1e-15);
        CHECK_NEAR(v[8 + 5], 0.0, 1e-15);
        CHECK_NEAR(v[16 + 7], 1.0 / 3, 1e-15);
    }
    /* interpolation of stage [5, 8) (3 frames) to 5 tokens: positions 0, .5, 1, 1.5, 2 */
    aqa_tensor *M = aqa_stage_interp_matrix(b, 8, 5, AQA_F64);
    CHECK(M && M->shape[1] == 15 && M->shape[2] == 8);
    if (M) {
        double v[15 * 8];
        aqa_copy_to_host(M, v, AQA_F64);
        CHECK_NEAR(v[10 * 8 + 5], 1.0, 1e-7);
        CHECK_NEAR(v[11 * 8 + 5], 0.5, 1e-7);
        CHECK_NEAR(v[11 * 8 + 6], 0.5, 1e-7);
        CHECK_NEAR(v[13 * 8 + 7], 0.5, 1e-7);
        CHECK_NEAR(v[14 * 8 + 7], 1.0, 1e-7);
        for (int r = 0; r < 15; r++) {
            double s = 0;
            for (int t = 0; t < 8; t++) s += v[r * 8 + t];
            CHECK_NEAR(s, 1.0, 1e-12);
        }
    }
    aqa_tensor *ids = aqa_stage_of_steps(b, 8);
    if (ids) {
        int64_t v[8];
        aqa_copy_to_host(ids, v, AQA_I64);
        int64_t e[8] = {0, 0, 1, 1, 1, 2, 2, 2};
        for (int t = 0; t < 8; t++) CHECK_EQ_INT(v[t], e[t]);
    }
    /* invalid splits are refused with a message */
    aqa_tensor *bad = test_i64((int64_t[]){5, 5}, 2, (int64_t[]){1, 2});
    CHECK(aqa_stage_pool_matrix(bad, 8, AQA_F32) == NULL && strstr(aqa_last_error(), "boundary"));
    aqa_tensor *bad2 = test_i64((int64_t[]){0, 5}, 2, (int64_t[]){1, 2});
    CHECK(aqa_stage_check_boundaries(bad2, 8, "x") == AQA_EINVAL);
    aqa_tensor *even = aqa_stage_even_boundaries(2, 2, 9);
    if (even) CHECK_EQ_INT(aqa_get(even, (int64_t[]){1, 1}), 6);
    aqa_scope_end();
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

static void test_select_boundaries(void) {
    aqa_scope_begin();
    /* T 8, L 2: column 0 searched over frames [0, 4), column 1 over [4, 8) */
    double p[8 * 2] = {0};
    p[2 * 2 + 0] = 0.9; /* frame 2, column 0 */
    p[6 * 2 + 0] = 1.0; /* outside column 0's window: ignored */
    p[5 * 2 + 1] = 0.8; /* frame 5, column 1 */
    aqa_tensor *prob = aqa_from_data(p, 3, (int64_t[]){1, 8, 2}, AQA_F64);
    aqa_tensor *b = aqa_mvla_select_boundaries(prob);
    CHECK(b && aqa_get(b, (int64_t[]){0, 0}) == 2 && aqa_get(b, (int64_t[]){0, 1}) == 5);
    /* a maximum at frame 0 moves to 1 (TSA), ties take the first frame */
    double q[8 * 2] = {0};
    q[0] = 0.7;
    aqa_tensor *b2 = aqa_mvla_select_boundaries(aqa_from_data(q, 3, (int64_t[]){1, 8, 2}, AQA_F64));
    CHECK(b2 && aqa_get(b2, (int64_t[]){0, 0}) == 1 && aqa_get(b2, (int64_t[]){0, 1}) == 4);
    aqa_tensor *t = aqa_mvla_boundary_target(b, 8, AQA_F32);
    CHECK(t && aqa_get(t, (int64_t[]){0, 2, 0}) == 1 && aqa_get(t, (int64_t[]){0, 5, 1}) == 1);
    CHECK(t && aqa_item(aqa_sum_all(t)) == 2);
    aqa_mvla_config c = aqa_mvla_config_default();
    CHECK(aqa_mvla_teacher_forcing(&c, 50, 200) && !aqa_mvla_teacher_forcing(&c, 51, 200));
    aqa_scope_end();
}

/* ---- gradchecks ------------------------------------------------------------------------------ */

static aqa_tensor *vlkl_ce_fn(aqa_tensor *const *in, int n, void *user) {
    (void)n;
    return aqa_mvla_vlkl_ce(in[0], in[1], (aqa_tensor *)user, in[2]);
}

static aqa_tensor *vlkl_kl_fn(aqa_tensor *const *in, int n, void *user) {
    (void)n;
    (void)user;
    return aqa_mvla_vlkl_kl(in[0], in[1], in[2], in[3]);
}

static void test_vlkl_gradcheck(void) {
    aqa_generator g = {test_seed("vlkl gradcheck"), 0};
    aqa_scope_begin();
    aqa_tensor *x = test_rand_leaf(&g, AQA_SHAPE(6, 8), AQA_F64, 1.0);
    aqa_tensor *texts = test_rand_leaf(&g, AQA_SHAPE(5, 8), AQA_F64, 1.0);
    aqa_tensor *lt = aqa_requires_grad(aqa_full(AQA_SHAPE(1), log(0.3), AQA_F64), true);
    aqa_tensor *ids = test_i64((int64_t[]){0, 1, 2, 3, 4, 2}, 1, (int64_t[]){6});
    CHECK_GRAD(vlkl_ce_fn, ((aqa_tensor *[]){x, texts, lt}), 3, ids);
    /* the loss is CE over cos / tau: check one value by hand (x = text 0 exactly: cos = 1) */
    aqa_tensor *x0 = aqa_narrow(texts, 0, 0, 1);
    aqa_tensor *l = aqa_mvla_vlkl_ce(x0, texts, test_i64((int64_t[]){0}, 1, (int64_t[]){1}), lt);
    double cs[5], denom = 0;
    aqa_tensor *sim = aqa_matmul(aqa_mvla_l2_normalize(x0), aqa_transpose(aqa_mvla_l2_normalize(texts), 0, 1));
    aqa_copy_to_host(sim, cs, AQA_F64);
    for (int j = 0; j < 5; j++) denom += exp(cs[j] / 0.3);
    CHECK_NEAR(aqa_item(l), -(1.0 / 0.3 - log(denom)), 1e-10);
    CHECK_NEAR(cs[0], 1.0, 1e-12);
    /* KL of eq. 7 */
    aqa_tensor *a = test_rand_leaf(&g, AQA_SHAPE(2, 3, 8), AQA_F64, 1.0), *b = test_rand_leaf(&g, AQA_SHAPE(2, 3, 8), AQA_F64, 1.0);
    aqa_tensor *st = test_rand_leaf(&g, AQA_SHAPE(2, 3, 8), AQA_F64, 1.0);
    CHECK_GRAD(vlkl_kl_fn, ((aqa_tensor *[]){a, b, st, lt}), 4, NULL);
    CHECK_NEAR(aqa_item(aqa_mvla_vlkl_kl(a, a, st, lt)), 0.0, 1e-12); /* KL(p || p) = 0 */
    CHECK(aqa_item(aqa_mvla_vlkl_kl(a, b, st, lt)) > 0);
    aqa_scope_end();
}

static aqa_tensor *sca_fn(aqa_tensor *const *in, int n, void *user) {
    (void)n;
    return aqa_mvla_sca_forward((aqa_mvla_sca *)user, in[0], in[1], in[2]);
}

static void test_sca_gradcheck(void) {
    int64_t live = aqa_live_tensors();
    aqa_generator g = {test_seed("sca gradcheck"), 0};
    aqa_manual_seed(3);
    aqa_mvla_sca *s = aqa_mvla_sca_new(NULL, "", 8, 6);
    CHECK(s != NULL);
    if (!s) return;
    CHECK(aqa_module_to_dtype(&s->base, AQA_F64) == AQA_OK);
    aqa_scope_begin();
    aqa_tensor *vis = test_rand_leaf(&g, AQA_SHAPE(2, 3, 8), AQA_F64, 1.0), *text = test_rand_leaf(&g, AQA_SHAPE(2, 4, 8), AQA_F64, 1.0);
    aqa_tensor *i3d = test_rand_leaf(&g, AQA_SHAPE(2, 3, 8), AQA_F64, 1.0);
    CHECK_GRAD(sca_fn, ((aqa_tensor *[]){vis, text, i3d}), 3, s);
    /* and w.r.t. its weights */
    aqa_tensor *inputs_and_params[] = {vis, text, i3d, s->vis_q->weight, s->vis_k->weight, s->vis_v->weight,
                                       s->cbp_q->weight, s->cbp_k->weight, s->cbp_v->weight, s->vis_fc1->weight,
                                       s->cbp_fc2->bias};
    aqa_gradcheck_result r = aqa_gradcheck(sca_fn, inputs_and_params, 11, s, 1e-6, 1e-7, 1e-5);
    CHECK_MSG(r.ok, "%s", r.message);
    /* eq. 8 by hand for one query row over a single key: softmax = 1, so X' = text w_v + vis */
    aqa_tensor *v1 = aqa_narrow(vis, 1, 0, 1), *t1 = aqa_narrow(text, 1, 0, 1), *q1 = aqa_narrow(i3d, 1, 0, 1);
    aqa_tensor *z = aqa_mvla_sca_forward(s, v1, t1, q1);
    aqa_tensor *xp = aqa_add(aqa_linear_layer_forward(s->vis_v, t1), v1);
    aqa_tensor *x = aqa_add(aqa_linear_layer_forward(s->vis_fc2, aqa_gelu(aqa_linear_layer_forward(s->vis_fc1, xp))), xp);
    aqa_tensor *zp = aqa_add(aqa_linear_layer_forward(s->cbp_v, x), q1);
    aqa_tensor *ze = aqa_add(aqa_linear_layer_forward(s->cbp_fc2, aqa_gelu(aqa_linear_layer_forward(s->cbp_fc1, zp))), zp);
    CHECK_CLOSE("sca single key", z, ze, 1e-12, 1e-12);
    aqa_scope_end();
    aqa_module_free(&s->base);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}


static aqa_tensor *stage_mean_fn(aqa_tensor *const *in, int n, void *user) {
    (void)n;
    return aqa_stage_mean(in[0], (aqa_tensor *)user);
}

static void test_stage_pool_gradcheck(void) {
    aqa_generator g = {test_seed("stage pooling gradcheck"), 0};
    aqa_scope_begin();
    aqa_tensor *x = test_rand_leaf(&g, AQA_SHAPE(2, 8, 3), AQA_F64, 1.0);
    aqa_tensor *b = test_i64((int64_t[]){2, 5, 1, 7}, 2, (int64_t[]){2, 2});
    CHECK_GRAD(stage_mean_fn, ((aqa_tensor *[]){x}), 1, b);
    /* non-contiguous input */
    aqa_tensor *xt = aqa_requires_grad(aqa_detach(aqa_transpose(aqa_contiguous(aqa_transpose(x, 1, 2)), 1, 2)), true);
    CHECK(!aqa_is_contiguous(xt));
    CHECK_GRAD(stage_mean_fn, ((aqa_tensor *[]){xt}), 1, b);
    aqa_tensor *m = aqa_stage_mean(x, b);
    /* sample 1, stage 0 = frame 0 alone; stage 2 = frame 7 alone */
    CHECK_NEAR(aqa_get(m, (int64_t[]){1, 0, 2}), aqa_get(x, (int64_t[]){1, 0, 2}), 1e-15);
    CHECK_NEAR(aqa_get(m, (int64_t[]){1, 2, 1}), aqa_get(x, (int64_t[]){1, 7, 1}), 1e-15);
    aqa_scope_end();
}

typedef struct tsa_ctx {
    aqa_head *h;
    aqa_tensor *bq, *be, *se, *sq;
} tsa_ctx;

static aqa_tensor *tsa_fn(aqa_tensor *const *in, int n, void *user) {
    (void)n;
    tsa_ctx *c = user;
    aqa_head_input q = {.frames = in[0], .boundaries = c->bq, .stages = in[1], .video = in[2], .frame_maps = in[6]};
    aqa_head_input e = {.frames = in[3], .boundaries = c->be, .stages = in[4], .video = in[5], .frame_maps = in[7]};
    aqa_head_targets t = {c->sq, NULL};
    aqa_head_result r;
    if (aqa_head_forward(c->h, &q, &e, c->se, &t, &r) != AQA_OK) return NULL;
    return r.loss;
}

static void test_tsa_head_gradcheck(void) {
    int64_t live = aqa_live_tensors();
    aqa_generator g = {test_seed("tsa head gradcheck"), 0};
    aqa_manual_seed(5);
    aqa_head_config hc = tiny_head_cfg();
    aqa_head *h = aqa_head_new(aqa_head_find("tsa"), &hc, NULL, "");
    CHECK(h != NULL);
    if (!h) return;
    CHECK(aqa_module_to_dtype(&h->base, AQA_F64) == AQA_OK);
    aqa_scope_begin();
    tsa_ctx c = {h, test_i64((int64_t[]){2, 5, 3, 6}, 2, (int64_t[]){2, 2}),
                 test_i64((int64_t[]){1, 4, 4, 7}, 2, (int64_t[]){2, 2}),
                 aqa_from_data((double[]){1.5, -0.5}, 1, (int64_t[]){2}, AQA_F64),
                 aqa_from_data((double[]){0.5, 2.0}, 1, (int64_t[]){2}, AQA_F64)};
    /* frames, stages, video of the query, the same of the exemplar, then both frame maps (P = 3) */
    aqa_tensor *in[8] = {test_rand_leaf(&g, AQA_SHAPE(2, 8, 4), AQA_F64, 1.0), test_rand_leaf(&g, AQA_SHAPE(2, 3, 8), AQA_F64, 1.0),
                         test_rand_leaf(&g, AQA_SHAPE(2, 8), AQA_F64, 1.0),    test_rand_leaf(&g, AQA_SHAPE(2, 8, 4), AQA_F64, 1.0),
                         test_rand_leaf(&g, AQA_SHAPE(2, 3, 8), AQA_F64, 1.0), test_rand_leaf(&g, AQA_SHAPE(2, 8), AQA_F64, 1.0),
                         test_rand_leaf(&g, AQA_SHAPE(2, 8, 4, 3), AQA_F64, 1.0),
                         test_rand_leaf(&g, AQA_SHAPE(2, 8, 4, 3), AQA_F64, 1.0)};
    CHECK_GRAD(tsa_fn, in, 8, &c);
    /* and w.r.t. a few of its weights (decoder, regressor, projections) */
    aqa_tensor *w[] = {aqa_module_get(&h->base, "decoder.model.0.attn.q_map.weight"),
                       aqa_module_get(&h->base, "decoder.model.1.norm_v.weight"),
                       aqa_module_get(&h->base, "regressor.layer2.weight"), aqa_module_get(&h->base, "stage_proj.bias")};
    CHECK(w[0] && w[1] && w[2] && w[3]);
    if (w[0] && w[1] && w[2] && w[3]) {
        for (int i = 0; i < 8; i++) aqa_requires_grad(in[i], false);
        CHECK_GRAD(tsa_fn, ((aqa_tensor *[]){in[0], in[1], in[2], in[3], in[4], in[5], in[6], in[7], w[0], w[1], w[2],
                                             w[3]}),
                   12, &c);
    }
    /* keys and values from maps whose P positions all equal the frames attend as the frames do
     * (P equal keys share the softmax weight of one; with Z as biases no other key joins them) */
    h->cfg.tsa_z_bias = true;
    aqa_tensor *rep[2] = {aqa_contiguous(aqa_expand(aqa_unsqueeze(in[0], 3), 4, (int64_t[]){2, 8, 4, 3})),
                          aqa_contiguous(aqa_expand(aqa_unsqueeze(in[3], 3), 4, (int64_t[]){2, 8, 4, 3}))};
    aqa_head_input q1 = {.frames = in[0], .boundaries = c.bq, .stages = in[1], .video = in[2]};
    aqa_head_input e1 = {.frames = in[3], .boundaries = c.be, .stages = in[4], .video = in[5]};
    aqa_head_input qm = q1, em = e1;
    qm.frame_maps = rep[0];
    em.frame_maps = rep[1];
    aqa_head_result r1, rm;
    CHECK(aqa_head_forward(h, &q1, &e1, c.se, &(aqa_head_targets){c.sq, NULL}, &r1) == AQA_OK);
    CHECK(aqa_head_forward(h, &qm, &em, c.se, &(aqa_head_targets){c.sq, NULL}, &rm) == AQA_OK);
    CHECK_CLOSE("maps of repeated frames", rm.pred, r1.pred, 1e-10, 1e-10);
    CHECK_CLOSE("maps of repeated frames (loss)", rm.loss, r1.loss, 1e-10, 1e-10);
    h->cfg.tsa_z_bias = false;
    /* maps of another size are refused */
    qm.frame_maps = aqa_narrow(rep[0], 1, 0, 6);
    CHECK(aqa_head_forward(h, &qm, &em, c.se, NULL, &rm) == AQA_EINVAL && strstr(aqa_last_error(), "frame_maps"));
    aqa_scope_end();
    aqa_module_free(&h->base);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

/* ---- the whole model --------------------------------------------------------------------------- */

typedef struct model_ctx {
    aqa_mvla *m;
    aqa_mvla_batch b;
} model_ctx;

/* o's loss + 0.1 (sum Z_stage + sum Z_video): including Z checks SCA's path too (NULL without a loss). */
static aqa_tensor *loss_with_z(const aqa_mvla_output *o) {
    if (!o->loss) return NULL;
    return aqa_add(o->loss, aqa_mul_scalar(aqa_add(aqa_sum_all(o->stage), aqa_sum_all(o->video)), 0.1));
}

static aqa_tensor *mvla_loss_fn(aqa_tensor *const *in, int n, void *user) {
    (void)in;
    (void)n;
    model_ctx *c = user;
    aqa_mvla_output o;
    if (aqa_mvla_forward(c->m, &c->b, &o) != AQA_OK) return NULL;
    return loss_with_z(&o);
}

/* A tiny batch of 4 videos in dtype dt (the golden inputs' shapes, random values). */
static aqa_mvla_batch tiny_batch(aqa_generator *g, aqa_dtype dt) {
    aqa_mvla_batch b;
    memset(&b, 0, sizeof b);
    b.i3d = aqa_randn(AQA_SHAPE(4, 3, 64), dt, g);
    b.vis = aqa_randn(AQA_SHAPE(4, 8, 8), dt, g);
    b.stage_text = aqa_randn(AQA_SHAPE(5, 12), dt, g);
    b.video_text = aqa_randn(AQA_SHAPE(4, 12), dt, g);
    b.stage_text_ids = test_i64((int64_t[]){0, 1, 2, 0, 3, 2, 4, 1, 2, 0, 3, 4}, 2, (int64_t[]){4, 3});
    b.video_text_ids = test_i64((int64_t[]){0, 1, 2, 3}, 1, (int64_t[]){4});
    b.boundaries = test_i64((int64_t[]){2, 5, 3, 6, 1, 4, 4, 7}, 2, (int64_t[]){4, 2});
    b.teacher_forcing = true;
    b.compute_losses = true;
    return b;
}

static void test_mvla_gradcheck(void) {
    int64_t live = aqa_live_tensors();
    aqa_generator g = {test_seed("mvla gradcheck"), 0};
    aqa_manual_seed(11);
    aqa_mvla_config cfg = tiny_cfg();
    aqa_mvla *m = aqa_mvla_new(&cfg, NULL, "");
    CHECK(m != NULL);
    if (!m) return;
    CHECK(aqa_module_to_dtype(&m->base, AQA_F64) == AQA_OK);
    aqa_scope_begin();
    model_ctx c = {m, tiny_batch(&g, AQA_F64)};
    aqa_tensor *p[] = {m->log_tau, aqa_module_get(&m->base, "sca_stage.vis_q.weight"),
                       aqa_module_get(&m->base, "sca_video.cbp_mlp.fc1.bias"), aqa_module_get(&m->base, "seg.tas.layer3.weight"),
                       aqa_module_get(&m->base, "seg.down2.mpconv.1.conv.4.weight"), m->temporal->pos_embed,
                       aqa_module_get(&m->base, "i3d_proj.bias"), aqa_module_get(&m->base, "text_proj.weight"),
                       aqa_module_get(&m->base, "i3d_frame_proj.weight")};
    int np = (int)(sizeof p / sizeof p[0]);
    bool all = true;
    for (int i = 0; i < np; i++) all &= p[i] != NULL;
    CHECK(all);
    if (all) {
        aqa_gradcheck_result r = aqa_gradcheck(mvla_loss_fn, p, np, &c, 1e-6, 1e-7, 1e-5);
        CHECK_MSG(r.ok, "whole MVLA loss: %s", r.message);
    }
    /* text embeddings may carry gradients (fine-tuned CLIP text encoder) */
    aqa_requires_grad((aqa_tensor *)c.b.stage_text, true);
    aqa_requires_grad((aqa_tensor *)c.b.video_text, true);
    aqa_gradcheck_result r2 = aqa_gradcheck(mvla_loss_fn, (aqa_tensor *[]){c.b.stage_text, c.b.video_text}, 2, &c, 1e-6, 1e-7, 1e-5);
    CHECK_MSG(r2.ok, "w.r.t. texts: %s", r2.message);
    aqa_scope_end();
    aqa_module_free(&m->base);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

static void test_fum(void) {
    int64_t live = aqa_live_tensors();
    aqa_generator g = {test_seed("fum"), 0};
    aqa_manual_seed(12);
    aqa_mvla_config cfg = tiny_fum_cfg();
    aqa_mvla *m = aqa_mvla_new(&cfg, NULL, "");
    CHECK(m != NULL && m->seg == NULL && m->i3d_frame_proj == NULL);
    if (!m) return;
    CHECK(aqa_module_to_dtype(&m->base, AQA_F64) == AQA_OK);
    aqa_scope_begin();
    model_ctx c = {m, tiny_batch(&g, AQA_F64)};
    c.b.boundaries = NULL;
    c.b.teacher_forcing = false;
    aqa_mvla_output o;
    CHECK(aqa_mvla_forward(m, &c.b, &o) == AQA_OK);
    CHECK(o.losses[AQA_MVLA_LOSS_KL] && !o.losses[AQA_MVLA_LOSS_BCE] && !o.losses[AQA_MVLA_LOSS_FRAME_I3D]);
    CHECK(o.losses[AQA_MVLA_LOSS_STAGE_VIS] && o.losses[AQA_MVLA_LOSS_VIDEO_I3D]);
    CHECK(o.frames && o.frames->shape[1] == 3 && o.frames->shape[2] == 8);
    CHECK(o.boundaries && aqa_get(o.boundaries, (int64_t[]){3, 0}) == 1 && aqa_get(o.boundaries, (int64_t[]){3, 1}) == 2);
    CHECK(o.stage && o.stage->shape[1] == 3 && o.video && o.video->shape[1] == 8);
    if (o.losses[AQA_MVLA_LOSS_KL]) CHECK(aqa_item(o.losses[AQA_MVLA_LOSS_KL]) >= 0);
    aqa_tensor *p[] = {m->log_tau, aqa_module_get(&m->base, "temporal.encoder.layers.0.linear1.weight"),
                       aqa_module_get(&m->base, "i3d_proj.weight")};
    aqa_gradcheck_result r = aqa_gradcheck(mvla_loss_fn, p, 3, &c, 1e-6, 1e-7, 1e-5);
    CHECK_MSG(r.ok, "FUM loss: %s", r.message);
    aqa_scope_end();
    aqa_module_free(&m->base);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

/* ---- parity with PyTorch ------------------------------------------------------------------------- */

/* Opens the golden file; when it is absent, marks the running test skipped (the caller returns). */
static bool golden_ready(void) {
    if (test_golden_open(GOLDEN_FILE)) return true;
    SKIP("%s absent (run scripts/gen_golden_mvla.py)", GOLDEN_FILE);
    return false;
}

/* The golden inputs "in.*" (features, text tables, text ids) as a batch; nothing else set. */
static aqa_mvla_batch golden_batch(void) {
    aqa_mvla_batch b;
    memset(&b, 0, sizeof b);
    b.i3d = GOLDEN("in.i3d");
    b.i3d_map = GOLDEN("in.i3d_map");
    b.vis = GOLDEN("in.vis");
    b.stage_text = GOLDEN("in.stage_text");
    b.video_text = GOLDEN("in.video_text");
    b.stage_text_ids = GOLDEN_AS(AQA_I64, "in.stage_ids");
    b.video_text_ids = GOLDEN_AS(AQA_I64, "in.video_ids");
    return b;
}

/* Each of the n loss terms of o against the golden "<prefix>loss.<name>" (rtol 1e-4, atol 1e-6); a
 * term that is off (NULL) fails, named. */
static void compare_losses(const aqa_mvla_output *o, const char *prefix, const aqa_mvla_loss *terms, int n) {
    for (int i = 0; i < n; i++) {
        char key[64];
        snprintf(key, sizeof key, "%sloss.%s", prefix, aqa_mvla_loss_name(terms[i]));
        CHECK_MSG(o->losses[terms[i]] != NULL, "%s missing", key);
        if (o->losses[terms[i]]) CHECK_CLOSE(key, o->losses[terms[i]], GOLDEN("%s", key), 1e-4, 1e-6);
    }
}

/* Compares every tensor (or its gradient) of m with "<prefix><name>". */
static int compare_module(aqa_module *m, const char *prefix, bool grads, bool buffers, double rtol, double atol) {
    aqa_scope_begin();
    aqa_named_tensor *list = NULL;
    int n = aqa_module_named_tensors(m, buffers, &list), compared = 0;
    for (int i = 0; i < n; i++) {
        char key[256];
        snprintf(key, sizeof key, "%s%s", prefix, list[i].name);
        aqa_tensor *want = GOLDEN_AS(list[i].tensor->dtype == AQA_I64 ? AQA_I64 : AQA_F32, "%s", key);
        aqa_tensor *got = grads ? list[i].tensor->grad : list[i].tensor;
        CHECK_CLOSE(key, got, want, rtol, atol);
        compared++;
    }
    aqa_named_tensors_free(list, n);
    aqa_scope_end();
    return compared;
}

/* Parameters after one Adam step vs "<a_prefix><name>".  Where torch's gradient is ~0 (< 3e-5 here; a conv
 * bias before BatchNorm, a key bias before softmax: the gradient is rounding noise), Adam's first
 * step is +-lr whatever the noise's size, so those elements only have to agree within 2 lr. */
static void compare_after_step(aqa_module *m, const char *a_prefix, const char *g_prefix, double lr_small,
                               aqa_tensor *const *small, int n_small) {
    aqa_scope_begin();
    aqa_named_tensor *list = NULL;
    int n = aqa_module_named_tensors(m, true, &list);
    for (int i = 0; i < n; i++) {
        char key[256], gkey[256];
        snprintf(key, sizeof key, "%s%s", a_prefix, list[i].name);
        aqa_tensor *t = list[i].tensor;
        aqa_tensor *want = GOLDEN_AS(t->dtype == AQA_I64 ? AQA_I64 : AQA_F32, "%s", key);
        if (list[i].is_buffer || !want) {
            CHECK_CLOSE(key, t, want, 1e-4, 1e-5);
            continue;
        }
        snprintf(gkey, sizeof gkey, "%s%s", g_prefix, list[i].name);
        aqa_tensor *g = GOLDEN_AS(AQA_F32, "%s", gkey);
        double lr = 1e-3;
        for (int k = 0; k < n_small; k++)
            if (small[k] == t) lr = lr_small;
        int64_t ne = aqa_numel(t);
        double *a = malloc(sizeof *a * (size_t)ne), *b = malloc(sizeof *b * (size_t)ne), *gg = malloc(sizeof *gg * (size_t)ne);
        if (g && aqa_numel(g) == ne) {
            aqa_copy_to_host(t, a, AQA_F64);
            aqa_copy_to_host(want, b, AQA_F64);
            aqa_copy_to_host(g, gg, AQA_F64);
            for (int64_t e = 0; e < ne; e++) {
                double tol = fabs(gg[e]) < 3e-5 ? 2.0 * lr + 1e-6 : 1e-5 + 1e-4 * fabs(b[e]);
                CHECK_MSG(fabs(a[e] - b[e]) <= tol, "%s[%lld] = %.9g, expected %.9g (grad %.3g)", key, (long long)e, a[e],
                          b[e], gg[e]);
            }
        }
        free(a);
        free(b);
        free(gg);
    }
    aqa_named_tensors_free(list, n);
    aqa_scope_end();
}

static void test_golden_step(void) {
    if (!golden_ready()) return;
    int64_t live = aqa_live_tensors();
    aqa_mvla_config cfg = tiny_cfg();
    aqa_head_config hc = tiny_head_cfg();
    aqa_mvla *m = aqa_mvla_new(&cfg, NULL, "");
    aqa_head *h = m ? aqa_head_new(&aqa_head_tsa, &hc, NULL, "") : NULL;
    CHECK(m && h);
    if (!m || !h) {
        aqa_module_free(m ? &m->base : NULL);
        return;
    }
    GOLDEN_INTO_MODULE(&m->base, "p.", true);
    GOLDEN_INTO_MODULE(&h->base, "hp.", true);
    aqa_optimizer *opt = aqa_adam_new(&(aqa_adam_options)AQA_ADAM_DEFAULTS);
    aqa_tensor **bb = NULL, **rest = NULL, **hp = NULL;
    int nbb = 0, nrest = 0;
    CHECK(aqa_mvla_param_groups(m, &bb, &nbb, &rest, &nrest) == AQA_OK);
    int nhp = aqa_module_parameters(&h->base, &hp);
    aqa_tensor **grp2 = malloc(sizeof *grp2 * (size_t)(nrest + nhp));
    memcpy(grp2, rest, sizeof *rest * (size_t)nrest);
    memcpy(grp2 + nrest, hp, sizeof *hp * (size_t)nhp);
    CHECK(nbb > 0 && aqa_optim_add_group(opt, bb, nbb, 1e-4, 0.0) == 0);
    CHECK(aqa_optim_add_group(opt, grp2, nrest + nhp, 1e-3, 0.0) == 1);
    aqa_tensor **allp = NULL;
    CHECK_EQ_INT(nbb + nrest, aqa_module_parameters(&m->base, &allp));
    free(allp);

    aqa_scope_begin();
    aqa_mvla_batch b = golden_batch();
    aqa_requires_grad(b.stage_text, true);
    aqa_requires_grad(b.video_text, true);
    b.boundaries = GOLDEN_AS(AQA_I64, "in.boundaries");
    b.teacher_forcing = true;
    b.compute_losses = true;
    aqa_tensor *scores = GOLDEN("in.scores");
    aqa_mvla_output o;
    CHECK(aqa_mvla_forward(m, &b, &o) == AQA_OK);
    aqa_head_input q, e;
    aqa_head_result r = {0};
    CHECK(aqa_mvla_head_input(&o, 0, 2, &q) == AQA_OK && aqa_mvla_head_input(&o, 2, 2, &e) == AQA_OK);
    aqa_head_targets t = {aqa_narrow(scores, 0, 0, 2), NULL};
    CHECK(aqa_head_forward(h, &q, &e, aqa_narrow(scores, 0, 2, 2), &t, &r) == AQA_OK);
    aqa_tensor *total = aqa_mvla_total_loss(m, &o, r.loss);
    /* the same head weights with Z as biases of the tokens */
    {
        aqa_head_config hb = hc;
        hb.tsa_z_bias = true;
        aqa_head *hh = aqa_head_new(&aqa_head_tsa, &hb, NULL, "");
        CHECK(hh != NULL);
        if (hh) {
            GOLDEN_INTO_MODULE(&hh->base, "hp.", true);
            bool pg = aqa_set_grad_enabled(false);
            aqa_head_result rb;
            CHECK(aqa_head_forward(hh, &q, &e, aqa_narrow(scores, 0, 2, 2), &t, &rb) == AQA_OK);
            CHECK_CLOSE("tsa z bias pred", rb.pred, GOLDEN("tsa_bias.pred"), 1e-5, 1e-4);
            CHECK_CLOSE("tsa z bias loss", rb.loss, GOLDEN("tsa_bias.loss"), 1e-4, 1e-5);
            aqa_set_grad_enabled(pg);
            aqa_module_free(&hh->base);
        }
    }
    CHECK_CLOSE("frames", o.frames, GOLDEN("out.frames"), 1e-4, 1e-6);
    CHECK_CLOSE("frame maps", o.frame_maps, GOLDEN("out.frame_maps"), 1e-4, 1e-6);
    CHECK_CLOSE("boundary prob", o.boundary_prob, GOLDEN("out.prob"), 1e-4, 1e-6);
    CHECK_CLOSE("pred boundaries", o.pred_boundaries, GOLDEN_AS(AQA_I64, "out.pred_boundaries"), 0, 0);
    CHECK_CLOSE("stage Z", o.stage, GOLDEN("out.stage"), 1e-4, 1e-5);
    CHECK_CLOSE("video Z", o.video, GOLDEN("out.video"), 1e-4, 1e-5);
    CHECK_CLOSE("head pred", r.pred, GOLDEN("out.head_pred"), 1e-5, 1e-4);
    CHECK(o.losses[AQA_MVLA_LOSS_KL] == NULL); /* FAM has no KL term */
    aqa_mvla_loss fam_terms[AQA_MVLA_NUM_LOSSES - 1];
    int n_fam = 0;
    for (int i = 0; i < AQA_MVLA_NUM_LOSSES; i++)
        if (i != AQA_MVLA_LOSS_KL) fam_terms[n_fam++] = (aqa_mvla_loss)i;
    compare_losses(&o, "", fam_terms, n_fam);
    CHECK_CLOSE("total", total, GOLDEN("out.total"), 1e-4, 1e-5);
    CHECK(aqa_backward(total, NULL, false) == AQA_OK);
    int ng = compare_module(&m->base, "g.", true, false, 2e-3, 2e-5);
    ng += compare_module(&h->base, "hg.", true, false, 2e-3, 2e-5);
    CHECK(ng == nbb + nrest + nhp);
    CHECK_CLOSE("stage text grad", b.stage_text->grad, GOLDEN("g.stage_text"), 2e-3, 2e-5);
    CHECK_CLOSE("video text grad", b.video_text->grad, GOLDEN("g.video_text"), 2e-3, 2e-5);
    CHECK(aqa_optim_step(opt) == AQA_OK);
    aqa_scope_end();
    compare_after_step(&m->base, "a.", "g.", 1e-4, bb, nbb);
    compare_after_step(&h->base, "ha.", "hg.", 1e-4, NULL, 0);
    /* start the inference from torch's state exactly (elements moved by noise above differ) */
    GOLDEN_INTO_MODULE(&m->base, "a.", true);
    GOLDEN_INTO_MODULE(&h->base, "ha.", true);

    /* eval-mode inference after the step: running statistics, predicted split, no losses */
    aqa_module_train(&m->base, false);
    aqa_module_train(&h->base, false);
    aqa_scope_begin();
    bool prev = aqa_set_grad_enabled(false);
    aqa_mvla_batch bi = golden_batch(); /* no boundaries, no teacher forcing, no losses */
    aqa_mvla_output oi;
    CHECK(aqa_mvla_forward(m, &bi, &oi) == AQA_OK);
    CHECK(oi.loss == NULL && oi.losses[AQA_MVLA_LOSS_BCE] == NULL);
    CHECK_CLOSE("inference prob", oi.boundary_prob, GOLDEN("inf.prob"), 1e-4, 1e-6);
    CHECK_CLOSE("inference boundaries", oi.boundaries, GOLDEN_AS(AQA_I64, "inf.pred_boundaries"), 0, 0);
    CHECK_CLOSE("inference frames", oi.frames, GOLDEN("inf.frames"), 1e-4, 1e-5);
    CHECK_CLOSE("inference stage Z", oi.stage, GOLDEN("inf.stage"), 1e-4, 1e-5);
    CHECK_CLOSE("inference video Z", oi.video, GOLDEN("inf.video"), 1e-4, 1e-5);
    aqa_head_input qi, ei;
    aqa_mvla_head_input(&oi, 0, 2, &qi);
    aqa_mvla_head_input(&oi, 2, 2, &ei);
    aqa_tensor *se = aqa_narrow(GOLDEN("in.scores"), 0, 2, 2);
    aqa_tensor *pi = aqa_head_predict_exemplars(h, &qi, &ei, &se, 1, NULL);
    CHECK(oi.frame_maps != NULL);
    CHECK_CLOSE("inference head pred", pi, GOLDEN("inf.head_pred"), 1e-5, 1e-4);
    aqa_set_grad_enabled(prev);
    aqa_scope_end();

    free(bb);
    free(rest);
    free(hp);
    free(grp2);
    aqa_optim_free(opt);
    aqa_module_free(&h->base);
    aqa_module_free(&m->base);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

/* PSNet on the maps in TSA's reshape layout and per position, eval mode, initial weights. */
static void test_golden_map_layouts(void) {
    if (!golden_ready()) return;
    int64_t live = aqa_live_tensors();
    aqa_mvla_config cfg = tiny_cfg();
    aqa_mvla *m = aqa_mvla_new(&cfg, NULL, "");
    CHECK(m != NULL);
    if (!m) return;
    GOLDEN_INTO_MODULE(&m->base, "p.", true);
    aqa_module_train(&m->base, false);
    aqa_scope_begin();
    bool prev = aqa_set_grad_enabled(false);
    aqa_mvla_batch b = golden_batch();
    const char *keys[2] = {"layout.tsa", "layout.position"};
    aqa_tensor *maps[2] = {NULL, NULL};
    for (int k = 0; k < 2; k++) {
        m->cfg.map_layout = k ? AQA_MVLA_MAP_POSITION : AQA_MVLA_MAP_TSA;
        aqa_mvla_output o;
        CHECK(aqa_mvla_forward(m, &b, &o) == AQA_OK);
        CHECK_CLOSE(keys[k], o.frame_maps, GOLDEN("%s", keys[k]), 1e-4, 1e-6);
        maps[k] = o.frame_maps;
    }
    /* the layouts differ (the test can tell one from the other) */
    if (maps[0] && maps[1]) CHECK(aqa_item(aqa_max_all(aqa_abs(aqa_sub(maps[0], maps[1])))) > 1e-3);
    /* FUM has no maps; a map of the wrong clips is named */
    b.i3d_map = aqa_narrow(b.i3d_map, 1, 0, 2);
    aqa_mvla_output o;
    CHECK(aqa_mvla_forward(m, &b, &o) == AQA_EINVAL && strstr(aqa_last_error(), "i3d_map"));
    aqa_set_grad_enabled(prev);
    aqa_scope_end();
    aqa_module_free(&m->base);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

/* FUM parity: fixed clip boundaries, clip pooling of the VLP frames, the KL term. */
static void test_golden_fum(void) {
    if (!golden_ready()) return;
    int64_t live = aqa_live_tensors();
    aqa_mvla_config cfg = tiny_fum_cfg();
    aqa_mvla *m = aqa_mvla_new(&cfg, NULL, "");
    CHECK(m != NULL);
    if (!m) return;
    GOLDEN_INTO_MODULE(&m->base, "fum.p.", true);
    aqa_scope_begin();
    aqa_mvla_batch b = golden_batch();
    b.compute_losses = true;
    aqa_mvla_output o;
    CHECK(aqa_mvla_forward(m, &b, &o) == AQA_OK);
    const aqa_mvla_loss terms[] = {AQA_MVLA_LOSS_STAGE_I3D, AQA_MVLA_LOSS_VIDEO_I3D, AQA_MVLA_LOSS_STAGE_VIS,
                                   AQA_MVLA_LOSS_VIDEO_VIS, AQA_MVLA_LOSS_KL};
    compare_losses(&o, "fum.", terms, (int)(sizeof terms / sizeof terms[0]));
    CHECK_CLOSE("fum stage Z", o.stage, GOLDEN("fum.out.stage"), 1e-4, 1e-5);
    CHECK_CLOSE("fum video Z", o.video, GOLDEN("fum.out.video"), 1e-4, 1e-5);
    aqa_tensor *total = loss_with_z(&o);
    CHECK_CLOSE("fum total", total, GOLDEN("fum.out.total"), 1e-4, 1e-5);
    CHECK(total && aqa_backward(total, NULL, false) == AQA_OK);
    compare_module(&m->base, "fum.g.", true, false, 2e-3, 2e-5);
    aqa_scope_end();
    aqa_module_free(&m->base);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

/* Graded texts: SCA picks among candidates (nearest or all) without the true grades, which the
 * batch does not carry at inference; Z and the gradient reaching the stage-text table. */
static void test_golden_graded(void) {
    if (!golden_ready()) return;
    int64_t live = aqa_live_tensors();
    const char *modes[2] = {"nearest", "all"};
    for (int k = 0; k < 2; k++) {
        aqa_mvla_config cfg = tiny_fum_cfg();
        cfg.grade_texts = k ? AQA_MVLA_GRADES_ALL : AQA_MVLA_GRADES_NEAREST;
        aqa_mvla *m = aqa_mvla_new(&cfg, NULL, "");
        CHECK(m != NULL);
        if (!m) return;
        GOLDEN_INTO_MODULE(&m->base, "fum.p.", true);
        aqa_module_train(&m->base, false);
        aqa_scope_begin();
        aqa_mvla_batch b = golden_batch();
        b.stage_text_ids = b.video_text_ids = NULL; /* labels: never given at inference */
        b.stage_text = aqa_requires_grad(aqa_clone(b.stage_text), true);
        b.stage_text_cands = GOLDEN_AS(AQA_I64, "in.stage_cands");
        b.video_text_cands = GOLDEN_AS(AQA_I64, "in.video_cands");
        aqa_mvla_output o;
        CHECK_MSG(aqa_mvla_forward(m, &b, &o) == AQA_OK, "%s: %s", modes[k], aqa_last_error());
        char key[64];
        snprintf(key, sizeof key, "grade.%s.stage", modes[k]);
        CHECK_CLOSE(key, o.stage, GOLDEN(key), 1e-4, 1e-5);
        snprintf(key, sizeof key, "grade.%s.video", modes[k]);
        CHECK_CLOSE(key, o.video, GOLDEN(key), 1e-4, 1e-5);
        aqa_tensor *z = aqa_add(aqa_sum_all(o.stage), aqa_sum_all(o.video));
        CHECK(z && aqa_backward(z, NULL, false) == AQA_OK);
        snprintf(key, sizeof key, "grade.%s.g_stage_text", modes[k]);
        CHECK_CLOSE(key, b.stage_text->grad, GOLDEN(key), 1e-3, 1e-5);
        /* without candidates the own texts are required: a clear error, not a crash */
        aqa_mvla_batch bad = b;
        bad.stage_text_cands = bad.video_text_cands = NULL;
        CHECK(aqa_mvla_forward(m, &bad, &o) == AQA_EINVAL);
        CHECK(strstr(aqa_last_error(), "stage_text_ids") != NULL);
        aqa_clear_error();
        aqa_scope_end();
        aqa_module_free(&m->base);
    }
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

/* eq. 5 summed over each video's rows (AQA_MVLA_VLKL_SUM) against torch's reduction='sum' / B:
 * the FAM terms (frame term = T x its mean) and the FUM terms with the KL summed over stage texts. */
static void test_golden_vlkl_sum(void) {
    if (!golden_ready()) return;
    int64_t live = aqa_live_tensors();
    const aqa_mvla_loss fam[] = {AQA_MVLA_LOSS_FRAME_I3D, AQA_MVLA_LOSS_STAGE_I3D, AQA_MVLA_LOSS_VIDEO_I3D,
                                 AQA_MVLA_LOSS_FRAME_VIS, AQA_MVLA_LOSS_STAGE_VIS, AQA_MVLA_LOSS_VIDEO_VIS};
    const aqa_mvla_loss fum[] = {AQA_MVLA_LOSS_STAGE_I3D, AQA_MVLA_LOSS_VIDEO_I3D, AQA_MVLA_LOSS_STAGE_VIS,
                                 AQA_MVLA_LOSS_VIDEO_VIS, AQA_MVLA_LOSS_KL};
    for (int is_fum = 0; is_fum < 2; is_fum++) {
        aqa_mvla_config cfg = is_fum ? tiny_fum_cfg() : tiny_cfg();
        cfg.vlkl_reduction = AQA_MVLA_VLKL_SUM;
        aqa_mvla *m = aqa_mvla_new(&cfg, NULL, "");
        CHECK(m != NULL);
        if (!m) continue;
        GOLDEN_INTO_MODULE(&m->base, is_fum ? "fum.p." : "p.", true);
        aqa_scope_begin();
        aqa_mvla_batch b = golden_batch();
        b.compute_losses = true;
        if (!is_fum) {
            b.boundaries = GOLDEN_AS(AQA_I64, "in.boundaries");
            b.teacher_forcing = true;
        }
        aqa_mvla_output o;
        CHECK(aqa_mvla_forward(m, &b, &o) == AQA_OK);
        if (is_fum) compare_losses(&o, "fumsum.", fum, (int)(sizeof fum / sizeof fum[0]));
        else compare_losses(&o, "sum.", fam, (int)(sizeof fam / sizeof fam[0]));
        aqa_scope_end();
        aqa_module_free(&m->base);
    }
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

/* The tiny CLIP of gen_golden_mvla.py's fine_tuned_text (text side: width 8, 1 layer, 2 heads,
 * context 6, 16 ids, D 12 = the MVLA text width). */
static aqa_clip_config tiny_clip_cfg(void) {
    return (aqa_clip_config){.embed_dim = 12, .image_resolution = 4, .vision_layers = 1, .vision_width = 8,
                             .vision_patch_size = 2, .vision_heads = 2, .context_length = 6, .vocab_size = 16,
                             .transformer_width = 8, .transformer_heads = 2, .transformer_layers = 1};
}

static bool is_text_side(const char *name) { return strncmp(name, "visual.", 7) != 0 && strcmp(name, "logit_scale") != 0; }

/* The CLIP text encoder fine-tuned through MVLA (the paper's default) against torch: tables from
 * token ids, the loss, gradients reaching every text-side weight (none the image side), and the
 * text side after one Adam step in the lr 1e-4 group. */
static void test_golden_text_finetune(void) {
    if (!golden_ready()) return;
    int64_t live = aqa_live_tensors();
    aqa_clip_config cc = tiny_clip_cfg();
    aqa_clip_model *clip = aqa_clip_model_new(&cc);
    aqa_mvla_config cfg = tiny_cfg();
    aqa_mvla *m = clip ? aqa_mvla_new(&cfg, NULL, "") : NULL;
    CHECK(clip && m);
    if (!clip || !m) {
        aqa_clip_model_free(clip);
        return;
    }
    GOLDEN_INTO_MODULE(&clip->base, "ft.clip.", true);
    GOLDEN_INTO_MODULE(&m->base, "p.", true);
    aqa_module_requires_grad(&clip->base, false); /* as train_mvla loads it; the tables decide */
    aqa_scope_begin();
    aqa_mvla_text_tables *tt =
        aqa_mvla_text_tables_new(clip, GOLDEN_AS(AQA_I64, "ft.in.stage_tokens"), GOLDEN_AS(AQA_I64, "ft.in.video_tokens"), true);
    aqa_scope_end(); /* the tables keep their own copies of the ids */
    CHECK(tt != NULL);
    aqa_tensor **bb = NULL, **rest = NULL, **tp = NULL;
    int nbb = 0, nrest = 0, ntp = tt ? aqa_mvla_text_tables_parameters(tt, &tp) : -1;
    CHECK_EQ_INT(ntp, 17); /* token and positional embeddings, 12 block tensors, ln_final, projection */
    CHECK(aqa_mvla_param_groups(m, &bb, &nbb, &rest, &nrest) == AQA_OK);
    aqa_optimizer *opt = aqa_adam_new(&(aqa_adam_options)AQA_ADAM_DEFAULTS);
    if (tt && ntp > 0 && opt) {
        bb = realloc(bb, sizeof *bb * (size_t)(nbb + ntp));
        memcpy(bb + nbb, tp, sizeof *tp * (size_t)ntp);
        CHECK(aqa_optim_add_group(opt, bb, nbb + ntp, 1e-4, 0.0) == 0);
        CHECK(aqa_optim_add_group(opt, rest, nrest, 1e-3, 0.0) == 1);
        aqa_scope_begin();
        aqa_mvla_batch b = golden_batch();
        CHECK(aqa_mvla_text_tables_get(tt, &b.stage_text, &b.video_text) == AQA_OK);
        CHECK_CLOSE("fine-tuned stage table", b.stage_text, GOLDEN("ft.stage_text"), 1e-4, 1e-6);
        CHECK_CLOSE("fine-tuned video table", b.video_text, GOLDEN("ft.video_text"), 1e-4, 1e-6);
        b.boundaries = GOLDEN_AS(AQA_I64, "in.boundaries");
        b.teacher_forcing = true;
        b.compute_losses = true;
        aqa_mvla_output o;
        CHECK(aqa_mvla_forward(m, &b, &o) == AQA_OK);
        aqa_tensor *total = loss_with_z(&o);
        CHECK_CLOSE("fine-tuned total", total, GOLDEN("ft.total"), 1e-4, 1e-5);
        CHECK(total && aqa_backward(total, NULL, false) == AQA_OK);
        aqa_named_tensor *list = NULL;
        int n = aqa_module_named_tensors(&clip->base, false, &list), n_text = 0;
        for (int i = 0; i < n; i++) {
            if (!is_text_side(list[i].name)) {
                CHECK_MSG(list[i].tensor->grad == NULL, "%s: the image side got a gradient", list[i].name);
                continue;
            }
            n_text++;
            char key[256];
            snprintf(key, sizeof key, "ft.g.%s", list[i].name);
            CHECK_CLOSE(key, list[i].tensor->grad, GOLDEN("%s", key), 2e-3, 2e-5);
        }
        aqa_named_tensors_free(list, n);
        CHECK_EQ_INT(n_text, ntp);
        CHECK(aqa_optim_step(opt) == AQA_OK);
        aqa_scope_end();
        compare_after_step(&clip->base, "ft.a.", "ft.g.", 1e-4, tp, ntp);
    }
    aqa_optim_free(opt);
    free(bb);
    free(rest);
    free(tp);
    aqa_mvla_text_tables_free(tt);
    aqa_module_free(&m->base);
    aqa_clip_model_free(clip);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

/* Frozen tables (Table 5's "Freeze CLIP-Text") are encoded once and never reach the encoder;
 * fine-tuned ones are re-encoded with a graph at each call with gradients and cached in no-grad
 * mode until the next such call; the text side saves and loads; bad ids are named. */
static void test_text_tables(void) {
    int64_t live = aqa_live_tensors();
    aqa_manual_seed(21);
    aqa_clip_config cc = tiny_clip_cfg();
    aqa_clip_model *clip = aqa_clip_model_new(&cc);
    CHECK(clip != NULL);
    if (!clip) return;
    aqa_tensor *sid = test_i64((int64_t[]){14, 1, 2, 15, 14, 3, 15, 0}, 2, (int64_t[]){2, 4});
    aqa_tensor *vid = test_i64((int64_t[]){14, 4, 5, 15}, 2, (int64_t[]){1, 4});
    aqa_tensor *st = NULL, *vt = NULL, *st2 = NULL, *vt2 = NULL, **p = NULL;

    aqa_mvla_text_tables *fz = aqa_mvla_text_tables_new(clip, sid, vid, false);
    CHECK(fz && aqa_mvla_text_tables_parameters(fz, &p) == 0 && p == NULL);
    CHECK(!aqa_module_get(&clip->base, "text_projection")->requires_grad);
    aqa_scope_begin();
    CHECK(fz && aqa_mvla_text_tables_get(fz, &st, &vt) == AQA_OK);
    CHECK(st && vt && !st->requires_grad && st->shape[0] == 2 && st->shape[1] == 12 && vt->shape[0] == 1);
    CHECK(fz && aqa_mvla_text_tables_get(fz, &st2, &vt2) == AQA_OK && st2 == st && vt2 == vt); /* cached */
    aqa_scope_end();
    aqa_mvla_text_tables_free(fz);

    aqa_mvla_text_tables *ft = aqa_mvla_text_tables_new(clip, sid, vid, true);
    CHECK(ft != NULL);
    CHECK(aqa_module_get(&clip->base, "text_projection")->requires_grad);
    if (ft) {
        aqa_scope_begin();
        CHECK(aqa_mvla_text_tables_get(ft, &st, &vt) == AQA_OK && st && st->requires_grad);
        CHECK(aqa_mvla_text_tables_get(ft, &st2, &vt2) == AQA_OK && st2 != st); /* re-encoded */
        aqa_tensor *ref = aqa_keep(aqa_clone(st));
        aqa_scope_end();
        aqa_scope_begin();
        bool prev = aqa_set_grad_enabled(false);
        CHECK(aqa_mvla_text_tables_get(ft, &st, &vt) == AQA_OK && !st->requires_grad);
        CHECK(aqa_mvla_text_tables_get(ft, &st2, &vt2) == AQA_OK && st2 == st); /* cached for evaluation */
        CHECK_CLOSE("no-grad table", st, ref, 1e-6, 1e-7);
        aqa_set_grad_enabled(prev);
        /* the text side round-trips through its file; a changed weight is restored */
        char path[] = "/tmp/aqa_text_tables_XXXXXX";
        int fd = mkstemp(path);
        CHECK(fd >= 0);
        if (fd >= 0) close(fd);
        aqa_tensor *w = aqa_module_get(&clip->base, "text_projection");
        aqa_tensor *w0 = aqa_clone(w);
        CHECK(aqa_mvla_text_tables_save(ft, path, 1, (const char *[]){"epoch"}, (const char *[]){"3"}) == AQA_OK);
        CHECK(aqa_fill_(w, 0.5) == AQA_OK);
        CHECK(aqa_mvla_text_tables_load(ft, path) == AQA_OK);
        CHECK_CLOSE("reloaded text_projection", w, w0, 0, 0);
        /* a file of other weights is refused, naming it */
        aqa_tensor *junk = aqa_zeros(AQA_SHAPE(2), AQA_F32);
        CHECK(aqa_save_tensors(path, 1, (const char *[]){"text_projection"}, &junk, 0, NULL, NULL) == AQA_OK);
        CHECK(aqa_mvla_text_tables_load(ft, path) != AQA_OK && strstr(aqa_last_error(), path));
        remove(path);
        aqa_tensor_free(ref);
        aqa_scope_end();
    }
    aqa_mvla_text_tables_free(ft);
    aqa_tensor *bad = test_i64((int64_t[]){1, 2}, 1, (int64_t[]){2});
    CHECK(aqa_mvla_text_tables_new(clip, bad, vid, true) == NULL && strstr(aqa_last_error(), "stage token ids"));
    aqa_tensor_free(bad);
    aqa_tensor_free(sid);
    aqa_tensor_free(vid);
    aqa_clip_model_free(clip);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

/* CoRe's regression tree against scripts/mvla_torch.py's RegressTree: loss, prediction, gradients,
 * with each video's score over its own DD and theta 10. */
static void test_golden_core(void) {
    if (!golden_ready()) return;
    int64_t live = aqa_live_tensors();
    aqa_head_config hc = aqa_head_config_default();
    hc.feat_dim = 6;
    hc.use_z = false;
    hc.core_depth = 3;
    hc.core_hidden = 8;
    hc.core_theta = 10;
    hc.use_difficulty = true;
    aqa_head *h = aqa_head_new(&aqa_head_core, &hc, NULL, "");
    CHECK(h != NULL);
    if (!h) return;
    GOLDEN_INTO_MODULE(&h->base, "core.p.", true);
    aqa_scope_begin();
    aqa_head_input q = {.video = GOLDEN("heads.fq"), .difficulty = GOLDEN("heads.dd_q")};
    aqa_head_input e = {.video = GOLDEN("heads.fe"), .difficulty = GOLDEN("heads.dd_e")};
    aqa_head_targets t = {GOLDEN("heads.s_q"), NULL};
    aqa_head_result r;
    CHECK(aqa_head_forward(h, &q, &e, GOLDEN("heads.s_e"), &t, &r) == AQA_OK);
    CHECK_CLOSE("core pred", r.pred, GOLDEN("core.pred"), 1e-5, 1e-5);
    CHECK_CLOSE("core loss", r.loss, GOLDEN("core.loss"), 1e-4, 1e-6);
    CHECK(r.loss && aqa_backward(r.loss, NULL, false) == AQA_OK);
    compare_module(&h->base, "core.g.", true, false, 1e-3, 1e-5);
    /* groups set from the same deltas as the torch script give the same buffer */
    aqa_tensor *g0 = aqa_clone(aqa_module_get(&h->base, "groups"));
    CHECK(aqa_core_head_set_groups(h, (double[]){1.0, 0.5, 2.0, 1.5}, 4) == AQA_OK);
    CHECK_CLOSE("core groups", aqa_module_get(&h->base, "groups"), g0, 0, 0);
    aqa_scope_end();
    aqa_module_free(&h->base);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

/* The parameters of scripts/gen_golden_mvla.py's formula_weights: element k of the n-th parameter
 * (in order) = sin(0.37 k + 0.11 salt + 0.7 n) / sqrt(fan_in), fan_in its second dim (biases 100). */
static void formula_weights(aqa_module *m, int salt) {
    aqa_tensor **p = NULL;
    int np = aqa_module_parameters(m, &p);
    for (int n = 0; n < np; n++) {
        int64_t ne = aqa_numel(p[n]);
        double fan = p[n]->ndim > 1 ? (double)p[n]->shape[1] : 100.0, *v = malloc(sizeof *v * (size_t)ne);
        for (int64_t k = 0; k < ne; k++) v[k] = sin(0.37 * (double)k + 0.11 * salt + 0.7 * n) / sqrt(fan);
        aqa_tensor *t = aqa_from_data(v, p[n]->ndim, p[n]->shape, AQA_F64);
        CHECK(t && aqa_copy_(p[n], t) == AQA_OK);
        aqa_tensor_free(t);
        free(v);
    }
    free(p);
}

/* USDL (KL 'mean' as its authors' code), MUSDL with per-video judge counts (7, 5, 3) and FINA's
 * rule, and MUSDL's SUM rule (JIGSAWS), all in f64 on [Z^vid, Z^sta] of 2-d Z, against
 * mvla_torch.py: predictions, losses, feature gradients. */
static void test_golden_usdl_musdl(void) {
    if (!golden_ready()) return;
    int64_t live = aqa_live_tensors();
    aqa_head_config hc = aqa_head_config_default();
    hc.feat_dim = 2;
    hc.num_stages = 3;
    hc.use_z = true;
    hc.usdl_bins = 11;
    hc.score_min = 0;
    hc.score_max = 10;
    hc.usdl_sigma = 1.5;
    hc.usdl_kl_mean = true;
    aqa_head *u = aqa_head_new(&aqa_head_usdl, &hc, NULL, "");
    hc.usdl_sigma = 5.0;
    hc.usdl_kl_mean = false;
    aqa_head *mu = aqa_head_new(&aqa_head_musdl, &hc, NULL, "");
    aqa_head_config_usdl_jigsaws(&hc); /* sigma 1, 6 judges of 5 bins over [1, 5], summed */
    aqa_head *js = aqa_head_new(&aqa_head_musdl, &hc, NULL, "");
    CHECK(u && mu && js);
    if (!u || !mu || !js) goto out;
    aqa_head *heads[3] = {u, mu, js};
    for (int i = 0; i < 3; i++) {
        CHECK(aqa_module_to_dtype(&heads[i]->base, AQA_F64) == AQA_OK);
        formula_weights(&heads[i]->base, i + 1);
    }
    aqa_scope_begin();
    aqa_tensor *z = aqa_requires_grad(GOLDEN_AS(AQA_F64, "usdl.z"), true);
    /* [Z^vid (2), Z^sta (3 x 2)] is the golden 8-d feature */
    aqa_head_input in = {.video = aqa_narrow(z, 1, 0, 2), .stages = aqa_view(aqa_narrow(z, 1, 2, 6), 3, (int64_t[]){3, 3, 2})};
    aqa_head_result r;
    aqa_head_targets tu = {aqa_from_data((double[]){3.0, 7.5, 9.0}, 1, (int64_t[]){3}, AQA_F64), NULL};
    CHECK(aqa_head_forward(u, &in, NULL, NULL, &tu, &r) == AQA_OK);
    CHECK_CLOSE("usdl pred", r.pred, GOLDEN_AS(AQA_F64, "usdl.pred"), 0, 1e-9);
    CHECK_CLOSE("usdl loss", r.loss, GOLDEN_AS(AQA_F64, "usdl.loss"), 1e-6, 1e-9);
    CHECK(r.loss && aqa_backward(r.loss, NULL, false) == AQA_OK);
    CHECK_CLOSE("usdl feature grad", z->grad, GOLDEN_AS(AQA_F64, "usdl.gz"), 1e-5, 1e-9);
    aqa_tensor_free(z->grad);
    z->grad = NULL;
    in.video = aqa_narrow(z, 1, 0, 2); /* new views: backward freed the graph of the old ones */
    in.stages = aqa_view(aqa_narrow(z, 1, 2, 6), 3, (int64_t[]){3, 3, 2});
    aqa_head_input im = in;
    im.judge_count = GOLDEN_AS(AQA_I64, "musdl.counts");
    im.difficulty = GOLDEN_AS(AQA_F64, "musdl.dd");
    aqa_head_targets tm = {NULL, GOLDEN_AS(AQA_F64, "musdl.judges")};
    CHECK(aqa_head_forward(mu, &im, NULL, NULL, &tm, &r) == AQA_OK);
    CHECK_CLOSE("musdl pred", r.pred, GOLDEN_AS(AQA_F64, "musdl.pred"), 1e-9, 1e-9);
    CHECK_CLOSE("musdl loss", r.loss, GOLDEN_AS(AQA_F64, "musdl.loss"), 1e-6, 1e-9);
    CHECK(r.loss && aqa_backward(r.loss, NULL, false) == AQA_OK);
    CHECK_CLOSE("musdl feature grad", z->grad, GOLDEN_AS(AQA_F64, "musdl.gz"), 1e-5, 1e-9);
    aqa_head_targets ts = {NULL, GOLDEN_AS(AQA_F64, "musdl_sum.judges")};
    CHECK(aqa_head_forward(js, &in, NULL, NULL, &ts, &r) == AQA_OK);
    CHECK_CLOSE("musdl sum pred", r.pred, GOLDEN_AS(AQA_F64, "musdl_sum.pred"), 1e-9, 1e-9);
    CHECK_CLOSE("musdl sum loss", r.loss, GOLDEN_AS(AQA_F64, "musdl_sum.loss"), 1e-6, 1e-9);
    aqa_scope_end();
out:
    for (int i = 0; i < 3; i++) {
        aqa_head *hh = i == 0 ? u : i == 1 ? mu : js;
        if (hh) aqa_module_free(&hh->base);
    }
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

/* torch's state_dict (saved by safetensors) loads by name through aqa_module_load. */
static void test_load_torch_state_dict(void) {
    if (!golden_ready()) return;
    int64_t live = aqa_live_tensors();
    aqa_mvla_config cfg = tiny_cfg();
    aqa_head_config hc = tiny_head_cfg();
    aqa_mvla *m = aqa_mvla_new(&cfg, NULL, "");
    aqa_head *h = aqa_head_new(&aqa_head_tsa, &hc, NULL, "");
    CHECK(m && h);
    if (m && h) {
        aqa_load_report rep;
        CHECK(aqa_module_load(&m->base, test_data_path(GOLDEN_FILE), false, test_strip_prefix, "p.", &rep) == AQA_OK);
        aqa_named_tensor *list = NULL;
        int n = aqa_module_named_tensors(&m->base, true, &list);
        aqa_named_tensors_free(list, n);
        CHECK_MSG(rep.n_loaded == n && rep.n_missing == 0 && rep.n_mismatched == 0, "%s", rep.text);
        CHECK(aqa_module_load(&h->base, test_data_path(GOLDEN_FILE), false, test_strip_prefix, "hp.", &rep) == AQA_OK);
        CHECK_MSG(rep.n_missing == 0 && rep.n_mismatched == 0 && rep.n_loaded > 0, "%s", rep.text);
        aqa_scope_begin();
        CHECK_CLOSE("loaded weight", aqa_module_get(&m->base, "sca_video.cbp_q.weight"), GOLDEN("p.sca_video.cbp_q.weight"), 0, 0);
        aqa_scope_end();
    }
    aqa_module_free(h ? &h->base : NULL);
    aqa_module_free(m ? &m->base : NULL);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

/* ---- switches and errors ---------------------------------------------------------------------- */

static void test_switches(void) {
    int64_t live = aqa_live_tensors();
    aqa_generator g = {test_seed("switches"), 0};
    aqa_scope_begin();
    aqa_mvla_batch b = tiny_batch(&g, AQA_F32);
    aqa_scope_end();
    (void)b;
    aqa_scope_begin();
    b = tiny_batch(&g, AQA_F32);

    /* plain "X": CBP + segmentation only */
    aqa_mvla_config c = tiny_cfg();
    c.use_vlp = false;
    aqa_mvla *m = aqa_mvla_new(&c, NULL, "");
    CHECK(m && !m->temporal && !m->sca_stage && !m->i3d_proj && m->seg);
    aqa_mvla_output o;
    if (m) {
        CHECK(aqa_mvla_forward(m, &b, &o) == AQA_OK);
        CHECK(o.losses[AQA_MVLA_LOSS_BCE] && !o.losses[AQA_MVLA_LOSS_STAGE_I3D]);
        CHECK(o.video && o.video->shape[1] == 64 && o.stage && o.stage->shape[2] == 4);
        aqa_module_free(&m->base);
    }
    /* each granularity off in turn (Table 4), SCA off with F_i3d + F_vis (Table 5) */
    c = tiny_cfg();
    c.vlkl_frame = false;
    c.vlkl_video = false;
    c.sca = false;
    c.fuse = AQA_MVLA_FUSE_ADD;
    c.loss_weight[AQA_MVLA_LOSS_STAGE_VIS] = 0.0;
    m = aqa_mvla_new(&c, NULL, "");
    CHECK(m && !m->sca_stage && !m->sca_video);
    if (m) {
        CHECK(aqa_mvla_forward(m, &b, &o) == AQA_OK);
        CHECK(!o.losses[AQA_MVLA_LOSS_FRAME_I3D] && !o.losses[AQA_MVLA_LOSS_VIDEO_VIS]);
        CHECK(o.losses[AQA_MVLA_LOSS_STAGE_I3D] && o.losses[AQA_MVLA_LOSS_STAGE_VIS]);
        if (o.loss && o.losses[AQA_MVLA_LOSS_STAGE_I3D] && o.losses[AQA_MVLA_LOSS_BCE])
            CHECK_NEAR(aqa_item(o.loss),
                       aqa_item(o.losses[AQA_MVLA_LOSS_STAGE_I3D]) + aqa_item(o.losses[AQA_MVLA_LOSS_BCE]), 1e-5);
        /* oracle: the split is the ground truth; without it, an error naming the setting */
        m->cfg.oracle_boundaries = true;
        b.teacher_forcing = false;
        CHECK(aqa_mvla_forward(m, &b, &o) == AQA_OK);
        CHECK(o.boundaries && aqa_get(o.boundaries, (int64_t[]){1, 1}) == 6);
        aqa_tensor *gt = b.boundaries;
        b.boundaries = NULL;
        CHECK(aqa_mvla_forward(m, &b, &o) == AQA_EINVAL && strstr(aqa_last_error(), "oracle"));
        b.boundaries = gt;
        /* a wrong shape is named */
        aqa_tensor *vis = b.vis;
        b.vis = aqa_narrow(vis, 1, 0, 4);
        CHECK(aqa_mvla_forward(m, &b, &o) == AQA_EINVAL && strstr(aqa_last_error(), "vis"));
        b.vis = vis;
        aqa_module_free(&m->base);
    }
    /* state_dict names as scripts/mvla_torch.py */
    c = tiny_cfg();
    m = aqa_mvla_new(&c, NULL, "");
    if (m) {
        const char *names[] = {"log_tau", "i3d_proj.weight", "seg.inc.conv.conv.0.weight",
                               "seg.down4.mpconv.1.conv.4.running_var", "seg.tas.layer3.bias", "i3d_frame_proj.weight",
                               "temporal.pos_embed", "temporal.encoder.layers.1.self_attn.in_proj_weight",
                               "temporal.encoder.norm.weight", "text_proj.weight", "sca_stage.vis_q.weight",
                               "sca_video.cbp_mlp.fc2.bias"};
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            CHECK_MSG(aqa_module_get(&m->base, names[i]) != NULL, "missing %s", names[i]);
        CHECK(aqa_module_get(&m->base, "vis_proj.weight") == NULL); /* D_clip == D */
        aqa_module_free(&m->base);
    }
    aqa_scope_end();
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

static void test_default_sizes(void) {
    /* FineDiving's sizes build; the segmentation maps 9 x 1024 to 96 x 64 */
    int64_t live = aqa_live_tensors();
    aqa_mvla_config c = aqa_mvla_config_default();
    aqa_mvla *m = aqa_mvla_new(&c, NULL, "");
    CHECK(m && m->seg && m->seg->width == 64);
    if (m) {
        aqa_scope_begin();
        bool prev = aqa_set_grad_enabled(false);
        aqa_tensor *fr = NULL, *p = NULL;
        CHECK(aqa_mvla_segmentation_forward(m->seg, aqa_randn(AQA_SHAPE(2, 9, 1024), AQA_F32, NULL), &fr, &p) == AQA_OK);
        CHECK(fr && fr->shape[1] == 96 && fr->shape[2] == 64 && p && p->shape[1] == 96 && p->shape[2] == 2);
        aqa_set_grad_enabled(prev);
        aqa_scope_end();
        printf("    MVLA parameters (FineDiving sizes): %lld\n", (long long)aqa_module_num_params(&m->base, true));
        aqa_module_free(&m->base);
    }
    c.num_frames = 12; /* not a multiple of 8 */
    CHECK(aqa_mvla_new(&c, NULL, "") == NULL && strstr(aqa_last_error(), "multiple of 8"));
    /* FUM boundaries must split the clips into non-empty stages: named at construction */
    c = tiny_fum_cfg();
    c.fum_boundaries[1] = 3; /* N = 3: stage 3 would be empty */
    CHECK(aqa_mvla_new(&c, NULL, "") == NULL && strstr(aqa_last_error(), "fum_boundaries[1] = 3"));
    c.fum_boundaries[0] = 2;
    c.fum_boundaries[1] = 1; /* not increasing */
    CHECK(aqa_mvla_new(&c, NULL, "") == NULL && strstr(aqa_last_error(), "fum_boundaries[1] = 1"));
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

int main(void) {
    RUN(test_stage_matrices);
    RUN(test_select_boundaries);
    RUN(test_vlkl_gradcheck);
    RUN(test_sca_gradcheck);
    RUN(test_stage_pool_gradcheck);
    RUN(test_tsa_head_gradcheck);
    RUN(test_mvla_gradcheck);
    RUN(test_fum);
    RUN(test_golden_step);
    RUN(test_golden_map_layouts);
    RUN(test_golden_fum);
    RUN(test_golden_graded);
    RUN(test_golden_vlkl_sum);
    RUN(test_golden_text_finetune);
    RUN(test_text_tables);
    RUN(test_golden_core);
    RUN(test_golden_usdl_musdl);
    RUN(test_load_torch_state_dict);
    RUN(test_switches);
    RUN(test_default_sizes);
    test_golden_close();
    return test_finish();
}
