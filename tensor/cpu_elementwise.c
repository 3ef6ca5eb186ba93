/* cpu_elementwise.c: the CPU kernels of the elementwise ops (backend slots unary, binary, where,
 * axpy).
 *
 * Every kernel walks its operands with aqa_iter (tensor/iter.h), which hands a 1-D inner function
 * rows of n elements with byte strides.  Each inner function has a contiguous fast path (all
 * strides equal to the element size, or a stride-0 scalar operand) written as a plain indexed
 * loop marked `omp simd`, so that the compiler vectorises it, and a strided fallback.
 *
 * float32 transcendental functions on the hot paths of a network (exp, tanh, sigmoid and the GELU
 * family with their derivatives) use small inline approximations accurate to a few ulp
 * (cpu_elementwise_f32.h) instead of libm calls, because a libm call in the loop body stops
 * vectorisation.  float64 (gradient checks, references) always uses libm. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/cpu-impl.h"
#include "base/error.h"
#include "tensor/iter.h"
#include "tensor/tensor-impl.h"

/* Floating-point exceptions are never enabled in aqa and errno is not read after math calls;
 * without these, GCC keeps every float compare-and-select (clamps, NaN checks) as a branch and
 * every sqrt as a libm call, and refuses to vectorise those loops. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math", "no-math-errno")
#endif

/* The float32 row functions (cpu_elementwise_f32.h) are compiled twice: for the x86-64 baseline
 * and for AVX2+FMA, picked at run time when the CPU has them (twice the SIMD width). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define EW_HAVE_AVX2 1
#else
#define EW_HAVE_AVX2 0
#endif

#define SQRT1_2 0.70710678118654752440
#define INV_SQRT_2PI 0.39894228040143267794
#define SQRT_2_OVER_PI 0.79788456080286535588
#define GELU_TANH_C 0.044715
#define QUICK_GELU_C 1.702

/* ---- float64: libm ------------------------------------------------------------------------ */

static inline double sigmoid_f64(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}
static inline double norm_cdf_f64(double x) { return 0.5 * erfc(-x * SQRT1_2); }
static inline double gelu_f64(double x) { return x * norm_cdf_f64(x); }
static inline double gelu_grad_f64(double x) {
    return norm_cdf_f64(x) + x * INV_SQRT_2PI * exp(-0.5 * x * x);
}
static inline double gelu_tanh_f64(double x) {
    double u = SQRT_2_OVER_PI * (x + GELU_TANH_C * x * x * x);
    return x * sigmoid_f64(2.0 * u);
}
static inline double gelu_tanh_grad_f64(double x) {
    double u = SQRT_2_OVER_PI * (x + GELU_TANH_C * x * x * x);
    double du = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_TANH_C * x * x);
    double s = sigmoid_f64(2.0 * u);
    return s + x * s * (1.0 - s) * 2.0 * du;
}
static inline double quick_gelu_f64(double x) { return x * sigmoid_f64(QUICK_GELU_C * x); }
static inline double quick_gelu_grad_f64(double x) {
    double s = sigmoid_f64(QUICK_GELU_C * x);
    return s + QUICK_GELU_C * x * s * (1.0 - s);
}
static inline double softplus_f64(double x) { return fmax(x, 0.0) + log1p(exp(-fabs(x))); }

static inline double pow_scalar_f64(double x, double e) {
    if (e == 2.0) return x * x;
    if (e == 1.0) return x;
    if (e == 3.0) return x * x * x;
    if (e == 0.5) return sqrt(x);
    if (e == -0.5) return 1.0 / sqrt(x);
    if (e == -1.0) return 1.0 / x;
    if (e == -2.0) return 1.0 / (x * x);
    return pow(x, e);
}
/* Integer power by squaring; negative exponents give what 1/x^-e truncates to. */
static inline int64_t pow_i64(int64_t x, int64_t e) {
    if (e < 0) return x == 1 ? 1 : x == -1 ? ((e & 1) ? -1 : 1) : 0;
    uint64_t r = 1, b = (uint64_t)x; /* unsigned: wrap-around like torch, without UB */
    while (e) {
        if (e & 1) r *= b;
        b *= b;
        e >>= 1;
    }
    return (int64_t)r;
}
static inline double sign_f64(double x) { return (double)((x > 0) - (x < 0)); }

