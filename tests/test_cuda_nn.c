/* test_cuda_nn.c: the fused CUDA kernels of the nn layers (layer norm, batch norm, pooling, the
 * multi-tensor Adam/AdamW step) against the CPU kernels, on random inputs; and the composed
 * layers (LSTM, GRU, transformer decoder, graph convolution) on the GPU against the CPU.
 *
 * Each case runs the same public function on the CPU and on the GPU (float32 and float64, with
 * contiguous and non-contiguous inputs where the front-end accepts them), backpropagates the
 * same weighted sum of the outputs, and compares outputs and input gradients (and, for a layer
 * module, its parameters' gradients) by normalised error ||gpu - cpu|| / ||cpu||.  The GPU run is repeated: both runs must give identical bits (the
 * kernels use no atomics).  Without a GPU every case SKIPs with the reason (a failure with
 * AQA_REQUIRE_GPU=1).  Under the CPU emulator: sh tensor/cuda/emu/run.sh tests/test_cuda_nn
 * (AQA_TEST_ONLY=<case> runs one case). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/autograd.h"
#include "nn/attention.h"
#include "nn/batchnorm.h"
#include "nn/graph_conv.h"
#include "nn/layers-impl.h"
#include "nn/norm_layer.h"
#include "nn/optim.h"
#include "nn/pool.h"
#include "nn/rnn.h"
#include "nn/transformer.h"
#include "tensor/cuda/cuda.h"
#include "ops/ops.h"
#include "tensor/tensor-impl.h"
#include "tests/testlib.h"
#include "tests/cuda_testlib.h"




/* A function under test: inputs (leaves on one device, dtype dt) -> output.  For a module case
 * arg is the module (on that device, in that dtype). */
typedef aqa_tensor *(*case_fn)(aqa_tensor *const *in, aqa_device dev, const void *arg);

typedef struct nn_case {
    const char *name;    /* what */
    case_fn fn;          /* the op */
    const void *arg;     /* passed to fn */
    int nin;             /* inputs */
    int nd[3];           /* their ranks */
    int64_t shape[3][5]; /* and shapes */
    double lo, hi;       /* value range */
    bool ties;           /* round inputs to a coarse grid (max pooling ties) */
} nn_case;

/* Builds the module of a layer case (seeded, on the CPU). */
typedef aqa_module *(*build_fn)(void);

/* One run's results, as doubles. */
typedef struct result {
    int64_t nout;
    double *out;
    double *grad[3];
    int64_t npgrad;      /* elements of all the module's parameters */
    double *pgrad;       /* their gradients, in state_dict order (0 where none) */
} result;

static void result_free(result *r) {
    free(r->out);
    for (int i = 0; i < 3; i++) free(r->grad[i]);
    free(r->pgrad);
    memset(r, 0, sizeof *r);
}

/* The gradients of m's parameters, flattened in state_dict order, into r. */
static bool read_param_grads(aqa_module *m, result *r) {
    aqa_named_tensor *list = NULL;
    int n = aqa_module_named_tensors(m, false, &list);
    r->npgrad = 0;
    for (int i = 0; i < n; i++) r->npgrad += aqa_numel(list[i].tensor);
    r->pgrad = calloc((size_t)(r->npgrad ? r->npgrad : 1), sizeof(double));
    bool ok = n >= 0 && r->pgrad;
    for (int i = 0, off = 0; ok && i < n; off += (int)aqa_numel(list[i].tensor), i++)
        if (list[i].tensor->grad) ok = aqa_copy_to_host(list[i].tensor->grad, r->pgrad + off, AQA_F64) == AQA_OK;
    aqa_named_tensors_free(list, n);
    return ok;
}

/* m (NULL unless a layer case) is moved to dev and dt, its gradients cleared, and passed as arg. */
static bool run_case(const nn_case *c, aqa_module *m, aqa_device dev, aqa_dtype dt, double *const *vals, result *r) {
    memset(r, 0, sizeof *r);
    if (m && (aqa_module_to(m, dev) != AQA_OK || aqa_module_to_dtype(m, dt) != AQA_OK)) {
        printf("    %s: module to device: %s\n", c->name, aqa_last_error());
        return false;
    }
    if (m) aqa_module_zero_grad(m);
    aqa_scope_begin();
    aqa_tensor *in[3];
    for (int i = 0; i < c->nin; i++) {
        aqa_tensor *h = aqa_to_dtype(aqa_from_data(vals[i], c->nd[i], c->shape[i], AQA_F64), dt);
        in[i] = aqa_requires_grad(aqa_detach(aqa_to_device(h, dev)), true);
    }
    aqa_tensor *y = c->fn(in, dev, m ? (const void *)m : c->arg);
    bool ok = y != NULL;
    if (ok) {
        int64_t n = aqa_numel(y);
        double *w = malloc((size_t)(n ? n : 1) * sizeof(double));
        for (int64_t i = 0; i < n; i++) w[i] = 0.5 + 0.01 * (double)(i % 97); /* same on both devices */
        aqa_tensor *wt = aqa_to_device(aqa_to_dtype(aqa_from_data(w, y->ndim, y->shape, AQA_F64), dt), dev);
        free(w);
        aqa_tensor *loss = aqa_sum_all(aqa_mul(y, wt));
        ok = loss && aqa_backward(loss, NULL, false) == AQA_OK;
        r->nout = n;
        r->out = malloc((size_t)(n ? n : 1) * sizeof(double));
        ok = ok && aqa_copy_to_host(y, r->out, AQA_F64) == AQA_OK;
        for (int i = 0; ok && i < c->nin; i++) {
            r->grad[i] = calloc((size_t)aqa_numel(in[i]), sizeof(double));
            if (in[i]->grad) ok = aqa_copy_to_host(in[i]->grad, r->grad[i], AQA_F64) == AQA_OK;
        }
        if (ok && m) ok = read_param_grads(m, r);
    }
    if (!ok) printf("    %s (%s) on %s: %s\n", c->name, aqa_dtype_name(dt), dev.kind == AQA_CPU ? "cpu" : "cuda",
                    aqa_last_error());
    aqa_scope_end();
    return ok;
}


