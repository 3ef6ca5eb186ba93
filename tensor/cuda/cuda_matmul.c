/* cuda_matmul.c: the CUDA batched matrix product c = alpha * a @ b + beta * c.
 *
 * float32/float64 go to cuBLAS strided-batched GEMM (cublasGemmStridedBatchedEx with FP32 or,
 * when aqa_cuda_set_tf32(true), TF32 tensor-core compute; cublasDgemmStridedBatched for
 * float64).  As in tensor/cpu_matmul.c, each operand is passed in place whenever its matrix
 * strides are row-major (ld, 1) or column-major (1, ld) — a transposed view becomes a BLAS
 * transpose — and its batch dims step by one uniform stride (0 for a broadcast operand); only an
 * operand with neither is copied to a contiguous scratch tensor.  When b is shared by the batch
 * and a's rows are uniformly spaced (the linear-layer case [B, T, D] @ [D, O]), the batch is
 * folded into one GEMM of B*T rows.  cuBLAS is column-major, so row-major C = A B is computed as
 * C^T = B^T A^T.  int64 uses a plain kernel (kernels/matmul_i64.cu). */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "tensor/cuda/cuda-impl.h"
#include "tensor/kernel-shared.h"


/* The uniform stride s with offset(batch index) = index * s over c's batch dims, if any. */
static bool batch_uniform(const aqa_tensor *t, const aqa_tensor *c, int nb, int64_t *s) {
    int64_t expect = 0, span = 1;
    bool first = true;
    *s = 0;
    for (int d = nb - 1; d >= 0; d--) {
        if (c->shape[d] == 1) continue;
        if (first) {
            *s = t->stride[d];
            expect = t->stride[d];
            first = false;
        } else if (t->stride[d] != expect * span) {
            return false;
        }
        span *= c->shape[d];
    }
    return true;
}


/* One operand as cuBLAS sees it. */
typedef struct operand {
    const aqa_tensor *t; /* the tensor (or its contiguous copy) */
    aqa_tensor *copy;    /* the copy we own, or NULL */
    layout_kind layout;  /* ROW or COL */
    int64_t ld;          /* leading dimension */
    int64_t bstride;     /* batch stride in elements */
} operand;

static aqa_status prepare(operand *op, const aqa_tensor *t, const aqa_tensor *c, int64_t rows, int64_t cols) {
    int nd = t->ndim;
    op->t = t;
    op->copy = NULL;
    op->layout = aqa__matrix_layout(rows, cols, t->stride[nd - 2], t->stride[nd - 1], &op->ld);
    bool uniform = batch_uniform(t, c, nd - 2, &op->bstride);
    if (op->layout != LAYOUT_NONE && uniform) return AQA_OK;
    op->copy = aqa__new_unowned(nd, t->shape, t->dtype, t->storage->device);
    if (!op->copy) return aqa_last_status();
    aqa_status st = aqa__cuda_copy(op->copy, t);
    if (st) return st;
    op->t = op->copy;
    op->layout = LAYOUT_ROW;
    op->ld = cols;
    op->bstride = rows * cols;
    /* broadcast batch dims were materialised: the copy steps uniformly */
    return AQA_OK;
}

/* Makes the device's cuBLAS handle on first use; several host threads may get here at once. */
static aqa_status blas_handle(aqa_cuda_dev *d) {
    if (__atomic_load_n(&d->blas, __ATOMIC_ACQUIRE)) return AQA_OK;
    aqa_status st = aqa__cuda_load_cublas();
    if (st) return st;
    pthread_mutex_lock(&d->lock);
    if (!d->blas) {
        aqa_cublas_handle h = NULL;
        int r = aqa__cublas.Create(&h);
        if (r != 0) {
            st = aqa_fail(AQA_EDEVICE, "cuBLAS: cublasCreate failed with status %d [%s]", r, aqa__cuda_versions());
        } else if ((r = aqa__cublas.SetStream(h, d->stream)) != 0) {
            aqa__cublas.Destroy(h);
            st = aqa_fail(AQA_EDEVICE, "cuBLAS: cublasSetStream failed with status %d", r);
        } else {
            __atomic_store_n(&d->blas, h, __ATOMIC_RELEASE); /* published only once bound to the stream */
        }
    }
    pthread_mutex_unlock(&d->lock);
    return st;
}

