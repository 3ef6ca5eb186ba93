/* attention.c: the fused scale+mask+softmax op, scaled dot-product attention and the
 * MultiheadAttention module (PyTorch's packed in-projection, masks and averaged weights).
 * On CUDA the fused op runs as one kernel (aqa__cuda_attention_softmax, nn_cuda-impl.h), and
 * scaled dot-product attention without dropout as one kernel that never stores the scores
 * (aqa__cuda_attention_forward; its backward recomputes the probabilities with GEMMs and the
 * fused softmax; AQA_ATTENTION_FUSED=0 turns it off). */
#include "config.h" /* AQA_HAVE_CUDA */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/autograd.h"
#include "nn/attention.h"
#include "nn/dropout.h"
#include "nn/init.h"
#include "nn/layers-impl.h"
#include "nn/nn_cuda-impl.h"
#include "tensor/backend.h"
#include "ops/ops.h"
#include "tensor/tensor-impl.h"

#define PAR_MIN_WORK 32768

/* ---- fused scale + mask + causal, then softmax ----------------------------------------------------- */

/* Geometry of the pre-pass: rows of length S over the leading dims of the scores. */
typedef struct prepass_geom {
    int nrow_dims;                   /* scores->ndim - 1 */
    int64_t row_shape[AQA_MAX_DIMS]; /* sizes of the row dims */
    int64_t mstride[AQA_MAX_DIMS];   /* mask strides (0 where broadcast) of the row dims */
    int64_t ms_last;                 /* mask stride along the key dim */
    int64_t L;                       /* size of dim -2 (query index for causal) */
} prepass_geom;

/* dst[r, j] = src[r, j] * scale + mask[r, j]; -inf for j > r % L when causal.  dst may be src. */
#define DEFINE_PREPASS(NAME, T)                                                                        \
    static void NAME(T *dst, const T *src, int64_t R, int64_t S, T scale, const T *mask,              \
                     const prepass_geom *g, bool causal) {                                             \
        _Pragma("omp parallel for if (R * S > PAR_MIN_WORK) schedule(static)")                         \
        for (int64_t r = 0; r < R; r++) {                                                              \
            T *d = dst + r * S;                                                                        \
            const T *s = src + r * S;                                                                  \
            if (mask) {                                                                                \
                int64_t rem = r, off = 0;                                                              \
                for (int k = g->nrow_dims - 1; k >= 0; k--) {                                          \
                    off += (rem % g->row_shape[k]) * g->mstride[k];                                    \
                    rem /= g->row_shape[k];                                                            \
                }                                                                                      \
                const T *m = mask + off;                                                               \
                if (g->ms_last == 1) {                                                                 \
                    _Pragma("omp simd") for (int64_t j = 0; j < S; j++) d[j] = s[j] * scale + m[j];    \
                } else {                                                                               \
                    int64_t ms = g->ms_last;                                                           \
                    for (int64_t j = 0; j < S; j++) d[j] = s[j] * scale + m[j * ms];                   \
                }                                                                                      \
            } else {                                                                                   \
                _Pragma("omp simd") for (int64_t j = 0; j < S; j++) d[j] = s[j] * scale;               \
            }                                                                                          \
            if (causal)                                                                                \
                for (int64_t j = r % g->L + 1; j < S; j++) d[j] = (T)-INFINITY;                        \
        }                                                                                              \
    }
DEFINE_PREPASS(prepass_f32, float)
DEFINE_PREPASS(prepass_f64, double)

/* saved[0] = y (the probabilities); reals[0] = scale */
static void attn_softmax_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    aqa_tensor *y = n->saved[0];
    double scale = n->reals[0];
    aqa_device dev = aqa_tensor_device(y);
    const aqa_backend *be = aqa_backend_for(dev);
    aqa_tensor *gx = be ? aqa__new_unowned(y->ndim, y->shape, y->dtype, dev) : NULL;
    if (!gx) return;
    if (be->softmax_backward(gx, g, y, y->ndim - 1, false) != AQA_OK) {
        aqa__release(gx);
        return;
    }
    aqa__own(gx);
    if (n->n_inputs > 1 && n->needs_grad[1]) {
        grad_in[1] = gx; /* d(scale * s + m)/dm = 1 */
        if (n->needs_grad[0]) grad_in[0] = aqa_mul_scalar(gx, scale);
    } else if (n->needs_grad[0]) {
        if (scale != 1.0) aqa_mul_scalar_(gx, scale);
        grad_in[0] = gx;
    }
}

