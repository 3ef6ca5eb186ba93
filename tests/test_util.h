/* test_util.h: helpers that many test programs share, one version of each: host copies of
 * tensors, error measures and closeness checks between tensors, PyTorch golden files, random
 * leaves, gradchecks and "key=value;..." case descriptions.
 *
 * Header-only like tests/testlib.h (which it includes): every function is file-static and
 * marked unused, so a test program pays only for what it calls. */
#ifndef AQA_TEST_UTIL_H
#define AQA_TEST_UTIL_H

#include <stdbool.h>
#include <string.h>

#include "autograd/autograd.h"
#include "nn/module.h"
#include "tensor/tensor_file.h"
#include "ops/ops.h"
#include "tensor/tensor.h"
#include "tests/testlib.h"

#define TEST_UNUSED __attribute__((unused))

/* ---- tensors from and to host arrays --------------------------------------------------------- */

TEST_UNUSED static aqa_tensor *test_f64(const double *v, int ndim, const int64_t *shape) {
    return aqa_from_data(v, ndim, shape, AQA_F64);
}
TEST_UNUSED static aqa_tensor *test_i64(const int64_t *v, int ndim, const int64_t *shape) {
    return aqa_from_data(v, ndim, shape, AQA_I64);
}

/* All elements of t, row-major, as doubles (malloc'ed; NULL when t cannot be read). */
TEST_UNUSED static double *test_host(const aqa_tensor *t) {
    if (!t) return NULL;
    int64_t n = aqa_numel(t);
    double *v = malloc(sizeof(double) * (size_t)(n ? n : 1));
    if (v && aqa_copy_to_host(t, v, AQA_F64) != AQA_OK) {
        free(v);
        return NULL;
    }
    return v;
}

/* t is not NULL and has the shape (ndim, shape). */
TEST_UNUSED static bool test_shape_is(const aqa_tensor *t, int ndim, const int64_t *shape) {
    if (!t || t->ndim != ndim) return false;
    for (int i = 0; i < ndim; i++)
        if (t->shape[i] != shape[i]) return false;
    return true;
}

/* ---- error measures ---------------------------------------------------------------------------- */

/* max |a - b| / max(floor, max |b|): one error for the whole tensor, meaningful at any scale
 * (floor 1 treats values below 1 absolutely).  +inf when a or b is NULL, the shapes differ or a
 * has a non-finite element. */
TEST_UNUSED static double test_scaled_err(const aqa_tensor *a, const aqa_tensor *b, double floor) {
    if (!a || !b || !aqa_same_shape(a, b)) return INFINITY;
    double *x = test_host(a), *y = test_host(b);
    double err = x && y ? 0 : INFINITY, scale = floor;
    for (int64_t i = 0; x && y && i < aqa_numel(a); i++) {
        if (!isfinite(x[i])) err = INFINITY;
        err = fmax(err, fabs(x[i] - y[i]));
        scale = fmax(scale, fabs(y[i]));
    }
    free(x);
    free(y);
    return err / scale;
}

/* max over the elements of |a - b| / max(1, |b|); NaN propagates, +inf when a or b is NULL or
 * the shapes differ. */
TEST_UNUSED static double test_max_rel_diff(const aqa_tensor *a, const aqa_tensor *b) {
    if (!a || !b || !aqa_same_shape(a, b)) return INFINITY;
    double *x = test_host(a), *y = test_host(b), worst = x && y ? 0 : INFINITY;
    for (int64_t i = 0; x && y && i < aqa_numel(a); i++) {
        double d = fabs(x[i] - y[i]) / fmax(1.0, fabs(y[i]));
        if (!(d <= worst)) worst = d;
        if (isnan(worst)) break; /* a later finite d must not hide it */
    }
    free(x);
    free(y);
    return worst;
}

/* max |t| over the elements (0 for NULL or empty). */
TEST_UNUSED static double test_max_abs(const aqa_tensor *t) {
    double *x = test_host(t), m = 0;
    for (int64_t i = 0; x && i < aqa_numel(t); i++) m = fmax(m, fabs(x[i]));
    free(x);
    return m;
}

