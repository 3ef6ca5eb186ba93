/* batchnorm.c: batch normalisation: CPU kernels (float32/float64, statistics accumulated in double,
 * one channel per OpenMP iteration), the fused autograd node (CUDA tensors take it too, with the
 * kernels of nn/norm_cuda.c; other devices, or AQA_BATCH_NORM_COMPOSED set, the composed path),
 * the running-statistics update and the BatchNorm1d/2d/3d modules.
 *
 * The file includes itself twice with BN_T = float / double for the typed kernels (the part after
 * #else). */
#ifndef BN_T

#include "config.h" /* AQA_HAVE_CUDA */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/autograd.h"
#include "dist/dist.h"
#include "nn/batchnorm-impl.h"
#include "nn/batchnorm.h"
#include "nn/nn_cpu-impl.h"
#include "nn/nn_cuda-impl.h"
#include "ops/ops.h"
#include "tensor/tensor-impl.h"

#define BN_T float
#define BN_NAME(x) x##_f32
#include "nn/batchnorm.c"
#undef BN_T
#undef BN_NAME
#define BN_T double
#define BN_NAME(x) x##_f64
#include "nn/batchnorm.c"
#undef BN_T
#undef BN_NAME

static void *dp(const aqa_tensor *t) { return t ? aqa_data(t) : NULL; }

static aqa_bn_stats_recorder g_recorder; /* aqa_batch_norm_set_recorder */
static void *g_recorder_user;
static struct aqa_dist *g_sync;          /* aqa_batch_norm_set_sync_group */

void aqa_batch_norm_set_recorder(aqa_bn_stats_recorder fn, void *user) {
    g_recorder = fn;
    g_recorder_user = user;
}

void aqa_batch_norm_set_sync_group(struct aqa_dist *pg) { g_sync = pg; }

aqa_status aqa_batch_norm_update_running(aqa_tensor *running_mean, aqa_tensor *running_var, const aqa_tensor *batch_mean,
                                         const aqa_tensor *batch_var, double var_scale, double momentum) {
    if (g_recorder) {
        g_recorder(g_recorder_user, running_mean, running_var, batch_mean, batch_var, var_scale, momentum);
        return AQA_OK;
    }
    aqa_status st = aqa_mul_scalar_(running_mean, 1 - momentum);
    if (!st) st = aqa_add_(running_mean, batch_mean, momentum);
    if (!st) st = aqa_mul_scalar_(running_var, 1 - momentum);
    if (!st) st = aqa_add_(running_var, batch_var, momentum * var_scale);
    return st;
}

/* The forward / backward kernels of x's device. */
static aqa_status bn_forward_on(int64_t n, int64_t c, int64_t s, const aqa_tensor *x, const aqa_tensor *weight,
                                const aqa_tensor *bias, bool training, const aqa_tensor *run_mean,
                                const aqa_tensor *run_var, double eps, aqa_tensor *y, aqa_tensor *mean,
                                aqa_tensor *var, aqa_tensor *invstd) {
#ifdef AQA_HAVE_CUDA
    if (aqa_tensor_device(x).kind == AQA_CUDA)
        return aqa__cuda_batch_norm_forward(n, c, s, x, weight, bias, training, run_mean, run_var, eps, y, mean, var,
                                            invstd);
#endif
    return aqa__cpu_batch_norm_forward(n, c, s, x, weight, bias, training, run_mean, run_var, eps, y, mean, var,
                                       invstd);
}
static aqa_status bn_backward_on(int64_t n, int64_t c, int64_t s, const aqa_tensor *x, const aqa_tensor *gy,
                                 const aqa_tensor *mean, const aqa_tensor *invstd, const aqa_tensor *weight,
                                 bool training, aqa_tensor *gx, aqa_tensor *gw, aqa_tensor *gb) {
#ifdef AQA_HAVE_CUDA
    if (aqa_tensor_device(x).kind == AQA_CUDA)
        return aqa__cuda_batch_norm_backward(n, c, s, x, gy, mean, invstd, weight, training, gx, gw, gb);
#endif
    return aqa__cpu_batch_norm_backward(n, c, s, x, gy, mean, invstd, weight, training, gx, gw, gb);
}

