/* optim.c: SGD, Adam and AdamW (optim.h) and gradient clipping.
 *
 * Each update follows torch.optim's single-tensor code (torch/optim/{sgd,adam}.py) operation by
 * operation: every intermediate is rounded to the parameter's dtype where torch rounds it, and
 * scalars are converted to that dtype where torch's CPU kernels convert them, so a float32
 * trajectory agrees with torch's to float32 rounding.
 *
 * Dispatch (aqa_optim_step -> update_param): a CPU parameter whose data, gradient and state are
 * contiguous float32/float64 takes the fused loop (one pass, no temporaries, OpenMP for large
 * tensors); anything else (strided views, other devices) takes the composed path built from
 * the in-place and elementwise ops, which runs wherever those ops run.  Adam/AdamW parameters
 * on CUDA whose data, gradient and state are contiguous float32/float64 are first updated all
 * at once, one multi-tensor launch per dtype and device (nn/optim_cuda.c), with the fused
 * loop's operations and rounding. */
/* errno is never read after sqrt here and FP exceptions are off: lets GCC vectorise the loops (before
 * the includes: math.h's declarations take the options in force where they appear) */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math", "no-math-errno", "vect-cost-model=dynamic")
#endif
#include "config.h" /* AQA_HAVE_CUDA */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "autograd/autograd.h"
#include "nn/nn_cuda-impl.h"
#include "nn/optim.h"
#include "tensor/cpu-impl.h"
#include "ops/ops.h"
#include "tensor/tensor-impl.h"


#define PARALLEL_MIN 65536 /* elements below which threads cost more than they save */

const char *aqa_optim_kind_name(aqa_optim_kind kind) {
    switch (kind) {
    case AQA_OPTIM_SGD: return "SGD";
    case AQA_OPTIM_ADAM: return "Adam";
    case AQA_OPTIM_ADAMW: return "AdamW";
    }
    return "?";
}

/* ---- creation -------------------------------------------------------------------------------- */

static aqa_optimizer *optim_alloc(aqa_optim_kind kind, const aqa_param_group *defaults) {
    aqa_optimizer *o = calloc(1, sizeof *o);
    if (!o) return aqa_fail_null("aqa_optim: out of memory");
    o->kind = kind;
    o->defaults = *defaults;
    o->defaults.params = NULL;
    o->defaults.n_params = 0;
    return o;
}

static bool bad_number(double v) { return !isfinite(v) || v < 0.0; }

aqa_optimizer *aqa_sgd_new(const aqa_sgd_options *opts) {
    if (!opts) return aqa_fail_null("aqa_sgd_new: options are NULL");
    if (bad_number(opts->lr)) return aqa_fail_null("aqa_sgd_new: invalid lr %g", opts->lr);
    if (bad_number(opts->momentum)) return aqa_fail_null("aqa_sgd_new: invalid momentum %g", opts->momentum);
    if (bad_number(opts->weight_decay)) return aqa_fail_null("aqa_sgd_new: invalid weight_decay %g", opts->weight_decay);
    if (!isfinite(opts->dampening)) return aqa_fail_null("aqa_sgd_new: invalid dampening %g", opts->dampening);
    if (opts->nesterov && (opts->momentum <= 0.0 || opts->dampening != 0.0))
        return aqa_fail_null("aqa_sgd_new: Nesterov momentum requires a momentum and zero dampening");
    aqa_param_group d = {.lr = opts->lr, .initial_lr = opts->lr, .weight_decay = opts->weight_decay,
                         .momentum = opts->momentum, .dampening = opts->dampening, .nesterov = opts->nesterov};
    return optim_alloc(AQA_OPTIM_SGD, &d);
}

static aqa_optimizer *adam_new(const char *fn, aqa_optim_kind kind, const aqa_adam_options *opts) {
    if (!opts) return aqa_fail_null("%s: options are NULL", fn);
    if (bad_number(opts->lr)) return aqa_fail_null("%s: invalid lr %g", fn, opts->lr);
    if (bad_number(opts->eps)) return aqa_fail_null("%s: invalid eps %g", fn, opts->eps);
    if (!(opts->beta1 >= 0.0 && opts->beta1 < 1.0)) return aqa_fail_null("%s: invalid beta1 %g (need [0, 1))", fn, opts->beta1);
    if (!(opts->beta2 >= 0.0 && opts->beta2 < 1.0)) return aqa_fail_null("%s: invalid beta2 %g (need [0, 1))", fn, opts->beta2);
    if (bad_number(opts->weight_decay)) return aqa_fail_null("%s: invalid weight_decay %g", fn, opts->weight_decay);
    aqa_param_group d = {.lr = opts->lr, .initial_lr = opts->lr, .weight_decay = opts->weight_decay,
                         .beta1 = opts->beta1, .beta2 = opts->beta2, .eps = opts->eps, .amsgrad = opts->amsgrad};
    return optim_alloc(kind, &d);
}

