// copy.cu: dst <- src with dtype conversion, for a source type S (this program) and every
// destination type (kernels copy_f32_*, copy_f64_*, copy_i64_*, copy_b8_*).  Conversions follow
// tensor/cpu_copy.c: to bool is (v != 0), the others are C casts.
template <typename D>
__device__ __forceinline__ D conv(S v) { return (D)v; }
template <>
__device__ __forceinline__ u8 conv<u8>(S v) { return v != S(0) ? 1 : 0; }
template <typename D, int ND>
__device__ __forceinline__ void copy_body(D *dst, const S *src, i64 n, Geo g) {
    ew_run<ND, 2>(g, n, [&](const i64 *o) { dst[o[0]] = conv<D>(src[o[1]]); });
}
template <int ND> __device__ __forceinline__ void copy_f32_body(float *d, const S *s, i64 n, Geo g) { copy_body<float, ND>(d, s, n, g); }
template <int ND> __device__ __forceinline__ void copy_f64_body(double *d, const S *s, i64 n, Geo g) { copy_body<double, ND>(d, s, n, g); }
template <int ND> __device__ __forceinline__ void copy_i64_body(i64 *d, const S *s, i64 n, Geo g) { copy_body<i64, ND>(d, s, n, g); }
template <int ND> __device__ __forceinline__ void copy_b8_body(u8 *d, const S *s, i64 n, Geo g) { copy_body<u8, ND>(d, s, n, g); }
#define CP_ARGS() d, s, n, g
#define CP_F32() float *d, const S *s, i64 n, Geo g
#define CP_F64() double *d, const S *s, i64 n, Geo g
#define CP_I64() i64 *d, const S *s, i64 n, Geo g
#define CP_B8() u8 *d, const S *s, i64 n, Geo g
INST_ALL(copy_f32, copy_f32_body, CP_F32, CP_ARGS)
INST_ALL(copy_f64, copy_f64_body, CP_F64, CP_ARGS)
INST_ALL(copy_i64, copy_i64_body, CP_I64, CP_ARGS)
INST_ALL(copy_b8, copy_b8_body, CP_B8, CP_ARGS)
