/* loss.h: loss functions, as torch.nn.functional's (same argument meaning, defaults, shapes and
 * reductions), differentiable in their floating inputs.
 *
 * Every loss takes an aqa_reduction: MEAN (the default in torch), SUM or NONE (per-element or
 * per-sample losses); kl_div also accepts BATCHMEAN.  Losses are composed of ops where that is
 * exact and stable (cross-entropy = log_softmax + gather, BCE-with-logits through the stable
 * softplus), so they run wherever the ops run; BCE has its own node because torch's gradient
 * clamps the denominator (x (1 - x) >= 1e-12), which a composition cannot reproduce.
 *
 *     ```c
 *     aqa_cross_entropy_options o = AQA_CROSS_ENTROPY_DEFAULTS;
 *     o.label_smoothing = 0.1;
 *     aqa_tensor *loss = aqa_cross_entropy(logits, labels, &o);   // labels I64 [N]
 *     aqa_backward(loss, NULL, false);
 *     ```
 */
#ifndef AQA_NN_LOSS_H
#define AQA_NN_LOSS_H

#include <stdint.h>

#include "tensor/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum aqa_reduction {
    AQA_REDUCTION_MEAN = 0,   /* mean over elements (torch 'mean', the default) */
    AQA_REDUCTION_SUM = 1,    /* sum over elements */
    AQA_REDUCTION_NONE = 2,   /* no reduction: one loss per element / sample */
    AQA_REDUCTION_BATCHMEAN = 3 /* kl_div only: sum / input.shape[0] */
} aqa_reduction;

/* mean((input - target)^2); target broadcasts to input (torch warns, we allow it). */
aqa_tensor *aqa_mse_loss(aqa_tensor *input, aqa_tensor *target, aqa_reduction reduction);
/* mean(|input - target|); the gradient at input == target is 0, as torch. */
aqa_tensor *aqa_l1_loss(aqa_tensor *input, aqa_tensor *target, aqa_reduction reduction);

/* torch.nn.functional.smooth_l1_loss: 0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta
 * (d = input - target, beta >= 0; torch's default 1.0; beta 0 is the L1 loss). */
aqa_tensor *aqa_smooth_l1_loss(aqa_tensor *input, aqa_tensor *target, aqa_reduction reduction, double beta);
/* torch.nn.functional.huber_loss: 0.5 d^2 where |d| <= delta, else delta (|d| - 0.5 delta)
 * (delta > 0; torch's default 1.0): delta times the smooth L1 loss with beta = delta. */
aqa_tensor *aqa_huber_loss(aqa_tensor *input, aqa_tensor *target, aqa_reduction reduction, double delta);

/* ---- ranking and embedding losses ---- */
/* torch.nn.functional.margin_ranking_loss: max(0, -target (input1 - input2) + margin), target
 * +1 where input1 should rank higher, -1 where input2 should; the three tensors have one number
 * of dimensions and broadcast (torch's default margin 0). */
aqa_tensor *aqa_margin_ranking_loss(aqa_tensor *input1, aqa_tensor *input2, aqa_tensor *target, double margin,
                                    aqa_reduction reduction);

/* Options of aqa_triplet_margin_loss (start from AQA_TRIPLET_DEFAULTS, torch's defaults). */
typedef struct aqa_triplet_options {
    double margin;           /* 1.0 */
    double p;                /* norm degree of the pairwise distance (2) */
    double eps;              /* added to the difference before the norm (1e-6) */
    bool swap;               /* use min(d(a, n), d(p, n)) as the negative distance (false) */
    aqa_reduction reduction; /* MEAN, SUM or NONE */
} aqa_triplet_options;
#define AQA_TRIPLET_DEFAULTS ((aqa_triplet_options){1.0, 2.0, 1e-6, false, AQA_REDUCTION_MEAN})
/* torch.nn.functional.triplet_margin_loss: max(d(a, p) - d(a, n) + margin, 0) with d the p-norm of
 * x1 - x2 + eps along the last dim (torch.pairwise_distance); anchor, positive, negative [N, D] or
 * [D].  opts NULL = defaults. */
