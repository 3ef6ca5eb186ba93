// norm.cu: fused layer norm and batch norm, forward and backward, for T float/double.
// Statistics accumulate in double; every sum is combined by a fixed set of threads in a fixed
// order (butterflies, then partial results in split order), so two runs give identical bits and
// no atomics are used.
//   Layer norm, rows [M, D] (the normalised dims flattened, contiguous):
//     ln_fwd<G>:  G lanes (a warp, or the block of 256 for long rows) per row: mean, then the
//                 variance of the centred values (second pass over the row), then y;
//     ln_fwdr<G, V>: the same with the row held in registers (V elements a lane: rows up to
//                 32 V with a warp, 256 V with the block), x read once;
//     ln_bwd<G>:  gx of each row (the two row sums, then gx); ln_bwdr<G, V> with the row's x and g
//                 in registers (read once);
//     ln_colpart: per-column partial sums of g * xhat and g over a chunk of rows (one thread per
//                 column: neighbouring threads read neighbouring columns);
//     ln_colfin:  combines the chunks of each column in chunk order into gw / gb.
//   Batch norm, x [n, c, s]:
//     bn_stats:   block (channel, split): shifted sums of x (shift = the channel's first value, which
//                 keeps the one-pass variance accurate) over a chunk of the channel;
//     bn_fin:     per channel: mean, var, 1/std (or the running statistics) and y's scale/shift;
//     bn_apply:   y = x * scale + shift;
//     bn_bpart:   block (channel, split): sums of gy and gy * (x - mean);
//     bn_bfin:    per channel: gw, gb and gx's coefficients;
//     bn_bapply:  gx.

// ---- layer norm -----------------------------------------------------------------------------------

template <int G>
__device__ __forceinline__ void ln_fwd(T *y, T *mean, T *rstd, const T *x, const T *w, const T *b, i64 M, i64 D,
                                       double eps) {
    int lane = threadIdx.x % G;
    i64 r = (i64)blockIdx.x * (blockDim.x / G) + threadIdx.x / G;
    bool active = r < M;
    i64 n = active ? D : 0;
    const T *xr = x + (active ? r * D : 0);
    double s = 0;
    for (i64 j = lane; j < n; j += G) s += (double)xr[j];
    s = group_sum<G>(s);
    double mu = s / (double)D;
    double v = 0;
    for (i64 j = lane; j < n; j += G) {
        double d = (double)xr[j] - mu;
        v += d * d;
    }
    v = group_sum<G>(v);
    double rs = 1.0 / sqrt(v / (double)D + eps);
    if (!active) return;
    if (lane == 0) {
        mean[r] = (T)mu;
        rstd[r] = (T)rs;
    }
    T mt = (T)mu, rt = (T)rs;
    T *yr = y + r * D;
    for (i64 j = lane; j < n; j += G) {
        T t = (xr[j] - mt) * rt;
        if (w) t = t * w[j];
        if (b) t = t + b[j];
        yr[j] = t;
    }
}

template <int G, int V>
__device__ __forceinline__ void ln_fwdr(T *y, T *mean, T *rstd, const T *x, const T *w, const T *b, i64 M, i64 D,
                                        double eps) {
    int lane = threadIdx.x % G;
    i64 r = (i64)blockIdx.x * (blockDim.x / G) + threadIdx.x / G;
    bool active = r < M;
    int n = active ? (int)D : 0;
    const T *xr = x + (active ? r * D : 0);
    T v[V];
    double s = 0;
#pragma unroll
    for (int k = 0; k < V; k++) {
        int j = lane + k * G;
        v[k] = j < n ? xr[j] : T(0);
        s += (double)v[k];
    }
    s = group_sum<G>(s);
    double mu = s / (double)D, q = 0;
#pragma unroll
    for (int k = 0; k < V; k++) {
        int j = lane + k * G;
        double d = (double)v[k] - mu;
        if (j < n) q += d * d;
    }
    q = group_sum<G>(q);
    double rs = 1.0 / sqrt(q / (double)D + eps);
    if (!active) return;
    if (lane == 0) {
        mean[r] = (T)mu;
        rstd[r] = (T)rs;
    }
    T mt = (T)mu, rt = (T)rs;
    T *yr = y + r * D;
#pragma unroll
    for (int k = 0; k < V; k++) {
        int j = lane + k * G;
        if (j < n) {
            T t = (v[k] - mt) * rt;
            if (w) t = t * w[j];
            if (b) t = t + b[j];
            yr[j] = t;
        }
    }
}

