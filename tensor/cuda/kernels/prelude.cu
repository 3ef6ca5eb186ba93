// prelude.cu: types and helpers shared by every aqa CUDA program (compiled by NVRTC, C++17).
// The including program has already defined its parameters (T, ND lists, op numbers) above.
typedef long long i64;
typedef unsigned long long u64;
typedef unsigned int u32;
typedef unsigned char u8;
#define MAXD 8
#define INF_F __int_as_float(0x7f800000)
#define INF_D __longlong_as_double(0x7ff0000000000000ll)

// Merged dims (innermost last) and element strides of up to 4 operands (aqa_cuda_geo).
struct Geo {
    i64 shape[MAXD];
    i64 stride[4][MAXD];
};

// Element offsets of linear index i in each operand. SMALL: i and the sizes fit 32 bits, so the
// divisions are 32-bit (64-bit division is a long software sequence on the GPU).
template <int ND, int NOPS, bool SMALL>
__device__ __forceinline__ void geo_offsets(const Geo &g, i64 i, i64 *off) {
#pragma unroll
    for (int k = 0; k < NOPS; k++) off[k] = 0;
#pragma unroll
    for (int d = ND - 1; d >= 0; d--) {
        i64 r, q;
        if (d == 0) {
            r = i;
            q = 0;
        } else if (SMALL) {
            u32 s = (u32)g.shape[d], ii = (u32)i;
            u32 qq = ii / s;
            q = qq;
            r = ii - qq * s;
        } else {
            q = i / g.shape[d];
            r = i - q * g.shape[d];
        }
#pragma unroll
        for (int k = 0; k < NOPS; k++) off[k] += r * g.stride[k][d];
        i = q;
    }
}

// Runs f(off) for every element, grid-stride.  ND == 0: all operands contiguous.
template <int ND, int NOPS, typename F>
__device__ __forceinline__ void ew_run(const Geo &g, i64 n, F f) {
    i64 step = (i64)gridDim.x * blockDim.x;
    i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (ND == 0) {
        for (; i < n; i += step) {
            i64 off[NOPS];
#pragma unroll
            for (int k = 0; k < NOPS; k++) off[k] = i;
            f(off);
        }
    } else if (n <= 0x7fffffffll) {
        for (; i < n; i += step) {
            i64 off[NOPS];
            geo_offsets<ND, NOPS, true>(g, i, off);
            f(off);
        }
    } else {
        for (; i < n; i += step) {
            i64 off[NOPS];
            geo_offsets<ND, NOPS, false>(g, i, off);
            f(off);
        }
    }
}

// Kernel instances: NAME_c (contiguous), NAME_nd1 .. NAME_nd4 for that many merged dims, and
// NAME_nd8, which the host uses for 5 to 8 dims by padding the geometry with leading size-1 dims
// (more specialisations cost compile time for shapes that hardly occur after merging).
// PARAMS and ARGS name function-like macros (so their commas survive being passed along).
#define INST_ONE(NAME, SUFFIX, ND, BODY, PARAMS, ARGS) \
    extern "C" __global__ void __launch_bounds__(256) NAME##SUFFIX(PARAMS()) { BODY<ND>(ARGS()); }
#define INST_ALL(NAME, BODY, PARAMS, ARGS)        \
    INST_ONE(NAME, _c, 0, BODY, PARAMS, ARGS)     \
    INST_ONE(NAME, _nd1, 1, BODY, PARAMS, ARGS)   \
    INST_ONE(NAME, _nd2, 2, BODY, PARAMS, ARGS)   \
    INST_ONE(NAME, _nd3, 3, BODY, PARAMS, ARGS)   \
    INST_ONE(NAME, _nd4, 4, BODY, PARAMS, ARGS)   \
    INST_ONE(NAME, _nd8, 8, BODY, PARAMS, ARGS)

// Float/double overloads of the math functions the kernels use.
__device__ __forceinline__ float m_exp(float x) { return expf(x); }
__device__ __forceinline__ double m_exp(double x) { return exp(x); }
__device__ __forceinline__ float m_log(float x) { return logf(x); }
__device__ __forceinline__ double m_log(double x) { return log(x); }
__device__ __forceinline__ float m_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double m_sqrt(double x) { return sqrt(x); }
__device__ __forceinline__ float m_tanh(float x) { return tanhf(x); }
__device__ __forceinline__ double m_tanh(double x) { return tanh(x); }
__device__ __forceinline__ float m_log1p(float x) { return log1pf(x); }
__device__ __forceinline__ double m_log1p(double x) { return log1p(x); }
__device__ __forceinline__ float m_erfc(float x) { return erfcf(x); }
__device__ __forceinline__ double m_erfc(double x) { return erfc(x); }
__device__ __forceinline__ float m_pow(float x, float y) { return powf(x, y); }
__device__ __forceinline__ double m_pow(double x, double y) { return pow(x, y); }
__device__ __forceinline__ float m_abs(float x) { return fabsf(x); }
__device__ __forceinline__ double m_abs(double x) { return fabs(x); }

// Combines v over a group of G lanes with f (G = 32: a warp; G > 32: the whole block, a multiple
// of 32); every lane gets the result.  With G > 32 all threads of the block must call it (it
// synchronises).  The order of combination is fixed, so results are reproducible.
template <int G, typename A, typename F>
__device__ __forceinline__ A group_combine(A v, F f) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = f(v, __shfl_xor_sync(0xffffffffu, v, o));
    if (G > 32) {
        __shared__ A sh[G / 32];
        __syncthreads();
        if ((threadIdx.x & 31) == 0) sh[threadIdx.x / 32] = v;
        __syncthreads();
        v = sh[0];
#pragma unroll
        for (int w = 1; w < G / 32; w++) v = f(v, sh[w]);
    }
    return v;
}

template <int G, typename A>
__device__ __forceinline__ A group_sum(A v) {
    return group_combine<G>(v, [](A a, A b) { return a + b; });
}

// Warp-level sum (all 32 lanes take part).
template <typename A>
__device__ __forceinline__ A warp_sum(A v) {
    return group_sum<32>(v);
}
