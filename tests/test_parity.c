/* test_parity.c: a small composite function (2-layer MLP, GELU, softmax cross-entropy) computed
 * with aqa's ops and compared with PyTorch's values and gradients from
 * tests/data/golden_mlp.safetensors (scripts/gen_golden_mlp.py), in float32 and float64. */
#include "aqa.h"
#include "tests/test_util.h"

static void check_mlp(const char *tag, aqa_dtype dtype, double tol) {
    if (!test_golden_open("golden_mlp.safetensors")) {
        CHECK_MSG(0, "cannot open golden_mlp.safetensors: %s", aqa_last_error());
        return;
    }
    aqa_scope_begin();
#define LOAD(var, key, dt) aqa_tensor *var = GOLDEN_AS(dt, "%s.%s", tag, key);
    LOAD(x, "x", dtype) LOAD(w1, "w1", dtype) LOAD(b1, "b1", dtype) LOAD(w2, "w2", dtype) LOAD(b2, "b2", dtype)
    LOAD(y, "y", AQA_I64) LOAD(logits_ref, "logits", dtype) LOAD(loss_ref, "loss", dtype)
#undef LOAD
    aqa_tensor *params[5] = {x, w1, b1, w2, b2};
    for (int i = 0; i < 5; i++) aqa_requires_grad(params[i], true);
    aqa_tensor *h = aqa_gelu(aqa_add(aqa_matmul(x, aqa_transpose(w1, 0, 1)), b1));
    aqa_tensor *logits = aqa_add(aqa_matmul(h, aqa_transpose(w2, 0, 1)), b2);
    aqa_tensor *logp = aqa_log_softmax(logits, 1);
    aqa_tensor *picked = aqa_gather(logp, 1, aqa_unsqueeze(y, 1));
    aqa_tensor *loss = aqa_neg(aqa_mean_all(picked));
    CHECK_MSG(loss != NULL, "%s", aqa_last_error());
    CHECK_MSG(test_scaled_err(logits, logits_ref, 1e-30) < tol, "%s logits err %.3g", tag, test_scaled_err(logits, logits_ref, 1e-30));
    CHECK_MSG(test_scaled_err(loss, loss_ref, 1e-30) < tol, "%s loss err %.3g", tag, test_scaled_err(loss, loss_ref, 1e-30));
    CHECK(aqa_backward(loss, NULL, false) == AQA_OK);
    const char *keys[5] = {"grad_x", "grad_w1", "grad_b1", "grad_w2", "grad_b2"};
    for (int i = 0; i < 5; i++) {
        double e = test_scaled_err(params[i]->grad, GOLDEN_AS(dtype, "%s.%s", tag, keys[i]), 1e-30);
        CHECK_MSG(e < tol, "%s %s normalised error %.3g", tag, keys[i], e);
    }
    aqa_scope_end();
}

static void test_mlp_f32_matches_torch(void) { check_mlp("f32", AQA_F32, 1e-5); }
static void test_mlp_f64_matches_torch(void) { check_mlp("f64", AQA_F64, 1e-12); }

int main(void) {
    RUN(test_mlp_f32_matches_torch);
    RUN(test_mlp_f64_matches_torch);
    test_golden_close();
    return test_finish();
}
