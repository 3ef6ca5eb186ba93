/* norm_layer.c: layer normalisation: the fused CPU forward/backward kernels (one pass per row,
 * mean and 1/std saved; CUDA tensors take the same path with the kernels of nn/norm_cuda.c), a
 * composed fallback for other devices, and the LayerNorm module. */
#include "config.h" /* AQA_HAVE_CUDA */

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/autograd.h"
#include "nn/layers-impl.h"
#include "nn/nn_cuda-impl.h"
#include "nn/norm_layer.h"
#include "tensor/backend.h"
#include "tensor/cpu-impl.h"
#include "ops/ops.h"
#include "tensor/tensor-impl.h"

/* Below this many elements the kernels stay on one thread (thread start-up would dominate). */
#define PAR_MIN_WORK 32768

/* ---- CPU kernels, one instance per float type ------------------------------------------------------ */

/* Forward of rows [M, D]: y = (x - mean) * rstd * w + b; mean/rstd [M] written for backward. */
#define DEFINE_LN_FORWARD(NAME, T, SQRT, ATTR)                                                        \
    ATTR static void NAME(T *y, T *mean, T *rstd, const T *x, const T *w, const T *b, int64_t M,          \
                     int64_t D, double eps) {                                                          \
        _Pragma("omp parallel for if (M * D > PAR_MIN_WORK) schedule(static)")                         \
        for (int64_t r = 0; r < M; r++) {                                                              \
            const T *xr = x + r * D;                                                                   \
            T *yr = y + r * D;                                                                         \
            T s = 0;                                                                                   \
            _Pragma("omp simd reduction(+ : s)") for (int64_t j = 0; j < D; j++) s += xr[j];          \
            T mu = s / (T)D, v = 0;                                                                    \
            _Pragma("omp simd reduction(+ : v)") for (int64_t j = 0; j < D; j++) {                    \
                T d = xr[j] - mu;                                                                      \
                v += d * d;                                                                            \
            }                                                                                          \
            T rs = (T)1 / SQRT(v / (T)D + (T)eps);                                                     \
            mean[r] = mu;                                                                              \
            rstd[r] = rs;                                                                              \
            if (w && b) {                                                                              \
                _Pragma("omp simd") for (int64_t j = 0; j < D; j++) yr[j] = (xr[j] - mu) * rs * w[j] + b[j]; \
            } else if (w) {                                                                            \
                _Pragma("omp simd") for (int64_t j = 0; j < D; j++) yr[j] = (xr[j] - mu) * rs * w[j]; \
            } else if (b) {                                                                            \
                _Pragma("omp simd") for (int64_t j = 0; j < D; j++) yr[j] = (xr[j] - mu) * rs + b[j]; \
            } else {                                                                                   \
                _Pragma("omp simd") for (int64_t j = 0; j < D; j++) yr[j] = (xr[j] - mu) * rs;        \
            }                                                                                          \
        }                                                                                              \
    }

/* Backward of rows: gx = rstd * (gw - mean(gw) - xhat * mean(gw * xhat)) with gw = g * w, and
 * (when gwt/gbs are given) gwt += sum_rows g * xhat, gbs += sum_rows g, through per-thread
 * partial sums in `part` (2 * D * nthreads elements) so no thread writes another's memory. */