/* CPU vs GPU (twice: identical bits) for float32 and float64.  builds (NULL for plain cases)
 * holds each case's module builder: its module is then the case's arg. */
static void run_layer_cases(const nn_case *cases, size_t ncases, const build_fn *builds) {
    for (size_t k = 0; k < ncases; k++) {
        const nn_case *c = &cases[k];
        double *vals[3] = {NULL, NULL, NULL};
        for (int i = 0; i < c->nin; i++) {
            int64_t n = aqa__shape_numel(c->nd[i], c->shape[i]);
            vals[i] = malloc((size_t)n * sizeof(double));
            for (int64_t j = 0; j < n; j++) {
                double v = c->lo + (c->hi - c->lo) * urand();
                vals[i][j] = c->ties ? floor(v * 4) / 4 : v;
            }
        }
        for (int d = 0; d < 2; d++) {
            aqa_dtype dt = d ? AQA_F64 : AQA_F32;
            double tol = dt == AQA_F32 ? 2e-5 : 1e-10; /* sums over thousands of terms, other order */
            result rc, rg, rg2;
            aqa_module *m = builds ? builds[k]() : NULL;
            if (builds) CHECK_MSG(m != NULL, "%s: build: %s", c->name, aqa_last_error());
            bool okc = (m || !builds) && run_case(c, m, AQA_DEVICE_CPU, dt, vals, &rc);
            bool okg = (m || !builds) && run_case(c, m, DEV, dt, vals, &rg);
            bool okg2 = (m || !builds) && run_case(c, m, DEV, dt, vals, &rg2);
            aqa_module_free(m);
            CHECK_MSG(okc && okg && okg2, "%s %s: failed (cpu %d, cuda %d %d)", c->name, aqa_dtype_name(dt), okc, okg,
                      okg2);
            if (okc && okg && okg2) {
                double e = rc.nout == rg.nout ? rel_err(rc.out, rg.out, rc.nout) : INFINITY;
                CHECK_MSG(e < tol, "%s %s: forward normalised error %.3g", c->name, aqa_dtype_name(dt), e);
                CHECK_MSG(rg.nout == rg2.nout && !memcmp(rg.out, rg2.out, sizeof(double) * (size_t)rg.nout),
                          "%s %s: two GPU runs differ (forward)", c->name, aqa_dtype_name(dt));
                for (int i = 0; i < c->nin; i++) {
                    int64_t n = aqa__shape_numel(c->nd[i], c->shape[i]);
                    e = rel_err(rc.grad[i], rg.grad[i], n);
                    CHECK_MSG(e < tol, "%s %s: gradient of input %d: normalised error %.3g", c->name,
                              aqa_dtype_name(dt), i, e);
                    CHECK_MSG(!memcmp(rg.grad[i], rg2.grad[i], sizeof(double) * (size_t)n),
                              "%s %s: two GPU runs differ (gradient of input %d)", c->name, aqa_dtype_name(dt), i);
                }
                if (m) {
                    e = rc.npgrad == rg.npgrad ? rel_err(rc.pgrad, rg.pgrad, rc.npgrad) : INFINITY;
                    CHECK_MSG(e < tol, "%s %s: parameter gradients: normalised error %.3g", c->name, aqa_dtype_name(dt), e);
                    CHECK_MSG(rg.npgrad == rg2.npgrad && !memcmp(rg.pgrad, rg2.pgrad, sizeof(double) * (size_t)rg.npgrad),
                              "%s %s: two GPU runs differ (parameter gradients)", c->name, aqa_dtype_name(dt));
                }
            }
            result_free(&rc);
            result_free(&rg);
            result_free(&rg2);
        }
        for (int i = 0; i < 3; i++) free(vals[i]);
    }
}

static void run_cases(const nn_case *cases, size_t ncases) { run_layer_cases(cases, ncases, NULL); }

/* ---- layer norm ---------------------------------------------------------------------------------- */

/* arg: 0 = weight and bias, 1 = neither, 2 = x transposed (dims 0, 1) first, weight and bias */
static aqa_tensor *f_layer_norm(aqa_tensor *const *in, aqa_device dev, const void *arg) {
    (void)dev;
    int mode = *(const int *)arg;
    aqa_tensor *x = mode == 2 ? aqa_transpose(in[0], 0, 1) : in[0];
    int64_t D = x->shape[x->ndim - 1];
    return aqa_layer_norm(x, 1, &D, mode == 1 ? NULL : in[1], mode == 1 ? NULL : in[2], 1e-5);
}
static aqa_tensor *f_layer_norm2(aqa_tensor *const *in, aqa_device dev, const void *arg) {
    (void)dev;
    (void)arg;
    return aqa_layer_norm(in[0], 2, (const int64_t[]){6, 50}, in[1], in[2], 1e-6);
}

