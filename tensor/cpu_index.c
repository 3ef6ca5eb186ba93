/* cpu_index.c: the CPU kernels of the indexing ops: index_select, index_add, gather and
 * scatter_add (backend.h slots, declared in cpu-impl.h).
 *
 * Every kernel first checks all of its indices against the indexed dimension and fails with a
 * message naming the offending value and the dimension size, so no kernel ever reads or writes
 * out of bounds.  The loops themselves run over aqa_iter rows: index_select/index_add build one
 * iterator for the slice that one index addresses (the operand without the indexed dimension)
 * and shift its base pointers per index; gather/scatter_add iterate over the index tensor's shape
 * with the indexed dimension's stride set to 0 and add index * stride inside the row.
 *
 * Accumulating kernels (index_add, scatter_add) visit the indices in order, so repeated indices
 * are summed in a fixed order: results are deterministic run to run. */
#include <stdint.h>
#include <string.h>

#include "tensor/cpu-impl.h"
#include "tensor/kernel-shared.h"
#include "tensor/iter.h"
#include "tensor/tensor-impl.h"

/* Work (elements) above which the loops are spread over threads. */
#define PARALLEL_MIN_WORK 32768

/* ---- geometry helpers ------------------------------------------------------------------ */

/* t without dimension dim (a 0-d tensor stays 0-d: it is treated as one element along dim 0). */
static aqa_tensor drop_dim(const aqa_tensor *t, int dim) {
    aqa_tensor v = aqa__geometry_of(t);
    if (t->ndim == 0) return v;
    for (int d = dim; d < t->ndim - 1; d++) {
        v.shape[d] = t->shape[d + 1];
        v.stride[d] = t->stride[d + 1];
    }
    v.ndim = t->ndim - 1;
    return v;
}

static int64_t size_along(const aqa_tensor *t, int dim) { return t->ndim ? t->shape[dim] : 1; }
static int64_t stride_along(const aqa_tensor *t, int dim) { return t->ndim ? t->stride[dim] : 0; }

/* Checks a 0-d/1-d int64 index against a dimension of size `size`. */
static aqa_status check_index_1d(const char *op, const aqa_tensor *index, int dim, int64_t size) {
    if (index->dtype != AQA_I64)
        return aqa_fail(AQA_EINVAL, "%s: index must be int64, got %s", op, aqa_dtype_name(index->dtype));
    if (index->ndim > 1)
        return aqa_fail(AQA_EINVAL, "%s: index must be 0-d or 1-d, got %d dimensions", op, index->ndim);
    const int64_t *ip = (const int64_t *)aqa__ptr(index);
    int64_t n = aqa_numel(index), s = index->ndim ? index->stride[0] : 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t v = ip[i * s];
        if (v < 0 || v >= size)
            return aqa_fail(AQA_EINVAL, "%s: index %lld is out of range for dimension %d with size %lld", op,
                            (long long)v, dim, (long long)size);
    }
    return AQA_OK;
}


/* ---- row functions ------------------------------------------------------------------------ */

/* Copies n elements of a fixed size; memcpy on contiguous rows. */
#define DEFINE_COPY_ROW(NAME, TYPE)                                                         \
    static void NAME(void *ctx, char **p, int64_t n, const int64_t *s) {                    \
        (void)ctx;                                                                          \
        if (s[0] == (int64_t)sizeof(TYPE) && s[1] == (int64_t)sizeof(TYPE)) {               \
            memcpy(p[0], p[1], (size_t)n * sizeof(TYPE));                                   \
            return;                                                                         \
        }                                                                                   \
        for (int64_t k = 0; k < n; k++) memcpy(p[0] + k * s[0], p[1] + k * s[1], sizeof(TYPE)); \
    }
DEFINE_COPY_ROW(copy_row_1, uint8_t)
DEFINE_COPY_ROW(copy_row_4, uint32_t)
DEFINE_COPY_ROW(copy_row_8, uint64_t)

static aqa_iter_inner_fn copy_row_for(size_t es) {
    return es == 1 ? copy_row_1 : es == 4 ? copy_row_4 : copy_row_8;
}

/* dst += src for n elements (operand 0 dst, operand 1 src). */
#define DEFINE_ADD_ROW(NAME, TYPE, OP)                                                      \
    static void NAME(void *ctx, char **p, int64_t n, const int64_t *s) {                    \
        (void)ctx;                                                                          \
        if (s[0] == (int64_t)sizeof(TYPE) && s[1] == (int64_t)sizeof(TYPE)) {               \
            TYPE *d = (TYPE *)p[0];                                                         \
            const TYPE *a = (const TYPE *)p[1];                                             \
            for (int64_t k = 0; k < n; k++) d[k] = OP(d[k], a[k]);                          \
            return;                                                                         \
        }                                                                                   \
        for (int64_t k = 0; k < n; k++) {                                                   \
            TYPE *d = (TYPE *)(p[0] + k * s[0]);                                            \
            *d = OP(*d, *(const TYPE *)(p[1] + k * s[1]));                                  \
        }                                                                                   \
    }
