/* conv_cpu.c: the CPU convolution kernels: tiled vol2col + GEMM forward, col2vol input gradient
 * and GEMM weight gradient (OpenBLAS), for float32 and float64.
 *
 * For sample n and group g the convolution is the product Y_g [Og x P] = W_g [Og x K] * Col
 * [K x P], K = Cg * kd * kh * kw, P = the number of output positions, Col the unfolded input
 * (vol2col).  Col is never built whole: output positions are processed in tiles of `pt` columns
 * so that the column buffers stay under aqa_conv_tile_bytes() (I3D's 7x7x7 stem on a 64-frame
 * 224x224 clip would otherwise need ~1.6 GB).  Backward, per tile: dCol = W_g^T * dY_g[:, tile]
 * scattered back with col2vol (input gradient), and dW_g += dY_g[:, tile] * Col^T (weight
 * gradient), sharing one vol2col per tile.  A 1x1x1 kernel with stride 1 and no padding needs no
 * unfolding: Col is the input itself, so each product is a single GEMM.  When the outputs are small
 * (deep layers: P < FOLD_BELOW) and the batch has several samples, the columns of several samples
 * are laid side by side so that one wide GEMM replaces many thin ones.
 *
 * OpenMP only for large unfoldings (>= PAR_MIN_ELEMS): each OpenMP region between the BLAS calls
 * (which aqa__cpu_gemm splits over the team) leaves libgomp's workers spinning on the cores BLAS needs
 * (measured with a 32768-element threshold: 44% of a batch-8, 2x7x7 conv's time in libgomp spin,
 * 3x slower); a large unfolding (I3D's 3x3x3 layers: 16M elements a tile) is long enough that the
 * spin after it is noise, and serial it costs ~50 ms of a 90 ms forward.
 *
 * The file includes itself twice with T = float / double to instantiate the typed kernels (the
 * part after #else); the untyped part (settings, dispatch) comes first. */
#ifndef CONV_T

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "nn/conv.h"
#include "nn/nn_cpu-impl.h"
#include "tensor/cpu-impl.h"
#include "tensor/tensor-impl.h"

/* Column-buffer budget in bytes (all tile buffers of one call together). */
static size_t tile_bytes_limit = (size_t)64 << 20;
/* Test hook: true turns the batch folding off (nn_cpu-impl.h). */
bool aqa_conv_fold_disabled;
/* Test hook: true sends float32 to the vol2col + OpenBLAS path (nn_cpu-impl.h). */
bool aqa_conv_gemm_disabled;
/* Largest column-buffer allocation seen (for tests of the bound). */
static size_t peak_col_bytes;

void aqa_conv_set_tile_bytes(size_t bytes) { tile_bytes_limit = bytes ? bytes : ((size_t)64 << 20); }
size_t aqa_conv_tile_bytes(void) { return tile_bytes_limit; }
size_t aqa_conv_peak_col_bytes(void) { return peak_col_bytes; }
void aqa_conv_reset_peak_col_bytes(void) { peak_col_bytes = 0; }

static void note_col_bytes(size_t b) {
#pragma omp critical(aqa_conv_peak)
    if (b > peak_col_bytes) peak_col_bytes = b;
}

/* Number of output columns per tile for K rows, nbuf buffers of elements of es bytes. */
static int64_t tile_cols(int64_t K, int64_t P, int nbuf, size_t es) {
    int64_t pt = (int64_t)(tile_bytes_limit / ((size_t)K * es * (size_t)nbuf));
    if (pt < 1) pt = 1;
    if (pt > P) pt = P;
    return pt;
}

/* Samples whose outputs have fewer than FOLD_BELOW positions are processed several at a time
 * (about FOLD_COLS columns per GEMM): one wide product instead of many thin ones. */
#define FOLD_BELOW 512
/* Smallest unfolding (elements) done by an OpenMP team, see the top comment. */
#define PAR_MIN_ELEMS ((int64_t)1 << 21)
#define FOLD_COLS 2048

/* Samples per folded block: up to FOLD_COLS columns, n at most, buffers (K + Og rows of nb*P
 * columns, nbuf_k buffers of K rows) under the budget; at least 1. */
static int64_t fold_samples(int64_t n, int64_t P, int64_t K, int64_t Og, int nbuf_k, size_t es) {
    int64_t nb = (FOLD_COLS + P - 1) / P;
    if (nb > n) nb = n;
    while (nb > 1 && (size_t)nb * (size_t)P * ((size_t)K * (size_t)nbuf_k + (size_t)Og) * es > tile_bytes_limit) nb--;
    return nb;
}

