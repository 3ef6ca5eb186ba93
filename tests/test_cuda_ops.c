/* test_cuda_ops.c: every CUDA backend slot against the CPU backend, on random inputs.
 *
 * Each case builds the same operands on both devices (contiguous, transposed, sliced and
 * broadcast views made with the same view ops on each side), runs one backend slot on each, and
 * compares by normalised error ||gpu - cpu|| / ||cpu|| (exact for integers and bools; NaN must
 * match NaN).  GPU outputs live inside a larger buffer whose guard bytes are checked afterwards,
 * so an out-of-bounds write fails the case.  Then: determinism of the reductions and scatters
 * (two runs, identical bits), Philox streams equal to the CPU's, the allocator's statistics and
 * out-of-memory message, host<->device copies, and a small network's forward and backward
 * through the public ops.  Without a GPU (or driver) every case SKIPs with the reason (or fails,
 * with AQA_REQUIRE_GPU=1).
 * AQA_CUDA_SYNC=1 is set so that a failing kernel is named in the error. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/autograd.h"
#include "nn/activation.h"
#include "nn/attention.h"
#include "nn/batchnorm.h"
#include "nn/dropout.h"
#include "nn/pool.h"
#include "nn/linear.h"
#include "nn/loss.h"
#include "nn/norm_layer.h"
#include "tensor/backend.h"
#include "tensor/cuda/cuda-impl.h"
#include "tensor/cuda/cuda.h"
#include "ops/ops.h"
#include "tensor/tensor-impl.h"
#include "tests/testlib.h"
#include "tests/cuda_testlib.h"

static const aqa_backend *CPU = &aqa_cpu_backend, *GPU;



/* The same tensor on the CPU (c) and the GPU (g). */
typedef struct pair {
    aqa_tensor *c, *g;
} pair;

/* Random values in [lo, hi) (integers for I64, 0/1 for bool), contiguous, scope-owned. */
static pair rnd(int nd, const int64_t *shape, aqa_dtype dt, double lo, double hi) {
    int64_t n = aqa__shape_numel(nd, shape);
    double *v = malloc((size_t)(n ? n : 1) * sizeof(double));
    for (int64_t i = 0; i < n; i++) {
        double u = lo + (hi - lo) * urand();
        v[i] = dt == AQA_I64 ? floor(u) : dt == AQA_BOOL ? (urand() < 0.5) : u;
    }
    aqa_tensor *f = aqa_from_data(v, nd, shape, AQA_F64);
    free(v);
    pair p;
    p.c = aqa_to_dtype(f, dt);
    p.g = aqa_to_device(p.c, DEV);
    return p;
}
#define RND(dt, lo, hi, ...) rnd(AQA_SHAPE(__VA_ARGS__), dt, lo, hi)

static pair tr(pair p, int a, int b) { return (pair){aqa_transpose(p.c, a, b), aqa_transpose(p.g, a, b)}; }
static pair sl(pair p, int dim, int64_t s, int64_t e, int64_t st) {
    return (pair){aqa_slice(p.c, dim, s, e, st), aqa_slice(p.g, dim, s, e, st)};
}
static pair ex(pair p, int nd, const int64_t *shape) { return (pair){aqa_expand(p.c, nd, shape), aqa_expand(p.g, nd, shape)}; }

/* Output pair: CPU tensor, GPU tensor inside a guarded buffer. */
#define GUARD 64
typedef struct opair {
    aqa_tensor *c, *g; /* outputs */
    aqa_tensor *buf;   /* GPU buffer holding g with GUARD elements each side */
} opair;

static opair out_new(int nd, const int64_t *shape, aqa_dtype dt) {
    opair o;
    int64_t n = aqa__shape_numel(nd, shape);
    o.c = aqa__new_unowned(nd, shape, dt, AQA_DEVICE_CPU);
    int64_t total = n + 2 * GUARD;
    o.buf = aqa__new_unowned(1, &total, dt, DEV);
    size_t nb = (size_t)total * aqa_dtype_size(dt);
    unsigned char *pat = malloc(nb);
    memset(pat, 0xA5, nb);
    GPU->from_host(o.buf->storage->data, pat, nb, DEV);
    memcpy(o.c->storage->data, pat, (size_t)n * aqa_dtype_size(dt)); /* same junk in both */
    free(pat);
    int64_t st[AQA_MAX_DIMS];
    aqa__contiguous_strides(nd, shape, st);
    o.g = aqa__alias_unowned(o.buf, nd, shape, st, GUARD);
    return o;
}

static void out_free(opair *o) {
    aqa__release(o->c);
    aqa__release(o->g);
    aqa__release(o->buf);
}

/* Copies any tensor's values to a host double array (GPU side through a raw byte copy). */
static double *values(const aqa_tensor *t) {
    int64_t n = aqa_numel(t);
    double *v = malloc((size_t)(n ? n : 1) * sizeof(double));
    aqa_tensor *c = aqa__new_unowned(t->ndim, t->shape, t->dtype, t->storage->device);
    const aqa_backend *be = aqa_backend_for(t->storage->device);
    be->copy(c, t);
    size_t es = aqa_dtype_size(t->dtype);
    unsigned char *raw = malloc((size_t)(n ? n : 1) * es);
    be->to_host(raw, c->storage->data, (size_t)n * es, t->storage->device);
    for (int64_t i = 0; i < n; i++) {
        switch (t->dtype) {
        case AQA_F32: v[i] = ((float *)raw)[i]; break;
        case AQA_F64: v[i] = ((double *)raw)[i]; break;
        case AQA_I64: v[i] = (double)((int64_t *)raw)[i]; break;
        case AQA_BOOL: v[i] = raw[i]; break;
        }
    }
    free(raw);
    aqa__release(c);
    return v;
}

/* Normalised error between the CPU and GPU outputs; NaN must face NaN, inf the same inf. */
static void compare(const char *what, const aqa_tensor *c, const aqa_tensor *g, double tol) {
    int64_t n = aqa_numel(c);
    CHECK_MSG(aqa_numel(g) == n, "%s: sizes differ", what);
    double *a = values(c), *b = values(g);
    double num = 0, den = 0;
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(a[i]) || isnan(b[i]) || isinf(a[i]) || isinf(b[i])) {
            bool same = (isnan(a[i]) && isnan(b[i])) || a[i] == b[i];
            if (!same && (bad++ == 0)) first = i;
            continue;
        }
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += a[i] * a[i];
    }
    double err = sqrt(num) / (den > 0 ? sqrt(den) : 1.0);
    if (tol == 0 && num != 0 && first < 0)
        for (int64_t i = 0; i < n; i++)
            if (a[i] != b[i] && !(isnan(a[i]) && isnan(b[i]))) {
                first = i;
                break;
            }
    CHECK_MSG(err <= tol && bad == 0, "%s: normalised error %.3g (tol %.3g), %lld NaN/inf mismatches%s", what, err,
              tol, (long long)bad, first >= 0 ? "" : "");
    if ((err > tol || bad) && first >= 0) printf("    %s: first difference at %lld: cpu %.9g gpu %.9g\n", what,
                                                 (long long)first, a[first], b[first]);
    free(a);
    free(b);
}

static void check_guards(const char *what, const opair *o) {
    size_t es = aqa_dtype_size(o->buf->dtype), total = (size_t)aqa_numel(o->buf);
    unsigned char *raw = malloc(total * es);
    GPU->to_host(raw, o->buf->storage->data, total * es, DEV);
    size_t g = GUARD * es, bad = 0;
    for (size_t i = 0; i < g; i++) bad += raw[i] != 0xA5;
    for (size_t i = total * es - g; i < total * es; i++) bad += raw[i] != 0xA5;
    CHECK_MSG(bad == 0, "%s: %zu guard bytes around the output were overwritten", what, bad);
    free(raw);
}

