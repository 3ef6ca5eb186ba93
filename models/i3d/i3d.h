/* i3d.h: the I3D video network (Inception-v1 inflated to 3-D, Carreira & Zisserman 2017) as
 * piergiaj/pytorch-i3d's `InceptionI3d`, the backbone AQA methods fine-tune (MVLA's CBP branch, TSA,
 * CoRe, USDL, MUSDL), and its video clip input.
 *
 * The module tree and state_dict names are pytorch-i3d's, so `rgb_imagenet.pt` converted to
 * safetensors (scripts/convert_i3d_pt.py) loads unchanged:
 *
 *     logits.conv3d.weight, logits.conv3d.bias,                       (registered first, as there)
 *     Conv3d_1a_7x7.conv3d.weight, Conv3d_1a_7x7.bn.{weight,bias,running_mean,running_var,
 *     num_batches_tracked}, Conv3d_2b_1x1..., Conv3d_2c_3x3..., Mixed_3b.b0.conv3d.weight,
 *     Mixed_3b.b0.bn..., Mixed_3b.b1a..., b1b, b2a, b2b, b3b, ... Mixed_5c...
 *
 * Unit3D = Conv3d (no bias) + BatchNorm3d(eps 1e-3, momentum 0.01) + ReLU, the convolution padded
 * TensorFlow-"SAME" from the input size; max pools use the same padding (pytorch-i3d pads with
 * zeros, which equals ignoring the padding on the non-negative ReLU outputs every pool sees).
 * Input: [B, 3, T, H, W] RGB in [-1, 1] (16 x 224 x 224 clips for the Kinetics weights).
 *
 * Outputs.  Any endpoint's activation can be taken (aqa_i3d_forward_to).  The clip feature
 * (AQA_I3D_FEATURES, [B, 1024]) is Mixed_5c followed by pytorch-i3d's AvgPool3d([2, 7, 7], stride 1)
 * (each window side clipped to the map when the input is smaller than 224 x 224 x 16) and the mean
 * over any remaining time/space positions; at 16 x 224 x 224 it is exactly `extract_features`
 * squeezed.  Logits ([B, num_classes]) are the 1x1x1 logits convolution of the pooled map (after
 * dropout) averaged over the remaining positions (pytorch-i3d returns [B, classes, T'] and AQA
 * code averages over T').
 *
 * Training.  Everything is differentiable; train mode (aqa_module_train) updates the BatchNorm
 * running statistics and num_batches_tracked as torch does.  aqa_i3d_freeze_bn keeps BatchNorm in
 * eval mode (running statistics, no update) while the rest trains, as TSA/CoRe do.  Inference
 * without gradients takes a leaner path (BatchNorm and ReLU applied in place on the convolution's
 * output); activations no later op needs are released as the forward goes, so memory stays at
 * what backward keeps (training) or a few activations (inference).  A batch runs as one: the
 * GEMMs of the late, small-map layers need the batch to be efficient (splitting a 4-clip eval
 * batch into single clips cost ~25% more CPU time, for ~2.5x less peak memory). */
#ifndef AQA_MODELS_I3D_H
#define AQA_MODELS_I3D_H

#include <stdbool.h>
#include <stdint.h>

#include "image/resize.h"
#include "nn/batchnorm.h"
#include "nn/conv.h"
#include "nn/dropout.h"
#include "nn/module.h"
#include "tensor/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Endpoints in network order (pytorch-i3d's VALID_ENDPOINTS, plus the pooled feature). */
typedef enum aqa_i3d_endpoint {
    AQA_I3D_CONV3D_1A_7X7 = 0,
    AQA_I3D_MAXPOOL3D_2A_3X3,
    AQA_I3D_CONV3D_2B_1X1,
    AQA_I3D_CONV3D_2C_3X3,
    AQA_I3D_MAXPOOL3D_3A_3X3,
    AQA_I3D_MIXED_3B,
    AQA_I3D_MIXED_3C,
    AQA_I3D_MAXPOOL3D_4A_3X3,
    AQA_I3D_MIXED_4B,
    AQA_I3D_MIXED_4C,
    AQA_I3D_MIXED_4D,
    AQA_I3D_MIXED_4E,
    AQA_I3D_MIXED_4F,
    AQA_I3D_MAXPOOL3D_5A_2X2,
    AQA_I3D_MIXED_5B,
    AQA_I3D_MIXED_5C,
    AQA_I3D_FEATURES, /* Mixed_5c + average pool + mean over remaining positions: [B, 1024] */
    AQA_I3D_LOGITS,   /* dropout + logits conv, averaged over positions: [B, num_classes] */
    AQA_I3D_N_ENDPOINTS
} aqa_i3d_endpoint;

/* "Conv3d_1a_7x7", ..., "Mixed_5c", "Features", "Logits"; NULL when out of range. */
const char *aqa_i3d_endpoint_name(aqa_i3d_endpoint e);
/* The endpoint of a name (as above; case-sensitive), or -1. */
int aqa_i3d_endpoint_from_name(const char *name);

