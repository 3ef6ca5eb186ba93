/* norm_cuda.c: host side of the fused CUDA layer norm and batch norm (kernels/norm.cu): picks
 * the launch shapes and the split of the long reductions, and launches.  Deterministic: the
 * splits depend only on the shapes (AQA_CUDA_SPLIT_SMS, not the device's multiprocessor count),
 * so every GPU model gives the same bits. */
#include <stdio.h>

#include "nn/nn_cuda-impl.h"
#include "tensor/cuda/cuda-impl.h"

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }
static void *dp(const aqa_tensor *t) { return t ? aqa__ptr(t) : NULL; }

/* The device of t (initialised) and kernel `kname` of program norm_<dtype>. */
static aqa_status norm_kernel(const aqa_tensor *t, const char *kname, aqa_cuda_dev **d, int *dev, CUfunction *f) {
    if (t->dtype != AQA_F32 && t->dtype != AQA_F64)
        return aqa_fail(AQA_EINVAL, "cuda %s: dtype %s not supported (float32/float64)", kname,
                        aqa_dtype_name(t->dtype));
    *dev = t->storage->device.index;
    if (!(*d = aqa__cuda_dev(*dev))) return aqa_last_status();
    char program[32];
    snprintf(program, sizeof program, "norm_%s", aqa__cuda_dtag(t->dtype));
    return aqa__cuda_kernel(*d, *dev, program, kname, f);
}

/* ---- layer norm ------------------------------------------------------------------------------ */

aqa_status aqa__cuda_layer_norm_forward(int64_t M, int64_t D, const aqa_tensor *x, const aqa_tensor *w,
                                        const aqa_tensor *b, double eps, aqa_tensor *y, aqa_tensor *mean,
                                        aqa_tensor *rstd) {
    if (M == 0 || D == 0) return AQA_OK;
    int G = D > 1024 ? 256 : 32; /* a warp per row up to 32 elements a lane */
    char kname[16];
    if (D <= 256 * 32) { /* the row in registers: V elements a lane */
        int V = 1;
        if (G == 32) while (V * 32 < D) V *= 2;
        else for (V = 8; V * 256 < D;) V *= 2;
        snprintf(kname, sizeof kname, "ln_fwd_%c%d", G == 32 ? 'w' : 'b', V);
    } else {
        snprintf(kname, sizeof kname, "ln_fwd%d", G);
    }
    aqa_cuda_dev *d;
    int dev;
    CUfunction f;
    aqa_status st = norm_kernel(x, kname, &d, &dev, &f);
    if (st) return st;
    void *py = dp(y), *pm = dp(mean), *pr = dp(rstd), *px = dp(x), *pw = dp(w), *pb = dp(b);
    void *args[] = {&py, &pm, &pr, &px, &pw, &pb, &M, &D, &eps};
    return aqa__cuda_launch(d, f, kname, (unsigned)cdiv(M, 256 / G), 1, 256, 0, args);
}

