/* tpt.c: TPT, the temporal parsing transformer (Bai et al., ECCV 2022), a contrastive head.
 *
 * Decoder ("action_decoder"): K learned part queries (query_embed, also their positional
 * embedding) parse the clip sequence in two layers.  Each layer: cross-attention whose weights are
 * normalised over time, A = softmax_t(key_embed(x) query_embed(tgt + pos)^T / d / temp) [B, T, K]
 * (a learnable temperature, 0.07 at first), tgt = norm1(tgt + A^T value_embed(x)), an MLP block
 * (linear1, ReLU, linear2; norm2); the first layer then self-attends over the parts (8 heads,
 * q = k = tgt + pos; norm3).  Pair encoder: the mean over the K parts of MLP([parts_a, parts_b])
 * (2d -> d, ReLU, d -> d) stands for s_b - s_a; "cls" (d -> 128 -> 16 leaves, log-softmax) and
 * "reg" (d -> 128 -> 16, sigmoid) classify and place that difference in CoRe's groups (groups.h).
 * Loss, both directions of each pair: CoRe's tree loss (NLL + MSE within the leaf), plus for each
 * layer's attention of the query and the exemplar videos the part ranking hinge (the parts' mean
 * times must be ordered: max(0, margin - (m_{k+1} - m_k)), m_0 - 1 and T - m_{K-1} likewise) and
 * tpt_var_weight x the sparsity term (mean over parts of sum_t |t - m_k| A[t, k]).  Prediction:
 * exemplar score + the decoded difference; with use_difficulty both scores are divided by the
 * query's DD (query->difficulty) and the prediction multiplied back (TPT always works on score /
 * DD on MTL-AQA).  Names as TPT's code: action_decoder.{query_embed, layers.<i>.{temp, key_embed,
 * value_embed, query_embed, norm1, norm2, linear1, linear2, self_attn, norm3}},
 * pair_encoder.mlp.{0,3}, cls.{0,2}, reg.{0,2}; the groups are the buffer "groups". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "models/heads/groups.h"
#include "models/heads/seq.h"
#include "models/mvla/stages.h"
#include "nn/attention.h"
#include "nn/dropout.h"
#include "nn/init.h"
#include "nn/norm_layer.h"
#include "ops/ops.h"

/* One ActionDecoderLayer. */
typedef struct tpt_layer {
    aqa_tensor *temp;                                      /* 0-d temperature */
    aqa_linear_layer *key_embed, *value_embed, *query_embed; /* C_f -> d, C_f -> d, d -> d */
    aqa_layer_norm_layer *norm1, *norm2, *norm3;           /* norm3 in the first layer only */
    aqa_linear_layer *linear1, *linear2;                   /* d -> ffn -> d */
    aqa_mha_layer *self_attn;                              /* first layer only */
} tpt_layer;

typedef struct tpt_head {
    aqa_head h;                    /* common part (first) */
    aqa_seq_z z;                   /* MVLA's Z projections */
    aqa_embedding_layer *queries;  /* action_decoder.query_embed [K, d] */
    tpt_layer layers[2];           /* action_decoder.layers.0/1 */
    aqa_linear_layer *pair[2];     /* pair_encoder.mlp.0 / mlp.3 */
    aqa_linear_layer *cls[2];      /* cls.0 / cls.2 */
    aqa_linear_layer *reg[2];      /* reg.0 / reg.2 */
    aqa_tensor *groups;            /* buffer [leaves, 2] (float64) */
    int64_t leaves;                /* 2^(tpt_depth - 1) */
} tpt_head;

static bool layer_new(tpt_layer *l, aqa_module *parent, const char *name, const aqa_head_config *c, bool first) {
    const aqa_seq_head_config *s = &c->seq;
    int64_t d = s->tpt_dim, in = c->frame_dim;
    aqa_module *m = aqa_module_container(parent, name);
    if (!m || !(l->temp = aqa_module_param(m, "temp", aqa_scalar(s->tpt_temp, AQA_F32))) ||
        !(l->key_embed = aqa_linear_layer_new(m, "key_embed", in, d, true)) ||
        !(l->value_embed = aqa_linear_layer_new(m, "value_embed", in, d, true)) ||
        !(l->query_embed = aqa_linear_layer_new(m, "query_embed", d, d, true)) ||
        !(l->norm1 = aqa_layer_norm_layer_new(m, "norm1", 1, &d, 1e-5, true)) ||
        !(l->norm2 = aqa_layer_norm_layer_new(m, "norm2", 1, &d, 1e-5, true)) ||
        !(l->linear1 = aqa_linear_layer_new(m, "linear1", d, s->tpt_ffn, true)) ||
        !(l->linear2 = aqa_linear_layer_new(m, "linear2", s->tpt_ffn, d, true)))
        return false;
    if (!first) return true;
    return (l->self_attn = aqa_mha_layer_new(m, "self_attn", d, s->tpt_heads, s->tpt_dropout, true, true)) &&
           (l->norm3 = aqa_layer_norm_layer_new(m, "norm3", 1, &d, 1e-5, true));
}

