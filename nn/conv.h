/* conv.h: convolutions as torch.nn.functional.conv1d/2d/3d and conv_transpose1d, and the
 * Conv1d/Conv2d/Conv3d/ConvTranspose1d modules.
 *
 * Layouts as PyTorch: input [N, C_in, (D,) (H,) W] (the batch dim may be left out), weight
 * [C_out, C_in / groups, k...] (transposed: [C_in, C_out / groups, k...]), bias [C_out].
 * Computed by tiled vol2col + GEMM (nn/conv_cpu.c; CUDA tensors: nn/conv_cuda.c, cuBLAS) with its own
 * backward: input, weight and bias gradients (first order only: the backward is not itself
 * differentiable).
 *
 * Options are given in an aqa_conv_opts whose zero value means torch's defaults (stride 1,
 * padding 0, dilation 1, groups 1):
 *
 *     ```c
 *     y = aqa_conv3d(x, w, b, &(aqa_conv_opts){.stride = {2, 2, 2}, .padding_mode = AQA_PADDING_TF_SAME});
 *     ```
 *
 * Entries are per spatial dim in order (D, H, W for 3-D; just [0] for 1-D). */
#ifndef AQA_CONV_H
#define AQA_CONV_H

#include "nn/module.h"
#include "tensor/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum aqa_padding_mode {
    AQA_PADDING_EXPLICIT = 0, /* padding[i] zeros on both sides (torch's integer padding) */
    AQA_PADDING_SAME,         /* torch padding='same': stride 1 only; total dil*(k-1), the odd
                                 element at the end */
    AQA_PADDING_TF_SAME,      /* TensorFlow "SAME" from the input size (pytorch-i3d's Unit3D):
                                 total = max((ceil(in/s)-1)*s + (k-1)*dil + 1 - in, 0),
                                 lo = total/2, hi = total - lo */
    AQA_PADDING_VALID         /* torch padding='valid': no padding */
} aqa_padding_mode;

typedef struct aqa_conv_opts {
    int64_t stride[3];           /* 0 means 1 */
    int64_t padding[3];          /* explicit padding per side (AQA_PADDING_EXPLICIT only) */
    int64_t dilation[3];         /* 0 means 1 */
    int64_t groups;              /* 0 means 1 */
    aqa_padding_mode padding_mode;
    int64_t output_padding[3];   /* transposed convolutions only: extra size at the end */
} aqa_conv_opts;

/* ---- functional ---------------------------------------------------------------------------- */
/* nd-dimensional convolution, nd = w->ndim - 2 (1..3).  b may be NULL; opts NULL = defaults. */
aqa_tensor *aqa_conv(aqa_tensor *x, aqa_tensor *w, aqa_tensor *b, const aqa_conv_opts *opts);
/* The same checking nd (torch.nn.functional.conv1d/2d/3d). */
aqa_tensor *aqa_conv1d(aqa_tensor *x, aqa_tensor *w, aqa_tensor *b, const aqa_conv_opts *opts);
aqa_tensor *aqa_conv2d(aqa_tensor *x, aqa_tensor *w, aqa_tensor *b, const aqa_conv_opts *opts);
aqa_tensor *aqa_conv3d(aqa_tensor *x, aqa_tensor *w, aqa_tensor *b, const aqa_conv_opts *opts);
/* Transposed convolution (the adjoint of aqa_conv; torch conv_transpose{1,2,3}d), nd = w->ndim - 2;
 * explicit padding only.  Output size (in-1)*s - 2*pad + dil*(k-1) + output_padding + 1. */
aqa_tensor *aqa_conv_transpose(aqa_tensor *x, aqa_tensor *w, aqa_tensor *b, const aqa_conv_opts *opts);
aqa_tensor *aqa_conv_transpose1d(aqa_tensor *x, aqa_tensor *w, aqa_tensor *b, const aqa_conv_opts *opts);

