/* graph_conv.c: dense graph convolution (see graph_conv.h), composed of differentiable ops. */
#include <math.h>
#include <stdlib.h>

#include "nn/graph_conv.h"
#include "nn/init.h"
#include "ops/ops.h"

/* Bool [N, N] identity on dev. */
static aqa_tensor *eye_mask(int64_t N, aqa_device dev) {
    bool *v = calloc((size_t)(N * N > 0 ? N * N : 1), sizeof *v);
    if (!v) return aqa_fail_null("graph conv: out of memory");
    for (int64_t i = 0; i < N; i++) v[i * N + i] = true;
    aqa_tensor *t = aqa_to_device(aqa_from_data(v, AQA_SHAPE(N, N), AQA_BOOL), dev);
    free(v);
    return t;
}

aqa_tensor *aqa_gcn_norm_adjacency(aqa_tensor *adj) {
    if (!adj) return aqa_fail_null("aqa_gcn_norm_adjacency: NULL adjacency");
    int64_t N = adj->ndim >= 2 ? adj->shape[adj->ndim - 1] : -1;
    if (adj->ndim < 2 || adj->shape[adj->ndim - 2] != N) {
        char got[64];
        return aqa_fail_null("aqa_gcn_norm_adjacency: adjacency has shape %s, expected [..., N, N]",
                             aqa_shape_str(adj, got, sizeof got));
    }
    aqa_scope_begin();
    aqa_tensor *looped = aqa_masked_fill(adj, eye_mask(N, aqa_tensor_device(adj)), 1.0);
    /* deg^-1/2, degrees below 1 counted as 1 (their gradient stops there, as torch's clamp) */
    aqa_tensor *d = aqa_rsqrt(aqa_clamp(aqa_sum(looped, 1, (const int[]){-1}, false), 1.0, INFINITY));
    aqa_tensor *y = aqa_mul(aqa_mul(aqa_unsqueeze(d, -1), looped), aqa_unsqueeze(d, -2));
    aqa_keep(y);
    aqa_scope_end();
    return y;
}

/* x W^T for x [..., in] and a grouped weight [out, in / g]: each group of in / g channels maps to
 * its out / g outputs (one batched GEMM over the groups). */
static aqa_tensor *grouped_linear(aqa_tensor *x, aqa_tensor *weight, int64_t g) {
    if (g == 1) return aqa_linear(x, weight, NULL);
    int64_t in = x->shape[x->ndim - 1], out = weight->shape[0], rows = aqa_numel(x) / (in ? in : 1);
    aqa_tensor *xg = aqa_permute(aqa_reshape(x, 3, (int64_t[]){rows, g, in / g}), (const int[]){1, 0, 2}); /* [g, rows, in/g] */
    aqa_tensor *wg = aqa_transpose(aqa_reshape(weight, 3, (int64_t[]){g, out / g, in / g}), 1, 2);       /* [g, in/g, out/g] */
    aqa_tensor *y = aqa_permute(aqa_matmul(xg, wg), (const int[]){1, 0, 2});                              /* [rows, g, out/g] */
    int64_t shape[AQA_MAX_DIMS];
    for (int i = 0; i < x->ndim - 1; i++) shape[i] = x->shape[i];
    shape[x->ndim - 1] = out;
    return aqa_reshape(y, x->ndim, shape);
}

aqa_tensor *aqa_graph_conv(aqa_tensor *x, aqa_tensor *adj, aqa_tensor *weight, aqa_tensor *bias,
                           const aqa_graph_conv_opts *opts) {
    aqa_graph_conv_opts o = opts ? *opts : (aqa_graph_conv_opts){0};
    int64_t g = o.groups > 0 ? o.groups : 1;
    aqa_tensor *mask = o.mask;
    if (!x || !adj || !weight) return aqa_fail_null("aqa_graph_conv: NULL %s", !x ? "x" : !adj ? "adjacency" : "weight");
    char s1[64], s2[64];
    if (x->ndim != 2 && x->ndim != 3)
        return aqa_fail_null("aqa_graph_conv: x has shape %s, expected [B, N, in] or [N, in]", aqa_shape_str(x, s1, sizeof s1));
    int64_t N = x->shape[x->ndim - 2], B = x->ndim == 3 ? x->shape[0] : 1, in = x->shape[x->ndim - 1];
    if (weight->ndim != 2 || in % g || weight->shape[0] % g || weight->shape[1] * g != in)
        return aqa_fail_null("aqa_graph_conv: weight has shape %s, expected [out, %lld] (in %lld / groups %lld; out "
                             "divisible by groups)",
                             aqa_shape_str(weight, s1, sizeof s1), (long long)(in / g), (long long)in, (long long)g);
    bool adj_ok = (adj->ndim == 2 || (adj->ndim == 3 && x->ndim == 3 && (adj->shape[0] == B || adj->shape[0] == 1))) &&
                  adj->shape[adj->ndim - 1] == N && adj->shape[adj->ndim - 2] == N;
    if (!adj_ok)
        return aqa_fail_null("aqa_graph_conv: adjacency has shape %s, expected [N, N] or [B, N, N] for x %s",
                             aqa_shape_str(adj, s1, sizeof s1), aqa_shape_str(x, s2, sizeof s2));
    if (mask && !(mask->ndim == 2 && x->ndim == 3 && mask->shape[0] == B && mask->shape[1] == N))
        return aqa_fail_null("aqa_graph_conv: mask has shape %s, expected [B, N] for x %s",
                             aqa_shape_str(mask, s1, sizeof s1), aqa_shape_str(x, s2, sizeof s2));
    aqa_scope_begin();
    aqa_tensor *a = o.raw ? adj : aqa_gcn_norm_adjacency(adj);
    aqa_tensor *y = aqa_matmul(a, grouped_linear(x, weight, g)); /* PyG's order: transform, then propagate */
    if (y && bias) y = aqa_add(y, bias);
    if (y && mask) y = aqa_mul(y, aqa_unsqueeze(aqa_to_dtype(mask, y->dtype), -1));
    aqa_keep(y);
    aqa_scope_end();
    return y;
}

