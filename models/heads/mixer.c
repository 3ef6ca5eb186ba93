/* mixer.c: the MLP-Mixer head of Fis-V's tables, Skating-Mixer's scoring head (Xia et al., AAAI
 * 2023, "Skating-Mixer: long-term sport audio-visual modeling with MLPs"), on video features only.
 *
 * The clip sequence is read in steps of n = mixer_tokens clips.  At each step the tokens
 * [memory, linear1(clips)..., cls] (n + 2 tokens of width d) go through mixer_depth mixer blocks
 * (pre-norm residual token mixing: 1x1 Conv1d over the tokens n+2 -> e(n+2) -> n+2 with GELU;
 * pre-norm residual channel mixing: Linear d -> e d -> d with GELU); the memory token's output is
 * the next step's memory (the memory recurrent unit, starting from the learned "hidden_state"),
 * the cls token's output through hidden_linear is the step's output.  A second pass reads the
 * steps in reverse order with the token order reversed ([cls, clips, memory]).  The score is
 * output.linear of the mean over steps of both passes' outputs (averaged); loss MSE.  Skating-
 * Mixer's audio tokens are absent here (no audio), which is the only change.  Names as its code:
 * hidden_state, cls_token, linear1, linear_forward.<i>.{0,1}.{fn.0, fn.3, norm}, layer_norm (built,
 * unused, as there), hidden_linear, output.linear. */
#include <stdio.h>

#include "models/heads/seq.h"
#include "nn/conv.h"
#include "nn/loss.h"
#include "nn/norm_layer.h"
#include "ops/ops.h"

#define MIXER_MAX_DEPTH 16

/* One mixer block. */
typedef struct mixer_block {
    aqa_conv_layer *tok[2];         /* <i>.0.fn.0 / fn.3: token mixing */
    aqa_layer_norm_layer *tok_norm; /* <i>.0.norm */
    aqa_linear_layer *ch[2];        /* <i>.1.fn.0 / fn.3: channel mixing */
    aqa_layer_norm_layer *ch_norm;  /* <i>.1.norm */
} mixer_block;

typedef struct mixer_head {
    aqa_head h;                              /* common part (first) */
    aqa_seq_z z;                             /* MVLA's Z projections */
    aqa_tensor *hidden_state;                /* [1, d] initial memory token */
    aqa_tensor *cls_token;                   /* [1, d] */
    aqa_linear_layer *linear1;               /* C_f -> d */
    mixer_block blocks[MIXER_MAX_DEPTH];     /* linear_forward.<i> */
    aqa_layer_norm_layer *layer_norm;        /* unused, as in Skating-Mixer */
    aqa_linear_layer *hidden_linear;         /* d -> d on the cls output */
    aqa_linear_layer *output;                /* output.linear: d -> 1 */
} mixer_head;

static aqa_head *mixer_create(const aqa_head_config *c, aqa_module *parent, const char *name) {
    const aqa_seq_head_config *s = &c->seq;
    int64_t d = s->mixer_dim, n = s->mixer_tokens + 2, e = s->mixer_expansion;
    if (d < 1 || s->mixer_tokens < 1 || e < 1 || s->mixer_depth < 1 || s->mixer_depth > MIXER_MAX_DEPTH)
        return aqa_fail_null("mixer head: bad settings (dim %lld, tokens %lld, depth %d)", (long long)d,
                             (long long)s->mixer_tokens, s->mixer_depth);
    mixer_head *m = aqa_module_new(sizeof *m, "scoring_head", parent, name, NULL);
    if (!m) return NULL;
    aqa_module *b = &m->h.base, *lf = NULL, *out = NULL;
    if (!(m->hidden_state = aqa_module_param(b, "hidden_state", aqa_randn(AQA_SHAPE(1, d), AQA_F32, NULL))) ||
        !(m->cls_token = aqa_module_param(b, "cls_token", aqa_randn(AQA_SHAPE(1, d), AQA_F32, NULL))) ||
        !(m->linear1 = aqa_linear_layer_new(b, "linear1", c->frame_dim, d, true)) ||
        !(lf = aqa_module_container(b, "linear_forward")))
        goto fail;
    for (int i = 0; i < s->mixer_depth; i++) {
        char idx[16];
        snprintf(idx, sizeof idx, "%d", i);
        mixer_block *k = &m->blocks[i];
        aqa_module *blk = aqa_module_container(lf, idx);
        aqa_module *t = blk ? aqa_module_container(blk, "0") : NULL, *tf = t ? aqa_module_container(t, "fn") : NULL;
        aqa_module *ch = blk ? aqa_module_container(blk, "1") : NULL, *cf = ch ? aqa_module_container(ch, "fn") : NULL;
        if (!tf || !cf || !(k->tok[0] = aqa_conv1d_layer_new(tf, "0", n, n * e, 1, 1, 0, 1, 1, true)) ||
            !(k->tok[1] = aqa_conv1d_layer_new(tf, "3", n * e, n, 1, 1, 0, 1, 1, true)) ||
            !(k->tok_norm = aqa_layer_norm_layer_new(t, "norm", 1, &d, 1e-5, true)) ||
            !(k->ch[0] = aqa_linear_layer_new(cf, "0", d, d * e, true)) ||
            !(k->ch[1] = aqa_linear_layer_new(cf, "3", d * e, d, true)) ||
            !(k->ch_norm = aqa_layer_norm_layer_new(ch, "norm", 1, &d, 1e-5, true)))
            goto fail;
    }
    if (!(m->layer_norm = aqa_layer_norm_layer_new(b, "layer_norm", 1, &d, 1e-5, true)) ||
        !(m->hidden_linear = aqa_linear_layer_new(b, "hidden_linear", d, d, true)) ||
        !(out = aqa_module_container(b, "output")) || !(m->output = aqa_linear_layer_new(out, "linear", d, 1, true)) ||
        aqa_seq_z_init(&m->z, b, c))
        goto fail;
    return &m->h;
fail:
    if (!parent) aqa_module_free(b);
    return NULL;
}

