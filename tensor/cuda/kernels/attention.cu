// attention.cu: fused scaled dot-product attention forward, out = softmax(scale q k^T + mask,
// causal) v, in one kernel: the scores never reach global memory (online softmax over the keys,
// as FlashAttention), for T float/double on CUDA cores.  The backward recomputes the
// probabilities with GEMMs and the fused softmax (nn/attention.c).
//   attn_fwd: a block of NT = 64 threads takes NT query rows of one batch entry, a thread per row
//             holding its (scaled) query and its output accumulator in registers; tiles of BK
//             keys and values are staged in shared memory (every thread reads the same key:
//             broadcasts), each thread walks its keys in order (deterministic), rescaling its
//             accumulator when the running maximum grows.  Causal rows stop at their diagonal.
#define NT 64
#define BK 64
#if IS_F32
#define EMAX 64 // head dims up to this (registers: query + accumulator)
#define A_NEG_INF (-INF_F)
#else
#define EMAX 32
#define A_NEG_INF (-INF_D)
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

extern "C" __global__ void __launch_bounds__(NT) attn_fwd(T *out, const T *q, const T *k, const T *v, const T *mask,
                                                          AGeo g) {
    __shared__ T Ks[BK][EMAX];
    __shared__ T Vs[BK][EMAX];
    const int E = (int)g.E, Ev = (int)g.Ev;
    i64 ntile_q = (g.L + NT - 1) / NT;
    i64 b = blockIdx.x / ntile_q, q0 = (blockIdx.x % ntile_q) * NT, qi = q0 + threadIdx.x;
    bool active = qi < g.L;
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
    T qr[EMAX], acc[EMAX];
#pragma unroll
    for (int e = 0; e < EMAX; e++) {
        qr[e] = active && e < E ? q[oq + qi * g.qs_l + e * g.qs_e] * scale : T(0);
        acc[e] = T(0);
    }
    T m = A_NEG_INF, l = T(0);
    // keys the block needs: causal rows see keys up to their own index
    i64 kend = g.causal && q0 + NT < g.S ? q0 + NT : g.S;
    i64 mine = !active ? 0 : g.causal && qi + 1 < g.S ? qi + 1 : g.S; // keys this row sees
    const T *mrow = mask ? mask + om + qi * g.ms_l : nullptr;
    for (i64 s0 = 0; s0 < kend; s0 += BK) {
        __syncthreads(); // the previous tile is consumed
        int nk = kend - s0 < BK ? (int)(kend - s0) : BK;
        for (int j = 0; j < nk; j++) {
            for (int e = threadIdx.x; e < E; e += NT) Ks[j][e] = k[ok + (s0 + j) * g.ks_s + e * g.ks_e];
            for (int e = threadIdx.x; e < Ev; e += NT) Vs[j][e] = v[ov + (s0 + j) * g.vs_s + e * g.vs_e];
        }
        __syncthreads();
        int jn = mine - s0 < nk ? (int)(mine - s0) : nk;
        for (int j = 0; j < jn; j++) {
            T s4[4] = {T(0), T(0), T(0), T(0)}; // four chains: the FMAs overlap
#pragma unroll
            for (int e = 0; e < EMAX; e++)
                if (e < E) s4[e & 3] += qr[e] * Ks[j][e];
            T s = (s4[0] + s4[1]) + (s4[2] + s4[3]);
            if (mrow) s = s + mrow[(s0 + j) * g.ms_s];
            if (s == A_NEG_INF) continue; // a masked key adds nothing
            if (s > m) {                  // new maximum: rescale what was summed so far
                T a = m == A_NEG_INF ? T(0) : m_exp(m - s);
                l *= a;
#pragma unroll
                for (int e = 0; e < EMAX; e++) acc[e] *= a;
                m = s;
            }
            T p = m_exp(s - m);
            l += p;
#pragma unroll
            for (int e = 0; e < EMAX; e++)
                if (e < Ev) acc[e] += p * Vs[j][e];
        }
    }
    if (!active) return;
    // a row with every key masked has l = 0: 0 / 0, NaN, as softmax over all -inf
    T *orow = out + (b * g.L + qi) * g.Ev;
#pragma unroll
    for (int e = 0; e < EMAX; e++)
        if (e < Ev) orow[e] = acc[e] / l;
}
