/* pool.c: max / average / adaptive-average pooling: CPU kernels (float32 and float64, one plane
 * per OpenMP iteration), torch's output-size rules, autograd nodes and the pooling modules.
 * CUDA tensors take the same nodes with the kernels of nn/pool_cuda.c; other devices (or
 * AQA_POOL_COMPOSED set) a composition of tensor ops.
 *
 * The file includes itself twice with POOL_T = float / double for the typed kernels (the part
 * after #else); the untyped part comes first and last. */
#ifndef POOL_T

#include "config.h" /* AQA_HAVE_CUDA */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/autograd.h"
#include "nn/nn_cpu-impl.h"
#include "nn/nn_cuda-impl.h"
#include "nn/pool.h"
#include "ops/ops.h"
#include "tensor/tensor-impl.h"

/* Window i of an adaptive pool over n inputs into m outputs: [floor(i*n/m), ceil((i+1)*n/m)). */
static inline int64_t ada_start(int64_t i, int64_t n, int64_t m) { return (i * n) / m; }
static inline int64_t ada_end(int64_t i, int64_t n, int64_t m) { return ((i + 1) * n + m - 1) / m; }

#define POOL_T float
#define POOL_NAME(x) x##_f32
#include "nn/pool.c"
#undef POOL_T
#undef POOL_NAME
#define POOL_T double
#define POOL_NAME(x) x##_f64
#include "nn/pool.c"
#undef POOL_T
#undef POOL_NAME

#define DISPATCH(dtype, call_f32, call_f64)                                                                   \
    switch (dtype) {                                                                                          \
    case AQA_F32: call_f32; return AQA_OK;                                                                    \
    case AQA_F64: call_f64; return AQA_OK;                                                                    \
    default: return aqa_fail(AQA_EINVAL, "pooling: dtype %s not supported (float32/float64)", aqa_dtype_name(dtype)); \
    }

aqa_status aqa__cpu_max_pool_forward(const aqa_conv_geom *g, const aqa_tensor *x, aqa_tensor *y, aqa_tensor *idx) {
    DISPATCH(x->dtype, max_fwd_f32(g, aqa_data(x), aqa_data(y), aqa_data(idx)),
             max_fwd_f64(g, aqa_data(x), aqa_data(y), aqa_data(idx)))
}
aqa_status aqa__cpu_max_pool_backward(const aqa_conv_geom *g, const aqa_tensor *gy, const aqa_tensor *idx,
                                      aqa_tensor *gx) {
    DISPATCH(gy->dtype, max_bwd_f32(g, aqa_data(gy), aqa_data(idx), aqa_data(gx)),
             max_bwd_f64(g, aqa_data(gy), aqa_data(idx), aqa_data(gx)))
}
aqa_status aqa__cpu_avg_pool_forward(const aqa_conv_geom *g, bool count_include_pad, int64_t divisor_override,
                                     const aqa_tensor *x, aqa_tensor *y) {
    DISPATCH(x->dtype, avg_f32(g, count_include_pad, divisor_override, aqa_data(x), aqa_data(y), false),
             avg_f64(g, count_include_pad, divisor_override, aqa_data(x), aqa_data(y), false))
}
aqa_status aqa__cpu_avg_pool_backward(const aqa_conv_geom *g, bool count_include_pad, int64_t divisor_override,
                                      const aqa_tensor *gy, aqa_tensor *gx) {
    DISPATCH(gy->dtype, avg_f32(g, count_include_pad, divisor_override, aqa_data(gx), aqa_data(gy), true),
             avg_f64(g, count_include_pad, divisor_override, aqa_data(gx), aqa_data(gy), true))
}
aqa_status aqa__cpu_adaptive_avg_pool_forward(const aqa_conv_geom *g, const aqa_tensor *x, aqa_tensor *y) {
    DISPATCH(x->dtype, ada_f32(g, aqa_data(x), aqa_data(y), false), ada_f64(g, aqa_data(x), aqa_data(y), false))
}
aqa_status aqa__cpu_adaptive_avg_pool_backward(const aqa_conv_geom *g, const aqa_tensor *gy, aqa_tensor *gx) {
    DISPATCH(gy->dtype, ada_f32(g, aqa_data(gx), aqa_data(gy), true), ada_f64(g, aqa_data(gx), aqa_data(gy), true))
}

