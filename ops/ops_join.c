/* ops_join.c: joining, splitting and padding: aqa_cat, aqa_stack, aqa_split, aqa_chunk, aqa_pad
 * (front-ends and backward functions; see ops.h).
 *
 * cat/stack allocate the output once and let the backend's strided copy write each input into
 * its slice of the output (with dtype conversion, since inputs of different dtypes promote as in
 * torch.cat).  Their backward hands each input a view (narrow/select) of the output gradient.
 * split/chunk return narrow views.  pad fills the output with the constant and copies the part
 * of the input that survives (negative pads crop); its backward is pad with the pads negated,
 * which crops the gradient back to the input's shape and fills cropped positions with 0. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/autograd.h"
#include "tensor/backend.h"
#include "ops/ops.h"
#include "tensor/tensor-impl.h"

/* ---- helpers ----------------------------------------------------------------------------- */

static char *shape_str(const aqa_tensor *t, char *buf, size_t n) { return (char *)aqa_shape_str(t, buf, n); }

/* The 1-d empty tensors torch.cat skips for legacy reasons (shape [0]). */
static bool legacy_empty(const aqa_tensor *t) { return t->ndim == 1 && t->shape[0] == 0; }

/* True if recording a node for these inputs is possible (grad mode on and one requires grad). */
static bool wants_grad(aqa_tensor *const *ts, int n) {
    if (!aqa_is_grad_enabled()) return false;
    for (int i = 0; i < n; i++)
        if (ts[i]->requires_grad) return true;
    return false;
}

/* An empty [0] tensor of g's dtype and device (gradient of an input cat skipped). */
static aqa_tensor *empty_like_skipped(const aqa_tensor *g) {
    aqa_tensor *t = aqa__new_unowned(1, (const int64_t[]){0}, g->dtype, aqa_tensor_device(g));
    return t ? aqa__own(t) : NULL;
}

/* ---- cat / stack ----------------------------------------------------------------------------- */

/* Output geometry of a join, computed once by join_plan. */
typedef struct join_plan_t {
    int ndim;                      /* output dimensions */
    int64_t shape[AQA_MAX_DIMS];   /* output shape */
    int dim;                       /* wrapped dimension */
    aqa_dtype dtype;               /* promoted dtype */
} join_plan_t;

/* Validates the inputs of cat (stack false) or stack and computes the output geometry. */
static bool join_plan(const char *op, aqa_tensor *const *ts, int n, int dim, bool stack, join_plan_t *p) {
    char b1[128], b2[128];
    p->dtype = ts[0]->dtype;
    for (int i = 1; i < n; i++) p->dtype = aqa__promote(p->dtype, ts[i]->dtype);
    if (stack) {
        for (int i = 1; i < n; i++)
            if (!aqa_same_shape(ts[i], ts[0])) {
                aqa_fail(AQA_EINVAL, "%s: expects tensors of equal shape, got %s at entry 0 and %s at entry %d", op,
                         shape_str(ts[0], b1, sizeof b1), shape_str(ts[i], b2, sizeof b2), i);
                return false;
            }
        int nd = ts[0]->ndim + 1;
        if (nd > AQA_MAX_DIMS) {
            aqa_fail(AQA_EINVAL, "%s: result would have %d dimensions (at most %d)", op, nd, AQA_MAX_DIMS);
            return false;
        }
        int d = dim < 0 ? dim + nd : dim;
        if (d < 0 || d >= nd) {
            aqa_fail(AQA_EINVAL, "%s: dimension %d out of range for %d-d inputs (expected [%d, %d])", op, dim,
                     nd - 1, -nd, nd - 1);
            return false;
        }
        p->ndim = nd;
        p->dim = d;
        for (int k = 0, j = 0; k < nd; k++) p->shape[k] = k == d ? n : ts[0]->shape[j++];
        return true;
    }
    const aqa_tensor *ref = NULL;
    int ref_i = -1;
    for (int i = 0; i < n; i++) {
        if (ts[i]->ndim == 0) {
            aqa_fail(AQA_EINVAL, "%s: zero-dimensional tensor (at position %d) cannot be concatenated", op, i);
            return false;
        }
        if (!ref && !legacy_empty(ts[i])) {
            ref = ts[i];
            ref_i = i;
        }
    }
    if (!ref) { /* only [0] tensors: the result is [0] */
        p->ndim = 1;
        p->shape[0] = 0;
        p->dim = 0;
        return true;
    }
    int nd = ref->ndim, d = aqa_wrap_dim(dim, nd);
    if (d < 0) {
        aqa_fail(AQA_EINVAL, "%s: dimension %d out of range for %d-d tensors (expected [%d, %d])", op, dim, nd, -nd,
                 nd - 1);
        return false;
    }
    p->ndim = nd;
    p->dim = d;
    memcpy(p->shape, ref->shape, sizeof(int64_t) * (size_t)nd);
    p->shape[d] = 0;
    for (int i = 0; i < n; i++) {
        const aqa_tensor *t = ts[i];
        if (legacy_empty(t)) continue;
        if (t->ndim != nd) {
            aqa_fail(AQA_EINVAL, "%s: tensors must have the same number of dimensions: tensor %d has %d, tensor %d has %d",
                     op, ref_i, nd, i, t->ndim);
            return false;
        }
        for (int k = 0; k < nd; k++)
            if (k != d && t->shape[k] != ref->shape[k]) {
                aqa_fail(AQA_EINVAL,
                         "%s: sizes must match except in dimension %d: tensor %d has shape %s, tensor %d has shape %s",
                         op, d, ref_i, shape_str(ref, b1, sizeof b1), i, shape_str(t, b2, sizeof b2));
                return false;
            }
        p->shape[d] += t->shape[d];
    }
    return true;
}

