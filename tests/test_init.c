/* test_init.c: nn/init.h: fan computations for linear/conv shapes, gains, statistical checks of
 * every initialiser (mean, std, bounds over 10^5 draws, seeds printed), erfinv, reproducibility
 * through seeds and explicit generators, and errors. */
#include <math.h>

#include "autograd/autograd.h"
#include "nn/init.h"
#include "ops/ops.h"
#include "tests/test_util.h"

typedef struct stats {
    double mean, std, min, max;
} stats;

static stats moments(const aqa_tensor *t) {
    int64_t n = aqa_numel(t);
    double *x = test_host(t);
    stats s = {0, 0, INFINITY, -INFINITY};
    for (int64_t i = 0; i < n; i++) {
        s.mean += x[i];
        s.min = fmin(s.min, x[i]);
        s.max = fmax(s.max, x[i]);
    }
    s.mean /= (double)n;
    for (int64_t i = 0; i < n; i++) s.std += (x[i] - s.mean) * (x[i] - s.mean);
    s.std = sqrt(s.std / (double)(n - 1));
    free(x);
    return s;
}

static void test_fans_and_gains(void) {
    aqa_scope_begin();
    int64_t fi = 0, fo = 0;
    CHECK(aqa_init_calculate_fans(aqa_empty(AQA_SHAPE(20, 30), AQA_F32), &fi, &fo) == AQA_OK);
    CHECK_EQ_INT(fi, 30);
    CHECK_EQ_INT(fo, 20);
    /* Conv2d(16 -> 32, 3x5): weight [32, 16, 3, 5] */
    CHECK(aqa_init_calculate_fans(aqa_empty(AQA_SHAPE(32, 16, 3, 5), AQA_F32), &fi, &fo) == AQA_OK);
    CHECK_EQ_INT(fi, 16 * 15);
    CHECK_EQ_INT(fo, 32 * 15);
    /* grouped Conv3d(192 -> 192, groups 4, 3x3x3): weight [192, 48, 3, 3, 3] */
    CHECK(aqa_init_calculate_fans(aqa_empty(AQA_SHAPE(192, 48, 3, 3, 3), AQA_F32), &fi, &fo) == AQA_OK);
    CHECK_EQ_INT(fi, 48 * 27);
    CHECK_EQ_INT(fo, 192 * 27);
    /* Conv1d [8, 4, 7] */
    CHECK(aqa_init_calculate_fans(aqa_empty(AQA_SHAPE(8, 4, 7), AQA_F32), &fi, &fo) == AQA_OK);
    CHECK_EQ_INT(fi, 28);
    CHECK_EQ_INT(fo, 56);
    CHECK(aqa_init_calculate_fans(aqa_empty(AQA_SHAPE(5), AQA_F32), &fi, &fo) == AQA_EINVAL);
    CHECK(strstr(aqa_last_error(), "fewer than 2 dimensions") != NULL);
    CHECK_NEAR(aqa_init_calculate_gain(AQA_GAIN_RELU, 0), sqrt(2.0), 1e-15);
    CHECK_NEAR(aqa_init_calculate_gain(AQA_GAIN_LEAKY_RELU, sqrt(5.0)), sqrt(1.0 / 3.0), 1e-15);
    CHECK_NEAR(aqa_init_calculate_gain(AQA_GAIN_LEAKY_RELU, 0.01), sqrt(2.0 / 1.0001), 1e-15);
    CHECK_NEAR(aqa_init_calculate_gain(AQA_GAIN_TANH, 0), 5.0 / 3.0, 1e-15);
    CHECK_NEAR(aqa_init_calculate_gain(AQA_GAIN_SELU, 0), 0.75, 1e-15);
    CHECK_NEAR(aqa_init_calculate_gain(AQA_GAIN_LINEAR, 0), 1.0, 0);
    aqa_scope_end();
}

static void test_erfinv(void) {
    double ys[] = {-0.999999, -0.9, -0.5, -1e-9, 0.0, 1e-12, 0.3, 0.75, 0.99, 0.9999999999};
    for (size_t i = 0; i < sizeof ys / sizeof *ys; i++) {
        double x = aqa_erfinv(ys[i]);
        CHECK_MSG(fabs(erf(x) - ys[i]) <= 4e-16 + 1e-15 * fabs(ys[i]), "erf(erfinv(%g)) = %.17g", ys[i], erf(x));
    }
    CHECK(isinf(aqa_erfinv(1.0)) && aqa_erfinv(1.0) > 0);
    CHECK(isnan(aqa_erfinv(1.5)));
    /* an independent value: erfinv(0.5) = 0.4769362762044699 (Abramowitz-Stegun tables) */
    CHECK_NEAR(aqa_erfinv(0.5), 0.4769362762044699, 1e-15);
}