/* Whether the fused kernels serve x's device. */
static bool bn_fused_device(const aqa_tensor *x) {
    aqa_device_kind k = aqa_tensor_device(x).kind;
#ifdef AQA_HAVE_CUDA
    if (k == AQA_CUDA) return true;
#endif
    return k == AQA_CPU;
}

aqa_status aqa__cpu_batch_norm_forward(int64_t n, int64_t c, int64_t s, const aqa_tensor *x,
                                       const aqa_tensor *weight, const aqa_tensor *bias, bool training,
                                       const aqa_tensor *run_mean, const aqa_tensor *run_var, double eps,
                                       aqa_tensor *y, aqa_tensor *mean, aqa_tensor *var, aqa_tensor *invstd) {
    switch (x->dtype) {
    case AQA_F32:
        bn_fwd_f32(n, c, s, dp(x), dp(weight), dp(bias), training, dp(run_mean), dp(run_var), eps, dp(y), dp(mean),
                   dp(var), dp(invstd));
        return AQA_OK;
    case AQA_F64:
        bn_fwd_f64(n, c, s, dp(x), dp(weight), dp(bias), training, dp(run_mean), dp(run_var), eps, dp(y), dp(mean),
                   dp(var), dp(invstd));
        return AQA_OK;
    default: return aqa_fail(AQA_EINVAL, "batch_norm: dtype %s not supported", aqa_dtype_name(x->dtype));
    }
}

aqa_status aqa__cpu_batch_norm_backward(int64_t n, int64_t c, int64_t s, const aqa_tensor *x, const aqa_tensor *gy,
                                        const aqa_tensor *mean, const aqa_tensor *invstd,
                                        const aqa_tensor *weight, bool training, aqa_tensor *gx,
                                        aqa_tensor *gw, aqa_tensor *gb) {
    switch (x->dtype) {
    case AQA_F32:
        bn_bwd_f32(n, c, s, dp(x), dp(gy), dp(mean), dp(invstd), dp(weight), training, dp(gx), dp(gw), dp(gb));
        return AQA_OK;
    case AQA_F64:
        bn_bwd_f64(n, c, s, dp(x), dp(gy), dp(mean), dp(invstd), dp(weight), training, dp(gx), dp(gw), dp(gb));
        return AQA_OK;
    default: return aqa_fail(AQA_EINVAL, "batch_norm backward: dtype %s not supported", aqa_dtype_name(x->dtype));
    }
}

/* ---- functional ---------------------------------------------------------------------------------- */

/* saved: 0 x, 1 mean, 2 invstd, 3 weight (if any); ints: 0 training, 1 n, 2 c, 3 s. */
static void bn_backward(aqa_node *node, aqa_tensor *g, aqa_tensor **grad_in) {
    aqa_tensor *x = node->saved[0], *mean = node->saved[1], *invstd = node->saved[2];
    aqa_tensor *w = node->n_saved > 3 ? node->saved[3] : NULL;
    int64_t n = node->ints[1], c = node->ints[2], s = node->ints[3];
    aqa_tensor *gc = aqa_contiguous(g);
    if (!gc) return;
    aqa_device dev = aqa_tensor_device(x);
    aqa_tensor *gx = node->needs_grad[0] ? aqa__new_unowned(x->ndim, x->shape, x->dtype, dev) : NULL;
    aqa_tensor *gw = node->needs_grad[1] ? aqa__new_unowned(1, &c, x->dtype, dev) : NULL;
    aqa_tensor *gb = node->needs_grad[2] ? aqa__new_unowned(1, &c, x->dtype, dev) : NULL;
    if (bn_backward_on(n, c, s, x, gc, mean, invstd, w, node->ints[0] != 0, gx, gw, gb) != AQA_OK) {
        aqa__release(gx);
        aqa__release(gw);
        aqa__release(gb);
        return;
    }
    grad_in[0] = gx ? aqa__own(gx) : NULL;
    grad_in[1] = gw ? aqa__own(gw) : NULL;
    grad_in[2] = gb ? aqa__own(gb) : NULL;
}

