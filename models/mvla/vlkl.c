/* vlkl.c: vision-language action knowledge learning losses (eq. 5-7).
 *
 * L_CE (eq. 5): cross-entropy over the cosine similarities between each visual embedding and all
 * candidate texts of its granularity, divided by the temperature tau = exp(log_tau) (clamped to
 * >= 0.01 like CLIP's logit scale), the right text being the target; averaged over the visual
 * embeddings (eq. 5 sums; the mean keeps the weights independent of batch and T).
 * KL (eq. 7, FUM): for each sample and each of its stage texts, the similarity curve over clips
 * of each branch is turned into a distribution by a softmax over clips; KL(i3d || vis) averaged. */
#include <math.h>

#include "models/mvla/mvla.h"
#include "nn/loss.h"
#include "ops/ops.h"

aqa_tensor *aqa_mvla_l2_normalize(aqa_tensor *x) {
    if (!x) return NULL;
    aqa_scope_begin();
    int last = x->ndim - 1;
    aqa_tensor *n = aqa_sqrt(aqa_sum(aqa_square(x), 1, &last, true));
    aqa_tensor *y = aqa_keep(aqa_div(x, aqa_clamp(n, 1e-12, INFINITY)));
    aqa_scope_end();
    return y;
}

/* exp(-clamp(log_tau, log 0.01)): the logit scale 1 / tau. */
static aqa_tensor *inv_tau(aqa_tensor *log_tau) { return aqa_exp(aqa_neg(aqa_clamp(log_tau, log(0.01), INFINITY))); }

aqa_tensor *aqa_mvla_vlkl_ce(aqa_tensor *x, aqa_tensor *texts, aqa_tensor *ids, aqa_tensor *log_tau) {
    if (!x || !texts || !ids || !log_tau) return aqa_fail_null("aqa_mvla_vlkl_ce: NULL argument");
    if (x->ndim != 2 || texts->ndim != 2 || x->shape[1] != texts->shape[1] || ids->ndim != 1 ||
        ids->shape[0] != x->shape[0])
        return aqa_fail_null("aqa_mvla_vlkl_ce: expected x [M, D], texts [C, D], ids [M]");
    aqa_scope_begin();
    aqa_tensor *sim = aqa_matmul(aqa_mvla_l2_normalize(x), aqa_transpose(aqa_mvla_l2_normalize(texts), 0, 1));
    aqa_tensor *loss = aqa_cross_entropy(aqa_mul(sim, inv_tau(log_tau)), ids, NULL);
    aqa_keep(loss);
    aqa_scope_end();
    return loss;
}

aqa_tensor *aqa_mvla_vlkl_kl(aqa_tensor *i3d, aqa_tensor *vis, aqa_tensor *texts, aqa_tensor *log_tau) {
    if (!i3d || !vis || !texts || !log_tau) return aqa_fail_null("aqa_mvla_vlkl_kl: NULL argument");
    if (i3d->ndim != 3 || !aqa_same_shape(i3d, vis) || texts->ndim != 3 || texts->shape[0] != i3d->shape[0] ||
        texts->shape[2] != i3d->shape[2])
        return aqa_fail_null("aqa_mvla_vlkl_kl: expected i3d, vis [B, N, D] and texts [B, S, D]");
    aqa_scope_begin();
    aqa_tensor *tn = aqa_transpose(aqa_mvla_l2_normalize(texts), 1, 2); /* [B, D, S] */
    aqa_tensor *s = inv_tau(log_tau);
    aqa_tensor *lp = aqa_log_softmax(aqa_mul(aqa_matmul(aqa_mvla_l2_normalize(i3d), tn), s), 1); /* over clips */
    aqa_tensor *lq = aqa_log_softmax(aqa_mul(aqa_matmul(aqa_mvla_l2_normalize(vis), tn), s), 1);
    aqa_tensor *kl = aqa_sum_all(aqa_mul(aqa_exp(lp), aqa_sub(lp, lq)));
    aqa_tensor *loss = aqa_div_scalar(kl, (double)(i3d->shape[0] * texts->shape[1]));
    aqa_keep(loss);
    aqa_scope_end();
    return loss;
}
