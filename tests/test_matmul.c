/* test_matmul.c: aqa_matmul in every rank combination (dot, matrix-vector, vector-matrix,
 * matrix-matrix, batched with batch broadcasting), on transposed, permuted, sliced and expanded
 * operands, in float32/float64/int64, against a naive reference written here; gradients by
 * gradcheck in float64; PyTorch golden data (scripts/gen_golden_reduce_matmul.py). */
#include <math.h>

#include "aqa.h"
#include "tests/test_util.h"

/* torch.matmul by its definition, in double, on host copies.  Returns the result shape in
 * (rnd, rshape) and the values (malloc'ed). */
static double *ref_matmul(const aqa_tensor *a, const aqa_tensor *b, int *rnd, int64_t *rshape) {
    double *av = test_host(a), *bv = test_host(b);
    bool a1 = a->ndim == 1, b1 = b->ndim == 1;
    int64_t m = a1 ? 1 : a->shape[a->ndim - 2], k = a->shape[a->ndim - 1];
    int64_t n = b1 ? 1 : b->shape[b->ndim - 1];
    int na = a->ndim > 2 ? a->ndim - 2 : 0, nb = b->ndim > 2 ? b->ndim - 2 : 0;
    int nbat = na > nb ? na : nb;
    int64_t bat[8], abat[8], bbat[8];
    for (int i = 0; i < nbat; i++) {
        int ja = i - (nbat - na), jb = i - (nbat - nb);
        abat[i] = ja >= 0 ? a->shape[ja] : 1;
        bbat[i] = jb >= 0 ? b->shape[jb] : 1;
        bat[i] = abat[i] > bbat[i] ? abat[i] : bbat[i];
    }
    int64_t nbatch = 1;
    for (int i = 0; i < nbat; i++) nbatch *= bat[i];
    double *c = calloc((size_t)(nbatch * m * n), sizeof(double));
    for (int64_t bi = 0; bi < nbatch; bi++) {
        int64_t rem = bi, ao = 0, bo = 0, as = 1, bs = 1;
        for (int i = nbat - 1; i >= 0; i--) {
            int64_t idx = rem % bat[i];
            rem /= bat[i];
            ao += (abat[i] == 1 ? 0 : idx) * as;
            bo += (bbat[i] == 1 ? 0 : idx) * bs;
            as *= abat[i];
            bs *= bbat[i];
        }
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double s = 0;
                for (int64_t l = 0; l < k; l++) s += av[ao * m * k + i * k + l] * bv[bo * k * n + l * n + j];
                c[bi * m * n + i * n + j] = s;
            }
    }
    *rnd = 0;
    for (int i = 0; i < nbat; i++) rshape[(*rnd)++] = bat[i];
    if (!a1) rshape[(*rnd)++] = m;
    if (!b1) rshape[(*rnd)++] = n;
    free(av);
    free(bv);
    return c;
}

static void check_against_ref(aqa_tensor *a, aqa_tensor *b, double tol, const char *what) {
    int rnd;
    int64_t rshape[8];
    double *ref = ref_matmul(a, b, &rnd, rshape);
    aqa_tensor *c = aqa_matmul(a, b);
    CHECK_MSG(c != NULL, "%s: %s", what, aqa_last_error());
    if (c) {
        CHECK_MSG(test_shape_is(c, rnd, rshape), "%s: wrong result shape", what);
        double *cv = test_host(c);
        int64_t n = aqa_numel(c);
        int bad = 0;
        for (int64_t i = 0; i < n && bad < 3; i++)
            if (!(fabs(cv[i] - ref[i]) <= tol * (1 + fabs(ref[i])))) {
                CHECK_MSG(0, "%s[%lld] = %.9g, reference %.9g", what, (long long)i, cv[i], ref[i]);
                bad++;
            }
        free(cv);
    }
    free(ref);
}

