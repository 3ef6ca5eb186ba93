/* conv_winograd.c: float32 3x3x3 convolutions with unit stride and dilation by Winograd's minimal
 * filtering F(2x2x2, 3x3x3) (Lavin and Gray, 2016): 64 multiplications per 2x2x2 output tile and
 * channel pair instead of 216, so 3.4 times fewer than the direct product; AVX-512 only.
 *
 * Along each axis, with d the 4 inputs of a tile, g the 3 weights and m the 4 products:
 *   B^T d = (d0 - d2, d1 + d2, d2 - d1, d1 - d3)       (input)
 *   G g   = (g0, (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2, g2)   (weights)
 *   A^T m = (m0 + m1 + m2, m1 - m2 - m3)                 (outputs)
 * and in 3-D the three axes one after the other.  Forward: for each of the 64 transformed
 * positions t, M_t [O x tiles] = U_t [O x C] V_t [C x tiles], one GEMM on aqa's microkernel (A
 * pre-packed, B read in place), then A^T back to the 2x2x2 outputs.  The input gradient is the
 * same forward on dY with the kernel flipped and its channel axes swapped, padding 2 - pad.  The
 * weight gradient is F(3x3x3, 2x2x2) by the transposition principle: per axis the 2 values of a dY
 * tile h go through A (h0, h0 + h1, h0 - h1, -h1), the input patch through B^T, the products are
 * summed over the tiles (GEMMs dW^_t [O x C] = dY^_t [O x tiles] X^_t [tiles x C]) and G^T
 * (m0 + (m1 + m2) / 2, (m1 - m2) / 2, (m1 + m2) / 2 + m3) gives the 3x3x3 gradient.
 *
 * Tiles are numbered over (sample, tile row d, tile row h, tile w); a segment is up to 16 tiles of
 * one tile row, the transforms work on a segment at once (one vector lane per tile, the input
 * read from a zero-padded copy so that no read needs a bounds check), and the tiles are processed
 * in blocks whose transformed data stay in the last-level cache. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn_cpu-impl.h"
#include "tensor/cpu-impl.h"
#include "tensor/cpu_gemm-impl.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define WINO_SIMD 1
#define AVX512 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl")))
#else
#define WINO_SIMD 0
#endif

/* Test hooks (nn_cpu-impl.h): true sends these convolutions to the GEMM path; products run here. */
bool aqa_conv_winograd_disabled;
long aqa_conv_winograd_runs;

bool aqa__conv_winograd_usable(const aqa_conv_geom *g) {
#if WINO_SIMD
    if (aqa_conv_winograd_disabled || aqa__cpu_isa() < AQA_ISA_AVX512 || g->groups != 1) return false;
    for (int d = 0; d < 3; d++)
        if (g->k[d] != 3 || g->stride[d] != 1 || g->dil[d] != 1 || g->pad[d] > 2) return false;
    /* the transforms cost about as much as a GEMM with 16 channels on each side */
    return g->c_in >= 16 && g->c_out >= 16 && g->out[0] * g->out[1] * g->out[2] >= 64;
#else
    (void)g;
    return false;
#endif
}

#if WINO_SIMD

/* The tiles of one problem and the zero-padded copy of the volume they read. */
typedef struct wgrid {
    int64_t n;            /* samples */
    int64_t out[3];       /* output size (tiles cover it, the last one may stick out) */
    int64_t t[3];         /* tiles per dim */
    int64_t pd, ph, pw;   /* padded plane: depth, height, row length */
    int64_t tiles;        /* all tiles */
} wgrid;

/* Up to 16 tiles of one tile row. */
typedef struct wseg {
    int64_t n, td, th, tw0; /* sample and first tile */
    int64_t j;              /* its first column in the block */
    int len;                /* tiles */
} wseg;

/* All segments in tile order; *count receives their number.  NULL when out of memory. */
static wseg *make_segments(const wgrid *gr, int64_t *count) {
    const int64_t per_row = (gr->t[2] + 15) / 16, rows = gr->n * gr->t[0] * gr->t[1];
    wseg *s = malloc(sizeof *s * (size_t)(rows * per_row));
    if (!s) return NULL;
    int64_t k = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t tw0 = 0; tw0 < gr->t[2]; tw0 += 16) {
            s[k].n = r / (gr->t[0] * gr->t[1]);
            s[k].td = (r / gr->t[1]) % gr->t[0];
            s[k].th = r % gr->t[1];
            s[k].tw0 = tw0;
            s[k].len = (int)(gr->t[2] - tw0 < 16 ? gr->t[2] - tw0 : 16);
            k++;
        }
    *count = k;
    return s;
}

