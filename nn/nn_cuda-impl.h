/* nn_cuda-impl.h: the CUDA kernels of the fused layers (layer norm, batch norm, pooling, Adam),
 * built only with the CUDA backend (AQA_HAVE_CUDA).  Same contracts as the CPU kernels of
 * nn_cpu-impl.h / norm_layer.c: contiguous operands of one floating dtype (F32 or F64) on one
 * CUDA device, preallocated contiguous outputs; these functions only compute (launches on the
 * device's stream, no synchronisation). */
#ifndef AQA_NN_CUDA_IMPL_H
#define AQA_NN_CUDA_IMPL_H

#include "nn/nn_cpu-impl.h"

/* ---- layer norm (nn/norm_cuda.c) ----------------------------------------------------------- */
/* Rows [M, D]: y = (x - mean) * rstd * w + b; mean, rstd [M] written.  w, b may be NULL. */
aqa_status aqa__cuda_layer_norm_forward(int64_t M, int64_t D, const aqa_tensor *x, const aqa_tensor *w,
                                        const aqa_tensor *b, double eps, aqa_tensor *y, aqa_tensor *mean,
                                        aqa_tensor *rstd);
/* gx [M, D], gw [D], gb [D] (each may be NULL, all overwritten) from g [M, D]. */
aqa_status aqa__cuda_layer_norm_backward(int64_t M, int64_t D, const aqa_tensor *g, const aqa_tensor *x,
                                         const aqa_tensor *mean, const aqa_tensor *rstd, const aqa_tensor *w,
                                         aqa_tensor *gx, aqa_tensor *gw, aqa_tensor *gb);

/* ---- batch norm (nn/norm_cuda.c): aqa__cpu_batch_norm_* of nn_cpu-impl.h --------------------- */
aqa_status aqa__cuda_batch_norm_forward(int64_t n, int64_t c, int64_t s, const aqa_tensor *x,
                                        const aqa_tensor *weight, const aqa_tensor *bias, bool training,
                                        const aqa_tensor *run_mean, const aqa_tensor *run_var, double eps,
                                        aqa_tensor *y, aqa_tensor *mean, aqa_tensor *var, aqa_tensor *invstd);
aqa_status aqa__cuda_batch_norm_backward(int64_t n, int64_t c, int64_t s, const aqa_tensor *x, const aqa_tensor *gy,
                                         const aqa_tensor *mean, const aqa_tensor *invstd,
                                         const aqa_tensor *weight, bool training, aqa_tensor *gx,
                                         aqa_tensor *gw, aqa_tensor *gb);

/* ---- pooling (nn/pool_cuda.c): aqa__cpu_*_pool_* of nn_cpu-impl.h, except that the backward
 * functions overwrite all of gx (gather over input positions; no zeroing needed) ------------- */
aqa_status aqa__cuda_max_pool_forward(const aqa_conv_geom *g, const aqa_tensor *x, aqa_tensor *y, aqa_tensor *idx);
aqa_status aqa__cuda_max_pool_backward(const aqa_conv_geom *g, const aqa_tensor *gy, const aqa_tensor *idx,
                                       aqa_tensor *gx);
aqa_status aqa__cuda_avg_pool_forward(const aqa_conv_geom *g, bool count_include_pad, int64_t divisor_override,
                                      const aqa_tensor *x, aqa_tensor *y);
aqa_status aqa__cuda_avg_pool_backward(const aqa_conv_geom *g, bool count_include_pad, int64_t divisor_override,
                                       const aqa_tensor *gy, aqa_tensor *gx);
aqa_status aqa__cuda_adaptive_avg_pool_forward(const aqa_conv_geom *g, const aqa_tensor *x, aqa_tensor *y);
aqa_status aqa__cuda_adaptive_avg_pool_backward(const aqa_conv_geom *g, const aqa_tensor *gy, aqa_tensor *gx);

/* ---- Adam / AdamW (nn/optim_cuda.c) -------------------------------------------------------- */
/* One parameter of a multi-tensor step: contiguous device buffers of one dtype. */
typedef struct aqa_adam_entry {
    void *p, *g, *m, *v, *vmax; /* parameter, gradient, exp_avg, exp_avg_sq, max_exp_avg_sq (or NULL) */
    int64_t n;                  /* elements */
    double neg_step;            /* -lr / (1 - beta1^step) */
    double bc2_sqrt;            /* sqrt(1 - beta2^step) */
} aqa_adam_entry;
/* Scalars shared by the group (as adam_scalars in nn/optim.c). */
typedef struct aqa_adam_group_scalars {
    double decay, l2, w1, beta2, c2, eps;
    bool lerp_low;
} aqa_adam_group_scalars;
/* One launch updating the n entries (all of dtype dt on CUDA device dev; vmax all set or all
 * NULL), with the CPU loop's operations and rounding. */
aqa_status aqa__cuda_adam_multi(aqa_dtype dt, int dev, int n, const aqa_adam_entry *entries,
                                const aqa_adam_group_scalars *k);

/* ---- attention softmax (nn/attention_cuda.c, over the backend's fused softmax) --------------- */
/* out (contiguous) = softmax(x * scale + mask, -inf above the diagonal when causal) over the last
 * dim, whose rows must be contiguous (stride 1) and at most 8192 long; mask NULL or a view of
 * x's shape (stride 0 where broadcast) of x's dtype; the causal query index is the row's index
 * along dim -2. */
aqa_status aqa__cuda_attention_softmax(aqa_tensor *out, const aqa_tensor *x, const aqa_tensor *mask, double scale,
                                       bool causal);

/* ---- fused attention forward (nn/attention_cuda.c) ----------------------------------------- */
/* Whether the kernel takes q [..., L, E], k [..., S, E], v [..., S, Ev]: the same batch dims (at
 * most 4, no broadcasting), one dtype F32 (E, Ev <= 64) or F64 (<= 32). */
bool aqa__cuda_attention_fits(const aqa_tensor *q, const aqa_tensor *k, const aqa_tensor *v);
/* out [..., L, Ev] (contiguous) = softmax(scale q k^T + mask, causal) v without materialising the
 * scores; q, k, v any strides; mask NULL or a view of [..., L, S] (stride 0 where broadcast). */
aqa_status aqa__cuda_attention_forward(aqa_tensor *out, const aqa_tensor *q, const aqa_tensor *k, const aqa_tensor *v,
                                       const aqa_tensor *mask, double scale, bool causal);

#endif /* AQA_NN_CUDA_IMPL_H */
