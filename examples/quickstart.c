/* quickstart.c: the aqa API in one page.
 *
 * Fits a tiny 2-layer network to a 1-D curve with plain gradient descent (printing loss and
 * steps/s on stderr), checks the network's gradients against finite differences with
 * aqa_gradcheck, and saves the weights as safetensors, loadable by PyTorch's safetensors.
 * Run: examples/quickstart [--steps N] [--out FILE]   (default: 400 steps, quickstart.safetensors) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aqa.h"
#include "examples/cli.h"
#include "tensor/tensor_file.h"

/* The model: y = tanh(x w1 + b1) w2 + b2, written with tensor ops; any float dtype. */
static aqa_tensor *model(aqa_tensor *x, aqa_tensor *const p[4]) {
    aqa_tensor *h = aqa_tanh(aqa_add(aqa_matmul(x, p[0]), p[1])); /* [n,1]@[1,16] + [16] */
    return aqa_add(aqa_matmul(h, p[2]), p[3]);                    /* [n,16]@[16,1] + [1] */
}

/* gradcheck checks a function of its inputs: the model's output for a fixed x. */
static aqa_tensor *model_of_params(aqa_tensor *const *in, int n, void *x) { return model(x, in); }

int main(int argc, char **argv) {
    kv_config c = {.program = "quickstart",
                   .about = "Fits a tiny network to a 1-D curve, checks its gradients and saves its weights."};
    kv_def_int(&c, "steps", "400", 1, 10000000, "gradient-descent steps");
    kv_def(&c, "out", "quickstart.safetensors", "weights file written (safetensors)");
    int pr = kv_parse_args(&c, argc, argv, "[--steps N] [--out FILE]");
    if (pr) return kv_exit_code(pr);
    const int steps = (int)kv_int(&c, "steps");
    const char *out = kv_str(&c, "out");
    aqa_manual_seed(0);

    /* Set-up in a scope; what must outlive it is moved to the caller with aqa_keep. */
    aqa_tensor *p[4], *x, *target;
    aqa_scope_begin();
    p[0] = aqa_keep(aqa_randn(AQA_SHAPE(1, 16), AQA_F32, NULL));
    p[1] = aqa_keep(aqa_zeros(AQA_SHAPE(16), AQA_F32));
    p[2] = aqa_keep(aqa_mul_scalar(aqa_randn(AQA_SHAPE(16, 1), AQA_F32, NULL), 0.25));
    p[3] = aqa_keep(aqa_zeros(AQA_SHAPE(1), AQA_F32));
    for (int i = 0; i < 4; i++) aqa_requires_grad(p[i], true);
    x = aqa_keep(aqa_view(aqa_linspace(-3, 3, 64, AQA_F32), AQA_SHAPE(64, 1)));
    target = aqa_keep(aqa_add(aqa_tanh(aqa_mul_scalar(x, 2)), aqa_mul_scalar(aqa_square(x), 0.1)));
    aqa_scope_end();

    /* Training: everything a step creates (activations, graph, gradients' temporaries) dies at
     * aqa_scope_end; parameters and their .grad persist. */
    double start = (double)clock() / CLOCKS_PER_SEC, loss_value = 0;
    for (int step = 1; step <= steps; step++) {
        aqa_scope_begin();
        aqa_tensor *loss = aqa_mean_all(aqa_square(aqa_sub(model(x, p), target)));
        if (aqa_backward(loss, NULL, false) != AQA_OK) {
            fprintf(stderr, "backward failed: %s\n", aqa_last_error());
            return 1;
        }
        for (int i = 0; i < 4; i++) { /* SGD, in place and unrecorded */
            aqa_add_(p[i], p[i]->grad, -0.1);
            aqa_zero_grad(p[i]);
        }
        loss_value = aqa_item(loss);
        if (step % 100 == 0 || step == steps) {
            double el = (double)clock() / CLOCKS_PER_SEC - start;
            fprintf(stderr, "step %4d/%d  loss %.5f  %.0f steps/s\n", step, steps, loss_value, step / (el > 0 ? el : 1e-9));
        }
        aqa_scope_end();
    }
    printf("final loss %.5f\n", loss_value);

    /* Gradient check in float64 on copies of the trained parameters. */
    aqa_scope_begin();
    aqa_tensor *p64[4];
    for (int i = 0; i < 4; i++) p64[i] = aqa_requires_grad(aqa_to_dtype(aqa_detach(p[i]), AQA_F64), true);
    aqa_tensor *x64 = aqa_to_dtype(aqa_slice(x, 0, 0, 64, 8), AQA_F64);
    aqa_gradcheck_result r = aqa_gradcheck(model_of_params, p64, 4, x64, 1e-6, 1e-8, 1e-6);
    printf("%s\n", r.message);
    aqa_scope_end();

    const char *names[4] = {"w1", "b1", "w2", "b2"};
    if (aqa_save_tensors(out, 4, names, p, 0, NULL, NULL) != AQA_OK) {
        fprintf(stderr, "%s\n", aqa_last_error());
        return 1;
    }
    printf("weights written to %s\n", out);
    for (int i = 0; i < 4; i++) aqa_tensor_free(p[i]);
    aqa_tensor_free(x);
    aqa_tensor_free(target);
    return r.ok ? 0 : 1;
}
