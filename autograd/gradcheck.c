/* gradcheck.c: compares backward with central finite differences (see autograd.h).
 *
 * The scalar checked is L = sum(fn(inputs) * w) with w a fixed pseudo-random weighting, so that
 * every output element contributes with a different weight and a gradient routed to the wrong
 * output position is caught (a plain sum would hide it).  Inputs are perturbed in place,
 * element by element, through their storage; they must live on the CPU and must not be
 * expanded views (one storage element would stand for several logical elements). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/autograd.h"
#include "ops/ops.h"
#include "tensor/tensor-impl.h"

/* L = sum(fn(inputs) * w) as a double. */
static double eval_loss(aqa_gradcheck_fn fn, aqa_tensor *const *inputs, int n, void *user, aqa_tensor *w) {
    aqa_tensor *y = fn(inputs, n, user);
    if (!y) return NAN;
    aqa_tensor *yw = aqa_mul(aqa_to_dtype(y, AQA_F64), w);
    return aqa_item(aqa_sum_all(yw));
}

static double *element_ptr_f64(aqa_tensor *t, int64_t flat, float **f32) {
    int64_t off = t->offset, rem = flat;
    for (int d = t->ndim - 1; d >= 0; d--) {
        off += (rem % t->shape[d]) * t->stride[d];
        rem /= t->shape[d];
    }
    *f32 = NULL;
    if (t->dtype == AQA_F32) {
        *f32 = (float *)t->storage->data + off;
        return NULL;
    }
    return (double *)t->storage->data + off;
}

static bool has_overlap(const aqa_tensor *t) {
    for (int d = 0; d < t->ndim; d++)
        if (t->stride[d] == 0 && t->shape[d] > 1) return true;
    return false;
}

aqa_gradcheck_result aqa_gradcheck(aqa_gradcheck_fn fn, aqa_tensor *const *inputs, int n, void *user, double eps,
                                   double atol, double rtol) {
    aqa_gradcheck_result r = {.ok = true, .input = -1, .index = -1};
    for (int i = 0; i < n; i++) {
        aqa_tensor *t = inputs[i];
        if (!t || !t->requires_grad) continue;
        if (aqa_tensor_device(t).kind != AQA_CPU || !aqa_dtype_is_float(t->dtype) || has_overlap(t)) {
            r.ok = false;
            snprintf(r.message, sizeof r.message,
                     "gradcheck: input %d must be a floating CPU tensor without expanded (stride 0) dimensions", i);
            return r;
        }
        aqa_zero_grad(t);
    }
    aqa_scope_begin();
    /* the output with its graph; its shape fixes the weighting (fixed seed, independent of the
     * user's default generator) */
    bool prev = aqa_set_grad_enabled(true);
    aqa_tensor *y0 = fn(inputs, n, user);
    if (!y0) {
        r.ok = false;
        snprintf(r.message, sizeof r.message, "gradcheck: the function failed: %s", aqa_last_error());
        aqa_set_grad_enabled(prev);
        aqa_scope_end();
        return r;
    }
    aqa_generator gen = {.seed = 20240917, .offset = 0};
    aqa_tensor *w = aqa_add_scalar(aqa_rand(y0->ndim, y0->shape, AQA_F64, &gen), 0.5);
    aqa_tensor *yw = aqa_sum_all(aqa_mul(aqa_to_dtype(y0, AQA_F64), w));
    if (!yw || !yw->requires_grad || aqa_backward(yw, NULL, false) != AQA_OK) {
        r.ok = false;
        snprintf(r.message, sizeof r.message, "gradcheck: backward failed: %s",
                 yw && !yw->requires_grad ? "output does not require grad" : aqa_last_error());
        aqa_set_grad_enabled(prev);
        aqa_scope_end();
        return r;
    }
    aqa_set_grad_enabled(false);
    double worst = -INFINITY;
    for (int i = 0; i < n && r.message[0] == 0; i++) {
        aqa_tensor *t = inputs[i];
        if (!t || !t->requires_grad) continue;
        int64_t numel = aqa_numel(t);
        double *ana = malloc(sizeof(double) * (size_t)(numel ? numel : 1));
        if (!ana) break;
        if (t->grad) aqa_copy_to_host(t->grad, ana, AQA_F64);
        else memset(ana, 0, sizeof(double) * (size_t)numel);
        for (int64_t j = 0; j < numel; j++) {
            float *pf;
            double *pd = element_ptr_f64(t, j, &pf);
            double orig = pd ? *pd : *pf;
            aqa_scope_begin();
            if (pd) *pd = orig + eps; else *pf = (float)(orig + eps);
            double lp = eval_loss(fn, inputs, n, user, w);
            if (pd) *pd = orig - eps; else *pf = (float)(orig - eps);
            double lm = eval_loss(fn, inputs, n, user, w);
            if (pd) *pd = orig; else *pf = (float)orig;
            aqa_scope_end();
            double num = (lp - lm) / (2 * eps);
            double err = fabs(ana[j] - num);
            double excess = err - (atol + rtol * fabs(num)); /* > 0 fails; NaN fails too */
            double rel = err / fmax(1.0, fabs(num));
            if (!(excess <= 0)) r.ok = false;
            /* report the element furthest beyond (or closest to) its tolerance */
            if (isnan(excess) || excess > worst) {
                worst = isnan(excess) ? INFINITY : excess;
                r.input = i;
                r.index = j;
                r.analytical = ana[j];
                r.numerical = num;
            }
            if (err > r.max_abs_err) r.max_abs_err = err;
            if (rel > r.max_rel_err) r.max_rel_err = rel;
        }
        free(ana);
        aqa_zero_grad(t);
    }
    aqa_set_grad_enabled(prev);
    aqa_scope_end();
    if (!r.message[0]) {
        if (r.ok)
            snprintf(r.message, sizeof r.message, "gradcheck passed: max abs err %.3g, max rel err %.3g", r.max_abs_err,
                     r.max_rel_err);
        else
            snprintf(r.message, sizeof r.message,
                     "gradcheck failed: input %d, element %lld: analytical %.10g, numerical %.10g (max abs err %.3g)",
                     r.input, (long long)r.index, r.analytical, r.numerical, r.max_abs_err);
    }
    return r;
}