aqa_tensor *aqa_triplet_margin_loss(aqa_tensor *anchor, aqa_tensor *positive, aqa_tensor *negative,
                                    const aqa_triplet_options *opts);

/* torch.nn.functional.cosine_embedding_loss: with cos the cosine similarity of input1 and input2
 * along the last dim ([N, D] or [D]), 1 - cos where target ([N] or []) is 1, max(0, cos - margin)
 * where it is -1 (torch's default margin 0). */
aqa_tensor *aqa_cosine_embedding_loss(aqa_tensor *input1, aqa_tensor *input2, aqa_tensor *target, double margin,
                                      aqa_reduction reduction);

/* Binary cross-entropy on probabilities in [0, 1]:
 * -w (t log(x) + (1 - t) log(1 - x)) with both logs clamped at -100 (so x = 0 or 1 is finite),
 * weight (broadcast to input) may be NULL.  Gradient w (x - t) / max(x (1 - x), 1e-12) as torch. */
aqa_tensor *aqa_bce_loss(aqa_tensor *input, aqa_tensor *target, aqa_tensor *weight, aqa_reduction reduction);
/* Binary cross-entropy on logits, stable for any logit magnitude:
 * w ((1 - t) x + (1 + (p - 1) t) softplus(-x)) with p = pos_weight (broadcast along the last
 * dimension, as torch; NULL = 1) and w = weight (NULL = 1). */
aqa_tensor *aqa_bce_with_logits(aqa_tensor *input, aqa_tensor *target, aqa_tensor *weight, aqa_tensor *pos_weight,
                                aqa_reduction reduction);

/* Options of aqa_cross_entropy (start from AQA_CROSS_ENTROPY_DEFAULTS). */
typedef struct aqa_cross_entropy_options {
    aqa_reduction reduction;  /* MEAN, SUM or NONE */
    aqa_tensor *weight;       /* per-class weights [C], or NULL */
    int64_t ignore_index;     /* class-index targets equal to it add nothing (torch: -100) */
    double label_smoothing;   /* epsilon in [0, 1]: targets become (1 - eps) onehot + eps / C */
    double temperature;       /* logits are divided by it first (1 = none; MVLA uses tau) */
} aqa_cross_entropy_options;
#define AQA_CROSS_ENTROPY_DEFAULTS \
    ((aqa_cross_entropy_options){AQA_REDUCTION_MEAN, NULL, -100, 0.0, 1.0})

/* torch.nn.functional.cross_entropy(logits / temperature, target, ...).  logits [N, C] or
 * [N, C, d1, ...] or [C] (the class dimension is 1, or 0 for 1-D logits).  target either class
 * indices (I64, shape [N] / [N, d1, ...] / []) or class probabilities (floating, logits' shape:
 * soft targets).  Mean reduction divides by the summed weights of the non-ignored targets for
 * indices, by the number of samples for probabilities, as torch.  opts NULL = defaults. */
aqa_tensor *aqa_cross_entropy(aqa_tensor *logits, aqa_tensor *target, const aqa_cross_entropy_options *opts);

/* torch.nn.functional.nll_loss: input holds log-probabilities ([N, C], [N, C, d1, ...] or [C]),
 * target I64 class indices; weight [C] or NULL; ignore_index (torch default -100). */
aqa_tensor *aqa_nll_loss(aqa_tensor *input, aqa_tensor *target, aqa_tensor *weight, int64_t ignore_index,
                         aqa_reduction reduction);

/* torch.nn.functional.kl_div(input, target, reduction, log_target): input holds
 * log-probabilities; target probabilities (t log t - t input, 0 where t == 0) or, with
 * log_target, log-probabilities (exp(t) (t - input)).  BATCHMEAN divides the sum by
 * input.shape[0] (the mathematically correct KL); MEAN divides by the number of elements. */
aqa_tensor *aqa_kl_div(aqa_tensor *input, aqa_tensor *target, aqa_reduction reduction, bool log_target);

/* Applies a reduction to a tensor of per-element losses (NONE returns it as is). */
aqa_tensor *aqa_reduce_loss(aqa_tensor *loss, aqa_reduction reduction);

#ifdef __cplusplus
}
#endif

#endif /* AQA_NN_LOSS_H */
