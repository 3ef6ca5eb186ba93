/* test_i3d.c: the I3D network (models/i3d): state_dict names, eval/train forward, running-statistics
 * update and gradients against a PyTorch I3D (scripts/i3d_torch.py, golden files in
 * tests/data/i3d/), gradchecks of Unit3D, the same-padded max pool and an InceptionModule, clip
 * splitting, frame-folder input and examples/i3d_extract. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "autograd/autograd.h"
#include "image/image.h"
#include "image/resize.h"
#include "models/i3d/i3d.h"
#include "nn/conv.h"
#include "io/safetensors.h"
#include "tensor/tensor_file.h"
#include "ops/ops.h"
#include "tests/testlib.h"

static char weights_path[1024], golden_path[1024];

static void set_paths(void) {
    snprintf(weights_path, sizeof weights_path, "%s", test_data_path("i3d/weights.safetensors"));
    snprintf(golden_path, sizeof golden_path, "%s", test_data_path("i3d/golden.safetensors"));
}

static bool have_golden(void) { return access(weights_path, R_OK) == 0 && access(golden_path, R_OK) == 0; }

/* The tiny network of the golden files (scripts/i3d_torch.py: width 1/32, 10 classes). */
static aqa_i3d *golden_model(void) {
    aqa_i3d_config cfg = aqa_i3d_default_config();
    cfg.width_multiplier = 1.0 / 32;
    cfg.num_classes = 10;
    cfg.final_endpoint = AQA_I3D_LOGITS;
    aqa_i3d *m = aqa_i3d_new(&cfg);
    if (m && aqa_i3d_load(m, weights_path) != AQA_OK) {
        printf("    load: %s\n", aqa_last_error());
        aqa_i3d_free(m);
        return NULL;
    }
    return m;
}

/* max |a - b| <= tol * max(1, max |b|) elementwise over the whole tensor. */
static void check_close(const char *what, aqa_tensor *a, aqa_tensor *b, double tol) {
    CHECK_MSG(a && b, "%s: missing tensor (%s)", what, aqa_last_error());
    if (!a || !b) return;
    CHECK_MSG(aqa_same_shape(a, b), "%s: shape %s vs %s", what, aqa_shape_str(a, (char[64]){0}, 64),
              aqa_shape_str(b, (char[64]){0}, 64));
    if (!aqa_same_shape(a, b)) return;
    int64_t n = aqa_numel(a);
    double *x = malloc(sizeof(double) * (size_t)n), *y = malloc(sizeof(double) * (size_t)n);
    aqa_copy_to_host(a, x, AQA_F64);
    aqa_copy_to_host(b, y, AQA_F64);
    double scale = 1, worst = 0;
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) scale = fabs(y[i]) > scale ? fabs(y[i]) : scale;
    for (int64_t i = 0; i < n; i++)
        if (fabs(x[i] - y[i]) > worst) worst = fabs(x[i] - y[i]), at = i;
    CHECK_MSG(worst <= tol * scale, "%s: max |diff| %.3g at %lld (%.9g vs %.9g), scale %.3g, tol %.3g", what, worst,
              (long long)at, x[at], y[at], scale, tol);
    free(x);
    free(y);
}

static aqa_tensor *golden(const char *name) { return aqa_load_tensor(golden_path, name, AQA_F32); }

/* ---- names ---------------------------------------------------------------------------------------- */

static void test_state_dict_names(void) {
    if (!have_golden()) { SKIP("no tests/data/i3d/weights.safetensors"); return; }
    aqa_st_file *f;
    CHECK(aqa_st_open(weights_path, &f) == AQA_OK);
    const char *keys = aqa_st_metadata(f, "keys");
    CHECK(keys != NULL);
    aqa_i3d_config cfg = aqa_i3d_default_config();
    cfg.width_multiplier = 1.0 / 32;
    cfg.num_classes = 10;
    cfg.final_endpoint = AQA_I3D_LOGITS;
    aqa_i3d *m = aqa_i3d_new(&cfg);
    aqa_named_tensor *all;
    int n = aqa_module_named_tensors(&m->base, true, &all);
    char *copy = strdup(keys ? keys : "");
    int i = 0;
    for (char *save, *k = strtok_r(copy, "\n", &save); k; k = strtok_r(NULL, "\n", &save), i++) {
        if (i < n && strcmp(all[i].name, k) != 0) CHECK_MSG(false, "key %d: %s, torch %s", i, all[i].name, k);
        /* shapes as torch's */
        int j = aqa_st_find(f, k);
        CHECK_MSG(j >= 0, "%s not in file", k);
        if (j >= 0 && i < n) CHECK_EQ_INT(aqa_st_get(f, j)->numel, aqa_numel(all[i].tensor));
    }
    CHECK_EQ_INT(i, n);
    CHECK_STR(all[0].name, "logits.conv3d.weight");
    CHECK_STR(all[2].name, "Conv3d_1a_7x7.conv3d.weight");
    CHECK_EQ_INT(m->feature_dim, 32); /* 384/32 + 384/32 + 128/32 + 128/32 */
    free(copy);
    aqa_named_tensors_free(all, n);
    aqa_i3d_free(m);
    aqa_st_close(f);

    /* the full-width network: pytorch-i3d's parameter count (12,697,264 with 400 logits) */
    aqa_i3d_config full = aqa_i3d_default_config();
    full.final_endpoint = AQA_I3D_LOGITS;
    m = aqa_i3d_new(&full);
    CHECK(m != NULL);
    if (m) {
        CHECK_EQ_INT(m->feature_dim, 1024);
        CHECK_EQ_INT(aqa_module_num_params(&m->base, false), 12697264);
        CHECK(aqa_module_get(&m->base, "Mixed_5c.b1b.bn.running_var") != NULL);
        aqa_i3d_free(m);
    }
    /* default: no logits layer */
    m = aqa_i3d_new(NULL);
    CHECK(m && m->logits == NULL && aqa_module_get(&m->base, "logits.conv3d.weight") == NULL);
    aqa_i3d_free(m);
}

