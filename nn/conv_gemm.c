/* conv_gemm.c: float32 convolution on aqa's packed GEMM (tensor/cpu_gemm-impl.h) with the
 * unfolding done by the packers: no column buffer, no second packing by BLAS.
 *
 * With K = Cg * kd * kh * kw and the columns running over (sample, output position):
 *   forward         Y_g [Og x N*P]   = W_g [Og x K] * Col(x)_g [K x N*P]         (+ bias)
 *   weight grad     dW_g [Og x K]    = dY_g [Og x N*P] * Col(x)_g^T [N*P x K]
 *   input grad      dX_g [Cg x N*S]  = W'_g [Cg x Og*kk] * Col(dY)_g [Og*kk x N*S]
 * The input gradient is the forward of a stride-1 convolution of dY with the kernel flipped in
 * every dimension and its channel axes swapped (W'[c, o, r] = W[o, c, kk - 1 - r]), padding
 * dil * (k - 1) - pad; that holds for unit strides only (else the caller's col2vol path runs).
 * Col(v) is never stored: element (c * kk + r, n * P + p) is v[n, c, od * s - pad + a * dil, ...]
 * for the kernel offset r = (a, b, e) and position p = (od, oh, ow), or 0 in the padding; the
 * packers copy it in runs along the output width, which is a contiguous input row at stride 1. */
#include <stdlib.h>
#include <string.h>

#include "nn/nn_cpu-impl.h"
#include "tensor/cpu-impl.h"
#include "tensor/cpu_gemm-impl.h"
#include "tensor/tensor-impl.h"

/* The implicit column matrix of a volume: rows (channel, kernel offset), columns (sample,
 * output position). */
typedef struct conv_vol {
    const float *src;      /* sample 0, first channel of the group */
    int64_t sample_stride; /* elements between samples */
    int64_t chans;         /* channels of the group (rows / kk) */
    int64_t in[3], out[3], k[3], stride[3], pad[3], dil[3];
    int64_t kk;            /* kernel offsets per channel */
    int64_t S, P;          /* input and output positions per channel */
    int64_t samples;       /* batch size */
} conv_vol;

/* What the packers of one product read. */
typedef struct conv_prod conv_prod;
struct conv_prod {
    conv_vol vol;          /* B (forward, input grad) or B^T (weight grad) */
    /* writes row `row` of A over [k0, k0 + kc) to d, floats mr apart */
    void (*a_row)(const conv_prod *p, int64_t row, int64_t k0, int64_t kc, float *d, int mr);
    const float *a;        /* A's data: W_g's first row, or dY_g's first row of sample 0 */
    int64_t a_rows;        /* valid rows of A */
    int64_t a_ld;          /* forward: elements between rows of W (K) */
    int64_t a_cg, a_og;    /* input grad: channels per group of the forward conv (W is [O, Cg, kk]) */
    int64_t a_sample;      /* weight grad: elements between samples of dY */
    int64_t a_p;           /* weight grad: positions per row of dY */
};

/* A run of columns sharing one sample and output row: where it lands and where it reads. */
typedef struct col_run {
    int64_t dst;           /* column offset in the packed block (lane + panel start, or row) */
    int32_t len;           /* columns */
    int32_t zero;          /* columns past the matrix: zeros */
    int64_t base;          /* sample offset into the volume */
    int64_t id, ih, iw;    /* input position of the first column at kernel offset 0 */
} col_run;

#define MAX_RUNS 1024

/* Splits columns [j0, j0 + nc) into runs that stay in one output row and, when nr > 0, in one
 * panel of nr columns (then dst = panel * kc * nr + lane, else dst = column - j0).  Returns the
 * number of runs (columns past the matrix form zero runs). */
