/* batchnorm-impl.h: between the batch-norm front-end and its synchronised form (not installed). */
#ifndef AQA_BATCHNORM_IMPL_H
#define AQA_BATCHNORM_IMPL_H

#include "dist/dist.h"
#include "tensor/tensor.h"

/* Train-mode batch norm with statistics over every rank of pg (nn/sync_batchnorm.c): what
 * aqa_batch_norm does when a sync group is set.  Running statistics (when given) are updated
 * through aqa_batch_norm_update_running with the global mean and unbiased variance. */
aqa_tensor *aqa__sync_batch_norm(aqa_dist *pg, aqa_tensor *x, aqa_tensor *running_mean, aqa_tensor *running_var,
                                 aqa_tensor *weight, aqa_tensor *bias, double momentum, double eps);

#endif /* AQA_BATCHNORM_IMPL_H */
