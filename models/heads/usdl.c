/* usdl.c: USDL and MUSDL (Tang et al., CVPR 2020): uncertainty-aware score distribution learning,
 * as nzl-thu/MUSDL's code.
 *
 * USDL: feature (aqa_head_feature: the mean I3D feature, or Z with use_z) -> MLP (256, 128) ->
 * softmax over `usdl_bins` bins spanning [score_min, score_max] (the authors': 101 bins over
 * [0, 104.5] on MTL-AQA, 25 over [6, 30] on JIGSAWS); the target is a Gaussian over bin indices
 * centred on the score's position with std usdl_sigma (in bins: 5 on MTL-AQA, 1 on JIGSAWS),
 * normalised; loss KL(target || prediction), 'batchmean' (the true KL per video) or, with
 * usdl_kl_mean, KLDivLoss's default 'mean' over every element as the authors' code (1 / bins of
 * it); prediction = the most likely bin's score (x DD with use_difficulty, the target then being
 * score / DD).
 * MUSDL: one such evaluator per judge ("evaluators.<j>", musdl_bins over [judge_min, judge_max]:
 * 21 over [0, 10] for diving, 5 over [1, 5] for JIGSAWS's GRS items), targets the judges'
 * scores, loss the sum over judges of each judge's KL (a judge's KL averaged over the videos that
 * have that judge).  Each video has its own judge count n (input judge_count: FineDiving panels
 * of 3, 5 or 7): evaluators j >= n are left out of its loss and of its prediction, which combines
 * the n predicted judge scores by musdl_rule: FINA (middle 3 of 7, 0.6 x sum of 5, sum of 3;
 * x DD) or SUM (JIGSAWS: the 6 items summed, no DD).
 * Names evaluator.layer1..3 (USDL) and evaluators.<j>.layer1..3 (MUSDL), as their code. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "models/heads/head.h"
#include "models/mvla/stages.h"
#include "nn/linear.h"
#include "nn/loss.h"
#include "ops/ops.h"

#define MAX_JUDGES 32

typedef struct usdl_head {
    aqa_head h;                        /* common part (first) */
    aqa_linear_layer *l[MAX_JUDGES][3]; /* one evaluator (USDL) or one per judge (MUSDL) */
    int n_eval;                        /* 1 or judges */
    int64_t bins;                      /* bins per evaluator */
    double lo, hi;                     /* score range of the bins */
} usdl_head;

static aqa_head *create(const aqa_head_config *c, aqa_module *parent, const char *name, bool multi) {
    int n = multi ? (int)c->musdl_judges : 1;
    int64_t bins = multi ? c->musdl_bins : c->usdl_bins;
    double lo = multi ? c->judge_min : c->score_min, hi = multi ? c->judge_max : c->score_max;
    if (n < 1 || n > MAX_JUDGES || bins < 2 || !(c->usdl_sigma > 0) || !(hi > lo))
        return aqa_fail_null("%s head: bad settings (judges %d, bins %lld, range [%g, %g])", multi ? "musdl" : "usdl", n,
                             (long long)bins, lo, hi);
    usdl_head *u = aqa_module_new(sizeof *u, multi ? "MUSDL" : "USDL", parent, name, NULL);
    if (!u) return NULL;
    u->n_eval = n;
    u->bins = bins;
    u->lo = lo;
    u->hi = hi;
    aqa_module *list = multi ? aqa_module_container(&u->h.base, "evaluators") : NULL;
    if (multi && !list) goto fail;
    for (int j = 0; j < n; j++) {
        char idx[16];
        snprintf(idx, sizeof idx, "%d", j);
        aqa_module *e = aqa_module_container(multi ? list : &u->h.base, multi ? idx : "evaluator");
        if (!e || !(u->l[j][0] = aqa_linear_layer_new(e, "layer1", aqa_head_feature_dim(c), 256, true)) ||
            !(u->l[j][1] = aqa_linear_layer_new(e, "layer2", 256, 128, true)) ||
            !(u->l[j][2] = aqa_linear_layer_new(e, "layer3", 128, bins, true)))
            goto fail;
    }
    return &u->h;
fail:
    if (!parent) aqa_module_free(&u->h.base);
    return NULL;
}
static aqa_head *usdl_create(const aqa_head_config *c, aqa_module *p, const char *n) { return create(c, p, n, false); }
static aqa_head *musdl_create(const aqa_head_config *c, aqa_module *p, const char *n) { return create(c, p, n, true); }

