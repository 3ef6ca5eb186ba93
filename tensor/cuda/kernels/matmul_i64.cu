// matmul_i64.cu: int64 batched matrix product c = alpha * a @ b + beta * c (no BLAS for integers):
// one thread per output element; batch dims (g.shape[0..nb-1]) give a's and b's batch offsets
// (g.stride[0] for a, g.stride[1] for b); c is contiguous [batch, m, n].
extern "C" __global__ void __launch_bounds__(256) matmul_i64_k(i64 *c, const i64 *a, const i64 *b, int nb, i64 m,
                                                               i64 n, i64 k, i64 asr, i64 asc, i64 bsr, i64 bsc,
                                                               i64 alpha, i64 beta, i64 total, Geo g) {
    i64 step = (i64)gridDim.x * blockDim.x;
    for (i64 t = (i64)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += step) {
        i64 j = t % n, i = (t / n) % m, bi = t / (m * n);
        i64 ao = 0, bo = 0, r = bi;
        for (int d = nb - 1; d >= 0; d--) {
            i64 q = r / g.shape[d], x = r - q * g.shape[d];
            r = q;
            ao += x * g.stride[0][d];
            bo += x * g.stride[1][d];
        }
        u64 acc = 0;
        for (i64 l = 0; l < k; l++) acc += (u64)a[ao + i * asr + l * asc] * (u64)b[bo + l * bsr + j * bsc];
        u64 v = (u64)alpha * acc;
        if (beta != 0) v += (u64)beta * (u64)c[t];
        c[t] = (i64)v;
    }
}