static aqa_head *tpt_create(const aqa_head_config *c, aqa_module *parent, const char *name) {
    const aqa_seq_head_config *s = &c->seq;
    int64_t d = s->tpt_dim, hid = s->tpt_hidden;
    if (d < 1 || s->tpt_queries < 2 || s->tpt_heads < 1 || d % s->tpt_heads || s->tpt_ffn < 1 || hid < 1 ||
        s->tpt_depth < 2 || s->tpt_depth > 11 || !(s->tpt_temp > 0))
        return aqa_fail_null("tpt head: bad settings (dim %lld, queries %lld, heads %lld, depth %d, temp %g)", (long long)d,
                             (long long)s->tpt_queries, (long long)s->tpt_heads, s->tpt_depth, s->tpt_temp);
    tpt_head *m = aqa_module_new(sizeof *m, "PairModel", parent, name, NULL);
    if (!m) return NULL;
    m->leaves = (int64_t)1 << (s->tpt_depth - 1);
    aqa_module *b = &m->h.base;
    aqa_module *dec = aqa_module_container(b, "action_decoder"), *layers = NULL;
    aqa_module *pe = aqa_module_container(b, "pair_encoder"), *mlp = pe ? aqa_module_container(pe, "mlp") : NULL;
    aqa_module *cls = aqa_module_container(b, "cls"), *reg = aqa_module_container(b, "reg");
    if (!dec || !mlp || !cls || !reg || !(m->queries = aqa_embedding_layer_new(dec, "query_embed", s->tpt_queries, d)) ||
        !(layers = aqa_module_container(dec, "layers")) || !layer_new(&m->layers[0], layers, "0", c, true) || !layer_new(&m->layers[1], layers, "1", c, false) ||
        !(m->pair[0] = aqa_linear_layer_new(mlp, "0", 2 * d, d, true)) ||
        !(m->pair[1] = aqa_linear_layer_new(mlp, "3", d, d, true)) ||
        !(m->cls[0] = aqa_linear_layer_new(cls, "0", d, hid, true)) ||
        !(m->cls[1] = aqa_linear_layer_new(cls, "2", hid, m->leaves, true)) ||
        !(m->reg[0] = aqa_linear_layer_new(reg, "0", d, hid, true)) ||
        !(m->reg[1] = aqa_linear_layer_new(reg, "2", hid, m->leaves, true)))
        goto fail;
    /* ActionDecoder._reset_parameters: xavier_uniform on every matrix of the decoder */
    aqa_named_tensor *list = NULL;
    int n = aqa_module_named_tensors(dec, false, &list);
    aqa_status st = n < 0 ? aqa_last_status() : AQA_OK;
    for (int i = 0; i < n && !st; i++)
        if (list[i].tensor->ndim > 1) st = aqa_init_xavier_uniform_(list[i].tensor, 1.0, NULL);
    aqa_named_tensors_free(list, n);
    if (st) goto fail;
    /* groups: even over the score range until set from the training pairs */
    double *g = malloc(sizeof *g * (size_t)(2 * m->leaves));
    if (!g) goto fail;
    aqa_groups_even(g, m->leaves, c->score_max - c->score_min > 0 ? c->score_max - c->score_min : 1.0);
    aqa_tensor *gt = aqa_from_data(g, 2, (int64_t[]){m->leaves, 2}, AQA_F64);
    free(g);
    if (!gt || !(m->groups = aqa_module_buffer(b, "groups", gt)) || aqa_seq_z_init(&m->z, b, c)) goto fail;
    return &m->h;
fail:
    if (!parent) aqa_module_free(b);
    return NULL;
}

aqa_status aqa_tpt_head_set_groups(aqa_head *h, const double *deltas, int64_t n) {
    if (!h || h->ops != &aqa_head_tpt) return aqa_fail(AQA_EINVAL, "aqa_tpt_head_set_groups: needs a tpt head");
    tpt_head *m = (tpt_head *)h;
    double *g = malloc(sizeof *g * (size_t)(2 * m->leaves));
    if (!g) return aqa_fail(AQA_ENOMEM, "aqa_tpt_head_set_groups: out of memory");
    aqa_status st = aqa_groups_from_deltas(g, m->leaves, deltas, n, 0.0);
    aqa_tensor *gt = st ? NULL : aqa_from_data(g, 2, (int64_t[]){m->leaves, 2}, AQA_F64);
    free(g);
    if (!st) st = gt ? aqa_copy_(m->groups, gt) : aqa_last_status();
    aqa_tensor_free(gt);
    return st;
}

