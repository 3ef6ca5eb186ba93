/* test_attention.c: scaled dot-product attention, the fused attention softmax, MultiheadAttention,
 * TransformerEncoderLayer and TransformerEncoder (nn/attention.c, nn/transformer.c): gradchecks
 * in f64, comparison with attention composed from plain ops, parity with PyTorch
 * (tests/data/golden_nn_layers.safetensors from scripts/gen_golden_nn_layers.py) including masks,
 * averaged weights, pre/post-norm layers, state_dict names and loading a torch state_dict. */
#define GOLDEN_FILE "golden_nn_layers.safetensors"
#define TEST_GRAD_TOL 1e-6, 1e-6, 1e-5
#include "tests/test_util.h"

#include "nn/attention.h"
#include "nn/layers-impl.h"
#include "nn/transformer.h"
#include "tensor/backend.h"

/* ---- helpers ------------------------------------------------------------------------------------------ */

/* softmax(q k^T * scale + mask) v composed of plain ops (mask additive or NULL). */
static aqa_tensor *reference_attention(aqa_tensor *q, aqa_tensor *k, aqa_tensor *v, aqa_tensor *mask, double scale) {
    aqa_tensor *s = aqa_mul_scalar(aqa_matmul(q, aqa_transpose(k, -2, -1)), scale);
    if (mask) s = aqa_add(s, mask);
    return aqa_matmul(aqa_softmax(s, -1), v);
}

/* Additive mask (0 / -inf) of a bool "allowed" mask. */
static aqa_tensor *additive_of_allowed(aqa_tensor *allowed, aqa_dtype dt) {
    return aqa_masked_fill(aqa_zeros(allowed->ndim, allowed->shape, dt), aqa_logical_not(allowed), -INFINITY);
}

/* ---- scaled dot-product attention ----------------------------------------------------------------------- */

typedef struct sdpa_args { aqa_tensor *mask; bool causal; double scale; } sdpa_args;

static aqa_tensor *sdpa_fn(aqa_tensor *const *in, int n, void *user) {
    sdpa_args *a = user;
    return aqa_scaled_dot_product_attention(in[0], in[1], in[2], n > 3 ? in[3] : a->mask, 0.0, a->causal, a->scale);
}

static void test_sdpa_gradcheck(void) {
    aqa_generator g = {test_seed("sdpa gradcheck"), 0};
    aqa_scope_begin();
    aqa_tensor *q = test_rand_leaf(&g, AQA_SHAPE(2, 3, 4), AQA_F64, 1.0);
    aqa_tensor *k = test_rand_leaf(&g, AQA_SHAPE(2, 5, 4), AQA_F64, 1.0);
    aqa_tensor *v = test_rand_leaf(&g, AQA_SHAPE(2, 5, 3), AQA_F64, 1.0);
    sdpa_args plain = {NULL, false, 0};
    CHECK_GRAD(sdpa_fn, ((aqa_tensor *[]){q, k, v}), 3, &plain);
    /* additive float mask [L, S], also differentiated */
    aqa_tensor *am = test_rand_leaf(&g, AQA_SHAPE(3, 5), AQA_F64, 0.5);
    CHECK_GRAD(sdpa_fn, ((aqa_tensor *[]){q, k, v, am}), 4, &plain);
    /* boolean allow-mask [N, L, S] (every row keeps key 0) */
    aqa_tensor *bm = aqa_lt_scalar(aqa_rand(AQA_SHAPE(2, 3, 5), AQA_F64, &g), 0.6);
    bm = aqa_logical_or(bm, aqa_lt_scalar(aqa_reshape(aqa_arange(0, 5, 1, AQA_F64), AQA_SHAPE(1, 1, 5)), 0.5));
    sdpa_args boolean = {bm, false, 0};
    CHECK_GRAD(sdpa_fn, ((aqa_tensor *[]){q, k, v}), 3, &boolean);
    /* causal, custom scale */
    sdpa_args causal = {NULL, true, 0.7};
    CHECK_GRAD(sdpa_fn, ((aqa_tensor *[]){q, k, v}), 3, &causal);
    /* k and v shared by the batch (broadcast batch dim), 2-D operands */
    aqa_tensor *k1 = test_rand_leaf(&g, AQA_SHAPE(1, 5, 4), AQA_F64, 1.0), *v1 = test_rand_leaf(&g, AQA_SHAPE(5, 3), AQA_F64, 1.0);
    CHECK_GRAD(sdpa_fn, ((aqa_tensor *[]){q, k1, v1}), 3, &plain);
    aqa_tensor *q2 = test_rand_leaf(&g, AQA_SHAPE(3, 4), AQA_F64, 1.0), *k2 = test_rand_leaf(&g, AQA_SHAPE(5, 4), AQA_F64, 1.0);
    CHECK_GRAD(sdpa_fn, ((aqa_tensor *[]){q2, k2, v1}), 3, &causal);
    /* transposed (non-contiguous) operands */
    aqa_tensor *kt = aqa_requires_grad(aqa_detach(aqa_transpose(test_rand_leaf(&g, AQA_SHAPE(2, 4, 5), AQA_F64, 1.0), 1, 2)), true);
    CHECK_GRAD(sdpa_fn, ((aqa_tensor *[]){q, kt, v}), 3, &plain);
    aqa_scope_end();
}