static const int M0 = 0, M1 = 1, M2 = 2;
static const nn_case ln_cases[] = {
    {"layer_norm affine", f_layer_norm, &M0, 3, {3, 1, 1}, {{5, 7, 40}, {40}, {40}}, -2, 2, false},
    {"layer_norm plain", f_layer_norm, &M1, 1, {2}, {{9, 33}}, -1, 3, false},
    {"layer_norm transposed input", f_layer_norm, &M2, 3, {3, 1, 1}, {{7, 5, 24}, {24}, {24}}, -2, 2, false},
    {"layer_norm 2 dims", f_layer_norm2, NULL, 3, {3, 2, 2}, {{4, 6, 50}, {6, 50}, {6, 50}}, -2, 2, false},
    {"layer_norm long rows (block per row)", f_layer_norm, &M0, 3, {2, 1, 1}, {{3, 1500}, {1500}, {1500}}, -2, 2,
     false},
    {"layer_norm many rows (column chunks)", f_layer_norm, &M0, 3, {2, 1, 1}, {{300, 8}, {8}, {8}}, -2, 2, false},
    {"layer_norm rows over 8192 (three passes)", f_layer_norm, &M0, 3, {2, 1, 1}, {{2, 9000}, {9000}, {9000}}, -2, 2,
     false},
};

static void test_layer_norm(void) {
    if (!have_gpu()) return;
    run_cases(ln_cases, sizeof ln_cases / sizeof ln_cases[0]);
}

/* The fused CUDA layer norm agrees with the composed form on the GPU too. */
static void test_layer_norm_vs_composed(void) {
    if (!have_gpu()) return;
    aqa_scope_begin();
    aqa_tensor *x = aqa_to_device(aqa_randn(AQA_SHAPE(6, 20), AQA_F64, NULL), DEV);
    aqa_tensor *w = aqa_to_device(aqa_randn(AQA_SHAPE(20), AQA_F64, NULL), DEV);
    int64_t D = 20;
    aqa_tensor *a = aqa_layer_norm(x, 1, &D, w, NULL, 1e-5);
    aqa__nn_force_composed = true;
    aqa_tensor *b = aqa_layer_norm(x, 1, &D, w, NULL, 1e-5);
    aqa__nn_force_composed = false;
    CHECK(a && b);
    if (a && b) CHECK(aqa_item(aqa_max_all(aqa_abs(aqa_sub(a, b)))) < 1e-12);
    aqa_scope_end();
}

/* ---- batch norm ---------------------------------------------------------------------------------- */

/* arg: 0 training with running statistics, 1 eval, 2 training without affine or running
 * statistics, 3 training on a permuted (non-contiguous) input.  Running statistics made from a
 * fixed pattern; after a training call they are folded into the output so they are compared. */
static aqa_tensor *f_batch_norm(aqa_tensor *const *in, aqa_device dev, const void *arg) {
    int mode = *(const int *)arg;
    aqa_tensor *x = mode == 3 ? aqa_transpose(in[0], 2, 3) : in[0];
    int64_t c = x->shape[1];
    double *rm = malloc(sizeof(double) * (size_t)c), *rv = malloc(sizeof(double) * (size_t)c);
    for (int64_t i = 0; i < c; i++) {
        rm[i] = 0.1 * (double)i - 0.2;
        rv[i] = 0.5 + 0.25 * (double)i;
    }
    aqa_tensor *run_m = aqa_to_device(aqa_to_dtype(aqa_from_data(rm, 1, &c, AQA_F64), x->dtype), dev);
    aqa_tensor *run_v = aqa_to_device(aqa_to_dtype(aqa_from_data(rv, 1, &c, AQA_F64), x->dtype), dev);
    free(rm);
    free(rv);
    bool affine = mode != 2, running = mode != 2;
    aqa_tensor *y = aqa_batch_norm(x, running ? run_m : NULL, running ? run_v : NULL, affine ? in[1] : NULL,
                                   affine ? in[2] : NULL, mode != 1, 0.1, 1e-5);
    if (!y || !running || mode == 1) return y;
    /* y + 0 * ... keeps y's values; the running statistics join through a separate sum */
    aqa_tensor *stats = aqa_cat((aqa_tensor *[]){run_m, run_v}, 2, 0);
    aqa_tensor *flat = aqa_reshape(y, 1, (const int64_t[]){aqa_numel(y)});
    return aqa_cat((aqa_tensor *[]){flat, stats}, 2, 0);
}

static const int B0 = 0, B1 = 1, B2 = 2, B3 = 3;
static const nn_case bn_cases[] = {
    {"batch_norm training", f_batch_norm, &B0, 3, {4, 1, 1}, {{4, 3, 5, 6}, {3}, {3}}, -2, 3, false},
    {"batch_norm eval", f_batch_norm, &B1, 3, {4, 1, 1}, {{3, 4, 5, 2}, {4}, {4}}, -2, 3, false},
    {"batch_norm no affine, no running", f_batch_norm, &B2, 1, {3}, {{5, 3, 7}}, -2, 3, false},
    {"batch_norm permuted input", f_batch_norm, &B3, 3, {4, 1, 1}, {{2, 3, 4, 5}, {3}, {3}}, -2, 3, false},
    {"batch_norm 1d [n, c]", f_batch_norm, &B0, 3, {2, 1, 1}, {{16, 5}, {5}, {5}}, 1, 3, false},
    {"batch_norm long channels (splits)", f_batch_norm, &B0, 3, {3, 1, 1}, {{2, 3, 5000}, {3}, {3}}, 5, 6, false},
};

static void test_batch_norm(void) {
    if (!have_gpu()) return;
    run_cases(bn_cases, sizeof bn_cases / sizeof bn_cases[0]);
}

/* AQA_BATCH_NORM_COMPOSED still selects the composed path on CUDA tensors, with the same result. */
static void test_batch_norm_composed_switch(void) {
    if (!have_gpu()) return;
    aqa_scope_begin();
    aqa_tensor *x = aqa_requires_grad(aqa_to_device(aqa_randn(AQA_SHAPE(3, 4, 10), AQA_F64, NULL), DEV), true);
    aqa_tensor *a = aqa_batch_norm(x, NULL, NULL, NULL, NULL, true, 0.1, 1e-5);
    setenv("AQA_BATCH_NORM_COMPOSED", "1", 1);
    aqa_tensor *b = aqa_batch_norm(x, NULL, NULL, NULL, NULL, true, 0.1, 1e-5);
    unsetenv("AQA_BATCH_NORM_COMPOSED");
    CHECK(a && b);
    if (a && b) {
        CHECK(aqa_item(aqa_max_all(aqa_abs(aqa_sub(a, b)))) < 1e-12);
        CHECK(a->grad_fn && b->grad_fn && strcmp(a->grad_fn->op, b->grad_fn->op) != 0);
    }
    aqa_scope_end();
}