static void test_hand(void) {
    aqa_scope_begin();
    aqa_tensor *a = aqa_from_data((float[]){1, 2, 3, 4, 5, 6}, AQA_SHAPE(2, 3), AQA_F32);
    aqa_tensor *b = aqa_from_data((float[]){7, 8, 9, 10, 11, 12}, AQA_SHAPE(3, 2), AQA_F32);
    aqa_tensor *c = aqa_matmul(a, b);
    CHECK(test_shape_is(c, AQA_SHAPE(2, 2)));
    CHECK_NEAR(aqa_get(c, (int64_t[]){0, 0}), 58, 0);
    CHECK_NEAR(aqa_get(c, (int64_t[]){0, 1}), 64, 0);
    CHECK_NEAR(aqa_get(c, (int64_t[]){1, 0}), 139, 0);
    CHECK_NEAR(aqa_get(c, (int64_t[]){1, 1}), 154, 0);
    /* dot, matrix-vector, vector-matrix */
    aqa_tensor *v = aqa_from_data((float[]){1, -1, 2}, AQA_SHAPE(3), AQA_F32);
    aqa_tensor *d = aqa_matmul(v, v);
    CHECK_EQ_INT(d->ndim, 0);
    CHECK_NEAR(aqa_item(d), 6, 0);
    aqa_tensor *mv = aqa_matmul(a, v);
    CHECK(test_shape_is(mv, AQA_SHAPE(2)));
    CHECK_NEAR(aqa_get(mv, (int64_t[]){1}), 4 - 5 + 12, 0);
    aqa_tensor *vm = aqa_matmul(v, b);
    CHECK(test_shape_is(vm, AQA_SHAPE(2)));
    CHECK_NEAR(aqa_get(vm, (int64_t[]){0}), 7 - 9 + 22, 0);
    /* int64; mixed dtypes are an error, as torch.matmul's */
    aqa_tensor *ai = aqa_to_dtype(a, AQA_I64);
    aqa_tensor *ci = aqa_matmul(ai, aqa_to_dtype(b, AQA_I64));
    CHECK_EQ_INT(ci->dtype, AQA_I64);
    CHECK_EQ_INT((int64_t)aqa_get(ci, (int64_t[]){1, 1}), 154);
    CHECK(aqa_matmul(ai, aqa_to_dtype(b, AQA_F64)) == NULL);
    CHECK_STR(aqa_last_error(), "aqa_matmul: input is int64 but other is float64; the operands of a layer must share "
                                "one dtype (as in PyTorch): convert one explicitly with aqa_to_dtype, or a module with "
                                "aqa_module_to_dtype");
    CHECK(aqa_matmul(a, aqa_to_dtype(b, AQA_F64)) == NULL);
    /* errors */
    CHECK(aqa_matmul(a, a) == NULL);
    CHECK(strstr(aqa_last_error(), "cannot be multiplied") != NULL);
    CHECK(aqa_matmul(aqa_scalar(1, AQA_F32), a) == NULL);
    CHECK(aqa_matmul(aqa_ones(AQA_SHAPE(2, 2, 3), AQA_F32), aqa_ones(AQA_SHAPE(3, 3, 2), AQA_F32)) == NULL);
    CHECK(aqa_matmul(NULL, a) == NULL);
    /* empty dims */
    aqa_tensor *e = aqa_matmul(aqa_ones(AQA_SHAPE(0, 3), AQA_F32), b);
    CHECK(test_shape_is(e, AQA_SHAPE(0, 2)));
    aqa_tensor *z = aqa_matmul(aqa_ones(AQA_SHAPE(2, 0), AQA_F32), aqa_ones(AQA_SHAPE(0, 3), AQA_F32));
    CHECK(test_shape_is(z, AQA_SHAPE(2, 3)));
    CHECK_NEAR(aqa_get(z, (int64_t[]){1, 2}), 0, 0);
    aqa_scope_end();
}

