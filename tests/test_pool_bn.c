/* test_pool_bn.c: pooling (nn/pool.h) and batch norm (nn/batchnorm.h): gradchecks in float64,
 * forward and gradients against PyTorch golden data (scripts/gen_golden_conv.py) including
 * ceil_mode, padding, count_include_pad=False, divisor_override, max-pool indices, adaptive
 * windows, batch-norm running statistics over 3 steps (momentum and cumulative), eval mode, the
 * modules' state_dict names, hand-checked output sizes, and leaks. */
#include <math.h>

#include "autograd/autograd.h"
#include "nn/batchnorm.h"
#include "nn/pool.h"
#include "ops/ops.h"
#include "tests/test_util.h"

#define GOLDEN_FILE "golden_conv.safetensors"

/* True when the golden file is readable (the golden tests SKIP otherwise). */
static bool have_golden(void) { return test_golden_open(GOLDEN_FILE); }

/* ---- pooling -------------------------------------------------------------------------------------- */

typedef struct pool_case {
    int kind; /* 0 max, 1 avg, 2 adaptive */
    int nd;
    int64_t k[3], s[3], p[3], d[3];
    bool ceil_mode, count_include_pad;
    int64_t divisor;
} pool_case;

static aqa_tensor *run_pool(const pool_case *c, aqa_tensor *x, aqa_tensor **idx) {
    switch (c->kind) {
    case 0: return aqa_max_pool(x, c->nd, c->k, c->s, c->p, c->d, c->ceil_mode, idx);
    case 1: return aqa_avg_pool(x, c->nd, c->k, c->s, c->p, c->ceil_mode, c->count_include_pad, c->divisor);
    default: return aqa_adaptive_avg_pool(x, c->nd, c->k);
    }
}

static void golden_pool(const char *prefix, pool_case c) {
    aqa_scope_begin();
    aqa_tensor *x = aqa_requires_grad(GOLDEN("%s.x", prefix), true), *idx = NULL;
    /* the composed path (AQA_POOL_COMPOSED, other devices) has no max-pool indices */
    bool want_idx = c.kind == 0 && !getenv("AQA_POOL_COMPOSED");
    aqa_tensor *y = run_pool(&c, x, want_idx ? &idx : NULL);
    CHECK_MSG(y != NULL, "%s: %s", prefix, aqa_last_error());
    if (y) {
        CHECK_REL(prefix, y, GOLDEN("%s.y", prefix), 1e-5);
        CHECK(aqa_backward(y, GOLDEN("%s.gy", prefix), false) == AQA_OK);
        CHECK_REL(prefix, x->grad, GOLDEN("%s.gx", prefix), 1e-5);
        if (want_idx && strcmp(prefix, "maxpool1d") == 0)
            CHECK_REL("maxpool1d indices", idx, GOLDEN_AS(AQA_I64, "%s.idx", prefix), 1e-12);
    }
    aqa_scope_end();
}