/* ---- front-ends ---------------------------------------------------------------------------------- */

/* Whether x's device has pooling kernels (the CPU's above, CUDA's in nn/pool_cuda.c). */
static bool pool_fused_device(const aqa_tensor *x) {
    aqa_device_kind k = aqa_tensor_device(x).kind;
#ifdef AQA_HAVE_CUDA
    if (k == AQA_CUDA) return true;
#endif
    return k == AQA_CPU;
}
#ifdef AQA_HAVE_CUDA
#define ON_CUDA(t) (aqa_tensor_device(t).kind == AQA_CUDA)
#else
#define ON_CUDA(t) false
#define aqa__cuda_max_pool_forward aqa__cpu_max_pool_forward
#define aqa__cuda_max_pool_backward aqa__cpu_max_pool_backward
#define aqa__cuda_avg_pool_forward aqa__cpu_avg_pool_forward
#define aqa__cuda_avg_pool_backward aqa__cpu_avg_pool_backward
#define aqa__cuda_adaptive_avg_pool_forward aqa__cpu_adaptive_avg_pool_forward
#define aqa__cuda_adaptive_avg_pool_backward aqa__cpu_adaptive_avg_pool_backward
#endif

typedef enum { K_MAX, K_AVG, K_ADA } pool_kind;

/* Host-side state of a pooling node. */
typedef struct pool_ctx {
    aqa_conv_geom geo;
    bool count_include_pad;
    int64_t divisor_override;
} pool_ctx;

static void pool_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    const pool_ctx *c = n->ctx;
    pool_kind kind = (pool_kind)n->ints[0];
    int ndim = (int)n->ints[1];
    int64_t shape[5];
    memcpy(shape, n->ints + 2, sizeof(int64_t) * (size_t)ndim);
    aqa_tensor *gc = aqa_contiguous(g);
    if (!gc) return;
    aqa_tensor *gx = aqa__new_unowned(ndim, shape, gc->dtype, aqa_tensor_device(gc));
    if (!gx) return;
    aqa_status st;
    bool cuda = ON_CUDA(gc); /* the CUDA kernels write all of gx (gather) */
    if (kind == K_MAX) {
        if (!cuda) memset(aqa_data(gx), 0, aqa_dtype_size(gx->dtype) * (size_t)aqa_numel(gx));
        st = (cuda ? aqa__cuda_max_pool_backward : aqa__cpu_max_pool_backward)(&c->geo, gc, n->saved[0], gx);
    } else if (kind == K_AVG) {
        st = (cuda ? aqa__cuda_avg_pool_backward : aqa__cpu_avg_pool_backward)(&c->geo, c->count_include_pad,
                                                                            c->divisor_override, gc, gx);
    } else {
        st = (cuda ? aqa__cuda_adaptive_avg_pool_backward : aqa__cpu_adaptive_avg_pool_backward)(&c->geo, gc, gx);
    }
    if (st != AQA_OK) {
        aqa__release(gx);
        return;
    }
    grad_in[0] = aqa__own(gx);
}

/* torch's pooling_output_shape. */
static int64_t pool_out_size(int64_t in, int64_t k, int64_t pad, int64_t stride, int64_t dil, bool ceil_mode) {
    int64_t num = in + 2 * pad - dil * (k - 1) - 1 + (ceil_mode ? stride - 1 : 0);
    int64_t out = (num >= 0 ? num / stride : -((-num + stride - 1) / stride)) + 1;
    if (ceil_mode && (out - 1) * stride >= in + pad) out--;
    return out;
}

/* Sums (max = false) or maxima (max = true) of the windows of t (already padded so that every
 * window lies inside it) along the nd pooled dims (the last nd of t), one strided slice per
 * kernel offset. */
