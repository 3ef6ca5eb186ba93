/* ops_elementwise.c: the machinery shared by the elementwise ops (conversion, broadcast views,
 * kernel calls; see elementwise-impl.h), the comparisons and logical ops (bool results, no
 * graph), where / masked_fill (differentiable in their tensor operands) and the in-place
 * aqa_add_ / aqa_mul_scalar_ (never recorded).  The arithmetic ops are in ops_binary.c and
 * ops_unary.c. */
#include <math.h>
#include <string.h>

#include "autograd/autograd.h"
#include "tensor/backend.h"
#include "ops/elementwise-impl.h"
#include "ops/ops.h"
#include "tensor/tensor-impl.h"

/* ---- shared helpers ------------------------------------------------------------------------- */

aqa_tensor *aqa__ew_cast(aqa_tensor *t, aqa_dtype dtype) {
    if (t->dtype == dtype) {
        aqa__retain(t);
        return t;
    }
    aqa_device dev = aqa_tensor_device(t);
    const aqa_backend *be = aqa_backend_for(dev);
    if (!be) return NULL;
    aqa_tensor *c = aqa__new_unowned(t->ndim, t->shape, dtype, dev);
    if (!c) return NULL;
    if (be->copy(c, t) != AQA_OK) {
        aqa__release(c);
        return NULL;
    }
    return c;
}

aqa_tensor *aqa__ew_bview(aqa_tensor *t, int ndim, const int64_t *shape) {
    int64_t stride[AQA_MAX_DIMS];
    int lead = ndim - t->ndim;
    for (int i = 0; i < ndim; i++) {
        int j = i - lead;
        if (j < 0 || (t->shape[j] == 1 && shape[i] != 1)) stride[i] = 0;
        else stride[i] = t->stride[j];
    }
    return aqa__alias_unowned(t, ndim, shape, stride, t->offset);
}

aqa_tensor *aqa__ew_scalar(double value, aqa_dtype dtype, aqa_device device) {
    const aqa_backend *be = aqa_backend_for(device);
    if (!be) return NULL;
    aqa_tensor *s = aqa__new_unowned(0, NULL, dtype, device);
    if (!s) return NULL;
    if (be->fill(s, value) != AQA_OK) {
        aqa__release(s);
        return NULL;
    }
    return s;
}

aqa_tensor *aqa__ew_binary(const char *name, aqa_binary_op op, aqa_tensor *a, aqa_tensor *b,
                           aqa_dtype compute, aqa_dtype out_dtype) {
    int ndim;
    int64_t shape[AQA_MAX_DIMS];
    if (!aqa__broadcast_shapes(name, a->ndim, a->shape, b->ndim, b->shape, &ndim, shape)) return NULL;
    aqa_device dev = aqa_tensor_device(a);
    const aqa_backend *be = aqa_backend_for(dev);
    if (!be) return NULL;
    aqa_tensor *ac = NULL, *bc = NULL, *av = NULL, *bv = NULL, *out = NULL;
    aqa_status st = AQA_ENOMEM;
    ac = aqa__ew_cast(a, compute);
    bc = ac ? aqa__ew_cast(b, compute) : NULL;
    if (!bc) goto done;
    av = aqa__ew_bview(ac, ndim, shape);
    bv = aqa__ew_bview(bc, ndim, shape);
    out = aqa__new_unowned(ndim, shape, out_dtype, dev);
    if (!av || !bv || !out) goto done;
    st = be->binary(op, out, av, bv);
done:
    if (st != AQA_OK && out) {
        aqa__release(out);
        out = NULL;
    }
    if (av) aqa__release(av);
    if (bv) aqa__release(bv);
    if (ac) aqa__release(ac);
    if (bc) aqa__release(bc);
    return out;
}

