/* test_transformer_decoder.c: TransformerDecoderLayer and TransformerDecoder (nn/transformer.c):
 * gradchecks in f64 of target, memory and weights; parity with PyTorch
 * (tests/data/golden_seq_layers.safetensors from scripts/gen_golden_seq_layers.py) for post-norm
 * with a causal target mask and padding masks, pre-norm batch-first with a float memory mask, and
 * a 2-layer stack with a final norm loaded from torch's state_dict: outputs, target, memory and
 * every weight gradient, state_dict names; dropout; errors; leak checks. */
#define GOLDEN_FILE "golden_seq_layers.safetensors"
#define TEST_GRAD_TOL 1e-6, 1e-6, 1e-5
#include "tests/test_util.h"

#include "nn/transformer.h"

static aqa_transformer_config small_config(bool norm_first, bool batch_first, aqa_activation_kind act) {
    aqa_transformer_config c = aqa_transformer_config_default(8, 2);
    c.dim_feedforward = 16;
    c.activation = act;
    c.norm_first = norm_first;
    c.batch_first = batch_first;
    return c;
}

/* ---- gradcheck ------------------------------------------------------------------------------------- */

typedef struct dec_args {
    aqa_transformer_decoder_layer *m; /* float64, eval mode */
    aqa_tensor *tgt_mask, *memory_kpm; /* may be NULL */
} dec_args;

/* in: tgt, memory, then parameters of the layer (perturbed in place) */
static aqa_tensor *dec_fn(aqa_tensor *const *in, int n, void *user) {
    (void)n;
    dec_args *a = user;
    return aqa_transformer_decoder_layer_forward(a->m, in[0], in[1], a->tgt_mask, NULL, NULL, a->memory_kpm);
}

static void test_decoder_layer_gradcheck(void) {
    aqa_generator g = {test_seed("decoder gradcheck"), 0};
    for (int norm_first = 0; norm_first < 2; norm_first++) {
        aqa_transformer_config cfg = small_config(norm_first, norm_first, AQA_ACT_GELU);
        aqa_transformer_decoder_layer *m = aqa_transformer_decoder_layer_new(NULL, "", &cfg);
        CHECK(m != NULL);
        if (!m) continue;
        aqa_module_train(&m->base, false);
        CHECK(aqa_module_to_dtype(&m->base, AQA_F64) == AQA_OK);
        aqa_scope_begin();
        int64_t T = 4, S = 5, N = 2;
        aqa_tensor *tgt = test_rand_leaf(&g, 3, norm_first ? (int64_t[]){N, T, 8} : (int64_t[]){T, N, 8}, AQA_F64, 1.0);
        aqa_tensor *mem = test_rand_leaf(&g, 3, norm_first ? (int64_t[]){N, S, 8} : (int64_t[]){S, N, 8}, AQA_F64, 1.0);
        aqa_tensor *kpm = aqa_from_data((bool[]){0, 0, 0, 0, 1, 0, 0, 1, 1, 0}, AQA_SHAPE(2, 5), AQA_BOOL);
        dec_args a = {m, aqa_causal_mask(T, AQA_F64), kpm};
        CHECK_GRAD(dec_fn, ((aqa_tensor *[]){tgt, mem, m->multihead_attn->in_proj_weight, m->self_attn->out_proj->weight,
                                            m->norm2->weight, m->linear1->bias}),
                   6, &a);
        aqa_scope_end();
        aqa_module_free(&m->base);
    }
}

/* ---- parity with torch -------------------------------------------------------------------------------- */

/* Golden case c for a layer (stack == NULL) or a stack: names as torch's, parameters from
 * "<c>.p.*" (or, for the stack, loaded from the stored state_dict with aqa_module_load), then
 * outputs and every gradient. */