static void finish(const char *what, opair *o, aqa_status sc, aqa_status sg, double tol) {
    CHECK_MSG(sc == AQA_OK, "%s: cpu failed: %s", what, aqa_last_error());
    CHECK_MSG(sg == AQA_OK, "%s: gpu failed: %s", what, aqa_last_error());
    if (sc == AQA_OK && sg == AQA_OK) {
        compare(what, o->c, o->g, tol);
        check_guards(what, o);
    }
    out_free(o);
}

static double tol_for(aqa_dtype dt) { return dt == AQA_F32 ? 2e-6 : dt == AQA_F64 ? 1e-13 : 0; }

/* ---- copy / fill ----------------------------------------------------------------------------- */

static void test_copy_fill(void) {
    if (!have_gpu()) return;
    aqa_scope_begin();
    aqa_dtype dts[4] = {AQA_F32, AQA_F64, AQA_I64, AQA_BOOL};
    for (int s = 0; s < 4; s++) {
        pair x = RND(dts[s], -50, 50, 6, 7, 9);
        pair views[3] = {x, tr(x, 0, 2), sl(x, 1, 1, 7, 2)};
        for (int v = 0; v < 3; v++)
            for (int d = 0; d < 4; d++) {
                char what[80];
                snprintf(what, sizeof what, "copy %s <- %s view %d", aqa_dtype_name(dts[d]), aqa_dtype_name(dts[s]), v);
                opair o = out_new(views[v].c->ndim, views[v].c->shape, dts[d]);
                aqa_status sc = CPU->copy(o.c, views[v].c), sg = GPU->copy(o.g, views[v].g);
                finish(what, &o, sc, sg, 0);
            }
        /* strided destination: fill a transposed view of a guarded buffer */
        opair o = out_new(3, (int64_t[]){9, 7, 6}, dts[s]);
        aqa_tensor *oc = aqa_transpose(o.c, 0, 2), *og = aqa_transpose(o.g, 0, 2);
        aqa_status sc = CPU->copy(oc, x.c), sg = GPU->copy(og, x.g);
        finish("copy into a transposed view", &o, sc, sg, 0);
        double vals[3] = {0.0, -2.5, 3.0};
        for (int k = 0; k < 3; k++) {
            opair f = out_new(3, (int64_t[]){5, 3, 4}, dts[s]);
            aqa_tensor *fc = aqa_slice(f.c, 2, 0, 4, 2), *fg = aqa_slice(f.g, 2, 0, 4, 2);
            CPU->fill(f.c, 1.0);
            GPU->fill(f.g, 1.0);
            sc = CPU->fill(fc, vals[k]);
            sg = GPU->fill(fg, vals[k]);
            char what[80];
            snprintf(what, sizeof what, "fill %s %g", aqa_dtype_name(dts[s]), vals[k]);
            finish(what, &f, sc, sg, 0);
        }
    }
    aqa_scope_end();
}

/* ---- unary ----------------------------------------------------------------------------------- */

static void test_unary(void) {
    if (!have_gpu()) return;
    aqa_scope_begin();
    aqa_dtype fdts[2] = {AQA_F32, AQA_F64};
    for (int t = 0; t < 2; t++) {
        aqa_dtype dt = fdts[t];
        pair any = RND(dt, -6, 6, 5, 8, 7), pos = RND(dt, 0.05, 9, 5, 8, 7);
        pair small = RND(dt, -3, 3, 1, 8, 1);
        for (int op = 0; op < AQA_UN_COUNT; op++) {
            if (op == AQA_UN_LOGICAL_NOT) continue;
            bool needs_pos = op == AQA_UN_LOG || op == AQA_UN_SQRT || op == AQA_UN_RSQRT || op == AQA_UN_POW_SCALAR ||
                             op == AQA_UN_LOG1P;
            pair x = needs_pos ? pos : any;
            double p0 = op == AQA_UN_CLAMP ? -1.5 : op == AQA_UN_POW_SCALAR ? 1.7 : 0.75, p1 = 2.25;
            pair views[3] = {x, tr(x, 0, 2), ex(small, 3, (int64_t[]){5, 8, 7})};
            for (int v = 0; v < 3; v++) {
                char what[80];
                snprintf(what, sizeof what, "unary op %d %s view %d", op, aqa_dtype_name(dt), v);
                opair o = out_new(3, views[v].c->shape, dt);
                aqa_status sc = CPU->unary(op, o.c, views[v].c, p0, p1), sg = GPU->unary(op, o.g, views[v].g, p0, p1);
                /* f32: both sides use different (few-ulp) approximations of the transcendental functions */
                finish(what, &o, sc, sg, dt == AQA_F32 ? 2e-6 : 1e-13);
            }
        }
        /* long contiguous operands: the float32 16-byte vector kernels (with a scalar tail) */
        pair big = RND(dt, 0.05, 4, 4099);
        for (int op = 0; op < AQA_UN_COUNT; op++) {
            if (op == AQA_UN_LOGICAL_NOT) continue;
            opair o = out_new(1, big.c->shape, dt);
            aqa_status sc = CPU->unary(op, o.c, big.c, 0.5, 2.0), sg = GPU->unary(op, o.g, big.g, 0.5, 2.0);
            char what[80];
            snprintf(what, sizeof what, "unary op %d %s long contiguous", op, aqa_dtype_name(dt));
            finish(what, &o, sc, sg, dt == AQA_F32 ? 2e-6 : 1e-13);
        }
        /* pow with the special exponents */
        double exps[4] = {2.0, 0.5, -1.0, 3.0};
        for (int e = 0; e < 4; e++) {
            opair o = out_new(3, pos.c->shape, dt);
            aqa_status sc = CPU->unary(AQA_UN_POW_SCALAR, o.c, pos.c, exps[e], 0),
                       sg = GPU->unary(AQA_UN_POW_SCALAR, o.g, pos.g, exps[e], 0);
            finish("pow_scalar special exponent", &o, sc, sg, tol_for(dt));
        }
    }
    /* int64 */
    pair xi = RND(AQA_I64, -20, 20, 4, 33);
    int iops[] = {AQA_UN_NEG, AQA_UN_ABS, AQA_UN_RELU, AQA_UN_SQUARE, AQA_UN_SIGN, AQA_UN_CLAMP, AQA_UN_ADD_SCALAR,
                  AQA_UN_MUL_SCALAR, AQA_UN_RSUB_SCALAR, AQA_UN_POW_SCALAR};
    for (size_t k = 0; k < sizeof iops / sizeof iops[0]; k++) {
        pair x = tr(xi, 0, 1);
        double p0 = iops[k] == AQA_UN_POW_SCALAR ? 3 : iops[k] == AQA_UN_CLAMP ? -INFINITY : 5, p1 = 7;
        opair o = out_new(2, x.c->shape, AQA_I64);
        aqa_status sc = CPU->unary(iops[k], o.c, x.c, p0, p1), sg = GPU->unary(iops[k], o.g, x.g, p0, p1);
        finish("unary int64", &o, sc, sg, 0);
    }
    /* logical_not on every dtype */
    aqa_dtype all[4] = {AQA_F32, AQA_F64, AQA_I64, AQA_BOOL};
    for (int t = 0; t < 4; t++) {
        pair x = RND(all[t], -2, 2, 9, 13);
        opair o = out_new(2, x.c->shape, AQA_BOOL);
        aqa_status sc = CPU->unary(AQA_UN_LOGICAL_NOT, o.c, x.c, 0, 0), sg = GPU->unary(AQA_UN_LOGICAL_NOT, o.g, x.g, 0, 0);
        finish("logical_not", &o, sc, sg, 0);
    }
    /* unsupported combinations fail on both */
    opair o = out_new(2, xi.c->shape, AQA_I64);
    CHECK(GPU->unary(AQA_UN_EXP, o.g, xi.g, 0, 0) != AQA_OK);
    out_free(&o);
    aqa_scope_end();
}