static bool is_pointwise(const aqa_conv_geom *g) {
    for (int i = 0; i < 3; i++)
        if (g->k[i] != 1 || g->stride[i] != 1 || g->pad[i] != 0 || g->out[i] != g->in[i]) return false;
    return true;
}

/* ---- typed kernels --------------------------------------------------------------------------- */
/* BLAS through aqa's wrapper (split over the OpenMP team, tensor/cpu_matmul.c) */
#define CONV_GEMM(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)                              \
    aqa__cpu_gemm(CONV_DT, (ta) == CblasTrans, (tb) == CblasTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
#define CONV_T float
#define CONV_NAME(x) x##_f32
#define CONV_DT AQA_F32
#include "nn/conv_cpu.c"
#undef CONV_T
#undef CONV_NAME
#undef CONV_DT
#define CONV_T double
#define CONV_NAME(x) x##_f64
#define CONV_DT AQA_F64
#include "nn/conv_cpu.c"
#undef CONV_T
#undef CONV_NAME
#undef CONV_DT

aqa_status aqa__cpu_conv_forward(const aqa_conv_geom *g, const aqa_tensor *x, const aqa_tensor *w,
                                 const aqa_tensor *b, aqa_tensor *y) {
    if (y->dtype == AQA_F32 && !aqa_conv_gemm_disabled && aqa__conv_winograd_usable(g))
        return aqa__conv_winograd_forward(g, aqa_data(x), aqa_data(w), b ? aqa_data(b) : NULL, aqa_data(y));
    if (y->dtype == AQA_F32 && !aqa_conv_gemm_disabled && aqa__conv_gemm_usable(g))
        return aqa__conv_gemm_forward(g, aqa_data(x), aqa_data(w), b ? aqa_data(b) : NULL, aqa_data(y));
    switch (y->dtype) {
    case AQA_F32: return conv_forward_f32(g, x, w, b, y);
    case AQA_F64: return conv_forward_f64(g, x, w, b, y);
    default: return aqa_fail(AQA_EINVAL, "conv: dtype %s not supported (float32/float64)", aqa_dtype_name(y->dtype));
    }
}

aqa_status aqa__cpu_conv_backward(const aqa_conv_geom *g, const aqa_tensor *x, const aqa_tensor *w,
                                  const aqa_tensor *gy, aqa_tensor *gx, aqa_tensor *gw, aqa_tensor *gb) {
    if (gy->dtype == AQA_F32 && !aqa_conv_gemm_disabled && aqa__conv_gemm_usable(g)) {
        /* the bias gradient, and the input gradient of a strided conv, on the old path */
        bool gx_here = gx && aqa__conv_gemm_input_grad_usable(g);
        aqa_status st = gb || (gx && !gx_here) ? conv_backward_f32(g, x, w, gy, gx_here ? NULL : gx, NULL, gb) : AQA_OK;
        const bool wino = aqa__conv_winograd_usable(g);
        if (st == AQA_OK && gw) {
            if (!x) return aqa_fail(AQA_EINVAL, "conv backward: the weight gradient needs the input");
            st = wino ? aqa__conv_winograd_weight_grad(g, aqa_data(x), aqa_data(gy), aqa_data(gw))
                      : aqa__conv_gemm_weight_grad(g, aqa_data(x), aqa_data(gy), aqa_data(gw));
        }
        if (st == AQA_OK && gx_here)
            st = wino ? aqa__conv_winograd_input_grad(g, aqa_data(w), aqa_data(gy), aqa_data(gx))
                      : aqa__conv_gemm_input_grad(g, aqa_data(w), aqa_data(gy), aqa_data(gx));
        return st;
    }
    switch (gy->dtype) {
    case AQA_F32: return conv_backward_f32(g, x, w, gy, gx, gw, gb);
    case AQA_F64: return conv_backward_f64(g, x, w, gy, gx, gw, gb);
    default: return aqa_fail(AQA_EINVAL, "conv backward: dtype %s not supported", aqa_dtype_name(gy->dtype));
    }
}

#else /* ---- typed part: T = CONV_T ------------------------------------------------------------ */

/* Unfolds output columns [p0, p1) of the channels of x_g (Cg planes) into col [K x (p1-p0)] whose
 * rows are ld elements apart. */
static void CONV_NAME(vol2col)(const aqa_conv_geom *g, int64_t Cg, const CONV_T *xg, int64_t p0, int64_t p1,
                               CONV_T *col, int64_t ld) {
    const int64_t D = g->in[0], H = g->in[1], W = g->in[2];
    const int64_t Ho = g->out[1], Wo = g->out[2];
    const int64_t kk = g->k[0] * g->k[1] * g->k[2], K = Cg * kk;
    const int64_t sw = g->stride[2];
#pragma omp parallel for schedule(static) if (K * (p1 - p0) >= PAR_MIN_ELEMS)
    for (int64_t r = 0; r < K; r++) {
        int64_t c = r / kk, rem = r % kk;
        int64_t a = rem / (g->k[1] * g->k[2]), bb = (rem / g->k[2]) % g->k[1], e = rem % g->k[2];
        const CONV_T *src = xg + c * D * H * W;
        CONV_T *dst = col + r * ld;
        int64_t p = p0;
        while (p < p1) {
            int64_t od = p / (Ho * Wo), oh = (p / Wo) % Ho, ow = p % Wo;
            int64_t run = Wo - ow < p1 - p ? Wo - ow : p1 - p;
            int64_t id = od * g->stride[0] - g->pad[0] + a * g->dil[0];
            int64_t ih = oh * g->stride[1] - g->pad[1] + bb * g->dil[1];
            if (id < 0 || id >= D || ih < 0 || ih >= H) {
                memset(dst, 0, sizeof(CONV_T) * (size_t)run);
            } else {
                const CONV_T *row = src + (id * H + ih) * W;
                int64_t iw0 = ow * sw - g->pad[2] + e * g->dil[2];
                /* valid j: 0 <= iw0 + j*sw < W */
                int64_t jlo = iw0 >= 0 ? 0 : (-iw0 + sw - 1) / sw;
                int64_t jhi = iw0 < W ? (W - 1 - iw0) / sw + 1 : 0; /* exclusive */
                if (jlo > run) jlo = run;
                if (jhi > run) jhi = run;
                if (jhi < jlo) jhi = jlo;
                for (int64_t j = 0; j < jlo; j++) dst[j] = 0;
                if (sw == 1) {
                    memcpy(dst + jlo, row + iw0 + jlo, sizeof(CONV_T) * (size_t)(jhi - jlo));
                } else {
                    for (int64_t j = jlo; j < jhi; j++) dst[j] = row[iw0 + j * sw];
                }
                for (int64_t j = jhi; j < run; j++) dst[j] = 0;
            }
            dst += run;
            p += run;
        }
    }
}

/* Adds col [K x (p1-p0)] (rows ld apart) back into the input-gradient planes gxg (Cg planes): the
 * adjoint of vol2col.  Parallel over channels so that no two threads write the same plane. */
static void CONV_NAME(col2vol)(const aqa_conv_geom *g, int64_t Cg, const CONV_T *col, int64_t p0, int64_t p1,
                               CONV_T *gxg, int64_t ld) {
    const int64_t D = g->in[0], H = g->in[1], W = g->in[2];
    const int64_t Ho = g->out[1], Wo = g->out[2];
    const int64_t kk = g->k[0] * g->k[1] * g->k[2];
    const int64_t sw = g->stride[2];
#pragma omp parallel for schedule(static) if (Cg > 1 && Cg * kk * (p1 - p0) >= PAR_MIN_ELEMS)
    for (int64_t c = 0; c < Cg; c++) {
        CONV_T *dstc = gxg + c * D * H * W;
        for (int64_t rem = 0; rem < kk; rem++) {
            int64_t a = rem / (g->k[1] * g->k[2]), bb = (rem / g->k[2]) % g->k[1], e = rem % g->k[2];
            const CONV_T *src = col + (c * kk + rem) * ld;
            int64_t p = p0;
            while (p < p1) {
                int64_t od = p / (Ho * Wo), oh = (p / Wo) % Ho, ow = p % Wo;
                int64_t run = Wo - ow < p1 - p ? Wo - ow : p1 - p;
                int64_t id = od * g->stride[0] - g->pad[0] + a * g->dil[0];
                int64_t ih = oh * g->stride[1] - g->pad[1] + bb * g->dil[1];
                if (id >= 0 && id < D && ih >= 0 && ih < H) {
                    CONV_T *row = dstc + (id * H + ih) * W;
                    int64_t iw0 = ow * sw - g->pad[2] + e * g->dil[2];
                    int64_t jlo = iw0 >= 0 ? 0 : (-iw0 + sw - 1) / sw;
                    int64_t jhi = iw0 < W ? (W - 1 - iw0) / sw + 1 : 0;
                    if (jlo > run) jlo = run;
                    if (jhi > run) jhi = run;
                    if (sw == 1) {
                        CONV_T *rp = row + iw0;
                        for (int64_t j = jlo; j < jhi; j++) rp[j] += src[j];
                    } else {
                        for (int64_t j = jlo; j < jhi; j++) row[iw0 + j * sw] += src[j];
                    }
                }
                src += run;
                p += run;
            }
        }
    }
}

/* Folded forward for small outputs: for a block of nb samples, Col [K x nb*P] holds every sample's
 * columns side by side, one GEMM gives [Og x nb*P], copied out to each sample's rows. */
static aqa_status CONV_NAME(conv_forward_folded)(const aqa_conv_geom *g, const CONV_T *xp, const CONV_T *wp,
                                                 CONV_T *yp) {
    const int64_t G = g->groups, Cg = g->c_in / G, Og = g->c_out / G;
    const int64_t S = g->in[0] * g->in[1] * g->in[2], P = g->out[0] * g->out[1] * g->out[2];
    const int64_t K = Cg * g->k[0] * g->k[1] * g->k[2];
    const int64_t nb = fold_samples(g->n, P, K, Og, 1, sizeof(CONV_T));
    size_t bytes = sizeof(CONV_T) * (size_t)(nb * P) * (size_t)(K + Og);
    CONV_T *col = malloc(bytes);
    if (!col) return aqa_fail(AQA_ENOMEM, "conv: out of memory for a %zu-byte column tile", bytes);
    note_col_bytes(bytes);
    CONV_T *tmp = col + K * nb * P;
    for (int64_t n0 = 0; n0 < g->n; n0 += nb) {
        int64_t m = n0 + nb <= g->n ? nb : g->n - n0, ld = m * P;
        for (int64_t gi = 0; gi < G; gi++) {
            for (int64_t j = 0; j < m; j++)
                CONV_NAME(vol2col)(g, Cg, xp + ((n0 + j) * g->c_in + gi * Cg) * S, 0, P, col + j * P, ld);
            CONV_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)Og, (int)ld, (int)K, 1, wp + gi * Og * K, (int)K,
                      col, (int)ld, 0, tmp, (int)ld);
            for (int64_t j = 0; j < m; j++)
                for (int64_t o = 0; o < Og; o++)
                    memcpy(yp + ((n0 + j) * g->c_out + gi * Og + o) * P, tmp + o * ld + j * P, sizeof(CONV_T) * (size_t)P);
        }
    }
    free(col);
    return AQA_OK;
}

