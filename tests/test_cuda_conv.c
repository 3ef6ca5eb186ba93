/* test_cuda_conv.c: the CUDA convolutions (nn/conv_cuda.c) against the CPU ones (nn/conv_cpu.c).
 *
 * Through the public ops: conv1d/2d/3d and conv_transpose1d with strides, dilation, groups,
 * TF-"same" padding, odd sizes and 1x1x1 kernels, float32 and float64, forward and the input,
 * weight and bias gradients (autograd, a random upstream gradient), each under three scratch
 * budgets (whole batch in one block; blocks of two samples with a short last block; tiles of a
 * few output positions), checking the budget holds.  At the kernel level: outputs inside guarded
 * buffers (an out-of-bounds write fails), and the backward twice with identical bits (no atomics).
 * Then an I3D-like block (Unit3D conv + BatchNorm + ReLU, the TF-same max pool, a 1x1x1 Unit3D)
 * and MVLA's segmentation module (PSNet: Conv1d + BatchNorm1d + ReLU blocks, max pools, MLP)
 * through the public modules moved to the GPU with aqa_module_to, forward and backward.
 * Without a GPU (or driver) every case SKIPs with the reason (or fails with AQA_REQUIRE_GPU=1);
 * `sh tensor/cuda/emu/run.sh tests/test_cuda_conv` runs it on the CPU emulator. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/autograd.h"
#include "models/i3d/i3d.h"
#include "models/mvla/mvla.h"
#include "nn/conv.h"
#include "nn/conv_cuda-impl.h"
#include "nn/module.h"
#include "tensor/backend.h"
#include "tensor/cuda/cuda.h"
#include "ops/ops.h"
#include "tensor/tensor-impl.h"
#include "tests/testlib.h"
#include "tests/cuda_testlib.h"




/* Random CPU tensor in [-1, 1), scope-owned. */
static aqa_tensor *rnd(int nd, const int64_t *shape, aqa_dtype dt) {
    int64_t n = aqa__shape_numel(nd, shape);
    double *v = malloc((size_t)(n ? n : 1) * sizeof(double));
    for (int64_t i = 0; i < n; i++) v[i] = 2 * urand() - 1;
    aqa_tensor *f = aqa_from_data(v, nd, shape, AQA_F64);
    free(v);
    return aqa_to_dtype(f, dt);
}

/* Host copy of any tensor's values as doubles (malloc'd). */
static double *values(aqa_tensor *t) {
    aqa_tensor *c = aqa_to_dtype(aqa_to_device(t, AQA_DEVICE_CPU), AQA_F64);
    int64_t n = aqa_numel(c);
    double *v = malloc((size_t)(n ? n : 1) * sizeof(double));
    aqa_tensor *cc = aqa_contiguous(c);
    memcpy(v, aqa_data(cc), (size_t)n * sizeof(double));
    return v;
}

/* Normalised error ||gpu - cpu|| / ||cpu|| under tol, or the root-mean-square difference under
 * atol (for gradients that are rounding noise around an exact zero: the bias of a convolution
 * followed by a training-mode BatchNorm), same shapes. */
static void compare_atol(const char *what, aqa_tensor *c, aqa_tensor *g, double tol, double atol) {
    CHECK_MSG(c && g, "%s: missing result (%s)", what, aqa_last_error());
    if (!c || !g) return;
    CHECK_MSG(aqa_same_shape(c, g), "%s: shapes differ", what);
    CHECK_MSG(aqa_tensor_device(g).kind == AQA_CUDA, "%s: the GPU result is not on the GPU", what);
    if (!aqa_same_shape(c, g)) return;
    aqa_scope_begin();
    int64_t n = aqa_numel(c);
    double *a = values(c), *b = values(g), num = 0, den = 0;
    int64_t worst = -1;
    double wd = -1;
    for (int64_t i = 0; i < n; i++) {
        double dd = fabs(a[i] - b[i]);
        if (!(dd <= wd)) {
            wd = dd;
            worst = i;
        }
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += a[i] * a[i];
    }
    double err = sqrt(num) / (den > 0 ? sqrt(den) : 1.0), rms = sqrt(num / (double)(n ? n : 1));
    CHECK_MSG((err <= tol || rms <= atol) && !isnan(err),
              "%s: normalised error %.3g (tol %.3g), rms difference %.3g (atol %.3g); worst at %lld: cpu %.9g gpu %.9g",
              what, err, tol, rms, atol, (long long)worst, worst >= 0 ? a[worst] : 0.0, worst >= 0 ? b[worst] : 0.0);
    free(a);
    free(b);
    aqa_scope_end();
}

