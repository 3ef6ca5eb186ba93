/* head.c: the head registry, default settings and the calls shared by every head (head.h). */
#include "models/heads/head.h"

#include <stdlib.h>
#include <string.h>

#include "autograd/autograd.h"
#include "models/mvla/stages.h"
#include "ops/ops.h"

/* Every head, by name: a new head adds one line here. */
static const aqa_head_ops *const all_heads[] = {&aqa_head_tsa,  &aqa_head_core, &aqa_head_usdl, &aqa_head_musdl,
                                               &aqa_head_mlp,  &aqa_head_tpt,  &aqa_head_hgcn, &aqa_head_gdlt,
                                               &aqa_head_mslstm, &aqa_head_mixer};
#define N_HEADS ((int)(sizeof all_heads / sizeof all_heads[0]))

const char *const *aqa_head_names(void) {
    static const char *names[N_HEADS + 1];
    for (int i = 0; i < N_HEADS; i++) names[i] = all_heads[i]->name;
    names[N_HEADS] = NULL;
    return names;
}

const aqa_head_ops *aqa_head_find(const char *name) {
    for (int i = 0; name && i < N_HEADS; i++)
        if (strcmp(all_heads[i]->name, name) == 0) return all_heads[i];
    char known[256] = "";
    for (int i = 0; i < N_HEADS; i++) {
        if (i) strncat(known, ", ", sizeof known - strlen(known) - 1);
        strncat(known, all_heads[i]->name, sizeof known - strlen(known) - 1);
    }
    return aqa_fail_null("unknown head \"%s\" (known: %s)", name ? name : "(null)", known);
}

aqa_head_config aqa_head_config_default(void) {
    aqa_head_config c;
    memset(&c, 0, sizeof c);
    c.feat_dim = 512;
    c.frame_dim = 64;
    c.num_stages = 3;
    c.use_z = true;
    c.score_min = 0.0;
    c.score_max = 100.0;
    c.tsa_tokens = 5;
    c.tsa_dim = 64;
    c.tsa_heads = 8;
    c.tsa_layers = 3;
    c.tsa_mlp_ratio = 4.0;
    c.tsa_reg_hidden1 = 256;
    c.tsa_reg_hidden2 = 64;
    c.core_depth = 5;
    c.core_hidden = 256;
    c.core_theta = 100.0;
    c.usdl_bins = 101;
    c.usdl_sigma = 5.0;
    c.musdl_judges = 7;
    c.musdl_bins = 21;
    c.judge_min = 0.0;
    c.judge_max = 10.0;
    c.musdl_rule = AQA_MUSDL_FINA;
    c.mlp_hidden1 = 256;
    c.mlp_hidden2 = 128;
    c.seq = aqa_seq_head_config_default();
    return c;
}

void aqa_head_config_usdl_mtl_aqa(aqa_head_config *c) {
    c->score_min = 0.0;
    c->score_max = 104.5;
    c->usdl_bins = 101;
    c->usdl_sigma = 5.0;
    c->musdl_judges = 7;
    c->musdl_bins = 21;
    c->judge_min = 0.0;
    c->judge_max = 10.0;
    c->musdl_rule = AQA_MUSDL_FINA;
}

void aqa_head_config_usdl_jigsaws(aqa_head_config *c) {
    c->score_min = 6.0;
    c->score_max = 30.0;
    c->usdl_bins = 25;
    c->usdl_sigma = 1.0;
    c->musdl_judges = 6;
    c->musdl_bins = 5;
    c->judge_min = 1.0;
    c->judge_max = 5.0;
    c->musdl_rule = AQA_MUSDL_SUM;
}

aqa_head *aqa_head_new(const aqa_head_ops *ops, const aqa_head_config *cfg, aqa_module *parent, const char *name) {
    if (!ops || !cfg) return aqa_fail_null("aqa_head_new: NULL ops or config");
    aqa_head *h = ops->create(cfg, parent, name);
    if (!h) return NULL;
    h->ops = ops;
    h->cfg = *cfg;
    return h;
}

aqa_status aqa_head_forward(aqa_head *h, const aqa_head_input *query, const aqa_head_input *exemplar,
                            aqa_tensor *exemplar_score, const aqa_head_targets *targets, aqa_head_result *out) {
    if (!h || !query || !out) return aqa_fail(AQA_EINVAL, "aqa_head_forward: NULL argument");
    out->pred = out->loss = NULL;
    if (h->ops->is_contrastive && (!exemplar || !exemplar_score))
        return aqa_fail(AQA_EINVAL, "head %s: contrastive, needs an exemplar and its score", h->ops->name);
    aqa_status st = h->ops->forward(h, query, h->ops->is_contrastive ? exemplar : NULL,
                                    h->ops->is_contrastive ? exemplar_score : NULL, targets, out);
    if (st != AQA_OK) return aqa_fail(st, "head %s: %s", h->ops->name, aqa_last_error());
    return AQA_OK;
}

