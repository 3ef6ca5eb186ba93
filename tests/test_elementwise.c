/* test_elementwise.c: the elementwise ops (ops/ops_binary.c, ops_unary.c, ops_elementwise.c,
 * cpu_elementwise.c): forward values on hand-checkable cases, broadcasting, 0-d operands,
 * non-contiguous inputs, dtype promotion, comparisons/where/masked_fill, in-place ops, stability
 * at large |x|, accuracy of the vectorised float32 kernels against libm in double, gradcheck of
 * every differentiable op in float64, and parity with PyTorch (tests/data/golden_elementwise.
 * safetensors, written by scripts/gen_golden_elementwise.py). */
#include <math.h>

#include "aqa.h"
#include "tests/test_util.h"

/* ---- helpers -------------------------------------------------------------------------------- */

#define F64(shape_, ...) test_f64((const double[]){__VA_ARGS__}, AQA_SHAPE shape_)
#define F32(shape_, ...) aqa_to_dtype(F64(shape_, __VA_ARGS__), AQA_F32)
#define I64(shape_, ...) test_i64((const int64_t[]){__VA_ARGS__}, AQA_SHAPE shape_)

/* Reads all elements as doubles (row-major) into buf (at most cap). Returns numel or -1. */
static int64_t values(const aqa_tensor *t, double *buf, int64_t cap) {
    if (!t) return -1;
    int64_t n = aqa_numel(t);
    if (n > cap || aqa_copy_to_host(t, buf, AQA_F64) != AQA_OK) return -1;
    return n;
}

/* Checks shape, dtype and values (|got - want| <= tol * max(1, |want|); NaN matches NaN). */
static void check_tensor_at(const char *file, int line, const aqa_tensor *t, aqa_dtype dtype, int ndim,
                            const int64_t *shape, const double *want, double tol) {
    if (!t) {
        test_fail_at(file, line, "tensor is NULL: %s", aqa_last_error());
        return;
    }
    if (t->dtype != dtype)
        test_fail_at(file, line, "dtype %s, expected %s", aqa_dtype_name(t->dtype), aqa_dtype_name(dtype));
    if (t->ndim != ndim) {
        test_fail_at(file, line, "ndim %d, expected %d", t->ndim, ndim);
        return;
    }
    for (int d = 0; d < ndim; d++)
        if (t->shape[d] != shape[d]) {
            test_fail_at(file, line, "shape[%d] = %lld, expected %lld", d, (long long)t->shape[d],
                         (long long)shape[d]);
            return;
        }
    double got[256];
    int64_t n = values(t, got, 256);
    if (n < 0) {
        test_fail_at(file, line, "cannot read values");
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        bool ok = isnan(want[i]) ? isnan(got[i])
                  : isinf(want[i]) ? got[i] == want[i]
                                   : fabs(got[i] - want[i]) <= tol * fmax(1.0, fabs(want[i]));
        if (!ok) {
            test_fail_at(file, line, "element %lld = %.10g, expected %.10g", (long long)i, got[i], want[i]);
            return;
        }
    }
}
#define CHECK_T(t, dtype, shape_, tol, ...)                                                    \
    do {                                                                                        \
        const int64_t sh_[] = {0, AQA_SHAPE_LIST shape_};                                       \
        check_tensor_at(__FILE__, __LINE__, (t), (dtype), (int)(sizeof sh_ / sizeof sh_[0]) - 1, \
                        sh_ + 1, (const double[]){__VA_ARGS__}, (tol));                        \
    } while (0)
#define AQA_SHAPE_LIST(...) __VA_ARGS__

/* Deterministic pseudo-random doubles (xorshift64*), seeded once per program. */
static uint64_t rng_state;
static double urand(double lo, double hi) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    uint64_t r = rng_state * 2685821657736338717ull;
    return lo + (hi - lo) * (double)(r >> 11) / 9007199254740992.0;
}
/* A float64 leaf requiring grad with values in [lo, hi], kept at least `gap` away from `avoid`
 * (the kinks of relu/abs/clamp) when gap > 0. */
static aqa_tensor *rand_leaf(int ndim, const int64_t *shape, double lo, double hi, const double *avoid, int n_avoid,
                             double gap) {
    double buf[512];
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= shape[d];
    for (int64_t i = 0; i < n; i++) {
        double v;
        bool bad;
        do {
            v = urand(lo, hi);
            bad = false;
            for (int k = 0; k < n_avoid; k++)
                if (fabs(v - avoid[k]) < gap) bad = true;
        } while (bad);
        buf[i] = v;
    }
    return aqa_requires_grad(aqa_from_data(buf, ndim, shape, AQA_F64), true);
}

#define GC_EPS 1e-6
#define GC_ATOL 1e-8
#define GC_RTOL 1e-6

/* ---- forward values ------------------------------------------------------------------------------ */

static void test_binary_values(void) {
    aqa_scope_begin();
    aqa_tensor *a = F32((2, 3), 1, -2, 3, 4.5, 0, -6);
    aqa_tensor *b = F32((2, 3), 2, 4, -1, 0.5, 3, 2);
    CHECK_T(aqa_add(a, b), AQA_F32, (2, 3), 1e-7, 3, 2, 2, 5, 3, -4);
    CHECK_T(aqa_sub(a, b), AQA_F32, (2, 3), 1e-7, -1, -6, 4, 4, -3, -8);
    CHECK_T(aqa_mul(a, b), AQA_F32, (2, 3), 1e-7, 2, -8, -3, 2.25, 0, -12);
    CHECK_T(aqa_div(a, b), AQA_F32, (2, 3), 1e-7, 0.5, -0.5, -3, 9, 0, -3);
    CHECK_T(aqa_maximum(a, b), AQA_F32, (2, 3), 0, 2, 4, 3, 4.5, 3, 2);
    CHECK_T(aqa_minimum(a, b), AQA_F32, (2, 3), 0, 1, -2, -1, 0.5, 0, -6);
    CHECK_T(aqa_pow(F32((3), 2, 9, 0), F32((3), 3, 0.5, 0)), AQA_F32, (3), 1e-7, 8, 3, 1);
    CHECK_T(aqa_add_scalar(a, 1.5), AQA_F32, (2, 3), 1e-7, 2.5, -0.5, 4.5, 6, 1.5, -4.5);
    CHECK_T(aqa_mul_scalar(a, -2), AQA_F32, (2, 3), 1e-7, -2, 4, -6, -9, -0, 12);
    CHECK_T(aqa_div_scalar(a, 4), AQA_F32, (2, 3), 1e-7, 0.25, -0.5, 0.75, 1.125, 0, -1.5);
    CHECK_T(aqa_rsub_scalar(a, 1), AQA_F32, (2, 3), 1e-7, 0, 3, -2, -3.5, 1, 7);
    CHECK_T(aqa_pow_scalar(F32((3), 4, 9, 2), 0.5), AQA_F32, (3), 1e-7, 2, 3, sqrt(2.0));
    CHECK_T(aqa_pow_scalar(F32((3), 4, 9, 2), -1), AQA_F32, (3), 1e-7, 0.25, 1.0 / 9, 0.5);
    CHECK_T(aqa_pow_scalar(F32((2), 2, 3), 2.5), AQA_F32, (2), 1e-6, pow(2, 2.5), pow(3, 2.5));
    /* NaN propagates through maximum/minimum from either side, as torch */
    CHECK_T(aqa_maximum(F64((2), NAN, 1), F64((2), 0, NAN)), AQA_F64, (2), 0, NAN, NAN);
    CHECK_T(aqa_minimum(F64((2), NAN, 1), F64((2), 0, NAN)), AQA_F64, (2), 0, NAN, NAN);
    /* division by zero gives IEEE results */
    CHECK_T(aqa_div(F64((3), 1, -1, 0), F64((3), 0, 0, 0)), AQA_F64, (3), 0, INFINITY, -INFINITY, NAN);
    aqa_scope_end();
}

