/* cuda_reduce.c: the CUDA backend's reductions (sum, max, min with positions) and softmax /
 * log_softmax forward and backward.
 *
 * Reductions are deterministic: the work split depends only on the shapes (sized for
 * AQA_CUDA_SPLIT_SMS multiprocessors on every GPU, so every GPU model gives the same bits), each
 * output is combined by a fixed set of threads in a fixed order, and large reductions with few
 * outputs go through per-split partial results combined in a fixed order by a second kernel
 * (kernels/reduce.cu) — no atomics anywhere.  Softmax rows of the last dim up to 8192 long are
 * held in registers (x read once). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/cuda/cuda-impl.h"

/* Mirrors RGeo in kernels/reduce.cu. */
typedef struct rgeo {
    int32_t knd, rnd;
    int64_t ksize[AQA_MAX_DIMS], kx[AQA_MAX_DIMS], ko[AQA_MAX_DIMS], ki[AQA_MAX_DIMS];
    int64_t rsize[AQA_MAX_DIMS], rx[AQA_MAX_DIMS];
    int64_t nout, nred, chunk;
    int32_t nsplit, vec;
} rgeo;

/* Mirrors SGeo in kernels/softmax.cu. */
typedef struct sgeo {
    int32_t nd, pad;
    int64_t size[AQA_MAX_DIMS];
    int64_t st[3][AQA_MAX_DIMS];
    int64_t dst[3];
    int64_t n, rows;
} sgeo;

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* Merges neighbouring dims that step uniformly in all `nops` stride arrays. */
static int merge_dims(int nd, int64_t *size, int64_t **st, int nops) {
    int w = 0;
    for (int d = 0; d < nd; d++) {
        if (w > 0) {
            bool ok = true;
            for (int o = 0; o < nops; o++)
                if (st[o][w - 1] != st[o][d] * size[d]) ok = false;
            if (ok) {
                size[w - 1] *= size[d];
                for (int o = 0; o < nops; o++) st[o][w - 1] = st[o][d];
                continue;
            }
        }
        size[w] = size[d];
        for (int o = 0; o < nops; o++) st[o][w] = st[o][d];
        w++;
    }
    return w;
}

