/* views.c: movement ops that share storage (view, reshape, permute, slice, expand, ...), each
 * with its backward.  Only reshape of a non-viewable layout copies. */
#include <stdlib.h>
#include <string.h>

#include "autograd/autograd.h"
#include "ops/ops.h"
#include "tensor/tensor-impl.h"

/* Makes an owned alias of t with the given geometry and records `backward` for it. */
static aqa_tensor *make_view(aqa_tensor *t, int ndim, const int64_t *shape, const int64_t *stride,
                             int64_t offset, const char *op, aqa_backward_fn backward, aqa_node **node) {
    aqa_tensor *out = aqa__alias_unowned(t, ndim, shape, stride, offset);
    if (!out) return NULL;
    aqa__own(out);
    aqa_node *n = aqa_node_record(op, backward, 1, &t, out);
    if (node) *node = n;
    return out;
}

static void reshape_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    grad_in[0] = aqa_reshape(g, n->in_ndim[0], n->in_shape[0]);
}

/* Resolves a -1 entry and checks the element count. */
static bool infer_shape(const char *op, const aqa_tensor *t, int ndim, const int64_t *shape, int64_t *out) {
    if (ndim < 0 || ndim > AQA_MAX_DIMS) {
        aqa_fail(AQA_EINVAL, "%s: %d dimensions requested (0..%d allowed)", op, ndim, AQA_MAX_DIMS);
        return false;
    }
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] == -1) {
            if (infer >= 0) {
                aqa_fail(AQA_EINVAL, "%s: only one dimension can be -1", op);
                return false;
            }
            infer = i;
        } else if (shape[i] < 0) {
            aqa_fail(AQA_EINVAL, "%s: invalid size %lld in dimension %d", op, (long long)shape[i], i);
            return false;
        } else {
            known *= shape[i];
        }
        out[i] = shape[i];
    }
    int64_t numel = aqa_numel(t);
    if (infer >= 0) {
        if (known == 0 || numel % known != 0) {
            char buf[128];
            aqa_fail(AQA_EINVAL, "%s: cannot infer -1 for a tensor of shape %s (%lld elements)", op,
                     aqa_shape_str(t, buf, sizeof buf), (long long)numel);
            return false;
        }
        out[infer] = numel / known;
        known *= out[infer];
    }
    if (known != numel) {
        char buf[128];
        aqa_fail(AQA_EINVAL, "%s: shape of %lld elements requested for a tensor of shape %s (%lld elements)", op,
                 (long long)known, aqa_shape_str(t, buf, sizeof buf), (long long)numel);
        return false;
    }
    return true;
}

/* Strides for viewing t as `shape` without copying, as torch's computeStride: each run of
 * merged old dimensions must be contiguous in itself.  Returns false when impossible. */
static bool view_strides(const aqa_tensor *t, int ndim, const int64_t *shape, int64_t *stride) {
    if (aqa_numel(t) == 0 || aqa_is_contiguous(t)) {
        aqa__contiguous_strides(ndim, shape, stride);
        return true;
    }
    int view_d = ndim - 1;
    int64_t chunk_base_stride = t->ndim ? t->stride[t->ndim - 1] : 1;
    int64_t tensor_numel = 1, view_numel = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        tensor_numel *= t->shape[d];
        /* end of a contiguous chunk of old dims */
        if (d == 0 || (t->shape[d - 1] != 1 && t->stride[d - 1] != tensor_numel * chunk_base_stride)) {
            while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
                stride[view_d] = view_numel * chunk_base_stride;
                view_numel *= shape[view_d];
                view_d--;
            }
            if (view_numel != tensor_numel) return false;
            if (d > 0) {
                chunk_base_stride = t->stride[d - 1];
                tensor_numel = 1;
                view_numel = 1;
            }
        }
    }
    return view_d == -1;
}

