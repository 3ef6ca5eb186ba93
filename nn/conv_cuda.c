/* conv_cuda.c: the CUDA convolution kernels (nn/conv_cuda-impl.h): vol2col + cuBLAS GEMM forward,
 * GEMM weight gradient and GEMM + col2vol input gradient, for float32 and float64.
 *
 * The arithmetic is that of nn/conv_cpu.c: for group gi, Y_g [Og x P] = W_g [Og x K] Col [K x P]
 * with K = Cg * kk (kk = kd * kh * kw), Col the unfolded input.  Work goes in blocks of nb samples x
 * np output positions whose scratch (the column matrix, plus a gathered output-gradient or output
 * tile) stays under a byte budget (256 MiB by default): whole samples, several at a time, when
 * they fit (deep layers: one wide GEMM instead of many thin ones), else tiles of one sample's
 * positions (I3D's 7x7x7 stem on 9 clips of 16x224x224 would otherwise unfold into 3.7 GB).  In a
 * block, column m = j * np + (p - p0) holds sample n0 + j's position p.
 *
 * Every product goes through aqa__cuda_matmul (tensor/cuda/cuda_matmul.c, the backend's one
 * cuBLAS path) on geometry-only views of the operands, so groups become GEMM batches and the
 * transposes of the backward are strides, never copies:
 *   forward   y[block]  = W [G, Og, K] @ col [G, K, M]; with one group and whole samples the
 *             samples are the batch (W broadcast with batch stride 0) and the GEMM writes y in
 *             place; with one sample and whole positions too; otherwise a tile buffer is copied
 *             out to y's strided positions;
 *   weight    gW [G, Og, K] += gy [G, Og, M] @ col^T (beta 1 across blocks: the sum over samples
 *             and tiles, in a fixed order);
 *   input     dcol [G, K, M] = W^T @ gy, then col2vol adds each input element's contributions
 *             (one thread per element: no atomics, the same bits every run).
 * A 1x1x1 kernel with stride 1 and no padding needs no unfolding and no scratch at all: x is the
 * column matrix; the forward takes all samples as one batch (one group) or one sample at a time
 * (groups as the batch), the backward works sample by sample on x, gy and gx in place (memory
 * passes would cost more than these GEMMs' arithmetic).  The bias add and the bias gradient
 * (a fixed-order reduction, one block per channel) are kernels of kernels/conv.cu. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "nn/conv_cuda-impl.h"
#include "tensor/cuda/cuda-impl.h"

/* Mirrors CGeo in tensor/cuda/kernels/conv.cu. */
typedef struct cgeo {
    int64_t c_in;          /* input channels (all groups) */
    int64_t in[3];         /* input D, H, W */
    int64_t out[3];        /* output D, H, W */
    int64_t k[3];          /* kernel size */
    int64_t stride[3];     /* window step */
    int64_t pad[3];        /* padding before the first element */
    int64_t dil[3];        /* kernel dilation */
    int64_t n0, nb;        /* first sample of the block, samples in it */
    int64_t p0, np;        /* first output position of the tile, positions per sample */
    int64_t id_lo, id_n;   /* col2vol: the input depth planes the tile touches */
} cgeo;

#define DEFAULT_BUDGET ((size_t)256 << 20)
/* Scratch budget of one call in bytes. */
static size_t budget = DEFAULT_BUDGET;
/* Largest scratch of one call since the last reset. */
static size_t peak_bytes;

/* (atomics: convolutions may run on several host threads) */
void aqa__cuda_conv_set_tile_bytes(size_t bytes) {
    __atomic_store_n(&budget, bytes ? bytes : DEFAULT_BUDGET, __ATOMIC_RELAXED);
}
size_t aqa__cuda_conv_peak_bytes(void) { return __atomic_load_n(&peak_bytes, __ATOMIC_RELAXED); }
void aqa__cuda_conv_reset_peak_bytes(void) { __atomic_store_n(&peak_bytes, 0, __ATOMIC_RELAXED); }

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

static bool is_pointwise(const aqa_conv_geom *g) {
    for (int i = 0; i < 3; i++)
        if (g->k[i] != 1 || g->stride[i] != 1 || g->pad[i] != 0 || g->out[i] != g->in[i]) return false;
    return true;
}

