/* loss.c: the loss functions of loss.h.
 *
 * Each loss runs inside its own scope so that its temporaries die on return; only the result is
 * kept (the autograd graph keeps what backward needs through node references).  Compositions
 * follow torch's own formulas (aten/src/ATen/native/Loss*.cpp) so values and gradients agree
 * to rounding. */
#include <math.h>

#include "autograd/autograd.h"
#include "nn/loss.h"
#include "ops/ops.h"
#include "tensor/tensor-impl.h"

static const char *reduction_name(aqa_reduction r) {
    switch (r) {
    case AQA_REDUCTION_MEAN: return "mean";
    case AQA_REDUCTION_SUM: return "sum";
    case AQA_REDUCTION_NONE: return "none";
    case AQA_REDUCTION_BATCHMEAN: return "batchmean";
    }
    return "?";
}

/* Validates a reduction for a loss that does not accept BATCHMEAN. */
static bool check_reduction(const char *op, aqa_reduction r) {
    if (r == AQA_REDUCTION_MEAN || r == AQA_REDUCTION_SUM || r == AQA_REDUCTION_NONE) return true;
    aqa_fail(AQA_EINVAL, "%s: reduction %s (%d) is not one of mean, sum, none", op, reduction_name(r), (int)r);
    return false;
}

static bool check_float(const char *op, const char *what, const aqa_tensor *t) {
    if (aqa_dtype_is_float(t->dtype)) return true;
    aqa_fail(AQA_EINVAL, "%s: %s must be floating, got %s", op, what, aqa_dtype_name(t->dtype));
    return false;
}

static bool check_same_shape(const char *op, const aqa_tensor *input, const aqa_tensor *target) {
    if (aqa_same_shape(input, target)) return true;
    char a[96], b[96];
    aqa_fail(AQA_EINVAL, "%s: target shape %s differs from input shape %s", op, aqa_shape_str(target, b, sizeof b),
             aqa_shape_str(input, a, sizeof a));
    return false;
}

aqa_tensor *aqa_reduce_loss(aqa_tensor *loss, aqa_reduction reduction) {
    if (!loss) return NULL;
    switch (reduction) {
    case AQA_REDUCTION_MEAN: return aqa_mean_all(loss);
    case AQA_REDUCTION_SUM: return aqa_sum_all(loss);
    case AQA_REDUCTION_NONE: return loss;
    case AQA_REDUCTION_BATCHMEAN: {
        aqa_tensor *s = aqa_sum_all(loss);
        return loss->ndim == 0 ? s : aqa_div_scalar(s, (double)loss->shape[0]);
    }
    }
    return aqa_fail_null("aqa_reduce_loss: unknown reduction %d", (int)reduction);
}

/* Closes the loss's scope keeping `r` (NULL stays NULL). */
static aqa_tensor *finish(aqa_tensor *r) {
    if (r) aqa_keep(r);
    aqa_scope_end();
    return r;
}

/* ---- regression ---------------------------------------------------------------------------- */

aqa_tensor *aqa_mse_loss(aqa_tensor *input, aqa_tensor *target, aqa_reduction reduction) {
    if (!aqa__check_inputs("aqa_mse_loss", 2, (aqa_tensor *[]){input, target})) return NULL;
    if (!check_reduction("aqa_mse_loss", reduction) || !check_float("aqa_mse_loss", "input", input)) return NULL;
    aqa_scope_begin();
    return finish(aqa_reduce_loss(aqa_square(aqa_sub(input, target)), reduction));
}

aqa_tensor *aqa_l1_loss(aqa_tensor *input, aqa_tensor *target, aqa_reduction reduction) {
    if (!aqa__check_inputs("aqa_l1_loss", 2, (aqa_tensor *[]){input, target})) return NULL;
    if (!check_reduction("aqa_l1_loss", reduction) || !check_float("aqa_l1_loss", "input", input)) return NULL;
    aqa_scope_begin();
    return finish(aqa_reduce_loss(aqa_abs(aqa_sub(input, target)), reduction));
}