/* The padding the mode gives for one dim (in = input size): *lo before, *hi after.  Fails
 * (AQA_EINVAL) for SAME with stride > 1, as torch. */
aqa_status aqa_conv_padding(aqa_padding_mode mode, int64_t explicit_pad, int64_t in, int64_t k, int64_t stride,
                            int64_t dilation, int64_t *lo, int64_t *hi);

/* ---- memory bound of the column tiles ------------------------------------------------------- */
/* All column buffers of one CPU conv call together stay under this many bytes (default 64 MiB; 0
 * restores the default).  Any value gives the same results; smaller ones only cut more tiles.
 * (The CUDA kernels have their own budget of device scratch, 256 MiB.) */
void aqa_conv_set_tile_bytes(size_t bytes);
size_t aqa_conv_tile_bytes(void);
/* The largest column-buffer allocation since the last reset (for tests and tuning). */
size_t aqa_conv_peak_col_bytes(void);
void aqa_conv_reset_peak_col_bytes(void);

/* ---- modules ------------------------------------------------------------------------------- */
typedef struct aqa_conv_layer {
    aqa_module base;
    aqa_tensor *weight;        /* [out, in/groups, k...] ([in, out/groups, k...] when transposed) */
    aqa_tensor *bias;          /* [out] or NULL */
    int nd;                    /* spatial dims: 1, 2 or 3 */
    bool transposed;           /* ConvTranspose */
    int64_t in_channels, out_channels;
    int64_t kernel_size[3];    /* per spatial dim */
    aqa_conv_opts opts;        /* stride, padding, dilation, groups, padding mode, output padding */
} aqa_conv_layer;
typedef aqa_conv_layer aqa_conv1d_layer;
typedef aqa_conv_layer aqa_conv2d_layer;
typedef aqa_conv_layer aqa_conv3d_layer;
typedef aqa_conv_layer aqa_conv_transpose1d_layer;

/* General form: nd spatial dims, kernel[nd], opts may be NULL.  Parameters "weight" then "bias",
 * initialised as torch (kaiming_uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in)) for both, fan_in =
 * weight.shape[1] * prod(kernel)) from the default generator. */
aqa_conv_layer *aqa_conv_layer_new(aqa_module *parent, const char *name, int nd, bool transposed,
                                   int64_t in_channels, int64_t out_channels, const int64_t *kernel,
                                   const aqa_conv_opts *opts, bool bias);
/* torch.nn.Conv1d/2d/3d with a cubic kernel and equal stride/padding/dilation on every dim. */
aqa_conv_layer *aqa_conv1d_layer_new(aqa_module *parent, const char *name, int64_t in_channels,
                                     int64_t out_channels, int64_t kernel, int64_t stride, int64_t padding,
                                     int64_t dilation, int64_t groups, bool bias);
aqa_conv_layer *aqa_conv2d_layer_new(aqa_module *parent, const char *name, int64_t in_channels,
                                     int64_t out_channels, int64_t kernel, int64_t stride, int64_t padding,
                                     int64_t dilation, int64_t groups, bool bias);
aqa_conv_layer *aqa_conv3d_layer_new(aqa_module *parent, const char *name, int64_t in_channels,
                                     int64_t out_channels, int64_t kernel, int64_t stride, int64_t padding,
                                     int64_t dilation, int64_t groups, bool bias);
/* torch.nn.ConvTranspose1d (argument order as torch). */
aqa_conv_layer *aqa_conv_transpose1d_layer_new(aqa_module *parent, const char *name, int64_t in_channels,
                                               int64_t out_channels, int64_t kernel, int64_t stride,
                                               int64_t padding, int64_t output_padding, int64_t groups, bool bias,
                                               int64_t dilation);
aqa_tensor *aqa_conv_layer_forward(aqa_conv_layer *m, aqa_tensor *x);

#ifdef __cplusplus
}
#endif

#endif /* AQA_CONV_H */