/* Block shape for scratch of `rows` elements per column: whole samples (as many as fit) when one
 * sample's P columns fit, else one sample's positions in tiles; at least one column. */
static void plan_blocks(int64_t n, int64_t P, int64_t rows, size_t es, int64_t *nb, int64_t *np) {
    size_t bytes = __atomic_load_n(&budget, __ATOMIC_RELAXED);
    int64_t cols = rows > 0 ? (int64_t)(bytes / ((size_t)rows * es)) : P * n;
    if (cols < 1) cols = 1;
    if (cols >= P) {
        *np = P;
        *nb = max64(1, min64(n, cols / P));
    } else {
        *nb = 1;
        *np = cols;
    }
}

/* A geometry-only view of base's storage (never registered or released). */
static aqa_tensor view(const aqa_tensor *base, int nd, const int64_t *shape, const int64_t *stride, int64_t off) {
    aqa_tensor v = aqa__geometry_of(base);
    v.ndim = nd;
    for (int i = 0; i < nd; i++) {
        v.shape[i] = shape[i];
        v.stride[i] = stride[i];
    }
    v.offset = base->offset + off;
    return v;
}
#define V3(base, off, s0, s1, s2, t0, t1, t2) \
    view((base), 3, (const int64_t[]){s0, s1, s2}, (const int64_t[]){t0, t1, t2}, (off))
#define V4(base, off, s0, s1, s2, s3, t0, t1, t2, t3) \
    view((base), 4, (const int64_t[]){s0, s1, s2, s3}, (const int64_t[]){t0, t1, t2, t3}, (off))

static aqa_status launch(aqa_cuda_dev *d, int dev, aqa_dtype dt, const char *kernel, unsigned grid, void **args) {
    char prog[32];
    snprintf(prog, sizeof prog, "conv_%s", aqa__cuda_dtag(dt));
    CUfunction f;
    aqa_status st = aqa__cuda_kernel(d, dev, prog, kernel, &f);
    if (st) return st;
    return aqa__cuda_launch(d, f, kernel, grid, 1, 256, 0, args);
}

static cgeo cgeo_of(const aqa_conv_geom *g, int64_t n0, int64_t nb, int64_t p0, int64_t np) {
    cgeo c;
    memset(&c, 0, sizeof c);
    c.c_in = g->c_in;
    for (int i = 0; i < 3; i++) {
        c.in[i] = g->in[i];
        c.out[i] = g->out[i];
        c.k[i] = g->k[i];
        c.stride[i] = g->stride[i];
        c.pad[i] = g->pad[i];
        c.dil[i] = g->dil[i];
    }
    c.n0 = n0;
    c.nb = nb;
    c.p0 = p0;
    c.np = np;
    return c;
}

/* col [c_in * kk, nb * np] <- the block's unfolded input. */
static aqa_status vol2col(aqa_cuda_dev *d, int dev, const aqa_conv_geom *g, const aqa_tensor *x, aqa_tensor *col,
                          int64_t n0, int64_t nb, int64_t p0, int64_t np) {
    cgeo c = cgeo_of(g, n0, nb, p0, np);
    int64_t P = g->out[0] * g->out[1] * g->out[2];
    int64_t total = g->c_in * g->k[0] * g->k[1] * g->k[2] * nb * np;
    bool small = total <= INT_MAX && P <= INT_MAX;
    void *xp = aqa__ptr(x), *cp = aqa__ptr(col);
    void *args[] = {&xp, &cp, &c};
    return launch(d, dev, x->dtype, small ? "vol2col_k32" : "vol2col_k", aqa__cuda_grid(d, total, 256), args);
}