aqa_status aqa__cuda_layer_norm_backward(int64_t M, int64_t D, const aqa_tensor *g, const aqa_tensor *x,
                                         const aqa_tensor *mean, const aqa_tensor *rstd, const aqa_tensor *w,
                                         aqa_tensor *gx, aqa_tensor *gw, aqa_tensor *gb) {
    aqa_cuda_dev *d;
    int dev;
    CUfunction f;
    aqa_status st;
    void *pg = dp(g), *px = dp(x), *pm = dp(mean), *pr = dp(rstd), *pw = dp(w);
    if (gx && M > 0 && D > 0) {
        int G = D > 1024 ? 256 : 32;
        char kname[16];
        if (D <= 256 * 32) { /* x and g of the row in registers */
            int V = 1;
            if (G == 32) while (V * 32 < D) V *= 2;
            else for (V = 8; V * 256 < D;) V *= 2;
            snprintf(kname, sizeof kname, "ln_bwd_%c%d", G == 32 ? 'w' : 'b', V);
        } else {
            snprintf(kname, sizeof kname, "ln_bwd%d", G);
        }
        if ((st = norm_kernel(x, kname, &d, &dev, &f))) return st;
        void *pgx = dp(gx);
        void *args[] = {&pgx, &pg, &px, &pm, &pr, &pw, &M, &D};
        if ((st = aqa__cuda_launch(d, f, kname, (unsigned)cdiv(M, 256 / G), 1, 256, 0, args))) return st;
    }
    if ((!gw && !gb) || D == 0) return AQA_OK;
    if ((st = norm_kernel(x, "ln_colpart", &d, &dev, &f))) return st;
    /* chunks of rows: enough blocks to fill the device, at least 16 rows a chunk */
    int64_t cblocks = cdiv(D, 256);
    int64_t nchunk = clamp64(cdiv(AQA_CUDA_SPLIT_SMS * 8, cblocks), 1, clamp64(cdiv(M, 16), 1, 1024));
    int64_t chunk = M > 0 ? cdiv(M, nchunk) : 1;
    nchunk = M > 0 ? cdiv(M, chunk) : 1;
    size_t part_bytes = (size_t)nchunk * (size_t)D * sizeof(double);
    size_t bytes = part_bytes * (size_t)((gw != NULL) + (gb != NULL));
    char *scratch = aqa__cuda_scratch(dev, bytes);
    if (!scratch) return aqa_last_status();
    void *ppw = gw ? scratch : NULL, *ppb = gb ? scratch + (gw ? part_bytes : 0) : NULL;
    void *args[] = {&ppw, &ppb, &pg, &px, &pm, &pr, &M, &D, &chunk};
    if (M > 0) st = aqa__cuda_launch(d, f, "ln_colpart", (unsigned)cblocks, (unsigned)nchunk, 256, 0, args);
    else { /* no rows: zero partials */
        st = aqa__cu.MemsetD8Async((CUdeviceptr)(uintptr_t)scratch, 0, bytes, d->stream) == CUDA_SUCCESS
                 ? AQA_OK : aqa_fail(AQA_EDEVICE, "cuda layer_norm backward: cuMemsetD8Async failed");
    }
    if (st == AQA_OK) st = norm_kernel(x, "ln_colfin", &d, &dev, &f);
    if (st == AQA_OK) {
        void *pgw = dp(gw), *pgb = dp(gb);
        int nc = (int)nchunk;
        void *fargs[] = {&pgw, &pgb, &ppw, &ppb, &D, &nc};
        st = aqa__cuda_launch(d, f, "ln_colfin", (unsigned)cblocks, 1, 256, 0, fargs);
    }
    aqa__cuda_scratch_free(dev, scratch, bytes); /* stream order keeps it alive for the kernels */
    return st;
}

/* ---- batch norm ------------------------------------------------------------------------------ */

/* Splits of each channel's n * s elements: enough blocks to fill the device, at least 4096
 * elements a split. */
static int bn_splits(const aqa_cuda_dev *d, int64_t c, int64_t m, int64_t *chunk) {
    int64_t nsplit = clamp64(cdiv(AQA_CUDA_SPLIT_SMS * 8, c), 1, clamp64(cdiv(m, 4096), 1, 1024));
    *chunk = cdiv(m, nsplit);
    return (int)cdiv(m, *chunk);
}

aqa_status aqa__cuda_batch_norm_forward(int64_t n, int64_t c, int64_t s, const aqa_tensor *x,
                                        const aqa_tensor *weight, const aqa_tensor *bias, bool training,
                                        const aqa_tensor *run_mean, const aqa_tensor *run_var, double eps,
                                        aqa_tensor *y, aqa_tensor *mean, aqa_tensor *var, aqa_tensor *invstd) {
    if (c == 0) return AQA_OK;
    if (training && n * s == 0) return aqa_fail(AQA_EINVAL, "cuda batch_norm: no values per channel");
    aqa_cuda_dev *d;
    int dev;
    CUfunction f;
    aqa_status st = norm_kernel(x, "bn_fin", &d, &dev, &f);
    if (st) return st;
    int64_t m = n * s, chunk = 1;
    int nsplit = training ? bn_splits(d, c, m, &chunk) : 1;
    size_t coef_bytes = (size_t)c * 2 * sizeof(double), part_bytes = training ? (size_t)c * (size_t)nsplit * 2 * sizeof(double) : 0;
    char *scratch = aqa__cuda_scratch(dev, coef_bytes + part_bytes);
    if (!scratch) return aqa_last_status();
    void *coef = scratch, *part = scratch + coef_bytes;
    void *px = dp(x), *pw = dp(weight), *pb = dp(bias), *prm = dp(run_mean), *prv = dp(run_var);
    void *pmean = dp(mean), *pvar = dp(var), *pis = dp(invstd), *py = dp(y);
    int tr = training ? 1 : 0;
    if (training) {
        CUfunction fs;
        st = norm_kernel(x, "bn_stats", &d, &dev, &fs);
        void *args[] = {&part, &px, &n, &c, &s, &chunk};
        if (st == AQA_OK) st = aqa__cuda_launch(d, fs, "bn_stats", (unsigned)c, (unsigned)nsplit, 256, 0, args);
    }
    if (st == AQA_OK) {
        void *args[] = {&coef, &part, &nsplit, &px, &n, &c, &s, &pw, &pb, &tr, &prm, &prv, &eps, &pmean, &pvar, &pis};
        st = aqa__cuda_launch(d, f, "bn_fin", (unsigned)cdiv(c, 256), 1, 256, 0, args);
    }
    int64_t total = m * c;
    if (st == AQA_OK && total > 0) st = norm_kernel(x, "bn_apply", &d, &dev, &f);
    if (st == AQA_OK && total > 0) {
        void *args[] = {&py, &px, &coef, &total, &c, &s};
        st = aqa__cuda_launch(d, f, "bn_apply", aqa__cuda_grid(d, total, 256), 1, 256, 0, args);
    }
    aqa__cuda_scratch_free(dev, scratch, coef_bytes + part_bytes);
    return st;
}