aqa_optimizer *aqa_adam_new(const aqa_adam_options *opts) { return adam_new("aqa_adam_new", AQA_OPTIM_ADAM, opts); }
aqa_optimizer *aqa_adamw_new(const aqa_adam_options *opts) { return adam_new("aqa_adamw_new", AQA_OPTIM_ADAMW, opts); }

static void state_clear(aqa_param_state *s) {
    aqa_tensor_free(s->exp_avg);
    aqa_tensor_free(s->exp_avg_sq);
    aqa_tensor_free(s->max_exp_avg_sq);
    aqa_tensor_free(s->momentum_buffer);
    memset(s, 0, sizeof *s);
}

void aqa_optim_free(aqa_optimizer *opt) {
    if (!opt) return;
    for (int g = 0; g < opt->n_groups; g++) {
        for (int i = 0; i < opt->groups[g].n_params; i++) state_clear(&opt->state[g][i]);
        free(opt->state[g]);
        free(opt->groups[g].params);
    }
    free(opt->state);
    free(opt->groups);
    free(opt);
}

/* "fc1.weight" for a named parameter (modules name theirs), else "unnamed float32 [4, 3]". */
static const char *param_label(const aqa_tensor *p, char *buf, size_t size) {
    if (!p) return "NULL";
    if (p->name && *p->name) return p->name;
    char shape[128];
    snprintf(buf, size, "unnamed %s %s", aqa_dtype_name(p->dtype), aqa_shape_str(p, shape, sizeof shape));
    return buf;
}

int aqa_optim_add_group(aqa_optimizer *opt, aqa_tensor *const *params, int n, double lr, double weight_decay) {
    if (!opt) {
        aqa_fail(AQA_EINVAL, "aqa_optim_add_group: optimizer is NULL");
        return -1;
    }
    if (n < 0 || (n > 0 && !params) || bad_number(lr) || bad_number(weight_decay)) {
        aqa_fail(AQA_EINVAL, "aqa_optim_add_group: invalid arguments (n %d, lr %g, weight_decay %g)", n, lr, weight_decay);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        aqa_tensor *p = params[i];
        char buf[192];
        const char *nm = param_label(p, buf, sizeof buf);
        if (!p || !aqa_dtype_is_float(p->dtype) || p->grad_fn) {
            aqa_fail(AQA_EINVAL, "aqa_optim_add_group: parameter %d (%s) is %s", i, nm,
                     !p ? "NULL" : p->grad_fn ? "not a leaf" : "not floating");
            return -1;
        }
        for (int j = 0; j < i; j++)
            if (params[j] == p) {
                aqa_fail(AQA_EINVAL, "aqa_optim_add_group: parameter %d (%s) is listed twice (also at %d); a parameter "
                         "can be in one group only", i, nm, j);
                return -1;
            }
        for (int g = 0; g < opt->n_groups; g++)
            for (int j = 0; j < opt->groups[g].n_params; j++)
                if (opt->groups[g].params[j] == p) {
                    aqa_fail(AQA_EINVAL, "aqa_optim_add_group: parameter %d (%s) is already in group %d (parameter %d); "
                             "a parameter can be in one group only", i, nm, g, j);
                    return -1;
                }
    }
    if (opt->n_groups == opt->cap_groups) {
        int cap = opt->cap_groups ? 2 * opt->cap_groups : 4;
        aqa_param_group *ng = realloc(opt->groups, sizeof *ng * (size_t)cap);
        if (ng) opt->groups = ng;
        aqa_param_state **ns = realloc(opt->state, sizeof *ns * (size_t)cap);
        if (ns) opt->state = ns;
        if (!ng || !ns) {
            aqa_fail(AQA_ENOMEM, "aqa_optim_add_group: out of memory");
            return -1;
        }
        opt->cap_groups = cap;
    }
    aqa_param_group grp = opt->defaults;
    grp.lr = grp.initial_lr = lr;
    grp.weight_decay = weight_decay;
    grp.n_params = n;
    grp.params = malloc(sizeof *grp.params * (size_t)(n ? n : 1));
    aqa_param_state *st = calloc((size_t)(n ? n : 1), sizeof *st);
    if (!grp.params || !st) {
        free(grp.params);
        free(st);
        aqa_fail(AQA_ENOMEM, "aqa_optim_add_group: out of memory");
        return -1;
    }
    if (n) memcpy(grp.params, params, sizeof *grp.params * (size_t)n);
    opt->groups[opt->n_groups] = grp;
    opt->state[opt->n_groups] = st;
    return opt->n_groups++;
}