static void test_sdpa_vs_composed(void) {
    aqa_generator g = {test_seed("sdpa values"), 0};
    aqa_scope_begin();
    aqa_tensor *q = aqa_randn(AQA_SHAPE(2, 2, 4, 8), AQA_F32, &g);
    aqa_tensor *k = aqa_randn(AQA_SHAPE(2, 2, 6, 8), AQA_F32, &g);
    aqa_tensor *v = aqa_randn(AQA_SHAPE(2, 2, 6, 5), AQA_F32, &g);
    double sc = 1 / sqrt(8.0);
    CHECK_CLOSE("aqa_scaled_dot_product_attention(q, k, v, NULL, 0, false, 0)", aqa_scaled_dot_product_attention(q, k, v, NULL, 0, false, 0), reference_attention(q, k, v, NULL, sc), 1e-5, 1e-6);
    aqa_tensor *am = aqa_randn(AQA_SHAPE(4, 6), AQA_F32, &g);
    CHECK_CLOSE("aqa_scaled_dot_product_attention(q, k, v, am, 0, false, 0)", aqa_scaled_dot_product_attention(q, k, v, am, 0, false, 0), reference_attention(q, k, v, am, sc), 1e-5, 1e-6);
    /* a mask broadcasting along the query dim ([N, 1, 1, S]) and one along heads ([1, H, L, 1]) */
    aqa_tensor *m1 = aqa_randn(AQA_SHAPE(2, 1, 1, 6), AQA_F32, &g), *m2 = aqa_randn(AQA_SHAPE(1, 2, 4, 1), AQA_F32, &g);
    CHECK_CLOSE("aqa_scaled_dot_product_attention(q, k, v, m1, 0, false, 0)", aqa_scaled_dot_product_attention(q, k, v, m1, 0, false, 0), reference_attention(q, k, v, m1, sc), 1e-5, 1e-6);
    CHECK_CLOSE("aqa_scaled_dot_product_attention(q, k, v, m2, 0, false, 0)", aqa_scaled_dot_product_attention(q, k, v, m2, 0, false, 0), reference_attention(q, k, v, m2, sc), 1e-5, 1e-6);
    aqa_tensor *kb = aqa_randn(AQA_SHAPE(1, 2, 6, 8), AQA_F32, &g);
    CHECK_CLOSE("aqa_scaled_dot_product_attention(q, kb, v, am, 0, false, 0.3)", aqa_scaled_dot_product_attention(q, kb, v, am, 0, false, 0.3), reference_attention(q, kb, v, am, 0.3), 1e-5, 1e-6);
    /* bool allow-mask == its additive form; causal == tril allow-mask (top-left aligned) */
    aqa_tensor *allowed = aqa_gt_scalar(aqa_randn(AQA_SHAPE(4, 6), AQA_F32, &g), -0.5);
    allowed = aqa_logical_or(allowed, aqa_lt_scalar(aqa_reshape(aqa_arange(0, 6, 1, AQA_F32), AQA_SHAPE(1, 6)), 0.5));
    CHECK_CLOSE("aqa_scaled_dot_product_attention(q, k, v, allowed, 0, false, 0)", aqa_scaled_dot_product_attention(q, k, v, allowed, 0, false, 0),
                reference_attention(q, k, v, additive_of_allowed(allowed, AQA_F32), sc), 1e-5, 1e-6);
    aqa_tensor *i = aqa_reshape(aqa_arange(0, 4, 1, AQA_F32), AQA_SHAPE(4, 1)), *j = aqa_reshape(aqa_arange(0, 6, 1, AQA_F32), AQA_SHAPE(1, 6));
    aqa_tensor *tril = aqa_le(j, i);
    CHECK_CLOSE("aqa_scaled_dot_product_attention(q, k, v, NULL, 0, true, 0)", aqa_scaled_dot_product_attention(q, k, v, NULL, 0, true, 0),
                reference_attention(q, k, v, additive_of_allowed(tril, AQA_F32), sc), 1e-5, 1e-6);
    /* the fused softmax on a non-contiguous score tensor, against the composed form */
    aqa_tensor *s = aqa_transpose(aqa_randn(AQA_SHAPE(3, 7, 5), AQA_F32, &g), 1, 2);
    aqa_tensor *msk = aqa_randn(AQA_SHAPE(5, 1), AQA_F32, &g);
    CHECK_CLOSE("aqa_attention_softmax(s, msk, 0.5, true)", aqa_attention_softmax(s, msk, 0.5, true),
                aqa_softmax(aqa_add(aqa_add(aqa_mul_scalar(s, 0.5), msk),
                                    additive_of_allowed(aqa_le(aqa_reshape(aqa_arange(0, 7, 1, AQA_F32), AQA_SHAPE(1, 7)),
                                                               aqa_reshape(aqa_arange(0, 5, 1, AQA_F32), AQA_SHAPE(5, 1))), AQA_F32)), -1),
                1e-5, 1e-7);
    CHECK(s->shape[1] == 5 && s->shape[2] == 7);
    /* causal helper */
    aqa_tensor *cm = aqa_causal_mask(3, AQA_F32);
    CHECK(cm && aqa_get(cm, (int64_t[]){0, 1}) == -INFINITY && aqa_get(cm, (int64_t[]){1, 1}) == 0 &&
          aqa_get(cm, (int64_t[]){2, 0}) == 0 && aqa_get(cm, (int64_t[]){1, 2}) == -INFINITY);
    aqa_scope_end();
}

