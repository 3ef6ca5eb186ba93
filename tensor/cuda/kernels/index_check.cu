// index_check.cu: sets *err (with the first value to arrive) when an int64 index tensor (shape
// g, strides s0) holds a value outside [0, size).
struct IGeo {
    int nd;
    i64 shape[MAXD];
    i64 s0[MAXD];
    i64 s1[MAXD];
    i64 s2[MAXD];
    i64 n;
};
extern "C" __global__ void __launch_bounds__(256) index_check_k(const i64 *idx, i64 size, IGeo g, int *err) {
    i64 step = (i64)gridDim.x * blockDim.x;
    for (i64 t = (i64)blockIdx.x * blockDim.x + threadIdx.x; t < g.n; t += step) {
        i64 i = t, oi = 0;
        for (int d = g.nd - 1; d >= 0; d--) {
            i64 q = i / g.shape[d], c = i - q * g.shape[d];
            i = q;
            oi += c * g.s0[d];
        }
        i64 v = idx[oi];
        if (v < 0 || v >= size)
            if (atomicCAS(err, 0, 1) == 0) *(i64 *)(err + 2) = v;
    }
}