int aqa_optim_add_params(aqa_optimizer *opt, aqa_tensor *const *params, int n) {
    if (!opt) {
        aqa_fail(AQA_EINVAL, "aqa_optim_add_params: optimizer is NULL");
        return -1;
    }
    return aqa_optim_add_group(opt, params, n, opt->defaults.lr, opt->defaults.weight_decay);
}

void aqa_optim_zero_grad(aqa_optimizer *opt) {
    if (!opt) return;
    for (int g = 0; g < opt->n_groups; g++)
        for (int i = 0; i < opt->groups[g].n_params; i++) aqa_zero_grad(opt->groups[g].params[i]);
}

void aqa_optim_set_lr(aqa_optimizer *opt, double lr) {
    if (!opt) return;
    for (int g = 0; g < opt->n_groups; g++) opt->groups[g].lr = lr;
}

int aqa_optim_num_params(const aqa_optimizer *opt) {
    int n = 0;
    for (int g = 0; opt && g < opt->n_groups; g++) n += opt->groups[g].n_params;
    return n;
}

/* ---- fused CPU loops ------------------------------------------------------------------------- */

/* Scalars of one Adam update, already in the forms torch's kernels use. */
typedef struct adam_scalars {
    double decay;      /* AdamW: 1 - lr wd (1 when no decoupled decay) */
    double l2;         /* Adam: wd (0 when none) */
    double w1;         /* lerp weight 1 - beta1 */
    bool lerp_low;     /* |w1| < 0.5: torch's lerp uses self + w (end - self), else end - (end - self)(1 - w) */
    double beta2, c2;  /* exp_avg_sq = exp_avg_sq * beta2 + c2 g g, c2 = 1 - beta2 */
    double bc2_sqrt;   /* sqrt(1 - beta2^step) */
    double eps;
    double neg_step;   /* -lr / (1 - beta1^step) */
} adam_scalars;

/* One Adam/AdamW pass over elements [lo, hi) in type T; AMS (0/1) is fixed per generated
 * function so each variant is a straight vectorisable loop. */
#define DEFINE_ADAM_RANGE(T, SUF, SQRT, AMS)                                                            \
    static __attribute__((noinline)) void adam_range_##SUF(T *restrict p, const T *restrict g, T *restrict m, T *restrict v,     \
                                 T *restrict vmax, int64_t lo, int64_t hi, const adam_scalars *k) {      \
        const T decay = (T)k->decay, l2 = (T)k->l2, w1 = (T)k->w1, w1c = (T)(1.0 - k->w1);              \
        const T beta2 = (T)k->beta2, c2 = (T)k->c2, bc2 = (T)k->bc2_sqrt, eps = (T)k->eps;              \
        const T neg_step = (T)k->neg_step;                                                              \
        const T sel = k->lerp_low ? 1 : 0; /* torch's two lerp forms, chosen without a branch */        \
        (void)vmax;                                                                                     \
        for (int64_t i = lo; i < hi; i++) {                                                             \
            T pi = p[i] * decay;                                                                        \
            T gi = g[i] + l2 * p[i];                                                                    \
            T mi = m[i];                                                                                \
            T lo_form = mi + w1 * (gi - mi), hi_form = gi - (gi - mi) * w1c;                            \
            mi = sel * lo_form + (1 - sel) * hi_form;                                                   \
            T vi = v[i] * beta2;                                                                        \
            vi = vi + c2 * gi * gi;                                                                     \
            m[i] = mi;                                                                                  \
            v[i] = vi;                                                                                  \
            if (AMS) {                                                                                  \
                T mx = vmax[i] > vi ? vmax[i] : vi;                                                     \
                vmax[i] = mx;                                                                           \
                vi = mx;                                                                                \
            }                                                                                           \
            T denom = SQRT(vi) / bc2 + eps;                                                             \
            p[i] = pi + neg_step * mi / denom;                                                          \
        }                                                                                               \
    }
DEFINE_ADAM_RANGE(float, f32, sqrtf, 0)
DEFINE_ADAM_RANGE(float, f32_ams, sqrtf, 1)
DEFINE_ADAM_RANGE(double, f64, sqrt, 0)
DEFINE_ADAM_RANGE(double, f64_ams, sqrt, 1)

/* The float32 Adam loop with explicit SIMD, 8 lanes (AVX) or 4 (SSE2, the x86-64 baseline).  The
 * compiler will not vectorise sqrtf (errno), and the update is memory- and divide-bound, so the
 * vector divide and square root matter.  Lanes do exactly the scalar loop's IEEE operations in
 * the same order (no FMA is enabled: AVX without FMA), so every path gives identical bits; the
 * tail goes through the scalar loop. */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define OPTIM_HAVE_SIMD 1
