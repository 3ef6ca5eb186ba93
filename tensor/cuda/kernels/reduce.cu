// reduce.cu: deterministic sum / max / min (with positions) over a set of dims, for one dtype T
// (sums accumulate in ACC: double for floats, i64 for integers).  No atomics: every output is
// produced by a fixed set of threads combining in a fixed order, so two runs give identical bits.
//   reduce_row<OP>_<G>: G lanes (a warp or the whole block) per (output, split), striding over
//                       the reduced elements (used when the reduced elements are the contiguous
//                       ones), combined by a fixed butterfly;
//   reduce_col<OP>:     one thread per (output, split) walking its reduced elements in order
//                       (used when neighbouring outputs are neighbours in memory);
//   reduce_fin<OP>:     combines the splits' partial results of each output in split order;
//   reduce_fin256<OP>:  the same with a block of 256 lanes per output (few outputs, many splits:
//                       a full reduction), lane l taking splits l, l + 256, ..., then a butterfly.
// Max/min positions are flat indices over the reduced dims in logical row-major order; the
// smaller position wins ties and a NaN beats any number (the first NaN), as on the CPU.
struct RGeo {
    int knd, rnd;                                     // kept / reduced dims
    i64 ksize[MAXD], kx[MAXD], ko[MAXD], ki[MAXD];    // kept sizes; strides in x, out, idx
    i64 rsize[MAXD], rx[MAXD];                        // reduced sizes (logical order); x strides
    i64 nout, nred, chunk;                            // outputs, reduced count, per split
    int nsplit;                                       // splits of the reduced range
    int vec;                                          // float sum over contiguous 16-byte aligned
                                                      // chunks of a multiple of 4: float4 loads
};

__device__ __forceinline__ void kept_offsets(const RGeo &g, i64 o, i64 &ox, i64 &oo, i64 &oi) {
    ox = oo = oi = 0;
    for (int d = g.knd - 1; d >= 0; d--) {
        i64 s = g.ksize[d];
        i64 q = o / s, r = o - q * s;
        o = q;
        ox += r * g.kx[d];
        oo += r * g.ko[d];
        oi += r * g.ki[d];
    }
}

__device__ __forceinline__ i64 red_offset(const RGeo &g, i64 r) {
    if (g.rnd == 1) return r * g.rx[0];
    i64 off = 0;
    for (int d = g.rnd - 1; d >= 0; d--) {
        i64 s = g.rsize[d];
        i64 q = r / s;
        off += (r - q * s) * g.rx[d];
        r = q;
    }
    return off;
}

template <typename V>
__device__ __forceinline__ V shfl_x(V v, int o) { return __shfl_xor_sync(0xffffffffu, v, o); }
template <>
__device__ __forceinline__ u8 shfl_x<u8>(u8 v, int o) { return (u8)__shfl_xor_sync(0xffffffffu, (int)v, o); }

// Is (bv, bp) better than (av, ap)?  p < 0 marks "no element yet".
template <int OP>
__device__ __forceinline__ bool better(T bv, i64 bp, T av, i64 ap) {
    if (bp < 0) return false;
    if (ap < 0) return true;
    bool an = av != av, bn = bv != bv;
    if (an || bn) return an && bn ? bp < ap : bn;
    if (OP == RED_MAX ? bv > av : bv < av) return true;
    return bv == av && bp < ap;
}


template <int OP, int G>
__device__ __forceinline__ void group_arg(T &v, i64 &p) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        T ov = shfl_x(v, o);
        i64 op = shfl_x(p, o);
        if (better<OP>(ov, op, v, p)) {
            v = ov;
            p = op;
        }
    }
    if (G > 32) {
        __shared__ T shv[G / 32];
        __shared__ i64 shp[G / 32];
        __syncthreads();
        if ((threadIdx.x & 31) == 0) {
            shv[threadIdx.x / 32] = v;
            shp[threadIdx.x / 32] = p;
        }
        __syncthreads();
        v = shv[0];
        p = shp[0];
#pragma unroll
        for (int w = 1; w < G / 32; w++)
            if (better<OP>(shv[w], shp[w], v, p)) {
                v = shv[w];
                p = shp[w];
            }
    }
}