/* Splits the segments into blocks of at most max_tiles tiles (at least one segment each), sets
 * each segment's column in its block; block b is segments [first[b], first[b + 1]).  Returns
 * the number of blocks, or -1 when out of memory (*first is then NULL). */
static int64_t make_blocks(wseg *s, int64_t nseg, int64_t max_tiles, int64_t **first, int64_t *widest) {
    *first = malloc(sizeof **first * (size_t)(nseg + 1));
    if (!*first) return -1;
    int64_t nb = 0, cols = 0;
    *widest = 0;
    for (int64_t i = 0; i < nseg; i++) {
        if (i == 0 || cols + s[i].len > max_tiles) {
            (*first)[nb++] = i;
            cols = 0;
        }
        s[i].j = cols;
        cols += s[i].len;
        if (cols > *widest) *widest = cols;
    }
    (*first)[nb] = nseg;
    return nb;
}

/* dst [n, c, pd, ph, pw] = src [n, c, in...] shifted by off (zeros elsewhere; what falls outside
 * is dropped), one plane per task. */
static void pad_copy(const float *src, int64_t planes, const int64_t in[3], const int64_t off[3], const wgrid *gr,
                     float *dst) {
    const int64_t S = in[0] * in[1] * in[2], PS = gr->pd * gr->ph * gr->pw;
#pragma omp parallel for schedule(static) if (planes * PS > 65536)
    for (int64_t p = 0; p < planes; p++) {
        float *d = dst + p * PS;
        memset(d, 0, sizeof(float) * (size_t)PS);
        for (int64_t i = 0; i < in[0]; i++) {
            int64_t pi = i + off[0];
            if (pi < 0 || pi >= gr->pd) continue;
            for (int64_t k = 0; k < in[1]; k++) {
                int64_t pk = k + off[1];
                if (pk < 0 || pk >= gr->ph) continue;
                int64_t w0 = off[2] < 0 ? -off[2] : 0, w1 = in[2];
                if (w1 + off[2] > gr->pw) w1 = gr->pw - off[2];
                if (w1 > w0)
                    memcpy(d + (pi * gr->ph + pk) * gr->pw + w0 + off[2], src + p * S + (i * in[1] + k) * in[2] + w0,
                           sizeof(float) * (size_t)(w1 - w0));
            }
        }
    }
}

/* ---- transforms of one segment (vector lane l = tile tw0 + l) ------------------------------------ */

/* Stores v's first len lanes at dst, lanes ls floats apart. */
AVX512 static inline void store_lanes(float *dst, __m512 v, int len, int64_t ls) {
    if (ls == 1) {
        _mm512_mask_storeu_ps(dst, (__mmask16)((1u << len) - 1), v);
        return;
    }
    float tmp[16];
    _mm512_storeu_ps(tmp, v);
    for (int l = 0; l < len; l++) dst[l * ls] = tmp[l];
}

#define BT(x0, x1, x2, x3, y0, y1, y2, y3) \
    do {                                   \
        __m512 a_ = (x0), b_ = (x1), c_ = (x2), d_ = (x3); \
        y0 = _mm512_sub_ps(a_, c_);        \
        y1 = _mm512_add_ps(b_, c_);        \
        y2 = _mm512_sub_ps(c_, b_);        \
        y3 = _mm512_sub_ps(b_, d_);        \
    } while (0)

/* B^T B^T B^T of the 4x4x4 input patches of a segment: plane is the padded plane of one channel;
 * the value of transformed position t goes to dst + t * tstride, lanes ls floats apart. */
