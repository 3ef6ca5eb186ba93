/* dropout.h: dropout, as torch.nn.functional.dropout and torch.nn.Dropout.
 *
 * In training each element is kept with probability 1 - p and scaled by 1 / (1 - p), zeroed
 * otherwise; the keep decisions come from a Philox generator (the default one, or one given), so
 * a seed reproduces them.  In eval mode (or p == 0) the input passes through unchanged (an alias,
 * no copy). */
#ifndef AQA_NN_DROPOUT_H
#define AQA_NN_DROPOUT_H

#include "nn/module.h"
#include "tensor/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* p in [0, 1]; gen NULL means the default generator.  Differentiable (the gradient is masked and
 * scaled the same way). */
aqa_tensor *aqa_dropout(aqa_tensor *x, double p, bool training, aqa_generator *gen);

typedef struct aqa_dropout_layer {
    aqa_module base;    /* type "Dropout"; no parameters */
    double p;           /* probability of zeroing an element */
    aqa_generator *gen; /* borrowed generator, or NULL for the default one */
} aqa_dropout_layer;

aqa_dropout_layer *aqa_dropout_layer_new(aqa_module *parent, const char *name, double p);
/* Uses base.training for the mode. */
aqa_tensor *aqa_dropout_layer_forward(aqa_dropout_layer *m, aqa_tensor *x);

#ifdef __cplusplus
}
#endif

#endif /* AQA_NN_DROPOUT_H */
