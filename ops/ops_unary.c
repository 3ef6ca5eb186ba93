/* ops_unary.c: the elementwise unary ops (neg, exp, log, sqrt, rsqrt, abs, tanh, sigmoid, relu,
 * the GELU family, log1p, softplus, square, sign, clamp) and their derivatives.
 *
 * dtypes: the floating ops give float32 for int64/bool inputs (as torch); neg, abs, relu, square,
 * sign and clamp keep int64 (bool is computed as int64), clamp with fractional bounds on an
 * integer tensor gives float32.
 *
 * Derivatives follow torch's formulas, including at the edges: relu' = 0 at 0, abs' = sign(x)
 * (0 at 0), clamp' = 1 on [lo, hi] inclusive, sqrt' = 1/(2 sqrt x) (inf at 0), sign' = 0.  The
 * GELU-family derivatives are kernels of their own (AQA_UN_*_GRAD), not differentiable again. */
#include <math.h>

#include "autograd/autograd.h"
#include "ops/elementwise-impl.h"
#include "ops/ops.h"
#include "tensor/tensor-impl.h"

/* What a node saves for backward. */
enum { SAVE_NONE = 0, SAVE_X = 1, SAVE_OUT = 2 };

/* Runs the kernel in dtype dt and records a node with reals[0..1] = p0, p1; saves x and/or out
 * (x first) as asked. */
static aqa_tensor *unary_op(const char *name, aqa_unary_op op, aqa_tensor *x, aqa_dtype dt, double p0,
                            double p1, aqa_backward_fn backward, int save) {
    if (!aqa__check_inputs(name, 1, (aqa_tensor *[]){x})) return NULL;
    aqa_tensor *out = aqa__ew_unary(name, op, x, dt, p0, p1);
    if (!out) return NULL;
    aqa__own(out);
    aqa_node *n = aqa_node_record(name + 4 /* without "aqa_" */, backward, 1, (aqa_tensor *[]){x}, out);
    if (n) {
        n->reals[0] = p0;
        n->reals[1] = p1;
        if (save & SAVE_X) aqa_node_save(n, x);
        if (save & SAVE_OUT) aqa_node_save(n, out);
    }
    return out;
}

static aqa_dtype float_dt(const aqa_tensor *x) { return x ? aqa__ew_float_dtype(x->dtype) : AQA_F32; }
/* dtype of the ops that keep integers: bool is computed as int64 */
static aqa_dtype int_dt(const aqa_tensor *x) {
    return !x ? AQA_F32 : x->dtype == AQA_BOOL ? AQA_I64 : x->dtype;
}

/* A derivative kernel applied to x without recording (scope-owned like a public op's result). */
static aqa_tensor *grad_kernel(const char *name, aqa_unary_op op, aqa_tensor *x) {
    if (!x) return NULL;
    aqa_tensor *d = aqa__ew_unary(name, op, x, aqa__ew_float_dtype(x->dtype), 0.0, 0.0);
    return d ? aqa__own(d) : NULL;
}

/* ---- the ops ------------------------------------------------------------------------------------- */

static void neg_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    if (n->needs_grad[0]) grad_in[0] = aqa_neg(g);
}
aqa_tensor *aqa_neg(aqa_tensor *x) {
    return unary_op("aqa_neg", AQA_UN_NEG, x, int_dt(x), 0, 0, neg_backward, SAVE_NONE);
}

/* saved[0] = out */
static void exp_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    if (n->needs_grad[0]) grad_in[0] = aqa_mul(g, n->saved[0]);
}
aqa_tensor *aqa_exp(aqa_tensor *x) {
    return unary_op("aqa_exp", AQA_UN_EXP, x, float_dt(x), 0, 0, exp_backward, SAVE_OUT);
}

/* saved[0] = x */
static void log_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    if (n->needs_grad[0]) grad_in[0] = aqa_div(g, n->saved[0]);
}
aqa_tensor *aqa_log(aqa_tensor *x) {
    return unary_op("aqa_log", AQA_UN_LOG, x, float_dt(x), 0, 0, log_backward, SAVE_X);
}

/* saved[0] = out: d sqrt(x) = 1 / (2 sqrt(x)) */
static void sqrt_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    if (n->needs_grad[0]) grad_in[0] = aqa_div(g, aqa_mul_scalar(n->saved[0], 2.0));
}
aqa_tensor *aqa_sqrt(aqa_tensor *x) {
    return unary_op("aqa_sqrt", AQA_UN_SQRT, x, float_dt(x), 0, 0, sqrt_backward, SAVE_OUT);
}

/* saved[0] = out: d x^-1/2 = -1/2 x^-3/2 = -out^3 / 2 */
static void rsqrt_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    if (n->needs_grad[0])
        grad_in[0] = aqa_mul(g, aqa_mul_scalar(aqa_pow_scalar(n->saved[0], 3.0), -0.5));
}
aqa_tensor *aqa_rsqrt(aqa_tensor *x) {
    return unary_op("aqa_rsqrt", AQA_UN_RSQRT, x, float_dt(x), 0, 0, rsqrt_backward, SAVE_OUT);
}

/* saved[0] = x */
static void abs_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    if (n->needs_grad[0]) grad_in[0] = aqa_mul(g, aqa_sign(n->saved[0]));
}
aqa_tensor *aqa_abs(aqa_tensor *x) {
    return unary_op("aqa_abs", AQA_UN_ABS, x, int_dt(x), 0, 0, abs_backward, SAVE_X);
}