#define LN_FWDR(SUF, G, V)                                                                                          \
    extern "C" __global__ void __launch_bounds__(256) ln_fwd_##SUF(T *y, T *mean, T *rstd, const T *x, const T *w, \
                                                                   const T *b, i64 M, i64 D, double eps) {          \
        ln_fwdr<G, V>(y, mean, rstd, x, w, b, M, D, eps);                                                           \
    }
LN_FWDR(w1, 32, 1)
LN_FWDR(w2, 32, 2)
LN_FWDR(w4, 32, 4)
LN_FWDR(w8, 32, 8)
LN_FWDR(w16, 32, 16)
LN_FWDR(w32, 32, 32)
LN_FWDR(b8, 256, 8)
LN_FWDR(b16, 256, 16)
LN_FWDR(b32, 256, 32)

// gx = rstd * (g w - mean(g w) - xhat * mean(g w xhat)) per row.
template <int G>
__device__ __forceinline__ void ln_bwd(T *gx, const T *g, const T *x, const T *mean, const T *rstd, const T *w,
                                       i64 M, i64 D) {
    int lane = threadIdx.x % G;
    i64 r = (i64)blockIdx.x * (blockDim.x / G) + threadIdx.x / G;
    bool active = r < M;
    i64 n = active ? D : 0;
    const T *xr = x + (active ? r * D : 0), *gr = g + (active ? r * D : 0);
    double mu = active ? (double)mean[r] : 0.0, rs = active ? (double)rstd[r] : 0.0;
    double a = 0, c = 0;
    for (i64 j = lane; j < n; j += G) {
        double gw = w ? (double)gr[j] * (double)w[j] : (double)gr[j];
        a += gw;
        c += gw * ((double)xr[j] - mu);
    }
    a = group_sum<G>(a);
    c = group_sum<G>(c);
    if (!active) return;
    double ma = a / (double)D, mc = c * rs / (double)D;
    T *gxr = gx + r * D;
    for (i64 j = lane; j < n; j += G) {
        double gw = w ? (double)gr[j] * (double)w[j] : (double)gr[j];
        gxr[j] = (T)(rs * (gw - ma - ((double)xr[j] - mu) * rs * mc));
    }
}

template <int G, int V>
__device__ __forceinline__ void ln_bwdr(T *gx, const T *g, const T *x, const T *mean, const T *rstd, const T *w,
                                        i64 M, i64 D) {
    int lane = threadIdx.x % G;
    i64 r = (i64)blockIdx.x * (blockDim.x / G) + threadIdx.x / G;
    bool active = r < M;
    int n = active ? (int)D : 0;
    const T *xr = x + (active ? r * D : 0), *gr = g + (active ? r * D : 0);
    double mu = active ? (double)mean[r] : 0.0, rs = active ? (double)rstd[r] : 0.0;
    T xv[V], gv[V];
    double a = 0, c = 0;
#pragma unroll
    for (int k = 0; k < V; k++) {
        int j = lane + k * G;
        xv[k] = j < n ? xr[j] : T(0);
        gv[k] = j < n ? gr[j] : T(0);
        double gw = j < n ? (w ? (double)gv[k] * (double)w[j] : (double)gv[k]) : 0.0;
        a += gw;
        c += gw * ((double)xv[k] - mu);
    }
    a = group_sum<G>(a);
    c = group_sum<G>(c);
    if (!active) return;
    double ma = a / (double)D, mc = c * rs / (double)D;
    T *gxr = gx + r * D;
#pragma unroll
    for (int k = 0; k < V; k++) {
        int j = lane + k * G;
        if (j < n) {
            double gw = w ? (double)gv[k] * (double)w[j] : (double)gv[k];
            gxr[j] = (T)(rs * (gw - ma - ((double)xv[k] - mu) * rs * mc));
        }
    }
}

#define LN_BWDR(SUF, G, V)                                                                                        \
    extern "C" __global__ void __launch_bounds__(256) ln_bwd_##SUF(T *gx, const T *g, const T *x, const T *mean,  \
                                                                   const T *rstd, const T *w, i64 M, i64 D) {     \
        ln_bwdr<G, V>(gx, g, x, mean, rstd, w, M, D);                                                             \
    }
LN_BWDR(w1, 32, 1)
LN_BWDR(w2, 32, 2)
LN_BWDR(w4, 32, 4)
LN_BWDR(w8, 32, 8)
LN_BWDR(w16, 32, 16)
LN_BWDR(w32, 32, 32)
LN_BWDR(b8, 256, 8)
LN_BWDR(b16, 256, 16)
LN_BWDR(b32, 256, 32)

