/* ops.h: tensor operations.  Each one broadcasts as NumPy/PyTorch do, accepts non-contiguous
 * inputs, returns a new tensor owned by the current scope (or by the caller outside scopes), and
 * records an autograd node when grad mode is on and an input requires grad (autograd.h).
 *
 * dtypes, PyTorch's rule: elementwise ops, reductions and losses promote (bool < int64 < float32 <
 * float64; a floating op on an int64 input (exp, div, mean, ...) gives float32).  Ops with weights
 * -- aqa_matmul, aqa_linear, convolutions, layer and batch norm, attention -- never promote: their
 * operands must share one dtype, else they fail naming both (a float64 input to a float32 module
 * is an error, not a silent conversion).  Mixing is asked for explicitly: aqa_to_dtype
 * (differentiable) on the input, or aqa_module_to_dtype on the module.
 * NULL inputs give NULL (the error was recorded earlier). */
#ifndef AQA_OPS_H
#define AQA_OPS_H

#include <stdio.h>

#include "tensor/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- printing ------------------------------------------------------------------------- */
/* Prints like PyTorch: tensor([[...]], dtype=..., device=...), summarising large tensors. */
void aqa_print(const aqa_tensor *t);
void aqa_fprint(FILE *f, const aqa_tensor *t);
/* Same text into a malloc'd string (caller frees). */
char *aqa_to_string(const aqa_tensor *t);

/* ---- copies and conversions (differentiable where it makes sense) ---------------------- */
aqa_tensor *aqa_contiguous(aqa_tensor *t); /* t itself (with a new owner reference) if contiguous */
aqa_tensor *aqa_clone(aqa_tensor *t);
aqa_tensor *aqa_to_dtype(aqa_tensor *t, aqa_dtype dtype);
aqa_tensor *aqa_to_device(aqa_tensor *t, aqa_device device);
/* A new tensor sharing storage, with no graph history and requires_grad false. */
aqa_tensor *aqa_detach(aqa_tensor *t);
/* In place, no autograd: dst <- src (broadcast src to dst's shape, any dtypes/devices). */
aqa_status aqa_copy_(aqa_tensor *dst, const aqa_tensor *src);

/* ---- views (share storage; differentiable) --------------------------------------------- */
/* One entry may be -1 (inferred).  Fails on a non-viewable layout (use aqa_reshape). */
aqa_tensor *aqa_view(aqa_tensor *t, int ndim, const int64_t *shape);
/* A view when the layout allows it, else a contiguous copy (torch.reshape). */
aqa_tensor *aqa_reshape(aqa_tensor *t, int ndim, const int64_t *shape);
aqa_tensor *aqa_flatten(aqa_tensor *t, int start_dim, int end_dim);
aqa_tensor *aqa_permute(aqa_tensor *t, const int *dims);
aqa_tensor *aqa_transpose(aqa_tensor *t, int dim0, int dim1);
/* Elements start, start+step, ... < end along dim (Python slicing; negative indices allowed). */
aqa_tensor *aqa_slice(aqa_tensor *t, int dim, int64_t start, int64_t end, int64_t step);
aqa_tensor *aqa_narrow(aqa_tensor *t, int dim, int64_t start, int64_t length);
/* Removes dimension dim by taking index i (t[..., i, ...]). */
aqa_tensor *aqa_select(aqa_tensor *t, int dim, int64_t index);
/* Broadcast to shape (-1 keeps a size); stride 0 on expanded dims. */
aqa_tensor *aqa_expand(aqa_tensor *t, int ndim, const int64_t *shape);
aqa_tensor *aqa_squeeze(aqa_tensor *t, int dim); /* dim < -ndim or AQA_ALL_DIMS: all size-1 dims */
aqa_tensor *aqa_unsqueeze(aqa_tensor *t, int dim);

