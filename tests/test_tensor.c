/* test_tensor.c: the tensor core: creation, views, ownership scopes, copies and dtype
 * conversion, printing, and the Philox generator. */
#include <math.h>

#include "aqa.h"
#include "tests/testlib.h"

static void test_creation_and_shapes(void) {
    aqa_scope_begin();
    aqa_tensor *z = aqa_zeros(AQA_SHAPE(2, 3), AQA_F32);
    CHECK_EQ_INT(z->ndim, 2);
    CHECK_EQ_INT(aqa_numel(z), 6);
    CHECK_EQ_INT(z->stride[0], 3);
    CHECK(aqa_is_contiguous(z));
    CHECK_NEAR(aqa_get(z, (int64_t[]){1, 2}), 0.0, 0);
    aqa_tensor *f = aqa_full(AQA_SHAPE(4), 2.5, AQA_F64);
    CHECK_NEAR(aqa_get(f, (int64_t[]){3}), 2.5, 0);
    aqa_tensor *a = aqa_arange(0, 5, 1, AQA_I64);
    CHECK_EQ_INT(aqa_numel(a), 5);
    CHECK_EQ_INT((int64_t)aqa_get(a, (int64_t[]){4}), 4);
    aqa_tensor *l = aqa_linspace(0, 1, 5, AQA_F32);
    CHECK_NEAR(aqa_get(l, (int64_t[]){1}), 0.25, 1e-7);
    CHECK_NEAR(aqa_get(l, (int64_t[]){4}), 1.0, 0);
    aqa_tensor *s = aqa_scalar(3.0, AQA_F32);
    CHECK_EQ_INT(s->ndim, 0);
    CHECK_NEAR(aqa_item(s), 3.0, 0);
    CHECK(aqa_zeros(AQA_SHAPE(2, -1), AQA_F32) == NULL);
    CHECK(strstr(aqa_last_error(), "negative size") != NULL);
    aqa_tensor *e = aqa_zeros(AQA_SHAPE(0, 4), AQA_F32);
    CHECK_EQ_INT(aqa_numel(e), 0);
    aqa_scope_end();
}

static void test_from_data_and_copy_to_host(void) {
    aqa_scope_begin();
    float data[6] = {1, 2, 3, 4, 5, 6};
    aqa_tensor *t = aqa_from_data(data, AQA_SHAPE(2, 3), AQA_F32);
    double out[6];
    CHECK(aqa_copy_to_host(t, out, AQA_F64) == AQA_OK);
    for (int i = 0; i < 6; i++) CHECK_NEAR(out[i], data[i], 0);
    aqa_tensor *tt = aqa_transpose(t, 0, 1);
    CHECK(!aqa_is_contiguous(tt));
    CHECK(aqa_copy_to_host(tt, out, AQA_F64) == AQA_OK);
    double expect[6] = {1, 4, 2, 5, 3, 6};
    for (int i = 0; i < 6; i++) CHECK_NEAR(out[i], expect[i], 0);
    int64_t ids[6];
    aqa_tensor *d = aqa_from_data((double[]){1.9, -2.5, 0, 3, 4, 5}, AQA_SHAPE(6), AQA_F64);
    CHECK(aqa_copy_to_host(aqa_to_dtype(d, AQA_I64), ids, AQA_I64) == AQA_OK);
    CHECK_EQ_INT(ids[0], 1); /* truncation toward zero, as torch's .long() */
    CHECK_EQ_INT(ids[1], -2);
    aqa_scope_end();
}