/* ---- MultiheadAttention --------------------------------------------------------------------------------- */

typedef struct mha_args { aqa_mha_layer *m; aqa_tensor *am, *kpm; bool self; } mha_args;

/* inputs: query (and key/value for cross attention when n == 3), in_proj_weight last */
static aqa_tensor *mha_fn(aqa_tensor *const *in, int n, void *user) {
    mha_args *a = user;
    aqa_tensor *saved = a->m->in_proj_weight;
    a->m->in_proj_weight = in[n - 1]; /* borrowed for the call */
    aqa_tensor *kv = a->self ? in[0] : in[1];
    aqa_tensor *w = NULL;
    aqa_tensor *y = aqa_mha_layer_forward(a->m, in[0], kv, kv, a->kpm, a->am, &w);
    a->m->in_proj_weight = saved;
    /* the weights are checked too: fold them into the output */
    return y && w ? aqa_add(aqa_sum_all(aqa_mul(w, w)), aqa_sum_all(aqa_mul(y, y))) : NULL;
}

static void test_mha_gradcheck(void) {
    aqa_generator g = {test_seed("mha gradcheck"), 0};
    aqa_manual_seed(5);
    aqa_scope_begin();
    for (int bf = 0; bf < 2; bf++) {
        aqa_mha_layer *m = aqa_mha_layer_new(NULL, "", 8, 2, 0.0, true, bf);
        CHECK(m != NULL);
        if (!m) continue;
        CHECK(aqa_module_to_dtype(&m->base, AQA_F64) == AQA_OK); /* layers do not mix dtypes */
        aqa_uniform_(m->in_proj_bias, -0.5, 0.5, &g);
        aqa_uniform_(m->out_proj->bias, -0.5, 0.5, &g);
        aqa_tensor *w = test_leaf_of(aqa_to_dtype(m->in_proj_weight, AQA_F64));
        /* self-attention with an additive [L, S] mask and a boolean padding mask */
        int64_t L = 4, N = 2;
        aqa_tensor *x = test_rand_leaf(&g, 3, bf ? (int64_t[]){N, L, 8} : (int64_t[]){L, N, 8}, AQA_F64, 1.0);
        aqa_tensor *am = aqa_mul_scalar(aqa_randn(AQA_SHAPE(4, 4), AQA_F64, &g), 0.5);
        aqa_tensor *kpm = aqa_from_data((bool[]){false, false, false, true, false, false, false, false}, AQA_SHAPE(2, 4), AQA_BOOL);
        mha_args a = {m, am, kpm, true};
        CHECK_GRAD(mha_fn, ((aqa_tensor *[]){x, w}), 2, &a);
        /* cross attention, boolean per-head mask [N*H, L, S] */
        int64_t S = 5;
        aqa_tensor *kv = test_rand_leaf(&g, 3, bf ? (int64_t[]){N, S, 8} : (int64_t[]){S, N, 8}, AQA_F64, 1.0);
        aqa_tensor *bm = aqa_gt_scalar(aqa_rand(AQA_SHAPE(4, 4, 5), AQA_F64, &g), 0.7);
        bm = aqa_logical_and(bm, aqa_gt_scalar(aqa_reshape(aqa_arange(0, 5, 1, AQA_F64), AQA_SHAPE(1, 1, 5)), 0.5));
        mha_args b = {m, bm, NULL, false};
        CHECK_GRAD(mha_fn, ((aqa_tensor *[]){x, kv, w}), 3, &b);
        aqa_module_free(&m->base);
    }
    aqa_scope_end();
}

