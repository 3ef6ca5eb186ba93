/* ops_binary.c: the broadcasting arithmetic ops (add, sub, mul, div, pow, maximum, minimum) and
 * their scalar forms, with their derivatives.
 *
 * dtypes: the result has the promoted dtype of the operands (bool < int64 < float32 < float64),
 * and div is true division (float32 for integer operands), like torch.  Two bool operands give
 * bool as in torch: add and maximum are logical or, mul and minimum logical and, sub is an
 * error; pow of bools is computed in int64.  A C scalar takes the tensor's dtype when that is floating; with an integer tensor
 * an integral scalar stays int64 and a fractional one gives float32 (torch: int * 2.5 -> float).
 *
 * Each op records one node on its original operands; backward functions may return gradients of
 * the broadcast shape and a wider dtype: the engine reduces and casts them (autograd.h). */
#include <math.h>

#include "autograd/autograd.h"
#include "ops/elementwise-impl.h"
#include "ops/ops.h"
#include "tensor/tensor-impl.h"

/* Runs the kernel and records the node; saves a and b (slots 0, 1) and out (slot 2) as asked. */
static aqa_tensor *binary_op(const char *name, aqa_binary_op op, aqa_tensor *a, aqa_tensor *b,
                             aqa_dtype dt, aqa_backward_fn backward, bool save_ab, bool save_out) {
    aqa_tensor *ab[2] = {a, b};
    if (!aqa__check_inputs_scalars(name, 2, ab)) return NULL;
    a = ab[0];
    b = ab[1];
    if (dt == AQA_BOOL) {
        /* bool (+) bool stays bool, as torch (bools never require grad: no node) */
        aqa_binary_op lop = op == AQA_BIN_ADD || op == AQA_BIN_MAX   ? AQA_BIN_OR
                            : op == AQA_BIN_MUL || op == AQA_BIN_MIN ? AQA_BIN_AND
                                                                     : AQA_BIN_COUNT;
        if (lop == AQA_BIN_COUNT)
            return aqa_fail_null("%s: not defined for two bool tensors (use aqa_logical_* or convert)", name);
        aqa_tensor *out = aqa__ew_binary(name, lop, a, b, AQA_BOOL, AQA_BOOL);
        return out ? aqa__own(out) : NULL;
    }
    aqa_tensor *out = aqa__ew_binary(name, op, a, b, dt, dt);
    if (!out) return NULL;
    aqa__own(out);
    aqa_node *n = aqa_node_record(name + 4 /* without "aqa_" */, backward, 2, (aqa_tensor *[]){a, b}, out);
    if (n && save_ab) {
        aqa_node_save(n, a);
        aqa_node_save(n, b);
    }
    if (n && save_out) aqa_node_save(n, out);
    return out;
}

/* Arithmetic dtype: promoted (bool only when both are bool). */
static aqa_dtype arith_dtype(const aqa_tensor *a, const aqa_tensor *b) {
    if (!a || !b) return AQA_F32;
    return aqa__promote(a->dtype, b->dtype);
}

/* ---- add, sub, mul, div ---------------------------------------------------------------------------- */

static void add_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    if (n->needs_grad[0]) grad_in[0] = g;
    if (n->needs_grad[1]) grad_in[1] = g;
}
aqa_tensor *aqa_add(aqa_tensor *a, aqa_tensor *b) {
    return binary_op("aqa_add", AQA_BIN_ADD, a, b, arith_dtype(a, b), add_backward, false, false);
}

static void sub_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    if (n->needs_grad[0]) grad_in[0] = g;
    if (n->needs_grad[1]) grad_in[1] = aqa_neg(g);
}
aqa_tensor *aqa_sub(aqa_tensor *a, aqa_tensor *b) {
    return binary_op("aqa_sub", AQA_BIN_SUB, a, b, arith_dtype(a, b), sub_backward, false, false);
}

static void mul_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    if (n->needs_grad[0]) grad_in[0] = aqa_mul(g, n->saved[1]);
    if (n->needs_grad[1]) grad_in[1] = aqa_mul(g, n->saved[0]);
}
aqa_tensor *aqa_mul(aqa_tensor *a, aqa_tensor *b) {
    return binary_op("aqa_mul", AQA_BIN_MUL, a, b, arith_dtype(a, b), mul_backward, true, false);
}