static void test_views(void) {
    aqa_scope_begin();
    aqa_tensor *t = aqa_arange(0, 24, 1, AQA_F32);
    aqa_tensor *v = aqa_view(t, AQA_SHAPE(2, 3, 4));
    CHECK(v && v->storage == t->storage);
    CHECK_NEAR(aqa_get(v, (int64_t[]){1, 2, 3}), 23, 0);
    aqa_tensor *inferred = aqa_view(t, AQA_SHAPE(-1, 6));
    CHECK_EQ_INT(inferred->shape[0], 4);
    aqa_tensor *p = aqa_permute(v, (int[]){2, 0, 1});
    CHECK_EQ_INT(p->shape[0], 4);
    CHECK_NEAR(aqa_get(p, (int64_t[]){3, 1, 2}), 23, 0);
    CHECK_NEAR(aqa_get(p, (int64_t[]){1, 0, 2}), 9, 0);
    /* a permuted tensor cannot be viewed flat, but reshape copies */
    CHECK(aqa_view(p, AQA_SHAPE(24)) == NULL);
    aqa_tensor *r = aqa_reshape(p, AQA_SHAPE(24));
    CHECK(r && r->storage != t->storage);
    CHECK_NEAR(aqa_get(r, (int64_t[]){1}), 4, 0); /* p[0,0,1] = v[0,1,0] = 4 */
    /* slicing with a step, negative bounds */
    aqa_tensor *s = aqa_slice(t, 0, 1, -1, 5);
    CHECK_EQ_INT(s->shape[0], 5); /* 1, 6, 11, 16, 21 */
    CHECK_NEAR(aqa_get(s, (int64_t[]){4}), 21, 0);
    aqa_tensor *n = aqa_narrow(v, 2, 1, 2);
    CHECK_EQ_INT(n->shape[2], 2);
    CHECK_NEAR(aqa_get(n, (int64_t[]){1, 1, 0}), 17, 0);
    CHECK(aqa_narrow(v, 2, 3, 2) == NULL);
    aqa_tensor *sel = aqa_select(v, 1, -1);
    CHECK_EQ_INT(sel->ndim, 2);
    CHECK_NEAR(aqa_get(sel, (int64_t[]){1, 0}), 20, 0);
    /* a view of a slice of a transpose: merged strides still right */
    aqa_tensor *vt = aqa_view(aqa_narrow(aqa_transpose(v, 0, 1), 0, 1, 2), AQA_SHAPE(2, 2, 4));
    CHECK(vt != NULL);
    CHECK_NEAR(aqa_get(vt, (int64_t[]){1, 1, 3}), 23, 0);
    aqa_tensor *e = aqa_expand(aqa_view(aqa_arange(0, 3, 1, AQA_F32), AQA_SHAPE(3, 1)), AQA_SHAPE(2, 3, 4));
    CHECK_EQ_INT(e->stride[0], 0);
    CHECK_EQ_INT(e->stride[2], 0);
    CHECK_NEAR(aqa_get(e, (int64_t[]){1, 2, 3}), 2, 0);
    CHECK(aqa_expand(v, AQA_SHAPE(2, 5, 4)) == NULL);
    aqa_tensor *u = aqa_unsqueeze(v, -1);
    CHECK_EQ_INT(u->ndim, 4);
    CHECK_EQ_INT(u->shape[3], 1);
    aqa_tensor *sq = aqa_squeeze(u, AQA_ALL_DIMS);
    CHECK_EQ_INT(sq->ndim, 3);
    aqa_tensor *fl = aqa_flatten(v, 1, -1);
    CHECK_EQ_INT(fl->ndim, 2);
    CHECK_EQ_INT(fl->shape[1], 12);
    aqa_scope_end();
}

