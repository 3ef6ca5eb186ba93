/* transformer.c: TransformerEncoderLayer and TransformerEncoder, as PyTorch's. */
#include <stdio.h>

#include "nn/transformer.h"
#include "ops/ops.h"

aqa_transformer_config aqa_transformer_config_default(int64_t d_model, int64_t nhead) {
    return (aqa_transformer_config){.d_model = d_model,
                                    .nhead = nhead,
                                    .dim_feedforward = 2048,
                                    .dropout = 0.1,
                                    .activation = AQA_ACT_RELU,
                                    .layer_norm_eps = 1e-5,
                                    .batch_first = false,
                                    .norm_first = false,
                                    .bias = true};
}

aqa_transformer_encoder_layer *aqa_transformer_encoder_layer_new(aqa_module *parent, const char *name,
                                                                 const aqa_transformer_config *cfg) {
    if (!cfg) return aqa_fail_null("TransformerEncoderLayer %s: NULL config", name ? name : "");
    aqa_transformer_encoder_layer *m = aqa_module_new(sizeof *m, "TransformerEncoderLayer", parent, name, NULL);
    if (!m) return NULL;
    m->cfg = *cfg;
    aqa_module *b = &m->base;
    int64_t E = cfg->d_model;
    /* same registration order as torch, so the state_dict order matches */
    if (!(m->self_attn = aqa_mha_layer_new(b, "self_attn", E, cfg->nhead, cfg->dropout, cfg->bias, cfg->batch_first)) ||
        !(m->linear1 = aqa_linear_layer_new(b, "linear1", E, cfg->dim_feedforward, cfg->bias)) ||
        !(m->dropout = aqa_dropout_layer_new(b, "dropout", cfg->dropout)) ||
        !(m->linear2 = aqa_linear_layer_new(b, "linear2", cfg->dim_feedforward, E, cfg->bias)) ||
        !(m->norm1 = aqa_layer_norm_layer_new(b, "norm1", 1, &E, cfg->layer_norm_eps, true)) ||
        !(m->norm2 = aqa_layer_norm_layer_new(b, "norm2", 1, &E, cfg->layer_norm_eps, true)) ||
        !(m->dropout1 = aqa_dropout_layer_new(b, "dropout1", cfg->dropout)) ||
        !(m->dropout2 = aqa_dropout_layer_new(b, "dropout2", cfg->dropout))) {
        if (!parent) aqa_module_free(b);
        return NULL;
    }
    if (!cfg->bias) { /* torch: LayerNorm(bias=False) keeps its weight only */
        aqa_module_set(&m->norm1->base, "bias", NULL);
        aqa_module_set(&m->norm2->base, "bias", NULL);
        m->norm1->bias = m->norm2->bias = NULL;
    }
    return m;
}

void aqa_transformer_encoder_layer_set_generator(aqa_transformer_encoder_layer *m, aqa_generator *gen) {
    if (!m) return;
    m->self_attn->gen = m->dropout->gen = m->dropout1->gen = m->dropout2->gen = gen;
}

/* dropout1(self_attn(x, x, x)) */
static aqa_tensor *sa_block(aqa_transformer_encoder_layer *m, aqa_tensor *x, aqa_tensor *mask, aqa_tensor *kpm) {
    return aqa_dropout_layer_forward(m->dropout1, aqa_mha_layer_forward(m->self_attn, x, x, x, kpm, mask, NULL));
}

/* dropout2(linear2(dropout(activation(linear1(x))))) */
static aqa_tensor *ff_block(aqa_transformer_encoder_layer *m, aqa_tensor *x) {
    aqa_tensor *h = aqa_activation(aqa_linear_layer_forward(m->linear1, x), m->cfg.activation);
    return aqa_dropout_layer_forward(m->dropout2, aqa_linear_layer_forward(m->linear2, aqa_dropout_layer_forward(m->dropout, h)));
}

aqa_tensor *aqa_transformer_encoder_layer_forward(aqa_transformer_encoder_layer *m, aqa_tensor *src,
                                                  aqa_tensor *src_mask, aqa_tensor *src_key_padding_mask) {
    if (!m) return aqa_fail_null("aqa_transformer_encoder_layer_forward: NULL module");
    aqa_scope_begin();
    aqa_tensor *x = src;
    if (m->cfg.norm_first) {
        x = aqa_add(x, sa_block(m, aqa_layer_norm_layer_forward(m->norm1, x), src_mask, src_key_padding_mask));
        x = aqa_add(x, ff_block(m, aqa_layer_norm_layer_forward(m->norm2, x)));
    } else {
        x = aqa_layer_norm_layer_forward(m->norm1, aqa_add(x, sa_block(m, x, src_mask, src_key_padding_mask)));
        x = aqa_layer_norm_layer_forward(m->norm2, aqa_add(x, ff_block(m, x)));
    }
    aqa_keep(x);
    aqa_scope_end();
    return x;
}

aqa_transformer_encoder *aqa_transformer_encoder_new(aqa_module *parent, const char *name,
                                                     const aqa_transformer_config *cfg, int num_layers,
                                                     bool final_norm) {
    if (!cfg || num_layers < 0) return aqa_fail_null("TransformerEncoder %s: bad arguments", name ? name : "");
    aqa_transformer_encoder *m = aqa_module_new(sizeof *m, "TransformerEncoder", parent, name, NULL);
    if (!m) return NULL;
    m->num_layers = num_layers;
    if (!(m->layers = aqa_module_container(&m->base, "layers"))) goto fail;
    for (int i = 0; i < num_layers; i++) {
        char idx[16];
        snprintf(idx, sizeof idx, "%d", i);
        if (!aqa_transformer_encoder_layer_new(m->layers, idx, cfg)) goto fail;
    }
    if (final_norm && !(m->norm = aqa_layer_norm_layer_new(&m->base, "norm", 1, &cfg->d_model, cfg->layer_norm_eps, true)))
        goto fail;
    return m;
fail:
    if (!parent) aqa_module_free(&m->base);
    return NULL;
}

aqa_transformer_encoder_layer *aqa_transformer_encoder_layer_at(aqa_transformer_encoder *m, int i) {
    if (!m || i < 0 || i >= m->num_layers || i >= m->layers->n_children) return NULL;
    return (aqa_transformer_encoder_layer *)m->layers->children[i];
}

aqa_tensor *aqa_transformer_encoder_forward(aqa_transformer_encoder *m, aqa_tensor *src, aqa_tensor *mask,
                                            aqa_tensor *src_key_padding_mask) {
    if (!m) return aqa_fail_null("aqa_transformer_encoder_forward: NULL module");
    aqa_scope_begin();
    aqa_tensor *x = src;
    for (int i = 0; i < m->num_layers; i++)
        x = aqa_transformer_encoder_layer_forward(aqa_transformer_encoder_layer_at(m, i), x, mask, src_key_padding_mask);
    if (m->norm) x = aqa_layer_norm_layer_forward(m->norm, x);
    if (x == src) x = aqa_view(src, src->ndim, src->shape); /* no layers: still a new tensor */
    aqa_keep(x);
    aqa_scope_end();
    return x;
}
