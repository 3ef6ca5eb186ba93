// index_check.cu: lowers *err to the smallest (row-major) position of an int64 index tensor (shape
// g, strides s0) whose value lies outside [0, size).
struct IGeo {
    int nd;
    i64 shape[MAXD];
    i64 s0[MAXD];
    i64 s1[MAXD];
    i64 s2[MAXD];
    i64 n;
};
extern "C" __global__ void __launch_bounds__(256) index_check_k(const i64 *idx, i64 size, IGeo g,
                                                                 unsigned long long *err) {
    i64 step = (i64)gridDim.x * blockDim.x;
    for (i64 t = (i64)blockIdx.x * blockDim.x + threadIdx.x; t < g.n; t += step) {
        i64 i = t, oi = 0;
        for (int d = g.nd - 1; d >= 0; d--) {
            i64 q = i / g.shape[d], c = i - q * g.shape[d];
            i = q;
            oi += c * g.s0[d];
        }
        i64 v = idx[oi];
        if (v < 0 || v >= size) atomicMin(err, (unsigned long long)t);
    }
}
