/* cpu_matmul.c: the CPU batched matrix product, c = alpha * a @ b + beta * c, through OpenBLAS.
 *
 * Operands: c contiguous [batch..., m, n]; a [batch..., m, k] and b [batch..., k, n] with the
 * same batch sizes and any strides (stride 0 on broadcast batch dims).  Each matrix is handed
 * to cblas_?gemm on the caller's buffer: one whose last two strides are (ld, 1) goes in as is,
 * one with strides (1, ld) (a transpose or permute) goes in as a BLAS transpose; only a matrix
 * with neither layout is copied (whole, once, into a contiguous buffer; broadcast batch dims stay
 * broadcast, not materialised).  When b is shared by the whole batch and
 * a's batch rows follow one another at a uniform stride ([B, T, D] @ [D, O], the linear-layer
 * case), the batch is folded into one gemm with m' = B * m.  Matrix-vector shapes (m or n of 1)
 * go to gemv.  int64 uses a plain loop.  OpenBLAS itself runs single-threaded: the products are
 * split over aqa's OpenMP team (aqa__cpu_gemm), batches of small products run one per thread. */
#include <cblas.h>
#include <limits.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/cpu-impl.h"
#include "tensor/kernel-shared.h"
#include "tensor/tensor-impl.h"


/* One operand's description for the batch loop. */
typedef struct operand {
    const char *base;          /* first element */
    int64_t rows, cols;        /* matrix size */
    int64_t sr, sc;            /* element strides of the matrix dims */
    layout_kind layout;        /* how BLAS sees it */
    int64_t ld;                /* BLAS leading dimension */
} operand;

/* A contiguous copy of t for BLAS, with t's broadcast (stride 0) batch dims left broadcast
 * rather than materialised: a view of t's shape over a fresh buffer.  Unowned; NULL on error. */
static aqa_tensor *compact_copy(const aqa_tensor *t) {
    int nd = t->ndim;
    int64_t cshape[AQA_MAX_DIMS], vstride[AQA_MAX_DIMS];
    for (int d = 0; d < nd; d++) cshape[d] = (d < nd - 2 && t->stride[d] == 0) ? 1 : t->shape[d];
    aqa_tensor *src = aqa__alias_unowned(t, nd, cshape, t->stride, t->offset);
    aqa_tensor *buf = aqa__new_unowned(nd, cshape, t->dtype, aqa_tensor_device(t));
    aqa_tensor *view = NULL;
    if (src && buf && aqa__cpu_copy(buf, src) == AQA_OK) {
        for (int d = 0; d < nd; d++) vstride[d] = cshape[d] != t->shape[d] ? 0 : buf->stride[d];
        view = aqa__alias_unowned(buf, nd, t->shape, vstride, 0);
    }
    aqa__release(src);
    aqa__release(buf); /* the view holds the storage */
    return view;
}

/* y = alpha * op(M) x + beta * y with M stored row-major [rows, cols] (leading dim ld). */
static void gemv(aqa_dtype dt, bool trans, int64_t rows, int64_t cols, double alpha, const void *mat,
                 int64_t ld, const void *x, int64_t incx, double beta, void *y, int64_t incy) {
    enum CBLAS_TRANSPOSE T = trans ? CblasTrans : CblasNoTrans;
    if (dt == AQA_F32)
        cblas_sgemv(CblasRowMajor, T, (blasint)rows, (blasint)cols, (float)alpha, mat, (blasint)ld, x,
                    (blasint)incx, (float)beta, y, (blasint)incy);
    else
        cblas_dgemv(CblasRowMajor, T, (blasint)rows, (blasint)cols, alpha, mat, (blasint)ld, x,
                    (blasint)incx, beta, y, (blasint)incy);
}

/* c = alpha * op(a) @ op(b) + beta * c, row-major, on the calling thread; a matrix-vector shape
 * goes to gemv, which is several times faster than a gemm with one column. */
