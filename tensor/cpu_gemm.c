/* cpu_gemm.c: the driver of aqa's packed float32 GEMM (tensor/cpu_gemm-impl.h).
 *
 * Blocking (for one core's caches: 32 KiB L1, about 1 MiB L2): k in blocks of KC, n in blocks of
 * about NC_TARGET columns.  A is packed for all rows over a stretch of k (at most A_BYTES, often
 * all of k) once per stretch and shared by the team; each task (a block of columns, and of rows
 * when there are too few column blocks for the team) packs its KC x nc block of B into its
 * thread's buffer and runs the microkernel over the block's tiles with the A panel of the tile
 * row in L1 and the B block in L2.  C tiles that straddle two segments of C's columns (two
 * samples of a batch) go through a small buffer. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/cpu-impl.h"
#include "tensor/cpu_gemm-impl.h"

#define KC 256
#define NC_TARGET 288
/* Bound of the shared packed-A buffer (bytes); k is processed in stretches that fit. */
#define A_BYTES ((int64_t)8 << 20)
/* Products below this many multiply-adds run on the calling thread only. */
#define PAR_MIN_MACS ((int64_t)1 << 21)

bool aqa__sgemm_tile(int *mr, int *nr) { return aqa__sgemm_ukr(mr, nr) != NULL; }

/* The C tile at rows [i, i + mv) and columns [j, j + nv): direct when the columns lie in one
 * segment, else computed in tmp and copied out column by column. */
static void run_tile(const aqa_gemm *g, aqa_sgemm_ukr ukr, int mr, int nr, int64_t kc, const float *ap, const float *bp,
                     int64_t i, int mv, int64_t j, int nv, bool first) {
    const float *bias = first && g->bias ? g->bias + i : NULL;
    int64_t s0 = j / g->c_seg, s1 = (j + nv - 1) / g->c_seg;
    if (s0 == s1) {
        float *c = g->c + s0 * g->c_seg_stride + j % g->c_seg + i * g->ldc;
        ukr(kc, ap, mr, bp, nr, c, g->ldc, mv, nv, !first, bias);
        return;
    }
    float tmp[16 * 64]; /* MR <= 16, NR <= 64 */
    float *col[64];
    for (int jj = 0; jj < nv; jj++) {
        int64_t jc = j + jj;
        col[jj] = g->c + (jc / g->c_seg) * g->c_seg_stride + jc % g->c_seg + i * g->ldc;
    }
    if (!first)
        for (int r = 0; r < mv; r++)
            for (int jj = 0; jj < nv; jj++) tmp[r * nr + jj] = col[jj][r * g->ldc];
    ukr(kc, ap, mr, bp, nr, tmp, nr, mv, nv, !first, bias);
    for (int r = 0; r < mv; r++)
        for (int jj = 0; jj < nv; jj++) col[jj][r * g->ldc] = tmp[r * nr + jj];
}

aqa_status aqa__sgemm(const aqa_gemm *g) {
    int mr, nr;
    aqa_sgemm_ukr ukr = aqa__sgemm_ukr(&mr, &nr);
    if (!ukr) return aqa_fail(AQA_EUNSUPPORTED, "sgemm: no microkernel for this CPU");
    if (g->m <= 0 || g->n <= 0) return AQA_OK;
    const int64_t mp = (g->m + mr - 1) / mr * mr; /* rows rounded up to whole panels */
    const int64_t nc = NC_TARGET >= nr ? NC_TARGET / nr * nr : nr;
    int64_t ks = A_BYTES / (int64_t)sizeof(float) / mp / KC * KC;
    if (ks < KC) ks = KC;
    if (g->k == 0) { /* empty sum: C = bias (or unchanged) */
        if (g->accumulate) return AQA_OK;
        for (int64_t j = 0; j < g->n; j++) {
            float *c = g->c + (j / g->c_seg) * g->c_seg_stride + j % g->c_seg;
            for (int64_t i = 0; i < g->m; i++) c[i * g->ldc] = g->bias ? g->bias[i] : 0.0f;
        }
        return AQA_OK;
    }
    if (ks > g->k) ks = (g->k + KC - 1) / KC * KC;
    const bool par = g->m * g->n * g->k >= PAR_MIN_MACS;
    const int nth = par ? omp_get_max_threads() : 1;
    /* tasks: column blocks, times row blocks when the column blocks alone are too few */
    const int64_t nblk = (g->n + nc - 1) / nc;
    int64_t mblk = nblk >= 2 * nth ? 1 : (2 * nth + nblk - 1) / nblk;
    int64_t mc = (mp / mr + mblk - 1) / mblk * mr;
    mblk = (mp + mc - 1) / mc;
    const int64_t tasks = nblk * mblk;
    float *abuf = aligned_alloc(64, sizeof(float) * (size_t)(mp * ks));
    float *bbuf = aligned_alloc(64, sizeof(float) * (size_t)(KC * nc) * (size_t)nth);
    if (!abuf || !bbuf) {
        free(abuf);
        free(bbuf);
        return aqa_fail(AQA_ENOMEM, "sgemm: out of memory for the packed panels (%lld x %lld x %lld)", (long long)g->m,
                        (long long)g->n, (long long)g->k);
    }
#pragma omp parallel num_threads(nth) if (par)
    {
        float *bp = bbuf + (size_t)omp_get_thread_num() * (size_t)(KC * nc);
        for (int64_t k0 = 0; k0 < g->k; k0 += ks) {
            const int64_t klen = g->k - k0 < ks ? g->k - k0 : ks;
            const int64_t kblocks = (klen + KC - 1) / KC, panels = mp / mr;
            /* A over [k0, k0 + klen): block kb's panels start at kb * KC * mp */
#pragma omp for schedule(static)
            for (int64_t t = 0; t < kblocks * panels; t++) {
                int64_t kb = t / panels, ip = t % panels, pc = k0 + kb * KC;
                int64_t kc = g->k - pc < KC ? g->k - pc : KC;
                g->pack_a(g->ctx, ip * mr, mr, pc, kc, mr, abuf + kb * KC * mp + ip * mr * kc);
            }
#pragma omp for schedule(dynamic, 1)
            for (int64_t t = 0; t < tasks; t++) {
                const int64_t j0 = (t / mblk) * nc, i0 = (t % mblk) * mc;
                const int64_t ncv = g->n - j0 < nc ? g->n - j0 : nc, ncr = (ncv + nr - 1) / nr * nr;
                const int64_t i1 = i0 + mc < g->m ? i0 + mc : g->m;
                for (int64_t kb = 0; kb < kblocks; kb++) {
                    const int64_t pc = k0 + kb * KC, kc = g->k - pc < KC ? g->k - pc : KC;
                    const bool first = !g->accumulate && pc == 0;
                    g->pack_b(g->ctx, pc, kc, j0, ncr, nr, bp);
                    for (int64_t i = i0; i < i1; i += mr) {
                        const float *ap = abuf + kb * KC * mp + i * kc;
                        int mv = g->m - i < mr ? (int)(g->m - i) : mr;
                        for (int64_t jj = 0; jj < ncv; jj += nr) {
                            int nv = ncv - jj < nr ? (int)(ncv - jj) : nr;
                            run_tile(g, ukr, mr, nr, kc, ap, bp + jj * kc, i, mv, j0 + jj, nv, first);
                        }
                    }
                }
            }
        }
    }
    free(abuf);
    free(bbuf);
    return AQA_OK;
}
