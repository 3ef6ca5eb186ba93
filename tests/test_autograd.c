/* test_autograd.c: the backward engine (ordering, accumulation, broadcasting, graph freeing,
 * no-grad), the gradients of view ops, lifetime of graphs, and gradcheck itself (including that
 * it catches a wrong backward). */
#include <math.h>

#include "aqa.h"
#include "tests/testlib.h"

static aqa_tensor *vec(const double *v, int64_t n) { return aqa_from_data(v, 1, &n, AQA_F64); }

static void test_chain_rule_values(void) {
    aqa_scope_begin();
    /* y = sum((a * b + a)^2): dy/da = 2(ab + a)(b + 1), dy/db = 2(ab + a) a */
    aqa_tensor *a = aqa_requires_grad(vec((double[]){1, 2, -3}, 3), true);
    aqa_tensor *b = aqa_requires_grad(vec((double[]){0.5, -1, 2}, 3), true);
    aqa_tensor *y = aqa_sum_all(aqa_square(aqa_add(aqa_mul(a, b), a)));
    CHECK(aqa_backward(y, NULL, false) == AQA_OK);
    double av[3] = {1, 2, -3}, bv[3] = {0.5, -1, 2};
    for (int i = 0; i < 3; i++) {
        double inner = av[i] * bv[i] + av[i];
        CHECK_NEAR(aqa_get(a->grad, (int64_t[]){i}), 2 * inner * (bv[i] + 1), 1e-12);
        CHECK_NEAR(aqa_get(b->grad, (int64_t[]){i}), 2 * inner * av[i], 1e-12);
    }
    aqa_scope_end();
}

static void test_shared_input_accumulates(void) {
    aqa_scope_begin();
    /* x used by two branches: y = sum(x*x) + sum(3x) -> 2x + 3 */
    aqa_tensor *x = aqa_requires_grad(vec((double[]){1, -2}, 2), true);
    aqa_tensor *y = aqa_add(aqa_sum_all(aqa_mul(x, x)), aqa_sum_all(aqa_mul_scalar(x, 3)));
    CHECK(aqa_backward(y, NULL, true) == AQA_OK);
    CHECK_NEAR(aqa_get(x->grad, (int64_t[]){0}), 5, 1e-12);
    CHECK_NEAR(aqa_get(x->grad, (int64_t[]){1}), -1, 1e-12);
    /* a second backward over the retained graph accumulates into .grad */
    CHECK(aqa_backward(y, NULL, false) == AQA_OK);
    CHECK_NEAR(aqa_get(x->grad, (int64_t[]){0}), 10, 1e-12);
    /* a third fails: the graph was freed */
    CHECK(aqa_backward(y, NULL, false) == AQA_ESTATE);
    CHECK(strstr(aqa_last_error(), "retain_graph") != NULL);
    aqa_zero_grad(x);
    CHECK(x->grad == NULL);
    aqa_scope_end();
}

static void test_broadcast_gradient_reduced(void) {
    aqa_scope_begin();
    aqa_tensor *a = aqa_requires_grad(aqa_ones(AQA_SHAPE(2, 3), AQA_F64), true);
    aqa_tensor *b = aqa_requires_grad(aqa_ones(AQA_SHAPE(3), AQA_F64), true);
    aqa_tensor *c = aqa_requires_grad(aqa_ones(AQA_SHAPE(2, 1), AQA_F64), true);
    aqa_tensor *y = aqa_sum_all(aqa_mul(aqa_add(a, b), c));
    CHECK(aqa_backward(y, NULL, false) == AQA_OK);
    CHECK_EQ_INT(b->grad->ndim, 1);
    CHECK_NEAR(aqa_get(b->grad, (int64_t[]){1}), 2, 1e-12);
    CHECK_EQ_INT(c->grad->shape[1], 1);
    CHECK_NEAR(aqa_get(c->grad, (int64_t[]){1, 0}), 6, 1e-12);
    aqa_scope_end();
}

