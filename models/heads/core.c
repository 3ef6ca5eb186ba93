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
 * Loss, in both directions of each pair: NLL of the leaf holding the true difference + MSE between
 * that leaf's value and the difference's relative position in the leaf (summed over leaves,
 * averaged within each).  Prediction: leaf = argmax, delta = left + (right - left) value, score =
 * exemplar score + delta.  With use_difficulty (CoRe's usingDD, 'w/ DD' and 'w/ DN' alike) each
 * video's score is divided by its own DD (input difficulty: CoRe's "completeness") and the
 * prediction is (exemplar completeness + delta) x the query's DD.
 * A difference outside every group is counted in the nearest one (CoRe then skips the MSE). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    bool have_groups;                       /* set by aqa_core_head_set_groups (or loaded) */
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
    double range = c->core_theta;
    double *g = malloc(sizeof *g * (size_t)(2 * t->leaves));
    if (!g) goto fail;
    for (int64_t i = 0; i < t->leaves; i++) {
        g[2 * i] = -range + 2 * range * (double)i / (double)t->leaves;
        g[2 * i + 1] = -range + 2 * range * (double)(i + 1) / (double)t->leaves;
    }
    aqa_tensor *gt = aqa_from_data(g, 2, (int64_t[]){t->leaves, 2}, AQA_F64);
    free(g);
    if (!gt || !(t->groups = aqa_module_buffer(&t->h.base, "groups", gt))) goto fail;
    return &t->h;
fail:
    if (!parent) aqa_module_free(&t->h.base);
    return NULL;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

aqa_status aqa_core_head_set_groups(aqa_head *h, const double *deltas, int64_t n) {
    if (!h || h->ops != &aqa_head_core || !deltas || n < 1)
        return aqa_fail(AQA_EINVAL, "aqa_core_head_set_groups: needs a core head and at least one delta");
    core_head *t = (core_head *)h;
    double *a = malloc(sizeof *a * (size_t)n), *g = malloc(sizeof *g * (size_t)(2 * t->leaves));
    if (!a || !g) {
        free(a);
        free(g);
        return aqa_fail(AQA_ENOMEM, "aqa_core_head_set_groups: out of memory");
    }
    for (int64_t i = 0; i < n; i++) a[i] = fabs(deltas[i]);
    qsort(a, (size_t)n, sizeof *a, cmp_double);
    int64_t half = t->leaves / 2;
    for (int64_t i = 0; i < half; i++) {
        double left = i == 0 ? 0.0 : a[(int64_t)((double)i / (double)half * (double)(n - 1))];
        double right = i == half - 1 ? h->cfg.core_theta : a[(int64_t)((double)(i + 1) / (double)half * (double)(n - 1))];
        g[2 * (half + i)] = left;
        g[2 * (half + i) + 1] = right;
        g[2 * (half - 1 - i)] = -right; /* mirrored negative half, [left, right] sorted */
        g[2 * (half - 1 - i) + 1] = -left;
    }
    aqa_tensor *gt = aqa_from_data(g, 2, (int64_t[]){t->leaves, 2}, AQA_F64);
    free(a);
    free(g);
    if (!gt) return aqa_last_status();
    aqa_status st = aqa_copy_(t->groups, gt);
    aqa_tensor_free(gt);
    t->have_groups = st == AQA_OK;
    return st;
}

/* Leaf of a difference (CoRe's rule: [left, right) for >= 0, (left, right] below 0; outside
 * every group: the nearest) and its relative position. */
