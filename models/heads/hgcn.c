/* hgcn.c: HGCN, hierarchical graph convolutional networks for AQA (Zhou et al., TCSVT 2023).
 *
 * The N clip features (nodes) pass three levels, each a graph convolution (nn/graph_conv.h: raw
 * adjacency, grouped 1x1 weights as HGCN's Conv1d(groups=g)) followed by ReLU:
 *   shot_gen (clip refinement): a state branch (1x1 conv to C/factor, ReLU) gives
 *     A = (mean_c tanh(s_n - s_m) + I) * band(|n - m| < 2); clips are refined over A (-> dims[0]);
 *   scene_gen (scene construction): shot_gcn aggregates the shots over softmax(band_k + B(x))
 *     (-> dims[1]) where B(x) = alpha q^T k / sqrt(c) + C is a learned attention adjacency
 *     (adp_adj: 1x1 convs conv_q/conv_k, C initialised to I, alpha to 1); trans_gcn (the same with
 *     one group, -> `scenes` channels, plus S + alpha T) gives each shot's weight in each scene;
 *     the scenes are the shots pooled by those weights [B, scenes, dims[1]];
 *   mot_agg (motion aggregation over the scenes, off by default as in HGCN's code: a 1x1 conv
 *     instead): softmax(lower-triangular * B(x)) (-> dims[2]).
 * fc2_mean / fc2_logvar (1x1 convs -> 1) give each scene's score distribution; the score is the
 * mean over scenes x scenes of mu + std eps (eps ~ N(0, 1) in training when hgcn_sample; HGCN
 * also samples at test time, here evaluation uses mu).  Loss: sum over the batch of (score x DD
 * with use_difficulty - target)^2 (HGCN's MSELoss(reduction='sum')).  Names as HGCN's code. */
#include <math.h>
#include <stdlib.h>

#include "models/heads/seq.h"
#include "models/mvla/stages.h"
#include "nn/conv.h"
#include "nn/graph_conv.h"
#include "ops/ops.h"

/* HGCN's attAdj: B(x) = alpha (conv_q x)^T (conv_k x) / sqrt(c) + C. */
typedef struct att_adj {
    aqa_tensor *C, *alpha;         /* [N, N] (I), [1, 1] (1) */
    aqa_conv_layer *conv_q, *conv_k; /* 1x1, no bias */
    int64_t channels;              /* c */
} att_adj;

/* A graph level: an attention adjacency and the aggregation convolution. */
typedef struct gcn_level {
    att_adj adj;                /* adp_adj (adp_A in the motion level) */
    aqa_conv_layer *agg;        /* shot_agg.0 / mot_agg.0 */
    aqa_tensor *S, *alpha;      /* trans_gcn only: [scenes, N] (ones), [1, 1] (1) */
} gcn_level;

typedef struct hgcn_head {
    aqa_head h;                     /* common part (first) */
    aqa_seq_z z;                    /* MVLA's Z projections */
    aqa_conv_layer *state, *info;   /* shot_gen.state_gen.0, shot_gen.info_trans.0 (or shot_gen.mlp.0 in info) */
    gcn_level shot, trans;          /* scene_gen.shot_gcn, scene_gen.trans_gcn */
    aqa_conv_layer *scene_mlp;      /* scene_gen.mlp.0 without the scene graph */
    gcn_level motion;               /* mot_agg (adp_A, mot_agg.0) */
    aqa_conv_layer *motion_mlp;     /* mot_agg.mlp.0 without the motion graph */
    aqa_conv_layer *mean, *logvar;  /* fc2_mean, fc2_logvar */
} hgcn_head;

static aqa_conv_layer *conv1x1(aqa_module *parent, const char *name, int64_t in, int64_t out, int64_t groups, bool bias) {
    return aqa_conv1d_layer_new(parent, name, in, out, 1, 1, 0, 1, groups, bias);
}