static aqa_tensor *composed_windows(aqa_tensor *t, int nd, const aqa_conv_geom *g, bool max) {
    const int lead = t->ndim - nd;
    int64_t kk[3] = {1, 1, 1}, total = 1;
    for (int i = 0; i < nd; i++) total *= kk[i] = g->k[3 - nd + i];
    aqa_tensor *acc = NULL;
    for (int64_t o = 0; o < total; o++) {
        aqa_tensor *s = t;
        int64_t rest = o;
        for (int i = nd - 1; i >= 0; i--) {
            int j = 3 - nd + i;
            int64_t off = rest % kk[i];
            rest /= kk[i];
            int64_t start = off * g->dil[j];
            s = aqa_slice(s, lead + i, start, start + (g->out[j] - 1) * g->stride[j] + 1, g->stride[j]);
        }
        if (!s) return NULL;
        acc = !acc ? s : max ? aqa_maximum(acc, s) : aqa_add(acc, s);
        if (!acc) return NULL;
    }
    return acc;
}

/* Devices without pooling kernels (or AQA_POOL_COMPOSED set): the same results composed of
 * differentiable tensor ops on the input's device, autograd going through those ops.
 * Max/avg pooling pad the input (-inf / 0; on the high side as far as ceil_mode's last window
 * needs) and combine one strided slice per kernel offset; the average's divisor comes from a
 * ones tensor pooled the same way.  Adaptive pooling takes torch's windows [floor(i*in/out),
 * ceil((i+1)*in/out)) one dim at a time (narrow + mean, then cat).  No max-pool indices here.
 * Gradient caveat: aqa_maximum splits a tie's gradient evenly between the tied elements where
 * torch (and the CPU kernel) gives it all to the first maximum; only equal values in one
 * window differ (padding never ties with real data, -inf < any finite value). */
static aqa_tensor *pool_composed(pool_kind kind, aqa_tensor *x, int nd, const aqa_conv_geom *g,
                                 bool count_include_pad, int64_t divisor_override) {
    const int lead = x->ndim - nd;
    aqa_tensor *y = NULL;
    aqa_scope_begin();
    if (kind == K_ADA) {
        aqa_tensor *cur = x;
        for (int i = 0; i < nd && cur; i++) {
            int j = 3 - nd + i, dim = lead + i;
            int64_t in = g->in[j], out = g->out[j];
            aqa_tensor **parts = malloc(sizeof *parts * (size_t)out);
            if (!parts) {
                aqa_fail(AQA_ENOMEM, "aqa_adaptive_avg_pool: out of memory");
                cur = NULL;
                break;
            }
            bool ok = true;
            for (int64_t o = 0; o < out && ok; o++) {
                int64_t s = ada_start(o, in, out), e = ada_end(o, in, out);
                parts[o] = aqa_mean(aqa_narrow(cur, dim, s, e - s), 1, &dim, true);
                ok = parts[o] != NULL;
            }
            cur = ok ? aqa_cat(parts, (int)out, dim) : NULL;
            free(parts);
        }
        y = cur;
        goto done;
    }
    /* pads in aqa_pad order (last dim first): data/zeros (lo = pad, hi = up to the last window),
     * and for count_include_pad the ones' own pad (pad, pad) then zeros beyond */
    int64_t pads[6], one_pads[6], extra[6];
    int64_t oshape[AQA_MAX_DIMS];
    for (int d = 0; d < lead; d++) oshape[d] = 1;
    for (int i = 0; i < nd; i++) {
        int j = 3 - nd + i, q = 2 * (nd - 1 - i);
        int64_t need = (g->out[j] - 1) * g->stride[j] + (g->k[j] - 1) * g->dil[j] + 1; /* padded length used */
        int64_t hi = need - g->in[j] - g->pad[j];
        pads[q] = g->pad[j];
        pads[q + 1] = hi > 0 ? hi : 0;
        one_pads[q] = one_pads[q + 1] = g->pad[j];
        extra[q] = 0;
        extra[q + 1] = hi > g->pad[j] ? hi - g->pad[j] : 0;
        oshape[lead + i] = g->in[j];
    }
    aqa_tensor *xp = aqa_pad(x, 2 * nd, pads, kind == K_MAX ? -INFINITY : 0.0);
    if (!xp) goto done;
    if (kind == K_MAX) {
        y = composed_windows(xp, nd, g, true);
        goto done;
    }
    aqa_tensor *sum = composed_windows(xp, nd, g, false);
    if (!sum) goto done;
    if (divisor_override > 0) {
        y = aqa_div_scalar(sum, (double)divisor_override);
        goto done;
    }
    /* divisor: the number of counted positions in each window (constant, no gradient) */
    aqa_tensor *ones = aqa_full_on(x->ndim, oshape, 1.0, x->dtype, aqa_tensor_device(x));
    aqa_tensor *op = count_include_pad ? aqa_pad(aqa_pad(ones, 2 * nd, one_pads, 1.0), 2 * nd, extra, 0.0)
                                       : aqa_pad(ones, 2 * nd, pads, 0.0);
    aqa_tensor *div = op ? composed_windows(op, nd, g, false) : NULL;
    /* a window with nothing counted sums to 0 and gives 0, as the CPU kernel */
    if (div && !count_include_pad) div = aqa_maximum(div, aqa_full_like(div, 1.0));
    y = div ? aqa_div(sum, div) : NULL;
done:
    aqa_keep(y);
    aqa_scope_end();
    return y;
}