aqa_status aqa__cuda_reduce(aqa_reduce_op op, aqa_tensor *out, aqa_tensor *idx, const aqa_tensor *x,
                            uint32_t dim_mask) {
    if ((int)op < 0 || op >= AQA_RED_COUNT) return aqa_fail(AQA_EINVAL, "cuda reduce: unknown op %d", (int)op);
    if (out->dtype != x->dtype)
        return aqa_fail(AQA_EINVAL, "cuda reduce: out dtype %s differs from input dtype %s",
                        aqa_dtype_name(out->dtype), aqa_dtype_name(x->dtype));
    if (op == AQA_RED_SUM && x->dtype == AQA_BOOL)
        return aqa_fail(AQA_EINVAL, "cuda reduce: sum of bool must be computed as int64");
    if (out->ndim != x->ndim || (idx && (idx->ndim != x->ndim || idx->dtype != AQA_I64)))
        return aqa_fail(AQA_EINVAL, "cuda reduce: out/idx must have x's rank (keepdim form)");
    for (int d = 0; d < x->ndim; d++) {
        int64_t want = (dim_mask >> d) & 1u ? 1 : x->shape[d];
        if (out->shape[d] != want || (idx && idx->shape[d] != want))
            return aqa_fail(AQA_EINVAL, "cuda reduce: out shape mismatch at dim %d", d);
    }
    int64_t nout = aqa__shape_numel(out->ndim, out->shape);
    if (nout == 0) return AQA_OK;
    if (aqa_numel(x) == 0) {
        if (op != AQA_RED_SUM) return aqa_fail(AQA_EINVAL, "cuda reduce: max/min over an empty dimension");
        return aqa__cuda_fill(out, 0.0);
    }
    int dev = x->storage->device.index;
    aqa_cuda_dev *d = aqa__cuda_dev(dev);
    if (!d) return aqa_last_status();

    rgeo g;
    memset(&g, 0, sizeof g);
    int best_dim = -1;
    int64_t best_st = INT64_MAX;
    for (int k = 0; k < x->ndim; k++) {
        if (x->shape[k] <= 1) continue;
        int64_t st = x->stride[k] < 0 ? -x->stride[k] : x->stride[k];
        bool red = (dim_mask >> k) & 1u;
        if (st < best_st || (st == best_st && red)) {
            best_st = st;
            best_dim = k;
        }
        if (red) {
            g.rsize[g.rnd] = x->shape[k];
            g.rx[g.rnd++] = x->stride[k];
        } else {
            g.ksize[g.knd] = x->shape[k];
            g.kx[g.knd] = x->stride[k];
            g.ko[g.knd] = out->stride[k];
            g.ki[g.knd++] = idx ? idx->stride[k] : 0;
        }
    }
    bool row_mode = g.knd == 0 || (best_dim >= 0 && ((dim_mask >> best_dim) & 1u));
    int64_t *rst[1] = {g.rx};
    g.rnd = merge_dims(g.rnd, g.rsize, rst, 1);
    int64_t *kst[3] = {g.kx, g.ko, g.ki};
    g.knd = merge_dims(g.knd, g.ksize, kst, 3);
    if (g.rnd == 0) {
        g.rnd = 1;
        g.rsize[0] = 1;
        g.rx[0] = 1;
    }
    g.nout = nout;
    g.nred = aqa__shape_numel(g.rnd, g.rsize);
    int64_t sm = AQA_CUDA_SPLIT_SMS; /* not the device's count: the same bits on every GPU */
    int64_t nsplit = 1;
    if (row_mode) {
        if (nout < sm * 8 && g.nred > 4096) nsplit = min64(cdiv(g.nred, 2048), cdiv(sm * 8, nout));
    } else {
        if (nout < sm * 512 && g.nred > 64) nsplit = min64(cdiv(g.nred, 32), cdiv(sm * 512, nout));
    }
    if (nsplit > 1024) nsplit = 1024;
    if (nsplit < 1) nsplit = 1;
    g.chunk = cdiv(g.nred, nsplit);
    /* a float sum of a whole contiguous, 16-byte aligned tensor: float4 loads over chunks of a
     * multiple of 4 elements */
    if (op == AQA_RED_SUM && x->dtype == AQA_F32 && g.knd == 0 && g.rnd == 1 && g.rx[0] == 1 &&
        ((uintptr_t)aqa__ptr(x) & 15) == 0) {
        g.vec = 1;
        g.chunk = (g.chunk + 3) & ~(int64_t)3;
    }
    g.nsplit = (int32_t)cdiv(g.nred, g.chunk);

    const char *opname = op == AQA_RED_SUM ? "sum" : op == AQA_RED_MAX ? "max" : "min";
    char program[32], kname[48];
    snprintf(program, sizeof program, "reduce_%s", aqa__cuda_dtag(x->dtype));
    unsigned gx, bx = 256;
    if (row_mode) {
        int G = g.chunk >= 1024 ? 256 : 32; /* long runs: a whole block per output */
        snprintf(kname, sizeof kname, "reduce_row%d_%s", G, opname);
        gx = (unsigned)cdiv(nout, 256 / G);
    } else {
        snprintf(kname, sizeof kname, "reduce_col_%s", opname);
        gx = (unsigned)cdiv(nout, 256);
    }
    CUfunction f;
    aqa_status st = aqa__cuda_kernel(d, dev, program, kname, &f);
    if (st) return st;

    size_t es = aqa_dtype_size(x->dtype), np = (size_t)g.nsplit * (size_t)nout;
    size_t scratch_bytes = g.nsplit > 1 ? np * (8 + 8 + es) : 0;
    char *scratch = NULL;
    if (scratch_bytes && !(scratch = aqa__cuda_scratch(dev, scratch_bytes))) return aqa_last_status();
    void *psum = scratch, *ppos = scratch ? scratch + np * 8 : NULL, *pval = scratch ? scratch + np * 16 : NULL;
    void *xp = aqa__ptr(x), *op_p = aqa__ptr(out), *ip = idx ? aqa__ptr(idx) : NULL;
    void *args[] = {&xp, &op_p, &ip, &psum, &pval, &ppos, &g};
    st = aqa__cuda_launch(d, f, kname, gx, (unsigned)g.nsplit, bx, 0, args);
    if (st == AQA_OK && g.nsplit > 1) {
        /* few outputs with many splits (a full reduction): a block combines each output's splits
         * (one thread walking a thousand partials would take as long as the main pass) */
        bool wide = g.nsplit >= 8 && nout <= sm * 8;
        snprintf(kname, sizeof kname, "reduce_fin%s_%s", wide ? "256" : "", opname);
        st = aqa__cuda_kernel(d, dev, program, kname, &f);
        void *fargs[] = {&op_p, &ip, &psum, &pval, &ppos, &g};
        if (st == AQA_OK)
            st = aqa__cuda_launch(d, f, kname, (unsigned)(wide ? nout : cdiv(nout, 256)), 1, 256, 0, fargs);
    }
    /* stream order keeps the scratch alive for the kernels queued above */
    aqa__cuda_scratch_free(dev, scratch, scratch_bytes);
    return st;
}

/* Softmax forward (in2 NULL), backward (in2 = y), or with pre = true attention's fused forward
 * (in2 = the additive mask as a view of out's shape, or NULL; scale; causal). */
