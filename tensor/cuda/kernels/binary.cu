// binary.cu: out = a (op) b for the arithmetic ops (T float/double/i64) and the comparisons and
// logical ops into bool (every T).  Formulas follow tensor/cpu_elementwise.c.
#if IS_FLOAT
__device__ __forceinline__ T bin_op(int op, T a, T b) {
    switch (op) {
    case BIN_ADD: return a + b;
    case BIN_SUB: return a - b;
    case BIN_MUL: return a * b;
    case BIN_DIV: return a / b;
    case BIN_POW: return m_pow(a, b);
    case BIN_MAX: return a != a ? a : (a > b ? a : b); // NaN from either side propagates
    case BIN_MIN: return a != a ? a : (a < b ? a : b);
    }
    return a;
}
#define HAVE_ARITH 1
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
__device__ __forceinline__ i64 bin_op(int op, i64 a, i64 b) {
    switch (op) {
    case BIN_ADD: return (i64)((u64)a + (u64)b);
    case BIN_SUB: return (i64)((u64)a - (u64)b);
    case BIN_MUL: return (i64)((u64)a * (u64)b);
    case BIN_POW: return pow_i64(a, b);
    case BIN_MAX: return a > b ? a : b;
    case BIN_MIN: return a < b ? a : b;
    }
    return a;
}
#define HAVE_ARITH 1
#endif

#ifdef HAVE_ARITH
template <int ND>
__device__ __forceinline__ void binary_body(T *out, const T *a, const T *b, i64 n, int op, Geo g) {
    ew_run<ND, 3>(g, n, [&](const i64 *o) { out[o[0]] = bin_op(op, a[o[1]], b[o[2]]); });
}
#define BIN_PARAMS() T *out, const T *a, const T *b, i64 n, int op, Geo g
#define BIN_ARGS() out, a, b, n, op, g
INST_ALL(binary, binary_body, BIN_PARAMS, BIN_ARGS)
#endif

__device__ __forceinline__ u8 cmp_op(int op, T a, T b) {
    switch (op) {
    case BIN_EQ: return a == b;
    case BIN_NE: return a != b;
    case BIN_LT: return a < b;
    case BIN_LE: return a <= b;
    case BIN_GT: return a > b;
    case BIN_GE: return a >= b;
    case BIN_AND: return (a != T(0)) & (b != T(0));
    case BIN_OR: return (a != T(0)) | (b != T(0));
    }
    return 0;
}
template <int ND>
__device__ __forceinline__ void compare_body(u8 *out, const T *a, const T *b, i64 n, int op, Geo g) {
    ew_run<ND, 3>(g, n, [&](const i64 *o) { out[o[0]] = cmp_op(op, a[o[1]], b[o[2]]); });
}
#define CMP_PARAMS() u8 *out, const T *a, const T *b, i64 n, int op, Geo g
#define CMP_ARGS() out, a, b, n, op, g
INST_ALL(compare, compare_body, CMP_PARAMS, CMP_ARGS)

#if IS_F32
// 16-byte vector path for float32 when all three operands are contiguous and 16-byte aligned.
extern "C" __global__ void __launch_bounds__(256) binary_v4(float *out, const float *a, const float *b, i64 n, int op,
                                                            Geo g) {
    i64 n4 = n / 4, step = (i64)gridDim.x * blockDim.x, t = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    const float4 *a4 = (const float4 *)a, *b4 = (const float4 *)b;
    float4 *o4 = (float4 *)out;
    for (i64 j = t; j < n4; j += step) {
        float4 u = a4[j], v = b4[j], r;
        r.x = bin_op(op, u.x, v.x);
        r.y = bin_op(op, u.y, v.y);
        r.z = bin_op(op, u.z, v.z);
        r.w = bin_op(op, u.w, v.w);
        o4[j] = r;
    }
    for (i64 i = n4 * 4 + t; i < n; i += step) out[i] = bin_op(op, a[i], b[i]);
}
#endif
