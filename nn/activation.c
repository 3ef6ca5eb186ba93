/* activation.c: activation modules over the elementwise ops. */
#include "nn/activation.h"
#include "ops/ops.h"

const char *aqa_activation_name(aqa_activation_kind kind) {
    switch (kind) {
    case AQA_ACT_RELU: return "ReLU";
    case AQA_ACT_GELU: return "GELU";
    case AQA_ACT_GELU_TANH: return "GELU";
    case AQA_ACT_QUICK_GELU: return "QuickGELU";
    case AQA_ACT_SIGMOID: return "Sigmoid";
    case AQA_ACT_TANH: return "Tanh";
    case AQA_ACT_SOFTMAX: return "Softmax";
    case AQA_ACT_IDENTITY: return "Identity";
    }
    return "Activation";
}

static aqa_tensor *apply(aqa_tensor *x, aqa_activation_kind kind, int dim) {
    switch (kind) {
    case AQA_ACT_RELU: return aqa_relu(x);
    case AQA_ACT_GELU: return aqa_gelu(x);
    case AQA_ACT_GELU_TANH: return aqa_gelu_tanh(x);
    case AQA_ACT_QUICK_GELU: return aqa_quick_gelu(x);
    case AQA_ACT_SIGMOID: return aqa_sigmoid(x);
    case AQA_ACT_TANH: return aqa_tanh(x);
    case AQA_ACT_SOFTMAX: return aqa_softmax(x, dim);
    case AQA_ACT_IDENTITY: return x ? aqa_view(x, x->ndim, x->shape) : NULL;
    }
    return aqa_fail_null("aqa_activation: unknown kind %d", (int)kind);
}

aqa_tensor *aqa_activation(aqa_tensor *x, aqa_activation_kind kind) { return apply(x, kind, -1); }

AQA_MODULE_FORWARD(activation_any, aqa_activation_layer, aqa_activation_layer_forward)

aqa_activation_layer *aqa_activation_layer_new(aqa_module *parent, const char *name, aqa_activation_kind kind) {
    if ((int)kind < 0 || kind > AQA_ACT_IDENTITY) return aqa_fail_null("activation %s: unknown kind %d", name ? name : "", (int)kind);
    aqa_activation_layer *m = aqa_module_new(sizeof *m, aqa_activation_name(kind), parent, name, NULL);
    if (m) {
        m->kind = kind;
        m->dim = -1;
        m->base.forward = activation_any;
    }
    return m;
}

aqa_activation_layer *aqa_softmax_layer_new(aqa_module *parent, const char *name, int dim) {
    aqa_activation_layer *m = aqa_activation_layer_new(parent, name, AQA_ACT_SOFTMAX);
    if (m) m->dim = dim;
    return m;
}

aqa_tensor *aqa_activation_layer_forward(aqa_activation_layer *m, aqa_tensor *x) {
    if (!m) return aqa_fail_null("aqa_activation_layer_forward: NULL module");
    return apply(x, m->kind, m->dim);
}
