/* mslstm.c: MS-LSTM, the multi-scale convolutional skip LSTM and self-attentive LSTM of Xu et al.
 * (TCSVT 2019, "Learning to score figure skating sport videos"), the Fis-V baseline.
 *
 * The clip sequence [B, T, C_f] -> conv (1x1 Conv1d -> 128, ReLU, BatchNorm1d) -> x [B, T, 128];
 *   S-LSTM: A = softmax over time of linear_2(tanh(linear_1(x))) [B, T, 50] (50 attention
 *           descriptors), M = attn.bn(x^T A) [B, 50, 128], an LSTM over the 50 descriptors, its
 *           last output; penalty ||A^T A - I||_F^2 / B;
 *   M-LSTM: three scales (Conv1d k 2/4/8, stride 1/2/4, 256 filters, ReLU, BatchNorm1d) each read
 *           by a skip LSTM (Campos et al.: a binary state-update gate, rounded with a
 *           straight-through gradient, decides at each step whether the state is updated), its
 *           last output;
 * each of the four through Linear -> 64 + ReLU, concatenated, linear_merge -> 64 + ReLU, cls -> 1.
 * Loss: MSE + the penalty.  Names as MS_LSTM's code (conv.{0,2}, scale<k>.conv.{0,2},
 * scale<k>.lstm.{weight_uh, bias_uh, weight_ih.0, weight_hh.0, bias_ih.0, bias_hh.0},
 * attn.{linear_1, linear_2, bn}, lstm.*_l0, linear_skip1..3, linear_attn, linear_merge, cls).
 * The original draws random initial skip-LSTM states at every call; they start at zero here, so
 * that a prediction is a function of the video. */
#include <stdio.h>
#include <stdlib.h>

#include "models/heads/seq.h"
#include "models/mvla/stages.h"
#include "nn/batchnorm.h"
#include "nn/conv.h"
#include "nn/init.h"
#include "nn/loss.h"
#include "nn/rnn.h"
#include "ops/ops.h"

/* Skip LSTM cell parameters (CSkipLSTMCell). */
typedef struct skip_lstm {
    aqa_tensor *w_ih, *w_hh, *b_ih, *b_hh; /* weight_ih.0 [4H, in], weight_hh.0 [4H, H], bias_*.0 [4H] */
    aqa_tensor *w_uh, *b_uh;               /* weight_uh [1, H], bias_uh [1] */
} skip_lstm;

/* One scale: Conv1d + ReLU + BatchNorm1d, then a skip LSTM. */
typedef struct conv_lstm {
    aqa_conv_layer *conv;     /* conv.0 */
    aqa_batch_norm_layer *bn; /* conv.2 */
    skip_lstm lstm;           /* lstm */
} conv_lstm;

typedef struct mslstm_head {
    aqa_head h;                       /* common part (first) */
    aqa_seq_z z;                      /* MVLA's Z projections */
    aqa_conv_layer *conv;             /* conv.0: C_f -> 128 */
    aqa_batch_norm_layer *bn;         /* conv.2 */
    conv_lstm scale[3];               /* scale1..3 */
    aqa_linear_layer *attn1, *attn2;  /* attn.linear_1, attn.linear_2 (no bias) */
    aqa_batch_norm_layer *attn_bn;    /* attn.bn */
    aqa_rnn_layer *lstm;              /* lstm: 128 -> H over the descriptors */
    aqa_linear_layer *skip[3];        /* linear_skip1..3 */
    aqa_linear_layer *lin_attn;       /* linear_attn */
    aqa_linear_layer *merge;          /* linear_merge */
    aqa_linear_layer *cls;            /* cls: -> 1 */
} mslstm_head;

/* A parameter of `shape` registered as `name` in m (or m's child container `list` as "0"),
 * initialised xavier-uniform (matrices) or to `fill`. */
static aqa_tensor *skip_param(aqa_module *m, const char *list, const char *name, int ndim, const int64_t *shape,
                              double fill) {
    aqa_module *owner = list ? aqa_module_container(m, list) : m;
    aqa_tensor *t = owner ? aqa_empty(ndim, shape, AQA_F32) : NULL;
    if (!t || (ndim > 1 ? aqa_init_xavier_uniform_(t, 1.0, NULL) : aqa_fill_(t, fill)) != AQA_OK ||
        !aqa_module_param(owner, name, t)) {
        aqa_tensor_free(t);
        return NULL;
    }
    return t;
}