/* ---- pooling ------------------------------------------------------------------------------------- */

/* Pooling settings of a case. */
typedef struct pool_arg {
    int kind;           /* 0 max, 1 avg, 2 adaptive avg */
    int nd;             /* pooled dims */
    int64_t k[3], s[3], p[3], d[3];
    bool ceil_mode, count_include_pad;
    int64_t divisor_override;
    bool transpose;     /* pool a transposed view of the input (dims 0, 1) */
    bool indices;       /* max: add the indices (as values) to the output */
} pool_arg;

static aqa_tensor *f_pool(aqa_tensor *const *in, aqa_device dev, const void *arg) {
    (void)dev;
    const pool_arg *a = arg;
    aqa_tensor *x = a->transpose ? aqa_transpose(in[0], 0, 1) : in[0];
    if (a->kind == 2) return aqa_adaptive_avg_pool(x, a->nd, a->k);
    if (a->kind == 1)
        return aqa_avg_pool(x, a->nd, a->k, a->s, a->p, a->ceil_mode, a->count_include_pad, a->divisor_override);
    aqa_tensor *idx = NULL;
    aqa_tensor *y = aqa_max_pool(x, a->nd, a->k, a->s, a->p, a->d, a->ceil_mode, a->indices ? &idx : NULL);
    if (!y || !a->indices) return y;
    if (!idx) return NULL;
    aqa_tensor *fy = aqa_reshape(y, 1, (const int64_t[]){aqa_numel(y)});
    aqa_tensor *fi = aqa_reshape(aqa_to_dtype(idx, y->dtype), 1, (const int64_t[]){aqa_numel(idx)});
    return aqa_cat((aqa_tensor *[]){fy, fi}, 2, 0);
}

static const pool_arg P_MAX2 = {0, 2, {3, 3}, {2, 2}, {1, 1}, {1, 1}, false, false, 0, false, true};
static const pool_arg P_MAX3 = {0, 3, {2, 3, 3}, {1, 2, 2}, {0, 1, 1}, {1, 1, 1}, true, false, 0, false, true};
static const pool_arg P_MAX_DIL = {0, 2, {2, 3}, {1, 2}, {1, 1}, {2, 2}, true, false, 0, true, true};
static const pool_arg P_MAX1 = {0, 1, {4}, {3}, {2}, {1}, true, false, 0, false, false};
static const pool_arg P_AVG2 = {1, 2, {3, 3}, {2, 2}, {1, 1}, {1, 1}, false, true, 0, false, false};
static const pool_arg P_AVG2_EX = {1, 2, {3, 2}, {2, 2}, {1, 1}, {1, 1}, true, false, 0, true, false};
static const pool_arg P_AVG3_DIV = {1, 3, {2, 2, 3}, {2, 1, 2}, {1, 0, 1}, {1, 1, 1}, true, true, 5, false, false};
static const pool_arg P_ADA2 = {2, 2, {3, 4}, {0}, {0}, {0}, false, false, 0, false, false};
static const pool_arg P_ADA3 = {2, 3, {2, 1, 3}, {0}, {0}, {0}, false, false, 0, true, false};
static const pool_arg P_ADA1 = {2, 1, {7}, {0}, {0}, {0}, false, false, 0, false, false};

static const nn_case pool_cases[] = {
    {"max_pool2d k3 s2 p1 (+ indices, ties)", f_pool, &P_MAX2, 1, {4}, {{2, 3, 7, 9}}, -2, 2, true},
    {"max_pool3d ceil_mode (+ indices)", f_pool, &P_MAX3, 1, {5}, {{2, 2, 4, 6, 7}}, -2, 2, false},
    {"max_pool2d dilated, transposed input", f_pool, &P_MAX_DIL, 1, {4}, {{3, 2, 8, 9}}, -2, 2, true},
    {"max_pool1d ceil_mode", f_pool, &P_MAX1, 1, {3}, {{2, 3, 11}}, -2, 2, false},
    {"avg_pool2d count_include_pad", f_pool, &P_AVG2, 1, {4}, {{2, 3, 7, 8}}, -2, 2, false},
    {"avg_pool2d exclude pad, ceil_mode, transposed", f_pool, &P_AVG2_EX, 1, {4}, {{3, 2, 7, 7}}, -2, 2, false},
    {"avg_pool3d divisor_override", f_pool, &P_AVG3_DIV, 1, {5}, {{2, 2, 5, 4, 7}}, -2, 2, false},
    {"adaptive_avg_pool2d", f_pool, &P_ADA2, 1, {4}, {{2, 3, 7, 10}}, -2, 2, false},
    {"adaptive_avg_pool3d, transposed (unbatched dims)", f_pool, &P_ADA3, 1, {5}, {{3, 2, 5, 4, 8}}, -2, 2, false},
    {"adaptive_avg_pool1d growing", f_pool, &P_ADA1, 1, {3}, {{2, 2, 5}}, -2, 2, false},
};

static void test_pool(void) {
    if (!have_gpu()) return;
    run_cases(pool_cases, sizeof pool_cases / sizeof pool_cases[0]);
    /* the kernels' 64-bit index instances (taken for large tensors) */
    setenv("AQA_POOL_INDEX64", "1", 1);
    run_cases(pool_cases, sizeof pool_cases / sizeof pool_cases[0]);
    unsetenv("AQA_POOL_INDEX64");
}