static int make_runs(const conv_vol *v, int64_t j0, int64_t nc, int nr, int64_t kc, col_run *runs) {
    const int64_t Ho = v->out[1], Wo = v->out[2], total = v->samples * v->P;
    int nrun = 0;
    int64_t j = j0, end = j0 + nc;
    while (j < end && nrun < MAX_RUNS) {
        col_run *r = &runs[nrun++];
        int64_t rel = j - j0, lim = end;
        if (nr > 0) {
            int64_t pend = j0 + (rel / nr + 1) * nr;
            if (pend < lim) lim = pend;
            r->dst = rel / nr * kc * nr + rel % nr;
        } else {
            r->dst = rel;
        }
        if (j >= total) {
            r->zero = 1;
            r->len = (int32_t)(lim - j);
            j = lim;
            continue;
        }
        int64_t n = j / v->P, p = j % v->P;
        int64_t od = p / (Ho * Wo), oh = (p / Wo) % Ho, ow = p % Wo;
        int64_t rowend = j + (Wo - ow);
        if (rowend < lim) lim = rowend;
        r->zero = 0;
        r->len = (int32_t)(lim - j);
        r->base = n * v->sample_stride;
        r->id = od * v->stride[0] - v->pad[0];
        r->ih = oh * v->stride[1] - v->pad[1];
        r->iw = ow * v->stride[2] - v->pad[2];
        j = lim;
    }
    return nrun;
}

/* Copies run r for column-matrix row (channel plane chan, kernel offsets ad, bh, ew scaled by the
 * dilation) into dst, elements step floats apart. */
static inline void copy_run(const conv_vol *v, const float *chan, int64_t ad, int64_t bh, int64_t ew,
                            const col_run *r, float *dst, int64_t step) {
    const int64_t D = v->in[0], H = v->in[1], W = v->in[2], sw = v->stride[2];
    const int64_t len = r->len;
    int64_t id = r->id + ad, ih = r->ih + bh;
    if (r->zero || id < 0 || id >= D || ih < 0 || ih >= H) {
        for (int64_t t = 0; t < len; t++) dst[t * step] = 0.0f;
        return;
    }
    const float *row = chan + r->base + (id * H + ih) * W;
    int64_t iw0 = r->iw + ew;
    /* valid t: 0 <= iw0 + t * sw < W */
    int64_t lo = iw0 >= 0 ? 0 : (-iw0 + sw - 1) / sw;
    int64_t hi = iw0 < W ? (W - 1 - iw0) / sw + 1 : 0;
    if (lo > len) lo = len;
    if (hi > len) hi = len;
    if (hi < lo) hi = lo;
    int64_t t = 0;
    for (; t < lo; t++) dst[t * step] = 0.0f;
    if (step == 1 && sw == 1) {
        memcpy(dst + lo, row + iw0 + lo, sizeof(float) * (size_t)(hi - lo));
        t = hi;
    } else {
        for (; t < hi; t++) dst[t * step] = row[iw0 + t * sw];
    }
    for (; t < len; t++) dst[t * step] = 0.0f;
}

/* Row kr of the column matrix: its channel plane and dilated kernel offsets. */
static inline const float *row_of(const conv_vol *v, int64_t kr, int64_t *ad, int64_t *bh, int64_t *ew) {
    int64_t c = kr / v->kk, r = kr % v->kk;
    int64_t a = r / (v->k[1] * v->k[2]), b = (r / v->k[2]) % v->k[1], e = r % v->k[2];
    *ad = a * v->dil[0];
    *bh = b * v->dil[1];
    *ew = e * v->dil[2];
    return v->src + c * v->S;
}

