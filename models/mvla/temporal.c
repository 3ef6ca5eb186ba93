/* temporal.c: the VLP branch's learnable temporal transformer (eq. 3): frozen CLIP frame
 * features + a learnable positional embedding through pre-norm TransformerEncoder layers with a
 * final LayerNorm.  The paper gives no sizes; the defaults (aqa_mvla_config_default) are ours. */
#include "models/mvla/mvla.h"
#include "ops/ops.h"

aqa_mvla_temporal *aqa_mvla_temporal_new(aqa_module *parent, const char *name, int64_t num_frames, int64_t width,
                                         int layers, int64_t heads, int64_t ffn, double dropout) {
    if (num_frames < 1 || width < 1 || layers < 0 || heads < 1 || width % heads)
        return aqa_fail_null("temporal transformer %s: bad sizes (T %lld, width %lld, heads %lld)", name ? name : "",
                             (long long)num_frames, (long long)width, (long long)heads);
    aqa_mvla_temporal *t = aqa_module_new(sizeof *t, "TemporalTransformer", parent, name, NULL);
    if (!t) return NULL;
    aqa_tensor *pos = aqa_zeros(AQA_SHAPE(num_frames, width), AQA_F32);
    if (!pos || aqa_normal_(pos, 0.0, 0.02, NULL) != AQA_OK) { /* ViT-style N(0, 0.02) */
        aqa_tensor_free(pos);
        goto fail;
    }
    if (!(t->pos_embed = aqa_module_param(&t->base, "pos_embed", pos))) goto fail;
    aqa_transformer_config c = aqa_transformer_config_default(width, heads);
    c.dim_feedforward = ffn;
    c.dropout = dropout;
    c.activation = AQA_ACT_GELU;
    c.batch_first = true;
    c.norm_first = true;
    if (!(t->encoder = aqa_transformer_encoder_new(&t->base, "encoder", &c, layers, true))) goto fail;
    return t;
fail:
    if (!parent) aqa_module_free(&t->base);
    return NULL;
}

aqa_tensor *aqa_mvla_temporal_forward(aqa_mvla_temporal *t, aqa_tensor *x) {
    if (!t || !x) return aqa_fail_null("aqa_mvla_temporal_forward: NULL argument");
    if (x->ndim != 3 || x->shape[1] != t->pos_embed->shape[0] || x->shape[2] != t->pos_embed->shape[1]) {
        char buf[64];
        return aqa_fail_null("temporal transformer: input %s, expected [B, %lld, %lld]", aqa_shape_str(x, buf, sizeof buf),
                             (long long)t->pos_embed->shape[0], (long long)t->pos_embed->shape[1]);
    }
    aqa_scope_begin();
    aqa_tensor *y = aqa_transformer_encoder_forward(t->encoder, aqa_add(x, t->pos_embed), NULL, NULL);
    aqa_keep(y);
    aqa_scope_end();
    return y;
}