static void test_endpoint_names(void) {
    CHECK_STR(aqa_i3d_endpoint_name(AQA_I3D_MIXED_4C), "Mixed_4c");
    CHECK_EQ_INT(aqa_i3d_endpoint_from_name("MaxPool3d_5a_2x2"), AQA_I3D_MAXPOOL3D_5A_2X2);
    CHECK_EQ_INT(aqa_i3d_endpoint_from_name("Logits"), AQA_I3D_LOGITS);
    CHECK_EQ_INT(aqa_i3d_endpoint_from_name("nope"), -1);
}

/* ---- golden forward/backward ------------------------------------------------------------------------ */

static void test_eval_forward(void) {
    if (!have_golden()) { SKIP("no tests/data/i3d/golden.safetensors"); return; }
    aqa_i3d *m = golden_model();
    CHECK(m != NULL);
    if (!m) return;
    aqa_module_train(&m->base, false);
    aqa_scope_begin();
    aqa_tensor *x = golden("input");
    /* no-grad path (BatchNorm + ReLU in place) */
    bool prev = aqa_set_grad_enabled(false);
    aqa_tensor *f = NULL, *l = NULL;
    CHECK(aqa_i3d_features_logits(m, x, &f, &l) == AQA_OK);
    check_close("eval features", f, golden("eval.features"), 1e-4);
    check_close("eval logits", l, golden("eval.logits"), 1e-4);
    check_close("eval Mixed_3b", aqa_i3d_forward_to(m, x, AQA_I3D_MIXED_3B), golden("eval.mixed_3b"), 1e-4);
    check_close("forward(Logits)", aqa_i3d_forward(m, x), golden("eval.logits"), 1e-4);
    aqa_set_grad_enabled(prev);
    /* with gradients (composed BatchNorm/ReLU path) and the input gradient */
    aqa_tensor *xg = aqa_requires_grad(aqa_clone(x), true);
    aqa_tensor *fg = aqa_i3d_forward_to(m, xg, AQA_I3D_FEATURES);
    check_close("eval features (grad path)", fg, golden("eval.features"), 1e-4);
    CHECK(aqa_backward(fg, golden("grad_features"), false) == AQA_OK);
    check_close("eval input gradient", xg->grad, golden("eval.grad_input"), 1e-4);
    /* running statistics untouched in eval mode */
    check_close("eval keeps running_mean", aqa_module_get(&m->base, "Mixed_4d.b2b.bn.running_mean"),
                aqa_load_tensor(weights_path, "Mixed_4d.b2b.bn.running_mean", AQA_F32), 0);
    aqa_scope_end();
    aqa_i3d_free(m);
}

static void test_train_forward(void) {
    if (!have_golden()) { SKIP("no tests/data/i3d/golden.safetensors"); return; }
    aqa_i3d *m = golden_model();
    CHECK(m != NULL);
    if (!m) return;
    aqa_module_train(&m->base, true);
    aqa_scope_begin();
    aqa_tensor *x = aqa_requires_grad(golden("input"), true);
    aqa_tensor *f = aqa_i3d_forward_to(m, x, AQA_I3D_FEATURES);
    /* batch statistics over 2 samples x 1 position in the last blocks are ill-conditioned: torch's
     * own float32 forward differs from its float64 one by 5e-4 here, hence the looser tolerance */
    check_close("train features", f, golden("train.features"), 1.5e-3);
    CHECK(aqa_backward(f, golden("grad_features"), false) == AQA_OK);
    check_close("train input gradient", x->grad, golden("train.grad_input"), 2e-4);
    const char *wn[] = {"Conv3d_1a_7x7.conv3d.weight", "Mixed_4f.b1b.conv3d.weight", "Mixed_5c.b3b.bn.weight"};
    for (int i = 0; i < 3; i++) {
        char gname[256];
        snprintf(gname, sizeof gname, "train.grad.%s", wn[i]);
        aqa_tensor *p = aqa_module_get(&m->base, wn[i]);
        check_close(gname, p ? p->grad : NULL, golden(gname), 2e-4);
    }
    /* every running statistic and counter updated as torch */
    aqa_named_tensor *all;
    int n = aqa_module_named_tensors(&m->base, true, &all);
    int checked = 0;
    for (int i = 0; i < n; i++) {
        if (!all[i].is_buffer) continue;
        char gname[256];
        snprintf(gname, sizeof gname, "train.%s", all[i].name);
        if (strstr(all[i].name, "num_batches_tracked")) {
            CHECK_EQ_INT((int64_t)aqa_item(all[i].tensor), 8);
            aqa_tensor *gt = aqa_load_tensor(golden_path, gname, AQA_I64);
            CHECK(gt && (int64_t)aqa_item(gt) == 8);
        } else {
            check_close(gname, all[i].tensor, golden(gname), 1e-5);
        }
        checked++;
    }
    CHECK_EQ_INT(checked, 3 * 57); /* 57 BatchNorms: 3 stems + 9 blocks x 6 */
    aqa_named_tensors_free(all, n);
    aqa_scope_end();
    aqa_i3d_free(m);
}

