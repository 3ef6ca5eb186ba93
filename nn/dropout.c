/* dropout.c: seeded dropout (one uniform draw per element turned in place into the 0 or
 * 1/(1-p) multiplier, which the backward reuses) and the Dropout module. */
#include <math.h>

#include "autograd/autograd.h"
#include "nn/dropout.h"
#include "nn/layers-impl.h"
#include "ops/ops.h"
#include "tensor/tensor-impl.h"

static void identity_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    if (n->needs_grad[0]) grad_in[0] = g;
}

/* saved[0] = the multiplier (0 or 1/(1-p) per element) */
static void dropout_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    if (n->needs_grad[0]) grad_in[0] = aqa_mul(g, n->saved[0]);
}

/* u <- (u < keep) ? scale : 0, in place on a contiguous host tensor. */
#define DEFINE_TO_SCALE(NAME, T)                                                         \
    static void NAME(T *u, int64_t n, T keep, T scale) {                                 \
        _Pragma("omp parallel for simd if (n > 65536) schedule(static)")                 \
        for (int64_t i = 0; i < n; i++) u[i] = u[i] < keep ? scale : (T)0;               \
    }
DEFINE_TO_SCALE(to_scale_f32, float)
DEFINE_TO_SCALE(to_scale_f64, double)

aqa_tensor *aqa_dropout(aqa_tensor *x, double p, bool training, aqa_generator *gen) {
    if (!aqa__check_inputs("aqa_dropout", 1, &x)) return NULL;
    if (!(p >= 0.0 && p <= 1.0)) return aqa_fail_null("aqa_dropout: p = %g is not in [0, 1]", p);
    if (!training || p == 0.0) {
        aqa_tensor *out = aqa__alias_unowned(x, x->ndim, x->shape, x->stride, x->offset);
        if (!out) return NULL;
        aqa__own(out);
        aqa_node_record("dropout", identity_backward, 1, &x, out);
        return out;
    }
    if (!aqa_dtype_is_float(x->dtype)) return aqa_fail_null("aqa_dropout: needs a floating input, got %s",
                                                            aqa_dtype_name(x->dtype));
    bool prev = aqa_set_grad_enabled(false);
    aqa_scope_begin();
    aqa_device dev = aqa_tensor_device(x);
    aqa_tensor *scale = NULL, *out = NULL;
    if (p == 1.0) {
        scale = aqa_zeros_like(x);
    } else {
        aqa_tensor *u = aqa_rand(x->ndim, x->shape, x->dtype, gen);
        if (u && !aqa_device_equal(aqa_tensor_device(u), dev)) u = aqa_to_device(u, dev);
        if (u && dev.kind == AQA_CPU && aqa_is_contiguous(u) && !aqa__nn_force_composed) {
            if (x->dtype == AQA_F32) to_scale_f32(aqa_data(u), aqa_numel(u), (float)(1.0 - p), (float)(1.0 / (1.0 - p)));
            else to_scale_f64(aqa_data(u), aqa_numel(u), 1.0 - p, 1.0 / (1.0 - p));
            scale = u;
        } else if (u) {
            scale = aqa_mul_scalar(aqa_to_dtype(aqa_lt_scalar(u, 1.0 - p), x->dtype), 1.0 / (1.0 - p));
        }
    }
    if (scale && !aqa_device_equal(aqa_tensor_device(scale), dev)) scale = aqa_to_device(scale, dev);
    out = aqa_mul(x, scale);
    aqa_keep(out);
    aqa_keep(scale);
    aqa_scope_end();
    aqa_set_grad_enabled(prev);
    if (out) {
        aqa_node *n = aqa_node_record("dropout", dropout_backward, 1, &x, out);
        if (n) aqa_node_save(n, scale);
    }
    aqa_tensor_free(scale);
    return out;
}

AQA_MODULE_FORWARD(dropout_any, aqa_dropout_layer, aqa_dropout_layer_forward)

aqa_dropout_layer *aqa_dropout_layer_new(aqa_module *parent, const char *name, double p) {
    if (!(p >= 0.0 && p <= 1.0)) return aqa_fail_null("Dropout %s: p = %g is not in [0, 1]", name ? name : "", p);
    aqa_dropout_layer *m = aqa_module_new(sizeof *m, "Dropout", parent, name, NULL);
    if (m) {
        m->p = p;
        m->base.forward = dropout_any;
    }
    return m;
}

aqa_tensor *aqa_dropout_layer_forward(aqa_dropout_layer *m, aqa_tensor *x) {
    if (!m) return aqa_fail_null("aqa_dropout_layer_forward: NULL module");
    return aqa_dropout(x, m->p, m->base.training, m->gen);
}
