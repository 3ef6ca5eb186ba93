/* cpu_random.c: the CPU random fill (the backend's `random` slot): Philox4x32-10 blocks computed
 * 16 (AVX-512) or 8 (AVX2) at a time, one lane per counter, then turned into numbers.
 *
 * The numbers are those of the scalar generator (tensor/random.c, aqa_philox4x32) bit for bit:
 * element i of a uniform or integer draw is word i % 4 of block offset + i / 4, element i of a
 * normal draw uses words (i % 2) * 2 and (i % 2) * 2 + 1 of block offset + i / 2 (Box-Muller), on
 * any vector width and thread count.  Each block is computed once for all the elements it serves
 * (the scalar fill computed it once per element). */
#include <math.h>
#include <string.h>

#include "tensor/cpu-impl.h"
#include "tensor/tensor-impl.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define RANDOM_SIMD 1
#else
#define RANDOM_SIMD 0
#endif

/* Philox4x32-10's multipliers and Weyl increments (Salmon et al., SC 2011). */
#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

/* Blocks computed per chunk (the words of CHUNK blocks stay in L1). */
#define CHUNK 256

#if RANDOM_SIMD
/* The body of philox16 / philox8: L blocks (counters first .. first + L - 1) into w[0 .. 4L),
 * block j's words at w[4j .. 4j + 3], one lane per block, with the vector operations V_* of the
 * instantiation.  The high halves of the 32x32 products: even lanes from the even products, odd
 * lanes from the products of the lanes shifted down. */
#define PHILOX_LANES_BODY(L)                                                                          \
    uint32_t lo[L], hi[L];                                                                            \
    for (int j = 0; j < L; j++) {                                                                     \
        uint64_t c = first + (uint64_t)j;                                                             \
        lo[j] = (uint32_t)c;                                                                          \
        hi[j] = (uint32_t)(c >> 32);                                                                  \
    }                                                                                                 \
    V_T c0 = V_LOAD(lo), c1 = V_LOAD(hi), c2 = V_ZERO(), c3 = V_ZERO();                               \
    V_T m0 = V_SET1((int)PHILOX_M0), m1 = V_SET1((int)PHILOX_M1);                                     \
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);                                          \
    for (int r = 0; r < 10; r++) {                                                                    \
        V_T hi0 = V_BLEND_ODD(V_SRLI64(V_MULU(c0, m0), 32), V_MULU(V_SRLI64(c0, 32), m0));           \
        V_T hi2 = V_BLEND_ODD(V_SRLI64(V_MULU(c2, m1), 32), V_MULU(V_SRLI64(c2, 32), m1));           \
        V_T lo0 = V_MULLO(c0, m0), lo2 = V_MULLO(c2, m1);                                             \
        V_T n0 = V_XOR(V_XOR(hi2, c1), V_SET1((int)k0)), n2 = V_XOR(V_XOR(hi0, c3), V_SET1((int)k1)); \
        c1 = lo2;                                                                                     \
        c3 = lo0;                                                                                     \
        c0 = n0;                                                                                      \
        c2 = n2;                                                                                      \
        k0 += PHILOX_W0;                                                                              \
        k1 += PHILOX_W1;                                                                              \
    }                                                                                                 \
    /* 4 x L words -> L blocks of 4: within each 128-bit lane the unpacks give 4 whole blocks */     \
    V_T t0 = V_UNLO32(c0, c1), t1 = V_UNHI32(c0, c1), t2 = V_UNLO32(c2, c3), t3 = V_UNHI32(c2, c3);   \
    V_T u[4] = {V_UNLO64(t0, t2), V_UNHI64(t0, t2), V_UNLO64(t1, t3), V_UNHI64(t1, t3)};              \
    uint32_t tmp[4][L];                                                                               \
    for (int k = 0; k < 4; k++) V_STORE(tmp[k], u[k]);                                                \
    for (int l = 0; l < L / 4; l++)                                                                   \
        for (int k = 0; k < 4; k++) memcpy(w + (4 * l + k) * 4, tmp[k] + 4 * l, 16);

