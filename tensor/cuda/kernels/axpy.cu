// axpy.cu: dst += alpha * src (T float/double/i64; integers wrap around like torch).
template <int ND>
__device__ __forceinline__ void axpy_body(T *dst, const T *src, i64 n, double alpha, Geo g) {
#if IS_I64
    u64 al = (u64)(i64)alpha;
    ew_run<ND, 2>(g, n, [&](const i64 *o) { dst[o[0]] = (i64)((u64)dst[o[0]] + al * (u64)src[o[1]]); });
#else
    if (alpha == 1.0) {
        ew_run<ND, 2>(g, n, [&](const i64 *o) { dst[o[0]] += src[o[1]]; });
    } else {
        T al = (T)alpha;
        ew_run<ND, 2>(g, n, [&](const i64 *o) { dst[o[0]] += al * src[o[1]]; });
    }
#endif
}
#define AX_PARAMS() T *dst, const T *src, i64 n, double alpha, Geo g
#define AX_ARGS() dst, src, n, alpha, g
INST_ALL(axpy, axpy_body, AX_PARAMS, AX_ARGS)

#if IS_F32
// 16-byte vector path for float32 when dst and src are contiguous and 16-byte aligned.
extern "C" __global__ void __launch_bounds__(256) axpy_v4(float *dst, const float *src, i64 n, double alpha, Geo g) {
    float al = (float)alpha;
    bool one = alpha == 1.0;
    i64 n4 = n / 4, step = (i64)gridDim.x * blockDim.x, t = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    const float4 *s4 = (const float4 *)src;
    float4 *d4 = (float4 *)dst;
    for (i64 j = t; j < n4; j += step) {
        float4 d = d4[j], s = s4[j];
        if (one) {
            d.x += s.x; d.y += s.y; d.z += s.z; d.w += s.w;
        } else {
            d.x += al * s.x; d.y += al * s.y; d.z += al * s.z; d.w += al * s.w;
        }
        d4[j] = d;
    }
    for (i64 i = n4 * 4 + t; i < n; i += step) dst[i] += one ? src[i] : al * src[i];
}
#endif
