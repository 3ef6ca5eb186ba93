// softmax.cu: softmax / log_softmax along one dim, forward and backward, for T float/double.
//   softmax_*_w<V>:   rows of contiguous elements (the last dim) up to 32 V long: a warp per row,
//                     each lane holding V of its elements in registers, so x is read once;
//   softmax_*_b<V>:   the same with the block of 256 per row, rows up to 256 V (V = 8, 16, 32);
//   softmax_pre_*<V>: forward of attention's fused op (nn/attention.c): x * scale + mask (third
//                     operand of the geometry, may be NULL), -inf above the diagonal when causal
//                     (query = row % L), then softmax, in the same register-cached passes;
//   softmax_*_row<G>: longer contiguous rows: G lanes (256) per row, three coalesced passes
//                     (max, sum of exponentials, write);
//   all combine lanes by fixed butterflies (deterministic);
//   softmax_*_col:    one thread per row walking a strided dim (neighbouring threads read
//                     neighbouring rows, so the reads still coalesce).
// Backward: grad_x = y (g - <g, y>) for softmax, g - exp(y) sum(g) for log_softmax.
struct SGeo {
    int nd;            // dims other than the softmax dim
    i64 size[MAXD];    // their sizes
    i64 st[3][MAXD];   // strides of out, in1, in2 along them
    i64 dst[3];        // strides along the softmax dim
    i64 n, rows;       // softmax length, number of rows
};

__device__ __forceinline__ void row_offsets(const SGeo &g, i64 r, i64 *off) {
    off[0] = off[1] = off[2] = 0;
    for (int d = g.nd - 1; d >= 0; d--) {
        i64 s = g.size[d];
        i64 q = r / s, c = r - q * s;
        r = q;
        off[0] += c * g.st[0][d];
        off[1] += c * g.st[1][d];
        off[2] += c * g.st[2][d];
    }
}


#if IS_F32
#define NEG_INF (-INF_F)
#define NAN_T __int_as_float(0x7fc00000)
#else
#define NEG_INF (-INF_D)
#define NAN_T __longlong_as_double(0x7ff8000000000000ll)
#endif

template <int G>
__device__ __forceinline__ void softmax_fwd_row(T *out, const T *x, SGeo g, int logmode) {
    int lane = threadIdx.x % G, grp = threadIdx.x / G, gpb = blockDim.x / G;
    i64 row = (i64)blockIdx.x * gpb + grp;
    bool active = row < g.rows;
    i64 off[3] = {0, 0, 0};
    if (active) row_offsets(g, row, off);
    const T *xr = x + off[1];
    T *yr = out + off[0];
    i64 sx = g.dst[1], sy = g.dst[0], n = active ? g.n : 0;
    T m = NEG_INF, nan = T(0);
    for (i64 i = lane; i < n; i += G) {
        T v = xr[i * sx];
        if (v != v) nan = T(1);
        m = v > m ? v : m;
    }
    m = group_combine<G>(m, [](T a, T b) { return a > b ? a : b; });
    nan = group_combine<G>(nan, [](T a, T b) { return a > b ? a : b; });
    if (nan != T(0)) m = NAN_T;
    T s = T(0);
    for (i64 i = lane; i < n; i += G) s += m_exp(xr[i * sx] - m);
    s = group_combine<G>(s, [](T a, T b) { return a + b; });
    if (logmode) {
        T l = m_log(s);
        for (i64 i = lane; i < n; i += G) yr[i * sy] = (xr[i * sx] - m) - l;
    } else {
        T inv = T(1) / s;
        for (i64 i = lane; i < n; i += G) yr[i * sy] = m_exp(xr[i * sx] - m) * inv;
    }
}

