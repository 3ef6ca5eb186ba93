/* clip.c: the CLIP module tree (construction with OpenAI's initialisation), the residual
 * attention block and transformer forward shared by both encoders, similarity logits, and the
 * in-place dtype conversion used by gradient checks.  Encoders: vision.c, text.c; weights
 * files and configuration inference: clip_weights.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/autograd.h"
#include "models/clip/clip.h"
#include "models/clip/clip-impl.h"
#include "ops/ops.h"
#include "tensor/tensor-impl.h"

aqa_clip_config aqa_clip_config_vit_b16(void) {
    return (aqa_clip_config){.embed_dim = 512,
                             .image_resolution = 224,
                             .vision_layers = 12,
                             .vision_width = 768,
                             .vision_patch_size = 16,
                             .vision_heads = 12,
                             .context_length = 77,
                             .vocab_size = 49408,
                             .transformer_width = 512,
                             .transformer_heads = 8,
                             .transformer_layers = 12};
}

/* ---- construction ---------------------------------------------------------------------------- */

static aqa_layer_norm_layer *layer_norm(aqa_module *parent, const char *name, int64_t width) {
    return aqa_layer_norm_layer_new(parent, name, 1, (const int64_t[]){width}, 1e-5, true);
}

static aqa_clip_resblock *resblock_new(aqa_module *parent, const char *name, int64_t width, int64_t heads) {
    aqa_clip_resblock *b = aqa_module_new(sizeof *b, "ResidualAttentionBlock", parent, name, NULL);
    if (!b) return NULL;
    /* batch_first: our activations are [N, L, E]; the parameters are the same as OpenAI's */
    b->attn = aqa_mha_layer_new(&b->base, "attn", width, heads, 0.0, true, true);
    b->ln_1 = layer_norm(&b->base, "ln_1", width);
    b->mlp = aqa_module_container(&b->base, "mlp");
    if (!b->attn || !b->ln_1 || !b->mlp) return NULL;
    b->mlp->type = "Sequential";
    b->c_fc = aqa_linear_layer_new(b->mlp, "c_fc", width, 4 * width, true);
    b->gelu = aqa_activation_layer_new(b->mlp, "gelu", AQA_ACT_QUICK_GELU);
    b->c_proj = aqa_linear_layer_new(b->mlp, "c_proj", 4 * width, width, true);
    b->ln_2 = layer_norm(&b->base, "ln_2", width);
    if (!b->c_fc || !b->gelu || !b->c_proj || !b->ln_2) return NULL;
    return b;
}

static void transformer_destroy(aqa_module *m) { free(((aqa_clip_transformer *)m)->blocks); }

static aqa_clip_transformer *transformer_new(aqa_module *parent, const char *name, int64_t width, int64_t layers,
                                             int64_t heads) {
    aqa_clip_transformer *t = aqa_module_new(sizeof *t, "Transformer", parent, name, transformer_destroy);
    if (!t) return NULL;
    t->width = width;
    t->heads = heads;
    t->resblocks = aqa_module_container(&t->base, "resblocks");
    t->blocks = calloc((size_t)(layers > 0 ? layers : 1), sizeof *t->blocks);
    if (!t->resblocks || !t->blocks) return aqa_fail_null("CLIP: out of memory");
    t->resblocks->type = "Sequential";
    for (int64_t i = 0; i < layers; i++) {
        char nm[32];
        snprintf(nm, sizeof nm, "%lld", (long long)i);
        if (!(t->blocks[i] = resblock_new(t->resblocks, nm, width, heads))) return NULL;
        t->layers = (int)(i + 1);
    }
    return t;
}

/* Registers a new [shape] parameter drawn from N(0, std^2), or zeros when std is 0 (a model
 * whose weights are about to be loaded). */
static aqa_tensor *normal_param(aqa_module *m, const char *name, int ndim, const int64_t *shape, double std) {
    aqa_tensor *t = std > 0 ? aqa_empty(ndim, shape, AQA_F32) : aqa_zeros(ndim, shape, AQA_F32);
    if (!t) return NULL;
    if ((std > 0 && aqa_normal_(t, 0.0, std, NULL) != AQA_OK) || !aqa_module_param(m, name, t)) {
        aqa_tensor_free(t);
        return NULL;
    }
    return t;
}

