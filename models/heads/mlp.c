/* mlp.c: the plain MLP regressor head: feature -> Linear-ReLU-Linear-ReLU-Linear -> score, trained
 * with MSE (targets / DD and prediction x DD with use_difficulty).  The feature is
 * aqa_head_feature's: with use_z (MVLA) [Z^vid, Z^sta_1..S] concatenated, else input->video (or
 * the mean of input->stages when video is absent).  Names regressor.layer1..3. */
#include "models/heads/head.h"
#include "nn/linear.h"
#include "nn/loss.h"
#include "ops/ops.h"

typedef struct mlp_head {
    aqa_head h;              /* common part (first) */
    aqa_linear_layer *l[3];  /* regressor.layer1..3 */
} mlp_head;

static aqa_head *mlp_create(const aqa_head_config *c, aqa_module *parent, const char *name) {
    mlp_head *m = aqa_module_new(sizeof *m, "MLPHead", parent, name, NULL);
    if (!m) return NULL;
    aqa_module *r = aqa_module_container(&m->h.base, "regressor");
    if (!r || !(m->l[0] = aqa_linear_layer_new(r, "layer1", aqa_head_feature_dim(c), c->mlp_hidden1, true)) ||
        !(m->l[1] = aqa_linear_layer_new(r, "layer2", c->mlp_hidden1, c->mlp_hidden2, true)) ||
        !(m->l[2] = aqa_linear_layer_new(r, "layer3", c->mlp_hidden2, 1, true))) {
        if (!parent) aqa_module_free(&m->h.base);
        return NULL;
    }
    return &m->h;
}

static aqa_status mlp_forward(aqa_head *h, const aqa_head_input *query, const aqa_head_input *exemplar,
                              aqa_tensor *exemplar_score, const aqa_head_targets *targets, aqa_head_result *out) {
    (void)exemplar;
    (void)exemplar_score;
    mlp_head *m = (mlp_head *)h;
    aqa_scope_begin();
    aqa_tensor *x = aqa_head_feature(h, query);
    x = aqa_relu(aqa_linear_layer_forward(m->l[0], x));
    x = aqa_relu(aqa_linear_layer_forward(m->l[1], x));
    x = aqa_linear_layer_forward(m->l[2], x);
    aqa_tensor *y = x ? aqa_reshape(x, 1, (int64_t[]){x->shape[0]}) : NULL;
    if (h->cfg.use_difficulty && !query->difficulty) {
        aqa_scope_end();
        return aqa_fail(AQA_EINVAL, "head mlp: use_difficulty needs the videos' difficulty (DD)");
    }
    aqa_tensor *dd = h->cfg.use_difficulty && y ? aqa_to_dtype(query->difficulty, y->dtype) : NULL;
    out->pred = dd ? aqa_mul(y, dd) : y;
    if (targets && targets->score) {
        aqa_tensor *s = aqa_to_dtype(targets->score, y ? y->dtype : AQA_F32);
        if (dd) s = aqa_div(s, dd);
        out->loss = aqa_mse_loss(y, s, AQA_REDUCTION_MEAN);
        if (!out->loss) out->pred = NULL;
    }
    return aqa_head_finish(out, AQA_OK, targets && targets->score);
}

const aqa_head_ops aqa_head_mlp = {"mlp", false, mlp_create, mlp_forward};
