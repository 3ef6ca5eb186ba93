/* head.c: the head registry, default settings and the calls shared by every head (head.h). */
#include "models/heads/head.h"

#include <string.h>

#include "autograd/autograd.h"
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
    c.use_stage_features = true;
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
    c.usdl_bins = 101;
    c.usdl_sigma = 5.0;
    c.musdl_judges = 7;
    c.musdl_bins = 21;
    c.judge_max = 10.0;
    c.mlp_hidden1 = 256;
    c.mlp_hidden2 = 128;
    c.seq = aqa_seq_head_config_default();
    return c;
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
                                       aqa_tensor *const *exemplar_scores, int n, aqa_tensor *difficulty) {
    if (!h || !query) return aqa_fail_null("aqa_head_predict_exemplars: NULL argument");
    bool prev = aqa_set_grad_enabled(false);
    aqa_head_targets t = {NULL, NULL, difficulty};
    aqa_tensor *sum = NULL;
    aqa_scope_begin();
    int count = h->ops->is_contrastive ? n : 1;
    if (count < 1) {
        aqa_scope_end();
        aqa_set_grad_enabled(prev);
        return aqa_fail_null("aqa_head_predict_exemplars: head %s needs at least one exemplar", h->ops->name);
    }
    for (int i = 0; i < count; i++) {
        aqa_head_result r;
        if (aqa_head_forward(h, query, h->ops->is_contrastive ? &exemplars[i] : NULL,
                             h->ops->is_contrastive ? exemplar_scores[i] : NULL, &t, &r) != AQA_OK) {
            sum = NULL;
            break;
        }
        sum = sum ? aqa_add(sum, r.pred) : r.pred;
    }
    aqa_tensor *avg = sum ? aqa_keep(aqa_div_scalar(sum, (double)count)) : NULL;
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

aqa_tensor *aqa_head_video_feature(const aqa_head_input *in) {
    if (in->video) return in->video;
    if (in->stages) return aqa_mean(in->stages, 1, (int[]){1}, false);
    return aqa_fail_null("head: needs video or stage features");
}