static void test_no_grad_and_detach(void) {
    aqa_scope_begin();
    aqa_tensor *x = aqa_requires_grad(aqa_ones(AQA_SHAPE(3), AQA_F32), true);
    bool prev = aqa_set_grad_enabled(false);
    aqa_tensor *y = aqa_mul(x, x);
    aqa_set_grad_enabled(prev);
    CHECK(y->grad_fn == NULL);
    CHECK(!y->requires_grad);
    CHECK(aqa_backward(aqa_sum_all(y), NULL, false) == AQA_ESTATE);
    aqa_tensor *z = aqa_mul(x, x);
    CHECK(z->grad_fn != NULL);
    aqa_tensor *d = aqa_detach(z);
    CHECK(d->grad_fn == NULL && !d->requires_grad && d->storage == z->storage);
    CHECK(aqa_requires_grad(z, true) == NULL); /* non-leaf */
    CHECK(aqa_requires_grad(aqa_arange(0, 3, 1, AQA_I64), true) == NULL);
    aqa_scope_end();
}

static void test_backward_with_grad_output(void) {
    aqa_scope_begin();
    aqa_tensor *x = aqa_requires_grad(vec((double[]){1, 2, 3}, 3), true);
    aqa_tensor *y = aqa_mul_scalar(x, 2);
    CHECK(aqa_backward(y, NULL, false) == AQA_EINVAL); /* non-scalar needs grad_y */
    aqa_tensor *g = vec((double[]){1, 10, 100}, 3);
    CHECK(aqa_backward(y, g, false) == AQA_OK);
    CHECK_NEAR(aqa_get(x->grad, (int64_t[]){2}), 200, 1e-12);
    aqa_scope_end();
}

/* ---- view gradients through gradcheck ---- */

static aqa_tensor *fn_views(aqa_tensor *const *in, int n, void *user) {
    aqa_tensor *x = in[0]; /* [3, 4] */
    aqa_tensor *t = aqa_transpose(x, 0, 1);                            /* [4, 3] */
    aqa_tensor *s = aqa_slice(t, 0, 1, 4, 2);                          /* rows 1, 3 */
    aqa_tensor *r = aqa_reshape(s, AQA_SHAPE(3, 2));                   /* copies */
    aqa_tensor *e = aqa_expand(aqa_unsqueeze(aqa_select(x, 1, -1), 0), AQA_SHAPE(2, 3)); /* col 3 */
    aqa_tensor *p = aqa_permute(aqa_view(aqa_narrow(x, 0, 1, 2), AQA_SHAPE(2, 2, 2)), (int[]){2, 0, 1});
    aqa_tensor *f = aqa_flatten(aqa_squeeze(aqa_unsqueeze(p, 1), 1), 0, -1);
    return aqa_add(aqa_sum_all(aqa_mul(aqa_transpose(r, 0, 1), e)), aqa_sum_all(aqa_square(f)));
}

static void test_gradcheck_views(void) {
    aqa_scope_begin();
    aqa_manual_seed(test_seed("views"));
    aqa_tensor *x = aqa_requires_grad(aqa_randn(AQA_SHAPE(3, 4), AQA_F64, NULL), true);
    aqa_gradcheck_result r = aqa_gradcheck(fn_views, &x, 1, NULL, 1e-6, 1e-8, 1e-6);
    CHECK_MSG(r.ok, "%s", r.message);
    aqa_scope_end();
}

/* ---- gradcheck must catch a wrong backward ---- */

static void wrong_square_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    grad_in[0] = aqa_mul(g, n->saved[0]); /* should be 2 * x * g */
}

static aqa_tensor *wrong_square(aqa_tensor *x) {
    bool prev = aqa_set_grad_enabled(false);
    aqa_tensor *out = aqa_mul(x, x);
    aqa_set_grad_enabled(prev);
    aqa_node *n = aqa_node_record("wrong_square", wrong_square_backward, 1, &x, out);
    if (n) aqa_node_save(n, x);
    return out;
}

