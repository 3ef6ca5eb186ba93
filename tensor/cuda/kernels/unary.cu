// unary.cu: out = f(x) for the aqa_unary_op list (T float/double: all ops; T i64: the integral
// ones; every T: logical_not into bool).  The op is a kernel argument (one program per dtype);
// dims are specialised (NAME_c, NAME_nd1..8).  Formulas follow tensor/cpu_elementwise.c.
#if IS_FLOAT
__device__ __forceinline__ T sigm(T x) {
    if (x >= T(0)) return T(1) / (T(1) + m_exp(-x));
    T e = m_exp(x);
    return e / (T(1) + e);
}
// Phi(x) = 0.5 erfc(-x / sqrt 2)
__device__ __forceinline__ T norm_cdf(T x) { return T(0.5) * m_erfc(-x * T(0.70710678118654752440)); }
__device__ __forceinline__ T pow_scalar(T x, double e) {
    if (e == 2.0) return x * x;
    if (e == 1.0) return x;
    if (e == 3.0) return x * x * x;
    if (e == 0.5) return m_sqrt(x);
    if (e == -0.5) return T(1) / m_sqrt(x);
    if (e == -1.0) return T(1) / x;
    if (e == -2.0) return T(1) / (x * x);
    return m_pow(x, (T)e);
}
__device__ __forceinline__ T un_op(int op, T x, T p0, T p1, double e) {
    const T c_inv_sqrt_2pi = T(0.39894228040143267794), c_s2pi = T(0.79788456080286535588);
    const T c_gt = T(0.044715), c_q = T(1.702);
    switch (op) {
    case UN_NEG: return -x;
    case UN_EXP: return m_exp(x);
    case UN_LOG: return m_log(x);
    case UN_SQRT: return m_sqrt(x);
    case UN_RSQRT: return T(1) / m_sqrt(x);
    case UN_ABS: return m_abs(x);
    case UN_TANH: return m_tanh(x);
    case UN_SIGMOID: return sigm(x);
    case UN_RELU: return x > T(0) ? x : (x != x ? x : T(0));
    case UN_GELU: return x * norm_cdf(x);
    case UN_GELU_TANH: {
        T u = c_s2pi * (x + c_gt * x * x * x);
        return x * sigm(T(2) * u);
    }
    case UN_QUICK_GELU: return x * sigm(c_q * x);
    case UN_LOG1P: return m_log1p(x);
    case UN_SOFTPLUS: return (x > T(0) ? x : T(0)) + m_log1p(m_exp(-m_abs(x)));
    case UN_SQUARE: return x * x;
    case UN_SIGN: return (T)((x > T(0)) - (x < T(0)));
    case UN_CLAMP: {
        T lo = x < p0 ? p0 : x;
        return lo > p1 ? p1 : lo;
    }
    case UN_ADD_SCALAR: return x + p0;
    case UN_MUL_SCALAR: return x * p0;
    case UN_POW_SCALAR: return pow_scalar(x, e);
    case UN_RSUB_SCALAR: return p0 - x;
    case UN_GELU_GRAD: return norm_cdf(x) + x * c_inv_sqrt_2pi * m_exp(T(-0.5) * x * x);
    case UN_GELU_TANH_GRAD: {
        T u = c_s2pi * (x + c_gt * x * x * x);
        T du = c_s2pi * (T(1) + T(3) * c_gt * x * x);
        T s = sigm(T(2) * u);
        return s + x * s * (T(1) - s) * T(2) * du;
    }
    case UN_QUICK_GELU_GRAD: {
        T s = sigm(c_q * x);
        return s + c_q * x * s * (T(1) - s);
    }
    }
    return x;
}
template <int ND>
__device__ __forceinline__ void unary_body(T *out, const T *x, i64 n, int op, double p0, double p1, i64 q0,
                                           i64 q1, Geo g) {
    T a = (T)p0, b = (T)p1;
    ew_run<ND, 2>(g, n, [&](const i64 *o) { out[o[0]] = un_op(op, x[o[1]], a, b, p0); });
}
#define HAVE_UNARY 1
#elif IS_I64
__device__ __forceinline__ i64 pow_i64(i64 x, i64 e) {
    if (e < 0) return x == 1 ? 1 : x == -1 ? ((e & 1) ? -1 : 1) : 0;
    u64 r = 1, b = (u64)x;
    while (e) {
        if (e & 1) r *= b;
        b *= b;
        e >>= 1;
    }
    return (i64)r;
}
// q0, q1: integer scalars prepared by the host (clamp bounds with infinities resolved).
__device__ __forceinline__ i64 un_op_i(int op, i64 x, i64 q0, i64 q1) {
    switch (op) {
    case UN_NEG: return (i64)(0ull - (u64)x);
    case UN_ABS: return x < 0 ? (i64)(0ull - (u64)x) : x;
    case UN_RELU: return x > 0 ? x : 0;
    case UN_SQUARE: return (i64)((u64)x * (u64)x);
    case UN_SIGN: return (i64)((x > 0) - (x < 0));
    case UN_CLAMP: {
        i64 lo = x < q0 ? q0 : x;
        return lo > q1 ? q1 : lo;
    }
    case UN_ADD_SCALAR: return (i64)((u64)x + (u64)q0);
    case UN_MUL_SCALAR: return (i64)((u64)x * (u64)q0);
    case UN_RSUB_SCALAR: return (i64)((u64)q0 - (u64)x);
    case UN_POW_SCALAR: return pow_i64(x, q0);
    }
    return x;
}
template <int ND>
__device__ __forceinline__ void unary_body(T *out, const T *x, i64 n, int op, double p0, double p1, i64 q0,
                                           i64 q1, Geo g) {
    ew_run<ND, 2>(g, n, [&](const i64 *o) { out[o[0]] = un_op_i(op, x[o[1]], q0, q1); });
}
#define HAVE_UNARY 1
#endif

