/* iter.c: strided n-d iteration (see iter.h). */
#include "tensor/iter.h"

#include <string.h>

#include "tensor/tensor-impl.h"

void aqa_iter_init(aqa_iter *it, int n_operands, const aqa_tensor *const *ops) {
    const aqa_tensor *ref = ops[0];
    memset(it, 0, sizeof *it);
    it->n_operands = n_operands;
    for (int k = 0; k < n_operands; k++) it->base[k] = aqa__ptr(ops[k]);
    /* drop size-1 dims, keeping order (outermost first) */
    int n = 0;
    for (int d = 0; d < ref->ndim; d++) {
        if (ref->shape[d] == 1) continue;
        it->shape[n] = ref->shape[d];
        for (int k = 0; k < n_operands; k++)
            it->stride[k][n] = ops[k]->stride[d] * (int64_t)aqa_dtype_size(ops[k]->dtype);
        n++;
    }
    if (n == 0) { /* scalar or all-ones shape: one row of one element */
        it->ndim = 1;
        it->shape[0] = aqa_numel(ref) == 0 ? 0 : 1;
        for (int k = 0; k < n_operands; k++) it->stride[k][0] = (int64_t)aqa_dtype_size(ops[k]->dtype);
        return;
    }
    /* merge dim d-1 into d when, for every operand, stride[d-1] == stride[d] * shape[d] */
    int m = 0;
    for (int d = 0; d < n; d++) {
        if (m > 0) {
            bool mergeable = true;
            for (int k = 0; k < n_operands && mergeable; k++)
                mergeable = it->stride[k][m - 1] == it->stride[k][d] * it->shape[d];
            if (mergeable) {
                it->shape[m - 1] *= it->shape[d];
                for (int k = 0; k < n_operands; k++) it->stride[k][m - 1] = it->stride[k][d];
                continue;
            }
        }
        it->shape[m] = it->shape[d];
        for (int k = 0; k < n_operands; k++) it->stride[k][m] = it->stride[k][d];
        m++;
    }
    it->ndim = m;
}

int64_t aqa_iter_numel(const aqa_iter *it) { return aqa__shape_numel(it->ndim, it->shape); }

/* Runs rows [row_begin, row_end) of the flattened outer dimensions. */
static void run_rows(const aqa_iter *it, aqa_iter_inner_fn inner, void *ctx, int64_t row_begin, int64_t row_end) {
    int outer = it->ndim - 1;
    int64_t inner_n = it->shape[outer];
    int64_t inner_strides[AQA_ITER_MAX_OPERANDS];
    for (int k = 0; k < it->n_operands; k++) inner_strides[k] = it->stride[k][outer];
    int64_t idx[AQA_MAX_DIMS];
    /* decompose row_begin into outer indices */
    int64_t r = row_begin;
    for (int d = outer - 1; d >= 0; d--) {
        idx[d] = r % it->shape[d];
        r /= it->shape[d];
    }
    char *ptrs[AQA_ITER_MAX_OPERANDS];
    for (int64_t row = row_begin; row < row_end; row++) {
        for (int k = 0; k < it->n_operands; k++) {
            char *p = it->base[k];
            for (int d = 0; d < outer; d++) p += idx[d] * it->stride[k][d];
            ptrs[k] = p;
        }
        inner(ctx, ptrs, inner_n, inner_strides);
        for (int d = outer - 1; d >= 0; d--) {
            if (++idx[d] < it->shape[d]) break;
            idx[d] = 0;
        }
    }
}

#ifdef _OPENMP
#include <omp.h>
#endif

void aqa_iter_for_each(const aqa_iter *it, aqa_iter_inner_fn inner, void *ctx, int parallel) {
    int64_t total = aqa_iter_numel(it);
    if (total == 0) return;
    int outer = it->ndim - 1;
    int64_t inner_n = it->shape[outer];
    int64_t rows = total / inner_n;
#ifdef _OPENMP
    if (parallel && total >= 65536 && omp_get_max_threads() > 1) {
        if (rows >= 2 * omp_get_max_threads()) {
#pragma omp parallel
            {
                int nt = omp_get_num_threads(), id = omp_get_thread_num();
                int64_t chunk = (rows + nt - 1) / nt;
                int64_t b = id * chunk, e = b + chunk < rows ? b + chunk : rows;
                if (b < e) run_rows(it, inner, ctx, b, e);
            }
        } else {
            /* few long rows: split each row between threads */
            for (int64_t row = 0; row < rows; row++) {
                aqa_iter one = *it;
                int64_t r = row;
                for (int d = outer - 1; d >= 0; d--) {
                    for (int k = 0; k < it->n_operands; k++) one.base[k] += (r % it->shape[d]) * it->stride[k][d];
                    r /= it->shape[d];
                }
#pragma omp parallel
                {
                    int nt = omp_get_num_threads(), id = omp_get_thread_num();
                    int64_t chunk = (inner_n + nt - 1) / nt;
                    int64_t b = id * chunk, e = b + chunk < inner_n ? b + chunk : inner_n;
                    if (b < e) {
                        char *ptrs[AQA_ITER_MAX_OPERANDS];
                        int64_t strides[AQA_ITER_MAX_OPERANDS];
                        for (int k = 0; k < it->n_operands; k++) {
                            strides[k] = it->stride[k][outer];
                            ptrs[k] = one.base[k] + b * strides[k];
                        }
                        inner(ctx, ptrs, e - b, strides);
                    }
                }
            }
        }
        return;
    }
#endif
    run_rows(it, inner, ctx, 0, rows);
}