#define PLUS(a, b) ((a) + (b))
#define OR(a, b) ((uint8_t)((a) || (b)))
DEFINE_ADD_ROW(add_row_f32, float, PLUS)
DEFINE_ADD_ROW(add_row_f64, double, PLUS)
DEFINE_ADD_ROW(add_row_i64, int64_t, PLUS)
DEFINE_ADD_ROW(add_row_bool, uint8_t, OR)

static aqa_iter_inner_fn add_row_for(aqa_dtype dt) {
    switch (dt) {
    case AQA_F32: return add_row_f32;
    case AQA_F64: return add_row_f64;
    case AQA_I64: return add_row_i64;
    default: return add_row_bool;
    }
}

/* ---- index_select / index_add ---------------------------------------------------------------- */

aqa_status aqa__cpu_index_select(aqa_tensor *out, const aqa_tensor *x, int dim, const aqa_tensor *index) {
    const char *op = "index_select";
    int64_t size = size_along(x, dim);
    aqa_status st = check_index_1d(op, index, dim, size);
    if (st) return st;
    if (out->dtype != x->dtype)
        return aqa_fail(AQA_EINVAL, "%s: output dtype %s differs from input dtype %s", op,
                        aqa_dtype_name(out->dtype), aqa_dtype_name(x->dtype));
    int64_t n = aqa_numel(index);
    if (size_along(out, dim) != n) return aqa_fail(AQA_EINVAL, "%s: output size along %d is not the index count", op, dim);
    if (x->ndim && (st = aqa__check_same_but(op, out, x, dim))) return st;

    aqa_tensor xs = drop_dim(x, dim), os = drop_dim(out, dim);
    int64_t slice = aqa_numel(&xs);
    if (n == 0 || slice == 0) return AQA_OK;
    size_t es = aqa_dtype_size(x->dtype);
    aqa_iter it;
    aqa_iter_init(&it, 2, (const aqa_tensor *[]){&os, &xs});
    aqa_iter_inner_fn row = copy_row_for(es);
    int64_t xstep = stride_along(x, dim) * (int64_t)es, ostep = stride_along(out, dim) * (int64_t)es;
    const int64_t *ip = (const int64_t *)aqa__ptr(index);
    int64_t is = index->ndim ? index->stride[0] : 0;
    if (slice == 1) { /* 1-d input: one element per index, no iterator needed */
        char *o = aqa__ptr(out), *xb = aqa__ptr(x);
        for (int64_t i = 0; i < n; i++) memcpy(o + i * ostep, xb + ip[i * is] * xstep, es);
        return AQA_OK;
    }
    /* Indices write disjoint output slices: spread them over threads when there are enough;
     * otherwise let the iterator split the (large) slice itself. */
    int outer = n >= 8 && n * slice > PARALLEL_MIN_WORK;
#pragma omp parallel for schedule(static) if (outer)
    for (int64_t i = 0; i < n; i++) {
        aqa_iter local = it;
        local.base[0] += i * ostep;
        local.base[1] += ip[i * is] * xstep;
        aqa_iter_for_each(&local, row, NULL, !outer);
    }
    return AQA_OK;
}