static void gemm_serial(aqa_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
                        const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c,
                        int64_t ldc) {
    if (n == 1) { /* c[:, 0] = op(a) @ (column of op(b)) */
        if (ta) gemv(dt, true, k, m, alpha, a, lda, b, tb ? 1 : ldb, beta, c, ldc);
        else gemv(dt, false, m, k, alpha, a, lda, b, tb ? 1 : ldb, beta, c, ldc);
        return;
    }
    if (m == 1) { /* c[0, :] = op(b)^T @ (row of op(a)) */
        if (tb) gemv(dt, false, n, k, alpha, b, ldb, a, ta ? lda : 1, beta, c, 1);
        else gemv(dt, true, k, n, alpha, b, ldb, a, ta ? lda : 1, beta, c, 1);
        return;
    }
    enum CBLAS_TRANSPOSE TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
    if (dt == AQA_F32)
        cblas_sgemm(CblasRowMajor, TA, TB, (blasint)m, (blasint)n, (blasint)k, (float)alpha, a,
                    (blasint)lda, b, (blasint)ldb, (float)beta, c, (blasint)ldc);
    else
        cblas_dgemm(CblasRowMajor, TA, TB, (blasint)m, (blasint)n, (blasint)k, alpha, a,
                    (blasint)lda, b, (blasint)ldb, beta, c, (blasint)ldc);
}

/* Products of at least this many multiply-adds are split over the OpenMP team (below it, waking
 * the sleeping workers costs more than it saves). */
#define SPLIT_MIN_MACS ((int64_t)1 << 22)

/* OpenBLAS runs on the calling thread only, once for the process: aqa splits the products over
 * its own OpenMP team instead, so that one pool of threads serves BLAS and aqa's kernels.  (With
 * OpenBLAS's own pthreads, its workers spin in sched_yield for a while after every product and
 * take the cores from the OpenMP kernels that follow: about a quarter of a 2-thread MVLA
 * training step, docs/performance.md.) */
static void blas_serial_once(void) { openblas_set_num_threads(1); }

void aqa__cpu_gemm(aqa_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const void *a,
                   int64_t lda, const void *b, int64_t ldb, double beta, void *c, int64_t ldc) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, blas_serial_once);
    int nth = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (nth < 2 || m * n * k < SPLIT_MIN_MACS || (m < 64 && n < 64)) {
        gemm_serial(dt, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    /* split the longer side of c into nth parts (multiples of 16 rows or columns) */
    const size_t es = aqa_dtype_size(dt);
    const bool by_rows = m >= n;
    const int64_t len = by_rows ? m : n, part = ((len + nth - 1) / nth + 15) / 16 * 16;
#pragma omp parallel for num_threads(nth) schedule(static)
    for (int t = 0; t < nth; t++) {
        int64_t lo = t * part, hi = lo + part < len ? lo + part : len;
        if (lo >= hi) continue;
        if (by_rows) /* rows lo..hi of op(a) and of c */
            gemm_serial(dt, ta, tb, hi - lo, n, k, alpha, (const char *)a + (size_t)(ta ? lo : lo * lda) * es, lda, b,
                        ldb, beta, (char *)c + (size_t)(lo * ldc) * es, ldc);
        else /* columns lo..hi of op(b) and of c */
            gemm_serial(dt, ta, tb, m, hi - lo, k, alpha, a, lda, (const char *)b + (size_t)(tb ? lo * ldb : lo) * es,
                        ldb, beta, (char *)c + (size_t)lo * es, ldc);
    }
}

/* int64: c = alpha * a @ b + beta * c with strided loops (no BLAS for integers). */
static void matmul_i64(int64_t *c, const char *a, int64_t asr, int64_t asc, const char *b,
                       int64_t bsr, int64_t bsc, int64_t m, int64_t n, int64_t k, int64_t alpha,
                       int64_t beta) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            int64_t acc = 0;
            for (int64_t l = 0; l < k; l++)
                acc += ((const int64_t *)a)[i * asr + l * asc] * ((const int64_t *)b)[l * bsr + j * bsc];
            c[i * n + j] = alpha * acc + (beta == 0 ? 0 : beta * c[i * n + j]);
        }
}


