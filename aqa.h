/* aqa.h: the public API of libaqa in one include (pkg-config --cflags aqa adds its folder), layer
 * by layer from the bottom (docs/architecture.md).  Each layer's umbrella header, and each
 * component's header, can also be included on its own. */
#ifndef AQA_H
#define AQA_H

#include "io/io.h"             /* errors, files and formats: safetensors, pickle, npy */
#include "image/image.h"       /* images: PNG/JPEG codecs */
#include "image/resize.h"      /* PIL-exact resizing and cropping */
#include "image/canvas.h"      /* drawing: shapes and a bitmap font */
#include "image/video.h"       /* video files as RGB frames (FFmpeg) */
#include "tensor/tensor.h"     /* tensors, storage, scopes, factories, random numbers */
#include "tensor/tensor_file.h"/* tensors to and from safetensors files */
#include "ops/ops.h"           /* the differentiable ops, views, conversions, printing */
#include "autograd/autograd.h" /* backward, grad mode, gradcheck */
#include "dist/dist.h"         /* process groups and collectives (several processes) */
#include "nn/nn.h"             /* modules, layers, losses, optimizers, checkpoints */
#include "models/models.h"     /* CLIP, I3D, MVLA, the assessment heads */
#include "datasets/datasets.h" /* the AQA datasets, loaders, texts, the synthetic set */
#include "eval/eval.h"         /* metrics and figures */

#endif /* AQA_H */