AVX512 static void input_transform(const float *plane, const wgrid *gr, const wseg *s, float *dst, int64_t tstride,
                                   int64_t ls) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    __m512 d[64];
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) {
            const float *row = plane + ((2 * s->td + a) * gr->ph + 2 * s->th + b) * gr->pw + 2 * s->tw0;
            for (int e = 0; e < 4; e++)
                d[(a * 4 + b) * 4 + e] =
                    _mm512_permutex2var_ps(_mm512_loadu_ps(row + e), even, _mm512_loadu_ps(row + e + 16));
        }
    for (int i = 0; i < 16; i++) /* along w */
        BT(d[4 * i], d[4 * i + 1], d[4 * i + 2], d[4 * i + 3], d[4 * i], d[4 * i + 1], d[4 * i + 2], d[4 * i + 3]);
    for (int a = 0; a < 4; a++) /* along h */
        for (int e = 0; e < 4; e++) {
            __m512 *p = d + a * 16 + e;
            BT(p[0], p[4], p[8], p[12], p[0], p[4], p[8], p[12]);
        }
    for (int i = 0; i < 16; i++) { /* along d */
        __m512 *p = d + i;
        BT(p[0], p[16], p[32], p[48], p[0], p[16], p[32], p[48]);
    }
    for (int t = 0; t < 64; t++) store_lanes(dst + t * tstride, d[t], s->len, ls);
}

/* A^T A^T A^T of the 64 products of a segment (product t at src + t * tstride, 16 lanes) plus
 * bias, into the 2x2x2 output tiles of one channel plane out [D, H, W]. */
AVX512 static void output_transform(const float *src, int64_t tstride, const wseg *s, const int64_t od[3], float bias,
                                    float *out) {
    const __m512i lo_idx = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi_idx = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    __m512 m[64], w[32], h[16], y[8];
    for (int t = 0; t < 64; t++) m[t] = _mm512_loadu_ps(src + t * tstride);
    for (int i = 0; i < 16; i++) { /* along w: 4 -> 2 */
        __m512 *p = m + 4 * i;
        w[2 * i] = _mm512_add_ps(_mm512_add_ps(p[0], p[1]), p[2]);
        w[2 * i + 1] = _mm512_sub_ps(_mm512_sub_ps(p[1], p[2]), p[3]);
    }
    for (int a = 0; a < 4; a++) /* along h: w[(a * 4 + b) * 2 + e] -> h[(a * 2 + b') * 2 + e] */
        for (int e = 0; e < 2; e++) {
            __m512 *p = w + a * 8 + e;
            h[(a * 2) * 2 + e] = _mm512_add_ps(_mm512_add_ps(p[0], p[2]), p[4]);
            h[(a * 2 + 1) * 2 + e] = _mm512_sub_ps(_mm512_sub_ps(p[2], p[4]), p[6]);
        }
    for (int i = 0; i < 4; i++) { /* along d: h[a * 4 + i] -> y[a' * 4 + i] */
        __m512 *p = h + i;
        y[i] = _mm512_add_ps(_mm512_add_ps(p[0], p[4]), p[8]);
        y[4 + i] = _mm512_sub_ps(_mm512_sub_ps(p[4], p[8]), p[12]);
    }
    const __m512 bv = _mm512_set1_ps(bias);
    const int64_t w0 = 2 * s->tw0, valid = od[2] - w0 < 2 * s->len ? od[2] - w0 : 2 * s->len;
    const __mmask16 m0 = (__mmask16)(valid >= 16 ? 0xFFFF : (1u << valid) - 1);
    const __mmask16 m1 = (__mmask16)(valid >= 32 ? 0xFFFF : valid > 16 ? (1u << (valid - 16)) - 1 : 0);
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++) {
            int64_t z = 2 * s->td + a, r = 2 * s->th + b;
            if (z >= od[0] || r >= od[1]) continue;
            __m512 e0 = _mm512_add_ps(y[(a * 2 + b) * 2], bv), e1 = _mm512_add_ps(y[(a * 2 + b) * 2 + 1], bv);
            float *row = out + (z * od[1] + r) * od[2] + w0;
            _mm512_mask_storeu_ps(row, m0, _mm512_permutex2var_ps(e0, lo_idx, e1));
            _mm512_mask_storeu_ps(row + 16, m1, _mm512_permutex2var_ps(e0, hi_idx, e1));
        }
}

/* A A A of the 2x2x2 dY tiles of a segment (plane: padded dY plane of one channel) for the
 * weight gradient: position t to dst + t * tstride, lanes ls floats apart. */
