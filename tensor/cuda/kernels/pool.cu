// pool.cu: max (with indices), average and adaptive-average pooling, forward and backward, for T
// float/double, over planes of [D, H, W] (1-D and 2-D pooling have D = H = 1 / D = 1).
// Forward: one thread per output.  Backward: one thread per INPUT element, gathering the outputs
// whose windows hold it in increasing output order (the order in which the CPU kernel scatters
// them), so there are no atomics, two runs give identical bits, and the sums round as on the CPU.
// Each kernel has a 32-bit index instance (NAME32) the host picks when every index fits.
struct PGeo {
    i64 in[3], out[3], k[3], stride[3], pad[3], dil[3]; // as aqa_conv_geom (nn/nn_cpu-impl.h)
    i64 planes;                                          // n * channels
    i64 divisor_override;                                // > 0: the average's divisor
    int count_include_pad;                               // average: padding counts in the divisor
    int pad_;
};

#if IS_F32
#define P_NEG_INF (-INF_F)
#else
#define P_NEG_INF (-INF_D)
#endif

// Splits a flat index over planes * A * B * C into (plane, a, b, c).
template <typename I>
__device__ __forceinline__ void split4(I e, I A, I B, I C, I &r, I &a, I &b, I &c) {
    c = e % C;
    e /= C;
    b = e % B;
    e /= B;
    a = e % A;
    r = e / A;
}

// Window of output o along one dim of average pooling, as the CPU kernel: [s, e) clipped to the
// input, and its size before clipping to the input (after clipping to the padded input).
template <typename I>
__device__ __forceinline__ void avg_window(const PGeo &g, int dim, I o, I &s, I &e, I &padded) {
    s = o * (I)g.stride[dim] - (I)g.pad[dim];
    e = s + (I)g.k[dim];
    if (e > (I)(g.in[dim] + g.pad[dim])) e = (I)(g.in[dim] + g.pad[dim]);
    padded = e - s;
    if (s < 0) s = 0;
    if (e > (I)g.in[dim]) e = (I)g.in[dim];
}

// Outputs along one dim whose (unclipped) window [o stride - pad, + span) holds input position x.
template <typename I>
__device__ __forceinline__ void cover(const PGeo &g, int dim, I x, I span, I &lo, I &hi) {
    I st = (I)g.stride[dim], pd = (I)g.pad[dim];
    I num = x + pd - (span - 1);
    lo = num <= 0 ? 0 : (num + st - 1) / st;
    hi = (x + pd) / st;
    if (hi > (I)g.out[dim] - 1) hi = (I)g.out[dim] - 1;
}

// (i n) and ((i + 1) n) stay below 2^31 in the 32-bit instances: n m < 2^31 is checked on the host
template <typename I>
__device__ __forceinline__ I ada_start(I i, I n, I m) { return (i * n) / m; }
template <typename I>
__device__ __forceinline__ I ada_end(I i, I n, I m) { return ((i + 1) * n + m - 1) / m; }

template <typename I>
__device__ __forceinline__ void max_fwd_body(T *y, i64 *idx, const T *x, PGeo g) {
    const I D = g.in[0], H = g.in[1], W = g.in[2], S = D * H * W;
    const I Do = g.out[0], Ho = g.out[1], Wo = g.out[2], total = g.planes * Do * Ho * Wo;
    I step = (I)gridDim.x * (I)blockDim.x;
    for (I e = (I)blockIdx.x * (I)blockDim.x + (I)threadIdx.x; e < total; e += step) {
        I r, od, oh, ow;
        split4(e, Do, Ho, Wo, r, od, oh, ow);
        const T *xp = x + r * S;
        I ds = od * g.stride[0] - g.pad[0], hs = oh * g.stride[1] - g.pad[1], ws = ow * g.stride[2] - g.pad[2];
        I de = ds + (g.k[0] - 1) * g.dil[0] + 1, he = hs + (g.k[1] - 1) * g.dil[1] + 1,
            we = ws + (g.k[2] - 1) * g.dil[2] + 1;
        if (de > D) de = D;
        if (he > H) he = H;
        if (we > W) we = W;
        while (ds < 0) ds += g.dil[0];
        while (hs < 0) hs += g.dil[1];
        while (ws < 0) ws += g.dil[2];
        I best_i = (ds * H + hs) * W + ws;
        T best = P_NEG_INF;
        for (I d = ds; d < de; d += g.dil[0])
            for (I h = hs; h < he; h += g.dil[1]) {
                const T *row = xp + (d * H + h) * W;
                for (I w = ws; w < we; w += g.dil[2]) {
                    T v = row[w];
                    if (v > best || v != v) {
                        best = v;
                        best_i = (d * H + h) * W + w;
                    }
                }
            }
        y[e] = best;
        idx[e] = best_i;
    }
}

