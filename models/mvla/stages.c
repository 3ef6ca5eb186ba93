/* stages.c: stage split matrices (pooling, TSA interpolation) and stage indices; see stages.h. */
#include "models/mvla/stages.h"

#include <math.h>
#include <stdlib.h>

#include "ops/ops.h"

/* Copies boundaries to a malloc'd host array after checking the shape; NULL on error. */
static int64_t *host_boundaries(const aqa_tensor *b, int64_t *B, int64_t *L) {
    if (!b) return aqa_fail_null("stage boundaries: NULL tensor");
    if (b->ndim != 2 || b->dtype != AQA_I64) return aqa_fail_null("stage boundaries: expected I64 [B, L]");
    *B = b->shape[0];
    *L = b->shape[1];
    int64_t *h = malloc(sizeof *h * (size_t)(*B * *L + 1));
    if (!h) return aqa_fail_null("stage boundaries: out of memory");
    if (aqa_copy_to_host(b, h, AQA_I64) != AQA_OK) {
        free(h);
        return NULL;
    }
    return h;
}

aqa_status aqa_stage_check_boundaries(const aqa_tensor *boundaries, int64_t T, const char *what) {
    int64_t B, L;
    int64_t *h = host_boundaries(boundaries, &B, &L);
    if (!h) return aqa_fail(AQA_EINVAL, "%s: %s", what, aqa_last_error());
    for (int64_t i = 0; i < B; i++) {
        int64_t prev = 0;
        for (int64_t l = 0; l < L; l++) {
            int64_t v = h[i * L + l];
            if (v <= prev || v >= T) {
                free(h);
                return aqa_fail(AQA_EINVAL, "%s: sample %lld boundary %lld = %lld must be in (%lld, %lld)", what,
                                (long long)i, (long long)l, (long long)v, (long long)prev, (long long)T);
            }
            prev = v;
        }
    }
    free(h);
    return AQA_OK;
}

/* Start of stage s of a sample (h points to its L boundaries). */
static int64_t stage_start(const int64_t *h, int64_t s) { return s == 0 ? 0 : h[s - 1]; }
static int64_t stage_end(const int64_t *h, int64_t s, int64_t L, int64_t T) { return s == L ? T : h[s]; }

static aqa_tensor *from_host(double *m, int ndim, const int64_t *shape, aqa_dtype dtype) {
    aqa_tensor *t = aqa_from_data(m, ndim, shape, AQA_F64);
    free(m);
    if (!t || dtype == AQA_F64) return t;
    aqa_tensor *c = aqa_to_dtype(t, dtype);
    aqa_tensor_free(t);
    return c;
}

aqa_tensor *aqa_stage_pool_matrix(const aqa_tensor *boundaries, int64_t T, aqa_dtype dtype) {
    if (aqa_stage_check_boundaries(boundaries, T, "aqa_stage_pool_matrix") != AQA_OK) return NULL;
    int64_t B, L;
    int64_t *h = host_boundaries(boundaries, &B, &L);
    if (!h) return NULL;
    int64_t S = L + 1;
    double *m = calloc((size_t)(B * S * T + 1), sizeof *m);
    if (!m) {
        free(h);
        return aqa_fail_null("aqa_stage_pool_matrix: out of memory");
    }
    for (int64_t i = 0; i < B; i++)
        for (int64_t s = 0; s < S; s++) {
            int64_t a = stage_start(h + i * L, s), e = stage_end(h + i * L, s, L, T);
            for (int64_t t = a; t < e; t++) m[(i * S + s) * T + t] = 1.0 / (double)(e - a);
        }
    free(h);
    return from_host(m, 3, (int64_t[]){B, S, T}, dtype);
}