/* where(|d| < beta, 0.5 d^2 / beta, |d| - 0.5 beta) with d = input - target: smooth L1 (huber
 * false) or beta times it, Huber's loss with delta = beta (huber true), as torch's kernels. */
static aqa_tensor *smooth_l1(const char *op, aqa_tensor *input, aqa_tensor *target, aqa_reduction reduction,
                             double beta, bool huber) {
    if (!aqa__check_inputs(op, 2, (aqa_tensor *[]){input, target})) return NULL;
    if (!check_reduction(op, reduction) || !check_float(op, "input", input)) return NULL;
    if (!(beta >= 0) || (huber && beta == 0))
        return aqa_fail_null("%s: %s must be %s, got %g", op, huber ? "delta" : "beta", huber ? "> 0" : ">= 0", beta);
    if (beta == 0) return aqa_l1_loss(input, target, reduction); /* torch's rule for beta 0 */
    aqa_scope_begin();
    aqa_tensor *d = aqa_sub(input, target), *ad = aqa_abs(d);
    aqa_tensor *quad = aqa_mul_scalar(aqa_square(d), huber ? 0.5 : 0.5 / beta);
    aqa_tensor *lin = huber ? aqa_mul_scalar(aqa_add_scalar(ad, -0.5 * beta), beta) : aqa_add_scalar(ad, -0.5 * beta);
    /* the quadratic side: |d| < beta (smooth L1), |d| <= delta (Huber), as torch's kernels */
    aqa_tensor *l = huber ? aqa_where(aqa_gt_scalar(ad, beta), lin, quad) : aqa_where(aqa_lt_scalar(ad, beta), quad, lin);
    return finish(aqa_reduce_loss(l, reduction));
}

aqa_tensor *aqa_smooth_l1_loss(aqa_tensor *input, aqa_tensor *target, aqa_reduction reduction, double beta) {
    return smooth_l1("aqa_smooth_l1_loss", input, target, reduction, beta, false);
}

aqa_tensor *aqa_huber_loss(aqa_tensor *input, aqa_tensor *target, aqa_reduction reduction, double delta) {
    return smooth_l1("aqa_huber_loss", input, target, reduction, delta, true);
}

/* ---- ranking and embedding losses ------------------------------------------------------------ */

/* Fails naming op unless every tensor has ts[0]'s number of dimensions (torch checks the same). */
static bool check_ndims(const char *op, int n, aqa_tensor *const *ts, const char *const *names) {
    for (int i = 1; i < n; i++) {
        if (ts[i]->ndim == ts[0]->ndim) continue;
        char a[96], b[96];
        aqa_fail(AQA_EINVAL, "%s: %s %s and %s %s must have the same number of dimensions", op, names[0],
                 aqa_shape_str(ts[0], a, sizeof a), names[i], aqa_shape_str(ts[i], b, sizeof b));
        return false;
    }
    return true;
}

aqa_tensor *aqa_margin_ranking_loss(aqa_tensor *input1, aqa_tensor *input2, aqa_tensor *target, double margin,
                                    aqa_reduction reduction) {
    const char *op = "aqa_margin_ranking_loss";
    aqa_tensor *ts[3] = {input1, input2, target};
    if (!aqa__check_inputs(op, 3, ts) || !check_reduction(op, reduction) || !check_float(op, "input1", input1) ||
        !check_float(op, "input2", input2) ||
        !check_ndims(op, 3, ts, (const char *[]){"input1", "input2", "target"}))
        return NULL;
    aqa_scope_begin(); /* torch: (-target * (input1 - input2) + margin).clamp_min(0) */
    aqa_tensor *l = aqa_add_scalar(aqa_neg(aqa_mul(target, aqa_sub(input1, input2))), margin);
    return finish(aqa_reduce_loss(aqa_clamp(l, 0.0, INFINITY), reduction));
}