static void cat_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    int dim = (int)n->ints[0];
    int64_t off = 0;
    for (int i = 0; i < n->n_inputs; i++) {
        /* Skipped [0] inputs of a multi-dimensional cat get an empty gradient. */
        bool skipped = n->in_ndim[i] == 1 && n->in_shape[i][0] == 0 && g->ndim != 1;
        int64_t len = skipped ? 0 : n->in_shape[i][dim];
        if (n->needs_grad[i]) grad_in[i] = skipped ? empty_like_skipped(g) : aqa_narrow(g, dim, off, len);
        off += len;
    }
}

static void stack_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    int dim = (int)n->ints[0];
    for (int i = 0; i < n->n_inputs; i++)
        if (n->needs_grad[i]) grad_in[i] = aqa_select(g, dim, i);
}

/* Copies the inputs into a new output laid out by the plan and records one node (n must not
 * exceed AQA_NODE_MAX_INPUTS when a node is wanted). */
static aqa_tensor *join_direct(aqa_tensor *const *ts, int n, bool stack, const join_plan_t *p) {
    aqa_device dev = aqa_tensor_device(ts[0]);
    const aqa_backend *be = aqa_backend_for(dev);
    if (!be) return NULL;
    aqa_tensor *out = aqa__new_unowned(p->ndim, p->shape, p->dtype, dev);
    if (!out) return NULL;
    int d = p->dim;
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        const aqa_tensor *t = ts[i];
        aqa_tensor v = aqa__geometry_of(out);
        if (stack) {
            for (int k = d; k < out->ndim - 1; k++) {
                v.shape[k] = out->shape[k + 1];
                v.stride[k] = out->stride[k + 1];
            }
            v.ndim = out->ndim - 1;
            v.offset += i * out->stride[d];
        } else {
            if (legacy_empty(t) && p->ndim != 1) continue;
            v.shape[d] = t->shape[d];
            v.offset += off * out->stride[d];
            off += t->shape[d];
        }
        if (aqa_numel(t) == 0) continue;
        if (be->copy(&v, t) != AQA_OK) {
            aqa__release(out);
            return NULL;
        }
    }
    aqa__own(out);
    aqa_node *node = aqa_node_record(stack ? "stack" : "cat", stack ? stack_backward : cat_backward, n, ts, out);
    if (node) node->ints[0] = d;
    return out;
}

/* Joins any number of inputs.  A node has at most AQA_NODE_MAX_INPUTS edges, so when a graph is
 * being recorded for more inputs, groups are joined first and their results joined along the
 * same dimension (cat of partial cats / partial stacks): the values are identical, only the
 * graph is a small tree. */
