/* ops_index.c: indexing ops: aqa_index_select, aqa_gather, aqa_embedding, aqa_one_hot (front-ends
 * and backward functions; see ops.h).  Kernels: the backend's index_select, index_add, gather
 * and scatter_add slots (tensor/cpu_index.c on the CPU).
 *
 * Index tensors are int64.  The kernels check every index against the indexed dimension (torch
 * allows no negative indices in these ops either) and the front-ends prefix the kernel's message
 * with the public op's name, so a bad id reads "aqa_embedding: index_select: index 9 is out of
 * range for dimension 0 with size 5".
 *
 * Backward: index_select/embedding -> index_add of the gradient into zeros of the input's shape;
 * gather -> scatter_add into zeros.  Those two "into zeros" steps are themselves recorded ops
 * (their derivative is index_select / gather again), so they are differentiable like the rest. */
#include <stdlib.h>
#include <string.h>

#include "autograd/autograd.h"
#include "tensor/backend.h"
#include "ops/ops.h"
#include "tensor/tensor-impl.h"

/* ---- helpers ----------------------------------------------------------------------------- */

/* Re-records the last error with the public op's name in front. */
static void prefix_error(const char *op) {
    char msg[512];
    aqa_status st = aqa_last_status();
    snprintf(msg, sizeof msg, "%s", aqa_last_error());
    aqa_fail(st ? st : AQA_EINVAL, "%s: %s", op, msg);
}

/* dim wrapped for a tensor of ndim dimensions (0-d tensors accept 0 and -1, as torch). */
static int wrap_dim0(int dim, int ndim) {
    int n = ndim > 0 ? ndim : 1;
    if (dim < -n || dim >= n) return -1;
    return dim < 0 ? dim + n : dim;
}

static bool check_index_dtype(const char *op, const aqa_tensor *index) {
    if (index->dtype == AQA_I64) return true;
    aqa_fail(AQA_EINVAL, "%s: index must be int64, got %s", op, aqa_dtype_name(index->dtype));
    return false;
}

/* A new zero tensor on a device (not registered). */
static aqa_tensor *zeros_unowned(int ndim, const int64_t *shape, aqa_dtype dtype, aqa_device dev,
                                 const aqa_backend *be) {
    aqa_tensor *t = aqa__new_unowned(ndim, shape, dtype, dev);
    if (t && be->fill(t, 0.0) != AQA_OK) {
        aqa__release(t);
        return NULL;
    }
    return t;
}

/* ---- private differentiable ops used by the backward functions ---------------------------------- */

static void index_add_zeros_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    if (n->needs_grad[0]) grad_in[0] = aqa_index_select(g, (int)n->ints[0], n->saved[0]);
}

/* zeros(shape).index_add_(dim, index, src), recorded (derivative: index_select). */
static aqa_tensor *index_add_zeros(int ndim, const int64_t *shape, int dim, aqa_tensor *index, aqa_tensor *src) {
    if (!aqa__check_inputs("index_add", 2, (aqa_tensor *[]){index, src})) return NULL;
    aqa_device dev = aqa_tensor_device(src);
    const aqa_backend *be = aqa_backend_for(dev);
    if (!be) return NULL;
    aqa_tensor *out = zeros_unowned(ndim, shape, src->dtype, dev, be);
    if (!out) return NULL;
    if (be->index_add(out, dim, index, src) != AQA_OK) {
        aqa__release(out);
        return NULL;
    }
    aqa__own(out);
    aqa_node *n = aqa_node_record("index_add", index_add_zeros_backward, 1, &src, out);
    if (n) {
        n->ints[0] = dim;
        aqa_node_save(n, index);
    }
    return out;
}

static void scatter_add_zeros_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    if (n->needs_grad[0]) grad_in[0] = aqa_gather(g, (int)n->ints[0], n->saved[0]);
}

/* zeros(shape).scatter_add_(dim, index, src), recorded (derivative: gather). */
static aqa_tensor *scatter_add_zeros(int ndim, const int64_t *shape, int dim, aqa_tensor *index, aqa_tensor *src) {
    if (!aqa__check_inputs("scatter_add", 2, (aqa_tensor *[]){index, src})) return NULL;
    aqa_device dev = aqa_tensor_device(src);
    const aqa_backend *be = aqa_backend_for(dev);
    if (!be) return NULL;
    aqa_tensor *out = zeros_unowned(ndim, shape, src->dtype, dev, be);
    if (!out) return NULL;
    if (be->scatter_add(out, dim, index, src) != AQA_OK) {
        aqa__release(out);
        return NULL;
    }
    aqa__own(out);
    aqa_node *n = aqa_node_record("scatter_add", scatter_add_zeros_backward, 1, &src, out);
    if (n) {
        n->ints[0] = dim;
        aqa_node_save(n, index);
    }
    return out;
}