#define DEFINE_ADAM_SIMD(SUF, ATTR, VT, W, LOAD, STORE, SET1, ADD, SUB, MUL, DIV, SQRT, MAX)                 \
    ATTR static void adam_simd_##SUF(float *restrict p, const float *restrict g, float *restrict m,        \
                                     float *restrict v, float *restrict vmax, int64_t lo, int64_t hi,       \
                                     const adam_scalars *k) {                                               \
        const VT decay = SET1((float)k->decay), l2 = SET1((float)k->l2), w1 = SET1((float)k->w1);           \
        const VT w1c = SET1((float)(1.0 - k->w1)), beta2 = SET1((float)k->beta2), c2 = SET1((float)k->c2);  \
        const VT bc2 = SET1((float)k->bc2_sqrt), eps = SET1((float)k->eps), ns = SET1((float)k->neg_step); \
        const bool lerp_low = k->lerp_low;                                                                  \
        int64_t i = lo;                                                                                     \
        for (; i + W <= hi; i += W) {                                                                       \
            VT p0 = LOAD(p + i), gi = LOAD(g + i), mi = LOAD(m + i), vi = LOAD(v + i);                      \
            VT pi = MUL(p0, decay);                                                                         \
            gi = ADD(gi, MUL(l2, p0));                                                                      \
            mi = lerp_low ? ADD(mi, MUL(w1, SUB(gi, mi))) : SUB(gi, MUL(SUB(gi, mi), w1c));                 \
            vi = MUL(vi, beta2);                                                                            \
            vi = ADD(vi, MUL(MUL(c2, gi), gi));                                                             \
            STORE(m + i, mi);                                                                               \
            STORE(v + i, vi);                                                                               \
            if (vmax) {                                                                                     \
                vi = MAX(vi, LOAD(vmax + i)); /* = vmax > vi ? vmax : vi */                                 \
                STORE(vmax + i, vi);                                                                        \
            }                                                                                               \
            VT denom = ADD(DIV(SQRT(vi), bc2), eps);                                                        \
            STORE(p + i, ADD(pi, DIV(MUL(ns, mi), denom)));                                                 \
        }                                                                                                   \
        if (vmax) adam_range_f32_ams(p, g, m, v, vmax, i, hi, k);                                           \
        else adam_range_f32(p, g, m, v, NULL, i, hi, k);                                                    \
    }
DEFINE_ADAM_SIMD(sse, , __m128, 4, _mm_loadu_ps, _mm_storeu_ps, _mm_set1_ps, _mm_add_ps, _mm_sub_ps, _mm_mul_ps,
                 _mm_div_ps, _mm_sqrt_ps, _mm_max_ps)
DEFINE_ADAM_SIMD(avx, __attribute__((target("avx"))), __m256, 8, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_set1_ps,
                 _mm256_add_ps, _mm256_sub_ps, _mm256_mul_ps, _mm256_div_ps, _mm256_sqrt_ps, _mm256_max_ps)

/* AVX present and allowed (tensor/cpu_isa.c: AVX2 implies it). */
static bool optim_has_avx(void) { return aqa__cpu_isa() >= AQA_ISA_AVX2; }
#else
#define OPTIM_HAVE_SIMD 0
#endif

/* Scalars of one SGD update. */
typedef struct sgd_scalars {
    double wd, momentum, c1; /* c1 = 1 - dampening */
    double neg_lr;
    bool nesterov, first;    /* first: the momentum buffer is created as a copy of the gradient */
} sgd_scalars;

#define DEFINE_SGD_RANGE(T, SUF)                                                                        \
    static __attribute__((noinline)) void sgd_range_##SUF(T *restrict p, const T *restrict g, T *restrict buf, int64_t lo,          \
                                int64_t hi, const sgd_scalars *k) {                                     \
        const T wd = (T)k->wd, mom = (T)k->momentum, c1 = (T)k->c1, neg_lr = (T)k->neg_lr;              \
        if (!buf) {                                                                                     \
            for (int64_t i = lo; i < hi; i++) p[i] = p[i] + neg_lr * (wd != 0 ? g[i] + wd * p[i] : g[i]); \
            return;                                                                                     \
        }                                                                                               \
        const bool first = k->first, nesterov = k->nesterov;                                            \
        for (int64_t i = lo; i < hi; i++) {                                                             \
            T gi = wd != 0 ? g[i] + wd * p[i] : g[i];                                                   \
            T b = first ? gi : buf[i] * mom + c1 * gi;                                                  \
            buf[i] = b;                                                                                 \
            gi = nesterov ? gi + mom * b : b;                                                           \
            p[i] = p[i] + neg_lr * gi;                                                                  \
        }                                                                                               \
    }
DEFINE_SGD_RANGE(float, f32)
DEFINE_SGD_RANGE(double, f64)