/* Composed form for devices without the pre-pass kernel. */
static aqa_tensor *attn_softmax_composed(aqa_tensor *scores, aqa_tensor *mask, double scale, bool causal) {
    aqa_scope_begin();
    aqa_tensor *t = scale != 1.0 ? aqa_mul_scalar(scores, scale) : scores;
    if (mask) t = aqa_add(t, mask);
    if (causal) {
        int64_t L = scores->shape[scores->ndim - 2], S = scores->shape[scores->ndim - 1];
        aqa_tensor *i = aqa_arange(0, (double)L, 1, AQA_I64), *j = aqa_arange(0, (double)S, 1, AQA_I64);
        aqa_tensor *above = aqa_gt(aqa_unsqueeze(j, 0), aqa_unsqueeze(i, 1));
        t = aqa_masked_fill(t, aqa_to_device(above, aqa_tensor_device(scores)), -INFINITY);
    }
    aqa_tensor *y = aqa_softmax(t, -1);
    aqa_keep(y);
    aqa_scope_end();
    return y;
}

/* The fused kernels' result: out (unowned until now) is owned by the caller's scope, and its
 * autograd node keeps out itself and the scale, all that attn_softmax_backward needs. */
static aqa_tensor *own_and_record(aqa_tensor *out, aqa_tensor *scores, aqa_tensor *mask, double scale) {
    aqa__own(out);
    aqa_node *n = aqa_node_record("attention_softmax", attn_softmax_backward, mask ? 2 : 1,
                                  (aqa_tensor *[]){scores, mask}, out);
    if (n) {
        aqa_node_save(n, out);
        n->reals[0] = scale;
    }
    return out;
}

/* The op; may_overwrite lets internal callers reuse a private scores buffer for the pre-pass. */
static aqa_tensor *attn_softmax(aqa_tensor *scores, aqa_tensor *mask, double scale, bool causal, bool may_overwrite) {
    if (!aqa__check_inputs("aqa_attention_softmax", 1, &scores)) return NULL;
    if (mask && !aqa__check_inputs("aqa_attention_softmax", 2, (aqa_tensor *[]){scores, mask})) return NULL;
    char b1[64], b2[64];
    if (scores->ndim < 2 || !aqa_dtype_is_float(scores->dtype))
        return aqa_fail_null("aqa_attention_softmax: scores must be floating with >= 2 dims, got %s %s",
                             aqa_dtype_name(scores->dtype), aqa_shape_str(scores, b1, sizeof b1));
    if (mask) {
        int nd;
        int64_t bs[AQA_MAX_DIMS];
        if (!aqa__broadcast_shapes("aqa_attention_softmax", scores->ndim, scores->shape, mask->ndim, mask->shape, &nd, bs))
            return NULL;
        if (nd != scores->ndim || memcmp(bs, scores->shape, sizeof(int64_t) * (size_t)nd) != 0)
            return aqa_fail_null("aqa_attention_softmax: mask %s does not broadcast to scores %s",
                                 aqa_shape_str(mask, b1, sizeof b1), aqa_shape_str(scores, b2, sizeof b2));
        if (mask->dtype == AQA_BOOL)
            return aqa_fail_null("aqa_attention_softmax: the mask must be additive (floating), not bool");
        if (mask->dtype != scores->dtype) {
            aqa_scope_begin();
            aqa_tensor *out = attn_softmax(scores, aqa_to_dtype(mask, scores->dtype), scale, causal, may_overwrite);
            aqa_keep(out);
            aqa_scope_end();
            return out;
        }
    }
    aqa_device dev = aqa_tensor_device(scores);
    int nd = scores->ndim;
    int64_t S = scores->shape[nd - 1], R = S > 0 ? aqa_numel(scores) / S : 0;
#ifdef AQA_HAVE_CUDA
    /* CUDA: scale, mask, causal and softmax in one kernel (rows contiguous, up to 8192 keys) */
    if (dev.kind == AQA_CUDA && !aqa__nn_force_composed && S > 0 && S <= 8192 &&
        (scores->stride[nd - 1] == 1 || S == 1)) {
        bool prev = aqa_set_grad_enabled(false);
        aqa_scope_begin();
        aqa_tensor *mv = mask ? aqa_expand(mask, nd, scores->shape) : NULL;
        aqa_tensor *out = (!mask || mv) ? aqa__new_unowned(nd, scores->shape, scores->dtype, dev) : NULL;
        if (out && aqa__cuda_attention_softmax(out, scores, mv, scale, causal) != AQA_OK) {
            aqa__release(out);
            out = NULL;
        }
        aqa_scope_end();
        aqa_set_grad_enabled(prev);
        if (!out) return NULL;
        return own_and_record(out, scores, mask, scale);
    }
#endif
    if (dev.kind != AQA_CPU || aqa__nn_force_composed) return attn_softmax_composed(scores, mask, scale, causal);
    const aqa_backend *be = aqa_backend_for(dev);
    aqa_tensor *work = NULL, *out = NULL;
    bool pre = mask || causal || scale != 1.0;
    if (pre) {
        bool inplace = may_overwrite && aqa_is_contiguous(scores);
        if (inplace) {
            work = scores;
            aqa__retain(work);
        } else {
            work = aqa__new_unowned(nd, scores->shape, scores->dtype, dev);
            if (!work) return NULL;
        }
        aqa_tensor *src = scores;
        if (!aqa_is_contiguous(scores)) { /* gather first, then transform in place */
            if (be->copy(work, scores) != AQA_OK) {
                aqa__release(work);
                return NULL;
            }
            src = work;
        }
        prepass_geom g = {.nrow_dims = nd - 1, .L = scores->shape[nd - 2], .ms_last = 0};
        for (int d = 0; d < nd - 1; d++) {
            g.row_shape[d] = scores->shape[d];
            int md = d - (nd - (mask ? mask->ndim : 0));
            g.mstride[d] = mask && md >= 0 && mask->shape[md] != 1 ? mask->stride[md] : 0;
        }
        if (mask) g.ms_last = mask->shape[mask->ndim - 1] != 1 ? mask->stride[mask->ndim - 1] : 0;
        if (scores->dtype == AQA_F32)
            prepass_f32(aqa_data(work), aqa_data(src), R, S, (float)scale, mask ? aqa_data(mask) : NULL, &g, causal);
        else
            prepass_f64(aqa_data(work), aqa_data(src), R, S, scale, mask ? aqa_data(mask) : NULL, &g, causal);
    }
    out = aqa__new_unowned(nd, scores->shape, scores->dtype, dev);
    if (!out || be->softmax(out, pre ? work : scores, nd - 1, false) != AQA_OK) {
        aqa__release(out);
        aqa__release(work);
        return NULL;
    }
    aqa__release(work);
    return own_and_record(out, scores, mask, scale);
}