#define DEFINE_LN_BACKWARD(NAME, T, ATTR)                                                             \
    ATTR static void NAME(T *gx, T *gwt, T *gbs, const T *g, const T *x, const T *mean, const T *rstd,    \
                     const T *w, int64_t M, int64_t D, T *part, int nthreads) {                        \
        if (part) memset(part, 0, sizeof(T) * 2 * (size_t)D * (size_t)nthreads);                       \
        _Pragma("omp parallel num_threads(nthreads) if (nthreads > 1)") {                              \
            int t = omp_get_thread_num(), nt = omp_get_num_threads();                                  \
            T *pw = part ? part + (size_t)t * 2 * D : NULL, *pb = pw ? pw + D : NULL;                  \
            int64_t r0 = M * t / nt, r1 = M * (t + 1) / nt;                                            \
            for (int64_t r = r0; r < r1; r++) {                                                        \
                const T *xr = x + r * D, *gr = g + r * D;                                              \
                T mu = mean[r], rs = rstd[r], a = 0, c = 0;                                            \
                if (w) {                                                                               \
                    _Pragma("omp simd reduction(+ : a, c)") for (int64_t j = 0; j < D; j++) {         \
                        T gw = gr[j] * w[j];                                                           \
                        a += gw;                                                                       \
                        c += gw * (xr[j] - mu);                                                        \
                    }                                                                                  \
                } else {                                                                               \
                    _Pragma("omp simd reduction(+ : a, c)") for (int64_t j = 0; j < D; j++) {         \
                        a += gr[j];                                                                    \
                        c += gr[j] * (xr[j] - mu);                                                     \
                    }                                                                                  \
                }                                                                                      \
                /* c is sum(gw * (x - mu)); times rstd it is sum(gw * xhat) */                         \
                T ma = a / (T)D, mc = c * rs / (T)D;                                                   \
                if (gx) {                                                                              \
                    T *gxr = gx + r * D;                                                               \
                    if (w) {                                                                           \
                        _Pragma("omp simd") for (int64_t j = 0; j < D; j++)                            \
                            gxr[j] = rs * (gr[j] * w[j] - ma - (xr[j] - mu) * rs * mc);                 \
                    } else {                                                                           \
                        _Pragma("omp simd") for (int64_t j = 0; j < D; j++)                            \
                            gxr[j] = rs * (gr[j] - ma - (xr[j] - mu) * rs * mc);                        \
                    }                                                                                  \
                }                                                                                      \
                if (pw) {                                                                              \
                    _Pragma("omp simd") for (int64_t j = 0; j < D; j++) {                              \
                        pw[j] += gr[j] * (xr[j] - mu) * rs;                                            \
                        pb[j] += gr[j];                                                                \
                    }                                                                                  \
                }                                                                                      \
            }                                                                                          \
        }                                                                                              \
        if (part) {                                                                                    \
            for (int t = 0; t < nthreads; t++) {                                                       \
                const T *pw = part + (size_t)t * 2 * D, *pb = pw + D;                                  \
                if (gwt) for (int64_t j = 0; j < D; j++) gwt[j] = (t ? gwt[j] : 0) + pw[j];             \
                if (gbs) for (int64_t j = 0; j < D; j++) gbs[j] = (t ? gbs[j] : 0) + pb[j];             \
            }                                                                                          \
        }                                                                                              \
    }

DEFINE_LN_FORWARD(ln_forward_f32_base, float, sqrtf, )
DEFINE_LN_FORWARD(ln_forward_f64, double, sqrt, )
DEFINE_LN_BACKWARD(ln_backward_f32_base, float, )
DEFINE_LN_BACKWARD(ln_backward_f64, double, )
#if defined(__x86_64__) && defined(__GNUC__)
/* float32 rows compiled for AVX-512 (16 lanes: the row reductions, which are latency-bound, take a
 * quarter of the steps of the 4-lane baseline) and AVX2, chosen by tensor/cpu_isa.c */