#define N 100000
/* sampling tolerances: the mean of 1e5 draws has standard error std / 316 */
static void test_distributions(void) {
    uint64_t seed = test_seed("initialiser draws");
    aqa_manual_seed(seed);
    aqa_scope_begin();
    aqa_tensor *t = aqa_empty(AQA_SHAPE(N / 100, 100), AQA_F32);
    /* uniform */
    CHECK(aqa_init_uniform_(t, -2.0, 3.0, NULL) == AQA_OK);
    stats s = moments(t);
    CHECK_NEAR(s.mean, 0.5, 0.03);
    CHECK_NEAR(s.std, 5.0 / sqrt(12.0), 0.02);
    CHECK(s.min >= -2.0 && s.max <= 3.0 && s.min < -1.99 && s.max > 2.99);
    /* normal */
    CHECK(aqa_init_normal_(t, 1.5, 0.5, NULL) == AQA_OK);
    s = moments(t);
    CHECK_NEAR(s.mean, 1.5, 0.01);
    CHECK_NEAR(s.std, 0.5, 0.01);
    /* constants */
    CHECK(aqa_init_constant_(t, 0.25) == AQA_OK);
    s = moments(t);
    CHECK(s.min == 0.25 && s.max == 0.25);
    CHECK(aqa_init_ones_(t) == AQA_OK && moments(t).min == 1.0);
    CHECK(aqa_init_zeros_(t) == AQA_OK && moments(t).max == 0.0);

    /* xavier on a [1000, 100] weight: fan_in 100, fan_out 1000 */
    double xs = 1.7 * sqrt(2.0 / 1100.0);
    CHECK(aqa_init_xavier_uniform_(t, 1.7, NULL) == AQA_OK);
    s = moments(t);
    CHECK(s.max <= sqrt(3.0) * xs + 1e-7 && s.min >= -sqrt(3.0) * xs - 1e-7);
    CHECK_NEAR(s.std, xs, 0.02 * xs);
    CHECK_NEAR(s.mean, 0.0, 0.02 * xs);
    CHECK(aqa_init_xavier_normal_(t, 1.7, NULL) == AQA_OK);
    s = moments(t);
    CHECK_NEAR(s.std, xs, 0.02 * xs);

    /* kaiming on a conv weight [64, 25, 8, 8] (fan_in 1600, fan_out 4096) */
    aqa_tensor *w = aqa_empty(AQA_SHAPE(64, 25, 8, 8), AQA_F32);
    CHECK(aqa_init_kaiming_normal_(w, 0.0, AQA_FAN_OUT, AQA_GAIN_RELU, NULL) == AQA_OK);
    s = moments(w);
    CHECK_NEAR(s.std, sqrt(2.0) / 64.0, 0.02 * sqrt(2.0) / 64.0);
    CHECK_NEAR(s.mean, 0.0, 0.02 * sqrt(2.0) / 64.0);
    CHECK(aqa_init_kaiming_uniform_(w, 0.2, AQA_FAN_IN, AQA_GAIN_LEAKY_RELU, NULL) == AQA_OK);
    s = moments(w);
    double kb = sqrt(3.0) * sqrt(2.0 / 1.04) / 40.0;
    CHECK(s.max <= kb + 1e-7 && s.min >= -kb - 1e-7 && s.max > 0.99 * kb);
    CHECK_NEAR(s.std, kb / sqrt(3.0), 0.02 * kb);
    CHECK(aqa_init_kaiming_uniform_(w, 0.0, AQA_FAN_IN, AQA_GAIN_LINEAR, NULL) == AQA_OK);
    CHECK_NEAR(moments(w).std, 1.0 / 40.0, 0.02 / 40.0);

    /* truncated normal: bounds, and the truncated distribution's mean and std computed from its
     * closed form (alpha, beta standardised bounds, Z = Phi(beta) - Phi(alpha)) */
    double mu = 0.5, sd = 2.0, a = -1.0, b = 3.0;
    CHECK(aqa_init_trunc_normal_(t, mu, sd, a, b, NULL) == AQA_OK);
    s = moments(t);
    double al = (a - mu) / sd, be = (b - mu) / sd;
    double phi_a = exp(-al * al / 2) / sqrt(2 * M_PI), phi_b = exp(-be * be / 2) / sqrt(2 * M_PI);
    double Z = 0.5 * (erf(be / sqrt(2.0)) - erf(al / sqrt(2.0)));
    double tmean = mu + sd * (phi_a - phi_b) / Z;
    double tvar = sd * sd * (1 + (al * phi_a - be * phi_b) / Z - pow((phi_a - phi_b) / Z, 2));
    CHECK(s.min >= a && s.max <= b && s.min < a + 0.01 && s.max > b - 0.01);
    CHECK_NEAR(s.mean, tmean, 0.01);
    CHECK_NEAR(s.std, sqrt(tvar), 0.01);
    /* ViT's trunc_normal_(std = .02) with the default +-2 bounds: essentially untruncated */
    CHECK(aqa_init_trunc_normal_(t, 0.0, 0.02, -2.0, 2.0, NULL) == AQA_OK);
    s = moments(t);
    CHECK_NEAR(s.std, 0.02, 0.0005);
    /* float64 and a strided (non-contiguous) view go through the host-copy path */
    aqa_tensor *d = aqa_empty(AQA_SHAPE(200, 500), AQA_F64);
    aqa_tensor *dv = aqa_transpose(d, 0, 1);
    CHECK(aqa_init_trunc_normal_(dv, mu, sd, a, b, NULL) == AQA_OK);
    s = moments(d);
    CHECK(s.min >= a && s.max <= b);
    CHECK_NEAR(s.mean, tmean, 0.01);
    aqa_scope_end();
}