/* One decoder layer: tgt [B, K, d] over x [B, T, C_f]; *att receives A [B, T, K]. */
static aqa_tensor *layer_forward(tpt_head *m, const tpt_layer *l, aqa_tensor *x, aqa_tensor *tgt, aqa_tensor *pos,
                                 aqa_tensor **att) {
    double p = m->h.cfg.seq.tpt_dropout, d = (double)m->h.cfg.seq.tpt_dim;
    bool tr = m->h.base.training;
    aqa_tensor *key = aqa_linear_layer_forward(l->key_embed, x), *value = aqa_linear_layer_forward(l->value_embed, x);
    aqa_tensor *query = aqa_linear_layer_forward(l->query_embed, aqa_add(tgt, pos));
    aqa_tensor *scores = aqa_div(aqa_div_scalar(aqa_matmul(key, aqa_transpose(query, 1, 2)), d), l->temp);
    *att = aqa_softmax(scores, 1); /* over time */
    aqa_tensor *t2 = aqa_matmul(aqa_transpose(*att, 1, 2), value);
    tgt = aqa_layer_norm_layer_forward(l->norm1, aqa_add(tgt, aqa_dropout(t2, p, tr, NULL)));
    t2 = aqa_linear_layer_forward(l->linear2, aqa_dropout(aqa_relu(aqa_linear_layer_forward(l->linear1, tgt)), p, tr, NULL));
    tgt = aqa_layer_norm_layer_forward(l->norm2, aqa_add(tgt, aqa_dropout(t2, p, tr, NULL)));
    if (!l->self_attn) return tgt;
    aqa_tensor *qk = aqa_add(tgt, pos);
    t2 = aqa_mha_layer_forward(l->self_attn, qk, qk, tgt, NULL, NULL, NULL);
    return aqa_layer_norm_layer_forward(l->norm3, aqa_add(tgt, aqa_dropout(t2, p, tr, NULL)));
}

/* The parts [B, K, d] of a video; att[0..1] the two layers' attentions. */
static aqa_tensor *decode(tpt_head *m, aqa_tensor *x, aqa_tensor **att) {
    int64_t B = x->shape[0], K = m->h.cfg.seq.tpt_queries, d = m->h.cfg.seq.tpt_dim;
    aqa_tensor *pos = aqa_expand(aqa_unsqueeze(m->queries->weight, 0), 3, (int64_t[]){B, K, d});
    aqa_tensor *tgt = aqa_full_on(AQA_SHAPE(B, K, d), 0.0, x->dtype, aqa_tensor_device(x));
    tgt = layer_forward(m, &m->layers[0], x, tgt, pos, &att[0]);
    return layer_forward(m, &m->layers[1], x, tgt, pos, &att[1]);
}

/* Pair encoding of (a, b) [B, d] and its leaf log-probabilities / regressed positions. */
static void pair(tpt_head *m, aqa_tensor *a, aqa_tensor *b, aqa_tensor **logp, aqa_tensor **delta) {
    aqa_tensor *h = aqa_relu(aqa_linear_layer_forward(m->pair[0], aqa_cat((aqa_tensor *[]){a, b}, 2, -1)));
    h = aqa_linear_layer_forward(m->pair[1], aqa_dropout(h, m->h.cfg.seq.tpt_dropout, m->h.base.training, NULL));
    aqa_tensor *r = aqa_mean(h, 1, (int[]){1}, false);
    *logp = aqa_log_softmax(aqa_linear_layer_forward(m->cls[1], aqa_relu(aqa_linear_layer_forward(m->cls[0], r))), -1);
    *delta = aqa_sigmoid(aqa_linear_layer_forward(m->reg[1], aqa_relu(aqa_linear_layer_forward(m->reg[0], r))));
}