#define V_T __m512i
#define V_LOAD(p) _mm512_loadu_si512(p)
#define V_STORE(p, v) _mm512_storeu_si512(p, v)
#define V_ZERO() _mm512_setzero_si512()
#define V_SET1(x) _mm512_set1_epi32(x)
#define V_MULU(a, b) _mm512_mul_epu32(a, b)
#define V_SRLI64(a, n) _mm512_srli_epi64(a, n)
#define V_BLEND_ODD(even, odd) _mm512_mask_blend_epi32(0xAAAA, even, odd)
#define V_MULLO(a, b) _mm512_mullo_epi32(a, b)
#define V_XOR(a, b) _mm512_xor_si512(a, b)
#define V_UNLO32(a, b) _mm512_unpacklo_epi32(a, b)
#define V_UNHI32(a, b) _mm512_unpackhi_epi32(a, b)
#define V_UNLO64(a, b) _mm512_unpacklo_epi64(a, b)
#define V_UNHI64(a, b) _mm512_unpackhi_epi64(a, b)
__attribute__((target("avx512f,avx512dq,avx512bw,avx512vl"))) static void philox16(uint64_t key, uint64_t first,
                                                                                    uint32_t *w) {
    PHILOX_LANES_BODY(16)
}
#undef V_T
#undef V_LOAD
#undef V_STORE
#undef V_ZERO
#undef V_SET1
#undef V_MULU
#undef V_SRLI64
#undef V_BLEND_ODD
#undef V_MULLO
#undef V_XOR
#undef V_UNLO32
#undef V_UNHI32
#undef V_UNLO64
#undef V_UNHI64
#define V_T __m256i
#define V_LOAD(p) _mm256_loadu_si256((const __m256i *)(p))
#define V_STORE(p, v) _mm256_storeu_si256((__m256i *)(p), v)
#define V_ZERO() _mm256_setzero_si256()
#define V_SET1(x) _mm256_set1_epi32(x)
#define V_MULU(a, b) _mm256_mul_epu32(a, b)
#define V_SRLI64(a, n) _mm256_srli_epi64(a, n)
#define V_BLEND_ODD(even, odd) _mm256_blend_epi32(even, odd, 0xAA)
#define V_MULLO(a, b) _mm256_mullo_epi32(a, b)
#define V_XOR(a, b) _mm256_xor_si256(a, b)
#define V_UNLO32(a, b) _mm256_unpacklo_epi32(a, b)
#define V_UNHI32(a, b) _mm256_unpackhi_epi32(a, b)
#define V_UNLO64(a, b) _mm256_unpacklo_epi64(a, b)
#define V_UNHI64(a, b) _mm256_unpackhi_epi64(a, b)
__attribute__((target("avx2,fma"))) static void philox8(uint64_t key, uint64_t first, uint32_t *w) {
    PHILOX_LANES_BODY(8)
}
#endif

/* Blocks first .. first + nb - 1 of the key into w (4 words each, block by block). */
static void philox_blocks(uint64_t key, uint64_t first, int64_t nb, uint32_t *w) {
    int64_t j = 0;
#if RANDOM_SIMD
    aqa_cpu_isa isa = aqa__cpu_isa();
    if (isa >= AQA_ISA_AVX512)
        for (; j + 16 <= nb; j += 16) philox16(key, first + (uint64_t)j, w + 4 * j);
    if (isa >= AQA_ISA_AVX2)
        for (; j + 8 <= nb; j += 8) philox8(key, first + (uint64_t)j, w + 4 * j);
#endif
    for (; j < nb; j++) aqa_philox4x32(key, first + (uint64_t)j, w + 4 * j);
}

static double uniform01(uint32_t x) { return (double)x * (1.0 / 4294967296.0); }

static double normal_from(uint32_t a, uint32_t b) {
    double u1 = ((double)a + 0.5) * (1.0 / 4294967296.0); /* (0, 1): log is finite */
    double u2 = uniform01(b);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Element e of the fill, as a double, from its word(s) (w points at the word of element e for
 * uniform and integer draws, at the pair's first word for normal draws). */
static inline double value(int kind, aqa_dtype dt, const uint32_t *w, double a, double b) {
    if (kind == 1) return a + b * normal_from(w[0], w[1]);
    if (kind == 0)
        return dt == AQA_F32 ? a + (b - a) * ((double)(w[0] >> 8) * (1.0 / 16777216.0)) : a + (b - a) * uniform01(w[0]);
    uint64_t range = (uint64_t)(b - a);
    return a + (double)(range ? w[0] % range : 0);
}

/* Elements [e0, e1) of t from the words of their blocks (w[0] = first word of block e0 / per). */
static void convert(aqa_tensor *t, int kind, double a, double b, const uint32_t *w, int64_t e0, int64_t e1) {
    char *base = aqa__ptr(t);
    if (kind == 0 && t->dtype == AQA_F32) { /* the dropout and rand path: one vectorisable loop */
        float *o = (float *)base + e0;
        for (int64_t i = 0; i < e1 - e0; i++)
            o[i] = (float)(a + (b - a) * ((double)(w[i] >> 8) * (1.0 / 16777216.0)));
        return;
    }
    for (int64_t e = e0; e < e1; e++) {
        /* normal: element e uses the pair e % 2 of block e / 2, i.e. words 2e and 2e + 1 counted
         * from the chunk's first block (e0 is even) */
        const uint32_t *we = kind == 1 ? w + 2 * (e - e0) : w + (e - e0);
        double v = value(kind, t->dtype, we, a, b);
        switch (t->dtype) {
        case AQA_F32: ((float *)base)[e] = (float)v; break;
        case AQA_F64: ((double *)base)[e] = v; break;
        case AQA_I64: ((int64_t *)base)[e] = (int64_t)v; break;
        case AQA_BOOL: ((uint8_t *)base)[e] = v != 0; break;
        }
    }
}

aqa_status aqa__cpu_random(aqa_tensor *t, int kind, double a, double b, uint64_t seed, uint64_t offset) {
    if (!aqa_is_contiguous(t)) return aqa_fail(AQA_EINVAL, "cpu random: tensor must be contiguous");
    const int64_t n = aqa_numel(t);
    const int64_t per = kind == 1 ? 2 : 4; /* elements per block */
    const int64_t blocks = (n + per - 1) / per, chunks = (blocks + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t c = 0; c < chunks; c++) {
        uint32_t w[4 * CHUNK];
        int64_t b0 = c * CHUNK, nb = blocks - b0 < CHUNK ? blocks - b0 : CHUNK;
        philox_blocks(seed, offset + (uint64_t)b0, nb, w);
        int64_t e0 = b0 * per, e1 = e0 + nb * per < n ? e0 + nb * per : n;
        convert(t, kind, a, b, w, e0, e1);
    }
    return AQA_OK;
}