#ifdef HAVE_UNARY
#define UN_PARAMS() T *out, const T *x, i64 n, int op, double p0, double p1, i64 q0, i64 q1, Geo g
#define UN_ARGS() out, x, n, op, p0, p1, q0, q1, g
INST_ALL(unary, unary_body, UN_PARAMS, UN_ARGS)
#endif

// logical_not: bool out; NaN counts as true (nonzero), as torch.
template <int ND>
__device__ __forceinline__ void lnot_body(u8 *out, const T *x, i64 n, Geo g) {
    ew_run<ND, 2>(g, n, [&](const i64 *o) { out[o[0]] = !(x[o[1]] != T(0)); });
}
#define NOT_PARAMS() u8 *out, const T *x, i64 n, Geo g
#define NOT_ARGS() out, x, n, g
INST_ALL(lnot, lnot_body, NOT_PARAMS, NOT_ARGS)

#if IS_F32
// 16-byte vector path for float32 when out and x are contiguous and 16-byte aligned: each thread
// moves four elements per load/store (fewer, wider memory transactions); the tail is scalar.
extern "C" __global__ void __launch_bounds__(256) unary_v4(float *out, const float *x, i64 n, int op, double p0,
                                                           double p1, i64 q0, i64 q1, Geo g) {
    float a = (float)p0, b = (float)p1;
    i64 n4 = n / 4, step = (i64)gridDim.x * blockDim.x, t = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    const float4 *x4 = (const float4 *)x;
    float4 *o4 = (float4 *)out;
    for (i64 j = t; j < n4; j += step) {
        float4 v = x4[j];
        v.x = un_op(op, v.x, a, b, p0);
        v.y = un_op(op, v.y, a, b, p0);
        v.z = un_op(op, v.z, a, b, p0);
        v.w = un_op(op, v.w, a, b, p0);
        o4[j] = v;
    }
    for (i64 i = n4 * 4 + t; i < n; i += step) out[i] = un_op(op, x[i], a, b, p0);
}
#endif
