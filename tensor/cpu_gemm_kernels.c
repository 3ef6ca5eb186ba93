/* cpu_gemm_kernels.c: the float32 GEMM microkernels of tensor/cpu_gemm.c, one per ISA level,
 * each compiled for its own target and chosen at run time (tensor/cpu_isa.c).
 *
 * A microkernel keeps an MR x NR tile of C in vector registers and runs over k: per step it
 * loads NR floats of the B panel (NR / lanes vectors) and broadcasts each of the MR floats of
 * the A panel into one FMA per vector.  AVX-512: 8 x 48 (24 accumulators of 32 registers);
 * AVX2: 6 x 16 (12 of 16).  The tile edges (rows past mv, columns past nv) are never stored;
 * AVX-512 masks the last columns, AVX2 stores through a small buffer. */
#include <string.h>

#include "tensor/cpu-impl.h"
#include "tensor/cpu_gemm-impl.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define MR512 8
#define NV512 3 /* vectors of 16 per row: NR = 48 */

__attribute__((target("avx512f,avx512dq,avx512bw,avx512vl"))) static void ukr_avx512(
    int64_t kc, const float *a, int64_t lda, const float *b, int64_t ldb, float *c, int64_t ldc, int mv, int nv,
    bool acc, const float *bias) {
    __m512 t[MR512][NV512];
#pragma GCC unroll 8
    for (int r = 0; r < MR512; r++)
#pragma GCC unroll 3
        for (int v = 0; v < NV512; v++) t[r][v] = _mm512_setzero_ps();
    /* the tile of C is read at the end: ask for its lines now (rows ldc apart miss the caches) */
    if (acc)
        for (int r = 0; r < mv; r++)
            for (int v = 0; v < NV512; v++) _mm_prefetch((const char *)(c + r * ldc + 16 * v), _MM_HINT_T0);
    for (int64_t kk = 0; kk < kc; kk++) {
        __m512 bv[NV512];
#pragma GCC unroll 3
        for (int v = 0; v < NV512; v++) bv[v] = _mm512_loadu_ps(b + 16 * v);
#pragma GCC unroll 8
        for (int r = 0; r < MR512; r++) {
            __m512 ar = _mm512_set1_ps(a[r]);
#pragma GCC unroll 3
            for (int v = 0; v < NV512; v++) t[r][v] = _mm512_fmadd_ps(ar, bv[v], t[r][v]);
        }
        a += lda;
        b += ldb;
    }
    __mmask16 mask[NV512];
    for (int v = 0; v < NV512; v++) {
        int left = nv - 16 * v;
        mask[v] = left >= 16 ? (__mmask16)0xFFFF : left <= 0 ? (__mmask16)0 : (__mmask16)((1u << left) - 1);
    }
#pragma GCC unroll 8
    for (int r = 0; r < MR512; r++) {
        if (r >= mv) break;
        float *row = c + r * ldc;
#pragma GCC unroll 3
        for (int v = 0; v < NV512; v++) {
            __m512 x = t[r][v];
            if (acc) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(mask[v], row + 16 * v));
            else if (bias) x = _mm512_add_ps(x, _mm512_set1_ps(bias[r]));
            _mm512_mask_storeu_ps(row + 16 * v, mask[v], x);
        }
    }
}

#define MR256 6
#define NV256 2 /* vectors of 8 per row: NR = 16 */

__attribute__((target("avx2,fma"))) static void ukr_avx2(int64_t kc, const float *a, int64_t lda, const float *b,
                                                         int64_t ldb, float *c, int64_t ldc, int mv, int nv, bool acc,
                                                         const float *bias) {
    __m256 t[MR256][NV256];
#pragma GCC unroll 6
    for (int r = 0; r < MR256; r++)
#pragma GCC unroll 2
        for (int v = 0; v < NV256; v++) t[r][v] = _mm256_setzero_ps();
    for (int64_t kk = 0; kk < kc; kk++) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 6
        for (int r = 0; r < MR256; r++) {
            __m256 ar = _mm256_broadcast_ss(a + r);
            t[r][0] = _mm256_fmadd_ps(ar, b0, t[r][0]);
            t[r][1] = _mm256_fmadd_ps(ar, b1, t[r][1]);
        }
        a += lda;
        b += ldb;
    }
    /* the accumulators leave through a buffer with constant indices only: a runtime row index
     * into t would make GCC keep t in memory, with a spill per FMA in the loop above */
    float buf[MR256][8 * NV256];
#pragma GCC unroll 6
    for (int r = 0; r < MR256; r++)
#pragma GCC unroll 2
        for (int v = 0; v < NV256; v++) _mm256_storeu_ps(&buf[r][8 * v], t[r][v]);
    for (int r = 0; r < mv; r++) {
        float *row = c + r * ldc;
        if (nv == 8 * NV256) {
            for (int v = 0; v < NV256; v++) {
                __m256 x = _mm256_loadu_ps(&buf[r][8 * v]);
                if (acc) x = _mm256_add_ps(x, _mm256_loadu_ps(row + 8 * v));
                else if (bias) x = _mm256_add_ps(x, _mm256_set1_ps(bias[r]));
                _mm256_storeu_ps(row + 8 * v, x);
            }
        } else {
            for (int j = 0; j < nv; j++) row[j] = buf[r][j] + (acc ? row[j] : bias ? bias[r] : 0.0f);
        }
    }
}
#endif

aqa_sgemm_ukr aqa__sgemm_ukr(int *mr, int *nr) {
#if defined(__x86_64__) && defined(__GNUC__)
    aqa_cpu_isa isa = aqa__cpu_isa();
    if (isa >= AQA_ISA_AVX512) {
        *mr = MR512;
        *nr = 16 * NV512;
        return ukr_avx512;
    }
    if (isa >= AQA_ISA_AVX2) {
        *mr = MR256;
        *nr = 8 * NV256;
        return ukr_avx2;
    }
#endif
    *mr = *nr = 0;
    return NULL;
}