/* Folded backward (see the forward): gy of nb samples gathered into [Og x nb*P]; one GEMM each
 * for the weight gradient and for dCol. */
static aqa_status CONV_NAME(conv_backward_folded)(const aqa_conv_geom *g, const CONV_T *xp, const CONV_T *wp,
                                                  const CONV_T *gyp, CONV_T *gxp, CONV_T *gwp) {
    const int64_t G = g->groups, Cg = g->c_in / G, Og = g->c_out / G;
    const int64_t S = g->in[0] * g->in[1] * g->in[2], P = g->out[0] * g->out[1] * g->out[2];
    const int64_t K = Cg * g->k[0] * g->k[1] * g->k[2];
    const int nbuf = (gxp ? 1 : 0) + (gwp ? 1 : 0);
    const int64_t nb = fold_samples(g->n, P, K, Og, nbuf, sizeof(CONV_T));
    size_t bytes = sizeof(CONV_T) * (size_t)(nb * P) * (size_t)(K * nbuf + Og);
    CONV_T *buf = malloc(bytes);
    if (!buf) return aqa_fail(AQA_ENOMEM, "conv backward: out of memory for a %zu-byte column tile", bytes);
    note_col_bytes(bytes);
    CONV_T *tmp = buf, *col = gwp ? buf + Og * nb * P : NULL;
    CONV_T *dcol = gxp ? buf + Og * nb * P + (gwp ? K * nb * P : 0) : NULL;
    for (int64_t n0 = 0; n0 < g->n; n0 += nb) {
        int64_t m = n0 + nb <= g->n ? nb : g->n - n0, ld = m * P;
        for (int64_t gi = 0; gi < G; gi++) {
            for (int64_t j = 0; j < m; j++)
                for (int64_t o = 0; o < Og; o++)
                    memcpy(tmp + o * ld + j * P, gyp + ((n0 + j) * g->c_out + gi * Og + o) * P, sizeof(CONV_T) * (size_t)P);
            if (gwp) {
                for (int64_t j = 0; j < m; j++)
                    CONV_NAME(vol2col)(g, Cg, xp + ((n0 + j) * g->c_in + gi * Cg) * S, 0, P, col + j * P, ld);
                CONV_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)Og, (int)K, (int)ld, 1, tmp, (int)ld, col,
                          (int)ld, 1, gwp + gi * Og * K, (int)K);
            }
            if (gxp) {
                CONV_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)ld, (int)Og, 1, wp + gi * Og * K,
                          (int)K, tmp, (int)ld, 0, dcol, (int)ld);
                for (int64_t j = 0; j < m; j++)
                    CONV_NAME(col2vol)(g, Cg, dcol + j * P, 0, P, gxp + ((n0 + j) * g->c_in + gi * Cg) * S, ld);
            }
        }
    }
    free(buf);
    return AQA_OK;
}

