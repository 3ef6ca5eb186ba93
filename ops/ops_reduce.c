/* ops_reduce.c: reductions (sum, mean, var, std, max/min, argmax/argmin), softmax,
 * log_softmax, logsumexp and sum_to_shape, with their derivatives.
 *
 * Semantics follow torch: any set of dims (negative allowed, each at most once; none = all),
 * keepdim; sum of bool/int64 is int64, mean/var/std/softmax of integers give float32; var/std
 * divide by max(0, N - correction); max/min along a dim return the first occurrence's index and
 * send the gradient there; full max/min (max_all/min_all) split the gradient evenly between all
 * elements equal to the result, or between the NaNs when the result is NaN (checked against
 * torch 2.x: torch.max(x) / x.amax() backward of [1, 3, 3, 2] is [0, .5, .5, 0], while
 * x.max(0) gives [0, 1, 0, 0]); NaN wins max/min at its first position; argmax over
 * AQA_ALL_DIMS indexes the flattened tensor.  logsumexp of an all -inf slice is -inf and
 * softmax of one is NaN, as torch.  The kernels are the backend's reduce / softmax slots (cpu_reduce.c). */
#include <math.h>
#include <string.h>

#include "autograd/autograd.h"
#include "tensor/backend.h"
#include "ops/ops.h"
#include "tensor/tensor-impl.h"

/* Bit mask of the dims to reduce (all when n_dims == 0); false + error on bad dims. */
static bool dims_mask(const char *op, const aqa_tensor *x, int n_dims, const int *dims, uint32_t *mask) {
    *mask = 0;
    if (n_dims < 0 || (n_dims > 0 && !dims)) {
        aqa_fail(AQA_EINVAL, "%s: bad dims list (n_dims %d)", op, n_dims);
        return false;
    }
    if (n_dims == 0) {
        *mask = x->ndim ? (uint32_t)((1u << x->ndim) - 1) : 0;
        return true;
    }
    for (int i = 0; i < n_dims; i++) {
        int d = aqa_wrap_dim(dims[i], x->ndim);
        if (d < 0) {
            aqa_fail(AQA_EINVAL, "%s: dim %d out of range for a tensor with %d dimensions", op, dims[i], x->ndim);
            return false;
        }
        if (x->ndim == 0) continue; /* a 0-d tensor accepts dim 0 / -1 and reduces nothing */
        if (*mask & (1u << d)) {
            aqa_fail(AQA_EINVAL, "%s: dim %d appears more than once in the list of dims", op, d);
            return false;
        }
        *mask |= 1u << d;
    }
    return true;
}

/* Shape of x with the masked dims set to 1 (keepdim form). */
static void keep_shape(int ndim, const int64_t *shape, uint32_t mask, int64_t *out) {
    for (int d = 0; d < ndim; d++) out[d] = (mask >> d) & 1u ? 1 : shape[d];
}

/* Result shape: the keepdim form, or with the masked dims dropped. Returns its rank. */
static int result_shape(const aqa_tensor *x, uint32_t mask, bool keepdim, int64_t *out) {
    int n = 0;
    for (int d = 0; d < x->ndim; d++) {
        bool red = (mask >> d) & 1u;
        if (!red) out[n++] = x->shape[d];
        else if (keepdim) out[n++] = 1;
    }
    return n;
}

/* Number of elements reduced into each output. */
static int64_t reduced_count(const aqa_tensor *x, uint32_t mask) {
    int64_t c = 1;
    for (int d = 0; d < x->ndim; d++)
        if ((mask >> d) & 1u) c *= x->shape[d];
    return c;
}

/* Runs the backend reduction of x (already in the result dtype) into a fresh, unowned tensor of
 * shape (out_ndim, out_shape) holding the keepdim-form values in order; idx_out (if not NULL)
 * receives the I64 positions in a tensor of the same shape. */
