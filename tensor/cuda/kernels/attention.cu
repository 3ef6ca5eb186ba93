// attention.cu: fused scaled dot-product attention forward, out = softmax(scale q k^T + mask,
// causal) v, in one kernel: the scores never reach global memory (online softmax over tiles of
// keys, as FlashAttention), for T float/double on CUDA cores.  The backward recomputes the
// probabilities with GEMMs and the fused softmax (nn/attention.c).
//   attn_fwd: block = 4 warps over BQ = 16 query rows of one batch entry (4 rows a warp); per tile
//             of BK = 32 keys the block stages K and V in shared memory, lane j scores key j of
//             the tile against each of its warp's rows, and the rows' running max / sum / output
//             are rescaled (fixed order everywhere: deterministic).
#define BQ 16
#define BK 32
#if IS_F32
#define EMAX 128 // head dims up to this (shared memory: Q 8 KB, K 16.5 KB, V 16 KB)
#define A_NEG_INF (-INF_F)
#define A_NAN __int_as_float(0x7fc00000)
#else
#define EMAX 64
#define A_NEG_INF (-INF_D)
#define A_NAN __longlong_as_double(0x7ff8000000000000ll)
#endif
#define AMAXB 4 // batch dims

struct AGeo {
    int nb;                                              // batch dims
    int causal;                                          // -inf above the diagonal
    i64 bshape[AMAXB];                                   // their sizes
    i64 qb[AMAXB], kb[AMAXB], vb[AMAXB], mb[AMAXB];      // batch strides of q, k, v, mask (0: broadcast)
    i64 qs_l, qs_e, ks_s, ks_e, vs_s, vs_e, ms_l, ms_s;  // row / element strides
    i64 L, S, E, Ev;                                     // sizes
    double scale;                                        // on the scores
};

extern "C" __global__ void __launch_bounds__(128) attn_fwd(T *out, const T *q, const T *k, const T *v, const T *mask,
                                                           AGeo g) {
    __shared__ T Qs[BQ][EMAX];
    __shared__ T Ks[BK][EMAX + 1]; // padded: lane j reads row j, no bank conflicts
    __shared__ T Vs[BK][EMAX];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    i64 ntile_q = (g.L + BQ - 1) / BQ;
    i64 b = blockIdx.x / ntile_q, q0 = (blockIdx.x % ntile_q) * BQ;
    // batch offsets
    i64 oq = 0, ok = 0, ov = 0, om = 0, rem = b;
    for (int d = g.nb - 1; d >= 0; d--) {
        i64 c = rem % g.bshape[d];
        rem /= g.bshape[d];
        oq += c * g.qb[d];
        ok += c * g.kb[d];
        ov += c * g.vb[d];
        om += c * g.mb[d];
    }
    const T scale = (T)g.scale;
    // stage this block's query rows
    // (warps over rows, lanes over elements: no index divisions, coalesced when elements are)
    const int E = (int)g.E, Ev = (int)g.Ev;
    for (int r = warp; r < BQ; r += 4)
        for (int e = lane; e < E; e += 32) Qs[r][e] = q0 + r < g.L ? q[oq + (q0 + r) * g.qs_l + e * g.qs_e] : T(0);
    // per row of this warp: running max, sum and output (lane holds elements lane + 32 c)
    T m[4], l[4], acc[4][EMAX / 32];
#pragma unroll
    for (int r = 0; r < 4; r++) {
        m[r] = A_NEG_INF;
        l[r] = T(0);
#pragma unroll
        for (int c = 0; c < EMAX / 32; c++) acc[r][c] = T(0);
    }
    for (i64 s0 = 0; s0 < g.S; s0 += BK) {
        __syncthreads(); // the previous tile is consumed (and Qs written, first time)
        for (int j = warp; j < BK; j += 4) {
            bool in = s0 + j < g.S;
            for (int e = lane; e < E; e += 32) Ks[j][e] = in ? k[ok + (s0 + j) * g.ks_s + e * g.ks_e] : T(0);
            for (int e = lane; e < Ev; e += 32) Vs[j][e] = in ? v[ov + (s0 + j) * g.vs_s + e * g.vs_e] : T(0);
        }
        __syncthreads();
        i64 key = s0 + lane;
#pragma unroll
        for (int r = 0; r < 4; r++) {
            int rr = warp * 4 + r;
            i64 qi = q0 + rr;
            T s = T(0);
            for (int e = 0; e < E; e++) s += Qs[rr][e] * Ks[lane][e];
            s = s * scale;
            bool valid = key < g.S && qi < g.L;
            if (valid && mask) s = s + mask[om + qi * g.ms_l + key * g.ms_s];
            if (!valid || (g.causal && key > qi)) s = A_NEG_INF;
            T tm = s;
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) {
                T other = __shfl_xor_sync(0xffffffffu, tm, o);
                tm = other > tm ? other : tm;
            }
            T mn = tm > m[r] ? tm : m[r];
            // nothing seen yet (all -inf so far): keep the state zero, avoid inf - inf
            T alpha = mn == A_NEG_INF ? T(1) : m_exp(m[r] - mn);
            T p = s == A_NEG_INF ? T(0) : m_exp(s - mn);
            T ps = p;
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) ps += __shfl_xor_sync(0xffffffffu, ps, o);
            l[r] = l[r] * alpha + ps;
            m[r] = mn;
#pragma unroll
            for (int c = 0; c < EMAX / 32; c++) acc[r][c] *= alpha;
            for (int j = 0; j < BK; j++) {
                T pj = __shfl_sync(0xffffffffu, p, j);
#pragma unroll
                for (int c = 0; c < EMAX / 32; c++) {
                    int e = lane + 32 * c;
                    if (e < Ev) acc[r][c] += pj * Vs[j][e];
                }
            }
        }
    }
#pragma unroll
    for (int r = 0; r < 4; r++) {
        i64 qi = q0 + warp * 4 + r;
        if (qi >= g.L) continue;
        T inv = T(1) / l[r]; // a row with every key masked: 1 / 0, NaN output (as softmax of all -inf)
        T *orow = out + (b * g.L + qi) * g.Ev;
#pragma unroll
        for (int c = 0; c < EMAX / 32; c++) {
            int e = lane + 32 * c;
            if (e < g.Ev) orow[e] = l[r] == T(0) ? A_NAN : acc[r][c] * inv;
        }
    }
}