static void test_unary_values(void) {
    aqa_scope_begin();
    const double xs[6] = {-2, -0.5, 0, 0.3, 1, 3};
    aqa_tensor *x = F64((6), -2, -0.5, 0, 0.3, 1, 3);
    double w[6];
    const double tol = 1e-13;
#define EXPECT_UNARY(call, expr)                                                              \
    do {                                                                                      \
        for (int i = 0; i < 6; i++) {                                                         \
            double v = xs[i];                                                                 \
            w[i] = (expr);                                                                    \
        }                                                                                     \
        check_tensor_at(__FILE__, __LINE__, call, AQA_F64, 1, (const int64_t[]){6}, w, tol);  \
    } while (0)
    EXPECT_UNARY(aqa_neg(x), -v);
    EXPECT_UNARY(aqa_exp(x), exp(v));
    EXPECT_UNARY(aqa_abs(x), fabs(v));
    EXPECT_UNARY(aqa_tanh(x), tanh(v));
    EXPECT_UNARY(aqa_sigmoid(x), 1 / (1 + exp(-v)));
    EXPECT_UNARY(aqa_relu(x), v > 0 ? v : 0);
    EXPECT_UNARY(aqa_gelu(x), 0.5 * v * (1 + erf(v / sqrt(2.0))));
    EXPECT_UNARY(aqa_gelu_tanh(x), 0.5 * v * (1 + tanh(sqrt(2 / M_PI) * (v + 0.044715 * v * v * v))));
    EXPECT_UNARY(aqa_quick_gelu(x), v / (1 + exp(-1.702 * v)));
    EXPECT_UNARY(aqa_softplus(x), log(1 + exp(v)));
    EXPECT_UNARY(aqa_square(x), v * v);
    EXPECT_UNARY(aqa_sign(x), v > 0 ? 1 : v < 0 ? -1 : 0);
    EXPECT_UNARY(aqa_clamp(x, -1, 0.5), v < -1 ? -1 : v > 0.5 ? 0.5 : v);
    EXPECT_UNARY(aqa_clamp(x, -INFINITY, 0.5), v > 0.5 ? 0.5 : v);
    EXPECT_UNARY(aqa_clamp(x, 0.1, INFINITY), v < 0.1 ? 0.1 : v);
    aqa_tensor *p = F64((4), 0.25, 1, 4, 100);
    CHECK_T(aqa_log(p), AQA_F64, (4), tol, log(0.25), 0, log(4), log(100));
    CHECK_T(aqa_sqrt(p), AQA_F64, (4), tol, 0.5, 1, 2, 10);
    CHECK_T(aqa_rsqrt(p), AQA_F64, (4), tol, 2, 1, 0.5, 0.1);
    CHECK_T(aqa_log1p(F64((3), 0, 1e-10, 1)), AQA_F64, (3), 1e-15, 0, 1e-10, log(2.0));
    /* boundaries, as libm / torch: */
    CHECK_T(aqa_log(F64((3), 0, -1, INFINITY)), AQA_F64, (3), 0, -INFINITY, NAN, INFINITY);
    CHECK_T(aqa_sqrt(F64((2), 0, -1)), AQA_F64, (2), 0, 0, NAN);
    CHECK_T(aqa_rsqrt(F64((2), 0, -1)), AQA_F64, (2), 0, INFINITY, NAN);
    CHECK_T(aqa_log1p(F64((2), -1, -2)), AQA_F64, (2), 0, -INFINITY, NAN);
    /* NaN stays NaN through relu, clamp, maximum (torch propagates it) */
    CHECK_T(aqa_relu(F64((1), NAN)), AQA_F64, (1), 0, NAN);
    CHECK_T(aqa_clamp(F64((1), NAN), 0, 1), AQA_F64, (1), 0, NAN);
    /* clamp with lo > hi gives hi everywhere (torch: min(max(x, lo), hi)) */
    CHECK_T(aqa_clamp(F64((2), -5, 5), 1, 0), AQA_F64, (2), 0, 0, 0);
    /* the same values in float32 (vectorised kernels) within float precision */
    aqa_tensor *x32 = aqa_to_dtype(x, AQA_F32);
    double got[6];
    struct { aqa_tensor *(*f)(aqa_tensor *); aqa_tensor *(*g)(aqa_tensor *); const char *name; } pairs[] = {
        {aqa_exp, aqa_exp, "exp"}, {aqa_tanh, aqa_tanh, "tanh"}, {aqa_sigmoid, aqa_sigmoid, "sigmoid"},
        {aqa_gelu, aqa_gelu, "gelu"}, {aqa_gelu_tanh, aqa_gelu_tanh, "gelu_tanh"},
        {aqa_quick_gelu, aqa_quick_gelu, "quick_gelu"}, {aqa_softplus, aqa_softplus, "softplus"},
    };
    for (size_t k = 0; k < sizeof pairs / sizeof pairs[0]; k++) {
        aqa_tensor *y32 = pairs[k].f(x32), *y64 = pairs[k].g(x);
        CHECK(y32 && y32->dtype == AQA_F32);
        if (values(y32, got, 6) != 6 || values(y64, w, 6) != 6) continue;
        for (int i = 0; i < 6; i++)
            CHECK_MSG(fabs(got[i] - w[i]) <= 3e-7 * fmax(1e-3, fabs(w[i])), "%s(%g): f32 %.9g, f64 %.9g",
                      pairs[k].name, xs[i], got[i], w[i]);
    }
#undef EXPECT_UNARY
    aqa_scope_end();
}

/* Integer-preserving unary ops keep int64. */
static void test_integer_ops(void) {
    aqa_scope_begin();
    aqa_tensor *i = I64((4), -3, 0, 2, 5);
    CHECK_T(aqa_neg(i), AQA_I64, (4), 0, 3, 0, -2, -5);
    CHECK_T(aqa_abs(i), AQA_I64, (4), 0, 3, 0, 2, 5);
    CHECK_T(aqa_relu(i), AQA_I64, (4), 0, 0, 0, 2, 5);
    CHECK_T(aqa_square(i), AQA_I64, (4), 0, 9, 0, 4, 25);
    CHECK_T(aqa_sign(i), AQA_I64, (4), 0, -1, 0, 1, 1);
    CHECK_T(aqa_clamp(i, -1, 3), AQA_I64, (4), 0, -1, 0, 2, 3);
    CHECK_T(aqa_clamp(i, -INFINITY, 1), AQA_I64, (4), 0, -3, 0, 1, 1);
    CHECK_T(aqa_clamp(i, 0.5, INFINITY), AQA_F32, (4), 0, 0.5, 0.5, 2, 5); /* fractional bound: float */
    CHECK_T(aqa_add_scalar(i, 2), AQA_I64, (4), 0, -1, 2, 4, 7);
    CHECK_T(aqa_mul_scalar(i, 3), AQA_I64, (4), 0, -9, 0, 6, 15);
    CHECK_T(aqa_mul_scalar(i, 2.5), AQA_F32, (4), 0, -7.5, 0, 5, 12.5);
    CHECK_T(aqa_rsub_scalar(i, 1), AQA_I64, (4), 0, 4, 1, -1, -4);
    CHECK_T(aqa_pow_scalar(i, 3), AQA_I64, (4), 0, -27, 0, 8, 125);
    CHECK_T(aqa_pow_scalar(i, 0.5), AQA_F32, (4), 1e-7, NAN, 0, sqrt(2.0), sqrt(5.0));
    CHECK_T(aqa_div_scalar(i, 2), AQA_F32, (4), 0, -1.5, 0, 1, 2.5);
    CHECK_T(aqa_pow(I64((3), 2, -3, 7), I64((3), 10, 3, 0)), AQA_I64, (3), 0, 1024, -27, 1);
    CHECK_T(aqa_maximum(I64((2), 1, 5), I64((2), 3, 2)), AQA_I64, (2), 0, 3, 5);
    aqa_scope_end();
}