static aqa_tensor *reduce_raw(const char *op, aqa_reduce_op rop, aqa_tensor *x, uint32_t mask,
                              int out_ndim, const int64_t *out_shape, aqa_tensor **idx_out) {
    aqa_device dev = aqa_tensor_device(x);
    const aqa_backend *be = aqa_backend_for(dev);
    if (!be) return NULL;
    if (rop != AQA_RED_SUM && reduced_count(x, mask) == 0 && aqa_numel(x) == 0)
        return aqa_fail_null("%s: cannot reduce over an empty dimension (input has no elements)", op);
    aqa_tensor *out = aqa__new_unowned(out_ndim, out_shape, x->dtype, dev);
    aqa_tensor *idx = idx_out ? aqa__new_unowned(out_ndim, out_shape, AQA_I64, dev) : NULL;
    if (!out || (idx_out && !idx)) {
        aqa__release(out);
        aqa__release(idx);
        return NULL;
    }
    /* The kernel wants the keepdim geometry: same contiguous buffer, x's rank. */
    aqa_tensor kout = *out, kidx;
    kout.ndim = x->ndim;
    keep_shape(x->ndim, x->shape, mask, kout.shape);
    aqa__contiguous_strides(x->ndim, kout.shape, kout.stride);
    if (idx) {
        kidx = *idx;
        kidx.ndim = x->ndim;
        memcpy(kidx.shape, kout.shape, sizeof kout.shape);
        memcpy(kidx.stride, kout.stride, sizeof kout.stride);
    }
    aqa_status st = be->reduce(rop, &kout, idx ? &kidx : NULL, x, mask);
    if (st != AQA_OK) {
        aqa__release(out);
        aqa__release(idx);
        return NULL;
    }
    if (idx_out) *idx_out = idx;
    return out;
}

/* The floating dtype an op computes in: integers and bool give float32. */
static aqa_dtype float_dtype(aqa_dtype dt) { return aqa_dtype_is_float(dt) ? dt : AQA_F32; }

/* x converted to dt (a new tensor, released with put_converted), or x itself (no new reference).
 */
static aqa_tensor *get_converted(aqa_tensor *x, aqa_dtype dt) {
    return x->dtype == dt ? x : aqa_to_dtype(x, dt);
}
static void put_converted(aqa_tensor *orig, aqa_tensor *conv) {
    if (conv && conv != orig) aqa_tensor_free(conv);
}

/* Gradient of a sum-like reduction: g (result shape) viewed in keepdim form and expanded to the
 * input's shape. ints[0] holds the mask. */
static aqa_tensor *expand_to_input(aqa_node *n, aqa_tensor *g) {
    int nd = n->in_ndim[0];
    int64_t kshape[AQA_MAX_DIMS];
    keep_shape(nd, n->in_shape[0], (uint32_t)n->ints[0], kshape);
    aqa_tensor *gk = aqa_reshape(g, nd, kshape);
    return aqa_expand(gk, nd, n->in_shape[0]);
}

/* ---- sum, mean, sum_to_shape ------------------------------------------------------------ */

static void sum_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    grad_in[0] = expand_to_input(n, g);
}

/* Sum over mask into the given result shape, recording a "sum" node. */
static aqa_tensor *sum_into(const char *op, aqa_tensor *x, uint32_t mask, int out_ndim, const int64_t *out_shape) {
    aqa_dtype dt = aqa_dtype_is_float(x->dtype) ? x->dtype : AQA_I64;
    aqa_tensor *xc = get_converted(x, dt);
    if (!xc) return NULL;
    aqa_tensor *out = reduce_raw(op, AQA_RED_SUM, xc, mask, out_ndim, out_shape, NULL);
    put_converted(x, xc);
    if (!out) return NULL;
    aqa__own(out);
    aqa_node *n = aqa_node_record("sum", sum_backward, 1, &x, out);
    if (n) n->ints[0] = mask;
    return out;
}

aqa_tensor *aqa_sum(aqa_tensor *x, int n_dims, const int *dims, bool keepdim) {
    if (!aqa__check_inputs("aqa_sum", 1, &x)) return NULL;
    uint32_t mask;
    if (!dims_mask("aqa_sum", x, n_dims, dims, &mask)) return NULL;
    int64_t shape[AQA_MAX_DIMS];
    int nd = result_shape(x, mask, keepdim, shape);
    return sum_into("aqa_sum", x, mask, nd, shape);
}

