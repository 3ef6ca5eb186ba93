/* norm_layer.h: layer normalisation, as torch.nn.functional.layer_norm and torch.nn.LayerNorm.
 *
 * On the CPU it is one fused op: each row (the trailing normalized dims) is read once for its
 * mean and variance and once more, while still in cache, to write the output; mean and 1/std are
 * saved, and the backward computes grad_x, grad_weight and grad_bias in one pass per row (with
 * per-thread partial sums for the parameter gradients).  Other devices use composed ops. */
#ifndef AQA_NN_NORM_LAYER_H
#define AQA_NN_NORM_LAYER_H

#include "nn/module.h"
#include "tensor/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Normalises x over its last n_norm_dims dims, which must equal normalized_shape, then applies
 * weight and bias (each of shape normalized_shape, or NULL).  The variance is the biased one,
 * as torch.  float32/float64; differentiable in x, weight and bias (first order). */
aqa_tensor *aqa_layer_norm(aqa_tensor *x, int n_norm_dims, const int64_t *normalized_shape, aqa_tensor *weight,
                           aqa_tensor *bias, double eps);

/* torch.nn.LayerNorm: parameters "weight" (ones) and "bias" (zeros) of shape normalized_shape
 * when elementwise_affine, none otherwise. */
typedef struct aqa_layer_norm_layer {
    aqa_module base;                        /* type "LayerNorm" */
    aqa_tensor *weight;                     /* normalized_shape, or NULL */
    aqa_tensor *bias;                       /* normalized_shape, or NULL */
    int n_dims;                             /* number of normalized (trailing) dims */
    int64_t normalized_shape[AQA_MAX_DIMS]; /* their sizes */
    double eps;                             /* added to the variance (torch default 1e-5) */
    bool elementwise_affine;                /* has weight and bias */
} aqa_layer_norm_layer;

aqa_layer_norm_layer *aqa_layer_norm_layer_new(aqa_module *parent, const char *name, int n_dims,
                                               const int64_t *normalized_shape, double eps,
                                               bool elementwise_affine);
aqa_tensor *aqa_layer_norm_layer_forward(aqa_layer_norm_layer *m, aqa_tensor *x);

#ifdef __cplusplus
}
#endif

#endif /* AQA_NN_NORM_LAYER_H */