/* ---- driving the iteration ---------------------------------------------------------------- */

/* Runs inner over all elements of the operands (aqa_iter splits large work across threads,
 * long single rows included). */
static void run(int n_ops, const aqa_tensor *const *ops, aqa_iter_inner_fn inner, void *ctx) {
    aqa_iter it;
    aqa_iter_init(&it, n_ops, ops);
    if (aqa_iter_numel(&it) == 0) return;
    aqa_iter_for_each(&it, inner, ctx, 1);
}

/* ---- unary ----------------------------------------------------------------------------------- */

typedef struct unary_ctx {
    aqa_unary_op op; /* what to compute */
    double p0, p1;   /* op parameters (clamp bounds, scalar operand) */
} unary_ctx;

/* out[i] = EXPR(x) over a row; the contiguous case is vectorised when VEC is `omp simd`. */
#define UNARY_ROW(TO, TX, EXPR, VEC)                                                  \
    do {                                                                              \
        if (so == (int64_t)sizeof(TO) && sx == (int64_t)sizeof(TX)) {                 \
            TO *o_ = (TO *)po;                                                        \
            const TX *x_ = (const TX *)px;                                            \
            _Pragma(VEC) for (int64_t i = 0; i < n; i++) {                            \
                TX x = x_[i];                                                         \
                o_[i] = (EXPR);                                                       \
            }                                                                         \
        } else {                                                                      \
            for (int64_t i = 0; i < n; i++) {                                         \
                TX x = *(const TX *)(px + i * sx);                                    \
                *(TO *)(po + i * so) = (EXPR);                                        \
            }                                                                         \
        }                                                                             \
    } while (0)
#define SIMD "omp simd"
#define NOSIMD "GCC ivdep"

/* out[i] = EXPR(a, b) over a row, with vectorised paths for all-contiguous and for one operand
 * broadcast as a scalar (stride 0), the common shapes of bias adds and scalings. */
#define BINARY_ROW(TO, T, EXPR, VEC)                                                  \
    do {                                                                              \
        const int64_t es_ = (int64_t)sizeof(T);                                       \
        if (so == (int64_t)sizeof(TO) && sa == es_ && sb == es_) {                    \
            TO *o_ = (TO *)po;                                                        \
            const T *a_ = (const T *)pa, *b_ = (const T *)pb;                         \
            _Pragma(VEC) for (int64_t i = 0; i < n; i++) {                            \
                T a = a_[i], b = b_[i];                                               \
                o_[i] = (EXPR);                                                       \
            }                                                                         \
        } else if (so == (int64_t)sizeof(TO) && sa == es_ && sb == 0) {               \
            TO *o_ = (TO *)po;                                                        \
            const T *a_ = (const T *)pa;                                              \
            const T b = *(const T *)pb;                                               \
            _Pragma(VEC) for (int64_t i = 0; i < n; i++) {                            \
                T a = a_[i];                                                          \
                o_[i] = (EXPR);                                                       \
            }                                                                         \
        } else if (so == (int64_t)sizeof(TO) && sa == 0 && sb == es_) {               \
            TO *o_ = (TO *)po;                                                        \
            const T a = *(const T *)pa;                                               \
            const T *b_ = (const T *)pb;                                              \
            _Pragma(VEC) for (int64_t i = 0; i < n; i++) {                            \
                T b = b_[i];                                                          \
                o_[i] = (EXPR);                                                       \
            }                                                                         \
        } else {                                                                      \
            for (int64_t i = 0; i < n; i++) {                                         \
                T a = *(const T *)(pa + i * sa), b = *(const T *)(pb + i * sb);       \
                *(TO *)(po + i * so) = (EXPR);                                        \
            }                                                                         \
        }                                                                             \
    } while (0)

