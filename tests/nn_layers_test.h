/* nn_layers_test.h: helpers shared by tests/test_nn_layers.c and tests/test_attention.c
 * (golden-file access, closeness checks, random leaves).  Include after tests/testlib.h. */
#ifndef AQA_NN_LAYERS_TEST_H
#define AQA_NN_LAYERS_TEST_H

#include <unistd.h>

#include "autograd/autograd.h"
#include "nn/tensor_file.h"
#include "tensor/ops.h"
#include "tensor/tensor.h"

#define GOLDEN_FILE "golden_nn_layers.safetensors"

/* True when the golden file is readable (tests SKIP otherwise). */
__attribute__((unused)) static bool have_golden(void) { return access(test_data_path(GOLDEN_FILE), R_OK) == 0; }

/* A golden tensor as float32 (caller/scope owned), NULL + FAIL line when absent. */
__attribute__((unused)) static aqa_tensor *golden_at(const char *file, int line, const char *name) {
    aqa_tensor *t = aqa_load_tensor(test_data_path(GOLDEN_FILE), name, AQA_F32);
    if (!t) test_fail_at(file, line, "golden %s: %s", name, aqa_last_error());
    return t;
}
#define GOLDEN(name) golden_at(__FILE__, __LINE__, (name))

/* A golden tensor in its stored dtype class: bool masks as bool, floats as f32. */
__attribute__((unused)) static aqa_tensor *golden_mask_at(const char *file, int line, const char *name) {
    aqa_st_file *f = NULL;
    if (aqa_st_open(test_data_path(GOLDEN_FILE), &f) != AQA_OK) {
        test_fail_at(file, line, "golden file: %s", aqa_last_error());
        return NULL;
    }
    int i = aqa_st_find(f, name);
    aqa_tensor *t = NULL;
    if (i < 0) {
        test_fail_at(file, line, "golden %s absent", name);
    } else {
        const aqa_st_tensor *st = aqa_st_get(f, i);
        bool is_bool = st->dtype == AQA_ST_BOOL;
        t = aqa_st_load(f, name, is_bool ? AQA_BOOL : AQA_F32);
        if (!t) test_fail_at(file, line, "golden %s: %s", name, aqa_last_error());
    }
    aqa_st_close(f);
    return t;
}
#define GOLDEN_MASK(name) golden_mask_at(__FILE__, __LINE__, (name))

/* |got - exp| <= atol + rtol * |exp| everywhere (NaN/inf must match), same shape. */
__attribute__((unused)) static void check_close_at(const char *file, int line, const char *what, const aqa_tensor *got,
                                                   const aqa_tensor *exp, double rtol, double atol) {
    if (!got || !exp) {
        test_fail_at(file, line, "%s: %s is NULL (%s)", what, got ? "expected" : "result", aqa_last_error());
        return;
    }
    char b1[64], b2[64];
    if (!aqa_same_shape(got, exp)) {
        test_fail_at(file, line, "%s: shape %s, expected %s", what, aqa_shape_str(got, b1, sizeof b1),
                     aqa_shape_str(exp, b2, sizeof b2));
        return;
    }
    int64_t n = aqa_numel(got);
    double *a = malloc(sizeof(double) * (size_t)(n + 1)), *b = malloc(sizeof(double) * (size_t)(n + 1));
    aqa_copy_to_host(got, a, AQA_F64);
    aqa_copy_to_host(exp, b, AQA_F64);
    double worst = 0;
    int64_t wi = -1;
    for (int64_t i = 0; i < n; i++) {
        bool ok;
        if (isnan(b[i]) || isinf(b[i])) ok = (isnan(b[i]) && isnan(a[i])) || a[i] == b[i];
        else ok = fabs(a[i] - b[i]) <= atol + rtol * fabs(b[i]);
        double e = isfinite(b[i]) ? fabs(a[i] - b[i]) / (atol + rtol * fabs(b[i])) : (ok ? 0 : INFINITY);
        if (!ok && (wi < 0 || e > worst)) {
            worst = e;
            wi = i;
        }
    }
    if (wi >= 0)
        test_fail_at(file, line, "%s: element %lld = %.9g, expected %.9g (rtol %g, atol %g)", what, (long long)wi,
                     a[wi], b[wi], rtol, atol);
    free(a);
    free(b);
}
#define CHECK_CLOSE(got, exp, rtol, atol) check_close_at(__FILE__, __LINE__, #got, (got), (exp), (rtol), (atol))

__attribute__((unused)) static void check_grad_at(const char *file, int line, aqa_gradcheck_result r) {
    if (!r.ok) test_fail_at(file, line, "gradcheck: %s", r.message);
}
#define CHECK_GRAD(fn, inputs, n, user) \
    check_grad_at(__FILE__, __LINE__, aqa_gradcheck((fn), (inputs), (n), (user), 1e-6, 1e-6, 1e-5))

/* A leaf N(0, scale^2) tensor from the generator, requiring grad (caller/scope owned). */
__attribute__((unused)) static aqa_tensor *rand_leaf(aqa_generator *g, int ndim, const int64_t *shape, aqa_dtype dt,
                                                     double scale) {
    aqa_tensor *t = aqa_randn(ndim, shape, dt, g);
    if (t && scale != 1.0) aqa_mul_scalar_(t, scale);
    return aqa_requires_grad(t, true);
}

/* A leaf copy of t requiring grad. */
__attribute__((unused)) static aqa_tensor *leaf_of(aqa_tensor *t) {
    return t ? aqa_requires_grad(aqa_clone(aqa_detach(t)), true) : NULL;
}

#endif /* AQA_NN_LAYERS_TEST_H */
