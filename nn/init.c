/* init.c: the initialisers of init.h.
 *
 * Uniform and normal draws go through aqa_uniform_/aqa_normal_ (Philox, any device).  The
 * truncated normal needs erfinv, which is applied on the host: a CPU contiguous tensor is
 * transformed in place, anything else through a contiguous host copy written back with
 * aqa_copy_. */
#include <math.h>
#include <stdlib.h>

#include "autograd/autograd.h"
#include "ops/ops.h"
#include "nn/init.h"
#include "tensor/tensor-impl.h"

static aqa_status check_float_tensor(const char *fn, const aqa_tensor *t) {
    if (!t) return aqa_fail(AQA_EINVAL, "%s: tensor is NULL", fn);
    if (!aqa_dtype_is_float(t->dtype))
        return aqa_fail(AQA_EINVAL, "%s: tensor %s must be floating, got %s", fn, t->name ? t->name : "",
                        aqa_dtype_name(t->dtype));
    return AQA_OK;
}

double aqa_init_calculate_gain(aqa_nonlinearity nonlinearity, double param) {
    switch (nonlinearity) {
    case AQA_GAIN_LINEAR:
    case AQA_GAIN_SIGMOID: return 1.0;
    case AQA_GAIN_TANH: return 5.0 / 3.0;
    case AQA_GAIN_RELU: return sqrt(2.0);
    case AQA_GAIN_LEAKY_RELU: return sqrt(2.0 / (1.0 + param * param));
    case AQA_GAIN_SELU: return 3.0 / 4.0;
    }
    return 1.0;
}

aqa_status aqa_init_calculate_fans(const aqa_tensor *t, int64_t *fan_in, int64_t *fan_out) {
    if (!t) return aqa_fail(AQA_EINVAL, "aqa_init_calculate_fans: tensor is NULL");
    if (t->ndim < 2)
        return aqa_fail(AQA_EINVAL, "aqa_init_calculate_fans: fan in and fan out can not be computed for tensor %s "
                        "with fewer than 2 dimensions (%d)", t->name ? t->name : "", t->ndim);
    int64_t receptive = 1;
    for (int d = 2; d < t->ndim; d++) receptive *= t->shape[d];
    if (fan_in) *fan_in = t->shape[1] * receptive;
    if (fan_out) *fan_out = t->shape[0] * receptive;
    return AQA_OK;
}

/* In-place initialisation is never recorded, even on a parameter that requires grad. */
#define NO_GRAD(expr)                                 \
    do {                                              \
        bool prev_ = aqa_set_grad_enabled(false);     \
        aqa_status st_ = (expr);                      \
        aqa_set_grad_enabled(prev_);                  \
        return st_;                                   \
    } while (0)

aqa_status aqa_init_uniform_(aqa_tensor *t, double a, double b, aqa_generator *gen) {
    aqa_status st = check_float_tensor("aqa_init_uniform_", t);
    if (st != AQA_OK) return st;
    if (!(a <= b)) return aqa_fail(AQA_EINVAL, "aqa_init_uniform_: need a <= b (got %g, %g)", a, b);
    NO_GRAD(aqa_uniform_(t, a, b, gen));
}

aqa_status aqa_init_normal_(aqa_tensor *t, double mean, double std, aqa_generator *gen) {
    aqa_status st = check_float_tensor("aqa_init_normal_", t);
    if (st != AQA_OK) return st;
    if (!(std >= 0)) return aqa_fail(AQA_EINVAL, "aqa_init_normal_: std %g must be >= 0", std);
    NO_GRAD(aqa_normal_(t, mean, std, gen));
}

aqa_status aqa_init_constant_(aqa_tensor *t, double value) {
    aqa_status st = check_float_tensor("aqa_init_constant_", t);
    if (st != AQA_OK) return st;
    NO_GRAD(aqa_fill_(t, value));
}
aqa_status aqa_init_zeros_(aqa_tensor *t) { return aqa_init_constant_(t, 0.0); }
aqa_status aqa_init_ones_(aqa_tensor *t) { return aqa_init_constant_(t, 1.0); }

aqa_status aqa_init_xavier_uniform_(aqa_tensor *t, double gain, aqa_generator *gen) {
    int64_t fi, fo;
    aqa_status st = aqa_init_calculate_fans(t, &fi, &fo);
    if (st != AQA_OK) return st;
    if (aqa_numel(t) == 0) return AQA_OK; /* torch: a no-op on zero-element tensors */
    double a = gain * sqrt(6.0 / (double)(fi + fo)); /* sqrt(3) std, in one rounding */
    return aqa_init_uniform_(t, -a, a, gen);
}

aqa_status aqa_init_xavier_normal_(aqa_tensor *t, double gain, aqa_generator *gen) {
    int64_t fi, fo;
    aqa_status st = aqa_init_calculate_fans(t, &fi, &fo);
    if (st != AQA_OK) return st;
    if (aqa_numel(t) == 0) return AQA_OK;
    return aqa_init_normal_(t, 0.0, gain * sqrt(2.0 / (double)(fi + fo)), gen);
}

/* std of kaiming_*; < 0 after recording an error */
static double kaiming_std(const char *fn, const aqa_tensor *t, double a, aqa_fan_mode mode, aqa_nonlinearity nl) {
    int64_t fi, fo;
    if (aqa_init_calculate_fans(t, &fi, &fo) != AQA_OK) return -1;
    int64_t fan = mode == AQA_FAN_OUT ? fo : fi;
    if (fan <= 0) {
        aqa_fail(AQA_EINVAL, "%s: tensor %s has a zero fan", fn, t->name ? t->name : "");
        return -1;
    }
    return aqa_init_calculate_gain(nl, a) / sqrt((double)fan);
}

