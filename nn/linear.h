/* linear.h: fully connected layers and embeddings, as torch.nn.Linear and torch.nn.Embedding.
 *
 * aqa_linear is one fused op: the input's leading dimensions are flattened into the rows of a
 * single GEMM (x [..., in] -> [M, in], M = prod of leading dims), the bias is written into the
 * output first and the GEMM accumulates onto it (beta = 1), so no separate bias pass is made.
 * Its backward is two GEMMs (grad_x = g W, grad_W = g^T x) and one GEMV for grad_b. */
#ifndef AQA_NN_LINEAR_H
#define AQA_NN_LINEAR_H

#include "nn/module.h"
#include "tensor/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* y = x W^T + b.  x [..., in] (any number of leading dims, or 1-D [in]), weight [out, in],
 * bias [out] or NULL.  float32/float64, all three of one dtype (ops.h); differentiable in all three. */
aqa_tensor *aqa_linear(aqa_tensor *x, aqa_tensor *weight, aqa_tensor *bias);

/* torch.nn.Linear: parameters "weight" [out, in] and "bias" [out] (absent when !bias), both
 * initialised U(-1/sqrt(in), 1/sqrt(in)) from the default generator, as PyTorch. */
typedef struct aqa_linear_layer {
    aqa_module base;       /* type "Linear" */
    aqa_tensor *weight;    /* [out_features, in_features], owned by base */
    aqa_tensor *bias;      /* [out_features] or NULL, owned by base */
    int64_t in_features;   /* size of the input's last dimension */
    int64_t out_features;  /* size of the output's last dimension */
} aqa_linear_layer;

aqa_linear_layer *aqa_linear_layer_new(aqa_module *parent, const char *name, int64_t in_features,
                                       int64_t out_features, bool bias);
aqa_tensor *aqa_linear_layer_forward(aqa_linear_layer *m, aqa_tensor *x);

/* torch.nn.Embedding: parameter "weight" [num_embeddings, embedding_dim] initialised N(0, 1).
 * Forward maps integer ids of any shape to ids.shape + [embedding_dim]. */
typedef struct aqa_embedding_layer {
    aqa_module base;          /* type "Embedding" */
    aqa_tensor *weight;       /* [num_embeddings, embedding_dim], owned by base */
    int64_t num_embeddings;   /* vocabulary size */
    int64_t embedding_dim;    /* vector size */
} aqa_embedding_layer;

aqa_embedding_layer *aqa_embedding_layer_new(aqa_module *parent, const char *name, int64_t num_embeddings,
                                             int64_t embedding_dim);
aqa_tensor *aqa_embedding_layer_forward(aqa_embedding_layer *m, aqa_tensor *ids);

#ifdef __cplusplus
}
#endif

#endif /* AQA_NN_LINEAR_H */