/* AQA_POOL_COMPOSED still selects the composed path on CUDA tensors, with the same result. */
static void test_pool_composed_switch(void) {
    if (!have_gpu()) return;
    aqa_scope_begin();
    aqa_tensor *x = aqa_requires_grad(aqa_to_device(aqa_randn(AQA_SHAPE(2, 3, 6, 7), AQA_F64, NULL), DEV), true);
    aqa_tensor *a = aqa_avg_pool2d(x, 3, 2, 1, true, false);
    setenv("AQA_POOL_COMPOSED", "1", 1);
    aqa_tensor *b = aqa_avg_pool2d(x, 3, 2, 1, true, false);
    unsetenv("AQA_POOL_COMPOSED");
    CHECK(a && b);
    if (a && b) {
        CHECK(aqa_item(aqa_max_all(aqa_abs(aqa_sub(a, b)))) < 1e-12);
        CHECK(a->grad_fn && b->grad_fn && strcmp(a->grad_fn->op, b->grad_fn->op) != 0);
    }
    aqa_scope_end();
}

/* ---- softmax (the register-cached row kernels and the long-row fallback) ------------------------ */

static aqa_tensor *f_softmax(aqa_tensor *const *in, aqa_device dev, const void *arg) {
    (void)dev;
    (void)arg;
    int last = in[0]->ndim - 1;
    return aqa_add(aqa_softmax(in[0], last), aqa_mul_scalar(aqa_log_softmax(in[0], last), 0.25));
}

static const nn_case softmax_cases[] = {
    {"softmax n 1", f_softmax, NULL, 1, {2}, {{3, 1}}, -5, 5, false},
    {"softmax n 31 (warp, 1 a lane)", f_softmax, NULL, 1, {2}, {{11, 31}}, -5, 5, false},
    {"softmax n 197 (warp, 8 a lane)", f_softmax, NULL, 1, {3}, {{2, 5, 197}}, -8, 8, false},
    {"softmax n 1024 (warp, 32 a lane)", f_softmax, NULL, 1, {2}, {{3, 1024}}, -5, 5, false},
    {"softmax n 1025 (block, 8 a lane)", f_softmax, NULL, 1, {2}, {{2, 1025}}, -5, 5, false},
    {"softmax n 8192 (block, 32 a lane)", f_softmax, NULL, 1, {2}, {{2, 8192}}, -5, 5, false},
    {"softmax n 8200 (three passes)", f_softmax, NULL, 1, {2}, {{2, 8200}}, -5, 5, false},
};

static void test_softmax_rows(void) {
    if (!have_gpu()) return;
    run_cases(softmax_cases, sizeof softmax_cases / sizeof softmax_cases[0]);
}

/* ---- attention: the fused scale + mask + causal softmax ------------------------------------------- */

/* arg 0: aqa_attention_softmax(scores, mask [L, S] broadcast, scale 0.3, causal); 1: the same
 * with a key-padding style mask [B, 1, 1, S] and no causal; 2: scaled_dot_product_attention
 * (q, k, v), causal, no mask; 3: scores transposed (rows not contiguous: the composed path). */
static aqa_tensor *f_attn(aqa_tensor *const *in, aqa_device dev, const void *arg) {
    (void)dev;
    int mode = *(const int *)arg;
    switch (mode) {
    case 0: return aqa_attention_softmax(in[0], in[1], 0.3, true);
    case 1: return aqa_attention_softmax(in[0], in[1], 1.0, false);
    case 2: return aqa_scaled_dot_product_attention(in[0], in[1], in[2], NULL, 0.0, true, 0.0);
    default: return aqa_attention_softmax(aqa_transpose(in[0], -1, -2), in[1], 0.5, true);
    }
}

static const int A0 = 0, A1 = 1, A2 = 2, A3 = 3;
static const nn_case attn_cases[] = {
    {"attention_softmax mask [L, S], causal, scale", f_attn, &A0, 2, {4, 2}, {{2, 3, 9, 9}, {9, 9}}, -3, 3, false},
    {"attention_softmax key mask [B, 1, 1, S]", f_attn, &A1, 2, {4, 4}, {{2, 3, 6, 11}, {2, 1, 1, 11}}, -3, 3, false},
    {"sdpa causal, L = S = 77", f_attn, &A2, 3, {4, 4, 4}, {{1, 2, 77, 8}, {1, 2, 77, 8}, {1, 2, 77, 8}}, -1, 1,
     false},
    {"attention_softmax transposed scores", f_attn, &A3, 2, {3, 2}, {{2, 7, 7}, {7, 7}}, -3, 3, false},
};

static void test_attention_softmax(void) {
    if (!have_gpu()) return;
    run_cases(attn_cases, sizeof attn_cases / sizeof attn_cases[0]);
}

/* ---- fused scaled dot-product attention ---------------------------------------------------------- */

/* arg 0: sdpa(q, k, v) with a float mask [L, S]; 1: q, k, v given as [B, T, H, E] and permuted to
 * [B, H, T, E] (strided); 2: a bool mask [B, 1, 1, S] (key padding); 3: causal, default scale */