typedef struct aqa_i3d_config {
    int64_t num_classes;         /* logits outputs (Kinetics: 400) */
    int64_t in_channels;         /* input channels (RGB: 3) */
    aqa_i3d_endpoint final_endpoint; /* last part built: up to AQA_I3D_FEATURES no logits layer
                                        (a weights file's logits.* are then skipped), LOGITS builds it */
    double width_multiplier;     /* every channel count scaled by this and rounded, at least 1 (1.0 =
                                    the real network; small values make tiny test networks) */
    double dropout_p;            /* dropout before the logits (pytorch-i3d: nn.Dropout(0.5)) */
} aqa_i3d_config;

/* pytorch-i3d's network: 400 classes, 3 channels, final endpoint FEATURES, width 1, dropout 0.5. */
aqa_i3d_config aqa_i3d_default_config(void);

/* One Unit3D: conv3d (+ bn) (+ ReLU). */
typedef struct aqa_i3d_unit3d {
    aqa_module base;          /* type "Unit3D" */
    aqa_conv_layer *conv3d;   /* child "conv3d": weight [out, in, kt, kh, kw] (+ bias for logits) */
    aqa_batch_norm_layer *bn; /* child "bn" (BatchNorm3d, eps 1e-3, momentum 0.01); NULL for logits */
    bool relu;                /* ReLU after (false for logits) */
} aqa_i3d_unit3d;

/* One InceptionModule: four branches concatenated on channels. */
typedef struct aqa_i3d_inception {
    aqa_module base;          /* type "InceptionModule" */
    aqa_i3d_unit3d *b0;       /* 1x1x1 */
    aqa_i3d_unit3d *b1a, *b1b; /* 1x1x1 then 3x3x3 */
    aqa_i3d_unit3d *b2a, *b2b; /* 1x1x1 then 3x3x3 */
    aqa_i3d_unit3d *b3b;      /* 1x1x1 after the 3x3x3 stride-1 max pool b3a (no parameters) */
    int64_t out_channels;     /* b0 + b1b + b2b + b3b channels */
} aqa_i3d_inception;

typedef struct aqa_i3d {
    aqa_module base;                  /* type "InceptionI3d" (root) */
    aqa_i3d_config cfg;               /* as given (normalised) */
    aqa_i3d_unit3d *logits;           /* child "logits" (conv with bias, no bn/relu), or NULL */
    aqa_module *end_points[AQA_I3D_FEATURES]; /* Unit3D / InceptionModule per endpoint, NULL for
                                                 pools and for endpoints past final_endpoint */
    int64_t channels[AQA_I3D_FEATURES]; /* output channels of each endpoint */
    int64_t feature_dim;              /* Mixed_5c's channels (1024 at width 1) */
    bool freeze_bn_stats;             /* BatchNorm uses running statistics, never updates them */
} aqa_i3d;

/* Builds the network (cfg NULL = defaults) with PyTorch's default initialisation from the default
 * generator.  Free with aqa_module_free(&m->base). */
aqa_i3d *aqa_i3d_new(const aqa_i3d_config *cfg);
void aqa_i3d_free(aqa_i3d *m);

/* Loads a safetensors file with pytorch-i3d names.  Every tensor of the model must be in the
 * file except num_batches_tracked (absent from old checkpoints such as rgb_imagenet.pt: kept at
 * 0); file tensors the model lacks are an error except logits.* when the model has no logits
 * layer.  Shapes must match. */
aqa_status aqa_i3d_load(aqa_i3d *m, const char *path);
/* The width multiplier a weights file was made at: its metadata "width_multiplier" (written by
 * examples/pretrain_i3d for small networks), else the "width_multiplier" number of its metadata
 * "config" JSON object (scripts/i3d_torch.py), 1 when neither is there (converted pytorch-i3d
 * weights).  A value that is not a number in (0, 1] is an error naming the file. */
aqa_status aqa_i3d_file_width(const char *path, double *width);

/* Keeps every BatchNorm in eval mode (running statistics, no update) while the model trains
 * (freeze_stats), and/or stops training their weight and bias (freeze_affine). */
void aqa_i3d_freeze_bn(aqa_i3d *m, bool freeze_stats, bool freeze_affine);

/* Output at the configured final endpoint (aqa_i3d_forward_to(m, x, cfg.final_endpoint)). */
aqa_tensor *aqa_i3d_forward(aqa_i3d *m, aqa_tensor *x);
/* Output at endpoint `end` (<= cfg.final_endpoint): x [B, C, T, H, W] -> the endpoint's
 * activation [B, C', T', H', W'], or [B, feature_dim] / [B, num_classes] for FEATURES / LOGITS. */
