/* test_graph_conv.c: dense graph convolution (nn/graph_conv.c): gradchecks in f64 of x, the
 * adjacency, weight and bias (GCN-normalised and raw, shared and per-sample adjacency, node mask);
 * parity with PyTorch (DenseGCNConv's formula, tests/data/golden_seq_layers.safetensors from
 * scripts/gen_golden_seq_layers.py) of outputs and all gradients, through the module with a given
 * and with a learned adjacency; names, initialisation, errors, leak checks. */
#define GOLDEN_FILE "golden_seq_layers.safetensors"
#define TEST_GRAD_TOL 1e-6, 1e-6, 1e-5
#include "tests/test_util.h"

#include "nn/conv.h"
#include "nn/graph_conv.h"

/* ---- gradchecks ------------------------------------------------------------------------------------ */

/* in: x, adj, weight, bias (optional); user: the options */
static aqa_tensor *gc_fn(aqa_tensor *const *in, int n, void *user) {
    return aqa_graph_conv(in[0], in[1], in[2], n > 3 ? in[3] : NULL, user);
}

static void test_graph_conv_gradcheck(void) {
    aqa_generator g = {test_seed("graph conv gradcheck"), 0};
    aqa_scope_begin();
    aqa_tensor *x = test_rand_leaf(&g, AQA_SHAPE(2, 4, 3), AQA_F64, 1.0);
    aqa_tensor *w = test_rand_leaf(&g, AQA_SHAPE(5, 3), AQA_F64, 0.5), *b = test_rand_leaf(&g, AQA_SHAPE(5), AQA_F64, 0.5);
    /* non-negative weights whose looped row sums exceed 1 (away from the clamp's kink) */
    aqa_tensor *a2 = aqa_requires_grad(aqa_add_scalar(aqa_rand(AQA_SHAPE(4, 4), AQA_F64, &g), 0.3), true);
    aqa_tensor *a3 = aqa_requires_grad(aqa_add_scalar(aqa_rand(AQA_SHAPE(2, 4, 4), AQA_F64, &g), 0.3), true);
    aqa_graph_conv_opts norm = {0}, raw = {.raw = true};
    CHECK_GRAD(gc_fn, ((aqa_tensor *[]){x, a2, w, b}), 4, &norm);
    CHECK_GRAD(gc_fn, ((aqa_tensor *[]){x, a3, w, b}), 4, &norm);
    CHECK_GRAD(gc_fn, ((aqa_tensor *[]){x, a3, w}), 3, &raw);
    /* signed raw adjacency, a node mask, unbatched x */
    aqa_tensor *as = test_rand_leaf(&g, AQA_SHAPE(4, 4), AQA_F64, 1.0);
    aqa_graph_conv_opts masked = {.raw = true, .mask = aqa_from_data((bool[]){1, 1, 0, 1, 1, 1, 1, 0}, AQA_SHAPE(2, 4), AQA_BOOL)};
    CHECK_GRAD(gc_fn, ((aqa_tensor *[]){x, as, w, b}), 4, &masked);
    aqa_tensor *xu = test_rand_leaf(&g, AQA_SHAPE(4, 3), AQA_F64, 1.0);
    CHECK_GRAD(gc_fn, ((aqa_tensor *[]){xu, a2, w, b}), 4, &norm);
    /* grouped weights (a grouped 1x1 convolution): 6 -> 4 channels in 2 groups */
    aqa_tensor *x6 = test_rand_leaf(&g, AQA_SHAPE(2, 4, 6), AQA_F64, 1.0), *wg = test_rand_leaf(&g, AQA_SHAPE(4, 3), AQA_F64, 0.5);
    aqa_graph_conv_opts grouped = {.raw = true, .groups = 2};
    CHECK_GRAD(gc_fn, ((aqa_tensor *[]){x6, a3, wg, b}), 3, &grouped);
    /* ... equal to torch's grouped Conv1d (aqa_conv1d, golden-tested in test_conv) then A @ */
    aqa_tensor *conv = aqa_conv1d(aqa_transpose(x6, 1, 2), aqa_reshape(wg, 3, (int64_t[]){4, 3, 1}), NULL,
                                  &(aqa_conv_opts){.groups = 2});
    CHECK_CLOSE("grouped = conv1d", aqa_graph_conv(x6, a3, wg, NULL, &grouped), aqa_matmul(a3, aqa_transpose(conv, 1, 2)),
                1e-12, 1e-12);
    aqa_scope_end();
}