aqa_tensor *aqa_sum_all(aqa_tensor *x) { return aqa_sum(x, 0, NULL, false); }

aqa_tensor *aqa_sum_to_shape(aqa_tensor *x, int ndim, const int64_t *shape) {
    if (!aqa__check_inputs("aqa_sum_to_shape", 1, &x)) return NULL;
    int lead = x->ndim - ndim;
    uint32_t mask = 0;
    bool ok = ndim >= 0 && lead >= 0;
    for (int d = 0; ok && d < x->ndim; d++) {
        if (d < lead) {
            mask |= 1u << d;
        } else if (shape[d - lead] != x->shape[d]) {
            if (shape[d - lead] == 1) mask |= 1u << d;
            else ok = false;
        }
    }
    if (!ok) {
        char buf[128];
        return aqa_fail_null("aqa_sum_to_shape: cannot sum a tensor of shape %s to a %d-d shape it does not "
                             "broadcast to", aqa_shape_str(x, buf, sizeof buf), ndim);
    }
    return sum_into("aqa_sum_to_shape", x, mask, ndim, shape);
}

static void mean_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    grad_in[0] = aqa_mul_scalar(expand_to_input(n, g), n->reals[0]);
}

aqa_tensor *aqa_mean(aqa_tensor *x, int n_dims, const int *dims, bool keepdim) {
    if (!aqa__check_inputs("aqa_mean", 1, &x)) return NULL;
    uint32_t mask;
    if (!dims_mask("aqa_mean", x, n_dims, dims, &mask)) return NULL;
    int64_t shape[AQA_MAX_DIMS];
    int nd = result_shape(x, mask, keepdim, shape);
    aqa_tensor *xc = get_converted(x, float_dtype(x->dtype));
    if (!xc) return NULL;
    aqa_tensor *out = reduce_raw("aqa_mean", AQA_RED_SUM, xc, mask, nd, shape, NULL);
    put_converted(x, xc);
    if (!out) return NULL;
    /* 1/0 = inf makes the mean of nothing 0 * inf = NaN, as torch. */
    double scale = 1.0 / (double)reduced_count(x, mask);
    const aqa_backend *be = aqa_backend_for(aqa_tensor_device(out));
    if (be->unary(AQA_UN_MUL_SCALAR, out, out, scale, 0.0) != AQA_OK) {
        aqa__release(out);
        return NULL;
    }
    aqa__own(out);
    aqa_node *n = aqa_node_record("mean", mean_backward, 1, &x, out);
    if (n) {
        n->ints[0] = mask;
        n->reals[0] = scale;
    }
    return out;
}

aqa_tensor *aqa_mean_all(aqa_tensor *x) { return aqa_mean(x, 0, NULL, false); }

/* ---- var, std ---------------------------------------------------------------------------- */

/* Two passes, composed of differentiable ops (autograd derives 2 (x - mean) / (N - correction)):
 * sum((x - mean)^2) / max(0, N - correction). */
aqa_tensor *aqa_var(aqa_tensor *x, int n_dims, const int *dims, int correction, bool keepdim) {
    if (!aqa__check_inputs("aqa_var", 1, &x)) return NULL;
    uint32_t mask;
    if (!dims_mask("aqa_var", x, n_dims, dims, &mask)) return NULL;
    double denom = (double)reduced_count(x, mask) - correction;
    if (denom < 0) denom = 0;
    aqa_scope_begin();
    aqa_tensor *xf = get_converted(x, float_dtype(x->dtype));
    aqa_tensor *m = aqa_mean(xf, n_dims, dims, true);
    aqa_tensor *d = aqa_sub(xf, m);
    aqa_tensor *s = aqa_sum(aqa_mul(d, d), n_dims, dims, keepdim);
    aqa_tensor *v = aqa_keep(aqa_div_scalar(s, denom));
    aqa_scope_end();
    return v;
}