extern "C" __global__ void __launch_bounds__(256) ln_fwd32(T *y, T *mean, T *rstd, const T *x, const T *w,
                                                           const T *b, i64 M, i64 D, double eps) {
    ln_fwd<32>(y, mean, rstd, x, w, b, M, D, eps);
}
extern "C" __global__ void __launch_bounds__(256) ln_fwd256(T *y, T *mean, T *rstd, const T *x, const T *w,
                                                            const T *b, i64 M, i64 D, double eps) {
    ln_fwd<256>(y, mean, rstd, x, w, b, M, D, eps);
}
extern "C" __global__ void __launch_bounds__(256) ln_bwd32(T *gx, const T *g, const T *x, const T *mean,
                                                           const T *rstd, const T *w, i64 M, i64 D) {
    ln_bwd<32>(gx, g, x, mean, rstd, w, M, D);
}
extern "C" __global__ void __launch_bounds__(256) ln_bwd256(T *gx, const T *g, const T *x, const T *mean,
                                                            const T *rstd, const T *w, i64 M, i64 D) {
    ln_bwd<256>(gx, g, x, mean, rstd, w, M, D);
}

// Grid (column blocks, chunks): thread column j sums rows [k chunk, (k + 1) chunk) into
// pw[k D + j] (g * xhat) and pb[k D + j] (g); either may be NULL.
extern "C" __global__ void __launch_bounds__(256) ln_colpart(double *pw, double *pb, const T *g, const T *x,
                                                             const T *mean, const T *rstd, i64 M, i64 D,
                                                             i64 chunk) {
    i64 j = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= D) return;
    i64 k = blockIdx.y, r0 = k * chunk, r1 = r0 + chunk < M ? r0 + chunk : M;
    double sw = 0, sb = 0;
    for (i64 r = r0; r < r1; r++) {
        double gv = (double)g[r * D + j];
        sw += gv * ((double)x[r * D + j] - (double)mean[r]) * (double)rstd[r];
        sb += gv;
    }
    if (pw) pw[k * D + j] = sw;
    if (pb) pb[k * D + j] = sb;
}

extern "C" __global__ void __launch_bounds__(256) ln_colfin(T *gw, T *gb, const double *pw, const double *pb,
                                                            i64 D, int nchunk) {
    i64 j = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= D) return;
    double sw = 0, sb = 0;
    for (int k = 0; k < nchunk; k++) {
        if (gw) sw += pw[(i64)k * D + j];
        if (gb) sb += pb[(i64)k * D + j];
    }
    if (gw) gw[j] = (T)sw;
    if (gb) gb[j] = (T)sb;
}

// ---- batch norm -----------------------------------------------------------------------------------

// Offset of element e (0 <= e < n s) of channel ch in x [n, c, s].
__device__ __forceinline__ i64 bn_off(i64 e, i64 ch, i64 c, i64 s, bool small) {
    i64 i, j;
    if (small) {
        u32 q = (u32)e / (u32)s;
        i = q;
        j = (u32)e - q * (u32)s;
    } else {
        i = e / s;
        j = e - i * s;
    }
    return (i * c + ch) * s + j;
}

// Block (ch = blockIdx.x, split = blockIdx.y) of 256 threads: part[(ch nsplit + split) 2 + {0, 1}]
// = sums of (x - K) and (x - K)^2 over the split's elements, K = the channel's first value.
extern "C" __global__ void __launch_bounds__(256) bn_stats(double *part, const T *x, i64 n, i64 c, i64 s,
                                                           i64 chunk) {
    i64 ch = blockIdx.x, m = n * s;
    int sp = blockIdx.y, nsplit = gridDim.y;
    bool small = m < 0x7fffffffll;
    double K = (double)x[ch * s];
    i64 e0 = (i64)sp * chunk, e1 = e0 + chunk < m ? e0 + chunk : m;
    double s1 = 0, s2 = 0;
    for (i64 e = e0 + threadIdx.x; e < e1; e += blockDim.x) {
        double d = (double)x[bn_off(e, ch, c, s, small)] - K;
        s1 += d;
        s2 += d * d;
    }
    s1 = group_sum<256>(s1);
    s2 = group_sum<256>(s2);
    if (threadIdx.x == 0) {
        part[(ch * nsplit + sp) * 2] = s1;
        part[(ch * nsplit + sp) * 2 + 1] = s2;
    }
}