static void compare(const char *what, aqa_tensor *c, aqa_tensor *g, double tol) { compare_atol(what, c, g, tol, 0); }

/* Bytes of device memory held by live tensors (the conv scratch must all come back). */
static size_t device_in_use(void) {
    aqa_cuda_mem_stats ms;
    return aqa_cuda_memory_stats(0, &ms) == AQA_OK ? ms.in_use : 0;
}

static double tol_for(aqa_dtype dt) { return dt == AQA_F32 ? 2e-5 : 1e-12; }

/* ---- functional convolutions ---------------------------------------------------------------- */

typedef struct conv_case {
    const char *name;
    int nd;             /* spatial dims */
    bool transposed;    /* conv_transpose */
    int64_t n, cin, cout;
    int64_t in[3], k[3];
    aqa_conv_opts o;
    bool bias;
} conv_case;

static const conv_case cases[] = {
    {"conv1d stride 2 pad 1", 1, false, 2, 3, 4, {11}, {3}, {.stride = {2}, .padding = {1}}, true},
    {"conv1d dilation 2 groups 3", 1, false, 2, 6, 3, {13}, {3}, {.padding = {2}, .dilation = {2}, .groups = 3}, true},
    {"conv2d stride (2,1) pad (1,0) dil (1,2)", 2, false, 2, 3, 5, {9, 7}, {3, 2},
     {.stride = {2, 1}, .padding = {1, 0}, .dilation = {1, 2}}, false},
    {"conv2d groups 2 tf-same stride 2", 2, false, 3, 4, 6, {8, 7}, {3, 3},
     {.stride = {2, 2}, .groups = 2, .padding_mode = AQA_PADDING_TF_SAME}, true},
    {"conv3d 3x3x3 pad 1", 3, false, 2, 3, 4, {4, 5, 6}, {3, 3, 3}, {.padding = {1, 1, 1}}, true},
    {"conv3d tf-same stride 2 odd kernel", 3, false, 2, 2, 3, {5, 7, 5}, {3, 4, 2},
     {.stride = {2, 2, 2}, .padding_mode = AQA_PADDING_TF_SAME}, false},
    {"conv3d tf-same stride (1,2,2) dilation", 3, false, 2, 2, 3, {4, 6, 5}, {2, 3, 3},
     {.stride = {1, 2, 2}, .dilation = {1, 2, 1}, .padding_mode = AQA_PADDING_TF_SAME}, true},
    {"conv3d 1x1x1", 3, false, 3, 5, 4, {2, 3, 4}, {1, 1, 1}, {.groups = 1}, true},
    {"conv3d 1x1x1 groups 2", 3, false, 3, 4, 6, {2, 3, 3}, {1, 1, 1}, {.groups = 2}, false},
    {"conv3d 1x1x1 stride 2", 3, false, 2, 3, 2, {3, 4, 5}, {1, 1, 1}, {.stride = {2, 2, 2}}, true},
    {"conv_transpose1d stride 2 groups 2 output_padding 1", 1, true, 2, 4, 6, {7}, {3},
     {.stride = {2}, .padding = {1}, .output_padding = {1}, .groups = 2}, true},
};

/* Budget for `cols` columns of scratch (forward and backward need the same rows per column);
 * cols_per_sample: cols counts whole samples. */
static size_t budget_for(const conv_case *c, const aqa_tensor *y, aqa_dtype dt, int64_t cols, bool per_sample) {
    int64_t kk = 1, P = 1;
    for (int i = 0; i < c->nd; i++) kk *= c->k[i];
    for (int i = 2; i < y->ndim; i++) P *= y->shape[i];
    int64_t cin = c->transposed ? c->cout : c->cin, cout = c->transposed ? c->cin : c->cout;
    /* the transposed forward is the backward: c_out rows (gathered gy) + c_in * kk (dcol) */
    return (size_t)((cin * kk + cout) * cols * (per_sample ? P : 1)) * aqa_dtype_size(dt);
}