/* torch.pairwise_distance: the p-norm of x1 - x2 + eps along the last dim. */
static aqa_tensor *pairwise_distance(aqa_tensor *x1, aqa_tensor *x2, double p, double eps) {
    aqa_tensor *d = aqa_add_scalar(aqa_sub(x1, x2), eps);
    int last = -1;
    if (p == 2) return aqa_sqrt(aqa_sum(aqa_square(d), 1, &last, false));
    if (p == 1) return aqa_sum(aqa_abs(d), 1, &last, false);
    return aqa_pow_scalar(aqa_sum(aqa_pow_scalar(aqa_abs(d), p), 1, &last, false), 1.0 / p);
}

aqa_tensor *aqa_triplet_margin_loss(aqa_tensor *anchor, aqa_tensor *positive, aqa_tensor *negative,
                                    const aqa_triplet_options *opts) {
    const char *op = "aqa_triplet_margin_loss";
    aqa_triplet_options o = opts ? *opts : AQA_TRIPLET_DEFAULTS;
    aqa_tensor *ts[3] = {anchor, positive, negative};
    if (!aqa__check_inputs(op, 3, ts) || !check_reduction(op, o.reduction) || !check_float(op, "anchor", anchor) ||
        !check_ndims(op, 3, ts, (const char *[]){"anchor", "positive", "negative"}))
        return NULL;
    if (anchor->ndim < 1 || anchor->ndim > 2)
        return aqa_fail_null("%s: inputs must be [D] or [N, D], got %d dimensions", op, anchor->ndim);
    if (!(o.p > 0)) return aqa_fail_null("%s: p must be > 0, got %g", op, o.p);
    aqa_scope_begin();
    aqa_tensor *d_pos = pairwise_distance(anchor, positive, o.p, o.eps);
    aqa_tensor *d_neg = pairwise_distance(anchor, negative, o.p, o.eps);
    if (o.swap) d_neg = aqa_minimum(d_neg, pairwise_distance(positive, negative, o.p, o.eps));
    aqa_tensor *l = aqa_clamp(aqa_add_scalar(aqa_sub(d_pos, d_neg), o.margin), 0.0, INFINITY);
    return finish(aqa_reduce_loss(l, o.reduction));
}

aqa_tensor *aqa_cosine_embedding_loss(aqa_tensor *input1, aqa_tensor *input2, aqa_tensor *target, double margin,
                                      aqa_reduction reduction) {
    const char *op = "aqa_cosine_embedding_loss";
    if (!aqa__check_inputs(op, 3, (aqa_tensor *[]){input1, input2, target}) || !check_reduction(op, reduction) ||
        !check_float(op, "input1", input1) || !check_float(op, "input2", input2) ||
        !check_ndims(op, 2, (aqa_tensor *[]){input1, input2}, (const char *[]){"input1", "input2"}))
        return NULL;
    char a[96], b[96];
    if (input1->ndim < 1 || input1->ndim > 2 || target->ndim != input1->ndim - 1 ||
        (target->ndim == 1 && target->shape[0] != input1->shape[0]))
        return aqa_fail_null("%s: inputs [N, D] (or [D]) want target [N] (or []), got %s and target %s", op,
                             aqa_shape_str(input1, a, sizeof a), aqa_shape_str(target, b, sizeof b));
    aqa_scope_begin();
    /* torch: cos = sum(x1 x2) / sqrt((sum(x1^2) + 1e-12) (sum(x2^2) + 1e-12)) along the last dim;
     * 1 - cos where target == 1, max(cos - margin, 0) where target == -1, 0 elsewhere */
    int last = -1;
    aqa_tensor *prod = aqa_sum(aqa_mul(input1, input2), 1, &last, false);
    aqa_tensor *m1 = aqa_add_scalar(aqa_sum(aqa_square(input1), 1, &last, false), 1e-12);
    aqa_tensor *m2 = aqa_add_scalar(aqa_sum(aqa_square(input2), 1, &last, false), 1e-12);
    aqa_tensor *cos = aqa_div(prod, aqa_sqrt(aqa_mul(m1, m2)));
    aqa_tensor *zeros = aqa_zeros_like(cos);
    aqa_tensor *pos = aqa_where(aqa_eq_scalar(target, 1.0), aqa_rsub_scalar(cos, 1.0), zeros);
    aqa_tensor *neg = aqa_where(aqa_eq_scalar(target, -1.0), aqa_clamp(aqa_add_scalar(cos, -margin), 0.0, INFINITY), zeros);
    return finish(aqa_reduce_loss(aqa_add(pos, neg), reduction));
}