/* ---- binary, where, axpy ---------------------------------------------------------------------------- */

static void test_binary(void) {
    if (!have_gpu()) return;
    aqa_scope_begin();
    aqa_dtype dts[4] = {AQA_F32, AQA_F64, AQA_I64, AQA_BOOL};
    for (int t = 0; t < 4; t++) {
        aqa_dtype dt = dts[t];
        pair a = RND(dt, dt == AQA_I64 ? -5 : 0.1, 5, 4, 1, 35), b = RND(dt, dt == AQA_I64 ? 0 : 0.1, 4, 1, 3, 35);
        pair a2 = RND(dt, -4, 4, 35, 3, 4);
        int64_t full[3] = {4, 3, 35};
        pair ab[3][2] = {
            {ex(a, 3, full), ex(b, 3, full)},
            {tr(a2, 0, 2), ex(b, 3, full)},
            {ex(b, 3, full), tr(a2, 0, 2)},
        };
        for (int op = 0; op < AQA_BIN_COUNT; op++) {
            bool cmp = op >= AQA_BIN_EQ;
            if (!cmp && (dt == AQA_BOOL || (dt == AQA_I64 && op == AQA_BIN_DIV))) continue;
            for (int v = 0; v < 3; v++) {
                if (op == AQA_BIN_POW && v > 0 && dt != AQA_I64) continue; /* keep pow's base positive */
                char what[80];
                snprintf(what, sizeof what, "binary op %d %s layout %d", op, aqa_dtype_name(dt), v);
                opair o = out_new(3, full, cmp ? AQA_BOOL : dt);
                aqa_status sc = CPU->binary(op, o.c, ab[v][0].c, ab[v][1].c),
                           sg = GPU->binary(op, o.g, ab[v][0].g, ab[v][1].g);
                finish(what, &o, sc, sg, cmp ? 0 : tol_for(dt));
            }
        }
        /* long contiguous operands (float32: the vector kernels) */
        pair la = RND(dt, 0.5, 3, 4101), lb = RND(dt, 0.5, 3, 4101);
        for (int op = 0; op < AQA_BIN_COUNT; op++) {
            bool cmp = op >= AQA_BIN_EQ;
            if (!cmp && (dt == AQA_BOOL || (dt == AQA_I64 && op == AQA_BIN_DIV))) continue;
            opair o = out_new(1, la.c->shape, cmp ? AQA_BOOL : dt);
            aqa_status sc = CPU->binary(op, o.c, la.c, lb.c), sg = GPU->binary(op, o.g, la.g, lb.g);
            char what[80];
            snprintf(what, sizeof what, "binary op %d %s long contiguous", op, aqa_dtype_name(dt));
            finish(what, &o, sc, sg, cmp ? 0 : tol_for(dt));
        }
        if (dt != AQA_BOOL) {
            pair ld = RND(dt, -3, 3, 4101);
            CHECK(CPU->axpy(ld.c, la.c, 0.25) == AQA_OK && GPU->axpy(ld.g, la.g, 0.25) == AQA_OK);
            CHECK(CPU->axpy(ld.c, lb.c, 1.0) == AQA_OK && GPU->axpy(ld.g, lb.g, 1.0) == AQA_OK);
            compare("axpy long contiguous", ld.c, ld.g, tol_for(dt));
        }
        /* where with a broadcast condition */
        pair cond = RND(AQA_BOOL, 0, 1, 1, 3, 35);
        opair o = out_new(3, full, dt);
        aqa_status sc = CPU->where(o.c, ex(cond, 3, full).c, ab[1][0].c, ab[1][1].c),
                   sg = GPU->where(o.g, ex(cond, 3, full).g, ab[1][0].g, ab[1][1].g);
        finish("where", &o, sc, sg, 0);
        /* axpy into a strided destination */
        if (dt != AQA_BOOL) {
            double alphas[2] = {1.0, -0.375};
            for (int k = 0; k < 2; k++) {
                pair dst = RND(dt, -3, 3, 35, 3, 4);
                pair d = tr(dst, 0, 2), s = ex(b, 3, full);
                aqa_status s1 = CPU->axpy(d.c, s.c, alphas[k]), s2 = GPU->axpy(d.g, s.g, alphas[k]);
                CHECK(s1 == AQA_OK && s2 == AQA_OK);
                compare("axpy", dst.c, dst.g, tol_for(dt));
            }
        }
    }
    aqa_scope_end();
}

/* ---- reductions -------------------------------------------------------------------------------- */

static void reduce_case(const char *name, pair x, uint32_t mask, aqa_dtype dt) {
    int nd = x.c->ndim;
    int64_t oshape[AQA_MAX_DIMS];
    for (int d = 0; d < nd; d++) oshape[d] = (mask >> d) & 1u ? 1 : x.c->shape[d];
    for (int op = 0; op < AQA_RED_COUNT; op++) {
        if (op == AQA_RED_SUM && dt == AQA_BOOL) continue;
        char what[120];
        snprintf(what, sizeof what, "reduce %s op %d %s mask 0x%x", name, op, aqa_dtype_name(dt), mask);
        opair o = out_new(nd, oshape, dt);
        opair i = out_new(nd, oshape, AQA_I64);
        bool with_idx = op != AQA_RED_SUM;
        aqa_status sc = CPU->reduce(op, o.c, with_idx ? i.c : NULL, x.c, mask),
                   sg = GPU->reduce(op, o.g, with_idx ? i.g : NULL, x.g, mask);
        /* float sums: both accumulate in double, in different orders */
        finish(what, &o, sc, sg, op == AQA_RED_SUM && dt == AQA_F32 ? 1e-6 : op == AQA_RED_SUM ? 1e-12 : 0);
        if (with_idx) {
            snprintf(what, sizeof what, "reduce %s op %d %s mask 0x%x positions", name, op, aqa_dtype_name(dt), mask);
            finish(what, &i, sc, sg, 0);
        } else {
            out_free(&i);
        }
    }
}

static void test_reduce(void) {
    if (!have_gpu()) return;
    aqa_scope_begin();
    aqa_dtype dts[4] = {AQA_F32, AQA_F64, AQA_I64, AQA_BOOL};
    for (int t = 0; t < 4; t++) {
        aqa_dtype dt = dts[t];
        /* small integer ranges give ties: positions must be the first occurrence */
        double lo = dt == AQA_I64 ? -3 : -10, hi = dt == AQA_I64 ? 3 : 10;
        pair a = RND(dt, lo, hi, 37, 129);
        reduce_case("[37,129]", a, 1, dt);
        reduce_case("[37,129]", a, 2, dt);
        reduce_case("[37,129]", a, 3, dt);
        reduce_case("[129,37]^T", tr(RND(dt, lo, hi, 129, 37), 0, 1), 1, dt);
        pair b = RND(dt, lo, hi, 4, 5, 300);
        reduce_case("[4,5,300]", b, 5, dt);
        reduce_case("[4,5,300]", b, 2, dt);
        reduce_case("[4,5,300] sliced", sl(b, 2, 3, 290, 3), 6, dt);
        reduce_case("[3,70000]", RND(dt, lo, hi, 3, 70000), 2, dt);          /* split rows */
        reduce_case("[70000,3]", RND(dt, lo, hi, 70000, 3), 1, dt);          /* split columns */
        reduce_case("[300000]", RND(dt, lo, hi, 300000), 1, dt);             /* one output, split */
        reduce_case("[2,1,3] dim of 1", RND(dt, lo, hi, 2, 1, 3), 2, dt);
        reduce_case("0-d", RND(dt, lo, hi, 1), 1, dt);
    }
    /* NaN wins, first NaN's position */
    double v[6] = {1, NAN, 3, NAN, 7, -1};
    aqa_tensor *h = aqa_from_data(v, AQA_SHAPE(2, 3), AQA_F64);
    pair x = {aqa_to_dtype(h, AQA_F32), NULL};
    x.g = aqa_to_device(x.c, DEV);
    reduce_case("NaN", x, 2, AQA_F32);
    reduce_case("NaN", x, 3, AQA_F32);
    aqa_scope_end();
}

