/* cpu_reduce.c: CPU kernels for reductions (sum, max, min with positions) and softmax.
 *
 * aqa__cpu_reduce reduces x over the dimensions in a bit mask into a keepdim-shaped output.  Two
 * loop shapes cover every layout without copies:
 *   - "row" mode, when the dimension with the smallest stride is reduced (e.g. sum over the last
 *     dim of a contiguous tensor): each output is a reduction over (mostly) contiguous rows;
 *   - "column" mode, when the smallest-stride dimension is kept (e.g. sum over the batch of
 *     [N, C], a bias gradient): blocks of neighbouring outputs are updated together from
 *     contiguous slices, so the inner loop vectorises.
 * float32 sums accumulate in double, which keeps the error of sums of millions of elements at the
 * level of one final rounding (1e6 float ones sum exactly).  Max/min positions are the row-major
 * flat index over the reduced dimensions (in their logical order), first occurrence on ties; a
 * NaN wins over any number (the first NaN), as in torch.
 *
 * aqa__cpu_softmax / aqa__cpu_softmax_backward work row by row along `dim`.  The hot case (dim
 * is the last, rows contiguous, float32) runs straight on the buffers with a vectorisable exp;
 * other layouts gather each row into a small buffer first. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/cpu-impl.h"
#include "tensor/tensor-impl.h"

/* Below this much work (elements touched) a kernel stays on one thread. */
#define PAR_MIN_WORK 32768
/* Outputs handled together in column mode (accumulators stay in L1). */
#define COL_BLOCK 512
/* float32 column sums: rows added in float before each flush into double (bounds the error). */
#define COL_GROUP 32

/* ---------------------------------------------------------------------------------------------
 * Parallel helper: splits [0, ntasks) into one contiguous chunk per thread. */

typedef void (*chunk_fn)(void *ctx, int64_t begin, int64_t end);

static void run_chunks(int64_t ntasks, int64_t work, chunk_fn fn, void *ctx) {
    if (ntasks <= 0) return;
    if (work < PAR_MIN_WORK || ntasks < 2 || omp_get_max_threads() < 2 || omp_in_parallel()) {
        fn(ctx, 0, ntasks);
        return;
    }
#pragma omp parallel
    {
        int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
        int64_t b = ntasks * t / nt, e = ntasks * (t + 1) / nt;
        if (b < e) fn(ctx, b, e);
    }
}

/* ---------------------------------------------------------------------------------------------
 * An n-d index space walked in row-major order with byte offsets for up to 3 operands. */

typedef struct space {
    int nd;                        /* dimensions, outermost first (0 means a single point) */
    int64_t size[AQA_MAX_DIMS];    /* extent of each */
    int64_t st[3][AQA_MAX_DIMS];   /* byte stride of each operand along each */
} space;

static int64_t space_numel(const space *s) {
    int64_t n = 1;
    for (int d = 0; d < s->nd; d++) n *= s->size[d];
    return n;
}

/* Positions the counter at linear index lin and returns the operands' byte offsets. */
static void space_seek(const space *s, int64_t lin, int64_t *ctr, int64_t *off) {
    off[0] = off[1] = off[2] = 0;
    for (int d = s->nd - 1; d >= 0; d--) {
        int64_t i = lin % s->size[d];
        lin /= s->size[d];
        ctr[d] = i;
        for (int o = 0; o < 3; o++) off[o] += i * s->st[o][d];
    }
}

/* Advances the counter by one element. */
static inline void space_next(const space *s, int64_t *ctr, int64_t *off) {
    for (int d = s->nd - 1; d >= 0; d--) {
        if (++ctr[d] < s->size[d]) {
            for (int o = 0; o < 3; o++) off[o] += s->st[o][d];
            return;
        }
        ctr[d] = 0;
        for (int o = 0; o < 3; o++) off[o] -= (s->size[d] - 1) * s->st[o][d];
    }
}

/* Merges neighbouring dimensions that step uniformly in operand 0 (and the others). */
static void space_merge(space *s, int nops) {
    int w = 0;
    for (int d = 0; d < s->nd; d++) {
        if (w > 0) {
            bool ok = true;
            for (int o = 0; o < nops; o++)
                if (s->st[o][w - 1] != s->st[o][d] * s->size[d]) ok = false;
            if (ok) {
                s->size[w - 1] *= s->size[d];
                for (int o = 0; o < nops; o++) s->st[o][w - 1] = s->st[o][d];
                continue;
            }
        }
        s->size[w] = s->size[d];
        for (int o = 0; o < 3; o++) s->st[o][w] = s->st[o][d];
        w++;
    }
    s->nd = w;
}

/* ---------------------------------------------------------------------------------------------
 * 1-D building blocks per dtype.
 *
 * sum_row_*: sum of n elements at p stepping s bytes, in the accumulator type.
 * arg_row_*: folds n elements into (best, pos) starting at flat position base.
 * col_*:     acc[j] (op)= p[j * s] for j < L, positions recorded as `flat`. */