static aqa_tensor *fn_wrong(aqa_tensor *const *in, int n, void *user) { return wrong_square(in[0]); }

static void test_gradcheck_catches_wrong_backward(void) {
    aqa_scope_begin();
    aqa_tensor *x = aqa_requires_grad(vec((double[]){0.5, -1.5, 2}, 3), true);
    aqa_gradcheck_result r = aqa_gradcheck(fn_wrong, &x, 1, NULL, 1e-6, 1e-8, 1e-6);
    CHECK(!r.ok);
    CHECK_EQ_INT(r.input, 0);
    CHECK(r.index >= 0 && r.index < 3);
    /* the reported element shows the factor-of-two error of the wrong backward */
    CHECK_NEAR(r.numerical, 2 * r.analytical, 1e-5 * fabs(r.numerical) + 1e-6);
    char where[32];
    snprintf(where, sizeof where, "element %lld", (long long)r.index);
    CHECK(strstr(r.message, where) != NULL);
    aqa_scope_end();
}

/* A leaf's first gradient is taken over when nobody else holds it (no copy), but never when it is
 * the caller's grad_y, a gradient handed to two inputs, or still pending: later accumulation into
 * .grad must leave those untouched. */
static void test_leaf_gradient_takeover_is_safe(void) {
    aqa_scope_begin();
    aqa_tensor *x = aqa_requires_grad(aqa_from_data((float[]){1, 2, 3}, AQA_SHAPE(3), AQA_F32), true);
    aqa_tensor *gy = aqa_from_data((float[]){1, 10, 100}, AQA_SHAPE(3), AQA_F32);
    /* identity node (dropout in eval mode): its backward hands on the caller's gy */
    CHECK(aqa_backward(aqa_dropout(x, 0.5, false, NULL), gy, false) == AQA_OK);
    CHECK(x->grad && x->grad->storage != gy->storage);
    CHECK(aqa_backward(aqa_dropout(x, 0.5, false, NULL), gy, false) == AQA_OK);
    CHECK_NEAR(((float *)aqa_data(gy))[1], 10, 0);
    CHECK_NEAR(((float *)aqa_data(x->grad))[1], 20, 0);
    aqa_zero_grad(x);
    /* x + x: add's backward gives one tensor to both inputs */
    aqa_tensor *s = aqa_mul_scalar(aqa_add(x, x), 1.0);
    CHECK(aqa_backward(s, gy, false) == AQA_OK);
    CHECK_NEAR(((float *)aqa_data(x->grad))[2], 200, 0);
    CHECK_NEAR(((float *)aqa_data(gy))[2], 100, 0);
    aqa_zero_grad(x);
    /* a fresh gradient (x * 3) is taken over and its values are x's gradient */
    CHECK(aqa_backward(aqa_mul_scalar(x, 3.0), gy, false) == AQA_OK);
    CHECK_NEAR(((float *)aqa_data(x->grad))[0], 3, 0);
    aqa_zero_grad(x);
    aqa_scope_end();
}

static void test_graph_lifetime_no_leaks(void) {
    int64_t before = aqa_live_tensors(), storages = aqa_live_storages();
    aqa_tensor *w = aqa_requires_grad(aqa_ones(AQA_SHAPE(4, 4), AQA_F32), true);
    for (int step = 0; step < 3; step++) {
        aqa_scope_begin();
        aqa_tensor *x = aqa_rand(AQA_SHAPE(4, 4), AQA_F32, NULL);
        aqa_tensor *loss = aqa_sum_all(aqa_tanh(aqa_mul(x, w)));
        CHECK(aqa_backward(loss, NULL, false) == AQA_OK);
        aqa_scope_end();
    }
    CHECK(w->grad != NULL);
    aqa_tensor_free(w); /* frees its .grad too */
    CHECK_EQ_INT(aqa_live_tensors(), before);
    CHECK_EQ_INT(aqa_live_storages(), storages);
}

