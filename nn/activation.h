/* activation.h: activation modules (torch.nn.ReLU, GELU, QuickGELU as in CLIP, Sigmoid, Tanh,
 * Softmax): thin modules without parameters over the elementwise ops of ops/ops.h, plus
 * aqa_activation, the functional form chosen by kind (used by the transformer layers). */
#ifndef AQA_NN_ACTIVATION_H
#define AQA_NN_ACTIVATION_H

#include "nn/module.h"
#include "tensor/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum aqa_activation_kind {
    AQA_ACT_RELU,       /* max(x, 0) */
    AQA_ACT_GELU,       /* x * Phi(x), exact (erf) form: nn.GELU() */
    AQA_ACT_GELU_TANH,  /* tanh approximation: nn.GELU(approximate="tanh") */
    AQA_ACT_QUICK_GELU, /* x * sigmoid(1.702 x), CLIP's */
    AQA_ACT_SIGMOID,
    AQA_ACT_TANH,
    AQA_ACT_SOFTMAX,    /* along a dim (the module's `dim`; aqa_activation uses the last) */
    AQA_ACT_IDENTITY    /* x (nn.Identity) */
} aqa_activation_kind;

/* Applies the activation (softmax along the last dim). */
aqa_tensor *aqa_activation(aqa_tensor *x, aqa_activation_kind kind);
/* PyTorch's class name of the kind ("ReLU", "GELU", "QuickGELU", ...). */
const char *aqa_activation_name(aqa_activation_kind kind);

typedef struct aqa_activation_layer {
    aqa_module base;          /* type: aqa_activation_name(kind) */
    aqa_activation_kind kind; /* which function */
    int dim;                  /* softmax dimension (negative counts from the end) */
} aqa_activation_layer;

aqa_activation_layer *aqa_activation_layer_new(aqa_module *parent, const char *name, aqa_activation_kind kind);
/* nn.Softmax(dim). */
aqa_activation_layer *aqa_softmax_layer_new(aqa_module *parent, const char *name, int dim);
aqa_tensor *aqa_activation_layer_forward(aqa_activation_layer *m, aqa_tensor *x);

#ifdef __cplusplus
}
#endif

#endif /* AQA_NN_ACTIVATION_H */