aqa_status aqa__cpu_index_add(aqa_tensor *out, int dim, const aqa_tensor *index, const aqa_tensor *src) {
    const char *op = "index_add";
    int64_t size = size_along(out, dim);
    aqa_status st = check_index_1d(op, index, dim, size);
    if (st) return st;
    if (out->dtype != src->dtype)
        return aqa_fail(AQA_EINVAL, "%s: source dtype %s differs from output dtype %s", op,
                        aqa_dtype_name(src->dtype), aqa_dtype_name(out->dtype));
    int64_t n = aqa_numel(index);
    if (size_along(src, dim) != n)
        return aqa_fail(AQA_EINVAL, "%s: source has %lld entries along dimension %d but there are %lld indices", op,
                        (long long)size_along(src, dim), dim, (long long)n);
    if (out->ndim && (st = aqa__check_same_but(op, out, src, dim))) return st;

    aqa_tensor os = drop_dim(out, dim), ss = drop_dim(src, dim);
    int64_t slice = aqa_numel(&os);
    if (n == 0 || slice == 0) return AQA_OK;
    int64_t es = (int64_t)aqa_dtype_size(out->dtype);
    aqa_iter it;
    aqa_iter_init(&it, 2, (const aqa_tensor *[]){&os, &ss});
    aqa_iter_inner_fn row = add_row_for(out->dtype);
    int64_t ostep = stride_along(out, dim) * es, sstep = stride_along(src, dim) * es;
    const int64_t *ip = (const int64_t *)aqa__ptr(index);
    int64_t is = index->ndim ? index->stride[0] : 0;
    if (slice == 1) { /* 1-d output: one element per index */
        char *ob = aqa__ptr(out), *sb = aqa__ptr(src);
        for (int64_t i = 0; i < n; i++) {
            char *p[2] = {ob + ip[i * is] * ostep, sb + i * sstep};
            row(NULL, p, 1, (const int64_t[]){es, es});
        }
        return AQA_OK;
    }
    /* Sequential over indices (repeated indices accumulate in order); within a slice the rows are
     * independent, so the iterator may split a large slice over threads. */
    for (int64_t i = 0; i < n; i++) {
        aqa_iter local = it;
        local.base[0] += ip[i * is] * ostep;
        local.base[1] += i * sstep;
        aqa_iter_for_each(&local, row, NULL, 1);
    }
    return AQA_OK;
}

/* ---- gather / scatter_add ------------------------------------------------------------------ */

/* State of the index check and of the gather/scatter rows. */
typedef struct index_ctx {
    int64_t size;  /* size of the indexed dimension */
    int64_t step;  /* byte stride of the indexed dimension in the indexed operand */
    int bad;       /* an index was out of range (check pass) */
    int64_t value; /* the first such index */
} index_ctx;

/* Check pass over the index (operand 0); sequential, so the first bad value is well defined. */
static void check_row(void *ctx, char **p, int64_t n, const int64_t *s) {
    index_ctx *c = ctx;
    if (c->bad) return;
    for (int64_t k = 0; k < n; k++) {
        int64_t v = *(const int64_t *)(p[0] + k * s[0]);
        if (v < 0 || v >= c->size) {
            c->bad = 1;
            c->value = v;
            return;
        }
    }
}


/* Shapes as above, then every index value (a sequential pass, before anything is written). */
static aqa_status check_gather_index(const char *op, const aqa_tensor *self, int dim, const aqa_tensor *index,
                                     const aqa_tensor *src) {
    aqa_status st = aqa__check_gather_shapes(op, self, dim, index, src);
    if (st || aqa_numel(index) == 0) return st;
    index_ctx c = {.size = size_along(self, dim)};
    aqa_iter it;
    aqa_iter_init(&it, 1, (const aqa_tensor *[]){index});
    aqa_iter_for_each(&it, check_row, &c, 0);
    if (c.bad)
        return aqa_fail(AQA_EINVAL, "%s: index %lld is out of range for dimension %d with size %lld", op,
                        (long long)c.value, dim, (long long)c.size);
    return AQA_OK;
}

/* self's storage seen with the index's shape, the indexed dimension's stride set to 0. */
static aqa_tensor index_shaped(const aqa_tensor *self, int dim, const aqa_tensor *index) {
    aqa_tensor v = aqa__geometry_of(self);
    v.ndim = index->ndim;
    for (int d = 0; d < index->ndim; d++) {
        v.shape[d] = index->shape[d];
        v.stride[d] = d == dim ? 0 : stride_along(self, d);
    }
    return v;
}

/* out[k] = x[k + index[k] * step] (operands out, index, x).  A bad index is recorded (under a
 * lock: this runs on several threads, and only on the error path) and its element skipped; the
 * caller then fails, so checking costs no separate pass over the index. */
#define DEFINE_GATHER_ROW(NAME, TYPE)                                                       \
    static void NAME(void *ctx, char **p, int64_t n, const int64_t *s) {                    \
        index_ctx *c = ctx;                                                                 \
        const int64_t size = c->size, step = c->step;                                       \
        char *o = p[0], *x = p[2];                                                          \
        const char *ix = p[1];                                                              \
        const int64_t so = s[0], si = s[1], sx = s[2];                                      \
        for (int64_t k = 0; k < n; k++) {                                                   \
            int64_t v = *(const int64_t *)(ix + k * si);                                    \
            if ((uint64_t)v >= (uint64_t)size) {                                            \
                _Pragma("omp critical(aqa_gather_bad)") if (!c->bad) {                      \
                    c->bad = 1;                                                             \
                    c->value = v;                                                           \
                }                                                                           \
                continue;                                                                   \
            }                                                                               \
            TYPE t;                                                                         \
            memcpy(&t, x + k * sx + v * step, sizeof(TYPE));                                \
            memcpy(o + k * so, &t, sizeof(TYPE));                                           \
        }                                                                                   \
    }
