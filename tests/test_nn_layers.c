/* test_nn_layers.c: Linear, Embedding, LayerNorm, Dropout and the activation modules
 * (nn/linear.c, nn/norm_layer.c, nn/dropout.c, nn/activation.c): gradchecks in f64, parity with
 * PyTorch (tests/data/golden_nn_layers.safetensors from scripts/gen_golden_nn_layers.py), module
 * parameter names and initialisation, dropout statistics and determinism, leak checks. */
#define GOLDEN_FILE "golden_nn_layers.safetensors"
#define TEST_GRAD_TOL 1e-6, 1e-6, 1e-5
#include "tests/test_util.h"

#include "nn/activation.h"
#include "nn/dropout.h"
#include "nn/layers-impl.h"
#include "nn/linear.h"
#include "nn/norm_layer.h"

/* ---- golden cases of layers with a weight and a bias --------------------------------------------------- */

/* (rtol, atol) of each check of one golden layer case. */
typedef struct layer_tols {
    double y[2];  /* the output */
    double gx[2]; /* the input's gradient */
    double gw[2]; /* the weight's gradient */
    double gb[2]; /* the bias's gradient */
} layer_tols;

/* A layer's forward on x (m is the layer). */
typedef aqa_tensor *(*layer_forward_fn)(void *m, aqa_tensor *x);

/* The golden case "<key>.*" of layer m: its weight and bias from p.weight and p.bias, forward on x
 * against y, backward from gy, then the gradients against gx, g.weight and g.bias.  Each check's
 * FAIL line names the tensor as the torch script does ("<key>.gx", ...). */
static void check_layer_golden(const char *key, void *m, layer_forward_fn forward, aqa_tensor *weight,
                               aqa_tensor *bias, layer_tols t) {
    char name[64];
    CHECK(aqa_copy_(weight, GOLDEN("%s.p.weight", key)) == AQA_OK);
    CHECK(aqa_copy_(bias, GOLDEN("%s.p.bias", key)) == AQA_OK);
    aqa_tensor *x = test_leaf_of(GOLDEN("%s.x", key));
    aqa_tensor *y = forward(m, x);
    snprintf(name, sizeof name, "%s.y", key);
    CHECK_CLOSE(name, y, GOLDEN("%s", name), t.y[0], t.y[1]);
    CHECK(aqa_backward(y, GOLDEN("%s.gy", key), false) == AQA_OK);
    snprintf(name, sizeof name, "%s.gx", key);
    CHECK_CLOSE(name, x->grad, GOLDEN("%s", name), t.gx[0], t.gx[1]);
    snprintf(name, sizeof name, "%s.g.weight", key);
    CHECK_CLOSE(name, weight->grad, GOLDEN("%s", name), t.gw[0], t.gw[1]);
    snprintf(name, sizeof name, "%s.g.bias", key);
    CHECK_CLOSE(name, bias->grad, GOLDEN("%s", name), t.gb[0], t.gb[1]);
}

/* ---- Linear ------------------------------------------------------------------------------------------ */

static aqa_tensor *linear_fn(aqa_tensor *const *in, int n, void *user) {
    (void)user;
    return aqa_linear(in[0], in[1], n > 2 ? in[2] : NULL);
}

static void test_linear_gradcheck(void) {
    aqa_generator g = {test_seed("linear gradcheck"), 0};
    aqa_scope_begin();
    aqa_tensor *x = test_rand_leaf(&g, AQA_SHAPE(2, 3, 5), AQA_F64, 1.0);
    aqa_tensor *w = test_rand_leaf(&g, AQA_SHAPE(4, 5), AQA_F64, 0.5);
    aqa_tensor *b = test_rand_leaf(&g, AQA_SHAPE(4), AQA_F64, 0.5);
    CHECK_GRAD(linear_fn, ((aqa_tensor *[]){x, w, b}), 3, NULL);
    CHECK_GRAD(linear_fn, ((aqa_tensor *[]){x, w}), 2, NULL); /* no bias */
    /* a non-contiguous input (leading dims do not collapse) and a transposed weight */
    aqa_tensor *xt = aqa_requires_grad(aqa_detach(aqa_transpose(aqa_contiguous(aqa_transpose(x, 0, 1)), 0, 1)), true);
    aqa_tensor *wt = aqa_requires_grad(aqa_detach(aqa_transpose(aqa_contiguous(aqa_transpose(w, 0, 1)), 0, 1)), true);
    CHECK(!aqa_is_contiguous(xt) && !aqa_is_contiguous(wt));
    CHECK_GRAD(linear_fn, ((aqa_tensor *[]){xt, wt, b}), 3, NULL);
    /* 1-D input, and a broadcast (stride-0) input */
    aqa_tensor *x1 = test_rand_leaf(&g, AQA_SHAPE(5), AQA_F64, 1.0);
    CHECK_GRAD(linear_fn, ((aqa_tensor *[]){x1, w, b}), 3, NULL);
    aqa_tensor *y = aqa_linear(x1, w, b);
    CHECK(y && y->ndim == 1 && y->shape[0] == 4);
    aqa_scope_end();
}

