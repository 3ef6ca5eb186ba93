/* conv.c: front-ends of the convolutions (argument checks, padding modes, output shapes,
 * autograd nodes) and the Conv1d/2d/3d / ConvTranspose1d modules.  The arithmetic is in
 * nn/conv_cpu.c (aqa__cpu_conv_forward / aqa__cpu_conv_backward) and, for CUDA tensors, in
 * nn/conv_cuda.c (aqa__cuda_conv_forward / aqa__cuda_conv_backward); kernel_forward and
 * kernel_backward pick by the operands' device. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/autograd.h"
#include "nn/conv.h"
#include "nn/init.h"
#include "nn/conv_cuda-impl.h"
#include "nn/nn_cpu-impl.h"
#include "ops/ops.h"
#include "tensor/tensor-impl.h"

aqa_status aqa_conv_padding(aqa_padding_mode mode, int64_t explicit_pad, int64_t in, int64_t k, int64_t stride,
                            int64_t dilation, int64_t *lo, int64_t *hi) {
    int64_t total;
    switch (mode) {
    case AQA_PADDING_EXPLICIT:
        if (explicit_pad < 0) return aqa_fail(AQA_EINVAL, "conv: negative padding %lld", (long long)explicit_pad);
        *lo = *hi = explicit_pad;
        return AQA_OK;
    case AQA_PADDING_VALID:
        *lo = *hi = 0;
        return AQA_OK;
    case AQA_PADDING_SAME:
        if (stride != 1)
            return aqa_fail(AQA_EINVAL, "conv: padding='same' is not supported for strided convolutions (stride %lld)",
                            (long long)stride);
        total = dilation * (k - 1);
        break;
    case AQA_PADDING_TF_SAME: {
        int64_t out = (in + stride - 1) / stride;
        total = (out - 1) * stride + (k - 1) * dilation + 1 - in;
        if (total < 0) total = 0;
        break;
    }
    default: return aqa_fail(AQA_EINVAL, "conv: unknown padding mode %d", (int)mode);
    }
    *lo = total / 2;
    *hi = total - *lo;
    return AQA_OK;
}

static int64_t opt_or(int64_t v, int64_t dflt) { return v ? v : dflt; }

/* Host-side copy of the geometry for the autograd node. */
static aqa_conv_geom *geom_dup(const aqa_conv_geom *g) {
    aqa_conv_geom *c = malloc(sizeof *c);
    if (c) *c = *g;
    return c;
}

/* Whether the convolution kernels exist for t's device (error naming op otherwise). */
static bool has_kernels(const char *op, const aqa_tensor *t) {
    aqa_device_kind k = aqa_tensor_device(t).kind;
    if (k == AQA_CPU) return true;
#ifdef AQA_HAVE_CUDA
    if (k == AQA_CUDA) return true;
#endif
    aqa_fail(AQA_EINVAL, "%s: no convolution kernel for device kind %d (%s)", op, (int)k,
             k == AQA_CUDA ? "this build has no CUDA backend" : "unknown device");
    return false;
}

/* The forward / backward kernels of the operands' device (y's, gy's). */
static aqa_status kernel_forward(const aqa_conv_geom *g, const aqa_tensor *x, const aqa_tensor *w,
                                 const aqa_tensor *b, aqa_tensor *y) {
#ifdef AQA_HAVE_CUDA
    if (aqa_tensor_device(y).kind == AQA_CUDA) return aqa__cuda_conv_forward(g, x, w, b, y);
#endif
    if (aqa_tensor_device(y).kind == AQA_CPU) return aqa__cpu_conv_forward(g, x, w, b, y);
    return aqa_fail(AQA_EINVAL, "conv: no kernel for device kind %d", (int)aqa_tensor_device(y).kind);
}
static aqa_status kernel_backward(const aqa_conv_geom *g, const aqa_tensor *x, const aqa_tensor *w,
                                  const aqa_tensor *gy, aqa_tensor *gx, aqa_tensor *gw, aqa_tensor *gb) {
#ifdef AQA_HAVE_CUDA
    if (aqa_tensor_device(gy).kind == AQA_CUDA) return aqa__cuda_conv_backward(g, x, w, gy, gx, gw, gb);
#endif
    if (aqa_tensor_device(gy).kind == AQA_CPU) return aqa__cpu_conv_backward(g, x, w, gy, gx, gw, gb);
    return aqa_fail(AQA_EINVAL, "conv backward: no kernel for device kind %d", (int)aqa_tensor_device(gy).kind);
}

