/* seq.c: the clip-sequence heads' defaults and input (seq.h, seq_config.h). */
#include "models/heads/seq.h"

#include "models/mvla/stages.h"
#include "ops/ops.h"

aqa_seq_head_config aqa_seq_head_config_default(void) {
    return (aqa_seq_head_config){.len = 0,
                                 .tpt_queries = 7,
                                 .tpt_dim = 512,
                                 .tpt_ffn = 512,
                                 .tpt_heads = 8,
                                 .tpt_depth = 5,
                                 .tpt_hidden = 128,
                                 .tpt_temp = 0.07,
                                 .tpt_margin = 2.0,
                                 .tpt_var_weight = 0.05,
                                 .tpt_dropout = 0.1,
                                 .hgcn_groups = 8,
                                 .hgcn_scenes = 7,
                                 .hgcn_k = 3,
                                 .hgcn_factor = 4,
                                 .hgcn_dims = {512, 256, 128},
                                 .hgcn_refine = true,
                                 .hgcn_scene_graph = true,
                                 .hgcn_motion_graph = false,
                                 .hgcn_sample = true,
                                 .gdlt_dim = 256,
                                 .gdlt_heads = 1,
                                 .gdlt_encoder = 1,
                                 .gdlt_decoder = 2,
                                 .gdlt_queries = 4,
                                 .gdlt_dropout = 0.3,
                                 .gdlt_alpha = 1.0,
                                 .gdlt_margin = 1.0,
                                 .mslstm_conv = 128,
                                 .mslstm_hidden = 256,
                                 .mslstm_filters = 256,
                                 .mslstm_attn_hidden = 64,
                                 .mslstm_descriptors = 50,
                                 .mslstm_merge = 64,
                                 .mixer_dim = 512,
                                 .mixer_depth = 2,
                                 .mixer_tokens = 1,
                                 .mixer_expansion = 4};
}

aqa_status aqa_seq_z_init(aqa_seq_z *z, aqa_module *head, const aqa_head_config *cfg) {
    z->stage_proj = z->video_proj = NULL;
    if (!cfg->use_z) return AQA_OK;
    if (!(z->stage_proj = aqa_linear_layer_new(head, "stage_proj", cfg->feat_dim, cfg->frame_dim, true)) ||
        !(z->video_proj = aqa_linear_layer_new(head, "video_proj", cfg->feat_dim, cfg->frame_dim, true)))
        return aqa_last_status() ? aqa_last_status() : AQA_EINVAL;
    return AQA_OK;
}

aqa_tensor *aqa_seq_input(const aqa_head *h, const aqa_seq_z *z, const aqa_head_input *in, const char *who) {
    const aqa_head_config *c = &h->cfg;
    aqa_tensor *x = in->frames;
    int64_t T = c->seq.len;
    if (!x || x->ndim != 3 || x->shape[2] != c->frame_dim || (T > 0 && x->shape[1] != T)) {
        char got[64];
        return aqa_fail_null("%s head: needs frames [B, %s, %lld], got %s", who, T > 0 ? "seq.len" : "T",
                             (long long)c->frame_dim, x ? aqa_shape_str(x, got, sizeof got) : "none");
    }
    if (!z || !z->stage_proj) return x;
    if (!in->stages || !in->video || !in->boundaries)
        return aqa_fail_null("%s head: with MVLA it needs stages, video and boundaries", who);
    int64_t B = x->shape[0];
    aqa_scope_begin();
    /* membership [B, T, S]: 1 where step t lies in stage s */
    aqa_tensor *pool = aqa_stage_pool_matrix(in->boundaries, x->shape[1], x->dtype);
    aqa_tensor *member = pool ? aqa_stage_on_device(aqa_to_dtype(aqa_transpose(aqa_gt_scalar(pool, 0.0), 1, 2), x->dtype), x)
                              : NULL;
    aqa_tensor *sp = aqa_matmul(member, aqa_linear_layer_forward(z->stage_proj, in->stages));
    aqa_tensor *vp = aqa_view(aqa_linear_layer_forward(z->video_proj, in->video), 3, (int64_t[]){B, 1, c->frame_dim});
    aqa_tensor *y = aqa_keep(aqa_add(aqa_add(x, sp), vp));
    aqa_scope_end();
    return y;
}

aqa_tensor *aqa_seq_target(const aqa_head *h, const aqa_head_input *in, const aqa_head_targets *t, const aqa_tensor *like) {
    if (!t || !t->score || !like) return NULL;
    aqa_tensor *s = aqa_stage_on_device(aqa_to_dtype(aqa_reshape(t->score, 1, (int64_t[]){-1}), like->dtype), like);
    if (h->cfg.use_difficulty && in->difficulty)
        s = aqa_div(s, aqa_stage_on_device(aqa_to_dtype(aqa_reshape(in->difficulty, 1, (int64_t[]){-1}), like->dtype), like));
    return s;
}

aqa_tensor *aqa_seq_prediction(const aqa_head *h, const aqa_head_input *in, aqa_tensor *y) {
    if (!y || !h->cfg.use_difficulty || !in->difficulty) return y;
    return aqa_mul(y, aqa_stage_on_device(aqa_to_dtype(aqa_reshape(in->difficulty, 1, (int64_t[]){-1}), y->dtype), y));
}
