/* core.c: CoRe's group-aware regression tree (Yu et al., ICCV 2021), a contrastive head.
 *
 * Input: the exemplar's and the query's features (aqa_head_feature: CoRe's mean I3D features, or Z
 * with use_z) and the exemplar's score / core_theta (2F + 1 values; CoRe: 2049, theta its
 * score_range).  A tree of depth 5 (16 leaves, hidden 256):
 * first_layer Linear + ReLU; at each of the 4 levels, grouped 1x1 Conv1d's split every node's
 * hidden vector in two (feature_layers.<d>) and score its two branches (clf_layers.<d>); leaf
 * log-probabilities are the sums of the branch log-softmaxes along the path; reg_layer gives one
 * regression value per leaf.  Groups ("groups" buffer [leaves, 2]) are set from the training
 * pairs' score differences (aqa_core_head_set_groups; CoRe's Group_helper with Min 0, Max
 * score_range): symmetric about 0, the positive half split at quantiles of |delta| (every
 * unordered pair of a group once: aqa_exemplar_pool_deltas), from 0 to core_theta.
 * Loss (groups.c, shared with TPT), in both directions of each pair: NLL of the leaf holding the
 * true difference + MSE between that leaf's value and the difference's relative position in the
 * leaf (summed over leaves, averaged within each).  Prediction: leaf = argmax, delta = left + (right - left) value, score =
 * exemplar score + delta.  With use_difficulty (CoRe's usingDD, 'w/ DD' and 'w/ DN' alike) each
 * video's score is divided by its own DD (input difficulty: CoRe's "completeness") and the
 * prediction is (exemplar completeness + delta) x the query's DD.
 * A difference outside every group is counted in the nearest one (CoRe then skips the MSE). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/heads/groups.h"
#include "models/heads/head.h"
#include "models/mvla/stages.h"
#include "nn/conv.h"
#include "nn/linear.h"
#include "nn/loss.h"
#include "ops/ops.h"

#define CORE_MAX_DEPTH 7 /* 64 leaves at most */

typedef struct core_head {
    aqa_head h;                             /* common part (first) */
    aqa_linear_layer *first;                /* first_layer.0 */
    aqa_conv_layer *feat[CORE_MAX_DEPTH];   /* feature_layers.<d>.0 */
    aqa_conv_layer *clf[CORE_MAX_DEPTH];    /* clf_layers.<d> */
    aqa_conv_layer *reg;                    /* reg_layer */
    aqa_tensor *groups;                     /* buffer [leaves, 2]: [left, right] of each leaf */
    int levels;                             /* depth - 1 */
    int64_t leaves;                         /* 2^(depth - 1) */
} core_head;

