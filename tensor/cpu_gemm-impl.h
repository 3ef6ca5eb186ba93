/* cpu_gemm-impl.h: aqa's own float32 GEMM for kernels whose operands are not plain matrices.
 *
 * C [m x n] = A [m x k] B [k x n] (+ bias per row, or + C), where A and B are never read by the
 * driver: two packing callbacks write blocks of them straight into the microkernel's panel layout.
 * A convolution hands in packers that read the input volume (an implicit vol2col: no column
 * buffer), so its columns are read once into cache-sized panels instead of being written out 27
 * times and packed again by BLAS.  The microkernels (AVX-512 and AVX2+FMA, chosen at run time,
 * tensor/cpu_gemm_kernels.c) keep an MR x NR tile of C in registers; the driver
 * (tensor/cpu_gemm.c) blocks k and n for the caches and runs the blocks on the OpenMP team, so a
 * kernel built on it never wakes OpenBLAS's threads.
 *
 * Panel layouts: an A panel holds MR rows over kc: element (i, kk) at dst[kk * MR + i]; a B
 * panel holds NR columns over kc: element (kk, j) at dst[kk * NR + j].  Rows past m and columns
 * past n must be written as zeros.  Private to libaqa. */
#ifndef AQA_CPU_GEMM_IMPL_H
#define AQA_CPU_GEMM_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"

/* Writes rows [i0, i0 + mc) (mc a multiple of mr) of A over [k0, k0 + kc) as mc / mr panels of
 * mr rows, one after the other (kc * mr floats each), into dst. */
typedef void (*aqa_gemm_pack_a_fn)(const void *ctx, int64_t i0, int64_t mc, int64_t k0, int64_t kc, int mr,
                                   float *dst);
/* Writes columns [j0, j0 + nc) (nc a multiple of nr) of B over [k0, k0 + kc) as nc / nr panels
 * of nr columns (kc * nr floats each) into dst. */
typedef void (*aqa_gemm_pack_b_fn)(const void *ctx, int64_t k0, int64_t kc, int64_t j0, int64_t nc, int nr,
                                   float *dst);

/* One product.  Column j of C is at c + (j / c_seg) * c_seg_stride + j % c_seg, and row i at
 * i * ldc from there: a batch of samples laid out [n, m, seg] is one product whose columns
 * run over the samples (c_seg = seg, c_seg_stride = m * seg); a plain matrix has c_seg = n. */
typedef struct aqa_gemm {
    int64_t m, n, k;           /* sizes */
    aqa_gemm_pack_a_fn pack_a; /* writes panels of A */
    aqa_gemm_pack_b_fn pack_b; /* writes panels of B */
    const void *ctx;           /* handed to both packers */
    float *c;                  /* output */
    int64_t ldc;               /* elements between rows of C */
    int64_t c_seg;             /* columns per contiguous segment of C's rows */
    int64_t c_seg_stride;      /* elements between the starts of consecutive segments */
    const float *bias;         /* [m] added to every column (overwrite mode only), or NULL */
    bool accumulate;           /* C += A B instead of C = A B (+ bias) */
} aqa_gemm;

/* The microkernel's tile for this CPU: *mr rows by *nr columns; false when there is none (no
 * AVX2+FMA, or AQA_CPU_ISA=baseline), and then aqa__sgemm must not be called. */
bool aqa__sgemm_tile(int *mr, int *nr);
/* Runs the product on the OpenMP team.  AQA_ENOMEM (recorded) when the panel buffers cannot be
 * allocated. */
aqa_status aqa__sgemm(const aqa_gemm *g);

/* Microkernel: C tile [mv x nv] (mv <= MR, nv <= NR valid) at c (rows ldc apart) = A [MR x kc]
 * * B [kc x NR], plus the tile's old values when acc, else plus bias[0..mv) per row when bias is
 * not NULL (tensor/cpu_gemm_kernels.c).  Step kk reads the MR floats at a + kk * lda and the NR
 * floats at b + kk * ldb (packed panels: lda = MR, ldb = NR; every float read must be readable,
 * the rows and columns past mv and nv may hold anything). */
typedef void (*aqa_sgemm_ukr)(int64_t kc, const float *a, int64_t lda, const float *b, int64_t ldb, float *c,
                              int64_t ldc, int mv, int nv, bool acc, const float *bias);
/* The microkernel for the CPU's ISA level and its tile; NULL below AVX2. */
aqa_sgemm_ukr aqa__sgemm_ukr(int *mr, int *nr);

#endif /* AQA_CPU_GEMM_IMPL_H */