/* d(a/b)/da = 1/b, d(a/b)/db = -a/b^2 */
static void div_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    aqa_tensor *a = n->saved[0], *b = n->saved[1];
    if (n->needs_grad[0]) grad_in[0] = aqa_div(g, b);
    if (n->needs_grad[1]) grad_in[1] = aqa_neg(aqa_div(aqa_mul(g, a), aqa_mul(b, b)));
}
aqa_tensor *aqa_div(aqa_tensor *a, aqa_tensor *b) {
    return binary_op("aqa_div", AQA_BIN_DIV, a, b, aqa__ew_float_dtype(arith_dtype(a, b)), div_backward,
                     true, false);
}

/* ---- pow ------------------------------------------------------------------------------------------- */

/* As torch: d/da = b a^(b-1), taken as 0 where b == 0; d/db = a^b log(a), taken as 0 where a == 0
 * and b >= 0 (the limit of the one-sided derivative). */
static void pow_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    aqa_tensor *a = n->saved[0], *b = n->saved[1], *out = n->saved[2];
    if (n->needs_grad[0]) {
        aqa_tensor *d = aqa_mul(b, aqa_pow(a, aqa_add_scalar(b, -1.0)));
        grad_in[0] = aqa_mul(g, aqa_masked_fill(d, aqa_eq_scalar(b, 0.0), 0.0));
    }
    if (n->needs_grad[1]) {
        aqa_tensor *d = aqa_mul(out, aqa_log(a));
        aqa_tensor *zero_base = aqa_logical_and(aqa_eq_scalar(a, 0.0),
                                                aqa_logical_not(aqa_lt_scalar(b, 0.0)));
        /* masked_fill needs the mask no larger than d: d already has the broadcast shape */
        grad_in[1] = aqa_mul(g, aqa_masked_fill(d, zero_base, 0.0));
    }
}
aqa_tensor *aqa_pow(aqa_tensor *a, aqa_tensor *b) {
    aqa_dtype dt = arith_dtype(a, b);
    return binary_op("aqa_pow", AQA_BIN_POW, a, b, dt == AQA_BOOL ? AQA_I64 : dt, pow_backward, true, true);
}

/* ---- maximum, minimum -------------------------------------------------------------------------------- */

/* The larger (smaller) operand takes the gradient; ties split it half and half, as torch. */
static void extremum_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in, bool is_max) {
    aqa_tensor *a = n->saved[0], *b = n->saved[1];
    aqa_tensor *tie = aqa_eq(a, b);
    aqa_tensor *shared = aqa_where(tie, aqa_mul_scalar(g, 0.5), g);
    if (n->needs_grad[0]) grad_in[0] = aqa_masked_fill(shared, is_max ? aqa_lt(a, b) : aqa_gt(a, b), 0.0);
    if (n->needs_grad[1]) grad_in[1] = aqa_masked_fill(shared, is_max ? aqa_lt(b, a) : aqa_gt(b, a), 0.0);
}
static void maximum_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    extremum_backward(n, g, grad_in, true);
}
static void minimum_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    extremum_backward(n, g, grad_in, false);
}
aqa_tensor *aqa_maximum(aqa_tensor *a, aqa_tensor *b) {
    return binary_op("aqa_maximum", AQA_BIN_MAX, a, b, arith_dtype(a, b), maximum_backward, true, false);
}
aqa_tensor *aqa_minimum(aqa_tensor *a, aqa_tensor *b) {
    return binary_op("aqa_minimum", AQA_BIN_MIN, a, b, arith_dtype(a, b), minimum_backward, true, false);
}

/* ---- scalar right operand ------------------------------------------------------------------------------ */

/* Runs the unary kernel for op(x, s) in dtype dt and records a node with s in reals[0]; saves x
 * (slot 0) when asked. */