/* Gaussian targets [B, bins] for the scores s (host values). */
static aqa_tensor *gaussian_targets(const double *s, int64_t B, int64_t bins, double lo, double hi, double sigma,
                                    aqa_dtype dtype) {
    double *m = malloc(sizeof *m * (size_t)(B * bins));
    if (!m) return aqa_fail_null("usdl: out of memory");
    for (int64_t i = 0; i < B; i++) {
        double mu = (s[i] - lo) / (hi - lo) * (double)(bins - 1), sum = 0;
        for (int64_t k = 0; k < bins; k++) {
            double d = ((double)k - mu) / sigma;
            sum += m[i * bins + k] = exp(-0.5 * d * d);
        }
        for (int64_t k = 0; k < bins; k++) m[i * bins + k] = sum > 0 ? m[i * bins + k] / sum : 1.0 / (double)bins;
    }
    aqa_tensor *t = aqa_from_data(m, 2, (int64_t[]){B, bins}, AQA_F64);
    free(m);
    return (t && dtype != AQA_F64) ? aqa_to_dtype(t, dtype) : t;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* MUSDL's final score from the n predicted judge scores v (sorted in place). */
static double combine_judges(aqa_musdl_rule rule, double *v, int64_t n, double dd) {
    double sum = 0;
    if (rule == AQA_MUSDL_SUM) {
        for (int64_t j = 0; j < n; j++) sum += v[j];
        return sum;
    }
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    if (n == 5) { /* FineDiving's 5-judge panels: synchronised dives, 0.6 x the sum of 5 */
        for (int64_t j = 0; j < 5; j++) sum += v[j];
        return 0.6 * sum * dd;
    }
    int64_t drop = n > 3 ? (n - 3) / 2 : 0; /* 7 judges: the 2 highest and 2 lowest dropped */
    for (int64_t j = drop; j < n - drop; j++) sum += v[j];
    return sum * dd;
}

static aqa_status usdl_forward(aqa_head *h, const aqa_head_input *query, const aqa_head_input *exemplar,
                               aqa_tensor *exemplar_score, const aqa_head_targets *targets, aqa_head_result *out) {
    (void)exemplar;
    (void)exemplar_score;
    usdl_head *u = (usdl_head *)h;
    const aqa_head_config *c = &h->cfg;
    bool multi = u->h.ops == &aqa_head_musdl;
    aqa_status st = AQA_OK;
    double *tgt = NULL, *pred = NULL, *dd = NULL, *row = NULL, *final = NULL, *col = NULL, *mask = NULL;
    int64_t *cnt = NULL, *arg = NULL;
    aqa_scope_begin();
    aqa_tensor *f = aqa_head_feature(h, query);
    if (!f) {
        st = AQA_EINVAL;
        goto done;
    }
    int64_t B = f->shape[0], J = u->n_eval, Jt = J;
    bool train = targets && (multi ? targets->judge_scores != NULL : targets->score != NULL);
    bool use_dd = multi ? c->musdl_rule == AQA_MUSDL_FINA : c->use_difficulty;
    tgt = malloc(sizeof *tgt * (size_t)(B * J + 1));
    pred = calloc((size_t)(B * J + 1), sizeof *pred);
    dd = malloc(sizeof *dd * (size_t)(B + 1));
    row = malloc(sizeof *row * (size_t)(J + 1));
    final = malloc(sizeof *final * (size_t)(B + 1));
    col = malloc(sizeof *col * (size_t)(B + 1));
    mask = malloc(sizeof *mask * (size_t)(B + 1));
    cnt = malloc(sizeof *cnt * (size_t)(B + 1));
    arg = malloc(sizeof *arg * (size_t)(B + 1));
    if (!tgt || !pred || !dd || !row || !final || !col || !mask || !cnt || !arg) {
        st = aqa_fail(AQA_ENOMEM, "usdl: out of memory");
        goto done;
    }
    for (int64_t i = 0; i < B; i++) dd[i] = 1.0;
    if (use_dd && (st = aqa_head_difficulty(h, query, B, dd))) goto done;
    for (int64_t i = 0; i < B; i++) cnt[i] = J;
    if (multi && query->judge_count) {
        if (aqa_numel(query->judge_count) != B || aqa_copy_to_host(query->judge_count, cnt, AQA_I64) != AQA_OK) {
            st = aqa_fail(AQA_EINVAL, "musdl: judge_count must hold one count per video (%lld)", (long long)B);
            goto done;
        }
        for (int64_t i = 0; i < B; i++)
            if (cnt[i] < 1 || cnt[i] > J) {
                st = aqa_fail(AQA_EINVAL, "musdl: video %lld has %lld judges; the head has 1..%lld", (long long)i,
                              (long long)cnt[i], (long long)J);
                goto done;
            }
    }
    if (train) {
        aqa_tensor *s = multi ? targets->judge_scores : targets->score;
        Jt = multi && s->ndim == 2 ? s->shape[1] : 1;
        if ((multi && (s->ndim != 2 || s->shape[0] != B || Jt < J)) || (!multi && aqa_numel(s) != B)) {
            st = aqa_fail(AQA_EINVAL, "%s: targets must have %lld values per video", h->ops->name, (long long)J);
            goto done;
        }
        double *all = malloc(sizeof *all * (size_t)(B * Jt + 1));
        if (!all || aqa_copy_to_host(s, all, AQA_F64) != AQA_OK) {
            free(all);
            st = all ? aqa_last_status() : aqa_fail(AQA_ENOMEM, "usdl: out of memory");
            goto done;
        }
        for (int64_t i = 0; i < B; i++)
            for (int64_t j = 0; j < J; j++) tgt[i * J + j] = multi ? all[i * Jt + j] : all[i] / dd[i];
        free(all);
    }
    aqa_tensor *loss = NULL;
    for (int j = 0; j < J; j++) {
        aqa_tensor *x = aqa_relu(aqa_linear_layer_forward(u->l[j][0], f));
        x = aqa_relu(aqa_linear_layer_forward(u->l[j][1], x));
        aqa_tensor *logp = aqa_log_softmax(aqa_linear_layer_forward(u->l[j][2], x), 1); /* [B, bins] */
        aqa_tensor *am = aqa_argmax(logp, 1, false);
        if (!logp || !am || aqa_copy_to_host(am, arg, AQA_I64) != AQA_OK) {
            st = aqa_last_status() ? aqa_last_status() : AQA_EINVAL;
            goto done;
        }
        for (int64_t i = 0; i < B; i++) pred[i * J + j] = u->lo + (double)arg[i] * (u->hi - u->lo) / (double)(u->bins - 1);
        if (!train) continue;
        int64_t present = 0;
        for (int64_t i = 0; i < B; i++) {
            col[i] = tgt[i * J + j];
            mask[i] = j < cnt[i];
            present += j < cnt[i];
        }
        if (!present) continue;
        aqa_tensor *g = aqa_stage_on_device(gaussian_targets(col, B, u->bins, u->lo, u->hi, c->usdl_sigma, logp->dtype), logp);
        aqa_tensor *kl = aqa_kl_div(logp, g, AQA_REDUCTION_NONE, false); /* [B, bins] */
        if (present < B) {
            aqa_tensor *m = aqa_stage_on_device(aqa_to_dtype(aqa_from_data(mask, 2, (int64_t[]){B, 1}, AQA_F64), logp->dtype), logp);
            kl = aqa_mul(kl, m);
        }
        kl = aqa_div_scalar(aqa_sum_all(kl), (double)present * (c->usdl_kl_mean ? (double)u->bins : 1.0));
        loss = loss ? aqa_add(loss, kl) : kl;
    }
    for (int64_t i = 0; i < B; i++) {
        if (!multi) {
            final[i] = pred[i] * dd[i];
            continue;
        }
        for (int64_t j = 0; j < cnt[i]; j++) row[j] = pred[i * J + j];
        final[i] = combine_judges(c->musdl_rule, row, cnt[i], dd[i]);
    }
    out->pred = aqa_from_data(final, 1, (int64_t[]){B}, AQA_F64);
    if (out->pred) out->pred = aqa_stage_on_device(aqa_to_dtype(out->pred, f->dtype), f);
    out->loss = train ? loss : NULL;
    if (!out->pred || (train && !out->loss)) st = aqa_last_status() ? aqa_last_status() : AQA_EINVAL;
done:
    free(tgt);
    free(pred);
    free(dd);
    free(row);
    free(final);
    free(col);
    free(mask);
    free(cnt);
    free(arg);
    return aqa_head_finish(out, st, false); /* the loss was checked above (a goto can skip train) */
}

const aqa_head_ops aqa_head_usdl = {"usdl", false, usdl_create, usdl_forward};
const aqa_head_ops aqa_head_musdl = {"musdl", false, musdl_create, usdl_forward};