/* ---- broadcasting, 0-d, non-contiguous ------------------------------------------------------------ */

static void test_broadcast_3x1_1x4(void) {
    aqa_scope_begin();
    aqa_tensor *a = F32((3, 1), 1, 2, 3);
    aqa_tensor *b = F32((1, 4), 10, 20, 30, 40);
    CHECK_T(aqa_add(a, b), AQA_F32, (3, 4), 0, 11, 21, 31, 41, 12, 22, 32, 42, 13, 23, 33, 43);
    CHECK_T(aqa_sub(b, a), AQA_F32, (3, 4), 0, 9, 19, 29, 39, 8, 18, 28, 38, 7, 17, 27, 37);
    CHECK_T(aqa_maximum(aqa_mul_scalar(a, 15), b), AQA_F32, (3, 4), 0, 15, 20, 30, 40, 30, 30, 30, 40, 45,
            45, 45, 45);
    /* [4] against [3,1] too (missing leading dims) */
    CHECK_T(aqa_mul(F32((4), 1, 2, 3, 4), a), AQA_F32, (3, 4), 0, 1, 2, 3, 4, 2, 4, 6, 8, 3, 6, 9, 12);
    aqa_scope_end();
}

static void test_broadcast_234_4(void) {
    aqa_scope_begin();
    aqa_tensor *a = aqa_arange(0, 24, 1, AQA_F64);
    a = aqa_reshape(a, AQA_SHAPE(2, 3, 4));
    aqa_tensor *b = F64((4), 1, -1, 2, 0.5);
    aqa_tensor *y = aqa_mul(a, b);
    double want[24], bv[4] = {1, -1, 2, 0.5};
    for (int i = 0; i < 24; i++) want[i] = i * bv[i % 4];
    check_tensor_at(__FILE__, __LINE__, y, AQA_F64, 3, (const int64_t[]){2, 3, 4}, want, 0);
    /* and the other way round, b first */
    check_tensor_at(__FILE__, __LINE__, aqa_mul(b, a), AQA_F64, 3, (const int64_t[]){2, 3, 4}, want, 0);
    /* shapes that do not broadcast: NULL with a message naming the op and both shapes */
    aqa_clear_error();
    CHECK(aqa_add(a, F64((3), 1, 2, 3)) == NULL);
    CHECK(strstr(aqa_last_error(), "aqa_add") != NULL);
    CHECK(strstr(aqa_last_error(), "[2, 3, 4]") != NULL);
    /* NULL in, NULL out */
    CHECK(aqa_mul(NULL, b) == NULL);
    CHECK(aqa_exp(NULL) == NULL);
    CHECK(aqa_where(NULL, a, a) == NULL);
    aqa_scope_end();
}

/* Tensors with a zero-sized dimension go through every kind of op and give empty results. */
static void test_empty(void) {
    aqa_scope_begin();
    aqa_tensor *e = aqa_zeros(AQA_SHAPE(0, 3), AQA_F32);
    aqa_tensor *y = aqa_add(e, F32((3), 1, 2, 3));
    CHECK(y && y->ndim == 2 && y->shape[0] == 0 && y->shape[1] == 3);
    CHECK(aqa_gelu(e) && aqa_numel(aqa_gelu(e)) == 0);
    CHECK(aqa_where(aqa_gt_scalar(e, 0), e, aqa_scalar(1, AQA_F32)) != NULL);
    CHECK(aqa_add_(e, F32((3), 1, 2, 3), 1.0) == AQA_OK);
    aqa_tensor *x = aqa_requires_grad(aqa_zeros(AQA_SHAPE(0, 3), AQA_F64), true);
    CHECK(aqa_backward(aqa_sum_all(aqa_sigmoid(x)), NULL, false) == AQA_OK);
    aqa_scope_end();
}

static void test_scalar_0d(void) {
    aqa_scope_begin();
    aqa_tensor *s = aqa_scalar(2, AQA_F32);
    aqa_tensor *m = F32((2, 2), 1, 2, 3, 4);
    CHECK_T(aqa_add(s, m), AQA_F32, (2, 2), 0, 3, 4, 5, 6);
    CHECK_T(aqa_div(m, s), AQA_F32, (2, 2), 0, 0.5, 1, 1.5, 2);
    aqa_tensor *ss = aqa_mul(s, aqa_scalar(-3, AQA_F32));
    CHECK(ss && ss->ndim == 0);
    CHECK_NEAR(aqa_item(ss), -6, 0);
    aqa_tensor *e = aqa_exp(aqa_scalar(1, AQA_F64));
    CHECK(e && e->ndim == 0);
    CHECK_NEAR(aqa_item(e), exp(1.0), 1e-15);
    aqa_tensor *c = aqa_gt(m, s);
    CHECK_T(c, AQA_BOOL, (2, 2), 0, 0, 0, 1, 1);
    aqa_scope_end();
}

static void test_noncontiguous_inputs(void) {
    aqa_scope_begin();
    aqa_tensor *a = F64((2, 3), 1, 2, 3, 4, 5, 6);
    aqa_tensor *at = aqa_transpose(a, 0, 1); /* [3, 2]: 1 4 / 2 5 / 3 6, strides (1, 3) */
    CHECK(!aqa_is_contiguous(at));
    aqa_tensor *b = F64((3, 2), 10, 20, 30, 40, 50, 60);
    CHECK_T(aqa_add(at, b), AQA_F64, (3, 2), 0, 11, 24, 32, 45, 53, 66);
    CHECK_T(aqa_mul(b, at), AQA_F64, (3, 2), 0, 10, 80, 60, 200, 150, 360);
    CHECK_T(aqa_exp(at), AQA_F64, (3, 2), 1e-15, exp(1), exp(4), exp(2), exp(5), exp(3), exp(6));
    /* both operands transposed */
    CHECK_T(aqa_sub(at, at), AQA_F64, (3, 2), 0, 0, 0, 0, 0, 0, 0);
    /* sliced with a step: elements 1, 4, 7 of 0..9 */
    aqa_tensor *r = aqa_arange(0, 10, 1, AQA_F32);
    aqa_tensor *sl = aqa_slice(r, 0, 1, 10, 3);
    CHECK_T(aqa_square(sl), AQA_F32, (3), 0, 1, 16, 49);
    CHECK_T(aqa_gelu(sl), AQA_F32, (3), 1e-6, 0.5 * (1 + erf(1 / sqrt(2.0))), 4 * 0.5 * (1 + erf(4 / sqrt(2.0))),
            7 * 0.5 * (1 + erf(7 / sqrt(2.0))));
    CHECK_T(aqa_where(aqa_gt_scalar(sl, 3), sl, aqa_neg(sl)), AQA_F32, (3), 0, -1, 4, 7);
    /* an expanded (stride 0) input */
    aqa_tensor *ex = aqa_expand(F32((1, 3), 1, 2, 3), AQA_SHAPE(2, 3));
    CHECK_T(aqa_mul(ex, F32((2, 1), 2, 3)), AQA_F32, (2, 3), 0, 2, 4, 6, 3, 6, 9);
    CHECK_T(aqa_relu(aqa_neg(ex)), AQA_F32, (2, 3), 0, 0, 0, 0, 0, 0, 0);
    aqa_scope_end();
}

