// pool.cu: max (with indices), average and adaptive-average pooling, forward and backward, for T
// float/double, over planes of [D, H, W] (1-D and 2-D pooling have D = H = 1 / D = 1).
// Forward: one thread per output.  Backward: one thread per INPUT element, gathering the outputs
// whose windows hold it in increasing output order (the order in which the CPU kernel scatters
// them), so there are no atomics, two runs give identical bits, and the sums round as on the CPU.
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
__device__ __forceinline__ void split4(i64 e, i64 A, i64 B, i64 C, i64 &r, i64 &a, i64 &b, i64 &c) {
    c = e % C;
    e /= C;
    b = e % B;
    e /= B;
    a = e % A;
    r = e / A;
}

// Window of output o along one dim of average pooling, as the CPU kernel: [s, e) clipped to the
// input, and its size before clipping to the input (after clipping to the padded input).
__device__ __forceinline__ void avg_window(const PGeo &g, int dim, i64 o, i64 &s, i64 &e, i64 &padded) {
    s = o * g.stride[dim] - g.pad[dim];
    e = s + g.k[dim];
    if (e > g.in[dim] + g.pad[dim]) e = g.in[dim] + g.pad[dim];
    padded = e - s;
    if (s < 0) s = 0;
    if (e > g.in[dim]) e = g.in[dim];
}

// Outputs along one dim whose (unclipped) window [o stride - pad, + span) holds input position x.
__device__ __forceinline__ void cover(const PGeo &g, int dim, i64 x, i64 span, i64 &lo, i64 &hi) {
    i64 num = x + g.pad[dim] - (span - 1);
    lo = num <= 0 ? 0 : (num + g.stride[dim] - 1) / g.stride[dim];
    hi = (x + g.pad[dim]) / g.stride[dim];
    if (hi > g.out[dim] - 1) hi = g.out[dim] - 1;
}

__device__ __forceinline__ i64 ada_start(i64 i, i64 n, i64 m) { return (i * n) / m; }
__device__ __forceinline__ i64 ada_end(i64 i, i64 n, i64 m) { return ((i + 1) * n + m - 1) / m; }

