/* cpu_copy.c: CPU kernels for strided copy with dtype conversion and fill. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/cpu-impl.h"
#include "tensor/iter.h"
#include "tensor/tensor-impl.h"

/* One inner loop per (destination, source) dtype pair. */
#define COPY_LOOP(NAME, DT, ST, CONV)                                                          \
    static void NAME(void *ctx, char **p, int64_t n, const int64_t *s) {                       \
        (void)ctx;                                                                              \
        if (s[0] == sizeof(DT) && s[1] == sizeof(ST)) {                                         \
            DT *d = (DT *)p[0];                                                                 \
            const ST *x = (const ST *)p[1];                                                     \
            for (int64_t i = 0; i < n; i++) d[i] = CONV(x[i]);                                  \
        } else {                                                                                \
            for (int64_t i = 0; i < n; i++)                                                     \
                *(DT *)(p[0] + i * s[0]) = CONV(*(const ST *)(p[1] + i * s[1]));                \
        }                                                                                       \
    }
#define AS_IS(v) (v)
#define TO_BOOL(v) ((uint8_t)((v) != 0))
COPY_LOOP(copy_f32_f32, float, float, AS_IS)
COPY_LOOP(copy_f32_f64, float, double, (float))
COPY_LOOP(copy_f32_i64, float, int64_t, (float))
COPY_LOOP(copy_f32_b, float, uint8_t, (float))
COPY_LOOP(copy_f64_f32, double, float, (double))
COPY_LOOP(copy_f64_f64, double, double, AS_IS)
COPY_LOOP(copy_f64_i64, double, int64_t, (double))
COPY_LOOP(copy_f64_b, double, uint8_t, (double))
COPY_LOOP(copy_i64_f32, int64_t, float, (int64_t))
COPY_LOOP(copy_i64_f64, int64_t, double, (int64_t))
COPY_LOOP(copy_i64_i64, int64_t, int64_t, AS_IS)
COPY_LOOP(copy_i64_b, int64_t, uint8_t, (int64_t))
COPY_LOOP(copy_b_f32, uint8_t, float, TO_BOOL)
COPY_LOOP(copy_b_f64, uint8_t, double, TO_BOOL)
COPY_LOOP(copy_b_i64, uint8_t, int64_t, TO_BOOL)
COPY_LOOP(copy_b_b, uint8_t, uint8_t, AS_IS)

/* indexed [dst][src] by aqa_dtype (F32, F64, I64, BOOL) */
static const aqa_iter_inner_fn copy_table[4][4] = {
    {copy_f32_f32, copy_f32_f64, copy_f32_i64, copy_f32_b},
    {copy_f64_f32, copy_f64_f64, copy_f64_i64, copy_f64_b},
    {copy_i64_f32, copy_i64_f64, copy_i64_i64, copy_i64_b},
    {copy_b_f32, copy_b_f64, copy_b_i64, copy_b_b},
};

aqa_status aqa__cpu_copy(aqa_tensor *dst, const aqa_tensor *src) {
    if (!aqa_same_shape(dst, src)) return aqa_fail(AQA_EINVAL, "cpu copy: shapes differ");
    aqa_iter it;
    const aqa_tensor *ops[2] = {dst, src};
    aqa_iter_init(&it, 2, ops);
    aqa_iter_for_each(&it, copy_table[dst->dtype][src->dtype], NULL, 1);
    return AQA_OK;
}

#define FILL_LOOP(NAME, DT)                                                    \
    static void NAME(void *ctx, char **p, int64_t n, const int64_t *s) {       \
        DT v = *(const DT *)ctx;                                                \
        if (s[0] == sizeof(DT)) {                                               \
            DT *d = (DT *)p[0];                                                 \
            for (int64_t i = 0; i < n; i++) d[i] = v;                           \
        } else {                                                                \
            for (int64_t i = 0; i < n; i++) *(DT *)(p[0] + i * s[0]) = v;       \
        }                                                                       \
    }
FILL_LOOP(fill_f32, float)
FILL_LOOP(fill_f64, double)
FILL_LOOP(fill_i64, int64_t)
FILL_LOOP(fill_b, uint8_t)

aqa_status aqa__cpu_fill(aqa_tensor *dst, double value) {
    union { float f; double d; int64_t i; uint8_t b; } v;
    aqa_iter_inner_fn fn;
    switch (dst->dtype) {
    case AQA_F32: v.f = (float)value; fn = fill_f32; break;
    case AQA_F64: v.d = value; fn = fill_f64; break;
    case AQA_I64: v.i = (int64_t)value; fn = fill_i64; break;
    default: v.b = value != 0; fn = fill_b; break;
    }
    aqa_iter it;
    const aqa_tensor *ops[1] = {dst};
    aqa_iter_init(&it, 1, ops);
    aqa_iter_for_each(&it, fn, &v, 1);
    return AQA_OK;
}
