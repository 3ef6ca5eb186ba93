// conv.cu: the convolution helpers of nn/conv_cuda.c, for T float/double (programs conv_f32,
// conv_f64).  The products themselves are cuBLAS GEMMs; these kernels move data around them:
//   vol2col_k / vol2col_k32: unfold a block of samples x output positions into the column matrix
//                            col [c_in * kk, M] (M = nb * np columns, sample j's positions at
//                            j * np .. j * np + np - 1), zeros where the window hangs over the
//                            padding;
//   col2vol_k / col2vol_k32: the adjoint: each input element gathers, in a fixed order, the column
//                            entries it contributed to and adds their sum to the input gradient
//                            (one thread per input element, so no atomics and the same bits every
//                            run);
//   bias_add_k:  y[s, o, p] += b[o];
//   bias_grad_k: gb[o] = sum over samples and positions of gy[s, o, p], one block per channel,
//                fixed-order partial sums combined by a fixed tree (deterministic).
// The _k32 variants do their index arithmetic in 32 bits (64-bit division is a long software
// sequence on the GPU); the host picks them when every index fits.
// Geometry of one call; mirrors `cgeo` in nn/conv_cuda.c.
struct CGeo {
    i64 c_in;          // input channels (all groups)
    i64 in[3];         // input D, H, W
    i64 out[3];        // output D, H, W
    i64 k[3];          // kernel size
    i64 stride[3];     // window step
    i64 pad[3];        // padding before the first element
    i64 dil[3];        // kernel dilation
    i64 n0, nb;        // first sample of the block, samples in it
    i64 p0, np;        // first output position of the tile, positions per sample
    i64 id_lo, id_n;   // col2vol: the input depth planes the tile touches
};

template <typename I>
__device__ __forceinline__ void vol2col_body(const T *x, T *col, const CGeo &g) {
    const I kh = (I)g.k[1], kw = (I)g.k[2], kk = (I)(g.k[0] * g.k[1] * g.k[2]);
    const I Ho = (I)g.out[1], Wo = (I)g.out[2], np = (I)g.np, M = (I)(g.nb * g.np);
    const I D = (I)g.in[0], H = (I)g.in[1], W = (I)g.in[2];
    const i64 S = g.in[0] * g.in[1] * g.in[2];
    const i64 total = (i64)g.c_in * kk * M;
    const i64 step = (i64)gridDim.x * blockDim.x;
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += step) {
        I ii = (I)i;
        I m = ii % M, r = ii / M;
        I j = m / np, p = (I)g.p0 + m % np;
        I c = r / kk, rem = r % kk;
        I a = rem / (kh * kw), b = (rem / kw) % kh, e = rem % kw;
        I od = p / (Ho * Wo), oh = (p / Wo) % Ho, ow = p % Wo;
        i64 id = (i64)od * g.stride[0] - g.pad[0] + (i64)a * g.dil[0];
        i64 ih = (i64)oh * g.stride[1] - g.pad[1] + (i64)b * g.dil[1];
        i64 iw = (i64)ow * g.stride[2] - g.pad[2] + (i64)e * g.dil[2];
        T v = T(0);
        if (id >= 0 && id < D && ih >= 0 && ih < H && iw >= 0 && iw < W)
            v = x[((g.n0 + (i64)j) * g.c_in + (i64)c) * S + (id * H + ih) * W + iw];
        col[i] = v;
    }
}

// Output index o along one dim that input index i meets at kernel tap t: i + pad - t * dil = o *
// stride; false when there is none (not on the stride grid, or past the output).  s == 1 (the
// common case) skips the division.
template <typename I>
__device__ __forceinline__ bool tap_out(I v, I s, I n, I *o) {
    if (s != 1) {
        if (v % s) return false;
        v /= s;
    }
    *o = v;
    return v < n;
}