static void test_reduce_deterministic(void) {
    if (!have_gpu()) return;
    aqa_scope_begin();
    pair x = RND(AQA_F32, -1, 1, 1 << 22);
    pair y = RND(AQA_F32, -1, 1, 64, 50000);
    for (int k = 0; k < 2; k++) {
        pair in = k ? y : x;
        uint32_t mask = k ? 2 : 1;
        int64_t os[2] = {k ? 64 : 1, 1};
        aqa_tensor *o1 = aqa__new_unowned(in.g->ndim, os, AQA_F32, DEV);
        aqa_tensor *o2 = aqa__new_unowned(in.g->ndim, os, AQA_F32, DEV);
        CHECK(GPU->reduce(AQA_RED_SUM, o1, NULL, in.g, mask) == AQA_OK);
        CHECK(GPU->reduce(AQA_RED_SUM, o2, NULL, in.g, mask) == AQA_OK);
        double *a = values(o1), *b = values(o2);
        int64_t n = aqa_numel(o1);
        CHECK_MSG(memcmp(a, b, (size_t)n * sizeof(double)) == 0, "sum of %lld elements differs between runs",
                  (long long)aqa_numel(in.g));
        free(a);
        free(b);
        aqa__release(o1);
        aqa__release(o2);
    }
    aqa_scope_end();
}

/* ---- softmax ------------------------------------------------------------------------------------- */

static void softmax_case(const char *name, pair x, int dim) {
    aqa_dtype dt = x.c->dtype;
    for (int lg = 0; lg < 2; lg++) {
        char what[120];
        snprintf(what, sizeof what, "%s %s dim %d %s", lg ? "log_softmax" : "softmax", name, dim, aqa_dtype_name(dt));
        opair y = out_new(x.c->ndim, x.c->shape, dt);
        aqa_status sc = CPU->softmax(y.c, x.c, dim, lg), sg = GPU->softmax(y.g, x.g, dim, lg);
        double tol = dt == AQA_F32 ? 3e-6 : 1e-13;
        if (sc || sg) {
            finish(what, &y, sc, sg, tol);
            continue;
        }
        compare(what, y.c, y.g, tol);
        check_guards(what, &y);
        /* backward from the CPU's forward output on both sides */
        pair yy = {y.c, aqa_to_device(y.c, DEV)};
        pair gy = rnd(x.c->ndim, x.c->shape, dt, -1, 1);
        opair gx = out_new(x.c->ndim, x.c->shape, dt);
        snprintf(what, sizeof what, "%s backward %s dim %d %s", lg ? "log_softmax" : "softmax", name, dim,
                 aqa_dtype_name(dt));
        sc = CPU->softmax_backward(gx.c, gy.c, yy.c, dim, lg);
        sg = GPU->softmax_backward(gx.g, gy.g, yy.g, dim, lg);
        finish(what, &gx, sc, sg, tol * 3);
        out_free(&y);
    }
}

static void test_softmax(void) {
    if (!have_gpu()) return;
    aqa_scope_begin();
    aqa_dtype dts[2] = {AQA_F32, AQA_F64};
    for (int t = 0; t < 2; t++) {
        softmax_case("[7,33]", RND(dts[t], -5, 5, 7, 33), 1);
        softmax_case("[3,2000]", RND(dts[t], -5, 5, 3, 2000), 1);
        softmax_case("[5,17,9]", RND(dts[t], -5, 5, 5, 17, 9), 1);
        softmax_case("[5,17,9]", RND(dts[t], -5, 5, 5, 17, 9), 0);
        softmax_case("[9,17]^T", tr(RND(dts[t], -5, 5, 9, 17), 0, 1), 1);
        softmax_case("[1000,77]", RND(dts[t], -30, 30, 1000, 77), 1);
        softmax_case("[4]", RND(dts[t], -5, 5, 4), 0);
    }
    /* -inf row gives NaN on both, as torch */
    double v[4] = {-INFINITY, -INFINITY, 1, 2};
    pair x = {aqa_from_data(v, AQA_SHAPE(2, 2), AQA_F64), NULL};
    x.g = aqa_to_device(x.c, DEV);
    softmax_case("-inf row", x, 1);
    aqa_scope_end();
}

/* ---- matmul ------------------------------------------------------------------------------------- */

static void matmul_case(const char *name, pair a, pair b, double alpha, double beta, double tol) {
    int nd = a.c->ndim;
    int64_t cs[AQA_MAX_DIMS];
    for (int d = 0; d < nd - 1; d++) cs[d] = a.c->shape[d];
    cs[nd - 1] = b.c->shape[nd - 1];
    opair c = out_new(nd, cs, a.c->dtype);
    pair init = rnd(nd, cs, a.c->dtype, -1, 1);
    CPU->copy(c.c, init.c);
    GPU->copy(c.g, init.g);
    aqa_status sc = CPU->matmul(c.c, a.c, b.c, alpha, beta), sg = GPU->matmul(c.g, a.g, b.g, alpha, beta);
    char what[120];
    snprintf(what, sizeof what, "matmul %s %s alpha %g beta %g", name, aqa_dtype_name(a.c->dtype), alpha, beta);
    finish(what, &c, sc, sg, tol);
}

static void test_matmul(void) {
    if (!have_gpu()) return;
    aqa_scope_begin();
    aqa_dtype dts[3] = {AQA_F32, AQA_F64, AQA_I64};
    for (int t = 0; t < 3; t++) {
        aqa_dtype dt = dts[t];
        double tol = dt == AQA_F32 ? 1e-5 : dt == AQA_F64 ? 1e-12 : 0;
        double lo = dt == AQA_I64 ? -4 : -1, hi = dt == AQA_I64 ? 4 : 1;
        pair a = RND(dt, lo, hi, 2, 3, 33, 17), b = RND(dt, lo, hi, 2, 3, 17, 29);
        matmul_case("batched", a, b, 1, 0, tol);
        matmul_case("batched alpha/beta", a, b, 0.5, dt == AQA_I64 ? 2 : -1.5, tol);
        matmul_case("a^T", tr(RND(dt, lo, hi, 2, 3, 17, 33), 2, 3), b, 1, 0, tol);
        matmul_case("b^T", a, tr(RND(dt, lo, hi, 2, 3, 29, 17), 2, 3), 1, 0, tol);
        matmul_case("a^T b^T", tr(RND(dt, lo, hi, 2, 3, 17, 33), 2, 3), tr(RND(dt, lo, hi, 2, 3, 29, 17), 2, 3), 1, 0,
                    tol);
        /* linear layer: shared b (batch fold) */
        pair w = RND(dt, lo, hi, 1, 64, 24);
        matmul_case("shared b", RND(dt, lo, hi, 4, 10, 64), ex(w, 3, (int64_t[]){4, 64, 24}), 1, 0, tol);
        /* permuted batch dims: not uniformly strided -> copies */
        pair p = RND(dt, lo, hi, 3, 5, 2, 8);
        matmul_case("permuted batch", tr(p, 0, 2), RND(dt, lo, hi, 2, 5, 8, 6), 1, 0, tol);
        /* broadcast a over the batch */
        pair a1 = RND(dt, lo, hi, 1, 9, 12);
        matmul_case("broadcast a", ex(a1, 3, (int64_t[]){5, 9, 12}), RND(dt, lo, hi, 5, 12, 7), 1, 0, tol);
        /* strided rows (sliced) and vectors */
        matmul_case("sliced", sl(RND(dt, lo, hi, 20, 40), 1, 0, 40, 2), RND(dt, lo, hi, 20, 3), 1, 0, tol);
        matmul_case("matrix-vector", RND(dt, lo, hi, 30, 50), RND(dt, lo, hi, 50, 1), 1, 0, tol);
        matmul_case("k = 0", RND(dt, lo, hi, 4, 0), RND(dt, lo, hi, 0, 5), 1, 2, tol);
        matmul_case("large", RND(dt, lo, hi, 257, 300), RND(dt, lo, hi, 300, 190), 1, 0, tol * 3);
    }
    /* TF32: looser */
    aqa_cuda_set_tf32(true);
    matmul_case("tf32", RND(AQA_F32, -1, 1, 256, 512), RND(AQA_F32, -1, 1, 512, 128), 1, 0, 3e-3);
    aqa_cuda_set_tf32(false);
    aqa_scope_end();
}