static aqa_tensor *pool(const char *op, pool_kind kind, aqa_tensor *x, int nd, const int64_t *kernel,
                        const int64_t *stride, const int64_t *padding, const int64_t *dilation, bool ceil_mode,
                        bool count_include_pad, int64_t divisor_override, aqa_tensor **indices) {
    if (indices) *indices = NULL;
    if (!aqa__check_inputs(op, 1, &x)) return NULL;
    if (nd < 1 || nd > 3 || !kernel) return aqa_fail_null("%s: nd must be 1..3 and kernel given", op);
    if (x->ndim != nd + 2 && x->ndim != nd + 1)
        return aqa_fail_null("%s: input must have %d or %d dims, got %d", op, nd + 1, nd + 2, x->ndim);
    if (!aqa_dtype_is_float(x->dtype)) return aqa_fail_null("%s: input must be floating, got %s", op, aqa_dtype_name(x->dtype));
    pool_ctx ctx = {.count_include_pad = count_include_pad, .divisor_override = divisor_override};
    aqa_conv_geom *g = &ctx.geo;
    const int lead = x->ndim - nd; /* 1 (unbatched) or 2 */
    int64_t planes = 1;
    for (int i = 0; i < lead; i++) planes *= x->shape[i];
    g->n = 1;
    g->c_in = g->c_out = planes;
    g->groups = 1;
    int64_t oshape[5];
    for (int i = 0; i < lead; i++) oshape[i] = x->shape[i];
    for (int i = 0; i < 3; i++) {
        g->in[i] = g->out[i] = g->k[i] = g->stride[i] = g->dil[i] = 1;
        g->pad[i] = 0;
    }
    for (int i = 0; i < nd; i++) {
        int j = 3 - nd + i;
        g->in[j] = x->shape[lead + i];
        if (kind == K_ADA) {
            if (kernel[i] < 1) return aqa_fail_null("%s: output size must be positive", op);
            g->out[j] = oshape[lead + i] = kernel[i];
            continue;
        }
        g->k[j] = kernel[i];
        g->stride[j] = stride && stride[i] ? stride[i] : kernel[i];
        g->pad[j] = padding ? padding[i] : 0;
        g->dil[j] = dilation && dilation[i] ? dilation[i] : 1;
        if (g->k[j] < 1 || g->stride[j] < 1 || g->dil[j] < 1 || g->pad[j] < 0)
            return aqa_fail_null("%s: kernel, stride, dilation must be positive and padding non-negative", op);
        int64_t eff = kind == K_MAX ? (g->k[j] - 1) * g->dil[j] + 1 : g->k[j];
        if (g->pad[j] > eff / 2)
            return aqa_fail_null("%s: padding %lld should be at most half of the kernel size %lld", op,
                                 (long long)g->pad[j], (long long)eff);
        g->out[j] = oshape[lead + i] = pool_out_size(g->in[j], g->k[j], g->pad[j], g->stride[j], g->dil[j], ceil_mode);
        if (g->out[j] < 1)
            return aqa_fail_null("%s: output size %lld in dim %d is too small (input %lld)", op, (long long)g->out[j],
                                 lead + i, (long long)g->in[j]);
    }
    if (!pool_fused_device(x) || getenv("AQA_POOL_COMPOSED")) {
        if (indices)
            return aqa_fail_null("%s: max-pool indices are only available from the pooling kernels (CPU and "
                                 "CUDA; the composed path%s has none)", op,
                                 getenv("AQA_POOL_COMPOSED") ? ", selected by AQA_POOL_COMPOSED," : " other devices take");
        return pool_composed(kind, x, nd, g, count_include_pad, divisor_override);
    }
    aqa_tensor *out = NULL, *idx = NULL;
    aqa_scope_begin();
    aqa_tensor *xc = aqa_contiguous(x);
    if (!xc) goto done;
    out = aqa__new_unowned(x->ndim, oshape, x->dtype, aqa_tensor_device(x));
    if (kind == K_MAX) idx = aqa__new_unowned(x->ndim, oshape, AQA_I64, aqa_tensor_device(x));
    if (!out || (kind == K_MAX && !idx)) goto fail;
    bool cuda = ON_CUDA(xc);
    aqa_status st = kind == K_MAX ? (cuda ? aqa__cuda_max_pool_forward : aqa__cpu_max_pool_forward)(g, xc, out, idx)
                    : kind == K_AVG ? (cuda ? aqa__cuda_avg_pool_forward : aqa__cpu_avg_pool_forward)(
                                          g, count_include_pad, divisor_override, xc, out)
                                    : (cuda ? aqa__cuda_adaptive_avg_pool_forward
                                            : aqa__cpu_adaptive_avg_pool_forward)(g, xc, out);
    if (st != AQA_OK) goto fail;
    aqa_node *n = aqa_node_record(kind == K_MAX ? "max_pool" : kind == K_AVG ? "avg_pool" : "adaptive_avg_pool",
                                  pool_backward, 1, &x, out);
    if (n) {
        n->ints[0] = kind;
        n->ints[1] = x->ndim;
        memcpy(n->ints + 2, x->shape, sizeof(int64_t) * (size_t)x->ndim);
        if (idx) aqa_node_save(n, idx);
        pool_ctx *c = malloc(sizeof *c);
        if (c) *c = ctx;
        n->ctx = c;
        n->ctx_free = free;
        if (!c) n->backward = NULL;
    }
    goto done;
fail:
    aqa__release(out);
    aqa__release(idx);
    out = idx = NULL;
done:
    aqa_scope_end();
    if (!out) return NULL;
    aqa__own(out);
    if (idx) {
        if (indices) *indices = aqa__own(idx);
        else aqa__release(idx);
    }
    return out;
}

