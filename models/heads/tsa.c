/* tsa.c: TSA's head (FineDiving, CVPR 2022): procedure-aware cross-attention and fine-grained
 * contrastive regression, as xujinglin/FineDiving's code.
 *
 * Each stage of a video's frame features (input frames + boundaries: TSA's 96 x 64 pseudo-frames,
 * PSNet on the I3D clip features) is linearly interpolated to K = 5 query tokens (F.interpolate,
 * align_corners); its keys and values are the other video's frame_maps (PSNet on the
 * time-averaged I3D Mixed_5c maps, P = H x W positions per pseudo-frame) interpolated the same way
 * along time, K x P tokens per stage (TSA's seg_pool_3d: 5 x 4 x 4 = 80), token k P + p; without
 * frame_maps the keys and values are the 1-D tokens.  A decoder of 3 pre-norm cross-attention
 * blocks (dim 64, 8 heads, MLP ratio 4, q/k/v without bias) runs per stage, queries from one
 * video and keys/values from the other, both directions; the regressor MLP 64-256-64-1, averaged
 * over the query tokens, gives the score difference.  Loss MSE(d12, s1 - s2) + MSE(d21, s2 - s1);
 * prediction d12 + s2 (averaged over exemplars at test).
 *
 * With use_z (MVLA: "R regresses Z") stage s gains two tokens on both sides, Linear(Z^sta_s)
 * ("stage_proj") and Linear(Z^vid) ("video_proj"), so the query's Z tokens attend to the
 * exemplar's tokens and Z tokens and the regressor averages over them too (K + 2 query tokens);
 * with tsa_z_bias instead the two projections are added to every token of the stage (aqa's first
 * way, kept as a setting).  Names follow TSA's code: decoder.model.<i>.{norm_q, norm_v,
 * attn.{q_map,k_map,v_map,proj}, norm2, mlp.{fc1,fc2}}, regressor.layer1..3. */
#include <stdio.h>

#include "models/heads/head.h"
#include "models/mvla/stages.h"
#include "nn/attention.h"
#include "nn/linear.h"
#include "nn/loss.h"
#include "nn/norm_layer.h"
#include "ops/ops.h"

#define TSA_MAX_LAYERS 16

typedef struct tsa_block {
    aqa_layer_norm_layer *norm_q, *norm_v, *norm2;
    aqa_linear_layer *q_map, *k_map, *v_map, *proj, *fc1, *fc2;
} tsa_block;

typedef struct tsa_head {
    aqa_head h;                         /* common part (first) */
    tsa_block blocks[TSA_MAX_LAYERS];   /* decoder.model.<i> */
    int n_blocks;
    aqa_linear_layer *reg[3];           /* regressor.layer1..3 */
    aqa_linear_layer *stage_proj;       /* feat_dim -> tsa_dim, or NULL */
    aqa_linear_layer *video_proj;       /* feat_dim -> tsa_dim, or NULL */
} tsa_head;

static aqa_head *tsa_create(const aqa_head_config *c, aqa_module *parent, const char *name) {
    if (c->tsa_dim < 1 || c->tsa_heads < 1 || c->tsa_dim % c->tsa_heads || c->tsa_layers < 1 ||
        c->tsa_layers > TSA_MAX_LAYERS || c->tsa_tokens < 1 || c->num_stages < 1)
        return aqa_fail_null("tsa head: bad settings (dim %lld, heads %lld, layers %d)", (long long)c->tsa_dim,
                             (long long)c->tsa_heads, c->tsa_layers);
    if (c->frame_dim != c->tsa_dim)
        return aqa_fail_null("tsa head: frame_dim %lld must equal tsa_dim %lld", (long long)c->frame_dim,
                             (long long)c->tsa_dim);
    tsa_head *t = aqa_module_new(sizeof *t, "TSAHead", parent, name, NULL);
    if (!t) return NULL;
    int64_t E = c->tsa_dim, Hm = (int64_t)(c->tsa_mlp_ratio * (double)E);
    aqa_module *dec = aqa_module_container(&t->h.base, "decoder");
    aqa_module *model = dec ? aqa_module_container(dec, "model") : NULL;
    if (!model) goto fail;
    for (int i = 0; i < c->tsa_layers; i++) {
        char idx[16];
        snprintf(idx, sizeof idx, "%d", i);
        aqa_module *b = aqa_module_container(model, idx);
        tsa_block *k = &t->blocks[i];
        if (!b || !(k->norm_q = aqa_layer_norm_layer_new(b, "norm_q", 1, &E, 1e-5, true)) ||
            !(k->norm_v = aqa_layer_norm_layer_new(b, "norm_v", 1, &E, 1e-5, true)))
            goto fail;
        aqa_module *attn = aqa_module_container(b, "attn");
        if (!attn || !(k->q_map = aqa_linear_layer_new(attn, "q_map", E, E, false)) ||
            !(k->k_map = aqa_linear_layer_new(attn, "k_map", E, E, false)) ||
            !(k->v_map = aqa_linear_layer_new(attn, "v_map", E, E, false)) ||
            !(k->proj = aqa_linear_layer_new(attn, "proj", E, E, true)))
            goto fail;
        if (!(k->norm2 = aqa_layer_norm_layer_new(b, "norm2", 1, &E, 1e-5, true))) goto fail;
        aqa_module *mlp = aqa_module_container(b, "mlp");
        if (!mlp || !(k->fc1 = aqa_linear_layer_new(mlp, "fc1", E, Hm, true)) ||
            !(k->fc2 = aqa_linear_layer_new(mlp, "fc2", Hm, E, true)))
            goto fail;
        t->n_blocks++;
    }
    aqa_module *reg = aqa_module_container(&t->h.base, "regressor");
    if (!reg || !(t->reg[0] = aqa_linear_layer_new(reg, "layer1", E, c->tsa_reg_hidden1, true)) ||
        !(t->reg[1] = aqa_linear_layer_new(reg, "layer2", c->tsa_reg_hidden1, c->tsa_reg_hidden2, true)) ||
        !(t->reg[2] = aqa_linear_layer_new(reg, "layer3", c->tsa_reg_hidden2, 1, true)))
        goto fail;
    if (c->use_z) {
        if (!(t->stage_proj = aqa_linear_layer_new(&t->h.base, "stage_proj", c->feat_dim, E, true))) goto fail;
        if (!(t->video_proj = aqa_linear_layer_new(&t->h.base, "video_proj", c->feat_dim, E, true))) goto fail;
    }
    return &t->h;
fail:
    if (!parent) aqa_module_free(&t->h.base);
    return NULL;
}