aqa_tensor *aqa__ew_unary(const char *name, aqa_unary_op op, aqa_tensor *x, aqa_dtype compute,
                          double p0, double p1) {
    (void)name;
    aqa_device dev = aqa_tensor_device(x);
    const aqa_backend *be = aqa_backend_for(dev);
    if (!be) return NULL;
    aqa_tensor *xc = aqa__ew_cast(x, compute);
    if (!xc) return NULL;
    aqa_dtype out_dtype = op == AQA_UN_LOGICAL_NOT ? AQA_BOOL : compute;
    aqa_tensor *out = aqa__new_unowned(x->ndim, x->shape, out_dtype, dev);
    if (out && be->unary(op, out, xc, p0, p1) != AQA_OK) {
        aqa__release(out);
        out = NULL;
    }
    aqa__release(xc);
    return out;
}

/* Whether s is an integer that int64 holds exactly. */
static bool integral(double s) { return s == floor(s) && fabs(s) < 9.2e18; }

aqa_dtype aqa__ew_scalar_dtype(aqa_dtype t, double s) {
    if (aqa_dtype_is_float(t)) return t;
    return integral(s) ? AQA_I64 : AQA_F32;
}

aqa_tensor *aqa__ew_cmp_scalar(const char *name, aqa_binary_op op, aqa_tensor *x, double s) {
    if (!aqa__check_inputs(name, 1, (aqa_tensor *[]){x})) return NULL;
    /* integers against a fractional scalar compare in float64 (exact for |x| < 2^53) */
    aqa_dtype dt = aqa_dtype_is_float(x->dtype) ? x->dtype : integral(s) ? AQA_I64 : AQA_F64;
    aqa_tensor *sc = aqa__ew_scalar(s, dt, aqa_tensor_device(x));
    if (!sc) return NULL;
    aqa_tensor *out = aqa__ew_binary(name, op, x, sc, dt, AQA_BOOL);
    aqa__release(sc);
    return out ? aqa__own(out) : NULL;
}

aqa_tensor *aqa__ew_to_bool(aqa_tensor *x) {
    if (x->dtype == AQA_BOOL) {
        aqa__retain(x);
        return x;
    }
    aqa_tensor *zero = aqa__ew_scalar(0.0, x->dtype, aqa_tensor_device(x));
    if (!zero) return NULL;
    aqa_tensor *out = aqa__ew_binary("to bool", AQA_BIN_NE, x, zero, x->dtype, AQA_BOOL);
    aqa__release(zero);
    return out;
}

/* ---- comparisons and logical ops --------------------------------------------------------------- */

static aqa_tensor *compare(const char *name, aqa_binary_op op, aqa_tensor *a, aqa_tensor *b) {
    aqa_tensor *ab[2] = {a, b};
    if (!aqa__check_inputs_scalars(name, 2, ab)) return NULL;
    a = ab[0];
    b = ab[1];
    aqa_tensor *out = aqa__ew_binary(name, op, a, b, aqa__promote(a->dtype, b->dtype), AQA_BOOL);
    return out ? aqa__own(out) : NULL;
}

aqa_tensor *aqa_eq(aqa_tensor *a, aqa_tensor *b) { return compare("aqa_eq", AQA_BIN_EQ, a, b); }
aqa_tensor *aqa_ne(aqa_tensor *a, aqa_tensor *b) { return compare("aqa_ne", AQA_BIN_NE, a, b); }
aqa_tensor *aqa_lt(aqa_tensor *a, aqa_tensor *b) { return compare("aqa_lt", AQA_BIN_LT, a, b); }
aqa_tensor *aqa_le(aqa_tensor *a, aqa_tensor *b) { return compare("aqa_le", AQA_BIN_LE, a, b); }
aqa_tensor *aqa_gt(aqa_tensor *a, aqa_tensor *b) { return compare("aqa_gt", AQA_BIN_GT, a, b); }
aqa_tensor *aqa_ge(aqa_tensor *a, aqa_tensor *b) { return compare("aqa_ge", AQA_BIN_GE, a, b); }
aqa_tensor *aqa_logical_and(aqa_tensor *a, aqa_tensor *b) {
    return compare("aqa_logical_and", AQA_BIN_AND, a, b);
}
aqa_tensor *aqa_logical_or(aqa_tensor *a, aqa_tensor *b) {
    return compare("aqa_logical_or", AQA_BIN_OR, a, b);
}