/* ---- parity with torch -------------------------------------------------------------------------------- */

/* GCN-normalised, per-sample adjacency, node mask, adjacency given to forward */
static void test_graph_conv_golden_normalized(void) {
    if (!test_golden_open(GOLDEN_FILE)) { SKIP("%s absent", GOLDEN_FILE); return; }
    int64_t live = aqa_live_tensors();
    aqa_graph_conv_layer *m = aqa_graph_conv_layer_new(NULL, "", 4, 3, true, true, 0, NULL);
    CHECK(m != NULL);
    if (!m) return;
    GOLDEN_INTO_MODULE(&m->base, "gcn_norm.p.", false);
    aqa_scope_begin();
    aqa_tensor *x = test_leaf_of(GOLDEN("gcn_norm.x")), *adj = test_leaf_of(GOLDEN("gcn_norm.adj"));
    aqa_tensor *y = aqa_graph_conv_layer_forward(m, x, adj, GOLDEN_AS(TEST_AS_STORED, "gcn_norm.mask"));
    CHECK_MSG(y != NULL, "forward: %s", aqa_last_error());
    CHECK_CLOSE("y", y, GOLDEN("gcn_norm.y"), 1e-5, 1e-6);
    CHECK(y && aqa_backward(y, GOLDEN("gcn_norm.gy"), false) == AQA_OK);
    CHECK_CLOSE("x->grad", x->grad, GOLDEN("gcn_norm.gx"), 1e-4, 1e-5);
    CHECK_CLOSE("adj->grad", adj->grad, GOLDEN("gcn_norm.gadj"), 1e-4, 1e-5);
    CHECK_PARAM_GRADS(&m->base, "gcn_norm.g.", 1e-4, 1e-5);
    aqa_scope_end();
    aqa_module_free(&m->base);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

/* raw shared adjacency, learned: the layer's own "adj" parameter gets the adjacency's gradient */
static void test_graph_conv_golden_learned_adjacency(void) {
    if (!test_golden_open(GOLDEN_FILE)) { SKIP("%s absent", GOLDEN_FILE); return; }
    int64_t live = aqa_live_tensors();
    aqa_scope_begin();
    aqa_graph_conv_layer *m = aqa_graph_conv_layer_new(NULL, "", 3, 5, true, false, 4, GOLDEN("gcn_raw.adj"));
    CHECK(m != NULL);
    if (!m) {
        aqa_scope_end();
        return;
    }
    /* adj came from adj_init */
    CHECK(aqa_copy_(m->lin->weight, GOLDEN("gcn_raw.p.lin.weight")) == AQA_OK);
    CHECK(aqa_copy_(m->bias, GOLDEN("gcn_raw.p.bias")) == AQA_OK);
    aqa_tensor *x = test_leaf_of(GOLDEN("gcn_raw.x"));
    aqa_tensor *y = aqa_graph_conv_layer_forward(m, x, NULL, NULL);
    CHECK_MSG(y != NULL, "forward: %s", aqa_last_error());
    CHECK_CLOSE("y", y, GOLDEN("gcn_raw.y"), 1e-5, 1e-6);
    CHECK(y && aqa_backward(y, GOLDEN("gcn_raw.gy"), false) == AQA_OK);
    CHECK_CLOSE("x->grad", x->grad, GOLDEN("gcn_raw.gx"), 1e-4, 1e-5);
    CHECK_CLOSE("m->adj->grad", m->adj->grad, GOLDEN("gcn_raw.gadj"), 1e-4, 1e-5);
    CHECK_CLOSE("m->lin->weight->grad", m->lin->weight->grad, GOLDEN("gcn_raw.g.lin.weight"), 1e-4, 1e-5);
    CHECK_CLOSE("m->bias->grad", m->bias->grad, GOLDEN("gcn_raw.g.bias"), 1e-4, 1e-5);
    aqa_scope_end();
    aqa_module_free(&m->base);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

/* ---- the module ------------------------------------------------------------------------------------ */

static void test_graph_conv_module(void) {
    int64_t live = aqa_live_tensors();
    aqa_manual_seed(9);
    aqa_graph_conv_layer *m = aqa_graph_conv_layer_new(NULL, "gcn", 6, 10, true, true, 5, NULL);
    aqa_graph_conv_layer *p = aqa_graph_conv_layer_new(NULL, "plain", 6, 10, false, true, 0, NULL);
    CHECK(m && p);
    if (!m || !p) {
        aqa_module_free(m ? &m->base : NULL);
        aqa_module_free(p ? &p->base : NULL);
        return;
    }
    CHECK_STR(m->base.type, "DenseGCNConv");
    /* PyG's state_dict order (own tensors first), the learned adjacency beside the bias */
    aqa_named_tensor *list = NULL;
    int n = aqa_module_named_tensors(&m->base, true, &list);
    CHECK_EQ_INT(n, 3);
    if (n == 3) {
        CHECK_STR(list[0].name, "bias");
        CHECK_STR(list[1].name, "adj");
        CHECK_STR(list[2].name, "lin.weight");
    }
    aqa_named_tensors_free(list, n);
    CHECK(p->bias == NULL && p->adj == NULL && aqa_module_num_params(&p->base, false) == 60);
    aqa_scope_begin();
    /* glorot weight bound sqrt(6 / 16), zero bias, identity adjacency */
    double bound = sqrt(6.0 / 16.0), mx = aqa_item(aqa_max_all(aqa_abs(m->lin->weight)));
    CHECK(mx <= bound && mx > 0.8 * bound);
    CHECK_NEAR(aqa_item(aqa_sum_all(aqa_abs(m->bias))), 0, 0);
    CHECK_NEAR(aqa_item(aqa_sum_all(m->adj)), 5, 0);
    CHECK_NEAR(aqa_get(m->adj, (int64_t[]){2, 2}), 1, 0);
    /* with the identity the nodes stay apart: y = x W^T + b row by row */
    aqa_tensor *x = aqa_randn(AQA_SHAPE(2, 5, 6), AQA_F32, NULL);
    aqa_tensor *y = aqa_graph_conv_layer_forward(m, x, NULL, NULL);
    CHECK_CLOSE("identity graph", y, aqa_linear(x, m->lin->weight, m->bias), 1e-6, 1e-6);
    /* the learned adjacency trains */
    CHECK(y && aqa_backward(aqa_sum_all(aqa_square(y)), NULL, false) == AQA_OK);
    CHECK(m->adj->grad && aqa_item(aqa_max_all(aqa_abs(m->adj->grad))) > 0);
    /* errors */
    CHECK(aqa_graph_conv_layer_forward(p, x, NULL, NULL) == NULL);
    CHECK(strstr(aqa_last_error(), "DenseGCNConv plain: no adjacency") != NULL);
    CHECK(aqa_graph_conv_layer_forward(p, x, aqa_ones(AQA_SHAPE(4, 4), AQA_F32), NULL) == NULL);
    CHECK(strstr(aqa_last_error(), "adjacency has shape [4, 4], expected [N, N] or [B, N, N] for x [2, 5, 6]") != NULL);
    CHECK(aqa_graph_conv_layer_forward(p, x, NULL, aqa_ones(AQA_SHAPE(2, 4), AQA_BOOL)) == NULL);
    CHECK(aqa_graph_conv_layer_forward(m, x, NULL, aqa_ones(AQA_SHAPE(2, 4), AQA_BOOL)) == NULL);
    CHECK(strstr(aqa_last_error(), "mask has shape [2, 4], expected [B, N]") != NULL);
    CHECK(aqa_graph_conv(x, aqa_ones(AQA_SHAPE(5, 5), AQA_F32), aqa_ones(AQA_SHAPE(10, 4), AQA_F32), NULL,
                         &(aqa_graph_conv_opts){.groups = 2}) == NULL);
    CHECK(strstr(aqa_last_error(), "weight has shape [10, 4], expected [out, 3]") != NULL);
    CHECK(aqa_graph_conv_layer_new(NULL, "bad", 6, 10, true, true, 3, aqa_ones(AQA_SHAPE(4, 4), AQA_F32)) == NULL);
    CHECK(strstr(aqa_last_error(), "adj_init has shape [4, 4], expected [3, 3]") != NULL);
    aqa_clear_error();
    aqa_scope_end();
    aqa_module_free(&m->base);
    aqa_module_free(&p->base);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

int main(void) {
    RUN(test_graph_conv_gradcheck);
    RUN(test_graph_conv_golden_normalized);
    RUN(test_graph_conv_golden_learned_adjacency);
    RUN(test_graph_conv_module);
    test_golden_close();
    return test_finish();
}