extern "C" __global__ void __launch_bounds__(256) max_fwd(T *y, i64 *idx, const T *x, PGeo g) {
    const i64 D = g.in[0], H = g.in[1], W = g.in[2], S = D * H * W;
    const i64 Do = g.out[0], Ho = g.out[1], Wo = g.out[2], total = g.planes * Do * Ho * Wo;
    i64 step = (i64)gridDim.x * blockDim.x;
    for (i64 e = (i64)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += step) {
        i64 r, od, oh, ow;
        split4(e, Do, Ho, Wo, r, od, oh, ow);
        const T *xp = x + r * S;
        i64 ds = od * g.stride[0] - g.pad[0], hs = oh * g.stride[1] - g.pad[1], ws = ow * g.stride[2] - g.pad[2];
        i64 de = ds + (g.k[0] - 1) * g.dil[0] + 1, he = hs + (g.k[1] - 1) * g.dil[1] + 1,
            we = ws + (g.k[2] - 1) * g.dil[2] + 1;
        if (de > D) de = D;
        if (he > H) he = H;
        if (we > W) we = W;
        while (ds < 0) ds += g.dil[0];
        while (hs < 0) hs += g.dil[1];
        while (ws < 0) ws += g.dil[2];
        i64 best_i = (ds * H + hs) * W + ws;
        T best = P_NEG_INF;
        for (i64 d = ds; d < de; d += g.dil[0])
            for (i64 h = hs; h < he; h += g.dil[1]) {
                const T *row = xp + (d * H + h) * W;
                for (i64 w = ws; w < we; w += g.dil[2]) {
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
extern "C" __global__ void __launch_bounds__(256) max_bwd(T *gx, const T *gy, const i64 *idx, PGeo g) {
    const i64 D = g.in[0], H = g.in[1], W = g.in[2], total = g.planes * D * H * W;
    const i64 Ho = g.out[1], Wo = g.out[2], P = g.out[0] * Ho * Wo;
    i64 step = (i64)gridDim.x * blockDim.x;
    for (i64 e = (i64)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += step) {
        i64 r, d, h, w;
        split4(e, D, H, W, r, d, h, w);
        i64 pos = (d * H + h) * W + w;
        i64 d0, d1, h0, h1, w0, w1;
        cover(g, 0, d, (g.k[0] - 1) * g.dil[0] + 1, d0, d1);
        cover(g, 1, h, (g.k[1] - 1) * g.dil[1] + 1, h0, h1);
        cover(g, 2, w, (g.k[2] - 1) * g.dil[2] + 1, w0, w1);
        const T *gp = gy + r * P;
        const i64 *ip = idx + r * P;
        T acc = T(0);
        for (i64 od = d0; od <= d1; od++)
            for (i64 oh = h0; oh <= h1; oh++)
                for (i64 ow = w0; ow <= w1; ow++) {
                    i64 o = (od * Ho + oh) * Wo + ow;
                    if (ip[o] == pos) acc += gp[o];
                }
        gx[e] = acc;
    }
}

extern "C" __global__ void __launch_bounds__(256) avg_fwd(T *y, const T *x, PGeo g) {
    const i64 D = g.in[0], H = g.in[1], W = g.in[2], S = D * H * W;
    const i64 Do = g.out[0], Ho = g.out[1], Wo = g.out[2], total = g.planes * Do * Ho * Wo;
    i64 step = (i64)gridDim.x * blockDim.x;
    for (i64 e = (i64)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += step) {
        i64 r, od, oh, ow;
        split4(e, Do, Ho, Wo, r, od, oh, ow);
        i64 ds, de, pd, hs, he, ph, ws, we, pw;
        avg_window(g, 0, od, ds, de, pd);
        avg_window(g, 1, oh, hs, he, ph);
        avg_window(g, 2, ow, ws, we, pw);
        if (ds >= de || hs >= he || ws >= we) {
            y[e] = T(0);
            continue;
        }
        i64 div = g.divisor_override > 0 ? g.divisor_override
                  : g.count_include_pad  ? pd * ph * pw
                                         : (de - ds) * (he - hs) * (we - ws);
        const T *xp = x + r * S;
        double s = 0;
        for (i64 d = ds; d < de; d++)
            for (i64 h = hs; h < he; h++) {
                const T *row = xp + (d * H + h) * W;
                for (i64 w = ws; w < we; w++) s += (double)row[w];
            }
        y[e] = (T)(s / (double)div);
    }
}

extern "C" __global__ void __launch_bounds__(256) avg_bwd(T *gx, const T *gy, PGeo g) {
    const i64 D = g.in[0], H = g.in[1], W = g.in[2], total = g.planes * D * H * W;
    const i64 Ho = g.out[1], Wo = g.out[2], P = g.out[0] * Ho * Wo;
    i64 step = (i64)gridDim.x * blockDim.x;
    for (i64 e = (i64)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += step) {
        i64 r, d, h, w;
        split4(e, D, H, W, r, d, h, w);
        i64 d0, d1, h0, h1, w0, w1;
        cover(g, 0, d, g.k[0], d0, d1);
        cover(g, 1, h, g.k[1], h0, h1);
        cover(g, 2, w, g.k[2], w0, w1);
        const T *gp = gy + r * P;
        T acc = T(0);
        for (i64 od = d0; od <= d1; od++) {
            i64 ds, de, pd;
            avg_window(g, 0, od, ds, de, pd);
            if (d < ds || d >= de) continue;
            for (i64 oh = h0; oh <= h1; oh++) {
                i64 hs, he, ph;
                avg_window(g, 1, oh, hs, he, ph);
                if (h < hs || h >= he) continue;
                for (i64 ow = w0; ow <= w1; ow++) {
                    i64 ws, we, pw;
                    avg_window(g, 2, ow, ws, we, pw);
                    if (w < ws || w >= we) continue;
                    i64 div = g.divisor_override > 0 ? g.divisor_override
                              : g.count_include_pad  ? pd * ph * pw
                                                     : (de - ds) * (he - hs) * (we - ws);
                    acc += gp[(od * Ho + oh) * Wo + ow] / (T)div;
                }
            }
        }
        gx[e] = acc;
    }
}

extern "C" __global__ void __launch_bounds__(256) ada_fwd(T *y, const T *x, PGeo g) {
    const i64 D = g.in[0], H = g.in[1], W = g.in[2], S = D * H * W;
    const i64 Do = g.out[0], Ho = g.out[1], Wo = g.out[2], total = g.planes * Do * Ho * Wo;
    i64 step = (i64)gridDim.x * blockDim.x;
    for (i64 e = (i64)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += step) {
        i64 r, od, oh, ow;
        split4(e, Do, Ho, Wo, r, od, oh, ow);
        i64 ds = ada_start(od, D, Do), de = ada_end(od, D, Do), hs = ada_start(oh, H, Ho), he = ada_end(oh, H, Ho);
        i64 ws = ada_start(ow, W, Wo), we = ada_end(ow, W, Wo);
        const T *xp = x + r * S;
        double s = 0;
        for (i64 d = ds; d < de; d++)
            for (i64 h = hs; h < he; h++) {
                const T *row = xp + (d * H + h) * W;
                for (i64 w = ws; w < we; w++) s += (double)row[w];
            }
        y[e] = (T)(s / (double)((de - ds) * (he - hs) * (we - ws)));
    }
}

// Outputs i of an adaptive dim (n inputs, m outputs) whose window holds input x.
__device__ __forceinline__ void ada_cover(i64 x, i64 n, i64 m, i64 &lo, i64 &hi) {
    lo = (x * m) / n;
    hi = ((x + 1) * m - 1) / n;
    if (hi > m - 1) hi = m - 1;
}

extern "C" __global__ void __launch_bounds__(256) ada_bwd(T *gx, const T *gy, PGeo g) {
    const i64 D = g.in[0], H = g.in[1], W = g.in[2], total = g.planes * D * H * W;
    const i64 Do = g.out[0], Ho = g.out[1], Wo = g.out[2], P = Do * Ho * Wo;
    i64 step = (i64)gridDim.x * blockDim.x;
    for (i64 e = (i64)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += step) {
        i64 r, d, h, w;
        split4(e, D, H, W, r, d, h, w);
        i64 d0, d1, h0, h1, w0, w1;
        ada_cover(d, D, Do, d0, d1);
        ada_cover(h, H, Ho, h0, h1);
        ada_cover(w, W, Wo, w0, w1);
        const T *gp = gy + r * P;
        T acc = T(0);
        for (i64 od = d0; od <= d1; od++) {
            i64 ds = ada_start(od, D, Do), de = ada_end(od, D, Do);
            if (d < ds || d >= de) continue;
            for (i64 oh = h0; oh <= h1; oh++) {
                i64 hs = ada_start(oh, H, Ho), he = ada_end(oh, H, Ho);
                if (h < hs || h >= he) continue;
                for (i64 ow = w0; ow <= w1; ow++) {
                    i64 ws = ada_start(ow, W, Wo), we = ada_end(ow, W, Wo);
                    if (w < ws || w >= we) continue;
                    acc += gp[(od * Ho + oh) * Wo + ow] / (T)((de - ds) * (he - hs) * (we - ws));
                }
            }
        }
        gx[e] = acc;
    }
}