/* ---- binary cross-entropy ------------------------------------------------------------------- */

/* saved: x, t, and w when ints[0] (the optional weight) */
static void bce_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    aqa_tensor *x = n->saved[0], *t = n->saved[1], *w = n->ints[0] ? n->saved[2] : NULL;
    if (n->needs_grad[0]) {
        /* torch: grad * (x - t) / max((1 - x) x, 1e-12) * w */
        aqa_tensor *den = aqa_clamp(aqa_mul(aqa_rsub_scalar(x, 1.0), x), 1e-12, INFINITY);
        aqa_tensor *gx = aqa_div(aqa_mul(g, aqa_sub(x, t)), den);
        grad_in[0] = w ? aqa_mul(gx, w) : gx;
    }
    if (n->needs_grad[1]) {
        /* d/dt = log(1 - x) - log(x), both clamped at -100 as in the forward */
        aqa_tensor *d = aqa_sub(aqa_clamp(aqa_log1p(aqa_neg(x)), -100.0, INFINITY),
                                aqa_clamp(aqa_log(x), -100.0, INFINITY));
        aqa_tensor *gt = aqa_mul(g, d);
        grad_in[1] = w ? aqa_mul(gt, w) : gt;
    }
}

aqa_tensor *aqa_bce_loss(aqa_tensor *input, aqa_tensor *target, aqa_tensor *weight, aqa_reduction reduction) {
    const char *op = "aqa_bce_loss";
    if (!aqa__check_inputs(op, 2, (aqa_tensor *[]){input, target})) return NULL;
    if (weight && !aqa__check_inputs(op, 2, (aqa_tensor *[]){input, weight})) return NULL;
    if (!check_reduction(op, reduction) || !check_float(op, "input", input) || !check_float(op, "target", target) ||
        !check_same_shape(op, input, target))
        return NULL;
    aqa_scope_begin();
    bool prev = aqa_set_grad_enabled(false);
    /* torch: (t - 1) * max(log1p(-x), -100) - t * max(log(x), -100) */
    aqa_tensor *l1m = aqa_clamp(aqa_log1p(aqa_neg(input)), -100.0, INFINITY);
    aqa_tensor *lx = aqa_clamp(aqa_log(input), -100.0, INFINITY);
    aqa_tensor *loss = aqa_sub(aqa_mul(aqa_add_scalar(target, -1.0), l1m), aqa_mul(target, lx));
    if (weight) loss = aqa_mul(loss, weight);
    aqa_set_grad_enabled(prev);
    if (!loss) return finish(NULL);
    if (!aqa_same_shape(loss, input)) {
        char a[96], b[96];
        aqa_fail(AQA_EINVAL, "%s: weight %s does not broadcast to input %s", op, aqa_shape_str(weight, b, sizeof b),
                 aqa_shape_str(input, a, sizeof a));
        return finish(NULL);
    }
    aqa_node *n = aqa_node_record("bce_loss", bce_backward, 2, (aqa_tensor *[]){input, target}, loss);
    if (n) {
        aqa_node_save(n, input);
        aqa_node_save(n, target);
        if (weight) aqa_node_save(n, weight);
        n->ints[0] = weight != NULL;
    }
    return finish(aqa_reduce_loss(loss, reduction));
}