static void test_golden_pool(void) {
    if (!have_golden()) {
        SKIP("tests/data/" GOLDEN_FILE " absent");
        return;
    }
    golden_pool("maxpool1d", (pool_case){.kind = 0, .nd = 1, .k = {3}, .s = {2}, .p = {1}, .d = {1}, .ceil_mode = true, .count_include_pad = false, .divisor = 0});
    golden_pool("maxpool2d", (pool_case){.kind = 0, .nd = 2, .k = {3, 2}, .s = {2, 2}, .p = {1, 0}, .d = {1, 2}, .ceil_mode = false, .count_include_pad = false, .divisor = 0});
    golden_pool("maxpool3d", (pool_case){.kind = 0, .nd = 3, .k = {3, 3, 3}, .s = {2, 2, 2}, .p = {1, 1, 1}, .d = {1, 1, 1}, .ceil_mode = true, .count_include_pad = false, .divisor = 0});
    golden_pool("avgpool1d", (pool_case){.kind = 1, .nd = 1, .k = {4}, .s = {3}, .p = {2}, .d = {0}, .ceil_mode = true, .count_include_pad = false, .divisor = 0});
    golden_pool("avgpool2d", (pool_case){.kind = 1, .nd = 2, .k = {3, 3}, .s = {2, 2}, .p = {1, 1}, .d = {0}, .ceil_mode = true, .count_include_pad = true, .divisor = 0});
    golden_pool("avgpool2d_div", (pool_case){.kind = 1, .nd = 2, .k = {3, 3}, .s = {2, 2}, .p = {1, 1}, .d = {0}, .ceil_mode = false, .count_include_pad = true, .divisor = 5});
    golden_pool("avgpool3d", (pool_case){.kind = 1, .nd = 3, .k = {2, 3, 3}, .s = {1, 2, 2}, .p = {1, 1, 1}, .d = {0}, .ceil_mode = false, .count_include_pad = false, .divisor = 0});
    golden_pool("adapool1d", (pool_case){.kind = 2, .nd = 1, .k = {4}});
    golden_pool("adapool2d", (pool_case){.kind = 2, .nd = 2, .k = {3, 4}});
    golden_pool("adapool3d", (pool_case){.kind = 2, .nd = 3, .k = {2, 3, 4}});
}

static aqa_tensor *gc_pool(aqa_tensor *const *in, int n, void *user) {
    (void)n;
    return run_pool(user, in[0], NULL);
}

static void gradcheck_pool(const char *what, int xnd, const int64_t *xs, pool_case c) {
    aqa_scope_begin();
    /* distinct values (a shuffled ramp plus noise) keep max pooling differentiable */
    int64_t n = 1;
    for (int i = 0; i < xnd; i++) n *= xs[i];
    aqa_tensor *perm = aqa_to_dtype(aqa_randperm(n, NULL), AQA_F64);
    aqa_tensor *x = aqa_requires_grad(aqa_clone(aqa_reshape(aqa_mul_scalar(perm, 0.1), xnd, xs)), true);
    aqa_gradcheck_result r = aqa_gradcheck(gc_pool, &x, 1, &c, 1e-6, 1e-7, 1e-6);
    CHECK_MSG(r.ok, "%s: %s", what, r.message);
    aqa_scope_end();
}

static void test_gradcheck_pool(void) {
    aqa_manual_seed(test_seed("gradcheck pool"));
    gradcheck_pool("max1d ceil pad", 3, (int64_t[]){2, 2, 9}, (pool_case){.kind = 0, .nd = 1, .k = {3}, .s = {2}, .p = {1}, .d = {1}, .ceil_mode = true});
    gradcheck_pool("max2d dilated", 4, (int64_t[]){1, 2, 7, 6}, (pool_case){.kind = 0, .nd = 2, .k = {3, 2}, .s = {2, 1}, .p = {1, 0}, .d = {1, 2}});
    gradcheck_pool("max3d ceil pad", 5, (int64_t[]){1, 1, 4, 5, 5}, (pool_case){.kind = 0, .nd = 3, .k = {2, 3, 3}, .s = {2, 2, 2}, .p = {1, 1, 1}, .d = {0}, .ceil_mode = true});
    gradcheck_pool("max2d unbatched", 3, (int64_t[]){2, 5, 5}, (pool_case){.kind = 0, .nd = 2, .k = {2, 2}});
    gradcheck_pool("avg1d ceil no-pad-count", 3, (int64_t[]){2, 2, 10}, (pool_case){.kind = 1, .nd = 1, .k = {4}, .s = {3}, .p = {2}, .d = {0}, .ceil_mode = true, .count_include_pad = false});
    gradcheck_pool("avg2d ceil count pad", 4, (int64_t[]){1, 2, 7, 8}, (pool_case){.kind = 1, .nd = 2, .k = {3, 3}, .s = {2, 2}, .p = {1, 1}, .d = {0}, .ceil_mode = true, .count_include_pad = true});
    gradcheck_pool("avg2d divisor", 4, (int64_t[]){1, 1, 5, 6}, (pool_case){.kind = 1, .nd = 2, .k = {2, 3}, .s = {0}, .p = {1, 1}, .d = {0}, .ceil_mode = false, .count_include_pad = true, .divisor = 4});
    gradcheck_pool("avg3d", 5, (int64_t[]){1, 2, 4, 5, 4}, (pool_case){.kind = 1, .nd = 3, .k = {2, 3, 3}, .s = {1, 2, 2}, .p = {1, 1, 1}, .d = {0}, .ceil_mode = false, .count_include_pad = false});
    gradcheck_pool("adaptive1d", 3, (int64_t[]){2, 2, 10}, (pool_case){.kind = 2, .nd = 1, .k = {4}});
    gradcheck_pool("adaptive2d", 4, (int64_t[]){1, 2, 7, 5}, (pool_case){.kind = 2, .nd = 2, .k = {3, 4}});
    gradcheck_pool("adaptive3d", 5, (int64_t[]){1, 1, 5, 4, 6}, (pool_case){.kind = 2, .nd = 3, .k = {2, 3, 4}});
}