/* A parameter of ones (or the identity when eye) of shape [r, c]. */
static aqa_tensor *const_param(aqa_module *m, const char *name, int64_t r, int64_t c, bool eye) {
    double *v = malloc(sizeof *v * (size_t)(r * c));
    if (!v) return aqa_fail_null("hgcn head: out of memory");
    for (int64_t i = 0; i < r * c; i++) v[i] = eye ? (double)(i / c == i % c) : 1.0;
    aqa_tensor *t = aqa_to_dtype(aqa_from_data(v, 2, (int64_t[]){r, c}, AQA_F64), AQA_F32);
    free(v);
    aqa_tensor *kept = t ? aqa_module_param(m, name, aqa_keep(t)) : NULL;
    if (t && !kept) aqa_tensor_free(t);
    return kept;
}

static bool att_adj_new(att_adj *a, aqa_module *parent, const char *name, int64_t in, int64_t out, int64_t N,
                        int64_t groups) {
    aqa_module *m = aqa_module_container(parent, name);
    a->channels = out;
    aqa_scope_begin();
    bool ok = m && (a->C = const_param(m, "C", N, N, true)) && (a->alpha = const_param(m, "alpha", 1, 1, true)) &&
              (a->conv_q = conv1x1(m, "conv_q", in, out, groups, false)) &&
              (a->conv_k = conv1x1(m, "conv_k", in, out, groups, false));
    aqa_scope_end();
    return ok;
}

/* The level's parameters (trans: also S and alpha); agg named `agg_seq`.0. */
static bool level_new(gcn_level *l, aqa_module *m, const char *adj_name, const char *agg_seq, int64_t in, int64_t out,
                      int64_t N, int64_t groups, int64_t factor, int64_t scenes) {
    aqa_module *seq = NULL;
    if (!att_adj_new(&l->adj, m, adj_name, in, in / factor, N, groups) || !(seq = aqa_module_container(m, agg_seq)) ||
        !(l->agg = conv1x1(seq, "0", in, out, groups, true)))
        return false;
    if (scenes <= 0) return true;
    aqa_scope_begin();
    bool ok = (l->S = const_param(m, "S", scenes, N, false)) && (l->alpha = const_param(m, "alpha", 1, 1, true));
    aqa_scope_end();
    return ok;
}

static aqa_head *hgcn_create(const aqa_head_config *c, aqa_module *parent, const char *name) {
    const aqa_seq_head_config *s = &c->seq;
    int64_t N = s->len, g = s->hgcn_groups, f = s->hgcn_factor, S = s->hgcn_scenes, in = c->frame_dim;
    const int64_t *d = s->hgcn_dims;
    bool ok = N >= 2 && g >= 1 && f >= 1 && S >= 1 && s->hgcn_k >= 1 && in % g == 0 && in % f == 0 &&
              (in / f) % g == 0 && d[0] % g == 0 && d[1] % g == 0 && d[2] % g == 0 && d[0] % f == 0 &&
              (d[0] / f) % g == 0 && d[1] % f == 0 && (d[1] / f) % g == 0;
    if (!ok)
        return aqa_fail_null("hgcn head: bad settings (seq.len %lld clips >= 2; frame_dim %lld, dims %lld/%lld/%lld and "
                             "their / factor %lld must divide into %lld groups)",
                             (long long)N, (long long)in, (long long)d[0], (long long)d[1], (long long)d[2], (long long)f,
                             (long long)g);
    hgcn_head *m = aqa_module_new(sizeof *m, "hgcn", parent, name, NULL);
    if (!m) return NULL;
    aqa_module *b = &m->h.base;
    aqa_module *shot = aqa_module_container(b, "shot_gen"), *scene = aqa_module_container(b, "scene_gen");
    aqa_module *mot = aqa_module_container(b, "mot_agg");
    if (!shot || !scene || !mot) goto fail;
    if (s->hgcn_refine) {
        aqa_module *st = aqa_module_container(shot, "state_gen"), *it = aqa_module_container(shot, "info_trans");
        if (!st || !it || !(m->state = conv1x1(st, "0", in, in / f, g, true)) || !(m->info = conv1x1(it, "0", in, d[0], g, true)))
            goto fail;
    } else {
        aqa_module *ml = aqa_module_container(shot, "mlp");
        if (!ml || !(m->info = conv1x1(ml, "0", in, d[0], g, true))) goto fail;
    }
    if (s->hgcn_scene_graph) {
        aqa_module *sg = aqa_module_container(scene, "shot_gcn"), *tg = aqa_module_container(scene, "trans_gcn");
        if (!sg || !tg || !level_new(&m->shot, sg, "adp_adj", "shot_agg", d[0], d[1], N, g, f, 0) ||
            !level_new(&m->trans, tg, "adp_adj", "shot_agg", d[0], S, N, 1, f, S))
            goto fail;
    } else {
        aqa_module *ml = aqa_module_container(scene, "mlp");
        if (!ml || !(m->scene_mlp = conv1x1(ml, "0", d[0], d[1], g, true))) goto fail;
    }
    if (s->hgcn_motion_graph) {
        if (!level_new(&m->motion, mot, "adp_A", "mot_agg", d[1], d[2], S, g, f, 0)) goto fail;
    } else {
        aqa_module *ml = aqa_module_container(mot, "mlp");
        if (!ml || !(m->motion_mlp = conv1x1(ml, "0", d[1], d[2], g, true))) goto fail;
    }
    if (!(m->mean = conv1x1(b, "fc2_mean", d[2], 1, 1, true)) || !(m->logvar = conv1x1(b, "fc2_logvar", d[2], 1, 1, true)) ||
        aqa_seq_z_init(&m->z, b, c))
        goto fail;
    return &m->h;
fail:
    if (!parent) aqa_module_free(b);
    return NULL;
}

