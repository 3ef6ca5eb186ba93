/* init.h: parameter initialisers, as torch.nn.init.
 *
 * Every initialiser fills a tensor in place (any dtype that is floating, any layout, any
 * device), records no autograd history, and draws from a Philox generator: `gen` NULL means the
 * default generator, so aqa_manual_seed(s) makes a model's initialisation reproducible.  (The
 * random stream is aqa's Philox, not torch's CPU generator: the distributions match torch,
 * the individual numbers do not.)
 *
 *     ```c run
 *     aqa_module *net = aqa_module_new(sizeof(aqa_module), "Net", NULL, "", NULL);
 *     aqa_conv_layer *conv = aqa_conv2d_layer_new(net, "conv", 3, 8, 3, 1, 1, 1, 1, true);
 *     aqa_linear_layer *fc = aqa_linear_layer_new(net, "fc", 8, 2, true);
 *     aqa_tensor *pos_embed = aqa_module_param(net, "pos_embed", aqa_zeros(AQA_SHAPE(16, 8), AQA_F32));
 *     aqa_init_kaiming_normal_(conv->weight, 0.0, AQA_FAN_OUT, AQA_GAIN_RELU, NULL);
 *     aqa_init_trunc_normal_(pos_embed, 0.0, 0.02, -2.0, 2.0, NULL);   // ViT / CLIP style
 *     aqa_init_linear_default(fc->weight, fc->bias, NULL);            // nn.Linear.reset_parameters
 *     aqa_module_free(net);
 *     ```
 */
#ifndef AQA_NN_INIT_H
#define AQA_NN_INIT_H

#include <stdint.h>

#include "tensor/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Nonlinearities for the recommended gains (torch.nn.init.calculate_gain). */
typedef enum aqa_nonlinearity {
    AQA_GAIN_LINEAR = 0,     /* 1 (also conv1d/2d/3d, conv_transpose, identity) */
    AQA_GAIN_SIGMOID = 1,    /* 1 */
    AQA_GAIN_TANH = 2,       /* 5/3 */
    AQA_GAIN_RELU = 3,       /* sqrt(2) */
    AQA_GAIN_LEAKY_RELU = 4, /* sqrt(2 / (1 + slope^2)) */
    AQA_GAIN_SELU = 5        /* 3/4 */
} aqa_nonlinearity;

/* Which fan kaiming_* preserves: the forward pass's variance (fan_in) or the backward's. */
typedef enum aqa_fan_mode { AQA_FAN_IN = 0, AQA_FAN_OUT = 1 } aqa_fan_mode;

/* The gain of a nonlinearity; param is the negative slope for LEAKY_RELU (torch: default 0.01
 * when None is passed; pass it explicitly here). */
double aqa_init_calculate_gain(aqa_nonlinearity nonlinearity, double param);
/* torch.nn.init._calculate_fan_in_and_fan_out: for a weight [out, in, k...] fan_in = in * prod(k),
 * fan_out = out * prod(k).  Fails (AQA_EINVAL) for fewer than 2 dimensions. */
aqa_status aqa_init_calculate_fans(const aqa_tensor *t, int64_t *fan_in, int64_t *fan_out);

aqa_status aqa_init_uniform_(aqa_tensor *t, double a, double b, aqa_generator *gen);       /* U(a, b) */
aqa_status aqa_init_normal_(aqa_tensor *t, double mean, double std, aqa_generator *gen);   /* N(mean, std^2) */
aqa_status aqa_init_constant_(aqa_tensor *t, double value);
aqa_status aqa_init_zeros_(aqa_tensor *t);
aqa_status aqa_init_ones_(aqa_tensor *t);
/* U(-a, a) with a = gain sqrt(6 / (fan_in + fan_out)) / N(0, gain^2 2 / (fan_in + fan_out)). */
aqa_status aqa_init_xavier_uniform_(aqa_tensor *t, double gain, aqa_generator *gen);
aqa_status aqa_init_xavier_normal_(aqa_tensor *t, double gain, aqa_generator *gen);
/* std = gain(nonlinearity, a) / sqrt(fan); uniform uses bound sqrt(3) std.  a is the negative
 * slope of leaky_relu (torch's default call: a 0, FAN_IN, LEAKY_RELU). */
aqa_status aqa_init_kaiming_uniform_(aqa_tensor *t, double a, aqa_fan_mode mode, aqa_nonlinearity nonlinearity,
                                     aqa_generator *gen);
aqa_status aqa_init_kaiming_normal_(aqa_tensor *t, double a, aqa_fan_mode mode, aqa_nonlinearity nonlinearity,
                                    aqa_generator *gen);
/* N(mean, std^2) truncated to [a, b] by torch's inverse-CDF method: u ~ U(2 Phi(alpha) - 1,
 * 2 Phi(beta) - 1), x = mean + std sqrt(2) erfinv(u), clamped to [a, b]. */
aqa_status aqa_init_trunc_normal_(aqa_tensor *t, double mean, double std, double a, double b, aqa_generator *gen);

/* PyTorch's reset_parameters of nn.Linear / nn.ConvNd: weight kaiming_uniform(a = sqrt(5))
 * (= U(-1/sqrt(fan_in), 1/sqrt(fan_in))) then bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)) in that
 * order; bias may be NULL. */
aqa_status aqa_init_linear_default(aqa_tensor *weight, aqa_tensor *bias, aqa_generator *gen);
aqa_status aqa_init_conv_default(aqa_tensor *weight, aqa_tensor *bias, aqa_generator *gen);

/* The inverse error function (double precision); exposed for tests. */
double aqa_erfinv(double y);

#ifdef __cplusplus
}
#endif

#endif /* AQA_NN_INIT_H */