/* Every rank combination and layout against the reference. */
static void test_ranks_and_layouts(void) {
    aqa_scope_begin();
    aqa_manual_seed(test_seed("matmul layouts"));
    static const struct {
        int na;
        int64_t sa[4];
        int nb;
        int64_t sb[4];
    } shapes[] = {
        {1, {7}, 1, {7}},
        {2, {3, 7}, 1, {7}},
        {1, {7}, 2, {7, 4}},
        {2, {3, 7}, 2, {7, 4}},
        {3, {2, 3, 7}, 1, {7}},
        {1, {7}, 3, {2, 7, 4}},
        {3, {2, 3, 7}, 2, {7, 4}},
        {2, {3, 7}, 3, {2, 7, 4}},
        {3, {2, 3, 7}, 3, {2, 7, 4}},
        {4, {2, 1, 3, 4}, 3, {5, 4, 6}},
        {3, {5, 1, 7}, 4, {2, 5, 7, 3}},
        {2, {1, 7}, 2, {7, 1}},
        {2, {1, 7}, 2, {7, 4}}, /* gemv paths with every transpose */
        {2, {3, 7}, 2, {7, 1}},
        {3, {2, 1, 7}, 3, {2, 7, 5}},
    };
    for (int dt = 0; dt < 3; dt++) {
        aqa_dtype d = dt == 0 ? AQA_F32 : dt == 1 ? AQA_F64 : AQA_I64;
        double tol = dt == 0 ? 1e-5 : dt == 1 ? 1e-13 : 0;
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
            aqa_tensor *a = aqa_randn(shapes[i].na, shapes[i].sa, AQA_F32, NULL);
            aqa_tensor *b = aqa_randn(shapes[i].nb, shapes[i].sb, AQA_F32, NULL);
            if (d == AQA_I64) {
                a = aqa_to_dtype(aqa_mul_scalar(a, 5), AQA_I64);
                b = aqa_to_dtype(aqa_mul_scalar(b, 5), AQA_I64);
            } else {
                a = aqa_to_dtype(a, d);
                b = aqa_to_dtype(b, d);
            }
            char what[64];
            snprintf(what, sizeof what, "case %zu dtype %d", i, dt);
            check_against_ref(a, b, tol, what);
            /* the same values through transposed storage (BLAS transposes, no copies) */
            if (a->ndim >= 2 && b->ndim >= 2) {
                aqa_tensor *at = aqa_transpose(aqa_contiguous(aqa_transpose(a, -1, -2)), -1, -2);
                aqa_tensor *bt = aqa_transpose(aqa_contiguous(aqa_transpose(b, -1, -2)), -1, -2);
                CHECK(a->shape[a->ndim - 2] == 1 || !aqa_is_contiguous(at));
                snprintf(what, sizeof what, "case %zu dtype %d, a^T storage", i, dt);
                check_against_ref(at, b, tol, what);
                snprintf(what, sizeof what, "case %zu dtype %d, b^T storage", i, dt);
                check_against_ref(a, bt, tol, what);
                snprintf(what, sizeof what, "case %zu dtype %d, both", i, dt);
                check_against_ref(at, bt, tol, what);
            }
        }
    }
    /* layouts BLAS cannot take: every other column (copied), expanded (stride 0) operands,
     * permuted batch dims, and the folded linear-layer case with both weight layouts */
    aqa_tensor *wide = aqa_randn(AQA_SHAPE(4, 5, 12), AQA_F32, NULL);
    aqa_tensor *stepped = aqa_slice(wide, 2, 0, 12, 2); /* [4, 5, 6], column stride 2 */
    aqa_tensor *w = aqa_randn(AQA_SHAPE(6, 3), AQA_F32, NULL);
    check_against_ref(stepped, w, 1e-5, "stepped columns");
    check_against_ref(aqa_transpose(w, 0, 1), aqa_transpose(stepped, 1, 2), 1e-5, "stepped rows of b");
    aqa_tensor *row = aqa_randn(AQA_SHAPE(1, 6), AQA_F32, NULL);
    check_against_ref(aqa_expand(row, AQA_SHAPE(5, 6)), w, 1e-5, "expanded a");
    check_against_ref(stepped, aqa_expand(aqa_randn(AQA_SHAPE(6, 1), AQA_F32, NULL), AQA_SHAPE(6, 3)), 1e-5,
                      "expanded b");
    aqa_tensor *x = aqa_randn(AQA_SHAPE(3, 8, 6), AQA_F32, NULL); /* folded: [24, 6] @ [6, 3] */
    check_against_ref(x, w, 1e-5, "folded");
    check_against_ref(x, aqa_transpose(aqa_randn(AQA_SHAPE(3, 6), AQA_F32, NULL), 0, 1), 1e-5, "folded, W^T");
    check_against_ref(aqa_permute(aqa_randn(AQA_SHAPE(8, 3, 6), AQA_F32, NULL), (int[]){1, 0, 2}), w, 1e-5,
                      "permuted batch (no fold)");
    aqa_tensor *q = aqa_randn(AQA_SHAPE(2, 7, 3, 4), AQA_F32, NULL); /* [B, T, H, D] */
    aqa_tensor *qh = aqa_permute(q, (int[]){0, 2, 1, 3});          /* [B, H, T, D] */
    check_against_ref(qh, aqa_transpose(qh, -1, -2), 1e-5, "attention scores q @ k^T");
    /* a big one, to leave the small-matrix paths of BLAS */
    aqa_tensor *ba = aqa_randn(AQA_SHAPE(130, 257), AQA_F64, NULL);
    aqa_tensor *bb = aqa_randn(AQA_SHAPE(257, 66), AQA_F64, NULL);
    check_against_ref(ba, bb, 1e-12, "130x257x66");
    check_against_ref(aqa_transpose(bb, 0, 1), aqa_transpose(ba, 0, 1), 1e-12, "66x257x130 transposed");
    aqa_scope_end();
}