aqa_tensor *aqa_view(aqa_tensor *t, int ndim, const int64_t *shape) {
    if (!aqa__check_inputs("aqa_view", 1, &t)) return NULL;
    int64_t s[AQA_MAX_DIMS], st[AQA_MAX_DIMS];
    if (!infer_shape("aqa_view", t, ndim, shape, s)) return NULL;
    if (!view_strides(t, ndim, s, st)) {
        char buf[128];
        return aqa_fail_null("aqa_view: a tensor of shape %s with this stride layout cannot be viewed as the "
                             "requested shape; use aqa_reshape (which copies)", aqa_shape_str(t, buf, sizeof buf));
    }
    return make_view(t, ndim, s, st, t->offset, "view", reshape_backward, NULL);
}

aqa_tensor *aqa_reshape(aqa_tensor *t, int ndim, const int64_t *shape) {
    if (!aqa__check_inputs("aqa_reshape", 1, &t)) return NULL;
    int64_t s[AQA_MAX_DIMS], st[AQA_MAX_DIMS];
    if (!infer_shape("aqa_reshape", t, ndim, shape, s)) return NULL;
    if (view_strides(t, ndim, s, st)) return make_view(t, ndim, s, st, t->offset, "reshape", reshape_backward, NULL);
    /* copy, then view the contiguous copy; the copy is an intermediate the scope frees */
    aqa_tensor *c = aqa_contiguous(t);
    if (!c) return NULL;
    aqa__contiguous_strides(ndim, s, st);
    aqa_tensor *out = make_view(c, ndim, s, st, c->offset, "reshape", reshape_backward, NULL);
    aqa_tensor_free(c);
    return out;
}

aqa_tensor *aqa_flatten(aqa_tensor *t, int start_dim, int end_dim) {
    if (!aqa__check_inputs("aqa_flatten", 1, &t)) return NULL;
    if (t->ndim == 0) return aqa_reshape(t, AQA_SHAPE(1));
    int s = aqa_wrap_dim(start_dim, t->ndim), e = aqa_wrap_dim(end_dim, t->ndim);
    if (s < 0 || e < 0 || s > e)
        return aqa_fail_null("aqa_flatten: dims %d..%d invalid for %d dimensions", start_dim, end_dim, t->ndim);
    int64_t shape[AQA_MAX_DIMS];
    int n = 0;
    for (int i = 0; i < s; i++) shape[n++] = t->shape[i];
    int64_t m = 1;
    for (int i = s; i <= e; i++) m *= t->shape[i];
    shape[n++] = m;
    for (int i = e + 1; i < t->ndim; i++) shape[n++] = t->shape[i];
    return aqa_reshape(t, n, shape);
}

static void permute_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    int inv[AQA_MAX_DIMS];
    for (int i = 0; i < g->ndim; i++) inv[n->ints[i]] = i;
    grad_in[0] = aqa_permute(g, inv);
}

aqa_tensor *aqa_permute(aqa_tensor *t, const int *dims) {
    if (!aqa__check_inputs("aqa_permute", 1, &t)) return NULL;
    int64_t shape[AQA_MAX_DIMS], stride[AQA_MAX_DIMS];
    int d[AQA_MAX_DIMS];
    bool seen[AQA_MAX_DIMS] = {false};
    for (int i = 0; i < t->ndim; i++) {
        d[i] = aqa_wrap_dim(dims[i], t->ndim);
        if (d[i] < 0 || seen[d[i]])
            return aqa_fail_null("aqa_permute: dims is not a permutation of 0..%d (entry %d = %d)", t->ndim - 1, i,
                                 dims[i]);
        seen[d[i]] = true;
        shape[i] = t->shape[d[i]];
        stride[i] = t->stride[d[i]];
    }
    aqa_node *n = NULL;
    aqa_tensor *out = make_view(t, t->ndim, shape, stride, t->offset, "permute", permute_backward, &n);
    if (n)
        for (int i = 0; i < t->ndim; i++) n->ints[i] = d[i];
    return out;
}