/* The arguments of one fused update, for the thread split. */
typedef struct fused_job {
    aqa_optim_kind kind;
    aqa_dtype dtype;
    void *p, *g, *m, *v, *vmax, *buf;
    const adam_scalars *adam;
    const sgd_scalars *sgd;
} fused_job;

static void fused_range(const fused_job *j, int64_t lo, int64_t hi) {
    if (j->kind == AQA_OPTIM_SGD) {
        if (j->dtype == AQA_F32) sgd_range_f32(j->p, j->g, j->buf, lo, hi, j->sgd);
        else sgd_range_f64(j->p, j->g, j->buf, lo, hi, j->sgd);
    } else if (j->dtype == AQA_F32) {
#if OPTIM_HAVE_SIMD
        if (optim_has_avx()) adam_simd_avx(j->p, j->g, j->m, j->v, j->vmax, lo, hi, j->adam);
        else adam_simd_sse(j->p, j->g, j->m, j->v, j->vmax, lo, hi, j->adam);
#else
        if (j->vmax) adam_range_f32_ams(j->p, j->g, j->m, j->v, j->vmax, lo, hi, j->adam);
        else adam_range_f32(j->p, j->g, j->m, j->v, NULL, lo, hi, j->adam);
#endif
    } else {
        if (j->vmax) adam_range_f64_ams(j->p, j->g, j->m, j->v, j->vmax, lo, hi, j->adam);
        else adam_range_f64(j->p, j->g, j->m, j->v, NULL, lo, hi, j->adam);
    }
}

/* Runs the update over n elements, split into contiguous per-thread ranges when large (an
 * element's result never depends on the split).  The loops live in ordinary functions rather
 * than in an OpenMP region so the vectorisation options above apply to them. */
static void fused_run(const fused_job *j, int64_t n) {
    if (n < PARALLEL_MIN) {
        fused_range(j, 0, n);
        return;
    }
#pragma omp parallel
    {
        int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
        int64_t lo = (n * t / nt) & ~(int64_t)15, hi = t == nt - 1 ? n : (n * (t + 1) / nt) & ~(int64_t)15;
        fused_range(j, lo, hi);
    }
}

/* The fused update of parameter p in place: all its elements, then its version moves on (autograd
 * must see the write). */
static aqa_status fused_update(const fused_job *j, aqa_tensor *p) {
    fused_run(j, aqa_numel(p));
    aqa__bump_version(p, "optimizer step");
    return AQA_OK;
}

/* ---- state ------------------------------------------------------------------------------------ */

/* A zero tensor shaped like p on p's device, owned by the optimizer (never by a scope). */
static aqa_tensor *state_zeros(const aqa_tensor *p) {
    aqa_tensor *t = aqa__new_unowned(p->ndim, p->shape, p->dtype, aqa_tensor_device(p));
    if (t && aqa_zero_(t) != AQA_OK) {
        aqa__release(t);
        return NULL;
    }
    return t;
}

static bool fusable(const aqa_tensor *t, const aqa_tensor *p) {
    return !t || (aqa_is_contiguous(t) && t->dtype == p->dtype && aqa_tensor_device(t).kind == AQA_CPU);
}

/* ---- one parameter ---------------------------------------------------------------------------- */

/* Creates p's Adam state when missing, counts the step and computes its scalars. */
static aqa_status adam_prepare(const aqa_optimizer *o, const aqa_param_group *grp, aqa_tensor *p, aqa_param_state *s,
                               adam_scalars *k) {
    bool decoupled = o->kind == AQA_OPTIM_ADAMW;
    if (!s->exp_avg) {
        s->exp_avg = state_zeros(p);
        s->exp_avg_sq = state_zeros(p);
        if (!s->exp_avg || !s->exp_avg_sq) return aqa_last_status();
    }
    if (grp->amsgrad && !s->max_exp_avg_sq && !(s->max_exp_avg_sq = state_zeros(p))) return aqa_last_status();
    s->step++;
    double step = (double)s->step;
    double bc1 = 1.0 - pow(grp->beta1, step), bc2 = 1.0 - pow(grp->beta2, step);
    *k = (adam_scalars){
        .decay = decoupled && grp->weight_decay != 0 ? 1.0 - grp->lr * grp->weight_decay : 1.0,
        .l2 = !decoupled ? grp->weight_decay : 0.0,
        .w1 = 1.0 - grp->beta1,
        .beta2 = grp->beta2,
        .c2 = 1.0 - grp->beta2,
        .bc2_sqrt = pow(bc2, 0.5),
        .eps = grp->eps,
        .neg_step = -(grp->lr / bc1),
    };
    k->lerp_low = fabs(k->w1) < 0.5;
    return AQA_OK;
}

