/* i3d.c: the I3D network (pytorch-i3d's InceptionI3d): Unit3D, InceptionModule, the same-padded
 * max pool, the feature/logits head, construction with pytorch-i3d's module names and channel
 * lists, weights loading, and the forward pass that releases activations as soon as no later op
 * needs them. */
#include <cjson/cJSON.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/autograd.h"
#include "models/i3d/i3d.h"
#include "nn/pool.h"
#include "io/safetensors.h"
#include "ops/ops.h"

static const char *const endpoint_names[AQA_I3D_N_ENDPOINTS] = {
    "Conv3d_1a_7x7", "MaxPool3d_2a_3x3", "Conv3d_2b_1x1", "Conv3d_2c_3x3", "MaxPool3d_3a_3x3", "Mixed_3b",
    "Mixed_3c",      "MaxPool3d_4a_3x3", "Mixed_4b",      "Mixed_4c",      "Mixed_4d",         "Mixed_4e",
    "Mixed_4f",      "MaxPool3d_5a_2x2", "Mixed_5b",      "Mixed_5c",      "Features",         "Logits"};

const char *aqa_i3d_endpoint_name(aqa_i3d_endpoint e) {
    return (int)e >= 0 && e < AQA_I3D_N_ENDPOINTS ? endpoint_names[e] : NULL;
}

int aqa_i3d_endpoint_from_name(const char *name) {
    for (int i = 0; name && i < AQA_I3D_N_ENDPOINTS; i++)
        if (strcmp(name, endpoint_names[i]) == 0) return i;
    return -1;
}

aqa_i3d_config aqa_i3d_default_config(void) {
    return (aqa_i3d_config){.num_classes = 400,
                            .in_channels = 3,
                            .final_endpoint = AQA_I3D_FEATURES,
                            .width_multiplier = 1.0,
                            .dropout_p = 0.5};
}

/* ---- Unit3D ------------------------------------------------------------------------------------- */

aqa_i3d_unit3d *aqa_i3d_unit3d_new(aqa_module *parent, const char *name, int64_t in_channels,
                                   int64_t out_channels, const int64_t kernel[3], const int64_t stride[3],
                                   bool batch_norm, bool relu, bool bias) {
    aqa_i3d_unit3d *u = aqa_module_new(sizeof *u, "Unit3D", parent, name, NULL);
    if (!u) return NULL;
    aqa_conv_opts opts = {.stride = {stride[0], stride[1], stride[2]}, .padding_mode = AQA_PADDING_TF_SAME};
    u->conv3d = aqa_conv_layer_new(&u->base, "conv3d", 3, false, in_channels, out_channels, kernel, &opts, bias);
    if (u->conv3d && batch_norm)
        u->bn = aqa_batch_norm_layer_new(&u->base, "bn", 3, out_channels, 1e-3, 0.01, true, true);
    u->relu = relu;
    if (!u->conv3d || (batch_norm && !u->bn)) {
        if (!parent) aqa_module_free(&u->base);
        return NULL;
    }
    return u;
}

static bool needs_grad(const aqa_tensor *x, const aqa_i3d_unit3d *u) {
    if (!aqa_is_grad_enabled()) return false;
    if (x->requires_grad || u->conv3d->weight->requires_grad) return true;
    if (u->conv3d->bias && u->conv3d->bias->requires_grad) return true;
    return u->bn && ((u->bn->weight && u->bn->weight->requires_grad) || (u->bn->bias && u->bn->bias->requires_grad));
}

/* In place y = relu(y * scale[c] + shift[c]) on a contiguous host [N, C, S] tensor: BatchNorm with
 * running statistics and ReLU in one pass over the convolution's output (inference only). */
static aqa_status bn_relu_inplace(aqa_tensor *y, const aqa_batch_norm_layer *bn, bool relu) {
    int64_t n = y->shape[0], c = y->shape[1], s = aqa_numel(y) / (n * c);
    double *scale = malloc(sizeof(double) * 2 * (size_t)c);
    if (!scale) return aqa_fail(AQA_ENOMEM, "Unit3D: out of memory");
    double *shift = scale + c;
    aqa_tensor *rm = bn->running_mean, *rv = bn->running_var, *w = bn->weight, *b = bn->bias;
    /* the per-channel values are read once through the generic accessor (any dtype/layout) */
    for (int64_t ch = 0; ch < c; ch++) {
        double mu = aqa_get(rm, &ch), var = aqa_get(rv, &ch);
        double is = 1.0 / sqrt(var + bn->eps);
        double g = w ? aqa_get(w, &ch) : 1.0, be = b ? aqa_get(b, &ch) : 0.0;
        scale[ch] = is * g;
        shift[ch] = be - mu * is * g;
    }
    if (y->dtype == AQA_F32) {
        float *p = aqa_data(y);
        /* the convolutions run on the same OpenMP team now (nn/conv_gemm.c), so no BLAS threads
         * wait for the cores while this team works */
#pragma omp parallel for schedule(static) if (n * c * s > 32768)
        for (int64_t i = 0; i < n * c; i++) {
            float sc = (float)scale[i % c], sh = (float)shift[i % c];
            float *q = p + i * s;
            if (relu)
                for (int64_t j = 0; j < s; j++) {
                    float v = q[j] * sc + sh;
                    q[j] = v < 0.0f ? 0.0f : v;
                }
            else
                for (int64_t j = 0; j < s; j++) q[j] = q[j] * sc + sh;
        }
    } else {
        double *p = aqa_data(y);
#pragma omp parallel for schedule(static) if (n * c * s > 32768)
        for (int64_t i = 0; i < n * c; i++) {
            double sc = scale[i % c], sh = shift[i % c];
            double *q = p + i * s;
            for (int64_t j = 0; j < s; j++) {
                double v = q[j] * sc + sh;
                q[j] = relu && v < 0.0 ? 0.0 : v;
            }
        }
    }
    free(scale);
    return AQA_OK;
}