#define LN_AVX512 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl")))
#define LN_AVX2 __attribute__((target("avx2,fma")))
DEFINE_LN_FORWARD(ln_forward_f32_avx512, float, sqrtf, LN_AVX512)
DEFINE_LN_BACKWARD(ln_backward_f32_avx512, float, LN_AVX512)
DEFINE_LN_FORWARD(ln_forward_f32_avx2, float, sqrtf, LN_AVX2)
DEFINE_LN_BACKWARD(ln_backward_f32_avx2, float, LN_AVX2)
#define LN_PICK(name) \
    (aqa__cpu_isa() >= AQA_ISA_AVX512 ? name##_avx512 : aqa__cpu_isa() >= AQA_ISA_AVX2 ? name##_avx2 : name##_base)
#else
#define LN_PICK(name) name##_base
#endif
#define ln_forward_f32 LN_PICK(ln_forward_f32)
#define ln_backward_f32 LN_PICK(ln_backward_f32)

bool aqa__nn_force_composed = false;

/* ---- helpers ------------------------------------------------------------------------------------------ */

/* An unowned contiguous version of t (a new reference to t itself when already contiguous). */
static aqa_tensor *contig(aqa_tensor *t) {
    if (!t) return NULL;
    if (aqa_is_contiguous(t)) {
        aqa__retain(t);
        return t;
    }
    aqa_tensor *c = aqa__new_unowned(t->ndim, t->shape, t->dtype, aqa_tensor_device(t));
    if (c && aqa_backend_for(aqa_tensor_device(t))->copy(c, t) != AQA_OK) {
        aqa__release(c);
        return NULL;
    }
    return c;
}

/* Composed form for devices without the fused kernels (and NULL-safe like every op). */
static aqa_tensor *layer_norm_composed(aqa_tensor *x, int nd, aqa_tensor *weight, aqa_tensor *bias, double eps) {
    int dims[AQA_MAX_DIMS];
    for (int i = 0; i < nd; i++) dims[i] = x->ndim - nd + i;
    aqa_scope_begin();
    aqa_tensor *xc = aqa_sub(x, aqa_mean(x, nd, dims, true));
    aqa_tensor *var = aqa_mean(aqa_square(xc), nd, dims, true);
    aqa_tensor *y = aqa_mul(xc, aqa_rsqrt(aqa_add_scalar(var, eps)));
    if (weight) y = aqa_mul(y, weight);
    if (bias) y = aqa_add(y, bias);
    aqa_keep(y);
    aqa_scope_end();
    return y;
}

/* saved: 0 x (contiguous), 1 mean [M], 2 rstd [M], 3 weight (contiguous, when ints[1]);
 * ints[0] = D (elements per row) */
static void ln_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    aqa_tensor *x = n->saved[0], *mean = n->saved[1], *rstd = n->saved[2], *w = n->ints[1] ? n->saved[3] : NULL;
    int64_t D = n->ints[0], M = mean->shape[0];
    aqa_device dev = aqa_tensor_device(x);
    aqa_tensor *gc = contig(g), *gx = NULL, *gw = NULL, *gb = NULL;
    void *part = NULL;
    if (!gc) return;
    bool ok = true;
    if (n->needs_grad[0]) ok = ok && (gx = aqa__new_unowned(x->ndim, x->shape, x->dtype, dev));
    if (n->needs_grad[1]) ok = ok && (gw = aqa__new_unowned(n->in_ndim[1], n->in_shape[1], x->dtype, dev));
    if (n->needs_grad[2]) ok = ok && (gb = aqa__new_unowned(n->in_ndim[2], n->in_shape[2], x->dtype, dev));
    if (dev.kind != AQA_CPU) {
#ifdef AQA_HAVE_CUDA
        if (ok) ok = aqa__cuda_layer_norm_backward(M, D, gc, x, mean, rstd, w, gx, gw, gb) == AQA_OK;
#else
        ok = false;
#endif
    } else {
        int nthreads = M * D > PAR_MIN_WORK ? omp_get_max_threads() : 1;
        if (ok && (gw || gb)) {
            part = malloc(aqa_dtype_size(x->dtype) * 2 * (size_t)D * (size_t)nthreads + 1);
            if (!part) ok = aqa_fail(AQA_ENOMEM, "layer_norm backward: no memory for partial sums") == AQA_OK;
        }
        if (ok && x->dtype == AQA_F32)
            ln_backward_f32(gx ? aqa_data(gx) : NULL, gw ? aqa_data(gw) : NULL, gb ? aqa_data(gb) : NULL,
                            aqa_data(gc), aqa_data(x), aqa_data(mean), aqa_data(rstd), w ? aqa_data(w) : NULL,
                            M, D, part, nthreads);
        else if (ok) /* F64 */
            ln_backward_f64(gx ? aqa_data(gx) : NULL, gw ? aqa_data(gw) : NULL, gb ? aqa_data(gb) : NULL,
                            aqa_data(gc), aqa_data(x), aqa_data(mean), aqa_data(rstd), w ? aqa_data(w) : NULL,
                            M, D, part, nthreads);
    }
    /* the gradients go to the inputs after the kernels ran, else they are dropped */
    if (ok) {
        grad_in[0] = gx ? aqa__own(gx) : NULL;
        grad_in[1] = gw ? aqa__own(gw) : NULL;
        grad_in[2] = gb ? aqa__own(gb) : NULL;
    } else {
        aqa__release(gx);
        aqa__release(gw);
        aqa__release(gb);
    }
    free(part);
    aqa__release(gc);
}