aqa_tensor *aqa_bce_with_logits(aqa_tensor *input, aqa_tensor *target, aqa_tensor *weight, aqa_tensor *pos_weight,
                                aqa_reduction reduction) {
    const char *op = "aqa_bce_with_logits";
    if (!aqa__check_inputs(op, 2, (aqa_tensor *[]){input, target})) return NULL;
    if (weight && !aqa__check_inputs(op, 2, (aqa_tensor *[]){input, weight})) return NULL;
    if (pos_weight && !aqa__check_inputs(op, 2, (aqa_tensor *[]){input, pos_weight})) return NULL;
    if (!check_reduction(op, reduction) || !check_float(op, "input", input) || !check_float(op, "target", target) ||
        !check_same_shape(op, input, target))
        return NULL;
    aqa_scope_begin();
    /* (1 - t) x + lw softplus(-x), lw = 1 + (pos_weight - 1) t; softplus is max(z,0)+log1p(e^-|z|),
     * finite for any x, and its derivative sigmoid saturates cleanly */
    aqa_tensor *sp = aqa_softplus(aqa_neg(input));
    if (pos_weight) sp = aqa_mul(aqa_add_scalar(aqa_mul(aqa_add_scalar(pos_weight, -1.0), target), 1.0), sp);
    aqa_tensor *loss = aqa_add(aqa_mul(aqa_rsub_scalar(target, 1.0), input), sp);
    if (weight) loss = aqa_mul(loss, weight);
    if (loss && !aqa_same_shape(loss, input)) {
        char a[96], b[96];
        aqa_fail(AQA_EINVAL, "%s: weight/pos_weight do not broadcast to input %s (result %s)", op,
                 aqa_shape_str(input, a, sizeof a), aqa_shape_str(loss, b, sizeof b));
        return finish(NULL);
    }
    return finish(aqa_reduce_loss(loss, reduction));
}

/* ---- classification -------------------------------------------------------------------------- */

/* Checks logits/target shapes for class-index targets: target = logits without dim cd. */
static bool check_index_target(const char *op, const aqa_tensor *x, const aqa_tensor *target, int cd) {
    bool ok = target->ndim == x->ndim - 1;
    for (int d = 0, e = 0; ok && d < x->ndim; d++) {
        if (d == cd) continue;
        if (target->shape[e++] != x->shape[d]) ok = false;
    }
    if (ok) return true;
    char a[96], b[96];
    aqa_fail(AQA_EINVAL, "%s: class-index target of shape %s does not match input %s (expected the input's shape "
             "without the class dimension %d)", op, aqa_shape_str(target, b, sizeof b), aqa_shape_str(x, a, sizeof a), cd);
    return false;
}

/* The parts of nll_loss shared with cross-entropy's label smoothing: the per-sample weights
 * (class weight of the target, 0 where ignored) and the per-sample negative log-likelihood. */
typedef struct nll_parts {
    aqa_tensor *w;     /* [target shape], weight of each sample (0 = ignored) */
    aqa_tensor *loss;  /* [target shape], -w * logp[target] */
    aqa_tensor *valid; /* bool [target shape]: target != ignore_index */
} nll_parts;

static bool nll_core(aqa_tensor *logp, aqa_tensor *target, aqa_tensor *weight, int64_t ignore_index, int cd,
                     nll_parts *p) {
    p->valid = aqa_ne(target, aqa_full(0, NULL, (double)ignore_index, AQA_I64));
    aqa_tensor *safe = aqa_where(p->valid, target, aqa_zeros(0, NULL, AQA_I64));
    aqa_tensor *picked = aqa_squeeze(aqa_gather(logp, cd, aqa_unsqueeze(safe, cd)), cd);
    aqa_tensor *maskf = aqa_to_dtype(p->valid, logp->dtype);
    if (weight) {
        aqa_tensor *wf = aqa_index_select(aqa_to_dtype(weight, logp->dtype), 0, aqa_flatten(safe, 0, -1));
        p->w = aqa_mul(aqa_reshape(wf, target->ndim, target->shape), maskf);
    } else {
        p->w = maskf;
    }
    p->loss = aqa_neg(aqa_mul(picked, p->w));
    return p->loss != NULL;
}

