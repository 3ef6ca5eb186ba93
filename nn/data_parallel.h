/* data_parallel.h: data-parallel training whose result does not depend on the number of ranks
 * (torch's DistributedDataParallel, with a fixed reduction order).
 *
 * A step's global batch is cut into K micro-batches (a fixed size m, whatever the ranks: the
 * last may be smaller).  Rank r computes the contiguous micro-batches [r K / N, (r + 1) K / N),
 * each with its own forward and backward; their gradients (each multiplied by its weight, the
 * micro-batch's share of the batch) are summed in one fixed binary tree over the micro-batch
 * index, the same tree for any N: each rank sums the complete subtrees of its block, rank 0
 * receives the others' in order and finishes the tree, then broadcasts the sum.  What holds:
 *
 *   - on the CPU, N ranks and one process with the same batch and micro-batch size compute the
 *     same bits: gradients, parameters, optimizer state, losses, metrics, checkpoints (one
 *     process runs the same micro-batches one after the other, and micro-batch k's forward and
 *     backward see the same rows, augmentation and random numbers wherever it runs);
 *   - BatchNorm: each micro-batch normalises with its own statistics (torch DDP's per-rank
 *     statistics when m = batch / N); the running statistics are updated once per micro-batch
 *     in micro-batch order on every rank (the recorded statistics are exchanged), as one process
 *     does.  With sync_bn every rank computes one micro-batch and normalises with the statistics
 *     of the whole batch (SyncBatchNorm): equal to one process running the whole batch at once
 *     within float32 rounding (the sums run in another order), not bit-identical;
 *   - random numbers (dropout) of micro-batch k come from the default generator at offset
 *     base + k 2^32 blocks, and the step leaves it at base + K 2^32, on every rank (only when
 *     K > 1: one micro-batch on one rank draws exactly as a program without this module);
 *   - on a GPU the same holds as far as the kernels are deterministic (aqa's are; cuBLAS GEMMs
 *     are for a given GPU model and library version).
 * With K = 1 and one rank the gradients are exactly the backward's (weight 1, nothing summed).
 *
 *     ```c run
 *     aqa_dist *pg;                  // the launcher's ranks (one process when started alone)
 *     if (aqa_dist_init(&pg)) return 1;
 *     aqa_linear_layer *net = aqa_linear_layer_new(NULL, "", 4, 1, true);
 *     aqa_tensor **params;
 *     int n = aqa_module_parameters(&net->base, &params);
 *     aqa_optimizer *opt = aqa_sgd_new(&(aqa_sgd_options)AQA_SGD_DEFAULTS);
 *     aqa_optim_add_group(opt, params, n, 0.1, 0.0);
 *     aqa_ddp *d = aqa_ddp_new(pg, (aqa_module *[]){&net->base}, 1, params, n, &(aqa_ddp_options){0});
 *     if (aqa_ddp_sync_model(d)) return 1;   // rank 0's weights everywhere, then checked
 *     for (int step = 0; step < 3; step++) { // global batches of 8 rows in micro-batches of 2
 *         aqa_scope_begin();
 *         aqa_tensor *x = aqa_randn(AQA_SHAPE(8, 4), AQA_F32, NULL), *y = aqa_randn(AQA_SHAPE(8, 1), AQA_F32, NULL);
 *         int K = aqa_ddp_num_micro(8, 2), k0, k1;
 *         aqa_ddp_micro_range(K, aqa_dist_rank(pg), aqa_dist_size(pg), &k0, &k1);
 *         aqa_ddp_step_begin(d, K);
 *         for (int k = k0; k < k1; k++) {    // this rank's micro-batches
 *             aqa_ddp_micro_begin(d, k);
 *             aqa_tensor *out = aqa_linear_layer_forward(net, aqa_narrow(x, 0, 2 * k, 2));
 *             aqa_backward(aqa_mse_loss(out, aqa_narrow(y, 0, 2 * k, 2), AQA_REDUCTION_MEAN), NULL, false);
 *             aqa_ddp_micro_end(d, k, 2.0 / 8, NULL); // weight: the micro-batch's share
 *         }
 *         if (aqa_ddp_step_end(d, NULL) || aqa_optim_step(opt)) return 1; // .grad: the step's gradient
 *         aqa_scope_end();
 *     }
 *     aqa_ddp_free(d);
 *     aqa_dist_free(pg);
 *     aqa_optim_free(opt);
 *     free(params);
 *     aqa_module_free(&net->base);
 *     ```
 *
 * Gradients travel as one flat buffer per step (after the backward, not overlapped with it). */