static aqa_status check_config(const aqa_clip_config *c) {
    const int64_t v[] = {c->embed_dim, c->image_resolution, c->vision_layers, c->vision_width, c->vision_patch_size,
                         c->vision_heads, c->context_length, c->vocab_size, c->transformer_width,
                         c->transformer_heads, c->transformer_layers};
    for (size_t i = 0; i < sizeof v / sizeof *v; i++)
        if (v[i] <= 0) return aqa_fail(AQA_EINVAL, "CLIP config: field %zu is %lld, must be > 0", i, (long long)v[i]);
    if (c->vision_width % c->vision_heads || c->transformer_width % c->transformer_heads)
        return aqa_fail(AQA_EINVAL, "CLIP config: widths %lld/%lld not divisible by heads %lld/%lld",
                        (long long)c->vision_width, (long long)c->transformer_width, (long long)c->vision_heads,
                        (long long)c->transformer_heads);
    if (c->image_resolution % c->vision_patch_size)
        return aqa_fail(AQA_EINVAL, "CLIP config: resolution %lld is not a multiple of the patch size %lld",
                        (long long)c->image_resolution, (long long)c->vision_patch_size);
    return AQA_OK;
}

static aqa_clip_vision *vision_new(aqa_module *parent, const aqa_clip_config *c, bool init) {
    aqa_clip_vision *v = aqa_module_new(sizeof *v, "VisionTransformer", parent, "visual", NULL);
    if (!v) return NULL;
    int64_t W = c->vision_width, p = c->vision_patch_size, g = c->image_resolution / p;
    double scale = init ? 1.0 / sqrt((double)W) : 0.0;
    v->input_resolution = c->image_resolution;
    v->patch_size = p;
    v->width = W;
    v->grid = g;
    /* registration order as OpenAI's: conv1, class_embedding, positional_embedding, ln_pre,
     * transformer, ln_post, proj (state_dict: own parameters first, then children) */
    v->conv1 = aqa_conv2d_layer_new(&v->base, "conv1", 3, W, p, p, 0, 1, 1, false);
    v->class_embedding = normal_param(&v->base, "class_embedding", 1, (const int64_t[]){W}, scale);
    v->positional_embedding = normal_param(&v->base, "positional_embedding", 2, (const int64_t[]){g * g + 1, W}, scale);
    v->ln_pre = layer_norm(&v->base, "ln_pre", W);
    v->transformer = transformer_new(&v->base, "transformer", W, c->vision_layers, c->vision_heads);
    v->ln_post = layer_norm(&v->base, "ln_post", W);
    v->proj = normal_param(&v->base, "proj", 2, (const int64_t[]){W, c->embed_dim}, scale);
    if (!v->conv1 || !v->class_embedding || !v->positional_embedding || !v->ln_pre || !v->transformer ||
        !v->ln_post || !v->proj)
        return NULL;
    return v;
}

/* OpenAI's CLIP.initialize_parameters for the text side (the vision blocks keep PyTorch's
 * default MultiheadAttention/Linear initialisation, as in OpenAI's code). */
static aqa_status init_text(aqa_clip_model *m) {
    const aqa_clip_config *c = &m->cfg;
    double W = (double)c->transformer_width;
    double attn_std = 1.0 / sqrt(W), proj_std = attn_std / sqrt(2.0 * (double)c->transformer_layers),
           fc_std = 1.0 / sqrt(2.0 * W);
    aqa_status st = aqa_normal_(m->token_embedding->weight, 0.0, 0.02, NULL);
    if (st == AQA_OK) st = aqa_normal_(m->positional_embedding, 0.0, 0.01, NULL);
    for (int i = 0; st == AQA_OK && i < m->transformer->layers; i++) {
        aqa_clip_resblock *b = m->transformer->blocks[i];
        st = aqa_normal_(b->attn->in_proj_weight, 0.0, attn_std, NULL);
        if (st == AQA_OK) st = aqa_normal_(b->attn->out_proj->weight, 0.0, proj_std, NULL);
        if (st == AQA_OK) st = aqa_normal_(b->c_fc->weight, 0.0, fc_std, NULL);
        if (st == AQA_OK) st = aqa_normal_(b->c_proj->weight, 0.0, proj_std, NULL);
    }
    if (st == AQA_OK) st = aqa_normal_(m->text_projection, 0.0, attn_std, NULL);
    return st;
}