/* Common checks: one float dtype, batch dim, channels.  On success *xo, *wo, *bo are the
 * operands (x unsqueezed when unbatched) inside the caller's scope, *nd the spatial
 * dims and *unbatched whether x had no batch dim. */
static bool prepare(const char *op, aqa_tensor *x, aqa_tensor *w, aqa_tensor *b, aqa_tensor **xo, aqa_tensor **wo,
                    aqa_tensor **bo, int *nd, bool *unbatched) {
    if (!aqa__check_inputs(op, b ? 3 : 2, (aqa_tensor *[]){x, w, b})) return false;
    *nd = w->ndim - 2;
    if (*nd < 1 || *nd > 3) {
        aqa_fail(AQA_EINVAL, "%s: weight must have 3 to 5 dims, got %d", op, w->ndim);
        return false;
    }
    if (x->ndim != *nd + 2 && x->ndim != *nd + 1) {
        aqa_fail(AQA_EINVAL, "%s: input must have %d (batched) or %d dims for a %d-D weight, got %d", op, *nd + 2,
                 *nd + 1, w->ndim, x->ndim);
        return false;
    }
    if (!aqa__check_same_dtype(op, 3, (aqa_tensor *[]){x, w, b}, (const char *[]){"input", "weight", "bias"}))
        return false;
    if (!aqa_dtype_is_float(x->dtype)) {
        aqa_fail(AQA_EINVAL, "%s: input and weight must be floating (got %s)", op, aqa_dtype_name(x->dtype));
        return false;
    }
    if (!has_kernels(op, x)) return false;
    *unbatched = x->ndim == *nd + 1;
    if (*unbatched) x = aqa_unsqueeze(x, 0);
    *xo = x;
    *wo = w;
    *bo = b;
    return *xo != NULL;
}

/* The bias, when there is one, must be a vector of the c output channels (false after an error
 * naming op). */
static bool bias_ok(const char *op, const aqa_tensor *bo, int64_t c) {
    if (!bo || (bo->ndim == 1 && bo->shape[0] == c)) return true;
    aqa_fail(AQA_EINVAL, "%s: bias must be [%lld]", op, (long long)c);
    return false;
}

/* Every spatial dim of g set to the neutral 1 (size, kernel, stride, dilation) and padding 0, so
 * that the dims a lower-dimensional layer does not use are inert. */
static void geom_reset_spatial(aqa_conv_geom *g) {
    for (int i = 0; i < 3; i++) {
        g->in[i] = g->out[i] = g->k[i] = g->stride[i] = g->dil[i] = 1;
        g->pad[i] = 0;
    }
}

/* The input (slot 0) and weight (slot 1) gradient buffers a conv node needs, on w's device; NULL
 * where no gradient is needed. */
static void new_grad_buffers(const aqa_node *n, const aqa_tensor *w, aqa_tensor **gx, aqa_tensor **gw) {
    aqa_device dev = aqa_tensor_device(w);
    *gx = n->needs_grad[0] ? aqa__new_unowned(n->in_ndim[0], n->in_shape[0], w->dtype, dev) : NULL;
    *gw = n->needs_grad[1] ? aqa__new_unowned(w->ndim, w->shape, w->dtype, dev) : NULL;
}

/* After the kernels ran (ok) the n gradient buffers g[] go to grad_in (NULL ones stay NULL);
 * after a failure they are released. */
static void hand_over_grads(bool ok, aqa_tensor *const *g, int n, aqa_tensor **grad_in) {
    for (int i = 0; i < n; i++) {
        if (ok) grad_in[i] = g[i] ? aqa__own(g[i]) : NULL;
        else aqa__release(g[i]);
    }
}

/* What the backward of node n needs: the weight (slot 0) gives the input gradient; the input
 * (slot 1) is kept only when the weight gradient needs it, so a frozen layer holds no activation;
 * the geometry as the node's context (no backward without it). */