/* t as a contiguous [c] tensor of dtype dt (converted/copied when needed), or NULL on error. */
static aqa_tensor *as_vec(const char *what, aqa_tensor *t, int64_t c, aqa_dtype dt) {
    if (t->ndim != 1 || t->shape[0] != c)
        return aqa_fail_null("aqa_batch_norm: %s must be [%lld]", what, (long long)c);
    if (t->dtype != dt) t = aqa_to_dtype(t, dt);
    return aqa_contiguous(t);
}

/* Devices without a fused kernel: the same computation composed of tensor ops (autograd goes
 * through the ops; running statistics are updated in place, unrecorded, as in the fused path). */
static aqa_tensor *batch_norm_composed(aqa_tensor *x, aqa_tensor *running_mean, aqa_tensor *running_var,
                                       aqa_tensor *weight, aqa_tensor *bias, bool training, double momentum,
                                       double eps) {
    int dims[AQA_MAX_DIMS], k = 0;
    int64_t shape[AQA_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) {
        shape[i] = i == 1 ? x->shape[1] : 1;
        if (i != 1) dims[k++] = i;
    }
    aqa_scope_begin();
    aqa_tensor *mean, *var;
    if (training) {
        mean = aqa_mean(x, k, dims, true);
        var = aqa_var(x, k, dims, 0, true);
        if (running_mean && mean && var) {
            int64_t per_channel = aqa_numel(x) / x->shape[1];
            bool prev = aqa_set_grad_enabled(false);
            aqa_tensor *m = aqa_reshape(aqa_detach(mean), 1, &x->shape[1]);
            aqa_tensor *v = aqa_mul_scalar(aqa_reshape(aqa_detach(var), 1, &x->shape[1]),
                                           (double)per_channel / (double)(per_channel - 1));
            bool ok = m && v && aqa_batch_norm_update_running(running_mean, running_var, m, v, 1.0, momentum) == AQA_OK;
            aqa_set_grad_enabled(prev);
            if (!ok) mean = NULL;
        }
    } else {
        mean = aqa_reshape(running_mean, x->ndim, shape);
        var = aqa_reshape(running_var, x->ndim, shape);
    }
    aqa_tensor *y = aqa_mul(aqa_sub(x, mean), aqa_rsqrt(aqa_add_scalar(var, eps)));
    if (weight) y = aqa_mul(y, aqa_reshape(weight, x->ndim, shape));
    if (bias) y = aqa_add(y, aqa_reshape(bias, x->ndim, shape));
    aqa_keep(y);
    aqa_scope_end();
    return y;
}