aqa_tensor *aqa_attention_softmax(aqa_tensor *scores, aqa_tensor *mask, double scale, bool causal) {
    return attn_softmax(scores, mask, scale, causal, false);
}

aqa_tensor *aqa_causal_mask(int64_t L, aqa_dtype dtype) {
    if (L < 0) return aqa_fail_null("aqa_causal_mask: negative size %lld", (long long)L);
    if (!aqa_dtype_is_float(dtype)) return aqa_fail_null("aqa_causal_mask: dtype must be floating");
    aqa_scope_begin();
    aqa_tensor *i = aqa_arange(0, (double)L, 1, AQA_I64);
    aqa_tensor *above = aqa_gt(aqa_unsqueeze(i, 0), aqa_unsqueeze(i, 1));
    aqa_tensor *m = aqa_masked_fill(aqa_zeros(AQA_SHAPE(L, L), dtype), above, -INFINITY);
    aqa_keep(m);
    aqa_scope_end();
    return m;
}

/* ---- scores = scale * q @ k^T as one op (the scale rides on the GEMM's alpha) ------------------------ */

/* A view of t with its last two dims swapped (unowned). */
static aqa_tensor *swap_last(const aqa_tensor *t) {
    int64_t shape[AQA_MAX_DIMS], stride[AQA_MAX_DIMS];
    int nd = t->ndim;
    for (int d = 0; d < nd; d++) {
        shape[d] = t->shape[d];
        stride[d] = t->stride[d];
    }
    shape[nd - 2] = t->shape[nd - 1];
    shape[nd - 1] = t->shape[nd - 2];
    stride[nd - 2] = t->stride[nd - 1];
    stride[nd - 1] = t->stride[nd - 2];
    return aqa__alias_unowned(t, nd, shape, stride, t->offset);
}