static aqa_tensor *join(aqa_tensor *const *ts, int n, bool stack, const join_plan_t *p) {
    if (n <= AQA_NODE_MAX_INPUTS || !wants_grad(ts, n)) return join_direct(ts, n, stack, p);
    int groups = (n + AQA_NODE_MAX_INPUTS - 1) / AQA_NODE_MAX_INPUTS;
    aqa_tensor **parts = calloc((size_t)groups, sizeof *parts);
    if (!parts) return aqa_fail_null("aqa_cat: out of memory");
    aqa_tensor *out = NULL;
    aqa_scope_begin();
    bool ok = true;
    for (int g = 0; g < groups && ok; g++) {
        int first = g * AQA_NODE_MAX_INPUTS, cnt = n - first < AQA_NODE_MAX_INPUTS ? n - first : AQA_NODE_MAX_INPUTS;
        join_plan_t gp;
        ok = join_plan(stack ? "aqa_stack" : "aqa_cat", ts + first, cnt, p->dim, stack, &gp) &&
             (parts[g] = join_direct(ts + first, cnt, stack, &gp)) != NULL;
    }
    if (ok) {
        join_plan_t cp;
        /* partial stacks already carry the new dimension: they are concatenated */
        if (join_plan("aqa_cat", parts, groups, p->dim, false, &cp)) out = join(parts, groups, false, &cp);
    }
    if (out) aqa_keep(out);
    aqa_scope_end();
    free(parts);
    return out;
}

aqa_tensor *aqa_cat(aqa_tensor *const *ts, int n, int dim) {
    if (!ts || n <= 0) return aqa_fail_null("aqa_cat: expected a non-empty list of tensors");
    if (!aqa__check_inputs("aqa_cat", n, ts)) return NULL;
    join_plan_t p;
    if (!join_plan("aqa_cat", ts, n, dim, false, &p)) return NULL;
    return join(ts, n, false, &p);
}

aqa_tensor *aqa_stack(aqa_tensor *const *ts, int n, int dim) {
    if (!ts || n <= 0) return aqa_fail_null("aqa_stack: expected a non-empty list of tensors");
    if (!aqa__check_inputs("aqa_stack", n, ts)) return NULL;
    join_plan_t p;
    if (!join_plan("aqa_stack", ts, n, dim, true, &p)) return NULL;
    return join(ts, n, true, &p);
}

/* ---- split / chunk ------------------------------------------------------------------------- */

/* Writes the first min(count, max_out) of `count` narrow views of split_size elements along d
 * (the last ones clipped to what is left) and returns count, or -1 on error (nothing written). */
static int split_views(const char *op, aqa_tensor *x, int d, int64_t count, int64_t split_size,
                       aqa_tensor **out, int max_out) {
    if (count > INT_MAX) {
        aqa_fail(AQA_EINVAL, "%s: %lld pieces is too many", op, (long long)count);
        return -1;
    }
    int64_t size = x->shape[d];
    int written = 0;
    for (int64_t i = 0; i < count && i < max_out; i++) {
        int64_t start = i * split_size < size ? i * split_size : size;
        int64_t len = size - start < split_size ? size - start : split_size;
        out[i] = aqa_narrow(x, d, start, len);
        if (!out[i]) {
            for (int k = 0; k < written; k++) {
                aqa_tensor_free(out[k]);
                out[k] = NULL;
            }
            return -1;
        }
        written++;
    }
    return (int)count;
}

static int split_dim(const char *op, aqa_tensor *x, int dim) {
    if (x->ndim == 0) {
        aqa_fail(AQA_EINVAL, "%s: cannot split a 0-d tensor", op);
        return -1;
    }
    int d = aqa_wrap_dim(dim, x->ndim);
    if (d < 0)
        aqa_fail(AQA_EINVAL, "%s: dimension %d out of range for a %d-d tensor", op, dim, x->ndim);
    return d;
}

int aqa_split(aqa_tensor *x, int64_t split_size, int dim, aqa_tensor **out, int max_out) {
    const char *op = "aqa_split";
    if (!x) return -1;
    if (max_out > 0 && !out) {
        aqa_fail(AQA_EINVAL, "%s: out is NULL", op);
        return -1;
    }
    int d = split_dim(op, x, dim);
    if (d < 0) return -1;
    int64_t size = x->shape[d];
    if (split_size < 0 || (split_size == 0 && size != 0)) {
        aqa_fail(AQA_EINVAL, "%s: split_size %lld is invalid for dimension %d of size %lld", op,
                 (long long)split_size, d, (long long)size);
        return -1;
    }
    int64_t count = split_size == 0 ? 1 : (size + split_size - 1) / split_size;
    if (count < 1) count = 1;
    return split_views(op, x, d, count, split_size, out, max_out);
}

