/* pool.h: max, average and adaptive-average pooling over 1, 2 or 3 spatial dims, as
 * torch.nn.functional.max_pool{1,2,3}d, avg_pool{1,2,3}d and adaptive_avg_pool{1,2,3}d, and the
 * MaxPool/AvgPool/AdaptiveAvgPool modules (which have no parameters).
 *
 * Input [N, C, (D,) (H,) W] or without the batch dim.  Output sizes follow torch exactly:
 * out = floor_or_ceil((in + 2*pad - dil*(k-1) - 1) / stride) + 1, and with ceil_mode the last
 * window must start inside the input or the left padding (else out is one less).  Padding must
 * be at most half the (effective) kernel.  Average pooling divides by the window's size clipped
 * to the padded input (count_include_pad) or to the input (not), or by divisor_override (> 0).
 * Max pooling's gradient goes to the first maximum of each window (NaN counts as maximum).
 *
 * Array arguments have nd entries (D, H, W order); stride NULL or an entry 0 means the kernel
 * size, padding NULL means 0, dilation NULL or 0 means 1.
 *
 * CPU tensors use fused kernels; other devices (or any tensor when AQA_POOL_COMPOSED is set) get
 * the same results composed of differentiable tensor ops, without max-pool indices (asking for
 * them there fails), and with a max-pool gradient split evenly between tied maxima. */
#ifndef AQA_POOL_H
#define AQA_POOL_H

#include "nn/module.h"
#include "tensor/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- functional ---------------------------------------------------------------------------- */
/* *indices (if not NULL) receives the I64 position of each maximum in its input plane
 * (flattened (D, H, W)), as torch's return_indices. */
aqa_tensor *aqa_max_pool(aqa_tensor *x, int nd, const int64_t *kernel, const int64_t *stride, const int64_t *padding,
                         const int64_t *dilation, bool ceil_mode, aqa_tensor **indices);
aqa_tensor *aqa_avg_pool(aqa_tensor *x, int nd, const int64_t *kernel, const int64_t *stride, const int64_t *padding,
                         bool ceil_mode, bool count_include_pad, int64_t divisor_override);
/* output_size has nd entries. */
aqa_tensor *aqa_adaptive_avg_pool(aqa_tensor *x, int nd, const int64_t *output_size);

/* Same kernel/stride/padding on every dim (stride 0 = kernel). */
aqa_tensor *aqa_max_pool1d(aqa_tensor *x, int64_t kernel, int64_t stride, int64_t padding, int64_t dilation,
                           bool ceil_mode);
aqa_tensor *aqa_max_pool2d(aqa_tensor *x, int64_t kernel, int64_t stride, int64_t padding, int64_t dilation,
                           bool ceil_mode);
aqa_tensor *aqa_max_pool3d(aqa_tensor *x, int64_t kernel, int64_t stride, int64_t padding, int64_t dilation,
                           bool ceil_mode);
aqa_tensor *aqa_avg_pool1d(aqa_tensor *x, int64_t kernel, int64_t stride, int64_t padding, bool ceil_mode,
                           bool count_include_pad);
aqa_tensor *aqa_avg_pool2d(aqa_tensor *x, int64_t kernel, int64_t stride, int64_t padding, bool ceil_mode,
                           bool count_include_pad);
aqa_tensor *aqa_avg_pool3d(aqa_tensor *x, int64_t kernel, int64_t stride, int64_t padding, bool ceil_mode,
                           bool count_include_pad);

/* ---- modules ------------------------------------------------------------------------------- */
typedef enum aqa_pool_kind { AQA_POOL_MAX, AQA_POOL_AVG, AQA_POOL_ADAPTIVE_AVG } aqa_pool_kind;

typedef struct aqa_pool_layer {
    aqa_module base;
    aqa_pool_kind kind;
    int nd;                    /* spatial dims */
    int64_t kernel[3];         /* window (max/avg); output size (adaptive) */
    int64_t stride[3];         /* 0 = kernel */
    int64_t padding[3];
    int64_t dilation[3];       /* max only; 0 = 1 */
    bool ceil_mode;
    bool count_include_pad;    /* avg only (torch default true) */
    int64_t divisor_override;  /* avg only; 0 = none */
} aqa_pool_layer;

/* MaxPool{nd}d / AvgPool{nd}d (count_include_pad true) / AdaptiveAvgPool{nd}d (kernel = output
 * size); stride and padding may be NULL.  Change the struct's fields for the other options. */
aqa_pool_layer *aqa_pool_layer_new(aqa_module *parent, const char *name, aqa_pool_kind kind, int nd,
                                   const int64_t *kernel, const int64_t *stride, const int64_t *padding,
                                   bool ceil_mode);
aqa_tensor *aqa_pool_layer_forward(aqa_pool_layer *m, aqa_tensor *x);

#ifdef __cplusplus
}
#endif

#endif /* AQA_POOL_H */