/* saved[0] = q, saved[1] = k (broadcast to the common batch shape); reals[0] = scale */
static void scores_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    aqa_tensor *q = n->saved[0], *k = n->saved[1];
    double scale = n->reals[0];
    aqa_device dev = aqa_tensor_device(g);
    const aqa_backend *be = aqa_backend_for(dev);
    if (!be) return;
    if (n->needs_grad[0]) { /* gq = scale * g @ k */
        aqa_tensor *gq = aqa__new_unowned(q->ndim, q->shape, q->dtype, dev);
        if (gq && be->matmul(gq, g, k, scale, 0.0) == AQA_OK) grad_in[0] = aqa__own(gq);
        else aqa__release(gq);
    }
    if (n->needs_grad[1]) { /* gk = scale * g^T @ q */
        aqa_tensor *gt = swap_last(g);
        aqa_tensor *gk = gt ? aqa__new_unowned(k->ndim, k->shape, k->dtype, dev) : NULL;
        if (gk && be->matmul(gk, gt, q, scale, 0.0) == AQA_OK) grad_in[1] = aqa__own(gk);
        else aqa__release(gk);
        aqa__release(gt);
    }
}

/* scale * q @ k^T for q [..., L, E], k [..., S, E] with broadcasting batch dims. */
static aqa_tensor *attention_scores(aqa_tensor *q, aqa_tensor *k, double scale) {
    if (!q || !k) return NULL;
    if (q->dtype != k->dtype || !aqa_dtype_is_float(q->dtype) || q->ndim < 2 || k->ndim < 2)
        return aqa_mul_scalar(aqa_matmul(q, aqa_transpose(k, -2, -1)), scale);
    int nb;
    int64_t batch[AQA_MAX_DIMS];
    if (!aqa__broadcast_shapes("attention scores", q->ndim - 2, q->shape, k->ndim - 2, k->shape, &nb, batch))
        return NULL;
    int nd = nb + 2;
    int64_t qs[AQA_MAX_DIMS], ks[AQA_MAX_DIMS], os[AQA_MAX_DIMS];
    for (int d = 0; d < nb; d++) qs[d] = ks[d] = os[d] = batch[d];
    int64_t L = q->shape[q->ndim - 2], S = k->shape[k->ndim - 2], E = q->shape[q->ndim - 1];
    qs[nb] = L, qs[nb + 1] = E, ks[nb] = S, ks[nb + 1] = E, os[nb] = L, os[nb + 1] = S;
    aqa_device dev = aqa_tensor_device(q);
    const aqa_backend *be = aqa_backend_for(dev);
    if (!be) return NULL;
    /* broadcast views (stride 0 on expanded batch dims), no copies */
    aqa_tensor *qv = NULL, *kv = NULL, *kt = NULL, *out = NULL;
    bool prev = aqa_set_grad_enabled(false);
    aqa_scope_begin();
    qv = aqa_expand(q, nd, qs);
    kv = aqa_expand(k, nd, ks);
    kt = kv ? swap_last(kv) : NULL;
    out = kt ? aqa__new_unowned(nd, os, q->dtype, dev) : NULL;
    if (out && be->matmul(out, qv, kt, scale, 0.0) != AQA_OK) {
        aqa__release(out);
        out = NULL;
    }
    aqa__release(kt);
    if (out) {
        aqa__own(out);
        aqa_set_grad_enabled(prev);
        aqa_node *n = aqa_node_record("attention_scores", scores_backward, 2, (aqa_tensor *[]){q, k}, out);
        if (n) {
            aqa_node_save(n, qv);
            aqa_node_save(n, kv);
            n->reals[0] = scale;
        }
        aqa_keep(out);
    }
    aqa_scope_end();
    aqa_set_grad_enabled(prev);
    return out;
}

/* Additive form of a mask: bool (true where `masked_value` is wanted) -> 0 / -inf in dtype;
 * a float mask is converted to dtype. */
static aqa_tensor *additive(aqa_tensor *mask, bool true_means_masked, aqa_dtype dtype) {
    if (!mask) return NULL;
    if (mask->dtype != AQA_BOOL) return aqa_to_dtype(mask, dtype);
    aqa_tensor *hit = true_means_masked ? mask : aqa_logical_not(mask);
    return aqa_masked_fill(aqa_to_dtype(aqa_zeros_like(mask), dtype), hit, -INFINITY);
}

