/* nn.h: the layers in one include -- modules with PyTorch's parameter names, layers, losses,
 * initialisers, optimizers and schedules, checkpoints, data-parallel training. */
#ifndef AQA_NN_H
#define AQA_NN_H

#include "nn/activation.h"
#include "nn/attention.h"
#include "nn/batchnorm.h"
#include "nn/checkpoint.h"
#include "nn/container.h"
#include "nn/conv.h"
#include "nn/data_parallel.h"
#include "nn/dropout.h"
#include "nn/graph_conv.h"
#include "nn/init.h"
#include "nn/linear.h"
#include "nn/loss.h"
#include "nn/module.h"
#include "nn/norm_layer.h"
#include "nn/optim.h"
#include "nn/pool.h"
#include "nn/rnn.h"
#include "nn/sched.h"
#include "nn/transformer.h"

#endif /* AQA_NN_H */
