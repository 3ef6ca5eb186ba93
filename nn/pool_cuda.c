/* pool_cuda.c: host side of the CUDA pooling kernels (kernels/pool.cu): the geometry handed to
 * the kernels and the launches, with the aqa__cpu_*_pool_* contracts (nn_cpu-impl.h), except
 * that the backward functions write every element of gx themselves (no zeroing first). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn_cuda-impl.h"
#include "tensor/cuda/cuda-impl.h"

/* Mirrors PGeo in kernels/pool.cu. */
typedef struct pgeo {
    int64_t in[3], out[3], k[3], stride[3], pad[3], dil[3];
    int64_t planes, divisor_override;
    int32_t count_include_pad, pad_;
} pgeo;

static pgeo geo_of(const aqa_conv_geom *g, bool count_include_pad, int64_t divisor_override) {
    pgeo p;
    memset(&p, 0, sizeof p);
    for (int i = 0; i < 3; i++) {
        p.in[i] = g->in[i];
        p.out[i] = g->out[i];
        p.k[i] = g->k[i];
        p.stride[i] = g->stride[i];
        p.pad[i] = g->pad[i];
        p.dil[i] = g->dil[i];
    }
    p.planes = g->n * g->c_in;
    p.divisor_override = divisor_override;
    p.count_include_pad = count_include_pad;
    return p;
}

/* Index of the geometry in the argument list of kernel kname (after its pointers). */
static int n_args_before_geo(const char *kname) {
    return !strcmp(kname, "max_fwd") || !strcmp(kname, "max_bwd") ? 3 : 2;
}

/* Launches kernel kname of program pool_<dtype of t> (its 32-bit instance when the sizes allow)
 * over n items (grid-stride); the geometry is the last argument. */
static aqa_status launch(const char *kname, const aqa_tensor *t, int64_t n, void **args) {
    if (t->dtype != AQA_F32 && t->dtype != AQA_F64)
        return aqa_fail(AQA_EINVAL, "cuda pooling: dtype %s not supported (float32/float64)", aqa_dtype_name(t->dtype));
    if (n == 0) return AQA_OK;
    int dev = t->storage->device.index;
    aqa_cuda_dev *d = aqa__cuda_dev(dev);
    if (!d) return aqa_last_status();
    char program[32], kn[32];
    snprintf(program, sizeof program, "pool_%s", aqa__cuda_dtag(t->dtype));
    /* 32-bit index math when every index fits: the planes' elements, the padded extents and the
     * adaptive windows' products (i n, i < out) */
    const pgeo *p = args[n_args_before_geo(kname)];
    int64_t lim = 0x7fffffffll, in_total = p->planes, out_total = p->planes;
    bool small = true;
    for (int i = 0; i < 3; i++) {
        in_total *= p->in[i];
        out_total *= p->out[i];
        small = small && p->in[i] + 2 * p->pad[i] + p->k[i] * p->dil[i] + p->stride[i] < lim / 4 &&
                (p->in[i] + 1) * (p->out[i] + 1) < lim && p->out[i] * p->stride[i] < lim / 4;
    }
    /* the grid-stride loop's counter passes the total by up to one grid before it stops */
    unsigned grid = aqa__cuda_grid(d, n, 256);
    int64_t step = (int64_t)grid * 256;
    small = small && in_total < lim - step && out_total < lim - step && !getenv("AQA_POOL_INDEX64"); /* test hook */
    snprintf(kn, sizeof kn, "%s%s", kname, small ? "32" : "");
    CUfunction f;
    aqa_status st = aqa__cuda_kernel(d, dev, program, kn, &f);
    if (st) return st;
    return aqa__cuda_launch(d, f, kn, grid, 1, 256, 0, args);
}

aqa_status aqa__cuda_max_pool_forward(const aqa_conv_geom *g, const aqa_tensor *x, aqa_tensor *y, aqa_tensor *idx) {
    pgeo p = geo_of(g, false, 0);
    void *py = aqa__ptr(y), *pi = aqa__ptr(idx), *px = aqa__ptr(x);
    void *args[] = {&py, &pi, &px, &p};
    return launch("max_fwd", x, aqa_numel(y), args);
}

aqa_status aqa__cuda_max_pool_backward(const aqa_conv_geom *g, const aqa_tensor *gy, const aqa_tensor *idx,
                                       aqa_tensor *gx) {
    pgeo p = geo_of(g, false, 0);
    void *pgx = aqa__ptr(gx), *pgy = aqa__ptr(gy), *pi = aqa__ptr(idx);
    void *args[] = {&pgx, &pgy, &pi, &p};
    return launch("max_bwd", gy, aqa_numel(gx), args);
}

aqa_status aqa__cuda_avg_pool_forward(const aqa_conv_geom *g, bool count_include_pad, int64_t divisor_override,
                                      const aqa_tensor *x, aqa_tensor *y) {
    pgeo p = geo_of(g, count_include_pad, divisor_override);
    void *py = aqa__ptr(y), *px = aqa__ptr(x);
    void *args[] = {&py, &px, &p};
    return launch("avg_fwd", x, aqa_numel(y), args);
}

aqa_status aqa__cuda_avg_pool_backward(const aqa_conv_geom *g, bool count_include_pad, int64_t divisor_override,
                                       const aqa_tensor *gy, aqa_tensor *gx) {
    pgeo p = geo_of(g, count_include_pad, divisor_override);
    void *pgx = aqa__ptr(gx), *pgy = aqa__ptr(gy);
    void *args[] = {&pgx, &pgy, &p};
    return launch("avg_bwd", gy, aqa_numel(gx), args);
}

aqa_status aqa__cuda_adaptive_avg_pool_forward(const aqa_conv_geom *g, const aqa_tensor *x, aqa_tensor *y) {
    pgeo p = geo_of(g, false, 0);
    void *py = aqa__ptr(y), *px = aqa__ptr(x);
    void *args[] = {&py, &px, &p};
    return launch("ada_fwd", x, aqa_numel(y), args);
}

aqa_status aqa__cuda_adaptive_avg_pool_backward(const aqa_conv_geom *g, const aqa_tensor *gy, aqa_tensor *gx) {
    pgeo p = geo_of(g, false, 0);
    void *pgx = aqa__ptr(gx), *pgy = aqa__ptr(gy);
    void *args[] = {&pgx, &pgy, &p};
    return launch("ada_bwd", gy, aqa_numel(gx), args);
}