aqa_tensor *aqa_head_predict_exemplars(aqa_head *h, const aqa_head_input *query, const aqa_head_input *exemplars,
                                       aqa_tensor *const *exemplar_scores, int n, const aqa_tensor *counts) {
    if (!h || !query) return aqa_fail_null("aqa_head_predict_exemplars: NULL argument");
    int count = h->ops->is_contrastive ? n : 1;
    if (count < 1) return aqa_fail_null("aqa_head_predict_exemplars: head %s needs at least one exemplar", h->ops->name);
    if (h->ops->is_contrastive && (!exemplars || !exemplar_scores))
        return aqa_fail_null("aqa_head_predict_exemplars: head %s needs exemplars and their scores", h->ops->name);
    bool prev = aqa_set_grad_enabled(false);
    aqa_scope_begin();
    aqa_tensor *sum = NULL, *w = NULL;
    int64_t *cnt = NULL;
    for (int i = 0; i < count; i++) {
        aqa_head_result r;
        if (aqa_head_forward(h, query, h->ops->is_contrastive ? &exemplars[i] : NULL,
                             h->ops->is_contrastive ? exemplar_scores[i] : NULL, NULL, &r) != AQA_OK) {
            sum = NULL;
            break;
        }
        int64_t B = r.pred->shape[0];
        if (h->ops->is_contrastive && counts && !cnt) {
            cnt = malloc(sizeof *cnt * (size_t)(B + 1));
            if (!cnt || aqa_numel(counts) != B || aqa_copy_to_host(counts, cnt, AQA_I64) != AQA_OK) {
                aqa_fail(AQA_EINVAL, "aqa_head_predict_exemplars: counts must hold one I64 per query (%lld)", (long long)B);
                sum = NULL;
                break;
            }
        }
        aqa_tensor *p = r.pred;
        if (cnt) { /* query b takes exemplar i only while i < count[b]; the weight 1 / count[b] */
            double *m = malloc(sizeof *m * (size_t)(B + 1));
            if (!m) {
                sum = NULL;
                break;
            }
            for (int64_t b = 0; b < B; b++) {
                int64_t c = cnt[b] < 1 ? 1 : cnt[b] > count ? count : cnt[b];
                m[b] = i < c ? 1.0 / (double)c : 0.0;
            }
            w = aqa_stage_on_device(aqa_to_dtype(aqa_from_data(m, 1, (int64_t[]){B}, AQA_F64), p->dtype), p);
            free(m);
            p = aqa_mul(p, w);
        }
        sum = sum ? aqa_add(sum, p) : p;
    }
    free(cnt);
    aqa_tensor *avg = !sum ? NULL : aqa_keep(w || !h->ops->is_contrastive ? sum : aqa_div_scalar(sum, (double)count));
    aqa_scope_end();
    aqa_set_grad_enabled(prev);
    return avg;
}

aqa_status aqa_head_finish(aqa_head_result *out, aqa_status st, bool train) {
    if (st == AQA_OK && (!out->pred || (train && !out->loss))) st = aqa_last_status() ? aqa_last_status() : AQA_EINVAL;
    if (st == AQA_OK) {
        aqa_keep(out->pred);
        if (out->loss) aqa_keep(out->loss);
    } else {
        out->pred = out->loss = NULL;
    }
    aqa_scope_end();
    return st;
}

int64_t aqa_head_feature_dim(const aqa_head_config *cfg) {
    return cfg->use_z ? (cfg->num_stages + 1) * cfg->feat_dim : cfg->feat_dim;
}

aqa_tensor *aqa_head_feature(const aqa_head *h, const aqa_head_input *in) {
    const aqa_head_config *c = &h->cfg;
    if (!c->use_z) {
        if (in->video) return in->video;
        if (in->stages) return aqa_mean(in->stages, 1, (int[]){1}, false);
        return aqa_fail_null("head %s: needs video or stage features", h->ops->name);
    }
    if (!in->video || !in->stages || in->stages->ndim != 3 || in->stages->shape[1] != c->num_stages ||
        in->stages->shape[2] != c->feat_dim || in->video->ndim != 2 || in->video->shape[1] != c->feat_dim)
        return aqa_fail_null("head %s: use_z needs video [B, %lld] and stages [B, %lld, %lld]", h->ops->name,
                             (long long)c->feat_dim, (long long)c->num_stages, (long long)c->feat_dim);
    int64_t B = in->video->shape[0];
    return aqa_cat((aqa_tensor *[]){in->video, aqa_reshape(in->stages, 2, (int64_t[]){B, c->num_stages * c->feat_dim})},
                   2, 1);
}

aqa_status aqa_head_difficulty(const aqa_head *h, const aqa_head_input *in, int64_t B, double *dd) {
    if (!in->difficulty) return aqa_fail(AQA_EINVAL, "head %s: needs the videos' difficulty (DD)", h->ops->name);
    if (aqa_numel(in->difficulty) != B)
        return aqa_fail(AQA_EINVAL, "head %s: difficulty has %lld values for %lld videos", h->ops->name,
                        (long long)aqa_numel(in->difficulty), (long long)B);
    aqa_status st = aqa_copy_to_host(in->difficulty, dd, AQA_F64);
    for (int64_t i = 0; i < B && !st; i++)
        if (!(dd[i] > 0))
            st = aqa_fail(AQA_EINVAL, "head %s: difficulty of video %lld is %g (DD must be > 0)", h->ops->name,
                          (long long)i, dd[i]);
    return st;
}