/* [n, n] constant on like's device: kind 0 the band |i - j| < k, 1 the identity, 2 lower triangle. */
static aqa_tensor *fixed_adj(int64_t n, int kind, int64_t k, const aqa_tensor *like) {
    double *v = malloc(sizeof *v * (size_t)(n * n));
    if (!v) return aqa_fail_null("hgcn head: out of memory");
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++)
            v[i * n + j] = kind == 0 ? (double)(llabs(i - j) < k) : kind == 1 ? (double)(i == j) : (double)(j <= i);
    aqa_tensor *t = aqa_stage_on_device(aqa_to_dtype(aqa_from_data(v, 2, (int64_t[]){n, n}, AQA_F64), like->dtype), like);
    free(v);
    return t;
}

/* 1x1 (grouped) convolution on node-major x [B, N, C] -> [B, N, out]. */
static aqa_tensor *conv_nodes(aqa_conv_layer *c, aqa_tensor *x) {
    return aqa_transpose(aqa_conv_layer_forward(c, aqa_transpose(x, 1, 2)), 1, 2);
}

/* HGCN's "h = einsum('bcn,bnm->bcm', x, A); relu(conv(h))" on node-major x: a graph convolution
 * over A^T with the conv's grouped weight. */
static aqa_tensor *aggregate(aqa_conv_layer *c, aqa_tensor *x, aqa_tensor *A) {
    aqa_tensor *w = aqa_view(c->weight, 2, (int64_t[]){c->weight->shape[0], c->weight->shape[1]});
    return aqa_relu(aqa_graph_conv(x, aqa_transpose(A, -1, -2), w, c->bias,
                                   &(aqa_graph_conv_opts){.raw = true, .groups = c->opts.groups}));
}

/* attAdj without softmax: [B, N, N]. */
static aqa_tensor *att(const att_adj *a, aqa_tensor *x) {
    aqa_tensor *q = conv_nodes(a->conv_q, x), *k = conv_nodes(a->conv_k, x); /* [B, N, c] */
    aqa_tensor *s = aqa_div_scalar(aqa_matmul(q, aqa_transpose(k, 1, 2)), sqrt((double)a->channels));
    return aqa_add(aqa_mul(s, a->alpha), a->C);
}