aqa_graph_conv_layer *aqa_graph_conv_layer_new(aqa_module *parent, const char *name, int64_t in_channels,
                                               int64_t out_channels, bool bias, bool normalize, int64_t num_nodes,
                                               aqa_tensor *adj_init) {
    if (!name) name = "";
    if (in_channels <= 0 || out_channels <= 0 || num_nodes < 0)
        return aqa_fail_null("DenseGCNConv %s: bad sizes (in %lld, out %lld, num_nodes %lld)", name,
                             (long long)in_channels, (long long)out_channels, (long long)num_nodes);
    if (adj_init && (num_nodes == 0 || adj_init->ndim != 2 || adj_init->shape[0] != num_nodes ||
                     adj_init->shape[1] != num_nodes)) {
        char got[64];
        return aqa_fail_null("DenseGCNConv %s: adj_init has shape %s, expected [%lld, %lld] (num_nodes)", name,
                             aqa_shape_str(adj_init, got, sizeof got), (long long)num_nodes, (long long)num_nodes);
    }
    aqa_graph_conv_layer *m = aqa_module_new(sizeof *m, "DenseGCNConv", parent, name, NULL);
    if (!m) return NULL;
    m->in_channels = in_channels;
    m->out_channels = out_channels;
    m->normalize = normalize;
    /* PyG registers lin, then bias (a module's own tensors precede its children's in state_dict) */
    if (!(m->lin = aqa_linear_layer_new(&m->base, "lin", in_channels, out_channels, false)) ||
        aqa_init_xavier_uniform_(m->lin->weight, 1.0, NULL) != AQA_OK)
        goto fail;
    if (!bias) {
        aqa_module_param(&m->base, "bias", NULL);
    } else {
        aqa_tensor *b = aqa_zeros(AQA_SHAPE(out_channels), AQA_F32);
        if (!b || !(m->bias = aqa_module_param(&m->base, "bias", b))) {
            aqa_tensor_free(b);
            goto fail;
        }
    }
    if (num_nodes > 0) {
        /* a float32 CPU copy of adj_init (never sharing its storage), or the identity */
        aqa_scope_begin();
        aqa_tensor *a = adj_init ? aqa_clone(aqa_to_device(aqa_to_dtype(aqa_detach(adj_init), AQA_F32), AQA_DEVICE_CPU))
                                 : aqa_to_dtype(eye_mask(num_nodes, AQA_DEVICE_CPU), AQA_F32);
        aqa_keep(a);
        aqa_scope_end();
        if (!a || !(m->adj = aqa_module_param(&m->base, "adj", a))) {
            aqa_tensor_free(a);
            goto fail;
        }
    }
    return m;
fail:
    if (!parent) aqa_module_free(&m->base);
    return NULL;
}

aqa_tensor *aqa_graph_conv_layer_forward(aqa_graph_conv_layer *m, aqa_tensor *x, aqa_tensor *adj, aqa_tensor *mask) {
    if (!m) return aqa_fail_null("aqa_graph_conv_layer_forward: NULL module");
    if (!adj && !m->adj)
        return aqa_fail_null("DenseGCNConv %s: no adjacency given and none learned (num_nodes 0)", m->base.name);
    return aqa_graph_conv(x, adj ? adj : m->adj, m->lin->weight, m->bias,
                          &(aqa_graph_conv_opts){.raw = !m->normalize, .mask = mask});
}