aqa_tensor *aqa_transpose(aqa_tensor *t, int dim0, int dim1) {
    if (!aqa__check_inputs("aqa_transpose", 1, &t)) return NULL;
    int a = aqa_wrap_dim(dim0, t->ndim), b = aqa_wrap_dim(dim1, t->ndim);
    if (a < 0 || b < 0) return aqa_fail_null("aqa_transpose: dims %d, %d out of range for %d dimensions", dim0, dim1, t->ndim);
    int dims[AQA_MAX_DIMS] = {0};
    for (int i = 0; i < t->ndim; i++) dims[i] = i;
    if (t->ndim == 0) return aqa_permute(t, dims);
    dims[a] = b;
    dims[b] = a;
    return aqa_permute(t, dims);
}

/* Gradient of a strided sub-view: zeros of the input shape with g written into the same view. */
static void slice_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    aqa_tensor *z = aqa_full_on(n->in_ndim[0], n->in_shape[0], 0.0, g->dtype, aqa_tensor_device(g));
    if (!z) return;
    int dim = (int)n->ints[0];
    aqa_tensor *v = aqa_slice(z, dim, n->ints[1], n->ints[2], n->ints[3]);
    aqa_tensor *src = n->ints[4] ? aqa_unsqueeze(g, dim) : g; /* select removed the dim */
    if (!v || !src || aqa_copy_(v, src) != AQA_OK) return;
    grad_in[0] = z;
}

aqa_tensor *aqa_slice(aqa_tensor *t, int dim, int64_t start, int64_t end, int64_t step) {
    if (!aqa__check_inputs("aqa_slice", 1, &t)) return NULL;
    int d = aqa_wrap_dim(dim, t->ndim);
    if (d < 0 || t->ndim == 0) return aqa_fail_null("aqa_slice: dim %d out of range for %d dimensions", dim, t->ndim);
    if (step <= 0) return aqa_fail_null("aqa_slice: step must be positive, got %lld", (long long)step);
    int64_t size = t->shape[d];
    /* Python slice clamping */
    if (start < 0) start += size;
    if (end < 0) end += size;
    if (start < 0) start = 0;
    if (start > size) start = size;
    if (end > size) end = size;
    if (end < start) end = start;
    int64_t shape[AQA_MAX_DIMS], stride[AQA_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    memcpy(stride, t->stride, sizeof stride);
    shape[d] = (end - start + step - 1) / step;
    stride[d] = t->stride[d] * step;
    aqa_node *n = NULL;
    aqa_tensor *out = make_view(t, t->ndim, shape, stride, t->offset + start * t->stride[d], "slice",
                                slice_backward, &n);
    if (n) {
        n->ints[0] = d;
        n->ints[1] = start;
        n->ints[2] = end;
        n->ints[3] = step;
        n->ints[4] = 0;
    }
    return out;
}

aqa_tensor *aqa_narrow(aqa_tensor *t, int dim, int64_t start, int64_t length) {
    if (!aqa__check_inputs("aqa_narrow", 1, &t)) return NULL;
    int d = aqa_wrap_dim(dim, t->ndim);
    if (d < 0 || t->ndim == 0) return aqa_fail_null("aqa_narrow: dim %d out of range for %d dimensions", dim, t->ndim);
    if (start < 0) start += t->shape[d];
    if (start < 0 || length < 0 || start + length > t->shape[d])
        return aqa_fail_null("aqa_narrow: start %lld + length %lld exceeds dimension %d of size %lld", (long long)start,
                             (long long)length, d, (long long)t->shape[d]);
    return aqa_slice(t, d, start, start + length, 1);
}

aqa_tensor *aqa_select(aqa_tensor *t, int dim, int64_t index) {
    if (!aqa__check_inputs("aqa_select", 1, &t)) return NULL;
    int d = aqa_wrap_dim(dim, t->ndim);
    if (d < 0 || t->ndim == 0) return aqa_fail_null("aqa_select: dim %d out of range for %d dimensions", dim, t->ndim);
    int64_t size = t->shape[d];
    if (index < -size || index >= size)
        return aqa_fail_null("aqa_select: index %lld out of range for dimension %d of size %lld", (long long)index, d,
                             (long long)size);
    if (index < 0) index += size;
    int64_t shape[AQA_MAX_DIMS], stride[AQA_MAX_DIMS];
    int n = 0;
    for (int i = 0; i < t->ndim; i++) {
        if (i == d) continue;
        shape[n] = t->shape[i];
        stride[n++] = t->stride[i];
    }
    aqa_node *node = NULL;
    aqa_tensor *out = make_view(t, n, shape, stride, t->offset + index * t->stride[d], "select", slice_backward, &node);
    if (node) {
        node->ints[0] = d;
        node->ints[1] = index;
        node->ints[2] = index + 1;
        node->ints[3] = 1;
        node->ints[4] = 1;
    }
    return out;
}

static void expand_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    grad_in[0] = g; /* the engine sums broadcast gradients back to the input shape */
}