DEFINE_GATHER_ROW(gather_row_1, uint8_t)
DEFINE_GATHER_ROW(gather_row_4, uint32_t)
DEFINE_GATHER_ROW(gather_row_8, uint64_t)

aqa_status aqa__cpu_gather(aqa_tensor *out, const aqa_tensor *x, int dim, const aqa_tensor *index) {
    const char *op = "gather";
    aqa_status st = aqa__check_gather_shapes(op, x, dim, index, NULL);
    if (st) return st;
    if (out->dtype != x->dtype || !aqa_same_shape(out, index))
        return aqa_fail(AQA_EINVAL, "%s: output must have the input's dtype and the index's shape", op);
    if (aqa_numel(index) == 0) return AQA_OK;
    size_t es = aqa_dtype_size(x->dtype);
    index_ctx c = {.size = size_along(x, dim), .step = stride_along(x, dim) * (int64_t)es};
    aqa_tensor xv = index_shaped(x, dim, index);
    aqa_iter it;
    aqa_iter_init(&it, 3, (const aqa_tensor *[]){out, index, &xv});
    aqa_iter_for_each(&it, es == 1 ? gather_row_1 : es == 4 ? gather_row_4 : gather_row_8, &c, 1);
    if (c.bad)
        return aqa_fail(AQA_EINVAL, "%s: index %lld is out of range for dimension %d with size %lld", op,
                        (long long)c.value, dim, (long long)c.size);
    return AQA_OK;
}

/* out[k + index[k] * step] += src[k] (operands out, index, src). */
#define DEFINE_SCATTER_ROW(NAME, TYPE, OP)                                                  \
    static void NAME(void *ctx, char **p, int64_t n, const int64_t *s) {                    \
        const index_ctx *c = ctx;                                                           \
        for (int64_t k = 0; k < n; k++) {                                                   \
            int64_t v = *(const int64_t *)(p[1] + k * s[1]);                                \
            TYPE *d = (TYPE *)(p[0] + k * s[0] + v * c->step);                              \
            *d = OP(*d, *(const TYPE *)(p[2] + k * s[2]));                                  \
        }                                                                                   \
    }
DEFINE_SCATTER_ROW(scatter_row_f32, float, PLUS)
DEFINE_SCATTER_ROW(scatter_row_f64, double, PLUS)
DEFINE_SCATTER_ROW(scatter_row_i64, int64_t, PLUS)
DEFINE_SCATTER_ROW(scatter_row_bool, uint8_t, OR)

aqa_status aqa__cpu_scatter_add(aqa_tensor *out, int dim, const aqa_tensor *index, const aqa_tensor *src) {
    const char *op = "scatter_add";
    aqa_status st = check_gather_index(op, out, dim, index, src);
    if (st) return st;
    if (out->dtype != src->dtype)
        return aqa_fail(AQA_EINVAL, "%s: source dtype %s differs from output dtype %s", op,
                        aqa_dtype_name(src->dtype), aqa_dtype_name(out->dtype));
    if ((src->ndim ? src->ndim : 1) != (index->ndim ? index->ndim : 1))
        return aqa_fail(AQA_EINVAL, "%s: source has %d dimensions, the index %d", op, src->ndim, index->ndim);
    if (aqa_numel(index) == 0) return AQA_OK;
    index_ctx c = {.size = size_along(out, dim), .step = stride_along(out, dim) * (int64_t)aqa_dtype_size(out->dtype)};
    aqa_tensor ov = index_shaped(out, dim, index);
    aqa_tensor sv = aqa__geometry_of(src);
    sv.ndim = index->ndim;
    for (int d = 0; d < index->ndim; d++) {
        sv.shape[d] = index->shape[d];
        sv.stride[d] = stride_along(src, d);
    }
    aqa_iter_inner_fn row = out->dtype == AQA_F32   ? scatter_row_f32
                            : out->dtype == AQA_F64 ? scatter_row_f64
                            : out->dtype == AQA_I64 ? scatter_row_i64
                                                    : scatter_row_bool;
    aqa_iter it;
    aqa_iter_init(&it, 3, (const aqa_tensor *[]){&ov, index, &sv});
    /* Sequential: different index positions may hit the same output element. */
    aqa_iter_for_each(&it, row, &c, 0);
    return AQA_OK;
}