static void test_scopes_free_everything(void) {
    int64_t tensors = aqa_live_tensors(), storages = aqa_live_storages();
    aqa_tensor *kept;
    aqa_scope_begin();
    {
        aqa_tensor *a = aqa_ones(AQA_SHAPE(3, 3), AQA_F32);
        aqa_scope_begin();
        aqa_tensor *b = aqa_transpose(a, 0, 1);
        kept = aqa_keep(aqa_clone(b)); /* moves to the outer scope */
        aqa_scope_end();
        CHECK_NEAR(aqa_get(kept, (int64_t[]){0, 0}), 1, 0); /* still alive */
        kept = aqa_keep(kept);                              /* now the caller's */
    }
    aqa_scope_end();
    CHECK_EQ_INT(aqa_live_tensors(), tensors + 1);
    CHECK_NEAR(aqa_get(kept, (int64_t[]){2, 2}), 1, 0);
    aqa_tensor_free(kept);
    CHECK_EQ_INT(aqa_live_tensors(), tensors);
    CHECK_EQ_INT(aqa_live_storages(), storages);
    /* keeping a tensor of an outer scope inside an inner one leaves it there (a function that
     * returns its input as one of its kept results must not move the caller's tensor out of
     * the caller's scope) */
    aqa_scope_begin();
    aqa_tensor *input = aqa_ones(AQA_SHAPE(2), AQA_F32);
    aqa_scope_begin();
    CHECK(aqa_keep(input) == input);
    aqa_scope_end();
    CHECK_NEAR(aqa_get(input, (int64_t[]){1}), 1, 0); /* still the outer scope's */
    aqa_scope_end();
    CHECK_EQ_INT(aqa_live_tensors(), tensors);
    /* freeing a scope-owned tensor early is allowed */
    aqa_scope_begin();
    aqa_tensor *x = aqa_zeros(AQA_SHAPE(4), AQA_F32);
    aqa_tensor_free(x);
    aqa_scope_end();
    CHECK_EQ_INT(aqa_live_tensors(), tensors);
}

static void test_copy_fill_inplace(void) {
    aqa_scope_begin();
    aqa_tensor *z = aqa_zeros(AQA_SHAPE(3, 4), AQA_F64);
    aqa_tensor *col = aqa_narrow(z, 1, 1, 1);
    CHECK(aqa_fill_(col, 7) == AQA_OK);
    CHECK_NEAR(aqa_get(z, (int64_t[]){2, 1}), 7, 0);
    CHECK_NEAR(aqa_get(z, (int64_t[]){2, 2}), 0, 0);
    aqa_tensor *row = aqa_from_data((float[]){1, 2, 3, 4}, AQA_SHAPE(4), AQA_F32);
    CHECK(aqa_copy_(z, row) == AQA_OK); /* broadcast over rows, f32 -> f64 */
    CHECK_NEAR(aqa_get(z, (int64_t[]){2, 3}), 4, 0);
    aqa_scope_end();
}

static void test_philox_known_answer(void) {
    /* Random123's known-answer vector for philox4x32-10 with zero key and counter */
    uint32_t out[4];
    aqa_philox4x32(0, 0, out);
    CHECK_EQ_INT(out[0], 0x6627e8d5u);
    CHECK_EQ_INT(out[1], 0xe169c58du);
    CHECK_EQ_INT(out[2], 0xbc57ac4cu);
    CHECK_EQ_INT(out[3], 0x9b00dbd8u);
}

/* The CPU fill (vectorised Philox, threads) against aqa_philox4x32 called per element with the
 * documented mapping: element i of rand/randint is word i % 4 of block offset + i / 4, element i
 * of randn uses words 2 (i % 2) and 2 (i % 2) + 1 of block offset + i / 2.  Sizes cover the
 * vector tails and the threaded path; the offset starts unaligned. */