static void golden_decoder(const char *c, aqa_module *m, aqa_transformer_decoder_layer *layer,
                           aqa_transformer_decoder *stack) {
    char key[64];
    aqa_module_train(m, false);
    snprintf(key, sizeof key, "%s.keys", c);
    CHECK_NAMES(m, key);
    if (stack) {
        aqa_load_report rep;
        memset(&rep, 0, sizeof rep);
        snprintf(key, sizeof key, "%s.sd.", c);
        CHECK_MSG(aqa_module_load(m, test_data_path(GOLDEN_FILE), false, test_strip_prefix, key, &rep) == AQA_OK,
                  "load: %s", aqa_last_error());
        CHECK_EQ_INT(rep.n_missing, 0);
        CHECK_EQ_INT(rep.n_mismatched, 0);
        CHECK_EQ_INT(rep.n_loaded, 2 * 18 + 2);
    } else {
        snprintf(key, sizeof key, "%s.p.", c);
        GOLDEN_INTO_MODULE(m, key, false);
    }
    aqa_scope_begin();
    aqa_tensor *x = test_leaf_of(GOLDEN("%s.x", c)), *mem = test_leaf_of(GOLDEN("%s.mem", c));
    snprintf(key, sizeof key, "%s.tgt_mask", c);
    aqa_tensor *tm = aqa_st_find(test_golden_file, key) >= 0 ? GOLDEN_AS(TEST_AS_STORED, "%s", key) : NULL;
    snprintf(key, sizeof key, "%s.memory_mask", c);
    aqa_tensor *mm = aqa_st_find(test_golden_file, key) >= 0 ? GOLDEN_AS(TEST_AS_STORED, "%s", key) : NULL;
    snprintf(key, sizeof key, "%s.tkpm", c);
    aqa_tensor *tk = aqa_st_find(test_golden_file, key) >= 0 ? GOLDEN_AS(TEST_AS_STORED, "%s", key) : NULL;
    snprintf(key, sizeof key, "%s.mkpm", c);
    aqa_tensor *mk = aqa_st_find(test_golden_file, key) >= 0 ? GOLDEN_AS(TEST_AS_STORED, "%s", key) : NULL;
    aqa_tensor *y = stack ? aqa_transformer_decoder_forward(stack, x, mem, tm, mm, tk, mk)
                          : aqa_transformer_decoder_layer_forward(layer, x, mem, tm, mm, tk, mk);
    CHECK_MSG(y != NULL, "forward: %s", aqa_last_error());
    CHECK_CLOSE("y", y, GOLDEN("%s.y", c), 1e-5, 1e-5);
    CHECK(y && aqa_backward(y, GOLDEN("%s.gy", c), false) == AQA_OK);
    CHECK_CLOSE("tgt->grad", x->grad, GOLDEN("%s.gx", c), 1e-4, 1e-5);
    CHECK_CLOSE("memory->grad", mem->grad, GOLDEN("%s.gmem", c), 1e-4, 1e-5);
    snprintf(key, sizeof key, "%s.g.", c);
    CHECK_PARAM_GRADS(m, key, 1e-4, 1e-5);
    aqa_scope_end();
}

