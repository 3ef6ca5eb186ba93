// adamw.cu: one Adam / AdamW step over all the parameters of a group in one launch (multi-tensor),
// for T float/double.  The host uploads a table of the tensors (pointers, sizes, per-tensor bias
// corrections: the step counts may differ) with the first block of each; block b finds its tensor
// by binary search and updates one chunk of it.  Every operation is the CPU loop's (nn/optim.c), in
// the same order, with explicitly rounded intrinsics (no contraction into FMAs), so the GPU
// gives the CPU's bits.
struct AdamTensor {
    T *p;            // parameter
    const T *g;      // gradient
    T *m, *v, *vmax; // exp_avg, exp_avg_sq, max_exp_avg_sq (NULL without amsgrad)
    i64 n;           // elements
    i64 block0;      // first block of this tensor
    double neg_step; // -lr / (1 - beta1^step)
    double bc2_sqrt; // sqrt(1 - beta2^step)
};
struct AdamScalars {
    double decay, l2, w1, beta2, c2, eps; // as adam_scalars in nn/optim.c
    int lerp_low;                         // torch's lerp form: m + w1 (g - m), else g - (g - m)(1 - w1)
    int ntensors;                         // entries of the table
    i64 chunk;                            // elements per block
};

#if IS_F32
__device__ __forceinline__ T mul_rn(T a, T b) { return __fmul_rn(a, b); }
__device__ __forceinline__ T add_rn(T a, T b) { return __fadd_rn(a, b); }
__device__ __forceinline__ T div_rn(T a, T b) { return __fdiv_rn(a, b); }
__device__ __forceinline__ T sqrt_rn(T a) { return __fsqrt_rn(a); }
#else
__device__ __forceinline__ T mul_rn(T a, T b) { return __dmul_rn(a, b); }
__device__ __forceinline__ T add_rn(T a, T b) { return __dadd_rn(a, b); }
__device__ __forceinline__ T div_rn(T a, T b) { return __ddiv_rn(a, b); }
__device__ __forceinline__ T sqrt_rn(T a) { return __dsqrt_rn(a); }
#endif
__device__ __forceinline__ T sub_rn(T a, T b) { return add_rn(a, -b); }

extern "C" __global__ void __launch_bounds__(256) adam_multi(const AdamTensor *tab, AdamScalars k) {
    i64 b = blockIdx.x;
    int lo = 0, hi = k.ntensors - 1; // last entry with block0 <= b
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (tab[mid].block0 <= b) lo = mid;
        else hi = mid - 1;
    }
    const AdamTensor &t = tab[lo];
    const T decay = (T)k.decay, l2 = (T)k.l2, w1 = (T)k.w1, w1c = (T)(1.0 - k.w1), beta2 = (T)k.beta2;
    const T c2 = (T)k.c2, eps = (T)k.eps, bc2 = (T)t.bc2_sqrt, ns = (T)t.neg_step;
    i64 e0 = (b - t.block0) * k.chunk, e1 = e0 + k.chunk < t.n ? e0 + k.chunk : t.n;
    // distinct buffers: lets the compiler keep several iterations' loads in flight
    T *__restrict__ P = t.p, *__restrict__ Mm = t.m, *__restrict__ Vv = t.v, *__restrict__ Vx = t.vmax;
    const T *__restrict__ Gg = t.g;
#pragma unroll 4
    for (i64 i = e0 + threadIdx.x; i < e1; i += blockDim.x) {
        T p0 = P[i], gi = Gg[i], mi = Mm[i], vi = Vv[i];
        T pi = mul_rn(p0, decay);
        gi = add_rn(gi, mul_rn(l2, p0));
        mi = k.lerp_low ? add_rn(mi, mul_rn(w1, sub_rn(gi, mi))) : sub_rn(gi, mul_rn(sub_rn(gi, mi), w1c));
        vi = mul_rn(vi, beta2);
        vi = add_rn(vi, mul_rn(mul_rn(c2, gi), gi));
        Mm[i] = mi;
        Vv[i] = vi;
        if (Vx) {
            T mx = Vx[i] > vi ? Vx[i] : vi;
            Vx[i] = mx;
            vi = mx;
        }
        T denom = add_rn(div_rn(sqrt_rn(vi), bc2), eps);
        P[i] = add_rn(pi, div_rn(mul_rn(ns, mi), denom));
    }
}