/* saved[0] = out: 1 - tanh^2 */
static void tanh_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    aqa_tensor *y = n->saved[0];
    if (n->needs_grad[0]) grad_in[0] = aqa_mul(g, aqa_rsub_scalar(aqa_mul(y, y), 1.0));
}
aqa_tensor *aqa_tanh(aqa_tensor *x) {
    return unary_op("aqa_tanh", AQA_UN_TANH, x, float_dt(x), 0, 0, tanh_backward, SAVE_OUT);
}

/* saved[0] = out: s (1 - s) */
static void sigmoid_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    aqa_tensor *y = n->saved[0];
    if (n->needs_grad[0]) grad_in[0] = aqa_mul(g, aqa_mul(y, aqa_rsub_scalar(y, 1.0)));
}
aqa_tensor *aqa_sigmoid(aqa_tensor *x) {
    return unary_op("aqa_sigmoid", AQA_UN_SIGMOID, x, float_dt(x), 0, 0, sigmoid_backward, SAVE_OUT);
}

/* saved[0] = out: gradient passes where out > 0 (so 0 at x == 0, as torch) */
static void relu_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    if (n->needs_grad[0])
        grad_in[0] = aqa_masked_fill(g, aqa__ew_cmp_scalar("relu backward", AQA_BIN_LE, n->saved[0], 0.0), 0.0);
}
aqa_tensor *aqa_relu(aqa_tensor *x) {
    return unary_op("aqa_relu", AQA_UN_RELU, x, int_dt(x), 0, 0, relu_backward, SAVE_OUT);
}

/* saved[0] = x */
static void gelu_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    if (n->needs_grad[0]) grad_in[0] = aqa_mul(g, grad_kernel("gelu backward", AQA_UN_GELU_GRAD, n->saved[0]));
}
aqa_tensor *aqa_gelu(aqa_tensor *x) {
    return unary_op("aqa_gelu", AQA_UN_GELU, x, float_dt(x), 0, 0, gelu_backward, SAVE_X);
}

static void gelu_tanh_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    if (n->needs_grad[0])
        grad_in[0] = aqa_mul(g, grad_kernel("gelu_tanh backward", AQA_UN_GELU_TANH_GRAD, n->saved[0]));
}
aqa_tensor *aqa_gelu_tanh(aqa_tensor *x) {
    return unary_op("aqa_gelu_tanh", AQA_UN_GELU_TANH, x, float_dt(x), 0, 0, gelu_tanh_backward, SAVE_X);
}

static void quick_gelu_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    if (n->needs_grad[0])
        grad_in[0] = aqa_mul(g, grad_kernel("quick_gelu backward", AQA_UN_QUICK_GELU_GRAD, n->saved[0]));
}
aqa_tensor *aqa_quick_gelu(aqa_tensor *x) {
    return unary_op("aqa_quick_gelu", AQA_UN_QUICK_GELU, x, float_dt(x), 0, 0, quick_gelu_backward, SAVE_X);
}

/* saved[0] = x: 1 / (1 + x) */
static void log1p_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    if (n->needs_grad[0]) grad_in[0] = aqa_div(g, aqa_add_scalar(n->saved[0], 1.0));
}
aqa_tensor *aqa_log1p(aqa_tensor *x) {
    return unary_op("aqa_log1p", AQA_UN_LOG1P, x, float_dt(x), 0, 0, log1p_backward, SAVE_X);
}

/* saved[0] = x: sigmoid(x) */
static void softplus_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    if (n->needs_grad[0]) grad_in[0] = aqa_mul(g, aqa_sigmoid(n->saved[0]));
}
aqa_tensor *aqa_softplus(aqa_tensor *x) {
    return unary_op("aqa_softplus", AQA_UN_SOFTPLUS, x, float_dt(x), 0, 0, softplus_backward, SAVE_X);
}

/* saved[0] = x: 2x */
static void square_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    if (n->needs_grad[0]) grad_in[0] = aqa_mul(g, aqa_mul_scalar(n->saved[0], 2.0));
}
aqa_tensor *aqa_square(aqa_tensor *x) {
    return unary_op("aqa_square", AQA_UN_SQUARE, x, int_dt(x), 0, 0, square_backward, SAVE_X);
}

/* Piecewise constant: the gradient is zero (a node is still recorded so that backward through
 * sign works and gives zeros, as torch). */
static void sign_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    if (n->needs_grad[0]) grad_in[0] = aqa_zeros_like(g);
}
aqa_tensor *aqa_sign(aqa_tensor *x) {
    return unary_op("aqa_sign", AQA_UN_SIGN, x, int_dt(x), 0, 0, sign_backward, SAVE_NONE);
}

/* saved[0] = x, reals = lo, hi: gradient passes where lo <= x <= hi */
static void clamp_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    if (!n->needs_grad[0]) return;
    aqa_tensor *x = n->saved[0];
    double lo = n->reals[0], hi = n->reals[1];
    aqa_tensor *inside = aqa_logical_and(aqa__ew_cmp_scalar("clamp backward", AQA_BIN_GE, x, lo),
                                         aqa__ew_cmp_scalar("clamp backward", AQA_BIN_LE, x, hi));
    grad_in[0] = aqa_masked_fill(g, aqa_logical_not(inside), 0.0);
}
aqa_tensor *aqa_clamp(aqa_tensor *x, double lo, double hi) {
    if (isnan(lo) || isnan(hi)) return aqa_fail_null("aqa_clamp: NaN bound (lo %g, hi %g)", lo, hi);
    aqa_dtype dt = int_dt(x);
    if (x && !aqa_dtype_is_float(dt) && ((isfinite(lo) && lo != floor(lo)) || (isfinite(hi) && hi != floor(hi))))
        dt = AQA_F32; /* torch: clamp(int tensor, 0.5) is float */
    return unary_op("aqa_clamp", AQA_UN_CLAMP, x, dt, lo, hi, clamp_backward, SAVE_X);
}