static aqa_tensor *scalar_op(const char *name, aqa_unary_op op, aqa_tensor *x, double s, aqa_dtype dt,
                             aqa_backward_fn backward, bool save_x) {
    if (!aqa__check_inputs(name, 1, (aqa_tensor *[]){x})) return NULL;
    aqa_tensor *out = aqa__ew_unary(name, op, x, dt, s, 0.0);
    if (!out) return NULL;
    aqa__own(out);
    aqa_node *n = aqa_node_record(name + 4, backward, 1, (aqa_tensor *[]){x}, out);
    if (n) {
        n->reals[0] = s;
        if (save_x) aqa_node_save(n, x);
    }
    return out;
}

static void add_scalar_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    if (n->needs_grad[0]) grad_in[0] = g;
}
aqa_tensor *aqa_add_scalar(aqa_tensor *a, double s) {
    aqa_dtype dt = a ? aqa__ew_scalar_dtype(a->dtype, s) : AQA_F32;
    return scalar_op("aqa_add_scalar", AQA_UN_ADD_SCALAR, a, s, dt, add_scalar_backward, false);
}

static void mul_scalar_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    if (n->needs_grad[0]) grad_in[0] = aqa_mul_scalar(g, n->reals[0]);
}
aqa_tensor *aqa_mul_scalar(aqa_tensor *a, double s) {
    aqa_dtype dt = a ? aqa__ew_scalar_dtype(a->dtype, s) : AQA_F32;
    return scalar_op("aqa_mul_scalar", AQA_UN_MUL_SCALAR, a, s, dt, mul_scalar_backward, false);
}

static void div_scalar_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    if (n->needs_grad[0]) grad_in[0] = aqa_div_scalar(g, n->reals[0]);
}
/* a / s is computed as a true division (not as a * (1/s)), so results match torch bit for bit. */
aqa_tensor *aqa_div_scalar(aqa_tensor *a, double s) {
    if (!aqa__check_inputs("aqa_div_scalar", 1, (aqa_tensor *[]){a})) return NULL;
    aqa_dtype dt = aqa__ew_float_dtype(a->dtype);
    aqa_tensor *sc = aqa__ew_scalar(s, dt, aqa_tensor_device(a));
    if (!sc) return NULL;
    aqa_tensor *out = aqa__ew_binary("aqa_div_scalar", AQA_BIN_DIV, a, sc, dt, dt);
    aqa__release(sc);
    if (!out) return NULL;
    aqa__own(out);
    aqa_node *n = aqa_node_record("div_scalar", div_scalar_backward, 1, (aqa_tensor *[]){a}, out);
    if (n) n->reals[0] = s;
    return out;
}

static void rsub_scalar_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    if (n->needs_grad[0]) grad_in[0] = aqa_neg(g);
}
aqa_tensor *aqa_rsub_scalar(aqa_tensor *a, double s) {
    aqa_dtype dt = a ? aqa__ew_scalar_dtype(a->dtype, s) : AQA_F32;
    return scalar_op("aqa_rsub_scalar", AQA_UN_RSUB_SCALAR, a, s, dt, rsub_scalar_backward, false);
}

/* d/dx x^p = p x^(p-1); zero for p == 0 (as torch, even at x == 0). */
static void pow_scalar_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    if (!n->needs_grad[0]) return;
    double p = n->reals[0];
    aqa_tensor *x = n->saved[0];
    if (p == 0.0) grad_in[0] = aqa_zeros_like(g);
    else if (p == 1.0) grad_in[0] = g;
    else if (p == 2.0) grad_in[0] = aqa_mul(g, aqa_mul_scalar(x, 2.0));
    else grad_in[0] = aqa_mul(g, aqa_mul_scalar(aqa_pow_scalar(x, p - 1.0), p));
}
aqa_tensor *aqa_pow_scalar(aqa_tensor *a, double exponent) {
    aqa_dtype dt = AQA_F32;
    if (a) dt = aqa_dtype_is_float(a->dtype) ? a->dtype
                : (exponent >= 0 && aqa__ew_scalar_dtype(a->dtype, exponent) == AQA_I64) ? AQA_I64
                                                                                        : AQA_F32;
    return scalar_op("aqa_pow_scalar", AQA_UN_POW_SCALAR, a, exponent, dt, pow_scalar_backward, true);
}