#ifndef AQA_DATA_PARALLEL_H
#define AQA_DATA_PARALLEL_H

#include "dist/dist.h"
#include "nn/module.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aqa_ddp aqa_ddp; /* opaque */

#define AQA_DDP_MAX_SCALARS 32 /* values a micro-batch may report (losses) */

typedef struct aqa_ddp_options {
    bool sync_bn;   /* BatchNorm statistics over all ranks (one micro-batch per rank) */
    int n_scalars;  /* values each micro-batch reports to aqa_ddp_micro_end (0 .. AQA_DDP_MAX_SCALARS) */
} aqa_ddp_options;

/* Data-parallel training of models[n_models] (borrowed: every module whose parameters or buffers
 * the step uses) whose trained parameters are params[n] (borrowed, the optimizer's, in the same
 * order on every rank; one dtype and device) over pg (borrowed; NULL or one rank: a single
 * process).  Make it after moving the models to their device.  With sync_bn the BatchNorm calls
 * use the group. */
aqa_ddp *aqa_ddp_new(aqa_dist *pg, aqa_module *const *models, int n_models, aqa_tensor *const *params, int n,
                     const aqa_ddp_options *opts);
/* Frees it and restores BatchNorm's defaults.  NULL is fine. */
void aqa_ddp_free(aqa_ddp *d);

/* Copies rank 0's parameters, buffers and default generator state to every rank (torch DDP at
 * construction), then checks that every rank holds the same bits (aqa_ddp_check_replicas). */
aqa_status aqa_ddp_sync_model(aqa_ddp *d);
/* Compares a hash of every parameter and buffer and of the default generator between the ranks:
 * an error names the first rank and tensor that differ from rank 0's (`when`: for the message). */
aqa_status aqa_ddp_check_replicas(aqa_ddp *d, const char *when);

/* Micro-batches of a batch of `rows`: ceil(rows / micro_batch). */
int aqa_ddp_num_micro(int64_t rows, int64_t micro_batch);
/* The micro-batches [*k0, *k1) of K that `rank` of `size` computes: [rank K / size, (rank + 1) K / size). */
void aqa_ddp_micro_range(int K, int rank, int size, int *k0, int *k1);

/* Starts a step of K micro-batches (K >= 1): drops every parameter's gradient, routes BatchNorm's
 * running-statistics updates to the step's record (unless sync_bn) and notes the generator. */
aqa_status aqa_ddp_step_begin(aqa_ddp *d, int K);
/* Before micro-batch k's forward: its random numbers (see above).  k must be this rank's; the
 * forwards of several micro-batches may run before their backwards (losses over the batch). */
aqa_status aqa_ddp_micro_begin(aqa_ddp *d, int k);
/* After micro-batch k's backward: its gradients times `weight` join the tree and are dropped;
 * scalars[opts.n_scalars] (may be NULL when 0) are kept, times weight, for aqa_ddp_step_end. */
aqa_status aqa_ddp_micro_end(aqa_ddp *d, int k, double weight, const double *scalars);
/* Sets aside the gradients now in .grad, computed identically on every rank (from a loss over
 * the gathered batch: contrastive losses): they are added once to the step's sum. */
aqa_status aqa_ddp_keep_shared(aqa_ddp *d);
/* Ends the step on every rank: each parameter's .grad = the sum of the micro-batches' weighted
 * gradients (plus the shared ones; NULL where no micro-batch produced one), BatchNorm's running
 * statistics and counters updated in micro-batch order, the generator advanced, and sums (when
 * not NULL) = the sum over micro-batches, in order, of their weighted scalars. */
aqa_status aqa_ddp_step_end(aqa_ddp *d, double *sums);

#ifdef __cplusplus
}
#endif

#endif /* AQA_DATA_PARALLEL_H */