static void save_for_backward(aqa_node *n, aqa_tensor *wc, aqa_tensor *xc, const aqa_conv_geom *geo) {
    if (!n) return;
    aqa_node_save(n, wc);
    if (n->needs_grad[1]) aqa_node_save(n, xc);
    n->ctx = geom_dup(geo);
    n->ctx_free = free;
    if (!n->ctx) n->backward = NULL;
}

/* ---- convolution ------------------------------------------------------------------------------- */

static void conv_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    const aqa_conv_geom *geo = n->ctx;
    aqa_tensor *w = n->saved[0], *x = n->n_saved > 1 ? n->saved[1] : NULL;
    aqa_tensor *gc = aqa_contiguous(g);
    if (!gc) return;
    aqa_tensor *gx, *gw;
    new_grad_buffers(n, w, &gx, &gw);
    aqa_tensor *gb = n->n_inputs > 2 && n->needs_grad[2]
                         ? aqa__new_unowned(1, (int64_t[]){geo->c_out}, w->dtype, aqa_tensor_device(w)) : NULL;
    bool ok = kernel_backward(geo, x, w, gc, gx, gw, gb) == AQA_OK;
    hand_over_grads(ok, (aqa_tensor *[]){gx, gw, gb}, n->n_inputs > 2 ? 3 : 2, grad_in);
}

aqa_tensor *aqa_conv(aqa_tensor *x, aqa_tensor *w, aqa_tensor *b, const aqa_conv_opts *opts) {
    static const aqa_conv_opts defaults;
    if (!opts) opts = &defaults;
    aqa_tensor *out = NULL;
    aqa_scope_begin();
    aqa_tensor *xo, *wo, *bo;
    int nd;
    bool unbatched;
    if (!prepare("aqa_conv", x, w, b, &xo, &wo, &bo, &nd, &unbatched)) goto done;
    int64_t groups = opt_or(opts->groups, 1);
    aqa_conv_geom geo = {.n = xo->shape[0], .c_in = xo->shape[1], .c_out = wo->shape[0], .groups = groups};
    if (groups < 1 || geo.c_in % groups || geo.c_out % groups || wo->shape[1] * groups != geo.c_in) {
        aqa_fail(AQA_EINVAL, "aqa_conv: input has %lld channels; weight [%lld, %lld, ...] with groups=%lld expects %lld",
                 (long long)geo.c_in, (long long)wo->shape[0], (long long)wo->shape[1], (long long)groups,
                 (long long)(wo->shape[1] * groups));
        goto done;
    }
    if (!bias_ok("aqa_conv", bo, geo.c_out)) goto done;
    int64_t oshape[5] = {geo.n, geo.c_out};
    geom_reset_spatial(&geo);
    for (int i = 0; i < nd; i++) {
        int j = 3 - nd + i;
        int64_t lo, hi;
        geo.in[j] = xo->shape[2 + i];
        geo.k[j] = wo->shape[2 + i];
        geo.stride[j] = opt_or(opts->stride[i], 1);
        geo.dil[j] = opt_or(opts->dilation[i], 1);
        if (geo.stride[j] < 1 || geo.dil[j] < 1) {
            aqa_fail(AQA_EINVAL, "aqa_conv: stride and dilation must be positive");
            goto done;
        }
        if (aqa_conv_padding(opts->padding_mode, opts->padding[i], geo.in[j], geo.k[j], geo.stride[j], geo.dil[j], &lo,
                             &hi) != AQA_OK)
            goto done;
        geo.pad[j] = lo;
        int64_t span = geo.in[j] + lo + hi - geo.dil[j] * (geo.k[j] - 1) - 1;
        if (span < 0) {
            aqa_fail(AQA_EINVAL, "aqa_conv: input size %lld (padded %lld) is smaller than the kernel extent %lld in dim %d",
                     (long long)geo.in[j], (long long)(geo.in[j] + lo + hi), (long long)(geo.dil[j] * (geo.k[j] - 1) + 1),
                     2 + i);
            goto done;
        }
        geo.out[j] = oshape[2 + i] = span / geo.stride[j] + 1;
    }
    aqa_tensor *xc = aqa_contiguous(xo), *wc = aqa_contiguous(wo), *bc = bo ? aqa_contiguous(bo) : NULL;
    if (!xc || !wc || (bo && !bc)) goto done;
    out = aqa__new_unowned(nd + 2, oshape, xc->dtype, aqa_tensor_device(xc));
    if (!out) goto done;
    if (kernel_forward(&geo, xc, wc, bc, out) != AQA_OK) {
        aqa__release(out);
        out = NULL;
        goto done;
    }
    aqa_node *n = aqa_node_record("conv", conv_backward, bo ? 3 : 2, (aqa_tensor *[]){xo, wo, bo}, out);
    save_for_backward(n, wc, xc, &geo);
done:
    aqa_scope_end();
    if (!out) return NULL;
    aqa__own(out);
    return unbatched ? aqa_squeeze(out, 0) : out;
}

