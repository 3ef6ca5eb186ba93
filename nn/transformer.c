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

/* torch's LayerNorm(bias=False) keeps its weight only. */
static void drop_norm_biases(aqa_layer_norm_layer *const *norms, int n) {
    for (int i = 0; i < n; i++) {
        aqa_module_set(&norms[i]->base, "bias", NULL);
        norms[i]->bias = NULL;
    }
}

/* The one-tensor forwards (aqa_module_forward, Sequential): no masks. */
static aqa_tensor *encoder_layer_any(aqa_module *m, aqa_tensor *x) {
    return aqa_transformer_encoder_layer_forward((aqa_transformer_encoder_layer *)m, x, NULL, NULL);
}
static aqa_tensor *encoder_any(aqa_module *m, aqa_tensor *x) {
    return aqa_transformer_encoder_forward((aqa_transformer_encoder *)m, x, NULL, NULL);
}

aqa_transformer_encoder_layer *aqa_transformer_encoder_layer_new(aqa_module *parent, const char *name,
                                                                 const aqa_transformer_config *cfg) {
    if (!cfg) return aqa_fail_null("TransformerEncoderLayer %s: NULL config", name ? name : "");
    aqa_transformer_encoder_layer *m = aqa_module_new(sizeof *m, "TransformerEncoderLayer", parent, name, NULL);
    if (!m) return NULL;
    m->base.forward = encoder_layer_any;
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
    if (!cfg->bias) drop_norm_biases((aqa_layer_norm_layer *[]){m->norm1, m->norm2}, 2);
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

/* out_dropout(linear2(dropout(activation(linear1(x))))): the MLP block of both layer kinds */
static aqa_tensor *ff_block(const aqa_transformer_config *cfg, aqa_linear_layer *linear1, aqa_dropout_layer *dropout,
                            aqa_linear_layer *linear2, aqa_dropout_layer *out_dropout, aqa_tensor *x) {
    aqa_tensor *h = aqa_activation(aqa_linear_layer_forward(linear1, x), cfg->activation);
    return aqa_dropout_layer_forward(out_dropout, aqa_linear_layer_forward(linear2, aqa_dropout_layer_forward(dropout, h)));
}

aqa_tensor *aqa_transformer_encoder_layer_forward(aqa_transformer_encoder_layer *m, aqa_tensor *src,
                                                  aqa_tensor *src_mask, aqa_tensor *src_key_padding_mask) {
    if (!m) return aqa_fail_null("aqa_transformer_encoder_layer_forward: NULL module");
    aqa_scope_begin();
    aqa_tensor *x = src;
    if (m->cfg.norm_first) {
        x = aqa_add(x, sa_block(m, aqa_layer_norm_layer_forward(m->norm1, x), src_mask, src_key_padding_mask));
        x = aqa_add(x, ff_block(&m->cfg, m->linear1, m->dropout, m->linear2, m->dropout2,
                                  aqa_layer_norm_layer_forward(m->norm2, x)));
    } else {
        x = aqa_layer_norm_layer_forward(m->norm1, aqa_add(x, sa_block(m, x, src_mask, src_key_padding_mask)));
        x = aqa_layer_norm_layer_forward(m->norm2, aqa_add(x, ff_block(&m->cfg, m->linear1, m->dropout, m->linear2, m->dropout2, x)));
    }
    aqa_keep(x);
    aqa_scope_end();
    return x;
}

/* Adds the container "layers" with num_layers layers made by make, and the optional final norm
 * "norm", to a stack module (an encoder or a decoder).  Returns the container, NULL on error. */
static aqa_module *build_stack(aqa_module *stack, const aqa_transformer_config *cfg, int num_layers, bool final_norm,
                               aqa_layer_norm_layer **norm,
                               void *(*make)(aqa_module *, const char *, const aqa_transformer_config *)) {
    aqa_module *layers = aqa_module_container(stack, "layers");
    for (int i = 0; layers && i < num_layers; i++) {
        char idx[16];
        snprintf(idx, sizeof idx, "%d", i);
        if (!make(layers, idx, cfg)) return NULL;
    }
    if (layers && final_norm && !(*norm = aqa_layer_norm_layer_new(stack, "norm", 1, &cfg->d_model, cfg->layer_norm_eps, true)))
        return NULL;
    return layers;
}

static void *make_encoder_layer(aqa_module *parent, const char *name, const aqa_transformer_config *cfg) {
    return aqa_transformer_encoder_layer_new(parent, name, cfg);
}

aqa_transformer_encoder *aqa_transformer_encoder_new(aqa_module *parent, const char *name,
                                                     const aqa_transformer_config *cfg, int num_layers,
                                                     bool final_norm) {
    if (!cfg || num_layers < 0) return aqa_fail_null("TransformerEncoder %s: bad arguments", name ? name : "");
    aqa_transformer_encoder *m = aqa_module_new(sizeof *m, "TransformerEncoder", parent, name, NULL);
    if (!m) return NULL;
    m->base.forward = encoder_any;
    m->num_layers = num_layers;
    if (!(m->layers = build_stack(&m->base, cfg, num_layers, final_norm, &m->norm, make_encoder_layer))) {
        if (!parent) aqa_module_free(&m->base);
        return NULL;
    }
    return m;
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

/* ---- decoder ---------------------------------------------------------------------------------- */

aqa_transformer_decoder_layer *aqa_transformer_decoder_layer_new(aqa_module *parent, const char *name,
                                                                 const aqa_transformer_config *cfg) {
    if (!cfg) return aqa_fail_null("TransformerDecoderLayer %s: NULL config", name ? name : "");
    aqa_transformer_decoder_layer *m = aqa_module_new(sizeof *m, "TransformerDecoderLayer", parent, name, NULL);
    if (!m) return NULL;
    m->cfg = *cfg;
    aqa_module *b = &m->base;
    int64_t E = cfg->d_model;
    double p = cfg->dropout, eps = cfg->layer_norm_eps;
    /* torch's registration order (the state_dict order) */
    if (!(m->self_attn = aqa_mha_layer_new(b, "self_attn", E, cfg->nhead, p, cfg->bias, cfg->batch_first)) ||
        !(m->multihead_attn = aqa_mha_layer_new(b, "multihead_attn", E, cfg->nhead, p, cfg->bias, cfg->batch_first)) ||
        !(m->linear1 = aqa_linear_layer_new(b, "linear1", E, cfg->dim_feedforward, cfg->bias)) ||
        !(m->dropout = aqa_dropout_layer_new(b, "dropout", p)) ||
        !(m->linear2 = aqa_linear_layer_new(b, "linear2", cfg->dim_feedforward, E, cfg->bias)) ||
        !(m->norm1 = aqa_layer_norm_layer_new(b, "norm1", 1, &E, eps, true)) ||
        !(m->norm2 = aqa_layer_norm_layer_new(b, "norm2", 1, &E, eps, true)) ||
        !(m->norm3 = aqa_layer_norm_layer_new(b, "norm3", 1, &E, eps, true)) ||
        !(m->dropout1 = aqa_dropout_layer_new(b, "dropout1", p)) ||
        !(m->dropout2 = aqa_dropout_layer_new(b, "dropout2", p)) ||
        !(m->dropout3 = aqa_dropout_layer_new(b, "dropout3", p))) {
        if (!parent) aqa_module_free(b);
        return NULL;
    }
    if (!cfg->bias) drop_norm_biases((aqa_layer_norm_layer *[]){m->norm1, m->norm2, m->norm3}, 3);
    return m;
}

void aqa_transformer_decoder_layer_set_generator(aqa_transformer_decoder_layer *m, aqa_generator *gen) {
    if (!m) return;
    m->self_attn->gen = m->multihead_attn->gen = gen;
    m->dropout->gen = m->dropout1->gen = m->dropout2->gen = m->dropout3->gen = gen;
}

aqa_tensor *aqa_transformer_decoder_layer_forward(aqa_transformer_decoder_layer *m, aqa_tensor *tgt,
                                                  aqa_tensor *memory, aqa_tensor *tgt_mask, aqa_tensor *memory_mask,
                                                  aqa_tensor *tgt_key_padding_mask,
                                                  aqa_tensor *memory_key_padding_mask) {
    if (!m) return aqa_fail_null("aqa_transformer_decoder_layer_forward: NULL module");
    if (!tgt || !memory) return aqa_fail_null("TransformerDecoderLayer %s: NULL %s", m->base.name, tgt ? "memory" : "tgt");
    aqa_scope_begin();
    aqa_tensor *x = tgt;
    for (int blk = 0; blk < 3; blk++) {
        aqa_layer_norm_layer *norm = blk == 0 ? m->norm1 : blk == 1 ? m->norm2 : m->norm3;
        aqa_tensor *in = m->cfg.norm_first ? aqa_layer_norm_layer_forward(norm, x) : x, *out;
        if (blk == 0)      /* dropout1(self_attn(x, x, x)) */
            out = aqa_dropout_layer_forward(
                m->dropout1, aqa_mha_layer_forward(m->self_attn, in, in, in, tgt_key_padding_mask, tgt_mask, NULL));
        else if (blk == 1) /* dropout2(multihead_attn(x, memory, memory)) */
            out = aqa_dropout_layer_forward(m->dropout2, aqa_mha_layer_forward(m->multihead_attn, in, memory, memory,
                                                                               memory_key_padding_mask, memory_mask, NULL));
        else
            out = ff_block(&m->cfg, m->linear1, m->dropout, m->linear2, m->dropout3, in);
        x = aqa_add(x, out);
        if (!m->cfg.norm_first) x = aqa_layer_norm_layer_forward(norm, x);
    }
    aqa_keep(x);
    aqa_scope_end();
    return x;
}

static void *make_decoder_layer(aqa_module *parent, const char *name, const aqa_transformer_config *cfg) {
    return aqa_transformer_decoder_layer_new(parent, name, cfg);
}

aqa_transformer_decoder *aqa_transformer_decoder_new(aqa_module *parent, const char *name,
                                                     const aqa_transformer_config *cfg, int num_layers,
                                                     bool final_norm) {
    if (!cfg || num_layers < 0) return aqa_fail_null("TransformerDecoder %s: bad arguments", name ? name : "");
    aqa_transformer_decoder *m = aqa_module_new(sizeof *m, "TransformerDecoder", parent, name, NULL);
    if (!m) return NULL;
    m->num_layers = num_layers;
    if (!(m->layers = build_stack(&m->base, cfg, num_layers, final_norm, &m->norm, make_decoder_layer))) {
        if (!parent) aqa_module_free(&m->base);
        return NULL;
    }
    return m;
}

aqa_transformer_decoder_layer *aqa_transformer_decoder_layer_at(aqa_transformer_decoder *m, int i) {
    if (!m || i < 0 || i >= m->num_layers || i >= m->layers->n_children) return NULL;
    return (aqa_transformer_decoder_layer *)m->layers->children[i];
}

aqa_tensor *aqa_transformer_decoder_forward(aqa_transformer_decoder *m, aqa_tensor *tgt, aqa_tensor *memory,
                                            aqa_tensor *tgt_mask, aqa_tensor *memory_mask,
                                            aqa_tensor *tgt_key_padding_mask, aqa_tensor *memory_key_padding_mask) {
    if (!m) return aqa_fail_null("aqa_transformer_decoder_forward: NULL module");
    if (!tgt) return aqa_fail_null("TransformerDecoder %s: NULL tgt", m->base.name);
    aqa_scope_begin();
    aqa_tensor *x = tgt;
    for (int i = 0; i < m->num_layers && x; i++)
        x = aqa_transformer_decoder_layer_forward(aqa_transformer_decoder_layer_at(m, i), x, memory, tgt_mask,
                                                  memory_mask, tgt_key_padding_mask, memory_key_padding_mask);
    if (x && m->norm) x = aqa_layer_norm_layer_forward(m->norm, x);
    if (x == tgt) x = aqa_view(tgt, tgt->ndim, tgt->shape); /* no layers: still a new tensor */
    aqa_keep(x);
    aqa_scope_end();
    return x;
}