aqa_tensor *aqa_i3d_unit3d_forward(aqa_i3d_unit3d *u, aqa_tensor *x, bool bn_training) {
    if (!u) return aqa_fail_null("aqa_i3d_unit3d_forward: NULL module");
    if (!x) return NULL;
    if (x->ndim != 5) return aqa_fail_null("Unit3D: expected a 5-D input [B, C, T, H, W], got %d dims", x->ndim);
    bool grad = needs_grad(x, u);
    aqa_tensor *y = aqa_conv_layer_forward(u->conv3d, x);
    if (!y) return NULL;
    if (!u->bn) {
        if (!u->relu) return y;
        aqa_tensor *r = aqa_relu(y);
        aqa_tensor_free(y);
        return r;
    }
    if (!grad && !bn_training && aqa_tensor_device(y).kind == AQA_CPU && aqa_is_contiguous(y) &&
        (y->dtype == AQA_F32 || y->dtype == AQA_F64)) {
        if (bn_relu_inplace(y, u->bn, u->relu) != AQA_OK) {
            aqa_tensor_free(y);
            return NULL;
        }
        return y;
    }
    aqa_batch_norm_layer *bn = u->bn;
    if (bn_training && bn->num_batches_tracked) {
        /* torch counts train-mode calls; momentum is fixed (0.01), so the count is only recorded */
        if (aqa_fill_(bn->num_batches_tracked, aqa_item(bn->num_batches_tracked) + 1) != AQA_OK) {
            aqa_tensor_free(y);
            return NULL;
        }
    }
    aqa_tensor *z = aqa_batch_norm(y, bn->running_mean, bn->running_var, bn->weight, bn->bias, bn_training,
                                   bn->momentum, bn->eps);
    aqa_tensor_free(y); /* the batch-norm node keeps what its backward needs */
    if (!z || !u->relu) return z;
    aqa_tensor *r = aqa_relu(z);
    aqa_tensor_free(z);
    return r;
}

/* ---- max pool with TF "SAME" padding ------------------------------------------------------------ */