AVX512 static void grad_tile_transform(const float *plane, const wgrid *gr, const wseg *s, float *dst,
                                       int64_t tstride, int64_t ls) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    __m512 v[64];
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++) {
            const float *row = plane + ((2 * s->td + a) * gr->ph + 2 * s->th + b) * gr->pw + 2 * s->tw0;
            __m512 lo = _mm512_loadu_ps(row), hi = _mm512_loadu_ps(row + 16);
            __m512 h0 = _mm512_permutex2var_ps(lo, even, hi), h1 = _mm512_permutex2var_ps(lo, odd, hi);
            __m512 *p = v + (a * 4 + b) * 4; /* along w: (h0, h0 + h1, h0 - h1, -h1) */
            p[0] = h0;
            p[1] = _mm512_add_ps(h0, h1);
            p[2] = _mm512_sub_ps(h0, h1);
            p[3] = _mm512_sub_ps(_mm512_setzero_ps(), h1);
        }
    for (int a = 0; a < 2; a++) /* along h: rows b = 0, 1 -> 0..3 */
        for (int e = 0; e < 4; e++) {
            __m512 *p = v + a * 16 + e, h0 = p[0], h1 = p[4];
            p[0] = h0;
            p[4] = _mm512_add_ps(h0, h1);
            p[8] = _mm512_sub_ps(h0, h1);
            p[12] = _mm512_sub_ps(_mm512_setzero_ps(), h1);
        }
    for (int i = 0; i < 16; i++) { /* along d: planes a = 0, 1 -> 0..3 */
        __m512 *p = v + i, h0 = p[0], h1 = p[16];
        p[0] = h0;
        p[16] = _mm512_add_ps(h0, h1);
        p[32] = _mm512_sub_ps(h0, h1);
        p[48] = _mm512_sub_ps(_mm512_setzero_ps(), h1);
    }
    for (int t = 0; t < 64; t++) store_lanes(dst + t * tstride, v[t], s->len, ls);
}

/* ---- weights ------------------------------------------------------------------------------------- */

/* u[64] = G G G g for the 3x3x3 kernel g (flip: g read back to front). */
static void weight_transform(const float *g, bool flip, float *u) {
    float k[27], t1[36], t2[48];
    for (int i = 0; i < 27; i++) k[i] = flip ? g[26 - i] : g[i];
    for (int i = 0; i < 9; i++) { /* along w: [3][3][3] -> [3][3][4] */
        const float *p = k + 3 * i;
        t1[4 * i] = p[0];
        t1[4 * i + 1] = 0.5f * (p[0] + p[1] + p[2]);
        t1[4 * i + 2] = 0.5f * (p[0] - p[1] + p[2]);
        t1[4 * i + 3] = p[2];
    }
    for (int a = 0; a < 3; a++) /* along h: [3][3][4] -> [3][4][4] */
        for (int e = 0; e < 4; e++) {
            const float *p = t1 + a * 12 + e;
            float *q = t2 + a * 16 + e;
            q[0] = p[0];
            q[4] = 0.5f * (p[0] + p[4] + p[8]);
            q[8] = 0.5f * (p[0] - p[4] + p[8]);
            q[12] = p[8];
        }
    for (int i = 0; i < 16; i++) { /* along d: [3][4][4] -> [4][4][4] */
        const float *p = t2 + i;
        u[i] = p[0];
        u[16 + i] = 0.5f * (p[0] + p[16] + p[32]);
        u[32 + i] = 0.5f * (p[0] - p[16] + p[32]);
        u[48 + i] = p[32];
    }
}

/* g[27] = G^T G^T G^T m for the 64 summed products m[t * ms] (weight gradient). */
static void grad_weight_transform(const float *m, int64_t ms, float *g) {
    float t1[48], t2[36];
    for (int i = 0; i < 16; i++) { /* along d: [4][4][4] -> [3][4][4] */
        float m0 = m[i * ms], m1 = m[(16 + i) * ms], m2 = m[(32 + i) * ms], m3 = m[(48 + i) * ms];
        t1[i] = m0 + 0.5f * (m1 + m2);
        t1[16 + i] = 0.5f * (m1 - m2);
        t1[32 + i] = 0.5f * (m1 + m2) + m3;
    }
    for (int a = 0; a < 3; a++) /* along h: [3][4][4] -> [3][3][4] */
        for (int e = 0; e < 4; e++) {
            const float *p = t1 + a * 16 + e;
            float *q = t2 + a * 12 + e;
            q[0] = p[0] + 0.5f * (p[4] + p[8]);
            q[4] = 0.5f * (p[4] - p[8]);
            q[8] = 0.5f * (p[4] + p[8]) + p[12];
        }
    for (int i = 0; i < 9; i++) { /* along w: [3][3][4] -> [3][3][3] */
        const float *p = t2 + 4 * i;
        g[3 * i] = p[0] + 0.5f * (p[1] + p[2]);
        g[3 * i + 1] = 0.5f * (p[1] - p[2]);
        g[3 * i + 2] = 0.5f * (p[1] + p[2]) + p[3];
    }
}