/* The mixer blocks on tokens [B, n + 2, d]. */
static aqa_tensor *mix(mixer_head *m, aqa_tensor *x) {
    for (int i = 0; i < m->h.cfg.seq.mixer_depth; i++) {
        const mixer_block *k = &m->blocks[i];
        aqa_tensor *t = aqa_layer_norm_layer_forward(k->tok_norm, x); /* Conv1d over the token dim */
        x = aqa_add(aqa_conv_layer_forward(k->tok[1], aqa_gelu(aqa_conv_layer_forward(k->tok[0], t))), x);
        aqa_tensor *c = aqa_layer_norm_layer_forward(k->ch_norm, x);
        x = aqa_add(aqa_linear_layer_forward(k->ch[1], aqa_gelu(aqa_linear_layer_forward(k->ch[0], c))), x);
    }
    return x;
}

/* One direction over the steps of x [B, S, n, d] (reverse: last step first, tokens reversed); the
 * mean of its cls outputs [B, d]. */
static aqa_tensor *pass(mixer_head *m, aqa_tensor *x, bool reverse) {
    int64_t B = x->shape[0], S = x->shape[1], n = x->shape[2], d = x->shape[3];
    aqa_tensor *mem = aqa_expand(aqa_unsqueeze(m->hidden_state, 0), 3, (int64_t[]){B, 1, d});
    aqa_tensor *cls = aqa_expand(aqa_unsqueeze(m->cls_token, 0), 3, (int64_t[]){B, 1, d});
    aqa_tensor *sum = NULL;
    for (int64_t j = 0; j < S; j++) {
        aqa_tensor *step = aqa_select(x, 1, reverse ? S - 1 - j : j);
        aqa_tensor *tok = aqa_cat(reverse ? (aqa_tensor *[]){cls, step, mem} : (aqa_tensor *[]){mem, step, cls}, 3, 1);
        aqa_tensor *o = mix(m, tok);
        mem = aqa_narrow(o, 1, reverse ? n + 1 : 0, 1);
        aqa_tensor *c = aqa_linear_layer_forward(m->hidden_linear, aqa_narrow(o, 1, reverse ? 0 : n + 1, 1));
        sum = sum ? aqa_add(sum, c) : c;
    }
    return aqa_div_scalar(aqa_reshape(sum, 2, (int64_t[]){B, d}), (double)S);
}

static aqa_status mixer_forward(aqa_head *h, const aqa_head_input *query, const aqa_head_input *exemplar,
                                aqa_tensor *exemplar_score, const aqa_head_targets *targets, aqa_head_result *out) {
    (void)exemplar;
    (void)exemplar_score;
    mixer_head *m = (mixer_head *)h;
    int64_t n = h->cfg.seq.mixer_tokens, d = h->cfg.seq.mixer_dim;
    aqa_scope_begin();
    aqa_tensor *x = aqa_seq_input(h, &m->z, query, "mixer");
    if (x && x->shape[1] % n)
        x = aqa_fail_null("mixer head: %lld steps do not split into steps of %lld clips (mixer_tokens)",
                          (long long)x->shape[1], (long long)n);
    if (!x) return aqa_head_finish(out, AQA_EINVAL, false);
    int64_t B = x->shape[0], S = x->shape[1] / n;
    aqa_tensor *t = aqa_view(aqa_linear_layer_forward(m->linear1, aqa_contiguous(x)), 4, (int64_t[]){B, S, n, d});
    aqa_tensor *f = aqa_add(pass(m, t, false), pass(m, t, true));
    aqa_tensor *y = aqa_linear_layer_forward(m->output, aqa_mul_scalar(f, 0.5));
    y = y ? aqa_reshape(y, 1, (int64_t[]){B}) : NULL;
    out->pred = aqa_seq_prediction(h, query, y);
    aqa_tensor *tg = aqa_seq_target(h, query, targets, y);
    if (tg) out->loss = aqa_mse_loss(y, tg, AQA_REDUCTION_MEAN);
    return aqa_head_finish(out, AQA_OK, tg != NULL);
}

const aqa_head_ops aqa_head_mixer = {"mixer", false, mixer_create, mixer_forward};
