/* sca.c: semantic-aware collaborative attention (eq. 8 of the paper):
 *
 *     X' = softmax(F_vis w_q (F_text w_k)^T / sqrt(d)) F_text w_v + F_vis,   X = MLP(X') + X'
 *     Z' = softmax(F_i3d W_q (X W_k)^T / sqrt(d')) X W_v + F_i3d,           Z = MLP(Z') + Z'
 *
 * with MLP = Linear, GELU, Linear.  Text reaches the CBP features only through X.  Single-head
 * attention with d = d' = D; projections without bias (the paper's "learnable weights"). */
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

aqa_tensor *aqa_mvla_sca_forward(aqa_mvla_sca *s, aqa_tensor *vis, aqa_tensor *text, aqa_tensor *i3d) {
    if (!s || !vis || !text || !i3d) return aqa_fail_null("aqa_mvla_sca_forward: NULL argument");
    aqa_scope_begin();
    aqa_tensor *x = half(s->vis_q, s->vis_k, s->vis_v, s->vis_fc1, s->vis_fc2, vis, text);
    aqa_tensor *z = half(s->cbp_q, s->cbp_k, s->cbp_v, s->cbp_fc1, s->cbp_fc2, i3d, x);
    aqa_keep(z);
    aqa_scope_end();
    return z;
}