aqa_tensor *aqa_layer_norm(aqa_tensor *x, int nd, const int64_t *normalized_shape, aqa_tensor *weight,
                           aqa_tensor *bias, double eps) {
    if (!aqa__check_inputs("aqa_layer_norm", 1, &x)) return NULL;
    if (weight && !aqa__check_inputs("aqa_layer_norm", 2, (aqa_tensor *[]){x, weight})) return NULL;
    if (bias && !aqa__check_inputs("aqa_layer_norm", 2, (aqa_tensor *[]){x, bias})) return NULL;
    char b1[64];
    if (nd < 1 || nd > x->ndim || !normalized_shape)
        return aqa_fail_null("aqa_layer_norm: cannot normalise the last %d dims of a tensor of shape %s", nd,
                             aqa_shape_str(x, b1, sizeof b1));
    int64_t D = 1;
    for (int i = 0; i < nd; i++) {
        if (x->shape[x->ndim - nd + i] != normalized_shape[i])
            return aqa_fail_null("aqa_layer_norm: input %s does not end with the normalized shape (dim %d is %lld)",
                                 aqa_shape_str(x, b1, sizeof b1), i, (long long)normalized_shape[i]);
        D *= normalized_shape[i];
    }
    aqa_tensor *pars[2] = {weight, bias};
    for (int p = 0; p < 2; p++) {
        aqa_tensor *t = pars[p];
        if (!t) continue;
        bool same = t->ndim == nd;
        for (int i = 0; same && i < nd; i++) same = t->shape[i] == normalized_shape[i];
        if (!same)
            return aqa_fail_null("aqa_layer_norm: %s %s differs from the normalized shape", p ? "bias" : "weight",
                                 aqa_shape_str(t, b1, sizeof b1));
    }
    if (!aqa__check_same_dtype("aqa_layer_norm", 3, (aqa_tensor *[]){x, weight, bias},
                               (const char *[]){"input", "weight", "bias"}))
        return NULL;
    if (!aqa_dtype_is_float(x->dtype))
        return aqa_fail_null("aqa_layer_norm: input must be floating, got %s", aqa_dtype_name(x->dtype));
    const aqa_dtype dt = x->dtype;
    aqa_device dev = aqa_tensor_device(x);
#ifdef AQA_HAVE_CUDA
    bool fused = dev.kind == AQA_CPU || dev.kind == AQA_CUDA;
#else
    bool fused = dev.kind == AQA_CPU;
#endif
    if (!fused || aqa__nn_force_composed) return layer_norm_composed(x, nd, weight, bias, eps);

    int64_t M = D > 0 ? aqa_numel(x) / D : 0;
    aqa_tensor *xc = contig(x), *wc = contig(weight), *bc = contig(bias);
    aqa_tensor *out = aqa__new_unowned(x->ndim, x->shape, dt, dev);
    aqa_tensor *mean = aqa__new_unowned(1, (const int64_t[]){M}, dt, dev);
    aqa_tensor *rstd = aqa__new_unowned(1, (const int64_t[]){M}, dt, dev);
    if (!xc || (weight && !wc) || (bias && !bc) || !out || !mean || !rstd) {
        aqa__release(out);
        out = NULL;
        goto done;
    }
    if (dev.kind != AQA_CPU) {
#ifdef AQA_HAVE_CUDA
        if (aqa__cuda_layer_norm_forward(M, D, xc, wc, bc, eps, out, mean, rstd) != AQA_OK) {
#endif
            aqa__release(out);
            out = NULL;
            goto done;
#ifdef AQA_HAVE_CUDA
        }
#endif
    } else if (dt == AQA_F32)
        ln_forward_f32(aqa_data(out), aqa_data(mean), aqa_data(rstd), aqa_data(xc), wc ? aqa_data(wc) : NULL,
                       bc ? aqa_data(bc) : NULL, M, D, eps);
    else
        ln_forward_f64(aqa_data(out), aqa_data(mean), aqa_data(rstd), aqa_data(xc), wc ? aqa_data(wc) : NULL,
                       bc ? aqa_data(bc) : NULL, M, D, eps);
    aqa__own(out);
    aqa_node *n = aqa_node_record("layer_norm", ln_backward, 3, (aqa_tensor *[]){x, weight, bias}, out);
    if (n) {
        aqa_node_save(n, xc);
        aqa_node_save(n, mean);
        aqa_node_save(n, rstd);
        if (wc) aqa_node_save(n, wc);
        n->ints[0] = D;
        n->ints[1] = wc != NULL;
    }
done:
    aqa__release(xc);
    aqa__release(wc);
    aqa__release(bc);
    aqa__release(mean);
    aqa__release(rstd);
    return out;
}

