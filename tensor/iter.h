/* iter.h: strided n-d iteration over up to 4 operands of one shape (the CPU kernels' loop).
 *
 * aqa_iter_init merges dimensions that are contiguous in every operand and orders them so the
 * innermost loop is the longest contiguous run; aqa_iter_for_each then calls `inner` once per
 * innermost row with byte pointers and byte strides, so kernels are simple 1-D loops that the
 * compiler vectorises when the strides equal the element size.  Broadcast operands have stride
 * 0 on expanded dimensions (use aqa_expand views). */
#ifndef AQA_ITER_H
#define AQA_ITER_H

#include <stdint.h>

#include "tensor/tensor.h"

#define AQA_ITER_MAX_OPERANDS 4

typedef struct aqa_iter {
    int ndim;                                          /* merged dimensions (>= 1) */
    int n_operands;                                    /* operands, output first by convention */
    int64_t shape[AQA_MAX_DIMS];                       /* merged sizes, innermost last */
    int64_t stride[AQA_ITER_MAX_OPERANDS][AQA_MAX_DIMS]; /* byte strides per operand */
    char *base[AQA_ITER_MAX_OPERANDS];                 /* byte address of each first element */
} aqa_iter;

/* ops[i] must all have the same shape (use expanded views). */
void aqa_iter_init(aqa_iter *it, int n_operands, const aqa_tensor *const *ops);
/* Calls inner(ctx, ptrs, n, strides) for each innermost row: n elements, operand i at ptrs[i]
 * stepping strides[i] bytes.  Rows are split across threads when the work is large and
 * `parallel` is set (the inner function must then be free of shared writes). */
typedef void (*aqa_iter_inner_fn)(void *ctx, char **ptrs, int64_t n, const int64_t *strides);
void aqa_iter_for_each(const aqa_iter *it, aqa_iter_inner_fn inner, void *ctx, int parallel);
int64_t aqa_iter_numel(const aqa_iter *it);

#endif /* AQA_ITER_H */
