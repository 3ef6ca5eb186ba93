/* gdlt.c: GDLT, Likert scoring with grade decoupling (Xu et al., CVPR 2022), the Fis-V head.
 *
 * The clip sequence [B, T, C_f] goes through in_proj (1x1 Conv1d C_f -> C_f / 2, BatchNorm1d,
 * ReLU, 1x1 Conv1d -> d, BatchNorm1d), a post-norm TransformerEncoder (gdlt_encoder layers, final
 * LayerNorm, MLP 3d, ReLU) and a post-norm TransformerDecoder (gdlt_decoder layers, final norm)
 * whose targets are n learned grade queries ("prototype", an Embedding).  The regressor (Linear
 * d -> n) scores query i's response at its own grade i (the diagonal), the sigmoids of those n
 * scores are normalised to weights w, and the score is sum_i w_i g_i with grades g = linspace(0,
 * 1, n).  Loss: MSE against the normalised target + alpha x the hardest-triplet loss on the n
 * query embeddings of every video (cosine distance, label = grade index, margin).  GDLT's code
 * divides scores by 25 (rhythmic gymnastics' maximum); here targets map [score_min, score_max] to
 * [0, 1] and predictions back.  Names as GDLT's code: in_proj.{0,1,3,4}, transformer.encoder.*,
 * transformer.decoder.*, prototype, regressor. */
#include <stdlib.h>

#include "models/heads/seq.h"
#include "models/mvla/mvla.h"
#include "models/mvla/stages.h"
#include "nn/batchnorm.h"
#include "nn/conv.h"
#include "nn/init.h"
#include "nn/loss.h"
#include "nn/transformer.h"
#include "ops/ops.h"

typedef struct gdlt_head {
    aqa_head h;                       /* common part (first) */
    aqa_seq_z z;                      /* MVLA's Z projections */
    aqa_conv_layer *conv[2];          /* in_proj.0, in_proj.3 */
    aqa_batch_norm_layer *bn[2];      /* in_proj.1, in_proj.4 */
    aqa_transformer_encoder *encoder; /* transformer.encoder */
    aqa_transformer_decoder *decoder; /* transformer.decoder */
    aqa_embedding_layer *prototype;   /* the grade queries [n, d] */
    aqa_linear_layer *regressor;      /* d -> n */
} gdlt_head;

static aqa_head *gdlt_create(const aqa_head_config *c, aqa_module *parent, const char *name) {
    const aqa_seq_head_config *s = &c->seq;
    int64_t in = c->frame_dim, d = s->gdlt_dim;
    if (in < 2 || d < 1 || s->gdlt_heads < 1 || d % s->gdlt_heads || s->gdlt_queries < 2 || s->gdlt_encoder < 0 ||
        s->gdlt_decoder < 0)
        return aqa_fail_null("gdlt head: bad settings (frame_dim %lld, dim %lld, heads %lld, queries %lld)", (long long)in,
                             (long long)d, (long long)s->gdlt_heads, (long long)s->gdlt_queries);
    gdlt_head *m = aqa_module_new(sizeof *m, "GDLT", parent, name, NULL);
    if (!m) return NULL;
    aqa_module *b = &m->h.base;
    aqa_transformer_config tc = aqa_transformer_config_default(d, s->gdlt_heads);
    tc.dim_feedforward = 3 * d;
    tc.dropout = s->gdlt_dropout;
    tc.batch_first = true;
    aqa_module *proj = aqa_module_container(b, "in_proj"), *tr = NULL;
    if (!proj || !(m->conv[0] = aqa_conv1d_layer_new(proj, "0", in, in / 2, 1, 1, 0, 1, 1, true)) ||
        !(m->bn[0] = aqa_batch_norm1d_layer_new(proj, "1", in / 2)) ||
        !(m->conv[1] = aqa_conv1d_layer_new(proj, "3", in / 2, d, 1, 1, 0, 1, 1, true)) ||
        !(m->bn[1] = aqa_batch_norm1d_layer_new(proj, "4", d)) || !(tr = aqa_module_container(b, "transformer")) ||
        !(m->encoder = aqa_transformer_encoder_new(tr, "encoder", &tc, s->gdlt_encoder, true)) ||
        !(m->decoder = aqa_transformer_decoder_new(tr, "decoder", &tc, s->gdlt_decoder, true)) ||
        !(m->prototype = aqa_embedding_layer_new(b, "prototype", s->gdlt_queries, d)) ||
        !(m->regressor = aqa_linear_layer_new(b, "regressor", d, s->gdlt_queries, true)) || aqa_seq_z_init(&m->z, b, c))
        goto fail;
    /* GDLT's Transformer._reset_parameters: xavier_uniform on every matrix of the transformer */
    aqa_named_tensor *list = NULL;
    int n = aqa_module_named_tensors(tr, false, &list);
    aqa_status st = n < 0 ? aqa_last_status() : AQA_OK;
    for (int i = 0; i < n && !st; i++)
        if (list[i].tensor->ndim > 1) st = aqa_init_xavier_uniform_(list[i].tensor, 1.0, NULL);
    aqa_named_tensors_free(list, n);
    if (st) goto fail;
    return &m->h;
fail:
    if (!parent) aqa_module_free(b);
    return NULL;
}

/* Cosine hardest-triplet loss of embeddings e [M, d] with labels lab (I64 [M]), GDLT's
 * HardTripletLoss(hardest=True): for each anchor the farthest same-label and the nearest
 * other-label embedding, relu(d_ap - d_an + margin), averaged. */