/* torch's pooled size for one dim (see nn/pool.h). */
static int64_t pool_out(int64_t in, int64_t k, int64_t pad, int64_t s, bool ceil_mode) {
    int64_t num = in + 2 * pad - (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
    int64_t out = num / s + 1;
    if (ceil_mode && (out - 1) * s >= in + pad) out--;
    return out;
}

/* Max over each window along the middle axis of [outer, n_in, inner] -> [outer, n_out, inner]; the
 * window of output i is [i s - lo, i s - lo + k) clipped to the input (non-empty by construction). */
#define DEF_MAX_AXIS(T, NAME)                                                                              \
    static void NAME(const T *in, T *out, int64_t outer, int64_t n_in, int64_t n_out, int64_t inner, int64_t k, \
                     int64_t s, int64_t lo) {                                                              \
        for (int64_t o = 0; o < outer; o++)                                                                \
            for (int64_t i = 0; i < n_out; i++) {                                                          \
                int64_t j0 = i * s - lo, j1 = j0 + k;                                                      \
                if (j0 < 0) j0 = 0;                                                                        \
                if (j1 > n_in) j1 = n_in;                                                                  \
                T *dst = out + (o * n_out + i) * inner;                                                    \
                const T *src = in + (o * n_in + j0) * inner;                                               \
                memcpy(dst, src, sizeof(T) * (size_t)inner);                                               \
                for (int64_t j = j0 + 1; j < j1; j++) {                                                    \
                    src += inner;                                                                          \
                    for (int64_t v = 0; v < inner; v++) dst[v] = src[v] > dst[v] ? src[v] : dst[v];        \
                }                                                                                          \
            }                                                                                              \
    }
DEF_MAX_AXIS(float, max_axis_f32)
DEF_MAX_AXIS(double, max_axis_f64)

/* Gradient of one plane: each output's gradient goes to the first input of its window (T, H, W
 * scan order, as torch's max pool) holding the output's value. */
#define DEF_MAX_BWD(T, NAME)                                                                               \
    static void NAME(const T *x, const T *y, const T *g, T *gx, const int64_t in[3], const int64_t out[3],  \
                     const int64_t k[3], const int64_t s[3], const int64_t lo[3]) {                        \
        for (int64_t ot = 0; ot < out[0]; ot++)                                                            \
            for (int64_t oh = 0; oh < out[1]; oh++)                                                        \
                for (int64_t ow = 0; ow < out[2]; ow++) {                                                  \
                    int64_t o = (ot * out[1] + oh) * out[2] + ow;                                          \
                    int64_t t0 = ot * s[0] - lo[0], h0 = oh * s[1] - lo[1], w0 = ow * s[2] - lo[2];        \
                    int64_t t1 = t0 + k[0], h1 = h0 + k[1], w1 = w0 + k[2];                                \
                    t0 = t0 < 0 ? 0 : t0, h0 = h0 < 0 ? 0 : h0, w0 = w0 < 0 ? 0 : w0;                      \
                    t1 = t1 > in[0] ? in[0] : t1, h1 = h1 > in[1] ? in[1] : h1, w1 = w1 > in[2] ? in[2] : w1; \
                    for (int64_t t = t0; t < t1; t++)                                                      \
                        for (int64_t h = h0; h < h1; h++)                                                  \
                            for (int64_t w = w0; w < w1; w++) {                                            \
                                int64_t p = (t * in[1] + h) * in[2] + w;                                   \
                                if (x[p] == y[o]) {                                                        \
                                    gx[p] += g[o];                                                         \
                                    goto next;                                                             \
                                }                                                                          \
                            }                                                                              \
                next:;                                                                                     \
                }                                                                                          \
    }
DEF_MAX_BWD(float, max_bwd_plane_f32)
DEF_MAX_BWD(double, max_bwd_plane_f64)

/* saved: 0 x, 1 y (contiguous host tensors); ints: kernel[3], stride[3]; ctx: low padding[3] */
static void max_same_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    if (!n->needs_grad[0]) return;
    aqa_tensor *x = n->saved[0], *y = n->saved[1];
    aqa_tensor *gc = aqa_contiguous(aqa_to_dtype(g, x->dtype));
    aqa_tensor *gx = aqa_zeros(x->ndim, x->shape, x->dtype);
    if (!gc || !gx) return;
    const int64_t *k = n->ints, *s = n->ints + 3, *lop = n->ctx;
    const int64_t in[3] = {x->shape[2], x->shape[3], x->shape[4]}, out[3] = {y->shape[2], y->shape[3], y->shape[4]};
    const int64_t planes = x->shape[0] * x->shape[1], pin = in[0] * in[1] * in[2], pout = out[0] * out[1] * out[2];
    /* planes are independent: one per thread at a time */
#pragma omp parallel for schedule(static) if (planes > 1 && planes * pin > 32768)
    for (int64_t p = 0; p < planes; p++) {
        if (x->dtype == AQA_F32)
            max_bwd_plane_f32((const float *)aqa_data(x) + p * pin, (const float *)aqa_data(y) + p * pout,
                              (const float *)aqa_data(gc) + p * pout, (float *)aqa_data(gx) + p * pin, in, out, k, s,
                              lop);
        else
            max_bwd_plane_f64((const double *)aqa_data(x) + p * pin, (const double *)aqa_data(y) + p * pout,
                              (const double *)aqa_data(gc) + p * pout, (double *)aqa_data(gx) + p * pin, in, out, k, s,
                              lop);
    }
    grad_in[0] = gx;
}

/* The max pool of non-negative float input as three 1-D passes (W, H, T), k_t + k_h + k_w
 * comparisons per output instead of their product, with its own backward node. */