/* maximum/minimum propagate NaN from either side, as torch.maximum does. */
#define MAX_EXPR(a, b) ((a) != (a) ? (a) : ((a) > (b) ? (a) : (b)))
#define MIN_EXPR(a, b) ((a) != (a) ? (a) : ((a) < (b) ? (a) : (b)))

typedef struct binary_ctx {
    aqa_binary_op op; /* what to compute */
} binary_ctx;

/* The arithmetic ops for a floating type T with pow function POW. */
#define BINARY_FLOAT_BODY(T, POW)                                                     \
    switch (c->op) {                                                                  \
    case AQA_BIN_ADD: BINARY_ROW(T, T, a + b, SIMD); break;                           \
    case AQA_BIN_SUB: BINARY_ROW(T, T, a - b, SIMD); break;                           \
    case AQA_BIN_MUL: BINARY_ROW(T, T, a * b, SIMD); break;                           \
    case AQA_BIN_DIV: BINARY_ROW(T, T, a / b, SIMD); break;                           \
    case AQA_BIN_POW: BINARY_ROW(T, T, POW(a, b), NOSIMD); break;                     \
    case AQA_BIN_MAX: BINARY_ROW(T, T, MAX_EXPR(a, b), SIMD); break;                  \
    case AQA_BIN_MIN: BINARY_ROW(T, T, MIN_EXPR(a, b), SIMD); break;                  \
    default: break;                                                                   \
    }

/* ---- the float32 row functions, for each instruction set --------------------------------------- */

#define EW_CAT2(a, b) a##b
#define EW_CAT(a, b) EW_CAT2(a, b)
#define EW(name) EW_CAT(name, EW_SUFFIX)
#define EW_SUFFIX _base
#include "tensor/cpu_elementwise_f32.h"
#undef EW_SUFFIX
#if EW_HAVE_AVX2
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define EW_SUFFIX _avx2
#include "tensor/cpu_elementwise_f32.h"
#undef EW_SUFFIX
#pragma GCC pop_options
#endif

/* AVX2+FMA present and allowed (tensor/cpu_isa.c). */
static bool cpu_has_avx2(void) {
#if EW_HAVE_AVX2
    return aqa__cpu_isa() >= AQA_ISA_AVX2;
#else
    return false;
#endif
}
static aqa_iter_inner_fn unary_f32(void) {
#if EW_HAVE_AVX2
    if (cpu_has_avx2()) return unary_f32_avx2;
#endif
    return unary_f32_base;
}
static aqa_iter_inner_fn binary_f32(void) {
#if EW_HAVE_AVX2
    if (cpu_has_avx2()) return binary_f32_avx2;
#endif
    return binary_f32_base;
}