static void test_dtype_promotion(void) {
    aqa_scope_begin();
    aqa_tensor *i = I64((2), 7, -3);
    aqa_tensor *f = F32((2), 0.5, 2);
    aqa_tensor *d = F64((2), 0.25, 1);
    aqa_tensor *b = aqa_gt_scalar(i, 0); /* bool: 1, 0 */
    CHECK(b && b->dtype == AQA_BOOL);
    CHECK_T(aqa_add(i, f), AQA_F32, (2), 0, 7.5, -1);
    CHECK_T(aqa_add(f, d), AQA_F64, (2), 0, 0.75, 3);
    CHECK_T(aqa_mul(i, i), AQA_I64, (2), 0, 49, 9);
    CHECK_T(aqa_add(i, b), AQA_I64, (2), 0, 8, -3);
    /* two bools stay bool as in torch: + and maximum are or, * and minimum are and, - fails */
    aqa_tensor *b2 = aqa_gt_scalar(I64((2), 0, 1), 0); /* 0, 1 */
    CHECK_T(aqa_add(b, b2), AQA_BOOL, (2), 0, 1, 1);
    CHECK_T(aqa_maximum(b, b2), AQA_BOOL, (2), 0, 1, 1);
    CHECK_T(aqa_mul(b, b2), AQA_BOOL, (2), 0, 0, 0);
    CHECK_T(aqa_minimum(b, b), AQA_BOOL, (2), 0, 1, 0);
    CHECK(aqa_sub(b, b2) == NULL);
    CHECK_T(aqa_pow(b, b2), AQA_I64, (2), 0, 1, 0); /* 1^0, 0^1 */
    CHECK_T(aqa_mul(b, f), AQA_F32, (2), 0, 0.5, 0);
    CHECK_T(aqa_div(i, I64((2), 2, 2)), AQA_F32, (2), 0, 3.5, -1.5); /* true division */
    CHECK_T(aqa_exp(I64((1), 0)), AQA_F32, (1), 0, 1);
    CHECK_T(aqa_sqrt(I64((1), 9)), AQA_F32, (1), 0, 3);
    CHECK_T(aqa_sigmoid(b), AQA_F32, (2), 1e-7, 1 / (1 + exp(-1.0)), 0.5);
    CHECK_T(aqa_pow(i, f), AQA_F32, (2), 1e-6, sqrt(7.0), 9);
    CHECK_T(aqa_maximum(i, d), AQA_F64, (2), 0, 7, 1);
    CHECK_T(aqa_lt(i, f), AQA_BOOL, (2), 0, 0, 1);
    CHECK_T(aqa_where(b, i, f), AQA_F32, (2), 0, 7, 2);
    CHECK_T(aqa_where(b, i, i), AQA_I64, (2), 0, 7, -3);
    CHECK_T(aqa_add_scalar(f, 1e-9), AQA_F32, (2), 1e-7, 0.5, 2); /* scalar takes the tensor's dtype */
    aqa_scope_end();
}

/* ---- comparisons, where, masked_fill ------------------------------------------------------------- */

static void test_comparisons(void) {
    aqa_scope_begin();
    aqa_tensor *a = aqa_requires_grad(F64((4), 1, 2, 3, NAN), true);
    aqa_tensor *b = F64((4), 2, 2, 2, 2);
    CHECK_T(aqa_eq(a, b), AQA_BOOL, (4), 0, 0, 1, 0, 0);
    CHECK_T(aqa_ne(a, b), AQA_BOOL, (4), 0, 1, 0, 1, 1);
    CHECK_T(aqa_lt(a, b), AQA_BOOL, (4), 0, 1, 0, 0, 0);
    CHECK_T(aqa_le(a, b), AQA_BOOL, (4), 0, 1, 1, 0, 0);
    CHECK_T(aqa_gt(a, b), AQA_BOOL, (4), 0, 0, 0, 1, 0);
    CHECK_T(aqa_ge(a, b), AQA_BOOL, (4), 0, 0, 1, 1, 0);
    CHECK_T(aqa_eq_scalar(a, 3), AQA_BOOL, (4), 0, 0, 0, 1, 0);
    CHECK_T(aqa_gt_scalar(a, 1.5), AQA_BOOL, (4), 0, 0, 1, 1, 0);
    CHECK_T(aqa_lt_scalar(a, 1.5), AQA_BOOL, (4), 0, 1, 0, 0, 0);
    CHECK_T(aqa_gt_scalar(I64((3), 1, 2, 3), 1.5), AQA_BOOL, (3), 0, 0, 1, 1);
    /* comparisons record no node even though a requires grad */
    aqa_tensor *c = aqa_lt(a, b);
    CHECK(c && !c->requires_grad && c->grad_fn == NULL);
    aqa_tensor *p = aqa_gt_scalar(F64((4), 1, 0, 1, 0), 0.5);
    aqa_tensor *q = aqa_gt_scalar(F64((4), 1, 1, 0, 0), 0.5);
    CHECK_T(aqa_logical_and(p, q), AQA_BOOL, (4), 0, 1, 0, 0, 0);
    CHECK_T(aqa_logical_or(p, q), AQA_BOOL, (4), 0, 1, 1, 1, 0);
    CHECK_T(aqa_logical_not(p), AQA_BOOL, (4), 0, 0, 1, 0, 1);
    /* non-bool operands: nonzero is true */
    CHECK_T(aqa_logical_not(F32((3), 0, -2, 0.5)), AQA_BOOL, (3), 0, 1, 0, 0);
    CHECK_T(aqa_logical_and(I64((3), 0, 5, -1), F32((3), 1, 1, 0)), AQA_BOOL, (3), 0, 0, 1, 0);
    /* broadcast comparison [3,1] vs [1,2] */
    CHECK_T(aqa_ge(F32((3, 1), 1, 2, 3), F32((1, 2), 2, 3)), AQA_BOOL, (3, 2), 0, 0, 0, 1, 0, 1, 1);
    aqa_scope_end();
}

static void test_where_masked_fill(void) {
    aqa_scope_begin();
    aqa_tensor *cond = aqa_gt_scalar(F32((3, 1), 1, -1, 1), 0);
    aqa_tensor *a = F32((1, 2), 10, 20);
    aqa_tensor *b = aqa_scalar(-1, AQA_F32);
    CHECK_T(aqa_where(cond, a, b), AQA_F32, (3, 2), 0, 10, 20, -1, -1, 10, 20);
    /* a float condition: nonzero is true */
    CHECK_T(aqa_where(F32((3), 0, 2, -0.5), F32((3), 1, 2, 3), F32((3), 4, 5, 6)), AQA_F32, (3), 0, 4, 2, 3);
    aqa_tensor *x = F32((2, 3), 1, 2, 3, 4, 5, 6);
    aqa_tensor *mask = aqa_gt_scalar(F32((3), 0, 1, 0), 0.5); /* broadcasts over rows */
    CHECK_T(aqa_masked_fill(x, mask, -INFINITY), AQA_F32, (2, 3), 0, 1, -INFINITY, 3, 4, -INFINITY, 6);
    /* the causal mask of attention: upper triangle filled */
    aqa_tensor *r = aqa_arange(0, 3, 1, AQA_I64);
    aqa_tensor *upper = aqa_gt(aqa_unsqueeze(r, 0), aqa_unsqueeze(r, 1));
    CHECK_T(aqa_masked_fill(aqa_zeros(AQA_SHAPE(3, 3), AQA_F32), upper, -1e9), AQA_F32, (3, 3), 0, 0, -1e9,
            -1e9, 0, 0, -1e9, 0, 0, 0);
    /* a mask larger than x is an error */
    aqa_clear_error();
    CHECK(aqa_masked_fill(F32((3), 1, 2, 3), aqa_gt_scalar(x, 2), 0) == NULL);
    CHECK(strstr(aqa_last_error(), "aqa_masked_fill") != NULL);
    /* int64 x keeps its dtype */
    CHECK_T(aqa_masked_fill(I64((3), 1, 2, 3), aqa_gt_scalar(I64((3), 1, 2, 3), 1), 0), AQA_I64, (3), 0, 1, 0, 0);
    aqa_scope_end();
}

/* ---- in place ----------------------------------------------------------------------------------------- */