/* ---- indexing ----------------------------------------------------------------------------------- */

static pair idx_pair(int nd, const int64_t *shape, int64_t hi) { return rnd(nd, shape, AQA_I64, 0, (double)hi); }

static void test_index(void) {
    if (!have_gpu()) return;
    aqa_scope_begin();
    aqa_dtype dts[4] = {AQA_F32, AQA_F64, AQA_I64, AQA_BOOL};
    for (int t = 0; t < 4; t++) {
        aqa_dtype dt = dts[t];
        pair x = RND(dt, -9, 9, 6, 11, 5);
        pair xt = tr(x, 0, 2); /* [5, 11, 6] */
        for (int dim = 0; dim < 3; dim++) {
            pair idx = idx_pair(1, (int64_t[]){13}, xt.c->shape[dim]);
            int64_t os[3] = {xt.c->shape[0], xt.c->shape[1], xt.c->shape[2]};
            os[dim] = 13;
            opair o = out_new(3, os, dt);
            aqa_status sc = CPU->index_select(o.c, xt.c, dim, idx.c), sg = GPU->index_select(o.g, xt.g, dim, idx.g);
            finish("index_select", &o, sc, sg, 0);
            /* index_add with repeated indices, into a transposed destination */
            pair dst = RND(dt, -9, 9, 6, 11, 5);
            pair d = tr(dst, 0, 2);
            pair src = rnd(3, os, dt, -9, 9);
            sc = CPU->index_add(d.c, dim, idx.c, src.c);
            sg = GPU->index_add(d.g, dim, idx.g, src.g);
            CHECK(sc == AQA_OK && sg == AQA_OK);
            compare("index_add", dst.c, dst.g, dt == AQA_F32 ? 1e-6 : dt == AQA_F64 ? 1e-14 : 0);
            /* gather / scatter_add with an index smaller than the input */
            int64_t is[3] = {4, 9, 5};
            is[dim] = 7;
            pair gi = idx_pair(3, is, xt.c->shape[dim]);
            opair go = out_new(3, is, dt);
            sc = CPU->gather(go.c, xt.c, dim, gi.c);
            sg = GPU->gather(go.g, xt.g, dim, gi.g);
            finish("gather", &go, sc, sg, 0);
            pair dst2 = RND(dt, -9, 9, 6, 11, 5);
            pair d2 = tr(dst2, 0, 2);
            pair src2 = rnd(3, is, dt, -9, 9);
            sc = CPU->scatter_add(d2.c, dim, gi.c, src2.c);
            sg = GPU->scatter_add(d2.g, dim, gi.g, src2.g);
            CHECK(sc == AQA_OK && sg == AQA_OK);
            compare("scatter_add", dst2.c, dst2.g, dt == AQA_F32 ? 1e-6 : dt == AQA_F64 ? 1e-14 : 0);
        }
    }
    /* an embedding-like index_add (many repeats) is bit-identical to the CPU and across runs */
    pair w = RND(AQA_F32, -1, 1, 1000, 64);
    pair ids = idx_pair(1, (int64_t[]){5000}, 50);
    pair g = RND(AQA_F32, -1, 1, 5000, 64);
    aqa_tensor *acc2 = aqa_clone(w.g);
    CHECK(CPU->index_add(w.c, 0, ids.c, g.c) == AQA_OK);
    CHECK(GPU->index_add(w.g, 0, ids.g, g.g) == AQA_OK);
    CHECK(GPU->index_add(acc2, 0, ids.g, g.g) == AQA_OK);
    compare("embedding index_add vs cpu (same order: exact)", w.c, w.g, 0);
    compare("embedding index_add run to run", w.g, acc2, 0);
    /* bad indices: an error naming the value, on both */
    pair bad = {aqa_full(AQA_SHAPE(3), 77, AQA_I64), NULL};
    bad.g = aqa_to_device(bad.c, DEV);
    pair xx = RND(AQA_F32, -1, 1, 10, 4);
    opair o = out_new(2, (int64_t[]){3, 4}, AQA_F32);
    CHECK(GPU->index_select(o.g, xx.g, 0, bad.g) == AQA_EINVAL);
    CHECK(strstr(aqa_last_error(), "77") != NULL);
    pair bi = {aqa_full(AQA_SHAPE(2, 4), -1, AQA_I64), NULL};
    bi.g = aqa_to_device(bi.c, DEV);
    CHECK(GPU->gather(o.g, xx.g, 0, bi.g) == AQA_EINVAL);
    CHECK(GPU->scatter_add(xx.g, 0, bi.g, xx.g) == AQA_EINVAL);
    CHECK(GPU->index_add(xx.g, 0, bad.g, o.g) == AQA_EINVAL);
    out_free(&o);
    aqa_scope_end();
}

/* ---- random ---------------------------------------------------------------------------------- */

static void test_random(void) {
    if (!have_gpu()) return;
    aqa_dtype dts[4] = {AQA_F32, AQA_F64, AQA_I64, AQA_BOOL};
    for (int kind = 0; kind < 3; kind++)
        for (int t = 0; t < 4; t++) {
            if (kind != 2 && t >= 2) continue;
            double a = kind == 2 ? -5 : 0.5, b = kind == 2 ? 1000 : 2.0;
            opair o = out_new(1, (int64_t[]){10007}, dts[t]);
            aqa_status sc = CPU->random(o.c, kind, a, b, 1234567, 99), sg = GPU->random(o.g, kind, a, b, 1234567, 99);
            char what[80];
            snprintf(what, sizeof what, "random kind %d %s", kind, aqa_dtype_name(dts[t]));
            finish(what, &o, sc, sg, kind == 1 ? 1e-7 : 0);
        }
    /* the public generator gives the same numbers on both devices */
    aqa_scope_begin();
    aqa_manual_seed(42);
    aqa_tensor *c = aqa_randn(AQA_SHAPE(333), AQA_F32, NULL);
    aqa_manual_seed(42);
    aqa_set_default_device(DEV);
    aqa_tensor *g = aqa_randn(AQA_SHAPE(333), AQA_F32, NULL);
    aqa_set_default_device(AQA_DEVICE_CPU);
    compare("aqa_randn cpu vs cuda", c, g, 1e-7);
    aqa_scope_end();
}

/* ---- memory ---------------------------------------------------------------------------------- */