/* Element offsets into a and b of batch bi of c (row-major over c's nd - 2 batch dimensions;
 * a and b are broadcast to c's batch shape, expanded dims with stride 0). */
static inline void batch_offsets(const aqa_tensor *c, const aqa_tensor *a, const aqa_tensor *b, int nd, int64_t bi,
                                 int64_t *aoff, int64_t *boff) {
    int64_t rem = bi;
    *aoff = *boff = 0;
    for (int d = nd - 3; d >= 0; d--) {
        int64_t i = rem % c->shape[d];
        rem /= c->shape[d];
        *aoff += i * a->stride[d];
        *boff += i * b->stride[d];
    }
}

aqa_status aqa__cpu_matmul(aqa_tensor *c, const aqa_tensor *a, const aqa_tensor *b, double alpha,
                           double beta) {
    int nd = c->ndim;
    if (nd < 2 || a->ndim != nd || b->ndim != nd)
        return aqa_fail(AQA_EINVAL, "cpu matmul: operands need the same rank >= 2 (got %d, %d, %d)",
                        a->ndim, b->ndim, nd);
    if (a->dtype != c->dtype || b->dtype != c->dtype || c->dtype == AQA_BOOL)
        return aqa_fail(AQA_EINVAL, "cpu matmul: dtypes %s @ %s -> %s not supported",
                        aqa_dtype_name(a->dtype), aqa_dtype_name(b->dtype), aqa_dtype_name(c->dtype));
    int64_t m = c->shape[nd - 2], n = c->shape[nd - 1], k = a->shape[nd - 1];
    if (a->shape[nd - 2] != m || b->shape[nd - 2] != k || b->shape[nd - 1] != n)
        return aqa_fail(AQA_EINVAL, "cpu matmul: [.., %lld, %lld] @ [.., %lld, %lld] -> [.., %lld, %lld]",
                        (long long)a->shape[nd - 2], (long long)k, (long long)b->shape[nd - 2],
                        (long long)b->shape[nd - 1], (long long)m, (long long)n);
    int64_t batch = 1;
    for (int d = 0; d < nd - 2; d++) {
        if (a->shape[d] != c->shape[d] || b->shape[d] != c->shape[d])
            return aqa_fail(AQA_EINVAL, "cpu matmul: batch dim %d differs (%lld, %lld, %lld)", d,
                            (long long)a->shape[d], (long long)b->shape[d], (long long)c->shape[d]);
        batch *= c->shape[d];
    }
    if (!aqa_is_contiguous(c)) return aqa_fail(AQA_EINVAL, "cpu matmul: output must be contiguous");
    if (batch == 0 || m == 0 || n == 0) return AQA_OK;
    size_t es = aqa_dtype_size(c->dtype);
    if (k == 0) { /* empty sum: c = beta * c */
        int64_t total = batch * m * n;
        for (int64_t i = 0; i < total; i++) {
            if (c->dtype == AQA_F32) {
                float *p = (float *)aqa__ptr(c) + i;
                *p = beta == 0 ? 0.0f : (float)beta * *p;
            } else if (c->dtype == AQA_F64) {
                double *p = (double *)aqa__ptr(c) + i;
                *p = beta == 0 ? 0.0 : beta * *p;
            } else {
                int64_t *p = (int64_t *)aqa__ptr(c) + i;
                *p = beta == 0 ? 0 : (int64_t)beta * *p;
            }
        }
        return AQA_OK;
    }
    if (m > INT_MAX || n > INT_MAX || k > INT_MAX)
        return aqa_fail(AQA_EUNSUPPORTED, "cpu matmul: a dimension exceeds BLAS's int range");

    char *cbase = aqa__ptr(c);
    if (c->dtype == AQA_I64) {
        for (int64_t bi = 0; bi < batch; bi++) {
            int64_t aoff, boff;
            batch_offsets(c, a, b, nd, bi, &aoff, &boff);
            matmul_i64((int64_t *)cbase + bi * m * n, aqa__ptr(a) + aoff * 8, a->stride[nd - 2],
                       a->stride[nd - 1], aqa__ptr(b) + boff * 8, b->stride[nd - 2], b->stride[nd - 1],
                       m, n, k, (int64_t)alpha, (int64_t)beta);
        }
        return AQA_OK;
    }

    operand A = {aqa__ptr(a), m, k, a->stride[nd - 2], a->stride[nd - 1], LAYOUT_NONE, 0};
    operand B = {aqa__ptr(b), k, n, b->stride[nd - 2], b->stride[nd - 1], LAYOUT_NONE, 0};
    A.layout = aqa__matrix_layout(m, k, A.sr, A.sc, &A.ld);
    B.layout = aqa__matrix_layout(k, n, B.sr, B.sc, &B.ld);
    if (A.layout == LAYOUT_NONE || B.layout == LAYOUT_NONE || A.ld > INT_MAX || B.ld > INT_MAX) {
        /* Neither row- nor column-major (a step, an expanded matrix dim, or a huge stride): run
         * on contiguous copies, which also lets the batch fold below apply. */
        bool copy_a = A.layout == LAYOUT_NONE || A.ld > INT_MAX;
        bool copy_b = B.layout == LAYOUT_NONE || B.ld > INT_MAX;
        aqa_tensor *ca = copy_a ? compact_copy(a) : NULL;
        aqa_tensor *cb = copy_b ? compact_copy(b) : NULL;
        aqa_status st;
        if ((copy_a && !ca) || (copy_b && !cb)) /* (never recurse on an uncopied operand) */
            st = aqa_fail(AQA_ENOMEM, "cpu matmul: no memory for a contiguous copy of an operand");
        else
            st = aqa__cpu_matmul(c, ca ? ca : a, cb ? cb : b, alpha, beta);
        aqa__release(ca);
        aqa__release(cb);
        return st;
    }

    /* Fold the batch into m when b is shared and a's rows are uniformly spaced row-major. */
    bool b_shared = true;
    for (int d = 0; d < nd - 2; d++)
        if (c->shape[d] > 1 && b->stride[d] != 0) b_shared = false;
    int64_t row_stride;
    if (batch > 1 && b_shared && B.layout != LAYOUT_NONE && (k == 1 || a->stride[nd - 1] == 1) &&
        aqa__rows_uniform(a, &row_stride) && row_stride >= k && batch * m <= INT_MAX && row_stride <= INT_MAX) {
        aqa__cpu_gemm(c->dtype, false, B.layout == LAYOUT_COL, batch * m, n, k, alpha, A.base, row_stride,
                      B.base, B.ld, beta, cbase, n);
        return AQA_OK;
    }

    /* many small products (attention's heads): one per thread at a time; large ones: each split */
    const bool per_thread = m * n * k < SPLIT_MIN_MACS && batch * m * n * k >= SPLIT_MIN_MACS;
#pragma omp parallel for schedule(static) if (per_thread)
    for (int64_t bi = 0; bi < batch; bi++) {
        int64_t aoff, boff;
        batch_offsets(c, a, b, nd, bi, &aoff, &boff);
        aqa__cpu_gemm(c->dtype, A.layout == LAYOUT_COL, B.layout == LAYOUT_COL, m, n, k, alpha,
                      A.base + aoff * (int64_t)es, A.ld, B.base + boff * (int64_t)es, B.ld, beta,
                      cbase + bi * m * n * (int64_t)es, n);
    }
    return AQA_OK;
}

const char *aqa_cpu_info(char *buf, size_t size) {
    snprintf(buf, size, "aqa kernels %s, %s (%s kernels), %d OpenMP thread(s)", aqa__cpu_isa_name(aqa__cpu_isa()),
             openblas_get_config(), openblas_get_corename(), omp_get_max_threads());
    return buf;
}