/* vector kernels, below */
static double sum_row_f32_contig(const float *x, int64_t n);
static float minmax_row_f32_contig(const float *x, int64_t n, bool is_max);
static void col_add_f32(float *acc, const float *x, int64_t n);

static double sum_row_f32(const char *p, int64_t n, int64_t s) {
    if (s == (int64_t)sizeof(float)) return sum_row_f32_contig((const float *)p, n);
    double acc = 0;
    for (int64_t i = 0; i < n; i++) acc += (double)*(const float *)(p + i * s);
    return acc;
}

/* float64: 8 independent lanes, combined pairwise; blocks summed pairwise through the caller's
 * chunking keep the error well below what gradcheck can see. */
static double sum_row_f64(const char *p, int64_t n, int64_t s) {
    double acc[8] = {0};
    int64_t i = 0;
    if (s == (int64_t)sizeof(double)) {
        const double *x = (const double *)p;
        for (; i + 8 <= n; i += 8)
            for (int l = 0; l < 8; l++) acc[l] += x[i + l];
        for (; i < n; i++) acc[0] += x[i];
    } else {
        for (; i < n; i++) acc[0] += *(const double *)(p + i * s);
    }
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

static int64_t sum_row_i64(const char *p, int64_t n, int64_t s) {
    int64_t acc = 0;
    if (s == (int64_t)sizeof(int64_t)) {
        const int64_t *x = (const int64_t *)p;
        for (int64_t i = 0; i < n; i++) acc += x[i];
    } else {
        for (int64_t i = 0; i < n; i++) acc += *(const int64_t *)(p + i * s);
    }
    return acc;
}

/* "v beats best" for max and min; NaN beats numbers (first NaN kept). */
#define BEATS_MAX(v, best) ((v) > (best) || ((v) != (v) && (best) == (best)))
#define BEATS_MIN(v, best) ((v) < (best) || ((v) != (v) && (best) == (best)))

#define DEFINE_ARG_ROW(NAME, T, BEATS)                                                       \
    static void NAME(const char *p, int64_t n, int64_t s, int64_t base, T *best,            \
                     int64_t *pos, bool *have) {                                             \
        int64_t i = 0;                                                                       \
        if (!*have && n > 0) {                                                               \
            *best = *(const T *)p;                                                           \
            *pos = base;                                                                     \
            *have = true;                                                                    \
            i = 1;                                                                           \
        }                                                                                    \
        T b = *best;                                                                         \
        int64_t bp = *pos;                                                                   \
        for (; i < n; i++) {                                                                 \
            T v = *(const T *)(p + i * s);                                                   \
            if (BEATS(v, b)) {                                                               \
                b = v;                                                                       \
                bp = base + i;                                                               \
            }                                                                                \
        }                                                                                    \
        *best = b;                                                                           \
        *pos = bp;                                                                           \
    }
DEFINE_ARG_ROW(max_row_f32, float, BEATS_MAX)
DEFINE_ARG_ROW(max_row_f64, double, BEATS_MAX)
DEFINE_ARG_ROW(max_row_i64, int64_t, BEATS_MAX)
DEFINE_ARG_ROW(max_row_b8, uint8_t, BEATS_MAX)
DEFINE_ARG_ROW(min_row_f32, float, BEATS_MIN)
DEFINE_ARG_ROW(min_row_f64, double, BEATS_MIN)
DEFINE_ARG_ROW(min_row_i64, int64_t, BEATS_MIN)
DEFINE_ARG_ROW(min_row_b8, uint8_t, BEATS_MIN)

/* ---------------------------------------------------------------------------------------------
 * The reduction plan. */

typedef struct reduce_plan {
    aqa_reduce_op op;
    aqa_dtype dtype;
    size_t es;          /* element size */
    const char *xbase;  /* x's first element */
    char *obase;        /* out's first element */
    char *ibase;        /* idx's first element or NULL */
    space kept;         /* kept dims: operands x, out, idx */
    space red;          /* reduced dims: operand x only; row-major logical order for max/min */
    int64_t rn;         /* innermost reduced extent (row mode) */
    int64_t rs;         /* its byte stride in x */
    /* column mode */
    int64_t cn;         /* extent of the vector (kept) dimension */
    int64_t cx, co, ci; /* its byte strides in x, out, idx */
    int64_t nblk;       /* blocks of COL_BLOCK along it */
} reduce_plan;

static void write_value(const reduce_plan *p, char *dst, double dv, int64_t iv) {
    switch (p->dtype) {
    case AQA_F32: *(float *)dst = (float)dv; break;
    case AQA_F64: *(double *)dst = dv; break;
    case AQA_I64: *(int64_t *)dst = iv; break;
    case AQA_BOOL: *(uint8_t *)dst = (uint8_t)iv; break;
    }
}

/* Row mode, sum: for each output, loop over the reduced space. */
static void row_sum_chunk(void *vctx, int64_t begin, int64_t end) {
    const reduce_plan *p = vctx;
    int64_t kc[AQA_MAX_DIMS], ko[3];
    space_seek(&p->kept, begin, kc, ko);
    int64_t nouter = space_numel(&p->red);
    for (int64_t o = begin; o < end; o++) {
        const char *xb = p->xbase + ko[0];
        int64_t rc[AQA_MAX_DIMS], ro[3];
        space_seek(&p->red, 0, rc, ro);
        double dacc = 0;
        int64_t iacc = 0;
        for (int64_t r = 0; r < nouter; r++) {
            const char *row = xb + ro[0];
            switch (p->dtype) {
            case AQA_F32: dacc += sum_row_f32(row, p->rn, p->rs); break;
            case AQA_F64: dacc += sum_row_f64(row, p->rn, p->rs); break;
            default: iacc += sum_row_i64(row, p->rn, p->rs); break;
            }
            space_next(&p->red, rc, ro);
        }
        write_value(p, p->obase + ko[1], dacc, iacc);
        space_next(&p->kept, kc, ko);
    }
}

/* Row mode, max/min: the reduced space is walked in logical row-major order so positions are
 * flat indices and the first occurrence wins. */
static void row_arg_chunk(void *vctx, int64_t begin, int64_t end) {
    const reduce_plan *p = vctx;
    int64_t kc[AQA_MAX_DIMS], ko[3];
    space_seek(&p->kept, begin, kc, ko);
    int64_t nouter = space_numel(&p->red);
    bool is_max = p->op == AQA_RED_MAX;
    for (int64_t o = begin; o < end; o++) {
        const char *xb = p->xbase + ko[0];
        int64_t rc[AQA_MAX_DIMS], ro[3];
        space_seek(&p->red, 0, rc, ro);
        union { float f; double d; int64_t i; uint8_t b; } best;
        int64_t pos = 0;
        bool have = false;
        for (int64_t r = 0; r < nouter; r++) {
            const char *row = xb + ro[0];
            int64_t base = r * p->rn;
            switch (p->dtype) {
            case AQA_F32:
                if (!p->ibase && p->rs == (int64_t)sizeof(float) && p->rn > 0) {
                    /* values only, contiguous: the vector kernel (NaN still wins) */
                    float v = minmax_row_f32_contig((const float *)row, p->rn, is_max);
                    if (!have || (is_max ? BEATS_MAX(v, best.f) : BEATS_MIN(v, best.f))) best.f = v;
                    have = true;
                    break;
                }
                (is_max ? max_row_f32 : min_row_f32)(row, p->rn, p->rs, base, &best.f, &pos, &have);
                break;
            case AQA_F64:
                (is_max ? max_row_f64 : min_row_f64)(row, p->rn, p->rs, base, &best.d, &pos, &have);
                break;
            case AQA_I64:
                (is_max ? max_row_i64 : min_row_i64)(row, p->rn, p->rs, base, &best.i, &pos, &have);
                break;
            case AQA_BOOL:
                (is_max ? max_row_b8 : min_row_b8)(row, p->rn, p->rs, base, &best.b, &pos, &have);
                break;
            }
            space_next(&p->red, rc, ro);
        }
        char *dst = p->obase + ko[1];
        switch (p->dtype) {
        case AQA_F32: *(float *)dst = best.f; break;
        case AQA_F64: *(double *)dst = best.d; break;
        case AQA_I64: *(int64_t *)dst = best.i; break;
        case AQA_BOOL: *(uint8_t *)dst = best.b; break;
        }
        if (p->ibase) *(int64_t *)(p->ibase + ko[2]) = pos;
        space_next(&p->kept, kc, ko);
    }
}

/* Column mode: task t = (kept position, block).  acc holds COL_BLOCK running values. */
#define DEFINE_COL_SUM(NAME, T, ACC)                                                          \
    static void NAME(ACC *acc, const char *p, int64_t L, int64_t s) {                         \
        if (s == (int64_t)sizeof(T)) {                                                        \
            const T *x = (const T *)p;                                                        \
            _Pragma("omp simd") for (int64_t j = 0; j < L; j++) acc[j] += (ACC)x[j];          \
        } else {                                                                              \
            for (int64_t j = 0; j < L; j++) acc[j] += (ACC) * (const T *)(p + j * s);         \
        }                                                                                     \
    }
DEFINE_COL_SUM(col_sum_f32f, float, float)
DEFINE_COL_SUM(col_sum_f64, double, double)
DEFINE_COL_SUM(col_sum_i64, int64_t, int64_t)

#define DEFINE_COL_ARG(NAME, T, BEATS)                                                        \
    static void NAME(T *best, int64_t *pos, const char *p, int64_t L, int64_t s, int64_t flat, \
                     bool first) {                                                            \
        for (int64_t j = 0; j < L; j++) {                                                     \
            T v = *(const T *)(p + j * s);                                                    \
            if (first || BEATS(v, best[j])) {                                                 \
                best[j] = v;                                                                  \
                pos[j] = flat;                                                                \
            }                                                                                 \
        }                                                                                     \
    }
DEFINE_COL_ARG(col_max_f32, float, BEATS_MAX)
DEFINE_COL_ARG(col_max_f64, double, BEATS_MAX)
DEFINE_COL_ARG(col_max_i64, int64_t, BEATS_MAX)
DEFINE_COL_ARG(col_max_b8, uint8_t, BEATS_MAX)
DEFINE_COL_ARG(col_min_f32, float, BEATS_MIN)
DEFINE_COL_ARG(col_min_f64, double, BEATS_MIN)
DEFINE_COL_ARG(col_min_i64, int64_t, BEATS_MIN)
DEFINE_COL_ARG(col_min_b8, uint8_t, BEATS_MIN)

static void col_chunk(void *vctx, int64_t begin, int64_t end) {
    const reduce_plan *p = vctx;
    union {
        double d[COL_BLOCK];
        int64_t i[COL_BLOCK];
        float f[COL_BLOCK];
        uint8_t b[COL_BLOCK];
    } acc;
    int64_t pos[COL_BLOCK];
    int64_t nred = space_numel(&p->red);
    bool is_max = p->op == AQA_RED_MAX;
    for (int64_t t = begin; t < end; t++) {
        int64_t kpos = t / p->nblk, blk = t % p->nblk;
        int64_t kc[AQA_MAX_DIMS], ko[3];
        space_seek(&p->kept, kpos, kc, ko);
        int64_t j0 = blk * COL_BLOCK;
        int64_t L = p->cn - j0 < COL_BLOCK ? p->cn - j0 : COL_BLOCK;
        const char *xb = p->xbase + ko[0] + j0 * p->cx;
        int64_t rc[AQA_MAX_DIMS], ro[3];
        space_seek(&p->red, 0, rc, ro);
        if (p->op == AQA_RED_SUM && p->dtype == AQA_F32) {
            /* float partial sums over groups of COL_GROUP rows (fast, 4+ lanes per instruction),
             * flushed into the double accumulators */
            float part[COL_BLOCK];
            memset(&acc, 0, sizeof acc);
            for (int64_t r = 0; r < nred;) {
                memset(part, 0, sizeof part);
                int64_t gend = nred - r > COL_GROUP ? r + COL_GROUP : nred;
                for (; r < gend; r++) {
                    if (p->cx == (int64_t)sizeof(float))
                        col_add_f32(part, (const float *)(xb + ro[0]), L);
                    else
                        col_sum_f32f(part, xb + ro[0], L, p->cx);
                    space_next(&p->red, rc, ro);
                }
                for (int64_t j = 0; j < L; j++) acc.d[j] += part[j];
            }
        } else if (p->op == AQA_RED_SUM) {
            memset(&acc, 0, sizeof acc);
            for (int64_t r = 0; r < nred; r++) {
                const char *row = xb + ro[0];
                switch (p->dtype) {
                case AQA_F64: col_sum_f64(acc.d, row, L, p->cx); break;
                default: col_sum_i64(acc.i, row, L, p->cx); break;
                }
                space_next(&p->red, rc, ro);
            }
        } else {
            for (int64_t r = 0; r < nred; r++) {
                const char *row = xb + ro[0];
                bool first = r == 0;
                switch (p->dtype) {
                case AQA_F32: (is_max ? col_max_f32 : col_min_f32)(acc.f, pos, row, L, p->cx, r, first); break;
                case AQA_F64: (is_max ? col_max_f64 : col_min_f64)(acc.d, pos, row, L, p->cx, r, first); break;
                case AQA_I64: (is_max ? col_max_i64 : col_min_i64)(acc.i, pos, row, L, p->cx, r, first); break;
                case AQA_BOOL: (is_max ? col_max_b8 : col_min_b8)(acc.b, pos, row, L, p->cx, r, first); break;
                }
                space_next(&p->red, rc, ro);
            }
        }
        char *ob = p->obase + ko[1] + j0 * p->co;
        for (int64_t j = 0; j < L; j++) {
            char *dst = ob + j * p->co;
            switch (p->dtype) {
            case AQA_F32: *(float *)dst = p->op == AQA_RED_SUM ? (float)acc.d[j] : acc.f[j]; break;
            case AQA_F64: *(double *)dst = acc.d[j]; break;
            case AQA_I64: *(int64_t *)dst = acc.i[j]; break;
            case AQA_BOOL: *(uint8_t *)dst = acc.b[j]; break;
            }
        }
        if (p->ibase) {
            char *ib = p->ibase + ko[2] + j0 * p->ci;
            for (int64_t j = 0; j < L; j++) *(int64_t *)(ib + j * p->ci) = pos[j];
        }
    }
}

/* Full reduction of one contiguous run split across threads (sum_all / max_all of big tensors):
 * per-thread partials combined in order. */
typedef struct split_ctx {
    const reduce_plan *p;
    int64_t nparts;   /* partial results */
    double *dpart;    /* per-part float sums or float/double best values */
    int64_t *ipart;   /* per-part integer sums or best values */
    int64_t *ppart;   /* per-part positions */
    bool *have;       /* per-part: saw an element */
} split_ctx;

static void split_chunk(void *vctx, int64_t begin, int64_t end) {
    split_ctx *c = vctx;
    const reduce_plan *p = c->p;
    for (int64_t part = begin; part < end; part++) {
        int64_t lo = p->rn * part / c->nparts, hi = p->rn * (part + 1) / c->nparts;
        const char *row = p->xbase + lo * p->rs;
        int64_t n = hi - lo;
        bool is_max = p->op == AQA_RED_MAX;
        c->have[part] = false;
        if (p->op == AQA_RED_SUM) {
            if (p->dtype == AQA_F32) c->dpart[part] = sum_row_f32(row, n, p->rs);
            else if (p->dtype == AQA_F64) c->dpart[part] = sum_row_f64(row, n, p->rs);
            else c->ipart[part] = sum_row_i64(row, n, p->rs);
            continue;
        }
        switch (p->dtype) {
        case AQA_F32: {
            float b = 0;
            if (!p->ibase && p->rs == (int64_t)sizeof(float) && n > 0) {
                b = minmax_row_f32_contig((const float *)row, n, is_max);
                c->have[part] = true;
            } else {
                (is_max ? max_row_f32 : min_row_f32)(row, n, p->rs, lo, &b, &c->ppart[part], &c->have[part]);
            }
            c->dpart[part] = b;
            break;
        }
        case AQA_F64:
            (is_max ? max_row_f64 : min_row_f64)(row, n, p->rs, lo, &c->dpart[part], &c->ppart[part], &c->have[part]);
            break;
        case AQA_I64:
            (is_max ? max_row_i64 : min_row_i64)(row, n, p->rs, lo, &c->ipart[part], &c->ppart[part], &c->have[part]);
            break;
        case AQA_BOOL: {
            uint8_t b = 0;
            (is_max ? max_row_b8 : min_row_b8)(row, n, p->rs, lo, &b, &c->ppart[part], &c->have[part]);
            c->ipart[part] = b;
            break;
        }
        }
    }
}

static void reduce_split(const reduce_plan *p) {
    enum { NP = 64 };
    double dpart[NP] = {0};
    int64_t ipart[NP] = {0}, ppart[NP] = {0};
    bool have[NP] = {0};
    int64_t nparts = omp_get_max_threads() * 4;
    if (nparts > NP) nparts = NP;
    split_ctx c = {p, nparts, dpart, ipart, ppart, have};
    run_chunks(nparts, p->rn, split_chunk, &c);
    double dv = 0;
    int64_t iv = 0, pos = 0;
    bool any = false;
    bool is_max = p->op == AQA_RED_MAX;
    for (int64_t i = 0; i < nparts; i++) {
        if (p->op == AQA_RED_SUM) {
            dv += dpart[i];
            iv += ipart[i];
            continue;
        }
        if (!have[i]) continue;
        bool take;
        if (!any) take = true;
        else if (p->dtype == AQA_F32 || p->dtype == AQA_F64)
            take = is_max ? BEATS_MAX(dpart[i], dv) : BEATS_MIN(dpart[i], dv);
        else
            take = is_max ? ipart[i] > iv : ipart[i] < iv;
        if (take) {
            dv = dpart[i];
            iv = ipart[i];
            pos = ppart[i];
            any = true;
        }
    }
    write_value(p, p->obase, dv, iv);
    if (p->ibase && p->op != AQA_RED_SUM) *(int64_t *)p->ibase = pos;
}

aqa_status aqa__cpu_reduce(aqa_reduce_op op, aqa_tensor *out, aqa_tensor *idx, const aqa_tensor *x,
                           uint32_t dim_mask) {
    if (out->dtype != x->dtype)
        return aqa_fail(AQA_EINVAL, "cpu reduce: out dtype %s differs from input dtype %s",
                        aqa_dtype_name(out->dtype), aqa_dtype_name(x->dtype));
    if (op == AQA_RED_SUM && x->dtype == AQA_BOOL)
        return aqa_fail(AQA_EINVAL, "cpu reduce: sum of bool must be computed as int64");
    if (out->ndim != x->ndim || (idx && (idx->ndim != x->ndim || idx->dtype != AQA_I64)))
        return aqa_fail(AQA_EINVAL, "cpu reduce: out/idx must have x's rank (keepdim form)");
    for (int d = 0; d < x->ndim; d++) {
        int64_t want = (dim_mask >> d) & 1u ? 1 : x->shape[d];
        if (out->shape[d] != want || (idx && idx->shape[d] != want))
            return aqa_fail(AQA_EINVAL, "cpu reduce: out shape mismatch at dim %d", d);
    }
    int64_t nout = aqa__shape_numel(out->ndim, out->shape);
    if (nout == 0) return AQA_OK;
    int64_t nx = aqa_numel(x);
    if (nx == 0) {
        if (op != AQA_RED_SUM)
            return aqa_fail(AQA_EINVAL, "cpu reduce: max/min over an empty dimension");
        return aqa__cpu_fill(out, 0.0);
    }

    reduce_plan p;
    memset(&p, 0, sizeof p);
    p.op = op;
    p.dtype = x->dtype;
    p.es = aqa_dtype_size(x->dtype);
    p.xbase = aqa__ptr(x);
    p.obase = aqa__ptr(out);
    p.ibase = idx ? aqa__ptr(idx) : NULL;
    const int64_t es = (int64_t)p.es;

    /* Kept and reduced dims of size > 1, logical order. */
    int best_dim = -1; /* size>1 dim with the smallest |stride| in x */
    int64_t best_st = INT64_MAX;
    for (int d = 0; d < x->ndim; d++) {
        if (x->shape[d] <= 1) continue;
        int64_t st = x->stride[d] < 0 ? -x->stride[d] : x->stride[d];
        if (st < best_st || (st == best_st && ((dim_mask >> d) & 1u))) {
            best_st = st;
            best_dim = d;
        }
        if ((dim_mask >> d) & 1u) {
            int r = p.red.nd++;
            p.red.size[r] = x->shape[d];
            p.red.st[0][r] = x->stride[d] * es;
        } else {
            int k = p.kept.nd++;
            p.kept.size[k] = x->shape[d];
            p.kept.st[0][k] = x->stride[d] * es;
            p.kept.st[1][k] = out->stride[d] * es;
            p.kept.st[2][k] = idx ? idx->stride[d] * 8 : 0;
        }
    }
    bool row_mode = p.kept.nd == 0 || (best_dim >= 0 && ((dim_mask >> best_dim) & 1u));

    if (op == AQA_RED_SUM && row_mode && p.red.nd > 1) {
        /* Order does not matter for a sum: walk the reduced dims by decreasing stride. */
        for (int i = 1; i < p.red.nd; i++)
            for (int j = i; j > 0 && llabs(p.red.st[0][j]) > llabs(p.red.st[0][j - 1]); j--) {
                int64_t ts = p.red.size[j], tt = p.red.st[0][j];
                p.red.size[j] = p.red.size[j - 1];
                p.red.st[0][j] = p.red.st[0][j - 1];
                p.red.size[j - 1] = ts;
                p.red.st[0][j - 1] = tt;
            }
    }
    space_merge(&p.red, 1);
    space_merge(&p.kept, 3);

    if (row_mode) {
        /* The innermost reduced dim becomes the 1-D row. */
        if (p.red.nd == 0) {
            p.rn = 1;
            p.rs = es;
        } else {
            p.red.nd--;
            p.rn = p.red.size[p.red.nd];
            p.rs = p.red.st[0][p.red.nd];
        }
        if (nout == 1 && p.red.nd == 0 && p.rn >= PAR_MIN_WORK) {
            reduce_split(&p);
            return AQA_OK;
        }
        run_chunks(nout, nx, op == AQA_RED_SUM ? row_sum_chunk : row_arg_chunk, &p);
        return AQA_OK;
    }

    /* Column mode: pull the smallest-stride kept dim out as the vector dim. */
    int vk = -1;
    int64_t vbest = INT64_MAX;
    for (int k = 0; k < p.kept.nd; k++) {
        int64_t st = llabs(p.kept.st[0][k]);
        if (st <= vbest) { /* ties: the later (inner) dim */
            vbest = st;
            vk = k;
        }
    }
    p.cn = p.kept.size[vk];
    p.cx = p.kept.st[0][vk];
    p.co = p.kept.st[1][vk];
    p.ci = p.kept.st[2][vk];
    for (int k = vk; k + 1 < p.kept.nd; k++) {
        p.kept.size[k] = p.kept.size[k + 1];
        for (int o = 0; o < 3; o++) p.kept.st[o][k] = p.kept.st[o][k + 1];
    }
    p.kept.nd--;
    p.nblk = (p.cn + COL_BLOCK - 1) / COL_BLOCK;
    run_chunks(space_numel(&p.kept) * p.nblk, nx, col_chunk, &p);
    return AQA_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Softmax. */

/* The float32 row kernels, once per vector width (see cpu_softmax_row.h). */
#define SR_W 4
#define SR_SUFFIX _w4
#define SR_TARGET
#include "tensor/cpu_softmax_row.h"
#undef SR_W
#undef SR_SUFFIX
#undef SR_TARGET
#if defined(__x86_64__) && defined(__GNUC__)
#define SR_W 8
#define SR_SUFFIX _avx2
#define SR_TARGET __attribute__((target("avx2,fma")))
#include "tensor/cpu_softmax_row.h"
#undef SR_W
#undef SR_SUFFIX
#undef SR_TARGET
#define SR_W 16
#define SR_SUFFIX _avx512
#define SR_TARGET __attribute__((target("avx512f,avx512dq,avx2,fma")))
#include "tensor/cpu_softmax_row.h"
#undef SR_W
#undef SR_SUFFIX
#undef SR_TARGET
/* Which versions the CPU runs (tensor/cpu_isa.c; AQA_CPU_ISA=baseline|avx2 caps it). */
static inline bool have_avx2(void) { return aqa__cpu_isa() >= AQA_ISA_AVX2; }
static inline bool have_avx512(void) { return aqa__cpu_isa() >= AQA_ISA_AVX512; }
#define SR_DISPATCH(name, ...)                                                                    \
    (have_avx512() ? name##_avx512(__VA_ARGS__)                                                   \
                   : have_avx2() ? name##_avx2(__VA_ARGS__) : name##_w4(__VA_ARGS__))
#else
#define SR_DISPATCH(name, ...) name##_w4(__VA_ARGS__)
#endif

static double sum_row_f32_contig(const float *x, int64_t n) { return SR_DISPATCH(sr_sum_row, x, n); }
static float minmax_row_f32_contig(const float *x, int64_t n, bool is_max) {
    return is_max ? SR_DISPATCH(sr_max_row, x, n) : SR_DISPATCH(sr_min_row, x, n);
}
static void col_add_f32(float *acc, const float *x, int64_t n) { SR_DISPATCH(sr_add_row, acc, x, n); }

static void softmax_row_f32(float *y, const float *x, int64_t n, bool logmode) {
    SR_DISPATCH(sr_softmax_row, y, x, n, logmode);
}

static void softmax_back_row_f32(float *gx, const float *g, const float *y, int64_t n, bool logmode) {
    SR_DISPATCH(sr_softmax_back_row, gx, g, y, n, logmode);
}

static void softmax_row_f64(double *y, const double *x, int64_t n, bool logmode) {
    double m = -INFINITY;
    for (int64_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    for (int64_t i = 0; i < n; i++)
        if (x[i] != x[i]) { m = x[i]; break; }
    double s = 0.0;
    if (logmode) {
        for (int64_t i = 0; i < n; i++) s += exp(x[i] - m);
        double l = log(s);
        for (int64_t i = 0; i < n; i++) y[i] = (x[i] - m) - l;
    } else {
        for (int64_t i = 0; i < n; i++) {
            double e = exp(x[i] - m);
            y[i] = e;
            s += e;
        }
        double inv = 1.0 / s;
        for (int64_t i = 0; i < n; i++) y[i] *= inv;
    }
}

/* Backward of one row: gx = y * (g - <g, y>) (softmax) or g - exp(y) * sum(g) (log_softmax). */
static void softmax_back_row_f64(double *gx, const double *g, const double *y, int64_t n, bool logmode) {
    double s = 0.0;
    if (logmode) {
        for (int64_t i = 0; i < n; i++) s += g[i];
        for (int64_t i = 0; i < n; i++) gx[i] = g[i] - exp(y[i]) * s;
    } else {
        for (int64_t i = 0; i < n; i++) s += g[i] * y[i];
        for (int64_t i = 0; i < n; i++) gx[i] = y[i] * (g[i] - s);
    }
}

typedef struct softmax_plan {
    bool log;          /* log_softmax */
    bool backward;     /* softmax_backward: operands out=grad_x, in1=grad_y, in2=y */
    aqa_dtype dtype;   /* F32 or F64 */
    int64_t es;        /* element size */
    int64_t n;         /* length of each row (the softmax dim) */
    char *base[3];     /* out, in1, in2 first elements */
    int64_t st[3];     /* byte strides along the softmax dim */
    space rows;        /* all other dims, operands out, in1, in2 */
} softmax_plan;

static void softmax_chunk(void *vctx, int64_t begin, int64_t end) {
    const softmax_plan *p = vctx;
    int nops = p->backward ? 3 : 2;
    bool direct = true;
    for (int o = 0; o < nops; o++)
        if (p->st[o] != p->es && p->n > 1) direct = false;
    char *buf = NULL;
    if (!direct) {
        buf = malloc((size_t)(p->n * p->es * 3));
        if (!buf) return; /* cannot happen in practice; leaves the rows unwritten */
    }
    int64_t ctr[AQA_MAX_DIMS], off[3];
    space_seek(&p->rows, begin, ctr, off);
    for (int64_t r = begin; r < end; r++) {
        char *ptr[3];
        for (int o = 0; o < 3; o++) ptr[o] = p->base[o] ? p->base[o] + off[o] : NULL;
        char *row[3];
        if (direct) {
            for (int o = 0; o < 3; o++) row[o] = ptr[o];
        } else {
            for (int o = 0; o < 3; o++) row[o] = buf + o * p->n * p->es;
            for (int o = 1; o < nops; o++)
                for (int64_t i = 0; i < p->n; i++)
                    memcpy(row[o] + i * p->es, ptr[o] + i * p->st[o], (size_t)p->es);
        }
        if (p->dtype == AQA_F32) {
            if (p->backward)
                softmax_back_row_f32((float *)row[0], (const float *)row[1], (const float *)row[2], p->n, p->log);
            else
                softmax_row_f32((float *)row[0], (const float *)row[1], p->n, p->log);
        } else {
            if (p->backward)
                softmax_back_row_f64((double *)row[0], (const double *)row[1], (const double *)row[2], p->n, p->log);
            else
                softmax_row_f64((double *)row[0], (const double *)row[1], p->n, p->log);
        }
        if (!direct)
            for (int64_t i = 0; i < p->n; i++)
                memcpy(ptr[0] + i * p->st[0], row[0] + i * p->es, (size_t)p->es);
        space_next(&p->rows, ctr, off);
    }
    free(buf);
}

/* Softmax along a middle dim of a contiguous tensor: blocks [d, inner], one per outer index. */
typedef struct cols_plan {
    float *y;          /* output */
    const float *x;    /* input */
    int64_t d;         /* softmax dim length */
    int64_t inner;     /* product of the dims after it */
    bool log;          /* log_softmax */
    aqa_status failed; /* AQA_OK, or AQA_ENOMEM if a scratch allocation failed */
} cols_plan;

static void softmax_cols_chunk(void *vctx, int64_t begin, int64_t end) {
    cols_plan *p = vctx;
    float *scratch = malloc(sizeof(float) * 2 * (size_t)p->inner);
    if (!scratch) {
        p->failed = aqa_fail(AQA_ENOMEM, "cpu softmax: no memory for %lld scratch floats", (long long)p->inner);
        return;
    }
    for (int64_t o = begin; o < end; o++) {
        int64_t off = o * p->d * p->inner;
        SR_DISPATCH(sr_softmax_cols, p->y + off, p->x + off, p->d, p->inner, p->log, scratch,
                    scratch + p->inner);
    }
    free(scratch);
}

static aqa_status softmax_run(const char *what, aqa_tensor *out, const aqa_tensor *in1,
                              const aqa_tensor *in2, int dim, bool log) {
    const aqa_tensor *ops[3] = {out, in1, in2};
    int nops = in2 ? 3 : 2;
    if (out->dtype != AQA_F32 && out->dtype != AQA_F64)
        return aqa_fail(AQA_EINVAL, "%s: dtype %s is not floating point", what, aqa_dtype_name(out->dtype));
    for (int o = 1; o < nops; o++)
        if (ops[o]->dtype != out->dtype || !aqa_same_shape(ops[o], out))
            return aqa_fail(AQA_EINVAL, "%s: operands differ in shape or dtype", what);
    int nd = out->ndim;
    if (nd == 0) {
        dim = 0;
    } else if (dim < 0 || dim >= nd) {
        return aqa_fail(AQA_EINVAL, "%s: dim %d out of range for %d dims", what, dim, nd);
    }
    softmax_plan p;
    memset(&p, 0, sizeof p);
    p.log = log;
    p.backward = in2 != NULL;
    p.dtype = out->dtype;
    p.es = (int64_t)aqa_dtype_size(out->dtype);
    p.n = nd == 0 ? 1 : out->shape[dim];
    for (int o = 0; o < nops; o++) {
        p.base[o] = aqa__ptr(ops[o]);
        p.st[o] = nd == 0 ? p.es : ops[o]->stride[dim] * p.es;
    }
    for (int d = 0; d < nd; d++) {
        if (d == dim || out->shape[d] == 1) continue;
        int k = p.rows.nd++;
        p.rows.size[k] = out->shape[d];
        for (int o = 0; o < nops; o++) p.rows.st[o][k] = ops[o]->stride[d] * p.es;
    }
    space_merge(&p.rows, nops);
    int64_t total = aqa__shape_numel(nd, out->shape);
    if (total == 0) return AQA_OK;
    if (!p.backward && p.dtype == AQA_F32 && nd > 0 && dim < nd - 1 && aqa_is_contiguous(in1) &&
        aqa_is_contiguous(out)) {
        /* contiguous, dim not last: vectorise across the inner dims instead of gathering */
        cols_plan cp = {(float *)p.base[0], (const float *)p.base[1], p.n, 1, log, AQA_OK};
        for (int d = dim + 1; d < nd; d++) cp.inner *= out->shape[d];
        if (cp.inner > 1)
            return run_chunks(total / (p.n * cp.inner), total * 8, softmax_cols_chunk, &cp), cp.failed;
    }
    run_chunks(space_numel(&p.rows), total * 8, softmax_chunk, &p);
    return AQA_OK;
}

aqa_status aqa__cpu_softmax(aqa_tensor *out, const aqa_tensor *x, int dim, bool log) {
    return softmax_run(log ? "cpu log_softmax" : "cpu softmax", out, x, NULL, dim, log);
}

aqa_status aqa__cpu_softmax_backward(aqa_tensor *grad_x, const aqa_tensor *grad_y, const aqa_tensor *y,
                                     int dim, bool log) {
    return softmax_run(log ? "cpu log_softmax backward" : "cpu softmax backward", grad_x, grad_y, y,
                       dim, log);
}