// gx[p] = sum of gy[o] over the outputs o whose maximum sits at p.
template <typename I>
__device__ __forceinline__ void max_bwd_body(T *gx, const T *gy, const i64 *idx, PGeo g) {
    const I D = g.in[0], H = g.in[1], W = g.in[2], total = g.planes * D * H * W;
    const I Ho = g.out[1], Wo = g.out[2], P = g.out[0] * Ho * Wo;
    I step = (I)gridDim.x * (I)blockDim.x;
    for (I e = (I)blockIdx.x * (I)blockDim.x + (I)threadIdx.x; e < total; e += step) {
        I r, d, h, w;
        split4(e, D, H, W, r, d, h, w);
        I pos = (d * H + h) * W + w;
        I d0, d1, h0, h1, w0, w1;
        cover(g, 0, d, (I)((g.k[0] - 1) * g.dil[0] + 1), d0, d1);
        cover(g, 1, h, (I)((g.k[1] - 1) * g.dil[1] + 1), h0, h1);
        cover(g, 2, w, (I)((g.k[2] - 1) * g.dil[2] + 1), w0, w1);
        const T *gp = gy + r * P;
        const i64 *ip = idx + r * P;
        T acc = T(0);
        for (I od = d0; od <= d1; od++)
            for (I oh = h0; oh <= h1; oh++)
                for (I ow = w0; ow <= w1; ow++) {
                    I o = (od * Ho + oh) * Wo + ow;
                    if (ip[o] == pos) acc += gp[o];
                }
        gx[e] = acc;
    }
}

template <typename I>
__device__ __forceinline__ void avg_fwd_body(T *y, const T *x, PGeo g) {
    const I D = g.in[0], H = g.in[1], W = g.in[2], S = D * H * W;
    const I Do = g.out[0], Ho = g.out[1], Wo = g.out[2], total = g.planes * Do * Ho * Wo;
    I step = (I)gridDim.x * (I)blockDim.x;
    for (I e = (I)blockIdx.x * (I)blockDim.x + (I)threadIdx.x; e < total; e += step) {
        I r, od, oh, ow;
        split4(e, Do, Ho, Wo, r, od, oh, ow);
        I ds, de, pd, hs, he, ph, ws, we, pw;
        avg_window(g, 0, od, ds, de, pd);
        avg_window(g, 1, oh, hs, he, ph);
        avg_window(g, 2, ow, ws, we, pw);
        if (ds >= de || hs >= he || ws >= we) {
            y[e] = T(0);
            continue;
        }
        I div = g.divisor_override > 0 ? g.divisor_override
                  : g.count_include_pad  ? pd * ph * pw
                                         : (de - ds) * (he - hs) * (we - ws);
        const T *xp = x + r * S;
        double s = 0;
        for (I d = ds; d < de; d++)
            for (I h = hs; h < he; h++) {
                const T *row = xp + (d * H + h) * W;
                for (I w = ws; w < we; w++) s += (double)row[w];
            }
        y[e] = (T)(s / (double)div);
    }
}

template <typename I>
__device__ __forceinline__ void avg_bwd_body(T *gx, const T *gy, PGeo g) {
    const I D = g.in[0], H = g.in[1], W = g.in[2], total = g.planes * D * H * W;
    const I Ho = g.out[1], Wo = g.out[2], P = g.out[0] * Ho * Wo;
    I step = (I)gridDim.x * (I)blockDim.x;
    for (I e = (I)blockIdx.x * (I)blockDim.x + (I)threadIdx.x; e < total; e += step) {
        I r, d, h, w;
        split4(e, D, H, W, r, d, h, w);
        I d0, d1, h0, h1, w0, w1;
        cover(g, 0, d, (I)g.k[0], d0, d1);
        cover(g, 1, h, (I)g.k[1], h0, h1);
        cover(g, 2, w, (I)g.k[2], w0, w1);
        const T *gp = gy + r * P;
        T acc = T(0);
        for (I od = d0; od <= d1; od++) {
            I ds, de, pd;
            avg_window(g, 0, od, ds, de, pd);
            if (d < ds || d >= de) continue;
            for (I oh = h0; oh <= h1; oh++) {
                I hs, he, ph;
                avg_window(g, 1, oh, hs, he, ph);
                if (h < hs || h >= he) continue;
                for (I ow = w0; ow <= w1; ow++) {
                    I ws, we, pw;
                    avg_window(g, 2, ow, ws, we, pw);
                    if (w < ws || w >= we) continue;
                    I div = g.divisor_override > 0 ? g.divisor_override
                              : g.count_include_pad  ? pd * ph * pw
                                                     : (de - ds) * (he - hs) * (we - ws);
                    acc += gp[(od * Ho + oh) * Wo + ow] / (T)div;
                }
            }
        }
        gx[e] = acc;
    }
}

