/* test_rnn.c: LSTM and GRU (nn/rnn.c): gradchecks in f64 of inputs, initial states and weights;
 * parity with PyTorch (tests/data/golden_seq_layers.safetensors from
 * scripts/gen_golden_seq_layers.py): outputs, final states, input, state and weight gradients for
 * stacked, bidirectional, batch-first, bias-free and unbatched layers; state_dict names and
 * order; initialisation; dropout between layers; argument errors; leak checks. */
#define GOLDEN_FILE "golden_seq_layers.safetensors"
#define TEST_GRAD_TOL 1e-6, 1e-6, 1e-5
#include "tests/test_util.h"

#include "nn/rnn.h"

/* ---- gradchecks ------------------------------------------------------------------------------------ */

/* in: x, h0, c0 (LSTM) and some of the module's own parameters (perturbed in place by the check). */
typedef struct rnn_args {
    aqa_rnn_layer *m; /* the layer (float64) */
    bool states;      /* in[1] (and in[2] for LSTM) are h0 (c0) */
} rnn_args;

/* y, h_n and c_n joined into one flat output, so every output is checked. */
static aqa_tensor *rnn_fn(aqa_tensor *const *in, int n, void *user) {
    (void)n;
    rnn_args *a = user;
    bool lstm = a->m->mode == AQA_RNN_LSTM;
    aqa_tensor *hn = NULL, *cn = NULL;
    aqa_tensor *y = lstm ? aqa_lstm_layer_forward(a->m, in[0], a->states ? in[1] : NULL, a->states ? in[2] : NULL, &hn, &cn)
                         : aqa_gru_layer_forward(a->m, in[0], a->states ? in[1] : NULL, &hn);
    if (!y) return NULL;
    aqa_tensor *parts[3] = {aqa_flatten(y, 0, -1), aqa_flatten(hn, 0, -1), lstm ? aqa_flatten(cn, 0, -1) : NULL};
    return aqa_cat(parts, lstm ? 3 : 2, 0);
}

/* A float64 layer of the mode and config, gradchecked with random x (and states) plus three of its
 * parameters: layer 0's weight_ih, the last layer's weight_hh (reverse direction when
 * bidirectional) and bias_hh (when biased). */
static void gradcheck_rnn(aqa_rnn_mode mode, aqa_rnn_config cfg, int64_t L, int64_t N, bool states, bool unbatched) {
    aqa_generator g = {test_seed("rnn gradcheck"), 0};
    aqa_rnn_layer *m = mode == AQA_RNN_LSTM ? aqa_lstm_layer_new(NULL, "", &cfg) : aqa_gru_layer_new(NULL, "", &cfg);
    CHECK(m != NULL);
    if (!m) return;
    CHECK(aqa_module_to_dtype(&m->base, AQA_F64) == AQA_OK);
    aqa_scope_begin();
    int64_t D = m->num_directions, DL = D * cfg.num_layers, H = cfg.hidden_size;
    aqa_tensor *x = unbatched ? test_rand_leaf(&g, AQA_SHAPE(L, cfg.input_size), AQA_F64, 1.0)
                    : cfg.batch_first ? test_rand_leaf(&g, AQA_SHAPE(N, L, cfg.input_size), AQA_F64, 1.0)
                                      : test_rand_leaf(&g, AQA_SHAPE(L, N, cfg.input_size), AQA_F64, 1.0);
    aqa_tensor *in[8];
    int n = 0;
    in[n++] = x;
    if (states) {
        in[n++] = unbatched ? test_rand_leaf(&g, AQA_SHAPE(DL, H), AQA_F64, 0.5) : test_rand_leaf(&g, AQA_SHAPE(DL, N, H), AQA_F64, 0.5);
        if (mode == AQA_RNN_LSTM)
            in[n++] = unbatched ? test_rand_leaf(&g, AQA_SHAPE(DL, H), AQA_F64, 0.5) : test_rand_leaf(&g, AQA_SHAPE(DL, N, H), AQA_F64, 0.5);
    }
    in[n++] = aqa_rnn_param(m, 0, 0, 0);
    in[n++] = aqa_rnn_param(m, cfg.num_layers - 1, (int)D - 1, 1);
    if (cfg.bias) in[n++] = aqa_rnn_param(m, cfg.num_layers - 1, 0, 3);
    rnn_args a = {m, states};
    CHECK_GRAD(rnn_fn, in, n, &a);
    aqa_scope_end();
    aqa_module_free(&m->base);
}

