/* optim.h: optimizers (SGD, Adam, AdamW) with parameter groups, as torch.optim, and gradient
 * clipping by global norm.
 *
 * An optimizer holds parameter groups; each group has its own learning rate and weight decay
 * (MVLA trains its backbones at 1e-4 and the rest at 1e-3) and the other hyper-parameters of
 * the optimizer it was created with.  Parameters are borrowed (the model owns them); the state
 * (step counts, moment estimates, momentum buffers) belongs to the optimizer and is exposed for
 * checkpoints (nn/checkpoint.h).
 *
 *     ```c
 *     aqa_tensor **backbone, **head;  // from aqa_module_parameters on each part
 *     int n_backbone = aqa_module_parameters(aqa_module_find(model, "backbone"), &backbone);
 *     int n_head = aqa_module_parameters(aqa_module_find(model, "head"), &head);
 *     aqa_optimizer *opt = aqa_adamw_new(&(aqa_adam_options)AQA_ADAMW_DEFAULTS);
 *     aqa_optim_add_group(opt, backbone, n_backbone, 1e-4, 0.01);
 *     aqa_optim_add_group(opt, head, n_head, 1e-3, 0.01);
 *     for (int64_t step = 0; step < 1000; step++) {
 *         aqa_scope_begin();
 *         aqa_tensor *loss = aqa_mse_loss(aqa_linear(x, w, b), target, AQA_REDUCTION_MEAN);
 *         aqa_optim_zero_grad(opt);
 *         aqa_backward(loss, NULL, false);
 *         aqa_clip_grad_norm(backbone, n_backbone, 1.0, 2.0, false, NULL);
 *         aqa_optim_step(opt);
 *         aqa_scope_end();
 *     }
 *     aqa_optim_free(opt);
 *     free(backbone);
 *     free(head);
 *     ```
 *
 * The update is PyTorch's single-tensor algorithm (the CPU default), operation by operation in
 * the parameter's dtype, so trajectories match torch to float32 rounding.  On the CPU each
 * contiguous parameter is updated in one fused, vectorisable pass over its data (parameter,
 * gradient and state read and written once, no temporaries); other layouts and devices use
 * the equivalent composed ops. */
#ifndef AQA_NN_OPTIM_H
#define AQA_NN_OPTIM_H

#include <stdbool.h>
#include <stdint.h>

#include "tensor/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum aqa_optim_kind {
    AQA_OPTIM_SGD = 0,  /* torch.optim.SGD */
    AQA_OPTIM_ADAM = 1, /* torch.optim.Adam: weight decay is L2 added to the gradient */
    AQA_OPTIM_ADAMW = 2 /* torch.optim.AdamW: decoupled weight decay p *= 1 - lr wd */
} aqa_optim_kind;

/* SGD hyper-parameters (torch defaults: momentum 0, dampening 0, weight_decay 0, no Nesterov). */
typedef struct aqa_sgd_options {
    double lr;           /* learning rate */
    double momentum;     /* momentum factor (0: plain SGD) */
    double dampening;    /* dampening of the momentum's gradient term */
    double weight_decay; /* L2 penalty added to the gradient */
    bool nesterov;       /* Nesterov momentum (needs momentum > 0 and dampening 0) */
} aqa_sgd_options;
#define AQA_SGD_DEFAULTS {1e-3, 0.0, 0.0, 0.0, false}

/* Adam / AdamW hyper-parameters. */
typedef struct aqa_adam_options {
    double lr;           /* learning rate (torch default 1e-3) */
    double beta1, beta2; /* moment decay rates (0.9, 0.999) */
    double eps;          /* added to the denominator (1e-8) */
    double weight_decay; /* Adam: L2 (default 0); AdamW: decoupled (default 1e-2) */
    bool amsgrad;        /* keep the maximum second moment (AMSGrad) */
} aqa_adam_options;
#define AQA_ADAM_DEFAULTS {1e-3, 0.9, 0.999, 1e-8, 0.0, false}
#define AQA_ADAMW_DEFAULTS {1e-3, 0.9, 0.999, 1e-8, 1e-2, false}