aqa_tensor *aqa_max_pool(aqa_tensor *x, int nd, const int64_t *kernel, const int64_t *stride, const int64_t *padding,
                         const int64_t *dilation, bool ceil_mode, aqa_tensor **indices) {
    return pool("aqa_max_pool", K_MAX, x, nd, kernel, stride, padding, dilation, ceil_mode, false, 0, indices);
}
aqa_tensor *aqa_avg_pool(aqa_tensor *x, int nd, const int64_t *kernel, const int64_t *stride, const int64_t *padding,
                         bool ceil_mode, bool count_include_pad, int64_t divisor_override) {
    return pool("aqa_avg_pool", K_AVG, x, nd, kernel, stride, padding, NULL, ceil_mode, count_include_pad,
                divisor_override, NULL);
}
aqa_tensor *aqa_adaptive_avg_pool(aqa_tensor *x, int nd, const int64_t *output_size) {
    return pool("aqa_adaptive_avg_pool", K_ADA, x, nd, output_size, NULL, NULL, NULL, false, false, 0, NULL);
}

#define SAME3(v) (const int64_t[]){v, v, v}
aqa_tensor *aqa_max_pool1d(aqa_tensor *x, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
    return aqa_max_pool(x, 1, SAME3(k), SAME3(s), SAME3(p), SAME3(d), ceil_mode, NULL);
}
aqa_tensor *aqa_max_pool2d(aqa_tensor *x, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
    return aqa_max_pool(x, 2, SAME3(k), SAME3(s), SAME3(p), SAME3(d), ceil_mode, NULL);
}
aqa_tensor *aqa_max_pool3d(aqa_tensor *x, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
    return aqa_max_pool(x, 3, SAME3(k), SAME3(s), SAME3(p), SAME3(d), ceil_mode, NULL);
}
aqa_tensor *aqa_avg_pool1d(aqa_tensor *x, int64_t k, int64_t s, int64_t p, bool ceil_mode, bool count_include_pad) {
    return aqa_avg_pool(x, 1, SAME3(k), SAME3(s), SAME3(p), ceil_mode, count_include_pad, 0);
}
aqa_tensor *aqa_avg_pool2d(aqa_tensor *x, int64_t k, int64_t s, int64_t p, bool ceil_mode, bool count_include_pad) {
    return aqa_avg_pool(x, 2, SAME3(k), SAME3(s), SAME3(p), ceil_mode, count_include_pad, 0);
}
aqa_tensor *aqa_avg_pool3d(aqa_tensor *x, int64_t k, int64_t s, int64_t p, bool ceil_mode, bool count_include_pad) {
    return aqa_avg_pool(x, 3, SAME3(k), SAME3(s), SAME3(p), ceil_mode, count_include_pad, 0);
}