static void test_memory(void) {
    if (!have_gpu()) return;
    aqa_cuda_mem_stats s0, s1, s2;
    CHECK(aqa_cuda_memory_stats(0, &s0) == AQA_OK);
    void *p = aqa__cuda_alloc(DEV, 3 << 20);
    CHECK(p != NULL);
    CHECK(aqa_cuda_memory_stats(0, &s1) == AQA_OK);
    CHECK(s1.in_use >= s0.in_use + (3 << 20));
    aqa__cuda_free(DEV, p, 3 << 20);
    void *q = aqa__cuda_alloc(DEV, 3 << 20); /* reused from the cache */
    CHECK(q == p);
    aqa__cuda_free(DEV, q, 3 << 20);
    CHECK(aqa_cuda_memory_stats(0, &s2) == AQA_OK);
    CHECK(s2.cache_hits > s1.cache_hits);
    CHECK(s2.cached >= (3 << 20));
    CHECK(aqa_cuda_empty_cache(0) == AQA_OK);
    CHECK(aqa_cuda_memory_stats(0, &s2) == AQA_OK);
    CHECK_EQ_INT(s2.cached, 0);
    /* out of memory: an error naming the request, not a crash */
    void *huge = aqa__cuda_alloc(DEV, (size_t)1 << 44); /* 16 TiB */
    CHECK(huge == NULL);
    CHECK(aqa_last_status() == AQA_ENOMEM);
    CHECK(strstr(aqa_last_error(), "out of memory") != NULL);
    CHECK(strstr(aqa_last_error(), "17592186044416") != NULL);
    printf("    OOM message: %.200s\n", aqa_last_error());
    /* host <-> device round trips, small and through the pinned staging buffers */
    int64_t sizes[3] = {1, 1000, 5 << 20};
    for (int k = 0; k < 3; k++) {
        float *h = malloc((size_t)sizes[k] * 4), *back = malloc((size_t)sizes[k] * 4);
        for (int64_t i = 0; i < sizes[k]; i++) h[i] = (float)(i * 0.5 - 3);
        void *d = aqa__cuda_alloc(DEV, (size_t)sizes[k] * 4);
        CHECK(GPU->from_host(d, h, (size_t)sizes[k] * 4, DEV) == AQA_OK);
        memset(back, 0, (size_t)sizes[k] * 4);
        CHECK(GPU->to_host(back, d, (size_t)sizes[k] * 4, DEV) == AQA_OK);
        CHECK_MSG(memcmp(h, back, (size_t)sizes[k] * 4) == 0, "round trip of %lld floats differs", (long long)sizes[k]);
        aqa__cuda_free(DEV, d, (size_t)sizes[k] * 4);
        free(h);
        free(back);
    }
    char buf[512];
    printf("    %s\n", aqa_cuda_version_string(buf, sizeof buf));
}

/* ---- end to end: a small network through the public ops, forward and backward ------------------ */

static void net_run(aqa_device dev, const double *xv, const double *w1v, const double *w2v, double *loss,
                    double *gw1, double *gw2) {
    aqa_scope_begin();
    aqa_tensor *x = aqa_to_device(aqa_from_data(xv, AQA_SHAPE(8, 16), AQA_F64), dev);
    aqa_tensor *w1 = aqa_to_device(aqa_from_data(w1v, AQA_SHAPE(16, 32), AQA_F64), dev);
    aqa_tensor *w2 = aqa_to_device(aqa_from_data(w2v, AQA_SHAPE(32, 10), AQA_F64), dev);
    w1 = aqa_requires_grad(aqa_detach(w1), true);
    w2 = aqa_requires_grad(aqa_detach(w2), true);
    aqa_tensor *h = aqa_gelu(aqa_matmul(x, w1));
    aqa_tensor *z = aqa_log_softmax(aqa_matmul(aqa_tanh(h), w2), 1);
    aqa_tensor *l = aqa_neg(aqa_mean_all(aqa_mul(z, aqa_sigmoid(x->ndim ? aqa_slice(x, 1, 0, 10, 1) : x))));
    if (!l || aqa_backward(l, NULL, false) != AQA_OK) {
        printf("    net on %s failed: %s\n", dev.kind == AQA_CPU ? "cpu" : "cuda", aqa_last_error());
        *loss = NAN;
        aqa_scope_end();
        return;
    }
    *loss = aqa_item(l);
    aqa_copy_to_host(w1->grad, gw1, AQA_F64);
    aqa_copy_to_host(w2->grad, gw2, AQA_F64);
    aqa_scope_end();
}

static void test_network(void) {
    if (!have_gpu()) return;
    double xv[8 * 16], w1[16 * 32], w2[32 * 10], g1c[16 * 32], g2c[32 * 10], g1g[16 * 32], g2g[32 * 10];
    for (int i = 0; i < 8 * 16; i++) xv[i] = urand() * 2 - 1;
    for (int i = 0; i < 16 * 32; i++) w1[i] = (urand() * 2 - 1) * 0.3;
    for (int i = 0; i < 32 * 10; i++) w2[i] = (urand() * 2 - 1) * 0.3;
    double lc, lg;
    int64_t before = aqa_live_tensors();
    net_run(AQA_DEVICE_CPU, xv, w1, w2, &lc, g1c, g2c);
    net_run(DEV, xv, w1, w2, &lg, g1g, g2g);
    CHECK_NEAR(lg, lc, 1e-12 * fabs(lc) + 1e-14);
    double num = 0, den = 0;
    for (int i = 0; i < 16 * 32; i++) num += (g1c[i] - g1g[i]) * (g1c[i] - g1g[i]), den += g1c[i] * g1c[i];
    for (int i = 0; i < 32 * 10; i++) num += (g2c[i] - g2g[i]) * (g2c[i] - g2g[i]), den += g2c[i] * g2c[i];
    CHECK_MSG(sqrt(num / den) < 1e-11, "gradients differ: normalised error %.3g", sqrt(num / den));
    CHECK_EQ_INT(aqa_live_tensors(), before);
}

/* ---- public ops, forward and backward, CPU vs CUDA ---------------------------------------------- */

/* Integer tensors an op needs (indices, labels), made on `dev` from fixed values. */
static aqa_tensor *ints(aqa_device dev, int nd, const int64_t *shape, const int64_t *v) {
    return aqa_to_device(aqa_from_data(v, nd, shape, AQA_I64), dev);
}