static void run_case(const conv_case *c, aqa_dtype dt, int budget_kind) {
    aqa_scope_begin();
    int64_t xs[5] = {c->n, c->cin}, ws[5];
    int64_t groups = c->o.groups ? c->o.groups : 1;
    ws[0] = c->transposed ? c->cin : c->cout;
    ws[1] = c->transposed ? c->cout / groups : c->cin / groups;
    for (int i = 0; i < c->nd; i++) {
        xs[2 + i] = c->in[i];
        ws[2 + i] = c->k[i];
    }
    aqa_tensor *x = aqa_requires_grad(rnd(c->nd + 2, xs, dt), true);
    aqa_tensor *w = aqa_requires_grad(rnd(c->nd + 2, ws, dt), true);
    aqa_tensor *b = c->bias ? aqa_requires_grad(rnd(1, (int64_t[]){c->cout}, dt), true)
                            : NULL;
    aqa_tensor *xg = aqa_requires_grad(aqa_detach(aqa_to_device(x, DEV)), true);
    aqa_tensor *wg = aqa_requires_grad(aqa_detach(aqa_to_device(w, DEV)), true);
    aqa_tensor *bg = b ? aqa_requires_grad(aqa_detach(aqa_to_device(b, DEV)), true) : NULL;
    aqa_tensor *y = c->transposed ? aqa_conv_transpose(x, w, b, &c->o) : aqa_conv(x, w, b, &c->o);
    CHECK_MSG(y != NULL, "%s: cpu conv failed: %s", c->name, aqa_last_error());
    if (!y) goto done;
    /* 0: default; 1: blocks of two whole samples; 2: tiles of 7 positions */
    size_t budget = budget_kind == 0 ? 0 : budget_for(c, y, dt, budget_kind == 1 ? 2 : 7, budget_kind == 1);
    aqa__cuda_conv_set_tile_bytes(budget);
    aqa__cuda_conv_reset_peak_bytes();
    aqa_tensor *yg = c->transposed ? aqa_conv_transpose(xg, wg, bg, &c->o) : aqa_conv(xg, wg, bg, &c->o);
    char what[160];
    static const char *bnames[3] = {"default budget", "two-sample blocks", "tiny tiles"};
    snprintf(what, sizeof what, "%s %s %s: forward", c->name, aqa_dtype_name(dt), bnames[budget_kind]);
    CHECK_MSG(yg != NULL, "%s: gpu conv failed: %s", what, aqa_last_error());
    if (!yg) goto done;
    compare(what, y, yg, tol_for(dt));
    aqa_tensor *r = rnd(y->ndim, y->shape, dt);
    aqa_tensor *rg = aqa_to_device(r, DEV);
    CHECK(aqa_backward(aqa_sum_all(aqa_mul(y, r)), NULL, false) == AQA_OK);
    aqa_status st = aqa_backward(aqa_sum_all(aqa_mul(yg, rg)), NULL, false);
    CHECK_MSG(st == AQA_OK, "%s: gpu backward failed: %s", what, aqa_last_error());
    if (st == AQA_OK) {
        snprintf(what, sizeof what, "%s %s %s: input grad", c->name, aqa_dtype_name(dt), bnames[budget_kind]);
        compare(what, x->grad, xg->grad, tol_for(dt));
        snprintf(what, sizeof what, "%s %s %s: weight grad", c->name, aqa_dtype_name(dt), bnames[budget_kind]);
        compare(what, w->grad, wg->grad, tol_for(dt));
        if (b) {
            snprintf(what, sizeof what, "%s %s %s: bias grad", c->name, aqa_dtype_name(dt), bnames[budget_kind]);
            compare(what, b->grad, bg->grad, tol_for(dt));
        }
    }
    if (budget) {
        /* one column is the least a block can take */
        int64_t kk = 1;
        for (int i = 0; i < c->nd; i++) kk *= c->k[i];
        size_t one_col = (size_t)(c->cin * kk + c->cout + c->cout * kk + c->cin) * aqa_dtype_size(dt);
        size_t bound = budget > one_col ? budget : one_col;
        CHECK_MSG(aqa__cuda_conv_peak_bytes() <= bound, "%s: scratch peak %zu bytes over the budget %zu", c->name,
                  aqa__cuda_conv_peak_bytes(), bound);
    }
done:
    aqa__cuda_conv_set_tile_bytes(0);
    aqa_scope_end();
}