/* ---- index_select --------------------------------------------------------------------------- */

static void index_select_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    if (n->needs_grad[0])
        grad_in[0] = index_add_zeros(n->in_ndim[0], n->in_shape[0], (int)n->ints[0], n->saved[0], g);
}

aqa_tensor *aqa_index_select(aqa_tensor *x, int dim, aqa_tensor *index) {
    const char *op = "aqa_index_select";
    if (!aqa__check_inputs(op, 2, (aqa_tensor *[]){x, index})) return NULL;
    if (!check_index_dtype(op, index)) return NULL;
    if (index->ndim > 1) return aqa_fail_null("%s: index must be 0-d or 1-d, got %d dimensions", op, index->ndim);
    int d = wrap_dim0(dim, x->ndim);
    if (d < 0) return aqa_fail_null("%s: dimension %d out of range for a %d-d tensor", op, dim, x->ndim);
    int64_t n = aqa_numel(index);
    if (x->ndim == 0 && n != 1)
        return aqa_fail_null("%s: index into a 0-d tensor must have one value, got %lld", op, (long long)n);
    int64_t shape[AQA_MAX_DIMS];
    memcpy(shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
    if (x->ndim) shape[d] = n;
    aqa_device dev = aqa_tensor_device(x);
    const aqa_backend *be = aqa_backend_for(dev);
    if (!be) return NULL;
    aqa_tensor *out = aqa__new_unowned(x->ndim, shape, x->dtype, dev);
    if (!out) return NULL;
    if (be->index_select(out, x, d, index) != AQA_OK) {
        prefix_error(op);
        aqa__release(out);
        return NULL;
    }
    aqa__own(out);
    aqa_node *node = aqa_node_record("index_select", index_select_backward, 1, &x, out);
    if (node) {
        node->ints[0] = d;
        aqa_node_save(node, index);
    }
    return out;
}

/* ---- gather ------------------------------------------------------------------------------- */

static void gather_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    if (n->needs_grad[0])
        grad_in[0] = scatter_add_zeros(n->in_ndim[0], n->in_shape[0], (int)n->ints[0], n->saved[0], g);
}

aqa_tensor *aqa_gather(aqa_tensor *x, int dim, aqa_tensor *index) {
    const char *op = "aqa_gather";
    if (!aqa__check_inputs(op, 2, (aqa_tensor *[]){x, index})) return NULL;
    if (!check_index_dtype(op, index)) return NULL;
    int d = wrap_dim0(dim, x->ndim);
    if (d < 0) return aqa_fail_null("%s: dimension %d out of range for a %d-d tensor", op, dim, x->ndim);
    aqa_device dev = aqa_tensor_device(x);
    const aqa_backend *be = aqa_backend_for(dev);
    if (!be) return NULL;
    aqa_tensor *out = aqa__new_unowned(index->ndim, index->shape, x->dtype, dev);
    if (!out) return NULL;
    /* The kernel checks the shapes (index.ndim == x.ndim, index.size(k) <= x.size(k) for k != dim)
     * and every index value. */
    if (be->gather(out, x, d, index) != AQA_OK) {
        prefix_error(op);
        aqa__release(out);
        return NULL;
    }
    aqa__own(out);
    aqa_node *node = aqa_node_record("gather", gather_backward, 1, &x, out);
    if (node) {
        node->ints[0] = d;
        aqa_node_save(node, index);
    }
    return out;
}

/* ---- embedding ---------------------------------------------------------------------------- */

static void embedding_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    if (!n->needs_grad[0]) return;
    aqa_tensor *ids = aqa_reshape(n->saved[0], 1, (const int64_t[]){-1});
    aqa_tensor *g2 = aqa_reshape(g, 2, (const int64_t[]){-1, n->in_shape[0][1]});
    grad_in[0] = index_add_zeros(2, n->in_shape[0], 0, ids, g2);
}