aqa_tensor *aqa_expand(aqa_tensor *t, int ndim, const int64_t *shape) {
    if (!aqa__check_inputs("aqa_expand", 1, &t)) return NULL;
    if (ndim < t->ndim || ndim > AQA_MAX_DIMS) {
        char buf[128];
        return aqa_fail_null("aqa_expand: cannot expand a tensor of shape %s to %d dimensions",
                             aqa_shape_str(t, buf, sizeof buf), ndim);
    }
    int64_t s[AQA_MAX_DIMS], st[AQA_MAX_DIMS];
    int lead = ndim - t->ndim;
    for (int i = 0; i < ndim; i++) {
        int j = i - lead;
        int64_t want = shape[i];
        if (j < 0) {
            if (want < 0) return aqa_fail_null("aqa_expand: -1 not allowed for a new leading dimension %d", i);
            s[i] = want;
            st[i] = 0;
        } else if (want == -1 || want == t->shape[j]) {
            s[i] = t->shape[j];
            st[i] = t->stride[j];
        } else if (t->shape[j] == 1 && want >= 0) {
            s[i] = want;
            st[i] = 0;
        } else {
            char buf[128];
            return aqa_fail_null("aqa_expand: dimension %d of shape %s has size %lld, cannot expand to %lld", j,
                                 aqa_shape_str(t, buf, sizeof buf), (long long)t->shape[j], (long long)want);
        }
    }
    return make_view(t, ndim, s, st, t->offset, "expand", expand_backward, NULL);
}

aqa_tensor *aqa_squeeze(aqa_tensor *t, int dim) {
    if (!aqa__check_inputs("aqa_squeeze", 1, &t)) return NULL;
    int64_t shape[AQA_MAX_DIMS], stride[AQA_MAX_DIMS];
    int n = 0;
    int d = dim == AQA_ALL_DIMS ? -1 : aqa_wrap_dim(dim, t->ndim);
    if (dim != AQA_ALL_DIMS && d < 0)
        return aqa_fail_null("aqa_squeeze: dim %d out of range for %d dimensions", dim, t->ndim);
    for (int i = 0; i < t->ndim; i++) {
        bool drop = t->shape[i] == 1 && (dim == AQA_ALL_DIMS || i == d);
        if (drop) continue;
        shape[n] = t->shape[i];
        stride[n++] = t->stride[i];
    }
    return make_view(t, n, shape, stride, t->offset, "squeeze", reshape_backward, NULL);
}

aqa_tensor *aqa_unsqueeze(aqa_tensor *t, int dim) {
    if (!aqa__check_inputs("aqa_unsqueeze", 1, &t)) return NULL;
    if (t->ndim >= AQA_MAX_DIMS) return aqa_fail_null("aqa_unsqueeze: already %d dimensions", t->ndim);
    int d = aqa_wrap_dim(dim, t->ndim + 1);
    if (d < 0) return aqa_fail_null("aqa_unsqueeze: dim %d out of range for %d dimensions", dim, t->ndim);
    int64_t shape[AQA_MAX_DIMS], stride[AQA_MAX_DIMS];
    int n = 0;
    for (int i = 0; i <= t->ndim; i++) {
        if (i == d) {
            shape[n] = 1;
            stride[n++] = i < t->ndim ? t->shape[i] * t->stride[i] : 1;
        }
        if (i < t->ndim) {
            shape[n] = t->shape[i];
            stride[n++] = t->stride[i];
        }
    }
    return make_view(t, n, shape, stride, t->offset, "unsqueeze", reshape_backward, NULL);
}