static aqa_status softmax_run(const char *what, aqa_tensor *out, const aqa_tensor *in1, const aqa_tensor *in2,
                              int dim, bool log, bool pre, double scale, bool causal) {
    const aqa_tensor *ops[3] = {out, in1, in2};
    int nops = in2 ? 3 : 2;
    if (out->dtype != AQA_F32 && out->dtype != AQA_F64)
        return aqa_fail(AQA_EINVAL, "%s: dtype %s is not floating point", what, aqa_dtype_name(out->dtype));
    for (int o = 1; o < nops; o++)
        if (ops[o]->dtype != out->dtype || !aqa_same_shape(ops[o], out))
            return aqa_fail(AQA_EINVAL, "%s: operands differ in shape or dtype", what);
    int nd = out->ndim;
    if (nd == 0) dim = 0;
    else if (dim < 0 || dim >= nd) return aqa_fail(AQA_EINVAL, "%s: dim %d out of range for %d dims", what, dim, nd);
    int64_t total = aqa__shape_numel(nd, out->shape);
    if (total == 0) return AQA_OK;
    int dev = out->storage->device.index;
    aqa_cuda_dev *d = aqa__cuda_dev(dev);
    if (!d) return aqa_last_status();
    sgeo g;
    memset(&g, 0, sizeof g);
    g.n = nd == 0 ? 1 : out->shape[dim];
    bool unit = true;
    for (int o = 0; o < nops; o++) {
        g.dst[o] = nd == 0 ? 1 : ops[o]->stride[dim];
        if (g.dst[o] != 1 && g.n > 1) unit = false;
    }
    for (int k = 0; k < nd; k++) {
        if (k == dim || out->shape[k] == 1) continue;
        g.size[g.nd] = out->shape[k];
        for (int o = 0; o < nops; o++) g.st[o][g.nd] = ops[o]->stride[k];
        g.nd++;
    }
    int64_t *sst[3] = {g.st[0], g.st[1], g.st[2]};
    g.nd = merge_dims(g.nd, g.size, sst, nops);
    g.rows = total / g.n;
    char program[32], kname[48];
    snprintf(program, sizeof program, "softmax_%s", aqa__cuda_dtag(out->dtype));
    const char *dir = pre ? "pre" : in2 ? "bwd" : "fwd";
    if (pre && !(unit && g.n <= 256 * 32))
        return aqa_fail(AQA_EINVAL, "%s: rows must be contiguous and at most 8192 long", what);
    unsigned gx;
    if (unit && g.n <= 256 * 32) {
        /* rows held in registers: a warp per row up to 1024 elements, else the block */
        int V = 1;
        while (V < 32 && V * 32 < g.n) V *= 2;
        bool warp = g.n <= 32 * 32;
        if (!warp) for (V = 8; V * 256 < g.n;) V *= 2;
        snprintf(kname, sizeof kname, "softmax_%s_%c%d", dir, warp ? 'w' : 'b', V);
        gx = (unsigned)cdiv(g.rows, warp ? 256 / 32 : 1);
    } else if (unit) {
        int G = g.n >= 1024 ? 256 : 32;
        snprintf(kname, sizeof kname, "softmax_%s_row%d", dir, G);
        gx = (unsigned)cdiv(g.rows, 256 / G);
    } else {
        snprintf(kname, sizeof kname, "softmax_%s_col", dir);
        gx = (unsigned)cdiv(g.rows, 256);
    }
    CUfunction f;
    aqa_status st = aqa__cuda_kernel(d, dev, program, kname, &f);
    if (st) return st;
    void *p0 = aqa__ptr(out), *p1 = aqa__ptr(in1), *p2 = in2 ? aqa__ptr(in2) : NULL;
    int logmode = log ? 1 : 0;
    if (pre) {
        int cz = causal ? 1 : 0;
        int64_t L = nd >= 2 ? out->shape[nd - 2] : 1;
        float s32 = (float)scale;
        void *ps = out->dtype == AQA_F32 ? (void *)&s32 : (void *)&scale;
        void *args[] = {&p0, &p1, &g, &p2, ps, &cz, &L};
        return aqa__cuda_launch(d, f, kname, gx, 1, 256, 0, args);
    }
    if (in2) {
        void *args[] = {&p0, &p1, &p2, &g, &logmode};
        return aqa__cuda_launch(d, f, kname, gx, 1, 256, 0, args);
    }
    void *args[] = {&p0, &p1, &g, &logmode};
    return aqa__cuda_launch(d, f, kname, gx, 1, 256, 0, args);
}

aqa_status aqa__cuda_softmax(aqa_tensor *out, const aqa_tensor *x, int dim, bool log) {
    return softmax_run(log ? "cuda log_softmax" : "cuda softmax", out, x, NULL, dim, log, false, 1.0, false);
}

aqa_status aqa__cuda_softmax_backward(aqa_tensor *grad_x, const aqa_tensor *grad_y, const aqa_tensor *y, int dim,
                                      bool log) {
    return softmax_run(log ? "cuda log_softmax backward" : "cuda softmax backward", grad_x, grad_y, y, dim, log, false,
                       1.0, false);
}

/* out = softmax(x * scale + mask, -inf above the diagonal when causal) over the last dim (the
 * softmax of attention, fused; declared in cuda-impl.h). */
aqa_status aqa__cuda_softmax_scaled_masked(aqa_tensor *out, const aqa_tensor *x, const aqa_tensor *mask, double scale,
                                           bool causal) {
    return softmax_run("cuda attention softmax", out, x, mask, x->ndim - 1, false, true, scale, causal);
}