// One thread per channel.  coef[2 ch], coef[2 ch + 1]: y's scale and shift.
extern "C" __global__ void __launch_bounds__(256) bn_fin(double *coef, const double *part, int nsplit, const T *x,
                                                         i64 n, i64 c, i64 s, const T *w, const T *b, int training,
                                                         const T *rm, const T *rv, double eps, T *mean, T *var,
                                                         T *invstd) {
    i64 ch = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c) return;
    double mu, is;
    if (training) {
        double s1 = 0, s2 = 0, m = (double)(n * s), K = (double)x[ch * s];
        for (int k = 0; k < nsplit; k++) {
            s1 += part[(ch * nsplit + k) * 2];
            s2 += part[(ch * nsplit + k) * 2 + 1];
        }
        double d1 = s1 / m, v = s2 / m - d1 * d1;
        if (v < 0) v = 0;
        mu = K + d1;
        var[ch] = (T)v;
        is = 1.0 / sqrt(v + eps);
    } else {
        mu = (double)rm[ch];
        is = 1.0 / sqrt((double)rv[ch] + eps);
    }
    mean[ch] = (T)mu;
    invstd[ch] = (T)is;
    double scale = is * (w ? (double)w[ch] : 1.0);
    coef[2 * ch] = scale;
    coef[2 * ch + 1] = (b ? (double)b[ch] : 0.0) - mu * scale;
}

// Grid-stride over all n c s elements.
extern "C" __global__ void __launch_bounds__(256) bn_apply(T *y, const T *x, const double *coef, i64 total, i64 c,
                                                           i64 s) {
    bool small = total < 0x7fffffffll;
    i64 step = (i64)gridDim.x * blockDim.x;
    for (i64 e = (i64)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += step) {
        i64 ch = small ? (i64)(((u32)e / (u32)s) % (u32)c) : (e / s) % c;
        T sc = (T)coef[2 * ch], sh = (T)coef[2 * ch + 1];
        y[e] = x[e] * sc + sh;
    }
}

// Block (channel, split): part[(ch nsplit + split) 2 + {0, 1}] = sums of gy and gy (x - mean).
extern "C" __global__ void __launch_bounds__(256) bn_bpart(double *part, const T *x, const T *gy, const T *mean,
                                                           i64 n, i64 c, i64 s, i64 chunk) {
    i64 ch = blockIdx.x, m = n * s;
    int sp = blockIdx.y, nsplit = gridDim.y;
    bool small = m < 0x7fffffffll;
    double mu = (double)mean[ch];
    i64 e0 = (i64)sp * chunk, e1 = e0 + chunk < m ? e0 + chunk : m;
    double s1 = 0, s2 = 0;
    for (i64 e = e0 + threadIdx.x; e < e1; e += blockDim.x) {
        i64 o = bn_off(e, ch, c, s, small);
        double q = (double)gy[o];
        s1 += q;
        s2 += q * ((double)x[o] - mu);
    }
    s1 = group_sum<256>(s1);
    s2 = group_sum<256>(s2);
    if (threadIdx.x == 0) {
        part[(ch * nsplit + sp) * 2] = s1;
        part[(ch * nsplit + sp) * 2 + 1] = s2;
    }
}

// One thread per channel: gb, gw (each may be NULL) and coef[4 ch ..]: mean, dmean, k, is w
// (gx = (gy - dmean - (x - mean) k) is w when training, gy is w otherwise).
extern "C" __global__ void __launch_bounds__(256) bn_bfin(double *coef, const double *part, int nsplit, const T *mean,
                                                          const T *invstd, const T *w, int training, i64 n, i64 c,
                                                          i64 s, T *gw, T *gb) {
    i64 ch = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c) return;
    double sdy = 0, sdx = 0;
    for (int k = 0; k < nsplit; k++) {
        sdy += part[(ch * nsplit + k) * 2];
        sdx += part[(ch * nsplit + k) * 2 + 1];
    }
    double is = (double)invstd[ch], m = (double)(n * s);
    if (gb) gb[ch] = (T)sdy;
    if (gw) gw[ch] = (T)(sdx * is);
    coef[4 * ch] = (double)mean[ch];
    coef[4 * ch + 1] = training ? sdy / m : 0.0;
    coef[4 * ch + 2] = training ? is * is * sdx / m : 0.0;
    coef[4 * ch + 3] = is * (w ? (double)w[ch] : 1.0);
}

extern "C" __global__ void __launch_bounds__(256) bn_bapply(T *gx, const T *x, const T *gy, const double *coef,
                                                            int training, i64 total, i64 c, i64 s) {
    bool small = total < 0x7fffffffll;
    i64 step = (i64)gridDim.x * blockDim.x;
    for (i64 e = (i64)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += step) {
        i64 ch = small ? (i64)(((u32)e / (u32)s) % (u32)c) : (e / s) % c;
        const double *k = coef + 4 * ch;
        if (training)
            gx[e] = (T)(((double)gy[e] - k[1] - ((double)x[e] - k[0]) * k[2]) * k[3]);
        else
            gx[e] = gy[e] * (T)k[3];
    }
}