static aqa_tensor *linear_forward(void *m, aqa_tensor *x) { return aqa_linear_layer_forward(m, x); }

static void test_linear_golden(void) {
    if (!test_golden_open(GOLDEN_FILE)) { SKIP("%s absent", GOLDEN_FILE); return; }
    int64_t live = aqa_live_tensors();
    aqa_scope_begin();
    aqa_linear_layer *m = aqa_linear_layer_new(NULL, "", 5, 4, true);
    CHECK(m != NULL);
    if (!m) { aqa_scope_end(); return; }
    check_layer_golden("linear", m, linear_forward, m->weight, m->bias,
                       (layer_tols){{1e-5, 1e-6}, {1e-5, 1e-6}, {1e-5, 1e-6}, {1e-5, 1e-6}});
    aqa_scope_end();
    aqa_module_free(&m->base);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

static void test_linear_module(void) {
    int64_t live = aqa_live_tensors();
    aqa_manual_seed(7);
    aqa_linear_layer *a = aqa_linear_layer_new(NULL, "", 16, 3, true);
    aqa_manual_seed(7);
    aqa_linear_layer *b = aqa_linear_layer_new(NULL, "", 16, 3, false);
    aqa_linear_layer *c = aqa_linear_layer_new(NULL, "", 16, 3, true);
    CHECK(a && b && c);
    if (!a || !b || !c) return;
    aqa_named_tensor *list = NULL;
    int n = aqa_module_named_tensors(&a->base, true, &list);
    CHECK_EQ_INT(n, 2);
    if (n == 2) {
        CHECK_STR(list[0].name, "weight");
        CHECK_STR(list[1].name, "bias");
    }
    aqa_named_tensors_free(list, n);
    n = aqa_module_named_tensors(&b->base, true, &list);
    CHECK_EQ_INT(n, 1);
    aqa_named_tensors_free(list, n);
    CHECK(b->bias == NULL);
    CHECK_STR(a->base.type, "Linear");
    CHECK_EQ_INT(a->weight->shape[0], 3);
    CHECK_EQ_INT(a->weight->shape[1], 16);
    CHECK(a->weight->requires_grad && a->bias->requires_grad);
    /* U(-1/4, 1/4) for fan_in 16, reproducible from the seed, different without it */
    double wa[48], wb[48], wc[48], ba[3];
    aqa_copy_to_host(a->weight, wa, AQA_F64);
    aqa_copy_to_host(b->weight, wb, AQA_F64);
    aqa_copy_to_host(c->weight, wc, AQA_F64);
    aqa_copy_to_host(a->bias, ba, AQA_F64);
    double maxabs = 0;
    bool same_ab = true, same_ac = true;
    for (int i = 0; i < 48; i++) {
        maxabs = fmax(maxabs, fabs(wa[i]));
        same_ab = same_ab && wa[i] == wb[i];
        same_ac = same_ac && wa[i] == wc[i];
    }
    for (int i = 0; i < 3; i++) CHECK(fabs(ba[i]) <= 0.25);
    CHECK(maxabs <= 0.25 && maxabs > 0.15);
    CHECK(same_ab);
    CHECK(!same_ac);
    CHECK_EQ_INT(aqa_module_num_params(&a->base, false), 51);
    /* shape errors name the operands */
    aqa_scope_begin();
    aqa_tensor *bad = aqa_linear_layer_forward(a, aqa_zeros(AQA_SHAPE(2, 15), AQA_F32));
    CHECK(bad == NULL);
    CHECK(strstr(aqa_last_error(), "aqa_linear") != NULL);
    aqa_clear_error();
    aqa_scope_end();
    aqa_module_free(&a->base);
    aqa_module_free(&b->base);
    aqa_module_free(&c->base);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

/* ---- Embedding ----------------------------------------------------------------------------------------- */

static void test_embedding(void) {
    int64_t live = aqa_live_tensors();
    aqa_manual_seed(3);
    aqa_embedding_layer *m = aqa_embedding_layer_new(NULL, "", 50, 64);
    CHECK(m != NULL);
    if (!m) return;
    aqa_scope_begin();
    CHECK_EQ_INT(m->weight->shape[0], 50);
    CHECK_EQ_INT(m->weight->shape[1], 64);
    /* N(0, 1) init: mean and variance of 3200 draws */
    double mean = aqa_item(aqa_mean_all(m->weight)), var = aqa_item(aqa_var(m->weight, 0, NULL, 0, false));
    CHECK(fabs(mean) < 0.1);
    CHECK(fabs(var - 1.0) < 0.1);
    int64_t ids[] = {3, 0, 49, 3};
    aqa_tensor *y = aqa_embedding_layer_forward(m, aqa_from_data(ids, AQA_SHAPE(2, 2), AQA_I64));
    CHECK(y && y->ndim == 3 && y->shape[2] == 64);
    if (y) {
        CHECK_CLOSE("aqa_select(aqa_select(y, 0, 1), 0, 0)", aqa_select(aqa_select(y, 0, 1), 0, 0), aqa_select(m->weight, 0, 49), 0, 0);
        CHECK(aqa_backward(aqa_sum_all(y), NULL, false) == AQA_OK);
        CHECK_NEAR(aqa_get(m->weight->grad, (int64_t[]){3, 5}), 2.0, 0);
        CHECK_NEAR(aqa_get(m->weight->grad, (int64_t[]){4, 5}), 0.0, 0);
    }
    aqa_scope_end();
    aqa_module_free(&m->base);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

/* ---- LayerNorm ------------------------------------------------------------------------------------------ */

typedef struct ln_args { int nd; int64_t shape[2]; } ln_args;

static aqa_tensor *ln_fn(aqa_tensor *const *in, int n, void *user) {
    ln_args *a = user;
    return aqa_layer_norm(in[0], a->nd, a->shape, n > 1 ? in[1] : NULL, n > 2 ? in[2] : NULL, 1e-5);
}
static aqa_tensor *ln_bias_only_fn(aqa_tensor *const *in, int n, void *user) {
    ln_args *a = user;
    (void)n;
    return aqa_layer_norm(in[0], a->nd, a->shape, NULL, in[1], 1e-5);
}

static void test_layer_norm_gradcheck(void) {
    aqa_generator g = {test_seed("layer_norm gradcheck"), 0};
    aqa_scope_begin();
    /* last dim, affine */
    ln_args a1 = {1, {6, 0}};
    aqa_tensor *x = test_rand_leaf(&g, AQA_SHAPE(3, 4, 6), AQA_F64, 2.0);
    aqa_tensor *w = test_rand_leaf(&g, AQA_SHAPE(6), AQA_F64, 1.0), *b = test_rand_leaf(&g, AQA_SHAPE(6), AQA_F64, 1.0);
    CHECK_GRAD(ln_fn, ((aqa_tensor *[]){x, w, b}), 3, &a1);
    CHECK_GRAD(ln_fn, ((aqa_tensor *[]){x}), 1, &a1);                 /* no affine */
    CHECK_GRAD(ln_fn, ((aqa_tensor *[]){x, w}), 2, &a1);              /* weight only */
    CHECK_GRAD(ln_bias_only_fn, ((aqa_tensor *[]){x, b}), 2, &a1);    /* bias only */
    /* last two dims, affine and not */
    ln_args a2 = {2, {4, 6}};
    aqa_tensor *w2 = test_rand_leaf(&g, AQA_SHAPE(4, 6), AQA_F64, 1.0), *b2 = test_rand_leaf(&g, AQA_SHAPE(4, 6), AQA_F64, 1.0);
    CHECK_GRAD(ln_fn, ((aqa_tensor *[]){x, w2, b2}), 3, &a2);
    CHECK_GRAD(ln_fn, ((aqa_tensor *[]){x}), 1, &a2);
    /* a non-contiguous input */
    aqa_tensor *xt = aqa_requires_grad(aqa_detach(aqa_transpose(test_rand_leaf(&g, AQA_SHAPE(6, 5), AQA_F64, 1.0), 0, 1)), true);
    CHECK(!aqa_is_contiguous(xt));
    CHECK_GRAD(ln_fn, ((aqa_tensor *[]){xt, w, b}), 3, &a1);
    /* errors */
    CHECK(aqa_layer_norm(x, 1, (const int64_t[]){5}, NULL, NULL, 1e-5) == NULL);
    CHECK(strstr(aqa_last_error(), "normalized shape") != NULL);
    aqa_clear_error();
    aqa_scope_end();
}

static aqa_tensor *layer_norm_forward(void *m, aqa_tensor *x) { return aqa_layer_norm_layer_forward(m, x); }

static void test_layer_norm_golden(void) {
    if (!test_golden_open(GOLDEN_FILE)) { SKIP("%s absent", GOLDEN_FILE); return; }
    int64_t live = aqa_live_tensors();
    aqa_layer_norm_layer *m = aqa_layer_norm_layer_new(NULL, "", 1, (const int64_t[]){6}, 1e-5, true);
    CHECK(m != NULL);
    if (!m) return;
    aqa_scope_begin();
    check_layer_golden("ln1", m, layer_norm_forward, m->weight, m->bias,
                       (layer_tols){{1e-5, 1e-5}, {1e-4, 1e-5}, {1e-4, 1e-5}, {1e-5, 1e-5}});
    /* two normalized dims, no affine, functional form */
    aqa_tensor *x2 = test_leaf_of(GOLDEN("ln2.x"));
    aqa_tensor *y2 = aqa_layer_norm(x2, 2, (const int64_t[]){4, 5}, NULL, NULL, 1e-5);
    CHECK_CLOSE("y2", y2, GOLDEN("ln2.y"), 1e-5, 1e-5);
    CHECK(aqa_backward(y2, GOLDEN("ln2.gy"), false) == AQA_OK);
    CHECK_CLOSE("x2->grad", x2->grad, GOLDEN("ln2.gx"), 1e-4, 1e-5);
    aqa_scope_end();
    /* names and initial values as torch */
    aqa_named_tensor *list = NULL;
    int n = aqa_module_named_tensors(&m->base, true, &list);
    CHECK_EQ_INT(n, 2);
    if (n == 2) {
        CHECK_STR(list[0].name, "weight");
        CHECK_STR(list[1].name, "bias");
    }
    aqa_named_tensors_free(list, n);
    aqa_module_free(&m->base);
    aqa_layer_norm_layer *m2 = aqa_layer_norm_layer_new(NULL, "", 2, (const int64_t[]){3, 4}, 1e-5, false);
    CHECK(m2 && m2->weight == NULL && aqa_module_num_params(&m2->base, false) == 0);
    aqa_module_free(m2 ? &m2->base : NULL);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

/* The fused kernel against the same formula composed of ops, on a CLIP-sized float32 input (which
 * runs the multi-threaded paths). */
static void test_layer_norm_vs_composed(void) {
    aqa_generator g = {test_seed("layer_norm large"), 0};
    aqa_scope_begin();
    aqa_tensor *x = test_rand_leaf(&g, AQA_SHAPE(2, 197, 768), AQA_F32, 3.0);
    aqa_tensor *w = test_rand_leaf(&g, AQA_SHAPE(768), AQA_F32, 1.0), *b = test_rand_leaf(&g, AQA_SHAPE(768), AQA_F32, 1.0);
    aqa_tensor *gy = aqa_randn(AQA_SHAPE(2, 197, 768), AQA_F32, &g);
    aqa_tensor *y = aqa_layer_norm(x, 1, (const int64_t[]){768}, w, b, 1e-5);
    CHECK(aqa_backward(y, gy, false) == AQA_OK);
    aqa_tensor *gx = x->grad, *gw = w->grad, *gb = b->grad;
    x->grad = w->grad = b->grad = NULL;
    /* reference in float64 */
    aqa_tensor *x64 = test_leaf_of(aqa_to_dtype(x, AQA_F64)), *w64 = test_leaf_of(aqa_to_dtype(w, AQA_F64)),
               *b64 = test_leaf_of(aqa_to_dtype(b, AQA_F64));
    int dims[] = {-1};
    aqa_tensor *xc = aqa_sub(x64, aqa_mean(x64, 1, dims, true));
    aqa_tensor *r = aqa_mul(xc, aqa_rsqrt(aqa_add_scalar(aqa_mean(aqa_square(xc), 1, dims, true), 1e-5)));
    r = aqa_add(aqa_mul(r, w64), b64);
    CHECK(aqa_backward(r, aqa_to_dtype(gy, AQA_F64), false) == AQA_OK);
    CHECK_CLOSE("y", y, r, 1e-4, 1e-5);
    CHECK_CLOSE("gx", gx, x64->grad, 1e-4, 1e-4);
    CHECK_CLOSE("gw", gw, w64->grad, 1e-4, 1e-3);
    CHECK_CLOSE("gb", gb, b64->grad, 1e-4, 1e-3);
    aqa_tensor_free(gx);
    aqa_tensor_free(gw);
    aqa_tensor_free(gb);
    aqa_scope_end();
}

/* ---- Dropout ------------------------------------------------------------------------------------------- */

static void test_dropout(void) {
    int64_t live = aqa_live_tensors();
    aqa_scope_begin();
    const int64_t n = 200000;
    const double p = 0.3;
    aqa_tensor *x = aqa_requires_grad(aqa_add_scalar(aqa_rand(AQA_SHAPE(n), AQA_F32, NULL), 1.0), true);
    x = aqa_requires_grad(aqa_detach(x), true);
    /* same seed, same mask; the default generator and an explicit one agree */
    aqa_manual_seed(42);
    aqa_tensor *y1 = aqa_dropout(x, p, true, NULL);
    aqa_manual_seed(42);
    aqa_tensor *y2 = aqa_dropout(x, p, true, NULL);
    aqa_generator g = {42, 0};
    aqa_tensor *y3 = aqa_dropout(x, p, true, &g);
    aqa_tensor *y4 = aqa_dropout(x, p, true, &g); /* the generator advanced: a new mask */
    CHECK_CLOSE("y1", y1, y2, 0, 0);
    CHECK_CLOSE("y1", y1, y3, 0, 0);
    /* keep rate 1 - p within 5 standard deviations; kept values scaled by 1/(1-p) */
    float *xv = aqa_data(x), *v1 = aqa_data(y1), *v4 = aqa_data(y4);
    int64_t kept = 0, differ = 0, bad = 0;
    for (int64_t i = 0; i < n; i++) {
        if (v1[i] != 0) {
            kept++;
            if (fabsf(v1[i] - xv[i] / (float)(1 - p)) > 1e-6f * fabsf(v1[i])) bad++;
        }
        if ((v1[i] != 0) != (v4[i] != 0)) differ++;
    }
    double sd = sqrt(n * p * (1 - p));
    CHECK_MSG(fabs((double)kept - n * (1 - p)) < 5 * sd, "kept %lld of %lld", (long long)kept, (long long)n);
    CHECK_EQ_INT(bad, 0);
    CHECK(differ > n / 4);
    /* backward: the same mask and scale */
    CHECK(aqa_backward(aqa_sum_all(y1), NULL, false) == AQA_OK);
    float *gv = aqa_data(x->grad);
    int64_t gbad = 0;
    for (int64_t i = 0; i < n; i++) {
        float expect = v1[i] != 0 ? (float)(1 / (1 - p)) : 0.0f;
        if (fabsf(gv[i] - expect) > 1e-6f) gbad++;
    }
    CHECK_EQ_INT(gbad, 0);
    aqa_zero_grad(x);
    /* eval and p = 0: identity (values and gradient); p = 1: zeros */
    aqa_tensor *ye = aqa_dropout(x, p, false, NULL);
    CHECK_CLOSE("ye", ye, x, 0, 0);
    CHECK(aqa_backward(aqa_sum_all(ye), NULL, false) == AQA_OK);
    CHECK_CLOSE("x->grad", x->grad, aqa_ones_like(x), 0, 0);
    CHECK_CLOSE("aqa_dropout(x, 0.0, true, NULL)", aqa_dropout(x, 0.0, true, NULL), x, 0, 0);
    CHECK_CLOSE("aqa_dropout(x, 1.0, true, NULL)", aqa_dropout(x, 1.0, true, NULL), aqa_zeros_like(x), 0, 0);
    CHECK(aqa_dropout(x, 1.5, true, NULL) == NULL);
    aqa_clear_error();
    /* module: follows train/eval */
    aqa_dropout_layer *m = aqa_dropout_layer_new(NULL, "", 0.5);
    CHECK(m != NULL);
    if (m) {
        aqa_tensor *ones = aqa_ones(AQA_SHAPE(1000), AQA_F32);
        double s = aqa_item(aqa_sum_all(aqa_dropout_layer_forward(m, ones)));
        CHECK(s != 1000.0);
        aqa_module_train(&m->base, false);
        CHECK_NEAR(aqa_item(aqa_sum_all(aqa_dropout_layer_forward(m, ones))), 1000.0, 0);
        aqa_module_free(&m->base);
    }
    aqa_scope_end();
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

/* ---- activations -------------------------------------------------------------------------------------- */

static void test_activation_modules(void) {
    int64_t live = aqa_live_tensors();
    aqa_scope_begin();
    aqa_module *root = aqa_module_new(sizeof(aqa_module), "Sequential", NULL, "", NULL);
    aqa_tensor *x = aqa_randn(AQA_SHAPE(3, 7), AQA_F32, NULL);
    struct { aqa_activation_kind k; const char *type; aqa_tensor *expect; } cases[] = {
        {AQA_ACT_RELU, "ReLU", aqa_relu(x)},
        {AQA_ACT_GELU, "GELU", aqa_gelu(x)},
        {AQA_ACT_GELU_TANH, "GELU", aqa_gelu_tanh(x)},
        {AQA_ACT_QUICK_GELU, "QuickGELU", aqa_mul(x, aqa_sigmoid(aqa_mul_scalar(x, 1.702)))},
        {AQA_ACT_SIGMOID, "Sigmoid", aqa_sigmoid(x)},
        {AQA_ACT_TANH, "Tanh", aqa_tanh(x)},
        {AQA_ACT_SOFTMAX, "Softmax", aqa_softmax(x, -1)},
        {AQA_ACT_IDENTITY, "Identity", x},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[8];
        snprintf(name, sizeof name, "%zu", i);
        aqa_activation_layer *m = aqa_activation_layer_new(root, name, cases[i].k);
        CHECK(m != NULL);
        if (!m) continue;
        CHECK_STR(m->base.type, cases[i].type);
        CHECK_CLOSE("aqa_activation_layer_forward(m, x)", aqa_activation_layer_forward(m, x), cases[i].expect, 1e-6, 1e-7);
        CHECK_CLOSE("aqa_activation(x, cases[i].k)", aqa_activation(x, cases[i].k), cases[i].expect, 1e-6, 1e-7);
    }
    aqa_activation_layer *sm0 = aqa_softmax_layer_new(root, "sm0", 0);
    CHECK(sm0 != NULL);
    if (sm0) CHECK_CLOSE("aqa_activation_layer_forward(sm0, x)", aqa_activation_layer_forward(sm0, x), aqa_softmax(x, 0), 0, 0);
    CHECK_EQ_INT(aqa_module_num_params(root, false), 0);
    aqa_scope_end();
    aqa_module_free(root);
    CHECK_EQ_INT(aqa_live_tensors(), live);
}

/* The composed (device-generic) LayerNorm and dropout mask, run on the CPU. */
static void test_composed_paths(void) {
    aqa__nn_force_composed = true;
    test_layer_norm_gradcheck();
    if (test_golden_open(GOLDEN_FILE)) test_layer_norm_golden();
    test_dropout();
    aqa__nn_force_composed = false;
    /* the composed dropout mask is the fused one: same uniform draws, same threshold */
    aqa_scope_begin();
    aqa_tensor *x = aqa_randn(AQA_SHAPE(1000), AQA_F32, NULL);
    aqa_generator g1 = {5, 0}, g2 = {5, 0};
    aqa_tensor *a = aqa_dropout(x, 0.4, true, &g1);
    aqa__nn_force_composed = true;
    aqa_tensor *b = aqa_dropout(x, 0.4, true, &g2);
    aqa__nn_force_composed = false;
    CHECK_CLOSE("a", a, b, 1e-7, 0);
    aqa_scope_end();
}

int main(void) {
    RUN(test_linear_gradcheck);
    RUN(test_linear_golden);
    RUN(test_linear_module);
    RUN(test_embedding);
    RUN(test_layer_norm_gradcheck);
    RUN(test_layer_norm_golden);
    RUN(test_layer_norm_vs_composed);
    RUN(test_dropout);
    RUN(test_activation_modules);
    RUN(test_composed_paths);
    test_golden_close();
    return test_finish();
}