aqa_tensor *aqa_eq_scalar(aqa_tensor *a, double s) {
    return aqa__ew_cmp_scalar("aqa_eq_scalar", AQA_BIN_EQ, a, s);
}
aqa_tensor *aqa_gt_scalar(aqa_tensor *a, double s) {
    return aqa__ew_cmp_scalar("aqa_gt_scalar", AQA_BIN_GT, a, s);
}
aqa_tensor *aqa_lt_scalar(aqa_tensor *a, double s) {
    return aqa__ew_cmp_scalar("aqa_lt_scalar", AQA_BIN_LT, a, s);
}

aqa_tensor *aqa_logical_not(aqa_tensor *a) {
    if (!aqa__check_inputs("aqa_logical_not", 1, (aqa_tensor *[]){a})) return NULL;
    aqa_tensor *out = aqa__ew_unary("aqa_logical_not", AQA_UN_LOGICAL_NOT, a, a->dtype, 0, 0);
    return out ? aqa__own(out) : NULL;
}

/* ---- where, masked_fill ------------------------------------------------------------------------ */

/* out = cond ? a : b on unowned operands already of out's dtype (cond any dtype). */
static aqa_tensor *where_raw(const char *name, aqa_tensor *cond, aqa_tensor *a, aqa_tensor *b,
                             aqa_dtype dt) {
    int n1, ndim;
    int64_t s1[AQA_MAX_DIMS], shape[AQA_MAX_DIMS];
    if (!aqa__broadcast_shapes(name, cond->ndim, cond->shape, a->ndim, a->shape, &n1, s1) ||
        !aqa__broadcast_shapes(name, n1, s1, b->ndim, b->shape, &ndim, shape))
        return NULL;
    aqa_device dev = aqa_tensor_device(a);
    const aqa_backend *be = aqa_backend_for(dev);
    if (!be) return NULL;
    aqa_tensor *cb = NULL, *ac = NULL, *bc = NULL, *cv = NULL, *av = NULL, *bv = NULL, *out = NULL;
    aqa_status st = AQA_ENOMEM;
    cb = aqa__ew_to_bool(cond);
    ac = cb ? aqa__ew_cast(a, dt) : NULL;
    bc = ac ? aqa__ew_cast(b, dt) : NULL;
    if (!bc) goto done;
    cv = aqa__ew_bview(cb, ndim, shape);
    av = aqa__ew_bview(ac, ndim, shape);
    bv = aqa__ew_bview(bc, ndim, shape);
    out = aqa__new_unowned(ndim, shape, dt, dev);
    if (!cv || !av || !bv || !out) goto done;
    st = be->where(out, cv, av, bv);
done:
    if (st != AQA_OK && out) {
        aqa__release(out);
        out = NULL;
    }
    aqa_tensor *tmp[6] = {cv, av, bv, cb, ac, bc};
    for (int i = 0; i < 6; i++)
        if (tmp[i]) aqa__release(tmp[i]);
    return out;
}

/* saved[0] = cond */
static void where_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    aqa_tensor *cond = n->saved[0];
    if (n->needs_grad[0]) grad_in[0] = aqa_masked_fill(g, aqa_logical_not(cond), 0.0);
    if (n->needs_grad[1]) grad_in[1] = aqa_masked_fill(g, cond, 0.0);
}

aqa_tensor *aqa_where(aqa_tensor *cond, aqa_tensor *a, aqa_tensor *b) {
    aqa_tensor *cab[3] = {cond, a, b};
    if (!aqa__check_inputs_scalars("aqa_where", 3, cab)) return NULL;
    cond = cab[0];
    a = cab[1];
    b = cab[2];
    aqa_tensor *out = where_raw("aqa_where", cond, a, b, aqa__promote(a->dtype, b->dtype));
    if (!out) return NULL;
    aqa__own(out);
    aqa_node *n = aqa_node_record("where", where_backward, 2, (aqa_tensor *[]){a, b}, out);
    if (n) aqa_node_save(n, cond);
    return out;
}

/* saved[0] = mask */
static void masked_fill_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    if (n->needs_grad[0]) grad_in[0] = aqa_masked_fill(g, n->saved[0], 0.0);
}