static aqa_tensor *nll_reduce(nll_parts *p, aqa_reduction reduction) {
    switch (reduction) {
    case AQA_REDUCTION_MEAN: return aqa_div(aqa_sum_all(p->loss), aqa_sum_all(p->w));
    case AQA_REDUCTION_SUM: return aqa_sum_all(p->loss);
    default: return p->loss;
    }
}

static bool check_weight(const char *op, const aqa_tensor *weight, int64_t n_classes) {
    if (!weight || (weight->ndim == 1 && weight->shape[0] == n_classes)) return true;
    char b[96];
    aqa_fail(AQA_EINVAL, "%s: weight of shape %s, expected [%lld] (one per class)", op,
             aqa_shape_str(weight, b, sizeof b), (long long)n_classes);
    return false;
}

aqa_tensor *aqa_nll_loss(aqa_tensor *input, aqa_tensor *target, aqa_tensor *weight, int64_t ignore_index,
                         aqa_reduction reduction) {
    const char *op = "aqa_nll_loss";
    if (!aqa__check_inputs(op, 2, (aqa_tensor *[]){input, target})) return NULL;
    if (!check_reduction(op, reduction) || !check_float(op, "input", input)) return NULL;
    if (input->ndim < 1) return aqa_fail_null("%s: input must have a class dimension, got a 0-d tensor", op);
    if (target->dtype != AQA_I64) return aqa_fail_null("%s: target must be int64 class indices, got %s", op, aqa_dtype_name(target->dtype));
    int cd = input->ndim == 1 ? 0 : 1;
    if (!check_index_target(op, input, target, cd) || !check_weight(op, weight, input->shape[cd])) return NULL;
    aqa_scope_begin();
    nll_parts p;
    if (!nll_core(input, target, weight, ignore_index, cd, &p)) return finish(NULL);
    return finish(nll_reduce(&p, reduction));
}