/* The level on x [B, N, C]: softmax(base + B(x)) (motion: softmax(base * B(x))), aggregation. */
static aqa_tensor *level(const gcn_level *l, aqa_tensor *x, aqa_tensor *base, bool multiply) {
    aqa_tensor *b = att(&l->adj, x);
    aqa_tensor *A = aqa_softmax(multiply ? aqa_mul(base, b) : aqa_add(base, b), -1);
    return aggregate(l->agg, x, A);
}

static aqa_status hgcn_forward(aqa_head *h, const aqa_head_input *query, const aqa_head_input *exemplar,
                               aqa_tensor *exemplar_score, const aqa_head_targets *targets, aqa_head_result *out) {
    (void)exemplar;
    (void)exemplar_score;
    hgcn_head *m = (hgcn_head *)h;
    const aqa_seq_head_config *s = &h->cfg.seq;
    aqa_scope_begin();
    aqa_tensor *x = aqa_seq_input(h, &m->z, query, "hgcn");
    if (!x) return aqa_head_finish(out, AQA_EINVAL, false);
    int64_t B = x->shape[0], N = x->shape[1], S = s->hgcn_scenes;
    /* shots [B, N, dims[0]] */
    aqa_tensor *shot;
    if (m->state) {
        aqa_tensor *st = aqa_relu(conv_nodes(m->state, x));                                /* [B, N, c] */
        aqa_tensor *diff = aqa_sub(aqa_unsqueeze(st, 2), aqa_unsqueeze(st, 1));           /* [B, n, m, c] */
        aqa_tensor *A = aqa_add(aqa_mean(aqa_tanh(diff), 1, (int[]){-1}, false), fixed_adj(N, 1, 0, x));
        shot = aggregate(m->info, x, aqa_mul(A, fixed_adj(N, 0, 2, x)));
    } else {
        shot = aqa_relu(conv_nodes(m->info, x));
    }
    /* scenes [B, S, dims[1]] */
    aqa_tensor *scene;
    if (m->scene_mlp) {
        scene = aqa_relu(conv_nodes(m->scene_mlp, shot));
    } else {
        aqa_tensor *band = fixed_adj(N, 0, s->hgcn_k, x);
        aqa_tensor *hs = level(&m->shot, shot, band, false);                               /* [B, N, dims[1]] */
        aqa_tensor *T = aqa_add(m->trans.S, aqa_mul(aqa_transpose(level(&m->trans, shot, band, false), 1, 2), m->trans.alpha));
        scene = aqa_matmul(T, hs);                                                          /* [B, S, dims[1]] */
    }
    aqa_tensor *v = m->motion_mlp ? aqa_relu(conv_nodes(m->motion_mlp, scene))
                                  : level(&m->motion, scene, fixed_adj(S, 2, 0, x), true); /* [B, S, dims[2]] */
    aqa_tensor *mu = conv_nodes(m->mean, v), *sc = mu;                                      /* [B, S, 1] */
    if (s->hgcn_sample && h->base.training && mu) {
        aqa_tensor *eps = aqa_stage_on_device(aqa_randn(3, mu->shape, mu->dtype, NULL), mu);
        sc = aqa_add(mu, aqa_mul(aqa_exp(aqa_mul_scalar(conv_nodes(m->logvar, v), 0.5)), eps));
    }
    aqa_tensor *y = sc ? aqa_mul_scalar(aqa_mean(aqa_reshape(sc, 2, (int64_t[]){B, S}), 1, (int[]){1}, false), (double)S) : NULL;
    out->pred = aqa_seq_prediction(h, query, y);
    bool train = targets && targets->score;
    if (train && out->pred) {
        aqa_tensor *t = aqa_stage_on_device(aqa_to_dtype(aqa_reshape(targets->score, 1, (int64_t[]){B}), y->dtype), y);
        out->loss = aqa_sum_all(aqa_square(aqa_sub(out->pred, t)));
    }
    return aqa_head_finish(out, AQA_OK, train);
}

const aqa_head_ops aqa_head_hgcn = {"hgcn", false, hgcn_create, hgcn_forward};