static void test_head(void) {
    if (!have_golden()) { SKIP("no tests/data/i3d/golden.safetensors"); return; }
    aqa_scope_begin();
    check_close("head features", aqa_i3d_pool_features(golden("head.input")), golden("head.features"), 1e-5);
    aqa_scope_end();
}

static void test_load_errors(void) {
    if (!have_golden()) { SKIP("no tests/data/i3d/weights.safetensors"); return; }
    /* the wrong width: shapes differ, nothing loads */
    aqa_i3d_config cfg = aqa_i3d_default_config();
    cfg.width_multiplier = 1.0 / 16;
    aqa_i3d *m = aqa_i3d_new(&cfg);
    CHECK(aqa_i3d_load(m, weights_path) != AQA_OK);
    aqa_i3d_free(m);
    /* no logits layer: the file's logits.* are skipped */
    cfg.width_multiplier = 1.0 / 32;
    cfg.final_endpoint = AQA_I3D_FEATURES;
    m = aqa_i3d_new(&cfg);
    CHECK(aqa_i3d_load(m, weights_path) == AQA_OK);
    aqa_i3d_free(m);
    /* a file without num_batches_tracked (old checkpoints) loads; one lacking a weight does not */
    aqa_st_file *f;
    CHECK(aqa_st_open(weights_path, &f) == AQA_OK);
    int nf = aqa_st_count(f);
    const char **names = malloc(sizeof *names * (size_t)nf);
    aqa_tensor **ts = malloc(sizeof *ts * (size_t)nf);
    int k = 0;
    aqa_scope_begin();
    for (int i = 0; i < nf; i++) {
        const char *nm = aqa_st_name(f, i);
        if (strstr(nm, "num_batches_tracked")) continue;
        names[k] = nm;
        ts[k++] = aqa_st_load(f, nm, aqa_st_get(f, i)->dtype == AQA_ST_I64 ? AQA_I64 : AQA_F32);
    }
    char tmp[] = "/tmp/test_i3d_XXXXXX";
    CHECK(mkdtemp(tmp) != NULL);
    char p1[4200], p2[4200];
    snprintf(p1, sizeof p1, "%s/no_nbt.safetensors", tmp);
    snprintf(p2, sizeof p2, "%s/missing.safetensors", tmp);
    CHECK(aqa_save_tensors(p1, k, names, ts, 0, NULL, NULL) == AQA_OK);
    CHECK(aqa_save_tensors(p2, k - 1, names + 1, ts + 1, 0, NULL, NULL) == AQA_OK);
    aqa_scope_end();
    cfg.final_endpoint = AQA_I3D_LOGITS;
    cfg.num_classes = 10;
    m = aqa_i3d_new(&cfg);
    CHECK(aqa_i3d_load(m, p1) == AQA_OK);
    CHECK(aqa_i3d_load(m, p2) != AQA_OK);
    aqa_i3d_free(m);
    unlink(p1);
    unlink(p2);
    rmdir(tmp);
    free(names);
    free(ts);
    aqa_st_close(f);
}

/* ---- gradchecks ------------------------------------------------------------------------------------ */

/* The f64 tensors a Unit3D computes with in a gradcheck: its own pointers are swapped for these
 * during the call (the module's parameters stay float32).  swap_init must run outside any scope
 * (the copies are caller-owned, freed by swap_free). */
typedef struct unit_swap {
    aqa_i3d_unit3d *u;
    aqa_tensor *w, *b, *gamma, *beta, *rm, *rv; /* f64 copies (owned) */
} unit_swap;

static aqa_tensor *f64_copy(aqa_tensor *t) { return t ? aqa_keep(aqa_to_dtype(aqa_detach(t), AQA_F64)) : NULL; }

static void swap_init(unit_swap *s, aqa_i3d_unit3d *u) {
    s->u = u;
    aqa_scope_begin();
    s->w = f64_copy(u->conv3d->weight);
    s->b = f64_copy(u->conv3d->bias);
    if (u->bn) {
        s->gamma = f64_copy(u->bn->weight);
        s->beta = f64_copy(u->bn->bias);
        s->rm = f64_copy(u->bn->running_mean);
        s->rv = f64_copy(u->bn->running_var);
    }
    aqa_scope_end();
}