static bool conv_lstm_new(conv_lstm *s, aqa_module *parent, const char *name, int64_t in, int64_t filters,
                          int64_t kernel, int64_t stride, int64_t H) {
    aqa_module *m = aqa_module_container(parent, name);
    aqa_module *seq = m ? aqa_module_container(m, "conv") : NULL;
    aqa_module *l = m ? aqa_module_container(m, "lstm") : NULL;
    if (!seq || !l || !(s->conv = aqa_conv1d_layer_new(seq, "0", in, filters, kernel, stride, 0, 1, 1, true)) ||
        !(s->bn = aqa_batch_norm1d_layer_new(seq, "2", filters)))
        return false;
    /* the cell's own parameters first, then its ParameterLists (torch's state_dict order) */
    skip_lstm *k = &s->lstm;
    return (k->w_uh = skip_param(l, NULL, "weight_uh", 2, (int64_t[]){1, H}, 0)) &&
           (k->b_uh = skip_param(l, NULL, "bias_uh", 1, (int64_t[]){1}, 1.0)) &&
           (k->w_ih = skip_param(l, "weight_ih", "0", 2, (int64_t[]){4 * H, filters}, 0)) &&
           (k->w_hh = skip_param(l, "weight_hh", "0", 2, (int64_t[]){4 * H, H}, 0)) &&
           (k->b_ih = skip_param(l, "bias_ih", "0", 1, (int64_t[]){4 * H}, 0)) &&
           (k->b_hh = skip_param(l, "bias_hh", "0", 1, (int64_t[]){4 * H}, 0));
}

static aqa_head *mslstm_create(const aqa_head_config *c, aqa_module *parent, const char *name) {
    const aqa_seq_head_config *s = &c->seq;
    int64_t cw = s->mslstm_conv, H = s->mslstm_hidden, F = s->mslstm_filters, mg = s->mslstm_merge;
    if (c->frame_dim < 1 || cw < 1 || H < 1 || F < 1 || mg < 1 || s->mslstm_attn_hidden < 1 || s->mslstm_descriptors < 1)
        return aqa_fail_null("mslstm head: bad settings");
    mslstm_head *m = aqa_module_new(sizeof *m, "Scoring", parent, name, NULL);
    if (!m) return NULL;
    aqa_module *b = &m->h.base, *conv = aqa_module_container(b, "conv"), *attn = NULL;
    aqa_rnn_config rc = aqa_rnn_config_default(cw, H);
    rc.batch_first = true;
    static const int64_t kernel[3] = {2, 4, 8}, stride[3] = {1, 2, 4};
    if (!conv || !(m->conv = aqa_conv1d_layer_new(conv, "0", c->frame_dim, cw, 1, 1, 0, 1, 1, true)) ||
        !(m->bn = aqa_batch_norm1d_layer_new(conv, "2", cw)))
        goto fail;
    for (int k = 0; k < 3; k++) {
        char nm[16];
        snprintf(nm, sizeof nm, "scale%d", k + 1);
        if (!conv_lstm_new(&m->scale[k], b, nm, cw, F, kernel[k], stride[k], H)) goto fail;
    }
    if (!(attn = aqa_module_container(b, "attn")) ||
        !(m->attn1 = aqa_linear_layer_new(attn, "linear_1", cw, s->mslstm_attn_hidden, false)) ||
        !(m->attn2 = aqa_linear_layer_new(attn, "linear_2", s->mslstm_attn_hidden, s->mslstm_descriptors, false)) ||
        !(m->attn_bn = aqa_batch_norm1d_layer_new(attn, "bn", cw)) || !(m->lstm = aqa_lstm_layer_new(b, "lstm", &rc)))
        goto fail;
    for (int k = 0; k < 3; k++) {
        char nm[16];
        snprintf(nm, sizeof nm, "linear_skip%d", k + 1);
        if (!(m->skip[k] = aqa_linear_layer_new(b, nm, H, mg, true))) goto fail;
    }
    if (!(m->lin_attn = aqa_linear_layer_new(b, "linear_attn", H, mg, true)) ||
        !(m->merge = aqa_linear_layer_new(b, "linear_merge", 4 * mg, mg, true)) ||
        !(m->cls = aqa_linear_layer_new(b, "cls", mg, 1, true)) || aqa_seq_z_init(&m->z, b, c))
        goto fail;
    return &m->h;
fail:
    if (!parent) aqa_module_free(b);
    return NULL;
}

/* The skip LSTM over x [B, L, in] from zero states; its last output [B, H]. */
static aqa_tensor *skip_lstm_last(const skip_lstm *k, aqa_tensor *x, int64_t H) {
    int64_t B = x->shape[0], L = x->shape[1];
    aqa_device dev = aqa_tensor_device(x);
    aqa_tensor *h = aqa_full_on(AQA_SHAPE(B, H), 0.0, x->dtype, dev), *c = aqa_full_on(AQA_SHAPE(B, H), 0.0, x->dtype, dev);
    aqa_tensor *u = aqa_full_on(AQA_SHAPE(B, 1), 1.0, x->dtype, dev), *cum = aqa_full_on(AQA_SHAPE(B, 1), 0.0, x->dtype, dev);
    aqa_tensor *xp = aqa_linear(x, k->w_ih, k->b_ih); /* the input terms of every step at once */
    for (int64_t t = 0; t < L; t++) {
        aqa_tensor *g = aqa_add(aqa_select(xp, 1, t), aqa_linear(h, k->w_hh, k->b_hh));
        aqa_tensor *sg = aqa_sigmoid(g);
        aqa_tensor *c_new = aqa_add(aqa_mul(aqa_narrow(sg, 1, H, H), c), aqa_mul(aqa_narrow(sg, 1, 0, H), aqa_tanh(aqa_narrow(g, 1, 2 * H, H))));
        aqa_tensor *h_new = aqa_mul(aqa_narrow(sg, 1, 3 * H, H), aqa_tanh(c_new));
        aqa_tensor *u_new = aqa_sigmoid(aqa_linear(c_new, k->w_uh, k->b_uh));
        cum = aqa_add(cum, aqa_minimum(u, aqa_rsub_scalar(cum, 1.0)));
        /* round(cum) (cum <= 1, ties to even: > 0.5) with a straight-through gradient; exact values */
        aqa_tensor *gate = aqa_add(aqa_to_dtype(aqa_gt_scalar(aqa_detach(cum), 0.5), x->dtype), aqa_sub(cum, aqa_detach(cum)));
        aqa_tensor *keep = aqa_rsub_scalar(gate, 1.0);
        c = aqa_add(aqa_mul(gate, c_new), aqa_mul(keep, c));
        h = aqa_add(aqa_mul(gate, h_new), aqa_mul(keep, h));
        u = aqa_add(aqa_mul(gate, u_new), aqa_mul(keep, u));
        cum = aqa_mul(keep, cum);
    }
    return h;
}