/* ---- modules ---------------------------------------------------------------------------------- */

static const char *const pool_type_names[3][3] = {{"MaxPool1d", "MaxPool2d", "MaxPool3d"},
                                                  {"AvgPool1d", "AvgPool2d", "AvgPool3d"},
                                                  {"AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d"}};

AQA_MODULE_FORWARD(pool_any, aqa_pool_layer, aqa_pool_layer_forward)

aqa_pool_layer *aqa_pool_layer_new(aqa_module *parent, const char *name, aqa_pool_kind kind, int nd,
                                   const int64_t *kernel, const int64_t *stride, const int64_t *padding,
                                   bool ceil_mode) {
    if (nd < 1 || nd > 3 || !kernel || (unsigned)kind > AQA_POOL_ADAPTIVE_AVG)
        return aqa_fail_null("aqa_pool_layer_new(%s): bad kind/nd/kernel", name ? name : "");
    aqa_pool_layer *m = aqa_module_new(sizeof *m, pool_type_names[kind][nd - 1], parent, name, NULL);
    if (!m) return NULL;
    m->base.forward = pool_any;
    m->kind = kind;
    m->nd = nd;
    for (int i = 0; i < nd; i++) {
        m->kernel[i] = kernel[i];
        m->stride[i] = stride ? stride[i] : 0;
        m->padding[i] = padding ? padding[i] : 0;
        m->dilation[i] = 1;
    }
    m->ceil_mode = ceil_mode;
    m->count_include_pad = true;
    return m;
}

aqa_tensor *aqa_pool_layer_forward(aqa_pool_layer *m, aqa_tensor *x) {
    if (!m) return aqa_fail_null("aqa_pool_layer_forward: NULL module");
    switch (m->kind) {
    case AQA_POOL_MAX:
        return aqa_max_pool(x, m->nd, m->kernel, m->stride, m->padding, m->dilation, m->ceil_mode, NULL);
    case AQA_POOL_AVG:
        return aqa_avg_pool(x, m->nd, m->kernel, m->stride, m->padding, m->ceil_mode, m->count_include_pad,
                            m->divisor_override);
    default: return aqa_adaptive_avg_pool(x, m->nd, m->kernel);
    }
}