static void test_conv_vs_cpu(void) {
    if (!have_gpu()) return;
    size_t held = device_in_use();
    aqa_dtype dts[2] = {AQA_F32, AQA_F64};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int t = 0; t < 2; t++)
            for (int bk = 0; bk < 3; bk++) {
                /* float64 under the default budget only (the tiling is dtype-independent) */
                if (t == 1 && bk > 0) continue;
                run_case(&cases[i], dts[t], bk);
            }
    CHECK_MSG(device_in_use() == held, "device memory in use: %zu bytes before, %zu after", held, device_in_use());
}

/* ---- kernel level: guards, determinism ------------------------------------------------------- */

#define GUARD 32

/* A GPU tensor of `shape` inside a buffer with GUARD elements of 0xA5 bytes on each side. */
typedef struct guarded {
    aqa_tensor *buf, *t;
} guarded;

static guarded guarded_new(int nd, const int64_t *shape, aqa_dtype dt) {
    guarded g;
    int64_t n = aqa__shape_numel(nd, shape), total = n + 2 * GUARD;
    g.buf = aqa__new_unowned(1, &total, dt, DEV);
    size_t nb = (size_t)total * aqa_dtype_size(dt);
    unsigned char *pat = malloc(nb);
    memset(pat, 0xA5, nb);
    aqa_backend_for(DEV)->from_host(g.buf->storage->data, pat, nb, DEV);
    free(pat);
    int64_t st[AQA_MAX_DIMS];
    aqa__contiguous_strides(nd, shape, st);
    g.t = aqa__alias_unowned(g.buf, nd, shape, st, GUARD);
    return g;
}

static size_t guard_damage(const guarded *g) {
    size_t es = aqa_dtype_size(g->buf->dtype), total = (size_t)aqa_numel(g->buf) * es, bad = 0;
    unsigned char *raw = malloc(total);
    aqa_backend_for(DEV)->to_host(raw, g->buf->storage->data, total, DEV);
    for (size_t i = 0; i < GUARD * es; i++) bad += raw[i] != 0xA5;
    for (size_t i = total - GUARD * es; i < total; i++) bad += raw[i] != 0xA5;
    free(raw);
    return bad;
}

static void guarded_free(guarded *g) {
    aqa__release(g->t);
    aqa__release(g->buf);
}

/* Raw bytes of a GPU tensor (malloc'd). */
static unsigned char *raw_bytes(const aqa_tensor *t) {
    size_t n = (size_t)aqa_numel(t) * aqa_dtype_size(t->dtype);
    unsigned char *r = malloc(n ? n : 1);
    aqa_backend_for(DEV)->to_host(r, aqa__ptr(t), n, DEV);
    return r;
}