static aqa_tensor *f_sdpa(aqa_tensor *const *in, aqa_device dev, const void *arg) {
    int mode = *(const int *)arg;
    switch (mode) {
    case 0: {
        int64_t L = in[0]->shape[in[0]->ndim - 2], S = in[1]->shape[in[1]->ndim - 2];
        double *m = malloc(sizeof(double) * (size_t)(L * S));
        for (int64_t i = 0; i < L * S; i++) m[i] = 0.5 * sin(0.7 * (double)i);
        aqa_tensor *mt = aqa_to_device(aqa_to_dtype(aqa_from_data(m, 2, (const int64_t[]){L, S}, AQA_F64), in[0]->dtype), dev);
        free(m);
        return aqa_scaled_dot_product_attention(in[0], in[1], in[2], mt, 0.0, false, 0.3);
    }
    case 1: {
        const int perm[4] = {0, 2, 1, 3};
        return aqa_scaled_dot_product_attention(aqa_permute(in[0], perm), aqa_permute(in[1], perm),
                                                aqa_permute(in[2], perm), NULL, 0.0, false, 0.0);
    }
    case 2: {
        int64_t B = in[0]->shape[0], S = in[1]->shape[2];
        bool *keep = malloc((size_t)(B * S));
        for (int64_t i = 0; i < B * S; i++) keep[i] = (i % S) < S - 1 - (i / S) * 3; /* last keys padded */
        aqa_tensor *mt = aqa_to_device(aqa_from_data(keep, 4, (const int64_t[]){B, 1, 1, S}, AQA_BOOL), dev);
        free(keep);
        return aqa_scaled_dot_product_attention(in[0], in[1], in[2], mt, 0.0, false, 0.0);
    }
    default: return aqa_scaled_dot_product_attention(in[0], in[1], in[2], NULL, 0.0, true, 0.0);
    }
}

static const int S0 = 0, S1 = 1, S2 = 2, S3 = 3;
static const nn_case sdpa_cases[] = {
    {"sdpa float mask, L 10, S 37, E 16, Ev 24", f_sdpa, &S0, 3, {4, 4, 4}, {{2, 2, 10, 16}, {2, 2, 37, 16}, {2, 2, 37, 24}},
     -1, 1, false},
    {"sdpa strided q, k, v (permuted)", f_sdpa, &S1, 3, {4, 4, 4}, {{2, 9, 3, 8}, {2, 20, 3, 8}, {2, 20, 3, 8}}, -1, 1,
     false},
    {"sdpa bool key-padding mask", f_sdpa, &S2, 3, {4, 4, 4}, {{2, 2, 6, 8}, {2, 2, 33, 8}, {2, 2, 33, 8}}, -1, 1, false},
    {"sdpa causal, L = S = 197, E 64", f_sdpa, &S3, 3, {4, 4, 4}, {{1, 1, 197, 64}, {1, 1, 197, 64}, {1, 1, 197, 64}},
     -1, 1, false},
};

static void test_sdpa_fused(void) {
    if (!have_gpu()) return;
    run_cases(sdpa_cases, sizeof sdpa_cases / sizeof sdpa_cases[0]);
    /* the fused kernel served it (and AQA_ATTENTION_FUSED=0 the composed ops, same values) */
    aqa_scope_begin();
    aqa_tensor *q = aqa_requires_grad(aqa_to_device(aqa_randn(AQA_SHAPE(2, 3, 5, 8), AQA_F64, NULL), DEV), true);
    aqa_tensor *a = aqa_scaled_dot_product_attention(q, q, q, NULL, 0.0, true, 0.0);
    setenv("AQA_ATTENTION_FUSED", "0", 1);
    aqa_tensor *b = aqa_scaled_dot_product_attention(q, q, q, NULL, 0.0, true, 0.0);
    unsetenv("AQA_ATTENTION_FUSED");
    CHECK(a && b);
    if (a && b) {
        CHECK(a->grad_fn && !strcmp(a->grad_fn->op, "scaled_dot_product_attention"));
        CHECK(b->grad_fn && strcmp(b->grad_fn->op, "scaled_dot_product_attention") != 0);
        CHECK(aqa_item(aqa_max_all(aqa_abs(aqa_sub(a, b)))) < 1e-12);
    }
    aqa_scope_end();
}

/* ---- full reductions (splits combined by a block) ------------------------------------------------ */

/* sum of everything, max and min along the long dim (values and positions), as outputs */
static aqa_tensor *f_reduce(aqa_tensor *const *in, aqa_device dev, const void *arg) {
    (void)dev;
    (void)arg;
    aqa_tensor *imax = NULL, *imin = NULL;
    aqa_tensor *mx = aqa_max_dim(in[0], 1, false, &imax), *mn = aqa_min_dim(in[0], 1, false, &imin);
    if (!mx || !mn) return NULL;
    /* a misaligned contiguous view (the float4 path needs 16-byte alignment) */
    aqa_tensor *flat = aqa_narrow(aqa_reshape(in[0], 1, (const int64_t[]){aqa_numel(in[0])}), 0, 1, 79990);
    aqa_tensor *parts[6] = {aqa_reshape(aqa_sum_all(in[0]), 1, (const int64_t[]){1}), mx, mn,
                            aqa_to_dtype(imax, in[0]->dtype), aqa_to_dtype(imin, in[0]->dtype),
                            aqa_reshape(aqa_sum_all(flat), 1, (const int64_t[]){1})};
    return aqa_cat(parts, 6, 0);
}

static const nn_case reduce_cases[] = {
    {"sum_all, max/min along a long dim", f_reduce, NULL, 1, {2}, {{2, 40000}}, -3, 3, true},
};

static void test_full_reductions(void) {
    if (!have_gpu()) return;
    run_cases(reduce_cases, 1);
}

/* ---- composed layers: LSTM, GRU, transformer decoder, graph convolution ---------------------------- */