template <typename I>
__device__ __forceinline__ void ada_fwd_body(T *y, const T *x, PGeo g) {
    const I D = g.in[0], H = g.in[1], W = g.in[2], S = D * H * W;
    const I Do = g.out[0], Ho = g.out[1], Wo = g.out[2], total = g.planes * Do * Ho * Wo;
    I step = (I)gridDim.x * (I)blockDim.x;
    for (I e = (I)blockIdx.x * (I)blockDim.x + (I)threadIdx.x; e < total; e += step) {
        I r, od, oh, ow;
        split4(e, Do, Ho, Wo, r, od, oh, ow);
        I ds = ada_start(od, D, Do), de = ada_end(od, D, Do), hs = ada_start(oh, H, Ho), he = ada_end(oh, H, Ho);
        I ws = ada_start(ow, W, Wo), we = ada_end(ow, W, Wo);
        const T *xp = x + r * S;
        double s = 0;
        for (I d = ds; d < de; d++)
            for (I h = hs; h < he; h++) {
                const T *row = xp + (d * H + h) * W;
                for (I w = ws; w < we; w++) s += (double)row[w];
            }
        y[e] = (T)(s / (double)((de - ds) * (he - hs) * (we - ws)));
    }
}

// Outputs i of an adaptive dim (n inputs, m outputs) whose window holds input x.
template <typename I>
__device__ __forceinline__ void ada_cover(I x, I n, I m, I &lo, I &hi) {
    lo = (x * m) / n;
    hi = ((x + 1) * m - 1) / n;
    if (hi > m - 1) hi = m - 1;
}

template <typename I>
__device__ __forceinline__ void ada_bwd_body(T *gx, const T *gy, PGeo g) {
    const I D = g.in[0], H = g.in[1], W = g.in[2], total = g.planes * D * H * W;
    const I Do = g.out[0], Ho = g.out[1], Wo = g.out[2], P = Do * Ho * Wo;
    I step = (I)gridDim.x * (I)blockDim.x;
    for (I e = (I)blockIdx.x * (I)blockDim.x + (I)threadIdx.x; e < total; e += step) {
        I r, d, h, w;
        split4(e, D, H, W, r, d, h, w);
        I d0, d1, h0, h1, w0, w1;
        ada_cover(d, D, Do, d0, d1);
        ada_cover(h, H, Ho, h0, h1);
        ada_cover(w, W, Wo, w0, w1);
        const T *gp = gy + r * P;
        T acc = T(0);
        for (I od = d0; od <= d1; od++) {
            I ds = ada_start(od, D, Do), de = ada_end(od, D, Do);
            if (d < ds || d >= de) continue;
            for (I oh = h0; oh <= h1; oh++) {
                I hs = ada_start(oh, H, Ho), he = ada_end(oh, H, Ho);
                if (h < hs || h >= he) continue;
                for (I ow = w0; ow <= w1; ow++) {
                    I ws = ada_start(ow, W, Wo), we = ada_end(ow, W, Wo);
                    if (w < ws || w >= we) continue;
                    acc += gp[(od * Ho + oh) * Wo + ow] / (T)((de - ds) * (he - hs) * (we - ws));
                }
            }
        }
        gx[e] = acc;
    }
}

// Instances: NAME (64-bit index math) and NAME32 (every index below 2^31: 32-bit divisions).
extern "C" __global__ void __launch_bounds__(256) max_fwd(T *y, i64 *idx, const T *x, PGeo g) { max_fwd_body<i64>(y, idx, x, g); }
extern "C" __global__ void __launch_bounds__(256) max_fwd32(T *y, i64 *idx, const T *x, PGeo g) { max_fwd_body<int>(y, idx, x, g); }
extern "C" __global__ void __launch_bounds__(256) max_bwd(T *gx, const T *gy, const i64 *idx, PGeo g) { max_bwd_body<i64>(gx, gy, idx, g); }
extern "C" __global__ void __launch_bounds__(256) max_bwd32(T *gx, const T *gy, const i64 *idx, PGeo g) { max_bwd_body<int>(gx, gy, idx, g); }
extern "C" __global__ void __launch_bounds__(256) avg_fwd(T *y, const T *x, PGeo g) { avg_fwd_body<i64>(y, x, g); }
extern "C" __global__ void __launch_bounds__(256) avg_fwd32(T *y, const T *x, PGeo g) { avg_fwd_body<int>(y, x, g); }
extern "C" __global__ void __launch_bounds__(256) avg_bwd(T *gx, const T *gy, PGeo g) { avg_bwd_body<i64>(gx, gy, g); }
extern "C" __global__ void __launch_bounds__(256) avg_bwd32(T *gx, const T *gy, PGeo g) { avg_bwd_body<int>(gx, gy, g); }
extern "C" __global__ void __launch_bounds__(256) ada_fwd(T *y, const T *x, PGeo g) { ada_fwd_body<i64>(y, x, g); }
extern "C" __global__ void __launch_bounds__(256) ada_fwd32(T *y, const T *x, PGeo g) { ada_fwd_body<int>(y, x, g); }
extern "C" __global__ void __launch_bounds__(256) ada_bwd(T *gx, const T *gy, PGeo g) { ada_bwd_body<i64>(gx, gy, g); }
extern "C" __global__ void __launch_bounds__(256) ada_bwd32(T *gx, const T *gy, PGeo g) { ada_bwd_body<int>(gx, gy, g); }