/* Output sizes derived by hand from torch's rule. */
static void test_pool_sizes(void) {
    aqa_scope_begin();
    aqa_tensor *x = aqa_zeros(AQA_SHAPE(1, 1, 6), AQA_F32);
    /* in 6, k 2, s 2, ceil: (6-2+1)/2 -> ceil 2.5 = 3 windows (starts 0, 2, 4) */
    aqa_tensor *y = aqa_max_pool1d(x, 2, 2, 0, 1, true);
    CHECK(y && y->shape[2] == 3);
    /* in 6, k 3, s 2, ceil: floor((6-3+1)/2) + 1 = 3; the last window starts at 4, inside: 3 */
    y = aqa_max_pool1d(x, 3, 2, 0, 1, true);
    CHECK(y && y->shape[2] == 3);
    /* in 5, k 2, s 2, pad 1, ceil: ceil((5+2-2)/2) + 1 = 4, last start 3*2 = 6 >= 5 + 1 -> 3 */
    y = aqa_max_pool1d(aqa_zeros(AQA_SHAPE(1, 1, 5), AQA_F32), 2, 2, 1, 1, true);
    CHECK(y && y->shape[2] == 3);
    /* in 6, k 2, s 2, pad 1, ceil: ceil(6/2) + 1 = 4; last start 6 >= 7? no -> 4 */
    y = aqa_avg_pool1d(x, 2, 2, 1, true, true);
    CHECK(y && y->shape[2] == 4);
    /* padding above half the kernel is rejected */
    CHECK(aqa_max_pool1d(x, 2, 2, 2, 1, false) == NULL);
    /* avg with count_include_pad=false on the all-padding-clipped edge: [1..4], k2 s2 p1 ->
     * windows {pad,1}, {2,3}, {4,pad} -> 1, 2.5, 4 (divisor 1 at the edges) */
    aqa_tensor *r = aqa_from_data((float[]){1, 2, 3, 4}, AQA_SHAPE(1, 1, 4), AQA_F32);
    y = aqa_avg_pool1d(r, 2, 2, 1, false, false);
    CHECK(y && y->shape[2] == 3);
    if (y) {
        CHECK_NEAR(aqa_get(y, (int64_t[]){0, 0, 0}), 1.0, 1e-6);
        CHECK_NEAR(aqa_get(y, (int64_t[]){0, 0, 1}), 2.5, 1e-6);
        CHECK_NEAR(aqa_get(y, (int64_t[]){0, 0, 2}), 4.0, 1e-6);
    }
    y = aqa_avg_pool1d(r, 2, 2, 1, false, true); /* counting the pad: 0.5, 2.5, 2 */
    if (y) {
        CHECK_NEAR(aqa_get(y, (int64_t[]){0, 0, 0}), 0.5, 1e-6);
        CHECK_NEAR(aqa_get(y, (int64_t[]){0, 0, 2}), 2.0, 1e-6);
    }
    /* adaptive 5 -> 3: windows [0,2), [1,4), [3,5) */
    aqa_tensor *a = aqa_from_data((float[]){1, 2, 3, 4, 5}, AQA_SHAPE(1, 5), AQA_F32);
    y = aqa_adaptive_avg_pool(a, 1, (int64_t[]){3});
    CHECK(y && y->ndim == 2 && y->shape[1] == 3);
    if (y) {
        CHECK_NEAR(aqa_get(y, (int64_t[]){0, 0}), 1.5, 1e-6);
        CHECK_NEAR(aqa_get(y, (int64_t[]){0, 1}), 3.0, 1e-6);
        CHECK_NEAR(aqa_get(y, (int64_t[]){0, 2}), 4.5, 1e-6);
    }
    aqa_scope_end();
}