aqa_tensor *aqa_batch_norm(aqa_tensor *x, aqa_tensor *running_mean, aqa_tensor *running_var, aqa_tensor *weight,
                           aqa_tensor *bias, bool training, double momentum, double eps) {
    if (!aqa__check_inputs("aqa_batch_norm", 1, &x)) return NULL;
    if (x->ndim < 2) return aqa_fail_null("aqa_batch_norm: input must have at least 2 dims, got %d", x->ndim);
    if (!aqa_dtype_is_float(x->dtype)) return aqa_fail_null("aqa_batch_norm: input must be floating");
    if ((running_mean == NULL) != (running_var == NULL))
        return aqa_fail_null("aqa_batch_norm: give both running_mean and running_var or neither");
    if (!training && !running_mean) return aqa_fail_null("aqa_batch_norm: eval mode needs running statistics");
    if (!aqa__check_same_dtype("aqa_batch_norm", 5, (aqa_tensor *[]){x, weight, bias, running_mean, running_var},
                               (const char *[]){"input", "weight", "bias", "running_mean", "running_var"}))
        return NULL;
    const int64_t n = x->shape[0], c = x->shape[1];
    int64_t s = 1;
    for (int i = 2; i < x->ndim; i++) s *= x->shape[i];
    if (training && n * s <= 1)
        return aqa_fail_null("aqa_batch_norm: expected more than 1 value per channel when training, got input of "
                             "%lld x %lld per channel", (long long)n, (long long)s);
    if (training && g_sync && aqa_dist_size(g_sync) > 1)
        return aqa__sync_batch_norm(g_sync, x, running_mean, running_var, weight, bias, momentum, eps);
    if (!bn_fused_device(x) || getenv("AQA_BATCH_NORM_COMPOSED"))
        return batch_norm_composed(x, running_mean, running_var, weight, bias, training, momentum, eps);
    aqa_dtype dt = x->dtype;
    aqa_tensor *out = NULL;
    aqa_scope_begin();
    aqa_tensor *xc = aqa_contiguous(x), *wc = NULL, *bc = NULL, *rm = NULL, *rv = NULL;
    if (!xc) goto done;
    if (weight && !(wc = as_vec("weight", weight, c, dt))) goto done;
    if (bias && !(bc = as_vec("bias", bias, c, dt))) goto done;
    if (running_mean && (!(rm = as_vec("running_mean", running_mean, c, dt)) ||
                         !(rv = as_vec("running_var", running_var, c, dt))))
        goto done;
    aqa_device dev = aqa_tensor_device(x);
    aqa_tensor *mean = aqa__own(aqa__new_unowned(1, &c, dt, dev)), *var = aqa__own(aqa__new_unowned(1, &c, dt, dev));
    aqa_tensor *invstd = aqa__own(aqa__new_unowned(1, &c, dt, dev));
    if (!mean || !var || !invstd) goto done;
    out = aqa__new_unowned(x->ndim, x->shape, dt, dev);
    if (!out) goto done;
    if (bn_forward_on(n, c, s, xc, wc, bc, training, rm, rv, eps, out, mean, var, invstd) != AQA_OK) {
        aqa__release(out);
        out = NULL;
        goto done;
    }
    if (training && running_mean) {
        /* running = (1 - m) running + m batch; the variance enters unbiased (n s / (n s - 1)). */
        double unbias = (double)(n * s) / (double)(n * s - 1);
        aqa_tensor *m32 = aqa_to_dtype(mean, running_mean->dtype), *v32 = aqa_to_dtype(var, running_var->dtype);
        if (!m32 || !v32 || aqa_batch_norm_update_running(running_mean, running_var, m32, v32, unbias, momentum)) {
            aqa__release(out);
            out = NULL;
            goto done;
        }
    }
    aqa_node *node = aqa_node_record("batch_norm", bn_backward, 3, (aqa_tensor *[]){x, weight, bias}, out);
    if (node) {
        node->ints[0] = training;
        node->ints[1] = n;
        node->ints[2] = c;
        node->ints[3] = s;
        aqa_node_save(node, xc);
        aqa_node_save(node, mean);
        aqa_node_save(node, invstd);
        if (wc) aqa_node_save(node, wc);
    }
done:
    aqa_scope_end();
    return out ? aqa__own(out) : NULL;
}

/* ---- modules ---------------------------------------------------------------------------------- */

static const char *const bn_type_names[3] = {"BatchNorm1d", "BatchNorm2d", "BatchNorm3d"};

AQA_MODULE_FORWARD(batch_norm_any, aqa_batch_norm_layer, aqa_batch_norm_layer_forward)

