/* nn_cpu-impl.h: the CPU compute kernels of the convolution, pooling and batch-norm layers.
 *
 * The front-ends (nn/conv.c, nn/pool.c, nn/batchnorm.c) check arguments, compute shapes, make
 * contiguous operands, allocate outputs and record autograd nodes; these functions only compute.
 * They take contiguous host tensors of one floating dtype (F32 or F64) and write into
 * preallocated contiguous outputs, so a CUDA backend can provide the same functions for its
 * device.  Spatial layouts are always seen as 3-D (D, H, W): a 1-D layer has D = H = 1, a 2-D
 * layer D = 1. */
#ifndef AQA_NN_CPU_IMPL_H
#define AQA_NN_CPU_IMPL_H

#include "tensor/tensor.h"

/* Geometry of one convolution (or pooling window) problem, spatial dims padded to 3. */
typedef struct aqa_conv_geom {
    int64_t n;           /* batch size */
    int64_t c_in;        /* input channels (all groups) */
    int64_t c_out;       /* output channels (all groups); pooling: == c_in */
    int64_t groups;      /* channel groups (1 for pooling) */
    int64_t in[3];       /* input spatial size D, H, W */
    int64_t out[3];      /* output spatial size */
    int64_t k[3];        /* kernel size */
    int64_t stride[3];   /* window step */
    int64_t pad[3];      /* padding before the first element (the end padding only shapes out[]) */
    int64_t dil[3];      /* kernel dilation */
} aqa_conv_geom;

/* ---- convolution (nn/conv_cpu.c) -------------------------------------------------------- */
/* y [n, c_out, out...] = conv(x [n, c_in, in...], w [c_out, c_in/groups, k...]) + b [c_out]
 * (b may be NULL). */
aqa_status aqa__cpu_conv_forward(const aqa_conv_geom *g, const aqa_tensor *x, const aqa_tensor *w,
                                 const aqa_tensor *b, aqa_tensor *y);
/* From gy [n, c_out, out...]: gx (overwritten) = input gradient, gw (overwritten) = weight
 * gradient, gb (overwritten) = bias gradient; each may be NULL when not wanted (x may be NULL
 * when gw is).  The input gradient is also the forward of the transposed convolution. */
aqa_status aqa__cpu_conv_backward(const aqa_conv_geom *g, const aqa_tensor *x, const aqa_tensor *w,
                                  const aqa_tensor *gy, aqa_tensor *gx, aqa_tensor *gw, aqa_tensor *gb);

/* float32 convolution on aqa's packed GEMM with the unfolding in the packers (nn/conv_gemm.c);
 * aqa__cpu_conv_forward/_backward take this path for float32 whenever the CPU has a GEMM
 * microkernel (usable), the input gradient only for unit strides (input_grad_usable). */
bool aqa__conv_gemm_usable(const aqa_conv_geom *g);
bool aqa__conv_gemm_input_grad_usable(const aqa_conv_geom *g);
aqa_status aqa__conv_gemm_forward(const aqa_conv_geom *g, const float *x, const float *w, const float *b, float *y);
aqa_status aqa__conv_gemm_weight_grad(const aqa_conv_geom *g, const float *x, const float *gy, float *gw);
aqa_status aqa__conv_gemm_input_grad(const aqa_conv_geom *g, const float *w, const float *gy, float *gx);
/* Test hook: set true to run float32 convolutions on the vol2col + OpenBLAS path instead. */
extern bool aqa_conv_gemm_disabled;
/* float32 3x3x3 convolutions with unit stride and dilation, one group, padding <= 2 and at least
 * 16 channels on each side by Winograd's F(2x2x2, 3x3x3) on AVX-512 (nn/conv_winograd.c); the
 * CPU conv functions take this path first when usable. */
bool aqa__conv_winograd_usable(const aqa_conv_geom *g);
aqa_status aqa__conv_winograd_forward(const aqa_conv_geom *g, const float *x, const float *w, const float *b,
                                      float *y);
aqa_status aqa__conv_winograd_weight_grad(const aqa_conv_geom *g, const float *x, const float *gy, float *gw);
aqa_status aqa__conv_winograd_input_grad(const aqa_conv_geom *g, const float *w, const float *gy, float *gx);
/* Test hooks: set true to send those convolutions to the GEMM path instead; products run there. */
extern bool aqa_conv_winograd_disabled;
extern long aqa_conv_winograd_runs;

/* Test hook: set true to process samples one by one even where the kernels would fold several
 * small-output samples into one GEMM (results must agree either way). */
extern bool aqa_conv_fold_disabled;

/* ---- pooling (nn/pool.c) ------------------------------------------------------------------- */
/* Max pooling over windows (k, stride, pad, dil); c_in == c_out.  idx (I64, y's shape) receives
 * the flat position of each maximum inside its input plane (D*H*W), as torch. */
aqa_status aqa__cpu_max_pool_forward(const aqa_conv_geom *g, const aqa_tensor *x, aqa_tensor *y,
                                     aqa_tensor *idx);
/* gx (overwritten) = scatter of gy at idx. */
aqa_status aqa__cpu_max_pool_backward(const aqa_conv_geom *g, const aqa_tensor *gy, const aqa_tensor *idx,
                                      aqa_tensor *gx);
/* Average pooling with torch's divisor rules (count_include_pad, divisor_override > 0). */
aqa_status aqa__cpu_avg_pool_forward(const aqa_conv_geom *g, bool count_include_pad, int64_t divisor_override,
                                     const aqa_tensor *x, aqa_tensor *y);
aqa_status aqa__cpu_avg_pool_backward(const aqa_conv_geom *g, bool count_include_pad, int64_t divisor_override,
                                      const aqa_tensor *gy, aqa_tensor *gx);
/* Adaptive average pooling: window i of an output dim covers [floor(i*in/out), ceil((i+1)*in/out)). */
aqa_status aqa__cpu_adaptive_avg_pool_forward(const aqa_conv_geom *g, const aqa_tensor *x, aqa_tensor *y);
aqa_status aqa__cpu_adaptive_avg_pool_backward(const aqa_conv_geom *g, const aqa_tensor *gy, aqa_tensor *gx);

/* ---- batch norm (nn/batchnorm.c) --------------------------------------------------------- */
/* x, y: [n, c, s] (s = spatial size).  training: mean and var (biased) of each channel are computed
 * from x into mean/var and invstd = 1/sqrt(var + eps); otherwise mean is copied from run_mean and
 * invstd from run_var (var is left untouched and may be NULL).  weight, bias may be NULL.
 * mean, var, invstd: [c] of x's dtype; run_mean, run_var: [c] of x's dtype. */
aqa_status aqa__cpu_batch_norm_forward(int64_t n, int64_t c, int64_t s, const aqa_tensor *x,
                                       const aqa_tensor *weight, const aqa_tensor *bias, bool training,
                                       const aqa_tensor *run_mean, const aqa_tensor *run_var, double eps,
                                       aqa_tensor *y, aqa_tensor *mean, aqa_tensor *var, aqa_tensor *invstd);
/* Gradients (each may be NULL): training uses the batch-statistics derivative, eval the affine one. */
aqa_status aqa__cpu_batch_norm_backward(int64_t n, int64_t c, int64_t s, const aqa_tensor *x, const aqa_tensor *gy,
                                        const aqa_tensor *mean, const aqa_tensor *invstd,
                                        const aqa_tensor *weight, bool training, aqa_tensor *gx,
                                        aqa_tensor *gw, aqa_tensor *gb);

#endif /* AQA_NN_CPU_IMPL_H */
