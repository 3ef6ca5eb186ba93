/* cpu_elementwise_f32.h: the float32 row functions of cpu_elementwise.c and the vectorisable
 * approximations they use, included twice by that file: once for the x86-64 baseline and once
 * under `#pragma GCC target("avx2,fma")`, so that every helper is compiled (and inlined) for the
 * same target as the loop that calls it.  EW(name) gives each copy its own names.  No include
 * guard on purpose; not a public header.
 *
 * The polynomial coefficients were fitted for this file (weighted least squares on Chebyshev
 * nodes, then checked in float32 arithmetic: exp <= 2 ulp, tanh <= 2 ulp, erfc <= 3e-7
 * relative). */
#ifndef EW
#error "cpu_elementwise_f32.h is included by cpu_elementwise.c with EW defined"
#endif

/* ---- float32 approximations that vectorise ----------------------------------------------- */

static inline float EW(f32_from_bits)(int32_t b) {
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

/* e^x: x = n ln2 + r with |r| <= ln2/2, e^r by its degree-7 Taylor polynomial (error < 1e-8),
 * 2^n applied in two halves so that results down to the subnormal range and overflow to
 * infinity come out right.  NaN propagates. */
static inline float EW(exp_f32)(float x) {
    /* NaN fails both tests and becomes -104 here (no UB in the int conversion below) */
    float xc = x > -104.0f ? x : -104.0f;
    xc = xc < 89.0f ? xc : 89.0f;
    /* round to nearest integer with the 1.5 * 2^23 trick (no rint call, so it vectorises) */
    float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = xc - n * 0.693145751953125f;   /* ln2 split: high part exact in float */
    r = r - n * 1.42860682030941723e-6f;     /* low part */
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t ni = (int32_t)n;
    int32_t n1 = ni / 2, n2 = ni - n1;
    float s1 = EW(f32_from_bits)((n1 + 127) << 23), s2 = EW(f32_from_bits)((n2 + 127) << 23);
    float y = (p * s1) * s2;
    return x != x ? x : y;
}

/* 1 / (1 + e^-x): no cancellation anywhere; e^-x overflowing to inf gives exactly 0. */
static inline float EW(sigmoid_f32)(float x) { return 1.0f / (1.0f + EW(exp_f32)(-x)); }

/* tanh: odd polynomial for |x| < 0.625, 1 - 2 / (e^2|x| + 1) beyond (no cancellation there). */
static inline float EW(tanh_f32)(float x) {
    float a = x < 0 ? -x : x;
    float s = a * a;
    float p = 0.00214692296908644f;
    p = p * s - 0.00818158339721019f;
    p = p * s + 0.02170223368787697f;
    p = p * s - 0.05394696745445408f;
    p = p * s + 0.13333205987837168f;
    p = p * s - 0.33333330639083036f;
    p = p * s + 0.999999999941603f;
    float small = p * a;
    float large = 1.0f - 2.0f / (EW(exp_f32)(2.0f * a) + 1.0f);
    float t = a < 0.625f ? small : large;
    t = x < 0 ? -t : t;
    return x != x ? x : t;
}

/* e^(-a^2/2) without the error of rounding a^2: a = hi + lo with hi holding 12 significant bits,
 * so -hi^2/2 is exact and the small rest goes through a second exp.  (Rounding a^2 would cost
 * a relative error of about a^2 * 2^-24 in the lower tail of GELU.) */
static inline float EW(exp_neg_half_sq_f32)(float a) {
    int32_t bits;
    memcpy(&bits, &a, sizeof bits);
    float hi = EW(f32_from_bits)(bits & (int32_t)0xfffff000);
    float lo = a - hi;
    return EW(exp_f32)(-0.5f * hi * hi) * EW(exp_f32)(-(hi * lo + 0.5f * lo * lo));
}

/* erfc(a / sqrt2) for a >= 0, given e = e^(-a^2/2): e * t * Q(t) with t = 1 / (1 + z/2),
 * z = a / sqrt2 (Q fitted on all of [0, inf)). */
static inline float EW(erfc_scaled_pos_f32)(float a, float e) {
    float t = 1.0f / (1.0f + 0.5f * (float)SQRT1_2 * a);
    float q = 0.043195433358950167f;
    q = q * t - 0.2347335932951492f;
    q = q * t + 0.49369493281167581f;
    q = q * t - 0.45497398938639277f;
    q = q * t + 0.13217704526449808f;
    q = q * t - 0.059211358148554785f;
    q = q * t + 0.093462434459322619f;
    q = q * t + 0.17531597581160269f;
    q = q * t + 0.24688457471659736f;
    q = q * t + 0.2820937538083037f;
    q = q * t + 0.28209479518888531f;
    return e * t * q;
}

/* Phi(x), the standard normal CDF: 0.5 erfc(-x/sqrt2), keeping full relative accuracy in the
 * lower tail (where GELU is tiny); e = e^(-x^2/2) is passed in, the derivative reuses it. */
static inline float EW(norm_cdf_f32)(float x, float e) {
    float a = x < 0 ? -x : x;
    float c = EW(erfc_scaled_pos_f32)(a, e);
    return x < 0 ? 0.5f * c : 1.0f - 0.5f * c;
}

static inline float EW(gelu_f32)(float x) {
    float a = x < 0 ? -x : x;
    return x * EW(norm_cdf_f32)(x, EW(exp_neg_half_sq_f32)(a));
}
/* d/dx x Phi(x) = Phi(x) + x phi(x) */
static inline float EW(gelu_grad_f32)(float x) {
    float a = x < 0 ? -x : x;
    float e = EW(exp_neg_half_sq_f32)(a);
    return EW(norm_cdf_f32)(x, e) + x * (float)INV_SQRT_2PI * e;
}
/* s(1 - s) for s = 1 / (1 + e), e = e^-y: as e s^2 for y >= 0, where 1 - s would cancel. */
static inline float EW(sigmoid_slope_f32)(float y, float e, float s) { return y >= 0 ? e * s * s : s * (1.0f - s); }
/* 0.5 x (1 + tanh(u)) == x sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3): the sigmoid form has
 * no cancellation for negative x. */
static inline float EW(gelu_tanh_f32)(float x) {
    float u = (float)SQRT_2_OVER_PI * (x + (float)GELU_TANH_C * x * x * x);
    return x * EW(sigmoid_f32)(2.0f * u);
}
static inline float EW(gelu_tanh_grad_f32)(float x) {
    float u2 = 2.0f * (float)SQRT_2_OVER_PI * (x + (float)GELU_TANH_C * x * x * x);
    float du2 = 2.0f * (float)SQRT_2_OVER_PI * (1.0f + 3.0f * (float)GELU_TANH_C * x * x);
    float e = EW(exp_f32)(-u2), s = 1.0f / (1.0f + e);
    return s + x * EW(sigmoid_slope_f32)(u2, e, s) * du2;
}
static inline float EW(quick_gelu_f32)(float x) { return x * EW(sigmoid_f32)((float)QUICK_GELU_C * x); }
static inline float EW(quick_gelu_grad_f32)(float x) {
    float y = (float)QUICK_GELU_C * x;
    float e = EW(exp_f32)(-y), s = 1.0f / (1.0f + e);
    return s + y * EW(sigmoid_slope_f32)(y, e, s);
}
/* log(1 + e^x) = max(x, 0) + log1p(e^-|x|): finite for any finite x. */
static inline float EW(softplus_f32)(float x) {
    float a = x < 0 ? -x : x;
    return (x > 0 ? x : 0.0f) + log1pf(EW(exp_f32)(-a));
}

/* x^e with torch's special cases for the common exponents (square, sqrt, reciprocal, ...). */
static inline float EW(pow_scalar_f32)(float x, double e) {
    if (e == 2.0) return x * x;
    if (e == 1.0) return x;
    if (e == 3.0) return x * x * x;
    if (e == 0.5) return sqrtf(x);
    if (e == -0.5) return 1.0f / sqrtf(x);
    if (e == -1.0) return 1.0f / x;
    if (e == -2.0) return 1.0f / (x * x);
    return powf(x, (float)e);
}
static inline float EW(sign_f32)(float x) { return (float)((x > 0) - (x < 0)); }

/* ---- row functions ---- */

static void EW(unary_f32)(void *vctx, char **ptrs, int64_t n, const int64_t *strides) {
    const unary_ctx *c = vctx;
    char *po = ptrs[0], *px = ptrs[1];
    int64_t so = strides[0], sx = strides[1];
    float p0 = (float)c->p0, p1 = (float)c->p1;
    switch (c->op) {
    case AQA_UN_NEG: UNARY_ROW(float, float, -x, SIMD); break;
    case AQA_UN_EXP: UNARY_ROW(float, float, EW(exp_f32)(x), SIMD); break;
    case AQA_UN_LOG: UNARY_ROW(float, float, logf(x), NOSIMD); break;
    case AQA_UN_SQRT: UNARY_ROW(float, float, sqrtf(x), SIMD); break;
    case AQA_UN_RSQRT: UNARY_ROW(float, float, 1.0f / sqrtf(x), SIMD); break;
    case AQA_UN_ABS: UNARY_ROW(float, float, fabsf(x), SIMD); break;
    case AQA_UN_TANH: UNARY_ROW(float, float, EW(tanh_f32)(x), SIMD); break;
    case AQA_UN_SIGMOID: UNARY_ROW(float, float, EW(sigmoid_f32)(x), SIMD); break;
    case AQA_UN_RELU: UNARY_ROW(float, float, x > 0 ? x : (x != x ? x : 0.0f), SIMD); break;
    case AQA_UN_GELU: UNARY_ROW(float, float, EW(gelu_f32)(x), SIMD); break;
    case AQA_UN_GELU_TANH: UNARY_ROW(float, float, EW(gelu_tanh_f32)(x), SIMD); break;
    case AQA_UN_QUICK_GELU: UNARY_ROW(float, float, EW(quick_gelu_f32)(x), SIMD); break;
    case AQA_UN_LOG1P: UNARY_ROW(float, float, log1pf(x), NOSIMD); break;
    case AQA_UN_SOFTPLUS: UNARY_ROW(float, float, EW(softplus_f32)(x), NOSIMD); break;
    case AQA_UN_SQUARE: UNARY_ROW(float, float, x * x, SIMD); break;
    case AQA_UN_SIGN: UNARY_ROW(float, float, EW(sign_f32)(x), SIMD); break;
    case AQA_UN_CLAMP: {
        /* compare-and-select keeps NaN (a NaN x fails both tests), as torch.clamp does */
        UNARY_ROW(float, float, (x < p0 ? p0 : x) > p1 ? p1 : (x < p0 ? p0 : x), SIMD);
        break;
    }
    case AQA_UN_ADD_SCALAR: UNARY_ROW(float, float, x + p0, SIMD); break;
    case AQA_UN_MUL_SCALAR: UNARY_ROW(float, float, x * p0, SIMD); break;
    case AQA_UN_RSUB_SCALAR: UNARY_ROW(float, float, p0 - x, SIMD); break;
    case AQA_UN_POW_SCALAR: {
        double e = c->p0;
        if (e == 2.0) UNARY_ROW(float, float, x * x, SIMD);
        else UNARY_ROW(float, float, EW(pow_scalar_f32)(x, e), NOSIMD);
        break;
    }
    case AQA_UN_GELU_GRAD: UNARY_ROW(float, float, EW(gelu_grad_f32)(x), SIMD); break;
    case AQA_UN_GELU_TANH_GRAD: UNARY_ROW(float, float, EW(gelu_tanh_grad_f32)(x), SIMD); break;
    case AQA_UN_QUICK_GELU_GRAD: UNARY_ROW(float, float, EW(quick_gelu_grad_f32)(x), SIMD); break;
    default: break; /* rejected before the loop */
    }
}

static void EW(binary_f32)(void *vctx, char **ptrs, int64_t n, const int64_t *strides) {
    const binary_ctx *c = vctx;
    char *po = ptrs[0], *pa = ptrs[1], *pb = ptrs[2];
    int64_t so = strides[0], sa = strides[1], sb = strides[2];
    BINARY_FLOAT_BODY(float, powf)
}
