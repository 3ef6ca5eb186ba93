/* sca.c: semantic-aware collaborative attention (eq. 8 of the paper):
 *
 *     X' = softmax(F_vis w_q (F_text w_k)^T / sqrt(d)) F_text w_v + F_vis,   X = MLP(X') + X'
 *     Z' = softmax(F_i3d W_q (X W_k)^T / sqrt(d')) X W_v + F_i3d,           Z = MLP(Z') + Z'
 *
 * with MLP = Linear, GELU, Linear.  Text reaches the CBP features only through X.  Single-head
 * attention with d = d' = D; projections without bias (the paper's "learnable weights").
 *
 * Graded texts (JIGSAWS, Fis-V, "+ Quality Text"): a sample's own text is the grade of its score,
 * unknown at test time, so SCA never receives it; it fuses "the highest-similarity textual
 * semantics" (paper, section 4.2) among the candidates (aqa_mvla_pick_texts). */
#include "autograd/autograd.h"
#include "models/mvla/mvla.h"
#include "nn/attention.h"
#include "ops/ops.h"

aqa_mvla_sca *aqa_mvla_sca_new(aqa_module *parent, const char *name, int64_t dim, int64_t mlp_hidden) {
    if (dim < 1 || mlp_hidden < 1) return aqa_fail_null("SCA %s: bad sizes", name ? name : "");
    aqa_mvla_sca *s = aqa_module_new(sizeof *s, "SCA", parent, name, NULL);
    if (!s) return NULL;
    aqa_module *vm, *cm;
    if (!(s->vis_q = aqa_linear_layer_new(&s->base, "vis_q", dim, dim, false))) goto fail;
    if (!(s->vis_k = aqa_linear_layer_new(&s->base, "vis_k", dim, dim, false))) goto fail;
    if (!(s->vis_v = aqa_linear_layer_new(&s->base, "vis_v", dim, dim, false))) goto fail;
    if (!(vm = aqa_module_container(&s->base, "vis_mlp"))) goto fail;
    if (!(s->vis_fc1 = aqa_linear_layer_new(vm, "fc1", dim, mlp_hidden, true))) goto fail;
    if (!(s->vis_fc2 = aqa_linear_layer_new(vm, "fc2", mlp_hidden, dim, true))) goto fail;
    if (!(s->cbp_q = aqa_linear_layer_new(&s->base, "cbp_q", dim, dim, false))) goto fail;
    if (!(s->cbp_k = aqa_linear_layer_new(&s->base, "cbp_k", dim, dim, false))) goto fail;
    if (!(s->cbp_v = aqa_linear_layer_new(&s->base, "cbp_v", dim, dim, false))) goto fail;
    if (!(cm = aqa_module_container(&s->base, "cbp_mlp"))) goto fail;
    if (!(s->cbp_fc1 = aqa_linear_layer_new(cm, "fc1", dim, mlp_hidden, true))) goto fail;
    if (!(s->cbp_fc2 = aqa_linear_layer_new(cm, "fc2", mlp_hidden, dim, true))) goto fail;
    return s;
fail:
    if (!parent) aqa_module_free(&s->base);
    return NULL;
}

/* One half of eq. 8: attention of q_in over kv, residual, then MLP with residual. */
static aqa_tensor *half(aqa_linear_layer *wq, aqa_linear_layer *wk, aqa_linear_layer *wv, aqa_linear_layer *fc1,
                        aqa_linear_layer *fc2, aqa_tensor *q_in, aqa_tensor *kv) {
    aqa_tensor *a = aqa_scaled_dot_product_attention(aqa_linear_layer_forward(wq, q_in), aqa_linear_layer_forward(wk, kv),
                                                     aqa_linear_layer_forward(wv, kv), NULL, 0.0, false, 0.0);
    aqa_tensor *x1 = aqa_add(a, q_in);
    return aqa_add(aqa_linear_layer_forward(fc2, aqa_gelu(aqa_linear_layer_forward(fc1, x1))), x1);
}

aqa_tensor *aqa_mvla_pick_texts(aqa_tensor *table, aqa_tensor *cands, aqa_tensor *feat, aqa_mvla_grade_mode mode) {
    if (!table || !cands || !feat) return aqa_fail_null("aqa_mvla_pick_texts: NULL argument");
    if (table->ndim != 2 || cands->ndim != 3 || cands->dtype != AQA_I64 || feat->ndim != 3 ||
        feat->shape[0] != cands->shape[0] || feat->shape[1] != cands->shape[1] || feat->shape[2] != table->shape[1])
        return aqa_fail_null("aqa_mvla_pick_texts: expected table [C, D], cands I64 [B, K, G], feat [B, K, D]");
    const int64_t B = cands->shape[0], K = cands->shape[1], G = cands->shape[2], D = table->shape[1];
    aqa_scope_begin();
    aqa_tensor *flat = aqa_reshape(cands, 1, (int64_t[]){B * K * G});
    aqa_tensor *texts = aqa_reshape(aqa_index_select(table, 0, flat), 4, (int64_t[]){B, K, G, D});
    aqa_tensor *out;
    if (mode == AQA_MVLA_GRADES_ALL) {
        out = aqa_reshape(texts, 3, (int64_t[]){B, K * G, D});
    } else {
        /* cosine similarity of each slot's feature with its G candidates; no gradient through the choice */
        bool prev = aqa_set_grad_enabled(false);
        aqa_tensor *f = aqa_unsqueeze(aqa_mvla_l2_normalize(feat), 2);                    /* [B, K, 1, D] */
        aqa_tensor *sim = aqa_sum(aqa_mul(aqa_mvla_l2_normalize(texts), f), 1, (int[]){3}, false); /* [B, K, G] */
        aqa_tensor *best = aqa_gather(cands, 2, aqa_argmax(sim, 2, true));                  /* [B, K, 1] */
        aqa_set_grad_enabled(prev);
        out = aqa_reshape(aqa_index_select(table, 0, aqa_reshape(best, 1, (int64_t[]){B * K})), 3, (int64_t[]){B, K, D});
    }
    aqa_tensor *r = out ? aqa_keep(out) : NULL;
    aqa_scope_end();
    return r;
}

aqa_tensor *aqa_mvla_sca_forward(aqa_mvla_sca *s, aqa_tensor *vis, aqa_tensor *text, aqa_tensor *i3d) {
    if (!s || !vis || !text || !i3d) return aqa_fail_null("aqa_mvla_sca_forward: NULL argument");
    aqa_scope_begin();
    aqa_tensor *x = half(s->vis_q, s->vis_k, s->vis_v, s->vis_fc1, s->vis_fc2, vis, text);
    aqa_tensor *z = half(s->cbp_q, s->cbp_k, s->cbp_v, s->cbp_fc1, s->cbp_fc2, i3d, x);
    aqa_keep(z);
    aqa_scope_end();
    return z;
}