/* LSTM(5, 6, num_layers 2, bidirectional), [L 4, N 3, 5] with h0 and c0: output and final states */
static aqa_module *build_lstm(void) {
    aqa_rnn_config c = aqa_rnn_config_default(5, 6);
    c.num_layers = 2;
    c.bidirectional = true;
    aqa_manual_seed(31);
    aqa_rnn_layer *m = aqa_lstm_layer_new(NULL, "", &c);
    return m ? &m->base : NULL;
}
static aqa_tensor *f_lstm(aqa_tensor *const *in, aqa_device dev, const void *arg) {
    (void)dev;
    aqa_tensor *hn = NULL, *cn = NULL;
    aqa_tensor *y = aqa_lstm_layer_forward((aqa_rnn_layer *)arg, in[0], in[1], in[2], &hn, &cn);
    if (!y) return NULL;
    return aqa_cat((aqa_tensor *[]){aqa_flatten(y, 0, -1), aqa_flatten(hn, 0, -1), aqa_flatten(cn, 0, -1)}, 3, 0);
}

/* GRU(5, 6, batch_first), [N 3, L 4, 5], zero initial state */
static aqa_module *build_gru(void) {
    aqa_rnn_config c = aqa_rnn_config_default(5, 6);
    c.batch_first = true;
    aqa_manual_seed(32);
    aqa_rnn_layer *m = aqa_gru_layer_new(NULL, "", &c);
    return m ? &m->base : NULL;
}
static aqa_tensor *f_gru(aqa_tensor *const *in, aqa_device dev, const void *arg) {
    (void)dev;
    aqa_tensor *hn = NULL;
    aqa_tensor *y = aqa_gru_layer_forward((aqa_rnn_layer *)arg, in[0], NULL, &hn);
    if (!y) return NULL;
    return aqa_cat((aqa_tensor *[]){aqa_flatten(y, 0, -1), aqa_flatten(hn, 0, -1)}, 2, 0);
}

/* TransformerDecoder(2 pre-norm layers of width 8, 2 heads, final norm), batch first, eval;
 * target [2, 5, 8] with a causal mask, memory [2, 7, 8] */
static aqa_module *build_decoder(void) {
    aqa_transformer_config c = aqa_transformer_config_default(8, 2);
    c.dim_feedforward = 16;
    c.batch_first = true;
    c.norm_first = true;
    aqa_manual_seed(33);
    aqa_transformer_decoder *m = aqa_transformer_decoder_new(NULL, "", &c, 2, true);
    if (m) aqa_module_train(&m->base, false);
    return m ? &m->base : NULL;
}
static aqa_tensor *f_decoder(aqa_tensor *const *in, aqa_device dev, const void *arg) {
    aqa_tensor *mask = aqa_to_device(aqa_causal_mask(in[0]->shape[1], in[0]->dtype), dev);
    return aqa_transformer_decoder_forward((aqa_transformer_decoder *)arg, in[0], in[1], mask, NULL, NULL, NULL);
}

/* DenseGCNConv(6 -> 4) with a learned 5-node adjacency, then GCN-normalised over a given
 * per-sample adjacency (input 1, made non-negative) */
static aqa_module *build_gcn(void) {
    aqa_manual_seed(34);
    aqa_graph_conv_layer *m = aqa_graph_conv_layer_new(NULL, "", 6, 4, true, true, 5, NULL);
    if (m) aqa_uniform_(m->adj, 0.0, 1.0, NULL);
    return m ? &m->base : NULL;
}
static aqa_tensor *f_gcn(aqa_tensor *const *in, aqa_device dev, const void *arg) {
    (void)dev;
    aqa_graph_conv_layer *m = (aqa_graph_conv_layer *)arg;
    aqa_tensor *a = aqa_graph_conv_layer_forward(m, in[0], NULL, NULL);
    aqa_tensor *b = aqa_graph_conv_layer_forward(m, in[0], aqa_abs(in[1]), NULL);
    return aqa_cat((aqa_tensor *[]){a, b}, 2, 0);
}

static const nn_case layer_cases[] = {
    {"LSTM 2 layers bidirectional, h0 c0", f_lstm, NULL, 3, {3, 3, 3}, {{4, 3, 5}, {4, 3, 6}, {4, 3, 6}}, -1, 1, false},
    {"GRU batch_first", f_gru, NULL, 1, {3}, {{3, 4, 5}}, -1, 1, false},
    {"TransformerDecoder pre-norm causal", f_decoder, NULL, 2, {3, 3}, {{2, 5, 8}, {2, 7, 8}}, -1, 1, false},
    {"DenseGCNConv learned and given adjacency", f_gcn, NULL, 2, {3, 3}, {{2, 5, 6}, {2, 5, 5}}, -1, 1, false},
};

static const build_fn layer_builds[] = {build_lstm, build_gru, build_decoder, build_gcn};

static void test_layers(void) {
    if (!have_gpu()) return;
    run_layer_cases(layer_cases, sizeof layer_cases / sizeof layer_cases[0], layer_builds);
}

/* ---- Adam / AdamW -------------------------------------------------------------------------------- */

enum { NPAR = 4 };
static const int64_t par_sizes[NPAR] = {7, 5000, 1, 300}; /* 5000: several blocks of the launch */

/* 20 steps of one optimizer configuration on dev; the parameters' final values (as doubles) into
 * out.  Gradients are exact (a linear loss: grad = r, fixed per step), parameter 2 gets no gradient
 * on odd steps (its step count falls behind: per-tensor bias corrections), the learning rate of the
 * second group changes on the way. */