aqa_tensor *aqa_std(aqa_tensor *x, int n_dims, const int *dims, int correction, bool keepdim) {
    if (!aqa__check_inputs("aqa_std", 1, &x)) return NULL;
    aqa_scope_begin();
    aqa_tensor *s = aqa_keep(aqa_sqrt(aqa_var(x, n_dims, dims, correction, keepdim)));
    aqa_scope_end();
    return s;
}

/* ---- max / min along a dim, full max / min, argmax / argmin ------------------------------- */

/* ints[0] = dim, ints[1] = 1 for a 0-d input; saved[0] = positions (result shape). */
static void max_dim_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    int nd = n->in_ndim[0];
    if (n->ints[1]) { /* 0-d input: the value itself */
        grad_in[0] = g;
        return;
    }
    int dim = (int)n->ints[0];
    int64_t kshape[AQA_MAX_DIMS];
    keep_shape(nd, n->in_shape[0], 1u << dim, kshape);
    aqa_tensor *gk = aqa_reshape(g, nd, kshape);
    aqa_tensor *ik = aqa_reshape(n->saved[0], nd, kshape);
    if (!gk || !ik) return;
    aqa_device dev = aqa_tensor_device(g);
    const aqa_backend *be = aqa_backend_for(dev);
    aqa_tensor *gx = aqa__new_unowned(nd, n->in_shape[0], g->dtype, dev);
    if (!gx) return;
    if (be->fill(gx, 0.0) != AQA_OK || be->scatter_add(gx, dim, ik, gk) != AQA_OK) {
        aqa__release(gx);
        return;
    }
    grad_in[0] = aqa__own(gx);
}

static aqa_tensor *max_min_dim(const char *op, aqa_reduce_op rop, aqa_tensor *x, int dim, bool keepdim,
                               aqa_tensor **indices) {
    if (indices) *indices = NULL;
    if (!aqa__check_inputs(op, 1, &x)) return NULL;
    int d = aqa_wrap_dim(dim, x->ndim);
    if (d < 0) return aqa_fail_null("%s: dim %d out of range for a tensor with %d dimensions", op, dim, x->ndim);
    uint32_t mask = x->ndim ? 1u << d : 0;
    if (x->ndim && x->shape[d] == 0)
        return aqa_fail_null("%s: cannot take the %s over dimension %d of size 0", op,
                             rop == AQA_RED_MAX ? "max" : "min", d);
    int64_t shape[AQA_MAX_DIMS];
    int nd = result_shape(x, mask, keepdim, shape);
    aqa_tensor *idx = NULL;
    aqa_tensor *out = reduce_raw(op, rop, x, mask, nd, shape, &idx);
    if (!out) return NULL;
    aqa__own(out);
    aqa_node *n = aqa_node_record(rop == AQA_RED_MAX ? "max_dim" : "min_dim", max_dim_backward, 1, &x, out);
    if (n) {
        n->ints[0] = d;
        n->ints[1] = x->ndim == 0;
        aqa_node_save(n, idx);
    }
    if (indices) *indices = aqa__own(idx);
    else aqa__release(idx);
    return out;
}

aqa_tensor *aqa_max_dim(aqa_tensor *x, int dim, bool keepdim, aqa_tensor **indices) {
    return max_min_dim("aqa_max_dim", AQA_RED_MAX, x, dim, keepdim, indices);
}
aqa_tensor *aqa_min_dim(aqa_tensor *x, int dim, bool keepdim, aqa_tensor **indices) {
    return max_min_dim("aqa_min_dim", AQA_RED_MIN, x, dim, keepdim, indices);
}

/* torch's evenly_distribute_backward: g / count at every element equal to the result (or every
 * NaN when the result is NaN).  saved[0] = x, saved[1] = the 0-d result. */
static void max_all_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    aqa_tensor *x = n->saved[0], *r = n->saved[1];
    double rv = aqa_item(r);
    aqa_tensor *hit = rv != rv ? aqa_ne(x, x) : aqa_eq(x, r);
    aqa_tensor *hf = aqa_to_dtype(hit, g->dtype);
    grad_in[0] = aqa_mul(hf, aqa_div(g, aqa_sum_all(hf)));
}

