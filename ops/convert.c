/* convert.c: the differentiable copies -- clone, dtype and device conversions, contiguous, detach
 * -- and the in-place copy between tensors of any dtype, device and broadcastable shape. */
#include <stdlib.h>

#include "autograd/autograd.h"
#include "ops/ops.h"
#include "tensor/backend.h"
#include "tensor/tensor-impl.h"

aqa_status aqa_copy_(aqa_tensor *dst, const aqa_tensor *src) {
    if (!dst || !src) return aqa_fail(AQA_EINVAL, "aqa_copy_: NULL tensor");
    if (!aqa__alive("aqa_copy_", dst) || !aqa__alive("aqa_copy_", src)) return AQA_ESTATE;
    aqa_tensor *s = (aqa_tensor *)src, *moved = NULL, *expanded = NULL;
    if (!aqa_device_equal(src->storage->device, dst->storage->device)) {
        bool prev = aqa_set_grad_enabled(false);
        moved = aqa_to_device(s, dst->storage->device);
        aqa_set_grad_enabled(prev);
        if (!moved) return aqa_last_status();
        aqa__disown(moved);
        s = moved;
    }
    if (!aqa_same_shape(s, dst)) {
        bool prev = aqa_set_grad_enabled(false);
        expanded = aqa_expand(s, dst->ndim, dst->shape);
        aqa_set_grad_enabled(prev);
        if (!expanded) {
            aqa__release(moved);
            return aqa_last_status();
        }
        aqa__disown(expanded);
        s = expanded;
    }
    aqa_status st = aqa_backend_for(dst->storage->device)->copy(dst, s);
    aqa__release(expanded);
    aqa__release(moved);
    aqa__bump_version(dst, "aqa_copy_");
    return st;
}

/* ---- conversions (differentiable) --------------------------------------------------------------- */

static void identity_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    /* the engine casts and moves the gradient back to the input's dtype and device */
    grad_in[0] = g;
}

/* A new tensor holding a copy of t's values with the given dtype and device. */
static aqa_tensor *copy_as(aqa_tensor *t, aqa_dtype dtype, aqa_device device, const char *op) {
    aqa_tensor *out = aqa__new_unowned(t->ndim, t->shape, dtype, device);
    if (!out) return NULL;
    aqa_status st;
    if (aqa_device_equal(device, t->storage->device)) {
        st = aqa_backend_for(device)->copy(out, t);
    } else {
        /* cross-device: contiguous same-dtype staging on the source side, bytes across, convert */
        aqa_tensor *stage = aqa__new_unowned(t->ndim, t->shape, t->dtype, t->storage->device);
        aqa_tensor *landed = stage ? aqa__new_unowned(t->ndim, t->shape, t->dtype, device) : NULL;
        st = landed ? aqa_backend_for(t->storage->device)->copy(stage, t) : aqa_last_status();
        size_t nbytes = (size_t)aqa_numel(t) * aqa_dtype_size(t->dtype);
        if (st == AQA_OK && nbytes) {
            if (device.kind == AQA_CPU)
                st = aqa_backend_for(t->storage->device)->to_host(landed->storage->data, stage->storage->data,
                                                                 nbytes, t->storage->device);
            else if (t->storage->device.kind == AQA_CPU)
                st = aqa_backend_for(device)->from_host(landed->storage->data, stage->storage->data, nbytes,
                                                        device);
            else
                st = aqa_fail(AQA_EUNSUPPORTED, "%s: device-to-device copies between GPUs are not supported", op);
        }
        if (st == AQA_OK) st = aqa_backend_for(device)->copy(out, landed);
        aqa__release(stage);
        aqa__release(landed);
    }
    if (st != AQA_OK) {
        aqa__release(out);
        return NULL;
    }
    aqa__own(out);
    if (aqa_dtype_is_float(dtype) && aqa_dtype_is_float(t->dtype))
        aqa_node_record(op, identity_backward, 1, &t, out);
    return out;
}

aqa_tensor *aqa_clone(aqa_tensor *t) {
    if (!aqa__check_inputs("aqa_clone", 1, &t)) return NULL;
    return copy_as(t, t->dtype, t->storage->device, "clone");
}

aqa_tensor *aqa_to_dtype(aqa_tensor *t, aqa_dtype dtype) {
    if (!aqa__check_inputs("aqa_to_dtype", 1, &t)) return NULL;
    return copy_as(t, dtype, t->storage->device, "to_dtype");
}

aqa_tensor *aqa_to_device(aqa_tensor *t, aqa_device device) {
    if (!aqa__check_inputs("aqa_to_device", 1, &t)) return NULL;
    if (!aqa_backend_for(device)) return NULL;
    return copy_as(t, t->dtype, device, "to_device");
}

aqa_tensor *aqa_contiguous(aqa_tensor *t) {
    if (!aqa__check_inputs("aqa_contiguous", 1, &t)) return NULL;
    if (!aqa_is_contiguous(t)) return copy_as(t, t->dtype, t->storage->device, "contiguous");
    aqa_tensor *out = aqa__alias_unowned(t, t->ndim, t->shape, t->stride, t->offset);
    if (!out) return NULL;
    aqa__own(out);
    aqa_node_record("contiguous", identity_backward, 1, &t, out);
    return out;
}

aqa_tensor *aqa_detach(aqa_tensor *t) {
    if (!aqa__check_inputs("aqa_detach", 1, &t)) return NULL;
    return aqa__own(aqa__alias_unowned(t, t->ndim, t->shape, t->stride, t->offset));
}

bool aqa__check_inputs_scalars(const char *op, int n, aqa_tensor **ts) {
    for (int i = 0; i < n; i++)
        if (!aqa__alive(op, ts[i])) return false;
    const aqa_tensor *dev_ref = NULL;
    for (int i = 0; i < n; i++)
        if (ts[i] && ts[i]->storage->device.kind != AQA_CPU) dev_ref = ts[i];
    if (dev_ref) {
        aqa_device device = dev_ref->storage->device;
        for (int i = 0; i < n; i++) {
            if (!ts[i] || ts[i]->ndim != 0 || ts[i]->storage->device.kind != AQA_CPU) continue;
            aqa_tensor *moved = aqa_to_device(ts[i], device);
            if (!moved) return false;
            ts[i] = moved;
        }
    }
    return aqa__check_inputs(op, n, ts);
}