/* One parameter group: its parameters and its hyper-parameters (torch's param_groups[i]). */
typedef struct aqa_param_group {
    aqa_tensor **params;   /* borrowed parameters (malloc'd array of pointers) */
    int n_params;
    double lr;             /* current learning rate (schedulers write it) */
    double initial_lr;     /* the lr the group was created with (schedulers scale it) */
    double weight_decay;   /* L2 (SGD, Adam) or decoupled (AdamW) */
    double momentum, dampening; /* SGD */
    bool nesterov;              /* SGD */
    double beta1, beta2, eps;   /* Adam / AdamW */
    bool amsgrad;               /* Adam / AdamW */
} aqa_param_group;

/* The state of one parameter (torch's optimizer.state[p]).  Tensors are owned by the optimizer,
 * have the parameter's shape, dtype and device, and are NULL until the first step that creates
 * them (as torch's lazy state). */
typedef struct aqa_param_state {
    int64_t step;                /* number of updates applied (Adam's bias correction uses it) */
    aqa_tensor *exp_avg;         /* Adam: first moment */
    aqa_tensor *exp_avg_sq;      /* Adam: second moment */
    aqa_tensor *max_exp_avg_sq;  /* Adam with amsgrad: running maximum of exp_avg_sq */
    aqa_tensor *momentum_buffer; /* SGD with momentum */
} aqa_param_state;

typedef struct aqa_optimizer {
    aqa_optim_kind kind;       /* which update rule */
    aqa_param_group defaults;  /* hyper-parameters new groups start from (params unused) */
    aqa_param_group *groups;   /* the groups, in the order they were added */
    aqa_param_state **state;   /* state[g][i] for parameter i of group g */
    int n_groups, cap_groups;
} aqa_optimizer;

/* Creates an optimizer with no parameters yet; NULL on a bad hyper-parameter (lr < 0, beta
 * outside [0, 1), nesterov without momentum, ...). */
aqa_optimizer *aqa_sgd_new(const aqa_sgd_options *opts);
aqa_optimizer *aqa_adam_new(const aqa_adam_options *opts);
aqa_optimizer *aqa_adamw_new(const aqa_adam_options *opts);
void aqa_optim_free(aqa_optimizer *opt); /* NULL is fine; parameters are not freed */

/* Adds a group of n parameters (floating leaf tensors; the array is copied, the tensors
 * borrowed) with its own lr and weight decay; the other hyper-parameters are the optimizer's.
 * A parameter may belong to one group only.  Returns the group index, or -1 on error. */
int aqa_optim_add_group(aqa_optimizer *opt, aqa_tensor *const *params, int n, double lr, double weight_decay);
/* Same with the optimizer's default lr and weight decay. */
int aqa_optim_add_params(aqa_optimizer *opt, aqa_tensor *const *params, int n);

/* Applies one update to every parameter that has a gradient (parameters without .grad are
 * skipped, as torch).  Runs without recording autograd.  Dispatches per parameter: fused CPU
 * loop for contiguous float32/float64 data, composed in-place ops otherwise. */
aqa_status aqa_optim_step(aqa_optimizer *opt);
/* Drops every parameter's gradient (torch's zero_grad(set_to_none=True)). */
void aqa_optim_zero_grad(aqa_optimizer *opt);
/* Sets the lr of every group. */
void aqa_optim_set_lr(aqa_optimizer *opt, double lr);
/* Total number of parameters over all groups. */
int aqa_optim_num_params(const aqa_optimizer *opt);
/* "SGD", "Adam", "AdamW". */
const char *aqa_optim_kind_name(aqa_optim_kind kind);

/* torch.nn.utils.clip_grad_norm_: scales the gradients of the n tensors (those without .grad are
 * ignored) in place so that their global norm_type-norm (2.0, or INFINITY for the max norm) is at
 * most max_norm: every gradient is multiplied by min(1, max_norm / (total + 1e-6)).  Returns
 * AQA_OK and writes the total norm (before clipping) to *total_norm (may be NULL).  A non-finite
 * total is an error (AQA_EINVAL, gradients untouched) only when error_if_nonfinite. */
aqa_status aqa_clip_grad_norm(aqa_tensor *const *params, int n, double max_norm, double norm_type,
                              bool error_if_nonfinite, double *total_norm);

#ifdef __cplusplus
}
#endif

#endif /* AQA_NN_OPTIM_H */