static aqa_tensor *max_min_all(const char *op, aqa_reduce_op rop, aqa_tensor *x) {
    if (!aqa__check_inputs(op, 1, &x)) return NULL;
    if (aqa_numel(x) == 0)
        return aqa_fail_null("%s: the tensor has no elements (specify a dim for empty reductions)", op);
    uint32_t mask = x->ndim ? (uint32_t)((1u << x->ndim) - 1) : 0;
    aqa_tensor *out = reduce_raw(op, rop, x, mask, 0, NULL, NULL);
    if (!out) return NULL;
    aqa__own(out);
    aqa_node *n = aqa_node_record(rop == AQA_RED_MAX ? "max_all" : "min_all", max_all_backward, 1, &x, out);
    if (n) {
        aqa_node_save(n, x);
        aqa_node_save(n, out);
    }
    return out;
}

aqa_tensor *aqa_max_all(aqa_tensor *x) { return max_min_all("aqa_max_all", AQA_RED_MAX, x); }
aqa_tensor *aqa_min_all(aqa_tensor *x) { return max_min_all("aqa_min_all", AQA_RED_MIN, x); }

static aqa_tensor *arg_max_min(const char *op, aqa_reduce_op rop, aqa_tensor *x, int dim, bool keepdim) {
    if (!aqa__check_inputs(op, 1, &x)) return NULL;
    uint32_t mask;
    if (dim == AQA_ALL_DIMS) {
        mask = x->ndim ? (uint32_t)((1u << x->ndim) - 1) : 0;
        if (aqa_numel(x) == 0) return aqa_fail_null("%s: the tensor has no elements", op);
    } else {
        int d = aqa_wrap_dim(dim, x->ndim);
        if (d < 0) return aqa_fail_null("%s: dim %d out of range for a tensor with %d dimensions", op, dim, x->ndim);
        mask = x->ndim ? 1u << d : 0;
        if (x->ndim && x->shape[d] == 0)
            return aqa_fail_null("%s: cannot reduce over dimension %d of size 0", op, d);
    }
    int64_t shape[AQA_MAX_DIMS];
    int nd = result_shape(x, mask, keepdim, shape);
    aqa_tensor *idx = NULL;
    aqa_tensor *vals = reduce_raw(op, rop, x, mask, nd, shape, &idx);
    if (!vals) return NULL;
    aqa__release(vals);
    return aqa__own(idx);
}

aqa_tensor *aqa_argmax(aqa_tensor *x, int dim, bool keepdim) {
    return arg_max_min("aqa_argmax", AQA_RED_MAX, x, dim, keepdim);
}
aqa_tensor *aqa_argmin(aqa_tensor *x, int dim, bool keepdim) {
    return arg_max_min("aqa_argmin", AQA_RED_MIN, x, dim, keepdim);
}

/* ---- softmax, log_softmax ------------------------------------------------------------------ */

/* ints[0] = dim, ints[1] = log; saved[0] = the output. */
static void softmax_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    aqa_tensor *y = n->saved[0];
    aqa_tensor *gc = g->dtype == y->dtype ? g : aqa_to_dtype(g, y->dtype);
    if (!gc) return;
    aqa_device dev = aqa_tensor_device(y);
    aqa_tensor *gx = aqa__new_unowned(y->ndim, y->shape, y->dtype, dev);
    if (!gx) return;
    if (aqa_backend_for(dev)->softmax_backward(gx, gc, y, (int)n->ints[0], n->ints[1] != 0) != AQA_OK) {
        aqa__release(gx);
        return;
    }
    grad_in[0] = aqa__own(gx);
}

