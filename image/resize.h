/* resize.h: PIL-compatible image resizing, cropping and flipping, and the model input transforms
 * built on them (CLIP's and I3D's), writing float CHW into caller-provided buffers.
 *
 * aqa_image_resize gives the same bytes as Pillow's `Image.resize(size, BILINEAR|BICUBIC)` on an
 * RGB image: separable convolution (horizontal pass, then vertical), the filter support widened
 * by the scale factor when shrinking (antialiasing), coefficients normalised to sum 1 and turned
 * into 22-bit fixed point, uint8 rounding with clipping after each pass. */
#ifndef AQA_DATASETS_RESIZE_H
#define AQA_DATASETS_RESIZE_H

#include <stddef.h>
#include <stdint.h>

#include "image/image.h"
#include "base/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum aqa_resample {
    AQA_RESAMPLE_BILINEAR = 2, /* PIL.Image.BILINEAR (triangle filter, support 1) */
    AQA_RESAMPLE_BICUBIC = 3   /* PIL.Image.BICUBIC (cubic convolution a = -0.5, support 2) */
} aqa_resample;

/* A new image of out_w x out_h resampled from src; NULL with an error on bad arguments. */
aqa_image *aqa_image_resize(const aqa_image *src, int out_w, int out_h, aqa_resample filter);

/* A new image `height` rows high with the aspect ratio kept: the width is width * height / h
 * rounded to nearest (what `ffmpeg -vf scale=-1:height` gives).  How frames extracted from videos
 * are sized (FineDiving's are 256 rows); NULL with an error on bad arguments. */
aqa_image *aqa_image_resize_to_height(const aqa_image *src, int height, aqa_resample filter);

/* The size torchvision's Resize(n) (an int: shorter side to n, aspect kept) gives for a w x h
 * image: the shorter side becomes n, the longer int(n * long / short) (truncated). */
aqa_status aqa_resize_shorter_size(int w, int h, int n, int *out_w, int *out_h);

/* Crop origin torchvision's CenterCrop uses for a side of length `len` cropped to `crop`:
 * int(round((len - crop) / 2.0)) with Python's round-half-to-even; when crop > len the image is
 * zero-padded first (left/top pad (crop - len) // 2), which gives a negative origin. */
int aqa_center_crop_offset(int len, int crop);

/* A new w x h image cut from src at (x, y); pixels outside src are black (zero), as with
 * torchvision's padding CenterCrop. */
aqa_image *aqa_image_crop(const aqa_image *src, int x, int y, int w, int h);

/* Mirrors the image left-right in place. */
void aqa_image_hflip(aqa_image *im);

/* How 8-bit values become floats. */
typedef enum aqa_norm {
    AQA_NORM_UNIT = 0, /* v / 255 (torchvision ToTensor) */
    AQA_NORM_I3D = 1,  /* v / 255 * 2 - 1, in [-1, 1] (pytorch-i3d) */
    AQA_NORM_CLIP = 2, /* (v / 255 - mean) / std with CLIP's mean and std (float32 arithmetic) */
    AQA_NORM_IMAGENET = 3 /* the same with ImageNet's mean/std, as CoRe/TSA feed their I3D */
} aqa_norm;

/* CLIP's normalisation constants (OpenAI CLIP `_transform`). */
extern const float aqa_clip_mean[3];
extern const float aqa_clip_std[3];
/* ImageNet's (torchvision models'). */
extern const float aqa_imagenet_mean[3];
extern const float aqa_imagenet_std[3];

/* Writes im as float CHW: channel c, row y, column x goes to out[c * chan_stride + y * width + x].
 * chan_stride 0 means width * height (a plain [3, H, W] array); a larger stride writes one frame
 * of a [3, T, H, W] clip (stride T * H * W, out pointing at frame t). */
aqa_status aqa_image_to_float(const aqa_image *im, aqa_norm norm, float *out, size_t chan_stride);

/* Centre for crop_x / crop_y below. */
#define AQA_CROP_CENTER (-1000000000)

/* One frame's way from a decoded image to model input: resize, crop, flip, normalise. */
typedef struct aqa_frame_transform {
    int short_side;         /* > 0: resize so the shorter side is short_side (torchvision Resize(int)) */
    int resize_w, resize_h; /* used when short_side == 0: resize to exactly this; 0 = keep size */
    aqa_resample filter;    /* resampling filter for the resize */
    int crop_w, crop_h;     /* crop size; 0 = no crop (output is the resized image) */
    int crop_x, crop_y;     /* crop origin in the resized image, or AQA_CROP_CENTER */
    int hflip;              /* non-zero: mirror left-right after cropping */
    aqa_norm norm;          /* how bytes become floats */
} aqa_frame_transform;

/* CLIP's preprocessing for model resolution n: Resize(n, BICUBIC), CenterCrop(n), ToTensor,
 * Normalize(CLIP mean, std).  Bit-identical to CLIP's `preprocess(Image.open(f).convert("RGB"))`
 * (tested at n = 224).  Without the convert, CLIP resizes palette images with NEAREST and RGBA
 * images premultiplied (PIL's rules); we always work on the decoded RGB. */
aqa_frame_transform aqa_frame_transform_clip(int n);
/* I3D input: shorter side to short_side (bilinear), centre crop crop x crop, values in [-1, 1]. */
aqa_frame_transform aqa_frame_transform_i3d(int short_side, int crop);

/* Size of the resized image (before cropping) for an input of in_w x in_h. */
aqa_status aqa_frame_transform_resized_size(const aqa_frame_transform *t, int in_w, int in_h,
                                            int *rw, int *rh);
/* Size of the transform's output for an input of in_w x in_h. */
aqa_status aqa_frame_transform_output_size(const aqa_frame_transform *t, int in_w, int in_h,
                                           int *out_w, int *out_h);

/* Training-time randomisation, drawn once per clip so all its frames share it: picks a uniform
 * crop origin (torchvision RandomCrop: 0..resized - crop inclusive) and, when flip_prob > 0, a flip
 * with that probability, deterministically from `seed`.  in_w x in_h is the decoded frame size. */
aqa_status aqa_frame_transform_randomize(aqa_frame_transform *t, int in_w, int in_h, uint64_t seed,
                                         double flip_prob);

/* Applies t to im, writing 3 planes of out_w * out_h floats (see aqa_image_to_float for
 * chan_stride). */
aqa_status aqa_frame_transform_apply(const aqa_frame_transform *t, const aqa_image *im, float *out,
                                     size_t chan_stride);

/* Shorthands: CLIP preprocessing at resolution n into out[3 * n * n]; I3D preprocessing into
 * out[3 * crop * crop] (centre crop, no flip). */
aqa_status aqa_clip_preprocess(const aqa_image *im, int n, float *out);
aqa_status aqa_i3d_preprocess(const aqa_image *im, int short_side, int crop, float *out);

#ifdef __cplusplus
}
#endif

#endif /* AQA_DATASETS_RESIZE_H */