#ifdef AQA_HAVE_CUDA
/* saved: 0 q, 1 k, 2 v, 3 the mask view (when ints[1]); reals[0] = scale; ints[0] = causal.
 * Recomputes p = softmax(scale q k^T + mask) and takes the composed derivative:
 * dv = p^T g, ds = softmax'(p, g v^T), dq = scale ds k, dk = scale ds^T q. */
static void fused_attention_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    aqa_tensor *q = n->saved[0], *k = n->saved[1], *v = n->saved[2], *mask = n->ints[1] ? n->saved[3] : NULL;
    double scale = n->reals[0];
    bool causal = n->ints[0] != 0;
    aqa_device dev = aqa_tensor_device(q);
    const aqa_backend *be = aqa_backend_for(dev);
    if (!be) return;
    bool prev = aqa_set_grad_enabled(false);
    aqa_scope_begin();
    aqa_tensor *p = attn_softmax(attention_scores(q, k, scale), mask, 1.0, causal, true);
    aqa_tensor *dq = NULL, *dk = NULL, *dv = NULL;
    if (p && n->needs_grad[2]) dv = aqa_matmul(aqa_transpose(p, -2, -1), g);
    if (p && (n->needs_grad[0] || n->needs_grad[1])) {
        aqa_tensor *dp = aqa_contiguous(aqa_matmul(g, aqa_transpose(v, -2, -1)));
        aqa_tensor *ds = dp ? aqa__own(aqa__new_unowned(p->ndim, p->shape, p->dtype, dev)) : NULL;
        if (ds && be->softmax_backward(ds, dp, p, p->ndim - 1, false) != AQA_OK) ds = NULL;
        if (ds && n->needs_grad[0]) dq = aqa_mul_scalar(aqa_matmul(ds, k), scale);
        if (ds && n->needs_grad[1]) dk = aqa_mul_scalar(aqa_matmul(aqa_transpose(ds, -2, -1), q), scale);
    }
    grad_in[0] = aqa_keep(dq);
    grad_in[1] = aqa_keep(dk);
    grad_in[2] = aqa_keep(dv);
    aqa_scope_end();
    aqa_set_grad_enabled(prev);
}

/* The fused CUDA forward when it applies (else NULL without an error, *used = false): q, k, v
 * on CUDA with the same batch dims, head dims the kernel takes, a mask (additive, of q's dtype)
 * that needs no gradient. */
static aqa_tensor *fused_attention(aqa_tensor *q, aqa_tensor *k, aqa_tensor *v, aqa_tensor *mask, bool causal,
                                   double scale, bool *used) {
    *used = false;
    const char *env = getenv("AQA_ATTENTION_FUSED");
    if (aqa_tensor_device(q).kind != AQA_CUDA || aqa__nn_force_composed || (env && !strcmp(env, "0")) ||
        !aqa__cuda_attention_fits(q, k, v) || (mask && (mask->requires_grad || mask->dtype != q->dtype)))
        return NULL;
    int nd = q->ndim;
    int64_t ms[AQA_MAX_DIMS], os[AQA_MAX_DIMS];
    for (int d = 0; d < nd; d++) ms[d] = os[d] = q->shape[d];
    ms[nd - 1] = k->shape[nd - 2];
    os[nd - 1] = v->shape[nd - 1];
    aqa_tensor *mv = NULL;
    if (mask) {
        int bnd;
        int64_t bs[AQA_MAX_DIMS];
        if (mask->ndim > nd || !aqa__broadcast_shapes("attention mask", nd, ms, mask->ndim, mask->shape, &bnd, bs) ||
            bnd != nd || memcmp(bs, ms, sizeof(int64_t) * (size_t)nd) != 0)
            return NULL; /* the composed path reports the error */
        bool prev = aqa_set_grad_enabled(false);
        mv = aqa_expand(mask, nd, ms);
        aqa_set_grad_enabled(prev);
        if (!mv) return NULL;
    }
    *used = true;
    aqa_tensor *out = aqa__new_unowned(nd, os, q->dtype, aqa_tensor_device(q));
    if (!out) return NULL;
    if (aqa__cuda_attention_forward(out, q, k, v, mv, scale, causal) != AQA_OK) {
        aqa__release(out);
        return NULL;
    }
    aqa__own(out);
    aqa_node *n = aqa_node_record("scaled_dot_product_attention", fused_attention_backward, 3,
                                  (aqa_tensor *[]){q, k, v}, out);
    if (n) {
        aqa_node_save(n, q);
        aqa_node_save(n, k);
        aqa_node_save(n, v);
        if (mv) aqa_node_save(n, mv);
        n->reals[0] = scale;
        n->ints[0] = causal;
        n->ints[1] = mv != NULL;
    }
    return out;
}
#endif