aqa_status aqa__cuda_batch_norm_backward(int64_t n, int64_t c, int64_t s, const aqa_tensor *x, const aqa_tensor *gy,
                                         const aqa_tensor *mean, const aqa_tensor *invstd,
                                         const aqa_tensor *weight, bool training, aqa_tensor *gx,
                                         aqa_tensor *gw, aqa_tensor *gb) {
    if (c == 0) return AQA_OK;
    aqa_cuda_dev *d;
    int dev;
    CUfunction f;
    aqa_status st = norm_kernel(x, "bn_bpart", &d, &dev, &f);
    if (st) return st;
    int64_t m = n * s, chunk = 1;
    int nsplit = m > 0 ? bn_splits(d, c, m, &chunk) : 1;
    size_t coef_bytes = (size_t)c * 4 * sizeof(double), part_bytes = (size_t)c * (size_t)nsplit * 2 * sizeof(double);
    char *scratch = aqa__cuda_scratch(dev, coef_bytes + part_bytes);
    if (!scratch) return aqa_last_status();
    void *coef = scratch, *part = scratch + coef_bytes;
    void *px = dp(x), *pgy = dp(gy), *pm = dp(mean), *pis = dp(invstd), *pw = dp(weight);
    void *pgx = dp(gx), *pgw = dp(gw), *pgb = dp(gb);
    int tr = training ? 1 : 0;
    if (m > 0) {
        void *args[] = {&part, &px, &pgy, &pm, &n, &c, &s, &chunk};
        st = aqa__cuda_launch(d, f, "bn_bpart", (unsigned)c, (unsigned)nsplit, 256, 0, args);
    } else {
        st = aqa__cu.MemsetD8Async((CUdeviceptr)(uintptr_t)part, 0, part_bytes, d->stream) == CUDA_SUCCESS
                 ? AQA_OK : aqa_fail(AQA_EDEVICE, "cuda batch_norm backward: cuMemsetD8Async failed");
    }
    if (st == AQA_OK) st = norm_kernel(x, "bn_bfin", &d, &dev, &f);
    if (st == AQA_OK) {
        void *args[] = {&coef, &part, &nsplit, &pm, &pis, &pw, &tr, &n, &c, &s, &pgw, &pgb};
        st = aqa__cuda_launch(d, f, "bn_bfin", (unsigned)cdiv(c, 256), 1, 256, 0, args);
    }
    int64_t total = m * c;
    if (st == AQA_OK && gx && total > 0) st = norm_kernel(x, "bn_bapply", &d, &dev, &f);
    if (st == AQA_OK && gx && total > 0) {
        void *args[] = {&pgx, &px, &pgy, &coef, &tr, &total, &c, &s};
        st = aqa__cuda_launch(d, f, "bn_bapply", aqa__cuda_grid(d, total, 256), 1, 256, 0, args);
    }
    aqa__cuda_scratch_free(dev, scratch, coef_bytes + part_bytes);
    return st;
}