static aqa_tensor *conv_nd(const char *op, int nd, aqa_tensor *x, aqa_tensor *w, aqa_tensor *b,
                           const aqa_conv_opts *opts) {
    if (w && w->ndim != nd + 2) return aqa_fail_null("%s: weight must have %d dims, got %d", op, nd + 2, w->ndim);
    return aqa_conv(x, w, b, opts);
}
aqa_tensor *aqa_conv1d(aqa_tensor *x, aqa_tensor *w, aqa_tensor *b, const aqa_conv_opts *opts) {
    return conv_nd("aqa_conv1d", 1, x, w, b, opts);
}
aqa_tensor *aqa_conv2d(aqa_tensor *x, aqa_tensor *w, aqa_tensor *b, const aqa_conv_opts *opts) {
    return conv_nd("aqa_conv2d", 2, x, w, b, opts);
}
aqa_tensor *aqa_conv3d(aqa_tensor *x, aqa_tensor *w, aqa_tensor *b, const aqa_conv_opts *opts) {
    return conv_nd("aqa_conv3d", 3, x, w, b, opts);
}

/* ---- transposed convolution ------------------------------------------------------------------ */
/* The geometry is that of the convolution it is the adjoint of: "in" is the transposed output,
 * "out" the transposed input, c_in the output channels, c_out the input channels. */

static void conv_transpose_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    const aqa_conv_geom *geo = n->ctx;
    aqa_tensor *w = n->saved[0], *x = n->n_saved > 1 ? n->saved[1] : NULL;
    aqa_tensor *gc = aqa_contiguous(g);
    if (!gc) return;
    aqa_tensor *gx, *gw;
    new_grad_buffers(n, w, &gx, &gw);
    aqa_status st = AQA_OK;
    if (gx) st = kernel_forward(geo, gc, w, NULL, gx);
    if (st == AQA_OK && gw) st = kernel_backward(geo, gc, w, x, NULL, gw, NULL);
    hand_over_grads(st == AQA_OK, (aqa_tensor *[]){gx, gw}, 2, grad_in);
}