static aqa_tensor *softmax_op(const char *op, aqa_tensor *x, int dim, bool log) {
    if (!aqa__check_inputs(op, 1, &x)) return NULL;
    int d = aqa_wrap_dim(dim, x->ndim);
    if (d < 0) return aqa_fail_null("%s: dim %d out of range for a tensor with %d dimensions", op, dim, x->ndim);
    aqa_device dev = aqa_tensor_device(x);
    const aqa_backend *be = aqa_backend_for(dev);
    if (!be) return NULL;
    aqa_tensor *xc = get_converted(x, float_dtype(x->dtype));
    if (!xc) return NULL;
    aqa_tensor *out = aqa__new_unowned(x->ndim, x->shape, xc->dtype, dev);
    aqa_status st = out ? be->softmax(out, xc, d, log) : aqa_last_status();
    put_converted(x, xc);
    if (st != AQA_OK) {
        aqa__release(out);
        return NULL;
    }
    aqa__own(out);
    aqa_node *n = aqa_node_record(log ? "log_softmax" : "softmax", softmax_backward, 1, &x, out);
    if (n) {
        n->ints[0] = d;
        n->ints[1] = log;
        aqa_node_save(n, out);
    }
    return out;
}

aqa_tensor *aqa_softmax(aqa_tensor *x, int dim) { return softmax_op("aqa_softmax", x, dim, false); }
aqa_tensor *aqa_log_softmax(aqa_tensor *x, int dim) { return softmax_op("aqa_log_softmax", x, dim, true); }

/* ---- logsumexp ------------------------------------------------------------------------------ */

/* d lse / dx = exp(x - lse).  ints[0] = mask; saved[0] = x (float), saved[1] = result. */
static void logsumexp_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    int nd = n->in_ndim[0];
    int64_t kshape[AQA_MAX_DIMS];
    keep_shape(nd, n->in_shape[0], (uint32_t)n->ints[0], kshape);
    aqa_tensor *gk = aqa_reshape(g, nd, kshape);
    aqa_tensor *rk = aqa_reshape(n->saved[1], nd, kshape);
    grad_in[0] = aqa_mul(gk, aqa_exp(aqa_sub(n->saved[0], rk)));
}

/* log(sum(exp(x - m))) + m with m the max, replaced by 0 where it is infinite (as torch), so
 * large inputs do not overflow, a slice of -inf gives -inf and one with +inf gives +inf. */
aqa_tensor *aqa_logsumexp(aqa_tensor *x, int n_dims, const int *dims, bool keepdim) {
    if (!aqa__check_inputs("aqa_logsumexp", 1, &x)) return NULL;
    uint32_t mask;
    if (!dims_mask("aqa_logsumexp", x, n_dims, dims, &mask)) return NULL;
    int64_t kshape[AQA_MAX_DIMS], rshape[AQA_MAX_DIMS];
    keep_shape(x->ndim, x->shape, mask, kshape);
    int rnd = result_shape(x, mask, keepdim, rshape);
    aqa_tensor *xf = get_converted(x, float_dtype(x->dtype));
    if (!xf) return NULL;
    bool prev = aqa_set_grad_enabled(false);
    aqa_scope_begin();
    aqa_tensor *m;
    if (reduced_count(x, mask) == 0) /* empty sums: log(0) = -inf */
        m = aqa_full_on(x->ndim, kshape, 0.0, xf->dtype, aqa_tensor_device(xf));
    else
        m = aqa__own(reduce_raw("aqa_logsumexp", AQA_RED_MAX, xf, mask, x->ndim, kshape, NULL));
    aqa_tensor *ms = aqa_masked_fill(m, aqa_eq_scalar(aqa_abs(m), INFINITY), 0.0);
    aqa_tensor *s = aqa_sum(aqa_exp(aqa_sub(xf, ms)), n_dims, dims, true);
    aqa_tensor *r = aqa_keep(aqa_reshape(aqa_add(aqa_log(s), ms), rnd, rshape));
    aqa_scope_end();
    aqa_set_grad_enabled(prev);
    if (!r) {
        put_converted(x, xf);
        return NULL;
    }
    aqa_node *n = aqa_node_record("logsumexp", logsumexp_backward, 1, &x, r);
    if (n) {
        n->ints[0] = mask;
        aqa_node_save(n, xf);
        aqa_node_save(n, r);
    }
    put_converted(x, xf);
    return r;
}