static void unary_f64(void *vctx, char **ptrs, int64_t n, const int64_t *strides) {
    const unary_ctx *c = vctx;
    char *po = ptrs[0], *px = ptrs[1];
    int64_t so = strides[0], sx = strides[1];
    double p0 = c->p0, p1 = c->p1;
    switch (c->op) {
    case AQA_UN_NEG: UNARY_ROW(double, double, -x, SIMD); break;
    case AQA_UN_EXP: UNARY_ROW(double, double, exp(x), NOSIMD); break;
    case AQA_UN_LOG: UNARY_ROW(double, double, log(x), NOSIMD); break;
    case AQA_UN_SQRT: UNARY_ROW(double, double, sqrt(x), NOSIMD); break;
    case AQA_UN_RSQRT: UNARY_ROW(double, double, 1.0 / sqrt(x), NOSIMD); break;
    case AQA_UN_ABS: UNARY_ROW(double, double, fabs(x), SIMD); break;
    case AQA_UN_TANH: UNARY_ROW(double, double, tanh(x), NOSIMD); break;
    case AQA_UN_SIGMOID: UNARY_ROW(double, double, sigmoid_f64(x), NOSIMD); break;
    case AQA_UN_RELU: UNARY_ROW(double, double, x > 0 ? x : (x != x ? x : 0.0), SIMD); break;
    case AQA_UN_GELU: UNARY_ROW(double, double, gelu_f64(x), NOSIMD); break;
    case AQA_UN_GELU_TANH: UNARY_ROW(double, double, gelu_tanh_f64(x), NOSIMD); break;
    case AQA_UN_QUICK_GELU: UNARY_ROW(double, double, quick_gelu_f64(x), NOSIMD); break;
    case AQA_UN_LOG1P: UNARY_ROW(double, double, log1p(x), NOSIMD); break;
    case AQA_UN_SOFTPLUS: UNARY_ROW(double, double, softplus_f64(x), NOSIMD); break;
    case AQA_UN_SQUARE: UNARY_ROW(double, double, x * x, SIMD); break;
    case AQA_UN_SIGN: UNARY_ROW(double, double, sign_f64(x), SIMD); break;
    case AQA_UN_CLAMP:
        UNARY_ROW(double, double, (x < p0 ? p0 : x) > p1 ? p1 : (x < p0 ? p0 : x), SIMD);
        break;
    case AQA_UN_ADD_SCALAR: UNARY_ROW(double, double, x + p0, SIMD); break;
    case AQA_UN_MUL_SCALAR: UNARY_ROW(double, double, x * p0, SIMD); break;
    case AQA_UN_RSUB_SCALAR: UNARY_ROW(double, double, p0 - x, SIMD); break;
    case AQA_UN_POW_SCALAR: UNARY_ROW(double, double, pow_scalar_f64(x, p0), NOSIMD); break;
    case AQA_UN_GELU_GRAD: UNARY_ROW(double, double, gelu_grad_f64(x), NOSIMD); break;
    case AQA_UN_GELU_TANH_GRAD: UNARY_ROW(double, double, gelu_tanh_grad_f64(x), NOSIMD); break;
    case AQA_UN_QUICK_GELU_GRAD: UNARY_ROW(double, double, quick_gelu_grad_f64(x), NOSIMD); break;
    default: break;
    }
}

/* int64: the ops that keep integers integral (the front-end promotes the others to float).
 * Scalars arrive as doubles holding integral values. */
static void unary_i64(void *vctx, char **ptrs, int64_t n, const int64_t *strides) {
    const unary_ctx *c = vctx;
    char *po = ptrs[0], *px = ptrs[1];
    int64_t so = strides[0], sx = strides[1];
    switch (c->op) {
    case AQA_UN_NEG: UNARY_ROW(int64_t, int64_t, (int64_t)(0u - (uint64_t)x), SIMD); break;
    case AQA_UN_ABS: UNARY_ROW(int64_t, int64_t, x < 0 ? (int64_t)(0u - (uint64_t)x) : x, SIMD); break;
    case AQA_UN_RELU: UNARY_ROW(int64_t, int64_t, x > 0 ? x : 0, SIMD); break;
    case AQA_UN_SQUARE: UNARY_ROW(int64_t, int64_t, (int64_t)((uint64_t)x * (uint64_t)x), SIMD); break;
    case AQA_UN_SIGN: UNARY_ROW(int64_t, int64_t, (int64_t)((x > 0) - (x < 0)), SIMD); break;
    case AQA_UN_CLAMP: {
        /* bounds may be infinite: compare in double, convert only finite bounds */
        double lo = c->p0, hi = c->p1;
        int64_t loi = isfinite(lo) ? (int64_t)lo : INT64_MIN, hii = isfinite(hi) ? (int64_t)hi : INT64_MAX;
        if (lo > 0 && !isfinite(lo)) loi = INT64_MAX;
        if (hi < 0 && !isfinite(hi)) hii = INT64_MIN;
        UNARY_ROW(int64_t, int64_t, (x < loi ? loi : x) > hii ? hii : (x < loi ? loi : x), SIMD);
        break;
    }
    case AQA_UN_ADD_SCALAR: {
        int64_t s = (int64_t)c->p0;
        UNARY_ROW(int64_t, int64_t, (int64_t)((uint64_t)x + (uint64_t)s), SIMD);
        break;
    }
    case AQA_UN_MUL_SCALAR: {
        int64_t s = (int64_t)c->p0;
        UNARY_ROW(int64_t, int64_t, (int64_t)((uint64_t)x * (uint64_t)s), SIMD);
        break;
    }
    case AQA_UN_RSUB_SCALAR: {
        int64_t s = (int64_t)c->p0;
        UNARY_ROW(int64_t, int64_t, (int64_t)((uint64_t)s - (uint64_t)x), SIMD);
        break;
    }
    case AQA_UN_POW_SCALAR: {
        int64_t e = (int64_t)c->p0;
        UNARY_ROW(int64_t, int64_t, pow_i64(x, e), NOSIMD);
        break;
    }
    default: break;
    }
}