/* ---- closeness checks ------------------------------------------------------------------------ */

/* Checks got against exp elementwise: |got - exp| <= atol + rtol * max(|exp|, floor), NaN and
 * inf in exp must be matched exactly, and the shapes must agree.  A failure names `what` and the
 * worst element.  Returns whether all agreed. */
TEST_UNUSED static bool test_close_at(const char *file, int line, const char *what, const aqa_tensor *got,
                                      const aqa_tensor *exp, double rtol, double atol, double floor) {
    if (!got || !exp) {
        test_fail_at(file, line, "%s: %s is NULL (%s)", what, got ? "expected" : "result", aqa_last_error());
        return false;
    }
    if (!aqa_same_shape(got, exp)) {
        char b1[64], b2[64];
        test_fail_at(file, line, "%s: shape %s, expected %s", what, aqa_shape_str(got, b1, sizeof b1),
                     aqa_shape_str(exp, b2, sizeof b2));
        return false;
    }
    double *a = test_host(got), *b = test_host(exp);
    if (!a || !b) {
        test_fail_at(file, line, "%s: cannot read values (%s)", what, aqa_last_error());
        free(a);
        free(b);
        return false;
    }
    double worst = 0;
    int64_t wi = -1;
    for (int64_t i = 0; i < aqa_numel(got); i++) {
        double allowed = atol + rtol * fmax(fabs(b[i]), floor);
        bool ok = isfinite(b[i]) ? fabs(a[i] - b[i]) <= allowed : (isnan(b[i]) && isnan(a[i])) || a[i] == b[i];
        double e = ok ? 0 : isfinite(b[i]) && !isnan(a[i]) ? fabs(a[i] - b[i]) / allowed : INFINITY;
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
    return wi < 0;
}
/* |got - exp| <= atol + rtol |exp| elementwise (see test_close_at). */
#define CHECK_CLOSE(what, got, exp, rtol, atol) \
    ((void)test_close_at(__FILE__, __LINE__, (what), (got), (exp), (rtol), (atol), 0))
/* |got - exp| <= tol max(1, |exp|) elementwise: relative above 1, absolute below (the measure of
 * test_max_rel_diff). */
#define CHECK_REL(what, got, exp, tol) ((void)test_close_at(__FILE__, __LINE__, (what), (got), (exp), (tol), 0, 1))
/* Relative to each element, but never tighter than 1% of exp's largest magnitude (plus 1e-7):
 * for results whose small elements come from cancellation (sums, matrix products). */
#define CHECK_CLOSE_SCALED(what, got, exp, rtol)                                                 \
    do {                                                                                         \
        const aqa_tensor *test_exp_ = (exp);                                                     \
        (void)test_close_at(__FILE__, __LINE__, (what), (got), test_exp_, (rtol), 1e-7,          \
                            1e-2 * test_max_abs(test_exp_));                                     \
    } while (0)

/* ---- gradchecks -------------------------------------------------------------------------------- */

/* aqa_gradcheck's (eps, atol, rtol); a test program may define its own before including. */
#ifndef TEST_GRAD_TOL
#define TEST_GRAD_TOL 1e-6, 1e-7, 1e-5
#endif
TEST_UNUSED static void test_grad_at(const char *file, int line, const char *what, aqa_gradcheck_result r) {
    if (!r.ok) test_fail_at(file, line, "gradcheck %s: %s", what, r.message);
}
#define CHECK_GRAD(fn, inputs, n, user) \
    test_grad_at(__FILE__, __LINE__, #fn, aqa_gradcheck((fn), (inputs), (n), (user), TEST_GRAD_TOL))

/* A leaf N(0, scale^2) tensor from the generator, requiring grad (caller/scope owned). */
TEST_UNUSED static aqa_tensor *test_rand_leaf(aqa_generator *g, int ndim, const int64_t *shape, aqa_dtype dt,
                                         double scale) {
    aqa_tensor *t = aqa_randn(ndim, shape, dt, g);
    if (t && scale != 1.0) aqa_mul_scalar_(t, scale);
    return aqa_requires_grad(t, true);
}

/* A leaf copy of t requiring grad. */
TEST_UNUSED static aqa_tensor *test_leaf_of(aqa_tensor *t) {
    return t ? aqa_requires_grad(aqa_clone(aqa_detach(t)), true) : NULL;
}

/* ---- PyTorch golden files (tests/data, written by scripts/gen_golden_*.py) ---------------------- */

static aqa_st_file *test_golden_file;   /* the open golden file, kept for the whole program */
static char test_golden_name[256];      /* its name under tests/data */

/* Opens tests/data/<name> as the golden file (once; another name replaces it).  False when it
 * cannot be read: the caller SKIPs or FAILs as its area requires. */
TEST_UNUSED static bool test_golden_open(const char *name) {
    if (test_golden_file && strcmp(test_golden_name, name) == 0) return true;
    if (test_golden_file) aqa_st_close(test_golden_file);
    test_golden_file = NULL;
    snprintf(test_golden_name, sizeof test_golden_name, "%s", name);
    return aqa_st_open(test_data_path(name), &test_golden_file) == AQA_OK;
}

/* Closes the golden file (main calls it last, so that nothing is left open at exit). */
TEST_UNUSED static void test_golden_close(void) {
    if (test_golden_file) aqa_st_close(test_golden_file);
    test_golden_file = NULL;
}

/* Pass as the dtype to read a tensor in its stored class: bool as bool, anything else as float32. */
#define TEST_AS_STORED ((aqa_dtype)-1)

/* The golden tensor named by the printf-style format, read as dtype (scope/caller owned), or
 * NULL after a FAIL line naming it. */
TEST_UNUSED __attribute__((format(printf, 4, 5))) static aqa_tensor *test_golden_at(const char *file, int line,
                                                                                      aqa_dtype dtype,
                                                                                      const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    if (!test_golden_file) {
        test_fail_at(file, line, "golden %s: no golden file open", name);
        return NULL;
    }
    if (dtype == TEST_AS_STORED) {
        int i = aqa_st_find(test_golden_file, name);
        dtype = i >= 0 && aqa_st_get(test_golden_file, i)->dtype == AQA_ST_BOOL ? AQA_BOOL : AQA_F32;
    }
    aqa_tensor *t = aqa_st_load(test_golden_file, name, dtype);
    if (!t) test_fail_at(file, line, "golden %s: %s", name, aqa_last_error());
    return t;
}
#define GOLDEN(...) test_golden_at(__FILE__, __LINE__, AQA_F32, __VA_ARGS__)
#define GOLDEN_AS(dtype, ...) test_golden_at(__FILE__, __LINE__, (dtype), __VA_ARGS__)

/* Copies every parameter of m (and buffer, with `buffers`) from the golden tensor
 * "<prefix><name>" (int64 tensors as int64); a FAIL line for each that does not load. */
TEST_UNUSED static void test_golden_into_module_at(const char *file, int line, aqa_module *m, const char *prefix,
                                                   bool buffers) {
    aqa_scope_begin();
    aqa_named_tensor *list = NULL;
    int n = aqa_module_named_tensors(m, buffers, &list);
    if (n <= 0) test_fail_at(file, line, "module has no tensors to load from %s*", prefix);
    for (int i = 0; i < n; i++) {
        aqa_tensor *dst = list[i].tensor;
        aqa_tensor *t = test_golden_at(file, line, dst->dtype == AQA_I64 ? AQA_I64 : AQA_F32, "%s%s", prefix,
                                       list[i].name);
        if (t && aqa_copy_(dst, t) != AQA_OK)
            test_fail_at(file, line, "loading %s%s: %s", prefix, list[i].name, aqa_last_error());
    }
    aqa_named_tensors_free(list, n);
    aqa_scope_end();
}
#define GOLDEN_INTO_MODULE(m, prefix, buffers) test_golden_into_module_at(__FILE__, __LINE__, (m), (prefix), (buffers))

/* The module's state_dict names, comma separated, against the golden file's metadata value
 * meta_key (torch's state_dict keys, as the golden scripts store them under "<case>.keys"). */
TEST_UNUSED static void test_check_names_at(const char *file, int line, aqa_module *m, const char *meta_key) {
    const char *expect = test_golden_file ? aqa_st_metadata(test_golden_file, meta_key) : NULL;
    if (!expect) {
        test_fail_at(file, line, "metadata %s absent (golden file %s)", meta_key, test_golden_name);
        return;
    }
    aqa_named_tensor *list = NULL;
    int n = aqa_module_named_tensors(m, true, &list);
    char got[4096] = "";
    for (int i = 0; i < n; i++) {
        if (i) strncat(got, ",", sizeof got - strlen(got) - 1);
        strncat(got, list[i].name, sizeof got - strlen(got) - 1);
    }
    aqa_named_tensors_free(list, n);
    if (strcmp(got, expect) != 0) test_fail_at(file, line, "state_dict names\n    got      %s\n    expected %s", got, expect);
}
#define CHECK_NAMES(m, meta_key) test_check_names_at(__FILE__, __LINE__, (m), (meta_key))

/* The gradient of every trainable parameter of m against the golden tensor "<prefix><name>"
 * (|got - exp| <= atol + rtol |exp|); a missing gradient fails. */
TEST_UNUSED static void test_check_param_grads_at(const char *file, int line, aqa_module *m, const char *prefix,
                                                  double rtol, double atol) {
    aqa_scope_begin();
    aqa_named_tensor *list = NULL;
    int n = aqa_module_named_tensors(m, false, &list);
    for (int i = 0; i < n; i++) {
        if (!list[i].tensor->requires_grad) continue;
        char what[256];
        snprintf(what, sizeof what, "%s%s", prefix, list[i].name);
        aqa_tensor *exp = test_golden_at(file, line, AQA_F32, "%s", what);
        if (exp) (void)test_close_at(file, line, what, list[i].tensor->grad, exp, rtol, atol, 0);
    }
    aqa_named_tensors_free(list, n);
    aqa_scope_end();
}
#define CHECK_PARAM_GRADS(m, prefix, rtol, atol) test_check_param_grads_at(__FILE__, __LINE__, (m), (prefix), (rtol), (atol))

/* Maps "<prefix>name" to "name" and skips other names: the rename callback of aqa_module_load
 * for a torch state_dict stored under a prefix (user is the prefix). */
TEST_UNUSED static char *test_strip_prefix(const char *file_name, void *user) {
    const char *prefix = user;
    size_t n = strlen(prefix);
    return strncmp(file_name, prefix, n) == 0 ? strdup(file_name + n) : NULL;
}

/* ---- files ----------------------------------------------------------------------------------- */

/* The whole file at path (malloc'ed, one spare byte), its size in *n; NULL when unreadable. */
TEST_UNUSED static unsigned char *test_read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = len >= 0 ? malloc((size_t)len + 1) : NULL;
    *n = buf ? fread(buf, 1, (size_t)len, f) : 0;
    fclose(f);
    return buf;
}

/* ---- case descriptions ------------------------------------------------------------------------- */

/* Iterates over the "key=value" items of a ';'-separated description held in a writable buffer
 * (which it cuts up): set *cursor = buf first, then loop while it returns true.  Items without
 * '=' are passed over. */
TEST_UNUSED static bool test_next_kv(char **cursor, const char **key, const char **value) {
    while (*cursor && **cursor) {
        char *item = *cursor, *end = strchr(item, ';');
        *cursor = end ? end + 1 : item + strlen(item);
        if (end) *end = 0;
        char *eq = strchr(item, '=');
        if (!eq) continue;
        *eq = 0;
        *key = item;
        *value = eq + 1;
        return true;
    }
    return false;
}

#endif /* AQA_TEST_UTIL_H */
