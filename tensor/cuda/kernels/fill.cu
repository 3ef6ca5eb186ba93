// fill.cu: every element of a (strided) tensor set to one value, per dtype (fill_f32_*,
// fill_f64_*, fill_i64_*, fill_b8_*); the value arrives as a double and converts as on the CPU.
template <typename D, int ND>
__device__ __forceinline__ void fill_body(D *dst, i64 n, D v, Geo g) {
    ew_run<ND, 1>(g, n, [&](const i64 *o) { dst[o[0]] = v; });
}
template <int ND> __device__ __forceinline__ void fill_f32_body(float *d, i64 n, double v, Geo g) { fill_body<float, ND>(d, n, (float)v, g); }
template <int ND> __device__ __forceinline__ void fill_f64_body(double *d, i64 n, double v, Geo g) { fill_body<double, ND>(d, n, v, g); }
template <int ND> __device__ __forceinline__ void fill_i64_body(i64 *d, i64 n, double v, Geo g) { fill_body<i64, ND>(d, n, (i64)v, g); }
template <int ND> __device__ __forceinline__ void fill_b8_body(u8 *d, i64 n, double v, Geo g) { fill_body<u8, ND>(d, n, (u8)(v != 0.0), g); }
#define FL_ARGS() d, n, v, g
#define FL_F32() float *d, i64 n, double v, Geo g
#define FL_F64() double *d, i64 n, double v, Geo g
#define FL_I64() i64 *d, i64 n, double v, Geo g
#define FL_B8() u8 *d, i64 n, double v, Geo g
INST_ALL(fill_f32, fill_f32_body, FL_F32, FL_ARGS)
INST_ALL(fill_f64, fill_f64_body, FL_F64, FL_ARGS)
INST_ALL(fill_i64, fill_i64_body, FL_I64, FL_ARGS)
INST_ALL(fill_b8, fill_b8_body, FL_B8, FL_ARGS)