/* logical_not: out bool, x of any dtype (nonzero is true; NaN is true as in torch). */
static void unary_not(void *vctx, char **ptrs, int64_t n, const int64_t *strides) {
    aqa_dtype dt = *(const aqa_dtype *)vctx;
    char *po = ptrs[0], *px = ptrs[1];
    int64_t so = strides[0], sx = strides[1];
    switch (dt) {
    case AQA_F32: UNARY_ROW(bool, float, !(x != 0), SIMD); break;
    case AQA_F64: UNARY_ROW(bool, double, !(x != 0), SIMD); break;
    case AQA_I64: UNARY_ROW(bool, int64_t, x == 0, SIMD); break;
    case AQA_BOOL: UNARY_ROW(bool, uint8_t, x == 0, SIMD); break;
    }
}

static bool unary_i64_supported(aqa_unary_op op) {
    switch (op) {
    case AQA_UN_NEG: case AQA_UN_ABS: case AQA_UN_RELU: case AQA_UN_SQUARE: case AQA_UN_SIGN:
    case AQA_UN_CLAMP: case AQA_UN_ADD_SCALAR: case AQA_UN_MUL_SCALAR: case AQA_UN_RSUB_SCALAR:
    case AQA_UN_POW_SCALAR:
        return true;
    default:
        return false;
    }
}

aqa_status aqa__cpu_unary(aqa_unary_op op, aqa_tensor *out, const aqa_tensor *x, double p0, double p1) {
    const aqa_tensor *ops[2] = {out, x};
    if ((int)op < 0 || op >= AQA_UN_COUNT)
        return aqa_fail(AQA_EINVAL, "cpu unary: unknown op %d", (int)op);
    if (op == AQA_UN_LOGICAL_NOT) {
        if (out->dtype != AQA_BOOL)
            return aqa_fail(AQA_EINVAL, "cpu unary: logical_not writes bool, got %s",
                            aqa_dtype_name(out->dtype));
        aqa_dtype dt = x->dtype;
        run(2, ops, unary_not, &dt);
        return AQA_OK;
    }
    if (out->dtype != x->dtype)
        return aqa_fail(AQA_EINVAL, "cpu unary: op %d: output %s and input %s differ", (int)op,
                        aqa_dtype_name(out->dtype), aqa_dtype_name(x->dtype));
    unary_ctx c = {op, p0, p1};
    switch (x->dtype) {
    case AQA_F32: run(2, ops, unary_f32(), &c); return AQA_OK;
    case AQA_F64: run(2, ops, unary_f64, &c); return AQA_OK;
    case AQA_I64:
        if (!unary_i64_supported(op)) break;
        run(2, ops, unary_i64, &c);
        return AQA_OK;
    default: break;
    }
    return aqa_fail(AQA_EUNSUPPORTED, "cpu unary: op %d not available for %s", (int)op,
                    aqa_dtype_name(x->dtype));
}