static void test_long_chain_frees_iteratively(void) {
    /* 100k nodes: freeing must not recurse per node */
    int64_t before = aqa_live_tensors();
    aqa_scope_begin();
    aqa_tensor *x = aqa_requires_grad(aqa_ones(AQA_SHAPE(1), AQA_F32), true);
    aqa_tensor *y = x;
    for (int i = 0; i < 100000; i++) {
        aqa_tensor *next = aqa_add_scalar(y, 1e-6);
        if (y != x) aqa_tensor_free(y); /* only the graph keeps the chain */
        y = next;
    }
    CHECK(aqa_backward(y, NULL, false) == AQA_OK);
    CHECK_NEAR(aqa_get(x->grad, (int64_t[]){0}), 1, 0);
    aqa_scope_end();
    CHECK_EQ_INT(aqa_live_tensors(), before);
}

/* ---- in-place writes after a forward (the version counter) ---- */

/* One in-place write into w (or a view of it); named after the op for the failure line. */
typedef struct { const char *op; aqa_status (*write)(aqa_tensor *w); } inplace_write;
static aqa_status w_add(aqa_tensor *w) { return aqa_add_(w, aqa_ones_like(w), 1.0); }
static aqa_status w_mul(aqa_tensor *w) { return aqa_mul_scalar_(w, 2.0); }
static aqa_status w_fill(aqa_tensor *w) { return aqa_fill_(w, 3.0); }
static aqa_status w_zero(aqa_tensor *w) { return aqa_zero_(w); }
static aqa_status w_copy(aqa_tensor *w) { return aqa_copy_(w, aqa_full_like(w, 4.0)); }
static aqa_status w_uniform(aqa_tensor *w) { return aqa_uniform_(w, 0, 1, NULL); }
static aqa_status w_normal(aqa_tensor *w) { return aqa_normal_(w, 0, 1, NULL); }
static aqa_status w_init(aqa_tensor *w) { return aqa_init_trunc_normal_(w, 0, 1, -2, 2, NULL); }
static aqa_status w_view(aqa_tensor *w) { return aqa_fill_(aqa_select(aqa_transpose(w, 0, 1), 1, 0), 5.0); }

static void test_inplace_write_after_forward_fails_backward(void) {
    static const inplace_write writes[] = {
        {"aqa_add_", w_add},         {"aqa_mul_scalar_", w_mul}, {"aqa_fill_", w_fill},
        {"aqa_fill_", w_zero},       {"aqa_copy_", w_copy},      {"aqa_uniform_", w_uniform},
        {"aqa_normal_", w_normal},   {"aqa_init_trunc_normal_", w_init},
        {"aqa_fill_", w_view}, /* through a view: views share the counter */
    };
    for (size_t k = 0; k < sizeof writes / sizeof *writes; k++) {
        aqa_scope_begin();
        aqa_tensor *w = aqa_set_name(aqa_requires_grad(aqa_ones(AQA_SHAPE(2, 3), AQA_F64), true), "fc.weight");
        aqa_tensor *x = aqa_requires_grad(aqa_ones(AQA_SHAPE(2, 3), AQA_F64), true);
        aqa_tensor *loss = aqa_sum_all(aqa_mul(x, w)); /* mul saves w (for x's gradient) */
        int64_t v = aqa_tensor_version(w);
        bool prev = aqa_set_grad_enabled(false);
        CHECK_MSG(writes[k].write(w) == AQA_OK, "%s: %s", writes[k].op, aqa_last_error());
        aqa_set_grad_enabled(prev);
        CHECK_MSG(aqa_tensor_version(w) > v, "%s did not bump the version", writes[k].op);
        CHECK_MSG(aqa_backward(loss, NULL, false) == AQA_ESTATE, "%s: backward did not fail", writes[k].op);
        const char *e = aqa_last_error();
        CHECK_MSG(strstr(e, "modified by an in-place operation") && strstr(e, "fc.weight") &&
                      strstr(e, "saved by mul") && strstr(e, writes[k].op),
                  "%s: message \"%s\"", writes[k].op, e);
        CHECK(x->grad == NULL); /* nothing computed from the new values */
        aqa_scope_end();
    }
}