static void test_lstm_gradcheck(void) {
    aqa_rnn_config c = aqa_rnn_config_default(3, 4);
    c.num_layers = 2;
    c.bidirectional = true;
    gradcheck_rnn(AQA_RNN_LSTM, c, 4, 2, true, false);
    c = aqa_rnn_config_default(3, 2);
    c.batch_first = true;
    gradcheck_rnn(AQA_RNN_LSTM, c, 3, 2, false, false); /* zero initial states */
    c.bias = false;
    gradcheck_rnn(AQA_RNN_LSTM, c, 3, 1, true, true);   /* unbatched, no bias */
}

static void test_gru_gradcheck(void) {
    aqa_rnn_config c = aqa_rnn_config_default(3, 4);
    c.num_layers = 2;
    c.bidirectional = true;
    gradcheck_rnn(AQA_RNN_GRU, c, 4, 2, true, false);
    c = aqa_rnn_config_default(3, 2);
    c.batch_first = true;
    gradcheck_rnn(AQA_RNN_GRU, c, 3, 2, false, false);
    c.bias = false;
    gradcheck_rnn(AQA_RNN_GRU, c, 3, 1, true, true);
}

/* ---- parity with torch -------------------------------------------------------------------------------- */

/* Golden case c: the layer built from cfg has torch's state_dict names; with torch's parameters
 * its outputs, final states and every gradient match. */