static void test_default_linear_conv(void) {
    aqa_manual_seed(test_seed("default init"));
    aqa_scope_begin();
    aqa_tensor *w = aqa_requires_grad(aqa_empty(AQA_SHAPE(300, 400), AQA_F32), true);
    aqa_tensor *b = aqa_requires_grad(aqa_empty(AQA_SHAPE(300), AQA_F32), true);
    CHECK(aqa_init_linear_default(w, b, NULL) == AQA_OK);
    CHECK(w->grad_fn == NULL && b->grad_fn == NULL); /* no autograd history */
    stats sw = moments(w), sb = moments(b);
    double bound = 1.0 / 20.0; /* 1/sqrt(400) */
    CHECK(sw.max <= bound && sw.min >= -bound && sw.max > 0.99 * bound);
    CHECK_NEAR(sw.std, bound / sqrt(3.0), 0.01 * bound);
    CHECK(sb.max <= bound && sb.min >= -bound);
    /* conv [32, 8, 3, 3]: fan_in 72 */
    aqa_tensor *cw = aqa_empty(AQA_SHAPE(32, 8, 3, 3), AQA_F32), *cb = aqa_empty(AQA_SHAPE(32), AQA_F32);
    CHECK(aqa_init_conv_default(cw, cb, NULL) == AQA_OK);
    stats sc = moments(cw);
    CHECK(sc.max <= 1.0 / sqrt(72.0) && sc.min >= -1.0 / sqrt(72.0) && sc.max > 0.95 / sqrt(72.0));
    CHECK(moments(cb).max <= 1.0 / sqrt(72.0));
    CHECK(aqa_init_conv_default(cw, NULL, NULL) == AQA_OK);
    aqa_scope_end();
}

static void test_reproducible(void) {
    aqa_scope_begin();
    aqa_tensor *a = aqa_empty(AQA_SHAPE(7, 9), AQA_F32), *b = aqa_empty(AQA_SHAPE(7, 9), AQA_F32);
    aqa_manual_seed(42);
    aqa_init_trunc_normal_(a, 0, 1, -2, 2, NULL);
    aqa_init_xavier_uniform_(a, 1.0, NULL);
    aqa_manual_seed(42);
    aqa_init_trunc_normal_(b, 0, 1, -2, 2, NULL);
    aqa_init_xavier_uniform_(b, 1.0, NULL);
    CHECK(aqa_item(aqa_max_all(aqa_abs(aqa_sub(a, b)))) == 0.0);
    /* an explicit generator does not touch the default one */
    aqa_generator g1 = {.seed = 9, .offset = 0}, g2 = {.seed = 9, .offset = 0};
    uint64_t off = aqa_default_generator()->offset;
    aqa_init_normal_(a, 0, 1, &g1);
    aqa_init_normal_(b, 0, 1, &g2);
    CHECK(aqa_default_generator()->offset == off);
    CHECK(g1.offset > 0 && g1.offset == g2.offset);
    CHECK(aqa_item(aqa_max_all(aqa_abs(aqa_sub(a, b)))) == 0.0);
    aqa_scope_end();
}

static void test_errors(void) {
    aqa_scope_begin();
    aqa_tensor *i = aqa_zeros(AQA_SHAPE(3, 3), AQA_I64);
    CHECK(aqa_init_normal_(i, 0, 1, NULL) == AQA_EINVAL);
    CHECK(aqa_init_uniform_(NULL, 0, 1, NULL) == AQA_EINVAL);
    aqa_tensor *t = aqa_zeros(AQA_SHAPE(3, 3), AQA_F32);
    CHECK(aqa_init_trunc_normal_(t, 0, 1, 2, -2, NULL) == AQA_EINVAL);
    CHECK(aqa_init_kaiming_uniform_(aqa_zeros(AQA_SHAPE(4), AQA_F32), 0, AQA_FAN_IN, AQA_GAIN_RELU, NULL) == AQA_EINVAL);
    CHECK(aqa_init_xavier_uniform_(aqa_zeros(AQA_SHAPE(0, 4), AQA_F32), 1, NULL) == AQA_OK); /* no-op */
    aqa_scope_end();
}

int main(void) {
    RUN(test_fans_and_gains);
    RUN(test_erfinv);
    RUN(test_distributions);
    RUN(test_default_linear_conv);
    RUN(test_reproducible);
    RUN(test_errors);
    return test_finish();
}