static void test_inplace_write_legitimate_uses(void) {
    aqa_scope_begin();
    /* an input that no node saved may change: add's backward needs no values */
    aqa_tensor *a = aqa_requires_grad(aqa_ones(AQA_SHAPE(3), AQA_F64), true);
    aqa_tensor *b = aqa_requires_grad(aqa_ones(AQA_SHAPE(3), AQA_F64), true);
    aqa_tensor *y = aqa_sum_all(aqa_add(a, b));
    CHECK(aqa_fill_(b, 7.0) == AQA_OK);
    CHECK(aqa_backward(y, NULL, false) == AQA_OK);
    CHECK_NEAR(aqa_get(a->grad, (int64_t[]){0}), 1, 0);
    /* a write before the forward is fine, and so is one after backward (the optimizer's step) */
    aqa_tensor *w = aqa_requires_grad(vec((double[]){1, 2, 3}, 3), true);
    CHECK(aqa_mul_scalar_(w, 2.0) == AQA_OK);
    aqa_tensor *z = aqa_sum_all(aqa_square(w));
    CHECK(aqa_backward(z, NULL, false) == AQA_OK);
    CHECK_NEAR(aqa_get(w->grad, (int64_t[]){2}), 12, 1e-12);
    CHECK(aqa_add_(w, w->grad, -0.1) == AQA_OK);
    /* a clone is a new storage: writing into it leaves the saved original valid */
    aqa_tensor *c = aqa_clone(w);
    aqa_tensor *u = aqa_sum_all(aqa_mul(w, w));
    bool prev = aqa_set_grad_enabled(false);
    CHECK(aqa_fill_(c, 0.0) == AQA_OK);
    aqa_set_grad_enabled(prev);
    CHECK(aqa_backward(u, NULL, false) == AQA_OK);
    aqa_scope_end();
}

static void test_optimizer_step_between_forward_and_backward_fails(void) {
    aqa_scope_begin();
    aqa_tensor *w = aqa_requires_grad(vec((double[]){1, 2}, 2), true);
    aqa_keep(w);
    aqa_optimizer *opt = aqa_sgd_new(&(aqa_sgd_options)AQA_SGD_DEFAULTS);
    CHECK(aqa_optim_add_group(opt, &w, 1, 0.1, 0.0) == 0);
    aqa_tensor *loss = aqa_sum_all(aqa_square(w));
    CHECK(aqa_backward(loss, NULL, true) == AQA_OK);
    CHECK(aqa_optim_step(opt) == AQA_OK); /* legitimate: after backward */
    CHECK(aqa_backward(loss, NULL, false) == AQA_ESTATE); /* the retained graph saw w before the step */
    CHECK(strstr(aqa_last_error(), "optimizer step") != NULL);
    aqa_optim_free(opt);
    aqa_scope_end();
    aqa_tensor_free(w);
}

int main(void) {
    RUN(test_chain_rule_values);
    RUN(test_shared_input_accumulates);
    RUN(test_broadcast_gradient_reduced);
    RUN(test_no_grad_and_detach);
    RUN(test_backward_with_grad_output);
    RUN(test_gradcheck_views);
    RUN(test_gradcheck_catches_wrong_backward);
    RUN(test_leaf_gradient_takeover_is_safe);
    RUN(test_graph_lifetime_no_leaks);
    RUN(test_long_chain_frees_iteratively);
    RUN(test_inplace_write_after_forward_fails_backward);
    RUN(test_inplace_write_legitimate_uses);
    RUN(test_optimizer_step_between_forward_and_backward_fails);
    return test_finish();
}
