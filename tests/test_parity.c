/* test_parity.c: a small composite function (2-layer MLP, GELU, softmax cross-entropy) computed
 * with aqa's ops and compared with PyTorch's values and gradients from
 * tests/data/golden_mlp.safetensors (scripts/gen_golden_mlp.py), in float32 and float64. */
#include <math.h>

#include "aqa.h"
#include "nn/tensor_file.h"
#include "tests/testlib.h"

/* max |a - b| / (max |b| + tiny): a normalised error that is meaningful for any scale */
static double norm_err(aqa_tensor *a, aqa_tensor *b) {
    if (!a || !b || !aqa_same_shape(a, b)) return INFINITY;
    int64_t n = aqa_numel(a);
    double *x = malloc(sizeof(double) * n), *y = malloc(sizeof(double) * n);
    aqa_copy_to_host(a, x, AQA_F64);
    aqa_copy_to_host(b, y, AQA_F64);
    double err = 0, scale = 1e-30;
    for (int64_t i = 0; i < n; i++) {
        err = fmax(err, fabs(x[i] - y[i]));
        scale = fmax(scale, fabs(y[i]));
    }
    free(x);
    free(y);
    return err / scale;
}

static void check_mlp(const char *tag, aqa_dtype dtype, double tol) {
    const char *path = test_data_path("golden_mlp.safetensors");
    aqa_st_file *f;
    if (aqa_st_open(path, &f) != AQA_OK) {
        CHECK_MSG(0, "cannot open %s: %s", path, aqa_last_error());
        return;
    }
    aqa_scope_begin();
    char name[64];
#define LOAD(var, key, dt)                                  \
    snprintf(name, sizeof name, "%s.%s", tag, key);         \
    aqa_tensor *var = aqa_st_load(f, name, dt);             \
    CHECK_MSG(var != NULL, "%s", aqa_last_error());
    LOAD(x, "x", dtype) LOAD(w1, "w1", dtype) LOAD(b1, "b1", dtype) LOAD(w2, "w2", dtype) LOAD(b2, "b2", dtype)
    LOAD(y, "y", AQA_I64) LOAD(logits_ref, "logits", dtype) LOAD(loss_ref, "loss", dtype)
    aqa_tensor *params[5] = {x, w1, b1, w2, b2};
    for (int i = 0; i < 5; i++) aqa_requires_grad(params[i], true);
    aqa_tensor *h = aqa_gelu(aqa_add(aqa_matmul(x, aqa_transpose(w1, 0, 1)), b1));
    aqa_tensor *logits = aqa_add(aqa_matmul(h, aqa_transpose(w2, 0, 1)), b2);
    aqa_tensor *logp = aqa_log_softmax(logits, 1);
    aqa_tensor *picked = aqa_gather(logp, 1, aqa_unsqueeze(y, 1));
    aqa_tensor *loss = aqa_neg(aqa_mean_all(picked));
    CHECK_MSG(loss != NULL, "%s", aqa_last_error());
    CHECK_MSG(norm_err(logits, logits_ref) < tol, "%s logits err %.3g", tag, norm_err(logits, logits_ref));
    CHECK_MSG(norm_err(loss, loss_ref) < tol, "%s loss err %.3g", tag, norm_err(loss, loss_ref));
    CHECK(aqa_backward(loss, NULL, false) == AQA_OK);
    const char *keys[5] = {"grad_x", "grad_w1", "grad_b1", "grad_w2", "grad_b2"};
    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof name, "%s.%s", tag, keys[i]);
        aqa_tensor *ref = aqa_st_load(f, name, dtype);
        double e = norm_err(params[i]->grad, ref);
        CHECK_MSG(e < tol, "%s %s normalised error %.3g", tag, keys[i], e);
    }
    aqa_scope_end();
    aqa_st_close(f);
}

static void test_mlp_f32_matches_torch(void) { check_mlp("f32", AQA_F32, 1e-5); }
static void test_mlp_f64_matches_torch(void) { check_mlp("f64", AQA_F64, 1e-12); }

int main(void) {
    RUN(test_mlp_f32_matches_torch);
    RUN(test_mlp_f64_matches_torch);
    return test_finish();
}