/* Multi-head cross attention of TSA: q [M, n, E] over kv [M, m, E]. */
static aqa_tensor *cross_attention(const tsa_block *k, int64_t heads, aqa_tensor *q, aqa_tensor *kv) {
    int64_t M = q->shape[0], n = q->shape[1], m = kv->shape[1], E = q->shape[2], hd = E / heads;
    int perm[4] = {0, 2, 1, 3};
    aqa_tensor *Q = aqa_permute(aqa_view(aqa_linear_layer_forward(k->q_map, q), 4, (int64_t[]){M, n, heads, hd}), perm);
    aqa_tensor *K = aqa_permute(aqa_view(aqa_linear_layer_forward(k->k_map, kv), 4, (int64_t[]){M, m, heads, hd}), perm);
    aqa_tensor *V = aqa_permute(aqa_view(aqa_linear_layer_forward(k->v_map, kv), 4, (int64_t[]){M, m, heads, hd}), perm);
    aqa_tensor *o = aqa_scaled_dot_product_attention(Q, K, V, NULL, 0.0, false, 0.0); /* [M, H, n, hd] */
    o = aqa_reshape(aqa_permute(o, perm), 3, (int64_t[]){M, n, E});
    return aqa_linear_layer_forward(k->proj, o);
}

static aqa_tensor *decoder(tsa_head *t, aqa_tensor *q, aqa_tensor *v) {
    for (int i = 0; i < t->n_blocks; i++) {
        const tsa_block *k = &t->blocks[i];
        q = aqa_add(q, cross_attention(k, t->h.cfg.tsa_heads, aqa_layer_norm_layer_forward(k->norm_q, q),
                                       aqa_layer_norm_layer_forward(k->norm_v, v)));
        aqa_tensor *h = aqa_gelu(aqa_linear_layer_forward(k->fc1, aqa_layer_norm_layer_forward(k->norm2, q)));
        q = aqa_add(q, aqa_linear_layer_forward(k->fc2, h));
    }
    return q;
}

/* Frames [B, T, E] or frame maps [B, T, E, P] resampled per stage: [B * S, K * P, E] (P = 1 for
 * frames), token k P + p of a stage being position p of its k-th interpolated step. */
static aqa_tensor *stage_tokens(const aqa_head_config *c, aqa_tensor *x, const aqa_tensor *boundaries) {
    int64_t B = x->shape[0], T = x->shape[1], E = x->shape[2], P = x->ndim == 4 ? x->shape[3] : 1;
    int64_t S = c->num_stages, K = c->tsa_tokens;
    aqa_tensor *W = aqa_stage_on_device(aqa_stage_interp_matrix(boundaries, T, K, x->dtype), x); /* [B, S K, T] */
    if (P == 1 && x->ndim == 3) return aqa_reshape(aqa_matmul(W, x), 3, (int64_t[]){B * S, K, E});
    aqa_tensor *xp = aqa_contiguous(aqa_permute(x, (int[]){0, 3, 1, 2}));   /* [B, P, T, E] */
    aqa_tensor *y = aqa_matmul(aqa_unsqueeze(W, 1), xp);                    /* [B, P, S K, E] */
    y = aqa_permute(aqa_view(y, 5, (int64_t[]){B, P, S, K, E}), (int[]){0, 2, 3, 1, 4});
    return aqa_reshape(y, 3, (int64_t[]){B * S, K * P, E});
}

/* The query tokens *q [B * S, K (+ 2), E] and key/value tokens *kv [B * S, K P (+ 2), E] of one
 * video batch (see the top of the file).  AQA_OK or an error naming what is missing. */