/* post-norm, relu, [T, N, E], causal float target mask, bool target and memory padding masks */
static void test_decoder_layer_golden_post_norm(void) {
    if (!test_golden_open(GOLDEN_FILE)) { SKIP("%s absent", GOLDEN_FILE); return; }
    int64_t live = aqa_live_tensors();
    aqa_transformer_config cfg = small_config(false, false, AQA_ACT_RELU);
    aqa_transformer_decoder_layer *m = aqa_transformer_decoder_layer_new(NULL, "", &cfg);
    CHECK(m != NULL);
    if (m) golden_decoder("dec_post", &m->base, m, NULL);
    aqa_module_free(m ? &m->base : NULL);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

/* pre-norm, gelu, batch first, float memory mask, memory padding mask */
static void test_decoder_layer_golden_pre_norm(void) {
    if (!test_golden_open(GOLDEN_FILE)) { SKIP("%s absent", GOLDEN_FILE); return; }
    int64_t live = aqa_live_tensors();
    aqa_transformer_config cfg = small_config(true, true, AQA_ACT_GELU);
    aqa_transformer_decoder_layer *m = aqa_transformer_decoder_layer_new(NULL, "", &cfg);
    CHECK(m != NULL);
    if (m) golden_decoder("dec_pre", &m->base, m, NULL);
    aqa_module_free(m ? &m->base : NULL);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

/* TransformerDecoder(2 layers, final LayerNorm), batch first, causal; torch's state_dict loaded */
static void test_decoder_stack_golden(void) {
    if (!test_golden_open(GOLDEN_FILE)) { SKIP("%s absent", GOLDEN_FILE); return; }
    int64_t live = aqa_live_tensors();
    aqa_transformer_config cfg = small_config(false, true, AQA_ACT_RELU);
    aqa_transformer_decoder *m = aqa_transformer_decoder_new(NULL, "", &cfg, 2, true);
    CHECK(m != NULL);
    if (m) golden_decoder("dec_stack", &m->base, NULL, m);
    aqa_module_free(m ? &m->base : NULL);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

/* ---- the module ------------------------------------------------------------------------------------ */

static void test_decoder_module(void) {
    int64_t live = aqa_live_tensors();
    aqa_transformer_config cfg = small_config(false, true, AQA_ACT_RELU);
    aqa_manual_seed(4);
    aqa_transformer_decoder *m = aqa_transformer_decoder_new(NULL, "dec", &cfg, 2, false);
    aqa_transformer_config nb = cfg;
    nb.bias = false;
    aqa_transformer_decoder_layer *l = aqa_transformer_decoder_layer_new(NULL, "nb", &nb);
    CHECK(m && l);
    if (!m || !l) {
        aqa_module_free(m ? &m->base : NULL);
        aqa_module_free(l ? &l->base : NULL);
        return;
    }
    CHECK(m->norm == NULL && aqa_transformer_decoder_layer_at(m, 2) == NULL);
    CHECK(aqa_module_get(&m->base, "layers.1.multihead_attn.in_proj_weight") ==
          aqa_transformer_decoder_layer_at(m, 1)->multihead_attn->in_proj_weight);
    /* bias=False: no biases anywhere, norms keep their weights */
    CHECK(l->norm3->bias == NULL && l->norm3->weight != NULL && l->linear1->bias == NULL);
    CHECK(aqa_module_get(&l->base, "multihead_attn.in_proj_bias") == NULL);
    aqa_scope_begin();
    aqa_tensor *x = aqa_randn(AQA_SHAPE(2, 4, 8), AQA_F32, NULL), *mem = aqa_randn(AQA_SHAPE(2, 7, 8), AQA_F32, NULL);
    /* the stack is its layers in turn; dropout in training only, reproducible per generator */
    aqa_module_train(&m->base, false);
    aqa_tensor *y = aqa_transformer_decoder_forward(m, x, mem, NULL, NULL, NULL, NULL);
    aqa_tensor *r = x;
    for (int i = 0; i < 2; i++)
        r = aqa_transformer_decoder_layer_forward(aqa_transformer_decoder_layer_at(m, i), r, mem, NULL, NULL, NULL, NULL);
    CHECK_CLOSE("stack", y, r, 0, 0);
    aqa_module_train(&l->base, true);
    aqa_generator g1 = {8, 0}, g2 = {8, 0};
    aqa_transformer_decoder_layer_set_generator(l, &g1);
    aqa_tensor *t1 = aqa_transformer_decoder_layer_forward(l, x, mem, NULL, NULL, NULL, NULL);
    aqa_transformer_decoder_layer_set_generator(l, &g2);
    aqa_tensor *t2 = aqa_transformer_decoder_layer_forward(l, x, mem, NULL, NULL, NULL, NULL);
    aqa_module_train(&l->base, false);
    aqa_tensor *te = aqa_transformer_decoder_layer_forward(l, x, mem, NULL, NULL, NULL, NULL);
    CHECK_CLOSE("same generator", t1, t2, 0, 0);
    CHECK(t1 && te && aqa_item(aqa_max_all(aqa_abs(aqa_sub(t1, te)))) > 1e-4);
    aqa_transformer_decoder_layer_set_generator(l, NULL);
    /* errors */
    CHECK(aqa_transformer_decoder_layer_forward(l, x, NULL, NULL, NULL, NULL, NULL) == NULL);
    CHECK(strstr(aqa_last_error(), "NULL memory") != NULL);
    CHECK(aqa_transformer_decoder_forward(m, x, aqa_randn(AQA_SHAPE(2, 7, 6), AQA_F32, NULL), NULL, NULL, NULL, NULL) == NULL);
    aqa_clear_error();
    aqa_scope_end();
    aqa_module_free(&m->base);
    aqa_module_free(&l->base);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

int main(void) {
    RUN(test_decoder_layer_gradcheck);
    RUN(test_decoder_layer_golden_post_norm);
    RUN(test_decoder_layer_golden_pre_norm);
    RUN(test_decoder_stack_golden);
    RUN(test_decoder_module);
    test_golden_close();
    return test_finish();
}