static void test_inplace(void) {
    aqa_scope_begin();
    aqa_tensor *d = F32((2, 3), 1, 2, 3, 4, 5, 6);
    int64_t v0 = aqa_tensor_version(d);
    CHECK(aqa_add_(d, F32((3), 1, 10, 100), 2.0) == AQA_OK);
    CHECK_T(d, AQA_F32, (2, 3), 0, 3, 22, 203, 6, 25, 206);
    CHECK(aqa_tensor_version(d) > v0);
    CHECK(aqa_mul_scalar_(d, 0.5) == AQA_OK);
    CHECK_T(d, AQA_F32, (2, 3), 0, 1.5, 11, 101.5, 3, 12.5, 103);
    /* src of another dtype is converted */
    CHECK(aqa_add_(d, I64((1), 1), -1.0) == AQA_OK);
    CHECK_T(d, AQA_F32, (2, 3), 0, 0.5, 10, 100.5, 2, 11.5, 102);
    /* a non-contiguous destination (a transposed view) writes through to the base */
    aqa_tensor *base = F64((2, 2), 1, 2, 3, 4);
    aqa_tensor *t = aqa_transpose(base, 0, 1);
    CHECK(aqa_add_(t, F64((2, 2), 10, 20, 30, 40), 1.0) == AQA_OK); /* t[i][j] += ... */
    CHECK_T(base, AQA_F64, (2, 2), 0, 11, 32, 23, 44);
    CHECK(aqa_mul_scalar_(t, -1) == AQA_OK);
    CHECK_T(base, AQA_F64, (2, 2), 0, -11, -32, -23, -44);
    /* errors: src larger than dst */
    aqa_clear_error();
    CHECK(aqa_add_(F32((3), 1, 2, 3), d, 1.0) != AQA_OK);
    CHECK(strstr(aqa_last_error(), "aqa_add_") != NULL);
    /* nothing is recorded even with grad mode on */
    aqa_tensor *w = aqa_requires_grad(F64((2), 1, 2), true);
    CHECK(aqa_add_(w, F64((2), 1, 1), 1.0) == AQA_OK);
    CHECK(w->grad_fn == NULL);
    CHECK_T(w, AQA_F64, (2), 0, 2, 3);
    aqa_scope_end();
}

/* ---- stability ---------------------------------------------------------------------------------------- */

static void test_large_values_stable(void) {
    aqa_scope_begin();
    for (int k = 0; k < 2; k++) {
        aqa_dtype dt = k ? AQA_F64 : AQA_F32;
        aqa_tensor *x = aqa_to_dtype(F64((4), -1000, -100, 100, 1000), dt);
        double tol = k ? 1e-12 : 1e-6;
        CHECK_T(aqa_sigmoid(x), dt, (4), tol, 0, exp(-100.0), 1, 1);
        CHECK_T(aqa_softplus(x), dt, (4), tol, 0, exp(-100.0), 100, 1000);
        CHECK_T(aqa_tanh(x), dt, (4), tol, -1, -1, 1, 1);
        CHECK_T(aqa_gelu(x), dt, (4), tol, 0, 0, 100, 1000);
        CHECK_T(aqa_gelu_tanh(x), dt, (4), tol, 0, 0, 100, 1000);
        CHECK_T(aqa_quick_gelu(x), dt, (4), tol, 0, 0, 100, 1000);
        CHECK_T(aqa_exp(x), dt, (4), tol, 0, exp(-100.0), k ? exp(100.0) : INFINITY, INFINITY);
        /* the gradients at +-1000 are finite */
        const char *names[] = {"sigmoid", "softplus", "tanh", "gelu", "gelu_tanh", "quick_gelu"};
        aqa_tensor *(*fns[])(aqa_tensor *) = {aqa_sigmoid, aqa_softplus, aqa_tanh, aqa_gelu, aqa_gelu_tanh,
                                              aqa_quick_gelu};
        double want[6][4] = {{0, 0, 0, 0}, {0, 0, 1, 1}, {0, 0, 0, 0}, {0, 0, 1, 1}, {0, 0, 1, 1}, {0, 0, 1, 1}};
        for (int f = 0; f < 6; f++) {
            aqa_tensor *xl = aqa_requires_grad(aqa_to_dtype(F64((4), -1000, -100, 100, 1000), dt), true);
            aqa_tensor *y = aqa_sum_all(fns[f](xl));
            CHECK_MSG(aqa_backward(y, NULL, false) == AQA_OK, "%s: %s", names[f], aqa_last_error());
            double g[4];
            if (values(xl->grad, g, 4) != 4) continue;
            for (int i = 0; i < 4; i++)
                CHECK_MSG(isfinite(g[i]) && fabs(g[i] - want[f][i]) <= 1e-6, "%s' at element %d: %g (%s)", names[f],
                          i, g[i], aqa_dtype_name(dt));
        }
    }
    aqa_scope_end();
}

/* The float32 kernels (vectorised approximations) against libm in double over a dense grid, on
 * enough elements that the parallel path runs too. */
static void test_f32_kernels_accuracy(void) {
    aqa_scope_begin();
    const int64_t n = 200001;
    aqa_tensor *x = aqa_linspace(-20, 20, n, AQA_F32);
    double *xs = malloc(sizeof(double) * n), *ys = malloc(sizeof(double) * n);
    aqa_copy_to_host(x, xs, AQA_F64);
    struct {
        const char *name;
        aqa_tensor *(*f)(aqa_tensor *);
        int which;
        double rtol; /* relative to max(|ref|, floor) */
        double floor;
    } cases[] = {
        /* exp-like results keep relative accuracy down to tiny values; the GELU family is
         * judged relative to 1e-4 in its far negative tail (float32 rounding of x^2 there) */
        {"exp", aqa_exp, 0, 4e-7, 1e-30},          {"tanh", aqa_tanh, 1, 4e-7, 1e-30},
        {"sigmoid", aqa_sigmoid, 2, 4e-7, 1e-30},  {"gelu", aqa_gelu, 3, 1e-6, 1e-4},
        {"gelu_tanh", aqa_gelu_tanh, 4, 2e-6, 1e-4}, {"quick_gelu", aqa_quick_gelu, 5, 1e-6, 1e-4},
        {"softplus", aqa_softplus, 6, 4e-7, 1e-30},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        aqa_tensor *y = cases[c].f(x);
        if (!y || aqa_copy_to_host(y, ys, AQA_F64) != AQA_OK) {
            CHECK_MSG(0, "%s failed: %s", cases[c].name, aqa_last_error());
            continue;
        }
        double worst = 0, at = 0;
        for (int64_t i = 0; i < n; i++) {
            double v = xs[i], ref;
            switch (cases[c].which) {
            case 0: ref = exp(v); break;
            case 1: ref = tanh(v); break;
            case 2: ref = 1 / (1 + exp(-v)); break;
            case 3: ref = 0.5 * v * erfc(-v / sqrt(2.0)); break;
            /* 0.5 v (1 + tanh u) written as v / (1 + e^-2u), which does not cancel in double */
            case 4: ref = v / (1 + exp(-2 * sqrt(2 / M_PI) * (v + 0.044715 * v * v * v))); break;
            case 5: ref = v / (1 + exp(-1.702 * v)); break;
            default: ref = v > 0 ? v + log1p(exp(-v)) : log1p(exp(v)); break;
            }
            double err = fabs(ys[i] - ref) / fmax(fabs(ref), cases[c].floor);
            if (err > worst) worst = err, at = v;
        }
        CHECK_MSG(worst <= cases[c].rtol, "%s: worst relative error %.3g at x = %.6g", cases[c].name, worst, at);
    }
    /* derivatives of the GELU family, through backward */
    aqa_tensor *xl = aqa_requires_grad(aqa_linspace(-12, 12, 4801, AQA_F32), true);
    aqa_tensor *(*fns[3])(aqa_tensor *) = {aqa_gelu, aqa_gelu_tanh, aqa_quick_gelu};
    for (int f = 0; f < 3; f++) {
        aqa_zero_grad(xl);
        CHECK(aqa_backward(aqa_sum_all(fns[f](xl)), NULL, false) == AQA_OK);
        double *g = malloc(sizeof(double) * 4801), *xv = malloc(sizeof(double) * 4801);
        aqa_copy_to_host(xl->grad, g, AQA_F64);
        aqa_copy_to_host(xl, xv, AQA_F64);
        double worst = 0;
        for (int i = 0; i < 4801; i++) {
            double v = xv[i], ref;
            if (f == 0) ref = 0.5 * erfc(-v / sqrt(2.0)) + v * exp(-0.5 * v * v) / sqrt(2 * M_PI);
            else if (f == 1) {
                double u = sqrt(2 / M_PI) * (v + 0.044715 * v * v * v), t = tanh(u);
                ref = 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * sqrt(2 / M_PI) * (1 + 3 * 0.044715 * v * v);
            } else {
                double s = 1 / (1 + exp(-1.702 * v));
                ref = s + 1.702 * v * s * (1 - s);
            }
            worst = fmax(worst, fabs(g[i] - ref));
        }
        CHECK_MSG(worst <= 1e-6, "gelu family %d: worst abs error of the derivative %.3g", f, worst);
        free(g);
        free(xv);
    }
    free(xs);
    free(ys);
    aqa_scope_end();
}