/* Common start of a golden case c: eval mode, the state_dict names against "<c>.keys", then (in a
 * new scope, which the case ends) the parameters from "<c>.p.<name>". */
static void begin_golden_case(aqa_module *m, const char *c) {
    char prefix[64];
    aqa_module_train(m, false);
    snprintf(prefix, sizeof prefix, "%s.keys", c);
    CHECK_NAMES(m, prefix);
    snprintf(prefix, sizeof prefix, "%s.p.", c);
    aqa_scope_begin();
    GOLDEN_INTO_MODULE(m, prefix, false);
}

static void mha_golden_case(const char *c, bool batch_first, bool self) {
    int64_t live = aqa_live_tensors();
    aqa_mha_layer *m = aqa_mha_layer_new(NULL, "", 8, 2, 0.1, true, batch_first);
    CHECK(m != NULL);
    if (!m) return;
    begin_golden_case(&m->base, c);
    aqa_tensor *xq = test_leaf_of(GOLDEN("%s.xq", c));
    aqa_tensor *xkv = self ? xq : test_leaf_of(GOLDEN("%s.xkv", c));
    aqa_tensor *am = GOLDEN_AS(TEST_AS_STORED, "%s.attn_mask", c), *kpm = GOLDEN_AS(TEST_AS_STORED, "%s.kpm", c);
    aqa_tensor *w = NULL;
    aqa_tensor *y = aqa_mha_layer_forward(m, xq, xkv, xkv, kpm, am, &w);
    CHECK_MSG(y != NULL, "forward: %s", aqa_last_error());
    CHECK_CLOSE("y", y, GOLDEN("%s.y", c), 1e-5, 1e-6);
    CHECK_CLOSE("w", w, GOLDEN("%s.w", c), 1e-5, 1e-6);
    CHECK(y && aqa_backward(y, GOLDEN("%s.gy", c), false) == AQA_OK);
    CHECK_CLOSE("xq->grad", xq->grad, GOLDEN("%s.gxq", c), 1e-4, 1e-5);
    if (!self) CHECK_CLOSE("xkv->grad", xkv->grad, GOLDEN("%s.gxkv", c), 1e-4, 1e-5);
    CHECK_CLOSE("m->in_proj_weight->grad", m->in_proj_weight->grad, GOLDEN("%s.g.in_proj_weight", c), 1e-4, 1e-5);
    CHECK_CLOSE("m->in_proj_bias->grad", m->in_proj_bias->grad, GOLDEN("%s.g.in_proj_bias", c), 1e-4, 1e-5);
    CHECK_CLOSE("m->out_proj->weight->grad", m->out_proj->weight->grad, GOLDEN("%s.g.out_proj.weight", c), 1e-4, 1e-5);
    aqa_scope_end();
    aqa_module_free(&m->base);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

static void test_mha_golden_self_seq_first(void) {
    if (!test_golden_open(GOLDEN_FILE)) { SKIP("%s absent", GOLDEN_FILE); return; }
    mha_golden_case("mha_a", false, true);
}

static void test_mha_golden_cross_batch_first(void) {
    if (!test_golden_open(GOLDEN_FILE)) { SKIP("%s absent", GOLDEN_FILE); return; }
    mha_golden_case("mha_b", true, false);
}

static void test_mha_init_and_dropout(void) {
    int64_t live = aqa_live_tensors();
    aqa_manual_seed(11);
    aqa_mha_layer *m = aqa_mha_layer_new(NULL, "", 16, 4, 0.5, true, true);
    CHECK(m != NULL);
    if (!m) return;
    aqa_scope_begin();
    /* xavier bound sqrt(6 / (16 + 48)); zero biases */
    double bound = sqrt(6.0 / 64.0);
    CHECK(aqa_item(aqa_max_all(aqa_abs(m->in_proj_weight))) <= bound);
    CHECK(aqa_item(aqa_max_all(aqa_abs(m->in_proj_weight))) > 0.8 * bound);
    CHECK_NEAR(aqa_item(aqa_sum_all(aqa_abs(m->in_proj_bias))), 0, 0);
    CHECK_NEAR(aqa_item(aqa_sum_all(aqa_abs(m->out_proj->bias))), 0, 0);
    CHECK(aqa_mha_layer_new(NULL, "", 10, 4, 0.0, true, true) == NULL); /* 10 not divisible by 4 */
    aqa_clear_error();
    /* dropout on the weights in training: seeded, differs from eval */
    aqa_tensor *x = aqa_randn(AQA_SHAPE(2, 5, 16), AQA_F32, NULL);
    aqa_generator g1 = {99, 0}, g2 = {99, 0};
    m->gen = &g1;
    aqa_tensor *w1 = NULL, *w2 = NULL, *we = NULL;
    aqa_tensor *y1 = aqa_mha_layer_forward(m, x, x, x, NULL, NULL, &w1);
    m->gen = &g2;
    aqa_tensor *y2 = aqa_mha_layer_forward(m, x, x, x, NULL, NULL, &w2);
    aqa_module_train(&m->base, false);
    aqa_tensor *ye = aqa_mha_layer_forward(m, x, x, x, NULL, NULL, &we);
    CHECK_CLOSE("y1", y1, y2, 0, 0);
    CHECK_CLOSE("w1", w1, w2, 0, 0);
    CHECK(ye && y1 && aqa_item(aqa_max_all(aqa_abs(aqa_sub(ye, y1)))) > 1e-3);
    /* eval weights are averaged probabilities: rows sum to 1 */
    CHECK_CLOSE("aqa_sum(we, 1, (const int[]){-1}, false)", aqa_sum(we, 1, (const int[]){-1}, false), aqa_ones(AQA_SHAPE(2, 5), AQA_F32), 1e-5, 1e-6);
    /* per-head weights average to the averaged ones */
    m->average_attn_weights = false;
    aqa_tensor *wh = NULL;
    aqa_tensor *yh = aqa_mha_layer_forward(m, x, x, x, NULL, NULL, &wh);
    CHECK(wh && wh->ndim == 4 && wh->shape[1] == 4);
    CHECK_CLOSE("yh", yh, ye, 0, 0);
    if (wh) CHECK_CLOSE("aqa_mean(wh, 1, (const int[]){1}, false)", aqa_mean(wh, 1, (const int[]){1}, false), we, 1e-6, 1e-7);
    m->average_attn_weights = true;
    /* unbatched input gives the batch-of-one result without the batch dim */
    aqa_tensor *wu = NULL;
    aqa_tensor *yu = aqa_mha_layer_forward(m, aqa_select(x, 0, 1), aqa_select(x, 0, 1), aqa_select(x, 0, 1), NULL, NULL, &wu);
    CHECK_CLOSE("yu", yu, aqa_select(ye, 0, 1), 1e-6, 1e-7);
    CHECK_CLOSE("wu", wu, aqa_select(we, 0, 1), 1e-6, 1e-7);
    m->gen = NULL;
    aqa_scope_end();
    aqa_module_free(&m->base);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

/* ---- TransformerEncoderLayer / TransformerEncoder ------------------------------------------------------ */

static aqa_transformer_config small_config(bool norm_first, bool batch_first) {
    aqa_transformer_config c = aqa_transformer_config_default(8, 2);
    c.dim_feedforward = 16;
    c.activation = AQA_ACT_GELU;
    c.norm_first = norm_first;
    c.batch_first = batch_first;
    return c;
}

static void tel_golden_case(const char *c, bool norm_first, bool batch_first, bool with_kpm) {
    int64_t live = aqa_live_tensors();
    aqa_transformer_config cfg = small_config(norm_first, batch_first);
    aqa_transformer_encoder_layer *m = aqa_transformer_encoder_layer_new(NULL, "", &cfg);
    CHECK(m != NULL);
    if (!m) return;
    begin_golden_case(&m->base, c);
    aqa_tensor *x = test_leaf_of(GOLDEN("%s.x", c));
    aqa_tensor *kpm = with_kpm ? GOLDEN_AS(TEST_AS_STORED, "%s.kpm", c) : NULL;
    aqa_tensor *y = aqa_transformer_encoder_layer_forward(m, x, NULL, kpm);
    CHECK_MSG(y != NULL, "forward: %s", aqa_last_error());
    CHECK_CLOSE("y", y, GOLDEN("%s.y", c), 1e-5, 1e-5);
    CHECK(y && aqa_backward(y, GOLDEN("%s.gy", c), false) == AQA_OK);
    CHECK_CLOSE("x->grad", x->grad, GOLDEN("%s.gx", c), 1e-4, 1e-5);
    CHECK_CLOSE("m->self_attn->in_proj_weight->grad", m->self_attn->in_proj_weight->grad, GOLDEN("%s.g.self_attn.in_proj_weight", c), 1e-4, 1e-5);
    CHECK_CLOSE("m->linear1->weight->grad", m->linear1->weight->grad, GOLDEN("%s.g.linear1.weight", c), 1e-4, 1e-5);
    CHECK_CLOSE("m->linear2->bias->grad", m->linear2->bias->grad, GOLDEN("%s.g.linear2.bias", c), 1e-4, 1e-5);
    CHECK_CLOSE("m->norm1->weight->grad", m->norm1->weight->grad, GOLDEN("%s.g.norm1.weight", c), 1e-4, 1e-5);
    aqa_scope_end();
    aqa_module_free(&m->base);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

static void test_tel_golden_post_norm(void) {
    if (!test_golden_open(GOLDEN_FILE)) { SKIP("%s absent", GOLDEN_FILE); return; }
    tel_golden_case("tel_post", false, false, true);
}

static void test_tel_golden_pre_norm(void) {
    if (!test_golden_open(GOLDEN_FILE)) { SKIP("%s absent", GOLDEN_FILE); return; }
    tel_golden_case("tel_pre", true, true, false);
}

/* A torch state_dict (stored by the golden script) loaded with aqa_module_load reproduces torch. */
static void test_tel_load_state_dict(void) {
    if (!test_golden_open(GOLDEN_FILE)) { SKIP("%s absent", GOLDEN_FILE); return; }
    int64_t live = aqa_live_tensors();
    aqa_transformer_config cfg = small_config(false, false);
    aqa_transformer_encoder_layer *m = aqa_transformer_encoder_layer_new(NULL, "", &cfg);
    CHECK(m != NULL);
    if (!m) return;
    aqa_module_train(&m->base, false);
    aqa_load_report rep;
    memset(&rep, 0, sizeof rep);
    aqa_status st = aqa_module_load(&m->base, test_data_path(GOLDEN_FILE), false, test_strip_prefix, "tel_post.sd.", &rep);
    CHECK_MSG(st == AQA_OK, "load: %s", aqa_last_error());
    CHECK_EQ_INT(rep.n_loaded, 12);
    CHECK_EQ_INT(rep.n_missing, 0);
    CHECK_EQ_INT(rep.n_mismatched, 0);
    aqa_scope_begin();
    aqa_tensor *y = aqa_transformer_encoder_layer_forward(m, GOLDEN("tel_post.x"), NULL, GOLDEN_AS(TEST_AS_STORED, "tel_post.kpm"));
    CHECK_CLOSE("y", y, GOLDEN("tel_post.y"), 1e-5, 1e-5);
    aqa_scope_end();
    aqa_module_free(&m->base);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

static void test_encoder_stack(void) {
    int64_t live = aqa_live_tensors();
    aqa_transformer_config cfg = aqa_transformer_config_default(8, 2);
    cfg.dim_feedforward = 16;
    aqa_manual_seed(21);
    aqa_transformer_encoder *enc = aqa_transformer_encoder_new(NULL, "", &cfg, 2, true);
    CHECK(enc != NULL);
    if (!enc) return;
    if (test_golden_open(GOLDEN_FILE)) CHECK_NAMES(&enc->base, "encoder.keys");
    aqa_module_train(&enc->base, false);
    aqa_scope_begin();
    aqa_tensor *x = aqa_randn(AQA_SHAPE(5, 3, 8), AQA_F32, NULL);
    aqa_tensor *mask = aqa_causal_mask(5, AQA_F32);
    aqa_tensor *y = aqa_transformer_encoder_forward(enc, x, mask, NULL);
    aqa_tensor *r = x;
    for (int i = 0; i < 2; i++) r = aqa_transformer_encoder_layer_forward(aqa_transformer_encoder_layer_at(enc, i), r, mask, NULL);
    r = aqa_layer_norm_layer_forward(enc->norm, r);
    CHECK_CLOSE("y", y, r, 0, 0);
    CHECK(aqa_module_find(&enc->base, "layers.1.self_attn.out_proj") != NULL);
    CHECK(aqa_module_get(&enc->base, "layers.0.linear2.weight") == aqa_transformer_encoder_layer_at(enc, 0)->linear2->weight);
    /* training mode draws different dropout masks: outputs differ but stay finite */
    aqa_module_train(&enc->base, true);
    aqa_tensor *yt = aqa_transformer_encoder_forward(enc, x, mask, NULL);
    CHECK(yt && aqa_item(aqa_max_all(aqa_abs(aqa_sub(yt, y)))) > 1e-4);
    CHECK(yt && isfinite(aqa_item(aqa_sum_all(yt))));
    aqa_scope_end();
    aqa_module_free(&enc->base);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

/* ---- CUDA: the same layers on the GPU agree with the CPU (skipped without a CUDA backend) ---------- */

static void test_cuda_parity(void) {
    aqa_device cuda = aqa_cuda_device(0);
    if (!aqa_backend_for(cuda)) {
        aqa_clear_error();
        SKIP("no CUDA backend or device");
        return;
    }
    int64_t live = aqa_live_tensors();
    aqa_transformer_config cfg = small_config(true, true);
    cfg.dropout = 0.0;
    aqa_manual_seed(17);
    aqa_transformer_encoder_layer *m = aqa_transformer_encoder_layer_new(NULL, "", &cfg);
    CHECK(m != NULL);
    if (!m) return;
    aqa_scope_begin();
    aqa_tensor *x = aqa_randn(AQA_SHAPE(3, 6, 8), AQA_F32, NULL);
    aqa_tensor *gy = aqa_randn(AQA_SHAPE(3, 6, 8), AQA_F32, NULL);
    aqa_tensor *kpm = aqa_from_data((bool[]){0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1}, AQA_SHAPE(3, 6), AQA_BOOL);
    aqa_tensor *xc = test_leaf_of(x);
    aqa_tensor *yc = aqa_transformer_encoder_layer_forward(m, xc, aqa_causal_mask(6, AQA_F32), kpm);
    CHECK(yc && aqa_backward(yc, gy, false) == AQA_OK);
    aqa_tensor *gw_cpu = aqa_clone(m->self_attn->in_proj_weight->grad);
    aqa_tensor *gl_cpu = aqa_clone(m->linear1->weight->grad);
    aqa_module_zero_grad(&m->base);
    CHECK_MSG(aqa_module_to(&m->base, cuda) == AQA_OK, "module to cuda: %s", aqa_last_error());
    aqa_tensor *xg = aqa_requires_grad(aqa_detach(aqa_to_device(x, cuda)), true);
    aqa_tensor *yg = aqa_transformer_encoder_layer_forward(m, xg, aqa_to_device(aqa_causal_mask(6, AQA_F32), cuda),
                                                           aqa_to_device(kpm, cuda));
    CHECK_MSG(yg != NULL, "cuda forward: %s", aqa_last_error());
    CHECK(yg && aqa_device_equal(aqa_tensor_device(yg), cuda));
    CHECK(yg && aqa_backward(yg, aqa_to_device(gy, cuda), false) == AQA_OK);
    CHECK_CLOSE("yg", yg, yc, 1e-4, 1e-5);
    CHECK_CLOSE("xg->grad", xg->grad, xc->grad, 1e-4, 1e-5);
    CHECK_CLOSE("m->self_attn->in_proj_weight->grad", m->self_attn->in_proj_weight->grad, gw_cpu, 1e-4, 1e-5);
    CHECK_CLOSE("m->linear1->weight->grad", m->linear1->weight->grad, gl_cpu, 1e-4, 1e-5);
    aqa_tensor_free(gw_cpu);
    aqa_tensor_free(gl_cpu);
    aqa_scope_end();
    aqa_module_free(&m->base);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

/* The composed (device-generic) attention softmax and LayerNorm, run on the CPU: what a device
 * without the fused kernels computes must match too. */
static void test_composed_paths(void) {
    aqa__nn_force_composed = true;
    test_sdpa_gradcheck();
    test_sdpa_vs_composed();
    test_mha_gradcheck();
    if (test_golden_open(GOLDEN_FILE)) {
        mha_golden_case("mha_a", false, true);
        mha_golden_case("mha_b", true, false);
        tel_golden_case("tel_post", false, false, true);
        tel_golden_case("tel_pre", true, true, false);
    }
    aqa__nn_force_composed = false;
}

int main(void) {
    RUN(test_sdpa_gradcheck);
    RUN(test_sdpa_vs_composed);
    RUN(test_mha_gradcheck);
    RUN(test_mha_golden_self_seq_first);
    RUN(test_mha_golden_cross_batch_first);
    RUN(test_mha_init_and_dropout);
    RUN(test_tel_golden_post_norm);
    RUN(test_tel_golden_pre_norm);
    RUN(test_tel_load_state_dict);
    RUN(test_encoder_stack);
    RUN(test_composed_paths);
    RUN(test_cuda_parity);
    test_golden_close();
    return test_finish();
}
