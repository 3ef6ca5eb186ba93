/* layers-impl.h: helpers shared by the layer files of nn/ (linear, norm_layer, dropout,
 * activation, attention, transformer); not installed. */
#ifndef AQA_LAYERS_IMPL_H
#define AQA_LAYERS_IMPL_H

#include "tensor/tensor.h"

/* An unowned alias of t as a [rows, t->shape[last]] matrix when t's leading dimensions collapse
 * into one uniformly strided row index (true for contiguous tensors, row slices, stride-0
 * broadcasts); NULL otherwise (no error recorded).  A 1-D t gives [1, n]. */
aqa_tensor *aqa__nn_matrix_alias(const aqa_tensor *t);
/* When true, the layers take their composed (device-generic) paths even on the CPU: LayerNorm,
 * the attention softmax and dropout's mask.  Lets the CPU tests cover what other devices run. */
extern bool aqa__nn_force_composed;

#endif /* AQA_LAYERS_IMPL_H */