/* Column-major call computing row-major C[m, n] (ldc n) = alpha A[m, k] B[k, n] + beta C. */
static aqa_status gemm(aqa_cuda_dev *d, aqa_dtype dt, const operand *A, const operand *B, int64_t m, int64_t n,
                       int64_t k, double alpha, double beta, void *c, int64_t cstride, int64_t batch,
                       const void *pa, const void *pb) {
    if (m > INT_MAX || n > INT_MAX || k > INT_MAX || A->ld > INT_MAX || B->ld > INT_MAX || batch > INT_MAX)
        return aqa_fail(AQA_EUNSUPPORTED, "cuda matmul: a size exceeds cuBLAS's int range");
    int ta = B->layout == LAYOUT_COL ? AQA_CUBLAS_OP_T : AQA_CUBLAS_OP_N; /* first operand: B^T */
    int tb = A->layout == LAYOUT_COL ? AQA_CUBLAS_OP_T : AQA_CUBLAS_OP_N; /* second: A^T */
    int r;
    if (dt == AQA_F32) {
        float al = (float)alpha, be = (float)beta;
        int compute = aqa__cuda_tf32() ? AQA_CUBLAS_COMPUTE_32F_FAST_TF32 : AQA_CUBLAS_COMPUTE_32F;
        r = aqa__cublas.GemmStridedBatchedEx(d->blas, ta, tb, (int)n, (int)m, (int)k, &al, pb, AQA_CUDA_R_32F,
                                             (int)B->ld, B->bstride, pa, AQA_CUDA_R_32F, (int)A->ld, A->bstride,
                                             &be, c, AQA_CUDA_R_32F, (int)n, cstride, (int)batch, compute,
                                             AQA_CUBLAS_GEMM_DEFAULT);
    } else {
        r = aqa__cublas.DgemmStridedBatched(d->blas, ta, tb, (int)n, (int)m, (int)k, &alpha, pb, (int)B->ld,
                                            B->bstride, pa, (int)A->ld, A->bstride, &beta, c, (int)n, cstride,
                                            (int)batch);
    }
    if (r != 0)
        return aqa_fail(AQA_EDEVICE,
                        "cuBLAS gemm failed with status %d ([%lld x %lld] @ [%lld x %lld], batch %lld, %s, lda %lld, "
                        "ldb %lld) [%s]",
                        r, (long long)m, (long long)k, (long long)k, (long long)n, (long long)batch,
                        aqa_dtype_name(dt), (long long)A->ld, (long long)B->ld, aqa__cuda_versions());
    if (aqa__cuda_sync_each_launch()) CU_CHECK(aqa__cu.StreamSynchronize(d->stream), "cuBLAS gemm");
    return AQA_OK;
}

static aqa_status matmul_i64(aqa_cuda_dev *d, int dev, aqa_tensor *c, const aqa_tensor *a, const aqa_tensor *b,
                             int64_t m, int64_t n, int64_t k, double alpha, double beta) {
    int nd = c->ndim, nb = nd - 2;
    aqa_cuda_geo g;
    memset(&g, 0, sizeof g);
    for (int i = 0; i < nb; i++) {
        g.shape[i] = c->shape[i];
        g.stride[0][i] = a->stride[i];
        g.stride[1][i] = b->stride[i];
    }
    CUfunction f;
    aqa_status st = aqa__cuda_kernel(d, dev, "matmul_i64", "matmul_i64_k", &f);
    if (st) return st;
    int64_t total = aqa_numel(c), al = (int64_t)alpha, be = (int64_t)beta;
    int64_t asr = a->stride[nd - 2], asc = a->stride[nd - 1], bsr = b->stride[nd - 2], bsc = b->stride[nd - 1];
    void *cp = aqa__ptr(c), *ap = aqa__ptr(a), *bp = aqa__ptr(b);
    void *args[] = {&cp, &ap, &bp, &nb, &m, &n, &k, &asr, &asc, &bsr, &bsc, &al, &be, &total, &g};
    return aqa__cuda_launch(d, f, "matmul_i64_k", aqa__cuda_grid(d, total, 256), 1, 256, 0, args);
}