template <int G>
__device__ __forceinline__ void softmax_bwd_row(T *gx, const T *gy, const T *y, SGeo g, int logmode) {
    int lane = threadIdx.x % G, grp = threadIdx.x / G, gpb = blockDim.x / G;
    i64 row = (i64)blockIdx.x * gpb + grp;
    bool active = row < g.rows;
    i64 off[3] = {0, 0, 0};
    if (active) row_offsets(g, row, off);
    T *gxr = gx + off[0];
    const T *gyr = gy + off[1], *yr = y + off[2];
    i64 s0 = g.dst[0], s1 = g.dst[1], s2 = g.dst[2], n = active ? g.n : 0;
    T s = T(0);
    for (i64 i = lane; i < n; i += G) s += logmode ? gyr[i * s1] : gyr[i * s1] * yr[i * s2];
    s = group_combine<G>(s, [](T a, T b) { return a + b; });
    for (i64 i = lane; i < n; i += G) {
        T gv = gyr[i * s1], yv = yr[i * s2];
        gxr[i * s0] = logmode ? gv - m_exp(yv) * s : yv * (gv - s);
    }
}

extern "C" __global__ void __launch_bounds__(256) softmax_fwd_col(T *out, const T *x, SGeo g, int logmode) {
    i64 row = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (row >= g.rows) return;
    i64 off[3];
    row_offsets(g, row, off);
    const T *xr = x + off[1];
    T *yr = out + off[0];
    i64 sx = g.dst[1], sy = g.dst[0];
    T m = NEG_INF;
    bool nan = false;
    for (i64 i = 0; i < g.n; i++) {
        T v = xr[i * sx];
        nan |= v != v;
        m = v > m ? v : m;
    }
    if (nan) m = NAN_T;
    T s = T(0);
    for (i64 i = 0; i < g.n; i++) s += m_exp(xr[i * sx] - m);
    if (logmode) {
        T l = m_log(s);
        for (i64 i = 0; i < g.n; i++) yr[i * sy] = (xr[i * sx] - m) - l;
    } else {
        T inv = T(1) / s;
        for (i64 i = 0; i < g.n; i++) yr[i * sy] = m_exp(xr[i * sx] - m) * inv;
    }
}

extern "C" __global__ void __launch_bounds__(256) softmax_bwd_col(T *gx, const T *gy, const T *y, SGeo g, int logmode) {
    i64 row = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (row >= g.rows) return;
    i64 off[3];
    row_offsets(g, row, off);
    T *gxr = gx + off[0];
    const T *gyr = gy + off[1], *yr = y + off[2];
    i64 s0 = g.dst[0], s1 = g.dst[1], s2 = g.dst[2];
    T s = T(0);
    for (i64 i = 0; i < g.n; i++) s += logmode ? gyr[i * s1] : gyr[i * s1] * yr[i * s2];
    for (i64 i = 0; i < g.n; i++) {
        T gv = gyr[i * s1], yv = yr[i * s2];
        gxr[i * s0] = logmode ? gv - m_exp(yv) * s : yv * (gv - s);
    }
}

extern "C" __global__ void __launch_bounds__(256) softmax_fwd_row32(T *out, const T *x, SGeo g, int logmode) { softmax_fwd_row<32>(out, x, g, logmode); }
extern "C" __global__ void __launch_bounds__(256) softmax_fwd_row256(T *out, const T *x, SGeo g, int logmode) { softmax_fwd_row<256>(out, x, g, logmode); }
extern "C" __global__ void __launch_bounds__(256) softmax_bwd_row32(T *gx, const T *gy, const T *y, SGeo g, int logmode) { softmax_bwd_row<32>(gx, gy, y, g, logmode); }
extern "C" __global__ void __launch_bounds__(256) softmax_bwd_row256(T *gx, const T *gy, const T *y, SGeo g, int logmode) { softmax_bwd_row<256>(gx, gy, y, g, logmode); }

// ---- register-cached rows: x (and for backward gy, y) read once ----------------------------------