typedef struct mm_case {
    const char *name;
    int na;
    int64_t sa[4];
    int nb;
    int64_t sb[4];
    bool ta, tb; /* use the transpose of the (stored transposed) input */
} mm_case;

static aqa_tensor *mm_fn(aqa_tensor *const *in, int n, void *user) {
    const mm_case *c = user;
    aqa_tensor *a = c->ta ? aqa_transpose(in[0], -1, -2) : in[0];
    aqa_tensor *b = c->tb ? aqa_transpose(in[1], -1, -2) : in[1];
    return aqa_matmul(a, b);
}

static void test_gradcheck(void) {
    static const mm_case cases[] = {
        {"dot", 1, {5}, 1, {5}, false, false},
        {"2x1", 2, {3, 5}, 1, {5}, false, false},
        {"1x2", 1, {5}, 2, {5, 4}, false, false},
        {"2x2", 2, {3, 5}, 2, {5, 4}, false, false},
        {"2x2 a^T", 2, {5, 3}, 2, {5, 4}, true, false},
        {"2x2 b^T", 2, {3, 5}, 2, {4, 5}, false, true},
        {"2x2 both^T", 2, {5, 3}, 2, {4, 5}, true, true},
        {"3x1", 3, {2, 3, 5}, 1, {5}, false, false},
        {"1x3", 1, {5}, 3, {2, 5, 4}, false, false},
        {"3x2 (folded)", 3, {2, 3, 5}, 2, {5, 4}, false, false},
        {"3x2 b^T (folded)", 3, {2, 3, 5}, 2, {4, 5}, false, true},
        {"3x2 a^T", 3, {2, 5, 3}, 2, {5, 4}, true, false},
        {"2x3", 2, {3, 5}, 3, {2, 5, 4}, false, false},
        {"3x3", 3, {2, 3, 5}, 3, {2, 5, 4}, false, false},
        {"broadcast 4x3", 4, {2, 1, 3, 4}, 3, {3, 4, 2}, false, false},
        {"broadcast 3x4 transposed", 3, {3, 4, 2}, 4, {2, 1, 3, 4}, true, true},
    };
    aqa_manual_seed(test_seed("matmul gradcheck"));
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        aqa_scope_begin();
        aqa_tensor *in[2] = {
            aqa_requires_grad(aqa_randn(cases[i].na, cases[i].sa, AQA_F64, NULL), true),
            aqa_requires_grad(aqa_randn(cases[i].nb, cases[i].sb, AQA_F64, NULL), true),
        };
        aqa_gradcheck_result r = aqa_gradcheck(mm_fn, in, 2, (void *)&cases[i], 1e-6, 1e-8, 1e-6);
        CHECK_MSG(r.ok, "%s: %s", cases[i].name, r.message);
        aqa_scope_end();
    }
    /* only one side requiring grad */
    aqa_scope_begin();
    aqa_tensor *a = aqa_requires_grad(aqa_randn(AQA_SHAPE(2, 3, 4), AQA_F64, NULL), true);
    aqa_tensor *b = aqa_randn(AQA_SHAPE(4, 2), AQA_F64, NULL);
    CHECK(aqa_backward(aqa_sum_all(aqa_matmul(a, b)), NULL, false) == AQA_OK);
    /* d sum(a @ b) / da[.., i, l] = sum_j b[l, j] */
    for (int64_t l = 0; l < 4; l++)
        CHECK_NEAR(aqa_get(a->grad, (int64_t[]){1, 2, l}),
                   aqa_get(b, (int64_t[]){l, 0}) + aqa_get(b, (int64_t[]){l, 1}), 1e-14);
    CHECK(b->grad == NULL);
    aqa_scope_end();
}

