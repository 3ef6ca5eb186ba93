/* groups.h: CoRe's groups (Group_helper of the CoRe and TPT code), for contrastive heads that
 * classify a score difference into a leaf and regress its position inside the leaf.
 *
 * The difference axis is split into `leaves` intervals symmetric about 0, stored as host doubles
 * g[2 * leaves] = [left, right] per leaf: the positive half cut at quantiles of |delta| of the
 * training pairs from 0 to `max` (the largest |delta| when max <= 0), the negative half mirrored.
 * A difference d >= 0 belongs to [left, right), d < 0 to (left, right]; one outside every leaf is
 * counted in the nearest (end) leaf. */
#ifndef AQA_HEADS_GROUPS_H
#define AQA_HEADS_GROUPS_H

#include <stdint.h>

#include "tensor/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Even leaves over [-range, range] (the state before the data is known). */
void aqa_groups_even(double *g, int64_t leaves, double range);
/* Leaves from n training differences (any sign; AQA_EINVAL when n < 1 or leaves is odd). */
aqa_status aqa_groups_from_deltas(double *g, int64_t leaves, const double *deltas, int64_t n, double max);
/* The leaf of difference d and, in *rel, its relative position (d - left) / (right - left) (d -
 * left for an empty leaf). */
int64_t aqa_groups_leaf(const double *g, int64_t leaves, double d, double *rel);
/* The difference a leaf's regression value v stands for: left + (right - left) v. */
double aqa_groups_value(const double *g, int64_t leaf, double v);

/* The tree loss of both pair directions: logp [2B, leaves] leaf log-probabilities and delta
 * [2B, leaves] regressed positions, rows [0, B) for differences diff[i], rows [B, 2B) for -diff[i].
 * Per direction: NLL of the true leaf (mean) + for each leaf the MSE of its value against the
 * relative position over the rows that fall in it (mean within the leaf, summed over leaves). */
aqa_tensor *aqa_groups_loss(aqa_tensor *logp, aqa_tensor *delta, const double *g, int64_t leaves, const double *diff,
                            int64_t B);
/* Predicted differences [B] (host) from logp/delta [B, leaves]: the argmax leaf's value. */
aqa_status aqa_groups_predict(aqa_tensor *logp, aqa_tensor *delta, const double *g, int64_t leaves, double *out);

#ifdef __cplusplus
}
#endif

#endif /* AQA_HEADS_GROUPS_H */