aqa_tensor *aqa_conv_transpose(aqa_tensor *x, aqa_tensor *w, aqa_tensor *b, const aqa_conv_opts *opts) {
    static const aqa_conv_opts defaults;
    if (!opts) opts = &defaults;
    aqa_tensor *out = NULL, *res = NULL;
    aqa_scope_begin();
    aqa_tensor *xo, *wo, *bo;
    int nd;
    bool unbatched;
    if (!prepare("aqa_conv_transpose", x, w, b, &xo, &wo, &bo, &nd, &unbatched)) goto done;
    if (opts->padding_mode != AQA_PADDING_EXPLICIT) {
        aqa_fail(AQA_EINVAL, "aqa_conv_transpose: only explicit padding is supported");
        goto done;
    }
    int64_t groups = opt_or(opts->groups, 1);
    aqa_conv_geom geo = {.n = xo->shape[0], .c_out = xo->shape[1], .groups = groups};
    if (groups < 1 || wo->shape[0] != geo.c_out || geo.c_out % groups) {
        aqa_fail(AQA_EINVAL, "aqa_conv_transpose: input has %lld channels, weight's first dim is %lld (groups %lld)",
                 (long long)geo.c_out, (long long)wo->shape[0], (long long)groups);
        goto done;
    }
    geo.c_in = wo->shape[1] * groups;
    if (!bias_ok("aqa_conv_transpose", bo, geo.c_in)) goto done;
    int64_t oshape[5] = {geo.n, geo.c_in};
    geom_reset_spatial(&geo);
    for (int i = 0; i < nd; i++) {
        int j = 3 - nd + i;
        geo.out[j] = xo->shape[2 + i];
        geo.k[j] = wo->shape[2 + i];
        geo.stride[j] = opt_or(opts->stride[i], 1);
        geo.dil[j] = opt_or(opts->dilation[i], 1);
        geo.pad[j] = opts->padding[i];
        int64_t op = opts->output_padding[i];
        if (geo.stride[j] < 1 || geo.dil[j] < 1 || geo.pad[j] < 0 || op < 0 ||
            (op >= geo.stride[j] && op >= geo.dil[j])) {
            aqa_fail(AQA_EINVAL, "aqa_conv_transpose: bad stride/dilation/padding/output_padding in dim %d "
                                 "(output_padding must be smaller than stride or dilation)", 2 + i);
            goto done;
        }
        geo.in[j] = oshape[2 + i] =
            (geo.out[j] - 1) * geo.stride[j] - 2 * geo.pad[j] + geo.dil[j] * (geo.k[j] - 1) + op + 1;
        if (geo.in[j] < 1) {
            aqa_fail(AQA_EINVAL, "aqa_conv_transpose: output size %lld in dim %d is not positive",
                     (long long)geo.in[j], 2 + i);
            goto done;
        }
    }
    aqa_tensor *xc = aqa_contiguous(xo), *wc = aqa_contiguous(wo);
    if (!xc || !wc) goto done;
    out = aqa__new_unowned(nd + 2, oshape, xc->dtype, aqa_tensor_device(xc));
    if (!out) goto done;
    if (kernel_backward(&geo, NULL, wc, xc, out, NULL, NULL) != AQA_OK) {
        aqa__release(out);
        out = NULL;
        goto done;
    }
    aqa_node *n = aqa_node_record("conv_transpose", conv_transpose_backward, 2, (aqa_tensor *[]){xo, wo}, out);
    save_for_backward(n, wc, xc, &geo);
    aqa__own(out);
    res = out;
    if (bo) {
        int64_t bshape[5] = {1, geo.c_in, 1, 1, 1};
        res = aqa_add(out, aqa_view(bo, nd + 2, bshape));
    }
    if (unbatched) res = aqa_squeeze(res, 0);
    aqa_keep(res);
done:
    aqa_scope_end();
    return res;
}

aqa_tensor *aqa_conv_transpose1d(aqa_tensor *x, aqa_tensor *w, aqa_tensor *b, const aqa_conv_opts *opts) {
    if (w && w->ndim != 3) return aqa_fail_null("aqa_conv_transpose1d: weight must have 3 dims, got %d", w->ndim);
    return aqa_conv_transpose(x, w, b, opts);
}

/* ---- modules ---------------------------------------------------------------------------------- */

static const char *const conv_type_names[2][3] = {{"Conv1d", "Conv2d", "Conv3d"},
                                                  {"ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"}};

AQA_MODULE_FORWARD(conv_any, aqa_conv_layer, aqa_conv_layer_forward)