/* ---- binary ---------------------------------------------------------------------------------- */

static void binary_f64(void *vctx, char **ptrs, int64_t n, const int64_t *strides) {
    const binary_ctx *c = vctx;
    char *po = ptrs[0], *pa = ptrs[1], *pb = ptrs[2];
    int64_t so = strides[0], sa = strides[1], sb = strides[2];
    BINARY_FLOAT_BODY(double, pow)
}
static void binary_i64(void *vctx, char **ptrs, int64_t n, const int64_t *strides) {
    const binary_ctx *c = vctx;
    char *po = ptrs[0], *pa = ptrs[1], *pb = ptrs[2];
    int64_t so = strides[0], sa = strides[1], sb = strides[2];
    /* wrap-around arithmetic through uint64_t, like torch's int64 (and no signed-overflow UB) */
    switch (c->op) {
    case AQA_BIN_ADD: BINARY_ROW(int64_t, int64_t, (int64_t)((uint64_t)a + (uint64_t)b), SIMD); break;
    case AQA_BIN_SUB: BINARY_ROW(int64_t, int64_t, (int64_t)((uint64_t)a - (uint64_t)b), SIMD); break;
    case AQA_BIN_MUL: BINARY_ROW(int64_t, int64_t, (int64_t)((uint64_t)a * (uint64_t)b), SIMD); break;
    case AQA_BIN_POW: BINARY_ROW(int64_t, int64_t, pow_i64(a, b), NOSIMD); break;
    case AQA_BIN_MAX: BINARY_ROW(int64_t, int64_t, a > b ? a : b, SIMD); break;
    case AQA_BIN_MIN: BINARY_ROW(int64_t, int64_t, a < b ? a : b, SIMD); break;
    default: break;
    }
}

/* Comparisons and logical ops: bool out, inputs of type T. */
#define BINARY_BOOL_BODY(T)                                                           \
    switch (c->op) {                                                                  \
    case AQA_BIN_EQ: BINARY_ROW(bool, T, a == b, SIMD); break;                        \
    case AQA_BIN_NE: BINARY_ROW(bool, T, a != b, SIMD); break;                        \
    case AQA_BIN_LT: BINARY_ROW(bool, T, a < b, SIMD); break;                         \
    case AQA_BIN_LE: BINARY_ROW(bool, T, a <= b, SIMD); break;                        \
    case AQA_BIN_GT: BINARY_ROW(bool, T, a > b, SIMD); break;                         \
    case AQA_BIN_GE: BINARY_ROW(bool, T, a >= b, SIMD); break;                        \
    case AQA_BIN_AND: BINARY_ROW(bool, T, (a != 0) & (b != 0), SIMD); break;          \
    case AQA_BIN_OR: BINARY_ROW(bool, T, (a != 0) | (b != 0), SIMD); break;           \
    default: break;                                                                   \
    }

static void compare_f32(void *vctx, char **ptrs, int64_t n, const int64_t *strides) {
    const binary_ctx *c = vctx;
    char *po = ptrs[0], *pa = ptrs[1], *pb = ptrs[2];
    int64_t so = strides[0], sa = strides[1], sb = strides[2];
    BINARY_BOOL_BODY(float)
}
static void compare_f64(void *vctx, char **ptrs, int64_t n, const int64_t *strides) {
    const binary_ctx *c = vctx;
    char *po = ptrs[0], *pa = ptrs[1], *pb = ptrs[2];
    int64_t so = strides[0], sa = strides[1], sb = strides[2];
    BINARY_BOOL_BODY(double)
}
static void compare_i64(void *vctx, char **ptrs, int64_t n, const int64_t *strides) {
    const binary_ctx *c = vctx;
    char *po = ptrs[0], *pa = ptrs[1], *pb = ptrs[2];
    int64_t so = strides[0], sa = strides[1], sb = strides[2];
    BINARY_BOOL_BODY(int64_t)
}
static void compare_bool(void *vctx, char **ptrs, int64_t n, const int64_t *strides) {
    const binary_ctx *c = vctx;
    char *po = ptrs[0], *pa = ptrs[1], *pb = ptrs[2];
    int64_t so = strides[0], sa = strides[1], sb = strides[2];
    BINARY_BOOL_BODY(uint8_t)
}