static aqa_tensor *max_pool_separable(aqa_tensor *x, const int64_t k[3], const int64_t s[3], const int64_t lo[3]) {
    aqa_tensor *xc = aqa_contiguous(x);
    if (!xc) return NULL;
    const bool f32 = xc->dtype == AQA_F32;
    const size_t es = f32 ? sizeof(float) : sizeof(double);
    const int64_t planes = xc->shape[0] * xc->shape[1], T = xc->shape[2], H = xc->shape[3], W = xc->shape[4];
    const int64_t To = (T + s[0] - 1) / s[0], Ho = (H + s[1] - 1) / s[1], Wo = (W + s[2] - 1) / s[2];
    aqa_tensor *out = aqa_empty(AQA_SHAPE(xc->shape[0], xc->shape[1], To, Ho, Wo), xc->dtype);
    /* two intermediate planes per thread (the passes over W and H) */
    const int nth = planes > 1 && planes * T * H * W > 32768 ? omp_get_max_threads() : 1;
    const size_t tmp_plane = (size_t)(T * H * Wo + T * Ho * Wo);
    char *t1 = malloc(es * tmp_plane * (size_t)nth);
    if (!out || !t1) {
        free(t1);
        aqa_tensor_free(out);
        aqa_tensor_free(xc);
        return t1 ? NULL : aqa_fail_null("MaxPool3dSamePadding: out of memory");
    }
    const char *src = aqa_data(xc);
    char *dst = aqa_data(out);
#pragma omp parallel for num_threads(nth) schedule(static) if (nth > 1)
    for (int64_t p = 0; p < planes; p++) {
        char *a = t1 + es * tmp_plane * (size_t)omp_get_thread_num(), *b = a + es * (size_t)(T * H * Wo);
        const char *sp = src + es * (size_t)(p * T * H * W);
        char *dp = dst + es * (size_t)(p * To * Ho * Wo);
        if (f32) {
            max_axis_f32((const float *)sp, (float *)a, T * H, W, Wo, 1, k[2], s[2], lo[2]);
            max_axis_f32((const float *)a, (float *)b, T, H, Ho, Wo, k[1], s[1], lo[1]);
            max_axis_f32((const float *)b, (float *)dp, 1, T, To, Ho * Wo, k[0], s[0], lo[0]);
        } else {
            max_axis_f64((const double *)sp, (double *)a, T * H, W, Wo, 1, k[2], s[2], lo[2]);
            max_axis_f64((const double *)a, (double *)b, T, H, Ho, Wo, k[1], s[1], lo[1]);
            max_axis_f64((const double *)b, (double *)dp, 1, T, To, Ho * Wo, k[0], s[0], lo[0]);
        }
    }
    free(t1);
    aqa_node *n = aqa_node_record("i3d_max_pool_same", max_same_backward, 1, &x, out);
    if (n) {
        int64_t *lop = malloc(3 * sizeof(int64_t));
        if (lop) memcpy(lop, lo, 3 * sizeof(int64_t));
        n->ctx = lop;
        n->ctx_free = free;
        for (int i = 0; i < 3; i++) n->ints[i] = k[i], n->ints[3 + i] = s[i];
        aqa_node_save(n, xc);
        aqa_node_save(n, out);
        if (!lop) n->backward = NULL;
    }
    aqa_tensor_free(xc);
    return out;
}

aqa_tensor *aqa_i3d_max_pool_same(aqa_tensor *x, const int64_t kernel[3], const int64_t stride[3],
                                  bool nonnegative) {
    if (!x) return NULL;
    if (x->ndim != 5) return aqa_fail_null("MaxPool3dSamePadding: expected a 5-D input, got %d dims", x->ndim);
    int64_t lo[3], hi[3];
    bool ceil_mode = false, exact = nonnegative;
    for (int i = 0; i < 3; i++) {
        if (aqa_conv_padding(AQA_PADDING_TF_SAME, 0, x->shape[2 + i], kernel[i], stride[i], 1, &lo[i], &hi[i]) !=
            AQA_OK)
            return NULL;
        if (hi[i] > lo[i]) ceil_mode = true;
        if (2 * lo[i] > kernel[i]) exact = false;
    }
    /* On non-negative input zero padding changes no maximum, so the padding can be left out: the
     * low side as torch's symmetric padding, the extra high element as a ceil-mode window.  Check
     * that this gives TF's output size in every dim, else pad for real. */
    for (int i = 0; exact && i < 3; i++) {
        int64_t want = (x->shape[2 + i] + stride[i] - 1) / stride[i];
        if (pool_out(x->shape[2 + i], kernel[i], lo[i], stride[i], ceil_mode) != want) exact = false;
    }
    if (exact && (x->dtype == AQA_F32 || x->dtype == AQA_F64) && aqa_tensor_device(x).kind == AQA_CPU)
        return max_pool_separable(x, kernel, stride, lo);
    if (exact) return aqa_max_pool(x, 3, kernel, stride, lo, NULL, ceil_mode, NULL);
    int64_t pads[6] = {lo[2], hi[2], lo[1], hi[1], lo[0], hi[0]};
    aqa_tensor *xp = aqa_pad(x, 6, pads, 0.0);
    aqa_tensor *y = aqa_max_pool(xp, 3, kernel, stride, NULL, NULL, false, NULL);
    aqa_tensor_free(xp);
    return y;
}

/* ---- InceptionModule ------------------------------------------------------------------------------ */

aqa_i3d_inception *aqa_i3d_inception_new(aqa_module *parent, const char *name, int64_t in_channels,
                                         const int64_t ch[6]) {
    aqa_i3d_inception *b = aqa_module_new(sizeof *b, "InceptionModule", parent, name, NULL);
    if (!b) return NULL;
    static const int64_t k1[3] = {1, 1, 1}, k3[3] = {3, 3, 3}, s1[3] = {1, 1, 1};
    aqa_module *p = &b->base;
    /* registration order as pytorch-i3d: b0, b1a, b1b, b2a, b2b, (b3a: pool), b3b */
    b->b0 = aqa_i3d_unit3d_new(p, "b0", in_channels, ch[0], k1, s1, true, true, false);
    b->b1a = aqa_i3d_unit3d_new(p, "b1a", in_channels, ch[1], k1, s1, true, true, false);
    b->b1b = aqa_i3d_unit3d_new(p, "b1b", ch[1], ch[2], k3, s1, true, true, false);
    b->b2a = aqa_i3d_unit3d_new(p, "b2a", in_channels, ch[3], k1, s1, true, true, false);
    b->b2b = aqa_i3d_unit3d_new(p, "b2b", ch[3], ch[4], k3, s1, true, true, false);
    b->b3b = aqa_i3d_unit3d_new(p, "b3b", in_channels, ch[5], k1, s1, true, true, false);
    b->out_channels = ch[0] + ch[2] + ch[4] + ch[5];
    if (!b->b0 || !b->b1a || !b->b1b || !b->b2a || !b->b2b || !b->b3b) {
        if (!parent) aqa_module_free(&b->base);
        return NULL;
    }
    return b;
}

