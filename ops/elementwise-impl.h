/* elementwise-impl.h: helpers shared by the elementwise front-ends (ops_elementwise.c,
 * ops_binary.c, ops_unary.c).  Not installed.
 *
 * The helpers return UNOWNED tensors (tensor-impl.h): the caller holds the only reference and
 * either hands the tensor to a scope with aqa__own or drops it with aqa__release.  None of them
 * records autograd nodes: the public ops record one node on their original inputs, so the dtype
 * conversions and broadcast views made here cost no graph nodes. */
#ifndef AQA_ELEMENTWISE_IMPL_H
#define AQA_ELEMENTWISE_IMPL_H

#include "autograd/autograd.h"
#include "tensor/backend.h"
#include "tensor/tensor.h"

/* t itself with an extra reference when it already has `dtype`, else a converted contiguous copy.
 * NULL (error recorded) on failure. */
aqa_tensor *aqa__ew_cast(aqa_tensor *t, aqa_dtype dtype);
/* A view of t broadcast to (ndim, shape): stride 0 on new and expanded dimensions.  The shapes
 * must be compatible (checked by the caller through aqa__broadcast_shapes). */
aqa_tensor *aqa__ew_bview(aqa_tensor *t, int ndim, const int64_t *shape);
/* A 0-d tensor holding `value` on `device`. */
aqa_tensor *aqa__ew_scalar(double value, aqa_dtype dtype, aqa_device device);

/* out = op(a, b) with broadcasting, inputs converted to `compute`, out of dtype `out_dtype`. */
aqa_tensor *aqa__ew_binary(const char *name, aqa_binary_op op, aqa_tensor *a, aqa_tensor *b,
                           aqa_dtype compute, aqa_dtype out_dtype);
/* out = op(x) with x converted to `compute` (out has `compute` dtype, bool for logical_not). */
aqa_tensor *aqa__ew_unary(const char *name, aqa_unary_op op, aqa_tensor *x, aqa_dtype compute,
                          double p0, double p1);
/* x compared with a scalar: bool result, owned like a public op's result, no graph. */
aqa_tensor *aqa__ew_cmp_scalar(const char *name, aqa_binary_op op, aqa_tensor *x, double s);
/* x as a bool tensor (nonzero is true): x itself with an extra reference when already bool. */
aqa_tensor *aqa__ew_to_bool(aqa_tensor *x);

/* The dtype an op on a tensor of dtype `t` and a C scalar s computes in: t when floating;
 * int64 for bool/int64 tensors and an integral s; float32 otherwise (as torch's int * 2.5). */
aqa_dtype aqa__ew_scalar_dtype(aqa_dtype t, double s);
/* float dtype for a floating op: t when floating, float32 for integers and bool. */
static inline aqa_dtype aqa__ew_float_dtype(aqa_dtype t) { return aqa_dtype_is_float(t) ? t : AQA_F32; }

/* PyTorch's rule for mixed devices: a 0-d CPU tensor may join an op on another device as a
 * scalar.  Replaces such entries of ts[] by copies on the first non-CPU operand's device
 * (differentiable, owned by the current scope), then checks the inputs as aqa__check_inputs. */
bool aqa__check_inputs_scalars(const char *op, int n, aqa_tensor **ts);

#endif /* AQA_ELEMENTWISE_IMPL_H */