static void test_kernels_guarded(void) {
    if (!have_gpu()) return;
    size_t held = device_in_use();
    /* n 3, 4 -> 6 channels, groups 2, 3-D input 3x5x4, kernel 2x3x3, stride (1,2,1), pad (1,1,0), dil (1,1,2) */
    aqa_conv_geom g = {.n = 3, .c_in = 4, .c_out = 6, .groups = 2, .in = {3, 5, 4}, .k = {2, 3, 2},
                       .stride = {1, 2, 1}, .pad = {1, 1, 0}, .dil = {1, 1, 2}};
    for (int i = 0; i < 3; i++) g.out[i] = (g.in[i] + 2 * g.pad[i] - g.dil[i] * (g.k[i] - 1) - 1) / g.stride[i] + 1;
    aqa_dtype dts[2] = {AQA_F32, AQA_F64};
    for (int t = 0; t < 2; t++)
        for (int bk = 0; bk < 2; bk++) {
            aqa_dtype dt = dts[t];
            aqa_scope_begin();
            aqa__cuda_conv_set_tile_bytes(bk ? 40 * aqa_dtype_size(dt) : 0);
            int64_t xs[5] = {g.n, g.c_in, g.in[0], g.in[1], g.in[2]};
            int64_t ws[5] = {g.c_out, g.c_in / g.groups, g.k[0], g.k[1], g.k[2]};
            int64_t ys[5] = {g.n, g.c_out, g.out[0], g.out[1], g.out[2]};
            aqa_tensor *x = rnd(5, xs, dt), *w = rnd(5, ws, dt), *b = rnd(1, (int64_t[]){g.c_out}, dt);
            aqa_tensor *gy = rnd(5, ys, dt);
            aqa_tensor *xg = aqa_to_device(x, DEV), *wg = aqa_to_device(w, DEV), *bg = aqa_to_device(b, DEV);
            aqa_tensor *gyg = aqa_to_device(gy, DEV);
            aqa_tensor *y = aqa_empty(5, ys, dt), *gx = aqa_empty(5, xs, dt), *gw = aqa_empty(5, ws, dt);
            aqa_tensor *gb = aqa_empty(1, (int64_t[]){g.c_out}, dt);
            CHECK(aqa__cpu_conv_forward(&g, x, w, b, y) == AQA_OK);
            CHECK(aqa__cpu_conv_backward(&g, x, w, gy, gx, gw, gb) == AQA_OK);
            guarded Y = guarded_new(5, ys, dt), GX = guarded_new(5, xs, dt), GW = guarded_new(5, ws, dt);
            guarded GB = guarded_new(1, (int64_t[]){g.c_out}, dt);
            char what[96];
            snprintf(what, sizeof what, "kernels %s budget %d", aqa_dtype_name(dt), bk);
            aqa_status st = aqa__cuda_conv_forward(&g, xg, wg, bg, Y.t);
            CHECK_MSG(st == AQA_OK, "%s: forward: %s", what, aqa_last_error());
            st = aqa__cuda_conv_backward(&g, xg, wg, gyg, GX.t, GW.t, GB.t);
            CHECK_MSG(st == AQA_OK, "%s: backward: %s", what, aqa_last_error());
            compare(what, y, Y.t, tol_for(dt));
            compare(what, gx, GX.t, tol_for(dt));
            compare(what, gw, GW.t, tol_for(dt));
            compare(what, gb, GB.t, tol_for(dt));
            CHECK_MSG(guard_damage(&Y) + guard_damage(&GX) + guard_damage(&GW) + guard_damage(&GB) == 0,
                      "%s: guard bytes around an output were overwritten", what);
            /* the backward again: identical bits */
            unsigned char *r1[3] = {raw_bytes(GX.t), raw_bytes(GW.t), raw_bytes(GB.t)};
            st = aqa__cuda_conv_backward(&g, xg, wg, gyg, GX.t, GW.t, GB.t);
            CHECK(st == AQA_OK);
            unsigned char *r2[3] = {raw_bytes(GX.t), raw_bytes(GW.t), raw_bytes(GB.t)};
            const aqa_tensor *ts[3] = {GX.t, GW.t, GB.t};
            for (int k = 0; k < 3; k++) {
                CHECK_MSG(!memcmp(r1[k], r2[k], (size_t)aqa_numel(ts[k]) * aqa_dtype_size(dt)),
                          "%s: gradient %d differs between two runs", what, k);
                free(r1[k]);
                free(r2[k]);
            }
            /* input gradient only (the transposed convolution's forward) and weight gradient only */
            st = aqa__cuda_conv_backward(&g, NULL, wg, gyg, GX.t, NULL, NULL);
            CHECK(st == AQA_OK);
            compare(what, gx, GX.t, tol_for(dt));
            st = aqa__cuda_conv_backward(&g, xg, wg, gyg, NULL, GW.t, NULL);
            CHECK(st == AQA_OK);
            compare(what, gw, GW.t, tol_for(dt));
            guarded_free(&Y);
            guarded_free(&GX);
            guarded_free(&GW);
            guarded_free(&GB);
            aqa__cuda_conv_set_tile_bytes(0);
            aqa_scope_end();
        }
    /* a CPU operand is refused with a message, not dereferenced */
    aqa_scope_begin();
    aqa_conv_geom p = {.n = 1, .c_in = 1, .c_out = 1, .groups = 1, .in = {1, 1, 2}, .out = {1, 1, 2},
                       .k = {1, 1, 1}, .stride = {1, 1, 1}, .dil = {1, 1, 1}};
    aqa_tensor *xc = aqa_zeros(AQA_SHAPE(1, 1, 2), AQA_F32), *wc = aqa_zeros(AQA_SHAPE(1, 1, 1), AQA_F32);
    aqa_tensor *yg = aqa_to_device(aqa_zeros(AQA_SHAPE(1, 1, 2), AQA_F32), DEV);
    CHECK(aqa__cuda_conv_forward(&p, xc, wc, NULL, yg) != AQA_OK);
    aqa_scope_end();
    CHECK_MSG(device_in_use() == held, "device memory in use: %zu bytes before, %zu after", held, device_in_use());
}