aqa_status aqa_init_kaiming_uniform_(aqa_tensor *t, double a, aqa_fan_mode mode, aqa_nonlinearity nonlinearity,
                                     aqa_generator *gen) {
    if (t && aqa_numel(t) == 0) return AQA_OK;
    double std = kaiming_std("aqa_init_kaiming_uniform_", t, a, mode, nonlinearity);
    if (std < 0) return aqa_last_status();
    double bound = sqrt(3.0) * std;
    return aqa_init_uniform_(t, -bound, bound, gen);
}

aqa_status aqa_init_kaiming_normal_(aqa_tensor *t, double a, aqa_fan_mode mode, aqa_nonlinearity nonlinearity,
                                    aqa_generator *gen) {
    if (t && aqa_numel(t) == 0) return AQA_OK;
    double std = kaiming_std("aqa_init_kaiming_normal_", t, a, mode, nonlinearity);
    if (std < 0) return aqa_last_status();
    return aqa_init_normal_(t, 0.0, std, gen);
}

/* erfinv by Newton's method on erf, started from Winitzki's closed-form approximation (relative
 * error ~2e-3); three steps reach double precision on (-1, 1). */
double aqa_erfinv(double y) {
    if (isnan(y) || y < -1.0 || y > 1.0) return NAN;
    if (y == 1.0) return INFINITY;
    if (y == -1.0) return -INFINITY;
    if (y == 0.0) return y;
    const double a = 0.147;
    double l = log1p(-y * y);
    double t = 2.0 / (M_PI * a) + l / 2.0;
    double x = copysign(sqrt(sqrt(t * t - l / a) - t), y);
    for (int i = 0; i < 4; i++) {
        double err = erf(x) - y;
        double d = 2.0 / sqrt(M_PI) * exp(-x * x);
        if (d == 0) break;
        double nx = x - err / d;
        if (nx == x) break;
        x = nx;
    }
    return x;
}

static double norm_cdf(double x) { return (1.0 + erf(x / sqrt(2.0))) / 2.0; }

aqa_status aqa_init_trunc_normal_(aqa_tensor *t, double mean, double std, double a, double b, aqa_generator *gen) {
    aqa_status st = check_float_tensor("aqa_init_trunc_normal_", t);
    if (st != AQA_OK) return st;
    if (!(std > 0) || !(a < b))
        return aqa_fail(AQA_EINVAL, "aqa_init_trunc_normal_: need std > 0 and a < b (got std %g, a %g, b %g)", std, a, b);
    int64_t n = aqa_numel(t);
    if (n == 0) return AQA_OK;
    double l = norm_cdf((a - mean) / std), u = norm_cdf((b - mean) / std);
    bool prev = aqa_set_grad_enabled(false);
    bool direct = aqa_tensor_device(t).kind == AQA_CPU && aqa_is_contiguous(t);
    aqa_tensor *w = direct ? t : aqa__new_unowned(t->ndim, t->shape, t->dtype, AQA_DEVICE_CPU);
    if (!w) {
        aqa_set_grad_enabled(prev);
        return aqa_last_status();
    }
    st = aqa_uniform_(w, 2.0 * l - 1.0, 2.0 * u - 1.0, gen);
    if (st == AQA_OK) {
        const double s = std * sqrt(2.0);
        if (w->dtype == AQA_F32) {
            float *x = aqa_data(w);
            for (int64_t i = 0; i < n; i++) x[i] = (float)fmin(fmax(mean + s * aqa_erfinv(x[i]), a), b);
        } else {
            double *x = aqa_data(w);
            for (int64_t i = 0; i < n; i++) x[i] = fmin(fmax(mean + s * aqa_erfinv(x[i]), a), b);
        }
        if (w != t) st = aqa_copy_(t, w);
        else aqa__bump_version(t, "aqa_init_trunc_normal_"); /* written through aqa_data */
    }
    if (w != t) aqa__release(w);
    aqa_set_grad_enabled(prev);
    return st;
}

/* kaiming_uniform(a = sqrt(5)) on the weight reduces exactly to U(-1/sqrt(fan_in), 1/sqrt(fan_in))
 * (gain sqrt(1/3), bound sqrt(3) gain / sqrt(fan_in)); the bound is computed in that closed form,
 * which the Linear and Conv modules have always drawn with (the long form can differ in the last
 * bit).  Zero-element tensors are left alone, as torch does. */
static aqa_status default_init(const char *fn, aqa_tensor *weight, aqa_tensor *bias, aqa_generator *gen) {
    if (!weight) return aqa_fail(AQA_EINVAL, "%s: weight is NULL", fn);
    int64_t fi, fo;
    aqa_status st = aqa_init_calculate_fans(weight, &fi, &fo);
    if (st != AQA_OK) return st;
    double bound = fi > 0 ? 1.0 / sqrt((double)fi) : 0.0;
    if (aqa_numel(weight) > 0 && (st = aqa_init_uniform_(weight, -bound, bound, gen)) != AQA_OK) return st;
    return bias && aqa_numel(bias) > 0 ? aqa_init_uniform_(bias, -bound, bound, gen) : AQA_OK;
}

aqa_status aqa_init_linear_default(aqa_tensor *weight, aqa_tensor *bias, aqa_generator *gen) {
    return default_init("aqa_init_linear_default", weight, bias, gen);
}

aqa_status aqa_init_conv_default(aqa_tensor *weight, aqa_tensor *bias, aqa_generator *gen) {
    return default_init("aqa_init_conv_default", weight, bias, gen);
}