/* ---- batch norm ------------------------------------------------------------------------------------- */

typedef struct bn_case {
    bool training;
    bool transpose; /* feed x as a non-contiguous view */
} bn_case;

static aqa_tensor *gc_bn(aqa_tensor *const *in, int n, void *user) {
    const bn_case *c = user;
    (void)n;
    aqa_tensor *x = c->transpose ? aqa_transpose(in[0], -1, -2) : in[0];
    aqa_tensor *rm = NULL, *rv = NULL;
    if (!c->training) {
        rm = aqa_from_data((double[]){0.3, -0.2, 0.1}, AQA_SHAPE(3), AQA_F64);
        rv = aqa_from_data((double[]){0.8, 1.5, 2.0}, AQA_SHAPE(3), AQA_F64);
    }
    return aqa_batch_norm(x, rm, rv, in[1], in[2], c->training, 0.1, 1e-5);
}

static void test_gradcheck_bn(void) {
    aqa_manual_seed(test_seed("gradcheck bn"));
    for (int mode = 0; mode < 3; mode++) {
        aqa_scope_begin();
        bn_case c = {.training = mode != 2, .transpose = mode == 1};
        aqa_tensor *in[3] = {aqa_requires_grad(aqa_randn(AQA_SHAPE(3, 3, 4, 2), AQA_F64, NULL), true),
                             aqa_requires_grad(aqa_randn(AQA_SHAPE(3), AQA_F64, NULL), true),
                             aqa_requires_grad(aqa_randn(AQA_SHAPE(3), AQA_F64, NULL), true)};
        aqa_gradcheck_result r = aqa_gradcheck(gc_bn, in, 3, &c, 1e-6, 1e-7, 1e-5);
        CHECK_MSG(r.ok, "mode %d: %s", mode, r.message);
        aqa_scope_end();
    }
}

/* Runs a module on the golden steps (train) and the eval step, comparing everything. */
static void golden_bn(const char *prefix, aqa_batch_norm_layer *m, int steps) {
    aqa_scope_begin();
    aqa_copy_(m->weight, GOLDEN("%s.weight", prefix));
    aqa_copy_(m->bias, GOLDEN("%s.bias", prefix));
    aqa_scope_end();
    char p[64];
    for (int s = 0; s <= steps; s++) {
        bool eval = s == steps;
        if (eval) snprintf(p, sizeof p, "%s.eval", prefix);
        else snprintf(p, sizeof p, "%s.step%d", prefix, s);
        aqa_module_train(&m->base, !eval);
        aqa_module_zero_grad(&m->base);
        aqa_scope_begin();
        aqa_tensor *x = aqa_requires_grad(GOLDEN("%s.x", p), true);
        aqa_tensor *y = aqa_batch_norm_layer_forward(m, x);
        CHECK_MSG(y != NULL, "%s: %s", p, aqa_last_error());
        if (y) {
            CHECK_REL(p, y, GOLDEN("%s.y", p), 1e-5);
            CHECK(aqa_backward(y, GOLDEN("%s.gy", p), false) == AQA_OK);
            CHECK_REL(p, x->grad, GOLDEN("%s.gx", p), 1e-4);
            CHECK_REL(p, m->weight->grad, GOLDEN("%s.gweight", p), 1e-4);
            CHECK_REL(p, m->bias->grad, GOLDEN("%s.gbias", p), 1e-4);
            if (!eval) {
                CHECK_REL(p, m->running_mean, GOLDEN("%s.running_mean", p), 1e-5);
                CHECK_REL(p, m->running_var, GOLDEN("%s.running_var", p), 1e-5);
                CHECK_REL(p, m->num_batches_tracked, GOLDEN_AS(AQA_I64, "%s.num_batches_tracked", p), 1e-12);
            }
        }
        aqa_scope_end();
    }
    aqa_module_zero_grad(&m->base);
}

