/* cuda_backend.c: the CUDA backend table (backend.h), returned by aqa__cuda_backend for a device
 * that exists, so that aqa_backend_for(aqa_cuda_device(i)) serves every op on GPU i. */
#include "tensor/cuda/cuda-impl.h"

static const aqa_backend cuda_backend = {
    .name = "cuda",
    .alloc = aqa__cuda_alloc,
    .free = aqa__cuda_free,
    .copy = aqa__cuda_copy,
    .fill = aqa__cuda_fill,
    .to_host = aqa__cuda_to_host,
    .from_host = aqa__cuda_from_host,
    .unary = aqa__cuda_unary,
    .binary = aqa__cuda_binary,
    .where = aqa__cuda_where,
    .axpy = aqa__cuda_axpy,
    .reduce = aqa__cuda_reduce,
    .softmax = aqa__cuda_softmax,
    .softmax_backward = aqa__cuda_softmax_backward,
    .matmul = aqa__cuda_matmul,
    .index_select = aqa__cuda_index_select,
    .index_add = aqa__cuda_index_add,
    .gather = aqa__cuda_gather,
    .scatter_add = aqa__cuda_scatter_add,
    .random = aqa__cuda_random,
};

const aqa_backend *aqa__cuda_backend(int index);

const aqa_backend *aqa__cuda_backend(int index) {
    /* initialises the driver and the device on first use; the error says why it is unusable */
    if (!aqa__cuda_dev(index)) return NULL;
    return &cuda_backend;
}