static bool adam_run(aqa_optim_kind kind, bool amsgrad, double beta1, aqa_dtype dt, aqa_device dev, double **out) {
    aqa_scope_begin();
    uint64_t saved = rng_state;
    rng_state = 12345;
    aqa_tensor *p[NPAR];
    for (int i = 0; i < NPAR; i++) {
        double *v = malloc(sizeof(double) * (size_t)par_sizes[i]);
        for (int64_t j = 0; j < par_sizes[i]; j++) v[j] = 2 * urand() - 1;
        p[i] = aqa_to_device(aqa_to_dtype(aqa_from_data(v, 1, &par_sizes[i], AQA_F64), dt), dev);
        p[i] = aqa_requires_grad(aqa_detach(p[i]), true);
        aqa_keep(p[i]);
        free(v);
    }
    aqa_adam_options o = {.lr = 3e-3, .beta1 = beta1, .beta2 = 0.99, .eps = 1e-8,
                          .weight_decay = kind == AQA_OPTIM_ADAMW ? 0.05 : 0.01, .amsgrad = amsgrad};
    aqa_optimizer *opt = kind == AQA_OPTIM_ADAMW ? aqa_adamw_new(&o) : aqa_adam_new(&o);
    bool ok = opt && aqa_optim_add_group(opt, p, 3, 3e-3, o.weight_decay) >= 0 &&
              aqa_optim_add_group(opt, p + 3, 1, 1e-2, 0.0) >= 0;
    for (int step = 0; ok && step < 20; step++) {
        aqa_optim_zero_grad(opt);
        aqa_scope_begin();
        aqa_tensor *loss = NULL;
        for (int i = 0; i < NPAR; i++) {
            double *r = malloc(sizeof(double) * (size_t)par_sizes[i]);
            for (int64_t j = 0; j < par_sizes[i]; j++) r[j] = (2 * urand() - 1) * (j % 3 ? 1.0 : 1e-3);
            aqa_tensor *rt = aqa_to_device(aqa_to_dtype(aqa_from_data(r, 1, &par_sizes[i], AQA_F64), dt), dev);
            free(r);
            if (i == 2 && step % 2) continue;
            aqa_tensor *term = aqa_sum_all(aqa_mul(p[i], rt));
            loss = loss ? aqa_add(loss, term) : term;
        }
        ok = loss && aqa_backward(loss, NULL, false) == AQA_OK;
        aqa_scope_end();
        if (step == 10) opt->groups[1].lr = 5e-3;
        ok = ok && aqa_optim_step(opt) == AQA_OK;
    }
    if (!ok) printf("    adam on %s: %s\n", dev.kind == AQA_CPU ? "cpu" : "cuda", aqa_last_error());
    int64_t total = 0;
    for (int i = 0; i < NPAR; i++) total += par_sizes[i];
    *out = calloc((size_t)total, sizeof(double));
    for (int i = 0, off = 0; ok && i < NPAR; off += (int)par_sizes[i], i++)
        ok = aqa_copy_to_host(p[i], *out + off, AQA_F64) == AQA_OK;
    aqa_optim_free(opt);
    for (int i = 0; i < NPAR; i++) aqa_tensor_free(p[i]);
    aqa_scope_end();
    rng_state = saved;
    return ok;
}

/* The multi-tensor CUDA step gives the CPU's bits after 20 steps (Adam, AdamW, AMSGrad, both
 * lerp forms of torch's exp_avg update, float32 and float64). */
static void test_adam_multi_tensor(void) {
    if (!have_gpu()) return;
    struct { aqa_optim_kind kind; bool ams; double beta1; } cfg[] = {
        {AQA_OPTIM_ADAMW, false, 0.9}, {AQA_OPTIM_ADAM, false, 0.9}, {AQA_OPTIM_ADAMW, true, 0.3},
    };
    int64_t total = 0;
    for (int i = 0; i < NPAR; i++) total += par_sizes[i];
    for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++)
        for (int d = 0; d < 2; d++) {
            aqa_dtype dt = d ? AQA_F64 : AQA_F32;
            double *a = NULL, *b = NULL;
            bool oka = adam_run(cfg[c].kind, cfg[c].ams, cfg[c].beta1, dt, AQA_DEVICE_CPU, &a);
            bool okb = adam_run(cfg[c].kind, cfg[c].ams, cfg[c].beta1, dt, DEV, &b);
            CHECK_MSG(oka && okb, "config %zu %s: failed", c, aqa_dtype_name(dt));
            if (oka && okb) {
                int64_t diff = 0, first = -1;
                double maxd = 0;
                for (int64_t i = 0; i < total; i++)
                    if (a[i] != b[i]) {
                        if (first < 0) first = i;
                        diff++;
                        maxd = fmax(maxd, fabs(a[i] - b[i]));
                    }
                CHECK_MSG(diff == 0, "config %zu %s: %lld of %lld values differ from the CPU's (max %.3g; first %lld: "
                          "cpu %.9g cuda %.9g)", c, aqa_dtype_name(dt), (long long)diff, (long long)total, maxd,
                          (long long)first, first >= 0 ? a[first] : 0.0, first >= 0 ? b[first] : 0.0);
            }
            free(a);
            free(b);
        }
}

int main(void) {
    cuda_test_init("cuda nn");
    aqa_manual_seed(7);
    /* AQA_TEST_ONLY=name runs one case (handy under the emulator, tensor/cuda/emu/run.sh) */
#define RUN_SEL(fn)                                      \
    do {                                                 \
        const char *only_ = getenv("AQA_TEST_ONLY");     \
        if (!only_ || !strcmp(only_, #fn)) RUN(fn);      \
    } while (0)
    RUN_SEL(test_layer_norm);
    RUN_SEL(test_layer_norm_vs_composed);
    RUN_SEL(test_batch_norm);
    RUN_SEL(test_batch_norm_composed_switch);
    RUN_SEL(test_pool);
    RUN_SEL(test_pool_composed_switch);
    RUN_SEL(test_adam_multi_tensor);
    RUN_SEL(test_softmax_rows);
    RUN_SEL(test_full_reductions);
    RUN_SEL(test_attention_softmax);
    RUN_SEL(test_sdpa_fused);
    RUN_SEL(test_layers);
    return test_finish();
}