// I: the index type (int when every index fits 31 bits: 64-bit division is slow on the GPU).
template <typename I>
__device__ __forceinline__ void col2vol_body(const T *col, T *gx, const CGeo &g) {
    const I H = (I)g.in[1], W = (I)g.in[2], idn = (I)g.id_n, cin = (I)g.c_in;
    const I kd = (I)g.k[0], kh = (I)g.k[1], kw = (I)g.k[2];
    const I sd = (I)g.stride[0], sh = (I)g.stride[1], sw = (I)g.stride[2];
    const I dd = (I)g.dil[0], dh = (I)g.dil[1], dw = (I)g.dil[2];
    const I pd = (I)g.pad[0], ph = (I)g.pad[1], pw = (I)g.pad[2];
    const I Do = (I)g.out[0], Ho = (I)g.out[1], Wo = (I)g.out[2];
    const I p0 = (I)g.p0, p1 = (I)(g.p0 + g.np);
    const i64 S = g.in[0] * g.in[1] * g.in[2];
    const i64 kk = g.k[0] * g.k[1] * g.k[2], M = g.nb * g.np;
    const i64 total = g.nb * g.c_in * g.id_n * g.in[1] * g.in[2];
    const i64 step = (i64)gridDim.x * blockDim.x;
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += step) {
        I t = (I)i;
        I iw = t % W;
        t /= W;
        I ih = t % H;
        t /= H;
        I id = (I)g.id_lo + t % idn;
        t /= idn;
        I c = t % cin, j = t / cin;
        ACC acc = ACC(0);
        const T *cj = col + (i64)c * kk * M + (i64)j * g.np - g.p0;
        for (I a = 0; a < kd; a++) {
            I od, td = id + pd - a * dd;
            if (td < 0) break; // decreases with a
            if (!tap_out<I>(td, sd, Do, &od)) continue;
            for (I b = 0; b < kh; b++) {
                I oh, th = ih + ph - b * dh;
                if (th < 0) break;
                if (!tap_out<I>(th, sh, Ho, &oh)) continue;
                for (I e = 0; e < kw; e++) {
                    I ow, tw = iw + pw - e * dw;
                    if (tw < 0) break;
                    if (!tap_out<I>(tw, sw, Wo, &ow)) continue;
                    I p = (od * Ho + oh) * Wo + ow;
                    if (p < p0 || p >= p1) continue;
                    i64 rem = ((i64)a * kh + b) * kw + e;
                    acc += (ACC)cj[rem * M + p];
                }
            }
        }
        T *dst = gx + ((g.n0 + (i64)j) * g.c_in + (i64)c) * S + ((i64)id * H + ih) * W + iw;
        *dst = (T)((ACC)*dst + acc);
    }
}

extern "C" __global__ void __launch_bounds__(256) vol2col_k(const T *x, T *col, CGeo g) { vol2col_body<i64>(x, col, g); }
extern "C" __global__ void __launch_bounds__(256) vol2col_k32(const T *x, T *col, CGeo g) { vol2col_body<u32>(x, col, g); }
extern "C" __global__ void __launch_bounds__(256) col2vol_k(const T *col, T *gx, CGeo g) { col2vol_body<i64>(col, gx, g); }
extern "C" __global__ void __launch_bounds__(256) col2vol_k32(const T *col, T *gx, CGeo g) { col2vol_body<int>(col, gx, g); }

extern "C" __global__ void __launch_bounds__(256) bias_add_k(T *y, const T *b, i64 c_out, i64 P, i64 total) {
    const i64 step = (i64)gridDim.x * blockDim.x;
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += step) y[i] += b[(i / P) % c_out];
}

// One block of 256 threads per output channel (blockIdx.x + the host's channel offset).
extern "C" __global__ void __launch_bounds__(256) bias_grad_k(const T *gy, T *gb, i64 n, i64 c_out, i64 P, i64 o0) {
    const i64 o = o0 + blockIdx.x;
    ACC acc = ACC(0);
    for (i64 s = 0; s < n; s++) {
        const T *row = gy + (s * c_out + o) * P;
        for (i64 p = threadIdx.x; p < P; p += blockDim.x) acc += (ACC)row[p];
    }
    acc = warp_sum(acc);
    __shared__ ACC part[8];
    if ((threadIdx.x & 31) == 0) part[threadIdx.x / 32] = acc;
    __syncthreads();
    if (threadIdx.x == 0) {
        ACC s = ACC(0);
        for (int w = 0; w < (int)(blockDim.x / 32); w++) s += part[w];
        gb[o] = (T)s;
    }
}