/* u2(u1(x)), releasing the middle activation. */
static aqa_tensor *two_units(aqa_i3d_unit3d *u1, aqa_i3d_unit3d *u2, aqa_tensor *x, bool bn_training) {
    aqa_tensor *t = aqa_i3d_unit3d_forward(u1, x, bn_training);
    if (!t) return NULL;
    aqa_tensor *y = aqa_i3d_unit3d_forward(u2, t, bn_training);
    aqa_tensor_free(t);
    return y;
}

aqa_tensor *aqa_i3d_inception_forward(aqa_i3d_inception *b, aqa_tensor *x, bool bn_training) {
    if (!b) return aqa_fail_null("aqa_i3d_inception_forward: NULL module");
    if (!x) return NULL;
    static const int64_t k3[3] = {3, 3, 3}, s1[3] = {1, 1, 1};
    aqa_tensor *br[4] = {NULL, NULL, NULL, NULL}, *out = NULL;
    if (!(br[0] = aqa_i3d_unit3d_forward(b->b0, x, bn_training))) goto done;
    if (!(br[1] = two_units(b->b1a, b->b1b, x, bn_training))) goto done;
    if (!(br[2] = two_units(b->b2a, b->b2b, x, bn_training))) goto done;
    /* the block's input is a ReLU output (or a pool of one): non-negative */
    aqa_tensor *p = aqa_i3d_max_pool_same(x, k3, s1, true);
    if (!p) goto done;
    br[3] = aqa_i3d_unit3d_forward(b->b3b, p, bn_training);
    aqa_tensor_free(p);
    if (!br[3]) goto done;
    out = aqa_cat(br, 4, 1);
done:
    for (int i = 0; i < 4; i++) aqa_tensor_free(br[i]);
    return out;
}

/* ---- head ------------------------------------------------------------------------------------------ */

/* pytorch-i3d's AvgPool3d([2, 7, 7], stride 1), each side clipped to the map. */
static aqa_tensor *avg_pool_head(aqa_tensor *x) {
    if (!x) return NULL;
    if (x->ndim != 5) return aqa_fail_null("I3D head: expected a 5-D input, got %d dims", x->ndim);
    static const int64_t full[3] = {2, 7, 7}, s1[3] = {1, 1, 1};
    int64_t k[3];
    for (int i = 0; i < 3; i++) k[i] = x->shape[2 + i] < full[i] ? x->shape[2 + i] : full[i];
    return aqa_avg_pool(x, 3, k, s1, NULL, false, true, 0);
}

/* Mean over the positions of [B, C, T, H, W] -> [B, C] (a view when there is one position). */
static aqa_tensor *mean_positions(aqa_tensor *x) {
    if (!x) return NULL;
    if (x->shape[2] * x->shape[3] * x->shape[4] == 1) return aqa_reshape(x, 2, x->shape);
    return aqa_mean(x, 3, (const int[]){2, 3, 4}, false);
}

aqa_tensor *aqa_i3d_pool_features(aqa_tensor *x) {
    aqa_tensor *p = avg_pool_head(x);
    aqa_tensor *f = mean_positions(p);
    aqa_tensor_free(p);
    return f;
}

/* ---- the network ------------------------------------------------------------------------------------- */

/* pytorch-i3d's out_channels of Mixed_3b ... Mixed_5c. */
static const int64_t mixed_channels[9][6] = {
    {64, 96, 128, 16, 32, 32},     {128, 128, 192, 32, 96, 64},   {192, 96, 208, 16, 48, 64},
    {160, 112, 224, 24, 64, 64},   {128, 128, 256, 24, 64, 64},   {112, 144, 288, 32, 64, 64},
    {256, 160, 320, 32, 128, 128}, {256, 160, 320, 32, 128, 128}, {384, 192, 384, 48, 128, 128}};

static int64_t scaled(int64_t c, double w) {
    int64_t v = (int64_t)floor((double)c * w + 0.5); /* half away from zero, as the torch script */
    return v < 1 ? 1 : v;
}

static bool is_pool(int e) {
    return e == AQA_I3D_MAXPOOL3D_2A_3X3 || e == AQA_I3D_MAXPOOL3D_3A_3X3 || e == AQA_I3D_MAXPOOL3D_4A_3X3 ||
           e == AQA_I3D_MAXPOOL3D_5A_2X2;
}

static bool is_mixed(int e) { return e >= AQA_I3D_MIXED_3B && e <= AQA_I3D_MIXED_5C && !is_pool(e); }