/* B = Col(vol) [K x N*P]: panels of nr columns (forward, input grad). */
static void pack_b_cols(const void *ctx, int64_t k0, int64_t kc, int64_t j0, int64_t nc, int nr, float *dst) {
    const conv_vol *v = &((const conv_prod *)ctx)->vol;
    col_run runs[MAX_RUNS];
    int nrun = make_runs(v, j0, nc, nr, kc, runs);
    for (int64_t kk = 0; kk < kc; kk++) {
        int64_t ad, bh, ew;
        const float *chan = row_of(v, k0 + kk, &ad, &bh, &ew);
        float *d = dst + kk * nr;
        for (int i = 0; i < nrun; i++) copy_run(v, chan, ad, bh, ew, &runs[i], d + runs[i].dst, 1);
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
/* pack_b_cols for unit width stride with AVX-512: each run (at most one panel wide, 64 columns)
 * is one masked load and store per 16 columns, the padding masked to zero, instead of a memcpy
 * call and two fills per run. */
__attribute__((target("avx512f,avx512dq,avx512bw,avx512vl"))) static void pack_b_cols_avx512(
    const void *ctx, int64_t k0, int64_t kc, int64_t j0, int64_t nc, int nr, float *dst) {
    const conv_vol *v = &((const conv_prod *)ctx)->vol;
    const int64_t D = v->in[0], H = v->in[1], W = v->in[2];
    col_run runs[MAX_RUNS];
    int nrun = make_runs(v, j0, nc, nr, kc, runs);
    for (int64_t kk = 0; kk < kc; kk++) {
        int64_t ad, bh, ew;
        const float *chan = row_of(v, k0 + kk, &ad, &bh, &ew);
        float *d = dst + kk * nr;
        for (int i = 0; i < nrun; i++) {
            const col_run *r = &runs[i];
            const int64_t len = r->len, id = r->id + ad, ih = r->ih + bh, iw0 = r->iw + ew;
            /* valid columns t: 0 <= iw0 + t < W, none when the row is in the padding */
            int64_t lo = iw0 < 0 ? -iw0 : 0, hi = W - iw0;
            const bool inside = !(r->zero || id < 0 || id >= D || ih < 0 || ih >= H);
            if (!inside) lo = hi = 0;
            /* the row's address only for a row inside the volume (a padding row's offset is
             * meaningless, and forming it is undefined behaviour) */
            const float *row = inside ? chan + r->base + (id * H + ih) * W : NULL;
            for (int64_t t0 = 0; t0 < len; t0 += 16) {
                int64_t a = lo - t0, b = hi - t0, n = len - t0;
                a = a < 0 ? 0 : a > 16 ? 16 : a;
                b = b < 0 ? 0 : b > 16 ? 16 : b;
                n = n > 16 ? 16 : n;
                __mmask16 mv = (__mmask16)(b > a ? ((1u << b) - 1) & ~((1u << a) - 1) : 0);
                __mmask16 mn = (__mmask16)((1u << n) - 1);
                __m512 x = mv ? _mm512_maskz_loadu_ps(mv, row + iw0 + t0) : _mm512_setzero_ps();
                _mm512_mask_storeu_ps(d + r->dst + t0, mn, x);
            }
        }
    }
}
#endif

/* The B packer of the forward-type products for this volume and CPU. */
static aqa_gemm_pack_b_fn cols_packer(const conv_vol *v) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (v->stride[2] == 1 && aqa__cpu_isa() >= AQA_ISA_AVX512) return pack_b_cols_avx512;
#endif
    (void)v;
    return pack_b_cols;
}

/* B = Col(vol)^T [N*P x K] (weight grad): rows [k0, k0 + kc) are columns of Col, the panel's nr
 * columns are rows of Col (columns past K are zero). */
static void pack_b_rows(const void *ctx, int64_t k0, int64_t kc, int64_t j0, int64_t nc, int nr, float *dst) {
    const conv_vol *v = &((const conv_prod *)ctx)->vol;
    const int64_t K = v->chans * v->kk;
    col_run runs[MAX_RUNS];
    int nrun = make_runs(v, k0, kc, 0, 0, runs);
    for (int64_t jj = 0; jj < nc; jj++) {
        float *d = dst + (jj / nr) * kc * nr + jj % nr;
        if (j0 + jj >= K) {
            for (int64_t t = 0; t < kc; t++) d[t * nr] = 0.0f;
            continue;
        }
        int64_t ad, bh, ew;
        const float *chan = row_of(v, j0 + jj, &ad, &bh, &ew);
        for (int i = 0; i < nrun; i++) copy_run(v, chan, ad, bh, ew, &runs[i], d + runs[i].dst * nr, nr);
    }
}

/* Row `row` of A over [k0, k0 + kc) into d, floats mr apart: W_g [Og x K] with rows a_ld apart
 * (forward). */
static void a_row_weights(const conv_prod *p, int64_t row, int64_t k0, int64_t kc, float *d, int mr) {
    const float *s = p->a + row * p->a_ld + k0;
    for (int64_t t = 0; t < kc; t++) d[t * mr] = s[t];
}

/* W'_g [Cg x Og*kk], W'[c, o * kk + r] = W[o, c, kk - 1 - r] (input grad). */
static void a_row_flipped(const conv_prod *p, int64_t c, int64_t k0, int64_t kc, float *d, int mr) {
    const int64_t kk = p->vol.kk;
    int64_t o = k0 / kk, r = k0 % kk; /* stepped along, no division per element */
    for (int64_t t = 0; t < kc; t++) {
        d[t * mr] = p->a[(o * p->a_cg + c) * kk + (kk - 1 - r)];
        if (++r == kk) r = 0, o++;
    }
}

/* dY_g [Og x N*P] with samples a_sample apart (weight grad). */
static void a_row_grad(const conv_prod *p, int64_t o, int64_t k0, int64_t kc, float *d, int mr) {
    for (int64_t t = 0; t < kc;) {
        int64_t q = k0 + t, n = q / p->a_p, pos = q % p->a_p;
        int64_t len = p->a_p - pos < kc - t ? p->a_p - pos : kc - t;
        const float *s = p->a + n * p->a_sample + o * p->a_p + pos;
        for (int64_t u = 0; u < len; u++) d[(t + u) * mr] = s[u];
        t += len;
    }
}

/* A's panels through the product's row reader (rows past a_rows are zeros). */
static void pack_a(const void *ctx, int64_t i0, int64_t mc, int64_t k0, int64_t kc, int mr, float *dst) {
    const conv_prod *p = ctx;
    for (int64_t i = 0; i < mc; i++) {
        float *d = dst + (i / mr) * kc * mr + i % mr;
        if (i0 + i < p->a_rows) {
            p->a_row(p, i0 + i, k0, kc, d, mr);
        } else {
            for (int64_t t = 0; t < kc; t++) d[t * mr] = 0.0f;
        }
    }
}

/* A pointwise volume (1x1x1 kernel, unit stride, no padding) seen as one row per channel plane,
 * so that the packers copy whole planes instead of one output row at a time. */
static void flatten_pointwise(conv_vol *v) {
    for (int d = 0; d < 3; d++)
        if (v->k[d] != 1 || v->stride[d] != 1 || v->pad[d] != 0 || v->in[d] != v->out[d]) return;
    for (int d = 0; d < 2; d++) v->in[d] = v->out[d] = 1;
    v->in[2] = v->S;
    v->out[2] = v->P;
}

/* The column matrix of group gi of x under the forward geometry. */
static conv_vol forward_vol(const aqa_conv_geom *g, const float *x, int64_t gi) {
    const int64_t Cg = g->c_in / g->groups;
    conv_vol v = {.src = x + gi * Cg * g->in[0] * g->in[1] * g->in[2], .chans = Cg, .samples = g->n};
    for (int d = 0; d < 3; d++) {
        v.in[d] = g->in[d];
        v.out[d] = g->out[d];
        v.k[d] = g->k[d];
        v.stride[d] = g->stride[d];
        v.pad[d] = g->pad[d];
        v.dil[d] = g->dil[d];
    }
    v.kk = g->k[0] * g->k[1] * g->k[2];
    v.S = g->in[0] * g->in[1] * g->in[2];
    v.P = g->out[0] * g->out[1] * g->out[2];
    v.sample_stride = g->c_in * v.S;
    flatten_pointwise(&v);
    return v;
}

bool aqa__conv_gemm_usable(const aqa_conv_geom *g) {
    int mr, nr;
    (void)g;
    return aqa__sgemm_tile(&mr, &nr);
}

bool aqa__conv_gemm_input_grad_usable(const aqa_conv_geom *g) {
    for (int d = 0; d < 3; d++)
        if (g->stride[d] != 1 || g->dil[d] * (g->k[d] - 1) < g->pad[d]) return false;
    return aqa__conv_gemm_usable(g);
}

aqa_status aqa__conv_gemm_forward(const aqa_conv_geom *g, const float *x, const float *w, const float *b, float *y) {
    const int64_t G = g->groups, Og = g->c_out / G;
    for (int64_t gi = 0; gi < G; gi++) {
        conv_prod p = {.vol = forward_vol(g, x, gi), .a_row = a_row_weights, .a_rows = Og};
        const int64_t K = p.vol.chans * p.vol.kk, P = p.vol.P;
        p.a = w + gi * Og * K;
        p.a_ld = K;
        aqa_gemm gm = {.m = Og, .n = g->n * P, .k = K, .pack_a = pack_a, .pack_b = cols_packer(&p.vol), .ctx = &p,
                       .c = y + gi * Og * P, .ldc = P, .c_seg = P, .c_seg_stride = g->c_out * P,
                       .bias = b ? b + gi * Og : NULL};
        aqa_status st = aqa__sgemm(&gm);
        if (st != AQA_OK) return st;
    }
    return AQA_OK;
}

aqa_status aqa__conv_gemm_weight_grad(const aqa_conv_geom *g, const float *x, const float *gy, float *gw) {
    const int64_t G = g->groups, Og = g->c_out / G;
    for (int64_t gi = 0; gi < G; gi++) {
        conv_prod p = {.vol = forward_vol(g, x, gi), .a_row = a_row_grad, .a_rows = Og};
        const int64_t K = p.vol.chans * p.vol.kk, P = p.vol.P;
        p.a = gy + gi * Og * P;
        p.a_sample = g->c_out * P;
        p.a_p = P;
        aqa_gemm gm = {.m = Og, .n = K, .k = g->n * P, .pack_a = pack_a, .pack_b = pack_b_rows, .ctx = &p,
                       .c = gw + gi * Og * K, .ldc = K, .c_seg = K, .c_seg_stride = 0};
        aqa_status st = aqa__sgemm(&gm);
        if (st != AQA_OK) return st;
    }
    return AQA_OK;
}

aqa_status aqa__conv_gemm_input_grad(const aqa_conv_geom *g, const float *w, const float *gy, float *gx) {
    const int64_t G = g->groups, Cg = g->c_in / G, Og = g->c_out / G;
    const int64_t S = g->in[0] * g->in[1] * g->in[2], P = g->out[0] * g->out[1] * g->out[2];
    for (int64_t gi = 0; gi < G; gi++) {
        /* dY as the volume: its positions are the input, dX's the output */
        conv_vol v = {.src = gy + gi * Og * P, .sample_stride = g->c_out * P, .chans = Og, .samples = g->n,
                      .S = P, .P = S};
        for (int d = 0; d < 3; d++) {
            v.in[d] = g->out[d];
            v.out[d] = g->in[d];
            v.k[d] = g->k[d];
            v.stride[d] = 1;
            v.dil[d] = g->dil[d];
            v.pad[d] = g->dil[d] * (g->k[d] - 1) - g->pad[d];
        }
        v.kk = g->k[0] * g->k[1] * g->k[2];
        flatten_pointwise(&v);
        conv_prod p = {.vol = v, .a_row = a_row_flipped, .a = w + gi * Og * Cg * v.kk, .a_rows = Cg, .a_cg = Cg, .a_og = Og};
        aqa_gemm gm = {.m = Cg, .n = g->n * S, .k = Og * v.kk, .pack_a = pack_a, .pack_b = cols_packer(&p.vol),
                       .ctx = &p, .c = gx + gi * Cg * S, .ldc = S, .c_seg = S, .c_seg_stride = g->c_in * S};
        aqa_status st = aqa__sgemm(&gm);
        if (st != AQA_OK) return st;
    }
    return AQA_OK;
}