static aqa_status mslstm_forward(aqa_head *h, const aqa_head_input *query, const aqa_head_input *exemplar,
                                 aqa_tensor *exemplar_score, const aqa_head_targets *targets, aqa_head_result *out) {
    (void)exemplar;
    (void)exemplar_score;
    mslstm_head *m = (mslstm_head *)h;
    const aqa_seq_head_config *s = &h->cfg.seq;
    int64_t H = s->mslstm_hidden, D = s->mslstm_descriptors;
    aqa_scope_begin();
    aqa_tensor *x = aqa_seq_input(h, &m->z, query, "mslstm");
    if (x && x->shape[1] < 8)
        x = aqa_fail_null("mslstm head: needs at least 8 steps (its largest scale is a kernel of 8), got %lld",
                          (long long)x->shape[1]);
    if (!x) return aqa_head_finish(out, AQA_EINVAL, false);
    int64_t B = x->shape[0];
    aqa_tensor *xc = aqa_batch_norm_layer_forward(m->bn, aqa_relu(aqa_conv_layer_forward(m->conv, aqa_transpose(x, 1, 2))));
    aqa_tensor *xt = aqa_transpose(xc, 1, 2); /* [B, T, 128] */
    /* S-LSTM */
    aqa_tensor *A = aqa_softmax(aqa_linear_layer_forward(m->attn2, aqa_tanh(aqa_linear_layer_forward(m->attn1, xt))), 1);
    aqa_tensor *M = aqa_transpose(aqa_batch_norm_layer_forward(m->attn_bn, aqa_matmul(xc, A)), 1, 2); /* [B, D, 128] */
    double *eye = calloc((size_t)(D * D), sizeof *eye);
    if (!eye) return aqa_head_finish(out, aqa_fail(AQA_ENOMEM, "mslstm head: out of memory"), false);
    for (int64_t i = 0; i < D; i++) eye[i * D + i] = 1.0;
    aqa_tensor *I = aqa_stage_on_device(aqa_to_dtype(aqa_from_data(eye, 2, (int64_t[]){D, D}, AQA_F64), x->dtype), x);
    free(eye);
    aqa_tensor *penal = aqa_div_scalar(aqa_sum_all(aqa_square(aqa_sub(aqa_matmul(aqa_transpose(A, 1, 2), A), I))), (double)B);
    aqa_tensor *ya = aqa_lstm_layer_forward(m->lstm, M, NULL, NULL, NULL, NULL);
    aqa_tensor *branch[4];
    for (int k = 0; k < 3; k++) {
        const conv_lstm *sc = &m->scale[k];
        aqa_tensor *f = aqa_batch_norm_layer_forward(sc->bn, aqa_relu(aqa_conv_layer_forward(sc->conv, xc)));
        aqa_tensor *last = f ? skip_lstm_last(&sc->lstm, aqa_transpose(f, 1, 2), H) : NULL;
        branch[k] = aqa_relu(aqa_linear_layer_forward(m->skip[k], last));
    }
    branch[3] = aqa_relu(aqa_linear_layer_forward(m->lin_attn, ya ? aqa_select(ya, 1, ya->shape[1] - 1) : NULL));
    aqa_tensor *y = aqa_linear_layer_forward(m->cls, aqa_relu(aqa_linear_layer_forward(m->merge, aqa_cat(branch, 4, 1))));
    y = y ? aqa_reshape(y, 1, (int64_t[]){B}) : NULL;
    out->pred = aqa_seq_prediction(h, query, y);
    aqa_tensor *t = aqa_seq_target(h, query, targets, y);
    if (t) out->loss = aqa_add(aqa_mse_loss(y, t, AQA_REDUCTION_MEAN), penal);
    return aqa_head_finish(out, AQA_OK, t != NULL);
}

const aqa_head_ops aqa_head_mslstm = {"mslstm", false, mslstm_create, mslstm_forward};