/* ---- gradcheck ------------------------------------------------------------------------------------------ */

typedef aqa_tensor *(*unary_fn)(aqa_tensor *);
typedef aqa_tensor *(*binary_fn)(aqa_tensor *, aqa_tensor *);
typedef struct { unary_fn f; int view; double p0, p1; int kind; } unary_case;

/* view: 0 as is, 1 transposed, 2 sliced with a step (non-contiguous inputs to the op) */
static aqa_tensor *make_view(aqa_tensor *x, int view) {
    if (view == 1) return aqa_transpose(x, 0, 1);
    if (view == 2) return aqa_slice(x, 1, 0, x->shape[1], 2);
    return x;
}

static aqa_tensor *gc_unary(aqa_tensor *const *in, int n, void *user) {
    (void)n;
    const unary_case *c = user;
    aqa_tensor *x = make_view(in[0], c->view);
    switch (c->kind) {
    case 1: return aqa_clamp(x, c->p0, c->p1);
    case 2: return aqa_pow_scalar(x, c->p0);
    case 3: return aqa_add_scalar(x, c->p0);
    case 4: return aqa_mul_scalar(x, c->p0);
    case 5: return aqa_div_scalar(x, c->p0);
    case 6: return aqa_rsub_scalar(x, c->p0);
    case 7: return aqa_masked_fill(x, aqa_gt_scalar(x, c->p0), c->p1);
    default: return c->f(x);
    }
}

static void run_unary_gradcheck(const char *name, unary_case c, double lo, double hi, const double *avoid,
                                int n_avoid) {
    for (int view = 0; view < 3; view++) {
        aqa_scope_begin();
        c.view = view;
        aqa_tensor *x = rand_leaf(2, (const int64_t[]){3, 4}, lo, hi, avoid, n_avoid, 0.05);
        aqa_gradcheck_result r = aqa_gradcheck(gc_unary, &x, 1, &c, GC_EPS, GC_ATOL, GC_RTOL);
        CHECK_MSG(r.ok, "%s (view %d): %s", name, view, r.message);
        aqa_scope_end();
    }
}

static void test_gradcheck_unary(void) {
    rng_state = test_seed("gradcheck unary") * 2654435761u + 1;
    const double zero[1] = {0};
    run_unary_gradcheck("neg", (unary_case){.f = aqa_neg}, -2, 2, NULL, 0);
    run_unary_gradcheck("exp", (unary_case){.f = aqa_exp}, -2, 2, NULL, 0);
    run_unary_gradcheck("log", (unary_case){.f = aqa_log}, 0.2, 3, NULL, 0);
    run_unary_gradcheck("sqrt", (unary_case){.f = aqa_sqrt}, 0.2, 3, NULL, 0);
    run_unary_gradcheck("rsqrt", (unary_case){.f = aqa_rsqrt}, 0.2, 3, NULL, 0);
    run_unary_gradcheck("abs", (unary_case){.f = aqa_abs}, -2, 2, zero, 1);
    run_unary_gradcheck("tanh", (unary_case){.f = aqa_tanh}, -2, 2, NULL, 0);
    run_unary_gradcheck("sigmoid", (unary_case){.f = aqa_sigmoid}, -4, 4, NULL, 0);
    run_unary_gradcheck("relu", (unary_case){.f = aqa_relu}, -2, 2, zero, 1);
    run_unary_gradcheck("gelu", (unary_case){.f = aqa_gelu}, -4, 4, NULL, 0);
    run_unary_gradcheck("gelu_tanh", (unary_case){.f = aqa_gelu_tanh}, -4, 4, NULL, 0);
    run_unary_gradcheck("quick_gelu", (unary_case){.f = aqa_quick_gelu}, -4, 4, NULL, 0);
    run_unary_gradcheck("log1p", (unary_case){.f = aqa_log1p}, -0.8, 3, NULL, 0);
    run_unary_gradcheck("softplus", (unary_case){.f = aqa_softplus}, -5, 5, NULL, 0);
    run_unary_gradcheck("square", (unary_case){.f = aqa_square}, -2, 2, NULL, 0);
    run_unary_gradcheck("sign", (unary_case){.f = aqa_sign}, -2, 2, zero, 1);
    run_unary_gradcheck("clamp", (unary_case){.p0 = -0.5, .p1 = 0.8, .kind = 1}, -2, 2, (const double[]){-0.5, 0.8}, 2);
    run_unary_gradcheck("clamp open", (unary_case){.p0 = -INFINITY, .p1 = 0.8, .kind = 1}, -2, 2, (const double[]){0.8}, 1);
    run_unary_gradcheck("pow_scalar 1.7", (unary_case){.p0 = 1.7, .p1 = 0, .kind = 2}, 0.2, 3, NULL, 0);
    run_unary_gradcheck("pow_scalar -2", (unary_case){.p0 = -2, .p1 = 0, .kind = 2}, 0.5, 3, NULL, 0);
    run_unary_gradcheck("pow_scalar 3", (unary_case){.p0 = 3, .p1 = 0, .kind = 2}, -2, 2, NULL, 0);
    run_unary_gradcheck("add_scalar", (unary_case){.p0 = 0.7, .p1 = 0, .kind = 3}, -2, 2, NULL, 0);
    run_unary_gradcheck("mul_scalar", (unary_case){.p0 = -1.3, .p1 = 0, .kind = 4}, -2, 2, NULL, 0);
    run_unary_gradcheck("div_scalar", (unary_case){.p0 = 3.0, .p1 = 0, .kind = 5}, -2, 2, NULL, 0);
    run_unary_gradcheck("rsub_scalar", (unary_case){.p0 = 2.0, .p1 = 0, .kind = 6}, -2, 2, NULL, 0);
    run_unary_gradcheck("masked_fill", (unary_case){.p0 = 0.3, .p1 = -7, .kind = 7}, -2, 2, (const double[]){0.3}, 1);
}

typedef struct { binary_fn f; int view; int kind; } binary_case;

static aqa_tensor *gc_binary(aqa_tensor *const *in, int n, void *user) {
    (void)n;
    const binary_case *c = user;
    aqa_tensor *a = make_view(in[0], c->view), *b = in[1];
    if (c->kind == 1) return aqa_where(aqa_gt(a, b), a, aqa_mul_scalar(b, 3.0));
    return c->f(a, b);
}

