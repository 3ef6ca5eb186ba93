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
/* 16 blocks (counters first .. first + 15) into w[0 .. 63], block j's words at w[4j .. 4j + 3]. */
__attribute__((target("avx512f,avx512dq,avx512bw,avx512vl"))) static void philox16(uint64_t key, uint64_t first,
                                                                                    uint32_t *w) {
    uint32_t lo[16], hi[16];
    for (int j = 0; j < 16; j++) {
        uint64_t c = first + (uint64_t)j;
        lo[j] = (uint32_t)c;
        hi[j] = (uint32_t)(c >> 32);
    }
    __m512i c0 = _mm512_loadu_si512(lo), c1 = _mm512_loadu_si512(hi);
    __m512i c2 = _mm512_setzero_si512(), c3 = _mm512_setzero_si512();
    __m512i m0 = _mm512_set1_epi32((int)PHILOX_M0), m1 = _mm512_set1_epi32((int)PHILOX_M1);
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int r = 0; r < 10; r++) {
        /* high halves of the 32x32 products: even lanes from the even products, odd lanes from
         * the products of the lanes shifted down */
        __m512i hi0 = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(_mm512_mul_epu32(c0, m0), 32),
                                              _mm512_mul_epu32(_mm512_srli_epi64(c0, 32), m0));
        __m512i hi2 = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(_mm512_mul_epu32(c2, m1), 32),
                                              _mm512_mul_epu32(_mm512_srli_epi64(c2, 32), m1));
        __m512i lo0 = _mm512_mullo_epi32(c0, m0), lo2 = _mm512_mullo_epi32(c2, m1);
        __m512i n0 = _mm512_xor_si512(_mm512_xor_si512(hi2, c1), _mm512_set1_epi32((int)k0));
        __m512i n2 = _mm512_xor_si512(_mm512_xor_si512(hi0, c3), _mm512_set1_epi32((int)k1));
        c1 = lo2;
        c3 = lo0;
        c0 = n0;
        c2 = n2;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    /* 4 x 16 words -> 16 blocks of 4: within each 128-bit lane, the unpacks give blocks 4L..4L+3 */
    __m512i t0 = _mm512_unpacklo_epi32(c0, c1), t1 = _mm512_unpackhi_epi32(c0, c1);
    __m512i t2 = _mm512_unpacklo_epi32(c2, c3), t3 = _mm512_unpackhi_epi32(c2, c3);
    __m512i u[4] = {_mm512_unpacklo_epi64(t0, t2), _mm512_unpackhi_epi64(t0, t2), _mm512_unpacklo_epi64(t1, t3),
                    _mm512_unpackhi_epi64(t1, t3)};
    uint32_t tmp[4][16];
    for (int k = 0; k < 4; k++) _mm512_storeu_si512(tmp[k], u[k]);
    for (int l = 0; l < 4; l++)
        for (int k = 0; k < 4; k++) memcpy(w + (4 * l + k) * 4, tmp[k] + 4 * l, 16);
}

/* 8 blocks into w[0 .. 31], as philox16. */
__attribute__((target("avx2,fma"))) static void philox8(uint64_t key, uint64_t first, uint32_t *w) {
    uint32_t lo[8], hi[8];
    for (int j = 0; j < 8; j++) {
        uint64_t c = first + (uint64_t)j;
        lo[j] = (uint32_t)c;
        hi[j] = (uint32_t)(c >> 32);
    }
    __m256i c0 = _mm256_loadu_si256((const __m256i *)lo), c1 = _mm256_loadu_si256((const __m256i *)hi);
    __m256i c2 = _mm256_setzero_si256(), c3 = _mm256_setzero_si256();
    __m256i m0 = _mm256_set1_epi32((int)PHILOX_M0), m1 = _mm256_set1_epi32((int)PHILOX_M1);
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int r = 0; r < 10; r++) {
        __m256i hi0 = _mm256_blend_epi32(_mm256_srli_epi64(_mm256_mul_epu32(c0, m0), 32),
                                         _mm256_mul_epu32(_mm256_srli_epi64(c0, 32), m0), 0xAA);
        __m256i hi2 = _mm256_blend_epi32(_mm256_srli_epi64(_mm256_mul_epu32(c2, m1), 32),
                                         _mm256_mul_epu32(_mm256_srli_epi64(c2, 32), m1), 0xAA);
        __m256i lo0 = _mm256_mullo_epi32(c0, m0), lo2 = _mm256_mullo_epi32(c2, m1);
        __m256i n0 = _mm256_xor_si256(_mm256_xor_si256(hi2, c1), _mm256_set1_epi32((int)k0));
        __m256i n2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32((int)k1));
        c1 = lo2;
        c3 = lo0;
        c0 = n0;
        c2 = n2;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    __m256i t0 = _mm256_unpacklo_epi32(c0, c1), t1 = _mm256_unpackhi_epi32(c0, c1);
    __m256i t2 = _mm256_unpacklo_epi32(c2, c3), t3 = _mm256_unpackhi_epi32(c2, c3);
    __m256i u[4] = {_mm256_unpacklo_epi64(t0, t2), _mm256_unpackhi_epi64(t0, t2), _mm256_unpacklo_epi64(t1, t3),
                    _mm256_unpackhi_epi64(t1, t3)};
    uint32_t tmp[4][8];
    for (int k = 0; k < 4; k++) _mm256_storeu_si256((__m256i *)tmp[k], u[k]);
    for (int l = 0; l < 2; l++)
        for (int k = 0; k < 4; k++) memcpy(w + (4 * l + k) * 4, tmp[k] + 4 * l, 16);
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