/* ---- an I3D-like block through the public modules --------------------------------------------- */

typedef struct block {
    aqa_module *root;
    aqa_i3d_unit3d *u1, *u2;
} block;

static block block_new(void) {
    block b;
    b.root = aqa_module_new(sizeof(aqa_module), "Block", NULL, "", NULL);
    b.u1 = aqa_i3d_unit3d_new(b.root, "u1", 3, 8, (const int64_t[]){3, 3, 3}, (const int64_t[]){1, 2, 2}, true, true,
                              false);
    b.u2 = aqa_i3d_unit3d_new(b.root, "u2", 8, 6, (const int64_t[]){1, 1, 1}, (const int64_t[]){1, 1, 1}, true, true,
                              false);
    return b;
}

static aqa_tensor *block_forward(block *b, aqa_tensor *x) {
    aqa_tensor *h = aqa_i3d_unit3d_forward(b->u1, x, true);
    h = aqa_i3d_max_pool_same(h, (const int64_t[]){1, 3, 3}, (const int64_t[]){1, 2, 2}, true);
    return aqa_i3d_unit3d_forward(b->u2, h, true);
}

/* Every parameter, running statistic and parameter gradient of two copies of a module agree
 * (gradients that are zero up to rounding: within 1e-5 rms). */
static void compare_modules(const char *what, aqa_module *mc, aqa_module *mg, double tol) {
    aqa_named_tensor *lc, *lg;
    int nc = aqa_module_named_tensors(mc, true, &lc), ng = aqa_module_named_tensors(mg, true, &lg);
    CHECK_EQ_INT(nc, ng);
    for (int i = 0; i < nc && i < ng; i++) {
        char w[200];
        if (lc[i].tensor->dtype != AQA_F32) continue; /* num_batches_tracked */
        snprintf(w, sizeof w, "%s %s%s", what, lc[i].name, lc[i].is_buffer ? " (running statistic)" : "");
        compare(w, lc[i].tensor, lg[i].tensor, tol);
        if (!lc[i].is_buffer) {
            snprintf(w, sizeof w, "%s %s grad", what, lc[i].name);
            compare_atol(w, lc[i].tensor->grad, lg[i].tensor->grad, tol, 1e-5);
        }
    }
    aqa_named_tensors_free(lc, nc);
    aqa_named_tensors_free(lg, ng);
}

static void test_i3d_block(void) {
    if (!have_gpu()) return;
    aqa_scope_begin();
    aqa_manual_seed(7);
    block bc = block_new();
    aqa_manual_seed(7);
    block bg = block_new();
    CHECK_MSG(bc.u1 && bc.u2 && bg.u1 && bg.u2, "block: %s", aqa_last_error());
    if (!bc.u2 || !bg.u2) goto done;
    aqa_module_train(bc.root, true);
    aqa_module_train(bg.root, true);
    CHECK_MSG(aqa_module_to(bg.root, DEV) == AQA_OK, "aqa_module_to: %s", aqa_last_error());
    aqa_tensor *x = aqa_requires_grad(rnd(AQA_SHAPE(2, 3, 4, 9, 9), AQA_F32), true);
    aqa_tensor *xg = aqa_requires_grad(aqa_detach(aqa_to_device(x, DEV)), true);
    aqa_tensor *y = block_forward(&bc, x), *yg = block_forward(&bg, xg);
    CHECK_MSG(y && yg, "block forward: %s", aqa_last_error());
    if (!y || !yg) goto done;
    compare("I3D block forward", y, yg, 1e-4);
    aqa_tensor *r = rnd(y->ndim, y->shape, AQA_F32);
    CHECK(aqa_backward(aqa_sum_all(aqa_mul(y, r)), NULL, false) == AQA_OK);
    CHECK_MSG(aqa_backward(aqa_sum_all(aqa_mul(yg, aqa_to_device(r, DEV))), NULL, false) == AQA_OK,
              "block backward: %s", aqa_last_error());
    compare("I3D block input grad", x->grad, xg->grad, 1e-4);
    compare_modules("I3D block", bc.root, bg.root, 1e-4);
done:
    aqa_module_free(bc.root);
    aqa_module_free(bg.root);
    aqa_scope_end();
}