template <int OP, int G>
__device__ __forceinline__ void reduce_row(const T *x, T *out, i64 *idx, ACC *psum, T *pval, i64 *ppos, RGeo g) {
    int lane = threadIdx.x % G, grp = threadIdx.x / G, gpb = blockDim.x / G;
    i64 o = (i64)blockIdx.x * gpb + grp;
    int s = blockIdx.y;
    bool active = o < g.nout; // inactive lanes still join the block-wide combine
    i64 ox = 0, oo = 0, oi = 0;
    if (active) kept_offsets(g, o, ox, oo, oi);
    i64 r0 = (i64)s * g.chunk, r1 = r0 + g.chunk < g.nred ? r0 + g.chunk : g.nred;
    if (OP == RED_SUM) {
        ACC acc = 0;
#if IS_F32
        if (active && g.vec) {
            const float4 *xv = (const float4 *)(x + ox + r0);
            i64 n4 = (r1 - r0) >> 2;
#pragma unroll 4
            for (i64 i = lane; i < n4; i += G) {
                float4 a = xv[i];
                acc += ((ACC)a.x + (ACC)a.y) + ((ACC)a.z + (ACC)a.w);
            }
            for (i64 r = r0 + n4 * 4 + lane; r < r1; r += G) acc += (ACC)x[ox + r];
        } else
#endif
        if (active && g.rnd == 1) {
            // one reduced dim: four independent loads in flight per step
            const T *xp = x + ox;
            i64 st = g.rx[0], r = r0 + lane;
            for (; r + 3 * G < r1; r += 4 * G) {
                ACC a0 = (ACC)xp[r * st], a1 = (ACC)xp[(r + G) * st];
                ACC a2 = (ACC)xp[(r + 2 * G) * st], a3 = (ACC)xp[(r + 3 * G) * st];
                acc += (a0 + a1) + (a2 + a3);
            }
            for (; r < r1; r += G) acc += (ACC)xp[r * st];
        } else if (active) {
            for (i64 r = r0 + lane; r < r1; r += G) acc += (ACC)x[ox + red_offset(g, r)];
        }
        acc = group_sum<G>(acc);
        if (lane == 0 && active) {
            if (g.nsplit == 1) out[oo] = (T)acc;
            else psum[(i64)s * g.nout + o] = acc;
        }
    } else {
        T best = T(0);
        i64 bp = -1;
        if (active)
            for (i64 r = r0 + lane; r < r1; r += G) {
                T v = x[ox + red_offset(g, r)];
                if (better<OP>(v, r, best, bp)) {
                    best = v;
                    bp = r;
                }
            }
        group_arg<OP, G>(best, bp);
        if (lane == 0 && active) {
            if (g.nsplit == 1) {
                out[oo] = best;
                if (idx) idx[oi] = bp;
            } else {
                pval[(i64)s * g.nout + o] = best;
                ppos[(i64)s * g.nout + o] = bp;
            }
        }
    }
}

template <int OP>
__device__ __forceinline__ void reduce_col(const T *x, T *out, i64 *idx, ACC *psum, T *pval, i64 *ppos, RGeo g) {
    i64 o = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (o >= g.nout) return;
    int s = blockIdx.y;
    i64 ox, oo, oi;
    kept_offsets(g, o, ox, oo, oi);
    i64 r0 = (i64)s * g.chunk, r1 = r0 + g.chunk < g.nred ? r0 + g.chunk : g.nred;
    if (OP == RED_SUM) {
        ACC acc = 0;
        for (i64 r = r0; r < r1; r++) acc += (ACC)x[ox + red_offset(g, r)];
        if (g.nsplit == 1) out[oo] = (T)acc;
        else psum[(i64)s * g.nout + o] = acc;
    } else {
        T best = T(0);
        i64 bp = -1;
        for (i64 r = r0; r < r1; r++) {
            T v = x[ox + red_offset(g, r)];
            if (better<OP>(v, r, best, bp)) {
                best = v;
                bp = r;
            }
        }
        if (g.nsplit == 1) {
            out[oo] = best;
            if (idx) idx[oi] = bp;
        } else {
            pval[(i64)s * g.nout + o] = best;
            ppos[(i64)s * g.nout + o] = bp;
        }
    }
}