#else /* ---- typed kernels: POOL_T --------------------------------------------------------------- */

static void POOL_NAME(max_fwd)(const aqa_conv_geom *g, const POOL_T *x, POOL_T *y, int64_t *idx) {
    const int64_t D = g->in[0], H = g->in[1], W = g->in[2], S = D * H * W;
    const int64_t Do = g->out[0], Ho = g->out[1], Wo = g->out[2], P = Do * Ho * Wo;
#pragma omp parallel for schedule(static) if (g->c_in * P > 16384)
    for (int64_t r = 0; r < g->n * g->c_in; r++) {
        const POOL_T *xp = x + r * S;
        POOL_T *yp = y + r * P;
        int64_t *ip = idx + r * P;
        for (int64_t od = 0; od < Do; od++)
            for (int64_t oh = 0; oh < Ho; oh++)
                for (int64_t ow = 0; ow < Wo; ow++) {
                    int64_t ds = od * g->stride[0] - g->pad[0], hs = oh * g->stride[1] - g->pad[1],
                            ws = ow * g->stride[2] - g->pad[2];
                    int64_t de = ds + (g->k[0] - 1) * g->dil[0] + 1, he = hs + (g->k[1] - 1) * g->dil[1] + 1,
                            we = ws + (g->k[2] - 1) * g->dil[2] + 1;
                    if (de > D) de = D;
                    if (he > H) he = H;
                    if (we > W) we = W;
                    while (ds < 0) ds += g->dil[0];
                    while (hs < 0) hs += g->dil[1];
                    while (ws < 0) ws += g->dil[2];
                    int64_t best_i = (ds * H + hs) * W + ws;
                    POOL_T best = -INFINITY;
                    for (int64_t d = ds; d < de; d += g->dil[0])
                        for (int64_t h = hs; h < he; h += g->dil[1]) {
                            const POOL_T *row = xp + (d * H + h) * W;
                            for (int64_t w = ws; w < we; w += g->dil[2]) {
                                POOL_T v = row[w];
                                if (v > best || isnan(v)) {
                                    best = v;
                                    best_i = (d * H + h) * W + w;
                                }
                            }
                        }
                    int64_t o = (od * Ho + oh) * Wo + ow;
                    yp[o] = best;
                    ip[o] = best_i;
                }
    }
}

static void POOL_NAME(max_bwd)(const aqa_conv_geom *g, const POOL_T *gy, const int64_t *idx, POOL_T *gx) {
    const int64_t S = g->in[0] * g->in[1] * g->in[2], P = g->out[0] * g->out[1] * g->out[2];
#pragma omp parallel for schedule(static) if (g->c_in * P > 16384)
    for (int64_t r = 0; r < g->n * g->c_in; r++) {
        POOL_T *gp = gx + r * S;
        for (int64_t o = 0; o < P; o++) gp[idx[r * P + o]] += gy[r * P + o];
    }
}

/* One output of average pooling: *y = (sum of xp over the window) / divisor, or, backward,
 * *y / divisor (y = gy) added to every element of the window of xp (= gx).  win holds the
 * window's [start, end) in d, h and w; xp is a [D, H, W] plane stack. */
static inline void POOL_NAME(window_mean)(POOL_T *xp, int64_t H, int64_t W, const int64_t win[6], int64_t divisor,
                                          POOL_T *y, bool backward) {
    if (backward) {
        POOL_T gv = *y / (POOL_T)divisor;
        for (int64_t d = win[0]; d < win[1]; d++)
            for (int64_t h = win[2]; h < win[3]; h++) {
                POOL_T *row = xp + (d * H + h) * W;
                for (int64_t w = win[4]; w < win[5]; w++) row[w] += gv;
            }
    } else {
        double s = 0;
        for (int64_t d = win[0]; d < win[1]; d++)
            for (int64_t h = win[2]; h < win[3]; h++) {
                const POOL_T *row = xp + (d * H + h) * W;
                for (int64_t w = win[4]; w < win[5]; w++) s += row[w];
            }
        *y = (POOL_T)(s / (double)divisor);
    }
}