aqa_tensor *aqa_scaled_dot_product_attention(aqa_tensor *q, aqa_tensor *k, aqa_tensor *v, aqa_tensor *attn_mask,
                                             double dropout_p, bool is_causal, double scale) {
    if (!aqa__check_inputs("aqa_scaled_dot_product_attention", 3, (aqa_tensor *[]){q, k, v}) ||
        !aqa__check_same_dtype("aqa_scaled_dot_product_attention", 3, (aqa_tensor *[]){q, k, v},
                               (const char *[]){"query", "key", "value"}))
        return NULL;
    char b1[64], b2[64], b3[64];
    if (q->ndim < 2 || k->ndim < 2 || v->ndim < 2 || q->shape[q->ndim - 1] != k->shape[k->ndim - 1] ||
        k->shape[k->ndim - 2] != v->shape[v->ndim - 2])
        return aqa_fail_null("aqa_scaled_dot_product_attention: q %s, k %s, v %s do not fit ([..., L, E], [..., S, E], "
                             "[..., S, Ev])", aqa_shape_str(q, b1, sizeof b1), aqa_shape_str(k, b2, sizeof b2),
                             aqa_shape_str(v, b3, sizeof b3));
    if (!(scale > 0)) scale = 1.0 / sqrt((double)q->shape[q->ndim - 1]);
    aqa_scope_begin();
#ifdef AQA_HAVE_CUDA
    if (!(dropout_p > 0)) {
        aqa_tensor *add = attn_mask ? additive(attn_mask, false, q->dtype) : NULL;
        bool used = false;
        aqa_tensor *out = !attn_mask || add ? fused_attention(q, k, v, add, is_causal, scale, &used) : NULL;
        if (used) {
            aqa_keep(out);
            aqa_scope_end();
            return out;
        }
    }
#endif
    aqa_tensor *scores = attention_scores(q, k, scale);
    aqa_tensor *add = scores ? additive(attn_mask, false, scores->dtype) : NULL;
    aqa_tensor *p = attn_mask && !add ? NULL : attn_softmax(scores, add, 1.0, is_causal, true);
    if (dropout_p > 0) p = aqa_dropout(p, dropout_p, true, NULL);
    aqa_tensor *out = aqa_matmul(p, v);
    aqa_keep(out);
    aqa_scope_end();
    return out;
}

/* ---- MultiheadAttention ---------------------------------------------------------------------------- */

aqa_mha_layer *aqa_mha_layer_new(aqa_module *parent, const char *name, int64_t embed_dim, int64_t num_heads,
                                 double dropout, bool bias, bool batch_first) {
    if (embed_dim <= 0 || num_heads <= 0 || embed_dim % num_heads != 0)
        return aqa_fail_null("MultiheadAttention %s: embed_dim %lld is not divisible into %lld heads",
                             name ? name : "", (long long)embed_dim, (long long)num_heads);
    if (!(dropout >= 0 && dropout <= 1)) return aqa_fail_null("MultiheadAttention %s: dropout %g not in [0, 1]", name ? name : "", dropout);
    aqa_mha_layer *m = aqa_module_new(sizeof *m, "MultiheadAttention", parent, name, NULL);
    if (!m) return NULL;
    m->embed_dim = embed_dim;
    m->num_heads = num_heads;
    m->head_dim = embed_dim / num_heads;
    m->dropout = dropout;
    m->batch_first = batch_first;
    m->average_attn_weights = true;
    /* PyTorch registers in_proj_weight, in_proj_bias, then out_proj; its out_proj (a Linear) is
     * built first and so draws its default init first; then in_proj_weight gets xavier_uniform
     * (fan_in E, fan_out 3E) and both biases are zeroed. */
    aqa_tensor *w = aqa_empty(AQA_SHAPE(3 * embed_dim, embed_dim), AQA_F32);
    aqa_tensor *b = bias ? aqa_zeros(AQA_SHAPE(3 * embed_dim), AQA_F32) : NULL;
    m->in_proj_weight = w ? aqa_module_param(&m->base, "in_proj_weight", w) : NULL;
    m->in_proj_bias = b ? aqa_module_param(&m->base, "in_proj_bias", b) : NULL;
    if (!bias) aqa_module_param(&m->base, "in_proj_bias", NULL);
    if (!m->in_proj_weight || (bias && !m->in_proj_bias)) {
        if (!m->in_proj_weight) aqa_tensor_free(w);
        if (bias && !m->in_proj_bias) aqa_tensor_free(b);
        goto fail;
    }
    m->out_proj = aqa_linear_layer_new(&m->base, "out_proj", embed_dim, embed_dim, bias);
    if (!m->out_proj) goto fail;
    /* torch's out_proj is NonDynamicallyQuantizableLinear, a Linear in all but name */
    if (aqa_init_xavier_uniform_(m->in_proj_weight, 1.0, NULL) != AQA_OK) goto fail;
    if (m->out_proj->bias && aqa_zero_(m->out_proj->bias) != AQA_OK) goto fail;
    return m;
fail:
    if (!parent) aqa_module_free(&m->base);
    return NULL;
}