aqa_batch_norm_layer *aqa_batch_norm_layer_new(aqa_module *parent, const char *name, int nd, int64_t num_features,
                                               double eps, double momentum, bool affine, bool track_running_stats) {
    if (nd < 1 || nd > 3 || num_features < 1)
        return aqa_fail_null("aqa_batch_norm_layer_new(%s): nd must be 1..3 and num_features positive",
                             name ? name : "");
    aqa_batch_norm_layer *m = aqa_module_new(sizeof *m, bn_type_names[nd - 1], parent, name, NULL);
    if (!m) return NULL;
    m->base.forward = batch_norm_any;
    m->nd = nd;
    m->num_features = num_features;
    m->eps = eps;
    m->momentum = momentum;
    m->affine = affine;
    m->track_running_stats = track_running_stats;
    int64_t c = num_features;
    /* torch registers weight, bias, running_mean, running_var, num_batches_tracked in this order */
    m->weight = aqa_module_param(&m->base, "weight", affine ? aqa_ones(1, &c, AQA_F32) : NULL);
    m->bias = aqa_module_param(&m->base, "bias", affine ? aqa_zeros(1, &c, AQA_F32) : NULL);
    m->running_mean = aqa_module_buffer(&m->base, "running_mean", track_running_stats ? aqa_zeros(1, &c, AQA_F32) : NULL);
    m->running_var = aqa_module_buffer(&m->base, "running_var", track_running_stats ? aqa_ones(1, &c, AQA_F32) : NULL);
    m->num_batches_tracked = aqa_module_buffer(&m->base, "num_batches_tracked",
                                               track_running_stats ? aqa_zeros(0, NULL, AQA_I64) : NULL);
    if ((affine && (!m->weight || !m->bias)) ||
        (track_running_stats && (!m->running_mean || !m->running_var || !m->num_batches_tracked))) {
        if (!parent) aqa_module_free(&m->base);
        return NULL;
    }
    return m;
}

aqa_batch_norm_layer *aqa_batch_norm1d_layer_new(aqa_module *parent, const char *name, int64_t num_features) {
    return aqa_batch_norm_layer_new(parent, name, 1, num_features, 1e-5, 0.1, true, true);
}
aqa_batch_norm_layer *aqa_batch_norm2d_layer_new(aqa_module *parent, const char *name, int64_t num_features) {
    return aqa_batch_norm_layer_new(parent, name, 2, num_features, 1e-5, 0.1, true, true);
}
aqa_batch_norm_layer *aqa_batch_norm3d_layer_new(aqa_module *parent, const char *name, int64_t num_features) {
    return aqa_batch_norm_layer_new(parent, name, 3, num_features, 1e-5, 0.1, true, true);
}

aqa_tensor *aqa_batch_norm_layer_forward(aqa_batch_norm_layer *m, aqa_tensor *x) {
    if (!m) return aqa_fail_null("aqa_batch_norm_layer_forward: NULL module");
    if (!x) return NULL;
    bool ok = m->nd == 1 ? (x->ndim == 2 || x->ndim == 3) : x->ndim == m->nd + 2;
    if (!ok) return aqa_fail_null("%s: expected %s input, got %d dims", m->base.type,
                                  m->nd == 1 ? "2D or 3D" : m->nd == 2 ? "4D" : "5D", x->ndim);
    if (x->shape[1] != m->num_features)
        return aqa_fail_null("%s: expected %lld channels, got %lld", m->base.type, (long long)m->num_features,
                             (long long)x->shape[1]);
    double factor = isnan(m->momentum) ? 0.0 : m->momentum;
    if (m->base.training && m->track_running_stats && m->num_batches_tracked) {
        double nbt = aqa_item(m->num_batches_tracked) + 1;
        if (aqa_fill_(m->num_batches_tracked, nbt) != AQA_OK) return NULL;
        if (isnan(m->momentum)) factor = 1.0 / nbt; /* cumulative moving average */
    }
    bool use_batch = m->base.training || !m->running_mean;
    bool pass_running = !m->base.training || m->track_running_stats;
    return aqa_batch_norm(x, pass_running ? m->running_mean : NULL, pass_running ? m->running_var : NULL, m->weight,
                          m->bias, use_batch, factor, m->eps);
}