/* Forward (y = mean of windows of x) or, when backward, x (= gx, overwritten) from y (= gy). */
static void POOL_NAME(avg)(const aqa_conv_geom *g, bool count_include_pad, int64_t divisor_override, POOL_T *x,
                           POOL_T *y, bool backward) {
    const int64_t D = g->in[0], H = g->in[1], W = g->in[2], S = D * H * W;
    const int64_t Do = g->out[0], Ho = g->out[1], Wo = g->out[2], P = Do * Ho * Wo;
#pragma omp parallel for schedule(static) if (g->c_in * P > 16384)
    for (int64_t r = 0; r < g->n * g->c_in; r++) {
        POOL_T *xp = x + r * S, *yp = y + r * P;
        if (backward) memset(xp, 0, sizeof(POOL_T) * (size_t)S);
        for (int64_t od = 0; od < Do; od++)
            for (int64_t oh = 0; oh < Ho; oh++)
                for (int64_t ow = 0; ow < Wo; ow++) {
                    int64_t ds = od * g->stride[0] - g->pad[0], hs = oh * g->stride[1] - g->pad[1],
                            ws = ow * g->stride[2] - g->pad[2];
                    int64_t de = ds + g->k[0], he = hs + g->k[1], we = ws + g->k[2];
                    if (de > D + g->pad[0]) de = D + g->pad[0];
                    if (he > H + g->pad[1]) he = H + g->pad[1];
                    if (we > W + g->pad[2]) we = W + g->pad[2];
                    int64_t pool_size = (de - ds) * (he - hs) * (we - ws);
                    if (ds < 0) ds = 0;
                    if (hs < 0) hs = 0;
                    if (ws < 0) ws = 0;
                    if (de > D) de = D;
                    if (he > H) he = H;
                    if (we > W) we = W;
                    int64_t o = (od * Ho + oh) * Wo + ow;
                    if (ds >= de || hs >= he || ws >= we) {
                        if (!backward) yp[o] = 0;
                        continue;
                    }
                    int64_t divisor = divisor_override > 0 ? divisor_override
                                      : count_include_pad ? pool_size
                                                          : (de - ds) * (he - hs) * (we - ws);
                    const int64_t win[6] = {ds, de, hs, he, ws, we};
                    POOL_NAME(window_mean)(xp, H, W, win, divisor, yp + o, backward);
                }
    }
}

/* Adaptive average pooling forward, or backward (x = gx overwritten from y = gy). */
static void POOL_NAME(ada)(const aqa_conv_geom *g, POOL_T *x, POOL_T *y, bool backward) {
    const int64_t D = g->in[0], H = g->in[1], W = g->in[2], S = D * H * W;
    const int64_t Do = g->out[0], Ho = g->out[1], Wo = g->out[2], P = Do * Ho * Wo;
#pragma omp parallel for schedule(static) if (g->c_in * S > 16384)
    for (int64_t r = 0; r < g->n * g->c_in; r++) {
        POOL_T *xp = x + r * S, *yp = y + r * P;
        if (backward) memset(xp, 0, sizeof(POOL_T) * (size_t)S);
        for (int64_t od = 0; od < Do; od++) {
            int64_t ds = ada_start(od, D, Do), de = ada_end(od, D, Do);
            for (int64_t oh = 0; oh < Ho; oh++) {
                int64_t hs = ada_start(oh, H, Ho), he = ada_end(oh, H, Ho);
                for (int64_t ow = 0; ow < Wo; ow++) {
                    int64_t ws = ada_start(ow, W, Wo), we = ada_end(ow, W, Wo);
                    int64_t cnt = (de - ds) * (he - hs) * (we - ws), o = (od * Ho + oh) * Wo + ow;
                    const int64_t win[6] = {ds, de, hs, he, ws, we};
                    POOL_NAME(window_mean)(xp, H, W, win, cnt, yp + o, backward);
                }
            }
        }
    }
}

#endif /* POOL_T */