static aqa_status CONV_NAME(conv_forward)(const aqa_conv_geom *g, const aqa_tensor *x, const aqa_tensor *w,
                                          const aqa_tensor *b, aqa_tensor *y) {
    const int64_t G = g->groups, Cg = g->c_in / G, Og = g->c_out / G;
    const int64_t S = g->in[0] * g->in[1] * g->in[2], P = g->out[0] * g->out[1] * g->out[2];
    const int64_t K = Cg * g->k[0] * g->k[1] * g->k[2];
    const CONV_T *xp = (const CONV_T *)aqa_data(x), *wp = (const CONV_T *)aqa_data(w);
    CONV_T *yp = (CONV_T *)aqa_data(y);
    const bool pw = is_pointwise(g);
    if (g->n > 1 && P < FOLD_BELOW && !aqa_conv_fold_disabled && fold_samples(g->n, P, K, Og, 1, sizeof(CONV_T)) > 1) {
        aqa_status st = CONV_NAME(conv_forward_folded)(g, xp, wp, yp);
        if (st != AQA_OK) return st;
        goto bias;
    }
    const int64_t pt = pw ? P : tile_cols(K, P, 1, sizeof(CONV_T));
    CONV_T *col = NULL;
    if (!pw) {
        size_t nb = sizeof(CONV_T) * (size_t)K * (size_t)pt;
        col = malloc(nb);
        if (!col) return aqa_fail(AQA_ENOMEM, "conv: out of memory for a %zu-byte column tile", nb);
        note_col_bytes(nb);
    }
    for (int64_t n = 0; n < g->n; n++) {
        for (int64_t p0 = 0; p0 < P; p0 += pt) {
            int64_t p1 = p0 + pt < P ? p0 + pt : P;
            for (int64_t gi = 0; gi < G; gi++) {
                const CONV_T *xg = xp + (n * g->c_in + gi * Cg) * S;
                CONV_T *yg = yp + (n * g->c_out + gi * Og) * P + p0;
                const CONV_T *B = xg;
                int64_t ldb = P;
                if (!pw) {
                    CONV_NAME(vol2col)(g, Cg, xg, p0, p1, col, p1 - p0);
                    B = col;
                    ldb = p1 - p0;
                }
                CONV_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)Og, (int)(p1 - p0), (int)K, 1,
                          wp + gi * Og * K, (int)K, B, (int)ldb, 0, yg, (int)P);
            }
        }
    }
    free(col);
