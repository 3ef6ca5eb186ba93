/* kernel-shared.h: device-independent argument work shared by the CPU and CUDA kernels (how a
 * strided matrix can be handed to BLAS, index-op shape checks), so both backends apply the same
 * rules.  Private to libaqa. */
#ifndef AQA_KERNEL_SHARED_H
#define AQA_KERNEL_SHARED_H

#include "tensor/tensor.h"

/* How a [rows, cols] matrix with element strides (sr, sc) can be given to row-major BLAS. */
typedef enum { LAYOUT_ROW, LAYOUT_COL, LAYOUT_NONE } layout_kind;

/* The layout and leading dimension (*ld); strides of size-1 dims are replaced by the natural
 * ones of each layout, since they are meaningless. */
layout_kind aqa__matrix_layout(int64_t rows, int64_t cols, int64_t sr, int64_t sc, int64_t *ld);
/* True when a's batch dims and row dim enumerate rows at one uniform stride (then the batch can
 * be folded into m); *row_stride receives it. */
bool aqa__rows_uniform(const aqa_tensor *a, int64_t *row_stride);
/* Checks that a and b have equal shapes except along dim. */
aqa_status aqa__check_same_but(const char *op, const aqa_tensor *a, const aqa_tensor *b, int dim);
/* Verifies a gather/scatter index: int64, same rank as self, no larger than self (except along
 * dim) and than src (if given). */
aqa_status aqa__check_gather_shapes(const char *op, const aqa_tensor *self, int dim, const aqa_tensor *index,
                                    const aqa_tensor *src);

#endif /* AQA_KERNEL_SHARED_H */