static void test_golden(void) {
    if (!test_golden_open("golden_reduce_matmul.safetensors")) {
        CHECK_MSG(0, "cannot open golden file: %s", aqa_last_error());
        return;
    }
    static const char *names[] = {"mm_1x1", "mm_2x1", "mm_1x2", "mm_2x2", "mm_3x1",
                                  "mm_1x3", "mm_3x2", "mm_2x3", "mm_bcast"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        aqa_scope_begin();
        char what[64];
#define G(suffix) (snprintf(what, sizeof what, "%s.%s", names[i], suffix), GOLDEN("%s", what))
        aqa_tensor *a = aqa_requires_grad(G("a"), true), *b = aqa_requires_grad(G("b"), true);
        aqa_tensor *y = aqa_matmul(a, b);
        CHECK_CLOSE_SCALED(what, y, G("y"), 1e-5);
        CHECK(y && aqa_backward(y, G("gy"), false) == AQA_OK);
        CHECK_CLOSE_SCALED(what, a->grad, G("ga"), 1e-5);
        CHECK_CLOSE_SCALED(what, b->grad, G("gb"), 1e-5);
#undef G
        aqa_scope_end();
    }
}

static void test_no_leaks(void) {
    int64_t t0 = aqa_live_tensors(), s0 = aqa_live_storages();
    aqa_tensor *a = aqa_requires_grad(aqa_randn(AQA_SHAPE(2, 3, 4), AQA_F32, NULL), true);
    aqa_tensor *b = aqa_randn(AQA_SHAPE(4), AQA_F32, NULL);
    aqa_tensor *c = aqa_matmul(a, b); /* saved aliases kept by the node */
    aqa_tensor *bad = aqa_matmul(a, a);
    CHECK(c && !bad);
    aqa_tensor_free(c);
    aqa_tensor_free(a);
    aqa_tensor_free(b);
    CHECK_EQ_INT(aqa_live_tensors(), t0);
    CHECK_EQ_INT(aqa_live_storages(), s0);
}

int main(void) {
    RUN(test_hand);
    RUN(test_ranks_and_layouts);
    RUN(test_gradcheck);
    RUN(test_golden);
    RUN(test_no_leaks);
    test_golden_close();
    return test_finish();
}