/* ---- elementwise, binary (broadcasting) -------------------------------------------------- */
aqa_tensor *aqa_add(aqa_tensor *a, aqa_tensor *b);
aqa_tensor *aqa_sub(aqa_tensor *a, aqa_tensor *b);
aqa_tensor *aqa_mul(aqa_tensor *a, aqa_tensor *b);
aqa_tensor *aqa_div(aqa_tensor *a, aqa_tensor *b);
aqa_tensor *aqa_pow(aqa_tensor *a, aqa_tensor *b);
aqa_tensor *aqa_maximum(aqa_tensor *a, aqa_tensor *b);
aqa_tensor *aqa_minimum(aqa_tensor *a, aqa_tensor *b);
/* With a scalar right operand (the scalar takes a's dtype). */
aqa_tensor *aqa_add_scalar(aqa_tensor *a, double s);
aqa_tensor *aqa_mul_scalar(aqa_tensor *a, double s);
aqa_tensor *aqa_div_scalar(aqa_tensor *a, double s);
aqa_tensor *aqa_pow_scalar(aqa_tensor *a, double exponent);
/* s - a (torch.rsub) */
aqa_tensor *aqa_rsub_scalar(aqa_tensor *a, double s);

/* ---- elementwise, unary ------------------------------------------------------------------ */
aqa_tensor *aqa_neg(aqa_tensor *x);
aqa_tensor *aqa_exp(aqa_tensor *x);
aqa_tensor *aqa_log(aqa_tensor *x);
aqa_tensor *aqa_sqrt(aqa_tensor *x);
aqa_tensor *aqa_rsqrt(aqa_tensor *x);
aqa_tensor *aqa_abs(aqa_tensor *x);
aqa_tensor *aqa_tanh(aqa_tensor *x);
aqa_tensor *aqa_sigmoid(aqa_tensor *x);
aqa_tensor *aqa_relu(aqa_tensor *x);
aqa_tensor *aqa_gelu(aqa_tensor *x);       /* erf form: x * Phi(x) */
aqa_tensor *aqa_gelu_tanh(aqa_tensor *x);  /* tanh approximation */
aqa_tensor *aqa_quick_gelu(aqa_tensor *x); /* x * sigmoid(1.702 x), CLIP's */
aqa_tensor *aqa_log1p(aqa_tensor *x);
aqa_tensor *aqa_softplus(aqa_tensor *x);   /* log(1 + exp(x)), stable */
aqa_tensor *aqa_square(aqa_tensor *x);
aqa_tensor *aqa_sign(aqa_tensor *x);       /* no gradient (zero) */
/* Clamp to [lo, hi]; pass -INFINITY / INFINITY for an open side.  Gradient 1 inside, 0 outside. */
aqa_tensor *aqa_clamp(aqa_tensor *x, double lo, double hi);

/* ---- comparisons (result bool, no gradient) ------------------------------------------------ */
aqa_tensor *aqa_eq(aqa_tensor *a, aqa_tensor *b);
aqa_tensor *aqa_ne(aqa_tensor *a, aqa_tensor *b);
aqa_tensor *aqa_lt(aqa_tensor *a, aqa_tensor *b);
aqa_tensor *aqa_le(aqa_tensor *a, aqa_tensor *b);
aqa_tensor *aqa_gt(aqa_tensor *a, aqa_tensor *b);
aqa_tensor *aqa_ge(aqa_tensor *a, aqa_tensor *b);
aqa_tensor *aqa_eq_scalar(aqa_tensor *a, double s);
aqa_tensor *aqa_gt_scalar(aqa_tensor *a, double s);
aqa_tensor *aqa_lt_scalar(aqa_tensor *a, double s);
aqa_tensor *aqa_logical_not(aqa_tensor *a);
aqa_tensor *aqa_logical_and(aqa_tensor *a, aqa_tensor *b);
aqa_tensor *aqa_logical_or(aqa_tensor *a, aqa_tensor *b);
/* cond ? a : b, all three broadcast (cond is bool or any dtype, nonzero = true). */
aqa_tensor *aqa_where(aqa_tensor *cond, aqa_tensor *a, aqa_tensor *b);
/* x with `value` where mask is true (mask broadcasts to x). */
aqa_tensor *aqa_masked_fill(aqa_tensor *x, aqa_tensor *mask, double value);