aqa_tensor *aqa_cross_entropy(aqa_tensor *logits, aqa_tensor *target, const aqa_cross_entropy_options *opts) {
    const char *op = "aqa_cross_entropy";
    aqa_cross_entropy_options o = opts ? *opts : AQA_CROSS_ENTROPY_DEFAULTS;
    if (!aqa__check_inputs(op, 2, (aqa_tensor *[]){logits, target})) return NULL;
    if (o.weight && !aqa__check_inputs(op, 2, (aqa_tensor *[]){logits, o.weight})) return NULL;
    if (!check_reduction(op, o.reduction) || !check_float(op, "logits", logits)) return NULL;
    if (logits->ndim < 1) return aqa_fail_null("%s: logits must have a class dimension, got a 0-d tensor", op);
    if (!(o.label_smoothing >= 0.0 && o.label_smoothing <= 1.0))
        return aqa_fail_null("%s: label_smoothing = %g is not in [0, 1]", op, o.label_smoothing);
    if (!(o.temperature > 0.0) || !isfinite(o.temperature))
        return aqa_fail_null("%s: temperature = %g must be positive and finite", op, o.temperature);
    int cd = logits->ndim == 1 ? 0 : 1;
    int64_t C = logits->shape[cd];
    double eps = o.label_smoothing;
    if (!check_weight(op, o.weight, C)) return NULL;

    aqa_scope_begin();
    aqa_tensor *x = o.temperature != 1.0 ? aqa_div_scalar(logits, o.temperature) : logits;
    aqa_tensor *logp = aqa_log_softmax(x, cd);
    if (!logp) return finish(NULL);
    /* the class weights as a tensor broadcasting along the class dimension */
    aqa_tensor *wview = NULL;
    if (o.weight) {
        int64_t shape[AQA_MAX_DIMS];
        for (int d = 0; d < logits->ndim; d++) shape[d] = d == cd ? C : 1;
        wview = aqa_reshape(aqa_to_dtype(o.weight, logp->dtype), logits->ndim, shape);
    }

    if (target->dtype != AQA_I64) {
        /* class probabilities (soft targets) */
        if (!check_float(op, "target", target) || !check_same_shape(op, logits, target)) return finish(NULL);
        aqa_tensor *t = target;
        if (eps > 0.0) t = aqa_add_scalar(aqa_mul_scalar(t, 1.0 - eps), eps / (double)C);
        aqa_tensor *prod = aqa_mul(logp, t);
        if (wview) prod = aqa_mul(prod, wview);
        aqa_tensor *r;
        switch (o.reduction) {
        case AQA_REDUCTION_MEAN:
            r = aqa_div_scalar(aqa_neg(aqa_sum_all(prod)), (double)(aqa_numel(logits) / (C ? C : 1)));
            break;
        case AQA_REDUCTION_SUM: r = aqa_neg(aqa_sum_all(prod)); break;
        default: r = aqa_neg(aqa_sum(prod, 1, &cd, false)); break;
        }
        return finish(r);
    }

    /* class indices */
    if (!check_index_target(op, logits, target, cd)) return finish(NULL);
    nll_parts p;
    if (!nll_core(logp, target, o.weight, o.ignore_index, cd, &p)) return finish(NULL);
    aqa_tensor *nll = nll_reduce(&p, o.reduction);
    if (eps <= 0.0) return finish(nll);
    /* torch's label smoothing: (1 - eps) nll + eps / C * smooth, smooth = -sum_c w_c logp_c,
     * zero where ignored, normalised like nll under 'mean' */
    aqa_tensor *wl = wview ? aqa_mul(logp, wview) : logp;
    aqa_tensor *smooth = aqa_neg(aqa_sum(wl, 1, &cd, false));
    smooth = aqa_mul(smooth, aqa_to_dtype(p.valid, smooth ? smooth->dtype : AQA_F32));
    aqa_tensor *sr;
    switch (o.reduction) {
    case AQA_REDUCTION_MEAN: sr = aqa_div(aqa_sum_all(smooth), aqa_sum_all(p.w)); break;
    case AQA_REDUCTION_SUM: sr = aqa_sum_all(smooth); break;
    default: sr = smooth; break;
    }
    return finish(aqa_add(aqa_mul_scalar(nll, 1.0 - eps), aqa_mul_scalar(sr, eps / (double)C)));
}

/* ---- KL divergence ------------------------------------------------------------------------------ */

aqa_tensor *aqa_kl_div(aqa_tensor *input, aqa_tensor *target, aqa_reduction reduction, bool log_target) {
    const char *op = "aqa_kl_div";
    if (!aqa__check_inputs(op, 2, (aqa_tensor *[]){input, target})) return NULL;
    if (!check_float(op, "input", input) || !check_float(op, "target", target)) return NULL;
    if (reduction != AQA_REDUCTION_BATCHMEAN && !check_reduction(op, reduction)) return NULL;
    aqa_scope_begin();
    aqa_tensor *loss;
    if (log_target) {
        loss = aqa_mul(aqa_exp(target), aqa_sub(target, input));
    } else {
        /* xlogy(t, t) - t * input: t log t is defined as 0 at t == 0 (log of 1 there) */
        aqa_tensor *pos = aqa_gt_scalar(target, 0.0);
        aqa_tensor *safe = aqa_where(pos, target, aqa_ones(0, NULL, target->dtype));
        aqa_tensor *xlogx = aqa_mul(target, aqa_log(safe));
        loss = aqa_sub(xlogx, aqa_mul(target, input));
    }
    return finish(aqa_reduce_loss(loss, reduction));
}