aqa_tensor *aqa_i3d_forward_to(aqa_i3d *m, aqa_tensor *x, aqa_i3d_endpoint end);
/* Features and logits of one pass (logits needs the logits layer; *logits may be NULL to skip). */
aqa_status aqa_i3d_features_logits(aqa_i3d *m, aqa_tensor *x, aqa_tensor **features, aqa_tensor **logits);
/* Features [B, feature_dim] and the Mixed_5c map averaged over time [B, feature_dim, H', W'] (TSA's
 * feature maps: feamap.mean(-3)) of one pass. */
aqa_status aqa_i3d_features_maps(aqa_i3d *m, aqa_tensor *x, aqa_tensor **features, aqa_tensor **maps);

/* ---- pieces (exposed for tests and other models) ------------------------------------------------ */
/* A Unit3D (registered under parent as `name`): kernel/stride per dim (T, H, W). */
aqa_i3d_unit3d *aqa_i3d_unit3d_new(aqa_module *parent, const char *name, int64_t in_channels,
                                   int64_t out_channels, const int64_t kernel[3], const int64_t stride[3],
                                   bool batch_norm, bool relu, bool bias);
/* bn_training: BatchNorm with batch statistics (and running update) rather than running ones. */
aqa_tensor *aqa_i3d_unit3d_forward(aqa_i3d_unit3d *u, aqa_tensor *x, bool bn_training);
/* channels[6] as pytorch-i3d's out_channels list (b0, b1a, b1b, b2a, b2b, b3b). */
aqa_i3d_inception *aqa_i3d_inception_new(aqa_module *parent, const char *name, int64_t in_channels,
                                         const int64_t channels[6]);
aqa_tensor *aqa_i3d_inception_forward(aqa_i3d_inception *b, aqa_tensor *x, bool bn_training);
/* pytorch-i3d's MaxPool3dSamePadding: TF-"SAME" zero padding then max pooling, x [B, C, T, H, W].
 * With nonnegative true (the input is known to be >= 0, as after ReLU) the padding is not
 * materialised: windows are clipped instead (same values and gradients), and float32 input that
 * needs no gradient goes through three 1-D passes (T, H, W maxima; NaN is not propagated there). */
aqa_tensor *aqa_i3d_max_pool_same(aqa_tensor *x, const int64_t kernel[3], const int64_t stride[3],
                                  bool nonnegative);
/* The feature head: avg pool [2, 7, 7] stride 1 (clipped to the map), then mean over the
 * remaining positions: [B, C, T, H, W] -> [B, C]. */
aqa_tensor *aqa_i3d_pool_features(aqa_tensor *x);

/* ---- video clips ------------------------------------------------------------------------------ */
/* Start frames of clips of clip_len frames taken every `stride` frames from n_frames frames, the
 * last clip shifted to end at the last frame when the stride grid does not reach it (FineDiving:
 * 96 frames, len 16, stride 10 -> 0, 10, ..., 80; MTL-AQA: 103 -> 0, 10, ..., 80, 87).  A video
 * shorter than clip_len gives one clip at 0 (its frames are repeated, see below).  Writes up to
 * max_out starts and returns the number of clips (-1 on bad arguments). */
int aqa_i3d_clip_starts(int64_t n_frames, int64_t clip_len, int64_t stride, int64_t *starts, int max_out);

/* How the frames of a folder become clips. */
typedef struct aqa_i3d_clip_opts {
    int64_t clip_len;     /* frames per clip (16) */
    int64_t stride;       /* start-to-start distance (10 for FineDiving/MTL-AQA; 0 = clip_len) */
    int short_side;       /* shorter side resized to this first (0 = no resize: crop from the frame) */
    int crop;             /* square crop side (224) */
    bool random_crop;     /* random crop origin (and flip with flip_prob) from seed, the same for
                             all frames of the video; else centre crop */
    double flip_prob;     /* horizontal flip probability with random_crop */
    uint64_t seed;        /* for random_crop */
} aqa_i3d_clip_opts;

/* 16-frame clips, stride 10, shorter side 256 (bilinear), centre crop 224 (MVLA/TSA's test-time
 * input; [-1, 1] scaling as pytorch-i3d). */
aqa_i3d_clip_opts aqa_i3d_default_clip_opts(void);

/* Sorted (by name) JPEG/PNG file names (.jpg, .jpeg, .png, any case) of a folder; *names
 * malloc'd array of malloc'd full paths.  Returns the count (-1 on error). */
int aqa_i3d_list_frames(const char *dir, char ***names);
void aqa_i3d_free_names(char **names, int n);

/* Decodes the frames of `dir`, transforms them and splits them into clips: F32 [n_clips, 3,
 * clip_len, crop, crop] with values in [-1, 1].  A frame missing from a short video repeats the
 * last one.  Each frame is decoded once even when clips overlap. */
aqa_tensor *aqa_i3d_load_clips(const char *dir, const aqa_i3d_clip_opts *opts);

#ifdef __cplusplus
}
#endif

#endif /* AQA_MODELS_I3D_H */
