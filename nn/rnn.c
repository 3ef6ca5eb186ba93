/* rnn.c: LSTM and GRU layers, as PyTorch's (see rnn.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "nn/dropout.h"
#include "nn/init.h"
#include "nn/linear.h"
#include "nn/rnn.h"
#include "ops/ops.h"

aqa_rnn_config aqa_rnn_config_default(int64_t input_size, int64_t hidden_size) {
    return (aqa_rnn_config){.input_size = input_size,
                            .hidden_size = hidden_size,
                            .num_layers = 1,
                            .bias = true,
                            .batch_first = false,
                            .dropout = 0.0,
                            .bidirectional = false};
}

static const char *mode_name(aqa_rnn_mode mode) { return mode == AQA_RNN_LSTM ? "LSTM" : "GRU"; }
static int64_t mode_gates(aqa_rnn_mode mode) { return mode == AQA_RNN_LSTM ? 4 : 3; }

static void rnn_destroy(aqa_module *base) { free(((aqa_rnn_layer *)base)->params); }

static aqa_rnn_layer *rnn_new(aqa_rnn_mode mode, aqa_module *parent, const char *name, const aqa_rnn_config *cfg) {
    const char *type = mode_name(mode);
    if (!name) name = "";
    if (!cfg) return aqa_fail_null("%s %s: NULL config", type, name);
    if (cfg->input_size <= 0 || cfg->hidden_size <= 0 || cfg->num_layers < 1)
        return aqa_fail_null("%s %s: input_size %lld, hidden_size %lld and num_layers %d must be positive", type, name,
                             (long long)cfg->input_size, (long long)cfg->hidden_size, cfg->num_layers);
    if (!(cfg->dropout >= 0 && cfg->dropout <= 1))
        return aqa_fail_null("%s %s: dropout %g not in [0, 1]", type, name, cfg->dropout);
    aqa_rnn_layer *m = aqa_module_new(sizeof *m, type, parent, name, rnn_destroy);
    if (!m) return NULL;
    m->mode = mode;
    m->cfg = *cfg;
    m->num_directions = cfg->bidirectional ? 2 : 1;
    int64_t H = cfg->hidden_size, G = mode_gates(mode) * H;
    int n = cfg->num_layers * m->num_directions;
    if (!(m->params = calloc((size_t)n * 4, sizeof *m->params))) {
        aqa_fail(AQA_ENOMEM, "%s %s: out of memory", type, name);
        goto fail;
    }
    /* torch's reset_parameters: every parameter U(-1/sqrt(H), 1/sqrt(H)) in registration order */
    double bound = 1.0 / sqrt((double)H);
    static const char *const kinds[4] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
    for (int k = 0; k < cfg->num_layers; k++)
        for (int d = 0; d < m->num_directions; d++)
            for (int w = 0; w < 4; w++) {
                char pname[64];
                snprintf(pname, sizeof pname, "%s_l%d%s", kinds[w], k, d ? "_reverse" : "");
                if (w >= 2 && !cfg->bias) continue; /* torch registers no bias at all */
                int64_t in = k == 0 ? cfg->input_size : m->num_directions * H;
                aqa_tensor *t = w == 0 ? aqa_empty(AQA_SHAPE(G, in), AQA_F32)
                                : w == 1 ? aqa_empty(AQA_SHAPE(G, H), AQA_F32)
                                         : aqa_empty(AQA_SHAPE(G), AQA_F32);
                if (!t || aqa_init_uniform_(t, -bound, bound, NULL) != AQA_OK ||
                    !(m->params[(k * m->num_directions + d) * 4 + w] = aqa_module_param(&m->base, pname, t))) {
                    aqa_tensor_free(t);
                    goto fail;
                }
            }
    return m;
fail:
    if (!parent) aqa_module_free(&m->base);
    return NULL;
}

aqa_rnn_layer *aqa_lstm_layer_new(aqa_module *parent, const char *name, const aqa_rnn_config *cfg) {
    return rnn_new(AQA_RNN_LSTM, parent, name, cfg);
}

aqa_rnn_layer *aqa_gru_layer_new(aqa_module *parent, const char *name, const aqa_rnn_config *cfg) {
    return rnn_new(AQA_RNN_GRU, parent, name, cfg);
}

aqa_tensor *aqa_rnn_param(const aqa_rnn_layer *m, int layer, int direction, int which) {
    if (!m || layer < 0 || layer >= m->cfg.num_layers || direction < 0 || direction >= m->num_directions || which < 0 ||
        which > 3)
        return NULL;
    return m->params[(layer * m->num_directions + direction) * 4 + which];
}