/* Index of a Mixed endpoint in mixed_channels. */
static int mixed_index(int e) {
    static const int order[] = {AQA_I3D_MIXED_3B, AQA_I3D_MIXED_3C, AQA_I3D_MIXED_4B, AQA_I3D_MIXED_4C,
                                AQA_I3D_MIXED_4D, AQA_I3D_MIXED_4E, AQA_I3D_MIXED_4F, AQA_I3D_MIXED_5B,
                                AQA_I3D_MIXED_5C};
    for (int i = 0; i < 9; i++)
        if (order[i] == e) return i;
    return -1;
}

aqa_i3d *aqa_i3d_new(const aqa_i3d_config *cfg_in) {
    aqa_i3d_config cfg = cfg_in ? *cfg_in : aqa_i3d_default_config();
    if (cfg.num_classes < 1 || cfg.in_channels < 1 || !(cfg.width_multiplier > 0) || (int)cfg.final_endpoint < 0 ||
        cfg.final_endpoint >= AQA_I3D_N_ENDPOINTS || !(cfg.dropout_p >= 0 && cfg.dropout_p <= 1))
        return aqa_fail_null("aqa_i3d_new: bad configuration (classes %lld, in_channels %lld, width %g, "
                             "endpoint %d, dropout %g)",
                             (long long)cfg.num_classes, (long long)cfg.in_channels, cfg.width_multiplier,
                             (int)cfg.final_endpoint, cfg.dropout_p);
    aqa_i3d *m = aqa_module_new(sizeof *m, "InceptionI3d", NULL, "", NULL);
    if (!m) return NULL;
    m->cfg = cfg;
    double w = cfg.width_multiplier;
    int last = cfg.final_endpoint < AQA_I3D_MIXED_5C ? (int)cfg.final_endpoint : AQA_I3D_MIXED_5C;
    static const int64_t k1[3] = {1, 1, 1}, k3[3] = {3, 3, 3}, k7[3] = {7, 7, 7}, s1[3] = {1, 1, 1},
                         s2[3] = {2, 2, 2};
    /* channels first, so the logits layer (registered before the endpoints in pytorch-i3d, whose
     * build() adds the endpoints last) knows its input width */
    int64_t c = cfg.in_channels;
    for (int e = 0; e <= AQA_I3D_MIXED_5C; e++) {
        if (e == AQA_I3D_CONV3D_1A_7X7 || e == AQA_I3D_CONV3D_2B_1X1) c = scaled(64, w);
        else if (e == AQA_I3D_CONV3D_2C_3X3) c = scaled(192, w);
        else if (is_mixed(e)) {
            const int64_t *mc = mixed_channels[mixed_index(e)];
            c = scaled(mc[0], w) + scaled(mc[2], w) + scaled(mc[4], w) + scaled(mc[5], w);
        }
        m->channels[e] = c;
    }
    m->feature_dim = m->channels[AQA_I3D_MIXED_5C];
    bool ok = true;
    if (cfg.final_endpoint == AQA_I3D_LOGITS) {
        m->logits = aqa_i3d_unit3d_new(&m->base, "logits", m->feature_dim, cfg.num_classes, k1, s1, false, false,
                                       true);
        ok = m->logits != NULL;
    }
    int64_t in = cfg.in_channels;
    for (int e = 0; ok && e <= last; e++) {
        aqa_module *p = &m->base;
        const char *name = endpoint_names[e];
        aqa_module *mod = NULL;
        switch (e) {
        case AQA_I3D_CONV3D_1A_7X7:
            mod = (aqa_module *)aqa_i3d_unit3d_new(p, name, in, m->channels[e], k7, s2, true, true, false);
            break;
        case AQA_I3D_CONV3D_2B_1X1:
            mod = (aqa_module *)aqa_i3d_unit3d_new(p, name, in, m->channels[e], k1, s1, true, true, false);
            break;
        case AQA_I3D_CONV3D_2C_3X3:
            mod = (aqa_module *)aqa_i3d_unit3d_new(p, name, in, m->channels[e], k3, s1, true, true, false);
            break;
        default:
            if (is_mixed(e)) {
                const int64_t *mc = mixed_channels[mixed_index(e)];
                int64_t ch[6];
                for (int i = 0; i < 6; i++) ch[i] = scaled(mc[i], w);
                mod = (aqa_module *)aqa_i3d_inception_new(p, name, in, ch);
            }
        }
        if (!is_pool(e) && !mod) ok = false;
        m->end_points[e] = mod;
        in = m->channels[e];
    }
    if (!ok) {
        aqa_module_free(&m->base);
        return NULL;
    }
    return m;
}

void aqa_i3d_free(aqa_i3d *m) {
    if (m) aqa_module_free(&m->base);
}

void aqa_i3d_freeze_bn(aqa_i3d *m, bool freeze_stats, bool freeze_affine) {
    if (!m) return;
    m->freeze_bn_stats = freeze_stats;
    aqa_named_tensor *all;
    int n = aqa_module_named_tensors(&m->base, false, &all);
    for (int i = 0; i < n; i++) {
        if (strstr(all[i].name, ".bn.")) aqa_requires_grad(all[i].tensor, !freeze_affine);
    }
    if (n >= 0) aqa_named_tensors_free(all, n);
}