aqa_tensor *aqa_masked_fill(aqa_tensor *x, aqa_tensor *mask, double value) {
    if (!aqa__check_inputs("aqa_masked_fill", 2, (aqa_tensor *[]){x, mask})) return NULL;
    int ndim;
    int64_t shape[AQA_MAX_DIMS];
    if (!aqa__broadcast_shapes("aqa_masked_fill", x->ndim, x->shape, mask->ndim, mask->shape, &ndim,
                               shape))
        return NULL;
    if (ndim != x->ndim || memcmp(shape, x->shape, sizeof(int64_t) * (size_t)ndim) != 0) {
        char bx[128], bm[128];
        return aqa_fail_null("aqa_masked_fill: mask of shape %s does not broadcast to the shape %s of x",
                             aqa_shape_str(mask, bm, sizeof bm), aqa_shape_str(x, bx, sizeof bx));
    }
    aqa_tensor *v = aqa__ew_scalar(value, x->dtype, aqa_tensor_device(x));
    if (!v) return NULL;
    aqa_tensor *out = where_raw("aqa_masked_fill", mask, v, x, x->dtype);
    aqa__release(v);
    if (!out) return NULL;
    aqa__own(out);
    aqa_node *n = aqa_node_record("masked_fill", masked_fill_backward, 1, (aqa_tensor *[]){x}, out);
    if (n) aqa_node_save(n, mask);
    return out;
}

/* ---- in place, never recorded -------------------------------------------------------------------- */

aqa_status aqa_add_(aqa_tensor *dst, const aqa_tensor *src, double alpha) {
    aqa_tensor *s = (aqa_tensor *)src;
    if (!aqa__check_inputs("aqa_add_", 2, (aqa_tensor *[]){dst, s}))
        return aqa_last_status() != AQA_OK ? aqa_last_status() : AQA_EINVAL;
    int ndim;
    int64_t shape[AQA_MAX_DIMS];
    if (!aqa__broadcast_shapes("aqa_add_", dst->ndim, dst->shape, s->ndim, s->shape, &ndim, shape))
        return AQA_EINVAL;
    if (ndim != dst->ndim || memcmp(shape, dst->shape, sizeof(int64_t) * (size_t)ndim) != 0) {
        char bd[128], bs[128];
        return aqa_fail(AQA_EINVAL, "aqa_add_: src of shape %s does not broadcast to dst's shape %s",
                        aqa_shape_str(s, bs, sizeof bs), aqa_shape_str(dst, bd, sizeof bd));
    }
    if (dst->dtype == AQA_BOOL) return aqa_fail(AQA_EINVAL, "aqa_add_: dst is bool");
    const aqa_backend *be = aqa_backend_for(aqa_tensor_device(dst));
    if (!be) return aqa_last_status();
    aqa_tensor *sc = aqa__ew_cast(s, dst->dtype);
    if (!sc) return aqa_last_status();
    aqa_tensor *sv = aqa__ew_bview(sc, dst->ndim, dst->shape);
    aqa_status st = sv ? be->axpy(dst, sv, alpha) : AQA_ENOMEM;
    if (sv) aqa__release(sv);
    aqa__release(sc);
    if (st == AQA_OK) aqa__bump_version(dst, "aqa_add_");
    return st;
}

aqa_status aqa_mul_scalar_(aqa_tensor *dst, double s) {
    if (!dst) return aqa_last_status() != AQA_OK ? aqa_last_status() : AQA_EINVAL;
    if (!aqa__alive("aqa_mul_scalar_", dst)) return AQA_ESTATE;
    if (dst->dtype == AQA_BOOL) return aqa_fail(AQA_EINVAL, "aqa_mul_scalar_: dst is bool");
    const aqa_backend *be = aqa_backend_for(aqa_tensor_device(dst));
    if (!be) return aqa_last_status();
    /* out == x: the kernel reads each element before writing it */
    aqa_status st = be->unary(AQA_UN_MUL_SCALAR, dst, dst, s, 0.0);
    if (st == AQA_OK) aqa__bump_version(dst, "aqa_mul_scalar_");
    return st;
}