aqa_status aqa__cpu_binary(aqa_binary_op op, aqa_tensor *out, const aqa_tensor *a, const aqa_tensor *b) {
    const aqa_tensor *ops[3] = {out, a, b};
    binary_ctx c = {op};
    if ((int)op < 0 || op >= AQA_BIN_COUNT)
        return aqa_fail(AQA_EINVAL, "cpu binary: unknown op %d", (int)op);
    if (a->dtype != b->dtype)
        return aqa_fail(AQA_EINVAL, "cpu binary: op %d: operands %s and %s differ", (int)op,
                        aqa_dtype_name(a->dtype), aqa_dtype_name(b->dtype));
    if (op >= AQA_BIN_EQ) {
        if (out->dtype != AQA_BOOL)
            return aqa_fail(AQA_EINVAL, "cpu binary: comparison %d writes bool, got %s", (int)op,
                            aqa_dtype_name(out->dtype));
        aqa_iter_inner_fn fn = a->dtype == AQA_F32   ? compare_f32
                               : a->dtype == AQA_F64 ? compare_f64
                               : a->dtype == AQA_I64 ? compare_i64
                                                     : compare_bool;
        run(3, ops, fn, &c);
        return AQA_OK;
    }
    if (out->dtype != a->dtype)
        return aqa_fail(AQA_EINVAL, "cpu binary: op %d: output %s and inputs %s differ", (int)op,
                        aqa_dtype_name(out->dtype), aqa_dtype_name(a->dtype));
    switch (a->dtype) {
    case AQA_F32: run(3, ops, binary_f32(), &c); return AQA_OK;
    case AQA_F64: run(3, ops, binary_f64, &c); return AQA_OK;
    case AQA_I64:
        if (op == AQA_BIN_DIV) break; /* true division is done in float by the front-end */
        run(3, ops, binary_i64, &c);
        return AQA_OK;
    default: break;
    }
    return aqa_fail(AQA_EUNSUPPORTED, "cpu binary: op %d not available for %s", (int)op,
                    aqa_dtype_name(a->dtype));
}

/* ---- where ------------------------------------------------------------------------------------ */

/* out = cond ? a : b, moving elements as same-sized integers (the dtype does not matter). */
#define WHERE_ROW(T)                                                                  \
    do {                                                                              \
        if (so == (int64_t)sizeof(T) && sc == 1 && sa == (int64_t)sizeof(T) &&        \
            sb == (int64_t)sizeof(T)) {                                               \
            T *o_ = (T *)po;                                                          \
            const uint8_t *c_ = (const uint8_t *)pc;                                  \
            const T *a_ = (const T *)pa, *b_ = (const T *)pb;                         \
            _Pragma(SIMD) for (int64_t i = 0; i < n; i++) o_[i] = c_[i] ? a_[i] : b_[i]; \
        } else {                                                                      \
            for (int64_t i = 0; i < n; i++)                                           \
                *(T *)(po + i * so) = *(const uint8_t *)(pc + i * sc)                 \
                                          ? *(const T *)(pa + i * sa)                 \
                                          : *(const T *)(pb + i * sb);                \
        }                                                                             \
    } while (0)

static void where_inner(void *vctx, char **ptrs, int64_t n, const int64_t *strides) {
    size_t es = *(const size_t *)vctx;
    char *po = ptrs[0], *pc = ptrs[1], *pa = ptrs[2], *pb = ptrs[3];
    int64_t so = strides[0], sc = strides[1], sa = strides[2], sb = strides[3];
    if (es == 8) WHERE_ROW(uint64_t);
    else if (es == 4) WHERE_ROW(uint32_t);
    else WHERE_ROW(uint8_t);
}