static aqa_status adam_update(aqa_optimizer *o, const aqa_param_group *grp, aqa_tensor *p, aqa_param_state *s) {
    aqa_tensor *grad = p->grad;
    bool decoupled = o->kind == AQA_OPTIM_ADAMW;
    adam_scalars k;
    aqa_status pst = adam_prepare(o, grp, p, s, &k);
    if (pst != AQA_OK) return pst;
    if (aqa_tensor_device(p).kind == AQA_CPU && fusable(p, p) && fusable(grad, p) && fusable(s->exp_avg, p) &&
        fusable(s->exp_avg_sq, p) && fusable(s->max_exp_avg_sq, p)) {
        fused_job j = {.kind = o->kind, .dtype = p->dtype, .p = aqa_data(p), .g = aqa_data(grad),
                       .m = aqa_data(s->exp_avg), .v = aqa_data(s->exp_avg_sq),
                       .vmax = s->max_exp_avg_sq ? aqa_data(s->max_exp_avg_sq) : NULL, .adam = &k};
        return fused_update(&j, p);
    }
    /* composed path: the fused loop's operations, one op each and in the same order, so that it
     * gives the same bits (any layout, any device with these ops) */
    aqa_status st = AQA_OK;
    aqa_scope_begin();
    aqa_tensor *g = aqa_detach(grad);
    if (decoupled && grp->weight_decay != 0) st = aqa_mul_scalar_(p, k.decay);
    if (!decoupled && grp->weight_decay != 0) g = aqa_add(g, aqa_mul_scalar(aqa_detach(p), k.l2));
    if (st == AQA_OK) { /* torch's lerp: m + w (g - m) for w < 0.5, else g - (g - m)(1 - w) */
        if (k.lerp_low) st = aqa_add_(s->exp_avg, aqa_sub(g, s->exp_avg), k.w1);
        else st = aqa_copy_(s->exp_avg, aqa_sub(g, aqa_mul_scalar(aqa_sub(g, s->exp_avg), 1.0 - k.w1)));
    }
    if (st == AQA_OK) st = aqa_mul_scalar_(s->exp_avg_sq, k.beta2);
    if (st == AQA_OK) st = aqa_add_(s->exp_avg_sq, aqa_mul(aqa_mul_scalar(g, k.c2), g), 1.0);
    aqa_tensor *v = s->exp_avg_sq;
    if (st == AQA_OK && s->max_exp_avg_sq) {
        st = aqa_copy_(s->max_exp_avg_sq, aqa_maximum(s->max_exp_avg_sq, s->exp_avg_sq));
        v = s->max_exp_avg_sq;
    }
    if (st == AQA_OK) {
        aqa_tensor *denom = aqa_add_scalar(aqa_div_scalar(aqa_sqrt(v), k.bc2_sqrt), k.eps);
        aqa_tensor *upd = aqa_div(aqa_mul_scalar(s->exp_avg, k.neg_step), denom);
        st = upd ? aqa_add_(p, upd, 1.0) : aqa_last_status();
    }
    aqa_scope_end();
    return st;
}

static aqa_status sgd_update(const aqa_param_group *grp, aqa_tensor *p, aqa_param_state *s) {
    aqa_tensor *grad = p->grad;
    bool first = false;
    if (grp->momentum != 0 && !s->momentum_buffer) {
        if (!(s->momentum_buffer = state_zeros(p))) return aqa_last_status();
        first = true;
    }
    s->step++;
    sgd_scalars k = {.wd = grp->weight_decay, .momentum = grp->momentum, .c1 = 1.0 - grp->dampening,
                     .neg_lr = -grp->lr, .nesterov = grp->nesterov, .first = first};
    if (aqa_tensor_device(p).kind == AQA_CPU && fusable(p, p) && fusable(grad, p) && fusable(s->momentum_buffer, p)) {
        fused_job j = {.kind = AQA_OPTIM_SGD, .dtype = p->dtype, .p = aqa_data(p), .g = aqa_data(grad),
                       .buf = s->momentum_buffer ? aqa_data(s->momentum_buffer) : NULL, .sgd = &k};
        return fused_update(&j, p);
    }
    aqa_status st = AQA_OK;
    aqa_scope_begin();
    aqa_tensor *g = aqa_detach(grad);
    if (grp->weight_decay != 0) g = aqa_add(g, aqa_mul_scalar(aqa_detach(p), grp->weight_decay));
    if (s->momentum_buffer) {
        if (first) {
            st = aqa_copy_(s->momentum_buffer, g);
        } else {
            st = aqa_mul_scalar_(s->momentum_buffer, grp->momentum);
            if (st == AQA_OK) st = aqa_add_(s->momentum_buffer, g, k.c1);
        }
        g = grp->nesterov ? aqa_add(g, aqa_mul_scalar(s->momentum_buffer, grp->momentum)) : s->momentum_buffer;
    }
    if (st == AQA_OK) st = g ? aqa_add_(p, g, k.neg_lr) : aqa_last_status();
    aqa_scope_end();
    return st;
}