static void golden_rnn(const char *c, aqa_rnn_mode mode, aqa_rnn_config cfg, bool states) {
    if (!test_golden_open(GOLDEN_FILE)) { SKIP("%s absent", GOLDEN_FILE); return; }
    int64_t live = aqa_live_tensors();
    bool lstm = mode == AQA_RNN_LSTM;
    aqa_rnn_layer *m = lstm ? aqa_lstm_layer_new(NULL, "", &cfg) : aqa_gru_layer_new(NULL, "", &cfg);
    CHECK(m != NULL);
    if (!m) return;
    char key[64];
    snprintf(key, sizeof key, "%s.keys", c);
    CHECK_NAMES(&m->base, key);
    snprintf(key, sizeof key, "%s.p.", c);
    GOLDEN_INTO_MODULE(&m->base, key, false);
    aqa_scope_begin();
    aqa_tensor *x = test_leaf_of(GOLDEN("%s.x", c));
    aqa_tensor *h0 = states ? test_leaf_of(GOLDEN("%s.h0", c)) : NULL;
    aqa_tensor *c0 = states && lstm ? test_leaf_of(GOLDEN("%s.c0", c)) : NULL;
    aqa_tensor *hn = NULL, *cn = NULL;
    aqa_tensor *y = lstm ? aqa_lstm_layer_forward(m, x, h0, c0, &hn, &cn) : aqa_gru_layer_forward(m, x, h0, &hn);
    CHECK_MSG(y != NULL, "forward: %s", aqa_last_error());
    CHECK_CLOSE("y", y, GOLDEN("%s.y", c), 1e-5, 1e-6);
    CHECK_CLOSE("h_n", hn, GOLDEN("%s.hn", c), 1e-5, 1e-6);
    if (lstm) CHECK_CLOSE("c_n", cn, GOLDEN("%s.cn", c), 1e-5, 1e-6);
    if (y && hn && (!lstm || cn)) {
        aqa_tensor *loss = aqa_add(aqa_sum_all(aqa_mul(y, GOLDEN("%s.gy", c))), aqa_sum_all(aqa_mul(hn, GOLDEN("%s.ghn", c))));
        if (lstm) loss = aqa_add(loss, aqa_sum_all(aqa_mul(cn, GOLDEN("%s.gcn", c))));
        CHECK(aqa_backward(loss, NULL, false) == AQA_OK);
        CHECK_CLOSE("x->grad", x->grad, GOLDEN("%s.gx", c), 1e-4, 1e-5);
        if (h0) CHECK_CLOSE("h0->grad", h0->grad, GOLDEN("%s.gh0", c), 1e-4, 1e-5);
        if (c0) CHECK_CLOSE("c0->grad", c0->grad, GOLDEN("%s.gc0", c), 1e-4, 1e-5);
        snprintf(key, sizeof key, "%s.g.", c);
        CHECK_PARAM_GRADS(&m->base, key, 1e-4, 1e-5);
    }
    aqa_scope_end();
    aqa_module_free(&m->base);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

static aqa_rnn_config cfg_of(int64_t in, int64_t H, int layers, bool bidir, bool batch_first, bool bias) {
    aqa_rnn_config c = aqa_rnn_config_default(in, H);
    c.num_layers = layers;
    c.bidirectional = bidir;
    c.batch_first = batch_first;
    c.bias = bias;
    return c;
}

/* 2 layers, bidirectional, [L, N, in], given h0 and c0 */
static void test_lstm_golden_stacked_bidirectional(void) {
    golden_rnn("lstm_a", AQA_RNN_LSTM, cfg_of(4, 3, 2, true, false, true), true);
}
/* batch_first, no bias, zero initial states */
static void test_lstm_golden_batch_first_no_bias(void) {
    golden_rnn("lstm_b", AQA_RNN_LSTM, cfg_of(5, 6, 1, false, true, false), false);
}
/* unbatched [L, in], 2 layers */
static void test_lstm_golden_unbatched(void) {
    golden_rnn("lstm_u", AQA_RNN_LSTM, cfg_of(3, 4, 2, false, false, true), true);
}
static void test_gru_golden_stacked_bidirectional(void) {
    golden_rnn("gru_a", AQA_RNN_GRU, cfg_of(4, 3, 2, true, false, true), true);
}
static void test_gru_golden_batch_first(void) {
    golden_rnn("gru_b", AQA_RNN_GRU, cfg_of(5, 6, 1, false, true, true), false);
}
/* unbatched, bidirectional, no bias */
static void test_gru_golden_unbatched(void) {
    golden_rnn("gru_u", AQA_RNN_GRU, cfg_of(3, 4, 1, true, false, false), true);
}

/* ---- the module ------------------------------------------------------------------------------------ */

static void test_rnn_module(void) {
    int64_t live = aqa_live_tensors();
    aqa_rnn_config cfg = cfg_of(5, 16, 2, true, false, true);
    cfg.dropout = 0.5;
    aqa_manual_seed(3);
    aqa_rnn_layer *m = aqa_lstm_layer_new(NULL, "lstm", &cfg);
    aqa_rnn_layer *g = aqa_gru_layer_new(NULL, "gru", &cfg);
    CHECK(m && g);
    if (!m || !g) {
        aqa_module_free(m ? &m->base : NULL);
        aqa_module_free(g ? &g->base : NULL);
        return;
    }
    CHECK_STR(m->base.type, "LSTM");
    CHECK_STR(g->base.type, "GRU");
    /* shapes: gates x hidden, layer 1 reads both directions */
    CHECK(test_shape_is(aqa_rnn_param(m, 0, 0, 0), AQA_SHAPE(64, 5)));
    CHECK(test_shape_is(aqa_rnn_param(m, 1, 1, 0), AQA_SHAPE(64, 32)));
    CHECK(test_shape_is(aqa_rnn_param(g, 1, 0, 1), AQA_SHAPE(48, 16)));
    CHECK(aqa_module_get(&m->base, "weight_hh_l1_reverse") == aqa_rnn_param(m, 1, 1, 1));
    CHECK(aqa_rnn_param(m, 2, 0, 0) == NULL && aqa_rnn_param(m, 0, 2, 0) == NULL);
    CHECK_EQ_INT(aqa_module_num_params(&m->base, false), 4 * 16 * (5 + 16 + 2) * 2 + 4 * 16 * (32 + 16 + 2) * 2);
    aqa_scope_begin();
    /* U(-1/4, 1/4) for H = 16, every parameter */
    double mx = 0;
    aqa_named_tensor *list = NULL;
    int n = aqa_module_named_tensors(&m->base, false, &list);
    for (int i = 0; i < n; i++) mx = fmax(mx, aqa_item(aqa_max_all(aqa_abs(list[i].tensor))));
    aqa_named_tensors_free(list, n);
    CHECK(mx <= 0.25 && mx > 0.24);
    /* dropout between the layers in training only: seeded, differs from eval */
    aqa_tensor *x = aqa_randn(AQA_SHAPE(6, 2, 5), AQA_F32, NULL);
    aqa_generator g1 = {5, 0}, g2 = {5, 0};
    m->gen = &g1;
    aqa_tensor *y1 = aqa_lstm_layer_forward(m, x, NULL, NULL, NULL, NULL);
    m->gen = &g2;
    aqa_tensor *y2 = aqa_lstm_layer_forward(m, x, NULL, NULL, NULL, NULL);
    aqa_module_train(&m->base, false);
    aqa_tensor *ye = aqa_lstm_layer_forward(m, x, NULL, NULL, NULL, NULL);
    CHECK(y1 && y2 && ye && test_shape_is(ye, AQA_SHAPE(6, 2, 32)));
    CHECK_CLOSE("y1", y1, y2, 0, 0);
    CHECK(y1 && ye && aqa_item(aqa_max_all(aqa_abs(aqa_sub(ye, y1)))) > 1e-3);
    m->gen = NULL;
    /* the forward direction's last output is its final state, the reverse one's first output its own */
    aqa_tensor *hn = NULL;
    aqa_tensor *yg = aqa_gru_layer_forward(g, x, NULL, &hn);
    CHECK(yg && hn && test_shape_is(hn, AQA_SHAPE(4, 2, 16)));
    if (yg && hn) {
        aqa_module_train(&g->base, false);
        yg = aqa_gru_layer_forward(g, x, NULL, &hn);
        CHECK_CLOSE("forward final state", aqa_select(hn, 0, 2), aqa_narrow(aqa_select(yg, 0, 5), -1, 0, 16), 0, 0);
        CHECK_CLOSE("reverse final state", aqa_select(hn, 0, 3), aqa_narrow(aqa_select(yg, 0, 0), -1, 16, 16), 0, 0);
    }
    /* errors name the layer and the argument */
    CHECK(aqa_lstm_layer_forward(m, aqa_zeros(AQA_SHAPE(6, 2, 4), AQA_F32), NULL, NULL, NULL, NULL) == NULL);
    CHECK(strstr(aqa_last_error(), "LSTM lstm: input has shape [6, 2, 4]") != NULL);
    CHECK(aqa_lstm_layer_forward(m, x, aqa_zeros(AQA_SHAPE(2, 2, 16), AQA_F32), NULL, NULL, NULL) == NULL);
    CHECK(strstr(aqa_last_error(), "h0 has shape [2, 2, 16], expected [4, 2, 16]") != NULL);
    CHECK(aqa_lstm_layer_forward(m, x, NULL, aqa_zeros(AQA_SHAPE(4, 3, 16), AQA_F32), NULL, NULL) == NULL);
    CHECK(strstr(aqa_last_error(), "c0 has shape") != NULL);
    CHECK(aqa_gru_layer_forward(m, x, NULL, NULL) == NULL);
    CHECK(strstr(aqa_last_error(), "GRU forward called on a LSTM module") != NULL);
    CHECK(aqa_lstm_layer_forward(m, aqa_zeros(AQA_SHAPE(0, 2, 5), AQA_F32), NULL, NULL, NULL, NULL) == NULL);
    CHECK(strstr(aqa_last_error(), "empty sequence") != NULL);
    aqa_rnn_config bad = cfg_of(5, 0, 1, false, false, true);
    CHECK(aqa_lstm_layer_new(NULL, "x", &bad) == NULL);
    CHECK(strstr(aqa_last_error(), "hidden_size 0") != NULL);
    aqa_clear_error();
    aqa_scope_end();
    aqa_module_free(&m->base);
    aqa_module_free(&g->base);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

int main(void) {
    RUN(test_lstm_gradcheck);
    RUN(test_gru_gradcheck);
    RUN(test_lstm_golden_stacked_bidirectional);
    RUN(test_lstm_golden_batch_first_no_bias);
    RUN(test_lstm_golden_unbatched);
    RUN(test_gru_golden_stacked_bidirectional);
    RUN(test_gru_golden_batch_first);
    RUN(test_gru_golden_unbatched);
    RUN(test_rnn_module);
    test_golden_close();
    return test_finish();
}