/* a: [4, 3] as is, transposed to [3, 4], or [4, 4] sliced to [4, 2]; b broadcast against the
 * view as [1, cols], [rows, 1] and 0-d. */
static void run_binary_gradcheck(const char *name, binary_case c, double lo, double hi, double blo, double bhi) {
    for (int view = 0; view < 3; view++) {
        for (int bshape = 0; bshape < 3; bshape++) {
            aqa_scope_begin();
            c.view = view;
            int64_t rows = view == 1 ? 3 : 4, cols = view == 0 ? 3 : view == 1 ? 4 : 2;
            aqa_tensor *a = rand_leaf(2, (const int64_t[]){4, view == 2 ? 4 : 3}, lo, hi, NULL, 0, 0);
            aqa_tensor *b = bshape == 0   ? rand_leaf(2, (const int64_t[]){1, cols}, blo, bhi, NULL, 0, 0)
                            : bshape == 1 ? rand_leaf(2, (const int64_t[]){rows, 1}, blo, bhi, NULL, 0, 0)
                                          : rand_leaf(0, NULL, blo, bhi, NULL, 0, 0);
            aqa_tensor *ins[2] = {a, b};
            aqa_gradcheck_result r = aqa_gradcheck(gc_binary, ins, 2, &c, GC_EPS, GC_ATOL, GC_RTOL);
            CHECK_MSG(r.ok, "%s (view %d, b shape %d): %s", name, view, bshape, r.message);
            aqa_scope_end();
        }
    }
}

static void test_gradcheck_binary(void) {
    rng_state = test_seed("gradcheck binary") * 2654435761u + 7;
    run_binary_gradcheck("add", (binary_case){.f = aqa_add}, -2, 2, -2, 2);
    run_binary_gradcheck("sub", (binary_case){.f = aqa_sub}, -2, 2, -2, 2);
    run_binary_gradcheck("mul", (binary_case){.f = aqa_mul}, -2, 2, -2, 2);
    run_binary_gradcheck("div", (binary_case){.f = aqa_div}, -2, 2, 0.5, 2);
    run_binary_gradcheck("pow", (binary_case){.f = aqa_pow}, 0.3, 2, -1.5, 2);
    /* maximum/minimum: a and b from disjoint-ish ranges never tie exactly */
    run_binary_gradcheck("maximum", (binary_case){.f = aqa_maximum}, -2, 2, -2, 2);
    run_binary_gradcheck("minimum", (binary_case){.f = aqa_minimum}, -2, 2, -2, 2);
    run_binary_gradcheck("where", (binary_case){.kind = 1}, -2, 2, -2, 2);
    /* mixed dtypes: a float32 operand promoted to float64, gradient cast back */
    aqa_scope_begin();
    aqa_tensor *a = aqa_requires_grad(F32((2), 1.5, -2), true);
    aqa_tensor *b = aqa_requires_grad(F64((2), 3, 4), true);
    aqa_tensor *y = aqa_mul(a, b);
    CHECK(y && y->dtype == AQA_F64);
    CHECK(aqa_backward(aqa_sum_all(y), NULL, false) == AQA_OK);
    CHECK_T(a->grad, AQA_F32, (2), 0, 3, 4);
    CHECK_T(b->grad, AQA_F64, (2), 0, 1.5, -2);
    aqa_scope_end();
}

/* Gradients at the special points, as torch defines them. */
static void test_gradient_edge_cases(void) {
    aqa_scope_begin();
    /* relu' = 0 at 0, abs' = 0 at 0, clamp' = 1 at the bounds inclusive, sign' = 0 */
    struct { aqa_tensor *(*f)(aqa_tensor *); double want[3]; const char *name; } cases[] = {
        {aqa_relu, {0, 0, 1}, "relu"}, {aqa_abs, {-1, 0, 1}, "abs"}, {aqa_sign, {0, 0, 0}, "sign"},
    };
    for (int k = 0; k < 3; k++) {
        aqa_tensor *x = aqa_requires_grad(F64((3), -1, 0, 2), true);
        CHECK(aqa_backward(aqa_sum_all(cases[k].f(x)), NULL, false) == AQA_OK);
        check_tensor_at(__FILE__, __LINE__, x->grad, AQA_F64, 1, (const int64_t[]){3}, cases[k].want, 0);
    }
    aqa_tensor *x = aqa_requires_grad(F64((5), -2, -1, 0, 1, 2), true);
    CHECK(aqa_backward(aqa_sum_all(aqa_clamp(x, -1, 1)), NULL, false) == AQA_OK);
    CHECK_T(x->grad, AQA_F64, (5), 0, 0, 1, 1, 1, 0);
    /* maximum/minimum split ties half and half */
    aqa_tensor *a = aqa_requires_grad(F64((3), 1, 2, 3), true);
    aqa_tensor *b = aqa_requires_grad(F64((3), 2, 2, 1), true);
    CHECK(aqa_backward(aqa_sum_all(aqa_maximum(a, b)), NULL, false) == AQA_OK);
    CHECK_T(a->grad, AQA_F64, (3), 0, 0, 0.5, 1);
    CHECK_T(b->grad, AQA_F64, (3), 0, 1, 0.5, 0);
    aqa_zero_grad(a);
    aqa_zero_grad(b);
    CHECK(aqa_backward(aqa_sum_all(aqa_minimum(a, b)), NULL, false) == AQA_OK);
    CHECK_T(a->grad, AQA_F64, (3), 0, 1, 0.5, 0);
    CHECK_T(b->grad, AQA_F64, (3), 0, 0, 0.5, 1);
    /* pow at a zero base: d/db = 0 where a == 0 and b >= 0 (not 0 * -inf = NaN); d/da of b == 0 is 0 */
    aqa_tensor *pa = aqa_requires_grad(F64((4), 0, 0, 2, 0), true);
    aqa_tensor *pb = aqa_requires_grad(F64((4), 2, 0, 3, 0.5), true);
    CHECK(aqa_backward(aqa_sum_all(aqa_pow(pa, pb)), NULL, false) == AQA_OK);
    CHECK_T(pa->grad, AQA_F64, (4), 1e-15, 0, 0, 12, INFINITY);
    CHECK_T(pb->grad, AQA_F64, (4), 1e-15, 0, 0, 8 * log(2.0), 0);
    /* pow_scalar with exponent 0: zero gradient, even at 0 */
    aqa_tensor *z = aqa_requires_grad(F64((2), 0, 3), true);
    CHECK(aqa_backward(aqa_sum_all(aqa_pow_scalar(z, 0)), NULL, false) == AQA_OK);
    CHECK_T(z->grad, AQA_F64, (2), 0, 0, 0);
    /* sqrt at 0: infinite gradient, as torch */
    aqa_tensor *s = aqa_requires_grad(F64((2), 0, 4), true);
    CHECK(aqa_backward(aqa_sum_all(aqa_sqrt(s)), NULL, false) == AQA_OK);
    CHECK_T(s->grad, AQA_F64, (2), 0, INFINITY, 0.25);
    /* where: gradient routed by the condition; masked_fill: zero where filled */
    aqa_tensor *wa = aqa_requires_grad(F64((3), 1, 2, 3), true);
    aqa_tensor *wb = aqa_requires_grad(aqa_scalar(5, AQA_F64), true);
    aqa_tensor *cond = aqa_gt_scalar(F64((3), 1, 0, 1), 0.5);
    CHECK(aqa_backward(aqa_sum_all(aqa_where(cond, wa, wb)), NULL, false) == AQA_OK);
    CHECK_T(wa->grad, AQA_F64, (3), 0, 1, 0, 1);
    CHECK(wb->grad && wb->grad->ndim == 0);
    CHECK_NEAR(aqa_item(wb->grad), 1, 0);
    aqa_scope_end();
}