#ifdef AQA_HAVE_CUDA
/* t on CUDA device dev, contiguous, of p's dtype (or absent). */
static bool cuda_fusable(const aqa_tensor *t, const aqa_tensor *p, int dev) {
    if (!t) return true;
    aqa_device d = aqa_tensor_device(t);
    return d.kind == AQA_CUDA && d.index == dev && aqa_is_contiguous(t) && t->dtype == p->dtype;
}

/* The multi-tensor CUDA step of group gi: every Adam/AdamW parameter with a gradient, on CUDA,
 * with contiguous float32/float64 data, gradient and state is updated (one launch per dtype and
 * device) and marked in done[]; the others are left to the per-parameter path. */
static aqa_status adam_group_cuda(aqa_optimizer *o, int gi, bool *done) {
    const aqa_param_group *grp = &o->groups[gi];
    int n = grp->n_params;
    aqa_adam_entry *e = malloc(sizeof *e * (size_t)(n ? n : 1));
    int *dev_of = malloc(sizeof *dev_of * (size_t)(n ? n : 1));
    aqa_dtype *dt_of = malloc(sizeof *dt_of * (size_t)(n ? n : 1));
    aqa_status st = AQA_OK;
    if (!e || !dev_of || !dt_of) {
        st = aqa_fail(AQA_ENOMEM, "aqa_optim_step: out of memory");
        goto out;
    }
    adam_scalars k = {0};
    int m = 0;
    for (int i = 0; i < n && st == AQA_OK; i++) {
        aqa_tensor *p = grp->params[i];
        aqa_param_state *s = &o->state[gi][i];
        aqa_device pd = aqa_tensor_device(p);
        if (!p->grad || pd.kind != AQA_CUDA || (p->dtype != AQA_F32 && p->dtype != AQA_F64)) continue;
        if (!aqa_same_shape(p->grad, p) || !cuda_fusable(p, p, pd.index) || !cuda_fusable(p->grad, p, pd.index) ||
            !cuda_fusable(s->exp_avg, p, pd.index) || !cuda_fusable(s->exp_avg_sq, p, pd.index) ||
            !cuda_fusable(s->max_exp_avg_sq, p, pd.index))
            continue;
        if ((st = adam_prepare(o, grp, p, s, &k)) != AQA_OK) break;
        e[m] = (aqa_adam_entry){.p = aqa__ptr(p), .g = aqa__ptr(p->grad), .m = aqa__ptr(s->exp_avg),
                                .v = aqa__ptr(s->exp_avg_sq),
                                .vmax = s->max_exp_avg_sq ? aqa__ptr(s->max_exp_avg_sq) : NULL,
                                .n = aqa_numel(p), .neg_step = k.neg_step, .bc2_sqrt = k.bc2_sqrt};
        dev_of[m] = pd.index;
        dt_of[m] = p->dtype;
        done[i] = true;
        aqa__bump_version(p, "optimizer step");
        m++;
    }
    /* group-wide scalars (k of any member: they depend only on the group's settings) */
    aqa_adam_group_scalars gk = {k.decay, k.l2, k.w1, k.beta2, k.c2, k.eps, k.lerp_low};
    /* one launch per (device, dtype): entries of that kind, gathered in parameter order */
    for (int a = 0; a < m && st == AQA_OK; a++) {
        if (dev_of[a] < 0) continue;
        int dev = dev_of[a], cnt = 0;
        aqa_dtype dt = dt_of[a];
        aqa_adam_entry *sel = malloc(sizeof *sel * (size_t)m);
        if (!sel) {
            st = aqa_fail(AQA_ENOMEM, "aqa_optim_step: out of memory");
            break;
        }
        for (int b = a; b < m; b++)
            if (dev_of[b] == dev && dt_of[b] == dt) {
                sel[cnt++] = e[b];
                dev_of[b] = -1;
            }
        st = aqa__cuda_adam_multi(dt, dev, cnt, sel, &gk);
        free(sel);
    }
out:
    free(e);
    free(dev_of);
    free(dt_of);
    return st;
}
#endif