typedef aqa_tensor *(*pub_fn)(aqa_tensor *const *in, aqa_device dev);
static aqa_tensor *p_add(aqa_tensor *const *in, aqa_device d) { (void)d; return aqa_add(in[0], in[1]); }
static aqa_tensor *p_arith(aqa_tensor *const *in, aqa_device d) {
    (void)d;
    return aqa_div(aqa_mul(aqa_sub(in[0], in[1]), in[0]), aqa_add_scalar(in[1], 0.5));
}
static aqa_tensor *p_pow_minmax(aqa_tensor *const *in, aqa_device d) {
    (void)d;
    return aqa_add(aqa_pow(in[0], in[1]), aqa_mul(aqa_maximum(in[0], in[1]), aqa_minimum(in[0], in[1])));
}
static aqa_tensor *p_unary1(aqa_tensor *const *in, aqa_device d) {
    (void)d;
    aqa_tensor *x = in[0];
    return aqa_add(aqa_add(aqa_exp(aqa_tanh(x)), aqa_log(x)), aqa_add(aqa_sqrt(x), aqa_rsqrt(x)));
}
static aqa_tensor *p_unary2(aqa_tensor *const *in, aqa_device d) {
    (void)d;
    aqa_tensor *x = aqa_add_scalar(in[0], -1.0);
    aqa_tensor *a = aqa_add(aqa_gelu(x), aqa_gelu_tanh(x)), *b = aqa_add(aqa_quick_gelu(x), aqa_softplus(x));
    aqa_tensor *c = aqa_add(aqa_sigmoid(x), aqa_relu(x)), *e = aqa_add(aqa_abs(x), aqa_square(x));
    return aqa_add(aqa_add(a, b), aqa_add(aqa_add(c, e), aqa_add(aqa_log1p(in[0]), aqa_clamp(x, -0.3, 0.4))));
}
static aqa_tensor *p_reduce(aqa_tensor *const *in, aqa_device d) {
    (void)d;
    aqa_tensor *x = in[0];
    aqa_tensor *s = aqa_sum(x, 2, (int[]){0, 2}, true);                 /* [1, 5, 1] */
    aqa_tensor *v = aqa_var(x, 1, (int[]){1}, 1, true);                 /* [4, 1, 6] */
    aqa_tensor *m = aqa_max_dim(x, 2, true, NULL);                      /* [4, 5, 1] */
    aqa_tensor *l = aqa_logsumexp(x, 1, (int[]){0}, true);              /* [1, 5, 6] */
    aqa_tensor *st = aqa_std(x, 2, (int[]){0, 1}, 0, true);             /* [1, 1, 6] */
    return aqa_add(aqa_add(aqa_add(s, v), aqa_add(m, l)), aqa_add(st, aqa_mean_all(x)));
}
static aqa_tensor *p_softmax(aqa_tensor *const *in, aqa_device d) {
    (void)d;
    return aqa_add(aqa_softmax(in[0], 1), aqa_transpose(aqa_log_softmax(aqa_transpose(in[0], 0, 2), 2), 0, 2));
}
static aqa_tensor *p_matmul(aqa_tensor *const *in, aqa_device d) {
    (void)d;
    /* [2, 3, 4, 5] @ [5, 6] and a transposed batched operand */
    aqa_tensor *y = aqa_matmul(in[0], in[1]);
    return aqa_matmul(aqa_transpose(y, 2, 3), in[0]); /* [2,3,6,4] @ [2,3,4,5] */
}
static aqa_tensor *p_index(aqa_tensor *const *in, aqa_device d) {
    aqa_tensor *x = in[0]; /* [6, 5] */
    aqa_tensor *sel = aqa_index_select(x, 0, ints(d, AQA_SHAPE(4), (const int64_t[]){4, 0, 4, 2}));                   /* [4, 5] */
    aqa_tensor *g = aqa_gather(x, 1, ints(d, AQA_SHAPE(4, 2), (const int64_t[]){1, 1, 0, 4, 3, 2, 2, 2}));           /* [4, 2] */
    aqa_tensor *e = aqa_embedding(x, ints(d, AQA_SHAPE(2, 3), (const int64_t[]){5, 5, 1, 0, 3, 3}));                 /* [2, 3, 5] */
    aqa_tensor *cat = aqa_cat((aqa_tensor *[]){sel, aqa_narrow(x, 0, 1, 4)}, 2, 1);         /* [4, 10] */
    aqa_tensor *st = aqa_stack((aqa_tensor *[]){sel, sel}, 2, 0);                           /* [2, 4, 5] */
    aqa_tensor *pd = aqa_pad(sel, 2, (int64_t[]){1, 2}, 0.5);                               /* [4, 8] */
    aqa_tensor *r = aqa_add(aqa_sum_all(aqa_mul(e, e)), aqa_sum_all(aqa_mul(st, st)));
    r = aqa_add(r, aqa_add(aqa_sum_all(aqa_mul(cat, cat)), aqa_add(aqa_sum_all(aqa_mul(pd, pd)), aqa_sum_all(aqa_mul(g, g)))));
    return r;
}
static aqa_tensor *p_where(aqa_tensor *const *in, aqa_device d) {
    (void)d;
    aqa_tensor *c = aqa_gt(in[0], in[1]);
    return aqa_add(aqa_where(c, in[0], aqa_mul(in[1], in[1])), aqa_masked_fill(in[1], aqa_lt_scalar(in[0], 0.7), -2.0));
}
static aqa_tensor *p_layer_norm(aqa_tensor *const *in, aqa_device d) {
    (void)d;
    return aqa_layer_norm(in[0], 1, (int64_t[]){8}, in[1], in[2], 1e-5);
}
static aqa_tensor *p_linear(aqa_tensor *const *in, aqa_device d) {
    (void)d;
    return aqa_linear(in[0], in[1], in[2]);
}
static aqa_tensor *p_cross_entropy(aqa_tensor *const *in, aqa_device d) {
    return aqa_cross_entropy(in[0], ints(d, AQA_SHAPE(6), (const int64_t[]){0, 4, 2, 2, 1, 3}), NULL);
}
static aqa_tensor *p_attention(aqa_tensor *const *in, aqa_device d) {
    (void)d;
    return aqa_scaled_dot_product_attention(in[0], in[1], in[2], NULL, 0.0, true, 0.0);
}
static aqa_tensor *p_views(aqa_tensor *const *in, aqa_device d) {
    (void)d;
    aqa_tensor *x = aqa_permute(in[0], (int[]){2, 0, 1});
    aqa_tensor *y = aqa_reshape(x, AQA_SHAPE(6, 20));
    return aqa_mul(aqa_contiguous(y), aqa_unsqueeze(aqa_slice(aqa_flatten(in[0], 0, 2), 0, 0, 120, 6), 0));
}

static aqa_tensor *p_losses(aqa_tensor *const *in, aqa_device d) {
    (void)d;
    aqa_tensor *p = aqa_sigmoid(in[1]);
    aqa_tensor *a = aqa_add(aqa_mse_loss(in[0], in[1], AQA_REDUCTION_MEAN), aqa_l1_loss(in[0], in[1], AQA_REDUCTION_SUM));
    aqa_tensor *b = aqa_bce_with_logits(in[0], p, NULL, NULL, AQA_REDUCTION_MEAN);
    aqa_tensor *c = aqa_kl_div(aqa_log_softmax(in[0], 1), aqa_softmax(in[1], 1), AQA_REDUCTION_SUM, false);
    return aqa_add(aqa_add(a, b), c);
}
static aqa_tensor *p_dropout(aqa_tensor *const *in, aqa_device d) {
    (void)d;
    aqa_manual_seed(77); /* the same mask on both devices (same Philox stream) */
    return aqa_dropout(in[0], 0.3, true, NULL);
}
static aqa_tensor *p_batch_norm(aqa_tensor *const *in, aqa_device d) {
    (void)d;
    return aqa_batch_norm(in[0], NULL, NULL, in[1], in[2], true, 0.1, 1e-5);
}
static aqa_tensor *p_pool(aqa_tensor *const *in, aqa_device d) {
    (void)d;
    aqa_tensor *m = aqa_max_pool2d(in[0], 2, 2, 0, 1, false);    /* [2, 3, 3, 4] */
    aqa_tensor *a = aqa_avg_pool2d(in[0], 3, 1, 1, false, true); /* [2, 3, 6, 8] */
    aqa_tensor *g = aqa_adaptive_avg_pool(in[0], 2, (int64_t[]){1, 1});
    return aqa_add(aqa_add(aqa_sum_all(m), aqa_sum_all(aqa_mul(a, a))), aqa_sum_all(g));
}
static aqa_tensor *p_activation(aqa_tensor *const *in, aqa_device d) {
    (void)d;
    return aqa_add(aqa_activation(in[0], AQA_ACT_GELU), aqa_activation(in[0], AQA_ACT_QUICK_GELU));
}

typedef struct pub_case {
    const char *name;   /* what */
    pub_fn fn;          /* the op */
    int nin;            /* inputs (all differentiable, float64) */
    int nd[3];          /* their ranks */
    int64_t shape[3][4];/* and shapes */
    double lo, hi;      /* value range */
} pub_case;

static const pub_case pub_cases[] = {
    {"add broadcast", p_add, 2, {2, 1}, {{4, 5}, {5}}, -2, 2},
    {"sub mul div", p_arith, 2, {3, 3}, {{3, 1, 6}, {1, 4, 6}}, 0.2, 2},
    {"pow maximum minimum", p_pow_minmax, 2, {2, 2}, {{5, 7}, {5, 7}}, 0.2, 2},
    {"exp tanh log sqrt rsqrt", p_unary1, 1, {2}, {{6, 9}}, 0.2, 2},
    {"gelu family, softplus, sigmoid, relu, abs, square, log1p, clamp", p_unary2, 1, {2}, {{6, 9}}, 0.05, 2},
    {"sum var max_dim logsumexp std mean", p_reduce, 1, {3}, {{4, 5, 6}}, -2, 2},
    {"softmax log_softmax", p_softmax, 1, {3}, {{3, 4, 5}}, -3, 3},
    {"matmul", p_matmul, 2, {4, 2}, {{2, 3, 4, 5}, {5, 6}}, -1, 1},
    {"index_select gather embedding cat stack pad", p_index, 1, {2}, {{6, 5}}, -1, 1},
    {"where masked_fill", p_where, 2, {2, 2}, {{5, 6}, {5, 6}}, 0.1, 1.5},
    {"layer_norm", p_layer_norm, 3, {3, 1, 1}, {{4, 6, 8}, {8}, {8}}, -2, 2},
    {"linear", p_linear, 3, {3, 2, 1}, {{3, 5, 7}, {4, 7}, {4}}, -1, 1},
    {"scaled_dot_product_attention (causal)", p_attention, 3, {4, 4, 4}, {{2, 3, 4, 8}, {2, 3, 4, 8}, {2, 3, 4, 8}}, -1, 1},
    {"permute reshape flatten slice unsqueeze", p_views, 1, {3}, {{4, 5, 6}}, -1, 1},
    {"dropout (training)", p_dropout, 1, {2}, {{8, 9}}, -1, 1},
    {"activation", p_activation, 1, {2}, {{4, 9}}, -3, 3},
};