/* Scope-owned results and graphs die with the scope. */
static void test_no_leaks(void) {
    int64_t t0 = aqa_live_tensors(), s0 = aqa_live_storages();
    aqa_scope_begin();
    aqa_tensor *a = aqa_requires_grad(aqa_randn(AQA_SHAPE(3, 4), AQA_F64, NULL), true);
    aqa_tensor *b = aqa_requires_grad(aqa_randn(AQA_SHAPE(4), AQA_F64, NULL), true);
    aqa_tensor *y = aqa_add(aqa_gelu(aqa_mul(a, b)), aqa_where(aqa_gt(a, b), aqa_pow(aqa_abs(a), b), aqa_sigmoid(b)));
    y = aqa_masked_fill(aqa_clamp(y, -1, 1), aqa_lt_scalar(a, -1), 0);
    CHECK(aqa_backward(aqa_sum_all(y), NULL, false) == AQA_OK);
    aqa_add_(a, b, 0.5);
    aqa_scope_end();
    CHECK_EQ_INT(aqa_live_tensors(), t0);
    CHECK_EQ_INT(aqa_live_storages(), s0);
}

/* ---- PyTorch parity --------------------------------------------------------------------------------- */

static aqa_tensor *golden_unary(const char *name, aqa_tensor *x) {
    if (!strcmp(name, "neg")) return aqa_neg(x);
    if (!strcmp(name, "exp")) return aqa_exp(x);
    if (!strcmp(name, "log")) return aqa_log(x);
    if (!strcmp(name, "sqrt")) return aqa_sqrt(x);
    if (!strcmp(name, "rsqrt")) return aqa_rsqrt(x);
    if (!strcmp(name, "abs")) return aqa_abs(x);
    if (!strcmp(name, "tanh")) return aqa_tanh(x);
    if (!strcmp(name, "sigmoid")) return aqa_sigmoid(x);
    if (!strcmp(name, "relu")) return aqa_relu(x);
    if (!strcmp(name, "gelu")) return aqa_gelu(x);
    if (!strcmp(name, "gelu_tanh")) return aqa_gelu_tanh(x);
    if (!strcmp(name, "quick_gelu")) return aqa_quick_gelu(x);
    if (!strcmp(name, "log1p")) return aqa_log1p(x);
    if (!strcmp(name, "softplus")) return aqa_softplus(x);
    if (!strcmp(name, "square")) return aqa_square(x);
    if (!strcmp(name, "clamp")) return aqa_clamp(x, -0.55, 0.75);
    if (!strcmp(name, "pow_scalar")) return aqa_pow_scalar(x, 1.7);
    if (!strcmp(name, "mul_scalar")) return aqa_mul_scalar(x, 1.5);
    if (!strcmp(name, "div_scalar")) return aqa_div_scalar(x, 3.0);
    if (!strcmp(name, "add_scalar")) return aqa_add_scalar(x, 0.25);
    if (!strcmp(name, "rsub_scalar")) return aqa_rsub_scalar(x, 2.0);
    return NULL;
}

static aqa_tensor *golden_binary(const char *name, aqa_tensor *a, aqa_tensor *b) {
    if (!strcmp(name, "add")) return aqa_add(a, b);
    if (!strcmp(name, "sub")) return aqa_sub(a, b);
    if (!strcmp(name, "mul")) return aqa_mul(a, b);
    if (!strcmp(name, "div")) return aqa_div(a, b);
    if (!strcmp(name, "maximum")) return aqa_maximum(a, b);
    if (!strcmp(name, "minimum")) return aqa_minimum(a, b);
    if (!strcmp(name, "pow")) return aqa_pow(a, b);
    if (!strcmp(name, "where")) return aqa_where(aqa_gt(a, b), a, aqa_mul_scalar(b, 2.0));
    return NULL;
}

static void test_golden_torch(void) {
    if (!test_golden_open("golden_elementwise.safetensors")) {
        CHECK_MSG(0, "cannot open the golden file: %s", aqa_last_error());
        return;
    }
    const char *unary[] = {"neg",   "exp",      "log",        "sqrt",       "rsqrt",      "abs",
                           "tanh",  "sigmoid",  "relu",       "gelu",       "gelu_tanh",  "quick_gelu",
                           "log1p", "softplus", "square",     "clamp",      "pow_scalar", "mul_scalar",
                           "div_scalar", "add_scalar", "rsub_scalar"};
    const char *positive[] = {"log", "sqrt", "rsqrt", "log1p", "pow_scalar"};
    char key[128];
    for (size_t k = 0; k < sizeof unary / sizeof unary[0]; k++) {
        aqa_scope_begin();
        bool pos = false;
        for (size_t j = 0; j < sizeof positive / sizeof positive[0]; j++) pos |= !strcmp(unary[k], positive[j]);
        aqa_tensor *x = aqa_requires_grad(GOLDEN("%s", pos ? "unary.xpos" : "unary.x"), true);
        aqa_tensor *y = golden_unary(unary[k], x);
        snprintf(key, sizeof key, "unary.%s.out", unary[k]);
        CHECK_CLOSE(key, y, GOLDEN("%s", key), 1e-5, 1e-6);
        snprintf(key, sizeof key, "unary.%s.gy", unary[k]);
        if (y && aqa_backward(y, GOLDEN("%s", key), false) == AQA_OK) {
            snprintf(key, sizeof key, "unary.%s.grad", unary[k]);
            CHECK_CLOSE(key, x->grad, GOLDEN("%s", key), 1e-5, 1e-6);
        } else {
            CHECK_MSG(0, "%s: backward failed: %s", unary[k], aqa_last_error());
        }
        aqa_scope_end();
    }
    const char *binary[] = {"add", "sub", "mul", "div", "maximum", "minimum", "pow", "where"};
    for (size_t k = 0; k < sizeof binary / sizeof binary[0]; k++) {
        aqa_scope_begin();
        aqa_tensor *a = aqa_requires_grad(GOLDEN("%s", !strcmp(binary[k], "pow") ? "binary.apos" : "binary.a"), true);
        aqa_tensor *b = aqa_requires_grad(GOLDEN("binary.b"), true);
        aqa_tensor *y = golden_binary(binary[k], a, b);
        snprintf(key, sizeof key, "binary.%s.out", binary[k]);
        CHECK_CLOSE(key, y, GOLDEN("%s", key), 1e-5, 1e-6);
        snprintf(key, sizeof key, "binary.%s.gy", binary[k]);
        if (y && aqa_backward(y, GOLDEN("%s", key), false) == AQA_OK) {
            snprintf(key, sizeof key, "binary.%s.grad_a", binary[k]);
            CHECK_CLOSE(key, a->grad, GOLDEN("%s", key), 1e-5, 1e-6);
            snprintf(key, sizeof key, "binary.%s.grad_b", binary[k]);
            CHECK_CLOSE(key, b->grad, GOLDEN("%s", key), 1e-5, 1e-6);
        } else {
            CHECK_MSG(0, "%s: backward failed: %s", binary[k], aqa_last_error());
        }
        aqa_scope_end();
    }
}

int main(void) {
    RUN(test_binary_values);
    RUN(test_unary_values);
    RUN(test_integer_ops);
    RUN(test_broadcast_3x1_1x4);
    RUN(test_broadcast_234_4);
    RUN(test_scalar_0d);
    RUN(test_empty);
    RUN(test_noncontiguous_inputs);
    RUN(test_dtype_promotion);
    RUN(test_comparisons);
    RUN(test_where_masked_fill);
    RUN(test_inplace);
    RUN(test_large_values_stable);
    RUN(test_f32_kernels_accuracy);
    RUN(test_gradcheck_unary);
    RUN(test_gradcheck_binary);
    RUN(test_gradient_edge_cases);
    RUN(test_no_leaks);
    RUN(test_golden_torch);
    test_golden_close();
    return test_finish();
}