/* TPT's ranking and sparsity terms of attentions A [N, T, K]. */
static aqa_tensor *part_losses(const tpt_head *m, aqa_tensor *A) {
    const aqa_seq_head_config *s = &m->h.cfg.seq;
    int64_t T = A->shape[1], K = A->shape[2];
    aqa_tensor *steps = aqa_stage_on_device(aqa_to_dtype(aqa_reshape(aqa_arange(1, (double)T + 1, 1, AQA_F64), 3,
                                                                     (int64_t[]){1, T, 1}), A->dtype), A);
    aqa_tensor *mean = aqa_sum(aqa_mul(A, steps), 1, (int[]){1}, false);                       /* [N, K] */
    aqa_tensor *spread = aqa_sum(aqa_mul(aqa_abs(aqa_sub(steps, aqa_unsqueeze(mean, 1))), A), 1, (int[]){1}, false);
    /* hinge(x1 = later, x2 = earlier): mean over videos of max(0, margin - (x1 - x2)) */
    aqa_tensor *gaps = aqa_sub(aqa_narrow(mean, 1, 1, K - 1), aqa_narrow(mean, 1, 0, K - 1));   /* m_{k+1} - m_k */
    aqa_tensor *ends = aqa_cat((aqa_tensor *[]){aqa_add_scalar(aqa_narrow(mean, 1, 0, 1), -1.0),
                                                aqa_rsub_scalar(aqa_narrow(mean, 1, K - 1, 1), (double)T)}, 2, 1);
    aqa_tensor *hinge = aqa_relu(aqa_rsub_scalar(aqa_cat((aqa_tensor *[]){gaps, ends}, 2, 1), s->tpt_margin));
    aqa_tensor *rank = aqa_sum_all(aqa_mean(hinge, 1, (int[]){0}, false));
    return aqa_add(rank, aqa_mul_scalar(aqa_mean_all(spread), s->tpt_var_weight));
}

static aqa_status tpt_forward(aqa_head *h, const aqa_head_input *query, const aqa_head_input *exemplar,
                              aqa_tensor *exemplar_score, const aqa_head_targets *targets, aqa_head_result *out) {
    tpt_head *m = (tpt_head *)h;
    bool train = targets && targets->score;
    aqa_scope_begin();
    aqa_tensor *xq = aqa_seq_input(h, &m->z, query, "tpt"), *xe = aqa_seq_input(h, &m->z, exemplar, "tpt");
    if (!xq || !xe) return aqa_head_finish(out, AQA_EINVAL, false);
    int64_t B = xq->shape[0], L = m->leaves;
    double *buf = calloc((size_t)(4 * B + 2 * L + 4), sizeof *buf);
    if (!buf) return aqa_head_finish(out, aqa_fail(AQA_ENOMEM, "tpt head: out of memory"), false);
    double *s1 = buf, *s2 = s1 + B + 1, *dd = s2 + B + 1, *pr = dd + B + 1, *g = pr + B;
    aqa_status st = aqa_numel(exemplar_score) == B && (!train || aqa_numel(targets->score) == B)
                        ? AQA_OK
                        : aqa_fail(AQA_EINVAL, "tpt head: one exemplar score and one target per query (%lld)", (long long)B);
    for (int64_t i = 0; i < B; i++) dd[i] = 1.0;
    bool use_dd = h->cfg.use_difficulty && query->difficulty;
    if (!st && (aqa_copy_to_host(exemplar_score, s2, AQA_F64) || aqa_copy_to_host(m->groups, g, AQA_F64) ||
                (use_dd && aqa_copy_to_host(query->difficulty, dd, AQA_F64)) ||
                (train && aqa_copy_to_host(targets->score, s1, AQA_F64))))
        st = aqa_last_status();
    aqa_tensor *aq[2] = {NULL, NULL}, *ae[2] = {NULL, NULL};
    aqa_tensor *pq = st ? NULL : decode(m, xq, aq), *pe = st ? NULL : decode(m, xe, ae);
    /* (exemplar, query) stands for query - exemplar: the prediction */
    aqa_tensor *logp, *delta;
    pair(m, pe, pq, &logp, &delta);
    if (!st && !(st = aqa_groups_predict(logp, delta, g, L, pr))) {
        for (int64_t i = 0; i < B; i++) pr[i] = (pr[i] + s2[i] / dd[i]) * dd[i];
        out->pred = aqa_stage_on_device(aqa_to_dtype(aqa_from_data(pr, 1, (int64_t[]){B}, AQA_F64), xq->dtype), xq);
    }
    if (!st && train) {
        aqa_tensor *lq, *dq;
        pair(m, pq, pe, &lq, &dq); /* (query, exemplar) stands for exemplar - query */
        for (int64_t i = 0; i < B; i++) s1[i] = (s2[i] - s1[i]) / dd[i];
        aqa_tensor *tree = aqa_groups_loss(aqa_cat((aqa_tensor *[]){lq, logp}, 2, 0), aqa_cat((aqa_tensor *[]){dq, delta}, 2, 0),
                                           g, L, s1, B);
        aqa_tensor *parts = NULL;
        for (int k = 0; k < 2; k++) {
            aqa_tensor *pl = part_losses(m, aqa_cat((aqa_tensor *[]){aq[k], ae[k]}, 2, 0));
            parts = parts ? aqa_add(parts, pl) : pl;
        }
        out->loss = aqa_add(tree, parts);
    }
    free(buf);
    return aqa_head_finish(out, st, train);
}

const aqa_head_ops aqa_head_tpt = {"tpt", true, tpt_create, tpt_forward};