/* ---- the forward-type product -------------------------------------------------------------------- */

/* y [n, O, out...] = conv(x [n, C, in...], kernel) + bias with padding pad: the kernel given as
 * w [O, C, 27] or, with swap, as w [C, O, 27] read flipped (the input gradient). */
static aqa_status forward_product(int64_t n, int64_t C, int64_t O, const int64_t in[3], const int64_t out[3],
                                  const int64_t pad[3], const float *x, const float *w, bool swap, const float *bias,
                                  float *y) {
    int mr, nr;
    aqa_sgemm_ukr ukr = aqa__sgemm_ukr(&mr, &nr);
    __atomic_add_fetch(&aqa_conv_winograd_runs, 1, __ATOMIC_RELAXED);
    wgrid gr = {.n = n};
    for (int d = 0; d < 3; d++) {
        gr.out[d] = out[d];
        gr.t[d] = (out[d] + 1) / 2;
    }
    gr.pd = 2 * gr.t[0] + 2;
    gr.ph = 2 * gr.t[1] + 2;
    gr.pw = (2 * gr.t[2] + 35 + 15) / 16 * 16; /* 32-float loads from any tile's patch stay inside */
    gr.tiles = n * gr.t[0] * gr.t[1] * gr.t[2];
    const int64_t op = (O + mr - 1) / mr, PS = gr.pd * gr.ph * gr.pw;
    /* blocks of tiles whose transformed inputs and products take about 8 MiB */
    int64_t max_tiles = ((int64_t)8 << 20) / (64 * (C + O) * (int64_t)sizeof(float));
    if (max_tiles < 48) max_tiles = 48;
    int64_t nseg = 0, *first = NULL, widest = 0;
    wseg *seg = make_segments(&gr, &nseg);
    int64_t nblk = seg ? make_blocks(seg, nseg, max_tiles, &first, &widest) : -1;
    /* V [c][t][tb] and M [o][t][tb]: the 64 rows of one channel together, so that a transform
     * reads or writes one small region; tb leaves room for the full-width loads of the last tiles */
    const int64_t tb = widest + 64;
    float *xp = malloc(sizeof(float) * (size_t)(n * C * PS + 64));
    float *up = aligned_alloc(64, sizeof(float) * (size_t)(64 * op * mr * C));
    float *v = aligned_alloc(64, sizeof(float) * (size_t)(64 * C * tb + 64));
    float *m = aligned_alloc(64, sizeof(float) * (size_t)(64 * O * tb + 64));
    aqa_status st = AQA_OK;
    if (nblk < 0 || !xp || !up || !v || !m) {
        st = aqa_fail(AQA_ENOMEM, "conv (Winograd): out of memory for the transformed tiles");
        goto done;
    }
    pad_copy(x, n * C, in, pad, &gr, xp);
    if (xp) memset(xp + n * C * PS, 0, 64 * sizeof(float));
    /* U as the microkernel's A operand, up[panel][c][t][mr] (the A of position t starts at
     * up + (panel * C * 64 + t) * mr, rows 64 * mr apart): the mr rows of one (panel, c) are
     * transformed together and written to one contiguous stretch */
#pragma omp parallel for schedule(static) if (O * C > 256)
    for (int64_t pc = 0; pc < op * C; pc++) {
        int64_t ip = pc / C, c = pc % C;
        float u[16][64]; /* mr <= 16 */
        for (int r = 0; r < mr; r++) {
            int64_t o = ip * mr + r;
            if (o < O) weight_transform(swap ? w + (c * O + o) * 27 : w + (o * C + c) * 27, swap, u[r]);
            else memset(u[r], 0, sizeof u[r]);
        }
        float *d = up + pc * 64 * mr;
        for (int t = 0; t < 64; t++)
            for (int r = 0; r < mr; r++) d[t * mr + r] = u[r][t];
    }
#pragma omp parallel
    for (int64_t b = 0; b < nblk; b++) {
        const int64_t s0 = first[b], s1 = first[b + 1], cols = seg[s1 - 1].j + seg[s1 - 1].len;
#pragma omp for schedule(dynamic, 8)
        for (int64_t i = 0; i < (s1 - s0) * C; i++) {
            const wseg *s = &seg[s0 + i / C];
            int64_t c = i % C;
            input_transform(xp + (s->n * C + c) * PS, &gr, s, v + c * 64 * tb + s->j, tb, 1);
        }
#pragma omp for schedule(dynamic, 4)
        for (int64_t i = 0; i < 64 * op; i++) {
            int64_t t = i / op, ip = i % op;
            int mv = O - ip * mr < mr ? (int)(O - ip * mr) : mr;
            for (int64_t j = 0; j < cols; j += nr) {
                int nv = cols - j < nr ? (int)(cols - j) : nr;
                ukr(C, up + (ip * C * 64 + t) * mr, 64 * mr, v + t * tb + j, 64 * tb, m + (ip * mr * 64 + t) * tb + j,
                    64 * tb, mv, nv, false, NULL);
            }
        }
#pragma omp for schedule(dynamic, 8)
        for (int64_t i = 0; i < (s1 - s0) * O; i++) {
            const wseg *s = &seg[s0 + i / O];
            int64_t o = i % O;
            output_transform(m + o * 64 * tb + s->j, tb, s, out, bias ? bias[o] : 0.0f,
                             y + (s->n * O + o) * out[0] * out[1] * out[2]);
        }
    }
done:
    free(seg);
    free(first);
    free(xp);
    free(up);
    free(v);
    free(m);
    return st;
}