/* MVLA's segmentation module (N 3 clips, C_i3d 64, T 16, L 2): frames and boundary probabilities,
 * the input and parameter gradients. */
static void test_mvla_segmentation(void) {
    if (!have_gpu()) return;
    aqa_scope_begin();
    aqa_manual_seed(11);
    aqa_mvla_segmentation *sc = aqa_mvla_segmentation_new(NULL, "seg", 3, 64, 16, 8, 8, 2);
    aqa_manual_seed(11);
    aqa_mvla_segmentation *sg = aqa_mvla_segmentation_new(NULL, "seg", 3, 64, 16, 8, 8, 2);
    CHECK_MSG(sc && sg, "segmentation: %s", aqa_last_error());
    if (!sc || !sg) goto done;
    aqa_module_train(&sc->base, true);
    aqa_module_train(&sg->base, true);
    CHECK_MSG(aqa_module_to(&sg->base, DEV) == AQA_OK, "aqa_module_to: %s", aqa_last_error());
    aqa_tensor *x = aqa_requires_grad(rnd(AQA_SHAPE(2, 3, 64), AQA_F32), true);
    aqa_tensor *xg = aqa_requires_grad(aqa_detach(aqa_to_device(x, DEV)), true);
    aqa_tensor *fc, *pc, *fg, *pg;
    CHECK(aqa_mvla_segmentation_forward(sc, x, &fc, &pc) == AQA_OK);
    aqa_status st = aqa_mvla_segmentation_forward(sg, xg, &fg, &pg);
    CHECK_MSG(st == AQA_OK, "gpu segmentation forward: %s", aqa_last_error());
    if (st != AQA_OK) goto done;
    compare("segmentation frames", fc, fg, 1e-4);
    compare("segmentation boundary probabilities", pc, pg, 1e-4);
    aqa_tensor *r1 = rnd(fc->ndim, fc->shape, AQA_F32), *r2 = rnd(pc->ndim, pc->shape, AQA_F32);
    CHECK(aqa_backward(aqa_add(aqa_sum_all(aqa_mul(fc, r1)), aqa_sum_all(aqa_mul(pc, r2))), NULL, false) == AQA_OK);
    st = aqa_backward(aqa_add(aqa_sum_all(aqa_mul(fg, aqa_to_device(r1, DEV))),
                              aqa_sum_all(aqa_mul(pg, aqa_to_device(r2, DEV)))),
                      NULL, false);
    CHECK_MSG(st == AQA_OK, "gpu segmentation backward: %s", aqa_last_error());
    if (st == AQA_OK) {
        compare("segmentation input grad", x->grad, xg->grad, 1e-4);
        compare_modules("segmentation", &sc->base, &sg->base, 1e-4);
    }
done:
    if (sc) aqa_module_free(&sc->base);
    if (sg) aqa_module_free(&sg->base);
    aqa_scope_end();
}

int main(void) {
    cuda_test_init("cuda conv");
    /* AQA_TEST_ONLY=name runs one case (handy under the emulator) */
#define RUN_SEL(fn)                                        \
    do {                                                   \
        const char *only_ = getenv("AQA_TEST_ONLY");       \
        if (!only_ || !strcmp(only_, #fn)) RUN(fn);        \
    } while (0)
    RUN_SEL(test_conv_vs_cpu);
    RUN_SEL(test_kernels_guarded);
    RUN_SEL(test_i3d_block);
    RUN_SEL(test_mvla_segmentation);
    return test_finish();
}