aqa_tensor *aqa_embedding(aqa_tensor *weight, aqa_tensor *ids) {
    const char *op = "aqa_embedding";
    char buf[128];
    if (!aqa__check_inputs(op, 2, (aqa_tensor *[]){weight, ids})) return NULL;
    if (!check_index_dtype(op, ids)) return NULL;
    if (weight->ndim != 2)
        return aqa_fail_null("%s: weight must be 2-d [num, dim], got shape %s", op, aqa_shape_str(weight, buf, sizeof buf));
    if (ids->ndim + 1 > AQA_MAX_DIMS)
        return aqa_fail_null("%s: ids with %d dimensions give too many output dimensions", op, ids->ndim);
    int64_t n = aqa_numel(ids), dim = weight->shape[1];
    int64_t shape[AQA_MAX_DIMS];
    memcpy(shape, ids->shape, sizeof(int64_t) * (size_t)ids->ndim);
    shape[ids->ndim] = dim;
    aqa_device dev = aqa_tensor_device(weight);
    const aqa_backend *be = aqa_backend_for(dev);
    if (!be) return NULL;
    /* The kernel wants a 1-d index: a strided 1-d view when ids' layout allows, else a copy. */
    aqa_tensor flat = aqa__geometry_of(ids), *copy = NULL;
    if (ids->ndim > 1) {
        if (!aqa_is_contiguous(ids)) {
            copy = aqa_contiguous(ids);
            if (!copy) return NULL;
            flat = aqa__geometry_of(copy);
        }
        flat.ndim = 1;
        flat.shape[0] = n;
        flat.stride[0] = 1;
    }
    aqa_tensor *out = aqa__new_unowned(ids->ndim + 1, shape, weight->dtype, dev);
    if (!out) {
        aqa_tensor_free(copy);
        return NULL;
    }
    aqa_tensor rows = aqa__geometry_of(out); /* out seen as [n, dim] */
    rows.ndim = 2;
    rows.shape[0] = n;
    rows.shape[1] = dim;
    rows.stride[0] = dim;
    rows.stride[1] = 1;
    aqa_status st = be->index_select(&rows, weight, 0, &flat);
    aqa_tensor_free(copy);
    if (st != AQA_OK) {
        prefix_error(op);
        aqa__release(out);
        return NULL;
    }
    aqa__own(out);
    aqa_node *node = aqa_node_record("embedding", embedding_backward, 1, &weight, out);
    if (node) aqa_node_save(node, ids);
    return out;
}

/* ---- one_hot ------------------------------------------------------------------------------ */

aqa_tensor *aqa_one_hot(aqa_tensor *ids, int64_t num_classes) {
    const char *op = "aqa_one_hot";
    if (!aqa__check_inputs(op, 1, &ids)) return NULL;
    if (ids->dtype != AQA_I64)
        return aqa_fail_null("%s: ids must be int64, got %s", op, aqa_dtype_name(ids->dtype));
    if (ids->ndim + 1 > AQA_MAX_DIMS)
        return aqa_fail_null("%s: ids with %d dimensions give too many output dimensions", op, ids->ndim);
    if (num_classes < -1) return aqa_fail_null("%s: num_classes must be -1 or >= 0, got %lld", op, (long long)num_classes);
    /* The values decide the validity (and with -1 the class count): read them on the host. */
    int64_t n = aqa_numel(ids), lo = 0, hi = -1;
    if (n > 0) {
        int64_t *v = malloc(sizeof(int64_t) * (size_t)n);
        if (!v) return aqa_fail_null("%s: out of memory", op);
        if (aqa_copy_to_host(ids, v, AQA_I64) != AQA_OK) {
            free(v);
            return NULL;
        }
        lo = hi = v[0];
        for (int64_t i = 1; i < n; i++) {
            if (v[i] < lo) lo = v[i];
            if (v[i] > hi) hi = v[i];
        }
        free(v);
    }
    if (lo < 0) return aqa_fail_null("%s: class values must be non-negative, got %lld", op, (long long)lo);
    if (num_classes == -1) {
        if (n == 0) return aqa_fail_null("%s: cannot infer the number of classes from an empty tensor", op);
        num_classes = hi + 1;
    } else if (hi >= num_classes) {
        return aqa_fail_null("%s: class value %lld is not smaller than num_classes %lld", op, (long long)hi,
                             (long long)num_classes);
    }
    int nd = ids->ndim + 1;
    int64_t shape[AQA_MAX_DIMS];
    memcpy(shape, ids->shape, sizeof(int64_t) * (size_t)ids->ndim);
    shape[ids->ndim] = num_classes;
    aqa_device dev = aqa_tensor_device(ids);
    const aqa_backend *be = aqa_backend_for(dev);
    if (!be) return NULL;
    aqa_tensor *out = zeros_unowned(nd, shape, AQA_I64, dev, be);
    if (!out) return NULL;
    aqa_tensor *one = aqa__new_unowned(0, (const int64_t[]){1}, AQA_I64, dev);
    if (!one) {
        aqa__release(out);
        return NULL;
    }
    aqa_status st = be->fill(one, 1.0);
    if (st == AQA_OK && n > 0) {
        /* out.scatter_add_(-1, ids.unsqueeze(-1), ones) */
        aqa_tensor index = aqa__geometry_of(ids), src = aqa__geometry_of(one);
        index.ndim = src.ndim = nd;
        index.shape[nd - 1] = 1;
        index.stride[nd - 1] = 0;
        for (int d = 0; d < nd; d++) {
            src.shape[d] = index.shape[d];
            src.stride[d] = 0;
        }
        st = be->scatter_add(out, nd - 1, &index, &src);
    }
    aqa__release(one);
    if (st != AQA_OK) {
        prefix_error(op);
        aqa__release(out);
        return NULL;
    }
    return aqa__own(out);
}