/* ---- reductions ------------------------------------------------------------------------- */
/* dims: n_dims dimension numbers (negative allowed); n_dims == 0 (dims NULL) reduces all. */
aqa_tensor *aqa_sum(aqa_tensor *x, int n_dims, const int *dims, bool keepdim);
aqa_tensor *aqa_mean(aqa_tensor *x, int n_dims, const int *dims, bool keepdim);
/* correction 1 = unbiased (torch default), 0 = population. */
aqa_tensor *aqa_var(aqa_tensor *x, int n_dims, const int *dims, int correction, bool keepdim);
aqa_tensor *aqa_std(aqa_tensor *x, int n_dims, const int *dims, int correction, bool keepdim);
aqa_tensor *aqa_sum_all(aqa_tensor *x);  /* 0-d */
aqa_tensor *aqa_mean_all(aqa_tensor *x); /* 0-d */
/* Max/min along one dim; *indices (if not NULL) receives the I64 positions (first occurrence). */
aqa_tensor *aqa_max_dim(aqa_tensor *x, int dim, bool keepdim, aqa_tensor **indices);
aqa_tensor *aqa_min_dim(aqa_tensor *x, int dim, bool keepdim, aqa_tensor **indices);
aqa_tensor *aqa_max_all(aqa_tensor *x); /* 0-d; gradient split evenly between ties as torch */
aqa_tensor *aqa_min_all(aqa_tensor *x);
/* dim == AQA_ALL_DIMS: index into the flattened tensor. */
aqa_tensor *aqa_argmax(aqa_tensor *x, int dim, bool keepdim);
aqa_tensor *aqa_argmin(aqa_tensor *x, int dim, bool keepdim);
aqa_tensor *aqa_softmax(aqa_tensor *x, int dim);
aqa_tensor *aqa_log_softmax(aqa_tensor *x, int dim);
aqa_tensor *aqa_logsumexp(aqa_tensor *x, int n_dims, const int *dims, bool keepdim);
/* Sums a broadcast gradient back to `shape` (used by backward functions; differentiable). */
aqa_tensor *aqa_sum_to_shape(aqa_tensor *x, int ndim, const int64_t *shape);

/* ---- linear algebra --------------------------------------------------------------------- */
/* torch.matmul: 1-D/2-D/batched with batch broadcasting; BLAS gemm, transposed operands are
 * passed as BLAS transposes rather than copied. */
aqa_tensor *aqa_matmul(aqa_tensor *a, aqa_tensor *b);

/* ---- joining, splitting, indexing ---------------------------------------------------------- */
aqa_tensor *aqa_cat(aqa_tensor *const *ts, int n, int dim);
aqa_tensor *aqa_stack(aqa_tensor *const *ts, int n, int dim);
/* Splits into pieces of split_size along dim (the last may be smaller); views.  Writes up to
 * max_out pointers into out and returns the number of pieces (or -1 on error). */
int aqa_split(aqa_tensor *x, int64_t split_size, int dim, aqa_tensor **out, int max_out);
int aqa_chunk(aqa_tensor *x, int chunks, int dim, aqa_tensor **out, int max_out);
aqa_tensor *aqa_index_select(aqa_tensor *x, int dim, aqa_tensor *index);
aqa_tensor *aqa_gather(aqa_tensor *x, int dim, aqa_tensor *index);
/* Rows of weight [num, dim] picked by integer ids of any shape -> ids.shape + [dim]. */
aqa_tensor *aqa_embedding(aqa_tensor *weight, aqa_tensor *ids);
aqa_tensor *aqa_one_hot(aqa_tensor *ids, int64_t num_classes); /* I64 result, as torch */
/* Constant padding as torch.nn.functional.pad: pads = (last_lo, last_hi, prev_lo, prev_hi, ...),
 * n_pads even; negative pads crop. */
aqa_tensor *aqa_pad(aqa_tensor *x, int n_pads, const int64_t *pads, double value);

/* ---- in place, never recorded (optimizers, gradient accumulation, initialisation) ------------- */
/* dst += alpha * src (src broadcasts to dst). */
aqa_status aqa_add_(aqa_tensor *dst, const aqa_tensor *src, double alpha);
aqa_status aqa_mul_scalar_(aqa_tensor *dst, double s);

#ifdef __cplusplus
}
#endif

#endif /* AQA_OPS_H */