static void test_golden_bn(void) {
    if (!have_golden()) {
        SKIP("tests/data/" GOLDEN_FILE " absent");
        return;
    }
    aqa_batch_norm_layer *b2 = aqa_batch_norm2d_layer_new(NULL, "", 4);
    golden_bn("bn2d", b2, 3);
    aqa_module_free(b2 ? &b2->base : NULL);
    aqa_batch_norm_layer *b1 = aqa_batch_norm_layer_new(NULL, "", 1, 3, 1e-5, NAN, true, true);
    golden_bn("bn1d_cma", b1, 3);
    aqa_module_free(b1 ? &b1->base : NULL);
    aqa_batch_norm_layer *b3 = aqa_batch_norm_layer_new(NULL, "", 3, 3, 1e-3, 0.3, true, true);
    golden_bn("bn3d", b3, 1);
    aqa_module_free(b3 ? &b3->base : NULL);
}

static void test_bn_module(void) {
    aqa_batch_norm_layer *m = aqa_batch_norm3d_layer_new(NULL, "", 5);
    CHECK(m != NULL);
    if (!m) return;
    CHECK_STR(m->base.type, "BatchNorm3d");
    aqa_named_tensor *list = NULL;
    int n = aqa_module_named_tensors(&m->base, true, &list);
    const char *names[] = {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"};
    CHECK_EQ_INT(n, 5);
    for (int i = 0; i < n && i < 5; i++) CHECK_STR(list[i].name, names[i]);
    aqa_named_tensors_free(list, n);
    CHECK(m->num_batches_tracked->ndim == 0 && m->num_batches_tracked->dtype == AQA_I64);
    CHECK_EQ_INT(aqa_module_num_params(&m->base, false), 10);
    aqa_scope_begin();
    CHECK(aqa_batch_norm_layer_forward(m, aqa_randn(AQA_SHAPE(2, 5, 3, 3), AQA_F32, NULL)) == NULL); /* 4-D */
    CHECK(aqa_batch_norm_layer_forward(m, aqa_randn(AQA_SHAPE(1, 5, 1, 1, 1), AQA_F32, NULL)) == NULL); /* 1 value */
    aqa_scope_end();
    aqa_module_free(&m->base);
    /* no affine, no tracking: batch statistics in eval mode too */
    aqa_batch_norm_layer *b = aqa_batch_norm_layer_new(NULL, "", 1, 2, 1e-5, 0.1, false, false);
    CHECK(b && !b->weight && !b->running_mean);
    if (b) {
        aqa_module_train(&b->base, false);
        aqa_scope_begin();
        aqa_tensor *y = aqa_batch_norm_layer_forward(b, aqa_from_data((float[]){1, 10, 3, 20}, AQA_SHAPE(2, 2), AQA_F32));
        CHECK(y != NULL);
        if (y) {
            CHECK_NEAR(aqa_get(y, (int64_t[]){0, 0}), -1.0 / sqrt(1 + 1e-5), 1e-5);
            CHECK_NEAR(aqa_get(y, (int64_t[]){1, 1}), 1.0 / sqrt(1 + 1e-5 / 25), 1e-5);
        }
        aqa_scope_end();
        aqa_module_free(&b->base);
    }
}

static void test_pool_module_and_leaks(void) {
    int64_t t0 = aqa_live_tensors(), s0 = aqa_live_storages();
    aqa_pool_layer *p = aqa_pool_layer_new(NULL, "", AQA_POOL_MAX, 3, (int64_t[]){1, 3, 3}, (int64_t[]){1, 2, 2},
                                           NULL, false);
    CHECK(p && strcmp(p->base.type, "MaxPool3d") == 0);
    aqa_scope_begin();
    aqa_tensor *x = aqa_requires_grad(aqa_randn(AQA_SHAPE(1, 2, 4, 9, 9), AQA_F32, NULL), true);
    aqa_tensor *y = p ? aqa_pool_layer_forward(p, x) : NULL;
    CHECK(y && y->shape[2] == 4 && y->shape[3] == 4 && y->shape[4] == 4);
    aqa_backward(aqa_sum_all(aqa_avg_pool3d(y, 2, 0, 0, false, true)), NULL, false);
    CHECK(x->grad != NULL);
    aqa_tensor *idx = NULL;
    aqa_tensor *z = aqa_max_pool(x, 3, (int64_t[]){2, 2, 2}, NULL, NULL, NULL, false, &idx);
    CHECK(z && idx && idx->dtype == AQA_I64 && aqa_same_shape(z, idx));
    aqa_batch_norm_layer *bn = aqa_batch_norm1d_layer_new(NULL, "", 2);
    aqa_tensor *h = aqa_requires_grad(aqa_randn(AQA_SHAPE(4, 2, 3), AQA_F32, NULL), true);
    aqa_backward(aqa_sum_all(aqa_mul(aqa_batch_norm_layer_forward(bn, h), h)), NULL, false);
    CHECK(h->grad && bn->weight->grad);
    aqa_scope_end();
    aqa_module_free(bn ? &bn->base : NULL);
    aqa_module_free(p ? &p->base : NULL);
    CHECK_EQ_INT(aqa_live_tensors(), t0);
    CHECK_EQ_INT(aqa_live_storages(), s0);
}

/* The composed path other devices take (forced on the CPU) against the same golden data. */
static void test_composed_bn_matches_torch(void) {
    setenv("AQA_BATCH_NORM_COMPOSED", "1", 1);
    test_golden_bn();
    test_gradcheck_bn();
    unsetenv("AQA_BATCH_NORM_COMPOSED");
}

/* The composed pooling path other devices take (forced on the CPU) against the same golden data
 * and gradchecks; asking it for max-pool indices is an error, not a silent NULL. */
static void test_composed_pool_matches_torch(void) {
    setenv("AQA_POOL_COMPOSED", "1", 1);
    test_golden_pool();
    test_gradcheck_pool();
    aqa_scope_begin();
    aqa_tensor *idx = NULL;
    CHECK(aqa_max_pool(aqa_randn(AQA_SHAPE(1, 1, 4, 4), AQA_F32, NULL), 2, (int64_t[]){2, 2}, NULL, NULL, NULL, false,
                       &idx) == NULL && idx == NULL);
    aqa_scope_end();
    unsetenv("AQA_POOL_COMPOSED");
}

int main(void) {
    RUN(test_golden_pool);
    RUN(test_gradcheck_pool);
    RUN(test_pool_sizes);
    RUN(test_composed_pool_matches_torch);
    RUN(test_gradcheck_bn);
    RUN(test_golden_bn);
    RUN(test_composed_bn_matches_torch);
    RUN(test_bn_module);
    RUN(test_pool_module_and_leaks);
    test_golden_close();
    return test_finish();
}