/* Exchanges the module's pointers with the f64 ones (call twice to restore). */
static void swap(unit_swap *s) {
    aqa_tensor *t;
#define SW(field, mine) (t = (field), (field) = (mine), (mine) = t)
    SW(s->u->conv3d->weight, s->w);
    SW(s->u->conv3d->bias, s->b);
    if (s->u->bn) {
        SW(s->u->bn->weight, s->gamma);
        SW(s->u->bn->bias, s->beta);
        SW(s->u->bn->running_mean, s->rm);
        SW(s->u->bn->running_var, s->rv);
    }
#undef SW
}

static void swap_free(unit_swap *s) {
    aqa_tensor *ts[] = {s->w, s->b, s->gamma, s->beta, s->rm, s->rv};
    for (int i = 0; i < 6; i++) aqa_tensor_free(ts[i]);
}

typedef struct unit_case {
    unit_swap sw;
    bool bn_training;
} unit_case;

/* inputs: x, conv weight, bn gamma, bn beta (the last two only with bn) */
static aqa_tensor *unit_fn(aqa_tensor *const *in, int n, void *user) {
    unit_case *c = user;
    aqa_tensor *keep[4] = {c->sw.w, c->sw.gamma, c->sw.beta, c->sw.b};
    c->sw.w = in[1];
    if (c->sw.u->bn) {
        c->sw.gamma = in[2];
        c->sw.beta = in[3];
    } else if (n > 2) {
        c->sw.b = in[2];
    }
    swap(&c->sw);
    aqa_tensor *y = aqa_i3d_unit3d_forward(c->sw.u, in[0], c->bn_training);
    swap(&c->sw);
    c->sw.w = keep[0];
    c->sw.gamma = keep[1];
    c->sw.beta = keep[2];
    c->sw.b = keep[3];
    return y;
}

static void gradcheck_unit(const char *what, const int64_t k[3], const int64_t s[3], bool bn, bool relu, bool bias,
                           bool bn_training, const int64_t xshape[5]) {
    aqa_module *root = aqa_module_new(sizeof(aqa_module), "Root", NULL, "", NULL);
    aqa_i3d_unit3d *u = aqa_i3d_unit3d_new(root, "u", xshape[1], 3, k, s, bn, relu, bias);
    CHECK(u != NULL);
    if (!u) { aqa_module_free(root); return; }
    unit_case c = {.bn_training = bn_training};
    if (bn) { /* non-trivial running statistics */
        aqa_uniform_(u->bn->running_mean, -0.3, 0.3, NULL);
        aqa_uniform_(u->bn->running_var, 0.5, 2.0, NULL);
    }
    swap_init(&c.sw, u); /* outside any scope: the copies are ours */
    aqa_scope_begin();
    aqa_tensor *x = aqa_requires_grad(aqa_randn(5, xshape, AQA_F64, NULL), true);
    aqa_tensor *w = aqa_requires_grad(aqa_clone(c.sw.w), true);
    aqa_tensor *in[4] = {x, w, NULL, NULL};
    int n = 2;
    if (bn) {
        in[2] = aqa_requires_grad(aqa_add_scalar(aqa_rand(1, (int64_t[]){3}, AQA_F64, NULL), 0.5), true);
        in[3] = aqa_requires_grad(aqa_randn(1, (int64_t[]){3}, AQA_F64, NULL), true);
        n = 4;
    } else if (bias) {
        in[2] = aqa_requires_grad(aqa_clone(c.sw.b), true);
        n = 3;
    }
    aqa_gradcheck_result r = aqa_gradcheck(unit_fn, in, n, &c, 1e-6, 1e-6, 1e-4);
    CHECK_MSG(r.ok, "%s: %s", what, r.message);
    aqa_scope_end();
    swap_free(&c.sw);
    aqa_module_free(root);
}

static void test_gradcheck_unit3d(void) {
    test_seed("unit3d");
    aqa_manual_seed(11);
    const int64_t k3[3] = {3, 3, 3}, k7[3] = {3, 5, 4}, s1[3] = {1, 1, 1}, s2[3] = {2, 2, 2}, s12[3] = {1, 2, 2};
    gradcheck_unit("k3 s2 eval bn", k3, s2, true, true, false, false, (int64_t[]){1, 2, 5, 6, 7});
    gradcheck_unit("k3 s1 train bn", k3, s1, true, true, false, true, (int64_t[]){2, 2, 3, 4, 5});
    gradcheck_unit("k(3,5,4) s(1,2,2) eval", k7, s12, true, true, false, false, (int64_t[]){1, 2, 4, 7, 6});
    gradcheck_unit("logits 1x1x1 bias", (int64_t[]){1, 1, 1}, s1, false, false, true, false, (int64_t[]){2, 4, 2, 2, 3});
}

typedef struct pool_case {
    int64_t k[3], s[3];
    bool nonneg;
} pool_case;

static aqa_tensor *pool_fn(aqa_tensor *const *in, int n, void *user) {
    pool_case *c = user;
    return aqa_i3d_max_pool_same(in[0], c->k, c->s, c->nonneg);
}