/* One LSTM step: gates [N, 4H] (x and h terms summed), *c updated; returns h. */
static aqa_tensor *lstm_cell(aqa_tensor *gates, aqa_tensor **c, int64_t H) {
    aqa_tensor *s = aqa_sigmoid(gates); /* i, f, o from one pass; the g quarter is unused */
    aqa_tensor *i = aqa_narrow(s, -1, 0, H), *f = aqa_narrow(s, -1, H, H), *o = aqa_narrow(s, -1, 3 * H, H);
    aqa_tensor *g = aqa_tanh(aqa_narrow(gates, -1, 2 * H, H));
    *c = aqa_add(aqa_mul(f, *c), aqa_mul(i, g));
    return aqa_mul(o, aqa_tanh(*c));
}

/* One GRU step: gi [N, 3H] the input terms (with b_ih), gh [N, 3H] the hidden terms (with b_hh). */
static aqa_tensor *gru_cell(aqa_tensor *gi, aqa_tensor *gh, aqa_tensor *h, int64_t H) {
    aqa_tensor *rz = aqa_sigmoid(aqa_add(aqa_narrow(gi, -1, 0, 2 * H), aqa_narrow(gh, -1, 0, 2 * H)));
    aqa_tensor *r = aqa_narrow(rz, -1, 0, H), *z = aqa_narrow(rz, -1, H, H);
    aqa_tensor *n = aqa_tanh(aqa_add(aqa_narrow(gi, -1, 2 * H, H), aqa_mul(r, aqa_narrow(gh, -1, 2 * H, H))));
    return aqa_add(n, aqa_mul(z, aqa_sub(h, n))); /* (1 - z) n + z h */
}

/* One direction of one layer over inp [L, N, in]: *h (and *c for LSTM) are the initial states on
 * entry and the final ones on return.  Returns the hidden states [L, N, H] in time order. */
static aqa_tensor *run_direction(aqa_rnn_layer *m, int layer, int dir, aqa_tensor *inp, aqa_tensor **h, aqa_tensor **c) {
    int64_t L = inp->shape[0], H = m->cfg.hidden_size;
    aqa_tensor *w_hh = aqa_rnn_param(m, layer, dir, 1), *b_hh = aqa_rnn_param(m, layer, dir, 3);
    /* the input terms of every step in one GEMM */
    aqa_tensor *xp = aqa_linear(inp, aqa_rnn_param(m, layer, dir, 0), aqa_rnn_param(m, layer, dir, 2));
    aqa_tensor **outs = calloc((size_t)L, sizeof *outs);
    if (!xp || !outs) {
        free(outs);
        return xp ? aqa_fail_null("%s: out of memory", mode_name(m->mode)) : NULL;
    }
    bool ok = true;
    for (int64_t s = 0; s < L && ok; s++) {
        int64_t t = dir ? L - 1 - s : s;
        aqa_tensor *gh = aqa_linear(*h, w_hh, b_hh), *gi = aqa_select(xp, 0, t);
        *h = m->mode == AQA_RNN_LSTM ? lstm_cell(aqa_add(gi, gh), c, H) : gru_cell(gi, gh, *h, H);
        ok = (outs[t] = *h) != NULL;
    }
    aqa_tensor *y = ok ? aqa_stack(outs, (int)L, 0) : NULL;
    free(outs);
    return y;
}

/* The initial state [D*num_layers, N, H] given (checked) or zeros. */
static aqa_tensor *initial_state(aqa_rnn_layer *m, aqa_tensor *s0, const char *what, int64_t N, bool unbatched,
                                 aqa_dtype dtype, aqa_device dev) {
    int64_t DL = (int64_t)m->num_directions * m->cfg.num_layers, H = m->cfg.hidden_size;
    if (!s0) return aqa_full_on(AQA_SHAPE(DL, N, H), 0.0, dtype, dev);
    int nd = unbatched ? 2 : 3;
    if (s0->ndim != nd || s0->shape[0] != DL || s0->shape[nd - 1] != H || (!unbatched && s0->shape[1] != N)) {
        char got[64], want[96];
        if (unbatched) snprintf(want, sizeof want, "[%lld, %lld]", (long long)DL, (long long)H);
        else snprintf(want, sizeof want, "[%lld, %lld, %lld]", (long long)DL, (long long)N, (long long)H);
        return aqa_fail_null("%s %s: %s has shape %s, expected %s (num_layers * num_directions, %shidden_size)",
                             mode_name(m->mode), m->base.name, what, aqa_shape_str(s0, got, sizeof got), want,
                             unbatched ? "" : "batch, ");
    }
    return unbatched ? aqa_unsqueeze(s0, 1) : s0;
}