static void test_random_matches_scalar_philox(void) {
    aqa_scope_begin();
    aqa_manual_seed(0x123456789abcdefull);
    aqa_rand(AQA_SHAPE(5), AQA_F32, NULL); /* offset 2: not a multiple of any vector width */
    const int64_t sizes[] = {1, 37, 70001};
    const aqa_generator *g = aqa_default_generator();
    for (int si = 0; si < 3; si++) {
        int64_t n = sizes[si];
        for (int kind = 0; kind < 5; kind++) { /* rand f32, rand f64, randn f32, randn f64, randint */
            uint64_t seed = g->seed, off = g->offset;
            aqa_tensor *t = kind == 4 ? aqa_randint(-5, 1000, AQA_SHAPE(n), NULL)
                            : kind < 2 ? aqa_rand(AQA_SHAPE(n), kind == 0 ? AQA_F32 : AQA_F64, NULL)
                                       : aqa_randn(AQA_SHAPE(n), kind == 2 ? AQA_F32 : AQA_F64, NULL);
            int64_t bad = -1;
            for (int64_t i = 0; i < n && bad < 0; i++) {
                uint32_t w[4];
                double want, got;
                if (kind == 2 || kind == 3) {
                    aqa_philox4x32(seed, off + (uint64_t)i / 2, w);
                    int j = (int)(i % 2) * 2;
                    double u1 = ((double)w[j] + 0.5) / 4294967296.0, u2 = (double)w[j + 1] / 4294967296.0;
                    want = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
                } else {
                    aqa_philox4x32(seed, off + (uint64_t)i / 4, w);
                    uint32_t x = w[i % 4];
                    want = kind == 0 ? (double)(x >> 8) / 16777216.0 : kind == 1 ? (double)x / 4294967296.0
                                                                                 : -5.0 + (double)(x % 1005u);
                }
                if (kind == 0 || kind == 2) {
                    want = (float)want;
                    got = ((float *)aqa_data(t))[i];
                } else if (kind == 4) {
                    got = (double)((int64_t *)aqa_data(t))[i];
                } else {
                    got = ((double *)aqa_data(t))[i];
                }
                if (got != want) bad = i;
            }
            CHECK_MSG(bad < 0, "kind %d, n %lld: element %lld differs from the scalar generator", kind, (long long)n,
                      (long long)bad);
        }
    }
    aqa_scope_end();
}

static void test_random_determinism_and_moments(void) {
    aqa_scope_begin();
    uint64_t seed = test_seed("random");
    aqa_manual_seed(seed);
    aqa_tensor *a = aqa_randn(AQA_SHAPE(100000), AQA_F64, NULL);
    aqa_tensor *u = aqa_rand(AQA_SHAPE(100000), AQA_F32, NULL);
    aqa_manual_seed(seed);
    aqa_tensor *b = aqa_randn(AQA_SHAPE(100000), AQA_F64, NULL);
    double *pa = aqa_data(a), *pb = aqa_data(b);
    float *pu = aqa_data(u);
    double mean = 0, var = 0, umean = 0, umin = 1, umax = 0;
    bool same = true;
    for (int i = 0; i < 100000; i++) {
        same &= pa[i] == pb[i];
        mean += pa[i];
        umean += pu[i];
        if (pu[i] < umin) umin = pu[i];
        if (pu[i] > umax) umax = pu[i];
    }
    mean /= 100000;
    umean /= 100000;
    for (int i = 0; i < 100000; i++) var += (pa[i] - mean) * (pa[i] - mean);
    var /= 100000;
    CHECK(same);
    CHECK_NEAR(mean, 0, 0.02);
    CHECK_NEAR(var, 1, 0.02);
    CHECK_NEAR(umean, 0.5, 0.01);
    CHECK(umin >= 0 && umax < 1);
    aqa_tensor *p = aqa_randperm(50, NULL);
    int seen[50] = {0};
    for (int i = 0; i < 50; i++) seen[((int64_t *)aqa_data(p))[i]]++;
    bool perm = true;
    for (int i = 0; i < 50; i++) perm &= seen[i] == 1;
    CHECK(perm);
    aqa_tensor *ri = aqa_randint(-3, 3, AQA_SHAPE(1000), NULL);
    bool in_range = true;
    for (int i = 0; i < 1000; i++) {
        int64_t v = ((int64_t *)aqa_data(ri))[i];
        in_range &= v >= -3 && v < 3;
    }
    CHECK(in_range);
    aqa_scope_end();
}

static void test_print(void) {
    aqa_scope_begin();
    aqa_tensor *t = aqa_from_data((float[]){1, -2.5f, 3, 4}, AQA_SHAPE(2, 2), AQA_F32);
    char *s = aqa_to_string(t);
    CHECK_STR(s, "tensor([[ 1.0000, -2.5000],\n        [ 3.0000,  4.0000]], shape=[2, 2], dtype=float32, device=cpu)");
    free(s);
    s = aqa_to_string(aqa_arange(0, 3, 1, AQA_I64));
    CHECK_STR(s, "tensor([0, 1, 2], shape=[3], dtype=int64, device=cpu)");
    free(s);
    s = aqa_to_string(aqa_ones(AQA_SHAPE(2), AQA_F32));
    CHECK_STR(s, "tensor([1., 1.], shape=[2], dtype=float32, device=cpu)");
    free(s);
    s = aqa_to_string(aqa_arange(0, 2000, 1, AQA_F32));
    CHECK(s && strstr(s, "[   0.,    1.,    2., ..., 1997., 1998., 1999.]") != NULL);
    free(s);
    aqa_scope_end();
}

