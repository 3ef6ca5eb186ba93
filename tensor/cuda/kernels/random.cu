// random.cu: Philox4x32-10 random fill of a contiguous tensor, the same stream as the CPU's
// aqa__cpu_random (tensor/cpu_copy.c) and aqa_philox4x32 (tensor/random.c): kind 0 uniform
// [a, b), 1 normal (mean a, std b), 2 integers [a, b).  Uniform/integer element i uses block
// offset + i / 4, word i % 4; normal element i uses block offset + i / 2, words 2(i % 2) and
// 2(i % 2) + 1 through Box-Muller's cosine branch; all in double, as on the CPU.
__device__ __forceinline__ void philox(u64 key, u64 counter, u32 *out) {
    u32 c0 = (u32)counter, c1 = (u32)(counter >> 32), c2 = 0, c3 = 0;
    u32 k0 = (u32)key, k1 = (u32)(key >> 32);
#pragma unroll
    for (int round = 0; round < 10; round++) {
        u64 p0 = (u64)0xD2511F53u * c0, p1 = (u64)0xCD9E8D57u * c2;
        u32 n0 = (u32)(p1 >> 32) ^ c1 ^ k0;
        u32 n2 = (u32)(p0 >> 32) ^ c3 ^ k1;
        c1 = (u32)p1;
        c3 = (u32)p0;
        c0 = n0;
        c2 = n2;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}
__device__ __forceinline__ double random_value(i64 i, int kind, bool is_f32, double a, double b, u64 seed,
                                               u64 offset) {
    u32 w[4];
    if (kind == 1) {
        philox(seed, offset + (u64)i / 2, w);
        int j = (int)(i % 2) * 2;
        double u1 = ((double)w[j] + 0.5) * (1.0 / 4294967296.0);
        double u2 = (double)w[j + 1] * (1.0 / 4294967296.0);
        double z = __dmul_rn(sqrt(-2.0 * log(u1)), cos(__dmul_rn(6.283185307179586, u2)));
        return __dadd_rn(a, __dmul_rn(b, z));
    }
    philox(seed, offset + (u64)i / 4, w);
    u32 x = w[i % 4];
    // _rn intrinsics: no fused multiply-add, so the rounding is the CPU's
    if (kind == 0)
        return is_f32 ? __dadd_rn(a, __dmul_rn(b - a, (double)(x >> 8) * (1.0 / 16777216.0)))
                      : __dadd_rn(a, __dmul_rn(b - a, (double)x * (1.0 / 4294967296.0)));
    u64 range = (u64)(b - a);
    return a + (double)(range ? x % range : 0);
}
#define RANDOM_KERNEL(NAME, D, IS_F32, CONV)                                                         \
    extern "C" __global__ void __launch_bounds__(256) NAME(D *out, i64 n, int kind, double a, double b, \
                                                           u64 seed, u64 offset) {                   \
        i64 step = (i64)gridDim.x * blockDim.x;                                                      \
        for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {                 \
            double v = random_value(i, kind, IS_F32, a, b, seed, offset);                            \
            out[i] = CONV;                                                                           \
        }                                                                                            \
    }
RANDOM_KERNEL(random_f32, float, true, (float)v)
RANDOM_KERNEL(random_f64, double, false, v)
RANDOM_KERNEL(random_i64, i64, false, (i64)v)
RANDOM_KERNEL(random_b8, u8, false, (u8)(v != 0.0))
