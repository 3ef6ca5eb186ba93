/* backend.h: the kernel interface a device implements (CPU now, CUDA in tensor/cuda/).
 *
 * The front-end ops (tensor/ops_*.c) do everything device-independent: argument checks, shapes,
 * broadcasting (as stride-0 views), dtype promotion, output allocation and autograd.  They then
 * call one of these kernels with fully formed operands.  Kernels may assume: operands live on the
 * backend's device, outputs are freshly allocated contiguous tensors unless stated otherwise,
 * inputs may have any strides (including 0).  A kernel returns AQA_OK or an error status after
 * aqa_fail. */
#ifndef AQA_BACKEND_H
#define AQA_BACKEND_H

#include "tensor/tensor.h"

typedef enum aqa_unary_op {
    AQA_UN_NEG, AQA_UN_EXP, AQA_UN_LOG, AQA_UN_SQRT, AQA_UN_RSQRT, AQA_UN_ABS, AQA_UN_TANH,
    AQA_UN_SIGMOID, AQA_UN_RELU, AQA_UN_GELU, AQA_UN_GELU_TANH, AQA_UN_QUICK_GELU, AQA_UN_LOG1P,
    AQA_UN_SOFTPLUS, AQA_UN_SQUARE, AQA_UN_SIGN, AQA_UN_LOGICAL_NOT,
    AQA_UN_CLAMP,      /* p0 = lo, p1 = hi */
    AQA_UN_ADD_SCALAR, /* x + p0 */
    AQA_UN_MUL_SCALAR, /* x * p0 */
    AQA_UN_POW_SCALAR, /* x ^ p0 */
    AQA_UN_RSUB_SCALAR,/* p0 - x */
    AQA_UN_GELU_GRAD,  /* d gelu / dx */
    AQA_UN_GELU_TANH_GRAD,
    AQA_UN_QUICK_GELU_GRAD,
    AQA_UN_COUNT
} aqa_unary_op;

typedef enum aqa_binary_op {
    AQA_BIN_ADD, AQA_BIN_SUB, AQA_BIN_MUL, AQA_BIN_DIV, AQA_BIN_POW, AQA_BIN_MAX, AQA_BIN_MIN,
    AQA_BIN_EQ, AQA_BIN_NE, AQA_BIN_LT, AQA_BIN_LE, AQA_BIN_GT, AQA_BIN_GE, /* bool output */
    AQA_BIN_AND, AQA_BIN_OR,                                                 /* bool output */
    AQA_BIN_COUNT
} aqa_binary_op;

typedef enum aqa_reduce_op {
    AQA_RED_SUM, AQA_RED_MAX, AQA_RED_MIN, /* MAX/MIN may also write I64 positions */
    AQA_RED_COUNT
} aqa_reduce_op;

typedef struct aqa_backend {
    const char *name; /* "cpu", "cuda" */

    /* memory */
    void *(*alloc)(aqa_device device, size_t nbytes); /* NULL + aqa_fail on failure */
    void (*free)(aqa_device device, void *ptr, size_t nbytes);
    /* dst <- src elementwise with dtype conversion; same shape, any strides, same device. */
    aqa_status (*copy)(aqa_tensor *dst, const aqa_tensor *src);
    aqa_status (*fill)(aqa_tensor *dst, double value);
    /* host <-> device byte copies (CPU backend: memcpy) */
    aqa_status (*to_host)(void *dst, const void *src, size_t nbytes, aqa_device device);
    aqa_status (*from_host)(void *dst, const void *src, size_t nbytes, aqa_device device);

    /* elementwise: out has the broadcast shape; inputs are views of that shape (stride 0 where
     * broadcast), already converted to the compute dtype (out's dtype, or for comparisons the
     * common input dtype). */
    aqa_status (*unary)(aqa_unary_op op, aqa_tensor *out, const aqa_tensor *x, double p0, double p1);
    aqa_status (*binary)(aqa_binary_op op, aqa_tensor *out, const aqa_tensor *a, const aqa_tensor *b);
    aqa_status (*where)(aqa_tensor *out, const aqa_tensor *cond, const aqa_tensor *a, const aqa_tensor *b);
    /* dst += alpha * src; dst any strides (no overlap), src same shape. */
    aqa_status (*axpy)(aqa_tensor *dst, const aqa_tensor *src, double alpha);

    /* reductions over the dimensions set in dim_mask (bit d = dimension d of x); out has x's
     * shape with reduced dims of size 1 (keepdim form); idx (I64, same shape) may be NULL. */
    aqa_status (*reduce)(aqa_reduce_op op, aqa_tensor *out, aqa_tensor *idx, const aqa_tensor *x,
                         uint32_t dim_mask);
    /* softmax / log_softmax along dim (x any strides, out contiguous, same shape). */
    aqa_status (*softmax)(aqa_tensor *out, const aqa_tensor *x, int dim, bool log);
    /* grad_x from grad_y and the forward output y (contiguous result). */
    aqa_status (*softmax_backward)(aqa_tensor *grad_x, const aqa_tensor *grad_y, const aqa_tensor *y,
                                   int dim, bool log);

    /* c = alpha * a @ b + beta * c over matrices in the last two dims.  a, b and c have the same
     * rank >= 2 and any number of batch dims (stride 0 where a batch dim is broadcast; batch dims
     * are not merged); a [..., m, k], b [..., k, n], c contiguous [..., m, n].  The kernel picks
     * BLAS transposes from the strides of the last two dims (row or column major with a valid
     * leading dimension), copying an operand only when neither layout is possible. */
    aqa_status (*matmul)(aqa_tensor *c, const aqa_tensor *a, const aqa_tensor *b, double alpha,
                         double beta);

    /* out = x.index_select(dim, index) (index I64 1-D). */
    aqa_status (*index_select)(aqa_tensor *out, const aqa_tensor *x, int dim, const aqa_tensor *index);
    /* out[...] += src[...] at index along dim (index_add_); out any layout. */
    aqa_status (*index_add)(aqa_tensor *out, int dim, const aqa_tensor *index, const aqa_tensor *src);
    /* out = torch.gather(x, dim, index); index same ndim as x. */
    aqa_status (*gather)(aqa_tensor *out, const aqa_tensor *x, int dim, const aqa_tensor *index);
    /* out.scatter_add_(dim, index, src). */
    aqa_status (*scatter_add)(aqa_tensor *out, int dim, const aqa_tensor *index, const aqa_tensor *src);

    /* Philox random fill of a contiguous tensor: kind 0 uniform [a, b), 1 normal (mean a, std
     * b), 2 integers [a, b).  Uniform and integer element i use block offset + i / 4, word i % 4;
     * normal element i uses block offset + i / 2, words 2(i % 2) and 2(i % 2) + 1 through
     * Box-Muller (cosine branch), so the CPU and CUDA streams agree. */
    aqa_status (*random)(aqa_tensor *t, int kind, double a, double b, uint64_t seed, uint64_t offset);
} aqa_backend;

/* The backend serving a device, or NULL + aqa_fail if it is not built / not available. */
const aqa_backend *aqa_backend_for(aqa_device device);
extern const aqa_backend aqa_cpu_backend;

#endif /* AQA_BACKEND_H */
