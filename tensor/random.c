/* random.c: Philox4x32-10 counter-based generator and the random creation functions.
 *
 * A generator is (seed, offset).  Each draw of n elements uses counter blocks offset ..
 * offset + blocks - 1 and then advances offset, so results depend only on the seed and the
 * sequence of draws, never on the device or thread count. */
#include <stdlib.h>

#include "tensor/backend.h"
#include "tensor/tensor-impl.h"

void aqa_philox4x32(uint64_t key, uint64_t counter, uint32_t out[4]) {
    uint32_t c0 = (uint32_t)counter, c1 = (uint32_t)(counter >> 32), c2 = 0, c3 = 0;
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

static aqa_generator default_gen = {.seed = 67280421310721ull, .offset = 0};

void aqa_manual_seed(uint64_t seed) {
    default_gen.seed = seed;
    default_gen.offset = 0;
}

aqa_generator *aqa_default_generator(void) { return &default_gen; }

/* Fills t (contiguous) and advances the generator by the blocks used. */
static aqa_status draw(aqa_tensor *t, int kind, double a, double b, aqa_generator *gen) {
    if (!gen) gen = &default_gen;
    int64_t n = aqa_numel(t);
    const aqa_backend *be = aqa_backend_for(t->storage->device);
    aqa_status st = be->random(t, kind, a, b, gen->seed, gen->offset);
    gen->offset += (uint64_t)(kind == 1 ? (n + 1) / 2 : (n + 3) / 4);
    return st;
}

static aqa_tensor *make_random(int ndim, const int64_t *shape, aqa_dtype dtype, int kind, double a, double b,
                               aqa_generator *gen) {
    aqa_tensor *t = aqa__new_unowned(ndim, shape, dtype, aqa_default_device());
    if (!t) return NULL;
    if (draw(t, kind, a, b, gen) != AQA_OK) {
        aqa__release(t);
        return NULL;
    }
    return aqa__own(t);
}

aqa_tensor *aqa_rand(int ndim, const int64_t *shape, aqa_dtype dtype, aqa_generator *gen) {
    if (!aqa_dtype_is_float(dtype)) return aqa_fail_null("aqa_rand: dtype must be floating, got %s", aqa_dtype_name(dtype));
    return make_random(ndim, shape, dtype, 0, 0.0, 1.0, gen);
}

aqa_tensor *aqa_randn(int ndim, const int64_t *shape, aqa_dtype dtype, aqa_generator *gen) {
    if (!aqa_dtype_is_float(dtype)) return aqa_fail_null("aqa_randn: dtype must be floating, got %s", aqa_dtype_name(dtype));
    return make_random(ndim, shape, dtype, 1, 0.0, 1.0, gen);
}

aqa_tensor *aqa_randint(int64_t low, int64_t high, int ndim, const int64_t *shape, aqa_generator *gen) {
    if (high <= low || high - low > 4294967296LL)
        return aqa_fail_null("aqa_randint: need low < high and high - low <= 2^32 (got %lld, %lld)", (long long)low,
                             (long long)high);
    return make_random(ndim, shape, AQA_I64, 2, (double)low, (double)high, gen);
}

aqa_tensor *aqa_randperm(int64_t n, aqa_generator *gen) {
    if (n < 0) return aqa_fail_null("aqa_randperm: n must be >= 0, got %lld", (long long)n);
    if (!gen) gen = &default_gen;
    int64_t *p = malloc(sizeof *p * (size_t)(n ? n : 1));
    if (!p) return aqa_fail_null("aqa_randperm: out of memory");
    for (int64_t i = 0; i < n; i++) p[i] = i;
    /* Fisher-Yates, one Philox word per swap */
    for (int64_t i = n - 1; i > 0; i--) {
        uint32_t w[4];
        aqa_philox4x32(gen->seed, gen->offset + (uint64_t)(n - 1 - i) / 4, w);
        int64_t j = (int64_t)(w[(n - 1 - i) % 4] % (uint64_t)(i + 1));
        int64_t tmp = p[i];
        p[i] = p[j];
        p[j] = tmp;
    }
    gen->offset += (uint64_t)(n + 3) / 4;
    aqa_tensor *t = aqa_from_data(p, 1, &n, AQA_I64);
    free(p);
    return t;
}

static aqa_status fill_random(aqa_tensor *t, int kind, double a, double b, aqa_generator *gen, const char *op) {
    if (!t) return aqa_fail(AQA_EINVAL, "%s: NULL tensor", op);
    if (!aqa__alive(op, t)) return AQA_ESTATE;
    aqa__bump_version(t, op);
    if (aqa_is_contiguous(t)) return draw(t, kind, a, b, gen);
    aqa_tensor *tmp = aqa__new_unowned(t->ndim, t->shape, t->dtype, t->storage->device);
    if (!tmp) return aqa_last_status();
    aqa_status st = draw(tmp, kind, a, b, gen);
    if (st == AQA_OK) st = aqa_backend_for(t->storage->device)->copy(t, tmp);
    aqa__release(tmp);
    return st;
}

aqa_status aqa_uniform_(aqa_tensor *t, double low, double high, aqa_generator *gen) {
    return fill_random(t, 0, low, high, gen, "aqa_uniform_");
}

aqa_status aqa_normal_(aqa_tensor *t, double mean, double std, aqa_generator *gen) {
    return fill_random(t, 1, mean, std, gen, "aqa_normal_");
}