aqa_status aqa__cpu_where(aqa_tensor *out, const aqa_tensor *cond, const aqa_tensor *a, const aqa_tensor *b) {
    if (cond->dtype != AQA_BOOL)
        return aqa_fail(AQA_EINVAL, "cpu where: condition must be bool, got %s", aqa_dtype_name(cond->dtype));
    if (a->dtype != out->dtype || b->dtype != out->dtype)
        return aqa_fail(AQA_EINVAL, "cpu where: dtypes %s, %s -> %s differ", aqa_dtype_name(a->dtype),
                        aqa_dtype_name(b->dtype), aqa_dtype_name(out->dtype));
    const aqa_tensor *ops[4] = {out, cond, a, b};
    size_t es = aqa_dtype_size(out->dtype);
    run(4, ops, where_inner, &es);
    return AQA_OK;
}

/* ---- axpy ------------------------------------------------------------------------------------- */

typedef struct axpy_ctx {
    aqa_dtype dtype; /* of dst and src */
    double alpha;    /* scale of src */
} axpy_ctx;

/* dst += alpha * src; alpha == 1 (gradient accumulation) skips the multiply. */
static void axpy_inner(void *vctx, char **ptrs, int64_t n, const int64_t *strides) {
    const axpy_ctx *c = vctx;
    char *po = ptrs[0], *px = ptrs[1];
    int64_t so = strides[0], sx = strides[1];
    switch (c->dtype) {
    case AQA_F32: {
        float al = (float)c->alpha;
        if (c->alpha == 1.0) {
            if (so == 4 && sx == 4) {
                float *o_ = (float *)po;
                const float *x_ = (const float *)px;
                _Pragma(SIMD) for (int64_t i = 0; i < n; i++) o_[i] += x_[i];
            } else {
                for (int64_t i = 0; i < n; i++) *(float *)(po + i * so) += *(const float *)(px + i * sx);
            }
        } else {
            if (so == 4 && sx == 4) {
                float *o_ = (float *)po;
                const float *x_ = (const float *)px;
                _Pragma(SIMD) for (int64_t i = 0; i < n; i++) o_[i] += al * x_[i];
            } else {
                for (int64_t i = 0; i < n; i++)
                    *(float *)(po + i * so) += al * *(const float *)(px + i * sx);
            }
        }
        break;
    }
    case AQA_F64: {
        double al = c->alpha;
        if (so == 8 && sx == 8) {
            double *o_ = (double *)po;
            const double *x_ = (const double *)px;
            _Pragma(SIMD) for (int64_t i = 0; i < n; i++) o_[i] += al * x_[i];
        } else {
            for (int64_t i = 0; i < n; i++) *(double *)(po + i * so) += al * *(const double *)(px + i * sx);
        }
        break;
    }
    case AQA_I64: {
        int64_t al = (int64_t)c->alpha;
        for (int64_t i = 0; i < n; i++) {
            int64_t *o = (int64_t *)(po + i * so);
            *o = (int64_t)((uint64_t)*o + (uint64_t)al * (uint64_t) * (const int64_t *)(px + i * sx));
        }
        break;
    }
    default: break;
    }
}

aqa_status aqa__cpu_axpy(aqa_tensor *dst, const aqa_tensor *src, double alpha) {
    if (dst->dtype != src->dtype)
        return aqa_fail(AQA_EINVAL, "cpu axpy: dtypes %s and %s differ", aqa_dtype_name(dst->dtype),
                        aqa_dtype_name(src->dtype));
    if (dst->dtype == AQA_BOOL)
        return aqa_fail(AQA_EUNSUPPORTED, "cpu axpy: not available for bool");
    const aqa_tensor *ops[2] = {dst, src};
    axpy_ctx c = {dst->dtype, alpha};
    run(2, ops, axpy_inner, &c);
    return AQA_OK;
}