/* gx += the adjoint of vol2col applied to col (same block). */
static aqa_status col2vol(aqa_cuda_dev *d, int dev, const aqa_conv_geom *g, const aqa_tensor *col, aqa_tensor *gx,
                          int64_t n0, int64_t nb, int64_t p0, int64_t np) {
    cgeo c = cgeo_of(g, n0, nb, p0, np);
    /* only the input depth planes under the tile's output planes receive anything */
    int64_t plane = g->out[1] * g->out[2];
    int64_t od_lo = p0 / plane, od_hi = (p0 + np - 1) / plane;
    int64_t lo = max64(0, od_lo * g->stride[0] - g->pad[0]);
    int64_t hi = min64(g->in[0] - 1, od_hi * g->stride[0] - g->pad[0] + (g->k[0] - 1) * g->dil[0]);
    if (hi < lo) return AQA_OK;
    c.id_lo = lo;
    c.id_n = hi - lo + 1;
    int64_t total = nb * g->c_in * c.id_n * g->in[1] * g->in[2];
    void *cp = aqa__ptr(col), *gp = aqa__ptr(gx);
    void *args[] = {&cp, &gp, &c};
    int64_t P = g->out[0] * g->out[1] * g->out[2];
    bool small = total <= INT_MAX && P <= INT_MAX;
    return launch(d, dev, gx->dtype, small ? "col2vol_k32" : "col2vol_k", aqa__cuda_grid(d, total, 256), args);
}

static aqa_status check_operands(const char *what, int n, const aqa_tensor *const *ts, aqa_dtype dt) {
    if (dt != AQA_F32 && dt != AQA_F64)
        return aqa_fail(AQA_EINVAL, "%s: dtype %s not supported (float32/float64)", what, aqa_dtype_name(dt));
    aqa_device dev = {AQA_CUDA, 0};
    bool first = true;
    for (int i = 0; i < n; i++) {
        const aqa_tensor *t = ts[i];
        if (!t) continue;
        if (t->dtype != dt) return aqa_fail(AQA_EINVAL, "%s: operands differ in dtype (%s, %s)", what,
                                            aqa_dtype_name(t->dtype), aqa_dtype_name(dt));
        if (t->storage->device.kind != AQA_CUDA || !aqa_is_contiguous(t))
            return aqa_fail(AQA_EINVAL, "%s: operands must be contiguous CUDA tensors", what);
        if (first) dev = t->storage->device;
        else if (!aqa_device_equal(dev, t->storage->device))
            return aqa_fail(AQA_EINVAL, "%s: operands are on different CUDA devices", what);
        first = false;
    }
    return AQA_OK;
}

/* A scratch tensor of `elems` elements (NULL when 0); *st set on failure. */
static aqa_tensor *scratch(int64_t elems, aqa_dtype dt, aqa_device dev, aqa_status *st) {
    if (elems <= 0 || *st) return NULL;
    aqa_tensor *t = aqa__new_unowned(1, &elems, dt, dev);
    if (!t) *st = aqa_last_status() ? aqa_last_status() : AQA_ENOMEM;
    return t;
}