/* ---- loading -------------------------------------------------------------------------------------------- */

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static char *skip_logits(const char *name, void *user) {
    aqa_i3d *m = user;
    if (!m->logits && strncmp(name, "logits.", 7) == 0) return NULL;
    return strdup(name);
}

aqa_status aqa_i3d_load(aqa_i3d *m, const char *path) {
    if (!m || !path) return aqa_fail(AQA_EINVAL, "aqa_i3d_load: NULL argument");
    aqa_st_file *f;
    aqa_status st = aqa_st_open(path, &f);
    if (st != AQA_OK) return st;
    aqa_named_tensor *mine;
    int n = aqa_module_named_tensors(&m->base, true, &mine);
    if (n < 0) {
        aqa_st_close(f);
        return aqa_last_status();
    }
    /* check everything before changing anything */
    for (int i = 0; i < n && st == AQA_OK; i++) {
        int j = aqa_st_find(f, mine[i].name);
        if (j < 0) {
            if (!ends_with(mine[i].name, "num_batches_tracked"))
                st = aqa_fail(AQA_EFORMAT, "%s: I3D tensor %s is missing", path, mine[i].name);
            continue;
        }
        const aqa_st_tensor *info = aqa_st_get(f, j);
        aqa_tensor *t = mine[i].tensor;
        bool same = info->ndim == t->ndim;
        for (int d = 0; same && d < t->ndim; d++) same = info->shape[d] == t->shape[d];
        if (!same) {
            char a[128];
            st = aqa_fail(AQA_EFORMAT, "%s: tensor %s has %d dims / another shape than the model's %s", path,
                          mine[i].name, info->ndim, aqa_shape_str(t, a, sizeof a));
        }
    }
    for (int j = 0; j < aqa_st_count(f) && st == AQA_OK; j++) {
        const char *name = aqa_st_name(f, j);
        if (!m->logits && strncmp(name, "logits.", 7) == 0) continue;
        bool known = false;
        for (int i = 0; i < n && !known; i++) known = strcmp(mine[i].name, name) == 0;
        if (!known) st = aqa_fail(AQA_EFORMAT, "%s: tensor %s is not part of this I3D", path, name);
    }
    aqa_named_tensors_free(mine, n);
    aqa_st_close(f);
    if (st != AQA_OK) return st;
    aqa_load_report report;
    return aqa_module_load(&m->base, path, false, skip_logits, m, &report);
}

aqa_status aqa_i3d_file_width(const char *path, double *width) {
    if (!path || !width) return aqa_fail(AQA_EINVAL, "aqa_i3d_file_width: NULL argument");
    aqa_st_file *f;
    aqa_status st = aqa_st_open(path, &f);
    if (st != AQA_OK) return st;
    const char *v = aqa_st_metadata(f, "width_multiplier"), *cfg = aqa_st_metadata(f, "config");
    *width = 1.0;
    if (v) {
        char *end;
        double w = strtod(v, &end);
        if (end == v || *end || !(w > 0 && w <= 1))
            st = aqa_fail(AQA_EFORMAT, "%s: metadata width_multiplier \"%s\" is not a number in (0, 1]", path, v);
        else
            *width = w;
    } else if (cfg) {
        cJSON *o = cJSON_Parse(cfg);
        const cJSON *jw = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, "width_multiplier") : NULL;
        if (jw && !(cJSON_IsNumber(jw) && jw->valuedouble > 0 && jw->valuedouble <= 1))
            st = aqa_fail(AQA_EFORMAT, "%s: metadata config's width_multiplier is not a number in (0, 1]", path);
        else if (jw)
            *width = jw->valuedouble;
        cJSON_Delete(o);
    }
    aqa_st_close(f);
    return st;
}

/* ---- forward ------------------------------------------------------------------------------------------ */

static bool bn_train(const aqa_i3d *m) { return m->base.training && !m->freeze_bn_stats; }

/* Runs the endpoints 0..last from x; the caller's x is never released. */
static aqa_tensor *run_trunk(aqa_i3d *m, aqa_tensor *x, int last) {
    static const int64_t k133[3] = {1, 3, 3}, s122[3] = {1, 2, 2}, k333[3] = {3, 3, 3}, s222[3] = {2, 2, 2},
                         k222[3] = {2, 2, 2};
    bool bt = bn_train(m);
    aqa_tensor *cur = x;
    for (int e = 0; e <= last && cur; e++) {
        aqa_tensor *next = NULL;
        switch (e) {
        case AQA_I3D_MAXPOOL3D_2A_3X3:
        case AQA_I3D_MAXPOOL3D_3A_3X3: next = aqa_i3d_max_pool_same(cur, k133, s122, true); break;
        case AQA_I3D_MAXPOOL3D_4A_3X3: next = aqa_i3d_max_pool_same(cur, k333, s222, true); break;
        case AQA_I3D_MAXPOOL3D_5A_2X2: next = aqa_i3d_max_pool_same(cur, k222, s222, true); break;
        default:
            if (is_mixed(e)) next = aqa_i3d_inception_forward((aqa_i3d_inception *)m->end_points[e], cur, bt);
            else next = aqa_i3d_unit3d_forward((aqa_i3d_unit3d *)m->end_points[e], cur, bt);
        }
        if (cur != x) aqa_tensor_free(cur);
        cur = next;
    }
    return cur;
}

