/* batchnorm.h: batch normalisation as torch.nn.functional.batch_norm and the BatchNorm1d/2d/3d
 * modules.
 *
 * Train mode normalises with the batch statistics of each channel (mean and biased variance over
 * N and the spatial dims) and, when running statistics are given, updates them in place:
 * running = (1 - momentum) * running + momentum * batch, with the unbiased variance for
 * running_var.  Eval mode normalises with the running statistics.  One fused node gives the input,
 * weight and bias gradients (first order). */
#ifndef AQA_BATCHNORM_H
#define AQA_BATCHNORM_H

#include "nn/module.h"
#include "tensor/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* x [N, C, ...]; running_mean/var [C] or NULL (required when !training); weight/bias [C] or NULL. */
/* (Non-CPU devices use a path composed of tensor ops; AQA_BATCH_NORM_COMPOSED=1 forces it on
 * the CPU, for tests.) */
aqa_tensor *aqa_batch_norm(aqa_tensor *x, aqa_tensor *running_mean, aqa_tensor *running_var, aqa_tensor *weight,
                           aqa_tensor *bias, bool training, double momentum, double eps);

typedef struct aqa_batch_norm_layer {
    aqa_module base;
    aqa_tensor *weight;              /* [C] parameter (ones), NULL when !affine */
    aqa_tensor *bias;                /* [C] parameter (zeros), NULL when !affine */
    aqa_tensor *running_mean;        /* [C] buffer (zeros), NULL when !track_running_stats */
    aqa_tensor *running_var;         /* [C] buffer (ones) */
    aqa_tensor *num_batches_tracked; /* 0-d int64 buffer: train-mode forward calls */
    int nd;                          /* 1, 2 or 3 (BatchNorm1d/2d/3d: input dims 2-3, 4, 5) */
    int64_t num_features;
    double eps;
    double momentum;                 /* NAN = None: cumulative average (1 / num_batches_tracked) */
    bool affine, track_running_stats;
} aqa_batch_norm_layer;

/* torch.nn.BatchNorm{nd}d(num_features, eps, momentum, affine, track_running_stats); pass
 * momentum NAN for momentum=None.  Registers weight, bias, running_mean, running_var,
 * num_batches_tracked in torch's order. */
aqa_batch_norm_layer *aqa_batch_norm_layer_new(aqa_module *parent, const char *name, int nd, int64_t num_features,
                                               double eps, double momentum, bool affine, bool track_running_stats);
/* torch's defaults: eps 1e-5, momentum 0.1, affine, tracking. */
aqa_batch_norm_layer *aqa_batch_norm1d_layer_new(aqa_module *parent, const char *name, int64_t num_features);
aqa_batch_norm_layer *aqa_batch_norm2d_layer_new(aqa_module *parent, const char *name, int64_t num_features);
aqa_batch_norm_layer *aqa_batch_norm3d_layer_new(aqa_module *parent, const char *name, int64_t num_features);
aqa_tensor *aqa_batch_norm_layer_forward(aqa_batch_norm_layer *m, aqa_tensor *x);

/* ---- several processes (nn/data_parallel.h sets these) ------------------------------------------ */
struct aqa_dist;
/* Receives the batch statistics of a train-mode call instead of the running statistics, whose
 * update would be running = (1 - momentum) running + momentum mean (and likewise the variance,
 * with momentum * var_scale): data-parallel training records them and replays the updates in
 * micro-batch order on every rank, so that running statistics equal one process's. */
typedef void (*aqa_bn_stats_recorder)(void *user, aqa_tensor *running_mean, aqa_tensor *running_var,
                                      const aqa_tensor *batch_mean, const aqa_tensor *batch_var, double var_scale,
                                      double momentum);
/* fn NULL: update in place (the default).  Process-wide; set by the training loop's thread. */
void aqa_batch_norm_set_recorder(aqa_bn_stats_recorder fn, void *user);
/* SyncBatchNorm (torch.nn.SyncBatchNorm): train-mode statistics over the ranks of pg, so that N
 * ranks normalise as one process over their joined batches (the sums go through the group's
 * all-reduce, in the forward and in the backward).  NULL (default): this process's batch. */
void aqa_batch_norm_set_sync_group(struct aqa_dist *pg);
/* Applies one recorded update (what aqa_batch_norm does in place when no recorder is set). */
aqa_status aqa_batch_norm_update_running(aqa_tensor *running_mean, aqa_tensor *running_var, const aqa_tensor *batch_mean,
                                         const aqa_tensor *batch_var, double var_scale, double momentum);

#ifdef __cplusplus
}
#endif

#endif /* AQA_BATCHNORM_H */
