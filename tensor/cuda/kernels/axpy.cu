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