aqa_status aqa__conv_winograd_forward(const aqa_conv_geom *g, const float *x, const float *w, const float *b,
                                      float *y) {
    return forward_product(g->n, g->c_in, g->c_out, g->in, g->out, g->pad, x, w, false, b, y);
}

aqa_status aqa__conv_winograd_input_grad(const aqa_conv_geom *g, const float *w, const float *gy, float *gx) {
    const int64_t pad[3] = {2 - g->pad[0], 2 - g->pad[1], 2 - g->pad[2]};
    return forward_product(g->n, g->c_out, g->c_in, g->out, g->in, pad, gy, w, true, NULL, gx);
}

aqa_status aqa__conv_winograd_weight_grad(const aqa_conv_geom *g, const float *x, const float *gy, float *gw) {
    int mr, nr;
    aqa_sgemm_ukr ukr = aqa__sgemm_ukr(&mr, &nr);
    __atomic_add_fetch(&aqa_conv_winograd_runs, 1, __ATOMIC_RELAXED);
    const int64_t n = g->n, C = g->c_in, O = g->c_out;
    wgrid gx = {.n = n}, gg = {.n = n}; /* the padded input's and the padded dY's planes */
    for (int d = 0; d < 3; d++) {
        gx.out[d] = gg.out[d] = g->out[d];
        gx.t[d] = gg.t[d] = (g->out[d] + 1) / 2;
    }
    gx.pd = 2 * gx.t[0] + 2;
    gx.ph = 2 * gx.t[1] + 2;
    gx.pw = (2 * gx.t[2] + 35 + 15) / 16 * 16;
    gg.pd = 2 * gg.t[0];
    gg.ph = 2 * gg.t[1];
    gg.pw = (2 * gg.t[2] + 32 + 15) / 16 * 16;
    gx.tiles = gg.tiles = n * gx.t[0] * gx.t[1] * gx.t[2];
    const int64_t PX = gx.pd * gx.ph * gx.pw, PG = gg.pd * gg.ph * gg.pw, zero[3] = {0, 0, 0};
    /* bigger blocks than the forward's: the sums over tiles are read and written once per block */
    int64_t max_tiles = ((int64_t)24 << 20) / (64 * (C + O) * (int64_t)sizeof(float));
    if (max_tiles < 48) max_tiles = 48;
    int64_t nseg = 0, *first = NULL, widest = 0;
    wseg *seg = make_segments(&gx, &nseg);
    int64_t nblk = seg ? make_blocks(seg, nseg, max_tiles, &first, &widest) : -1;
    const int64_t cp = (C + nr - 1) / nr, op = (O + mr - 1) / mr;
    float *xp = malloc(sizeof(float) * (size_t)(n * C * PX + 64));
    float *yp = malloc(sizeof(float) * (size_t)(n * O * PG + 64));
    /* transformed tiles, tile-major (channels contiguous): xt[t][j][c], yt[t][j][o] */
    float *xt = aligned_alloc(64, sizeof(float) * (size_t)(64 * widest * C + 64));
    float *yt = aligned_alloc(64, sizeof(float) * (size_t)(64 * widest * O + 64));
    /* sum[o][t][c]: the 64 sums of one (o, c) lie C apart, all of one o in one region */
    float *sum = aligned_alloc(64, sizeof(float) * (size_t)(64 * O * C + 64));
    aqa_status st = AQA_OK;
    if (nblk < 0 || !xp || !yp || !xt || !yt || !sum) {
        st = aqa_fail(AQA_ENOMEM, "conv weight gradient (Winograd): out of memory for the transformed tiles");
        goto done;
    }
    pad_copy(x, n * C, g->in, g->pad, &gx, xp);
    pad_copy(gy, n * O, g->out, zero, &gg, yp);
    memset(xp + n * C * PX, 0, 64 * sizeof(float));
    memset(yp + n * O * PG, 0, 64 * sizeof(float));
    memset(xt + 64 * widest * C, 0, 64 * sizeof(float));
    memset(yt + 64 * widest * O, 0, 64 * sizeof(float));
#pragma omp parallel
    for (int64_t b = 0; b < nblk; b++) {
        const int64_t s0 = first[b], s1 = first[b + 1], cols = seg[s1 - 1].j + seg[s1 - 1].len;
#pragma omp for schedule(dynamic, 8)
        for (int64_t i = 0; i < (s1 - s0) * (C + O); i++) {
            const wseg *s = &seg[s0 + i / (C + O)];
            int64_t c = i % (C + O);
            if (c < C) input_transform(xp + (s->n * C + c) * PX, &gx, s, xt + s->j * C + c, widest * C, C);
            else grad_tile_transform(yp + (s->n * O + c - C) * PG, &gg, s, yt + s->j * O + c - C, widest * O, O);
        }
#pragma omp for schedule(dynamic, 4)
        for (int64_t i = 0; i < 64 * op * cp; i++) {
            int64_t t = i / (op * cp), ip = (i / cp) % op, jp = i % cp;
            int mv = O - ip * mr < mr ? (int)(O - ip * mr) : mr, nv = C - jp * nr < nr ? (int)(C - jp * nr) : nr;
            ukr(cols, yt + t * widest * O + ip * mr, O, xt + t * widest * C + jp * nr, C,
                sum + (ip * mr * 64 + t) * C + jp * nr, 64 * C, mv, nv, b > 0, NULL);
        }
    }
#pragma omp parallel for schedule(static) if (O * C > 256)
    for (int64_t oc = 0; oc < O * C; oc++) grad_weight_transform(sum + (oc / C) * 64 * C + oc % C, C, gw + oc * 27);
done:
    free(seg);
    free(first);
    free(xp);
    free(yp);
    free(xt);
    free(yt);
    free(sum);
    return st;
}

#else /* no AVX-512 build: never usable */

aqa_status aqa__conv_winograd_forward(const aqa_conv_geom *g, const float *x, const float *w, const float *b,
                                      float *y) {
    (void)g, (void)x, (void)w, (void)b, (void)y;
    return aqa_fail(AQA_EUNSUPPORTED, "conv: Winograd path not built");
}
aqa_status aqa__conv_winograd_input_grad(const aqa_conv_geom *g, const float *w, const float *gy, float *gx) {
    (void)g, (void)w, (void)gy, (void)gx;
    return aqa_fail(AQA_EUNSUPPORTED, "conv: Winograd path not built");
}
aqa_status aqa__conv_winograd_weight_grad(const aqa_conv_geom *g, const float *x, const float *gy, float *gw) {
    (void)g, (void)x, (void)gy, (void)gw;
    return aqa_fail(AQA_EUNSUPPORTED, "conv: Winograd path not built");
}

#endif
