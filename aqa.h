/* aqa.h: the public API of libaqa in one include (pkg-config --cflags aqa adds its folder).
 * Each component's header can also be included on its own. */
#ifndef AQA_H
#define AQA_H

/* tensors, ops, autograd */
#include "tensor/error.h"
#include "tensor/tensor.h"
#include "tensor/ops.h"
#include "autograd/autograd.h"

/* layers, losses, optimisation, files */
#include "nn/module.h"
#include "nn/safetensors.h"
#include "nn/tensor_file.h"
#include "nn/atomic_file.h"
#include "nn/init.h"
#include "nn/linear.h"
#include "nn/norm_layer.h"
#include "nn/dropout.h"
#include "nn/activation.h"
#include "nn/attention.h"
#include "nn/transformer.h"
#include "nn/conv.h"
#include "nn/pool.h"
#include "nn/batchnorm.h"
#include "nn/loss.h"
#include "nn/optim.h"
#include "nn/sched.h"
#include "nn/checkpoint.h"

#endif /* AQA_H */