/* [.., E] projections in the module's layout -> [N, H, T, d] strided view. */
static aqa_tensor *split_heads(const aqa_mha_layer *m, aqa_tensor *x, bool batch_first) {
    if (!x) return NULL;
    int64_t a = x->shape[0], b = x->shape[1];
    aqa_tensor *v = aqa_view(x, 4, (const int64_t[]){a, b, m->num_heads, m->head_dim});
    if (!v) v = aqa_reshape(x, 4, (const int64_t[]){a, b, m->num_heads, m->head_dim});
    return batch_first ? aqa_permute(v, (const int[]){0, 2, 1, 3}) : aqa_permute(v, (const int[]){1, 2, 0, 3});
}

/* Rows [r0, r0 + n) of the packed in-projection (weight and bias, bias may be NULL). */
static aqa_tensor *proj(aqa_mha_layer *m, aqa_tensor *x, int64_t r0, int64_t n) {
    aqa_tensor *w = aqa_narrow(m->in_proj_weight, 0, r0, n);
    aqa_tensor *b = m->in_proj_bias ? aqa_narrow(m->in_proj_bias, 0, r0, n) : NULL;
    if (!w || (m->in_proj_bias && !b)) return NULL;
    return aqa_linear(x, w, b);
}

aqa_tensor *aqa_mha_layer_forward(aqa_mha_layer *m, aqa_tensor *query, aqa_tensor *key, aqa_tensor *value,
                                  aqa_tensor *key_padding_mask, aqa_tensor *attn_mask, aqa_tensor **weights) {
    if (weights) *weights = NULL;
    if (!m) return aqa_fail_null("aqa_mha_layer_forward: NULL module");
    if (!aqa__check_inputs("MultiheadAttention", 3, (aqa_tensor *[]){query, key, value})) return NULL;
    int64_t E = m->embed_dim, H = m->num_heads;
    char b1[64], b2[64], b3[64];
    bool batched = query->ndim == 3;
    if ((query->ndim != 3 && query->ndim != 2) || key->ndim != query->ndim || value->ndim != query->ndim ||
        query->shape[query->ndim - 1] != E || key->shape[key->ndim - 1] != E || value->shape[value->ndim - 1] != E ||
        !aqa_same_shape(key, value))
        return aqa_fail_null("MultiheadAttention (E=%lld): query %s, key %s, value %s do not fit", (long long)E,
                             aqa_shape_str(query, b1, sizeof b1), aqa_shape_str(key, b2, sizeof b2),
                             aqa_shape_str(value, b3, sizeof b3));
    bool self = query == key && key == value, kv_same = key == value;
    aqa_scope_begin();
    aqa_tensor *q = query, *k = key, *v = value, *kpm = key_padding_mask, *am = attn_mask;
    int bdim = m->batch_first ? 0 : 1;
    if (!batched) { /* unbatched: a batch of one */
        q = aqa_unsqueeze(q, bdim);
        k = self ? q : aqa_unsqueeze(k, bdim);
        v = self || kv_same ? k : aqa_unsqueeze(v, bdim);
        if (kpm) kpm = aqa_unsqueeze(kpm, 0);
    }
    aqa_tensor *out = NULL, *avg = NULL;
    if (!q || !k || !v || (key_padding_mask && !kpm)) goto done;
    int64_t N = q->shape[bdim], L = q->shape[1 - bdim], S = k->shape[1 - bdim];
    if (k->shape[bdim] != N) {
        aqa_fail(AQA_EINVAL, "MultiheadAttention: query batch %lld differs from key batch %lld", (long long)N,
                 (long long)k->shape[bdim]);
        goto done;
    }
    /* input projections: one GEMM for self-attention, two when key is value */
    aqa_tensor *qp, *kp, *vp;
    if (self) {
        aqa_tensor *qkv = aqa_linear(q, m->in_proj_weight, m->in_proj_bias);
        qp = aqa_narrow(qkv, -1, 0, E);
        kp = aqa_narrow(qkv, -1, E, E);
        vp = aqa_narrow(qkv, -1, 2 * E, E);
    } else if (kv_same) {
        qp = proj(m, q, 0, E);
        aqa_tensor *kv = proj(m, k, E, 2 * E);
        kp = aqa_narrow(kv, -1, 0, E);
        vp = aqa_narrow(kv, -1, E, E);
    } else {
        qp = proj(m, q, 0, E);
        kp = proj(m, k, E, E);
        vp = proj(m, v, 2 * E, E);
    }
    aqa_tensor *q4 = split_heads(m, qp, m->batch_first), *k4 = split_heads(m, kp, m->batch_first),
               *v4 = split_heads(m, vp, m->batch_first);
    if (!q4 || !k4 || !v4) goto done;
    aqa_dtype dt = q4->dtype;

    /* masks: additive, broadcasting to [N, H, L, S] */
    aqa_tensor *mask = NULL;
    if (am) {
        if (am->ndim == 2 && am->shape[0] == L && am->shape[1] == S) {
            mask = additive(am, true, dt);
        } else if (am->ndim == 3 && am->shape[0] == N * H && am->shape[1] == L && am->shape[2] == S) {
            mask = aqa_reshape(additive(am, true, dt), 4, (const int64_t[]){N, H, L, S});
        } else {
            aqa_fail(AQA_EINVAL, "MultiheadAttention: attn_mask %s should be [%lld, %lld] or [%lld, %lld, %lld]",
                     aqa_shape_str(am, b1, sizeof b1), (long long)L, (long long)S, (long long)(N * H), (long long)L,
                     (long long)S);
            goto done;
        }
        if (!mask) goto done;
    }
    if (kpm) {
        if (kpm->ndim != 2 || kpm->shape[0] != N || kpm->shape[1] != S) {
            aqa_fail(AQA_EINVAL, "MultiheadAttention: key_padding_mask %s should be [%lld, %lld]",
                     aqa_shape_str(kpm, b1, sizeof b1), (long long)N, (long long)S);
            goto done;
        }
        aqa_tensor *kadd = aqa_view(additive(kpm, true, dt), 4, (const int64_t[]){N, 1, 1, S});
        mask = mask ? aqa_add(mask, kadd) : kadd;
        if (!mask) goto done;
    }

    aqa_tensor *p = NULL, *o = NULL;
#ifdef AQA_HAVE_CUDA
    if (!weights && !(m->base.training && m->dropout > 0)) { /* the scores never stored */
        bool used = false;
        o = fused_attention(q4, k4, v4, mask, false, 1.0 / sqrt((double)m->head_dim), &used);
        if (used && !o) goto done;
    }
#endif
    if (!o) {
        aqa_tensor *scores = attention_scores(q4, k4, 1.0 / sqrt((double)m->head_dim)); /* [N, H, L, S] */
        p = attn_softmax(scores, mask, 1.0, false, true);
        if (m->base.training && m->dropout > 0) p = aqa_dropout(p, m->dropout, true, m->gen);
        o = aqa_matmul(p, v4); /* [N, H, L, d] */
    }
    /* merge heads back into the input layout, then the output projection (one GEMM) */
    o = m->batch_first ? aqa_permute(o, (const int[]){0, 2, 1, 3}) : aqa_permute(o, (const int[]){2, 0, 1, 3});
    o = aqa_reshape(o, 3, m->batch_first ? (const int64_t[]){N, L, E} : (const int64_t[]){L, N, E});
    out = aqa_linear_layer_forward(m->out_proj, o);
    if (out && !batched) out = aqa_squeeze(out, bdim);
    if (out && weights) {
        avg = m->average_attn_weights ? aqa_mean(p, 1, (const int[]){1}, false) /* [N, L, S] */
                                      : aqa_view(p, p->ndim, p->shape);

        if (avg && !batched) avg = aqa_squeeze(avg, 0);
        if (!avg) out = NULL;
    }
done:
    aqa_keep(out);
    if (out && weights) *weights = aqa_keep(avg);
    aqa_scope_end();
    return out;
}