static void test_gradcheck_max_pool_same(void) {
    aqa_manual_seed(5);
    pool_case cases[] = {{{1, 3, 3}, {1, 2, 2}, true}, {{3, 3, 3}, {2, 2, 2}, true}, {{2, 2, 2}, {2, 2, 2}, true},
                         {{3, 3, 3}, {1, 1, 1}, true},  {{3, 3, 3}, {2, 2, 2}, false}};
    int64_t shapes[2][5] = {{1, 2, 4, 6, 5}, {2, 1, 5, 7, 8}};
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 2; j++) {
            aqa_scope_begin();
            /* positive, well separated values: no ties for the finite differences */
            aqa_tensor *x = aqa_add_scalar(aqa_mul_scalar(aqa_rand(5, shapes[j], AQA_F64, NULL), 10), 0.1);
            aqa_requires_grad(x = aqa_detach(x), true);
            aqa_gradcheck_result r = aqa_gradcheck(pool_fn, &x, 1, &cases[i], 1e-6, 1e-6, 1e-4);
            CHECK_MSG(r.ok, "case %d shape %d: %s", i, j, r.message);
            /* the clipped form equals zero padding on non-negative input; sizes are TF's */
            pool_case z = cases[i];
            z.nonneg = false;
            aqa_tensor *a = aqa_i3d_max_pool_same(x, cases[i].k, cases[i].s, true);
            aqa_tensor *b = aqa_i3d_max_pool_same(x, z.k, z.s, false);
            check_close("clipped vs padded", a, b, 0);
            for (int d = 0; d < 3 && a; d++)
                CHECK_EQ_INT(a->shape[2 + d], (shapes[j][2 + d] + cases[i].s[d] - 1) / cases[i].s[d]);
            /* float32 without a graph: the separable inference form */
            aqa_tensor *xf = aqa_to_dtype(aqa_detach(x), AQA_F32);
            check_close("separable vs padded", aqa_i3d_max_pool_same(xf, cases[i].k, cases[i].s, true),
                        aqa_i3d_max_pool_same(xf, z.k, z.s, false), 0);
            aqa_scope_end();
        }
    /* with negative input the zero padding shows (pytorch-i3d's semantics) */
    aqa_scope_begin();
    aqa_tensor *neg = aqa_full(AQA_SHAPE(1, 1, 1, 2, 2), -1.0, AQA_F64);
    aqa_tensor *y = aqa_i3d_max_pool_same(neg, (int64_t[]){1, 3, 3}, (int64_t[]){1, 2, 2}, false);
    CHECK(y && aqa_numel(y) == 1 && aqa_item(y) == 0.0);
    aqa_scope_end();
}

/* Ties (ReLU's zeros): the separable max pool routes each output's gradient to the first input of
 * its clipped window in T, H, W scan order holding the maximum (torch's rule), checked against a
 * scan of every window. */
static void test_max_pool_same_ties(void) {
    aqa_manual_seed(6);
    const pool_case cases[] = {{{1, 3, 3}, {1, 2, 2}, true}, {{3, 3, 3}, {2, 2, 2}, true}, {{2, 2, 2}, {2, 2, 2}, true},
                               {{3, 3, 3}, {1, 1, 1}, true}};
    const int64_t shape[5] = {2, 3, 5, 7, 6}, in[3] = {5, 7, 6};
    for (int ci = 0; ci < 4; ci++) {
        aqa_scope_begin();
        const pool_case *c = &cases[ci];
        /* values in {0, 1, 2}: most windows hold several equal maxima */
        aqa_tensor *x = aqa_requires_grad(aqa_to_dtype(aqa_randint(0, 3, 5, shape, NULL), AQA_F64), true);
        aqa_tensor *y = aqa_i3d_max_pool_same(x, c->k, c->s, true);
        aqa_tensor *g = y ? aqa_randn(y->ndim, y->shape, AQA_F64, NULL) : NULL;
        CHECK(y && aqa_backward(y, g, false) == AQA_OK && x->grad);
        if (!y || !x->grad) {
            aqa_scope_end();
            continue;
        }
        const int64_t out[3] = {y->shape[2], y->shape[3], y->shape[4]}, pin = 5 * 7 * 6, pout = out[0] * out[1] * out[2];
        int64_t lo[3], hi[3];
        for (int d = 0; d < 3; d++) aqa_conv_padding(AQA_PADDING_TF_SAME, 0, in[d], c->k[d], c->s[d], 1, &lo[d], &hi[d]);
        const double *xp = aqa_data(x), *yp = aqa_data(y), *gp = aqa_data(g), *gx = aqa_data(x->grad);
        double want[2 * 3 * 5 * 7 * 6] = {0};
        for (int64_t p = 0; p < 6; p++)
            for (int64_t o = 0; o < pout; o++) {
                int64_t ot = o / (out[1] * out[2]), oh = (o / out[2]) % out[1], ow = o % out[2], hit = -1;
                for (int64_t t = ot * c->s[0] - lo[0]; t < ot * c->s[0] - lo[0] + c->k[0] && hit < 0; t++)
                    for (int64_t h = oh * c->s[1] - lo[1]; h < oh * c->s[1] - lo[1] + c->k[1] && hit < 0; h++)
                        for (int64_t w = ow * c->s[2] - lo[2]; w < ow * c->s[2] - lo[2] + c->k[2] && hit < 0; w++)
                            if (t >= 0 && t < in[0] && h >= 0 && h < in[1] && w >= 0 && w < in[2] &&
                                xp[p * pin + (t * in[1] + h) * in[2] + w] == yp[p * pout + o])
                                hit = (t * in[1] + h) * in[2] + w;
                if (hit >= 0) want[p * pin + hit] += gp[p * pout + o];
            }
        int64_t bad = -1;
        for (int64_t i = 0; i < 6 * pin && bad < 0; i++)
            if (fabs(gx[i] - want[i]) > 1e-12) bad = i;
        CHECK_MSG(bad < 0, "case %d: gradient of input %lld is %g, expected %g", ci, (long long)bad, bad < 0 ? 0 : gx[bad],
                  bad < 0 ? 0 : want[bad]);
        aqa_scope_end();
    }
}