aqa_tensor *aqa_stage_interp_matrix(const aqa_tensor *boundaries, int64_t T, int64_t K, aqa_dtype dtype) {
    if (K < 1) return aqa_fail_null("aqa_stage_interp_matrix: K = %lld must be >= 1", (long long)K);
    if (aqa_stage_check_boundaries(boundaries, T, "aqa_stage_interp_matrix") != AQA_OK) return NULL;
    int64_t B, L;
    int64_t *h = host_boundaries(boundaries, &B, &L);
    if (!h) return NULL;
    int64_t S = L + 1;
    double *m = calloc((size_t)(B * S * K * T + 1), sizeof *m);
    if (!m) {
        free(h);
        return aqa_fail_null("aqa_stage_interp_matrix: out of memory");
    }
    for (int64_t i = 0; i < B; i++)
        for (int64_t s = 0; s < S; s++) {
            int64_t a = stage_start(h + i * L, s), n = stage_end(h + i * L, s, L, T) - a;
            for (int64_t k = 0; k < K; k++) {
                double *row = m + ((i * S + s) * K + k) * T;
                /* align_corners=True: source position k (n - 1) / (K - 1); torch computes the
                 * scale (n - 1) / (K - 1) first, in float, then multiplies */
                double pos = (K > 1 && n > 1) ? (double)(float)((double)(n - 1) / (double)(K - 1)) * (double)k : 0.0;
                int64_t lo = (int64_t)floor(pos);
                if (lo > n - 1) lo = n - 1;
                int64_t hi = lo + 1 < n ? lo + 1 : n - 1;
                double w = pos - (double)lo;
                row[a + lo] += 1.0 - w;
                row[a + hi] += w;
            }
        }
    free(h);
    return from_host(m, 3, (int64_t[]){B, S * K, T}, dtype);
}

aqa_tensor *aqa_stage_of_steps(const aqa_tensor *boundaries, int64_t T) {
    if (aqa_stage_check_boundaries(boundaries, T, "aqa_stage_of_steps") != AQA_OK) return NULL;
    int64_t B, L;
    int64_t *h = host_boundaries(boundaries, &B, &L);
    if (!h) return NULL;
    int64_t *ids = malloc(sizeof *ids * (size_t)(B * T + 1));
    if (!ids) {
        free(h);
        return aqa_fail_null("aqa_stage_of_steps: out of memory");
    }
    for (int64_t i = 0; i < B; i++) {
        int64_t s = 0;
        for (int64_t t = 0; t < T; t++) {
            while (s < L && t >= h[i * L + s]) s++;
            ids[i * T + t] = s;
        }
    }
    free(h);
    aqa_tensor *r = aqa_from_data(ids, 2, (int64_t[]){B, T}, AQA_I64);
    free(ids);
    return r;
}

aqa_tensor *aqa_stage_on_device(aqa_tensor *t, const aqa_tensor *like) {
    if (!t || !like) return t;
    aqa_device d = aqa_tensor_device(like);
    return aqa_device_equal(aqa_tensor_device(t), d) ? t : aqa_to_device(t, d);
}

aqa_tensor *aqa_stage_mean(aqa_tensor *x, const aqa_tensor *boundaries) {
    if (!x || x->ndim != 3) return aqa_fail_null("aqa_stage_mean: x must be [B, T, C]");
    if (!boundaries || boundaries->ndim != 2 || boundaries->shape[0] != x->shape[0])
        return aqa_fail_null("aqa_stage_mean: boundaries must be I64 [B, L] with x's batch");
    aqa_scope_begin();
    aqa_tensor *m = aqa_stage_on_device(aqa_stage_pool_matrix(boundaries, x->shape[1], x->dtype), x);
    aqa_tensor *y = m ? aqa_keep(aqa_matmul(m, x)) : NULL;
    aqa_scope_end();
    return y;
}

aqa_tensor *aqa_stage_even_boundaries(int64_t B, int64_t L, int64_t T) {
    if (B < 0 || L < 0 || T < L + 1) return aqa_fail_null("aqa_stage_even_boundaries: bad sizes");
    int64_t *h = malloc(sizeof *h * (size_t)(B * L + 1));
    if (!h) return aqa_fail_null("aqa_stage_even_boundaries: out of memory");
    for (int64_t i = 0; i < B; i++)
        for (int64_t l = 0; l < L; l++) h[i * L + l] = (int64_t)llround((double)((l + 1) * T) / (double)(L + 1));
    aqa_tensor *r = aqa_from_data(h, 2, (int64_t[]){B, L}, AQA_I64);
    free(h);
    return r;
}
