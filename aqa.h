/* aqa.h: the whole public API of libaqa in one include (pkg-config --cflags aqa adds its folder). */
#ifndef AQA_H
#define AQA_H

#include "tensor/error.h"
#include "tensor/tensor.h"
#include "tensor/ops.h"
#include "autograd/autograd.h"

#endif /* AQA_H */