typedef struct block_case {
    aqa_i3d_inception *b;
    unit_swap sw[6];
    bool bn_training;
} block_case;

static aqa_tensor *block_fn(aqa_tensor *const *in, int n, void *user) {
    block_case *c = user;
    /* the gradient of b1b's weight is checked too */
    aqa_tensor *keep = c->sw[2].w;
    c->sw[2].w = in[1];
    for (int i = 0; i < 6; i++) swap(&c->sw[i]);
    aqa_tensor *y = aqa_i3d_inception_forward(c->b, in[0], c->bn_training);
    for (int i = 0; i < 6; i++) swap(&c->sw[i]);
    c->sw[2].w = keep;
    return y;
}

static void test_gradcheck_inception(void) {
    aqa_manual_seed(21);
    aqa_module *root = aqa_module_new(sizeof(aqa_module), "Root", NULL, "", NULL);
    aqa_i3d_inception *b = aqa_i3d_inception_new(root, "Mixed", 3, (const int64_t[]){2, 2, 3, 1, 2, 2});
    CHECK(b != NULL && b->out_channels == 2 + 3 + 2 + 2);
    if (!b) { aqa_module_free(root); return; }
    aqa_i3d_unit3d *us[6] = {b->b0, b->b1a, b->b1b, b->b2a, b->b2b, b->b3b};
    for (int bt = 0; bt < 2; bt++) {
        block_case c = {.b = b, .bn_training = bt};
        for (int i = 0; i < 6; i++) swap_init(&c.sw[i], us[i]);
        aqa_scope_begin();
        /* the block sees ReLU outputs: non-negative input */
        aqa_tensor *x = aqa_detach(aqa_rand(AQA_SHAPE(2, 3, 3, 4, 5), AQA_F64, NULL));
        aqa_requires_grad(x, true);
        aqa_tensor *w = aqa_requires_grad(aqa_clone(c.sw[2].w), true);
        aqa_gradcheck_result r = aqa_gradcheck(block_fn, (aqa_tensor *[]){x, w}, 2, &c, 1e-6, 1e-6, 1e-4);
        CHECK_MSG(r.ok, "%s: %s", bt ? "train" : "eval", r.message);
        aqa_scope_end();
        for (int i = 0; i < 6; i++) swap_free(&c.sw[i]);
    }
    aqa_module_free(root);
}

static void test_freeze_bn(void) {
    aqa_manual_seed(3);
    aqa_i3d_config cfg = aqa_i3d_default_config();
    cfg.width_multiplier = 1.0 / 32;
    cfg.final_endpoint = AQA_I3D_MIXED_3B;
    aqa_i3d *m = aqa_i3d_new(&cfg);
    aqa_module_train(&m->base, true);
    aqa_i3d_freeze_bn(m, true, true);
    aqa_scope_begin();
    aqa_tensor *rm = aqa_module_get(&m->base, "Conv3d_2c_3x3.bn.running_mean");
    aqa_tensor *before = aqa_clone(rm);
    aqa_tensor *x = aqa_rand(AQA_SHAPE(1, 3, 4, 16, 16), AQA_F32, NULL);
    aqa_tensor *y = aqa_i3d_forward(m, x);
    CHECK(y && y->ndim == 5 && y->shape[1] == m->channels[AQA_I3D_MIXED_3B]);
    check_close("frozen running_mean", rm, before, 0);
    CHECK(!aqa_module_get(&m->base, "Mixed_3b.b0.bn.weight")->requires_grad);
    CHECK(aqa_module_get(&m->base, "Mixed_3b.b0.conv3d.weight")->requires_grad);
    CHECK_EQ_INT((int64_t)aqa_item(aqa_module_get(&m->base, "Conv3d_1a_7x7.bn.num_batches_tracked")), 0);
    /* unfrozen: updated */
    aqa_i3d_freeze_bn(m, false, false);
    aqa_tensor_free(aqa_i3d_forward(m, x));
    CHECK(fabs(aqa_item(aqa_sum_all(aqa_abs(aqa_sub(rm, before))))) > 0);
    CHECK_EQ_INT((int64_t)aqa_item(aqa_module_get(&m->base, "Conv3d_1a_7x7.bn.num_batches_tracked")), 1);
    /* an endpoint past the final one is refused */
    CHECK(aqa_i3d_forward_to(m, x, AQA_I3D_FEATURES) == NULL);
    aqa_scope_end();
    aqa_i3d_free(m);
}

