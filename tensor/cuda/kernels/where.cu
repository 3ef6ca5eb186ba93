// where.cu: out = cond ? a : b, moving elements as same-sized unsigned integers (T = u8, u32,
// u64 by element size; the dtype does not matter).  cond is bool (one byte).
template <int ND>
__device__ __forceinline__ void where_body(T *out, const u8 *c, const T *a, const T *b, i64 n, Geo g) {
    ew_run<ND, 4>(g, n, [&](const i64 *o) { out[o[0]] = c[o[1]] ? a[o[2]] : b[o[3]]; });
}
#define WH_PARAMS() T *out, const u8 *c, const T *a, const T *b, i64 n, Geo g
#define WH_ARGS() out, c, a, b, n, g
INST_ALL(where, where_body, WH_PARAMS, WH_ARGS)