bias:
    if (b) {
        const CONV_T *bp = (const CONV_T *)aqa_data(b);
        for (int64_t r = 0; r < g->n * g->c_out; r++) {
            CONV_T bv = bp[r % g->c_out], *row = yp + r * P;
            for (int64_t j = 0; j < P; j++) row[j] += bv;
        }
    }
    return AQA_OK;
}

static aqa_status CONV_NAME(conv_backward)(const aqa_conv_geom *g, const aqa_tensor *x, const aqa_tensor *w,
                                           const aqa_tensor *gy, aqa_tensor *gx, aqa_tensor *gw, aqa_tensor *gb) {
    const int64_t G = g->groups, Cg = g->c_in / G, Og = g->c_out / G;
    const int64_t S = g->in[0] * g->in[1] * g->in[2], P = g->out[0] * g->out[1] * g->out[2];
    const int64_t K = Cg * g->k[0] * g->k[1] * g->k[2];
    const CONV_T *xp = x ? (const CONV_T *)aqa_data(x) : NULL, *wp = (const CONV_T *)aqa_data(w);
    const CONV_T *gyp = (const CONV_T *)aqa_data(gy);
    CONV_T *gxp = gx ? (CONV_T *)aqa_data(gx) : NULL, *gwp = gw ? (CONV_T *)aqa_data(gw) : NULL;
    if (gb) {
        CONV_T *gbp = (CONV_T *)aqa_data(gb);
        for (int64_t o = 0; o < g->c_out; o++) {
            double s = 0;
            for (int64_t n = 0; n < g->n; n++) {
                const CONV_T *row = gyp + (n * g->c_out + o) * P;
                for (int64_t j = 0; j < P; j++) s += row[j];
            }
            gbp[o] = (CONV_T)s;
        }
    }
    if (!gx && !gw) return AQA_OK;
    if (gw && !xp) return aqa_fail(AQA_EINVAL, "conv backward: the weight gradient needs the input");
    if (gx) memset(gxp, 0, sizeof(CONV_T) * (size_t)(g->n * g->c_in * S));
    if (gw) memset(gwp, 0, sizeof(CONV_T) * (size_t)(g->c_out * K));
    if (g->n > 1 && P < FOLD_BELOW && !aqa_conv_fold_disabled &&
        fold_samples(g->n, P, K, Og, (gx ? 1 : 0) + (gw ? 1 : 0), sizeof(CONV_T)) > 1)
        return CONV_NAME(conv_backward_folded)(g, xp, wp, gyp, gxp, gwp);
    const bool pw = is_pointwise(g);
    const int nbuf = (gx ? 1 : 0) + (gw ? 1 : 0);
    const int64_t pt = pw ? P : tile_cols(K, P, nbuf, sizeof(CONV_T));
    CONV_T *col = NULL, *dcol = NULL;
    if (!pw) {
        size_t nb = sizeof(CONV_T) * (size_t)K * (size_t)pt;
        if (gw) col = malloc(nb);
        if (gx) dcol = malloc(nb);
        if ((gw && !col) || (gx && !dcol)) {
            free(col);
            free(dcol);
            return aqa_fail(AQA_ENOMEM, "conv backward: out of memory for %d %zu-byte column tiles", nbuf, nb);
        }
        note_col_bytes(nb * (size_t)nbuf);
    }
    for (int64_t n = 0; n < g->n; n++) {
        for (int64_t p0 = 0; p0 < P; p0 += pt) {
            int64_t p1 = p0 + pt < P ? p0 + pt : P, np = p1 - p0;
            for (int64_t gi = 0; gi < G; gi++) {
                const CONV_T *gyg = gyp + (n * g->c_out + gi * Og) * P + p0;
                const CONV_T *wg = wp + gi * Og * K;
                if (pw) {
                    /* Col is the input itself: [Cg x P] with ld P (== S). */
                    if (gx)
                        CONV_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)P, (int)Og, 1, wg, (int)K,
                                  gyg, (int)P, 0, gxp + (n * g->c_in + gi * Cg) * S, (int)S);
                    if (gw)
                        CONV_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)Og, (int)K, (int)P, 1, gyg, (int)P,
                                  xp + (n * g->c_in + gi * Cg) * S, (int)S, 1, gwp + gi * Og * K, (int)K);
                    continue;
                }
                if (gw) {
                    CONV_NAME(vol2col)(g, Cg, xp + (n * g->c_in + gi * Cg) * S, p0, p1, col, np);
                    CONV_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)Og, (int)K, (int)np, 1, gyg, (int)P, col,
                              (int)np, 1, gwp + gi * Og * K, (int)K);
                }
                if (gx) {
                    CONV_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)np, (int)Og, 1, wg, (int)K, gyg,
                              (int)P, 0, dcol, (int)np);
                    CONV_NAME(col2vol)(g, Cg, dcol, p0, p1, gxp + (n * g->c_in + gi * Cg) * S, np);
                }
            }
        }
    }
    free(col);
    free(dcol);
    return AQA_OK;
}

#endif /* CONV_T */
