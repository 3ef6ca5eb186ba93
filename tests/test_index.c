/* test_index.c: joining, splitting, indexing and padding ops (ops/ops_join.c,
 * ops/ops_index.c, tensor/cpu_index.c): hand-checked forward values, error cases, gradchecks
 * in f64 (with transposed and expanded inputs), and parity with PyTorch golden data
 * (tests/data/golden_index.safetensors, written by scripts/gen_golden_index.py). */
#define TEST_GRAD_TOL 1e-6, 1e-7, 1e-6
#include "tests/test_util.h"

#include "autograd/autograd.h"
#include "ops/ops.h"
#include "tensor/tensor.h"

/* ---- helpers ------------------------------------------------------------------------------- */


/* 0, 1, 2, ... as f64 of the given shape */
static aqa_tensor *iota(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return aqa_reshape(aqa_arange(0, (double)n, 1, AQA_F64), ndim, shape);
}

/* Checks t's shape against the expected one. */
#define CHECK_SHAPE(t, ...)                                                                        \
    do {                                                                                           \
        const int64_t exp_[] = {__VA_ARGS__};                                                      \
        int n_ = (int)(sizeof exp_ / sizeof exp_[0]);                                              \
        CHECK_MSG((t) != NULL, "%s is NULL: %s", #t, aqa_last_error());                            \
        if (t) {                                                                                   \
            CHECK_EQ_INT((t)->ndim, n_);                                                           \
            for (int k_ = 0; k_ < n_ && k_ < (t)->ndim; k_++) CHECK_EQ_INT((t)->shape[k_], exp_[k_]); \
        }                                                                                          \
    } while (0)

/* Compares all elements of t (any dtype, read as double) with exp[] within tol. */
static void check_values_at(const char *file, int line, const aqa_tensor *t, const double *exp, int64_t n, double tol) {
    if (!t) {
        test_fail_at(file, line, "tensor is NULL: %s", aqa_last_error());
        return;
    }
    if (aqa_numel(t) != n) {
        test_fail_at(file, line, "numel %lld, expected %lld", (long long)aqa_numel(t), (long long)n);
        return;
    }
    double *v = malloc(sizeof(double) * (size_t)(n ? n : 1));
    aqa_copy_to_host(t, v, AQA_F64);
    for (int64_t i = 0; i < n; i++)
        if (!(fabs(v[i] - exp[i]) <= tol * (1 + fabs(exp[i])))) {
            test_fail_at(file, line, "element %lld = %.9g, expected %.9g", (long long)i, v[i], exp[i]);
            break;
        }
    free(v);
}
#define CHECK_VALUES(t, tol, ...)                                                                     \
    do {                                                                                              \
        const double ev_[] = {__VA_ARGS__};                                                           \
        check_values_at(__FILE__, __LINE__, (t), ev_, (int64_t)(sizeof ev_ / sizeof ev_[0]), (tol)); \
    } while (0)

/* The call failed: NULL result and every fragment present in the recorded message. */
static void check_error_at(const char *file, int line, const void *result, const char *const *frags, int n) {
    if (result) {
        test_fail_at(file, line, "expected an error, got a result");
        return;
    }
    const char *msg = aqa_last_error();
    for (int i = 0; i < n; i++)
        if (!strstr(msg, frags[i])) test_fail_at(file, line, "error \"%s\" lacks \"%s\"", msg, frags[i]);
    aqa_clear_error();
}
#define CHECK_ERROR(result, ...)                                                                   \
    do {                                                                                           \
        const char *const fr_[] = {__VA_ARGS__};                                                   \
        check_error_at(__FILE__, __LINE__, (result), fr_, (int)(sizeof fr_ / sizeof fr_[0]));      \
    } while (0)


/* A leaf f64 tensor of the shape with distinct values, requiring grad. */
static aqa_tensor *leaf(int ndim, const int64_t *shape, double scale) {
    aqa_tensor *t = aqa_mul_scalar(aqa_add_scalar(iota(ndim, shape), 0.5), scale);
    return aqa_requires_grad(aqa_detach(t), true);
}

/* ---- cat ----------------------------------------------------------------------------------- */

static void test_cat_forward(void) {
    aqa_scope_begin();
    aqa_tensor *a = test_f64((double[]){1, 2, 3, 4}, AQA_SHAPE(2, 2));
    aqa_tensor *b = test_f64((double[]){5, 6}, AQA_SHAPE(2, 1));
    aqa_tensor *c1 = aqa_cat((aqa_tensor *[]){a, b}, 2, 1);
    CHECK_SHAPE(c1, 2, 3);
    CHECK_VALUES(c1, 0, 1, 2, 5, 3, 4, 6);
    aqa_tensor *c2 = aqa_cat((aqa_tensor *[]){a, b, a}, 3, -1); /* negative dim */
    CHECK_SHAPE(c2, 2, 5);
    CHECK_VALUES(c2, 0, 1, 2, 5, 1, 2, 3, 4, 6, 3, 4);
    aqa_tensor *bt = aqa_transpose(b, 0, 1); /* [1, 2], non-contiguous */
    aqa_tensor *c3 = aqa_cat((aqa_tensor *[]){a, bt, aqa_transpose(a, 0, 1)}, 3, 0);
    CHECK_SHAPE(c3, 5, 2);
    CHECK_VALUES(c3, 0, 1, 2, 3, 4, 5, 6, 1, 3, 2, 4);
    /* one input: a copy */
    aqa_tensor *c4 = aqa_cat((aqa_tensor *[]){a}, 1, 0);
    CHECK_VALUES(c4, 0, 1, 2, 3, 4);
    CHECK(c4 && c4->storage != a->storage);
    /* zero-size pieces along the cat dimension are fine */
    aqa_tensor *z = aqa_zeros(AQA_SHAPE(2, 0), AQA_F64);
    aqa_tensor *c5 = aqa_cat((aqa_tensor *[]){z, b, z}, 3, 1);
    CHECK_SHAPE(c5, 2, 1);
    CHECK_VALUES(c5, 0, 5, 6);
    aqa_scope_end();
}

static void test_cat_promotion_and_legacy_empty(void) {
    aqa_scope_begin();
    aqa_tensor *f = aqa_from_data((float[]){1.5f, 2.5f}, AQA_SHAPE(2), AQA_F32);
    aqa_tensor *l = test_i64((int64_t[]){7, 8, 9}, AQA_SHAPE(3));
    aqa_tensor *d = test_f64((double[]){0.25}, AQA_SHAPE(1));
    aqa_tensor *bo = aqa_from_data((uint8_t[]){1, 0}, AQA_SHAPE(2), AQA_BOOL);
    aqa_tensor *c1 = aqa_cat((aqa_tensor *[]){l, f}, 2, 0);
    CHECK(c1 && c1->dtype == AQA_F32);
    CHECK_VALUES(c1, 0, 7, 8, 9, 1.5, 2.5);
    aqa_tensor *c2 = aqa_cat((aqa_tensor *[]){f, d}, 2, 0);
    CHECK(c2 && c2->dtype == AQA_F64);
    CHECK_VALUES(c2, 0, 1.5, 2.5, 0.25);
    aqa_tensor *c3 = aqa_cat((aqa_tensor *[]){l, bo}, 2, 0);
    CHECK(c3 && c3->dtype == AQA_I64);
    CHECK_VALUES(c3, 0, 7, 8, 9, 1, 0);
    /* [0] tensors are skipped next to 2-d ones (torch's legacy rule) but still promote */
    aqa_tensor *m = aqa_from_data((float[]){1, 2, 3, 4, 5, 6}, AQA_SHAPE(2, 3), AQA_F32);
    aqa_tensor *e = aqa_zeros(AQA_SHAPE(0), AQA_F64);
    aqa_tensor *c4 = aqa_cat((aqa_tensor *[]){e, m, e}, 3, 1);
    CHECK_SHAPE(c4, 2, 3);
    CHECK(c4 && c4->dtype == AQA_F64);
    CHECK_VALUES(c4, 0, 1, 2, 3, 4, 5, 6);
    aqa_tensor *c5 = aqa_cat((aqa_tensor *[]){e, e}, 2, 0);
    CHECK_SHAPE(c5, 0);
    /* gradients of promoted inputs come back in each input's dtype */
    aqa_tensor *gf = aqa_requires_grad(aqa_ones(AQA_SHAPE(2), AQA_F32), true);
    aqa_tensor *gd = aqa_requires_grad(aqa_ones(AQA_SHAPE(1), AQA_F64), true);
    aqa_tensor *yc = aqa_cat((aqa_tensor *[]){gf, gd}, 2, 0);
    CHECK(yc && aqa_backward(yc, test_f64((double[]){2, 3, 4}, AQA_SHAPE(3)), false) == AQA_OK);
    CHECK(gf->grad && gf->grad->dtype == AQA_F32 && gd->grad && gd->grad->dtype == AQA_F64);
    CHECK_VALUES(gf->grad, 0, 2, 3);
    CHECK_VALUES(gd->grad, 0, 4);
    /* grad of a skipped empty input is an empty tensor */
    aqa_tensor *md = aqa_requires_grad(aqa_detach(aqa_to_dtype(m, AQA_F64)), true);
    aqa_tensor *ed = aqa_requires_grad(aqa_zeros(AQA_SHAPE(0), AQA_F64), true);
    aqa_tensor *y = aqa_cat((aqa_tensor *[]){md, ed}, 2, 0);
    CHECK(y && aqa_backward(y, aqa_ones_like(y), false) == AQA_OK);
    CHECK_SHAPE(md->grad, 2, 3);
    CHECK_VALUES(md->grad, 0, 1, 1, 1, 1, 1, 1);
    CHECK(ed->grad == NULL || aqa_numel(ed->grad) == 0);
    aqa_scope_end();
}

static void test_cat_errors(void) {
    aqa_scope_begin();
    aqa_tensor *a = aqa_zeros(AQA_SHAPE(2, 3), AQA_F32);
    aqa_tensor *b = aqa_zeros(AQA_SHAPE(2, 4), AQA_F32);
    aqa_tensor *v = aqa_zeros(AQA_SHAPE(3), AQA_F32);
    aqa_tensor *s = aqa_scalar(1, AQA_F32);
    CHECK_ERROR(aqa_cat((aqa_tensor *[]){a, b}, 2, 0), "aqa_cat", "[2, 3]", "[2, 4]");
    CHECK_ERROR(aqa_cat((aqa_tensor *[]){a, v}, 2, 0), "aqa_cat", "dimensions");
    CHECK_ERROR(aqa_cat((aqa_tensor *[]){s, s}, 2, 0), "aqa_cat", "zero-dimensional");
    CHECK_ERROR(aqa_cat((aqa_tensor *[]){a, a}, 2, 2), "aqa_cat", "dimension 2");
    CHECK_ERROR(aqa_cat(NULL, 0, 0), "aqa_cat");
    CHECK_ERROR(aqa_cat((aqa_tensor *[]){a, NULL}, 2, 0));
    CHECK_ERROR(aqa_stack((aqa_tensor *[]){a, b}, 2, 0), "aqa_stack", "[2, 3]", "[2, 4]");
    CHECK_ERROR(aqa_stack((aqa_tensor *[]){a, a}, 2, 3), "aqa_stack");
    CHECK_ERROR(aqa_stack((aqa_tensor *[]){a, a}, 2, -4), "aqa_stack");
    aqa_scope_end();
}

/* cat(x0, x1^T, expand(x2)) along the middle dimension: a transposed and a broadcast input */
static aqa_tensor *gc_cat(aqa_tensor *const *in, int n, void *user) {
    (void)n;
    int dim = *(int *)user;
    aqa_tensor *x1 = aqa_transpose(in[1], 1, 2);                /* [2, 4, 2] -> [2, 2, 4] */
    aqa_tensor *x2 = aqa_expand(in[2], AQA_SHAPE(2, 3, 4));     /* [2, 1, 4] -> [2, 3, 4] */
    return aqa_cat((aqa_tensor *[]){in[0], x1, x2}, 3, dim);
}

/* the same tensor twice (and a 1-d cat): gradients accumulate */
static aqa_tensor *gc_cat_twice(aqa_tensor *const *in, int n, void *user) {
    (void)n;
    (void)user;
    aqa_tensor *v = aqa_reshape(in[0], AQA_SHAPE(-1));
    return aqa_cat((aqa_tensor *[]){v, aqa_mul(v, v), v}, 3, 0);
}

static void test_cat_gradcheck(void) {
    aqa_scope_begin();
    aqa_tensor *in[3] = {leaf(AQA_SHAPE(2, 3, 4), 0.1), leaf(AQA_SHAPE(2, 4, 2), -0.2), leaf(AQA_SHAPE(2, 1, 4), 0.3)};
    int dim = 1;
    CHECK_GRAD(gc_cat, in, 3, &dim);
    dim = -2;
    CHECK_GRAD(gc_cat, in, 3, &dim);
    CHECK_GRAD(gc_cat_twice, in, 1, NULL);
    aqa_scope_end();
}

/* More inputs than a node has edges: values and gradients still right. */
static aqa_tensor *gc_cat_many(aqa_tensor *const *in, int n, void *user) {
    (void)user;
    return aqa_cat(in, n, 0);
}
static aqa_tensor *gc_stack_many(aqa_tensor *const *in, int n, void *user) {
    (void)user;
    return aqa_stack(in, n, 1);
}

static void test_cat_stack_many_inputs(void) {
    aqa_scope_begin();
    enum { N = 19 };
    aqa_tensor *in[N];
    for (int i = 0; i < N; i++) in[i] = aqa_requires_grad(aqa_full(AQA_SHAPE(1, 2), i, AQA_F64), true);
    aqa_tensor *y = aqa_cat(in, N, 0);
    CHECK_SHAPE(y, N, 2);
    bool ok = y != NULL;
    for (int i = 0; ok && i < N; i++) ok = aqa_get(y, (int64_t[]){i, 1}) == i;
    CHECK(ok);
    /* upstream gradient: row i scaled by i+1 */
    aqa_tensor *gy = aqa_mul_scalar(aqa_add_scalar(aqa_expand(aqa_reshape(aqa_arange(0, N, 1, AQA_F64), AQA_SHAPE(N, 1)), AQA_SHAPE(N, 2)), 1), 1);
    CHECK(y && aqa_backward(y, aqa_contiguous(gy), false) == AQA_OK);
    for (int i = 0; i < N; i++) CHECK_VALUES(in[i]->grad, 0, i + 1, i + 1);
    CHECK_GRAD(gc_cat_many, in, N, NULL);
    aqa_tensor *s = aqa_stack(in, N, 1);
    CHECK_SHAPE(s, 1, N, 2);
    CHECK_GRAD(gc_stack_many, in, N, NULL);
    aqa_scope_end();
}

/* ---- stack ---------------------------------------------------------------------------------- */

static void test_stack_forward(void) {
    aqa_scope_begin();
    aqa_tensor *a = test_f64((double[]){1, 2, 3}, AQA_SHAPE(3));
    aqa_tensor *b = test_f64((double[]){4, 5, 6}, AQA_SHAPE(3));
    aqa_tensor *s0 = aqa_stack((aqa_tensor *[]){a, b}, 2, 0);
    CHECK_SHAPE(s0, 2, 3);
    CHECK_VALUES(s0, 0, 1, 2, 3, 4, 5, 6);
    aqa_tensor *s1 = aqa_stack((aqa_tensor *[]){a, b}, 2, -1);
    CHECK_SHAPE(s1, 3, 2);
    CHECK_VALUES(s1, 0, 1, 4, 2, 5, 3, 6);
    /* 0-d inputs stack into a vector; dtypes promote */
    aqa_tensor *s2 = aqa_stack((aqa_tensor *[]){aqa_scalar(1, AQA_I64), aqa_scalar(2.5, AQA_F32)}, 2, 0);
    CHECK_SHAPE(s2, 2);
    CHECK(s2 && s2->dtype == AQA_F32);
    CHECK_VALUES(s2, 0, 1, 2.5);
    /* transposed inputs */
    aqa_tensor *m = test_f64((double[]){1, 2, 3, 4, 5, 6}, AQA_SHAPE(2, 3));
    aqa_tensor *s3 = aqa_stack((aqa_tensor *[]){aqa_transpose(m, 0, 1), aqa_transpose(m, 0, 1)}, 2, 1);
    CHECK_SHAPE(s3, 3, 2, 2);
    CHECK_VALUES(s3, 0, 1, 4, 1, 4, 2, 5, 2, 5, 3, 6, 3, 6);
    aqa_scope_end();
}

static aqa_tensor *gc_stack(aqa_tensor *const *in, int n, void *user) {
    (void)n;
    int dim = *(int *)user;
    return aqa_stack((aqa_tensor *[]){in[0], aqa_transpose(in[1], 0, 1), aqa_expand(in[2], AQA_SHAPE(3, 2))}, 3, dim);
}

static void test_stack_gradcheck(void) {
    aqa_scope_begin();
    aqa_tensor *in[3] = {leaf(AQA_SHAPE(3, 2), 0.1), leaf(AQA_SHAPE(2, 3), 0.2), leaf(AQA_SHAPE(1, 2), -0.3)};
    for (int dim = -3; dim <= 2; dim++) CHECK_GRAD(gc_stack, in, 3, &dim);
    aqa_scope_end();
}

/* ---- split / chunk ---------------------------------------------------------------------------- */

static void test_split_chunk(void) {
    aqa_scope_begin();
    aqa_tensor *x = iota(AQA_SHAPE(7, 2));
    aqa_tensor *p[8] = {0};
    CHECK_EQ_INT(aqa_split(x, 3, 0, p, 8), 3);
    CHECK_SHAPE(p[0], 3, 2);
    CHECK_SHAPE(p[2], 1, 2);
    CHECK_VALUES(p[1], 0, 6, 7, 8, 9, 10, 11);
    CHECK_VALUES(p[2], 0, 12, 13);
    CHECK(p[1] && p[1]->storage == x->storage); /* views */
    /* fewer slots than pieces: the count is still returned, only max_out written */
    aqa_tensor *q[2] = {0};
    CHECK_EQ_INT(aqa_split(x, 2, 0, q, 1), 4);
    CHECK_VALUES(q[0], 0, 0, 1, 2, 3);
    CHECK(q[1] == NULL);
    CHECK_EQ_INT(aqa_split(x, 1, -1, NULL, 0), 2);
    CHECK_EQ_INT(aqa_split(x, 10, 0, q, 2), 1);
    CHECK_SHAPE(q[0], 7, 2);
    /* chunk: torch's sizes (ceil(n / chunks), possibly fewer pieces than asked) */
    CHECK_EQ_INT(aqa_chunk(x, 3, 0, p, 8), 3);
    CHECK_SHAPE(p[0], 3, 2);
    CHECK_SHAPE(p[2], 1, 2);
    aqa_tensor *y = iota(AQA_SHAPE(6));
    CHECK_EQ_INT(aqa_chunk(y, 4, 0, p, 8), 3);
    CHECK_VALUES(p[2], 0, 4, 5);
    aqa_tensor *e = aqa_zeros(AQA_SHAPE(0, 3), AQA_F64);
    CHECK_EQ_INT(aqa_chunk(e, 4, 0, p, 8), 4);
    CHECK_SHAPE(p[3], 0, 3);
    CHECK_EQ_INT(aqa_split(e, 2, 0, p, 8), 1);
    /* on a transposed tensor */
    CHECK_EQ_INT(aqa_chunk(aqa_transpose(x, 0, 1), 2, 0, p, 8), 2);
    CHECK_VALUES(p[1], 0, 1, 3, 5, 7, 9, 11, 13);
    /* errors */
    CHECK_EQ_INT(aqa_split(x, 0, 0, p, 8), -1);
    CHECK_ERROR(NULL, "aqa_split", "split_size 0");
    CHECK_EQ_INT(aqa_split(x, -1, 0, p, 8), -1);
    CHECK_ERROR(NULL, "aqa_split");
    CHECK_EQ_INT(aqa_split(x, 2, 2, p, 8), -1);
    CHECK_ERROR(NULL, "aqa_split", "dimension 2");
    CHECK_EQ_INT(aqa_chunk(x, 0, 0, p, 8), -1);
    CHECK_ERROR(NULL, "aqa_chunk");
    CHECK_EQ_INT(aqa_split(aqa_scalar(1, AQA_F64), 1, 0, p, 8), -1);
    CHECK_ERROR(NULL, "aqa_split", "0-d");
    CHECK_EQ_INT(aqa_split(NULL, 1, 0, p, 8), -1);
    aqa_scope_end();
}

/* pieces of a split used in a loss: cat(p2, p0 * p0, 3 * p1^T) */
static aqa_tensor *gc_split(aqa_tensor *const *in, int n, void *user) {
    (void)n;
    (void)user;
    aqa_tensor *p[3] = {0};
    if (aqa_split(aqa_transpose(in[0], 0, 1), 3, 0, p, 3) != 3) return NULL; /* [7, 2] -> 3, 3, 1 rows */
    aqa_tensor *t = aqa_reshape(aqa_mul_scalar(aqa_transpose(p[1], 0, 1), 3), AQA_SHAPE(3, 2));
    return aqa_cat((aqa_tensor *[]){p[2], aqa_mul(p[0], p[0]), t}, 3, 0);
}
static aqa_tensor *gc_chunk(aqa_tensor *const *in, int n, void *user) {
    (void)n;
    (void)user;
    aqa_tensor *p[4] = {0};
    if (aqa_chunk(in[0], 4, 1, p, 4) != 4) return NULL; /* [2, 7] -> 2, 2, 2, 1 columns */
    return aqa_cat((aqa_tensor *[]){aqa_mul(p[3], p[3]), p[1], aqa_mul_scalar(p[0], -2)}, 3, 1);
}

static void test_split_gradcheck(void) {
    aqa_scope_begin();
    aqa_tensor *x = leaf(AQA_SHAPE(2, 7), 0.3);
    CHECK_GRAD(gc_split, &x, 1, NULL);
    CHECK_GRAD(gc_chunk, &x, 1, NULL);
    aqa_scope_end();
}

/* ---- index_select ----------------------------------------------------------------------------- */

static void test_index_select_forward(void) {
    aqa_scope_begin();
    aqa_tensor *x = iota(AQA_SHAPE(3, 4)); /* rows 0..3, 4..7, 8..11 */
    aqa_tensor *idx = test_i64((int64_t[]){2, 0, 2}, AQA_SHAPE(3));
    aqa_tensor *r0 = aqa_index_select(x, 0, idx);
    CHECK_SHAPE(r0, 3, 4);
    CHECK_VALUES(r0, 0, 8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11);
    aqa_tensor *r1 = aqa_index_select(x, -1, idx);
    CHECK_SHAPE(r1, 3, 3);
    CHECK_VALUES(r1, 0, 2, 0, 2, 6, 4, 6, 10, 8, 10);
    /* transposed input, strided index (every other element), 0-d index */
    aqa_tensor *xt = aqa_transpose(x, 0, 1); /* [4, 3] */
    aqa_tensor *big = test_i64((int64_t[]){3, 9, 1, 9, 3}, AQA_SHAPE(5));
    aqa_tensor *sidx = aqa_slice(big, 0, 0, 5, 2); /* 3, 1, 3 */
    aqa_tensor *r2 = aqa_index_select(xt, 0, sidx);
    CHECK_SHAPE(r2, 3, 3);
    CHECK_VALUES(r2, 0, 3, 7, 11, 1, 5, 9, 3, 7, 11);
    aqa_tensor *r3 = aqa_index_select(x, 1, aqa_scalar(3, AQA_I64));
    CHECK_SHAPE(r3, 3, 1);
    CHECK_VALUES(r3, 0, 3, 7, 11);
    /* empty index, int64 and bool data */
    aqa_tensor *r4 = aqa_index_select(x, 0, aqa_zeros(AQA_SHAPE(0), AQA_I64));
    CHECK_SHAPE(r4, 0, 4);
    aqa_tensor *li = test_i64((int64_t[]){10, 20, 30}, AQA_SHAPE(3));
    aqa_tensor *r5 = aqa_index_select(li, 0, idx);
    CHECK(r5 && r5->dtype == AQA_I64);
    CHECK_VALUES(r5, 0, 30, 10, 30);
    aqa_tensor *bo = aqa_from_data((uint8_t[]){1, 0, 0}, AQA_SHAPE(3), AQA_BOOL);
    CHECK_VALUES(aqa_index_select(bo, 0, idx), 0, 0, 1, 0);
    /* 0-d input */
    aqa_tensor *r6 = aqa_index_select(aqa_scalar(4, AQA_F64), 0, test_i64((int64_t[]){0}, AQA_SHAPE(1)));
    CHECK_SHAPE(r6);
    CHECK_VALUES(r6, 0, 4);
    aqa_scope_end();
}

static void test_index_errors(void) {
    aqa_scope_begin();
    aqa_tensor *x = iota(AQA_SHAPE(5, 2));
    CHECK_ERROR(aqa_index_select(x, 0, test_i64((int64_t[]){1, 5}, AQA_SHAPE(2))), "aqa_index_select", "index 5",
                "dimension 0", "size 5");
    CHECK_ERROR(aqa_index_select(x, 0, test_i64((int64_t[]){-1}, AQA_SHAPE(1))), "aqa_index_select", "index -1", "size 5");
    CHECK_ERROR(aqa_index_select(x, 1, test_i64((int64_t[]){2}, AQA_SHAPE(1))), "index 2", "dimension 1", "size 2");
    CHECK_ERROR(aqa_index_select(x, 0, aqa_zeros(AQA_SHAPE(2), AQA_F32)), "aqa_index_select", "int64", "float32");
    CHECK_ERROR(aqa_index_select(x, 0, aqa_zeros(AQA_SHAPE(1, 1), AQA_I64)), "aqa_index_select", "1-d");
    CHECK_ERROR(aqa_index_select(x, 2, aqa_zeros(AQA_SHAPE(1), AQA_I64)), "aqa_index_select", "dimension 2");
    CHECK_ERROR(aqa_index_select(NULL, 0, aqa_zeros(AQA_SHAPE(1), AQA_I64)));
    /* gather */
    aqa_tensor *gi = test_i64((int64_t[]){0, 2}, AQA_SHAPE(1, 2));
    CHECK_ERROR(aqa_gather(x, 1, gi), "aqa_gather", "index 2", "dimension 1", "size 2");
    CHECK_ERROR(aqa_gather(x, 0, test_i64((int64_t[]){-3}, AQA_SHAPE(1, 1))), "aqa_gather", "index -3", "size 5");
    CHECK_ERROR(aqa_gather(x, 0, test_i64((int64_t[]){0, 0, 0}, AQA_SHAPE(1, 3))), "aqa_gather", "dimension 1");
    CHECK_ERROR(aqa_gather(x, 0, test_i64((int64_t[]){0}, AQA_SHAPE(1))), "aqa_gather", "dimensions");
    CHECK_ERROR(aqa_gather(x, 0, aqa_zeros(AQA_SHAPE(1, 1), AQA_F64)), "aqa_gather", "int64");
    /* a bad index deep inside a large (threaded) gather */
    aqa_tensor *big = aqa_zeros(AQA_SHAPE(300, 200), AQA_F32);
    aqa_tensor *bi = aqa_zeros(AQA_SHAPE(300, 200), AQA_I64);
    aqa_fill_(aqa_narrow(aqa_narrow(bi, 0, 250, 1), 1, 150, 1), 200);
    CHECK_ERROR(aqa_gather(big, 1, bi), "aqa_gather", "index 200", "dimension 1", "size 200");
    /* embedding */
    aqa_tensor *w = iota(AQA_SHAPE(4, 3));
    CHECK_ERROR(aqa_embedding(w, test_i64((int64_t[]){0, 4}, AQA_SHAPE(2))), "aqa_embedding", "index 4", "size 4");
    CHECK_ERROR(aqa_embedding(w, test_i64((int64_t[]){-1}, AQA_SHAPE(1))), "aqa_embedding", "index -1");
    CHECK_ERROR(aqa_embedding(aqa_zeros(AQA_SHAPE(4), AQA_F32), test_i64((int64_t[]){0}, AQA_SHAPE(1))), "aqa_embedding",
                "2-d");
    CHECK_ERROR(aqa_embedding(w, aqa_zeros(AQA_SHAPE(2), AQA_F32)), "aqa_embedding", "int64");
    aqa_scope_end();
}

/* index_select of a transposed input with repeated indices; dim from user */
static aqa_tensor *gc_isel(aqa_tensor *const *in, int n, void *user) {
    (void)n;
    int dim = *(int *)user;
    aqa_tensor *idx = test_i64((int64_t[]){2, 0, 2, 3, 2}, AQA_SHAPE(5));
    return aqa_index_select(aqa_transpose(in[0], 0, 1), dim, idx); /* [3, 4] -> [4, 3] */
}
static aqa_tensor *gc_isel_bcast(aqa_tensor *const *in, int n, void *user) {
    (void)n;
    (void)user;
    aqa_tensor *idx = test_i64((int64_t[]){1, 1, 0}, AQA_SHAPE(3));
    return aqa_index_select(aqa_expand(in[0], AQA_SHAPE(3, 4)), 0, idx); /* [1, 4] broadcast */
}

static void test_index_select_gradcheck(void) {
    aqa_scope_begin();
    aqa_tensor *x = leaf(AQA_SHAPE(3, 4), 0.1);
    int dim = 0;
    CHECK_GRAD(gc_isel, &x, 1, &dim);
    x = leaf(AQA_SHAPE(4, 4), -0.1);
    dim = 1;
    CHECK_GRAD(gc_isel, &x, 1, &dim);
    aqa_tensor *b = leaf(AQA_SHAPE(1, 4), 0.2);
    CHECK_GRAD(gc_isel_bcast, &b, 1, NULL);
    /* hand-checked gradient: repeated indices accumulate */
    aqa_tensor *v = aqa_requires_grad(aqa_zeros(AQA_SHAPE(4), AQA_F64), true);
    aqa_tensor *y = aqa_index_select(v, 0, test_i64((int64_t[]){3, 1, 3, 3}, AQA_SHAPE(4)));
    CHECK(y && aqa_backward(y, test_f64((double[]){1, 2, 3, 4}, AQA_SHAPE(4)), false) == AQA_OK);
    CHECK_VALUES(v->grad, 0, 0, 2, 0, 8);
    aqa_scope_end();
}

/* Large enough for the threaded path, along both dims of a transposed input; vs a plain loop. */
static void test_index_select_large(void) {
    aqa_scope_begin();
    enum { R = 300, C = 200, N = 150 };
    aqa_generator gen = {.seed = test_seed("index_select_large"), .offset = 0};
    aqa_tensor *xt = aqa_randn(AQA_SHAPE(C, R), AQA_F32, &gen);
    aqa_tensor *x = aqa_transpose(xt, 0, 1); /* [R, C], non-contiguous */
    aqa_tensor *ir = aqa_randint(0, R, AQA_SHAPE(N), &gen), *ic = aqa_randint(0, C, AQA_SHAPE(N), &gen);
    aqa_tensor *y0 = aqa_index_select(x, 0, ir), *y1 = aqa_index_select(x, 1, ic);
    CHECK_SHAPE(y0, N, C);
    CHECK_SHAPE(y1, R, N);
    float *xv = malloc(sizeof(float) * R * C), *v0 = malloc(sizeof(float) * N * C), *v1 = malloc(sizeof(float) * R * N);
    int64_t *jr = malloc(sizeof(int64_t) * N), *jc = malloc(sizeof(int64_t) * N);
    if (y0 && y1) {
        aqa_copy_to_host(x, xv, AQA_F32);
        aqa_copy_to_host(y0, v0, AQA_F32);
        aqa_copy_to_host(y1, v1, AQA_F32);
        aqa_copy_to_host(ir, jr, AQA_I64);
        aqa_copy_to_host(ic, jc, AQA_I64);
        int bad = 0;
        for (int i = 0; i < N; i++)
            for (int c = 0; c < C; c++) bad += v0[i * C + c] != xv[jr[i] * C + c];
        for (int r = 0; r < R; r++)
            for (int i = 0; i < N; i++) bad += v1[r * N + i] != xv[r * C + jc[i]];
        CHECK_EQ_INT(bad, 0);
    }
    free(xv), free(v0), free(v1), free(jr), free(jc);
    aqa_scope_end();
}

/* ---- gather ---------------------------------------------------------------------------------- */

static void test_gather_forward(void) {
    aqa_scope_begin();
    aqa_tensor *x = iota(AQA_SHAPE(3, 4));
    aqa_tensor *i1 = test_i64((int64_t[]){3, 0, 1, 1}, AQA_SHAPE(2, 2));
    aqa_tensor *g1 = aqa_gather(x, 1, i1);
    CHECK_SHAPE(g1, 2, 2);
    CHECK_VALUES(g1, 0, 3, 0, 5, 5);
    aqa_tensor *i0 = test_i64((int64_t[]){2, 0, 1, 2, 0, 0, 0, 0, 1, 1, 1, 1}, AQA_SHAPE(3, 4));
    aqa_tensor *g0 = aqa_gather(x, 0, i0);
    CHECK_VALUES(g0, 0, 8, 1, 6, 11, 0, 1, 2, 3, 4, 5, 6, 7);
    /* index larger than the input along dim is allowed (torch) */
    aqa_tensor *i2 = test_i64((int64_t[]){2, 2, 2, 2, 2, 2, 2, 2}, AQA_SHAPE(4, 2));
    CHECK_VALUES(aqa_gather(x, 0, i2), 0, 8, 9, 8, 9, 8, 9, 8, 9);
    /* transposed input and transposed index */
    aqa_tensor *xt = aqa_transpose(x, 0, 1); /* [4, 3]: xt[i][j] = 4j + i */
    aqa_tensor *it = aqa_transpose(test_i64((int64_t[]){0, 1, 2, 2}, AQA_SHAPE(2, 2)), 0, 1); /* [[0,2],[1,2]] */
    CHECK_VALUES(aqa_gather(xt, 1, it), 0, 0, 8, 5, 9);
    /* int64 data */
    aqa_tensor *li = test_i64((int64_t[]){5, 6, 7}, AQA_SHAPE(1, 3));
    CHECK_VALUES(aqa_gather(li, 1, test_i64((int64_t[]){2, 2, 0}, AQA_SHAPE(1, 3))), 0, 7, 7, 5);
    aqa_scope_end();
}

static aqa_tensor *gc_gather(aqa_tensor *const *in, int n, void *user) {
    (void)n;
    int dim = *(int *)user;
    aqa_tensor *xt = aqa_transpose(in[0], 0, 1); /* [4, 3] */
    aqa_tensor *idx = dim == 0 ? test_i64((int64_t[]){3, 0, 3, 3, 1, 2}, AQA_SHAPE(2, 3))
                               : test_i64((int64_t[]){2, 2, 0, 1, 1, 1, 0, 0, 0, 2, 0, 2}, AQA_SHAPE(4, 3));
    return aqa_gather(xt, dim, idx);
}

static void test_gather_gradcheck(void) {
    aqa_scope_begin();
    aqa_tensor *x = leaf(AQA_SHAPE(3, 4), 0.1);
    for (int dim = 0; dim < 2; dim++) CHECK_GRAD(gc_gather, &x, 1, &dim);
    aqa_tensor *v = aqa_requires_grad(aqa_zeros(AQA_SHAPE(2, 3), AQA_F64), true);
    aqa_tensor *y = aqa_gather(v, 1, test_i64((int64_t[]){2, 2, 0, 1}, AQA_SHAPE(2, 2)));
    CHECK(y && aqa_backward(y, test_f64((double[]){1, 2, 3, 4}, AQA_SHAPE(2, 2)), false) == AQA_OK);
    CHECK_VALUES(v->grad, 0, 0, 0, 3, 3, 4, 0);
    aqa_scope_end();
}

/* ---- embedding ----------------------------------------------------------------------------------- */

static void test_embedding_forward(void) {
    aqa_scope_begin();
    aqa_tensor *w = iota(AQA_SHAPE(4, 2)); /* row r: 2r, 2r+1 */
    aqa_tensor *ids = test_i64((int64_t[]){3, 0, 3, 1, 2, 3}, AQA_SHAPE(2, 3));
    aqa_tensor *e = aqa_embedding(w, ids);
    CHECK_SHAPE(e, 2, 3, 2);
    CHECK_VALUES(e, 0, 6, 7, 0, 1, 6, 7, 2, 3, 4, 5, 6, 7);
    /* transposed ids (non-contiguous), 0-d ids, transposed weight, f32 weight */
    aqa_tensor *e2 = aqa_embedding(w, aqa_transpose(ids, 0, 1));
    CHECK_SHAPE(e2, 3, 2, 2);
    CHECK_VALUES(e2, 0, 6, 7, 2, 3, 0, 1, 4, 5, 6, 7, 6, 7);
    aqa_tensor *e3 = aqa_embedding(w, aqa_scalar(2, AQA_I64));
    CHECK_SHAPE(e3, 2);
    CHECK_VALUES(e3, 0, 4, 5);
    aqa_tensor *wt = aqa_transpose(iota(AQA_SHAPE(2, 4)), 0, 1); /* row r: r, r+4 */
    CHECK_VALUES(aqa_embedding(wt, test_i64((int64_t[]){1, 3}, AQA_SHAPE(2))), 0, 1, 5, 3, 7);
    aqa_tensor *wf = aqa_to_dtype(w, AQA_F32);
    aqa_tensor *e4 = aqa_embedding(wf, test_i64((int64_t[]){1}, AQA_SHAPE(1)));
    CHECK(e4 && e4->dtype == AQA_F32);
    CHECK_VALUES(e4, 0, 2, 3);
    aqa_scope_end();
}

static aqa_tensor *gc_emb(aqa_tensor *const *in, int n, void *user) {
    (void)n;
    (void)user;
    aqa_tensor *ids = test_i64((int64_t[]){4, 0, 4, 2, 4, 0}, AQA_SHAPE(3, 2));
    return aqa_embedding(in[0], aqa_transpose(ids, 0, 1));
}
static aqa_tensor *gc_emb_t(aqa_tensor *const *in, int n, void *user) {
    (void)n;
    (void)user;
    aqa_tensor *ids = test_i64((int64_t[]){1, 1, 3, 0}, AQA_SHAPE(4));
    return aqa_embedding(aqa_transpose(in[0], 0, 1), ids); /* weight [3, 4] -> [4, 3] */
}

static void test_embedding_gradcheck(void) {
    aqa_scope_begin();
    aqa_tensor *w = leaf(AQA_SHAPE(5, 3), 0.1);
    CHECK_GRAD(gc_emb, &w, 1, NULL);
    aqa_tensor *w2 = leaf(AQA_SHAPE(3, 4), -0.1);
    CHECK_GRAD(gc_emb_t, &w2, 1, NULL);
    /* repeated ids sum their rows' gradients */
    aqa_tensor *v = aqa_requires_grad(aqa_zeros(AQA_SHAPE(3, 2), AQA_F64), true);
    aqa_tensor *y = aqa_embedding(v, test_i64((int64_t[]){2, 0, 2}, AQA_SHAPE(3)));
    CHECK(y && aqa_backward(y, test_f64((double[]){1, 2, 3, 4, 5, 6}, AQA_SHAPE(3, 2)), false) == AQA_OK);
    CHECK_VALUES(v->grad, 0, 3, 4, 0, 0, 6, 8);
    aqa_scope_end();
}

/* Large enough for the kernels' threaded paths; compared with a plain loop. */
static void test_embedding_large(void) {
    aqa_scope_begin();
    enum { NUM = 50, D = 300, N = 400 };
    aqa_generator gen = {.seed = test_seed("embedding_large"), .offset = 0};
    aqa_tensor *w = aqa_requires_grad(aqa_randn(AQA_SHAPE(NUM, D), AQA_F32, &gen), true);
    aqa_tensor *ids = aqa_randint(0, NUM, AQA_SHAPE(N), &gen);
    aqa_tensor *gy = aqa_randn(AQA_SHAPE(N, D), AQA_F32, &gen);
    aqa_tensor *y = aqa_embedding(w, ids);
    CHECK(y && aqa_backward(y, gy, false) == AQA_OK);
    float *wv = malloc(sizeof(float) * NUM * D), *yv = malloc(sizeof(float) * N * D),
          *gv = malloc(sizeof(float) * N * D), *gw = malloc(sizeof(float) * NUM * D);
    double *acc = calloc(NUM * D, sizeof(double));
    int64_t *iv = malloc(sizeof(int64_t) * N);
    if (y && w->grad) {
        aqa_copy_to_host(w, wv, AQA_F32);
        aqa_copy_to_host(y, yv, AQA_F32);
        aqa_copy_to_host(gy, gv, AQA_F32);
        aqa_copy_to_host(w->grad, gw, AQA_F32);
        aqa_copy_to_host(ids, iv, AQA_I64);
        int bad_fwd = 0, bad_bwd = 0;
        for (int i = 0; i < N; i++)
            for (int k = 0; k < D; k++) {
                if (yv[i * D + k] != wv[iv[i] * D + k]) bad_fwd++;
                acc[iv[i] * D + k] += gv[i * D + k];
            }
        for (int k = 0; k < NUM * D; k++)
            if (fabs(gw[k] - acc[k]) > 1e-5 * (1 + fabs(acc[k]))) bad_bwd++;
        CHECK_EQ_INT(bad_fwd, 0);
        CHECK_EQ_INT(bad_bwd, 0);
        /* deterministic: the same backward gives bit-identical gradients */
        float *gw2 = malloc(sizeof(float) * NUM * D);
        aqa_zero_grad(w);
        aqa_tensor *y2 = aqa_embedding(w, ids);
        CHECK(y2 && aqa_backward(y2, gy, false) == AQA_OK);
        if (w->grad) {
            aqa_copy_to_host(w->grad, gw2, AQA_F32);
            CHECK(memcmp(gw, gw2, sizeof(float) * NUM * D) == 0);
        }
        free(gw2);
    }
    free(wv), free(yv), free(gv), free(gw), free(acc), free(iv);
    aqa_scope_end();
}

/* ---- one_hot ------------------------------------------------------------------------------------- */

static void test_one_hot(void) {
    aqa_scope_begin();
    aqa_tensor *ids = test_i64((int64_t[]){2, 0, 1, 2}, AQA_SHAPE(2, 2));
    aqa_tensor *o = aqa_one_hot(ids, -1);
    CHECK_SHAPE(o, 2, 2, 3);
    CHECK(o && o->dtype == AQA_I64);
    CHECK_VALUES(o, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 1);
    aqa_tensor *o2 = aqa_one_hot(aqa_transpose(ids, 0, 1), 4);
    CHECK_SHAPE(o2, 2, 2, 4);
    CHECK_VALUES(o2, 0, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0);
    CHECK_SHAPE(aqa_one_hot(aqa_zeros(AQA_SHAPE(0), AQA_I64), 3), 0, 3);
    CHECK_VALUES(aqa_one_hot(aqa_scalar(1, AQA_I64), 2), 0, 0, 1);
    CHECK_ERROR(aqa_one_hot(test_i64((int64_t[]){0, -1}, AQA_SHAPE(2)), 3), "aqa_one_hot", "non-negative", "-1");
    CHECK_ERROR(aqa_one_hot(test_i64((int64_t[]){0, 3}, AQA_SHAPE(2)), 3), "aqa_one_hot", "3");
    CHECK_ERROR(aqa_one_hot(aqa_zeros(AQA_SHAPE(0), AQA_I64), -1), "aqa_one_hot", "empty");
    CHECK_ERROR(aqa_one_hot(aqa_zeros(AQA_SHAPE(2), AQA_F32), 3), "aqa_one_hot", "int64");
    aqa_scope_end();
}

/* ---- pad ------------------------------------------------------------------------------------------ */

static void test_pad_forward(void) {
    aqa_scope_begin();
    aqa_tensor *x = test_f64((double[]){1, 2, 3, 4, 5, 6}, AQA_SHAPE(2, 3));
    aqa_tensor *p1 = aqa_pad(x, 2, (int64_t[]){1, 2}, 9);
    CHECK_SHAPE(p1, 2, 6);
    CHECK_VALUES(p1, 0, 9, 1, 2, 3, 9, 9, 9, 4, 5, 6, 9, 9);
    aqa_tensor *p2 = aqa_pad(x, 4, (int64_t[]){0, 0, 1, 0}, -1);
    CHECK_SHAPE(p2, 3, 3);
    CHECK_VALUES(p2, 0, -1, -1, -1, 1, 2, 3, 4, 5, 6);
    /* negative pads crop; crop one side and pad the other; crop to nothing */
    aqa_tensor *p3 = aqa_pad(x, 2, (int64_t[]){-1, 0}, 0);
    CHECK_SHAPE(p3, 2, 2);
    CHECK_VALUES(p3, 0, 2, 3, 5, 6);
    aqa_tensor *p4 = aqa_pad(x, 4, (int64_t[]){2, -2, 0, -1}, 7);
    CHECK_SHAPE(p4, 1, 3);
    CHECK_VALUES(p4, 0, 7, 7, 1);
    CHECK_SHAPE(aqa_pad(x, 2, (int64_t[]){-3, 0}, 0), 2, 0);
    aqa_tensor *p5 = aqa_pad(x, 0, NULL, 0);
    CHECK_VALUES(p5, 0, 1, 2, 3, 4, 5, 6);
    /* transposed input, int64 (value truncated as torch) and bool */
    aqa_tensor *p6 = aqa_pad(aqa_transpose(x, 0, 1), 2, (int64_t[]){0, 1}, 0); /* [3, 3] */
    CHECK_VALUES(p6, 0, 1, 4, 0, 2, 5, 0, 3, 6, 0);
    aqa_tensor *p7 = aqa_pad(test_i64((int64_t[]){5, 6}, AQA_SHAPE(2)), 2, (int64_t[]){1, 1}, 2.7);
    CHECK(p7 && p7->dtype == AQA_I64);
    CHECK_VALUES(p7, 0, 2, 5, 6, 2);
    aqa_tensor *p8 = aqa_pad(aqa_from_data((uint8_t[]){1}, AQA_SHAPE(1), AQA_BOOL), 2, (int64_t[]){1, 0}, 0);
    CHECK_VALUES(p8, 0, 0, 1);
    /* errors */
    CHECK_ERROR(aqa_pad(x, 3, (int64_t[]){1, 1, 1}, 0), "aqa_pad", "even");
    CHECK_ERROR(aqa_pad(x, 6, (int64_t[]){1, 1, 1, 1, 1, 1}, 0), "aqa_pad", "6");
    CHECK_ERROR(aqa_pad(x, 2, (int64_t[]){-2, -2}, 0), "aqa_pad", "dimension 1", "size 3");
    CHECK_ERROR(aqa_pad(NULL, 2, (int64_t[]){1, 1}, 0));
    aqa_scope_end();
}

/* pad with mixed positive/negative pads over several dims of a transposed/expanded input */
typedef struct pad_case {
    int n;            /* number of pads */
    int64_t pads[6];  /* the pads */
    int mode;         /* 0 plain, 1 transposed input, 2 expanded input */
} pad_case;

static aqa_tensor *gc_pad(aqa_tensor *const *in, int n, void *user) {
    (void)n;
    const pad_case *c = user;
    aqa_tensor *x = in[0];
    if (c->mode == 1) x = aqa_transpose(x, 0, 2);
    if (c->mode == 2) x = aqa_expand(x, AQA_SHAPE(2, 3, 4));
    return aqa_pad(x, c->n, c->pads, 0.75);
}

static void test_pad_gradcheck(void) {
    aqa_scope_begin();
    aqa_tensor *x = leaf(AQA_SHAPE(2, 3, 4), 0.1);
    pad_case c1 = {4, {1, 2, 0, 1}, 0};
    CHECK_GRAD(gc_pad, &x, 1, &c1);
    pad_case c2 = {6, {-1, 2, 1, -2, 1, 0}, 0};
    CHECK_GRAD(gc_pad, &x, 1, &c2);
    pad_case c3 = {2, {-2, -1}, 0};
    CHECK_GRAD(gc_pad, &x, 1, &c3);
    aqa_tensor *xt = leaf(AQA_SHAPE(4, 3, 2), 0.2);
    pad_case c4 = {6, {-1, 1, 2, -1, 0, 1}, 1};
    CHECK_GRAD(gc_pad, &xt, 1, &c4);
    aqa_tensor *xb = leaf(AQA_SHAPE(2, 1, 4), 0.3);
    pad_case c5 = {4, {1, -1, -1, 1}, 2};
    CHECK_GRAD(gc_pad, &xb, 1, &c5);
    aqa_scope_end();
}

/* ---- PyTorch golden data ------------------------------------------------------------------------ */

/* Compares a tensor with the golden one: same shape, within 1e-5 relative (1e-8 absolute near 0). */
static void check_golden_at(int line, const char *name, const aqa_tensor *t) {
    aqa_tensor *g = test_golden_at(__FILE__, line, t && t->dtype == AQA_I64 ? AQA_I64 : AQA_F32, "%s", name);
    if (g) test_close_at(__FILE__, line, name, t, g, 1e-5, 0, 1e-3);
}

static char *nm(char *buf, const char *c, const char *suffix) {
    snprintf(buf, 64, "%s_%s", c, suffix);
    return buf;
}

/* Runs one golden case: nf float inputs (x0..), ni int64 inputs after them; fn builds y. */
typedef aqa_tensor *(*golden_fn)(aqa_tensor **x);
static void golden_case(int line, const char *c, int nf, int ni, golden_fn fn) {
    char b[64];
    aqa_tensor *x[4] = {0};
    for (int i = 0; i < nf + ni; i++) {
        char s[16];
        snprintf(s, sizeof s, "x%d", i);
        x[i] = test_golden_at(__FILE__, line, i < nf ? AQA_F32 : AQA_I64, "%s", nm(b, c, s));
        if (i < nf && x[i]) aqa_requires_grad(x[i], true);
    }
    aqa_tensor *y = fn(x);
    check_golden_at(line, nm(b, c, "y"), y);
    if (nf == 0 || !y) return;
    aqa_tensor *gy = test_golden_at(__FILE__, line, AQA_F32, "%s", nm(b, c, "gy"));
    if (aqa_backward(y, gy, false) != AQA_OK) {
        test_fail_at(__FILE__, line, "%s: backward failed: %s", c, aqa_last_error());
        return;
    }
    for (int i = 0; i < nf; i++) {
        char s[16];
        snprintf(s, sizeof s, "gx%d", i);
        check_golden_at(line, nm(b, c, s), x[i] ? x[i]->grad : NULL);
    }
}

static aqa_tensor *g_cat(aqa_tensor **x) { return aqa_cat(x, 3, -2); }
static aqa_tensor *g_stack(aqa_tensor **x) { return aqa_stack(x, 3, 1); }
static aqa_tensor *g_chunk(aqa_tensor **x) {
    aqa_tensor *p[3] = {0};
    if (aqa_chunk(x[0], 3, 0, p, 3) != 3) return NULL;
    return aqa_cat((aqa_tensor *[]){p[0], aqa_mul_scalar(p[1], 2), aqa_mul_scalar(p[2], 3)}, 3, 0);
}
static aqa_tensor *g_isel0(aqa_tensor **x) { return aqa_index_select(x[0], 0, x[1]); }
static aqa_tensor *g_isel1(aqa_tensor **x) { return aqa_index_select(x[0], 2, x[1]); }
static aqa_tensor *g_gather1(aqa_tensor **x) { return aqa_gather(x[0], 1, x[1]); }
static aqa_tensor *g_gather0(aqa_tensor **x) { return aqa_gather(x[0], 0, x[1]); }
static aqa_tensor *g_emb(aqa_tensor **x) { return aqa_embedding(x[0], x[1]); }
static aqa_tensor *g_pad1(aqa_tensor **x) { return aqa_pad(x[0], 4, (int64_t[]){1, 2, 0, 1}, 0.5); }
static aqa_tensor *g_pad2(aqa_tensor **x) { return aqa_pad(x[0], 6, (int64_t[]){-1, 2, 1, -2, 1, 0}, -1.5); }
static aqa_tensor *g_onehot1(aqa_tensor **x) { return aqa_one_hot(x[0], -1); }
static aqa_tensor *g_onehot2(aqa_tensor **x) { return aqa_one_hot(x[0], 5); }

static void test_golden_pytorch(void) {
    if (!test_golden_open("golden_index.safetensors")) {
        CHECK_MSG(0, "cannot open golden file: %s", aqa_last_error());
        return;
    }
    aqa_scope_begin();
    golden_case(__LINE__, "cat", 3, 0, g_cat);
    golden_case(__LINE__, "stack", 3, 0, g_stack);
    golden_case(__LINE__, "chunk", 1, 0, g_chunk);
    golden_case(__LINE__, "isel0", 1, 1, g_isel0);
    golden_case(__LINE__, "isel1", 1, 1, g_isel1);
    golden_case(__LINE__, "gather1", 1, 1, g_gather1);
    golden_case(__LINE__, "gather0", 1, 1, g_gather0);
    golden_case(__LINE__, "emb", 1, 1, g_emb);
    golden_case(__LINE__, "pad1", 1, 0, g_pad1);
    golden_case(__LINE__, "pad2", 1, 0, g_pad2);
    golden_case(__LINE__, "onehot1", 0, 1, g_onehot1);
    golden_case(__LINE__, "onehot2", 0, 1, g_onehot2);
    aqa_scope_end();
}

/* ---- lifetime -------------------------------------------------------------------------------------- */

/* Forward + backward of every op inside a scope leaves nothing alive. */
static void test_no_leaks(void) {
    int64_t t0 = aqa_live_tensors(), s0 = aqa_live_storages();
    aqa_scope_begin();
    aqa_tensor *x = leaf(AQA_SHAPE(4, 3), 0.1);
    aqa_tensor *idx = test_i64((int64_t[]){1, 3, 1}, AQA_SHAPE(3));
    aqa_tensor *p[2];
    aqa_chunk(x, 2, 0, p, 2);
    aqa_tensor *a = aqa_cat((aqa_tensor *[]){p[1], aqa_pad(p[0], 2, (int64_t[]){-1, 1}, 0)}, 2, 0);
    aqa_tensor *b = aqa_embedding(a, idx);
    aqa_tensor *c = aqa_gather(aqa_stack((aqa_tensor *[]){b, b}, 2, 0), 2, aqa_zeros(AQA_SHAPE(2, 3, 1), AQA_I64));
    aqa_tensor *d = aqa_index_select(c, 1, test_i64((int64_t[]){2, 0, 2}, AQA_SHAPE(3)));
    aqa_tensor *oh = aqa_one_hot(idx, -1);
    CHECK(oh != NULL);
    CHECK_MSG(d && aqa_backward(d, aqa_ones_like(d), false) == AQA_OK, "%s", aqa_last_error());
    CHECK(x->grad != NULL);
    aqa_scope_end();
    CHECK_EQ_INT(aqa_live_tensors(), t0);
    CHECK_EQ_INT(aqa_live_storages(), s0);
}

int main(void) {
    RUN(test_cat_forward);
    RUN(test_cat_promotion_and_legacy_empty);
    RUN(test_cat_errors);
    RUN(test_cat_gradcheck);
    RUN(test_cat_stack_many_inputs);
    RUN(test_stack_forward);
    RUN(test_stack_gradcheck);
    RUN(test_split_chunk);
    RUN(test_split_gradcheck);
    RUN(test_index_select_forward);
    RUN(test_index_errors);
    RUN(test_index_select_gradcheck);
    RUN(test_index_select_large);
    RUN(test_gather_forward);
    RUN(test_gather_gradcheck);
    RUN(test_embedding_forward);
    RUN(test_embedding_gradcheck);
    RUN(test_embedding_large);
    RUN(test_one_hot);
    RUN(test_pad_forward);
    RUN(test_pad_gradcheck);
    RUN(test_golden_pytorch);
    RUN(test_no_leaks);
    test_golden_close();
    return test_finish();
}