aqa_clip_model *aqa__clip_model_build(const aqa_clip_config *cfg, bool init) {
    if (!cfg) return aqa_fail_null("aqa_clip_model_new: NULL config");
    if (check_config(cfg) != AQA_OK) return NULL;
    aqa_clip_model *m = aqa_module_new(sizeof *m, "CLIP", NULL, "", NULL);
    if (!m) return NULL;
    m->cfg = *cfg;
    m->truncate_context = true;
    int64_t W = cfg->transformer_width;
    m->visual = vision_new(&m->base, cfg, init);
    if (!m->visual) goto fail;
    m->transformer = transformer_new(&m->base, "transformer", W, cfg->transformer_layers, cfg->transformer_heads);
    if (!m->transformer) goto fail;
    m->token_embedding = aqa_embedding_layer_new(&m->base, "token_embedding", cfg->vocab_size, W);
    m->positional_embedding = normal_param(&m->base, "positional_embedding", 2,
                                           (const int64_t[]){cfg->context_length, W}, init ? 0.01 : 0.0);
    m->ln_final = layer_norm(&m->base, "ln_final", W);
    m->text_projection = normal_param(&m->base, "text_projection", 2, (const int64_t[]){W, cfg->embed_dim},
                                      init ? 1.0 / sqrt((double)W) : 0.0);
    aqa_tensor *ls = aqa_scalar(log(1.0 / 0.07), AQA_F32);
    m->logit_scale = ls ? aqa_module_param(&m->base, "logit_scale", ls) : NULL;
    if (!m->logit_scale) aqa_tensor_free(ls);
    if (!m->token_embedding || !m->positional_embedding || !m->ln_final || !m->text_projection || !m->logit_scale)
        goto fail;
    if (init && init_text(m) != AQA_OK) goto fail;
    return m;
fail:
    aqa_module_free(&m->base);
    return NULL;
}

aqa_clip_model *aqa_clip_model_new(const aqa_clip_config *cfg) { return aqa__clip_model_build(cfg, true); }

void aqa_clip_model_free(aqa_clip_model *m) {
    if (m) aqa_module_free(&m->base);
}

/* ---- forward pieces -------------------------------------------------------------------------- */

/* OpenAI's attention (nn.MultiheadAttention, packed in_proj) on batch-first x [N, L, E]. */
static aqa_tensor *self_attention(aqa_mha_layer *a, aqa_tensor *x, bool causal) {
    int64_t N = x->shape[0], L = x->shape[1], E = a->embed_dim, H = a->num_heads, d = a->head_dim;
    aqa_tensor *qkv = aqa_linear(x, a->in_proj_weight, a->in_proj_bias); /* [N, L, 3E], one GEMM */
    aqa_tensor *v5 = aqa_view(qkv, 5, (const int64_t[]){N, L, 3, H, d});
    const int perm[] = {0, 2, 1, 3};
    aqa_tensor *q = aqa_permute(aqa_select(v5, 2, 0), perm); /* [N, H, L, d] strided views */
    aqa_tensor *k = aqa_permute(aqa_select(v5, 2, 1), perm);
    aqa_tensor *v = aqa_permute(aqa_select(v5, 2, 2), perm);
    aqa_tensor *o = aqa_scaled_dot_product_attention(q, k, v, NULL, 0.0, causal, 1.0 / sqrt((double)d));
    o = aqa_reshape(aqa_permute(o, perm), 3, (const int64_t[]){N, L, E});
    return aqa_linear_layer_forward(a->out_proj, o);
}