static aqa_status tokens(tsa_head *t, const aqa_head_input *in, aqa_tensor **q, aqa_tensor **kv) {
    const aqa_head_config *c = &t->h.cfg;
    *q = *kv = NULL;
    if (!in->frames || !in->boundaries || in->frames->ndim != 3 || in->frames->shape[2] != c->tsa_dim ||
        in->boundaries->shape[1] + 1 != c->num_stages)
        return aqa_fail(AQA_EINVAL, "tsa head: needs frames [B, T, %lld] and boundaries [B, %lld]", (long long)c->tsa_dim,
                        (long long)(c->num_stages - 1));
    const aqa_tensor *fm = in->frame_maps;
    int64_t B = in->frames->shape[0], T = in->frames->shape[1], S = c->num_stages, E = c->tsa_dim;
    if (fm && (fm->ndim != 4 || fm->shape[0] != B || fm->shape[1] != T || fm->shape[2] != E))
        return aqa_fail(AQA_EINVAL, "tsa head: frame_maps must be [%lld, %lld, %lld, P]", (long long)B, (long long)T,
                        (long long)E);
    *q = stage_tokens(c, in->frames, in->boundaries);
    *kv = fm ? stage_tokens(c, (aqa_tensor *)fm, in->boundaries) : *q;
    if (t->stage_proj) {
        if (!in->stages || !in->video) return aqa_fail(AQA_EINVAL, "tsa head: use_z needs stages and video (Z)");
        aqa_tensor *zs = aqa_reshape(aqa_linear_layer_forward(t->stage_proj, in->stages), 3, (int64_t[]){B * S, 1, E});
        aqa_tensor *zv = aqa_linear_layer_forward(t->video_proj, in->video); /* [B, E] */
        zv = aqa_reshape(aqa_expand(aqa_view(zv, 3, (int64_t[]){B, 1, E}), 3, (int64_t[]){B, S, E}), 3,
                         (int64_t[]){B * S, 1, E});
        if (c->tsa_z_bias) {
            aqa_tensor *z = aqa_add(zs, zv);
            bool same = *kv == *q;
            *q = aqa_add(*q, z);
            *kv = same ? *q : aqa_add(*kv, z);
        } else {
            *q = aqa_cat((aqa_tensor *[]){*q, zs, zv}, 3, 1);
            *kv = fm ? aqa_cat((aqa_tensor *[]){*kv, zs, zv}, 3, 1) : *q;
        }
    }
    return *q && *kv ? AQA_OK : (aqa_last_status() ? aqa_last_status() : AQA_EINVAL);
}

/* Regressor averaged over the query tokens of each sample: [B * S, K', E] -> [B]. */
static aqa_tensor *regress(tsa_head *t, aqa_tensor *x, int64_t B) {
    aqa_tensor *h = aqa_relu(aqa_linear_layer_forward(t->reg[0], x));
    h = aqa_relu(aqa_linear_layer_forward(t->reg[1], h));
    h = aqa_linear_layer_forward(t->reg[2], h); /* [B S, K, 1] */
    return aqa_mean(aqa_reshape(h, 2, (int64_t[]){B, -1}), 1, (int[]){1}, false);
}

static aqa_status tsa_forward(aqa_head *h, const aqa_head_input *query, const aqa_head_input *exemplar,
                              aqa_tensor *exemplar_score, const aqa_head_targets *targets, aqa_head_result *out) {
    tsa_head *t = (tsa_head *)h;
    aqa_scope_begin();
    aqa_tensor *tq, *tq_kv, *te, *te_kv;
    aqa_status st = tokens(t, query, &tq, &tq_kv);
    if (!st) st = tokens(t, exemplar, &te, &te_kv);
    if (!st && exemplar->frames->shape[0] != query->frames->shape[0])
        st = aqa_fail(AQA_EINVAL, "tsa head: %lld queries but %lld exemplars", (long long)query->frames->shape[0],
                      (long long)exemplar->frames->shape[0]);
    if (st) {
        aqa_scope_end();
        return st;
    }
    int64_t B = query->frames->shape[0];
    bool train = targets && targets->score;
    aqa_tensor *d12 = regress(t, decoder(t, tq, te_kv), B);
    aqa_tensor *s2 = aqa_reshape(exemplar_score, 1, (int64_t[]){B});
    out->pred = aqa_add(d12, aqa_to_dtype(s2, d12 ? d12->dtype : AQA_F32));
    if (train) {
        aqa_tensor *d21 = regress(t, decoder(t, te, tq_kv), B);
        aqa_tensor *s1 = aqa_to_dtype(aqa_reshape(targets->score, 1, (int64_t[]){B}), d12 ? d12->dtype : AQA_F32);
        aqa_tensor *diff = aqa_sub(s1, aqa_to_dtype(s2, d12 ? d12->dtype : AQA_F32));
        out->loss = aqa_add(aqa_mse_loss(d12, diff, AQA_REDUCTION_MEAN), aqa_mse_loss(d21, aqa_neg(diff), AQA_REDUCTION_MEAN));
    }
    return aqa_head_finish(out, AQA_OK, train);
}

const aqa_head_ops aqa_head_tsa = {"tsa", true, tsa_create, tsa_forward};