aqa_conv_layer *aqa_conv_layer_new(aqa_module *parent, const char *name, int nd, bool transposed,
                                   int64_t in_channels, int64_t out_channels, const int64_t *kernel,
                                   const aqa_conv_opts *opts, bool bias) {
    static const aqa_conv_opts defaults;
    if (!opts) opts = &defaults;
    if (nd < 1 || nd > 3 || !kernel) return aqa_fail_null("aqa_conv_layer_new(%s): nd must be 1..3", name ? name : "");
    int64_t groups = opt_or(opts->groups, 1);
    if (in_channels < 1 || out_channels < 1 || groups < 1 || in_channels % groups || out_channels % groups)
        return aqa_fail_null("aqa_conv_layer_new(%s): channels %lld -> %lld not divisible by groups %lld",
                             name ? name : "", (long long)in_channels, (long long)out_channels, (long long)groups);
    for (int i = 0; i < nd; i++)
        if (kernel[i] < 1) return aqa_fail_null("aqa_conv_layer_new(%s): kernel size must be positive", name ? name : "");
    int64_t wshape[5];
    wshape[0] = transposed ? in_channels : out_channels;
    wshape[1] = transposed ? out_channels / groups : in_channels / groups;
    for (int i = 0; i < nd; i++) wshape[2 + i] = kernel[i];
    aqa_conv_layer *m = aqa_module_new(sizeof *m, conv_type_names[transposed][nd - 1], parent, name, NULL);
    if (!m) return NULL;
    m->base.forward = conv_any;
    m->nd = nd;
    m->transposed = transposed;
    m->in_channels = in_channels;
    m->out_channels = out_channels;
    for (int i = 0; i < 3; i++) m->kernel_size[i] = i < nd ? kernel[i] : 1;
    m->opts = *opts;
    m->opts.groups = groups;
    aqa_tensor *w = aqa_empty(nd + 2, wshape, AQA_F32);
    aqa_tensor *b = bias ? aqa_empty(1, (int64_t[]){out_channels}, AQA_F32) : NULL;
    if (!w || (bias && !b) || aqa_init_conv_default(w, b, NULL) != AQA_OK) {
        aqa_tensor_free(w);
        aqa_tensor_free(b);
        if (!parent) aqa_module_free(&m->base);
        return NULL;
    }
    m->weight = aqa_module_param(&m->base, "weight", w);
    m->bias = aqa_module_param(&m->base, "bias", b);
    return m;
}

static aqa_conv_layer *cubic(aqa_module *parent, const char *name, int nd, int64_t in, int64_t out, int64_t k,
                             int64_t stride, int64_t padding, int64_t dilation, int64_t groups, bool bias) {
    aqa_conv_opts o = {.groups = groups};
    int64_t kernel[3];
    for (int i = 0; i < nd; i++) {
        kernel[i] = k;
        o.stride[i] = stride;
        o.padding[i] = padding;
        o.dilation[i] = dilation;
    }
    return aqa_conv_layer_new(parent, name, nd, false, in, out, kernel, &o, bias);
}
aqa_conv_layer *aqa_conv1d_layer_new(aqa_module *parent, const char *name, int64_t in_channels, int64_t out_channels,
                                     int64_t kernel, int64_t stride, int64_t padding, int64_t dilation, int64_t groups,
                                     bool bias) {
    return cubic(parent, name, 1, in_channels, out_channels, kernel, stride, padding, dilation, groups, bias);
}
aqa_conv_layer *aqa_conv2d_layer_new(aqa_module *parent, const char *name, int64_t in_channels, int64_t out_channels,
                                     int64_t kernel, int64_t stride, int64_t padding, int64_t dilation, int64_t groups,
                                     bool bias) {
    return cubic(parent, name, 2, in_channels, out_channels, kernel, stride, padding, dilation, groups, bias);
}
aqa_conv_layer *aqa_conv3d_layer_new(aqa_module *parent, const char *name, int64_t in_channels, int64_t out_channels,
                                     int64_t kernel, int64_t stride, int64_t padding, int64_t dilation, int64_t groups,
                                     bool bias) {
    return cubic(parent, name, 3, in_channels, out_channels, kernel, stride, padding, dilation, groups, bias);
}
aqa_conv_layer *aqa_conv_transpose1d_layer_new(aqa_module *parent, const char *name, int64_t in_channels,
                                               int64_t out_channels, int64_t kernel, int64_t stride, int64_t padding,
                                               int64_t output_padding, int64_t groups, bool bias, int64_t dilation) {
    aqa_conv_opts o = {.stride = {stride}, .padding = {padding}, .dilation = {dilation}, .groups = groups,
                       .output_padding = {output_padding}};
    return aqa_conv_layer_new(parent, name, 1, true, in_channels, out_channels, (int64_t[]){kernel}, &o, bias);
}

aqa_tensor *aqa_conv_layer_forward(aqa_conv_layer *m, aqa_tensor *x) {
    if (!m) return aqa_fail_null("aqa_conv_layer_forward: NULL module");
    return m->transposed ? aqa_conv_transpose(x, m->weight, m->bias, &m->opts) : aqa_conv(x, m->weight, m->bias, &m->opts);
}