/* ---- clips ------------------------------------------------------------------------------------------ */

static void test_clip_starts(void) {
    int64_t s[16];
    /* FineDiving: 96 frames -> 9 clips at 0, 10, ..., 80 */
    CHECK_EQ_INT(aqa_i3d_clip_starts(96, 16, 10, s, 16), 9);
    for (int i = 0; i < 9; i++) CHECK_EQ_INT(s[i], 10 * i);
    /* MTL-AQA: 103 frames -> 10 clips, the last ending at frame 102 */
    CHECK_EQ_INT(aqa_i3d_clip_starts(103, 16, 10, s, 16), 10);
    for (int i = 0; i < 9; i++) CHECK_EQ_INT(s[i], 10 * i);
    CHECK_EQ_INT(s[9], 87);
    /* non-overlapping, exact, short */
    CHECK_EQ_INT(aqa_i3d_clip_starts(64, 16, 0, s, 16), 4);
    CHECK_EQ_INT(s[3], 48);
    CHECK_EQ_INT(aqa_i3d_clip_starts(10, 16, 10, s, 16), 1);
    CHECK_EQ_INT(s[0], 0);
    CHECK_EQ_INT(aqa_i3d_clip_starts(20, 8, 5, NULL, 0), 4);
    CHECK_EQ_INT(aqa_i3d_clip_starts(0, 16, 10, s, 16), -1);
}

/* Writes n frames w x h of distinct content as PNGs (frame_000.png ...) into dir. */
static bool write_frames(const char *dir, int n, int w, int h, int salt) {
    for (int f = 0; f < n; f++) {
        aqa_image *im = aqa_image_new(w, h);
        if (!im) return false;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                uint8_t *p = im->data + aqa_image_offset(im, x, y);
                p[0] = (uint8_t)(x * 7 + f * 13 + salt);
                p[1] = (uint8_t)(y * 5 + f * 3);
                p[2] = (uint8_t)((x * y + f * 29) ^ salt);
            }
        char path[4200];
        snprintf(path, sizeof path, "%s/frame_%03d.png", dir, f);
        aqa_status st = aqa_image_save_png(im, path);
        aqa_image_free(im);
        if (st != AQA_OK) return false;
    }
    return true;
}

static char frames_dir[2][64];

static void rm_dir(const char *dir) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) printf("    could not remove %s\n", dir);
}

static void test_load_clips(void) {
    strcpy(frames_dir[0], "/tmp/test_i3d_frames_XXXXXX");
    CHECK(mkdtemp(frames_dir[0]) != NULL);
    CHECK(write_frames(frames_dir[0], 20, 40, 30, 0));
    /* a stray non-image file is ignored */
    char junk[256];
    snprintf(junk, sizeof junk, "%s/notes.txt", frames_dir[0]);
    FILE *jf = fopen(junk, "w");
    if (jf) fputs("x", jf), fclose(jf);
    aqa_i3d_clip_opts o = {.clip_len = 8, .stride = 5, .short_side = 32, .crop = 24};
    aqa_scope_begin();
    aqa_tensor *v = aqa_i3d_load_clips(frames_dir[0], &o);
    CHECK(v != NULL);
    if (v) {
        CHECK_EQ_INT(v->ndim, 5);
        CHECK_EQ_INT(v->shape[0], 4); /* starts 0, 5, 10, 12 */
        CHECK_EQ_INT(v->shape[1], 3);
        CHECK_EQ_INT(v->shape[2], 8);
        CHECK_EQ_INT(v->shape[3], 24);
        CHECK_EQ_INT(v->shape[4], 24);
        /* each clip frame is the I3D preprocessing of the right file */
        const int64_t starts[4] = {0, 5, 10, 12};
        float ref[3 * 24 * 24];
        int bad = 0;
        for (int c = 0; c < 4; c++)
            for (int j = 0; j < 8; j += 3) {
                char path[4200];
                snprintf(path, sizeof path, "%s/frame_%03d.png", frames_dir[0], (int)(starts[c] + j));
                aqa_image *im = aqa_image_load(path);
                CHECK(im && aqa_i3d_preprocess(im, 32, 24, ref) == AQA_OK);
                aqa_image_free(im);
                for (int ch = 0; ch < 3; ch++)
                    for (int p = 0; p < 24 * 24; p++) {
                        double got = aqa_get(v, (int64_t[]){c, ch, j, p / 24, p % 24});
                        if (got != ref[ch * 576 + p]) bad++;
                    }
            }
        CHECK_EQ_INT(bad, 0);
        double lo = aqa_item(aqa_min_all(v)), hi = aqa_item(aqa_max_all(v));
        CHECK(lo >= -1 && hi <= 1 && hi > lo);
    }
    /* random crop: reproducible from the seed, the same window on every frame */
    o.random_crop = true;
    o.seed = 77;
    aqa_tensor *r1 = aqa_i3d_load_clips(frames_dir[0], &o), *r2 = aqa_i3d_load_clips(frames_dir[0], &o);
    check_close("random crop reproducible", r1, r2, 0);
    CHECK(aqa_i3d_load_clips("/nonexistent/dir", &o) == NULL);
    aqa_scope_end();
}