#else /* ---- typed kernels: BN_T ------------------------------------------------------------------ */

static void BN_NAME(bn_fwd)(int64_t n, int64_t c, int64_t s, const BN_T *x, const BN_T *w, const BN_T *b,
                            bool training, const BN_T *rm, const BN_T *rv, double eps, BN_T *y, BN_T *mean,
                            BN_T *var, BN_T *invstd) {
#pragma omp parallel for schedule(static) if (n * c * s > 32768)
    for (int64_t ch = 0; ch < c; ch++) {
        double mu, is;
        if (training) {
            double sum = 0;
            for (int64_t i = 0; i < n; i++) {
                const BN_T *p = x + (i * c + ch) * s;
                for (int64_t j = 0; j < s; j++) sum += p[j];
            }
            mu = sum / (double)(n * s);
            double sq = 0;
            for (int64_t i = 0; i < n; i++) {
                const BN_T *p = x + (i * c + ch) * s;
                for (int64_t j = 0; j < s; j++) {
                    double d = p[j] - mu;
                    sq += d * d;
                }
            }
            double v = sq / (double)(n * s);
            var[ch] = (BN_T)v;
            is = 1.0 / sqrt(v + eps);
        } else {
            mu = rm[ch];
            is = 1.0 / sqrt((double)rv[ch] + eps);
        }
        mean[ch] = (BN_T)mu;
        invstd[ch] = (BN_T)is;
        /* y = x * scale + shift */
        double scale = is * (w ? (double)w[ch] : 1.0), shift = (b ? (double)b[ch] : 0.0) - mu * scale;
        BN_T sc = (BN_T)scale, sh = (BN_T)shift;
        for (int64_t i = 0; i < n; i++) {
            const BN_T *p = x + (i * c + ch) * s;
            BN_T *q = y + (i * c + ch) * s;
            for (int64_t j = 0; j < s; j++) q[j] = p[j] * sc + sh;
        }
    }
}

static void BN_NAME(bn_bwd)(int64_t n, int64_t c, int64_t s, const BN_T *x, const BN_T *gy, const BN_T *mean,
                            const BN_T *invstd, const BN_T *w, bool training, BN_T *gx, BN_T *gw, BN_T *gb) {
#pragma omp parallel for schedule(static) if (n * c * s > 32768)
    for (int64_t ch = 0; ch < c; ch++) {
        double mu = mean[ch], is = invstd[ch], sum_dy = 0, sum_dy_xc = 0;
        for (int64_t i = 0; i < n; i++) {
            const BN_T *p = x + (i * c + ch) * s, *q = gy + (i * c + ch) * s;
            for (int64_t j = 0; j < s; j++) {
                sum_dy += q[j];
                sum_dy_xc += q[j] * (p[j] - mu);
            }
        }
        if (gb) gb[ch] = (BN_T)sum_dy;
        if (gw) gw[ch] = (BN_T)(sum_dy_xc * is);
        if (!gx) continue;
        double wv = w ? (double)w[ch] : 1.0;
        if (training) {
            /* dx = w * is * (dy - mean(dy) - xhat * mean(dy * xhat)) */
            double m = (double)(n * s);
            double k = is * is * sum_dy_xc / m, dmean = sum_dy / m;
            for (int64_t i = 0; i < n; i++) {
                const BN_T *p = x + (i * c + ch) * s, *q = gy + (i * c + ch) * s;
                BN_T *r = gx + (i * c + ch) * s;
                for (int64_t j = 0; j < s; j++) r[j] = (BN_T)((q[j] - dmean - (p[j] - mu) * k) * is * wv);
            }
        } else {
            BN_T f = (BN_T)(is * wv);
            for (int64_t i = 0; i < n; i++) {
                const BN_T *q = gy + (i * c + ch) * s;
                BN_T *r = gx + (i * c + ch) * s;
                for (int64_t j = 0; j < s; j++) r[j] = q[j] * f;
            }
        }
    }
}

#endif /* BN_T */