static aqa_tensor *hardest_triplet(aqa_tensor *e, aqa_tensor *lab, double margin) {
    aqa_tensor *u = aqa_mvla_l2_normalize(e);
    aqa_tensor *dist = aqa_rsub_scalar(aqa_matmul(u, aqa_transpose(u, 0, 1)), 1.0);
    aqa_tensor *same = aqa_eq(aqa_unsqueeze(lab, 0), aqa_unsqueeze(lab, 1));
    int64_t M = e->shape[0];
    bool *eye = calloc((size_t)(M * M + 1), sizeof *eye);
    if (!eye) return aqa_fail_null("gdlt head: out of memory");
    for (int64_t i = 0; i < M; i++) eye[i * M + i] = true;
    aqa_tensor *diag = aqa_stage_on_device(aqa_from_data(eye, 2, (int64_t[]){M, M}, AQA_BOOL), e);
    free(eye);
    aqa_tensor *pos = aqa_to_dtype(aqa_logical_and(same, aqa_logical_not(diag)), e->dtype);
    aqa_tensor *d_ap = aqa_max_dim(aqa_mul(dist, pos), 1, true, NULL);
    aqa_tensor *far = aqa_max_dim(dist, 1, true, NULL);
    aqa_tensor *d_an = aqa_min_dim(aqa_add(dist, aqa_mul(far, aqa_to_dtype(same, e->dtype))), 1, true, NULL);
    return aqa_mean_all(aqa_relu(aqa_add_scalar(aqa_sub(d_ap, d_an), margin)));
}

static aqa_status gdlt_forward(aqa_head *h, const aqa_head_input *query, const aqa_head_input *exemplar,
                               aqa_tensor *exemplar_score, const aqa_head_targets *targets, aqa_head_result *out) {
    (void)exemplar;
    (void)exemplar_score;
    gdlt_head *m = (gdlt_head *)h;
    const aqa_seq_head_config *s = &h->cfg.seq;
    aqa_scope_begin();
    aqa_tensor *x = aqa_seq_input(h, &m->z, query, "gdlt");
    if (!x) return aqa_head_finish(out, AQA_EINVAL, false);
    int64_t B = x->shape[0], n = s->gdlt_queries, d = s->gdlt_dim;
    aqa_tensor *y = aqa_transpose(x, 1, 2); /* [B, C_f, T] */
    y = aqa_relu(aqa_batch_norm_layer_forward(m->bn[0], aqa_conv_layer_forward(m->conv[0], y)));
    y = aqa_batch_norm_layer_forward(m->bn[1], aqa_conv_layer_forward(m->conv[1], y));
    aqa_tensor *mem = aqa_transformer_encoder_forward(m->encoder, aqa_transpose(y, 1, 2), NULL, NULL);
    aqa_tensor *q = aqa_expand(aqa_unsqueeze(m->prototype->weight, 0), 3, (int64_t[]){B, n, d});
    aqa_tensor *q1 = aqa_transformer_decoder_forward(m->decoder, q, mem, NULL, NULL, NULL, NULL); /* [B, n, d] */
    /* query i's score at grade i: the diagonal of regressor(q1) [B, n, n] */
    double *grid = malloc(sizeof *grid * (size_t)(n * n + n));
    if (!grid) return aqa_head_finish(out, aqa_fail(AQA_ENOMEM, "gdlt head: out of memory"), false);
    for (int64_t i = 0; i < n * n; i++) grid[i] = i / n == i % n;
    for (int64_t i = 0; i < n; i++) grid[n * n + i] = (double)i / (double)(n - 1); /* torch.linspace(0, 1, n) */
    aqa_dtype dt = x->dtype;
    aqa_tensor *eye = aqa_stage_on_device(aqa_to_dtype(aqa_from_data(grid, 2, (int64_t[]){n, n}, AQA_F64), dt), x);
    aqa_tensor *grades = aqa_stage_on_device(aqa_to_dtype(aqa_from_data(grid + n * n, 1, &n, AQA_F64), dt), x);
    free(grid);
    aqa_tensor *diag = aqa_sum(aqa_mul(aqa_linear_layer_forward(m->regressor, q1), eye), 1, (int[]){-1}, false);
    aqa_tensor *w = aqa_sigmoid(diag);
    w = aqa_div(w, aqa_sum(w, 1, (int[]){1}, true));
    aqa_tensor *norm = aqa_sum(aqa_mul(w, grades), 1, (int[]){1}, false); /* [B] in [0, 1] */
    double lo = h->cfg.score_min, range = h->cfg.score_max - h->cfg.score_min;
    out->pred = aqa_seq_prediction(h, query, aqa_add_scalar(aqa_mul_scalar(norm, range), lo));
    aqa_tensor *t = aqa_seq_target(h, query, targets, norm);
    if (t) {
        aqa_tensor *loss = aqa_mse_loss(norm, aqa_div_scalar(aqa_add_scalar(t, -lo), range), AQA_REDUCTION_MEAN);
        if (s->gdlt_alpha != 0 && q1) {
            int64_t *lab = malloc(sizeof *lab * (size_t)(B * n + 1));
            if (!lab) return aqa_head_finish(out, aqa_fail(AQA_ENOMEM, "gdlt head: out of memory"), false);
            for (int64_t i = 0; i < B * n; i++) lab[i] = i % n;
            aqa_tensor *lt = aqa_stage_on_device(aqa_from_data(lab, 1, (int64_t[]){B * n}, AQA_I64), x);
            free(lab);
            aqa_tensor *tri = hardest_triplet(aqa_reshape(q1, 2, (int64_t[]){B * n, d}), lt, s->gdlt_margin);
            loss = aqa_add(loss, aqa_mul_scalar(tri, s->gdlt_alpha));
        }
        out->loss = loss;
    }
    return aqa_head_finish(out, AQA_OK, t != NULL);
}

const aqa_head_ops aqa_head_gdlt = {"gdlt", false, gdlt_create, gdlt_forward};