aqa_tensor *aqa_clip_resblock_forward(aqa_clip_resblock *b, aqa_tensor *x, bool causal) {
    if (!b || !x) return aqa_fail_null("aqa_clip_resblock_forward: NULL argument");
    char buf[64];
    if (x->ndim != 3 || x->shape[2] != b->attn->embed_dim)
        return aqa_fail_null("ResidualAttentionBlock: input %s, expected [N, L, %lld]", aqa_shape_str(x, buf, sizeof buf),
                             (long long)b->attn->embed_dim);
    aqa_scope_begin(); /* temporaries of the block die here; the graph keeps what backward needs */
    aqa_tensor *h = self_attention(b->attn, aqa_layer_norm_layer_forward(b->ln_1, x), causal);
    aqa_tensor *x1 = aqa_add(x, h);
    aqa_tensor *f = aqa_linear_layer_forward(b->c_fc, aqa_layer_norm_layer_forward(b->ln_2, x1));
    f = aqa_linear_layer_forward(b->c_proj, aqa_activation_layer_forward(b->gelu, f));
    aqa_tensor *out = aqa_add(x1, f);
    aqa_keep(out);
    aqa_scope_end();
    return out;
}

aqa_tensor *aqa_clip_transformer_forward(aqa_clip_transformer *t, aqa_tensor *x, bool causal) {
    if (!t) return aqa_fail_null("aqa_clip_transformer_forward: NULL module");
    aqa_scope_begin();
    for (int i = 0; i < t->layers && x; i++) x = aqa_clip_resblock_forward(t->blocks[i], x, causal);
    aqa_keep(x);
    aqa_scope_end();
    return x;
}

aqa_tensor *aqa_clip_normalize(aqa_tensor *x) {
    if (!x) return NULL;
    aqa_scope_begin();
    aqa_tensor *n = aqa_sqrt(aqa_sum(aqa_square(x), 1, (const int[]){-1}, true));
    aqa_tensor *y = aqa_div(x, n);
    aqa_keep(y);
    aqa_scope_end();
    return y;
}

aqa_tensor *aqa_clip_logits(aqa_clip_model *m, aqa_tensor *image_features, aqa_tensor *text_features) {
    if (!m) return aqa_fail_null("aqa_clip_logits: NULL model");
    if (!image_features || !text_features) return NULL;
    aqa_scope_begin();
    aqa_tensor *sim = aqa_matmul(aqa_clip_normalize(image_features),
                                 aqa_transpose(aqa_clip_normalize(text_features), 0, 1));
    aqa_tensor *y = aqa_mul(sim, aqa_exp(m->logit_scale));
    aqa_keep(y);
    aqa_scope_end();
    return y;
}

/* ---- dtype conversion -------------------------------------------------------------------------- */

aqa_status aqa_clip_to_dtype(aqa_clip_model *m, aqa_dtype dtype) {
    if (!m) return aqa_fail(AQA_EINVAL, "aqa_clip_to_dtype: NULL model");
    if (!aqa_dtype_is_float(dtype)) return aqa_fail(AQA_EINVAL, "aqa_clip_to_dtype: %s is not floating", aqa_dtype_name(dtype));
    aqa_named_tensor *list;
    int n = aqa_module_named_tensors(&m->base, true, &list);
    if (n < 0) return aqa_last_status();
    aqa_status st = AQA_OK;
    for (int i = 0; i < n && st == AQA_OK; i++) {
        aqa_tensor *t = list[i].tensor;
        if (t->dtype == dtype) continue;
        bool prev = aqa_set_grad_enabled(false);
        aqa_tensor *c = aqa_to_dtype(t, dtype); /* a new contiguous tensor */
        aqa_set_grad_enabled(prev);
        if (!c) {
            st = aqa_last_status();
            break;
        }
        aqa__disown(c);
        /* the layers keep pointers to their tensors: swap the data in, keep the struct */
        aqa_storage *old = t->storage;
        t->storage = c->storage;
        t->offset = c->offset;
        memcpy(t->stride, c->stride, sizeof t->stride);
        t->dtype = dtype;
        c->storage = old;
        aqa_zero_grad(t);
        aqa__release(c);
    }
    aqa_named_tensors_free(list, n);
    return st;
}