aqa_status aqa_optim_step(aqa_optimizer *opt) {
    if (!opt) return aqa_fail(AQA_EINVAL, "aqa_optim_step: optimizer is NULL");
    bool prev = aqa_set_grad_enabled(false);
    aqa_status st = AQA_OK;
    for (int gi = 0; gi < opt->n_groups && st == AQA_OK; gi++) {
        const aqa_param_group *grp = &opt->groups[gi];
        bool *done = NULL;
#ifdef AQA_HAVE_CUDA
        if (opt->kind != AQA_OPTIM_SGD && grp->n_params > 0) {
            if (!(done = calloc((size_t)grp->n_params, sizeof *done))) {
                st = aqa_fail(AQA_ENOMEM, "aqa_optim_step: out of memory");
                break;
            }
            st = adam_group_cuda(opt, gi, done);
        }
#endif
        for (int i = 0; i < grp->n_params && st == AQA_OK; i++) {
            aqa_tensor *p = grp->params[i];
            if (!p->grad || (done && done[i])) continue;
            if (!aqa_same_shape(p->grad, p) || p->grad->dtype != p->dtype) {
                char buf[192];
                st = aqa_fail(AQA_EINVAL, "aqa_optim_step: group %d parameter %d (%s): gradient shape/dtype differs from "
                              "the parameter's", gi, i, param_label(p, buf, sizeof buf));
                break;
            }
            st = opt->kind == AQA_OPTIM_SGD ? sgd_update(grp, p, &opt->state[gi][i])
                                            : adam_update(opt, grp, p, &opt->state[gi][i]);
        }
        free(done);
    }
    aqa_set_grad_enabled(prev);
    return st;
}

/* ---- gradient clipping ------------------------------------------------------------------------ */

/* sum of squares (p = 2) or max |x| (p = inf) of one gradient, in double */
static double grad_norm_part(aqa_tensor *g, bool inf_norm) {
    int64_t n = aqa_numel(g);
    if (aqa_tensor_device(g).kind == AQA_CPU && aqa_is_contiguous(g) && (g->dtype == AQA_F32 || g->dtype == AQA_F64)) {
        double acc = 0;
        if (g->dtype == AQA_F32) {
            const float *x = aqa_data(g);
            if (inf_norm) {
                for (int64_t i = 0; i < n; i++) acc = fmax(acc, fabs((double)x[i]) + (x[i] != x[i] ? NAN : 0));
            } else {
#pragma omp parallel for simd reduction(+ : acc) if (n >= PARALLEL_MIN)
                for (int64_t i = 0; i < n; i++) acc += (double)x[i] * x[i];
            }
        } else {
            const double *x = aqa_data(g);
            if (inf_norm) {
                for (int64_t i = 0; i < n; i++) acc = fmax(acc, fabs(x[i]) + (x[i] != x[i] ? NAN : 0));
            } else {
#pragma omp parallel for simd reduction(+ : acc) if (n >= PARALLEL_MIN)
                for (int64_t i = 0; i < n; i++) acc += x[i] * x[i];
            }
        }
        return acc;
    }
    aqa_scope_begin();
    aqa_tensor *d = aqa_to_dtype(g, AQA_F64);
    aqa_tensor *r = inf_norm ? aqa_max_all(aqa_abs(d)) : aqa_sum_all(aqa_square(d));
    double v = r ? aqa_item(r) : NAN;
    aqa_scope_end();
    return v;
}

aqa_status aqa_clip_grad_norm(aqa_tensor *const *params, int n, double max_norm, double norm_type,
                              bool error_if_nonfinite, double *total_norm) {
    if (n < 0 || (n > 0 && !params)) return aqa_fail(AQA_EINVAL, "aqa_clip_grad_norm: invalid parameter list");
    bool inf_norm = isinf(norm_type);
    if (!inf_norm && norm_type != 2.0)
        return aqa_fail(AQA_EINVAL, "aqa_clip_grad_norm: norm_type %g is not supported (2 or INFINITY)", norm_type);
    if (!(max_norm >= 0)) return aqa_fail(AQA_EINVAL, "aqa_clip_grad_norm: invalid max_norm %g", max_norm);
    bool prev = aqa_set_grad_enabled(false);
    double total = 0;
    for (int i = 0; i < n; i++) {
        if (!params[i] || !params[i]->grad) continue;
        double part = grad_norm_part(params[i]->grad, inf_norm);
        total = inf_norm ? (isnan(part) || isnan(total) ? NAN : fmax(total, part)) : total + part;
    }
    if (!inf_norm) total = sqrt(total);
    if (total_norm) *total_norm = total;
    aqa_status st = AQA_OK;
    if (!isfinite(total) && error_if_nonfinite) {
        st = aqa_fail(AQA_EINVAL, "aqa_clip_grad_norm: the total norm of the gradients is %g (non-finite); "
                      "pass error_if_nonfinite false to clip anyway", total);
    } else {
        /* torch multiplies by the clamped coefficient always (1 leaves the gradients unchanged) */
        double coef = max_norm / (total + 1e-6);
        if (coef < 1.0 || isnan(coef))
            for (int i = 0; i < n && st == AQA_OK; i++)
                if (params[i] && params[i]->grad) /* torch's coefficient is a tensor of the gradient's dtype */
                    st = aqa_mul_scalar_(params[i]->grad, params[i]->grad->dtype == AQA_F32 ? (double)(float)coef : coef);
    }
    aqa_set_grad_enabled(prev);
    return st;
}