aqa_status aqa__cuda_matmul(aqa_tensor *c, const aqa_tensor *a, const aqa_tensor *b, double alpha, double beta) {
    int nd = c->ndim;
    if (nd < 2 || a->ndim != nd || b->ndim != nd)
        return aqa_fail(AQA_EINVAL, "cuda matmul: operands need the same rank >= 2 (got %d, %d, %d)", a->ndim,
                        b->ndim, nd);
    if (a->dtype != c->dtype || b->dtype != c->dtype || c->dtype == AQA_BOOL)
        return aqa_fail(AQA_EINVAL, "cuda matmul: dtypes %s @ %s -> %s not supported", aqa_dtype_name(a->dtype),
                        aqa_dtype_name(b->dtype), aqa_dtype_name(c->dtype));
    int64_t m = c->shape[nd - 2], n = c->shape[nd - 1], k = a->shape[nd - 1];
    if (a->shape[nd - 2] != m || b->shape[nd - 2] != k || b->shape[nd - 1] != n)
        return aqa_fail(AQA_EINVAL, "cuda matmul: [.., %lld, %lld] @ [.., %lld, %lld] -> [.., %lld, %lld]",
                        (long long)a->shape[nd - 2], (long long)k, (long long)b->shape[nd - 2],
                        (long long)b->shape[nd - 1], (long long)m, (long long)n);
    int64_t batch = 1;
    for (int d = 0; d < nd - 2; d++) {
        if (a->shape[d] != c->shape[d] || b->shape[d] != c->shape[d])
            return aqa_fail(AQA_EINVAL, "cuda matmul: batch dim %d differs (%lld, %lld, %lld)", d,
                            (long long)a->shape[d], (long long)b->shape[d], (long long)c->shape[d]);
        batch *= c->shape[d];
    }
    if (!aqa_is_contiguous(c)) return aqa_fail(AQA_EINVAL, "cuda matmul: output must be contiguous");
    if (batch == 0 || m == 0 || n == 0) return AQA_OK;
    if (k == 0) /* empty sum: c = beta * c */
        return beta == 0 ? aqa__cuda_fill(c, 0.0) : aqa__cuda_unary(AQA_UN_MUL_SCALAR, c, c, beta, 0.0);
    int dev = c->storage->device.index;
    aqa_cuda_dev *d = aqa__cuda_dev(dev);
    if (!d) return aqa_last_status();
    if (c->dtype == AQA_I64) return matmul_i64(d, dev, c, a, b, m, n, k, alpha, beta);
    aqa_status st = blas_handle(d);
    if (st) return st;

    /* fold the batch into m: b shared, a's rows uniformly spaced and row-major */
    operand A = {0}, B = {0};
    B.layout = aqa__matrix_layout(k, n, b->stride[nd - 2], b->stride[nd - 1], &B.ld);
    bool b_shared = true;
    for (int i = 0; i < nd - 2; i++)
        if (c->shape[i] > 1 && b->stride[i] != 0) b_shared = false;
    int64_t row_stride;
    if (batch > 1 && b_shared && B.layout != LAYOUT_NONE && (k == 1 || a->stride[nd - 1] == 1) &&
        aqa__rows_uniform(a, &row_stride) && row_stride >= k && batch * m <= INT_MAX && row_stride <= INT_MAX) {
        A.layout = LAYOUT_ROW;
        A.ld = row_stride;
        return gemm(d, c->dtype, &A, &B, batch * m, n, k, alpha, beta, aqa__ptr(c), batch * m * n, 1, aqa__ptr(a),
                    aqa__ptr(b));
    }
    if ((st = prepare(&A, a, c, m, k)) == AQA_OK && (st = prepare(&B, b, c, k, n)) == AQA_OK)
        st = gemm(d, c->dtype, &A, &B, m, n, k, alpha, beta, aqa__ptr(c), m * n, batch, aqa__ptr(A.t),
                  aqa__ptr(B.t));
    /* the copies' memory returns to the cache; stream order protects the queued GEMM */
    if (A.copy) aqa__release(A.copy);
    if (B.copy) aqa__release(B.copy);
    return st;
}