/* nn functions that must also run on the GPU (composed of backend ops or with CUDA kernels of
 * their own); kept apart so that test_public_ops stays a check of the backend itself. */
static const pub_case nn_cases[] = {
    {"cross_entropy", p_cross_entropy, 1, {2}, {{6, 5}}, -2, 2},
    {"mse l1 bce_with_logits kl_div", p_losses, 2, {2, 2}, {{6, 5}, {6, 5}}, -2, 2},
    {"batch_norm (training)", p_batch_norm, 3, {3, 1, 1}, {{4, 3, 5}, {3}, {3}}, -2, 2},
    {"max/avg/adaptive pooling", p_pool, 1, {4}, {{2, 3, 6, 8}}, -2, 2},
};

/* Runs one case on dev; returns the output values and the inputs' gradients (malloc'd). */
static bool pub_run(const pub_case *c, aqa_device dev, double *const *vals, double **out, int64_t *nout,
                    double **grads) {
    aqa_scope_begin();
    aqa_tensor *in[3];
    for (int i = 0; i < c->nin; i++) {
        aqa_tensor *h = aqa_from_data(vals[i], c->nd[i], c->shape[i], AQA_F64);
        in[i] = aqa_requires_grad(aqa_detach(aqa_to_device(h, dev)), true);
    }
    aqa_tensor *y = c->fn(in, dev);
    bool ok = y != NULL;
    if (ok) {
        int64_t n = aqa_numel(y);
        double *w = malloc((size_t)(n ? n : 1) * sizeof(double));
        for (int64_t i = 0; i < n; i++) w[i] = 0.5 + 0.01 * (double)(i % 97); /* same on both devices */
        aqa_tensor *wt = aqa_to_device(aqa_from_data(w, y->ndim, y->shape, AQA_F64), dev);
        free(w);
        aqa_tensor *loss = aqa_sum_all(aqa_mul(y, wt));
        ok = loss && aqa_backward(loss, NULL, false) == AQA_OK;
        *nout = n;
        *out = malloc((size_t)(n ? n : 1) * sizeof(double));
        ok = ok && aqa_copy_to_host(y, *out, AQA_F64) == AQA_OK;
        for (int i = 0; ok && i < c->nin; i++) {
            grads[i] = calloc((size_t)aqa_numel(in[i]), sizeof(double));
            if (in[i]->grad) ok = aqa_copy_to_host(in[i]->grad, grads[i], AQA_F64) == AQA_OK;
        }
    }
    if (!ok) printf("    %s on %s: %s\n", c->name, dev.kind == AQA_CPU ? "cpu" : "cuda", aqa_last_error());
    aqa_scope_end();
    return ok;
}


static void run_pub_cases(const pub_case *cases, size_t ncases) {
    for (size_t k = 0; k < ncases; k++) {
        const pub_case *c = &cases[k];
        double *vals[3] = {NULL, NULL, NULL};
        for (int i = 0; i < c->nin; i++) {
            int64_t n = aqa__shape_numel(c->nd[i], c->shape[i]);
            vals[i] = malloc((size_t)n * sizeof(double));
            for (int64_t j = 0; j < n; j++) vals[i][j] = c->lo + (c->hi - c->lo) * urand();
        }
        double *oc = NULL, *og = NULL, *gc[3] = {NULL, NULL, NULL}, *gg[3] = {NULL, NULL, NULL};
        int64_t nc = 0, ng = 0;
        bool okc = pub_run(c, AQA_DEVICE_CPU, vals, &oc, &nc, gc);
        bool okg = pub_run(c, DEV, vals, &og, &ng, gg);
        CHECK_MSG(okc && okg, "%s: failed (cpu %d, cuda %d)", c->name, okc, okg);
        if (okc && okg) {
            double e = nc == ng ? rel_err(oc, og, nc) : INFINITY;
            CHECK_MSG(e < 1e-10, "%s: forward normalised error %.3g", c->name, e);
            for (int i = 0; i < c->nin; i++) {
                e = rel_err(gc[i], gg[i], aqa__shape_numel(c->nd[i], c->shape[i]));
                CHECK_MSG(e < 1e-10, "%s: gradient of input %d: normalised error %.3g", c->name, i, e);
            }
        }
        free(oc);
        free(og);
        for (int i = 0; i < 3; i++) {
            free(vals[i]);
            free(gc[i]);
            free(gg[i]);
        }
    }
}

static void test_public_ops(void) {
    if (!have_gpu()) return;
    run_pub_cases(pub_cases, sizeof pub_cases / sizeof pub_cases[0]);
}

static void test_nn_ops(void) {
    if (!have_gpu()) return;
    run_pub_cases(nn_cases, sizeof nn_cases / sizeof nn_cases[0]);
}

/* Compiles every program for this device in parallel (fills the kernel cache quickly). */
static void *warm(void *arg) {
    int *job = arg, arch = job[0], w = job[1], nw = job[2], ptx = job[3];
    const char *const *names = aqa__cuda_program_names();
    int count = 0;
    while (names[count]) count++;
    for (int i = w; i < count; i += nw) {
        char *src = aqa__cuda_program_source(names[i]), *bin = NULL;
        size_t n = 0;
        if (src) aqa__nvrtc_compile(names[i], src, arch, ptx, &bin, &n);
        free(bin);
        free(src);
    }
    return NULL;
}

int main(void) {
    cuda_test_init("cuda ops");
    if (gpu_ok) {
        GPU = aqa_backend_for(DEV);
        {
            aqa_cuda_dev *d = aqa__cuda_dev(0);
            bool ptx;
            int arch = aqa__nvrtc_arch_for(d->cc, &ptx);
            enum { NW = 8 };
            pthread_t th[NW];
            int jobs[NW][4];
            for (int w = 0; w < NW; w++) {
                jobs[w][0] = arch;
                jobs[w][3] = ptx;
                jobs[w][1] = w;
                jobs[w][2] = NW;
                pthread_create(&th[w], NULL, warm, jobs[w]);
            }
            for (int w = 0; w < NW; w++) pthread_join(th[w], NULL);
        }
    }
    /* AQA_TEST_ONLY=name runs one case (handy under the emulator, tensor/cuda/emu/run.sh) */
#define RUN_SEL(fn) \
    do { \
        const char *only_ = getenv("AQA_TEST_ONLY"); \
        if (!only_ || !strcmp(only_, #fn)) RUN(fn); \
    } while (0)
    RUN_SEL(test_copy_fill);
    RUN_SEL(test_unary);
    RUN_SEL(test_binary);
    RUN_SEL(test_reduce);
    RUN_SEL(test_reduce_deterministic);
    RUN_SEL(test_softmax);
    RUN_SEL(test_matmul);
    RUN_SEL(test_index);
    RUN_SEL(test_random);
    RUN_SEL(test_memory);
    RUN_SEL(test_network);
    RUN_SEL(test_public_ops);
    RUN_SEL(test_nn_ops);
    return test_finish();
}