/* ---- the command-line program ---------------------------------------------------------------------- */

static const char *extract_bin(void) {
    static const char *cands[] = {"examples/i3d_extract", "../examples/i3d_extract"};
    for (int i = 0; i < 2; i++)
        if (access(cands[i], X_OK) == 0) return cands[i];
    return NULL;
}

static void test_extract_frames(void) {
    const char *bin = extract_bin();
    if (!bin) { SKIP("examples/i3d_extract not built"); return; }
    if (!have_golden()) { SKIP("no tests/data/i3d/weights.safetensors"); return; }
    if (!frames_dir[0][0]) { SKIP("no frames folder (test_load_clips failed)"); return; }
    strcpy(frames_dir[1], "/tmp/test_i3d_frames_XXXXXX");
    CHECK(mkdtemp(frames_dir[1]) != NULL);
    CHECK(write_frames(frames_dir[1], 12, 36, 44, 91));
    char out[256], cmd[8192];
    snprintf(out, sizeof out, "%s/out.safetensors", frames_dir[1]);
    snprintf(cmd, sizeof cmd,
             "%s --weights %s --frames %s --frames %s --clip-len 8 --stride 5 --short-side 32 --crop 24 --out %s "
             "--logits --batch 3 2>/dev/null",
             bin, weights_path, frames_dir[0], frames_dir[1], out);
    CHECK_EQ_INT(system(cmd), 0);
    /* the same through the library */
    aqa_i3d *m = golden_model();
    aqa_module_train(&m->base, false);
    aqa_scope_begin();
    aqa_i3d_clip_opts o = {.clip_len = 8, .stride = 5, .short_side = 32, .crop = 24};
    aqa_tensor *v = aqa_cat((aqa_tensor *[]){aqa_i3d_load_clips(frames_dir[0], &o), aqa_i3d_load_clips(frames_dir[1], &o)},
                            2, 0);
    CHECK(v && v->shape[0] == 4 + 2); /* 20 frames -> 4 clips, 12 frames -> 0, 4 (ends at 11) */
    aqa_tensor *f = NULL, *l = NULL;
    CHECK(aqa_i3d_features_logits(m, v, &f, &l) == AQA_OK);
    check_close("extract features", aqa_load_tensor(out, "features", AQA_F32), f, 1e-5);
    check_close("extract logits", aqa_load_tensor(out, "logits", AQA_F32), l, 1e-5);
    aqa_scope_end();
    aqa_i3d_free(m);
    unlink(out);
}

static void test_extract_input(void) {
    const char *bin = extract_bin();
    if (!bin) { SKIP("examples/i3d_extract not built"); return; }
    if (!have_golden()) { SKIP("no tests/data/i3d/golden.safetensors"); return; }
    char dir[] = "/tmp/test_i3d_in_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char in[256], out[256], cmd[8192];
    snprintf(in, sizeof in, "%s/video.safetensors", dir);
    snprintf(out, sizeof out, "%s/out.safetensors", dir);
    aqa_scope_begin();
    aqa_tensor *x = golden("input");
    CHECK(aqa_save_tensors(in, 1, (const char *[]){"video"}, &x, 0, NULL, NULL) == AQA_OK);
    snprintf(cmd, sizeof cmd, "%s --weights %s --input %s --out %s 2>/dev/null", bin, weights_path, in, out);
    CHECK_EQ_INT(system(cmd), 0);
    check_close("extract --input features", aqa_load_tensor(out, "features", AQA_F32), golden("eval.features"), 1e-4);
    aqa_st_file *f;
    if (aqa_st_open(out, &f) == AQA_OK) {
        CHECK(aqa_st_find(f, "logits") < 0); /* only with --logits */
        aqa_st_close(f);
    }
    /* bad usage fails */
    snprintf(cmd, sizeof cmd, "%s --weights %s --out %s 2>/dev/null", bin, weights_path, out);
    CHECK(system(cmd) != 0);
    aqa_scope_end();
    unlink(in);
    unlink(out);
    rmdir(dir);
}

int main(void) {
    set_paths();
    RUN(test_endpoint_names);
    RUN(test_state_dict_names);
    RUN(test_eval_forward);
    RUN(test_train_forward);
    RUN(test_head);
    RUN(test_load_errors);
    RUN(test_gradcheck_unit3d);
    RUN(test_gradcheck_max_pool_same);
    RUN(test_max_pool_same_ties);
    RUN(test_gradcheck_inception);
    RUN(test_freeze_bn);
    RUN(test_clip_starts);
    RUN(test_load_clips);
    RUN(test_extract_frames);
    RUN(test_extract_input);
    for (int i = 0; i < 2; i++)
        if (frames_dir[i][0]) rm_dir(frames_dir[i]);
    return test_finish();
}