static int64_t leaf_of(const double *g, int64_t leaves, double d, double *rel) {
    int64_t best = -1;
    for (int64_t i = 0; i < leaves && best < 0; i++) {
        double l = g[2 * i], r = g[2 * i + 1];
        if ((d >= 0 && d >= l && d < r) || (d < 0 && d > l && d <= r)) best = i;
    }
    if (best < 0) best = d >= 0 ? leaves - 1 : 0;
    double l = g[2 * best], r = g[2 * best + 1];
    *rel = r == l ? d - l : (d - l) / (r - l);
    return best;
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

static aqa_status core_forward(aqa_head *h, const aqa_head_input *query, const aqa_head_input *exemplar,
                               aqa_tensor *exemplar_score, const aqa_head_targets *targets, aqa_head_result *out) {
    core_head *t = (core_head *)h;
    const aqa_head_config *c = &h->cfg;
    aqa_status st = AQA_OK;
    double *s1 = NULL, *s2 = NULL, *dd = NULL, *dde = NULL, *g = NULL, *w = NULL, *r = NULL, *pr = NULL;
    int64_t *lab = NULL;
    aqa_scope_begin();
    aqa_tensor *fq = aqa_head_feature(h, query), *fe = aqa_head_feature(h, exemplar);
    if (!fq || !fe) {
        st = AQA_EINVAL;
        goto done;
    }
    int64_t B = fq->shape[0], L = t->leaves;
    aqa_dtype dt = fq->dtype;
    bool train = targets && targets->score;
    bool use_dd = c->use_difficulty;
    s1 = calloc((size_t)B + 1, sizeof *s1);
    s2 = calloc((size_t)B + 1, sizeof *s2);
    dd = malloc(sizeof *dd * ((size_t)B + 1));
    dde = malloc(sizeof *dde * ((size_t)B + 1));
    g = malloc(sizeof *g * (size_t)(2 * L));
    w = calloc((size_t)(2 * B * L), sizeof *w);
    r = calloc((size_t)(2 * B * L), sizeof *r);
    pr = malloc(sizeof *pr * ((size_t)B + 1));
    lab = malloc(sizeof *lab * (size_t)(2 * B));
    if (!s1 || !s2 || !dd || !dde || !g || !w || !r || !pr || !lab) {
        st = aqa_fail(AQA_ENOMEM, "core: out of memory");
        goto done;
    }
    for (int64_t i = 0; i < B; i++) dd[i] = dde[i] = 1.0;
    if (aqa_numel(exemplar_score) != B || (train && aqa_numel(targets->score) != B)) {
        st = aqa_fail(AQA_EINVAL, "core: one exemplar score and one target per query (%lld)", (long long)B);
        goto done;
    }
    if (aqa_copy_to_host(exemplar_score, s2, AQA_F64) || aqa_copy_to_host(t->groups, g, AQA_F64) ||
        (use_dd && (aqa_head_difficulty(h, query, B, dd) || aqa_head_difficulty(h, exemplar, B, dde))) ||
        (train && aqa_copy_to_host(targets->score, s1, AQA_F64))) {
        st = aqa_last_status();
        goto done;
    }
    for (int64_t i = 0; i < B; i++) { /* CoRe's completeness: each video's score over its own DD */
        s1[i] /= dd[i];
        s2[i] /= dde[i];
    }
    /* direction A: (exemplar, query, exemplar score) -> query - exemplar; B: the reverse */
    aqa_tensor *se = aqa_stage_on_device(
        aqa_div_scalar(aqa_to_dtype(aqa_reshape(aqa_from_data(s2, 1, (int64_t[]){B}, AQA_F64), 2, (int64_t[]){B, 1}), dt),
                       c->core_theta),
        fq);
    aqa_tensor *xa = aqa_cat((aqa_tensor *[]){fe, fq, se}, 3, 1);
    aqa_tensor *x = xa;
    if (train) {
        aqa_tensor *sq = aqa_stage_on_device(
            aqa_div_scalar(aqa_to_dtype(aqa_reshape(aqa_from_data(s1, 1, (int64_t[]){B}, AQA_F64), 2, (int64_t[]){B, 1}), dt),
                           c->core_theta),
            fq);
        x = aqa_cat((aqa_tensor *[]){xa, aqa_cat((aqa_tensor *[]){fq, fe, sq}, 3, 1)}, 2, 0);
    }
    aqa_tensor *logp = NULL, *delta = NULL;
    if (!x) {
        st = aqa_last_status();
        goto done;
    }
    tree(t, x, &logp, &delta);
    if (!logp || !delta) {
        st = aqa_last_status() ? aqa_last_status() : AQA_EINVAL;
        goto done;
    }
    /* prediction from direction A */
    {
        aqa_tensor *la = aqa_narrow(logp, 0, 0, B), *da = aqa_narrow(delta, 0, 0, B);
        aqa_tensor *arg = aqa_argmax(la, 1, false);
        double *dv = malloc(sizeof *dv * (size_t)(B * L));
        int64_t *av = malloc(sizeof *av * (size_t)B);
        if (!dv || !av || !arg || aqa_copy_to_host(arg, av, AQA_I64) || aqa_copy_to_host(da, dv, AQA_F64)) {
            free(dv);
            free(av);
            st = aqa_last_status() ? aqa_last_status() : AQA_ENOMEM;
            goto done;
        }
        for (int64_t i = 0; i < B; i++) {
            int64_t k = av[i];
            double l = g[2 * k], rr = g[2 * k + 1], v = dv[i * L + k];
            double rel = rr == l ? l + v : l + (rr - l) * v;
            pr[i] = (s2[i] + rel) * dd[i];
        }
        free(dv);
        free(av);
        out->pred = aqa_stage_on_device(aqa_to_dtype(aqa_from_data(pr, 1, (int64_t[]){B}, AQA_F64), dt), fq);
    }
    if (train) {
        int64_t count[2][64] = {{0}};
        for (int dir = 0; dir < 2; dir++)
            for (int64_t i = 0; i < B; i++) {
                double d = dir == 0 ? s1[i] - s2[i] : s2[i] - s1[i], rel;
                int64_t k = leaf_of(g, L, d, &rel);
                lab[dir * B + i] = k;
                r[(dir * B + i) * L + k] = rel;
                count[dir][k < 64 ? k : 63]++;
            }
        for (int dir = 0; dir < 2; dir++)
            for (int64_t i = 0; i < B; i++) {
                int64_t k = lab[dir * B + i];
                w[(dir * B + i) * L + k] = 1.0 / (double)count[dir][k < 64 ? k : 63];
            }
        aqa_tensor *labels = aqa_stage_on_device(aqa_from_data(lab, 1, (int64_t[]){2 * B}, AQA_I64), logp);
        aqa_tensor *W = aqa_stage_on_device(aqa_to_dtype(aqa_from_data(w, 2, (int64_t[]){2 * B, L}, AQA_F64), dt), logp);
        aqa_tensor *R = aqa_stage_on_device(aqa_to_dtype(aqa_from_data(r, 2, (int64_t[]){2 * B, L}, AQA_F64), dt), logp);
        /* NLL averaged within each direction, as CoRe's two nll calls */
        aqa_tensor *nll = aqa_add(aqa_nll_loss(aqa_narrow(logp, 0, 0, B), aqa_narrow(labels, 0, 0, B), NULL, -100,
                                               AQA_REDUCTION_MEAN),
                                  aqa_nll_loss(aqa_narrow(logp, 0, B, B), aqa_narrow(labels, 0, B, B), NULL, -100,
                                               AQA_REDUCTION_MEAN));
        aqa_tensor *mse = aqa_sum_all(aqa_mul(W, aqa_square(aqa_sub(delta, R))));
        out->loss = aqa_add(nll, mse);
    }
    if (!out->pred || (train && !out->loss)) st = aqa_last_status() ? aqa_last_status() : AQA_EINVAL;
done:
    free(s1);
    free(s2);
    free(dd);
    free(dde);
    free(g);
    free(w);
    free(r);
    free(pr);
    free(lab);
    return aqa_head_finish(out, st, false); /* the loss was checked above (a goto can skip train) */
}

const aqa_head_ops aqa_head_core = {"core", true, core_create, core_forward};