static aqa_head *core_create(const aqa_head_config *c, aqa_module *parent, const char *name) {
    if (c->core_depth < 2 || c->core_depth > CORE_MAX_DEPTH || c->core_hidden < 1 || c->feat_dim < 1 ||
        !(c->core_theta > 0))
        return aqa_fail_null("core head: bad settings (depth %d, hidden %lld, theta %g)", c->core_depth,
                             (long long)c->core_hidden, c->core_theta);
    core_head *t = aqa_module_new(sizeof *t, "RegressTree", parent, name, NULL);
    if (!t) return NULL;
    int64_t h = c->core_hidden;
    t->levels = c->core_depth - 1;
    t->leaves = (int64_t)1 << t->levels;
    aqa_module *fl = aqa_module_container(&t->h.base, "first_layer");
    if (!fl || !(t->first = aqa_linear_layer_new(fl, "0", 2 * aqa_head_feature_dim(c) + 1, h, true))) goto fail;
    aqa_module *feats = aqa_module_container(&t->h.base, "feature_layers");
    aqa_module *clfs = aqa_module_container(&t->h.base, "clf_layers");
    if (!feats || !clfs) goto fail;
    for (int d = 0; d < t->levels; d++) {
        char idx[16];
        snprintf(idx, sizeof idx, "%d", d);
        int64_t nodes = (int64_t)1 << d;
        aqa_module *seq = aqa_module_container(feats, idx);
        if (!seq || !(t->feat[d] = aqa_conv1d_layer_new(seq, "0", nodes * h, nodes * 2 * h, 1, 1, 0, 1, nodes, true)))
            goto fail;
        if (!(t->clf[d] = aqa_conv1d_layer_new(clfs, idx, nodes * h, nodes * 2, 1, 1, 0, 1, nodes, true))) goto fail;
    }
    if (!(t->reg = aqa_conv1d_layer_new(&t->h.base, "reg_layer", t->leaves * h, t->leaves, 1, 1, 0, 1, t->leaves, true)))
        goto fail;
    /* default groups: even over [-theta, theta] until set from data */
    double *g = malloc(sizeof *g * (size_t)(2 * t->leaves));
    if (!g) goto fail;
    aqa_groups_even(g, t->leaves, c->core_theta);
    aqa_tensor *gt = aqa_from_data(g, 2, (int64_t[]){t->leaves, 2}, AQA_F64);
    free(g);
    if (!gt || !(t->groups = aqa_module_buffer(&t->h.base, "groups", gt))) goto fail;
    return &t->h;
fail:
    if (!parent) aqa_module_free(&t->h.base);
    return NULL;
}

aqa_status aqa_core_head_set_groups(aqa_head *h, const double *deltas, int64_t n) {
    if (!h || h->ops != &aqa_head_core || !deltas || n < 1)
        return aqa_fail(AQA_EINVAL, "aqa_core_head_set_groups: needs a core head and at least one delta");
    core_head *t = (core_head *)h;
    double *g = malloc(sizeof *g * (size_t)(2 * t->leaves));
    if (!g) return aqa_fail(AQA_ENOMEM, "aqa_core_head_set_groups: out of memory");
    aqa_status st = aqa_groups_from_deltas(g, t->leaves, deltas, n, h->cfg.core_theta); /* CoRe: Max = score_range */
    aqa_tensor *gt = st ? NULL : aqa_from_data(g, 2, (int64_t[]){t->leaves, 2}, AQA_F64);
    free(g);
    if (!st) st = gt ? aqa_copy_(t->groups, gt) : aqa_last_status();
    aqa_tensor_free(gt);
    return st;
}

/* Tree forward: x [M, 2C + 1] -> *logp [M, leaves] (leaf log-probabilities), *delta [M, leaves]. */
static void tree(core_head *t, aqa_tensor *x, aqa_tensor **logp, aqa_tensor **delta) {
    aqa_tensor *h = aqa_unsqueeze(aqa_relu(aqa_linear_layer_forward(t->first, x)), 2); /* [M, h, 1] */
    int64_t M = x->shape[0];
    aqa_tensor *prev = NULL;
    for (int d = 0; d < t->levels; d++) {
        aqa_tensor *p = aqa_squeeze(aqa_conv_layer_forward(t->clf[d], h), 2); /* [M, 2^(d+1)] */
        h = aqa_relu(aqa_conv_layer_forward(t->feat[d], h));
        aqa_tensor *lp = aqa_log_softmax(aqa_view(p, 3, (int64_t[]){M, -1, 2}), 2);
        if (prev) lp = aqa_add(lp, aqa_unsqueeze(prev, 2));
        prev = aqa_reshape(lp, 2, (int64_t[]){M, -1});
    }
    *logp = prev;
    *delta = aqa_squeeze(aqa_conv_layer_forward(t->reg, h), 2);
}

/* The exemplar or query scores (host, n values) as the tree's extra input column: s / theta [n, 1]. */
static aqa_tensor *score_column(const double *s, int64_t n, double theta, const aqa_tensor *like) {
    aqa_tensor *t = aqa_from_data(s, 2, (int64_t[]){n, 1}, AQA_F64);
    return aqa_stage_on_device(aqa_div_scalar(aqa_to_dtype(t, like->dtype), theta), like);
}

