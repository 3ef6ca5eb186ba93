/* usdl.c: USDL and MUSDL (Tang et al., CVPR 2020): uncertainty-aware score distribution learning.
 *
 * USDL: video feature -> MLP (256, 128) -> softmax over `usdl_bins` (101) bins spanning
 * [score_min, score_max]; the target is a Gaussian over bin indices centred on the score's
 * position with std usdl_sigma (in bins), normalised; loss KL(target || prediction) ('batchmean',
 * the true KL; USDL's code used KLDivLoss's default 'mean', which only rescales it); prediction
 * = the most likely bin's score (x DD with use_difficulty, the target then being score / DD).
 * MUSDL: one such evaluator per judge ("evaluators.<j>", musdl_bins = 21 over [0, judge_max]),
 * targets the judges' scores, loss the sum of the judges' KL terms; prediction = sum of the
 * middle judges' predicted scores (sorted, the 2 highest and 2 lowest of 7 dropped) x DD.
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
    if (n < 1 || n > MAX_JUDGES || bins < 2 || !(c->usdl_sigma > 0))
        return aqa_fail_null("%s head: bad settings (judges %d, bins %lld)", multi ? "musdl" : "usdl", n, (long long)bins);
    usdl_head *u = aqa_module_new(sizeof *u, multi ? "MUSDL" : "USDL", parent, name, NULL);
    if (!u) return NULL;
    u->n_eval = n;
    u->bins = bins;
    u->lo = multi ? 0.0 : c->score_min;
    u->hi = multi ? c->judge_max : c->score_max;
    aqa_module *list = multi ? aqa_module_container(&u->h.base, "evaluators") : NULL;
    if (multi && !list) goto fail;
    for (int j = 0; j < n; j++) {
        char idx[16];
        snprintf(idx, sizeof idx, "%d", j);
        aqa_module *e = aqa_module_container(multi ? list : &u->h.base, multi ? idx : "evaluator");
        if (!e || !(u->l[j][0] = aqa_linear_layer_new(e, "layer1", c->feat_dim, 256, true)) ||
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

static aqa_status usdl_forward(aqa_head *h, const aqa_head_input *query, const aqa_head_input *exemplar,
                               aqa_tensor *exemplar_score, const aqa_head_targets *targets, aqa_head_result *out) {
    (void)exemplar;
    (void)exemplar_score;
    usdl_head *u = (usdl_head *)h;
    bool multi = u->h.ops == &aqa_head_musdl;
    aqa_status st = AQA_OK;
    double *tgt = NULL, *pred = NULL, *dd = NULL, *row = NULL;
    aqa_scope_begin();
    aqa_tensor *f = aqa_head_video_feature(query);
    if (!f) {
        st = AQA_EINVAL;
        goto done;
    }
    int64_t B = f->shape[0], J = u->n_eval;
    bool train = targets && (multi ? targets->judge_scores != NULL : targets->score != NULL);
    bool use_dd = targets && targets->difficulty && (multi || h->cfg.use_difficulty);
    tgt = malloc(sizeof *tgt * (size_t)(B * J + 1));
    pred = calloc((size_t)(B * J + 1), sizeof *pred);
    dd = malloc(sizeof *dd * (size_t)(B + 1));
    row = malloc(sizeof *row * (size_t)(J + 1));
    if (!tgt || !pred || !dd || !row) {
        st = aqa_fail(AQA_ENOMEM, "usdl: out of memory");
        goto done;
    }
    for (int64_t i = 0; i < B; i++) dd[i] = 1.0;
    if (use_dd && aqa_copy_to_host(targets->difficulty, dd, AQA_F64) != AQA_OK) {
        st = aqa_last_status();
        goto done;
    }
    if (train) {
        aqa_tensor *s = multi ? targets->judge_scores : targets->score;
        if (aqa_numel(s) != B * J) {
            st = aqa_fail(AQA_EINVAL, "%s: targets must have %lld values per video", h->ops->name, (long long)J);
            goto done;
        }
        if (aqa_copy_to_host(s, tgt, AQA_F64) != AQA_OK) {
            st = aqa_last_status();
            goto done;
        }
        if (!multi && use_dd)
            for (int64_t i = 0; i < B; i++) tgt[i] /= dd[i];
    }
    aqa_tensor *loss = NULL;
    for (int j = 0; j < J; j++) {
        aqa_tensor *x = aqa_relu(aqa_linear_layer_forward(u->l[j][0], f));
        x = aqa_relu(aqa_linear_layer_forward(u->l[j][1], x));
        aqa_tensor *logp = aqa_log_softmax(aqa_linear_layer_forward(u->l[j][2], x), 1); /* [B, bins] */
        aqa_tensor *arg = aqa_argmax(logp, 1, false);
        if (!logp || !arg) {
            st = aqa_last_status() ? aqa_last_status() : AQA_EINVAL;
            goto done;
        }
        int64_t *a = malloc(sizeof *a * (size_t)B);
        if (!a || aqa_copy_to_host(arg, a, AQA_I64) != AQA_OK) {
            free(a);
            st = aqa_fail(AQA_ENOMEM, "usdl: argmax copy failed");
            goto done;
        }
        for (int64_t i = 0; i < B; i++) pred[i * J + j] = u->lo + (double)a[i] * (u->hi - u->lo) / (double)(u->bins - 1);
        free(a);
        if (train) {
            double *col = malloc(sizeof *col * (size_t)B);
            if (!col) {
                st = aqa_fail(AQA_ENOMEM, "usdl: out of memory");
                goto done;
            }
            for (int64_t i = 0; i < B; i++) col[i] = tgt[i * J + j];
            aqa_tensor *g = aqa_stage_on_device(gaussian_targets(col, B, u->bins, u->lo, u->hi, h->cfg.usdl_sigma, logp->dtype), logp);
            free(col);
            aqa_tensor *kl = aqa_kl_div(logp, g, AQA_REDUCTION_BATCHMEAN, false);
            loss = loss ? aqa_add(loss, kl) : kl;
        }
    }
    double *final = malloc(sizeof *final * (size_t)(B + 1));
    if (!final) {
        st = aqa_fail(AQA_ENOMEM, "usdl: out of memory");
        goto done;
    }
    for (int64_t i = 0; i < B; i++) {
        if (!multi) {
            final[i] = pred[i] * (use_dd ? dd[i] : 1.0);
            continue;
        }
        for (int64_t j = 0; j < J; j++) row[j] = pred[i * J + j];
        qsort(row, (size_t)J, sizeof *row, cmp_double);
        int64_t drop = J > 3 ? (J - 3) / 2 : 0;
        double sum = 0;
        for (int64_t j = drop; j < J - drop; j++) sum += row[j];
        final[i] = sum * dd[i];
    }
    out->pred = aqa_from_data(final, 1, (int64_t[]){B}, AQA_F64);
    free(final);
    if (out->pred) out->pred = aqa_stage_on_device(aqa_to_dtype(out->pred, f->dtype), f);
    out->loss = train ? loss : NULL;
    if (!out->pred || (train && !out->loss)) st = aqa_last_status() ? aqa_last_status() : AQA_EINVAL;
done:
    free(tgt);
    free(pred);
    free(dd);
    free(row);
    return aqa_head_finish(out, st, false); /* the loss was checked above (a goto can skip train) */
}

const aqa_head_ops aqa_head_usdl = {"usdl", false, usdl_create, usdl_forward};
const aqa_head_ops aqa_head_musdl = {"musdl", false, musdl_create, usdl_forward};