/* ---- module ------------------------------------------------------------------------------------------ */

AQA_MODULE_FORWARD(layer_norm_any, aqa_layer_norm_layer, aqa_layer_norm_layer_forward)

aqa_layer_norm_layer *aqa_layer_norm_layer_new(aqa_module *parent, const char *name, int n_dims,
                                               const int64_t *normalized_shape, double eps,
                                               bool elementwise_affine) {
    if (n_dims < 1 || n_dims > AQA_MAX_DIMS || !normalized_shape)
        return aqa_fail_null("LayerNorm %s: bad normalized shape (%d dims)", name ? name : "", n_dims);
    aqa_layer_norm_layer *m = aqa_module_new(sizeof *m, "LayerNorm", parent, name, NULL);
    if (!m) return NULL;
    m->base.forward = layer_norm_any;
    m->n_dims = n_dims;
    memcpy(m->normalized_shape, normalized_shape, sizeof(int64_t) * (size_t)n_dims);
    m->eps = eps;
    m->elementwise_affine = elementwise_affine;
    if (elementwise_affine) {
        aqa_tensor *w = aqa_ones(n_dims, normalized_shape, AQA_F32);
        aqa_tensor *b = aqa_zeros(n_dims, normalized_shape, AQA_F32);
        m->weight = w ? aqa_module_param(&m->base, "weight", w) : NULL;
        m->bias = b ? aqa_module_param(&m->base, "bias", b) : NULL;
        if (!m->weight || !m->bias) {
            if (!m->weight) aqa_tensor_free(w);
            if (!m->bias) aqa_tensor_free(b);
            if (!parent) aqa_module_free(&m->base);
            return NULL;
        }
    }
    return m;
}

aqa_tensor *aqa_layer_norm_layer_forward(aqa_layer_norm_layer *m, aqa_tensor *x) {
    if (!m) return aqa_fail_null("aqa_layer_norm_layer_forward: NULL module");
    return aqa_layer_norm(x, m->n_dims, m->normalized_shape, m->weight, m->bias, m->eps);
}
