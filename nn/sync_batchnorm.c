/* sync_batchnorm.c: batch normalisation with statistics over every rank of a process group
 * (torch.nn.SyncBatchNorm), composed of tensor ops and a differentiable all-reduce, so that
 * autograd gives the gradients: the backward of a sum over ranks is the sum over ranks of the
 * gradients.  Mean first, then the variance around it (two passes, as the local kernels). */
#include <math.h>

#include "autograd/autograd.h"
#include "nn/batchnorm-impl.h"
#include "nn/batchnorm.h"
#include "ops/ops.h"

static void all_reduce_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    aqa_tensor *c = aqa_clone(g);
    /* a failure marks the group failed: the step's gradient reduction then reports it */
    grad_in[0] = c && aqa_dist_all_reduce(n->ctx, c, AQA_DIST_SUM) == AQA_OK ? c : NULL;
}

/* The sum over ranks of x (scope-owned), differentiable. */
static aqa_tensor *all_reduce_sum(aqa_dist *pg, aqa_tensor *x) {
    if (!x) return NULL;
    bool prev = aqa_set_grad_enabled(false);
    aqa_tensor *y = aqa_clone(x);
    aqa_set_grad_enabled(prev);
    if (!y || aqa_dist_all_reduce(pg, y, AQA_DIST_SUM)) return NULL;
    aqa_node *node = aqa_node_record("sync_batch_norm_all_reduce", all_reduce_backward, 1, &x, y);
    if (node) node->ctx = pg; /* borrowed: the group outlives the step */
    return y;
}

aqa_tensor *aqa__sync_batch_norm(aqa_dist *pg, aqa_tensor *x, aqa_tensor *running_mean, aqa_tensor *running_var,
                                 aqa_tensor *weight, aqa_tensor *bias, double momentum, double eps) {
    int dims[AQA_MAX_DIMS], k = 0;
    int64_t shape[AQA_MAX_DIMS], c = x->shape[1];
    for (int i = 0; i < x->ndim; i++) {
        shape[i] = i == 1 ? c : 1;
        if (i != 1) dims[k++] = i;
    }
    aqa_tensor *y = NULL;
    aqa_scope_begin();
    /* elements per channel over all ranks */
    aqa_tensor *count = aqa_full(AQA_SHAPE(1), (double)(aqa_numel(x) / c), AQA_I64);
    if (!count || aqa_dist_all_reduce(pg, count, AQA_DIST_SUM)) goto done;
    double total = (double)*(int64_t *)aqa_data(count);
    if (total <= 1) {
        aqa_fail(AQA_EINVAL, "SyncBatchNorm: expected more than 1 value per channel over all ranks, got %g", total);
        goto done;
    }
    aqa_tensor *mean = aqa_div_scalar(all_reduce_sum(pg, aqa_sum(x, k, dims, true)), total);
    aqa_tensor *d = aqa_sub(x, mean);
    aqa_tensor *var = aqa_div_scalar(all_reduce_sum(pg, aqa_sum(aqa_square(d), k, dims, true)), total);
    aqa_tensor *out = aqa_mul(d, aqa_rsqrt(aqa_add_scalar(var, eps)));
    if (weight) out = aqa_mul(out, aqa_reshape(weight, x->ndim, shape));
    if (bias) out = aqa_add(out, aqa_reshape(bias, x->ndim, shape));
    if (!out) goto done;
    if (running_mean) {
        bool prev = aqa_set_grad_enabled(false);
        aqa_tensor *m = aqa_to_dtype(aqa_reshape(aqa_detach(mean), 1, &c), running_mean->dtype);
        aqa_tensor *v = aqa_to_dtype(aqa_reshape(aqa_detach(var), 1, &c), running_var->dtype);
        aqa_status st = m && v ? aqa_batch_norm_update_running(running_mean, running_var, m, v, total / (total - 1), momentum)
                               : aqa_last_status();
        aqa_set_grad_enabled(prev);
        if (st) goto done;
    }
    y = aqa_keep(out);
done:
    aqa_scope_end();
    return y;
}