static aqa_status core_forward(aqa_head *h, const aqa_head_input *query, const aqa_head_input *exemplar,
                               aqa_tensor *exemplar_score, const aqa_head_targets *targets, aqa_head_result *out) {
    core_head *t = (core_head *)h;
    const aqa_head_config *c = &h->cfg;
    aqa_status st = AQA_OK;
    aqa_scope_begin();
    aqa_tensor *fq = aqa_head_feature(h, query), *fe = aqa_head_feature(h, exemplar);
    if (!fq || !fe) return aqa_head_finish(out, AQA_EINVAL, false);
    int64_t B = fq->shape[0], L = t->leaves;
    bool train = targets && targets->score;
    /* s1 query scores, s2 exemplar scores, dd / dde their DD, g the groups, pr predictions */
    double *buf = calloc((size_t)(6 * B + 2 * L + 6), sizeof *buf);
    if (!buf) return aqa_head_finish(out, aqa_fail(AQA_ENOMEM, "core: out of memory"), false);
    double *s1 = buf, *s2 = s1 + B + 1, *dd = s2 + B + 1, *dde = dd + B + 1, *pr = dde + B + 1, *diff = pr + B + 1,
           *g = diff + B + 1;
    for (int64_t i = 0; i < B; i++) dd[i] = dde[i] = 1.0;
    if (aqa_numel(exemplar_score) != B || (train && aqa_numel(targets->score) != B))
        st = aqa_fail(AQA_EINVAL, "core: one exemplar score and one target per query (%lld)", (long long)B);
    if (!st && (aqa_copy_to_host(exemplar_score, s2, AQA_F64) || aqa_copy_to_host(t->groups, g, AQA_F64) ||
                (c->use_difficulty && (aqa_head_difficulty(h, query, B, dd) || aqa_head_difficulty(h, exemplar, B, dde))) ||
                (train && aqa_copy_to_host(targets->score, s1, AQA_F64))))
        st = aqa_last_status();
    for (int64_t i = 0; i < B; i++) { /* CoRe's completeness: each video's score over its own DD */
        s1[i] /= dd[i];
        s2[i] /= dde[i];
        diff[i] = s1[i] - s2[i];
    }
    /* direction A: (exemplar, query, exemplar score) -> query - exemplar; B: the reverse */
    aqa_tensor *x = st ? NULL : aqa_cat((aqa_tensor *[]){fe, fq, score_column(s2, B, c->core_theta, fq)}, 3, 1);
    if (x && train)
        x = aqa_cat((aqa_tensor *[]){x, aqa_cat((aqa_tensor *[]){fq, fe, score_column(s1, B, c->core_theta, fq)}, 3, 1)},
                    2, 0);
    aqa_tensor *logp = NULL, *delta = NULL;
    if (x) tree(t, x, &logp, &delta);
    if (!st && (!logp || !delta)) st = aqa_last_status() ? aqa_last_status() : AQA_EINVAL;
    if (!st && !(st = aqa_groups_predict(aqa_narrow(logp, 0, 0, B), aqa_narrow(delta, 0, 0, B), g, L, pr))) {
        for (int64_t i = 0; i < B; i++) pr[i] = (s2[i] + pr[i]) * dd[i];
        out->pred = aqa_stage_on_device(aqa_to_dtype(aqa_from_data(pr, 1, (int64_t[]){B}, AQA_F64), fq->dtype), fq);
    }
    if (!st && train) out->loss = aqa_groups_loss(logp, delta, g, L, diff, B);
    if (!st && (!out->pred || (train && !out->loss))) st = aqa_last_status() ? aqa_last_status() : AQA_EINVAL;
    free(buf);
    return aqa_head_finish(out, st, false); /* the loss was checked above */
}

const aqa_head_ops aqa_head_core = {"core", true, core_create, core_forward};