static void test_cuda_device_without_backend(void) {
    /* asking for a device that is not available is an error, not a crash */
    aqa_scope_begin();
    aqa_tensor *t = aqa_ones(AQA_SHAPE(2), AQA_F32);
    aqa_tensor *c = aqa_to_device(t, aqa_cuda_device(99));
    CHECK(c == NULL);
    CHECK(strlen(aqa_last_error()) > 0);
    aqa_scope_end();
}

/* Debug mode: a tensor used after its scope ended, after aqa_tensor_free, or freed twice is
 * reported with the place it died; nothing crashes and nothing leaks. */
static void test_debug_mode_reports_use_after_free(void) {
    bool prev = aqa_set_debug(true);
    int64_t live = aqa_live_tensors();
    char want[512];
    int opened = __LINE__ + 1;
    aqa_scope_begin();
    aqa_tensor *x = aqa_set_name(aqa_ones(AQA_SHAPE(2, 3), AQA_F32), "activations");
    int closed = __LINE__ + 1;
    aqa_scope_end();
    aqa_clear_error();
    CHECK(aqa_add(x, x) == NULL);
    snprintf(want, sizeof want, "aqa_add: use of a freed tensor activations (float32 [2, 3]), freed at the end of the "
             "scope opened at %s:%d and closed at %s:%d", __FILE__, opened, __FILE__, closed);
    CHECK_MSG(strncmp(aqa_last_error(), want, strlen(want)) == 0, "got \"%s\"", aqa_last_error());
    /* the other entry points: views, in-place ops, reads, printing, backward, keep */
    CHECK(aqa_reshape(x, AQA_SHAPE(6)) == NULL && strstr(aqa_last_error(), "aqa_reshape: use of a freed tensor"));
    CHECK(aqa_fill_(x, 1.0) == AQA_ESTATE);
    CHECK(aqa_add_(x, x, 1.0) == AQA_ESTATE);
    CHECK(aqa_data(x) == NULL);
    CHECK(isnan(aqa_item(x)));
    char *s = aqa_to_string(x);
    CHECK(s && strstr(s, "freed tensor"));
    free(s);
    CHECK(aqa_backward(x, NULL, false) == AQA_ESTATE);
    CHECK(aqa_keep(x) == NULL);
    /* aqa_tensor_free, then a use and a second free */
    aqa_tensor *y = aqa_zeros(AQA_SHAPE(4), AQA_F64);
    int freed = __LINE__ + 1;
    aqa_tensor_free(y);
    CHECK(aqa_mul_scalar(y, 2.0) == NULL);
    snprintf(want, sizeof want, "aqa_mul_scalar: use of a freed tensor (float64 [4]), freed by aqa_tensor_free at %s:%d",
             __FILE__, freed);
    CHECK_STR(aqa_last_error(), want);
    aqa_clear_error();
    aqa_tensor_free(y);
    CHECK(strstr(aqa_last_error(), "aqa_tensor_free: use of a freed tensor") != NULL);
    CHECK_EQ_INT(aqa_live_tensors(), live);
    aqa_set_debug(prev);
}

int main(void) {
    RUN(test_creation_and_shapes);
    RUN(test_from_data_and_copy_to_host);
    RUN(test_views);
    RUN(test_scopes_free_everything);
    RUN(test_copy_fill_inplace);
    RUN(test_philox_known_answer);
    RUN(test_random_matches_scalar_philox);
    RUN(test_random_determinism_and_moments);
    RUN(test_print);
    RUN(test_cuda_device_without_backend);
    RUN(test_debug_mode_reports_use_after_free);
    return test_finish();
}
