/* conv_cuda-impl.h: the CUDA convolution kernels (nn/conv_cuda.c), the device counterparts of
 * aqa__cpu_conv_forward / aqa__cpu_conv_backward (nn/nn_cpu-impl.h): same arguments, same
 * semantics (groups, stride, padding, dilation; 1-, 2- and 3-D through the 3-D geometry; float32
 * and float64), operands are contiguous tensors on one CUDA device.  Built only with the CUDA
 * backend (AQA_HAVE_CUDA). */
#ifndef AQA_NN_CONV_CUDA_IMPL_H
#define AQA_NN_CONV_CUDA_IMPL_H

#include "config.h"
#include "nn/nn_cpu-impl.h"

#ifdef AQA_HAVE_CUDA
aqa_status aqa__cuda_conv_forward(const aqa_conv_geom *g, const aqa_tensor *x, const aqa_tensor *w,
                                  const aqa_tensor *b, aqa_tensor *y);
aqa_status aqa__cuda_conv_backward(const aqa_conv_geom *g, const aqa_tensor *x, const aqa_tensor *w,
                                   const aqa_tensor *gy, aqa_tensor *gx, aqa_tensor *gw, aqa_tensor *gb);

/* Budget in bytes of the device scratch of one call (column matrix, gathered output-gradient or
 * output tiles); 0 restores the default (256 MiB).  Any value gives the same results, smaller
 * ones cut more tiles (tests use tiny budgets to exercise the tiling). */
void aqa__cuda_conv_set_tile_bytes(size_t bytes);
/* Largest scratch of one call seen since the last reset (tests check the bound). */
size_t aqa__cuda_conv_peak_bytes(void);
void aqa__cuda_conv_reset_peak_bytes(void);
#endif

#endif /* AQA_NN_CONV_CUDA_IMPL_H */
