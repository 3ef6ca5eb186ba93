/* kernel_shared.c: argument work shared by the CPU and CUDA kernels (see kernel-shared.h). */
#include "tensor/kernel-shared.h"

static int64_t size_along(const aqa_tensor *t, int dim) { return t->ndim ? t->shape[dim] : 1; }

layout_kind aqa__matrix_layout(int64_t rows, int64_t cols, int64_t sr, int64_t sc, int64_t *ld) {
    /* Strides of size-1 dims are meaningless: replace them by the natural ones of each layout. */
    int64_t r_sr = rows == 1 ? (cols > 1 ? cols : 1) : sr, r_sc = cols == 1 ? 1 : sc;
    if (r_sc == 1 && r_sr >= (cols > 1 ? cols : 1)) {
        *ld = r_sr;
        return LAYOUT_ROW;
    }
    int64_t c_sr = rows == 1 ? 1 : sr, c_sc = cols == 1 ? (rows > 1 ? rows : 1) : sc;
    if (c_sr == 1 && c_sc >= (rows > 1 ? rows : 1)) {
        *ld = c_sc;
        return LAYOUT_COL;
    }
    return LAYOUT_NONE;
}

bool aqa__rows_uniform(const aqa_tensor *a, int64_t *row_stride) {
    int nd = a->ndim;
    bool first = true;
    int64_t expect = 0;
    *row_stride = a->shape[nd - 1] > 1 ? a->shape[nd - 1] : 1;
    for (int d = nd - 2; d >= 0; d--) {
        if (a->shape[d] == 1) continue;
        if (first) {
            *row_stride = a->stride[d];
            expect = a->stride[d] * a->shape[d];
            first = false;
        } else {
            if (a->stride[d] != expect) return false;
            expect *= a->shape[d];
        }
    }
    return true;
}

aqa_status aqa__check_same_but(const char *op, const aqa_tensor *a, const aqa_tensor *b, int dim) {
    if (a->ndim != b->ndim)
        return aqa_fail(AQA_EINVAL, "%s: operands have %d and %d dimensions", op, a->ndim, b->ndim);
    for (int d = 0; d < a->ndim; d++)
        if (d != dim && a->shape[d] != b->shape[d])
            return aqa_fail(AQA_EINVAL, "%s: sizes %lld and %lld differ at dimension %d", op,
                            (long long)a->shape[d], (long long)b->shape[d], d);
    return AQA_OK;
}

aqa_status aqa__check_gather_shapes(const char *op, const aqa_tensor *self, int dim, const aqa_tensor *index,
                                     const aqa_tensor *src) {
    if (index->dtype != AQA_I64)
        return aqa_fail(AQA_EINVAL, "%s: index must be int64, got %s", op, aqa_dtype_name(index->dtype));
    int nd = self->ndim ? self->ndim : 1;
    if ((index->ndim ? index->ndim : 1) != nd)
        return aqa_fail(AQA_EINVAL, "%s: index has %d dimensions, the input %d", op, index->ndim, self->ndim);
    for (int d = 0; d < index->ndim; d++) {
        if (d != dim && index->shape[d] > size_along(self, d))
            return aqa_fail(AQA_EINVAL, "%s: index size %lld exceeds input size %lld at dimension %d", op,
                            (long long)index->shape[d], (long long)size_along(self, d), d);
        if (src && index->shape[d] > size_along(src, d))
            return aqa_fail(AQA_EINVAL, "%s: index size %lld exceeds source size %lld at dimension %d", op,
                            (long long)index->shape[d], (long long)size_along(src, d), d);
    }
    return AQA_OK;
}