template <int G, int V, bool PRE>
__device__ __forceinline__ void softmax_fwd_reg(T *out, const T *x, SGeo g, int logmode, const T *mask, T scale,
                                                int causal, i64 L) {
    int lane = threadIdx.x % G, grp = threadIdx.x / G, gpb = blockDim.x / G;
    i64 row = (i64)blockIdx.x * gpb + grp;
    bool active = row < g.rows;
    i64 off[3] = {0, 0, 0};
    if (active) row_offsets(g, row, off);
    const T *xr = x + off[1];
    T *yr = out + off[0];
    int n = active ? (int)g.n : 0;
    T v[V];
    T m = NEG_INF, nan = T(0);
    int qi = PRE && causal && active ? (int)(row % L) : 0x7fffffff; // last key a causal row sees
#pragma unroll
    for (int k = 0; k < V; k++) {
        int i = lane + k * G;
        v[k] = i < n ? xr[i] : NEG_INF;
        if (PRE && i < n) {
            v[k] = v[k] * scale;
            if (mask) v[k] = v[k] + mask[off[2] + i * g.dst[2]];
            if (i > qi) v[k] = NEG_INF;
        }
        if (v[k] != v[k]) nan = T(1);
        m = v[k] > m ? v[k] : m;
    }
    m = group_combine<G>(m, [](T a, T b) { return a > b ? a : b; });
    nan = group_combine<G>(nan, [](T a, T b) { return a > b ? a : b; });
    if (nan != T(0)) m = NAN_T;
    T s = T(0);
#pragma unroll
    for (int k = 0; k < V; k++) {
        int i = lane + k * G;
        T e = i < n ? m_exp(v[k] - m) : T(0);
        if (!logmode) v[k] = e;
        s += e;
    }
    s = group_combine<G>(s, [](T a, T b) { return a + b; });
    if (logmode) {
        T l = m_log(s);
#pragma unroll
        for (int k = 0; k < V; k++) {
            int i = lane + k * G;
            if (i < n) yr[i] = (v[k] - m) - l;
        }
    } else {
        T inv = T(1) / s;
#pragma unroll
        for (int k = 0; k < V; k++) {
            int i = lane + k * G;
            if (i < n) yr[i] = v[k] * inv;
        }
    }
}

template <int G, int V>
__device__ __forceinline__ void softmax_bwd_reg(T *gx, const T *gy, const T *y, SGeo g, int logmode) {
    int lane = threadIdx.x % G, grp = threadIdx.x / G, gpb = blockDim.x / G;
    i64 row = (i64)blockIdx.x * gpb + grp;
    bool active = row < g.rows;
    i64 off[3] = {0, 0, 0};
    if (active) row_offsets(g, row, off);
    T *gxr = gx + off[0];
    const T *gyr = gy + off[1], *yr = y + off[2];
    int n = active ? (int)g.n : 0;
    T gv[V], yv[V];
    T s = T(0);
#pragma unroll
    for (int k = 0; k < V; k++) {
        int i = lane + k * G;
        gv[k] = i < n ? gyr[i] : T(0);
        yv[k] = i < n ? yr[i] : T(0);
        s += logmode ? gv[k] : gv[k] * yv[k];
    }
    s = group_combine<G>(s, [](T a, T b) { return a + b; });
#pragma unroll
    for (int k = 0; k < V; k++) {
        int i = lane + k * G;
        if (i < n) gxr[i] = logmode ? gv[k] - m_exp(yv[k]) * s : yv[k] * (gv[k] - s);
    }
}

#define SOFTMAX_REG(SUF, G, V)                                                                                     \
    extern "C" __global__ void __launch_bounds__(256) softmax_fwd_##SUF(T *out, const T *x, SGeo g, int logmode) { \
        softmax_fwd_reg<G, V, false>(out, x, g, logmode, nullptr, T(1), 0, 1);                                     \
    }                                                                                                              \
    extern "C" __global__ void __launch_bounds__(256) softmax_pre_##SUF(T *out, const T *x, SGeo g, const T *mask,  \
                                                                        T scale, int causal, i64 L) {              \
        softmax_fwd_reg<G, V, true>(out, x, g, 0, mask, scale, causal, L);                                          \
    }                                                                                                              \
    extern "C" __global__ void __launch_bounds__(256) softmax_bwd_##SUF(T *gx, const T *gy, const T *y, SGeo g,     \
                                                                        int logmode) {                             \
        softmax_bwd_reg<G, V>(gx, gy, y, g, logmode);                                                              \
    }
SOFTMAX_REG(w1, 32, 1)
SOFTMAX_REG(w2, 32, 2)
SOFTMAX_REG(w4, 32, 4)
SOFTMAX_REG(w8, 32, 8)
SOFTMAX_REG(w16, 32, 16)
SOFTMAX_REG(w32, 32, 32)
SOFTMAX_REG(b8, 256, 8)
SOFTMAX_REG(b16, 256, 16)
SOFTMAX_REG(b32, 256, 32)