static void note_peak(int64_t elems, size_t es) {
    size_t b = (size_t)elems * es, cur = __atomic_load_n(&peak_bytes, __ATOMIC_RELAXED);
    while (b > cur && !__atomic_compare_exchange_n(&peak_bytes, &cur, b, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
}

aqa_status aqa__cuda_conv_forward(const aqa_conv_geom *g, const aqa_tensor *x, const aqa_tensor *w,
                                  const aqa_tensor *b, aqa_tensor *y) {
    aqa_status st = check_operands("cuda conv", 4, (const aqa_tensor *[]){x, w, b, y}, y->dtype);
    if (st) return st;
    const int64_t G = g->groups, Cg = g->c_in / G, Og = g->c_out / G;
    const int64_t S = g->in[0] * g->in[1] * g->in[2], P = g->out[0] * g->out[1] * g->out[2];
    const int64_t kk = g->k[0] * g->k[1] * g->k[2], K = Cg * kk;
    if (aqa_numel(y) == 0) return AQA_OK;
    aqa_device device = y->storage->device;
    int dev = device.index;
    aqa_cuda_dev *d = aqa__cuda_dev(dev);
    if (!d) return aqa_last_status();
    const size_t es = aqa_dtype_size(y->dtype);
    const bool pw = is_pointwise(g);
    int64_t nb, np;
    if (pw) { /* x is the column matrix: whole samples in place, no scratch */
        nb = G == 1 ? g->n : 1;
        np = P;
    } else {
        plan_blocks(g->n, P, g->c_in * kk + g->c_out, es, &nb, &np);
    }
    /* which scratch the blocks need (see the top comment) */
    const bool whole = np == P;
    const bool in_place_out = whole && (G == 1 || nb == 1);
    const bool need_col = !pw || !in_place_out;
    aqa_tensor *col = scratch(need_col ? g->c_in * kk * nb * np : 0, y->dtype, device, &st);
    aqa_tensor *tmp = scratch(in_place_out ? 0 : g->c_out * nb * np, y->dtype, device, &st);
    note_peak((need_col ? g->c_in * kk * nb * np : 0) + (in_place_out ? 0 : g->c_out * nb * np), es);
    for (int64_t n0 = 0; n0 < g->n && !st; n0 += nb) {
        const int64_t m = min64(nb, g->n - n0);
        for (int64_t p0 = 0; p0 < P && !st; p0 += np) {
            const int64_t q = min64(np, P - p0), M = m * q;
            if (need_col) st = vol2col(d, dev, g, x, col, n0, m, p0, q);
            if (st) break;
            aqa_tensor A, B, C;
            if (in_place_out && G == 1) { /* samples are the batch; W broadcast */
                A = V3(w, 0, m, Og, K, 0, K, 1);
                B = pw ? V3(x, n0 * g->c_in * S, m, Cg, P, g->c_in * S, S, 1) : V3(col, 0, m, K, P, P, M, 1);
                C = V3(y, n0 * g->c_out * P, m, Og, P, Og * P, P, 1);
            } else if (in_place_out) { /* one sample, groups are the batch */
                A = V3(w, 0, G, Og, K, Og * K, K, 1);
                B = pw ? V3(x, n0 * g->c_in * S, G, Cg, P, Cg * P, P, 1) : V3(col, 0, G, K, P, K * P, P, 1);
                C = V3(y, n0 * g->c_out * P, G, Og, P, Og * P, P, 1);
            } else {
                A = V3(w, 0, G, Og, K, Og * K, K, 1);
                B = V3(col, 0, G, K, M, K * M, M, 1);
                C = V3(tmp, 0, G, Og, M, Og * M, M, 1);
            }
            st = aqa__cuda_matmul(&C, &A, &B, 1.0, 0.0);
            if (!st && !in_place_out) {
                aqa_tensor dst = V4(y, n0 * g->c_out * P + p0, m, G, Og, q, g->c_out * P, Og * P, P, 1);
                aqa_tensor src = V4(tmp, 0, m, G, Og, q, q, Og * M, M, 1);
                st = aqa__cuda_copy(&dst, &src);
            }
        }
    }
    if (!st && b) {
        int64_t total = aqa_numel(y), c_out = g->c_out;
        void *yp = aqa__ptr(y), *bp = aqa__ptr(b);
        void *args[] = {&yp, &bp, &c_out, (int64_t[]){P}, &total};
        st = launch(d, dev, y->dtype, "bias_add_k", aqa__cuda_grid(d, total, 256), args);
    }
    /* the scratch returns to the allocator's cache; stream order protects the queued work */
    if (col) aqa__release(col);
    if (tmp) aqa__release(tmp);
    return st;
}

aqa_status aqa__cuda_conv_backward(const aqa_conv_geom *g, const aqa_tensor *x, const aqa_tensor *w,
                                   const aqa_tensor *gy, aqa_tensor *gx, aqa_tensor *gw, aqa_tensor *gb) {
    aqa_status st = check_operands("cuda conv backward", 6, (const aqa_tensor *[]){x, w, gy, gx, gw, gb}, gy->dtype);
    if (st) return st;
    if (gw && !x) return aqa_fail(AQA_EINVAL, "cuda conv backward: the weight gradient needs the input");
    const int64_t G = g->groups, Cg = g->c_in / G, Og = g->c_out / G;
    const int64_t S = g->in[0] * g->in[1] * g->in[2], P = g->out[0] * g->out[1] * g->out[2];
    const int64_t kk = g->k[0] * g->k[1] * g->k[2], K = Cg * kk;
    aqa_device device = gy->storage->device;
    int dev = device.index;
    aqa_cuda_dev *d = aqa__cuda_dev(dev);
    if (!d) return aqa_last_status();
    if (gb && g->c_out > 0) {
        int64_t n = g->n, c_out = g->c_out, o0 = 0;
        void *gp = aqa__ptr(gy), *bp = aqa__ptr(gb);
        void *args[] = {&gp, &bp, &n, &c_out, (int64_t[]){P}, &o0};
        if ((st = launch(d, dev, gy->dtype, "bias_grad_k", (unsigned)c_out, args))) return st;
    }
    if (!gx && !gw) return AQA_OK;
    if (gx && (st = aqa__cuda_fill(gx, 0.0))) return st;
    if (gw && (st = aqa__cuda_fill(gw, 0.0))) return st;
    if (g->n == 0 || P == 0 || g->c_out == 0) return AQA_OK;
    const size_t es = aqa_dtype_size(gy->dtype);
    const bool pw = is_pointwise(g);
    int64_t nb, np;
    /* one column buffer serves the unfolded input (weight gradient) and then dcol (input
     * gradient): the GEMMs and kernels run in stream order */
    if (pw) { /* per sample, x and gx are the column matrices: no scratch, no copies */
        nb = 1;
        np = P;
    } else {
        plan_blocks(g->n, P, g->c_out + g->c_in * kk, es, &nb, &np);
    }
    const bool direct_pw = pw; /* x and gx are the column matrices */
    aqa_tensor *col = scratch(direct_pw ? 0 : g->c_in * kk * nb * np, gy->dtype, device, &st);
    aqa_tensor *tmp = scratch(nb > 1 ? g->c_out * nb * np : 0, gy->dtype, device, &st);
    note_peak((direct_pw ? 0 : g->c_in * kk * nb * np) + (nb > 1 ? g->c_out * nb * np : 0), es);
    for (int64_t n0 = 0; n0 < g->n && !st; n0 += nb) {
        const int64_t m = min64(nb, g->n - n0);
        for (int64_t p0 = 0; p0 < P && !st; p0 += np) {
            const int64_t q = min64(np, P - p0), M = m * q;
            /* gy of the block as [G, Og, M]: in place for one sample (rows P apart), else gathered */
            aqa_tensor gyt;
            if (m == 1) {
                gyt = V3(gy, n0 * g->c_out * P + p0, G, Og, q, Og * P, P, 1);
            } else {
                aqa_tensor dst = V4(tmp, 0, G, Og, m, q, Og * M, M, q, 1);
                aqa_tensor src = V4(gy, n0 * g->c_out * P + p0, G, Og, m, q, Og * P, P, g->c_out * P, 1);
                if ((st = aqa__cuda_copy(&dst, &src))) break;
                gyt = V3(tmp, 0, G, Og, M, Og * M, M, 1);
            }
            if (gw) {
                aqa_tensor B;
                if (direct_pw) {
                    B = V3(x, n0 * g->c_in * S, G, P, Cg, Cg * P, 1, P); /* x[n0]^T */
                } else {
                    if ((st = vol2col(d, dev, g, x, col, n0, m, p0, q))) break;
                    B = V3(col, 0, G, M, K, K * M, 1, M); /* col^T */
                }
                aqa_tensor C = V3(gw, 0, G, Og, K, Og * K, K, 1);
                if ((st = aqa__cuda_matmul(&C, &gyt, &B, 1.0, 1.0))) break;
            }
            if (gx) {
                aqa_tensor A = V3(w, 0, G, K, Og, Og * K, 1, K); /* W^T */
                aqa_tensor C = direct_pw ? V3(gx, n0 * g->c_in * S, G, Cg, P, Cg * P, P, 1)
                                         : V3(col, 0, G, K, M, K * M, M, 1);
                if ((st = aqa__cuda_matmul(&C, &A, &gyt, 1.0, 0.0))) break;
                if (!direct_pw && (st = col2vol(d, dev, g, col, gx, n0, m, p0, q))) break;
            }
        }
    }
    if (col) aqa__release(col);
    if (tmp) aqa__release(tmp);
    return st;
}