template <int OP>
__device__ __forceinline__ void reduce_fin(T *out, i64 *idx, const ACC *psum, const T *pval, const i64 *ppos, RGeo g) {
    i64 o = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (o >= g.nout) return;
    i64 ox, oo, oi;
    kept_offsets(g, o, ox, oo, oi);
    if (OP == RED_SUM) {
        ACC acc = 0;
        for (int s = 0; s < g.nsplit; s++) acc += psum[(i64)s * g.nout + o];
        out[oo] = (T)acc;
    } else {
        T best = T(0);
        i64 bp = -1;
        for (int s = 0; s < g.nsplit; s++) {
            T v = pval[(i64)s * g.nout + o];
            i64 p = ppos[(i64)s * g.nout + o];
            if (better<OP>(v, p, best, bp)) {
                best = v;
                bp = p;
            }
        }
        out[oo] = best;
        if (idx) idx[oi] = bp;
    }
}

template <int OP>
__device__ __forceinline__ void reduce_fin256(T *out, i64 *idx, const ACC *psum, const T *pval, const i64 *ppos,
                                              RGeo g) {
    i64 o = blockIdx.x; // grid: one block per output
    i64 ox, oo, oi;
    kept_offsets(g, o, ox, oo, oi);
    if (OP == RED_SUM) {
        ACC acc = 0;
        for (int s = threadIdx.x; s < g.nsplit; s += blockDim.x) acc += psum[(i64)s * g.nout + o];
        acc = group_sum<256>(acc);
        if (threadIdx.x == 0) out[oo] = (T)acc;
    } else {
        T best = T(0);
        i64 bp = -1;
        for (int s = threadIdx.x; s < g.nsplit; s += blockDim.x) {
            T v = pval[(i64)s * g.nout + o];
            i64 p = ppos[(i64)s * g.nout + o];
            if (better<OP>(v, p, best, bp)) {
                best = v;
                bp = p;
            }
        }
        group_arg<OP, 256>(best, bp);
        if (threadIdx.x == 0) {
            out[oo] = best;
            if (idx) idx[oi] = bp;
        }
    }
}

#define RED_PARAMS const T *x, T *out, i64 *idx, ACC *psum, T *pval, i64 *ppos, RGeo g
#define RED_ARGS x, out, idx, psum, pval, ppos, g
#define FIN_PARAMS T *out, i64 *idx, const ACC *psum, const T *pval, const i64 *ppos, RGeo g
#define FIN_ARGS out, idx, psum, pval, ppos, g
#define RED_KERNELS(NAME, OP)                                                                                 \
    extern "C" __global__ void __launch_bounds__(256) reduce_row32_##NAME(RED_PARAMS) { reduce_row<OP, 32>(RED_ARGS); } \
    extern "C" __global__ void __launch_bounds__(256) reduce_row256_##NAME(RED_PARAMS) { reduce_row<OP, 256>(RED_ARGS); } \
    extern "C" __global__ void __launch_bounds__(256) reduce_col_##NAME(RED_PARAMS) { reduce_col<OP>(RED_ARGS); } \
    extern "C" __global__ void __launch_bounds__(256) reduce_fin_##NAME(FIN_PARAMS) { reduce_fin<OP>(FIN_ARGS); } \
    extern "C" __global__ void __launch_bounds__(256) reduce_fin256_##NAME(FIN_PARAMS) { reduce_fin256<OP>(FIN_ARGS); }
#if !IS_BOOL
RED_KERNELS(sum, RED_SUM)
#endif
RED_KERNELS(max, RED_MAX)
RED_KERNELS(min, RED_MIN)