int aqa_chunk(aqa_tensor *x, int chunks, int dim, aqa_tensor **out, int max_out) {
    const char *op = "aqa_chunk";
    if (!x) return -1;
    if (max_out > 0 && !out) {
        aqa_fail(AQA_EINVAL, "%s: out is NULL", op);
        return -1;
    }
    if (chunks <= 0) {
        aqa_fail(AQA_EINVAL, "%s: chunks must be positive, got %d", op, chunks);
        return -1;
    }
    int d = split_dim(op, x, dim);
    if (d < 0) return -1;
    int64_t size = x->shape[d];
    int64_t split_size = (size + chunks - 1) / chunks;
    if (size == 0) /* torch: `chunks` empty pieces */
        return split_views(op, x, d, chunks, 0, out, max_out);
    int64_t count = (size + split_size - 1) / split_size;
    return split_views(op, x, d, count, split_size, out, max_out);
}

/* ---- pad ------------------------------------------------------------------------------------ */

/* Saved pads of a pad node. */
typedef struct pad_ctx {
    int n_pads;                       /* number of entries */
    int64_t pads[2 * AQA_MAX_DIMS];   /* as given to aqa_pad */
} pad_ctx;

static void pad_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    const pad_ctx *c = n->ctx;
    int64_t neg[2 * AQA_MAX_DIMS];
    for (int i = 0; i < c->n_pads; i++) neg[i] = -c->pads[i];
    if (n->needs_grad[0]) grad_in[0] = aqa_pad(g, c->n_pads, neg, 0.0);
}

aqa_tensor *aqa_pad(aqa_tensor *x, int n_pads, const int64_t *pads, double value) {
    const char *op = "aqa_pad";
    if (!aqa__check_inputs(op, 1, &x)) return NULL;
    if (n_pads < 0 || n_pads % 2 != 0) return aqa_fail_null("%s: padding length must be even, got %d", op, n_pads);
    if (n_pads / 2 > x->ndim)
        return aqa_fail_null("%s: padding length %d is more than twice the number of dimensions %d", op, n_pads,
                             x->ndim);
    if (n_pads > 0 && !pads) return aqa_fail_null("%s: pads is NULL", op);
    int nd = x->ndim;
    int64_t shape[AQA_MAX_DIMS];
    aqa_tensor src = aqa__geometry_of(x); /* the part of x that survives the crops */
    int64_t dst_start[AQA_MAX_DIMS] = {0};
    memcpy(shape, x->shape, sizeof(int64_t) * (size_t)nd);
    for (int j = 0; j < n_pads / 2; j++) {
        int d = nd - 1 - j;
        int64_t lo = pads[2 * j], hi = pads[2 * j + 1], size = x->shape[d];
        int64_t crop_lo = lo < 0 ? -lo : 0, crop_hi = hi < 0 ? -hi : 0;
        int64_t keep = size - crop_lo - crop_hi;
        if (keep < 0)
            return aqa_fail_null("%s: padding (%lld, %lld) crops more than the size %lld of dimension %d", op,
                                 (long long)lo, (long long)hi, (long long)size, d);
        shape[d] = size + lo + hi;
        src.shape[d] = keep;
        src.offset += crop_lo * x->stride[d];
        dst_start[d] = lo > 0 ? lo : 0;
    }
    aqa_device dev = aqa_tensor_device(x);
    const aqa_backend *be = aqa_backend_for(dev);
    if (!be) return NULL;
    aqa_tensor *out = aqa__new_unowned(nd, shape, x->dtype, dev);
    if (!out) return NULL;
    aqa_tensor dst = aqa__geometry_of(out);
    for (int d = 0; d < nd; d++) {
        dst.shape[d] = src.shape[d];
        dst.offset += dst_start[d] * out->stride[d];
    }
    int64_t kept = aqa_numel(&src);
    aqa_status st = AQA_OK;
    if (kept < aqa_numel(out)) st = be->fill(out, value);
    if (st == AQA_OK && kept > 0) st = be->copy(&dst, &src);
    if (st != AQA_OK) {
        aqa__release(out);
        return NULL;
    }
    aqa__own(out);
    aqa_node *node = aqa_node_record("pad", pad_backward, 1, &x, out);
    if (node) {
        pad_ctx *c = calloc(1, sizeof *c);
        if (!c) { /* the engine would have nothing to run backward with */
            aqa_tensor_free(out);
            return aqa_fail_null("%s: out of memory", op);
        }
        c->n_pads = n_pads;
        if (n_pads) memcpy(c->pads, pads, sizeof(int64_t) * (size_t)n_pads);
        node->ctx = c;
        node->ctx_free = free;
    }
    return out;
}