static bool check_input(aqa_i3d *m, aqa_tensor *x, aqa_i3d_endpoint end) {
    if (!m) return aqa_fail_null("aqa_i3d_forward: NULL model"), false;
    if (!x) return false;
    if (x->ndim != 5 || x->shape[1] != m->cfg.in_channels) {
        char a[128];
        aqa_fail(AQA_EINVAL, "I3D: expected input [B, %lld, T, H, W], got %s", (long long)m->cfg.in_channels,
                 aqa_shape_str(x, a, sizeof a));
        return false;
    }
    if ((int)end < 0 || end > m->cfg.final_endpoint) {
        aqa_fail(AQA_EINVAL, "I3D: endpoint %d (%s) is past the model's final endpoint %s", (int)end,
                 aqa_i3d_endpoint_name(end) ? aqa_i3d_endpoint_name(end) : "?",
                 aqa_i3d_endpoint_name(m->cfg.final_endpoint));
        return false;
    }
    return true;
}

/* From the Mixed_5c map: features and/or logits. */
static aqa_status head(aqa_i3d *m, aqa_tensor *mixed5c, aqa_tensor **features, aqa_tensor **logits) {
    aqa_tensor *pooled = avg_pool_head(mixed5c);
    if (!pooled) return aqa_last_status();
    if (features && !(*features = mean_positions(pooled))) {
        aqa_tensor_free(pooled);
        return aqa_last_status();
    }
    if (logits) {
        aqa_tensor *d = aqa_dropout(pooled, m->cfg.dropout_p, m->base.training, NULL);
        aqa_tensor *l = d ? aqa_i3d_unit3d_forward(m->logits, d, false) : NULL;
        aqa_tensor_free(d);
        *logits = mean_positions(l);
        aqa_tensor_free(l);
        if (!*logits) {
            aqa_tensor_free(pooled);
            if (features) aqa_tensor_free(*features), *features = NULL;
            return aqa_last_status();
        }
    }
    aqa_tensor_free(pooled);
    return AQA_OK;
}

aqa_tensor *aqa_i3d_forward_to(aqa_i3d *m, aqa_tensor *x, aqa_i3d_endpoint end) {
    if (!check_input(m, x, end)) return NULL;
    if (end <= AQA_I3D_MIXED_5C) {
        return run_trunk(m, x, (int)end); /* runs at least Conv3d_1a: never x itself */
    }
    aqa_tensor *trunk = run_trunk(m, x, AQA_I3D_MIXED_5C);
    if (!trunk) return NULL;
    aqa_tensor *out = NULL;
    aqa_status st = end == AQA_I3D_FEATURES ? head(m, trunk, &out, NULL) : head(m, trunk, NULL, &out);
    aqa_tensor_free(trunk);
    return st == AQA_OK ? out : NULL;
}

aqa_tensor *aqa_i3d_forward(aqa_i3d *m, aqa_tensor *x) {
    return aqa_i3d_forward_to(m, x, m ? m->cfg.final_endpoint : AQA_I3D_FEATURES);
}

aqa_status aqa_i3d_features_logits(aqa_i3d *m, aqa_tensor *x, aqa_tensor **features, aqa_tensor **logits) {
    if (features) *features = NULL;
    if (logits) *logits = NULL;
    if (!check_input(m, x, logits ? AQA_I3D_LOGITS : AQA_I3D_FEATURES)) return aqa_last_status();
    aqa_tensor *trunk = run_trunk(m, x, AQA_I3D_MIXED_5C);
    if (!trunk) return aqa_last_status();
    aqa_status st = head(m, trunk, features, logits);
    aqa_tensor_free(trunk);
    return st;
}

aqa_status aqa_i3d_features_maps(aqa_i3d *m, aqa_tensor *x, aqa_tensor **features, aqa_tensor **maps) {
    if (!features || !maps) return aqa_fail(AQA_EINVAL, "aqa_i3d_features_maps: NULL output");
    *features = *maps = NULL;
    if (!check_input(m, x, AQA_I3D_FEATURES)) return aqa_last_status();
    aqa_tensor *trunk = run_trunk(m, x, AQA_I3D_MIXED_5C);
    if (!trunk) return aqa_last_status();
    aqa_status st = head(m, trunk, features, NULL);
    if (!st && !(*maps = aqa_mean(trunk, 1, (int[]){2}, false))) {
        st = aqa_last_status();
        aqa_tensor_free(*features);
        *features = NULL;
    }
    aqa_tensor_free(trunk);
    return st;
}