/* The whole stack; c0/c_n only for LSTM. */
static aqa_tensor *rnn_forward(aqa_rnn_layer *m, aqa_rnn_mode mode, aqa_tensor *x, aqa_tensor *h0, aqa_tensor *c0,
                               aqa_tensor **h_n, aqa_tensor **c_n) {
    if (h_n) *h_n = NULL;
    if (c_n) *c_n = NULL;
    if (!m || !x) return aqa_fail_null("aqa_%s_layer_forward: NULL %s", mode == AQA_RNN_LSTM ? "lstm" : "gru", m ? "input" : "module");
    const char *type = mode_name(mode);
    if (m->mode != mode) return aqa_fail_null("%s forward called on a %s module %s", type, mode_name(m->mode), m->base.name);
    if ((x->ndim != 2 && x->ndim != 3) || x->shape[x->ndim - 1] != m->cfg.input_size) {
        char got[64];
        return aqa_fail_null("%s %s: input has shape %s, expected [L, N, %lld]%s or [L, %lld] unbatched", type,
                             m->base.name, aqa_shape_str(x, got, sizeof got), (long long)m->cfg.input_size,
                             m->cfg.batch_first ? " ([N, L, .] batch_first)" : "", (long long)m->cfg.input_size);
    }
    if (!aqa_dtype_is_float(x->dtype)) return aqa_fail_null("%s %s: input must be floating, not %s", type, m->base.name, aqa_dtype_name(x->dtype));
    bool unbatched = x->ndim == 2;
    aqa_scope_begin();
    /* time-major [L, N, in] views */
    aqa_tensor *inp = unbatched ? aqa_unsqueeze(x, 1) : m->cfg.batch_first ? aqa_transpose(x, 0, 1) : x;
    if (inp->shape[0] < 1) {
        aqa_fail(AQA_EINVAL, "%s %s: empty sequence", type, m->base.name);
        inp = NULL;
    }
    aqa_dtype dt = x->dtype == AQA_F64 || m->params[0]->dtype == AQA_F64 ? AQA_F64 : AQA_F32;
    int64_t N = inp ? inp->shape[1] : 0;
    aqa_tensor *h_all = inp ? initial_state(m, h0, "h0", N, unbatched, dt, aqa_tensor_device(x)) : NULL;
    aqa_tensor *c_all = inp && mode == AQA_RNN_LSTM ? initial_state(m, c0, "c0", N, unbatched, dt, aqa_tensor_device(x)) : NULL;
    int D = m->num_directions, NL = m->cfg.num_layers;
    aqa_tensor **hs = calloc((size_t)(2 * D * NL), sizeof *hs), **cs = hs ? hs + D * NL : NULL;
    bool ok = h_all && (mode == AQA_RNN_GRU || c_all) && hs;
    for (int k = 0; ok && k < NL; k++) {
        aqa_tensor *ys[2];
        for (int d = 0; ok && d < D; d++) {
            int i = k * D + d;
            hs[i] = aqa_select(h_all, 0, i);
            cs[i] = c_all ? aqa_select(c_all, 0, i) : NULL;
            ok = (ys[d] = run_direction(m, k, d, inp, &hs[i], &cs[i])) != NULL;
        }
        if (!ok) break;
        inp = D == 2 ? aqa_cat(ys, 2, -1) : ys[0];
        if (k < NL - 1 && m->cfg.dropout > 0) inp = aqa_dropout(inp, m->cfg.dropout, m->base.training, m->gen);
        ok = inp != NULL;
    }
    aqa_tensor *y = NULL;
    if (ok) {
        y = unbatched ? aqa_squeeze(inp, 1) : m->cfg.batch_first ? aqa_transpose(inp, 0, 1) : inp;
        aqa_tensor *hn = aqa_stack(hs, D * NL, 0), *cn = c_all ? aqa_stack(cs, D * NL, 0) : NULL;
        if (unbatched) {
            hn = aqa_squeeze(hn, 1);
            cn = cn ? aqa_squeeze(cn, 1) : NULL;
        }
        if (!hn || (c_all && !cn)) y = NULL;
        if (y && h_n) *h_n = aqa_keep(hn);
        if (y && c_n) *c_n = aqa_keep(cn);
    }
    if (!ok && !hs) aqa_fail(AQA_ENOMEM, "%s %s: out of memory", type, m->base.name);
    free(hs);
    if (y) aqa_keep(y);
    aqa_scope_end();
    return y;
}

aqa_tensor *aqa_lstm_layer_forward(aqa_rnn_layer *m, aqa_tensor *x, aqa_tensor *h0, aqa_tensor *c0, aqa_tensor **h_n,
                                   aqa_tensor **c_n) {
    return rnn_forward(m, AQA_RNN_LSTM, x, h0, c0, h_n, c_n);
}

aqa_tensor *aqa_gru_layer_forward(aqa_rnn_layer *m, aqa_tensor *x, aqa_tensor *h0, aqa_tensor **h_n) {
    return rnn_forward(m, AQA_RNN_GRU, x, h0, NULL, h_n, NULL);
}
