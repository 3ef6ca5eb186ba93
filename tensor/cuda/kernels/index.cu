// index.cu: index_select, gather (copies), index_add, scatter_add (accumulating) for one dtype T,
// plus the index range check.  Accumulation is deterministic and atomic-free:
//   index_add:   the host sorts the indices into per-target lists (a stable counting sort, so
//                each list keeps index order); one thread per (target, slice element) adds its
//                list in order, the CPU's order;
//   scatter_add: one thread per output element scans the index entries that can reach it (the
//                ones sharing its other coordinates) in increasing position, the CPU's order.
// Bad indices lower *err to their position in the index tensor (row-major), so the host reports
// the first bad one as the CPU does, whatever the thread order; they are skipped.
struct IGeo {
    int nd;          // dims (>= 1)
    i64 shape[MAXD]; // sizes of the iterated space
    i64 s0[MAXD];    // strides of operand 0 (out)
    i64 s1[MAXD];    // operand 1
    i64 s2[MAXD];    // operand 2
    i64 n;           // elements of the iterated space
};

__device__ __forceinline__ void flag_bad(unsigned long long *err, i64 pos) { atomicMin(err, (unsigned long long)pos); }
__device__ __forceinline__ T acc_add(T a, T b) {
#if IS_BOOL
    return (a || b) ? 1 : 0;
#elif IS_I64
    return (i64)((u64)a + (u64)b);
#else
    return a + b;
#endif
}

// out (shape g) = x with its dim `dim` indexed by idx (s0 out, s1 x).
extern "C" __global__ void __launch_bounds__(256) index_select_k(T *out, const T *x, const i64 *idx, i64 istride,
                                                                 int dim, i64 size, IGeo g, unsigned long long *err) {
    i64 step = (i64)gridDim.x * blockDim.x;
    for (i64 t = (i64)blockIdx.x * blockDim.x + threadIdx.x; t < g.n; t += step) {
        i64 i = t, oo = 0, ox = 0;
        bool bad = false;
        for (int d = g.nd - 1; d >= 0; d--) {
            i64 q = i / g.shape[d], c = i - q * g.shape[d];
            i = q;
            oo += c * g.s0[d];
            if (d == dim) {
                i64 v = idx[c * istride];
                if (v < 0 || v >= size) {
                    flag_bad(err, c);
                    bad = true;
                }
                ox += v * g.s1[d];
            } else {
                ox += c * g.s1[d];
            }
        }
        if (!bad) out[oo] = x[ox];
    }
}

// out (index's shape) = x[.., index[k], ..] (s0 out, s1 index, s2 x).
extern "C" __global__ void __launch_bounds__(256) gather_k(T *out, const T *x, const i64 *idx, int dim, i64 size,
                                                           IGeo g, unsigned long long *err) {
    i64 step = (i64)gridDim.x * blockDim.x;
    for (i64 t = (i64)blockIdx.x * blockDim.x + threadIdx.x; t < g.n; t += step) {
        i64 i = t, oo = 0, oi = 0, ox = 0;
        for (int d = g.nd - 1; d >= 0; d--) {
            i64 q = i / g.shape[d], c = i - q * g.shape[d];
            i = q;
            oo += c * g.s0[d];
            oi += c * g.s1[d];
            if (d != dim) ox += c * g.s2[d];
        }
        i64 v = idx[oi];
        if (v < 0 || v >= size) {
            flag_bad(err, t);
            continue;
        }
        out[oo] = x[ox + v * g.s2[dim]];
    }
}

// csr = [targets U][starts U+1][source positions n]; g: the slice (all dims but `dim`) with
// s0 out strides, s1 src strides; osd/ssd: strides along dim.
extern "C" __global__ void __launch_bounds__(256) index_add_k(T *out, const T *src, const i64 *csr, i64 U, i64 osd,
                                                              i64 ssd, IGeo g) {
    i64 step = (i64)gridDim.x * blockDim.x, total = U * g.n;
    for (i64 t = (i64)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += step) {
        i64 u = t / g.n, i = t - u * g.n, oo = 0, os = 0;
        for (int d = g.nd - 1; d >= 0; d--) {
            i64 q = i / g.shape[d], c = i - q * g.shape[d];
            i = q;
            oo += c * g.s0[d];
            os += c * g.s1[d];
        }
        i64 j = csr[u], p0 = csr[U + u], p1 = csr[U + u + 1];
        const i64 *order = csr + 2 * U + 1;
        T acc = out[oo + j * osd];
        for (i64 p = p0; p < p1; p++) acc = acc_add(acc, src[os + order[p] * ssd]);
        out[oo + j * osd] = acc;
    }
}

// g: the index's shape with dim's size replaced by out's; s0 out, s1 index, s2 src strides;
// L: the index's size along dim.
extern "C" __global__ void __launch_bounds__(256) scatter_add_k(T *out, const T *src, const i64 *idx, int dim,
                                                                i64 L, IGeo g) {
    i64 step = (i64)gridDim.x * blockDim.x;
    for (i64 t = (i64)blockIdx.x * blockDim.x + threadIdx.x; t < g.n; t += step) {
        i64 i = t, oo = 0, oi = 0, os = 0, j = 0;
        for (int d = g.nd - 1; d >= 0; d--) {
            i64 q = i / g.shape[d], c = i - q * g.shape[d];
            i = q;
            oo += c * g.s0[d];
            if (d == dim) j = c;
            else {
                oi += c * g.s1[d];
                os += c * g.s2[d];
            }
        }
        T acc = out[oo];
        bool hit = false;
        for (i64 k = 0; k < L; k++)
            if (idx[oi + k * g.s1[dim]] == j) {
                acc = acc_add(acc, src[os + k * g.s2[dim]]);
                hit = true;
            }
        if (hit) out[oo] = acc;
    }
}
